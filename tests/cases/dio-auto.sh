#!/usr/bin/env bash
# drivers: rust
# Module parameter dio=auto (not in C loop; the default dio=off behaves as C): every attach
# turns direct I/O on where the backing file passes the ahead-of-time rules with the block
# size the device gets anyway, and otherwise attaches buffered, with the reason in
# loop/dio_reason and one log line. Never a per-I/O fallback; LOOP_GET_STATUS64 (losetup's
# DIO column) tells the truth; a later `losetup --direct-io=off` wins. Cases: ext4, xfs and
# tmpfs (on), ramfs (no O_DIRECT: off), a misaligned offset (off), a 4 KiB-sector disk
# with the default 512-byte blocks (off: the Qubes case, whose filesystems are made for
# 512) and with -b 4096 (on); LOOP_SET_FD; an explicit --direct-io=on.
. "$(dirname "$0")/../lib.sh"

[ -n "${SCRATCH_XFS:-}" ] || skip "no xfs scratch filesystem"
params=/sys/module/rust_loop/parameters/dio
tmp=$(mktemp -d) ram=$(mktemp -d)
cleanup() {
	losetup -D 2>/dev/null || true
	umount "$tmp" "$ram" 2>/dev/null || true
	unload_driver >/dev/null 2>&1 || true
	rmmod scsi_debug 2>/dev/null || true
}
trap cleanup EXIT

# A bad value is refused at load, by the parameter's parser.
echo "dio-auto: bogus" >/dev/kmsg
if insmod "$RUST_LOOP_KO" dio=bogus 2>/dev/null; then fail "dio=bogus was accepted"; fi
log=$(dmesg | sed -n '/dio-auto: bogus/,$p')
grep -q "\`bogus' invalid for parameter \`dio'" <<<"$log" ||
	fail "dio=bogus: no parser error in the kernel log"
load_driver
assert_eq off "$(cat $params)" "default dio parameter"
f=$(new_backing auto.img 8M)
dev=$(losetup -f --show "$f")
assert_eq 0 "$(sysfs_loop "$dev" dio)" "dio=off: ext4 attach (as C)"
detach "$dev"
unload_driver

modprobe scsi_debug sector_size=4096 dev_size_mb=32 || fail "modprobe scsi_debug"
settle
sd=$(ls /sys/bus/pseudo/drivers/scsi_debug/adapter*/host*/target*/*/block/ 2>/dev/null |
	head -n 1 || true)
[ -n "$sd" ] && [ -b "/dev/$sd" ] || fail "no scsi_debug disk"
mount -t tmpfs -o size=40M tmpfs "$tmp"
mount -t ramfs ramfs "$ram"
load_driver dio=auto
assert_eq auto "$(cat $params)" "dio parameter"
# (The harness reads the kernel log after the test: mark where this part starts.)
echo "dio-auto: attaches" >/dev/kmsg

# status_dio DEV: LO_FLAGS_DIRECT_IO (16) of LOOP_GET_STATUS64, 0 or 1.
status_dio() {
	local flags
	flags=$($LOOPIOCTL "$1" get-status64 | sed -n 's/^flags=//p')
	echo $(((flags >> 4) & 1))
}

# check NAME BACKING WANT_DIO WANT_BLOCK_SIZE WANT_REASON [losetup options]: attach without
# asking for direct I/O; the mode, block size and reason; data written reads back.
check() {
	local name=$1 backing=$2 want=$3 want_bs=$4 reason=$5 dev
	shift 5
	dev=$(losetup -f --show "$@" "$backing") || fail "$name: losetup"
	settle
	assert_eq "$want" "$(sysfs_loop "$dev" dio)" "$name: sysfs dio"
	assert_eq "$want" "$(status_dio "$dev")" "$name: LOOP_GET_STATUS64 DIRECT_IO"
	assert_eq "$want_bs" "$(cat "/sys/block/${dev#/dev/}/queue/logical_block_size")" \
		"$name: block size"
	assert_eq "$reason" "$(sysfs_loop "$dev" dio_reason)" "$name: dio_reason"
	head -c 1M /dev/urandom >"$SCRATCH/auto.data"
	dd if="$SCRATCH/auto.data" of="$dev" bs=64k oflag=direct conv=fsync status=none ||
		fail "$name: write"
	cmp -n 1048576 "$SCRATCH/auto.data" "$dev" || fail "$name: data read back differs"
	detach "$dev"
	echo "$name: dio $want, block size $want_bs, reason: $reason"
}
check ext4 "$(new_backing auto.img 8M)" 1 512 none
truncate -s 8M "$SCRATCH_XFS/auto.img"
check xfs "$SCRATCH_XFS/auto.img" 1 512 none
truncate -s 8M "$tmp/auto.img"
check tmpfs "$tmp/auto.img" 1 512 none
truncate -s 8M "$ram/auto.img"
check ramfs "$ram/auto.img" 0 512 "backing file does not support O_DIRECT"
check ext4-offset-100 "$(new_backing auto.img 8M)" 0 512 "offset 100 not aligned to 512" -o 100
check 4k-disk "/dev/$sd" 0 512 "logical block size 512 smaller than 4096"
check 4k-disk-bs-4096 "/dev/$sd" 1 4096 none -b 4096
# A log line for a refused attach (rate-limited per device).
log=$(dmesg | sed -n '/dio-auto: attaches/,$p')
grep -q 'direct I/O not used' <<<"$log" || fail "no log line for a refusal"
# LOOP_SET_FD (losetup uses LOOP_CONFIGURE) gets auto too.
dev=$(losetup -f)
$LOOPIOCTL "$dev" set-fd "$(new_backing auto.img 8M)" >/dev/null || fail "LOOP_SET_FD"
assert_eq 1 "$(sysfs_loop "$dev" dio)" "LOOP_SET_FD under dio=auto"
detach "$dev"

# A later --direct-io=off wins, and stays off.
dev=$(losetup -f --show "$(new_backing auto.img 8M)")
assert_eq 1 "$(sysfs_loop "$dev" dio)" "auto before --direct-io=off"
losetup --direct-io=off "$dev"
assert_eq 0 "$(sysfs_loop "$dev" dio)" "after --direct-io=off"
assert_eq 0 "$(status_dio "$dev")" "LOOP_GET_STATUS64 after --direct-io=off"
detach "$dev"
# An explicit request is still honoured as with dio=off: on the 4 KiB-sector disk, where
# auto stays buffered, --direct-io=on gets direct I/O with 4096-byte blocks (C's default).
dev=$(losetup --direct-io=on -f --show "/dev/$sd")
assert_eq 1 "$(sysfs_loop "$dev" dio)" "--direct-io=on on the 4k disk under dio=auto"
assert_eq 4096 "$(cat "/sys/block/${dev#/dev/}/queue/logical_block_size")" \
	"--direct-io=on on the 4k disk: block size"
detach "$dev"
rm -f "$SCRATCH_XFS/auto.img"
