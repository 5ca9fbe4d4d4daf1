//! Making room for a `-r` set that no free run holds (module backend).
//!
//! Every defragmenter is bounded by the free runs it finds; with a goal
//! the tool can clear one instead. It picks the region of the set's size
//! that costs the fewest blocks of other files to clear (ties: nearest to
//! the set's directory), with nothing in it that cannot move (metadata,
//! directories, immutable, append-only or inline files), moves each file
//! that has blocks there, whole, into a free run outside the region that
//! holds it (`DEFRAG_GOAL_ONLY`, so never into the region), and leaves
//! the region free for the set's plan (`roomplan` plans it; a file of
//! the region that no free run holds gets one cleared for it elsewhere,
//! one level deep). A moved file never gets more
//! extents: it goes whole into one run. The blocks moved for others are
//! bounded (`--max-evacuate` times the set's size). `--free-space` uses
//! the same clearing with no set: a run of a given size, or the largest
//! one a budget of moved blocks can make.

use crate::{
    defrag, engine,
    error::Error,
    fsmap,
    layout::Layout,
    mounts,
    placement::Run,
    roomplan::{destinations, plan_moves, window_cost, Move, Owner, Piece, Work},
    walk,
};
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
    /// The search stopped at its work limit (`PLAN_WORK`) after trying
    /// `tried` regions, none of which could be cleared.
    GaveUp { tried: usize },
}

/// Regions tried, cheapest first, before giving up. The cheapest regions
/// hold the largest free runs, which the largest files to move out need:
/// on a crowded disk (largest free run 133 blocks, files of up to 128)
/// the first 64 all had a file that fit nowhere else. Trying one costs a
/// pass over the free runs per file in it.
const MAX_CANDIDATES: usize = 4096;

/// The work one search for a region may do (`roomplan::Work`, pieces
/// looked at): a few seconds on the host at worst, about ten under TCG.
/// The most a search in the tests needed to find its region was 14
/// million (a seeded layout of test-40; test-70's crowded disk: 203).
const PLAN_WORK: u64 = 50_000_000;

/// What room is wanted.
#[derive(Clone, Copy, Debug)]
pub struct Want {
    /// The set's size in blocks.
    pub blocks: u64,
    /// Of equally cheap regions, the one nearest this block.
    pub near: u64,
    /// At most this many blocks of other files may be moved.
    pub limit: u64,
}

impl Want {
    /// Room for `blocks`, moving at most `max_ratio` times as many blocks
    /// of other files.
    pub fn with_ratio(blocks: u64, near: u64, max_ratio: f64) -> Self {
        Want {
            blocks,
            near,
            limit: (max_ratio * blocks as f64) as u64,
        }
    }
}

/// The block space of a filesystem as making room sees it: its free runs
/// and the data of the files that can move.
struct Survey {
    block_size: u64,
    free: Vec<Run>,
    owners: Vec<Owner>,
    /// Free runs and movable data, by start; what lies between them
    /// cannot move.
    pieces: Vec<Piece>,
}

impl Survey {
    /// Surveys the filesystem of `dir`, whose free runs (read after a
    /// commit) are `free`. `set`: the files room is
    /// made for; those no free run holds are obstacles, since nothing
    /// holds them elsewhere while the room is cleared.
    fn take(dir: &Path, set: &[PathBuf], block_size: u64, free: Vec<Run>) -> Result<Self, Error> {
        let (owners, mut pieces) = map_owners(dir, set, block_size)?;
        let largest = largest_run(&free);
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
        Ok(Survey {
            block_size,
            free,
            owners,
            pieces,
        })
    }

    /// The room clearing `region` with `moves` makes, and what it costs.
    fn room(&self, region: Run, moves: &[Move]) -> Room {
        let mut room = Room {
            start: region.start,
            len: region.len,
            ..Default::default()
        };
        for m in moves {
            let owner = &self.owners[m.owner];
            if owner.in_set {
                room.set_blocks_moved += owner.blocks;
            } else {
                room.moved_blocks += owner.blocks;
                room.moved_files += 1;
            }
        }
        room
    }

    /// Every window of `len` blocks that starts where a piece starts and
    /// holds no immovable block, cheapest first: `(cost, distance from
    /// near, start)`.
    fn candidates(&self, len: u64, near: u64) -> Vec<(u64, u64, u64)> {
        let mut out: Vec<(u64, u64, u64)> = (0..self.pieces.len())
            .filter_map(|i| {
                let cost = window_cost(&self.pieces, &self.owners, i, len)?;
                let start = self.pieces[i].start;
                Some((cost, start.abs_diff(near), start))
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// The largest window that can be cleared moving at most `budget`
    /// blocks of other files (0 when none is larger than the largest free
    /// run): its files fit elsewhere (`plan_moves`), among the cheapest
    /// windows of its size. Clearing gets only harder with the size (a
    /// window holds the smaller ones that start where it starts), so a
    /// bisection finds it.
    fn largest_within(&self, budget: u64) -> u64 {
        let total: u64 = self.free.iter().map(|r| r.len).sum();
        let (mut lo, mut hi) = (largest_run(&self.free), total + 1);
        // lo: a run of lo blocks can be had; hi: not.
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.clearable(mid, budget) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        if lo > largest_run(&self.free) {
            lo
        } else {
            0
        }
    }

    /// Whether one of the cheapest windows of `len` blocks can be cleared
    /// moving at most `budget` blocks of other files.
    /// (A size whose search runs out of work counts as not clearable.)
    fn clearable(&self, len: u64, budget: u64) -> bool {
        let mut work = Work::new(PLAN_WORK);
        self.candidates(len, 0)
            .iter()
            .take_while(|&&(cost, _, _)| cost <= budget)
            .take(PROBES_PER_SIZE)
            .any(|&(_, _, start)| {
                let region = Run { start, len };
                plan_moves(&self.pieces, &self.owners, &self.free, region, &mut work)
                    .is_some_and(|moves| self.room(region, &moves).moved_blocks <= budget)
            })
    }

    /// The region of `want.blocks` to clear, the cheapest whose files fit
    /// elsewhere, and its moves; or why there is none.
    fn choose(&self, want: Want, work: &mut Work) -> Result<(Run, Vec<Move>, Room), Outcome> {
        let candidates = self.candidates(want.blocks, want.near);
        let Some(&(cheapest, _, _)) = candidates.first() else {
            return Err(Outcome::NoRegion);
        };
        if cheapest > want.limit {
            return Err(Outcome::TooCostly {
                cost: cheapest,
                limit: want.limit,
            });
        }
        for (tried, &(cost, _, start)) in candidates.iter().take(MAX_CANDIDATES).enumerate() {
            if cost > want.limit {
                break;
            }
            let region = Run {
                start,
                len: want.blocks,
            };
            let Some(moves) = plan_moves(&self.pieces, &self.owners, &self.free, region, work)
            else {
                if work.spent() {
                    return Err(Outcome::GaveUp { tried });
                }
                continue; // a file of the region fits nowhere else
            };
            let room = self.room(region, &moves);
            if room.moved_blocks > want.limit {
                continue; // files moved to make room for files of the region
            }
            return Ok((region, moves, room));
        }
        Err(Outcome::NoRegion)
    }
}

/// Windows of one size tried by `Survey::clearable`, cheapest first.
const PROBES_PER_SIZE: usize = 64;

fn largest_run(free: &[Run]) -> u64 {
    free.iter().map(|r| r.len).max().unwrap_or(0)
}

/// Makes room for the files `set` on the filesystem of `dir_file`.
pub fn make_room(
    dir: &Path,
    dir_file: &File,
    set: &[PathBuf],
    block_size: u64,
    want: Want,
) -> Result<Outcome, Error> {
    let free = committed_free_runs(dir, dir_file, block_size)?;
    if largest_run(&free) >= want.blocks {
        return Ok(Outcome::NotNeeded);
    }
    let survey = Survey::take(dir, set, block_size, free)?;
    clear(dir, dir_file, &survey, want)
}

/// The free runs of the filesystem of `dir_file` after a commit (blocks
/// freed by earlier moves count as free only then).
fn committed_free_runs(dir: &Path, dir_file: &File, block_size: u64) -> Result<Vec<Run>, Error> {
    nix::unistd::syncfs(dir_file.as_raw_fd()).map_err(Error::sys(dir, "syncfs"))?;
    fsmap::free_runs(dir_file, block_size).map_err(Error::sys(dir, "FS_IOC_GETFSMAP"))
}

/// The size of the largest free run that moving at most `budget` blocks
/// of other files can make on the filesystem of `dir_file`, and the room
/// made for it (`Outcome::NotNeeded` when the budget cannot do better
/// than the largest free run there is).
pub fn make_largest(
    dir: &Path,
    dir_file: &File,
    block_size: u64,
    budget: u64,
) -> Result<(u64, Outcome), Error> {
    let free = committed_free_runs(dir, dir_file, block_size)?;
    let survey = Survey::take(dir, &[], block_size, free)?;
    let blocks = survey.largest_within(budget);
    if blocks == 0 {
        return Ok((largest_run(&survey.free), Outcome::NotNeeded));
    }
    let want = Want {
        blocks,
        near: 0,
        limit: budget,
    };
    // The cheapest windows `largest_within` found clearable are the first
    // ones `clear` tries.
    Ok((blocks, clear(dir, dir_file, &survey, want)?))
}

/// Clears the cheapest region of `want.blocks` that `survey` allows.
fn clear(dir: &Path, dir_file: &File, survey: &Survey, want: Want) -> Result<Outcome, Error> {
    let (region, moves, room) = match survey.choose(want, &mut Work::new(PLAN_WORK)) {
        Ok(chosen) => chosen,
        Err(outcome) => return Ok(outcome),
    };
    evacuate(dir, dir_file, survey, region, moves)?;
    nix::unistd::syncfs(dir_file.as_raw_fd()).map_err(Error::sys(dir, "syncfs"))?;
    Ok(Outcome::Made(room))
}

/// The files of the filesystem that holds `dir` with their data pieces.
/// Files that cannot move (immutable, append-only, inline data, block-
/// mapped, encrypted, journaled data, verity, DAX, or that cannot be
/// opened for writing: a running program, an active swap file)
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
    let (files, _) = walk::files_under(&root, &mounts, walk::TreeOrder::Path);
    let mut owners = Vec::new();
    let mut pieces = Vec::new();
    for path in files {
        // What the move will need: read-write (ETXTBSY for a busy file).
        let Ok(file) = File::options().read(true).write(true).open(&path) else {
            continue;
        };
        let Ok(meta) = file.metadata() else { continue };
        if !crate::ext4fs::movable(&file) {
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

/// Times in a row the free space is read again when a destination was
/// taken. (The extent-tree block that a file of several extents needs
/// while it is moved goes right after its new data, where the next file
/// of the same run was to go: on a crowded disk this happens often.)
const REPLANS: u32 = 4;

/// Moves each file of `moves` whole to its destination outside `region`,
/// exactly there. A destination can be taken since the survey (an
/// extent-tree block that an earlier move needed, another writer): the
/// move then fails with ENOSPC before moving anything, and the files
/// left are planned again from the free space after a commit.
fn evacuate(
    dir: &Path,
    dir_file: &File,
    survey: &Survey,
    region: Run,
    mut moves: Vec<Move>,
) -> Result<(), Error> {
    let owners = &survey.owners;
    let syncfs = || nix::unistd::syncfs(dir_file.as_raw_fd()).map_err(Error::sys(dir, "syncfs"));
    let (mut next, mut replans, mut step) = (0, 0, 0);
    while let Some(&m) = moves.get(next) {
        engine::test_stop_at(std::ffi::OsStr::new(&format!("evacuate:{step}")));
        step += 1;
        // SIGINT/SIGTERM: the files moved so far stay moved, whole.
        if crate::interrupt::requested().is_some() {
            return Err(Error::Sys {
                path: dir.into(),
                op: "making room",
                errno: nix::errno::Errno::EINTR,
            });
        }
        if m.commit_first {
            syncfs()?;
        }
        let path = &owners[m.owner].path;
        let (file, _) = engine::open_rw(path)?;
        let req = defrag::Request {
            goal: m.goal,
            goal_only: true,
            unit_log2: 11,
            ..Default::default()
        };
        match defrag::defrag_file(&file, path, req) {
            Ok(_) => {
                next += 1;
                replans = 0;
            }
            Err(e) if e.errno() == Some(nix::errno::Errno::ENOSPC) && replans < REPLANS => {
                replans += 1;
                let free = committed_free_runs(dir, dir_file, survey.block_size)?;
                let left: Vec<usize> = moves[next..].iter().map(|m| m.owner).collect();
                moves = destinations(&left, owners, &free, region)
                    .ok_or(e)?
                    .into_iter()
                    .map(|(owner, goal)| Move {
                        owner,
                        goal,
                        commit_first: false,
                    })
                    .collect();
                next = 0;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roomplan::tests::{owner, piece};

    /// free 0..10, file 0 (10 blocks) 10..20, free 20..30, file 1 (30
    /// blocks) 30..60, free 60..65: 25 blocks free, largest run 10.
    fn two_files() -> Survey {
        let free = vec![
            Run { start: 0, len: 10 },
            Run { start: 20, len: 10 },
            Run { start: 60, len: 5 },
        ];
        let mut pieces: Vec<Piece> = free.iter().map(|r| piece(r.start, r.len, None)).collect();
        pieces.push(piece(10, 10, Some(0)));
        pieces.push(piece(30, 30, Some(1)));
        pieces.sort_by_key(|p| p.start);
        Survey {
            block_size: 4096,
            free,
            owners: vec![owner(10, false), owner(30, false)],
            pieces,
        }
    }

    #[test]
    fn largest_within_a_budget() {
        let survey = two_files();
        // Moving file 0 into 20..30 frees 0..20. A larger window would
        // have to hold file 0 and leave no free run outside for it.
        assert_eq!(survey.largest_within(10), 20);
        // Nothing affordable beats the 10 free blocks there are.
        assert_eq!(survey.largest_within(9), 0);
        assert_eq!(survey.largest_within(0), 0);
        // Windows of 25 blocks start where pieces start: 0..25 (file 0),
        // 30..55 and 20..45 (file 1), 10..35 (both); cheapest, then
        // nearest first. None starts at 60: past the last block.
        let c = survey.candidates(25, 100);
        assert_eq!(
            c,
            vec![(10, 100, 0), (30, 70, 30), (30, 80, 20), (40, 90, 10)]
        );
    }

    /// A crowded disk of `n` two-block files with a free block after
    /// each: no free run holds a file moved out, so every region of 4
    /// blocks needs sub-windows, and none can be cleared.
    fn crowded(n: u64) -> Survey {
        let mut pieces = Vec::new();
        let mut free = Vec::new();
        for i in 0..n {
            pieces.push(piece(3 * i, 2, Some(i as usize)));
            pieces.push(piece(3 * i + 2, 1, None));
            free.push(Run {
                start: 3 * i + 2,
                len: 1,
            });
        }
        Survey {
            block_size: 4096,
            free,
            owners: (0..n).map(|_| owner(2, false)).collect(),
            pieces,
        }
    }

    #[test]
    fn the_search_for_a_region_ends_within_its_work() {
        let want = Want {
            blocks: 4,
            near: 0,
            limit: 1000,
        };
        // Small: every region is tried and found impossible.
        let mut work = Work::new(PLAN_WORK);
        assert_eq!(
            crowded(50).choose(want, &mut work).unwrap_err(),
            Outcome::NoRegion
        );
        assert!(!work.spent());
        // Large: each region's sub-window search looks at every piece;
        // 4096 regions of 20,000 pieces each would not end for minutes.
        // The search stops at its limit, having tried some.
        let mut work = Work::new(PLAN_WORK);
        match crowded(20_000).choose(want, &mut work) {
            Err(Outcome::GaveUp { tried }) => assert!(tried > 0 && tried < MAX_CANDIDATES),
            other => panic!("expected GaveUp, got {:?}", other.map(|c| c.2)),
        }
        assert!(work.spent());
    }

    #[test]
    fn the_search_still_finds_a_region() {
        // Moving file 0 into 20..30 frees 0..20.
        let survey = two_files();
        let want = Want {
            blocks: 20,
            near: 0,
            limit: 10,
        };
        let (region, moves, room) = survey.choose(want, &mut Work::new(PLAN_WORK)).unwrap();
        assert_eq!(region, Run { start: 0, len: 20 });
        assert_eq!(moves.len(), 1);
        assert_eq!(room.moved_blocks, 10);
    }
}
