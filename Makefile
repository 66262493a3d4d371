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
