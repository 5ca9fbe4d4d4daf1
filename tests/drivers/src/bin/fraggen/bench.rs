//! The benchmark's images and block map (`make bench`, tests/bench.py):
//! one seeded fragmented image that every variant starts from, files of a
//! chosen extent count for the module's growth figures, and who holds
//! which blocks for the before/after map.

use super::{content, die, free_blocks, sync_fs, write_file, Fillers};
use crate::rng::Rng;
use e4defrag::{fsmap, layout::Layout};
use nix::fcntl::{fallocate, FallocateFlags};
use std::{
    fs::{self, File},
    io::Write,
    os::{fd::AsRawFd, unix::fs::FileExt},
    path::{Path, PathBuf},
};

fn block_size(dir: &Path) -> u64 {
    nix::sys::statvfs::statvfs(dir)
        .map(|s| s.block_size())
        .unwrap_or_else(|e| die(e))
}

/// Frees holes in `fillers` until `blocks` more blocks are free (a punch of
/// a place already free frees nothing, hence the count), each hole
/// `lo..=hi` blocks long.
fn free_up(mnt: &Path, fillers: &mut Fillers, rng: &mut Rng, blocks: u64, lo: u64, hi: u64) {
    let bs = fillers.bs;
    let need = free_blocks(mnt, bs) + blocks;
    for _ in 0..100_000 {
        if free_blocks(mnt, bs) >= need {
            break;
        }
        let len = rng.log_range(lo, hi.max(lo + 1));
        fillers.punch(rng, len);
    }
    sync_fs(mnt);
}

/// The benchmark's image on the fresh ext4 mounted (`nodelalloc`) at
/// `mnt`: `[files, bigs, big_mib]` = a set of `files` small files (4 KiB
/// to 256 KiB, log-uniform) under `boot/` in six directories two levels
/// deep, each written into holes freed at random places just before it
/// (so the set is scattered and some files are in several extents), and
/// `bigs` files of `big_mib` MiB under `big/`, each written into holes of
/// 32 to 256 KiB (so each is in hundreds of extents). The rest of the
/// disk stays in a fallocated filler file (`fill/`, no data), but for the
/// free space the defragmenters get: holes of every size (about a tenth
/// of the disk), one run in the first half that holds the set and the
/// big files twice, and the filesystem's last blocks. `list` gets the set's read order: a
/// seeded shuffle, one absolute path per line (what `--order` reads).
pub fn image(seed: u64, mnt: &Path, [files, bigs, big_mib]: [u64; 3], list: &Path) {
    let bs = block_size(mnt);
    let mut rng = Rng::new(seed);
    let per_kib = |kib: u64| (kib << 10).div_ceil(bs);
    let total = nix::sys::statvfs::statvfs(mnt)
        .map(|s| s.blocks() * s.fragment_size() / bs)
        .unwrap_or_else(|e| die(e));
    let sizes: Vec<u64> = (0..files).map(|_| rng.log_range(1, per_kib(256))).collect();
    let set_blocks: u64 = sizes.iter().sum();
    let big_blocks = bigs * big_mib * per_kib(1024);

    // The run the set and the big files fit in twice over, kept first
    // (after a pad of a seeded size, so it lies anywhere in the first
    // half) in a file that is deleted at the end: fallocated on a fresh
    // filesystem, it is one physical run but for the group metadata.
    let run = 2 * (set_blocks + big_blocks);
    let pad = rng.range(0, (total / 2).saturating_sub(run));
    fs::create_dir_all(mnt.join("fill")).unwrap_or_else(|e| die(e));
    for (name, len) in [("pad", pad), ("run", run)] {
        let f = File::create(mnt.join("fill").join(name)).unwrap_or_else(|e| die(e));
        if len > 0 {
            fallocate(f.as_raw_fd(), FallocateFlags::empty(), 0, (len * bs) as i64)
                .unwrap_or_else(|e| die(format!("fallocate {name}: {e}")));
        }
    }
    let mut fillers = Fillers::fill(&mnt.join("fill"), 1, bs);

    for k in 0..bigs {
        let blocks = big_mib * per_kib(1024);
        free_up(
            mnt,
            &mut fillers,
            &mut rng,
            blocks + blocks / 64 + 16,
            per_kib(32),
            per_kib(256),
        );
        let path = mnt.join(format!("big/big{k}"));
        write_file(&path, seed * 1000 + 900 + k, blocks, bs, false);
    }

    let mut set: Vec<PathBuf> = Vec::new();
    for (i, &blocks) in sizes.iter().enumerate() {
        free_up(mnt, &mut fillers, &mut rng, blocks + 2, 1, blocks.max(2));
        let path = mnt.join(format!("boot/d{}/s{}/f{i:03}", i % 6, i % 4));
        write_file(&path, seed * 1000 + i as u64, blocks, bs, false);
        set.push(path);
    }

    // Free space: scattered holes, the run, the disk's last blocks.
    free_up(mnt, &mut fillers, &mut rng, total / 10, 1, per_kib(8 << 10));
    fs::remove_file(mnt.join("fill/run")).unwrap_or_else(|e| die(e));
    fillers.punch_end(per_kib(4 << 10));
    sync_fs(mnt);

    // The read order: Fisher-Yates with the seed.
    for i in (1..set.len()).rev() {
        set.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut out = File::create(list).unwrap_or_else(|e| die(e));
    for p in &set {
        writeln!(out, "{}", p.display()).unwrap_or_else(|e| die(e));
    }
    let dir = File::open(mnt).unwrap_or_else(|e| die(e));
    let free = fsmap::free_runs(&dir, bs).unwrap_or_else(|e| die(format!("GETFSMAP: {e}")));
    println!(
        "bench seed {seed}: {bs} B blocks, set {files} files of {set_blocks} blocks, \
         {bigs} big files of {big_blocks} blocks, free {} blocks in {} runs, largest {}",
        free.iter().map(|r| r.len).sum::<u64>(),
        free.len(),
        free.iter().map(|r| r.len).max().unwrap_or(0)
    );
}

/// On a fresh ext4 mounted `nodelalloc`: fills the free space, frees
/// about `extents` holes of `blocks / extents` blocks one hole apart, writes
/// `path` (`blocks` blocks) into them, then frees a run that holds it (and
/// its extent tree) for the defragmenter. Prints the file's extents.
pub fn fragfile(path: &Path, extents: u64, blocks: u64) {
    let dir = path.parent().unwrap_or(Path::new("."));
    let bs = block_size(dir);
    let extents = extents.clamp(1, blocks.max(1));
    let hole = blocks / extents;
    // A sixteenth more holes (two at least): the extent tree's blocks
    // come out of them too.
    let holes = extents + extents / 16 + 2;
    let mut fillers = Fillers::fill(&dir.join("fill"), 2, bs);
    if fillers.blocks[0] < 2 * holes * hole || fillers.blocks[1] < blocks + blocks / 16 + 64 {
        die(format!(
            "fragfile: no room for {blocks} blocks in {extents} extents (about 5 times that)"
        ));
    }
    for i in 0..holes {
        fillers.punch_at(0, 2 * i * hole, hole);
    }
    sync_fs(dir);
    let f = File::create(path).unwrap_or_else(|e| die(format!("{}: {e}", path.display())));
    let data = content(extents, (blocks * bs) as usize);
    for (i, chunk) in data.chunks((256 * bs) as usize).enumerate() {
        f.write_all_at(chunk, i as u64 * 256 * bs)
            .unwrap_or_else(|e| die(e));
    }
    f.sync_all().unwrap_or_else(|e| die(e));
    fillers.punch_at(1, 0, blocks + blocks / 16 + 64);
    sync_fs(dir);
    let got = Layout::of(&f, bs).unwrap_or_else(|e| die(e)).extents();
    println!("{got}");
}

/// Who holds which blocks of the filesystem mounted at `mnt`: "blocks
/// TOTAL BLOCK_SIZE" (TOTAL as statvfs counts, without the metadata's
/// overhead), then "free START LEN" per free run (GETFSMAP) and
/// "set START LEN" per extent of each file `list` names (FIEMAP); the
/// rest belongs to other files and metadata.
pub fn blockmap(mnt: &Path, list: &Path) {
    let bs = block_size(mnt);
    let st = nix::sys::statvfs::statvfs(mnt).unwrap_or_else(|e| die(e));
    println!("blocks {} {bs}", st.blocks() * st.fragment_size() / bs);
    let dir = File::open(mnt).unwrap_or_else(|e| die(e));
    for r in fsmap::free_runs(&dir, bs).unwrap_or_else(|e| die(format!("GETFSMAP: {e}"))) {
        println!("free {} {}", r.start, r.len);
    }
    let names = fs::read_to_string(list).unwrap_or_else(|e| die(e));
    for name in names.lines().filter(|l| !l.is_empty()) {
        let f = File::open(name).unwrap_or_else(|e| die(format!("{name}: {e}")));
        for r in Layout::of(&f, bs).unwrap_or_else(|e| die(e)).runs {
            println!("set {} {}", r.pblk, r.len);
        }
    }
}
