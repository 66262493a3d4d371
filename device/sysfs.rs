// SPDX-License-Identifier: GPL-2.0

//! The `loop/` attribute group of a bound device: `/sys/block/loopN/loop/*`.
//!
//! C version: the `LOOP_ATTR_RO` attributes of
//! [`drivers/block/loop.c`](srctree/drivers/block/loop.c). util-linux treats a device as in
//! use exactly when `loop/backing_file` (or `loop/offset`) exists, so the group is added on
//! configure and removed on detach. The values are read without `lo_mutex` (from copies the
//! configuration path keeps), except `dio_reason`.

use super::LoopDevice;
use crate::{
    loop_uapi::{
        LoFlag,
        LoFlags, //
    },
    staging::sysfs::{
        emit,
        AttrGroup,
        AttrShow,
        DeviceAttr, //
    },
};
use kernel::{
    prelude::*,
    sync::atomic::Relaxed, //
};

impl LoopDevice {
    fn shown_flag(&self, flag: LoFlag) -> u8 {
        u8::from(LoFlags::from_user(self.shown_flags.load(Relaxed)).contains(flag))
    }
}

/// `backing_file`: the path, or nothing when unbound.
struct BackingFileAttr;

impl AttrShow<LoopDevice> for BackingFileAttr {
    const NAME: &'static CStr = c"backing_file";

    /// As C, the path is read under `lo_lock` into the page less its last byte (so a path
    /// of up to `PAGE_SIZE - 2` bytes fits with its newline and NUL), without taking a
    /// reference on the file: a reader never holds the backing file open.
    fn show(dev: &LoopDevice, page: &mut [u8]) -> Result<usize> {
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
}

/// `offset`.
struct OffsetAttr;

impl AttrShow<LoopDevice> for OffsetAttr {
    const NAME: &'static CStr = c"offset";

    fn show(dev: &LoopDevice, page: &mut [u8]) -> Result<usize> {
        emit(page, fmt!("{}\n", dev.shown_offset.load(Relaxed)))
    }
}

/// `sizelimit`.
struct SizelimitAttr;

impl AttrShow<LoopDevice> for SizelimitAttr {
    const NAME: &'static CStr = c"sizelimit";

    fn show(dev: &LoopDevice, page: &mut [u8]) -> Result<usize> {
        emit(page, fmt!("{}\n", dev.shown_sizelimit.load(Relaxed)))
    }
}

/// `autoclear`.
struct AutoclearAttr;

impl AttrShow<LoopDevice> for AutoclearAttr {
    const NAME: &'static CStr = c"autoclear";

    fn show(dev: &LoopDevice, page: &mut [u8]) -> Result<usize> {
        emit(page, fmt!("{}\n", dev.shown_flag(LoFlag::Autoclear)))
    }
}

/// `partscan`.
struct PartscanAttr;

impl AttrShow<LoopDevice> for PartscanAttr {
    const NAME: &'static CStr = c"partscan";

    fn show(dev: &LoopDevice, page: &mut [u8]) -> Result<usize> {
        emit(page, fmt!("{}\n", dev.shown_flag(LoFlag::Partscan)))
    }
}

/// `dio`.
struct DioAttr;

impl AttrShow<LoopDevice> for DioAttr {
    const NAME: &'static CStr = c"dio";

    fn show(dev: &LoopDevice, page: &mut [u8]) -> Result<usize> {
        emit(page, fmt!("{}\n", dev.shown_flag(LoFlag::DirectIo)))
    }
}

/// `dio_reason` (not in C loop): why direct I/O, asked for or wanted by `dio=auto`, is not
/// used, or `none`.
/// Taking `lo_mutex` here is safe: the group is never removed with `lo_mutex` held; it is
/// taken killably, so a reader stuck behind a hung configuration change can be killed.
struct DioReasonAttr;

impl AttrShow<LoopDevice> for DioReasonAttr {
    const NAME: &'static CStr = c"dio_reason";

    fn show(dev: &LoopDevice, page: &mut [u8]) -> Result<usize> {
        match dev.lo_mutex.lock_killable()?.dio_refusal {
            Some(why) => emit(page, fmt!("{why}\n")),
            None => emit(page, fmt!("none\n")),
        }
    }
}

static BACKING_FILE: DeviceAttr<LoopDevice> = DeviceAttr::read_only::<BackingFileAttr>();
static OFFSET: DeviceAttr<LoopDevice> = DeviceAttr::read_only::<OffsetAttr>();
static SIZELIMIT: DeviceAttr<LoopDevice> = DeviceAttr::read_only::<SizelimitAttr>();
static AUTOCLEAR: DeviceAttr<LoopDevice> = DeviceAttr::read_only::<AutoclearAttr>();
static PARTSCAN: DeviceAttr<LoopDevice> = DeviceAttr::read_only::<PartscanAttr>();
static DIO: DeviceAttr<LoopDevice> = DeviceAttr::read_only::<DioAttr>();
static DIO_REASON: DeviceAttr<LoopDevice> = DeviceAttr::read_only::<DioReasonAttr>();

static ATTRS: [Option<&DeviceAttr<LoopDevice>>; 8] = [
    Some(&BACKING_FILE),
    Some(&OFFSET),
    Some(&SIZELIMIT),
    Some(&AUTOCLEAR),
    Some(&PARTSCAN),
    Some(&DIO),
    Some(&DIO_REASON),
    None,
];

/// The `loop` attribute group.
pub(super) static LOOP_GROUP: AttrGroup<LoopDevice> = AttrGroup::new(c"loop", &ATTRS);
