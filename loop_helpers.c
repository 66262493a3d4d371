// SPDX-License-Identifier: GPL-2.0
/*
 * Trampolines to static inline functions of <linux/fs.h>, see loop_helpers.h.
 *
 * kiocb_start_write() takes the backing superblock's write freeze protection (a per-CPU
 * rw-semaphore) and tells lockdep it was released, so that an asynchronous write may end
 * it from its completion, in another context, with kiocb_end_write().
 */
#include <linux/blk_types.h>
#include <linux/blkdev.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/mutex.h>
#include <linux/statfs.h>
#include <uapi/linux/loop.h>
#include "loop_helpers.h"

/*
 * The kernel constants the Rust side spells out by value (bindgen emits no macro with a
 * cast and no enum of a UAPI header it does not include), each checked here against its C
 * definition: a kernel that changes one breaks the build, not the driver. Keep in sync with
 * the Rust constant named in the comment.
 */
/* staging/request.rs: BlkError */
static_assert((__force u8)BLK_STS_RESOURCE == 9);
static_assert((__force u8)BLK_STS_IOERR == 10);
/* staging/bdev.rs: OpenMode */
static_assert((__force unsigned int)BLK_OPEN_WRITE == 1 << 1);
static_assert((__force unsigned int)BLK_OPEN_EXCL == 1 << 2);
/* staging/queue.rs: BLK_FEAT_WRITE_CACHE */
static_assert((__force unsigned int)BLK_FEAT_WRITE_CACHE == 1u << 0);
/* staging/file.rs */
static_assert((__force unsigned int)FMODE_READ == 1 << 0);
static_assert((__force unsigned int)FMODE_WRITE == 1 << 1);
static_assert((__force unsigned int)FMODE_CAN_ODIRECT == 1 << 22);
static_assert(IOCB_DSYNC == 0x2);
static_assert(IOCB_SYNC == 0x4);
static_assert(FALLOC_FL_KEEP_SIZE == 0x01);
static_assert(FALLOC_FL_PUNCH_HOLE == 0x02);
static_assert(FALLOC_FL_ZERO_RANGE == 0x10);
/* loop_uapi.rs */
static_assert(LO_NAME_SIZE == 64 && LO_KEY_SIZE == 32);
static_assert(LO_FLAGS_READ_ONLY == 1 && LO_FLAGS_AUTOCLEAR == 4);
static_assert(LO_FLAGS_PARTSCAN == 8 && LO_FLAGS_DIRECT_IO == 16);
static_assert(LOOP_SET_STATUS_SETTABLE_FLAGS == (LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN));
static_assert(LOOP_SET_STATUS_CLEARABLE_FLAGS == LO_FLAGS_AUTOCLEAR);
static_assert(LOOP_CONFIGURE_SETTABLE_FLAGS == 31 - 2);
static_assert(LO_CRYPT_NONE == 0 && LO_CRYPT_XOR == 1 && LO_CRYPT_CRYPTOAPI == 18);
static_assert(LOOP_SET_FD == 0x4C00 && LOOP_CLR_FD == 0x4C01);
static_assert(LOOP_SET_STATUS == 0x4C02 && LOOP_GET_STATUS == 0x4C03);
static_assert(LOOP_SET_STATUS64 == 0x4C04 && LOOP_GET_STATUS64 == 0x4C05);
static_assert(LOOP_CHANGE_FD == 0x4C06 && LOOP_SET_CAPACITY == 0x4C07);
static_assert(LOOP_SET_DIRECT_IO == 0x4C08 && LOOP_SET_BLOCK_SIZE == 0x4C09);
static_assert(LOOP_CONFIGURE == 0x4C0A);
static_assert(LOOP_CTL_ADD == 0x4C80 && LOOP_CTL_REMOVE == 0x4C81 && LOOP_CTL_GET_FREE == 0x4C82);
static_assert(sizeof(struct loop_info64) == 232 && sizeof(struct loop_config) == 304);
#ifdef CONFIG_64BIT
static_assert(sizeof(struct loop_info) == 168);
#endif

void rust_loop_kiocb_start_write(struct kiocb *iocb)
{
	kiocb_start_write(iocb);
}

void rust_loop_kiocb_end_write(struct kiocb *iocb)
{
	kiocb_end_write(iocb);
}

/* mutex_lock_killable() is a macro under lockdep. */
int rust_loop_mutex_lock_killable(struct mutex *lock)
{
	return mutex_lock_killable(lock);
}

/* struct kstatfs is not in the Rust bindings: the block size of the file's filesystem. */
int rust_loop_file_bsize(struct file *file, u32 *bsize)
{
	struct kstatfs sbuf;
	int err = vfs_statfs(&file->f_path, &sbuf);

	if (!err)
		*bsize = sbuf.f_bsize;
	return err;
}
