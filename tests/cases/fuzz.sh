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
# Nothing but the fuzzer opens a loop device during a seed (udev_stop), so that every close is
# the last one (an autoclear device detaches on it) in both drivers' runs alike. (C runs
# kept an autoclear device bound for ten calls when a udev process had it open: seed 1
# call 243, seed 2 call 132.)
cleanup() {
	udev_start || true
	unload_driver >/dev/null 2>&1 || true
}
trap cleanup EXIT
load_driver
settle
status=0
for seed in $SEEDS; do
	trace="${RESULTS:-/tmp}/fuzz-$seed-$DRIVER.trace"
	udev_stop
	python3 "$TESTS_DIR/tools/fuzz.py" "$seed" "$OPS" "$trace" --scratch "$SCRATCH" ||
		fail "fuzz.py seed $seed crashed"
	udev_start || fail "udev did not settle after seed $seed"
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
