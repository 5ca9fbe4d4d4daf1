//! Which files a target names: a file, every regular file under a
//! directory, or every regular file of a mounted device. Never follows
//! symlinks, never leaves the starting filesystem, skips `lost+found` at
//! the filesystem's root.

use crate::{error::Error, mounts};
use nix::errno::Errno;
use std::{
    collections::HashSet,
    os::unix::fs::{FileTypeExt, MetadataExt},
    path::{Path, PathBuf},
};

/// What a command-line target is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    File(PathBuf),
    Dir(PathBuf),
    /// A block device and where its filesystem is mounted.
    Device {
        device: PathBuf,
        mount: PathBuf,
    },
}

/// Classifies `path` (not following a final symlink).
pub fn classify(path: &Path, mounts: &[mounts::Mount]) -> Result<Target, Error> {
    let meta = path.symlink_metadata().map_err(Error::io(path, "lstat"))?;
    let ft = meta.file_type();
    if ft.is_file() {
        Ok(Target::File(path.into()))
    } else if ft.is_dir() {
        Ok(Target::Dir(path.into()))
    } else if ft.is_block_device() {
        let dev = mounts::split_dev(meta.rdev());
        match mounts::whole_fs(mounts, dev) {
            Some(m) => Ok(Target::Device {
                device: path.into(),
                mount: m.mount_point.clone(),
            }),
            None => Err(Error::Refused {
                path: path.into(),
                reason: "block device is not mounted (e4defrag works on mounted filesystems)"
                    .into(),
            }),
        }
    } else if ft.is_symlink() && is_block_device(path) {
        // /dev/disk/by-uuid/..., /dev/mapper/...: devices are named through
        // links; a linked file or directory stays refused.
        let device = std::fs::canonicalize(path).map_err(Error::io(path, "realpath"))?;
        classify(&device, mounts)
    } else {
        Err(Error::Refused {
            path: path.into(),
            reason: if ft.is_symlink() {
                "a symbolic link (not followed)".into()
            } else {
                "not a regular file, directory or block device".into()
            },
        })
    }
}

/// Whether `path`, links followed, is a block device.
fn is_block_device(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.file_type().is_block_device())
}

/// The regular files under `dir`, in sorted path order, and the errors met
/// on the way (unreadable directories).
pub fn files_under(dir: &Path, mounts: &[mounts::Mount]) -> (Vec<PathBuf>, Vec<Error>) {
    // `lost+found` is skipped only at the root of the filesystem, where
    // e2fsck keeps it.
    let root_dev = dir.metadata().map(|m| mounts::split_dev(m.dev())).ok();
    let fs_root = root_dev
        .and_then(|d| mounts::whole_fs(mounts, d))
        .map(|m| m.mount_point.clone());
    let lost_found = fs_root.map(|r| r.join("lost+found"));
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .same_file_system(true)
        .into_iter()
        .filter_entry(|e| lost_found.as_deref() != Some(e.path()));
    for entry in walker {
        match entry {
            Ok(e) if e.file_type().is_file() => files.push(e.into_path()),
            Ok(_) => {}
            Err(e) => {
                let path = e.path().unwrap_or(dir).to_path_buf();
                let io = e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::from_raw_os_error(Errno::ELOOP as i32));
                errors.push(Error::io(&path, "walk")(io));
            }
        }
    }
    files.sort();
    (files, errors)
}

/// Puts `files` into the order of `list` (paths one per line, absolute or
/// relative to `dir`; blank lines and lines starting with `#` ignored).
/// Files the list does not name follow in their present order; names in
/// the list that are not among `files` are returned separately.
pub fn apply_order(dir: &Path, files: Vec<PathBuf>, list: &str) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut remaining: Vec<Option<PathBuf>> = files.into_iter().map(Some).collect();
    let index: std::collections::HashMap<PathBuf, usize> = remaining
        .iter()
        .enumerate()
        .map(|(i, p)| (p.clone().unwrap(), i))
        .collect();
    let mut ordered = Vec::new();
    let mut unknown = Vec::new();
    let mut seen = HashSet::new();
    for line in list.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let p = Path::new(line);
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            dir.join(p)
        };
        if !seen.insert(p.clone()) {
            continue;
        }
        match index.get(&p).and_then(|&i| remaining[i].take()) {
            Some(f) => ordered.push(f),
            None => unknown.push(p),
        }
    }
    ordered.extend(remaining.into_iter().flatten());
    (ordered, unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_list_first_then_the_rest() {
        let dir = Path::new("/d");
        let files: Vec<PathBuf> = ["/d/a", "/d/b", "/d/c", "/d/e/f"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let list = "# boot trace\n/d/c\ne/f\n\n/d/c\n/d/missing\n/elsewhere/x\n";
        let (ordered, unknown) = apply_order(dir, files, list);
        let want: Vec<PathBuf> = ["/d/c", "/d/e/f", "/d/a", "/d/b"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(ordered, want);
        assert_eq!(
            unknown,
            vec![PathBuf::from("/d/missing"), PathBuf::from("/elsewhere/x")]
        );
    }
}
