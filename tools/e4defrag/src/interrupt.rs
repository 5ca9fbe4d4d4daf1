//! SIGINT and SIGTERM as requests to stop: the handler only notes the
//! signal; runs look at [`requested`] between files and between the
//! steps of a move, finish what they are doing and say what was done.

use nix::{
    errno::Errno,
    sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal},
};
use std::sync::atomic::{AtomicI32, Ordering};

/// The signal that asked the run to stop, 0 while none did.
static STOP: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: nix::libc::c_int) {
    STOP.store(sig, Ordering::Relaxed);
}

/// Catches SIGINT and SIGTERM from now on. Without `SA_RESTART`, so that
/// a system call the signal interrupts (the module's move checks for
/// signals between its steps) returns `EINTR` and the run can stop.
pub fn catch() -> Result<(), Errno> {
    let act = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe.
        unsafe { sigaction(sig, &act) }?;
    }
    Ok(())
}

/// The signal that asked the run to stop, if one did.
pub fn requested() -> Option<Signal> {
    match STOP.load(Ordering::Relaxed) {
        0 => None,
        n => Signal::try_from(n).ok(),
    }
}

/// The exit status of a run stopped by `sig`, as a shell reports a
/// process the signal killed: 128 + its number (130 for SIGINT).
pub fn exit_status(sig: Signal) -> u8 {
    128u8.saturating_add(sig as i32 as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_is_as_the_shell_reports_it() {
        assert_eq!(exit_status(Signal::SIGINT), 130);
        assert_eq!(exit_status(Signal::SIGTERM), 143);
    }
}
