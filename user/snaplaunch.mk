# SPDX-License-Identifier: GPL-2.0
#
# snaplaunch: the KVM launcher.  Included by the top-level Makefile.

SNAPLAUNCH_SRCS := $(wildcard user/snaplaunch/*.c)
SNAPLAUNCH_OBJS := $(patsubst user/%.c,$(B)/obj/user/%.o,$(SNAPLAUNCH_SRCS)) \
		   $(B)/obj/user/util.o

TOOLS += $(B)/bin/snaplaunch

$(patsubst user/%.c,$(B)/obj/user/%.o,$(SNAPLAUNCH_SRCS)): \
	$(wildcard user/snaplaunch/*.h)

$(B)/bin/snaplaunch: $(SNAPLAUNCH_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ -lcrypto -lpthread

.PHONY: bench-launch
bench-launch: all
	@$(TOP)/user/bench/bench-launch $(B)
