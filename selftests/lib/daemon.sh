# SPDX-License-Identifier: GPL-2.0
#
# daemon.sh: helpers of the selftests that drive snapblkd and one mapped
# image "img" through the real kernel (sourced; the caller sets W, the
# test's directory, bin, the tools' directory, and ko, the module, and
# has built $W/m, $W/key and $W/image, SIZE bytes).
#   t DESC EXPR        one KTAP result: passed when EXPR (eval'ed) is true
#   start_daemon ARGS  snapblkd ARGS in the background, logging to $W/d.log
#                      (emptied first); DPID is its PID
#   stop_daemon        SIGTERM it and wait
#   fresh              no daemon, no device, nothing mounted on $W/mnt, the
#                      module reloaded (an empty memory cache)
#   map [ARGS]         snapblk create img $W/m ARGS; DEV is snapblkN
#   whole_ok           the device reads back the image byte for byte
#   report             SIGUSR1: the daemon logs its counters
DPID=
DEV=

t() { if eval "$2"; then ktap_test_pass "$1"; else ktap_test_fail "$1"; fi; }

start_daemon() {
	: > "$W/d.log"
	"$bin/snapblkd" "$@" >>"$W/d.log" 2>&1 &
	DPID=$!
	sleep 0.5
}

stop_daemon() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	DPID=
}

fresh() {
	stop_daemon
	umount "$W/mnt" 2>/dev/null
	[ -n "$DEV" ] && "$bin/snapblk" remove img 2>/dev/null
	DEV=
	rmmod snapblk 2>/dev/null
	insmod "$ko" || ktap_exit_fail_msg "cannot load $ko"
}

map() {
	local node
	node=$("$bin/snapblk" create img "$W/m" --key-file "$W/key" "$@") || return 1
	DEV=${node#/dev/}
	[ -b "/dev/$DEV" ]
}

whole_ok() { cmp -n "$SIZE" "/dev/$DEV" "$W/image" >/dev/null 2>&1; }

report() { kill -USR1 "$DPID"; sleep 0.3; }
