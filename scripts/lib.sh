# SPDX-License-Identifier: GPL-2.0
# Common settings for the rust_loop scripts. Source it; do not run it.

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Everything downloaded or built lives here, outside the repository.
CACHE=${RUST_LOOP_CACHE:-$HOME/.cache/rust_loop}
# Kernel source package and the suite it comes from.
KSRC_PKG=linux-source-7.3
KSRC_SUITE=trixie-backports
LLVM_SUFFIX=-19
JOBS=${JOBS:-$(($(nproc) + 1))}

TOOLS="$CACHE/tools"
VENV="$CACHE/venv"
export PATH="$VENV/bin:$TOOLS/bin:$HOME/.cargo/bin:$PATH"

T0=${T0:-$(date +%s)}
export T0

# step MSG: print a progress line with the elapsed time since the first script started.
step() {
	local now
	now=$(date +%s)
	printf '[%4ds] %s\n' $((now - T0)) "$*" >&2
}

die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# run_logged LOG CMD...: run CMD with its output in LOG; on failure show the tail.
run_logged() {
	local log=$1
	shift
	if ! "$@" >"$log" 2>&1; then
		printf 'error: %s failed; last lines of %s:\n' "$*" "$log" >&2
		tail -n 40 "$log" >&2
		return 1
	fi
}

# The kernel source tree unpacked from the Debian package (set up by scripts/setup).
ksrc_dir() {
	local v
	v=$(cat "$CACHE/src/VERSION" 2>/dev/null) || die "kernel source missing: run scripts/setup"
	echo "$CACHE/src/$v/linux"
}

# kernel_key FLAVOUR: the cache key of a kernel build: source version, config fragments,
# rustc, bindgen and clang versions.
kernel_key() {
	local flavour=$1
	{
		cat "$CACHE/src/VERSION"
		cat "$REPO/scripts/kconfig/base.config" "$REPO/scripts/kconfig/$flavour.config"
		rustc --version
		bindgen --version
		"clang$LLVM_SUFFIX" --version | head -n 1
	} | sha256sum | cut -c1-12
}

# kernel_dir FLAVOUR: the build directory of the cached test kernel of that flavour.
kernel_dir() {
	echo "$CACHE/kernel/$1-$(kernel_key "$1")"
}
