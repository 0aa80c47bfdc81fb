#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Deduplication and convergence domains: a second image sharing most of
# its content with a first writes only the chunks that differ; repeated
# chunks within an image are written once; images built with different
# convergence secrets share no chunk; verify checks keys given the secret.
source "$(dirname "$0")/build_tap.inc"

tap_plan 14
cd "$W" || exit 1
mkdir store s0 s1 s2 s1b
"$SB" keygen -o key 2>/dev/null
head -c 32 /dev/urandom >secret1
head -c 32 /dev/urandom >secret2

# 4 MiB in 64 KiB chunks; B differs from A in chunks 0, 16 and 48.
random_file a 4M
cp a b
printf 'x' | dd of=b bs=1 seek=100 conv=notrunc status=none
printf 'y' | dd of=b bs=1 seek=$((1048576 + 10)) conv=notrunc status=none
printf 'z' | dd of=b bs=1 seek=$((3145728 + 65535)) conv=notrunc status=none

check "build image A" \
	"$SB" create a --store store --key-file key -c 64K -o a.m --json
[ "$(json_field new out)" = 64 ] && ok "A writes 64 new chunks" ||
	{ not_ok "A writes 64 new chunks"; diag out; }
check "build image B into the same store" \
	"$SB" create b --store store --key-file key -c 64K -o b.m --json
if [ "$(json_field new out)" = 3 ] && [ "$(json_field present out)" = 61 ] &&
   [ "$(json_field bytes_written out)" = $((3 * 65536)) ]; then
	ok "B writes only its 3 differing chunks"
else
	not_ok "B writes only its 3 differing chunks"
	diag out
fi
[ "$(find store -type f | wc -l)" = 67 ] && ok "store holds 67 chunks" ||
	not_ok "store holds 67 chunks"
check "B verifies" "$SB" verify b.m --store store --key-file key

# One 64 KiB block eight times: one chunk written, dedup ratio 8.
random_file blk 64K
cat blk blk blk blk blk blk blk blk >rep
check "build an image of one repeated chunk" \
	"$SB" create rep --store store --key-file key -c 64K -o rep.m --json
if [ "$(json_field new out)" = 1 ] && [ "$(json_field present out)" = 7 ] &&
   [ "$(json_field dedup_ratio out)" = 8.0000 ]; then
	ok "repeated chunk written once (dedup 8x)"
else
	not_ok "repeated chunk written once (dedup 8x)"
	diag out
fi

# Convergence domains.
"$SB" create a --store s0 --key-file key -c 64K -o a0.m -q
"$SB" create a --store s1 --key-file key -c 64K -o a1.m -q \
	--secret-file secret1
"$SB" create a --store s2 --key-file key -c 64K -o a2.m -q \
	--secret-file secret2
"$SB" create a --store s1b --key-file key -c 64K -o a1b.m -q \
	--secret-file secret1
names() { (cd "$1" && find . -type f | sort); }
common=$( (names s0; names s1; names s2) | sort | uniq -d | wc -l)
[ "$common" = 0 ] && [ "$(names s1 | wc -l)" = 64 ] &&
	ok "different secrets give disjoint chunk sets" ||
	not_ok "different secrets give disjoint chunk sets ($common shared)"
if diff -r s1 s1b >/dev/null && cmp -s a1.m a1b.m; then
	ok "the same secret gives the same chunks and manifest"
else
	not_ok "the same secret gives the same chunks and manifest"
fi
expect_exit 0 "verify checks keys with the right secret" \
	"$SB" verify a1.m --store s1 --key-file key --secret-file secret1
expect_exit 1 "verify refuses a different secret" \
	"$SB" verify a1.m --store s1 --key-file key --secret-file secret2
head -c 8 /dev/urandom >short
expect_exit 1 "a secret shorter than 16 bytes is refused" \
	"$SB" create a --store s1 --key-file key --secret-file short -o x.m
grep -q "too short" err && ok "short secret message" ||
	{ not_ok "short secret message"; diag err; }

tap_done
