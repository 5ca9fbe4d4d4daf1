//! Planning how to clear a region of the block space (for `makeroom`):
//! which windows hold nothing that cannot move and what clearing one
//! costs, and where each file moved out goes. Pure functions over the
//! survey's pieces, so that every rule is tested without a filesystem.

use crate::placement::Run;
use std::{collections::HashSet, path::PathBuf};

/// A file with data on the filesystem.
pub(crate) struct Owner {
    pub(crate) path: PathBuf,
    pub(crate) blocks: u64,
    /// One of the set's files.
    pub(crate) in_set: bool,
}

/// A stretch of the block space: free, data of `owners[i]`, or (between
/// them, implicitly) something that cannot move.
#[derive(Clone, Copy)]
pub(crate) struct Piece {
    pub(crate) start: u64,
    pub(crate) len: u64,
    pub(crate) owner: Option<usize>,
}

impl Piece {
    pub(crate) fn end(&self) -> u64 {
        self.start + self.len
    }
}

/// The blocks of files not in the set that a window of `len` blocks from
/// `pieces[first].start` holds (whole files: a file is moved whole), or
/// `None` if it runs into a block that cannot move or past the end.
pub(crate) fn window_cost(
    pieces: &[Piece],
    owners: &[Owner],
    first: usize,
    len: u64,
) -> Option<u64> {
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

/// The files with data in `region`, largest first.
pub(crate) fn movers_in(pieces: &[Piece], owners: &[Owner], region: Run) -> Vec<usize> {
    let mut movers: Vec<usize> = pieces
        .iter()
        .filter(|p| p.start < region.end() && region.start < p.end())
        .filter_map(|p| p.owner)
        .collect();
    movers.sort_unstable();
    movers.dedup();
    movers.sort_by_key(|&o| std::cmp::Reverse(owners[o].blocks));
    movers
}

/// The parts of the free runs `free` outside `region`.
pub(crate) fn outside_runs(free: &[Run], region: Run) -> Vec<Run> {
    let mut outside = Vec::new();
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
    outside
}

/// Takes `need` blocks from the start of the smallest run of `runs` that
/// holds them (best fit); their first block.
pub(crate) fn best_fit(runs: &mut [Run], need: u64) -> Option<u64> {
    let best = runs
        .iter_mut()
        .filter(|r| r.len >= need)
        .min_by_key(|r| r.len)?;
    let at = best.start;
    best.start += need;
    best.len -= need;
    Some(at)
}

/// Removes the blocks of `cut` from `runs`.
pub(crate) fn remove_range(runs: &mut Vec<Run>, cut: Run) {
    let mut out = Vec::with_capacity(runs.len() + 1);
    for r in runs.iter() {
        if r.end() <= cut.start || r.start >= cut.end() {
            out.push(*r);
            continue;
        }
        if r.start < cut.start {
            out.push(Run {
                start: r.start,
                len: cut.start - r.start,
            });
        }
        if r.end() > cut.end() {
            out.push(Run {
                start: cut.end(),
                len: r.end() - cut.end(),
            });
        }
    }
    *runs = out;
}

/// Where each of `movers` (largest first) goes: a free run outside
/// `region` that holds the whole file, best fit. `None` if one fits
/// nowhere.
pub(crate) fn destinations(
    movers: &[usize],
    owners: &[Owner],
    free: &[Run],
    region: Run,
) -> Option<Vec<(usize, u64)>> {
    let mut outside = outside_runs(free, region);
    movers
        .iter()
        .map(|&o| Some((o, best_fit(&mut outside, owners[o].blocks)?)))
        .collect()
}

/// One planned move: file `owner` whole to `goal`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Move {
    pub(crate) owner: usize,
    pub(crate) goal: u64,
    /// The run at `goal` is freed by the moves before this one: their old
    /// blocks reach the allocator only when the journal commits.
    pub(crate) commit_first: bool,
}

/// Sub-regions tried for a file of the region that no free run holds.
const MAX_SUB_WINDOWS: usize = 16;

/// The work a search for a region may do, in pieces looked at. Planning
/// one region may look for a sub-window among all pieces, and a search
/// tries thousands of regions: on a disk of many small pieces where none
/// works (test-40's seed 4, made on the host) the search ran for more
/// than five minutes. Counted rather than timed, so that a layout gets
/// the same answer on every machine.
pub(crate) struct Work {
    left: u64,
}

impl Work {
    pub(crate) fn new(pieces: u64) -> Self {
        Work { left: pieces }
    }

    /// Takes `n` from what is left; false (and nothing left) when less
    /// than `n` was.
    fn spend(&mut self, n: u64) -> bool {
        let ok = self.left >= n;
        self.left = self.left.saturating_sub(n);
        ok
    }

    /// Whether the work is used up: the search stops.
    pub(crate) fn spent(&self) -> bool {
        self.left == 0
    }
}

/// Whether `part` lies inside one of `runs` (disjoint, by start).
fn inside(runs: &[Run], part: Run) -> bool {
    let i = runs.partition_point(|r| r.start <= part.start);
    i > 0 && part.end() <= runs[i - 1].end()
}

/// The moves that clear `region`: each file with data there, largest
/// first, into the free run outside that fits it best; a file that no
/// free run holds gets one made for it outside the region, by moving
/// files that free runs do hold out of the cheapest window of its size
/// (one level deep, never through the region or a window made before).
/// `None` when some file fits nowhere even so, or when `work` runs out.
/// `free` is by start.
pub(crate) fn plan_moves(
    pieces: &[Piece],
    owners: &[Owner],
    free: &[Run],
    region: Run,
    work: &mut Work,
) -> Option<Vec<Move>> {
    if !work.spend(pieces.len() as u64) {
        return None;
    }
    let movers = movers_in(pieces, owners, region);
    let mut outside = outside_runs(free, region);
    let mut busy: HashSet<usize> = movers.iter().copied().collect();
    let mut taken = vec![region];
    let mut moves = Vec::new();
    for &m in &movers {
        let need = owners[m].blocks;
        if let Some(goal) = best_fit(&mut outside, need) {
            moves.push(Move {
                owner: m,
                goal,
                commit_first: false,
            });
            continue;
        }
        let window = sub_window(pieces, owners, &outside, &busy, &taken, need, work)?;
        for &(o, goal) in &window.moves {
            busy.insert(o);
            moves.push(Move {
                owner: o,
                goal,
                commit_first: false,
            });
        }
        outside = window.outside;
        let run = Run {
            start: window.start,
            len: need,
        };
        taken.push(run);
        moves.push(Move {
            owner: m,
            goal: run.start,
            commit_first: true,
        });
    }
    Some(moves)
}

/// A window cleared for a file of the region.
struct SubWindow {
    start: u64,
    /// Files moved out of it, and where.
    moves: Vec<(usize, u64)>,
    /// The free runs left outside the region once it is taken.
    outside: Vec<Run>,
}

/// The cheapest window of `need` blocks outside every run of `taken`
/// whose free blocks are still in `outside` and whose files (none of
/// `busy`, none of the set) fit into the free runs left, best fit.
/// `outside` is by start (best fit and `remove_range` keep the order of
/// the free runs).
fn sub_window(
    pieces: &[Piece],
    owners: &[Owner],
    outside: &[Run],
    busy: &HashSet<usize>,
    taken: &[Run],
    need: u64,
    work: &mut Work,
) -> Option<SubWindow> {
    let mut windows: Vec<(u64, u64, Vec<usize>)> = Vec::new(); // cost, start, files
    'start: for i in 0..pieces.len() {
        let w = Run {
            start: pieces[i].start,
            len: need,
        };
        if taken.iter().any(|t| t.start < w.end() && w.start < t.end()) {
            continue;
        }
        let (mut at, mut cost, mut files) = (w.start, 0, Vec::new());
        for p in &pieces[i..] {
            if at >= w.end() {
                break;
            }
            if !work.spend(1) {
                return None;
            }
            if p.start != at {
                continue 'start; // something that cannot move
            }
            match p.owner {
                None => {
                    let part = Run {
                        start: p.start,
                        len: p.end().min(w.end()) - p.start,
                    };
                    if !inside(outside, part) {
                        continue 'start; // given to another file already
                    }
                }
                Some(o) if busy.contains(&o) || owners[o].in_set => continue 'start,
                Some(o) => {
                    if !files.contains(&o) {
                        files.push(o);
                        cost += owners[o].blocks;
                    }
                }
            }
            at = p.end();
        }
        if at >= w.end() {
            windows.push((cost, w.start, files));
        }
    }
    windows.sort_unstable_by_key(|w| (w.0, w.1));
    for (_, start, mut files) in windows.into_iter().take(MAX_SUB_WINDOWS) {
        let mut left = outside.to_vec();
        remove_range(&mut left, Run { start, len: need });
        files.sort_by_key(|&o| std::cmp::Reverse(owners[o].blocks));
        let moves: Option<Vec<(usize, u64)>> = files
            .iter()
            .map(|&o| Some((o, best_fit(&mut left, owners[o].blocks)?)))
            .collect();
        if let Some(moves) = moves {
            return Some(SubWindow {
                start,
                moves,
                outside: left,
            });
        }
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn owner(blocks: u64, in_set: bool) -> Owner {
        Owner {
            path: PathBuf::from("f"),
            blocks,
            in_set,
        }
    }

    pub(crate) fn piece(start: u64, len: u64, owner: Option<usize>) -> Piece {
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
        let movers = movers_in(&pieces, &owners, region);
        assert_eq!(movers, vec![0, 1]);
        let moves = destinations(&movers, &owners, &free, region).expect("both fit");
        // The larger file first, into the smallest run that holds it
        // (300..340, 40 blocks, not the 60 left past the region), then the
        // small one into what is left of that run, 330..340: exactly its
        // size, a better fit than 0..12.
        assert_eq!(moves, vec![(0, 300), (1, 330)]);
        for &(o, at) in &moves {
            assert!(at + owners[o].blocks <= region.start || at >= region.end());
        }
    }

    /// Region 100..200: file 0 (50 blocks) and free space. Outside: free
    /// 0..25, file 1 (20 blocks) at 210..230, free 230..260. No free run
    /// holds file 0; moving file 1 into 0..25 frees 210..260. Returns
    /// (owners, pieces, free, region).
    fn one_sub_window() -> ([Owner; 2], [Piece; 5], [Run; 3], Run) {
        let owners = [owner(50, false), owner(20, false)];
        let pieces = [
            piece(0, 25, None),
            piece(100, 50, Some(0)),
            piece(150, 50, None),
            piece(210, 20, Some(1)),
            piece(230, 30, None),
        ];
        let free = [
            Run { start: 0, len: 25 },
            Run {
                start: 150,
                len: 50,
            },
            Run {
                start: 230,
                len: 30,
            },
        ];
        let region = Run {
            start: 100,
            len: 100,
        };
        (owners, pieces, free, region)
    }

    #[test]
    fn plan_moves_makes_a_run_for_a_file_no_free_run_holds() {
        let (owners, pieces, free, region) = one_sub_window();
        let moves = plan_moves(&pieces, &owners, &free, region, &mut Work::new(1000))
            .expect("a run can be made");
        let mv = |owner, goal, commit_first| Move {
            owner,
            goal,
            commit_first,
        };
        assert_eq!(moves, vec![mv(1, 0, false), mv(0, 210, true)]);
        // With file 1 too large for 0..25, there is no way.
        let owners = [owner(50, false), owner(26, false)];
        let pieces = [
            piece(0, 25, None),
            piece(100, 50, Some(0)),
            piece(150, 50, None),
            piece(204, 26, Some(1)),
            piece(230, 30, None),
        ];
        assert_eq!(
            plan_moves(&pieces, &owners, &free, region, &mut Work::new(1000)),
            None
        );
    }

    #[test]
    fn plan_moves_stops_when_its_work_runs_out() {
        // Too little work to find the sub-window for file 0.
        let (owners, pieces, free, region) = one_sub_window();
        let mut work = Work::new(6);
        assert_eq!(plan_moves(&pieces, &owners, &free, region, &mut work), None);
        assert!(work.spent());
        let mut work = Work::new(1000);
        assert!(plan_moves(&pieces, &owners, &free, region, &mut work).is_some());
        assert!(!work.spent());
    }

    #[test]
    fn inside_finds_the_run() {
        let runs = [
            Run { start: 10, len: 0 },
            Run { start: 20, len: 10 },
            Run { start: 40, len: 5 },
        ];
        assert!(inside(&runs, Run { start: 20, len: 10 }));
        assert!(inside(&runs, Run { start: 25, len: 3 }));
        assert!(!inside(&runs, Run { start: 25, len: 10 }));
        assert!(!inside(&runs, Run { start: 5, len: 1 }));
        assert!(!inside(&runs, Run { start: 31, len: 1 }));
        assert!(inside(&runs, Run { start: 44, len: 1 }));
    }

    #[test]
    fn remove_range_cuts_runs() {
        let mut runs = vec![Run { start: 0, len: 10 }, Run { start: 20, len: 10 }];
        remove_range(&mut runs, Run { start: 5, len: 20 });
        assert_eq!(
            runs,
            vec![Run { start: 0, len: 5 }, Run { start: 25, len: 5 }]
        );
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
        let movers = movers_in(&pieces, &owners, region);
        assert_eq!(destinations(&movers, &owners, &free, region), None);
    }
}
