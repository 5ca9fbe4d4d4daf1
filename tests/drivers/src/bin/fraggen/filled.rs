//! Layouts made by filling the whole disk, for the guest scripts:
//!
//! * `fraggen fill DIR`: one-block files `DIR/0`, `DIR/1`, ... until the
//!   filesystem is full; prints how many (the scripts' `fill_fs`);
//! * `fraggen crowded DIR`: no reserved clusters; the free space filled
//!   with 64-block files `DIR/others/oN`, every other one deleted, a set
//!   of 40 files of 24 blocks `DIR/set/sN` written into the 64-block
//!   holes, every 30th remaining other file (o1, o61, ...) made
//!   immutable: no free run holds the set (the scripts' `crowded_set`,
//!   for making room).
//!
//! What the scripts did with a shell loop and a `dd` per file, in one
//! process: under TCG a thousand `dd` starts cost more than the writes.
//! The writes are the same: 4 KiB each, the set's synced per file.

use std::{
    fs::{self, File},
    io::{ErrorKind, Write},
    path::Path,
    process::Command,
};

use crate::{
    interleave::{ext4_knob, sync_fs},
    rng::Rng,
};

const BLOCK: usize = 4096;

fn mkdir(dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

fn remove(path: &Path) -> Result<(), String> {
    fs::remove_file(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Whether the disk is full: ENOSPC (or EDQUOT); any other error is one.
fn full(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded)
}

pub fn fill(dir: &Path) -> Result<u64, String> {
    mkdir(dir)?;
    let mut n = 0u64;
    loop {
        let path = dir.join(n.to_string());
        match fs::write(&path, b"\n") {
            Ok(()) => n += 1,
            Err(e) if full(&e) => {
                // The file may exist, empty: as the shell's echo left it.
                let _ = fs::remove_file(&path);
                break;
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    sync_fs(dir)?;
    Ok(n)
}

/// `blocks` blocks of `rng`'s bytes into a new `path`, 4 KiB per write
/// (as `dd bs=4096`), synced when `sync`; false when the disk is full
/// (the file is removed then).
fn write_blocks(path: &Path, rng: &mut Rng, blocks: usize, sync: bool) -> Result<bool, String> {
    let at = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut f = match File::create(path) {
        Ok(f) => f,
        Err(e) if full(&e) => return Ok(false),
        Err(e) => return Err(at(e)),
    };
    let mut block = [0u8; BLOCK];
    let mut done = Ok(());
    for _ in 0..blocks {
        for chunk in block.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next().to_le_bytes());
        }
        done = f.write_all(&block);
        if done.is_err() {
            break;
        }
    }
    if done.is_ok() && sync {
        done = f.sync_all();
    }
    match done {
        Ok(()) => Ok(true),
        Err(e) if full(&e) => {
            drop(f);
            remove(path)?;
            Ok(false)
        }
        Err(e) => Err(at(e)),
    }
}

/// `reserved_clusters` of the ext4 holding `dir` set to 0, so that the
/// fill takes every block.
fn no_reserved_clusters(dir: &Path) -> Result<(), String> {
    let knob = ext4_knob(dir, "reserved_clusters")?;
    fs::write(&knob, "0").map_err(|e| format!("{}: {e}", knob.display()))
}

pub fn crowded(dir: &Path) -> Result<(), String> {
    let (others, set) = (dir.join("others"), dir.join("set"));
    mkdir(&others)?;
    mkdir(&set)?;
    no_reserved_clusters(dir)?;
    let mut rng = Rng::new(0x63726f77);
    let mut n = 0;
    while write_blocks(&others.join(format!("o{n}")), &mut rng, 64, false)? {
        n += 1;
    }
    sync_fs(dir)?;
    for j in (0..n).step_by(2) {
        remove(&others.join(format!("o{j}")))?;
    }
    sync_fs(dir)?;
    for j in 0..40 {
        let path = set.join(format!("s{j}"));
        if !write_blocks(&path, &mut rng, 24, true)? {
            return Err(format!("{}: no room for the set", path.display()));
        }
    }
    for j in (1..n).step_by(60) {
        let path = others.join(format!("o{j}"));
        let out = Command::new("chattr")
            .arg("+i")
            .arg(&path)
            .output()
            .map_err(|e| format!("chattr: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "chattr +i {}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    sync_fs(dir)?;
    Ok(())
}
