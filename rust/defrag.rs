// SPDX-License-Identifier: GPL-2.0

//! `EXT4_IOC_DEFRAG`: move a range of a file into blocks allocated
//! contiguously from a goal.
//!
//! 1. Check everything; nothing is touched before that.
//! 2. Count the range's extents now.
//! 3. Create an orphan donor file and give it unwritten blocks at the same
//!    logical positions as the range's data (holes stay holes), the search
//!    starting at the goal and each run continuing where the last ended.
//! 4. If that layout is no better, drop the donor (freeing its blocks) and
//!    report "no improvement"; with `DRY_RUN`, report and stop there too.
//! 5. Swap the blocks in steps of the move unit with `ext4_move_extents`
//!    (journaled, page by page), checking for signals between steps and
//!    retrying a step a writer kept busy.
//! 6. Drop the donor: the old blocks, now the donor's, are freed.
//! 7. Make the extent tree as shallow as the extents left allow: in the
//!    inode for up to 4, one leaf block for up to a block's worth.

use crate::{
    ext4::{self, Donor, File, Inode, MapState},
    plan::{self, ExtentCounter},
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
        || info.bigalloc;
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

/// Gives `donor` blocks at the same logical blocks as the data of `range`.
/// Allocates per stretch of data without holes (so that the allocator sees
/// the whole length, not the old fragments), in requests sized by
/// [`plan::request_len`], the first at `goal` and each next where the last
/// ended. With `chain` (a goal the caller gave), requests never reach past
/// a stretch, so that the runs follow the goal exactly. Returns the
/// donor's layout (of the data's blocks only) and one past its last
/// allocated logical block.
fn allocate(
    inode: &Inode<'_>,
    donor: &Donor,
    range: BlockRange,
    mut goal: u64,
    chain: bool,
) -> Result<(ExtentCounter, u64)> {
    let mut after = ExtentCounter::default();
    // Allocates `start..end`; the donor is free up to `room_end`.
    let mut alloc_stretch = |start: u32, end: u32, room_end: u32| -> Result {
        let mut lblk = start;
        while lblk < end {
            let room = if chain { end - lblk } else { room_end - lblk };
            let got = donor.alloc(lblk, plan::request_len(end - lblk, room), goal)?;
            // Blocks past the stretch stay the donor's, freed with it.
            let used = got.len.min(end - lblk);
            after.push(lblk.into(), got.pblk, used.into());
            goal = got.pblk + u64::from(used);
            lblk += used;
        }
        Ok(())
    };
    // The stretch of data found so far, `start..end`.
    let mut stretch: Option<(u32, u32)> = None;
    for_each_run(inode, range, |l, m| {
        stretch = match stretch {
            Some((start, end)) if end == l => Some((start, l + m.len)),
            Some((start, end)) => {
                alloc_stretch(start, end, l)?;
                Some((l, l + m.len))
            }
            None => Some((l, l + m.len)),
        };
        Ok(())
    })?;
    let data_end = match stretch {
        Some((start, end)) => {
            // `u32::MAX` is ext4's EXT_MAX_BLOCKS: the donor's address space.
            alloc_stretch(start, end, u32::MAX)?;
            u64::from(end)
        }
        None => range.start,
    };
    Ok((after, data_end))
}

/// Consecutive `EBUSY` answers of a move step tolerated, and the wait
/// after each: a writer keeps a page busy for moments, not seconds.
const MAX_BUSY_RETRIES: u32 = 50;
const BUSY_WAIT_MS: u32 = 10;

/// The logical block after the first `n` data blocks from `lblk` on,
/// holes skipped: where a move step that moved `n` blocks stopped. Holes
/// stay holes during a move, so the count identifies the place.
fn after_data_blocks(inode: &Inode<'_>, mut lblk: u64, end: u64, mut n: u64) -> Result<u64> {
    while n > 0 && lblk < end {
        let m = inode.map_block(lblk as u32, (end - lblk) as u32)?;
        let len = u64::from(m.len.max(1));
        if matches!(m.state, MapState::Mapped | MapState::Unwritten) {
            if n < len {
                return Ok(lblk + n);
            }
            n -= len;
        }
        lblk += len;
    }
    Ok(lblk)
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
    let _write = file.write_access()?;
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

    let donor = Donor::new(file)?;
    let goal = if req.goal != 0 { req.goal } else { old_first };
    let (after, data_end) = allocate(&inode, &donor, range, goal, req.goal != 0)?;
    if req.flags & uapi::DEFRAG_GOAL_ONLY != 0 {
        let group = |b| plan::group_of(b, info.first_data_block, info.blocks_per_group);
        if after.first_pblk().map(group) != Some(group(req.goal)) {
            return Err(ENOSPC);
        }
    }
    if !plan::improves(&before, &after, req.goal) {
        return Ok(());
    }
    if req.flags & uapi::DEFRAG_DRY_RUN != 0 {
        req.extents_after = after.extents();
        req.moved_blocks = after.blocks();
        return Ok(());
    }

    let step = u64::from(unit_pages) << (bindings::PAGE_SHIFT - blkbits);
    let mut lblk = range.start;
    let mut res = Ok(());
    let mut busy = 0;
    while lblk < data_end {
        if ext4::signal_pending() {
            res = Err(EINTR);
            break;
        }
        let len = step.min(data_end - lblk);
        let (moved, r) = ext4::move_extents(file, &donor, lblk as u32, len as u32);
        req.moved_blocks += moved;
        match r {
            Ok(()) => {
                lblk += len;
                busy = 0;
            }
            // A page dirty, under I/O or with busy buffers (a writer at
            // work): go on after what was moved, written back, a little
            // later.
            Err(e) if e.to_errno() == EBUSY.to_errno() && busy < MAX_BUSY_RETRIES => {
                busy += 1;
                // Dirty pages cannot be swapped: write them back first.
                // On failure, stop as for any error: the tree is still
                // shrunk and the out fields filled below.
                match after_data_blocks(&inode, lblk, lblk + len, moved)
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
            Err(e) => {
                res = Err(e);
                break;
            }
        }
    }
    drop(donor);
    if req.moved_blocks > 0 {
        // A tree that held thousands of extents keeps its blocks and depth
        // after the move; make it as shallow as the extents left allow.
        inode.shrink_extent_tree()?;
    }
    req.extents_after = count_extents(&inode, range)?.extents();
    res
}
