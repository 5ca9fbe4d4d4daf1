//! `e4defrag`: ext4 goal-directed online defragmentation, userspace side.
//!
//! Defragments files, colocates sets of files and reports fragmentation,
//! through the `ext4_defrag` module's `EXT4_IOC_DEFRAG` or the stock
//! kernel's `EXT4_IOC_MOVE_EXT`; answers the block query (`--map`) with the
//! module's `EXT4_IOC_FIBMAP` or `FS_IOC_FIEMAP`.

pub mod blockmap;
pub mod consolidate;
pub mod defrag;
pub mod diskmap;
pub mod dryrun;
pub mod engine;
pub mod error;
pub mod ext4fs;
pub mod fiemap;
pub mod fsmap;
pub mod interrupt;
pub mod layout;
pub mod makeroom;
pub mod mounts;
pub mod moveext;
pub mod output;
pub mod progress;
pub mod readtime;
pub mod record;
pub mod report;
pub mod roomplan;
pub mod score;
pub mod setplan;
pub mod unattended;
pub mod walk;

/// The placement plan (where data goes, from the free space there is),
/// shared with the module.
#[path = "../../../rust/placement.rs"]
pub mod placement;

/// Extent counting and the "is it worth it" rule, shared with the module.
#[path = "../../../rust/plan.rs"]
pub mod plan;

/// The ioctl ABI, shared word for word with the kernel module.
#[path = "../../../rust/uapi.rs"]
#[allow(dead_code)]
pub mod uapi;
