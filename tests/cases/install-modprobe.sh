#!/usr/bin/env bash
# drivers: rust
# Replacing the C driver: with rust_loop.ko installed in /lib/modules/$(uname -r)/extra and
# packaging/modprobe.d/rust_loop.conf in /etc/modprobe.d, `modprobe loop` (with its options),
# the loop aliases and `modprobe -r loop` all act on rust_loop, never on loop.ko, and
# `losetup -f` gets a device served by rust_loop. Guest only: /lib/modules is virtme's tmpfs
# and /etc an overlay, both restored at the end.
. "$(dirname "$0")/../lib.sh"

REPO=$(cd "$TESTS_DIR/.." && pwd)
kver=$(uname -r)
mods=/lib/modules/$kver
orig=$(readlink "$mods") || skip "$mods is not virtme's module link"
conf=/etc/modprobe.d/rust_loop.conf

cleanup() {
	[ -z "${dev:-}" ] || losetup -d "$dev" 2>/dev/null || true
	exec 3<&- 2>/dev/null || true
	unload_driver >/dev/null 2>&1 || true
	rmmod loop 2>/dev/null || true
	rm -f "$conf"
	if [ ! -L "$mods" ]; then
		rm -rf "$mods"
		ln -s "$orig" "$mods"
	fi
}
trap cleanup EXIT

# A writable copy of the module tree (small: the test modules), plus rust_loop in extra/.
rm "$mods"
mkdir -p "$mods/extra"
cp -rL "$orig/kernel" "$orig"/modules.builtin* "$orig/modules.order" "$mods/"
cp "$RUST_LOOP_KO" "$mods/extra/rust_loop.ko"
depmod -a "$kver"
cp "$REPO/packaging/modprobe.d/rust_loop.conf" "$conf"

# Both modules declare the loop aliases; with loop's blacklisted they load rust_loop only.
for alias in block-major-7-0 char-major-10-237; do
	got=$(modprobe -n -v "$alias" | sed -n 's|^insmod .*/\([^/ ]*\)\.ko.*|\1|p' | paste -sd ' ')
	assert_eq rust_loop "$got" "modules modprobe $alias would load"
done

loaded() { grep -q "^$1 " /proc/modules; }

modprobe loop max_loop=3
loaded rust_loop || fail "modprobe loop did not load rust_loop"
! loaded loop || fail "modprobe loop loaded the C loop driver"
assert_eq 3 "$(cat /sys/module/rust_loop/parameters/max_loop)" "max_loop passed through"
grep -qx ' *7 loop' /proc/devices || fail "/proc/devices has no '7 loop'"

f=$(new_backing install.img 16M)
dev=$(losetup -f --show "$f")
settle
assert_eq "$f" "$(sysfs_loop "$dev" backing_file)" "backing file"
# Opening the disk pins the module of its block_device_operations: rust_loop's.
before=$(cat /sys/module/rust_loop/refcnt)
exec 3<"$dev"
after=$(cat /sys/module/rust_loop/refcnt)
exec 3<&-
[ "$after" -gt "$before" ] || fail "opening $dev did not pin rust_loop (refcnt $before -> $after)"
dd if=/dev/urandom of="$dev" bs=64k count=16 status=none oflag=direct
cmp -n 1M "$dev" "$f" || fail "data through $dev differs from the backing file"
detach "$dev"
dev=

modprobe -r loop
! loaded rust_loop || fail "modprobe -r loop left rust_loop loaded"

# Autoloading through the aliases, as opening /dev/loop-control does.
modprobe char-major-10-237
loaded rust_loop || fail "modprobe char-major-10-237 did not load rust_loop"
! loaded loop || fail "the alias loaded the C loop driver"
dev=$(losetup -f --show "$f")
detach "$dev"
dev=
rmmod rust_loop
