// SPDX-License-Identifier: GPL-2.0

//! Asynchronous direct I/O of a request on a backing file: the kiocb hand-over.
//!
//! Stands in for the `use_aio` half of C `lo_rw_aio` and its `lo_rw_aio_complete`, for
//! which the kernel crate has no kiocb abstraction. The driver calls [`submit`] with the
//! request, a keep-alive value that holds the backing file open, and where to read or
//! write; the request comes back through [`DirectIo::aio_done`] with the result.
//!
//! # The protocol
//!
//! Each request's driver data holds an [`AioSlot`]: the kiocb, the bio vector gathered
//! from a multi-bio request, the keep-alive value, and two references, one held by the
//! submitter and one by the completion (`cmd->ref` in C). The filesystem may call
//! `ki_complete` (in any context, including hard interrupts) before `->write_iter` or
//! `->read_iter` has returned, or not at all if it finished synchronously (any result but
//! `-EIOCBQUEUED`); whichever of the submitter and the completion drops the last reference
//! owns the request again. That one ends the write's freeze protection
//! (`kiocb_end_write`), drops the keep-alive value, and only then hands the request back,
//! so that nothing of the backing file is held once the request has completed.

use super::{
    file::{
        BackingFile,
        SyncFlags, //
    },
    operations::Operations,
    request::{
        IterDir,
        Request, //
    },
};
use core::ptr::NonNull;
use kernel::{
    bindings,
    ffi::c_long,
    prelude::*,
    sync::atomic::{
        Atomic,
        Full,
        Relaxed, //
    },
    types::Opaque,
};

/// A driver whose requests can run as asynchronous direct I/O.
///
/// [`submit`] checks that [`Self::aio_slot`] returns a slot inside the given driver data
/// (and fails the request otherwise), so that each request has a slot of its own.
pub(crate) trait DirectIo: Operations {
    /// Holds the backing file open while a direct I/O is in flight; dropped before the
    /// request is handed back.
    type Keep: Send + Sync;

    /// The slot in a request's driver data: a field of `pdu`.
    fn aio_slot(pdu: &Self::Pdu) -> &AioSlot<Self::Keep>;

    /// The backing file `keep` holds.
    fn file(keep: &Self::Keep) -> &BackingFile;

    /// A direct I/O of `rq` has ended with `result` (bytes transferred or a negative errno)
    /// and its keep-alive value was dropped. Context: any, including hard interrupts.
    fn aio_done(rq: Request<Self>, result: i64);
}

/// The direct I/O state of one request (the kiocb half of C's `struct loop_cmd`).
///
/// # Invariants
///
/// - `state` is only accessed by the owner of the request whose driver data holds this
///   slot: while `refs` is 0, the holder of the [`Request`]; while a direct I/O is in flight
///   (`refs` set to 2 by [`submit`]), nobody, until one of the submitter and the completion
///   drops `refs` to 0 and so becomes the owner.
/// - While `refs` is not 0, `state.keep` holds the file the kiocb reads or writes and
///   `state.rq` is the request, which the submitter gives up with `into_raw` before it drops
///   its reference.
pub(crate) struct AioSlot<K> {
    refs: Atomic<i32>,
    /// The result, written by whichever party learns it before dropping its reference.
    result: Atomic<i64>,
    state: Opaque<AioState<K>>,
}

/// The kiocb of a direct I/O and what must live as long as it.
struct AioState<K> {
    iocb: bindings::kiocb,
    /// The request's bio vectors gathered from several bios (`cmd->bvec`).
    bvec: KVec<bindings::bio_vec>,
    /// Keeps the backing file open until the I/O has ended.
    keep: Option<K>,
    /// The request, while it is given up.
    rq: *mut bindings::request,
    /// A write was started (`kiocb_start_write`) and must be ended.
    write_started: bool,
}

// SAFETY: The state is only touched by the request's current owner (type invariant), which
// may be any thread; `K` is `Send`.
unsafe impl<K: Send> Send for AioSlot<K> {}
// SAFETY: Shared references only reach the atomics; the state is accessed by one owner at a
// time, handed over through `refs` (type invariant).
unsafe impl<K: Send + Sync> Sync for AioSlot<K> {}

impl<K> Default for AioSlot<K> {
    fn default() -> Self {
        // INVARIANT: `refs` is 0: the state belongs to the request's holder.
        Self {
            refs: Atomic::new(0),
            result: Atomic::new(0),
            state: Opaque::new(AioState {
                iocb: pin_init::zeroed(),
                bvec: KVec::new(),
                keep: None,
                rq: core::ptr::null_mut(),
                write_started: false,
            }),
        }
    }
}

impl<K> Drop for AioSlot<K> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: the request is gone (`exit_request`), nobody else uses the
        // state, which `default` initialised.
        unsafe { core::ptr::drop_in_place(self.state.get()) };
    }
}

/// The slot of `rq`, if [`DirectIo::aio_slot`] returned one inside the request's driver
/// data (which makes it this request's own: driver data of requests do not overlap).
fn slot_of<T: DirectIo>(rq: &Request<T>) -> Option<NonNull<AioSlot<T::Keep>>> {
    let pdu = rq.pdu();
    let slot = T::aio_slot(pdu);
    let (start, end) = (
        core::ptr::from_ref(pdu) as usize,
        core::ptr::from_ref(pdu) as usize + core::mem::size_of::<T::Pdu>(),
    );
    let at = core::ptr::from_ref(slot) as usize;
    (at >= start && at + core::mem::size_of::<AioSlot<T::Keep>>() <= end)
        .then(|| NonNull::from(slot))
}

/// Starts an asynchronous direct read or write of `rq` at `pos` of `keep`'s file, keeping
/// `sync`'s durability (`lo_rw_aio` with `use_aio`). The request comes back through
/// [`DirectIo::aio_done`], possibly before this returns, possibly in interrupt context.
pub(crate) fn submit<T: DirectIo>(
    rq: Request<T>,
    keep: T::Keep,
    pos: i64,
    write: bool,
    sync: SyncFlags,
) {
    let Some(slot) = slot_of(&rq) else {
        // `aio_slot` broke its contract: nothing was started.
        drop(keep);
        return T::aio_done(rq, -i64::from(bindings::EINVAL));
    };
    // SAFETY: The slot is in the request's driver data (checked by `slot_of`), which lives
    // as long as the tag set and is not moved.
    let sp = unsafe { slot.as_ref() }.state.get();
    // SAFETY: We hold the request and no direct I/O of it is in flight (`refs` is 0), so by
    // the type invariant the state is ours; this reference's last use is before the
    // submission.
    let st = unsafe { &mut *sp };
    let mut iter = match rq.iov_iter(IterDir::of_write(write), &mut st.bvec) {
        Ok(iter) => iter,
        Err(_) => {
            drop(keep);
            return T::aio_done(rq, -i64::from(bindings::EIO));
        }
    };
    let keep: &T::Keep = st.keep.insert(keep);
    let file = T::file(keep);
    st.iocb = file.kiocb(pos, rq.ioprio(), BackingFile::direct_flags(sync));
    st.iocb.ki_complete = Some(complete::<T>);
    st.rq = rq.as_raw();
    st.write_started = write;
    let iocb = &raw mut st.iocb;
    // INVARIANT: One reference for the submitter, one for the completion; `rq` and `keep`
    // are set above, and the request is given up below before either is dropped.
    // SAFETY: As above, the slot is valid.
    unsafe { slot.as_ref() }.refs.store(2, Relaxed);
    // SAFETY: `iocb` is a kiocb of `file`, in the request's driver data, which lives as long
    // as the tag set; it, the request's pages and `bvec` stay valid, and `keep` holds the file
    // open, until the last reference is dropped, which the completion holds until
    // `ki_complete` (or which we drop below if the I/O did not go asynchronous).
    let ret = unsafe { file.submit(iocb, write, &mut iter) };
    // The iterator (a borrow of the request and `bvec`) is not used again. From here on
    // the request is owned by whoever drops the last reference.
    rq.into_raw();
    let result = match ret {
        Ok(r) if r == -(bindings::EIOCBQUEUED as isize) => None,
        Ok(r) => Some(r as i64),
        Err(e) => {
            // Nothing was started: no write to end, no completion to come.
            // SAFETY: The completion's reference is still ours (nothing was submitted), so
            // nobody else touches the state.
            unsafe { (*sp).write_started = false };
            Some(i64::from(e.to_errno()))
        }
    };
    if let Some(result) = result {
        // SAFETY: As above, the slot is valid; we still hold both references.
        unsafe { slot.as_ref() }.result.store(result, Relaxed);
    }
    // SAFETY: We hold the submitter's reference.
    unsafe { put::<T>(slot) };
    if result.is_some() {
        // SAFETY: The I/O did not go asynchronous, so `ki_complete` will not be called and
        // the completion's reference is ours to drop (so the first `put` was not the last).
        unsafe { put::<T>(slot) };
    }
}

/// `ki_complete` of a direct I/O (`lo_rw_aio_complete`). Context: any, including hard
/// interrupts.
///
/// # Safety
///
/// Called once by the filesystem for a kiocb that [`submit`] submitted for `T`.
unsafe extern "C" fn complete<T: DirectIo>(iocb: *mut bindings::kiocb, ret: c_long) {
    // SAFETY: `iocb` is the `iocb` field of the `AioState` in the `state` field of an
    // `AioSlot<T::Keep>` (`submit` submitted no other kiocb with this callback), and
    // `Opaque` is a transparent wrapper, so the state's address is the field's; none of
    // these is null.
    let slot = unsafe {
        let st = kernel::container_of!(iocb, AioState<T::Keep>, iocb);
        NonNull::new_unchecked(kernel::container_of!(
            st.cast::<Opaque<AioState<T::Keep>>>(),
            AioSlot<T::Keep>,
            state
        ))
    };
    // SAFETY: The completion holds a reference, so the request and its slot are alive.
    unsafe { slot.as_ref() }.result.store(ret as i64, Relaxed);
    // SAFETY: The completion holds one of the two references.
    unsafe { put::<T>(slot) };
}

/// Drops one reference of a direct I/O; the last one ends the write protection, drops the
/// keep-alive value and hands the request back (`lo_rw_aio_do_completion`). Context: any.
///
/// `slot` is a pointer, not a reference: once the request is handed back it may complete,
/// and its driver data be freed, before this function returns.
///
/// # Safety
///
/// `slot` must be the slot of a request given up by [`submit`], and the caller must hold
/// one of its two references.
unsafe fn put<T: DirectIo>(slot: NonNull<AioSlot<T::Keep>>) {
    // SAFETY: The caller's reference keeps the request, and so the slot, alive until the
    // `fetch_sub` below; if that was not the last, nothing else is touched.
    let refs = unsafe { &slot.as_ref().refs };
    // Full ordering: the other owner's writes (`result`, the state) are visible to the last.
    if refs.fetch_sub(1, Full) != 1 {
        return;
    }
    // SAFETY: Both references are gone, so by the type invariant the slot is ours until we
    // hand the request back below.
    let slot = unsafe { slot.as_ref() };
    // SAFETY: As above: the state is ours.
    let st = unsafe { &mut *slot.state.get() };
    st.bvec.clear();
    if core::mem::take(&mut st.write_started) {
        if let Some(keep) = st.keep.as_ref() {
            // SAFETY: The write was started on this kiocb by `submit` and has ended (both
            // references are gone); `keep` still holds its file open.
            unsafe { T::file(keep).end_write(&raw mut st.iocb) };
        }
    }
    // Not the file's last reference: the device holds its configuration until the queue
    // has drained (a freeze, or the final release, which as in C's `__loop_clr_fd` has no
    // I/O outstanding), which needs this request to complete first.
    drop(st.keep.take());
    let rq = core::mem::replace(&mut st.rq, core::ptr::null_mut());
    let result = slot.result.load(Relaxed);
    // SAFETY: `submit` gave this started request of a `T` queue up with `into_raw`, and we
    // are its only owner now. The slot is not touched after this.
    let rq = unsafe { Request::<T>::from_raw(rq) };
    T::aio_done(rq, result);
}
