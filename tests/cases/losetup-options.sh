#!/usr/bin/env bash
# losetup -o, --sizelimit, -r, -b, -c, -D and --nooverlap.
. "$(dirname "$0")/../lib.sh"

load_driver
f=$(new_backing opts.img 16M)
head -c 1M /dev/urandom >"$SCRATCH/pat"
dd if="$SCRATCH/pat" of="$f" bs=1M seek=2 conv=notrunc status=none

dev=$(losetup -f --show -o 2M --sizelimit 4M "$f")
settle
assert_eq $((4 << 20)) "$(blockdev --getsize64 "$dev")" "size with offset and sizelimit"
assert_eq $((2 << 20)) "$(sysfs_loop "$dev" offset)" "offset"
assert_eq $((4 << 20)) "$(sysfs_loop "$dev" sizelimit)" "sizelimit"
cmp <(head -c 1M "$dev") "$SCRATCH/pat" || fail "offset window reads the wrong data"
# Writes stay inside the window.
head -c 4M /dev/zero | tr '\0' 'x' >"$SCRATCH/xs"
dd if="$SCRATCH/xs" of="$dev" bs=1M oflag=direct status=none
sync
assert_eq 0 "$(head -c 2M "$f" | tr -d '\0' | wc -c)" "bytes before the window"
assert_eq 0 "$(tail -c 10M "$f" | tr -d '\0' | wc -c)" "bytes after the window"
# --nooverlap reuses the device already set up for the same range.
assert_eq "$dev" "$(losetup -f --show --nooverlap -o 2M --sizelimit 4M "$f")" "--nooverlap reuse"
detach "$dev"

# Read-only: the block device refuses writers and the flag shows.
dev=$(losetup -f --show -r "$f")
settle
assert_eq 1 "$(cat /sys/block/${dev#/dev/}/ro)" "ro"
assert_eq 1 "$(($(echo "$($LOOPIOCTL "$dev" get-status64 --ro)" | sed -n 's/^flags=//p') & 1))" "LO_FLAGS_READ_ONLY"
if dd if=/dev/zero of="$dev" bs=4k count=1 oflag=direct status=none 2>/dev/null; then
	fail "write to a read-only device succeeded"
fi
detach "$dev"

# Block size.
dev=$(losetup -f --show -b 4096 "$f")
settle
assert_eq 4096 "$(cat /sys/block/${dev#/dev/}/queue/logical_block_size)" "logical block size"
assert_eq 4096 "$(cat /sys/block/${dev#/dev/}/queue/physical_block_size)" "physical block size"
expect_errno EINVAL $LOOPIOCTL "$dev" set-block-size 1000
expect_errno EINVAL $LOOPIOCTL "$dev" set-block-size 256
$LOOPIOCTL "$dev" set-block-size 1024 >/dev/null || fail "set-block-size 1024"
assert_eq 1024 "$(cat /sys/block/${dev#/dev/}/queue/logical_block_size)" "block size after SET_BLOCK_SIZE"
detach "$dev"

# Capacity follows the file after -c.
dev=$(losetup -f --show "$f")
truncate -s 24M "$f"
assert_eq $((16 << 20)) "$(blockdev --getsize64 "$dev")" "size before -c"
losetup -c "$dev"
assert_eq $((24 << 20)) "$(blockdev --getsize64 "$dev")" "size after -c"

# -D detaches everything.
g=$(new_backing opts2.img 8M)
losetup -f "$g"
losetup -D
settle
assert_eq "" "$(losetup -a)" "devices left after -D"
