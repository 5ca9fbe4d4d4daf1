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

/// The whole `-c` result.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Check {
    pub files: Vec<FileCheck>,
    pub sets: Vec<SetCheck>,
    pub totals: Totals,
}

impl Check {
    /// Adds one file's layout.
    pub fn add_file(&mut self, path: PathBuf, layout: &Layout, geo: &Geometry) {
        let blocks = layout.blocks();
        let extents = layout.extents();
        let best = geo.best_extents(blocks);
        self.files.push(FileCheck {
            path,
            blocks,
            extents,
            best,
            ratio: score::ratio(extents.into(), best, blocks),
        });
    }

    /// Adds a set read in the order of `layouts`.
    pub fn add_set<'a>(&mut self, target: PathBuf, layouts: impl IntoIterator<Item = &'a Layout>) {
        self.sets.push(SetCheck {
            target,
            read_order: layout::read_order(layouts),
        });
    }

    /// Computes the totals; call once everything is added. `failed`:
    /// targets that could not be checked.
    pub fn finish(&mut self, geometry_from_superblock: bool, failed: u64) {
        let t = &mut self.totals;
        t.files = self.files.len() as u64;
        t.blocks = self.files.iter().map(|f| f.blocks).sum();
        t.extents = self.files.iter().map(|f| u64::from(f.extents)).sum();
        t.best = self.files.iter().map(|f| f.best).sum();
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
        const WORST: usize = 5;
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
        let mut worst: Vec<&FileCheck> = self
            .files
            .iter()
            .filter(|f| f.extents as u64 > f.best)
            .collect();
        worst.sort_by(|a, b| b.ratio.total_cmp(&a.ratio).then(b.extents.cmp(&a.extents)));
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
                "{}: {} files read in order: {} discontinuities, span {} blocks",
                s.target.display(),
                r.files,
                r.discontinuities,
                r.span_blocks
            );
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
    fn totals_and_worst_files() {
        let geo = Geometry::assumed(4096);
        let mut c = Check::default();
        c.add_file("/m/bad".into(), &frag(100), &geo);
        c.add_file("/m/good".into(), &frag(1), &geo);
        c.add_set("/m".into(), [&frag(100), &frag(1)]);
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
        assert!(!text.contains("could not be checked"), "{text}");
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
