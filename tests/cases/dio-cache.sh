#!/usr/bin/env bash
# Direct I/O removes the double caching: reading the device leaves the backing file out of
# the page cache; without it the file ends up cached.
. "$(dirname "$0")/../lib.sh"

load_driver
f=$(new_backing cache.img 128M)
dd if=/dev/zero of="$f" bs=1M count=128 oflag=direct conv=notrunc status=none
cached_pct() { fincore -b -n -o RES "$f" | awk -v s=$((128 << 20)) '{print int($1 * 100 / s)}'; }
for mode in on off; do
	echo 3 >/proc/sys/vm/drop_caches
	dev=$(losetup --direct-io=$mode -f --show "$f")
	dd if="$dev" of=/dev/null bs=1M iflag=direct status=none
	pct=$(cached_pct)
	echo "direct-io=$mode: backing file ${pct}% cached"
	detach "$dev"
	case $mode in
	on) [ "$pct" -lt 5 ] || fail "dio on: backing file ${pct}% cached" ;;
	off) [ "$pct" -gt 90 ] || fail "dio off: backing file only ${pct}% cached" ;;
	esac
done
