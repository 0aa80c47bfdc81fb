#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The clone commands of the snapblk tool as a user runs them:
# clone-status, simulate-clone, events, and wait-clone with --exec,
# --loop (a hook for every clone, none missed) and --timeout.
source "${KTAP_HELPERS:?run through selftests/run_tests}"

top=$(cd "$(dirname "$0")/.." && pwd)
sb=$top/build/bin/snapblk
ko=${SNAPBLK_KO:-$top/build/$(uname -r)/snapblk.ko}
W=$(mktemp -d /tmp/clone_cli.XXXXXX)

cleanup() {
	pkill -f "snapblk wait-clone" 2>/dev/null
	pkill -f "snapblk events" 2>/dev/null
	sleep 0.2
	rmmod snapblk 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

ktap_print_header
ktap_set_plan 10

t() { if eval "$2"; then ktap_test_pass "$1"; else ktap_test_fail "$1"; fi; }

rmmod snapblk 2>/dev/null
insmod "$ko"

t "clone-status --json starts at generation 0" \
	'"$sb" clone-status --json | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(not (d[\"generation\"] == 0 and d[\"last_source\"] == \"none\" and \"trigger\" in d[\"sources\"]))"'

"$sb" events --json --count 2 > "$W/events" 2>&1 &
epid=$!
"$sb" wait-clone --loop --json \
	--exec 'echo "$SNAPBLK_GENERATION $SNAPBLK_CLONE_SOURCE" >> '"$W/hooks"'; sleep 1' \
	> "$W/loop.out" 2>&1 &
lpid=$!
sleep 1
out=$("$sb" simulate-clone --id 0123456789abcdef0123456789abcdef)
t "simulate-clone prints the new generation" '[ "$out" = "generation 1" ]'
sleep 0.3
# Two clones while the hook of the first still runs: reported as one.
"$sb" simulate-clone > /dev/null
"$sb" simulate-clone > /dev/null
sleep 3
t "wait-clone --loop ran the hook for the first clone, then once for the two that came during it" \
	'[ "$(cat "$W/hooks" 2>/dev/null | tr "\n" " ")" = "1 trigger 3 trigger " ]'
t "wait-clone --loop printed each as JSON" \
	'[ "$(grep -c "\"source\":\"trigger\",\"reseed\":\"forced\"" "$W/loop.out")" = 2 ]'
kill "$lpid"
wait "$epid"
t "events --json showed the clones" \
	'grep -q "^{\"event\":\"clone\",\"generation\":1,\"source\":\"trigger\",\"reseed\":\"forced\"}" "$W/events"'

"$sb" wait-clone --timeout 1 > /dev/null 2>"$W/err"
rc=$?
t "wait-clone --timeout without a clone exits 3" \
	'[ "$rc" = 3 ] && grep -q "no clone within 1 s" "$W/err"'

"$sb" wait-clone --exec 'exit 7' > /dev/null 2>&1 &
wpid=$!
sleep 1
"$sb" simulate-clone > /dev/null
wait "$wpid"
rc=$?
t "wait-clone --exec passes on the command's exit status" '[ "$rc" = 7 ]'

"$sb" wait-clone --loop > /dev/null 2>"$W/err"
rc=$?
t "wait-clone --loop without --exec is a usage error" \
	'[ "$rc" = 2 ] && grep -q "needs --exec" "$W/err"'

"$sb" simulate-clone --id 0123456789abcdef0123456789abcdef > /dev/null
out=$("$sb" simulate-clone --id 0123456789abcdef0123456789abcdef)
t "the current ID again is no new generation" \
	'[ "$out" = "generation 5" ] && "$sb" clone-status | grep -q "^duplicates *1$"'

out=$(setpriv --reuid 65534 --regid 65534 --clear-groups "$sb" simulate-clone 2>&1)
rc=$?
t "simulate-clone as nobody: EPERM, and says what is needed" \
	'[ "$rc" = 1 ] && [[ "$out" == *"CAP_SYS_ADMIN"* ]]'
