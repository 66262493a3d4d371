// SPDX-License-Identifier: GPL-2.0

//! Staging: safe abstractions for what the Linux 7.3 kernel crate lacks.
//!
//! This is staging code, not driver logic: each item stands in for an upstream piece that
//! does not exist yet (its doc says which), shaped like `rust/kernel/block/mq` with one file
//! per C object, so that it can move upstream or be replaced by the upstream version. It is
//! the only place in rust_loop with `bindings::` and `unsafe`; every wrapper states its
//! `# Invariants`, every `unsafe` block proves its obligations, and nothing here imports the
//! driver (the one crate item it names is `LocalModule`, for `THIS_MODULE`).
//!
//! - [`request`], [`operations`], [`tag_set`], [`gen_disk`]: blk-mq and the disk;
//! - [`bdev`], [`queue`], [`sysfs`]: a block device and its claim, queue limits and freeze,
//!   a disk's attribute groups;
//! - [`file`], [`aio`]: the backing file and the asynchronous direct I/O hand-over;
//! - [`workqueue`], [`misc`], [`params`], [`mutex`], [`sys`]: an owned workqueue, a
//!   fixed-minor misc device, module parameters that sysfs shows, a killable mutex, and
//!   small kernel facilities.

#![allow(unsafe_code)]

pub(crate) mod aio;
pub(crate) mod bdev;
pub(crate) mod file;
pub(crate) mod gen_disk;
pub(crate) mod misc;
pub(crate) mod mutex;
pub(crate) mod operations;
pub(crate) mod params;
pub(crate) mod queue;
pub(crate) mod request;
pub(crate) mod sys;
pub(crate) mod sysfs;
pub(crate) mod tag_set;
pub(crate) mod workqueue;
