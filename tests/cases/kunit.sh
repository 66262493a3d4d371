#!/usr/bin/env bash
# drivers: rust
# The driver's KUnit suites (the pure policy, the user API conversions, the device-number
# helpers), which the module loader runs at insmod: every case passes and at least 30 run.
# Each case is counted in make check's summary (one "PASS kunit/SUITE.CASE" line each).
. "$(dirname "$0")/../lib.sh"

MIN_CASES=30
load_driver
unload_driver
# Cases are one level deeper than their suite: "    ok N name" after "    # Subtest: suite".
results=$(dmesg | sed 's/^\[[^]]*\] //' | awk '
	/^    # Subtest: / { suite = $3 }
	/^    (not )?ok [0-9]+ / {
		ok = ($1 == "ok"); name = ok ? $3 : $4
		print (ok ? "PASS" : "FAIL") " kunit/" suite "." name
	}')
[ -n "${CASES:-}" ] && printf '%s\n' "$results" >"$CASES"
printf '%s\n' "$results"
for suite in rust_loop_policy rust_loop_uapi rust_loop_sys; do
	grep -q "^PASS kunit/$suite\." <<<"$results" || fail "suite $suite did not run"
done
n=$(grep -c '^PASS ' <<<"$results" || true)
if grep -q '^FAIL ' <<<"$results"; then
	fail "KUnit cases failed: $(grep '^FAIL ' <<<"$results" | tr '\n' ' ')"
fi
[ "$n" -ge "$MIN_CASES" ] || fail "only $n KUnit cases ran (want at least $MIN_CASES)"
echo "$n KUnit cases passed"
