# SPDX-License-Identifier: GPL-2.0
#
# snapblkd: the fetch daemon.  Included by the top-level Makefile, which
# gives B, CC, USER_CFLAGS and the pattern rule $(B)/obj/user/%.o.
# store.o uses chunk.o (sb_hex, OpenSSL) and sb_file.o.

SNAPBLKD_OBJS := $(patsubst %,$(B)/obj/user/%.o,snapblkd store chunk sb_file util)

TOOLS += $(B)/bin/snapblkd

$(B)/bin/snapblkd: $(SNAPBLKD_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ -lcrypto -lpthread
