//! Is a path on ext4, and with which block size?

use crate::error::Error;
use nix::sys::statfs::{fstatfs, EXT4_SUPER_MAGIC};
use std::{fs::File, path::Path};

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
