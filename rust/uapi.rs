// SPDX-License-Identifier: GPL-2.0

//! The ioctl ABI of `ext4_defrag`: the Rust mirror of
//! `include/uapi/linux/ext4_defrag.h`.
//!
//! Uses `core` only, so that the kernel module and the `e4defrag` tool
//! compile this one file. `tools/e4defrag/tests/abi.rs` compares every size,
//! offset and number here with the C header; the module's KUnit suite checks
//! the ioctl numbers against the kernel's own `_IOWR` and hook range.

use core::mem::{offset_of, size_of};

/// `struct ext4_ext_defrag_data`, the argument of [`EXT4_IOC_DEFRAG`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DefragData {
    /// In: byte offset to start at, block aligned.
    pub start_offset: i64,
    /// In: bytes to defragment; 0 means up to EOF.
    pub defrag_size: i64,
    /// In: physical block to start the search at; 0 lets ext4 choose.
    pub goal: u64,
    /// In: `DEFRAG_*` flags.
    pub flags: u32,
    /// In: with `DONOR_FD`, the caller's donor file descriptor; else 0.
    pub reserved: u32,
    /// Out: blocks moved (with `DRY_RUN`: that would move).
    pub moved_blocks: u64,
    /// Out: extents in the range before.
    pub extents_before: u32,
    /// Out: extents in the range after.
    pub extents_after: u32,
}

/// Fail with `ENOSPC` rather than allocate away from the goal.
pub const DEFRAG_GOAL_ONLY: u32 = 0x1;
/// Plan and report, move nothing.
pub const DEFRAG_DRY_RUN: u32 = 0x2;
/// `reserved` is a file descriptor of an unlinked regular file on the same
/// filesystem, open for reading and writing, with nothing allocated past
/// its end: the call uses it as the donor instead of creating one, past
/// its end, where it keeps the range's old blocks until it is closed. A
/// caller moving many small files saves a donor, and a punch, per file.
pub const DEFRAG_DONOR_FD: u32 = 0x4;
/// Bits 8-15 of `flags`: log2 of the pages moved per step.
pub const DEFRAG_UNIT_SHIFT: u32 = 8;
/// Mask of the move unit in `flags`.
pub const DEFRAG_UNIT_MASK: u32 = 0xff00;
/// Largest move unit, as log2 of pages.
pub const DEFRAG_UNIT_MAX: u32 = 12;
/// Every flag `EXT4_IOC_DEFRAG` knows.
pub const DEFRAG_FLAGS_ALL: u32 =
    DEFRAG_GOAL_ONLY | DEFRAG_DRY_RUN | DEFRAG_DONOR_FD | DEFRAG_UNIT_MASK;

/// The move unit a request's `flags` ask for, in pages.
pub fn defrag_unit_pages(flags: u32) -> Option<u32> {
    let log2 = (flags & DEFRAG_UNIT_MASK) >> DEFRAG_UNIT_SHIFT;
    (log2 <= DEFRAG_UNIT_MAX).then(|| 1 << log2)
}

/// `struct ext4_fibmap_data`, the argument of [`EXT4_IOC_FIBMAP`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FibmapData {
    /// In: logical block, at most [`MAX_LBLK`].
    pub lblk: u64,
    /// Out: physical block, 0 for a hole.
    pub pblk: u64,
    /// Out: blocks from `lblk` on in the same state (and contiguous).
    pub len: u32,
    /// Out: one of the `FIBMAP_*` states.
    pub state: u32,
    /// In: must be 0.
    pub flags: u32,
    /// In: must be 0.
    pub reserved: u32,
}

/// Not allocated; `pblk` is 0.
pub const FIBMAP_HOLE: u32 = 0;
/// Allocated and written.
pub const FIBMAP_MAPPED: u32 = 1;
/// Allocated, reads as zeroes.
pub const FIBMAP_UNWRITTEN: u32 = 2;
/// Dirty, allocation still pending.
pub const FIBMAP_DELAYED: u32 = 3;

/// The largest logical block ext4 maps (`EXT_MAX_BLOCKS - 1`).
pub const MAX_LBLK: u64 = 0xffff_fffe;

const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

/// `_IOC()` of the asm-generic encoding (x86, arm, arm64, riscv).
const fn ioc(dir: u32, ty: u8, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | ((ty as u32) << 8) | nr
}

/// The ioctl type byte shared with ext4's own commands.
pub const IOC_TYPE: u8 = b'f';
/// `_IOWR('f', 0x60, struct ext4_ext_defrag_data)`.
pub const EXT4_IOC_DEFRAG: u32 = ioc(
    IOC_READ | IOC_WRITE,
    IOC_TYPE,
    0x60,
    size_of::<DefragData>(),
);
/// `_IOWR('f', 0x61, struct ext4_fibmap_data)`.
pub const EXT4_IOC_FIBMAP: u32 = ioc(
    IOC_READ | IOC_WRITE,
    IOC_TYPE,
    0x61,
    size_of::<FibmapData>(),
);

// The layout is part of the ABI: same on 32- and 64-bit, no padding.
const _: () = assert!(size_of::<DefragData>() == 48);
const _: () = assert!(offset_of!(DefragData, goal) == 16);
const _: () = assert!(offset_of!(DefragData, moved_blocks) == 32);
const _: () = assert!(size_of::<FibmapData>() == 32);
const _: () = assert!(offset_of!(FibmapData, flags) == 24);

/// Why a request was refused before anything was looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// A flag the kernel does not know.
    UnknownFlags,
    /// A reserved field is not 0.
    ReservedNotZero,
    /// The logical block is beyond what ext4 can map.
    BlockOutOfRange,
    /// An offset or size is negative, or the offset not block aligned.
    BadRange,
    /// `start_offset + defrag_size` overflows.
    Overflow,
    /// The goal is not a block of the filesystem, or `GOAL_ONLY` has none.
    BadGoal,
}

/// Checks an `EXT4_IOC_FIBMAP` request; returns the logical block as ext4
/// addresses it.
pub fn check_fibmap_request(req: &FibmapData) -> Result<u32, RequestError> {
    if req.flags != 0 {
        return Err(RequestError::UnknownFlags);
    }
    if req.reserved != 0 {
        return Err(RequestError::ReservedNotZero);
    }
    if req.lblk > MAX_LBLK {
        return Err(RequestError::BlockOutOfRange);
    }
    // Cannot truncate: MAX_LBLK < u32::MAX.
    Ok(req.lblk as u32)
}

/// The logical blocks `[start, end)` an `EXT4_IOC_DEFRAG` request covers,
/// clipped to the file's size; `start == end` when there is nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRange {
    /// First logical block.
    pub start: u64,
    /// One past the last logical block.
    pub end: u64,
}

/// Checks an `EXT4_IOC_DEFRAG` request against a filesystem of
/// `blocks_count` blocks of `1 << blkbits` bytes, for a file of `i_size`
/// bytes, before anything is touched.
pub fn check_defrag_request(
    req: &DefragData,
    blkbits: u32,
    blocks_count: u64,
    i_size: u64,
) -> Result<BlockRange, RequestError> {
    if req.flags & !DEFRAG_FLAGS_ALL != 0 {
        return Err(RequestError::UnknownFlags);
    }
    if req.reserved != 0 && req.flags & DEFRAG_DONOR_FD == 0 {
        return Err(RequestError::ReservedNotZero);
    }
    if defrag_unit_pages(req.flags).is_none() {
        return Err(RequestError::UnknownFlags);
    }
    if req.start_offset < 0 || req.defrag_size < 0 {
        return Err(RequestError::BadRange);
    }
    let (offset, size) = (req.start_offset as u64, req.defrag_size as u64);
    let block = 1u64 << blkbits;
    if offset % block != 0 {
        return Err(RequestError::BadRange);
    }
    let end_byte = offset
        .checked_add(size)
        .filter(|e| *e <= i64::MAX as u64)
        .ok_or(RequestError::Overflow)?;
    if req.goal >= blocks_count || (req.flags & DEFRAG_GOAL_ONLY != 0 && req.goal == 0) {
        return Err(RequestError::BadGoal);
    }
    let eof = i_size.div_ceil(block);
    let end = if size == 0 {
        eof
    } else {
        end_byte.div_ceil(block).min(eof)
    };
    let start = (offset >> blkbits).min(end);
    if end > MAX_LBLK + 1 {
        return Err(RequestError::BlockOutOfRange);
    }
    Ok(BlockRange { start, end })
}
