// SPDX-License-Identifier: GPL-2.0

//! One loop device (`struct loop_device`): its state, its configuration, and the blk-mq and
//! block-device operations that reach it.
//!
//! C version: [`drivers/block/loop.c`](srctree/drivers/block/loop.c). The work is split by
//! locking domain:
//!
//! - [`config`]: everything under `lo_mutex` (may sleep): configure and clear, the status
//!   ioctls, `LOOP_CHANGE_FD`, direct I/O and block size changes, open and release, in
//!   loop.c order;
//! - [`io`]: the request life cycle, from `queue_rq` (atomic) through the worker to the
//!   completion; it never takes `lo_mutex`;
//! - [`sysfs`]: the `loop/` attributes.
//!
//! The two halves meet in one place: the I/O path reads an immutable [`IoConfig`] snapshot,
//! which the configuration path replaces only with the queue frozen or the device unbound.
//!
//! Locking, as in C: `lo_mutex` guards the configuration; the driver-wide validate lock
//! (`loop_validate_mutex`, shared by every device) is taken before it when a backing file is
//! itself a loop device, and in `LOOP_CLR_FD`. Both are taken killably in the ioctl paths,
//! as C does. No backing file is
//! released and no partition scan runs with `lo_mutex` held (both can take the disk's
//! `open_mutex`, which nests outside `lo_mutex`).

#![deny(unsafe_code)]

mod config;
mod io;
mod sysfs;

use crate::{
    loop_uapi::{
        LoFlags,
        LO_NAME_SIZE, //
    },
    policy::{
        DioAlignment,
        DioRefusal, //
    },
    staging::{
        aio::AioSlot,
        bdev::{
            BlockDevice,
            OpenMode, //
        },
        file::{
            BackingFile,
            SyncFlags, //
        },
        gen_disk::{
            DiskRef,
            ReleasingDisk, //
        },
        mutex::KillableMutex,
        operations::{
            InIoctl,
            Operations, //
        },
        request::{
            BlkError,
            Request, //
        },
        sys::ModuleRef,
        workqueue::OwnedQueue,
    },
};
use kernel::{
    new_mutex, new_spinlock_irq,
    prelude::*,
    static_lock_class,
    sync::{
        atomic::{
            Acquire,
            Atomic,
            Release, //
        },
        Arc, ArcBorrow, Mutex, SetOnce, SpinLockIrq,
    },
    workqueue::{
        impl_has_work,
        new_work,
        Work, //
    },
};

/// The life cycle of a loop device (`Lo_*` in C).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub(crate) enum State {
    /// No backing file.
    Unbound = 0,
    /// A backing file is attached and I/O flows.
    Bound = 1,
    /// Detaching: the backing file goes away on last close.
    Rundown = 2,
    /// Being removed through `LOOP_CTL_REMOVE`.
    Deleting = 3,
}

impl State {
    fn from_raw(v: i32) -> Self {
        match v {
            1 => Self::Bound,
            2 => Self::Rundown,
            3 => Self::Deleting,
            _ => Self::Unbound,
        }
    }
}

/// What the I/O path needs of the configuration. Immutable: a change installs a new one, with
/// the queue frozen or the device unbound, so a worker's snapshot never changes under it.
/// Each request holds a copy (a counted reference to the file, no allocation).
#[derive(Clone)]
pub(crate) struct IoConfig {
    file: BackingFile,
    offset: u64,
    read_only: bool,
    /// Reads and writes use asynchronous direct I/O (`use_aio` in C).
    dio: bool,
    /// The durability of an `O_DSYNC`/`O_SYNC` backing file, kept for every write.
    sync: SyncFlags,
}

/// The configuration of a device, guarded by `lo_mutex`.
pub(crate) struct Config {
    offset: u64,
    sizelimit: u64,
    flags: LoFlags,
    file_name: [u8; LO_NAME_SIZE],
    /// The backing file while bound.
    file: Option<BackingFile>,
    /// The backing mapping's allocation mask before loop restricted it.
    old_gfp_mask: u32,
    /// Whether the `loop/` sysfs group was created.
    sysfs_inited: bool,
    /// A reference on this module while bound.
    module_ref: Option<ModuleRef>,
    /// The backing file's direct I/O alignment (`lo_min_dio_size`, `lo_dio_mem_align`).
    dio_align: DioAlignment,
    /// Why direct I/O was dropped, if it was.
    dio_refusal: Option<DioRefusal>,
}

impl Config {
    fn new() -> Self {
        Self {
            offset: 0,
            sizelimit: 0,
            flags: LoFlags::empty(),
            file_name: [0; LO_NAME_SIZE],
            file: None,
            old_gfp_mask: 0,
            sysfs_inited: false,
            module_ref: None,
            dio_align: DioAlignment::UNBOUND,
            dio_refusal: None,
        }
    }
}

/// Requests waiting for the worker, and the configuration they run with.
struct Pending {
    rqs: KVec<Request<LoopDevice>>,
    io: Option<IoConfig>,
}

/// The per-request driver data (`struct loop_cmd`).
pub(crate) struct LoopCmd {
    /// The result for `complete`: bytes transferred or a negative errno.
    ret: Atomic<i64>,
    /// The direct I/O state, which holds the request's configuration while in flight.
    aio: AioSlot<IoConfig>,
}

impl Default for LoopCmd {
    fn default() -> Self {
        Self {
            ret: Atomic::new(0),
            aio: AioSlot::default(),
        }
    }
}

/// A loop device (`struct loop_device`).
#[pin_data]
pub(crate) struct LoopDevice {
    /// The index N of `/dev/loopN`.
    number: u32,
    /// Minors per device are `1 << part_shift` (module parameter `max_part`).
    part_shift: u32,
    /// The [`State`]. Written under `lo_mutex`; read without locks by the I/O path and
    /// `LOOP_CTL_GET_FREE`, with acquire ordering against the configuration published
    /// before it.
    state: Atomic<i32>,
    /// Serialises configuration changes (`lo_mutex`).
    #[pin]
    lo_mutex: KillableMutex<Config>,
    /// Serialises backing-file validation against loop chains, for every device
    /// (`loop_validate_mutex`).
    validate: Arc<KillableMutex<()>>,
    /// The backing file as sysfs shows it (`lo_lock`).
    #[pin]
    lo_lock: SpinLockIrq<Option<BackingFile>>,
    /// Copies of `offset`, `sizelimit` and `flags` for the lockless sysfs reads.
    shown_offset: Atomic<u64>,
    shown_sizelimit: Atomic<u64>,
    shown_flags: Atomic<u32>,
    /// When a direct I/O refusal was last logged, in jiffies (rate limit).
    dio_logged_at: Atomic<u64>,
    /// Requests from `queue_rq` for the worker (`lo_work_lock` and `rootcg_cmd_list`).
    #[pin]
    pending: SpinLockIrq<Pending>,
    /// The worker's batch, swapped with `pending.rqs` so that neither allocates.
    #[pin]
    batch: Mutex<KVec<Request<LoopDevice>>>,
    /// The worker (`rootcg_work`).
    #[pin]
    work: Work<LoopDevice>,
    /// The device's workqueue, created on first configure.
    wq: SetOnce<OwnedQueue>,
}

impl_has_work! {
    impl HasWork<Self> for LoopDevice { self.work }
}

impl LoopDevice {
    /// A new unbound device with index `number`, for a queue of `depth` tags, sharing the
    /// driver's `validate` lock.
    pub(crate) fn new(
        number: u32,
        part_shift: u32,
        depth: u32,
        validate: Arc<KillableMutex<()>>,
    ) -> Result<Arc<Self>> {
        // At most `depth` requests are owned by the driver at a time, so these never grow.
        let rqs = KVec::with_capacity(depth as usize, GFP_KERNEL)?;
        let batch = KVec::with_capacity(depth as usize, GFP_KERNEL)?;
        Arc::pin_init(
            try_pin_init!(Self {
                number,
                part_shift,
                state: Atomic::new(State::Unbound as i32),
                lo_mutex <- KillableMutex::new(Config::new(), c"loop::lo_mutex", static_lock_class!()),
                validate,
                lo_lock <- new_spinlock_irq!(None),
                shown_offset: Atomic::new(0),
                shown_sizelimit: Atomic::new(0),
                shown_flags: Atomic::new(0),
                dio_logged_at: Atomic::new(0),
                pending <- new_spinlock_irq!(Pending { rqs, io: None }),
                batch <- new_mutex!(batch),
                work <- new_work!("loop::work"),
                wq: SetOnce::new(),
            }),
            GFP_KERNEL,
        )
    }

    /// The index N of `/dev/loopN`.
    pub(crate) fn number(&self) -> u32 {
        self.number
    }

    /// The current state; callers that need it stable hold `lo_mutex`.
    pub(crate) fn state(&self) -> State {
        State::from_raw(self.state.load(Acquire))
    }

    fn set_state(&self, state: State) {
        self.state.store(state as i32, Release);
    }
}

impl Operations for LoopDevice {
    type Pdu = LoopCmd;

    fn queue_rq(
        this: ArcBorrow<'_, Self>,
        rq: Request<Self>,
    ) -> Result<(), (Request<Self>, BlkError)> {
        Self::queue_rq(this, rq)
    }

    fn complete(rq: Request<Self>) {
        Self::complete_rq(rq)
    }

    fn open(&self, _disk: &DiskRef, _mode: OpenMode) -> Result {
        self.lo_open()
    }

    fn release(&self, disk: &ReleasingDisk) {
        self.lo_release(disk)
    }

    fn ioctl(
        &self,
        bdev: &BlockDevice,
        mode: OpenMode,
        cmd: u32,
        arg: usize,
        ctx: &InIoctl,
    ) -> Result<i32> {
        self.lo_ioctl(bdev, mode, cmd, arg, ctx)
    }

    fn compat_ioctl(
        &self,
        bdev: &BlockDevice,
        mode: OpenMode,
        cmd: u32,
        arg: usize,
        ctx: &InIoctl,
    ) -> Result<i32> {
        self.lo_compat_ioctl(bdev, mode, cmd, arg, ctx)
    }

    fn deleted(&self) {
        // Let a running worker finish and drop its reference, so that the last reference
        // (and `destroy_workqueue`) is never dropped from the device's own workqueue.
        if let Some(wq) = self.wq.as_ref() {
            wq.flush();
        }
    }
}
