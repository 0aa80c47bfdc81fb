#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The snapblk CLI on the build machine (module never loaded here): help,
# usage errors with exit status 2, version without a module, valid JSON.
source "${KTAP_HELPERS:?run through make check}"
sb=${SNAPBLK_BIN:?}/snapblk

ktap_print_header
ktap_set_plan 6

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

ktap_finished
