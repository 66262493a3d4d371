// SPDX-License-Identifier: GPL-2.0

//! The set of loop devices and `/dev/loop-control`.
//!
//! C version: [`drivers/block/loop.c`](srctree/drivers/block/loop.c) (`loop_add`,
//! `loop_remove`, `loop_probe`, `loop_control_*`). The registry lock (`loop_ctl_mutex`) is
//! never held while taking a device's `lo_mutex`.

#![deny(unsafe_code)]

use crate::{
    device::{
        LoopDevice,
        State, //
    },
    loop_uapi::*,
    policy::{
        self,
        Params, //
    },
    staging::{
        gen_disk::{
            DiskParams,
            GenDisk,
            Probe, //
        },
        misc::MiscOps,
        mutex::KillableMutex,
        sys,
        tag_set::{
            TagSet,
            TagSetFlags, //
        },
    },
    LOOP_CTL,
};
use kernel::{
    pr_warn_once,
    prelude::*,
    static_lock_class,
    sync::Arc, //
};

/// One index of the registry (an `idr` entry in C).
struct Slot {
    number: u32,
    /// `None` while the device is being created.
    entry: Option<Arc<Entry>>,
    /// Hidden entries are being created or removed (`idr_visible` in C).
    visible: bool,
}

/// A live device and its disk.
struct Entry {
    dev: Arc<LoopDevice>,
    disk: GenDisk<LoopDevice>,
}

/// The registry: slots sorted by index.
pub(crate) struct Registry {
    params: Params,
    slots: KVec<Slot>,
    /// The validate lock every device shares (`loop_validate_mutex`); set up by [`init`].
    validate: Option<Arc<KillableMutex<()>>>,
}

impl Registry {
    /// An empty registry, for the static `LOOP_CTL` (set up by [`init`]).
    pub(crate) const fn new() -> Self {
        Self {
            params: Params {
                max_loop: 0,
                max_loop_specified: false,
                part_shift: 0,
                max_part_shown: None,
                hw_queue_depth: 1,
            },
            slots: KVec::new(),
            validate: None,
        }
    }

    fn find(&self, number: u32) -> Result<usize, usize> {
        self.slots.binary_search_by_key(&number, |s| s.number)
    }

    fn slot_mut(&mut self, number: u32) -> Option<&mut Slot> {
        let pos = self.find(number).ok()?;
        self.slots.get_mut(pos)
    }
}

/// Sets up the registry; called once from module init, after `LOOP_CTL` is initialised.
pub(crate) fn init(params: Params) {
    LOOP_CTL.lock().params = params;
}

/// Allocates what devices share, so that devices can be added; called from module init once
/// nothing can fail after it (a failed load must leave nothing behind: the registry is a
/// static, never dropped). Until then, adding a device fails with `ENODEV`.
pub(crate) fn start() -> Result {
    let validate = Arc::pin_init(
        KillableMutex::new((), c"loop_validate_mutex", static_lock_class!()),
        GFP_KERNEL,
    )?;
    LOOP_CTL.lock().validate = Some(validate);
    Ok(())
}

/// Creates device `index`, or the lowest free index if `None` (`loop_add`).
pub(crate) fn add(index: Option<u32>) -> Result<u32> {
    let (number, params, validate) = {
        let mut reg = LOOP_CTL.lock();
        let params = reg.params;
        let validate = reg.validate.clone().ok_or(ENODEV)?;
        let (number, pos) = match index {
            Some(n) => match reg.find(n) {
                Ok(_) => return Err(EEXIST),
                Err(pos) => (n, pos),
            },
            None => {
                // The slots are sorted: the lowest free index is also where it goes.
                let next = policy::lowest_free(reg.slots.iter().map(|s| s.number))?;
                (next, next as usize)
            }
        };
        // C gets EINVAL from `add_disk`'s minor check.
        if !policy::index_fits(number, params.part_shift) {
            return Err(EINVAL);
        }
        // A hidden slot reserves the index while the device is created.
        reg.slots.reserve(1, GFP_KERNEL)?;
        let slot = Slot {
            number,
            entry: None,
            visible: false,
        };
        reg.slots
            .insert_within_capacity(pos, slot)
            .map_err(|_| ENOMEM)?;
        (number, params, validate)
    };

    let created = create(number, params, validate);
    let mut reg = LOOP_CTL.lock();
    match created {
        Ok(entry) => {
            let slot = reg.slot_mut(number).ok_or(EINVAL)?;
            slot.entry = Some(entry);
            slot.visible = true;
            Ok(number)
        }
        Err(e) => {
            if let Ok(pos) = reg.find(number) {
                reg.slots.remove(pos)?;
            }
            Err(e)
        }
    }
}

fn create(number: u32, params: Params, validate: Arc<KillableMutex<()>>) -> Result<Arc<Entry>> {
    let dev = LoopDevice::new(number, params.part_shift, params.hw_queue_depth, validate)?;
    let disk = GenDisk::new(
        TagSet::new(
            params.hw_queue_depth,
            TagSetFlags::STACKING | TagSetFlags::NO_SCHED_BY_DEFAULT,
        ),
        DiskParams {
            major: sys::LOOP_MAJOR,
            first_minor: number << params.part_shift,
            minors: 1 << params.part_shift,
            name: fmt!("loop{number}"),
            // The historic block max_sectors cap, as in C.
            max_hw_sectors: 2560,
            suppress_part_scan: params.part_shift == 0,
        },
        dev.clone(),
    )?;
    Ok(Arc::new(Entry { dev, disk }, GFP_KERNEL)?)
}

/// Removes an unbound, closed device (`loop_control_remove`).
fn remove(index: u32) -> Result {
    // Hide the device so that concurrent removals and GET_FREE skip it.
    let entry = {
        let mut reg = LOOP_CTL.lock();
        let slot = reg.slot_mut(index).ok_or(ENODEV)?;
        match (&slot.entry, slot.visible) {
            (Some(entry), true) => {
                slot.visible = false;
                entry.clone()
            }
            _ => return Err(ENODEV),
        }
    };
    // Check whether it can go, without the registry lock: as in C, `loop_ctl_mutex` is never
    // held while taking `lo_mutex`.
    if let Err(e) = entry.dev.start_removal(entry.disk.as_ref()) {
        if let Some(slot) = LOOP_CTL.lock().slot_mut(index) {
            slot.visible = true;
        }
        return Err(e);
    }
    // Delete the disk while the hidden slot still reserves the index, as C deletes the disk
    // before `idr_remove`: a concurrent ADD of this index gets EEXIST, not a clash in sysfs.
    let last = LOOP_CTL
        .lock()
        .slot_mut(index)
        .and_then(|slot| slot.entry.take());
    drop(last);
    drop(entry);
    let mut reg = LOOP_CTL.lock();
    if let Ok(pos) = reg.find(index) {
        reg.slots.remove(pos)?;
    }
    Ok(())
}

/// The first unbound device, or a new one (`loop_control_get_free`).
fn get_free() -> Result<u32> {
    {
        let reg = LOOP_CTL.lock();
        for slot in reg.slots.iter() {
            if let (true, Some(entry)) = (slot.visible, &slot.entry) {
                // Racy like C: losing the race creates a new device, which is harmless.
                if entry.dev.state() == State::Unbound {
                    return Ok(entry.dev.number());
                }
            }
        }
    }
    add(None)
}

/// Removes every device; called at module exit after the major and the control device are
/// gone, so nothing adds devices concurrently.
pub(crate) fn remove_all() {
    loop {
        let slot = {
            let mut reg = LOOP_CTL.lock();
            match reg.slots.pop() {
                Some(slot) => slot,
                None => break,
            }
        };
        // Deletes the disk outside the registry lock.
        drop(slot);
    }
    // Statics are not dropped at module unload: free the vector's buffer and the lock now.
    let (slots, validate) = {
        let mut reg = LOOP_CTL.lock();
        (core::mem::take(&mut reg.slots), reg.validate.take())
    };
    drop(slots);
    drop(validate);
}

/// Creates the device of a node `7:minor` opened without one (`loop_probe`).
pub(crate) struct LoopProbe;

impl Probe for LoopProbe {
    fn probe(dev: u32) {
        let params = LOOP_CTL.lock().params;
        if let Some(index) = policy::probe_index(sys::minor(dev), &params) {
            let _ = add(Some(index));
        }
    }
}

/// `/dev/loop-control`.
pub(crate) struct LoopControl;

impl MiscOps for LoopControl {
    fn ioctl(cmd: u32, arg: usize) -> Result<isize> {
        // C casts the argument to int: negative means "any index" for ADD.
        let parm = arg as i32;
        match cmd {
            LOOP_CTL_ADD => add(u32::try_from(parm).ok()).map(|n| n as isize),
            LOOP_CTL_REMOVE => {
                let index = u32::try_from(parm).map_err(|_| {
                    pr_warn_once!("deleting an unspecified loop device is not supported.\n");
                    EINVAL
                })?;
                remove(index).map(|()| 0)
            }
            LOOP_CTL_GET_FREE => get_free().map(|n| n as isize),
            _ => Err(ENOSYS),
        }
    }
}
