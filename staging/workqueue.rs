// SPDX-License-Identifier: GPL-2.0

//! A workqueue owned by one driver object.
//!
//! Stands in for an owned `alloc_workqueue`/`destroy_workqueue` pair, which the 7.3 kernel
//! crate lacks (`kernel::workqueue` only offers the system queues and borrowed ones).
//!
//! C header: [`include/linux/workqueue.h`](srctree/include/linux/workqueue.h).

use core::ptr::NonNull;
use kernel::{
    bindings,
    prelude::*,
    workqueue, //
};

/// An unbound, freezable workqueue named `<prefix><number>`, destroyed on drop
/// (`alloc_workqueue("%s%d", WQ_UNBOUND | WQ_FREEZABLE, 0, prefix, number)`).
///
/// # Invariants
///
/// `0` is a live workqueue owned by this value.
pub(crate) struct OwnedQueue(NonNull<bindings::workqueue_struct>);

// SAFETY: Workqueues may be used and destroyed from any thread.
unsafe impl Send for OwnedQueue {}
// SAFETY: `&OwnedQueue` only enqueues and flushes, which the workqueue synchronises.
unsafe impl Sync for OwnedQueue {}

impl OwnedQueue {
    /// A new queue named `prefix` followed by `number` (`loop0`).
    pub(crate) fn new(prefix: &'static CStr, number: u32) -> Result<Self> {
        let number = i32::try_from(number).map_err(|_| EINVAL)?;
        // SAFETY: The format is static and its two conversions get a NUL-terminated string
        // and an `int`; the name is copied into the workqueue.
        let wq = unsafe {
            bindings::alloc_workqueue_noprof(
                c"%s%d".as_char_ptr(),
                bindings::wq_flags_WQ_UNBOUND | bindings::wq_flags_WQ_FREEZABLE,
                0,
                prefix.as_char_ptr(),
                number,
            )
        };
        // INVARIANT: Non-null means a new workqueue, now ours.
        NonNull::new(wq).map(Self).ok_or(ENOMEM)
    }

    /// The queue, to enqueue work items on.
    pub(crate) fn queue(&self) -> &workqueue::Queue {
        // SAFETY: By the type invariant the workqueue lives as long as `self`.
        unsafe { workqueue::Queue::from_raw(self.0.as_ptr()) }
    }

    /// Waits for every queued work item to finish (`flush_workqueue`).
    pub(crate) fn flush(&self) {
        // SAFETY: By the type invariant the workqueue is live.
        unsafe { bindings::__flush_workqueue(self.0.as_ptr()) };
    }
}

impl Drop for OwnedQueue {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the workqueue is live and ours. `destroy_workqueue`
        // drains it first; its owner never drops it from one of its own work items (the
        // loop device flushes it in `Operations::deleted`, before its last reference goes).
        unsafe { bindings::destroy_workqueue(self.0.as_ptr()) };
    }
}
