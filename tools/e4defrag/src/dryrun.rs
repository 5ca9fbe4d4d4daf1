//! `--dry-run`: what a run would do, planned from what the kernel reports
//! without writing anything (the files' layouts from FIEMAP, the free
//! space from GETFSMAP), with the placement rules the module's own plan
//! follows (`placement`, `setplan`). For the module that is its plan up
//! to what changes between the two calls; for `EXT4_IOC_MOVE_EXT`, whose
//! donor ext4's allocator places as it likes, an estimate of what a good
//! allocation gives. Files are opened read-only, so a dry run works on a
//! read-only mount, and nothing is allocated, not even for a moment.

use crate::{fsmap, layout::Layout, setplan};
use nix::errno::Errno;
use std::os::fd::AsRawFd;

/// The layouts `layouts` (read order) would have, planned together from
/// `goal` into the free space of `fs` (any file of the filesystem):
/// `None` for a file the free space has no room for (or with no layout).
pub fn plan(
    fs: &impl AsRawFd,
    block_size: u64,
    goal: u64,
    layouts: &[Option<&Layout>],
) -> Result<Vec<Option<Layout>>, Errno> {
    let free = fsmap::free_runs(fs, block_size)?;
    let segments = setplan::plan(&free, goal, layouts);
    Ok(layouts
        .iter()
        .zip(&segments)
        .map(|(l, segs)| match l {
            Some(l) if !segs.is_empty() => Some(setplan::placed(l, segs)),
            _ => None,
        })
        .collect())
}
