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
    uapi::{self, FibmapData, RequestError},
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
static mut CASES: [bindings::kunit_case; 4] = [
    case(c_str!("fibmap_request_checks"), fibmap_request_checks),
    case(
        c_str!("ioctl_numbers_match_kernel"),
        ioctl_numbers_match_kernel,
    ),
    case(c_str!("map_states_round_trip"), map_states_round_trip),
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
