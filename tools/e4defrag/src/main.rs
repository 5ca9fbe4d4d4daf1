//! `e4defrag`: turns the command line into jobs (single files, walks of a
//! directory or device, colocated sets), runs them with a progress bar and
//! prints the results, for people or as JSON.

mod cli;

use clap::Parser;
use cli::{BackendArg, Cli};
use e4defrag::{
    blockmap, consolidate, diskmap,
    engine::{self, Backend, FileReport, SetReport, Status},
    error::Error,
    ext4fs, fsmap, interrupt,
    layout::{self, Layout},
    makeroom,
    mounts::{self, Mount},
    output,
    progress::Progress,
    record,
    report::{self, Check},
    score::Geometry,
    unattended::{self, Deadline, ResumeState},
    walk::{self, Target},
};
use nix::sys::statvfs::{fstatvfs, FsFlags};
use std::{
    fs::File,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::ExitCode,
};

/// What one target turned into.
enum Job {
    /// One file, defragmented on its own.
    Single(PathBuf),
    /// The files under a directory or device, each on its own.
    Walk {
        target: PathBuf,
        files: Vec<PathBuf>,
    },
    /// `-r DIR`: the files under DIR, colocated in this order (and what
    /// `--order` did to it).
    Set {
        dir: PathBuf,
        files: Vec<PathBuf>,
        order: Option<walk::OrderSummary>,
    },
    /// `-c` of a directory or device: the tree under `root`, walked as it
    /// is checked.
    Tree { target: PathBuf, root: PathBuf },
}

impl Job {
    /// The files listed up front (none for a tree walked as it goes).
    fn files(&self) -> &[PathBuf] {
        match self {
            Job::Single(p) => std::slice::from_ref(p),
            Job::Walk { files, .. } | Job::Set { files, .. } => files,
            Job::Tree { .. } => &[],
        }
    }
}

/// A job together with what its filesystem is like.
struct Planned {
    job: Job,
    backend: Backend,
    geometry: Geometry,
}

/// Everything the run produced.
#[derive(Default, serde::Serialize)]
struct Outcome {
    dry_run: bool,
    files: Vec<FileReport>,
    sets: Vec<SetReport>,
    totals: Totals,
    /// `--time-limit` stopped the run before its end.
    time_limit_reached: bool,
    /// The signal that stopped the run before its end (SIGINT, SIGTERM).
    #[serde(skip_serializing_if = "Option::is_none")]
    interrupted: Option<&'static str>,
}

#[derive(Default, serde::Serialize)]
struct Totals {
    files: u64,
    done: u64,
    nothing_to_gain: u64,
    dry_run: u64,
    skipped: u64,
    failed: u64,
    extents_before: u64,
    extents_after: u64,
    moved_blocks: u64,
}

/// Checks the target's filesystem and picks the backend and geometry.
fn plan(cli: &Cli, mounts: &[Mount], target: &Path) -> Result<(Backend, Geometry, Target), Error> {
    let kind = walk::classify(target, mounts)?;
    let root = match &kind {
        Target::File(p) | Target::Dir(p) => p.clone(),
        Target::Device { mount, .. } => mount.clone(),
    };
    let handle = File::open(&root).map_err(Error::io(target, "open"))?;
    let block_size = ext4fs::block_size(&handle, &root)?;
    // A check and a dry run only read.
    if !cli.check && !cli.dry_run {
        let st = fstatvfs(&handle).map_err(Error::sys(&root, "statvfs"))?;
        if st.flags().contains(FsFlags::ST_RDONLY) {
            return Err(Error::Refused {
                path: target.into(),
                reason: "the filesystem is mounted read-only".into(),
            });
        }
    }
    let backend = match cli.backend {
        BackendArg::MoveExt => Backend::MoveExt,
        BackendArg::Module | BackendArg::Auto if engine::module_present(&handle) => Backend::Module,
        BackendArg::Auto => Backend::MoveExt,
        BackendArg::Module => {
            return Err(Error::Refused {
                path: target.into(),
                reason: "--backend module, but the ext4_defrag module does not answer \
                         (not loaded, or not the patched kernel)"
                    .into(),
            })
        }
    };
    let dev = mounts::split_dev(handle.metadata().map_err(Error::io(target, "fstat"))?.dev());
    let device = mounts::whole_fs(mounts, dev).map(|m| PathBuf::from(&m.source));
    let geometry = Geometry::of_device_or_assumed(device.as_deref(), block_size);
    Ok((backend, geometry, kind))
}

/// The order a walk lists a tree's files in: --order-by for -r (which
/// places them so) and -c (which counts read-order discontinuities in it);
/// sorted paths for per-file runs, whose resume state is the last path
/// done (see `unattended::after`).
fn walk_order(cli: &Cli) -> walk::TreeOrder {
    if cli.colocate || cli.check {
        cli.order_by.into()
    } else {
        walk::TreeOrder::Path
    }
}

/// Expands the targets into jobs; failures become reports.
fn expand(cli: &Cli, mounts: &[Mount], out: &mut Outcome) -> Vec<Planned> {
    let mut jobs = Vec::new();
    for target in &cli.paths {
        let (backend, geometry, kind) = match plan(cli, mounts, target) {
            Ok(p) => p,
            Err(e) => {
                out.files.push(FileReport::failed(target, &e));
                continue;
            }
        };
        let kind = match kind {
            // -r DEVICE: the files of its filesystem as one set, as -r of
            // its mount point (it was a per-file run, without a word).
            Target::Device { mount, .. } if cli.colocate => Target::Dir(mount),
            kind => kind,
        };
        let job = match kind {
            // -r places the files of a tree; one file has nothing to be
            // placed next to (it fell back to a per-file run, silently).
            Target::File(p) if cli.colocate => {
                let e = Error::Refused {
                    path: p.clone(),
                    reason: "-r colocates the files under a directory, mount point or device; \
                             this is a file (without -r it is defragmented on its own)"
                        .into(),
                };
                out.files.push(FileReport::failed(&p, &e));
                continue;
            }
            Target::File(p) => Job::Single(p),
            // -c walks a tree as it checks it, keeping nothing per file.
            Target::Device { mount, .. } if cli.check => Job::Tree {
                target: target.clone(),
                root: mount,
            },
            Target::Dir(dir) if cli.check && !cli.colocate => Job::Tree {
                target: dir.clone(),
                root: dir,
            },
            Target::Device { mount, .. } => {
                let (files, errors) = walk::files_under(&mount, mounts, walk_order(cli));
                out.files
                    .extend(errors.iter().map(|e| FileReport::failed(e.path(), e)));
                Job::Walk {
                    target: target.clone(),
                    files,
                }
            }
            Target::Dir(dir) => {
                let (mut files, errors) = if cli.only_listed {
                    (Vec::new(), Vec::new())
                } else {
                    walk::files_under(&dir, mounts, walk_order(cli))
                };
                out.files
                    .extend(errors.iter().map(|e| FileReport::failed(e.path(), e)));
                if !cli.colocate {
                    jobs.push(Planned {
                        job: Job::Walk { target: dir, files },
                        backend,
                        geometry,
                    });
                    continue;
                }
                let mut order = None;
                if let Some(list) = &cli.order {
                    match std::fs::read(list) {
                        Ok(text) => {
                            let (ordered, summary, ignored) = if cli.only_listed {
                                walk::listed_files(&dir, &text)
                            } else {
                                walk::apply_order(&dir, files, &text)
                            };
                            files = ordered;
                            if cli.verbose {
                                for (p, why) in ignored {
                                    output::warn(&format!(
                                        "{}: in {}, {why}; ignored",
                                        p.display(),
                                        list.display()
                                    ));
                                }
                            }
                            if !cli.json && (cli.verbose || summary.ignored() > 0) {
                                output::warn(&order_line(list, &dir, &summary));
                            }
                            order = Some(summary);
                        }
                        Err(e) => {
                            // Said as every failed call is: path, call, errno.
                            let e = Error::io(list, "read (the order list)")(e);
                            out.files.push(FileReport::failed(list, &e));
                            continue;
                        }
                    }
                }
                Job::Set { dir, files, order }
            }
        };
        jobs.push(Planned {
            job,
            backend,
            geometry,
        });
    }
    jobs
}

/// Allocated bytes of `path` as `stat` says (512-byte units, whatever
/// the block size), for the progress bar.
fn stat_bytes(path: &Path) -> u64 {
    path.symlink_metadata().map_or(0, |m| m.blocks() * 512)
}

/// ", room made at ...": where a region was cleared and what it cost,
/// relative to `whose` size ("its", "the set's").
fn room_note(m: &makeroom::Room, whose: &str) -> String {
    format!(
        ", room made at block {}: {} blocks of {} other files moved out ({:.2} of {whose} {})",
        m.start,
        m.moved_blocks,
        m.moved_files,
        m.moved_blocks as f64 / m.len.max(1) as f64,
        m.len
    )
}

fn line(r: &FileReport) -> String {
    let p = r.path.display();
    let room = r
        .room
        .as_ref()
        .map_or(String::new(), |m| room_note(m, "its"));
    match r.status {
        Status::Done | Status::NothingToGain => format!(
            "{p}: extents {} -> {}, moved {} blocks{room}",
            r.extents_before, r.extents_after, r.moved_blocks
        ),
        Status::DryRun => format!(
            "{p}: extents {} -> {}, would move {} blocks",
            r.extents_before, r.extents_after, r.moved_blocks
        ),
        Status::Skipped => format!("{p}: skipped ({})", r.reason.as_deref().unwrap_or("")),
        Status::Failed => r.reason.clone().unwrap_or_default(),
    }
}

/// One line on what an order list did to the set of `dir`.
fn order_line(list: &Path, dir: &Path, o: &walk::OrderSummary) -> String {
    format!(
        "{}: {} entries: {} files of {} in order, {} not a file of the set, \
         {} missing, {} named twice",
        list.display(),
        o.entries,
        o.in_order,
        dir.display(),
        o.outside,
        o.missing,
        o.duplicated
    )
}

/// One line on what colocating a set did (with `dry_run`: would do).
fn set_line(s: &SetReport, dry_run: bool) -> String {
    let room = s
        .room
        .as_ref()
        .map_or(String::new(), |r| room_note(r, "the set's"));
    format!(
        "{}: {}{}, read-order discontinuities {} -> {}, span {} -> {} blocks \
         (ratio {:.2} -> {:.2}), modeled HDD read {:.0} -> {:.0} ms{}{} ({})",
        s.dir.display(),
        if dry_run { "dry run: " } else { "" },
        plural(s.after.files.max(s.before.files), "file"),
        s.before.discontinuities,
        s.after.discontinuities,
        s.before.span_blocks,
        s.after.span_blocks,
        s.before.span_ratio,
        s.after.span_ratio,
        s.before.modeled_hdd_read_ms,
        s.after.modeled_hdd_read_ms,
        s.start_block
            .map_or(String::new(), |b| format!(", from block {b}")),
        room,
        match s.backend {
            Backend::Module => "module",
            Backend::MoveExt => "EXT4_IOC_MOVE_EXT",
        }
    )
}

/// Where a file's result comes from, for how much to print.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    /// Named on the command line.
    Single,
    /// Found by a walk: printed when it moved.
    Walk,
    /// Part of a colocated set: the set's line says it all.
    Set,
}

/// Prints a file's result: failures and files no run can move always,
/// the rest as `ctx` says or with -v.
fn show(cli: &Cli, pb: &indicatif::ProgressBar, r: &FileReport, ctx: Context) {
    if cli.json {
        return;
    }
    let moved = r.moved_blocks > 0 && ctx == Context::Walk;
    if r.status == Status::Failed {
        pb.suspend(|| output::warn(&line(r)));
    } else if ctx == Context::Single || cli.verbose || moved || r.cannot_move {
        pb.suspend(|| output::line(&line(r)));
    }
}

/// `--strict`: a file no run can move counts as a failure.
fn settle(cli: &Cli, mut r: FileReport) -> FileReport {
    if cli.strict && r.cannot_move {
        r.status = Status::Failed;
        r.reason = r
            .reason
            .map(|why| format!("{}: {why} (--strict)", r.path.display()));
    }
    r
}

/// Runs the jobs. SIGINT and SIGTERM stop it between files and between
/// the steps of a move (what moved stays moved, whole pages): then
/// `out.interrupted` says which signal, and the summary is printed as for
/// a run that ended.
fn run_defrag(cli: &Cli, jobs: &[Planned], out: &mut Outcome) {
    let total: u64 = jobs
        .iter()
        .flat_map(|j| j.job.files())
        .map(|p| stat_bytes(p))
        .sum();
    let progress = Progress::new(total, cli.max_rate.map(|r| r * 1e6));
    let pb = progress.bar();
    if let Err(e) = interrupt::catch() {
        output::warn(&format!(
            "cannot catch SIGINT ({e}): it stops the run at once"
        ));
    }
    let opts = engine::Options {
        dry_run: cli.dry_run,
        goal: cli.goal.unwrap_or(0),
        goal_only: cli.goal_only,
        unit_log2: cli.unit_log2,
        max_evacuate: cli.max_evacuate,
        min_extents: cli.min_extents,
    };
    let deadline = Deadline::new(cli.time_limit);
    let mut state = ResumeState::default();
    if cli.time_limit.is_some() {
        match ResumeState::load(&cli.state) {
            Ok(s) => state = s,
            Err(e) => output::warn(&format!(
                "{}: cannot read the resume state ({e}); starting from the beginning",
                cli.state.display()
            )),
        }
    }
    // Every run handles at least one file, so that runs shorter than a
    // file still get through a device.
    let mut handled = 0u64;
    let mut done_bytes = 0;
    'jobs: for p in jobs {
        match &p.job {
            // Only -c makes trees, and -c moves nothing.
            Job::Tree { .. } => {}
            Job::Single(_) | Job::Walk { .. } => {
                let (ctx, target) = match &p.job {
                    Job::Walk { target, .. } => (Context::Walk, Some(target)),
                    _ => (Context::Single, None),
                };
                let mut files = p.job.files();
                if let Some(t) = target.filter(|_| cli.time_limit.is_some()) {
                    files = unattended::after(files, state.last(t));
                }
                for path in files {
                    if handled > 0 && deadline.passed() {
                        out.time_limit_reached = true;
                        break 'jobs;
                    }
                    if progress.stop_requested().is_some() {
                        break 'jobs;
                    }
                    pb.set_position(done_bytes);
                    progress.working_on(path);
                    let r = engine::defrag_path(path, p.backend, &p.geometry, &opts, &progress);
                    let r = settle(cli, r);
                    done_bytes += stat_bytes(path);
                    show(cli, pb, &r, ctx);
                    let stopped = r.errno.as_deref() == Some("EINTR");
                    out.files.push(r);
                    handled += 1;
                    // A file a stop request cut short is done again by
                    // the next run.
                    if let Some(t) = target.filter(|_| !stopped) {
                        state.stopped(t, path);
                    }
                }
                if let Some(t) = target.filter(|_| progress.stop_requested().is_none()) {
                    state.finished(t);
                }
            }
            Job::Set { dir, files, order } => {
                if handled > 0 && deadline.passed() {
                    out.time_limit_reached = true;
                    break;
                }
                if progress.stop_requested().is_some() {
                    break;
                }
                pb.set_position(done_bytes);
                match engine::colocate(dir, files, p.backend, &opts, &progress) {
                    Ok((reports, mut set)) => {
                        set.order.clone_from(order);
                        let reports: Vec<_> = reports.into_iter().map(|r| settle(cli, r)).collect();
                        for r in &reports {
                            show(cli, pb, r, Context::Set);
                        }
                        if !cli.json {
                            pb.suspend(|| output::line(&set_line(&set, cli.dry_run)));
                        }
                        out.files.extend(reports);
                        out.sets.push(set);
                    }
                    Err(e) => {
                        let r = FileReport::failed(dir, &e);
                        show(cli, pb, &r, Context::Single);
                        out.files.push(r);
                    }
                }
                handled += 1;
                done_bytes += files.iter().map(|f| stat_bytes(f)).sum::<u64>();
            }
        }
    }
    pb.finish_and_clear();
    out.interrupted = progress.stop_requested().map(|s| s.as_str());
    // A dry run moved nothing: the next real run starts where this began.
    if cli.time_limit.is_some() && !cli.dry_run {
        if let Err(e) = state.save(&cli.state) {
            output::warn(&format!(
                "{}: cannot keep the resume state: {e}",
                cli.state.display()
            ));
        }
        if out.time_limit_reached && !cli.json {
            output::warn(&format!(
                "time limit reached after {}; the next run with \
                 --time-limit goes on from there (state in {})",
                plural(handled, "file"),
                cli.state.display()
            ));
        }
    }
}

/// `n file` or `n files`.
fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Adds the free space of the filesystem `on` is on to `check`, once per
/// filesystem (`seen`: devices done). Without GETFSMAP there is nothing to
/// add.
fn add_free_space(check: &mut Check, target: &Path, on: &Path, seen: &mut Vec<u64>) {
    let Ok(file) = File::open(on) else {
        return;
    };
    let Ok(meta) = file.metadata() else { return };
    if seen.contains(&meta.dev()) {
        return;
    }
    seen.push(meta.dev());
    let Ok(bs) = ext4fs::block_size(&file, target) else {
        return;
    };
    if let Ok(free) = fsmap::free_runs(&file, bs) {
        check
            .free_space
            .push(report::FreeSpace::of(target.to_path_buf(), bs, &free));
    }
}

/// A failure of `-c` on `path`: said on standard error (not with --json)
/// and kept for the report.
fn check_failed(cli: &Cli, out: &mut Outcome, path: &Path, e: &Error) {
    if !cli.json {
        output::warn(&e.to_string());
    }
    out.files.push(FileReport::failed(path, e));
}

/// `-c`: every file's layout, as it comes (a tree is walked while it is
/// checked), into the report; nothing kept per file but what the report
/// shows (`-v` and `--json` list every file).
fn run_check(cli: &Cli, mounts: &[Mount], jobs: &[Planned], out: &mut Outcome) -> Check {
    let mut check = Check::keeping_files(cli.verbose || cli.json);
    let mut free_seen = Vec::new();
    let mut from_sb = true;
    // For --disk-map: the first target's files drawn on its filesystem,
    // which the first file that opens is the way to.
    let mut map: Option<Result<DiskMap, Error>> = None;
    for (job, p) in jobs.iter().enumerate() {
        from_sb &= p.geometry.from_superblock;
        let mut order = layout::ReadOrderCounter::default();
        let mut block_size = 0;
        let mut first_file = None;
        let mut one = |path: PathBuf, out: &mut Outcome| {
            let layout = File::open(&path)
                .map_err(Error::io(&path, "open"))
                .and_then(|f| {
                    block_size = ext4fs::block_size(&f, &path)?;
                    Layout::of(&f, block_size).map_err(Error::sys(&path, "FS_IOC_FIEMAP"))
                });
            match layout {
                Ok(l) => {
                    if cli.disk_map.is_some() {
                        let m =
                            map.get_or_insert_with(|| DiskMap::new(job, &p.job, &path, block_size));
                        if let Ok(m) = m {
                            if m.job == job {
                                m.add(&l, &p.geometry);
                            }
                        }
                    }
                    order.push(&l);
                    first_file.get_or_insert_with(|| path.clone());
                    check.add_file(path, &l, &p.geometry);
                }
                Err(e) => check_failed(cli, out, &path, &e),
            }
        };
        match &p.job {
            Job::Tree { root, .. } => {
                walk::each_file_under(root, mounts, walk_order(cli), |f| match f {
                    Ok(path) => one(path, out),
                    Err(e) => check_failed(cli, out, e.path(), &e),
                })
            }
            job => {
                for path in job.files() {
                    one(path.clone(), out);
                }
            }
        }
        let (target, on) = match &p.job {
            Job::Walk { target, .. } => (target, first_file),
            Job::Set { dir, .. } => (dir, first_file),
            Job::Tree { target, root } => (target, Some(root.clone())),
            Job::Single(_) => continue,
        };
        check.add_set(target.clone(), &order, block_size);
        if let Some(on) = on {
            add_free_space(&mut check, target, &on, &mut free_seen);
        }
    }
    if let (Some(svg), Some(m)) = (&cli.disk_map, map) {
        let written = m.and_then(|m| std::fs::write(svg, m.svg()).map_err(Error::io(svg, "write")));
        if let Err(e) = written {
            check_failed(cli, out, svg, &e);
        }
    }
    let failed = out
        .files
        .iter()
        .filter(|r| r.status == Status::Failed)
        .count();
    check.finish(from_sb, failed as u64);
    check
}

/// `--disk-map`: the first target's files drawn on their filesystem.
struct DiskMap {
    /// The job whose files are the target.
    job: usize,
    target: PathBuf,
    /// The target is the whole filesystem (a device or a mount point).
    whole_fs: bool,
    block_size: u64,
    map: diskmap::Map,
}

impl DiskMap {
    /// The map of the filesystem `first` (a file of job number `job`) is
    /// on: its free space and metadata from GETFSMAP.
    fn new(job: usize, of: &Job, first: &Path, block_size: u64) -> Result<DiskMap, Error> {
        let (target, whole_fs) = match of {
            Job::Single(p) => (p.clone(), false),
            Job::Walk { target, .. } | Job::Set { dir: target, .. } | Job::Tree { target, .. } => {
                (target.clone(), is_whole_fs(target))
            }
        };
        let file = File::open(first).map_err(Error::io(first, "open"))?;
        let mut runs = Vec::new();
        let end = fsmap::space(&file, block_size, |owner, run| runs.push((owner, run))).map_err(
            |errno| Error::Refused {
                path: first.into(),
                reason: format!("the disk map needs the free space from FS_IOC_GETFSMAP: {errno}"),
            },
        )?;
        let mut map = diskmap::Map::new(end);
        for (owner, run) in runs {
            let kind = match owner {
                fsmap::Owner::Free => diskmap::Kind::Free,
                fsmap::Owner::Metadata => diskmap::Kind::Metadata,
                fsmap::Owner::InUse => diskmap::Kind::Other,
            };
            map.add(kind, run);
        }
        Ok(DiskMap {
            job,
            target,
            whole_fs,
            block_size,
            map,
        })
    }

    /// Draws a file of the target: fragmented when it has more extents
    /// than its size needs (what `-c` counts as best).
    fn add(&mut self, l: &Layout, geometry: &Geometry) {
        let fragmented = u64::from(l.extents()) > geometry.best_extents(l.blocks()).max(1);
        for r in &l.runs {
            let run = e4defrag::placement::Run {
                start: r.pblk,
                len: r.len,
            };
            self.map.add_target(fragmented, run);
        }
    }

    fn svg(&self) -> String {
        let bs = self.block_size;
        let m = &self.map;
        let title = [
            format!("e4defrag disk map: {}", self.target.display()),
            format!(
                "a {} filesystem of {} blocks of {bs} bytes; a cell is {} blocks ({})",
                diskmap::human(m.total_blocks * bs),
                m.total_blocks,
                m.per_cell,
                diskmap::human(m.per_cell * bs)
            ),
        ];
        m.svg(&title, self.whole_fs, bs)
    }
}

/// Whether `path` names a whole filesystem: a block device, or the root
/// of a mount (its parent is on another device).
fn is_whole_fs(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    meta.file_type().is_block_device()
        || std::fs::metadata(path.join(".."))
            .is_ok_and(|up| up.dev() != meta.dev() || up.ino() == meta.ino())
}

fn map_all(cli: &Cli) -> ExitCode {
    let backend = match cli.backend {
        BackendArg::Auto => blockmap::Backend::Auto,
        BackendArg::Module => blockmap::Backend::Module,
        BackendArg::MoveExt => blockmap::Backend::Fiemap,
    };
    let mut failed = false;
    for path in &cli.paths {
        if let Err(e) = map_one(cli, backend, path) {
            output::warn(&e.to_string());
            failed = true;
        }
    }
    if output_failed(|| format!("{} file(s) mapped", cli.paths.len())) || failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `--free-space`: consolidates the free space of each target's
/// filesystem; exit 1 if any target failed or no run could be made.
fn free_space_all(cli: &Cli, mounts: &[Mount]) -> ExitCode {
    let mut failed = false;
    let mut docs = Vec::new();
    for path in &cli.paths {
        match free_space_one(cli, mounts, path) {
            Ok(done) => {
                failed |= !done.succeeded();
                if cli.json {
                    docs.push(done);
                } else {
                    print_free_space(&done);
                }
            }
            Err(e) => {
                output::warn(&e.to_string());
                failed = true;
            }
        }
    }
    if cli.json {
        /// The document, fields in the order declared (json! sorts them).
        #[derive(serde::Serialize)]
        struct Doc<'a> {
            free_space: &'a [consolidate::Consolidation],
        }
        match serde_json::to_string_pretty(&Doc { free_space: &docs }) {
            Ok(text) => output::line(&text),
            Err(e) => output::warn(&format!("cannot encode JSON: {e}")),
        }
    }
    if output_failed(|| format!("{} target(s) consolidated", cli.paths.len())) || failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Consolidates the free space of the filesystem of `path` (a directory,
/// mount point or mounted device) as --target-run and --max-move say.
fn free_space_one(
    cli: &Cli,
    mounts: &[Mount],
    path: &Path,
) -> Result<consolidate::Consolidation, Error> {
    let dir = match walk::classify(path, mounts)? {
        Target::Dir(d) => d,
        Target::Device { mount, .. } => mount,
        Target::File(_) => {
            return Err(Error::Refused {
                path: path.into(),
                reason: "--free-space takes a directory, mount point or device".into(),
            })
        }
    };
    let dir_file = File::open(&dir).map_err(Error::io(&dir, "open"))?;
    let block_size = ext4fs::block_size(&dir_file, &dir)?;
    if !engine::module_present(&dir_file) || cli.backend == BackendArg::MoveExt {
        return Err(Error::Refused {
            path: dir,
            reason: "--free-space moves files to chosen blocks: it needs the ext4_defrag \
                     module (EXT4_IOC_DEFRAG)"
                .into(),
        });
    }
    let goal = consolidate::Goal {
        run_blocks: cli.target_run.map(|b| b.div_ceil(block_size)),
        // Whole blocks only: a budget never rounds up.
        max_move_blocks: cli.max_move.map(|b| b / block_size),
        max_ratio: cli.max_evacuate,
    };
    consolidate::run(&dir, &dir_file, block_size, goal)
}

/// Prints what `--free-space` did on one filesystem: the free space
/// before, the result (on standard error when no run was made), after.
fn print_free_space(done: &consolidate::Consolidation) {
    let dir = done.before.target.display();
    let blocks = done.run_blocks;
    let mut text = String::from("Before:\n");
    done.before.write_text(&mut text);
    output::print(&text);
    let result = match (done.outcome, &done.room) {
        ("made", Some(room)) => format!(
            "{dir}: free run of {blocks} blocks made at block {}: {} blocks of {} files \
             moved ({:.2} of the run)",
            room.start,
            room.moved_blocks,
            room.moved_files,
            room.moved_blocks as f64 / blocks.max(1) as f64
        ),
        ("not_needed", _) => format!("{dir}: a free run of {blocks} blocks exists already"),
        ("too_costly", _) => format!(
            "{dir}: a free run of {blocks} blocks would move {} blocks of files, more than \
             --max-evacuate or --max-move allows ({})",
            done.cost.unwrap_or(0),
            done.limit.unwrap_or(0)
        ),
        _ => format!(
            "{dir}: no region of {blocks} blocks can be cleared (blocks that cannot move, \
             or files that fit nowhere else)"
        ),
    };
    if done.succeeded() {
        output::line(&result);
    } else {
        output::warn(&result);
    }
    let mut text = String::from("After:\n");
    done.after.write_text(&mut text);
    output::print(&text);
}

fn map_one(cli: &Cli, backend: blockmap::Backend, path: &Path) -> Result<(), Error> {
    let file = File::open(path).map_err(Error::io(path, "open"))?;
    let block_size = ext4fs::block_size(&file, path)?;
    for &lblk in &cli.blocks {
        let m = blockmap::query(&file, path, lblk, block_size, backend)?;
        // "-": a hole that runs to the end of the address space.
        let len = m.len.map_or("-".to_string(), |l| l.to_string());
        let source = match m.source {
            blockmap::Backend::Module => "module",
            _ => "fiemap",
        };
        output::line(&format!(
            "{}: block {lblk}: physical {}, {len} blocks, {} ({source})",
            path.display(),
            m.pblk,
            m.state
        ));
    }
    Ok(())
}

fn totals(out: &mut Outcome) {
    let t = &mut out.totals;
    for r in &out.files {
        t.files += 1;
        match r.status {
            Status::Done => t.done += 1,
            Status::NothingToGain => t.nothing_to_gain += 1,
            Status::DryRun => t.dry_run += 1,
            Status::Skipped => t.skipped += 1,
            Status::Failed => t.failed += 1,
        }
        t.extents_before += u64::from(r.extents_before);
        t.extents_after += u64::from(r.extents_after);
        t.moved_blocks += r.moved_blocks;
    }
}

/// Whether writing to standard output failed during the run; if so, says
/// why on standard error, with the `summary` that may not have reached
/// standard output.
fn output_failed(summary: impl FnOnce() -> String) -> bool {
    match output::error() {
        Some(e) => {
            output::warn(&format!(
                "cannot write to standard output ({e}); the run went on"
            ));
            output::warn(&summary());
            true
        }
        None => false,
    }
}

/// `--record LIST`: the read order of the files under the one target (a
/// mount point or directory: the files under it; a device: its whole
/// filesystem) into LIST; exit 1 when it could not record or write the
/// list.
fn record_to(cli: &Cli, mounts: &[Mount], list: &Path) -> ExitCode {
    let result = (|| {
        let [target] = cli.paths.as_slice() else {
            return Err(Error::Refused {
                path: list.into(),
                reason: "--record watches one filesystem: name one mount point or device".into(),
            });
        };
        let mount = match walk::classify(target, mounts)? {
            Target::Dir(d) => d,
            Target::Device { mount, .. } => mount,
            Target::File(_) => {
                return Err(Error::Refused {
                    path: target.clone(),
                    reason: "--record takes a mount point, directory or device".into(),
                })
            }
        };
        let handle = File::open(&mount).map_err(Error::io(&mount, "open"))?;
        ext4fs::block_size(&handle, &mount)?;
        let deadline = Deadline::new(cli.time_limit);
        let rec = record::record(&mount, deadline, || {
            output::warn(&format!(
                "recording the files opened under {}{}; SIGINT or SIGTERM ends it",
                mount.display(),
                cli.time_limit
                    .map(|l| format!(" for {}", humantime::format_duration(l)))
                    .unwrap_or_default()
            ));
        })?;
        let mut text = Vec::new();
        for f in &rec.files {
            text.extend_from_slice(f.as_os_str().as_encoded_bytes());
            text.push(b'\n');
        }
        std::fs::write(list, text).map_err(Error::io(list, "write"))?;
        Ok((rec, mount))
    })();
    match result {
        Ok((rec, watched)) => {
            if cli.json {
                match serde_json::to_string_pretty(&serde_json::json!({ "record": rec })) {
                    Ok(s) => output::line(&s),
                    Err(e) => output::warn(&format!("cannot write JSON: {e}")),
                }
            } else {
                output::line(&format!(
                    "{}: {} recorded under {} ({} open events, {} left out: not regular, \
                     another filesystem, deleted, our own, or {} elsewhere on the filesystem)",
                    list.display(),
                    plural(rec.files.len() as u64, "file"),
                    watched.display(),
                    rec.events,
                    rec.left_out,
                    rec.outside
                ));
            }
            if rec.overflows > 0 {
                output::warn(&format!(
                    "the fanotify event queue overflowed {} time(s): events were lost, \
                     the list may miss files",
                    rec.overflows
                ));
            }
            if output_failed(|| format!("{} files recorded", rec.files.len())) {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            output::warn(&e.to_string());
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.map {
        return map_all(&cli);
    }
    let mounts = mounts::read().unwrap_or_default();
    if cli.free_space {
        return free_space_all(&cli, &mounts);
    }
    if let Some(list) = &cli.record {
        return record_to(&cli, &mounts, list);
    }
    let mut out = Outcome {
        dry_run: cli.dry_run,
        ..Default::default()
    };
    let jobs = expand(&cli, &mounts, &mut out);
    if !cli.json {
        for r in &out.files {
            output::warn(&line(r));
        }
    }
    // --goal chooses the block: only the module can (MOVE_EXT's donor goes
    // where ext4 puts it, and the file would land elsewhere, exit 0).
    if let (Some(goal), Some(p)) = (
        cli.goal,
        jobs.iter().find(|p| p.backend == Backend::MoveExt),
    ) {
        let what = p
            .job
            .files()
            .first()
            .map_or(String::new(), |f| format!(" for {}", f.display()));
        output::warn(&format!(
            "--goal {goal} needs the ext4_defrag module (EXT4_IOC_DEFRAG){what}: \
             EXT4_IOC_MOVE_EXT cannot place a file at a chosen block; nothing was moved"
        ));
        return ExitCode::from(2);
    }
    if cli.check {
        let check = run_check(&cli, &mounts, &jobs, &mut out);
        if cli.json {
            let doc = serde_json::json!({ "check": check, "failures": out.files });
            output::line(&format!("{doc:#}"));
        } else if !jobs.is_empty() {
            // Nothing could be checked: the errors above say why, and a
            // report of zero files would say nothing true.
            output::print(&check.to_text(cli.verbose));
        }
        let output_failed = output_failed(|| {
            let t = &check.totals;
            format!(
                "{} files checked, {} not; score {:.2}, verdict: {}",
                t.files, t.failed, t.score, t.verdict
            )
        });
        return if out.files.is_empty() && !output_failed {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    run_defrag(&cli, &jobs, &mut out);
    totals(&mut out);
    let t = &out.totals;
    let summary = format!(
        "{}: {} done, {} nothing to gain, {} dry run, {} skipped, {} failed; \
         extents {} -> {}, {} {} blocks",
        plural(t.files, "file"),
        t.done,
        t.nothing_to_gain,
        t.dry_run,
        t.skipped,
        t.failed,
        t.extents_before,
        t.extents_after,
        if cli.dry_run { "would move" } else { "moved" },
        t.moved_blocks
    );
    if cli.json {
        match serde_json::to_string_pretty(&out) {
            Ok(s) => output::line(&s),
            Err(e) => output::warn(&format!("cannot write JSON: {e}")),
        }
    } else if t.files > 1 || out.interrupted.is_some() {
        output::line(&summary);
    }
    let failed = output_failed(|| summary.clone()) || t.failed > 0;
    if let Some(sig) = interrupt::requested() {
        if !cli.json {
            output::warn(&format!(
                "stopped by {sig} after {}: what moved stays moved, every file whole",
                plural(t.files, "file")
            ));
        }
        return ExitCode::from(interrupt::exit_status(sig));
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_read_right() {
        assert_eq!(super::plural(1, "file"), "1 file");
        assert_eq!(super::plural(0, "file"), "0 files");
        assert_eq!(super::plural(2, "set"), "2 sets");
    }
}
