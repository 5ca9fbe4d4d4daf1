//! `e4defrag`: ext4 goal-directed online defragmentation, userspace side.
//!
//! Today: the block query (`--map`), answered by the `ext4_defrag` module's
//! `EXT4_IOC_FIBMAP` or, on kernels without it, by `FS_IOC_FIEMAP`.

pub mod blockmap;
pub mod error;
pub mod ext4fs;
pub mod fiemap;

/// The ioctl ABI, shared word for word with the kernel module.
#[path = "../../../rust/uapi.rs"]
#[allow(dead_code)]
pub mod uapi;
