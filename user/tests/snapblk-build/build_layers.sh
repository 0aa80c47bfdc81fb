#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# snapblk-build create from container layers, end to end: images built by
# the real CLI from tar layers (--layer, lowest first), --from-tar and
# --from-dir, each checked with e2fsck -fn and debugfs.  The OCI rules
# (whiteouts, opaque directories, replaced files, hard links), what a
# non-root builder must keep (setuid root files, devices, file
# capabilities), compression and standard input giving the same image,
# layers that end without their tar padding (umoci 0.4.7) against layers
# that are cut, and a build interrupted by SIGTERM leaving nothing behind.
# Layers are made by python3's tarfile (mktar below), so no root is needed
# to give entries any owner, mode, device or xattr.
source "$(dirname "$0")/build_tap.inc"

for t in python3 e2fsck debugfs zstd setpriv; do
	if ! command -v "$t" >/dev/null; then
		echo "1..0 # SKIP $t is not installed"
		exit 4
	fi
done
tap_plan 43
cd "$W" || exit 1
export TMPDIR=$W/tmp
mkdir -p "$TMPDIR"
"$SB" keygen -o key >/dev/null 2>&1

# mktar OUT < SPEC: a pax tar of the entries SPEC lists, one a line:
#   d|f|h|s|c|b PATH MODE UID GID [ARG]
# d directory, f regular file (ARG its content, a newline added; none:
# empty), h hard
# link (ARG the target), s symlink (ARG the target), c/b device (ARG
# MAJOR,MINOR); "x NAME HEX" gives the next entry the xattr NAME.  Every
# mtime is 1600000000.
cat >mktar.py <<'EOF'
import io, sys, tarfile
kinds = {'d': tarfile.DIRTYPE, 'f': tarfile.REGTYPE, 'h': tarfile.LNKTYPE,
	 's': tarfile.SYMTYPE, 'c': tarfile.CHRTYPE, 'b': tarfile.BLKTYPE}
pax = {}
with tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT) as t:
	for line in sys.stdin:
		w = line.rstrip('\n').split(' ', 5)
		if w[0] == 'x':
			v = bytes.fromhex(w[2]).decode('utf-8', 'surrogateescape')
			pax['SCHILY.xattr.' + w[1]] = v
			continue
		ti = tarfile.TarInfo(w[1])
		ti.type = kinds[w[0]]
		ti.mode, ti.uid, ti.gid = int(w[2], 8), int(w[3]), int(w[4])
		ti.mtime = 1600000000
		ti.pax_headers = pax
		pax = {}
		data = None
		if w[0] == 'f':
			data = (w[5] + '\n').encode() if len(w) > 5 else b''
			ti.size = len(data)
		elif w[0] in 'hs':
			ti.linkname = w[5]
		elif w[0] in 'cb':
			ti.devmajor, ti.devminor = map(int, w[5].split(','))
		t.addfile(ti, io.BytesIO(data) if data else None)
EOF
mktar() { python3 "$W/mktar.py" "$1"; }

# build NAME ARGS...: create NAME.img and NAME.m from ARGS into store/;
# its JSON summary in NAME.json
build() {
	local n=$1
	shift
	"$SB" create "$@" --store "$W/store" --key-file "$W/key" \
		-o "$W/$n.m" --image-out "$W/$n.img" --json >"$W/$n.json"
}
image_id() { json_field image_id "$W/$1.json"; }
# same_id A B: A and B were built and have the same image ID
same_id() { [ -n "$(image_id "$1")" ] && [ "$(image_id "$1")" = "$(image_id "$2")" ]; }
dbg() { debugfs -R "$2" "$W/$1.img" 2>/dev/null; }
# names IMG DIR: the names in DIR, but . and .., one a line, sorted
names() {
	dbg "$1" "ls -p $2" | awk -F/ 'NF > 6 && $6 != "." && $6 != ".." { print $6 }' |
		sort
}
# ino IMG PATH, links IMG PATH, mode IMG PATH
ino() { dbg "$1" "stat $2" | sed -n 's/^Inode: \([0-9]*\).*/\1/p'; }
links() { dbg "$1" "stat $2" | sed -n 's/^Links: \([0-9]*\).*/\1/p'; }
mode() { dbg "$1" "stat $2" | sed -n 's/.*Mode: *\([0-7]*\).*/\1/p'; }
fsck_ok() { e2fsck -fn "$W/$1.img" >"$W/fsck.out" 2>&1; }
# same_img A B: A.img and B.img have the same size and bytes (cmp(1) that
# reads only where either has data: the images are 1 GiB, mostly holes)
cat >samefile.py <<'EOF'
import os, sys
def data(fd, size):
	out, off = [], 0
	while off < size:
		try:
			off = os.lseek(fd, off, os.SEEK_DATA)
		except OSError:
			break
		end = os.lseek(fd, off, os.SEEK_HOLE)
		out.append((off, end))
		off = end
	return out
fa, fb = (os.open(p, os.O_RDONLY) for p in sys.argv[1:3])
size = os.fstat(fa).st_size
if os.fstat(fb).st_size != size:
	sys.exit(1)
for off, end in sorted(data(fa, size) + data(fb, size)):
	while off < end:
		n = min(end - off, 1 << 20)
		if os.pread(fa, n, off) != os.pread(fb, n, off):
			sys.exit(1)
		off += n
EOF
same_img() { python3 "$W/samefile.py" "$W/$1.img" "$W/$2.img" 2>/dev/null; }

# -------------------------------------------------- the OCI layer rules
mktar L1.tar <<'EOF'
d etc 0755 0 0
f etc/x 0644 0 0 x from layer 1
f etc/keep 0644 0 0 kept
d opq 0755 0 0
f opq/old1 0644 0 0 old one
d opq/sub 0755 0 0
f opq/sub/old2 0644 0 0 old two
f rep 0644 0 0 old content
s sym 0777 0 0 etc/keep
EOF
mktar L2.tar <<'EOF'
f etc/.wh.x 0644 0 0
d opq 0750 0 0
f opq/.wh..wh..opq 0644 0 0
f opq/new 0644 0 0 new in layer 2
f rep 0600 1000 1000 replaced by layer 2
h hl 0644 0 0 etc/keep
f two 0644 0 0 two names
h two-link 0644 0 0 two
EOF
check "create --layer L1 --layer L2" build lay --layer L1.tar --layer L2.tar
fsck_ok lay && ok "e2fsck -fn: clean" || { not_ok "e2fsck -fn: clean"; diag fsck.out; }
if [ "$(names lay / | tr '\n' ' ')" = "etc hl lost+found opq rep sym two two-link " ] &&
   [ "$(names lay /etc | tr '\n' ' ')" = "keep " ] &&
   [ "$(names lay /opq | tr '\n' ' ')" = "new " ]; then
	ok "exactly the expected entries: .wh.x removed x, the opaque dir only its new file"
else
	not_ok "exactly the expected entries"
	{ names lay /; names lay /etc; names lay /opq; } | diag
fi
if [ "$(dbg lay "cat /rep")" = "replaced by layer 2" ] &&
   [ "$(mode lay /rep)" = 0600 ] &&
   dbg lay "stat /rep" | grep -q "User:  1000   Group:  1000" &&
   [ "$(dbg lay "cat /opq/new")" = "new in layer 2" ] &&
   [ "$(mode lay /opq)" = 0750 ] &&
   [ "$(dbg lay "cat /etc/keep")" = kept ]; then
	ok "the replaced file has layer 2's content, mode and owner"
else
	not_ok "the replaced file has layer 2's content, mode and owner"
	dbg lay "stat /rep" | diag
fi
if [ "$(ino lay /hl)" = "$(ino lay /etc/keep)" ] && [ "$(links lay /hl)" = 2 ] &&
   [ "$(ino lay /two)" = "$(ino lay /two-link)" ] && [ "$(links lay /two)" = 2 ] &&
   [ "$(dbg lay "cat /two-link")" = "two names" ] &&
   [ "$(dbg lay "stat /sym" | grep -c 'Fast link dest: "etc/keep"')" = 1 ]; then
	ok "hard links (to a lower layer's file and within the layer) share one inode, nlink 2"
else
	not_ok "hard links share one inode, nlink 2"
	{ dbg lay "stat /hl"; dbg lay "stat /etc/keep"; } | diag
fi

# --------------------------------------- privileged metadata, no privilege
mktar priv.tar <<'EOF'
d bin 0755 0 0
f bin/su 04755 0 0 setuid root
x security.capability 0100000200200000000000000000000000000000
f bin/ping 0755 0 0 ping
d dev 0755 0 0
c dev/null 0666 0 0 1,3
b dev/sda1 0660 0 6 8,1
EOF
if [ "$(id -u)" = 0 ]; then
	asuser() { setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }
else
	asuser() { "$@"; }
fi
mkdir -p nob/tmp
cp priv.tar nob/
chmod 711 "$W"
chmod 644 nob/priv.tar
[ "$(id -u)" = 0 ] && chown -R 65534:65534 nob
asuser "$SB" keygen -o nob/key >/dev/null 2>&1
check "a non-root builder (uid 65534) builds the layer" \
	asuser env TMPDIR="$W/nob/tmp" "$SB" create --layer nob/priv.tar \
	--store nob/store --key-file nob/key -o nob/p.m --image-out nob/p.img
mv nob/p.img priv.img 2>/dev/null
if [ "$(stat -c %u priv.img 2>/dev/null)" = "$(asuser id -u)" ] &&
   fsck_ok priv; then
	ok "... as that user (the image is its file), e2fsck clean"
else
	not_ok "... as that user (the image is its file), e2fsck clean"
	diag fsck.out
fi
if [ "$(mode priv /bin/su)" = 04755 ] &&
   dbg priv "stat /bin/su" | grep -q "User:     0   Group:     0"; then
	ok "the setuid root file keeps mode 04755 and uid 0"
else
	not_ok "the setuid root file keeps mode 04755 and uid 0"
	dbg priv "stat /bin/su" | diag
fi
if dbg priv "stat /dev/null" | grep -q "Type: character special" &&
   dbg priv "stat /dev/null" | grep -q "Device major/minor number: 01:03" &&
   dbg priv "stat /dev/sda1" | grep -q "Type: block special" &&
   dbg priv "stat /dev/sda1" | grep -q "Device major/minor number: 08:01" &&
   dbg priv "stat /dev/sda1" | grep -q "Group:     6"; then
	ok "the device nodes keep their type and numbers (1,3 and 8,1)"
else
	not_ok "the device nodes keep their type and numbers"
	dbg priv "stat /dev/null" | diag
fi
if dbg priv "ea_list /bin/ping" |
   grep -qx '  security.capability (20) = 01 00 00 02 00 20 00 00 00 00 00 00 00 00 00 00 00 00 00 00 '; then
	ok "the file keeps its security.capability xattr (cap_net_raw+ep)"
else
	not_ok "the file keeps its security.capability xattr"
	dbg priv "ea_list /bin/ping" | diag
fi

# ------------------------------------------------------------ compression
gzip -c L2.tar >L2.tar.gz
zstd -q -c L2.tar >L2.tar.zst
check "gzip layers" build gz --layer L1.tar --layer L2.tar.gz
check "zstd layers" build zst --layer L1.tar --layer L2.tar.zst
if same_id gz lay && same_id zst lay; then
	ok "gzip, zstd and plain layers give the same image ID"
else
	not_ok "gzip, zstd and plain layers give the same image ID"
fi

# --------------------------------------------------------- standard input
check "cat L2 | create --layer - reads standard input" \
	eval 'cat L2.tar.gz | build in --layer L1.tar --layer -'
same_id in lay && same_img in lay &&
	ok "... and gives the same image as the file" ||
	not_ok "... and gives the same image as the file"
check "--from-tar FILE" build tf --from-tar L1.tar
check "--from-tar - reads standard input" \
	eval 'cat L1.tar | build tin --from-tar -'
same_id tin tf && same_img tin tf &&
	ok "... and gives the same image as the file" ||
	not_ok "... and gives the same image as the file"
rm -f two.m two.img
expect_exit 2 "two '-' layers: refused" \
	"$SB" create --layer - --layer - --store store --key-file key \
	-o two.m --image-out two.img </dev/null
grep -q "standard input ('-') can be read once" err && [ ! -e two.m ] &&
	ok "... saying standard input is read once" ||
	{ not_ok "... saying standard input is read once"; diag err; }

# ----------------------------------------------- a directory against its tar
# A real tree (with a hard link, a fifo and a user xattr added), walked
# and archived.
cp -a /usr/share/perl5 tree
pm=$(cd tree && find . -type f -name '*.pm' | LC_ALL=C sort | head -1)
ln "tree/$pm" tree/hardlink
mkfifo tree/fifo
python3 -c 'import os; os.setxattr("tree/hardlink", "user.snapblk", b"test")'
check "--from-dir of a copy of /usr/share/perl5" build dir --from-dir tree
check "--from-tar - of its tar --xattrs --numeric-owner -C D -cf - ." \
	eval 'tar --xattrs --numeric-owner -C tree -cf - . |
	      build dirtar --from-tar -'
if same_img dir dirtar && same_id dir dirtar; then
	ok "... the identical image (--image-out compared byte by byte)"
else
	not_ok "... the identical image (--image-out compared byte by byte)"
	cmp dir.img dirtar.img 2>&1 | diag
fi
fsck_ok dir && [ "$(dbg dir "cat /${pm#./}" | md5sum)" = \
		 "$(md5sum <"tree/$pm")" ] && [ "$(links dir /hardlink)" = 2 ] &&
   dbg dir "ea_list /hardlink" | grep -q 'user.snapblk (4) = "test"' &&
	ok "e2fsck clean, a file's content as on disk, its hard link and xattr" ||
	{ not_ok "e2fsck clean, a file's content as on disk, its hard link and xattr"; diag fsck.out; }

# --------------------------------- layers without their tar end (umoci 436)
# A layer whose last entry's data is complete but that has neither that
# record's padding nor the end-of-archive blocks, as umoci 0.4.7 insert
# writes them, against layers cut one byte into that data and in the
# middle of it.
cat >cut.py <<'EOF'
import io, sys, tarfile
big = bytes(range(256)) * 1000 + b'xyz'
small = b'abc'
b = io.BytesIO()
with tarfile.open(fileobj=b, mode='w', format=tarfile.PAX_FORMAT) as t:
	for name, data in (('a', b'hello\n'), ('big', big)):
		ti = tarfile.TarInfo(name)
		ti.size, ti.mode, ti.mtime = len(data), 0o644, 1600000000
		t.addfile(ti, io.BytesIO(data))
full = b.getvalue()
end = 1536 + len(big)		# headers of a and big, a's data and padding
open('full.tar', 'wb').write(full)
open('unpadded.tar', 'wb').write(full[:end])
open('cut1.tar', 'wb').write(full[:end - 1])
open('cutmid.tar', 'wb').write(full[:end - 100000])
open('cuthdr.tar', 'wb').write(full[:1500])
b = io.BytesIO()
with tarfile.open(fileobj=b, mode='w', format=tarfile.PAX_FORMAT) as t:
	ti = tarfile.TarInfo('etc/small')
	ti.size, ti.mode, ti.mtime = len(small), 0o644, 1600000000
	t.addfile(ti, io.BytesIO(small))
open('small-unpadded.tar', 'wb').write(b.getvalue()[:512 + len(small)])
EOF
python3 cut.py
gzip -k unpadded.tar cut1.tar
check "a complete layer" build full --layer full.tar
check "the same layer without its last padding and end blocks" \
	build unpad --layer unpadded.tar
same_img full unpad && same_id full unpad &&
	ok "... gives the identical image" || not_ok "... gives the identical image"
check "... and gzip compressed" build unpadgz --layer unpadded.tar.gz
same_id unpadgz full &&
	ok "... the same image ID" || not_ok "... the same image ID"
check "an unpadded layer of a 3-byte file under an unpadded layer" \
	build unpad2 --layer small-unpadded.tar --layer unpadded.tar.gz
[ "$(dbg unpad2 "cat /etc/small")" = abc ] &&
	[ "$(dbg unpad2 "cat /big" | md5sum)" = "$(dbg full "cat /big" | md5sum)" ] &&
	fsck_ok unpad2 && ok "... both files whole, e2fsck clean" ||
	not_ok "... both files whole, e2fsck clean"
for c in cut1.tar cut1.tar.gz cutmid.tar cuthdr.tar; do
	rm -f cut.img cut.m
	expect_exit 1 "a layer cut inside an entry ($c): refused" \
		"$SB" create --layer L1.tar --layer "$c" --store store \
		--key-file key -o cut.m --image-out cut.img
	grep -q "cannot read layer $c: Truncated" err && [ ! -e cut.img ] &&
		! grep -q multibyte err &&
		[ ! -e cut.m ] && ok "... naming the layer, nothing written" ||
		{ not_ok "... naming the layer, nothing written"; diag err; }
done

# ------------------------------------------------------ interrupted builds
# SIGTERM to create --layer BIG.tar (a tar of /usr/lib/python3.11 and
# /usr/share/perl5, about 110 MB) while it flattens (as soon as its
# --image-out exists) and while it stores the flattened image's chunks
# (as soon as the first one is in the store): killed by the signal, it
# leaves no file in TMPDIR, no --image-out, no .tmp-* in the store and no
# -o manifest.
tar -cf big.tar -C /usr/lib python3.11 -C /usr/share perl5 2>/dev/null
mkdir -p tmpk
# interrupt WHEN: WHEN a shell test that is true once the phase began
interrupt() {
	local pid i=0
	rm -rf tmpk/* sk k.m k.img
	"$SB" create --layer big.tar --store sk --key-file key -o k.m \
		--image-out k.img --tmpdir tmpk -q 2>k.err &
	pid=$!
	while ! eval "$1" && [ $i -lt 3000 ] && kill -0 $pid 2>/dev/null; do
		sleep 0.001
		i=$((i + 1))
	done
	kill -TERM $pid 2>/dev/null
	wait $pid
}
left_behind() {
	ls -A tmpk
	ls k.img k.m 2>/dev/null
	find sk -name '.tmp-*' 2>/dev/null
}
for phase in flattening storing; do
	case $phase in
	flattening) interrupt '[ -e k.img ]' ;;
	storing) interrupt '[ -n "$(find sk -mindepth 2 -type f -print -quit 2>/dev/null)" ]' ;;
	esac
	rc=$?
	[ $rc = 143 ] && ok "SIGTERM while create --layer BIG.tar is $phase: killed by it" ||
		{ not_ok "SIGTERM while create --layer BIG.tar is $phase: killed by it (exit $rc)"; diag k.err; }
	if [ -z "$(left_behind)" ]; then
		ok "... nothing left in TMPDIR, no --image-out, no -o, no .tmp-* in the store"
	else
		not_ok "... nothing left in TMPDIR, no --image-out, no -o, no .tmp-* in the store"
		left_behind | diag
	fi
done

tap_done
