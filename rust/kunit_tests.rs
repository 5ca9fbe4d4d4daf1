// SPDX-License-Identifier: GPL-2.0

//! KUnit suite `ext4_defrag`: the module's pure logic. Runs when the module
//! is loaded (KUnit finds it through the `.kunit_test_suites` section).
//!
//! 6.12 has no `#[kunit_tests]` macro, so the suite is declared by hand: a
//! zero-terminated `kunit_case` array, a `kunit_suite` and a pointer to it
//! in the section.

use crate::{
    blockquery::abi_state,
    ext4::MapState,
    placement::{self, Placement, Run},
    plan::{self, ExtentCounter, MappedRun},
    uapi::{self, BlockRange, DefragData, FibmapData, RequestError},
};
use core::ptr::addr_of_mut;
use kernel::{bindings, c_str, ioctl::_IOWR, str::CStr};

/// Fails the current KUnit case unless `$cond` holds.
macro_rules! check {
    ($cond:expr) => {
        kernel::kunit_assert!("ext4_defrag", "rust/kunit_tests.rs", 0, $cond)
    };
}

fn fibmap(lblk: u64, flags: u32, reserved: u32) -> FibmapData {
    FibmapData {
        lblk,
        flags,
        reserved,
        ..Default::default()
    }
}

extern "C" fn fibmap_request_checks(_test: *mut bindings::kunit) {
    check!(uapi::check_fibmap_request(&fibmap(0, 0, 0)) == Ok(0));
    check!(uapi::check_fibmap_request(&fibmap(uapi::MAX_LBLK, 0, 0)) == Ok(0xffff_fffe));
    check!(
        uapi::check_fibmap_request(&fibmap(uapi::MAX_LBLK + 1, 0, 0))
            == Err(RequestError::BlockOutOfRange)
    );
    check!(
        uapi::check_fibmap_request(&fibmap(u64::MAX, 0, 0)) == Err(RequestError::BlockOutOfRange)
    );
    check!(uapi::check_fibmap_request(&fibmap(1, 1, 0)) == Err(RequestError::UnknownFlags));
    check!(uapi::check_fibmap_request(&fibmap(1, 0, 7)) == Err(RequestError::ReservedNotZero));
}

extern "C" fn ioctl_numbers_match_kernel(_test: *mut bindings::kunit) {
    check!(uapi::EXT4_IOC_DEFRAG == _IOWR::<uapi::DefragData>(b'f' as u32, 0x60));
    check!(uapi::EXT4_IOC_FIBMAP == _IOWR::<FibmapData>(b'f' as u32, 0x61));
    for cmd in [uapi::EXT4_IOC_DEFRAG, uapi::EXT4_IOC_FIBMAP] {
        let nr = kernel::ioctl::_IOC_NR(cmd);
        check!(kernel::ioctl::_IOC_TYPE(cmd) == u32::from(bindings::EXT4_HOOK_IOC_TYPE));
        check!(nr >= bindings::EXT4_HOOK_IOC_NR_FIRST);
        check!(nr <= bindings::EXT4_HOOK_IOC_NR_LAST);
    }
}

extern "C" fn map_states_round_trip(_test: *mut bindings::kunit) {
    let states = [
        (
            bindings::ext4_hook_map_state_EXT4_HOOK_MAP_HOLE,
            uapi::FIBMAP_HOLE,
        ),
        (
            bindings::ext4_hook_map_state_EXT4_HOOK_MAP_MAPPED,
            uapi::FIBMAP_MAPPED,
        ),
        (
            bindings::ext4_hook_map_state_EXT4_HOOK_MAP_UNWRITTEN,
            uapi::FIBMAP_UNWRITTEN,
        ),
        (
            bindings::ext4_hook_map_state_EXT4_HOOK_MAP_DELAYED,
            uapi::FIBMAP_DELAYED,
        ),
    ];
    for (raw, abi) in states {
        check!(matches!(MapState::from_raw(raw), Ok(s) if abi_state(s) == abi));
    }
    check!(MapState::from_raw(4).is_err());
}

extern "C" fn defrag_request_checks(_test: *mut bindings::kunit) {
    let req = |start_offset, defrag_size, goal, flags| DefragData {
        start_offset,
        defrag_size,
        goal,
        flags,
        ..Default::default()
    };
    // 4 KiB blocks, a 1000-block filesystem, a file of 10 blocks and a bit.
    let check = |r: &DefragData| uapi::check_defrag_request(r, 12, 1000, 40_000);
    check!(check(&req(0, 0, 0, 0)) == Ok(BlockRange { start: 0, end: 10 }));
    check!(check(&req(8192, 4096, 0, 0)) == Ok(BlockRange { start: 2, end: 3 }));
    check!(check(&req(8192, 1 << 30, 999, 0)) == Ok(BlockRange { start: 2, end: 10 }));
    check!(check(&req(1 << 30, 0, 0, 0)) == Ok(BlockRange { start: 10, end: 10 }));
    check!(check(&req(100, 0, 0, 0)) == Err(RequestError::BadRange));
    check!(check(&req(-4096, 0, 0, 0)) == Err(RequestError::BadRange));
    check!(check(&req(0, -1, 0, 0)) == Err(RequestError::BadRange));
    check!(check(&req(4096, i64::MAX, 0, 0)) == Err(RequestError::Overflow));
    check!(check(&req(0, 0, 1000, 0)) == Err(RequestError::BadGoal));
    check!(check(&req(0, 0, 0, uapi::DEFRAG_GOAL_ONLY)) == Err(RequestError::BadGoal));
    check!(check(&req(0, 0, 0, 0x10000)) == Err(RequestError::UnknownFlags));
    check!(check(&req(0, 0, 0, 13 << uapi::DEFRAG_UNIT_SHIFT)) == Err(RequestError::UnknownFlags));
    check!(uapi::defrag_unit_pages(4 << uapi::DEFRAG_UNIT_SHIFT) == Some(16));
    let mut r = req(0, 0, 0, 0);
    r.reserved = 1;
    check!(check(&r) == Err(RequestError::ReservedNotZero));
    // With DONOR_FD, `reserved` is the donor's file descriptor.
    r.flags = uapi::DEFRAG_DONOR_FD;
    check!(check(&r).is_ok());
}

extern "C" fn extent_counting_and_gain(_test: *mut bindings::kunit) {
    let count = |runs: &[(u64, u64, u64)]| {
        let mut c = ExtentCounter::default();
        for &(l, p, n) in runs {
            c.push(l, p, n);
        }
        c
    };
    // Logically and physically adjacent runs are one extent; a hole or a
    // physical jump starts another.
    let frag = count(&[(0, 100, 4), (4, 104, 4), (8, 300, 2), (20, 302, 1)]);
    check!(frag.extents() == 3 && frag.blocks() == 11 && frag.first_pblk() == Some(100));
    let one = count(&[(0, 500, 11)]);
    check!(plan::improves(&frag, &one, 0));
    check!(!plan::improves(&one, &frag, 0));
    let same = count(&[(0, 600, 11)]);
    check!(!plan::improves(&one, &same, 0));
    check!(plan::improves(&one, &same, 700));
    check!(!plan::improves(&one, &same, 400));
}

/// The mapping of a file made of `extents` (logical, physical, length; in
/// order, holes between), as `plan::resume_after` asks for it.
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

extern "C" fn resume_after_early_stop(_test: *mut bindings::kunit) {
    // A step over 100..110 whose donor had 1000.. for 100..104 and 1006..
    // for 106..110 (104..106 a hole).
    let donor = [
        MappedRun {
            lblk: 100,
            pblk: 1000,
            len: 4,
        },
        MappedRun {
            lblk: 106,
            pblk: 1006,
            len: 4,
        },
    ];
    let resume = |file: &[(u64, u64, u64)]| plan::resume_after(100, &donor, map_of(file));
    check!(resume(&[(100, 2000, 4), (106, 2006, 4)]) == Ok(100));
    check!(resume(&[(100, 1000, 4), (106, 1006, 1), (107, 2007, 3)]) == Ok(107));
    // The hole filled since: counting five data blocks would say 105.
    check!(
        resume(&[
            (100, 1000, 4),
            (104, 5000, 2),
            (106, 1006, 1),
            (107, 2007, 3)
        ]) == Ok(107)
    );
    // 101..103 punched since: counting six data blocks would say 110.
    check!(
        resume(&[
            (100, 1000, 1),
            (103, 1003, 1),
            (106, 1006, 2),
            (108, 2008, 2)
        ]) == Ok(108)
    );
    check!(resume(&[(100, 1000, 4), (106, 1006, 4)]) == Ok(110));
}

/// Plans `want` blocks from `goal` over the free runs `free`; returns the
/// placement and its pieces (at most 4).
fn place(free: &[Run], goal: u64, want: u64) -> (Placement, [Run; 4]) {
    let mut buf = [Run::default(); 4];
    let p = match placement::place(placement::slice_scan(free), goal, want, &mut buf) {
        Ok(p) => p,
        Err(never) => match never {},
    };
    (p, buf)
}

const fn run(start: u64, len: u64) -> Run {
    Run { start, len }
}

extern "C" fn placement_plans(_test: *mut bindings::kunit) {
    // A 1000-block filesystem whose last free run touches its last block.
    let free = [run(10, 100), run(500, 3), run(900, 100)];
    // At the goal when the run there holds it.
    let (p, b) = place(&free, 920, 50);
    check!(p.whole && p.pieces == 1 && b[0] == run(920, 50));
    // Goal = the last block: clamped to the end of the run there.
    let (p, b) = place(&free, 999, 50);
    check!(p.whole && b[0] == run(950, 50));
    check!(place(&free, 999, 1).1[0] == run(999, 1));
    // The nearest run that holds it whole (900 is 399 blocks away, the
    // end of the run at 10 is 451), not the run at the goal.
    let (p, b) = place(&free, 501, 60);
    check!(p.whole && b[0] == run(900, 60));
    // The fewest runs, short ones (less than a page) included.
    let (p, b) = place(&free, 0, 202);
    check!(!p.whole && p.pieces == 3 && p.blocks == 202);
    check!(b[0] == run(10, 100) && b[1] == run(500, 2) && b[2] == run(900, 100));
    // No free space: no pieces, never a panic.
    let (p, _) = place(&[], 5, 10);
    check!(p.pieces == 0 && p.blocks == 0);
    // Runs cut at a group end are joined.
    let (p, b) = place(&[run(100, 20), run(120, 20)], 0, 40);
    check!(p.whole && b[0] == run(100, 40));
    check!(placement::to_group_end(32768 + 5, 0, 32768) == 32763);
    check!(placement::to_group_end(8192, 1, 8192) == 1);
}

const fn case(
    name: &'static CStr,
    run: extern "C" fn(*mut bindings::kunit),
) -> bindings::kunit_case {
    // SAFETY: all-zero is a valid `kunit_case`: null pointers, `None`
    // function pointers and zero counters.
    let mut c: bindings::kunit_case = unsafe { core::mem::zeroed() };
    c.name = name.as_char_ptr();
    c.run_case = Some(run as unsafe extern "C" fn(*mut bindings::kunit));
    c
}

// KUnit writes each case's status and log into this array, hence `mut`.
static mut CASES: [bindings::kunit_case; 8] = [
    case(c_str!("fibmap_request_checks"), fibmap_request_checks),
    case(
        c_str!("ioctl_numbers_match_kernel"),
        ioctl_numbers_match_kernel,
    ),
    case(c_str!("map_states_round_trip"), map_states_round_trip),
    case(c_str!("defrag_request_checks"), defrag_request_checks),
    case(c_str!("extent_counting_and_gain"), extent_counting_and_gain),
    case(c_str!("placement_plans"), placement_plans),
    case(c_str!("resume_after_early_stop"), resume_after_early_stop),
    // SAFETY: the zeroed entry terminates the array, as KUnit expects.
    unsafe { core::mem::zeroed() },
];

const fn suite_name(name: &[u8]) -> [kernel::ffi::c_char; 256] {
    let mut out = [0; 256];
    let mut i = 0;
    while i < name.len() && i < 255 {
        out[i] = name[i] as kernel::ffi::c_char;
        i += 1;
    }
    out
}

static mut SUITE: bindings::kunit_suite = {
    // SAFETY: all-zero is a valid `kunit_suite` (no init/exit callbacks).
    let mut s: bindings::kunit_suite = unsafe { core::mem::zeroed() };
    s.name = suite_name(b"ext4_defrag");
    s.test_cases = addr_of_mut!(CASES).cast();
    s
};

#[used]
#[link_section = ".kunit_test_suites"]
static mut SUITE_ENTRY: *mut bindings::kunit_suite = addr_of_mut!(SUITE);
