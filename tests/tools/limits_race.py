#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Races block-size changes against discards that the backing file refuses.

Usage: limits_race.py DEVICE SECONDS

One process toggles LOOP_SET_BLOCK_SIZE between 512 and 4096 (each change re-advertises
discard, and takes the queue-limits lock while it freezes the queue); others issue
BLKDISCARD, which the backing file's fallocate refuses with EOPNOTSUPP, so the worker then
clears the discard limits, which takes the queue-limits lock. In C loop 7.3 the worker can
wait for that lock while the block-size change holds it and waits for the worker's
request: a deadlock. Prints "changes N discards M refused R" and exits 0; exits 1 if any
call takes longer than 30 s (a hang), or if the race did not happen (no change, or no
discard refused by the backing file), or a process failed.
"""

import fcntl
import multiprocessing
import os
import random
import struct
import sys
import time

from loopioctl import LOOP

BLKDISCARD = 0x1277
HANG = 30


def changer(dev, seconds, out):
    fd = os.open(dev, os.O_RDWR)
    n, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        fcntl.ioctl(fd, LOOP["set-block-size"], 4096 if n % 2 == 0 else 512)
        n += 1
    os.close(fd)
    out.put(("changes", n))


def discarder(dev, seconds, seed, out):
    rng = random.Random(seed)
    fd = os.open(dev, os.O_RDWR)
    n, refused, end = 0, 0, time.monotonic() + seconds
    while time.monotonic() < end:
        off = rng.randrange(0, 4 << 20, 4096)
        try:
            fcntl.ioctl(fd, BLKDISCARD, struct.pack("=QQ", off, 4096))
        except OSError:
            # EOPNOTSUPP: refused by the backing file (or, once the limits are cleared,
            # by the block layer until the next change).
            refused += 1
        n += 1
    os.close(fd)
    out.put(("discards", n))
    out.put(("refused", refused))


def main():
    dev, seconds = sys.argv[1], float(sys.argv[2])
    out = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=changer, args=(dev, seconds, out))]
    procs += [multiprocessing.Process(target=discarder, args=(dev, seconds, s, out))
              for s in range(3)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + seconds + HANG
    counts = {"changes": 0, "discards": 0, "refused": 0}
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            print(f"hang: a call took more than {HANG} s", flush=True)
            # The stuck processes cannot be joined: leave without waiting for them.
            os._exit(1)
        if p.exitcode != 0:
            print(f"a racer failed (exit {p.exitcode})")
            return 1
    while not out.empty():
        k, n = out.get()
        counts[k] += n
    print(f"changes {counts['changes']} discards {counts['discards']} "
          f"refused {counts['refused']}")
    if counts["changes"] == 0 or counts["refused"] == 0:
        print("the race did not happen")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
