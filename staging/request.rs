// SPDX-License-Identifier: GPL-2.0

//! A started blk-mq request owned by the driver.
//!
//! Stands in for the parts of `kernel::block::mq::Request` that 7.3 lacks: per-request data
//! reachable from the request, accessors (operation, position, length, flags, priority), an
//! `ITER_BVEC` iterator over the data, completion through `->complete`, ending with an error,
//! partial completion with requeue, and zero-filling.
//!
//! C header: [`include/linux/blk-mq.h`](srctree/include/linux/blk-mq.h).

use super::operations::Operations;
use core::{
    marker::PhantomData,
    mem::ManuallyDrop,
    ptr::NonNull, //
};
use kernel::{
    bindings,
    ffi::{
        c_uint,
        c_ulong, //
    },
    prelude::*,
};

/// A block status (`blk_status_t`) other than success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlkError(bindings::blk_status_t);

impl BlkError {
    /// `BLK_STS_IOERR` (checked against the C value in `loop_helpers.c`).
    pub(crate) const IOERR: Self = Self(10);
    /// `BLK_STS_RESOURCE`: try again later (checked in `loop_helpers.c`).
    pub(crate) const RESOURCE: Self = Self(9);

    /// The raw status, for blk-mq.
    pub(super) fn raw(self) -> bindings::blk_status_t {
        self.0
    }
}

impl From<Error> for BlkError {
    fn from(err: Error) -> Self {
        // SAFETY: `errno_to_blk_status` is a pure table lookup that accepts any value.
        BlkError(unsafe { bindings::errno_to_blk_status(err.to_errno()) })
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

    /// Whether the operation addresses data at a position (every one but a flush).
    pub(crate) fn has_position(self) -> bool {
        matches!(
            self,
            Self::Read | Self::Write | Self::Discard | Self::WriteZeroes
        )
    }
}

/// `REQ_OP_MASK`.
const REQ_OP_MASK: u32 = (1 << bindings::REQ_OP_BITS) - 1;
/// `REQ_NOUNMAP`: write zeroes without deallocating.
const REQ_NOUNMAP: u32 = 1 << bindings::req_flag_bits___REQ_NOUNMAP;
/// `REQ_NOWAIT`.
const REQ_NOWAIT: u32 = 1 << bindings::req_flag_bits___REQ_NOWAIT;

/// A started request, owned by the driver until it is ended, completed or requeued.
///
/// Dropping it ends it with an I/O error, so a request is never lost.
///
/// # Invariants
///
/// `ptr` points to a request of a queue driven by `T` (its PDU holds an initialised
/// `T::Pdu`) that was started and not ended; this value is its only owner, so the request,
/// its bios and its PDU are stable and nobody else touches them.
pub(crate) struct Request<T: Operations> {
    ptr: NonNull<bindings::request>,
    _p: PhantomData<T>,
}

// SAFETY: A started request may be ended from any context and thread.
unsafe impl<T: Operations> Send for Request<T> {}

impl<T: Operations> Request<T> {
    /// Takes ownership of a started request.
    ///
    /// # Safety
    ///
    /// `rq` must be a started, not ended request of a queue driven by `T`, whose ownership
    /// the caller passes on (blk-mq in `queue_rq` or `complete`, or [`Self::into_raw`]).
    pub(super) unsafe fn from_raw(rq: *mut bindings::request) -> Self {
        // INVARIANT: Guaranteed by the caller.
        Self {
            // SAFETY: The caller passes a valid request, never null.
            ptr: unsafe { NonNull::new_unchecked(rq) },
            _p: PhantomData,
        }
    }

    /// Gives up ownership without ending the request; [`Self::from_raw`] takes it back.
    pub(super) fn into_raw(self) -> *mut bindings::request {
        ManuallyDrop::new(self).as_raw()
    }

    /// The raw request, still owned by `self`.
    pub(super) fn as_raw(&self) -> *mut bindings::request {
        self.ptr.as_ptr()
    }

    /// The request's first sector (`blk_rq_pos`), for the operations that address data:
    /// reads, writes, discards and write-zeroes. `None` for the others: a flush has no
    /// position (blk-mq leaves its sector at all ones).
    pub(crate) fn sector(&self) -> Option<u64> {
        if !self.op().has_position() {
            return None;
        }
        // SAFETY: By the type invariant the request is valid and ours.
        Some(unsafe { (*self.as_raw()).__sector })
    }

    /// The request's remaining bytes (`blk_rq_bytes`).
    pub(crate) fn bytes(&self) -> u32 {
        // SAFETY: By the type invariant the request is valid and ours.
        unsafe { (*self.as_raw()).__data_len }
    }

    fn flags(&self) -> u32 {
        // SAFETY: By the type invariant the request is valid and ours.
        unsafe { (*self.as_raw()).cmd_flags }
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
        // SAFETY: By the type invariant the request is ours; nobody else reads its flags.
        unsafe { (*self.as_raw()).cmd_flags &= !REQ_NOWAIT };
    }

    /// The I/O priority of the first bio (`req_get_ioprio`).
    pub(crate) fn ioprio(&self) -> u16 {
        // SAFETY: By the type invariant the request is ours, so its bio list is stable; a
        // non-null bio is valid.
        unsafe {
            let bio = (*self.as_raw()).bio;
            if bio.is_null() {
                0
            } else {
                (*bio).bi_ioprio
            }
        }
    }

    /// The driver data of the request.
    pub(crate) fn pdu(&self) -> &T::Pdu {
        // SAFETY: By the type invariant the PDU holds an initialised `T::Pdu` (written in
        // `init_request`, dropped in `exit_request` after the request is gone).
        unsafe { &*bindings::blk_mq_rq_to_pdu(self.as_raw()).cast::<T::Pdu>() }
    }

    /// The queue of the request.
    pub(crate) fn queue(&self) -> &super::queue::Queue {
        // SAFETY: The queue outlives its requests, and so the borrow of `self`.
        unsafe { super::queue::Queue::from_raw((*self.as_raw()).q) }
    }

    /// An iterator over the request's data in `dir` (`ITER_DEST` to read into the request,
    /// `ITER_SOURCE` to write from it).
    ///
    /// A request of one bio points into that bio's vector; several bios are gathered into
    /// `buf` (`rq_for_each_bvec`), so the iterator borrows both.
    pub(crate) fn iov_iter<'a>(
        &'a self,
        dir: IterDir,
        buf: &'a mut KVec<bindings::bio_vec>,
    ) -> Result<IovIter<'a>> {
        let rq = self.as_raw();
        // SAFETY: `iov_iter` is a C structure of integers, pointers and unions of those, for
        // which all zeroes is a valid value; `iov_iter_bvec` fills it below.
        let mut iter: bindings::iov_iter = unsafe { core::mem::zeroed() };
        // SAFETY: By the type invariant the request and its bios are ours and stable until it
        // ends, which cannot happen while `self` is borrowed; a bio's vector holds the
        // segments its `bi_iter` covers.
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
                // The I/O path runs with `PF_MEMALLOC_NOIO` (see `sys::TaskFlags::loop_worker`), which
                // makes this allocation NOIO.
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
        // INVARIANT: `iter` covers the request's pages (and `buf`), borrowed for `'a`.
        Ok(IovIter {
            iter,
            _p: PhantomData,
        })
    }

    /// Hands the request to `->complete` on the CPU that submitted it
    /// (`blk_mq_complete_request`).
    pub(crate) fn complete(self) {
        let rq = self.into_raw();
        // SAFETY: The request was ours (type invariant); blk-mq owns it until `->complete`.
        unsafe { bindings::blk_mq_complete_request(rq) };
    }

    /// Ends the request (`blk_mq_end_request`).
    pub(crate) fn end(self, status: Result<(), BlkError>) {
        let status = match status {
            Ok(()) => bindings::BLK_STS_OK as bindings::blk_status_t,
            Err(e) => e.raw(),
        };
        let rq = self.into_raw();
        // SAFETY: The request was ours and started (type invariant); ending gives it back.
        unsafe { bindings::blk_mq_end_request(rq, status) };
    }

    /// Completes the first `bytes` of the request successfully and puts the rest back on the
    /// queue, to be issued again through `queue_rq` (`blk_update_request` and
    /// `blk_mq_requeue_request`). If `bytes` covers all that remains, the request simply
    /// ends successfully.
    pub(crate) fn requeue_rest(self, bytes: u32) {
        if bytes >= self.bytes() {
            return self.end(Ok(()));
        }
        let rq = self.into_raw();
        // SAFETY: The request was ours (type invariant) and `bytes` is less than what remains
        // of it (checked above), so the update does not finish it and it may be requeued.
        unsafe {
            bindings::blk_update_request(rq, bindings::BLK_STS_OK as bindings::blk_status_t, bytes);
            bindings::blk_mq_requeue_request(rq, true);
        }
    }

    /// Zeroes the data of every bio of the request (`zero_fill_bio`).
    pub(crate) fn zero_fill(&mut self) {
        // SAFETY: By the type invariant the request and its bios are ours; each non-null
        // bio is valid and links to the next.
        unsafe {
            let mut bio = (*self.as_raw()).bio;
            while !bio.is_null() {
                bindings::zero_fill_bio(bio);
                bio = (*bio).bi_next;
            }
        }
    }
}

impl<T: Operations> Drop for Request<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the request is ours and not ended (the paths that
        // end or hand it back do not drop `self`).
        unsafe { bindings::blk_mq_end_request(self.as_raw(), BlkError::IOERR.raw()) };
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

impl IterDir {
    /// The direction of a read (`false`) or a write (`true`).
    pub(crate) fn of_write(write: bool) -> Self {
        if write {
            Self::Source
        } else {
            Self::Dest
        }
    }
}

/// An `ITER_BVEC` `iov_iter` over a request's pages.
///
/// # Invariants
///
/// `iter` was set up by [`Request::iov_iter`] and covers pages (and a gathered vector) that
/// stay valid for `'a`.
pub(crate) struct IovIter<'a> {
    iter: bindings::iov_iter,
    _p: PhantomData<&'a ()>,
}

impl IovIter<'_> {
    /// The raw iterator, for `read_iter`/`write_iter`.
    pub(super) fn as_raw(&mut self) -> *mut bindings::iov_iter {
        &mut self.iter
    }
}

/// Iterates the multi-page segments of a request's bios (`rq_for_each_bvec`).
///
/// # Invariants
///
/// `bio` is null or a valid bio of a request whose bios are stable while this lives, and
/// `iter` is within it.
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
        // INVARIANT: `bio` is the request's first bio, `iter` its own iterator.
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
                // SAFETY: By the type invariant `bio` is valid; its successor is null or valid.
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
