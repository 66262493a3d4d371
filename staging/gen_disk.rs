// SPDX-License-Identifier: GPL-2.0

//! A disk (`struct gendisk`): the owned, added disk, borrowed views of it, and the block
//! major its minors are probed from.
//!
//! Stands in for `kernel::block::mq::GenDisk` and `GenDiskBuilder`, which in 7.3 have no
//! fixed major and minors, no module owner, no runtime capacity, read-only, uevent,
//! partition or media-change control, no attribute groups, and no `register_blkdev` probe.
//!
//! C header: [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h).

use super::{
    bdev::BlockDevice,
    operations::{
        Operations,
        OperationsVTable, //
    },
    queue::Queue,
    sysfs::AttrGroup,
    tag_set::TagSet,
};
use core::{
    fmt::{
        self,
        Write, //
    },
    pin::Pin,
    ptr::NonNull,
};
use kernel::{
    bindings,
    error::{
        from_err_ptr,
        to_result, //
    },
    ffi::{
        c_int,
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
    /// Whether partition scanning is suppressed (`GD_SUPPRESS_PART_SCAN`).
    pub(crate) suppress_part_scan: bool,
}

/// An added disk and the tag set behind it; dropping it deletes the disk.
///
/// # Invariants
///
/// `disk` was allocated on `_tag_set` and added with `device_add_disk`, and this value owns
/// the reference from its allocation. Its `fops` are `OperationsVTable::<T>::FOPS`, and its
/// `private_data` and `queuedata` point to the `T` of an `Arc<T>` whose reference the disk
/// owns and releases in `free_disk`.
pub(crate) struct GenDisk<T: Operations> {
    disk: NonNull<bindings::gendisk>,
    /// Dropped after the disk is deleted and put (see `Drop`).
    _tag_set: Pin<KBox<TagSet<T>>>,
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
                (*disk).state |= 1 << bindings::GD_SUPPRESS_PART_SCAN;
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
        // INVARIANT: The disk was added above with `T`'s operations and holds `data`.
        Ok(Self {
            // SAFETY: `from_err_ptr` returned no error, so `disk` is not null.
            disk: unsafe { NonNull::new_unchecked(disk) },
            _tag_set: tag_set,
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
        // As C `loop_remove`: delete the disk (this also drains and exits its queue), then
        // let go of the disk and the tag set.
        // SAFETY: By the type invariant the disk was added and not deleted yet.
        unsafe { bindings::del_gendisk(self.disk.as_ptr()) };
        // SAFETY: By the type invariant the disk holds the `Arc<T>` until `free_disk`, which
        // cannot run before the `put_disk` below.
        unsafe { OperationsVTable::<T>::device(self.disk.as_ptr()) }.deleted();
        // Our disk reference goes first; the tag set is freed when the `Pin<KBox>` field
        // drops, after this function (the queue no longer uses it since `del_gendisk`).
        // SAFETY: We own the allocation reference.
        unsafe { bindings::put_disk(self.disk.as_ptr()) };
    }
}

/// A disk borrowed from the block layer for the duration of a call.
///
/// # Invariants
///
/// The wrapped `gendisk` is valid (allocated, not freed) for as long as a `&DiskRef` lives.
#[repr(transparent)]
pub(crate) struct DiskRef(Opaque<bindings::gendisk>);

impl DiskRef {
    /// Creates a reference to a disk.
    ///
    /// # Safety
    ///
    /// `disk` must be a valid disk for the lifetime `'a`.
    pub(super) unsafe fn from_raw<'a>(disk: *mut bindings::gendisk) -> &'a Self {
        // INVARIANT: The caller guarantees validity for `'a`.
        // SAFETY: `DiskRef` is a transparent wrapper; the caller guarantees validity.
        unsafe { &*disk.cast() }
    }

    pub(super) fn as_raw(&self) -> *mut bindings::gendisk {
        self.0.get()
    }

    /// The whole-disk device's kobject (`disk_to_dev(disk)->kobj`).
    fn kobj(&self) -> *mut bindings::kobject {
        // SAFETY: By the type invariant the disk is valid; `part0` lives as long as it.
        unsafe { &raw mut (*(*self.as_raw()).part0).bd_device.kobj }
    }

    /// The driver data of the disk, if it was made by `GenDisk<T>`.
    pub(crate) fn driver_data<T: Operations>(&self) -> Option<&T> {
        // SAFETY: By the type invariant the disk is valid; every disk has valid `fops`.
        if !OperationsVTable::<T>::is_ours(unsafe { &*(*self.as_raw()).fops }) {
            return None;
        }
        // SAFETY: The disk was made by `GenDisk<T>` (its operations are `T`'s) and is valid
        // while `self` is borrowed; the block core calls `free_disk` only after the disk's
        // last reference, which outlives every borrowed view.
        Some(unsafe { OperationsVTable::<T>::device(self.as_raw()) })
    }

    /// How many times the whole disk is open (`disk_openers`).
    pub(crate) fn openers(&self) -> i32 {
        // SAFETY: By the type invariant the disk is valid; `part0` lives as long as it.
        unsafe { bindings::atomic_read(&raw const (*(*self.as_raw()).part0).bd_openers) }
    }

    /// The disk's request queue.
    pub(crate) fn queue(&self) -> &Queue {
        // SAFETY: By the type invariant the disk is valid; its queue lives as long.
        unsafe { Queue::from_raw((*self.as_raw()).queue) }
    }

    /// The whole-disk block device (`part0`).
    pub(crate) fn part0(&self) -> &BlockDevice {
        // SAFETY: By the type invariant the disk is valid; `part0` lives as long as it.
        unsafe { BlockDevice::from_raw((*self.as_raw()).part0) }
    }

    /// Sets the size in sectors and tells user space; false if no uevent was sent
    /// (`set_capacity_and_notify`).
    pub(crate) fn set_capacity_and_notify(&self, sectors: u64) -> bool {
        // SAFETY: By the type invariant the disk is valid; the function locks what it needs.
        unsafe { bindings::set_capacity_and_notify(self.as_raw(), sectors) }
    }

    /// Sends a `KOBJ_CHANGE` uevent for the disk.
    pub(crate) fn uevent_change(&self) {
        // SAFETY: The disk's device kobject is valid (type invariant).
        unsafe { bindings::kobject_uevent(self.kobj(), bindings::kobject_action_KOBJ_CHANGE) };
    }

    /// Suppresses or allows uevents of the disk (`dev_set_uevent_suppress`).
    pub(crate) fn suppress_uevents(&self, suppress: bool) {
        // SAFETY: The kobject is valid (type invariant). The bit field shares a word with
        // other kobject state bits; like C `dev_set_uevent_suppress`, this writes it without
        // a lock, relying on the device's configuration paths being the only writers while
        // the disk is live.
        unsafe { (*self.kobj()).set_uevent_suppress(u32::from(suppress)) };
    }

    /// Marks the disk read-only or writable (`set_disk_ro`).
    pub(crate) fn set_read_only(&self, ro: bool) {
        // SAFETY: By the type invariant the disk is valid.
        unsafe { bindings::set_disk_ro(self.as_raw(), ro) };
    }

    /// Reports a media change (`disk_force_media_change`).
    pub(crate) fn force_media_change(&self) {
        // SAFETY: By the type invariant the disk is valid.
        unsafe { bindings::disk_force_media_change(self.as_raw()) };
    }

    /// Drops the cached data and zeroes the capacity (`invalidate_disk`).
    pub(crate) fn invalidate(&self) {
        // SAFETY: By the type invariant the disk is valid.
        unsafe { bindings::invalidate_disk(self.as_raw()) };
    }

    /// Sets or clears `GD_SUPPRESS_PART_SCAN`.
    pub(crate) fn suppress_part_scan(&self, suppress: bool) {
        // SAFETY: By the type invariant the disk is valid; the bit operations are atomic.
        unsafe {
            let state = &raw mut (*self.as_raw()).state;
            if suppress {
                bindings::set_bit(bindings::GD_SUPPRESS_PART_SCAN as c_ulong, state);
            } else {
                bindings::clear_bit(bindings::GD_SUPPRESS_PART_SCAN as c_ulong, state);
            }
        }
    }

    /// Rescans partitions, taking `open_mutex` (`bdev_disk_changed` under the lock).
    pub(crate) fn reread_partitions(&self) -> Result {
        // SAFETY: By the type invariant the disk is valid and its `open_mutex` initialised;
        // `bdev_disk_changed` is called with it held, as it requires.
        unsafe {
            let m = &raw mut (*self.as_raw()).open_mutex;
            bindings::mutex_lock(m);
            let r = bindings::bdev_disk_changed(self.as_raw(), false);
            bindings::mutex_unlock(m);
            to_result(r)
        }
    }

    /// Adds an attribute group of `T`'s disks to the disk's directory; `EINVAL` if the disk
    /// is not one of `T`'s (the group's callbacks read `T` from the disk).
    pub(crate) fn add_group<T: Operations>(&self, group: &'static AttrGroup<T>) -> Result {
        self.driver_data::<T>().ok_or(EINVAL)?;
        // SAFETY: The kobject is valid (type invariant); the group is static and its
        // callbacks expect a disk of `T`, which this is (checked above).
        to_result(unsafe { bindings::sysfs_create_group(self.kobj(), group.as_raw()) })
    }

    /// Removes an attribute group added with [`Self::add_group`].
    pub(crate) fn remove_group<T: Operations>(&self, group: &'static AttrGroup<T>) {
        // SAFETY: The kobject is valid (type invariant); removing a group that is not there
        // is a no-op with a warning.
        unsafe { bindings::sysfs_remove_group(self.kobj(), group.as_raw()) };
    }
}

/// A disk in its `release` callback, where the block core holds its `open_mutex`.
///
/// # Invariants
///
/// The disk's `open_mutex` is held by the block core for as long as this value is borrowed:
/// it is only made by the `release` trampoline, for the duration of the call.
#[repr(transparent)]
pub(crate) struct ReleasingDisk(DiskRef);

impl ReleasingDisk {
    /// # Safety
    ///
    /// `disk` must be valid and its `open_mutex` held by the caller for the lifetime `'a`.
    pub(super) unsafe fn from_raw<'a>(disk: *mut bindings::gendisk) -> &'a Self {
        // INVARIANT: Guaranteed by the caller.
        // SAFETY: `ReleasingDisk` and `DiskRef` are transparent wrappers of the `gendisk`.
        unsafe { &*disk.cast() }
    }

    /// Rescans partitions under the `open_mutex` the caller holds (`bdev_disk_changed`),
    /// which also removes every partition of an unbound device.
    pub(crate) fn disk_changed(&self) -> Result {
        // SAFETY: By the type invariant `open_mutex` is held; the disk is valid.
        to_result(unsafe { bindings::bdev_disk_changed(self.0.as_raw(), false) })
    }
}

impl core::ops::Deref for ReleasingDisk {
    type Target = DiskRef;

    fn deref(&self) -> &DiskRef {
        &self.0
    }
}

/// What opening a node of a registered major without a disk does (the `probe` argument of
/// `__register_blkdev`).
pub(crate) trait Probe: 'static {
    /// Called in process context with the device number that was opened.
    fn probe(dev: u32);
}

/// The registration of a block major; unregistered on drop.
///
/// # Invariants
///
/// `major` is registered with `name` (and `P`'s probe) until drop.
pub(crate) struct MajorRegistration<P: Probe> {
    major: u32,
    name: &'static CStr,
    _p: core::marker::PhantomData<P>,
}

impl<P: Probe> MajorRegistration<P> {
    /// Registers `major` (`__register_blkdev`), calling `P::probe` when a missing minor of it
    /// is opened.
    pub(crate) fn new(major: u32, name: &'static CStr) -> Result<Self> {
        // SAFETY: `name` is a static string; `probe_callback` stays valid until
        // `unregister_blkdev`, which runs in `drop` before the module text goes away.
        to_result(unsafe {
            bindings::__register_blkdev(major, name.as_char_ptr(), Some(Self::probe_callback))
        })?;
        // INVARIANT: Registered just above.
        Ok(Self {
            major,
            name,
            _p: core::marker::PhantomData,
        })
    }

    /// # Safety
    ///
    /// Called by the block core from process context.
    unsafe extern "C" fn probe_callback(dev: bindings::dev_t) {
        P::probe(dev);
    }
}

impl<P: Probe> Drop for MajorRegistration<P> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the major is registered with this name.
        unsafe { bindings::unregister_blkdev(self.major, self.name.as_char_ptr()) };
    }
}
