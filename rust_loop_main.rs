// SPDX-License-Identifier: GPL-2.0

//! rust_loop: the loop block driver, in Rust.
//!
//! A drop-in for the C driver: block major 7, `/dev/loopN` disks backed by files and
//! `/dev/loop-control`, with the same user API.
//!
//! C version: [`drivers/block/loop.c`](srctree/drivers/block/loop.c).

mod blk;
mod control;
mod device;
mod file;
mod loop_uapi;
mod misc;
mod sys;
mod sysfs;

use control::LoopControl;
use kernel::prelude::*;
use misc::MiscRegistration;

module! {
    type: RustLoopModule,
    name: "rust_loop",
    authors: ["rust_loop developers"],
    description: "Loopback block device driver in Rust",
    license: "GPL",
    params: {
        max_loop: i32 {
            // A value no user passes stands for "not given", as C's `max_loop_specified`.
            default: i32::MIN,
            description: "Maximum number of loop devices",
        },
        max_part: i32 {
            default: 0,
            description: "Maximum number of partitions per loop device",
        },
        hw_queue_depth: i32 {
            default: 128,
            description: "Queue depth for each hardware queue. Default: 128",
        },
    },
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
    // ioctls), then every device.
    _major: blk::MajorRegistration,
    #[pin]
    _control: MiscRegistration<LoopControl>,
    _devices: Devices,
    _params: control::Params,
}

/// Validates the module parameters as C `loop_init` and the `hw_queue_depth` setter do.
fn params() -> Result<control::Params> {
    let max_part = module_parameters::max_part.value();
    let given = module_parameters::max_loop.value();
    let depth = module_parameters::hw_queue_depth.value();
    if depth < 1 {
        pr_err!("hw_queue_depth must be at least 1, not {depth}\n");
        return Err(EINVAL);
    }
    // part_shift = fls(max_part).
    let part_shift = if max_part > 0 {
        u32::BITS - (max_part as u32).leading_zeros()
    } else {
        0
    };
    if part_shift > sys::DISK_MAX_PARTS.trailing_zeros() {
        pr_err!("max_part {max_part} is too large\n");
        return Err(EINVAL);
    }
    // Without the parameter, CONFIG_BLK_DEV_LOOP_MIN_COUNT devices and no limit.
    let max_loop_specified = given != i32::MIN;
    let max_loop = if max_loop_specified { given } else { 8 };
    // C compares as unsigned long, so a negative max_loop fails too.
    let max_loop = u32::try_from(max_loop).map_err(|_| EINVAL)?;
    if max_loop > 1 << (sys::MINORBITS - part_shift) {
        pr_err!("max_loop {max_loop} is too large\n");
        return Err(EINVAL);
    }
    Ok(control::Params {
        max_loop,
        max_loop_specified,
        part_shift,
        // blk-mq caps the depth at BLK_MQ_MAX_DEPTH.
        hw_queue_depth: (depth as u32).min(10240),
    })
}

impl kernel::InPlaceModule for RustLoopModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            _params: {
                let params = params()?;
                device::init_locks();
                control::init(params);
                params
            },
            _major: blk::MajorRegistration::new(sys::LOOP_MAJOR, c"loop", control::probe)
                .map_err(|e| {
                    pr_err!(
                        "block major {} is taken ({e:?}): is the C loop driver loaded? \
                         (rmmod loop)\n",
                        sys::LOOP_MAJOR
                    );
                    // C `loop_init` returns EIO here.
                    EIO
                })?,
            _control <- MiscRegistration::register(sys::LOOP_CTRL_MINOR, c"loop-control"),
            _devices: {
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
