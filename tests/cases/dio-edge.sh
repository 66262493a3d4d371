#!/usr/bin/env bash
# Direct I/O edges: large requests split over several bios and segments, a buffer not
# aligned for the device refused, reads past the end of a shrunk file fail.
. "$(dirname "$0")/../lib.sh"

command -v fio >/dev/null || skip "fio missing"
load_driver
f=$(new_backing edge.img 32M)
dev=$(losetup --direct-io=on -b 4096 -f --show "$f")
settle
assert_eq 1 "$(sysfs_loop "$dev" dio)" "dio"
# Requests above max_sectors (1.25 MiB) and with odd buffer offsets inside pages.
fio --name=big --filename="$dev" --ioengine=libaio --iodepth=8 --direct=1 --rw=randwrite \
	--bs=4M --size=16M --verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 \
	--output=/dev/null || fail "fio 4M verify"
fio --name=odd --filename="$dev" --ioengine=libaio --iodepth=8 --direct=1 --rw=randwrite \
	--bs=12k --iomem_align=512 --size=8M --offset=16M --verify=crc32c --verify_fatal=1 \
	--do_verify=1 --verify_state_save=0 --output=/dev/null || fail "fio 12k verify"
# 512-byte I/O on a 4 KiB device is refused by the block layer.
if dd if="$dev" of=/dev/null bs=512 count=1 iflag=direct status=none 2>/dev/null; then
	fail "512-byte direct read on a 4 KiB device succeeded"
fi
# The file shrinks under the device: reading past its end fails.
truncate -s 8M "$f"
if dd if="$dev" of=/dev/null bs=4k count=1 skip=3000 iflag=direct status=none 2>/dev/null; then
	fail "read past the end of the backing file succeeded"
fi
dd if="$dev" of=/dev/null bs=4k count=1 skip=10 iflag=direct status=none || fail "read inside the file"
detach "$dev"
