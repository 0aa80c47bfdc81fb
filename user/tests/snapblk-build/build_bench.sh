#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make bench-build`'s layered case (BENCH_QUICK=1: that case alone, a few
# seconds): it finishes, prints the table it keeps in bench/bench-build.txt,
# builds with --layer once create has it, reports the bytes the second
# image added as the growth of the store, a reuse figure that is a
# fraction of [B]'s chunks with the 95% goal's verdict, casync's rows for
# the same images, and leaves nothing behind but its report.
source "$(dirname "$0")/build_tap.inc"

tap_plan 8
top=$PWD
# A build directory of its own, with the tools of this one.
mkdir "$W/b"
ln -s "$(dirname "$SB")" "$W/b/bin"
rep=$W/b/bench/bench-build.txt

start=$(date +%s)
check "bench-build BENCH_QUICK=1 succeeds" \
	env BENCH_QUICK=1 "$top/user/bench/bench-build" "$W/b"
cp "$W/out" "$W/stdout"
took=$(($(date +%s) - start))
if [ "$took" -lt 60 ]; then
	ok "quick mode takes under a minute ($took s)"
else
	not_ok "quick mode takes under a minute ($took s)"
fi

if [ -f "$rep" ] && cmp -s "$rep" "$W/stdout"; then
	ok "the report file holds what was printed"
else
	not_ok "the report file holds what was printed"
	diag "$W/stdout"
fi

if "$SB" create --help 2>&1 | grep -q -- --layer; then
	want='; --layer B.tar, then --layer B.tar --layer A.tar$'
else
	want='; --from-tar (no --layer'
fi
d="builds with --layer, or says it fell back to --from-tar"
if grep -q "^bench-build: layered images: B = .*$want" "$W/stdout"; then
	ok "$d"
else
	not_ok "$d"
	diag "$W/stdout"
fi

# row NAME: "time image_MiB store_MiB added_MiB" of the table's row NAME
row() {
	sed -n "s/^bench-build: $1 *\([0-9.]* *[0-9.]* *[0-9.]* *[0-9.]*\)$/\1/p" \
		"$W/stdout"
}
read -r _ _ z1 a1 <<<"$(row 'snapblk-build \[B\]')"
read -r _ _ z2 a2 <<<"$(row 'snapblk-build \[B, A\]')"
# The empty store (its directory and lock file) counts for a few KiB.
if [ -n "${a2:-}" ] &&
   awk "BEGIN { d = $z1 - $a1; e = $z2 - $z1 - $a2;
		exit !(d > -0.02 && d < 0.02 && e > -0.02 && e < 0.02) }"; then
	ok "bytes added are the store's growth ([B] $a1, [B, A] $a2 MiB)"
else
	not_ok "bytes added are the store's growth"
	diag "$W/stdout"
fi

# reuse: "N of [B]'s M non-zero chunks in [B, A] (P%); goal >= 95%: V"
re="^bench-build: reuse: \([0-9]*\) of \[B\]'s \([0-9]*\) non-zero chunks"
re="$re in \[B, A\] (\([0-9.]*\)%); goal >= 95%: \(met\|missed\)$"
read -r n m p v <<<"$(sed -n "s/$re/\1 \2 \3 \4/p" "$W/stdout")"
if [ -n "${v:-}" ] && [ "$m" -gt 0 ] && [ "$n" -le "$m" ] &&
   awk "BEGIN { p = 100 * $n / $m; d = p - $p
		exit !(d > -0.01 && d < 0.01 && (p >= 95) == (\"$v\" == \"met\")) }"
then
	ok "reuse is a fraction of [B]'s chunks with its verdict ($n of $m)"
else
	not_ok "reuse is a fraction of [B]'s chunks with its verdict"
	diag "$W/stdout"
fi

if command -v casync >/dev/null; then
	read -r _ _ cz1 ca1 <<<"$(row 'casync make \[B\]')"
	read -r _ _ cz2 ca2 <<<"$(row 'casync make \[B, A\]')"
	re='^bench-build: bytes added by \[B, A\]: snapblk-build \([0-9]*\),'
	re="$re casync \([0-9]*\) .*"
	read -r xs xc <<<"$(sed -n "s/$re/\1 \2/p" "$W/stdout")"
	# the summary's bytes are the rows' MiB, and the second casync row's
	# added bytes the growth of casync's store
	# (rounding to 0.01 MiB can part the first row's two figures too)
	if [ -n "${ca2:-}" ] && [ -n "${xc:-}" ] &&
	   awk "BEGIN { d = $cz2 - $cz1 - $ca2; e = $xs / 1048576 - $a2
		f = $xc / 1048576 - $ca2; g = $cz1 - $ca1
		exit !(d > -0.02 && d < 0.02 && e > -0.01 && e < 0.01 &&
		       f > -0.01 && f < 0.01 && g > -0.02 && g < 0.02) }"; then
		ok "casync's rows for the same two images ($ca2 MiB added)"
	else
		not_ok "casync's rows for the same two images"
		diag "$W/stdout"
	fi
else
	skip "casync's rows for the same two images: casync not installed"
fi

left=$(cd "$W/b" && find . -mindepth 1 ! -path ./bin ! -path ./bench \
	! -path ./bench/bench-build.txt)
if [ -z "$left" ]; then
	ok "leaves nothing behind but its report"
else
	not_ok "leaves nothing behind but its report"
	echo "$left" | diag
fi
tap_done
