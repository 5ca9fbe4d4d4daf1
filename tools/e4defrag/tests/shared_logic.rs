//! The core-only logic the module shares with the tool (`rust/uapi.rs`,
//! `rust/plan.rs`), tested on the host; the module's KUnit suite runs the
//! same kind of checks in the kernel.

use e4defrag::placement::{self, Placement, Run};
use e4defrag::plan::{self, ExtentCounter};
use e4defrag::uapi::{self, BlockRange, DefragData, RequestError};

fn req(start_offset: i64, defrag_size: i64, goal: u64, flags: u32) -> DefragData {
    DefragData {
        start_offset,
        defrag_size,
        goal,
        flags,
        ..Default::default()
    }
}

/// 4 KiB blocks, a 1000-block filesystem, a 40000-byte file (10 blocks).
fn check(r: &DefragData) -> Result<BlockRange, RequestError> {
    uapi::check_defrag_request(r, 12, 1000, 40_000)
}

#[test]
fn whole_file_and_sub_ranges() {
    assert_eq!(
        check(&req(0, 0, 0, 0)),
        Ok(BlockRange { start: 0, end: 10 })
    );
    assert_eq!(
        check(&req(8192, 4096, 0, 0)),
        Ok(BlockRange { start: 2, end: 3 })
    );
    assert_eq!(
        check(&req(8192, 5000, 0, 0)),
        Ok(BlockRange { start: 2, end: 4 })
    );
    assert_eq!(
        check(&req(8192, 1 << 30, 999, 0)),
        Ok(BlockRange { start: 2, end: 10 })
    );
    assert_eq!(
        check(&req(1 << 30, 0, 0, 0)),
        Ok(BlockRange { start: 10, end: 10 })
    );
}

#[test]
fn bad_requests_are_refused() {
    assert_eq!(check(&req(100, 0, 0, 0)), Err(RequestError::BadRange));
    assert_eq!(check(&req(-4096, 0, 0, 0)), Err(RequestError::BadRange));
    assert_eq!(check(&req(0, -1, 0, 0)), Err(RequestError::BadRange));
    assert_eq!(
        check(&req(4096, i64::MAX, 0, 0)),
        Err(RequestError::Overflow)
    );
    assert_eq!(check(&req(0, 0, 1000, 0)), Err(RequestError::BadGoal));
    assert_eq!(
        check(&req(0, 0, 0, uapi::DEFRAG_GOAL_ONLY)),
        Err(RequestError::BadGoal)
    );
    assert_eq!(
        check(&req(0, 0, 0, 0x10000)),
        Err(RequestError::UnknownFlags)
    );
    let too_big_unit = (uapi::DEFRAG_UNIT_MAX + 1) << uapi::DEFRAG_UNIT_SHIFT;
    assert_eq!(
        check(&req(0, 0, 0, too_big_unit)),
        Err(RequestError::UnknownFlags)
    );
    let mut r = req(0, 0, 0, 0);
    r.reserved = 1;
    assert_eq!(check(&r), Err(RequestError::ReservedNotZero));
    // With DONOR_FD, `reserved` is the donor's file descriptor.
    r.flags = uapi::DEFRAG_DONOR_FD;
    assert!(check(&r).is_ok());
}

#[test]
fn move_unit_in_flags() {
    assert_eq!(uapi::defrag_unit_pages(0), Some(1));
    assert_eq!(
        uapi::defrag_unit_pages(4 << uapi::DEFRAG_UNIT_SHIFT),
        Some(16)
    );
    assert_eq!(
        uapi::defrag_unit_pages(12 << uapi::DEFRAG_UNIT_SHIFT),
        Some(4096)
    );
    assert_eq!(uapi::defrag_unit_pages(13 << uapi::DEFRAG_UNIT_SHIFT), None);
}

fn count(runs: &[(u64, u64, u64)]) -> ExtentCounter {
    let mut c = ExtentCounter::default();
    for &(l, p, n) in runs {
        c.push(l, p, n);
    }
    c
}

#[test]
fn extents_are_physically_and_logically_contiguous_runs() {
    let frag = count(&[(0, 100, 4), (4, 104, 4), (8, 300, 2), (20, 302, 1)]);
    assert_eq!(
        (frag.extents(), frag.blocks(), frag.first_pblk()),
        (3, 11, Some(100))
    );
    assert_eq!(count(&[]).extents(), 0);
    assert_eq!(count(&[(0, 5, 0)]).first_pblk(), None);
}

#[test]
fn improvement_rule() {
    let frag = count(&[(0, 100, 4), (4, 200, 4)]);
    let one = count(&[(0, 500, 8)]);
    let elsewhere = count(&[(0, 600, 8)]);
    assert!(plan::improves(&frag, &one, 0));
    assert!(!plan::improves(&one, &frag, 0));
    assert!(!plan::improves(&one, &elsewhere, 0));
    assert!(plan::improves(&one, &elsewhere, 700));
    assert!(!plan::improves(&one, &elsewhere, 400));
}

fn run(start: u64, len: u64) -> Run {
    Run { start, len }
}

fn place(runs: &[Run], goal: u64, want: u64) -> (Placement, Vec<Run>) {
    let mut buf = vec![Run::default(); 64];
    let p = placement::place(placement::slice_scan(runs), goal, want, &mut buf).unwrap();
    buf.truncate(p.pieces);
    (p, buf)
}

#[test]
fn placement_at_the_goal_when_the_run_there_holds_it() {
    let free = [run(100, 50), run(1000, 500)];
    let (p, pieces) = place(&free, 1100, 300);
    assert!(p.whole);
    assert_eq!(pieces, vec![run(1100, 300)]);
    // Exactly to the run's end.
    assert_eq!(place(&free, 1200, 300).1, vec![run(1200, 300)]);
}

#[test]
fn placement_in_the_nearest_run_that_holds_it() {
    let free = [run(100, 400), run(1000, 60), run(5000, 400)];
    // The run at the goal is too short: the end of the run before it is
    // nearer (1030 - 500 = 530) than the run after it (5000 - 1030).
    assert_eq!(place(&free, 1030, 300).1, vec![run(200, 300)]);
    assert_eq!(place(&free, 4000, 300).1, vec![run(5000, 300)]);
    // Runs reported cut at a group end are one run.
    let cut = [run(100, 20), run(120, 20), run(900, 10)];
    assert_eq!(place(&cut, 0, 40).1, vec![run(100, 40)]);
}

#[test]
fn placement_near_the_end_of_the_filesystem_clamps() {
    // A 1000-block filesystem whose last free run touches its last block.
    let free = [run(10, 100), run(900, 100)];
    assert_eq!(place(&free, 999, 50).1, vec![run(950, 50)]);
    assert_eq!(place(&free, 999, 1).1, vec![run(999, 1)]);
    assert_eq!(place(&free, 999, 100).1, vec![run(900, 100)]);
    // A goal past every run still finds one; nothing is refused.
    assert_eq!(place(&free, 5000, 100).1, vec![run(900, 100)]);
}

#[test]
fn placement_in_the_fewest_runs() {
    // Runs shorter than a page (1 to 3 blocks of 1 KiB) count as runs.
    let free = [
        run(10, 1),
        run(20, 3),
        run(100, 40),
        run(300, 30),
        run(600, 30),
        run(2000, 2),
    ];
    let (p, pieces) = place(&free, 650, 65);
    assert!(!p.whole);
    assert_eq!(p.blocks, 65);
    // 40 + 25: the second piece from the 30-run nearest the goal (600),
    // at its end nearest to the goal.
    assert_eq!(pieces, vec![run(100, 40), run(605, 25)]);
    // 40 + 30 + 30 + 3, and 1 more from the run nearest the goal (10).
    let (p, pieces) = place(&free, 0, 104);
    assert_eq!((p.blocks, pieces.len()), (104, 5));
    assert_eq!(pieces[0], run(10, 1));
    // More than there is: all of it, the caller learns it is short.
    let (p, pieces) = place(&free, 0, 1000);
    assert_eq!((p.blocks, pieces.len()), (106, 6));
}

#[test]
fn placement_with_no_free_space() {
    let (p, pieces) = place(&[], 100, 10);
    assert_eq!((p.pieces, p.blocks), (0, 0));
    assert!(pieces.is_empty());
    assert_eq!(place(&[run(5, 5)], 100, 0).0.pieces, 0);
}

#[test]
fn placement_with_a_small_buffer_plans_the_largest_first() {
    let free: Vec<Run> = (0..20).map(|i| run(i * 100, 10 + i)).collect();
    let mut buf = vec![Run::default(); 3];
    let p = placement::place(placement::slice_scan(&free), 0, 500, &mut buf).unwrap();
    assert_eq!((p.pieces, p.blocks), (3, 29 + 28 + 27));
    assert_eq!(buf, vec![run(1700, 27), run(1800, 28), run(1900, 29)]);
}

#[test]
fn cursor_hands_out_the_pieces_in_order() {
    let pieces = [run(10, 5), run(100, 3)];
    let mut c = placement::Cursor::default();
    assert_eq!(c.peek(&pieces, 4), Some(run(10, 4)));
    c.advance(4);
    assert_eq!(c.peek(&pieces, 4), Some(run(14, 1)));
    c.advance(1);
    assert_eq!(c.peek(&pieces, 9), Some(run(100, 3)));
    c.advance(3);
    assert_eq!(c.peek(&pieces, 9), None);
    // A stretch that the rest of a piece cannot hold starts at the next
    // piece; at the start of a piece it stays (and is split).
    let mut c = placement::Cursor::default();
    c.start_stretch(&pieces, 4);
    c.advance(4);
    c.start_stretch(&pieces, 2);
    assert_eq!(c.peek(&pieces, 9), Some(run(100, 3)));
    let mut c = placement::Cursor::default();
    c.start_stretch(&pieces, 7);
    assert_eq!(c.peek(&pieces, 9), Some(run(10, 5)));
    assert_eq!(placement::to_group_end(32768 + 5, 0, 32768), 32763);
    assert_eq!(placement::to_group_end(8192, 1, 8192), 1);
}

/// A small deterministic generator (xorshift), so a failing case prints a
/// seed anyone can replay.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[test]
fn placement_keeps_its_contract_on_random_free_space() {
    for seed in 1..=2000u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut free = Vec::new();
        let mut at = rng.below(50);
        for _ in 0..rng.below(40) {
            let scale = if rng.below(4) == 0 { 2000 } else { 20 };
            let len = 1 + rng.below(scale);
            free.push(run(at, len));
            at += len + 1 + rng.below(3000);
        }
        let total: u64 = free.iter().map(|r| r.len).sum();
        let goal = rng.below(at + 100);
        let scale = if rng.below(2) == 0 { 100 } else { 3000 };
        let want = 1 + rng.below(scale);
        let (p, pieces) = place(&free, goal, want);
        let ctx = format!("seed {seed}: free {free:?} goal {goal} want {want} -> {pieces:?}");
        // Pieces lie in free space, do not overlap, ascend, sum up.
        let sum: u64 = pieces.iter().map(|r| r.len).sum();
        assert_eq!(sum, p.blocks, "{ctx}");
        assert_eq!(p.blocks, want.min(total), "{ctx}");
        for w in pieces.windows(2) {
            assert!(w[0].end() <= w[1].start, "{ctx}");
        }
        for piece in &pieces {
            assert!(
                free.iter()
                    .any(|r| r.start <= piece.start && piece.end() <= r.end()),
                "{ctx}"
            );
        }
        let best = free
            .iter()
            .filter_map(|r| r.nearest_window(goal, want))
            .map(|(_, d)| d)
            .min();
        match best {
            Some(d) => {
                assert!(p.whole, "{ctx}");
                assert_eq!(pieces[0].start.abs_diff(goal), d, "{ctx}");
            }
            None if want <= total => {
                // The fewest runs: as many as the largest ones need.
                let mut lens: Vec<u64> = free.iter().map(|r| r.len).collect();
                lens.sort_unstable_by(|a, b| b.cmp(a));
                let mut k = 0;
                let mut held = 0;
                while held < want {
                    held += lens[k];
                    k += 1;
                }
                assert_eq!(pieces.len(), k, "{ctx}");
            }
            None => assert_eq!(pieces.len(), free.len(), "{ctx}"),
        }
    }
}

/// The free runs of `free` inside `lo..hi`, cut at its ends, as the
/// module's bitmap walk reports them for a window.
fn clipped(free: &[Run], lo: u64, hi: u64) -> Vec<Run> {
    free.iter()
        .filter_map(|r| {
            let (s, e) = (r.start.max(lo), r.end().min(hi));
            (s < e).then(|| run(s, e - s))
        })
        .collect()
}

#[test]
fn outward_search_finds_the_nearest_run_and_reads_only_near_the_goal() {
    for seed in 1..=3000u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut free = Vec::new();
        let mut at = rng.below(50);
        for _ in 0..rng.below(60) {
            let scale = if rng.below(4) == 0 { 5000 } else { 30 };
            let len = 1 + rng.below(scale);
            free.push(run(at, len));
            at += len + 1 + rng.below(20_000);
        }
        let end = at + rng.below(1000);
        let goal = rng.below(end);
        let scale = if rng.below(2) == 0 { 50 } else { 4000 };
        let want = 1 + rng.below(scale);
        let radius = 1 + rng.below(8192);
        let full =
            placement::nearest_whole(&mut placement::slice_scan(&free), goal, want, &[]).unwrap();
        let mut widest = 0u64;
        let got = placement::nearest_whole_outward(
            |lo, hi, f: &mut dyn FnMut(Run)| {
                widest = widest.max(hi - lo);
                clipped(&free, lo, hi).into_iter().for_each(f);
                Ok::<(), core::convert::Infallible>(())
            },
            goal,
            want,
            end,
            radius,
        )
        .unwrap();
        let ctx = format!("seed {seed}: goal {goal} want {want} radius {radius} end {end}");
        assert_eq!(got, full, "{ctx}");
        // The widest window read: the first one, or less than four times
        // the one that holds the answer (a window of radius r that did
        // not settle it means the answer's distance plus `want` exceeds
        // r). Without an answer, everything is read.
        let bound = match full {
            Some((_, d)) => (2 * radius.max(want)).max(8 * (d + want)),
            None => end,
        };
        assert!(widest <= bound, "{ctx}: read {widest}, bound {bound}");
        if full.is_none() {
            assert_eq!(widest, end, "{ctx}: no answer without reading everything");
        }
    }
}

#[test]
fn outward_search_reads_one_window_when_the_goal_is_free() {
    let free = [run(0, 1_000_000_000)];
    let mut windows = Vec::new();
    let got = placement::nearest_whole_outward(
        |lo, hi, f: &mut dyn FnMut(Run)| {
            windows.push((lo, hi));
            clipped(&free, lo, hi).into_iter().for_each(f);
            Ok::<(), core::convert::Infallible>(())
        },
        500_000_000,
        100,
        1_000_000_000,
        32768,
    )
    .unwrap();
    assert_eq!(got, Some((500_000_000, 0)));
    assert_eq!(windows, [(500_000_000 - 32768, 500_000_000 + 32768)]);
}

/// The mapping of a file made of `extents` (logical, physical, length;
/// in order, holes between), as `plan::resume_after` asks for it.
fn map_of(
    extents: &[(u64, u64, u64)],
) -> impl FnMut(u64, u64) -> Result<(Option<u64>, u64), ()> + '_ {
    move |lblk, max| {
        for &(l, p, n) in extents {
            if lblk < l {
                return Ok((None, (l - lblk).min(max)));
            }
            if lblk < l + n {
                return Ok((Some(p + lblk - l), (l + n - lblk).min(max)));
            }
        }
        Ok((None, max))
    }
}

/// A step from block 100 over 100..110 whose donor had 1000.. for 100..104
/// and 1006.. for 106..110 (104..106 a hole), stopped early.
const DONOR: [plan::MappedRun; 2] = [
    plan::MappedRun {
        lblk: 100,
        pblk: 1000,
        len: 4,
    },
    plan::MappedRun {
        lblk: 106,
        pblk: 1006,
        len: 4,
    },
];

#[test]
fn resume_after_a_step_that_stopped_early() {
    // Nothing moved: the step goes again from its start.
    let old = [(100, 2000, 4), (106, 2006, 4)];
    assert_eq!(plan::resume_after(100, &DONOR, map_of(&old)), Ok(100));
    // Five blocks moved (100..104, 106); the file is otherwise as it was.
    let five = [(100, 1000, 4), (106, 1006, 1), (107, 2007, 3)];
    assert_eq!(plan::resume_after(100, &DONOR, map_of(&five)), Ok(107));
    // The same, and a writer filled the hole 104..106 since: counting five
    // data blocks from 100 would say 105, and a retry from there would swap
    // block 106 back.
    let filled = [
        (100, 1000, 4),
        (104, 5000, 2),
        (106, 1006, 1),
        (107, 2007, 3),
    ];
    assert_eq!(plan::resume_after(100, &DONOR, map_of(&filled)), Ok(107));
    // Six blocks moved (100..104, 106, 107), then 101..103 were punched:
    // counting six data blocks from 100 would say 110 and skip 108, 109.
    let punched = [
        (100, 1000, 1),
        (103, 1003, 1),
        (106, 1006, 2),
        (108, 2008, 2),
    ];
    assert_eq!(plan::resume_after(100, &DONOR, map_of(&punched)), Ok(108));
    // Everything moved.
    let all = [(100, 1000, 4), (106, 1006, 4)];
    assert_eq!(plan::resume_after(100, &DONOR, map_of(&all)), Ok(110));
}
