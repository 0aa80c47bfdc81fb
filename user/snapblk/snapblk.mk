# SPDX-License-Identifier: GPL-2.0
#
# snapblk: the dmsetup-style CLI.  Included by the top-level Makefile,
# which gives B, CC, USER_CFLAGS, the library parts and the pattern rule
# $(B)/obj/user/%.o: user/%.c.  create unseals manifests in userspace:
# the manifest code and libcrypto.

TOOLS += $(B)/bin/snapblk

$(B)/bin/snapblk: $(B)/obj/user/snapblk/snapblk.o $(LIB_OBJS) $(LIBNL_OBJS) \
		  $(LIBCRYPTO_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(NL_LIBS) -lcrypto
