//! The command line: what `e4defrag --help` and the man page describe.

use clap::{Parser, ValueEnum};
use std::path::PathBuf;

/// ext4 goal-directed online defragmenter.
///
///   e4defrag FILE...      defragment each file (a directory: each file under it)
///   e4defrag -r DIR...    put the files under DIR physically side by side, in
///                         the order directory walks read them or --order, for
///                         fast reading in sequence
///   e4defrag DEVICE...    every file of the ext4 filesystem mounted from DEVICE
///   e4defrag -c TARGET... report fragmentation only
///   e4defrag --free-space --target-run SIZE | --max-move SIZE DIR|DEVICE...
///                         make a free run of SIZE, or the largest one that
///                         moving SIZE of files can make (module only)
///
/// Moves blocks with the ext4_defrag module's EXT4_IOC_DEFRAG when it is
/// loaded, else with the stock kernel's EXT4_IOC_MOVE_EXT. File data and
/// timestamps stay as they are. Exit status: 0 when every target was
/// handled (files no run can move are skipped and listed, failures only
/// with --strict), 1 when any failed (each failure is printed with its
/// path, errno and reason), 2 for bad usage, 130 after SIGINT (143 after
/// SIGTERM), once the file being moved is left whole and the summary of
/// what was done is printed.
#[derive(Parser, Debug)]
// The name, not argv[0]'s path, in usage and errors.
#[command(
    name = "e4defrag",
    bin_name = "e4defrag",
    version,
    verbatim_doc_comment
)]
#[command(group(clap::ArgGroup::new("free_space_goal").multiple(true)))]
pub struct Cli {
    /// Colocate: put every regular file under each DIR close together.
    #[arg(short = 'r', long = "colocate")]
    pub colocate: bool,

    /// With -r: read order, one path per line (absolute or relative to DIR),
    /// as a boot trace gives it; files not listed follow in --order-by order.
    #[arg(long, value_name = "LISTFILE", requires = "colocate")]
    pub order: Option<PathBuf>,

    /// The order of a tree's files: -r places them so, -c counts read-order
    /// discontinuities in it. walk: as directory walks read them (find,
    /// grep -r, tar, cp -a, du, rsync: each directory in readdir order,
    /// depth first); path: sorted paths (git reads its index so).
    #[arg(long, value_enum, default_value_t = OrderBy::Walk)]
    pub order_by: OrderBy,

    /// With -r --order: the set is exactly the regular files the list
    /// names under DIR (on its filesystem), in list order; nothing else
    /// under DIR moves and DIR is not walked. For boot files spread over
    /// /usr, /etc and more: -r --order LIST --only-listed /.
    #[arg(long, requires = "order")]
    pub only_listed: bool,

    /// Report fragmentation only: extents now/best, ratio and score as
    /// e2fsprogs' e4defrag -c computes them, the worst files, and for
    /// directories and devices the read-order discontinuities and the
    /// filesystem's free space (runs, largest, histogram; as root).
    #[arg(short = 'c', long = "check")]
    pub check: bool,

    /// Record a read order instead of moving anything: the regular files
    /// of the one TARGET's filesystem (a mount point or device) in the
    /// order they are first opened, each once, one path per line into
    /// LISTFILE (what --order reads), for --time-limit or until SIGINT or
    /// SIGTERM. Uses fanotify: needs CAP_SYS_ADMIN.
    #[arg(
        long,
        value_name = "LISTFILE",
        conflicts_with_all = ["colocate", "check", "map", "free_space", "dry_run"]
    )]
    pub record: Option<PathBuf>,

    /// With -c: also draw the filesystem of the first target as an SVG
    /// grid of at most 64 x 32 cells, each an equal share of the disk,
    /// coloured by what holds most of it: that target's files (fragmented
    /// or not), other files, metadata, or free space.
    #[arg(long, value_name = "FILE.svg", requires = "check")]
    pub disk_map: Option<PathBuf>,

    /// Count files that no run can move (immutable, append-only, an
    /// active swap file, a running program, block-mapped, encrypted) as
    /// failures: exit 1. Without it they are skipped, counted and listed,
    /// and the exit status stays 0.
    #[arg(long)]
    pub strict: bool,

    /// Print every file, not only the ones moved or failed.
    #[arg(short, long)]
    pub verbose: bool,

    /// Plan and report, move nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,

    /// Print one JSON document with per-file results and totals.
    #[arg(long)]
    pub json: bool,

    /// Which kernel interface moves blocks (or, with --map, answers).
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,

    /// Physical block to place a single file at or after (module backend
    /// only, needs CAP_SYS_ADMIN; without the module the run is refused).
    #[arg(long, value_name = "BLOCK", conflicts_with = "colocate")]
    pub goal: Option<u64>,

    /// Fail (ENOSPC) unless the data can start exactly at the goal.
    #[arg(long, requires = "goal")]
    pub goal_only: bool,

    /// Module move unit as log2 of pages (0: one page per step; the
    /// default 11, 8 MiB, is what the stock backend moves per call).
    #[arg(long, value_name = "LOG2", default_value_t = 11,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(e4defrag::uapi::DEFRAG_UNIT_MAX)))]
    pub unit_log2: u32,

    /// Leave files of fewer than N extents as they are (single files,
    /// directories walked without -r, devices): good enough is not worth
    /// a move. 0 or 1: every file is a candidate.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        conflicts_with = "colocate"
    )]
    pub min_extents: u32,

    /// Stop between files once DURATION (90s, 30m, 2h 30m; a bare number
    /// is seconds) has passed, and note in --state where each directory
    /// or device walk stopped: the next run with --time-limit goes on
    /// from there, and starts over once a walk was finished. A -r set is
    /// not split; at least one file or set is handled per run.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub time_limit: Option<std::time::Duration>,

    /// Where --time-limit keeps where runs stopped.
    #[arg(long, value_name = "FILE", default_value = e4defrag::unattended::DEFAULT_STATE)]
    pub state: PathBuf,

    /// Move at most RATE megabytes (10^6 bytes) per second on average,
    /// pausing after a file that got ahead: a daytime run leaves the disk
    /// to others. A file's own move is not slowed.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub max_rate: Option<f64>,

    /// With the module: when no free run holds a -r set (or a file the
    /// free space could hold in fewer extents), clear a region for it
    /// first, moving other files (each whole, into a free run elsewhere)
    /// worth at most RATIO times its size; 0: never.
    #[arg(long, value_name = "RATIO", default_value_t = 2.0)]
    pub max_evacuate: f64,

    /// Consolidate free space on each TARGET's filesystem (module only):
    /// clear a free run of --target-run bytes, or the largest run that
    /// moving at most --max-move bytes of files can clear, by moving other
    /// files whole out of the cheapest region; print the free space before
    /// and after (--json: one document). Moves no file for its own sake.
    #[arg(
        long,
        requires = "free_space_goal",
        conflicts_with_all = ["colocate", "check", "map", "goal"]
    )]
    pub free_space: bool,

    /// With --free-space: the free run to make, in bytes (suffix K, M or
    /// G); at most --max-evacuate times as many bytes of files move.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, group = "free_space_goal")]
    pub target_run: Option<u64>,

    /// With --free-space: move at most SIZE bytes of files (suffix K, M
    /// or G); without --target-run, make the largest free run it can.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, group = "free_space_goal")]
    pub max_move: Option<u64>,

    /// Print where the given logical blocks of each PATH are, and exit.
    #[arg(long, conflicts_with_all = ["colocate", "check", "dry_run", "json"])]
    pub map: bool,

    /// Logical block to look up with --map (repeatable).
    #[arg(
        short,
        long = "block",
        value_name = "N",
        default_value = "0",
        requires = "map"
    )]
    pub blocks: Vec<u64>,

    /// Files, directories or block devices of mounted ext4 filesystems.
    #[arg(required = true, value_name = "TARGET")]
    pub paths: Vec<PathBuf>,
}

/// `--backend`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OrderBy {
    /// As directory walks read a tree: readdir order, depth first.
    Walk,
    /// Sorted paths.
    Path,
}

impl From<OrderBy> for e4defrag::walk::TreeOrder {
    fn from(o: OrderBy) -> Self {
        match o {
            OrderBy::Walk => Self::Walk,
            OrderBy::Path => Self::Path,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// The module when it is loaded, else the stock interfaces.
    Auto,
    /// Only the ext4_defrag module.
    Module,
    /// Only the stock kernel: EXT4_IOC_MOVE_EXT (FIEMAP for --map).
    #[value(alias = "fiemap", alias = "stock")]
    MoveExt,
}

/// A size in bytes: a number with an optional K, M or G (binary) suffix.
fn parse_size(text: &str) -> Result<u64, String> {
    let (digits, shift) = match text.char_indices().last() {
        Some((i, 'K' | 'k')) => (&text[..i], 10),
        Some((i, 'M' | 'm')) => (&text[..i], 20),
        Some((i, 'G' | 'g')) => (&text[..i], 30),
        _ => (text, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("not a size: {text} (a number, optionally with K, M or G)"))?;
    n.checked_mul(1 << shift)
        .filter(|&b| b > 0)
        .ok_or_else(|| format!("not a usable size: {text}"))
}

/// A duration: `humantime`'s forms (90s, 30m, 2h 30m, 1day), or a bare
/// number of seconds.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    humantime::parse_duration(text).map_err(|e| format!("not a duration: {text} ({e})"))
}

/// A rate in MB/s: a positive number.
fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        _ => Err(format!("not a rate: {text} (MB/s, a positive number)")),
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_duration, parse_rate, parse_size};
    use std::time::Duration;

    #[test]
    fn durations_and_rates() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("2h 30m"), Ok(Duration::from_secs(9000)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_rate("2.5"), Ok(2.5));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("-1").is_err());
        assert!(parse_rate("inf").is_err());
    }

    #[test]
    fn move_unit_in_range() {
        use clap::Parser;
        let parse = |v: &str| super::Cli::try_parse_from(["e4defrag", "--unit-log2", v, "f"]);
        assert_eq!(parse("0").unwrap().unit_log2, 0);
        assert_eq!(parse("12").unwrap().unit_log2, 12);
        // 2^13 pages per step is more than the kernel takes (it was
        // accepted, and the run exited 0).
        for bad in ["13", "99"] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{bad}");
        }
        assert!(parse("-1").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("0").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("99999999999G").is_err());
    }
}
