// SPDX-License-Identifier: GPL-2.0

//! Where data goes: the placement plan, made from the free space that
//! exists (`core` only; shared by the module, which reads the allocator's
//! buddy bitmaps, and the tool, which reads `FS_IOC_GETFSMAP`).
//!
//! The contract (see `Documentation/ext4-defrag/ioctl-abi.rst`), for
//! `want` blocks and a goal block:
//!
//! 1. the data starts at the goal when the free run there holds it;
//! 2. otherwise it goes, whole, into the free run that holds it nearest to
//!    the goal (placed at the end of that run nearest to the goal);
//! 3. otherwise into the fewest free runs (the largest ones), the last and
//!    smallest one chosen nearest to the goal; the pieces are used in
//!    ascending block order.
//!
//! The free space is read by a `scan`: a function that reports the free
//! runs in ascending block order (runs that touch may be reported apart,
//! e.g. cut at block group ends; they are joined here).

/// A run of blocks: `start..start + len`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Run {
    /// First block.
    pub start: u64,
    /// Blocks.
    pub len: u64,
}

impl Run {
    /// One past the last block.
    pub fn end(&self) -> u64 {
        self.start + self.len
    }

    /// Where `want` blocks of this run start nearest to `goal`, and how
    /// far that is from it; `None` if the run is shorter than `want`.
    pub fn nearest_window(&self, goal: u64, want: u64) -> Option<(u64, u64)> {
        if want == 0 || self.len < want {
            return None;
        }
        let start = goal.clamp(self.start, self.end() - want);
        Some((start, start.abs_diff(goal)))
    }
}

/// Joins runs that touch, as a scan reports them, into whole free runs.
#[derive(Debug, Default)]
pub struct RunJoiner {
    cur: Option<Run>,
}

impl RunJoiner {
    /// Adds the next run (ascending order); returns a run that is complete.
    pub fn push(&mut self, run: Run) -> Option<Run> {
        if run.len == 0 {
            return None;
        }
        match &mut self.cur {
            Some(cur) if cur.end() == run.start => {
                cur.len += run.len;
                None
            }
            cur => cur.replace(run),
        }
    }

    /// The last run, once the scan is over.
    pub fn finish(&mut self) -> Option<Run> {
        self.cur.take()
    }
}

/// Feeds the joined free runs of `scan` to `f`.
fn joined<E>(
    scan: &mut impl FnMut(&mut dyn FnMut(Run)) -> Result<(), E>,
    mut f: impl FnMut(Run),
) -> Result<(), E> {
    let mut joiner = RunJoiner::default();
    scan(&mut |run| {
        if let Some(done) = joiner.push(run) {
            f(done);
        }
    })?;
    if let Some(last) = joiner.finish() {
        f(last);
    }
    Ok(())
}

/// A scan over free runs already known (ascending), e.g. from GETFSMAP.
pub fn slice_scan(
    runs: &[Run],
) -> impl FnMut(&mut dyn FnMut(Run)) -> Result<(), core::convert::Infallible> + '_ {
    move |f| {
        runs.iter().for_each(|r| f(*r));
        Ok(())
    }
}

/// Is `run` one of `excluded` (by its start)?
fn is_excluded(run: &Run, excluded: &[Run]) -> bool {
    excluded.iter().any(|r| r.start == run.start)
}

/// The placement of `want` blocks in one free run nearest to `goal`, the
/// runs in `excluded` left out: `(start, distance)`. Ties go to the
/// lower block.
pub fn nearest_whole<E>(
    scan: &mut impl FnMut(&mut dyn FnMut(Run)) -> Result<(), E>,
    goal: u64,
    want: u64,
    excluded: &[Run],
) -> Result<Option<(u64, u64)>, E> {
    let mut best: Option<(u64, u64)> = None;
    joined(scan, |run| {
        if is_excluded(&run, excluded) {
            return;
        }
        if let Some((start, dist)) = run.nearest_window(goal, want) {
            // (`Option::is_none_or` is newer than the kernel's minimum Rust.)
            let nearer = match best {
                Some((_, d)) => dist < d,
                None => true,
            };
            if nearer {
                best = Some((start, dist));
            }
        }
    })?;
    Ok(best)
}

/// The same answer as [`nearest_whole`] over `0..end` (nothing
/// excluded), without reading all the free space: `scan_range(lo, hi, f)`
/// reports the free runs in `lo..hi` (cut at its ends), and the search
/// reads windows around the goal, `radius` blocks either side and four
/// times wider each time, until the nearest placement found lies in the
/// window with `want` blocks to spare (then none outside it can be
/// nearer: a nearer one would lie whole inside) or the window is all of
/// `0..end`. A filesystem with free space near the goal has its bitmaps
/// read there only, whatever its size.
pub fn nearest_whole_outward<E>(
    mut scan_range: impl FnMut(u64, u64, &mut dyn FnMut(Run)) -> Result<(), E>,
    goal: u64,
    want: u64,
    end: u64,
    radius: u64,
) -> Result<Option<(u64, u64)>, E> {
    let mut radius = radius.max(want).max(1);
    loop {
        let lo = goal.saturating_sub(radius);
        let hi = goal.saturating_add(radius).min(end);
        let mut scan = |f: &mut dyn FnMut(Run)| scan_range(lo, hi, f);
        let best = nearest_whole(&mut scan, goal, want, &[])?;
        let everything = lo == 0 && hi >= end;
        match best {
            Some((_, dist)) if dist.saturating_add(want) <= radius => return Ok(best),
            _ if everything => return Ok(best),
            _ => radius = radius.saturating_mul(4),
        }
    }
}

/// Orders runs for the "fewest runs" choice: longer first, then nearer to
/// `goal`, then lower.
fn better(a: &Run, b: &Run, goal: u64) -> bool {
    (b.len, a.start.abs_diff(goal), a.start) < (a.len, b.start.abs_diff(goal), b.start)
}

/// The largest free runs, as few as hold `want` blocks together, in `buf`
/// (longest first). Returns how many there are; if `buf` fills up before
/// they hold `want`, all of `buf`.
fn largest<E>(
    scan: &mut impl FnMut(&mut dyn FnMut(Run)) -> Result<(), E>,
    goal: u64,
    want: u64,
    buf: &mut [Run],
) -> Result<usize, E> {
    let mut n = 0usize;
    let mut sum = 0u64;
    joined(scan, |run| {
        // Kept sorted, longest first; the prefix holding `want` suffices.
        let full = n == buf.len() || sum >= want;
        if full && (n == 0 || !better(&run, &buf[n - 1], goal)) {
            return;
        }
        let mut i = n.min(buf.len() - 1);
        if n < buf.len() {
            n += 1;
        } else {
            sum -= buf[i].len;
        }
        while i > 0 && better(&run, &buf[i - 1], goal) {
            buf[i] = buf[i - 1];
            i -= 1;
        }
        buf[i] = run;
        sum += run.len;
        // Drop the runs not needed to hold `want`.
        while n > 1 && sum - buf[n - 1].len >= want {
            n -= 1;
            sum -= buf[n].len;
        }
    })?;
    Ok(n)
}

/// A placement: the pieces of free space the data goes to, in the order
/// the data fills them (ascending blocks), each with the blocks used.
#[derive(Debug, PartialEq, Eq)]
pub struct Placement {
    /// Pieces in `buf[..pieces]`.
    pub pieces: usize,
    /// Blocks the pieces hold together: `want`, or less when the free
    /// space (or `buf`) cannot hold all of it in one plan.
    pub blocks: u64,
    /// All of it in one free run.
    pub whole: bool,
}

impl Placement {
    /// No pieces: no free space, or nothing wanted.
    pub const NONE: Placement = Placement {
        pieces: 0,
        blocks: 0,
        whole: false,
    };

    /// All `want` blocks in one piece from `start`, which goes into
    /// `buf[0]` (`buf` must not be empty).
    pub fn one_run(buf: &mut [Run], start: u64, want: u64) -> Placement {
        buf[0] = Run { start, len: want };
        Placement {
            pieces: 1,
            blocks: want,
            whole: true,
        }
    }
}

/// Plans where `want` blocks go, by the contract above, into `buf` (one
/// piece is enough for rules 1 and 2; `buf` bounds rule 3, the caller
/// plans again for what is left). `buf` must not be empty. No free space
/// gives no pieces.
pub fn place<E>(
    mut scan: impl FnMut(&mut dyn FnMut(Run)) -> Result<(), E>,
    goal: u64,
    want: u64,
    buf: &mut [Run],
) -> Result<Placement, E> {
    if want == 0 || buf.is_empty() {
        return Ok(Placement::NONE);
    }
    if let Some((start, _)) = nearest_whole(&mut scan, goal, want, &[])? {
        return Ok(Placement::one_run(buf, start, want));
    }
    place_pieces(scan, goal, want, buf)
}

/// Rule 3 of [`place`] alone, for a caller that knows no free run holds
/// `want` blocks whole (see [`nearest_whole_outward`]).
pub fn place_pieces<E>(
    mut scan: impl FnMut(&mut dyn FnMut(Run)) -> Result<(), E>,
    goal: u64,
    want: u64,
    buf: &mut [Run],
) -> Result<Placement, E> {
    if want == 0 || buf.is_empty() {
        return Ok(Placement::NONE);
    }
    let n = largest(&mut scan, goal, want, buf)?;
    if n == 0 {
        return Ok(Placement::NONE);
    }
    let held: u64 = buf[..n].iter().map(|r| r.len).sum();
    let mut blocks = held;
    if held >= want {
        // The smallest piece only needs to hold what the others leave:
        // take the run nearest to the goal that does.
        let rest = want - (held - buf[n - 1].len);
        let (start, _) =
            nearest_whole(&mut scan, goal, rest, &buf[..n - 1])?.unwrap_or((buf[n - 1].start, 0));
        buf[n - 1] = Run { start, len: rest };
        blocks = want;
    }
    // Insertion sort: `core`'s sorts trip objtool in the kernel, and a
    // plan has few pieces.
    for i in 1..n {
        let mut j = i;
        while j > 0 && buf[j - 1].start > buf[j].start {
            buf.swap(j - 1, j);
            j -= 1;
        }
    }
    Ok(Placement {
        pieces: n,
        blocks,
        whole: false,
    })
}

/// Hands out the blocks of a placement's pieces in order. Holds only a
/// position, so that the pieces can be planned again under it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cursor {
    piece: usize,
    used: u64,
}

impl Cursor {
    /// The next up to `max` blocks of `pieces`, all in one piece, without
    /// taking them; `None` when all are taken.
    pub fn peek(&mut self, pieces: &[Run], max: u64) -> Option<Run> {
        while let Some(piece) = pieces.get(self.piece) {
            if self.used < piece.len {
                return Some(Run {
                    start: piece.start + self.used,
                    len: (piece.len - self.used).min(max),
                });
            }
            self.piece += 1;
            self.used = 0;
        }
        None
    }

    /// Takes `n` blocks (at most what [`Cursor::peek`] offered).
    pub fn advance(&mut self, n: u64) {
        self.used += n;
    }

    /// A stretch of `len` blocks of data (between holes) starts here. If
    /// it would start inside a piece whose rest cannot hold it, the rest
    /// is left and the stretch starts at the next piece: splitting a
    /// stretch costs an extent, skipping costs none. A stretch at the
    /// start of a piece is never moved on, so the pieces always advance.
    pub fn start_stretch(&mut self, pieces: &[Run], len: u64) {
        if let Some(piece) = pieces.get(self.piece) {
            if self.used > 0 && piece.len - self.used.min(piece.len) < len {
                self.piece += 1;
                self.used = 0;
            }
        }
    }
}

/// Blocks from `pblk` to the end of its block group: an allocation at an
/// exact place cannot cross it.
pub fn to_group_end(pblk: u64, first_data_block: u64, blocks_per_group: u32) -> u64 {
    let bpg = u64::from(blocks_per_group.max(1));
    bpg - (pblk.saturating_sub(first_data_block) % bpg)
}
