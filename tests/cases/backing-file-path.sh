#!/usr/bin/env bash
# loop/backing_file shows the longest path sysfs can: PAGE_SIZE - 2 bytes (4094 with 4 KiB
# pages), which leaves room for the newline and the NUL; one byte more is ENAMETOOLONG.
. "$(dirname "$0")/../lib.sh"

load_driver
page=$(getconf PAGESIZE)
# long_path LEN: creates a file whose absolute path is LEN bytes long and prints the path.
long_path() {
	local want=$1 p="$SCRATCH/longpath" name
	while [ $((want - ${#p})) -gt 201 ]; do
		p="$p/$(printf 'd%.0s' $(seq 199))"
	done
	name=$(printf 'f%.0s' $(seq $((want - ${#p} - 1))))
	mkdir -p "$p"
	p="$p/$name"
	truncate -s 1M "$p"
	[ ${#p} = "$want" ] || fail "made a path of ${#p} bytes, not $want"
	echo "$p"
}
rm -rf "$SCRATCH/longpath"
for len in $((page - 2)) $((page - 1)); do
	p=$(long_path "$len")
	dev=$(losetup -f --show "$p")
	if [ "$len" = $((page - 2)) ]; then
		shown=$(sysfs_loop "$dev" backing_file) || fail "backing_file of a $len-byte path"
		assert_eq "$p" "$shown" "backing_file of a $len-byte path"
	else
		expect_errno "File name too long" sysfs_loop "$dev" backing_file
	fi
	detach "$dev"
	rm -f "$p"
done
rm -rf "$SCRATCH/longpath"
