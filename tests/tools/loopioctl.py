#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Issues raw loop ioctls, for tests that assert exact results and errnos.

Usage: loopioctl.py DEVICE IOCTL [ARGS...] [--ro]
       loopioctl.py --batch < LINES


  DEVICE   /dev/loop-control or /dev/loopN (opened read-write, or read-only with --ro)
  IOCTL    one of:
    ctl-add N | ctl-remove N | ctl-get-free      /dev/loop-control
    set-fd FILE [--file-ro|--file-wo]            LOOP_SET_FD with FILE opened rw (ro, wo)
    change-fd FILE [--file-wo]                   LOOP_CHANGE_FD with FILE opened ro (wo)
    configure FILE [key=value...]                LOOP_CONFIGURE; keys: bs offset sizelimit
                                                 flags encrypt_type key_size name file_ro
                                                 file_wo dsync (FILE opened O_DSYNC)
                                                 fd (a raw number instead of FILE: use -)
    clr-fd | set-capacity | set-direct-io N | set-block-size N
    get-status64 | get-status                    prints key=value lines
    set-status64 [key=value...]                  keys as for configure
    set-status [key=value...]                    the legacy struct loop_info
    raw NUMBER [ARG]                             any ioctl with an integer argument
    null NUMBER                                  any ioctl with a NULL pointer argument

Prints the ioctl's result and exits 0, or prints the errno name (e.g. EBUSY) and exits 1.

--batch runs one ioctl per input line, "WANT DEVICE IOCTL [ARGS...]", where WANT is OK or the
errno name the ioctl must fail with; blank lines and "#" comments are skipped. Stops at the
first line whose outcome differs, printing it, and exits 1 (one Python start for many
ioctls: starting Python is what costs time in the emulated test VM).
"""

import errno
import fcntl
import os
import struct
import sys

LOOP = {
    "set-fd": 0x4C00,
    "clr-fd": 0x4C01,
    "set-status": 0x4C02,
    "get-status": 0x4C03,
    "set-status64": 0x4C04,
    "get-status64": 0x4C05,
    "change-fd": 0x4C06,
    "set-capacity": 0x4C07,
    "set-direct-io": 0x4C08,
    "set-block-size": 0x4C09,
    "configure": 0x4C0A,
    "ctl-add": 0x4C80,
    "ctl-remove": 0x4C81,
    "ctl-get-free": 0x4C82,
}

# struct loop_info64: 3 u64 dev/inode/rdevice, offset, sizelimit, number, encrypt_type,
# encrypt_key_size, flags, file_name[64], crypt_name[64], encrypt_key[32], init[2] u64.
INFO64 = struct.Struct("=QQQQQIIII64s64s32sQQ")
# struct loop_info (x86_64): number, pad, device, inode, rdevice (unsigned long), offset,
# encrypt_type, encrypt_key_size, flags, name[64], encrypt_key[32], init[2] ulong,
# reserved[4], pad.
INFO = struct.Struct("=i4xQQQiiii64s32sQQ4s4x")
assert INFO64.size == 232 and INFO.size == 168


def kv(args):
    out = {}
    for a in args:
        k, _, v = a.partition("=")
        out[k] = v
    return out


def num(d, k, default=0):
    return int(str(d.get(k, default)), 0)


def pack_info64(d):
    return INFO64.pack(0, 0, 0, num(d, "offset"), num(d, "sizelimit"), 0,
                       num(d, "encrypt_type"), num(d, "key_size"), num(d, "flags"),
                       d.get("name", "").encode(), b"", b"", 0, 0)


def pack_info(d):
    return INFO.pack(0, 0, 0, 0, num(d, "offset"), num(d, "encrypt_type"),
                     num(d, "key_size"), num(d, "flags"), d.get("name", "").encode(), b"",
                     0, 0, b"")


def show(fields, names):
    for n, v in zip(names, fields):
        if isinstance(v, bytes):
            v = v.rstrip(b"\0").decode(errors="replace")
        print(f"{n}={v}")


def run(argv):
    ro = "--ro" in argv
    argv = [a for a in argv if a != "--ro"]
    dev, name, rest = argv[1], argv[2], argv[3:]
    fd = os.open(dev, os.O_RDONLY if ro else os.O_RDWR)
    try:
        if name in ("ctl-add", "ctl-remove", "set-direct-io", "set-block-size"):
            return fcntl.ioctl(fd, LOOP[name], int(rest[0], 0))
        if name in ("ctl-get-free", "clr-fd", "set-capacity"):
            return fcntl.ioctl(fd, LOOP[name], 0)
        if name == "raw":
            return fcntl.ioctl(fd, int(rest[0], 0), int(rest[1], 0) if len(rest) > 1 else 0)
        if name == "null":
            return fcntl.ioctl(fd, int(rest[0], 0), 0)
        if name in ("set-fd", "change-fd"):
            flags = os.O_RDONLY if name == "change-fd" or "--file-ro" in rest else os.O_RDWR
            if "--file-wo" in rest:
                flags = os.O_WRONLY
            bfd = os.open(rest[0], flags)
            return fcntl.ioctl(fd, LOOP[name], bfd)
        if name == "configure":
            d = kv(rest[1:])
            if rest[0] == "-":
                bfd = num(d, "fd")
            else:
                flags = os.O_RDONLY if d.get("file_ro") else os.O_RDWR
                if d.get("file_wo"):
                    flags = os.O_WRONLY
                if d.get("dsync"):
                    flags |= os.O_DSYNC
                bfd = os.open(rest[0], flags)
            arg = struct.pack("=II", bfd, num(d, "bs")) + pack_info64(d) + bytes(64)
            fcntl.ioctl(fd, LOOP[name], arg)
            return 0
        if name == "set-status64":
            fcntl.ioctl(fd, LOOP[name], pack_info64(kv(rest)))
            return 0
        if name == "set-status":
            fcntl.ioctl(fd, LOOP[name], pack_info(kv(rest)))
            return 0
        if name == "get-status64":
            buf = fcntl.ioctl(fd, LOOP[name], bytes(INFO64.size))
            show(INFO64.unpack(buf), ["device", "inode", "rdevice", "offset", "sizelimit",
                                      "number", "encrypt_type", "key_size", "flags",
                                      "file_name", "crypt_name", "key", "init0", "init1"])
            return None
        if name == "get-status":
            buf = fcntl.ioctl(fd, LOOP[name], bytes(INFO.size))
            show(INFO.unpack(buf), ["number", "device", "inode", "rdevice", "offset",
                                    "encrypt_type", "key_size", "flags", "file_name", "key",
                                    "init0", "init1", "reserved"])
            return None
        raise SystemExit(f"unknown ioctl {name}")
    finally:
        os.close(fd)


def batch(lines):
    for n, line in enumerate(lines, 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        want = words[0]
        try:
            run(["loopioctl.py"] + words[1:])
            got = "OK"
        except OSError as e:
            got = errno.errorcode.get(e.errno, str(e.errno))
        if got != want:
            print(f"line {n}: '{' '.join(words[1:])}' gave {got}, expected {want}")
            return 1
    return 0


def main(argv):
    if argv[1:] == ["--batch"]:
        return batch(sys.stdin)
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        ret = run(argv)
    except OSError as e:
        print(errno.errorcode.get(e.errno, str(e.errno)))
        return 1
    if ret is not None:
        print(ret)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
