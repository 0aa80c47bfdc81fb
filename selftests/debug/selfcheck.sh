#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Host-side check that check-debug's verdicts mean something, on the
# debug kernel (DEBUG_KERNEL_DIR, from scripts/build-debug-kernel):
#   1. a module that leaks (selftests/modules/snapblk_leak.ko) makes
#      leak-check.sh fail and print the report, and run-vm fail the run on
#      the "kmemleak:" line it logs;
#   2. run-vm --allow-fault-injection lets a run through whose only kernel
#      report is an injected failure with its stack dump (verbose=2);
#   3. ... but still fails a run that also WARNs
#      (selftests/modules/snapblk_warn.ko).
source "${KTAP_HELPERS:?run through scripts/check-debug}"

top=$(cd "$(dirname "$0")/../.." && pwd)
dir=${DEBUG_KERNEL_DIR:?run through scripts/check-debug}
rel=$(cat "$dir/kernelrelease")
mods=$top/build/$rel/selftests-modules
vm=("$top/selftests/run-vm" --vmlinuz "$dir/bzImage" --mem 2048
    --timeout 900 --append acpi=noirq)
out=$(mktemp)
trap 'rm -f "$out"' EXIT

ktap_print_header
ktap_set_plan 3

"${vm[@]}" -- sh -c "insmod $mods/snapblk_leak.ko kmemleak_report=1 &&
	rmmod snapblk_leak &&
	selftests/run_tests selftests/debug/leak-check.sh" > "$out" 2>&1
rc=$?
sed 's/^/# /' "$out"
if [ "$rc" = 125 ] && grep -q '^not ok .*unreferenced object' "$out" &&
   grep -q 'unreferenced object 0x[0-9a-f]* (size 256)' "$out" &&
   grep -q 'kmemleak: .*new suspected memory leak' "$out"; then
	ktap_test_pass "a module leaking 256 bytes fails leak-check.sh and the VM run"
else
	ktap_test_fail "a module leaking 256 bytes fails leak-check.sh and the VM run (exit $rc)"
fi

# One failed allocation in a shell of its own, with a stack dump; the
# shell's exec may fail for it, which does not matter here.
inject='d=/sys/kernel/debug/failslab
	echo 2 > $d/verbose; echo N > $d/ignore-gfp-wait
	sh -c "echo 1 > /proc/self/fail-nth; exec true"
	echo 0 > $d/verbose; dmesg | grep -c "FAULT_INJECTION: forcing a failure"'
"${vm[@]}" --allow-fault-injection -- sh -c "$inject" > "$out" 2>&1
rc=$?
sed 's/^/# /' "$out"
if [ "$rc" = 0 ] && [ "$(tail -n 1 "$out")" -ge 1 ] 2>/dev/null; then
	ktap_test_pass "--allow-fault-injection passes a run whose only report is an injected failure"
else
	ktap_test_fail "--allow-fault-injection passes a run whose only report is an injected failure (exit $rc)"
fi

"${vm[@]}" --allow-fault-injection -- sh -c "$inject; insmod $mods/snapblk_warn.ko" \
	> "$out" 2>&1
rc=$?
sed 's/^/# /' "$out"
if [ "$rc" = 125 ] && grep -q 'WARNING' "$out"; then
	ktap_test_pass "--allow-fault-injection still fails a run that WARNs"
else
	ktap_test_fail "--allow-fault-injection still fails a run that WARNs (exit $rc)"
fi
ktap_finished
