#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The paravirtual generation page (snapblk.genpage=4K@ADDR:IRQ) with a
# stand-in VMM inside the test VM: the page is an ivshmem-plain BAR and
# the interrupt is ISA IRQ 7 raised through QEMU's pc-testdev (run-vm
# provides both).  Asserts that a clone bumps the generation once, that
# the IRQ thread reseeds and acknowledges before the interrupted task runs
# on (the restore barrier), that wait-clone's hook runs, that one clone
# reported twice (or by two sources) is one generation, and that bad
# parameters are refused with the documented errors.
source "${KTAP_HELPERS:?run through selftests/run_tests}"

top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/build/bin
vmm=$top/build/selftests-helpers/genpage_vmm
ko=${SNAPBLK_KO:-$top/build/$(uname -r)/snapblk.ko}
sys=/sys/class/misc/snapblk-gen
IRQ=7
W=$(mktemp -d /tmp/genpage.XXXXXX)

cleanup() {
	pkill -f "snapblk wait-clone" 2>/dev/null
	rmmod snapblk 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

ktap_print_header

dev=
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x1af4:0x1110 ] && dev=$d
done
if [ -z "$dev" ]; then
	ktap_skip_all "no ivshmem-plain device: run under selftests/run-vm"
	exit "$KSFT_SKIP"
fi

ktap_set_plan 15

t() { if eval "$2"; then ktap_test_pass "$1"; else ktap_test_fail "$1"; fi; }

echo 1 > "$dev/enable"
res=$dev/resource2
bar=$(sed -n 3p "$dev/resource" | cut -d' ' -f1)
rmmod snapblk 2>/dev/null

# A page without the magic: ENODEV, and nothing left behind.
# (sysfs resource files can only be mapped: the helper writes the page.)
"$vmm" zero "$res"
out=$(insmod "$ko" genpage=4K@$bar:$IRQ 2>&1)
t "a page without the magic is refused with ENODEV" \
	'[[ "$out" == *"No such device"* ]] && [ ! -e /sys/module/snapblk ]'
out=$(insmod "$ko" genpage=4K@$bar 2>&1)
t "genpage without :IRQ is refused with EINVAL" \
	'[[ "$out" == *"Invalid"* ]] && dmesg | tail -n 3 | grep -q "expected 4K@PHYSADDR:IRQ"'

"$vmm" init "$res"
t "loads with genpage=4K@$bar:$IRQ" 'insmod "$ko" genpage=4K@$bar:$IRQ'
t "sources lists genpage" 'grep -qw genpage $sys/sources'
t "the IRQ thread runs SCHED_FIFO" \
	'ps -eo cls,comm | grep -q "^ *FF .*snapblk-genpage"'
cpu=$(cat /proc/irq/$IRQ/effective_affinity_list)

"$bin/snapblk" wait-clone --timeout 60 \
	--exec 'echo "$SNAPBLK_GENERATION $SNAPBLK_CLONE_SOURCE" > '"$W/hook" \
	> "$W/wait.out" 2>&1 &
wpid=$!
sleep 1

# The stand-in VMM runs on the CPU the IRQ hits, as a vCPU would.
out=$(taskset -c "$cpu" "$vmm" clone "$res" $IRQ 11111111111111111111111111111111)
ktap_print_msg "clone 1: $out"
spins=$(echo "$out" | sed -n 's/.* spins \([0-9]*\) .*/\1/p')
t "the guest acknowledged generation 1 through the page" \
	'[[ "$out" == "generation 1 ack 1 "* ]]'
t "the IRQ thread reseeded before the interrupted task ran on (spins $spins)" \
	'[ -n "$spins" ] && [ "$spins" -le 1 ]'
t "the generation is 1, from genpage, RNG reseeded" \
	'[ "$(cat $sys/generation) $(cat $sys/source) $(cat $sys/reseed) $(cat $sys/reseeds)" = "1 genpage forced 1" ]'
t "the kernel log says so" \
	'dmesg | grep -q "snapblk: clone: generation 1 from genpage, RNG reseeded"'
wait "$wpid"
wrc=$?
t "wait-clone returned and ran its hook" \
	'[ "$wrc" = 0 ] && [ "$(cat "$W/hook" 2>/dev/null)" = "1 genpage" ]'

# The same ID again (a VMM repeating itself): acknowledged, not a clone.
out=$(taskset -c "$cpu" "$vmm" clone "$res" $IRQ 11111111111111111111111111111111)
t "the same ID again is acknowledged but is no new generation" \
	'[[ "$out" == "generation 2 ack 2 "* ]] && [ "$(cat $sys/generation) $(cat $sys/duplicates)" = "1 1" ]'

# One clone reported by two sources: the trigger, then the page.
"$bin/snapblk" simulate-clone --id 22222222-2222-2222-2222-222222222222 >/dev/null
out=$(taskset -c "$cpu" "$vmm" clone "$res" $IRQ 22222222222222222222222222222222)
t "one clone reported by two sources is one generation" \
	'[ "$(cat $sys/generation) $(cat $sys/duplicates)" = "2 2" ]'
out=$(taskset -c "$cpu" "$vmm" clone "$res" $IRQ 33333333333333333333333333333333)
t "the next clone is generation 3" \
	'[[ "$out" == "generation 4 ack 4 "* ]] && [ "$(cat $sys/generation)" = 3 ]'

t "rmmod frees the IRQ" \
	'rmmod snapblk && ! grep -q snapblk-genpage /proc/interrupts'
t "the IRQ thread is gone" '! ps -eo comm | grep -q snapblk-genpage'
