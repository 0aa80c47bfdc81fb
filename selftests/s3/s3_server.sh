#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# scripts/s3-server in the test VM: a one-node Ceph cluster (mon, memstore
# OSD, no mgr) with radosgw on 127.0.0.1, the S3 server the store tests
# run against.  Asserts what those tests rely on: bring-up succeeds within
# a bound and writes DIR/env and DIR/*.pid; nothing listens beyond
# 127.0.0.1; over S3 (curl --aws-sigv4) a bucket is created, a 512 KiB
# object PUT comes back byte for byte, a Range GET returns exactly its
# range, a wrong secret is refused (403 SignatureDoesNotMatch) and a
# missing key gives 404 NoSuchKey; the daemons fit in a test VM's memory;
# down leaves no Ceph process running, and neither does a bring-up that
# runs out of time.  Skips only when the Ceph packages
# are not installed.
source "${KTAP_HELPERS:?run through selftests/run_tests}"

top=$(cd "$(dirname "$0")/../.." && pwd)
srv=$top/scripts/s3-server
W=$(mktemp -d /tmp/s3-server.XXXXXX)
S=$W/s3			# the server's directory
PORT=17480		# not the defaults: --port and --mon-port are used
MON_PORT=13300
BOUND=360		# s: bring-up under emulation (natively: seconds)
RSS_BOUND=512		# MiB: the three daemons, with the object stored
OBJ_BYTES=$((512 * 1024))
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

cleanup() {
	local d
	for d in "$W/short" "$S"; do
		[ -d "$d" ] && "$srv" down "$d" --stop-timeout 2 >/dev/null 2>&1
	done
	rm -rf "$W"
}
trap cleanup EXIT

# t DESC EXPR: one result, passed when the shell expression EXPR is true.
t() { if eval "$2"; then ktap_test_pass "$1"; else ktap_test_fail "$1"; fi; }
# finish: the server's logs as comments if something failed, and the end.
finish() {
	local f
	if [ "$KTAP_CNT_FAIL" != 0 ]; then
		for f in "$S"/log/*.out "$S"/log/radosgw.log; do
			[ -s "$f" ] && tail -n 15 "$f" | sed "s|^|# ${f##*/}: |"
		done
	fi
	ktap_print_msg "s3_server.sh took $(( ($(now_ms) - START_MS) / 1000 )) s"
	ktap_finished
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# s3 SECRET METHOD PATH [CURL-ARGS]: an S3 request signed with
# AWS_ACCESS_KEY_ID and SECRET; the body goes to $W/body, the response
# headers to $W/headers, the HTTP status to stdout.  Without a
# x-amz-content-sha256 in CURL-ARGS, the empty body's.
s3() {
	local secret=$1 method=(-X "$2") path=$3 hdr=()
	shift 3
	[ "${method[1]}" != HEAD ] || method=(--head)
	[[ " $* " == *" x-amz-content-sha256: "* ]] ||
		hdr=(-H "x-amz-content-sha256: $EMPTY_SHA256")
	curl -sS --max-time 120 -o "$W/body" -D "$W/headers" -w '%{http_code}' \
		--aws-sigv4 "aws:amz:$AWS_REGION:s3" \
		--user "$AWS_ACCESS_KEY_ID:$secret" "${hdr[@]}" \
		"${method[@]}" "$S3_ENDPOINT$path" "$@"
}
# pid_is PIDFILE NAME: the PID in PIDFILE runs the program NAME
pid_is() {
	local pid
	pid=$(cat "$1" 2>/dev/null) || return 1
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] &&
		[ "$(awk '{ print $3 }' "/proc/$pid/stat")" != Z ]
}
# ceph_procs: a line for every live process of Ceph's or that names $W
# (scripts/s3-server's tools among them).  Shell builtins only: each
# process started costs a few hundred milliseconds under emulation.
ceph_procs() {
	local d comm st args cmd
	for d in /proc/[0-9]*; do
		read -r comm 2>/dev/null <"$d/comm" || continue
		read -r st 2>/dev/null <"$d/stat" || continue
		st=${st##*) }
		[ "${st%% *}" != Z ] || continue
		mapfile -d '' -t args 2>/dev/null <"$d/cmdline" || continue
		cmd="${args[*]}"
		case $comm in
		ceph-* | radosgw* | rados) ;;
		*) [[ $cmd == *"$W/"* ]] || continue ;;
		esac
		echo "${d#/proc/} $comm: $cmd"
	done
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$(cat "$1")/status" 2>/dev/null; }

ktap_print_header
START_MS=$(now_ms)
# The one reason to skip: Ceph (or curl) is not installed.
missing=$(dpkg-query -W -f '${db:Status-Status} ${Package}\n' \
	ceph-mon ceph-osd radosgw python3-rados curl 2>&1 |
	awk '$1 != "installed" { printf " %s", $NF }')
if [ -n "$missing" ]; then
	ktap_skip_all "not installed:$missing (Debian: apt-get install$missing)"
	exit "$KSFT_SKIP"
fi
ktap_set_plan 13

# --- a bring-up that fails: out of time while the first tools run ------
"$srv" up "$W/short" --port $PORT --mon-port $MON_PORT --timeout 1 \
	>"$W/short.out" 2>&1
short_rc=$?
sed 's/^/# short: /' "$W/short.out" | grep -v '^# short: [0-9]\{4\}-' | head -n 8
ceph_procs >"$W/left"
sed 's/^/# left running: /' "$W/left"
t "up that runs out of time fails, says why with a log tail, and leaves no process and no env" \
	'[ $short_rc = 1 ] && grep -q "^s3-server: up: timed out after 1 s" "$W/short.out" &&
	 grep -q "^--- .*$W/short/log/" "$W/short.out" &&
	 [ ! -s "$W/left" ] && [ ! -e "$W/short/env" ]'

# --- bring-up ---------------------------------------------------------
t0=$(now_ms)
"$srv" up "$S" --port $PORT --mon-port $MON_PORT --bucket premade \
	--timeout $BOUND >"$W/up.out" 2>&1
up_rc=$?
up_ms=$(( $(now_ms) - t0 ))
sed 's/^/# /' "$W/up.out"
ktap_print_msg "bring-up took $((up_ms / 1000)).$((up_ms % 1000 / 100)) s (exit $up_rc)"
t "s3-server up succeeds within $BOUND s" \
	'[ $up_rc = 0 ] && [ $up_ms -lt $((BOUND * 1000)) ]'
if [ $up_rc != 0 ]; then
	ktap_exit_fail_msg "no server: the other tests need it"
fi

# shellcheck source=/dev/null
. "$S/env"
t "DIR/env names the endpoint, a 20/40-character key pair and a region; the PID files name ceph-mon, ceph-osd and radosgw" \
	'[ "$S3_ENDPOINT" = http://127.0.0.1:$PORT ] &&
	 [ ${#AWS_ACCESS_KEY_ID} = 20 ] && [ ${#AWS_SECRET_ACCESS_KEY} = 40 ] &&
	 [ -n "$AWS_REGION" ] && [ "$S3_BUCKET" = premade ] &&
	 pid_is "$S/mon.pid" ceph-mon && pid_is "$S/osd.pid" ceph-osd &&
	 pid_is "$S/radosgw.pid" radosgw'

# Every socket the daemons listen on is on 127.0.0.1, radosgw's on PORT.
pids="$(cat "$S/mon.pid") $(cat "$S/osd.pid") $(cat "$S/radosgw.pid")"
ss -Hltnp >"$W/listen" 2>&1
grep -E "pid=($(echo "$pids" | tr ' ' '|')),"  "$W/listen" >"$W/ours"
sed 's/^/# listening: /' "$W/ours"
t "the daemons listen on 127.0.0.1 only: radosgw on $PORT, the mon on $MON_PORT" \
	'[ -s "$W/ours" ] &&
	 ! awk "{ print \$4 }" "$W/ours" | grep -qv "^127\.0\.0\.1:" &&
	 grep -q "127.0.0.1:$PORT .*\"radosgw\"" "$W/ours" &&
	 grep -q "127.0.0.1:$MON_PORT .*\"ceph-mon\"" "$W/ours"'

# --- S3 -----------------------------------------------------------------
code=$(s3 "$AWS_SECRET_ACCESS_KEY" HEAD /premade)
t "the bucket made by --bucket exists (HEAD: $code)" '[ "$code" = 200 ]'

code=$(s3 "$AWS_SECRET_ACCESS_KEY" PUT /chunks)
t "a bucket is created (PUT: $code)" '[ "$code" = 200 ]'

head -c $OBJ_BYTES /dev/urandom >"$W/obj"
obj_sha=$(sha256sum "$W/obj" | cut -d' ' -f1)
md5=$(md5sum "$W/obj" | cut -d' ' -f1)
code=$(s3 "$AWS_SECRET_ACCESS_KEY" PUT /chunks/ab/abcdef -T "$W/obj" \
	-H "x-amz-content-sha256: $obj_sha")
etag=$(tr -d '\r"' <"$W/headers" | awk 'tolower($1) == "etag:" { print $2 }')
t "a 512 KiB object is stored (PUT: $code, ETag the body's MD5)" \
	'[ "$code" = 200 ] && [ "$etag" = "$md5" ]'

code=$(s3 "$AWS_SECRET_ACCESS_KEY" GET /chunks/ab/abcdef)
t "GET returns the object byte for byte ($code, $(stat -c %s "$W/body" 2>/dev/null) bytes)" \
	'[ "$code" = 200 ] && cmp -s "$W/obj" "$W/body"'

first=100000 last=365535	# an odd range across the middle
code=$(s3 "$AWS_SECRET_ACCESS_KEY" GET /chunks/ab/abcdef \
	-H "Range: bytes=$first-$last")
tail -c +$((first + 1)) "$W/obj" | head -c $((last - first + 1)) >"$W/range"
t "a Range GET returns 206 and exactly bytes $first-$last ($code)" \
	'[ "$code" = 206 ] && cmp -s "$W/range" "$W/body" &&
	 tr -d "\r" <"$W/headers" |
		grep -qi "^content-range: bytes $first-$last/$OBJ_BYTES\$"'

wrong=$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')
code=$(s3 "$wrong" GET /chunks/ab/abcdef)
t "a GET signed with a wrong secret is refused: 403 SignatureDoesNotMatch ($code)" \
	'[ "$code" = 403 ] && grep -q "<Code>SignatureDoesNotMatch</Code>" "$W/body"'

code=$(s3 "$AWS_SECRET_ACCESS_KEY" GET /chunks/ab/no-such-chunk)
t "a missing key gives 404 NoSuchKey ($code)" \
	'[ "$code" = 404 ] && grep -q "<Code>NoSuchKey</Code>" "$W/body"'

mon_kib=$(rss_kib "$S/mon.pid")
osd_kib=$(rss_kib "$S/osd.pid")
rgw_kib=$(rss_kib "$S/radosgw.pid")
total_mib=$(( (${mon_kib:-0} + ${osd_kib:-0} + ${rgw_kib:-0}) / 1024 ))
ktap_print_msg "RSS: ceph-mon $((${mon_kib:-0} / 1024)) MiB, ceph-osd $((${osd_kib:-0} / 1024)) MiB, radosgw $((${rgw_kib:-0} / 1024)) MiB: $total_mib MiB"
t "the daemons take less than $RSS_BOUND MiB ($total_mib MiB)" \
	'[ -n "$mon_kib" ] && [ -n "$osd_kib" ] && [ -n "$rgw_kib" ] &&
	 [ $total_mib -lt $RSS_BOUND ]'

# --- down ---------------------------------------------------------------
t0=$(now_ms)
"$srv" down "$S" >"$W/down.out" 2>&1
down_rc=$?
down_ms=$(( $(now_ms) - t0 ))
sed 's/^/# /' "$W/down.out"
ceph_procs >"$W/left"
sed 's/^/# left running: /' "$W/left"
ktap_print_msg "down took $((down_ms / 1000)).$((down_ms % 1000 / 100)) s"
t "down stops every daemon, leaves no Ceph process running and keeps DIR" \
	'[ $down_rc = 0 ] && [ ! -s "$W/left" ] && [ -s "$S/log/mon.log" ]'
finish
