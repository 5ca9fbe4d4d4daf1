//! Where is a logical block? Asked of the module (`EXT4_IOC_FIBMAP`) or,
//! without it, of `FS_IOC_FIEMAP`.

use crate::{error::Error, fiemap, uapi};
use nix::errno::Errno;
use std::{fmt, fs::File, os::fd::AsRawFd, path::Path};

/// Which kernel interface answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The module when it answers, FIEMAP otherwise.
    Auto,
    /// Only the module's `EXT4_IOC_FIBMAP`.
    Module,
    /// Only `FS_IOC_FIEMAP`.
    Fiemap,
}

/// What a run of blocks is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Hole,
    Mapped,
    Unwritten,
    Delayed,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Hole => "hole",
            State::Mapped => "mapped",
            State::Unwritten => "unwritten",
            State::Delayed => "delayed",
        })
    }
}

/// The answer for one logical block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Physical block, 0 for a hole.
    pub pblk: u64,
    /// Blocks from the asked one on in the same state; `None` for a hole
    /// that runs to the end of the address space.
    pub len: Option<u64>,
    pub state: State,
    /// Which backend answered.
    pub source: Backend,
}

nix::ioctl_readwrite_bad!(ext4_ioc_fibmap, uapi::EXT4_IOC_FIBMAP, uapi::FibmapData);

/// Asks the module where logical block `lblk` of `file` is.
pub fn query_module(file: &impl AsRawFd, lblk: u64) -> Result<Mapping, Errno> {
    let mut req = uapi::FibmapData {
        lblk,
        ..Default::default()
    };
    // SAFETY: `req` is a valid `struct ext4_fibmap_data`, the size the
    // command number encodes.
    unsafe { ext4_ioc_fibmap(file.as_raw_fd(), &mut req) }?;
    let state = match req.state {
        uapi::FIBMAP_HOLE => State::Hole,
        uapi::FIBMAP_MAPPED => State::Mapped,
        uapi::FIBMAP_UNWRITTEN => State::Unwritten,
        uapi::FIBMAP_DELAYED => State::Delayed,
        _ => return Err(Errno::EPROTO),
    };
    Ok(Mapping {
        pblk: req.pblk,
        len: Some(req.len.into()),
        state,
        source: Backend::Module,
    })
}

/// The answer for block `lblk` given the first FIEMAP extent that ends
/// after it (`block_size` in bytes).
pub fn mapping_from_extent(next: Option<fiemap::Extent>, lblk: u64, block_size: u64) -> Mapping {
    let pos = lblk * block_size;
    let hole = |len| Mapping {
        pblk: 0,
        len,
        state: State::Hole,
        source: Backend::Fiemap,
    };
    let Some(e) = next else {
        return hole(None);
    };
    if e.logical > pos {
        return hole(Some((e.logical - pos) / block_size));
    }
    let skip = pos - e.logical;
    let state = if e.flags & fiemap::EXTENT_DELALLOC != 0 {
        State::Delayed
    } else if e.flags & fiemap::EXTENT_UNWRITTEN != 0 {
        State::Unwritten
    } else {
        State::Mapped
    };
    Mapping {
        pblk: if state == State::Delayed {
            0
        } else {
            (e.physical + skip) / block_size
        },
        len: Some((e.length - skip).div_ceil(block_size)),
        state,
        source: Backend::Fiemap,
    }
}

/// Asks FIEMAP where logical block `lblk` of `file` is.
pub fn query_fiemap(file: &impl AsRawFd, lblk: u64, block_size: u64) -> Result<Mapping, Errno> {
    let pos = lblk.checked_mul(block_size).ok_or(Errno::EINVAL)?;
    let next = fiemap::first_extent_from(file, pos)?;
    Ok(mapping_from_extent(next, lblk, block_size))
}

/// Where is logical block `lblk` of `file` (opened from `path`)?
pub fn query(
    file: &File,
    path: &Path,
    lblk: u64,
    block_size: u64,
    backend: Backend,
) -> Result<Mapping, Error> {
    let sys = |op, errno| Error::Sys {
        path: path.into(),
        op,
        errno,
    };
    match backend {
        Backend::Module => query_module(file, lblk).map_err(|e| sys("EXT4_IOC_FIBMAP", e)),
        Backend::Fiemap => {
            query_fiemap(file, lblk, block_size).map_err(|e| sys("FS_IOC_FIEMAP", e))
        }
        Backend::Auto => match query_module(file, lblk) {
            Err(Errno::ENOTTY) => {
                query_fiemap(file, lblk, block_size).map_err(|e| sys("FS_IOC_FIEMAP", e))
            }
            r => r.map_err(|e| sys("EXT4_IOC_FIBMAP", e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BS: u64 = 4096;

    fn ext(logical: u64, physical: u64, length: u64, flags: u32) -> Option<fiemap::Extent> {
        Some(fiemap::Extent {
            logical: logical * BS,
            physical: physical * BS,
            length: length * BS,
            flags,
        })
    }

    #[test]
    fn block_inside_an_extent_is_offset_from_its_start() {
        let m = mapping_from_extent(ext(10, 1000, 8, 0), 13, BS);
        assert_eq!((m.pblk, m.len, m.state), (1003, Some(5), State::Mapped));
    }

    #[test]
    fn block_before_the_next_extent_is_a_hole_up_to_it() {
        let m = mapping_from_extent(ext(10, 1000, 8, 0), 4, BS);
        assert_eq!((m.pblk, m.len, m.state), (0, Some(6), State::Hole));
    }

    #[test]
    fn no_extent_after_the_block_is_an_open_hole() {
        let m = mapping_from_extent(None, 4, BS);
        assert_eq!((m.pblk, m.len, m.state), (0, None, State::Hole));
    }

    #[test]
    fn unwritten_and_delayed_flags_are_reported() {
        let m = mapping_from_extent(ext(0, 500, 4, fiemap::EXTENT_UNWRITTEN), 1, BS);
        assert_eq!((m.pblk, m.state), (501, State::Unwritten));
        let m = mapping_from_extent(ext(0, 0, 4, fiemap::EXTENT_DELALLOC), 1, BS);
        assert_eq!((m.pblk, m.state), (0, State::Delayed));
    }

    #[test]
    fn partial_last_block_counts_as_a_block() {
        let mut e = ext(0, 100, 1, 0).unwrap();
        e.length = 100;
        let m = mapping_from_extent(Some(e), 0, BS);
        assert_eq!(m.len, Some(1));
    }

    #[test]
    fn fibmap_request_checks() {
        let req = |lblk, flags, reserved| uapi::FibmapData {
            lblk,
            flags,
            reserved,
            ..Default::default()
        };
        assert_eq!(
            uapi::check_fibmap_request(&req(uapi::MAX_LBLK, 0, 0)),
            Ok(0xffff_fffe)
        );
        assert_eq!(
            uapi::check_fibmap_request(&req(uapi::MAX_LBLK + 1, 0, 0)),
            Err(uapi::RequestError::BlockOutOfRange)
        );
        assert_eq!(
            uapi::check_fibmap_request(&req(0, 2, 0)),
            Err(uapi::RequestError::UnknownFlags)
        );
        assert_eq!(
            uapi::check_fibmap_request(&req(0, 0, 1)),
            Err(uapi::RequestError::ReservedNotZero)
        );
    }
}
