#!/usr/bin/env bash
# stress
# Loading the driver while one kernel allocation fails, at each position in turn of the
# module's init (and a few of the loader's), through failslab's /proc/thread-self/fail-nth
# (tests/tools/load_faults.py): each load either succeeds, with /dev/loop-control, or fails
# and leaves no module, no /dev/loop-control and no disk behind (leaks: the harness's final
# kmemleak scan). Meanwhile a process keeps opening block nodes 7:0..7:3, whose probe
# creates disks as soon as major 7 is registered: a failed load must not leave such a disk
# behind (rust_loop once registered the major before /dev/loop-control, so a failure in the
# misc registration could).
. "$(dirname "$0")/../lib.sh"

FS=/sys/kernel/debug/failslab
[ -d "$FS" ] || mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
[ -d "$FS" ] || skip "no failslab in this kernel"
nodes=$(mktemp -d)
prober=""
old_modprobe=$(cat /proc/sys/kernel/modprobe 2>/dev/null || true)
saved=$(for a in verbose ignore-gfp-wait; do printf '%s=%s\n' "$a" "$(cat "$FS/$a")"; done)
# rust_loop's KUnit suites run at load, in the loading task: their allocations would fail
# too (a "not ok" fails the run). No suite matches this glob; "*.*" is the default again.
glob=/sys/module/kunit/parameters/filter_glob
cleanup() {
	[ -z "$prober" ] || kill "$prober" 2>/dev/null || true
	wait 2>/dev/null || true
	printf '%s\n' "$saved" | while IFS== read -r a v; do echo "$v" >"$FS/$a" || true; done
	[ ! -w "$glob" ] || echo '*.*' >"$glob"
	rm -rf "$nodes"
	unload_driver >/dev/null 2>&1 || true
	[ -z "$old_modprobe" ] || echo "$old_modprobe" >/proc/sys/kernel/modprobe
}
trap cleanup EXIT
[ ! -w "$glob" ] || echo rust_loop_load_faults_none >"$glob"
echo N >"$FS/ignore-gfp-wait"
echo 0 >"$FS/verbose"
# An open of 7:N with no driver would load C loop on demand: no autoloading meanwhile.
[ -z "$old_modprobe" ] || echo >/proc/sys/kernel/modprobe
for i in 0 1 2 3; do mknod "$nodes/l$i" b 7 "$i"; done
# (Opens fail while no driver is loaded: the prober does not stop at an error.)
(
	set +e
	while :; do for i in 0 1 2 3; do : <"$nodes/l$i"; done 2>/dev/null; done
) &
prober=$!

if [ "$DRIVER" = rust ]; then ko=$RUST_LOOP_KO; else ko=$(modinfo -n loop); fi
python3 "$TESTS_DIR/tools/load_faults.py" "$ko" "$(driver_module)" ||
	fail "a load under an allocation failure left something behind (see above)"
# A failed allocation of the loader's vmalloc or execmem is reported with a stack trace
# (warn_alloc), and kmemleak says when it cannot track an object: those are expected here.
# Anything else is a splat, and fails the test; then the expected reports are cleared, so
# that the harness's check of the kernel log sees only what follows.
log=$(dmesg -c)
splat=$(printf '%s\n' "$log" | awk '
	/vmalloc error|page allocation failure|execmem: unable|Failed to allocate|kmemleak: Cannot allocate/ { alloc = NR }
	/BUG:|WARNING:|Oops|KASAN|circular locking|suspicious RCU|general protection|ASSERTION FAILED/ { print; next }
	/Call Trace/ && NR - alloc > 8 { print }
	/kmemleak/ && !/Cannot allocate a scan area/ { print }')
[ -z "$splat" ] || { printf '%s\n' "$log"; fail "kernel log: $splat"; }
