// SPDX-License-Identifier: GPL-2.0

//! RAII registration with ext4's ioctl hook (`include/linux/ext4_hook.h`).

use kernel::{
    bindings,
    error::to_result,
    ffi::{c_long, c_uint, c_ulong},
    prelude::*,
};

/// The C signature ext4 calls for a hooked command.
pub(crate) type IoctlFn =
    unsafe extern "C" fn(filp: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long;

/// The module's ops table, registered while this value lives.
///
/// # Invariants
///
/// `ops` is registered with ext4 from `new` until `drop` unregisters it; the
/// box keeps its address stable for that time.
pub(crate) struct Registration {
    ops: KBox<bindings::ext4_ioctl_hook>,
}

impl Registration {
    /// Registers `ioctl` as the handler of the hooked commands; `module` is
    /// pinned by ext4 for the length of each call. `EBUSY` if another module
    /// holds the hook.
    pub(crate) fn new(module: &'static ThisModule, ioctl: IoctlFn) -> Result<Self> {
        let ops = KBox::new(
            bindings::ext4_ioctl_hook {
                owner: module.as_ptr(),
                ioctl: Some(ioctl),
            },
            GFP_KERNEL,
        )?;
        // SAFETY: `ops` is a valid table whose address stays fixed until
        // `drop` unregisters it; `owner` is this module.
        to_result(unsafe { bindings::ext4_register_ioctl_hook(&*ops) })?;
        Ok(Self { ops })
    }
}

// SAFETY: the table is only read, by ext4 under RCU, while registered; the
// module pointer in it is an address, never dereferenced by this module.
// Moving or sharing the owner of the box across threads is harmless.
unsafe impl Send for Registration {}
// SAFETY: see above, `Registration` has no methods that touch the table
// through `&self`.
unsafe impl Sync for Registration {}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: `ops` was registered in `new` (type invariant). The call
        // waits for an RCU grace period, so no caller can still read `ops`
        // when the box is freed after it.
        unsafe { bindings::ext4_unregister_ioctl_hook(&*self.ops) };
    }
}
