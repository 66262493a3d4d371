#!/usr/bin/env bash
# Cache flushes (REQ_PREFLUSH: fsync and fdatasync of the device, a filesystem's journal
# commits) succeed whatever the offset into the backing file. A flush has no position: the
# driver must not compute one for it (rust_loop did, and failed every flush with EIO once
# the offset was 512 bytes or more). mkfs.ext4 and mount on a device at a 1 MiB offset (a
# partition inside a disk image), then fsync/fdatasync at offsets 0 to 1 MiB, buffered and
# direct I/O, with 512- and 4096-byte blocks.
. "$(dirname "$0")/../lib.sh"

load_driver
f=$(new_backing flush-offset.img 40M)
mnt=$(mktemp -d)

dev=$(losetup -o 1048576 -f --show "$f")
[ "$(cat "/sys/block/${dev#/dev/}/queue/write_cache")" = "write back" ] ||
	fail "$dev does not advertise a volatile write cache (no flushes would be sent)"
mkfs.ext4 -q -F "$dev" || fail "mkfs.ext4 on a device at offset 1 MiB"
mount "$dev" "$mnt" || fail "mount of the ext4 at offset 1 MiB"
head -c 1M /dev/urandom >/tmp/flush-offset.data
dd if=/tmp/flush-offset.data of="$mnt/data" bs=64k conv=fsync status=none ||
	fail "fsync of a file on the ext4 at offset 1 MiB"
sync -f "$mnt" || fail "syncfs of the ext4 at offset 1 MiB"
umount "$mnt"
fsck.ext4 -n -f "$dev" >/dev/null 2>&1 || fail "fsck.ext4 found errors"
mount -o ro "$dev" "$mnt"
cmp -s /tmp/flush-offset.data "$mnt/data" || fail "file data after remount"
umount "$mnt"
detach "$dev"

for bs in 512 4096; do
	for offset in 0 511 512 4096 1048576; do
		for dio in off on; do
			what="offset $offset, block size $bs, --direct-io=$dio"
			dev=$(losetup -o "$offset" -b "$bs" --direct-io="$dio" -f --show "$f") ||
				fail "losetup ($what)"
			dd if=/dev/urandom of="$dev" bs=4096 count=1 conv=fsync status=none ||
				fail "write + fsync of the device ($what)"
			dd if=/dev/urandom of="$dev" bs=4096 count=1 seek=1 conv=fdatasync status=none ||
				fail "write + fdatasync of the device ($what)"
			detach "$dev"
		done
	done
done
rm -f "$f" /tmp/flush-offset.data
