#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The builder a CI pipeline can trust (issue 14, point 3): a missing store
# is created; sparse images are read by SEEK_DATA/SEEK_HOLE; a build
# killed by SIGTERM or SIGINT leaves no temporary file, and one killed
# with -9 leaves files the next build (or gc) removes; gc (dry run, then
# --delete, keys per manifest, refusals); create --verify-existing
# rewrites damaged chunks; key files (hex, CRLF, --raw-key, mode);
# outputs that would clobber something; JSON for names that are not
# UTF-8; and the same exit status for the same manifest error in
# snapblk-build and snapblk (snapblkd reads no manifest).
source "$(dirname "$0")/build_tap.inc"
SNAPBLK=${SNAPBLK_BIN:-$PWD/build/bin}/snapblk

tap_plan 60
cd "$W" || exit 1
umask 022
"$SB" keygen -o key 2>/dev/null
"$SB" keygen -o key2 2>/dev/null
random_file img 1M

# count_tmp DIR: temporary files of the tools below DIR
count_tmp() { find "$1" -name '*.tmp-*' | wc -l; }

# a_dead_pid: the pid of a process that has exited
a_dead_pid() { sh -c 'echo $$'; }

# ------------------------------------------------- the store is created
check "create makes a missing store (and its parents)" \
	"$SB" create img --store new/deep/store --key-file key -c 64K -o m0 -q
[ -d new/deep/store ] && [ "$(stat -c %a new/deep/store)" = 755 ] &&
	[ "$(find new/deep/store -type f | wc -l)" = 16 ] &&
	ok "the new store is mode 0755 and holds the 16 chunks" ||
	not_ok "the new store is mode 0755 and holds the 16 chunks"

# ------------------------------------------------------------- sparse
# 10 GiB with 512 KiB of data at 5 GiB, against a plain 512 KiB file.
random_file data 512K
truncate -s 10G sparse
dd if=data of=sparse bs=512K seek=10240 conv=notrunc status=none
t0=$(date +%s.%N)
"$SB" create data --store sstore --key-file key -o small.m -q
t1=$(date +%s.%N)
check "create a 10 GiB sparse image" \
	"$SB" create sparse --store sstore --key-file key -o sparse.m --json
t2=$(date +%s.%N)
small=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
big=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.3f", b - a }')
if awk -v s="$small" -v b="$big" 'BEGIN { exit !(b < 2 && b < s * 10 + 1) }'; then
	ok "the sparse image takes about as long as one chunk (${big}s against ${small}s)"
else
	not_ok "the sparse image takes about as long as one chunk (${big}s against ${small}s)"
fi
"$SB" inspect sparse.m --key-file key --json >sp.json
[ "$(json_field chunks sp.json)" = 20480 ] &&
	[ "$(json_field stored sp.json)" = 1 ] &&
	[ "$(json_field present out)" = 1 ] &&
	ok "the manifest has 20480 chunks, 1 non-zero (the 512K file's)" ||
	{ not_ok "the manifest has 20480 chunks, 1 non-zero"; diag sp.json out; }
expect_exit 0 "the sparse image verifies" \
	"$SB" verify sparse.m --store sstore --key-file key -q
rm -f sparse

# ------------------------------------------------------- interruption
# 192 MiB of data written one chunk at a time: the first batch (64 MiB)
# is still under temporary names when the signal comes.
head -c 192M /dev/urandom >big
mkdir -p tmpdir

# interrupt SIG STORE: start a build, signal it once its first temporary
# chunk file exists; $rc is its exit status, $seen whether it was caught
# in the act.
interrupt() {
	local i pid
	seen=0
	set -m
	TMPDIR=$W/tmpdir "$SB" create big --store "$2" --key-file key -j 1 \
		-o "$2.m" -q >/dev/null 2>"$W/int.err" &
	pid=$!
	set +m
	for i in $(seq 500); do
		if find "$2" -name '.tmp-*' 2>/dev/null | grep -q .; then
			seen=1
			break
		fi
		sleep 0.01
	done
	kill -"$1" "$pid"
	wait "$pid" 2>/dev/null
	rc=$?
	children=$(pgrep -P "$pid" | wc -l)
	alive=$(kill -0 "$pid" 2>/dev/null && echo 1 || echo 0)
}

interrupt TERM istore
[ "$seen" = 1 ] && [ "$rc" = $((128 + 15)) ] &&
	ok "SIGTERM during create ends it by that signal" ||
	{ not_ok "SIGTERM during create ends it by that signal (seen $seen, exit $rc)"; diag int.err; }
[ "$seen" = 1 ] && [ "$(count_tmp istore)" = 0 ] && [ ! -e istore.m ] &&
	[ "$(count_tmp .)" = 0 ] && [ -z "$(ls tmpdir)" ] &&
	ok "SIGTERM leaves no temporary file (store, manifest, TMPDIR)" ||
	{ not_ok "SIGTERM leaves no temporary file"; find . -name '*.tmp-*' | head -3 | diag; }
[ "$seen" = 1 ] && [ "$alive" = 0 ] && [ "$children" = 0 ] &&
	ok "SIGTERM leaves no process behind" || not_ok "SIGTERM leaves no process behind"

interrupt INT istore2
[ "$seen" = 1 ] && [ "$rc" = $((128 + 2)) ] &&
	[ "$(count_tmp istore2)" = 0 ] && [ "$(count_tmp .)" = 0 ] &&
	ok "SIGINT during create: ended by it, no temporary file" ||
	{ not_ok "SIGINT during create (seen $seen, exit $rc)"; diag int.err; }

interrupt KILL kstore
left=$(count_tmp kstore)
[ "$seen" = 1 ] && [ "$left" -gt 0 ] &&
	ok "kill -9 leaves temporary files ($left)" ||
	not_ok "kill -9 leaves temporary files (seen $seen, $left)"
# And one of a live build (this shell), and a stale manifest temporary.
live=kstore/00/.tmp-$(printf '0%.0s' {1..64})-$$-0
mkdir -p kstore/00
touch "$live" "k.m.tmp-$(a_dead_pid)"
check "the next build into that store" \
	"$SB" create img --store kstore --key-file key -c 64K -o k.m
grep -q "removed $((left + 1)) stale temporary files" err &&
	ok "the next build removes the stale files and says so" ||
	{ not_ok "the next build removes the stale files and says so"; diag err; }
[ "$(count_tmp kstore)" = 1 ] && [ -e "$live" ] && [ "$(count_tmp .)" = 1 ] &&
	ok "a live build's temporary file is left alone" ||
	not_ok "a live build's temporary file is left alone"
touch -d '2 hours ago' "$live"
"$SB" create img --store kstore --key-file key -c 64K -o k2.m -q
[ ! -e "$live" ] && ok "a temporary file over an hour old is removed" ||
	not_ok "a temporary file over an hour old is removed"
rm -f big

# ------------------------------------------------------------------ gc
random_file a 1M
random_file b 1M
cat a b >ab
mkdir gstore
"$SB" create a --store gstore --key-file key -c 64K -o a.m -q
"$SB" create ab --store gstore --key-file key2 -c 64K -o ab.m -q
"$SB" create b --store gstore --key-file key -c 64K -o b.m -q
stale=gstore/00/.tmp-$(printf '0%.0s' {1..64})-$(a_dead_pid)-0
mkdir -p gstore/00
echo x >"$stale"
nchunks=$(find gstore -type f -not -name '.tmp-*' | wc -l)
expect_exit 2 "gc without --keep is refused" "$SB" gc --store gstore
grep -q -- "--keep-nothing" err && ok "the refusal names --keep-nothing" ||
	{ not_ok "the refusal names --keep-nothing"; diag err; }
check "gc --keep A (dry run)" \
	"$SB" gc --store gstore --keep a.m --key-file key --json
[ "$(json_field unreferenced out)" = 16 ] &&
	[ "$(json_field unreferenced_bytes out)" = $((16 * 65536)) ] &&
	[ "$(json_field referenced out)" = 16 ] &&
	[ "$(json_field stale_tmp out)" = 1 ] &&
	[ "$(json_field deleted out)" = false ] &&
	ok "the dry run counts B's 16 chunks (1 MiB) and the stale file" ||
	{ not_ok "the dry run counts B's 16 chunks and the stale file"; diag out; }
[ "$(find gstore -type f -not -name '.tmp-*' | wc -l)" = "$nchunks" ] &&
	[ -e "$stale" ] && ok "the dry run deletes nothing" ||
	not_ok "the dry run deletes nothing"
check "gc text output" "$SB" gc --store gstore --keep a.m --key-file key \
	--verbose
grep -q "would free: 16 unreferenced chunks (1 MiB) and 1 stale" out &&
	[ "$(grep -c '^would delete gstore/' out)" = 17 ] &&
	ok "the dry run says what it would free and, with --verbose, each file" ||
	{ not_ok "the dry run says what it would free"; diag out; }
# Manifests of two tenants: MANIFEST:KEYFILE for the one with its own key.
check "gc with a key per manifest keeps both" \
	"$SB" gc --store gstore --keep a.m --keep ab.m:key2 --key-file key --json
[ "$(json_field unreferenced out)" = 0 ] &&
	ok "A and AB together reference every chunk" ||
	{ not_ok "A and AB together reference every chunk"; diag out; }
expect_exit 4 "gc with a wrong key for a kept manifest: exit 4" \
	"$SB" gc --store gstore --keep ab.m --key-file key --delete
[ "$(find gstore -type f -not -name '.tmp-*' | wc -l)" = "$nchunks" ] &&
	ok "... and nothing is deleted" || not_ok "... and nothing is deleted"
flock -s -o gstore sleep 5 &
lockpid=$!
sleep 0.2
expect_exit 1 "gc --delete is refused while a build holds the store" \
	"$SB" gc --store gstore --keep a.m --key-file key --delete
kill "$lockpid"
wait "$lockpid" 2>/dev/null
check "gc --keep A --delete" \
	"$SB" gc --store gstore --keep a.m --key-file key --delete --json
[ "$(json_field unreferenced out)" = 16 ] && [ ! -e "$stale" ] &&
	[ "$(find gstore -type f | wc -l)" = 16 ] &&
	ok "gc --delete removed B's 16 chunks and the stale file" ||
	{ not_ok "gc --delete removed B's 16 chunks and the stale file"; diag out; }
expect_exit 0 "A still verifies" "$SB" verify a.m --store gstore --key-file key
expect_exit 3 "B no longer does" "$SB" verify b.m --store gstore --key-file key

# --------------------------------------------------- --verify-existing
"$SB" create img --store vstore --key-file key -c 64K -o v.m -q
c0=$(find vstore -type f | sort | head -1)
flip_bit "$c0" 1000
check "create over a damaged chunk without --verify-existing" \
	"$SB" create img --store vstore --key-file key -c 64K -o v.m --force --json
expect_exit 3 "the damaged chunk is still there (trusted by its size)" \
	"$SB" verify v.m --store vstore --key-file key -q
check "create --verify-existing" \
	"$SB" create img --store vstore --key-file key -c 64K -o v.m --force \
	--verify-existing --json
[ "$(json_field damaged out)" = 1 ] && [ "$(json_field present out)" = 15 ] &&
	ok "--verify-existing counts 1 damaged chunk, rewritten" ||
	{ not_ok "--verify-existing counts 1 damaged chunk"; diag out; }
expect_exit 0 "the store verifies again" \
	"$SB" verify v.m --store vstore --key-file key -q
"$SB" create img --store vstore --key-file key -c 64K -o v.m --force \
	--verify-existing >out 2>&1
grep -q "verified:  16 chunks already stored, 0 of them damaged" out &&
	ok "the summary reports the check" || { not_ok "the summary reports the check"; diag out; }

# ---------------------------------------------------------------- keys
tr -d '\n' <key >k.crlf && printf '\r\n' >>k.crlf && chmod 600 k.crlf
expect_exit 0 "a key file with CRLF is read" \
	"$SB" inspect m0 --key-file k.crlf
tr -d '\n' <key >k.ws && printf '  \t\n\n' >>k.ws && chmod 600 k.ws
expect_exit 0 "a key file with trailing white space is read" \
	"$SB" inspect m0 --key-file k.ws
python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(open("key").read()))' \
	>k.raw && chmod 600 k.raw
expect_exit 1 "a raw 32-byte key is refused without --raw-key" \
	"$SB" inspect m0 --key-file k.raw
grep -q "raw-key" err && ok "the refusal names --raw-key" ||
	{ not_ok "the refusal names --raw-key"; diag err; }
expect_exit 0 "the same key as raw bytes with --raw-key" \
	"$SB" inspect m0 --key-file k.raw --raw-key
cp key k.loose && chmod 644 k.loose
expect_exit 1 "a key file readable by others is refused" \
	"$SB" create img --store store2 --key-file k.loose -o loose.m
grep -q "readable by other users: refused" err &&
	grep -q "chmod 600 k.loose" err && [ ! -e loose.m ] &&
	ok "the refusal gives the fix (chmod 600 FILE)" ||
	{ not_ok "the refusal gives the fix"; diag err; }
expect_exit 1 "snapblk refuses it too" "$SNAPBLK" create vm1 m0 --key-file k.loose
grep -q "readable by other users: refused" err && grep -q "chmod 600" err &&
	ok "with the same fix" || { not_ok "with the same fix"; diag err; }

# ------------------------------------------------------------- outputs
echo keep >exists.m
mkdir -p store2
expect_exit 1 "an existing -o is refused without --force" \
	"$SB" create img --store store2 --key-file key -o exists.m
[ "$(cat exists.m)" = keep ] && grep -q -- "--force" err &&
	ok "it is left as it was; the hint names --force" ||
	{ not_ok "it is left as it was"; diag err; }
expect_exit 0 "with --force it is replaced" \
	"$SB" create img --store store2 --key-file key -o exists.m -q --force
mkdir -p tree/sub && echo hi >tree/sub/f
expect_exit 2 "--image-out inside the --from-dir tree is refused" \
	"$SB" create --from-dir tree --image-out tree/sub/img --store store2 \
	--key-file key -o t.m
expect_exit 1 "an existing --image-out is refused without --force" \
	"$SB" create --from-dir tree --image-out exists.m --store store2 \
	--key-file key -o t.m
grep -q "image exists.m exists" err && [ "$(cat exists.m)" != keep ] &&
	ok "... naming it, and it is left as it was" ||
	{ not_ok "... naming it, and it is left as it was"; diag err; }

# ---------------------------------------------------------------- JSON
odd=$(printf 'caf\xe9\x01\xc3\xa9.m')
check "create -o with a name that is not UTF-8, --json" \
	"$SB" create img --store store2 --key-file key -o "$odd" --json
python3 -c 'import json, sys; d = json.loads(open(sys.argv[1], "rb").read().decode("utf-8")); sys.exit(d["manifest"] != "caf\u00e9\u0001\u00e9.m")' out &&
	grep -q 'caf\\u00e9\\u0001' out &&
	ok "the JSON is valid UTF-8; the byte is \\u00e9, the control \\u0001" ||
	{ not_ok "the JSON is valid UTF-8"; diag out; }

# ------------------------------------------- the same manifest errors
head -c 100 m0 >short.m
expect_exit 5 "snapblk-build inspect: truncated manifest, exit 5" \
	"$SB" inspect short.m --key-file key
expect_exit 5 "snapblk-build verify: truncated manifest, exit 5" \
	"$SB" verify short.m --store new/deep/store --key-file key
expect_exit 5 "snapblk-build gc: truncated manifest, exit 5" \
	"$SB" gc --store new/deep/store --keep short.m --key-file key
expect_exit 5 "snapblk create: truncated manifest, exit 5" \
	"$SNAPBLK" create vm1 short.m --key-file key
expect_exit 4 "snapblk-build verify: wrong key, exit 4" \
	"$SB" verify m0 --store new/deep/store --key-file key2
expect_exit 4 "snapblk create: wrong key, exit 4" \
	"$SNAPBLK" create vm1 m0 --key-file key2

tap_done
