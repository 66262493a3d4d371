#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Issues raw loop ioctls, for tests that assert exact results and errnos.

Usage: loopioctl.py DEVICE IOCTL [ARG]
  DEVICE  /dev/loop-control or /dev/loopN
  IOCTL   a name (ctl-add, ctl-remove, ctl-get-free, set-fd, clr-fd, set-capacity,
          set-direct-io, set-block-size, get-status64, ...) or a raw number (0x4c99)
  ARG     an integer argument (default 0)

Prints the ioctl's return value and exits 0, or prints the errno name and exits 1.
"""

import errno
import fcntl
import os
import sys

IOCTLS = {
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


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    dev, name = argv[1], argv[2]
    cmd = IOCTLS[name] if name in IOCTLS else int(name, 0)
    arg = int(argv[3], 0) if len(argv) > 3 else 0
    try:
        fd = os.open(dev, os.O_RDONLY)
    except OSError as e:
        print(f"open: {errno.errorcode.get(e.errno, e.errno)}")
        return 1
    try:
        ret = fcntl.ioctl(fd, cmd, arg)
    except OSError as e:
        print(errno.errorcode.get(e.errno, str(e.errno)))
        return 1
    finally:
        os.close(fd)
    print(ret)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
