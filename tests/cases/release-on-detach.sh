#!/usr/bin/env bash
# The backing file is closed by the time the call that lets it go returns: the last close of
# a detached (or autoclear) device, and LOOP_CHANGE_FD for the old file. C loop drops the
# file in the detaching task (its fput runs as task work before the syscall returns) and no
# I/O context holds a reference. rust_loop's worker and direct I/O completion used to hold
# one past the request's completion, so the last fput could land in a kworker or interrupt
# and be deferred: the lower device of a stack was still bound (LOOP_CTL_REMOVE: EBUSY), the
# filesystem holding the backing file could not be unmounted (EBUSY).
#
# Each scenario runs a fixed number of rounds (times ROUND_SCALE; at most 120 s each; a
# quarter of them on the C oracle, which never failed one, unless FULL_ORACLE=1),
# buffered and with direct I/O. The test runs SCHED_FIFO on CPU 0 with the unbound
# workqueues confined to CPU 0, so that a completion that wakes it preempts a worker that
# still holds the file. Measured on 417253f (debug kernel, TCG, 60 rounds each): rust_loop
# failed 4/60 stacked, 8/60 umount, 3/60 umount with direct I/O and 0/60 in the other three;
# C loop 0/360. With the counts below, 417253f passes with a chance of about 3e-5. udevd does
# not run meanwhile (udev_stop), so that no udev process holds a device open and every close
# here is the last one.
. "$(dirname "$0")/../lib.sh"

ROUND_SCALE=${ROUND_SCALE:-1}
RACE="python3 $TESTS_DIR/tools/release_race.py"

load_driver
settle
wq_mask=/sys/devices/virtual/workqueue/cpumask
old_mask=$(cat "$wq_mask")
cleanup() {
	udev_start || true
	echo "$old_mask" >"$wq_mask"
	umount "$mnt" 2>/dev/null || true
	unload_driver >/dev/null 2>&1 || true
}
trap cleanup EXIT
udev_stop
[ "${RACE_PIN:-rt}" = none ] || echo 1 >"$wq_mask"

f=$(new_backing release-race.img 4M)
new=$(new_backing release-race-new.img 4M)
# A small ext4 holding the backing files of the umount scenarios, on a device of its own.
fsimg=$(new_backing release-race-fs.img 32M)
mkfs.ext4 -q -F "$fsimg"
fsdev=$(losetup -f --show "$fsimg")
mnt=$(mktemp -d)
mount "$fsdev" "$mnt"
truncate -s 4M "$mnt/backing.img"
truncate -s 4M "$mnt/old.img"
export MNT_SOURCE=$fsdev

# RACE_PIN (for measuring): rt = SCHED_FIFO on the workers' CPU, same = that CPU, none.
case ${RACE_PIN:-rt} in
rt) pin=(chrt -f 10 taskset -c 0) ;;
same) pin=(taskset -c 0) ;;
*) pin=() ;;
esac
status=0
# race SCENARIO ROUNDS [--dio] ARGS...
race() {
	local scenario=$1 rounds=$(($2 * ROUND_SCALE))
	if [ "$DRIVER" = c ] && [ "${FULL_ORACLE:-0}" != 1 ]; then
		rounds=$(((rounds + 3) / 4))
	fi
	shift 2
	"${pin[@]}" $RACE "$scenario" "$rounds" --seconds 120 "$@" || status=1
}
race stacked 40 120 121 "$f"
race stacked 20 --dio 120 121 "$f"
race umount 40 /dev/loop7 "$mnt" "$mnt/backing.img"
race umount 40 --dio /dev/loop7 "$mnt" "$mnt/backing.img"
race changefd 10 /dev/loop7 "$mnt" "$mnt/old.img" "$new"
race changefd 10 --dio /dev/loop7 "$mnt" "$mnt/old.img" "$new"
# udev runs again before anything waits for it.
udev_start || fail "udev did not settle"
umount "$mnt"
detach "$fsdev"
[ "$status" = 0 ] || fail "a backing file outlived the call that released it (see above)"
