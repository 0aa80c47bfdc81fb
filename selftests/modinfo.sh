#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# modinfo of snapblk.ko: license, description, version, the generic netlink
# alias that lets the family auto-load the module, a vermagic for the
# running kernel, and a description for every parameter, each of which is
# documented in Documentation/ABI/testing/sysfs-module-snapblk.
source "${KTAP_HELPERS:?run through selftests/run_tests}"

top=$(cd "$(dirname "$0")/.." && pwd)
ko=${SNAPBLK_KO:-$top/build/$(uname -r)/snapblk.ko}
abi=$top/Documentation/ABI/testing/sysfs-module-snapblk

ktap_print_header
ktap_set_plan 6

field() { modinfo -F "$1" "$ko"; }

[ "$(field license)" = GPL ] && ktap_test_pass "license is GPL" ||
	ktap_test_fail "license is GPL (got '$(field license)')"

[ -n "$(field description)" ] && ktap_test_pass "has a description" ||
	ktap_test_fail "has a description"

v=$(field version)
grep -q "^#define SNAPBLK_VERSION \"$v\"" "$top/kmod/snapblk.h" &&
	ktap_test_pass "version $v matches kmod/snapblk.h" ||
	ktap_test_fail "version '$v' matches kmod/snapblk.h"

field alias | grep -qx 'net-pf-16-proto-16-family-snapblk' &&
	ktap_test_pass "generic netlink family alias" ||
	ktap_test_fail "generic netlink family alias (got: $(field alias))"

set -- $(field vermagic)
[ "$1" = "$(uname -r)" ] && ktap_test_pass "vermagic is $(uname -r)" ||
	ktap_test_fail "vermagic '$1' is not $(uname -r)"

# modinfo prints "name:description (type)", or "name:type" when the
# parameter has no MODULE_PARM_DESC.
ok=1
parms=$(field parm) || ok=0
while IFS= read -r p; do
	[ -n "$p" ] || continue
	name=${p%%:*}
	rest=${p#*:}
	if ! [[ "$rest" =~ ^.+\ \([a-z]+\)$ ]]; then
		ktap_print_msg "parameter $name has no description"
		ok=0
	fi
	if ! grep -q "^What:.*/sys/module/snapblk/parameters/$name\$" "$abi"; then
		ktap_print_msg "parameter $name is not documented in $abi"
		ok=0
	fi
done <<< "$parms"
[ $ok = 1 ] && ktap_test_pass "every parameter described and documented" ||
	ktap_test_fail "every parameter described and documented"

ktap_finished
