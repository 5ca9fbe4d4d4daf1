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

/// `len` blocks from logical block `lblk`, physically contiguous from
/// `pblk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MappedRun {
    pub lblk: u64,
    pub pblk: u64,
    pub len: u64,
}

/// Where a move step that stopped early goes on: after the last block of
/// the file that now holds the block the donor had for it (`donor_runs`,
/// by the file's logical blocks, recorded before the step), or at `start`
/// if none does. `map(lblk, max_len)` reports the file's mapping now: the
/// physical block at `lblk` (`None` for a hole) and how many blocks, at
/// least 1, continue it.
///
/// A swap gives the file exactly the donor's blocks, so this holds when a
/// writer filled or punched holes after the step, where counting the data
/// blocks the step moved would stop short (and a retry swap moved blocks
/// back) or skip blocks that never moved.
pub fn resume_after<E>(
    start: u64,
    donor_runs: &[MappedRun],
    mut map: impl FnMut(u64, u64) -> Result<(Option<u64>, u64), E>,
) -> Result<u64, E> {
    let mut next = start;
    for r in donor_runs {
        let end = r.lblk + r.len;
        let mut lblk = r.lblk;
        while lblk < end {
            let (pblk, len) = map(lblk, end - lblk)?;
            let len = len.clamp(1, end - lblk);
            // Both runs are physically contiguous: they agree on all of
            // `len` blocks if they agree on the first.
            if pblk == Some(r.pblk + (lblk - r.lblk)) {
                next = lblk + len;
            }
            lblk += len;
        }
    }
    Ok(next)
}
