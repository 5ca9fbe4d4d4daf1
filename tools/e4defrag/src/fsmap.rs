//! The free space of a mounted ext4, from `FS_IOC_GETFSMAP` (ext4 reports
//! its free extents through it since Linux 4.12; ext4 checks no capability
//! for it, XFS needs CAP_SYS_ADMIN).
//! ext4 reads the same buddy bitmaps as its block allocator, so a run
//! reported free here is what the module's placement plan sees too.

use crate::placement::{Run, RunJoiner};
use nix::{errno::Errno, sys::stat::fstat};
use std::os::fd::AsRawFd;

/// `struct fsmap` (`include/uapi/linux/fsmap.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct Fsmap {
    device: u32,
    flags: u32,
    physical: u64,
    owner: u64,
    offset: u64,
    length: u64,
    reserved: [u64; 3],
}

/// `struct fsmap_head` without its flexible array.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct Head {
    iflags: u32,
    oflags: u32,
    count: u32,
    entries: u32,
    reserved: [u64; 6],
    keys: [Fsmap; 2],
}

/// Records asked for per call.
const BATCH: usize = 512;

#[repr(C)]
struct Request {
    head: Head,
    recs: [Fsmap; BATCH],
}

/// Free space (`FMR_OWN_FREE = FMR_OWNER(0, 1)`).
const OWN_FREE: u64 = 1;
/// The record is the last one.
const OF_LAST: u32 = 0x20;

nix::ioctl_readwrite_bad!(
    fs_ioc_getfsmap,
    nix::request_code_readwrite!(b'X', 59, size_of::<Head>()),
    Request
);

/// The free runs, in blocks of `block_size` bytes, of the filesystem
/// `file` is on (its data device), ascending and joined where ext4
/// reports them cut at block group ends.
pub fn free_runs(file: &impl AsRawFd, block_size: u64) -> Result<Vec<Run>, Errno> {
    free_runs_and_end(file, block_size).map(|(runs, _)| runs)
}

/// [`free_runs`], and where the filesystem's last record ends (its size
/// in blocks, metadata included).
pub fn free_runs_and_end(file: &impl AsRawFd, block_size: u64) -> Result<(Vec<Run>, u64), Errno> {
    let mut joiner = RunJoiner::default();
    let mut out = Vec::new();
    let end = space(file, block_size, |owner, run| {
        if owner == Owner::Free {
            out.extend(joiner.push(run));
        }
    })?;
    out.extend(joiner.finish());
    Ok((out, end))
}

/// What ext4's GETFSMAP says a run of blocks holds. ext4 has no reverse
/// map: file data, directories and extent-tree blocks are all "unknown".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Free,
    /// Superblocks, descriptors, bitmaps, inode tables, the journal.
    Metadata,
    /// In use by some inode (data, directory or extent-tree block).
    InUse,
}

/// `FMR_OF_SPECIAL_OWNER`: `owner` is a special owner, not an inode.
const OF_SPECIAL_OWNER: u32 = 0x10;
/// `FMR_OWN_UNKNOWN`: ext4's owner of every block in use by an inode.
const OWN_UNKNOWN: u64 = 2;

/// Calls `each` with every run of the filesystem `file` is on (its data
/// device), ascending, in blocks of `block_size` bytes; returns where the
/// last record ends (the filesystem's size in blocks). ext4 reports all
/// free space, but not every stretch in use (a flex group's groups whose
/// blocks are all taken came back as no record at all on a full 1 TiB
/// filesystem): a stretch between records is in use.
pub fn space(
    file: &impl AsRawFd,
    block_size: u64,
    mut each: impl FnMut(Owner, Run),
) -> Result<u64, Errno> {
    // GETFSMAP names devices as stat() does (new_encode_dev).
    let dev = fstat(file.as_raw_fd())?.st_dev as u32;
    let mut req = Box::new(Request {
        head: Head::default(),
        recs: [Fsmap::default(); BATCH],
    });
    req.head.keys[0].device = dev;
    req.head.keys[1] = Fsmap {
        device: dev,
        flags: u32::MAX,
        physical: u64::MAX,
        owner: u64::MAX,
        offset: u64::MAX,
        length: 0,
        reserved: [0; 3],
    };
    let mut end = 0;
    // One past the last block a record covered.
    let mut covered = 0;
    loop {
        req.head.count = BATCH as u32;
        req.head.entries = 0;
        // SAFETY: `req` is a `struct fsmap_head` followed by room for the
        // `count` records it announces; the kernel writes no further.
        unsafe { fs_ioc_getfsmap(file.as_raw_fd(), &mut *req) }?;
        let n = (req.head.entries as usize).min(BATCH);
        for r in req.recs[..n].iter().filter(|r| r.device == dev) {
            end = end.max((r.physical + r.length) / block_size);
            let owner = match (r.owner, r.flags & OF_SPECIAL_OWNER != 0) {
                (OWN_FREE, _) => Owner::Free,
                (OWN_UNKNOWN, _) | (_, false) => Owner::InUse,
                (_, true) => Owner::Metadata,
            };
            let run = Run {
                start: r.physical / block_size,
                len: r.length / block_size,
            };
            if run.start > covered {
                let gap = Run {
                    start: covered,
                    len: run.start - covered,
                };
                each(Owner::InUse, gap);
            }
            if run.len > 0 {
                covered = covered.max(run.end());
                each(owner, run);
            }
        }
        match req.recs[..n].last() {
            Some(last) if last.flags & OF_LAST == 0 => req.head.keys[0] = *last,
            _ => break,
        }
    }
    Ok(end)
}
