#!/usr/bin/env bash
# A task waiting for a loop device's configuration lock can be killed (C takes lo_mutex and
# the validate lock with mutex_lock_killable). Set-up: a device B whose backing file lives on
# a frozen filesystem, with dirty pages; LOOP_SET_STATUS64 moving B's offset holds lo_mutex
# while it writes them back, and hangs until the thaw. A LOOP_GET_STATUS64 then waits for
# lo_mutex: SIGKILL must end it at once, while the filesystem is still frozen.
. "$(dirname "$0")/../lib.sh"

load_driver
mnt=$(mktemp -d)
fs=""
b=""
holder=""
cleanup() {
	fsfreeze -u "$mnt" 2>/dev/null || true
	[ -n "$holder" ] && kill "$holder" 2>/dev/null
	wait 2>/dev/null || true
	[ -n "$b" ] && losetup -d "$b" 2>/dev/null
	umount "$mnt" 2>/dev/null || true
	[ -n "$fs" ] && losetup -d "$fs" 2>/dev/null
	unload_driver >/dev/null 2>&1 || true
}
trap cleanup EXIT

img=$(new_backing killable-fs.img 64M)
mkfs.ext4 -q -F "$img"
fs=$(losetup -f --show "$img")
mount "$fs" "$mnt"
truncate -s 16M "$mnt/b.img"
b=$(losetup -f --show "$mnt/b.img")
settle
# Keep B open, so that the writer's close is not the last one (which would write back).
sleep 600 <"$b" &
holder=$!
dd if=/dev/urandom of="$b" bs=1M count=4 status=none
fsfreeze -f "$mnt"

# The waiter opens the device first (open takes lo_mutex too), then waits for a go.
go=$(mktemp -u)
python3 - "$b" "$go" <<'PY' &
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.1)
fcntl.ioctl(fd, 0x4C05, bytes(232))  # LOOP_GET_STATUS64: waits for lo_mutex
PY
getter=$!
sleep 2
# Holds lo_mutex while the write-back hangs on the frozen filesystem.
$LOOPIOCTL "$b" set-status64 offset=4096 >/dev/null 2>&1 &
setter=$!
sleep 3
kill -0 $setter 2>/dev/null || fail "SET_STATUS64 did not wait for the frozen filesystem"
touch "$go"
sleep 2
kill -0 $getter 2>/dev/null || fail "GET_STATUS64 did not wait for lo_mutex"
kill -9 $getter
for _ in $(seq 50); do
	kill -0 $getter 2>/dev/null || break
	sleep 0.1
done
if kill -0 $getter 2>/dev/null; then
	fail "a task waiting for lo_mutex survived SIGKILL for 5 s"
fi
fsfreeze -u "$mnt"
rm -f "$go"
wait $setter || fail "SET_STATUS64 failed after the thaw"
assert_eq 4096 "$(sysfs_loop "$b" offset)" "offset after the thaw"
