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
. "$(dirname "$0")/jobs.sh"
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
fill "$file" "$SIZE_MB"
modprobe brd rd_nr=1 rd_size=$((SIZE_MB * 1024))
ram=/dev/ram0
fill "$ram" "$SIZE_MB"

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

# fio runs every job of a store in one invocation (a job per section, each behind a
# stonewall): starting fio once per job cost about 2 s of emulated time per run. Around every
# job, fio calls $mark: before it (exec_prerun), it syncs, drops the caches and records the
# guest's busy CPU time (user, nice, system, irq, softirq in USER_HZ) and the clock
# (/proc/uptime, 10 ms steps); after it (exec_postrun), it records them again. Clones of a
# job (numjobs=2) each call it; the first start and the last end count.
work=/tmp/bench-work
mkdir -p "$work"
cd "$work"
mark=$work/mark
cat >"$mark" <<'SH'
#!/bin/sh
# mark start|end RUN (shell builtins only, but for sync: every process start costs time)
set -e
if [ "$1" = start ]; then
	# fio passes its fd 3, the progress stream, on to this script.
	read -r uptime _ </proc/uptime
	[ -e "$OUT/$2.marks" ] || echo "[bench ${uptime}s] $2" >&3 || true
	sync
	echo 3 >/proc/sys/vm/drop_caches
fi
read -r _ user nice system _ _ irq softirq _ </proc/stat
read -r uptime _ </proc/uptime
echo "$1 $((user + nice + system + irq + softirq)) $uptime" >>"$OUT/$2.marks"
SH
chmod +x "$mark"
export OUT

run() { # STORE CONTENDER REP JOB...
	local store=$1 who=$2 rep=$3 target backing dev="" job
	shift 3
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
	{
		printf '[global]\nfilename=%s\nioengine=libaio\ndirect=1\nsize=%sM\n' "$target" "$SIZE_MB"
		printf 'time_based\nruntime=%s\nramp_time=1\nrandrepeat=0\n' "$RUNTIME"
		for job; do
			job_section "$job"
			printf 'exec_prerun=%s start %s\n' "$mark" "$store.$job.$who.$rep"
			printf 'exec_postrun=%s end %s\n' "$mark" "$store.$job.$who.$rep"
		done
	} >"$work/jobs.fio"
	fio --output-format=json --output="$work/out.json" "$work/jobs.fio" 3>&1
	[ -z "$dev" ] || losetup -d "$dev"
	# One fio JSON and one CPU record (busy ticks, seconds) per job, as the report reads them.
	python3 - "$work/out.json" "$OUT" "$store" "$who" "$rep" <<'PY'
import json, sys
out_json, out, store, who, rep = sys.argv[1:]
with open(out_json) as f:
    d = json.load(f)
for job in d["jobs"]:
    base = f"{out}/{store}.{job['jobname']}.{who}.{rep}"
    with open(base + ".json", "w") as f:
        json.dump(d | {"jobs": [job]}, f)
    with open(base + ".marks") as f:
        marks = [line.split() for line in f]
    start = min((float(m[2]), int(m[1])) for m in marks if m[0] == "start")
    end = max((float(m[2]), int(m[1])) for m in marks if m[0] == "end")
    with open(base + ".cpu", "w") as f:
        f.write(f"{end[1] - start[1]} {end[0] - start[0]}\n")
PY
}

# Each repetition runs every job for one contender, then for the next (A B C D E, A B C D E):
# drift still hits all contenders alike, and the driver is switched twice per repetition, not
# twice per job.
contenders="raw c-buffered c-dio rust-buffered rust-dio"
for rep in $(seq "$REPS"); do
	for who in $contenders; do
		# shellcheck disable=SC2086
		run file "$who" "$rep" ${FILE_JOBS-randread-qd1 randread-qd64 randwrite-qd64 randrw-qd32x2 seqread-1m seqwrite-1m}
		# shellcheck disable=SC2086
		run ram "$who" "$rep" ${RAM_JOBS-randread-qd64}
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
