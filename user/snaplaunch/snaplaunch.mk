# SPDX-License-Identifier: GPL-2.0
#
# snaplaunch: the KVM launcher.  Included by the top-level Makefile.

SNAPLAUNCH_SRCS := $(wildcard user/snaplaunch/*.c)
SNAPLAUNCH_OBJS := $(patsubst user/%.c,$(B)/obj/user/%.o,$(SNAPLAUNCH_SRCS)) \
		   $(call lib,util)

TOOLS += $(B)/bin/snaplaunch

$(patsubst user/%.c,$(B)/obj/user/%.o,$(SNAPLAUNCH_SRCS)): \
	$(wildcard user/snaplaunch/*.h)

$(B)/bin/snaplaunch: $(SNAPLAUNCH_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ -lcrypto -lpthread

.PHONY: bench-launch
bench-launch: all
	@$(TOP)/user/bench/bench-launch $(B)

# snaplaunch on nested KVM in a one-vCPU test VM, alone (make check runs
# it on every kernel; Documentation/testing.md).  KVER= picks the outer
# kernel.  Exit 126: the test VM stalled.
.PHONY: check-nested
check-nested: all selftests
	@$(TOP)/selftests/run-vm $(if $(KVER),--kernel $(KVER)) --cpus 1 \
		--timeout 900 --stall-timeout 90 -- \
		$(TOP)/selftests/run_tests selftests/nested/*.sh
