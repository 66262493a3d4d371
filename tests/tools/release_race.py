#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The backing file is released by the time the detaching close (or LOOP_CHANGE_FD) returns.

Usage: release_race.py SCENARIO ROUNDS [--dio] [--seconds S] [args...]

  stacked LOWER UPPER FILE   /dev/loopLOWER with autoclear on FILE, /dev/loopUPPER on it;
                             a 4 KiB read through the upper device, LOOP_CLR_FD and close of
                             the upper device; at once LOOP_CTL_REMOVE(LOWER) must succeed
                             (the lower device was released by the upper one's detach, and
                             so detached itself).
  umount DEV MNT IMAGE       DEV (autoclear) on IMAGE, a file of the filesystem mounted on
                             MNT; a 4 KiB read, LOOP_CLR_FD and close; at once umount(MNT)
                             must succeed (EBUSY: the backing file is still open).
  changefd DEV MNT OLD NEW   DEV read-only on OLD, a file of the filesystem mounted on MNT;
                             a 4 KiB read, LOOP_CHANGE_FD to NEW; at once umount(MNT) must
                             succeed.

--dio: direct I/O on the device under test (DEV, or the upper device). A scenario ends at
ROUNDS rounds or after S seconds (default 120), whichever is first; the umount scenarios
mount MNT again (ext4, from the device the test gives in $MNT_SOURCE) after each round.
Prints "rounds N failed M" and exits 1 if any round failed. In C loop the last fput of a
detach runs as task work of the detaching task, before close or the ioctl returns.
"""

import ctypes
import errno
import fcntl
import mmap
import os
import struct
import sys
import time

from loopioctl import LOOP, pack_info64

LOOP_CLR_FD, LOOP_CHANGE_FD, LOOP_CONFIGURE = LOOP["clr-fd"], LOOP["change-fd"], LOOP["configure"]
LOOP_CTL_ADD, LOOP_CTL_REMOVE = LOOP["ctl-add"], LOOP["ctl-remove"]
LO_FLAGS_READ_ONLY, LO_FLAGS_AUTOCLEAR, LO_FLAGS_DIRECT_IO = 1, 4, 16

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_void_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def configure(dev_fd, file_fd, flags):
    info = pack_info64({"flags": flags})
    fcntl.ioctl(dev_fd, LOOP_CONFIGURE, struct.pack("=II", file_fd, 0) + info + bytes(64))


def read4k(path):
    """One 4 KiB read through the device (O_DIRECT: past the page cache, into an aligned,
    page-sized mmap buffer)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        with mmap.mmap(-1, 4096) as buf:
            if os.preadv(fd, [buf], 0) != 4096:
                raise OSError(errno.EIO, f"short read from {path}")
    finally:
        os.close(fd)


def umount(mnt):
    """umount(MNT): 0, or the errno."""
    if libc.umount2(mnt.encode(), 0) == 0:
        return 0
    return ctypes.get_errno()


def mount(src, mnt):
    if libc.mount(src.encode(), mnt.encode(), b"ext4", 0, None) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"mount {src} {mnt}: {os.strerror(e)}")


def round_stacked(args, dio):
    lower, upper, path = int(args[0]), int(args[1]), args[2]
    ctl = os.open("/dev/loop-control", os.O_RDWR)
    try:
        for n in (lower, upper):
            try:
                fcntl.ioctl(ctl, LOOP_CTL_ADD, n)
            except OSError as e:
                if e.errno != errno.EEXIST:
                    raise
        lfd = os.open(f"/dev/loop{lower}", os.O_RDWR)
        bfd = os.open(path, os.O_RDWR)
        configure(lfd, bfd, LO_FLAGS_AUTOCLEAR)
        os.close(bfd)
        ufd = os.open(f"/dev/loop{upper}", os.O_RDWR)
        # The upper device's backing file is our descriptor of the lower one.
        configure(ufd, lfd, LO_FLAGS_DIRECT_IO if dio else 0)
        os.close(lfd)
        read4k(f"/dev/loop{upper}")
        fcntl.ioctl(ufd, LOOP_CLR_FD, 0)
        os.close(ufd)
        try:
            fcntl.ioctl(ctl, LOOP_CTL_REMOVE, lower)
            return None
        except OSError as e:
            err = f"LOOP_CTL_REMOVE({lower}) right after the upper device's detach: " \
                  f"{errno.errorcode.get(e.errno, e.errno)}"
        # Let the late release happen, so that the next round starts clean.
        for _ in range(100):
            time.sleep(0.05)
            try:
                fcntl.ioctl(ctl, LOOP_CTL_REMOVE, lower)
                break
            except OSError:
                pass
        return err
    finally:
        os.close(ctl)


def round_umount(args, dio):
    dev, mnt, image = args[0], args[1], args[2]
    fd = os.open(dev, os.O_RDWR)
    bfd = os.open(image, os.O_RDWR)
    configure(fd, bfd, LO_FLAGS_AUTOCLEAR | (LO_FLAGS_DIRECT_IO if dio else 0))
    os.close(bfd)
    read4k(dev)
    fcntl.ioctl(fd, LOOP_CLR_FD, 0)
    os.close(fd)
    return check_umount(mnt, "the detaching close")


def round_changefd(args, dio):
    dev, mnt, old, new = args[0], args[1], args[2], args[3]
    fd = os.open(dev, os.O_RDONLY)
    bfd = os.open(old, os.O_RDONLY)
    configure(fd, bfd, LO_FLAGS_READ_ONLY | (LO_FLAGS_DIRECT_IO if dio else 0))
    os.close(bfd)
    read4k(dev)
    nfd = os.open(new, os.O_RDONLY)
    fcntl.ioctl(fd, LOOP_CHANGE_FD, nfd)
    os.close(nfd)
    try:
        return check_umount(mnt, "LOOP_CHANGE_FD")
    finally:
        fcntl.ioctl(fd, LOOP_CLR_FD, 0)
        os.close(fd)


def check_umount(mnt, after):
    e = umount(mnt)
    if e == 0:
        mount(os.environ["MNT_SOURCE"], mnt)
        return None
    # Let the late release happen, so that the next round starts clean.
    for _ in range(100):
        time.sleep(0.05)
        if umount(mnt) == 0:
            mount(os.environ["MNT_SOURCE"], mnt)
            break
    return f"umount right after {after}: {errno.errorcode.get(e, e)}"


SCENARIOS = {"stacked": round_stacked, "umount": round_umount, "changefd": round_changefd}


def main(argv):
    argv = list(argv[1:])
    dio = "--dio" in argv
    argv = [a for a in argv if a != "--dio"]
    seconds = 120.0
    if "--seconds" in argv:
        i = argv.index("--seconds")
        seconds = float(argv[i + 1])
        del argv[i:i + 2]
    scenario, rounds, args = argv[0], int(argv[1]), argv[2:]
    run = SCENARIOS[scenario]
    end = time.monotonic() + seconds
    done = failed = 0
    first = None
    while done < rounds and time.monotonic() < end:
        err = run(args, dio)
        done += 1
        if err:
            failed += 1
            first = first or f"round {done}: {err}"
    print(f"{scenario}{' dio' if dio else ''}: rounds {done} failed {failed}"
          + (f" (first: {first})" if first else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
