//! Defragmenting one file through the module's `EXT4_IOC_DEFRAG`.

use crate::{error::Error, uapi};
use nix::errno::Errno;
use std::{fs::File, os::fd::AsRawFd, path::Path};

nix::ioctl_readwrite_bad!(ext4_ioc_defrag, uapi::EXT4_IOC_DEFRAG, uapi::DefragData);

/// What to ask of the kernel.
#[derive(Clone, Copy, Debug, Default)]
pub struct Request {
    /// Physical block to start the search at (0: near the data).
    pub goal: u64,
    /// Fail rather than place the data away from the goal's group.
    pub goal_only: bool,
    /// Report only.
    pub dry_run: bool,
    /// log2 of the pages moved per step.
    pub unit_log2: u32,
    /// Byte range: offset and size (0: to the end of the file).
    pub start: u64,
    pub size: u64,
    /// A donor of the caller's (`DONOR_FD`): an unlinked file on the same
    /// filesystem with a hole at the range, used instead of a new one.
    pub donor_fd: Option<i32>,
}

/// What the kernel did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub extents_before: u32,
    pub extents_after: u32,
    pub moved_blocks: u64,
}

/// Defragments `file` (opened read-write from `path`): all of it, or the
/// range the request gives.
pub fn defrag_file(file: &File, path: &Path, req: Request) -> Result<Outcome, Error> {
    let (out, res) = defrag_file_counted(file, path, req);
    res.map(|()| out)
}

/// As [`defrag_file`], and what the kernel did also when the call failed:
/// a move stopped by a signal or by `ENOSPC` keeps what it moved, and the
/// kernel reports it.
pub fn defrag_file_counted(file: &File, path: &Path, req: Request) -> (Outcome, Result<(), Error>) {
    let mut flags = req.unit_log2 << uapi::DEFRAG_UNIT_SHIFT;
    if req.goal_only {
        flags |= uapi::DEFRAG_GOAL_ONLY;
    }
    if req.dry_run {
        flags |= uapi::DEFRAG_DRY_RUN;
    }
    let mut reserved = 0;
    if let Some(fd) = req.donor_fd {
        flags |= uapi::DEFRAG_DONOR_FD;
        reserved = fd as u32;
    }
    let mut data = uapi::DefragData {
        start_offset: req.start as i64,
        defrag_size: req.size as i64,
        goal: req.goal,
        flags,
        reserved,
        ..Default::default()
    };
    // SAFETY: `data` is a valid `struct ext4_ext_defrag_data`, the size the
    // command number encodes.
    let res = unsafe { ext4_ioc_defrag(file.as_raw_fd(), &mut data) };
    let out = Outcome {
        extents_before: data.extents_before,
        extents_after: data.extents_after,
        moved_blocks: data.moved_blocks,
    };
    let res = res.map(drop).map_err(|errno: Errno| Error::Sys {
        path: path.into(),
        op: "EXT4_IOC_DEFRAG",
        errno,
    });
    (out, res)
}
