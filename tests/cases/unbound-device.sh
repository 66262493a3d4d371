#!/usr/bin/env bash
# An unbound device has size 0, reads nothing, and rejects unknown ioctls with EINVAL.
. "$(dirname "$0")/../lib.sh"

load_driver
assert_eq 0 "$(blockdev --getsize64 /dev/loop0)" "unbound size"
assert_eq 0 "$(dd if=/dev/loop0 bs=512 count=1 2>/dev/null | wc -c)" "bytes read"
expect_errno EINVAL $LOOPIOCTL /dev/loop0 0x4c99
