//! Where a file's blocks are: its runs from FIEMAP, in block units, and
//! the counts the tool reports and decides on.

use crate::{fiemap, plan::ExtentCounter};
use nix::errno::Errno;
use std::os::fd::AsRawFd;

/// A run of allocated blocks, logically and physically contiguous.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub lblk: u64,
    pub pblk: u64,
    pub len: u64,
    pub unwritten: bool,
}

impl Run {
    /// One past the last physical block.
    pub fn pend(&self) -> u64 {
        self.pblk + self.len
    }

    /// One past the last logical block.
    pub fn lend(&self) -> u64 {
        self.lblk + self.len
    }
}

/// A file's allocated runs in logical order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub runs: Vec<Run>,
    /// The data is stored in the inode (inline_data): no runs, nothing
    /// to place, and no data position in read-order figures.
    pub inline: bool,
}

impl Layout {
    /// The layout of `file` now (dirty data is written back first).
    pub fn of(file: &impl AsRawFd, block_size: u64) -> Result<Layout, Errno> {
        let extents = fiemap::extents(file)?;
        let inline = extents
            .iter()
            .any(|e| e.flags & fiemap::EXTENT_DATA_INLINE != 0);
        let runs = extents
            .into_iter()
            // Delayed allocations have no blocks yet; the sync above makes
            // them rare (a writer racing with us). Inline data has none.
            .filter(|e| {
                e.flags & (fiemap::EXTENT_DELALLOC | fiemap::EXTENT_DATA_INLINE) == 0
                    && e.length > 0
            })
            .map(|e| Run {
                lblk: e.logical / block_size,
                pblk: e.physical / block_size,
                len: e.length.div_ceil(block_size),
                unwritten: e.flags & fiemap::EXTENT_UNWRITTEN != 0,
            })
            .collect();
        Ok(Layout { runs, inline })
    }

    /// Extents as ext4 counts them: runs that continue each other both
    /// logically and physically are one.
    pub fn extents(&self) -> u32 {
        self.counter().extents()
    }

    /// The runs counted as the module counts them (`plan`'s rules).
    pub fn counter(&self) -> ExtentCounter {
        let mut c = ExtentCounter::default();
        for r in &self.runs {
            c.push(r.lblk, r.pblk, r.len);
        }
        c
    }

    /// Pieces of physically contiguous space the data occupies, whatever
    /// their logical order (e2fsprogs' "physical extents").
    pub fn physical_pieces(&self) -> u32 {
        let mut runs: Vec<_> = self.runs.iter().map(|r| (r.pblk, r.pend())).collect();
        runs.sort_unstable();
        let mut pieces = 0;
        let mut end = None;
        for (start, stop) in runs {
            if end != Some(start) {
                pieces += 1;
            }
            end = Some(stop);
        }
        pieces
    }

    /// Allocated blocks.
    pub fn blocks(&self) -> u64 {
        self.runs.iter().map(|r| r.len).sum()
    }

    /// Physical block of the first logical run.
    pub fn first_pblk(&self) -> Option<u64> {
        self.runs.first().map(|r| r.pblk)
    }

    /// One past the last allocated logical block.
    pub fn lend(&self) -> u64 {
        self.runs.last().map_or(0, Run::lend)
    }

    /// Where the stretches go when packed one after the other into a slot
    /// of a donor, each at the same offset in a page as in the file (what
    /// `EXT4_IOC_MOVE_EXT` requires; `per_page` blocks to a page):
    /// `(start, end, offset in the slot)`, and the slot's length in whole
    /// pages. Holes take no room, so a sparse file needs only about as
    /// many blocks as it holds.
    pub fn packed(&self, per_page: u64) -> (Vec<(u64, u64, u64)>, u64) {
        let per_page = per_page.max(1);
        let mut at = 0;
        let pieces: Vec<_> = self
            .stretches()
            .into_iter()
            .map(|(start, end)| {
                at += (start % per_page + per_page - at % per_page) % per_page;
                let piece = (start, end, at);
                at += end - start;
                piece
            })
            .collect();
        (pieces, at.div_ceil(per_page) * per_page)
    }

    /// The layout this file would have with its data moved: `pieces` are
    /// `(start, end, to)` (the file's logical blocks `start..end` go to
    /// logical block `to` of a donor whose layout is `donor`). Donor
    /// blocks it lacks are left out.
    pub fn moved_to(&self, pieces: &[(u64, u64, u64)], donor: &Layout) -> Layout {
        let mut runs = Vec::new();
        for &(start, end, to) in pieces {
            for d in &donor.runs {
                let (lo, hi) = (d.lblk.max(to), d.lend().min(to + (end - start)));
                if lo < hi {
                    runs.push(Run {
                        lblk: start + (lo - to),
                        pblk: d.pblk + (lo - d.lblk),
                        len: hi - lo,
                        unwritten: false,
                    });
                }
            }
        }
        Layout {
            runs,
            ..Default::default()
        }
    }

    /// Stretches of logical blocks without holes, `(start, end)`.
    pub fn stretches(&self) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        for r in &self.runs {
            match out.last_mut() {
                Some(last) if last.1 == r.lblk => last.1 = r.lend(),
                _ => out.push((r.lblk, r.lend())),
            }
        }
        out
    }
}

/// How a set of files read one after the other lies on disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct ReadOrder {
    /// Files with data.
    pub files: u64,
    /// Blocks of data read.
    pub blocks: u64,
    /// Places where the next block read is not the next block on disk,
    /// inside files and between them.
    pub discontinuities: u64,
    /// Blocks from the first to the last block of the set, gaps included.
    pub span_blocks: u64,
    /// `span_blocks / blocks`: 1.00 when the set is one run.
    pub span_ratio: f64,
    /// Reading the set in order from a hard disk, as `readtime` models it.
    pub modeled_hdd_read_ms: f64,
}

impl ReadOrder {
    /// Whether reading a set laid out as `self` is better than as
    /// `before`: fewer jumps, or as many over a shorter span. What a set
    /// move must achieve to be worth making.
    pub fn better_than(&self, before: &ReadOrder) -> bool {
        (self.discontinuities, self.span_blocks) < (before.discontinuities, before.span_blocks)
    }
}

/// Measures the set of `layouts` (blocks of `block_size` bytes), read in
/// the given order.
pub fn read_order<'a>(layouts: impl IntoIterator<Item = &'a Layout>, block_size: u64) -> ReadOrder {
    let mut acc = ReadOrderCounter::default();
    for layout in layouts {
        acc.push(layout);
    }
    acc.finish(block_size)
}

/// [`read_order`] a file at a time, keeping no layout: `-c` of a whole
/// filesystem in memory that does not grow with the number of files.
#[derive(Clone, Copy, Debug)]
pub struct ReadOrderCounter {
    out: ReadOrder,
    prev_end: Option<u64>,
    lo: u64,
    hi: u64,
}

impl Default for ReadOrderCounter {
    fn default() -> Self {
        ReadOrderCounter {
            out: ReadOrder::default(),
            prev_end: None,
            lo: u64::MAX,
            hi: 0,
        }
    }
}

impl ReadOrderCounter {
    /// The next file read.
    pub fn push(&mut self, layout: &Layout) {
        if layout.runs.is_empty() {
            return;
        }
        self.out.files += 1;
        for r in &layout.runs {
            if self.prev_end.is_some_and(|e| e != r.pblk) {
                self.out.discontinuities += 1;
            }
            self.prev_end = Some(r.pend());
            self.out.blocks += r.len;
            self.lo = self.lo.min(r.pblk);
            self.hi = self.hi.max(r.pend());
        }
    }

    /// The figures of the files pushed (blocks of `block_size` bytes).
    pub fn finish(&self, block_size: u64) -> ReadOrder {
        let mut out = self.out;
        out.span_blocks = self.hi.saturating_sub(self.lo);
        if out.blocks > 0 {
            out.span_ratio = out.span_blocks as f64 / out.blocks as f64;
        }
        out.modeled_hdd_read_ms =
            crate::readtime::hdd_ms(out.discontinuities, out.blocks * block_size);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lblk: u64, pblk: u64, len: u64) -> Run {
        Run {
            lblk,
            pblk,
            len,
            unwritten: false,
        }
    }

    #[test]
    fn packed_stretches_keep_their_offset_in_a_page() {
        // 4 blocks to a page: 0..3, hole, 9..10, hole, 4096..4097.
        let l = Layout {
            runs: vec![run(0, 100, 3), run(9, 50, 1), run(4096, 7, 1)],
            ..Default::default()
        };
        let (pieces, len) = l.packed(4);
        assert_eq!(pieces, vec![(0, 3, 0), (9, 10, 5), (4096, 4097, 8)]);
        assert_eq!(len, 12);
        // One block to a page: back to back.
        let (pieces, len) = l.packed(1);
        assert_eq!(pieces, vec![(0, 3, 0), (9, 10, 3), (4096, 4097, 4)]);
        assert_eq!(len, 5);
        assert_eq!(Layout::default().packed(4), (vec![], 0));
    }

    #[test]
    fn a_moved_layout_follows_the_donor() {
        // Data 0..3 and 9..10; the donor's blocks 0..2 at 500, 2..8 at 700.
        let file = Layout {
            runs: vec![run(0, 100, 3), run(9, 50, 1)],
            ..Default::default()
        };
        let donor = Layout {
            runs: vec![run(0, 500, 2), run(2, 700, 6)],
            ..Default::default()
        };
        let moved = file.moved_to(&[(0, 3, 1), (9, 10, 5)], &donor);
        assert_eq!(
            moved.runs,
            vec![run(0, 501, 1), run(1, 700, 2), run(9, 703, 1)]
        );
        let a = ReadOrder {
            files: 2,
            discontinuities: 3,
            span_blocks: 10,
            ..Default::default()
        };
        let fewer = ReadOrder {
            discontinuities: 2,
            span_blocks: 99,
            ..a
        };
        let shorter = ReadOrder {
            span_blocks: 9,
            ..a
        };
        assert!(fewer.better_than(&a) && shorter.better_than(&a));
        assert!(!a.better_than(&a) && !a.better_than(&fewer));
    }

    #[test]
    fn counts_and_stretches() {
        // 0..4 at 100, 4..8 at 104 (same extent), hole, 10..12 at 50.
        let l = Layout {
            runs: vec![run(0, 100, 4), run(4, 104, 4), run(10, 50, 2)],
            ..Default::default()
        };
        assert_eq!(l.extents(), 2);
        assert_eq!(l.physical_pieces(), 2);
        assert_eq!(l.blocks(), 10);
        assert_eq!(l.stretches(), vec![(0, 8), (10, 12)]);
        assert_eq!(l.first_pblk(), Some(100));
        assert_eq!(l.lend(), 12);
    }

    #[test]
    fn physical_pieces_ignore_logical_order() {
        // Logically swapped halves of one physical run: 2 extents, 1 piece.
        let l = Layout {
            runs: vec![run(0, 104, 4), run(4, 100, 4)],
            ..Default::default()
        };
        assert_eq!(l.extents(), 2);
        assert_eq!(l.physical_pieces(), 1);
    }

    #[test]
    fn read_order_counts_jumps_between_and_inside_files() {
        let a = Layout {
            runs: vec![run(0, 10, 2)],
            ..Default::default()
        };
        let b = Layout {
            runs: vec![run(0, 12, 1), run(1, 40, 1)],
            ..Default::default()
        };
        let c = Layout {
            runs: vec![run(0, 41, 3)],
            ..Default::default()
        };
        let empty = Layout::default();
        let r = read_order([&a, &b, &empty, &c], 1024);
        assert_eq!(
            (r.files, r.blocks, r.discontinuities, r.span_blocks),
            (3, 7, 1, 34)
        );
        assert!((r.span_ratio - 34.0 / 7.0).abs() < 1e-9);
        assert_eq!(r.modeled_hdd_read_ms, crate::readtime::hdd_ms(1, 7 * 1024));
        let r = read_order([&c, &a, &b], 1024);
        assert_eq!(r.discontinuities, 2);
    }
}
