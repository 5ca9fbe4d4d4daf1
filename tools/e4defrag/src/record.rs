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
        signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal},
        stat::{fstat, FileStat, SFlag},
    },
};
use std::{
    collections::HashSet,
    os::fd::{AsFd, AsRawFd},
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
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
    /// Times the kernel's event queue overflowed (events lost).
    pub overflows: u64,
}

/// Set by SIGINT and SIGTERM while recording.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: nix::libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Makes SIGINT and SIGTERM end the recording (and not the process, so
/// that the list is written).
fn catch_stop_signals() -> Result<(), Errno> {
    let act = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe.
        unsafe { sigaction(sig, &act) }?;
    }
    Ok(())
}

/// The path an event's descriptor names, if the file (`st`) is a regular
/// file of the device `dev` that still has a name; `None` for the rest.
fn wanted(fd: std::os::fd::BorrowedFd<'_>, st: &FileStat, dev: u64) -> Option<PathBuf> {
    let regular = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG;
    if !regular || st.st_dev != dev || st.st_nlink == 0 {
        return None;
    }
    let path = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    if path.as_os_str().as_encoded_bytes().ends_with(b" (deleted)") {
        return None;
    }
    Some(path)
}

/// Reads the events queued on `fan` into `out` until none is left.
fn take(
    fan: &Fanotify,
    dev: u64,
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
            match wanted(fd, &st, dev) {
                Some(path) => out.files.push(path),
                None => out.left_out += 1,
            }
        }
    }
}

/// Records the files first opened on the filesystem `mount` is on until
/// `until` passes or a SIGINT or SIGTERM comes; `ready` is called once
/// the watch is in place.
pub fn record(mount: &Path, until: Deadline, ready: impl FnOnce()) -> Result<Recording, Error> {
    let refused = |reason: String| Error::Refused {
        path: mount.into(),
        reason,
    };
    let dev = std::fs::metadata(mount)
        .map_err(Error::io(mount, "stat"))
        .map(|m| std::os::unix::fs::MetadataExt::dev(&m))?;
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
    catch_stop_signals().map_err(|e| refused(format!("sigaction: {e}")))?;
    ready();

    let mut out = Recording::default();
    let mut seen = HashSet::new();
    while !STOP.load(Ordering::Relaxed) && !until.passed() {
        let mut fds = [PollFd::new(fan.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(200u16)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(refused(format!("poll: {e}"))),
        }
        take(&fan, dev, &mut seen, &mut out).map_err(|e| refused(format!("fanotify: {e}")))?;
    }
    // What was opened before the end but not read yet.
    take(&fan, dev, &mut seen, &mut out).map_err(|e| refused(format!("fanotify: {e}")))?;
    Ok(out)
}
