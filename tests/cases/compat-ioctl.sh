#!/usr/bin/env bash
# The 32-bit compat ioctls (struct compat_loop_info) from a 32-bit program.
. "$(dirname "$0")/../lib.sh"

[ -x "${COMPAT32:-}" ] || skip "no 32-bit test program"
load_driver
f=$(new_backing compat.img 8M)
dev=$(losetup -f --show "$f")
exec 3<"$dev"
out=$("$COMPAT32" "$dev" 2>&1) || fail "compat32: $out"
assert_eq 4096 "$(sysfs_loop "$dev" offset)" "offset set through the compat ioctl"
exec 3<&-
