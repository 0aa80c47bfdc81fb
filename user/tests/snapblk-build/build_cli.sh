#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# snapblk-build end to end on small raw images: keygen, create, inspect,
# verify (and what it catches), and the errors a user can act on, with
# the exit statuses of snapblk-build(1).
source "$(dirname "$0")/build_tap.inc"

tap_plan 34
cd "$W" || exit 1
mkdir store

# --------------------------------------------------------------- keygen
check "keygen writes a key" "$SB" keygen -o key
if [ "$(stat -c %a key)" = 600 ] && grep -qE '^[0-9a-f]{64}$' key; then
	ok "keygen key is 64 hex digits, mode 0600"
else
	not_ok "keygen key is 64 hex digits, mode 0600"
fi
expect_exit 1 "keygen refuses to overwrite a key" "$SB" keygen -o key
"$SB" keygen -o other >/dev/null 2>&1

# --------------------------------------------------------------- create
# 64 KiB chunks: 16 random, 16 zero, 16 random, then a partial one.
random_file a 1M
head -c 1M /dev/zero >z
random_file b 1M
random_file c 300K
cat a z b c >img
check "create from a raw image" \
	"$SB" create img --store store --key-file key -c 64K -o img.m --json
cp out create.json
if [ "$(json_field chunks create.json)" = 53 ] &&
   [ "$(json_field zero create.json)" = 16 ] &&
   [ "$(json_field new create.json)" = 37 ] &&
   [ "$(json_field present create.json)" = 0 ]; then
	ok "summary counts: 53 chunks, 16 zero, 37 new"
else
	not_ok "summary counts: 53 chunks, 16 zero, 37 new"
	diag create.json
fi
nfiles=$(find store -type f | wc -l)
if [ "$nfiles" = 37 ] && ! find store -name '.tmp-*' | grep -q .; then
	ok "zero chunks are never stored (37 files, no temporaries)"
else
	not_ok "zero chunks are never stored ($nfiles files)"
fi
bad=0
while read -r f; do
	[ "$(stat -c %s "$f")" = 65536 ] || bad=1
	[ "$(sha256sum <"$f" | cut -c1-64)" = "$(basename "$f")" ] || bad=1
	[ "$(basename "$(dirname "$f")")" = "$(basename "$f" | cut -c1-2)" ] ||
		bad=1
done < <(find store -type f)
[ $bad = 0 ] && ok "every chunk file is named by the SHA-256 of its bytes" ||
	not_ok "every chunk file is named by the SHA-256 of its bytes"

check "create again" \
	"$SB" create img --store store --key-file key -c 64K -o img2.m --json
if [ "$(json_field new out)" = 0 ] && [ "$(json_field present out)" = 37 ] &&
   cmp -s img.m img2.m; then
	ok "second create writes nothing and gives the same manifest"
else
	not_ok "second create writes nothing and gives the same manifest"
	diag out
fi

# -------------------------------------------------------------- inspect
check "inspect" "$SB" inspect img.m --key-file key
if grep -q "image ID:      $(json_field image_id create.json)" out &&
   grep -q "chunks:        53 total, 16 zero, 37 stored" out; then
	ok "inspect shows the image ID and counts"
else
	not_ok "inspect shows the image ID and counts"
	diag out
fi
check "inspect --json" "$SB" inspect img.m --key-file key --json
[ "$(json_field image_size out)" = $((3 * 1048576 + 300 * 1024)) ] &&
	ok "inspect --json image_size" || not_ok "inspect --json image_size"

# --------------------------------------------------------------- verify
expect_exit 0 "verify passes on an intact store" \
	"$SB" verify img.m --store store --key-file key
grep -q "53 chunks: 37 ok, 16 zero, 0 bad" out &&
	ok "verify summary" || { not_ok "verify summary"; diag out; }

# The chunk files of chunks 0, 1 and 2.
addr() {
	"$SB" inspect img.m --key-file key --chunks |
		awk -v i="$1" '$1 == i { print $4 }'
}
path() { echo "store/$(echo "$1" | cut -c1-2)/$1"; }
a0=$(path "$(addr 0)")
a1=$(path "$(addr 1)")
a2=$(path "$(addr 2)")
cp "$a0" a0.bak
cp "$a1" a1.bak
cp "$a2" a2.bak

# A flipped bit.
flip_bit "$a0" 40000
expect_exit 3 "verify catches a flipped bit" \
	"$SB" verify img.m --store store --key-file key
grep -q "^bad chunk 0 .*does not match its address" out &&
	ok "verify names the chunk with the flipped bit" ||
	{ not_ok "verify names the chunk with the flipped bit"; diag out; }
cp a0.bak "$a0"

# A truncated chunk.
truncate -s 1000 "$a1"
expect_exit 3 "verify catches a truncated chunk" \
	"$SB" verify img.m --store store --key-file key
grep -q "^bad chunk 1 .*truncated: 1000 bytes" out &&
	ok "verify names the truncated chunk" ||
	{ not_ok "verify names the truncated chunk"; diag out; }
cp a1.bak "$a1"

# A chunk swapped for another valid chunk.
cp a0.bak "$a2"
expect_exit 3 "verify catches a chunk swapped for another valid one" \
	"$SB" verify img.m --store store --key-file key
grep -q "^bad chunk 2 .*another chunk's data" out &&
	ok "verify names the swapped chunk" ||
	{ not_ok "verify names the swapped chunk"; diag out; }

# All at once, plus a missing one: each is reported.
flip_bit "$a0" 7
truncate -s 0 "$a1"
rm "$(path "$(addr 3)")"
expect_exit 3 "verify with four bad chunks" \
	"$SB" verify img.m --store store --key-file key
[ "$(grep -c '^bad chunk' out)" = 4 ] && grep -q "^bad chunk 3 .*missing" out &&
	ok "verify reports each bad chunk" ||
	{ not_ok "verify reports each bad chunk"; diag out; }
rm -f "$a0" "$a1" "$a2"
"$SB" create img --store store --key-file key -c 64K -o img.m -q --force
expect_exit 0 "create restores deleted chunks" \
	"$SB" verify img.m --store store --key-file key

# ------------------------------------------------------ manifest errors
expect_exit 4 "wrong key refused" "$SB" inspect img.m --key-file other
grep -q "manifest authentication failed: wrong key or corrupted manifest" err &&
	ok "wrong key message" || { not_ok "wrong key message"; diag err; }
expect_exit 4 "verify refuses a wrong key" \
	"$SB" verify img.m --store store --key-file other
head -c 100 img.m >short.m
expect_exit 5 "truncated manifest" "$SB" inspect short.m --key-file key
expect_exit 5 "foreign file" "$SB" inspect img --key-file key
truncate -s 2G big
expect_exit 5 "a file too long to be a manifest is not read whole" \
	"$SB" inspect big --key-file key

# ---------------------------------------------------------- user errors
# A missing store is created (build_robust.sh); one under a file cannot be.
expect_exit 1 "store path under a file" \
	"$SB" create img --store img/store --key-file key -o x.m
grep -q "a part of the path is a file" err && ok "store under a file hint" ||
	{ not_ok "store under a file hint"; diag err; }
expect_exit 1 "unreadable image" \
	"$SB" create noimg --store store --key-file key -o x.m
expect_exit 2 "chunk size out of range" \
	"$SB" create img --store store --key-file key -c 8M -o x.m

tap_done
