#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The lazy block device end to end in the test VM: snapblk-build makes an
# image from a real tree, snapblkd serves its store, `snapblk create` maps
# it.  Asserts what a user relies on: the device reads back the image byte
# for byte, the mounted file system has every file intact, chunks are
# fetched once, a bad chunk fails only the reads that need it, a daemon
# killed mid-storm loses nothing, no daemon means EIO after the timeout
# (not a hang), and a mapped device cannot be removed or unloaded.
source "${KTAP_HELPERS:?run through selftests/run_tests}"

top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/build/bin
ko=${SNAPBLK_KO:-$top/build/$(uname -r)/snapblk.ko}
W=$(mktemp -d /tmp/blockdev.XXXXXX)
DPID=

cleanup() {
	[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
	pkill -9 -f "snapblkd --store $W/store" 2>/dev/null
	umount "$W/mnt" 2>/dev/null
	for n in $("$bin/snapblk" ls --json 2>/dev/null |
		   python3 -c 'import json,sys; [print(d["name"]) for d in json.load(sys.stdin)]' 2>/dev/null); do
		"$bin/snapblk" remove "$n" 2>/dev/null
	done
	rmmod snapblk 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

ktap_print_header
ktap_set_plan 25

# t DESC EXPR: one result, passed when the shell expression EXPR is true.
t() { if eval "$2"; then ktap_test_pass "$1"; else ktap_test_fail "$1"; fi; }

start_daemon() {
	"$bin/snapblkd" --store "$W/store" --jobs 4 >>"$W/snapblkd.log" 2>&1 &
	DPID=$!
	sleep 0.5
}
stop_daemon() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	DPID=
}
# reload: a fresh module (empty cache) with a fresh daemon.  The daemon's
# open /dev/snapblk-fetch pins the module, so it stops first.
reload() {
	stop_daemon
	rmmod snapblk 2>/dev/null
	insmod "$ko" || ktap_exit_fail_msg "cannot load $ko"
	start_daemon
}
attr() { cat "/sys/block/$DEV/snapblk/$1"; }
# map NAME MANIFEST [ARGS]: create, set DEV to snapblkN
map() {
	local node
	node=$("$bin/snapblk" create "$1" "$2" --key-file "$W/key" "${@:3}") || return 1
	DEV=${node#/dev/}
	[ -b "/dev/$DEV" ]
}
# chunk_range N: dd arguments reading chunk N
chunk_dd() { echo "bs=$CS skip=$1 count=1 iflag=direct"; }

modprobe ext4 2>/dev/null
mkdir -p "$W/src" "$W/store" "$W/mnt"
for d in email json asyncio http unittest; do
	cp -a "/usr/lib/python3.11/$d" "$W/src/"
done
head -c 3M /dev/urandom > "$W/src/random.bin"
CS=65536
# A 32 MiB file system (the tree needs 18): the tests below read the whole
# device several times, run fio over half of it and read it in a storm of
# four; the builder's own size class would be 1 GiB of mostly ZERO chunks.
"$bin/snapblk-build" keygen -o "$W/key" || ktap_exit_fail_msg "keygen"
"$bin/snapblk-build" create --from-dir "$W/src" --store "$W/store" \
	--key-file "$W/key" --chunk-size $CS --fs-size 32M \
	--image-out "$W/image" -o "$W/m" --quiet ||
	ktap_exit_fail_msg "snapblk-build create"
"$bin/snapblk-build" inspect "$W/m" --key-file "$W/key" --json --chunks > "$W/inspect.json" ||
	ktap_exit_fail_msg "snapblk-build inspect"
SIZE=$(stat -c %s "$W/image")
NCHUNKS=$(( (SIZE + CS - 1) / CS ))
# Chunk indexes that are not ZERO, and their store files.
python3 - "$W/inspect.json" > "$W/chunks" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for c in d["chunk_table"]:
    if not c["zero"]:
        print(c["index"], c["address"])
PY
NDATA=$(wc -l < "$W/chunks")
store_file() { local a; a=$(awk -v i="$1" '$1 == i { print $2 }' "$W/chunks"); echo "$W/store/${a:0:2}/$a"; }

reload

# 1-4: map, size, full read, counters
t "create maps the image as a block device" \
	'map img "$W/m"'
t "device size is the image size" \
	'[ "$(blockdev --getsize64 /dev/$DEV)" = "$(( (SIZE + 4095) / 4096 * 4096 ))" ]'
cmp -n "$SIZE" "/dev/$DEV" "$W/image" 2>"$W/cmp.err"; rc=$?
t "the whole device reads back the image byte for byte" \
	'[ $rc = 0 ]'
t "sysfs counts chunks and fetched bytes ($NDATA of $NCHUNKS chunks fetched)" \
	'[ "$(attr chunks)" = "$NCHUNKS" ] &&
	 [ "$(attr bytes_fetched)" = "$((NDATA * CS))" ] &&
	 [ "$(attr fetch_errors)" = 0 ] && [ "$(attr resident_chunks)" = "$NDATA" ]'

# 5: reads served from memory
hits0=$(attr cache_hits)
cat "/dev/$DEV" > /dev/null
t "a second read fetches nothing and hits the cache" \
	'[ "$(attr bytes_fetched)" = "$((NDATA * CS))" ] && [ "$(attr cache_hits)" -gt "$hits0" ]'

# 6: file system check
e2fsck -fn "/dev/$DEV" > "$W/fsck.log" 2>&1; rc=$?
t "e2fsck -fn finds the file system clean" \
	'[ $rc = 0 ]'

# 7: every file
mount -t ext4 -o ro "/dev/$DEV" "$W/mnt"
(cd "$W/src" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > "$W/src.sum"
(cd "$W/mnt" && sha256sum -c --quiet "$W/src.sum") > "$W/files.log" 2>&1; rc=$?
t "every file of the mounted image matches its source ($(wc -l < "$W/src.sum") files)" \
	'[ $rc = 0 ]'

# 8-9: busy device
out=$("$bin/snapblk" remove img 2>&1); rc=$?
t "remove while mounted is refused as busy" \
	'[ $rc = 1 ] && [[ "$out" == *"in use"* || "$out" == *busy* ]]'
umount "$W/mnt"
stop_daemon		# only the device pins the module now
rmmod snapblk 2>/dev/null
t "rmmod is refused while a device exists" \
	'[ -d /sys/module/snapblk ]'
start_daemon
t "remove after unmount succeeds" \
	'"$bin/snapblk" remove img'
t "the device node is gone after remove" \
	'[ ! -b "/dev/$DEV" ]'

# Memory: the cache gives chunks back under memory pressure, and stays
# within cache_mb.
reload
map mem "$W/m"
cat "/dev/$DEV" > /dev/null
r0=$(attr resident_chunks)
echo 2 > /proc/sys/vm/drop_caches
r1=$(attr resident_chunks)
t "memory pressure (drop_caches) empties the chunk cache ($r0 -> $r1 chunks)" \
	'[ "$r0" = "$NDATA" ] && [ "$r1" = 0 ]'
echo 1 > /sys/module/snapblk/parameters/cache_mb
cat "/dev/$DEV" > /dev/null
cmp -n "$SIZE" "/dev/$DEV" "$W/image"; crc=$?
r2=$(attr resident_chunks)
echo 256 > /sys/module/snapblk/parameters/cache_mb
t "with cache_mb=1 at most 1 MiB stays resident ($r2 chunks) and reads stay correct" \
	'[ $((r2 * CS)) -le $((1 << 20)) ] && [ $crc = 0 ] &&
	 [ "$(attr bytes_fetched)" -gt "$((2 * NDATA * CS))" ]'
"$bin/snapblk" remove mem

# fio: random and sequential reads with several jobs in flight, then the
# device compared with a loop device of the same image.
reload
map fio "$W/m"
modprobe loop
loopdev=$(losetup -f --show -r "$W/image")
fio --name=rand --filename="/dev/$DEV" --rw=randread --bs=4k --direct=1 \
	--ioengine=libaio --iodepth=16 --numjobs=4 --size="$((NCHUNKS * CS / 2))" \
	--group_reporting --output="$W/fio-rand.log" &&
fio --name=seq --filename="/dev/$DEV" --rw=read --bs=256k --direct=1 \
	--ioengine=libaio --iodepth=4 --numjobs=2 --group_reporting \
	--output="$W/fio-seq.log"
rc=$?
cmp -n "$SIZE" "/dev/$DEV" "$loopdev"; crc=$?
losetup -d "$loopdev"
t "fio random and sequential reads succeed; the device equals a loop device of the image" \
	'[ $rc = 0 ] && [ $crc = 0 ] && ! grep -q "err= *[1-9]" "$W/fio-rand.log" "$W/fio-seq.log"'
"$bin/snapblk" remove fio

# 12: exactly one fetch for 16 concurrent readers of one chunk
reload
map once "$W/m"
k=$(awk 'NR == 3 { print $1 }' "$W/chunks")
kill -STOP "$DPID"
for i in $(seq 16); do
	dd if="/dev/$DEV" of="$W/r.$i" $(chunk_dd "$k") status=none &
done
for i in $(seq 50); do [ "$(attr inflight)" = 16 ] && break; sleep 0.2; done
inflight=$(attr inflight)
kill -CONT "$DPID"
wait_readers() { local p; for p in $(jobs -p); do [ "$p" = "$DPID" ] || wait "$p"; done; }
wait_readers
dd if="$W/image" of="$W/r.ref" $(chunk_dd "$k" | sed 's/iflag=direct//') status=none
same=1
for i in $(seq 16); do cmp -s "$W/r.$i" "$W/r.ref" || same=0; done
t "16 concurrent readers of a chunk: one fetch (waiting $inflight), all correct" \
	'[ "$inflight" = 16 ] && [ "$(attr bytes_fetched)" = $CS ] && [ $same = 1 ]'
"$bin/snapblk" remove once

# 13-16: bad chunks fail only their own reads
reload
map bad "$W/m"
a=$(awk 'NR == 4 { print $1 }' "$W/chunks")	# corrupted
b=$(awk 'NR == 5 { print $1 }' "$W/chunks")	# truncated
c=$(awk 'NR == 6 { print $1 }' "$W/chunks")	# swapped
g=$(awk 'NR == 7 { print $1 }' "$W/chunks")	# left alone
for x in $a $b $c; do cp "$(store_file "$x")" "$W/good.$x"; done
python3 - "$(store_file "$a")" <<'PY'
import sys
f = open(sys.argv[1], "r+b"); f.seek(1000); b = f.read(1); f.seek(1000)
f.write(bytes([b[0] ^ 1])); f.close()
PY
truncate -s $((CS / 2)) "$(store_file "$b")"
cp "$W/good.$a" "$(store_file "$c")"
"$bin/snapblk" events --count 3 > "$W/events" 2>&1 &
EPID=$!
sleep 2	# let it join the events group
eio=0
for x in $a $b $c; do
	err=$(dd if="/dev/$DEV" of=/dev/null $(chunk_dd "$x") 2>&1) && eio=1
	[[ "$err" == *"Input/output error"* ]] || eio=1
done
t "corrupted, truncated and swapped chunks read as EIO" \
	'[ $eio = 0 ]'
dd if="/dev/$DEV" of="$W/g.dev" $(chunk_dd "$g") status=none
dd if="$W/image" of="$W/g.img" bs=$CS skip="$g" count=1 status=none
t "other chunks still read correctly" \
	'cmp -s "$W/g.dev" "$W/g.img"'
wait "$EPID"
t "each bad chunk raised a chunk error event ($(grep -c . "$W/events") events)" \
	'[ "$(grep -ci error "$W/events")" -ge 3 ] && [ "$(attr fetch_errors)" -ge 3 ]'
for x in $a $b $c; do cp "$W/good.$x" "$(store_file "$x")"; done
ok=1
for x in $a $b $c; do
	dd if="/dev/$DEV" of="$W/x.dev" $(chunk_dd "$x") status=none || ok=0
	dd if="$W/image" of="$W/x.img" bs=$CS skip="$x" count=1 status=none
	cmp -s "$W/x.dev" "$W/x.img" || ok=0
done
t "a bad chunk is fetched again once the store is repaired" \
	'[ $ok = 1 ]'
"$bin/snapblk" remove bad

# 17: daemon killed in the middle of a read storm
reload
map storm "$W/m"
for i in 0 1 2 3; do
	dd if="/dev/$DEV" of="$W/storm.$i" bs=$CS iflag=direct status=none &
done
sleep 1
kill -9 "$DPID"; wait "$DPID" 2>/dev/null
sleep 0.5
start_daemon
wait_readers
ok=1
for i in 0 1 2 3; do cmp -s -n "$SIZE" "$W/storm.$i" "$W/image" || ok=0; done
t "snapblkd killed with SIGKILL mid-storm and restarted: every read correct" \
	'[ $ok = 1 ] && [ "$(attr fetch_errors)" = 0 ]'
"$bin/snapblk" remove storm

# 18: no daemon: EIO after the timeout, not a hang
reload
stop_daemon
map nodaemon "$W/m" --fetch-timeout 2000
k=$(awk 'NR == 2 { print $1 }' "$W/chunks")
start=$(date +%s)
timeout 60 dd if="/dev/$DEV" of=/dev/null $(chunk_dd "$k") 2>"$W/nd.err"
rc=$?
el=$(( $(date +%s) - start ))
t "without a daemon a read fails with EIO after fetch_timeout_ms (${el}s)" \
	'[ $rc = 1 ] && grep -q "Input/output error" "$W/nd.err" && [ $el -ge 1 ] && [ $el -lt 30 ]'
"$bin/snapblk" remove nodaemon

# 19: cross-key isolation.  A manifest that names a cached chunk's address
# with another key must not read the cached plaintext: it fetches and
# decrypts the ciphertext with its own (wrong) key.
reload
k=$(awk 'NR == 8 { print $1 }' "$W/chunks")
map real "$W/m"
dd if="/dev/$DEV" of="$W/iso.real" $(chunk_dd "$k") status=none
python3 - "$top/user/tests/snapblk-build" "$W/key" "$W/m" "$W/forged" "$k" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import build_reference as r
key = r.read_key(sys.argv[2])
size, csize, entries, iid, sid = r.unseal(key, open(sys.argv[3], "rb").read())
k = int(sys.argv[5])
e = bytearray(entries[k])
e[32] ^= 1				# first byte of the chunk key
entries[k] = bytes(e)
open(sys.argv[4], "wb").write(r.seal(key, size, csize, entries, sid)[0])
PY
map forged "$W/forged"
dd if="/dev/$DEV" of="$W/iso.forged" $(chunk_dd "$k") status=none
dd if="$W/image" of="$W/iso.img" bs=$CS skip="$k" count=1 status=none
t "a manifest naming a cached address with another key never gets its plaintext" \
	'cmp -s "$W/iso.real" "$W/iso.img" && ! cmp -s "$W/iso.forged" "$W/iso.img" &&
	 [ "$(attr bytes_fetched)" = $CS ]'
"$bin/snapblk" remove forged
"$bin/snapblk" remove real

# 20-21: create/remove cycles, name uniqueness
map dup "$W/m"
out=$("$bin/snapblk" create dup "$W/m" --key-file "$W/key" 2>&1); rc=$?
t "a second device with the same name is refused" \
	'[ $rc = 1 ] && [[ "$out" == *exist* ]]'
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$bin/snapblk" remove dup 2>&1); rc=$?
t "an unprivileged remove is refused and told to run as root" \
	'[ $rc = 1 ] && [[ "$out" == *root* ]] && [ -b "/dev/$DEV" ]'
"$bin/snapblk" remove dup
ok=1
for i in $(seq 50); do
	map "cyc$i" "$W/m" && "$bin/snapblk" remove "cyc$i" || { ok=0; break; }
done
stop_daemon
t "50 create/remove cycles, then the module unloads" \
	'[ $ok = 1 ] && rmmod snapblk'
ktap_finished
