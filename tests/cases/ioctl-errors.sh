#!/usr/bin/env bash
# Error paths of the block-device ioctls, with the errno C loop returns.
. "$(dirname "$0")/../lib.sh"

L=$LOOPIOCTL
load_driver
f=$(new_backing err.img 8M)
g=$(new_backing err2.img 4M)
h=$(new_backing err3.img 8M)

# ioctls WHAT: runs the loopioctl --batch lines on standard input.
ioctls() {
	local out
	out=$($L --batch) || fail "$1: $out"
}

ioctls "configure on an unbound device" <<END
EBADF /dev/loop0 raw 0x4C00 999
EBADF /dev/loop0 configure - fd=999
EFAULT /dev/loop0 raw 0x4C0A 1
EINVAL /dev/loop0 configure $f flags=0x40
EINVAL /dev/loop0 configure $f flags=2
EINVAL /dev/loop0 configure $f encrypt_type=1
EINVAL /dev/loop0 configure $f encrypt_type=18
EINVAL /dev/loop0 configure $f encrypt_type=5
EINVAL /dev/loop0 configure $f key_size=33
EOVERFLOW /dev/loop0 configure $f offset=0x8000000000000000
EINVAL /dev/loop0 configure $f bs=1000
EINVAL /dev/loop0 configure /dev/null
# A device cannot back itself, nor an unbound loop device another.
EBADF /dev/loop0 configure /dev/loop0
EINVAL /dev/loop0 configure /dev/loop1
END
[ ! -e /sys/block/loop0/loop ] || fail "a failed configure left loop0 bound"

$L /dev/loop0 configure "$f" name=hello >/dev/null || fail "configure"
assert_eq "file_name=hello" "$($L /dev/loop0 get-status | grep '^file_name=')" "legacy GET_STATUS name"
ioctls "a bound device" <<END
EBUSY /dev/loop0 configure $f
EBUSY /dev/loop0 set-fd $f
EINVAL /dev/loop0 null 0x4C05
EINVAL /dev/loop0 null 0x4C03
EFAULT /dev/loop0 raw 0x4C05 1
EFAULT /dev/loop0 raw 0x4C04 1
# CHANGE_FD needs a read-only device.
EINVAL /dev/loop0 change-fd $f
# A chain loop1 -> loop0 -> file is fine; loop0 -> loop1 would close a cycle.
OK /dev/loop1 configure /dev/loop0
EBADF /dev/loop2 configure /dev/loop2
# Old LOOP_GET_STATUS cannot report an offset beyond 2^31.
OK /dev/loop1 set-status64 offset=0x100000000
EOVERFLOW /dev/loop1 get-status
OK /dev/loop1 clr-fd
END
settle
ioctls "SET_STATUS" <<END
ENXIO /dev/loop1 clr-fd
# SET_STATUS rejects what CONFIGURE rejects.
EINVAL /dev/loop0 set-status64 encrypt_type=1
EOVERFLOW /dev/loop0 set-status64 sizelimit=0x8000000000000000
# It keeps READ_ONLY and DIRECT_IO as they are, and cannot clear PARTSCAN; it sets the name
# (here to "").
OK /dev/loop0 set-status64 flags=0x19
END
assert_eq "flags=8" "$($L /dev/loop0 get-status64 | grep '^flags=')" "flags after SET_STATUS64"
$L /dev/loop0 set-status64 flags=0 >/dev/null
assert_eq "flags=8" "$($L /dev/loop0 get-status64 | grep '^flags=')" "PARTSCAN cleared"
$L /dev/loop0 clr-fd >/dev/null
settle

# CHANGE_FD: read-only device, same size only.
ioctls "CHANGE_FD" <<END
OK /dev/loop0 configure $f file_ro=1
EINVAL /dev/loop0 change-fd $g
OK /dev/loop0 change-fd $h
END
assert_eq "$h" "$(sysfs_loop /dev/loop0 backing_file)" "backing_file after CHANGE_FD"
$L /dev/loop0 clr-fd >/dev/null
settle
expect_errno ENXIO $L /dev/loop0 change-fd "$h"
# Opened read-only without CAP_SYS_ADMIN the setters are refused with EPERM.
$L /dev/loop0 configure "$f" >/dev/null
setpriv --inh-caps=-all --bounding-set=-all $L --batch <<END || fail "EPERM without CAP_SYS_ADMIN"
EPERM /dev/loop0 set-capacity --ro
EPERM /dev/loop0 set-block-size 4096 --ro
EPERM /dev/loop0 set-direct-io 0 --ro
EPERM /dev/loop0 set-status64 flags=4 --ro
END
# A user without access to the nodes (root:disk 0660, as udev makes them for C loop) can
# neither read the backing file through the device nor reach /dev/loop-control.
nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all)
for node in /dev/loop0 /dev/loop-control; do
	out=$("${nobody[@]}" dd if="$node" of=/dev/null bs=512 count=1 2>&1) &&
		fail "an unprivileged user read $node"
	case $out in
	*"failed to open"*"Permission denied"*) ;;
	*) fail "unprivileged open of $node: expected EACCES, got: $out" ;;
	esac
done
$L /dev/loop0 clr-fd >/dev/null
