// SPDX-License-Identifier: GPL-2.0

//! A small safe layer over the blk-mq and gendisk C API, for what `kernel::block::mq` lacks.
//!
//! The in-tree `kernel::block::mq` has no per-request data, no error completion, no
//! `block_device_operations` hooks (open, release, ioctl), no module owner on the disk, no
//! fixed major/minor and no runtime capacity or limits control (see `Documentation/design.rst`).
//! This module provides those pieces with the same shape: a [`TagSet`], a [`GenDisk`] that owns
//! one added disk, borrowed [`DiskRef`]s handed to the [`Operations`] callbacks, and a
//! [`MajorRegistration`] for the block major.
//!
//! C headers: [`include/linux/blk-mq.h`](srctree/include/linux/blk-mq.h),
//! [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h).

use crate::sys;
use core::{
    fmt::{
        self,
        Write, //
    },
    marker::PhantomData,
    pin::Pin,
    ptr::NonNull, //
};
use kernel::{
    bindings,
    error::{
        from_err_ptr,
        to_result, //
    },
    ffi::{
        c_int,
        c_uint,
        c_ulong,
        c_void, //
    },
    prelude::*,
    str::NullTerminatedFormatter,
    sync::Arc,
    types::{
        Opaque,
        ScopeGuard, //
    },
};

/// A failed request: the block status it ends with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlkError(bindings::blk_status_t);

impl From<Error> for BlkError {
    fn from(err: Error) -> Self {
        // SAFETY: `errno_to_blk_status` is a pure table lookup that accepts any value.
        BlkError(unsafe { bindings::errno_to_blk_status(err.to_errno()) })
    }
}

/// The `blk_mode_t` a block device was opened with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpenMode(bindings::blk_mode_t);

impl OpenMode {
    /// `BLK_OPEN_WRITE`.
    const WRITE: bindings::blk_mode_t = 1 << 1;

    /// Whether the device was opened for writing.
    pub(crate) fn write(self) -> bool {
        self.0 & Self::WRITE != 0
    }
}

/// A request handed to [`Operations::queue_rq`].
///
/// # Invariants
///
/// `ptr` points to a started request owned by the driver for the lifetime `'a`.
pub(crate) struct Request<'a> {
    #[expect(dead_code, reason = "the I/O path is not implemented yet")]
    ptr: NonNull<bindings::request>,
    _p: PhantomData<&'a bindings::request>,
}

/// Callbacks of a disk driven by this layer, implemented by the per-device type.
///
/// `Self` is reached from the C callbacks through `gendisk::private_data` and
/// `request_queue::queuedata`, which both point to the `Arc<Self>` owned by the disk.
pub(crate) trait Operations: Send + Sync + Sized + 'static {
    /// Handles one request in atomic context (`blk_mq_ops::queue_rq`, non-blocking tag set).
    ///
    /// The request was started. Returning an error ends it with that status.
    fn queue_rq(&self, rq: Request<'_>) -> Result<(), BlkError>;

    /// Called on every open of the disk or one of its partitions (`fops->open`).
    fn open(&self, disk: &DiskRef, mode: OpenMode) -> Result;

    /// Called on every last close of the disk or a partition (`fops->release`).
    fn release(&self, disk: &DiskRef);

    /// Handles a driver ioctl not consumed by the block core (`fops->ioctl`).
    fn ioctl(&self, disk: &DiskRef, mode: OpenMode, cmd: u32, arg: usize) -> Result<i32>;

    /// Handles a driver ioctl from a 32-bit task (`fops->compat_ioctl`).
    fn compat_ioctl(&self, disk: &DiskRef, mode: OpenMode, cmd: u32, arg: usize) -> Result<i32>;
}

/// A blk-mq tag set with one hardware queue.
///
/// # Invariants
///
/// `inner` was set up by `blk_mq_alloc_tag_set` and is freed on drop.
#[pin_data(PinnedDrop)]
pub(crate) struct TagSet<T: Operations> {
    #[pin]
    inner: Opaque<bindings::blk_mq_tag_set>,
    _p: PhantomData<T>,
}

// SAFETY: The tag set is only handed to the block layer, which synchronises its own use of it.
unsafe impl<T: Operations> Send for TagSet<T> {}
// SAFETY: As above; `&TagSet` exposes nothing but the raw pointer for the block layer.
unsafe impl<T: Operations> Sync for TagSet<T> {}

impl<T: Operations> TagSet<T> {
    /// Allocates a tag set of `queue_depth` tags with the given `BLK_MQ_F_*` flags.
    pub(crate) fn new(queue_depth: u32, flags: u32) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            inner <- Opaque::try_ffi_init(move |slot: *mut bindings::blk_mq_tag_set| {
                let set = bindings::blk_mq_tag_set {
                    ops: &OperationsVTable::<T>::VTABLE,
                    nr_hw_queues: 1,
                    nr_maps: 1,
                    queue_depth,
                    numa_node: bindings::NUMA_NO_NODE,
                    flags,
                    ..pin_init::zeroed()
                };
                // SAFETY: `slot` is valid for writes and pinned.
                unsafe { slot.write(set) };
                // SAFETY: `slot` holds a filled-in tag set; on failure the C function leaves
                // nothing allocated.
                to_result(unsafe { bindings::blk_mq_alloc_tag_set(slot) })
            }),
            _p: PhantomData,
        })
    }

    fn as_raw(&self) -> *mut bindings::blk_mq_tag_set {
        self.inner.get()
    }
}

#[pinned_drop]
impl<T: Operations> PinnedDrop for TagSet<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant the tag set was allocated and is not freed yet; its
        // disk was deleted or put before (see `GenDisk`).
        unsafe { bindings::blk_mq_free_tag_set(self.inner.get()) };
    }
}

/// What a new disk looks like: the `gendisk` fields set before `add_disk`.
pub(crate) struct DiskParams<'a> {
    /// Block major.
    pub(crate) major: u32,
    /// First minor.
    pub(crate) first_minor: u32,
    /// Number of minors (the disk plus its partitions).
    pub(crate) minors: u32,
    /// Disk name.
    pub(crate) name: fmt::Arguments<'a>,
    /// `queue_limits::max_hw_sectors` at allocation.
    pub(crate) max_hw_sectors: u32,
    /// Whether the kernel scans for partitions on its own.
    pub(crate) suppress_part_scan: bool,
}

/// An added disk and the tag set behind it; dropping it deletes the disk.
///
/// # Invariants
///
/// `disk` was added with `device_add_disk` and this value owns the reference from its
/// allocation. Its `private_data` and `queuedata` point to the `T` of an `Arc<T>` whose
/// reference the disk owns and releases in `free_disk`.
pub(crate) struct GenDisk<T: Operations> {
    disk: NonNull<bindings::gendisk>,
    tag_set: Pin<KBox<TagSet<T>>>,
}

// SAFETY: The gendisk is reference counted and its methods used here may be called from any
// thread.
unsafe impl<T: Operations> Send for GenDisk<T> {}
// SAFETY: `&GenDisk` only gives `DiskRef` access, whose methods are thread safe.
unsafe impl<T: Operations> Sync for GenDisk<T> {}

impl<T: Operations> GenDisk<T> {
    /// Allocates a disk on a new tag set, hands it `data` and adds it (`add_disk`).
    pub(crate) fn new(
        tag_set: impl PinInit<TagSet<T>, Error>,
        params: DiskParams<'_>,
        data: Arc<T>,
    ) -> Result<Self> {
        let tag_set = KBox::pin_init(tag_set, GFP_KERNEL)?;
        let mut lim = bindings::queue_limits {
            max_hw_sectors: params.max_hw_sectors,
            ..pin_init::zeroed()
        };
        let data_ptr: *mut c_void = Arc::into_raw(data).cast_mut().cast();
        // SAFETY: `data_ptr` came from `into_raw` just above and its reference was not handed
        // out yet.
        let data_guard =
            ScopeGuard::new(move || drop(unsafe { Arc::<T>::from_raw(data_ptr.cast()) }));
        // SAFETY: The tag set is valid and pinned for longer than the disk (see `Drop`);
        // `lim` is a valid limits structure; the lock class is static.
        let disk = from_err_ptr(unsafe {
            bindings::__blk_mq_alloc_disk(
                tag_set.as_raw(),
                &mut lim,
                data_ptr,
                kernel::static_lock_class!().as_ptr(),
            )
        })?;
        // The disk was never added: `put_disk` frees it and its queue, which needs the tag
        // set, still alive here (dropped after the guard on every return path).
        // SAFETY: `disk` is the new disk, whose allocation reference we own.
        let disk_guard = ScopeGuard::new(move || unsafe { bindings::put_disk(disk) });
        // SAFETY: The disk is not added yet, so nothing else accesses these fields.
        unsafe {
            (*disk).major = params.major as c_int;
            (*disk).first_minor = params.first_minor as c_int;
            (*disk).minors = params.minors as c_int;
            (*disk).fops = &OperationsVTable::<T>::FOPS;
            (*disk).private_data = data_ptr;
            (*disk).events = bindings::DISK_EVENT_MEDIA_CHANGE as u16;
            (*disk).event_flags = bindings::DISK_EVENT_FLAG_UEVENT as u16;
            if params.suppress_part_scan {
                (*disk).state |= 1 << sys::GD_SUPPRESS_PART_SCAN;
            }
        }
        // SAFETY: As above, the name is ours to write until the disk is added.
        let mut name =
            NullTerminatedFormatter::new(unsafe { &mut (*disk).disk_name }).ok_or(EINVAL)?;
        name.write_fmt(params.name)?;
        // SAFETY: The disk is fully set up and not added yet.
        to_result(unsafe {
            bindings::device_add_disk(core::ptr::null_mut(), disk, core::ptr::null_mut())
        })?;
        // From here on `free_disk` releases `data`.
        disk_guard.dismiss();
        data_guard.dismiss();
        // INVARIANT: The disk was added above and holds `data`.
        Ok(Self {
            // SAFETY: `from_err_ptr` returned no error, so `disk` is not null.
            disk: unsafe { NonNull::new_unchecked(disk) },
            tag_set,
        })
    }

    /// A borrowed view of the disk.
    pub(crate) fn as_ref(&self) -> &DiskRef {
        // SAFETY: By the type invariant the disk is valid while `self` lives.
        unsafe { DiskRef::from_raw(self.disk.as_ptr()) }
    }
}

impl<T: Operations> Drop for GenDisk<T> {
    fn drop(&mut self) {
        // Same order as C `loop_remove`: delete the disk (this also exits its queue), free the
        // tag set, then drop our disk reference.
        // SAFETY: By the type invariant the disk was added and not deleted yet.
        unsafe { bindings::del_gendisk(self.disk.as_ptr()) };
        // The tag set is freed when the `Pin<KBox>` field drops, after this function; the
        // queue no longer uses it since `del_gendisk` returned.
        // SAFETY: We own the allocation reference.
        unsafe { bindings::put_disk(self.disk.as_ptr()) };
        let _ = &self.tag_set;
    }
}

/// A disk borrowed from the block layer for the duration of a call.
#[repr(transparent)]
pub(crate) struct DiskRef(Opaque<bindings::gendisk>);

impl DiskRef {
    /// Creates a reference to a disk.
    ///
    /// # Safety
    ///
    /// `disk` must be a valid disk for the lifetime `'a`.
    unsafe fn from_raw<'a>(disk: *mut bindings::gendisk) -> &'a Self {
        // SAFETY: `DiskRef` is a transparent wrapper; the caller guarantees validity.
        unsafe { &*disk.cast() }
    }

    fn as_raw(&self) -> *mut bindings::gendisk {
        self.0.get()
    }

    /// How many times the whole disk is open (`disk_openers`).
    pub(crate) fn openers(&self) -> i32 {
        // SAFETY: The disk is valid and `part0` lives as long as the disk.
        unsafe { bindings::atomic_read(&raw const (*(*self.as_raw()).part0).bd_openers) }
    }
}

/// The C callbacks that dispatch to an [`Operations`] implementation.
struct OperationsVTable<T>(PhantomData<T>);

impl<T: Operations> OperationsVTable<T> {
    const VTABLE: bindings::blk_mq_ops = bindings::blk_mq_ops {
        queue_rq: Some(Self::queue_rq),
        ..pin_init::zeroed()
    };

    const FOPS: bindings::block_device_operations = bindings::block_device_operations {
        owner: kernel::module::this_module::<crate::LocalModule>().as_ptr(),
        open: Some(Self::open),
        release: Some(Self::release),
        ioctl: Some(Self::ioctl),
        compat_ioctl: Some(Self::compat_ioctl),
        free_disk: Some(Self::free_disk),
        ..pin_init::zeroed()
    };

    /// Gets the device of a disk made by [`GenDisk::new`].
    ///
    /// # Safety
    ///
    /// `disk` must be a valid disk made by [`GenDisk::new`] whose `free_disk` has not run.
    unsafe fn device<'a>(disk: *mut bindings::gendisk) -> &'a T {
        // SAFETY: `private_data` holds an `Arc<T>` reference released in `free_disk`.
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
        // SAFETY: As above.
        unsafe { bindings::blk_mq_start_request(rq) };
        // SAFETY: `queuedata` points to the device of the `Arc<T>` the disk owns, which
        // outlives the queue.
        let dev: &T = unsafe { &*(*(*hctx).queue).queuedata.cast::<T>() };
        // INVARIANT: The request was started and belongs to the driver.
        let rq = Request {
            // SAFETY: blk-mq never passes a null request.
            ptr: unsafe { NonNull::new_unchecked(rq) },
            _p: PhantomData,
        };
        match dev.queue_rq(rq) {
            Ok(()) => bindings::BLK_STS_OK as bindings::blk_status_t,
            Err(BlkError(status)) => status,
        }
    }

    /// # Safety
    ///
    /// Called by the block core with a valid disk made by [`GenDisk::new`].
    unsafe extern "C" fn open(disk: *mut bindings::gendisk, mode: bindings::blk_mode_t) -> c_int {
        // SAFETY: The disk is valid for this call and `free_disk` has not run.
        let (dev, disk) = unsafe { (Self::device(disk), DiskRef::from_raw(disk)) };
        match dev.open(disk, OpenMode(mode)) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the block core with a valid disk made by [`GenDisk::new`].
    unsafe extern "C" fn release(disk: *mut bindings::gendisk) {
        // SAFETY: The disk is valid for this call and `free_disk` has not run.
        let (dev, disk) = unsafe { (Self::device(disk), DiskRef::from_raw(disk)) };
        dev.release(disk);
    }

    /// # Safety
    ///
    /// Called by the block core with a valid open block device of a disk made by
    /// [`GenDisk::new`].
    unsafe extern "C" fn ioctl(
        bdev: *mut bindings::block_device,
        mode: bindings::blk_mode_t,
        cmd: c_uint,
        arg: c_ulong,
    ) -> c_int {
        // SAFETY: The bdev is open, so its disk is valid and `free_disk` has not run.
        let (dev, disk) = unsafe {
            let disk = (*bdev).bd_disk;
            (Self::device(disk), DiskRef::from_raw(disk))
        };
        match dev.ioctl(disk, OpenMode(mode), cmd, arg) {
            Ok(v) => v,
            Err(e) => e.to_errno(),
        }
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
        // SAFETY: The bdev is open, so its disk is valid and `free_disk` has not run.
        let (dev, disk) = unsafe {
            let disk = (*bdev).bd_disk;
            (Self::device(disk), DiskRef::from_raw(disk))
        };
        match dev.compat_ioctl(disk, OpenMode(mode), cmd, arg) {
            Ok(v) => v,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called once by `disk_release` for an added disk made by [`GenDisk::new`].
    unsafe extern "C" fn free_disk(disk: *mut bindings::gendisk) {
        // SAFETY: `private_data` holds the `Arc<T>` given to the disk in `GenDisk::new`; this
        // is its last use.
        drop(unsafe { Arc::<T>::from_raw((*disk).private_data.cast()) });
    }
}

/// The registration of a block major; unregistered on drop.
pub(crate) struct MajorRegistration {
    major: u32,
    name: &'static CStr,
}

impl MajorRegistration {
    /// Registers `major` (`__register_blkdev`) with a probe called when a missing minor of it is
    /// opened.
    pub(crate) fn new(
        major: u32,
        name: &'static CStr,
        probe: unsafe extern "C" fn(bindings::dev_t),
    ) -> Result<Self> {
        // SAFETY: `name` is a static string; `probe` stays valid until `unregister_blkdev`,
        // which runs in `drop` before the module text goes away.
        to_result(unsafe { bindings::__register_blkdev(major, name.as_char_ptr(), Some(probe)) })?;
        Ok(Self { major, name })
    }
}

impl Drop for MajorRegistration {
    fn drop(&mut self) {
        // SAFETY: The major was registered with this name in `new`.
        unsafe { bindings::unregister_blkdev(self.major, self.name.as_char_ptr()) };
    }
}
