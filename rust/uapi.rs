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
    /// In: must be 0.
    pub reserved: u32,
    /// Out: blocks moved.
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
/// Every flag `EXT4_IOC_DEFRAG` knows.
pub const DEFRAG_FLAGS_ALL: u32 = DEFRAG_GOAL_ONLY | DEFRAG_DRY_RUN;

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
