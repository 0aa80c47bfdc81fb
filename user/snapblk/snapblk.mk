# SPDX-License-Identifier: GPL-2.0
#
# snapblk: the dmsetup-style CLI.  Included by the top-level Makefile,
# which gives B, CC, USER_CFLAGS, the library parts and the pattern rule
# $(B)/obj/user/%.o: user/%.c.  create unseals manifests in userspace:
# the manifest code and libcrypto; record files carry a SHA-256
# (user/lib/trace.c, libcrypto too); status --prometheus writes the
# text format (user/lib/prom.c).

SNAPBLK_OBJS := $(patsubst %,$(B)/obj/user/snapblk/%.o,snapblk status prefetch) \
		$(call lib,trace prom)

TOOLS += $(B)/bin/snapblk

$(B)/bin/snapblk: $(SNAPBLK_OBJS) $(LIB_OBJS) $(LIBNL_OBJS) $(LIBCRYPTO_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(NL_LIBS) -lcrypto
