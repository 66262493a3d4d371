#!/usr/bin/env bash
# stress
# 200 attach/detach cycles (50 in make check); opening and closing an unbound device stays cheap.
. "$(dirname "$0")/../lib.sh"

load_driver
f=$(new_backing cycle.img 4M)
for i in $(seq "$(stress_count 200 50)"); do
	dev=$(losetup -f --show "$f") || fail "attach $i"
	losetup -d "$dev" || fail "detach $i"
done
settle
assert_eq "" "$(losetup -a)" "devices left"
python3 - <<'PY' || fail "open/close of an unbound device"
import os
for _ in range(5000):
    os.close(os.open("/dev/loop3", os.O_RDONLY))
PY
