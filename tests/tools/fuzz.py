#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""A seeded, single-threaded fuzzer of the loop user API, for differential runs.

Usage: fuzz.py SEED OPS TRACE [--scratch DIR]

Runs OPS random calls on /dev/loop0../dev/loop3 and /dev/loop-control: every LOOP_* and
LOOP_CTL_* ioctl and BLKGETSIZE64, BLKSSZGET, BLKROSET/BLKROGET, BLKFLSBUF, BLKDISCARD,
BLKZEROOUT, BLKRRPART, with boundary arguments (offsets and size limits 0, 511, 512, past
the end, i64::MAX, u64::MAX; block sizes 0, 256, 512, 1000, 4096, 4095, 65536, u32::MAX;
every flag bit; encryption types; unterminated names; descriptors of regular files,
directories, FIFOs, memfds, sockets, O_PATH files, closed numbers, the device itself and
other loop devices), plus reads, writes, fsync and fdatasync through the devices. Each
call and its outcome (the result, or the errno name, and the fields of GET_STATUS64) is
one line of TRACE; the same SEED gives the same calls, so two drivers' traces can be
compared line by line. A device is opened for each call and closed after it (so the last
close of LOOP_CLR_FD and autoclear happen as they would in a script), and every device is
detached at the end.

Hunting mode: fuzz.py SEED 0 TRACE --procs N --seconds S [--devices K] forks N processes
that run different seeds (SEED*1000+i) of the same calls at once on /dev/loop0..K-1 for S
seconds. Nothing is compared (concurrent outcomes are not deterministic); what it hunts is
splats, hangs and leaks, which the caller checks in the kernel log and kmemleak. A process
still running 120 s after the deadline is reported with its kernel stack and its last calls
(a hang) and makes the exit status 2. TRACE gets each process's last 200 calls. It prints
the calls made, calls per second, and the outcomes by errno.

Not generated, on purpose: write-only backing descriptors and changes that move a device
under an exclusive opener (rust_loop refuses them where C 7.3 does not: intended
differences, tested in beyond-c.sh).
"""

import collections
import ctypes
import errno
import json
import fcntl
import mmap
import os
import random
import socket
import struct
import sys
import time

from loopioctl import INFO, INFO64, LOOP

BLKROSET, BLKROGET, BLKRRPART, BLKFLSBUF = 0x125D, 0x125E, 0x125F, 0x1261
BLKSSZGET, BLKDISCARD, BLKZEROOUT = 0x1268, 0x1277, 0x127F
BLKGETSIZE64 = 0x80081272

DEVICES = [f"/dev/loop{i}" for i in range(4)]

libc = ctypes.CDLL(None, use_errno=True)
libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong]


def ioctl_ulong(fd, num, arg):
    """An ioctl with an `unsigned long` argument (fcntl.ioctl only takes a C int)."""
    r = libc.ioctl(fd, num, arg & ((1 << 64) - 1))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r
OFFSETS = [0, 511, 512, 4096, 1 << 20, 3 << 20, (1 << 63) - 1, 1 << 63, (1 << 64) - 1]
SIZES = [0, 512, 4096, 1 << 20, (1 << 20) + 511, 1 << 40, (1 << 64) - 1]
BLOCK_SIZES = [0, 256, 512, 1000, 4096, 4095, 8192, 65536, (1 << 32) - 1]
FLAGS = [0, 1, 4, 8, 16, 1 | 16, 4 | 8, 2, 32, 0xFFFFFFFF]
ENCRYPT = [0, 0, 0, 1, 18, 7]
KEY_SIZES = [0, 0, 32, 33]


class Fuzzer:
    def __init__(self, seed, scratch, trace, tag="", devices=None):
        self.rng = random.Random(seed)
        self.devices = devices or DEVICES
        # Called with each call's description before it is made (hunting mode).
        self.before = None
        self.scratch = scratch
        self.trace = trace
        self.files = {}
        for name, size in (("a", 1 << 20), ("b", 1 << 20), ("c", (3 << 20) + 511)):
            path = os.path.join(scratch, f"fuzz{tag}-{name}.img")
            with open(path, "wb") as f:
                f.truncate(size)
            self.files[name] = path
        self.dir = os.path.join(scratch, f"fuzz{tag}-dir")
        os.makedirs(self.dir, exist_ok=True)
        self.fifo = os.path.join(scratch, f"fuzz{tag}-fifo")
        if not os.path.exists(self.fifo):
            os.mkfifo(self.fifo)

    def log(self, line):
        self.trace.write(line + "\n")

    def pick(self, seq):
        return seq[self.rng.randrange(len(seq))]

    def backing_fd(self):
        """A descriptor of some kind, and its name; the caller closes it (if >= 0)."""
        kind = self.pick(["a", "a", "b", "c", "a-ro", "c-ro", "dir", "fifo", "memfd",
                          "socket", "opath", "closed", "self", "other", "a-direct"])
        if kind in ("a", "b", "c"):
            return os.open(self.files[kind], os.O_RDWR), kind
        if kind in ("a-ro", "c-ro"):
            return os.open(self.files[kind[0]], os.O_RDONLY), kind
        if kind == "a-direct":
            return os.open(self.files["a"], os.O_RDWR | os.O_DIRECT), kind
        if kind == "dir":
            return os.open(self.dir, os.O_RDONLY), kind
        if kind == "fifo":
            return os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK), kind
        if kind == "memfd":
            fd = os.memfd_create("fuzz")
            os.ftruncate(fd, 1 << 20)
            return fd, kind
        if kind == "socket":
            return socket.socket().detach(), kind
        if kind == "opath":
            return os.open(self.files["a"], os.O_PATH), kind
        if kind == "closed":
            return 1000, kind
        if kind == "self":
            return None, kind  # filled in by the caller: the device itself
        dev = self.pick(self.devices)
        try:
            return os.open(dev, os.O_RDWR), f"other:{dev}"
        except OSError as e:
            # Removed by LOOP_CTL_REMOVE: a closed number instead.
            return 1000, f"other:{dev}:{errno.errorcode.get(e.errno, e.errno)}"

    def info64(self):
        name = bytes(self.rng.randrange(33, 127) for _ in range(self.pick([0, 5, 64])))
        return INFO64.pack(0, 0, 0, self.pick(OFFSETS), self.pick(SIZES), 0,
                           self.pick(ENCRYPT), self.pick(KEY_SIZES), self.pick(FLAGS),
                           name, b"", b"", 0, 0), name

    def info(self):
        name = bytes(self.rng.randrange(33, 127) for _ in range(self.pick([0, 5, 64])))
        off = self.pick([0, 511, 512, 4096, -512, (1 << 31) - 1])
        return INFO.pack(0, 0, 0, 0, off, self.pick(ENCRYPT), self.pick(KEY_SIZES),
                         self.pick(FLAGS) & 0x7FFFFFFF, name, b"", 0, 0, b""), name

    def call(self, dev, what, fn):
        """Runs fn(fd) on DEV opened read-write; logs what and the outcome."""
        if self.before:
            self.before(f"{dev} {what}")
        try:
            fd = os.open(dev, os.O_RDWR)
        except OSError as e:
            self.log(f"{dev} open -> {errno.errorcode.get(e.errno, e.errno)}")
            return
        try:
            out = fn(fd)
            self.log(f"{dev} {what} -> {out}")
        except OSError as e:
            self.log(f"{dev} {what} -> {errno.errorcode.get(e.errno, e.errno)}")
        finally:
            os.close(fd)

    def with_backing(self, dev, what, fn):
        bfd, kind = self.backing_fd()
        try:
            self.call(dev, f"{what} {kind}", lambda fd: fn(fd, fd if bfd is None else bfd))
        finally:
            if bfd is not None and bfd >= 0 and bfd != 1000:
                os.close(bfd)

    def status64(self, fd):
        buf = fcntl.ioctl(fd, LOOP["get-status64"], bytes(INFO64.size))
        f = INFO64.unpack(buf)
        # Device and inode numbers differ between runs; the rest must not.
        return (f"offset={f[3]} sizelimit={f[4]} number={f[5]} flags={f[8]} "
                f"name={f[9].rstrip(bytes(1))!r}")

    def status(self, fd):
        buf = fcntl.ioctl(fd, LOOP["get-status"], bytes(INFO.size))
        f = INFO.unpack(buf)
        return f"offset={f[4]} number={f[0]} flags={f[7]} name={f[8].rstrip(bytes(1))!r}"

    def rw(self, fd, write, sync):
        n = self.pick([512, 4096, 65536])
        off = self.pick([0, 512, 4096, 1 << 20, (1 << 20) - 512, 3 << 20])
        if write:
            data = bytes([self.rng.randrange(256)]) * n
            r = os.pwrite(fd, data, off)
            if sync:
                (os.fsync if sync == "fsync" else os.fdatasync)(fd)
            return f"{r}"
        buf = os.pread(fd, n, off)
        return f"{len(buf)} crc={sum(buf) & 0xffffffff}"

    def step(self):
        dev = self.pick(self.devices)
        op = self.pick(["set-fd", "configure", "configure", "clr-fd", "set-status64",
                        "set-status", "get-status64", "get-status", "change-fd",
                        "set-capacity", "set-direct-io", "set-block-size", "ctl",
                        "blk", "blk", "rw", "rw", "rw"])
        if op == "set-fd":
            self.with_backing(dev, op, lambda fd, b: ioctl_ulong(fd, LOOP[op], b))
        elif op == "configure":
            info, name = self.info64()
            bs = self.pick(BLOCK_SIZES)

            def configure(fd, b):
                arg = struct.pack("=II", b, bs) + info + bytes(64)
                return fcntl.ioctl(fd, LOOP[op], arg) and 0
            self.with_backing(dev, f"{op} bs={bs} info={info[24:48].hex()}{name!r}",
                              configure)
        elif op == "change-fd":
            self.with_backing(dev, op, lambda fd, b: ioctl_ulong(fd, LOOP[op], b))
        elif op in ("clr-fd", "set-capacity"):
            self.call(dev, op, lambda fd: fcntl.ioctl(fd, LOOP[op], 0))
        elif op == "set-status64":
            info, name = self.info64()
            self.call(dev, f"{op} {info[24:48].hex()}{name!r}",
                      lambda fd: fcntl.ioctl(fd, LOOP[op], info) and 0)
        elif op == "set-status":
            info, name = self.info()
            self.call(dev, f"{op} {info[32:52].hex()}{name!r}",
                      lambda fd: fcntl.ioctl(fd, LOOP[op], info) and 0)
        elif op == "get-status64":
            self.call(dev, op, self.status64)
        elif op == "get-status":
            self.call(dev, op, self.status)
        elif op == "set-direct-io":
            v = self.pick([0, 1, 1, 2])
            self.call(dev, f"{op} {v}", lambda fd: ioctl_ulong(fd, LOOP[op], v))
        elif op == "set-block-size":
            v = self.pick(BLOCK_SIZES)
            self.call(dev, f"{op} {v}", lambda fd: ioctl_ulong(fd, LOOP[op], v))
        elif op == "ctl":
            sub = self.pick(["ctl-get-free", "ctl-add", "ctl-remove"])
            n = self.pick([0, 1, 3, 4, 7, -1, 1 << 20])
            arg = 0 if sub == "ctl-get-free" else n
            self.call("/dev/loop-control", f"{sub} {arg}",
                      lambda fd: ioctl_ulong(fd, LOOP[sub], arg))
        elif op == "blk":
            sub = self.pick(["size", "ssz", "roset", "roget", "flsbuf", "discard", "zeroout",
                             "rrpart"])
            if sub == "size":
                self.call(dev, sub, lambda fd: struct.unpack(
                    "=Q", fcntl.ioctl(fd, BLKGETSIZE64, bytes(8)))[0])
            elif sub == "ssz":
                self.call(dev, sub, lambda fd: struct.unpack(
                    "=i", fcntl.ioctl(fd, BLKSSZGET, bytes(4)))[0])
            elif sub == "roset":
                v = self.pick([0, 1])
                self.call(dev, f"{sub} {v}",
                          lambda fd: fcntl.ioctl(fd, BLKROSET, struct.pack("=i", v)) and 0)
            elif sub == "roget":
                self.call(dev, sub, lambda fd: struct.unpack(
                    "=i", fcntl.ioctl(fd, BLKROGET, bytes(4)))[0])
            elif sub in ("flsbuf", "rrpart"):
                num = BLKFLSBUF if sub == "flsbuf" else BLKRRPART
                self.call(dev, sub, lambda fd: fcntl.ioctl(fd, num, 0))
            else:
                num = BLKDISCARD if sub == "discard" else BLKZEROOUT
                rng = (self.pick([0, 4096, 1 << 20]), self.pick([512, 4096, 65536, 1 << 30]))
                self.call(dev, f"{sub} {rng}", lambda fd: fcntl.ioctl(
                    fd, num, struct.pack("=QQ", *rng)) and 0)
        else:
            write = self.pick([False, True])
            sync = self.pick([None, None, "fsync", "fdatasync"]) if write else None
            self.call(dev, f"rw write={write} sync={sync}", lambda fd: self.rw(fd, write, sync))

    def detach_all(self):
        for dev in self.devices:
            try:
                fd = os.open(dev, os.O_RDWR)
            except OSError:
                continue
            try:
                fcntl.ioctl(fd, LOOP["clr-fd"], 0)
            except OSError:
                pass
            os.close(fd)


class Ring:
    """A trace that keeps the last LIMIT lines and counts the outcomes."""

    def __init__(self, limit=200):
        self.lines = collections.deque(maxlen=limit)
        self.outcomes = collections.Counter()
        self.partial = ""

    def write(self, text):
        self.partial += text
        if self.partial.endswith("\n"):
            line = self.partial.rstrip("\n")
            self.partial = ""
            self.lines.append(line)
            out = line.rsplit("-> ", 1)[-1]
            self.outcomes[out if out.startswith("E") else "ok"] += 1


def hunt_child(seed, index, seconds, scratch, devices, wfd):
    ring = Ring()
    fz = Fuzzer(seed * 1000 + index, scratch, ring, tag=f"-p{index}", devices=devices)
    deadline = time.monotonic() + seconds
    calls = 0
    last = os.path.join(scratch, f"fuzz-p{index}.last")
    # The call in progress, written before it is made: what a hung process was doing.
    now = os.open(os.path.join(scratch, f"fuzz-p{index}.now"),
                  os.O_WRONLY | os.O_CREAT | os.O_TRUNC)

    def before(what):
        line = f"{calls} {what}\n".encode()
        os.pwrite(now, line.ljust(256), 0)
    fz.before = before
    while time.monotonic() < deadline:
        ring.write(f"{calls} ")
        fz.step()
        calls += 1
        if calls % 64 == 0:
            # The calls before (a crash of this process loses the ring).
            with open(last, "w") as f:
                f.write("\n".join(ring.lines) + "\n")
    with open(last, "w") as f:
        f.write("\n".join(ring.lines) + "\n")
    os.write(wfd, json.dumps({"calls": calls, "outcomes": ring.outcomes}).encode())
    os.close(wfd)


def hunt(seed, procs, seconds, scratch, trace, ndev):
    devices = [f"/dev/loop{i}" for i in range(ndev)]
    for i in range(procs):
        for suffix in ("last", "now"):
            try:
                os.unlink(os.path.join(scratch, f"fuzz-p{i}.{suffix}"))
            except FileNotFoundError:
                pass
    children = {}
    start = time.monotonic()
    for i in range(procs):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            status = 0
            try:
                hunt_child(seed, i, seconds, scratch, devices, w)
            except BaseException as e:  # noqa: BLE001 - reported, then the child exits
                print(f"process {i}: {type(e).__name__}: {e}", file=sys.stderr)
                status = 1
            os._exit(status)
        os.close(w)
        children[pid] = (i, r)
    total, outcomes, status, hung = 0, collections.Counter(), 0, []
    grace = start + seconds + 120
    pending = dict(children)
    while pending and time.monotonic() < grace:
        pid, st = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            time.sleep(0.5)
            continue
        i, r = pending.pop(pid)
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
        os.close(r)
        if os.waitstatus_to_exitcode(st) != 0 or not data:
            print(f"process {i} failed (exit code {os.waitstatus_to_exitcode(st)})")
            status = 1
            continue
        res = json.loads(data)
        total += res["calls"]
        outcomes.update(res["outcomes"])
    elapsed = time.monotonic() - start
    for pid, (i, _) in pending.items():
        hung.append(i)
        try:
            with open(f"/proc/{pid}/stack") as f:
                stack = f.read()
        except OSError as e:
            stack = str(e)
        try:
            with open(os.path.join(scratch, f"fuzz-p{i}.now")) as f:
                doing = f.read().strip()
        except OSError:
            doing = "?"
        print(f"HANG: process {i} (pid {pid}) still running {elapsed - seconds:.0f} s after"
              f" the deadline, in call {doing}; kernel stack:\n{stack}")
        status = 2
    for pid in pending:
        # Killable waits end here; the caller's clean-up then sees what is left.
        os.kill(pid, 9)
    for pid in pending:
        for _ in range(20):
            if os.waitpid(pid, os.WNOHANG)[0]:
                break
            time.sleep(0.5)
    with open(trace, "w") as t:
        for i in range(procs):
            try:
                with open(os.path.join(scratch, f"fuzz-p{i}.last")) as f:
                    t.write(f"--- process {i}{' (hung)' if i in hung else ''}\n" + f.read())
            except OSError:
                pass
    if hung:
        with open(trace) as t:
            print(t.read()[-4000:])
    else:
        Fuzzer(seed, scratch, Ring(), devices=devices).detach_all()
    rate = total / elapsed if elapsed else 0
    top = ", ".join(f"{k} {v}" for k, v in outcomes.most_common(8))
    print(f"{procs} processes, {total} calls in {elapsed:.0f} s: {rate:.1f} calls/s; "
          f"outcomes: {top}")
    return status


def main():
    argv = sys.argv[1:]
    opts = {"--scratch": "/tmp", "--procs": "0", "--seconds": "60", "--devices": "8"}
    for name in list(opts):
        if name in argv:
            i = argv.index(name)
            opts[name] = argv[i + 1]
            del argv[i:i + 2]
    scratch = opts["--scratch"]
    seed, ops, trace = int(argv[0]), int(argv[1]), argv[2]
    if int(opts["--procs"]) > 0:
        return hunt(seed, int(opts["--procs"]), float(opts["--seconds"]), scratch, trace,
                    int(opts["--devices"]))
    with open(trace, "w") as t:
        fz = Fuzzer(seed, scratch, t)
        for i in range(ops):
            t.write(f"{i} ")
            fz.step()
        fz.detach_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
