#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Flattening is deterministic: the same tree, copied to different places
# (and file system types), built at different times through different
# temporary directories, gives byte-identical ext4 images, manifests and
# stores; so does a tar archive of it.  The images pass e2fsck.
source "$(dirname "$0")/build_tap.inc"

tap_plan 17
cd "$W" || exit 1
"$SB" keygen -o key 2>/dev/null

# A small tree with most kinds of entry.
mk_tree() {
	local t=$1
	mkdir -p "$t/etc/conf.d" "$t/usr/bin" "$t/usr/share/doc/a b" \
		"$t/var/empty" "$t/private"
	for i in $(seq 1 60); do
		echo "line $i of a small file" >"$t/usr/share/doc/file$i.txt"
	done
	head -c 2500000 /dev/urandom >"$t/usr/bin/big"
	head -c 5000 /dev/urandom >"$t/usr/bin/tool"
	chmod 4755 "$t/usr/bin/tool"
	echo 'name = "ünïcødé"' >"$t/etc/conf.d/ünïcødé.conf"
	echo spaced >"$t/usr/share/doc/a b/c d"
	: >"$t/etc/empty"
	truncate -s 3M "$t/var/sparse"
	echo tail >>"$t/var/sparse"
	ln -s ../usr/bin/tool "$t/etc/link"
	ln -s "$(printf 'x%.0s' $(seq 1 100))" "$t/etc/longlink"
	ln "$t/usr/bin/tool" "$t/usr/bin/tool-hardlink"
	mkfifo "$t/var/fifo"
	chmod 0700 "$t/private"
	find "$t" -exec touch -h -d @1600000000 {} +
}
mk_tree src

# Copy 1: cp -a.  Copy 2, a second later, through tar, on tmpfs if there
# is one (another file system type, another readdir order).
mkdir -p A B tmp1 tmp2
cp -a src A/tree
sleep 1
dst=B
[ -d /dev/shm ] && [ -w /dev/shm ] && dst=$(mktemp -d /dev/shm/snapblk-test.XXXXXX)
trap 'rm -rf "$W" ${dst#B}' EXIT
mkdir -p "$dst/deeper"
tar -C src -cf - . | tar -C "$dst/deeper" -xpf -
mv "$dst/deeper" "$dst/tree"
# Touch atime and ctime of the second copy only.
cat "$dst"/tree/usr/share/doc/* >/dev/null 2>&1
chmod 4755 "$dst/tree/usr/bin/tool"

mkdir s1 s2 s3 s4
TMPDIR=$W/tmp1 check "build from the first copy" \
	"$SB" create --from-dir A/tree --store s1 --key-file key -o m1 \
	--image-out i1 -q
sleep 1
TMPDIR=$W/tmp2 check "build from the second copy, later" \
	"$SB" create --from-dir "$dst/tree" --store s2 --key-file key -o m2 \
	--image-out i2 -q
cmp -s i1 i2 && ok "ext4 images are byte-identical" ||
	not_ok "ext4 images are byte-identical"
cmp -s m1 m2 && ok "manifests are byte-identical" ||
	not_ok "manifests are byte-identical"
diff -r s1 s2 >/dev/null && ok "stores are identical" ||
	not_ok "stores are identical"
# The first copy again, now that its atimes have changed.
cat A/tree/usr/share/doc/*.txt >/dev/null
TMPDIR=$W/tmp2 "$SB" create --from-dir A/tree --store s3 --key-file key \
	-o m0 -q
cmp -s m1 m0 && ok "the same directory built again gives the same manifest" ||
	not_ok "the same directory built again gives the same manifest"
[ -z "$(find tmp1 tmp2 -mindepth 1)" ] && ok "no temporary files left behind" ||
	not_ok "no temporary files left behind"

if e2fsck -fn i1 >"$W/out" 2>&1; then
	ok "the image passes e2fsck -fn"
else
	not_ok "the image passes e2fsck -fn"
	diag "$W/out"
fi
if debugfs -R "cat /usr/bin/big" i1 2>/dev/null | cmp -s - src/usr/bin/big &&
   [ "$(debugfs -R 'stat /etc/link' i1 2>/dev/null |
	 sed -n 's/^Fast link dest: "\(.*\)"/\1/p')" = ../usr/bin/tool ] &&
   debugfs -R 'stat /usr/bin/tool' i1 2>/dev/null | grep -q 'Mode:  04755' &&
   debugfs -R 'stat /usr/bin/tool' i1 2>/dev/null | grep -q 'Links: 2'; then
	ok "contents, symlinks, modes and hard links survive"
else
	not_ok "contents, symlinks, modes and hard links survive"
fi
if debugfs -R 'stat /usr/bin/big' i1 2>/dev/null |
   grep -q 'mtime: 0x5f5e1000' &&
   debugfs -R 'stat /usr/bin/big' i1 2>/dev/null |
   grep -q 'atime: 0x3b9aca00'; then
	ok "mtime kept, atime set to the epoch"
else
	not_ok "mtime kept, atime set to the epoch"
fi

# Tar input.
tar -C src -cf tree.tar .
rm -rf s3 && mkdir s3
check "build from a tar archive" \
	"$SB" create --from-tar tree.tar --store s3 --key-file key -o m3 -q
"$SB" create --from-tar tree.tar --store s4 --key-file key -o m4 -q
cmp -s m3 m4 && diff -r s3 s4 >/dev/null &&
	ok "two tar builds are identical" || not_ok "two tar builds are identical"
cmp -s m1 m3 && ok "the tar build equals the directory build" ||
	not_ok "the tar build equals the directory build"

# SOURCE_DATE_EPOCH and --owner change the bytes, deterministically.
SOURCE_DATE_EPOCH=1234567890 "$SB" create --from-dir A/tree --store s3 \
	--key-file key -o m5 --image-out i5 -q
if ! cmp -s m1 m5 && debugfs -R 'stat /etc' i5 2>/dev/null |
   grep -q 'ctime: 0x499602d2'; then
	ok "SOURCE_DATE_EPOCH sets the times"
else
	not_ok "SOURCE_DATE_EPOCH sets the times"
fi
"$SB" create --from-dir A/tree --store s3 --key-file key -o m6 \
	--image-out i6 --owner 1234:5678 -q
if debugfs -R 'stat /usr/bin/big' i6 2>/dev/null |
   grep -q 'User:  1234   Group:  5678' && e2fsck -fn i6 >/dev/null 2>&1; then
	ok "--owner sets every owner"
else
	not_ok "--owner sets every owner"
fi

expect_exit 1 "a file system too small is refused" \
	"$SB" create --from-dir A/tree --store s3 --key-file key -o m7 \
	--fs-size 2M
grep -q -- "--fs-size" err && ok "too small hint names --fs-size" ||
	{ not_ok "too small hint names --fs-size"; diag err; }

tap_done
