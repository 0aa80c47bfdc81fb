#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Reading OCI image layouts that umoci and skopeo write (no root, no
# network): the layers in order with their media types, choosing an image
# by ref or digest, gzip, zstd and Docker v2s2 copies, and the damage a
# layout can have (a flipped byte, a wrong size, a missing blob, another
# layout version), each refused naming what is wrong; and images built
# from them with create --from-oci, against --layer with the same blobs.
# sb_oci_open() is driven through build/tests/build_oci --print
# (build_oci.c).
source "$(dirname "$0")/build_tap.inc"

OCI=${SNAPBLK_BUILD:-$PWD/build}/tests/build_oci
for t in umoci skopeo zstd e2fsck debugfs; do
	if ! command -v "$t" >/dev/null; then
		echo "1..0 # SKIP $t is not installed (scripts/install-deps)"
		exit 4
	fi
done

if [ ! -x "$OCI" ]; then
	echo "Bail out! $OCI is not built (make hosttests)"
	exit 1
fi
tap_plan 52
cd "$W" || exit 1
export HOME=$W		# skopeo's policy and auth lookups stay in here
cat >policy.json <<'EOF'
{"default":[{"type":"insecureAcceptAnything"}]}
EOF
skopeo_copy() { skopeo --policy "$W/policy.json" copy -q "$@"; }

# layer_field N FIELD FILE: field (1 type, 2 digest, 3 size, 4 path) of
# layer N in the output of build_oci --print
layer_field() { awk -v n="$1" -v f="$2" '$1 == "layer" && $2 == n { print $(f + 2) }' "$3"; }

# A three-layer image: a file, a directory with a larger file, then a
# whiteout of the first file.
mkdir -p in/doc
echo hello >in/f1
head -c 200K /dev/urandom >in/doc/big
{
	umoci init --layout D &&
	umoci new --image D:base &&
	umoci insert --rootless --image D:base in/f1 /etc/f1 &&
	umoci insert --rootless --image D:base in/doc /usr/share/doc/x &&
	umoci insert --rootless --image D:base --whiteout /etc/f1
} >umoci.log 2>&1 || { diag umoci.log; exit 1; }

# ------------------------------------------------------------ the layers
check "a umoci layout opens by its ref" "$OCI" --print D:base
cp out base.out
if [ "$(grep -c '^layer ' base.out)" = 3 ] &&
   [ "$(awk '$1 == "layer" { print $3 }' base.out | sort -u)" = \
     application/vnd.oci.image.layer.v1.tar+gzip ]; then
	ok "three layers, each tar+gzip"
else
	not_ok "three layers, each tar+gzip"
	diag base.out
fi
l1=$(layer_field 1 4 base.out)
l2=$(layer_field 2 4 base.out)
l3=$(layer_field 3 4 base.out)
# umoci 0.4.7 (Debian 12) ends insert layers without the tar footer nor
# the last entry's padding (umoci issue 436, fixed by its PR 534): GNU tar
# lists them, then complains, hence 2>/dev/null.
if tar -tzf "$l1" 2>/dev/null | grep -x >/dev/null 'etc/f1' &&
   tar -tzf "$l2" 2>/dev/null | grep -x >/dev/null 'usr/share/doc/x/big' &&
   tar -tzf "$l3" 2>/dev/null | grep -x >/dev/null 'etc/\.wh\.f1'; then
	ok "layers lowest first: the file, the directory, the whiteout"
else
	not_ok "layers lowest first: the file, the directory, the whiteout"
	diag base.out
fi
bad=0
for n in 1 2 3; do
	p=$(layer_field $n 4 base.out)
	[ "$p" = "D/blobs/sha256/$(layer_field $n 2 base.out | cut -c8-)" ] || bad=1
	[ "$(stat -c %s "$p")" = "$(layer_field $n 3 base.out)" ] || bad=1
	[ "sha256:$(sha256sum <"$p" | cut -c1-64)" = "$(layer_field $n 2 base.out)" ] ||
		bad=1
done
[ $bad = 0 ] && ok "each layer's path is its blob, with its size and digest" ||
	not_ok "each layer's path is its blob, with its size and digest"
man=$(sed -n 's/^manifest //p' base.out)
cfg=$(sed -n 's/^config //p' base.out)
if grep -q "\"digest\":\"$man\"" D/index.json &&
   grep -q "\"config\":{[^}]*\"digest\":\"$cfg\"" "D/blobs/sha256/${man#sha256:}"; then
	ok "manifest and config digests are those of index.json and the manifest"
else
	not_ok "manifest and config digests are those of index.json and the manifest"
	diag base.out
fi

# ------------------------------------------------------- choosing images
check "a layout of one image opens without a ref" "$OCI" --print D
cmp -s out base.out && ok "... and gives the same image" ||
	not_ok "... and gives the same image"
check "an image is chosen by its manifest digest" "$OCI" --print "D:$man"
cmp -s out base.out && ok "... and gives the same image" ||
	not_ok "... and gives the same image"

umoci tag --image D:base other >>umoci.log 2>&1
expect_exit 1 "two images and no ref: refused" "$OCI" --print D
grep -q "holds 2 images" "$W/err" && grep -q "give one of the refs as D:REF: base, other" "$W/err" &&
	ok "... listing the refs" || { not_ok "... listing the refs"; diag "$W/err"; }
expect_exit 1 "an unknown ref: refused" "$OCI" --print D:nope
grep -q "no image 'nope'" "$W/err" && grep -q "give one of the refs: base, other" "$W/err" &&
	ok "... listing the refs" || { not_ok "... listing the refs"; diag "$W/err"; }
check "the other ref opens" "$OCI" --print D:other
cmp -s out base.out && ok "... the same image" || not_ok "... the same image"

# ---------------------------------------------------------- skopeo copies
layers() { awk '$1 == "layer" { print $2, $3 }' "$1"; }
skopeo_copy oci:D:base oci:D2:copy >>umoci.log 2>&1
check "skopeo's OCI copy opens" "$OCI" --print D2:copy
[ "$(awk '$1 == "layer" { print $4 }' out)" = "$(awk '$1 == "layer" { print $4 }' base.out)" ] &&
	ok "... the same three layers" || { not_ok "... the same three layers"; diag out; }

skopeo_copy --format v2s2 oci:D:base oci:D3:copy >>umoci.log 2>&1
check "skopeo's Docker v2s2 copy opens" "$OCI" --print D3:copy
if [ "$(layers out | awk '{ print $2 }' | sort -u)" = \
     application/vnd.docker.image.rootfs.diff.tar.gzip ] &&
   [ "$(grep -c '^layer ' out)" = 3 ]; then
	ok "... three layers of Docker's tar.gzip type"
else
	not_ok "... three layers of Docker's tar.gzip type"
	diag out
fi

skopeo_copy --dest-compress --dest-compress-format zstd \
	oci:D:base oci:D4:z >>umoci.log 2>&1
check "skopeo's zstd copy opens" "$OCI" --print D4:z
z3=$(layer_field 3 4 out)
if [ "$(layers out | awk '{ print $2 }' | sort -u)" = \
     application/vnd.oci.image.layer.v1.tar+zstd ] &&
   zstdcat "$z3" | tar -tf - 2>/dev/null | grep -x >/dev/null 'etc/\.wh\.f1'; then
	ok "... tar+zstd layers, the whiteout still last"
else
	not_ok "... tar+zstd layers, the whiteout still last"
	diag out
fi

# ----------------------------------------------------------------- damage
fresh() { rm -rf C && cp -r D C; }
fresh
d2=$(layer_field 2 2 base.out)
flip_bit "C/blobs/sha256/${d2#sha256:}" 100000
expect_exit 1 "a flipped byte in layer 2: refused" "$OCI" --print C:base
grep -q "layer 2 $d2 does not match its digest" "$W/err" &&
   grep -q "check the digest: the layout is damaged" "$W/err" &&
	ok "... naming the layer's digest" || { not_ok "... naming the layer's digest"; diag "$W/err"; }

fresh
flip_bit "C/blobs/sha256/${cfg#sha256:}" 10
expect_exit 1 "a flipped byte in the config: refused" "$OCI" --print C:base
grep -q "config $cfg does not match its digest" "$W/err" &&
	ok "... naming the config's digest" || { not_ok "... naming the config's digest"; diag "$W/err"; }

fresh
flip_bit "C/blobs/sha256/${man#sha256:}" 20
expect_exit 1 "a flipped byte in the manifest: refused" "$OCI" --print C:base
grep -q "manifest $man does not match its digest" "$W/err" &&
	ok "... naming the manifest's digest" || { not_ok "... naming the manifest's digest"; diag "$W/err"; }

fresh
d1=$(layer_field 1 2 base.out)
s1=$(layer_field 1 3 base.out)
echo x >>"C/blobs/sha256/${d1#sha256:}"
expect_exit 1 "a layer of the wrong size: refused" "$OCI" --print C:base
grep -q "layer 1 $d1 is $((s1 + 2)) bytes, its descriptor says $s1" "$W/err" &&
	ok "... giving both sizes" || { not_ok "... giving both sizes"; diag "$W/err"; }

fresh
rm "C/blobs/sha256/${d2#sha256:}"
expect_exit 1 "a missing layer blob: refused" "$OCI" --print C:base
grep -q "layer 2 $d2: C/blobs/sha256/${d2#sha256:}: No such file" "$W/err" &&
   grep -q "the layout is incomplete" "$W/err" &&
	ok "... naming the blob" || { not_ok "... naming the blob"; diag "$W/err"; }

fresh
echo '{"imageLayoutVersion":"2.0.0"}' >C/oci-layout
expect_exit 1 "image layout version 2.0.0: refused" "$OCI" --print C:base
grep -q "C: image layout version 2.0.0" "$W/err" &&
   grep -q "reads image layout version 1.0.0" "$W/err" &&
	ok "... saying which version is read" || { not_ok "... saying which version is read"; diag "$W/err"; }

mkdir -p plain/blobs
expect_exit 1 "a directory without oci-layout: refused" "$OCI" --print plain
grep -q "give the directory of an OCI image layout" "$W/err" &&
	ok "... saying what to give" || { not_ok "... saying what to give"; diag "$W/err"; }

# ------------------------------------------------------ building images
# snapblk-build create --from-oci end to end: a layout of four layers
# (a file, a directory, another file, a whiteout of the first) and a
# second image, the same after skopeo's copies, against the same layer
# blobs given with --layer, compressed or not.
"$SB" keygen -o key >/dev/null 2>&1
# img NAME ARGS...: create NAME.img and NAME.m from ARGS, the image ID
# then in ${id[NAME]}; same A B: both were made, with one image ID
declare -A id
img() {
	local n=$1
	shift
	"$SB" create "$@" --store store --key-file key -o "$n.m" \
		--image-out "$n.img" --json >"$n.json" || return 1
	id[$n]=$(json_field image_id "$n.json")
}
same() { [ -n "${id[$1]}" ] && [ "${id[$1]}" = "${id[$2]}" ]; }
fs() { debugfs -R "$2" "$1.img" 2>/dev/null; }
echo two >in/f2
echo other >in/o
{
	umoci init --layout E &&
	umoci new --image E:base &&
	umoci insert --rootless --image E:base in/f1 /etc/f1 &&
	umoci insert --rootless --image E:base in/doc /usr/share/doc/x &&
	umoci insert --rootless --image E:base in/f2 /etc/f2 &&
	umoci insert --rootless --image E:base --whiteout /etc/f1 &&
	umoci new --image E:other &&
	umoci insert --rootless --image E:other in/o /opt/o
} >>umoci.log 2>&1 || { diag umoci.log; exit 1; }
"$OCI" --print E:base >e.out

check "create --from-oci E:base (umoci, four layers, one a whiteout)" \
	img oci --from-oci E:base
if e2fsck -fn oci.img >fsck.out 2>&1 &&
   [ -z "$(fs oci "stat /etc/f1" | grep '^Inode')" ] &&
   [ "$(fs oci "cat /etc/f2")" = two ] &&
   [ "$(fs oci "cat /usr/share/doc/x/big" | md5sum)" = "$(md5sum <in/doc/big)" ]; then
	ok "... e2fsck clean, /etc/f1 whited out, /etc/f2 and the directory's file whole"
else
	not_ok "... e2fsck clean, /etc/f1 whited out, the other files whole"
	diag fsck.out
fi
skopeo_copy oci:E:base oci:E2:base >>umoci.log 2>&1
check "create --from-oci of skopeo's copy" img oci2 --from-oci E2:base
same oci2 oci &&
	ok "... the same image ID" || not_ok "... the same image ID"
check "create --from-oci of skopeo's zstd copy" img ociz --from-oci D4:z
check "... and of the layout it was copied from" img ocid --from-oci D:base
same ociz ocid &&
	ok "... the same image ID" || not_ok "... the same image ID"

set --
for n in 1 2 3 4; do
	p=$(layer_field $n 4 e.out)
	set -- "$@" --layer "$p"
	gzip -dc <"$p" >"l$n.tar" 2>/dev/null
done
check "create --layer with the four layer blobs" img blobs "$@"
same blobs oci &&
	ok "... the same image ID as --from-oci" ||
	not_ok "... the same image ID as --from-oci"
check "create --layer with the four layers decompressed (no tar end: umoci 436)" \
	img plain --layer l1.tar --layer l2.tar --layer l3.tar --layer l4.tar
same plain oci &&
	ok "... the same image ID as --from-oci" ||
	not_ok "... the same image ID as --from-oci"

check "create --from-oci E:other" img other --from-oci E:other
if [ "$(fs other "cat /opt/o")" = other ] &&
   [ -z "$(fs other "stat /etc/f2" | grep '^Inode')" ] &&
   [ "${id[other]}" != "${id[oci]}" ]; then
	ok "... D:REF chose the other image"
else
	not_ok "... D:REF chose the other image"
fi
rm -f noref.m noref.img
expect_exit 1 "create --from-oci E (two images, no ref): refused" \
	"$SB" create --from-oci E --store store --key-file key -o noref.m
grep -q "give one of the refs as E:REF: base, other" err && [ ! -e noref.m ] &&
	ok "... listing the refs, no manifest" ||
	{ not_ok "... listing the refs, no manifest"; diag err; }

rm -rf C && cp -r E C
d3=$(layer_field 3 2 e.out)
flip_bit "C/blobs/sha256/${d3#sha256:}" 60
rm -f bad.m bad.img
expect_exit 1 "create --from-oci with a damaged layer blob: exit 1" \
	"$SB" create --from-oci C:base --store store --key-file key \
	-o bad.m --image-out bad.img
grep -q "layer 3 $d3 does not match its digest" err && [ ! -e bad.m ] &&
   [ ! -e bad.img ] && ok "... naming the digest, nothing written" ||
	{ not_ok "... naming the digest, nothing written"; diag err; }

tap_done
