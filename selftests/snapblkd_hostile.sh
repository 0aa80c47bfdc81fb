#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# snapblkd against a hostile or stuck store, with the real kernel in the
# test VM.  Hostile: a FIFO, a symbolic link out of the store, a
# symlinked fan-out directory and a device node at chunk paths fail the
# reads of those chunks with EIO at once (not at the fetch timeout, not
# a hang, nothing read from outside the store) while the other chunks
# read fine.  Stuck: with the store on ext4 over a device-mapper delay
# target whose reads take a minute, a worker hangs in a chunk read;
# SIGTERM ends the daemon within its --stop-timeout all the same, and the
# read it had claimed, re-queued by the kernel, is served by the next
# daemon with the right bytes.
source "${KTAP_HELPERS:?run through selftests/run_tests}"

top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/build/bin
ko=${SNAPBLK_KO:-$top/build/$(uname -r)/snapblk.ko}
W=$(mktemp -d /tmp/snapblkd-hostile.XXXXXX)
CS=65536
STOP_TIMEOUT=2		# the daemon's --stop-timeout, seconds
DELAY_MS=60000		# reads of the slow device
FETCH_TIMEOUT=60000	# ms: a read that ends much sooner was answered
DM=sbhostile$$
export DM_DISABLE_UDEV=1	# no udev in the test VM: dmsetup makes nodes
PIDS=()			# every daemon and reader started, to stop by PID
DPID='' LOOP='' MAPPED=''

cleanup() {
	local p n
	# First the reads held by the delay target: they complete on suspend
	# (a daemon thread waiting for one could not be reaped before).
	if [ -n "$MAPPED" ]; then
		dmsetup suspend "$DM" 2>/dev/null
		dmsetup reload "$DM" --table "0 $SECTORS delay $LOOP 0 0" 2>/dev/null
		dmsetup resume "$DM" 2>/dev/null
	fi
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	if [ -n "$MAPPED" ]; then
		umount "$W/slow" 2>/dev/null
		dmsetup remove "$DM" 2>/dev/null
	fi
	[ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
	for n in hostile stuck; do "$bin/snapblk" remove "$n" 2>/dev/null; done
	rmmod snapblk 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

ktap_print_header
for tool in python3 mkfifo mknod; do
	if ! command -v "$tool" >/dev/null; then
		ktap_skip_all "no $tool in the test VM"
		exit "$KSFT_SKIP"
	fi
done
ktap_set_plan 11

# t DESC EXPR: one result, passed when the shell expression EXPR is true.
t() { if eval "$2"; then ktap_test_pass "$1"; else ktap_test_fail "$1"; fi; }
# finish: the daemons' log as comments if something failed, and the end.
finish() {
	local l
	[ "$KTAP_CNT_FAIL" = 0 ] && ktap_finished
	for l in hostile stuck next; do
		[ -e "$W/$l.log" ] && sed "s/^/# $l: /" "$W/$l.log"
	done
	dmesg | tail -n 20 | sed 's/^/# dmesg: /'
	ktap_finished
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# start_daemon LOG STORE [ARGS]: a daemon in DPID, logging to $W/LOG.log
start_daemon() {
	"$bin/snapblkd" --store "$2" --jobs 2 "${@:3}" >>"$W/$1.log" 2>&1 &
	DPID=$!
	PIDS+=("$DPID")
	sleep 0.5
}
# stop_daemon: SIGTERM, then SIGKILL if it is not gone in 30 s
stop_daemon() {
	local i
	[ -n "$DPID" ] || return 0
	kill "$DPID" 2>/dev/null
	for i in $(seq 300); do alive "$DPID" || break; sleep 0.1; done
	alive "$DPID" && kill -9 "$DPID"
	wait "$DPID" 2>/dev/null
	DPID=
}
# map NAME: the image as DEV
map() {
	local node
	node=$("$bin/snapblk" create "$1" "$W/m" --key-file "$W/key" \
		--fetch-timeout $FETCH_TIMEOUT) || return 1
	DEV=${node#/dev/}
	[ -b "/dev/$DEV" ]
}
addr_of() { awk -v i="$1" '$1 == i { print $2 }' "$W/chunks"; }
# store_file K DIR: chunk K's file in the store DIR
store_file() { local a; a=$(addr_of "$1"); echo "$2/${a:0:2}/$a"; }
# read_chunk K OUT: dd chunk K of the device to OUT; status in RC, time in MS
read_chunk() {
	local t0
	t0=$(now_ms)
	timeout 120 dd if="/dev/$DEV" of="$2" bs=$CS skip="$1" count=1 \
		iflag=direct status=none 2>"$W/dd.err"
	RC=$?
	MS=$(( $(now_ms) - t0 ))
}
image_chunk() { dd if="$W/image" of="$2" bs=$CS skip="$1" count=1 status=none; }
# alive PID: running, not a zombie (kill -0 says yes to those)
alive() {
	local s
	s=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)
	[ -n "$s" ] && [ "$s" != Z ]
}
# thread_in_d PID: one of PID's threads is in state D (waiting for a disk)
thread_in_d() {
	local s
	for s in /proc/"$1"/task/*/stat; do
		[ "$(awk '{ print $3 }' "$s" 2>/dev/null)" = D ] && return 0
	done
	return 1
}

modprobe ext4 2>/dev/null
modprobe loop 2>/dev/null
# The stuck store needs these; without them its tests are skipped.
no_slow=
for tool in dmsetup mkfs.ext4 losetup blockdev; do
	command -v "$tool" >/dev/null || no_slow="no $tool in the test VM"
done
[ -z "$no_slow" ] && ! modprobe dm-delay 2>/dev/null &&
	no_slow="no dm-delay module for $(uname -r)"
insmod "$ko" || ktap_exit_fail_msg "cannot load $ko"

mkdir -p "$W/store" "$W/outside" "$W/slow"
head -c 2M /dev/urandom >"$W/image"
"$bin/snapblk-build" keygen -o "$W/key" >/dev/null 2>&1 &&
"$bin/snapblk-build" create "$W/image" --store "$W/store" \
	--key-file "$W/key" -c 64K -o "$W/m" -q &&
"$bin/snapblk-build" inspect "$W/m" --key-file "$W/key" --chunks --json \
	>"$W/m.json" || ktap_exit_fail_msg "snapblk-build failed"
python3 - "$W/m.json" >"$W/chunks" <<'PY'
import json, sys
for c in json.load(open(sys.argv[1]))["chunk_table"]:
    if not c["zero"]:
        print(c["index"], c["address"])
PY
# Chunks whose fan-out directory no other chunk shares: f (FIFO), l
# (link out), d (linked fan-out directory), c (device node), g (good).
read -r f l d c g _ < <(awk '{ n[substr($2, 1, 2)]++; a[NR] = $0 }
	END { for (i = 1; i <= NR; i++) { split(a[i], x, " ");
		if (n[substr(x[2], 1, 2)] == 1) printf "%s ", x[1] } print "" }' \
	"$W/chunks")
[ -n "$g" ] || ktap_exit_fail_msg "not enough chunks with a fan-out directory of their own"
# One more, never read before the stuck test (the chunk cache is shared).
s=$(awk -v skip=" $f $l $d $c $g " 'index(skip, " " $1 " ") == 0 { print $1; exit }' \
	"$W/chunks")
cp -a "$W/store" "$W/good"	# untouched, for the repair and the stuck test

# ------------------------------------------------- hostile chunk paths
fa=$(addr_of "$f") la=$(addr_of "$l") da=$(addr_of "$d") ca=$(addr_of "$c")
rm "$(store_file "$f" "$W/store")"
mkfifo "$W/store/${fa:0:2}/$fa"
# The right bytes, outside the store: only where they are gives it away.
cp "$(store_file "$l" "$W/store")" "$W/outside/$la"
ln -sf "$W/outside/$la" "$W/store/${la:0:2}/$la"
mv "$W/store/${da:0:2}" "$W/outside/${da:0:2}"
ln -s "$W/outside/${da:0:2}" "$W/store/${da:0:2}"
rm "$(store_file "$c" "$W/store")"
mknod "$W/store/${ca:0:2}/$ca" c 1 3

start_daemon hostile "$W/store"
map hostile || ktap_exit_fail_msg "snapblk create failed"

# check K DESC LOGTEXT: chunk K fails with EIO long before the fetch
# timeout, and the daemon said why
check() {
	local k=$1 said=$3 how=EIO
	read_chunk "$k" "$W/x"
	[ $RC = 0 ] && how="read through"
	t "$2 ($how in ${MS} ms)" \
		'[ $RC = 1 ] && grep -q "Input/output error" "$W/dd.err" &&
		 [ $MS -lt $((FETCH_TIMEOUT / 2)) ] &&
		 grep -q "chunk $k: $W/store/.*: $said" "$W/hostile.log"'
}
check "$f" "a FIFO at a chunk path: the read fails" \
	"not a regular file (fifo)"
check "$l" "a symbolic link to a good copy outside the store: not followed" \
	"not a regular file (symbolic link)"
check "$d" "a symlinked fan-out directory: not followed" \
	"a symbolic link in the path (not followed)"
check "$c" "a character device node at a chunk path: the read fails" \
	"not a regular file (character device)"

read_chunk "$g" "$W/g.dev"
image_chunk "$g" "$W/g.img"
# The device's counters, not the kernel log (which earlier tests in the
# same VM may have wrapped): the four refused chunks are its only fetch
# errors, so none timed out.
t "the other chunks read correctly meanwhile; no fetch timed out" \
	'[ $RC = 0 ] && cmp -s "$W/g.dev" "$W/g.img" &&
	 [ "$(cat /sys/block/$DEV/snapblk/fetch_errors)" = 4 ]'

# Repaired, the bad chunks are fetched again.
rm -f "$W/store/${fa:0:2}/$fa" "$W/store/${la:0:2}/$la" \
	"$W/store/${da:0:2}" "$W/store/${ca:0:2}/$ca"
for x in "$f" "$l" "$d" "$c"; do
	a=$(addr_of "$x")
	mkdir -p "$W/store/${a:0:2}"
	cp "$(store_file "$x" "$W/good")" "$W/store/${a:0:2}/$a"
done
ok=1
for x in "$f" "$l" "$d" "$c"; do
	read_chunk "$x" "$W/x.dev"
	image_chunk "$x" "$W/x.img"
	[ $RC = 0 ] && cmp -s "$W/x.dev" "$W/x.img" || ok=0
done
t "once repaired, those chunks are fetched again and read correctly" \
	'[ $ok = 1 ]'
stop_daemon
"$bin/snapblk" remove hostile

# ------------------------------------------------- a worker stuck in I/O
if [ -n "$no_slow" ]; then
	for i in 1 2 3 4 5; do ktap_test_skip "a worker stuck in I/O: $no_slow"; done
	finish
fi
# ext4 on a delay target, reads delayed by 0 while it is filled.
truncate -s 64M "$W/slow.img"
LOOP=$(losetup -f --show "$W/slow.img") || ktap_exit_fail_msg "losetup"
SECTORS=$(blockdev --getsz "$LOOP")
dmsetup create "$DM" --table "0 $SECTORS delay $LOOP 0 0" ||
	ktap_exit_fail_msg "dmsetup create"
MAPPED=1
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 \
	"/dev/mapper/$DM" || ktap_exit_fail_msg "mkfs.ext4"
mount -o noatime "/dev/mapper/$DM" "$W/slow" || ktap_exit_fail_msg "mount"
cp -a "$W/good" "$W/slow/store"
sync
# Keep the inodes and dentries (opening a chunk reads nothing), drop the
# data: a chunk read goes to the device.
find "$W/slow/store" -type f -exec stat -c %s {} + >/dev/null
echo 1 >/proc/sys/vm/drop_caches
dmsetup suspend "$DM" &&
dmsetup reload "$DM" --table "0 $SECTORS delay $LOOP 0 $DELAY_MS $LOOP 0 0" &&
dmsetup resume "$DM" || ktap_exit_fail_msg "dmsetup reload"

start_daemon stuck "$W/slow/store" --stop-timeout $STOP_TIMEOUT
map stuck || ktap_exit_fail_msg "snapblk create failed"
dd if="/dev/$DEV" of="$W/stuck.dev" bs=$CS skip="$s" count=1 iflag=direct \
	status=none 2>"$W/stuck.err" &
RPID=$!
PIDS+=("$RPID")
for i in $(seq 300); do thread_in_d "$DPID" && break; sleep 0.1; done
t "a worker is stuck in a chunk read from the slow device" \
	'thread_in_d "$DPID"'

t0=$(now_ms)
kill -TERM "$DPID"
# A guard only: a daemon that waits for the read would take DELAY_MS.
( sleep 50 & echo $! >"$W/guard.pid"; wait $!; kill -9 "$DPID" 2>/dev/null ) &
guard=$!
wait "$DPID"
rc=$?
stop_ms=$(( $(now_ms) - t0 ))
kill "$guard" 2>/dev/null
wait "$guard" 2>/dev/null
kill "$(cat "$W/guard.pid")" 2>/dev/null
DPID=
ktap_print_msg "snapblkd exited ${stop_ms} ms after SIGTERM with a worker stuck (--stop-timeout $STOP_TIMEOUT)"
t "SIGTERM with the worker stuck: exit 0 within --stop-timeout and a margin (${stop_ms} ms)" \
	'[ $rc = 0 ] && [ $stop_ms -lt $(( (STOP_TIMEOUT + 13) * 1000 )) ]'
t "it logged the stuck worker, then its counters" \
	'grep -q "1 worker still reading from the store $STOP_TIMEOUT s after the stop" "$W/stuck.log" &&
	 grep -q "stopped: 0 fetched, 0 missing, 0 errors, 0 bytes" "$W/stuck.log"'

# The kernel re-queued the claimed request: the next daemon serves it.
still=0
alive "$RPID" && still=1
start_daemon next "$W/good"
wait "$RPID"
rrc=$?
stop_daemon
image_chunk "$s" "$W/s.img"
t "the stuck read is re-queued and served by the next daemon, byte for byte" \
	'[ $still = 1 ] && [ $rrc = 0 ] && cmp -s "$W/stuck.dev" "$W/s.img" &&
	 grep -q "stopped: 1 fetched, 0 missing, 0 errors, $CS bytes" "$W/next.log"'
t "no fetch error and no fetch timed out" \
	'[ "$(cat /sys/block/$DEV/snapblk/fetch_errors)" = 0 ]'
"$bin/snapblk" remove stuck
finish
