// SPDX-License-Identifier: GPL-2.0

//! Defragmentation planning shared by the module and the tool (`core`
//! only): counting extents, and deciding whether a new placement is worth
//! moving the data.

/// Counts the extents of a file from its allocated runs, in logical order:
/// a run continues the previous extent when it follows it both logically
/// and physically.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtentCounter {
    extents: u32,
    blocks: u64,
    first_pblk: Option<u64>,
    next_lblk: u64,
    next_pblk: u64,
}

impl ExtentCounter {
    /// Adds the run of `len` blocks at logical `lblk`, physical `pblk`.
    pub fn push(&mut self, lblk: u64, pblk: u64, len: u64) {
        if len == 0 {
            return;
        }
        if self.first_pblk.is_none() {
            self.first_pblk = Some(pblk);
        }
        if self.extents == 0 || lblk != self.next_lblk || pblk != self.next_pblk {
            self.extents = self.extents.saturating_add(1);
        }
        self.blocks += len;
        self.next_lblk = lblk + len;
        self.next_pblk = pblk + len;
    }

    /// Extents counted so far.
    pub fn extents(&self) -> u32 {
        self.extents
    }

    /// Blocks counted so far.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Physical block of the first run, if any.
    pub fn first_pblk(&self) -> Option<u64> {
        self.first_pblk
    }

    /// Physical block right after the last run, if any.
    pub fn next_pblk(&self) -> Option<u64> {
        self.first_pblk.map(|_| self.next_pblk)
    }
}

/// Distance in blocks between two physical blocks.
pub fn distance(a: u64, b: u64) -> u64 {
    a.abs_diff(b)
}

/// Is moving the data from the `before` layout to the `after` layout an
/// improvement? Fewer extents always is; with a `goal` (non-zero), as many
/// extents starting nearer the goal is too.
pub fn improves(before: &ExtentCounter, after: &ExtentCounter, goal: u64) -> bool {
    if after.extents() < before.extents() {
        return true;
    }
    if goal == 0 || after.extents() > before.extents() {
        return false;
    }
    match (before.first_pblk(), after.first_pblk()) {
        (Some(old), Some(new)) => distance(new, goal) < distance(old, goal),
        _ => false,
    }
}
