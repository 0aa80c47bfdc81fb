#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The dedup-stable layout's goals (issue 14; Documentation/format.md,
# "Flattening"), on real trees of this machine, a large and a small one:
#  - [B] then [B, A]: at least 95% of [B]'s non-zero chunks reused, and
#    at most 2 not reused whatever the size (the chunk with the superblock
#    and group descriptors, and the root directory's);
#  - [B, A1] and [B, A2]: the same of [B]'s chunks found in both;
#  - one small file added, removed or edited, first or last in sort order
#    or in a subdirectory: at most 4 new chunks beyond the chunks that
#    hold (or, removed, held) the file's data.
# Every figure is printed, so a regression shows by how much.
source "$(dirname "$0")/build_tap.inc"

LARGE_B=/usr/lib/python3.11
LARGE_A1=/usr/share/perl5
LARGE_A2=/usr/lib/python3.11/email
SMALL_B=/usr/share/perl5
SMALL_A1=/usr/lib/python3.11/json
SMALL_A2=/usr/lib/python3.11/email
EDITS="add-first add-last add-subdir remove-first remove-last edit-first
       edit-last"
CHUNK_BLOCKS=128	# 512 KiB chunks of 4 KiB blocks

tap_plan $((2 * (4 + 7)))
cd "$W" || exit 1
"$SB" keygen -o key 2>/dev/null
mkdir store

# layer DIR TAR: a tar layer of DIR, named by DIR's last component
layer() {
	tar -C "$(dirname "$1")" --numeric-owner --sort=name -cf "$2" \
		"$(basename "$1")"
}

build() {
	"$SB" create "$@" --store store --key-file key -q --force
}

# chunks M: "index address" of M's non-zero chunks
chunks() {
	"$SB" inspect "$1" --key-file key --json --chunks |
		grep -o '"index":[0-9]*,"zero":false,"address":"[0-9a-f]*"' |
		sed 's/"index":\([0-9]*\),"zero":false,"address":"\(.*\)"/\1 \2/'
}

addrs() { chunks "$1" | cut -d' ' -f2 | sort -u; }

# shared M1 M2 [M3]: "N of T": M1's distinct non-zero chunks in M2 (and M3)
shared() {
	addrs "$1" >"$W/a1"
	addrs "$2" >"$W/a2"
	if [ -n "${3:-}" ]; then
		addrs "$3" >"$W/a3"
		comm -12 "$W/a2" "$W/a3" >"$W/a23"
		mv "$W/a23" "$W/a2"
	fi
	echo "$(comm -12 "$W/a1" "$W/a2" | wc -l) of $(wc -l <"$W/a1")"
}

# reused PCT "N of T" DESC: N/T at least PCT%, or T - N at most 2
reused() {
	local n t
	read -r n _ t <<<"$2"
	if [ "$t" -gt 0 ] && { [ $((100 * n)) -ge $(($1 * t)) ] ||
	   [ $((t - n)) -le 2 ]; }; then
		ok "$3: $2 ($((100 * n / t))%, $((t - n)) not reused)"
	else
		not_ok "$3: $2 (goal $1%, or at most 2 not reused)"
	fi
}

# own IMAGE PATH: the chunks holding PATH's data in IMAGE
own() {
	debugfs -R "blocks /$2" "$1" 2>/dev/null | tr ' ' '\n' |
		awk -v cb=$CHUNK_BLOCKS 'NF { print int($1 / cb) }' | sort -u
}

# beyond OLD.m NEW.m OWN-FILE: new chunks of NEW whose index is not in OWN
beyond() {
	addrs "$1" >"$W/old"
	chunks "$2" | sort -k2 | join -1 2 -2 1 -v 1 - "$W/old" |
		awk '{ print $2 }' | sort -u | comm -23 - "$3" | wc -l
}

# edit DIR KIND: change the tree DIR; prints the path (relative to DIR)
# of the file concerned
edit() {
	local d=$1 f
	case $2 in
	add-first) f=$(basename "$d")/000_new.py ;;
	add-last) f=$(basename "$d")/zzzz_new.py ;;
	add-subdir)
		f=$(cd "$(dirname "$d")" && find "$(basename "$d")" \
			-mindepth 2 -type f | LC_ALL=C sort | sed -n '1~7p' |
			tail -1)
		f=$(dirname "$f")/mmm_new.py ;;
	remove-first | edit-first)
		f=$(cd "$(dirname "$d")" && find "$(basename "$d")" -type f \
			-size -64k | LC_ALL=C sort | head -1) ;;
	remove-last | edit-last)
		f=$(cd "$(dirname "$d")" && find "$(basename "$d")" -type f \
			-size -64k | LC_ALL=C sort | tail -1) ;;
	esac
	case $2 in
	add-*) head -c 20000 "$LARGE_B/os.py" >"$(dirname "$d")/$f" ;;
	remove-*) rm "$(dirname "$d")/$f" ;;
	edit-*) echo "# edited" >>"$(dirname "$d")/$f" ;;
	esac
	echo "$f"
}

run() {
	local size=$1 b=$2 a1=$3 a2=$4 pct=$5 m n e f img

	layer "$b" B.tar
	layer "$a1" A1.tar
	layer "$a2" A2.tar
	build --layer B.tar -o b.m --image-out b.img
	build --layer B.tar --layer A1.tar -o ba1.m --image-out ba1.img
	build --layer B.tar --layer A2.tar -o ba2.m

	reused "$pct" "$(shared b.m ba1.m)" \
		"$size: [B] then [B, A] reuses B's non-zero chunks"
	reused "$pct" "$(shared b.m ba1.m ba2.m)" \
		"$size: [B, A1] and [B, A2] both hold B's chunks"
	if e2fsck -fn ba1.img >"$W/fsck" 2>&1; then
		ok "$size: the layered image passes e2fsck -fn"
	else
		not_ok "$size: the layered image passes e2fsck -fn"
		diag "$W/fsck"
	fi
	if "$SB" inspect ba1.m --key-file key --json | grep -q '"layout":1,'; then
		ok "$size: the manifest records layout 1 (dedup-stable)"
	else
		not_ok "$size: the manifest records layout 1 (dedup-stable)"
	fi

	# Edits of a copy of B, built from the directory both times.
	rm -rf t0 && mkdir t0 && cp -a "$b" t0/
	build --from-dir t0 -o base.m --image-out base.img
	for e in $EDITS; do
		rm -rf t1 && mkdir t1 && cp -a "$b" t1/
		f=$(edit "t1/$(basename "$b")" "$e")
		build --from-dir t1 -o edit.m --image-out edit.img
		case $e in
		remove-*) img=base.img ;;
		*) img=edit.img ;;
		esac
		own "$img" "$f" >"$W/own"
		n=$(beyond base.m edit.m "$W/own")
		m=$(wc -l <"$W/own")
		if [ "$n" -le 4 ] && [ "$m" -ge 1 ]; then
			ok "$size: $e ($f): $n new chunks beyond its own $m"
		else
			not_ok "$size: $e ($f): $n new chunks beyond its own $m" \
				"(goal at most 4)"
		fi
	done
}

# The percentage is the goal on the large tree; on the small one (a dozen
# chunks) the two fixed chunks are already more than 5%.
run large "$LARGE_B" "$LARGE_A1" "$LARGE_A2" 95
rm -f ./*.m ./*.img ./*.tar
run small "$SMALL_B" "$SMALL_A1" "$SMALL_A2" 100
exit $((_fail > 0))
