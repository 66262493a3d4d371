// SPDX-License-Identifier: GPL-2.0

//! One loop device: its state machine and block-device callbacks.
//!
//! C version: [`drivers/block/loop.c`](srctree/drivers/block/loop.c) (`struct loop_device`,
//! `lo_open`, `lo_release`, `lo_ioctl`, `loop_queue_rq`). Kept in the same order as the C file.

use crate::blk::{
    self,
    BlkError,
    DiskRef,
    OpenMode,
    Request, //
};
use crate::{loop_uapi::*, sys};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{
        atomic::{
            Acquire,
            Atomic,
            Relaxed,
            Release, //
        },
        Mutex,
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

/// Configuration of a device, guarded by `lo_mutex`.
#[derive(Default)]
pub(crate) struct Config {}

/// A loop device (`struct loop_device`).
#[pin_data]
pub(crate) struct LoopDevice {
    /// The index N of `/dev/loopN`.
    number: u32,
    /// The [`State`], read without locks in the I/O path and by `LOOP_CTL_GET_FREE`; written
    /// under `lo_mutex`.
    state: Atomic<i32>,
    /// Serialises configuration changes (`lo_mutex`).
    #[pin]
    lo_mutex: Mutex<Config>,
}

impl LoopDevice {
    /// A new unbound device with index `number`.
    pub(crate) fn new(number: u32) -> impl PinInit<Self> {
        pin_init!(Self {
            number,
            state: Atomic::new(State::Unbound as i32),
            lo_mutex <- new_mutex!(Config::default()),
        })
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

    /// Marks the device as being removed if it is unbound and closed (`loop_control_remove`).
    pub(crate) fn start_removal(&self, disk: &DiskRef) -> Result {
        let _guard = self.lo_mutex.lock();
        if self.state() != State::Unbound || disk.openers() > 0 {
            return Err(EBUSY);
        }
        self.set_state(State::Deleting);
        Ok(())
    }
}

impl blk::Operations for LoopDevice {
    fn queue_rq(&self, _rq: Request<'_>) -> Result<(), BlkError> {
        // Same lockless read as C `loop_queue_rq`: a request racing with detach sees either state
        // and the backing file is only released after the queue is drained.
        if State::from_raw(self.state.load(Relaxed)) != State::Bound {
            return Err(EIO.into());
        }
        // No I/O path yet: a device is never bound in this version.
        Err(EIO.into())
    }

    fn open(&self, _disk: &DiskRef, _mode: OpenMode) -> Result {
        let _guard = self.lo_mutex.lock();
        match self.state() {
            State::Deleting | State::Rundown => Err(ENXIO),
            State::Unbound | State::Bound => Ok(()),
        }
    }

    fn release(&self, _disk: &DiskRef) {}

    fn ioctl(&self, _disk: &DiskRef, mode: OpenMode, cmd: u32, _arg: usize) -> Result<i32> {
        match cmd {
            // Permission checks as C `lo_ioctl`; the handlers are not implemented yet.
            LOOP_SET_STATUS | LOOP_SET_STATUS64 | LOOP_SET_CAPACITY | LOOP_SET_DIRECT_IO
            | LOOP_SET_BLOCK_SIZE
                if !mode.write() && !sys::capable_sys_admin() =>
            {
                Err(EPERM)
            }
            // Unknown commands return EINVAL as in C `lo_simple_ioctl`.
            _ => Err(EINVAL),
        }
    }

    fn compat_ioctl(&self, disk: &DiskRef, mode: OpenMode, cmd: u32, arg: usize) -> Result<i32> {
        self.ioctl(disk, mode, cmd, arg)
    }
}
