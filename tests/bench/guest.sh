#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The guest side of `make bench`: every contender on the same backing stores in one boot,
# interleaved per repetition (A B C D E, A B C D E, ...) so that drift hits all of them.
#
# Contenders: raw (fio on the backing store itself, O_DIRECT), c-buffered, c-dio,
# rust-buffered, rust-dio. Stores: "file" (a preallocated file on ext4 on a virtio disk with
# host cache=none) and "ram" (a brd RAM disk used as backing block device).
# Writes one fio JSON per run to $OUT, plus setup-cost timings; the host builds the report.

set -euo pipefail
OUT=${OUT:?}
REPS=${REPS:-3}
RUNTIME=${RUNTIME:-10}
DISK=${BENCH_DISK:?}
SIZE_MB=${SIZE_MB:-1024}
mkdir -p "$OUT"

# Progress goes to standard output, which the VM runner streams live.
progress() { printf '[bench %s] %s\n' "$(date +%T)" "$*"; }

mnt=/tmp/bench-ext4
mkdir -p "$mnt"
mkfs.ext4 -q -F "$DISK"
mount "$DISK" "$mnt"
file="$mnt/backing.img"
progress "filling a ${SIZE_MB} MiB backing file"
fio --name=fill --filename="$file" --rw=write --bs=1M --size=${SIZE_MB}M --direct=1 \
	--ioengine=libaio --iodepth=8 --output=/dev/null
modprobe brd rd_nr=1 rd_size=$((SIZE_MB * 1024))
ram=/dev/ram0
dd if=/dev/urandom of=$ram bs=1M count=$SIZE_MB oflag=direct status=none

cur=""
use_driver() {
	[ "$cur" = "$1" ] && return 0
	losetup -D 2>/dev/null || true
	udevadm settle 2>/dev/null || true
	case $cur in rust) rmmod rust_loop ;; c) rmmod loop ;; esac
	case $1 in rust) insmod "$RUST_LOOP_KO" ;; c) modprobe loop ;; raw) ;; esac
	cur=$1
	udevadm settle 2>/dev/null || true
}

# job NAME: fio options of each job.
job_opts() {
	case $1 in
	randread-qd1) echo "--rw=randread --bs=4k --iodepth=1" ;;
	randread-qd64) echo "--rw=randread --bs=4k --iodepth=64" ;;
	randwrite-qd64) echo "--rw=randwrite --bs=4k --iodepth=64" ;;
	randrw-qd32x2) echo "--rw=randrw --rwmixread=70 --bs=4k --iodepth=32 --numjobs=2 --group_reporting" ;;
	seqread-1m) echo "--rw=read --bs=1M --iodepth=8" ;;
	seqwrite-1m) echo "--rw=write --bs=1M --iodepth=8" ;;
	esac
}

# cpu_busy_ticks: the guest's busy CPU time (user, nice, system, irq, softirq) in USER_HZ.
cpu_busy_ticks() {
	awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat
}

run() { # STORE CONTENDER JOB REP
	local store=$1 who=$2 job=$3 rep=$4 target backing dev=""
	backing=$([ "$store" = file ] && echo "$file" || echo "$ram")
	case $who in
	raw) use_driver raw; target=$backing ;;
	*)
		use_driver "${who%%-*}"
		local dio=$([ "${who#*-}" = dio ] && echo on || echo off)
		dev=$(losetup --direct-io=$dio -f --show "$backing")
		[ "$(cat /sys/block/${dev#/dev/}/loop/dio)" = "$([ $dio = on ] && echo 1 || echo 0)" ] ||
			progress "warning: $who on $store: dio is not $dio"
		target=$dev
		;;
	esac
	sync
	echo 3 >/proc/sys/vm/drop_caches
	# The classic loop dio job runs at least 20 s, as that benchmark is usually quoted.
	local runtime=$RUNTIME
	[ "$store/$job" != file/randread-qd64 ] || [ "$runtime" -ge 20 ] || runtime=20
	progress "$store $job $who rep $rep (${runtime} s)"
	local busy0 t0
	busy0=$(cpu_busy_ticks)
	t0=$(date +%s.%N)
	# shellcheck disable=SC2046
	fio --name="$job" --filename="$target" --ioengine=libaio --direct=1 --size=${SIZE_MB}M \
		--time_based --runtime="$runtime" --ramp_time=1 --randrepeat=0 $(job_opts "$job") \
		--output-format=json --output="$OUT/$store.$job.$who.$rep.json"
	# The whole guest's CPU time over the fio run, the loop workers' included.
	echo "$(($(cpu_busy_ticks) - busy0)) $(echo "$(date +%s.%N) - $t0" | bc)" \
		>"$OUT/$store.$job.$who.$rep.cpu"
	[ -z "$dev" ] || losetup -d "$dev"
}

# Each repetition runs every job for one contender, then for the next (A B C D E, A B C D E):
# drift still hits all contenders alike, and the driver is switched twice per repetition, not
# twice per job.
contenders="raw c-buffered c-dio rust-buffered rust-dio"
for rep in $(seq "$REPS"); do
	for who in $contenders; do
		for job in ${FILE_JOBS-randread-qd1 randread-qd64 randwrite-qd64 randrw-qd32x2 seqread-1m seqwrite-1m}; do
			run file "$who" "$job" "$rep"
		done
		for job in ${RAM_JOBS-randread-qd1 randread-qd64}; do
			run ram "$who" "$job" "$rep"
		done
	done
done

# Setup cost: LOOP_CONFIGURE of 100 devices, 5000 open/close of an unbound device, and a
# small-file workload on ext4 on each driver (buffered and dio).
small=$mnt/small.img
truncate -s 256M "$small"
# An untar-sized tree: 1000 files of 97 B to 4.8 KiB in 20 directories, as one tarball.
python3 - <<'PY'
import io, tarfile
with tarfile.open("/tmp/small.tar", "w") as t:
    for d in range(20):
        for f in range(1, 51):
            info = tarfile.TarInfo(f"{d}/{f}")
            info.size = f * 97
            t.addfile(info, io.BytesIO(bytes(info.size)))
PY
for rep in $(seq "$REPS"); do
	for drv in c rust; do
		use_driver "$drv"
		t0=$(date +%s.%N)
		for i in $(seq 100); do losetup -f "$small"; done
		t1=$(date +%s.%N)
		losetup -D
		udevadm settle
		python3 -c '
import os, time
t = time.monotonic()
for _ in range(5000):
    os.close(os.open("/dev/loop7", os.O_RDONLY))
print(time.monotonic() - t)' >"$OUT/openclose.$drv.$rep.txt"
		echo "$t1 - $t0" | bc >"$OUT/configure100.$drv.$rep.txt"
		for dio in off on; do
			dev=$(losetup --direct-io=$dio -f --show "$small")
			t0=$(date +%s.%N)
			mkfs.ext4 -q -F "$dev"
			m=$(mktemp -d)
			mount "$dev" "$m"
			tar -xf /tmp/small.tar -C "$m"
			umount "$m"
			t1=$(date +%s.%N)
			echo "$t1 - $t0" | bc >"$OUT/smallfiles-dio-$dio.$drv.$rep.txt"
			losetup -d "$dev"
		done
		progress "setup costs $drv rep $rep"
	done
done
use_driver none
umount "$mnt"
progress "done"
