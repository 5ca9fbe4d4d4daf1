//! Defragmenting files and colocating sets of files, through the module's
//! `EXT4_IOC_DEFRAG` or the stock kernel's `EXT4_IOC_MOVE_EXT`.

use crate::{
    blockmap, defrag,
    error::Error,
    ext4fs, fsmap,
    layout::{self, Layout, ReadOrder},
    makeroom, moveext,
    progress::Progress,
    score::Geometry,
    setplan,
};
use nix::{errno::Errno, fcntl::OFlag, sys::statvfs::fstatvfs};
use std::{
    fs::{File, OpenOptions},
    os::{
        fd::AsRawFd,
        unix::fs::{MetadataExt, OpenOptionsExt},
    },
    path::{Path, PathBuf},
};

/// Which kernel interface moves the blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// The ext4_defrag module's `EXT4_IOC_DEFRAG`.
    Module,
    /// `EXT4_IOC_MOVE_EXT` with a donor file filled by `fallocate`.
    MoveExt,
}

/// Does the module answer on `file`'s filesystem?
pub fn module_present(file: &File) -> bool {
    blockmap::query_module(file, 0) != Err(Errno::ENOTTY)
}

/// What the user asked for.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    pub dry_run: bool,
    /// Physical block to place a single file at (module only).
    pub goal: u64,
    pub goal_only: bool,
    /// Module move unit, log2 of pages.
    pub unit_log2: u32,
    /// With the module: when no free run holds a `-r` set (or a file the
    /// free space could hold in fewer extents), clear a region first,
    /// moving at most this many times its size of other files' blocks (0:
    /// never).
    pub max_evacuate: f64,
    /// Files of fewer extents are left as they are, by [`defrag_path`]
    /// (sets are placed whole).
    pub min_extents: u32,
}

/// How one file came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Moved.
    Done,
    /// Already as good as it gets (or no better layout was found).
    NothingToGain,
    /// `--dry-run`: the numbers say what would happen.
    DryRun,
    /// Not a candidate (empty file); not a failure.
    Skipped,
    Failed,
}

/// The result for one file, as printed and as put into `--json` (where a
/// file that failed before anything was known of it has no counts).
#[derive(Clone, Debug)]
pub struct FileReport {
    pub path: PathBuf,
    pub status: Status,
    /// Errno name on failure.
    pub errno: Option<String>,
    /// Why it failed or was skipped.
    pub reason: Option<String>,
    pub blocks: u64,
    pub extents_before: u32,
    pub extents_after: u32,
    pub moved_blocks: u64,
    /// The region cleared for the file, when no free run held it.
    pub room: Option<makeroom::Room>,
    /// Skipped because no run can move it (immutable, append-only, an
    /// active swap file, a running program, block-mapped, ...): not a
    /// failure unless `--strict`.
    pub cannot_move: bool,
}

impl serde::Serialize for FileReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        /// The path as `output::path_json` writes it.
        struct PathField<'a>(&'a Path);
        impl serde::Serialize for PathField<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                crate::output::path_json(self.0, s)
            }
        }
        // Nothing was known of a file that failed with no counts (it
        // could not be opened, say): no numbers that claim otherwise.
        let known = self.status != Status::Failed
            || self.blocks > 0
            || self.extents_before > 0
            || self.moved_blocks > 0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("path", &PathField(&self.path))?;
        m.serialize_entry("status", &self.status)?;
        if let Some(e) = &self.errno {
            m.serialize_entry("errno", e)?;
        }
        if let Some(r) = &self.reason {
            m.serialize_entry("reason", r)?;
        }
        if known {
            m.serialize_entry("blocks", &self.blocks)?;
            m.serialize_entry("extents_before", &self.extents_before)?;
            m.serialize_entry("extents_after", &self.extents_after)?;
            m.serialize_entry("moved_blocks", &self.moved_blocks)?;
        }
        if let Some(room) = &self.room {
            m.serialize_entry("room", room)?;
        }
        if self.cannot_move {
            m.serialize_entry("cannot_move", &true)?;
        }
        m.end()
    }
}

impl FileReport {
    fn new(path: &Path) -> Self {
        FileReport {
            path: path.into(),
            status: Status::Failed,
            errno: None,
            reason: None,
            blocks: 0,
            extents_before: 0,
            extents_after: 0,
            moved_blocks: 0,
            room: None,
            cannot_move: false,
        }
    }

    /// The report of a file that failed with `e` before anything was known.
    pub fn failed(path: &Path, e: &Error) -> Self {
        Self::new(path).fail(e)
    }

    fn skip(&mut self, reason: &str) {
        self.status = Status::Skipped;
        self.reason = Some(reason.into());
    }

    /// The report of a file that failed with `e`, or that is skipped
    /// because `e` came from what the file is (see [`why_unmovable`]).
    fn fail(mut self, e: &Error) -> Self {
        if let Some(why) = why_unmovable(&self.path, e) {
            self.skip(&why);
            self.cannot_move = true;
            return self;
        }
        self.status = Status::Failed;
        self.errno = e.errno().map(|n| format!("{n:?}"));
        self.reason = Some(e.to_string());
        self
    }
}

/// Why the failure `e` on `path` is no failure but what the file is: its
/// flags forbid a move, it is an active swap file, or a running program
/// (`ETXTBSY`). `None` for real failures.
fn why_unmovable(path: &Path, e: &Error) -> Option<String> {
    let errno = e.errno()?;
    if !matches!(
        errno,
        Errno::EPERM | Errno::ETXTBSY | Errno::EOPNOTSUPP | Errno::EBUSY
    ) {
        return None;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NOFOLLOW.bits())
        .open(path)
        .ok()?;
    if let Some(why) = ext4fs::unmovable_by_flags(&file) {
        return Some(why.into());
    }
    match errno {
        Errno::ETXTBSY if is_active_swap(path) => {
            Some("an active swap file (swapoff frees it for a move)".into())
        }
        Errno::ETXTBSY => Some("busy: a running program's file (ETXTBSY)".into()),
        Errno::EBUSY => Some(format!("busy ({e}); a later run tries again")),
        _ => None,
    }
}

/// Whether `path` is listed in `/proc/swaps`.
fn is_active_swap(path: &Path) -> bool {
    let (Ok(swaps), Ok(me)) = (std::fs::read("/proc/swaps"), std::fs::canonicalize(path)) else {
        return false;
    };
    swaps_list(&swaps, me.as_os_str().as_encoded_bytes())
}

/// Whether the text of `/proc/swaps` lists the file `name` (names there
/// escape blanks as octal).
fn swaps_list(swaps: &[u8], name: &[u8]) -> bool {
    swaps.split(|&b| b == b'\n').skip(1).any(|line| {
        let first = line
            .split(|&b| b == b' ' || b == b'\t')
            .next()
            .unwrap_or(b"");
        !first.is_empty() && crate::mounts::unescape_bytes(first) == name
    })
}

/// Opens a regular file to move its blocks (both ioctls want it
/// read-write), without following a symlink; returns it with the block
/// size of its filesystem (which must be ext4).
pub fn open_rw(path: &Path) -> Result<(File, u64), Error> {
    open_regular(path, true)
}

/// [`open_rw`], read-only when not `write` (a dry run).
fn open_regular(path: &Path, write: bool) -> Result<(File, u64), Error> {
    let file = OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(OFlag::O_NOFOLLOW.bits())
        .open(path)
        .map_err(Error::io(path, "open"))?;
    let meta = file.metadata().map_err(Error::io(path, "fstat"))?;
    if !meta.is_file() {
        return Err(Error::Refused {
            path: path.into(),
            reason: "not a regular file".into(),
        });
    }
    let block_size = ext4fs::block_size(&file, path)?;
    Ok((file, block_size))
}

/// Refuses to start when the filesystem has fewer than `blocks` free
/// blocks for the new copy.
fn check_free_space(file: &File, path: &Path, blocks: u64, block_size: u64) -> Result<(), Error> {
    let st = fstatvfs(file).map_err(Error::sys(path, "statvfs"))?;
    let free = st.blocks_available() as u64 * st.fragment_size() as u64 / block_size;
    if free < blocks {
        return Err(Error::Refused {
            path: path.into(),
            reason: format!("needs {blocks} free blocks for the new copy, {free} available"),
        });
    }
    Ok(())
}

/// Fails when `file` shrank while it was being moved.
fn check_size(file: &File, path: &Path, size_before: u64) -> Result<(), Error> {
    let now = file.metadata().map_err(Error::io(path, "fstat"))?.size();
    if now < size_before {
        return Err(Error::Refused {
            path: path.into(),
            reason: format!(
                "the file shrank during the run ({size_before} -> {now} bytes); \
                 what it holds now is intact"
            ),
        });
    }
    Ok(())
}

/// For the tests only: when `E4DEFRAG_TEST_STOP_BEFORE` names `path`, stop
/// this process (`SIGSTOP`) after planning that file's move and before
/// moving it, so that a test can change the file at exactly that moment.
fn test_stop_point(path: &Path) {
    test_stop_at(path.as_os_str());
}

/// For the tests only: stop this process (`SIGSTOP`) when
/// `E4DEFRAG_TEST_STOP_BEFORE` is `point` (a path, or a step such as
/// `evacuate:3`, before the fourth file moved out of a region). Only with
/// the `test-hooks` feature; without it, nothing.
pub(crate) fn test_stop_at(point: &std::ffi::OsStr) {
    #[cfg(feature = "test-hooks")]
    if std::env::var_os("E4DEFRAG_TEST_STOP_BEFORE").is_some_and(|p| p == point) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
    }
    #[cfg(not(feature = "test-hooks"))]
    let _ = point;
}

/// Why a file with inline data is skipped.
const INLINE: &str = "inline data (kept in the inode: no blocks to move)";

/// Blocks moved per `EXT4_IOC_MOVE_EXT` call: progress shows between them.
const MOVE_CHUNK: u64 = 2048;

/// Moves the stretches `pieces` of `file` (`(start, end, donor block)`)
/// into `donor`. Returns the blocks moved.
fn move_stretches(
    file: &File,
    path: &Path,
    donor: &File,
    pieces: impl IntoIterator<Item = (u64, u64, u64)>,
    progress: &Progress,
) -> Result<u64, Error> {
    let mut moved = 0;
    let meta = file.metadata().ok();
    let bs = meta.as_ref().map_or(4096, |m| m.blksize());
    let chunk = meta
        .as_ref()
        .map_or(128 << 10, |m| moveext::read_ahead_chunk(m.dev()));
    // With fast commits, each swap is committed before the file is left to
    // applications again (see `moveext::fast_commit_possible`).
    let commit_each = meta
        .as_ref()
        .is_none_or(|m| moveext::fast_commit_possible(m.dev()));
    for (start, end, to) in pieces {
        let mut at = start;
        while at < end {
            let len = MOVE_CHUNK.min(end - at);
            // ext4 reads a page it moves but finds not cached block by
            // block, a request each: read the chunk ahead in large ones.
            moveext::read_ahead(file, at, len, bs, chunk);
            let moved_now = moveext::move_ext(file, donor, at, to + (at - start), len);
            // A call that failed may have moved a part: commit that too.
            let committed = if commit_each {
                moveext::commit(file)
            } else {
                Ok(())
            };
            let n = moved_now.map_err(Error::sys(path, "EXT4_IOC_MOVE_EXT"))?;
            committed.map_err(Error::sys(path, "syncfs"))?;
            moved += n;
            progress.moved(n, bs);
            at += len;
            if at < end && progress.stop_requested().is_some() {
                return Err(Error::Sys {
                    path: path.into(),
                    op: "EXT4_IOC_MOVE_EXT",
                    errno: Errno::EINTR,
                });
            }
        }
    }
    Ok(moved)
}

/// The directory a donor for `path` is created in.
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Defragments one file with `EXT4_IOC_MOVE_EXT`: a donor with the same
/// holes, filled by `fallocate`, takes the data when it has fewer extents.
fn defrag_move_ext(
    file: &File,
    path: &Path,
    geo: &Geometry,
    block_size: u64,
    report: &mut FileReport,
    progress: &Progress,
) -> Result<(), Error> {
    let size = file.metadata().map_err(Error::io(path, "fstat"))?.size();
    let before = Layout::of(file, block_size).map_err(Error::sys(path, "FS_IOC_FIEMAP"))?;
    report.blocks = before.blocks();
    report.extents_before = before.extents();
    report.extents_after = report.extents_before;
    if u64::from(before.extents()) <= geo.best_extents(before.blocks()).max(1) {
        report.status = Status::NothingToGain;
        return Ok(());
    }
    check_free_space(file, path, before.blocks(), block_size)?;
    let dir = parent_of(path);
    let donor = moveext::donor_in(dir).map_err(Error::io(dir, "open(O_TMPFILE) donor"))?;
    for (start, end) in before.stretches() {
        moveext::allocate(&donor, start, end - start, block_size)
            .map_err(Error::sys(path, "fallocate"))?;
    }
    let planned = Layout::of(&donor, block_size).map_err(Error::sys(path, "FS_IOC_FIEMAP"))?;
    if planned.extents() >= before.extents() {
        report.status = Status::NothingToGain;
        return Ok(());
    }
    test_stop_point(path);
    // The donor has the same holes: each stretch at its own place.
    let same_place = before.stretches().into_iter().map(|(s, e)| (s, e, s));
    report.moved_blocks = move_stretches(file, path, &donor, same_place, progress)?;
    drop(donor);
    check_size(file, path, size)?;
    let after = Layout::of(file, block_size).map_err(Error::sys(path, "FS_IOC_FIEMAP"))?;
    report.extents_after = after.extents();
    report.status = Status::Done;
    Ok(())
}

/// `--dry-run` of one file: planned from FIEMAP and GETFSMAP (see
/// `dryrun`), at `--goal` or where the file starts; worth it when the
/// plan has fewer extents than the file, or (with a goal) as many nearer
/// to the goal, the rule both backends move by.
fn dry_run_file(
    file: &File,
    path: &Path,
    geo: &Geometry,
    block_size: u64,
    opts: &Options,
    report: &mut FileReport,
) -> Result<(), Error> {
    let before = Layout::of(file, block_size).map_err(Error::sys(path, "FS_IOC_FIEMAP"))?;
    report.blocks = before.blocks();
    report.extents_before = before.extents();
    report.extents_after = report.extents_before;
    report.status = Status::NothingToGain;
    if opts.goal == 0 && u64::from(before.extents()) <= geo.best_extents(before.blocks()).max(1) {
        return Ok(());
    }
    let goal = match opts.goal {
        0 => before.first_pblk().unwrap_or(0),
        g => g,
    };
    let plan = crate::dryrun::plan(file, block_size, goal, &[Some(&before)])
        .map_err(Error::sys(path, "FS_IOC_GETFSMAP"))?;
    let Some(after) = plan.into_iter().next().flatten() else {
        report.skip("no room for a new copy (the free space is smaller than the file)");
        return Ok(());
    };
    if opts.goal_only && after.first_pblk() != Some(opts.goal) {
        return Err(Error::Sys {
            path: path.into(),
            op: "EXT4_IOC_DEFRAG",
            errno: Errno::ENOSPC,
        });
    }
    if crate::plan::improves(&before.counter(), &after.counter(), opts.goal) {
        report.status = Status::DryRun;
        report.extents_after = after.extents();
        report.moved_blocks = after.blocks();
    }
    Ok(())
}

/// Extents can hold at most this many blocks (ext4's limit for written
/// extents), so a file of `n` blocks needs at least ⌈n / this⌉.
const MAX_EXTENT_BLOCKS: u64 = 32768;

/// Clears a region for `file` when no free run holds it but the free space
/// does, the file has more extents than its size needs, no goal was given
/// and `max_evacuate` allows (see `makeroom`). `None` when not needed or
/// not possible: then the file is defragmented as before (without
/// CAP_SYS_ADMIN no file moves to a goal; a file that cannot be moved out of
/// the way stops the clearing, what moved stays moved, whole). A dry run
/// makes no room.
fn room_for_file(
    file: &File,
    path: &Path,
    block_size: u64,
    opts: &Options,
    progress: &Progress,
) -> Option<makeroom::Room> {
    if opts.goal != 0 || opts.max_evacuate <= 0.0 || opts.dry_run {
        return None;
    }
    let layout = Layout::of(file, block_size).ok()?;
    let blocks = layout.blocks();
    if u64::from(layout.extents()) <= blocks.div_ceil(MAX_EXTENT_BLOCKS) {
        return None;
    }
    let free = fsmap::free_runs(file, block_size).ok()?;
    let total: u64 = free.iter().map(|r| r.len).sum();
    if free.iter().any(|r| r.len >= blocks) || total < blocks {
        return None;
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let want =
        makeroom::Want::with_ratio(blocks, layout.first_pblk().unwrap_or(0), opts.max_evacuate);
    let outcome = makeroom::make_room(dir, file, &[path.to_path_buf()], block_size, want);
    let why = match outcome {
        Ok(makeroom::Outcome::Made(room)) => return Some(room),
        _ if progress.stop_requested().is_some() => return None,
        other => why_no_room(other)?,
    };
    progress.warn(&format!(
        "{}: no free run holds its {blocks} blocks; {why}; it goes into the free runs \
         there are",
        path.display()
    ));
    None
}

/// Why making room came to nothing, for the user; `None` when no room
/// was needed (or it was made).
fn why_no_room(outcome: Result<makeroom::Outcome, Error>) -> Option<String> {
    Some(match outcome {
        // A file that cannot be moved out of the way (busy, say) stops
        // the clearing; what moved stays moved, whole.
        Err(e) => format!("making room stopped: {e}"),
        Ok(makeroom::Outcome::NotNeeded | makeroom::Outcome::Made(_)) => return None,
        Ok(makeroom::Outcome::TooCostly { cost, limit }) => format!(
            "making room would move {cost} blocks of other files, more than \
             --max-evacuate allows ({limit})"
        ),
        Ok(makeroom::Outcome::NoRegion) => "no region of that size can be cleared (blocks \
             that cannot move, or files that fit nowhere else)"
            .into(),
        Ok(makeroom::Outcome::GaveUp { tried }) => format!(
            "no region of that size was found that can be cleared ({tried} tried before the \
             search reached its work limit)"
        ),
    })
}

/// Defragments one file with the module, at `goal` (0: near its data).
fn defrag_module(
    file: &File,
    path: &Path,
    opts: &Options,
    goal: u64,
    report: &mut FileReport,
    progress: &Progress,
) -> Result<(), Error> {
    let meta = file.metadata().map_err(Error::io(path, "fstat"))?;
    let res = defrag_module_range(file, path, opts, goal, (0, 0), None, report);
    // Moved blocks are paced also when the move stopped part way.
    if !opts.dry_run {
        progress.moved(report.moved_blocks, meta.blksize());
    }
    res?;
    let size = meta.size();
    report.status = if opts.dry_run && report.moved_blocks > 0 {
        Status::DryRun
    } else if report.moved_blocks > 0 {
        Status::Done
    } else {
        Status::NothingToGain
    };
    if report.status == Status::Done {
        check_size(file, path, size)?;
    }
    Ok(())
}

/// One `EXT4_IOC_DEFRAG` call for the byte range `(start, size)` (size 0:
/// to the end); fills the report's counts from the kernel's answer.
/// With `donor_fd`, the module uses that donor (`DONOR_FD`).
fn defrag_module_range(
    file: &File,
    path: &Path,
    opts: &Options,
    goal: u64,
    (start, size): (u64, u64),
    donor_fd: Option<i32>,
    report: &mut FileReport,
) -> Result<(), Error> {
    let req = defrag::Request {
        goal,
        goal_only: opts.goal_only,
        dry_run: opts.dry_run,
        unit_log2: opts.unit_log2,
        start,
        size,
        donor_fd,
    };
    let (out, res) = defrag::defrag_file_counted(file, path, req);
    // The kernel fills the counts also when the move stopped early.
    if res.is_ok() || out.moved_blocks > 0 {
        report.extents_before = out.extents_before;
        report.extents_after = out.extents_after;
        report.moved_blocks = out.moved_blocks;
    }
    res
}

/// Defragments the file at `path` on its own. `goal` only with the module.
pub fn defrag_path(
    path: &Path,
    backend: Backend,
    geo: &Geometry,
    opts: &Options,
    progress: &Progress,
) -> FileReport {
    let mut report = FileReport::new(path);
    let res = (|| {
        // A dry run with the module asks the module, which plans from the
        // allocator's own view reading only the groups near the goal (the
        // call wants the file open for writing, and writes nothing); on a
        // read-only mount, and with MOVE_EXT, the file is opened read-only
        // and planned here.
        let kernel_dry_run = opts.dry_run && backend == Backend::Module;
        let write = !opts.dry_run || kernel_dry_run;
        let ((file, block_size), kernel_dry_run) = match open_regular(path, write) {
            Err(e) if kernel_dry_run && e.errno() == Some(Errno::EROFS) => {
                (open_regular(path, false)?, false)
            }
            res => (res?, kernel_dry_run),
        };
        let meta = file.metadata().map_err(Error::io(path, "fstat"))?;
        report.blocks = meta.blocks() * 512 / block_size;
        if meta.size() == 0 {
            report.skip("empty");
            return Ok(());
        }
        if ext4fs::has_inline_data(&file) {
            report.skip(INLINE);
            return Ok(());
        }
        // Asked before a donor is made for it.
        if let Some(why) = ext4fs::unmovable_by_flags(&file) {
            report.skip(why);
            report.cannot_move = true;
            return Ok(());
        }
        if opts.min_extents > 1 {
            let now = Layout::of(&file, block_size)
                .map_err(Error::sys(path, "FS_IOC_FIEMAP"))?
                .extents();
            if now < opts.min_extents {
                report.extents_before = now;
                report.extents_after = now;
                report.skip(&format!(
                    "{now} extents, fewer than --min-extents {}",
                    opts.min_extents
                ));
                return Ok(());
            }
        }
        if opts.dry_run && !kernel_dry_run {
            return dry_run_file(&file, path, geo, block_size, opts, &mut report);
        }
        // A new copy must fit next to the old one: a file larger than the
        // free space is left as it is, which is no failure. The module
        // knows best (it may use the blocks reserved for root): it says
        // ENOSPC, mostly before it moves anything, else when an extent
        // tree needed a block during the move (what moved stays moved).
        match backend {
            Backend::Module => {
                report.room = room_for_file(&file, path, block_size, opts, progress);
                if progress.stop_requested().is_some() {
                    report.skip("not moved: the run was stopped while room was made for it");
                    return Ok(());
                }
                let goal = report.room.as_ref().map_or(opts.goal, |r| r.start);
                match defrag_module(&file, path, opts, goal, &mut report, progress) {
                    Err(Error::Sys {
                        errno: Errno::ENOSPC,
                        ..
                    }) if !opts.goal_only => {
                        if report.moved_blocks > 0 {
                            let why = format!(
                                "free space ran out during the move (EXT4_IOC_DEFRAG: \
                                 ENOSPC): {} blocks moved, extents {} -> {}",
                                report.moved_blocks, report.extents_before, report.extents_after
                            );
                            report.skip(&why);
                        } else {
                            report.skip("no room for a new copy (EXT4_IOC_DEFRAG: ENOSPC)");
                        }
                        Ok(())
                    }
                    res => res,
                }
            }
            Backend::MoveExt => {
                if let Err(Error::Refused { reason, .. }) =
                    check_free_space(&file, path, report.blocks, block_size)
                {
                    report.skip(&reason);
                    return Ok(());
                }
                defrag_move_ext(&file, path, geo, block_size, &mut report, progress)
            }
        }
    })();
    match res {
        Ok(()) => report,
        Err(e) => report.fail(&e),
    }
}

/// The outcome of colocating a set.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SetReport {
    #[serde(serialize_with = "crate::output::path_json")]
    pub dir: PathBuf,
    pub backend: Backend,
    pub before: ReadOrder,
    pub after: ReadOrder,
    /// Where the run of files starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_block: Option<u64>,
    /// What `--order` did (the caller fills it in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<crate::walk::OrderSummary>,
    /// The region cleared for the set, when no free run held it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<makeroom::Room>,
}

/// Layouts of `files`, `None` where one cannot be read.
fn layouts_of(files: &[PathBuf], block_size: u64) -> Vec<Option<Layout>> {
    files
        .iter()
        .map(|p| {
            let f = File::open(p).ok()?;
            Layout::of(&f, block_size).ok()
        })
        .collect()
}

/// Blocks to a page.
fn per_page(block_size: u64) -> u64 {
    (page_size() / block_size).max(1)
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |v| v as u64)
}

/// Puts the regular files `files` (in read order) physically one after
/// the other, near `dir`. Returns one report per file and one for the set.
pub fn colocate(
    dir: &Path,
    files: &[PathBuf],
    backend: Backend,
    opts: &Options,
    progress: &Progress,
) -> Result<(Vec<FileReport>, SetReport), Error> {
    let dir_file = File::open(dir).map_err(Error::io(dir, "open"))?;
    let block_size = ext4fs::block_size(&dir_file, dir)?;
    let before_layouts = layouts_of(files, block_size);
    let before = layout::read_order(before_layouts.iter().flatten(), block_size);
    // Files without blocks (empty ones) have no place to keep; every
    // other file must be mapped and in one run with the rest.
    if before.discontinuities == 0 && before_layouts.iter().all(Option::is_some) {
        // Already one run in read order: nothing to gain.
        let reports = nothing_to_gain(files, &before_layouts);
        let set = SetReport {
            dir: dir.into(),
            backend,
            before,
            after: before,
            start_block: before_layouts.iter().flatten().find_map(Layout::first_pblk),
            order: None,
            room: None,
        };
        return Ok((reports, set));
    }
    if opts.dry_run {
        return dry_run_set(dir, &dir_file, files, &before_layouts, backend, block_size);
    }
    // Too little free space for a new copy of the set is the one thing to
    // say (it was said after "the set goes into the free runs there are").
    let total: u64 = before_layouts.iter().flatten().map(Layout::blocks).sum();
    check_free_space(&dir_file, dir, total, block_size)?;
    let set = SetPlan {
        dir,
        dir_file: &dir_file,
        files,
        layouts: &before_layouts,
        block_size,
        goal: None,
    };
    let room = make_room(set, backend, opts, progress)?;
    // Stopped while room was made: the set is not moved.
    if let Some(sig) = progress.stop_requested() {
        return Err(Error::Refused {
            path: dir.into(),
            reason: format!("stopped by {sig} while making room; what moved stays moved"),
        });
    }
    let colocate_with = match backend {
        Backend::Module => colocate_module,
        Backend::MoveExt => colocate_move_ext,
    };
    let set = SetPlan {
        goal: room.as_ref().map(|r| r.start),
        ..set
    };
    let (reports, start_block) = colocate_with(set, opts, progress)?;
    let after = layout::read_order(layouts_of(files, block_size).iter().flatten(), block_size);
    let set = SetReport {
        dir: dir.into(),
        backend,
        before,
        after,
        start_block,
        order: None,
        room,
    };
    Ok((reports, set))
}

/// `-r --dry-run`: the set planned from FIEMAP and GETFSMAP (see
/// `dryrun`) from where `dir` starts, as the module plans it; the set's
/// line and the files' reports say what that plan gives.
fn dry_run_set(
    dir: &Path,
    dir_file: &File,
    files: &[PathBuf],
    layouts: &[Option<Layout>],
    backend: Backend,
    block_size: u64,
) -> Result<(Vec<FileReport>, SetReport), Error> {
    let goal = blockmap::query(dir_file, dir, 0, block_size, blockmap::Backend::Auto)
        .map_or(0, |m| m.pblk);
    let refs: Vec<Option<&Layout>> = layouts.iter().map(Option::as_ref).collect();
    let plan = crate::dryrun::plan(dir_file, block_size, goal, &refs)
        .map_err(Error::sys(dir, "FS_IOC_GETFSMAP"))?;
    // Files the plan has no room for stay where they are.
    let predicted: Vec<Layout> = layouts
        .iter()
        .zip(&plan)
        .filter_map(|(l, p)| p.clone().or_else(|| l.clone()))
        .collect();
    let before = layout::read_order(layouts.iter().flatten(), block_size);
    let after = layout::read_order(&predicted, block_size);
    let mut set = SetReport {
        dir: dir.into(),
        backend,
        before,
        after: before,
        start_block: None,
        order: None,
        room: None,
    };
    if let Some(reports) = no_better(files, layouts, &predicted, block_size) {
        return Ok((reports, set));
    }
    set.after = after;
    set.start_block = plan.iter().flatten().find_map(Layout::first_pblk);
    // Each file as it lies, and what the plan does to those it has room
    // for.
    let mut reports = nothing_to_gain(files, layouts);
    for (r, (now, planned)) in reports.iter_mut().zip(layouts.iter().zip(&plan)) {
        if let (Some(now), Some(planned)) = (now, planned) {
            if !now.runs.is_empty() {
                r.status = Status::DryRun;
                r.extents_after = planned.extents();
                r.moved_blocks = planned.blocks();
            }
        }
    }
    Ok((reports, set))
}

/// Clears a region for the set when no free run holds it (module backend,
/// `max_evacuate` > 0; see `makeroom`), saying why not when it does not.
fn make_room(
    set: SetPlan<'_>,
    backend: Backend,
    opts: &Options,
    progress: &Progress,
) -> Result<Option<makeroom::Room>, Error> {
    let (dir, dir_file, block_size) = (set.dir, set.dir_file, set.block_size);
    let total: u64 = set.layouts.iter().flatten().map(Layout::blocks).sum();
    if opts.max_evacuate <= 0.0 || total == 0 {
        return Ok(None);
    }
    if backend == Backend::MoveExt {
        let free = fsmap::free_runs(dir_file, block_size).unwrap_or_default();
        if !free.is_empty() && free.iter().all(|r| r.len < total) {
            progress.warn(&format!(
                "{}: no free run holds the set's {total} blocks; making room needs the \
                 ext4_defrag module, the set goes into the free runs there are",
                dir.display()
            ));
        }
        return Ok(None);
    }
    let near = blockmap::query_module(dir_file, 0).map_or(0, |m| m.pblk);
    let want = makeroom::Want::with_ratio(total, near, opts.max_evacuate);
    let outcome = makeroom::make_room(dir, dir_file, set.files, block_size, want);
    let why = match outcome {
        Ok(makeroom::Outcome::Made(room)) => return Ok(Some(room)),
        // Stopped: the caller says so; the set does not go anywhere.
        _ if progress.stop_requested().is_some() => return Ok(None),
        other => match why_no_room(other) {
            Some(why) => why,
            None => return Ok(None),
        },
    };
    progress.warn(&format!(
        "{}: no free run holds the set's {total} blocks; {why}; the set goes into the \
         free runs there are",
        dir.display()
    ));
    Ok(None)
}

/// What both colocation backends work from: the set's directory, its
/// files in read order and their layouts before the run.
#[derive(Clone, Copy)]
struct SetPlan<'a> {
    dir: &'a Path,
    dir_file: &'a File,
    files: &'a [PathBuf],
    layouts: &'a [Option<Layout>],
    block_size: u64,
    /// Where to plan the set from, when a region was cleared for it; else
    /// where its directory starts.
    goal: Option<u64>,
}

/// `None` when the set laid out as `predicted` (the files that have a
/// layout, in read order) reads better than as `layouts`; else a report
/// of "nothing to gain" for every file, and nothing is to be moved.
fn no_better(
    files: &[PathBuf],
    layouts: &[Option<Layout>],
    predicted: &[Layout],
    block_size: u64,
) -> Option<Vec<FileReport>> {
    let before = layout::read_order(layouts.iter().flatten(), block_size);
    let extents = |l: &Layout| u64::from(l.extents());
    // Read order alone moved a nearly packed set whole for the same jumps
    // and split files doing so (400 -> 407 extents).
    let no_more_extents = predicted.iter().map(extents).sum::<u64>()
        <= layouts.iter().flatten().map(extents).sum::<u64>();
    if no_more_extents && layout::read_order(predicted, block_size).better_than(&before) {
        return None;
    }
    Some(nothing_to_gain(files, layouts))
}

/// "Nothing to gain" for each of `files` as it lies (`layouts`), a
/// failure for one that could not be mapped.
fn nothing_to_gain(files: &[PathBuf], layouts: &[Option<Layout>]) -> Vec<FileReport> {
    files
        .iter()
        .zip(layouts)
        .map(|(p, l)| {
            let mut r = FileReport::new(p);
            if let Some(l) = l {
                r.status = Status::NothingToGain;
                r.blocks = l.blocks();
                r.extents_before = l.extents();
                r.extents_after = r.extents_before;
            } else {
                r = r.fail(&Error::Refused {
                    path: p.clone(),
                    reason: "cannot be opened or mapped".into(),
                });
            }
            r
        })
        .collect()
}

/// Stock backend: one donor, fallocated for the whole set (ext4 puts it
/// near `dir`, where the donor's inode is), and each file moved into its
/// slot of it in turn.
fn colocate_move_ext(
    set: SetPlan<'_>,
    _opts: &Options,
    progress: &Progress,
) -> Result<(Vec<FileReport>, Option<u64>), Error> {
    let SetPlan {
        dir,
        dir_file,
        files,
        layouts,
        block_size,
        goal: _,
    } = set;
    let per_page = per_page(block_size);
    // Each file's stretches packed into its slot, and the slot's length.
    let packed: Vec<_> = layouts
        .iter()
        .map(|l| l.as_ref().map_or((Vec::new(), 0), |l| l.packed(per_page)))
        .collect();
    let slots: Vec<u64> = packed.iter().map(|&(_, len)| len).collect();
    let total: u64 = slots.iter().sum();
    let mut reports: Vec<FileReport> = files.iter().map(|p| FileReport::new(p)).collect();
    if total == 0 {
        for r in &mut reports {
            r.skip("no blocks");
        }
        return Ok((reports, None));
    }
    check_free_space(dir_file, dir, total, block_size)?;
    let donor = moveext::donor_in(dir).map_err(Error::io(dir, "open(O_TMPFILE) donor"))?;
    // One request for the whole set (ext4 gives a large request its
    // largest free extents, near the directory), then each file's slot
    // fitted inside one of the pieces that came back: a piece's end never
    // cuts a file in two (the allocator's 160-block pieces split seven of
    // 400 files). Where the fitting leaves too little, the donor grows by
    // what is left, up to MAX_DONOR_GROWTHS times.
    moveext::allocate(&donor, 0, total, block_size).map_err(Error::sys(dir, "fallocate"))?;
    let mut allocated = total;
    let mut growths = 0;
    let (planned, bases) = loop {
        let planned = Layout::of(&donor, block_size).map_err(Error::sys(dir, "FS_IOC_FIEMAP"))?;
        match fit_slots(&planned, &slots, per_page) {
            Ok(bases) => break (planned, bases),
            Err(short) if growths < MAX_DONOR_GROWTHS => {
                check_free_space(dir_file, dir, short, block_size)?;
                moveext::allocate(&donor, allocated, short, block_size)
                    .map_err(Error::sys(dir, "fallocate"))?;
                allocated += short;
                growths += 1;
            }
            // Pieces too small for the slots: one after the other, as
            // they come (files may be cut; the judgment below sees it).
            Err(_) => {
                let bases = slots
                    .iter()
                    .scan(0, |at, &slot| {
                        let base = *at;
                        *at += slot;
                        Some(base)
                    })
                    .collect();
                break (planned, bases);
            }
        }
    };
    let start = planned.first_pblk();
    // Judge the set as a whole, like a file: the layout the slots give
    // must read better than the one there is, in no more extents.
    let predicted: Vec<Layout> = layouts
        .iter()
        .zip(packed.iter().zip(&bases))
        .filter_map(|(l, ((pieces, _), &base))| {
            let in_slot: Vec<_> = pieces.iter().map(|&(s, e, at)| (s, e, base + at)).collect();
            Some(l.as_ref()?.moved_to(&in_slot, &planned))
        })
        .collect();
    if let Some(reports) = no_better(files, layouts, &predicted, block_size) {
        return Ok((reports, None));
    }
    // A file whose slot came in more pieces than the file has extents
    // stays where it is.
    let split: Vec<bool> = {
        let mut p = predicted.iter();
        layouts
            .iter()
            .map(|l| match l {
                Some(l) => p.next().is_some_and(|new| new.extents() > l.extents()),
                None => false,
            })
            .collect()
    };
    let mut handled = 0;
    for ((path, report), (layout, (slot, &base))) in files
        .iter()
        .zip(reports.iter_mut())
        .zip(layouts.iter().zip(slots.iter().zip(&bases)))
    {
        progress.working_on(path);
        let res = (|| -> Result<(), Error> {
            let Some(planned_layout) = layout else {
                return Err(Error::Refused {
                    path: path.clone(),
                    reason: "cannot be opened or mapped".into(),
                });
            };
            report.blocks = planned_layout.blocks();
            report.extents_before = planned_layout.extents();
            report.extents_after = report.extents_before;
            if planned_layout.runs.is_empty() {
                report.skip(if planned_layout.inline {
                    INLINE
                } else {
                    "no blocks"
                });
                return Ok(());
            }
            if split[handled] {
                report.status = Status::NothingToGain;
                report.reason = Some(
                    "its slot in the set's new blocks is in more pieces than the file has \
                     extents; left where it is"
                        .into(),
                );
                return Ok(());
            }
            let (file, _) = open_rw(path)?;
            let size = file.metadata().map_err(Error::io(path, "fstat"))?.size();
            let now = Layout::of(&file, block_size).map_err(Error::sys(path, "FS_IOC_FIEMAP"))?;
            let (pieces, len) = now.packed(per_page);
            if len > *slot {
                return Err(Error::Refused {
                    path: path.clone(),
                    reason: "the file grew during the run; left where it was".into(),
                });
            }
            test_stop_point(path);
            let in_slot = pieces.into_iter().map(|(s, e, at)| (s, e, base + at));
            report.moved_blocks = move_stretches(&file, path, &donor, in_slot, progress)?;
            check_size(&file, path, size)?;
            report.extents_after = Layout::of(&file, block_size)
                .map_err(Error::sys(path, "FS_IOC_FIEMAP"))?
                .extents();
            report.status = Status::Done;
            Ok(())
        })();
        if let Err(e) = res {
            *report = report.clone().fail(&e);
        }
        handled += 1;
        if progress.stop_requested().is_some() {
            break;
        }
    }
    // Files a stop request left unvisited have no report.
    reports.truncate(handled);
    Ok((reports, start))
}

/// Times the stock backend's donor for a set may grow when its pieces,
/// each file kept whole in one, leave too little room.
const MAX_DONOR_GROWTHS: u32 = 4;

/// Where each slot (`slots`, blocks in whole pages of `per_page`) starts
/// in the donor laid out as `donor`: in order, each inside one piece of
/// it (a run physically contiguous), a page-aligned start, so that no
/// piece's end cuts a file. A slot larger than every piece is placed
/// where the last one ended, across pieces. `Err(blocks)`: the donor is
/// short of about that many blocks.
pub(crate) fn fit_slots(donor: &Layout, slots: &[u64], per_page: u64) -> Result<Vec<u64>, u64> {
    // Runs that continue each other on disk are one piece (FIEMAP reports
    // an unwritten extent of at most 32767 blocks).
    let mut pieces: Vec<(u64, u64)> = Vec::new();
    let mut prev_pend = None;
    for r in &donor.runs {
        match pieces.last_mut() {
            Some(last) if last.1 == r.lblk && prev_pend == Some(r.pblk) => last.1 = r.lend(),
            _ => pieces.push((r.lblk, r.lend())),
        }
        prev_pend = Some(r.pend());
    }
    let largest = pieces.iter().map(|&(s, e)| e - s).max().unwrap_or(0);
    let align = |b: u64| b.div_ceil(per_page) * per_page;
    let (mut k, mut at) = (0usize, pieces.first().map_or(0, |p| p.0));
    let mut bases = Vec::with_capacity(slots.len());
    for (i, &slot) in slots.iter().enumerate() {
        if slot == 0 {
            bases.push(at);
            continue;
        }
        loop {
            let Some(&(pstart, pend)) = pieces.get(k) else {
                let short: u64 = slots[i..].iter().sum();
                return Err(short);
            };
            // A piece may start inside a page: the slot starts at a page.
            at = align(at.max(pstart));
            if at + slot <= pend || slot > largest {
                bases.push(at);
                at += slot;
                // A slot across pieces goes on into the next ones.
                while pieces.get(k).is_some_and(|&(_, e)| e <= at) && k + 1 < pieces.len() {
                    k += 1;
                }
                break;
            }
            k += 1;
        }
    }
    // The last slot must end inside the donor.
    match pieces.last() {
        Some(&(_, end)) if at <= end => Ok(bases),
        _ => Err(at.saturating_sub(pieces.last().map_or(0, |p| p.1)).max(1)),
    }
}

/// Plans made again, per set, when a slot was taken before its file got
/// there (another writer, or an extent-tree block an earlier move
/// needed); after that, a file whose slot is taken goes where the module
/// puts it, near the slot.
const MAX_SET_REPLANS: u32 = 3;

/// Module backend: the whole set is planned from the free space that
/// GETFSMAP reports, nearest to where `dir` starts (see `setplan`), and
/// each file is moved into its exact slots with `DEFRAG_GOAL_ONLY`. A
/// slot that is no longer free makes the rest of the set be planned again.
fn colocate_module(
    set: SetPlan<'_>,
    opts: &Options,
    progress: &Progress,
) -> Result<(Vec<FileReport>, Option<u64>), Error> {
    let SetPlan {
        dir,
        dir_file,
        files,
        layouts,
        block_size,
        goal,
    } = set;
    let dir_start = match goal {
        Some(g) => g,
        None => {
            blockmap::query_module(dir_file, 0)
                .map_err(Error::sys(dir, "EXT4_IOC_FIBMAP"))?
                .pblk
        }
    };
    let total: u64 = layouts.iter().flatten().map(Layout::blocks).sum();
    check_free_space(dir_file, dir, total, block_size)?;
    // Blocks freed by earlier runs count as free once committed.
    nix::unistd::syncfs(dir_file.as_raw_fd()).map_err(Error::sys(dir, "syncfs"))?;
    let make_plan = |from: usize, goal: u64| -> Result<Vec<Vec<setplan::Segment>>, Error> {
        let free =
            fsmap::free_runs(dir_file, block_size).map_err(Error::sys(dir, "FS_IOC_GETFSMAP"))?;
        let now: Vec<Option<Layout>> = if from == 0 {
            layouts.to_vec()
        } else {
            layouts_of(&files[from..], block_size)
        };
        let refs: Vec<Option<&Layout>> = now.iter().map(Option::as_ref).collect();
        Ok(setplan::plan(&free, goal, &refs))
    };
    // One donor for the whole set, lent to each call: a call that makes
    // its own donor costs more than moving a small file. If the module
    // refuses it (another set is using a lent donor, say), the calls go on
    // without it. Not into a region cleared for the set: the lent donor
    // collects the old blocks of every file, its extent tree grows, and
    // ext4 puts the tree's blocks next to its last data, in the region,
    // where they would split the set (20 -> 2 jumps on test-70's layout
    // instead of 0).
    let donor = if goal.is_some() {
        None
    } else {
        moveext::donor_in(dir).ok()
    };
    let mut lend = donor.as_ref().map(|d| d.as_raw_fd());
    let mut plan = make_plan(0, dir_start)?;
    // Judge the set as a whole, like a file (files the plan has no room
    // for counted where they are).
    let predicted: Vec<Layout> = layouts
        .iter()
        .zip(&plan)
        .filter_map(|(l, segments)| Some(setplan::placed(l.as_ref()?, segments)))
        .collect();
    if let Some(reports) = no_better(files, layouts, &predicted, block_size) {
        return Ok((reports, None));
    }
    let mut base = 0;
    let start = plan.iter().flatten().next().map(|s| s.goal);
    let mut replans = 0;
    let mut reports = Vec::with_capacity(files.len());
    let mut i = 0;
    while i < files.len() {
        let path = &files[i];
        progress.working_on(path);
        let mut report = FileReport::new(path);
        let segments = plan[i - base].clone();
        // Placed on its own, by a call that paced itself.
        let mut placed_alone = segments.is_empty();
        let res = (|| -> Result<(), Error> {
            let (file, _) = open_rw(path)?;
            let now = Layout::of(&file, block_size).map_err(Error::sys(path, "FS_IOC_FIEMAP"))?;
            report.blocks = now.blocks();
            if now.runs.is_empty() {
                report.skip(if now.inline { INLINE } else { "no blocks" });
                return Ok(());
            }
            if segments.is_empty() {
                // No room in the set's plan: on its own, near the set.
                return defrag_module(
                    &file,
                    path,
                    opts,
                    start.unwrap_or(dir_start),
                    &mut report,
                    progress,
                );
            }
            let slotted = Options {
                goal_only: true,
                ..*opts
            };
            let mut moved = 0;
            for seg in &segments {
                let range = (
                    seg.lblk * block_size,
                    seg.lend.map_or(0, |e| (e - seg.lblk) * block_size),
                );
                let res =
                    defrag_module_range(&file, path, &slotted, seg.goal, range, lend, &mut report);
                match res {
                    Err(Error::Sys { errno, .. })
                        if lend.is_some() && errno != Errno::ENOSPC && errno != Errno::EINTR =>
                    {
                        lend = None;
                        defrag_module_range(
                            &file,
                            path,
                            &slotted,
                            seg.goal,
                            range,
                            None,
                            &mut report,
                        )?;
                    }
                    res => res?,
                }
                moved += report.moved_blocks;
            }
            report.moved_blocks = moved;
            report.extents_before = now.extents();
            // One call for the whole file counted its extents after;
            // several ranges are counted again as a whole.
            if segments.len() > 1 {
                report.extents_after = Layout::of(&file, block_size)
                    .map_err(Error::sys(path, "FS_IOC_FIEMAP"))?
                    .extents();
            }
            report.status = if moved == 0 {
                Status::NothingToGain
            } else {
                Status::Done
            };
            Ok(())
        })();
        match res {
            // The slot was taken: plan the rest of the set again from there.
            Err(e)
                if e.errno() == Some(Errno::ENOSPC)
                    && replans < MAX_SET_REPLANS
                    && !segments.is_empty() =>
            {
                replans += 1;
                nix::unistd::syncfs(dir_file.as_raw_fd()).map_err(Error::sys(dir, "syncfs"))?;
                plan = make_plan(i, segments[0].goal)?;
                base = i;
                continue;
            }
            // Slots keep being taken: this file goes where the module
            // puts it, near its slot, like a file the plan had no room for.
            Err(e) if e.errno() == Some(Errno::ENOSPC) && !segments.is_empty() => {
                placed_alone = true;
                let mut report = FileReport::new(path);
                let res = open_rw(path).and_then(|(file, _)| {
                    defrag_module(&file, path, opts, segments[0].goal, &mut report, progress)
                });
                reports.push(match res {
                    Ok(()) => report,
                    Err(e) => report.fail(&e),
                });
            }
            Ok(()) => reports.push(report),
            Err(e) => reports.push(report.fail(&e)),
        }
        // Slotted moves are paced after each file (a file placed on its
        // own was paced by its move).
        if let Some(r) = reports.last().filter(|_| !placed_alone) {
            progress.moved(r.moved_blocks, block_size);
        }
        i += 1;
        if progress.stop_requested().is_some() {
            break;
        }
    }
    Ok((reports, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn donor(runs: &[(u64, u64, u64)]) -> Layout {
        Layout {
            runs: runs
                .iter()
                .map(|&(lblk, pblk, len)| layout::Run {
                    lblk,
                    pblk,
                    len,
                    unwritten: true,
                })
                .collect(),
            inline: false,
        }
    }

    /// The layout of the file at blocks `start..start + len` of a stream
    /// laid out in `pieces` (stream start, stream end, physical start).
    fn laid(pieces: &[(u64, u64, u64)], start: u64, len: u64) -> Layout {
        let runs: Vec<(u64, u64, u64)> = pieces
            .iter()
            .filter_map(|&(s, e, p)| {
                let (lo, hi) = (s.max(start), e.min(start + len));
                (lo < hi).then(|| (lo - start, p + (lo - s), hi - lo))
            })
            .collect();
        donor(&runs)
    }

    /// A stream of `len` blocks from `pblk` in pieces cut at `cuts` (a gap
    /// of `gap` blocks at each).
    fn stream(pblk: u64, len: u64, cuts: &[u64], gap: u64) -> Vec<(u64, u64, u64)> {
        let mut ends: Vec<u64> = cuts.to_vec();
        ends.push(len);
        let (mut s, mut p) = (0, pblk);
        ends.iter()
            .map(|&e| {
                let piece = (s, e, p);
                p += e - s + gap;
                s = e;
                piece
            })
            .collect()
    }

    #[test]
    fn a_set_plan_with_more_extents_is_no_better() {
        // 400 one-extent files of 4 blocks in 12 runs (11 jumps), and a
        // plan in 12 pieces closer together (a shorter span, as many
        // jumps) whose ends cut seven files in two: not worth moving (it
        // moved: 400 -> 407 extents, 11 -> 11 jumps).
        let files: Vec<PathBuf> = (0..400).map(|i| format!("f{i}").into()).collect();
        let between: Vec<u64> = (1..12).map(|k| k * 132).collect();
        let now_pieces = stream(10_000, 1600, &between, 100);
        let now: Vec<Option<Layout>> = (0..400)
            .map(|i| Some(laid(&now_pieces, i * 4, 4)))
            .collect();
        let before = layout::read_order(now.iter().flatten(), 4096);
        assert_eq!((before.discontinuities, before.span_blocks), (11, 2700));
        let mut cuts: Vec<u64> = (1..=7).map(|k| k * 160 + 2).collect();
        cuts.extend((8..12).map(|k| k * 132));
        cuts.sort_unstable();
        let cut = stream(50_000, 1600, &cuts, 2);
        let planned: Vec<Layout> = (0..400).map(|i| laid(&cut, i * 4, 4)).collect();
        let after = layout::read_order(&planned, 4096);
        assert_eq!(after.discontinuities, 11);
        assert!(after.better_than(&before), "{after:?}");
        let extents: u32 = planned.iter().map(Layout::extents).sum();
        assert_eq!(extents, 407);
        assert!(no_better(&files, &now, &planned, 4096).is_some());
        // The same pieces cut between files: worth it.
        let mut between_files: Vec<u64> = (1..=7).map(|k| k * 160).collect();
        between_files.extend((8..12).map(|k| k * 132));
        between_files.sort_unstable();
        let whole = stream(50_000, 1600, &between_files, 2);
        let planned: Vec<Layout> = (0..400).map(|i| laid(&whole, i * 4, 4)).collect();
        assert!(no_better(&files, &now, &planned, 4096).is_none());
    }

    #[test]
    fn active_swap_files_are_found_in_proc_swaps() {
        let swaps = b"Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
            /swapfile                               file\t\t4194300\t\t0\t\t-2\n\
            /mnt/my\\040swap                        file\t\t1024\t\t0\t\t-3\n";
        assert!(swaps_list(swaps, b"/swapfile"));
        assert!(swaps_list(swaps, b"/mnt/my swap"));
        assert!(!swaps_list(swaps, b"/mnt/my"));
        assert!(!swaps_list(swaps, b"Filename"));
        assert!(!swaps_list(b"", b"/swapfile"));
    }

    #[test]
    fn slots_are_fitted_inside_pieces() {
        // Pieces of 160 blocks: a slot that would cross a piece's end
        // starts in the next piece instead.
        let d = donor(&[(0, 1000, 160), (160, 5000, 160), (320, 9000, 160)]);
        assert_eq!(
            fit_slots(&d, &[100, 50, 20, 150], 1),
            Ok(vec![0, 100, 160, 320])
        );
        // Too little room once slots are kept whole: short by the rest.
        assert_eq!(fit_slots(&d, &[100, 100, 100, 100, 100], 1), Err(200));
        // Runs contiguous on disk are one piece.
        let d = donor(&[(0, 1000, 100), (100, 1100, 100)]);
        assert_eq!(fit_slots(&d, &[150, 50], 1), Ok(vec![0, 150]));
        // A slot larger than every piece goes across them.
        let d = donor(&[(0, 1000, 10), (10, 2000, 10)]);
        assert_eq!(fit_slots(&d, &[15, 5], 1), Ok(vec![0, 15]));
        // A piece that starts inside a page: the slot starts at the next
        // page (MOVE_EXT wants the same offset in a page: EINVAL).
        let d = donor(&[(0, 1000, 5), (5, 3000, 11)]);
        assert_eq!(fit_slots(&d, &[4, 4], 4), Ok(vec![0, 8]));
        // Page-aligned starts (4 blocks a page), empty slots take no room.
        let d = donor(&[(0, 1000, 16)]);
        assert_eq!(fit_slots(&d, &[4, 0, 8], 4), Ok(vec![0, 4, 4]));
        assert_eq!(fit_slots(&d, &[4, 8, 8], 4), Err(8));
    }
}
