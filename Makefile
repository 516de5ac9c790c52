# SPDX-License-Identifier: GPL-2.0
#
# virtio_balloon out of tree. Kbuild does the building; this file only picks
# the kernel and offers the project's entry points.
#
#   make [KDIR=/usr/src/linux-headers-<ver>]   build virtio_balloon.ko here
#   make install                              install into updates/ and run depmod
#   make check                                every test (installs what it needs)
#   make kunit [KUNIT_KERNELS="6.1 7.3"]      the KUnit suites, in UML (labels of tools/testing/kernels)
#   make demo                                 boot a guest and show the driver working
#   make bench                                migration benchmark against the in-tree driver

KERNELRELEASE ?=
ifneq ($(KERNELRELEASE),)
include $(src)/Kbuild
else

KVER ?= $(shell uname -r)
KDIR ?= $(firstword $(wildcard /lib/modules/$(KVER)/build))
PWD := $(CURDIR)

all: modules

modules:
	@test -n "$(KDIR)" || { echo "no headers for $(KVER): set KDIR=/usr/src/linux-headers-<version>" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(PWD) modules

# The headers name the kernel they belong to; depmod needs that name.
KREL = $(shell sed -n 's/^#define UTS_RELEASE "\(.*\)"/\1/p' $(KDIR)/include/generated/utsrelease.h 2>/dev/null)

install: modules
	$(MAKE) -C $(KDIR) M=$(PWD) INSTALL_MOD_DIR=updates modules_install
	depmod -a -b $(or $(INSTALL_MOD_PATH),/) $(KREL)

clean:
	@test -z "$(KDIR)" || $(MAKE) -C $(KDIR) M=$(PWD) clean
	rm -f *.o *.ko *.mod *.mod.c .*.cmd modules.order Module.symvers \
	      drivers/virtio/*.o drivers/virtio/.*.cmd

check:
	bash tools/testing/check.sh

demo:
	bash tools/testing/demo.sh

bench:
	bash tools/testing/setup.sh >/dev/null
	/usr/bin/python3 tools/testing/bench.py

kunit:
	bash tools/testing/kunit.sh $(KUNIT_KERNELS)

.PHONY: all modules install clean check demo bench kunit
endif
