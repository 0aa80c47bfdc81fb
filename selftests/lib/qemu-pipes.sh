# SPDX-License-Identifier: GPL-2.0
#
# qemu-pipes.sh: drive QEMU guests through named pipes, sourced by the
# scripts that save and restore QEMU guests themselves
# (selftests/host/clone-qemu.sh, user/bench/bench-launch).
#
#   qp_start DIR NAME QEMU-COMMAND...
#	start QEMU-COMMAND in the background with its serial console on
#	pipes (write with qp_say; output collected in DIR/NAME.log) and QMP
#	on pipes (write with qp_qmp; replies in DIR/NAME-qmp.log), capabilities
#	negotiated.  Every process started is appended to qp_pids.
#   qp_say NAME LINE	type LINE on the guest's console
#   qp_qmp NAME JSON	send one QMP command
#   qp_save NAME FILE	save the running guest to FILE (QMP migrate to
#			"exec:cat > FILE"), then make QEMU quit; fails if the
#			migration fails or FILE ends up empty
#
# QMP "migrate" to a command is QEMU's way to write a snapshot of a
# running guest to a file; restore with -incoming "exec:cat FILE".

declare -A qp_con qp_qmp qp_dir	# guest name -> fd, fd, directory
qp_pids=()

qp_start() {
	local dir=$1 name=$2 fd
	shift 2
	mkfifo "$dir/$name.in" "$dir/$name.out" \
		"$dir/$name-qmp.in" "$dir/$name-qmp.out"
	"$@" -chardev "pipe,id=con,path=$dir/$name" -serial chardev:con \
		-chardev "pipe,id=qmp,path=$dir/$name-qmp" \
		-mon chardev=qmp,mode=control > "$dir/$name.qemu" 2>&1 &
	qp_pids+=($!)
	cat "$dir/$name.out" > "$dir/$name.log" &
	qp_pids+=($!)
	cat "$dir/$name-qmp.out" > "$dir/$name-qmp.log" &
	qp_pids+=($!)
	exec {fd}> "$dir/$name.in"
	qp_con[$name]=$fd
	exec {fd}> "$dir/$name-qmp.in"
	qp_qmp[$name]=$fd
	qp_dir[$name]=$dir
	qp_qmp "$name" '{"execute":"qmp_capabilities"}'
}

qp_say() { echo "$2" >&"${qp_con[$1]}"; }
qp_qmp() { echo "$2" >&"${qp_qmp[$1]}"; }

qp_save() {
	local log=${qp_dir[$1]}/$1-qmp.log i
	qp_qmp "$1" "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"exec:cat > $2\"}}"
	for ((i = 0; i < 300; i++)); do
		qp_qmp "$1" '{"execute":"query-migrate"}'
		sleep 0.5
		grep -q '"status": "completed"' "$log" && break
		grep -q '"status": "failed"' "$log" && return 1
	done
	qp_qmp "$1" '{"execute":"quit"}'
	[ -s "$2" ]
}
