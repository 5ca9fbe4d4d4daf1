// SPDX-License-Identifier: GPL-2.0

//! Small safe wrappers around the raw `file`, `inode` and the ext4
//! primitives exported by the test kernel's patch.

use crate::placement::Run;
use core::{marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings,
    error::{from_err_ptr, to_result},
    prelude::*,
};

/// `FMODE_READ` and `FMODE_WRITE` (`include/linux/fs.h`; bindgen cannot
/// see through their `__force` casts).
const FMODE_READ: u32 = 0x1;
const FMODE_WRITE: u32 = 0x2;

/// `POSIX_FADV_WILLNEED` (`include/uapi/linux/fadvise.h`; not in the
/// bindings, a plain define).
const POSIX_FADV_WILLNEED: i32 = 3;

/// A file ext4 handed to the module, borrowed for one ioctl call.
///
/// # Invariants
///
/// `ptr` points to a valid `struct file` of an ext4 filesystem for `'a`.
pub(crate) struct File<'a> {
    ptr: NonNull<bindings::file>,
    _life: PhantomData<&'a bindings::file>,
}

impl<'a> File<'a> {
    /// # Safety
    ///
    /// `ptr` must be a valid ext4 file that stays open for `'a`.
    pub(crate) unsafe fn from_raw(ptr: *mut bindings::file) -> Self {
        Self {
            // SAFETY: valid, hence non-null (function safety requirement).
            ptr: unsafe { NonNull::new_unchecked(ptr) },
            _life: PhantomData,
        }
    }

    /// Writes back and waits for all dirty data of the file, so delayed
    /// allocations get their blocks. Reports a write-back error without
    /// consuming it: the application's next `fsync` on this file still
    /// sees it.
    pub(crate) fn write_back(&self) -> Result {
        self.write_back_range(0, i64::MAX)
    }

    /// Writes back and waits for the dirty data in bytes `start..=end`;
    /// reports a write-back error as [`File::write_back`] does.
    pub(crate) fn write_back_range(&self, start: i64, end: i64) -> Result {
        // The inode's mapping, not the file: writing back through the file
        // would advance its write-back error cursor, and the application's
        // next fsync() would miss an error met here.
        // SAFETY: the inode of an open file (type invariant) is valid and
        // its `i_mapping` is set for its life; the call takes what locks it
        // needs.
        to_result(unsafe {
            bindings::filemap_write_and_wait_range(
                (*self.inode().ptr.as_ptr()).i_mapping,
                start,
                end,
            )
        })
    }

    /// Starts reading bytes `start..start + len` of the file into the page
    /// cache (`POSIX_FADV_WILLNEED`), in calls of at most what one
    /// read-ahead call reads (`force_page_cache_ra` caps each at the
    /// larger of the read-ahead window and the device's largest request),
    /// so that each call is one large request. Only advice, so its errors
    /// are of no use.
    pub(crate) fn read_ahead(&self, start: i64, len: i64) {
        let chunk = (self.read_ahead_max_pages() << bindings::PAGE_SHIFT) as i64;
        let end = start.saturating_add(len);
        let mut at = start;
        while at < end {
            let n = chunk.min(end - at);
            // SAFETY: `ptr` is a valid open file (type invariant); the call
            // takes what locks it needs and keeps no reference to the file.
            let _ = unsafe { bindings::vfs_fadvise(self.ptr.as_ptr(), at, n, POSIX_FADV_WILLNEED) };
            at += n;
        }
    }

    /// The pages one read-ahead call reads at most: the larger of its
    /// device's read-ahead window and largest request.
    fn read_ahead_max_pages(&self) -> u64 {
        // SAFETY: `ptr` is a valid open file (type invariant); its inode
        // and the inode's superblock live while it is open, and a mounted
        // superblock's `s_bdi` is set (or null, which is checked); both
        // counts are plain integers, read once.
        let (ra, io) = unsafe {
            let bdi = (*(*(*self.ptr.as_ptr()).f_inode).i_sb).s_bdi;
            if bdi.is_null() {
                (0, 0)
            } else {
                ((*bdi).ra_pages, (*bdi).io_pages)
            }
        };
        (ra.max(io) as u64).max(1)
    }

    /// Whether the file was opened for both reading and writing.
    pub(crate) fn is_read_write(&self) -> bool {
        // SAFETY: `ptr` is valid (type invariant); `f_mode` is fixed at open.
        let mode = unsafe { (*self.ptr.as_ptr()).f_mode };
        mode & (FMODE_READ | FMODE_WRITE) == FMODE_READ | FMODE_WRITE
    }

    /// Takes write access to the file's mount (`EROFS` on a read-only one)
    /// until the returned guard is dropped.
    pub(crate) fn write_access(&self) -> Result<WriteAccess<'_, 'a>> {
        // SAFETY: `ptr` is a valid open file (type invariant).
        to_result(unsafe { bindings::mnt_want_write_file(self.ptr.as_ptr()) })?;
        Ok(WriteAccess { file: self })
    }

    /// The raw pointer, for the primitives that take a `struct file`.
    pub(crate) fn as_ptr(&self) -> *mut bindings::file {
        self.ptr.as_ptr()
    }

    /// The inode the file is open on.
    pub(crate) fn inode(&self) -> Inode<'a> {
        // SAFETY: `ptr` is valid (type invariant); an open file's `f_inode`
        // is set and pinned by the file for as long as it is open.
        let ptr = unsafe { (*self.ptr.as_ptr()).f_inode };
        Inode {
            // SAFETY: see above, `f_inode` of an open file is not null.
            ptr: unsafe { NonNull::new_unchecked(ptr) },
            _life: PhantomData,
        }
    }
}

/// Write access to a file's mount, released on drop. What changes blocks
/// (moving extents, shrinking the tree, allocating for a donor) takes it,
/// so that it cannot be called without.
///
/// # Invariants
///
/// `mnt_want_write_file` succeeded on `file`; the matching release is in
/// `drop`, once.
pub(crate) struct WriteAccess<'f, 'a> {
    file: &'f File<'a>,
}

impl<'a> WriteAccess<'_, 'a> {
    /// The file's inode.
    pub(crate) fn inode(&self) -> Inode<'a> {
        self.file.inode()
    }

    /// Swaps `len` blocks of the file from logical block `lblk` with the
    /// donor's blocks from `donor_lblk` (at the same offset in a page),
    /// page by page with journaling (holes in the file are skipped).
    /// Returns the blocks moved and the result, both also when it stops
    /// early. The caller made the checks of `EXT4_IOC_MOVE_EXT`.
    pub(crate) fn move_extents(
        &self,
        donor: &Donor,
        lblk: u32,
        donor_lblk: u32,
        len: u32,
    ) -> (u64, Result) {
        let mut moved = 0u64;
        // SAFETY: both are valid open ext4 files (type invariants of `File`
        // and `Donor`); write access to the mount is held (type invariant).
        let res = to_result(unsafe {
            bindings::ext4_hook_move_extents(
                self.file.as_ptr(),
                donor.ptr.as_ptr(),
                lblk,
                donor_lblk,
                len,
                &mut moved,
            )
        });
        (moved, res)
    }

    /// Makes the file's extent tree as shallow as its extents, merged,
    /// allow: in the inode, or in one leaf block, freeing the other tree
    /// blocks. Returns whether it changed the tree.
    pub(crate) fn shrink_extent_tree(&self) -> Result<bool> {
        let inode = self.file.inode();
        // SAFETY: `inode.ptr` is a valid ext4 inode (type invariant of
        // `Inode`); the call takes the inode's locks itself, none are held
        // here; write access to the mount is held (type invariant).
        let ret = unsafe { bindings::ext4_hook_shrink_extent_tree(inode.ptr.as_ptr()) };
        to_result(ret)?;
        Ok(ret == 1)
    }
}

impl Drop for WriteAccess<'_, '_> {
    fn drop(&mut self) {
        // SAFETY: `mnt_want_write_file` succeeded on this open file in
        // `File::write_access`; this is its one matching release.
        unsafe { bindings::mnt_drop_write_file(self.file.as_ptr()) };
    }
}

/// Reads a field of an [`Inode`] once (`READ_ONCE`): other CPUs write
/// these fields under locks this module does not hold, so no Rust
/// reference to the inode is ever made, only single volatile loads.
macro_rules! read_once {
    ($inode:expr, $($field:tt)+) => {
        // SAFETY: `ptr` is valid for `'a` (type invariant of `Inode`); the
        // field is a plain, aligned integer or pointer, so a volatile load
        // of it cannot tear or read freed memory.
        unsafe { core::ptr::addr_of!((*$inode.ptr.as_ptr()).$($field)+).read_volatile() }
    };
}

/// An ext4 inode held by an open [`File`].
///
/// # Invariants
///
/// `ptr` points to a valid ext4 inode for `'a`.
pub(crate) struct Inode<'a> {
    ptr: NonNull<bindings::inode>,
    _life: PhantomData<&'a bindings::inode>,
}

/// State of a run of logical blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MapState {
    /// Not allocated.
    Hole,
    /// Allocated and written.
    Mapped,
    /// Allocated, reads as zeroes.
    Unwritten,
    /// Dirty in the page cache, allocation pending.
    Delayed,
}

impl MapState {
    /// Decodes `enum ext4_hook_map_state`.
    pub(crate) fn from_raw(raw: u32) -> Result<Self> {
        match raw {
            bindings::ext4_hook_map_state_EXT4_HOOK_MAP_HOLE => Ok(Self::Hole),
            bindings::ext4_hook_map_state_EXT4_HOOK_MAP_MAPPED => Ok(Self::Mapped),
            bindings::ext4_hook_map_state_EXT4_HOOK_MAP_UNWRITTEN => Ok(Self::Unwritten),
            bindings::ext4_hook_map_state_EXT4_HOOK_MAP_DELAYED => Ok(Self::Delayed),
            _ => Err(EIO),
        }
    }
}

/// Where a run of logical blocks is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mapping {
    /// First physical block, 0 unless mapped or unwritten.
    pub(crate) pblk: u64,
    /// Blocks in the run, at least 1.
    pub(crate) len: u32,
    /// What the run is.
    pub(crate) state: MapState,
}

impl Inode<'_> {
    /// Looks up logical block `lblk` (without allocating), reporting the
    /// run of at most `max_len` blocks that starts there.
    pub(crate) fn map_block(&self, lblk: u32, max_len: u32) -> Result<Mapping> {
        let mut raw = bindings::ext4_hook_map::default();
        // SAFETY: `ptr` is a valid ext4 inode (type invariant) and `raw` a
        // valid place for the result.
        to_result(unsafe {
            bindings::ext4_hook_map_block(self.ptr.as_ptr(), lblk, max_len, &mut raw)
        })?;
        Ok(Mapping {
            pblk: raw.pblk,
            len: raw.len,
            state: MapState::from_raw(raw.state)?,
        })
    }

    /// Is this the same inode as `other`?
    pub(crate) fn is(&self, other: &Inode<'_>) -> bool {
        self.ptr == other.ptr
    }

    /// Links to the inode: 0 for an unlinked (temporary) file.
    pub(crate) fn nlink(&self) -> u32 {
        // Both fields of the union are the same `c_uint`.
        read_once!(self, __bindgen_anon_1.i_nlink)
    }

    /// File type and permission bits.
    pub(crate) fn mode(&self) -> u32 {
        u32::from(read_once!(self, i_mode))
    }

    /// The VFS inode flags (`S_IMMUTABLE`, `S_SWAPFILE`, ...).
    pub(crate) fn vfs_flags(&self) -> u32 {
        read_once!(self, i_flags)
    }

    /// log2 of the block size.
    pub(crate) fn blkbits(&self) -> u32 {
        u32::from(read_once!(self, i_blkbits))
    }

    /// Size in bytes (`i_size_read()`, through the helper patch 0001 adds:
    /// an acquire load on 64-bit, a seqcount read on 32-bit SMP).
    pub(crate) fn size(&self) -> u64 {
        // SAFETY: `ptr` is a valid inode for `'a` (type invariant);
        // `i_size_read` only reads its size.
        let size = unsafe { bindings::i_size_read(self.ptr.as_ptr()) };
        size.max(0) as u64
    }

    /// Commits the running transaction of the filesystem and waits for it.
    pub(crate) fn force_commit(&self) -> Result {
        // SAFETY: `ptr` is a valid ext4 inode (type invariant); the call
        // only waits for the journal, no locks are required or held.
        to_result(unsafe { bindings::ext4_hook_force_commit(self.ptr.as_ptr()) })
    }

    /// Calls `f` for each free run of blocks in `start..end` as the block
    /// allocator sees it, in ascending order (cut at block group ends).
    /// Stops with `EINTR` on a fatal signal.
    pub(crate) fn free_runs<F: FnMut(Run)>(&self, start: u64, end: u64, mut f: F) -> Result {
        /// Calls the closure behind `priv_` with one run.
        ///
        /// # Safety
        ///
        /// `priv_` must point to a live `G`.
        unsafe extern "C" fn trampoline<G: FnMut(Run)>(
            pblk: u64,
            len: u32,
            priv_: *mut kernel::ffi::c_void,
        ) -> kernel::ffi::c_int {
            // SAFETY: `priv_` is the `&mut F` passed below, alive and not
            // otherwise borrowed during the walk (function safety
            // requirement).
            let f = unsafe { &mut *priv_.cast::<G>() };
            f(Run {
                start: pblk,
                len: len.into(),
            });
            0
        }
        // SAFETY: `ptr` is a valid ext4 inode (type invariant); the callback
        // matches `ext4_hook_free_fn` and gets a pointer to `f`, which
        // outlives the call; the walk calls it only before returning.
        to_result(unsafe {
            bindings::ext4_hook_free_runs(
                self.ptr.as_ptr(),
                start,
                end,
                Some(trampoline::<F>),
                (&mut f as *mut F).cast(),
            )
        })
    }

    /// Filesystem geometry and the ext4 properties of this inode.
    pub(crate) fn info(&self) -> Ext4Info {
        let mut raw = bindings::ext4_hook_info::default();
        // SAFETY: `ptr` is a valid ext4 inode (type invariant), `raw` a valid
        // place for the result.
        unsafe { bindings::ext4_hook_inode_info(self.ptr.as_ptr(), &mut raw) };
        Ext4Info {
            blocks_count: raw.blocks_count,
            first_data_block: raw.first_data_block,
            blocks_per_group: raw.blocks_per_group,
            extents: raw.flags & bindings::EXT4_HOOK_EXTENTS != 0,
            inline_data: raw.flags & bindings::EXT4_HOOK_INLINE_DATA != 0,
            journal_data: raw.flags & bindings::EXT4_HOOK_JOURNAL_DATA != 0,
            bigalloc: raw.flags & bindings::EXT4_HOOK_BIGALLOC != 0,
            no_journal: raw.flags & bindings::EXT4_HOOK_NO_JOURNAL != 0,
            writeback_data: raw.flags & bindings::EXT4_HOOK_WRITEBACK_DATA != 0,
        }
    }
}

/// What [`Inode::info`] reports.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ext4Info {
    pub(crate) blocks_count: u64,
    pub(crate) first_data_block: u64,
    pub(crate) blocks_per_group: u32,
    pub(crate) extents: bool,
    pub(crate) inline_data: bool,
    pub(crate) journal_data: bool,
    pub(crate) bigalloc: bool,
    /// Mounted without a journal: nothing orders a move against a crash.
    pub(crate) no_journal: bool,
    /// Blocks freed from this file's data are free for other writers at
    /// once, before the freeing transaction commits (`data=writeback`).
    pub(crate) writeback_data: bool,
}

/// A temporary, unlinked regular file on the same filesystem as a given
/// file: an orphan from birth, so a crash at any point frees its blocks at
/// the next mount. Closed (and so freed) on drop.
///
/// # Invariants
///
/// `ptr` is a file this value holds a reference to, open read-write.
pub(crate) struct Donor {
    ptr: NonNull<bindings::file>,
    /// A lent donor's size before the call: truncated back to it on drop
    /// (see [`Donor::restore_on_drop`]).
    restore_size: Option<i64>,
    /// A lent donor is claimed for the call (`ext4_hook_claim_donor`),
    /// released on drop.
    claimed: bool,
}

impl Donor {
    /// Creates the donor in the directory that holds `file`, with the
    /// caller's credentials (so it needs write access there, as a donor
    /// file made from userspace would).
    ///
    /// A file opened by handle (`open_by_handle_at`) can have a
    /// disconnected dentry, its own parent: the donor is made in the root
    /// directory of the file's mount then. A file that is itself the root
    /// of its mount (a single-file bind mount) has no directory on that
    /// mount: `EXDEV` (a caller can lend a donor instead). The donor
    /// cannot be linked into the filesystem (`O_EXCL`), and drops the
    /// flags it inherits from its directory that would make it differ
    /// from a plain file (data journaling, sync); a DAX donor gives
    /// `EOPNOTSUPP`.
    pub(crate) fn new(file: &File<'_>) -> Result<Self> {
        // SAFETY: `file` is a valid open file; its `f_path` is pinned while
        // it is open.
        let fpath = unsafe { (*file.as_ptr()).f_path };
        // The root of a single-file bind mount: its parent lies outside the
        // mount, a directory the caller may not reach through it.
        // SAFETY: the mount is pinned by `file`.
        if fpath.dentry == unsafe { (*fpath.mnt).mnt_root } {
            return Err(EXDEV);
        }
        // SAFETY: `fpath.dentry` is a valid dentry; `dget_parent` returns a
        // referenced, valid parent.
        let parent = unsafe { bindings::dget_parent(fpath.dentry) };
        let dentry = if parent == fpath.dentry {
            // SAFETY: the mount is pinned by `file`, and its root dentry by
            // the mount, for as long as the donor is made.
            unsafe { (*fpath.mnt).mnt_root }
        } else {
            parent
        };
        let dir = bindings::path {
            mnt: fpath.mnt,
            dentry,
        };
        // The mount's idmap as `mnt_idmap()` (an inline) reads it: an
        // acquire load, pairing with the release that an idmapped mount's
        // setup stores it with.
        // SAFETY: the mount is pinned by `file`; `mnt_idmap` is an aligned
        // pointer field the kernel only loads and stores whole.
        let idmap = unsafe {
            core::sync::atomic::AtomicPtr::from_ptr(core::ptr::addr_of_mut!((*fpath.mnt).mnt_idmap))
        }
        .load(core::sync::atomic::Ordering::Acquire);
        // SAFETY: `dir` is a valid path (mount pinned by `file`, dentry
        // referenced above or pinned by the mount); the idmap of a live
        // mount is valid while it is; the cred of the current task is valid
        // while it runs.
        let res = from_err_ptr(unsafe {
            bindings::kernel_tmpfile_open(
                idmap,
                &dir,
                (bindings::S_IFREG | 0o600) as bindings::umode_t,
                (bindings::O_RDWR | bindings::O_LARGEFILE | bindings::O_EXCL) as i32,
                (*bindings::get_current()).cred,
            )
        });
        // SAFETY: drops the reference `dget_parent` took.
        unsafe { bindings::dput(parent) };
        let donor = Self {
            // SAFETY: `from_err_ptr` let through a valid file pointer.
            ptr: unsafe { NonNull::new_unchecked(res?) },
            restore_size: None,
            claimed: false,
        };
        // SAFETY: the donor is a new, empty ext4 file this value holds;
        // the call takes the inode lock itself.
        to_result(unsafe { bindings::ext4_hook_plain_donor(donor.inode().ptr.as_ptr()) })?;
        Ok(donor)
    }

    /// The caller's donor, file descriptor `fd`: an unlinked regular file
    /// on `file`'s filesystem (not `file` itself), open read-write, and
    /// claimed for this call (`EBUSY` while another call uses it; see
    /// `ext4_hook_claim_donor`). What any donor must be besides, and where
    /// its blocks go (past its end, which must be a hole), is for the
    /// caller to check.
    pub(crate) fn from_fd(file: &File<'_>, fd: u32) -> Result<Self> {
        // SAFETY: `fget` looks `fd` up in the current task's table and
        // returns a referenced file, or null.
        let ptr = NonNull::new(unsafe { bindings::fget(fd) }).ok_or(EBADF)?;
        // From here on, dropping `donor` drops the reference.
        let mut donor = Self {
            ptr,
            restore_size: None,
            claimed: false,
        };
        // Only a file on `file`'s filesystem is known to be ext4: compare
        // the superblocks on the raw files, before any `File` or `Inode`
        // view of the donor (whose invariants claim ext4).
        // SAFETY: both are open files (`fget`'s reference, and `file`'s
        // invariant), so their `f_inode` and its `i_sb` are valid and
        // fixed while they are open.
        let same_fs =
            unsafe { (*(*ptr.as_ptr()).f_inode).i_sb == (*(*file.as_ptr()).f_inode).i_sb };
        if !same_fs {
            return Err(EXDEV);
        }
        let (d, o) = (donor.inode(), file.inode());
        if d.is(&o) || d.mode() & bindings::S_IFMT != bindings::S_IFREG || d.nlink() != 0 {
            return Err(EINVAL);
        }
        if !donor.file().is_read_write() {
            return Err(EBADF);
        }
        // SAFETY: the donor is an open ext4 file (same superblock as
        // `file`); the call takes the inode lock itself.
        to_result(unsafe { bindings::ext4_hook_claim_donor(d.ptr.as_ptr()) })?;
        donor.claimed = true;
        // What else it must be, a made donor too: `defrag::check_donor`.
        Ok(donor)
    }

    /// Truncates the donor back to `size` bytes when it is dropped (after
    /// the call's write access: the truncate takes its own), so that a
    /// lent donor keeps none of the blocks a failed call allocated in it.
    /// [`Donor::keep`] undoes it.
    pub(crate) fn restore_on_drop(&mut self, size: u64) {
        self.restore_size = Some(i64::try_from(size).unwrap_or(i64::MAX));
    }

    /// Keeps what the call left in the donor (the old blocks of a move).
    pub(crate) fn keep(&mut self) {
        self.restore_size = None;
    }

    /// The donor as a borrowed [`File`].
    fn file(&self) -> File<'_> {
        // SAFETY: `ptr` is an open file this value holds a reference to
        // (type invariant), so it stays open while borrowed, and an ext4
        // file: made here, or checked to be on the caller's ext4 file's
        // filesystem before any use (`from_fd`).
        unsafe { File::from_raw(self.ptr.as_ptr()) }
    }

    /// The donor's inode.
    pub(crate) fn inode(&self) -> Inode<'_> {
        self.file().inode()
    }

    /// Allocates unwritten blocks for logical blocks `lblk..lblk + len`
    /// (inside a hole) exactly at physical block `goal` (non-zero, the run
    /// inside one block group), and grows the size to cover them. Returns
    /// the run, or `ENOSPC` when part of it is no longer free. Needs write
    /// access to the mount (the donor's is the file's).
    pub(crate) fn alloc_at(
        &self,
        _write: &WriteAccess<'_, '_>,
        lblk: u32,
        len: u32,
        goal: u64,
    ) -> Result<Mapping> {
        let mut raw = bindings::ext4_hook_map::default();
        // SAFETY: `ptr` is an open file (type invariant), so its `f_inode` is
        // a valid ext4 inode; `raw` is a valid place for the result.
        to_result(unsafe {
            bindings::ext4_hook_alloc_blocks(
                (*self.ptr.as_ptr()).f_inode,
                lblk,
                len,
                goal,
                &mut raw,
            )
        })?;
        Ok(Mapping {
            pblk: raw.pblk,
            len: raw.len,
            state: MapState::from_raw(raw.state)?,
        })
    }
}

impl Drop for Donor {
    fn drop(&mut self) {
        // Only a donor that grew: its owner may have truncated it meanwhile.
        if let Some(size) = self
            .restore_size
            .filter(|&s| self.inode().size() > s as u64)
        {
            // SAFETY: `ptr` is an open file (type invariant), so its
            // `f_path` is a valid, pinned path; `vfs_truncate` takes the
            // write access, locks and permission checks it needs, and no
            // lock of the call is held any more.
            let r = unsafe { bindings::vfs_truncate(&(*self.ptr.as_ptr()).f_path, size) };
            if r != 0 {
                pr_warn!("lent donor not truncated back after a failed call: {r}\n");
            }
        }
        if self.claimed {
            // SAFETY: the donor is an open ext4 file (type invariant) this
            // value claimed; no lock of the call is held any more.
            unsafe { bindings::ext4_hook_release_donor(self.inode().ptr.as_ptr()) };
        }
        // SAFETY: drops the reference this value holds (type invariant); the
        // last one of a donor made here evicts the orphan and frees its
        // blocks.
        unsafe { bindings::fput(self.ptr.as_ptr()) };
    }
}

/// Whether the current task has a signal pending.
pub(crate) fn signal_pending() -> bool {
    kernel::current!().signal_pending()
}

/// Lets other tasks run if this one has used its share (long loops of
/// quick steps, such as one per extent of a file with millions).
///
/// As `cond_resched()` (an inline, which bindgen cannot see) does: with
/// full preemption and no run-time choice of it (`CONFIG_PREEMPTION`
/// without `CONFIG_PREEMPT_DYNAMIC`) the kernel preempts a long loop by
/// itself and has no `__cond_resched` to call.
pub(crate) fn cond_resched() {
    #[cfg(any(not(CONFIG_PREEMPTION), CONFIG_PREEMPT_DYNAMIC))]
    // SAFETY: called from process context (an ioctl) without spinlocks
    // held, where rescheduling is allowed.
    unsafe {
        bindings::__cond_resched()
    };
}

/// Sleeps for `ms` milliseconds.
pub(crate) fn sleep_ms(ms: u32) {
    // SAFETY: called from process context (an ioctl) without spinlocks
    // held, where sleeping is allowed.
    unsafe { bindings::msleep(ms) }
}

/// Whether the current task may steer the allocator (`CAP_SYS_ADMIN`).
pub(crate) fn may_set_goal() -> bool {
    // SAFETY: plain capability check of the current task.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as i32) }
}
