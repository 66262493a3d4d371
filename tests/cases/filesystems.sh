#!/usr/bin/env bash
# ext4 and xfs on a loop device: mkfs, mount, write, umount, fsck, remount, checksums.
. "$(dirname "$0")/../lib.sh"

load_driver
mnt=$(mktemp -d)
for fs in ext4 xfs; do
	f=$(new_backing "$fs.img" 320M)
	dev=$(losetup -f --show "$f")
	case $fs in
	ext4) mkfs.ext4 -q -F "$dev" ;;
	xfs) mkfs.xfs -q -f "$dev" ;;
	esac
	mount "$dev" "$mnt"
	for i in 1 2 3 4; do head -c $((i * 1024 * 1024 + 123)) /dev/urandom >"$mnt/f$i"; done
	mkdir "$mnt/d" && for i in $(seq 50); do echo "$i" >"$mnt/d/$i"; done
	sums=$(cd "$mnt" && sha256sum f* d/*)
	umount "$mnt"
	case $fs in
	ext4) fsck.ext4 -n -f "$dev" >/dev/null 2>&1 || fail "fsck.ext4 found errors" ;;
	xfs) xfs_repair -n "$dev" >/dev/null 2>&1 || fail "xfs_repair found errors" ;;
	esac
	echo 3 >/proc/sys/vm/drop_caches
	mount "$dev" "$mnt"
	assert_eq "$sums" "$(cd "$mnt" && sha256sum f* d/*)" "$fs checksums after remount"
	umount "$mnt"
	detach "$dev"
	rm -f "$f"
done
