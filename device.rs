// SPDX-License-Identifier: GPL-2.0

//! One loop device: its state machine, ioctls and I/O path.
//!
//! C version: [`drivers/block/loop.c`](srctree/drivers/block/loop.c). The functions keep the
//! C names and order (size and limits helpers, I/O, backing-file validation, `change_fd`,
//! configure/clear, status ioctls, `lo_ioctl`, open/release, `queue_rq` and the worker), so
//! the two can be read side by side.
//!
//! Locking, as in C: `lo_mutex` guards the configuration; `LOOP_VALIDATE` is taken before it
//! when a backing file is itself a loop device, and in `LOOP_CLR_FD`. No backing file is
//! released and no partition scan runs with `lo_mutex` held (both can take the disk's
//! `open_mutex`, which nests outside `lo_mutex`). The I/O path never takes `lo_mutex`: it
//! reads an immutable [`IoConfig`] snapshot that changes only with the queue frozen or the
//! device unbound.

use crate::{
    blk::{
        self,
        BlkError,
        BlockDevice,
        DiskRef,
        IterDir,
        OpenMode,
        ReleasingDisk,
        ReqOp,
        Request, //
    },
    file::BackingFile,
    loop_uapi::*,
    sys,
};
use kernel::{
    bindings, new_mutex, new_spinlock_irq,
    prelude::*,
    sync::{
        atomic::{
            Acquire,
            Atomic,
            Full,
            Relaxed,
            Release, //
        },
        global_lock, Arc, ArcBorrow, Mutex, MutexGuard, SetOnce, SpinLockIrq,
    },
    types::Opaque,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    workqueue::{
        self,
        impl_has_work,
        new_work,
        Work,
        WorkItem, //
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

global_lock! {
    // SAFETY: `init_locks` runs in module init before any other use.
    /// Serialises backing-file validation against loop chains (`loop_validate_mutex`).
    unsafe(uninit) static LOOP_VALIDATE: Mutex<()> = ();
}

/// Initialises the driver-wide locks; called once from module init.
pub(crate) fn init_locks() {
    // SAFETY: Called once, before any other use of `LOOP_VALIDATE`.
    unsafe { LOOP_VALIDATE.init() };
}

/// A unique address identifying loop as the holder of a block-device claim.
static CLAIM_HOLDER: u8 = 0;

/// What the I/O path needs of the configuration. Immutable: a change installs a new one, with
/// the queue frozen or the device unbound, so a worker's snapshot never changes under it.
pub(crate) struct IoConfig {
    file: BackingFile,
    offset: u64,
    read_only: bool,
    /// Reads and writes use asynchronous direct I/O (`use_aio` in C).
    dio: bool,
    /// `IOCB_DSYNC`/`IOCB_SYNC` of an `O_DSYNC`/`O_SYNC` backing file, kept for every write.
    sync_flags: i32,
}

/// Why direct I/O was asked for but is not used (shown in `loop/dio_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DioRefusal {
    /// Direct I/O is used, or was not asked for.
    None,
    /// The backing file does not support `O_DIRECT`.
    NoOdirect,
    /// The offset is not a multiple of the backing file's direct I/O alignment.
    Offset { offset: u64, align: u32 },
    /// The logical block size is smaller than the backing file's direct I/O alignment.
    BlockSize { block_size: u32, align: u32 },
}

impl kernel::fmt::Display for DioRefusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::None => f.write_str("none"),
            Self::NoOdirect => f.write_str("backing file does not support O_DIRECT"),
            Self::Offset { offset, align } => {
                write!(f, "offset {offset} not aligned to {align}")
            }
            Self::BlockSize { block_size, align } => {
                write!(f, "logical block size {block_size} smaller than {align}")
            }
        }
    }
}

/// The configuration of a device, guarded by `lo_mutex`.
pub(crate) struct Config {
    offset: u64,
    sizelimit: u64,
    flags: u32,
    file_name: [u8; LO_NAME_SIZE],
    /// The backing file while bound.
    file: Option<BackingFile>,
    /// The backing mapping's allocation mask before loop restricted it.
    old_gfp_mask: u32,
    /// Whether the `loop/` sysfs group was created.
    sysfs_inited: bool,
    /// A reference on this module while bound.
    module_ref: Option<sys::ModuleRef>,
    /// The backing file's direct I/O offset/size alignment (`lo_min_dio_size`).
    min_dio_size: u32,
    /// The backing file's direct I/O memory alignment mask (`lo_dio_mem_align`).
    dio_mem_align: u32,
    /// Why direct I/O was dropped, if it was.
    dio_refusal: DioRefusal,
}

impl Config {
    fn new() -> Self {
        Self {
            offset: 0,
            sizelimit: 0,
            flags: 0,
            file_name: [0; LO_NAME_SIZE],
            file: None,
            old_gfp_mask: 0,
            sysfs_inited: false,
            module_ref: None,
            min_dio_size: sys::SECTOR_SIZE,
            dio_mem_align: sys::SECTOR_SIZE - 1,
            dio_refusal: DioRefusal::None,
        }
    }
}

/// Requests waiting for the worker, and the configuration they run with.
struct Pending {
    rqs: KVec<Request<LoopDevice>>,
    io: Option<Arc<IoConfig>>,
}

/// The per-request driver data (`struct loop_cmd`).
pub(crate) struct LoopCmd {
    /// The result for `complete`: bytes transferred or a negative errno.
    ret: Atomic<i64>,
    /// Owners of an asynchronous direct I/O: the submitter and the completion (`ref`).
    refs: Atomic<i32>,
    /// The asynchronous direct I/O state. Only the owner of the request touches it: the
    /// worker until it submits, then whichever of submitter and completion drops `refs` to 0.
    aio: Opaque<AioState>,
}

/// The kiocb of an asynchronous direct I/O and what must live as long as it.
#[repr(C)]
struct AioState {
    iocb: bindings::kiocb,
    /// The request's bio vectors gathered from several bios (`cmd->bvec`).
    bvec: KVec<bindings::bio_vec>,
    /// Keeps the backing file alive until the completion.
    io: Option<Arc<IoConfig>>,
    write: bool,
}

impl Default for LoopCmd {
    fn default() -> Self {
        Self {
            ret: Atomic::new(0),
            refs: Atomic::new(0),
            aio: Opaque::new(AioState {
                iocb: pin_init::zeroed(),
                bvec: KVec::new(),
                io: None,
                write: false,
            }),
        }
    }
}

impl Drop for LoopCmd {
    fn drop(&mut self) {
        // SAFETY: The request is gone (`exit_request`), so nobody else uses the state.
        unsafe { core::ptr::drop_in_place(self.aio.get()) };
    }
}

// SAFETY: `aio` is only accessed by the current owner of the request (see its doc), and the
// hand-over between submitter and completion is ordered by `refs`.
unsafe impl Sync for LoopCmd {}
// SAFETY: As above; the state holds `Send` data only.
unsafe impl Send for LoopCmd {}

/// A workqueue owned by one device (`alloc_workqueue("loop%d")`), destroyed on drop.
///
/// # Invariants
///
/// `0` is a live workqueue owned by this value.
struct OwnedQueue(core::ptr::NonNull<bindings::workqueue_struct>);

// SAFETY: Workqueues may be used and destroyed from any thread.
unsafe impl Send for OwnedQueue {}
// SAFETY: `&OwnedQueue` only enqueues and flushes, which the workqueue synchronises.
unsafe impl Sync for OwnedQueue {}

impl OwnedQueue {
    fn new(number: u32) -> Result<Self> {
        // SAFETY: The format string is static and takes one int argument.
        let wq = unsafe {
            bindings::alloc_workqueue_noprof(
                c"loop%d".as_char_ptr(),
                bindings::wq_flags_WQ_UNBOUND | bindings::wq_flags_WQ_FREEZABLE,
                0,
                number as i32,
            )
        };
        // INVARIANT: Non-null means a new workqueue.
        core::ptr::NonNull::new(wq).map(Self).ok_or(ENOMEM)
    }

    fn queue(&self) -> &workqueue::Queue {
        // SAFETY: By the type invariant the workqueue lives as long as `self`.
        unsafe { workqueue::Queue::from_raw(self.0.as_ptr()) }
    }

    /// Waits for every queued work item to finish.
    fn flush(&self) {
        // SAFETY: The workqueue is live.
        unsafe { bindings::__flush_workqueue(self.0.as_ptr()) };
    }
}

impl Drop for OwnedQueue {
    fn drop(&mut self) {
        // SAFETY: The workqueue is live and owned; `LoopDevice::deleted` flushed it, so this
        // never runs from one of its own work items.
        unsafe { bindings::destroy_workqueue(self.0.as_ptr()) };
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
    lo_mutex: Mutex<Config>,
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
    /// A new unbound device with index `number`, for a queue of `depth` tags.
    pub(crate) fn new(number: u32, part_shift: u32, depth: u32) -> Result<Arc<Self>> {
        // At most `depth` requests are owned by the driver at a time, so these never grow.
        let rqs = KVec::with_capacity(depth as usize, GFP_KERNEL)?;
        let batch = KVec::with_capacity(depth as usize, GFP_KERNEL)?;
        Arc::pin_init(
            try_pin_init!(Self {
                number,
                part_shift,
                state: Atomic::new(State::Unbound as i32),
                lo_mutex <- new_mutex!(Config::new()),
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

    /// Takes `LOOP_VALIDATE` (if `global`) and then `lo_mutex` (`loop_global_lock_killable`).
    ///
    /// The locks are not killable as in C: the kernel crate has no killable mutex.
    fn global_lock(
        &self,
        global: bool,
    ) -> (
        Option<kernel::sync::lock::GlobalGuard<LOOP_VALIDATE>>,
        MutexGuard<'_, Config>,
    ) {
        let validate = global.then(|| LOOP_VALIDATE.lock());
        (validate, self.lo_mutex.lock())
    }

    /// Copies what sysfs shows out of `cfg`.
    fn show(&self, cfg: &Config) {
        self.shown_offset.store(cfg.offset, Relaxed);
        self.shown_sizelimit.store(cfg.sizelimit, Relaxed);
        self.shown_flags.store(cfg.flags, Relaxed);
    }

    /// A new I/O configuration. Allocated before a change starts, so that installing it
    /// cannot fail halfway.
    fn new_io(file: &BackingFile, offset: u64, flags: u32) -> Result<Arc<IoConfig>> {
        Ok(Arc::new(
            IoConfig {
                file: file.clone(),
                offset,
                read_only: flags & LO_FLAGS_READ_ONLY != 0,
                dio: flags & LO_FLAGS_DIRECT_IO != 0,
                sync_flags: file.sync_flags(),
            },
            GFP_KERNEL,
        )?)
    }

    /// Installs the I/O configuration `io` (none when unbound) and shows `cfg` in sysfs.
    ///
    /// The caller holds `lo_mutex` and has the queue frozen or the device not bound.
    fn install_io(&self, cfg: &Config, io: Option<Arc<IoConfig>>) {
        // The old snapshot is dropped after the lock; it is not its file's last reference
        // (the caller holds one), so this releases no file under `lo_mutex`.
        let old = core::mem::replace(&mut self.pending.lock().io, io);
        drop(old);
        self.show(cfg);
    }

    /// Marks the device as being removed if it is unbound and closed (`loop_control_remove`).
    pub(crate) fn start_removal(&self, disk: &DiskRef) -> Result {
        let _cfg = self.lo_mutex.lock();
        if self.state() != State::Unbound || disk.openers() > 0 {
            return Err(EBUSY);
        }
        self.set_state(State::Deleting);
        Ok(())
    }

    // --- Size and limits -------------------------------------------------------------------

    /// The device size in sectors for `file` (`lo_calculate_size`).
    fn calculate_size(cfg: &Config, file: &BackingFile) -> u64 {
        let mut size = file.size().saturating_sub(cfg.offset);
        if cfg.sizelimit > 0 && cfg.sizelimit < size {
            size = cfg.sizelimit;
        }
        size >> 9
    }

    /// Sets the capacity and tells user space (`loop_set_size`).
    fn set_size(disk: &DiskRef, sectors: u64) {
        if !disk.set_capacity_and_notify(sectors) {
            disk.uevent_change();
        }
    }

    /// The block size when none is given (`loop_default_blocksize`): with direct I/O, the
    /// backing file's minimum.
    fn default_blocksize(cfg: &Config) -> u32 {
        if cfg.flags & LO_FLAGS_DIRECT_IO != 0 {
            cfg.min_dio_size
        } else {
            sys::SECTOR_SIZE
        }
    }

    /// The DMA alignment: with direct I/O the user's pages go to the backing file as they
    /// are, so its alignment applies (`loop_set_dma_limit`).
    fn set_dma_limit(cfg: &Config, lim: &mut bindings::queue_limits) {
        lim.dma_alignment = if cfg.flags & LO_FLAGS_DIRECT_IO != 0 {
            cfg.dio_mem_align.max(sys::SECTOR_SIZE - 1)
        } else {
            sys::SECTOR_SIZE - 1
        };
    }

    /// Fills the queue limits for the backing file and block size `bsize`
    /// (`loop_update_limits`; 0 means the default).
    fn update_limits(
        cfg: &Config,
        file: &BackingFile,
        lim: &mut bindings::queue_limits,
        bsize: u32,
    ) {
        let bsize = if bsize == 0 {
            Self::default_blocksize(cfg)
        } else {
            bsize
        };
        let (max_discard_sectors, granularity) = file.discard_config();
        lim.logical_block_size = bsize;
        lim.physical_block_size = bsize;
        lim.io_min = bsize;
        Self::set_dma_limit(cfg, lim);
        lim.features &= !(blk::BLK_FEAT_WRITE_CACHE | blk::BLK_FEAT_ROTATIONAL);
        if file.has_fsync() && cfg.flags & LO_FLAGS_READ_ONLY == 0 {
            lim.features |= blk::BLK_FEAT_WRITE_CACHE;
        }
        if file.rotational() {
            lim.features |= blk::BLK_FEAT_ROTATIONAL;
        }
        lim.max_hw_discard_sectors = max_discard_sectors;
        lim.max_write_zeroes_sectors = max_discard_sectors;
        lim.discard_granularity = if max_discard_sectors != 0 {
            granularity
        } else {
            0
        };
    }

    /// Whether direct I/O can be used with logical block size `lbs` (`lo_can_use_dio`).
    fn can_use_dio(cfg: &Config, lbs: u32) -> Result<(), DioRefusal> {
        let file = cfg.file.as_ref().ok_or(DioRefusal::NoOdirect)?;
        if !file.can_odirect() {
            return Err(DioRefusal::NoOdirect);
        }
        let align = cfg.min_dio_size;
        if lbs < align {
            return Err(DioRefusal::BlockSize {
                block_size: lbs,
                align,
            });
        }
        if cfg.offset & u64::from(align.wrapping_sub(1)) != 0 {
            return Err(DioRefusal::Offset {
                offset: cfg.offset,
                align,
            });
        }
        Ok(())
    }

    /// Drops the direct I/O flag if it cannot be honoured with logical block size `lbs`
    /// (`loop_update_dio`), and says why.
    fn update_dio(&self, cfg: &mut Config, lbs: u32) {
        if cfg.flags & LO_FLAGS_DIRECT_IO == 0 {
            return;
        }
        match Self::can_use_dio(cfg, lbs) {
            Ok(()) => cfg.dio_refusal = DioRefusal::None,
            Err(why) => {
                cfg.flags &= !LO_FLAGS_DIRECT_IO;
                self.refuse_dio(cfg, why);
            }
        }
    }

    /// Records and logs (at most every 5 seconds per device) why direct I/O is not used. C
    /// loop drops it silently.
    fn refuse_dio(&self, cfg: &mut Config, why: DioRefusal) {
        cfg.dio_refusal = why;
        let now = sys::jiffies();
        let last = self.dio_logged_at.load(Relaxed);
        if last == 0 || now.wrapping_sub(last) > 5 * u64::from(bindings::HZ) {
            self.dio_logged_at.store(now, Relaxed);
            pr_info!("loop{}: direct I/O not used: {}\n", self.number, why);
        }
    }

    // --- Backing file validation -----------------------------------------------------------

    /// Refuses loops back to `bdev` through a chain of loop devices, and backing files that
    /// are neither regular files nor block devices (`loop_validate_file`).
    ///
    /// The caller holds `LOOP_VALIDATE` if `file` is a loop device.
    fn validate_file(file: &BackingFile, bdev: &BlockDevice) -> Result {
        let mut f = file.clone();
        while let Some(rdev) = f.loop_device() {
            if rdev == bdev.dev() {
                return Err(EBADF);
            }
            let next = {
                // SAFETY: `f` is an open block-device file, which keeps its bdev alive while
                // `l` is used.
                let l =
                    unsafe { blk::device_of_bdev::<LoopDevice>(f.backing_bdev()) }.ok_or(EINVAL)?;
                if l.state() != State::Bound {
                    return Err(EINVAL);
                }
                // The state was read with acquire ordering, so the backing file published
                // before `Bound` is visible.
                l.lo_lock.lock().clone().ok_or(EINVAL)?
            };
            f = next;
        }
        if !file.is_reg_or_blk() {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// Takes `file` as backing file (`loop_assign_backing_file`).
    fn assign_backing_file(&self, cfg: &mut Config, file: BackingFile) {
        cfg.old_gfp_mask = file.gfp_mask();
        file.set_gfp_mask(cfg.old_gfp_mask & !sys::GFP_IO_FS);
        if file.o_direct() {
            cfg.flags |= LO_FLAGS_DIRECT_IO;
        }
        (cfg.min_dio_size, cfg.dio_mem_align) = file.dio_alignment();
        *self.lo_lock.lock() = Some(file.clone());
        cfg.file = Some(file);
    }

    /// Switches a read-only device to another file of the same size (`loop_change_fd`).
    fn change_fd(&self, bdev: &BlockDevice, fd: u32) -> Result {
        let disk = bdev.disk();
        let file = BackingFile::fget(fd)?;
        file.check()?;
        disk.suppress_uevents(true);
        let result = self.change_fd_locked(bdev, file);
        disk.suppress_uevents(false);
        if let Ok(true) = result {
            if let Err(e) = disk.reread_partitions() {
                self.warn_partscan(e);
            }
        }
        disk.uevent_change();
        result.map(|_| ())
    }

    /// The part of `change_fd` under the locks; returns whether to rescan partitions.
    fn change_fd_locked(&self, bdev: &BlockDevice, file: BackingFile) -> Result<bool> {
        let disk = bdev.disk();
        let is_loop = file.loop_device().is_some();
        let (validate, mut cfg) = self.global_lock(is_loop);
        if self.state() != State::Bound {
            return Err(ENXIO);
        }
        if cfg.flags & LO_FLAGS_READ_ONLY == 0 {
            return Err(EINVAL);
        }
        Self::validate_file(&file, bdev)?;
        let old = cfg.file.clone().ok_or(ENXIO)?;
        if Self::calculate_size(&cfg, &file) != Self::calculate_size(&cfg, &old) {
            return Err(EINVAL);
        }
        // Both outcomes of the direct I/O decision, allocated before anything changes.
        let io_dio = Self::new_io(&file, cfg.offset, cfg.flags | LO_FLAGS_DIRECT_IO)?;
        let io_buf = Self::new_io(&file, cfg.offset, cfg.flags & !LO_FLAGS_DIRECT_IO)?;
        // We might switch to direct I/O: write back dirty data now.
        let _ = file.fsync();
        disk.force_media_change();
        {
            let _frozen = disk.queue().freeze();
            old.set_gfp_mask(cfg.old_gfp_mask);
            self.assign_backing_file(&mut cfg, file);
            self.update_dio(&mut cfg, disk.queue().logical_block_size());
            let io = if cfg.flags & LO_FLAGS_DIRECT_IO != 0 {
                io_dio
            } else {
                io_buf
            };
            self.install_io(&cfg, Some(io));
        }
        let partscan = cfg.flags & LO_FLAGS_PARTSCAN != 0;
        drop(cfg);
        drop(validate);
        // Flush `validate_file` walks that may still look at the old file before releasing
        // it, unless we held the lock ourselves.
        if !is_loop {
            drop(LOOP_VALIDATE.lock());
        }
        // The old file is released here, outside `lo_mutex`.
        drop(old);
        Ok(partscan)
    }

    // --- Configure and clear ---------------------------------------------------------------

    /// Checks the offset, size limit and encryption of `info` (the checks of
    /// `loop_set_status_from_info`).
    fn check_status(info: &LoopInfo64) -> Result {
        if info.lo_encrypt_key_size > LO_KEY_SIZE as u32 {
            return Err(EINVAL);
        }
        match info.lo_encrypt_type {
            LO_CRYPT_NONE => {}
            LO_CRYPT_XOR => {
                pr_warn!("support for the xor transformation has been removed.\n");
                return Err(EINVAL);
            }
            LO_CRYPT_CRYPTOAPI => {
                pr_warn!("support for cryptoloop has been removed.  Use dm-crypt instead.\n");
                return Err(EINVAL);
            }
            _ => return Err(EINVAL),
        }
        if info.lo_offset > i64::MAX as u64 || info.lo_sizelimit > i64::MAX as u64 {
            return Err(EOVERFLOW);
        }
        Ok(())
    }

    /// Applies the offset, size limit and name of a checked `info` (the rest of
    /// `loop_set_status_from_info`).
    fn apply_status(cfg: &mut Config, info: &LoopInfo64) {
        cfg.offset = info.lo_offset;
        cfg.sizelimit = info.lo_sizelimit;
        cfg.file_name = info.lo_file_name;
        cfg.file_name[LO_NAME_SIZE - 1] = 0;
    }

    /// Binds the device to a backing file (`loop_configure`).
    fn configure(&self, bdev: &BlockDevice, mode: OpenMode, config: &LoopConfig) -> Result {
        let file = BackingFile::fget(config.fd)?;
        file.check()?;
        let is_loop = file.loop_device().is_some();
        // Safe: the opener of the device holds a module reference.
        let module_ref = sys::ModuleRef::get();
        // Upgrade to an exclusive claim so the device does not change under an exclusive
        // owner.
        let claim = bdev.claim(mode, &CLAIM_HOLDER)?;
        let disk = bdev.disk();

        let (validate, mut cfg) = self.global_lock(is_loop);
        if self.state() != State::Unbound {
            return Err(EBUSY);
        }
        Self::validate_file(&file, bdev)?;
        if config.info.lo_flags & !LOOP_CONFIGURE_SETTABLE_FLAGS != 0 {
            return Err(EINVAL);
        }
        Self::check_status(&config.info)?;
        let mut flags = config.info.lo_flags;
        if !file.writable() || !mode.write() || !file.has_write_iter() {
            flags |= LO_FLAGS_READ_ONLY;
        }
        if self.wq.as_ref().is_none() {
            // Only this path populates it, under `lo_mutex`.
            let _ = self.wq.populate(OwnedQueue::new(self.number)?);
        }
        if file.o_direct() {
            flags |= LO_FLAGS_DIRECT_IO;
        }
        let io_dio = Self::new_io(&file, config.info.lo_offset, flags | LO_FLAGS_DIRECT_IO)?;
        let io_buf = Self::new_io(&file, config.info.lo_offset, flags & !LO_FLAGS_DIRECT_IO)?;
        // Nothing changed so far; from here on, changes are undone on failure.
        Self::apply_status(&mut cfg, &config.info);
        cfg.flags = flags;
        cfg.dio_refusal = DioRefusal::None;

        disk.suppress_uevents(true);
        disk.force_media_change();
        disk.set_read_only(cfg.flags & LO_FLAGS_READ_ONLY != 0);
        self.assign_backing_file(&mut cfg, file.clone());

        let mut lim = disk.queue().start_limits_update();
        Self::update_limits(&cfg, &file, &mut lim.lim, config.block_size);
        // No need to freeze the queue: the device is not bound yet.
        if let Err(e) = lim.commit() {
            // Undo the assignment (C leaves it behind).
            file.set_gfp_mask(cfg.old_gfp_mask);
            *self.lo_lock.lock() = None;
            let old = cfg.file.take();
            *cfg = Config::new();
            disk.suppress_uevents(false);
            drop(cfg);
            drop(validate);
            drop(old);
            return Err(e);
        }
        // We might switch to direct I/O: write back dirty data now.
        let _ = file.fsync();
        self.update_dio(&mut cfg, disk.queue().logical_block_size());
        cfg.sysfs_inited = disk.add_group(&crate::sysfs::LOOP_GROUP).is_ok();
        Self::set_size(disk, Self::calculate_size(&cfg, &file));

        if self.part_shift != 0 {
            cfg.flags |= LO_FLAGS_PARTSCAN;
        }
        let partscan = cfg.flags & LO_FLAGS_PARTSCAN != 0;
        cfg.module_ref = Some(module_ref);
        let io = if cfg.flags & LO_FLAGS_DIRECT_IO != 0 {
            io_dio
        } else {
            io_buf
        };
        self.install_io(&cfg, Some(io));
        // Everything above is published before the state says so (C's `wmb()`).
        self.set_state(State::Bound);
        if partscan {
            disk.suppress_part_scan(false);
        }
        disk.suppress_uevents(false);
        disk.uevent_change();
        drop(cfg);
        drop(validate);
        if partscan {
            if let Err(e) = disk.reread_partitions() {
                self.warn_partscan(e);
            }
        }
        drop(claim);
        Ok(())
    }

    fn warn_partscan(&self, e: Error) {
        pr_warn!(
            "partition scan of loop{} failed (rc={})\n",
            self.number,
            e.to_errno()
        );
    }

    /// Detaches the backing file on last close (`__loop_clr_fd`).
    ///
    /// Called from `release` with the disk's `open_mutex` held and the state `Rundown`,
    /// which keeps every other configuration path away.
    fn clr_fd_locked(&self, disk: &ReleasingDisk) {
        let (file, old_gfp, sysfs_inited, module_ref, io) = {
            let mut cfg = self.lo_mutex.lock();
            *self.lo_lock.lock() = None;
            let io = self.pending.lock().io.take();
            let file = cfg.file.take();
            cfg.offset = 0;
            cfg.sizelimit = 0;
            cfg.file_name = [0; LO_NAME_SIZE];
            self.show(&cfg);
            let sysfs_inited = core::mem::replace(&mut cfg.sysfs_inited, false);
            (
                file,
                cfg.old_gfp_mask,
                sysfs_inited,
                cfg.module_ref.take(),
                io,
            )
        };
        // Reset the block size; no freeze needed as the last release leaves no I/O.
        let mut lim = disk.queue().start_limits_update();
        lim.lim.logical_block_size = sys::SECTOR_SIZE;
        lim.lim.physical_block_size = sys::SECTOR_SIZE;
        lim.lim.io_min = sys::SECTOR_SIZE;
        let _ = lim.commit();

        disk.invalidate();
        if sysfs_inited {
            disk.remove_group(&crate::sysfs::LOOP_GROUP);
        }
        disk.uevent_change();
        if let Some(file) = &file {
            file.set_gfp_mask(old_gfp);
        }
        drop(module_ref);
        disk.force_media_change();
        // Removes every partition, also those added with BLKPG without partscan.
        if let Err(e) = disk.disk_changed() {
            self.warn_partscan(e);
        }
        {
            let mut cfg = self.lo_mutex.lock();
            cfg.flags = 0;
            self.show(&cfg);
            if self.part_shift == 0 {
                disk.suppress_part_scan(true);
            }
            self.set_state(State::Unbound);
        }
        // The file is released outside `lo_mutex` (`fput` may take `open_mutex`).
        drop(io);
        drop(file);
    }

    /// Marks the device for detach on last close (`loop_clr_fd`).
    fn clr_fd(&self, disk: &DiskRef) -> Result {
        // The global lock makes `validate_file` of a concurrent configure see the new state.
        let (_validate, mut cfg) = self.global_lock(true);
        if self.state() != State::Bound {
            return Err(ENXIO);
        }
        cfg.flags |= LO_FLAGS_AUTOCLEAR;
        self.show(&cfg);
        if disk.openers() == 1 {
            self.set_state(State::Rundown);
        }
        Ok(())
    }

    // --- Status ioctls ---------------------------------------------------------------------

    /// `LOOP_SET_STATUS(64)` (`loop_set_status`).
    fn set_status(&self, disk: &DiskRef, info: &LoopInfo64) -> Result {
        let mut cfg = self.lo_mutex.lock();
        if self.state() != State::Bound {
            return Err(ENXIO);
        }
        let file = cfg.file.clone().ok_or(ENXIO)?;
        let size_changed = cfg.offset != info.lo_offset || cfg.sizelimit != info.lo_sizelimit;
        if size_changed {
            disk.part0().sync();
            disk.part0().invalidate();
        }
        Self::check_status(info)?;
        let io_dio = Self::new_io(&file, info.lo_offset, cfg.flags | LO_FLAGS_DIRECT_IO)?;
        let io_buf = Self::new_io(&file, info.lo_offset, cfg.flags & !LO_FLAGS_DIRECT_IO)?;
        let partscan;
        {
            // I/O must drain before the offset or size limit change.
            let _frozen = disk.queue().freeze();
            Self::apply_status(&mut cfg, info);
            partscan = cfg.flags & LO_FLAGS_PARTSCAN == 0 && info.lo_flags & LO_FLAGS_PARTSCAN != 0;
            cfg.flags &= !LOOP_SET_STATUS_CLEARABLE_FLAGS;
            cfg.flags |= info.lo_flags & LOOP_SET_STATUS_SETTABLE_FLAGS;
            // The offset may break direct I/O alignment.
            self.update_dio(&mut cfg, disk.queue().logical_block_size());
            let io = if cfg.flags & LO_FLAGS_DIRECT_IO != 0 {
                io_dio
            } else {
                io_buf
            };
            self.install_io(&cfg, Some(io));
        }
        if partscan {
            disk.suppress_part_scan(false);
        }
        if size_changed {
            Self::set_size(disk, Self::calculate_size(&cfg, &file));
        }
        drop(cfg);
        drop(file);
        if partscan {
            if let Err(e) = disk.reread_partitions() {
                self.warn_partscan(e);
            }
        }
        Ok(())
    }

    /// `LOOP_GET_STATUS64` (`loop_get_status`).
    fn get_status(&self) -> Result<LoopInfo64> {
        let (mut info, file) = {
            let cfg = self.lo_mutex.lock();
            if self.state() != State::Bound {
                return Err(ENXIO);
            }
            let info = LoopInfo64 {
                lo_device: 0,
                lo_inode: 0,
                lo_rdevice: 0,
                lo_offset: cfg.offset,
                lo_sizelimit: cfg.sizelimit,
                lo_number: self.number,
                lo_encrypt_type: 0,
                lo_encrypt_key_size: 0,
                lo_flags: cfg.flags,
                lo_file_name: cfg.file_name,
                lo_crypt_name: [0; LO_NAME_SIZE],
                lo_encrypt_key: [0; LO_KEY_SIZE],
                lo_init: [0; 2],
            };
            (info, cfg.file.clone().ok_or(ENXIO)?)
        };
        // Call into the filesystem without `lo_mutex`.
        let ids = file.ids()?;
        info.lo_device = sys::huge_encode_dev(ids.dev);
        info.lo_inode = ids.ino;
        info.lo_rdevice = sys::huge_encode_dev(ids.rdev);
        Ok(info)
    }

    /// `LOOP_SET_CAPACITY` (`loop_set_capacity`).
    fn set_capacity(&self, disk: &DiskRef) -> Result {
        let cfg = self.lo_mutex.lock();
        if self.state() != State::Bound {
            return Err(ENXIO);
        }
        let file = cfg.file.as_ref().ok_or(ENXIO)?;
        Self::set_size(disk, Self::calculate_size(&cfg, file));
        Ok(())
    }

    /// `LOOP_SET_DIRECT_IO` (`loop_set_dio`): switches with the backing file synced and
    /// the queue frozen; refuses with EINVAL what the alignment rules forbid.
    fn set_dio(&self, disk: &DiskRef, arg: usize) -> Result {
        let mut cfg = self.lo_mutex.lock();
        if self.state() != State::Bound {
            return Err(ENXIO);
        }
        let use_dio = arg != 0;
        if use_dio == (cfg.flags & LO_FLAGS_DIRECT_IO != 0) {
            return Ok(());
        }
        let file = cfg.file.clone().ok_or(ENXIO)?;
        if use_dio {
            if let Err(why) = Self::can_use_dio(&cfg, disk.queue().logical_block_size()) {
                self.refuse_dio(&mut cfg, why);
                return Err(EINVAL);
            }
            // Flush dirty pages before direct I/O bypasses the page cache.
            let _ = file.fsync();
        }
        let flags = cfg.flags ^ LO_FLAGS_DIRECT_IO;
        let io = Self::new_io(&file, cfg.offset, flags)?;
        // Limits lock before freezing, as C.
        let mut lim = disk.queue().start_limits_update();
        let result = {
            let _frozen = disk.queue().freeze();
            cfg.flags = flags;
            cfg.dio_refusal = DioRefusal::None;
            Self::set_dma_limit(&cfg, &mut lim.lim);
            let r = lim.commit();
            self.install_io(&cfg, Some(io));
            r
        };
        drop(cfg);
        drop(file);
        result
    }

    /// `LOOP_SET_BLOCK_SIZE` (`loop_set_block_size`).
    fn set_block_size(&self, bdev: &BlockDevice, mode: OpenMode, arg: usize) -> Result {
        let _claim = bdev.claim(mode, &CLAIM_HOLDER)?;
        let disk = bdev.disk();
        let mut cfg = self.lo_mutex.lock();
        if self.state() != State::Bound {
            return Err(ENXIO);
        }
        if disk.queue().logical_block_size() as usize == arg {
            return Ok(());
        }
        let file = cfg.file.clone().ok_or(ENXIO)?;
        // The buffered configuration, in case the new size rules direct I/O out.
        let io_buf = Self::new_io(&file, cfg.offset, cfg.flags & !LO_FLAGS_DIRECT_IO)?;
        disk.part0().sync();
        disk.part0().invalidate();
        let mut lim = disk.queue().start_limits_update();
        // C passes the argument as `unsigned int`.
        Self::update_limits(&cfg, &file, &mut lim.lim, arg as u32);
        let result = {
            let _frozen = disk.queue().freeze();
            let r = lim.commit();
            let had_dio = cfg.flags & LO_FLAGS_DIRECT_IO != 0;
            self.update_dio(&mut cfg, disk.queue().logical_block_size());
            if had_dio && cfg.flags & LO_FLAGS_DIRECT_IO == 0 {
                self.install_io(&cfg, Some(io_buf));
            }
            self.show(&cfg);
            r
        };
        drop(cfg);
        drop(file);
        result
    }

    // --- ioctl dispatch --------------------------------------------------------------------

    fn read_user<T: kernel::transmute::FromBytes>(arg: usize) -> Result<T> {
        UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<T>())
            .reader()
            .read::<T>()
    }

    fn write_user<T: kernel::transmute::AsBytes>(arg: usize, value: &T) -> Result {
        UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<T>())
            .writer()
            .write(value)
    }

    /// `lo_ioctl`.
    fn lo_ioctl(&self, bdev: &BlockDevice, mode: OpenMode, cmd: u32, arg: usize) -> Result<i32> {
        let may_write = || mode.write() || sys::capable_sys_admin();
        match cmd {
            LOOP_SET_FD => {
                // Legacy: LOOP_CONFIGURE with defaults and only the descriptor.
                let config = LoopConfig {
                    fd: arg as u32,
                    block_size: 0,
                    info: info64_zeroed(),
                    reserved: [0; 8],
                };
                self.configure(bdev, mode, &config)?;
            }
            LOOP_CONFIGURE => {
                let config: LoopConfig = Self::read_user(arg)?;
                self.configure(bdev, mode, &config)?;
            }
            LOOP_CHANGE_FD => self.change_fd(bdev, arg as u32)?,
            LOOP_CLR_FD => self.clr_fd(bdev.disk())?,
            LOOP_SET_STATUS => {
                if !may_write() {
                    return Err(EPERM);
                }
                let info: LoopInfo = Self::read_user(arg)?;
                self.set_status(bdev.disk(), &info64_from_old(&info))?;
            }
            LOOP_GET_STATUS => {
                if arg == 0 {
                    return Err(EINVAL);
                }
                let info = info64_to_old(&self.get_status()?)?;
                Self::write_user(arg, &info)?;
            }
            LOOP_SET_STATUS64 => {
                if !may_write() {
                    return Err(EPERM);
                }
                let info: LoopInfo64 = Self::read_user(arg)?;
                self.set_status(bdev.disk(), &info)?;
            }
            LOOP_GET_STATUS64 => {
                if arg == 0 {
                    return Err(EINVAL);
                }
                Self::write_user(arg, &self.get_status()?)?;
            }
            LOOP_SET_BLOCK_SIZE => {
                if !may_write() {
                    return Err(EPERM);
                }
                self.set_block_size(bdev, mode, arg)?;
            }
            LOOP_SET_CAPACITY | LOOP_SET_DIRECT_IO if !may_write() => return Err(EPERM),
            LOOP_SET_CAPACITY => self.set_capacity(bdev.disk())?,
            LOOP_SET_DIRECT_IO => self.set_dio(bdev.disk(), arg)?,
            // `lo_simple_ioctl` takes `lo_mutex` before rejecting unknown commands.
            _ => {
                drop(self.lo_mutex.lock());
                return Err(EINVAL);
            }
        }
        Ok(0)
    }

    /// `lo_compat_ioctl`.
    fn lo_compat_ioctl(
        &self,
        bdev: &BlockDevice,
        mode: OpenMode,
        cmd: u32,
        arg: usize,
    ) -> Result<i32> {
        // `compat_ptr`: a 32-bit user pointer.
        let ptr = arg as u32 as usize;
        match cmd {
            LOOP_SET_STATUS => {
                if !mode.write() && !sys::capable_sys_admin() {
                    return Err(EPERM);
                }
                let info: CompatLoopInfo = Self::read_user(ptr)?;
                self.set_status(bdev.disk(), &info64_from_compat(&info))?;
                Ok(0)
            }
            LOOP_GET_STATUS => {
                if ptr == 0 {
                    return Err(EINVAL);
                }
                let info = info64_to_compat(&self.get_status()?)?;
                Self::write_user(ptr, &info)?;
                Ok(0)
            }
            LOOP_SET_CAPACITY | LOOP_CLR_FD | LOOP_GET_STATUS64 | LOOP_SET_STATUS64
            | LOOP_CONFIGURE => self.lo_ioctl(bdev, mode, cmd, ptr),
            LOOP_SET_FD | LOOP_CHANGE_FD | LOOP_SET_BLOCK_SIZE | LOOP_SET_DIRECT_IO => {
                self.lo_ioctl(bdev, mode, cmd, arg)
            }
            _ => Err(ENOIOCTLCMD),
        }
    }

    // --- I/O -------------------------------------------------------------------------------

    /// `lo_req_flush`.
    fn req_flush(io: &IoConfig) -> Result {
        match io.file.fsync() {
            Err(e) if e != EINVAL => Err(EIO),
            r => r,
        }
    }

    /// `lo_fallocate`: discard and write-zeroes through the backing file's `fallocate`.
    fn fallocate(io: &IoConfig, rq: &Request<Self>, pos: i64, mode: i32) -> Result {
        let mode = mode | sys::FALLOC_FL_KEEP_SIZE;
        if rq.queue().max_discard_sectors() == 0 {
            return Err(EOPNOTSUPP);
        }
        match io.file.fallocate(mode, pos, rq.bytes()) {
            Ok(()) => Ok(()),
            Err(e) if e == EOPNOTSUPP => {
                // The limits were set hoping `fallocate` works; it does not, so stop
                // advertising the operation (`loop_clear_limits`; unfrozen, as in C).
                let mut lim = rq.queue().start_limits_update();
                if mode & sys::FALLOC_FL_ZERO_RANGE != 0 {
                    lim.lim.max_write_zeroes_sectors = 0;
                }
                if mode & sys::FALLOC_FL_PUNCH_HOLE != 0 {
                    lim.lim.max_hw_discard_sectors = 0;
                    lim.lim.discard_granularity = 0;
                }
                let _ = lim.commit();
                Err(EOPNOTSUPP)
            }
            Err(e) if e == EINVAL => Err(EINVAL),
            Err(_) => Err(EIO),
        }
    }

    /// Reads or writes through the page cache (`lo_rw_aio` without `use_aio`); the result
    /// goes to `complete` as is.
    fn rw(io: &IoConfig, rq: &Request<Self>, pos: i64, write: bool) -> i64 {
        let mut bvecs = KVec::new();
        let dir = if write {
            IterDir::Source
        } else {
            IterDir::Dest
        };
        let mut iter = match rq.iov_iter(dir, &mut bvecs) {
            Ok(iter) => iter,
            Err(_) => return -i64::from(bindings::EIO),
        };
        match io
            .file
            .rw_sync(write, io.sync_flags, pos, rq.ioprio(), &mut iter)
        {
            Ok(n) => n as i64,
            Err(e) => i64::from(e.to_errno()),
        }
    }

    /// Starts an asynchronous direct read or write (`lo_rw_aio` with `use_aio`); the request
    /// completes from `aio_complete`, possibly in interrupt context.
    ///
    /// `io` is the request's own reference (see [`Self::handle_cmd`]): it moves into the
    /// direct I/O state and is dropped by `aio_put` before the request completes.
    fn rw_aio(io: Arc<IoConfig>, rq: Request<Self>, pos: i64, write: bool) {
        let cmd = rq.pdu();
        // SAFETY: We own the request, so its direct I/O state is ours until submission.
        let aio = unsafe { &mut *cmd.aio.get() };
        let dir = if write {
            IterDir::Source
        } else {
            IterDir::Dest
        };
        let mut iter = match rq.iov_iter(dir, &mut aio.bvec) {
            Ok(iter) => iter,
            Err(_) => {
                drop(io);
                cmd.ret.store(-i64::from(bindings::EIO), Relaxed);
                rq.complete();
                return;
            }
        };
        aio.iocb = bindings::kiocb {
            ki_filp: io.file.as_raw(),
            ki_pos: pos,
            ki_ioprio: rq.ioprio(),
            ki_complete: Some(Self::aio_complete),
            // An O_DSYNC/O_SYNC backing file keeps its durability for direct writes.
            ki_flags: sys::IOCB_DIRECT | io.sync_flags,
            ..pin_init::zeroed()
        };
        aio.write = write;
        let ret = {
            // The request's reference keeps the backing file open until `aio_put` drops it,
            // before completing; this block only borrows it, and ends before the submitter
            // lets go of the request (after which the completion may drop it).
            let io: &IoConfig = aio.io.insert(io);
            // One reference for the submitter, one for the completion.
            cmd.refs.store(2, Relaxed);
            let iocb = &raw mut aio.iocb;
            // SAFETY: `iocb` is a fully set up kiocb for the backing file, living in the PDU
            // (and the bvecs in the request or `aio.bvec`) until the completion; the write
            // freeze protection taken here is released by `aio_put` after the write ends.
            unsafe {
                if write {
                    sys::rust_loop_kiocb_start_write(iocb);
                }
                io.file.submit(iocb, write, &mut iter)
            }
        };
        let pdu = rq.into_pdu();
        // SAFETY: `pdu` is the driver data of a request that either `aio_complete` or the
        // calls below complete, once `refs` reaches 0.
        unsafe { Self::aio_put(pdu) };
        if ret != -(bindings::EIOCBQUEUED as isize) {
            // SAFETY: The request did not go asynchronous, so the completion reference is
            // still ours to drop.
            unsafe {
                pdu.as_ref().ret.store(ret as i64, Relaxed);
                Self::aio_put(pdu);
            }
        }
    }

    /// `ki_complete` of a direct I/O (`lo_rw_aio_complete`). Context: any, including hard
    /// interrupts.
    ///
    /// # Safety
    ///
    /// Called once by the filesystem for a kiocb submitted by `rw_aio`.
    unsafe extern "C" fn aio_complete(iocb: *mut bindings::kiocb, ret: kernel::ffi::c_long) {
        // SAFETY: `iocb` is the `iocb` field of the `AioState` in the `aio` field of a
        // `LoopCmd` (`rw_aio` submitted no other kiocb), and `Opaque` is a transparent
        // wrapper, so the state's address is the field's.
        let pdu = unsafe {
            let aio = kernel::container_of!(iocb, AioState, iocb);
            let cmd = kernel::container_of!(aio.cast::<Opaque<AioState>>(), LoopCmd, aio);
            core::ptr::NonNull::new_unchecked(cmd)
        };
        // SAFETY: The completion holds one of the two references.
        unsafe {
            pdu.as_ref().ret.store(ret as i64, Relaxed);
            Self::aio_put(pdu);
        }
    }

    /// Drops one reference of a direct I/O; the last one ends the write protection, drops
    /// the request's configuration reference and completes the request
    /// (`lo_rw_aio_do_completion`). Context: any.
    ///
    /// # Safety
    ///
    /// `pdu` must be the driver data of a request given up by `rw_aio`, and the caller must
    /// hold one of its two references.
    unsafe fn aio_put(pdu: core::ptr::NonNull<LoopCmd>) {
        // SAFETY: The PDU lives as long as the tag set.
        let cmd = unsafe { pdu.as_ref() };
        // Full ordering: the other owner's writes (`ret`) are visible to the last one.
        if cmd.refs.fetch_sub(1, Full) != 1 {
            return;
        }
        // SAFETY: Both references are gone, so the request and its state are ours.
        let aio = unsafe { &mut *cmd.aio.get() };
        aio.bvec.clear();
        if aio.write {
            // SAFETY: `kiocb_start_write` was called on this kiocb in `rw_aio`; its file is
            // kept open by `aio.io`, dropped only below.
            unsafe { sys::rust_loop_kiocb_end_write(&raw mut aio.iocb) };
        }
        // Not the file's last reference: the device holds the configuration until the
        // queue has drained (a freeze, or the final release, which as in C's
        // `__loop_clr_fd` has no I/O outstanding), which needs this request to complete
        // first. So nothing is released here, and this context keeps nothing of the file.
        drop(aio.io.take());
        // SAFETY: `rw_aio` gave the request up with `into_pdu`; we are its only owner now.
        unsafe { Request::<Self>::from_pdu(pdu) }.complete();
    }

    /// The position in the backing file of a request that addresses data: its sector in
    /// bytes plus the offset (`pos` in `do_req_filebacked`). `EIO` for a request without a
    /// position (a flush) or past what a file position (`loff_t`) holds.
    fn backing_pos(io: &IoConfig, rq: &Request<Self>) -> Result<i64> {
        let sector = rq.sector().ok_or(EIO)?;
        sector
            .checked_mul(u64::from(sys::SECTOR_SIZE))
            .and_then(|bytes| bytes.checked_add(io.offset))
            .and_then(|pos| i64::try_from(pos).ok())
            .ok_or(EIO)
    }

    /// Runs one request on the backing file (`do_req_filebacked`): the result for
    /// `complete`, or the position of a direct read or write to start asynchronously.
    /// Only the operations that address data compute a position.
    fn do_req(io: &IoConfig, rq: &Request<Self>) -> Result<Handled> {
        let op = rq.op();
        Ok(Handled::Done(match op {
            ReqOp::Flush => Self::req_flush(io).map(|()| 0)?,
            ReqOp::Read | ReqOp::Write => {
                let pos = Self::backing_pos(io, rq)?;
                let write = op == ReqOp::Write;
                if io.dio {
                    return Ok(Handled::Aio { pos, write });
                }
                // Reads and writes report their own result, errors included.
                Self::rw(io, rq, pos, write)
            }
            ReqOp::WriteZeroes => {
                let pos = Self::backing_pos(io, rq)?;
                let mode = if rq.nounmap() {
                    sys::FALLOC_FL_ZERO_RANGE
                } else {
                    sys::FALLOC_FL_PUNCH_HOLE
                };
                Self::fallocate(io, rq, pos, mode).map(|()| 0)?
            }
            ReqOp::Discard => {
                let pos = Self::backing_pos(io, rq)?;
                Self::fallocate(io, rq, pos, sys::FALLOC_FL_PUNCH_HOLE).map(|()| 0)?
            }
            ReqOp::Other => return Err(EIO),
        }))
    }

    /// Handles one request in the worker (`loop_handle_cmd`).
    ///
    /// `io` is this request's own reference to the I/O configuration. It is dropped before
    /// the request completes (a direct I/O hands it to `aio_put`, which does the same), so
    /// once the queue has drained no I/O context holds the backing file: the configuration
    /// path that cleared or replaced it drops the last reference and the file is released
    /// by the task that detached it, as in C.
    fn handle_cmd(io: Option<Arc<IoConfig>>, mut rq: Request<Self>) {
        let ret = match io {
            None => Err(EIO),
            Some(io) if rq.op().is_write() && io.read_only => Err(EIO),
            Some(io) => {
                // We can block here.
                rq.clear_nowait();
                match Self::do_req(&io, &rq) {
                    Ok(Handled::Aio { pos, write }) => return Self::rw_aio(io, rq, pos, write),
                    Ok(Handled::Done(v)) => Ok(v),
                    Err(e) => Err(e),
                }
            }
        };
        let ret = match ret {
            Ok(v) => v,
            Err(e) if e == EOPNOTSUPP => i64::from(e.to_errno()),
            Err(_) => -i64::from(bindings::EIO),
        };
        rq.pdu().ret.store(ret, Relaxed);
        rq.complete();
    }
}

/// What [`LoopDevice::do_req`] did with a request.
enum Handled {
    /// Done: bytes transferred or a negative errno, for `complete`.
    Done(i64),
    /// A direct read or write at `pos`, to start asynchronously.
    Aio { pos: i64, write: bool },
}

/// A zeroed `loop_info64`.
fn info64_zeroed() -> LoopInfo64 {
    LoopInfo64 {
        lo_device: 0,
        lo_inode: 0,
        lo_rdevice: 0,
        lo_offset: 0,
        lo_sizelimit: 0,
        lo_number: 0,
        lo_encrypt_type: 0,
        lo_encrypt_key_size: 0,
        lo_flags: 0,
        lo_file_name: [0; LO_NAME_SIZE],
        lo_crypt_name: [0; LO_NAME_SIZE],
        lo_encrypt_key: [0; LO_KEY_SIZE],
        lo_init: [0; 2],
    }
}

/// `loop_info64_from_old`: the size limit and the encryption fields are 0.
fn info64_from_old(info: &LoopInfo) -> LoopInfo64 {
    LoopInfo64 {
        lo_number: info.lo_number as u32,
        lo_device: info.lo_device as u64,
        lo_inode: info.lo_inode as u64,
        lo_rdevice: info.lo_rdevice as u64,
        lo_offset: i64::from(info.lo_offset) as u64,
        lo_flags: info.lo_flags as u32,
        lo_file_name: info.lo_name,
        ..info64_zeroed()
    }
}

/// `loop_info64_to_old`: `EOVERFLOW` if a value does not fit.
fn info64_to_old(info: &LoopInfo64) -> Result<LoopInfo> {
    let old = LoopInfo {
        lo_number: info.lo_number as i32,
        _pad0: 0,
        lo_device: info.lo_device as usize,
        lo_inode: info.lo_inode as usize,
        lo_rdevice: info.lo_rdevice as usize,
        lo_offset: info.lo_offset as i32,
        lo_encrypt_type: 0,
        lo_encrypt_key_size: 0,
        lo_flags: info.lo_flags as i32,
        lo_name: info.lo_file_name,
        lo_encrypt_key: [0; LO_KEY_SIZE],
        lo_init: [0; 2],
        reserved: [0; 4],
        _pad1: 0,
    };
    if old.lo_device as u64 != info.lo_device
        || old.lo_rdevice as u64 != info.lo_rdevice
        || old.lo_inode as u64 != info.lo_inode
        || i64::from(old.lo_offset) as u64 != info.lo_offset
    {
        return Err(EOVERFLOW);
    }
    Ok(old)
}

/// `loop_info64_from_compat`: the size limit and the encryption fields are 0.
fn info64_from_compat(info: &CompatLoopInfo) -> LoopInfo64 {
    LoopInfo64 {
        lo_number: info.lo_number as u32,
        lo_device: u64::from(info.lo_device),
        lo_inode: u64::from(info.lo_inode),
        lo_rdevice: u64::from(info.lo_rdevice),
        lo_offset: i64::from(info.lo_offset) as u64,
        lo_flags: info.lo_flags as u32,
        lo_file_name: info.lo_name,
        ..info64_zeroed()
    }
}

/// `loop_info64_to_compat`: `EOVERFLOW` if a value does not fit.
fn info64_to_compat(info: &LoopInfo64) -> Result<CompatLoopInfo> {
    let c = CompatLoopInfo {
        lo_number: info.lo_number as i32,
        lo_device: info.lo_device as u16,
        _pad0: 0,
        lo_inode: info.lo_inode as u32,
        lo_rdevice: info.lo_rdevice as u16,
        _pad1: 0,
        lo_offset: info.lo_offset as i32,
        lo_encrypt_type: 0,
        lo_encrypt_key_size: 0,
        lo_flags: info.lo_flags as i32,
        lo_name: info.lo_file_name,
        lo_encrypt_key: [0; LO_KEY_SIZE],
        lo_init: [0; 2],
        reserved: [0; 4],
    };
    if u64::from(c.lo_device) != info.lo_device
        || u64::from(c.lo_rdevice) != info.lo_rdevice
        || u64::from(c.lo_inode) != info.lo_inode
        || i64::from(c.lo_offset) as u64 != info.lo_offset
    {
        return Err(EOVERFLOW);
    }
    Ok(c)
}

impl blk::Operations for LoopDevice {
    type Pdu = LoopCmd;

    /// `loop_queue_rq`. Context: atomic.
    fn queue_rq(
        this: ArcBorrow<'_, Self>,
        rq: Request<Self>,
    ) -> Result<(), (Request<Self>, BlkError)> {
        // Same lockless read as C: configuration published before `Bound` is visible.
        if this.state() != State::Bound {
            return Err((rq, BlkError::IOERR));
        }
        let Some(wq) = this.wq.as_ref() else {
            return Err((rq, BlkError::IOERR));
        };
        if let Err(e) = this.pending.lock().rqs.push_within_capacity(rq) {
            // Cannot happen (the vector holds a whole queue depth); retry later.
            return Err((e.0, BlkError::RESOURCE));
        }
        // Already queued is fine: the running or pending worker will see the request.
        let _ = wq.queue().enqueue(Arc::from(this));
        Ok(())
    }

    /// `lo_complete_rq`. Context: softirq or the completing task.
    fn complete(mut rq: Request<Self>) {
        let ret = rq.pdu().ret.load(Relaxed);
        let bytes = i64::from(rq.bytes());
        if ret < 0 {
            rq.end(Err(Error::from_errno(ret as i32).into()));
        } else if ret == bytes || rq.op() != ReqOp::Read {
            rq.end(Ok(()));
        } else if ret > 0 && ret < bytes {
            // A short read: complete what was read and reissue the rest.
            rq.pdu().ret.store(0, Relaxed);
            rq.requeue_rest(ret as u32);
        } else {
            // Nothing read (at or past the end of the file): zeroes and an error.
            rq.zero_fill();
            rq.end(Err(BlkError::IOERR));
        }
    }

    /// `lo_open`.
    fn open(&self, _disk: &DiskRef, _mode: OpenMode) -> Result {
        let _cfg = self.lo_mutex.lock();
        match self.state() {
            State::Deleting | State::Rundown => Err(ENXIO),
            State::Unbound | State::Bound => Ok(()),
        }
    }

    /// `lo_release`. Context: the disk's `open_mutex` is held.
    fn release(&self, disk: &ReleasingDisk) {
        if disk.openers() > 0 {
            return;
        }
        // Clear the backing file on the last close of a device marked for autoclear, or on
        // which LOOP_CLR_FD was called.
        let need_clear = {
            let cfg = self.lo_mutex.lock();
            if self.state() == State::Bound && cfg.flags & LO_FLAGS_AUTOCLEAR != 0 {
                self.set_state(State::Rundown);
            }
            self.state() == State::Rundown
        };
        if need_clear {
            self.clr_fd_locked(disk);
        }
    }

    fn ioctl(&self, bdev: &BlockDevice, mode: OpenMode, cmd: u32, arg: usize) -> Result<i32> {
        self.lo_ioctl(bdev, mode, cmd, arg)
    }

    fn compat_ioctl(
        &self,
        bdev: &BlockDevice,
        mode: OpenMode,
        cmd: u32,
        arg: usize,
    ) -> Result<i32> {
        self.lo_compat_ioctl(bdev, mode, cmd, arg)
    }

    fn deleted(&self) {
        // Let a running worker finish and drop its reference, so that the last reference
        // (and `destroy_workqueue`) is never dropped from the device's own workqueue.
        if let Some(wq) = self.wq.as_ref() {
            wq.flush();
        }
    }
}

impl WorkItem for LoopDevice {
    type Pointer = Arc<LoopDevice>;

    /// `loop_process_work` for the root worker. Context: process, may sleep.
    fn run(this: Arc<LoopDevice>) {
        let _flags = sys::IoTaskFlags::set();
        let mut batch = this.batch.lock();
        loop {
            let io = {
                let mut pending = this.pending.lock();
                if pending.rqs.is_empty() {
                    break;
                }
                core::mem::swap(&mut pending.rqs, &mut *batch);
                pending.io.clone()
            };
            // Each request gets its own reference to the configuration and drops it before
            // it completes; the last request takes the batch's, so that once the batch's
            // last request has completed this worker holds no backing file.
            let mut io = io;
            let mut rqs = batch.drain_all().peekable();
            while let Some(rq) = rqs.next() {
                let rq_io = if rqs.peek().is_some() {
                    io.clone()
                } else {
                    io.take()
                };
                Self::handle_cmd(rq_io, rq);
                sys::cond_resched();
            }
        }
    }
}

/// What the `loop/` sysfs attributes show (`loop_attr_*_show`).
pub(crate) mod show {
    use super::*;

    /// `backing_file`: the path, or nothing when unbound.
    ///
    /// As C, the path is read under `lo_lock` into the page less its last byte (so a path
    /// of up to `PAGE_SIZE - 2` bytes fits with its newline and NUL), without taking a
    /// reference on the file: a reader never holds the backing file open.
    pub(crate) fn backing_file(dev: &LoopDevice, page: &mut [u8]) -> Result<usize> {
        let last = page.len().checked_sub(1).ok_or(EINVAL)?;
        let n = {
            let file = dev.lo_lock.lock();
            let Some(file) = file.as_ref() else {
                return Ok(0);
            };
            file.path_into(page.get_mut(..last).ok_or(EINVAL)?)?
        };
        *page.get_mut(n).ok_or(EINVAL)? = b'\n';
        *page.get_mut(n + 1).ok_or(EINVAL)? = 0;
        Ok(n + 1)
    }

    /// `offset`.
    pub(crate) fn offset(dev: &LoopDevice) -> u64 {
        dev.shown_offset.load(Relaxed)
    }

    /// `sizelimit`.
    pub(crate) fn sizelimit(dev: &LoopDevice) -> u64 {
        dev.shown_sizelimit.load(Relaxed)
    }

    /// The effective flags (`autoclear`, `partscan`, `dio`).
    pub(crate) fn flags(dev: &LoopDevice) -> u32 {
        dev.shown_flags.load(Relaxed)
    }

    /// `dio_reason`: why direct I/O was asked for and not used.
    pub(crate) fn dio_reason(dev: &LoopDevice) -> DioRefusal {
        dev.lo_mutex.lock().dio_refusal
    }
}
