// SPDX-License-Identifier: GPL-2.0

//! Module parameters, readable in `/sys/module/rust_loop/parameters/` as C loop's are.
//!
//! `module!` registers its parameters with permission 0, which keeps them out of sysfs, so
//! these are registered as C's `module_param_cb` does: a `struct kernel_param` in the
//! `__param` section, which the module loader parses and exposes, and `parm`/`parmtype`
//! strings in `.modinfo` for modinfo(8).
//!
//! C version: the top of [`drivers/block/loop.c`](srctree/drivers/block/loop.c).

use core::sync::atomic::{AtomicBool, AtomicI32, Ordering::Relaxed};
use kernel::bindings;
use kernel::ffi::{c_char, c_int};

/// The value of an `int` module parameter.
///
/// The kernel's parser (at load, before `init`) writes it and sysfs reads it as a plain `int`
/// through the descriptor's `arg`; Rust code uses atomic accesses. The one write after
/// parsing, `loop_init` rounding `max_part`, may meet a sysfs read of the old value (the
/// parameter files exist before `init` runs): benign, as in C.
#[repr(transparent)]
pub(crate) struct IntParam(AtomicI32);

impl IntParam {
    const fn new(value: c_int) -> Self {
        Self(AtomicI32::new(value))
    }

    /// The parameter's value.
    pub(crate) fn get(&self) -> i32 {
        self.0.load(Relaxed)
    }

    /// Replaces the value (what sysfs shows from now on).
    pub(crate) fn set(&self, value: i32) {
        self.0.store(value, Relaxed)
    }
}

/// A `struct kernel_param` for the `__param` section.
#[repr(transparent)]
struct KernelParam(bindings::kernel_param);

// SAFETY: Only the module loader and the sysfs code read the descriptor, and nothing writes it
// (it points at `'static` data: its name, ops and `IntParam`).
unsafe impl Sync for KernelParam {}

/// Copies `s` into an array of its length, for a `.modinfo` string.
const fn modinfo<const N: usize>(s: &str) -> [u8; N] {
    let bytes = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// `module_param_cb(NAME, OPS, &STORAGE, 0444)` plus `MODULE_PARM_DESC(NAME, DESC)`; with a
/// trailing `int`, `module_param(NAME, int, 0444)`, which also records the type for modinfo.
macro_rules! int_param {
    ($name:ident, $storage:ident = $default:expr, $ops:expr, $desc:literal $(, $ty:ident)?) => {
        #[doc = $desc]
        pub(crate) static $storage: IntParam = IntParam::new($default);

        const _: () = {
            #[link_section = "__param"]
            #[used(compiler)]
            static PARAM: KernelParam = KernelParam(bindings::kernel_param {
                name: concat!(stringify!($name), "\0").as_ptr().cast(),
                mod_: (&raw const bindings::__this_module).cast_mut(),
                ops: $ops,
                perm: 0o444,
                level: -1,
                flags: 0,
                __bindgen_anon_1: bindings::kernel_param__bindgen_ty_1 {
                    arg: $storage.0.as_ptr().cast(),
                },
            });

            const PARM: &str = concat!("parm=", stringify!($name), ":", $desc, "\0");
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static PARM_INFO: [u8; PARM.len()] = modinfo(PARM);

            $(
                const PARMTYPE: &str =
                    concat!("parmtype=", stringify!($name), ":", stringify!($ty), "\0");
                #[link_section = ".modinfo"]
                #[used(compiler)]
                static PARMTYPE_INFO: [u8; PARMTYPE.len()] = modinfo(PARMTYPE);
            )?
        };
    };
}

/// Whether the user gave `max_loop` (C `max_loop_specified`).
static MAX_LOOP_SPECIFIED: AtomicBool = AtomicBool::new(false);

/// `max_loop_param_set_int`: `param_set_int` that also notes that the user chose a value.
///
/// # Safety
///
/// Called by the module loader's parser, with its `val` and `kp`.
unsafe extern "C" fn max_loop_set(val: *const c_char, kp: *const bindings::kernel_param) -> c_int {
    // SAFETY: The parser's arguments, passed through; `kp->arg` is `MAX_LOOP`'s `c_int`.
    let ret = unsafe { bindings::param_set_int(val, kp) };
    if ret == 0 {
        MAX_LOOP_SPECIFIED.store(true, Relaxed);
    }
    ret
}

/// `loop_set_hw_queue_depth`: an `int` of at least 1.
///
/// # Safety
///
/// Called by the module loader's parser, with its `val` and `kp`.
unsafe extern "C" fn hw_queue_depth_set(
    val: *const c_char,
    kp: *const bindings::kernel_param,
) -> c_int {
    if val.is_null() {
        return -(bindings::EINVAL as c_int);
    }
    let mut depth: c_int = 0;
    // SAFETY: `val` is the NUL-terminated value the parser passes; `depth` is a valid `int`.
    let ret = unsafe { bindings::kstrtoint(val, 0, &mut depth) };
    if ret < 0 {
        return ret;
    }
    if depth < 1 {
        return -(bindings::EINVAL as c_int);
    }
    // SAFETY: This function is only in `HW_QUEUE_DEPTH_OPS`, so `kp` is `HW_QUEUE_DEPTH`'s
    // descriptor, valid for reads, whose `arg` points at that `IntParam`'s `AtomicI32`.
    let value = unsafe { AtomicI32::from_ptr((*kp).__bindgen_anon_1.arg.cast::<c_int>()) };
    value.store(depth, Relaxed);
    0
}

static MAX_LOOP_OPS: bindings::kernel_param_ops = bindings::kernel_param_ops {
    flags: 0,
    set: Some(max_loop_set),
    get: Some(bindings::param_get_int),
    free: None,
};

static HW_QUEUE_DEPTH_OPS: bindings::kernel_param_ops = bindings::kernel_param_ops {
    flags: 0,
    set: Some(hw_queue_depth_set),
    get: Some(bindings::param_get_int),
    free: None,
};

int_param!(
    max_loop,
    MAX_LOOP = bindings::CONFIG_BLK_DEV_LOOP_MIN_COUNT as c_int,
    &raw const MAX_LOOP_OPS,
    "Maximum number of loop devices"
);
int_param!(
    max_part,
    MAX_PART = 0,
    &raw const bindings::param_ops_int,
    "Maximum number of partitions per loop device",
    int
);
int_param!(
    hw_queue_depth,
    HW_QUEUE_DEPTH = 128,
    &raw const HW_QUEUE_DEPTH_OPS,
    "Queue depth for each hardware queue. Default: 128"
);

/// Whether `max_loop` was given at load.
pub(crate) fn max_loop_specified() -> bool {
    MAX_LOOP_SPECIFIED.load(Relaxed)
}
