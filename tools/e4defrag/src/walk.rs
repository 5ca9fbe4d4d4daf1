//! Which files a target names: a file, every regular file under a
//! directory, or every regular file of a mounted device. Never follows
//! symlinks, never leaves the starting filesystem, skips `lost+found` at
//! the filesystem's root.

use crate::{error::Error, mounts};
use nix::errno::Errno;
use std::{
    collections::HashSet,
    os::unix::{
        ffi::OsStrExt,
        fs::{FileTypeExt, MetadataExt},
    },
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

/// The order in which the files of a tree are listed (and `-r` places
/// them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeOrder {
    /// The order directory walks read a tree in (`find`, `grep -r`, `tar`,
    /// `cp -a`, `du`, `rsync`): each directory's entries as `readdir`
    /// returns them (on ext4 with `dir_index`, hash order), a
    /// subdirectory's files as soon as it is met (depth first).
    Walk,
    /// Sorted paths: the order `git` reads its index in.
    Path,
}

/// The regular files under `dir` in `order`, and the errors met on the
/// way (unreadable directories).
pub fn files_under(
    dir: &Path,
    mounts: &[mounts::Mount],
    order: TreeOrder,
) -> (Vec<PathBuf>, Vec<Error>) {
    let (mut files, mut errors) = (Vec::new(), Vec::new());
    each_file_under(dir, mounts, order, |f| match f {
        Ok(p) => files.push(p),
        Err(e) => errors.push(e),
    });
    (files, errors)
}

/// [`files_under`] a file at a time, as the walk finds them: in walk
/// order nothing is kept (`-c` of a whole filesystem); sorted paths are
/// gathered first.
pub fn each_file_under(
    dir: &Path,
    mounts: &[mounts::Mount],
    order: TreeOrder,
    mut each: impl FnMut(Result<PathBuf, Error>),
) {
    // `lost+found` is skipped only at the root of the filesystem, where
    // e2fsck keeps it.
    let root_dev = dir.metadata().map(|m| mounts::split_dev(m.dev())).ok();
    let fs_root = root_dev
        .and_then(|d| mounts::whole_fs(mounts, d))
        .map(|m| m.mount_point.clone());
    let lost_found = fs_root.map(|r| r.join("lost+found"));
    let mut sorted = Vec::new();
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .same_file_system(true)
        .into_iter()
        .filter_entry(|e| lost_found.as_deref() != Some(e.path()));
    for entry in walker {
        match entry {
            Ok(e) if e.file_type().is_file() => match order {
                TreeOrder::Walk => each(Ok(e.into_path())),
                TreeOrder::Path => sorted.push(e.into_path()),
            },
            Ok(_) => {}
            Err(e) => {
                let path = e.path().unwrap_or(dir).to_path_buf();
                let io = e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::from_raw_os_error(Errno::ELOOP as i32));
                each(Err(Error::io(&path, "walk")(io)));
            }
        }
    }
    sorted.sort();
    for p in sorted {
        each(Ok(p));
    }
}

/// What an order list (`--order`) did to a set, for the run's report.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct OrderSummary {
    /// Entries in the list (blank lines and comments not counted).
    pub entries: u64,
    /// Files of the set put in the list's order.
    pub in_order: u64,
    /// Entries that exist but are not a regular file of the set (outside
    /// its directory, on another filesystem, not a regular file).
    pub outside: u64,
    /// Entries that do not exist.
    pub missing: u64,
    /// Entries naming a file an earlier entry named already (the same
    /// path, or another path to it: a link, `..`, a hard link).
    pub duplicated: u64,
}

impl OrderSummary {
    /// Entries that did not place a file.
    pub fn ignored(&self) -> u64 {
        self.outside + self.missing + self.duplicated
    }
}

/// The entries of an order list: its lines but blank ones and comments
/// (`#`), as paths (an absolute line replaces `dir`). A list is bytes, as
/// file names are (`--record` writes them raw): a name that is not UTF-8
/// is a name like any other.
fn entries<'a>(dir: &'a Path, list: &'a [u8]) -> impl Iterator<Item = PathBuf> + 'a {
    list.split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
        .map(|l| dir.join(std::ffi::OsStr::from_bytes(l)))
}

/// Puts `files` into the order of `list` (paths one per line, absolute or
/// relative to `dir`; blank lines and lines starting with `#` ignored).
/// Entries are matched to files by identity (device and inode), so any
/// path to a file counts, whatever way `dir` or the entry is spelt.
/// Files the list does not name follow in their present order. Returns
/// the files, what the list did, and each entry that placed nothing with
/// the reason.
pub fn apply_order(
    dir: &Path,
    files: Vec<PathBuf>,
    list: &[u8],
) -> (Vec<PathBuf>, OrderSummary, Vec<(PathBuf, &'static str)>) {
    let id = |m: &std::fs::Metadata| (m.dev(), m.ino());
    let mut remaining: Vec<Option<PathBuf>> = files.into_iter().map(Some).collect();
    let index: std::collections::HashMap<(u64, u64), usize> = remaining
        .iter()
        .enumerate()
        .filter_map(|(i, p)| Some((id(&p.as_ref()?.symlink_metadata().ok()?), i)))
        .collect();
    let mut ordered = Vec::new();
    let mut summary = OrderSummary::default();
    let mut ignored = Vec::new();
    let mut seen = HashSet::new();
    for p in entries(dir, list) {
        summary.entries += 1;
        let why = match p.metadata() {
            Err(_) => {
                summary.missing += 1;
                "missing"
            }
            Ok(m) if !seen.insert(id(&m)) => {
                summary.duplicated += 1;
                "named before"
            }
            Ok(m) => match index.get(&id(&m)).and_then(|&i| remaining[i].take()) {
                Some(f) => {
                    ordered.push(f);
                    summary.in_order += 1;
                    continue;
                }
                None => {
                    summary.outside += 1;
                    "not a regular file of the set"
                }
            },
        };
        ignored.push((p, why));
    }
    ordered.extend(remaining.into_iter().flatten());
    (ordered, summary, ignored)
}

/// The regular files `list` (read as [`apply_order`] reads it) names
/// under `dir` on its filesystem, in the list's order, each once: the set
/// of `-r --order LIST --only-listed DIR`, found without walking `dir`
/// (for a boot list, a mount point's whole tree). An entry that is a
/// symbolic link or not a regular file, is on another filesystem or lies
/// outside `dir` counts as outside the set; one that does not exist, as
/// missing; another path to a file named before, as duplicated.
pub fn listed_files(
    dir: &Path,
    list: &[u8],
) -> (Vec<PathBuf>, OrderSummary, Vec<(PathBuf, &'static str)>) {
    let root = std::fs::canonicalize(dir).ok();
    let dev = dir.metadata().map(|m| m.dev()).ok();
    let mut files = Vec::new();
    let mut summary = OrderSummary::default();
    let mut ignored = Vec::new();
    let mut seen = HashSet::new();
    for p in entries(dir, list) {
        summary.entries += 1;
        let inside = |p: &Path| {
            std::fs::canonicalize(p)
                .ok()
                .zip(root.as_ref())
                .is_some_and(|(c, r)| c.starts_with(r))
        };
        let why = match p.symlink_metadata() {
            Err(_) => {
                summary.missing += 1;
                "missing"
            }
            Ok(m) if !m.file_type().is_file() || Some(m.dev()) != dev || !inside(&p) => {
                summary.outside += 1;
                "not a regular file of the set"
            }
            Ok(m) if !seen.insert((m.dev(), m.ino())) => {
                summary.duplicated += 1;
                "named before"
            }
            Ok(_) => {
                files.push(p);
                summary.in_order += 1;
                continue;
            }
        };
        ignored.push((p, why));
    }
    (files, summary, ignored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_list_first_then_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("d");
        std::fs::create_dir_all(d.join("e")).unwrap();
        let files: Vec<PathBuf> = ["a", "b", "c", "e/f"].iter().map(|n| d.join(n)).collect();
        for f in &files {
            std::fs::write(f, b"x").unwrap();
        }
        std::fs::write(tmp.path().join("x"), b"x").unwrap();
        std::os::unix::fs::symlink(&d, tmp.path().join("link")).unwrap();
        let top = tmp.path().display();
        // c by its path, e/f relative, c again through a link and through
        // "..", a missing entry, a file outside the set.
        let list = format!(
            "# boot trace\n{top}/d/c\ne/f\n\n{top}/link/c\n{top}/d/e/../c\n\
             {top}/d/missing\n{top}/x\n"
        );
        // The set's directory spelt another way.
        let dir = tmp.path().join("link/e/..");
        let (ordered, summary, ignored) = apply_order(&dir, files.clone(), list.as_bytes());
        let want = [&files[2], &files[3], &files[0], &files[1]];
        assert_eq!(ordered.iter().collect::<Vec<_>>(), want);
        // Both readers count the same entries the same way.
        let counted = OrderSummary {
            entries: 6,
            in_order: 2,
            outside: 1,
            missing: 1,
            duplicated: 2,
        };
        assert_eq!(summary, counted);
        assert_eq!(summary.ignored(), 4);

        let whys: Vec<&str> = ignored.iter().map(|(_, w)| *w).collect();
        assert_eq!(
            whys,
            [
                "named before",
                "named before",
                "missing",
                "not a regular file of the set"
            ]
        );
        // Only the listed ones, in the list's order, without a walk.
        let (listed, summary, ignored) = listed_files(&dir, list.as_bytes());
        assert_eq!(listed, [dir.join(format!("{top}/d/c")), dir.join("e/f"),]);
        assert_eq!(summary, counted);
        assert_eq!(ignored.len(), 4);
    }

    #[test]
    fn order_list_entries_are_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        // Latin-1 "café": not UTF-8, as --record writes it.
        let odd = std::ffi::OsStr::from_bytes(b"caf\xe9");
        let files = [dir.join("a"), dir.join(odd)];
        for f in &files {
            std::fs::write(f, b"x").unwrap();
        }
        let mut list = b"caf\xe9\n".to_vec();
        list.extend_from_slice(dir.join("a").as_os_str().as_bytes());
        list.push(b'\n');
        let (listed, summary, _) = listed_files(dir, &list);
        assert_eq!(listed, [dir.join(odd), dir.join("a")]);
        assert_eq!(summary.in_order, 2);
        let (ordered, _, _) = apply_order(dir, vec![files[0].clone(), files[1].clone()], &list);
        assert_eq!(ordered, [files[1].clone(), files[0].clone()]);
    }
}
