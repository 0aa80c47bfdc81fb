/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Convergent chunk encryption (Documentation/format.md, "Chunks"):
 *
 *	key  = HMAC-SHA256(secret, plaintext)
 *	ct   = AES-256-CTR(key, IV = 0, plaintext)
 *	addr = SHA-256(ct)
 *
 * One struct sb_chunk_ctx per thread; it holds the OpenSSL contexts and
 * the convergence secret.  Functions return 0 or a negative errno
 * (-ENOMEM, -EIO for an OpenSSL failure, -EBADMSG for a chunk that does
 * not match its address or key).
 */
#ifndef SNAPBLK_USER_CHUNK_H
#define SNAPBLK_USER_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/snapblk.h>

/* Shortest and longest convergence secret a secret file may hold. */
#define SB_SECRET_MIN_LEN	16
#define SB_SECRET_MAX_LEN	4096

struct sb_chunk_ctx;

/* secret == NULL selects the documented default secret. */
struct sb_chunk_ctx *sb_chunk_ctx_new(const void *secret, size_t secret_len);
void sb_chunk_ctx_free(struct sb_chunk_ctx *ctx);

/* The default convergence secret: SHA-256("snapblk default secret v1"). */
void sb_default_secret(uint8_t out[32]);

/* HMAC-SHA256(secret, "snapblk secret id v1"), first 16 bytes. */
int sb_secret_id(const void *secret, size_t secret_len,
		 uint8_t id[SNAPBLK_SECRET_ID_LEN]);
/* The secret id of the context's secret. */
const uint8_t *sb_chunk_ctx_secret_id(const struct sb_chunk_ctx *ctx);

/* A power of two in [SNAPBLK_CHUNK_SIZE_MIN, SNAPBLK_CHUNK_SIZE_MAX]? */
static inline bool sb_chunk_size_valid(uint64_t size)
{
	return size >= SNAPBLK_CHUNK_SIZE_MIN &&
	       size <= SNAPBLK_CHUNK_SIZE_MAX && !(size & (size - 1));
}

/* Is buf all zero bytes? */
bool sb_is_zero(const void *buf, size_t len);

/*
 * Derive the key, encrypt len bytes of pt into ct (which may not overlap
 * pt) and compute the address.
 */
int sb_chunk_seal(struct sb_chunk_ctx *ctx, const void *pt, void *ct,
		  size_t len, uint8_t key[SNAPBLK_CHUNK_KEY_LEN],
		  uint8_t addr[SNAPBLK_ADDR_LEN]);

/* SHA-256 of buf. */
int sb_sha256(const void *buf, size_t len, uint8_t out[32]);

/*
 * Check that SHA-256(ct) is addr (-EBADMSG if not), then decrypt into pt.
 * With check_key, also check that the plaintext derives key under the
 * context's secret (-EKEYREJECTED if not).
 */
int sb_chunk_open(struct sb_chunk_ctx *ctx, const void *ct, void *pt,
		  size_t len, const uint8_t key[SNAPBLK_CHUNK_KEY_LEN],
		  const uint8_t addr[SNAPBLK_ADDR_LEN], bool check_key);

/* HMAC-SHA256(key, data) with a key of any length. */
int sb_hmac_sha256(const void *key, size_t key_len, const void *data,
		   size_t len, uint8_t out[32]);

#endif
