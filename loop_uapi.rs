// SPDX-License-Identifier: GPL-2.0

//! The loop device user API: ioctl numbers, flags and structures.
//!
//! C header: [`include/uapi/linux/loop.h`](srctree/include/uapi/linux/loop.h). The Rust `uapi`
//! crate does not include this header, so the layouts are written out here with explicit
//! padding fields and checked with `static_assert!`; the numbers are checked against the C
//! header in `loop_helpers.c`. The conversions between the status structures
//! (`loop_info64_from_old`, `loop_info64_to_old` and the compat pair) are `From`/`TryFrom`.
//!
//! No `unsafe` but the declarative `FromBytes`/`AsBytes` impls (the one listed exception).

#![deny(unsafe_code)]

use kernel::{
    impl_flags,
    prelude::*,
    transmute::{
        AsBytes,
        FromBytes, //
    },
};

/// Length of the file name fields.
pub(crate) const LO_NAME_SIZE: usize = 64;
/// Length of the (unused) encryption key fields.
pub(crate) const LO_KEY_SIZE: usize = 32;

impl_flags!(
    /// A set of `LO_FLAGS_*` (`lo_flags`).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub(crate) struct LoFlags(u32);

    /// One `LO_FLAGS_*` flag.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum LoFlag {
        /// The device is read-only (`LO_FLAGS_READ_ONLY`).
        ReadOnly = 1,
        /// The device detaches itself on last close (`LO_FLAGS_AUTOCLEAR`).
        Autoclear = 4,
        /// The kernel scans the device for partitions (`LO_FLAGS_PARTSCAN`).
        Partscan = 8,
        /// I/O goes to the backing file with direct I/O (`LO_FLAGS_DIRECT_IO`).
        DirectIo = 16,
    }
);

impl LoFlags {
    /// Flags `LOOP_SET_STATUS` may set (`LOOP_SET_STATUS_SETTABLE_FLAGS`).
    pub(crate) const STATUS_SETTABLE: Self =
        Self(LoFlag::Autoclear as u32 | LoFlag::Partscan as u32);
    /// Flags `LOOP_SET_STATUS` may clear (`LOOP_SET_STATUS_CLEARABLE_FLAGS`).
    pub(crate) const STATUS_CLEARABLE: Self = Self(LoFlag::Autoclear as u32);
    /// Flags `LOOP_CONFIGURE` accepts (`LOOP_CONFIGURE_SETTABLE_FLAGS`): all of them.
    pub(crate) const CONFIGURE_SETTABLE: Self = Self(Self::all_bits());

    /// The flags of a user value, unknown bits included (for validation).
    pub(crate) const fn from_user(bits: u32) -> Self {
        Self(bits)
    }

    /// Whether every set bit is a flag of `allowed`.
    pub(crate) fn is_within(self, allowed: Self) -> bool {
        self.0 & !allowed.0 == 0
    }

    /// `self` with `flag` set or cleared.
    pub(crate) fn with(self, flag: LoFlag, on: bool) -> Self {
        if on {
            self | flag
        } else {
            self & !flag
        }
    }
}

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
#[derive(Clone, Copy, Zeroable)]
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
#[derive(Clone, Copy, Zeroable)]
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
#[derive(Clone, Copy, Zeroable)]
pub(crate) struct LoopConfig {
    pub(crate) fd: u32,
    pub(crate) block_size: u32,
    pub(crate) info: LoopInfo64,
    pub(crate) reserved: [u64; 8],
}

/// The 32-bit legacy status structure (`struct compat_loop_info` in `loop.c`), 140 bytes.
#[repr(C)]
#[derive(Clone, Copy, Zeroable)]
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

/// The declarative exception to `deny(unsafe_code)`: the structures cross the user boundary
/// as bytes.
#[allow(unsafe_code)]
mod bytes {
    use super::*;

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
}

/// What the legacy status structures (`loop_info`, `compat_loop_info`) carry, widened as
/// `loop_info64` holds it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct LegacyFields {
    number: u32,
    device: u64,
    inode: u64,
    rdevice: u64,
    /// Sign-extended from the legacy `int`, as C assigns it.
    offset: u64,
    flags: u32,
    name: [u8; LO_NAME_SIZE],
}

/// A legacy status structure, converted to and from `loop_info64` by C's assignments
/// (`loop_info64_from_old`, `loop_info64_to_old` and their compat twins).
trait LegacyInfo: Sized {
    /// The fields, widened.
    fn widen(&self) -> LegacyFields;
    /// A structure with `f` narrowed by C's truncating assignments, the rest zero.
    fn narrow(f: &LegacyFields) -> Self;

    /// `loop_info64_from_*`: the size limit and the encryption fields are 0.
    fn to_info64(&self) -> LoopInfo64 {
        let f = self.widen();
        LoopInfo64 {
            lo_number: f.number,
            lo_device: f.device,
            lo_inode: f.inode,
            lo_rdevice: f.rdevice,
            lo_offset: f.offset,
            lo_flags: f.flags,
            lo_file_name: f.name,
            ..pin_init::zeroed()
        }
    }

    /// `loop_info64_to_*`: `EOVERFLOW` if a value does not survive the narrowing.
    fn from_info64(info: &LoopInfo64) -> Result<Self> {
        let f = LegacyFields {
            number: info.lo_number,
            device: info.lo_device,
            inode: info.lo_inode,
            rdevice: info.lo_rdevice,
            offset: info.lo_offset,
            flags: info.lo_flags,
            name: info.lo_file_name,
        };
        let narrow = Self::narrow(&f);
        if narrow.widen() != f {
            return Err(EOVERFLOW);
        }
        Ok(narrow)
    }
}

impl LegacyInfo for LoopInfo {
    fn widen(&self) -> LegacyFields {
        LegacyFields {
            number: self.lo_number as u32,
            device: self.lo_device as u64,
            inode: self.lo_inode as u64,
            rdevice: self.lo_rdevice as u64,
            offset: i64::from(self.lo_offset) as u64,
            flags: self.lo_flags as u32,
            name: self.lo_name,
        }
    }

    fn narrow(f: &LegacyFields) -> Self {
        Self {
            lo_number: f.number as i32,
            lo_device: f.device as usize,
            lo_inode: f.inode as usize,
            lo_rdevice: f.rdevice as usize,
            lo_offset: f.offset as i32,
            lo_flags: f.flags as i32,
            lo_name: f.name,
            ..pin_init::zeroed()
        }
    }
}

impl LegacyInfo for CompatLoopInfo {
    fn widen(&self) -> LegacyFields {
        LegacyFields {
            number: self.lo_number as u32,
            device: u64::from(self.lo_device),
            inode: u64::from(self.lo_inode),
            rdevice: u64::from(self.lo_rdevice),
            offset: i64::from(self.lo_offset) as u64,
            flags: self.lo_flags as u32,
            name: self.lo_name,
        }
    }

    fn narrow(f: &LegacyFields) -> Self {
        Self {
            lo_number: f.number as i32,
            lo_device: f.device as u16,
            lo_inode: f.inode as u32,
            lo_rdevice: f.rdevice as u16,
            lo_offset: f.offset as i32,
            lo_flags: f.flags as i32,
            lo_name: f.name,
            ..pin_init::zeroed()
        }
    }
}

impl From<&LoopInfo> for LoopInfo64 {
    /// `loop_info64_from_old`.
    fn from(info: &LoopInfo) -> Self {
        info.to_info64()
    }
}

impl TryFrom<&LoopInfo64> for LoopInfo {
    type Error = Error;

    /// `loop_info64_to_old`.
    fn try_from(info: &LoopInfo64) -> Result<Self> {
        Self::from_info64(info)
    }
}

impl From<&CompatLoopInfo> for LoopInfo64 {
    /// `loop_info64_from_compat`.
    fn from(info: &CompatLoopInfo) -> Self {
        info.to_info64()
    }
}

impl TryFrom<&LoopInfo64> for CompatLoopInfo {
    type Error = Error;

    /// `loop_info64_to_compat`.
    fn try_from(info: &LoopInfo64) -> Result<Self> {
        Self::from_info64(info)
    }
}

impl LoopConfig {
    /// What `LOOP_SET_FD` means: `LOOP_CONFIGURE` with only the descriptor.
    pub(crate) fn from_fd(fd: u32) -> Self {
        Self {
            fd,
            ..pin_init::zeroed()
        }
    }
}

#[kernel::macros::kunit_tests(rust_loop_uapi)]
mod tests {
    use super::*;

    #[test]
    fn old_info_converts_both_ways() {
        let old = LoopInfo {
            lo_number: 3,
            lo_device: 0x700,
            lo_inode: 42,
            lo_offset: 4096,
            lo_flags: 4,
            ..pin_init::zeroed()
        };
        let info = LoopInfo64::from(&old);
        assert_eq!(info.lo_number, 3);
        assert_eq!(info.lo_offset, 4096);
        assert_eq!(info.lo_sizelimit, 0);
        let back = LoopInfo::try_from(&info).map(|o| (o.lo_device, o.lo_inode, o.lo_offset));
        assert_eq!(back, Ok((0x700, 42, 4096)));
    }

    #[test]
    fn old_info_negative_offset_sign_extends() {
        let old = LoopInfo {
            lo_offset: -512,
            ..pin_init::zeroed()
        };
        assert_eq!(LoopInfo64::from(&old).lo_offset, (-512i64) as u64);
    }

    #[test]
    fn old_info_overflow() {
        let info = LoopInfo64 {
            lo_offset: 1 << 31,
            ..pin_init::zeroed()
        };
        assert!(LoopInfo::try_from(&info).is_err());
    }

    #[test]
    fn compat_info_overflow() {
        let mut info = LoopInfo64 {
            lo_device: 0xffff,
            lo_inode: 0xffff_ffff,
            ..pin_init::zeroed()
        };
        assert!(CompatLoopInfo::try_from(&info).is_ok());
        info.lo_device = 0x1_0000;
        assert_eq!(CompatLoopInfo::try_from(&info).err(), Some(EOVERFLOW));
        info.lo_device = 0;
        info.lo_inode = 1 << 32;
        assert_eq!(CompatLoopInfo::try_from(&info).err(), Some(EOVERFLOW));
        info.lo_inode = 0;
        info.lo_offset = 1 << 31;
        assert_eq!(CompatLoopInfo::try_from(&info).err(), Some(EOVERFLOW));
    }

    #[test]
    fn compat_info_converts() {
        let c = CompatLoopInfo {
            lo_number: 1,
            lo_device: 0x700,
            lo_rdevice: 0x701,
            lo_offset: 512,
            lo_flags: 1,
            ..pin_init::zeroed()
        };
        let info = LoopInfo64::from(&c);
        assert_eq!(
            (info.lo_device, info.lo_rdevice, info.lo_offset),
            (0x700, 0x701, 512)
        );
        assert_eq!(info.lo_flags, 1);
    }

    #[test]
    fn set_fd_is_configure_with_defaults() {
        let c = LoopConfig::from_fd(9);
        assert_eq!((c.fd, c.block_size, c.info.lo_flags), (9, 0, 0));
    }

    #[test]
    fn flag_sets() {
        assert!(LoFlags::from_user(16).is_within(LoFlags::CONFIGURE_SETTABLE));
        assert!(!LoFlags::from_user(2).is_within(LoFlags::CONFIGURE_SETTABLE));
        let f = LoFlags::empty().with(LoFlag::DirectIo, true);
        assert_eq!(u32::from(f), 16);
        assert_eq!(u32::from(f.with(LoFlag::DirectIo, false)), 0);
    }
}
