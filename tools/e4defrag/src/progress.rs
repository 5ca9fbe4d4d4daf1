//! What every move reports to between its steps: the progress bar (in
//! bytes, so that it is right on any block size), the pace `--max-rate`
//! keeps, and whether SIGINT or SIGTERM asked the run to stop.

use crate::{interrupt, unattended::Pacer};
use indicatif::{ProgressBar, ProgressStyle};
use nix::sys::signal::Signal;
use std::cell::RefCell;

/// A run's progress.
pub struct Progress {
    bar: ProgressBar,
    pacer: RefCell<Pacer>,
}

impl Progress {
    /// A bar of `total_bytes` (hidden by indicatif when standard error is
    /// not a terminal) and a pace of `rate` bytes per second (`None`: as
    /// fast as it goes).
    pub fn new(total_bytes: u64, rate: Option<f64>) -> Progress {
        let bar = ProgressBar::new(total_bytes);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:30} {percent:>3}% {bytes}/{total_bytes}  {wide_msg}")
        {
            bar.set_style(style);
        }
        Progress {
            bar,
            pacer: RefCell::new(Pacer::new(rate)),
        }
    }

    /// Nothing shown, no pace: for moves that are part of another (making
    /// room, a file placed on its own inside a set).
    pub fn hidden() -> Progress {
        Progress {
            bar: ProgressBar::hidden(),
            pacer: RefCell::new(Pacer::new(None)),
        }
    }

    /// The bar, to print through it (`suspend`) or set its position.
    pub fn bar(&self) -> &ProgressBar {
        &self.bar
    }

    /// `blocks` of `block_size` bytes were moved (or handled): the bar
    /// goes on, and the run sleeps as long as the pace asks.
    pub fn moved(&self, blocks: u64, block_size: u64) {
        let bytes = blocks.saturating_mul(block_size);
        self.bar.inc(bytes);
        let wait = self.pacer.borrow_mut().owe(bytes);
        // In slices, so that a stop request is not kept waiting for the
        // pace (a sleep goes on after a signal).
        let until = std::time::Instant::now() + wait;
        while self.stop_requested().is_none() {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(std::time::Duration::from_millis(100)));
        }
    }

    /// Says `message` on standard error through the bar (which is drawn
    /// again after it, leaving no fragment behind).
    pub fn warn(&self, message: &str) {
        self.bar.suspend(|| crate::output::warn(message));
    }

    /// The file being worked on.
    pub fn working_on(&self, path: &std::path::Path) {
        self.bar.set_message(path.display().to_string());
    }

    /// The signal that asked the run to stop, if one did.
    pub fn stop_requested(&self) -> Option<Signal> {
        interrupt::requested()
    }
}
