// SPDX-License-Identifier: GPL-2.0

//! `int` and named-choice module parameters that sysfs shows, as C's
//! `module_param_cb(..., 0444)`.
//!
//! Stands in for `module!`'s `params`, which in 7.3 registers parameters with permission 0
//! (so they are missing from `/sys/module/*/parameters/`), cannot tell whether the user gave
//! a value, and cannot refuse values below a minimum at load. A parameter here is a
//! `struct kernel_param` in the `__param` section, which the module loader parses and
//! exposes, plus `parm`/`parmtype` strings in `.modinfo` for modinfo(8); declare one with
//! [`int_param!`] or [`choice_param!`].
//!
//! C header: [`include/linux/moduleparam.h`](srctree/include/linux/moduleparam.h).

use core::{
    ffi::CStr,
    sync::atomic::{
        AtomicBool,
        AtomicI32,
        AtomicUsize,
        Ordering::Relaxed, //
    },
};
use kernel::{
    bindings,
    ffi::{
        c_char,
        c_int, //
    },
    str::CStrExt,
};

/// The value of an `int` module parameter, at least `min`.
///
/// The loader's parser (at load, before `init`) and sysfs reach it through the descriptor's
/// `arg`, as a plain `int` (its first field); Rust code uses atomic accesses. A write after
/// parsing (C `loop_init` rounding `max_part`) may meet a sysfs read of the old value:
/// benign, as in C.
///
/// # Invariants
///
/// `value` is at least `min` once set by the parser.
#[repr(C)]
pub(crate) struct IntParam {
    value: AtomicI32,
    /// Whether the user gave a value at load (C `max_loop_specified`).
    specified: AtomicBool,
    min: i32,
}

impl IntParam {
    /// A parameter with a default (not checked against `min`) and a minimum for user values.
    pub(crate) const fn new(default: i32, min: i32) -> Self {
        Self {
            value: AtomicI32::new(default),
            specified: AtomicBool::new(false),
            min,
        }
    }

    /// The parameter's value.
    pub(crate) fn get(&self) -> i32 {
        self.value.load(Relaxed)
    }

    /// Replaces the value (what sysfs shows from now on).
    pub(crate) fn set(&self, value: i32) {
        self.value.store(value, Relaxed)
    }

    /// Whether the user gave a value at load.
    pub(crate) fn specified(&self) -> bool {
        self.specified.load(Relaxed)
    }

    /// The `kernel_param_ops` of every [`IntParam`]: `param_set_int` that refuses values
    /// below the minimum and notes that the user chose one, and `param_get_int`.
    const OPS: bindings::kernel_param_ops = bindings::kernel_param_ops {
        flags: 0,
        set: Some(Self::set_callback),
        get: Some(bindings::param_get_int),
        free: None,
    };

    /// # Safety
    ///
    /// Called by the module loader's parser at load, or for a root write to the parameter's
    /// sysfs file (`param_attr_store`, if the mode allowed it), with a descriptor made by
    /// [`KernelParam::new`] (so its `arg` is an `IntParam`) and a NUL-terminated value or
    /// null. The value is stored atomically, so a concurrent reader sees the old or the new.
    unsafe extern "C" fn set_callback(
        val: *const c_char,
        kp: *const bindings::kernel_param,
    ) -> c_int {
        if val.is_null() {
            return -(bindings::EINVAL as c_int);
        }
        let mut value: c_int = 0;
        // SAFETY: `val` is the NUL-terminated value the parser passes; `value` is an `int`.
        let ret = unsafe { bindings::kstrtoint(val, 0, &mut value) };
        if ret < 0 {
            return ret;
        }
        // SAFETY: `kp` is a descriptor made by `KernelParam::new`, valid for reads.
        let param = unsafe { param_of::<IntParam>(kp) };
        if value < param.min {
            return -(bindings::EINVAL as c_int);
        }
        // INVARIANT: Checked against `min` above.
        param.set(value);
        param.specified.store(true, Relaxed);
        0
    }
}

/// A module parameter whose value is one of a fixed list of names (`dio=off|auto`), shown by
/// name in sysfs. C drivers write such parameters with their own `kernel_param_ops`.
///
/// # Invariants
///
/// `index` is below `names.len()`.
pub(crate) struct ChoiceParam {
    index: AtomicUsize,
    names: &'static [&'static str],
}

impl ChoiceParam {
    /// A parameter taking one of `names`, `names[default]` unless the user chose another.
    /// Every name is 1 to 32 bytes (checked at compile time, as parameters are `static`).
    pub(crate) const fn new(names: &'static [&'static str], default: usize) -> Self {
        assert!(default < names.len());
        let mut i = 0;
        while i < names.len() {
            assert!(!names[i].is_empty() && names[i].len() <= 32);
            i += 1;
        }
        // INVARIANT: Checked above.
        Self {
            index: AtomicUsize::new(default),
            names,
        }
    }

    /// The index in `names` of the value.
    pub(crate) fn get(&self) -> usize {
        self.index.load(Relaxed)
    }

    /// The `kernel_param_ops` of every [`ChoiceParam`]: a name in, a name out.
    const OPS: bindings::kernel_param_ops = bindings::kernel_param_ops {
        flags: 0,
        set: Some(Self::set_callback),
        get: Some(Self::get_callback),
        free: None,
    };

    /// # Safety
    ///
    /// Called by the module loader's parser at load (or, if the mode allowed it, for a root
    /// write to the parameter's sysfs file) with a descriptor made by [`KernelParam::choice`]
    /// (so its `arg` is a `ChoiceParam`) and a NUL-terminated value (the parser refuses a
    /// missing value before calling, as the ops have no `KERNEL_PARAM_OPS_FL_NOARG`).
    unsafe extern "C" fn set_callback(
        val: *const c_char,
        kp: *const bindings::kernel_param,
    ) -> c_int {
        if val.is_null() {
            return -(bindings::EINVAL as c_int);
        }
        // SAFETY: `val` is the NUL-terminated value the parser passes, valid and unchanged
        // for the call (the parser holds its buffer and `kernel_param_lock`).
        let value = unsafe { CStr::from_char_ptr(val) }.to_bytes();
        // A sysfs write would end with a newline (as `sysfs_streq` allows).
        let value = value.strip_suffix(b"\n").unwrap_or(value);
        // SAFETY: `kp` is a descriptor made by `KernelParam::choice`, valid for reads.
        let param = unsafe { param_of::<ChoiceParam>(kp) };
        match param.names.iter().position(|name| name.as_bytes() == value) {
            Some(index) => {
                // INVARIANT: `index` is a position in `names`.
                param.index.store(index, Relaxed);
                0
            }
            None => -(bindings::EINVAL as c_int),
        }
    }

    /// # Safety
    ///
    /// Called by sysfs (`param_attr_show`) with a page-sized buffer and a descriptor made by
    /// [`KernelParam::choice`].
    unsafe extern "C" fn get_callback(
        buffer: *mut c_char,
        kp: *const bindings::kernel_param,
    ) -> c_int {
        // SAFETY: As in `set_callback`.
        let param = unsafe { param_of::<ChoiceParam>(kp) };
        // By the type invariant the index is in bounds; names are at most 32 bytes (checked
        // in `new`), so name and newline stay below a page, as sysfs requires.
        let name = param
            .names
            .get(param.get())
            .map_or(&b""[..], |n| n.as_bytes());
        let len = name.len().min(32);
        // SAFETY: `buffer` is valid for writes of a page (sysfs's buffer); `len + 1` bytes
        // fit, and `name` does not overlap it (it is static data).
        unsafe {
            core::ptr::copy_nonoverlapping(name.as_ptr(), buffer.cast::<u8>(), len);
            *buffer.add(len) = b'\n' as c_char;
        }
        // `len + 1` is at most 33: it fits a `c_int`.
        (len + 1) as c_int
    }
}

/// The parameter that descriptor `kp` points at.
///
/// # Safety
///
/// `kp` is valid for reads and was made by [`KernelParam`] for a `P`: by
/// [`KernelParam::new`] for an [`IntParam`], by [`KernelParam::choice`] for a
/// [`ChoiceParam`].
unsafe fn param_of<P>(kp: *const bindings::kernel_param) -> &'static P {
    // SAFETY: By `KernelParam`'s type invariant and the caller's guarantee, `arg` points at
    // a static `P`.
    unsafe { &*(*kp).__bindgen_anon_1.arg.cast::<P>() }
}

/// A `struct kernel_param` for the `__param` section.
///
/// # Invariants
///
/// `name` is a static NUL-terminated string, and `arg` points at a static parameter of the
/// type whose ops `ops` are: an [`IntParam`] with `IntParam::OPS`, or a [`ChoiceParam`] with
/// `ChoiceParam::OPS`.
#[repr(transparent)]
pub(crate) struct KernelParam(bindings::kernel_param);

// SAFETY: Only the module loader and the sysfs code read the descriptor, and nothing writes it
// (it points at `'static` data: its name, the ops and the parameter).
unsafe impl Sync for KernelParam {}

impl KernelParam {
    /// The descriptor of `param`, named by the NUL-terminated `name` (checked at compile
    /// time, as descriptors are `static`), readable by everyone.
    pub(crate) const fn new(name: &'static [u8], param: &'static IntParam) -> Self {
        // INVARIANT: `IntParam::OPS` with an `IntParam`.
        Self::with_ops(name, &IntParam::OPS, core::ptr::from_ref(param).cast())
    }

    /// The descriptor of a [`ChoiceParam`], as [`KernelParam::new`].
    pub(crate) const fn choice(name: &'static [u8], param: &'static ChoiceParam) -> Self {
        // INVARIANT: `ChoiceParam::OPS` with a `ChoiceParam`.
        Self::with_ops(name, &ChoiceParam::OPS, core::ptr::from_ref(param).cast())
    }

    const fn with_ops(
        name: &'static [u8],
        ops: &'static bindings::kernel_param_ops,
        arg: *const core::ffi::c_void,
    ) -> Self {
        assert!(!name.is_empty() && name[name.len() - 1] == 0);
        // INVARIANT: The name is checked above; the callers pair `ops` and `arg`.
        Self(bindings::kernel_param {
            name: name.as_ptr().cast(),
            mod_: (&raw const bindings::__this_module).cast_mut(),
            ops,
            perm: 0o444,
            level: -1,
            flags: 0,
            __bindgen_anon_1: bindings::kernel_param__bindgen_ty_1 {
                arg: arg.cast_mut(),
            },
        })
    }
}

/// Copies `s` into an array of its length, for a `.modinfo` string.
pub(crate) const fn modinfo<const N: usize>(s: &str) -> [u8; N] {
    let bytes = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// `module_param_cb(NAME, ..., &STORAGE, 0444)` with `MODULE_PARM_DESC(NAME, DESC)`: declares
/// `static STORAGE: IntParam` with a default and a minimum. A trailing `int` makes it
/// `module_param(NAME, int, 0444)`, which also records the type for modinfo.
///
/// Its descriptors are `#[link_section]` statics, which `unsafe_code` flags: invoke it from
/// the crate root, next to `module!`.
macro_rules! int_param {
    ($name:ident, $storage:ident = $default:expr, min $min:expr, $desc:literal $(, $ty:ident)?) => {
        #[doc = $desc]
        pub(crate) static $storage: $crate::staging::params::IntParam =
            $crate::staging::params::IntParam::new($default, $min);

        const _: () = {
            #[link_section = "__param"]
            #[used(compiler)]
            static PARAM: $crate::staging::params::KernelParam =
                $crate::staging::params::KernelParam::new(
                    concat!(stringify!($name), "\0").as_bytes(),
                    &$storage,
                );

            const PARM: &str = concat!("parm=", stringify!($name), ":", $desc, "\0");
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static PARM_INFO: [u8; PARM.len()] = $crate::staging::params::modinfo(PARM);

            $(
                const PARMTYPE: &str =
                    concat!("parmtype=", stringify!($name), ":", stringify!($ty), "\0");
                #[link_section = ".modinfo"]
                #[used(compiler)]
                static PARMTYPE_INFO: [u8; PARMTYPE.len()] =
                    $crate::staging::params::modinfo(PARMTYPE);
            )?
        };
    };
}
pub(crate) use int_param;

/// `module_param_cb(NAME, &choice_ops, &STORAGE, 0444)` with `MODULE_PARM_DESC(NAME, DESC)`:
/// declares `static STORAGE: ChoiceParam` taking one of the listed names, each with a
/// `const` for its index (checked to be its position), the named one by default.
/// Invoke it from the crate root, as [`int_param!`].
macro_rules! choice_param {
    ($name:ident, $storage:ident = [$($index:literal => $konst:ident = $choice:literal),+ $(,)?],
     default $default:ident, $desc:literal) => {
        #[doc = $desc]
        pub(crate) static $storage: $crate::staging::params::ChoiceParam =
            $crate::staging::params::ChoiceParam::new(&[$($choice),+], $default);

        $(
            #[doc = concat!("`", stringify!($name), "=", $choice, "`.")]
            pub(crate) const $konst: usize = $index;
        )+

        const _: () = {
            // The indices are the positions in the list.
            let mut position = 0;
            $(
                assert!($index == position);
                position += 1;
            )+
            let _ = position;

            #[link_section = "__param"]
            #[used(compiler)]
            static PARAM: $crate::staging::params::KernelParam =
                $crate::staging::params::KernelParam::choice(
                    concat!(stringify!($name), "\0").as_bytes(),
                    &$storage,
                );

            const PARM: &str = concat!("parm=", stringify!($name), ":", $desc, "\0");
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static PARM_INFO: [u8; PARM.len()] = $crate::staging::params::modinfo(PARM);
        };
    };
}
pub(crate) use choice_param;
