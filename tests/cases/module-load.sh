#!/usr/bin/env bash
# Loading registers block major 7 as "loop", /dev/loop-control (misc 10:237) and max_loop
# disks loop0..7 of size 0; unloading removes all of it.
. "$(dirname "$0")/../lib.sh"

load_driver
grep -qx ' *7 loop' /proc/devices || fail "/proc/devices has no '7 loop'"
[ -c /dev/loop-control ] || fail "/dev/loop-control missing"
assert_eq "a,ed" "$(stat -c '%t,%T' /dev/loop-control)" "loop-control major,minor (hex)"
for i in 0 1 2 3 4 5 6 7; do
	[ -b /dev/loop$i ] || fail "/dev/loop$i missing"
	assert_eq "7:$i" "$(cat /sys/block/loop$i/dev)" "loop$i dev"
	assert_eq 0 "$(cat /sys/block/loop$i/size)" "loop$i size"
done
[ ! -e /sys/block/loop8 ] || fail "loop8 exists with max_loop=8"
# Unbound devices have no loop/ attributes (util-linux's test for "in use").
[ ! -e /sys/block/loop0/loop ] || fail "unbound loop0 has a loop/ directory"
assert_eq 128 "$(cat /sys/block/loop0/queue/nr_requests)" "queue depth"
unload_driver
! grep -q ' loop$' /proc/devices || fail "major 7 still registered after unload"
[ -z "$(ls /sys/block | grep '^loop' || true)" ] || fail "loop disks left after unload"
