// SPDX-License-Identifier: GPL-2.0

//! RAII registration with ext4's ioctl hook (`include/linux/ext4_hook.h`).

use crate::ext4::File;
use core::{marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings,
    error::to_result,
    ffi::{c_long, c_uint, c_ulong},
    prelude::*,
};

/// What handles the hooked commands: ext4 calls [`IoctlHandler::ioctl`]
/// through a trampoline that owns the one `unsafe` step (turning the raw
/// file into a [`File`]), so a handler is ordinary safe code.
pub(crate) trait IoctlHandler {
    /// Handles command `cmd` on `file`; `arg` is the user's argument (a
    /// user pointer, already converted for 32-bit callers).
    fn ioctl(file: &File<'_>, cmd: u32, arg: usize) -> Result;
}

/// The function ext4 calls for a hooked command.
///
/// # Safety
///
/// `filp` must be an open file of an ext4 filesystem that the caller holds
/// for the length of the call (what ext4 passes).
unsafe extern "C" fn trampoline<H: IoctlHandler>(
    filp: *mut bindings::file,
    cmd: c_uint,
    arg: c_ulong,
) -> c_long {
    // SAFETY: ext4 passes the file it is handling and keeps it open for the
    // call (function safety requirement).
    let file = unsafe { File::from_raw(filp) };
    match H::ioctl(&file, cmd, arg) {
        Ok(()) => 0,
        Err(e) => e.to_errno() as c_long,
    }
}

/// The module's ops table, registered while this value lives.
///
/// ext4 reads the table under RCU to take a reference on `owner`, and
/// after that only while that reference pins this module. The table goes
/// when this value is dropped, in the module's exit, which cannot run while
/// a call holds a reference; unregistering also waits for an RCU grace
/// period, so no reader is between the lookup and the reference either.
///
/// # Invariants
///
/// `ops` comes from [`KBox::into_raw`] and is registered with ext4 from
/// `new` until `drop` unregisters it and frees it. (A raw pointer, not the
/// box: moving a box would assert it is the only reference, while ext4
/// holds one.)
pub(crate) struct Registration<H: IoctlHandler> {
    ops: NonNull<bindings::ext4_ioctl_hook>,
    _handler: PhantomData<H>,
}

impl<H: IoctlHandler> Registration<H> {
    /// Registers `H` as the handler of the hooked commands; `module` (the
    /// module `H` belongs to) is pinned by ext4 for the length of each call.
    /// `EBUSY` if another module holds the hook.
    pub(crate) fn new(module: &'static ThisModule) -> Result<Self> {
        let ops = KBox::new(
            bindings::ext4_ioctl_hook {
                owner: module.as_ptr(),
                ioctl: Some(trampoline::<H>),
            },
            GFP_KERNEL,
        )?;
        let ops = KBox::into_raw(ops);
        // SAFETY: `ops` is a valid table that stays allocated until `drop`
        // unregisters it (or until the failed registration below returns);
        // `owner` is this module.
        if let Err(e) = to_result(unsafe { bindings::ext4_register_ioctl_hook(ops) }) {
            // SAFETY: from `KBox::into_raw` above, and ext4 did not keep it.
            drop(unsafe { KBox::from_raw(ops) });
            return Err(e);
        }
        Ok(Self {
            // SAFETY: `KBox::into_raw` never returns null.
            ops: unsafe { NonNull::new_unchecked(ops) },
            _handler: PhantomData,
        })
    }
}

// SAFETY: the table is never touched through `Registration` after `new`
// but by `drop`; ext4 reads it as described on the type, whichever thread
// owns the `Registration`. The module pointer in it is only an address to
// this code.
unsafe impl<H: IoctlHandler> Send for Registration<H> {}
// SAFETY: `Registration` has no methods that use the table through `&self`.
unsafe impl<H: IoctlHandler> Sync for Registration<H> {}

impl<H: IoctlHandler> Drop for Registration<H> {
    fn drop(&mut self) {
        // SAFETY: `ops` was registered in `new` (type invariant). The call
        // waits for an RCU grace period, and the module is exiting, so no
        // call holds a reference to it: nothing can read `ops` when the box
        // is freed after this.
        unsafe { bindings::ext4_unregister_ioctl_hook(self.ops.as_ptr()) };
        // SAFETY: from `KBox::into_raw` (type invariant); ext4 no longer
        // holds it.
        drop(unsafe { KBox::from_raw(self.ops.as_ptr()) });
    }
}
