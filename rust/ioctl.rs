// SPDX-License-Identifier: GPL-2.0

//! Entry point of the hooked ioctls: decodes the command and turns the
//! handler's `Result` into the errno ext4 returns.

use crate::{blockquery, defrag, ext4::File, uapi};
use kernel::{
    bindings,
    ffi::{c_long, c_uint, c_ulong},
    prelude::*,
};

/// Called by ext4 for every command in the hooked range.
///
/// # Safety
///
/// `filp` is a file of an ext4 filesystem that the caller holds for the
/// length of the call; `arg` is the user's argument.
pub(crate) unsafe extern "C" fn dispatch(
    filp: *mut bindings::file,
    cmd: c_uint,
    arg: c_ulong,
) -> c_long {
    // SAFETY: ext4 passes the file it is handling and keeps it open for the
    // call (function safety requirement).
    let file = unsafe { File::from_raw(filp) };
    let res = match cmd {
        uapi::EXT4_IOC_FIBMAP => blockquery::ioctl(&file, arg),
        uapi::EXT4_IOC_DEFRAG => defrag::ioctl(&file, arg),
        _ => Err(ENOTTY),
    };
    match res {
        Ok(()) => 0,
        Err(e) => e.to_errno() as c_long,
    }
}
