# SPDX-License-Identifier: GPL-2.0
# rust_loop: see README.md.
#
#   make                 build rust_loop.ko against the cached test kernel (debug flavour;
#                        KERNEL_FLAVOUR=release for the other), copied to ./rust_loop.ko
#   make KDIR=/path      build against any Rust-enabled kernel build tree (make -C KDIR M=.)
#   make CLIPPY=1        the same with clippy
#   make install         build and install into /lib/modules/RELEASE/extra with the
#                        modprobe.d file, then depmod (KDIR= defaults to the running kernel's
#                        build tree; INSTALL_MOD_PATH= stages it); make uninstall
#   make dkms-install    the same through DKMS (DKMS_ARGS="-k RELEASE ..."); dkms-uninstall
#   make install-test    the install, DKMS and KDIR-check tests on the host (scripts/install-test)
#   make run / check     the README's two commands
#   make stress          the stress tests on both drivers
#   make bench / profile the benchmark (Documentation/benchmark.md) / a perf profile of a job
#   make bench-plot      bench/results.png and the table again from bench/results.json
#   make fmt             rustfmt the sources with the kernel's .rustfmt.toml
#   make docs-check      parse Documentation/**/*.rst with docutils, warnings are errors

KERNEL_FLAVOUR ?= debug
# The C compiler of the kernel: clang-MAJOR of its clang (Debian's names), gcc for a gcc kernel.
ifeq ($(KDIR),)
LLVM ?= -19
else
LLVM ?= $(shell sed -n 's/^CONFIG_CLANG_VERSION=\([1-9][0-9]*\)[0-9]\{4\}$$/-\1/p' \
	$(KDIR)/include/config/auto.conf 2>/dev/null)
endif

.PHONY: all modules clean setup kernel run check stress bench bench-plot profile fmt fmt-check \
	docs-check install uninstall dkms-build dkms-install dkms-uninstall install-test

all: modules

ifeq ($(KDIR),)
modules:
	@ko=$$(scripts/build-module $(KERNEL_FLAVOUR)) && cp "$$ko" rust_loop.ko && echo "built $$ko"
else
# dkms adds CC=clang LD=ld.lld for a clang-built kernel: LLVM= already picks the tools
# (clang-MAJOR), so those are not passed on.
MAKEOVERRIDES := $(filter-out CC=% LD=%,$(MAKEOVERRIDES))
modules:
	@LLVM=$(LLVM) $(CURDIR)/scripts/check-kdir $(KDIR)
	$(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=$(LLVM) W=e $(if $(CLIPPY),CLIPPY=1) modules
endif

clean:
	rm -f rust_loop.ko
	$(if $(wildcard $(KDIR)/Makefile),$(MAKE) -C $(KDIR) M=$(CURDIR) clean)

# Installing on a kernel (make install / dkms): see README "Install".
INSTALL_KDIR = $(or $(KDIR),/lib/modules/$(shell uname -r)/build)
KRELEASE = $(shell cat $(INSTALL_KDIR)/include/config/kernel.release 2>/dev/null)
MODPROBE_CONF = $(INSTALL_MOD_PATH)/etc/modprobe.d/rust_loop.conf
DEPMOD = depmod $(if $(INSTALL_MOD_PATH),-b $(INSTALL_MOD_PATH)) -a $(KRELEASE)
PKGVER = $(shell sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' $(CURDIR)/dkms.conf)
DKMS_SRC = /usr/src/rust_loop-$(PKGVER)
# What DKMS builds from (copied to DKMS_SRC).
DKMS_FILES = dkms.conf Kbuild Makefile $(filter-out %.mod.c,$(wildcard *.rs *.c *.h)) staging device \
	packaging scripts/check-kdir

install:
	@LLVM=$(LLVM) scripts/check-kdir --install $(INSTALL_KDIR)
	$(MAKE) KDIR=$(INSTALL_KDIR) modules
	$(MAKE) -C $(INSTALL_KDIR) M=$(CURDIR) LLVM=$(LLVM) INSTALL_MOD_DIR=extra modules_install
	install -D -m 644 packaging/modprobe.d/rust_loop.conf $(MODPROBE_CONF)
	$(DEPMOD)

uninstall:
	@[ -n "$(KRELEASE)" ] || { echo "rust_loop: no kernel release in $(INSTALL_KDIR); pass KDIR=" >&2; exit 1; }
	rm -f $(INSTALL_MOD_PATH)/lib/modules/$(KRELEASE)/extra/rust_loop.ko* $(MODPROBE_CONF)
	$(DEPMOD)

# What dkms.conf's MAKE runs: a build to install, so loop must not be built in.
dkms-build:
	@LLVM=$(LLVM) scripts/check-kdir --install $(KDIR)
	$(MAKE) modules

dkms-install:
	-dkms remove rust_loop/$(PKGVER) --all >/dev/null 2>&1
	rm -rf $(DKMS_SRC)
	mkdir -p $(DKMS_SRC)/scripts
	cp -r $(filter-out scripts/%,$(DKMS_FILES)) $(DKMS_SRC)/
	cp $(filter scripts/%,$(DKMS_FILES)) $(DKMS_SRC)/scripts/
	dkms add rust_loop/$(PKGVER)
	dkms build rust_loop/$(PKGVER) $(DKMS_ARGS)
	dkms install rust_loop/$(PKGVER) $(DKMS_ARGS)
	install -D -m 644 packaging/modprobe.d/rust_loop.conf /etc/modprobe.d/rust_loop.conf

dkms-uninstall:
	-dkms remove rust_loop/$(PKGVER) --all
	rm -rf $(DKMS_SRC) /etc/modprobe.d/rust_loop.conf

# Host-side tests of the above against the cached test kernel's build tree (under a minute).
install-test:
	scripts/install-test

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

bench-plot:
	scripts/bench --plot-only

# Where one benchmark job's CPU time goes (PROFILE_JOB=...), C loop vs rust_loop.
profile:
	scripts/profile
