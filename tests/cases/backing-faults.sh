#!/usr/bin/env bash
# Faults in the backing store reach the requester as errors, and the device keeps working:
# - a full backing filesystem: writes fail (ENOSPC or EIO), and succeed again once space is
#   freed; data written before is intact (as C, a request the file takes only part of
#   completes: the write that follows it fails);
# - the backing file truncated while attached: reads past its new end fail with EIO (C's
#   zero-fill and error), reads before it still work.
# Buffered and with direct I/O.
. "$(dirname "$0")/../lib.sh"

load_driver
mnt=$(mktemp -d)
fs=""
cleanup() {
	losetup -D 2>/dev/null || true
	umount "$mnt" 2>/dev/null || true
	unload_driver >/dev/null 2>&1 || true
}
trap cleanup EXIT

img=$(new_backing faults-fs.img 32M)
mkfs.ext4 -q -F -m 0 "$img"
fs=$(losetup -f --show "$img")
mount "$fs" "$mnt"
for dio in off on; do
	echo "full backing filesystem, direct I/O $dio"
	rm -f "$mnt"/*.img "$mnt/filler"
	truncate -s 64M "$mnt/big.img"
	dd if=/dev/zero of="$mnt/filler" bs=1M count=4 status=none
	dev=$(losetup -f --show --direct-io=$dio "$mnt/big.img")
	head -c 1M /dev/urandom >first.bin
	dd if=first.bin of="$dev" bs=1M oflag=direct conv=fsync status=none ||
		fail "the first MiB did not fit"
	if dd if=/dev/urandom of="$dev" bs=1M seek=1 count=48 oflag=direct conv=fsync \
		status=none 2>err.txt; then
		fail "48 MiB written to a backing filesystem with less room"
	fi
	grep -q -E 'No space left|Input/output error' err.txt || fail "error: $(cat err.txt)"
	rm -f "$mnt/filler"
	sync
	head -c 1M /dev/urandom >again.bin
	dd if=again.bin of="$dev" bs=1M seek=60 oflag=direct conv=fsync status=none ||
		fail "a write after freeing space failed"
	cmp <(dd if="$dev" bs=1M count=1 iflag=direct status=none) first.bin ||
		fail "data written before the fault changed"
	cmp <(dd if="$dev" bs=1M skip=60 count=1 iflag=direct status=none) again.bin ||
		fail "data written after the fault is wrong"
	detach "$dev"

	echo "backing file truncated while attached, direct I/O $dio"
	truncate -s 4M "$mnt/t.img"
	dev=$(losetup -f --show --direct-io=$dio "$mnt/t.img")
	truncate -s 1M "$mnt/t.img"
	dd if="$dev" of=/dev/null bs=4096 count=1 iflag=direct status=none ||
		fail "a read before the new end failed"
	if dd if="$dev" of=/dev/null bs=4096 skip=512 count=1 iflag=direct status=none \
		2>/dev/null; then
		fail "a read past the truncated end succeeded"
	fi
	detach "$dev"
done
umount "$mnt"
