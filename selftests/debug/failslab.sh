#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Allocation failures injected into snapblk.ko on the check-debug kernel:
# failslab and fail_page_alloc, restricted with their stack-trace filter
# (require-start/end) to allocations made with one part of the module on
# the stack, in the three paths that allocate on demand:
#   - device create (the whole module: the netlink CREATE, the device, its
#     bitmap, the tag set, the disk): every allocation in turn is failed,
#     one per attempt, through /proc/<tid>/fail-nth; each attempt makes a
#     device or fails with an error and leaves nothing behind;
#   - fetch completion (fetch_write_iter(), the daemon's answer: chunk
#     pages, the scatterlist, the decryption request): random failures;
#   - cache insertion (snapblk_queue_rq(): the resident record, the cache
#     entry): random failures;
# reads meanwhile return the image's bytes or EIO, never other bytes, and
# once injection stops every byte reads back right.  Afterwards every
# device made is removed and the module unloads; the leak check
# (selftests/debug/leak-check.sh, run after this) must find nothing.
#
# Only for the debug kernel (scripts/check-debug runs it under run-vm
# --allow-fault-injection, which lets the "FAULT_INJECTION: forcing a
# failure" lines through): it lives in selftests/debug/ so that
# selftests/run_tests does not pick it up for the other kernels.
source "${KTAP_HELPERS:?run through selftests/run_tests}"

top=$(cd "$(dirname "$0")/../.." && pwd)
bin=$top/build/bin
ko=${SNAPBLK_KO:-$top/build/$(uname -r)/snapblk.ko}
dbg=/sys/kernel/debug
W=$(mktemp -d /tmp/failslab.XXXXXX)
DPID=
CS=65536
NCHUNKS=16
# The functions whose allocations the fetch and cache passes fail (with
# everything they call); rename here when kmod/ renames them.
FETCH_FN=fetch_write_iter
CACHE_FN=snapblk_queue_rq
# The create pass stops when this many attempts in a row succeed with no
# failure injected (the Nth allocation lies past the last one), or after
# CREATE_MAX attempts.
CREATE_MAX=${FAILSLAB_CREATE_MAX:-600}
CREATE_DONE=3

ktap_print_header

if [ ! -d $dbg/failslab ] || [ ! -d $dbg/fail_page_alloc ] ||
   [ ! -e /proc/self/fail-nth ]; then
	ktap_set_plan 1
	ktap_test_skip "this kernel has no failslab, fail_page_alloc or fail-nth (the check-debug kernel has)"
	ktap_finished
	exit 4
fi

fi_off() {
	local a
	for a in failslab fail_page_alloc; do
		echo 0 > $dbg/$a/probability
	done
}
cleanup() {
	fi_off 2>/dev/null
	[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
	local n
	for n in $(devices 2>/dev/null); do
		"$bin/snapblk" remove "$n" 2>/dev/null
	done
	rmmod snapblk 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

ktap_set_plan 11

# t DESC EXPR: one result, passed when the shell expression EXPR is true.
t() { if eval "$2"; then ktap_test_pass "$1"; else ktap_test_fail "$1"; fi; }

start_daemon() {
	"$bin/snapblkd" --store "$W/store" --jobs 2 >>"$W/snapblkd.log" 2>&1 &
	DPID=$!
	sleep 0.5
}
stop_daemon() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	DPID=
}
# snapblkd stops when the kernel refuses an answer with an error it does
# not expect (ENOMEM from a failed fetch completion): start it again, and
# count it.
restarts=0
daemon_alive() {
	if ! kill -0 "$DPID" 2>/dev/null; then
		wait "$DPID" 2>/dev/null
		restarts=$((restarts + 1))
		start_daemon
	fi
}
devices() {
	"$bin/snapblk" ls --json |
		python3 -c 'import json,sys; [print(d["name"]) for d in json.load(sys.stdin)]'
}
# injected: how many "forcing a failure" lines the kernel logged since
# the mark (verbose=1: one line, and a "name ..." line, per failure; the
# ratelimit is off by default).  A failed allocation that asked for no
# warning (__GFP_NOWARN) is not logged.
mark() { dmesg | wc -l > "$W/mark"; }
since_mark() { dmesg | tail -n +"$(( $(cat "$W/mark") + 1 ))"; }
injected() { since_mark | grep -c 'FAULT_INJECTION: forcing a failure'; }
# sites: where the failures since the mark were injected, one line each,
# "MODULE_FUNCTION -> CALLEE": from each failure's stack dump (verbose=2)
# the first frame in snapblk and the one it called (the allocator or the
# kernel function that allocated).  Unreliable frames ("? ...") are
# skipped.
sites() {
	since_mark | sed 's/^\[[^]]*\] *//' | awk '
	/FAULT_INJECTION: forcing a failure/ { s = 1; next }
	s == 1 && /^<TASK>/ { s = 2; prev = "?"; next }
	s == 2 && /^<\/TASK>/ { print "(no snapblk frame) -> " prev; s = 0; next }
	s == 2 && /^\?/ { next }
	s == 2 {
		f = $1; sub(/\+0x.*/, "", f)
		if ($0 ~ /\[snapblk\]/) { print f " -> " prev; s = 0 } else prev = f
	}'
}

# Text symbols of the module, "ADDRESS NAME", sorted.  Addresses are 16
# hex digits: sorted as text, they are sorted as numbers.
syms=$W/syms
# range [FUNC]: "START END" in hex: FUNC from its address to the next
# symbol's; no FUNC: the whole module text (the only module in this
# kernel, everything else is built in), to the end of the page holding
# the last function.  Bash arithmetic is signed 64-bit: kernel addresses
# come out negative, but printf %x prints them right, and the debugfs
# files take hex.
range() {
	local a b
	if [ $# = 0 ]; then
		a=$(head -n 1 "$syms" | cut -d' ' -f1)
		b=$(tail -n 1 "$syms" | cut -d' ' -f1)
		printf '0x%x 0x%x\n' $((16#$a)) $(( (16#$b | 4095) + 1 ))
		return
	fi
	read -r a b < <(awk -v f="$1" 'hit { print a, $1; exit }
		$2 == f { a = $1; hit = 1 }' "$syms")
	[ -n "$a" ] || return 1
	printf '0x%x 0x%x\n' $((16#$a)) $((16#$b))
}
# fi_on START END PROBABILITY: fail allocations made with [START, END) on
# the stack, PROBABILITY percent of them (0: only through fail-nth).
fi_on() {
	local a
	for a in failslab fail_page_alloc; do
		echo "$1" > $dbg/$a/require-start
		echo "$2" > $dbg/$a/require-end
		echo "$3" > $dbg/$a/probability
	done
}

# A small image of random bytes (every chunk a data chunk) and its store.
head -c $((NCHUNKS * CS)) /dev/urandom > "$W/image"
mkdir "$W/store"
"$bin/snapblk-build" keygen -o "$W/key" >"$W/build.log" 2>&1 &&
"$bin/snapblk-build" create "$W/image" --store "$W/store" \
	--key-file "$W/key" --chunk-size $CS -o "$W/m" >>"$W/build.log" 2>&1 ||
	ktap_exit_fail_msg "snapblk-build: $(cat "$W/build.log")"
for i in $(seq 0 $((NCHUNKS - 1))); do
	dd if="$W/image" of="$W/ref.$i" bs=$CS skip="$i" count=1 status=none
done

insmod "$ko" || ktap_exit_fail_msg "cannot load $ko"
start_daemon

awk '$4 == "[snapblk]" && ($2 == "t" || $2 == "T") { print $1, $3 }' \
	/proc/kallsyms | sort > "$syms"
[ -s "$syms" ] || ktap_exit_fail_msg "no snapblk text symbols in /proc/kallsyms"
read -r mod_start mod_end < <(range)
echo "# snapblk text: $mod_start-$mod_end"
read -r fetch_start fetch_end < <(range $FETCH_FN) ||
	ktap_exit_fail_msg "no function $FETCH_FN in snapblk.ko: update FETCH_FN in $0"
read -r cache_start cache_end < <(range $CACHE_FN) ||
	ktap_exit_fail_msg "no function $CACHE_FN in snapblk.ko: update CACHE_FN in $0"
echo "# $FETCH_FN: $fetch_start-$fetch_end, $CACHE_FN: $cache_start-$cache_end"

# Sleeping (GFP_KERNEL) allocations are the ones that matter here, so
# they are not exempt, nor are any caches or orders; every failure is
# logged with a stack dump (verbose=2), to tell where it was injected.
for a in failslab fail_page_alloc; do
	d=$dbg/$a
	echo 0 > $d/probability
	echo 1 > $d/interval
	echo -1 > $d/times
	echo 0 > $d/space
	echo 2 > $d/verbose
	echo N > $d/task-filter
	echo N > $d/ignore-gfp-wait
	echo 32 > $d/stacktrace-depth
done
echo N > $dbg/failslab/cache-filter
echo N > $dbg/fail_page_alloc/ignore-gfp-highmem
echo 0 > $dbg/fail_page_alloc/min-order

# ---- 1-4: create, failing its Nth allocation for N = 1, 2, ...
# fail-nth is per task and survives exec, so the shell that writes it
# execs the CLI, and the netlink CREATE runs in that task; only the calls
# the filter lets through (the module on the stack) count towards N.
fi_on "$mod_start" "$mod_end" 0
made=() quiet_ok=0 fails=0 tolerated=0 unclean=0 left=0 n=0 ninj=0
while [ $n -lt "$CREATE_MAX" ] && [ $quiet_ok -lt $CREATE_DONE ]; do
	n=$((n + 1))
	mark
	out=$(bash -c 'echo "$1" > /proc/self/fail-nth && shift && exec "$@"' \
		fn "$n" "$bin/snapblk" create "c$n" "$W/m" --key-file "$W/key" 2>&1)
	rc=$?
	k=$(injected)
	ninj=$((ninj + k))
	sites >> "$W/sites.create"
	if [ $rc = 0 ] && [ -b "$out" ]; then
		made+=("c$n")
		if [ "$k" = 0 ]; then
			quiet_ok=$((quiet_ok + 1))
		else
			tolerated=$((tolerated + 1)) quiet_ok=0
		fi
		continue
	fi
	quiet_ok=0 fails=$((fails + 1))
	# A failure is clean when the CLI says why (exit 1, a message) and
	# no device of that name is left.
	if [ $rc != 1 ] || [ -z "$out" ]; then
		unclean=$((unclean + 1))
		echo "# attempt $n: exit $rc: $out"
	fi
	if devices | grep -qx "c$n"; then
		left=$((left + 1))
		echo "# attempt $n left device c$n behind"
	fi
	echo "$out" | sed "s/c$n/cN/" >> "$W/create-errors"
done
echo "# create: $n attempts, $fails failed, $tolerated succeeded despite a failed allocation, ${#made[@]} made a device; $ninj failures logged"
if [ -s "$W/create-errors" ]; then
	echo "# the errors, by count:"
	sort "$W/create-errors" | uniq -c | sort -rn | sed 's/^/#   /'
fi
echo "# where the failures were injected, by count:"
sort "$W/sites.create" | uniq -c | sort -rn | sed 's/^/#   /'
t "create with its Nth allocation failed, N = 1..$n ($fails failed, $ninj failures logged), ends with $CREATE_DONE attempts that failed nothing" \
	'[ $quiet_ok = $CREATE_DONE ] && [ $fails -gt 0 ]'
t "every failed create exits 1 with an error message ($unclean did not)" \
	'[ $unclean = 0 ]'
t "no failed create leaves a device ($left did)" \
	'[ $left = 0 ]'
fi_off
rm_fail=0
for d in "${made[@]}"; do
	"$bin/snapblk" remove "$d" || rm_fail=$((rm_fail + 1))
done
t "with injection off the ${#made[@]} devices made are removed, none is left ($rm_fail failed)" \
	'[ $rm_fail = 0 ] && [ -z "$(devices)" ]'

# ---- 5-8: reads while fetch completion or cache insertion fail now and
# then.  Each round empties the chunk cache first (the shrinker, through
# drop_caches) so that every chunk is fetched again.
node=$("$bin/snapblk" create fetch "$W/m" --key-file "$W/key" --fetch-timeout 3000) ||
	ktap_exit_fail_msg "cannot create the device for the read passes"
DEV=${node#/dev/}
# read_rounds LABEL START END PROBABILITY...: one round of reading every
# chunk per PROBABILITY; adds to good, eio, wrong, hung and ninj.
read_rounds() {
	local label=$1 start=$2 end=$3 p i rc k
	shift 3
	for p in "$@"; do
		echo 2 > /proc/sys/vm/drop_caches
		mark
		fi_on "$start" "$end" "$p"
		for i in $(seq 0 $((NCHUNKS - 1))); do
			daemon_alive
			timeout 120 dd if="/dev/$DEV" of="$W/got" bs=$CS skip="$i" \
				count=1 iflag=direct status=none 2>"$W/dd.err"
			rc=$?
			if [ $rc = 0 ]; then
				if cmp -s "$W/got" "$W/ref.$i"; then
					good=$((good + 1))
				else
					wrong=$((wrong + 1))
					echo "# $label $p%, chunk $i: read succeeded with the wrong bytes"
				fi
			elif [ $rc = 124 ]; then
				hung=$((hung + 1))
				echo "# $label $p%, chunk $i: the read took over 120 s"
			elif grep -q 'Input/output error' "$W/dd.err"; then
				eio=$((eio + 1))
			else
				wrong=$((wrong + 1))
				echo "# $label $p%, chunk $i: $(cat "$W/dd.err")"
			fi
		done
		fi_off
		k=$(injected)
		ninj=$((ninj + k))
		sites >> "$W/sites.$label"
		echo "# $label at $p%: $k failures logged; so far $good reads right, $eio EIO"
	done
}
for pass in fetch cache; do
	good=0 eio=0 wrong=0 hung=0 ninj=0 restarts=0
	if [ $pass = fetch ]; then
		read_rounds fetch "$fetch_start" "$fetch_end" 20 50
		what="fetch completion ($FETCH_FN)"
	else
		read_rounds cache "$cache_start" "$cache_end" 20 50
		what="cache insertion ($CACHE_FN)"
	fi
	echo "# $what: $good reads right, $eio EIO, $wrong wrong, $hung hung; $ninj failures logged; snapblkd restarted $restarts times"
	echo "# where the failures were injected, by count:"
	sort "$W/sites.$pass" 2>/dev/null | uniq -c | sort -rn | sed 's/^/#   /'
	if [ $restarts != 0 ]; then
		echo "# the end of snapblkd's log:"
		tail -n 6 "$W/snapblkd.log" | sed 's/^/#   /'
	fi
	t "reads while $what fails ($ninj failures) return the image's bytes or EIO" \
		'[ $wrong = 0 ] && [ $hung = 0 ] && [ $ninj -gt 0 ]'
	daemon_alive
	echo 2 > /proc/sys/vm/drop_caches
	cmp -n $((NCHUNKS * CS)) "/dev/$DEV" "$W/image" 2>"$W/cmp.err"; rc=$?
	t "after the $pass failures stop the whole device reads back the image" \
		'[ $rc = 0 ]'
done

# ---- 9-11: nothing left behind
cmp -n $((NCHUNKS * CS)) "/dev/$DEV" "$W/image"; rc=$?
t "and again, from the cache" \
	'[ $rc = 0 ]'
t "the read device is removed, no device is left" \
	'"$bin/snapblk" remove fetch && [ -z "$(devices)" ]'
stop_daemon
rmmod snapblk 2>/dev/null
t "the module unloads" \
	'[ ! -d /sys/module/snapblk ]'
ktap_finished
