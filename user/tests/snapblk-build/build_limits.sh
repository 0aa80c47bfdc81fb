#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# What ext4 cannot hold is refused with the entry's path and exit 1
# before anything is written (not reported as a builder bug, no image
# left behind), and times outside 1970..2038 are stored as the kernel
# reads them.  Layers are made with python3's tarfile: no root needed.
source "$(dirname "$0")/build_tap.inc"

tap_plan 12
cd "$W" || exit 1
"$SB" keygen -o key 2>/dev/null

# mk TAR KIND: a one-layer tar holding the KIND of bad entry
mk() {
	python3 - "$1" "$2" <<'EOF'
import io, sys, tarfile
path, kind = sys.argv[1], sys.argv[2]
t = tarfile.open(path, "w", format=tarfile.PAX_FORMAT)
def add(name, typ=tarfile.REGTYPE, data=b"", **kw):
    i = tarfile.TarInfo(name)
    i.type = typ
    i.size = len(data) if typ == tarfile.REGTYPE else 0
    i.mtime = kw.pop("mtime", 1700000000)
    for k, v in kw.items():
        setattr(i, k, v)
    t.addfile(i, io.BytesIO(data) if typ == tarfile.REGTYPE else None)
if kind == "symlong":
    add("s", tarfile.SYMTYPE, linkname="x" * 5000)
elif kind == "sym4096":
    add("s", tarfile.SYMTYPE, linkname="x" * 4096)
elif kind == "symempty":
    add("s", tarfile.SYMTYPE, linkname="")
elif kind == "name":
    add("d/" + "n" * 300, data=b"hi")
elif kind == "xattr":
    i = tarfile.TarInfo("f")
    i.pax_headers = {"SCHILY.xattr.user.big": "v" * 5000}
    t.addfile(i, io.BytesIO(b""))
elif kind == "links":
    add("f", data=b"hi")
    for n in range(65001):
        add("l%d" % n, tarfile.LNKTYPE, linkname="f")
elif kind == "dev":
    add("dev/odd", tarfile.CHRTYPE, devmajor=5000, devminor=3)
elif kind == "lffile":
    add("lost+found", data=b"not a directory")
elif kind == "lffull":
    add("lost+found/", tarfile.DIRTYPE, mode=0o700)
    for n in range(2000):
        add("lost+found/#%06d" % n, data=b"x")
elif kind == "times":
    add("old", data=b"o", mtime=-1)
    add("new", data=b"n", mtime=3000000000)
t.close()
EOF
}

# refused DESC KIND PATTERN: exit 1, PATTERN in the message, no bug hint,
# no --image-out and no manifest left
refused() {
	local d=$1
	mk "$2.tar" "$2"
	"$SB" create --layer "$2.tar" --store store --key-file key -q \
		--image-out "$2.img" -o "$2.m" >"$W/out" 2>"$W/err"
	local rc=$?
	if [ "$rc" -eq 1 ] && grep -q -- "$3" "$W/err" &&
	   ! grep -q "bug" "$W/err" && [ ! -e "$2.img" ] && [ ! -e "$2.m" ]
	then
		ok "$d"
	else
		not_ok "$d (exit $rc)"
		diag "$W/err"
	fi
}

refused "a symlink target of 5000 bytes is refused, naming it" symlong \
	"cannot flatten /s: a symlink target of 5000 bytes"
refused "a symlink target of 4096 bytes is refused" sym4096 \
	"target of 4096 bytes"
refused "an empty symlink target is refused" symempty \
	"target of 0 bytes"
refused "a name of 300 bytes is refused" name "its name is 300 bytes"
refused "5000 bytes of extended attributes are refused" xattr \
	"cannot flatten /f: .* bytes of extended attributes"
refused "a file with 65002 names is refused" links "65002 hard links"
refused "device 5000:3 is refused, not mangled" dev \
	"cannot flatten /dev/odd: device number 5000:3"
refused "a /lost+found that is not a directory is refused" lffile \
	"/lost+found is not a directory"
refused "a /lost+found with more entries than its blocks is refused" \
	lffull "/lost+found holds more entries"

mk times.tar times
check "a layer with mtimes -1 and 3000000000 builds" \
	"$SB" create --layer times.tar --store store --key-file key -q \
	--image-out times.img -o times.m
if e2fsck -fn times.img >"$W/out" 2>&1; then
	ok "its image passes e2fsck -fn (no timestamp complaint)"
else
	not_ok "its image passes e2fsck -fn (no timestamp complaint)"
	diag "$W/out"
fi
old=$(debugfs -R "stat /old" times.img 2>/dev/null | sed -n 's/^ mtime: [^-]*-- //p')
new=$(debugfs -R "stat /new" times.img 2>/dev/null | sed -n 's/^ mtime: [^-]*-- //p')
if [[ $old == *1969* ]] && [[ $new == *2065* ]]; then
	ok "the mtimes read back as 1969 and 2065"
else
	not_ok "the mtimes read back as 1969 and 2065 (got '$old', '$new')"
fi
exit $((_fail > 0))
