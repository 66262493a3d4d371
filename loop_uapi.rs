// SPDX-License-Identifier: GPL-2.0

//! The loop device user API: ioctl numbers, flags and structures.
//!
//! C header: [`include/uapi/linux/loop.h`](srctree/include/uapi/linux/loop.h). The Rust `uapi`
//! crate does not include this header, so the layouts are written out here with explicit
//! padding fields and checked with `static_assert!`.

use kernel::transmute::{
    AsBytes,
    FromBytes, //
};

/// Length of the file name fields.
pub(crate) const LO_NAME_SIZE: usize = 64;
/// Length of the (unused) encryption key fields.
pub(crate) const LO_KEY_SIZE: usize = 32;

/// The device is read-only.
pub(crate) const LO_FLAGS_READ_ONLY: u32 = 1;
/// The device detaches itself on last close.
pub(crate) const LO_FLAGS_AUTOCLEAR: u32 = 4;
/// The kernel scans the device for partitions.
pub(crate) const LO_FLAGS_PARTSCAN: u32 = 8;
/// I/O goes to the backing file with direct I/O.
pub(crate) const LO_FLAGS_DIRECT_IO: u32 = 16;

/// Flags `LOOP_SET_STATUS` may set.
pub(crate) const LOOP_SET_STATUS_SETTABLE_FLAGS: u32 = LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN;
/// Flags `LOOP_SET_STATUS` may clear.
pub(crate) const LOOP_SET_STATUS_CLEARABLE_FLAGS: u32 = LO_FLAGS_AUTOCLEAR;
/// Flags `LOOP_CONFIGURE` accepts.
pub(crate) const LOOP_CONFIGURE_SETTABLE_FLAGS: u32 =
    LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN | LO_FLAGS_DIRECT_IO;

/// No encryption, the only transfer type still supported.
pub(crate) const LO_CRYPT_NONE: u32 = 0;
/// The removed XOR transfer.
pub(crate) const LO_CRYPT_XOR: u32 = 1;
/// The removed cryptoapi transfer.
pub(crate) const LO_CRYPT_CRYPTOAPI: u32 = 18;

/// Block-device ioctls (raw numbers, not `_IOC` encoded).
pub(crate) const LOOP_SET_FD: u32 = 0x4C00;
pub(crate) const LOOP_CLR_FD: u32 = 0x4C01;
pub(crate) const LOOP_SET_STATUS: u32 = 0x4C02;
pub(crate) const LOOP_GET_STATUS: u32 = 0x4C03;
pub(crate) const LOOP_SET_STATUS64: u32 = 0x4C04;
pub(crate) const LOOP_GET_STATUS64: u32 = 0x4C05;
pub(crate) const LOOP_CHANGE_FD: u32 = 0x4C06;
pub(crate) const LOOP_SET_CAPACITY: u32 = 0x4C07;
pub(crate) const LOOP_SET_DIRECT_IO: u32 = 0x4C08;
pub(crate) const LOOP_SET_BLOCK_SIZE: u32 = 0x4C09;
pub(crate) const LOOP_CONFIGURE: u32 = 0x4C0A;

/// `/dev/loop-control` ioctls.
pub(crate) const LOOP_CTL_ADD: u32 = 0x4C80;
pub(crate) const LOOP_CTL_REMOVE: u32 = 0x4C81;
pub(crate) const LOOP_CTL_GET_FREE: u32 = 0x4C82;

/// The legacy status structure (`struct loop_info`), 168 bytes on x86_64.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct LoopInfo {
    pub(crate) lo_number: i32,
    pub(crate) _pad0: u32,
    /// `__kernel_old_dev_t`, an `unsigned long` on 64-bit.
    pub(crate) lo_device: usize,
    pub(crate) lo_inode: usize,
    pub(crate) lo_rdevice: usize,
    pub(crate) lo_offset: i32,
    pub(crate) lo_encrypt_type: i32,
    pub(crate) lo_encrypt_key_size: i32,
    pub(crate) lo_flags: i32,
    pub(crate) lo_name: [u8; LO_NAME_SIZE],
    pub(crate) lo_encrypt_key: [u8; LO_KEY_SIZE],
    pub(crate) lo_init: [usize; 2],
    pub(crate) reserved: [u8; 4],
    pub(crate) _pad1: u32,
}

/// The 64-bit status structure (`struct loop_info64`), 232 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct LoopInfo64 {
    pub(crate) lo_device: u64,
    pub(crate) lo_inode: u64,
    pub(crate) lo_rdevice: u64,
    pub(crate) lo_offset: u64,
    pub(crate) lo_sizelimit: u64,
    pub(crate) lo_number: u32,
    pub(crate) lo_encrypt_type: u32,
    pub(crate) lo_encrypt_key_size: u32,
    pub(crate) lo_flags: u32,
    pub(crate) lo_file_name: [u8; LO_NAME_SIZE],
    pub(crate) lo_crypt_name: [u8; LO_NAME_SIZE],
    pub(crate) lo_encrypt_key: [u8; LO_KEY_SIZE],
    pub(crate) lo_init: [u64; 2],
}

/// The argument of `LOOP_CONFIGURE` (`struct loop_config`), 304 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct LoopConfig {
    pub(crate) fd: u32,
    pub(crate) block_size: u32,
    pub(crate) info: LoopInfo64,
    pub(crate) reserved: [u64; 8],
}

/// The 32-bit legacy status structure (`struct compat_loop_info` in `loop.c`), 140 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct CompatLoopInfo {
    pub(crate) lo_number: i32,
    /// `compat_dev_t`, 16 bits on x86.
    pub(crate) lo_device: u16,
    pub(crate) _pad0: u16,
    pub(crate) lo_inode: u32,
    pub(crate) lo_rdevice: u16,
    pub(crate) _pad1: u16,
    pub(crate) lo_offset: i32,
    pub(crate) lo_encrypt_type: i32,
    pub(crate) lo_encrypt_key_size: i32,
    pub(crate) lo_flags: i32,
    pub(crate) lo_name: [u8; LO_NAME_SIZE],
    pub(crate) lo_encrypt_key: [u8; LO_KEY_SIZE],
    pub(crate) lo_init: [u32; 2],
    pub(crate) reserved: [u8; 4],
}

kernel::static_assert!(core::mem::size_of::<LoopInfo>() == 168);
kernel::static_assert!(core::mem::size_of::<LoopInfo64>() == 232);
kernel::static_assert!(core::mem::size_of::<LoopConfig>() == 304);
kernel::static_assert!(core::mem::size_of::<CompatLoopInfo>() == 140);

// SAFETY: The structures are `repr(C)`, made of integers and byte arrays only, and have their
// padding written out as fields, so every bit pattern is valid and no byte is uninitialised.
unsafe impl FromBytes for LoopInfo {}
// SAFETY: See above.
unsafe impl AsBytes for LoopInfo {}
// SAFETY: See above.
unsafe impl FromBytes for LoopInfo64 {}
// SAFETY: See above.
unsafe impl AsBytes for LoopInfo64 {}
// SAFETY: See above.
unsafe impl FromBytes for LoopConfig {}
// SAFETY: See above.
unsafe impl AsBytes for LoopConfig {}
// SAFETY: See above.
unsafe impl FromBytes for CompatLoopInfo {}
// SAFETY: See above.
unsafe impl AsBytes for CompatLoopInfo {}
