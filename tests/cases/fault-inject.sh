#!/usr/bin/env bash
# stress
# Injected faults reach the requester as errors, never as silent success; no acknowledged
# data is lost; no configuration is half-applied. Buffered and with direct I/O:
# 1. EIO from the backing device (a dm device over a brd disk, used directly as the backing
#    file, switched between "linear" and "error" tables): uncached reads of the failing
#    range, O_DIRECT|O_DSYNC writes and fsync all fail; after each switch back the device
#    works and everything written before reads back; after the table flipped to "error"
#    for 0.5 s twice under an O_DIRECT|O_DSYNC writer, every acknowledged block reads
#    back.
# 2. fail_make_request on the disk under it: O_DIRECT|O_DSYNC writes while 4 requests fail
#    and fsync while all do: errors reach the writer, acknowledged blocks read back.
# 3. failslab: one kernel allocation fails at position 1, 2, ... inside each loop ioctl
#    (and the open that creates a device, the close that clears one): the call succeeds or
#    fails, the device shows the old or the new configuration (a failed bind: unbound), and
#    works normally afterwards (tools/failslab_ioctl.py). Leaks: the harness's kmemleak scan.
. "$(dirname "$0")/../lib.sh"

DM=fault-inject
FMR=/sys/kernel/debug/fail_make_request
SLAB=/sys/kernel/debug/failslab
[ -d "$FMR" ] && [ -d "$SLAB" ] || skip "no fault injection in debugfs"
slab_saved=$(for a in verbose ignore-gfp-wait task-filter probability; do
	printf '%s=%s\n' "$a" "$(cat "$SLAB/$a")"
done)

cleanup() {
	echo 0 >"$FMR/probability" 2>/dev/null || true
	echo 0 >/sys/block/ram0/make-it-fail 2>/dev/null || true
	printf '%s\n' "$slab_saved" | while IFS== read -r a v; do
		echo "$v" >"$SLAB/$a" 2>/dev/null || true
	done
	losetup -D 2>/dev/null || true
	settle 2>/dev/null || true
	dmsetup remove --retry "$DM" >/dev/null 2>&1 || true
	rmmod brd 2>/dev/null || true
	unload_driver >/dev/null 2>&1 || true
}
trap cleanup EXIT

# blocks write DEV FIRST COUNT SEED STOP ACKS: writes 4 KiB blocks FIRST.. once each, with
# O_DIRECT|O_DSYNC, contents made of SEED and the block's number, for at most COUNT blocks and
# until the file STOP exists; appends every acknowledged block's number to ACKS; prints
# "ACKED FAILED". A write fails with EIO or not at all. blocks verify DEV SEED ACKS: reads
# every block in ACKS back (O_DIRECT) and prints the bytes verified; exits 1 on a difference.
blocks() {
	python3 - "$@" <<'PY'
import errno, mmap, os, sys
mode, dev, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
buf = mmap.mmap(-1, 4096)
def content(seed, i):
    return (f"{seed}:{i}:".encode() * 512)[:4096]
if mode == "write":
    first, count, seed, stop, acks = int(rest[0]), int(rest[1]), rest[2], rest[3], rest[4]
    fd = os.open(dev, os.O_RDWR | os.O_DIRECT | os.O_DSYNC)
    acked = failed = 0
    with open(acks, "a") as out:
        for i in range(first, first + count):
            if os.path.exists(stop):
                break
            buf[:] = content(seed, i)
            try:
                n = os.pwrite(fd, buf, i * 4096)
            except OSError as e:
                if e.errno != errno.EIO:
                    sys.exit(f"block {i}: write failed with {e}, expected EIO")
                failed += 1
                continue
            if n != 4096:
                sys.exit(f"block {i}: short write {n} reported as success")
            acked += 1
            out.write(f"{i}\n")
    print(acked, failed)
else:
    seed, acks = rest
    fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
    done = 0
    for i in map(int, open(acks).read().split()):
        if os.preadv(fd, [buf], i * 4096) != 4096 or buf[:] != content(seed, i):
            sys.exit(f"acknowledged block {i} did not read back")
        done += 4096
    print(done)
PY
}

# uncache: drops the dm device's page cache (what the loop device reads without direct I/O).
uncache() {
	blockdev --flushbufs "$dm"
}

# The lower device: 32 MiB (blocks 0..8191 of 4 KiB): A = 0-4 MiB stays good, the "mid"
# table fails 8-24 MiB (B = 8-12 MiB written before, C = 12-16 MiB written while failing),
# R = 16-24 MiB for the flipping test, 24-32 MiB for fail_make_request.
modprobe brd rd_nr=1 rd_size=32768
S=65536
lin() { echo "0 $S linear /dev/ram0 0"; }
err_all() { echo "0 $S error"; }
err_mid() {
	echo "0 16384 linear /dev/ram0 0"
	echo "16384 32768 error"
	echo "49152 16384 linear /dev/ram0 49152"
}
table() {
	"$1" | dmsetup --noudevsync load "$DM"
	dmsetup --noudevsync resume --nolockfs "$DM"
}
lin | dmsetup --noudevsync create "$DM"
dm=/dev/dm-$(dmsetup info -c --noheadings -o minor "$DM" | tr -d " ")
[ -b "$dm" ] || fail "no $dm"
settle

# expect_fail WHAT CMD...: CMD must fail with an I/O error.
expect_fail() {
	local what=$1
	shift
	if "$@" 2>err.txt; then
		fail "$what succeeded on a failing backing device"
	fi
	grep -q 'Input/output error' err.txt || fail "$what: $(cat err.txt)"
}

# 1. EIO from the dm device.
scenario_eio() {
	local dio dev cycle t_start t0 i writer acked failed v faults=0 verified=0
	t_start=$SECONDS
	for dio in off on; do
		dev=$(losetup -f --show --direct-io=$dio "$dm")
		settle
		dd if=a.bin of="$dev" bs=1M oflag=direct conv=fsync status=none
		dd if=b.bin of="$dev" bs=1M seek=8 oflag=direct conv=fsync status=none
		for cycle in 1 2; do
			table err_mid
			faults=$((faults + 1))
			uncache
			expect_fail "an uncached read ($dio, cycle $cycle)" \
				dd if="$dev" of=/dev/null bs=4096 skip=$((2048 + cycle * 100)) count=1 \
				iflag=direct status=none
			cmp <(dd if="$dev" bs=1M count=4 iflag=direct status=none) a.bin ||
				fail "the good range changed while the other failed ($dio)"
			expect_fail "an O_DIRECT|O_DSYNC write ($dio, cycle $cycle)" \
				dd if=a.bin of="$dev" bs=4096 seek=$((3072 + cycle)) count=1 oflag=direct,dsync \
				status=none
			expect_fail "a buffered write and fsync ($dio, cycle $cycle)" \
				dd if=a.bin of="$dev" bs=4096 seek=$((3200 + cycle * 16)) count=16 conv=fsync \
				status=none
			table lin
			head -c 64K /dev/urandom >"c$cycle.bin"
			dd if="c$cycle.bin" of="$dev" bs=64K seek=$((200 + cycle)) oflag=direct,dsync \
				status=none || fail "a write after the fault ($dio, cycle $cycle)"
		done
		uncache
		cmp <(dd if="$dev" bs=1M count=4 iflag=direct status=none) a.bin ||
			fail "data written before the faults changed ($dio)"
		cmp <(dd if="$dev" bs=1M skip=8 count=4 iflag=direct status=none) b.bin ||
			fail "data written before the faults changed in the failed range ($dio)"
		for cycle in 1 2; do
			cmp <(dd if="$dev" bs=64K skip=$((200 + cycle)) count=1 iflag=direct status=none) \
				"c$cycle.bin" || fail "data written between faults changed ($dio, $cycle)"
		done
		verified=$((verified + (8 << 20) + 2 * 65536))

		# The table flips to "error" for 0.5 s, twice, under an O_DIRECT|O_DSYNC writer.
		rm -f acks stop
		blocks write "$dev" 4096 2048 "flip-$dio" stop acks >wrote &
		writer=$!
		sleep 2
		t0=$SECONDS
		for i in 1 2; do
			table err_all
			sleep 0.5
			table lin
			sleep 0.5
		done
		touch stop
		wait $writer || fail "the writer failed ($dio)"
		read -r acked failed <wrote
		faults=$((faults + 2))
		[ "$acked" -gt 0 ] && [ "$failed" -gt 0 ] ||
			fail "flipping ($dio): $acked writes acknowledged, $failed failed: no test"
		uncache
		v=$(blocks verify "$dev" "flip-$dio" acks) || fail "flipping ($dio): $v"
		verified=$((verified + v))
		echo "flipping, direct I/O $dio: 2 error periods in $((SECONDS - t0)) s, $acked writes" \
			"acknowledged (all read back), $failed failed"
		detach "$dev"
	done
	echo "scenario 1 (dm error table): $faults faults injected, $verified bytes verified" \
		"($((SECONDS - t_start)) s)"
}

# 2. fail_make_request on ram0, the disk under the dm device.
echo 0 >"$FMR/verbose"
echo N >"$FMR/task-filter"
echo 1 >"$FMR/interval"
echo 0 >"$FMR/space"
arm() {
	echo "$1" >"$FMR/times"
	echo 100 >"$FMR/probability"
	echo 1 >/sys/block/ram0/make-it-fail
}
disarm() {
	echo 0 >/sys/block/ram0/make-it-fail
	echo 0 >"$FMR/probability"
}
scenario_fmr() {
	local dio dev acked failed n v t_start faults=0 verified=0 errors=0
	t_start=$SECONDS
	for dio in off on; do
		dev=$(losetup -f --show --direct-io=$dio "$dm")
		settle
		rm -f acks stop
		arm 4
		read -r acked failed < <(blocks write "$dev" 6144 64 "fmr-$dio" stop acks) ||
			fail "the writer failed ($dio)"
		n=$((4 - $(cat "$FMR/times")))
		[ "$n" -gt 0 ] && [ "$failed" -gt 0 ] ||
			fail "fail_make_request ($dio): $n faults, $failed writes failed"
		faults=$((faults + n)) errors=$((errors + failed))
		# Every request to ram0 fails until disarmed.
		arm -1
		expect_fail "a buffered write and fsync with failing requests ($dio)" \
			dd if=a.bin of="$dev" bs=1M seek=28 count=1 conv=fsync status=none
		errors=$((errors + 1))
		disarm
		uncache
		v=$(blocks verify "$dev" "fmr-$dio" acks) || fail "fail_make_request ($dio): $v"
		dd if=b.bin of="$dev" bs=1M seek=28 count=4 oflag=direct conv=fsync status=none ||
			fail "a write after the injection stopped ($dio)"
		cmp <(dd if="$dev" bs=1M skip=28 count=4 iflag=direct status=none) b.bin ||
			fail "data written after the injection stopped ($dio)"
		verified=$((verified + v + (4 << 20)))
		detach "$dev"
	done
	echo "scenario 2 (fail_make_request): $faults counted faults injected (and 2 periods of" \
		"every request failing), $errors errors reported," \
		"$verified bytes verified ($((SECONDS - t_start)) s)"
}

# 3. failslab inside each ioctl, for this task only (fail-nth), sleeping allocations too.
scenario_failslab() {
	local t_start f1 f2 out
	t_start=$SECONDS
	unload_driver
	load_driver max_loop=0
	echo 0 >"$SLAB/verbose"
	echo N >"$SLAB/ignore-gfp-wait"
	echo 0 >"$SLAB/probability"
	echo Y >"$SLAB/task-filter"
	f1=$(new_backing fi1.img 4M)
	f2=$(new_backing fi2.img 4M)
	out=$(python3 "$TESTS_DIR/tools/failslab_ioctl.py" "$f1" "$f2") || fail "failslab: $out"
	printf '%s\n' "$out" | sed '$d'
	echo "scenario 3 (failslab, $DRIVER): $(printf '%s\n' "$out" | tail -n 1)" \
		"($((SECONDS - t_start)) s)"
	unload_driver
}

# Each scenario runs in a subshell, starting from a good table with nothing attached: one
# failing does not hide what the others find.
head -c 4M /dev/urandom >a.bin
head -c 4M /dev/urandom >b.bin
rc=0
load_driver
for scenario in scenario_eio scenario_fmr scenario_failslab; do
	table lin
	losetup -D
	settle
	set +e
	(
		set -e
		"$scenario"
	)
	status=$?
	set -e
	[ $status = 0 ] || rc=1
done
exit $rc
