/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * ext4 goal-directed online defragmentation: the ioctl ABI of the
 * ext4_defrag module. The commands use the 'f' numbers 0x60-0x6f that the
 * test kernel's ext4 hook hands to the module (include/linux/ext4_hook.h);
 * without the module they fail with ENOTTY.
 *
 * Every structure has the same layout on 32- and 64-bit ABIs. The Rust
 * mirror is rust/uapi.rs; tools/e4defrag/tests/abi.rs checks that the two
 * agree.
 */
#ifndef _UAPI_LINUX_EXT4_DEFRAG_H
#define _UAPI_LINUX_EXT4_DEFRAG_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* EXT4_IOC_DEFRAG: defragment [start_offset, start_offset + defrag_size). */
struct ext4_ext_defrag_data {
	__s64 start_offset;	/* in: byte offset, block aligned */
	__s64 defrag_size;	/* in: bytes; 0 = up to EOF */
	__u64 goal;		/* in: physical block to search from; 0 = ext4 picks */
	__u32 flags;		/* in: EXT4_DEFRAG_* */
	__u32 reserved;		/* in: DONOR_FD: donor fd; else must be 0 */
	__u64 moved_blocks;	/* out: blocks moved (DRY_RUN: would move) */
	__u32 extents_before;	/* out: extents in the range before */
	__u32 extents_after;	/* out: extents in the range after */
};

/* Fail with ENOSPC rather than allocate away from the goal. */
#define EXT4_DEFRAG_GOAL_ONLY	0x00000001
/* Plan and report, move nothing. */
#define EXT4_DEFRAG_DRY_RUN	0x00000002
/*
 * @reserved is a file descriptor of an unlinked regular file on the same
 * filesystem, open read-write, with nothing allocated past its end: it
 * serves as the donor instead of a new one. The new blocks are allocated
 * past its end; it keeps the range's old blocks until it is closed.
 */
#define EXT4_DEFRAG_DONOR_FD	0x00000004
/*
 * Bits 8-15: the move unit, log2 of the pages moved per step (0: one page,
 * the original design; at most EXT4_DEFRAG_UNIT_MAX). Signals are checked
 * between steps.
 */
#define EXT4_DEFRAG_UNIT_SHIFT	8
#define EXT4_DEFRAG_UNIT_MASK	0x0000ff00
#define EXT4_DEFRAG_UNIT(log2_pages)	((log2_pages) << EXT4_DEFRAG_UNIT_SHIFT)
#define EXT4_DEFRAG_UNIT_MAX	12
#define EXT4_DEFRAG_FLAGS_ALL	(EXT4_DEFRAG_GOAL_ONLY | EXT4_DEFRAG_DRY_RUN | \
				 EXT4_DEFRAG_DONOR_FD | EXT4_DEFRAG_UNIT_MASK)

/*
 * EXT4_IOC_FIBMAP: where is logical block @lblk of a file or directory?
 *
 * @pblk is the physical block, or 0 for a hole. @len counts the blocks
 * from @lblk on that are in the same @state and, when mapped, physically
 * contiguous. Dirty data not yet allocated (delayed allocation) is written
 * back first, so a regular file reports its real placement.
 */
struct ext4_fibmap_data {
	__u64 lblk;		/* in: logical block, < 2^32 - 1 */
	__u64 pblk;		/* out: physical block, 0 for a hole */
	__u32 len;		/* out: blocks in this run, >= 1 */
	__u32 state;		/* out: EXT4_FIBMAP_* */
	__u32 flags;		/* in: must be 0 */
	__u32 reserved;		/* in: must be 0 */
};

#define EXT4_FIBMAP_HOLE	0	/* not allocated; pblk is 0 */
#define EXT4_FIBMAP_MAPPED	1	/* allocated and written */
#define EXT4_FIBMAP_UNWRITTEN	2	/* allocated, reads as zeroes */
#define EXT4_FIBMAP_DELAYED	3	/* dirty, allocation still pending */

#define EXT4_IOC_DEFRAG		_IOWR('f', 0x60, struct ext4_ext_defrag_data)
#define EXT4_IOC_FIBMAP		_IOWR('f', 0x61, struct ext4_fibmap_data)

#endif /* _UAPI_LINUX_EXT4_DEFRAG_H */
