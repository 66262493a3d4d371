#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The guest side of `make profile`: one fio job (PROFILE_JOB, default randread-qd64, 4k
# random reads at QD64) on a loop device over a file on ext4, for C and rust_loop, buffered
# and dio, each under `perf record -a` (cpu-clock: TCG has no PMU). Writes, per contender,
# the top kernel symbols by self time and the whole-guest busy CPU per I/O to $OUT.

set -euo pipefail
. "$(dirname "$0")/jobs.sh"
OUT=${OUT:?}
DISK=${BENCH_DISK:?}
SIZE_MB=${SIZE_MB:-1024}
RUNTIME=${RUNTIME:-10}
JOB=${PROFILE_JOB:-randread-qd64}
mkdir -p "$OUT"
echo 0 >/proc/sys/kernel/kptr_restrict
echo -1 >/proc/sys/kernel/perf_event_paranoid

job_section "$JOB" >/dev/null

mnt=/tmp/profile-ext4
mkdir -p "$mnt"
mkfs.ext4 -q -F "$DISK"
mount "$DISK" "$mnt"
file=$mnt/backing.img
fill "$file" "$SIZE_MB"
cd /tmp

for who in ${PROFILE_ORDER:-c-buffered rust-buffered c-dio rust-dio}; do
	drv=${who%%-*}
	dio=$([ "${who#*-}" = dio ] && echo on || echo off)
	if [ "$drv" = c ]; then modprobe loop; else insmod "$RUST_LOOP_KO"; fi
	dev=$(losetup --direct-io=$dio -f --show "$file")
	sync
	echo 3 >/proc/sys/vm/drop_caches
	{
		printf '[global]\nfilename=%s\nioengine=libaio\ndirect=1\nsize=%sM\n' "$dev" "$SIZE_MB"
		printf 'time_based\nruntime=%s\nrandrepeat=0\n' "$RUNTIME"
		job_section "$JOB"
	} >/tmp/job.fio
	fio --output-format=json --output=/tmp/fio.json /tmp/job.fio >/dev/null 2>&1 &
	# Profile the steady state only: fio's start (loading its libraries, setting up its
	# shared memory) takes over a second under emulation.
	sleep 2
	busy0=$(busy_ticks)
	perf record -q -a ${PROFILE_CALLGRAPH:+-g} -e cpu-clock -o /tmp/perf.data -- \
		sleep $((RUNTIME - 3)) 2>/dev/null
	busy=$(($(busy_ticks) - busy0))
	wait $!
	# The I/Os of the profiled window, at fio's average rate.
	iops=$(python3 -c 'import json; j = json.load(open("/tmp/fio.json"))["jobs"][0]
print(int(j["read"]["iops"] + j["write"]["iops"]))')
	ios=$((iops * (RUNTIME - 3)))
	{
		echo "== $who: $JOB, $iops IOPS, guest busy CPU $((busy * 10000 / ios)) us/IO"
		echo "busy samples by module, then by symbol (idle excluded, % of busy):"
		perf report -i /tmp/perf.data --no-children --sort dso,sym --stdio -g none \
			--percent-limit 0 2>/dev/null | python3 -c '
import collections, sys
rows = []
for line in sys.stdin:
    parts = line.split()
    if len(parts) < 4 or not parts[0].endswith("%"):
        continue
    dso, sym = parts[1], " ".join(parts[3:])
    if any(idle in sym for idle in ("safe_halt", "default_idle", "cpuidle", "do_idle")):
        continue
    rows.append((float(parts[0][:-1]), dso, sym))
busy = sum(r[0] for r in rows) or 1
by_dso = collections.Counter()
for p, dso, _ in rows:
    by_dso[dso] += p
for dso, p in by_dso.most_common(8):
    print(f"{100 * p / busy:6.2f}%  {dso}")
for p, dso, sym in rows[:40]:
    print(f"{100 * p / busy:6.2f}%  {sym} ({dso})")
'
	} >"$OUT/$who.run.txt"
	# A contender named twice in PROFILE_ORDER keeps every run.
	cat "$OUT/$who.run.txt" >>"$OUT/$who.txt"
	# With PROFILE_CALLGRAPH=1, also where the busiest symbols are called from.
	[ -z "${PROFILE_CALLGRAPH:-}" ] ||
		perf report -i /tmp/perf.data --no-children --stdio -g caller,0.5 --percent-limit 0.5 \
			2>/dev/null >>"$OUT/$who.callgraph.txt" || true
	cat "$OUT/$who.run.txt"
	rm "$OUT/$who.run.txt"
	losetup -d "$dev"
	udevadm settle 2>/dev/null || true
	if [ "$drv" = c ]; then rmmod loop; else rmmod rust_loop; fi
done
umount "$mnt"
