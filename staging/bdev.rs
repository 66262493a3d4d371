// SPDX-License-Identifier: GPL-2.0

//! A block device (`struct block_device`): a disk or one of its partitions, borrowed for a
//! call, the mode it was opened with, and an exclusive claim on it.
//!
//! Stands in for the block-device side of the block layer, which the 7.3 kernel crate does
//! not wrap at all.
//!
//! C header: [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h).

use super::gen_disk::DiskRef;
use kernel::{
    bindings,
    error::to_result,
    ffi::c_void,
    prelude::*,
    types::Opaque, //
};

/// The `blk_mode_t` a block device was opened with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpenMode(bindings::blk_mode_t);

impl OpenMode {
    /// `BLK_OPEN_WRITE` (checked against the C value in `loop_helpers.c`).
    const WRITE: bindings::blk_mode_t = 1 << 1;
    /// `BLK_OPEN_EXCL` (checked in `loop_helpers.c`).
    const EXCL: bindings::blk_mode_t = 1 << 2;

    pub(super) fn from_raw(mode: bindings::blk_mode_t) -> Self {
        Self(mode)
    }

    /// Whether the device was opened for writing.
    pub(crate) fn write(self) -> bool {
        self.0 & Self::WRITE != 0
    }

    /// Whether the device was opened exclusively (`O_EXCL`).
    pub(crate) fn exclusive(self) -> bool {
        self.0 & Self::EXCL != 0
    }

    /// The same mode without `BLK_OPEN_EXCL`: what an exclusive opener of one partition
    /// has on the whole disk (nothing exclusive).
    pub(crate) fn shared(self) -> Self {
        Self(self.0 & !Self::EXCL)
    }
}

/// A block device (a disk or a partition) borrowed for the duration of a call.
///
/// # Invariants
///
/// The wrapped `block_device` is valid, and open (so its disk is alive), for as long as a
/// `&BlockDevice` lives.
#[repr(transparent)]
pub(crate) struct BlockDevice(Opaque<bindings::block_device>);

impl BlockDevice {
    /// # Safety
    ///
    /// `bdev` must be a valid, open block device for the lifetime `'a`.
    pub(super) unsafe fn from_raw<'a>(bdev: *mut bindings::block_device) -> &'a Self {
        // INVARIANT: Guaranteed by the caller.
        // SAFETY: Transparent wrapper; the caller guarantees validity.
        unsafe { &*bdev.cast() }
    }

    fn as_raw(&self) -> *mut bindings::block_device {
        self.0.get()
    }

    /// The disk the device belongs to.
    pub(crate) fn disk(&self) -> &DiskRef {
        // SAFETY: By the type invariant the device is open, which keeps its disk alive.
        unsafe { DiskRef::from_raw((*self.as_raw()).bd_disk) }
    }

    /// The device number.
    pub(crate) fn dev(&self) -> u32 {
        // SAFETY: By the type invariant the device is valid; `bd_dev` is immutable.
        unsafe { (*self.as_raw()).bd_dev }
    }

    /// Writes back the device's dirty page cache (`sync_blockdev`).
    pub(crate) fn sync(&self) {
        // SAFETY: By the type invariant the device is valid. Errors are ignored, as in C
        // loop.
        unsafe { bindings::sync_blockdev(self.as_raw()) };
    }

    /// Drops the device's clean page cache (`invalidate_bdev`).
    pub(crate) fn invalidate(&self) {
        // SAFETY: By the type invariant the device is valid.
        unsafe { bindings::invalidate_bdev(self.as_raw()) };
    }

    /// Claims the device exclusively for `holder` until the guard drops, unless `mode` is
    /// already exclusive (`bd_prepare_to_claim` / `bd_abort_claiming`).
    pub(crate) fn claim(&self, mode: OpenMode, holder: &'static ClaimHolder) -> Result<Claim<'_>> {
        if mode.exclusive() {
            // INVARIANT: Nothing claimed, nothing to release.
            return Ok(Claim {
                bdev: self,
                holder: None,
            });
        }
        let raw = holder.as_raw();
        // SAFETY: By the type invariant the device is valid; `raw` is a unique static address.
        to_result(unsafe { bindings::bd_prepare_to_claim(self.as_raw(), raw, core::ptr::null()) })?;
        // INVARIANT: The claim was prepared just above.
        Ok(Claim {
            bdev: self,
            holder: Some(raw),
        })
    }
}

/// A unique static address that identifies a driver as the holder of a claim.
pub(crate) struct ClaimHolder {
    /// Not zero-sized, so that every holder has an address of its own.
    _unique: u8,
}

impl ClaimHolder {
    /// A holder; each `static` of this type is a distinct holder.
    pub(crate) const fn new() -> Self {
        Self { _unique: 0 }
    }

    fn as_raw(&'static self) -> *mut c_void {
        core::ptr::from_ref(self).cast_mut().cast()
    }
}

/// An exclusive claim on a block device; released on drop.
///
/// # Invariants
///
/// If `holder` is set, `bd_prepare_to_claim(bdev, holder)` succeeded and was not aborted.
pub(crate) struct Claim<'a> {
    bdev: &'a BlockDevice,
    holder: Option<*mut c_void>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if let Some(holder) = self.holder {
            // SAFETY: By the type invariant the claim was prepared with this holder.
            unsafe { bindings::bd_abort_claiming(self.bdev.as_raw(), holder) };
        }
    }
}
