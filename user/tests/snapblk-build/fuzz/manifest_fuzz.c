// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for the manifest reader (user/lib/manifest.c).
 *
 * The first input byte picks what the rest is:
 *   0: a manifest file, unsealed with a fixed tenant key (the header
 *      checks and GCM authentication);
 *   1: an unsealed body, parsed as is;
 *   2: an unsealed body whose image ID is first fixed up, so that the
 *      fuzzer gets past that hash to bodies that parse; each one that
 *      does is sealed and unsealed again and must come back unchanged.
 *
 *   make build/fuzz/manifest_fuzz
 *   build/fuzz/manifest_fuzz -max_total_time=600 CORPUS_DIR
 */
#include <endian.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"

static const uint8_t key[SNAPBLK_TENANT_KEY_LEN] = { 1, 2, 3, 4, 5 };

static void fix_image_id(uint8_t *body, size_t len)
{
	struct snapblk_manifest_body *b = (void *)body;
	struct sb_manifest m = { 0 };

	if (len < sizeof(*b) || (len - sizeof(*b)) %
	    sizeof(struct snapblk_chunk_entry))
		return;
	m.image_size = le64toh(b->image_size);
	m.chunk_size = le32toh(b->chunk_size);
	m.chunk_count = (len - sizeof(*b)) /
			sizeof(struct snapblk_chunk_entry);
	m.chunks = (void *)(body + sizeof(*b));
	sb_manifest_image_id(&m, b->image_id);
}

static void round_trip(struct sb_manifest *m)
{
	struct sb_manifest back;
	uint8_t *buf;
	size_t len;

	if (sb_manifest_seal(m, key, &buf, &len))
		abort();
	if (sb_manifest_unseal(buf, len, key, &back))
		abort();
	if (back.body_len != m->body_len ||
	    memcmp(back.body, m->body, m->body_len))
		abort();
	sb_manifest_free(&back);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snapblk_manifest_header hdr;
	struct sb_manifest m;
	uint8_t *body;

	if (!size)
		return 0;
	switch (data[0] % 3) {
	case 0:
		sb_manifest_parse_header(data + 1, size - 1, &hdr);
		if (!sb_manifest_unseal(data + 1, size - 1, key, &m))
			sb_manifest_free(&m);
		break;
	default:
		body = malloc(size);
		if (!body)
			return 0;
		memcpy(body, data + 1, size - 1);
		if (data[0] % 3 == 2)
			fix_image_id(body, size - 1);
		if (!sb_manifest_parse_body(body, size - 1, &m)) {
			round_trip(&m);
			sb_manifest_free(&m);
		}
		break;
	}
	return 0;
}
