#!/usr/bin/env bash
# Lazy detach: losetup -d on a mounted device only sets autoclear; the last close detaches.
. "$(dirname "$0")/../lib.sh"

load_driver
f=$(new_backing ac.img 64M)
dev=$(losetup -f --show "$f")
mkfs.ext4 -q "$dev"
mnt=$(mktemp -d)
mount "$dev" "$mnt"
echo data >"$mnt/x"
losetup -d "$dev"
assert_eq 1 "$(sysfs_loop "$dev" autoclear)" "autoclear after lazy detach"
assert_eq data "$(cat "$mnt/x")" "file on the lazily detached device"
# The module is pinned while bound.
if rmmod "$(driver_module)" 2>/dev/null; then fail "module unloaded while bound"; fi
umount "$mnt"
settle
[ ! -e "/sys/block/${dev#/dev/}/loop" ] || fail "still bound after the last close"

# losetup --autoclear equivalent: the flag through SET_STATUS64, then last close detaches.
dev=$(losetup -f --show "$f")
# Held open, so that the ioctl tool's own close is not the last one.
exec 3<"$dev"
$LOOPIOCTL "$dev" set-status64 flags=4 >/dev/null
assert_eq 1 "$(sysfs_loop "$dev" autoclear)" "autoclear via SET_STATUS64"
exec 3<&-
settle
[ ! -e "/sys/block/${dev#/dev/}/loop" ] || fail "autoclear device still bound after close"
