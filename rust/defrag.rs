// SPDX-License-Identifier: GPL-2.0

//! `EXT4_IOC_DEFRAG`: move a range of a file into blocks allocated
//! contiguously from a goal.
//!
//! 1. Check everything; nothing is touched before that.
//! 2. Count the range's extents now.
//! 3. Plan where the data goes from the free space the block allocator
//!    sees (see `placement`): at the goal, else the nearest free run that
//!    holds it, else the fewest runs. If that layout is no better, report
//!    "no improvement"; with `DRY_RUN`, report the plan. Neither allocates.
//! 4. Create an orphan donor file and give it unwritten blocks exactly
//!    where the plan says, at the same logical positions as the range's
//!    data (holes stay holes), one allocation per stretch of data and
//!    piece of the plan; plan again if a writer took a run first.
//! 5. Swap the blocks in steps of the move unit with `ext4_move_extents`
//!    (journaled, page by page), checking for signals between steps and
//!    retrying a step a writer kept busy. With blocks smaller than pages,
//!    a step ends where an extent ends inside a page, and that page is
//!    written back before the next step (see `cut_in_page`).
//! 6. Drop the donor: the old blocks, now the donor's, are freed (a
//!    donor lent by the caller keeps them until the caller closes it).
//! 7. Make the extent tree as shallow as the extents left allow: in the
//!    inode for up to 4, one leaf block for up to a block's worth.

use crate::{
    ext4::{self, Donor, File, Inode, MapState, WriteAccess},
    placement::{self, Cursor, Placement, Run},
    plan::{self, ExtentCounter, MappedRun},
    uapi::{self, BlockRange, DefragData},
};
use core::mem::size_of;
use kernel::{
    bindings,
    prelude::*,
    types::{AsBytes, FromBytes},
    uaccess::UserSlice,
};

// SAFETY: `DefragData` is `repr(C)` of integers only, without padding (its
// layout is asserted in `uapi`), so every byte pattern is a valid value.
unsafe impl FromBytes for DefragData {}
// SAFETY: as above, it has no padding, so all its bytes are initialised.
unsafe impl AsBytes for DefragData {}

/// Handles `EXT4_IOC_DEFRAG` for `file` with the user argument at `arg`.
/// The out fields are written back also when the move stops early.
pub(crate) fn ioctl(file: &File<'_>, arg: usize) -> Result {
    let (mut reader, mut writer) = UserSlice::new(arg, size_of::<DefragData>()).reader_writer();
    let mut req: DefragData = reader.read()?;
    let res = defrag(file, &mut req);
    writer.write(&req)?;
    res
}

/// Refuses files the move cannot or must not handle, with the errno
/// `EXT4_IOC_MOVE_EXT` would give.
fn check_file(file: &File<'_>, inode: &Inode<'_>) -> Result {
    let mode = inode.mode() & bindings::S_IFMT;
    if mode == bindings::S_IFDIR {
        return Err(EISDIR);
    }
    if mode != bindings::S_IFREG {
        return Err(EINVAL);
    }
    if !file.is_read_write() {
        return Err(EBADF);
    }
    check_movable(inode)
}

/// The donor's checks, the same for one made here and one lent: what
/// the file must be, and no set-user-ID or set-group-ID bit (the file's
/// data must not become a privileged program's, as `EXT4_IOC_MOVE_EXT`
/// also refuses). Made before anything is allocated in it.
fn check_donor(donor: &Inode<'_>) -> Result {
    check_movable(donor)?;
    if donor.mode() & (bindings::S_ISUID | bindings::S_ISGID) != 0 {
        return Err(EINVAL);
    }
    Ok(())
}

/// What both the file and the donor must be for ext4 to swap their
/// blocks: a regular, writable (not immutable or append-only), inactive
/// (not swap) file, extent-mapped, on a journaled, non-bigalloc
/// filesystem, without encryption, verity, DAX, inline data or data
/// journaling (ext4's own move path checks DAX on the file only).
fn check_movable(inode: &Inode<'_>) -> Result {
    if inode.mode() & bindings::S_IFMT != bindings::S_IFREG {
        return Err(EINVAL);
    }
    let flags = inode.vfs_flags();
    if flags & (bindings::S_IMMUTABLE | bindings::S_APPEND) != 0 {
        return Err(EPERM);
    }
    if flags & bindings::S_SWAPFILE != 0 {
        return Err(ETXTBSY);
    }
    let info = inode.info();
    let unsupported = flags & (bindings::S_ENCRYPTED | bindings::S_DAX | bindings::S_VERITY) != 0
        || !info.extents
        || info.inline_data
        || info.journal_data
        || info.bigalloc
        // Without a journal a crash can leave the file mapping old blocks
        // that were freed and written by others: no move is safe.
        || info.no_journal;
    if unsupported {
        return Err(Error::from_errno(-(bindings::EOPNOTSUPP as i32)));
    }
    Ok(())
}

/// Calls `f(lblk, mapping)` for each allocated run of `range`, in order.
fn for_each_run(
    inode: &Inode<'_>,
    range: BlockRange,
    mut f: impl FnMut(u32, ext4::Mapping) -> Result,
) -> Result {
    let mut lblk = range.start;
    while lblk < range.end {
        // `range.end <= MAX_LBLK + 1` (checked), so these fit in u32.
        let l = lblk as u32;
        let m = inode.map_block(l, (range.end - lblk) as u32)?;
        if matches!(m.state, MapState::Mapped | MapState::Unwritten) {
            f(l, m)?;
        }
        ext4::cond_resched();
        lblk += u64::from(m.len.max(1));
    }
    Ok(())
}

/// Extents of `range` as they are now.
fn count_extents(inode: &Inode<'_>, range: BlockRange) -> Result<ExtentCounter> {
    let mut counter = ExtentCounter::default();
    for_each_run(inode, range, |l, m| {
        counter.push(l.into(), m.pblk, m.len.into());
        Ok(())
    })?;
    Ok(counter)
}

/// Pieces of free space planned at once: a file that needs more (its
/// data larger than the largest free runs together) plans again for the
/// rest once these are allocated.
const MAX_PIECES: usize = 64;

/// New plans tolerated in a row (no allocation in between) when blocks
/// of a planned run were taken before the donor got them: by another
/// writer, or by the donor's own extent tree, whose new blocks ext4 puts
/// right after its last data (a file of thousands of stretches needs
/// hundreds of them).
const MAX_REPLANS: u32 = 16;

/// Longest run one allocation asks for: ext4's longest unwritten extent.
const MAX_ALLOC: u64 = 32767;

/// Plans where `want` blocks go from `goal` (see [`placement`]) into
/// `pieces`, from the free space as the block allocator sees it now.
fn plan(inode: &Inode<'_>, goal: u64, want: u64, pieces: &mut [Run]) -> Result<Placement> {
    let info = inode.info();
    let end = info.blocks_count;
    // Rule 1 first, from the bitmaps of the goal's groups only: the free
    // run at the goal holds it (the common case of a planned slot).
    let mut at_goal = 0u64;
    if want > 0 && !pieces.is_empty() && goal < end {
        inode.free_runs(goal, goal.saturating_add(want).min(end), |r| {
            if r.start == goal + at_goal {
                at_goal += r.len;
            }
        })?;
        if at_goal >= want {
            return Ok(Placement::one_run(pieces, goal, want));
        }
    }
    if want == 0 || pieces.is_empty() {
        return Ok(Placement::NONE);
    }
    // Rule 2 from the goal outward, a block group either side first: a
    // call reads the bitmaps near the goal, not the whole filesystem's.
    let near = placement::nearest_whole_outward(
        |lo, hi, f: &mut dyn FnMut(Run)| inode.free_runs(lo, hi, f),
        goal,
        want,
        end,
        info.blocks_per_group.into(),
    )?;
    if let Some((start, _)) = near {
        return Ok(Placement::one_run(pieces, start, want));
    }
    // Rule 3 needs the largest runs, wherever they are.
    placement::place_pieces(
        |f: &mut dyn FnMut(Run)| inode.free_runs(0, end, f),
        goal,
        want,
        pieces,
    )
}

/// Calls `f(start, end)` for each stretch of data (allocated blocks
/// without a hole between them) of `range`, in order. `EINTR` when a
/// signal is pending between stretches: a sparse file can have millions,
/// each an allocation (a transaction) before anything moves.
fn for_each_stretch(
    inode: &Inode<'_>,
    range: BlockRange,
    mut f: impl FnMut(u64, u64) -> Result,
) -> Result {
    let mut start = None;
    let mut lblk = range.start;
    let mut f = |s, e| {
        if ext4::signal_pending() {
            return Err(EINTR);
        }
        ext4::cond_resched();
        f(s, e)
    };
    while lblk < range.end {
        // `range.end <= MAX_LBLK + 1` (checked), so these fit in u32.
        let m = inode.map_block(lblk as u32, (range.end - lblk) as u32)?;
        let data = matches!(m.state, MapState::Mapped | MapState::Unwritten);
        match (data, start) {
            (true, None) => start = Some(lblk),
            (false, Some(s)) => {
                f(s, lblk)?;
                start = None;
            }
            _ => {}
        }
        lblk += u64::from(m.len.max(1));
    }
    if let Some(s) = start {
        f(s, lblk.min(range.end))?;
    }
    Ok(())
}

/// The layout the data of `range` would have in `pieces` (of a plan for
/// all of it; a partial plan gives the layout of the part it holds, and
/// so a lower bound of the extents). Stretches are placed as
/// [`allocate`] places them.
fn predict(inode: &Inode<'_>, range: BlockRange, pieces: &[Run]) -> Result<ExtentCounter> {
    let mut after = ExtentCounter::default();
    let mut cursor = Cursor::default();
    for_each_stretch(inode, range, |mut lblk, end| {
        cursor.start_stretch(pieces, end - lblk);
        while let Some(r) = cursor.peek(pieces, end - lblk) {
            after.push(lblk, r.start, r.len);
            cursor.advance(r.len);
            lblk += r.len;
            if lblk == end {
                break;
            }
        }
        Ok(())
    })?;
    Ok(after)
}

/// Gives `donor` blocks at the logical blocks `at` puts the data of
/// `range` (holes stay holes), `want` blocks in all, exactly where `pieces`
/// (planned from `goal`) say: one allocation per piece of a stretch, cut
/// only where a block group or the longest extent ends. When the plan
/// held only part of the data, or a writer took a planned run first,
/// plans again for what is left, from where the last run ended. Returns
/// the donor's layout (of the data's blocks) and one past its last
/// allocated logical block. With `goal_only` there is no plan but the
/// first: a run taken meanwhile, or data the plan has no room for, is
/// `ENOSPC` (the caller asked for the data at the goal or nowhere).
#[allow(clippy::too_many_arguments)]
fn allocate(
    write: &WriteAccess<'_, '_>,
    donor: &Donor,
    at: DonorPlace,
    range: BlockRange,
    want: u64,
    pieces: &mut [Run],
    mut placed: Placement,
    goal_only: bool,
) -> Result<(ExtentCounter, u64)> {
    let inode = &write.inode();
    let info = inode.info();
    let mut after = ExtentCounter::default();
    let mut cursor = Cursor::default();
    let mut left = want;
    let mut replans = 0;
    let mut data_end = range.start;
    for_each_stretch(inode, range, |mut lblk, end| {
        cursor.start_stretch(&pieces[..placed.pieces], end - lblk);
        while lblk < end {
            let Some(r) = cursor.peek(&pieces[..placed.pieces], end - lblk) else {
                // The plan is used up: plan the rest next to the last run
                // (at least this stretch, should a writer have filled a
                // hole since the count).
                if goal_only {
                    return Err(ENOSPC);
                }
                let goal = after.next_pblk().unwrap_or(0);
                placed = plan(inode, goal, left.max(end - lblk), pieces)?;
                cursor = Cursor::default();
                if placed.pieces == 0 {
                    return Err(ENOSPC);
                }
                continue;
            };
            let len = r
                .len
                .min(placement::to_group_end(
                    r.start,
                    info.first_data_block,
                    info.blocks_per_group,
                ))
                .min(MAX_ALLOC);
            match donor.alloc_at(write, at.of(lblk) as u32, len as u32, r.start) {
                // Blocks already there (the donor range was not a hole
                // after all): never move through blocks not planned here.
                Ok(got) if got.pblk != r.start => return Err(EBUSY),
                Ok(got) => {
                    let got_len = u64::from(got.len).min(len);
                    after.push(lblk, got.pblk, got_len);
                    cursor.advance(got_len);
                    lblk += got_len;
                    left = left.saturating_sub(got_len);
                    replans = 0;
                }
                // Someone was quicker: plan again for the rest.
                Err(e)
                    if e.to_errno() == ENOSPC.to_errno() && !goal_only && replans < MAX_REPLANS =>
                {
                    replans += 1;
                    placed = plan(inode, r.start, left.max(end - lblk), pieces)?;
                    cursor = Cursor::default();
                    if placed.pieces == 0 {
                        return Err(ENOSPC);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        data_end = end;
        Ok(())
    })?;
    Ok((after, data_end))
}

/// Where a move step over `[lblk, end)` stops: at the first end of an
/// extent inside a page (blocks smaller than pages), else at `end`.
///
/// `ext4_move_extents` moves a page extent by extent; the part it moved
/// leaves the page dirty, and the move of the page's next extent then
/// finds buffers it cannot release and forces a journal commit to retry
/// (one commit per such page: most of the time of moving small
/// fragmented files with 1 KiB blocks). A step that stops there lets the
/// caller write that one page back instead.
fn cut_in_page(inode: &Inode<'_>, lblk: u64, end: u64, per_page: u64) -> Result<u64> {
    if per_page == 1 {
        return Ok(end - lblk);
    }
    let mut at = lblk;
    while at < end {
        let m = inode.map_block(at as u32, (end - at) as u32)?;
        at += u64::from(m.len.max(1));
        if at < end
            && at % per_page != 0
            && matches!(m.state, MapState::Mapped | MapState::Unwritten)
        {
            return Ok(at - lblk);
        }
    }
    Ok(end - lblk)
}

/// The logical block after the file's last byte.
fn eof_block(inode: &Inode<'_>, blkbits: u32) -> u64 {
    inode.size().div_ceil(1 << blkbits)
}

/// Where the range's blocks go in the donor: the donor's logical block
/// is the file's plus this (modulo 2^64). Zero in a donor made for the
/// call; past the end of a lent one.
#[derive(Clone, Copy)]
struct DonorPlace(u64);

impl DonorPlace {
    /// The donor's logical block for the file's `lblk`.
    fn of(self, lblk: u64) -> u64 {
        lblk.wrapping_add(self.0)
    }
}

/// A lent donor takes the range's blocks past its end (its size rounded
/// up to a page, at the same offset in a page as the file's blocks, as
/// `ext4_move_extents` requires) and keeps the old ones there until it is
/// closed: one truncate at the end of a set frees them all, where a hole
/// punched back per call cost as much as the rest of a small file's move.
/// `EFBIG` once the donor has no logical blocks left for the range;
/// `EINVAL` if it has blocks past its end already (so that truncating it
/// back to its size frees exactly what a call put there).
fn lent_donor_place(donor: &Inode<'_>, range: BlockRange, per_page: u64) -> Result<DonorPlace> {
    let blkbits = donor.blkbits();
    let end_blocks = donor.size().div_ceil(1 << blkbits);
    let start = end_blocks.div_ceil(per_page) * per_page + range.start % per_page;
    let end = start + (range.end - range.start);
    if end > uapi::MAX_LBLK + 1 {
        return Err(EFBIG);
    }
    let past_end = BlockRange {
        start: end_blocks,
        end: uapi::MAX_LBLK + 1,
    };
    if !is_hole(donor, past_end)? {
        return Err(EINVAL);
    }
    Ok(DonorPlace(start.wrapping_sub(range.start)))
}

/// Is `range` of `inode` a hole (nothing allocated or waiting for
/// allocation)?
fn is_hole(inode: &Inode<'_>, range: BlockRange) -> Result<bool> {
    let mut lblk = range.start;
    while lblk < range.end {
        let m = inode.map_block(lblk as u32, (range.end - lblk) as u32)?;
        if m.state != MapState::Hole {
            return Ok(false);
        }
        lblk += u64::from(m.len.max(1));
    }
    Ok(true)
}

/// Read ahead of the move steps at least this much (bytes).
const READ_AHEAD_BYTES: u64 = 4 << 20;

/// Consecutive `EBUSY` answers of a move step tolerated, and the wait
/// after each: a writer keeps a page busy for moments, not seconds.
const MAX_BUSY_RETRIES: u32 = 50;
const BUSY_WAIT_MS: u32 = 10;

/// Records the donor's blocks for the file's `lblk..end` (by the file's
/// logical blocks), as they are before a move step over it, in the first
/// of `runs` (grown as needed; the buffer is reused from step to step),
/// and returns how many: what [`plan::resume_after`] needs should the
/// step stop early.
fn record_donor_runs(
    donor: &Inode<'_>,
    at: DonorPlace,
    lblk: u64,
    end: u64,
    runs: &mut KVec<MappedRun>,
) -> Result<usize> {
    let mut n = 0;
    let mut x = lblk;
    while x < end {
        // The donor's range is checked to fit logical blocks (u32).
        let m = donor.map_block(at.of(x) as u32, (end - x) as u32)?;
        let len = u64::from(m.len.max(1)).min(end - x);
        if matches!(m.state, MapState::Mapped | MapState::Unwritten) {
            let run = MappedRun {
                lblk: x,
                pblk: m.pblk,
                len,
            };
            match runs.get_mut(n) {
                Some(slot) => *slot = run,
                None => runs.push(run, GFP_KERNEL)?,
            }
            n += 1;
        }
        x += len;
    }
    Ok(n)
}

/// Where a move step from `lblk` that stopped early goes on, from the
/// donor's blocks recorded before it (see [`plan::resume_after`]).
fn after_moved(inode: &Inode<'_>, lblk: u64, donor_runs: &[MappedRun]) -> Result<u64> {
    plan::resume_after(lblk, donor_runs, |x, max| {
        let m = inode.map_block(x as u32, max as u32)?;
        let data = matches!(m.state, MapState::Mapped | MapState::Unwritten);
        Ok((data.then_some(m.pblk), m.len.into()))
    })
}

fn defrag(file: &File<'_>, req: &mut DefragData) -> Result {
    let inode = file.inode();
    check_file(file, &inode)?;
    let info = inode.info();
    let blkbits = inode.blkbits();
    let range = uapi::check_defrag_request(req, blkbits, info.blocks_count, inode.size())
        .map_err(|_| EINVAL)?;
    if req.goal != 0 && !ext4::may_set_goal() {
        return Err(EPERM);
    }
    let unit_pages = uapi::defrag_unit_pages(req.flags).ok_or(EINVAL)?;
    let lend = req.flags & uapi::DEFRAG_DONOR_FD != 0;
    // Declared before the write access so that it is dropped after it
    // (the last reference of a donor made here frees its blocks; a lent
    // one is truncated back on failure, which takes write access itself).
    let mut donor_slot: Option<Donor> = None;
    let write = file.write_access()?;
    // Delayed allocations become real blocks, so the plan sees all data.
    file.write_back()?;
    let before = count_extents(&inode, range)?;
    req.moved_blocks = 0;
    req.extents_before = before.extents();
    req.extents_after = before.extents();
    let Some(old_first) = before.first_pblk() else {
        return Ok(());
    };
    if before.extents() <= 1 && req.goal == 0 {
        return Ok(());
    }

    // Plan from the free space there is; nothing is allocated for a
    // layout that is no better, or for a dry run.
    let goal = if req.goal != 0 { req.goal } else { old_first };
    let want = before.blocks();
    let mut pieces = KVec::from_elem(Run::default(), MAX_PIECES, GFP_KERNEL)?;
    let mut placed = plan(&inode, goal, want, &mut pieces)?;
    if placed.blocks < want && placed.pieces < pieces.len() {
        // All free space is planned and it is not enough. Blocks freed in
        // the running transaction reach the allocator only at its commit
        // (ext4_should_retry_alloc() waits for it the same way): commit
        // once and plan again.
        inode.force_commit()?;
        placed = plan(&inode, goal, want, &mut pieces)?;
    }
    if req.flags & uapi::DEFRAG_GOAL_ONLY != 0 && !(placed.whole && pieces[0].start == req.goal) {
        return Err(ENOSPC);
    }
    if placed.pieces == 0 {
        return Err(ENOSPC);
    }
    let predicted = predict(&inode, range, &pieces[..placed.pieces])?;
    // A plan that holds only part of the data tells a lower bound.
    if placed.blocks == want && !plan::improves(&before, &predicted, req.goal) {
        return Ok(());
    }
    if req.flags & uapi::DEFRAG_DRY_RUN != 0 {
        req.extents_after = predicted.extents();
        req.moved_blocks = want;
        return Ok(());
    }

    let per_page = 1u64 << (bindings::PAGE_SHIFT - blkbits);
    let donor = donor_slot.insert(if lend {
        Donor::from_fd(file, req.reserved)?
    } else {
        Donor::new(file)?
    });
    check_donor(&donor.inode())?;
    let at = if lend {
        let at = lent_donor_place(&donor.inode(), range, per_page)?;
        // A call that fails, or moves nothing, leaves the lent donor as it
        // was: its blocks would otherwise sit in the next file's slot of
        // a set until the donor is closed.
        donor.restore_on_drop(donor.inode().size());
        at
    } else {
        DonorPlace(0)
    };
    let goal_only = req.flags & uapi::DEFRAG_GOAL_ONLY != 0;
    let (after, data_end) = allocate(
        &write,
        donor,
        at,
        range,
        want,
        &mut pieces,
        placed,
        goal_only,
    )?;
    if !plan::improves(&before, &after, req.goal) {
        return Ok(());
    }
    // From here on write access is taken per step: a freeze (fsfreeze,
    // a snapshot) waits for one step, not for the whole move, and the
    // move waits for the thaw before its next step.
    drop(write);

    let step = u64::from(unit_pages) << (bindings::PAGE_SHIFT - blkbits);
    let mut lblk = range.start;
    let mut res = Ok(());
    let mut busy = 0;
    let mut step_runs = KVec::new();
    let mut read_ahead_end = lblk;
    while lblk < data_end {
        if ext4::signal_pending() {
            res = Err(EINTR);
            break;
        }
        // Thousands of steps: let others run between them (and take the
        // file's locks, which each step takes anew).
        ext4::cond_resched();
        // Truncated since the plan: the data past the new end is gone with
        // its blocks, and what is left was moved. Stop at the end instead
        // of asking ext4 to move past it (EINVAL).
        let eof = eof_block(&inode, blkbits);
        if lblk >= eof {
            break;
        }
        let end = (lblk + step.min(data_end - lblk)).min(eof);
        let len = match cut_in_page(&inode, lblk, end, per_page) {
            Ok(len) => len,
            Err(e) => {
                res = Err(e);
                break;
            }
        };
        // ext4 reads a page it moves but finds not cached block by block,
        // a request each: read what the next steps move ahead, in large
        // requests (on a hard disk, 2048 requests for 8 MiB otherwise).
        if lblk >= read_ahead_end {
            read_ahead_end = (lblk + step.max(READ_AHEAD_BYTES >> blkbits)).min(data_end);
            file.read_ahead(
                (lblk << blkbits) as i64,
                ((read_ahead_end - lblk) << blkbits) as i64,
            );
        }
        let recorded = match record_donor_runs(&donor.inode(), at, lblk, lblk + len, &mut step_runs)
        {
            Ok(n) => n,
            Err(e) => {
                res = Err(e);
                break;
            }
        };
        let (moved, r) = match file.write_access() {
            Ok(write) => write.move_extents(donor, lblk as u32, at.of(lblk) as u32, len as u32),
            Err(e) => (0, Err(e)),
        };
        req.moved_blocks += moved;
        match r {
            Ok(()) => {
                lblk += len;
                busy = 0;
                // The page the next step starts in holds data moved just
                // now, dirty: written back, its buffers can be released
                // without the journal commit ext4 would force.
                if lblk % per_page != 0 && lblk < data_end {
                    let page = (lblk << blkbits) as i64 & !(bindings::PAGE_SIZE as i64 - 1);
                    if let Err(e) =
                        file.write_back_range(page, page + bindings::PAGE_SIZE as i64 - 1)
                    {
                        res = Err(e);
                        break;
                    }
                }
            }
            // A page dirty, under I/O or with busy buffers (a writer at
            // work): go on after what was moved, written back, a little
            // later.
            Err(e) if e.to_errno() == EBUSY.to_errno() && busy < MAX_BUSY_RETRIES => {
                busy += 1;
                // Dirty pages cannot be swapped: write them back first.
                // On failure, stop as for any error: the tree is still
                // shrunk and the out fields filled below.
                match after_moved(&inode, lblk, &step_runs[..recorded])
                    .and_then(|next| file.write_back().map(|()| next))
                {
                    Ok(next) => lblk = next,
                    Err(e) => {
                        res = Err(e);
                        break;
                    }
                }
                ext4::sleep_ms(BUSY_WAIT_MS);
            }
            // A truncate between the check above and the step: the same
            // end as above, found by ext4.
            Err(e)
                if e.to_errno() == EINVAL.to_errno() && lblk + len > eof_block(&inode, blkbits) =>
            {
                break;
            }
            // No extent at or after `lblk` any more: a hole was punched
            // over the rest of the range since the plan. Punched blocks
            // are not moved; the rest was.
            Err(e) if e.to_errno() == -(bindings::ENODATA as i32) => {
                let rest = BlockRange {
                    start: lblk,
                    end: data_end,
                };
                match is_hole(&inode, rest) {
                    Ok(true) => {}
                    Ok(false) => res = Err(e),
                    Err(e) => res = Err(e),
                }
                break;
            }
            Err(e) => {
                res = Err(e);
                break;
            }
        }
    }
    // With data=writeback the old blocks are free for other writers as
    // soon as the donor lets them go: the moves must be on the disk before
    // then, or a crash brings the file back onto overwritten blocks. (In
    // ordered mode ext4 keeps freed data blocks until the commit.)
    let committed = if info.writeback_data && req.moved_blocks > 0 {
        inode.force_commit()
    } else {
        Ok(())
    };
    // The donor goes when this returns (see `donor_slot`); a donor made
    // here frees the old blocks then, a lent one keeps them until its
    // owner closes it.
    // A tree that held thousands of extents keeps its blocks and depth
    // after the move; make it as shallow as the extents left allow. A
    // range of at most four extents did not make the tree deep (and the
    // shrink's transaction is a fair part of moving a small file).
    // A shrink that fails hides neither the move's own result (EINTR,
    // say) nor the extents after it.
    let shrunk = if req.moved_blocks > 0 && before.extents() > 4 {
        file.write_access()
            .and_then(|write| write.shrink_extent_tree())
            .map(|_| ())
    } else {
        Ok(())
    };
    req.extents_after = count_extents(&inode, range)?.extents();
    let res = res.and(committed).and(shrunk);
    if res.is_ok() && req.moved_blocks > 0 {
        donor.keep();
    }
    res
}
