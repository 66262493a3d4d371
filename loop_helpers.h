/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C trampolines for static inline kernel functions that rust_loop needs and that cannot be
 * written in Rust: they touch per-CPU rw-semaphores and lockdep state.
 */
#ifndef RUST_LOOP_HELPERS_H
#define RUST_LOOP_HELPERS_H

#include <linux/types.h>

struct kiocb;
struct file;
struct mutex;

void rust_loop_kiocb_start_write(struct kiocb *iocb);
void rust_loop_kiocb_end_write(struct kiocb *iocb);
int rust_loop_file_bsize(struct file *file, u32 *bsize);
int rust_loop_mutex_lock_killable(struct mutex *lock);

#endif
