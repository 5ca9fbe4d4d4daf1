//! `--record LIST`: the regular files of one mounted filesystem in the
//! order they are first opened, from fanotify (`FAN_MARK_FILESYSTEM`,
//! which needs CAP_SYS_ADMIN), for a time window or until SIGINT or
//! SIGTERM: the read order of a boot, for `-r --order LIST --only-listed`.

use crate::{error::Error, unattended::Deadline};
use nix::{
    errno::Errno,
    poll::{poll, PollFd, PollFlags, PollTimeout},
    sys::{
        fanotify::{EventFFlags, Fanotify, InitFlags, MarkFlags, MaskFlags},
        stat::{fstat, FileStat, SFlag},
    },
};
use std::{
    collections::HashSet,
    os::fd::{AsFd, AsRawFd},
    path::{Path, PathBuf},
};

/// What a recording saw.
#[derive(Debug, Default, serde::Serialize)]
pub struct Recording {
    /// The files, in first-open order, each once.
    pub files: Vec<PathBuf>,
    /// Open events read.
    pub events: u64,
    /// Events left out: not a regular file, another filesystem, deleted,
    /// or the recorder's own.
    pub left_out: u64,
    /// Of those, regular files of the filesystem outside the directory
    /// recorded (`--record LIST DIR` lists only the files under DIR).
    pub outside: u64,
    /// Times the kernel's event queue overflowed (events lost).
    pub overflows: u64,
}

/// Where the recording looks: the filesystem (its device) and the
/// directory on it whose files are listed.
struct Watch<'a> {
    dev: u64,
    under: &'a Path,
}

/// What one open event is to the recording.
enum Seen {
    /// A regular file under the directory, by this path.
    Listed(PathBuf),
    /// A regular file of the filesystem, elsewhere.
    Outside,
    /// Not a regular file, another filesystem, or no name left.
    Other,
}

/// What the file an event's descriptor names (`st`) is to `watch`.
fn kind_of(fd: std::os::fd::BorrowedFd<'_>, st: &FileStat, watch: &Watch<'_>) -> Seen {
    let regular = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG;
    if !regular || st.st_dev != watch.dev || st.st_nlink == 0 {
        return Seen::Other;
    }
    let Ok(path) = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) else {
        return Seen::Other;
    };
    if path.as_os_str().as_encoded_bytes().ends_with(b" (deleted)") {
        return Seen::Other;
    }
    if path.starts_with(watch.under) {
        Seen::Listed(path)
    } else {
        Seen::Outside
    }
}

/// Reads the events queued on `fan` into `out` until none is left.
fn take(
    fan: &Fanotify,
    watch: &Watch<'_>,
    seen: &mut HashSet<(u64, u64)>,
    out: &mut Recording,
) -> Result<(), Errno> {
    let me = std::process::id() as i32;
    loop {
        let events = match fan.read_events() {
            Ok(ev) => ev,
            Err(Errno::EAGAIN) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        };
        for ev in events {
            if ev.mask().contains(MaskFlags::FAN_Q_OVERFLOW) {
                out.overflows += 1;
                continue;
            }
            let Some(fd) = ev.fd() else { continue };
            out.events += 1;
            if ev.pid() == me {
                out.left_out += 1;
                continue;
            }
            let Ok(st) = fstat(fd.as_raw_fd()) else {
                out.left_out += 1;
                continue;
            };
            if !seen.insert((st.st_dev, st.st_ino)) {
                continue;
            }
            match kind_of(fd, &st, watch) {
                Seen::Listed(path) => out.files.push(path),
                Seen::Outside => {
                    out.outside += 1;
                    out.left_out += 1;
                }
                Seen::Other => out.left_out += 1,
            }
        }
    }
}

/// Records the files under the directory `mount` (a mount point, or any
/// directory of an ext4 filesystem) first opened until `until` passes or a
/// SIGINT or SIGTERM comes; `ready` is called once the watch is in place.
/// The whole filesystem is watched (fanotify has no mark for a tree), and
/// files elsewhere on it are counted in [`Recording::outside`].
pub fn record(mount: &Path, until: Deadline, ready: impl FnOnce()) -> Result<Recording, Error> {
    let refused = |reason: String| Error::Refused {
        path: mount.into(),
        reason,
    };
    let dev = std::fs::metadata(mount)
        .map_err(Error::io(mount, "stat"))
        .map(|m| std::os::unix::fs::MetadataExt::dev(&m))?;
    // The names the events give are canonical (/proc/self/fd).
    let under = std::fs::canonicalize(mount).map_err(Error::io(mount, "realpath"))?;
    let watch = Watch { dev, under: &under };
    let fan = Fanotify::init(
        InitFlags::FAN_CLASS_NOTIF | InitFlags::FAN_CLOEXEC | InitFlags::FAN_NONBLOCK,
        EventFFlags::O_RDONLY | EventFFlags::O_LARGEFILE | EventFFlags::O_CLOEXEC,
    )
    .map_err(|e| match e {
        Errno::EPERM => refused("recording needs CAP_SYS_ADMIN (fanotify); run it as root".into()),
        Errno::ENOSYS => refused("this kernel has no fanotify (CONFIG_FANOTIFY)".into()),
        e => refused(format!("fanotify_init: {e}")),
    })?;
    fan.mark(
        MarkFlags::FAN_MARK_ADD | MarkFlags::FAN_MARK_FILESYSTEM,
        MaskFlags::FAN_OPEN | MaskFlags::FAN_OPEN_EXEC,
        None,
        Some(mount),
    )
    .map_err(|e| match e {
        Errno::EPERM => refused("recording needs CAP_SYS_ADMIN (fanotify); run it as root".into()),
        e => refused(format!("fanotify_mark (FAN_MARK_FILESYSTEM): {e}")),
    })?;
    crate::interrupt::catch().map_err(|e| refused(format!("sigaction: {e}")))?;
    ready();

    let mut out = Recording::default();
    let mut seen = HashSet::new();
    while crate::interrupt::requested().is_none() && !until.passed() {
        let mut fds = [PollFd::new(fan.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(200u16)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(refused(format!("poll: {e}"))),
        }
        take(&fan, &watch, &mut seen, &mut out).map_err(|e| refused(format!("fanotify: {e}")))?;
    }
    // What was opened before the end but not read yet.
    take(&fan, &watch, &mut seen, &mut out).map_err(|e| refused(format!("fanotify: {e}")))?;
    Ok(out)
}
