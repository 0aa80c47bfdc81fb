// SPDX-License-Identifier: GPL-2.0
/*
 * Convergent chunk encryption with OpenSSL EVP.  See chunk.h and
 * Documentation/format.md.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "chunk.h"

static const char default_secret_label[] = "snapblk default secret v1";
static const char secret_id_label[] = "snapblk secret id v1";

struct sb_chunk_ctx {
	EVP_MAC *mac;
	EVP_MAC_CTX *hmac;
	EVP_CIPHER *aes_ctr;
	EVP_CIPHER_CTX *cipher;
	EVP_MD *sha256;
	EVP_MD_CTX *md;
	size_t secret_len;
	uint8_t secret_id[SNAPBLK_SECRET_ID_LEN];
	uint8_t secret[];
};

static const uint8_t zero_iv[16];

bool sb_is_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	/* Compare the buffer with itself shifted by one: memcmp is fast. */
	return !len || (!p[0] && !memcmp(p, p + 1, len - 1));
}

int sb_sha256(const void *buf, size_t len, uint8_t out[32])
{
	unsigned int n;

	return EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL) ? 0 : -EIO;
}

void sb_default_secret(uint8_t out[32])
{
	sb_sha256(default_secret_label, strlen(default_secret_label), out);
}

int sb_hmac_sha256(const void *key, size_t key_len, const void *data,
		   size_t len, uint8_t out[32])
{
	size_t n;

	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, key_len,
		       data, len, out, 32, &n))
		return -EIO;
	return 0;
}

int sb_secret_id(const void *secret, size_t secret_len,
		 uint8_t id[SNAPBLK_SECRET_ID_LEN])
{
	uint8_t mac[32];
	int ret;

	ret = sb_hmac_sha256(secret, secret_len, secret_id_label,
			     strlen(secret_id_label), mac);
	if (!ret)
		memcpy(id, mac, SNAPBLK_SECRET_ID_LEN);
	return ret;
}

struct sb_chunk_ctx *sb_chunk_ctx_new(const void *secret, size_t secret_len)
{
	uint8_t def[32];
	struct sb_chunk_ctx *ctx;

	if (!secret) {
		sb_default_secret(def);
		secret = def;
		secret_len = sizeof(def);
	}
	ctx = calloc(1, sizeof(*ctx) + secret_len);
	if (!ctx)
		return NULL;
	memcpy(ctx->secret, secret, secret_len);
	ctx->secret_len = secret_len;
	ctx->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	ctx->hmac = ctx->mac ? EVP_MAC_CTX_new(ctx->mac) : NULL;
	ctx->aes_ctr = EVP_CIPHER_fetch(NULL, "AES-256-CTR", NULL);
	ctx->cipher = EVP_CIPHER_CTX_new();
	ctx->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	ctx->md = EVP_MD_CTX_new();
	if (!ctx->hmac || !ctx->aes_ctr || !ctx->cipher || !ctx->sha256 ||
	    !ctx->md || sb_secret_id(secret, secret_len, ctx->secret_id)) {
		sb_chunk_ctx_free(ctx);
		return NULL;
	}
	return ctx;
}

void sb_chunk_ctx_free(struct sb_chunk_ctx *ctx)
{
	if (!ctx)
		return;
	EVP_MAC_CTX_free(ctx->hmac);
	EVP_MAC_free(ctx->mac);
	EVP_CIPHER_CTX_free(ctx->cipher);
	EVP_CIPHER_free(ctx->aes_ctr);
	EVP_MD_CTX_free(ctx->md);
	EVP_MD_free(ctx->sha256);
	OPENSSL_cleanse(ctx->secret, ctx->secret_len);
	free(ctx);
}

const uint8_t *sb_chunk_ctx_secret_id(const struct sb_chunk_ctx *ctx)
{
	return ctx->secret_id;
}

/* key = HMAC-SHA256(secret, pt) */
static int derive_key(struct sb_chunk_ctx *ctx, const void *pt, size_t len,
		      uint8_t key[SNAPBLK_CHUNK_KEY_LEN])
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						 "SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	size_t n;

	if (!EVP_MAC_init(ctx->hmac, ctx->secret, ctx->secret_len, params) ||
	    !EVP_MAC_update(ctx->hmac, pt, len) ||
	    !EVP_MAC_final(ctx->hmac, key, &n, SNAPBLK_CHUNK_KEY_LEN))
		return -EIO;
	return 0;
}

/* AES-256-CTR with an all-zero IV; encryption and decryption alike. */
static int ctr_crypt(struct sb_chunk_ctx *ctx, const uint8_t *key,
		     const void *in, void *out, size_t len)
{
	int n, total = 0;

	if (len > INT32_MAX)
		return -EINVAL;
	if (!EVP_EncryptInit_ex2(ctx->cipher, ctx->aes_ctr, key, zero_iv,
				 NULL) ||
	    !EVP_EncryptUpdate(ctx->cipher, out, &n, in, (int)len))
		return -EIO;
	total = n;
	if (!EVP_EncryptFinal_ex(ctx->cipher, (uint8_t *)out + total, &n))
		return -EIO;
	total += n;
	return (size_t)total == len ? 0 : -EIO;
}

static int digest(struct sb_chunk_ctx *ctx, const void *buf, size_t len,
		  uint8_t out[32])
{
	unsigned int n;

	if (!EVP_DigestInit_ex2(ctx->md, ctx->sha256, NULL) ||
	    !EVP_DigestUpdate(ctx->md, buf, len) ||
	    !EVP_DigestFinal_ex(ctx->md, out, &n))
		return -EIO;
	return 0;
}

int sb_chunk_seal(struct sb_chunk_ctx *ctx, const void *pt, void *ct,
		  size_t len, uint8_t key[SNAPBLK_CHUNK_KEY_LEN],
		  uint8_t addr[SNAPBLK_ADDR_LEN])
{
	int ret;

	ret = derive_key(ctx, pt, len, key);
	if (!ret)
		ret = ctr_crypt(ctx, key, pt, ct, len);
	if (!ret)
		ret = digest(ctx, ct, len, addr);
	return ret;
}

int sb_chunk_open(struct sb_chunk_ctx *ctx, const void *ct, void *pt,
		  size_t len, const uint8_t key[SNAPBLK_CHUNK_KEY_LEN],
		  const uint8_t addr[SNAPBLK_ADDR_LEN], bool check_key)
{
	uint8_t got[32];
	int ret;

	ret = digest(ctx, ct, len, got);
	if (ret)
		return ret;
	if (CRYPTO_memcmp(got, addr, SNAPBLK_ADDR_LEN))
		return -EBADMSG;
	ret = ctr_crypt(ctx, key, ct, pt, len);
	if (ret || !check_key)
		return ret;
	ret = derive_key(ctx, pt, len, got);
	if (ret)
		return ret;
	return CRYPTO_memcmp(got, key, SNAPBLK_CHUNK_KEY_LEN) ?
	       -EKEYREJECTED : 0;
}
