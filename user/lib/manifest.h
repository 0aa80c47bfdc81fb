/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Manifests: build, seal, unseal and check them (Documentation/format.md,
 * "Manifest").  No file I/O here: callers read and write the bytes, so
 * that both snapblk-build and snapblk can use it.
 *
 * A struct sb_manifest owns its unsealed body (the bytes that the kernel
 * is given): a struct snapblk_manifest_body followed by the chunk table.
 * The decoded fields beside it are in host byte order.
 */
#ifndef SNAPBLK_USER_MANIFEST_H
#define SNAPBLK_USER_MANIFEST_H

#include <endian.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/snapblk.h>

struct sb_manifest {
	uint64_t image_size;
	uint32_t chunk_size;
	uint64_t chunk_count;
	uint32_t layout;			/* SNAPBLK_LAYOUT_* */
	uint8_t image_id[SNAPBLK_IMAGE_ID_LEN];
	uint8_t secret_id[SNAPBLK_SECRET_ID_LEN];
	struct snapblk_chunk_entry *chunks;	/* chunk_count, in body */
	uint8_t *body;				/* unsealed body */
	size_t body_len;
};

/* The longest manifest file there can be (header, 2^24 entries, tag). */
#define SB_MANIFEST_MAX_FILE_LEN \
	(sizeof(struct snapblk_manifest_header) + \
	 sizeof(struct snapblk_manifest_body) + \
	 (size_t)SNAPBLK_MANIFEST_MAX_CHUNKS * \
	 sizeof(struct snapblk_chunk_entry) + SNAPBLK_MANIFEST_TAG_LEN)

/* Results of the functions below; sb_manifest_strerror() names them. */
enum sb_manifest_err {
	SB_MF_OK,
	SB_MF_FOREIGN,		/* not a snapblk manifest */
	SB_MF_TRUNCATED,	/* shorter than its header says */
	SB_MF_VERSION,		/* format version we do not know */
	SB_MF_MALFORMED,	/* a field out of range, trailing data */
	SB_MF_AUTH,		/* GCM tag mismatch: wrong key or damage */
	SB_MF_NOMEM,
	SB_MF_CRYPTO,		/* OpenSSL failed */
	SB_MF_INVALID,		/* bad arguments (image size, chunk size) */
};

/* What went wrong, and what the user can do about it. */
const char *sb_manifest_strerror(int err);
const char *sb_manifest_hint(int err);
/*
 * The exit status every tool gives for err: SB_EXIT_AUTH (4) for
 * SB_MF_AUTH; SB_EXIT_MANIFEST (5) for not a manifest, truncated,
 * unsupported version or malformed; EXIT_FAIL (1) otherwise (util.h).
 */
int sb_manifest_exit(int err);

/* DIV_ROUND_UP(image_size, chunk_size) */
uint64_t sb_manifest_chunks_for(uint64_t image_size, uint32_t chunk_size);

/*
 * Start a manifest for an image: allocates a zeroed chunk table that the
 * caller fills in, and sets secret_id to zero.  SB_MF_INVALID for an
 * empty or too large image or a chunk size out of range.
 */
int sb_manifest_init(struct sb_manifest *m, uint64_t image_size,
		     uint32_t chunk_size);
void sb_manifest_free(struct sb_manifest *m);

/* The image ID of m's chunk table (format.md, "Image ID"). */
int sb_manifest_image_id(const struct sb_manifest *m,
			 uint8_t id[SNAPBLK_IMAGE_ID_LEN]);

/*
 * Fill in the body header and image ID, then seal with the tenant key into
 * a new buffer *out of *out_len bytes (free() it).  Deterministic: the
 * same manifest and key always give the same bytes.
 */
int sb_manifest_seal(struct sb_manifest *m,
		     const uint8_t tenant_key[SNAPBLK_TENANT_KEY_LEN],
		     uint8_t **out, size_t *out_len);

/* Check the unsealed header of a manifest file; needs no key. */
int sb_manifest_parse_header(const void *buf, size_t len,
			     struct snapblk_manifest_header *hdr);

/* Check and unseal a whole manifest file's bytes into m. */
int sb_manifest_unseal(const void *buf, size_t len,
		       const uint8_t tenant_key[SNAPBLK_TENANT_KEY_LEN],
		       struct sb_manifest *m);

/*
 * Check an unsealed body and decode it into m.  Takes ownership of body
 * (a malloc()ed buffer), on failure too.
 */
int sb_manifest_parse_body(void *body, size_t len, struct sb_manifest *m);

/* Count ZERO chunks and distinct stored addresses. */
int sb_manifest_count(const struct sb_manifest *m, uint64_t *zero,
		      uint64_t *distinct);

/* Is this chunk table entry an all-zero (unstored) chunk? */
static inline int sb_entry_is_zero(const struct snapblk_chunk_entry *e)
{
	return !!(le32toh(e->flags) & SNAPBLK_CHUNK_F_ZERO);
}

#endif
