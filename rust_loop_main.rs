// SPDX-License-Identifier: GPL-2.0

//! rust_loop: the loop block driver, in Rust.
//!
//! A drop-in for the C driver: block major 7, `/dev/loopN` disks backed by files and
//! `/dev/loop-control`, with the same user API.
//!
//! C version: [`drivers/block/loop.c`](srctree/drivers/block/loop.c).
//!
//! # Layout
//!
//! - [`staging`]: safe abstractions for what the 7.3 kernel crate lacks, one file per C
//!   object; the only home of `bindings::` and `unsafe`. It does not import the driver.
//! - The driver, `#![deny(unsafe_code)]` in every file: [`device`] (the device type and its
//!   operations; `device/config.rs` under `lo_mutex`, `device/io.rs` the request life cycle,
//!   `device/sysfs.rs`), [`control`] (the set of devices and `/dev/loop-control`),
//!   [`policy`] (pure rules, KUnit-tested) and [`loop_uapi`] (the user API).
//! - This file: the module, its parameters and its global lock (the set of devices).
//!
//! `unsafe_code` is denied crate-wide. The exceptions, each an `allow` with its reason:
//! `staging` (all of it), the UAPI structures' `FromBytes`/`AsBytes` impls, the parameter
//! descriptors (`#[link_section]` statics) and the global lock's one-time initialisation.

#![deny(unsafe_code)]

mod control;
mod device;
mod loop_uapi;
mod policy;
mod staging;

use control::{
    LoopControl,
    LoopProbe,
    Registry, //
};
use kernel::{
    prelude::*,
    sync::global_lock, //
};
use staging::{
    gen_disk::MajorRegistration,
    misc::{
        map_init_err,
        MiscRegistration, //
    },
    sys, //
};

module! {
    type: RustLoopModule,
    name: "rust_loop",
    authors: ["rust_loop developers"],
    description: "Loopback block device driver in Rust",
    license: "GPL",
    // As C loop (MODULE_ALIAS_BLOCKDEV_MAJOR, MODULE_ALIAS_MISCDEV, devname): opening a loop
    // node or /dev/loop-control autoloads the driver. With the C loop.ko installed too, both
    // match: packaging/modprobe.d/rust_loop.conf blacklists loop's aliases.
    alias: ["block-major-7-*", "char-major-10-237", "devname:loop-control"],
}

/// The module parameters (`/sys/module/rust_loop/parameters/`). `int_param!` declares
/// `#[link_section]` descriptors, which `unsafe_code` counts: a declarative exception.
#[allow(unsafe_code)]
mod params {
    use crate::staging::{
        params::{
            choice_param,
            int_param, //
        },
        sys, //
    };

    int_param!(
        max_loop,
        MAX_LOOP = sys::LOOP_MIN_COUNT,
        min i32::MIN,
        "Maximum number of loop devices"
    );
    int_param!(
        max_part,
        MAX_PART = 0,
        min i32::MIN,
        "Maximum number of partitions per loop device",
        int
    );
    int_param!(
        hw_queue_depth,
        HW_QUEUE_DEPTH = 128,
        min 1,
        "Queue depth for each hardware queue. Default: 128"
    );
    choice_param!(
        dio,
        DIO = [0 => DIO_OFF = "off", 1 => DIO_AUTO = "auto"],
        default DIO_OFF,
        "Direct I/O at attach: off (as C loop) or auto (on where the backing file allows it \
         without changing the block size, else buffered with the reason in loop/dio_reason). \
         Default: off"
    );
}

global_lock! {
    // SAFETY: `init_global_locks` runs first in module init, before any other use.
    /// The set of devices (`loop_ctl_mutex` and `loop_index_idr`).
    unsafe(uninit) static LOOP_CTL: Mutex<Registry> = Registry::new();
}

/// Initialises the global lock; called once, first thing in module init.
#[allow(unsafe_code)]
fn init_global_locks() {
    // SAFETY: Called once, before any other use of the lock (nothing that could reach it is
    // registered yet).
    unsafe {
        LOOP_CTL.init();
    }
}

/// Removes every device when dropped.
struct Devices;

impl Drop for Devices {
    fn drop(&mut self) {
        control::remove_all();
    }
}

#[pin_data]
struct RustLoopModule {
    // Fields are dropped in declaration order, as C `loop_exit` tears down: first the block
    // major (no more devices created by opening a node), then `/dev/loop-control` (no more
    // ioctls), then every device. They are initialised in the order of `init`, as C
    // `loop_init`: `/dev/loop-control` before the major; devices can be added only once
    // `control::start` ran, the last step, so a failed load leaves nothing behind.
    _major: MajorRegistration<LoopProbe>,
    #[pin]
    _control: MiscRegistration<LoopControl>,
    _devices: Devices,
    _params: policy::Params,
}

/// Validates the module parameters as C `loop_init` does.
fn validated_params() -> Result<policy::Params> {
    let params = policy::validate_params(
        params::MAX_PART.get(),
        params::MAX_LOOP.get(),
        params::MAX_LOOP.specified(),
        params::HW_QUEUE_DEPTH.get(),
        sys::DISK_MAX_PARTS,
        sys::BLK_MQ_MAX_DEPTH,
    )?;
    if let Some(shown) = params.max_part_shown {
        // As C, the rounded value is what sysfs shows.
        params::MAX_PART.set(shown);
    }
    Ok(params)
}

impl kernel::InPlaceModule for RustLoopModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            _params: {
                let params = validated_params()?;
                init_global_locks();
                control::init(params);
                params
            },
            _control <- map_init_err(
                MiscRegistration::register(sys::LOOP_CTRL_MINOR, c"loop-control"),
                |e| {
                    pr_err!(
                        "/dev/loop-control (misc minor {}) is taken ({e:?}): is the C loop \
                         driver loaded? (rmmod loop)\n",
                        sys::LOOP_CTRL_MINOR
                    );
                    e
                }
            ),
            _major: MajorRegistration::new(sys::LOOP_MAJOR, c"loop").map_err(|e| {
                pr_err!(
                    "block major {} is taken ({e:?}): is the C loop driver loaded? \
                     (rmmod loop)\n",
                    sys::LOOP_MAJOR
                );
                // C `loop_init` returns EIO here.
                EIO
            })?,
            _devices: {
                // Last: nothing fails after it, so a failed load allocates nothing.
                control::start()?;
                for i in 0.._params.max_loop {
                    // Errors are ignored, as in C: the devices can be created later.
                    let _ = control::add(Some(i));
                }
                pr_info!("module loaded\n");
                Devices
            },
        })
    }
}
