#!/usr/bin/env bash
# stress
# 50 load/unload cycles (12 in make check) leave no device behind; the runner checks dmesg
# and kmemleak.
. "$(dirname "$0")/../lib.sh"

for i in $(seq "$(stress_count 50 12)"); do
	load_driver
	[ -b /dev/loop7 ] || fail "cycle $i: /dev/loop7 missing"
	unload_driver
	[ ! -e /sys/block/loop0 ] || fail "cycle $i: loop0 left after unload"
done
