//! Making room for a `-r` set that no free run holds (module backend).
//!
//! Every defragmenter is bounded by the free runs it finds; with a goal
//! the tool can clear one instead. It picks the region of the set's size
//! that costs the fewest blocks of other files to clear (ties: nearest to
//! the set's directory), with nothing in it that cannot move (metadata,
//! directories, immutable, append-only or inline files), moves each file
//! that has blocks there, whole, into a free run outside the region that
//! holds it (`DEFRAG_GOAL_ONLY`, so never into the region), and leaves
//! the region free for the set's plan. A moved file never gets more
//! extents: it goes whole into one run. The blocks moved for others are
//! bounded by `max_ratio` times the set's size.

use crate::{defrag, engine, error::Error, fsmap, layout::Layout, mounts, placement::Run, walk};
use std::{
    collections::HashSet,
    fs::File,
    os::{fd::AsRawFd, unix::fs::MetadataExt},
    path::{Path, PathBuf},
};

/// A region made free for a set.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Room {
    /// First block of the region.
    pub start: u64,
    /// Blocks in the region (the set's size).
    pub len: u64,
    /// Blocks of other files moved out of it, and how many files.
    pub moved_blocks: u64,
    pub moved_files: u64,
    /// Blocks of the set's own files that lay in it (moved out first, then
    /// placed by the set's plan like the rest).
    pub set_blocks_moved: u64,
}

/// What making room came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A free run holds the set already.
    NotNeeded,
    /// The region is free now.
    Made(Room),
    /// The cheapest region would move `cost` blocks of other files, more
    /// than `limit` (`--max-evacuate` times the set's size).
    TooCostly { cost: u64, limit: u64 },
    /// No region without immovable blocks whose files fit elsewhere.
    NoRegion,
}

/// A file with data on the filesystem.
struct Owner {
    path: PathBuf,
    blocks: u64,
    /// One of the set's files.
    in_set: bool,
}

/// A stretch of the block space: free, data of `owners[i]`, or (between
/// them, implicitly) something that cannot move.
#[derive(Clone, Copy)]
struct Piece {
    start: u64,
    len: u64,
    owner: Option<usize>,
}

impl Piece {
    fn end(&self) -> u64 {
        self.start + self.len
    }
}

/// Regions tried, cheapest first, before giving up.
const MAX_CANDIDATES: usize = 64;

/// What room is wanted.
#[derive(Clone, Copy, Debug)]
pub struct Want {
    /// The set's size in blocks.
    pub blocks: u64,
    /// Of equally cheap regions, the one nearest this block.
    pub near: u64,
    /// At most this many times `blocks` of other files may be moved.
    pub max_ratio: f64,
}

/// Makes room for the files `set` on the filesystem of `dir_file`.
pub fn make_room(
    dir: &Path,
    dir_file: &File,
    set: &[PathBuf],
    block_size: u64,
    want: Want,
) -> Result<Outcome, Error> {
    let Want {
        blocks: set_blocks,
        near,
        max_ratio,
    } = want;
    // Blocks freed by earlier runs count as free once committed.
    nix::unistd::syncfs(dir_file.as_raw_fd()).map_err(Error::sys(dir, "syncfs"))?;
    let free =
        fsmap::free_runs(dir_file, block_size).map_err(Error::sys(dir, "FS_IOC_GETFSMAP"))?;
    if free.iter().any(|r| r.len >= set_blocks) {
        return Ok(Outcome::NotNeeded);
    }
    let (owners, mut pieces) = map_owners(dir, set, block_size)?;
    // A file of the set that no free run holds (a big file making room for
    // itself) cannot be moved out of the way first: its blocks are
    // obstacles to the region.
    let largest = free.iter().map(|r| r.len).max().unwrap_or(0);
    pieces.retain(|p| {
        p.owner
            .is_none_or(|o| !owners[o].in_set || owners[o].blocks <= largest)
    });
    pieces.extend(free.iter().map(|r| Piece {
        start: r.start,
        len: r.len,
        owner: None,
    }));
    pieces.sort_by_key(|p| p.start);

    // Every window that starts where a piece starts and covers only known
    // pieces (no immovable block), with the blocks of other files it costs.
    let mut candidates: Vec<(u64, u64, u64)> = Vec::new(); // (cost, distance, start)
    for i in 0..pieces.len() {
        if let Some(cost) = window_cost(&pieces, &owners, i, set_blocks) {
            let start = pieces[i].start;
            candidates.push((cost, start.abs_diff(near), start));
        }
    }
    candidates.sort_unstable();
    let limit = (max_ratio * set_blocks as f64) as u64;
    let Some(&(cheapest, _, _)) = candidates.first() else {
        return Ok(Outcome::NoRegion);
    };
    if cheapest > limit {
        return Ok(Outcome::TooCostly {
            cost: cheapest,
            limit,
        });
    }
    for &(cost, _, start) in candidates.iter().take(MAX_CANDIDATES) {
        if cost > limit {
            break;
        }
        let region = Run {
            start,
            len: set_blocks,
        };
        let Some(moves) = destinations(&pieces, &owners, &free, region) else {
            continue; // a file of the region fits nowhere else
        };
        let mut room = Room {
            start,
            len: set_blocks,
            ..Default::default()
        };
        for &(i, _) in &moves {
            if owners[i].in_set {
                room.set_blocks_moved += owners[i].blocks;
            } else {
                room.moved_blocks += owners[i].blocks;
                room.moved_files += 1;
            }
        }
        evacuate(&owners, &moves)?;
        nix::unistd::syncfs(dir_file.as_raw_fd()).map_err(Error::sys(dir, "syncfs"))?;
        return Ok(Outcome::Made(room));
    }
    Ok(Outcome::NoRegion)
}

/// The files of the filesystem that holds `dir` with their data pieces.
/// Files that cannot move (immutable, append-only, inline data, or that
/// cannot be opened for writing: a running program, an active swap file)
/// contribute no pieces: their blocks are obstacles, like metadata and
/// directories.
fn map_owners(
    dir: &Path,
    set: &[PathBuf],
    block_size: u64,
) -> Result<(Vec<Owner>, Vec<Piece>), Error> {
    let mounts = mounts::read().map_err(Error::io(Path::new("/proc/self/mountinfo"), "read"))?;
    let dev = dir.metadata().map_err(Error::io(dir, "stat"))?.dev();
    let root = mounts::whole_fs(&mounts, mounts::split_dev(dev))
        .map(|m| m.mount_point.clone())
        .ok_or_else(|| Error::Refused {
            path: dir.into(),
            reason: "the filesystem's root is not mounted here".into(),
        })?;
    let in_set: HashSet<(u64, u64)> = set
        .iter()
        .filter_map(|p| p.metadata().ok().map(|m| (m.dev(), m.ino())))
        .collect();
    let (files, _) = walk::files_under(&root, &mounts);
    let mut owners = Vec::new();
    let mut pieces = Vec::new();
    for path in files {
        // What the move will need: read-write (ETXTBSY for a busy file).
        let Ok(file) = File::options().read(true).write(true).open(&path) else {
            continue;
        };
        let Ok(meta) = file.metadata() else { continue };
        if crate::ext4fs::has_inline_data(&file) || crate::ext4fs::is_immutable_or_append(&file) {
            continue;
        }
        let Ok(layout) = Layout::of(&file, block_size) else {
            continue;
        };
        if layout.runs.is_empty() {
            continue;
        }
        let idx = owners.len();
        for r in &layout.runs {
            pieces.push(Piece {
                start: r.pblk,
                len: r.len,
                owner: Some(idx),
            });
        }
        owners.push(Owner {
            blocks: layout.blocks(),
            in_set: in_set.contains(&(meta.dev(), meta.ino())),
            path,
        });
    }
    Ok((owners, pieces))
}

/// The blocks of files not in the set that a window of `len` blocks from
/// `pieces[first].start` holds (whole files: a file is moved whole), or
/// `None` if it runs into a block that cannot move or past the end.
fn window_cost(pieces: &[Piece], owners: &[Owner], first: usize, len: u64) -> Option<u64> {
    let end = pieces[first].start + len;
    let mut seen: Vec<usize> = Vec::new();
    let mut cost = 0;
    let mut at = pieces[first].start;
    for p in &pieces[first..] {
        if at >= end {
            break;
        }
        if p.start != at {
            return None; // a gap: something that cannot move
        }
        if let Some(o) = p.owner {
            if !owners[o].in_set && !seen.contains(&o) {
                seen.push(o);
                cost += owners[o].blocks;
            }
        }
        at = p.end();
    }
    (at >= end).then_some(cost)
}

/// Where each file with data in `region` goes: a free run outside it that
/// holds the whole file, best fit, largest files first. `None` if one
/// fits nowhere.
fn destinations(
    pieces: &[Piece],
    owners: &[Owner],
    free: &[Run],
    region: Run,
) -> Option<Vec<(usize, u64)>> {
    let mut movers: Vec<usize> = pieces
        .iter()
        .filter(|p| p.start < region.end() && region.start < p.end())
        .filter_map(|p| p.owner)
        .collect();
    movers.sort_unstable();
    movers.dedup();
    movers.sort_by_key(|&o| std::cmp::Reverse(owners[o].blocks));
    // Free space outside the region.
    let mut outside: Vec<Run> = Vec::new();
    for r in free {
        if r.start < region.start {
            let end = r.end().min(region.start);
            outside.push(Run {
                start: r.start,
                len: end - r.start,
            });
        }
        if r.end() > region.end() {
            let start = r.start.max(region.end());
            outside.push(Run {
                start,
                len: r.end() - start,
            });
        }
    }
    let mut moves = Vec::new();
    for o in movers {
        let need = owners[o].blocks;
        let best = outside
            .iter_mut()
            .filter(|r| r.len >= need)
            .min_by_key(|r| r.len)?;
        moves.push((o, best.start));
        best.start += need;
        best.len -= need;
    }
    Some(moves)
}

/// Moves each file of `moves` whole to its destination, exactly there.
fn evacuate(owners: &[Owner], moves: &[(usize, u64)]) -> Result<(), Error> {
    for &(o, goal) in moves {
        let path = &owners[o].path;
        let (file, _) = engine::open_rw(path)?;
        let req = defrag::Request {
            goal,
            goal_only: true,
            unit_log2: 11,
            ..Default::default()
        };
        defrag::defrag_file(&file, path, req)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(blocks: u64, in_set: bool) -> Owner {
        Owner {
            path: PathBuf::from("f"),
            blocks,
            in_set,
        }
    }

    fn piece(start: u64, len: u64, owner: Option<usize>) -> Piece {
        Piece { start, len, owner }
    }

    #[test]
    fn window_cost_counts_whole_other_files_once() {
        // free 0..10, file 0 (20 blocks: 10..20 and 40..50), set file 1
        // at 20..30, free 30..40.
        let owners = [owner(20, false), owner(10, true)];
        let pieces = [
            piece(0, 10, None),
            piece(10, 10, Some(0)),
            piece(20, 10, Some(1)),
            piece(30, 10, None),
            piece(40, 10, Some(0)),
        ];
        assert_eq!(window_cost(&pieces, &owners, 0, 40), Some(20));
        // File 0 counted once although two of its pieces are inside.
        assert_eq!(window_cost(&pieces, &owners, 0, 50), Some(20));
        // The set's own file costs nothing.
        assert_eq!(window_cost(&pieces, &owners, 2, 20), Some(0));
        // Past the last known block: no window.
        assert_eq!(window_cost(&pieces, &owners, 3, 30), None);
    }

    #[test]
    fn window_cost_refuses_a_gap() {
        // Blocks 10..12 are neither free nor movable data (metadata, say).
        let owners = [owner(5, false)];
        let pieces = [
            piece(0, 10, None),
            piece(12, 5, Some(0)),
            piece(17, 50, None),
        ];
        assert_eq!(window_cost(&pieces, &owners, 0, 11), None);
        assert_eq!(window_cost(&pieces, &owners, 0, 10), Some(0));
        assert_eq!(window_cost(&pieces, &owners, 1, 30), Some(5));
    }

    #[test]
    fn destinations_best_fit_outside_the_region() {
        // Region 100..200 holds files 0 (30 blocks) and 1 (10 blocks).
        let owners = [owner(30, false), owner(10, false)];
        let pieces = [
            piece(100, 30, Some(0)),
            piece(130, 10, Some(1)),
            piece(140, 60, None),
        ];
        // Free: 140..260 (partly in the region), 0..12, 300..340.
        let free = [
            Run { start: 0, len: 12 },
            Run {
                start: 140,
                len: 120,
            },
            Run {
                start: 300,
                len: 40,
            },
        ];
        let region = Run {
            start: 100,
            len: 100,
        };
        let moves = destinations(&pieces, &owners, &free, region).expect("both fit");
        // The larger file first, into the smallest run that holds it
        // (300..340, 40 blocks, not the 60 left past the region), then the
        // small one into what is left of that run, 330..340: exactly its
        // size, a better fit than 0..12.
        assert_eq!(moves, vec![(0, 300), (1, 330)]);
        for &(o, at) in &moves {
            assert!(at + owners[o].blocks <= region.start || at >= region.end());
        }
    }

    #[test]
    fn destinations_none_when_a_file_fits_nowhere() {
        let owners = [owner(50, false)];
        let pieces = [piece(0, 50, Some(0)), piece(50, 50, None)];
        let free = [
            Run { start: 50, len: 50 },
            Run {
                start: 200,
                len: 49,
            },
        ];
        let region = Run { start: 0, len: 100 };
        assert_eq!(destinations(&pieces, &owners, &free, region), None);
    }
}
