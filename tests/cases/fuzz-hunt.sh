#!/usr/bin/env bash
# drivers: rust
# timed
# The fuzzer's hunting mode (tests/tools/fuzz.py --procs): four processes run random loop
# ioctls, loop-control calls, block ioctls and I/O at once on /dev/loop0-7 for
# STRESS_DURATION seconds (30 by default; `make stress DURATION=` sets it). Nothing is
# compared with C (concurrent outcomes are not deterministic): the run fails on a splat
# (the harness scans the kernel log: WARNING, BUG, KASAN, lockdep), on a hang (a process
# still running 120 s after the deadline, or the hung-task detector, armed at 60 s), and
# unless every device then detaches and the module unloads. udev runs meanwhile. Leaks are
# caught by the harness's final kmemleak scan. Prints the calls made and calls per second.
. "$(dirname "$0")/../lib.sh"

SECS=${STRESS_DURATION:-30}
PROCS=${FUZZ_PROCS:-4}
hung=/proc/sys/kernel/hung_task_timeout_secs
old_hung=$(cat "$hung" 2>/dev/null || echo "")
old_modprobe=$(cat /proc/sys/kernel/modprobe 2>/dev/null || echo "")
load_driver
cleanup() {
	[ -z "$old_hung" ] || echo "$old_hung" >"$hung"
	unload_driver >/dev/null 2>&1 || true
	drain_udev || true
	# Autoloading comes back last: a late udev probe of a removed device's node would load
	# C loop. (Left off if the unload hangs: explicit modprobe calls do not need it.)
	[ -z "$old_modprobe" ] || echo "$old_modprobe" >/proc/sys/kernel/modprobe
}
trap cleanup EXIT
settle
[ -n "$old_hung" ] && echo 60 >"$hung"
# udev runs meanwhile (its probes race with the fuzzer, as on a real system). An open of a
# node of a removed device would load C loop on demand: no module autoloading until the end.
[ -n "$old_modprobe" ] && echo >/proc/sys/kernel/modprobe
trace="${RESULTS:-/tmp}/fuzz-hunt-$DRIVER.trace"
status=0
python3 "$TESTS_DIR/tools/fuzz.py" 7 0 "$trace" --scratch "$SCRATCH" --procs "$PROCS" \
	--seconds "$SECS" || status=$?
[ "$status" = 2 ] && fail "a fuzzer process hung (stack and last calls above; $trace)"
[ "$status" = 0 ] || fail "the fuzzer failed (status $status)"
drain_udev || fail "udev did not settle after the run"
losetup -D
drain_udev || fail "udev did not settle after detaching"
left=$(losetup -a)
[ -z "$left" ] || fail "devices still bound after the run: $left"
rmmod "$(driver_module)" || fail "the module does not unload after the run"
drain_udev || true
echo "every device detached, module unloaded"
