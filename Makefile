# SPDX-License-Identifier: GPL-2.0
# rust_loop: see README.md.
#
#   make                 build rust_loop.ko against the cached test kernel (debug flavour;
#                        KERNEL_FLAVOUR=release for the other), copied to ./rust_loop.ko
#   make KDIR=/path      build against any Rust-enabled kernel build tree (make -C KDIR M=.)
#   make CLIPPY=1        the same with clippy
#   make run / check     the README's two commands
#   make stress          the stress tests on both drivers
#   make bench / profile the benchmark (Documentation/benchmark.md) / a perf profile of a job
#   make fmt             rustfmt the sources with the kernel's .rustfmt.toml
#   make docs-check      parse Documentation/**/*.rst with docutils, warnings are errors

KERNEL_FLAVOUR ?= debug
LLVM ?= -19

.PHONY: all modules clean setup kernel run check stress bench profile fmt fmt-check docs-check

all: modules

ifeq ($(KDIR),)
modules:
	@ko=$$(scripts/build-module $(KERNEL_FLAVOUR)) && cp "$$ko" rust_loop.ko && echo "built $$ko"
else
modules:
	$(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=$(LLVM) W=e $(if $(CLIPPY),CLIPPY=1) modules
endif

clean:
	rm -f rust_loop.ko
	$(if $(KDIR),$(MAKE) -C $(KDIR) M=$(CURDIR) clean)

setup:
	scripts/setup

# The test kernel (cached).
kernel:
	scripts/setup
	scripts/build-kernel $(KERNEL_FLAVOUR)

# Fresh machine: set-up, kernel, module, and a demo in the VM.
run:
	scripts/run-demo

# The whole test suite in the VM (debug kernel); last line "N passed, N failed, N skipped".
check:
	scripts/check

# The stress tests, on both drivers where shared: the long ones ("# stress", which make check
# runs on rust_loop only) and the time-driven ones ("# timed": the fuzzer's hunting mode and
# the race scenarios), which run DURATION seconds each here (a minute or so in make check).
DURATION ?= 600
stress:
	STRESS_DURATION=$(DURATION) FULL_ORACLE=1 scripts/check $$(grep -l -E '^# (stress|timed)' tests/cases/*.sh)

RUST_SOURCES = $(wildcard *.rs staging/*.rs device/*.rs)
RUSTFMT_CONFIG = $(shell bash -c '. scripts/lib.sh && echo "$$(ksrc_dir)/.rustfmt.toml"')

fmt:
	rustfmt --edition 2021 --config-path $(RUSTFMT_CONFIG) $(RUST_SOURCES)

fmt-check:
	rustfmt --check --edition 2021 --config-path $(RUSTFMT_CONFIG) $(RUST_SOURCES)

# The rst documentation parses without warnings (a gate of make check).
docs-check:
	scripts/docs-check

# rust_loop vs C loop vs the raw backing store, one boot of the release kernel.
bench:
	scripts/bench

# Where one benchmark job's CPU time goes (PROFILE_JOB=...), C loop vs rust_loop.
profile:
	scripts/profile
