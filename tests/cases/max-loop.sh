#!/usr/bin/env bash
# max_loop pre-creates that many devices; invalid parameters refuse the load; the parameters
# are readable (only) in /sys/module/<driver>/parameters.
. "$(dirname "$0")/../lib.sh"

load_driver
assert_eq 8 "$(cat "/sys/module/$(driver_module)/parameters/max_loop")" "default max_loop"
assert_eq 8 "$(ls /sys/block | grep -c '^loop')" "devices without max_loop"
unload_driver

load_driver max_loop=3
for i in 0 1 2; do [ -b /dev/loop$i ] || fail "loop$i missing with max_loop=3"; done
[ ! -e /sys/block/loop3 ] || fail "loop3 exists with max_loop=3"
unload_driver

load_driver max_loop=0
[ -z "$(ls /sys/block | grep '^loop' || true)" ] || fail "devices exist with max_loop=0"
[ -c /dev/loop-control ] || fail "no /dev/loop-control with max_loop=0"
unload_driver

# max_part rounds up to a power of two minus one: 1 << fls(max_part) minors per device.
load_driver max_part=5 max_loop=2
assert_eq "7:8" "$(cat /sys/block/loop1/dev)" "loop1 dev with max_part=5"
params=/sys/module/$(driver_module)/parameters
for p in max_loop max_part hw_queue_depth; do
	assert_eq 444 "$(stat -c %a "$params/$p")" "mode of $params/$p"
done
assert_eq "2 7 128" "$(cat "$params/max_loop" "$params/max_part" "$params/hw_queue_depth" |
	paste -sd ' ')" "max_loop, max_part (rounded), hw_queue_depth in sysfs"
unload_driver

if load_driver max_loop=-1 2>/dev/null; then fail "max_loop=-1 accepted"; fi
if load_driver max_part=300 2>/dev/null; then fail "max_part=300 accepted"; fi
if load_driver hw_queue_depth=0 2>/dev/null; then fail "hw_queue_depth=0 accepted"; fi
load_driver hw_queue_depth=16 max_loop=1
assert_eq 16 "$(cat /sys/block/loop0/queue/nr_requests)" "queue depth"
