// SPDX-License-Identifier: GPL-2.0
/*
 * An OCI image layout in: oci-layout, index.json, the chosen manifest
 * (through nested image indexes), its config and its layers, each blob
 * checked against its descriptor.  The layers are not parsed here; their
 * paths go to sb_tree_add_layer().  JSON is parsed by json-c, digests
 * computed with OpenSSL's EVP interface.
 *
 * The media types are those of the OCI image specification 1.1 and of
 * Docker's image manifest v2 schema 2, which skopeo writes with
 * --format v2s2.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "file.h"
#include "hex.h"
#include "oci.h"
#include "util.h"

/* Manifests, indexes and configs are small; registries cap them at 4 MiB. */
#define OCI_JSON_MAX (4u << 20)
/* Image indexes followed below index.json before giving up. */
#define OCI_MAX_DEPTH 4
#define OCI_READ_BUF (1u << 20)

#define MT_OCI_INDEX	"application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST	"application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_CONFIG	"application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_LIST	"application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_V1	"application/vnd.docker.distribution.manifest.v1"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define ANN_REF_NAME	"org.opencontainers.image.ref.name"

#define HINT_DAMAGED	"check the digest: the layout is damaged"

/* Layer media types read by sb_tree_add_layer() (libarchive). */
static const char *const layer_types[] = {
	"application/vnd.oci.image.layer.v1.tar",
	"application/vnd.oci.image.layer.v1.tar+gzip",
	"application/vnd.oci.image.layer.v1.tar+zstd",
	"application/vnd.oci.image.layer.nondistributable.v1.tar",
	"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
	"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
	"application/vnd.docker.image.rootfs.diff.tar",
	"application/vnd.docker.image.rootfs.diff.tar.gzip",
	"application/vnd.docker.image.rootfs.diff.tar.zstd",
	"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
};

/*
 * A descriptor read from JSON.  The strings point into the json-c object
 * it came from and live as long as that object.
 */
struct oci_desc {
	const char *media_type;	/* NULL when the descriptor has none */
	const char *digest;	/* "sha256:" and 64 lower-case hex digits */
	uint64_t size;
	json_object *obj;	/* the descriptor object itself */
};

/* The layout being read: DIR, for messages and blob paths. */
struct oci_ctx {
	const char *dir;
};

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* An array member of o, or NULL. */
static json_object *jarray(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_array))
		return NULL;
	return v;
}

/* The ref name annotation of a descriptor, or NULL. */
static const char *ref_name(json_object *desc)
{
	json_object *ann;

	if (!json_object_object_get_ex(desc, "annotations", &ann) ||
	    !json_object_is_type(ann, json_type_object))
		return NULL;
	return jstr(ann, ANN_REF_NAME);
}

/*
 * Parse all of buf as one JSON object (trailing white space allowed).
 * NULL after err_report() naming @what.
 */
static json_object *parse_json(const struct oci_ctx *c, const char *what,
			       const char *buf, size_t len)
{
	enum json_tokener_error jerr;
	json_tokener *tok;
	json_object *o;
	size_t end;

	if (len > INT32_MAX) {
		err_report(EFBIG, NULL, "%s: %s", c->dir, what);
		return NULL;
	}
	tok = json_tokener_new();
	if (!tok) {
		err_report(ENOMEM, NULL, "%s: %s", c->dir, what);
		return NULL;
	}
	o = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!o || jerr != json_tokener_success) {
		err_report(0, HINT_DAMAGED, "%s: %s is not JSON: %s", c->dir,
			   what, jerr == json_tokener_continue ?
			   "it ends early" : json_tokener_error_desc(jerr));
		goto fail;
	}
	for (; end < len; end++) {
		if (!strchr(" \t\r\n", buf[end])) {
			err_report(0, HINT_DAMAGED,
				   "%s: %s has text after its JSON object",
				   c->dir, what);
			goto fail;
		}
	}
	if (!json_object_is_type(o, json_type_object)) {
		err_report(0, HINT_DAMAGED, "%s: %s is not a JSON object",
			   c->dir, what);
		goto fail;
	}
	return o;
fail:
	json_object_put(o);
	return NULL;
}

/* Whether s is "sha256:" and 64 lower-case hex digits. */
static bool digest_ok(const char *s)
{
	size_t i;

	if (strncmp(s, "sha256:", 7) || strlen(s) != 7 + 64)
		return false;
	for (i = 7; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* Read descriptor o (of @what) into *d; -1 after err_report(). */
static int get_desc(const struct oci_ctx *c, const char *what, json_object *o,
		    struct oci_desc *d)
{
	json_object *v;
	int64_t size;

	if (!json_object_is_type(o, json_type_object)) {
		err_report(0, HINT_DAMAGED, "%s: %s is not a descriptor",
			   c->dir, what);
		return -1;
	}
	d->obj = o;
	d->media_type = jstr(o, "mediaType");
	d->digest = jstr(o, "digest");
	if (!d->digest) {
		err_report(0, HINT_DAMAGED, "%s: %s has no digest", c->dir,
			   what);
		return -1;
	}
	if (!digest_ok(d->digest)) {
		err_report(0, !strncmp(d->digest, "sha256:", 7) ? HINT_DAMAGED :
			   "snapblk-build reads sha256 digests only",
			   "%s: %s has digest '%.80s', not sha256 and 64 hex digits",
			   c->dir, what, d->digest);
		return -1;
	}
	if (!json_object_object_get_ex(o, "size", &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    (size = json_object_get_int64(v)) < 0) {
		err_report(0, HINT_DAMAGED, "%s: %s %s has no valid size",
			   c->dir, what, d->digest);
		return -1;
	}
	d->size = size;
	return 0;
}

static char *blob_path(const struct oci_ctx *c, const char *digest)
{
	char *p;

	if (asprintf(&p, "%s/blobs/sha256/%s", c->dir, digest + 7) < 0)
		return NULL;
	return p;
}

/*
 * Read the blob of descriptor d (of @what) and check its size and
 * SHA-256 against d.  With buf, the blob (at most max bytes) is returned
 * in a new buffer (free() it), NUL-terminated; without, it is only hashed.
 * 0, or -1 after err_report().
 */
static int check_blob(const struct oci_ctx *c, const char *what,
		      const struct oci_desc *d, size_t max, char **buf)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char hex[2 * 32 + 1];
	EVP_MD_CTX *mdc = NULL;
	uint64_t got = 0;
	unsigned int mdlen;
	char *data = NULL;
	char *chunk = NULL;
	char *path;
	struct stat st;
	int fd = -1;
	int ret = -1;
	ssize_t n;

	path = blob_path(c, d->digest);
	if (!path) {
		err_report(ENOMEM, NULL, "%s: %s", c->dir, what);
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err_report(errno, errno == ENOENT ?
			   "the layout is incomplete: copy the image again" :
			   NULL, "%s: %s %s: %s", c->dir, what, d->digest,
			   path);
		goto out;
	}
	if (fstat(fd, &st)) {
		err_report(errno, NULL, "%s: %s", c->dir, path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err_report(0, HINT_DAMAGED, "%s: %s %s is not a regular file",
			   c->dir, what, d->digest);
		goto out;
	}
	if ((uint64_t)st.st_size != d->size) {
		err_report(0, HINT_DAMAGED,
			   "%s: %s %s is %llu bytes, its descriptor says %llu",
			   c->dir, what, d->digest,
			   (unsigned long long)st.st_size,
			   (unsigned long long)d->size);
		goto out;
	}
	if (buf) {
		if (d->size > max) {
			err_report(EFBIG, NULL, "%s: %s %s (%llu bytes)",
				   c->dir, what, d->digest,
				   (unsigned long long)d->size);
			goto out;
		}
		data = malloc(d->size + 1);
	}
	chunk = malloc(OCI_READ_BUF);
	mdc = EVP_MD_CTX_new();
	if ((buf && !data) || !chunk || !mdc ||
	    !EVP_DigestInit_ex(mdc, EVP_sha256(), NULL)) {
		err_report(ENOMEM, NULL, "%s: %s", c->dir, what);
		goto out;
	}
	/*
	 * Read to the end, not to d->size: a blob that grew since the
	 * fstat() fails the size check below rather than passing on its
	 * first bytes.
	 */
	for (;;) {
		n = read(fd, chunk, OCI_READ_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_report(errno, NULL, "%s: reading %s %s", c->dir,
				   what, d->digest);
			goto out;
		}
		if (!n)
			break;
		if (!EVP_DigestUpdate(mdc, chunk, n)) {
			err_report(ENOMEM, NULL, "%s: SHA-256 of %s", c->dir,
				   what);
			goto out;
		}
		if (data && got + n <= d->size)
			memcpy(data + got, chunk, n);
		got += n;
	}
	if (got != d->size) {
		err_report(0, HINT_DAMAGED,
			   "%s: %s %s changed size while being read",
			   c->dir, what, d->digest);
		goto out;
	}
	if (!EVP_DigestFinal_ex(mdc, md, &mdlen) || mdlen != 32) {
		err_report(EIO, NULL, "%s: SHA-256 of %s", c->dir, what);
		goto out;
	}
	sb_hex(md, 32, hex);
	if (strcmp(hex, d->digest + 7)) {
		err_report(0, HINT_DAMAGED,
			   "%s: %s %s does not match its digest (its SHA-256 is %s)",
			   c->dir, what, d->digest, hex);
		goto out;
	}
	if (buf) {
		data[d->size] = '\0';
		*buf = data;
		data = NULL;
	}
	ret = 0;
out:
	EVP_MD_CTX_free(mdc);
	free(chunk);
	free(data);
	if (fd >= 0)
		close(fd);
	free(path);
	return ret;
}

/* Read, check and parse the JSON blob of d; NULL after err_report(). */
static json_object *read_json_blob(const struct oci_ctx *c, const char *what,
				   const struct oci_desc *d)
{
	json_object *o;
	char label[128];
	char *buf;

	if (check_blob(c, what, d, OCI_JSON_MAX, &buf))
		return NULL;
	snprintf(label, sizeof(label), "%s %.71s", what, d->digest);
	o = parse_json(c, label, buf, d->size);
	free(buf);
	return o;
}

/*
 * Append "a, b, c" (each descriptor's ref name, or its digest when it
 * has none) to hint.
 */
static void list_refs(json_object *mans, char *hint, size_t len)
{
	size_t i, n = json_object_array_length(mans);
	size_t used = strlen(hint);

	for (i = 0; i < n && used + 1 < len; i++) {
		json_object *m = json_object_array_get_idx(mans, i);
		const char *name = ref_name(m);

		if (!name)
			name = jstr(m, "digest");
		used += snprintf(hint + used, len - used, "%s%s",
				 i ? ", " : "", name ? name : "?");
	}
}

/*
 * Among the descriptors of index @what whose indexes are in cand (n of
 * them, n >= 2), the linux/amd64 one; -1 after err_report() when there
 * is none.  Two linux/amd64 entries (variants): the first.
 */
static int pick_platform(const struct oci_ctx *c, const char *what,
			 json_object *mans, const size_t *cand, size_t n)
{
	char list[512] = "";
	size_t i, used = 0;

	for (i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(mans, cand[i]);
		const char *os = NULL, *arch = NULL;
		json_object *p;

		if (json_object_object_get_ex(m, "platform", &p) &&
		    json_object_is_type(p, json_type_object)) {
			os = jstr(p, "os");
			arch = jstr(p, "architecture");
		}
		if (os && arch && !strcmp(os, "linux") &&
		    !strcmp(arch, "amd64"))
			return cand[i];
		if (used + 1 < sizeof(list))
			used += snprintf(list + used, sizeof(list) - used,
					 "%s%s/%s", i ? ", " : "",
					 os ? os : "?", arch ? arch : "?");
	}
	err_report(0, "snapblk-build builds linux/amd64 images",
		   "%s: %s has no linux/amd64 image, only %s", c->dir, what,
		   list);
	return -1;
}

/*
 * Choose a manifest of index @idx: of index.json (@top) the one @ref
 * names, or the only one; of a nested index the only one or the
 * linux/amd64 one.  Returns its position in the manifests array, or -1
 * after err_report().
 */
static int choose(const struct oci_ctx *c, const char *what, json_object *idx,
		  bool top, const char *ref)
{
	char hint[1024];
	json_object *mans;
	size_t *cand = NULL;
	size_t i, n, nc = 0;
	int ret = -1;

	mans = jarray(idx, "manifests");
	if (!mans) {
		err_report(0, HINT_DAMAGED, "%s: %s has no manifests list",
			   c->dir, what);
		return -1;
	}
	n = json_object_array_length(mans);
	if (!n) {
		err_report(0, "copy an image into it first, e.g. skopeo copy docker://IMAGE oci:DIR:REF",
			   "%s: %s holds no image", c->dir, what);
		return -1;
	}
	cand = calloc(n, sizeof(*cand));
	if (!cand) {
		err_report(ENOMEM, NULL, "%s: %s", c->dir, what);
		return -1;
	}
	for (i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(mans, i);
		const char *name = ref_name(m), *dg = jstr(m, "digest");

		if (!ref || (name && !strcmp(name, ref)) ||
		    (!strncmp(ref, "sha256:", 7) && dg && !strcmp(dg, ref)))
			cand[nc++] = i;
	}
	if (!nc) {
		snprintf(hint, sizeof(hint), "give one of the refs: ");
		list_refs(mans, hint, sizeof(hint));
		err_report(0, hint, "%s: no image '%s' in %s", c->dir, ref,
			   what);
		goto out;
	}
	if (nc == 1) {
		ret = cand[0];
		goto out;
	}
	if (top && !ref) {
		snprintf(hint, sizeof(hint), "give one of the refs as %s:REF: ",
			 c->dir);
		list_refs(mans, hint, sizeof(hint));
		err_report(0, hint, "%s: the layout holds %zu images", c->dir,
			   n);
		goto out;
	}
	ret = pick_platform(c, what, mans, cand, nc);
out:
	free(cand);
	return ret;
}

static bool is_index_type(const char *mt)
{
	return !strcmp(mt, MT_OCI_INDEX) || !strcmp(mt, MT_DOCKER_LIST);
}

static bool is_manifest_type(const char *mt)
{
	return !strcmp(mt, MT_OCI_MANIFEST) || !strcmp(mt, MT_DOCKER_MANIFEST);
}

/*
 * The media type of blob o fetched through descriptor d: the
 * descriptor's, which the blob's own mediaType field (when present)
 * must equal.  NULL after err_report().
 */
static const char *blob_type(const struct oci_ctx *c, const struct oci_desc *d,
			     json_object *o)
{
	const char *own = jstr(o, "mediaType");

	if (d->media_type && own && strcmp(d->media_type, own)) {
		err_report(0, HINT_DAMAGED,
			   "%s: %s is a %s, its descriptor says %s", c->dir,
			   d->digest, own, d->media_type);
		return NULL;
	}
	if (!d->media_type && !own) {
		err_report(0, HINT_DAMAGED, "%s: %s has no media type",
			   c->dir, d->digest);
		return NULL;
	}
	return d->media_type ? d->media_type : own;
}

static bool layer_type_ok(const char *mt)
{
	size_t i;

	for (i = 0; i < sizeof(layer_types) / sizeof(layer_types[0]); i++)
		if (!strcmp(mt, layer_types[i]))
			return true;
	return false;
}

/* Fill img from manifest m (of descriptor d): config and layers. */
static int read_manifest(const struct oci_ctx *c, const struct oci_desc *d,
			 json_object *m, struct sb_oci_image *img)
{
	struct oci_desc cd, ld;
	json_object *cfg, *layers, *co;
	char what[64];
	size_t i, n;

	if (!json_object_object_get_ex(m, "config", &cfg) ||
	    get_desc(c, "config", cfg, &cd))
		goto damaged;
	if (!cd.media_type || (strcmp(cd.media_type, MT_OCI_CONFIG) &&
			       strcmp(cd.media_type, MT_DOCKER_CONFIG))) {
		err_report(0, "give the ref of a container image",
			   "%s: manifest %s is not a container image (config media type %s)",
			   c->dir, d->digest,
			   cd.media_type ? cd.media_type : "missing");
		return -1;
	}
	co = read_json_blob(c, "config", &cd);
	if (!co)
		return -1;
	json_object_put(co);
	snprintf(img->config_digest, sizeof(img->config_digest), "%s",
		 cd.digest);

	layers = jarray(m, "layers");
	if (!layers)
		goto damaged;
	n = json_object_array_length(layers);
	img->layers = calloc(n ? n : 1, sizeof(*img->layers));
	if (!img->layers) {
		err_report(ENOMEM, NULL, "%s: manifest %s", c->dir, d->digest);
		return -1;
	}
	for (i = 0; i < n; i++) {
		struct sb_oci_layer *l = &img->layers[i];

		snprintf(what, sizeof(what), "layer %zu", i + 1);
		if (get_desc(c, what, json_object_array_get_idx(layers, i),
			     &ld))
			return -1;
		if (!ld.media_type) {
			err_report(0, HINT_DAMAGED,
				   "%s: %s %s has no media type", c->dir,
				   what, ld.digest);
			return -1;
		}
		if (strstr(ld.media_type, "+encrypted")) {
			err_report(0, "decrypt the image first: skopeo copy --decryption-key KEY oci:DIR:REF oci:DIR2:REF",
				   "%s: %s %s is encrypted (%s)", c->dir,
				   what, ld.digest, ld.media_type);
			return -1;
		}
		if (!layer_type_ok(ld.media_type)) {
			err_report(0, "snapblk-build reads tar, tar+gzip and tar+zstd layers",
				   "%s: %s %s has media type %s, not a tar layer",
				   c->dir, what, ld.digest, ld.media_type);
			return -1;
		}
		/*
		 * The whole layer is read here, once, to check its digest;
		 * sb_tree_add_layer() reads it again to build the tree.
		 */
		if (check_blob(c, what, &ld, 0, NULL))
			return -1;
		l->path = blob_path(c, ld.digest);
		l->media_type = strdup(ld.media_type);
		if (!l->path || !l->media_type) {
			free(l->path);
			free(l->media_type);
			err_report(ENOMEM, NULL, "%s: %s", c->dir, what);
			return -1;
		}
		snprintf(l->digest, sizeof(l->digest), "%s", ld.digest);
		l->size = ld.size;
		img->nlayers++;
	}
	snprintf(img->manifest_digest, sizeof(img->manifest_digest), "%s",
		 d->digest);
	return 0;
damaged:
	err_report(0, HINT_DAMAGED, "%s: manifest %s has no valid %s", c->dir,
		   d->digest, jarray(m, "layers") ? "config" : "layers list");
	return -1;
}

/*
 * DIR/@name (at most max bytes), parsed; NULL after err_report() with
 * @hint when the file cannot be read.
 */
static json_object *read_layout_json(const struct oci_ctx *c,
				     const char *name, size_t max,
				     const char *hint)
{
	json_object *o;
	uint8_t *buf;
	char *path;
	size_t len;
	int ret;

	if (asprintf(&path, "%s/%s", c->dir, name) < 0) {
		err_report(ENOMEM, NULL, "%s", c->dir);
		return NULL;
	}
	ret = sb_read_file(path, max, &buf, &len);
	if (ret) {
		err_report(-ret, hint, "%s", path);
		free(path);
		return NULL;
	}
	free(path);
	o = parse_json(c, name, (char *)buf, len);
	free(buf);
	return o;
}

/* Read and check DIR/oci-layout; -1 after err_report(). */
static int check_layout(const struct oci_ctx *c)
{
	json_object *o;
	const char *v;
	int ret = 0;

	o = read_layout_json(c, "oci-layout", 4096,
			     "give the directory of an OCI image layout, as written by skopeo copy ... oci:DIR or umoci init");
	if (!o)
		return -1;
	v = jstr(o, "imageLayoutVersion");
	if (!v || strcmp(v, "1.0.0")) {
		err_report(0, "snapblk-build reads image layout version 1.0.0",
			   "%s: image layout version %s", c->dir,
			   v ? v : "missing");
		ret = -1;
	}
	json_object_put(o);
	return ret;
}

/*
 * Follow index.json (and nested indexes) to a manifest; fill img.  The
 * descriptor d points into idx, so the index it came from is released
 * only once the blob it leads to replaces it.
 */
static int resolve(const struct oci_ctx *c, json_object *top, const char *ref,
		   struct sb_oci_image *img)
{
	json_object *idx = top, *held = NULL, *blob = NULL;
	char what[96] = "index.json";
	struct oci_desc d;
	const char *mt;
	int depth, i, ret = -1;

	for (depth = 0; depth <= OCI_MAX_DEPTH; depth++) {
		json_object *mans;

		i = choose(c, what, idx, !depth, depth ? NULL : ref);
		if (i < 0)
			goto out;
		mans = jarray(idx, "manifests");
		if (get_desc(c, "manifest", json_object_array_get_idx(mans, i),
			     &d))
			goto out;
		if (d.media_type && !strncmp(d.media_type, MT_DOCKER_V1,
					     strlen(MT_DOCKER_V1))) {
			err_report(0, "convert it: skopeo copy --format oci oci:DIR:REF oci:DIR2:REF",
				   "%s: manifest %s is Docker schema 1",
				   c->dir, d.digest);
			goto out;
		}
		blob = read_json_blob(c, "manifest", &d);
		if (!blob)
			goto out;
		mt = blob_type(c, &d, blob);
		if (!mt)
			goto out;
		if (is_manifest_type(mt)) {
			ret = read_manifest(c, &d, blob, img);
			goto out;
		}
		if (!is_index_type(mt)) {
			err_report(0, "give the ref of a container image",
				   "%s: %s has media type %s, not an image manifest or index",
				   c->dir, d.digest, mt);
			goto out;
		}
		snprintf(what, sizeof(what), "image index %.71s", d.digest);
		json_object_put(held);
		idx = held = blob;
		blob = NULL;
	}
	err_report(0, HINT_DAMAGED, "%s: image indexes nested more than %d deep",
		   c->dir, OCI_MAX_DEPTH);
out:
	json_object_put(blob);
	json_object_put(held);
	return ret;
}

int sb_oci_open(const char *spec, struct sb_oci_image *img)
{
	struct oci_ctx c;
	json_object *top;
	char *dir, *ref;
	int ret;

	memset(img, 0, sizeof(*img));
	dir = strdup(spec);
	if (!dir) {
		err_report(ENOMEM, NULL, "%s", spec);
		return -1;
	}
	/* skopeo's oci:DIR:REF: the first colon ends DIR. */
	ref = strchr(dir, ':');
	if (ref) {
		*ref++ = '\0';
		if (!*ref || !*dir) {
			err_report(0, "give DIR or DIR:REF",
				   "%s: an empty %s", spec,
				   *dir ? "REF" : "directory");
			free(dir);
			return -1;
		}
	}
	c.dir = dir;
	ret = check_layout(&c);
	if (ret)
		goto out;
	top = read_layout_json(&c, "index.json", OCI_JSON_MAX, HINT_DAMAGED);
	if (!top) {
		ret = -1;
		goto out;
	}
	ret = resolve(&c, top, ref, img);
	json_object_put(top);
out:
	if (ret)
		sb_oci_free(img);
	free(dir);
	return ret ? -1 : 0;
}

void sb_oci_free(struct sb_oci_image *img)
{
	unsigned int i;

	for (i = 0; i < img->nlayers; i++) {
		free(img->layers[i].path);
		free(img->layers[i].media_type);
	}
	free(img->layers);
	memset(img, 0, sizeof(*img));
}
