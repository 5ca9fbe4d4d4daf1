//! `-c --disk-map FILE.svg`: the filesystem's blocks drawn as a grid, one
//! row per block group (or per several, on large filesystems), each cell
//! coloured by what its blocks hold: the target's files, other files and
//! metadata, or free space. What users of graphical defragmenters expect
//! to look at, in a file any browser shows.

use crate::placement::Run;
use std::fmt::Write;

/// Cells per row.
const COLUMNS: u64 = 128;
/// At most this many rows: groups are merged per row beyond it.
const MAX_ROWS: u64 = 512;
const CELL: u64 = 6;

/// What a cell shows, by share of its blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    /// A tenth or more of its blocks belong to the target.
    Target,
    /// Mostly other files and metadata.
    Other,
    /// Mostly free.
    Free,
}

impl Cell {
    fn colour(self) -> &'static str {
        match self {
            Cell::Target => "#d62728",
            Cell::Other => "#9e9e9e",
            Cell::Free => "#ffffff",
        }
    }
}

/// The map's grid: `rows` rows of [`COLUMNS`] cells, each covering
/// `per_cell` blocks, row `r` starting at block `r * per_row`.
#[derive(Debug)]
pub struct Grid {
    pub total_blocks: u64,
    pub groups_per_row: u64,
    pub per_cell: u64,
    pub cells: Vec<Cell>,
}

/// Adds `len` blocks from `start` to the per-cell counts `acc`.
fn add(acc: &mut [u64], per_cell: u64, start: u64, len: u64) {
    let mut b = start;
    let end = start + len;
    while b < end {
        let cell = (b / per_cell) as usize;
        let cell_end = (cell as u64 + 1) * per_cell;
        let n = cell_end.min(end) - b;
        if let Some(a) = acc.get_mut(cell) {
            *a += n;
        }
        b += n;
    }
}

impl Grid {
    /// The grid of a filesystem of `total_blocks` blocks in groups of
    /// `blocks_per_group`, with the target's extents `target` (physical
    /// start, length) and the free runs `free`.
    pub fn new(
        total_blocks: u64,
        blocks_per_group: u64,
        target: &[(u64, u64)],
        free: &[Run],
    ) -> Grid {
        let groups = total_blocks.div_ceil(blocks_per_group.max(1)).max(1);
        let groups_per_row = groups.div_ceil(MAX_ROWS);
        let per_row = groups_per_row * blocks_per_group.max(1);
        let per_cell = per_row.div_ceil(COLUMNS).max(1);
        let rows = total_blocks.div_ceil(per_row).max(1);
        let n = (rows * COLUMNS) as usize;
        let (mut mine, mut freed) = (vec![0u64; n], vec![0u64; n]);
        for &(start, len) in target {
            add(&mut mine, per_cell, start, len);
        }
        for r in free {
            add(&mut freed, per_cell, r.start, r.len);
        }
        let cells = (0..n)
            .map(|i| {
                let first = i as u64 * per_cell;
                let size = per_cell.min(total_blocks.saturating_sub(first)).max(1);
                if mine[i] * 10 >= size && mine[i] > 0 {
                    Cell::Target
                } else if freed[i] * 2 > size {
                    Cell::Free
                } else {
                    Cell::Other
                }
            })
            .collect();
        Grid {
            total_blocks,
            groups_per_row,
            per_cell,
            cells,
        }
    }

    /// The SVG document, titled `title`.
    pub fn svg(&self, title: &str) -> String {
        let rows = self.cells.len() as u64 / COLUMNS;
        let (w, top) = (COLUMNS * CELL + 80, 48);
        let h = top + rows * CELL + 20;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">"#
        );
        let _ = writeln!(s, r#"<title>{}</title>"#, escape(title));
        let _ = writeln!(
            s,
            r#"<text x="4" y="14" font-family="sans-serif" font-size="12">{}</text>"#,
            escape(title)
        );
        let count = |c: Cell| self.cells.iter().filter(|&&x| x == c).count();
        let mut x = 4;
        for (c, name) in [
            (Cell::Target, "target"),
            (Cell::Other, "other files, metadata"),
            (Cell::Free, "free"),
        ] {
            let _ = writeln!(
                s,
                r#"<rect x="{x}" y="22" width="10" height="10" fill="{}" stroke="black" stroke-width="0.5"/><text x="{}" y="31" font-family="sans-serif" font-size="11">{name} ({} cells)</text>"#,
                c.colour(),
                x + 14,
                count(c)
            );
            x += 190;
        }
        let _ = writeln!(
            s,
            r#"<g class="grid" data-total-blocks="{}" data-blocks-per-cell="{}" data-groups-per-row="{}">"#,
            self.total_blocks, self.per_cell, self.groups_per_row
        );
        for (i, c) in self.cells.iter().enumerate() {
            let (r, col) = (i as u64 / COLUMNS, i as u64 % COLUMNS);
            let _ = writeln!(
                s,
                r#"<rect x="{}" y="{}" width="{CELL}" height="{CELL}" fill="{}"/>"#,
                col * CELL,
                top + r * CELL,
                c.colour()
            );
        }
        let _ = writeln!(s, "</g>");
        for r in 0..rows {
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" font-family="sans-serif" font-size="6">g{}</text>"#,
                COLUMNS * CELL + 4,
                top + r * CELL + CELL,
                r * self.groups_per_row
            );
        }
        s.push_str("</svg>\n");
        s
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

    #[test]
    fn cells_show_the_target_free_space_and_the_rest() {
        // 4 groups of 1024 blocks: one row each, 8 blocks per cell.
        let free = [Run {
            start: 1024,
            len: 1024,
        }];
        let g = Grid::new(4096, 1024, &[(16, 8), (3000, 1)], &free);
        assert_eq!((g.per_cell, g.groups_per_row, g.cells.len()), (8, 1, 512));
        assert_eq!(g.cells[2], Cell::Target);
        assert_eq!(g.cells[0], Cell::Other);
        assert!(g.cells[128..256].iter().all(|&c| c == Cell::Free));
        // One block of eight is a tenth or more: the target shows.
        assert_eq!(g.cells[3000 / 8], Cell::Target);
        let svg = g.svg("a <b> & c");
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("a &lt;b&gt; &amp; c"));
        assert_eq!(svg.matches(r#"width="6" height="6""#).count(), 512);
    }

    #[test]
    fn large_filesystems_merge_groups_per_row() {
        let g = Grid::new(2048 * 32768, 32768, &[], &[]);
        assert_eq!(g.groups_per_row, 4);
        assert_eq!(g.cells.len() as u64, 512 * COLUMNS);
    }
}
