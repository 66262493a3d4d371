#!/usr/bin/env bash
# stress
# timed
# Bounded races between I/O and the calls that change or end a device, each scenario run for
# a time budget (STRESS_DURATION seconds split across them, in make stress on both drivers;
# by default, in make check on rust_loop only, about 3 minutes on the debug kernel). Each prints one line of counts showing that the
# race happened; a data mismatch, an fsck error, an unexpected result, a hang (every worker
# is bounded by `timeout`) or a kernel splat fails. Shared with C loop, the oracle.
#  1 umount (or a lazy umount and LOOP_CLR_FD while a writer still writes) racing the last
#    I/O, on ext4, xfs and vfat, buffered and direct I/O: a clean fsck, and the data written
#    before the umount reads back;
#  2 block size, direct I/O, capacity, size limit and LOOP_CHANGE_FD changes while fio
#    verifies (crc32c) and a reader checks a read-only device's checksum;
#  3 memfd-backed images, syzkaller style (a second LOOP_SET_FD is EBUSY, LO_FLAGS_PARTSCAN);
#  5 four stacked devices, block sizes 512/4096, direct I/O on and off: data written through
#    the top reads back and reaches the file; LOOP_CHANGE_FD cycles are refused (EBADF);
#  6 BLKRRPART and BLKPG while a reader reads the partitions: every byte read is right;
#  7 a writer in a 32 MiB memory cgroup writes 64 MiB through the device; fio verifies it;
#  4 loop-control churn from several processes with rmmod attempts: everything detaches and
#    the module unloads at the end.
. "$(dirname "$0")/../lib.sh"

command -v fio >/dev/null || skip "fio missing"
RACE=(python3 "$TESTS_DIR/tools/race_stress.py")
MOD=$(driver_module)
DUR=${STRESS_DURATION:-0}
# budget DEFAULT PERCENT: a scenario's seconds.
budget() {
	if [ "$DUR" -gt 0 ]; then echo $((DUR * $2 / 100 > 5 ? DUR * $2 / 100 : 5)); else echo "$1"; fi
}

mnt=$(mktemp -d)
cgmnt=""
old_modprobe=$(cat /proc/sys/kernel/modprobe)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	echo "$old_modprobe" >/proc/sys/kernel/modprobe
	umount "$mnt" 2>/dev/null || true
	if [ -n "$cgmnt" ]; then
		rmdir "$cgmnt/race-stress" 2>/dev/null || true
		umount "$cgmnt" 2>/dev/null || true
	fi
	unload_driver >/dev/null 2>&1 || true
}
trap cleanup EXIT

# wait_free DEV: waits (at most 60 s) until DEV has no backing file any more.
wait_free() {
	local _
	for _ in $(seq 600); do
		[ -e "/sys/block/${1#/dev/}/loop/backing_file" ] || return 0
		sleep 0.1
	done
	fail "$1 still bound 60 s after its last close"
}

load_driver
src=$SCRATCH/race-src.bin
dd if=/dev/urandom of="$src" bs=1M count=4 status=none

echo "== 1: umount racing the last I/O"
declare -A img fsck
img[ext4]=$(new_backing race-ext4.img 64M)
img[vfat]=$(new_backing race-vfat.img 64M)
xfsdir=${SCRATCH_XFS:-$SCRATCH}
rm -f "$xfsdir/race-xfs.img"
truncate -s 320M "$xfsdir/race-xfs.img"
img[xfs]=$xfsdir/race-xfs.img
mkfs.ext4 -q -F "${img[ext4]}"
mkfs.vfat "${img[vfat]}" >/dev/null
mkfs.xfs -q -f "${img[xfs]}"
fsck[ext4]="fsck.ext4 -fn"
fsck[vfat]="fsck.vfat -n"
fsck[xfs]="xfs_repair -n -f"
fss=(ext4 xfs vfat)
synced=$SCRATCH/race-synced.bin
head -c 262144 "$src" >"$synced"
secs=$(budget 12 30)
end=$((SECONDS + secs))
rounds=0 lazy_busy=0 t0=$SECONDS
# Every combination of filesystem, direct I/O and lazy umount in twelve rounds; the first
# three already mix them.
combos=("ext4 off 0" "xfs on 1" "vfat off 1" "ext4 on 1" "xfs off 0" "vfat on 0"
	"ext4 off 1" "xfs on 0" "vfat on 1" "ext4 on 0" "xfs off 1" "vfat off 0")
# verify_fs FS: the files the last round on FS wrote (if any) read back.
verify_fs() {
	if [ -e "$mnt/synced" ]; then
		cmp -s "$mnt/synced" "$synced" || fail "$1: the synced file differs after the umount"
		cmp -s "$mnt/racer" "$src" || fail "$1: the racing writer's file differs after the umount"
	fi
}
while [ $rounds -lt 3 ] || [ $SECONDS -lt $end ]; do
	read -r fs dio lazy <<<"${combos[$((rounds % 12))]}"
	dev=$(losetup -f --show --direct-io="$dio" "${img[$fs]}")
	mount -t "$fs" "$dev" "$mnt"
	verify_fs "$fs"
	rm -f "$mnt/synced" "$mnt/racer"
	cp "$synced" "$mnt/synced"
	sync "$mnt/synced"
	if [ "$lazy" = 1 ]; then
		# Lazy umount and LOOP_CLR_FD (which only sets autoclear: the device is in use) while
		# the writer writes; its exit is the last close, racing its last I/O.
		timeout 120 dd if="$src" of="$mnt/racer" bs=64k oflag=dsync status=none &
		wpid=$!
		sleep 0.3
		umount -l "$mnt"
		losetup -d "$dev"
		kill -0 $wpid 2>/dev/null && lazy_busy=$((lazy_busy + 1))
		wait $wpid || fail "the writer failed after the lazy umount ($fs, dio $dio)"
	else
		dd if="$src" of="$mnt/racer" bs=64k status=none
		umount "$mnt"
		losetup -d "$dev"
	fi
	wait_free "$dev"
	${fsck[$fs]} "${img[$fs]}" >"$SCRATCH/race-fsck.out" 2>&1 ||
		fail "fsck of $fs after round $rounds (dio $dio, lazy $lazy): $(tail -n 5 "$SCRATCH/race-fsck.out")"
	rounds=$((rounds + 1))
done
for fs in "${fss[@]}"; do
	dev=$(losetup -f --show -r "${img[$fs]}")
	mount -t "$fs" -o ro "$dev" "$mnt"
	verify_fs "$fs"
	umount "$mnt"
	detach "$dev"
done
rm -f "${img[@]}"
echo "1: $rounds rounds (ext4/xfs/vfat, dio off/on, lazy $lazy_busy with the writer running)," \
	"fsck clean, data verified ($((SECONDS - t0)) s)"

echo "== 2: configuration changes under fio verify"
t0=$SECONDS
cfg=$(new_backing race-cfg.img 48M)
dev=$(losetup -f --show "$cfg")
ro1=$SCRATCH/race-ro1.img ro2=$SCRATCH/race-ro2.img
dd if=/dev/urandom of="$ro1" bs=1M count=4 status=none
cp "$ro1" "$ro2"
rodev=$(losetup -f --show -r "$ro1")
want=$(sha256sum <"$ro1")
secs=$(budget 10 20)
timeout $((secs + 120)) "${RACE[@]}" config "$secs" "$dev" "$cfg" $((48 << 20)) $((64 << 20)) \
	$((40 << 20)) "$rodev" "$ro1" "$ro2" >"$SCRATCH/race-config.out" 2>&1 &
changer=$!
pids+=("$changer")
(
	n=0
	while kill -0 $changer 2>/dev/null; do
		got=$(timeout 60 dd if="$rodev" bs=1M iflag=direct status=none | sha256sum) ||
			{ echo "read $n of $rodev failed"; exit 1; }
		[ "$got" = "$want" ] || { echo "read $n of $rodev: wrong checksum"; exit 1; }
		n=$((n + 1))
	done
	echo "$n reads"
) >"$SCRATCH/race-reader.out" 2>&1 &
reader=$!
pids+=("$reader")
# fio verifies each batch of 16 blocks right after writing it, for the whole time.
timeout $((secs + 300)) fio --name=cfg --filename="$dev" --size=16M --rw=randwrite \
	--bsrange=4k-32k --direct=1 --ioengine=psync --verify=crc32c --verify_backlog=16 \
	--verify_fatal=1 --verify_state_save=0 --time_based --runtime="$secs" \
	--output="$SCRATCH/race-fio.out" ||
	fail "fio verify failed under configuration changes: $(tail -n 5 "$SCRATCH/race-fio.out")"
wait $changer || fail "configuration changes: $(cat "$SCRATCH/race-config.out")"
wait $reader || fail "read-only reader under LOOP_CHANGE_FD: $(cat "$SCRATCH/race-reader.out")"
detach "$rodev"
detach "$dev"
echo "2: fio$(sed -n 's/^ *write: \(IOPS=[^,]*\).*/ \1/p' "$SCRATCH/race-fio.out")," \
	"$(cat "$SCRATCH/race-reader.out") of the read-only device;" \
	"$(cat "$SCRATCH/race-config.out") ($((SECONDS - t0)) s)"

echo "== 3: memfd-backed images"
t0=$SECONDS
mkdir -p "$SCRATCH/race-memfd"
head -c 65536 "$src" >"$SCRATCH/race-memfd/data"
mimg=$(new_backing race-memfd.img 8M)
mkfs.ext4 -q -F -d "$SCRATCH/race-memfd" "$mimg"
out=$(timeout 300 "${RACE[@]}" memfd "$([ "$DUR" -gt 0 ] && echo $((DUR / 60 + 2)) || echo 3)" \
	"$mimg" "$mnt" data "$SCRATCH/race-memfd/data") || fail "$out"
echo "3: $out ($((SECONDS - t0)) s)"

echo "== 5: four stacked devices"
w=$(new_backing race-stack.img 8M)
ref=$SCRATCH/race-stack-ref.img
cp "$w" "$ref"
w1=$(losetup -f --show --direct-io=on -b 512 "$w")
w2=$(losetup -f --show --direct-io=on -b 4096 "$w1")
w3=$(losetup -f --show -b 4096 "$w2")
w4=$(losetup -f --show -b 512 "$w3")
r=$SCRATCH/race-stack-ro.img r2=$SCRATCH/race-stack-ro2.img
dd if=/dev/urandom of="$r" bs=1M count=4 status=none
cp "$r" "$r2"
rsum=$(sha256sum <"$r")
t0=$SECONDS
r1=$(losetup -f --show -r --direct-io=on -b 512 "$r")
rr2=$(losetup -f --show -r -b 4096 "$r1")
r3=$(losetup -f --show -r --direct-io=on -b 4096 "$rr2")
r4=$(losetup -f --show -r -b 512 "$r3")
secs=$(budget 6 10)
end=$((SECONDS + secs))
rounds=0
while [ $rounds -lt 2 ] || [ $SECONDS -lt $end ]; do
	at=$((RANDOM % 7))
	dd if="$src" of="$w4" bs=64k count=16 skip=$((rounds % 4 * 16)) seek=$((at * 16)) \
		oflag=direct conv=fsync status=none
	dd if="$src" of="$ref" bs=64k count=16 skip=$((rounds % 4 * 16)) seek=$((at * 16)) \
		conv=notrunc status=none
	cmp -s <(dd if="$w4" bs=1M iflag=direct status=none) "$ref" ||
		fail "round $rounds: the stack's top does not read back what was written"
	next=$([ $((rounds % 2)) = 0 ] && echo "$r2" || echo "$r")
	$LOOPIOCTL --batch <<-EOF || fail "LOOP_CHANGE_FD in the stack (round $rounds)"
		EBADF $r1 change-fd $r4
		EBADF $r1 change-fd $r1
		EBADF $r1 change-fd $r3
		EBADF $rr2 change-fd $r4
		EBADF $r3 change-fd $r4
		EINVAL $w1 change-fd $w4
		OK $r1 change-fd $next
	EOF
	[ "$(dd if="$r4" bs=1M iflag=direct status=none | sha256sum)" = "$rsum" ] ||
		fail "round $rounds: the read-only stack's top reads wrong after LOOP_CHANGE_FD"
	rounds=$((rounds + 1))
done
for d in "$r4" "$r3" "$rr2" "$r1" "$w4" "$w3" "$w2" "$w1"; do detach "$d"; done
cmp -s "$w" "$ref" || fail "the stack's backing file differs from what was written through the top"
echo "5: $rounds rounds through 4 levels (512 dio, 4096 dio, 4096, 512), 6 change-fd cycles refused per round ($((SECONDS - t0)) s)"

echo "== 6: BLKRRPART and BLKPG under a reader"
t0=$SECONDS
pimg=$(new_backing race-parts.img 8M)
dd if=/dev/urandom of="$pimg" bs=1M count=8 conv=notrunc status=none
printf 'label: dos\nstart=2048,size=4096\nstart=6144,size=4096\nstart=10240,size=4096\n' |
	sfdisk -q "$pimg"
dev=$(losetup -f --show -P "$pimg")
settle
for k in 1 2 3; do [ -b "${dev}p$k" ] || fail "${dev}p$k missing"; done
secs=$(budget 6 10)
timeout $((secs + 120)) "${RACE[@]}" parts "$secs" "$dev" "$pimg" $((2048 * 512)):$((4096 * 512)) \
	$((6144 * 512)):$((4096 * 512)) $((10240 * 512)):$((4096 * 512)) >"$SCRATCH/race-parts.out" &
preader=$!
pids+=("$preader")
rounds=0 del=0 add=0 rrpart=0
while kill -0 $preader 2>/dev/null; do
	timeout 60 partx --delete "$dev" 2>/dev/null && del=$((del + 1))
	timeout 60 partx --add "$dev" 2>/dev/null && add=$((add + 1))
	timeout 60 blockdev --rereadpt "$dev" 2>/dev/null && rrpart=$((rrpart + 1))
	rounds=$((rounds + 1))
	[ $((rounds % 4)) != 0 ] || settle
done
wait $preader || fail "partition reader: $(cat "$SCRATCH/race-parts.out")"
settle
blockdev --rereadpt "$dev" || fail "BLKRRPART after the race"
settle
for k in 1 2 3; do
	cmp -s "${dev}p$k" <(dd if="$pimg" bs=512 skip=$((2048 + (k - 1) * 4096)) count=4096 status=none) ||
		fail "${dev}p$k reads wrong after the race"
done
[ $((del + add + rrpart)) -gt 0 ] || fail "no partition table change succeeded during the reads"
detach "$dev"
echo "6: $rounds rounds (delete ok $del, add ok $add, BLKRRPART ok $rrpart);" \
	"$(cat "$SCRATCH/race-parts.out") ($((SECONDS - t0)) s)"

echo "== 7: a writer in a 32 MiB memory cgroup"
t0=$SECONDS
cgmnt=$(mktemp -d)
mount -t cgroup2 none "$cgmnt"
echo +memory >"$cgmnt/cgroup.subtree_control" 2>/dev/null || true
mkdir "$cgmnt/race-stress"
echo $((32 << 20)) >"$cgmnt/race-stress/memory.max"
mimg=$(new_backing race-memcg.img 64M)
secs=$(budget 0 15)
end=$((SECONDS + secs))
rounds=0
while [ $rounds -lt 1 ] || [ $SECONDS -lt $end ]; do
	dev=$(losetup -f --show "$mimg")
	# shellcheck disable=SC2016 # the script's arguments expand in its shell
	timeout 400 bash -c 'echo $$ >"$1/cgroup.procs" && exec fio --name=memcg --filename="$2" \
		--rw=write --bs=1M --size=64M --ioengine=psync --verify=crc32c --do_verify=0 \
		--randseed="$3" --end_fsync=1 --output="$4"' _ \
		"$cgmnt/race-stress" "$dev" $((rounds + 1)) "$SCRATCH/race-memcg.out" ||
		fail "the writer in the memory cgroup failed: $(tail -n 5 "$SCRATCH/race-memcg.out")"
	detach "$dev"
	echo 3 >/proc/sys/vm/drop_caches
	# The backing file itself holds what was written through the device.
	timeout 400 fio --name=memcg --filename="$mimg" --rw=write --bs=1M --size=64M \
		--ioengine=psync --verify=crc32c --verify_only --direct=1 --randseed=$((rounds + 1)) \
		--output="$SCRATCH/race-memcg-verify.out" ||
		fail "verify after the memory cgroup writer: $(tail -n 5 "$SCRATCH/race-memcg-verify.out")"
	rounds=$((rounds + 1))
done
events=$(tr '\n' ' ' <"$cgmnt/race-stress/memory.events")
peak=$(cat "$cgmnt/race-stress/memory.peak" 2>/dev/null || echo ?)
rmdir "$cgmnt/race-stress"
umount "$cgmnt"
cgmnt=""
echo "7: $rounds x 64 MiB written and verified; memcg peak $peak, events: $events ($((SECONDS - t0)) s)"

echo "== 4: loop-control churn with rmmod attempts"
t0=$SECONDS
# With the module unloaded, an open of a loop node would load C loop: no module autoloading.
echo /bin/true >/proc/sys/kernel/modprobe
cb=$(new_backing race-churn.img 1M)
secs=$(budget 6 15)
for seed in 1 2 3; do
	timeout $((secs + 120)) "${RACE[@]}" churn "$secs" "$seed" 40 8 "$cb" "$SCRATCH/race-nodes" \
		>"$SCRATCH/race-churn$seed.out" 2>&1 &
	pids+=($!)
done
churners=("${pids[@]: -3}")
tries=0 unloads=0
end=$((SECONDS + secs))
while [ $SECONDS -lt $end ]; do
	if timeout 60 rmmod "$MOD" 2>/dev/null; then
		unloads=$((unloads + 1))
		if [ "$DRIVER" = rust ]; then
			timeout 60 insmod "$RUST_LOOP_KO" || fail "reload after rmmod"
		else
			timeout 60 modprobe loop || fail "reload after rmmod"
		fi
	fi
	tries=$((tries + 1))
	sleep 0.5
done
for p in "${churners[@]}"; do
	wait "$p" || fail "churn worker: $(cat "$SCRATCH"/race-churn*.out)"
done
echo "$old_modprobe" >/proc/sys/kernel/modprobe
cat "$SCRATCH"/race-churn*.out
settle
losetup -D
settle
left=$(losetup -a)
[ -z "$left" ] || fail "devices still bound after the churn: $left"
rm -rf "$SCRATCH/race-nodes"
timeout 60 rmmod "$MOD" || fail "the module does not unload after the churn"
echo "4: $tries rmmod attempts, $unloads unloaded (and reloaded) during the churn ($((SECONDS - t0)) s)"
