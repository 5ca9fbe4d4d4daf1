//! Is a path on ext4, with which block size, and is a file's data in its
//! inode?

use crate::error::Error;
use nix::sys::statfs::{fstatfs, EXT4_SUPER_MAGIC};
use std::{
    fs::File,
    io,
    os::{
        fd::AsRawFd,
        unix::fs::{FileExt, FileTypeExt, MetadataExt},
    },
    path::Path,
};

nix::ioctl_read!(fs_ioc_getflags, b'f', 1, nix::libc::c_long);

/// `EXT4_INLINE_DATA_FL` (`lsattr`'s `N`): the data is in the inode.
const INLINE_DATA_FL: nix::libc::c_long = 0x1000_0000;

/// `FS_IMMUTABLE_FL` and `FS_APPEND_FL` (`lsattr`'s `i` and `a`).
const IMMUTABLE_FL: nix::libc::c_long = 0x10;
const APPEND_FL: nix::libc::c_long = 0x20;

/// Flags of files whose blocks `EXT4_IOC_DEFRAG` does not move (or not
/// without refusing): encrypted (`E`), journaled data (`j`), verity (`V`),
/// DAX (`x`); and `EXT4_EXTENTS_FL` (`e`), without which it refuses too.
const ENCRYPT_FL: nix::libc::c_long = 0x800;
const JOURNAL_DATA_FL: nix::libc::c_long = 0x4000;
const VERITY_FL: nix::libc::c_long = 0x10_0000;
const DAX_FL: nix::libc::c_long = 0x200_0000;
const EXTENTS_FL: nix::libc::c_long = 0x8_0000;

/// The file's inode flags (`lsattr`), `None` when they cannot be read.
fn flags(file: &File) -> Option<nix::libc::c_long> {
    let mut flags: nix::libc::c_long = 0;
    // SAFETY: FS_IOC_GETFLAGS writes an int into `flags`, which is larger.
    let res = unsafe { fs_ioc_getflags(file.as_raw_fd(), &mut flags) };
    res.ok().map(|_| flags)
}

/// Whether `file`'s data is stored in its inode (inline_data): such a
/// file has no blocks to move or place. False when the flags cannot be
/// read.
pub fn has_inline_data(file: &File) -> bool {
    flags(file).is_some_and(|f| f & INLINE_DATA_FL != 0)
}

/// Whether `file` is immutable or append-only, so its blocks cannot be
/// moved. True when the flags cannot be read (nothing is known).
pub fn is_immutable_or_append(file: &File) -> bool {
    flags(file).is_none_or(|f| f & (IMMUTABLE_FL | APPEND_FL) != 0)
}

/// Whether the module can move `file`'s blocks as far as its flags tell:
/// extent-mapped, and none of immutable, append-only, inline data,
/// encrypted, journaled data, verity or DAX. False when the flags cannot
/// be read. (A block-mapped file from ext3, say, would fail the move.)
pub fn movable(file: &File) -> bool {
    let never = IMMUTABLE_FL | APPEND_FL | INLINE_DATA_FL | ENCRYPT_FL | JOURNAL_DATA_FL;
    flags(file).is_some_and(|f| f & EXTENTS_FL != 0 && f & (never | VERITY_FL | DAX_FL) == 0)
}

/// Why no run can move the blocks of `file`, as its flags tell: immutable,
/// append-only, block-mapped (not extent-mapped), encrypted, journaled
/// data, verity or DAX; `None` when the flags allow a move or cannot be
/// read.
pub fn unmovable_by_flags(file: &File) -> Option<&'static str> {
    let f = flags(file)?;
    Some(if f & IMMUTABLE_FL != 0 {
        "immutable (chattr +i)"
    } else if f & APPEND_FL != 0 {
        "append-only (chattr +a)"
    } else if f & INLINE_DATA_FL != 0 {
        return None;
    } else if f & EXTENTS_FL == 0 {
        "block-mapped (ext3-style indirect blocks): only extent-mapped files can be moved"
    } else if f & ENCRYPT_FL != 0 {
        "encrypted: ext4 does not move encrypted files' blocks"
    } else if f & JOURNAL_DATA_FL != 0 {
        "journaled data (chattr +j): ext4 does not move such files' blocks"
    } else if f & VERITY_FL != 0 {
        "fs-verity: ext4 does not move such files' blocks"
    } else if f & DAX_FL != 0 {
        "DAX: no page cache to move the blocks through"
    } else {
        return None;
    })
}

/// Checks that `file` (opened from `path`) is on ext4 and returns the
/// filesystem's block size in bytes.
pub fn block_size(file: &File, path: &Path) -> Result<u64, Error> {
    let st = fstatfs(file).map_err(|errno| Error::Sys {
        path: path.into(),
        op: "statfs",
        errno,
    })?;
    if st.filesystem_type() != EXT4_SUPER_MAGIC {
        return Err(Error::NotExt4 {
            path: path.into(),
            fs_type: st.filesystem_type().0 as u64,
        });
    }
    Ok(st.block_size() as u64)
}

/// The 1024-byte ext4 superblock on `device` (1024 bytes in), if it holds
/// one. With `dev`, `device` must be that block device (a mount's source
/// may name something else, such as `/dev/root`).
pub fn read_superblock(device: &Path, dev: Option<u64>) -> io::Result<[u8; 1024]> {
    let f = File::open(device)?;
    if let Some(dev) = dev {
        let meta = f.metadata()?;
        if !meta.file_type().is_block_device() || meta.rdev() != dev {
            return Err(io::Error::other("not the filesystem's block device"));
        }
    }
    let mut sb = [0u8; 1024];
    f.read_exact_at(&mut sb, 1024)?;
    if u16::from_le_bytes([sb[0x38], sb[0x39]]) != 0xef53 {
        return Err(io::Error::other("not an ext4 superblock"));
    }
    Ok(sb)
}

/// `EXT4_FEATURE_COMPAT_HAS_JOURNAL` and `EXT4_FEATURE_COMPAT_FAST_COMMIT`.
pub const COMPAT_HAS_JOURNAL: u32 = 0x4;
pub const COMPAT_FAST_COMMIT: u32 = 0x400;

/// `s_feature_compat` of a superblock [`read_superblock`] read.
pub fn compat_features(sb: &[u8; 1024]) -> u32 {
    u32::from_le_bytes([sb[0x5c], sb[0x5d], sb[0x5e], sb[0x5f]])
}
