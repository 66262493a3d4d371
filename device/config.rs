// SPDX-License-Identifier: GPL-2.0

//! The configuration half of a loop device: everything done under `lo_mutex`, in loop.c
//! order (size and limits, direct I/O, backing-file validation, `LOOP_CHANGE_FD`, configure
//! and clear, the status ioctls, capacity, direct I/O and block size, the ioctl dispatch,
//! open and release). Context: process, may sleep.

use super::{
    Config,
    IoConfig,
    LoopDevice,
    State, //
};
use crate::{
    loop_uapi::*,
    policy::{
        self,
        BackingAccess,
        DioRefusal, //
    },
    staging::{
        bdev::{
            BlockDevice,
            ClaimHolder,
            OpenMode, //
        },
        file::BackingFile,
        gen_disk::{
            DiskRef,
            ReleasingDisk, //
        },
        mutex::KillableGuard,
        operations::InIoctl,
        queue::LimitsUpdate,
        sys::{
            self,
            ModuleRef, //
        },
        workqueue::OwnedQueue,
    },
};
use kernel::{
    block::SECTOR_SIZE,
    prelude::*,
    sync::atomic::Relaxed,
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

/// Identifies loop as the holder of a block-device claim.
static CLAIM_HOLDER: ClaimHolder = ClaimHolder::new();

/// Whether a configuration change also takes the validate lock (`loop_global_lock_killable`'s
/// `global` argument).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Validate {
    /// Only `lo_mutex`.
    LocalOnly,
    /// The validate lock, then `lo_mutex`: the change can affect a chain of loop devices.
    Global,
}

impl LoopDevice {
    /// Takes the validate lock (for [`Validate::Global`]) and then `lo_mutex`, both
    /// killably (`loop_global_lock_killable`): `EINTR` on a fatal signal.
    fn global_lock(
        &self,
        scope: Validate,
    ) -> Result<(Option<KillableGuard<'_, ()>>, KillableGuard<'_, Config>)> {
        let validate = match scope {
            Validate::Global => Some(self.validate.lock_killable()?),
            Validate::LocalOnly => None,
        };
        Ok((validate, self.lo_mutex.lock_killable()?))
    }

    /// Copies what sysfs shows out of `cfg`.
    fn show(&self, cfg: &Config) {
        self.shown_offset.store(cfg.offset, Relaxed);
        self.shown_sizelimit.store(cfg.sizelimit, Relaxed);
        self.shown_flags.store(cfg.flags.into(), Relaxed);
    }

    /// Installs the I/O configuration of `cfg` (the file, offset and flags it has now) and
    /// shows `cfg` in sysfs. Nothing is allocated: a change cannot fail here.
    ///
    /// The caller holds `lo_mutex` and has the queue frozen or the device not bound.
    fn install_io(&self, cfg: &Config) {
        let io = cfg.file.as_ref().map(|file| IoConfig {
            file: file.clone(),
            offset: cfg.offset,
            read_only: cfg.flags.contains(LoFlag::ReadOnly),
            dio: cfg.flags.contains(LoFlag::DirectIo),
            sync: file.sync_flags(),
        });
        // The old snapshot is dropped after the lock; it is not its file's last reference
        // (`cfg` or the caller holds one), so this releases no file under `lo_mutex`.
        let old = core::mem::replace(&mut self.pending.lock().io, io);
        drop(old);
        self.show(cfg);
    }

    /// Marks the device as being removed if it is unbound and closed (`loop_control_remove`).
    pub(crate) fn start_removal(&self, disk: &DiskRef) -> Result {
        let _cfg = self.lo_mutex.lock_killable()?;
        if self.state() != State::Unbound || disk.openers() > 0 {
            return Err(EBUSY);
        }
        self.set_state(State::Deleting);
        Ok(())
    }

    // --- Size and limits -------------------------------------------------------------------

    /// The device size in sectors for `file` (`lo_calculate_size`).
    fn calculate_size(cfg: &Config, file: &BackingFile) -> u64 {
        policy::size_in_sectors(file.size(), cfg.offset, cfg.sizelimit)
    }

    /// Sets the capacity and tells user space (`loop_set_size`).
    fn set_size(disk: &DiskRef, sectors: u64) {
        if !disk.set_capacity_and_notify(sectors) {
            disk.uevent_change();
        }
    }

    /// Fills the queue limits for the backing file and block size `bsize`
    /// (`loop_update_limits`; 0 means the default).
    fn update_limits(cfg: &Config, file: &BackingFile, lim: &mut LimitsUpdate<'_>, bsize: u32) {
        let dio = cfg.flags.contains(LoFlag::DirectIo);
        let bsize = if bsize == 0 {
            cfg.dio_align.default_block_size(dio)
        } else {
            bsize
        };
        let (max_sectors, granularity) = file.discard_config();
        let (max_discard, max_write_zeroes, granularity) =
            policy::discard_limits(max_sectors, granularity);
        lim.set_block_size(bsize);
        lim.set_dma_alignment(cfg.dio_align.dma_alignment(dio));
        lim.set_write_cache(file.has_fsync() && !cfg.flags.contains(LoFlag::ReadOnly));
        lim.set_rotational(file.rotational());
        lim.set_discard(max_discard, granularity);
        lim.set_max_write_zeroes_sectors(max_write_zeroes);
    }

    /// Whether direct I/O can be used with logical block size `lbs` (`lo_can_use_dio`).
    fn can_use_dio(cfg: &Config, lbs: u32) -> Result<(), DioRefusal> {
        if cfg.file.is_none() {
            return Err(DioRefusal::NoOdirect);
        }
        cfg.dio_align.check(lbs, cfg.offset)
    }

    /// Drops the direct I/O flag if it cannot be honoured with logical block size `lbs`
    /// (`loop_update_dio`), and says why.
    fn update_dio(&self, cfg: &mut Config, lbs: u32) {
        if !cfg.flags.contains(LoFlag::DirectIo) {
            return;
        }
        match Self::can_use_dio(cfg, lbs) {
            Ok(()) => cfg.dio_refusal = None,
            Err(why) => {
                cfg.flags &= !LoFlag::DirectIo;
                self.refuse_dio(cfg, why);
            }
        }
    }

    /// `dio=auto` (not in C loop): turns direct I/O on at attach if the backing file allows
    /// it without changing the device's block size. Returns the block size to set
    /// (`block_size` as asked, 0 for the default) and, if auto was refused, why, for the
    /// caller to record once the attach has succeeded.
    fn auto_dio(cfg: &mut Config, block_size: u32) -> (u32, Option<DioRefusal>) {
        if crate::params::DIO.get() != crate::params::DIO_AUTO
            || cfg.flags.contains(LoFlag::DirectIo)
        {
            return (block_size, None);
        }
        match cfg.dio_align.auto_dio_block_size(block_size, cfg.offset) {
            Ok(lbs) => {
                cfg.flags |= LoFlag::DirectIo;
                (lbs, None)
            }
            Err(why) => (block_size, Some(why)),
        }
    }

    /// Records and logs (at most every 5 seconds per device) why direct I/O is not used. C
    /// loop drops it silently.
    fn refuse_dio(&self, cfg: &mut Config, why: DioRefusal) {
        cfg.dio_refusal = Some(why);
        let now = sys::jiffies();
        if policy::may_log_refusal(now, self.dio_logged_at.load(Relaxed), sys::HZ) {
            self.dio_logged_at.store(now, Relaxed);
            pr_info!("loop{}: direct I/O not used: {}\n", self.number, why);
        }
    }

    // --- Backing file validation -----------------------------------------------------------

    /// The loop device of this driver `file` is a node of, the whole disk or a partition
    /// (`is_loop_device`, which C limits to major 7: a partition with an extended device
    /// number escapes it).
    fn loop_of(file: &BackingFile) -> Option<&LoopDevice> {
        file.disk()
            .and_then(|disk| disk.driver_data::<LoopDevice>())
    }

    /// Refuses loops back to `bdev` through a chain of loop devices, and backing files that
    /// are neither regular files nor block devices (`loop_validate_file`).
    ///
    /// Unlike C 7.3, which follows major-7 nodes and compares device numbers only, the chain
    /// is followed through every node of a loop device (partitions too), and reaching this
    /// device by any of them is a loop (`EBADF`).
    ///
    /// The caller holds the validate lock if `file` is a loop device's node.
    fn validate_file(&self, file: &BackingFile, bdev: &BlockDevice) -> Result {
        let mut f = file.clone();
        loop {
            let next = {
                let Some(l) = Self::loop_of(&f) else {
                    break;
                };
                if f.rdev() == Some(bdev.dev()) || core::ptr::eq(l, self) {
                    return Err(EBADF);
                }
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
        cfg.old_gfp_mask = file.restrict_gfp_mask();
        if file.o_direct() {
            cfg.flags |= LoFlag::DirectIo;
        }
        let (min_size, mem_align) = file.dio_alignment();
        cfg.dio_align = policy::DioAlignment {
            can_odirect: file.can_odirect(),
            min_size,
            mem_align,
        };
        *self.lo_lock.lock() = Some(file.clone());
        cfg.file = Some(file);
    }

    /// The backing file of descriptor `fd`, if loop can use it (`fget` and
    /// `loop_check_backing_file`). Unlike C 7.3, a file not opened for reading is refused
    /// (`EBADF`): through the device, its data would be readable.
    fn get_backing_file(fd: u32, ctx: &InIoctl) -> Result<BackingFile> {
        let file = BackingFile::fget(fd, ctx)?;
        if !file.readable() {
            return Err(EBADF);
        }
        file.check()?;
        Ok(file)
    }

    /// Switches a read-only device to another file of the same size (`loop_change_fd`).
    fn change_fd(&self, bdev: &BlockDevice, fd: u32, ctx: &InIoctl) -> Result {
        let disk = bdev.disk();
        let file = Self::get_backing_file(fd, ctx)?;
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
        let scope = if Self::loop_of(&file).is_some() {
            Validate::Global
        } else {
            Validate::LocalOnly
        };
        let (validate, mut cfg) = self.global_lock(scope)?;
        if self.state() != State::Bound {
            return Err(ENXIO);
        }
        if !cfg.flags.contains(LoFlag::ReadOnly) {
            return Err(EINVAL);
        }
        self.validate_file(&file, bdev)?;
        let old = cfg.file.clone().ok_or(ENXIO)?;
        if Self::calculate_size(&cfg, &file) != Self::calculate_size(&cfg, &old) {
            return Err(EINVAL);
        }
        // We might switch to direct I/O: write back dirty data now.
        let _ = file.fsync();
        disk.force_media_change();
        {
            let _frozen = disk.queue().freeze();
            old.set_gfp_mask(cfg.old_gfp_mask);
            self.assign_backing_file(&mut cfg, file);
            self.update_dio(&mut cfg, disk.queue().logical_block_size());
            self.install_io(&cfg);
        }
        let partscan = cfg.flags.contains(LoFlag::Partscan);
        drop(cfg);
        drop(validate);
        // Flush `validate_file` walks that may still look at the old file before releasing
        // it, unless we held the lock ourselves.
        if scope == Validate::LocalOnly {
            drop(self.validate.lock());
        }
        // The old file is released here, outside `lo_mutex`.
        drop(old);
        Ok(partscan)
    }

    // --- Configure and clear ---------------------------------------------------------------

    /// Applies the offset, size limit and name of a checked `info` (the rest of
    /// `loop_set_status_from_info`).
    fn apply_status(cfg: &mut Config, info: &LoopInfo64) {
        cfg.offset = info.lo_offset;
        cfg.sizelimit = info.lo_sizelimit;
        cfg.file_name = info.lo_file_name;
        cfg.file_name[LO_NAME_SIZE - 1] = 0;
    }

    /// Binds the device to a backing file (`loop_configure`).
    fn configure(
        &self,
        bdev: &BlockDevice,
        mode: OpenMode,
        config: &LoopConfig,
        ctx: &InIoctl,
    ) -> Result {
        let file = Self::get_backing_file(config.fd, ctx)?;
        let scope = if Self::loop_of(&file).is_some() {
            Validate::Global
        } else {
            Validate::LocalOnly
        };
        // Safe: the opener of the device holds a module reference.
        let module_ref = ModuleRef::get();
        // Upgrade to an exclusive claim so the device does not change under an exclusive
        // owner.
        let claim = bdev.claim(mode, &CLAIM_HOLDER)?;
        let disk = bdev.disk();

        let (validate, mut cfg) = self.global_lock(scope)?;
        if self.state() != State::Unbound {
            return Err(EBUSY);
        }
        self.validate_file(&file, bdev)?;
        let flags = policy::configure_flags(
            config.info.lo_flags,
            BackingAccess {
                file_writable: file.writable(),
                file_has_write_iter: file.has_write_iter(),
                device_writable: mode.write(),
                o_direct: file.o_direct(),
            },
        )?;
        policy::check_status(&config.info)?;
        if self.wq.as_ref().is_none() {
            // Only this path populates it, under `lo_mutex`.
            let _ = self.wq.populate(OwnedQueue::new(c"loop", self.number)?);
        }
        // Nothing changed so far; from here on, changes are undone on failure.
        Self::apply_status(&mut cfg, &config.info);
        cfg.flags = flags;
        cfg.dio_refusal = None;

        disk.suppress_uevents(true);
        disk.force_media_change();
        disk.set_read_only(cfg.flags.contains(LoFlag::ReadOnly));
        self.assign_backing_file(&mut cfg, file.clone());
        let (block_size, auto_refused) = Self::auto_dio(&mut cfg, config.block_size);

        let mut lim = disk.queue().start_limits_update();
        Self::update_limits(&cfg, &file, &mut lim, block_size);
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
        if let Some(why) = auto_refused {
            self.refuse_dio(&mut cfg, why);
        }
        cfg.sysfs_inited = disk.add_group(&super::sysfs::LOOP_GROUP).is_ok();
        Self::set_size(disk, Self::calculate_size(&cfg, &file));

        if self.part_shift != 0 {
            cfg.flags |= LoFlag::Partscan;
        }
        let partscan = cfg.flags.contains(LoFlag::Partscan);
        cfg.module_ref = Some(module_ref);
        self.install_io(&cfg);
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
        lim.set_block_size(SECTOR_SIZE);
        let _ = lim.commit();

        disk.invalidate();
        if sysfs_inited {
            disk.remove_group(&super::sysfs::LOOP_GROUP);
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
            cfg.flags = LoFlags::empty();
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
        let (_validate, mut cfg) = self.global_lock(Validate::Global)?;
        if self.state() != State::Bound {
            return Err(ENXIO);
        }
        cfg.flags |= LoFlag::Autoclear;
        self.show(&cfg);
        if disk.openers() == 1 {
            self.set_state(State::Rundown);
        }
        Ok(())
    }

    // --- Status ioctls ---------------------------------------------------------------------

    /// `LOOP_SET_STATUS(64)` (`loop_set_status`).
    ///
    /// Unlike C 7.3, a change of the offset or size limit claims the whole disk (as
    /// `LOOP_SET_BLOCK_SIZE` claims the device), so it fails with `EBUSY` while someone else
    /// holds the disk or one of its partitions exclusively: a mounted filesystem never sees
    /// its device shift under it. Only an exclusive opener of the whole disk may do it.
    fn set_status(&self, bdev: &BlockDevice, mode: OpenMode, info: &LoopInfo64) -> Result {
        let disk = bdev.disk();
        let whole = disk.part0();
        let whole_mode = if bdev.dev() == whole.dev() {
            mode
        } else {
            mode.shared()
        };
        let mut claim = None;
        let mut cfg = loop {
            let cfg = self.lo_mutex.lock_killable()?;
            if self.state() != State::Bound {
                return Err(ENXIO);
            }
            if claim.is_none() && policy::status_moves_data(cfg.offset, cfg.sizelimit, info) {
                // A status C refuses anyway gets C's errno, not `EBUSY`.
                policy::check_status(info)?;
                // Claim without `lo_mutex` (a claim may wait for another claimer), then
                // look again.
                drop(cfg);
                claim = Some(whole.claim(whole_mode, &CLAIM_HOLDER)?);
                continue;
            }
            break cfg;
        };
        let file = cfg.file.clone().ok_or(ENXIO)?;
        let size_changed = policy::status_moves_data(cfg.offset, cfg.sizelimit, info);
        if size_changed {
            disk.part0().sync();
            disk.part0().invalidate();
        }
        policy::check_status(info)?;
        let partscan;
        {
            // I/O must drain before the offset or size limit change.
            let _frozen = disk.queue().freeze();
            Self::apply_status(&mut cfg, info);
            let (flags, partscan_on) =
                policy::status_flags(cfg.flags, LoFlags::from_user(info.lo_flags));
            cfg.flags = flags;
            partscan = partscan_on;
            // The offset may break direct I/O alignment.
            self.update_dio(&mut cfg, disk.queue().logical_block_size());
            self.install_io(&cfg);
        }
        if partscan {
            disk.suppress_part_scan(false);
        }
        if size_changed {
            Self::set_size(disk, Self::calculate_size(&cfg, &file));
        }
        drop(cfg);
        drop(file);
        drop(claim);
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
            let cfg = self.lo_mutex.lock_killable()?;
            if self.state() != State::Bound {
                return Err(ENXIO);
            }
            let info = LoopInfo64 {
                lo_offset: cfg.offset,
                lo_sizelimit: cfg.sizelimit,
                lo_number: self.number,
                lo_flags: cfg.flags.into(),
                lo_file_name: cfg.file_name,
                ..pin_init::zeroed()
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
        let cfg = self.lo_mutex.lock_killable()?;
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
        let mut cfg = self.lo_mutex.lock_killable()?;
        if self.state() != State::Bound {
            return Err(ENXIO);
        }
        let use_dio = arg != 0;
        if use_dio == cfg.flags.contains(LoFlag::DirectIo) {
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
        let flags = cfg.flags.with(LoFlag::DirectIo, use_dio);
        // Limits lock before freezing, as C.
        let mut lim = disk.queue().start_limits_update();
        let result = {
            let _frozen = disk.queue().freeze();
            cfg.flags = flags;
            cfg.dio_refusal = None;
            lim.set_dma_alignment(cfg.dio_align.dma_alignment(use_dio));
            let r = lim.commit();
            self.install_io(&cfg);
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
        let mut cfg = self.lo_mutex.lock_killable()?;
        if self.state() != State::Bound {
            return Err(ENXIO);
        }
        if disk.queue().logical_block_size() as usize == arg {
            return Ok(());
        }
        let file = cfg.file.clone().ok_or(ENXIO)?;
        disk.part0().sync();
        disk.part0().invalidate();
        let mut lim = disk.queue().start_limits_update();
        // C passes the argument as `unsigned int`.
        Self::update_limits(&cfg, &file, &mut lim, arg as u32);
        let result = {
            let _frozen = disk.queue().freeze();
            let r = lim.commit();
            let had_dio = cfg.flags.contains(LoFlag::DirectIo);
            self.update_dio(&mut cfg, disk.queue().logical_block_size());
            if had_dio && !cfg.flags.contains(LoFlag::DirectIo) {
                self.install_io(&cfg);
            }
            self.show(&cfg);
            r
        };
        drop(cfg);
        drop(file);
        result
    }

    // --- ioctl dispatch --------------------------------------------------------------------

    fn read_user<T: FromBytes>(arg: usize) -> Result<T> {
        UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<T>())
            .reader()
            .read::<T>()
    }

    fn write_user<T: AsBytes>(arg: usize, value: &T) -> Result {
        UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<T>())
            .writer()
            .write(value)
    }

    /// `lo_ioctl`.
    pub(super) fn lo_ioctl(
        &self,
        bdev: &BlockDevice,
        mode: OpenMode,
        cmd: u32,
        arg: usize,
        ctx: &InIoctl,
    ) -> Result<i32> {
        let may_write = || mode.write() || sys::capable_sys_admin();
        match cmd {
            // Legacy: LOOP_CONFIGURE with defaults and only the descriptor.
            LOOP_SET_FD => self.configure(bdev, mode, &LoopConfig::from_fd(arg as u32), ctx)?,
            LOOP_CONFIGURE => {
                let config: LoopConfig = Self::read_user(arg)?;
                self.configure(bdev, mode, &config, ctx)?;
            }
            LOOP_CHANGE_FD => self.change_fd(bdev, arg as u32, ctx)?,
            LOOP_CLR_FD => self.clr_fd(bdev.disk())?,
            LOOP_SET_STATUS => {
                if !may_write() {
                    return Err(EPERM);
                }
                let info: LoopInfo = Self::read_user(arg)?;
                self.set_status(bdev, mode, &LoopInfo64::from(&info))?;
            }
            LOOP_GET_STATUS => {
                if arg == 0 {
                    return Err(EINVAL);
                }
                let info = LoopInfo::try_from(&self.get_status()?)?;
                Self::write_user(arg, &info)?;
            }
            LOOP_SET_STATUS64 => {
                if !may_write() {
                    return Err(EPERM);
                }
                let info: LoopInfo64 = Self::read_user(arg)?;
                self.set_status(bdev, mode, &info)?;
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
                drop(self.lo_mutex.lock_killable()?);
                return Err(EINVAL);
            }
        }
        Ok(0)
    }

    /// `lo_compat_ioctl`.
    pub(super) fn lo_compat_ioctl(
        &self,
        bdev: &BlockDevice,
        mode: OpenMode,
        cmd: u32,
        arg: usize,
        ctx: &InIoctl,
    ) -> Result<i32> {
        // `compat_ptr`: a 32-bit user pointer.
        let ptr = arg as u32 as usize;
        match cmd {
            LOOP_SET_STATUS => {
                if !mode.write() && !sys::capable_sys_admin() {
                    return Err(EPERM);
                }
                let info: CompatLoopInfo = Self::read_user(ptr)?;
                self.set_status(bdev, mode, &LoopInfo64::from(&info))?;
                Ok(0)
            }
            LOOP_GET_STATUS => {
                if ptr == 0 {
                    return Err(EINVAL);
                }
                let info = CompatLoopInfo::try_from(&self.get_status()?)?;
                Self::write_user(ptr, &info)?;
                Ok(0)
            }
            LOOP_SET_CAPACITY | LOOP_CLR_FD | LOOP_GET_STATUS64 | LOOP_SET_STATUS64
            | LOOP_CONFIGURE => self.lo_ioctl(bdev, mode, cmd, ptr, ctx),
            LOOP_SET_FD | LOOP_CHANGE_FD | LOOP_SET_BLOCK_SIZE | LOOP_SET_DIRECT_IO => {
                self.lo_ioctl(bdev, mode, cmd, arg, ctx)
            }
            _ => Err(ENOIOCTLCMD),
        }
    }

    // --- Open and release ------------------------------------------------------------------

    /// `lo_open`.
    pub(super) fn lo_open(&self) -> Result {
        let _cfg = self.lo_mutex.lock_killable()?;
        match self.state() {
            State::Deleting | State::Rundown => Err(ENXIO),
            State::Unbound | State::Bound => Ok(()),
        }
    }

    /// `lo_release`. Context: the disk's `open_mutex` is held.
    pub(super) fn lo_release(&self, disk: &ReleasingDisk) {
        if disk.openers() > 0 {
            return;
        }
        // Clear the backing file on the last close of a device marked for autoclear, or on
        // which LOOP_CLR_FD was called.
        let need_clear = {
            let cfg = self.lo_mutex.lock();
            if self.state() == State::Bound && cfg.flags.contains(LoFlag::Autoclear) {
                self.set_state(State::Rundown);
            }
            self.state() == State::Rundown
        };
        if need_clear {
            self.clr_fd_locked(disk);
        }
    }
}
