#!/usr/bin/env bash
# Stock losetup: attach, list (-l, -J, -j), sysfs loop/ attributes, data both ways, detach.
. "$(dirname "$0")/../lib.sh"

load_driver
f=$(new_backing basic.img 32M)
dev=$(losetup -f --show "$f")
assert_eq /dev/loop0 "$dev" "first free device"
settle
assert_eq "$f" "$(sysfs_loop "$dev" backing_file)" "backing_file"
assert_eq 0 "$(sysfs_loop "$dev" offset)" "offset"
assert_eq 0 "$(sysfs_loop "$dev" sizelimit)" "sizelimit"
assert_eq 0 "$(sysfs_loop "$dev" autoclear)" "autoclear"
assert_eq 0 "$(sysfs_loop "$dev" partscan)" "partscan"
assert_eq 0 "$(sysfs_loop "$dev" dio)" "dio"
assert_eq $((32 << 20)) "$(blockdev --getsize64 "$dev")" "size"
assert_eq 0 "$(cat /sys/block/loop0/ro)" "ro"
assert_eq 512 "$(cat /sys/block/loop0/queue/logical_block_size)" "logical block size"
losetup -l "$dev" | grep -q "$f" || fail "losetup -l does not list $f"
losetup -J | python3 -c '
import json, sys
d = json.load(sys.stdin)["loopdevices"]
assert len(d) == 1 and d[0]["name"] == "/dev/loop0", d
assert d[0]["back-file"] == sys.argv[1], d
' "$f" || fail "losetup -J output"
assert_eq "$dev" "$(losetup -j "$f" | cut -d: -f1)" "losetup -j"
# GET_STATUS64 identifies the file like stat(2) does (util-linux relies on it).
st=$($LOOPIOCTL "$dev" get-status64)
assert_eq "inode=$(stat -c %i "$f")" "$(echo "$st" | grep '^inode=')" "lo_inode"
maj=$((0x$(stat -c %D "$f") >> 8)) min=$((0x$(stat -c %D "$f") & 0xff))
assert_eq "device=$(((maj << 8) | min))" "$(echo "$st" | grep '^device=')" "lo_device"
assert_eq "file_name=$f" "$(echo "$st" | grep '^file_name=')" "lo_file_name"

# Through the device into the file, and back.
head -c 4M /dev/urandom >"$SCRATCH/a"
dd if="$SCRATCH/a" of="$dev" bs=64k seek=3 oflag=direct status=none
sync
cmp <(dd if="$f" bs=64k skip=3 count=64 status=none) "$SCRATCH/a" || fail "file differs from what was written to the device"
head -c 1M /dev/urandom >"$SCRATCH/b"
dd if="$SCRATCH/b" of="$f" bs=1M seek=20 conv=notrunc status=none
sync
cmp <(dd if="$dev" bs=1M skip=20 count=1 iflag=direct status=none) "$SCRATCH/b" || fail "device differs from what was written to the file"

detach "$dev"
[ ! -e /sys/block/loop0/loop ] || fail "loop/ still there after detach"
assert_eq 0 "$(blockdev --getsize64 /dev/loop0)" "size after detach"
