# SPDX-License-Identifier: GPL-2.0
#
# snapblkd: the fetch daemon.  Included by the top-level Makefile, which
# gives B, CC, USER_CFLAGS, the library parts and the pattern rule
# $(B)/obj/user/%.o.  It never touches plaintext; it links libcrypto for
# the HMAC of S3 request signatures only (user/lib/sigv4.c), and libcurl.

CURL_CFLAGS := $(shell pkg-config --cflags libcurl 2>/dev/null)
CURL_LIBS := $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)

SNAPBLKD_OBJS := $(patsubst %,$(B)/obj/user/snapblkd/%.o,snapblkd jobq store_dir store_http store_group) \
		 $(call lib,sigv4 awscred dcache) $(LIB_OBJS)

TOOLS += $(B)/bin/snapblkd
# The demand and background queues have a unit test (user/tests/snapblkd/jobq.c).
HOSTTEST_OBJS += $(B)/obj/user/snapblkd/jobq.o
HOSTTEST_LIBS += $(CURL_LIBS)

$(B)/bin/snapblkd: $(SNAPBLKD_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(CURL_LIBS) -lcrypto -lpthread
