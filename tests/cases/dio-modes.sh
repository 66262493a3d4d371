#!/usr/bin/env bash
# losetup --direct-io=on on ext4, xfs, tmpfs and a 4 KiB-sector device, and the refused
# cases (offset 512 and -b 512 on 4 KiB backing): sysfs dio and losetup's DIO column.
. "$(dirname "$0")/../lib.sh"

[ -n "${SCRATCH_XFS:-}" ] || skip "no xfs scratch filesystem"
load_driver
modprobe scsi_debug sector_size=4096 dev_size_mb=32
settle
sd=$(ls /sys/bus/pseudo/drivers/scsi_debug/adapter*/host*/target*/*/block/ | head -n 1)
[ -b "/dev/$sd" ] || fail "no scsi_debug disk"
trap 'losetup -D || true; settle || true; unload_driver || true; rmmod scsi_debug || true' EXIT
tmp=$(mktemp -d)
mount -t tmpfs -o size=40M tmpfs "$tmp"

# check NAME BACKING EXPECTED_DIO EXPECTED_BLOCK_SIZE [losetup options]
check() {
	local name=$1 backing=$2 want=$3 want_bs=$4 dev
	shift 4
	dev=$(losetup --direct-io=on -f --show "$@" "$backing") || fail "$name: losetup"
	settle
	assert_eq "$want" "$(sysfs_loop "$dev" dio)" "$name: sysfs dio"
	assert_eq "$want" "$(losetup -n -l -O DIO "$dev" | tr -d ' ')" "$name: losetup DIO"
	assert_eq "$want_bs" "$(cat /sys/block/${dev#/dev/}/queue/logical_block_size)" "$name: block size"
	detach "$dev"
}
check ext4 "$(new_backing dio.img 8M)" 1 512
truncate -s 8M "$SCRATCH_XFS/dio.img"
check xfs "$SCRATCH_XFS/dio.img" 1 512
truncate -s 8M "$tmp/dio.img"
check tmpfs "$tmp/dio.img" 1 512
check 4k-device "/dev/$sd" 1 4096
check 4k-device-offset-512 "/dev/$sd" 0 4096 -o 512
check 4k-device-bs-512 "/dev/$sd" 0 512 -b 512
umount "$tmp"
