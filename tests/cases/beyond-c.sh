#!/usr/bin/env bash
# drivers: rust
# Bugs C loop 7.3 has and rust_loop fixes (intended differences: the compatibility table of
# Documentation/admin-guide/rust_loop.rst):
# - a backing fd not opened for reading is refused (EBADF): through the device its data
#   would be readable;
# - a loop device cannot back itself through one of its partitions, directly or through
#   another device (EBADF; C compares device numbers only, and I/O then hangs);
# - a short read completes whole blocks only (C reissues the rest at the start of its
#   sector and fills the buffer with misplaced data): a read across a shrunken backing
#   file's end fails with EIO or returns the file's data, never other bytes;
# - SET_STATUS that moves the data (offset, size limit) is refused with EBUSY while
#   someone else holds the device exclusively (a mounted filesystem).
. "$(dirname "$0")/../lib.sh"

load_driver
trap 'umount "$mnt" 2>/dev/null || true; losetup -D 2>/dev/null || true; unload_driver >/dev/null 2>&1 || true' EXIT
mnt=$(mktemp -d)

echo "write-only backing fds"
f=$(new_backing wo.img 4M)
dev=/dev/loop0
expect_errno EBADF $LOOPIOCTL $dev configure "$f" file_wo=1
expect_errno EBADF $LOOPIOCTL $dev set-fd "$f" --file-wo
$LOOPIOCTL $dev configure "$f" flags=1 >/dev/null || fail "configure read-only"
expect_errno EBADF $LOOPIOCTL $dev change-fd "$f" --file-wo
$LOOPIOCTL $dev change-fd "$f" >/dev/null || fail "change-fd to a readable fd"
detach $dev

echo "cycles through partitions"
p=$(new_backing parts.img 16M)
printf 'label: dos\n,4M,83\n,4M,83\n' | sfdisk -q "$p"
a=$(losetup -r -f --show -P "$p")
settle
[ -b "${a}p1" ] || fail "${a}p1 missing"
expect_errno EBADF $LOOPIOCTL "$a" change-fd "${a}p1"
expect_errno EBADF $LOOPIOCTL "$a" change-fd "${a}p2"
b=$(losetup -r -f --show "${a}p1")
expect_errno EBADF $LOOPIOCTL "$a" change-fd "$b"
detach "$b"
detach "$a"

echo "short reads across a shrunken backing file"
for dio in off on; do
	s=$(new_backing short.img 64K)
	python3 -c "import os,sys; open(sys.argv[1],'r+b').write(os.urandom(65536))" "$s"
	dev=$(losetup -f --show --direct-io=$dio "$s")
	for tail in 100 1000 3000; do
		truncate -s $((40960 + tail)) "$s"
		python3 - "$dev" "$s" <<'PY' || fail "short read (dio=$dio, tail): misplaced data"
import errno, mmap, os, sys
dev, img = sys.argv[1], sys.argv[2]
want = open(img, "rb").read()[40960:40960 + 4096]
want += bytes(4096 - len(want))
fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
try:
    n = os.preadv(fd, [buf], 40960)
except OSError as e:
    sys.exit(0 if e.errno == errno.EIO else 1)
got = bytes(buf[:n])
# What was read is the file's data (zeros past its end), never bytes from elsewhere.
sys.exit(0 if got == want[:n] else 1)
PY
	done
	detach "$dev"
done

echo "SET_STATUS under an exclusive opener"
img=$(new_backing excl.img 32M)
dev=$(losetup -f --show "$img")
mkfs.ext4 -q -F "$dev"
mount "$dev" "$mnt"
expect_errno EBUSY $LOOPIOCTL "$dev" set-status64 offset=4096
expect_errno EBUSY $LOOPIOCTL "$dev" set-status64 sizelimit=1048576
assert_eq 0 "$(sysfs_loop "$dev" offset)" "offset after the refused change"
# A status that does not move the data is fine.
$LOOPIOCTL "$dev" set-status64 name=renamed >/dev/null || fail "set the name while mounted"
umount "$mnt"
$LOOPIOCTL "$dev" set-status64 offset=4096 >/dev/null || fail "offset change after umount"
assert_eq 4096 "$(sysfs_loop "$dev" offset)" "offset after umount"
detach "$dev"
# A mounted partition protects the whole device, whichever node the call comes through.
pimg=$(new_backing excl-parts.img 48M)
printf 'label: dos\n,20M,83\n,20M,83\n' | sfdisk -q "$pimg"
pdev=$(losetup -f --show -P "$pimg")
settle
mkfs.ext4 -q -F "${pdev}p2"
mount "${pdev}p2" "$mnt"
expect_errno EBUSY $LOOPIOCTL "${pdev}p1" set-status64 offset=4096
expect_errno EBUSY $LOOPIOCTL "$pdev" set-status64 offset=4096
umount "$mnt"
detach "$pdev"
