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
mod params;
mod sys;
mod sysfs;

use control::LoopControl;
use kernel::bindings;
use kernel::prelude::*;
use misc::MiscRegistration;

module! {
    type: RustLoopModule,
    name: "rust_loop",
    authors: ["rust_loop developers"],
    description: "Loopback block device driver in Rust",
    license: "GPL",
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

/// Validates the module parameters as C `loop_init` does.
fn validated_params() -> Result<control::Params> {
    let max_part = params::MAX_PART.get();
    let max_loop = params::MAX_LOOP.get();
    // At least 1: the parameter's setter refuses anything else.
    let depth = params::HW_QUEUE_DEPTH.get().max(1);
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
    if max_part > 0 {
        // As C, the rounded value is what sysfs shows.
        params::MAX_PART.set((1 << part_shift) - 1);
    }
    // C compares as unsigned long, so a negative max_loop fails too.
    let max_loop = u32::try_from(max_loop).map_err(|_| EINVAL)?;
    if max_loop > 1 << (sys::MINORBITS - part_shift) {
        pr_err!("max_loop {max_loop} is too large\n");
        return Err(EINVAL);
    }
    Ok(control::Params {
        max_loop,
        max_loop_specified: params::max_loop_specified(),
        part_shift,
        // blk-mq caps the depth at BLK_MQ_MAX_DEPTH.
        hw_queue_depth: (depth as u32).min(bindings::BLK_MQ_MAX_DEPTH),
    })
}

impl kernel::InPlaceModule for RustLoopModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            _params: {
                let params = validated_params()?;
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
