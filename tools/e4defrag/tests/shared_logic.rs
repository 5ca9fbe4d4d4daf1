//! The core-only logic the module shares with the tool (`rust/uapi.rs`,
//! `rust/plan.rs`), tested on the host; the module's KUnit suite runs the
//! same kind of checks in the kernel.

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
    assert_eq!(plan::group_of(32768 + 5, 0, 32768), 1);
    assert_eq!(plan::group_of(8193, 1, 8192), 1);
}

#[test]
fn allocation_requests_are_powers_of_two() {
    const ANY: u32 = u32::MAX;
    assert_eq!(plan::request_len(0, ANY), 0);
    assert_eq!(plan::request_len(1, 1), 1);
    // Room to round up: one run for the whole stretch.
    assert_eq!(plan::request_len(48, ANY), 64);
    assert_eq!(plan::request_len(2492, ANY), 4096);
    assert_eq!(plan::request_len(16384, ANY), 16384);
    assert_eq!(plan::request_len(20000, ANY), 16384);
    assert_eq!(plan::request_len(u32::MAX, ANY), plan::MAX_REQUEST);
    // No room (the next stretch, or an exact goal chain): round down.
    assert_eq!(plan::request_len(48, 48), 32);
    assert_eq!(plan::request_len(24, 25), 16);
    assert_eq!(plan::request_len(444, 444), 256);
}
