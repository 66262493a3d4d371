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

/// `BLK_MQ_F_STACKING`: the queue sits on top of other block devices or files.
pub(crate) const BLK_MQ_F_STACKING: u32 = bindings::BLK_MQ_F_STACKING;
/// `BLK_MQ_F_NO_SCHED_BY_DEFAULT`: no I/O scheduler unless the user asks for one.
pub(crate) const BLK_MQ_F_NO_SCHED_BY_DEFAULT: u32 = bindings::BLK_MQ_F_NO_SCHED_BY_DEFAULT;

/// `GD_SUPPRESS_PART_SCAN`, a bit number in `gendisk::state`.
pub(crate) const GD_SUPPRESS_PART_SCAN: u32 = bindings::GD_SUPPRESS_PART_SCAN;

/// `MINOR(dev)` from `include/linux/kdev_t.h`.
pub(crate) const fn minor(dev: u32) -> u32 {
    dev & ((1 << MINORBITS) - 1)
}

/// Whether the current task has `CAP_SYS_ADMIN` (`capable(CAP_SYS_ADMIN)`).
pub(crate) fn capable_sys_admin() -> bool {
    // SAFETY: `capable` only reads the current task's credentials.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as i32) }
}
