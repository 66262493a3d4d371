#!/usr/bin/env bash
# drivers: rust
# rust_loop says why direct I/O was refused: loop/dio_reason and one kernel log line.
. "$(dirname "$0")/../lib.sh"

load_driver
modprobe scsi_debug sector_size=4096 dev_size_mb=16
settle
sd=$(ls /sys/bus/pseudo/drivers/scsi_debug/adapter*/host*/target*/*/block/ | head -n 1)
trap 'losetup -D || true; settle || true; unload_driver || true; rmmod scsi_debug || true' EXIT
dev=$(losetup --direct-io=on -f --show -o 512 "/dev/$sd")
settle
assert_eq 0 "$(sysfs_loop "$dev" dio)" "dio"
assert_eq "offset 512 not aligned to 4096" "$(sysfs_loop "$dev" dio_reason)" "dio_reason"
dmesg | grep -q "loop${dev#/dev/loop}: direct I/O not used: offset 512 not aligned to 4096" ||
	fail "no kernel log line"
expect_errno EINVAL $LOOPIOCTL "$dev" set-direct-io 1
detach "$dev"
dev=$(losetup --direct-io=on -f --show "/dev/$sd")
assert_eq none "$(sysfs_loop "$dev" dio_reason)" "dio_reason when used"
detach "$dev"
