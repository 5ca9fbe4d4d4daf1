//! Errors that name the path, the operation and the errno.

use nix::errno::Errno;
use std::path::PathBuf;

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
}

impl Error {
    /// The errno behind the failure, if there is one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Sys { errno, .. } => Some(*errno),
            Error::NotExt4 { .. } => None,
        }
    }
}

fn hint(op: &str, errno: Errno) -> &'static str {
    match (op, errno) {
        ("EXT4_IOC_FIBMAP", Errno::ENOTTY) => "; is the ext4_defrag module loaded?",
        _ => "",
    }
}
