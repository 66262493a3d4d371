#!/usr/bin/env bash
# stress
# 50 direct I/O switches (15 in make check) on a mounted device while fio writes and
# verifies: no verify error, a clean filesystem, and a backing file equal to what the device holds.
. "$(dirname "$0")/../lib.sh"

command -v fio >/dev/null || skip "fio missing"
load_driver
f=$(new_backing toggle.img 96M)
dev=$(losetup --direct-io=on -f --show "$f")
mkfs.ext4 -q "$dev"
mnt=$(mktemp -d)
mount "$dev" "$mnt"
fio --name=t --directory="$mnt" --size=24M --rw=randwrite --bs=4k --ioengine=psync \
	--verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 --randrepeat=1 \
	--loops=3 --output="$SCRATCH/fio-toggle.out" &
fio_pid=$!
for i in $(seq "$(stress_count 50 15)"); do
	losetup --direct-io=off "$dev" || fail "direct-io off ($i)"
	losetup --direct-io=on "$dev" || fail "direct-io on ($i)"
done
assert_eq 1 "$(sysfs_loop "$dev" dio)" "dio after the toggles"
wait $fio_pid || fail "fio verify failed: $(tail -n 5 "$SCRATCH/fio-toggle.out")"
umount "$mnt"
fsck.ext4 -n -f "$dev" >/dev/null 2>&1 || fail "fsck after the toggles"
sum_dev=$(dd if="$dev" bs=1M iflag=direct status=none | sha256sum)
detach "$dev"
echo 3 >/proc/sys/vm/drop_caches
assert_eq "$sum_dev" "$(sha256sum <"$f")" "backing file checksum"
