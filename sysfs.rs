// SPDX-License-Identifier: GPL-2.0

//! The `loop/` attribute group of a bound device: `/sys/block/loopN/loop/*`.
//!
//! C version: the `LOOP_ATTR_RO` attributes of
//! [`drivers/block/loop.c`](srctree/drivers/block/loop.c). util-linux treats a device as in
//! use exactly when `loop/backing_file` (or `loop/offset`) exists, so the group is added on
//! configure and removed on detach.

use crate::{
    blk::{
        self,
        SysfsGroup, //
    },
    device::{
        show,
        LoopDevice, //
    },
    loop_uapi::*,
};
use core::fmt::Write;
use kernel::{
    bindings,
    ffi::c_char,
    prelude::*,
    str::{
        as_char_ptr_in_const_context,
        Formatter, //
    },
    types::Opaque,
};

/// A static device attribute.
#[repr(transparent)]
struct Attr(Opaque<bindings::device_attribute>);

// SAFETY: Attributes are immutable after construction; sysfs only reads them.
unsafe impl Sync for Attr {}

/// The type of a show callback.
type ShowFn = unsafe extern "C" fn(
    *mut bindings::device,
    *mut bindings::device_attribute,
    *mut c_char,
) -> isize;

const fn attr(name: &'static CStr, show: ShowFn) -> Attr {
    Attr(Opaque::new(bindings::device_attribute {
        attr: bindings::attribute {
            name: as_char_ptr_in_const_context(name),
            mode: 0o444,
            ..pin_init::zeroed()
        },
        __bindgen_anon_1: bindings::device_attribute__bindgen_ty_1 { show: Some(show) },
        ..pin_init::zeroed()
    }))
}

/// Formats into a sysfs page and returns the length or the error, as `sysfs_emit`.
///
/// # Safety
///
/// `dev` must be the device of a live loop disk and `buf` a sysfs page (`PAGE_SIZE` bytes).
unsafe fn emit(
    dev: *mut bindings::device,
    buf: *mut c_char,
    f: impl FnOnce(&LoopDevice, &mut [u8]) -> Result<usize>,
) -> isize {
    // SAFETY: Guaranteed by the caller.
    let (dev, page) = unsafe {
        (
            blk::device_of::<LoopDevice>(dev),
            core::slice::from_raw_parts_mut(buf, bindings::PAGE_SIZE),
        )
    };
    match f(dev, page) {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

fn write_fmt(page: &mut [u8], args: core::fmt::Arguments<'_>) -> Result<usize> {
    let mut f = Formatter::new(page);
    f.write_fmt(args).map_err(|_| EINVAL)?;
    Ok(f.bytes_written())
}

macro_rules! loop_attr {
    ($fn:ident, $static:ident, $name:literal, |$dev:ident, $page:ident| $body:expr) => {
        /// # Safety
        ///
        /// Called by sysfs for an attribute of a live loop disk.
        unsafe extern "C" fn $fn(
            dev: *mut bindings::device,
            _attr: *mut bindings::device_attribute,
            buf: *mut c_char,
        ) -> isize {
            // SAFETY: The group is only added to loop disks; `buf` is a sysfs page.
            unsafe { emit(dev, buf, |$dev, $page| $body) }
        }
        static $static: Attr = attr($name, $fn);
    };
}

fn flag(dev: &LoopDevice, flag: u32) -> u8 {
    u8::from(show::flags(dev) & flag != 0)
}

loop_attr!(backing_file_show, BACKING_FILE, c"backing_file", |d, p| {
    show::backing_file(d, p)
});
loop_attr!(offset_show, OFFSET, c"offset", |d, p| write_fmt(
    p,
    fmt!("{}\n", show::offset(d))
));
loop_attr!(sizelimit_show, SIZELIMIT, c"sizelimit", |d, p| write_fmt(
    p,
    fmt!("{}\n", show::sizelimit(d))
));
loop_attr!(autoclear_show, AUTOCLEAR, c"autoclear", |d, p| write_fmt(
    p,
    fmt!("{}\n", flag(d, LO_FLAGS_AUTOCLEAR))
));
loop_attr!(partscan_show, PARTSCAN, c"partscan", |d, p| write_fmt(
    p,
    fmt!("{}\n", flag(d, LO_FLAGS_PARTSCAN))
));
loop_attr!(dio_show, DIO, c"dio", |d, p| write_fmt(
    p,
    fmt!("{}\n", flag(d, LO_FLAGS_DIRECT_IO))
));

// Not in C loop: why direct I/O was asked for and not used. Taking `lo_mutex` here is safe:
// the group is never removed with `lo_mutex` held.
loop_attr!(
    dio_reason_show,
    DIO_REASON,
    c"dio_reason",
    |d, p| write_fmt(p, fmt!("{}\n", show::dio_reason(d)))
);

/// A NULL-terminated array of attribute pointers.
struct AttrList([*mut bindings::attribute; 8]);

// SAFETY: The array is immutable and points to immutable statics.
unsafe impl Sync for AttrList {}

const fn ptr(a: &'static Attr) -> *mut bindings::attribute {
    // `attr` is the first field of the `repr(C)` `device_attribute` that `Attr` wraps.
    a.0.get().cast()
}

static ATTRS: AttrList = AttrList([
    ptr(&BACKING_FILE),
    ptr(&OFFSET),
    ptr(&SIZELIMIT),
    ptr(&AUTOCLEAR),
    ptr(&PARTSCAN),
    ptr(&DIO),
    ptr(&DIO_REASON),
    core::ptr::null_mut(),
]);

/// The `loop` attribute group.
pub(crate) static LOOP_GROUP: SysfsGroup = SysfsGroup::new(bindings::attribute_group {
    name: as_char_ptr_in_const_context(c"loop"),
    __bindgen_anon_2: bindings::attribute_group__bindgen_ty_2 {
        attrs: ATTRS.0.as_ptr().cast_mut(),
    },
    ..pin_init::zeroed()
});
