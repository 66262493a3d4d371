#!/usr/bin/env bash
# fio with crc32c verification, buffered and O_DIRECT, block sizes from 512 to 1M; the file
# holds exactly what went through the device.
. "$(dirname "$0")/../lib.sh"

command -v fio >/dev/null || skip "fio missing"
load_driver
f=$(new_backing fio.img 32M)
dev=$(losetup -f --show "$f")
for direct in 0 1; do
	for bs in 512 4k 64k 1M; do
		# Small blocks cover less, or this takes minutes on the emulated debug kernel.
		size=$([ $bs = 512 ] && echo 1M || echo 4M)
		fio --name=v --filename="$dev" --ioengine=libaio --iodepth=16 --direct=$direct \
			--rw=randwrite --bs=$bs --size=$size --offset=$((direct * 16))M \
			--verify=crc32c --verify_fatal=1 --do_verify=1 --randrepeat=1 \
			--verify_state_save=0 \
			--output=/dev/null || fail "fio verify direct=$direct bs=$bs"
	done
done
sum_dev=$(sha256sum <"$dev")
detach "$dev"
echo 3 >/proc/sys/vm/drop_caches
assert_eq "$sum_dev" "$(sha256sum <"$f")" "file checksum vs device checksum"
