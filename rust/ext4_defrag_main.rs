// SPDX-License-Identifier: GPL-2.0

//! ext4 goal-directed online defragmentation.
//!
//! Registers with the test kernel's ext4 ioctl hook (see `patches/`) and
//! answers the commands of `include/uapi/linux/ext4_defrag.h`:
//! `EXT4_IOC_FIBMAP` (where a file or directory's block is) and
//! `EXT4_IOC_DEFRAG` (move a file's data into contiguous blocks allocated
//! from a goal).

use kernel::prelude::*;

mod blockquery;
mod defrag;
mod ext4;
mod hook;
mod ioctl;
#[cfg(CONFIG_KUNIT)]
mod kunit_tests;
// Shared with the tool: where data goes, from the free space there is.
#[allow(dead_code, unreachable_pub)]
mod placement;
// Shared with the tool: counting extents and deciding what is worth it.
#[allow(dead_code, unreachable_pub)]
mod plan;
// Shared with the tool, whose library exports it (hence `pub`); not every
// item of the ABI is used on both sides.
#[allow(dead_code, unreachable_pub)]
mod uapi;

module! {
    type: Ext4Defrag,
    name: "ext4_defrag",
    author: "ext4-defrag developers",
    description: "ext4 goal-directed online defragmentation",
    license: "GPL",
}

struct Ext4Defrag {
    _hook: hook::Registration<ioctl::Dispatch>,
}

impl kernel::Module for Ext4Defrag {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let hook = hook::Registration::new(module)?;
        pr_info!("registered with the ext4 ioctl hook\n");
        Ok(Self { _hook: hook })
    }
}
