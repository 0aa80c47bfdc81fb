#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# QEMU's own snapshot restore, end to end, on each kernel given as an
# argument or in $CLONE_KERNELS (default: every supported one installed).  An initramfs-only guest (QEMU refuses
# to migrate a guest with a 9p mount) loads snapblk.ko and blocks in
# `snapblk wait-clone --exec HOOK`; QMP saves it to a file (migrate to
# "exec:cat > FILE"), and clones start from that file with -incoming.
#
#  vmgenid: the guest has -device vmgenid,guid=auto, so every restore gets
#    a new VM generation ID.  Each of two clones sees exactly one
#    generation bump, from vmgenid, runs the hook once, logs the kernel's
#    reseed, and draws RNG output the other clone does not.
#  trigger: no vmgenid device, so a restore tells the guest nothing.  Two
#    clones that get `snapblk simulate-clone --id` (distinct IDs) draw 32
#    bytes of getrandom(2) (selftests/helpers/getrandom32) that differ from each other and from those of two clones that
#    got no event; whether those two agree (the RNG output predicted by
#    the pre-clone state) is reported, not asserted: the kernel may
#    reseed on its own schedule in between.
source "${KTAP_HELPERS:?run through make check}"

top=$(cd "$(dirname "$0")/../.." && pwd)
source "$top/selftests/lib/qemu-pipes.sh"
W=$(mktemp -d /tmp/clone-qemu.XXXXXX)
cleanup() {
	local p
	for p in "${qp_pids[@]}"; do
		kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

kernels=("$@")
[ ${#kernels[@]} = 0 ] && [ -n "${CLONE_KERNELS:-}" ] && read -ra kernels <<< "$CLONE_KERNELS"
if [ ${#kernels[@]} = 0 ]; then
	mapfile -t kernels < <(ls /boot | sed -n 's/^vmlinuz-\(6\.\(1\|12\)\..*\)/\1/p' | sort -V)
fi

ktap_print_header
ktap_set_plan $(( ${#kernels[@]} * 14 ))

t() { if eval "$2"; then ktap_test_pass "$1"; else ktap_test_fail "$1"; fi; }

# build_initramfs KERNEL OUT
build_initramfs() {
	cat > "$W/hook" <<'HOOK'
#!/bin/sh
echo "HOOK gen=$SNAPBLK_GENERATION src=$SNAPBLK_CLONE_SOURCE"
echo "RNGHOOK $(getrandom32)"
HOOK
	cat > "$W/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
[ -f /ctr.ko ] && insmod /ctr.ko
insmod /snapblk.ko || echo "INSMOD FAILED"
g=/sys/class/misc/snapblk-gen
snapblk wait-clone --exec /bin/hook > /dev/ttyS0 2>&1 &
sleep 1
echo READY
while read -r cmd arg; do
	case "$cmd" in
	draw) echo "RNG $(getrandom32)" ;;
	clone) snapblk simulate-clone --id "$arg" > /dev/null && echo "RNG $(getrandom32)" ;;
	status) echo "STATUS gen=$(cat $g/generation) events=$(cat $g/events) reseeds=$(cat $g/reseeds) source=$(cat $g/source)" ;;
	log) dmesg | grep -E 'crng reseeded|snapblk: clone' | sed 's/^/LOG /' ;;
	quit) poweroff -f ;;
	esac
done < /dev/ttyS0
INIT
	chmod +x "$W/hook"
	"$top/selftests/mk-guest-initramfs" "$1" "$2" "$W/init" \
		"$top/build/bin/snapblk" \
		"$top/build/selftests-helpers/getrandom32" "$W/hook"
}

# start NAME KERNEL INITRAMFS [QEMU ARG...]: a guest whose serial console
# is typed to with say NAME and logged in $W/NAME.log, QMP with qmp NAME
# (selftests/lib/qemu-pipes.sh).
start() {
	local name=$1 k=$2 initrd=$3
	shift 3
	qp_start "$W" "$name" qemu-system-x86_64 -accel tcg -cpu max -smp 1 \
		-m 256 -nodefaults -display none -no-reboot \
		-kernel "/boot/vmlinuz-$k" -initrd "$initrd" \
		-append "console=ttyS0 quiet panic=-1" "$@"
}

say() { qp_say "$@"; }
qmp() { qp_qmp "$@"; }

# wait_for NAME FILE-SUFFIX REGEX SECONDS
wait_for() {
	local i
	for ((i = 0; i < $4 * 5; i++)); do
		grep -qE "$3" "$W/$1$2" 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}

# snapshot NAME FILE: save the running guest NAME to FILE, then stop it.
snapshot() { qp_save "$@"; }

field() { sed -n "s/^$2 \([0-9a-f]*\).*/\1/p" "$W/$1.log" | tr -d '\r' | head -n 1; }

for k in "${kernels[@]}"; do
	img=$W/initramfs-$k.gz
	build_initramfs "$k" "$img"
	base=(-device vmgenid,guid=auto)

	# ------------------------------------------------ vmgenid restores
	start "gen-$k" "$k" "$img" "${base[@]}"
	wait_for "gen-$k" .log '^READY' 120
	t "$k vmgenid: the guest booted with snapblk.ko loaded" \
		'grep -q "^READY" "$W/gen-$k.log" && ! grep -q "INSMOD FAILED" "$W/gen-$k.log"'
	t "$k vmgenid: QMP migrate saved the running guest" \
		'snapshot "gen-$k" "$W/gen-$k.snap"'
	for c in 1 2; do
		start "gen-$k-$c" "$k" "$img" "${base[@]}" \
			-incoming "exec:cat $W/gen-$k.snap"
	done
	for c in 1 2; do
		n=gen-$k-$c
		wait_for "$n" .log '^RNGHOOK' 120
		sleep 2		# room for a second, wrong, bump
		say "$n" status
		say "$n" log
		wait_for "$n" .log '^STATUS' 30
		wait_for "$n" .log '^LOG .*snapblk: clone' 30
		sed 's/^/# '"$n"': /' "$W/$n.log" | tr -d '\r' | grep -E 'HOOK|STATUS|LOG'
		t "$k vmgenid clone $c: wait-clone ran its hook once, for generation 1 from vmgenid" \
			'[ "$(grep -c "^HOOK" "$W/$n.log")" = 1 ] && grep -q "^HOOK gen=1 src=vmgenid" "$W/$n.log"'
		t "$k vmgenid clone $c: exactly one generation bump" \
			'grep -q "^STATUS gen=1 events=1 reseeds=0 source=vmgenid" "$W/$n.log"'
		t "$k vmgenid clone $c: the kernel reseeded for the new VM generation ID" \
			'grep -q "^LOG .*crng reseeded due to virtual machine fork" "$W/$n.log"'
		say "$n" quit
	done
	r1=$(field "gen-$k-1" RNGHOOK) r2=$(field "gen-$k-2" RNGHOOK)
	ktap_print_msg "$k vmgenid: after the hook, clone 1 drew $r1, clone 2 drew $r2"
	t "$k vmgenid: the two clones draw different RNG output after the hook" \
		'[ ${#r1} = 64 ] && [ ${#r2} = 64 ] && [ "$r1" != "$r2" ]'

	# ------------------------------------------------ trigger restores
	start "trig-$k" "$k" "$img"
	wait_for "trig-$k" .log '^READY' 120
	t "$k trigger: QMP migrate saved the running guest (no vmgenid device)" \
		'snapshot "trig-$k" "$W/trig-$k.snap"'
	for c in 1 2 3 4; do
		start "trig-$k-$c" "$k" "$img" -incoming "exec:cat $W/trig-$k.snap"
	done
	# Give the restores time to finish before the commands arrive.
	for c in 1 2 3 4; do
		for ((i = 0; i < 100; i++)); do
			qmp "trig-$k-$c" '{"execute":"query-status"}'
			sleep 0.3
			grep -q '"status": "running"' "$W/trig-$k-$c-qmp.log" && break
		done
	done
	say "trig-$k-1" draw
	say "trig-$k-2" draw
	say "trig-$k-3" "clone 33333333333333333333333333333333"
	say "trig-$k-4" "clone 44444444444444444444444444444444"
	for c in 1 2 3 4; do
		wait_for "trig-$k-$c" .log '^RNG ' 60
		say "trig-$k-$c" status
		wait_for "trig-$k-$c" .log '^STATUS' 30
		say "trig-$k-$c" quit
	done
	for c in 1 2 3 4; do
		eval "d$c=\$(field trig-$k-$c RNG)"
	done
	ktap_print_msg "$k trigger: no event: $d1 / $d2; simulated clones: $d3 / $d4"
	if [ "$d1" = "$d2" ]; then
		ktap_print_msg "$k trigger: the two clones without an event drew the same bytes (predictable from the snapshot)"
	else
		ktap_print_msg "$k trigger: the two clones without an event drew different bytes this time (the kernel reseeded on its own)"
	fi
	t "$k trigger: clones without an event see generation 0" \
		'grep -q "^STATUS gen=0 " "$W/trig-$k-1.log" && grep -q "^STATUS gen=0 " "$W/trig-$k-2.log"'
	t "$k trigger: each simulated clone is generation 1 with a forced reseed" \
		'grep -q "^STATUS gen=1 events=1 reseeds=1 source=trigger" "$W/trig-$k-3.log" && grep -q "^STATUS gen=1 events=1 reseeds=1 source=trigger" "$W/trig-$k-4.log"'
	t "$k trigger: after a simulated clone the output differs from the clones without one" \
		'[ ${#d1} = 64 ] && [ ${#d3} = 64 ] && [ ${#d4} = 64 ] && [ "$d3" != "$d1" ] && [ "$d3" != "$d2" ] && [ "$d4" != "$d1" ] && [ "$d4" != "$d2" ]'
	t "$k trigger: two clones with different IDs draw different output" \
		'[ ${#d3} = 64 ] && [ "$d3" != "$d4" ]'
	for p in "${qp_pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	qp_pids=()
done
