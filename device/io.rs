// SPDX-License-Identifier: GPL-2.0

//! The I/O half of a loop device: one request's life cycle, in order.
//!
//! | Step                 | Context                              | loop.c twin               |
//! |----------------------|--------------------------------------|---------------------------|
//! | [`queue_rq`]         | atomic (the submitter's task)        | `loop_queue_rq`           |
//! | [`run`] (the worker) | process, the device's workqueue      | `loop_process_work`       |
//! | [`handle_cmd`]       | worker                               | `loop_handle_cmd`         |
//! | [`do_req`]           | worker                               | `do_req_filebacked`       |
//! | [`rw`] (buffered)    | worker                               | `lo_rw_aio`, no `use_aio` |
//! | [`rw_aio`] (direct)  | worker                               | `lo_rw_aio`, `use_aio`    |
//! | [`aio_done`]         | any, including hard interrupts       | `lo_rw_aio_do_completion` |
//! | [`complete_rq`]      | softirq, or the completing task      | `lo_complete_rq`          |
//!
//! `queue_rq` only queues the request for the device's worker: the backing file is never
//! called from the submitter's task. The worker runs the requests in order, each with its
//! own copy of the [`IoConfig`] it was queued under (a counted reference to the backing
//! file), and drops it before the request completes (a direct I/O hands it to the staging
//! layer's kiocb state, which does the same). So once the queue has drained, no I/O
//! context holds the backing file: the configuration path that cleared or replaced it drops
//! the last reference, and the file is released by the task that detached it, as in C.
//! This half never takes `lo_mutex`.
//!
//! [`queue_rq`]: LoopDevice::queue_rq
//! [`run`]: LoopDevice::run
//! [`handle_cmd`]: LoopDevice::handle_cmd
//! [`do_req`]: LoopDevice::do_req
//! [`rw`]: LoopDevice::rw
//! [`rw_aio`]: LoopDevice::rw_aio
//! [`aio_done`]: LoopDevice::aio_done
//! [`complete_rq`]: LoopDevice::complete_rq

use super::{
    IoConfig,
    LoopCmd,
    LoopDevice,
    State, //
};
use crate::{
    policy::{
        self,
        Completion, //
    },
    staging::{
        aio::{
            self,
            AioSlot,
            DirectIo, //
        },
        file::{
            BackingFile,
            FallocMode, //
        },
        request::{
            BlkError,
            IterDir,
            ReqOp,
            Request, //
        },
        sys,
    },
};
use kernel::{
    prelude::*,
    sync::{
        atomic::Relaxed,
        Arc,
        ArcBorrow, //
    },
    workqueue::WorkItem,
};

/// What [`LoopDevice::do_req`] did with a request.
enum Handled {
    /// Done: bytes transferred or a negative errno, for `complete`.
    Done(i64),
    /// A direct read or write at `pos`, to start asynchronously.
    Aio { pos: i64, write: bool },
}

impl LoopDevice {
    /// Queues a started request for the worker (`loop_queue_rq`). Context: atomic.
    pub(super) fn queue_rq(
        this: ArcBorrow<'_, Self>,
        rq: Request<Self>,
    ) -> Result<(), (Request<Self>, BlkError)> {
        // Same lockless read as C: configuration published before `Bound` is visible.
        if this.state() != State::Bound {
            return Err((rq, BlkError::IOERR));
        }
        let Some(wq) = this.wq.as_ref() else {
            return Err((rq, BlkError::IOERR));
        };
        if let Err(e) = this.pending.lock().rqs.push_within_capacity(rq) {
            // Cannot happen (the vector holds a whole queue depth); retry later.
            return Err((e.0, BlkError::RESOURCE));
        }
        // Already queued is fine: the running or pending worker will see the request.
        let _ = wq.queue().enqueue(Arc::from(this));
        Ok(())
    }

    /// Runs every queued request (`loop_process_work` for the root worker). Context:
    /// process, may sleep.
    fn run(this: Arc<Self>) {
        let _flags = sys::TaskFlags::loop_worker();
        let mut batch = this.batch.lock();
        loop {
            let io = {
                let mut pending = this.pending.lock();
                if pending.rqs.is_empty() {
                    break;
                }
                core::mem::swap(&mut pending.rqs, &mut *batch);
                pending.io.clone()
            };
            // Each request gets its own copy of the configuration and drops it before
            // it completes; the last request takes the batch's, so that once the batch's
            // last request has completed this worker holds no backing file.
            let mut io = io;
            let mut rqs = batch.drain_all().peekable();
            while let Some(rq) = rqs.next() {
                let rq_io = if rqs.peek().is_some() {
                    io.clone()
                } else {
                    io.take()
                };
                Self::handle_cmd(rq_io, rq);
                sys::cond_resched();
            }
        }
    }

    /// Handles one request in the worker (`loop_handle_cmd`).
    ///
    /// `io` is this request's own copy of the I/O configuration. It is dropped before
    /// the request completes (a direct I/O hands it to [`aio::submit`], which does the same).
    fn handle_cmd(io: Option<IoConfig>, mut rq: Request<Self>) {
        let ret = match io {
            None => Err(EIO),
            Some(io) if rq.op().is_write() && io.read_only => Err(EIO),
            Some(io) => {
                // We can block here.
                rq.clear_nowait();
                match Self::do_req(&io, &rq) {
                    Ok(Handled::Aio { pos, write }) => return Self::rw_aio(io, rq, pos, write),
                    Ok(Handled::Done(v)) => Ok(v),
                    Err(e) => Err(e),
                }
            }
        };
        rq.pdu().ret.store(policy::command_result(ret), Relaxed);
        rq.complete();
    }

    /// The position in the backing file of a request that addresses data; `EIO` for one
    /// without a position (a flush) or past what a file position holds.
    fn backing_pos(io: &IoConfig, rq: &Request<Self>) -> Result<i64> {
        policy::backing_pos(rq.sector().ok_or(EIO)?, io.offset)
    }

    /// Runs one request on the backing file (`do_req_filebacked`): the result for
    /// `complete`, or the position of a direct read or write to start asynchronously.
    /// Only the operations that address data compute a position.
    fn do_req(io: &IoConfig, rq: &Request<Self>) -> Result<Handled> {
        let op = rq.op();
        Ok(Handled::Done(match op {
            ReqOp::Flush => Self::req_flush(io).map(|()| 0)?,
            ReqOp::Read | ReqOp::Write => {
                let pos = Self::backing_pos(io, rq)?;
                let write = op == ReqOp::Write;
                if io.dio {
                    return Ok(Handled::Aio { pos, write });
                }
                // Reads and writes report their own result, errors included.
                Self::rw(io, rq, pos, write)
            }
            ReqOp::WriteZeroes => {
                let pos = Self::backing_pos(io, rq)?;
                let mode = if rq.nounmap() {
                    FallocMode::ZeroRange
                } else {
                    FallocMode::PunchHole
                };
                Self::fallocate(io, rq, pos, mode).map(|()| 0)?
            }
            ReqOp::Discard => {
                let pos = Self::backing_pos(io, rq)?;
                Self::fallocate(io, rq, pos, FallocMode::PunchHole).map(|()| 0)?
            }
            ReqOp::Other => return Err(EIO),
        }))
    }

    /// `lo_req_flush`.
    fn req_flush(io: &IoConfig) -> Result {
        policy::flush_result(io.file.fsync())
    }

    /// `lo_fallocate`: discard and write-zeroes through the backing file's `fallocate`.
    fn fallocate(io: &IoConfig, rq: &Request<Self>, pos: i64, mode: FallocMode) -> Result {
        if rq.queue().max_discard_sectors() == 0 {
            return Err(EOPNOTSUPP);
        }
        let r = policy::fallocate_result(io.file.fallocate(mode, pos, rq.bytes()));
        if r == Err(EOPNOTSUPP) {
            // The limits were set hoping `fallocate` works; it does not, so stop advertising
            // the operation (`loop_clear_limits`; unfrozen, as in C). Unlike C, only if
            // `limits_lock` is free: a block size or direct I/O change holds it while it
            // freezes the queue, waiting for this very request, so waiting here deadlocks.
            // The next failing request tries again.
            if let Some(mut lim) = rq.queue().try_start_limits_update() {
                match mode {
                    FallocMode::ZeroRange => lim.set_max_write_zeroes_sectors(0),
                    FallocMode::PunchHole => lim.set_discard(0, 0),
                }
                let _ = lim.commit();
            }
        }
        r
    }

    /// Reads or writes through the page cache (`lo_rw_aio` without `use_aio`); the result
    /// goes to `complete` as is.
    fn rw(io: &IoConfig, rq: &Request<Self>, pos: i64, write: bool) -> i64 {
        let mut bvecs = KVec::new();
        let Ok(mut iter) = rq.iov_iter(IterDir::of_write(write), &mut bvecs) else {
            return i64::from(EIO.to_errno());
        };
        match io.file.rw_sync(write, io.sync, pos, rq.ioprio(), &mut iter) {
            Ok(n) => n as i64,
            Err(e) => i64::from(e.to_errno()),
        }
    }

    /// Starts an asynchronous direct read or write (`lo_rw_aio` with `use_aio`); the request
    /// comes back to [`Self::aio_done`], possibly in interrupt context.
    ///
    /// `io` is the request's own copy (see [`Self::handle_cmd`]): it keeps the backing
    /// file open while the I/O is in flight and is dropped before the request completes.
    fn rw_aio(io: IoConfig, rq: Request<Self>, pos: i64, write: bool) {
        let sync = io.sync;
        aio::submit(rq, io, pos, write, sync);
    }

    /// A direct I/O has ended and dropped its configuration copy: complete the request
    /// with `result`. Context: any.
    fn aio_done(rq: Request<Self>, result: i64) {
        rq.pdu().ret.store(result, Relaxed);
        rq.complete();
    }

    /// Ends a request with its result (`lo_complete_rq`). Context: softirq or the
    /// completing task.
    pub(super) fn complete_rq(mut rq: Request<Self>) {
        let ret = rq.pdu().ret.load(Relaxed);
        let lbs = rq.queue().logical_block_size();
        match policy::completion(ret, rq.bytes(), rq.op() == ReqOp::Read, lbs) {
            Completion::Done => rq.end(Ok(())),
            Completion::Failed(errno) => rq.end(Err(Error::from_errno(errno).into())),
            Completion::RequeueRest(done) => {
                rq.pdu().ret.store(0, Relaxed);
                rq.requeue_rest(done);
            }
            Completion::ZeroFillAndFail => {
                rq.zero_fill();
                rq.end(Err(BlkError::IOERR));
            }
        }
    }
}

impl WorkItem for LoopDevice {
    type Pointer = Arc<LoopDevice>;

    fn run(this: Arc<LoopDevice>) {
        LoopDevice::run(this)
    }
}

impl DirectIo for LoopDevice {
    type Keep = IoConfig;

    fn aio_slot(pdu: &LoopCmd) -> &AioSlot<IoConfig> {
        &pdu.aio
    }

    fn file(keep: &IoConfig) -> &BackingFile {
        &keep.file
    }

    fn aio_done(rq: Request<Self>, result: i64) {
        LoopDevice::aio_done(rq, result)
    }
}
