//! `workload`: a seeded random file workload with a model of what every
//! file must hold, for the guest's concurrency test (a defragmenter runs
//! on the same files meanwhile). Not installed for users.
//!
//! ```text
//! workload SEED OPS DIR
//! ```
//!
//! Keeps 8 files in DIR and applies OPS random operations to them: write,
//! append, punch a hole, truncate (down and up), fallocate (with and
//! without keeping the size, zero range), a write through a shared
//! mapping, an `O_DIRECT` write, renaming two files over each other,
//! unlinking and recreating one. Each operation is applied to an
//! in-memory model too. Defragmentation never changes data, so at the end
//! every file must read back exactly as the model says, whatever moved
//! meanwhile: prints the operations run per kind and exits 1 (naming the
//! file and the first differing byte) if one does not.

#[path = "common/rng.rs"]
mod rng;

use nix::{
    fcntl::{fallocate, FallocateFlags},
    libc,
    sys::mman::{mmap, msync, munmap, MapFlags, MsFlags, ProtFlags},
};
use rng::Rng;
use std::{
    collections::BTreeMap,
    fs::{self, File, OpenOptions},
    io::Write,
    num::NonZeroUsize,
    os::{
        fd::AsRawFd,
        unix::fs::{FileExt, OpenOptionsExt},
    },
    path::{Path, PathBuf},
    process::exit,
};

fn die(msg: impl std::fmt::Display) -> ! {
    eprintln!("workload: {msg}");
    exit(2)
}

const FILES: usize = 8;
const BLOCK: u64 = 4096;
/// Files stay below this size, so that the filesystem never fills up.
const MAX_SIZE: u64 = 2 << 20;

fn open_rw(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap_or_else(|e| die(format!("{}: {e}", path.display())))
}

/// The model's content of one file after writing `data` at `off`.
fn model_write(model: &mut Vec<u8>, off: u64, data: &[u8]) {
    let end = off as usize + data.len();
    if model.len() < end {
        model.resize(end, 0);
    }
    model[off as usize..end].copy_from_slice(data);
}

/// Writes through a shared mapping of the file's pages that cover `off`.
fn mmap_write(file: &File, off: u64, data: &[u8]) {
    let page = BLOCK; // the test guest's page size is the block size
    let start = off / page * page;
    let len = (off + data.len() as u64 - start) as usize;
    let len_nz = NonZeroUsize::new(len).unwrap_or_else(|| die("empty mapping"));
    // SAFETY: a fresh shared mapping of a file range inside its size (the
    // caller checked), used only here and unmapped below.
    let addr = unsafe {
        mmap(
            None,
            len_nz,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
            file,
            start as i64,
        )
    }
    .unwrap_or_else(|e| die(format!("mmap: {e}")));
    // SAFETY: `addr` maps `len` writable bytes; the copy stays inside them.
    unsafe {
        std::ptr::copy_nonoverlapping(
            data.as_ptr(),
            addr.cast::<u8>().as_ptr().add((off - start) as usize),
            data.len(),
        );
    }
    // SAFETY: `addr`/`len` is exactly the mapping made above.
    unsafe {
        // Every other mapping write is synced before the unmap.
        if off.is_multiple_of(2) {
            msync(addr, len, MsFlags::MS_SYNC).unwrap_or_else(|e| die(format!("msync: {e}")));
        }
        munmap(addr, len).unwrap_or_else(|e| die(format!("munmap: {e}")));
    }
}

/// An `O_DIRECT` write of whole blocks at a block-aligned offset, from a
/// block-aligned buffer.
fn direct_write(path: &Path, off: u64, data: &[u8]) {
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .unwrap_or_else(|e| die(format!("O_DIRECT open: {e}")));
    let layout =
        std::alloc::Layout::from_size_align(data.len(), BLOCK as usize).unwrap_or_else(|e| die(e));
    // SAFETY: a non-zero size (the caller writes at least one block).
    let buf = unsafe { std::alloc::alloc(layout) };
    if buf.is_null() {
        die("out of memory");
    }
    // SAFETY: `buf` holds `data.len()` bytes, freshly allocated.
    let slice = unsafe { std::slice::from_raw_parts_mut(buf, data.len()) };
    slice.copy_from_slice(data);
    let r = file.write_all_at(slice, off);
    // SAFETY: allocated above with the same layout, no longer used.
    unsafe { std::alloc::dealloc(buf, layout) };
    r.unwrap_or_else(|e| die(format!("O_DIRECT write: {e}")));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        die("usage: workload SEED OPS DIR");
    }
    let num = |s: &str| {
        s.parse::<u64>()
            .unwrap_or_else(|_| die(format!("not a number: {s}")))
    };
    let (seed, ops) = (num(&args[1]), num(&args[2]));
    let dir = PathBuf::from(&args[3]);
    let mut rng = Rng::new(seed);
    let path = |i: usize| dir.join(format!("w{i}"));
    let mut model: Vec<Vec<u8>> = vec![Vec::new(); FILES];
    for i in 0..FILES {
        File::create(path(i)).unwrap_or_else(|e| die(e));
    }
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for _ in 0..ops {
        let i = rng.below(FILES as u64) as usize;
        let p = path(i);
        let size = model[i].len() as u64;
        let kind = match rng.below(11) {
            0 | 1 => {
                // Block-aligned or not, inside or past the end.
                let off = rng.below(size.min(MAX_SIZE - 65536) + BLOCK);
                let n = 1 + rng.below(65536) as usize;
                let data = rng.bytes(n);
                open_rw(&p)
                    .write_all_at(&data, off)
                    .unwrap_or_else(|e| die(e));
                model_write(&mut model[i], off, &data);
                "write"
            }
            2 => {
                if size > MAX_SIZE - 65536 {
                    continue;
                }
                let n = 1 + rng.below(65536) as usize;
                let data = rng.bytes(n);
                let mut f = OpenOptions::new()
                    .append(true)
                    .open(&p)
                    .unwrap_or_else(|e| die(e));
                f.write_all(&data).unwrap_or_else(|e| die(e));
                let end = model[i].len() as u64;
                model_write(&mut model[i], end, &data);
                "append"
            }
            3 => {
                let off = rng.below(size + 1);
                let len = 1 + rng.below(65536);
                let f = open_rw(&p);
                let mode =
                    FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
                fallocate(f.as_raw_fd(), mode, off as i64, len as i64).unwrap_or_else(|e| die(e));
                let end = (off + len).min(size);
                if off < end {
                    model[i][off as usize..end as usize].fill(0);
                }
                "punch"
            }
            4 => {
                let new = rng.below(size + 2 * BLOCK).min(MAX_SIZE);
                open_rw(&p).set_len(new).unwrap_or_else(|e| die(e));
                model[i].resize(new as usize, 0);
                "truncate"
            }
            5 => {
                let off = rng.below(size + BLOCK);
                let len = 1 + rng.below(65536);
                if off + len > MAX_SIZE {
                    continue;
                }
                let f = open_rw(&p);
                let (mode, name) = match rng.below(3) {
                    0 => (FallocateFlags::empty(), "fallocate"),
                    1 => (FallocateFlags::FALLOC_FL_KEEP_SIZE, "fallocate-keep-size"),
                    _ => (FallocateFlags::FALLOC_FL_ZERO_RANGE, "zero-range"),
                };
                fallocate(f.as_raw_fd(), mode, off as i64, len as i64).unwrap_or_else(|e| die(e));
                let m = &mut model[i];
                if !mode.contains(FallocateFlags::FALLOC_FL_KEEP_SIZE)
                    && m.len() < (off + len) as usize
                {
                    m.resize((off + len) as usize, 0);
                }
                if name == "zero-range" {
                    let end = ((off + len) as usize).min(m.len());
                    if (off as usize) < end {
                        m[off as usize..end].fill(0);
                    }
                }
                name
            }
            6 => {
                if size == 0 {
                    continue;
                }
                let off = rng.below(size);
                let len = (1 + rng.below(8192)).min(size - off);
                let data = rng.bytes(len as usize);
                mmap_write(&open_rw(&p), off, &data);
                model_write(&mut model[i], off, &data);
                "mmap-write"
            }
            7 => {
                let off = rng.below(size / BLOCK + 2) * BLOCK;
                let len = (1 + rng.below(16)) * BLOCK;
                if off + len > MAX_SIZE {
                    continue;
                }
                let data = rng.bytes(len as usize);
                direct_write(&p, off, &data);
                model_write(&mut model[i], off, &data);
                "direct-write"
            }
            8 => {
                let j = rng.below(FILES as u64) as usize;
                if j == i {
                    continue;
                }
                // Rename i over j, then a new empty i.
                fs::rename(&p, path(j)).unwrap_or_else(|e| die(e));
                File::create(&p).unwrap_or_else(|e| die(e));
                model[j] = std::mem::take(&mut model[i]);
                "rename"
            }
            9 => {
                fs::remove_file(&p).unwrap_or_else(|e| die(e));
                File::create(&p).unwrap_or_else(|e| die(e));
                model[i].clear();
                "unlink"
            }
            _ => {
                open_rw(&p).sync_all().unwrap_or_else(|e| die(e));
                "fsync"
            }
        };
        *counts.entry(kind).or_default() += 1;
    }

    let mut out = std::io::stdout().lock();
    let total: u64 = counts.values().sum();
    let list: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(out, "{total} operations: {}", list.join(", "));
    let mut bad = false;
    for (i, want) in model.iter().enumerate() {
        let got = fs::read(path(i)).unwrap_or_else(|e| die(e));
        if &got != want {
            let at = got.iter().zip(want).position(|(a, b)| a != b);
            let _ = writeln!(
                out,
                "DATA WRONG: {}: {} bytes, model {}; first difference at {:?}",
                path(i).display(),
                got.len(),
                want.len(),
                at
            );
            bad = true;
        }
    }
    if bad {
        exit(1);
    }
}
