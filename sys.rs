// SPDX-License-Identifier: GPL-2.0

//! Constants and tiny C inlines that `kernel::bindings` lacks.
//!
//! bindgen emits no `#define X ((__force type)...)` macros and no static inline functions, so
//! the few the driver needs are written here, each next to the C definition it mirrors.

use kernel::bindings;

/// `MINORBITS` from `include/linux/kdev_t.h`.
pub(crate) const MINORBITS: u32 = bindings::MINORBITS;
/// `DISK_MAX_PARTS` from `include/linux/blkdev.h`.
pub(crate) const DISK_MAX_PARTS: u32 = bindings::DISK_MAX_PARTS;
/// The block major of loop devices.
pub(crate) const LOOP_MAJOR: u32 = bindings::LOOP_MAJOR;
/// The misc minor of `/dev/loop-control`.
pub(crate) const LOOP_CTRL_MINOR: i32 = bindings::LOOP_CTRL_MINOR as i32;
/// `SECTOR_SIZE`.
pub(crate) const SECTOR_SIZE: u32 = 512;

/// `BLK_MQ_F_STACKING`: the queue sits on top of other block devices or files.
pub(crate) const BLK_MQ_F_STACKING: u32 = bindings::BLK_MQ_F_STACKING;
/// `BLK_MQ_F_NO_SCHED_BY_DEFAULT`: no I/O scheduler unless the user asks for one.
pub(crate) const BLK_MQ_F_NO_SCHED_BY_DEFAULT: u32 = bindings::BLK_MQ_F_NO_SCHED_BY_DEFAULT;

/// `GD_SUPPRESS_PART_SCAN`, a bit number in `gendisk::state`.
pub(crate) const GD_SUPPRESS_PART_SCAN: u32 = bindings::GD_SUPPRESS_PART_SCAN;

/// `FMODE_WRITE` from `include/linux/fs.h`.
pub(crate) const FMODE_WRITE: u32 = 1 << 1;

/// `FMODE_CAN_ODIRECT`: the file supports `O_DIRECT`.
pub(crate) const FMODE_CAN_ODIRECT: u32 = 1 << 22;

/// `IOCB_DIRECT`.
pub(crate) const IOCB_DIRECT: i32 = bindings::IOCB_DIRECT as i32;
/// `IOCB_DSYNC` (`RWF_DSYNC`): the write is durable when it completes.
pub(crate) const IOCB_DSYNC: i32 = 0x2;
/// `IOCB_SYNC` (`RWF_SYNC`): as `IOCB_DSYNC`, metadata included.
pub(crate) const IOCB_SYNC: i32 = 0x4;

/// `PAGE_SIZE`.
pub(crate) const PAGE_SIZE: u32 = bindings::PAGE_SIZE as u32;

/// `FALLOC_FL_KEEP_SIZE` from `include/uapi/linux/falloc.h`.
pub(crate) const FALLOC_FL_KEEP_SIZE: i32 = 0x01;
/// `FALLOC_FL_PUNCH_HOLE`.
pub(crate) const FALLOC_FL_PUNCH_HOLE: i32 = 0x02;
/// `FALLOC_FL_ZERO_RANGE`.
pub(crate) const FALLOC_FL_ZERO_RANGE: i32 = 0x10;

/// `__GFP_IO | __GFP_FS`: what a loop backing file's page cache must not recurse into.
pub(crate) const GFP_IO_FS: u32 = (1 << bindings::___GFP_IO_BIT) | (1 << bindings::___GFP_FS_BIT);

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

/// `S_ISBLK(mode)`.
pub(crate) const fn s_isblk(mode: u32) -> bool {
    mode & bindings::S_IFMT == bindings::S_IFBLK
}

/// `S_ISREG(mode)`.
pub(crate) const fn s_isreg(mode: u32) -> bool {
    mode & bindings::S_IFMT == bindings::S_IFREG
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

/// `memalloc_noio_save`: allocations of this task must not start I/O until restored.
pub(crate) fn memalloc_noio_save() -> u32 {
    current_flags_set(bindings::PF_MEMALLOC_NOIO)
}

/// `memalloc_noio_restore`.
pub(crate) fn memalloc_noio_restore(saved: u32) {
    current_flags_restore(bindings::PF_MEMALLOC_NOIO, saved)
}

/// A worker's task flags while it does loop I/O (`PF_LOCAL_THROTTLE | PF_MEMALLOC_NOIO`, as
/// C `loop_process_work`); restored on drop.
pub(crate) struct IoTaskFlags(u32);

const IO_TASK_FLAGS: u32 = bindings::PF_LOCAL_THROTTLE | bindings::PF_MEMALLOC_NOIO;

impl IoTaskFlags {
    /// Sets the flags on the current task.
    pub(crate) fn set() -> Self {
        Self(current_flags_set(IO_TASK_FLAGS))
    }
}

impl Drop for IoTaskFlags {
    fn drop(&mut self) {
        current_flags_restore(IO_TASK_FLAGS, self.0);
    }
}

/// The current time in jiffies.
pub(crate) fn jiffies() -> u64 {
    // SAFETY: `jiffies` is always valid; a volatile read is what C's `jiffies` macro does.
    unsafe { core::ptr::read_volatile(&raw const bindings::jiffies) as u64 }
}

/// Yields the CPU if a reschedule is due (`cond_resched`).
pub(crate) fn cond_resched() {
    // SAFETY: Called from process context without spinlocks held.
    unsafe { bindings::__cond_resched() };
}

/// A reference on this module (`__module_get`), dropped with `module_put`.
pub(crate) struct ModuleRef(());

impl ModuleRef {
    /// Takes a reference; the caller already holds one (an open device), as C assumes.
    pub(crate) fn get() -> Self {
        // SAFETY: `THIS_MODULE` is valid while the module's code runs.
        unsafe { bindings::__module_get(this_module()) };
        Self(())
    }
}

impl Drop for ModuleRef {
    fn drop(&mut self) {
        // SAFETY: Pairs with the `__module_get` in `get`.
        unsafe { bindings::module_put(this_module()) };
    }
}

/// `THIS_MODULE`.
pub(crate) fn this_module() -> *mut bindings::module {
    kernel::module::this_module::<crate::LocalModule>().as_ptr()
}

#[allow(improper_ctypes)]
extern "C" {
    /// `kiocb_start_write`, from `loop_helpers.c`.
    pub(crate) fn rust_loop_kiocb_start_write(iocb: *mut bindings::kiocb);
    /// `kiocb_end_write`, from `loop_helpers.c`.
    pub(crate) fn rust_loop_kiocb_end_write(iocb: *mut bindings::kiocb);
    /// `vfs_statfs(&file->f_path)`'s `f_bsize`, from `loop_helpers.c`.
    pub(crate) fn rust_loop_file_bsize(file: *mut bindings::file, bsize: *mut u32) -> i32;
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
}
