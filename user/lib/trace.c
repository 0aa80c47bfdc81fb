// SPDX-License-Identifier: GPL-2.0
/*
 * Record files (trace.h has the layout): encode, decode, and the two
 * file operations the snapblk tool needs.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "file.h"
#include "trace.h"

/* The version-1 header as it is on disk. */
struct trace_header {
	uint8_t magic[SB_TRACE_MAGIC_LEN];	/* SB_TRACE_MAGIC */
	__le32 version;				/* SB_TRACE_VERSION */
	__le32 header_len;			/* offset of the first index */
	uint8_t image_id[SNAPBLK_IMAGE_ID_LEN];
	__le32 chunk_size;
	__le32 count;
};

_Static_assert(sizeof(struct trace_header) == SB_TRACE_HEADER_LEN,
	       "record file header is 56 bytes");

const char *sb_trace_strerror(int err)
{
	switch (err) {
	case SB_TRACE_OK:
		return "no error";
	case SB_TRACE_FOREIGN:
		return "not a snapblk record file (wrong magic)";
	case SB_TRACE_VERSION_UNKNOWN:
		return "record file of a version this tool cannot read "
		       "(it reads version 1)";
	case SB_TRACE_TRUNCATED:
		return "truncated record file: shorter than its header says";
	case SB_TRACE_TRAILING:
		return "record file has data past its end";
	case SB_TRACE_MALFORMED:
		return "malformed record file: a header field is out of range";
	case SB_TRACE_CHECKSUM:
		return "record file checksum mismatch: the file is damaged";
	case SB_TRACE_NOMEM:
		return "out of memory";
	case SB_TRACE_CRYPTO:
		return "SHA-256 failed (OpenSSL)";
	default:
		return "unknown record file error";
	}
}

void sb_trace_free(struct sb_trace *t)
{
	free(t->chunks);
	t->chunks = NULL;
	t->count = 0;
}

/* A chunk size the format allows: a power of two, MIN..MAX. */
static bool chunk_size_ok(uint32_t cs)
{
	return cs >= SNAPBLK_CHUNK_SIZE_MIN && cs <= SNAPBLK_CHUNK_SIZE_MAX &&
	       !(cs & (cs - 1));
}

static int sha256(const void *buf, size_t len, uint8_t out[SB_TRACE_SUM_LEN])
{
	unsigned int n = SB_TRACE_SUM_LEN;

	return EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL) ?
	       SB_TRACE_OK : SB_TRACE_CRYPTO;
}

int sb_trace_encode(const struct sb_trace *t, uint8_t **out, size_t *len)
{
	struct trace_header h;
	size_t n, i;
	uint8_t *buf;
	__le32 v;
	int ret;

	*out = NULL;
	*len = 0;
	if (t->count > SNAPBLK_TRACE_MAX || (t->count && !t->chunks) ||
	    !chunk_size_ok(t->chunk_size))
		return SB_TRACE_MALFORMED;
	n = sizeof(h) + 4 * (size_t)t->count + SB_TRACE_SUM_LEN;
	buf = malloc(n);
	if (!buf)
		return SB_TRACE_NOMEM;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, SB_TRACE_MAGIC, SB_TRACE_MAGIC_LEN);
	h.version = htole32(SB_TRACE_VERSION);
	h.header_len = htole32(sizeof(h));
	memcpy(h.image_id, t->image_id, SNAPBLK_IMAGE_ID_LEN);
	h.chunk_size = htole32(t->chunk_size);
	h.count = htole32(t->count);
	memcpy(buf, &h, sizeof(h));
	for (i = 0; i < t->count; i++) {
		v = htole32(t->chunks[i]);
		memcpy(buf + sizeof(h) + 4 * i, &v, 4);
	}
	ret = sha256(buf, n - SB_TRACE_SUM_LEN, buf + n - SB_TRACE_SUM_LEN);
	if (ret) {
		free(buf);
		return ret;
	}
	*out = buf;
	*len = n;
	return SB_TRACE_OK;
}

int sb_trace_decode(const void *buf, size_t len, struct sb_trace *t)
{
	uint8_t sum[SB_TRACE_SUM_LEN];
	const uint8_t *p = buf;
	struct trace_header h;
	uint32_t hlen, cs, i;
	size_t want;
	__le32 v;
	int ret;

	memset(t, 0, sizeof(*t));
	if (len < SB_TRACE_MAGIC_LEN ||
	    memcmp(p, SB_TRACE_MAGIC, SB_TRACE_MAGIC_LEN))
		return SB_TRACE_FOREIGN;
	if (len < SB_TRACE_MAGIC_LEN + 4)
		return SB_TRACE_TRUNCATED;
	memcpy(&v, p + SB_TRACE_MAGIC_LEN, 4);
	if (le32toh(v) != SB_TRACE_VERSION)
		return SB_TRACE_VERSION_UNKNOWN;
	if (len < sizeof(h))
		return SB_TRACE_TRUNCATED;
	memcpy(&h, p, sizeof(h));
	hlen = le32toh(h.header_len);
	cs = le32toh(h.chunk_size);
	if (hlen < sizeof(h) || hlen > SB_TRACE_HEADER_MAX ||
	    le32toh(h.count) > SNAPBLK_TRACE_MAX || !chunk_size_ok(cs))
		return SB_TRACE_MALFORMED;
	want = hlen + 4 * (size_t)le32toh(h.count) + SB_TRACE_SUM_LEN;
	if (len < want)
		return SB_TRACE_TRUNCATED;
	if (len > want)
		return SB_TRACE_TRAILING;
	ret = sha256(p, len - SB_TRACE_SUM_LEN, sum);
	if (ret)
		return ret;
	if (memcmp(sum, p + len - SB_TRACE_SUM_LEN, SB_TRACE_SUM_LEN))
		return SB_TRACE_CHECKSUM;

	memcpy(t->image_id, h.image_id, SNAPBLK_IMAGE_ID_LEN);
	t->chunk_size = cs;
	t->count = le32toh(h.count);
	if (!t->count)
		return SB_TRACE_OK;
	t->chunks = malloc(4 * (size_t)t->count);
	if (!t->chunks) {
		t->count = 0;
		return SB_TRACE_NOMEM;
	}
	for (i = 0; i < t->count; i++) {
		memcpy(&v, p + hlen + 4 * (size_t)i, 4);
		t->chunks[i] = le32toh(v);
	}
	return SB_TRACE_OK;
}

static void set_msg(char *msg, size_t msglen, const char *path,
		    const char *why)
{
	if (msg && msglen)
		snprintf(msg, msglen, "%s: %s", path, why);
}

int sb_trace_write(const char *path, const struct sb_trace *t, char *msg,
		   size_t msglen)
{
	uint8_t *buf;
	size_t len;
	int ret;

	ret = sb_trace_encode(t, &buf, &len);
	if (ret) {
		set_msg(msg, msglen, path, sb_trace_strerror(ret));
		return ret == SB_TRACE_NOMEM ? -ENOMEM :
		       ret == SB_TRACE_CRYPTO ? -EIO : -EINVAL;
	}
	/* Not secret: no plaintext, keys or content addresses. */
	ret = sb_write_file_atomic(path, buf, len, 0644, false);
	free(buf);
	if (ret)
		set_msg(msg, msglen, path, strerror(-ret));
	return ret;
}

int sb_trace_read(const char *path, struct sb_trace *t, char *msg,
		  size_t msglen)
{
	uint8_t *buf;
	size_t len;
	int ret;

	memset(t, 0, sizeof(*t));
	ret = sb_read_file(path, SB_TRACE_MAX_FILE_LEN, &buf, &len);
	if (ret == -EFBIG) {
		set_msg(msg, msglen, path, "not a snapblk record file "
			"(larger than any can be)");
		return -EINVAL;
	}
	if (ret) {
		set_msg(msg, msglen, path, strerror(-ret));
		return ret;
	}
	ret = sb_trace_decode(buf, len, t);
	if (ret == SB_TRACE_VERSION_UNKNOWN && msg && msglen) {
		__le32 v;

		memcpy(&v, buf + SB_TRACE_MAGIC_LEN, 4);
		snprintf(msg, msglen, "%s: record file version %u, but this "
			 "tool reads version %u only", path, le32toh(v),
			 SB_TRACE_VERSION);
		free(buf);
		return -EINVAL;
	}
	free(buf);
	if (ret) {
		set_msg(msg, msglen, path, sb_trace_strerror(ret));
		return ret == SB_TRACE_NOMEM ? -ENOMEM :
		       ret == SB_TRACE_CRYPTO ? -EIO : -EINVAL;
	}
	return 0;
}
