// SPDX-License-Identifier: GPL-2.0
/*
 * Record files (`snapblk record`, `create --prefetch`): what is written
 * reads back the same; the bytes are those the format documents; a file
 * cut short at any length, with another magic, another version, a
 * flipped bit or bytes appended is refused with its own reason, so a
 * prefetch never replays a damaged list; the file is replaced atomically.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "kselftest_harness.h"
#include "trace.h"

static void fake_trace(struct sb_trace *t, uint32_t n)
{
	uint32_t i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < SNAPBLK_IMAGE_ID_LEN; i++)
		t->image_id[i] = 0xa0 + i;
	t->chunk_size = 65536;
	t->count = n;
	t->chunks = n ? malloc(4 * n) : NULL;
	for (i = 0; i < n; i++)
		t->chunks[i] = (i * 7919) % 100003;
}

/* Recompute the trailing SHA-256 of an encoded file of @len bytes. */
static void reseal(uint8_t *buf, size_t len)
{
	unsigned int n = SB_TRACE_SUM_LEN;

	EVP_Digest(buf, len - SB_TRACE_SUM_LEN, buf + len - SB_TRACE_SUM_LEN,
		   &n, EVP_sha256(), NULL);
}

FIXTURE(file)
{
	char dir[64];
	char path[128];
	struct sb_trace t;
	uint8_t *buf;
	size_t len;
};

FIXTURE_SETUP(file)
{
	strcpy(self->dir, "/tmp/trace-test.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->path, sizeof(self->path), "%s/app.trace", self->dir);
	fake_trace(&self->t, 1000);
	ASSERT_EQ(0, sb_trace_encode(&self->t, &self->buf, &self->len));
}

FIXTURE_TEARDOWN(file)
{
	char cmd[96];

	sb_trace_free(&self->t);
	free(self->buf);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", self->dir);
	if (system(cmd))
		TH_LOG("cannot remove %s", self->dir);
}

TEST_F(file, round_trip_through_the_file)
{
	struct sb_trace back;
	char msg[256] = "";

	ASSERT_EQ(0, sb_trace_write(self->path, &self->t, msg, sizeof(msg)));
	ASSERT_EQ(0, sb_trace_read(self->path, &back, msg, sizeof(msg)));
	EXPECT_EQ(0, memcmp(back.image_id, self->t.image_id,
			    SNAPBLK_IMAGE_ID_LEN));
	EXPECT_EQ(65536, back.chunk_size);
	ASSERT_EQ(1000, back.count);
	EXPECT_EQ(0, memcmp(back.chunks, self->t.chunks, 4 * 1000));
	sb_trace_free(&back);
}

TEST_F(file, an_empty_trace_round_trips)
{
	struct sb_trace empty, back;
	uint8_t *buf;
	size_t len;

	fake_trace(&empty, 0);
	ASSERT_EQ(0, sb_trace_encode(&empty, &buf, &len));
	EXPECT_EQ(SB_TRACE_HEADER_LEN + SB_TRACE_SUM_LEN, len);
	ASSERT_EQ(0, sb_trace_decode(buf, len, &back));
	EXPECT_EQ(0, back.count);
	EXPECT_EQ(NULL, back.chunks);
	free(buf);
}

TEST_F(file, layout_is_the_documented_one)
{
	uint8_t sum[SB_TRACE_SUM_LEN];
	unsigned int n = sizeof(sum);
	const uint8_t *p = self->buf;
	__le32 v;

	ASSERT_EQ(56 + 4 * 1000 + 32, self->len);
	EXPECT_EQ(0, memcmp(p, "SNAPBLKT", 8));
	memcpy(&v, p + 8, 4);
	EXPECT_EQ(1, le32toh(v));		/* version */
	memcpy(&v, p + 12, 4);
	EXPECT_EQ(56, le32toh(v));		/* header_len */
	EXPECT_EQ(0, memcmp(p + 16, self->t.image_id, 32));
	memcpy(&v, p + 48, 4);
	EXPECT_EQ(65536, le32toh(v));		/* chunk_size */
	memcpy(&v, p + 52, 4);
	EXPECT_EQ(1000, le32toh(v));		/* count */
	memcpy(&v, p + 56 + 4 * 3, 4);
	EXPECT_EQ(self->t.chunks[3], le32toh(v));	/* little-endian */
	ASSERT_EQ(1, EVP_Digest(p, self->len - 32, sum, &n, EVP_sha256(),
				NULL));
	EXPECT_EQ(0, memcmp(sum, p + self->len - 32, 32));
}

TEST_F(file, every_truncation_is_refused)
{
	struct sb_trace back;
	size_t cut;
	int ret, bad = 0;

	for (cut = 0; cut < self->len; cut++) {
		ret = sb_trace_decode(self->buf, cut, &back);
		/* Shorter than the magic is not a record file at all. */
		if (ret != (cut < SB_TRACE_MAGIC_LEN ? SB_TRACE_FOREIGN :
			    SB_TRACE_TRUNCATED))
			bad++;
	}
	EXPECT_EQ(0, bad);
}

TEST_F(file, truncated_file_says_so)
{
	struct sb_trace back;
	char msg[256];
	int fd;

	fd = open(self->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ((ssize_t)self->len - 100,
		  write(fd, self->buf, self->len - 100));
	close(fd);
	EXPECT_EQ(-EINVAL, sb_trace_read(self->path, &back, msg, sizeof(msg)));
	EXPECT_NE(NULL, strstr(msg, self->path));
	EXPECT_NE(NULL, strstr(msg, "truncated"));
}

TEST_F(file, wrong_magic_is_not_a_record_file)
{
	struct sb_trace back;

	self->buf[0] = 'X';
	EXPECT_EQ(SB_TRACE_FOREIGN, sb_trace_decode(self->buf, self->len,
						    &back));
	/* A manifest is not a record file either. */
	memcpy(self->buf, SNAPBLK_MANIFEST_MAGIC, 8);
	EXPECT_EQ(SB_TRACE_FOREIGN, sb_trace_decode(self->buf, self->len,
						    &back));
}

TEST_F(file, another_version_says_which)
{
	struct sb_trace back;
	char msg[256];
	__le32 v = htole32(2);

	/* Sealed again, so that the version is what is wrong. */
	memcpy(self->buf + 8, &v, 4);
	reseal(self->buf, self->len);
	EXPECT_EQ(SB_TRACE_VERSION_UNKNOWN,
		  sb_trace_decode(self->buf, self->len, &back));
	ASSERT_EQ(0, sb_trace_write(self->path, &self->t, NULL, 0));
	{
		int fd = open(self->path, O_WRONLY);

		ASSERT_LE(0, fd);
		ASSERT_EQ(4, pwrite(fd, &v, 4, 8));
		close(fd);
	}
	EXPECT_EQ(-EINVAL, sb_trace_read(self->path, &back, msg, sizeof(msg)));
	EXPECT_NE(NULL, strstr(msg, "version 2"));
}

TEST_F(file, any_flipped_bit_is_refused)
{
	struct sb_trace back;
	bool sum_only;
	size_t off;
	int ret, bad = 0;

	for (off = 0; off < self->len; off++) {
		self->buf[off] ^= 0x10;
		ret = sb_trace_decode(self->buf, self->len, &back);
		self->buf[off] ^= 0x10;
		/*
		 * In the image ID, the indexes or the checksum only the
		 * checksum can tell; elsewhere a field may say first.
		 */
		sum_only = (off >= 16 && off < 48) || off >= 56;
		if (sum_only ? ret != SB_TRACE_CHECKSUM : ret == SB_TRACE_OK) {
			TH_LOG("bit flipped at offset %zu: %s", off,
			       sb_trace_strerror(ret));
			bad++;
		}
		if (ret == SB_TRACE_OK)
			sb_trace_free(&back);
	}
	EXPECT_EQ(0, bad);
	EXPECT_EQ(0, sb_trace_decode(self->buf, self->len, &back));
	sb_trace_free(&back);
}

TEST_F(file, bad_checksum_message)
{
	struct sb_trace back;
	char msg[256];
	int fd;

	self->buf[100] ^= 1;
	fd = open(self->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ((ssize_t)self->len, write(fd, self->buf, self->len));
	close(fd);
	EXPECT_EQ(-EINVAL, sb_trace_read(self->path, &back, msg, sizeof(msg)));
	EXPECT_NE(NULL, strstr(msg, "checksum mismatch"));
}

TEST_F(file, bytes_past_the_end_are_refused)
{
	struct sb_trace back;
	uint8_t *longer = malloc(self->len + 4);

	ASSERT_NE(NULL, longer);
	memcpy(longer, self->buf, self->len);
	memset(longer + self->len, 0, 4);
	EXPECT_EQ(SB_TRACE_TRAILING, sb_trace_decode(longer, self->len + 4,
						     &back));
	free(longer);
}

TEST_F(file, out_of_range_header_fields_are_refused)
{
	struct sb_trace back;
	__le32 v;

	/* header_len smaller than version 1's */
	v = htole32(52);
	memcpy(self->buf + 12, &v, 4);
	reseal(self->buf, self->len);
	EXPECT_EQ(SB_TRACE_MALFORMED, sb_trace_decode(self->buf, self->len,
						      &back));
	v = htole32(56);
	memcpy(self->buf + 12, &v, 4);
	/* a chunk size that is not a power of two */
	v = htole32(65536 + 4096);
	memcpy(self->buf + 48, &v, 4);
	reseal(self->buf, self->len);
	EXPECT_EQ(SB_TRACE_MALFORMED, sb_trace_decode(self->buf, self->len,
						      &back));
	/* more chunks than a trace holds */
	v = htole32(65536);
	memcpy(self->buf + 48, &v, 4);
	v = htole32(SNAPBLK_TRACE_MAX + 1);
	memcpy(self->buf + 52, &v, 4);
	reseal(self->buf, self->len);
	EXPECT_EQ(SB_TRACE_MALFORMED, sb_trace_decode(self->buf, self->len,
						      &back));
}

TEST_F(file, a_longer_header_of_version_1_is_read)
{
	struct sb_trace back;
	size_t len = self->len + 8;
	uint8_t *p = calloc(1, len);
	__le32 v = htole32(64);

	/* A later writer may append header fields: readers skip them. */
	ASSERT_NE(NULL, p);
	memcpy(p, self->buf, 56);
	memcpy(p + 12, &v, 4);
	memcpy(p + 64, self->buf + 56, self->len - 56 - 32);
	reseal(p, len);
	ASSERT_EQ(0, sb_trace_decode(p, len, &back));
	ASSERT_EQ(1000, back.count);
	EXPECT_EQ(0, memcmp(back.chunks, self->t.chunks, 4 * 1000));
	sb_trace_free(&back);
	free(p);
}

TEST_F(file, write_replaces_atomically_and_leaves_no_temporary)
{
	struct sb_trace small, back;
	struct dirent *e;
	int n = 0;
	DIR *d;

	ASSERT_EQ(0, sb_trace_write(self->path, &self->t, NULL, 0));
	fake_trace(&small, 3);
	ASSERT_EQ(0, sb_trace_write(self->path, &small, NULL, 0));
	ASSERT_EQ(0, sb_trace_read(self->path, &back, NULL, 0));
	EXPECT_EQ(3, back.count);
	sb_trace_free(&back);
	sb_trace_free(&small);
	d = opendir(self->dir);
	ASSERT_NE(NULL, d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	EXPECT_EQ(1, n);
}

TEST_F(file, unwritable_place_is_an_errno_with_a_message)
{
	char path[160], msg[256] = "";
	struct sb_trace back;

	snprintf(path, sizeof(path), "%s/no/such/dir/x.trace", self->dir);
	EXPECT_EQ(-ENOENT, sb_trace_write(path, &self->t, msg, sizeof(msg)));
	EXPECT_NE(NULL, strstr(msg, path));
	EXPECT_EQ(-ENOENT, sb_trace_read(path, &back, msg, sizeof(msg)));
}

TEST(encode_refuses_what_decode_would)
{
	struct sb_trace t;
	uint8_t *buf;
	size_t len;

	fake_trace(&t, 2);
	t.chunk_size = 1000;
	EXPECT_EQ(SB_TRACE_MALFORMED, sb_trace_encode(&t, &buf, &len));
	t.chunk_size = 65536;
	t.count = SNAPBLK_TRACE_MAX + 1;
	EXPECT_EQ(SB_TRACE_MALFORMED, sb_trace_encode(&t, &buf, &len));
	t.count = 2;
	sb_trace_free(&t);
}

TEST_HARNESS_MAIN
