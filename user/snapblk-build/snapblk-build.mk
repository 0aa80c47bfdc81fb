# SPDX-License-Identifier: GPL-2.0
#
# snapblk-build: the image builder.  Included by the top-level Makefile,
# which gives B, TOP, CC, USER_CFLAGS, the library parts and the pattern
# rule $(B)/obj/user/%.o: user/%.c.

# The flattener: tree.c, layers.c (libarchive) and dirtree.c read the
# input into a tree, oci.c (json-c) finds an OCI image's layers, layout.c
# places the tree and ext4.c (libext2fs) writes it; flatten.c runs them.
SB_FLATTEN := flatten tree layers dirtree oci layout ext4
SB_FLATTEN_OBJS := $(patsubst %,$(B)/obj/user/snapblk-build/%.o,$(SB_FLATTEN))
SB_FLATTEN_LIBS := -larchive -lext2fs -lcom_err -ljson-c
SB_BUILD_OBJS := $(B)/obj/user/snapblk-build/snapblk-build.o $(SB_FLATTEN_OBJS)

TOOLS += $(B)/bin/snapblk-build
# The build tests call the flattener directly.
HOSTTEST_OBJS += $(SB_FLATTEN_OBJS)
HOSTTEST_LIBS += $(SB_FLATTEN_LIBS)
# Host tests include the flattener's headers.
USER_CFLAGS += -I$(TOP)/user/snapblk-build

$(B)/bin/snapblk-build: $(SB_BUILD_OBJS) $(LIB_OBJS) $(LIBCRYPTO_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(SB_FLATTEN_LIBS) -lcrypto -lpthread

# libFuzzer target for the manifest reader: make build/fuzz/manifest_fuzz,
# then build/fuzz/manifest_fuzz -max_total_time=600 build/fuzz/corpus
FUZZ_CC ?= clang
FUZZ_CFLAGS := -g -O1 -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE \
	       -fsanitize=fuzzer,address,undefined \
	       -I$(TOP)/include/uapi -I$(TOP)/user/lib
FUZZ_SRCS := user/tests/snapblk-build/fuzz/manifest_fuzz.c \
	     user/lib/manifest.c user/lib/chunk.c

$(B)/fuzz/manifest_fuzz: $(FUZZ_SRCS) $(wildcard user/lib/*.h) \
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
