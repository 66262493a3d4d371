#!/usr/bin/env bash
# An unbound device has size 0, reads nothing, and rejects unknown ioctls with EINVAL.
. "$(dirname "$0")/../lib.sh"

load_driver
assert_eq 0 "$(blockdev --getsize64 /dev/loop0)" "unbound size"
assert_eq 0 "$(dd if=/dev/loop0 bs=512 count=1 2>/dev/null | wc -c)" "bytes read"
expect_errno EINVAL $LOOPIOCTL /dev/loop0 raw 0x4c99
# The loop ioctls that need a bound device say so.
for op in clr-fd set-capacity get-status64 get-status; do
	expect_errno ENXIO $LOOPIOCTL /dev/loop0 $op
done
expect_errno ENXIO $LOOPIOCTL /dev/loop0 set-status64 offset=0
expect_errno ENXIO $LOOPIOCTL /dev/loop0 set-block-size 4096
expect_errno ENXIO $LOOPIOCTL /dev/loop0 set-direct-io 1
