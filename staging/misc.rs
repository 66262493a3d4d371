// SPDX-License-Identifier: GPL-2.0

//! A misc character device with a fixed minor.
//!
//! Stands in for `kernel::miscdevice::MiscDeviceRegistration`, which in 7.3 always asks for
//! a dynamic minor, but `/dev/loop-control` has the well-known minor 237 (`LOOP_CTRL_MINOR`), which `mknod`-based setups rely on. This is the
//! same registration with the minor chosen by the caller and an ioctl-only file.
//!
//! C header: [`include/linux/miscdevice.h`](srctree/include/linux/miscdevice.h).

use core::marker::PhantomData;
use kernel::{
    bindings,
    error::to_result,
    ffi::{
        c_long,
        c_uint,
        c_ulong, //
    },
    prelude::*,
    types::Opaque,
};

/// What an ioctl-only misc device does.
pub(crate) trait MiscOps: 'static {
    /// Handles an ioctl, from a native or a 32-bit task alike.
    fn ioctl(cmd: u32, arg: usize) -> Result<isize>;
}

/// A registered misc device; deregistered on drop.
///
/// # Invariants
///
/// `inner` is registered with `misc_register` for as long as this value lives.
#[pin_data(PinnedDrop)]
pub(crate) struct MiscRegistration<T: MiscOps> {
    #[pin]
    inner: Opaque<bindings::miscdevice>,
    _p: PhantomData<T>,
}

// SAFETY: The registration is only touched by `misc_register`/`misc_deregister`, which lock.
unsafe impl<T: MiscOps> Send for MiscRegistration<T> {}
// SAFETY: `&MiscRegistration` gives no access to the C structure.
unsafe impl<T: MiscOps> Sync for MiscRegistration<T> {}

/// `init`, with its error passed through `f` (for a diagnostic): the `map_err` that
/// `pin_init` lacks.
pub(crate) fn map_init_err<U, E>(
    init: impl PinInit<U, E>,
    f: impl FnOnce(E) -> E,
) -> impl PinInit<U, E> {
    // SAFETY: The closure initialises the slot exactly when `init` does (same slot, same
    // pinning), and returns an error, leaving it uninitialised, exactly when `init` does.
    unsafe { pin_init::pin_init_from_closure(move |slot| init.__init(slot).map_err(f)) }
}

impl<T: MiscOps> MiscRegistration<T> {
    /// Registers the device `name` with the given `minor`.
    pub(crate) fn register(minor: i32, name: &'static CStr) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            inner <- Opaque::try_ffi_init(move |slot: *mut bindings::miscdevice| {
                let misc = bindings::miscdevice {
                    minor,
                    name: name.as_char_ptr(),
                    fops: &FileOps::<T>::FOPS,
                    ..pin_init::zeroed()
                };
                // SAFETY: `slot` is valid for writes.
                unsafe { slot.write(misc) };
                // SAFETY: `slot` is filled in and pinned; it is deregistered in `drop` before
                // its memory goes away.
                // INVARIANT: On success the device is registered.
                to_result(unsafe { bindings::misc_register(slot) })
            }),
            _p: PhantomData,
        })
    }
}

#[pinned_drop]
impl<T: MiscOps> PinnedDrop for MiscRegistration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant the device is registered.
        unsafe { bindings::misc_deregister(self.inner.get()) };
    }
}

struct FileOps<T>(PhantomData<T>);

impl<T: MiscOps> FileOps<T> {
    const FOPS: bindings::file_operations = bindings::file_operations {
        owner: kernel::module::this_module::<crate::LocalModule>().as_ptr(),
        open: Some(bindings::nonseekable_open),
        llseek: Some(bindings::noop_llseek),
        unlocked_ioctl: Some(Self::ioctl),
        compat_ioctl: Some(Self::ioctl),
        ..pin_init::zeroed()
    };

    /// # Safety
    ///
    /// Called by the VFS for an open file of the device (the arguments are not used beyond
    /// their values).
    unsafe extern "C" fn ioctl(_file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
        match T::ioctl(cmd, arg) {
            Ok(v) => v as c_long,
            Err(e) => e.to_errno() as c_long,
        }
    }
}
