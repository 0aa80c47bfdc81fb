// SPDX-License-Identifier: GPL-2.0
/*
 * sb_oci_open() on image layouts written here by hand, for what umoci and
 * skopeo do not write on this machine: nested image indexes and platform
 * choice, Docker and zstd media types, encrypted and foreign layers, bad
 * digests and JSON.  build_oci.sh runs the real layouts through
 *
 *	build_oci --print DIR[:REF]
 *
 * which prints what sb_oci_open() returns ("manifest D", "config D", then
 * "layer N MEDIA-TYPE DIGEST SIZE PATH" lowest first), or its error and
 * exit status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "capture.h"

#include "chunk.h"
#include "hex.h"
#include "oci.h"
#include "util.h"

#define T_GZ "application/vnd.oci.image.layer.v1.tar+gzip"
#define T_ZST "application/vnd.oci.image.layer.v1.tar+zstd"
#define T_TAR "application/vnd.oci.image.layer.v1.tar"
#define T_MAN "application/vnd.oci.image.manifest.v1+json"
#define T_IDX "application/vnd.oci.image.index.v1+json"
#define T_CFG "application/vnd.oci.image.config.v1+json"
#define D_MAN "application/vnd.docker.distribution.manifest.v2+json"
#define D_CFG "application/vnd.docker.container.image.v1+json"
#define D_GZ "application/vnd.docker.image.rootfs.diff.tar.gzip"

static int print_image(const char *spec)
{
	struct sb_oci_image img;
	unsigned int i;

	prog_name = "build_oci";
	if (sb_oci_open(spec, &img))
		return 1;
	printf("manifest %s\nconfig %s\n", img.manifest_digest,
	       img.config_digest);
	for (i = 0; i < img.nlayers; i++)
		printf("layer %u %s %s %llu %s\n", i + 1,
		       img.layers[i].media_type, img.layers[i].digest,
		       (unsigned long long)img.layers[i].size,
		       img.layers[i].path);
	sb_oci_free(&img);
	return 0;
}

static int rm_one(const char *p, const struct stat *s, int t, struct FTW *f)
{
	(void)s;
	(void)f;
	return t == FTW_DP ? rmdir(p) : unlink(p);
}

static int write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, buf, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

/*
 * A layout under a temporary directory: oci-layout, blobs/sha256/, and
 * index.json once written.  Blobs are what the test gives; sb_oci_open()
 * does not look inside layers.
 */
FIXTURE(lay) {
	char dir[64];
	char err[4096];		/* stderr of the last open_err() */
	struct sb_oci_image img;
};

FIXTURE_SETUP(lay)
{
	char p[128];

	strcpy(self->dir, "/tmp/build_oci.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(p, sizeof(p), "%s/blobs", self->dir);
	ASSERT_EQ(0, mkdir(p, 0755));
	snprintf(p, sizeof(p), "%s/blobs/sha256", self->dir);
	ASSERT_EQ(0, mkdir(p, 0755));
	snprintf(p, sizeof(p), "%s/oci-layout", self->dir);
	ASSERT_EQ(0, write_file(p, "{\"imageLayoutVersion\":\"1.0.0\"}", 30));
	memset(&self->img, 0, sizeof(self->img));
	prog_name = "build_oci";
}

FIXTURE_TEARDOWN(lay)
{
	sb_oci_free(&self->img);
	nftw(self->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Store buf as a blob; its digest into dg ("sha256:<hex>"). */
static int put_blob(const char *dir, const void *buf, size_t len,
		    char dg[SB_OCI_DIGEST_LEN])
{
	uint8_t md[32];
	char p[256];

	if (sb_sha256(buf, len, md))
		return -1;
	strcpy(dg, "sha256:");
	sb_hex(md, 32, dg + 7);
	snprintf(p, sizeof(p), "%s/blobs/sha256/%s", dir, dg + 7);
	return write_file(p, buf, len);
}

/* printf into a new blob; its digest into dg, its size returned. */
static size_t put_json(const char *dir, char dg[SB_OCI_DIGEST_LEN],
		       const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0 || put_blob(dir, s, n, dg))
		n = 0;
	free(s);
	return n;
}

static int put_index(const char *dir, const char *fmt, ...)
{
	char p[128];
	va_list ap;
	char *s;
	int n, ret;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/index.json", dir);
	ret = write_file(p, s, n);
	free(s);
	return ret;
}

/* index.json listing one descriptor, of media type mt. */
static int put_one(const char *dir, const char *mt, const char *dg, size_t size)
{
	return put_index(dir, "{\"schemaVersion\":2,\"manifests\":[{"
			 "\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}]}",
			 mt, dg, size);
}

/*
 * A manifest (media type mt) with a config of type ct and two layers of
 * type lt, "layer one" and "layer two"; its digest into dg, size returned.
 */
static size_t put_image(const char *dir, const char *mt, const char *ct,
			const char *lt, char dg[SB_OCI_DIGEST_LEN])
{
	char c[SB_OCI_DIGEST_LEN], l1[SB_OCI_DIGEST_LEN], l2[SB_OCI_DIGEST_LEN];
	size_t cs;

	cs = put_json(dir, c, "{\"architecture\":\"amd64\",\"os\":\"linux\"}");
	if (!cs || put_blob(dir, "layer one", 9, l1) ||
	    put_blob(dir, "layer two!", 10, l2))
		return 0;
	return put_json(dir, dg,
			"{\"schemaVersion\":2,\"mediaType\":\"%s\","
			"\"config\":{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu},"
			"\"layers\":[{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":9},"
			"{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":10}]}",
			mt, ct, c, cs, lt, l1, lt, l2);
}

/* sb_oci_open() with its stderr caught in self->err. */
struct open_args {
	const char *spec;
	struct sb_oci_image *img;
};

static int do_open(void *arg)
{
	struct open_args *a = arg;

	return sb_oci_open(a->spec, a->img);
}

static int open_err(const char *spec, struct sb_oci_image *img, char *err,
		    size_t len)
{
	struct open_args a = { spec, img };

	return with_stderr(do_open, &a, err, len);
}

#define OPEN(spec) open_err(spec, &self->img, self->err, sizeof(self->err))

TEST_F(lay, image_layers_in_order)
{
	char m[SB_OCI_DIGEST_LEN], want[256];
	size_t ms;

	ms = put_image(self->dir, T_MAN, T_CFG, T_GZ, m);
	ASSERT_NE(0, ms);
	ASSERT_EQ(0, put_one(self->dir, T_MAN, m, ms));
	ASSERT_EQ(0, OPEN(self->dir));
	EXPECT_STREQ(m, self->img.manifest_digest);
	ASSERT_EQ(2, self->img.nlayers);
	EXPECT_STREQ(T_GZ, self->img.layers[0].media_type);
	EXPECT_EQ(9, self->img.layers[0].size);
	EXPECT_EQ(10, self->img.layers[1].size);
	snprintf(want, sizeof(want), "%s/blobs/sha256/%s", self->dir,
		 self->img.layers[1].digest + 7);
	EXPECT_STREQ(want, self->img.layers[1].path);
	sb_oci_free(&self->img);
	EXPECT_EQ(0, self->img.nlayers);
	EXPECT_EQ(NULL, self->img.layers);
}

TEST_F(lay, nested_index_picks_linux_amd64)
{
	char m1[SB_OCI_DIGEST_LEN], m2[SB_OCI_DIGEST_LEN];
	char i1[SB_OCI_DIGEST_LEN];
	size_t s1, s2, is;

	s1 = put_image(self->dir, T_MAN, T_CFG, T_GZ, m1);
	s2 = put_image(self->dir, T_MAN, T_CFG, T_ZST, m2);
	ASSERT_NE(0, s1);
	ASSERT_NE(0, s2);
	is = put_json(self->dir, i1,
		"{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":["
		"{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,"
		"\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}},"
		"{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,"
		"\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}",
		T_IDX, T_MAN, m1, s1, T_MAN, m2, s2);
	ASSERT_NE(0, is);
	ASSERT_EQ(0, put_index(self->dir,
		"{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"%s\","
		"\"digest\":\"%s\",\"size\":%zu,\"annotations\":"
		"{\"org.opencontainers.image.ref.name\":\"multi\"}}]}",
		T_IDX, i1, is));
	ASSERT_EQ(0, OPEN(self->dir));
	EXPECT_STREQ(m2, self->img.manifest_digest);
	ASSERT_EQ(2, self->img.nlayers);
	EXPECT_STREQ(T_ZST, self->img.layers[0].media_type);
}

TEST_F(lay, nested_index_without_amd64_refused)
{
	char m1[SB_OCI_DIGEST_LEN], m2[SB_OCI_DIGEST_LEN];
	char i1[SB_OCI_DIGEST_LEN], spec[192];
	size_t s1, s2, is;

	s1 = put_image(self->dir, T_MAN, T_CFG, T_GZ, m1);
	s2 = put_image(self->dir, T_MAN, T_CFG, T_TAR, m2);
	is = put_json(self->dir, i1,
		"{\"schemaVersion\":2,\"manifests\":["
		"{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,"
		"\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}},"
		"{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,"
		"\"platform\":{\"os\":\"linux\",\"architecture\":\"s390x\"}}]}",
		T_MAN, m1, s1, T_MAN, m2, s2);
	ASSERT_NE(0, is);
	ASSERT_EQ(0, put_one(self->dir, T_IDX, i1, is));
	EXPECT_EQ(-1, OPEN(self->dir));
	EXPECT_NE(NULL, strstr(self->err, "no linux/amd64 image, only "
			       "linux/arm64, linux/s390x"));
	EXPECT_EQ(0, self->img.nlayers);

	/* The same index's only image is taken whatever its platform. */
	is = put_json(self->dir, i1,
		"{\"schemaVersion\":2,\"manifests\":["
		"{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,"
		"\"platform\":{\"os\":\"linux\",\"architecture\":\"s390x\"}}]}",
		T_MAN, m2, s2);
	ASSERT_EQ(0, put_one(self->dir, T_IDX, i1, is));
	snprintf(spec, sizeof(spec), "%s:%s", self->dir, i1);
	ASSERT_EQ(0, OPEN(spec)) TH_LOG("%s", self->err);
	EXPECT_STREQ(m2, self->img.manifest_digest);
	EXPECT_STREQ(T_TAR, self->img.layers[1].media_type);
}

TEST_F(lay, docker_v2s2_accepted)
{
	char m[SB_OCI_DIGEST_LEN];
	size_t ms;

	ms = put_image(self->dir, D_MAN, D_CFG, D_GZ, m);
	ASSERT_EQ(0, put_one(self->dir, D_MAN, m, ms));
	ASSERT_EQ(0, OPEN(self->dir));
	ASSERT_EQ(2, self->img.nlayers);
	EXPECT_STREQ(D_GZ, self->img.layers[0].media_type);
}

TEST_F(lay, layer_media_types_refused)
{
	static const char *const bad[] = {
		T_GZ "+encrypted",
		"application/vnd.oci.image.layer.v1.tar+bzip2",
		T_CFG,
	};
	static const char *const why[] = {
		"is encrypted", "not a tar layer", "not a tar layer",
	};
	char m[SB_OCI_DIGEST_LEN];
	size_t ms, i;

	for (i = 0; i < 3; i++) {
		ms = put_image(self->dir, T_MAN, T_CFG, bad[i], m);
		ASSERT_EQ(0, put_one(self->dir, T_MAN, m, ms));
		EXPECT_EQ(-1, OPEN(self->dir));
		EXPECT_NE(NULL, strstr(self->err, why[i]));
		EXPECT_NE(NULL, strstr(self->err, bad[i]));
	}
}

TEST_F(lay, artifact_is_not_an_image)
{
	char m[SB_OCI_DIGEST_LEN];
	size_t ms;

	ms = put_image(self->dir, T_MAN, "application/vnd.oci.empty.v1+json",
		       T_GZ, m);
	ASSERT_EQ(0, put_one(self->dir, T_MAN, m, ms));
	EXPECT_EQ(-1, OPEN(self->dir));
	EXPECT_NE(NULL, strstr(self->err, "not a container image"));
}

TEST_F(lay, manifest_type_must_match_descriptor)
{
	char m[SB_OCI_DIGEST_LEN];
	size_t ms;

	ms = put_image(self->dir, D_MAN, T_CFG, T_GZ, m);
	ASSERT_EQ(0, put_one(self->dir, T_MAN, m, ms));
	EXPECT_EQ(-1, OPEN(self->dir));
	EXPECT_NE(NULL, strstr(self->err, "its descriptor says " T_MAN));
}

TEST_F(lay, bad_digests_refused)
{
	/* Neither reaches outside blobs/sha256/. */
	ASSERT_EQ(0, put_index(self->dir,
		"{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"%s\","
		"\"digest\":\"sha256:../../../../etc/passwd\",\"size\":1}]}",
		T_MAN));
	EXPECT_EQ(-1, OPEN(self->dir));
	EXPECT_NE(NULL, strstr(self->err, "not sha256 and 64 hex digits"));
	ASSERT_EQ(0, put_index(self->dir,
		"{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"%s\","
		"\"digest\":\"sha512:%0128d\",\"size\":1}]}", T_MAN, 0));
	EXPECT_EQ(-1, OPEN(self->dir));
	EXPECT_NE(NULL, strstr(self->err, "reads sha256 digests only"));
}

TEST_F(lay, missing_blob_refused)
{
	char m[SB_OCI_DIGEST_LEN], p[256];
	size_t ms;

	ms = put_image(self->dir, T_MAN, T_CFG, T_GZ, m);
	ASSERT_EQ(0, put_one(self->dir, T_MAN, m, ms));
	ASSERT_EQ(0, OPEN(self->dir));
	snprintf(p, sizeof(p), "%s", self->img.layers[1].path);
	sb_oci_free(&self->img);
	ASSERT_EQ(0, unlink(p));
	EXPECT_EQ(-1, OPEN(self->dir));
	EXPECT_NE(NULL, strstr(self->err, "layer 2"));
	EXPECT_NE(NULL, strstr(self->err, "No such file"));
	EXPECT_EQ(NULL, self->img.layers);
}

TEST_F(lay, bad_json_refused)
{
	static const char *const bad[] = {
		"{\"schemaVersion\":2,\"manifests\":[]",
		"{\"schemaVersion\":2,\"manifests\":[]} x",
		"[]",
		"",
		"{\"schemaVersion\":2,\"manifests\":[]}",
	};
	static const char *const why[] = {
		"is not JSON", "text after", "not a JSON object", "is not JSON",
		"holds no image",
	};
	size_t i;

	for (i = 0; i < 5; i++) {
		ASSERT_EQ(0, put_index(self->dir, "%s", bad[i]));
		EXPECT_EQ(-1, OPEN(self->dir));
		EXPECT_NE(NULL, strstr(self->err, why[i]));
	}
}

TEST_F(lay, empty_ref_refused)
{
	char spec[128];

	snprintf(spec, sizeof(spec), "%s:", self->dir);
	EXPECT_EQ(-1, OPEN(spec));
	EXPECT_NE(NULL, strstr(self->err, "an empty REF"));
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--print"))
		return print_image(argv[2]);
	return test_harness_run(argc, argv);
}
