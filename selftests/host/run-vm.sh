#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Host-side check of selftests/run-vm itself: a run whose guest kernel
# WARNs (selftests/modules/snapblk_warn.ko) must fail with status 125 and
# name the warning, a clean run must pass CMD's status through, and a
# guest that stops dead (selftests/modules/snapblk_wedge.ko) is stopped by
# --stall-timeout with status 126, and a guest kernel that panics while it
# boots, before CMD (rdinit= names no init), is booted once more and then
# fails the run with 125.
source "${KTAP_HELPERS:?run through make check}"

top=$(cd "$(dirname "$0")/../.." && pwd)
k=${RUNNER_KERNEL:-$(ls /boot | sed -n 's/^vmlinuz-\(6\.12\..*\)/\1/p' | sort -V | tail -n 1)}
[ -n "$k" ] || k=$(ls /boot | sed -n 's/^vmlinuz-//p' | sort -V | tail -n 1)
out=$(mktemp)
trap 'rm -f "$out"' EXIT

ktap_print_header
ktap_set_plan 4

"$top/selftests/run-vm" --kernel "$k" -- sh -c \
	"insmod $top/build/$k/selftests-modules/snapblk_warn.ko && exit 7" \
	> "$out" 2>&1
rc=$?
sed 's/^/# /' "$out"
if [ "$rc" = 125 ] && grep -q 'WARNING' "$out"; then
	ktap_test_pass "run-vm fails a run whose guest WARNs ($k)"
else
	ktap_test_fail "run-vm fails a run whose guest WARNs ($k; exit $rc)"
fi

"$top/selftests/run-vm" --kernel "$k" -- sh -c 'exit 7' > "$out" 2>&1
rc=$?
[ "$rc" = 7 ] && ktap_test_pass "run-vm passes CMD's exit status through" ||
	ktap_test_fail "run-vm passes CMD's exit status through (got $rc)"

SECONDS=0
"$top/selftests/run-vm" --kernel "$k" --cpus 1 --timeout 300 \
	--stall-timeout 15 -- sh -c \
	"insmod $top/build/$k/selftests-modules/snapblk_wedge.ko; exit 7" \
	> "$out" 2>&1
rc=$?
sed 's/^/# /' "$out"
if [ "$rc" = 126 ] && grep -q 'the guest stalled' "$out" && [ "$SECONDS" -lt 200 ]; then
	ktap_test_pass "run-vm --stall-timeout stops a wedged guest with 126 (${SECONDS}s)"
else
	ktap_test_fail "run-vm --stall-timeout stops a wedged guest with 126 (exit $rc, ${SECONDS}s)"
fi

"$top/selftests/run-vm" --kernel "$k" --timeout 300 \
	--append rdinit=/nonexistent -- sh -c 'exit 7' > "$out" 2>&1
rc=$?
sed 's/^/# /' "$out"
if [ "$rc" = 125 ] && grep -q 'crashed while booting, before CMD started' "$out" &&
   grep -q 'crashed while booting twice' "$out"; then
	ktap_test_pass "run-vm boots once more after a guest kernel panic at boot, then fails with 125"
else
	ktap_test_fail "run-vm boots once more after a guest kernel panic at boot, then fails with 125 (exit $rc)"
fi

ktap_finished
