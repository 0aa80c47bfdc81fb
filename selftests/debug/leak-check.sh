#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# kmemleak's verdict on everything that ran before it in this guest: run
# last, after the suite (scripts/check-debug).  Two forced scans (kmemleak
# reports an object unreferenced in a scan once it is older than 5 s; the
# second scan, 6 s later, catches those too young for the first), then the
# report in /sys/kernel/debug/kmemleak must be empty.  A report is printed
# here in full; kmemleak also logs "kmemleak: N new suspected memory
# leaks", which makes run-vm fail the run as well.  (Not named after
# kmemleak: its drop_caches makes the kernel log the script's name, and
# run-vm fails a run whose log says "kmemleak".)
source "${KTAP_HELPERS:?run through selftests/run_tests}"

f=/sys/kernel/debug/kmemleak

ktap_print_header
ktap_set_plan 2

if [ ! -e $f ]; then
	ktap_test_skip "this kernel has no kmemleak (the check-debug kernel has)"
	ktap_test_skip "no kmemleak report to read"
	ktap_finished
	exit 4
fi

# Objects freed with kfree_rcu() and the like are only gone after a grace
# period: let those go first, so that none is caught half-freed.
echo 3 > /proc/sys/vm/drop_caches
sleep 2
ok=1
for i in 1 2; do
	# Writing "scan" fails when kmemleak has turned itself off (it ran
	# out of its object pool: "kmemleak: Kernel memory leak detector
	# disabled").
	echo scan > $f 2>/dev/null || ok=0
	[ $i = 2 ] || sleep 6
done
if [ $ok = 1 ]; then
	ktap_test_pass "kmemleak is on and scans"
else
	ktap_test_fail "kmemleak is on and scans (it is off: $(dmesg | grep -m 1 'kmemleak:'))"
fi

report=$(cat $f 2>&1)
n=$(printf '%s\n' "$report" | grep -c '^unreferenced object')
if [ -z "$report" ]; then
	ktap_test_pass "kmemleak finds no unreferenced object"
else
	printf '%s\n' "$report" | sed 's/^/# /'
	ktap_test_fail "kmemleak finds no unreferenced object ($n found)"
fi
ktap_finished
