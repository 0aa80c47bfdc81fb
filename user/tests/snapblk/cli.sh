#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The snapblk CLI on the build machine (module never loaded here): help,
# usage errors with exit status 2, version without a module, valid JSON,
# create's manifest checks (done before the module is asked), and what
# every device command says without the module.
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

ktap_print_header
ktap_set_plan 32

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
for c in create remove ls info status events version help; do
	echo "$out" | grep -qE "^  $c( |\$)" || missing="$missing $c"
done
[ -z "$missing" ] && ktap_test_pass "--help lists every command" ||
	ktap_test_fail "--help lists every command (missing:$missing)"

"$sb" help create | grep -q -- '--key-file' &&
	ktap_test_pass "help create names its options" ||
	ktap_test_fail "help create names its options"

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
expect_exit 2 "events --count 0: exit 2" "$sb" events --count 0
expect_exit 2 "events with an argument: exit 2" "$sb" events extra

# A small image sealed with one key, opened with another: the manifest is
# unsealed before the module is asked, so this needs no module.
(cd "$W" && head -c 200K /dev/urandom >img && mkdir store &&
 "$sbb" keygen -o key && "$sbb" keygen -o other &&
 "$sbb" create img --store store --key-file key -c 64K -o img.m -q) \
	>/dev/null 2>&1
if [ -s "$W/img.m" ]; then
	expect_fail "create with a wrong key: authentication failed, exit 1" \
		'img\.m: manifest authentication failed: wrong key or corrupted manifest' \
		"$sb" create vm1 "$W/img.m" --key-file "$W/other"
	grep -q -- '--key-file' "$W/err" &&
		ktap_test_pass "create with a wrong key: the hint names --key-file" ||
		ktap_test_fail "create with a wrong key: the hint names --key-file"
	expect_fail "create with a damaged manifest: exit 1" \
		'not a snapblk manifest' \
		"$sb" create vm1 "$W/key" --key-file "$W/key"
else
	for d in "create with a wrong key: authentication failed, exit 1" \
		 "create with a wrong key: the hint names --key-file" \
		 "create with a damaged manifest: exit 1"; do
		ktap_test_fail "$d (snapblk-build could not make a manifest)"
	done
fi
expect_fail "create with a missing manifest: exit 1" \
	'cannot read manifest' \
	"$sb" create vm1 "$W/nosuch.m" --key-file "$W/key"

if [ -d /sys/module/snapblk ]; then
	for d in create ls info remove events; do
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
