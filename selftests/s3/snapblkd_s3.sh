#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# snapblkd with an S3 store, through the real kernel in the test VM,
# against Ceph's radosgw on a one-node cluster brought up on 127.0.0.1 by
# scripts/s3-server.  Asserts: an image whose chunks are objects of a
# bucket maps and reads back byte for byte, every chunk fetched with a
# SigV4-signed GET; the credentials can come from a shared credentials
# file and profile instead of the environment; a wrong secret, an unknown
# key and a missing bucket fail the reads with EIO at once (not at the
# deadline), each logged with the S3 error code and what to check; a
# chunk missing from the bucket is "not found".
source "${KTAP_HELPERS:?run through selftests/run_tests}"

top=$(cd "$(dirname "$0")/../.." && pwd)
bin=$top/build/bin
ko=${SNAPBLK_KO:-$top/build/$(uname -r)/snapblk.ko}
W=$(mktemp -d /tmp/snapblkd-s3.XXXXXX)
source "$(dirname "$0")/../lib/daemon.sh"
CS=65536
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

cleanup() {
	[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
	[ -n "$DEV" ] && "$bin/snapblk" remove img 2>/dev/null
	rmmod snapblk 2>/dev/null
	"$top/scripts/s3-server" down "$W/ceph" >/dev/null 2>&1
	rm -rf "$W"
}
trap cleanup EXIT

ktap_print_header
for p in ceph-mon ceph-osd radosgw; do
	if ! command -v "$p" >/dev/null; then
		ktap_set_plan 1
		ktap_test_skip "$p is not installed (make deps)"
		ktap_finished
		exit 0
	fi
done
ktap_set_plan 7

# put FILE KEY: upload FILE as object KEY of the bucket
put() {
	local sum
	sum=$(sha256sum "$1" | cut -d' ' -f1)
	curl -sS --max-time 120 -o /dev/null -w '%{http_code}' \
		--aws-sigv4 "aws:amz:$AWS_REGION:s3" \
		--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-H "x-amz-content-sha256: $sum" -T "$1" \
		"$S3_ENDPOINT/chunks/$2"
}
# read_fails_fast: one uncached chunk read fails, well before the deadline
read_fails_fast() {
	SECONDS=0
	! dd if="/dev/$DEV" of=/dev/null bs=$CS count=1 iflag=direct 2>/dev/null &&
		[ $SECONDS -lt 10 ]
}

mkdir -p "$W/src" "$W/store"
cp -a /usr/lib/python3.11/json "$W/src/"
head -c 1M /dev/urandom > "$W/src/random.bin"
"$bin/snapblk-build" keygen -o "$W/key" >/dev/null 2>&1 || ktap_exit_fail_msg "keygen"
# 16 MiB (the tree needs 8): the image is read whole twice; the
# builder's own size class would be 1 GiB of mostly ZERO chunks.
"$bin/snapblk-build" create --from-dir "$W/src" --store "$W/store" \
	--key-file "$W/key" --chunk-size $CS --fs-size 16M \
	--image-out "$W/image" -o "$W/m" --quiet ||
	ktap_exit_fail_msg "snapblk-build create"
SIZE=$(stat -c %s "$W/image")
NDATA=$(find "$W/store" -type f -name '[0-9a-f]*' | wc -l)

SECONDS=0
"$top/scripts/s3-server" up "$W/ceph" --bucket chunks > "$W/up.log" 2>&1 ||
	{ sed 's/^/# /' "$W/up.log"; ktap_exit_fail_msg "scripts/s3-server up failed"; }
echo "# radosgw up in ${SECONDS}s: $(tail -n 1 "$W/up.log")"
set -a
. "$W/ceph/env"
set +a

# 1: publish the store as objects prefix/ab/abcd... of the bucket
ok=0 bad=0
for f in $(cd "$W/store" && find . -type f -name '[0-9a-f]*' | sed 's|^\./||'); do
	code=$(put "$W/store/$f" "img1/$f")
	[ "$code" = 200 ] && ok=$((ok + 1)) || bad=$((bad + 1))
done
t "the $NDATA chunks are uploaded to the bucket ($ok 200s, $bad failed)" \
	'[ $ok = $NDATA ]'

# 2: through snapblkd and the kernel
fresh
start_daemon --store s3://chunks/img1 --s3-endpoint "$S3_ENDPOINT"
map
whole_ok; rc=$?
kill -USR1 "$DPID"; sleep 0.3
n=$(sed -n 's/.*stores: \([0-9]*\) chunks fetched.*/\1/p' "$W/d.log" | tail -n 1)
t "an image in an S3 bucket (radosgw) maps and reads back byte for byte (${n:-?} signed GETs)" \
	'[ $rc = 0 ] && [ "${n:-0}" = "$NDATA" ]'

# 3: credentials from a shared credentials file, a named profile
fresh
cat > "$W/credentials" <<EOF
[default]
aws_access_key_id = AKIAWRONGWRONGWRONG0
aws_secret_access_key = wrong

[ceph]
aws_access_key_id = $AWS_ACCESS_KEY_ID
aws_secret_access_key = $AWS_SECRET_ACCESS_KEY
EOF
chmod 600 "$W/credentials"
: > "$W/d.log"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
	AWS_SHARED_CREDENTIALS_FILE="$W/credentials" \
	"$bin/snapblkd" --store s3://chunks/img1 --s3-endpoint "$S3_ENDPOINT" \
	--aws-profile ceph >>"$W/d.log" 2>&1 &
DPID=$!
sleep 0.5
map && whole_ok; rc=$?
t "credentials from a shared credentials file, profile 'ceph'" '[ $rc = 0 ]'

# 4: a wrong secret
fresh
AWS_SECRET_ACCESS_KEY=0000000000000000000000000000000000000000 \
	start_daemon --store s3://chunks/img1 --s3-endpoint "$S3_ENDPOINT"
map
read_fails_fast; rc=$?
t "a wrong secret fails reads with EIO at once, logged with SignatureDoesNotMatch and what to check" \
	'[ $rc = 0 ] && grep -q "HTTP 403 SignatureDoesNotMatch (check AWS_ACCESS_KEY_ID" "$W/d.log"'

# 5: an unknown access key
fresh
AWS_ACCESS_KEY_ID=AKIANOSUCHKEYNOSUCH0 \
	start_daemon --store s3://chunks/img1 --s3-endpoint "$S3_ENDPOINT"
map
read_fails_fast; rc=$?
t "an unknown access key: EIO at once, logged with InvalidAccessKeyId" \
	'[ $rc = 0 ] && grep -q "HTTP 403 InvalidAccessKeyId" "$W/d.log"'

# 6: a bucket that does not exist
fresh
start_daemon --store s3://nosuchbucket/img1 --s3-endpoint "$S3_ENDPOINT"
map
read_fails_fast; rc=$?
t "a missing bucket: EIO at once, logged with NoSuchBucket and to check the URL" \
	'[ $rc = 0 ] && grep -q "NoSuchBucket (check the bucket in the store URL)" "$W/d.log"'

# 7: a prefix with nothing under it: each chunk is "not found"
fresh
start_daemon --store s3://chunks/empty --s3-endpoint "$S3_ENDPOINT"
map
read_fails_fast; rc=$?
stop_daemon
t "a chunk missing from the bucket is answered not found (NoSuchKey)" \
	'[ $rc = 0 ] && grep -q "HTTP 404 NoSuchKey" "$W/d.log" &&
	 grep -q "stopped: 0 fetched, [1-9][0-9]* missing" "$W/d.log"'

ktap_finished
