#!/usr/bin/env bash
# /dev/loop-control: ADD, REMOVE and GET_FREE results and errors.
. "$(dirname "$0")/../lib.sh"

ctl() { $LOOPIOCTL /dev/loop-control "$@"; }
load_driver max_loop=2

assert_eq 0 "$(ctl ctl-get-free)" "GET_FREE with loop0 free"
assert_eq 10 "$(ctl ctl-add 10)" "ADD 10"
settle
[ -b /dev/loop10 ] || fail "/dev/loop10 missing after ADD"
expect_errno EEXIST ctl ctl-add 10
# A negative index picks the lowest free one.
assert_eq 2 "$(ctl ctl-add -1)" "ADD -1"
assert_eq 0 "$(ctl ctl-remove 10)" "REMOVE 10"
settle
[ ! -e /sys/block/loop10 ] || fail "loop10 still there after REMOVE"
expect_errno ENODEV ctl ctl-remove 10
expect_errno EINVAL ctl ctl-remove -1
expect_errno ENOSYS ctl raw 0x4c99

# An open device cannot be removed.
exec 3</dev/loop1
expect_errno EBUSY ctl ctl-remove 1
exec 3<&-
assert_eq 0 "$(ctl ctl-remove 1)" "REMOVE 1 after close"

# 100 ADD/REMOVE pairs, in one process (a Python start per ioctl takes seconds here).
python3 - <<'PY' || fail "100 ADD/REMOVE"
import fcntl, os
fd = os.open("/dev/loop-control", os.O_RDWR)
for i in range(20, 120):
    assert fcntl.ioctl(fd, 0x4C80, i) == i
for i in range(20, 120):
    assert fcntl.ioctl(fd, 0x4C81, i) == 0
PY
