// SPDX-License-Identifier: GPL-2.0

//! A mutex whose lock a fatal signal can interrupt (`mutex_lock_killable`).
//!
//! Stands in for `Mutex::lock_killable`, which the 7.3 kernel crate lacks (and cannot be
//! added from outside: `Lock` does not expose its raw state). Loop takes its configuration
//! locks this way in the ioctl paths, so that a task stuck behind a hung backing store can
//! be killed.
//!
//! C header: [`include/linux/mutex.h`](srctree/include/linux/mutex.h).

use core::{
    cell::UnsafeCell,
    marker::{
        PhantomData,
        PhantomPinned, //
    },
    pin::Pin,
};
use kernel::{
    bindings,
    prelude::*,
    sync::LockClassKey,
    types::Opaque, //
};

/// One safe wrapper per C trampoline of `loop_helpers.c`.
mod helpers {
    use kernel::bindings;

    extern "C" {
        fn rust_loop_mutex_lock_killable(lock: *mut bindings::mutex) -> i32;
    }

    /// `mutex_lock_killable` (a macro under lockdep, hence the trampoline): 0 with the lock
    /// held, or `-EINTR` without it.
    ///
    /// # Safety
    ///
    /// `lock` must be an initialised mutex that stays valid during the call.
    pub(super) unsafe fn mutex_lock_killable(lock: *mut bindings::mutex) -> i32 {
        // SAFETY: Guaranteed by the caller.
        unsafe { rust_loop_mutex_lock_killable(lock) }
    }
}

/// A kernel `struct mutex` protecting a `T`, lockable killably.
///
/// # Invariants
///
/// `mutex` was initialised by `__mutex_init` and is not moved; `data` is only accessed
/// through a [`KillableGuard`], which exists only while `mutex` is held.
#[pin_data]
pub(crate) struct KillableMutex<T> {
    #[pin]
    mutex: Opaque<bindings::mutex>,
    data: UnsafeCell<T>,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: The mutex may be used and dropped from any thread; `T` moves with it.
unsafe impl<T: Send> Send for KillableMutex<T> {}
// SAFETY: `data` is only reached under the mutex (type invariant), one thread at a time.
unsafe impl<T: Send> Sync for KillableMutex<T> {}

impl<T> KillableMutex<T> {
    /// A mutex holding `data`, of lock class `key` named `name` (as `new_mutex!`).
    pub(crate) fn new(
        data: T,
        name: &'static CStr,
        key: Pin<&'static LockClassKey>,
    ) -> impl PinInit<Self> {
        pin_init!(Self {
            data: UnsafeCell::new(data),
            // INVARIANT: Initialised here, pinned with `self`.
            // SAFETY: `slot` is valid for writes and pinned; `name` and `key` are static.
            mutex <- unsafe {
                Opaque::ffi_init(|slot: *mut bindings::mutex| {
                    bindings::__mutex_init(slot, name.as_char_ptr(), key.as_ptr())
                })
            },
            _pin: PhantomPinned,
        })
    }

    /// Takes the lock, waiting as long as it takes (`mutex_lock`).
    pub(crate) fn lock(&self) -> KillableGuard<'_, T> {
        // SAFETY: By the type invariant the mutex is initialised and pinned.
        unsafe { bindings::mutex_lock(self.mutex.get()) };
        // INVARIANT: The lock was taken just above.
        KillableGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    /// Takes the lock unless a fatal signal arrives first (`mutex_lock_killable`): `EINTR`.
    pub(crate) fn lock_killable(&self) -> Result<KillableGuard<'_, T>> {
        // SAFETY: By the type invariant the mutex is initialised and pinned.
        if unsafe { helpers::mutex_lock_killable(self.mutex.get()) } != 0 {
            return Err(EINTR);
        }
        // INVARIANT: The lock was taken just above.
        Ok(KillableGuard {
            lock: self,
            _not_send: PhantomData,
        })
    }
}

/// The lock of a [`KillableMutex`], held; released on drop.
///
/// # Invariants
///
/// `lock.mutex` is held by the current task for as long as this value lives.
#[must_use = "the lock is released when the guard is dropped"]
pub(crate) struct KillableGuard<'a, T> {
    lock: &'a KillableMutex<T>,
    /// A mutex is released by the task that took it.
    _not_send: PhantomData<*mut ()>,
}

impl<T> core::ops::Deref for KillableGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: By the type invariant the lock is held, so nobody else accesses `data`.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> core::ops::DerefMut for KillableGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: By the type invariant the lock is held, and `&mut self` makes this the only
        // reference through the guard.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for KillableGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the lock is held by this task.
        unsafe { bindings::mutex_unlock(self.lock.mutex.get()) };
    }
}
