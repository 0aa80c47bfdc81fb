#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# snapblkd on the build machine (module never loaded here): help, usage
# errors (exit 2), failures a user can act on (exit 1 with a hint), the
# man page, and end to end against a store written by snapblk-build,
# with a python3 emulation of /dev/snapblk-fetch checking what the kernel
# checks: every answer's SHA-256 is the chunk's address.
source "${KTAP_HELPERS:?run through make check}"
bin=${SNAPBLK_BIN:?}
sbd=$bin/snapblkd
man=Documentation/man/snapblkd.8

W=$(mktemp -d /tmp/snapblkd-cli.XXXXXX) || exit 1
trap 'rm -rf "$W"' EXIT

ktap_print_header
ktap_set_plan 11

# expect STATUS PATTERN DESCRIPTION CMD...: exit STATUS, stderr ~ PATTERN
expect() {
	local want=$1 pat=$2 desc=$3 err rc
	shift 3
	err=$("$@" 2>&1 >/dev/null); rc=$?
	if [ "$rc" = "$want" ] && grep -qE -- "$pat" <<<"$err"; then
		ktap_test_pass "$desc"
	else
		ktap_test_fail "$desc (exit $rc: $err)"
	fi
}

out=$("$sbd" --help); rc=$?
[ $rc = 0 ] && grep -q '^usage: snapblkd --store URL' <<<"$out" &&
	grep -q -- '--jobs N' <<<"$out" && grep -q -- '--writers N' <<<"$out" &&
	grep -q 'Exit status' <<<"$out" &&
	ktap_test_pass "--help prints usage, options and exit status" ||
	ktap_test_fail "--help prints usage, options and exit status"

"$sbd" --version | grep -q '^snapblkd [0-9]' &&
	ktap_test_pass "--version" || ktap_test_fail "--version"

expect 2 "^snapblkd: --store is required" \
	"no --store: exit 2" "$sbd"
expect 2 "^snapblkd: invalid job count '0'" \
	"--jobs 0: exit 2" "$sbd" --store "$W" --jobs 0
expect 2 "^snapblkd: invalid writer count '65': expected 0 to 64" \
	"--writers 65: exit 2" "$sbd" --store "$W" --writers 65
expect 2 "^snapblkd: unknown option '--frob'" \
	"unknown option: exit 2" "$sbd" --store "$W" --frob
expect 2 "exclude each other" "--device with --device-fd: exit 2" \
	"$sbd" --store "$W" --device /dev/null --device-fd 0
expect 1 "^snapblkd: opening chunk store $W/none: No such file" \
	"missing store: exit 1" "$sbd" --store "$W/none"
expect 1 "^snapblkd: is the snapblk module loaded" \
	"missing device: exit 1 with a hint" \
	"$sbd" --store "$W" --device "$W/snapblk-fetch"

ok=1
for s in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" SIGNALS EXAMPLES \
	 "SEE ALSO"; do
	grep -q "^\.SH \"\?$s\"\?$" "$man" || { ok=0; echo "# no $s in $man"; }
done
if command -v groff >/dev/null; then
	warn=$(groff -man -Tutf8 -ww -z "$man" 2>&1)
	[ -z "$warn" ] || { ok=0; echo "# groff: $warn"; }
fi
[ $ok = 1 ] && ktap_test_pass "man page has its sections, renders cleanly" ||
	ktap_test_fail "man page has its sections, renders cleanly"

# ------------------------------------------------------------ end to end
desc="serves a snapblk-build store: each answer hashes to its address"
if ! command -v python3 >/dev/null; then
	ktap_test_skip "$desc (no python3)"
	ktap_finished
fi
mkdir "$W/store"
head -c 1M /dev/urandom >"$W/img"
head -c 128K /dev/zero >>"$W/img"
head -c 100K /dev/urandom >>"$W/img"
"$bin/snapblk-build" keygen -o "$W/key" >/dev/null 2>&1 &&
"$bin/snapblk-build" create "$W/img" --store "$W/store" --key-file "$W/key" \
	-c 64K -o "$W/m" -q >/dev/null 2>&1 &&
"$bin/snapblk-build" inspect "$W/m" --key-file "$W/key" --chunks --json \
	>"$W/m.json" || ktap_exit_fail_msg "snapblk-build failed"

python3 - "$sbd" "$W/store" "$W/m.json" >"$W/py.out" 2>&1 <<'EOF'
import hashlib, json, os, signal, socket, struct, subprocess, sys

sbd, store, mjson = sys.argv[1:4]
m = json.load(open(mjson))
cs = m["chunk_size"]
chunks = [c for c in m["chunk_table"] if not c["zero"]]
# struct snapblk_fetch_req (72 bytes, API 3) and struct snapblk_fetch_resp
# (24 bytes, API 4: with tier and retries)
REQ, RESP = "<IIQ32sIIQQ", "<IIQII"
HL = struct.calcsize(RESP)
TIER_STORE = 2
kernel, daemon = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
p = subprocess.Popen([sbd, "--store", store, "--device-fd",
                      str(daemon.fileno()), "--jobs", "3"],
                     pass_fds=[daemon.fileno()], stderr=subprocess.PIPE)
daemon.close()
# Requests for every stored chunk and one that is not in the store.
want = {}
for i, c in enumerate(chunks):
    addr = bytes.fromhex(c["address"])
    want[i + 1] = addr
    kernel.send(struct.pack(REQ, 72, cs, i + 1, addr, 0, 0, c["index"], 0))
kernel.send(struct.pack(REQ, 72, cs, 999, b"\x5a" * 32, 0, 0, 77, 0))
kernel.settimeout(10)
bad = 0
for _ in range(len(want) + 1):
    msg = kernel.recv(HL + cs + 1)
    ln, err, rid, tier, retries = struct.unpack(RESP, msg[:HL])
    if rid == 999:
        ok = ln == HL and err == 2 and len(msg) == HL
    else:
        # From the first (only) store, at the first request.
        ok = (ln == HL and err == 0 and len(msg) == HL + cs and
              tier == TIER_STORE and retries == 0 and
              hashlib.sha256(msg[HL:]).digest() == want.pop(rid))
    if not ok:
        bad += 1
        print("bad answer", rid, err, len(msg))
p.send_signal(signal.SIGTERM)
log = p.communicate(timeout=10)[1].decode()
print(log, end="")
stats = "stopped: %d fetched, 1 missing, 0 errors, %d bytes" % (
    len(chunks), len(chunks) * cs)
sys.exit(0 if not bad and not want and p.returncode == 0 and stats in log
         else 1)
EOF
if [ $? = 0 ]; then
	ktap_test_pass "$desc"
else
	sed 's/^/# /' "$W/py.out"
	ktap_test_fail "$desc"
fi

ktap_finished
