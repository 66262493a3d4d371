// SPDX-License-Identifier: GPL-2.0

//! Read-only attributes of a disk and their group, in the disk's sysfs directory.
//!
//! Stands in for device attribute groups, which the 7.3 kernel crate cannot declare (it
//! has no `struct device_attribute` or `struct attribute_group` abstraction). An attribute
//! is a type implementing [`AttrShow`]; [`DeviceAttr::read_only`] makes its C descriptor and
//! [`AttrGroup::new`] the NULL-terminated table, all `static` and built at compile time.
//!
//! C header: [`include/linux/sysfs.h`](srctree/include/linux/sysfs.h).

use super::{
    gen_disk::DiskRef,
    operations::Operations, //
};
use core::{
    fmt::Write,
    marker::PhantomData, //
};
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

/// A read-only attribute of `T`'s disks.
pub(crate) trait AttrShow<T>: 'static {
    /// The file name.
    const NAME: &'static CStr;

    /// Formats the attribute of `dev` into `page` (a sysfs page) and returns the length.
    fn show(dev: &T, page: &mut [u8]) -> Result<usize>;
}

/// Formats into a sysfs page and returns the length (`sysfs_emit`).
pub(crate) fn emit(page: &mut [u8], args: core::fmt::Arguments<'_>) -> Result<usize> {
    let mut f = Formatter::new(page);
    f.write_fmt(args).map_err(|_| EINVAL)?;
    Ok(f.bytes_written())
}

/// The C descriptor of a read-only attribute of `T`'s disks (`DEVICE_ATTR_RO`).
///
/// # Invariants
///
/// The wrapped `device_attribute` is immutable, its name static and its `show` callback
/// expects a disk of `T`.
#[repr(transparent)]
pub(crate) struct DeviceAttr<T>(Opaque<bindings::device_attribute>, PhantomData<T>);

// SAFETY: The descriptor is immutable after construction (type invariant); sysfs only reads
// it.
unsafe impl<T> Sync for DeviceAttr<T> {}

// The table below relies on `attr` being the first field.
kernel::static_assert!(core::mem::offset_of!(bindings::device_attribute, attr) == 0);

impl<T: Operations> DeviceAttr<T> {
    /// The descriptor of attribute `S`, mode 0444.
    pub(crate) const fn read_only<S: AttrShow<T>>() -> Self {
        // INVARIANT: Static name, and a callback for `T`'s disks.
        Self(
            Opaque::new(bindings::device_attribute {
                attr: bindings::attribute {
                    name: as_char_ptr_in_const_context(S::NAME),
                    mode: 0o444,
                    ..pin_init::zeroed()
                },
                __bindgen_anon_1: bindings::device_attribute__bindgen_ty_1 {
                    show: Some(Self::show_callback::<S>),
                },
                ..pin_init::zeroed()
            }),
            PhantomData,
        )
    }

    /// # Safety
    ///
    /// Called by sysfs for a group added with [`DiskRef::add_group`]: `dev` is the device of
    /// a live disk and `buf` a sysfs page (`PAGE_SIZE` bytes).
    unsafe extern "C" fn show_callback<S: AttrShow<T>>(
        dev: *mut bindings::device,
        _attr: *mut bindings::device_attribute,
        buf: *mut c_char,
    ) -> isize {
        // SAFETY: `dev` is `part0->bd_device` of a live disk (`dev_to_disk`), which stays
        // valid while its attribute files are open; `buf` is a page for us to fill.
        let (disk, page) = unsafe {
            let bdev = kernel::container_of!(dev, bindings::block_device, bd_device);
            (
                DiskRef::from_raw((*bdev).bd_disk),
                core::slice::from_raw_parts_mut(buf.cast::<u8>(), bindings::PAGE_SIZE),
            )
        };
        let Some(dev) = disk.driver_data::<T>() else {
            return -(bindings::EINVAL as isize);
        };
        match S::show(dev, page) {
            Ok(n) => n as isize,
            Err(e) => e.to_errno() as isize,
        }
    }
}

/// A named group of read-only attributes of `T`'s disks (`struct attribute_group`).
///
/// # Invariants
///
/// The wrapped group is immutable; its `attrs` is a static NULL-terminated array of
/// pointers to `DeviceAttr<T>`s (whose first field is their `struct attribute`).
#[repr(transparent)]
pub(crate) struct AttrGroup<T>(Opaque<bindings::attribute_group>, PhantomData<T>);

// SAFETY: The group is immutable after construction (type invariant); sysfs only reads it.
unsafe impl<T> Sync for AttrGroup<T> {}

impl<T: Operations> AttrGroup<T> {
    /// The group `name` of `attrs`, whose last entry must be `None` (checked at compile
    /// time, as the table is `static`).
    ///
    /// `Option<&DeviceAttr<T>>` has the layout of a nullable pointer to the attribute's
    /// `struct device_attribute`, whose `attr` is its first field: the array is the
    /// `struct attribute *[]` sysfs expects.
    pub(crate) const fn new(
        name: &'static CStr,
        attrs: &'static [Option<&'static DeviceAttr<T>>],
    ) -> Self {
        assert!(!attrs.is_empty() && attrs[attrs.len() - 1].is_none());
        // INVARIANT: `attrs` is static and NULL-terminated (checked above).
        Self(
            Opaque::new(bindings::attribute_group {
                name: as_char_ptr_in_const_context(name),
                __bindgen_anon_2: bindings::attribute_group__bindgen_ty_2 {
                    attrs: attrs.as_ptr().cast_mut().cast(),
                },
                ..pin_init::zeroed()
            }),
            PhantomData,
        )
    }

    pub(super) fn as_raw(&self) -> *mut bindings::attribute_group {
        self.0.get()
    }
}
