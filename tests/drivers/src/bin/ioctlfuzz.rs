//! `ioctlfuzz`: seeded random `EXT4_IOC_DEFRAG` and `EXT4_IOC_FIBMAP`
//! calls for the guest's hardening test. Not installed for users.
//!
//! ```text
//! ioctlfuzz SEED COUNT DIR OTHER_DIR
//! ```
//!
//! Makes a few files in DIR (an ext4 with the module loaded: fragmented,
//! sparse, empty, small, big) and opens descriptors of every kind the
//! ioctls may meet: read-write, read-only, write-only, append-only,
//! `O_PATH`, the directory, a FIFO, `/dev/null`, a file on OTHER_DIR (another
//! filesystem), a deleted file still open, a fresh `O_TMPFILE`. Then COUNT
//! calls, each on a random descriptor with random fields (offsets, sizes,
//! goals, flags, move units, donor descriptors, from "interesting" values
//! and from anywhere) and, now and then, a NULL or unmapped argument
//! pointer. Defragmentation never changes data: at the end every file must
//! hold what it held before. Prints how the calls ended (errno per
//! ioctl); exits 1 if any data changed. The kernel's side (no oops, no
//! WARN, e2fsck clean) is the calling script's to check.

#[path = "common/rng.rs"]
mod rng;

use e4defrag::uapi::{self, DefragData, FibmapData};
use nix::libc;
use rng::Rng;
use std::{
    collections::BTreeMap,
    fs::{self, File, OpenOptions},
    io::{Read, Seek, SeekFrom, Write},
    os::{
        fd::{AsRawFd, OwnedFd},
        unix::fs::{FileExt, OpenOptionsExt},
    },
    path::Path,
    process::exit,
};

fn die(msg: impl std::fmt::Display) -> ! {
    eprintln!("ioctlfuzz: {msg}");
    exit(2)
}

const BLOCK: u64 = 4096;

/// Writes `blocks` blocks of seeded data to `path`, every other block
/// synced next to a filler so that the file is fragmented, holes where
/// `sparse`.
fn make_file(rng: &mut Rng, path: &Path, blocks: u64, sparse: bool) -> Vec<u8> {
    let file = File::create(path).unwrap_or_else(|e| die(e));
    let filler_path = path.with_extension("filler");
    let filler = File::create(&filler_path).unwrap_or_else(|e| die(e));
    let mut data = vec![0u8; (blocks * BLOCK) as usize];
    for b in 0..blocks {
        if sparse && b % 3 == 1 {
            continue;
        }
        let chunk = &mut data[(b * BLOCK) as usize..((b + 1) * BLOCK) as usize];
        for byte in chunk.iter_mut() {
            *byte = rng.next() as u8;
        }
        file.write_all_at(chunk, b * BLOCK)
            .unwrap_or_else(|e| die(e));
        file.sync_data().unwrap_or_else(|e| die(e));
        filler
            .write_all_at(&[0u8; BLOCK as usize], b * BLOCK)
            .unwrap_or_else(|e| die(e));
        filler.sync_data().unwrap_or_else(|e| die(e));
    }
    file.set_len(blocks * BLOCK).unwrap_or_else(|e| die(e));
    drop(filler);
    fs::remove_file(filler_path).unwrap_or_else(|e| die(e));
    data
}

/// A value from the edges of the type and of the file, or anything.
fn offset(rng: &mut Rng, size: u64) -> i64 {
    match rng.below(10) {
        0 => 0,
        1 => (rng.below(size / BLOCK + 2) * BLOCK) as i64,
        2 => rng.below(size + 2) as i64,
        3 => -(rng.below(3) as i64) - 1,
        4 => i64::MAX - rng.below(2) as i64,
        5 => i64::MIN,
        6 => (size + BLOCK) as i64,
        7 => (1i64 << 44) - BLOCK as i64,
        8 => (rng.below(1 << 32) * BLOCK) as i64,
        _ => rng.next() as i64,
    }
}

fn goal(rng: &mut Rng, blocks: u64) -> u64 {
    match rng.below(8) {
        0..=2 => 0,
        3 => rng.below(blocks.max(1)),
        4 => blocks - 1,
        5 => blocks + rng.below(2),
        6 => u64::MAX - rng.below(2),
        _ => rng.next(),
    }
}

fn flags(rng: &mut Rng) -> u32 {
    if rng.chance(5) {
        return rng.next() as u32;
    }
    let mut f = 0;
    for bit in [
        uapi::DEFRAG_GOAL_ONLY,
        uapi::DEFRAG_DRY_RUN,
        uapi::DEFRAG_DONOR_FD,
    ] {
        if rng.chance(25) {
            f |= bit;
        }
    }
    f | (rng.below(uapi::DEFRAG_UNIT_MAX as u64 + 4) as u32) << uapi::DEFRAG_UNIT_SHIFT
}

fn errno_name(ret: i32) -> String {
    if ret >= 0 {
        return "ok".into();
    }
    nix::errno::Errno::last().to_string()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        die("usage: ioctlfuzz SEED COUNT DIR OTHER_DIR");
    }
    let num = |s: &str| {
        s.parse::<u64>()
            .unwrap_or_else(|_| die(format!("not a number: {s}")))
    };
    let (seed, count) = (num(&args[1]), num(&args[2]));
    let (dir, other) = (Path::new(&args[3]), Path::new(&args[4]));
    let mut rng = Rng::new(seed);

    // The files and what they hold.
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, blocks, sparse) in [
        ("frag", 64, false),
        ("sparse", 48, true),
        ("small", 1, false),
        ("big", 256, false),
        ("empty", 0, false),
    ] {
        let data = make_file(&mut rng, &dir.join(name), blocks, sparse);
        files.push((name.into(), data));
    }
    let other_path = other.join("ioctlfuzz-other");
    fs::write(&other_path, b"on another filesystem").unwrap_or_else(|e| die(e));
    let fifo = dir.join("fifo");
    let _ = fs::remove_file(&fifo);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .unwrap_or_else(|e| die(e));
    let deleted_data = make_file(&mut rng, &dir.join("deleted"), 32, false);
    let deleted = OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("deleted"))
        .unwrap_or_else(|e| die(e));
    fs::remove_file(dir.join("deleted")).unwrap_or_else(|e| die(e));

    // Descriptors of every kind, by name.
    let open = |path: &Path, opts: &mut OpenOptions| -> OwnedFd {
        opts.open(path)
            .unwrap_or_else(|e| die(format!("{}: {e}", path.display())))
            .into()
    };
    let mut fds: Vec<(&str, OwnedFd)> = Vec::new();
    for (name, _) in &files {
        let fd = open(&dir.join(name), OpenOptions::new().read(true).write(true));
        fds.push(("rw", fd));
    }
    let frag = dir.join("frag");
    fds.push(("ro", open(&frag, OpenOptions::new().read(true))));
    fds.push(("wo", open(&frag, OpenOptions::new().write(true))));
    fds.push((
        "append",
        open(&frag, OpenOptions::new().read(true).append(true)),
    ));
    fds.push((
        "path",
        open(
            &frag,
            OpenOptions::new().read(true).custom_flags(libc::O_PATH),
        ),
    ));
    fds.push(("dir", open(dir, OpenOptions::new().read(true))));
    fds.push((
        "fifo",
        open(&fifo, OpenOptions::new().read(true).write(true)),
    ));
    fds.push((
        "devnull",
        open(
            Path::new("/dev/null"),
            OpenOptions::new().read(true).write(true),
        ),
    ));
    fds.push((
        "otherfs",
        open(&other_path, OpenOptions::new().read(true).write(true)),
    ));
    fds.push((
        "deleted",
        deleted.try_clone().unwrap_or_else(|e| die(e)).into(),
    ));
    fds.push((
        "tmpfile",
        open(
            dir,
            OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_TMPFILE),
        ),
    ));

    let stat = nix::sys::statvfs::statvfs(dir).unwrap_or_else(|e| die(e));
    let blocks = stat.blocks() as u64;
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let mut moved = 0u64;
    for _ in 0..count {
        let (kind, fd) = &fds[rng.below(fds.len() as u64) as usize];
        let size = match nix::sys::stat::fstat(fd.as_raw_fd()) {
            Ok(st) => st.st_size.max(0) as u64,
            Err(_) => 0,
        };
        // Now and then no argument, or one the kernel cannot read.
        let bad_ptr = match rng.below(100) {
            0 => Some(std::ptr::null_mut::<u8>()),
            1 => Some(0x1000 as *mut u8),
            _ => None,
        };
        let (op, ret) = if rng.chance(70) {
            let mut req = DefragData {
                start_offset: offset(&mut rng, size),
                defrag_size: if rng.chance(40) {
                    0
                } else {
                    offset(&mut rng, size)
                },
                goal: goal(&mut rng, blocks),
                flags: flags(&mut rng),
                ..Default::default()
            };
            req.reserved = match rng.below(6) {
                0..=2 => 0,
                3 => fds[rng.below(fds.len() as u64) as usize].1.as_raw_fd() as u32,
                4 => rng.below(1024) as u32,
                _ => rng.next() as u32,
            };
            if rng.chance(3) {
                req.moved_blocks = rng.next();
            }
            let arg = bad_ptr.unwrap_or((&mut req as *mut DefragData).cast());
            // SAFETY: `arg` is the request above or a pointer the kernel
            // must reject (NULL, unmapped); the descriptor is open.
            let ret = unsafe { libc::ioctl(fd.as_raw_fd(), uapi::EXT4_IOC_DEFRAG as _, arg) };
            if ret == 0 {
                moved += req.moved_blocks;
            }
            ("defrag", ret)
        } else {
            let mut req = FibmapData {
                lblk: match rng.below(4) {
                    0 => rng.below(size / BLOCK + 2),
                    1 => uapi::MAX_LBLK + rng.below(3),
                    _ => rng.next(),
                },
                flags: if rng.chance(10) { rng.next() as u32 } else { 0 },
                reserved: if rng.chance(10) { rng.next() as u32 } else { 0 },
                ..Default::default()
            };
            let arg = bad_ptr.unwrap_or((&mut req as *mut FibmapData).cast());
            // SAFETY: as above.
            let ret = unsafe { libc::ioctl(fd.as_raw_fd(), uapi::EXT4_IOC_FIBMAP as _, arg) };
            ("fibmap", ret)
        };
        *outcomes
            .entry(format!("{op} {kind} {}", errno_name(ret)))
            .or_default() += 1;
    }

    let mut changed = Vec::new();
    for (name, want) in &files {
        let got = fs::read(dir.join(name)).unwrap_or_else(|e| die(e));
        if &got != want {
            changed.push(name.clone());
        }
    }
    let mut got = Vec::new();
    let mut d = deleted;
    d.seek(SeekFrom::Start(0)).unwrap_or_else(|e| die(e));
    d.read_to_end(&mut got).unwrap_or_else(|e| die(e));
    if got != deleted_data {
        changed.push("deleted".into());
    }
    let mut out = std::io::stdout().lock();
    for (what, n) in &outcomes {
        let _ = writeln!(out, "{n:6} {what}");
    }
    let _ = writeln!(
        out,
        "{count} calls, {moved} blocks moved by the successful defrags"
    );
    if !changed.is_empty() {
        let _ = writeln!(out, "DATA CHANGED: {}", changed.join(" "));
        exit(1);
    }
}
