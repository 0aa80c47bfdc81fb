#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The tuned cache end to end in the test VM, with snapblkd serving a
# directory store and an image whose every 4 KiB block fio can verify
# (written by fio with verify=crc32c headers, which name their offset):
#
# - a hot set read twice survives a one-pass scan of twice the cache and
#   hits when it is read again (scan-resistant eviction);
# - lowering cache_mb shrinks the cache at once; drop_cache empties it;
# - every knob (cache_mb, cache_protected_pct, drop_cache,
#   readahead_chunks, max_inflight, fetch_timeout_ms) changed while fio
#   verifies random reads: no bad block, no failed read;
# - readahead_chunks raises cold sequential throughput against a store
#   100 ms away (snapblkd --delay-ms), counting what it fetched ahead as
#   used;
# - the device's io_opt is the chunk size, so page-cache readahead asks
#   for whole chunks; bad knob values are refused.
source "${KTAP_HELPERS:?run through selftests/run_tests}"

top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/build/bin
ko=${SNAPBLK_KO:-$top/build/$(uname -r)/snapblk.ko}
W=$(mktemp -d /tmp/cache_tuning.XXXXXX)
P=/sys/module/snapblk/parameters
CS=262144
MB=48
SIZE=$((MB * 1048576))
source "$top/selftests/lib/daemon.sh"

cleanup() {
	stop_daemon
	"$bin/snapblk" remove img 2>/dev/null
	rmmod snapblk 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

ktap_print_header
ktap_set_plan 12

# reload [DAEMON ARGS]: a fresh module, daemon and device.
reload() {
	fresh
	start_daemon --store "$W/store" --jobs 16 "$@"
	map || ktap_exit_fail_msg "snapblk create"
}
attr() { cat "/sys/block/$DEV/snapblk/$1"; }
set_attr() { echo "$2" > "/sys/block/$DEV/snapblk/$1"; }
# read_chunks FIRST LAST: O_DIRECT reads of whole chunks, in order
read_chunks() {
	dd if="/dev/$DEV" of=/dev/null bs=$CS skip="$1" count=$(($2 - $1 + 1)) \
		iflag=direct status=none
}
now() { date +%s.%N; }

# The image: fio's verify headers on every 4 KiB block, no ZERO chunk.
FIO_IMG=(--name=img --bs=4k --verify=crc32c --randrepeat=1)
fio "${FIO_IMG[@]}" --filename="$W/image" --size=${MB}M --rw=write \
	--do_verify=0 --ioengine=psync > "$W/fio-write.log" 2>&1 ||
	ktap_exit_fail_msg "fio could not write the image"
"$bin/snapblk-build" keygen -o "$W/key" || ktap_exit_fail_msg "keygen"
mkdir -p "$W/store"
"$bin/snapblk-build" create "$W/image" --store "$W/store" --key-file "$W/key" \
	--chunk-size $CS -o "$W/m" --quiet || ktap_exit_fail_msg "snapblk-build"
NCH=$((SIZE / CS))

reload

# 1: geometry for the page cache
t "io_opt is the chunk size and readahead covers whole chunks" \
	'[ "$(cat /sys/block/$DEV/queue/optimal_io_size)" = $CS ] &&
	 [ "$(cat /sys/block/$DEV/queue/read_ahead_kb)" -ge $((CS / 1024)) ]'

# 2: defaults
t "knobs start at their documented defaults" \
	'[ "$(attr readahead_chunks)" = 0 ] && [ "$(attr max_inflight)" = 16 ] &&
	 [ "$(attr prefetch)" = none ] && [ "$(cat $P/cache_mb)" = 256 ] &&
	 [ "$(cat $P/cache_protected_pct)" = 75 ] && [ "$(cat $P/drop_cache)" = 0 ]'

# 3: bounds
bad=0
for kv in readahead_chunks=257 max_inflight=0 max_inflight=1025 \
	  fetch_timeout_ms=0 prefetch=go; do
	set_attr "${kv%=*}" "${kv#*=}" 2>/dev/null && bad=$((bad + 1))
done
for kv in cache_protected_pct=96 drop_cache=2 drop_cache=x; do
	echo "${kv#*=}" > "$P/${kv%=*}" 2>/dev/null && bad=$((bad + 1))
done
t "out-of-range knob values are refused ($bad accepted)" '[ $bad = 0 ]'

# 4: scan resistance.  A 16 MiB cache (64 chunks); hot set: chunks
# 0..23, read twice; then one pass over chunks 48..191 (144 chunks, over
# twice the cache); then the hot set again.
echo 16 > $P/cache_mb
read_chunks 0 23; read_chunks 0 23
read_chunks 48 $((NCH - 1))
d0=$(attr demand_fetches); h0=$(attr cache_hits)
read_chunks 0 23
dmiss=$(($(attr demand_fetches) - d0)); dhit=$(($(attr cache_hits) - h0))
ktap_print_msg "hot set after a scan of $((NCH - 48)) chunks: $dhit of 24 hits, $dmiss fetched again"
t "a hot set read twice survives a scan of twice the cache" \
	'[ $dhit -ge 22 ] && [ $dmiss -le 2 ]'

# 5: lowering cache_mb shrinks now
echo 64 > $P/cache_mb
read_chunks 0 $((NCH - 1))
r_before=$(attr resident_chunks)
echo 4 > $P/cache_mb
r_after=$(attr resident_chunks)
ktap_print_msg "cache_mb 64 -> 4: resident $r_before -> $r_after chunks"
t "lowering cache_mb shrinks the cache at once" \
	'[ "$r_before" -ge 60 ] && [ "$r_after" -le $((4 * 1048576 / CS)) ]'

# 6: drop_cache
echo 64 > $P/cache_mb
read_chunks 0 31
d0=$(attr demand_fetches)
echo 1 > $P/drop_cache
r_after=$(attr resident_chunks)
read_chunks 0 31
t "drop_cache empties the cache: the next read fetches again" \
	'[ "$r_after" = 0 ] && [ $(($(attr demand_fetches) - d0)) = 32 ]'

# 7-8: every knob changed under fio verify
echo 16 > $P/cache_mb
fio --name=v --filename=/dev/$DEV --size=${MB}M --bs=4k --verify=crc32c \
	--rw=randread --readonly --direct=1 --ioengine=libaio --iodepth=8 \
	--numjobs=4 --time_based --runtime=25 --group_reporting \
	> "$W/fio-verify.log" 2>&1 &
FPID=$!
knobs=0
while kill -0 $FPID 2>/dev/null; do
	for v in 4 64 8; do echo $v > $P/cache_mb; sleep 0.3; done
	for v in 0 50 95 75; do echo $v > $P/cache_protected_pct; sleep 0.2; done
	echo 1 > $P/drop_cache; sleep 0.3
	for v in 8 64 0 2; do set_attr readahead_chunks $v; sleep 0.3; done
	for v in 1 4 64 16; do set_attr max_inflight $v; sleep 0.3; done
	for v in 60000 30000; do set_attr fetch_timeout_ms $v; sleep 0.2; done
	knobs=$((knobs + 1))
done
wait $FPID; frc=$?
verr=$(grep -c "verify:" "$W/fio-verify.log")
ktap_print_msg "fio verify: exit $frc, $verr verify errors, $knobs rounds of knob changes, $(attr fetch_errors) fetch errors"
t "fio verifies every block read while every knob changes" \
	'[ $frc = 0 ] && [ $verr = 0 ] && [ $knobs -ge 2 ]'
t "no read failed and no fetch failed meanwhile" \
	'[ "$(attr fetch_errors)" = 0 ] && ! grep -q "err=[^ 0]" "$W/fio-verify.log"'
cp "$W/fio-verify.log" /tmp/cache_tuning-fio.log 2>/dev/null

# 9-11: readahead against a store 100 ms away
if "$bin/snapblkd" --help 2>&1 | grep -q -- --delay-ms; then
	echo 256 > $P/cache_mb
	reload --delay-ms 100
	SEQ=63
	t0=$(now); read_chunks 0 $SEQ; t1=$(now)
	set_attr readahead_chunks 16
	set_attr max_inflight 16
	echo 1 > $P/drop_cache
	t2=$(now); read_chunks 0 $SEQ; t3=$(now)
	slow=$(echo "$t1 - $t0" | bc -l); fast=$(echo "$t3 - $t2" | bc -l)
	ratio=$(echo "$slow / $fast" | bc -l)
	ktap_print_msg "cold sequential $((SEQ + 1)) chunks, store +100 ms: $(printf %.2f "$slow") s without readahead, $(printf %.2f "$fast") s with 16 (x$(printf %.2f "$ratio"))"
	ktap_print_msg "readahead_fetches $(attr readahead_fetches), prefetch_used $(attr prefetch_used), demand_fetches $(attr demand_fetches), prefetch_joined $(attr prefetch_joined)"
	# Bounded by the kernel's SHA-256 and AES of each chunk, which run
	# one at a time in the daemon's write() (tens of ms per chunk when
	# emulated), not by the 16 fetches in flight.
	t "readahead raises cold sequential throughput at least 2.5x" \
		'[ "$(echo "$ratio >= 2.5" | bc -l)" = 1 ]'
	t "chunks read ahead are counted and used" \
		'[ "$(attr readahead_fetches)" -ge 40 ] &&
		 [ $(( $(attr prefetch_used) + $(attr prefetch_joined) )) -ge 40 ]'
	t "the device still reads back the image byte for byte" whole_ok
else
	ktap_test_fail "snapblkd has no --delay-ms: readahead cannot be measured"
	ktap_test_fail "chunks read ahead are counted and used"
	ktap_test_fail "the device still reads back the image byte for byte"
fi

# 12: dmesg
t "no kernel warning" '! dmesg | grep -qE "WARNING|BUG:|Oops|KASAN|leak"'

ktap_finished
