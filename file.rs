// SPDX-License-Identifier: GPL-2.0

//! The backing file of a loop device: the VFS calls loop makes on it.
//!
//! A safe wrapper over `struct file` for what `kernel::fs::File` does not offer: mode and
//! inode queries, size, `read_iter`/`write_iter` with a kiocb, `fsync`, `fallocate`, direct
//! I/O alignment and the page-cache allocation mask.

use crate::{
    blk::IovIter,
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

/// A counted reference to a backing file.
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
    /// Takes a reference to the file of descriptor `fd` of the current task (`fget`).
    pub(crate) fn fget(fd: u32) -> Result<Self> {
        let file = LocalFile::fget(fd)?;
        // SAFETY: We are in an ioctl, not a read/write/seek system call of this task on this
        // file, so no `fdget_pos` is active on it; loop never uses the file position.
        Ok(Self(unsafe { LocalFile::assume_no_fdget_pos(file) }))
    }

    fn raw(&self) -> *mut bindings::file {
        self.0.as_ptr()
    }

    fn ops(&self) -> &bindings::file_operations {
        // SAFETY: An open file always has valid, static file operations.
        unsafe { &*(*self.raw()).f_op }
    }

    /// The inode behind the file's page cache (`f_mapping->host`).
    fn host(&self) -> *mut bindings::inode {
        // SAFETY: An open file has a mapping whose host lives as long as the file.
        unsafe { (*(*self.raw()).f_mapping).host }
    }

    /// `f_mode`.
    fn mode(&self) -> u32 {
        // SAFETY: `f_mode` is set at open and stable afterwards.
        unsafe { (*self.raw()).f_mode }
    }

    /// Whether the file was opened for writing (`FMODE_WRITE`).
    pub(crate) fn writable(&self) -> bool {
        self.mode() & sys::FMODE_WRITE != 0
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
        self.mode() & sys::FMODE_CAN_ODIRECT != 0
    }

    /// The durability flags the file was opened with (`IOCB_DSYNC`, `IOCB_SYNC` from
    /// `O_DSYNC`/`O_SYNC`).
    pub(crate) fn sync_flags(&self) -> i32 {
        // SAFETY: The file is valid. fcntl(F_SETFL) may rewrite `f_iocb_flags` concurrently
        // (never these bits), so read it once, as C's READ_ONCE.
        let flags = unsafe { core::ptr::read_volatile(&raw const (*self.raw()).f_iocb_flags) };
        let flags = flags as i32;
        flags & (sys::IOCB_DSYNC | sys::IOCB_SYNC)
    }

    /// The direct I/O alignment: `(minimum offset and size, memory alignment mask)`
    /// (`loop_update_dio_alignment`).
    pub(crate) fn dio_alignment(&self) -> (u32, u32) {
        let mut st: bindings::kstat = pin_init::zeroed();
        // SAFETY: `f_path` is valid while the file is open.
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
        // SAFETY: `host()` and its superblock live as long as the file.
        let sb_bdev = unsafe { (*(*self.host()).i_sb).s_bdev };
        if !sb_bdev.is_null() {
            // SAFETY: A mounted filesystem's bdev and queue live as long as the file.
            return unsafe {
                let lim = &(*(*sb_bdev).bd_queue).limits;
                (lim.logical_block_size, lim.dma_alignment)
            };
        }
        (sys::SECTOR_SIZE, sys::SECTOR_SIZE - 1)
    }

    /// The raw file, for a kiocb.
    pub(crate) fn as_raw(&self) -> *mut bindings::file {
        self.raw()
    }

    /// Starts an asynchronous `read_iter`/`write_iter` on a filled-in kiocb (`lo_rw_aio`);
    /// returns `-EIOCBQUEUED` if `ki_complete` will be called, else the result.
    ///
    /// # Safety
    ///
    /// `iocb` must be a kiocb for this file that stays valid, with its bio vector, until
    /// `ki_complete` is called (or until this returns, if it does not return
    /// `-EIOCBQUEUED`); for a write, `kiocb_start_write` must have been called on it.
    pub(crate) unsafe fn submit(
        &self,
        iocb: *mut bindings::kiocb,
        write: bool,
        iter: &mut IovIter<'_>,
    ) -> isize {
        let op = if write {
            self.ops().write_iter
        } else {
            self.ops().read_iter
        };
        match op {
            // SAFETY: Guaranteed by the caller; `f` is the file's own operation.
            Some(f) => unsafe { f(iocb, iter.as_raw()) },
            None => -(bindings::EINVAL as isize),
        }
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
        // SAFETY: `host()` is valid; `i_mode`'s type bits never change.
        u32::from(unsafe { (*self.host()).i_mode })
    }

    /// Whether the file is a block device.
    pub(crate) fn is_blk(&self) -> bool {
        sys::s_isblk(self.host_mode())
    }

    /// Whether the file is a regular file or a block device, the only backing loop accepts.
    pub(crate) fn is_reg_or_blk(&self) -> bool {
        // C checks the inode of `f_mapping->host`, like this.
        sys::s_isreg(self.host_mode()) || self.is_blk()
    }

    /// The device number if the file is a loop block device (`is_loop_device`).
    pub(crate) fn loop_device(&self) -> Option<u32> {
        if !self.is_blk() {
            return None;
        }
        // SAFETY: `host()` is valid; `i_rdev` is stable.
        let rdev = unsafe { (*self.host()).i_rdev };
        (sys::major(rdev) == sys::LOOP_MAJOR).then_some(rdev)
    }

    /// The block device of a block-device file, or the one holding a regular file's
    /// filesystem, if any.
    pub(crate) fn backing_bdev(&self) -> *mut bindings::block_device {
        // SAFETY: `host()` is valid; `I_BDEV` of a block inode gives its device, which lives
        // as long as the open file; `i_sb` lives as long as the inode.
        unsafe {
            if self.is_blk() {
                bindings::I_BDEV(self.host())
            } else {
                (*(*self.host()).i_sb).s_bdev
            }
        }
    }

    /// Whether the backing block device is rotational (`bdev_rot`).
    pub(crate) fn rotational(&self) -> bool {
        let bdev = self.backing_bdev();
        if bdev.is_null() {
            return false;
        }
        // SAFETY: `bdev` is valid (see `backing_bdev`) and its queue lives as long.
        unsafe {
            let q = (*bdev).bd_queue;
            (*q).limits.features & bindings::BLK_FEAT_ROTATIONAL != 0
        }
    }

    /// The discard limits loop derives from the file: `(max sectors, granularity)`
    /// (`loop_get_discard_config`).
    pub(crate) fn discard_config(&self) -> (u32, u32) {
        if self.is_blk() {
            // SAFETY: A block-device file's bdev and queue live as long as the file.
            return unsafe {
                let lim = &(*(*bindings::I_BDEV(self.host())).bd_queue).limits;
                (lim.max_write_zeroes_sectors, lim.discard_granularity)
            };
        }
        if self.ops().fallocate.is_some() {
            let mut bsize = 0u32;
            // SAFETY: The file is valid; the helper fills `bsize` on success.
            if unsafe { sys::rust_loop_file_bsize(self.raw(), &mut bsize) } == 0 {
                return (u32::MAX >> 9, bsize);
            }
        }
        (0, 0)
    }

    /// The size in bytes: the device size for a block device, else the file size as
    /// `getattr` reports it; 0 if that fails (as C `lo_calculate_size`).
    pub(crate) fn size(&self) -> u64 {
        if self.is_blk() {
            // SAFETY: `host()` is valid; C reads `i_size` the same way (`i_size_read`).
            let size = unsafe { core::ptr::read_volatile(&raw const (*self.host()).i_size) };
            return size.max(0) as u64;
        }
        let mut stat: bindings::kstat = pin_init::zeroed();
        // SAFETY: `f_path` is valid while the file is open.
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
        // SAFETY: `f_path` is valid while the file is open.
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
        // SAFETY: The mapping lives as long as the file.
        unsafe { (*(*self.raw()).f_mapping).gfp_mask }
    }

    /// Sets the page-cache allocation mask (`mapping_set_gfp_mask`).
    pub(crate) fn set_gfp_mask(&self, mask: u32) {
        // SAFETY: As in `gfp_mask`; C writes it the same way, without a lock.
        unsafe { (*(*self.raw()).f_mapping).gfp_mask = mask };
    }

    /// Writes back and waits for the file's dirty data (`vfs_fsync(file, 0)`).
    pub(crate) fn fsync(&self) -> Result {
        // SAFETY: The file is valid.
        to_result(unsafe { bindings::vfs_fsync(self.raw(), 0) })
    }

    /// Calls the file's `fallocate` directly, as C loop does (no permission or freeze checks:
    /// the device owns the file).
    pub(crate) fn fallocate(&self, mode: i32, pos: i64, len: u32) -> Result {
        let f = self.ops().fallocate.ok_or(EOPNOTSUPP)?;
        let len = i64::from(len);
        // SAFETY: The file is valid and `f` is its own operation.
        let r = unsafe { f(self.raw(), mode, pos, len) };
        to_result(i32::try_from(r).unwrap_or(-(bindings::EIO as i32)))
    }

    /// Reads or writes synchronously through the page cache at `pos`: `read_iter` or
    /// `write_iter` with a synchronous kiocb, as C `lo_rw_aio` without `use_aio`, with
    /// `sync_flags` (the file's [`Self::sync_flags`], snapshotted by the caller). Returns the
    /// byte count or the error.
    pub(crate) fn rw_sync(
        &self,
        write: bool,
        sync_flags: i32,
        pos: i64,
        ioprio: u16,
        iter: &mut IovIter<'_>,
    ) -> Result<usize> {
        let mut iocb: bindings::kiocb = pin_init::zeroed();
        iocb.ki_filp = self.raw();
        iocb.ki_pos = pos;
        iocb.ki_ioprio = ioprio;
        // Unlike C loop (`ki_flags = 0`), an O_DSYNC/O_SYNC backing file keeps its durability.
        iocb.ki_flags = sync_flags;
        let ret = if write {
            let f = self.ops().write_iter.ok_or(EINVAL)?;
            // SAFETY: `iocb` is a valid synchronous kiocb for this file; the freeze protection
            // taken here is dropped right after the synchronous write.
            unsafe {
                sys::rust_loop_kiocb_start_write(&mut iocb);
                let ret = f(&mut iocb, iter.as_raw());
                sys::rust_loop_kiocb_end_write(&mut iocb);
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
}
