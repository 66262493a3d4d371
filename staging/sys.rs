// SPDX-License-Identifier: GPL-2.0

//! Small kernel facilities the 7.3 kernel crate lacks: device numbers, capabilities, task
//! allocation scopes, jiffies, `cond_resched` and module references.
//!
//! bindgen emits no function-like macros and no static inline functions, so these are
//! written here, each next to the C definition it mirrors.

use kernel::bindings;

/// `MINORBITS` from `include/linux/kdev_t.h`.
pub(crate) const MINORBITS: u32 = bindings::MINORBITS;
/// `DISK_MAX_PARTS` from `include/linux/blkdev.h`.
pub(crate) const DISK_MAX_PARTS: u32 = bindings::DISK_MAX_PARTS;
/// `BLK_MQ_MAX_DEPTH` from `include/linux/blk-mq.h`.
pub(crate) const BLK_MQ_MAX_DEPTH: u32 = bindings::BLK_MQ_MAX_DEPTH;
/// The block major of loop devices (`LOOP_MAJOR`, `include/uapi/linux/major.h`).
pub(crate) const LOOP_MAJOR: u32 = bindings::LOOP_MAJOR;
/// The misc minor of `/dev/loop-control` (`LOOP_CTRL_MINOR`, `include/linux/miscdevice.h`).
pub(crate) const LOOP_CTRL_MINOR: i32 = bindings::LOOP_CTRL_MINOR as i32;
/// `PAGE_SIZE`.
pub(crate) const PAGE_SIZE: u32 = bindings::PAGE_SIZE as u32;
/// `CONFIG_BLK_DEV_LOOP_MIN_COUNT`: the devices created at load by default.
pub(crate) const LOOP_MIN_COUNT: i32 = bindings::CONFIG_BLK_DEV_LOOP_MIN_COUNT as i32;
/// `HZ`: jiffies per second.
pub(crate) const HZ: u64 = bindings::HZ as u64;

/// `MINOR(dev)` from `include/linux/kdev_t.h`.
pub(crate) const fn minor(dev: u32) -> u32 {
    dev & ((1 << MINORBITS) - 1)
}

/// `MAJOR(dev)` from `include/linux/kdev_t.h`.
pub(crate) const fn major(dev: u32) -> u32 {
    dev >> MINORBITS
}

/// `huge_encode_dev` from `include/linux/kdev_t.h`: the user-space encoding of a `dev_t`.
pub(crate) const fn huge_encode_dev(dev: u32) -> u64 {
    let (major, minor) = (major(dev) as u64, minor(dev) as u64);
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

/// Whether the current task has `CAP_SYS_ADMIN` (`capable(CAP_SYS_ADMIN)`).
pub(crate) fn capable_sys_admin() -> bool {
    // SAFETY: `capable` only reads the current task's credentials.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as i32) }
}

/// Sets `flags` in `current->flags` and returns which of them were set before.
fn current_flags_set(flags: u32) -> u32 {
    // SAFETY: `current` is valid, and only the task itself writes its own `flags`.
    unsafe {
        let task = bindings::get_current();
        let old = (*task).flags;
        (*task).flags = old | flags;
        old & flags
    }
}

/// Restores `flags` in `current->flags` to `saved` (a result of `current_flags_set`).
fn current_flags_restore(flags: u32, saved: u32) {
    // SAFETY: As in `current_flags_set`.
    unsafe {
        let task = bindings::get_current();
        (*task).flags = ((*task).flags & !flags) | saved;
    }
}

/// A scope in which some of the current task's `PF_*` flags are set; on drop they are
/// restored to what they were (`memalloc_noio_save`/`_restore` and the like).
///
/// # Invariants
///
/// Made and dropped by the same task, in last-in first-out order with other scopes;
/// `saved` holds which of `flags` were set before.
pub(crate) struct TaskFlags {
    flags: u32,
    saved: u32,
    /// A scope belongs to its task.
    _not_send: core::marker::PhantomData<*mut ()>,
}

impl TaskFlags {
    fn set(flags: u32) -> Self {
        // INVARIANT: `current_flags_set` returns which of `flags` were set.
        Self {
            flags,
            saved: current_flags_set(flags),
            _not_send: core::marker::PhantomData,
        }
    }

    /// Allocations of this task start no I/O (`memalloc_noio_save`).
    pub(crate) fn noio() -> Self {
        Self::set(bindings::PF_MEMALLOC_NOIO)
    }

    /// A worker doing loop I/O: `PF_LOCAL_THROTTLE | PF_MEMALLOC_NOIO`, as C
    /// `loop_process_work`.
    pub(crate) fn loop_worker() -> Self {
        Self::set(bindings::PF_LOCAL_THROTTLE | bindings::PF_MEMALLOC_NOIO)
    }
}

impl Drop for TaskFlags {
    fn drop(&mut self) {
        current_flags_restore(self.flags, self.saved);
    }
}

/// The current time in jiffies.
pub(crate) fn jiffies() -> u64 {
    // SAFETY: `jiffies` is always valid; a volatile read is what C's `jiffies` macro does.
    unsafe { core::ptr::read_volatile(&raw const bindings::jiffies) as u64 }
}

/// Yields the CPU if a reschedule is due (`cond_resched`).
///
/// Only for process context: the callers are work items, which hold no spinlock here.
pub(crate) fn cond_resched() {
    // SAFETY: `__cond_resched` may be called from any process context that may sleep; a
    // caller in atomic context would be a bug that `might_sleep` debugging reports.
    unsafe { bindings::__cond_resched() };
}

/// A reference on this module (`__module_get`), dropped with `module_put`.
///
/// # Invariants
///
/// Holds one reference on `THIS_MODULE`.
pub(crate) struct ModuleRef(());

impl ModuleRef {
    /// Takes a reference; the caller already holds one (an open device), as C assumes.
    pub(crate) fn get() -> Self {
        // SAFETY: `THIS_MODULE` is valid while the module's code runs.
        unsafe { bindings::__module_get(this_module()) };
        // INVARIANT: Taken just above.
        Self(())
    }
}

impl Drop for ModuleRef {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we hold a reference, taken in `get`.
        unsafe { bindings::module_put(this_module()) };
    }
}

/// `THIS_MODULE`.
pub(super) fn this_module() -> *mut bindings::module {
    kernel::module::this_module::<crate::LocalModule>().as_ptr()
}

#[kernel::macros::kunit_tests(rust_loop_sys)]
mod tests {
    use super::*;

    #[test]
    fn encode_dev() {
        // 7:0 and 259:300 encode like the C macro.
        assert_eq!(huge_encode_dev(7 << MINORBITS), 0x700);
        assert_eq!(huge_encode_dev((259 << MINORBITS) | 300), 0x11032c);
    }

    #[test]
    fn major_minor() {
        let dev = (7 << MINORBITS) | 42;
        assert_eq!(major(dev), 7);
        assert_eq!(minor(dev), 42);
    }
}
