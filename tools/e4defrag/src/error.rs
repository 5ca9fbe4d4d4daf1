//! Errors that name the path, the operation and the errno.

use nix::errno::Errno;
use std::path::{Path, PathBuf};

/// A failure on one target.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed.
    #[error("{}: {op}: {}{}", path.display(), errno_text(*errno), hint(op, *errno))]
    Sys {
        path: PathBuf,
        op: &'static str,
        errno: Errno,
    },
    /// The path is not on ext4.
    #[error("{}: not on an ext4 filesystem ({})", path.display(), fs_name(*fs_type))]
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

    /// The path the failure is about.
    pub fn path(&self) -> &Path {
        match self {
            Error::Sys { path, .. } | Error::NotExt4 { path, .. } | Error::Refused { path, .. } => {
                path
            }
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

/// `ENOENT: No such file or directory`: the errno's name and the C
/// library's text for it. (nix's own text for `EOPNOTSUPP` is that of
/// `ENOTSUP` on other systems, "on transport endpoint"; Linux has one
/// number for both.)
pub fn errno_text(errno: Errno) -> String {
    let text = std::io::Error::from_raw_os_error(errno as i32).to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    format!("{errno:?}: {text}")
}

/// The filesystem a `statfs` type is, by name where it is a common one.
fn fs_name(fs_type: u64) -> String {
    let name = match fs_type {
        0x0102_1994 => "tmpfs",
        0x8584_58f6 => "ramfs",
        0x5846_5342 => "xfs",
        0x9123_683e => "btrfs",
        0xf2f5_2010 => "f2fs",
        0x6969 => "nfs",
        0xff53_4d42 | 0xfe53_4d42 => "cifs/smb",
        0x794c_7630 => "overlayfs",
        0x6573_5546 => "fuse",
        0x4d44 => "vfat",
        0x7366_746e => "ntfs3",
        0x2011_bab0 => "exfat",
        0x7371_7368 => "squashfs",
        0x9fa0 => "proc",
        0x6265_6572 => "sysfs",
        0x1373 => "devtmpfs/devfs",
        0x2fc1_2fc1 => "zfs",
        0x0102_1997 => "9p",
        _ => return format!("statfs type {fs_type:#x}"),
    };
    format!("{name}, statfs type {fs_type:#x}")
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
        ("fallocate", Errno::EOPNOTSUPP) => {
            "; the new copy cannot be allocated (a filesystem without the extent feature?)"
        }
        ("open", Errno::EROFS) => "; the filesystem is mounted read-only",
        ("open", Errno::EPERM) => "; immutable or append-only",
        ("fallocate", Errno::ENOSPC) => "; not enough free space for the new copy",
        ("open(O_TMPFILE) donor", Errno::ENOSPC) => {
            "; no free inode (or block) for the temporary file the new copy is made in"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_texts_are_linux_ones() {
        assert_eq!(
            errno_text(Errno::EOPNOTSUPP),
            "EOPNOTSUPP: Operation not supported"
        );
        assert_eq!(
            errno_text(Errno::ENOENT),
            "ENOENT: No such file or directory"
        );
        assert_eq!(fs_name(0x0102_1994), "tmpfs, statfs type 0x1021994");
        assert_eq!(fs_name(0x1234), "statfs type 0x1234");
    }
}
