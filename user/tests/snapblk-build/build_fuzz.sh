#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Fuzz the manifest reader with libFuzzer for a bounded time (20 s, or
# $SNAPBLK_FUZZ_SECONDS), from seeds made by snapblk-build.  For a longer
# run by hand:
#   make build/fuzz/manifest_fuzz
#   build/fuzz/manifest_fuzz -max_total_time=3600 CORPUS_DIR
source "$(dirname "$0")/build_tap.inc"

tap_plan 1
top=$PWD
fuzz=${SNAPBLK_BUILD:-$top/build}/fuzz/manifest_fuzz
secs=${SNAPBLK_FUZZ_SECONDS:-20}

if ! command -v clang >/dev/null; then
	skip "libFuzzer run of the manifest reader (clang not installed)"
	tap_done
fi
if ! make -s -C "$top" build/fuzz/manifest_fuzz >"$W/make.log" 2>&1; then
	not_ok "libFuzzer run of the manifest reader (build failed)"
	diag "$W/make.log"
	tap_done
fi

# Seeds: a real manifest (mode 0) and bodies (modes 1 and 2, see the
# target's comment): one chunk of 64 KiB, then two, one of them zero.
mkdir -p "$W/corpus" "$W/store"
cd "$W" || exit 1
"$SB" keygen -o key 2>/dev/null
head -c 200K /dev/urandom >img
"$SB" create img --store store --key-file key -c 64K -o img.m -q
{ printf '\0'; cat img.m; } >corpus/manifest
body() {
	# image_size chunk_size flags count entry_len reserved id secret_id
	printf "\\x00\\x00\\x$1\\x00\\x00\\x00\\x00\\x00"
	printf '\x00\x00\x01\x00' ; printf '\0\0\0\0'
	printf "\\x$2\\0\\0\\0\\0\\0\\0\\0"
	printf 'H\0\0\0'; printf '\0\0\0\0'
	head -c 48 /dev/zero
	head -c 64 /dev/urandom; printf '\0\0\0\0\0\0\0\0'
	[ "$2" = 02 ] && { head -c 64 /dev/zero; printf '\1\0\0\0\0\0\0\0'; }
}
{ printf '\1'; body 01 01; } >corpus/body1
{ printf '\2'; body 01 01; } >corpus/body2
{ printf '\2'; body 02 02; } >corpus/body3

if "$fuzz" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 corpus >fuzz.log 2>&1; then
	ok "libFuzzer run of the manifest reader ($secs s," \
	   "$(sed -n 's/^stat::number_of_executed_units: *//p' fuzz.log) runs)"
else
	not_ok "libFuzzer run of the manifest reader"
	tail -40 fuzz.log | diag
fi
tap_done
