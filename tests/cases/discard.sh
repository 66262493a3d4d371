#!/usr/bin/env bash
# DISCARD punches holes and WRITE_ZEROES writes zeroes, both read back as zeroes.
. "$(dirname "$0")/../lib.sh"

load_driver
f=$(new_backing discard.img 16M)
dev=$(losetup -f --show "$f")
settle
q=/sys/block/${dev#/dev/}/queue
[ "$(cat $q/discard_max_bytes)" -gt 0 ] || fail "no discard on a file on $(stat -f -c %T "$f")"
dd if=/dev/urandom of="$dev" bs=1M count=16 oflag=direct status=none
sync
before=$(du -k "$f" | cut -f1)
blkdiscard -o 4M -l 8M "$dev"
assert_eq 0 "$(dd if="$dev" bs=1M skip=4 count=8 iflag=direct status=none | tr -d '\0' | wc -c)" "nonzero bytes after discard"
[ "$(du -k "$f" | cut -f1)" -lt "$before" ] || fail "discard did not free space in the file"
blkdiscard -z -o 0 -l 2M "$dev"
assert_eq 0 "$(dd if="$dev" bs=1M count=2 iflag=direct status=none | tr -d '\0' | wc -c)" "nonzero bytes after write zeroes"
[ "$(dd if="$dev" bs=1M skip=2 count=2 iflag=direct status=none | tr -d '\0' | wc -c)" -gt 0 ] ||
	fail "write zeroes went past its range"
detach "$dev"
