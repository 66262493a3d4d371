#!/usr/bin/env bash
# timed
# The differential fuzzer (tests/tools/fuzz.py): fixed seeds of random LOOP_*, LOOP_CTL_*
# and block ioctls with boundary arguments, and I/O, on four devices. The C oracle runs
# first and leaves its traces in $RESULTS; the rust_loop run must produce the same lines
# (results, errnos, GET_STATUS fields). Any difference is printed and fails the test (a
# finding: ours, or C's, decided against loop.c). FUZZ_OPS and FUZZ_SEEDS change the amount;
# with STRESS_DURATION (make stress), seeds 1..N run, N chosen for about that many seconds
# per driver (a seed of 300 calls takes about 16 s on the debug kernel).
. "$(dirname "$0")/../lib.sh"

OPS=${FUZZ_OPS:-300}
SEEDS=${FUZZ_SEEDS:-"1 2 3"}
if [ -n "${STRESS_DURATION:-}" ] && [ -z "${FUZZ_SEEDS:-}" ]; then
	SEEDS=$(seq 1 $((STRESS_DURATION / 16 > 3 ? STRESS_DURATION / 16 : 3)))
fi
load_driver
udev_paused=0
cleanup() {
	[ "$udev_paused" = 1 ] && udevadm control --start-exec-queue
	unload_driver >/dev/null 2>&1 || true
}
trap cleanup EXIT
settle
# No udev worker holds a device open meanwhile, so every close is the last one.
udevadm control --stop-exec-queue 2>/dev/null && udev_paused=1
status=0
for seed in $SEEDS; do
	trace="${RESULTS:-/tmp}/fuzz-$seed-$DRIVER.trace"
	python3 "$TESTS_DIR/tools/fuzz.py" "$seed" "$OPS" "$trace" --scratch "$SCRATCH" ||
		fail "fuzz.py seed $seed crashed"
	# udev handles this seed's events now (every device is unbound again), so that its queue
	# stays short however many seeds run; paused again for the next seed.
	if [ "$udev_paused" = 1 ]; then
		udevadm control --start-exec-queue
		drain_udev || fail "udev did not settle after seed $seed"
		udevadm control --stop-exec-queue
	fi
	oracle="${RESULTS:-/tmp}/fuzz-$seed-c.trace"
	if [ "$DRIVER" = rust ] && [ -f "$oracle" ]; then
		if ! diff -u "$oracle" "$trace" >"$trace.diff"; then
			echo "seed $seed: rust_loop differs from C loop:"
			head -n 40 "$trace.diff"
			status=1
		else
			echo "seed $seed: $OPS calls, same results as C loop"
		fi
	else
		echo "seed $seed: $OPS calls"
	fi
done
n=$(echo "$SEEDS" | wc -w)
echo "$n seeds, $((n * OPS)) calls"
[ "$status" = 0 ] || fail "rust_loop and C loop differ (see above)"
