#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Workers of tests/cases/race-stress.sh, one Python start each (starting Python is what
costs time in the emulated test VM). Each prints one summary line and exits 1 on a failure.

Usage: race_stress.py config SECONDS DEV BACKING SIZE_A SIZE_B LIMIT RODEV IMG1 IMG2
         Until SECONDS pass, changes DEV's configuration while fio verifies on it: block
         size 512 <-> 4096, direct I/O off/on, BACKING truncated to SIZE_A/SIZE_B and
         LOOP_SET_CAPACITY, LOOP_SET_STATUS64 size limit 0 <-> LIMIT (all beyond fio's
         region); and LOOP_CHANGE_FD of the read-only RODEV between IMG1 and IMG2 (equal
         copies). Every kind of change must succeed at least once; EBUSY/EAGAIN are counted.
       race_stress.py memfd ROUNDS IMAGE MNT NAME WANT
         syzkaller style: IMAGE (an ext4 image) copied into a memfd; LOOP_SET_FD on a free
         device, a second LOOP_SET_FD (EBUSY), LOOP_CLR_FD, close, LOOP_SET_FD again,
         LOOP_SET_STATUS64 with LO_FLAGS_PARTSCAN; mount on MNT, NAME must equal the file
         WANT; umount, LOOP_CLR_FD.
       race_stress.py churn SECONDS SEED FIRST COUNT BACKING NODEDIR
         Random loop-control traffic on /dev/loop{FIRST..FIRST+COUNT-1}: LOOP_CTL_ADD,
         LOOP_CTL_REMOVE, LOOP_CTL_GET_FREE, opening a device node made in NODEDIR (an open
         creates a missing device), LOOP_CONFIGURE on BACKING + a read + LOOP_CLR_FD.
         ENODEV/EEXIST/EBUSY/ENXIO/ENOENT are expected (devices come and go, the module may
         be unloaded meanwhile); any other errno fails.
       race_stress.py parts SECONDS DEV IMAGE START:SIZE...
         Reads DEVp1, DEVp2... (byte ranges START:SIZE of IMAGE) with O_DIRECT until
         SECONDS pass, while the partitions are deleted and added again: a partition may be
         missing or fail (counted), but every byte read must be IMAGE's.
"""

import collections
import errno
import fcntl
import mmap
import os
import random
import struct
import subprocess
import sys
import time

from loopioctl import INFO64, LOOP, pack_info64

LO_FLAGS_PARTSCAN = 8
CHUNK = 64 * 1024


def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno))


class Counts:
    """Outcomes per operation: "OK" or an errno name."""

    def __init__(self):
        self.c = collections.defaultdict(collections.Counter)

    def run(self, op, fn, *args):
        try:
            ret = fn(*args)
        except OSError as e:
            self.c[op][errname(e)] += 1
            return None
        self.c[op]["OK"] += 1
        return ret

    def line(self):
        return "; ".join(f"{op} " + " ".join(f"{k}={v}" for k, v in sorted(c.items()))
                         for op, c in sorted(self.c.items()))

    def unexpected(self, allowed):
        return [(op, k) for op, c in self.c.items() for k in c if k != "OK" and k not in allowed]


def get_status(fd):
    return list(INFO64.unpack(fcntl.ioctl(fd, LOOP["get-status64"], bytes(INFO64.size))))


def set_status(fd, info):
    fcntl.ioctl(fd, LOOP["set-status64"], INFO64.pack(*info))


def config(secs, dev, backing, size_a, size_b, limit, rodev, img1, img2):
    size_a, size_b, limit = int(size_a), int(size_b), int(limit)
    deadline = time.monotonic() + float(secs)
    counts = Counts()
    fd = os.open(dev, os.O_RDWR)
    rofd = os.open(rodev, os.O_RDONLY)
    i = 0

    def sizelimit(value):
        info = get_status(fd)
        info[4] = value  # lo_sizelimit
        set_status(fd, info)

    def resize(size):
        os.truncate(backing, size)
        fcntl.ioctl(fd, LOOP["set-capacity"], 0)

    def change_fd(img):
        nfd = os.open(img, os.O_RDONLY)
        try:
            fcntl.ioctl(rofd, LOOP["change-fd"], nfd)
        finally:
            os.close(nfd)

    while time.monotonic() < deadline:
        odd = i % 2 == 1
        counts.run("set-block-size", fcntl.ioctl, fd, LOOP["set-block-size"],
                   4096 if odd else 512)
        counts.run("set-direct-io", fcntl.ioctl, fd, LOOP["set-direct-io"], 0 if odd else 1)
        counts.run("set-capacity", resize, size_a if odd else size_b)
        counts.run("set-status64", sizelimit, limit if odd else 0)
        counts.run("change-fd", change_fd, img1 if odd else img2)
        i += 1
        # Each change freezes the queue: leave fio room to run between rounds.
        time.sleep(0.3)
    # Back to the whole file: the device's size must follow.
    sizelimit(0)
    resize(size_b)
    size = struct.unpack("=Q", fcntl.ioctl(fd, 0x80081272, bytes(8)))[0]  # BLKGETSIZE64
    os.close(fd)
    os.close(rofd)
    print(f"config: {i} rounds; {counts.line()}")
    if size != size_b:
        print(f"config: device size {size} after the changes, expected {size_b}")
        return 1
    bad = counts.unexpected({"EBUSY", "EAGAIN"})
    never = [op for op, c in counts.c.items() if not c["OK"]]
    if bad or never or not i:
        print(f"config: unexpected errors {bad}, never succeeded {never}")
        return 1
    return 0


def open_bound_free(dev, flags, seconds=30):
    """Opens DEV once it is unbound (a detached device may still be held by udev: it stays in
    rundown, and open fails with ENXIO, until udev closes it)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            fd = os.open(dev, flags)
            try:
                get_status(fd)
            except OSError as e:
                if e.errno == errno.ENXIO:
                    return fd
                raise
            os.close(fd)
        except OSError as e:
            if e.errno not in (errno.ENXIO, errno.ENOENT) or time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise OSError(errno.EBUSY, f"{dev} still bound after {seconds} s")
        time.sleep(0.1)


def memfd(rounds, image, mnt, name, want):
    data = open(image, "rb").read()
    expected = open(want, "rb").read()
    for r in range(int(rounds)):
        mfd = os.memfd_create("race-stress-img")
        os.write(mfd, data)
        ctl = os.open("/dev/loop-control", os.O_RDWR)
        n = fcntl.ioctl(ctl, LOOP["ctl-get-free"], 0)
        os.close(ctl)
        dev = f"/dev/loop{n}"
        fd = open_bound_free(dev, os.O_RDWR)
        fcntl.ioctl(fd, LOOP["set-fd"], mfd)
        try:
            fcntl.ioctl(fd, LOOP["set-fd"], mfd)
            print(f"memfd: round {r}: a second LOOP_SET_FD on {dev} succeeded")
            return 1
        except OSError as e:
            if e.errno != errno.EBUSY:
                print(f"memfd: round {r}: a second LOOP_SET_FD gave {errname(e)}, not EBUSY")
                return 1
        fcntl.ioctl(fd, LOOP["clr-fd"], 0)
        os.close(fd)
        fd = open_bound_free(dev, os.O_RDWR)
        fcntl.ioctl(fd, LOOP["set-fd"], mfd)
        info = get_status(fd)
        info[8] |= LO_FLAGS_PARTSCAN
        set_status(fd, info)
        if not get_status(fd)[8] & LO_FLAGS_PARTSCAN:
            print(f"memfd: round {r}: LO_FLAGS_PARTSCAN not set")
            return 1
        subprocess.run(["mount", "-t", "ext4", dev, mnt], check=True)
        try:
            got = open(os.path.join(mnt, name), "rb").read()
            # A write to the memfd-backed filesystem, synced by the umount.
            with open(os.path.join(mnt, f"round{r}"), "wb") as f:
                f.write(expected[:4096])
        finally:
            subprocess.run(["umount", mnt], check=True)
        if got != expected:
            print(f"memfd: round {r}: {name} read back wrong through {dev}")
            return 1
        fcntl.ioctl(fd, LOOP["clr-fd"], 0)
        os.close(fd)
        # The filesystem wrote to the memfd: the superblock is no longer the image's.
        if os.pread(mfd, 4096, 0) + os.pread(mfd, 4096, 4096) == data[:8192]:
            print(f"memfd: round {r}: nothing was written to the memfd")
            return 1
        os.close(mfd)
    print(f"memfd: {rounds} rounds")
    return 0


def churn(secs, seed, first, count, backing, nodedir):
    rng = random.Random(int(seed))
    first, count = int(first), int(count)
    deadline = time.monotonic() + float(secs)
    counts = Counts()
    os.makedirs(nodedir, exist_ok=True)
    bfd = os.open(backing, os.O_RDWR)

    def ctl(op, arg):
        fd = os.open("/dev/loop-control", os.O_RDWR)
        try:
            return fcntl.ioctl(fd, LOOP[op], arg)
        finally:
            os.close(fd)

    def node(n):
        path = os.path.join(nodedir, f"loop{n}")
        if not os.path.exists(path):
            try:
                os.mknod(path, 0o600 | 0o060000, os.makedev(7, n))
            except FileExistsError:
                pass
        return os.open(path, os.O_RDWR)

    def open_close(n):
        os.close(node(n))

    def configure(n):
        fd = node(n)
        try:
            info = pack_info64({})
            fcntl.ioctl(fd, LOOP["configure"], struct.pack("=II", bfd, 0) + info + bytes(64))
            os.pread(fd, 4096, 0)
            fcntl.ioctl(fd, LOOP["clr-fd"], 0)
        finally:
            os.close(fd)

    ops = 0
    while time.monotonic() < deadline:
        n = first + rng.randrange(count)
        op = rng.choice(["add", "remove", "get-free", "open", "configure", "configure"])
        if op == "add":
            counts.run(op, ctl, "ctl-add", n)
        elif op == "remove":
            counts.run(op, ctl, "ctl-remove", n)
        elif op == "get-free":
            counts.run(op, ctl, "ctl-get-free", 0)
        elif op == "open":
            counts.run(op, open_close, n)
        else:
            counts.run(op, configure, n)
        ops += 1
    os.close(bfd)
    print(f"churn {seed}: {ops} calls; {counts.line()}")
    bad = counts.unexpected({"ENODEV", "EEXIST", "EBUSY", "ENXIO", "ENOENT"})
    if bad or not ops:
        print(f"churn {seed}: unexpected errors {bad}")
        return 1
    return 0


def parts(secs, dev, image, *ranges):
    data = open(image, "rb").read()
    spans = [tuple(int(x) for x in r.split(":")) for r in ranges]
    deadline = time.monotonic() + float(secs)
    counts = Counts()
    buf = mmap.mmap(-1, CHUNK)
    read_bytes = 0

    def read_part(k, start, size):
        nonlocal read_bytes
        fd = os.open(f"{dev}p{k}", os.O_RDONLY | os.O_DIRECT)
        try:
            off = 0
            while off < size:
                n = os.preadv(fd, [buf], off)
                if n == 0:
                    raise OSError(errno.ENODATA, "short partition")
                if buf[:n] != data[start + off:start + off + n]:
                    raise ValueError(f"{dev}p{k}: wrong data at offset {off}")
                off += n
                read_bytes += n
        finally:
            os.close(fd)

    while time.monotonic() < deadline:
        for k, (start, size) in enumerate(spans, 1):
            try:
                counts.run(f"p{k}", read_part, k, start, size)
            except ValueError as e:
                print(f"parts: {e}")
                return 1
            time.sleep(0.05)
    print(f"parts: {read_bytes >> 20} MiB read; {counts.line()}")
    if not any(c["OK"] for c in counts.c.values()):
        print("parts: no partition was read whole")
        return 1
    return 0


def main(argv):
    cmds = {"config": config, "memfd": memfd, "churn": churn, "parts": parts}
    if len(argv) < 2 or argv[1] not in cmds:
        print(__doc__, file=sys.stderr)
        return 2
    return cmds[argv[1]](*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
