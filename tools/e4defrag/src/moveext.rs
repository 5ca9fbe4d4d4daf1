//! The stock kernel's interface: `EXT4_IOC_MOVE_EXT` swaps blocks between
//! a file and a donor file the tool filled with `fallocate`.

use nix::{
    errno::Errno,
    fcntl::{fallocate, posix_fadvise, FallocateFlags, OFlag, PosixFadviseAdvice},
};
use std::{
    fs::{File, OpenOptions},
    io,
    os::{fd::AsRawFd, unix::fs::OpenOptionsExt},
    path::Path,
    sync::Mutex,
};

/// `struct move_extent` of `<linux/ext4.h>`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct MoveExtent {
    reserved: u32,
    donor_fd: u32,
    orig_start: u64,
    donor_start: u64,
    len: u64,
    moved_len: u64,
}

nix::ioctl_readwrite!(ext4_ioc_move_ext, b'f', 15, MoveExtent);

/// Swaps `len` blocks of `orig` from logical block `orig_start` with the
/// donor's from `donor_start`: `orig`'s data ends up in the donor's old
/// blocks. Returns the blocks moved; holes in `orig` are skipped.
pub fn move_ext(
    orig: &File,
    donor: &File,
    orig_start: u64,
    donor_start: u64,
    len: u64,
) -> Result<u64, Errno> {
    let mut req = MoveExtent {
        donor_fd: donor.as_raw_fd() as u32,
        orig_start,
        donor_start,
        len,
        ..Default::default()
    };
    // SAFETY: `req` is a valid `struct move_extent`, the size the command
    // number encodes; the kernel only reads and writes its fields.
    unsafe { ext4_ioc_move_ext(orig.as_raw_fd(), &mut req) }?;
    Ok(req.moved_len)
}

/// The most one read-ahead call reads for files on the device `dev`, in
/// bytes: the kernel caps `POSIX_FADV_WILLNEED` at the larger of the
/// read-ahead window (`read_ahead_kb`) and the largest request
/// (`max_sectors_kb`) of the disk. 128 KiB (the usual window) when sysfs
/// does not say.
pub fn read_ahead_chunk(dev: u64) -> u64 {
    static KNOWN: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());
    once_per_device(&KNOWN, dev, read_ahead_chunk_of)
}

/// `f(dev)`, asked once per device and then remembered in `known`: a run
/// of many small files would otherwise ask sysfs or the disk for each.
fn once_per_device<T: Copy>(known: &Mutex<Vec<(u64, T)>>, dev: u64, f: fn(u64) -> T) -> T {
    let mut known = known.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&(_, v)) = known.iter().find(|(d, _)| *d == dev) {
        return v;
    }
    let v = f(dev);
    known.push((dev, v));
    v
}

/// Whether an `fsync` on the filesystem of device `dev` may be served by
/// a fast commit (the `fast_commit` feature, with a journal). A fast
/// commit logs an inode, not the extent swap `EXT4_IOC_MOVE_EXT` made,
/// and released kernels do not make a move fall back to a full commit:
/// an application that writes a moved file and calls `fsync` before the
/// swap commits loses that write in a power cut. True when the
/// superblock cannot be read (unprivileged, no device node): the caller
/// then commits as if it were set.
pub fn fast_commit_possible(dev: u64) -> bool {
    static KNOWN: Mutex<Vec<(u64, bool)>> = Mutex::new(Vec::new());
    once_per_device(&KNOWN, dev, |dev| {
        compat_features(dev).is_none_or(|f| {
            f & crate::ext4fs::COMPAT_HAS_JOURNAL != 0 && f & crate::ext4fs::COMPAT_FAST_COMMIT != 0
        })
    })
}

/// `s_feature_compat` of the ext4 filesystem with device number `dev`,
/// read from the device its mount names; `None` when that cannot be read.
fn compat_features(dev: u64) -> Option<u32> {
    let mounts = crate::mounts::read().ok()?;
    let mount = crate::mounts::whole_fs(&mounts, crate::mounts::split_dev(dev))?;
    let sb = crate::ext4fs::read_superblock(Path::new(&mount.source), Some(dev)).ok()?;
    Some(crate::ext4fs::compat_features(&sb))
}

/// Commits the filesystem of `file` (`syncfs`: a full journal commit, and
/// the data written before it).
pub fn commit(file: &File) -> Result<(), Errno> {
    nix::unistd::syncfs(file.as_raw_fd())
}

fn read_ahead_chunk_of(dev: u64) -> u64 {
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let kib = |name: &str| {
        // A whole disk has queue/; a partition's is its parent's.
        ["queue", "../queue"].iter().find_map(|q| {
            std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/{q}/{name}"))
                .ok()?
                .trim()
                .parse::<u64>()
                .ok()
        })
    };
    let most = kib("read_ahead_kb")
        .unwrap_or(0)
        .max(kib("max_sectors_kb").unwrap_or(0));
    if most == 0 {
        128 << 10
    } else {
        most << 10
    }
}

/// Asks the kernel to read `len` blocks of `file` from logical block
/// `start` into the page cache (`POSIX_FADV_WILLNEED`) in calls of
/// `chunk` bytes (see [`read_ahead_chunk`]), so that a move that follows
/// finds them there instead of reading them a page (one request) at a
/// time. Only advice: errors are ignored.
pub fn read_ahead(file: &File, start: u64, len: u64, block_size: u64, chunk: u64) {
    let (Ok(mut at), Ok(end), Ok(chunk)) = (
        i64::try_from(start * block_size),
        i64::try_from((start + len) * block_size),
        i64::try_from(chunk.max(block_size)),
    ) else {
        return;
    };
    while at < end {
        let n = chunk.min(end - at);
        let _ = posix_fadvise(
            file.as_raw_fd(),
            at,
            n,
            PosixFadviseAdvice::POSIX_FADV_WILLNEED,
        );
        at += n;
    }
}

/// An unnamed donor file in `dir` (`O_TMPFILE`): it never shows up in the
/// directory and its blocks are freed when it is closed, or at the next
/// mount after a crash.
pub fn donor_in(dir: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(OFlag::O_TMPFILE.bits())
        .open(dir)
}

/// Allocates `len` blocks at logical block `start` of `donor` (extending
/// its size), so that `EXT4_IOC_MOVE_EXT` can take them.
pub fn allocate(donor: &File, start: u64, len: u64, block_size: u64) -> Result<(), Errno> {
    let off = i64::try_from(start * block_size).map_err(|_| Errno::EFBIG)?;
    let n = i64::try_from(len * block_size).map_err(|_| Errno::EFBIG)?;
    fallocate(donor.as_raw_fd(), FallocateFlags::empty(), off, n)
}
