#!/usr/bin/env bash
# stress
# 50 direct I/O switches (15 in make check) on a mounted device while fio writes and
# verifies (3 passes over 24 MiB, 1 in make check): no verify error, a clean filesystem, and a
# backing file equal to what the device holds. Prints how many switches fio was still running
# for.
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
	--loops="$(stress_count 3 1)" --output="$SCRATCH/fio-toggle.out" &
fio_pid=$!
for i in $(seq "$(stress_count 50 15)"); do
	losetup --direct-io=off "$dev" || fail "direct-io off ($i)"
	losetup --direct-io=on "$dev" || fail "direct-io on ($i)"
	kill -0 $fio_pid 2>/dev/null && under_io=$i
done
echo "$i switches, the first ${under_io:-0} while fio ran"
assert_eq 1 "$(sysfs_loop "$dev" dio)" "dio after the toggles"
wait $fio_pid || fail "fio verify failed: $(tail -n 5 "$SCRATCH/fio-toggle.out")"
umount "$mnt"
fsck.ext4 -n -f "$dev" >/dev/null 2>&1 || fail "fsck after the toggles"
sum_dev=$(dd if="$dev" bs=1M iflag=direct status=none | sha256sum)
detach "$dev"
echo 3 >/proc/sys/vm/drop_caches
assert_eq "$sum_dev" "$(sha256sum <"$f")" "backing file checksum"
