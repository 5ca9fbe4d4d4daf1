//! `fraggen`: seeded fragmented ext4 layouts for the property tests (host
//! and QEMU), so that the tool and the module are tried on layouts nobody
//! tuned them for. Not installed for users.
//!
//! ```text
//! fraggen params SEED            block size, filesystem size (MiB) and
//!                                the layout's knobs for SEED
//! fraggen build SEED MOUNTPOINT  fill a fresh, mounted ext4 with the layout
//! fraggen copy SRC DST           copy a sparse image, holes kept
//! fraggen expect FILE GOAL|fit   where the placement contract puts FILE's
//!                                data for GOAL (from FS_IOC_GETFSMAP)
//! fraggen defrag-lent FILE DONOR EXT4_IOC_DEFRAG with a lent donor
//!                                (DONOR_FD): tmpfile, tmpfile-data,
//!                                tmpfile-prealloc, PATH; none: no donor
//! fraggen defrag-unit FILE N    EXT4_IOC_DEFRAG with a move unit of 2^N
//!                                pages, unchecked
//! fraggen donor-race LONG OTHER WHAT
//!                                a long call with a lent donor, and WHAT
//!                                done to that donor (or beside it) while
//!                                it runs
//! fraggen defrag-by-handle FILE EXT4_IOC_DEFRAG on FILE reopened by
//!                                handle (a disconnected dentry)
//! fraggen defrag-then-fsync FILE EXT4_IOC_DEFRAG, then fsync on the same
//!                                open file; both outcomes
//! fraggen stretches FILE N       N two-block stretches, each 2 extents,
//!                                a hole after each (nodelalloc mounts)
//! fraggen holey FILE N [STRETCH] FILE in one-block holes (about N extents),
//!                                then the rest of the space freed
//! fraggen interleave FILE N      N random 4 KiB blocks, each synced and
//!                                followed by a filler's: about N extents
//! fraggen scatter DIR N          N small files, each followed on disk by
//!                                a filler, every other filler deleted
//! fraggen fill DIR               one-block files until the disk is full;
//!                                prints how many
//! fraggen crowded DIR            the disk filled with 64-block files,
//!                                every other deleted, a 40-file set in
//!                                the holes, some immutable (making room)
//! fraggen crowd-params SEED      block size and filesystem size (MiB) of
//!                                the crowded layout of SEED
//! fraggen crowd SEED MOUNTPOINT  a crowded layout: no free run holds the
//!                                set or the big file (for making room)
//! fraggen bench SEED MOUNTPOINT FILES BIGS BIG_MIB LIST
//!                                the benchmark's image (make bench): a
//!                                scattered set, fragmented big files; the
//!                                set's read order into LIST
//! fraggen fragfile FILE EXTENTS BLOCKS
//!                                on a fresh filesystem: FILE of BLOCKS
//!                                blocks in about EXTENTS extents, and a
//!                                free run that holds it
//! fraggen blockmap MOUNTPOINT LIST
//!                                who holds which blocks: the listed files,
//!                                free space (the rest: other files and
//!                                metadata)
//! ```
//!
//! `build` fills all free space with fallocated filler files (no data is
//! written), then, file by file, frees holes in the fillers and writes the
//! file into them, so that its extents follow the holes: files of 1 to
//! 5000 extents, sparse files, a 300-file set in a deep tree and large
//! files. Last it frees holes of every size (1 block to tens of MiB) all
//! over the disk, the last blocks of the filesystem among them, for the
//! defragmenter to use. The same seed on the same kernel gives the same
//! sequence of operations; mount with `nodelalloc` so that blocks are
//! allocated by the writes themselves.

#[path = "fraggen/bench.rs"]
mod bench;
#[path = "fraggen/filled.rs"]
mod filled;
#[path = "fraggen/interleave.rs"]
mod interleave;
#[path = "common/rng.rs"]
mod rng;

use e4defrag::{defrag, fsmap, layout::Layout, moveext, placement};
use nix::fcntl::{fallocate, FallocateFlags};
use rng::Rng;
use std::{
    fs::{self, File, OpenOptions},
    io::{Read, Seek, SeekFrom, Write},
    os::{
        fd::{AsRawFd, FromRawFd},
        unix::fs::{FileExt, MetadataExt, PermissionsExt},
    },
    path::{Path, PathBuf},
    process::exit,
};

/// The layout's knobs, all from the seed.
#[derive(Debug)]
struct Params {
    block_size: u64,
    fs_mib: u64,
    /// Extents of the big fragmented files.
    big_extents: Vec<u64>,
    /// Files in the set (`boot/`).
    set_files: u64,
    /// Share of the disk freed at the end, in percent.
    free_percent: u64,
}

impl Params {
    fn of(seed: u64) -> Params {
        let mut rng = Rng::new(seed ^ 0x5eed);
        // Every fourth seed: 1 KiB blocks (deeper trees, more groups);
        // every fifth a filesystem of 2 GiB or more.
        let block_size = if seed % 4 == 1 { 1024 } else { 4096 };
        let fs_mib = if seed % 5 == 2 {
            rng.range(2048, 2560)
        } else if block_size == 1024 {
            rng.range(192, 512)
        } else {
            rng.range(256, 1024)
        };
        let mut big_extents = vec![1, rng.log_range(2, 60), rng.log_range(100, 1500)];
        if seed.is_multiple_of(3) {
            big_extents.push(rng.range(3000, 5000));
        }
        Params {
            block_size,
            fs_mib,
            big_extents,
            set_files: rng.range(60, 300),
            free_percent: rng.range(12, 40),
        }
    }
}

fn die(msg: impl std::fmt::Display) -> ! {
    eprintln!("fraggen: {msg}");
    exit(2)
}

/// Deterministic file content.
fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The filler files that hold all the space not given to files yet.
struct Fillers {
    files: Vec<File>,
    /// Logical size of each, in blocks.
    blocks: Vec<u64>,
    bs: u64,
}

impl Fillers {
    /// Fallocates the free space of `dir`'s filesystem into `n` fillers.
    fn fill(dir: &Path, n: usize, bs: u64) -> Fillers {
        fs::create_dir_all(dir).unwrap_or_else(|e| die(format!("{}: {e}", dir.display())));
        let st = nix::sys::statvfs::statvfs(dir).unwrap_or_else(|e| die(e));
        let free = st.blocks_free() * st.fragment_size() / bs;
        let mut files = Vec::new();
        let mut blocks = Vec::new();
        for i in 0..n {
            let f = OpenOptions::new()
                .create(true)
                .truncate(true)
                .read(true)
                .write(true)
                .open(dir.join(format!("filler{i}")))
                .unwrap_or_else(|e| die(e));
            // The last one takes what is left, shrinking until it fits.
            let mut want = if i + 1 == n { free } else { free / n as u64 };
            let mut got = 0;
            while want > 0 {
                let r = fallocate(
                    f.as_raw_fd(),
                    FallocateFlags::empty(),
                    (got * bs) as i64,
                    (want * bs) as i64,
                );
                match r {
                    Ok(()) => {
                        got += want;
                        if i + 1 < n {
                            break;
                        }
                    }
                    Err(_) => want /= 2,
                }
            }
            files.push(f);
            blocks.push(got);
        }
        Fillers { files, blocks, bs }
    }

    /// Frees `len` blocks of a random filler at a random place (only where
    /// blocks are still allocated, so the count is real).
    fn punch(&mut self, rng: &mut Rng, len: u64) -> u64 {
        let i = rng.range(0, self.files.len() as u64 - 1) as usize;
        if self.blocks[i] <= len {
            return 0;
        }
        let at = rng.range(0, self.blocks[i] - len);
        self.punch_at(i, at, len)
    }

    fn punch_at(&mut self, i: usize, at: u64, len: u64) -> u64 {
        self.try_punch(i, at, len).map_or(0, |()| len)
    }

    /// Frees `len` blocks of filler `i` from block `at`.
    fn try_punch(&self, i: usize, at: u64, len: u64) -> nix::Result<()> {
        fallocate(
            self.files[i].as_raw_fd(),
            FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE,
            (at * self.bs) as i64,
            (len * self.bs) as i64,
        )
    }

    /// Frees the filler blocks that end the filesystem: `len` blocks up
    /// to the last allocated block of any filler.
    fn punch_end(&mut self, len: u64) {
        let mut best: Option<(usize, u64, u64)> = None; // filler, lend, pend
        for (i, f) in self.files.iter().enumerate() {
            let l = Layout::of(f, self.bs).unwrap_or_else(|e| die(e));
            if let Some(r) = l.runs.iter().max_by_key(|r| r.pend()) {
                if best.is_none_or(|(_, _, p)| r.pend() > p) {
                    best = Some((i, r.lend(), r.pend()));
                }
            }
        }
        if let Some((i, lend, _)) = best {
            let len = len.min(lend);
            self.punch_at(i, lend - len, len);
        }
    }
}

/// Free blocks of `dir`'s filesystem, in `bs` units.
fn free_blocks(dir: &Path, bs: u64) -> u64 {
    let st = nix::sys::statvfs::statvfs(dir).unwrap_or_else(|e| die(e));
    st.blocks_free() * st.fragment_size() / bs
}

fn sync_fs(dir: &Path) {
    let f = File::open(dir).unwrap_or_else(|e| die(e));
    nix::unistd::syncfs(f.as_raw_fd()).unwrap_or_else(|e| die(e));
}

/// Writes `blocks` blocks of content into `path`; with `sparse`, only
/// every other stretch of up to 16 blocks (the rest stay holes).
fn write_file(path: &Path, seed: u64, blocks: u64, bs: u64, sparse: bool) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap_or_else(|e| die(e));
    }
    let f = File::create(path).unwrap_or_else(|e| die(format!("{}: {e}", path.display())));
    let data = content(seed, (blocks * bs) as usize);
    let mut rng = Rng::new(seed);
    let mut at = 0u64;
    let mut lblk = 0u64;
    while at < blocks {
        let n = if sparse { rng.range(1, 16) } else { 256 }.min(blocks - at);
        let buf = &data[(at * bs) as usize..((at + n) * bs) as usize];
        f.write_all_at(buf, lblk * bs).unwrap_or_else(|e| die(e));
        at += n;
        lblk += n;
        if sparse {
            lblk += rng.range(1, 64);
        }
    }
    f.sync_all().unwrap_or_else(|e| die(e));
}

fn build(seed: u64, mnt: &Path) {
    let p = Params::of(seed);
    let bs = p.block_size;
    let mut rng = Rng::new(seed);
    let fill_dir = mnt.join("fill");
    let mut fillers = Fillers::fill(&fill_dir, 16, bs);
    let per_mib = (1 << 20) / bs;
    let mut files: Vec<(PathBuf, u64)> = Vec::new();
    let mut written = 0u64;

    // Big files, each into holes freed just for it: about `extents` holes
    // whose sizes add up to the file.
    for (k, &extents) in p.big_extents.iter().enumerate() {
        let blocks = if extents == 1 {
            rng.range(per_mib, 4 * per_mib)
        } else {
            (extents * rng.range(1, 6)).max(rng.range(per_mib / 2, 8 * per_mib)) / extents * extents
        };
        let hole = (blocks / extents).max(1);
        // Holes of about `hole` blocks until the file and its tree blocks
        // fit (a punch of a place already free frees nothing).
        let need = free_blocks(mnt, bs) + blocks + 16 + blocks / 64;
        let mut tries = 0;
        while free_blocks(mnt, bs) < need && tries < extents * 8 + 256 {
            let len = rng.range(hole.div_ceil(2), hole + hole / 2);
            fillers.punch(&mut rng, len);
            tries += 1;
        }
        sync_fs(mnt);
        let sparse = k == 2 && seed.is_multiple_of(2);
        let path = mnt.join(format!("big/big{k}"));
        write_file(&path, seed * 1000 + k as u64, blocks, bs, sparse);
        files.push((path, blocks));
        written += blocks;
    }

    // The set: small files in a deep tree, each written after freeing
    // holes somewhere on the disk, so that the set ends up scattered.
    for i in 0..p.set_files {
        let depth = rng.range(0, 6);
        let mut dir = mnt.join("boot");
        for d in 0..depth {
            dir = dir.join(format!("d{}", (i + d) % 7));
        }
        let blocks = rng.log_range(1, 256 * 1024 / bs);
        let need = free_blocks(mnt, bs) + blocks + 8;
        let mut tries = 0;
        while free_blocks(mnt, bs) < need && tries < 1000 {
            let len = rng.log_range(1, blocks.max(2));
            fillers.punch(&mut rng, len);
            tries += 1;
        }
        sync_fs(mnt);
        let path = dir.join(format!("f{i:03}"));
        write_file(&path, seed * 1000 + 100 + i, blocks, bs, false);
        files.push((path, blocks));
        written += blocks;
    }

    // Free space for the defragmenter: holes of every size all over the
    // disk, and a run at its very end.
    let total_blocks = p.fs_mib * per_mib;
    let target = free_blocks(mnt, bs) + total_blocks * p.free_percent / 100;
    let mut tries = 0;
    while free_blocks(mnt, bs) < target && tries < 100_000 {
        let len = rng.log_range(1, (12 * per_mib).min(target / 4).max(2));
        fillers.punch(&mut rng, len);
        tries += 1;
    }
    fillers.punch_end(rng.range(1, 4 * per_mib));
    sync_fs(mnt);
    println!(
        "seed {seed}: {} B blocks, {} MiB, {} files ({} blocks written), {} % freed, big files {:?} extents asked",
        bs,
        p.fs_mib,
        files.len(),
        written,
        p.free_percent,
        p.big_extents
    );
}

/// The crowded layout's block size and filesystem size (MiB) for `seed`:
/// 1 KiB blocks for every fourth seed.
fn crowd_params(seed: u64) -> (u64, u64) {
    let mut rng = Rng::new(seed ^ 0xc40d);
    if seed % 4 == 1 {
        (1024, rng.range(128, 256))
    } else {
        (4096, rng.range(256, 384))
    }
}

/// Writes `blocks` blocks of content to a new file `path`; on an error
/// (ENOSPC) the file is removed and `false` returned.
fn try_write(path: &Path, seed: u64, blocks: u64, bs: u64) -> bool {
    let written =
        File::create(path).and_then(|f| f.write_all_at(&content(seed, (blocks * bs) as usize), 0));
    if written.is_err() {
        let _ = fs::remove_file(path);
    }
    written.is_ok()
}

/// A crowded filesystem, as a long-used disk is: it is filled to the last
/// block with small files (`others/dK/oN`, 1 block to 512 KiB), a seeded
/// share of them (25-40 %) is deleted, and then the set (`set/dK/fNNN`,
/// up to 200-300 files of 1 block to 256 KiB, written across directories,
/// at most a third of the free space) and one 8 MiB file (`big`, at most a
/// quarter) are written into the holes. The free space is
/// the holes the deleted files left: no free run holds the set or the big
/// file (checked; otherwise fraggen fails and says so), and only moving
/// other files can make one.
fn crowd(seed: u64, mnt: &Path) {
    let (bs, _) = crowd_params(seed);
    let mut rng = Rng::new(seed);
    let mut others = Vec::new();
    let mut full = false;
    while !full {
        let dir = mnt.join(format!("others/d{}", others.len() / 200));
        fs::create_dir_all(&dir).unwrap_or_else(|e| die(e));
        let path = dir.join(format!("o{}", others.len()));
        let blocks = rng.log_range(1, (512 << 10) / bs);
        if try_write(&path, seed << 20 | others.len() as u64, blocks, bs) {
            others.push(path);
            continue;
        }
        // The disk is nearly full: the last blocks in one-block files.
        full = true;
        for _ in 0..100_000 {
            let path = dir.join(format!("o{}", others.len()));
            if !try_write(&path, seed << 20 | others.len() as u64, 1, bs) {
                break;
            }
            others.push(path);
        }
    }
    sync_fs(mnt);
    let share = rng.range(25, 40);
    let mut deleted = 0;
    for path in &others {
        if rng.chance(share) {
            fs::remove_file(path).unwrap_or_else(|e| die(e));
            deleted += 1;
        }
    }
    sync_fs(mnt);
    // The set and the big file take at most a third and a quarter of the
    // free space: the rest is room to move other files to.
    let free = free_blocks(mnt, bs);
    let set_files = rng.range(200, 300);
    let (mut set_blocks, mut set_written) = (0, 0);
    for i in 0..set_files {
        let blocks = rng.log_range(1, (256 << 10) / bs);
        if set_blocks + blocks > free / 3 {
            break;
        }
        set_written += 1;
        let path = mnt.join(format!("set/d{}/f{i:03}", i % 6));
        fs::create_dir_all(path.parent().unwrap_or(mnt)).unwrap_or_else(|e| die(e));
        write_file(&path, seed * 1000 + i, blocks, bs, false);
        set_blocks += blocks;
    }
    let big_blocks = ((8 << 20) / bs).min(free / 4);
    write_file(&mnt.join("big"), seed * 1000 + 999, big_blocks, bs, false);
    sync_fs(mnt);
    let dir = File::open(mnt).unwrap_or_else(|e| die(e));
    let free = fsmap::free_runs(&dir, bs).unwrap_or_else(|e| die(format!("GETFSMAP: {e}")));
    let largest = free.iter().map(|r| r.len).max().unwrap_or(0);
    println!(
        "crowd seed {seed}: {bs} B blocks, {} others ({deleted} deleted, {share} %), set {} \
         files of {set_blocks} blocks, big {big_blocks} blocks, free {} blocks in {} runs, \
         largest {largest}",
        others.len(),
        set_written,
        free.iter().map(|r| r.len).sum::<u64>(),
        free.len()
    );
    if largest >= set_blocks.min(big_blocks) {
        die(format!(
            "seed {seed}: a free run of {largest} blocks holds the set or the big file; \
             not a crowded layout"
        ));
    }
}

/// Copies `src` to `dst`, only the data of a sparse file (SEEK_DATA).
fn copy_sparse(src: &Path, dst: &Path) {
    let mut s = File::open(src).unwrap_or_else(|e| die(e));
    let len = s.metadata().unwrap_or_else(|e| die(e)).len();
    let mut d = File::create(dst).unwrap_or_else(|e| die(e));
    d.set_len(len).unwrap_or_else(|e| die(e));
    let fd = s.as_raw_fd();
    let mut at = 0i64;
    let mut buf = vec![0u8; 1 << 20];
    use nix::unistd::{lseek, Whence};
    while (at as u64) < len {
        let Ok(data) = lseek(fd, at, Whence::SeekData) else {
            break;
        };
        let hole = lseek(fd, data, Whence::SeekHole).unwrap_or(len as i64);
        s.seek(SeekFrom::Start(data as u64))
            .unwrap_or_else(|e| die(e));
        d.seek(SeekFrom::Start(data as u64))
            .unwrap_or_else(|e| die(e));
        let mut left = (hole - data) as usize;
        while left > 0 {
            let n = left.min(buf.len());
            s.read_exact(&mut buf[..n]).unwrap_or_else(|e| die(e));
            d.write_all(&buf[..n]).unwrap_or_else(|e| die(e));
            left -= n;
        }
        at = hole;
    }
    d.sync_all().unwrap_or_else(|e| die(e));
}

/// Where the placement contract puts `path`'s data for `goal`, from the
/// free space GETFSMAP reports: "GOAL START DISTANCE" (or "GOAL none").
/// GOAL `fit` picks a goal inside the largest free run, with room for the
/// file from there.
fn expect(path: &Path, goal: &str) {
    let f = File::open(path).unwrap_or_else(|e| die(e));
    let st = nix::sys::statvfs::fstatvfs(&f).unwrap_or_else(|e| die(e));
    let bs = st.block_size();
    let want = Layout::of(&f, bs).unwrap_or_else(|e| die(e)).blocks();
    let free = fsmap::free_runs(&f, bs).unwrap_or_else(|e| die(format!("GETFSMAP: {e}")));
    let goal = match goal {
        "fit" => match free.iter().max_by_key(|r| r.len) {
            Some(r) if r.len >= want => r.start + (r.len - want) / 2,
            _ => {
                println!("0 none");
                return;
            }
        },
        n => n
            .parse()
            .unwrap_or_else(|_| die(format!("not a goal: {n}"))),
    };
    let mut scan = placement::slice_scan(&free);
    match placement::nearest_whole(&mut scan, goal, want, &[]) {
        Ok(Some((start, dist))) => println!("{goal} {start} {dist}"),
        _ => println!("{goal} none"),
    };
}

/// EXT4_IOC_DEFRAG of all of `path` with a lent donor (`DONOR_FD`):
/// `tmpfile` (a new empty O_TMPFILE), `tmpfile-data` (one with 4 KiB of
/// data), `tmpfile-prealloc` (an empty one with 64 KiB preallocated past
/// its end) or the path of a linked file. Prints "ok BYTES DATA" when the
/// call worked: the bytes the donor holds after it (its data and the
/// file's old blocks, kept until it is closed) and "intact" or "LOST" for
/// its own data; or the errno (for a temporary donor "ERRNO held BYTES":
/// what the donor holds after the failed call). `tmpfile-setuid` is an
/// empty O_TMPFILE with the set-user-ID bit. With `none`, the call without a donor:
/// "ok BEFORE -> AFTER" (extents) or the errno. With `goal-only=G`, a new
/// empty O_TMPFILE lent to a `GOAL_ONLY` call at goal G: "ok FIRST" (the
/// file's first block after it) or "ERRNO held BYTES size BYTES" (what
/// the donor holds after the failed call: nothing, if it freed the
/// blocks it allocated).
fn defrag_lent(path: &Path, donor: &str) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| die(e));
    if donor == "none" {
        defrag_alone(&file, path);
        return;
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    if let Some(goal) = donor.strip_prefix("goal-only=") {
        let goal = goal
            .parse()
            .unwrap_or_else(|_| die(format!("not a goal: {goal}")));
        defrag_goal_only_lent(&file, path, dir, goal);
        return;
    }
    let own = [7u8; 4096];
    let d = match donor {
        "tmpfile" | "tmpfile-data" | "tmpfile-prealloc" | "tmpfile-setuid" => {
            let d = moveext::donor_in(dir).unwrap_or_else(|e| die(e));
            if donor == "tmpfile-setuid" {
                d.set_permissions(fs::Permissions::from_mode(0o4600))
                    .unwrap_or_else(|e| die(e));
            }
            if donor == "tmpfile-data" {
                d.write_all_at(&own, 0).unwrap_or_else(|e| die(e));
                d.sync_all().unwrap_or_else(|e| die(e));
            }
            if donor == "tmpfile-prealloc" {
                fallocate(d.as_raw_fd(), FallocateFlags::FALLOC_FL_KEEP_SIZE, 0, 65536)
                    .unwrap_or_else(|e| die(e));
            }
            d
        }
        linked => OpenOptions::new()
            .read(true)
            .write(true)
            .open(linked)
            .unwrap_or_else(|e| die(e)),
    };
    let req = defrag::Request {
        donor_fd: Some(d.as_raw_fd()),
        unit_log2: 11,
        ..Default::default()
    };
    match defrag::defrag_file(&file, path, req) {
        Ok(_) => {
            let kept = Layout::of(&d, 1).map(|l| l.blocks()).unwrap_or(u64::MAX);
            let mut now = [0u8; 4096];
            let intact =
                donor != "tmpfile-data" || (d.read_exact_at(&mut now, 0).is_ok() && now == own);
            println!("ok {kept} {}", if intact { "intact" } else { "LOST" });
        }
        Err(e) => {
            let errno = errno_name(&e);
            if donor.starts_with("tmpfile") {
                let held = d.metadata().map(|m| m.blocks() * 512).unwrap_or(u64::MAX);
                println!("{errno} held {held}");
            } else {
                println!("{errno}");
            }
        }
    }
}

/// The errno of a failed call, by name ("EBUSY"), or "error".
fn errno_name(e: &e4defrag::error::Error) -> String {
    e.errno().map_or("error".into(), |n| format!("{n:?}"))
}

/// `donor-race LONG OTHER WHAT`: a long call moves LONG (one page per
/// step) through a new lent donor; half a second in, while it runs, WHAT is
/// done to the same donor or beside it:
/// `own-donor` (OTHER defragmented through a donor of its own),
/// `same-donor` (OTHER defragmented through the same donor),
/// `move-ext` (`EXT4_IOC_MOVE_EXT` of OTHER's first block with the donor),
/// `defrag-donor` (the donor's first 64 KiB moved to the middle of the disk),
/// `truncate` (the donor truncated to 0 by its owner).
/// Prints "long RESULT other RESULT overlap yes|no": RESULT is "ok" or the
/// errno, and overlap says whether the long call was still running when
/// WHAT returned (for `truncate`, when it began); a result that did not
/// overlap proves nothing.
fn donor_race(long: &Path, other: &Path, what: &str) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let open_rw = |p: &Path| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(p)
            .unwrap_or_else(|e| die(e))
    };
    let dir = long.parent().unwrap_or(Path::new("."));
    let donor = Arc::new(moveext::donor_in(dir).unwrap_or_else(|e| die(e)));
    let done = Arc::new(AtomicBool::new(false));
    let worker = {
        let (donor, done, long) = (Arc::clone(&donor), Arc::clone(&done), long.to_path_buf());
        let file = open_rw(&long);
        std::thread::spawn(move || {
            let req = defrag::Request {
                donor_fd: Some(donor.as_raw_fd()),
                unit_log2: 0,
                ..Default::default()
            };
            let r = defrag::defrag_file(&file, &long, req);
            done.store(true, Ordering::SeqCst);
            r.map(|_| "ok".to_string())
                .unwrap_or_else(|e| errno_name(&e))
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(500));
    let running_before = !done.load(Ordering::SeqCst);
    let other_result = match what {
        "own-donor" | "same-donor" => {
            let own;
            let d = if what == "own-donor" {
                own = moveext::donor_in(other.parent().unwrap_or(Path::new(".")))
                    .unwrap_or_else(|e| die(e));
                &own
            } else {
                &*donor
            };
            let req = defrag::Request {
                donor_fd: Some(d.as_raw_fd()),
                unit_log2: 11,
                ..Default::default()
            };
            let file = open_rw(other);
            defrag::defrag_file(&file, other, req)
                .map(|_| "ok".to_string())
                .unwrap_or_else(|e| errno_name(&e))
        }
        "move-ext" => match moveext::move_ext(&open_rw(other), &donor, 0, 0, 1) {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("{e:?}"),
        },
        "defrag-donor" => {
            // With a goal, so that the call moves whatever the donor's
            // layout (its planned blocks may already be one run), and only
            // its first 64 KiB, so that it reaches its first move step
            // while the long call still runs.
            let blocks = nix::sys::statvfs::fstatvfs(&*donor)
                .map(|s| s.blocks())
                .unwrap_or_else(|e| die(e));
            let req = defrag::Request {
                goal: blocks / 2,
                unit_log2: 11,
                size: 64 << 10,
                ..Default::default()
            };
            // The donor by its descriptor: it has no name.
            let path = PathBuf::from(format!("/proc/self/fd/{}", donor.as_raw_fd()));
            defrag::defrag_file(&donor, &path, req)
                .map(|_| "ok".to_string())
                .unwrap_or_else(|e| errno_name(&e))
        }
        "truncate" => match donor.set_len(0) {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("{e}"),
        },
        _ => die(format!("donor-race: unknown {what}")),
    };
    // A truncate can end the long call at once (its next step finds the
    // donor's blocks gone), so there the overlap is that the long call
    // still ran when the truncate began.
    let overlap = if what == "truncate" {
        running_before
    } else {
        !done.load(Ordering::SeqCst)
    };
    let long_result = worker
        .join()
        .unwrap_or_else(|_| die("the long call panicked"));
    println!(
        "long {long_result} other {other_result} overlap {}",
        if overlap { "yes" } else { "no" }
    );
}

/// `defrag-lent FILE goal-only=G` (see [`defrag_lent`]).
fn defrag_goal_only_lent(file: &File, path: &Path, dir: &Path, goal: u64) {
    let d = moveext::donor_in(dir).unwrap_or_else(|e| die(e));
    let req = defrag::Request {
        goal,
        goal_only: true,
        donor_fd: Some(d.as_raw_fd()),
        unit_log2: 11,
        ..Default::default()
    };
    match defrag::defrag_file(file, path, req) {
        Ok(_) => {
            let bs = nix::sys::statvfs::fstatvfs(file)
                .map(|s| s.block_size())
                .unwrap_or_else(|e| die(e));
            let first = Layout::of(file, bs)
                .ok()
                .and_then(|l| l.first_pblk())
                .unwrap_or(0);
            println!("ok {first}");
        }
        Err(e) => {
            let held = d.metadata().map(|m| m.blocks() * 512).unwrap_or(u64::MAX);
            let size = d.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
            let errno = errno_name(&e);
            println!("{errno} held {held} size {size}");
        }
    }
}

/// The call alone, without the tool's checks around it: prints "ok
/// BEFORE -> AFTER" (extents) or the errno.
fn defrag_alone(file: &File, path: &Path) {
    defrag_with_unit(file, path, 11);
}

/// `defrag-unit FILE N`: the call alone with a move unit of 2^N pages,
/// whatever N (the tool refuses N > 12 before the kernel sees it).
fn defrag_with_unit(file: &File, path: &Path, unit_log2: u32) {
    let req = defrag::Request {
        unit_log2,
        ..Default::default()
    };
    match defrag::defrag_file(file, path, req) {
        Ok(o) => println!("ok {} -> {}", o.extents_before, o.extents_after),
        Err(e) => println!("{}", errno_name(&e)),
    }
}

/// The call alone on FILE, then `fsync` on the same open file: prints
/// "defrag OK|ERRNO fsync OK|ERRNO", so that a test can see whether an
/// error of the module's write-back still reaches the application.
fn defrag_then_fsync(path: &Path) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| die(e));
    let req = defrag::Request {
        unit_log2: 11,
        ..Default::default()
    };
    let defrag = match defrag::defrag_file(&file, path, req) {
        Ok(_) => "ok".to_string(),
        Err(e) => errno_name(&e),
    };
    let fsync = match file.sync_all() {
        Ok(()) => "ok".to_string(),
        Err(e) => format!(
            "{:?}",
            nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))
        ),
    };
    println!("defrag {defrag} fsync {fsync}");
}

/// `struct file_handle` with room for the largest handle (MAX_HANDLE_SZ).
#[repr(C)]
struct FileHandle {
    bytes: u32,
    kind: i32,
    handle: [u8; 128],
}

/// Reopens `path` through `open_by_handle_at` after dropping the dentry
/// cache, so that the open file has a disconnected dentry (its own
/// parent), then makes the call alone as `defrag-lent FILE none` does.
fn defrag_by_handle(path: &Path) {
    let name =
        std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap_or_else(|e| die(e));
    let mut fh = FileHandle {
        bytes: 128,
        kind: 0,
        handle: [0; 128],
    };
    let mut mount_id = 0;
    // SAFETY: `name` is a NUL-terminated path, `fh` a handle buffer whose
    // `bytes` says how much room it has, `mount_id` a valid int.
    let r = unsafe {
        nix::libc::name_to_handle_at(
            nix::libc::AT_FDCWD,
            name.as_ptr(),
            (&mut fh as *mut FileHandle).cast(),
            &mut mount_id,
            0,
        )
    };
    if r != 0 {
        die(format!(
            "name_to_handle_at: {}",
            std::io::Error::last_os_error()
        ));
    }
    let dir = File::open(path.parent().unwrap_or(Path::new("."))).unwrap_or_else(|e| die(e));
    fs::write("/proc/sys/vm/drop_caches", "2").unwrap_or_else(|e| die(e));
    // SAFETY: `dir` is an open directory of the file's filesystem, `fh`
    // the handle filled in above.
    let fd = unsafe {
        nix::libc::open_by_handle_at(
            dir.as_raw_fd(),
            (&mut fh as *mut FileHandle).cast(),
            nix::libc::O_RDWR,
        )
    };
    if fd < 0 {
        die(format!(
            "open_by_handle_at: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let file = unsafe { File::from_raw_fd(fd) };
    defrag_alone(&file, path);
}

/// Writes `n` stretches of 2 blocks into `path`, a one-block hole after
/// each, in two passes (the first blocks of all, then the second blocks),
/// so that on a `nodelalloc` mount each stretch is 2 extents far apart:
/// a file whose defragmentation allocates once per stretch.
fn stretches(path: &Path, n: u64) {
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| die(e));
    let bs = nix::sys::statfs::fstatfs(&file)
        .map(|s| s.block_size() as u64)
        .unwrap_or_else(|e| die(e));
    let block = vec![0x5au8; bs as usize];
    for pass in 0..2 {
        for i in 0..n {
            file.write_all_at(&block, (3 * i + pass) * bs)
                .unwrap_or_else(|e| die(e));
        }
    }
    file.sync_all().unwrap_or_else(|e| die(e));
}

/// `fraggen holey FILE N [STRETCH]`: on a small, fresh filesystem, FILE
/// written into one-block holes so that it has about N extents (a deep
/// extent tree for thousands), then the rest of the space freed so that a
/// contiguous copy fits. With STRETCH, FILE is sparse: STRETCH - 1 blocks
/// of data, then a one-block hole, and so on. Blocks are the
/// filesystem's. One fallocated filler takes all the free space and every
/// other block of its start is punched (the guest scripts' `make_holey`
/// wrote thousands of one-block files and unlinked them, which under TCG
/// took minutes); the punched blocks are committed before FILE is
/// written, since blocks freed in the running transaction reach the
/// allocator only at its commit.
fn holey(path: &Path, n: u64, stretch: u64) {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let bs = nix::sys::statfs::statfs(dir)
        .map(|s| s.block_size() as u64)
        .unwrap_or_else(|e| die(e));
    // Space freed just before (rm -rf of the last layout) is the
    // allocator's only once committed.
    sync_fs(dir);
    let fill_dir = dir.join("holey.fill");
    let fillers = Fillers::fill(&fill_dir, 1, bs);
    let data = if stretch > 1 {
        n.div_ceil(stretch) * (stretch - 1)
    } else {
        n
    };
    // The data blocks, and a margin: the extent-tree blocks of FILE and
    // of the filler (one extent per hole each, bs / 12 extents to a
    // leaf) come out of the holes too, and ext4 keeps its reserve of
    // clusters from data writes but not from metadata. Twice their
    // count, and some.
    let holes = data + 4 * data * 12 / bs + 64;
    if 2 * holes > fillers.blocks[0] {
        die(format!(
            "{}: {} free blocks, not enough for {holes} holes",
            dir.display(),
            fillers.blocks[0]
        ));
    }
    // A punch splits the filler's extent, and the split may need a tree
    // block: with the filesystem full, only the blocks punched before can
    // give it, once committed (ENOSPC until then: commit, try again), or,
    // before any (ext4's reserve of clusters set to 0), a block cut off the
    // filler's end.
    let mut filler_blocks = fillers.blocks[0];
    for i in 0..holes {
        let mut r = fillers.try_punch(0, 2 * i, 1);
        let mut tries = 0;
        while r == Err(nix::errno::Errno::ENOSPC) && tries < 64 {
            if tries > 0 && filler_blocks > 2 * holes {
                filler_blocks -= 1;
                fillers.files[0]
                    .set_len(filler_blocks * bs)
                    .unwrap_or_else(|e| die(e));
            }
            sync_fs(dir);
            r = fillers.try_punch(0, 2 * i, 1);
            tries += 1;
        }
        if let Err(e) = r {
            die(format!("punching block {} of the filler: {e}", 2 * i));
        }
    }
    sync_fs(dir);
    let f = File::create(path).unwrap_or_else(|e| die(format!("{}: {e}", path.display())));
    let step = if stretch > 1 { stretch - 1 } else { n };
    let mut lblk = 0;
    let mut written = 0;
    while written < data {
        let len = step.min(data - written);
        let buf = content(lblk ^ n, (len * bs) as usize);
        f.write_all_at(&buf, lblk * bs).unwrap_or_else(|e| {
            die(format!(
                "{}: writing block {lblk} of {data} into {holes} holes: {e}",
                path.display()
            ))
        });
        written += len;
        lblk += if stretch > 1 { stretch } else { len };
    }
    f.sync_all().unwrap_or_else(|e| {
        die(format!(
            "{}: fsync of {data} blocks in {holes} holes: {e}",
            path.display()
        ))
    });
    drop(fillers);
    fs::remove_dir_all(&fill_dir).unwrap_or_else(|e| die(format!("{}: {e}", fill_dir.display())));
    sync_fs(dir);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let num = |s: &str| {
        s.parse::<u64>()
            .unwrap_or_else(|_| die(format!("not a number: {s}")))
    };
    match args.get(1).map(String::as_str) {
        Some("params") if args.len() == 3 => {
            let p = Params::of(num(&args[2]));
            println!("{} {} {}", p.block_size, p.fs_mib, p.set_files);
        }
        Some("build") if args.len() == 4 => build(num(&args[2]), Path::new(&args[3])),
        Some("copy") if args.len() == 4 => copy_sparse(Path::new(&args[2]), Path::new(&args[3])),
        Some("expect") if args.len() == 4 => expect(Path::new(&args[2]), &args[3]),
        Some("stretches") if args.len() == 4 => stretches(Path::new(&args[2]), num(&args[3])),
        Some("holey") if args.len() == 4 || args.len() == 5 => holey(
            Path::new(&args[2]),
            num(&args[3]),
            args.get(4).map_or(0, |s| num(s)),
        ),
        Some("interleave") if args.len() == 4 => {
            interleave::interleave_random(Path::new(&args[2]), num(&args[3]))
                .unwrap_or_else(|e| die(e))
        }
        Some("scatter") if args.len() == 4 => {
            interleave::scatter(Path::new(&args[2]), num(&args[3])).unwrap_or_else(|e| die(e))
        }
        Some("fill") if args.len() == 3 => {
            println!("{}", filled::fill(Path::new(&args[2])).unwrap_or_else(|e| die(e)))
        }
        Some("crowded") if args.len() == 3 => {
            filled::crowded(Path::new(&args[2])).unwrap_or_else(|e| die(e))
        }
        Some("defrag-lent") if args.len() == 4 => defrag_lent(Path::new(&args[2]), &args[3]),
        Some("defrag-unit") if args.len() == 4 => {
            let path = Path::new(&args[2]);
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .unwrap_or_else(|e| die(e));
            defrag_with_unit(&file, path, num(&args[3]) as u32);
        }
        Some("donor-race") if args.len() == 5 => {
            donor_race(Path::new(&args[2]), Path::new(&args[3]), &args[4])
        }
        Some("defrag-by-handle") if args.len() == 3 => defrag_by_handle(Path::new(&args[2])),
        Some("defrag-then-fsync") if args.len() == 3 => defrag_then_fsync(Path::new(&args[2])),
        Some("crowd-params") if args.len() == 3 => {
            let (bs, mib) = crowd_params(num(&args[2]));
            println!("{bs} {mib}");
        }
        Some("crowd") if args.len() == 4 => crowd(num(&args[2]), Path::new(&args[3])),
        Some("bench") if args.len() == 8 => bench::image(
            num(&args[2]),
            Path::new(&args[3]),
            [num(&args[4]), num(&args[5]), num(&args[6])],
            Path::new(&args[7]),
        ),
        Some("fragfile") if args.len() == 5 => {
            bench::fragfile(Path::new(&args[2]), num(&args[3]), num(&args[4]))
        }
        Some("blockmap") if args.len() == 4 => {
            bench::blockmap(Path::new(&args[2]), Path::new(&args[3]))
        }
        _ => die(
            "usage: fraggen params SEED | build SEED MNT | copy SRC DST | expect FILE GOAL \
             | defrag-lent FILE tmpfile|tmpfile-data|tmpfile-prealloc|PATH|none
             | defrag-unit FILE N | donor-race LONG OTHER WHAT | defrag-by-handle FILE | defrag-then-fsync FILE | stretches FILE N | holey FILE N [STRETCH] | interleave FILE N \
             | scatter DIR N | fill DIR | crowded DIR \
             | crowd-params SEED | crowd SEED MNT \
             | bench SEED MNT FILES BIGS BIG_MIB LIST | fragfile FILE EXTENTS BLOCKS \
             | blockmap MNT LIST",
        ),
    }
}
