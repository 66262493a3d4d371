// SPDX-License-Identifier: GPL-2.0

//! The rules of loop, as pure functions of plain values: device size, direct I/O rules and
//! refusal reasons, block size and alignment defaults, status and configure flags, module
//! parameters, request positions, the completion decision, error mapping and the lowest
//! free index. Everything here is tested by KUnit at the bottom of the file; the device
//! code feeds it values and applies the result.
//!
//! C version: the helpers of [`drivers/block/loop.c`](srctree/drivers/block/loop.c), each
//! named on its twin below.

#![deny(unsafe_code)]

use crate::loop_uapi::{
    LoFlag,
    LoFlags,
    LoopInfo64,
    LO_CRYPT_CRYPTOAPI,
    LO_CRYPT_NONE,
    LO_CRYPT_XOR,
    LO_KEY_SIZE, //
};
use kernel::{
    block::{
        SECTOR_SHIFT,
        SECTOR_SIZE, //
    },
    prelude::*,
};

/// The device size in sectors for a backing file of `file_size` bytes (`lo_calculate_size`):
/// what is left after `offset`, capped by a non-zero `sizelimit`.
pub(crate) fn size_in_sectors(file_size: u64, offset: u64, sizelimit: u64) -> u64 {
    let mut size = file_size.saturating_sub(offset);
    if sizelimit > 0 && sizelimit < size {
        size = sizelimit;
    }
    size >> SECTOR_SHIFT
}

/// Why direct I/O was asked for but is not used (shown in `loop/dio_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DioRefusal {
    /// The backing file does not support `O_DIRECT`.
    NoOdirect,
    /// The offset is not a multiple of the backing file's direct I/O alignment.
    Offset { offset: u64, align: u32 },
    /// The logical block size is smaller than the backing file's direct I/O alignment.
    BlockSize { block_size: u32, align: u32 },
}

impl kernel::fmt::Display for DioRefusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::NoOdirect => f.write_str("backing file does not support O_DIRECT"),
            Self::Offset { offset, align } => {
                write!(f, "offset {offset} not aligned to {align}")
            }
            Self::BlockSize { block_size, align } => {
                write!(f, "logical block size {block_size} smaller than {align}")
            }
        }
    }
}

/// What the direct I/O rules need to know of a backing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DioAlignment {
    /// Whether the file supports `O_DIRECT` (`FMODE_CAN_ODIRECT`).
    pub(crate) can_odirect: bool,
    /// The offset and size alignment (`lo_min_dio_size`).
    pub(crate) min_size: u32,
    /// The memory alignment mask (`lo_dio_mem_align`).
    pub(crate) mem_align: u32,
}

impl DioAlignment {
    /// The alignment of a device without a backing file.
    pub(crate) const UNBOUND: Self = Self {
        can_odirect: false,
        min_size: SECTOR_SIZE,
        mem_align: SECTOR_SIZE - 1,
    };

    /// Whether direct I/O can be used with logical block size `lbs` at `offset`
    /// (`lo_can_use_dio`), or why not.
    pub(crate) fn check(self, lbs: u32, offset: u64) -> Result<(), DioRefusal> {
        if !self.can_odirect {
            return Err(DioRefusal::NoOdirect);
        }
        let align = self.min_size;
        if lbs < align {
            return Err(DioRefusal::BlockSize {
                block_size: lbs,
                align,
            });
        }
        if offset & u64::from(align.wrapping_sub(1)) != 0 {
            return Err(DioRefusal::Offset { offset, align });
        }
        Ok(())
    }

    /// The logical block size when none is given (`loop_default_blocksize`): with direct
    /// I/O, the backing file's minimum.
    pub(crate) fn default_block_size(self, dio: bool) -> u32 {
        if dio {
            self.min_size
        } else {
            SECTOR_SIZE
        }
    }

    /// `dio=auto` at attach (not in C loop): the logical block size to give a device whose
    /// block size was asked as `block_size` (0: the default) at `offset`, if direct I/O can
    /// be used with it, or why not. The block size is the one the device gets without
    /// direct I/O, so that the mode never changes the device's geometry (a 4K-sector
    /// backing store under a 512-byte device stays buffered, rather than showing 4096-byte
    /// blocks to a partition table or filesystem made for 512).
    pub(crate) fn auto_dio_block_size(
        self,
        block_size: u32,
        offset: u64,
    ) -> Result<u32, DioRefusal> {
        let lbs = if block_size == 0 {
            self.default_block_size(false)
        } else {
            block_size
        };
        self.check(lbs, offset).map(|()| lbs)
    }

    /// The DMA alignment mask (`loop_set_dma_limit`): with direct I/O the user's pages go
    /// to the backing file as they are, so its alignment applies.
    pub(crate) fn dma_alignment(self, dio: bool) -> u32 {
        if dio {
            self.mem_align.max(SECTOR_SIZE - 1)
        } else {
            SECTOR_SIZE - 1
        }
    }
}

/// Whether a direct I/O refusal logged at `last` (0: never) may be logged again at `now`,
/// in jiffies of `hz` per second: at most every 5 seconds per device.
pub(crate) fn may_log_refusal(now: u64, last: u64, hz: u64) -> bool {
    last == 0 || now.wrapping_sub(last) > 5 * hz
}

/// The discard limits of a backing file that can deallocate up to `max_sectors` sectors in
/// units of `granularity` bytes (`loop_config_discard`): `(max discard, max write-zeroes,
/// granularity)`, no granularity without discard.
pub(crate) fn discard_limits(max_sectors: u32, granularity: u32) -> (u32, u32, u32) {
    let granularity = if max_sectors != 0 { granularity } else { 0 };
    (max_sectors, max_sectors, granularity)
}

/// The checks of `loop_set_status_from_info` on a user's status: no encryption, and an
/// offset and size limit that fit a file position.
pub(crate) fn check_status(info: &LoopInfo64) -> Result {
    if info.lo_encrypt_key_size > LO_KEY_SIZE as u32 {
        return Err(EINVAL);
    }
    match info.lo_encrypt_type {
        LO_CRYPT_NONE => {}
        LO_CRYPT_XOR => {
            pr_warn!("support for the xor transformation has been removed.\n");
            return Err(EINVAL);
        }
        LO_CRYPT_CRYPTOAPI => {
            pr_warn!("support for cryptoloop has been removed.  Use dm-crypt instead.\n");
            return Err(EINVAL);
        }
        _ => return Err(EINVAL),
    }
    if info.lo_offset > i64::MAX as u64 || info.lo_sizelimit > i64::MAX as u64 {
        return Err(EOVERFLOW);
    }
    Ok(())
}

/// Whether a status moves the data under the device: a new offset or size limit.
pub(crate) fn status_moves_data(offset: u64, sizelimit: u64, info: &LoopInfo64) -> bool {
    offset != info.lo_offset || sizelimit != info.lo_sizelimit
}

/// The flags after `LOOP_SET_STATUS` asks for `requested` (`loop_set_status`): only
/// autoclear may be cleared, only autoclear and partscan set. Also says whether partition
/// scanning was just turned on.
pub(crate) fn status_flags(current: LoFlags, requested: LoFlags) -> (LoFlags, bool) {
    let partscan_on = !current.contains(LoFlag::Partscan) && requested.contains(LoFlag::Partscan);
    let flags = (current & !LoFlags::STATUS_CLEARABLE) | (requested & LoFlags::STATUS_SETTABLE);
    (flags, partscan_on)
}

/// What the backing file and the opener allow (`loop_configure`'s read-only rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BackingAccess {
    /// The file was opened for writing.
    pub(crate) file_writable: bool,
    /// The file has `write_iter`.
    pub(crate) file_has_write_iter: bool,
    /// The device was opened for writing.
    pub(crate) device_writable: bool,
    /// The file was opened with `O_DIRECT`.
    pub(crate) o_direct: bool,
}

/// The flags a device is configured with for a user's `requested` flags
/// (`loop_configure`): `EINVAL` for flags `LOOP_CONFIGURE` does not know; read-only unless
/// both the file and the device may be written; direct I/O for an `O_DIRECT` file.
pub(crate) fn configure_flags(requested: u32, access: BackingAccess) -> Result<LoFlags> {
    let requested = LoFlags::from_user(requested);
    if !requested.is_within(LoFlags::CONFIGURE_SETTABLE) {
        return Err(EINVAL);
    }
    let writable = access.file_writable && access.device_writable && access.file_has_write_iter;
    Ok(requested
        .with(
            LoFlag::ReadOnly,
            requested.contains(LoFlag::ReadOnly) || !writable,
        )
        .with(
            LoFlag::DirectIo,
            requested.contains(LoFlag::DirectIo) || access.o_direct,
        ))
}

/// The module parameters after `loop_init`'s validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Params {
    /// Devices pre-created at load, and, if given, the limit for devices created by opening
    /// a node.
    pub(crate) max_loop: u32,
    /// Whether `max_loop` was given at load.
    pub(crate) max_loop_specified: bool,
    /// Minors per device are `1 << part_shift`.
    pub(crate) part_shift: u32,
    /// `max_part` rounded up to a power of two minus one, as sysfs then shows it (`None`:
    /// unchanged).
    pub(crate) max_part_shown: Option<i32>,
    /// Tags per device.
    pub(crate) hw_queue_depth: u32,
}

/// `MINORBITS`.
const MINORBITS: u32 = crate::staging::sys::MINORBITS;

/// Validates the module parameters as `loop_init` does: `part_shift = fls(max_part)` must
/// fit `DISK_MAX_PARTS`, and `max_loop` (compared as unsigned, so negative fails) must fit
/// the minors left (`EINVAL`). The depth is at least 1 and at most `max_depth`.
pub(crate) fn validate_params(
    max_part: i32,
    max_loop: i32,
    max_loop_specified: bool,
    depth: i32,
    disk_max_parts: u32,
    max_depth: u32,
) -> Result<Params> {
    let part_shift = if max_part > 0 {
        u32::BITS - (max_part as u32).leading_zeros()
    } else {
        0
    };
    if part_shift > disk_max_parts.trailing_zeros() {
        pr_err!("max_part {max_part} is too large\n");
        return Err(EINVAL);
    }
    let max_loop = u32::try_from(max_loop).map_err(|_| EINVAL)?;
    if max_loop > 1 << (MINORBITS - part_shift) {
        pr_err!("max_loop {max_loop} is too large\n");
        return Err(EINVAL);
    }
    Ok(Params {
        max_loop,
        max_loop_specified,
        part_shift,
        max_part_shown: (max_part > 0).then(|| (1 << part_shift) - 1),
        hw_queue_depth: u32::try_from(depth.max(1)).unwrap_or(1).min(max_depth),
    })
}

/// Whether device `number` fits the minors (`add_disk`'s check: `EINVAL` in C).
pub(crate) fn index_fits(number: u32, part_shift: u32) -> bool {
    number < 1 << (MINORBITS - part_shift)
}

/// The device `loop_probe` creates for an opened minor, if any: none past a `max_loop`
/// the user gave.
pub(crate) fn probe_index(minor: u32, params: &Params) -> Option<u32> {
    let index = minor >> params.part_shift;
    if params.max_loop_specified && params.max_loop != 0 && index >= params.max_loop {
        return None;
    }
    Some(index)
}

/// The lowest index not in `used` (ascending): the first gap (`idr_alloc` from 0).
/// `ENOSPC` if every index is taken.
pub(crate) fn lowest_free(used: impl IntoIterator<Item = u32>) -> Result<u32> {
    let mut next = 0u32;
    for n in used {
        if n != next {
            break;
        }
        next = next.checked_add(1).ok_or(ENOSPC)?;
    }
    Ok(next)
}

/// The position in the backing file of sector `sector` of a device at `offset`
/// (`pos` in `do_req_filebacked`); `EIO` if it does not fit a file position (`loff_t`).
pub(crate) fn backing_pos(sector: u64, offset: u64) -> Result<i64> {
    sector
        .checked_mul(u64::from(SECTOR_SIZE))
        .and_then(|bytes| bytes.checked_add(offset))
        .and_then(|pos| i64::try_from(pos).ok())
        .ok_or(EIO)
}

/// What `lo_complete_rq` does with a request of `bytes` bytes, in logical blocks of `lbs`
/// bytes, whose I/O returned `ret` (bytes or a negative errno).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Completion {
    /// End the request, successfully.
    Done,
    /// End the request with the errno `ret`.
    Failed(i32),
    /// A short read: complete the first `n` bytes (whole blocks) and reissue the rest.
    RequeueRest(u32),
    /// Not one whole block read (at or past the end of the file): zero the data and fail.
    ZeroFillAndFail,
}

/// The completion decision of `lo_complete_rq`. Only reads can be short; any other
/// operation that did not fail is done.
///
/// Unlike C 7.3, a short read completes whole logical blocks only: blk-mq advances the
/// request's sector by the completed bytes rounded down to sectors, so completing a partial
/// block would reissue the rest at the wrong place (C then fills the buffer with misplaced
/// data). The partial block is read again; less than one block is treated as nothing read.
pub(crate) fn completion(ret: i64, bytes: u32, read: bool, lbs: u32) -> Completion {
    if ret < 0 {
        return Completion::Failed(i32::try_from(ret).unwrap_or(EIO.to_errno()));
    }
    let bytes = i64::from(bytes);
    if ret == bytes || !read {
        Completion::Done
    } else if ret > 0 && ret < bytes {
        let lbs = i64::from(lbs.max(SECTOR_SIZE));
        // `0 <= done <= ret < bytes <= u32::MAX`.
        match u32::try_from(ret - ret % lbs) {
            Ok(done) if done > 0 => Completion::RequeueRest(done),
            _ => Completion::ZeroFillAndFail,
        }
    } else {
        Completion::ZeroFillAndFail
    }
}

/// The result a command reports to `lo_complete_rq` (`loop_handle_cmd`): bytes as they are;
/// `EOPNOTSUPP` as itself (blk-mq then stops asking); any other error as `EIO`.
pub(crate) fn command_result(r: Result<i64>) -> i64 {
    match r {
        Ok(v) => v,
        Err(e) if e == EOPNOTSUPP => i64::from(e.to_errno()),
        Err(_) => i64::from(EIO.to_errno()),
    }
}

/// The result of a flush from `vfs_fsync`'s (`lo_req_flush`): a file without fsync
/// (`EINVAL`) is fine as is; any other error is `EIO`.
pub(crate) fn flush_result(r: Result) -> Result {
    match r {
        Err(e) if e != EINVAL => Err(EIO),
        r => r,
    }
}

/// The result of a discard or write-zeroes from `fallocate`'s (`lo_fallocate`):
/// `EOPNOTSUPP` and `EINVAL` as they are, anything else `EIO`.
pub(crate) fn fallocate_result(r: Result) -> Result {
    match r {
        Ok(()) => Ok(()),
        Err(e) if e == EOPNOTSUPP || e == EINVAL => Err(e),
        Err(_) => Err(EIO),
    }
}

#[kernel::macros::kunit_tests(rust_loop_policy)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn params(max_loop: u32, specified: bool, part_shift: u32) -> Params {
        Params {
            max_loop,
            max_loop_specified: specified,
            part_shift,
            max_part_shown: None,
            hw_queue_depth: 128,
        }
    }

    fn dio(min_size: u32) -> DioAlignment {
        DioAlignment {
            can_odirect: true,
            min_size,
            mem_align: min_size - 1,
        }
    }

    #[test]
    fn size_whole_file() {
        assert_eq!(size_in_sectors(4 * MIB, 0, 0), 8192);
    }

    #[test]
    fn size_rounds_down_to_sectors() {
        assert_eq!(size_in_sectors(4 * MIB + 511, 0, 0), 8192);
        assert_eq!(size_in_sectors(511, 0, 0), 0);
    }

    #[test]
    fn size_after_offset() {
        assert_eq!(size_in_sectors(4 * MIB, MIB, 0), 6144);
    }

    #[test]
    fn size_offset_past_end_is_empty() {
        assert_eq!(size_in_sectors(MIB, 2 * MIB, 0), 0);
        assert_eq!(size_in_sectors(MIB, u64::MAX, 0), 0);
    }

    #[test]
    fn size_capped_by_sizelimit() {
        assert_eq!(size_in_sectors(4 * MIB, MIB, MIB), 2048);
        // A limit beyond the file changes nothing.
        assert_eq!(size_in_sectors(4 * MIB, 0, 8 * MIB), 8192);
    }

    #[test]
    fn size_of_huge_file_does_not_overflow() {
        assert_eq!(size_in_sectors(u64::MAX, 0, 0), u64::MAX >> 9);
        assert_eq!(
            size_in_sectors(u64::MAX, 0, u64::MAX - 1),
            (u64::MAX - 1) >> 9
        );
    }

    #[test]
    fn dio_allowed_when_aligned() {
        assert_eq!(dio(512).check(512, 0), Ok(()));
        assert_eq!(dio(4096).check(4096, 8192), Ok(()));
    }

    #[test]
    fn dio_refused_without_odirect() {
        assert_eq!(
            DioAlignment::UNBOUND.check(4096, 0),
            Err(DioRefusal::NoOdirect)
        );
    }

    #[test]
    fn dio_refused_for_small_block_size() {
        assert_eq!(
            dio(4096).check(512, 0),
            Err(DioRefusal::BlockSize {
                block_size: 512,
                align: 4096
            })
        );
    }

    #[test]
    fn dio_refused_for_unaligned_offset() {
        assert_eq!(
            dio(4096).check(4096, 512),
            Err(DioRefusal::Offset {
                offset: 512,
                align: 4096
            })
        );
    }

    #[test]
    fn dio_block_size_checked_before_offset() {
        assert_eq!(
            dio(4096).check(512, 512),
            Err(DioRefusal::BlockSize {
                block_size: 512,
                align: 4096
            })
        );
    }

    #[test]
    fn default_block_size_follows_dio() {
        assert_eq!(dio(4096).default_block_size(true), 4096);
        assert_eq!(dio(4096).default_block_size(false), 512);
        assert_eq!(DioAlignment::UNBOUND.default_block_size(true), 512);
    }

    #[test]
    fn auto_dio_keeps_the_default_block_size() {
        assert_eq!(dio(512).auto_dio_block_size(0, 0), Ok(512));
        assert_eq!(dio(512).auto_dio_block_size(4096, 1 << 20), Ok(4096));
        // 4K-sector backing store: never 4096-byte blocks unless asked for.
        assert_eq!(
            dio(4096).auto_dio_block_size(0, 0),
            Err(DioRefusal::BlockSize {
                block_size: 512,
                align: 4096
            })
        );
        assert_eq!(dio(4096).auto_dio_block_size(4096, 0), Ok(4096));
    }

    #[test]
    fn auto_dio_refused_by_offset_or_file() {
        assert_eq!(
            dio(512).auto_dio_block_size(0, 100),
            Err(DioRefusal::Offset {
                offset: 100,
                align: 512
            })
        );
        assert_eq!(
            DioAlignment::UNBOUND.auto_dio_block_size(0, 0),
            Err(DioRefusal::NoOdirect)
        );
    }

    #[test]
    fn dma_alignment_follows_dio() {
        assert_eq!(dio(4096).dma_alignment(true), 4095);
        assert_eq!(dio(4096).dma_alignment(false), 511);
        // Never below the sector mask.
        assert_eq!(dio(4).dma_alignment(true), 511);
    }

    #[test]
    fn refusal_log_rate_limit() {
        assert!(may_log_refusal(1000, 0, 100));
        assert!(!may_log_refusal(1400, 1000, 100));
        assert!(may_log_refusal(1501, 1000, 100));
        // Wrapped jiffies.
        assert!(may_log_refusal(10, u64::MAX - 1000, 100));
    }

    #[test]
    fn discard_limits_without_discard_have_no_granularity() {
        assert_eq!(discard_limits(0, 4096), (0, 0, 0));
        assert_eq!(discard_limits(100, 4096), (100, 100, 4096));
    }

    #[test]
    fn status_accepts_plain_info() {
        let info: LoopInfo64 = pin_init::zeroed();
        assert_eq!(check_status(&info), Ok(()));
    }

    #[test]
    fn status_refuses_encryption() {
        let mut info: LoopInfo64 = pin_init::zeroed();
        info.lo_encrypt_type = LO_CRYPT_XOR;
        assert_eq!(check_status(&info), Err(EINVAL));
        info.lo_encrypt_type = LO_CRYPT_CRYPTOAPI;
        assert_eq!(check_status(&info), Err(EINVAL));
        info.lo_encrypt_type = 7;
        assert_eq!(check_status(&info), Err(EINVAL));
        info.lo_encrypt_type = LO_CRYPT_NONE;
        info.lo_encrypt_key_size = LO_KEY_SIZE as u32 + 1;
        assert_eq!(check_status(&info), Err(EINVAL));
    }

    #[test]
    fn status_refuses_offsets_past_loff_t() {
        let mut info: LoopInfo64 = pin_init::zeroed();
        info.lo_offset = i64::MAX as u64;
        assert_eq!(check_status(&info), Ok(()));
        info.lo_offset = i64::MAX as u64 + 1;
        assert_eq!(check_status(&info), Err(EOVERFLOW));
        info.lo_offset = 0;
        info.lo_sizelimit = u64::MAX;
        assert_eq!(check_status(&info), Err(EOVERFLOW));
    }

    #[test]
    fn status_flags_set_and_clear() {
        let ro = LoFlags::from(LoFlag::ReadOnly);
        // Autoclear and partscan can be set; read-only and dio are kept as they are.
        let (flags, partscan) =
            status_flags(ro | LoFlag::DirectIo, LoFlag::Autoclear | LoFlag::Partscan);
        assert_eq!(
            flags,
            LoFlag::ReadOnly | LoFlag::DirectIo | LoFlag::Autoclear | LoFlag::Partscan
        );
        assert!(partscan);
        // Autoclear can be cleared; partscan cannot.
        let (flags, partscan) = status_flags(flags, LoFlags::empty());
        assert_eq!(
            flags,
            LoFlag::ReadOnly | LoFlag::DirectIo | LoFlag::Partscan
        );
        assert!(!partscan);
        // Read-only cannot be set this way.
        let (flags, _) = status_flags(LoFlags::empty(), ro);
        assert_eq!(flags, LoFlags::empty());
    }

    fn access(writable: bool) -> BackingAccess {
        BackingAccess {
            file_writable: writable,
            file_has_write_iter: true,
            device_writable: true,
            o_direct: false,
        }
    }

    #[test]
    fn configure_refuses_unknown_flags() {
        assert_eq!(configure_flags(2, access(true)), Err(EINVAL));
        assert_eq!(configure_flags(32, access(true)), Err(EINVAL));
        assert_eq!(
            configure_flags(31 - 2, access(true)),
            Ok(LoFlag::ReadOnly | LoFlag::Autoclear | LoFlag::Partscan | LoFlag::DirectIo)
        );
    }

    #[test]
    fn configure_forces_read_only() {
        assert_eq!(
            configure_flags(0, access(false)),
            Ok(LoFlags::from(LoFlag::ReadOnly))
        );
        let mut a = access(true);
        a.device_writable = false;
        assert_eq!(configure_flags(0, a), Ok(LoFlags::from(LoFlag::ReadOnly)));
        a = access(true);
        a.file_has_write_iter = false;
        assert_eq!(configure_flags(0, a), Ok(LoFlags::from(LoFlag::ReadOnly)));
        assert_eq!(configure_flags(0, access(true)), Ok(LoFlags::empty()));
    }

    #[test]
    fn configure_odirect_file_means_dio() {
        let mut a = access(true);
        a.o_direct = true;
        assert_eq!(configure_flags(0, a), Ok(LoFlags::from(LoFlag::DirectIo)));
    }

    #[test]
    fn params_default() {
        let p = validate_params(0, 8, false, 128, 256, 10240);
        assert_eq!(p, Ok(params(8, false, 0)));
    }

    #[test]
    fn params_max_part_rounds_up() {
        let p = validate_params(5, 8, true, 128, 256, 10240).unwrap_or(params(0, false, 99));
        assert_eq!(p.part_shift, 3);
        assert_eq!(p.max_part_shown, Some(7));
        assert!(p.max_loop_specified);
    }

    #[test]
    fn params_max_part_too_large() {
        // fls(255) = 8 = log2(DISK_MAX_PARTS) is the largest allowed.
        assert!(validate_params(255, 8, false, 128, 256, 10240).is_ok());
        assert_eq!(validate_params(256, 8, false, 128, 256, 10240), Err(EINVAL));
    }

    #[test]
    fn params_max_loop_bounds() {
        // 1 << 20 minors: with 4 minors per device, 1 << 18 devices fit.
        assert!(validate_params(3, 1 << 18, true, 128, 256, 10240).is_ok());
        assert_eq!(
            validate_params(3, (1 << 18) + 1, true, 128, 256, 10240),
            Err(EINVAL)
        );
        // Negative compares as unsigned in C: refused.
        assert_eq!(validate_params(0, -1, true, 128, 256, 10240), Err(EINVAL));
    }

    #[test]
    fn params_depth_clamped() {
        let depth = |d| {
            validate_params(0, 8, false, d, 256, 10240)
                .map(|p| p.hw_queue_depth)
                .unwrap_or(0)
        };
        assert_eq!(depth(0), 1);
        assert_eq!(depth(-5), 1);
        assert_eq!(depth(64), 64);
        assert_eq!(depth(100_000), 10240);
    }

    #[test]
    fn index_limits() {
        assert!(index_fits((1 << 20) - 1, 0));
        assert!(!index_fits(1 << 20, 0));
        assert!(!index_fits(1 << 16, 4));
    }

    #[test]
    fn probe_respects_max_loop() {
        assert_eq!(probe_index(5, &params(8, true, 0)), Some(5));
        assert_eq!(probe_index(8, &params(8, true, 0)), None);
        // Not given by the user, or 0: no limit.
        assert_eq!(probe_index(100, &params(8, false, 0)), Some(100));
        assert_eq!(probe_index(100, &params(0, true, 0)), Some(100));
        // Partitions map to their device.
        assert_eq!(probe_index(17, &params(8, true, 4)), Some(1));
    }

    #[test]
    fn lowest_free_index() {
        assert_eq!(lowest_free([]), Ok(0));
        assert_eq!(lowest_free([0, 1, 2]), Ok(3));
        assert_eq!(lowest_free([0, 1, 3, 4]), Ok(2));
        assert_eq!(lowest_free([1, 2]), Ok(0));
    }

    #[test]
    fn lowest_free_index_is_the_first_gap() {
        // The slots are sorted: the first gap is the lowest free index, whatever follows.
        assert_eq!(lowest_free([0, u32::MAX]), Ok(1));
        assert_eq!(lowest_free([0, 1, 2, 7, 8]), Ok(3));
    }

    #[test]
    fn backing_positions() {
        assert_eq!(backing_pos(0, 0), Ok(0));
        assert_eq!(backing_pos(8, 512), Ok(4608));
        assert_eq!(backing_pos(u64::MAX, 0), Err(EIO));
        assert_eq!(backing_pos(0, i64::MAX as u64 + 1), Err(EIO));
        assert_eq!(backing_pos(1, i64::MAX as u64), Err(EIO));
    }

    #[test]
    fn completion_of_full_and_failed_io() {
        assert_eq!(completion(4096, 4096, true, 512), Completion::Done);
        assert_eq!(completion(0, 0, false, 512), Completion::Done);
        assert_eq!(completion(-5, 4096, true, 512), Completion::Failed(-5));
        assert_eq!(completion(-95, 4096, false, 512), Completion::Failed(-95));
    }

    #[test]
    fn completion_of_short_read_requeues_rest() {
        assert_eq!(
            completion(1024, 4096, true, 512),
            Completion::RequeueRest(1024)
        );
        // Only reads are short: a short write is done, as in C.
        assert_eq!(completion(1024, 4096, false, 512), Completion::Done);
    }

    #[test]
    fn completion_of_empty_read_zero_fills() {
        assert_eq!(completion(0, 4096, true, 512), Completion::ZeroFillAndFail);
    }

    #[test]
    fn completion_of_short_read_keeps_whole_blocks() {
        // 1000 bytes read: one sector completes, the partial one is read again.
        assert_eq!(
            completion(1000, 4096, true, 512),
            Completion::RequeueRest(512)
        );
        assert_eq!(
            completion(6000, 8192, true, 4096),
            Completion::RequeueRest(4096)
        );
        // Less than one block: as nothing read.
        assert_eq!(
            completion(100, 4096, true, 512),
            Completion::ZeroFillAndFail
        );
        assert_eq!(
            completion(1024, 8192, true, 4096),
            Completion::ZeroFillAndFail
        );
    }

    #[test]
    fn status_moving_data() {
        let mut info: LoopInfo64 = pin_init::zeroed();
        assert!(!status_moves_data(0, 0, &info));
        info.lo_flags = 4;
        assert!(!status_moves_data(0, 0, &info));
        info.lo_offset = 512;
        assert!(status_moves_data(0, 0, &info));
        assert!(!status_moves_data(512, 0, &info));
        assert!(status_moves_data(512, 1 << 20, &info));
    }

    #[test]
    fn command_results() {
        assert_eq!(command_result(Ok(4096)), 4096);
        assert_eq!(command_result(Err(EOPNOTSUPP)), -95);
        assert_eq!(command_result(Err(ENOSPC)), -5);
    }

    #[test]
    fn flush_and_fallocate_results() {
        assert_eq!(flush_result(Ok(())), Ok(()));
        assert_eq!(flush_result(Err(EINVAL)), Err(EINVAL));
        assert_eq!(flush_result(Err(ENOSPC)), Err(EIO));
        assert_eq!(fallocate_result(Err(EOPNOTSUPP)), Err(EOPNOTSUPP));
        assert_eq!(fallocate_result(Err(EINVAL)), Err(EINVAL));
        assert_eq!(fallocate_result(Err(ENOSPC)), Err(EIO));
    }
}
