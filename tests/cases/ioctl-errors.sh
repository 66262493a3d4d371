#!/usr/bin/env bash
# Error paths of the block-device ioctls, with the errno C loop returns.
. "$(dirname "$0")/../lib.sh"

L=$LOOPIOCTL
load_driver
f=$(new_backing err.img 8M)
g=$(new_backing err2.img 4M)

expect_errno EBADF $L /dev/loop0 raw 0x4C00 999
expect_errno EBADF $L /dev/loop0 configure - fd=999
expect_errno EFAULT $L /dev/loop0 raw 0x4C0A 1
expect_errno EINVAL $L /dev/loop0 configure "$f" flags=0x40
expect_errno EINVAL $L /dev/loop0 configure "$f" flags=2
expect_errno EINVAL $L /dev/loop0 configure "$f" encrypt_type=1
expect_errno EINVAL $L /dev/loop0 configure "$f" encrypt_type=18
expect_errno EINVAL $L /dev/loop0 configure "$f" encrypt_type=5
expect_errno EINVAL $L /dev/loop0 configure "$f" key_size=33
expect_errno EOVERFLOW $L /dev/loop0 configure "$f" offset=0x8000000000000000
expect_errno EINVAL $L /dev/loop0 configure "$f" bs=1000
expect_errno EINVAL $L /dev/loop0 configure /dev/null
# A device cannot back itself.
expect_errno EBADF $L /dev/loop0 configure /dev/loop0
# Nor an unbound loop device back another.
expect_errno EINVAL $L /dev/loop0 configure /dev/loop1
[ ! -e /sys/block/loop0/loop ] || fail "a failed configure left loop0 bound"

$L /dev/loop0 configure "$f" name=hello >/dev/null || fail "configure"
assert_eq "file_name=hello" "$($L /dev/loop0 get-status | grep '^file_name=')" "legacy GET_STATUS name"
expect_errno EBUSY $L /dev/loop0 configure "$f"
expect_errno EBUSY $L /dev/loop0 set-fd "$f"
expect_errno EINVAL $L /dev/loop0 null 0x4C05
expect_errno EINVAL $L /dev/loop0 null 0x4C03
expect_errno EFAULT $L /dev/loop0 raw 0x4C05 1
expect_errno EFAULT $L /dev/loop0 raw 0x4C04 1
# CHANGE_FD needs a read-only device.
expect_errno EINVAL $L /dev/loop0 change-fd "$f"
# A chain loop1 -> loop0 -> file is fine; loop0 -> loop1 would close a cycle.
$L /dev/loop1 configure /dev/loop0 >/dev/null || fail "loop1 on loop0"
expect_errno EBADF $L /dev/loop2 configure /dev/loop2
# Old LOOP_GET_STATUS cannot report an offset beyond 2^31.
$L /dev/loop1 set-status64 offset=0x100000000 >/dev/null || fail "set-status64 big offset"
expect_errno EOVERFLOW $L /dev/loop1 get-status
$L /dev/loop1 clr-fd >/dev/null || fail "clr-fd loop1"
udevadm settle
expect_errno ENXIO $L /dev/loop1 clr-fd
# SET_STATUS rejects what CONFIGURE rejects.
expect_errno EINVAL $L /dev/loop0 set-status64 encrypt_type=1
expect_errno EOVERFLOW $L /dev/loop0 set-status64 sizelimit=0x8000000000000000
# SET_STATUS keeps READ_ONLY and DIRECT_IO as they are, and cannot clear PARTSCAN; it sets
# the name (here to "").
$L /dev/loop0 set-status64 flags=0x19 >/dev/null || fail "set-status64 flags"
assert_eq "flags=8" "$($L /dev/loop0 get-status64 | grep '^flags=')" "flags after SET_STATUS64"
$L /dev/loop0 set-status64 flags=0 >/dev/null
assert_eq "flags=8" "$($L /dev/loop0 get-status64 | grep '^flags=')" "PARTSCAN cleared"
$L /dev/loop0 clr-fd >/dev/null
udevadm settle

# CHANGE_FD: read-only device, same size only.
$L /dev/loop0 configure "$f" file_ro=1 >/dev/null || fail "configure read-only"
expect_errno EINVAL $L /dev/loop0 change-fd "$g"
h=$(new_backing err3.img 8M)
$L /dev/loop0 change-fd "$h" >/dev/null || fail "change-fd same size"
assert_eq "$h" "$(sysfs_loop /dev/loop0 backing_file)" "backing_file after CHANGE_FD"
$L /dev/loop0 clr-fd >/dev/null
udevadm settle
expect_errno ENXIO $L /dev/loop0 change-fd "$h"
# Opened read-only without CAP_SYS_ADMIN the setters are refused with EPERM.
$L /dev/loop0 configure "$f" >/dev/null
for op in "set-capacity" "set-block-size 4096" "set-direct-io 0" "set-status64 flags=4"; do
	expect_errno EPERM setpriv --inh-caps=-all --bounding-set=-all $L /dev/loop0 $op --ro
done
$L /dev/loop0 clr-fd >/dev/null
