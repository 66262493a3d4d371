#!/usr/bin/env bash
# LOOP_GET_STATUS and LOOP_GET_STATUS64 write every byte of the user's structure: a field or
# zero, never a byte left from the buffer (two calls into buffers filled with 0xAA and 0x55
# give the same bytes); the compat structure is checked by the 32-bit program
# (compat-ioctl.sh). A read-only backing file is never written through the device, not even
# after BLKROSET 0: writes, discards and write-zeroes fail, and the file is unchanged.
. "$(dirname "$0")/../lib.sh"

load_driver
f=$(new_backing bytes.img 4M)
python3 -c "import os,sys; open(sys.argv[1],'r+b').write(os.urandom(4 << 20))" "$f"
dev=$(losetup -f --show -o 512 "$f")
python3 - "$dev" <<'PY' || fail "GET_STATUS left bytes of the user buffer"
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
for num, size in ((0x4C03, 168), (0x4C05, 232)):
    a, b = bytearray(b"\xaa" * size), bytearray(b"\x55" * size)
    fcntl.ioctl(fd, num, a, True)
    fcntl.ioctl(fd, num, b, True)
    if a != b:
        diff = [i for i in range(size) if a[i] != b[i]]
        sys.exit(f"ioctl {num:#x}: bytes {diff[:8]} not written")
PY
detach "$dev"

sum=$(sha256sum <"$f")
dev=$(losetup -f --show -r "$f")
settle
blockdev --setrw "$dev"
if dd if=/dev/zero of="$dev" bs=4096 count=1 oflag=direct status=none 2>/dev/null; then
	fail "a write through a read-only backing file succeeded"
fi
if blkdiscard -o 0 -l 65536 "$dev" 2>/dev/null; then
	fail "a discard through a read-only backing file succeeded"
fi
if blkdiscard -z -o 0 -l 65536 "$dev" 2>/dev/null; then
	fail "a write-zeroes through a read-only backing file succeeded"
fi
detach "$dev"
assert_eq "$sum" "$(sha256sum <"$f")" "backing file contents"
