// SPDX-License-Identifier: GPL-2.0

//! Small safe wrappers around the raw `file`, `inode` and the ext4
//! primitives exported by the test kernel's patch.

use core::{marker::PhantomData, ptr::NonNull};
use kernel::{bindings, error::to_result, prelude::*};

/// A file ext4 handed to the module, borrowed for one ioctl call.
///
/// # Invariants
///
/// `ptr` points to a valid `struct file` of an ext4 filesystem for `'a`.
pub(crate) struct File<'a> {
    ptr: NonNull<bindings::file>,
    _life: PhantomData<&'a bindings::file>,
}

impl<'a> File<'a> {
    /// # Safety
    ///
    /// `ptr` must be a valid ext4 file that stays open for `'a`.
    pub(crate) unsafe fn from_raw(ptr: *mut bindings::file) -> Self {
        Self {
            // SAFETY: valid, hence non-null (function safety requirement).
            ptr: unsafe { NonNull::new_unchecked(ptr) },
            _life: PhantomData,
        }
    }

    /// Writes back and waits for all dirty data of the file, so delayed
    /// allocations get their blocks. Like `fsync`, reports (and consumes for
    /// this open file) a write-back error.
    pub(crate) fn write_back(&self) -> Result {
        // SAFETY: `ptr` is a valid open file (type invariant); the range is
        // the whole file.
        to_result(unsafe { bindings::file_write_and_wait_range(self.ptr.as_ptr(), 0, i64::MAX) })
    }

    /// The inode the file is open on.
    pub(crate) fn inode(&self) -> Inode<'a> {
        // SAFETY: `ptr` is valid (type invariant); an open file's `f_inode`
        // is set and pinned by the file for as long as it is open.
        let ptr = unsafe { (*self.ptr.as_ptr()).f_inode };
        Inode {
            // SAFETY: see above, `f_inode` of an open file is not null.
            ptr: unsafe { NonNull::new_unchecked(ptr) },
            _life: PhantomData,
        }
    }
}

/// An ext4 inode held by an open [`File`].
///
/// # Invariants
///
/// `ptr` points to a valid ext4 inode for `'a`.
pub(crate) struct Inode<'a> {
    ptr: NonNull<bindings::inode>,
    _life: PhantomData<&'a bindings::inode>,
}

/// State of a run of logical blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MapState {
    /// Not allocated.
    Hole,
    /// Allocated and written.
    Mapped,
    /// Allocated, reads as zeroes.
    Unwritten,
    /// Dirty in the page cache, allocation pending.
    Delayed,
}

impl MapState {
    /// Decodes `enum ext4_hook_map_state`.
    pub(crate) fn from_raw(raw: u32) -> Result<Self> {
        match raw {
            bindings::ext4_hook_map_state_EXT4_HOOK_MAP_HOLE => Ok(Self::Hole),
            bindings::ext4_hook_map_state_EXT4_HOOK_MAP_MAPPED => Ok(Self::Mapped),
            bindings::ext4_hook_map_state_EXT4_HOOK_MAP_UNWRITTEN => Ok(Self::Unwritten),
            bindings::ext4_hook_map_state_EXT4_HOOK_MAP_DELAYED => Ok(Self::Delayed),
            _ => Err(EIO),
        }
    }
}

/// Where a run of logical blocks is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mapping {
    /// First physical block, 0 unless mapped or unwritten.
    pub(crate) pblk: u64,
    /// Blocks in the run, at least 1.
    pub(crate) len: u32,
    /// What the run is.
    pub(crate) state: MapState,
}

impl Inode<'_> {
    /// Looks up logical block `lblk` (without allocating), reporting the
    /// run of at most `max_len` blocks that starts there.
    pub(crate) fn map_block(&self, lblk: u32, max_len: u32) -> Result<Mapping> {
        let mut raw = bindings::ext4_hook_map::default();
        // SAFETY: `ptr` is a valid ext4 inode (type invariant) and `raw` a
        // valid place for the result.
        to_result(unsafe {
            bindings::ext4_hook_map_block(self.ptr.as_ptr(), lblk, max_len, &mut raw)
        })?;
        Ok(Mapping {
            pblk: raw.pblk,
            len: raw.len,
            state: MapState::from_raw(raw.state)?,
        })
    }
}
