// SPDX-License-Identifier: GPL-2.0
/*
 * Trampolines to static inline functions of <linux/fs.h>, see loop_helpers.h.
 *
 * kiocb_start_write() takes the backing superblock's write freeze protection (a per-CPU
 * rw-semaphore) and tells lockdep it was released, so that an asynchronous write may end
 * it from its completion, in another context, with kiocb_end_write().
 */
#include <linux/fs.h>
#include <linux/statfs.h>
#include "loop_helpers.h"

void rust_loop_kiocb_start_write(struct kiocb *iocb)
{
	kiocb_start_write(iocb);
}

void rust_loop_kiocb_end_write(struct kiocb *iocb)
{
	kiocb_end_write(iocb);
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
