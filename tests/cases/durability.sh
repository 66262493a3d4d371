#!/usr/bin/env bash
# A FUA write (O_DSYNC on the device) returns only once its data is durable on the backing
# disk, with buffered and with direct I/O. The scratch disk has a volatile write cache, so
# durability costs a cache flush, which its flush counter shows; in buffered mode the data
# must also already be on the disk itself (read past every cache) when the write returns. A
# plain write is the control: in buffered mode its data is only in the page cache.
# rust_loop only: a backing file opened O_DSYNC makes every write durable (C loop drops the
# file's O_DSYNC: its kiocbs have ki_flags 0 or IOCB_DIRECT).
. "$(dirname "$0")/../lib.sh"

[ -n "${SCRATCH_DISK:-}" ] && mountpoint -q "$SCRATCH" || skip "needs the scratch disk"
disk=$(basename "$SCRATCH_DISK")
[ "$(cat "/sys/block/$disk/queue/write_cache")" = "write back" ] ||
	skip "the scratch disk has no volatile write cache"

load_driver
f="$SCRATCH/durability.img"
rm -f "$f"
dd if=/dev/zero of="$f" bs=1M count=4 conv=fsync status=none
phys=$(disk_offset "$f")
head -c 4096 /dev/urandom >/tmp/pattern
blk=0

# write_and_check DEV WHAT OFLAG DURABLE: writes the pattern to a fresh block of DEV with dd
# oflag=OFLAG; DURABLE=1: the write must have flushed the disk's cache and put the data on
# the disk; DURABLE=0: the data on the disk only if DEV does direct I/O.
write_and_check() {
	local dev=$1 what=$2 oflag=$3 durable=$4 before after on_disk=0 dio
	dio=$(sysfs_loop "$dev" dio)
	blk=$((blk + 1))
	sync
	before=$(disk_flushes "$disk")
	dd if=/tmp/pattern of="$dev" bs=4096 seek=$blk oflag="$oflag" conv=notrunc status=none
	after=$(disk_flushes "$disk")
	cmp -s /tmp/pattern <(dd if="$SCRATCH_DISK" bs=4096 skip=$((phys / 4096 + blk)) count=1 \
		iflag=direct status=none) && on_disk=1
	if [ "$durable" = 1 ]; then
		[ "$after" -gt "$before" ] || fail "$what (dio=$dio) returned before a cache flush"
		assert_eq 1 "$on_disk" "$what (dio=$dio): data on the disk"
	else
		# No flush assertion here: ext4's periodic journal commit may flush at any time.
		assert_eq "$dio" "$on_disk" "$what (dio=$dio): data on the disk"
	fi
}

for mode in off on; do
	dev=$(losetup -f --show --direct-io="$mode" "$f")
	assert_eq "$([ $mode = on ] && echo 1 || echo 0)" "$(sysfs_loop "$dev" dio)" "dio=$mode"
	settle
	write_and_check "$dev" "a plain write" direct 0
	write_and_check "$dev" "a FUA write" direct,dsync 1
	detach "$dev"

	[ "$DRIVER" = rust ] || continue
	flags=0
	[ "$mode" = on ] && flags=16 # LO_FLAGS_DIRECT_IO
	dev=$(losetup -f)
	$LOOPIOCTL "$dev" configure "$f" dsync=1 flags=$flags >/dev/null
	settle
	write_and_check "$dev" "a write to an O_DSYNC backing file" direct 1
	detach "$dev"
done
