// SPDX-License-Identifier: GPL-2.0

//! A small safe layer over the blk-mq and gendisk C API, for what `kernel::block::mq` lacks.
//!
//! The in-tree `kernel::block::mq` has no per-request data, no error completion or requeue,
//! no request accessors, no `block_device_operations` hooks (open, release, ioctl), no module
//! owner on the disk, no fixed major/minor and no runtime capacity or limits control. This
//! module provides those pieces with the same shape: a [`TagSet`], a [`GenDisk`] that owns one
//! added disk, [`Request`]s owned by the driver between `queue_rq` and their end, borrowed
//! [`DiskRef`], [`BlockDevice`] and [`Queue`] views handed to the [`Operations`] callbacks, and
//! a [`MajorRegistration`] for the block major.
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
    mem::ManuallyDrop,
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
        c_uint,
        c_ulong,
        c_void, //
    },
    prelude::*,
    str::NullTerminatedFormatter,
    sync::{
        Arc,
        ArcBorrow, //
    },
    types::{
        Opaque,
        ScopeGuard, //
    },
};

/// A block status (`blk_status_t`) other than success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlkError(bindings::blk_status_t);

impl BlkError {
    /// `BLK_STS_IOERR`.
    pub(crate) const IOERR: Self = Self(10);
    /// `BLK_STS_RESOURCE`: try again later.
    pub(crate) const RESOURCE: Self = Self(9);
}

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
    /// `BLK_OPEN_EXCL`.
    const EXCL: bindings::blk_mode_t = 1 << 2;

    /// Whether the device was opened for writing.
    pub(crate) fn write(self) -> bool {
        self.0 & Self::WRITE != 0
    }

    /// Whether the device was opened exclusively (`O_EXCL`).
    pub(crate) fn exclusive(self) -> bool {
        self.0 & Self::EXCL != 0
    }
}

/// The operation of a request (`req_op`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReqOp {
    /// `REQ_OP_READ`.
    Read,
    /// `REQ_OP_WRITE`.
    Write,
    /// `REQ_OP_FLUSH`.
    Flush,
    /// `REQ_OP_DISCARD`.
    Discard,
    /// `REQ_OP_WRITE_ZEROES`.
    WriteZeroes,
    /// Any other operation, which loop never advertises.
    Other,
}

impl ReqOp {
    /// Whether the operation changes data (`op_is_write`; a flush is not a write).
    pub(crate) fn is_write(self) -> bool {
        matches!(self, Self::Write | Self::Discard | Self::WriteZeroes)
    }
}

/// `REQ_OP_MASK`.
const REQ_OP_MASK: u32 = (1 << bindings::REQ_OP_BITS) - 1;
/// `REQ_NOUNMAP`: write zeroes without deallocating.
const REQ_NOUNMAP: u32 = 1 << bindings::req_flag_bits___REQ_NOUNMAP;
/// `REQ_NOWAIT`.
const REQ_NOWAIT: u32 = 1 << bindings::req_flag_bits___REQ_NOWAIT;

/// Callbacks of a disk driven by this layer, implemented by the per-device type.
///
/// `Self` is reached from the C callbacks through `gendisk::private_data` and
/// `request_queue::queuedata`, which both point to the `Arc<Self>` owned by the disk.
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
    fn ioctl(&self, bdev: &BlockDevice, mode: OpenMode, cmd: u32, arg: usize) -> Result<i32>;

    /// Handles a driver ioctl from a 32-bit task (`fops->compat_ioctl`).
    fn compat_ioctl(&self, bdev: &BlockDevice, mode: OpenMode, cmd: u32, arg: usize)
        -> Result<i32>;

    /// Called when the disk was deleted: no request or callback but `free_disk` follows.
    fn deleted(&self);
}

/// A started request, owned by the driver until it is ended, completed or requeued.
///
/// Dropping it ends it with an I/O error, so a request is never lost.
///
/// # Invariants
///
/// `ptr` points to a request of a queue driven by `T` that was started and not ended; this
/// value is its only owner.
pub(crate) struct Request<T: Operations> {
    ptr: NonNull<bindings::request>,
    _p: PhantomData<T>,
}

// SAFETY: A started request may be ended from any context and thread.
unsafe impl<T: Operations> Send for Request<T> {}

impl<T: Operations> Request<T> {
    fn raw(&self) -> *mut bindings::request {
        self.ptr.as_ptr()
    }

    /// The request's first sector (`blk_rq_pos`), for the operations that address data:
    /// reads, writes, discards and write-zeroes. `None` for the others: a flush has no
    /// position (blk-mq leaves its sector at all ones).
    pub(crate) fn sector(&self) -> Option<u64> {
        match self.op() {
            ReqOp::Read | ReqOp::Write | ReqOp::Discard | ReqOp::WriteZeroes => {
                // SAFETY: By the type invariant the request is valid and ours.
                Some(unsafe { (*self.raw()).__sector })
            }
            ReqOp::Flush | ReqOp::Other => None,
        }
    }

    /// The request's remaining bytes (`blk_rq_bytes`).
    pub(crate) fn bytes(&self) -> u32 {
        // SAFETY: By the type invariant the request is valid and ours.
        unsafe { (*self.raw()).__data_len }
    }

    fn flags(&self) -> u32 {
        // SAFETY: By the type invariant the request is valid and ours.
        unsafe { (*self.raw()).cmd_flags }
    }

    /// The operation (`req_op`).
    pub(crate) fn op(&self) -> ReqOp {
        match self.flags() & REQ_OP_MASK {
            bindings::req_op_REQ_OP_READ => ReqOp::Read,
            bindings::req_op_REQ_OP_WRITE => ReqOp::Write,
            bindings::req_op_REQ_OP_FLUSH => ReqOp::Flush,
            bindings::req_op_REQ_OP_DISCARD => ReqOp::Discard,
            bindings::req_op_REQ_OP_WRITE_ZEROES => ReqOp::WriteZeroes,
            _ => ReqOp::Other,
        }
    }

    /// Whether a write-zeroes request must keep the blocks allocated (`REQ_NOUNMAP`).
    pub(crate) fn nounmap(&self) -> bool {
        self.flags() & REQ_NOUNMAP != 0
    }

    /// Drops `REQ_NOWAIT`: the driver handles the request where it may block.
    pub(crate) fn clear_nowait(&mut self) {
        // SAFETY: The request is ours; nobody else reads the flags while we own it.
        unsafe { (*self.raw()).cmd_flags &= !REQ_NOWAIT };
    }

    /// The I/O priority of the first bio (`req_get_ioprio`).
    pub(crate) fn ioprio(&self) -> u16 {
        // SAFETY: The request is ours, so its bio list is stable.
        unsafe {
            let bio = (*self.raw()).bio;
            if bio.is_null() {
                0
            } else {
                (*bio).bi_ioprio
            }
        }
    }

    /// The driver data of the request.
    pub(crate) fn pdu(&self) -> &T::Pdu {
        // SAFETY: The PDU of every request of a `TagSet<T>` holds a `T::Pdu`, initialised in
        // `init_request` and dropped in `exit_request`, after the request is gone.
        unsafe { &*bindings::blk_mq_rq_to_pdu(self.raw()).cast::<T::Pdu>() }
    }

    /// The queue of the request.
    pub(crate) fn queue(&self) -> &Queue {
        // SAFETY: The queue outlives its requests.
        unsafe { Queue::from_raw((*self.raw()).q) }
    }

    /// Fills a bio-vector iterator covering the request's data, in `dir`
    /// (`ITER_DEST` to read into the request, `ITER_SOURCE` to write from it).
    ///
    /// A request of one bio points into that bio's vector; several bios are gathered into
    /// `buf` (`rq_for_each_bvec`), so the iterator borrows both.
    pub(crate) fn iov_iter<'a>(
        &'a self,
        dir: IterDir,
        buf: &'a mut KVec<bindings::bio_vec>,
    ) -> Result<IovIter<'a>> {
        let rq = self.raw();
        // SAFETY: `iov_iter` is a C structure of integers, pointers and unions of those, for
        // which all zeroes is a valid value; `iov_iter_bvec` fills it below.
        let mut iter: bindings::iov_iter = unsafe { core::mem::zeroed() };
        // SAFETY: The request and its bios are ours and stable until it ends, which cannot
        // happen while `self` is borrowed.
        unsafe {
            let bio = (*rq).bio;
            if bio.is_null() {
                return Err(EIO);
            }
            if bio == (*rq).biotail {
                let bi_iter = (*bio).bi_iter;
                let first = (*bio).bi_io_vec.add(bi_iter.bi_idx as usize);
                let nr = BvecIter::new(rq).count();
                bindings::iov_iter_bvec(
                    &mut iter,
                    dir as c_uint,
                    first,
                    nr as c_ulong,
                    self.bytes() as usize,
                );
                iter.iov_offset = bi_iter.bi_offset as usize;
            } else {
                buf.clear();
                buf.reserve(BvecIter::new(rq).count(), GFP_KERNEL)?;
                for bv in BvecIter::new(rq) {
                    buf.push_within_capacity(bv).map_err(|_| ENOMEM)?;
                }
                bindings::iov_iter_bvec(
                    &mut iter,
                    dir as c_uint,
                    buf.as_ptr(),
                    buf.len() as c_ulong,
                    self.bytes() as usize,
                );
                iter.iov_offset = 0;
            }
        }
        Ok(IovIter {
            iter,
            _p: PhantomData,
        })
    }

    /// Gives up ownership while the request is in flight elsewhere (an asynchronous kiocb),
    /// returning its driver data; [`Self::from_pdu`] takes it back.
    pub(crate) fn into_pdu(self) -> NonNull<T::Pdu> {
        let rq = ManuallyDrop::new(self);
        // SAFETY: As in `pdu`; the PDU is never null.
        unsafe { NonNull::new_unchecked(bindings::blk_mq_rq_to_pdu(rq.raw()).cast()) }
    }

    /// Takes back a request given up with [`Self::into_pdu`].
    ///
    /// # Safety
    ///
    /// `pdu` must come from [`Self::into_pdu`] and not have been taken back yet.
    pub(crate) unsafe fn from_pdu(pdu: NonNull<T::Pdu>) -> Self {
        // INVARIANT: The caller passes on the ownership `into_pdu` gave up.
        Self {
            // SAFETY: The PDU belongs to a request (`blk_mq_rq_from_pdu`), never null.
            ptr: unsafe {
                NonNull::new_unchecked(bindings::blk_mq_rq_from_pdu(pdu.as_ptr().cast()))
            },
            _p: PhantomData,
        }
    }

    /// Hands the request to `->complete` on the CPU that submitted it
    /// (`blk_mq_complete_request`).
    pub(crate) fn complete(self) {
        let rq = ManuallyDrop::new(self);
        // SAFETY: The request is ours; from now on blk-mq owns it until `->complete`.
        unsafe { bindings::blk_mq_complete_request(rq.raw()) };
    }

    /// Ends the request (`blk_mq_end_request`).
    pub(crate) fn end(self, status: Result<(), BlkError>) {
        let rq = ManuallyDrop::new(self);
        let status = match status {
            Ok(()) => bindings::BLK_STS_OK as bindings::blk_status_t,
            Err(BlkError(s)) => s,
        };
        // SAFETY: The request is ours and started; ending it gives it back.
        unsafe { bindings::blk_mq_end_request(rq.raw(), status) };
    }

    /// Completes the first `bytes` of the request successfully and puts the rest back on the
    /// queue, to be issued again through `queue_rq` (`blk_update_request` and
    /// `blk_mq_requeue_request`). If `bytes` covers all that remains, the request simply
    /// ends successfully.
    pub(crate) fn requeue_rest(self, bytes: u32) {
        if bytes >= self.bytes() {
            return self.end(Ok(()));
        }
        let rq = ManuallyDrop::new(self);
        // SAFETY: The request is ours and `bytes` is less than what remains of it (checked
        // above), so the update does not finish it and it may be requeued.
        unsafe {
            bindings::blk_update_request(
                rq.raw(),
                bindings::BLK_STS_OK as bindings::blk_status_t,
                bytes,
            );
            bindings::blk_mq_requeue_request(rq.raw(), true);
        }
    }

    /// Zeroes the data of every bio of the request (`zero_fill_bio`).
    pub(crate) fn zero_fill(&mut self) {
        // SAFETY: The request and its bios are ours.
        unsafe {
            let mut bio = (*self.raw()).bio;
            while !bio.is_null() {
                bindings::zero_fill_bio(bio);
                bio = (*bio).bi_next;
            }
        }
    }
}

impl<T: Operations> Drop for Request<T> {
    fn drop(&mut self) {
        // SAFETY: The request was neither ended nor handed back (those paths forget `self`).
        unsafe { bindings::blk_mq_end_request(self.raw(), BlkError::IOERR.0) };
    }
}

/// The direction of an iterator (`ITER_DEST` or `ITER_SOURCE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum IterDir {
    /// Data flows into the request's pages (a read).
    Dest = bindings::ITER_DEST,
    /// Data flows from the request's pages (a write).
    Source = bindings::ITER_SOURCE,
}

/// An `ITER_BVEC` `iov_iter` over a request's pages.
pub(crate) struct IovIter<'a> {
    iter: bindings::iov_iter,
    _p: PhantomData<&'a ()>,
}

impl IovIter<'_> {
    /// The raw iterator, for `read_iter`/`write_iter`.
    pub(crate) fn as_raw(&mut self) -> *mut bindings::iov_iter {
        &mut self.iter
    }
}

/// Iterates the multi-page segments of a request's bios (`rq_for_each_bvec`).
struct BvecIter {
    bio: *mut bindings::bio,
    iter: bindings::bvec_iter,
}

impl BvecIter {
    /// # Safety
    ///
    /// `rq` must be a valid request whose bios are stable while the iterator is used.
    unsafe fn new(rq: *mut bindings::request) -> Self {
        // SAFETY: Guaranteed by the caller.
        let bio = unsafe { (*rq).bio };
        let iter = if bio.is_null() {
            pin_init::zeroed()
        } else {
            // SAFETY: `bio` is valid; `bvec_iter` is read by value (it is packed).
            unsafe { (*bio).bi_iter }
        };
        Self { bio, iter }
    }
}

impl Iterator for BvecIter {
    type Item = bindings::bio_vec;

    fn next(&mut self) -> Option<bindings::bio_vec> {
        loop {
            if self.bio.is_null() {
                return None;
            }
            if self.iter.bi_size == 0 {
                // SAFETY: `bio` is valid (see `new`); its successor is null or valid.
                self.bio = unsafe { (*self.bio).bi_next };
                if !self.bio.is_null() {
                    // SAFETY: As above.
                    self.iter = unsafe { (*self.bio).bi_iter };
                }
                continue;
            }
            let (idx, offset, size) = (self.iter.bi_idx, self.iter.bi_offset, self.iter.bi_size);
            // SAFETY: While `bi_size` is not zero, `bi_idx` indexes the bio's vector.
            let bv = unsafe { *(*self.bio).bi_io_vec.add(idx as usize) };
            // `mp_bvec_iter_bvec`: the rest of this segment, capped by what remains.
            let len = (bv.bv_len - offset).min(size);
            let out = bindings::bio_vec {
                bv_page: bv.bv_page,
                bv_len: len,
                bv_offset: bv.bv_offset + offset,
            };
            // `bvec_iter_advance_single`.
            self.iter.bi_size = size - len;
            if offset + len == bv.bv_len {
                self.iter.bi_idx = idx + 1;
                self.iter.bi_offset = 0;
            } else {
                self.iter.bi_offset = offset + len;
            }
            return Some(out);
        }
    }
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
        // blk-mq places the PDU right after `struct request`.
        kernel::static_assert!(
            core::mem::align_of::<bindings::request>() >= core::mem::align_of::<u64>()
        );
        try_pin_init!(Self {
            inner <- Opaque::try_ffi_init(move |slot: *mut bindings::blk_mq_tag_set| {
                if core::mem::align_of::<T::Pdu>() > core::mem::align_of::<bindings::request>() {
                    return Err(EINVAL);
                }
                let set = bindings::blk_mq_tag_set {
                    ops: &OperationsVTable::<T>::VTABLE,
                    nr_hw_queues: 1,
                    nr_maps: 1,
                    queue_depth,
                    cmd_size: core::mem::size_of::<T::Pdu>() as c_uint,
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
    /// Whether partition scanning is suppressed (`GD_SUPPRESS_PART_SCAN`).
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
        // Same order as C `loop_remove`: delete the disk (this also drains and exits its
        // queue), free the tag set, then drop our disk reference.
        // SAFETY: By the type invariant the disk was added and not deleted yet.
        unsafe { bindings::del_gendisk(self.disk.as_ptr()) };
        // SAFETY: The disk holds the `Arc<T>` until `free_disk`, which cannot run before the
        // `put_disk` below.
        unsafe { &*(*self.disk.as_ptr()).private_data.cast::<T>() }.deleted();
        // The tag set is freed when the `Pin<KBox>` field drops, after this function; the
        // queue no longer uses it since `del_gendisk` returned.
        // SAFETY: We own the allocation reference.
        unsafe { bindings::put_disk(self.disk.as_ptr()) };
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

    fn kobj(&self) -> *mut bindings::kobject {
        // SAFETY: `part0` lives as long as the disk (`disk_to_dev`).
        unsafe { &raw mut (*(*self.as_raw()).part0).bd_device.kobj }
    }

    /// How many times the whole disk is open (`disk_openers`).
    pub(crate) fn openers(&self) -> i32 {
        // SAFETY: The disk is valid and `part0` lives as long as the disk.
        unsafe { bindings::atomic_read(&raw const (*(*self.as_raw()).part0).bd_openers) }
    }

    /// The disk's request queue.
    pub(crate) fn queue(&self) -> &Queue {
        // SAFETY: The queue lives as long as the disk.
        unsafe { Queue::from_raw((*self.as_raw()).queue) }
    }

    /// The whole-disk block device (`part0`).
    pub(crate) fn part0(&self) -> &BlockDevice {
        // SAFETY: `part0` lives as long as the disk.
        unsafe { BlockDevice::from_raw((*self.as_raw()).part0) }
    }

    /// Sets the size in sectors and tells user space; false if no uevent was sent
    /// (`set_capacity_and_notify`).
    pub(crate) fn set_capacity_and_notify(&self, sectors: u64) -> bool {
        // SAFETY: The disk is valid; the function locks what it needs.
        unsafe { bindings::set_capacity_and_notify(self.as_raw(), sectors) }
    }

    /// Sends a `KOBJ_CHANGE` uevent for the disk.
    pub(crate) fn uevent_change(&self) {
        // SAFETY: The disk's device kobject is valid.
        unsafe { bindings::kobject_uevent(self.kobj(), bindings::kobject_action_KOBJ_CHANGE) };
    }

    /// Suppresses or allows uevents of the disk (`dev_set_uevent_suppress`).
    pub(crate) fn suppress_uevents(&self, suppress: bool) {
        // SAFETY: The kobject is valid. The bit field shares a word with other kobject state
        // bits; like C `dev_set_uevent_suppress`, this writes it without a lock, relying on
        // the device's configuration paths being the only writers while the disk is live.
        unsafe { (*self.kobj()).set_uevent_suppress(u32::from(suppress)) };
    }

    /// Marks the disk read-only or writable (`set_disk_ro`).
    pub(crate) fn set_read_only(&self, ro: bool) {
        // SAFETY: The disk is valid.
        unsafe { bindings::set_disk_ro(self.as_raw(), ro) };
    }

    /// Reports a media change (`disk_force_media_change`).
    pub(crate) fn force_media_change(&self) {
        // SAFETY: The disk is valid.
        unsafe { bindings::disk_force_media_change(self.as_raw()) };
    }

    /// Drops the cached data and zeroes the capacity (`invalidate_disk`).
    pub(crate) fn invalidate(&self) {
        // SAFETY: The disk is valid.
        unsafe { bindings::invalidate_disk(self.as_raw()) };
    }

    /// Sets or clears `GD_SUPPRESS_PART_SCAN`.
    pub(crate) fn suppress_part_scan(&self, suppress: bool) {
        // SAFETY: The disk is valid; the bit operations are atomic.
        unsafe {
            let state = &raw mut (*self.as_raw()).state;
            if suppress {
                bindings::set_bit(sys::GD_SUPPRESS_PART_SCAN as c_ulong, state);
            } else {
                bindings::clear_bit(sys::GD_SUPPRESS_PART_SCAN as c_ulong, state);
            }
        }
    }

    /// Rescans partitions, taking `open_mutex` (`bdev_disk_changed` under the lock).
    pub(crate) fn reread_partitions(&self) -> Result {
        // SAFETY: `open_mutex` is initialised with the disk; the caller holds no lock that
        // nests inside it.
        unsafe {
            let m = &raw mut (*self.as_raw()).open_mutex;
            bindings::mutex_lock(m);
            let r = bindings::bdev_disk_changed(self.as_raw(), false);
            bindings::mutex_unlock(m);
            to_result(r)
        }
    }

    /// Adds a sysfs attribute group to the disk's directory.
    pub(crate) fn add_group(&self, group: &'static SysfsGroup) -> Result {
        // SAFETY: The kobject is valid; the group is static.
        to_result(unsafe { bindings::sysfs_create_group(self.kobj(), group.0.get()) })
    }

    /// Removes a sysfs attribute group added with [`Self::add_group`].
    pub(crate) fn remove_group(&self, group: &'static SysfsGroup) {
        // SAFETY: The kobject is valid; the group was added before.
        unsafe { bindings::sysfs_remove_group(self.kobj(), group.0.get()) };
    }
}

/// A static sysfs attribute group.
#[repr(transparent)]
pub(crate) struct SysfsGroup(Opaque<bindings::attribute_group>);

// SAFETY: The group is immutable after construction; sysfs only reads it.
unsafe impl Sync for SysfsGroup {}

impl SysfsGroup {
    /// Wraps a group whose attributes outlive the module's use of it.
    pub(crate) const fn new(group: bindings::attribute_group) -> Self {
        Self(Opaque::new(group))
    }
}

/// Recovers the driver's device from a disk's `struct device`, in a sysfs callback.
///
/// # Safety
///
/// `dev` must be the device of a live disk made by [`GenDisk::new`] for `T`.
pub(crate) unsafe fn device_of<'a, T: Operations>(dev: *mut bindings::device) -> &'a T {
    // SAFETY: `dev` is `part0->bd_device` of the disk (`dev_to_disk`); the disk holds its
    // `Arc<T>` until `free_disk`, after all sysfs files are gone.
    unsafe {
        let bdev = kernel::container_of!(dev, bindings::block_device, bd_device);
        &*(*(*bdev).bd_disk).private_data.cast::<T>()
    }
}

/// The driver's device behind a whole-disk block device of ours, if `bdev` is one.
///
/// # Safety
///
/// `bdev` must be a valid block device for the lifetime `'a` (an open block-device file
/// keeps it and its disk alive).
pub(crate) unsafe fn device_of_bdev<'a, T: Operations>(
    bdev: *mut bindings::block_device,
) -> Option<&'a T> {
    // SAFETY: Guaranteed by the caller; every disk has valid `fops`.
    unsafe {
        let disk = (*bdev).bd_disk;
        // Only this module's disks have this owner; they are all made by `GenDisk::new`
        // for the one `Operations` type of the module.
        if (*(*disk).fops).owner != sys::this_module() {
            return None;
        }
        Some(&*(*disk).private_data.cast::<T>())
    }
}

/// A block device (a disk or a partition) borrowed for the duration of a call.
#[repr(transparent)]
pub(crate) struct BlockDevice(Opaque<bindings::block_device>);

impl BlockDevice {
    /// # Safety
    ///
    /// `bdev` must be valid for the lifetime `'a`.
    unsafe fn from_raw<'a>(bdev: *mut bindings::block_device) -> &'a Self {
        // SAFETY: Transparent wrapper; the caller guarantees validity.
        unsafe { &*bdev.cast() }
    }

    fn as_raw(&self) -> *mut bindings::block_device {
        self.0.get()
    }

    /// The disk the device belongs to.
    pub(crate) fn disk(&self) -> &DiskRef {
        // SAFETY: A block device keeps its disk alive.
        unsafe { DiskRef::from_raw((*self.as_raw()).bd_disk) }
    }

    /// The device number.
    pub(crate) fn dev(&self) -> u32 {
        // SAFETY: `bd_dev` is immutable.
        unsafe { (*self.as_raw()).bd_dev }
    }

    /// Writes back the device's dirty page cache (`sync_blockdev`).
    pub(crate) fn sync(&self) {
        // SAFETY: The device is valid. Errors are ignored, as in C loop.
        unsafe { bindings::sync_blockdev(self.as_raw()) };
    }

    /// Drops the device's clean page cache (`invalidate_bdev`).
    pub(crate) fn invalidate(&self) {
        // SAFETY: The device is valid.
        unsafe { bindings::invalidate_bdev(self.as_raw()) };
    }

    /// Claims the device exclusively for `holder` until the guard drops, unless `mode` is
    /// already exclusive (`bd_prepare_to_claim` / `bd_abort_claiming`).
    pub(crate) fn claim(&self, mode: OpenMode, holder: &'static u8) -> Result<Claim<'_>> {
        let holder: *mut c_void = core::ptr::from_ref(holder).cast_mut().cast();
        if mode.exclusive() {
            return Ok(Claim {
                bdev: self,
                holder: None,
            });
        }
        // SAFETY: The device is valid; `holder` is a unique static address.
        to_result(unsafe {
            bindings::bd_prepare_to_claim(self.as_raw(), holder, core::ptr::null())
        })?;
        Ok(Claim {
            bdev: self,
            holder: Some(holder),
        })
    }
}

/// An exclusive claim on a block device; released on drop.
pub(crate) struct Claim<'a> {
    bdev: &'a BlockDevice,
    holder: Option<*mut c_void>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if let Some(holder) = self.holder {
            // SAFETY: `bd_prepare_to_claim` succeeded with this holder.
            unsafe { bindings::bd_abort_claiming(self.bdev.as_raw(), holder) };
        }
    }
}

/// A request queue borrowed for the duration of a call.
#[repr(transparent)]
pub(crate) struct Queue(Opaque<bindings::request_queue>);

/// `BLK_FEAT_WRITE_CACHE`.
pub(crate) const BLK_FEAT_WRITE_CACHE: u32 = 1 << 0;
/// `BLK_FEAT_ROTATIONAL`.
pub(crate) const BLK_FEAT_ROTATIONAL: u32 = bindings::BLK_FEAT_ROTATIONAL;

impl Queue {
    /// # Safety
    ///
    /// `q` must be valid for the lifetime `'a`.
    unsafe fn from_raw<'a>(q: *mut bindings::request_queue) -> &'a Self {
        // SAFETY: Transparent wrapper; the caller guarantees validity.
        unsafe { &*q.cast() }
    }

    fn as_raw(&self) -> *mut bindings::request_queue {
        self.0.get()
    }

    /// The current logical block size.
    pub(crate) fn logical_block_size(&self) -> u32 {
        // SAFETY: `limits` is only replaced as a whole under `limits_lock`; a racy read of
        // one field is what C's `queue_logical_block_size` does too.
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
        // SAFETY: `limits_lock` is initialised with the queue.
        unsafe { bindings::mutex_lock(&raw mut (*self.as_raw()).limits_lock) };
        // INVARIANT: The lock was taken just above.
        LimitsUpdate {
            q: self,
            // SAFETY: The limits are stable while `limits_lock` is held.
            lim: unsafe { core::ptr::read(&raw const (*self.as_raw()).limits) },
            done: false,
        }
    }

    /// Freezes the queue: waits for every request to end and holds new ones back until the
    /// guard drops (`blk_mq_freeze_queue`, with the task in NOIO scope meanwhile).
    pub(crate) fn freeze(&self) -> Freeze<'_> {
        let noio = sys::memalloc_noio_save();
        // SAFETY: The queue is valid.
        unsafe { bindings::blk_mq_freeze_queue_nomemsave(self.as_raw()) };
        Freeze { q: self, noio }
    }
}

/// An update of a queue's limits in progress; dropping it without committing cancels it.
///
/// # Invariants
///
/// `q.limits_lock` is held unless `done`.
pub(crate) struct LimitsUpdate<'a> {
    q: &'a Queue,
    /// The new limits, to be edited before [`Self::commit`].
    pub(crate) lim: bindings::queue_limits,
    done: bool,
}

impl LimitsUpdate<'_> {
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
pub(crate) struct Freeze<'a> {
    q: &'a Queue,
    noio: u32,
}

impl Drop for Freeze<'_> {
    fn drop(&mut self) {
        // SAFETY: The queue was frozen in `Queue::freeze`.
        unsafe { bindings::blk_mq_unfreeze_queue_nomemrestore(self.q.as_raw()) };
        sys::memalloc_noio_restore(self.noio);
    }
}

/// The C callbacks that dispatch to an [`Operations`] implementation.
struct OperationsVTable<T>(PhantomData<T>);

impl<T: Operations> OperationsVTable<T> {
    const VTABLE: bindings::blk_mq_ops = bindings::blk_mq_ops {
        queue_rq: Some(Self::queue_rq),
        complete: Some(Self::complete),
        init_request: Some(Self::init_request),
        exit_request: Some(Self::exit_request),
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
        // SAFETY: `queuedata` points to the `T` of the `Arc<T>` the disk owns, which outlives
        // the queue.
        let dev = unsafe { ArcBorrow::from_raw((*(*hctx).queue).queuedata.cast::<T>()) };
        // INVARIANT: The request was started and belongs to the driver.
        let rq = Request {
            // SAFETY: blk-mq never passes a null request.
            ptr: unsafe { NonNull::new_unchecked(rq) },
            _p: PhantomData,
        };
        match T::queue_rq(dev, rq) {
            Ok(()) => bindings::BLK_STS_OK as bindings::blk_status_t,
            Err((rq, BlkError(status))) => {
                // blk-mq ends or requeues the request itself.
                core::mem::forget(rq);
                status
            }
        }
    }

    /// # Safety
    ///
    /// Called by blk-mq for a request handed to `blk_mq_complete_request`.
    unsafe extern "C" fn complete(rq: *mut bindings::request) {
        // INVARIANT: The request came back from `Request::complete`, so the driver owns it
        // again.
        T::complete(Request {
            // SAFETY: blk-mq never passes a null request.
            ptr: unsafe { NonNull::new_unchecked(rq) },
            _p: PhantomData,
        });
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
        // INVARIANT: The block core calls `release` with `open_mutex` held, until it returns.
        // SAFETY: `ReleasingDisk` is a transparent wrapper of `DiskRef`.
        let disk = unsafe { &*core::ptr::from_ref(disk).cast::<ReleasingDisk>() };
        dev.release(disk);
    }

    /// Runs `f` for an ioctl on `bdev` and converts its result for C.
    ///
    /// # Safety
    ///
    /// `bdev` must be a valid open block device of a disk made by [`GenDisk::new`].
    unsafe fn dispatch_ioctl(
        bdev: *mut bindings::block_device,
        f: impl FnOnce(&T, &BlockDevice) -> Result<i32>,
    ) -> c_int {
        // SAFETY: The bdev is open, so it and its disk are valid and `free_disk` has not run.
        let (dev, bdev) = unsafe { (Self::device((*bdev).bd_disk), BlockDevice::from_raw(bdev)) };
        match f(dev, bdev) {
            Ok(v) => v,
            Err(e) => e.to_errno(),
        }
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
        // SAFETY: Guaranteed by the caller.
        unsafe { Self::dispatch_ioctl(bdev, |dev, bdev| dev.ioctl(bdev, OpenMode(mode), cmd, arg)) }
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
        // SAFETY: Guaranteed by the caller.
        unsafe {
            Self::dispatch_ioctl(bdev, |dev, bdev| {
                dev.compat_ioctl(bdev, OpenMode(mode), cmd, arg)
            })
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
