// SPDX-License-Identifier: GPL-2.0

//! A blk-mq tag set.
//!
//! Stands in for `kernel::block::mq::TagSet`, which in 7.3 takes no `BLK_MQ_F_*` flags and
//! cannot size the PDU for driver data that is dropped with the request.
//!
//! C header: [`include/linux/blk-mq.h`](srctree/include/linux/blk-mq.h).

use super::operations::{
    Operations,
    OperationsVTable, //
};
use core::{
    marker::PhantomData,
    pin::Pin, //
};
use kernel::{bindings, error::to_result, ffi::c_uint, prelude::*, types::Opaque};

/// `BLK_MQ_F_*` tag set flags.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TagSetFlags(u32);

impl TagSetFlags {
    /// `BLK_MQ_F_STACKING`: the queue sits on top of other block devices or files.
    pub(crate) const STACKING: Self = Self(bindings::BLK_MQ_F_STACKING);
    /// `BLK_MQ_F_NO_SCHED_BY_DEFAULT`: no I/O scheduler unless the user asks for one.
    pub(crate) const NO_SCHED_BY_DEFAULT: Self = Self(bindings::BLK_MQ_F_NO_SCHED_BY_DEFAULT);
}

impl core::ops::BitOr for TagSetFlags {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// A blk-mq tag set with one hardware queue.
///
/// # Invariants
///
/// `inner` was set up by `blk_mq_alloc_tag_set` with `OperationsVTable::<T>::VTABLE` and a
/// PDU of `T::Pdu`, and is freed on drop.
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
    /// Allocates a tag set of `queue_depth` tags with the given flags.
    pub(crate) fn new(queue_depth: u32, flags: TagSetFlags) -> impl PinInit<Self, Error> {
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
                    flags: flags.0,
                    ..pin_init::zeroed()
                };
                // SAFETY: `slot` is valid for writes and pinned.
                unsafe { slot.write(set) };
                // INVARIANT: On success the tag set is allocated with `T`'s table and PDU.
                // SAFETY: `slot` holds a filled-in tag set; on failure the C function leaves
                // nothing allocated.
                to_result(unsafe { bindings::blk_mq_alloc_tag_set(slot) })
            }),
            _p: PhantomData,
        })
    }

    pub(super) fn as_raw(&self) -> *mut bindings::blk_mq_tag_set {
        self.inner.get()
    }
}

#[pinned_drop]
impl<T: Operations> PinnedDrop for TagSet<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant the tag set was allocated and is not freed yet; its
        // disk was deleted and put before (see `GenDisk`'s field order).
        unsafe { bindings::blk_mq_free_tag_set(self.inner.get()) };
    }
}
