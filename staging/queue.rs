// SPDX-License-Identifier: GPL-2.0

//! A request queue (`struct request_queue`): its limits, updated atomically, and freezing.
//!
//! Stands in for queue-limits and freeze control, which the 7.3 kernel crate has only at
//! disk creation (`GenDiskBuilder`), not at runtime.
//!
//! C header: [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h).

use super::sys::TaskFlags;
use kernel::{
    bindings,
    error::to_result,
    prelude::*,
    types::Opaque, //
};

/// A request queue borrowed for the duration of a call.
///
/// # Invariants
///
/// The wrapped `request_queue` is valid for as long as a `&Queue` lives.
#[repr(transparent)]
pub(crate) struct Queue(Opaque<bindings::request_queue>);

/// `BLK_FEAT_WRITE_CACHE` (checked against the C value in `loop_helpers.c`).
const BLK_FEAT_WRITE_CACHE: u32 = 1 << 0;
/// `BLK_FEAT_ROTATIONAL`.
const BLK_FEAT_ROTATIONAL: u32 = bindings::BLK_FEAT_ROTATIONAL;

impl Queue {
    /// # Safety
    ///
    /// `q` must be valid for the lifetime `'a`.
    pub(super) unsafe fn from_raw<'a>(q: *mut bindings::request_queue) -> &'a Self {
        // INVARIANT: Guaranteed by the caller.
        // SAFETY: Transparent wrapper; the caller guarantees validity.
        unsafe { &*q.cast() }
    }

    fn as_raw(&self) -> *mut bindings::request_queue {
        self.0.get()
    }

    /// The current logical block size.
    pub(crate) fn logical_block_size(&self) -> u32 {
        // SAFETY: By the type invariant the queue is valid. `limits` is only replaced as a
        // whole under `limits_lock`; a racy read of one field is what C's
        // `queue_logical_block_size` does too.
        unsafe { core::ptr::read_volatile(&raw const (*self.as_raw()).limits.logical_block_size) }
    }

    /// The current maximum discard size in sectors (`bdev_max_discard_sectors`).
    pub(crate) fn max_discard_sectors(&self) -> u32 {
        // SAFETY: As in `logical_block_size`.
        unsafe { core::ptr::read_volatile(&raw const (*self.as_raw()).limits.max_discard_sectors) }
    }

    /// Starts a limits update (`queue_limits_start_update`): takes `limits_lock` and copies
    /// the current limits.
    pub(crate) fn start_limits_update(&self) -> LimitsUpdate<'_> {
        // SAFETY: By the type invariant the queue is valid; `limits_lock` is initialised with
        // it.
        unsafe { bindings::mutex_lock(&raw mut (*self.as_raw()).limits_lock) };
        // INVARIANT: The lock was taken just above.
        LimitsUpdate {
            q: self,
            // SAFETY: The limits are stable while `limits_lock` is held.
            lim: unsafe { core::ptr::read(&raw const (*self.as_raw()).limits) },
            done: false,
        }
    }

    /// Starts a limits update if `limits_lock` is free (`mutex_trylock`), for a context that
    /// must not wait for it: one a freeze may be waiting for.
    pub(crate) fn try_start_limits_update(&self) -> Option<LimitsUpdate<'_>> {
        // SAFETY: By the type invariant the queue is valid; `limits_lock` is initialised with
        // it.
        if unsafe { bindings::mutex_trylock(&raw mut (*self.as_raw()).limits_lock) } == 0 {
            return None;
        }
        // INVARIANT: The lock was taken just above.
        Some(LimitsUpdate {
            q: self,
            // SAFETY: The limits are stable while `limits_lock` is held.
            lim: unsafe { core::ptr::read(&raw const (*self.as_raw()).limits) },
            done: false,
        })
    }

    /// Freezes the queue: waits for every request to end and holds new ones back until the
    /// guard drops (`blk_mq_freeze_queue`, with the task in NOIO scope meanwhile).
    pub(crate) fn freeze(&self) -> Freeze<'_> {
        let noio = TaskFlags::noio();
        // SAFETY: By the type invariant the queue is valid.
        unsafe { bindings::blk_mq_freeze_queue_nomemsave(self.as_raw()) };
        // INVARIANT: Frozen just above.
        Freeze {
            q: self,
            _noio: noio,
        }
    }
}

/// An update of a queue's limits in progress; dropping it without committing cancels it.
///
/// # Invariants
///
/// `q.limits_lock` is held unless `done`.
pub(crate) struct LimitsUpdate<'a> {
    q: &'a Queue,
    lim: bindings::queue_limits,
    done: bool,
}

impl LimitsUpdate<'_> {
    /// Sets the logical and physical block size and the minimum I/O size to `bsize`.
    pub(crate) fn set_block_size(&mut self, bsize: u32) {
        self.lim.logical_block_size = bsize;
        self.lim.physical_block_size = bsize;
        self.lim.io_min = bsize;
    }

    /// Sets the memory alignment mask of the data buffers (`dma_alignment`).
    pub(crate) fn set_dma_alignment(&mut self, mask: u32) {
        self.lim.dma_alignment = mask;
    }

    /// Sets or clears `BLK_FEAT_WRITE_CACHE`: the device has a volatile cache to flush.
    pub(crate) fn set_write_cache(&mut self, on: bool) {
        self.set_feature(BLK_FEAT_WRITE_CACHE, on);
    }

    /// Sets or clears `BLK_FEAT_ROTATIONAL`.
    pub(crate) fn set_rotational(&mut self, on: bool) {
        self.set_feature(BLK_FEAT_ROTATIONAL, on);
    }

    fn set_feature(&mut self, feature: u32, on: bool) {
        if on {
            self.lim.features |= feature;
        } else {
            self.lim.features &= !feature;
        }
    }

    /// Sets the discard limits: the largest discard in sectors (0: no discard) and the
    /// granularity in bytes.
    pub(crate) fn set_discard(&mut self, max_sectors: u32, granularity: u32) {
        self.lim.max_hw_discard_sectors = max_sectors;
        self.lim.discard_granularity = granularity;
    }

    /// Sets the largest write-zeroes in sectors (0: no write-zeroes).
    pub(crate) fn set_max_write_zeroes_sectors(&mut self, max_sectors: u32) {
        self.lim.max_write_zeroes_sectors = max_sectors;
    }

    /// Validates and applies the new limits (`queue_limits_commit_update`).
    pub(crate) fn commit(mut self) -> Result {
        self.done = true;
        // SAFETY: By the type invariant `limits_lock` is held; the function releases it.
        to_result(unsafe { bindings::queue_limits_commit_update(self.q.as_raw(), &mut self.lim) })
    }
}

impl Drop for LimitsUpdate<'_> {
    fn drop(&mut self) {
        if !self.done {
            // SAFETY: By the type invariant `limits_lock` is held (`queue_limits_cancel_update`).
            unsafe { bindings::mutex_unlock(&raw mut (*self.q.as_raw()).limits_lock) };
        }
    }
}

/// A frozen queue; unfrozen on drop.
///
/// # Invariants
///
/// `q` was frozen by [`Queue::freeze`] and not unfrozen yet.
pub(crate) struct Freeze<'a> {
    q: &'a Queue,
    /// Restored after the unfreeze (fields drop after `drop` runs).
    _noio: TaskFlags,
}

impl Drop for Freeze<'_> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the queue is frozen by us.
        unsafe { bindings::blk_mq_unfreeze_queue_nomemrestore(self.q.as_raw()) };
    }
}
