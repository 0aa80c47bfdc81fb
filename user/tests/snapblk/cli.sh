#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The snapblk CLI on the build machine (module never loaded here): help,
# usage errors with exit status 2, version without a module, valid JSON,
# create's manifest checks (done before the module is asked), and what
# every device command says without the module.  The cache commands:
# their usage errors, and create --prefetch's record file checks (another
# image, another chunk size, damaged, truncated), all made before the
# module is asked; a record file written by hand from the documented
# layout (snapblk(8), FILES) passes them.
source "${KTAP_HELPERS:?run through make check}"
sb=${SNAPBLK_BIN:?}/snapblk
sbb=${SNAPBLK_BIN:?}/snapblk-build
rules=$(dirname "$0")/../../udev/60-snapblk.rules
W=$(mktemp -d "${TMPDIR:-/tmp}/snapblk-cli.XXXXXX")
trap 'rm -rf "$W"' EXIT

# expect_exit STATUS DESC CMD...: CMD exits with STATUS; its standard
# error is left in $W/err.
expect_exit() {
	local want=$1 d=$2 got
	shift 2
	"$@" >"$W/out" 2>"$W/err"
	got=$?
	if [ "$got" = "$want" ]; then
		ktap_test_pass "$d"
	else
		ktap_test_fail "$d (exit $got, expected $want)"
		sed 's/^/# /' "$W/out" "$W/err"
	fi
}

# expect_fail DESC PATTERN CMD...: CMD exits 1 with PATTERN (grep -E) on
# its standard error.
expect_fail() {
	local d=$1 pat=$2 got
	shift 2
	"$@" >"$W/out" 2>"$W/err"
	got=$?
	if [ "$got" = 1 ] && grep -qE "$pat" "$W/err"; then
		ktap_test_pass "$d"
	else
		ktap_test_fail "$d (exit $got)"
		sed 's/^/# /' "$W/out" "$W/err"
	fi
}

# expect_status STATUS DESC PATTERN CMD...: expect_fail with STATUS.
expect_status() {
	local want=$1 d=$2 pat=$3 got
	shift 3
	"$@" >"$W/out" 2>"$W/err"
	got=$?
	if [ "$got" = "$want" ] && grep -qE "$pat" "$W/err"; then
		ktap_test_pass "$d"
	else
		ktap_test_fail "$d (exit $got, expected $want)"
		sed 's/^/# /' "$W/out" "$W/err"
	fi
}

ktap_print_header
ktap_set_plan 58

out=$("$sb" --help) && echo "$out" | grep -q '^usage: snapblk' &&
	echo "$out" | grep -q 'version' &&
	ktap_test_pass "--help prints usage and the commands" ||
	ktap_test_fail "--help prints usage and the commands"

"$sb" help version | grep -q '^usage: snapblk version' &&
	ktap_test_pass "help COMMAND prints that command's usage" ||
	ktap_test_fail "help COMMAND prints that command's usage"

err=$("$sb" frobnicate 2>&1); rc=$?
[ $rc = 2 ] && [[ "$err" == "snapblk: unknown command 'frobnicate'"* ]] &&
	ktap_test_pass "unknown command: exit 2 and says so" ||
	ktap_test_fail "unknown command: exit 2 and says so (exit $rc: $err)"

"$sb" version extra >/dev/null 2>&1; rc=$?
[ $rc = 2 ] && ktap_test_pass "extra argument: exit 2" ||
	ktap_test_fail "extra argument: exit 2 (exit $rc)"

if [ -d /sys/module/snapblk ]; then
	ktap_test_skip "version without the module (module is loaded here)"
else
	"$sb" version | grep -q 'module not loaded' &&
		ktap_test_pass "version without the module says it is not loaded" ||
		ktap_test_fail "version without the module says it is not loaded"
fi

"$sb" --json version | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["uapi_version"] >= 1 and isinstance(d["module_loaded"], bool)
' && ktap_test_pass "--json version is valid JSON" ||
	ktap_test_fail "--json version is valid JSON"

# ------------------------------------------------------ device commands
out=$("$sb" --help)
missing=
for c in create remove ls info status record prefetch hydrate events version help; do
	echo "$out" | grep -qE "^  $c( |\$)" || missing="$missing $c"
done
[ -z "$missing" ] && ktap_test_pass "--help lists every command" ||
	ktap_test_fail "--help lists every command (missing:$missing)"

out=$("$sb" help create)
missing=
for o in --key-file --fetch-timeout --readahead --max-inflight --prefetch \
	 --hydrate --wait --json; do
	echo "$out" | grep -q -- "$o " || missing="$missing $o"
done
[ -z "$missing" ] && ktap_test_pass "help create names its options" ||
	ktap_test_fail "help create names its options (missing:$missing)"
"$sb" help status | grep -q -- '--prometheus' &&
	"$sb" help record | grep -q -- '--output' &&
	"$sb" help prefetch | grep -q -- '--stop' &&
	"$sb" help hydrate | grep -q -- '--wait' &&
	ktap_test_pass "help status, record, prefetch, hydrate name their options" ||
	ktap_test_fail "help status, record, prefetch, hydrate name their options"

expect_exit 2 "create without arguments: exit 2" "$sb" create
expect_exit 2 "create without a manifest: exit 2" "$sb" create vm1
expect_exit 2 "create without --key-file: exit 2" "$sb" create vm1 m
expect_exit 2 "create with an unknown option: exit 2" \
	"$sb" create vm1 m --key-file k --frobnicate
expect_exit 2 "create with a bad --fetch-timeout: exit 2" \
	"$sb" create vm1 m --key-file k --fetch-timeout soon
expect_exit 2 "create with a name too long: exit 2" \
	"$sb" create "$(printf 'n%.0s' {1..32})" m --key-file k
expect_exit 2 "create with a / in the name: exit 2" \
	"$sb" create a/b m --key-file k
expect_exit 2 "remove without a name: exit 2" "$sb" remove
expect_exit 2 "ls with an argument: exit 2" "$sb" ls extra
expect_exit 2 "ls with an option of another command: exit 2" \
	"$sb" ls --key-file k
expect_exit 2 "info without a name: exit 2" "$sb" info
expect_exit 2 "status with two names: exit 2" "$sb" status a b
expect_exit 2 "create --readahead 257: exit 2" \
	"$sb" create vm1 m --key-file k --readahead 257
expect_exit 2 "create --max-inflight 0: exit 2" \
	"$sb" create vm1 m --key-file k --max-inflight 0
expect_exit 2 "create --max-inflight 1025: exit 2" \
	"$sb" create vm1 m --key-file k --max-inflight 1025
expect_exit 2 "create with --prefetch and --hydrate: exit 2" \
	"$sb" create vm1 m --key-file k --prefetch f --hydrate
expect_exit 2 "create --wait without a prefetch: exit 2" \
	"$sb" create vm1 m --key-file k --wait
expect_exit 2 "record without --output: exit 2" "$sb" record vm1
expect_exit 2 "record with an option of create: exit 2" \
	"$sb" record vm1 -o f --readahead 4
expect_exit 2 "prefetch without a file: exit 2" "$sb" prefetch vm1
expect_exit 2 "prefetch --stop with a file: exit 2" \
	"$sb" prefetch --stop vm1 f
expect_exit 2 "prefetch --stop --wait: exit 2" "$sb" prefetch --stop --wait vm1
expect_exit 2 "hydrate without a name: exit 2" "$sb" hydrate
expect_exit 2 "status --json --prometheus: exit 2" \
	"$sb" status --json --prometheus
expect_exit 2 "events --count 0: exit 2" "$sb" events --count 0
expect_exit 2 "events with an argument: exit 2" "$sb" events extra

# A small image sealed with one key, opened with another: the manifest is
# unsealed before the module is asked, so this needs no module.
(cd "$W" && head -c 200K /dev/urandom >img && mkdir store &&
 "$sbb" keygen -o key && "$sbb" keygen -o other &&
 "$sbb" create img --store store --key-file key -c 64K -o img.m -q) \
	>/dev/null 2>&1
if [ -s "$W/img.m" ]; then
	expect_status 4 "create with a wrong key: authentication failed, exit 4" \
		'img\.m: manifest authentication failed: wrong key or corrupted manifest' \
		"$sb" create vm1 "$W/img.m" --key-file "$W/other"
	grep -q -- '--key-file' "$W/err" &&
		ktap_test_pass "create with a wrong key: the hint names --key-file" ||
		ktap_test_fail "create with a wrong key: the hint names --key-file"
	expect_status 5 "create with a damaged manifest: exit 5" \
		'not a snapblk manifest' \
		"$sb" create vm1 "$W/key" --key-file "$W/key"
else
	for d in "create with a wrong key: authentication failed, exit 4" \
		 "create with a wrong key: the hint names --key-file" \
		 "create with a damaged manifest: exit 5"; do
		ktap_test_fail "$d (snapblk-build could not make a manifest)"
	done
fi
# Record files, checked against the manifest before the module is asked.
# rec FILE IMAGE_ID CHUNK_SIZE VERSION INDEX...: a record file as
# snapblk(8) documents it, written independently of user/lib/trace.c.
rec() {
	python3 - "$@" <<'PY'
import hashlib, struct, sys
path, iid, cs, ver = sys.argv[1], bytes.fromhex(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
idx = [int(i) for i in sys.argv[5:]]
body = b"SNAPBLKT" + struct.pack("<II", ver, 56) + iid + struct.pack("<II", cs, len(idx))
body += b"".join(struct.pack("<I", i) for i in idx)
open(path, "wb").write(body + hashlib.sha256(body).digest())
PY
}
# pf FILE: create vm1 with --prefetch FILE
pf() { "$sb" create vm1 "$W/img.m" --key-file "$W/key" --prefetch "$@"; }
id=$("$sbb" inspect "$W/img.m" --key-file "$W/key" --json 2>/dev/null |
     python3 -c 'import json,sys; print(json.load(sys.stdin)["image_id"])' 2>/dev/null)
other=$(printf 'ab%.0s' {1..32})
if [ ${#id} = 64 ] && rec "$W/other.t" "$other" 65536 1 0 2 1 &&
   rec "$W/ok.t" "$id" 65536 1 3 0 2 && rec "$W/cs.t" "$id" 131072 1 0 &&
   rec "$W/past.t" "$id" 65536 1 0 4 && rec "$W/v2.t" "$id" 65536 2 0; then
	expect_fail "create --prefetch of another image's record: exit 1, both ids" \
		"other\.t was recorded from image abababababababab, not from this manifest's image ${id:0:16}" \
		pf "$W/other.t"
	grep -q 'record it again from a device of this image' "$W/err" &&
		! grep -q 'not loaded' "$W/err" &&
		ktap_test_pass "... says what to do, before asking the module" ||
		ktap_test_fail "... says what to do, before asking the module"
	expect_fail "create --prefetch with another chunk size: exit 1" \
		'recorded with 131072-byte chunks, but this manifest.s image has 65536-byte chunks' \
		pf "$W/cs.t"
	expect_fail "create --prefetch naming a chunk past the image: exit 1" \
		'lists chunk 4, but this manifest.s image has 4 chunks' \
		pf "$W/past.t"
	expect_fail "create --prefetch of a version-2 record: exit 1" \
		'record file version 2, but this tool reads version 1' \
		pf "$W/v2.t"
	head -c 70 "$W/ok.t" > "$W/cut.t"
	expect_fail "create --prefetch of a truncated record: exit 1" \
		'cut\.t: truncated record file' \
		pf "$W/cut.t"
	cp "$W/ok.t" "$W/bad.t"
	printf '\x07' | dd of="$W/bad.t" bs=1 seek=60 conv=notrunc 2>/dev/null
	expect_fail "create --prefetch of a damaged record: exit 1" \
		'bad\.t: record file checksum mismatch' \
		pf "$W/bad.t"
	expect_fail "create --prefetch of a manifest: not a record file, exit 1" \
		'not a snapblk record file' \
		pf "$W/img.m"
	if [ -d /sys/module/snapblk ]; then
		ktap_test_skip "a record file of the documented layout passes (module is loaded here)"
	else
		expect_fail "a record file of the documented layout passes the checks" \
			'cannot create device vm1: the snapblk module is not loaded' \
			pf "$W/ok.t"
	fi
else
	for d in "create --prefetch of another image's record: exit 1, both ids" \
		 "... says what to do, before asking the module" \
		 "create --prefetch with another chunk size: exit 1" \
		 "create --prefetch naming a chunk past the image: exit 1" \
		 "create --prefetch of a version-2 record: exit 1" \
		 "create --prefetch of a truncated record: exit 1" \
		 "create --prefetch of a damaged record: exit 1" \
		 "create --prefetch of a manifest: not a record file, exit 1" \
		 "a record file of the documented layout passes the checks"; do
		ktap_test_fail "$d (no manifest or image id to test with)"
	done
fi
expect_fail "create --prefetch of a missing record file: exit 1" \
	'cannot read record file' \
	pf "$W/nosuch.t"

expect_fail "create with a missing manifest: exit 1" \
	'cannot read manifest' \
	"$sb" create vm1 "$W/nosuch.m" --key-file "$W/key"

if [ -d /sys/module/snapblk ]; then
	for d in create ls info remove events status record hydrate; do
		ktap_test_skip "$d without the module (module is loaded here)"
	done
else
	expect_fail "create without the module: not loaded, exit 1" \
		'cannot create device vm1: the snapblk module is not loaded' \
		"$sb" create vm1 "$W/img.m" --key-file "$W/key"
	expect_fail "ls without the module: not loaded, exit 1" \
		'module is not loaded' "$sb" ls
	expect_fail "info without the module: not loaded, exit 1" \
		'module is not loaded' "$sb" --json info vm1
	expect_fail "remove without the module: not loaded, exit 1" \
		'module is not loaded' "$sb" remove vm1
	expect_fail "events without the module: not loaded, exit 1" \
		'module is not loaded' "$sb" events --count 1
	expect_fail "status without the module: not loaded, exit 1" \
		'cannot query the devices: the snapblk module is not loaded' \
		"$sb" status --prometheus
	expect_fail "record without the module: not loaded, exit 1" \
		'cannot record device vm1: the snapblk module is not loaded' \
		"$sb" record vm1 -o "$W/x.t"
	expect_fail "hydrate without the module: not loaded, exit 1" \
		'module is not loaded' "$sb" hydrate vm1
fi

# The udev rule that makes /dev/snapblk/NAME.
if [ -r "$rules" ] &&
   grep -q 'KERNEL!="snapblk\[0-9\]\*"' "$rules" &&
   grep -q 'SYMLINK+="snapblk/\$attr{snapblk/name}"' "$rules" &&
   ! grep -vE '^(#.*|[[:space:]]*|[A-Z]+(\{[^}]*\})?(==|!=|\+=|=)"[^"]*"(, *[A-Z]+(\{[^}]*\})?(==|!=|\+=|=)"[^"]*")*|LABEL="[a-z_]+")$' \
	"$rules" | grep -q .; then
	ktap_test_pass "udev rule links /dev/snapblk/NAME and parses"
else
	ktap_test_fail "udev rule links /dev/snapblk/NAME and parses"
fi

ktap_finished
