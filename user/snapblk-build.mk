# SPDX-License-Identifier: GPL-2.0
#
# snapblk-build: image builder (issue 3).  Included by the top-level
# Makefile, which gives B, TOP, CC, USER_CFLAGS and the pattern rule
# $(B)/obj/user/%.o: user/%.c.

# The library the build tool, the snapblk CLI and the host tests share.
SB_BUILD_LIB_SRCS := user/manifest.c user/chunk.c user/store.c \
		     user/sb_file.c user/sb_flatten.c user/sb_progress.c
SB_BUILD_LIB_OBJS := $(patsubst user/%.c,$(B)/obj/user/%.o,$(SB_BUILD_LIB_SRCS))
SB_BUILD_LIBS := -lcrypto -lpthread

TOOLS += $(B)/bin/snapblk-build
HOSTTEST_OBJS += $(SB_BUILD_LIB_OBJS)
HOSTTEST_LIBS += $(SB_BUILD_LIBS)

$(B)/bin/snapblk-build: $(B)/obj/user/snapblk-build.o $(SB_BUILD_LIB_OBJS) \
			$(B)/obj/user/util.o
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(SB_BUILD_LIBS)

# libFuzzer target for the manifest reader: make build/fuzz/manifest_fuzz,
# then build/fuzz/manifest_fuzz -max_total_time=600 build/fuzz/corpus
FUZZ_CC ?= clang
FUZZ_CFLAGS := -g -O1 -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE \
	       -fsanitize=fuzzer,address,undefined \
	       -I$(TOP)/include/uapi -I$(TOP)/user
FUZZ_SRCS := user/fuzz/build_manifest_fuzz.c user/manifest.c user/chunk.c

$(B)/fuzz/manifest_fuzz: $(FUZZ_SRCS) $(wildcard user/*.h) \
			 include/uapi/linux/snapblk.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_SRCS) -lcrypto

# The same, by its path relative to the top directory.
.PHONY: fuzz build/fuzz/manifest_fuzz
fuzz build/fuzz/manifest_fuzz: $(B)/fuzz/manifest_fuzz

# Build throughput on a 1 GiB image of real files, against sha256sum.
.PHONY: bench-build
bench-build: $(B)/bin/snapblk-build
	@$(TOP)/user/bench/bench-build $(B)
