# SPDX-License-Identifier: GPL-2.0
# What `make bench` and `make profile` share in the guest: the fio jobs, the backing-store
# fill and the guest CPU counter. Source it.

# job_section NAME: the fio job file section of one benchmark job.
job_section() {
	printf '[%s]\nstonewall\n' "$1"
	case $1 in
	randread-qd1) printf 'rw=randread\nbs=4k\niodepth=1\n' ;;
	randread-qd64) printf 'rw=randread\nbs=4k\niodepth=64\n' ;;
	randwrite-qd64) printf 'rw=randwrite\nbs=4k\niodepth=64\n' ;;
	randrw-qd32x2) printf 'rw=randrw\nrwmixread=70\nbs=4k\niodepth=32\nnumjobs=2\ngroup_reporting\n' ;;
	seqread-1m) printf 'rw=read\nbs=1M\niodepth=8\n' ;;
	seqwrite-1m) printf 'rw=write\nbs=1M\niodepth=8\n' ;;
	*) echo "unknown job $1" >&2; return 1 ;;
	esac
}

# fill TARGET MIB: writes MIB MiB of fio's random data, so that every block is allocated.
fill() {
	fio --name=fill --filename="$1" --rw=write --bs=1M --size="$2M" --direct=1 \
		--ioengine=libaio --iodepth=8 --output=/dev/null
}

# busy_ticks: the guest's busy CPU time (user, nice, system, irq, softirq) in USER_HZ.
busy_ticks() {
	local user nice system irq softirq
	read -r _ user nice system _ _ irq softirq _ </proc/stat
	echo $((user + nice + system + irq + softirq))
}
