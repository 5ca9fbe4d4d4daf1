//! `-c --disk-map FILE.svg`: the filesystem drawn as a fixed grid of
//! cells (at most [`COLUMNS`] × [`MAX_ROWS`], whatever its size), each
//! covering an equal share of its blocks and coloured by what holds most
//! of them: the target's files, contiguous or fragmented (for a device or
//! mount point: every file), other files and directories, metadata, or
//! free space; the disk's end is where the cells stop. What users of
//! graphical defragmenters look at, in a file any browser shows, readable
//! at a glance at 64 MiB as at 1 TiB.

use crate::placement::Run;
use std::fmt::Write;

/// Cells per row.
pub const COLUMNS: u64 = 64;
/// Rows at most: a larger filesystem gets more blocks per cell.
pub const MAX_ROWS: u64 = 32;
/// A cell's side, in pixels.
const CELL: u64 = 10;
/// Left of the grid: the row labels.
const LEFT: u64 = 64;

/// What a block holds, as the map tells it apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Free = 0,
    /// Superblocks, group descriptors, bitmaps, inode tables, the journal.
    Metadata = 1,
    /// In use, not by the target: other files, directories, extent trees.
    Other = 2,
    /// The target's files that are in as few extents as they can be.
    Contiguous = 3,
    /// The target's files with more extents than they need.
    Fragmented = 4,
}

const KINDS: [Kind; 5] = [
    Kind::Fragmented,
    Kind::Contiguous,
    Kind::Other,
    Kind::Metadata,
    Kind::Free,
];

impl Kind {
    fn colour(self) -> &'static str {
        match self {
            Kind::Free => "#ffffff",
            Kind::Metadata => "#455a64",
            Kind::Other => "#b0bec5",
            Kind::Contiguous => "#1f77b4",
            Kind::Fragmented => "#d62728",
        }
    }

    fn name(self, whole_fs: bool) -> &'static str {
        match (self, whole_fs) {
            (Kind::Free, _) => "free",
            (Kind::Metadata, _) => "metadata (bitmaps, inode tables, journal)",
            (Kind::Other, true) => "directories, the journal, extent trees",
            (Kind::Other, false) => "other files, directories, the journal, extent trees",
            (Kind::Contiguous, true) => "files in as few extents as they can be",
            (Kind::Contiguous, false) => "target: files in as few extents as they can be",
            (Kind::Fragmented, true) => "fragmented files",
            (Kind::Fragmented, false) => "target: fragmented files",
        }
    }
}

/// The map: blocks counted per cell and kind, then coloured.
#[derive(Debug)]
pub struct Map {
    pub total_blocks: u64,
    pub per_cell: u64,
    /// Blocks of each kind per cell (in use blocks count as
    /// [`Kind::Other`] until a target file claims them).
    counts: Vec<[u64; 5]>,
}

impl Map {
    /// An empty map of a filesystem of `total_blocks` blocks.
    pub fn new(total_blocks: u64) -> Map {
        let total_blocks = total_blocks.max(1);
        let per_cell = total_blocks.div_ceil(COLUMNS * MAX_ROWS).max(1);
        let cells = total_blocks.div_ceil(per_cell) as usize;
        Map {
            total_blocks,
            per_cell,
            counts: vec![[0; 5]; cells],
        }
    }

    /// Counts `run` as holding `kind`.
    pub fn add(&mut self, kind: Kind, run: Run) {
        let (mut b, end) = (run.start, run.end().min(self.total_blocks));
        while b < end {
            let cell = (b / self.per_cell) as usize;
            let n = ((cell as u64 + 1) * self.per_cell).min(end) - b;
            self.counts[cell][kind as usize] += n;
            b += n;
        }
    }

    /// Counts `run`, in use, as the target's (taken from
    /// [`Kind::Other`], which GETFSMAP counted it as).
    pub fn add_target(&mut self, fragmented: bool, run: Run) {
        let kind = if fragmented {
            Kind::Fragmented
        } else {
            Kind::Contiguous
        };
        let (mut b, end) = (run.start, run.end().min(self.total_blocks));
        while b < end {
            let cell = (b / self.per_cell) as usize;
            let n = ((cell as u64 + 1) * self.per_cell).min(end) - b;
            let c = &mut self.counts[cell];
            c[Kind::Other as usize] = c[Kind::Other as usize].saturating_sub(n);
            c[kind as usize] += n;
            b += n;
        }
    }

    /// The kind each cell shows. For a target that is the whole
    /// filesystem: what holds most of its blocks, fragmented files
    /// counting twice (a cell of many files shows the fragmented ones).
    /// For a part of it (a directory, a file): wherever it has a block,
    /// the target (fragmented where a fragmented file has one), else what
    /// holds most: a small target is found in a large filesystem.
    pub fn cells(&self, whole_fs: bool) -> Vec<Kind> {
        self.counts
            .iter()
            .map(|c| {
                let n = |k: Kind| c[k as usize];
                if !whole_fs && n(Kind::Fragmented) > 0 {
                    return Kind::Fragmented;
                }
                if !whole_fs && n(Kind::Contiguous) > 0 {
                    return Kind::Contiguous;
                }
                let weight = |k: Kind| match k {
                    Kind::Fragmented => 2 * n(k),
                    _ => n(k),
                };
                // Ties go to the first of KINDS (fragmented first); a cell
                // holds at least one block, so some weight is not 0.
                let mut best = KINDS[0];
                for k in KINDS {
                    if weight(k) > weight(best) {
                        best = k;
                    }
                }
                best
            })
            .collect()
    }

    /// Blocks of each kind over the whole map.
    fn blocks(&self, kind: Kind) -> u64 {
        self.counts.iter().map(|c| c[kind as usize]).sum()
    }

    /// The SVG document: `title` on top, the grid, a legend below it.
    pub fn svg(&self, title: &[String], whole_fs: bool, block_size: u64) -> String {
        let cells = self.cells(whole_fs);
        let rows = (cells.len() as u64).div_ceil(COLUMNS);
        let top = 12 + 16 * title.len() as u64;
        let grid_h = rows * CELL;
        let legend_top = top + grid_h + 16;
        let w = LEFT + COLUMNS * CELL + 16;
        let h = legend_top + 16 * KINDS.len() as u64 + 44;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif">"#
        );
        let _ = writeln!(s, r##"<rect width="{w}" height="{h}" fill="#ffffff"/>"##);
        let _ = writeln!(s, "<title>{}</title>", escape(&title.join("; ")));
        for (i, line) in title.iter().enumerate() {
            let _ = writeln!(
                s,
                r#"<text x="4" y="{}" font-size="{}">{}</text>"#,
                16 + 16 * i as u64,
                if i == 0 { 14 } else { 12 },
                escape(line)
            );
        }
        // The grid's frame, dark: past the disk's end the last row shows it.
        let _ = writeln!(
            s,
            r##"<rect x="{}" y="{}" width="{}" height="{grid_h}" fill="#212121"/>"##,
            LEFT,
            top,
            COLUMNS * CELL
        );
        let count = |k: Kind| cells.iter().filter(|&&c| c == k).count();
        let counted: u64 = KINDS.iter().map(|&k| self.blocks(k)).sum();
        let _ = write!(
            s,
            r#"<g class="grid" data-cells="{}" data-blocks-per-cell="{}" data-total-blocks="{}" data-counted-blocks="{counted}""#,
            cells.len(),
            self.per_cell,
            self.total_blocks
        );
        for k in KINDS {
            let _ = write!(s, r#" data-{}="{}""#, attr(k), count(k));
        }
        s.push_str(">\n");
        // One rect per stretch of equal cells in a row.
        for (r, row) in cells.chunks(COLUMNS as usize).enumerate() {
            let mut col = 0;
            for run in row.chunk_by(|a, b| a == b) {
                let _ = writeln!(
                    s,
                    r##"<rect x="{}" y="{}" width="{}" height="{}" fill="{}" stroke="#e0e0e0" stroke-width="0.5"/>"##,
                    LEFT + col * CELL,
                    top + r as u64 * CELL,
                    run.len() as u64 * CELL,
                    CELL,
                    run[0].colour()
                );
                col += run.len() as u64;
            }
        }
        s.push_str("</g>\n");
        // Row labels, where the row starts on the disk, every other row.
        let per_row = self.per_cell * COLUMNS;
        for r in (0..rows).step_by(2) {
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" font-size="10" text-anchor="end">{}</text>"#,
                LEFT - 4,
                top + r * CELL + CELL - 1,
                human(r * per_row * block_size)
            );
        }
        for (i, k) in KINDS.into_iter().enumerate() {
            let y = legend_top + 16 * i as u64;
            let share = self.blocks(k) as f64 * 100.0 / self.total_blocks as f64;
            let _ = writeln!(
                s,
                r##"<rect x="{LEFT}" y="{y}" width="12" height="12" fill="{}" stroke="#000000" stroke-width="0.5"/><text x="{}" y="{}" font-size="12">{}: {} cells, {share:.1} % of the blocks</text>"##,
                k.colour(),
                LEFT + 18,
                y + 10,
                escape(k.name(whole_fs)),
                count(k)
            );
        }
        let notes = [
            format!(
                "A cell shows what holds most of its {} blocks{}.",
                self.per_cell,
                if whole_fs {
                    " (fragmented files count twice)"
                } else {
                    "; one of the target's blocks is enough to show it"
                }
            ),
            "Dark: past the end of the disk. ext4 does not say which inode holds a block in use."
                .to_string(),
        ];
        for (i, note) in notes.iter().enumerate() {
            let _ = writeln!(
                s,
                r##"<text x="{LEFT}" y="{}" font-size="11" fill="#555555">{}</text>"##,
                legend_top + 16 * KINDS.len() as u64 + 14 + 14 * i as u64,
                escape(note)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

/// The name of a kind in the grid's data attributes.
fn attr(k: Kind) -> &'static str {
    match k {
        Kind::Free => "free",
        Kind::Metadata => "metadata",
        Kind::Other => "other",
        Kind::Contiguous => "contiguous",
        Kind::Fragmented => "fragmented",
    }
}

/// Bytes as people read them: 0, 512 KiB, 1.5 GiB.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if bytes == 0 {
        "0".into()
    } else if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(start: u64, len: u64) -> Run {
        Run { start, len }
    }

    #[test]
    fn a_fixed_grid_at_any_size() {
        for (blocks, per_cell) in [(1000, 1), (16384, 8), (262_144, 128), (1 << 28, 131_072)] {
            let m = Map::new(blocks);
            assert_eq!(m.per_cell, per_cell, "{blocks}");
            assert!(m.counts.len() as u64 <= COLUMNS * MAX_ROWS);
            let svg = m.svg(&["t".into()], true, 4096);
            // Equal cells share a rect: an empty map is a rect per row.
            let rows = (m.counts.len() as u64).div_ceil(COLUMNS) as usize;
            assert_eq!(
                svg.matches("stroke-width=\"0.5\"/>").count() - KINDS.len(),
                rows
            );
        }
    }

    #[test]
    fn cells_tell_fragmented_from_contiguous_and_free() {
        // 2048 blocks, 1 per cell: 32 rows of 64.
        let mut m = Map::new(2048);
        m.add(Kind::Metadata, run(0, 64));
        m.add(Kind::Other, run(64, 1000));
        m.add(Kind::Free, run(1064, 984));
        m.add_target(false, run(100, 10));
        m.add_target(true, run(200, 10));
        let c = m.cells(false);
        assert_eq!(c[0], Kind::Metadata);
        assert_eq!(c[64], Kind::Other);
        assert_eq!(c[105], Kind::Contiguous);
        assert_eq!(c[205], Kind::Fragmented);
        assert_eq!(c[2000], Kind::Free);
        assert_eq!(m.blocks(Kind::Other), 980);
    }

    #[test]
    fn a_mostly_free_device_looks_mostly_free() {
        // 63 % free, the files spread thinly over every cell: a cell is
        // what holds most of it (it was "target" in 413 of 512 cells).
        let mut m = Map::new(204_800);
        let per = m.per_cell;
        for cell in 0..m.counts.len() as u64 {
            let at = cell * per;
            m.add(Kind::Free, run(at, per * 63 / 100));
            m.add(Kind::Other, run(at + per * 63 / 100, per - per * 63 / 100));
            m.add_target(false, run(at + per * 63 / 100, per - per * 63 / 100));
        }
        let cells = m.cells(true);
        assert!(cells.iter().all(|&k| k == Kind::Free));
        // A small target among much else still shows, where it is.
        let mut m = Map::new(2048 * 8);
        m.add(Kind::Other, run(0, 2048 * 8));
        m.add_target(false, run(0, 1));
        m.add_target(true, run(100, 1));
        let cells = m.cells(false);
        assert_eq!(
            (cells[0], cells[100 / 8], cells[1]),
            (Kind::Contiguous, Kind::Fragmented, Kind::Other)
        );
    }

    #[test]
    fn the_svg_names_and_escapes() {
        let mut m = Map::new(4096);
        m.add(Kind::Free, run(0, 4096));
        let svg = m.svg(&["a <b> & c".into(), "second".into()], false, 1024);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("a &lt;b&gt; &amp; c"));
        assert!(svg.contains(r#"data-free="2048""#), "{svg}");
        assert!(svg.contains("free: 2048 cells, 100.0 % of the blocks"));
        assert_eq!(human(0), "0");
        assert_eq!(human(1536 << 20), "1.5 GiB");
        assert_eq!(human(1 << 40), "1 TiB");
    }
}
