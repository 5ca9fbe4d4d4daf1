//! `--free-space`: free-space consolidation on its own, with no file to
//! place. Clears one free run, of a size asked for or the largest that a
//! budget of moved bytes can make, the way making room for a set does
//! (`makeroom`), and keeps the free-space picture before and after.

use crate::{error::Error, fsmap, makeroom, report::FreeSpace};
use serde::Serialize;
use std::{fs::File, path::Path};

/// What to make.
#[derive(Clone, Copy, Debug)]
pub struct Goal {
    /// A free run of this many blocks (`--target-run`).
    pub run_blocks: Option<u64>,
    /// At most this many blocks of files moved (`--max-move`).
    pub max_move_blocks: Option<u64>,
    /// With `run_blocks`: at most this times as many blocks moved
    /// (`--max-evacuate`).
    pub max_ratio: f64,
}

/// What came of it: the JSON document `--free-space --json` prints.
#[derive(Clone, Debug, Serialize)]
pub struct Consolidation {
    pub before: FreeSpace,
    pub after: FreeSpace,
    /// The run asked for or made, in blocks; with a budget alone that
    /// cannot do better, the largest free run there is.
    pub run_blocks: u64,
    /// `made`, `not_needed`, `too_costly` or `no_region`.
    pub outcome: &'static str,
    /// Where the run was made and what moved for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<makeroom::Room>,
    /// For `too_costly`: the cheapest region's cost and the limit, blocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

impl Consolidation {
    /// Whether the run asked for is there now.
    pub fn succeeded(&self) -> bool {
        matches!(self.outcome, "made" | "not_needed")
    }
}

/// Consolidates the free space of the filesystem of `dir` (open as
/// `dir_file`, blocks of `block_size` bytes) as `goal` says.
pub fn run(
    dir: &Path,
    dir_file: &File,
    block_size: u64,
    goal: Goal,
) -> Result<Consolidation, Error> {
    let picture = || -> Result<FreeSpace, Error> {
        let free =
            fsmap::free_runs(dir_file, block_size).map_err(Error::sys(dir, "FS_IOC_GETFSMAP"))?;
        Ok(FreeSpace::of(dir.to_path_buf(), block_size, &free))
    };
    let before = picture()?;
    let (run_blocks, outcome) = match goal.run_blocks {
        Some(blocks) => {
            let mut want = makeroom::Want::with_ratio(blocks, 0, goal.max_ratio);
            if let Some(budget) = goal.max_move_blocks {
                want.limit = want.limit.min(budget);
            }
            (
                blocks,
                makeroom::make_room(dir, dir_file, &[], block_size, want)?,
            )
        }
        None => {
            let budget = goal.max_move_blocks.unwrap_or(0);
            makeroom::make_largest(dir, dir_file, block_size, budget)?
        }
    };
    let (outcome, room, cost, limit) = match outcome {
        makeroom::Outcome::NotNeeded => ("not_needed", None, None, None),
        makeroom::Outcome::Made(room) => ("made", Some(room), None, None),
        makeroom::Outcome::TooCostly { cost, limit } => {
            ("too_costly", None, Some(cost), Some(limit))
        }
        makeroom::Outcome::NoRegion => ("no_region", None, None, None),
        makeroom::Outcome::GaveUp { .. } => ("gave_up", None, None, None),
    };
    Ok(Consolidation {
        before,
        after: picture()?,
        run_blocks,
        outcome,
        room,
        cost,
        limit,
    })
}
