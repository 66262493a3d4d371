#!/usr/bin/env bash
# The kernel's uevents for a loop device, in order, as udev and systemd see them: attach
# sends one KOBJ_CHANGE (the size and media change during set-up are suppressed),
# LOOP_SET_CAPACITY a resize (RESIZE=1), detach a change and a media change. Events udevd synthesizes itself (its
# inotify "watch" on close after write, SYNTH_UUID) are not the driver's and are ignored.
. "$(dirname "$0")/../lib.sh"

load_driver
f=$(new_backing uevents.img 8M)
dev=$(losetup -f)
name=${dev#/dev/}
log=/tmp/uevents.log
stdbuf -oL udevadm monitor --kernel --property --subsystem-match=block >"$log" &
monitor=$!
trap 'kill $monitor 2>/dev/null || true; unload_driver >/dev/null 2>&1 || true' EXIT
# Wait until the monitor listens: it prints its banner first.
for _ in $(seq 50); do
	grep -q "KERNEL" "$log" 2>/dev/null && break
	sleep 0.1
done

# events: sets $ev to the driver's events for $name since the last call, e.g.
# "change:MEDIA change".
seen=0 ev=
events() {
	local all
	settle
	sleep 0.5
	all=$(awk -v want="/devices/virtual/block/$name" '
		/^ACTION=/ { action = substr($0, 8) }
		/^DEVPATH=/ { path = substr($0, 9) }
		/^RESIZE=1/ { extra = extra ":RESIZE" }
		/^DISK_MEDIA_CHANGE=1/ { extra = extra ":MEDIA" }
		/^SYNTH_UUID=/ { synth = 1 }
		/^$/ {
			if (path == want && !synth) printf "%s%s\n", action, extra
			action = path = extra = ""; synth = 0
		}' "$log")
	ev=$(printf '%s\n' "$all" | tail -n +$((seen + 1)) | paste -sd ' ')
	seen=$(printf '%s\n' "$all" | grep -c . || true)
}
events

losetup "$dev" "$f"
events
assert_eq "change" "$ev" "uevents of attach"
truncate -s 16M "$f"
losetup -c "$dev"
events
assert_eq "change:RESIZE" "$ev" "uevents of LOOP_SET_CAPACITY"
losetup -d "$dev"
events
assert_eq "change change:MEDIA" "$ev" "uevents of detach"
