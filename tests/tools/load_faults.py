#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Loads a module with its N-th kernel allocation failing, for N = 1, 2, ..., and checks that
each load either works or leaves nothing behind.

Usage: load_faults.py MODULE.ko NAME

NAME is the module's name in /proc/modules. Needs failslab set up with ignore-gfp-wait=N and
verbose=0, and no loop driver loaded. The fault is injected with /proc/thread-self/fail-nth
around one finit_module() system call (the file is opened before arming), so exactly the N-th
allocation of the load and the module's init fails. After a failed load: no module, no
/dev/loop-control, no loop disk. After a successful one: /dev/loop-control and loop0
exist; the module is then removed (delete_module). The sweep ends at the first N the load
never reaches. Prints one line: the loads, how many failed (by errno) and succeeded.
"""

import collections
import errno
import ctypes
import os
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)
SYS_finit_module, SYS_delete_module = 313, 176
MODULE_INIT_COMPRESSED_FILE = 4
NTH = os.open("/proc/thread-self/fail-nth", os.O_RDWR)


def loaded(name):
    with open("/proc/modules") as f:
        return any(line.split()[0] == name for line in f)


def leftovers():
    disks = [d for d in os.listdir("/sys/block") if d.startswith("loop")]
    misc = os.path.exists("/sys/class/misc/loop-control")
    return disks, misc


# A parameter that every loop driver's init refuses (EINVAL) before it allocates anything:
# max_loop above what the minor numbers can hold.
BAD_PARAMS = b"max_loop=2000000"
# Fault points swept one by one from the first allocation of the module's init on: they cover
# the registration of /dev/loop-control and of the block major, and the first device.
INIT_POINTS = 48


def load(path, n, params=b""):
    """finit_module with the n-th fault point failing: (errno or 0, fault points left
    unreached; 0 if the n-th was reached, so the fault was injected)."""
    fd = os.open(path, os.O_RDONLY)
    flags = 0 if path.endswith(".ko") else MODULE_INIT_COMPRESSED_FILE
    params = ctypes.c_char_p(params)
    os.pwrite(NTH, str(n).encode(), 0)
    r = libc.syscall(SYS_finit_module, fd, params, flags)
    err = ctypes.get_errno() if r != 0 else 0
    left = int(os.pread(NTH, 16, 0))
    os.pwrite(NTH, b"0", 0)
    os.close(fd)
    return err, left


def loader_points(path):
    """The fault points a load passes before the module's init allocates: a load that init
    refuses at once (BAD_PARAMS) passes them all and no other."""
    big = 1 << 30
    err, left = load(path, big, BAD_PARAMS)
    if err != errno.EINVAL:
        got = os.strerror(err) if err else "success"
        raise SystemExit(f"a load with {BAD_PARAMS.decode()} gave {got}, not EINVAL")
    return big - left


def unload(name):
    for _ in range(100):
        if libc.syscall(SYS_delete_module, ctypes.c_char_p(name.encode()), os.O_NONBLOCK) == 0:
            return
        time.sleep(0.1)  # udev may hold a device for a moment
    raise SystemExit(f"{name}: delete_module failed: {os.strerror(ctypes.get_errno())}")


def main():
    path, name = sys.argv[1], sys.argv[2]
    if loaded(name):
        raise SystemExit(f"{name} is loaded already")
    pre = loader_points(path)
    # A few of the loader's own points, every point of the init's first allocations, then
    # ever sparser ones until the load passes no more.
    points = sorted({1, 2, pre // 2, pre} | set(range(pre + 1, pre + INIT_POINTS + 1)) |
                    {pre + INIT_POINTS + (1 << k) for k in range(4, 14)})
    failed, ok = collections.Counter(), 0
    for n in points:
        err, left = load(path, n)
        if err == 0:
            ok += 1
            disks, misc = leftovers()
            # A device that failed to be created is not an error (C's loop_init ignores
            # it too); /dev/loop-control must be there.
            if not misc:
                raise SystemExit(f"fault {n}: loaded without loop-control (disks: {disks})")
            unload(name)
        else:
            failed[os.strerror(err)] += 1
            if loaded(name):
                raise SystemExit(f"fault {n}: the load failed ({os.strerror(err)}) but {name} is"
                                 " loaded")
        disks, misc = leftovers()
        if disks or misc:
            raise SystemExit(f"fault {n} (load {os.strerror(err) if err else 'ok'}): left behind:"
                             f" disks {disks}, loop-control {misc}")
        if left:
            break
    else:
        raise SystemExit(f"every fault point up to {points[-1]} was reached")
    detail = ", ".join(f"{k} {v}" for k, v in failed.items())
    print(f"{ok + sum(failed.values())} loads ({pre} loader points, then the init's), faults 1..{n}: {sum(failed.values())} failed"
          f" ({detail}), {ok} succeeded; the last reached no fault point")
    if not failed:
        raise SystemExit("no load failed: the injection did not reach the loader")


if __name__ == "__main__":
    main()
