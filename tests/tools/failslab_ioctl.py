#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Fails one kernel slab allocation inside one loop ioctl (or open, or close), at every
position in turn, and checks the device state after each call.

Usage: failslab_ioctl.py FILE1 FILE2 [MAXN]

Needs the driver loaded with max_loop=0 (no device yet), FILE1 and FILE2 of 4 MiB on a
filesystem with direct I/O, and failslab set up with ignore-gfp-wait=N and verbose=0.

The fault is injected with /proc/thread-self/fail-nth, for this task and this one system call
only: writing N arms it, the call runs, reading back 0 says the N-th fault point was reached
(the allocation failed), anything else that the call has fewer than N (the sweep of that
call ends there). Everything the call needs (file descriptors, argument buffers) is made
before arming; Python's own allocations are user space and are not affected.

After each call: it succeeded or it failed with an errno, and the device shows the old or the
new configuration, never a mix; a failed bind leaves the device unbound; the device can be
detached, configured and removed normally afterwards. Prints one line per call: the runs,
how many had a fault injected, how many failed (with their errnos) and succeeded. Exits 1 at
the first inconsistency.
"""

import errno
import fcntl
import os
import stat
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loopioctl import INFO64, LOOP, pack_info64  # noqa: E402

LO_FLAGS_READ_ONLY, LO_FLAGS_AUTOCLEAR, LO_FLAGS_DIRECT_IO = 1, 4, 16
MIB = 1 << 20
NTH = os.open("/proc/thread-self/fail-nth", os.O_RDWR)


class Inconsistent(Exception):
    pass


def inject(n, call):
    """Runs call() with the n-th fault point of this task failing: (errno or 0, injected)."""
    os.pwrite(NTH, str(n).encode(), 0)
    try:
        call()
        err = 0
    except OSError as e:
        err = e.errno
    left = int(os.pread(NTH, 16, 0))
    os.pwrite(NTH, b"0", 0)
    return err, left == 0


def inject_ioctl(lo, n, name, arg):
    """inject() of the loop ioctl NAME with ARG, on a descriptor of the device opened for it."""
    fd = lo.open()
    try:
        return inject(n, lambda: fcntl.ioctl(fd, LOOP[name], arg))
    finally:
        os.close(fd)


def retry(call, errnos=(errno.EBUSY, errno.ENXIO), seconds=20):
    """call(), retried while it fails with one of errnos (udev may hold a device briefly)."""
    end = time.monotonic() + seconds
    while True:
        try:
            return call()
        except OSError as e:
            if e.errno not in errnos or time.monotonic() > end:
                raise
        time.sleep(0.05)


class Loop:
    def __init__(self, files):
        self.files = files
        self.ino = [os.stat(f).st_ino for f in files]
        self.rw = os.open(files[0], os.O_RDWR)
        self.ro = [os.open(f, os.O_RDONLY) for f in files]
        self.ctl = os.open("/dev/loop-control", os.O_RDWR)
        self.idx = fcntl.ioctl(self.ctl, LOOP["ctl-get-free"], 0)
        self.dev = f"/dev/loop{self.idx}"
        self.sys = f"/sys/block/loop{self.idx}"

    def open(self):
        # Opening fails with ENXIO while the device is being cleared.
        return retry(lambda: os.open(self.dev, os.O_RDWR))

    def ioctl(self, name, arg=0):
        fd = self.open()
        try:
            return fcntl.ioctl(fd, LOOP[name], arg)
        finally:
            os.close(fd)

    def status(self):
        """(inode, offset, sizelimit, flags, name) of the bound device, None if unbound."""
        try:
            buf = self.ioctl("get-status64", bytes(INFO64.size))
        except OSError as e:
            if e.errno != errno.ENXIO:
                raise
            return None
        f = INFO64.unpack(buf)
        return (f[1], f[3], f[4], f[8], f[9].rstrip(b"\0").decode())

    def sectors(self):
        with open(f"{self.sys}/size") as f:
            return int(f.read())

    def lbs(self):
        with open(f"{self.sys}/queue/logical_block_size") as f:
            return int(f.read())

    @staticmethod
    def config_arg(bfd, **kw):
        return struct.pack("=II", bfd, kw.pop("bs", 0)) + pack_info64(kw) + bytes(64)

    def configure(self, bfd, **kw):
        self.ioctl("configure", self.config_arg(bfd, **kw))

    def detach(self, wait=True):
        """Detaches (the clearing happens at the last close) and waits until it is done."""
        try:
            self.ioctl("clr-fd")
        except OSError as e:
            if e.errno != errno.ENXIO:
                raise
        end = time.monotonic() + 20
        while wait and self.status() is not None:
            if time.monotonic() > end:
                raise Inconsistent(f"{self.dev} still bound 20 s after LOOP_CLR_FD")
            time.sleep(0.05)

    def exists(self, idx):
        return os.path.exists(f"/sys/block/loop{idx}")

    def remove(self, idx):
        if self.exists(idx):
            retry(lambda: fcntl.ioctl(self.ctl, LOOP["ctl-remove"], idx))

    def check_usable(self):
        """The device binds, shows the configuration and detaches normally."""
        self.configure(self.rw, offset=512, name="usable")
        st = self.status()
        if st is None or st[0] != self.ino[0] or st[1] != 512 or st[4] != "usable":
            raise Inconsistent(f"a normal LOOP_CONFIGURE afterwards gave {st}")
        self.detach()


def expect(cond, what):
    if not cond:
        raise Inconsistent(what)


def case_set_fd(lo, n):
    r = inject_ioctl(lo, n, "set-fd", lo.rw)
    st = lo.status()
    if r[0] == 0:
        expect(st is not None and st[0] == lo.ino[0], f"SET_FD succeeded, status {st}")
    else:
        expect(st is None, f"SET_FD failed, device bound: {st}")
    lo.detach()
    return r


def case_configure(lo, n):
    new = (lo.ino[0], 4096, MIB, LO_FLAGS_READ_ONLY, "fi-new")
    arg = lo.config_arg(lo.rw, offset=4096, sizelimit=MIB, flags=LO_FLAGS_READ_ONLY,
                        name="fi-new")
    r = inject_ioctl(lo, n, "configure", arg)
    st = lo.status()
    if r[0] == 0:
        expect(st == new, f"CONFIGURE succeeded, status {st}, expected {new}")
        expect(lo.sectors() == MIB // 512, f"CONFIGURE succeeded, size {lo.sectors()}")
    else:
        expect(st is None, f"CONFIGURE failed, device bound: {st}")
    lo.detach()
    return r


def case_set_status(lo, n):
    lo.configure(lo.rw, name="fi-old")
    old = (lo.ino[0], 0, 0, 0, "fi-old")
    new = (lo.ino[0], 4096, MIB, 0, "fi-new")
    arg = pack_info64({"offset": 4096, "sizelimit": MIB, "name": "fi-new"})
    r = inject_ioctl(lo, n, "set-status64", arg)
    st, size = lo.status(), lo.sectors()
    want = (new, MIB // 512) if r[0] == 0 else (old, 4 * MIB // 512)
    expect((st, size) == want, f"SET_STATUS64 gave {r[0]}: status {st} size {size}, "
           f"expected {want}")
    lo.detach()
    return r


def case_change_fd(lo, n):
    lo.configure(lo.ro[0])
    r = inject_ioctl(lo, n, "change-fd", lo.ro[1])
    st = lo.status()
    want = lo.ino[1] if r[0] == 0 else lo.ino[0]
    expect(st is not None and st[0] == want, f"CHANGE_FD gave {r[0]}: status {st}, "
           f"expected inode {want}")
    lo.detach()
    return r


def case_direct_io(lo, n):
    lo.configure(lo.rw)
    r = inject_ioctl(lo, n, "set-direct-io", 1)
    st = lo.status()
    want = LO_FLAGS_DIRECT_IO if r[0] == 0 else 0
    expect(st is not None and st[3] & LO_FLAGS_DIRECT_IO == want,
           f"SET_DIRECT_IO gave {r[0]}: status {st}")
    lo.detach()
    return r


def case_block_size(lo, n):
    lo.configure(lo.rw)
    r = inject_ioctl(lo, n, "set-block-size", 4096)
    want = 4096 if r[0] == 0 else 512
    expect(lo.lbs() == want, f"SET_BLOCK_SIZE gave {r[0]}: logical block size {lo.lbs()}")
    lo.detach()
    return r


def case_capacity(lo, n):
    os.truncate(lo.files[0], 4 * MIB)
    lo.configure(lo.rw)
    os.truncate(lo.files[0], 8 * MIB)
    r = inject_ioctl(lo, n, "set-capacity", 0)
    want = 8 * MIB // 512 if r[0] == 0 else 4 * MIB // 512
    expect(lo.sectors() == want, f"SET_CAPACITY gave {r[0]}: size {lo.sectors()}")
    lo.detach()
    os.truncate(lo.files[0], 4 * MIB)
    return r


def wait_unbound(lo, what):
    end = time.monotonic() + 20
    while lo.status() is not None:
        expect(time.monotonic() < end, f"{what}: still bound after 20 s")
        time.sleep(0.05)


def case_clr_fd(lo, n):
    lo.configure(lo.rw)
    r = inject_ioctl(lo, n, "clr-fd", 0)
    if r[0] == 0:
        wait_unbound(lo, "CLR_FD succeeded")
    else:
        st = lo.status()
        expect(st is not None and not st[3] & LO_FLAGS_AUTOCLEAR,
               f"CLR_FD failed: status {st}")
        lo.detach()
    return r


def case_clr_close(lo, n):
    """LOOP_CLR_FD, then the fault in the last close, which clears the device."""
    lo.configure(lo.rw)
    fd = lo.open()
    fcntl.ioctl(fd, LOOP["clr-fd"], 0)
    r = inject(n, lambda: os.close(fd))
    wait_unbound(lo, "the close after CLR_FD")
    return r


ADD_IDX = 50


def case_ctl_add(lo, n):
    r = inject(n, lambda: fcntl.ioctl(lo.ctl, LOOP["ctl-add"], ADD_IDX))
    expect(lo.exists(ADD_IDX) == (r[0] == 0), f"CTL_ADD gave {r[0]}: loop{ADD_IDX} "
           f"exists: {lo.exists(ADD_IDX)}")
    lo.remove(ADD_IDX)
    return r


def case_ctl_remove(lo, n):
    fcntl.ioctl(lo.ctl, LOOP["ctl-add"], ADD_IDX)
    for _ in range(50):
        r = inject(n, lambda: fcntl.ioctl(lo.ctl, LOOP["ctl-remove"], ADD_IDX))
        # udev may have the new device open: that refusal is not the fault's.
        if r != (errno.EBUSY, False):
            break
        time.sleep(0.1)
    expect(lo.exists(ADD_IDX) == (r[0] != 0), f"CTL_REMOVE gave {r[0]}: loop{ADD_IDX} "
           f"exists: {lo.exists(ADD_IDX)}")
    if r[0] != 0:
        fd = os.open(f"/dev/loop{ADD_IDX}", os.O_RDWR)
        try:
            fcntl.ioctl(fd, LOOP["get-status64"], bytes(INFO64.size))
            raise Inconsistent(f"loop{ADD_IDX} bound after a failed CTL_REMOVE")
        except OSError as e:
            expect(e.errno == errno.ENXIO, f"GET_STATUS64 after a failed CTL_REMOVE: {e}")
        finally:
            os.close(fd)
    lo.remove(ADD_IDX)
    return r


def loops():
    return {int(d[4:]) for d in os.listdir("/sys/block") if d.startswith("loop")}


def case_get_free(lo, n):
    # The only device is bound: LOOP_CTL_GET_FREE has to add one.
    lo.configure(lo.rw)
    before = loops()
    got = []
    r = inject(n, lambda: got.append(fcntl.ioctl(lo.ctl, LOOP["ctl-get-free"], 0)))
    added = loops() - before
    if r[0] == 0:
        expect(added == set(got), f"CTL_GET_FREE returned {got}, added {added}")
    else:
        expect(not added, f"CTL_GET_FREE failed ({r[0]}) and added {added}")
    for idx in added:
        fd = os.open(f"/dev/loop{idx}", os.O_RDWR)
        try:
            fcntl.ioctl(fd, LOOP["get-status64"], bytes(INFO64.size))
            raise Inconsistent(f"new device loop{idx} is bound")
        except OSError as e:
            expect(e.errno == errno.ENXIO, f"GET_STATUS64 on new device: {e}")
        finally:
            os.close(fd)
        lo.remove(idx)
    lo.detach()
    return r


PROBE_IDX = 60
PROBE_NODE = "/dev/fault-inject-loop60"


def case_open_new(lo, n):
    """Opening a node of a device that does not exist yet creates it (loop_probe)."""
    fds = []
    r = inject(n, lambda: fds.append(os.open(PROBE_NODE, os.O_RDWR)))
    if r[0] == 0:
        expect(lo.exists(PROBE_IDX), f"open of {PROBE_NODE} succeeded, no loop{PROBE_IDX}")
        try:
            fcntl.ioctl(fds[0], LOOP["get-status64"], bytes(INFO64.size))
            raise Inconsistent(f"probed device loop{PROBE_IDX} is bound")
        except OSError as e:
            expect(e.errno == errno.ENXIO, f"GET_STATUS64 on the probed device: {e}")
        os.close(fds[0])
    # On failure the device may or may not have been created (the fault may come after
    # the probe, in the open); if it was, it is complete: it is removed below like any.
    lo.remove(PROBE_IDX)
    expect(not lo.exists(PROBE_IDX), f"loop{PROBE_IDX} not removed")
    return r


CASES = [
    ("LOOP_SET_FD", case_set_fd),
    ("LOOP_CONFIGURE", case_configure),
    ("LOOP_SET_STATUS64", case_set_status),
    ("LOOP_CHANGE_FD", case_change_fd),
    ("LOOP_SET_DIRECT_IO", case_direct_io),
    ("LOOP_SET_BLOCK_SIZE", case_block_size),
    ("LOOP_SET_CAPACITY", case_capacity),
    ("LOOP_CLR_FD", case_clr_fd),
    ("last close after LOOP_CLR_FD", case_clr_close),
    ("LOOP_CTL_ADD", case_ctl_add),
    ("LOOP_CTL_REMOVE", case_ctl_remove),
    ("LOOP_CTL_GET_FREE", case_get_free),
    ("open of a new /dev/loopN", case_open_new),
]


def main(argv):
    maxn = int(argv[3]) if len(argv) > 3 else 128
    points = [n for n in list(range(1, 9)) + [12, 16, 24, 32, 48, 64, 96, 128, 192, 256]
              if n <= maxn]
    lo = Loop(argv[1:3])
    if os.path.exists(PROBE_NODE):
        os.unlink(PROBE_NODE)
    os.mknod(PROBE_NODE, stat.S_IFBLK | 0o600, os.makedev(7, PROBE_IDX))
    total_fail = total_ok = 0
    try:
        for name, case in CASES:
            runs = injected = ok = 0
            errs, where = {}, []
            for n in points:
                try:
                    err, hit = case(lo, n)
                except Inconsistent as e:
                    print(f"{name}, fault point {n}: {e}")
                    return 1
                runs += 1
                injected += hit
                if err:
                    e = errno.errorcode.get(err, str(err))
                    errs[e] = errs.get(e, 0) + 1
                    where.append(n)
                else:
                    ok += 1
                if not hit:
                    break
            lo.check_usable()
            failed = sum(errs.values())
            total_fail += failed
            total_ok += ok
            detail = ", ".join(f"{k} {v}" for k, v in sorted(errs.items()))
            if where:
                detail += f" at fault points {','.join(map(str, where))}"
            print(f"  {name}: {runs} runs, {injected} with a fault injected, {failed} failed"
                  f"{' (' + detail + ')' if detail else ''}, {ok} succeeded"
                  f"{'' if runs == injected else f', needs fewer than {n} fault points'}")
    finally:
        os.unlink(PROBE_NODE)
    print(f"calls failed {total_fail}, succeeded {total_ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
