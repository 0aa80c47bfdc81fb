/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Reading an OCI image layout (what `skopeo copy ... oci:DIR` and umoci
 * write): oci-layout, index.json, nested image indexes, the image
 * manifest (OCI, or Docker v2 schema 2), its config and its layers, every
 * blob checked against the size and SHA-256 digest of its descriptor.
 * The result is the list of layer blobs, lowest first, for
 * sb_tree_add_layer() (tree.h); nothing is extracted.
 *
 * Lifetime: an sb_oci_image and everything it points to belongs to the
 * caller, who frees it with sb_oci_free().  Nothing is shared between
 * threads.
 */
#ifndef SNAPBLK_USER_SB_OCI_H
#define SNAPBLK_USER_SB_OCI_H

#include <stdint.h>

/* "sha256:" and 64 hex digits, NUL-terminated, fits in this. */
#define SB_OCI_DIGEST_LEN 72

/* One layer of the image, as its manifest lists it. */
struct sb_oci_layer {
	char *path;		/* the blob: DIR/blobs/sha256/<hex> */
	char *media_type;	/* as the manifest gives it: tar, tar+gzip
				 * or tar+zstd (OCI or Docker name) */
	char digest[SB_OCI_DIGEST_LEN];	/* "sha256:<hex>", checked */
	uint64_t size;		/* bytes of the blob, checked */
};

struct sb_oci_image {
	struct sb_oci_layer *layers;	/* nlayers of them, lowest first */
	unsigned int nlayers;
	char manifest_digest[SB_OCI_DIGEST_LEN];  /* the image manifest
						   * chosen (not an index) */
	char config_digest[SB_OCI_DIGEST_LEN];
};

/*
 * Open the image layout @spec, "DIR" or "DIR:REF", into *@img.  REF is
 * an org.opencontainers.image.ref.name annotation of index.json or a
 * manifest digest "sha256:<hex>"; without REF the layout must hold one
 * image.  An image index is followed to its linux/amd64 manifest (or its
 * only one).  Every blob read is checked against its descriptor's size
 * and digest, the layers too: each layer blob is read in full once here.
 *
 * Returns 0, or -1 after err_report() said what is wrong and what to do;
 * on failure *@img is left empty (sb_oci_free() on it is harmless).
 */
int sb_oci_open(const char *spec, struct sb_oci_image *img);

/* Free what sb_oci_open() filled in and empty *@img. */
void sb_oci_free(struct sb_oci_image *img);

#endif
