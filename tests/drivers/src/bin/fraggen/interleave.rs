//! Layouts made by interleaving synced writes of two files:
//!
//! * `fraggen interleave FILE N`: FILE written one 4 KiB block at a time,
//!   each block synced and followed by a synced block of a filler file
//!   that is deleted at the end, so that FILE gets about one extent per
//!   block (the guest scripts' `make_fragmented`; the host tests compile
//!   this file in for their `write_fragmented`, with their own bytes);
//! * `fraggen scatter DIR N`: N small files `DIR/fI` (1 to 3 blocks, less
//!   100 bytes), each followed on disk by a two-block filler
//!   `DIR.fill/gI`; every other filler is deleted afterwards (`scattered`,
//!   and the host tests' `scattered_dir`).
//!
//! What the scripts did with a `dd` and a `taskset` per write, in one
//! process: under TCG the process starts cost more than the writes. The
//! layout is the same: small requests share the per-CPU locality-group
//! preallocation when `mb_stream_req` is large, which is what interleaves
//! the files, so the process stays on CPU 0 and the knob is raised for the
//! writes (and put back after).

use std::{
    fs::{self, File, OpenOptions},
    io::Read,
    os::unix::fs::{FileExt, MetadataExt},
    path::{Path, PathBuf},
};

const BLOCK: usize = 4096;

/// Commits the filesystem `dir` is on (syncfs: a global sync() waits for
/// every filesystem of the machine, a wedged one among them).
pub fn sync_fs(dir: &Path) -> Result<(), String> {
    let f = File::open(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f))
        .map_err(|e| format!("syncfs {}: {e}", dir.display()))
}

/// `mb_stream_req` of the ext4 holding a path, raised while this lives.
struct StreamReq {
    knob: PathBuf,
    old: String,
}

/// `/sys/fs/ext4/DEV/KNOB` of the ext4 holding `path`.
pub fn ext4_knob(path: &Path, knob: &str) -> Result<PathBuf, String> {
    let dev = fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .dev();
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let link = fs::read_link(format!("/sys/dev/block/{major}:{minor}"))
        .map_err(|e| format!("the block device {major}:{minor}: {e}"))?;
    let name = link
        .file_name()
        .ok_or_else(|| format!("the block device {major}:{minor} has no name"))?;
    Ok(Path::new("/sys/fs/ext4").join(name).join(knob))
}

impl StreamReq {
    fn raise(dir: &Path) -> Result<StreamReq, String> {
        let knob = ext4_knob(dir, "mb_stream_req")?;
        let old = fs::read_to_string(&knob).map_err(|e| format!("{}: {e}", knob.display()))?;
        fs::write(&knob, "1000000").map_err(|e| format!("{}: {e}", knob.display()))?;
        Ok(StreamReq {
            knob,
            old: old.trim().to_string(),
        })
    }
}

impl Drop for StreamReq {
    fn drop(&mut self) {
        // Nothing more to do if it cannot be put back: say so.
        if let Err(e) = fs::write(&self.knob, &self.old) {
            eprintln!("fraggen: {}: {e}", self.knob.display());
        }
    }
}

fn pin_to_cpu0() -> nix::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(0)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
}

/// `data` at block `index` of `path`, written and synced through a file
/// opened for it alone (closing drops the file's own preallocation,
/// which would otherwise keep its blocks together), as `dd conv=fsync`.
fn write_block(path: &Path, index: u64, data: &[u8]) -> Result<(), String> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .and_then(|f| {
            f.write_all_at(data, index * BLOCK as u64)?;
            f.sync_all()
        })
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn random(len: usize) -> Result<Vec<u8>, String> {
    let mut data = vec![0u8; len];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut data))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(data)
}

/// `n` random blocks into `path`, interleaved.
pub fn interleave_random(path: &Path, n: u64) -> Result<(), String> {
    interleave(path, &random(n as usize * BLOCK)?)
}

/// `data` into `path`, one block at a time, each followed by a filler's
/// block (`data` may end in a partial block).
pub fn interleave(path: &Path, data: &[u8]) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    pin_to_cpu0().map_err(|e| format!("sched_setaffinity: {e}"))?;
    let _knob = StreamReq::raise(dir)?;
    let filler = with_suffix(path, ".filler");
    let zero = [0u8; BLOCK];
    for (i, block) in data.chunks(BLOCK).enumerate() {
        write_block(path, i as u64, block)?;
        write_block(&filler, i as u64, &zero)?;
    }
    fs::remove_file(&filler).map_err(|e| format!("{}: {e}", filler.display()))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

pub fn scatter(dir: &Path, n: u64) -> Result<(), String> {
    let fill = with_suffix(dir, ".fill");
    for d in [dir, &fill] {
        fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    pin_to_cpu0().map_err(|e| format!("sched_setaffinity: {e}"))?;
    let _knob = StreamReq::raise(dir)?;
    let zero = [0u8; 2 * BLOCK];
    for i in 0..n {
        let data = random(BLOCK * (1 + i as usize % 3) - 100)?;
        write_block(&dir.join(format!("f{i}")), 0, &data)?;
        write_block(&fill.join(format!("g{i}")), 0, &zero)?;
    }
    for i in (0..n).step_by(2) {
        let g = fill.join(format!("g{i}"));
        fs::remove_file(&g).map_err(|e| format!("{}: {e}", g.display()))?;
    }
    sync_fs(dir)
}
