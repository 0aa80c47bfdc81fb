#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# kmod/compat.h on the running kernel: selftests/modules/snapblk_compat.ko
# uses every wrapper; check that each one did what the driver expects.
source "${KTAP_HELPERS:?run through selftests/run_tests}"

top=$(cd "$(dirname "$0")/.." && pwd)
ko=$top/build/$(uname -r)/selftests-modules/snapblk_compat.ko
p=/sys/module/snapblk_compat/parameters
q=/sys/block/sbcompat0/queue

ktap_print_header
ktap_set_plan 6

if ! insmod "$ko"; then
	ktap_exit_fail_msg "cannot load $ko"
fi

[ -d /sys/class/snapblk_compat ] &&
	ktap_test_pass "snapblk_class_create() made /sys/class/snapblk_compat" ||
	ktap_test_fail "snapblk_class_create() made /sys/class/snapblk_compat"

lbs=$(cat $q/logical_block_size) mhs=$(cat $q/max_hw_sectors_kb)
[ "$lbs" = 4096 ] && [ "$mhs" = 256 ] &&
	ktap_test_pass "snapblk_alloc_disk() applied queue limits" ||
	ktap_test_fail "snapblk_alloc_disk() applied queue limits (lbs $lbs, max_hw_sectors_kb $mhs)"

wc=$(cat $q/write_cache)
[ "$wc" = "write back" ] &&
	ktap_test_pass "snapblk_alloc_disk() enabled the write cache" ||
	ktap_test_fail "snapblk_alloc_disk() enabled the write cache (got '$wc')"

o0=$(cat $p/opens) r0=$(cat $p/releases)
sum=$(dd if=/dev/sbcompat0 bs=64k iflag=direct 2>/dev/null | od -An -v -tx1 | tr -d ' \n' | tr -d 0 | wc -c)
size=$(blockdev --getsize64 /dev/sbcompat0)
o1=$(cat $p/opens) r1=$(cat $p/releases)
[ "$size" = 1048576 ] && [ "$sum" = 0 ] &&
	ktap_test_pass "disk reads back 1 MiB of zeros" ||
	ktap_test_fail "disk reads back 1 MiB of zeros (size $size, non-zero digits $sum)"
[ $((o1 - o0)) -ge 1 ] && [ $((o1 - o0)) = $((r1 - r0)) ] &&
	ktap_test_pass "open/release adapters called in pairs ($((o1 - o0)))" ||
	ktap_test_fail "open/release adapters called in pairs (opens $o0->$o1, releases $r0->$r1)"

c0=$(cat $p/shrinker_counts)
echo 2 > /proc/sys/vm/drop_caches
c1=$(cat $p/shrinker_counts)
[ "$c1" -gt "$c0" ] &&
	ktap_test_pass "snapblk_shrinker_alloc() registered a shrinker" ||
	ktap_test_fail "snapblk_shrinker_alloc() registered a shrinker (count calls $c0 -> $c1)"

rmmod snapblk_compat || ktap_exit_fail_msg "cannot unload snapblk_compat"
ktap_finished
