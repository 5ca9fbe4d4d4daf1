//! The Rust mirror of the ioctl ABI (`rust/uapi.rs`, compiled into both the
//! module and this tool) must match `include/uapi/linux/ext4_defrag.h`.
//! Compiles a C program against the header and compares every size,
//! offset, flag and command number it prints.

use e4defrag::uapi::{self, DefragData, FibmapData};
use std::{collections::HashMap, mem::offset_of, mem::size_of, path::Path, process::Command};

const PROBE: &str = r#"
#include <stddef.h>
#include <stdio.h>
#include <linux/ext4_defrag.h>
#define P(name, val) printf("%s %llu\n", name, (unsigned long long)(val))
#define OFF(s, f) P(#s "." #f, offsetof(struct s, f))
int main(void)
{
	P("sizeof.ext4_ext_defrag_data", sizeof(struct ext4_ext_defrag_data));
	OFF(ext4_ext_defrag_data, start_offset);
	OFF(ext4_ext_defrag_data, defrag_size);
	OFF(ext4_ext_defrag_data, goal);
	OFF(ext4_ext_defrag_data, flags);
	OFF(ext4_ext_defrag_data, reserved);
	OFF(ext4_ext_defrag_data, moved_blocks);
	OFF(ext4_ext_defrag_data, extents_before);
	OFF(ext4_ext_defrag_data, extents_after);
	P("sizeof.ext4_fibmap_data", sizeof(struct ext4_fibmap_data));
	OFF(ext4_fibmap_data, lblk);
	OFF(ext4_fibmap_data, pblk);
	OFF(ext4_fibmap_data, len);
	OFF(ext4_fibmap_data, state);
	OFF(ext4_fibmap_data, flags);
	OFF(ext4_fibmap_data, reserved);
	P("EXT4_IOC_DEFRAG", EXT4_IOC_DEFRAG);
	P("EXT4_IOC_FIBMAP", EXT4_IOC_FIBMAP);
	P("EXT4_DEFRAG_GOAL_ONLY", EXT4_DEFRAG_GOAL_ONLY);
	P("EXT4_DEFRAG_DRY_RUN", EXT4_DEFRAG_DRY_RUN);
	P("EXT4_DEFRAG_DONOR_FD", EXT4_DEFRAG_DONOR_FD);
	P("EXT4_DEFRAG_FLAGS_ALL", EXT4_DEFRAG_FLAGS_ALL);
	P("EXT4_DEFRAG_UNIT_SHIFT", EXT4_DEFRAG_UNIT_SHIFT);
	P("EXT4_DEFRAG_UNIT_MASK", EXT4_DEFRAG_UNIT_MASK);
	P("EXT4_DEFRAG_UNIT_MAX", EXT4_DEFRAG_UNIT_MAX);
	P("EXT4_DEFRAG_UNIT(5)", EXT4_DEFRAG_UNIT(5));
	P("EXT4_FIBMAP_HOLE", EXT4_FIBMAP_HOLE);
	P("EXT4_FIBMAP_MAPPED", EXT4_FIBMAP_MAPPED);
	P("EXT4_FIBMAP_UNWRITTEN", EXT4_FIBMAP_UNWRITTEN);
	P("EXT4_FIBMAP_DELAYED", EXT4_FIBMAP_DELAYED);
	return 0;
}
"#;

fn c_values() -> HashMap<String, u64> {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("probe.c");
    let bin = dir.path().join("probe");
    std::fs::write(&src, PROBE).unwrap();
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../include/uapi");
    let out = Command::new("cc")
        .args(["-Wall", "-Werror", "-I"])
        .arg(&include)
        .arg(&src)
        .arg("-o")
        .arg(&bin)
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(&bin).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

/// `("struct.field", offset)` as the probe names it.
macro_rules! off {
    ($c:literal, $t:ty, $f:ident) => {
        (concat!($c, ".", stringify!($f)), offset_of!($t, $f) as u64)
    };
}

#[test]
fn rust_mirror_matches_c_header() {
    let c = c_values();
    let rust: Vec<(&str, u64)> = vec![
        (
            "sizeof.ext4_ext_defrag_data",
            size_of::<DefragData>() as u64,
        ),
        off!("ext4_ext_defrag_data", DefragData, start_offset),
        off!("ext4_ext_defrag_data", DefragData, defrag_size),
        off!("ext4_ext_defrag_data", DefragData, goal),
        off!("ext4_ext_defrag_data", DefragData, flags),
        off!("ext4_ext_defrag_data", DefragData, reserved),
        off!("ext4_ext_defrag_data", DefragData, moved_blocks),
        off!("ext4_ext_defrag_data", DefragData, extents_before),
        off!("ext4_ext_defrag_data", DefragData, extents_after),
        ("sizeof.ext4_fibmap_data", size_of::<FibmapData>() as u64),
        off!("ext4_fibmap_data", FibmapData, lblk),
        off!("ext4_fibmap_data", FibmapData, pblk),
        off!("ext4_fibmap_data", FibmapData, len),
        off!("ext4_fibmap_data", FibmapData, state),
        off!("ext4_fibmap_data", FibmapData, flags),
        off!("ext4_fibmap_data", FibmapData, reserved),
        ("EXT4_IOC_DEFRAG", uapi::EXT4_IOC_DEFRAG.into()),
        ("EXT4_IOC_FIBMAP", uapi::EXT4_IOC_FIBMAP.into()),
        ("EXT4_DEFRAG_GOAL_ONLY", uapi::DEFRAG_GOAL_ONLY.into()),
        ("EXT4_DEFRAG_DRY_RUN", uapi::DEFRAG_DRY_RUN.into()),
        ("EXT4_DEFRAG_DONOR_FD", uapi::DEFRAG_DONOR_FD.into()),
        ("EXT4_DEFRAG_FLAGS_ALL", uapi::DEFRAG_FLAGS_ALL.into()),
        ("EXT4_DEFRAG_UNIT_SHIFT", uapi::DEFRAG_UNIT_SHIFT.into()),
        ("EXT4_DEFRAG_UNIT_MASK", uapi::DEFRAG_UNIT_MASK.into()),
        ("EXT4_DEFRAG_UNIT_MAX", uapi::DEFRAG_UNIT_MAX.into()),
        ("EXT4_DEFRAG_UNIT(5)", 5u64 << uapi::DEFRAG_UNIT_SHIFT),
        ("EXT4_FIBMAP_HOLE", uapi::FIBMAP_HOLE.into()),
        ("EXT4_FIBMAP_MAPPED", uapi::FIBMAP_MAPPED.into()),
        ("EXT4_FIBMAP_UNWRITTEN", uapi::FIBMAP_UNWRITTEN.into()),
        ("EXT4_FIBMAP_DELAYED", uapi::FIBMAP_DELAYED.into()),
    ];
    assert_eq!(
        rust.len(),
        c.len(),
        "every value the probe prints is compared"
    );
    for (name, value) in rust {
        assert_eq!(c.get(name), Some(&value), "{name}: C vs Rust");
    }
}
