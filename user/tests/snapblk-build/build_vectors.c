// SPDX-License-Identifier: GPL-2.0
/*
 * Known-answer tests for the chunk and manifest formats: the vectors of
 * Documentation/format.md, "Test vectors" (also produced by the
 * independent build_reference.py), and the manifest reader's error
 * classes.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "kselftest_harness.h"

#include "chunk.h"
#include "manifest.h"

#define CS 65536

static const char *hex(const uint8_t *p, size_t n)
{
	static char buf[4][2 * 64 + 1];
	static int i;
	char *s = buf[i++ & 3];

	sb_hex(p, n, s);
	return s;
}

static void pattern(uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = i % 251;
}

static void custom_secret(uint8_t s[32])
{
	int i;

	for (i = 0; i < 32; i++)
		s[i] = i;
}

static void tenant_key(uint8_t k[32])
{
	int i;

	for (i = 0; i < 32; i++)
		k[i] = 0x40 + i;
}

TEST(default_secret)
{
	uint8_t s[32], id[16];

	sb_default_secret(s);
	EXPECT_STREQ("0d2c385ec98e0801e8cfb390688d1283"
		     "25cceb2caa7898926ea2864891b31c33", hex(s, 32));
	ASSERT_EQ(0, sb_secret_id(s, 32, id));
	EXPECT_STREQ("01af4b51dd5d75782d5256a788cca2c8", hex(id, 16));
	custom_secret(s);
	ASSERT_EQ(0, sb_secret_id(s, 32, id));
	EXPECT_STREQ("f4156f459ce565382963f2a90e94d94d", hex(id, 16));
}

TEST(chunk_default_secret)
{
	uint8_t *pt = malloc(CS), *ct = malloc(CS), key[32], addr[32];
	struct sb_chunk_ctx *ctx = sb_chunk_ctx_new(NULL, 0);

	ASSERT_NE(NULL, ctx);
	pattern(pt, CS);
	ASSERT_EQ(0, sb_chunk_seal(ctx, pt, ct, CS, key, addr));
	EXPECT_STREQ("8b3eaa2aa18ea85df1382130a189418c"
		     "f6bdabc3d2d1e8cb8db2c42842530fd6", hex(key, 32));
	EXPECT_STREQ("23ee1b5e847bc2c4ece664894dc0c221", hex(ct, 16));
	EXPECT_STREQ("77756e995b0359c0264671b4d46c880a",
		     hex(ct + CS - 16, 16));
	EXPECT_STREQ("7d08fc2ace3da4f3fa68d9f5e542fbe0"
		     "a7b8caae6e55591d157eaffc58d0967a", hex(addr, 32));
	EXPECT_STREQ("01af4b51dd5d75782d5256a788cca2c8",
		     hex(sb_chunk_ctx_secret_id(ctx), 16));
	sb_chunk_ctx_free(ctx);
	free(pt);
	free(ct);
}

TEST(chunk_custom_secret)
{
	uint8_t *pt = malloc(CS), *ct = malloc(CS), key[32], addr[32], s[32];
	struct sb_chunk_ctx *ctx;

	custom_secret(s);
	ctx = sb_chunk_ctx_new(s, sizeof(s));
	ASSERT_NE(NULL, ctx);
	pattern(pt, CS);
	ASSERT_EQ(0, sb_chunk_seal(ctx, pt, ct, CS, key, addr));
	EXPECT_STREQ("e19b6aae460a4c967c38e3bc88f3eb14"
		     "6650cb7c9fa7e8cc406d8f47c86e0035", hex(key, 32));
	EXPECT_STREQ("9faa2278c7b56f255880b829598e23c6"
		     "3eef7d9cd87badb1a31614fc6c920aae", hex(addr, 32));
	sb_chunk_ctx_free(ctx);
	free(pt);
	free(ct);
}

TEST(chunk_open_checks)
{
	uint8_t *pt = malloc(CS), *ct = malloc(CS), *back = malloc(CS);
	struct sb_chunk_ctx *def = sb_chunk_ctx_new(NULL, 0), *other;
	uint8_t key[32], addr[32], s[32];

	custom_secret(s);
	other = sb_chunk_ctx_new(s, sizeof(s));
	ASSERT_NE(NULL, def);
	ASSERT_NE(NULL, other);
	pattern(pt, CS);
	ASSERT_EQ(0, sb_chunk_seal(def, pt, ct, CS, key, addr));
	ASSERT_EQ(0, sb_chunk_open(def, ct, back, CS, key, addr, true));
	EXPECT_EQ(0, memcmp(pt, back, CS));
	/* Decrypts, but the plaintext does not derive key under "other". */
	EXPECT_EQ(-EKEYREJECTED,
		  sb_chunk_open(other, ct, back, CS, key, addr, true));
	EXPECT_EQ(0, sb_chunk_open(other, ct, back, CS, key, addr, false));
	ct[12345] ^= 0x10;
	EXPECT_EQ(-EBADMSG, sb_chunk_open(def, ct, back, CS, key, addr, true));
	sb_chunk_ctx_free(def);
	sb_chunk_ctx_free(other);
	free(pt);
	free(ct);
	free(back);
}

TEST(chunk_size_limits)
{
	EXPECT_TRUE(sb_chunk_size_valid(64 << 10));
	EXPECT_TRUE(sb_chunk_size_valid(512 << 10));
	EXPECT_TRUE(sb_chunk_size_valid(4 << 20));
	EXPECT_FALSE(sb_chunk_size_valid(32 << 10));
	EXPECT_FALSE(sb_chunk_size_valid(8 << 20));
	EXPECT_FALSE(sb_chunk_size_valid(96 << 10));
	EXPECT_FALSE(sb_chunk_size_valid(0));
	EXPECT_TRUE(sb_is_zero((uint8_t[4]){ 0 }, 4));
	EXPECT_FALSE(sb_is_zero((uint8_t[4]){ 0, 0, 0, 1 }, 4));
}

/* The manifest of format.md's vector: P1, zero, P1, 3392 x 0xab. */
static int vector_manifest(struct sb_manifest *m)
{
	uint8_t *pt = calloc(1, CS), *ct = malloc(CS);
	struct sb_chunk_ctx *ctx = sb_chunk_ctx_new(NULL, 0);
	struct snapblk_chunk_entry *e;
	int ret;

	ret = sb_manifest_init(m, 200000, CS);
	if (ret)
		return ret;
	pattern(pt, CS);
	e = m->chunks;
	sb_chunk_seal(ctx, pt, ct, CS, e[0].key, e[0].addr);
	e[1].flags = htole32(SNAPBLK_CHUNK_F_ZERO);
	e[2] = e[0];
	memset(pt, 0, CS);
	memset(pt, 0xab, 200000 - 3 * CS);
	sb_chunk_seal(ctx, pt, ct, CS, e[3].key, e[3].addr);
	memcpy(m->secret_id, sb_chunk_ctx_secret_id(ctx), 16);
	sb_chunk_ctx_free(ctx);
	free(pt);
	free(ct);
	return 0;
}

TEST(manifest_vector)
{
	uint8_t key[32], sum[32], *buf;
	struct sb_manifest m, back;
	size_t len;

	tenant_key(key);
	ASSERT_EQ(0, vector_manifest(&m));
	EXPECT_STREQ("d8a72274f494c77edc098e08f853dac6"
		     "234908ca3d53122fa8a66776eeed26d9",
		     hex(m.chunks[3].addr, 32));
	ASSERT_EQ(0, sb_manifest_seal(&m, key, &buf, &len));
	EXPECT_EQ(432, len);
	EXPECT_STREQ("f2937633a17a6c230855651fc4bd1b48"
		     "2043a6a07ee927106d49196b996dcd74", hex(m.image_id, 32));
	EXPECT_STREQ("64c5a8ad5b5b3e7b0b21c931", hex(buf + 32, 12));
	EXPECT_STREQ("34d85f20a4528d502bc5e11872f51052",
		     hex(buf + len - 16, 16));
	sb_sha256(buf, len, sum);
	EXPECT_STREQ("700f95b80f3e1785725110b333b788b5"
		     "c0fc6d4844ea5bf1677ba40e2078c417", hex(sum, 32));

	ASSERT_EQ(SB_MF_OK, sb_manifest_unseal(buf, len, key, &back));
	EXPECT_EQ(200000, back.image_size);
	EXPECT_EQ(CS, back.chunk_size);
	EXPECT_EQ(4, back.chunk_count);
	EXPECT_EQ(0, memcmp(back.image_id, m.image_id, 32));
	EXPECT_EQ(0, memcmp(back.chunks, m.chunks, 4 * sizeof(*m.chunks)));
	EXPECT_TRUE(sb_entry_is_zero(&back.chunks[1]));
	sb_manifest_free(&back);
	sb_manifest_free(&m);
	free(buf);
}

FIXTURE(sealed) {
	uint8_t key[32];
	uint8_t *buf;
	size_t len;
	struct sb_manifest m;
};

FIXTURE_SETUP(sealed)
{
	struct sb_manifest m;

	tenant_key(self->key);
	ASSERT_EQ(0, vector_manifest(&m));
	ASSERT_EQ(0, sb_manifest_seal(&m, self->key, &self->buf,
				      &self->len));
	sb_manifest_free(&m);
}

FIXTURE_TEARDOWN(sealed)
{
	free(self->buf);
}

static int unseal(FIXTURE_DATA(sealed) *self, const uint8_t *buf,
		  size_t len)
{
	int ret = sb_manifest_unseal(buf, len, self->key, &self->m);

	if (!ret)
		sb_manifest_free(&self->m);
	return ret;
}

TEST_F(sealed, wrong_key)
{
	self->key[0] ^= 1;
	EXPECT_EQ(SB_MF_AUTH, unseal(self, self->buf, self->len));
	EXPECT_STREQ("manifest authentication failed: wrong key or "
		     "corrupted manifest", sb_manifest_strerror(SB_MF_AUTH));
}

TEST_F(sealed, truncated)
{
	EXPECT_EQ(SB_MF_FOREIGN, unseal(self, self->buf, 0));
	EXPECT_EQ(SB_MF_TRUNCATED, unseal(self, self->buf, 4));
	EXPECT_EQ(SB_MF_TRUNCATED, unseal(self, self->buf, 47));
	EXPECT_EQ(SB_MF_TRUNCATED, unseal(self, self->buf, 48));
	EXPECT_EQ(SB_MF_TRUNCATED, unseal(self, self->buf, self->len - 1));
}

TEST_F(sealed, trailing_data)
{
	uint8_t *p = malloc(self->len + 1);

	memcpy(p, self->buf, self->len);
	p[self->len] = 0;
	EXPECT_EQ(SB_MF_MALFORMED, unseal(self, p, self->len + 1));
	free(p);
}

TEST_F(sealed, foreign)
{
	static const uint8_t png[] = "\x89PNG\r\n\x1a\n and more bytes";

	EXPECT_EQ(SB_MF_FOREIGN, unseal(self, png, sizeof(png)));
	self->buf[0] = 'X';
	EXPECT_EQ(SB_MF_FOREIGN, unseal(self, self->buf, self->len));
}

TEST_F(sealed, version)
{
	self->buf[8] = 2;
	EXPECT_EQ(SB_MF_VERSION, unseal(self, self->buf, self->len));
}

TEST_F(sealed, header_fields)
{
	self->buf[12] = 1;		/* flags */
	EXPECT_EQ(SB_MF_MALFORMED, unseal(self, self->buf, self->len));
	self->buf[12] = 0;
	self->buf[16] = 40;		/* header_len */
	EXPECT_EQ(SB_MF_MALFORMED, unseal(self, self->buf, self->len));
	self->buf[16] = 48;
	self->buf[24] += 72;		/* body_len */
	EXPECT_EQ(SB_MF_TRUNCATED, unseal(self, self->buf, self->len));
	self->buf[24] -= 73;
	EXPECT_EQ(SB_MF_MALFORMED, unseal(self, self->buf, self->len));
}

TEST_F(sealed, every_bit_authenticated)
{
	size_t i;
	int bit;

	/* Nonce, body and tag: any flipped bit fails authentication. */
	for (i = 32; i < self->len; i++) {
		if (i >= 44 && i < 48)
			continue;	/* reserved: must be 0, not AUTH */
		for (bit = 0; bit < 8; bit += 3) {
			self->buf[i] ^= 1 << bit;
			ASSERT_EQ(SB_MF_AUTH,
				  unseal(self, self->buf, self->len));
			self->buf[i] ^= 1 << bit;
		}
	}
	EXPECT_EQ(SB_MF_OK, unseal(self, self->buf, self->len));
}

/* Bodies that authenticate but break a rule: sealed by us, so parse_body. */
static int parse(void (*edit)(uint8_t *body))
{
	struct sb_manifest v, out;
	uint8_t *body;
	int ret;

	ret = vector_manifest(&v);
	if (ret)
		return -1;
	/* Fill in the body header and image ID. */
	{
		uint8_t k[32] = { 0 }, *buf;
		size_t len;

		sb_manifest_seal(&v, k, &buf, &len);
		free(buf);
	}
	body = malloc(v.body_len);
	memcpy(body, v.body, v.body_len);
	edit(body);
	ret = sb_manifest_parse_body(body, v.body_len, &out);
	if (!ret)
		sb_manifest_free(&out);
	sb_manifest_free(&v);
	return ret;
}

static void no_edit(uint8_t *b) { (void)b; }
static void bad_chunk_size(uint8_t *b) { b[8 + 2] = 0x80; }
static void bad_count(uint8_t *b) { b[16] = 5; }
static void bad_size(uint8_t *b) { b[0] = 0x01; b[1] = 0; b[2] = 0; }
static void bad_body_flags(uint8_t *b) { b[12] = 1; }
static void bad_entry_len(uint8_t *b) { b[24] = 64; }
static void zero_with_addr(uint8_t *b) { b[80 + 72 + 5] = 1; }
static void unknown_flag(uint8_t *b) { b[80 + 64] |= 2; }
static void bad_image_id(uint8_t *b) { b[32] ^= 1; }
static void entry_key_changed(uint8_t *b) { b[80 + 40] ^= 1; }

TEST(body_rules)
{
	EXPECT_EQ(SB_MF_OK, parse(no_edit));
	EXPECT_EQ(SB_MF_MALFORMED, parse(bad_chunk_size));
	EXPECT_EQ(SB_MF_MALFORMED, parse(bad_count));
	EXPECT_EQ(SB_MF_MALFORMED, parse(bad_size));
	EXPECT_EQ(SB_MF_MALFORMED, parse(bad_body_flags));
	EXPECT_EQ(SB_MF_MALFORMED, parse(bad_entry_len));
	EXPECT_EQ(SB_MF_MALFORMED, parse(zero_with_addr));
	EXPECT_EQ(SB_MF_MALFORMED, parse(unknown_flag));
	EXPECT_EQ(SB_MF_MALFORMED, parse(bad_image_id));
	EXPECT_EQ(SB_MF_MALFORMED, parse(entry_key_changed));
}

TEST(init_limits)
{
	struct sb_manifest m;

	EXPECT_EQ(SB_MF_INVALID, sb_manifest_init(&m, 0, CS));
	EXPECT_EQ(SB_MF_INVALID, sb_manifest_init(&m, 1 << 20, 1000));
	EXPECT_EQ(SB_MF_INVALID,
		  sb_manifest_init(&m, (uint64_t)CS *
				   (SNAPBLK_MANIFEST_MAX_CHUNKS + 1ULL), CS));
	ASSERT_EQ(SB_MF_OK, sb_manifest_init(&m, 1, CS));
	EXPECT_EQ(1, m.chunk_count);
	sb_manifest_free(&m);
}

TEST_HARNESS_MAIN
