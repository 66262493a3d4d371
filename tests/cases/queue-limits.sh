#!/usr/bin/env bash
# drivers: rust
# The block queue rust_loop gives a device is the C driver's: every file in
# /sys/block/loopN/queue/ and the disk attributes (size, ro, removable, capability, ...) read
# the same on both drivers, unbound and bound to ext4, xfs and tmpfs files and to a block
# device, buffered and dio, with -b 4096, -r and --sizelimit. The C values are taken in the
# same boot, so this compares against the oracle directly (and so runs once, as rust).
. "$(dirname "$0")/../lib.sh"

dir=$(mktemp -d)
tmp=$(mktemp -d)
cleanup() {
	losetup -D 2>/dev/null || true
	settle 2>/dev/null || true
	rmmod loop 2>/dev/null || true
	unload_driver 2>/dev/null || true
	umount "$tmp" 2>/dev/null || true
	rmmod brd 2>/dev/null || true
}
trap cleanup EXIT
mount -t tmpfs -o size=40M tmpfs "$tmp"
modprobe brd rd_nr=1 rd_size=16384
settle
ext4=$(new_backing limits.img 16M)
fill() { dd if=/dev/zero of="$1" bs=1M count=16 conv=notrunc status=none; }
fill "$ext4"
truncate -s 16M "$tmp/limits.img"
xfs=""
if [ -n "${SCRATCH_XFS:-}" ]; then
	xfs=$SCRATCH_XFS/limits.img
	truncate -s 16M "$xfs"
fi

# snapshot DEV NAME: "NAME: ATTR=VALUE" for every readable attribute of the disk and its
# queue (shell builtins only: a process per file takes minutes on the debug kernel).
snapshot() {
	local d=/sys/block/${1#/dev/} f v
	for f in "$d"/queue/* "$d"/{size,ro,removable,capability,ext_range,range,alignment_offset,discard_alignment,hidden}; do
		[ -f "$f" ] && [ -r "$f" ] || continue
		v=
		{ IFS= read -r v || [ -n "$v" ]; } <"$f" 2>/dev/null || v='<unreadable>'
		printf '%s: %s=%s\n' "$2" "${f#"$d"/}" "$v"
	done
}

# scenario NAME BACKING [losetup options]: one attached device's attributes.
scenario() {
	local name=$1 backing=$2 dev
	shift 2
	echo "queue-limits: $DRIVER_NOW $name" >&2
	dev=$(losetup -f --show "$@" "$backing") || fail "$name: losetup $* $backing"
	settle
	snapshot "$dev" "$name"
	losetup -d "$dev"
	settle
}

# all_scenarios: every case, on the driver loaded now.
all_scenarios() {
	snapshot /dev/loop0 unbound
	scenario ext4 "$ext4"
	scenario ext4-dio "$ext4" --direct-io=on
	scenario ext4-bs4096 "$ext4" -b 4096
	scenario ext4-bs4096-dio "$ext4" -b 4096 --direct-io=on
	scenario ext4-ro "$ext4" -r
	scenario ext4-offset-sizelimit "$ext4" -o 1048576 --sizelimit 4194304
	[ -z "$xfs" ] || scenario xfs-dio "$xfs" --direct-io=on
	scenario tmpfs "$tmp/limits.img"
	scenario tmpfs-dio "$tmp/limits.img" --direct-io=on
	scenario bdev /dev/ram0
	scenario bdev-dio /dev/ram0 --direct-io=on
}

DRIVER_NOW=c
modprobe loop
settle
all_scenarios >"$dir/c"
losetup -D
settle
rmmod loop
DRIVER_NOW=rust
load_driver
all_scenarios >"$dir/rust"
unload_driver

[ "$(grep -c 'ext4-dio: ' "$dir/c")" -gt 10 ] || fail "too few queue attributes read: $(cat "$dir/c")"
if ! diff -u "$dir/c" "$dir/rust" >"$dir/diff"; then
	cat "$dir/diff" >&2
	fail "queue or disk attributes differ from the C driver's (- C, + rust)"
fi
