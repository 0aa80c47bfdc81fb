#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Documentation/format.md is precise enough for an independent reader:
# build_reference.py, written from it alone in Python, reproduces the
# test vectors, reads snapblk-build's manifests and checks its stores.
# Skipped when Python's 'cryptography' package is missing.
source "$(dirname "$0")/build_tap.inc"

tap_plan 4
ref=$PWD/user/tests/snapblk-build/build_reference.py
doc=$PWD/Documentation/format.md
if ! python3 -c 'import cryptography' 2>/dev/null; then
	for t in "vectors match format.md" "reads a manifest" \
		 "same image ID and counts" "checks the store"; do
		skip "reference reader: $t (python3-cryptography missing)"
	done
	tap_done
fi

# Every vector the reference computes appears in format.md.
python3 "$ref" vectors >"$W/vectors"
missing=0
while read -r name value; do
	grep -q "$value" "$doc" || { echo "# $name $value not in format.md"; missing=1; }
done <"$W/vectors"
[ $missing = 0 ] && ok "reference reader: vectors match format.md" ||
	not_ok "reference reader: vectors match format.md"

cd "$W" || exit 1
mkdir store
"$SB" keygen -o key 2>/dev/null
{ head -c 700K /dev/urandom; head -c 600K /dev/zero; head -c 1M /dev/urandom; } >img
"$SB" create img --store store --key-file key -o img.m --json >create.json
check "reference reader: reads a manifest" python3 "$ref" read img.m key
if grep -q "image_id $(json_field image_id create.json)" out &&
   grep -q "chunks $(json_field chunks create.json)" out &&
   grep -q "zero $(json_field zero create.json)" out; then
	ok "reference reader: same image ID and counts"
else
	not_ok "reference reader: same image ID and counts"
	diag out create.json
fi
check "reference reader: checks the store" python3 "$ref" read img.m key store
tap_done
