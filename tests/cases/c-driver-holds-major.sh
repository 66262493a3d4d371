#!/usr/bin/env bash
# drivers: rust
# With the C loop driver loaded, rust_loop refuses to load, says why, and leaves no trace.
. "$(dirname "$0")/../lib.sh"

trap 'rmmod rust_loop 2>/dev/null || true; rmmod loop 2>/dev/null || true' EXIT
modprobe loop
if insmod "$RUST_LOOP_KO" 2>/dev/null; then
	fail "rust_loop loaded while the C loop driver holds major 7"
fi
dmesg | grep -q 'is the C loop driver loaded' || fail "no clear error in the kernel log"
grep -q '^rust_loop ' /proc/modules && fail "rust_loop is loaded"
rmmod loop
# And it loads fine afterwards.
insmod "$RUST_LOOP_KO"
rmmod rust_loop
