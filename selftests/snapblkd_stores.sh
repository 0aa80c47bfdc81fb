#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# snapblkd with remote stores and the host disk cache, through the real
# kernel in the test VM, against real nginx servers on 127.0.0.1
# (selftests/lib/servers.sh).  Asserts what an operator relies on: an
# image served by nginx maps, mounts and reads back every file; through
# a caching proxy too; a second store answers what the first lacks; 500s
# and dropped connections are retried and the data is right; a store
# that is down fails reads with EIO by the fetch deadline, not a hang,
# and serves them once it is back; the disk cache serves a restarted
# daemon with nothing fetched from the store again, also after kill -9
# in the middle of a read; it stays within its bound under fio; and a
# corrupted cache file is refused by the kernel, dropped, and fetched
# again from the store with no read failing.  With the module's API 4:
# --delay-ms makes a read that fetches wait that long; demand reads are
# served before a backlog of readahead; and the kernel counts each chunk
# under the tier the daemon names (disk cache, store k), with the
# daemon's retries.
source "${KTAP_HELPERS:?run through selftests/run_tests}"
source "$(dirname "$0")/lib/servers.sh"

top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/build/bin
ko=${SNAPBLK_KO:-$top/build/$(uname -r)/snapblk.ko}
W=$(mktemp -d /tmp/snapblkd-stores.XXXXXX)
source "$(dirname "$0")/lib/daemon.sh"
CS=65536

cleanup() {
	[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
	umount "$W/mnt" 2>/dev/null
	[ -n "$DEV" ] && "$bin/snapblk" remove img 2>/dev/null
	rmmod snapblk 2>/dev/null
	srv_stop_all "$W" >/dev/null 2>&1
	rm -rf "$W"
}
trap cleanup EXIT

ktap_print_header
if ! command -v nginx >/dev/null; then
	ktap_set_plan 1
	ktap_test_skip "nginx is not installed (make deps)"
	ktap_finished
	exit 0
fi
ktap_set_plan 25

# chunk GETs answered 200 by the server in $1
gets() { awk '$4 == 200 && $7 == "GET" { n++ } END { print n + 0 }' "$1/access.log" 2>/dev/null; }
# the daemon's "disk cache: ..." counters at its last report, as NAME=N
cache_stat() {
	sed -n 's/.*disk cache: \([0-9]*\) hits, \([0-9]*\) misses, \([0-9]*\) inserted, \([0-9]*\) evicted, \([0-9]*\) dropped, \([0-9]*\) chunks, \([0-9]*\) of \([0-9]*\) bytes.*/hits=\1 misses=\2 inserted=\3 evicted=\4 dropped=\5 chunks=\6 bytes=\7 max=\8/p' "$W/d.log" | tail -n 1
}

modprobe ext4 2>/dev/null
mkdir -p "$W/src" "$W/store" "$W/mnt" "$W/half"
for d in email json http; do
	cp -a "/usr/lib/python3.11/$d" "$W/src/"
done
head -c 2M /dev/urandom > "$W/src/random.bin"
"$bin/snapblk-build" keygen -o "$W/key" || ktap_exit_fail_msg "keygen"
# 16 MiB (the tree needs 12): the image is read whole a dozen times, fio
# reads twice its size at random, and the timed tests (kill -9 mid-read,
# hedging) are sized for it; the builder's own size class would be 1 GiB
# of mostly ZERO chunks.
"$bin/snapblk-build" create --from-dir "$W/src" --store "$W/store" \
	--key-file "$W/key" --chunk-size $CS --fs-size 16M \
	--image-out "$W/image" -o "$W/m" --quiet ||
	ktap_exit_fail_msg "snapblk-build create"
SIZE=$(stat -c %s "$W/image")
NDATA=$(find "$W/store" -type f -name '[0-9a-f]*' | wc -l)
# Chunk indexes that are not all zero, in order.
NZ=($("$bin/snapblk-build" inspect "$W/m" --key-file "$W/key" --chunks \
	--json | python3 -c 'import json, sys
print(" ".join(str(c["index"]) for c in json.load(sys.stdin)["chunk_table"]
               if not c["zero"]))'))
# A store with every other chunk only, for the two-store test.
n=0
for f in $(find "$W/store" -type f -name '[0-9a-f]*' | sort); do
	n=$((n + 1))
	[ $((n % 2)) = 0 ] || continue
	mkdir -p "$W/half/$(basename "$(dirname "$f")")"
	cp "$f" "$W/half/$(basename "$(dirname "$f")")/"
done
NHALF=$(find "$W/half" -type f | wc -l)

srv_free_port P1 && srv_nginx_store "$W/s1" "$W/store" "$P1" ||
	ktap_exit_fail_msg "nginx: $SRV_ERR"
srv_free_port P2 && srv_nginx_proxy "$W/px" "http://127.0.0.1:$P1" "$P2" ||
	ktap_exit_fail_msg "nginx proxy: $SRV_ERR"
srv_free_port P3 && srv_nginx_faulty "$W/bad" "$W/store" "$P3" \
	--fail-percent 30 --reset-percent 10 ||
	ktap_exit_fail_msg "nginx faulty: $SRV_ERR"
srv_free_port P4	# nothing listens there
URL1=http://127.0.0.1:$P1

# 1-3: one HTTP store
fresh
start_daemon --store "$URL1" --max-inflight 16
map
t "an image served by nginx maps and reads back byte for byte" 'whole_ok'
(cd "$W/src" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > "$W/src.sum"
mount -t ext4 -o ro "/dev/$DEV" "$W/mnt" 2>"$W/mount.err" &&
	(cd "$W/mnt" && sha256sum -c --quiet "$W/src.sum") > "$W/files.log" 2>&1; rc=$?
t "its file system mounts and every file matches ($(wc -l < "$W/src.sum") files)" '[ $rc = 0 ]'
umount "$W/mnt" 2>/dev/null
t "each chunk was fetched from nginx once ($(gets "$W/s1") GETs, $NDATA chunks)" \
	'[ "$(gets "$W/s1")" = "$NDATA" ]'

# 4: the caching proxy
fresh
start_daemon --store "http://127.0.0.1:$P2"
map && whole_ok; rc1=$?
fresh
start_daemon --store "http://127.0.0.1:$P2"
map && whole_ok; rc2=$?
hits=$(awk '$10 == "HIT"' "$W/px/access.log" | wc -l)
t "through a caching proxy, twice: right bytes, the second pass from its cache ($hits hits)" \
	'[ $rc1 = 0 ] && [ $rc2 = 0 ] && [ "$hits" -ge "$NDATA" ]'

# 5: two stores, the first with half the chunks
fresh
s1=$(gets "$W/s1")
start_daemon --store "$W/half" --store "$URL1"
map && whole_ok; rc=$?
from2=$(( $(gets "$W/s1") - s1 ))
t "a second store answers what the first lacks ($from2 of $NDATA from it)" \
	'[ $rc = 0 ] && [ "$from2" = "$((NDATA - NHALF))" ]'

# 6: a dead first store, then a good one
fresh
start_daemon --store "http://127.0.0.1:$P4" --store "$URL1"
map && whole_ok; rc=$?
t "a store that refuses connections is passed over for the next" '[ $rc = 0 ]'

# 7: 500s and dropped connections
fresh
start_daemon --store "http://127.0.0.1:$P3"
map && whole_ok; rc=$?
report
retries=$(sed -n 's/.*stores: [0-9]* chunks fetched, \([0-9]*\) retries.*/\1/p' "$W/d.log" | tail -n 1)
# A dropped connection that curl had reused it retries itself, once:
# only the 500s are sure to reach the daemon.
fails=$(awk '$11 == "fail"' "$W/bad/access.log" | wc -l)
resets=$(awk '$11 == "reset"' "$W/bad/access.log" | wc -l)
t "30% 500s and 10% dropped connections are retried: right bytes ($fails 500s, $resets resets, ${retries:-?} retries)" \
	'[ $rc = 0 ] && [ "$fails" -gt 0 ] && [ "$resets" -gt 0 ] && [ "${retries:-0}" -ge "$fails" ]'

# 8-9: the store goes down, then comes back
fresh
start_daemon --store "$URL1" --connect-timeout 500
map --fetch-timeout 3000
srv_stop "$W/s1"
SECONDS=0
dd if="/dev/$DEV" of=/dev/null bs=$CS count=1 skip="${NZ[2]}" iflag=direct 2>/dev/null; rc=$?
took=$SECONDS
t "with the store down a read fails (EIO) at the fetch deadline, retried till then (${took}s, deadline 3 s)" \
	'[ $rc != 0 ] && [ $took -ge 2 ] && [ $took -le 8 ] &&
	 grep -q "deadline reached after" "$W/d.log"'
srv_nginx_store "$W/s1" "$W/store" "$P1" >/dev/null
whole_ok; rc=$?
t "once the store is back the same reads succeed" '[ $rc = 0 ]'

# 10-11: the disk cache across a daemon restart
fresh
rm -rf "$W/cache"
start_daemon --store "$URL1" --cache-dir "$W/cache" --cache-size 1G
map && whole_ok; rc1=$?
report
c1=$(cache_stat)
fresh
s1=$(gets "$W/s1")
start_daemon --store "$URL1" --cache-dir "$W/cache" --cache-size 1G
map && whole_ok; rc2=$?
report
c2=$(cache_stat)
again=$(( $(gets "$W/s1") - s1 ))
t "the disk cache fills on the first pass ($c1)" \
	'[ $rc1 = 0 ] && [[ "$c1" == *" inserted=$NDATA "* ]]'
t "a restarted daemon serves every chunk from it: right bytes, $again fetched from the store" \
	'[ $rc2 = 0 ] && [ "$again" = 0 ] && [[ "$c2" == "hits=$NDATA "* ]]'

# 12: kill -9 in the middle of a read that fills the disk cache.  The
# store is 200 ms away and two fetches run at once, so the read takes
# seconds; after the kill, the chunks the first daemon had cached (K of
# them) must come from the cache, and only the others from the store.
fresh
rm -rf "$W/cache2"
srv_shape "$P1" 0 200 || ktap_exit_fail_msg "tc: $SRV_ERR"
start_daemon --store "$URL1" --cache-dir "$W/cache2" --cache-size 1G --max-inflight 2
map
(cmp -n "$SIZE" "/dev/$DEV" "$W/image" > "$W/cmp.out" 2>&1; echo $? > "$W/cmp.rc") &
reader=$!
sleep 3
kill -9 "$DPID"; wait "$DPID" 2>/dev/null
midway=0; kill -0 $reader 2>/dev/null && midway=1
K=$(find "$W/cache2" -type f -name '[0-9a-f]*' | wc -l)
start_daemon --store "$URL1" --cache-dir "$W/cache2" --cache-size 1G
wait $reader
report
srv_unshape
second=$(sed -n 's/.*stores: \([0-9]*\) chunks fetched.*/\1/p' "$W/d.log" | tail -n 1)
t "kill -9 mid-read, restart: no EIO, right bytes; the $K chunks cached before come from the cache, only the other $((NDATA - K)) from the store (${second:-?})" \
	'[ $midway = 1 ] && [ "$(cat "$W/cmp.rc")" = 0 ] && [ "$K" -gt 0 ] &&
	 [ "$K" -lt "$NDATA" ] && [ "${second:-x}" = "$((NDATA - K))" ]'

# 13-14: a bounded cache under fio
fresh
rm -rf "$W/small"
BOUND=$((NDATA / 3 * CS))
start_daemon --store "$URL1" --cache-dir "$W/small" --cache-size "$BOUND"
map
fio --name=r --filename="/dev/$DEV" --rw=randread --bs=4k --direct=1 \
	--ioengine=psync --size="$SIZE" --io_size=$((SIZE * 2)) --numjobs=2 \
	--randrepeat=0 > "$W/fio.out" 2>&1; rc=$?
report
c=$(cache_stat)
bytes=$(sed 's/.* bytes=\([0-9]*\) .*/\1/' <<<"$c")
t "fio over an image 3x the disk cache runs clean" '[ $rc = 0 ] && whole_ok'
t "the disk cache stays within its bound of $BOUND bytes ($c)" \
	'[ -n "$bytes" ] && [ "$bytes" -le "$BOUND" ] && [[ "$c" != *" evicted=0 "* ]] &&
	 [ "$(find "$W/small" -type f -name "[0-9a-f]*" -printf "%s\n" |
	      awk "{ n += \$1 } END { print n + 0 }")" -le "$BOUND" ]'

# 15-16: a corrupted cache file (the full cache of 10-11)
fresh
victim=$(find "$W/cache" -type f -name '[0-9a-f]*' | sort | head -n 1)
printf '\xff' | dd of="$victim" bs=1 seek=100 conv=notrunc 2>/dev/null
s1=$(gets "$W/s1")
start_daemon --store "$URL1" --cache-dir "$W/cache" --cache-size 1G
map && whole_ok; rc=$?
report
again=$(( $(gets "$W/s1") - s1 ))
t "a corrupted cache file is refused by the kernel and fetched again: no read fails" \
	'[ $rc = 0 ] && [ "$again" = 1 ] && [ "$(cat /sys/block/$DEV/snapblk/fetch_errors)" = 0 ]'
t "the daemon dropped it from the cache and says so" \
	'grep -q "the kernel rejected the last answer (dropped from the disk cache)" "$W/d.log" &&
	 [[ "$(cache_stat)" == *" dropped=1 "* ]] &&
	 [ "$(cat /sys/block/$DEV/snapblk/refetches)" = 1 ]'

# 17-18: HTTPS with HTTP/2, the server's CA given with --ca-file
srv_free_port P5 && srv_nginx_store "$W/tls" "$W/store" "$P5" --tls ||
	ktap_exit_fail_msg "nginx tls: $SRV_ERR"
fresh
start_daemon --store "https://127.0.0.1:$P5" --ca-file "$W/tls/ca.pem"
map && whole_ok; rc=$?
h2=$(awk '$4 == 200 && $9 == "HTTP/2.0"' "$W/tls/access.log" | wc -l)
conns=$(awk '$4 == 200 { print $2 }' "$W/tls/access.log" | sort -u | wc -l)
t "an https store with --ca-file: right bytes, every chunk over HTTP/2 ($h2 of $NDATA) on $conns connection(s)" \
	'[ $rc = 0 ] && [ "$h2" = "$NDATA" ] && [ "$conns" -le 2 ]'
fresh
start_daemon --store "https://127.0.0.1:$P5"
map
dd if="/dev/$DEV" of=/dev/null bs=$CS count=1 iflag=direct 2>/dev/null; rc=$?
t "without the CA the certificate is refused: EIO, logged with what to do" \
	'[ $rc != 0 ] && grep -q "is the server.s certificate signed by a CA in --ca-file" "$W/d.log"'

# 19: a replica group, one replica slow (1.5 s before each answer):
# hedged requests.  One fetch at a time, so that time adds up: without
# hedging, the half of the chunks that go to the slow replica first would
# take NDATA / 2 * 1.5 s.
srv_free_port P6 && srv_nginx_faulty "$W/slow" "$W/store" "$P6" \
	--slow-percent 100 --slow-ms 1500 ||
	ktap_exit_fail_msg "nginx slow: $SRV_ERR"
fresh
start_daemon --store-group "http://127.0.0.1:$P6,$URL1" --hedge-ms 100 \
	--max-inflight 1
map
SECONDS=0
whole_ok; rc=$?
took=$SECONDS
report
read -r hedges wins < <(sed -n 's/.*(group): \([0-9]*\) hedged requests, \([0-9]*\) won.*/\1 \2/p' "$W/d.log" | tail -n 1)
t "a replica group with one slow replica: hedged requests (${hedges:-?} sent, ${wins:-?} won) keep the read at ${took}s, not $((NDATA * 3 / 4))s" \
	'[ $rc = 0 ] && [ "${hedges:-0}" -ge $((NDATA / 2 - 1)) ] &&
	 [ "${wins:-0}" -ge $((NDATA / 2 - 1)) ] && [ "$took" -lt $((NDATA * 3 / 4 / 3)) ]'

# 20: the same without --hedge-ms: 50 ms until 20 answers are known,
# then the 95th percentile of the group's latencies
fresh
start_daemon --store-group "http://127.0.0.1:$P6,$URL1" --max-inflight 1
map
SECONDS=0
whole_ok; rc=$?
took=$SECONDS
report
read -r hedges wins < <(sed -n 's/.*(group): \([0-9]*\) hedged requests, \([0-9]*\) won.*/\1 \2/p' "$W/d.log" | tail -n 1)
t "the hedge delay from the latencies seen: ${hedges:-?} hedged, ${wins:-?} won, ${took}s" \
	'[ $rc = 0 ] && [ "${wins:-0}" -ge $((NDATA / 2 - 1)) ] &&
	 [ "$took" -lt $((NDATA * 3 / 4 / 3)) ]'

# read_ms CHUNK: one O_DIRECT read of it; prints how many ms it took
read_ms() {
	local t0
	t0=$(date +%s%N)
	dd if="/dev/$DEV" of=/dev/null bs=$CS count=1 skip="$1" iflag=direct \
		2>/dev/null || return 1
	echo $((($(date +%s%N) - t0) / 1000000))
}
# sysfs counter NAME of the device
dstat() { cat "/sys/block/$DEV/snapblk/$1"; }
# the device's fetches by tier, from snapblk status --json: disk=N store0=N store1=N
tiers() {
	"$bin/snapblk" status img --json | python3 -c 'import json, sys
t = json.load(sys.stdin).get("tiers", {})
print(" ".join("%s=%d" % (k, t.get(k, 0)) for k in ("disk", "store0", "store1")))'
}

# 21: --delay-ms through the kernel: a store 300 ms away.  The kernel's
# own latency counter is the measure (a program's start in the test VM
# may take longer than the delay); the read takes at least as long.
fresh
start_daemon --store "$W/store" --delay-ms 300
map
c=${NZ[$((${#NZ[@]} / 2))]}
d0=$(dstat fetches_done) l0=$(dstat fetch_latency_us)
cold=$(read_ms "$c")
d1=$(dstat fetches_done) l1=$(dstat fetch_latency_us)
read_ms "$c" >/dev/null
d2=$(dstat fetches_done)
t "--delay-ms 300: a read that fetches chunk $c takes ${cold:-?} ms, the fetch $((l1 - l0)) us as the kernel saw it; read again, from memory, no fetch" \
	'[ -n "$cold" ] && [ "$cold" -ge 300 ] && [ $((d1 - d0)) = 1 ] &&
	 [ $((l1 - l0)) -ge 300000 ] && [ $((l1 - l0)) -lt 2000000 ] &&
	 [ "$d2" = "$d1" ] &&
	 grep -q "every store request takes at least 300 ms" "$W/d.log"'

# 22: demand first.  A readahead of 40 chunks at background priority
# (the device lets 16 fetches fly), behind a daemon that runs 4 fetches
# of 2 s at once, 3 of them background at most: a read elsewhere starts
# at once, in the slot kept for demand, and takes about as long as a read
# with nothing queued; not one more fetch (a daemon whose 4 slots were
# all taken would make it wait for one to end), nor the backlog.  The
# readahead starts from two all-zero chunks S and S + 1 read in turn (no
# fetch: the background fetches have just begun when the read comes,
# half a second later);
# NEAR and FAR are data chunks after the window, NEAR read alone first,
# for the measure.
read -r S NEAR FAR < <("$bin/snapblk-build" inspect "$W/m" --key-file "$W/key" \
	--chunks --json | python3 -c 'import json, sys
z = [c["zero"] for c in json.load(sys.stdin)["chunk_table"]]
for s in range(len(z) - 44):
    if z[s] and z[s + 1] and z[s + 2:s + 42].count(False) >= 32:
        far = [i for i in range(s + 42, len(z)) if not z[i]]
        if len(far) >= 2:
            print(s, far[-2], far[-1])
            break')
fresh
start_daemon --store "$W/store" --delay-ms 2000 --max-inflight 4
map --readahead 40 --max-inflight 16
base=$(read_ms "${NEAR:-0}")
dd if="/dev/$DEV" of=/dev/null bs=$CS count=2 skip="${S:-0}" iflag=direct 2>/dev/null
sleep 0.5	# the readahead reaches the daemon first
queued=$(dstat readahead_fetches)
took=$(read_ms "${FAR:-0}")
report
bg=$(sed -n 's/.*fetches: demand [0-9]* started, [0-9]* completed; background \([0-9]*\) started.*/\1/p' "$W/d.log" | tail -n 1)
t "demand before background: chunk ${FAR:-?} read in ${took:-?} ms (alone: ${base:-?} ms) with $queued readahead fetches issued (${bg:-?} started by the daemon by then)" \
	'[ -n "$S" ] && [ "$queued" -ge 12 ] && [ -n "$base" ] &&
	 [ -n "$took" ] && [ "$took" -lt $((base + 800)) ] &&
	 [ "${bg:-0}" -ge 3 ] && [ "${bg:-0}" -lt "$queued" ]'

# 23-24: tiers.  Two stores, the first with half the chunks, and a disk
# cache; then the same image again through a restarted daemon.
fresh
rm -rf "$W/tcache"
start_daemon --store "$W/half" --store "$URL1" --cache-dir "$W/tcache" \
	--cache-size 1G
map && whole_ok; rc=$?
tr1=$(tiers) r1=$(dstat retries)
report
dl1=$(grep 'tiers: disk' "$W/d.log" | tail -n 1)
fresh
start_daemon --store "$W/half" --store "$URL1" --cache-dir "$W/tcache" \
	--cache-size 1G
map && whole_ok; rc2=$?
tr2=$(tiers) r2=$(dstat retries)
t "the kernel counts each chunk under the tier snapblkd named: $tr1, $r1 retries ($NHALF in the first store, $((NDATA - NHALF)) in the second only)" \
	'[ $rc = 0 ] && [ "$tr1" = "disk=0 store0=$NHALF store1=$((NDATA - NHALF))" ] &&
	 [ "$r1" = "$((NDATA - NHALF))" ] &&
	 [[ "$dl1" == *"tiers: disk 0, store 0 $NHALF, store 1 $((NDATA - NHALF))" ]]'
t "through a restarted daemon every chunk comes from the disk cache tier: $tr2, $r2 retries" \
	'[ $rc2 = 0 ] && [ "$tr2" = "disk=$NDATA store0=0 store1=0" ] && [ "$r2" = 0 ]'

# 25: the answer writers.  The kernel verifies (SHA-256) and decrypts
# each chunk inside the daemon's write() of its answer, which in the TCG
# guest costs more than the rest of a fetch: a cold sequential read of a
# 32 MiB image of random data (128 chunks of 256 KiB, every one fetched)
# from a directory store, 16 fetches in flight through readahead, with
# --writers 1 (one thread does every write) and with the default (one
# writer per vCPU).  Best of three runs each, in turn (the build machine
# is shared: a run may get less of it); the default must not be slower
# than 0.9 times the speed of --writers 1, and reads right.
BCS=262144
mkdir -p "$W/bigstore"
head -c 32M /dev/urandom > "$W/big.img"
"$bin/snapblk-build" create "$W/big.img" --store "$W/bigstore" \
	--key-file "$W/key" --chunk-size $BCS -o "$W/bigm" --quiet ||
	ktap_exit_fail_msg "snapblk-build create (32 MiB)"
BSIZE=$(stat -c %s "$W/big.img")
# cold_read ARGS...: a fresh module and daemon (ARGS), the big image
# mapped as img with readahead 16; MS is the ms of one dd iflag=direct
# bs=1M over it (empty on failure)
cold_read() {
	local node t0
	MS=
	fresh
	start_daemon --store "$W/bigstore" "$@"
	node=$("$bin/snapblk" create img "$W/bigm" --key-file "$W/key") ||
		return 1
	DEV=${node#/dev/}
	echo 16 > "/sys/block/$DEV/snapblk/readahead_chunks" || return 1
	t0=$(date +%s%N)
	dd if="/dev/$DEV" of=/dev/null bs=1M iflag=direct 2>/dev/null ||
		return 1
	MS=$((($(date +%s%N) - t0) / 1000000))
}
w1=() wd=()
for round in 1 2 3; do
	cold_read --writers 1
	w1+=("${MS:-x}")
	cold_read
	wd+=("${MS:-x}")
done
# the default run just made: right bytes, and its writer count
cmp -n "$BSIZE" "/dev/$DEV" "$W/big.img" >/dev/null 2>&1; brc=$?
nwr=$(sed -n 's/.*answers written by \([0-9]*\) threads\{0,1\}$/\1/p' "$W/d.log" | tail -n 1)
stop_daemon
best() { printf '%s\n' "$@" | grep -E '^[0-9]+$' | sort -n | head -n 1; }
b1=$(best "${w1[@]}") bd=$(best "${wd[@]}")
secs() { [ -n "$1" ] && printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }
ktap_print_msg "cold sequential read of 32 MiB, 16 fetches in flight: --writers 1 ${w1[*]} ms, default (${nwr:-?} writers, $(nproc) vCPUs) ${wd[*]} ms"
[ -n "$b1" ] && [ -n "$bd" ] &&
	ktap_print_msg "best: --writers 1 $(secs "$b1") s, default $(secs "$bd") s: the default takes $((bd * 100 / b1))% of the time of --writers 1 ($((b1 * 100 / bd))% of its speed)"
t "answer writers: a cold sequential read with the default writers (${nwr:-?}) takes $(secs "$bd") s, with --writers 1 $(secs "$b1") s; not slower than 0.9x, and right bytes" \
	'[ -n "$b1" ] && [ -n "$bd" ] && [[ "${w1[*]} ${wd[*]}" != *x* ]] &&
	 [ $((bd * 9)) -le $((b1 * 10)) ] && [ "$brc" = 0 ] &&
	 [ "${nwr:-0}" -ge 1 ]'

stop_daemon
ktap_finished
