//! The placement plan of a `-r` set with the module: the whole set is
//! planned at once from the free space there is (one free run that holds
//! it, or the fewest runs, by the same rules as the module's per-file
//! plan), and each file gets exact slots, filled in read order. A file
//! that a run's end cuts continues at the start of the next piece: one
//! jump, as there must be between two pieces anyway.

use crate::{
    layout::Layout,
    placement::{self, Run},
};

/// Part of a file placed at an exact block: its logical blocks
/// `lblk..lend` (`lend == None`: to the end of the file) go to `goal`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub lblk: u64,
    pub lend: Option<u64>,
    pub goal: u64,
}

/// The layout `layout` would have with its data placed as `segments`
/// say (each segment's data blocks one after the other from its goal);
/// the layout it has now when it has no segments.
pub fn placed(layout: &Layout, segments: &[Segment]) -> Layout {
    if segments.is_empty() {
        return layout.clone();
    }
    let mut runs = Vec::new();
    for seg in segments {
        let end = seg.lend.unwrap_or(u64::MAX);
        let mut at = seg.goal;
        for r in &layout.runs {
            let (lo, hi) = (r.lblk.max(seg.lblk), r.lend().min(end));
            if lo < hi {
                runs.push(crate::layout::Run {
                    lblk: lo,
                    pblk: at,
                    len: hi - lo,
                    unwritten: r.unwritten,
                });
                at += hi - lo;
            }
        }
    }
    Layout {
        runs,
        ..Default::default()
    }
}

/// Removes `used` from the free runs `free` (it lies inside one of them).
fn carve(free: &mut Vec<Run>, used: Run) {
    let Some(i) = free
        .iter()
        .position(|r| r.start <= used.start && used.end() <= r.end())
    else {
        return;
    };
    let r = free[i];
    let before = Run {
        start: r.start,
        len: used.start - r.start,
    };
    let after = Run {
        start: used.end(),
        len: r.end() - used.end(),
    };
    free.splice(i..=i, [before, after].into_iter().filter(|r| r.len > 0));
}

/// The logical block of the `n`-th data block of `layout` (holes skipped).
fn lblk_of_data(layout: &Layout, mut n: u64) -> u64 {
    for r in &layout.runs {
        if n < r.len {
            return r.lblk + n;
        }
        n -= r.len;
    }
    layout.lend()
}

/// Plans the files of `layouts` (read order; `None` and empty ones get no
/// segments) from `goal` into the free runs `free`. A file gets its
/// segments only when the plan holds all of it; the others get none.
pub fn plan(free: &[Run], goal: u64, layouts: &[Option<&Layout>]) -> Vec<Vec<Segment>> {
    let mut free = free.to_vec();
    let sizes: Vec<u64> = layouts
        .iter()
        .map(|l| l.map_or(0, Layout::blocks))
        .collect();
    let mut out = vec![Vec::new(); layouts.len()];
    let mut left: u64 = sizes.iter().sum();
    let (mut i, mut done_in_file) = (0usize, 0u64);
    let mut goal = goal;
    let mut buf = vec![Run::default(); 4096];
    while left > 0 {
        let placed = match placement::place(placement::slice_scan(&free), goal, left, &mut buf) {
            Ok(p) => p,
            Err(never) => match never {},
        };
        if placed.pieces == 0 {
            break;
        }
        for piece in buf[..placed.pieces].iter().copied() {
            let mut at = piece.start;
            let mut room = piece.len;
            while room > 0 && i < sizes.len() {
                let rest = sizes[i] - done_in_file;
                if rest == 0 {
                    i += 1;
                    done_in_file = 0;
                    continue;
                }
                let take = rest.min(room);
                let layout = layouts[i].expect("a file with blocks has a layout");
                let lblk = if done_in_file == 0 {
                    0
                } else {
                    lblk_of_data(layout, done_in_file)
                };
                if let Some(prev) = out[i].last_mut() {
                    let prev: &mut Segment = prev;
                    prev.lend = Some(lblk);
                }
                out[i].push(Segment {
                    lblk,
                    lend: None,
                    goal: at,
                });
                carve(
                    &mut free,
                    Run {
                        start: at,
                        len: take,
                    },
                );
                at += take;
                room -= take;
                left -= take;
                done_in_file += take;
            }
            goal = at;
        }
    }
    // A file the free space could not hold all of is left out.
    if left > 0 {
        for (segs, size) in out.iter_mut().zip(&sizes).skip(i) {
            if *size > 0 {
                segs.clear();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Run as Ext;

    fn file(runs: &[(u64, u64, u64)]) -> Layout {
        Layout {
            runs: runs
                .iter()
                .map(|&(lblk, pblk, len)| Ext {
                    lblk,
                    pblk,
                    len,
                    unwritten: false,
                })
                .collect(),
            ..Default::default()
        }
    }

    fn seg(lblk: u64, lend: Option<u64>, goal: u64) -> Segment {
        Segment { lblk, lend, goal }
    }

    #[test]
    fn a_placed_layout_follows_the_segments() {
        // Data 0..2, hole, 5..9; 0..6 at 1000, the rest at 2000.
        let f = file(&[(0, 70, 2), (5, 80, 4)]);
        let p = placed(&f, &[seg(0, Some(6), 1000), seg(6, None, 2000)]);
        let runs: Vec<_> = p.runs.iter().map(|r| (r.lblk, r.pblk, r.len)).collect();
        assert_eq!(runs, vec![(0, 1000, 2), (5, 1002, 1), (6, 2000, 3)]);
        assert_eq!(placed(&f, &[]), f);
    }

    #[test]
    fn a_run_that_holds_the_set_takes_it_in_order() {
        let a = file(&[(0, 9000, 3), (3, 7000, 2)]);
        let b = file(&[(0, 8000, 4)]);
        let free = [
            Run { start: 100, len: 5 },
            Run {
                start: 500,
                len: 50,
            },
        ];
        let plan = plan(&free, 510, &[Some(&a), None, Some(&b)]);
        assert_eq!(plan[0], vec![seg(0, None, 510)]);
        assert!(plan[1].is_empty());
        assert_eq!(plan[2], vec![seg(0, None, 515)]);
    }

    #[test]
    fn a_file_cut_by_a_run_end_continues_in_the_next_piece() {
        // 10 + 6 blocks into runs of 12 and 8: the second file is cut.
        let a = file(&[(0, 9000, 10)]);
        // Sparse: data at 0..3 and 100..103.
        let b = file(&[(0, 8000, 3), (100, 8100, 3)]);
        let free = [
            Run {
                start: 100,
                len: 12,
            },
            Run { start: 300, len: 8 },
        ];
        let plan = plan(&free, 0, &[Some(&a), Some(&b)]);
        assert_eq!(plan[0], vec![seg(0, None, 100)]);
        // 2 data blocks fit after a; the rest from logical 2 on.
        assert_eq!(plan[1], vec![seg(0, Some(2), 110), seg(2, None, 300)]);
    }

    #[test]
    fn files_that_do_not_fit_get_no_plan() {
        let a = file(&[(0, 9000, 4)]);
        let b = file(&[(0, 8000, 40)]);
        let free = [Run {
            start: 100,
            len: 10,
        }];
        let plan = plan(&free, 0, &[Some(&a), Some(&b)]);
        assert_eq!(plan[0], vec![seg(0, None, 100)]);
        assert!(plan[1].is_empty());
    }
}
