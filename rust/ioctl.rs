// SPDX-License-Identifier: GPL-2.0

//! Entry point of the hooked ioctls: decodes the command.

use crate::{blockquery, defrag, ext4::File, hook::IoctlHandler, uapi};
use kernel::prelude::*;

/// The handler registered with ext4's ioctl hook.
pub(crate) struct Dispatch;

impl IoctlHandler for Dispatch {
    fn ioctl(file: &File<'_>, cmd: u32, arg: usize) -> Result {
        match cmd {
            uapi::EXT4_IOC_FIBMAP => blockquery::ioctl(file, arg),
            uapi::EXT4_IOC_DEFRAG => defrag::ioctl(file, arg),
            _ => Err(ENOTTY),
        }
    }
}
