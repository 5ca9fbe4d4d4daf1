//! `FS_IOC_FIEMAP`, the kernel's generic extent query.

use nix::errno::Errno;
use std::{mem::size_of, os::fd::AsRawFd};

/// `FIEMAP_FLAG_SYNC`: write dirty data back before mapping.
const FLAG_SYNC: u32 = 0x1;
/// `FIEMAP_EXTENT_LAST`: the file's last extent.
const EXTENT_LAST: u32 = 0x1;
/// `FIEMAP_EXTENT_DELALLOC`.
pub const EXTENT_DELALLOC: u32 = 0x4;
/// `FIEMAP_EXTENT_DATA_INLINE`: the data is in the inode (inline_data);
/// `physical` is the inode's place in the inode table, not a data block.
pub const EXTENT_DATA_INLINE: u32 = 0x200;
/// `FIEMAP_EXTENT_UNWRITTEN`.
pub const EXTENT_UNWRITTEN: u32 = 0x800;

#[repr(C)]
#[derive(Default)]
struct Header {
    start: u64,
    length: u64,
    flags: u32,
    mapped_extents: u32,
    extent_count: u32,
    reserved: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct RawExtent {
    logical: u64,
    physical: u64,
    length: u64,
    reserved64: [u64; 2],
    flags: u32,
    reserved: [u32; 3],
}

/// `struct fiemap` with room for one extent.
#[repr(C)]
#[derive(Default)]
struct Request {
    header: Header,
    extents: [RawExtent; 1],
}

/// Extents asked for per call by [`extents`].
const BATCH: usize = 256;

/// `struct fiemap` with room for [`BATCH`] extents.
#[repr(C)]
struct BatchRequest {
    header: Header,
    extents: [RawExtent; BATCH],
}

nix::ioctl_readwrite_bad!(
    fs_ioc_fiemap,
    nix::request_code_readwrite!(b'f', 11, size_of::<Header>()),
    Request
);
nix::ioctl_readwrite_bad!(
    fs_ioc_fiemap_batch,
    nix::request_code_readwrite!(b'f', 11, size_of::<Header>()),
    BatchRequest
);

/// One extent, in bytes as FIEMAP reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub logical: u64,
    pub physical: u64,
    pub length: u64,
    pub flags: u32,
}

/// The first extent that ends after byte `start`, after writing back dirty
/// data; `None` when there is none.
pub fn first_extent_from(file: &impl AsRawFd, start: u64) -> Result<Option<Extent>, Errno> {
    let mut req = Request {
        header: Header {
            start,
            length: u64::MAX - start,
            flags: FLAG_SYNC,
            extent_count: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    // SAFETY: `req` is a `struct fiemap` followed by room for the one
    // extent announced in `extent_count`; the kernel writes no further.
    unsafe { fs_ioc_fiemap(file.as_raw_fd(), &mut req) }?;
    if req.header.mapped_extents == 0 {
        return Ok(None);
    }
    let e = req.extents[0];
    Ok(Some(Extent {
        logical: e.logical,
        physical: e.physical,
        length: e.length,
        flags: e.flags,
    }))
}

/// All extents of `file`, in logical order, after writing back dirty data.
pub fn extents(file: &impl AsRawFd) -> Result<Vec<Extent>, Errno> {
    let mut out = Vec::new();
    let mut req = Box::new(BatchRequest {
        header: Header::default(),
        extents: [RawExtent::default(); BATCH],
    });
    let mut start = 0;
    loop {
        req.header = Header {
            start,
            length: u64::MAX - start,
            flags: FLAG_SYNC,
            extent_count: BATCH as u32,
            ..Default::default()
        };
        // SAFETY: `req` is a `struct fiemap` followed by room for the
        // `extent_count` extents it announces; the kernel writes no further.
        unsafe { fs_ioc_fiemap_batch(file.as_raw_fd(), &mut *req) }?;
        let n = (req.header.mapped_extents as usize).min(BATCH);
        out.extend(req.extents[..n].iter().map(|e| Extent {
            logical: e.logical,
            physical: e.physical,
            length: e.length,
            flags: e.flags,
        }));
        match req.extents[..n].last() {
            Some(last) if n == BATCH && last.flags & EXTENT_LAST == 0 => {
                start = last.logical + last.length;
            }
            _ => return Ok(out),
        }
    }
}
