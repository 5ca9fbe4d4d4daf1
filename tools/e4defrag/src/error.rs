//! Errors that name the path, the operation and the errno.

use nix::errno::Errno;
use std::path::{Path, PathBuf};

/// A failure on one target.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed.
    #[error("{}: {op}: {errno}{}", path.display(), hint(op, *errno))]
    Sys {
        path: PathBuf,
        op: &'static str,
        errno: Errno,
    },
    /// The path is not on ext4.
    #[error("{}: not on an ext4 filesystem (statfs type {fs_type:#x})", path.display())]
    NotExt4 { path: PathBuf, fs_type: u64 },
    /// The tool will not handle the path, for the reason given.
    #[error("{}: {reason}", path.display())]
    Refused { path: PathBuf, reason: String },
}

impl Error {
    /// `map_err` helper: a failed call `op` on `path` with its errno.
    pub fn sys<'a>(path: &'a Path, op: &'static str) -> impl Fn(Errno) -> Error + 'a {
        move |errno| Error::Sys {
            path: path.into(),
            op,
            errno,
        }
    }

    /// `map_err` helper for `std::io` results.
    pub fn io<'a>(path: &'a Path, op: &'static str) -> impl Fn(std::io::Error) -> Error + 'a {
        move |e| Error::Sys {
            path: path.into(),
            op,
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(Errno::EIO as i32)),
        }
    }

    /// The errno behind the failure, if there is one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Sys { errno, .. } => Some(*errno),
            Error::NotExt4 { .. } | Error::Refused { .. } => None,
        }
    }
}

fn hint(op: &str, errno: Errno) -> &'static str {
    match (op, errno) {
        ("EXT4_IOC_FIBMAP" | "EXT4_IOC_DEFRAG", Errno::ENOTTY) => {
            "; is the ext4_defrag module loaded?"
        }
        ("EXT4_IOC_DEFRAG", Errno::EPERM) => {
            "; immutable or append-only, or a goal without CAP_SYS_ADMIN"
        }
        ("EXT4_IOC_DEFRAG", Errno::EOPNOTSUPP) => {
            "; not extent-mapped, or encrypted, inline, data=journal, DAX, bigalloc or without a journal"
        }
        ("EXT4_IOC_DEFRAG", Errno::ETXTBSY) => "; an active swap file",
        ("EXT4_IOC_DEFRAG", Errno::EXDEV) => {
            "; the file is the root of its mount (a single-file bind mount): no directory \
             there for the module's donor (defragment it through another mount of the \
             filesystem)"
        }
        ("EXT4_IOC_DEFRAG", Errno::ENOSPC) => "; not enough free space (at the goal)",
        ("EXT4_IOC_DEFRAG" | "EXT4_IOC_MOVE_EXT", Errno::EINTR) => {
            "; interrupted, the part moved so far stays moved"
        }
        ("EXT4_IOC_MOVE_EXT", Errno::ENODATA | Errno::EINVAL) => {
            "; the file changed (truncated?) during the run"
        }
        ("EXT4_IOC_MOVE_EXT", Errno::EOPNOTSUPP) => {
            "; not extent-mapped, encrypted, a quota file or data=journal"
        }
        ("EXT4_IOC_MOVE_EXT", Errno::EBUSY) => "; busy, try again later",
        ("open", Errno::ETXTBSY) => "; busy: a running program or an active swap file",
        ("open", Errno::EROFS) => "; the filesystem is mounted read-only",
        ("open", Errno::EPERM) => "; immutable or append-only",
        ("fallocate", Errno::ENOSPC) => "; not enough free space for the new copy",
        _ => "",
    }
}
