#!/usr/bin/env bash
# drivers: rust
# A discard the backing file refuses (EOPNOTSUPP: vfat's fallocate punches no holes) makes
# the worker stop advertising discard, which needs the queue-limits lock; LOOP_SET_BLOCK_SIZE
# holds that lock while it freezes the queue, waiting for the worker's request. C loop 7.3
# can deadlock there (an intended difference: rust_loop's worker only tries the lock).
# Races the two for a while; a hang fails.
. "$(dirname "$0")/../lib.sh"

SECONDS_TO_RACE=${LIMITS_RACE_SECONDS:-20}
load_driver
mnt=$(mktemp -d)
fs=""
b=""
cleanup() {
	[ -n "$b" ] && losetup -d "$b" 2>/dev/null
	umount "$mnt" 2>/dev/null || true
	[ -n "$fs" ] && losetup -d "$fs" 2>/dev/null
	unload_driver >/dev/null 2>&1 || true
}
trap cleanup EXIT

img=$(new_backing limits-vfat.img 64M)
mkfs.vfat "$img" >/dev/null
fs=$(losetup -f --show "$img")
mount -t vfat "$fs" "$mnt"
dd if=/dev/zero of="$mnt/b.img" bs=1M count=8 status=none
b=$(losetup -f --show "$mnt/b.img")
settle
# The device advertises discard (vfat has fallocate) until the first one fails.
[ "$(cat /sys/block/${b#/dev/}/queue/discard_max_bytes)" != 0 ] || fail "no discard advertised"
out=$(python3 "$TESTS_DIR/tools/limits_race.py" "$b" "$SECONDS_TO_RACE") || fail "$out"
echo "$out"
