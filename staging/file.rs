// SPDX-License-Identifier: GPL-2.0

//! The backing file of a loop device: the VFS calls loop makes on a `struct file`.
//!
//! Stands in for what `kernel::fs::File` does not offer in 7.3: mode and inode queries,
//! size, `read_iter`/`write_iter` with a kiocb, `fsync`, `fallocate`, direct I/O alignment,
//! the page-cache allocation mask and the disk behind a block-device file.
//!
//! C header: [`include/linux/fs.h`](srctree/include/linux/fs.h).

use super::{
    gen_disk::DiskRef,
    operations::InIoctl,
    request::IovIter,
    sys, //
};
use kernel::{
    bindings,
    error::to_result,
    fs::{
        File,
        LocalFile, //
    },
    prelude::*,
    sync::aref::ARef,
};

/// `FMODE_READ` (checked against the C value in `loop_helpers.c`).
const FMODE_READ: u32 = 1 << 0;
/// `FMODE_WRITE` (checked against the C value in `loop_helpers.c`).
const FMODE_WRITE: u32 = 1 << 1;
/// `FMODE_CAN_ODIRECT`: the file supports `O_DIRECT` (checked in `loop_helpers.c`).
const FMODE_CAN_ODIRECT: u32 = 1 << 22;
/// `IOCB_DIRECT`.
const IOCB_DIRECT: i32 = bindings::IOCB_DIRECT as i32;
/// `IOCB_DSYNC` (`RWF_DSYNC`; checked in `loop_helpers.c`).
const IOCB_DSYNC: i32 = 0x2;
/// `IOCB_SYNC` (`RWF_SYNC`; checked in `loop_helpers.c`).
const IOCB_SYNC: i32 = 0x4;
/// `FALLOC_FL_KEEP_SIZE` (`include/uapi/linux/falloc.h`; checked in `loop_helpers.c`).
const FALLOC_FL_KEEP_SIZE: i32 = 0x01;
/// `FALLOC_FL_PUNCH_HOLE` (checked in `loop_helpers.c`).
const FALLOC_FL_PUNCH_HOLE: i32 = 0x02;
/// `FALLOC_FL_ZERO_RANGE` (checked in `loop_helpers.c`).
const FALLOC_FL_ZERO_RANGE: i32 = 0x10;
/// `__GFP_IO | __GFP_FS`: what a loop backing file's page cache must not recurse into.
const GFP_IO_FS: u32 = (1 << bindings::___GFP_IO_BIT) | (1 << bindings::___GFP_FS_BIT);

/// One safe wrapper per C trampoline of `loop_helpers.c` (static inlines of `<linux/fs.h>`).
mod helpers {
    use kernel::bindings;

    #[allow(improper_ctypes)]
    extern "C" {
        fn rust_loop_kiocb_start_write(iocb: *mut bindings::kiocb);
        fn rust_loop_kiocb_end_write(iocb: *mut bindings::kiocb);
        fn rust_loop_file_bsize(file: *mut bindings::file, bsize: *mut u32) -> i32;
    }

    /// `kiocb_start_write`: takes the write freeze protection of the file's superblock.
    ///
    /// # Safety
    ///
    /// `iocb` must be a valid kiocb whose `ki_filp` is an open regular or block file, and
    /// [`kiocb_end_write`] must be called on it once the write has ended.
    pub(super) unsafe fn kiocb_start_write(iocb: *mut bindings::kiocb) {
        // SAFETY: Guaranteed by the caller.
        unsafe { rust_loop_kiocb_start_write(iocb) }
    }

    /// `kiocb_end_write`: releases what [`kiocb_start_write`] took, from any context.
    ///
    /// # Safety
    ///
    /// `iocb` must be a kiocb on which [`kiocb_start_write`] was called and not ended yet,
    /// whose file is still open.
    pub(super) unsafe fn kiocb_end_write(iocb: *mut bindings::kiocb) {
        // SAFETY: Guaranteed by the caller.
        unsafe { rust_loop_kiocb_end_write(iocb) }
    }

    /// The block size of the filesystem holding `file` (`vfs_statfs`'s `f_bsize`).
    pub(super) fn file_bsize(file: &kernel::fs::File) -> Option<u32> {
        let mut bsize = 0u32;
        // SAFETY: `file` is a valid open file; the helper writes `bsize` on success only.
        let r = unsafe { rust_loop_file_bsize(file.as_ptr(), &mut bsize) };
        (r == 0).then_some(bsize)
    }
}

/// The durability flags of a file's writes (`IOCB_DSYNC`, `IOCB_SYNC` from
/// `O_DSYNC`/`O_SYNC`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SyncFlags(i32);

/// What `fallocate` does with a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FallocMode {
    /// Deallocates the range (`FALLOC_FL_PUNCH_HOLE`): reads return zeroes.
    PunchHole,
    /// Zeroes the range and keeps it allocated (`FALLOC_FL_ZERO_RANGE`).
    ZeroRange,
}

impl FallocMode {
    fn raw(self) -> i32 {
        FALLOC_FL_KEEP_SIZE
            | match self {
                Self::PunchHole => FALLOC_FL_PUNCH_HOLE,
                Self::ZeroRange => FALLOC_FL_ZERO_RANGE,
            }
    }
}

/// A counted reference to a backing file.
///
/// # Invariants
///
/// The file is open (the `ARef` holds a reference), so its operations, mapping, inode and
/// superblock are valid for as long as this value lives.
#[derive(Clone)]
pub(crate) struct BackingFile(ARef<File>);

/// The identity of a file as `LOOP_GET_STATUS` reports it.
pub(crate) struct FileIds {
    /// The device of the filesystem holding the file.
    pub(crate) dev: u32,
    /// The inode number.
    pub(crate) ino: u64,
    /// The device a device-special file stands for.
    pub(crate) rdev: u32,
}

impl BackingFile {
    /// Takes a reference to the file of descriptor `fd` of the current task (`fget`), in one
    /// of its ioctls. Loop never uses the file position.
    pub(crate) fn fget(fd: u32, _ctx: &InIoctl) -> Result<Self> {
        let file = LocalFile::fget(fd)?;
        // INVARIANT: `fget` took a reference on an open file.
        // SAFETY: `_ctx` proves we are in an ioctl, not a read/write/seek system call of this
        // task, so no `fdget_pos` is active on the file; loop never uses its position.
        Ok(Self(unsafe { LocalFile::assume_no_fdget_pos(file) }))
    }

    pub(super) fn raw(&self) -> *mut bindings::file {
        self.0.as_ptr()
    }

    pub(super) fn ops(&self) -> &bindings::file_operations {
        // SAFETY: By the type invariant the file is open; an open file always has valid,
        // static file operations.
        unsafe { &*(*self.raw()).f_op }
    }

    /// The inode behind the file's page cache (`f_mapping->host`).
    fn host(&self) -> *mut bindings::inode {
        // SAFETY: By the type invariant the file is open: its mapping and host are valid.
        unsafe { (*(*self.raw()).f_mapping).host }
    }

    /// `f_mode`.
    fn mode(&self) -> u32 {
        // SAFETY: By the type invariant the file is valid; `f_mode` is set at open.
        unsafe { (*self.raw()).f_mode }
    }

    /// Whether the file was opened for reading (`FMODE_READ`).
    pub(crate) fn readable(&self) -> bool {
        self.mode() & FMODE_READ != 0
    }

    /// Whether the file was opened for writing (`FMODE_WRITE`).
    pub(crate) fn writable(&self) -> bool {
        self.mode() & FMODE_WRITE != 0
    }

    /// Whether the file was opened with `O_DIRECT`.
    pub(crate) fn o_direct(&self) -> bool {
        self.0.flags() & bindings::O_DIRECT != 0
    }

    /// Whether the file has `read_iter`, and `write_iter` too when writable
    /// (`loop_check_backing_file`).
    pub(crate) fn check(&self) -> Result {
        if self.ops().read_iter.is_none() || (self.writable() && self.ops().write_iter.is_none()) {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// Whether the file supports direct I/O (`FMODE_CAN_ODIRECT`).
    pub(crate) fn can_odirect(&self) -> bool {
        self.mode() & FMODE_CAN_ODIRECT != 0
    }

    /// The durability flags the file was opened with.
    pub(crate) fn sync_flags(&self) -> SyncFlags {
        // SAFETY: By the type invariant the file is valid. fcntl(F_SETFL) may rewrite
        // `f_iocb_flags` concurrently (never these bits), so read it once, as C's READ_ONCE.
        let flags = unsafe { core::ptr::read_volatile(&raw const (*self.raw()).f_iocb_flags) };
        SyncFlags(flags as i32 & (IOCB_DSYNC | IOCB_SYNC))
    }

    /// The direct I/O alignment: `(minimum offset and size, memory alignment mask)`
    /// (`loop_update_dio_alignment`).
    pub(crate) fn dio_alignment(&self) -> (u32, u32) {
        let mut st: bindings::kstat = pin_init::zeroed();
        // SAFETY: By the type invariant `f_path` is valid while the file is open.
        let r = unsafe {
            bindings::vfs_getattr(
                &raw const (*self.raw()).__bindgen_anon_1.f_path,
                &mut st,
                bindings::STATX_DIOALIGN,
                0,
            )
        };
        if r == 0 && st.result_mask & bindings::STATX_DIOALIGN != 0 && st.dio_mem_align != 0 {
            return (
                st.dio_offset_align,
                (st.dio_mem_align - 1).min(sys::PAGE_SIZE - 1),
            );
        }
        // SAFETY: By the type invariant the host and its superblock are valid.
        let sb_bdev = unsafe { (*(*self.host()).i_sb).s_bdev };
        if !sb_bdev.is_null() {
            // SAFETY: A mounted filesystem's bdev and queue live as long as the file. The
            // limits may be replaced concurrently under `limits_lock`: each field is read
            // once, without a reference, as C's `bdev_logical_block_size` does.
            return unsafe {
                let lim = &raw const (*(*sb_bdev).bd_queue).limits;
                (
                    core::ptr::read_volatile(&raw const (*lim).logical_block_size),
                    core::ptr::read_volatile(&raw const (*lim).dma_alignment),
                )
            };
        }
        (bindings::SECTOR_SIZE, bindings::SECTOR_SIZE - 1)
    }

    /// Whether the file can be written at all (`f_op->write_iter`).
    pub(crate) fn has_write_iter(&self) -> bool {
        self.ops().write_iter.is_some()
    }

    /// Whether the file has `fsync`, i.e. a volatile write cache.
    pub(crate) fn has_fsync(&self) -> bool {
        self.ops().fsync.is_some()
    }

    fn host_mode(&self) -> u32 {
        // SAFETY: By the type invariant the host is valid; `i_mode`'s type bits never change.
        u32::from(unsafe { (*self.host()).i_mode })
    }

    /// Whether the file is a block device (`S_ISBLK`).
    pub(crate) fn is_blk(&self) -> bool {
        self.host_mode() & bindings::S_IFMT == bindings::S_IFBLK
    }

    /// Whether the file is a regular file or a block device, the only backing loop accepts.
    pub(crate) fn is_reg_or_blk(&self) -> bool {
        // C checks the inode of `f_mapping->host`, like this.
        self.host_mode() & bindings::S_IFMT == bindings::S_IFREG || self.is_blk()
    }

    /// The device number a block-device file stands for (`i_rdev`).
    pub(crate) fn rdev(&self) -> Option<u32> {
        if !self.is_blk() {
            return None;
        }
        // SAFETY: By the type invariant the host is valid; `i_rdev` is stable.
        Some(unsafe { (*self.host()).i_rdev })
    }

    /// The block device of a block-device file (`I_BDEV`), or the one holding a regular
    /// file's filesystem, if any; valid while the file is open.
    fn backing_bdev(&self) -> *mut bindings::block_device {
        // SAFETY: By the type invariant the host is valid; `I_BDEV` of a block inode gives
        // its device, which lives as long as the open file; `i_sb` lives as long as the
        // inode.
        unsafe {
            if self.is_blk() {
                bindings::I_BDEV(self.host())
            } else {
                (*(*self.host()).i_sb).s_bdev
            }
        }
    }

    /// The disk of a block-device file (the whole disk of a partition), borrowed as long as
    /// the file.
    pub(crate) fn disk(&self) -> Option<&DiskRef> {
        if !self.is_blk() {
            return None;
        }
        // SAFETY: An open block-device file keeps its bdev and the bdev's disk alive for as
        // long as `self` is borrowed (type invariant).
        Some(unsafe { DiskRef::from_raw((*self.backing_bdev()).bd_disk) })
    }

    /// Whether the backing block device is rotational (`bdev_rot`).
    pub(crate) fn rotational(&self) -> bool {
        let bdev = self.backing_bdev();
        if bdev.is_null() {
            return false;
        }
        // SAFETY: `bdev` is valid (see `backing_bdev`) and its queue lives as long; the
        // field is read once, without a reference (see `dio_alignment`).
        let features =
            unsafe { core::ptr::read_volatile(&raw const (*(*bdev).bd_queue).limits.features) };
        features & bindings::BLK_FEAT_ROTATIONAL != 0
    }

    /// The discard limits loop derives from the file: `(max sectors, granularity)`
    /// (`loop_get_discard_config`).
    pub(crate) fn discard_config(&self) -> (u32, u32) {
        if self.is_blk() {
            // SAFETY: A block-device file's bdev and queue live as long as the file; the
            // fields are read once, without a reference (see `dio_alignment`).
            return unsafe {
                let lim = &raw const (*(*bindings::I_BDEV(self.host())).bd_queue).limits;
                (
                    core::ptr::read_volatile(&raw const (*lim).max_write_zeroes_sectors),
                    core::ptr::read_volatile(&raw const (*lim).discard_granularity),
                )
            };
        }
        if self.ops().fallocate.is_some() {
            if let Some(bsize) = helpers::file_bsize(&self.0) {
                return (u32::MAX >> bindings::SECTOR_SHIFT, bsize);
            }
        }
        (0, 0)
    }

    /// The size in bytes: the device size for a block device, else the file size as
    /// `getattr` reports it; 0 if that fails (as C `lo_calculate_size`).
    pub(crate) fn size(&self) -> u64 {
        if self.is_blk() {
            // SAFETY: By the type invariant the host is valid; C reads `i_size` the same way
            // (`i_size_read`).
            let size = unsafe { core::ptr::read_volatile(&raw const (*self.host()).i_size) };
            return size.max(0) as u64;
        }
        let mut stat: bindings::kstat = pin_init::zeroed();
        // SAFETY: By the type invariant `f_path` is valid while the file is open.
        let r = unsafe {
            bindings::vfs_getattr_nosec(
                &raw const (*self.raw()).__bindgen_anon_1.f_path,
                &mut stat,
                bindings::STATX_SIZE,
                0,
            )
        };
        if r != 0 {
            return 0;
        }
        stat.size.max(0) as u64
    }

    /// The device, inode and rdev of the file (`vfs_getattr(STATX_INO)`).
    pub(crate) fn ids(&self) -> Result<FileIds> {
        let mut stat: bindings::kstat = pin_init::zeroed();
        // SAFETY: By the type invariant `f_path` is valid while the file is open.
        to_result(unsafe {
            bindings::vfs_getattr(
                &raw const (*self.raw()).__bindgen_anon_1.f_path,
                &mut stat,
                bindings::STATX_INO,
                bindings::AT_STATX_SYNC_AS_STAT,
            )
        })?;
        Ok(FileIds {
            dev: stat.dev,
            ino: stat.ino,
            rdev: stat.rdev,
        })
    }

    /// Writes the file's path into `buf` (`file_path`) and returns its length.
    pub(crate) fn path_into(&self, buf: &mut [u8]) -> Result<usize> {
        let len = i32::try_from(buf.len()).map_err(|_| EINVAL)?;
        // SAFETY: `buf` is valid for `len` bytes; `file_path` writes the path at its end and
        // returns a pointer into it.
        let p = unsafe { bindings::file_path(self.raw(), buf.as_mut_ptr(), len) };
        let p = kernel::error::from_err_ptr(p)?;
        let start = (p as usize).wrapping_sub(buf.as_ptr() as usize);
        let tail = buf.get(start..).ok_or(EINVAL)?;
        let n = tail.iter().position(|&c| c == 0).ok_or(EINVAL)?;
        buf.copy_within(start..start + n, 0);
        Ok(n)
    }

    /// The page-cache allocation mask (`mapping_gfp_mask`).
    pub(crate) fn gfp_mask(&self) -> u32 {
        // SAFETY: By the type invariant the mapping is valid.
        unsafe { (*(*self.raw()).f_mapping).gfp_mask }
    }

    /// Sets the page-cache allocation mask (`mapping_set_gfp_mask`).
    pub(crate) fn set_gfp_mask(&self, mask: u32) {
        // SAFETY: As in `gfp_mask`; C writes it the same way, without a lock.
        unsafe { (*(*self.raw()).f_mapping).gfp_mask = mask };
    }

    /// Keeps the page cache from recursing into I/O or the filesystem (`mapping_set_gfp_mask`
    /// without `__GFP_IO | __GFP_FS`, as `loop_assign_backing_file`); returns the old mask.
    pub(crate) fn restrict_gfp_mask(&self) -> u32 {
        let old = self.gfp_mask();
        self.set_gfp_mask(old & !GFP_IO_FS);
        old
    }

    /// Writes back and waits for the file's dirty data (`vfs_fsync(file, 0)`).
    pub(crate) fn fsync(&self) -> Result {
        // SAFETY: By the type invariant the file is open.
        to_result(unsafe { bindings::vfs_fsync(self.raw(), 0) })
    }

    /// Calls the file's `fallocate` directly, as C loop does (no permission or freeze checks:
    /// the device owns the file), keeping the file size.
    pub(crate) fn fallocate(&self, mode: FallocMode, pos: i64, len: u32) -> Result {
        let f = self.ops().fallocate.ok_or(EOPNOTSUPP)?;
        // SAFETY: By the type invariant the file is open and `f` is its own operation.
        let r = unsafe { f(self.raw(), mode.raw(), pos, i64::from(len)) };
        to_result(i32::try_from(r).unwrap_or(-(bindings::EIO as i32)))
    }

    /// A kiocb for this file at `pos` with `flags` (`init_sync_kiocb` fields loop sets).
    pub(super) fn kiocb(&self, pos: i64, ioprio: u16, flags: i32) -> bindings::kiocb {
        bindings::kiocb {
            ki_filp: self.raw(),
            ki_pos: pos,
            ki_ioprio: ioprio,
            ki_flags: flags,
            ..pin_init::zeroed()
        }
    }

    /// The kiocb flags of a direct I/O that keeps `sync`'s durability.
    pub(super) fn direct_flags(sync: SyncFlags) -> i32 {
        IOCB_DIRECT | sync.0
    }

    /// Reads or writes synchronously through the page cache at `pos`: `read_iter` or
    /// `write_iter` with a synchronous kiocb, as C `lo_rw_aio` without `use_aio`, keeping
    /// `sync` (the file's [`Self::sync_flags`], snapshotted by the caller). Returns the byte
    /// count or the error.
    pub(crate) fn rw_sync(
        &self,
        write: bool,
        sync: SyncFlags,
        pos: i64,
        ioprio: u16,
        iter: &mut IovIter<'_>,
    ) -> Result<usize> {
        // Unlike C loop (`ki_flags = 0`), an O_DSYNC/O_SYNC backing file keeps its durability.
        let mut iocb = self.kiocb(pos, ioprio, sync.0);
        let ret = if write {
            let f = self.ops().write_iter.ok_or(EINVAL)?;
            // SAFETY: `iocb` is a valid synchronous kiocb for this open file and `iter`
            // covers the request's pages; the freeze protection taken here is dropped right
            // after the synchronous write.
            unsafe {
                helpers::kiocb_start_write(&mut iocb);
                let ret = f(&mut iocb, iter.as_raw());
                helpers::kiocb_end_write(&mut iocb);
                ret
            }
        } else {
            let f = self.ops().read_iter.ok_or(EINVAL)?;
            // SAFETY: `iocb` is a valid synchronous kiocb; `iter` covers the request's pages.
            unsafe { f(&mut iocb, iter.as_raw()) }
        };
        if ret < 0 {
            return Err(Error::from_errno(ret as i32));
        }
        Ok(ret as usize)
    }

    /// Starts an asynchronous `read_iter`/`write_iter` on a filled-in kiocb: `-EIOCBQUEUED`
    /// if `ki_complete` will be called, else the result; `EINVAL` without starting anything
    /// if the file lacks the operation. A started write takes the freeze protection first,
    /// which the caller releases with [`Self::end_write`] once the write has ended.
    ///
    /// # Safety
    ///
    /// `iocb` must be a kiocb for this file (from [`Self::kiocb`]) that stays valid, with
    /// `iter`'s pages and vector, and the file must stay open, until `ki_complete` is
    /// called (or until this returns, if it does not return `-EIOCBQUEUED`) and, for a
    /// write, until [`Self::end_write`].
    pub(super) unsafe fn submit(
        &self,
        iocb: *mut bindings::kiocb,
        write: bool,
        iter: &mut IovIter<'_>,
    ) -> Result<isize> {
        let op = if write {
            self.ops().write_iter
        } else {
            self.ops().read_iter
        };
        let f = op.ok_or(EINVAL)?;
        if write {
            // SAFETY: `iocb` is a valid kiocb of this open file (caller); the caller ends the
            // write with `end_write`.
            unsafe { helpers::kiocb_start_write(iocb) };
        }
        // SAFETY: Guaranteed by the caller; `f` is the file's own operation.
        Ok(unsafe { f(iocb, iter.as_raw()) })
    }

    /// Ends the freeze protection of a write started with [`Self::submit`].
    ///
    /// # Safety
    ///
    /// `iocb` must be a write kiocb of this file given to [`Self::submit`], that has ended
    /// and was not ended with this before.
    pub(super) unsafe fn end_write(&self, iocb: *mut bindings::kiocb) {
        // SAFETY: Guaranteed by the caller; the file is open (type invariant).
        unsafe { helpers::kiocb_end_write(iocb) };
    }
}
