// SPDX-License-Identifier: GPL-2.0

//! `EXT4_IOC_FIBMAP`: the physical block behind a logical block of a file
//! or directory.

use crate::{
    ext4::{File, MapState},
    uapi::{self, FibmapData},
};
use core::mem::size_of;
use kernel::{
    prelude::*,
    types::{AsBytes, FromBytes},
    uaccess::UserSlice,
};

// SAFETY: `FibmapData` is `repr(C)` of integers only, without padding (its
// size is asserted in `uapi`), so every byte pattern is a valid value.
unsafe impl FromBytes for FibmapData {}
// SAFETY: as above, it has no padding, so all its bytes are initialised.
unsafe impl AsBytes for FibmapData {}

/// How far ahead one lookup reports a run.
const MAX_RUN: u32 = i32::MAX as u32;

/// Maps the state ext4 reports to the ABI's `FIBMAP_*`.
pub(crate) fn abi_state(state: MapState) -> u32 {
    match state {
        MapState::Hole => uapi::FIBMAP_HOLE,
        MapState::Mapped => uapi::FIBMAP_MAPPED,
        MapState::Unwritten => uapi::FIBMAP_UNWRITTEN,
        MapState::Delayed => uapi::FIBMAP_DELAYED,
    }
}

/// Handles `EXT4_IOC_FIBMAP` for `file` with the user argument at `arg`.
///
/// Any open file or directory may be asked, as with `FS_IOC_FIEMAP`.
pub(crate) fn ioctl(file: &File<'_>, arg: usize) -> Result {
    let (mut reader, mut writer) = UserSlice::new(arg, size_of::<FibmapData>()).reader_writer();
    let mut req: FibmapData = reader.read()?;
    let lblk = uapi::check_fibmap_request(&req).map_err(|_| EINVAL)?;

    let inode = file.inode();
    let mut map = inode.map_block(lblk, MAX_RUN)?;
    if map.state == MapState::Delayed {
        // Report where the data goes, not that it has no place yet.
        file.write_back()?;
        map = inode.map_block(lblk, MAX_RUN)?;
    }

    req.pblk = map.pblk;
    req.len = map.len;
    req.state = abi_state(map.state);
    writer.write(&req)
}
