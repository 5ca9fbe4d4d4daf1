//! `e4defrag -c`: how fragmented files and sets of files are, printed for
//! people or as one JSON document. The score is explained in `score`.

use crate::{
    layout::{self, Layout, ReadOrder},
    score::{self, Geometry},
};
use serde::Serialize;
use std::{fmt::Write, path::PathBuf};

/// One file's numbers.
#[derive(Clone, Debug, Serialize)]
pub struct FileCheck {
    #[serde(serialize_with = "crate::output::path_json")]
    pub path: PathBuf,
    pub blocks: u64,
    pub extents: u32,
    pub best: u64,
    pub ratio: f64,
}

/// A directory's or device's files read in order.
#[derive(Clone, Debug, Serialize)]
pub struct SetCheck {
    #[serde(serialize_with = "crate::output::path_json")]
    pub target: PathBuf,
    #[serde(flatten)]
    pub read_order: ReadOrder,
}

/// Free runs of one size range, as `e2freefrag` groups them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FreeBucket {
    /// Runs of at least this many bytes and less than twice as many.
    pub min_bytes: u64,
    pub runs: u64,
    pub blocks: u64,
    pub percent: f64,
}

/// The free space of one filesystem: what bounds every placement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FreeSpace {
    /// A checked target on the filesystem.
    #[serde(serialize_with = "crate::output::path_json")]
    pub target: PathBuf,
    pub block_size: u64,
    pub free_blocks: u64,
    pub free_runs: u64,
    pub largest_run: u64,
    /// Power-of-two size ranges from one block up, empty ones left out.
    pub histogram: Vec<FreeBucket>,
}

impl FreeSpace {
    /// The picture of the free runs `free` (in blocks of `block_size`).
    pub fn of(target: PathBuf, block_size: u64, free: &[crate::placement::Run]) -> Self {
        let free_blocks: u64 = free.iter().map(|r| r.len).sum();
        let mut histogram: Vec<FreeBucket> = Vec::new();
        for r in free.iter().filter(|r| r.len > 0) {
            // The power of two at or below the run's size in bytes.
            let bytes = r.len * block_size;
            let min_bytes = 1u64 << (63 - bytes.leading_zeros());
            match histogram.iter_mut().find(|b| b.min_bytes == min_bytes) {
                Some(b) => {
                    b.runs += 1;
                    b.blocks += r.len;
                }
                None => histogram.push(FreeBucket {
                    min_bytes,
                    runs: 1,
                    blocks: r.len,
                    percent: 0.0,
                }),
            }
        }
        histogram.sort_by_key(|b| b.min_bytes);
        for b in &mut histogram {
            b.percent = 100.0 * b.blocks as f64 / free_blocks.max(1) as f64;
        }
        FreeSpace {
            target,
            block_size,
            free_blocks,
            free_runs: free.iter().filter(|r| r.len > 0).count() as u64,
            largest_run: free.iter().map(|r| r.len).max().unwrap_or(0),
            histogram,
        }
    }

    /// Appends the picture for people (as `e2freefrag` prints it).
    pub fn write_text(&self, out: &mut String) {
        let size = |bytes: u64| {
            const UNITS: [&str; 5] = ["", "K", "M", "G", "T"];
            let i = ((63 - bytes.max(1).leading_zeros()) / 10).min(4) as usize;
            format!("{}{}", bytes >> (10 * i), UNITS[i])
        };
        let _ = writeln!(
            out,
            "Free space of {}: {} blocks in {} runs, largest run {} blocks ({}B)",
            self.target.display(),
            self.free_blocks,
            self.free_runs,
            self.largest_run,
            size(self.largest_run * self.block_size)
        );
        let _ = writeln!(
            out,
            "{:>16} : {:>10} {:>12} {:>8}",
            "Run size", "Free runs", "Free blocks", "Percent"
        );
        for b in &self.histogram {
            let range = format!("{}...{}-", size(b.min_bytes), size(2 * b.min_bytes));
            let _ = writeln!(
                out,
                "{range:>16} : {:>10} {:>12} {:>7.2}%",
                b.runs, b.blocks, b.percent
            );
        }
    }
}

/// Sums over everything checked.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    pub files: u64,
    pub blocks: u64,
    pub extents: u64,
    pub best: u64,
    pub ratio: f64,
    pub score: f64,
    pub verdict: &'static str,
    /// Targets that could not be checked (each also reported on its own).
    pub failed: u64,
    /// Whether best counts come from the superblock or were assumed.
    pub geometry_from_superblock: bool,
}

/// How many of the most fragmented files the text report lists.
const WORST: usize = 5;

/// The whole `-c` result. Files are summed as they are added; only the
/// [`WORST`] most fragmented are kept, and every file only when
/// [`Check::keeping_files`] asked for them (the table of `-v`, `--json`),
/// so that checking a filesystem takes memory that does not grow with
/// its number of files.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Check {
    /// Every file, when kept.
    pub files: Vec<FileCheck>,
    #[serde(skip)]
    keep_files: bool,
    /// The most fragmented files, worst first.
    #[serde(skip)]
    worst: Vec<FileCheck>,
    pub sets: Vec<SetCheck>,
    /// Per filesystem of a directory or device target (from GETFSMAP;
    /// left out where it fails, e.g. on XFS without CAP_SYS_ADMIN).
    pub free_space: Vec<FreeSpace>,
    pub totals: Totals,
}

/// `a` before `b` in the list of the most fragmented files.
fn worse(a: &FileCheck, b: &FileCheck) -> std::cmp::Ordering {
    b.ratio.total_cmp(&a.ratio).then(b.extents.cmp(&a.extents))
}

impl Check {
    /// A check that keeps every file (`-v`'s table, `--json`) or not.
    pub fn keeping_files(keep: bool) -> Check {
        Check {
            keep_files: keep,
            ..Default::default()
        }
    }

    /// Adds one file's layout.
    pub fn add_file(&mut self, path: PathBuf, layout: &Layout, geo: &Geometry) {
        let blocks = layout.blocks();
        let extents = layout.extents();
        let best = geo.best_extents(blocks);
        let f = FileCheck {
            path,
            blocks,
            extents,
            best,
            ratio: score::ratio(extents.into(), best, blocks),
        };
        let t = &mut self.totals;
        t.files += 1;
        t.blocks += blocks;
        t.extents += u64::from(extents);
        t.best += best;
        if u64::from(extents) > best {
            let at = self.worst.partition_point(|w| worse(w, &f).is_le());
            if at < WORST {
                self.worst.insert(at, f.clone());
                self.worst.truncate(WORST);
            }
        }
        if self.keep_files {
            self.files.push(f);
        }
    }

    /// Adds a set read in the order its files were added to `order`.
    pub fn add_set(&mut self, target: PathBuf, order: &layout::ReadOrderCounter, block_size: u64) {
        self.sets.push(SetCheck {
            target,
            read_order: order.finish(block_size),
        });
    }

    /// Computes the totals; call once everything is added. `failed`:
    /// targets that could not be checked.
    pub fn finish(&mut self, geometry_from_superblock: bool, failed: u64) {
        let t = &mut self.totals;
        t.ratio = score::ratio(t.extents, t.best, t.blocks);
        t.score = score::score(t.ratio);
        t.failed = failed;
        // No verdict on what could not be looked at.
        t.verdict = if t.files == 0 && failed > 0 {
            "none: nothing could be checked"
        } else {
            score::verdict(t.score)
        };
        t.geometry_from_superblock = geometry_from_superblock;
    }

    /// The report for people: every file with `verbose`, else the worst.
    pub fn to_text(&self, verbose: bool) -> String {
        let mut out = String::new();
        let row = |out: &mut String, name: &str, f: &FileCheck| {
            let _ = writeln!(
                out,
                "{name:<48} {:>8}/{:<8} {:>7.2}%",
                f.extents, f.best, f.ratio
            );
        };
        if verbose {
            let _ = writeln!(
                out,
                "{:<48} {:>8}/{:<8} {:>8}",
                "<File>", "now", "best", "ratio"
            );
            for f in &self.files {
                row(&mut out, &f.path.display().to_string(), f);
            }
            out.push('\n');
        }
        let worst = &self.worst;
        if !worst.is_empty() {
            let _ = writeln!(
                out,
                "{:<48} {:>8}/{:<8} {:>8}",
                "<Most fragmented files>", "now", "best", "ratio"
            );
            for (i, f) in worst.iter().take(WORST).enumerate() {
                row(&mut out, &format!("{}. {}", i + 1, f.path.display()), f);
            }
            out.push('\n');
        }
        for s in &self.sets {
            let r = &s.read_order;
            let _ = writeln!(
                out,
                "{}: {} files read in order: {} discontinuities, span {} blocks \
                 (ratio {:.2}), modeled HDD read {:.0} ms",
                s.target.display(),
                r.files,
                r.discontinuities,
                r.span_blocks,
                r.span_ratio,
                r.modeled_hdd_read_ms
            );
        }
        for f in &self.free_space {
            f.write_text(&mut out);
        }
        let t = &self.totals;
        let _ = writeln!(out, " Total/best extents        {}/{}", t.extents, t.best);
        let _ = writeln!(out, " Fragmentation ratio       {:.2}%", t.ratio);
        let _ = writeln!(out, " Fragmentation score       {:.2}", t.score);
        let _ = writeln!(
            out,
            " [0-30 no problem: 31-55 a little fragmented: 56- needs defragmentation]"
        );
        let _ = writeln!(out, " Verdict: {}", t.verdict);
        if t.failed > 0 {
            let _ = writeln!(
                out,
                " ({} target(s) could not be checked and are not counted above)",
                t.failed
            );
        }
        if !t.geometry_from_superblock {
            let _ = writeln!(
                out,
                " (best counts assume mke2fs defaults: the device's superblock was not readable)"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Run;

    fn frag(pieces: u64) -> Layout {
        Layout {
            runs: (0..pieces)
                .map(|i| Run {
                    lblk: i,
                    pblk: 1000 + 2 * i,
                    len: 1,
                    unwritten: false,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn free_space_histogram() {
        use crate::placement::Run as Free;
        let free = [
            Free { start: 10, len: 1 },
            Free { start: 20, len: 3 },
            Free { start: 30, len: 2 },
            Free {
                start: 100,
                len: 300,
            },
        ];
        let f = FreeSpace::of("/m".into(), 4096, &free);
        assert_eq!((f.free_blocks, f.free_runs, f.largest_run), (306, 4, 300));
        let buckets: Vec<(u64, u64, u64)> = f
            .histogram
            .iter()
            .map(|b| (b.min_bytes, b.runs, b.blocks))
            .collect();
        // 4K: 1 run; 8K...16K: the runs of 2 and 3 blocks; 1M...2M: 300.
        assert_eq!(buckets, vec![(4096, 1, 1), (8192, 2, 5), (1 << 20, 1, 300)]);
        let mut text = String::new();
        f.write_text(&mut text);
        assert!(
            text.contains("306 blocks in 4 runs, largest run 300 blocks (1MB)"),
            "{text}"
        );
        assert!(text.contains("8K...16K-"), "{text}");
    }

    #[test]
    fn totals_and_worst_files() {
        let geo = Geometry::assumed(4096);
        let mut c = Check::keeping_files(true);
        c.add_file("/m/bad".into(), &frag(100), &geo);
        c.add_file("/m/good".into(), &frag(1), &geo);
        let mut order = layout::ReadOrderCounter::default();
        order.push(&frag(100));
        order.push(&frag(1));
        c.add_set("/m".into(), &order, 4096);
        c.finish(false, 0);
        let t = &c.totals;
        assert_eq!((t.files, t.blocks, t.extents, t.best), (2, 101, 101, 2));
        assert!((t.ratio - 99.0 * 100.0 / 101.0).abs() < 1e-9);
        assert_eq!(t.verdict, "needs defragmentation");
        assert_eq!(c.sets[0].read_order.discontinuities, 100);
        let text = c.to_text(false);
        assert!(text.contains("1. /m/bad"), "{text}");
        assert!(!text.contains("/m/good"), "{text}");
        assert!(text.contains("Total/best extents        101/2"), "{text}");
        assert!(c.to_text(true).contains("/m/good"));
        let json: serde_json::Value = serde_json::to_value(&c).unwrap();
        assert_eq!(json["totals"]["extents"], 101);
        assert_eq!(json["sets"][0]["discontinuities"], 100);
        // 101 runs of 4 KiB blocks: 101 accesses and 413,696 bytes.
        let ms = json["sets"][0]["modeled_hdd_read_ms"].as_f64().unwrap();
        assert!(
            (ms - (101.0 / 0.15 + 413_696.0 / 120e3)).abs() < 1e-6,
            "{ms}"
        );
        assert!(text.contains("modeled HDD read 677 ms"), "{text}");
        assert!(!text.contains("could not be checked"), "{text}");
    }

    #[test]
    fn only_the_worst_files_are_kept_unless_asked() {
        let geo = Geometry::assumed(4096);
        let mut c = Check::keeping_files(false);
        for i in 1..=50u64 {
            c.add_file(format!("/m/f{i}").into(), &frag(i), &geo);
        }
        c.finish(true, 0);
        assert!(c.files.is_empty());
        let names: Vec<String> = c
            .worst
            .iter()
            .map(|f| f.path.display().to_string())
            .collect();
        assert_eq!(names, ["/m/f50", "/m/f49", "/m/f48", "/m/f47", "/m/f46"]);
        assert_eq!(c.totals.files, 50);
        assert_eq!(c.totals.extents, (1..=50).sum::<u64>());
    }

    #[test]
    fn no_verdict_when_nothing_was_checked() {
        let mut c = Check::default();
        c.finish(true, 2);
        assert_eq!(c.totals.verdict, "none: nothing could be checked");
        let text = c.to_text(false);
        assert!(text.contains("Verdict: none"), "{text}");
        assert!(text.contains("2 target(s) could not be checked"), "{text}");
        let json: serde_json::Value = serde_json::to_value(&c).unwrap();
        assert_eq!(json["totals"]["failed"], 2);
        // Some checked, some not: a verdict on what was, and the count.
        let geo = Geometry::assumed(4096);
        let mut c = Check::default();
        c.add_file("/m/bad".into(), &frag(100), &geo);
        c.finish(true, 1);
        assert_eq!(c.totals.verdict, "needs defragmentation");
        assert!(c
            .to_text(false)
            .contains("1 target(s) could not be checked"));
    }
}
