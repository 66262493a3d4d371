# SPDX-License-Identifier: GPL-2.0
# rust_loop: see README.md. `make` builds rust_loop.ko against the cached test kernel, or
# against any Rust-enabled kernel build tree given as KDIR=...

KERNEL_FLAVOUR ?= debug
KDIR ?= $(shell scripts/build-kernel --print-dir $(KERNEL_FLAVOUR))
LLVM ?= -19

.PHONY: all modules clean setup kernel run check bench fmt fmt-check

all: modules

modules:
	$(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=$(LLVM) W=e $(if $(CLIPPY),CLIPPY=1) modules

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=$(LLVM) clean

# The test kernel (cached), for `make KDIR=` users who want ours.
kernel:
	scripts/setup
	scripts/build-kernel $(KERNEL_FLAVOUR)

setup:
	scripts/setup

# Fresh machine: set-up, kernel, module, and a demo in the VM.
run:
	scripts/run-demo

# The whole test suite in the VM (debug kernel); last line "N passed, N failed".
check:
	scripts/check

fmt:
	rustfmt --edition 2021 --config-path $(KDIR)/source/.rustfmt.toml *.rs

fmt-check:
	rustfmt --check --edition 2021 --config-path $(KDIR)/source/.rustfmt.toml *.rs
