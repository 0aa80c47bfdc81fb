#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# snaplaunch on real KVM, nested in the test VM (modprobe kvm_amd: -cpu
# max offers SVM).  The inner guest is Debian's 6.1 kernel with an
# initramfs whose program (selftests/helpers/rngloop) prints getrandom(2)
# output in a loop and asks for a snapshot mid-loop.  20 clones are
# restored from that snapshot: no line printed after the restore appears
# in two clones, each clone's generation advanced exactly once, and each
# guest kernel logged the reseed before the first line printed after the
# restore; the stock vmgenid driver heard of each clone too, and the
# guest's poweroff ended each clone.  A clone snapshotted and restored
# again is at generation 2; the guest's reboot ends snaplaunch run; a
# clone restored from a snapblk device fetches part of its memory.
# Corrupted and mismatched snapshots are refused with the reason.
#
# Runs in a test VM of its own with one vCPU (scripts/check): with two,
# QEMU's multi-threaded TCG occasionally lets the second vCPU execute a
# stale int3 while the outer kernel patches a KVM static key (VM creation
# and teardown flip some), an Oops in kvm_arch_vcpu_ioctl_run that is
# the emulator's, not KVM's or ours.
source "${KTAP_HELPERS:?run through selftests/run_tests}"

top=$(cd "$(dirname "$0")/../.." && pwd)
sl=$top/build/bin/snaplaunch
CLONES=${SNAPLAUNCH_CLONES:-20}
W=$(mktemp -d /tmp/launcher.XXXXXX)
cleanup() {
	pkill -9 -f "$sl" 2>/dev/null
	"$top/build/bin/snapblk" remove mem 2>/dev/null
	pkill -9 -f "snapblkd --store $W/store" 2>/dev/null
	sleep 0.2
	rmmod snapblk 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

ktap_print_header

inner=$(ls /boot | sed -n 's/^vmlinuz-\(6\.1\..*\)/\1/p' | sort -V | tail -n 1)
[ -n "$inner" ] || inner=$(uname -r)
if [ ! -r "$top/build/$inner/snapblk.ko" ]; then
	ktap_skip_all "no snapblk.ko for the inner kernel $inner: run make"
	exit "$KSFT_SKIP"
fi

ktap_set_plan 22

t() { if eval "$2"; then ktap_test_pass "$1"; else ktap_test_fail "$1"; fi; }

# Before KVM is loaded: the documented message.
out=$("$sl" run --kernel "/boot/vmlinuz-$inner" 2>&1)
rc=$?
t "without /dev/kvm: exit 1 and how to get it" \
	'[ "$rc" = 1 ] && [[ "$out" == *"cannot open /dev/kvm"*"load kvm_intel or kvm_amd"* ]]'

modprobe kvm_amd 2>/dev/null || modprobe kvm_intel 2>/dev/null
if [ ! -c /dev/kvm ]; then
	for i in $(seq 2 22); do
		ktap_test_skip "no nested KVM in this VM (modprobe kvm_amd failed)"
	done
	exit 0
fi

out=$(setpriv --reuid 65534 --regid 65534 --clear-groups \
	"$sl" run --kernel "/boot/vmlinuz-$inner" 2>&1)
t "as nobody: exit 1, and the advice to join the kvm group" \
	'[[ "$out" == *"/dev/kvm: Permission denied"*"group"* ]]'
out=$("$sl" run --kernel /etc/hostname 2>&1)
t "a kernel that is not a bzImage is refused" \
	'[[ "$out" == *"is not a Linux bzImage"* ]]'

cat > "$W/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
[ -f /ctr.ko ] && insmod /ctr.ko
gp=$(sed -n 's/.*snapblk\.genpage=\([^ ]*\).*/\1/p' /proc/cmdline)
insmod /snapblk.ko ${gp:+genpage=$gp} || echo "INSMOD FAILED"
echo BOOTED
grep -q SL_REBOOT /proc/cmdline && exec rngloop 0 3 reboot
exec rngloop 20 50
INIT
"$top/selftests/mk-guest-initramfs" "$inner" "$W/initrd" "$W/init" \
	"$top/build/selftests-helpers/rngloop"

boot=(--kernel "/boot/vmlinuz-$inner" --initrd "$W/initrd" --mem 128
      --append "console=ttyS0 loglevel=7 panic=-1")
timeout 300 "$sl" run "${boot[@]}" --snapshot-on-ready "$W/snap" \
	< /dev/null > "$W/boot.log" 2>&1
rc=$?
t "the guest booted, printed 20 lines and was snapshotted (exit $rc)" \
	'[ "$rc" = 0 ] && grep -q "^BOOTED" "$W/boot.log" && grep -q "^R 20 0 " "$W/boot.log" && [ -s "$W/snap/state" ] && [ -s "$W/snap/memory" ]'
t "the guest has the TSC-deadline timer (so it skips the APIC timer calibration)" \
	'grep -q "TSC deadline timer available" "$W/boot.log"'
t "the guest found the ACPI tables and the VM generation ID device" \
	'grep -q "ACPI: FACP .*SNAPLNCH" "$W/boot.log" && grep -q "ACPI: PM: (supports S0 S5)" "$W/boot.log" && ! grep -q "ACPI Error" "$W/boot.log"'
t "no temporary directory is left beside the snapshot" \
	'! ls -d "$W"/snap.tmp-* 2>/dev/null'
ktap_print_msg "snapshot: $(du -k "$W/snap/memory" | cut -f1) KiB of memory on disk, state $(stat -c %s "$W/snap/state") bytes"

mkdir "$W/logs"
timeout 400 "$sl" restore "$W/snap" --clones "$CLONES" --parallel 1 \
	--log-dir "$W/logs" --verbose < /dev/null 2> "$W/restore.err"
rc=$?
t "$CLONES clones restored and ran until the guest's poweroff ended each (exit $rc)" \
	'[ "$rc" = 0 ] && [ "$(grep -c "generation 1, acknowledged 1, powered off" "$W/restore.err")" = "$CLONES" ]'

bad_gen=0 bad_order=0 short=0 no_vmgenid=0 warn=0
for f in "$W"/logs/clone-*.log; do
	tr -d '\r' < "$f" > "$f.txt"
	# Every line after the restore is at generation 1.
	grep '^R ' "$f.txt" | awk '$3 != 1 { bad = 1 } END { exit bad }' ||
		bad_gen=$((bad_gen + 1))
	[ "$(grep -c '^R ' "$f.txt")" = 30 ] && grep -q '^R 21 ' "$f.txt" &&
		grep -q '^R 50 ' "$f.txt" || short=$((short + 1))
	first=$(grep -n '^R ' "$f.txt" | head -n 1 | cut -d: -f1)
	# Both sources tell the clone (one ID): whichever comes first wins.
	log=$(grep -n -E 'snapblk: clone: generation 1 from (genpage|vmgenid), RNG reseeded' "$f.txt" | head -n 1 | cut -d: -f1)
	[ -n "$first" ] && [ -n "$log" ] && [ "$log" -lt "$first" ] ||
		bad_order=$((bad_order + 1))
	grep -q 'crng reseeded due to virtual machine fork' "$f.txt" ||
		no_vmgenid=$((no_vmgenid + 1))
	! grep -q -E 'WARNING|BUG|Oops|Call Trace' "$f.txt" || warn=$((warn + 1))
done
t "every clone printed lines 21 to 50" '[ "$short" = 0 ]'
t "each clone's generation advanced exactly once (1 on every line)" \
	'[ "$bad_gen" = 0 ]'
t "each guest kernel logged the reseed before its first line after the restore" \
	'[ "$bad_order" = 0 ]'
t "the stock vmgenid driver saw each clone too (and snapblk counted it once)" \
	'[ "$no_vmgenid" = 0 ] && [ "$bad_gen" = 0 ]'
t "no clone's console shows a WARNING, BUG or Oops" '[ "$warn" = 0 ]'
cat "$W"/logs/clone-*.log.txt | awk '/^R / { print $4 }' | sort > "$W/all"
dups=$(uniq -d "$W/all" | wc -l)
ktap_print_msg "$(wc -l < "$W/all") lines after the restore, $dups printed by more than one clone"
t "no line printed after the restore appears in two clones" '[ "$dups" = 0 ]'

# A clone snapshotted again (at its line 40) and restored: generation 2.
timeout 300 "$sl" restore "$W/snap" --snapshot-on-ready "$W/snap2" \
	< /dev/null > "$W/c1.log" 2>&1
timeout 300 "$sl" restore "$W/snap2" --verbose < /dev/null > "$W/c2.log" 2>&1
t "a restored clone snapshotted and restored again is at generation 2" \
	'grep -q "^R 40 1 " "$W/c1.log" && grep -q "^R 41 2 " "$W/c2.log" && grep -q "^R 50 2 " "$W/c2.log" && grep -q -E "snapblk: clone: generation 2 from (genpage|vmgenid)" "$W/c2.log"'

# A guest's reboot ends snaplaunch too (the FADT's reset register).
timeout 300 "$sl" run "${boot[@]/panic=-1/panic=-1 SL_REBOOT}" < /dev/null \
	> "$W/reboot.log" 2>&1
rc=$?
t "the guest's reboot ends snaplaunch run with exit 0" \
	'[ "$rc" = 0 ] && grep -q "^R 3 " "$W/reboot.log" && grep -q "reboot: machine restart" "$W/reboot.log"'

# Lazy memory: the snapshot's memory as a snapblk image, mapped in this
# (outer) VM; the clone faults in only what it touches.
bin=$top/build/bin
"$bin/snapblk-build" keygen -o "$W/key" >/dev/null 2>&1 && mkdir -p "$W/store" &&
"$bin/snapblk-build" create "$W/snap/memory" --store "$W/store" \
	--key-file "$W/key" -o "$W/mem.manifest" --quiet &&
insmod "$top/build/$(uname -r)/snapblk.ko" &&
{ "$bin/snapblkd" --store "$W/store" --jobs 2 >> "$W/snapblkd.log" 2>&1 & } &&
node=$("$bin/snapblk" create mem "$W/mem.manifest" --key-file "$W/key")
timeout 300 "$sl" restore "$W/snap" --memory "${node:-/nonexistent}" --verbose \
	< /dev/null > "$W/lazy.log" 2>&1
t "a clone restored from a snapblk device runs (lines 21 to 50, generation 1)" \
	'grep -q "^R 21 1 " "$W/lazy.log" && grep -q "^R 50 1 " "$W/lazy.log"'
json=$("$bin/snapblk" info mem --json 2>/dev/null)
read -r fetched size chunks zero < <(echo "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); s=d["stats"]; print(s["bytes_fetched"], d["image_size"], s["chunks"], s["zero_chunks"])' 2>/dev/null)
ktap_print_msg "lazy memory: fetched ${fetched:-?} of ${size:-?} bytes (${chunks:-?} chunks of 512 KiB, ${zero:-?} of them zero and never fetched)"
t "the clone fetched only part of its memory" \
	'[ -n "$fetched" ] && [ "$fetched" -gt 0 ] && [ "$fetched" -lt "$size" ]'

# Refusals.
cp -r "$W/snap" "$W/bad"
printf '\xff' | dd of="$W/bad/state" bs=1 seek=200 conv=notrunc status=none
out=$("$sl" restore "$W/bad" 2>&1)
t "a corrupted state file is refused: checksum mismatch" \
	'[[ "$out" == *"checksum mismatch"* ]]'
cp "$W/snap/state" "$W/bad/state"
truncate -s -100 "$W/bad/state"
out=$("$sl" restore "$W/bad" 2>&1)
t "a truncated state file is refused" '[[ "$out" == *"truncated"* ]]'
cp "$W/snap/state" "$W/bad/state"
truncate -s 1M "$W/bad/memory"
out=$("$sl" restore "$W/bad" 2>&1)
t "a memory file smaller than the snapshot's memory is refused" \
	'[[ "$out" == *"has 1048576 bytes, the snapshot"* ]]'
out=$("$sl" restore "$W/snap" --clones 2 2>&1)
rc=$?
t "more than one clone without --log-dir is a usage error" \
	'[ "$rc" = 2 ] && [[ "$out" == *"--log-dir"* ]]'
