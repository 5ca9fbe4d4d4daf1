//! Unattended runs (a timer's nightly job): a time limit that stops a
//! walk between files, the place it stopped kept in a state file so that
//! the next run goes on from there (as xfs_fsr keeps `/var/tmp/.fsrlast`),
//! and a pace limit on the bytes moved.

use std::{
    collections::BTreeMap,
    io,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

/// Where the state is kept unless `--state` says otherwise.
pub const DEFAULT_STATE: &str = "/var/lib/e4defrag/resume";

/// Where each walk target's last run stopped: the last file it handled.
/// One line per target, `TARGET<TAB>LAST FILE`; paths are kept as given
/// on the command line and as the walk found them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ResumeState {
    last: BTreeMap<PathBuf, PathBuf>,
}

impl ResumeState {
    /// Reads `path`; a missing file is an empty state.
    pub fn load(path: &Path) -> io::Result<ResumeState> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e),
        };
        Ok(Self::parse(&text))
    }

    fn parse(text: &[u8]) -> ResumeState {
        use std::os::unix::ffi::OsStrExt;
        let mut last = BTreeMap::new();
        for line in text.split(|&b| b == b'\n') {
            let mut parts = line.splitn(2, |&b| b == b'\t');
            if let (Some(t), Some(f)) = (parts.next(), parts.next()) {
                if !t.is_empty() && !f.is_empty() {
                    last.insert(
                        PathBuf::from(std::ffi::OsStr::from_bytes(t)),
                        PathBuf::from(std::ffi::OsStr::from_bytes(f)),
                    );
                }
            }
        }
        ResumeState { last }
    }

    /// Writes the state to `path` (its directory made if need be) by
    /// renaming a complete new copy over it, so a crash leaves the old
    /// state or the new one.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut text = Vec::new();
        for (t, f) in &self.last {
            text.extend_from_slice(t.as_os_str().as_bytes());
            text.push(b'\t');
            text.extend_from_slice(f.as_os_str().as_bytes());
            text.push(b'\n');
        }
        let tmp = path.with_extension("new");
        std::fs::write(&tmp, text)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, path)
    }

    /// The last file handled under `target` in a run that stopped early.
    pub fn last(&self, target: &Path) -> Option<&Path> {
        self.last.get(target).map(PathBuf::as_path)
    }

    /// A run stopped after `file` under `target`.
    pub fn stopped(&mut self, target: &Path, file: &Path) {
        self.last.insert(target.into(), file.into());
    }

    /// A run went through `target` to its end: the next starts afresh.
    pub fn finished(&mut self, target: &Path) {
        self.last.remove(target);
    }
}

/// The files of a walk (in sorted path order) that come after `last`.
pub fn after<'a>(files: &'a [PathBuf], last: Option<&Path>) -> &'a [PathBuf] {
    match last {
        Some(l) => &files[files.partition_point(|f| f.as_path() <= l)..],
        None => files,
    }
}

/// The time limit of a run.
#[derive(Clone, Copy, Debug)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    pub fn new(limit: Option<Duration>) -> Deadline {
        Deadline(limit.map(|l| Instant::now() + l))
    }

    /// Whether the run is out of time.
    pub fn passed(&self) -> bool {
        self.0.is_some_and(|d| Instant::now() >= d)
    }
}

/// Keeps the bytes moved to at most `rate` bytes per second on average
/// since the run started, by sleeping after a move that got ahead.
#[derive(Debug)]
pub struct Pacer {
    rate: Option<f64>,
    start: Instant,
    bytes: u64,
}

impl Pacer {
    /// `rate` in bytes per second; `None`: no limit.
    pub fn new(rate: Option<f64>) -> Pacer {
        Pacer {
            rate,
            start: Instant::now(),
            bytes: 0,
        }
    }

    /// How long to wait after `bytes` more were moved.
    pub fn owe(&mut self, bytes: u64) -> Duration {
        self.bytes += bytes;
        let Some(rate) = self.rate else {
            return Duration::ZERO;
        };
        let due = Duration::from_secs_f64(self.bytes as f64 / rate);
        due.saturating_sub(self.start.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_resumes_after_the_last_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state");
        let mut s = ResumeState::load(&path).unwrap();
        assert_eq!(s, ResumeState::default());
        s.stopped(Path::new("/dev/vda"), Path::new("/mnt/b/x y"));
        s.stopped(Path::new("/srv"), Path::new("/srv/a"));
        s.save(&path).unwrap();
        let mut t = ResumeState::load(&path).unwrap();
        assert_eq!(t, s);
        assert_eq!(t.last(Path::new("/dev/vda")), Some(Path::new("/mnt/b/x y")));
        t.finished(Path::new("/srv"));
        assert_eq!(t.last(Path::new("/srv")), None);

        let files: Vec<PathBuf> = ["/m/a", "/m/b", "/m/b/c", "/m/d"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(after(&files, None), &files[..]);
        assert_eq!(after(&files, Some(Path::new("/m/b"))), &files[2..]);
        // The last file is gone since: the next one after its name.
        assert_eq!(after(&files, Some(Path::new("/m/c"))), &files[3..]);
        assert!(after(&files, Some(Path::new("/m/z"))).is_empty());
    }

    #[test]
    fn the_pacer_owes_what_the_rate_asks() {
        let mut p = Pacer::new(Some(1e6));
        let wait = p.owe(2_000_000);
        assert!(wait > Duration::from_millis(1900) && wait <= Duration::from_secs(2));
        let mut free = Pacer::new(None);
        assert_eq!(free.owe(u64::MAX / 2), Duration::ZERO);
    }
}
