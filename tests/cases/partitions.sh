#!/usr/bin/env bash
# losetup -P scans MBR and GPT partitions; detach removes them, also BLKPG-added ones.
. "$(dirname "$0")/../lib.sh"

load_driver
f=$(new_backing mbr.img 64M)
printf 'label: dos\n,20M,83\n,20M,83\n' | sfdisk -q "$f"
dev=$(losetup -f --show -P "$f")
settle
assert_eq 1 "$(sysfs_loop "$dev" partscan)" "partscan"
for p in 1 2; do [ -b "${dev}p$p" ] || fail "${dev}p$p missing"; done
assert_eq $((20 << 20)) "$(blockdev --getsize64 "${dev}p2")" "p2 size"
detach "$dev"
[ ! -e "/sys/block/${dev#/dev/}/${dev#/dev/}p1" ] || fail "partition left after detach"

# GPT with vfat on the first partition.
g=$(new_backing gpt.img 64M)
printf 'label: gpt\n,32M\n,16M\n' | sfdisk -q "$g"
dev=$(losetup -f --show -P "$g")
settle
mkfs.vfat "${dev}p1" >/dev/null
mnt=$(mktemp -d)
mount "${dev}p1" "$mnt"
echo hello >"$mnt/hello.txt"
umount "$mnt"
mount "${dev}p1" "$mnt"
assert_eq hello "$(cat "$mnt/hello.txt")" "vfat file"
umount "$mnt"
detach "$dev"

# Without -P no partitions appear, but partx can add them; detach removes those too.
dev=$(losetup -f --show "$f")
settle
[ ! -e "${dev}p1" ] || fail "partitions without -P"
partx -a "$dev"
settle
[ -b "${dev}p1" ] || fail "partx did not add ${dev}p1"
detach "$dev"
[ ! -e "/sys/block/${dev#/dev/}/${dev#/dev/}p1" ] || fail "partx partition left after detach"
