# SPDX-License-Identifier: GPL-2.0
#
# snapblk top-level Makefile.
#
#   make                build snapblk.ko for every supported kernel whose
#                       headers are installed, and the userspace tools
#   make KVER=R         build the module for kernel release R only
#   make KDIR=D         build the module against the kernel tree D only
#   make demo           in the test VM, start Python from an image served by
#                       nginx over a shaped link, lazily and after a download
#   make check          host tests + VM selftests on every kernel + checkpatch
#   make check-s3       the S3 store tests alone (radosgw in a test VM)
#   make bench-stores   snapblkd's throughput from nginx over a shaped link
#   make bench-prefetch cold start-up with no prefetch, readahead, recorded
#                       prefetch; sequential reads with readahead
#   make check-debug    VM selftests and allocation-failure injection on a
#                       KASAN/lockdep/kmemleak 6.12 kernel (built once,
#                       cached in /var/cache/snapblk/debug-kernel/)
#   make vm [KVER=R]    interactive shell in the test VM
#   make deps           install the Debian packages the project needs
#   make checkpatch     checkpatch.pl --strict over kmod/ and include/
#   make clean

# Kernel series we support; a release counts when /lib/modules/<r>/build
# exists and <r> starts with one of these.
SUPPORTED_SERIES := 6.1 6.12

TOP := $(abspath .)
B := $(TOP)/build

# Install missing Debian packages before anything below looks for kernels,
# headers or libraries, so that a fresh Debian 12 machine needs nothing by
# hand (a quick no-op when all are present).  SNAPBLK_NO_DEPS=1 skips it.
ifeq ($(SNAPBLK_NO_DEPS)$(filter clean help deps,$(MAKECMDGOALS)),)
ifneq ($(shell $(TOP)/scripts/install-deps --check >/dev/null 2>&1; echo $$?),0)
$(info make: installing missing packages (scripts/install-deps))
ifneq ($(shell $(TOP)/scripts/install-deps >&2; echo $$?),0)
$(error installing packages failed: see above, or run 'make deps')
endif
endif
endif
export SNAPBLK_NO_DEPS := 1

ifneq ($(KDIR),)
KVER := $(shell $(MAKE) -s -C $(KDIR) kernelrelease 2>/dev/null)
KERNELS := $(KVER)
kdir = $(KDIR)
else ifneq ($(KVER),)
KERNELS := $(KVER)
kdir = /lib/modules/$(1)/build
else
KERNELS := $(sort $(foreach s,$(SUPPORTED_SERIES),\
	$(patsubst /lib/modules/%/build,%,\
	$(wildcard /lib/modules/$(s).*/build))))
kdir = /lib/modules/$(1)/build
endif

KMOD_SRCS := $(wildcard $(TOP)/kmod/*.c $(TOP)/kmod/*.h) $(TOP)/Kbuild \
	     $(wildcard $(TOP)/include/uapi/linux/*.h)
MODULES := $(foreach k,$(KERNELS),$(B)/$(k)/snapblk.ko)

# ---------------------------------------------------------------- userspace
# user/lib/ is the tools' internal library; each tool has a folder
# user/<tool>/ with a fragment user/<tool>/<tool>.mk that adds to TOOLS,
# HOSTTEST_OBJS and HOSTTEST_LIBS and gives its link rule.  Host tests
# mirror the tools: user/tests/<tool>/ and user/tests/lib/.
CC ?= cc
USER_CFLAGS := -O2 -g -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE \
	       -I$(TOP)/include/uapi -I$(TOP)/include -I$(TOP)/user/lib $(CFLAGS)
NL_CFLAGS := $(shell pkg-config --cflags libnl-genl-3.0 2>/dev/null)
NL_LIBS := $(shell pkg-config --libs libnl-genl-3.0 2>/dev/null)

lib = $(patsubst %,$(B)/obj/user/lib/%.o,$(1))
# The library in three parts, by what they link: LIB_OBJS need libc
# only, LIBNL_OBJS libnl (the snapblk netlink family), LIBCRYPTO_OBJS
# OpenSSL's libcrypto (chunk and manifest crypto).
LIB_OBJS := $(call lib,util hex json file progress store)
LIBNL_OBJS := $(call lib,genl)
LIBCRYPTO_OBJS := $(call lib,chunk manifest)
ALL_LIB_OBJS := $(LIB_OBJS) $(LIBNL_OBJS) $(LIBCRYPTO_OBJS)

TOOLS :=
# Extra objects and libraries host tests link with; the fragments add to
# them.
HOSTTEST_OBJS := $(patsubst user/%.c,$(B)/obj/user/%.o,$(wildcard user/lib/*.c))
HOSTTEST_LIBS := $(NL_LIBS) -lcrypto -lpthread

include $(sort $(wildcard user/*/*.mk))

# ---------------------------------------------------------------- selftests
KSFT_DIR := $(B)/ksrc/tools/testing/selftests
SELFTEST_C := $(wildcard selftests/*.c)
SELFTEST_BINS := $(patsubst selftests/%.c,$(B)/selftests/%,$(SELFTEST_C))
# Programs the selftests drive (not tests themselves).
SELFTEST_HELPERS := $(patsubst selftests/helpers/%.c,$(B)/selftests-helpers/%,\
		      $(wildcard selftests/helpers/*.c))
HOSTTEST_C := $(wildcard user/tests/*/*.c)
HOSTTEST_BINS := $(addprefix $(B)/tests/,$(basename $(notdir $(HOSTTEST_C))))

.PHONY: all modules user selftests hosttests check check-debug check-s3 \
	bench-stores bench-prefetch demo vm \
	deps checkpatch clean help
.DEFAULT_GOAL := all

all: modules user selftests

help:
	@sed -n '3,20p' Makefile | sed 's/^# \{0,1\}//'

deps:
	@$(TOP)/scripts/install-deps

modules: $(MODULES)

# Kbuild runs in build/<release>/ with links back to the sources so that
# every kernel gets its own objects.  W=1 warnings are errors.
KBUILD_FLAGS := W=1 KCFLAGS=-Werror
$(B)/%/snapblk.ko: $(KMOD_SRCS)
	@$(TOP)/scripts/kbuild-dir $(B)/$* $(TOP)/Kbuild $(TOP)/kmod:kmod
	$(MAKE) -C $(call kdir,$*) M=$(B)/$* $(KBUILD_FLAGS) modules

# Test-only modules (selftests/modules/), never installed.
TESTMOD_SRCS := $(wildcard $(TOP)/selftests/modules/*) $(TOP)/kmod/compat.h
TESTMODS := $(foreach k,$(KERNELS),$(B)/$(k)/selftests-modules/snapblk_compat.ko)
$(B)/%/selftests-modules/snapblk_compat.ko: $(TESTMOD_SRCS)
	@$(TOP)/scripts/kbuild-dir $(B)/$*/selftests-modules \
		$(TOP)/selftests/modules/Kbuild $(TOP)/selftests/modules:. \
		$(TOP)/kmod:kmod
	$(MAKE) -C $(call kdir,$*) M=$(B)/$*/selftests-modules \
		$(KBUILD_FLAGS) modules

user: $(TOOLS)

$(B)/obj/user/%.o: user/%.c $(wildcard user/*/*.h) include/uapi/linux/snapblk.h
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) $(NL_CFLAGS) -c -o $@ $<

$(KSFT_DIR)/kselftest_harness.h:
	@$(TOP)/scripts/ksrc-extract $(B)/ksrc

selftests: $(SELFTEST_BINS) $(SELFTEST_HELPERS) $(TESTMODS)

$(B)/selftests-helpers/%: selftests/helpers/%.c include/uapi/linux/snapblk.h
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) -o $@ $<

# Selftests may build real chunks (user/chunk.c, OpenSSL) to serve as a
# fetch daemon of their own.
SELFTEST_OBJS := $(call lib,util hex genl chunk)
$(B)/selftests/%: selftests/%.c $(KSFT_DIR)/kselftest_harness.h \
		  include/uapi/linux/snapblk.h $(wildcard selftests/*.h) \
		  $(SELFTEST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) $(NL_CFLAGS) -isystem $(KSFT_DIR) -o $@ $< \
		$(SELFTEST_OBJS) $(NL_LIBS) -lcrypto -lpthread

hosttests: $(HOSTTEST_BINS)

# A host test links the whole library (and the objects the fragments
# add); it is found by its name in any folder of user/tests/.
vpath %.c $(sort $(dir $(HOSTTEST_C)))
$(B)/tests/%: %.c $(HOSTTEST_OBJS) $(KSFT_DIR)/kselftest_harness.h
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) $(NL_CFLAGS) -isystem $(KSFT_DIR) -o $@ $< \
		$(HOSTTEST_OBJS) $(HOSTTEST_LIBS)

check: all hosttests
	@$(TOP)/scripts/check $(KERNELS)

# The suite on the debug kernel (scripts/build-debug-kernel builds it on
# first use, which takes long: Documentation/testing.md); scripts/check-debug
# builds the module and the tests for it itself.
check-debug:
	@$(TOP)/scripts/check-debug

# The S3 store tests alone (make check runs them on the newest kernel):
# radosgw on a one-node Ceph cluster in a test VM (selftests/s3/).
check-s3: all selftests
	@$(TOP)/selftests/run-vm $(if $(KVER),--kernel $(KVER)) --mem 2048 \
		--timeout 1500 -- $(TOP)/selftests/run_tests selftests/s3/*.sh

# Cold reads through snapblkd from nginx over a shaped link, 1 to 64
# fetches in flight, and the disk-cache hit path (user/bench/bench-stores).
bench-stores: all
	@$(TOP)/selftests/run-vm $(if $(KVER),--kernel $(KVER)) --mem 2048 \
		--timeout 1800 -- $(TOP)/user/bench/bench-stores

# Cold start-up with no prefetch, readahead and recorded prefetch, and
# cold sequential reads with and without readahead, against a store 5 ms
# away (user/bench/bench-prefetch).
bench-prefetch: all
	@mkdir -p $(B)/bench
	@$(TOP)/selftests/run-vm $(if $(KVER),--kernel $(KVER)) --mem 2048 \
		--timeout 1800 -- $(TOP)/user/bench/bench-prefetch \
		> $(B)/bench/bench-prefetch.txt; rc=$$?; \
		cat $(B)/bench/bench-prefetch.txt; exit $$rc

# The main job end to end in the test VM (see scripts/demo).
demo: all
	@$(TOP)/selftests/run-vm --mem 2048 -- $(TOP)/scripts/demo

vm: all
	@$(TOP)/selftests/run-vm --interactive \
		$(if $(KVER),--kernel $(KVER)) -- /bin/sh

checkpatch: $(KSFT_DIR)/kselftest_harness.h
	@$(TOP)/scripts/checkpatch

clean:
	rm -rf $(B)
