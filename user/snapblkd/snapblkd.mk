# SPDX-License-Identifier: GPL-2.0
#
# snapblkd: the fetch daemon.  Included by the top-level Makefile, which
# gives B, CC, USER_CFLAGS, the library parts and the pattern rule
# $(B)/obj/user/%.o.  It never touches plaintext, so it needs no
# libcrypto.

TOOLS += $(B)/bin/snapblkd

$(B)/bin/snapblkd: $(B)/obj/user/snapblkd/snapblkd.o $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ -lpthread
