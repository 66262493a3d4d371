// SPDX-License-Identifier: GPL-2.0

//! The callbacks of a disk: `blk_mq_ops` and `block_device_operations`.
//!
//! Stands in for `kernel::block::mq::Operations`, which in 7.3 has no per-request data
//! constructor, no `->complete` with an owned request, and no `block_device_operations`
//! hooks (open, release, ioctl, compat_ioctl). Each C callback turns its raw pointers into
//! typed views in a few lines and calls the safe trait method.
//!
//! C headers: [`include/linux/blk-mq.h`](srctree/include/linux/blk-mq.h),
//! [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h).

use super::{
    bdev::{
        BlockDevice,
        OpenMode, //
    },
    gen_disk::{
        DiskRef,
        ReleasingDisk, //
    },
    request::{
        BlkError,
        Request, //
    },
};
use core::marker::PhantomData;
use kernel::{
    bindings,
    ffi::{
        c_int,
        c_uint,
        c_ulong, //
    },
    prelude::*,
    sync::{
        Arc,
        ArcBorrow, //
    },
};

/// Proof that the code runs in a block-device ioctl of the current task (`fops->ioctl`):
/// not in one of its read, write or seek system calls, so no `fdget_pos` of it is active.
/// Only the ioctl trampolines make one.
pub(crate) struct InIoctl {
    _private: (),
}

/// Callbacks of a disk driven by this layer, implemented by the per-device type.
///
/// `Self` is reached from the C callbacks through `gendisk::private_data` and
/// `request_queue::queuedata`, which both point to the `Arc<Self>` owned by the disk (see
/// [`super::gen_disk::GenDisk`]).
///
/// A module implements it for one type: disks are recognised as `T`'s by their
/// `block_device_operations` (owner and `free_disk`), and two implementations whose
/// `free_disk` code is identical could share one function after merging.
pub(crate) trait Operations: Send + Sync + Sized + 'static {
    /// Per-request driver data (the blk-mq PDU), created once per tag.
    type Pdu: Default + Send + Sync;

    /// Handles one started request in atomic context (`blk_mq_ops::queue_rq`).
    ///
    /// An error hands the request back, to be ended (or retried, for
    /// [`BlkError::RESOURCE`]) by blk-mq.
    fn queue_rq(
        this: ArcBorrow<'_, Self>,
        rq: Request<Self>,
    ) -> Result<(), (Request<Self>, BlkError)>;

    /// Ends a request after [`Request::complete`], in softirq or local context
    /// (`blk_mq_ops::complete`).
    fn complete(rq: Request<Self>);

    /// Called on every open of the disk or one of its partitions (`fops->open`).
    fn open(&self, disk: &DiskRef, mode: OpenMode) -> Result;

    /// Called on the last close of the disk (`fops->release`), with `open_mutex` held.
    fn release(&self, disk: &ReleasingDisk);

    /// Handles a driver ioctl not consumed by the block core (`fops->ioctl`).
    fn ioctl(
        &self,
        bdev: &BlockDevice,
        mode: OpenMode,
        cmd: u32,
        arg: usize,
        ctx: &InIoctl,
    ) -> Result<i32>;

    /// Handles a driver ioctl from a 32-bit task (`fops->compat_ioctl`).
    fn compat_ioctl(
        &self,
        bdev: &BlockDevice,
        mode: OpenMode,
        cmd: u32,
        arg: usize,
        ctx: &InIoctl,
    ) -> Result<i32>;

    /// Called when the disk was deleted: no request or callback but `free_disk` follows.
    fn deleted(&self);
}

/// The C callbacks that dispatch to an [`Operations`] implementation.
pub(super) struct OperationsVTable<T>(PhantomData<T>);

impl<T: Operations> OperationsVTable<T> {
    pub(super) const VTABLE: bindings::blk_mq_ops = bindings::blk_mq_ops {
        queue_rq: Some(Self::queue_rq),
        complete: Some(Self::complete),
        init_request: Some(Self::init_request),
        exit_request: Some(Self::exit_request),
        ..pin_init::zeroed()
    };

    pub(super) const FOPS: bindings::block_device_operations = bindings::block_device_operations {
        owner: kernel::module::this_module::<crate::LocalModule>().as_ptr(),
        open: Some(Self::open),
        release: Some(Self::release),
        ioctl: Some(Self::ioctl),
        compat_ioctl: Some(Self::compat_ioctl),
        free_disk: Some(Self::free_disk),
        ..pin_init::zeroed()
    };

    /// Whether `fops` are this table's: the disk was made by `GenDisk<T>`. The `free_disk`
    /// callback is compared because it is the one function that is unique to `T` and that
    /// every such disk has.
    pub(super) fn is_ours(fops: &bindings::block_device_operations) -> bool {
        fops.owner == Self::FOPS.owner
            && fops.free_disk.map(|f| f as *const ()) == Some(Self::free_disk as *const ())
    }

    /// Gets the device of a disk made by `GenDisk<T>`.
    ///
    /// # Safety
    ///
    /// `disk` must be a valid disk made by `GenDisk::<T>::new` whose `free_disk` has not run,
    /// for the lifetime `'a`.
    pub(super) unsafe fn device<'a>(disk: *mut bindings::gendisk) -> &'a T {
        // SAFETY: By `GenDisk`'s type invariant `private_data` holds an `Arc<T>` reference,
        // released in `free_disk`, which the caller guarantees is later than `'a`.
        unsafe { &*(*disk).private_data.cast::<T>() }
    }

    /// # Safety
    ///
    /// Called by blk-mq with a valid hardware context and queue data.
    unsafe extern "C" fn queue_rq(
        hctx: *mut bindings::blk_mq_hw_ctx,
        bd: *const bindings::blk_mq_queue_data,
    ) -> bindings::blk_status_t {
        // SAFETY: `bd` and its request are valid for this call; the request is ours now.
        let rq = unsafe { (*bd).rq };
        // SAFETY: As above; the request is not started yet.
        unsafe { bindings::blk_mq_start_request(rq) };
        // SAFETY: `queuedata` points to the `T` of the `Arc<T>` the disk owns, which outlives
        // the queue (`GenDisk`'s type invariant).
        let dev = unsafe { ArcBorrow::from_raw((*(*hctx).queue).queuedata.cast::<T>()) };
        // SAFETY: The request was started just above, belongs to a `T` queue, and blk-mq
        // hands its ownership to the driver.
        let rq = unsafe { Request::<T>::from_raw(rq) };
        match T::queue_rq(dev, rq) {
            Ok(()) => bindings::BLK_STS_OK as bindings::blk_status_t,
            Err((rq, status)) => {
                // blk-mq ends or requeues the request itself.
                rq.into_raw();
                status.raw()
            }
        }
    }

    /// # Safety
    ///
    /// Called by blk-mq for a request handed to `blk_mq_complete_request`.
    unsafe extern "C" fn complete(rq: *mut bindings::request) {
        // SAFETY: The request came back from `Request::complete`, which gave up a started
        // request of a `T` queue; blk-mq passes its ownership back.
        T::complete(unsafe { Request::from_raw(rq) });
    }

    /// # Safety
    ///
    /// Called by blk-mq once per request of the tag set, before any use.
    unsafe extern "C" fn init_request(
        _set: *mut bindings::blk_mq_tag_set,
        rq: *mut bindings::request,
        _hctx_idx: c_uint,
        _numa_node: c_int,
    ) -> c_int {
        // SAFETY: The PDU is `cmd_size = size_of::<T::Pdu>()` bytes, suitably aligned (checked
        // in `TagSet::new`) and not initialised yet.
        unsafe {
            bindings::blk_mq_rq_to_pdu(rq)
                .cast::<T::Pdu>()
                .write(T::Pdu::default())
        };
        0
    }

    /// # Safety
    ///
    /// Called by blk-mq once per request of the tag set, after its last use.
    unsafe extern "C" fn exit_request(
        _set: *mut bindings::blk_mq_tag_set,
        rq: *mut bindings::request,
        _hctx_idx: c_uint,
    ) {
        // SAFETY: The PDU was initialised in `init_request` and is not used any more.
        unsafe { core::ptr::drop_in_place(bindings::blk_mq_rq_to_pdu(rq).cast::<T::Pdu>()) };
    }

    /// # Safety
    ///
    /// Called by the block core with a valid disk made by `GenDisk::<T>::new`.
    unsafe extern "C" fn open(disk: *mut bindings::gendisk, mode: bindings::blk_mode_t) -> c_int {
        // SAFETY: The disk is valid for this call and `free_disk` has not run.
        let (dev, disk) = unsafe { (Self::device(disk), DiskRef::from_raw(disk)) };
        match dev.open(disk, OpenMode::from_raw(mode)) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the block core with a valid disk made by `GenDisk::<T>::new`, with the
    /// disk's `open_mutex` held.
    unsafe extern "C" fn release(disk: *mut bindings::gendisk) {
        // SAFETY: The disk is valid for this call, `free_disk` has not run, and the block
        // core holds `open_mutex` until this returns.
        let (dev, disk) = unsafe { (Self::device(disk), ReleasingDisk::from_raw(disk)) };
        dev.release(disk);
    }

    /// Runs `f` for an ioctl on `bdev` and converts its result for C.
    ///
    /// # Safety
    ///
    /// `bdev` must be a valid open block device of a disk made by `GenDisk::<T>::new`.
    unsafe fn dispatch_ioctl(
        bdev: *mut bindings::block_device,
        f: impl FnOnce(&T, &BlockDevice, &InIoctl) -> Result<i32>,
    ) -> c_int {
        // SAFETY: The bdev is open, so it and its disk are valid and `free_disk` has not run.
        let (dev, bdev) = unsafe { (Self::device((*bdev).bd_disk), BlockDevice::from_raw(bdev)) };
        match f(dev, bdev, &InIoctl { _private: () }) {
            Ok(v) => v,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the block core with a valid open block device of a disk made by
    /// `GenDisk::<T>::new`.
    unsafe extern "C" fn ioctl(
        bdev: *mut bindings::block_device,
        mode: bindings::blk_mode_t,
        cmd: c_uint,
        arg: c_ulong,
    ) -> c_int {
        let mode = OpenMode::from_raw(mode);
        // SAFETY: Guaranteed by the caller.
        unsafe { Self::dispatch_ioctl(bdev, |dev, bdev, ctx| dev.ioctl(bdev, mode, cmd, arg, ctx)) }
    }

    /// # Safety
    ///
    /// As for `ioctl`.
    unsafe extern "C" fn compat_ioctl(
        bdev: *mut bindings::block_device,
        mode: bindings::blk_mode_t,
        cmd: c_uint,
        arg: c_ulong,
    ) -> c_int {
        let mode = OpenMode::from_raw(mode);
        // SAFETY: Guaranteed by the caller.
        unsafe {
            Self::dispatch_ioctl(bdev, |dev, bdev, ctx| {
                dev.compat_ioctl(bdev, mode, cmd, arg, ctx)
            })
        }
    }

    /// # Safety
    ///
    /// Called once by `disk_release` for an added disk made by `GenDisk::<T>::new`.
    unsafe extern "C" fn free_disk(disk: *mut bindings::gendisk) {
        // SAFETY: `private_data` holds the `Arc<T>` given to the disk in `GenDisk::new`; this
        // is its last use.
        drop(unsafe { Arc::<T>::from_raw((*disk).private_data.cast()) });
    }
}
