# SPDX-License-Identifier: GPL-2.0
# Helpers for guest-side tests. Source it from a test script.
#
# Every test runs once per driver: DRIVER=rust (rust_loop.ko) or DRIVER=c (the C loop.ko,
# the oracle). A test starts with neither driver loaded and must leave none loaded.
# Exit 0 = pass, 77 = skip, anything else = fail.

set -euo pipefail

DRIVER=${DRIVER:-rust}
TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# A scratch directory on a real filesystem (set up by tests/run), else tmpfs.
SCRATCH=${SCRATCH:-/tmp}
LOOPIOCTL="python3 $TESTS_DIR/tools/loopioctl.py"

# The name of the module the current driver is (as shown by lsmod).
driver_module() {
	if [ "$DRIVER" = rust ]; then echo rust_loop; else echo loop; fi
}

# load_driver [PARAM=VALUE...]: loads the driver under test with module parameters.
load_driver() {
	local status=0
	if [ "$DRIVER" = rust ]; then
		insmod "$RUST_LOOP_KO" "$@" || status=$?
	else
		modprobe loop "$@" || status=$?
	fi
	settle 2>/dev/null || true
	return $status
}

# unload_driver: detaches every device and unloads the driver under test.
unload_driver() {
	local m
	m=$(driver_module)
	grep -q "^$m " /proc/modules || return 0
	losetup -D 2>/dev/null || true
	settle 2>/dev/null || true
	rmmod "$m"
}

# settle: waits until udev has handled every queued event. udevadm settle itself can fail on a
# hiccup of the daemon (seen once in CI under TCG: "Failed to wait for daemon to reply:
# Broken pipe"), which says nothing about the driver: an attempt that fails at once is
# retried twice. A time-out (udevadm's 120 s) is an answer and is not retried.
settle() {
	local try t0
	for try in 1 2 3; do
		t0=$SECONDS
		udevadm settle "$@" && return 0
		[ $((SECONDS - t0)) -lt 10 ] || return 1
		sleep "$try"
	done
	return 1
}

# drain_udev: waits until udev has handled every queued event, after a test that made a
# great many (minutes of fuzzing): the daemon may not even answer for a while ("Failed to
# wait for daemon to reply") or need more than udevadm's 120 s, so up to three attempts of
# 150 s each.
drain_udev() {
	local try
	for try in 1 2 3; do
		udevadm settle --timeout=150 && return 0
		sleep 5
	done
	return 1
}

# udev_stop / udev_start: udevd does not run between them, so that nothing but the test
# opens a loop device (an autoclear device detaches on the test's close, every time). A
# stopped exec queue does not do it: udev workers were seen opening loop devices meanwhile
# (a worker opens a block device to lock it before any rule), and udevd 252 then once kept
# its queue stuck for good. udev_start starts udevd again as it ran, has it see every loop
# device anew (their events in between went unheard) and waits for it.
UDEVD_ARGV0=""
udev_stop() {
	local pid
	pid=$(pgrep -xo systemd-udevd) || return 0
	UDEVD_ARGV0=$(tr '\0' '\n' <"/proc/$pid/cmdline" | head -n 1)
	udevadm control --exit
}
udev_start() {
	[ -n "$UDEVD_ARGV0" ] || return 0
	pgrep -xo systemd-udevd >/dev/null || "$UDEVD_ARGV0" --daemon
	UDEVD_ARGV0=""
	udevadm trigger --action=change --subsystem-match=block --sysname-match='loop*'
	drain_udev
}

# stress_count FULL QUICK: FULL under make stress (STRESS_DURATION set) or FULL_ORACLE=1,
# QUICK in make check, for the long '# stress' tests' cycle counts.
stress_count() {
	if [ -n "${STRESS_DURATION:-}" ] || [ "${FULL_ORACLE:-0}" = 1 ]; then echo "$1"; else echo "$2"; fi
}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

skip() {
	echo "SKIP: $*" >&2
	exit 77
}

# expect_errno ERRNO CMD...: CMD (usually loopioctl) must fail with ERRNO (a name like EBUSY).
expect_errno() {
	local want=$1 out
	shift
	if out=$("$@" 2>&1); then
		fail "'$*' succeeded ($out), expected $want"
	fi
	case "$out" in
	*"$want"*) ;;
	*) fail "'$*' failed with '$out', expected $want" ;;
	esac
}

# assert_eq WANT GOT WHAT
assert_eq() {
	[ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"
}

# The cleanup every test wants: unload the driver even when the test fails.
trap 'unload_driver >/dev/null 2>&1 || true' EXIT

# new_backing NAME SIZE: creates a sparse backing file in $SCRATCH and prints its path.
new_backing() {
	local f="$SCRATCH/$1"
	rm -f "$f"
	truncate -s "$2" "$f"
	echo "$f"
}

# sysfs_loop DEV ATTR: /sys/block/<dev>/loop/ATTR.
sysfs_loop() {
	cat "/sys/block/${1#/dev/}/loop/$2"
}

# detach DEV: losetup -d and wait until the device is free again.
detach() {
	losetup -d "$1"
	settle 2>/dev/null || true
}

# The repository is read-only in the guest: work in the scratch directory.
cd "$SCRATCH"

# disk_flushes DISK: how many cache flushes DISK (e.g. vda) has completed.
disk_flushes() {
	awk '{ print $16 }' "/sys/block/$1/stat"
}

# disk_offset FILE: the byte offset on its disk of FILE's first byte (its first extent must
# be allocated).
disk_offset() {
	local sector
	sector=$(xfs_io -r -c fiemap "$1" | sed -n 's/^[[:space:]]*0: \[0\.\.[0-9]*\]: \([0-9]*\)\.\..*/\1/p')
	[ -n "$sector" ] || fail "no extent at the start of $1"
	echo $((sector * 512))
}
