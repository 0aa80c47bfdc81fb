// SPDX-License-Identifier: GPL-2.0
/*
 * Manifest sealing and parsing.  See manifest.h and
 * Documentation/format.md, "Manifest".
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "chunk.h"
#include "manifest.h"
#include "util.h"

#define HDR_LEN		sizeof(struct snapblk_manifest_header)
#define BODY_HDR_LEN	sizeof(struct snapblk_manifest_body)
#define ENTRY_LEN	sizeof(struct snapblk_chunk_entry)
#define TAG_LEN		SNAPBLK_MANIFEST_TAG_LEN
#define MAX_BODY_LEN	(BODY_HDR_LEN + \
			 (uint64_t)SNAPBLK_MANIFEST_MAX_CHUNKS * ENTRY_LEN)
/* Encrypt and decrypt in pieces that fit EVP's int lengths. */
#define GCM_STEP	(1U << 30)

_Static_assert(sizeof(struct snapblk_manifest_header) == 48, "header size");
_Static_assert(sizeof(struct snapblk_manifest_body) == 80, "body size");
_Static_assert(sizeof(struct snapblk_chunk_entry) == 72, "entry size");

static const char image_id_label[16] = "snapblk-image-v1";
static const char enc_key_label[] = "snapblk manifest key v1";
static const char nonce_key_label[] = "snapblk manifest nonce v1";

static const char *const errors[][2] = {
	[SB_MF_OK] = { "success", NULL },
	[SB_MF_FOREIGN] = { "not a snapblk manifest",
		"check the file name: manifests are written by "
		"'snapblk-build create -o FILE'" },
	[SB_MF_TRUNCATED] = { "manifest is truncated",
		"copy the manifest again from where it was built; it is "
		"shorter than its header says" },
	[SB_MF_VERSION] = { "unsupported manifest format version",
		"this manifest needs a newer snapblk; upgrade the tools" },
	[SB_MF_MALFORMED] = { "malformed manifest",
		"the manifest is damaged or was not written by snapblk-build; "
		"build it again" },
	[SB_MF_AUTH] = {
		"manifest authentication failed: wrong key or corrupted "
		"manifest",
		"check that --key-file names the tenant key the manifest was "
		"built with, and that the file was copied intact" },
	[SB_MF_NOMEM] = { "out of memory", "free some memory and retry" },
	[SB_MF_CRYPTO] = { "OpenSSL operation failed",
		"check the OpenSSL installation (libcrypto 3)" },
	[SB_MF_INVALID] = { "invalid image or chunk size",
		"use a non-empty image and a chunk size that is a power of "
		"two from 64 KiB to 4 MiB" },
};

const char *sb_manifest_strerror(int err)
{
	if (err < 0 || (size_t)err >= sizeof(errors) / sizeof(errors[0]))
		return "unknown manifest error";
	return errors[err][0];
}

int sb_manifest_exit(int err)
{
	switch (err) {
	case SB_MF_AUTH:
		return SB_EXIT_AUTH;
	case SB_MF_FOREIGN:
	case SB_MF_TRUNCATED:
	case SB_MF_VERSION:
	case SB_MF_MALFORMED:
		return SB_EXIT_MANIFEST;
	default:
		return EXIT_FAIL;
	}
}

const char *sb_manifest_hint(int err)
{
	if (err < 0 || (size_t)err >= sizeof(errors) / sizeof(errors[0]))
		return NULL;
	return errors[err][1];
}

uint64_t sb_manifest_chunks_for(uint64_t image_size, uint32_t chunk_size)
{
	return image_size / chunk_size + !!(image_size % chunk_size);
}

static size_t body_len_for(uint64_t chunks)
{
	return BODY_HDR_LEN + chunks * ENTRY_LEN;
}

int sb_manifest_init(struct sb_manifest *m, uint64_t image_size,
		     uint32_t chunk_size)
{
	uint64_t n;

	memset(m, 0, sizeof(*m));
	if (!image_size || !sb_chunk_size_valid(chunk_size))
		return SB_MF_INVALID;
	n = sb_manifest_chunks_for(image_size, chunk_size);
	if (n > SNAPBLK_MANIFEST_MAX_CHUNKS)
		return SB_MF_INVALID;
	m->body_len = body_len_for(n);
	m->body = calloc(1, m->body_len);
	if (!m->body)
		return SB_MF_NOMEM;
	m->image_size = image_size;
	m->chunk_size = chunk_size;
	m->chunk_count = n;
	m->chunks = (struct snapblk_chunk_entry *)(m->body + BODY_HDR_LEN);
	return SB_MF_OK;
}

void sb_manifest_free(struct sb_manifest *m)
{
	if (m->body)
		OPENSSL_clear_free(m->body, m->body_len);
	memset(m, 0, sizeof(*m));
}

int sb_manifest_image_id(const struct sb_manifest *m,
			 uint8_t id[SNAPBLK_IMAGE_ID_LEN])
{
	uint64_t size = htole64(m->image_size), count = htole64(m->chunk_count);
	uint32_t csize = htole32(m->chunk_size);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int n;
	int ok;

	ok = md && EVP_DigestInit_ex2(md, EVP_sha256(), NULL) &&
	     EVP_DigestUpdate(md, image_id_label, sizeof(image_id_label)) &&
	     EVP_DigestUpdate(md, &size, sizeof(size)) &&
	     EVP_DigestUpdate(md, &csize, sizeof(csize)) &&
	     EVP_DigestUpdate(md, &count, sizeof(count)) &&
	     EVP_DigestUpdate(md, m->chunks, m->chunk_count * ENTRY_LEN) &&
	     EVP_DigestFinal_ex(md, id, &n);
	EVP_MD_CTX_free(md);
	return ok ? SB_MF_OK : SB_MF_CRYPTO;
}

/* enc_key = HMAC(tenant, label1); nonce = HMAC(HMAC(tenant, label2), body) */
static int derive_seal_keys(const uint8_t *tenant_key, const uint8_t *body,
			    size_t body_len, uint8_t enc_key[32],
			    uint8_t nonce[SNAPBLK_MANIFEST_NONCE_LEN])
{
	uint8_t nonce_key[32], mac[32];
	int ret;

	ret = sb_hmac_sha256(tenant_key, SNAPBLK_TENANT_KEY_LEN,
			     enc_key_label, strlen(enc_key_label), enc_key);
	if (!ret)
		ret = sb_hmac_sha256(tenant_key, SNAPBLK_TENANT_KEY_LEN,
				     nonce_key_label, strlen(nonce_key_label),
				     nonce_key);
	if (!ret && nonce)
		ret = sb_hmac_sha256(nonce_key, sizeof(nonce_key), body,
				     body_len, mac);
	if (!ret && nonce)
		memcpy(nonce, mac, SNAPBLK_MANIFEST_NONCE_LEN);
	OPENSSL_cleanse(nonce_key, sizeof(nonce_key));
	return ret ? SB_MF_CRYPTO : SB_MF_OK;
}

/*
 * AES-256-GCM over len bytes of in into out, with the manifest header as
 * additional data.  Sealing writes the tag; opening checks it.
 */
static int gcm(bool seal, const uint8_t key[32],
	       const struct snapblk_manifest_header *hdr, const uint8_t *in,
	       uint8_t *out, size_t len, uint8_t tag[TAG_LEN])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int ret = SB_MF_CRYPTO, n;
	size_t off, step;

	if (!c)
		return SB_MF_NOMEM;
	if (!EVP_CipherInit_ex2(c, EVP_aes_256_gcm(), key, hdr->nonce, seal,
				NULL) ||
	    !EVP_CipherUpdate(c, NULL, &n, (const uint8_t *)hdr, HDR_LEN))
		goto out;
	for (off = 0; off < len; off += step) {
		step = len - off < GCM_STEP ? len - off : GCM_STEP;
		if (!EVP_CipherUpdate(c, out + off, &n, in + off, (int)step))
			goto out;
	}
	if (!seal && !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN,
					  tag))
		goto out;
	if (!EVP_CipherFinal_ex(c, out + len, &n)) {
		ret = seal ? SB_MF_CRYPTO : SB_MF_AUTH;
		goto out;
	}
	if (seal && !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN,
					 tag))
		goto out;
	ret = SB_MF_OK;
out:
	EVP_CIPHER_CTX_free(c);
	return ret;
}

int sb_manifest_seal(struct sb_manifest *m,
		     const uint8_t tenant_key[SNAPBLK_TENANT_KEY_LEN],
		     uint8_t **out, size_t *out_len)
{
	struct snapblk_manifest_body *b = (void *)m->body;
	struct snapblk_manifest_header hdr;
	uint8_t enc_key[32], *buf;
	size_t len;
	int ret;

	*out = NULL;
	ret = sb_manifest_image_id(m, m->image_id);
	if (ret)
		return ret;
	memset(b, 0, BODY_HDR_LEN);
	b->image_size = htole64(m->image_size);
	b->chunk_size = htole32(m->chunk_size);
	b->chunk_count = htole64(m->chunk_count);
	b->entry_len = htole32(ENTRY_LEN);
	b->layout = htole32(m->layout);
	memcpy(b->image_id, m->image_id, sizeof(b->image_id));
	memcpy(b->secret_id, m->secret_id, sizeof(b->secret_id));

	memset(&hdr, 0, sizeof(hdr));
	memcpy(hdr.magic, SNAPBLK_MANIFEST_MAGIC, SNAPBLK_MANIFEST_MAGIC_LEN);
	hdr.version = htole32(SNAPBLK_MANIFEST_VERSION);
	hdr.header_len = htole32(HDR_LEN);
	hdr.body_len = htole64(m->body_len);
	ret = derive_seal_keys(tenant_key, m->body, m->body_len, enc_key,
			       hdr.nonce);
	if (ret)
		return ret;

	len = HDR_LEN + m->body_len + TAG_LEN;
	buf = malloc(len);
	if (!buf) {
		ret = SB_MF_NOMEM;
		goto out;
	}
	memcpy(buf, &hdr, HDR_LEN);
	ret = gcm(true, enc_key, &hdr, m->body, buf + HDR_LEN, m->body_len,
		  buf + HDR_LEN + m->body_len);
	if (ret) {
		free(buf);
		goto out;
	}
	*out = buf;
	*out_len = len;
out:
	OPENSSL_cleanse(enc_key, sizeof(enc_key));
	return ret;
}

int sb_manifest_parse_header(const void *buf, size_t len,
			     struct snapblk_manifest_header *hdr)
{
	size_t n = len < SNAPBLK_MANIFEST_MAGIC_LEN ?
		   len : SNAPBLK_MANIFEST_MAGIC_LEN;
	uint64_t body_len;

	if (!len || memcmp(buf, SNAPBLK_MANIFEST_MAGIC, n))
		return SB_MF_FOREIGN;
	if (len < HDR_LEN)
		return SB_MF_TRUNCATED;
	memcpy(hdr, buf, HDR_LEN);
	if (le32toh(hdr->version) != SNAPBLK_MANIFEST_VERSION)
		return SB_MF_VERSION;
	if (le32toh(hdr->header_len) != HDR_LEN || hdr->flags ||
	    hdr->__reserved0 || hdr->__reserved1)
		return SB_MF_MALFORMED;
	body_len = le64toh(hdr->body_len);
	if (body_len < body_len_for(0) || body_len > MAX_BODY_LEN ||
	    (body_len - BODY_HDR_LEN) % ENTRY_LEN)
		return SB_MF_MALFORMED;
	if (len - HDR_LEN < body_len + TAG_LEN)
		return SB_MF_TRUNCATED;
	if (len - HDR_LEN > body_len + TAG_LEN)
		return SB_MF_MALFORMED;
	return SB_MF_OK;
}

int sb_manifest_unseal(const void *buf, size_t len,
		       const uint8_t tenant_key[SNAPBLK_TENANT_KEY_LEN],
		       struct sb_manifest *m)
{
	struct snapblk_manifest_header hdr;
	uint8_t enc_key[32], tag[TAG_LEN], *body;
	const uint8_t *p = buf;
	size_t body_len;
	int ret;

	memset(m, 0, sizeof(*m));
	ret = sb_manifest_parse_header(buf, len, &hdr);
	if (ret)
		return ret;
	body_len = le64toh(hdr.body_len);
	body = malloc(body_len);
	if (!body)
		return SB_MF_NOMEM;
	ret = derive_seal_keys(tenant_key, NULL, 0, enc_key, NULL);
	if (!ret) {
		memcpy(tag, p + HDR_LEN + body_len, TAG_LEN);
		ret = gcm(false, enc_key, &hdr, p + HDR_LEN, body, body_len,
			  tag);
	}
	OPENSSL_cleanse(enc_key, sizeof(enc_key));
	if (ret) {
		OPENSSL_clear_free(body, body_len);
		return ret;
	}
	return sb_manifest_parse_body(body, body_len, m);
}

static int check_entries(const struct sb_manifest *m)
{
	static const uint8_t zero[SNAPBLK_ADDR_LEN + SNAPBLK_CHUNK_KEY_LEN];
	const struct snapblk_chunk_entry *e;
	uint64_t i;

	_Static_assert(offsetof(struct snapblk_chunk_entry, key) ==
		       SNAPBLK_ADDR_LEN, "addr and key are adjacent");
	for (i = 0; i < m->chunk_count; i++) {
		e = &m->chunks[i];
		if (le32toh(e->flags) & ~SNAPBLK_CHUNK_F_ALL || e->__reserved)
			return SB_MF_MALFORMED;
		if (sb_entry_is_zero(e) && memcmp(e->addr, zero, sizeof(zero)))
			return SB_MF_MALFORMED;
	}
	return SB_MF_OK;
}

int sb_manifest_parse_body(void *body, size_t len, struct sb_manifest *m)
{
	const struct snapblk_manifest_body *b = body;
	uint8_t id[SNAPBLK_IMAGE_ID_LEN];
	int ret = SB_MF_MALFORMED;

	memset(m, 0, sizeof(*m));
	m->body = body;
	m->body_len = len;
	if (len < BODY_HDR_LEN)
		goto fail;
	m->image_size = le64toh(b->image_size);
	m->chunk_size = le32toh(b->chunk_size);
	m->chunk_count = le64toh(b->chunk_count);
	m->layout = le32toh(b->layout);
	if (!m->image_size || !sb_chunk_size_valid(m->chunk_size) ||
	    b->flags || le32toh(b->entry_len) != ENTRY_LEN ||
	    m->chunk_count > SNAPBLK_MANIFEST_MAX_CHUNKS ||
	    m->chunk_count != sb_manifest_chunks_for(m->image_size,
						     m->chunk_size) ||
	    len != body_len_for(m->chunk_count))
		goto fail;
	m->chunks = (struct snapblk_chunk_entry *)(m->body + BODY_HDR_LEN);
	ret = check_entries(m);
	if (ret)
		goto fail;
	ret = sb_manifest_image_id(m, id);
	if (ret)
		goto fail;
	if (memcmp(id, b->image_id, sizeof(id))) {
		ret = SB_MF_MALFORMED;
		goto fail;
	}
	memcpy(m->image_id, id, sizeof(id));
	memcpy(m->secret_id, b->secret_id, sizeof(m->secret_id));
	return SB_MF_OK;
fail:
	sb_manifest_free(m);
	return ret;
}

static int cmp_addr(const void *a, const void *b)
{
	const struct snapblk_chunk_entry *const *x = a, *const *y = b;

	return memcmp((*x)->addr, (*y)->addr, SNAPBLK_ADDR_LEN);
}

int sb_manifest_count(const struct sb_manifest *m, uint64_t *zero,
		      uint64_t *distinct)
{
	const struct snapblk_chunk_entry **v;
	uint64_t i, n = 0;

	v = malloc((m->chunk_count + 1) * sizeof(*v));
	if (!v)
		return SB_MF_NOMEM;
	for (i = 0; i < m->chunk_count; i++)
		if (!sb_entry_is_zero(&m->chunks[i]))
			v[n++] = &m->chunks[i];
	*zero = m->chunk_count - n;
	qsort(v, n, sizeof(*v), cmp_addr);
	*distinct = 0;
	for (i = 0; i < n; i++)
		if (!i || cmp_addr(&v[i - 1], &v[i]))
			(*distinct)++;
	free(v);
	return SB_MF_OK;
}
