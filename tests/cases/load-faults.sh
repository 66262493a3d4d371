#!/usr/bin/env bash
# Loading the driver while kernel allocations fail (failslab, armed for the loading task
# only): each load either succeeds and the driver works, or fails cleanly, leaving no disk,
# no /dev/loop-control and no module behind (and no leak: the harness's final kmemleak
# scan). Meanwhile a process keeps opening block nodes 7:0..7:3, whose probe creates disks
# as soon as major 7 is registered: a failed load must not leave such a disk behind
# (rust_loop once registered the major before /dev/loop-control, so a failure in the misc
# registration could). Random failure points, several probabilities.
. "$(dirname "$0")/../lib.sh"

FS=/sys/kernel/debug/failslab
[ -d "$FS" ] || mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
[ -d "$FS" ] || { echo "no failslab in this kernel"; exit 77; }
ROUNDS=${LOAD_FAULT_ROUNDS:-24}
nodes=$(mktemp -d)
prober=""
old_modprobe=$(cat /proc/sys/kernel/modprobe 2>/dev/null || true)
cleanup() {
	echo 0 >"$FS/probability"
	stop_prober
	rm -rf "$nodes"
	[ -z "$old_modprobe" ] || echo "$old_modprobe" >/proc/sys/kernel/modprobe
	unload_driver >/dev/null 2>&1 || true
}
# The prober opens the nodes in a loop (an open of 7:N with no driver would load C loop by
# request_module: module autoloading is off meanwhile).
start_prober() {
	(while :; do for i in 0 1 2 3; do : <"$nodes/l$i"; done 2>/dev/null; done) &
	prober=$!
}
stop_prober() {
	[ -n "$prober" ] || return 0
	kill "$prober" 2>/dev/null || true
	wait "$prober" 2>/dev/null || true
	prober=""
}
trap cleanup EXIT
for i in 0 1 2 3; do mknod "$nodes/l$i" b 7 "$i"; done
echo Y >"$FS/task-filter"
echo N >"$FS/ignore-gfp-wait"
echo 0 >"$FS/verbose"
echo 0 >"$FS/space"
echo 1 >"$FS/interval"
echo -1 >"$FS/times"
[ -z "$old_modprobe" ] || echo >/proc/sys/kernel/modprobe
f=$(new_backing load-faults.img 1M)
start_prober

# load_failing: loads the driver with every slab allocation of the loading task failing with
# the probability set; exit status that of insmod/modprobe.
load_failing() {
	local cmd
	if [ "$DRIVER" = rust ]; then cmd="insmod $RUST_LOOP_KO"; else cmd="modprobe loop"; fi
	# The subshell marks itself, then becomes the loader: only its allocations fail.
	# shellcheck disable=SC2086 # word splitting wanted
	(echo 1 >/proc/self/make-it-fail && exec $cmd) 2>/dev/null
}

loaded=0 failed=0
for round in $(seq 1 "$ROUNDS"); do
	prob=$((round % 4 == 0 ? 50 : round % 4 == 1 ? 5 : round % 4 == 2 ? 10 : 20))
	echo "$prob" >"$FS/probability"
	st=0
	load_failing || st=$?
	echo 0 >"$FS/probability"
	m=$(driver_module)
	if [ "$st" = 0 ]; then
		loaded=$((loaded + 1))
		settle
		[ -c /dev/loop-control ] || fail "round $round: loaded without /dev/loop-control"
		dev=$(losetup -f --show "$f") || fail "round $round: loaded but losetup failed"
		dd if="$dev" of=/dev/null bs=4k count=1 status=none ||
			fail "round $round: loaded but the device does not read"
		losetup -d "$dev"
		stop_prober
		unload_driver || fail "round $round: rmmod after a successful load failed"
		start_prober
	else
		failed=$((failed + 1))
		grep -q "^$m " /proc/modules && fail "round $round: insmod failed but $m is loaded"
	fi
	left=$(ls /sys/block | grep '^loop' || true)
	[ -z "$left" ] || fail "round $round (load status $st): disks left with no driver: $left"
	[ -e /sys/class/misc/loop-control ] &&
		fail "round $round (load status $st): /dev/loop-control left with no driver"
done
echo "$ROUNDS loads under failslab: $loaded succeeded, $failed failed cleanly"
[ "$failed" -gt 0 ] || fail "no load failed: the injection did not reach the loader"
[ "$loaded" -gt 0 ] || fail "no load succeeded: the driver was not exercised"
