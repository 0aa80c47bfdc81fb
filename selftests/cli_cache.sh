#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The snapblk CLI for the tuned cache, through the real kernel in the
# test VM, with snapblkd serving a directory store.  Asserts what an
# operator relies on:
#
# - `snapblk record` saves the order in which reads first touched the
#   device's chunks (ZERO chunks and repeats left out), as many as the
#   device's trace_chunks counter says;
# - `create --prefetch FILE --wait` brings exactly those chunks in before
#   it returns (prefetch done, reads of them then fetch nothing), and
#   `snapblk prefetch NAME FILE` does it on a running device;
# - `status --json` has the fields its man page names, the histogram
#   agrees with the counters, `status --prometheus` passes `promtool check
#   metrics` (fails, not skips, without promtool);
# - a record file of another image is refused (exit 1, both image ids
#   named) and no device is created;
# - `hydrate --wait` makes the device fully resident: it then reads back
#   the whole image with the daemon stopped;
# - `prefetch --stop` stops a hydration that cannot progress (no daemon),
#   and a `hydrate --wait` waiting for it exits 1.
source "${KTAP_HELPERS:?run through selftests/run_tests}"

top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/build/bin
sb=$bin/snapblk
ko=${SNAPBLK_KO:-$top/build/$(uname -r)/snapblk.ko}
W=$(mktemp -d /tmp/cli_cache.XXXXXX)
source "$(dirname "$0")/lib/daemon.sh"
CS=65536
WPID=

cleanup() {
	[ -n "$WPID" ] && kill -9 "$WPID" 2>/dev/null
	stop_daemon
	for n in img img2 other; do "$sb" remove "$n" 2>/dev/null; done
	rmmod snapblk 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

ktap_print_header
ktap_set_plan 25

# js EXPR: print python EXPR of d, `snapblk status img --json`
js() {
	"$sb" status img --json > "$W/st.json" || return 1
	python3 -c "import json,sys; d = json.load(open(sys.argv[1])); print($1)" \
		"$W/st.json"
}
# jtrue EXPR: python EXPR of d (as for js) is true
jtrue() { [ "$(js "bool($1)")" = True ]; }
# rec_chunks FILE: the chunk indexes of record file FILE, one a line
rec_chunks() {
	python3 - "$1" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
hlen, = struct.unpack_from("<I", b, 12)
count, = struct.unpack_from("<I", b, 52)
for i in range(count):
    print(struct.unpack_from("<I", b, hlen + 4 * i)[0])
PY
}
attr() { cat "/sys/block/$DEV/snapblk/$1"; }
read_chunk() { dd if="/dev/$DEV" of=/dev/null bs=$CS skip="$1" count=1 iflag=direct status=none; }

# Two images of 64 chunks; in the first, chunks 40..47 are ZERO.
{ head -c $((40 * CS)) /dev/urandom; head -c $((8 * CS)) /dev/zero
  head -c $((16 * CS)) /dev/urandom; } > "$W/image"
head -c $((64 * CS)) /dev/urandom > "$W/image2"
SIZE=$(stat -c %s "$W/image")
mkdir -p "$W/store" "$W/mnt"
"$bin/snapblk-build" keygen -o "$W/key" >/dev/null 2>&1 || ktap_exit_fail_msg "keygen"
for i in "" 2; do
	"$bin/snapblk-build" create "$W/image$i" --store "$W/store" \
		--key-file "$W/key" --chunk-size $CS -o "$W/m$i" --quiet ||
		ktap_exit_fail_msg "snapblk-build create image$i"
done
id_of() {
	"$bin/snapblk-build" inspect "$1" --key-file "$W/key" --json |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["image_id"])'
}
ID1=$(id_of "$W/m")
ID2=$(id_of "$W/m2")
command -v promtool >/dev/null ||
	echo "# promtool is missing (Debian package prometheus): its tests fail"

# ------------------------------------------------------------- record
fresh
start_daemon --store "$W/store"
t "create maps the image" 'map'
# 3 twice, 42 is ZERO: the trace is 7 3 20 1 63.
for c in 7 3 42 20 1 3 63; do read_chunk $c; done
t "the device traced 5 first touches (trace_chunks $(attr trace_chunks))" \
	'[ "$(attr trace_chunks)" = 5 ]'
out=$("$sb" record img -o "$W/rec" 2>&1); rc=$?
t "record writes the trace and says how many chunks ($out)" \
	'[ $rc = 0 ] && [ "$out" = "recorded 5 chunks of img to $W/rec" ]'
t "the record file lists the chunks in first-touch order, ZERO and repeats left out" \
	'[ "$(rec_chunks "$W/rec" | tr "\n" " ")" = "7 3 20 1 63 " ]'
t "record --json: chunks is trace_chunks, image_id the image's" \
	'"$sb" record img -o "$W/rec2" --json | python3 -c "
import json, sys; d = json.load(sys.stdin)
assert d[\"chunks\"] == $(attr trace_chunks) and d[\"image_id\"] == \"$ID1\", d"'

# ----------------------------------------------------- create --prefetch
fresh
start_daemon --store "$W/store"
node=$("$sb" create img "$W/m" --key-file "$W/key" --prefetch "$W/rec" --wait 2>"$W/err"); rc=$?
DEV=${node#/dev/}
t "create --prefetch --wait maps the device and returns with the prefetch done" \
	'[ $rc = 0 ] && [ -b "/dev/$DEV" ] && [ "$(attr prefetch)" = done ]'
pf=$(js "d[\"stats\"][\"prefetch_queued\"], d[\"stats\"][\"prefetch_done\"], d[\"stats\"][\"prefetch_fetches\"], d[\"stats\"][\"resident\"]")
t "it fetched the 5 recorded chunks and queued exactly those (queued, done, fetched, resident: $pf)" \
	'[ "$pf" = "5 5 5 5" ]'
f0=$(attr bytes_fetched)
for c in 7 3 20 1 63; do read_chunk $c; done
t "reading the recorded chunks then fetches nothing, and counts them used" \
	'[ "$(attr bytes_fetched)" = "$f0" ] && [ "$(attr prefetch_used)" = 5 ]'

# --------------------------------------------------------- status --json
read_chunk 10
t "status --json: settings, prefetch, residency as documented" \
	'jtrue "d[\"name\"] == \"img\" and d[\"image_id\"] == \"$ID1\" and
		d[\"readahead_chunks\"] == 0 and d[\"max_inflight\"] == 16 and
		d[\"prefetch\"] == \"done\" and d[\"fully_resident\"] is False and
		d[\"stats\"][\"trace_chunks\"] == 6"'
t "status --json: the latency histogram is cumulative and counts every fetch" \
	'js "1" >/dev/null && python3 - "$W/st.json" <<'"'"'PY'"'"'
import json, sys
d = json.load(open(sys.argv[1]))
lat, st = d["latency"], d["stats"]
h = [b["count"] for b in lat["histogram"]]
assert h == sorted(h), h
assert h[-1] == lat["count"] == st["fetches_done"] >= 6, (h, st)
assert lat["histogram"][-1]["le_us"] is None and lat["histogram"][0]["le_us"] == 2
assert lat["sum_us"] == st["fetch_latency_us"] > 0
assert lat["p50_us"] <= lat["p90_us"] <= lat["p99_us"]
PY'
t "status --json: tiers.memory is the cache hits" \
	'jtrue "d[\"tiers\"][\"memory\"] == d[\"stats\"][\"cache_hits\"] > 0"'
"$sb" status --prometheus > "$W/all.prom" 2>"$W/err"; rc=$?
lint=$(promtool check metrics < "$W/all.prom" 2>&1); prc=$?
t "status --prometheus (every device and the cache) passes promtool check metrics" \
	'[ $rc = 0 ] && [ $prc = 0 ] && [ -z "$lint" ] && [ -s "$W/all.prom" ]'
[ -z "$lint" ] || echo "$lint" | sed 's/^/# /'
lint=$("$sb" status img --prometheus | promtool check metrics 2>&1); prc=$?
t "status img --prometheus passes promtool check metrics" \
	'[ $prc = 0 ] && [ -z "$lint" ]'
idx=${DEV#snapblk}
t "prometheus: prefetch state done, histogram _count is fetches_done" \
	'grep -qx "snapblk_device_prefetch_state{device=\"img\",index=\"$idx\",state=\"done\"} 1" "$W/all.prom" &&
	 grep -qx "snapblk_fetch_duration_seconds_count{device=\"img\",index=\"$idx\"} $(attr fetches_done)" "$W/all.prom" &&
	 grep -qx "snapblk_cache_limit_bytes $(($(cat /sys/module/snapblk/parameters/cache_mb) << 20))" "$W/all.prom"'
t "status --json without a name: every device and the shared cache" \
	'"$sb" status --json | python3 -c "
import json, sys; d = json.load(sys.stdin)
assert [x[\"name\"] for x in d[\"devices\"]] == [\"img\"], d
assert d[\"cache\"][\"limit_bytes\"] == $(cat /sys/module/snapblk/parameters/cache_mb) << 20, d[\"cache\"]"'

# ------------------------------------------------- another image's record
out=$("$sb" create other "$W/m2" --key-file "$W/key" --prefetch "$W/rec" 2>&1); rc=$?
t "create --prefetch of another image's record: exit 1, both ids named" \
	'[ $rc = 1 ] && [[ "$out" == *"recorded from image ${ID1:0:16}, not from this manifest'"'"'s image ${ID2:0:16}"* ]] &&
	 [[ "$out" == *"record it again"* ]]'
t "... and no device is created" \
	'! "$sb" ls --json | grep -q "\"other\"" && [ "$(ls -d /sys/block/snapblk* | wc -l)" = 1 ]'
"$sb" create img2 "$W/m2" --key-file "$W/key" >/dev/null 2>&1
out=$("$sb" prefetch img2 "$W/rec" 2>&1); rc=$?
t "prefetch of another image's record on a running device: exit 1" \
	'[ $rc = 1 ] && [[ "$out" == *"not from device img2'"'"'s image ${ID2:0:16}"* ]]'
"$sb" remove img2 2>/dev/null
out=$("$sb" prefetch img "$W/rec" --wait 2>&1); rc=$?
t "prefetch NAME FILE --wait on a running device: done" \
	'[ $rc = 0 ] && [ "$out" = "prefetching 5 chunks of img" ] && [ "$(attr prefetch)" = done ]'

# ------------------------------------------------------------- hydrate
fresh
start_daemon --store "$W/store"
t "create --readahead 4 --max-inflight 8 sets both" \
	'map --readahead 4 --max-inflight 8 && [ "$(attr readahead_chunks)" = 4 ] && [ "$(attr max_inflight)" = 8 ]'
out=$("$sb" hydrate img --wait 2>&1); rc=$?
t "hydrate --wait returns done ($out)" \
	'[ $rc = 0 ] && [ "$out" = "hydrating img: 64 chunks" ] && [ "$(attr prefetch)" = done ]'
t "status says fully resident: 56/56 chunks (all: the store is no longer needed)" \
	'"$sb" status img | grep -qx "resident: *56/56 chunks (all: the store is no longer needed)" &&
	 jtrue "d[\"fully_resident\"]"'
stop_daemon
t "with the daemon stopped, the whole device reads back the image" 'whole_ok'

# ------------------------------------------------------- prefetch --stop
fresh		# an empty cache and no daemon: the hydration cannot progress
map --max-inflight 2 --fetch-timeout 120000
"$sb" hydrate img --wait > "$W/wait.out" 2>"$W/wait.err" &
WPID=$!
sleep 1
out=$("$sb" prefetch --stop img 2>&1); rc=$?
t "prefetch --stop stops a hydration that cannot progress ($out)" \
	'[ $rc = 0 ] && [ "$(attr prefetch)" = stopped ] && [[ "$out" == "prefetch of img: stopped ("* ]]'
wait "$WPID"; rc=$?
WPID=
t "a hydrate --wait waiting for it exits 1 and says it stopped" \
	'[ $rc = 1 ] && grep -q "the prefetch of device img ended stopped" "$W/wait.err"'
start_daemon --store "$W/store"	# the fetches in flight finish
ktap_finished
