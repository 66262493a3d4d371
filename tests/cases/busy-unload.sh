#!/usr/bin/env bash
# The module cannot be unloaded while a device is open (the disk's fops->owner).
. "$(dirname "$0")/../lib.sh"

load_driver
exec 3</dev/loop0
if rmmod "$(driver_module)" 2>/dev/null; then fail "module unloaded while /dev/loop0 is open"; fi
exec 3<&-
unload_driver
