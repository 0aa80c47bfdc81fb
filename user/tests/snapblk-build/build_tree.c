// SPDX-License-Identifier: GPL-2.0
/*
 * The tree builders: tar layers with the OCI rules (whiteouts, opaque
 * directories, replacement, hard links that outlive their first name),
 * metadata a non-root build must carry (setuid root files, devices,
 * capabilities), compressed layers and standard input, paths that leave
 * the root, --from-dir against a tar of the same directory, and the data
 * pass (bytes equal the files, holes skipped).  Archives are written
 * with libarchive, so no root is needed.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "capture.h"
#include "tree.h"
#include "util.h"

/* One archive entry to write. */
struct ent {
	const char *path;
	unsigned int type;	/* AE_IF*; 0 = hard link to @link */
	unsigned int perm;
	unsigned int uid, gid;
	const char *data;	/* regular files */
	const char *link;	/* symlink target or hard link target */
	const char *xname;	/* one xattr */
	const void *xval;
	size_t xlen;
	unsigned int major, minor;
};

#define REG(p, d) { .path = p, .type = AE_IFREG, .perm = 0644, .data = d }
#define DIR_(p) { .path = p, .type = AE_IFDIR, .perm = 0755 }
#define HARD(p, t) { .path = p, .type = 0, .link = t }
#define SYM(p, t) { .path = p, .type = AE_IFLNK, .perm = 0777, .link = t }
#define END { .path = NULL }

static char tdir[256];	/* this test's private directory */

static void mktemp_dir(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

	snprintf(tdir, sizeof(tdir), "%s/build_tree.XXXXXX", base);
	if (!mkdtemp(tdir))
		abort();
}

static void rm_temp_dir(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", tdir);
}

/* Write entries @e to tdir/@name with @filter ("", "gzip", "zstd"). */
static int write_tar(const char *name, const char *filter,
		     const struct ent *e, char *out, size_t olen)
{
	struct archive *a = archive_write_new();
	struct archive_entry *ae;
	int ret = -1;

	snprintf(out, olen, "%s/%s", tdir, name);
	archive_write_set_format_pax_restricted(a);
	if (!strcmp(filter, "gzip"))
		archive_write_add_filter_gzip(a);
	else if (!strcmp(filter, "zstd"))
		archive_write_add_filter_zstd(a);
	if (archive_write_open_filename(a, out) != ARCHIVE_OK)
		goto out;
	for (; e->path; e++) {
		size_t len = e->data ? strlen(e->data) : 0;

		ae = archive_entry_new();
		archive_entry_set_pathname(ae, e->path);
		archive_entry_set_mtime(ae, 1700000000, 0);
		archive_entry_set_uid(ae, e->uid);
		archive_entry_set_gid(ae, e->gid);
		if (!e->type) {
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_perm(ae, 0644);
			archive_entry_set_hardlink(ae, e->link);
		} else {
			archive_entry_set_filetype(ae, e->type);
			archive_entry_set_perm(ae, e->perm);
		}
		if (e->type == AE_IFREG)
			archive_entry_set_size(ae, len);
		if (e->type == AE_IFLNK)
			archive_entry_set_symlink(ae, e->link);
		if (e->type == AE_IFCHR || e->type == AE_IFBLK) {
			archive_entry_set_rdevmajor(ae, e->major);
			archive_entry_set_rdevminor(ae, e->minor);
		}
		if (e->xname)
			archive_entry_xattr_add_entry(ae, e->xname, e->xval,
						      e->xlen);
		if (archive_write_header(a, ae) != ARCHIVE_OK)
			goto out;
		if (len && archive_write_data(a, e->data, len) != (ssize_t)len)
			goto out;
		archive_entry_free(ae);
		ae = NULL;
	}
	ret = archive_write_close(a) == ARCHIVE_OK ? 0 : -1;
out:
	if (ret)
		fprintf(stderr, "write_tar %s: %s\n", name,
			archive_error_string(a));
	archive_write_free(a);
	return ret;
}

/*
 * The tree as text, one line a node: "/path mode uid gid size link xattrs
 * tMTIME nNLINK", mode in octal, link "=/primary" (hard link), "->target"
 * (symlink), "major,minor" (devices) or "-", xattrs name=hex or "-";
 * mtimes in seconds, as tar and the directory walk share them.
 */
struct dump {
	char *s;
	size_t len;
};

static void put(struct dump *d, const char *fmt, ...)
{
	char line[8192];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	d->s = realloc(d->s, d->len + n + 1);
	memcpy(d->s + d->len, line, n + 1);
	d->len += n;
}

static int dump_node(struct sb_node *n, void *ctx)
{
	struct dump *d = ctx;
	const struct sb_node *p = n->link ? n->link : n;
	char path[PATH_MAX], lp[PATH_MAX];
	unsigned int i;
	size_t j;

	sb_node_path(n, path, sizeof(path));
	put(d, "/%s %o %u %u %llu", path, p->mode, p->uid, p->gid,
	    (unsigned long long)p->size);
	if (n->link) {
		sb_node_path(n->link, lp, sizeof(lp));
		put(d, " =/%s", lp);
	} else if (n->symlink) {
		put(d, " ->%s", n->symlink);
	} else if (S_ISCHR(n->mode) || S_ISBLK(n->mode)) {
		put(d, " %u,%u", n->rdev_major, n->rdev_minor);
	} else {
		put(d, " -");
	}
	for (i = 0; i < p->nxattrs; i++) {
		put(d, "%s%s=", i ? "," : " ", p->xattrs[i].name);
		for (j = 0; j < p->xattrs[i].len; j++)
			put(d, "%02x",
			    ((unsigned char *)p->xattrs[i].value)[j]);
	}
	if (!p->nxattrs)
		put(d, " -");
	put(d, " t%lld n%u\n", (long long)p->mtime, n->nlink);
	return 0;
}

/* The dump of @t; the caller frees it. */
static char *dump_tree(struct sb_tree *t)
{
	struct dump d = { .s = strdup(""), .len = 0 };

	sb_tree_walk(t, dump_node, &d);
	return d.s;
}

/* Layers @names (paths made by write_tar) into a finished tree. */
static struct sb_tree *layers(const char *const *paths, int n)
{
	struct sb_tree *t = sb_tree_new(1600000000, NULL);
	int i;

	for (i = 0; i < n; i++) {
		if (sb_tree_add_layer(t, paths[i])) {
			sb_tree_free(t);
			return NULL;
		}
	}
	if (sb_tree_finish(t)) {
		sb_tree_free(t);
		return NULL;
	}
	return t;
}

/* Layers @e0 and @e1 as l0.tar and l1.tar (paths into l0, l1): a tree. */
static struct sb_tree *two_layers(char *l0, char *l1, const struct ent *e0,
				  const struct ent *e1)
{
	const char *paths[] = { l0, l1 };

	if (write_tar("l0.tar", "", e0, l0, PATH_MAX) ||
	    write_tar("l1.tar", "", e1, l1, PATH_MAX))
		return NULL;
	return layers(paths, 2);
}

/* What the data pass delivered, per node (up to 1024 files). */
struct got {
	struct {
		struct sb_node *n;
		char *buf;		/* n->size bytes, zero-filled */
		uint64_t bytes;		/* delivered */
		uint64_t end;		/* end of the last piece */
		bool disorder;		/* a piece before the last one */
	} f[1024];
	unsigned int nf;
	unsigned int calls;
};

static int collect(struct sb_node *n, uint64_t off, const void *buf,
		   size_t len, void *ctx)
{
	struct got *g = ctx;
	unsigned int i;

	for (i = 0; i < g->nf && g->f[i].n != n; i++)
		;
	if (i == g->nf) {
		if (g->nf == 1024)
			return -E2BIG;
		g->f[i].n = n;
		g->f[i].buf = calloc(1, n->size + 1);
		g->nf++;
	}
	if (off + len > n->size)
		return -ERANGE;
	if (off < g->f[i].end)
		g->f[i].disorder = true;
	memcpy(g->f[i].buf + off, buf, len);
	g->f[i].bytes += len;
	g->f[i].end = off + len;
	g->calls++;
	return 0;
}

static void got_free(struct got *g)
{
	unsigned int i;

	for (i = 0; i < g->nf; i++)
		free(g->f[i].buf);
	memset(g, 0, sizeof(*g));
}

/* The delivered content of the file at @path ("a/b"), or NULL. */
static const char *got_file(struct got *g, const char *path,
			    uint64_t *bytes)
{
	char p[PATH_MAX];
	unsigned int i;

	for (i = 0; i < g->nf; i++) {
		sb_node_path(g->f[i].n, p, sizeof(p));
		if (!strcmp(p, path)) {
			if (bytes)
				*bytes = g->f[i].bytes;
			return g->f[i].buf;
		}
	}
	return NULL;
}

FIXTURE(tmp) {
	char l0[PATH_MAX], l1[PATH_MAX];
};

FIXTURE_SETUP(tmp)
{
	mktemp_dir();
	prog_name = "snapblk-build";
}

FIXTURE_TEARDOWN(tmp)
{
	rm_temp_dir();
}

#define T0 " t1700000000"
#define TE " t1600000000"

TEST_F(tmp, whiteout_of_a_file_and_of_a_directory)
{
	const struct ent e0[] = {
		DIR_("a"), REG("a/f", "1"), REG("a/g", "22"),
		DIR_("d"), REG("d/x", "3"), DIR_("d/sub"), REG("d/sub/y", "4"),
		REG("top", "5"), END
	};
	const struct ent e1[] = {
		REG("a/.wh.f", ""), REG(".wh.d", ""), REG("./a/.wh.nothere", ""),
		END
	};
	struct sb_tree *t;
	char *s;

	t = two_layers(self->l0, self->l1, e0, e1);
	ASSERT_NE(NULL, t);
	s = dump_tree(t);
	EXPECT_STREQ("/ 40755 0 0 0 - -" TE " n3\n"
		     "/a 40755 0 0 0 - -" T0 " n2\n"
		     "/a/g 100644 0 0 2 - -" T0 " n1\n"
		     "/top 100644 0 0 1 - -" T0 " n1\n", s);
	EXPECT_EQ(4, t->nodes);
	EXPECT_EQ(4, t->inodes);
	free(s);
	sb_tree_free(t);
}

TEST_F(tmp, opaque_directory_keeps_this_layers_children)
{
	const struct ent e0[] = {
		DIR_("d"), REG("d/old", "1"), DIR_("d/olddir"),
		REG("d/olddir/z", "2"), DIR_("d/keep"), REG("d/keep/k", "3"),
		REG("other", "4"), END
	};
	const struct ent e1[] = {
		REG("d/new1", "5"), REG("d/olddir/n", "6"),
		REG("d/.wh..wh..opq", ""), REG("d/new2", "7"),
		REG("d/keep/k2", "8"), END
	};
	struct sb_tree *t;
	char *s;

	t = two_layers(self->l0, self->l1, e0, e1);
	ASSERT_NE(NULL, t);
	s = dump_tree(t);
	/* d/keep was removed by the marker and comes back implied. */
	EXPECT_STREQ("/ 40755 0 0 0 - -" TE " n3\n"
		     "/d 40755 0 0 0 - -" T0 " n4\n"
		     "/d/keep 40755 0 0 0 - -" TE " n2\n"
		     "/d/keep/k2 100644 0 0 1 - -" T0 " n1\n"
		     "/d/new1 100644 0 0 1 - -" T0 " n1\n"
		     "/d/new2 100644 0 0 1 - -" T0 " n1\n"
		     "/d/olddir 40755 0 0 0 - -" T0 " n2\n"
		     "/d/olddir/n 100644 0 0 1 - -" T0 " n1\n"
		     "/other 100644 0 0 1 - -" T0 " n1\n", s);
	free(s);
	sb_tree_free(t);
}

TEST_F(tmp, replace_directory_by_file_and_file_by_directory)
{
	struct ent e0[] = {
		DIR_("x"), REG("x/a", "1"), DIR_("x/y"), REG("x/y/b", "2"),
		REG("f", "33"), DIR_("k"), REG("k/c", "4"), END
	};
	struct ent e1[] = {
		REG("x", "new"), DIR_("f"), REG("f/b", "5"), DIR_("k"), END
	};
	struct sb_node *k;
	struct sb_tree *t;
	char *s;

	e1[3].perm = 0700;
	e1[3].uid = 5;
	t = two_layers(self->l0, self->l1, e0, e1);
	ASSERT_NE(NULL, t);
	s = dump_tree(t);
	EXPECT_STREQ("/ 40755 0 0 0 - -" TE " n4\n"
		     "/f 40755 0 0 0 - -" T0 " n2\n"
		     "/f/b 100644 0 0 1 - -" T0 " n1\n"
		     "/k 40700 5 0 0 - -" T0 " n2\n"
		     "/k/c 100644 0 0 1 - -" T0 " n1\n"
		     "/x 100644 0 0 3 - -" T0 " n1\n", s);
	/* A re-declared directory keeps the layer that created it. */
	for (k = t->root->kids; k && strcmp(k->name, "k"); k = k->next)
		;
	ASSERT_NE(NULL, k);
	EXPECT_EQ(0, k->layer);
	EXPECT_EQ(1, k->next->layer);	/* x, replaced */
	free(s);
	sb_tree_free(t);
}

TEST_F(tmp, hard_link_outlives_its_deleted_primary)
{
	const struct ent e0[] = {
		REG("a", "hello"), HARD("b", "a"), HARD("c", "./a"),
		REG("z", "zz"), HARD("m", "z"), REG("r", "old"),
		HARD("s", "r"), END
	};
	const struct ent e1[] = {
		REG(".wh.a", ""), REG("r", "new!"), HARD("n", "z"), END
	};
	struct got g = { 0 };
	struct sb_tree *t;
	char *s;

	t = two_layers(self->l0, self->l1, e0, e1);
	ASSERT_NE(NULL, t);
	s = dump_tree(t);
	/*
	 * The primary is the first name in walk order: m, not z; n links
	 * to a lower layer's file.
	 */
	EXPECT_STREQ("/ 40755 0 0 0 - -" TE " n2\n"
		     "/b 100644 0 0 5 - -" T0 " n2\n"
		     "/c 100644 0 0 5 =/b -" T0 " n2\n"
		     "/m 100644 0 0 2 - -" T0 " n3\n"
		     "/n 100644 0 0 2 =/m -" T0 " n3\n"
		     "/r 100644 0 0 4 - -" T0 " n1\n"
		     "/s 100644 0 0 3 - -" T0 " n1\n"
		     "/z 100644 0 0 2 =/m -" T0 " n3\n", s);
	EXPECT_EQ(8, t->nodes);
	EXPECT_EQ(5, t->inodes);
	ASSERT_EQ(0, sb_tree_read_data(t, collect, &g));
	EXPECT_STREQ("hello", got_file(&g, "b", NULL));
	EXPECT_STREQ("zz", got_file(&g, "m", NULL));
	EXPECT_STREQ("new!", got_file(&g, "r", NULL));
	EXPECT_STREQ("old", got_file(&g, "s", NULL));
	EXPECT_EQ(NULL, got_file(&g, "c", NULL));
	EXPECT_EQ(4, g.nf);
	got_free(&g);
	free(s);
	sb_tree_free(t);
}

TEST_F(tmp, setuid_root_device_and_capability_without_root)
{
	static const unsigned char cap[20] = {
		0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0,
	};
	struct ent e0[] = {
		REG("usr/bin/ping", "ELF"),
		{ .path = "dev/null", .type = AE_IFCHR, .perm = 0666,
		  .major = 1, .minor = 3 },
		{ .path = "dev/sda", .type = AE_IFBLK, .perm = 0660,
		  .gid = 6, .major = 8, .minor = 0 },
		{ .path = "run/fifo", .type = AE_IFIFO, .perm = 0600 },
		{ .path = "tmp", .type = AE_IFDIR, .perm = 01777 },
		SYM("lib", "usr/lib"),
		END
	};
	const char *paths[] = { self->l0 };
	struct sb_tree *t;
	char *s;

	e0[0].perm = 04755;
	e0[0].xname = "security.capability";
	e0[0].xval = cap;
	e0[0].xlen = sizeof(cap);
	ASSERT_EQ(0, write_tar("l0.tar", "", e0, self->l0, PATH_MAX));
	t = layers(paths, 1);
	ASSERT_NE(NULL, t);
	s = dump_tree(t);
	EXPECT_STREQ("/ 40755 0 0 0 - -" TE " n6\n"
		     "/dev 40755 0 0 0 - -" TE " n2\n"
		     "/dev/null 20666 0 0 0 1,3 -" T0 " n1\n"
		     "/dev/sda 60660 0 6 0 8,0 -" T0 " n1\n"
		     "/lib 120777 0 0 0 ->usr/lib -" T0 " n1\n"
		     "/run 40755 0 0 0 - -" TE " n2\n"
		     "/run/fifo 10600 0 0 0 - -" T0 " n1\n"
		     "/tmp 41777 0 0 0 - -" T0 " n2\n"
		     "/usr 40755 0 0 0 - -" TE " n3\n"
		     "/usr/bin 40755 0 0 0 - -" TE " n2\n"
		     "/usr/bin/ping 104755 0 0 3 - security.capability="
		     "0100000200200000000000000000000000000000" T0 " n1\n",
		     s);
	free(s);
	sb_tree_free(t);
}

static const struct ent small[] = {
	DIR_("etc"), REG("etc/hostname", "box\n"), SYM("etc/mtab", "../proc"),
	REG("data", "0123456789abcdef"), HARD("etc/data2", "data"), END
};

TEST_F(tmp, gzip_and_zstd_layers_read_the_same)
{
	const char *plain[] = { self->l0 };
	const char *packed[] = { self->l0, self->l1 };
	struct sb_tree *t, *u;
	struct got g = { 0 };
	char *s, *s2, magic[4];
	int fd;

	ASSERT_EQ(0, write_tar("p.tar", "", small, self->l0, PATH_MAX));
	t = layers(plain, 1);
	ASSERT_NE(NULL, t);
	s = dump_tree(t);
	ASSERT_EQ(0, write_tar("l.tar.gz", "gzip", small, self->l0,
			       PATH_MAX));
	ASSERT_EQ(0, write_tar("l.tar.zst", "zstd", small, self->l1,
			       PATH_MAX));
	fd = open(self->l1, O_RDONLY);
	ASSERT_EQ(4, read(fd, magic, 4));
	close(fd);
	EXPECT_EQ(0, memcmp(magic, "\x28\xb5\x2f\xfd", 4));
	u = layers(packed, 2);
	ASSERT_NE(NULL, u);
	s2 = dump_tree(u);
	EXPECT_STREQ(s, s2);
	ASSERT_EQ(0, sb_tree_read_data(u, collect, &g));
	EXPECT_STREQ("0123456789abcdef", got_file(&g, "data", NULL));
	EXPECT_STREQ("box\n", got_file(&g, "etc/hostname", NULL));
	EXPECT_EQ(2, g.nf);
	/* The upper (zstd) layer's entries replaced the lower ones. */
	EXPECT_EQ(1, g.f[0].n->layer);
	got_free(&g);
	free(s);
	free(s2);
	sb_tree_free(t);
	sb_tree_free(u);
}

TEST_F(tmp, standard_input_is_spooled_and_read_twice)
{
	int pfd[2], saved = dup(0), tarfd;
	struct got g = { 0 };
	struct sb_tree *t;
	struct stat st;
	char buf[4096];
	ssize_t n;
	pid_t pid;

	ASSERT_EQ(0, write_tar("in.tar.gz", "gzip", small, self->l0,
			       PATH_MAX));
	ASSERT_EQ(0, pipe(pfd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(pfd[0]);
		tarfd = open(self->l0, O_RDONLY);
		while ((n = read(tarfd, buf, sizeof(buf))) > 0)
			if (write(pfd[1], buf, n) != n)
				_exit(1);
		_exit(n < 0);
	}
	close(pfd[1]);
	dup2(pfd[0], 0);
	close(pfd[0]);
	t = sb_tree_new(0, tdir);
	ASSERT_NE(NULL, t);
	EXPECT_EQ(0, sb_tree_add_layer(t, "-"));
	dup2(saved, 0);
	close(saved);
	waitpid(pid, NULL, 0);
	ASSERT_EQ(1, t->nlayers);
	EXPECT_STREQ("-", t->layers[0].path);
	EXPECT_EQ(5, t->layers[0].entries);
	/* An unnamed file: nothing left behind, even on SIGKILL. */
	ASSERT_EQ(0, fstat(t->layers[0].fd, &st));
	EXPECT_EQ(0, st.st_nlink);
	ASSERT_EQ(0, sb_tree_finish(t));
	ASSERT_EQ(0, sb_tree_read_data(t, collect, &g));
	EXPECT_STREQ("0123456789abcdef", got_file(&g, "data", NULL));
	EXPECT_STREQ("box\n", got_file(&g, "etc/hostname", NULL));
	got_free(&g);
	sb_tree_free(t);
}

/* A tree from one input, thrown away: the input's error, if any. */
struct input {
	const char *path;
	bool dir;		/* sb_tree_add_dir(), else a layer */
};

static int add_input(void *arg)
{
	const struct input *in = arg;
	struct sb_tree *t = sb_tree_new(0, NULL);
	int ret = in->dir ? sb_tree_add_dir(t, in->path) :
		  sb_tree_add_layer(t, in->path);

	sb_tree_free(t);
	return ret;
}

TEST_F(tmp, a_path_leaving_the_root_is_refused)
{
	const struct ent bad[] = { DIR_("a"), REG("a/../../etc/passwd", "x"),
				   END };
	const struct ent badlink[] = { HARD("x", "../../etc/shadow"), END };
	const struct ent fine[] = { REG("/a/../b//./c", "x"), END };
	const char *paths[] = { self->l1 };
	struct input in = { .path = self->l0 };
	struct sb_tree *t;
	char err[1024], *s;

	ASSERT_EQ(0, write_tar("bad.tar", "", bad, self->l0, PATH_MAX));
	EXPECT_EQ(-1, with_stderr(add_input, &in, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "entry 'a/../../etc/passwd' leaves "
			       "the root"));
	EXPECT_NE(NULL, strstr(err, "bad.tar"));
	ASSERT_EQ(0, write_tar("badl.tar", "", badlink, self->l0, PATH_MAX));
	EXPECT_EQ(-1, with_stderr(add_input, &in, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "leaves the root"));
	ASSERT_EQ(0, write_tar("fine.tar", "", fine, self->l1, PATH_MAX));
	t = layers(paths, 1);
	ASSERT_NE(NULL, t);
	s = dump_tree(t);
	EXPECT_STREQ("/ 40755 0 0 0 - -" TE " n3\n"
		     "/b 40755 0 0 0 - -" TE " n2\n"
		     "/b/c 100644 0 0 1 - -" T0 " n1\n", s);
	free(s);
	sb_tree_free(t);
}

static int sh(const char *fmt, ...)
{
	char cmd[4 * PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

TEST_F(tmp, from_dir_equals_a_tar_of_the_same_directory)
{
	char src[512], tarp[600], sock[PATH_MAX + 600], p[PATH_MAX];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct sb_tree *d, *t;
	struct got gd = { 0 }, gt = { 0 };
	unsigned int i;
	char *sd, *st;
	int fd;

	snprintf(src, sizeof(src), "%s/src", tdir);
	ASSERT_EQ(0, sh("mkdir '%s' && cp -a /usr/share/perl5/Debian "
			"/usr/share/perl5/Dpkg '%s/' && chmod 0750 '%s/Debian'",
			src, src, src));
	ASSERT_EQ(0, sh("cd '%s' && printf 'hard' > h1 && ln h1 h2 && "
			"mkdir -p sub && ln h1 sub/h3 && ln -s ../h1 sub/sym "
			"&& printf x > suid && chmod 04711 suid && "
			"mkfifo fifo && chmod 2775 sub && touch sub/\303\251 "
			"\"$(printf 'bad\\377')\"", src));
	snprintf(p, sizeof(p), "%s/h1", src);
	ASSERT_EQ(0, setxattr(p, "user.note", "v\0z", 3, 0));
	snprintf(sock, sizeof(sock), "%s/sock", src);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ASSERT_LT(strlen(sock), sizeof(sun.sun_path));
	memcpy(sun.sun_path, sock, strlen(sock) + 1);
	ASSERT_EQ(0, bind(fd, (struct sockaddr *)&sun, sizeof(sun)));
	close(fd);

	snprintf(tarp, sizeof(tarp), "%s/src.tar", tdir);
	ASSERT_EQ(0, sh("tar --xattrs --numeric-owner --format=posix "
			"-C '%s' -cf '%s' . 2>/dev/null", src, tarp));
	d = sb_tree_new(0, NULL);
	ASSERT_EQ(0, sb_tree_add_dir(d, src));
	ASSERT_EQ(0, sb_tree_finish(d));
	t = sb_tree_new(0, NULL);
	ASSERT_EQ(0, sb_tree_add_layer(t, tarp));
	ASSERT_EQ(0, sb_tree_finish(t));
	sd = dump_tree(d);
	st = dump_tree(t);
	EXPECT_STREQ(sd, st);
	EXPECT_EQ(d->nodes, t->nodes);
	EXPECT_EQ(d->inodes, t->inodes);
	EXPECT_EQ(NULL, strstr(sd, "/sock "));
	EXPECT_NE(NULL, strstr(sd, "/h1 100644"));
	EXPECT_NE(NULL, strstr(sd, " user.note=76007a"));
	EXPECT_NE(NULL, strstr(sd, "/h2 100644 0 0 4 =/h1 user.note"));
	EXPECT_NE(NULL, strstr(sd, "/sub 42775"));
	EXPECT_NE(NULL, strstr(sd, "/suid 104711"));
	EXPECT_NE(NULL, strstr(sd, "/fifo 10644"));
	EXPECT_NE(NULL, strstr(sd, "/Debian 40750"));
	/* Names are bytes: UTF-8 and not, whatever the locale. */
	EXPECT_NE(NULL, strstr(sd, "/sub/\303\251 100644"));
	EXPECT_NE(NULL, strstr(sd, "/bad\377 100644"));
	EXPECT_GT(d->nodes, 100);

	/* The data passes deliver the same bytes: the files' own. */
	ASSERT_EQ(0, sb_tree_read_data(d, collect, &gd));
	ASSERT_EQ(0, sb_tree_read_data(t, collect, &gt));
	EXPECT_EQ(gd.nf, gt.nf);
	EXPECT_GT(gd.nf, 80);
	for (i = 0; i < gd.nf; i++) {
		struct sb_node *n = gd.f[i].n;
		const char *other;
		char *real;
		uint64_t bytes = 0;
		FILE *f;

		sb_node_path(n, p, sizeof(p));
		other = got_file(&gt, p, &bytes);
		ASSERT_NE(NULL, other) TH_LOG("%s not in the tar's pass", p);
		EXPECT_EQ(n->size, bytes);
		EXPECT_EQ(0, memcmp(gd.f[i].buf, other, n->size));
		EXPECT_FALSE(gd.f[i].disorder);
		real = calloc(1, n->size + 1);
		snprintf(sock, sizeof(sock), "%s/%s", src, p);
		f = fopen(sock, "r");
		ASSERT_NE(NULL, f);
		EXPECT_EQ(n->size, fread(real, 1, n->size, f));
		fclose(f);
		EXPECT_EQ(0, memcmp(real, gd.f[i].buf, n->size))
			TH_LOG("%s differs", p);
		free(real);
	}
	got_free(&gd);
	got_free(&gt);
	free(sd);
	free(st);
	sb_tree_free(d);
	sb_tree_free(t);
}

TEST_F(tmp, data_pass_skips_holes_from_dir_and_sparse_tar)
{
	char src[512], p[600], tarp[600], block[4096];
	const char *paths[] = { tarp };
	struct got g = { 0 };
	struct sb_tree *t;
	uint64_t bytes = 0;
	const char *c;
	int fd;

	snprintf(src, sizeof(src), "%s/src", tdir);
	ASSERT_EQ(0, mkdir(src, 0755));
	snprintf(p, sizeof(p), "%s/sparse", src);
	fd = open(p, O_CREAT | O_WRONLY, 0644);
	ASSERT_LE(0, fd);
	memset(block, 'S', sizeof(block));
	ASSERT_EQ(4096, pwrite(fd, block, sizeof(block), 1 << 20));
	ASSERT_EQ(0, ftruncate(fd, 3 << 20));
	close(fd);

	t = sb_tree_new(0, NULL);
	ASSERT_EQ(0, sb_tree_add_dir(t, src));
	ASSERT_EQ(0, sb_tree_finish(t));
	ASSERT_EQ(0, sb_tree_read_data(t, collect, &g));
	c = got_file(&g, "sparse", &bytes);
	ASSERT_NE(NULL, c);
	EXPECT_EQ(3 << 20, t->root->kids->size);
	EXPECT_EQ(4096, bytes);		/* the hole cost nothing */
	EXPECT_EQ('S', c[1 << 20]);
	EXPECT_EQ('S', c[(1 << 20) + 4095]);
	EXPECT_EQ(0, c[(1 << 20) + 4096]);
	got_free(&g);
	sb_tree_free(t);

	snprintf(tarp, sizeof(tarp), "%s/sparse.tar", tdir);
	ASSERT_EQ(0, sh("tar --sparse --format=posix -C '%s' -cf '%s' "
			"sparse", src, tarp));
	t = layers(paths, 1);
	ASSERT_NE(NULL, t);
	ASSERT_EQ(0, sb_tree_read_data(t, collect, &g));
	c = got_file(&g, "sparse", &bytes);
	ASSERT_NE(NULL, c);
	EXPECT_EQ(3 << 20, t->root->kids->size);
	EXPECT_EQ(4096, bytes);
	EXPECT_EQ('S', c[1 << 20]);
	EXPECT_EQ(0, c[(1 << 20) + 4096]);
	got_free(&g);
	sb_tree_free(t);
}

static int read_data_into(void *arg)
{
	struct got g = { 0 };
	int ret = sb_tree_read_data(arg, collect, &g);

	got_free(&g);
	return ret;
}

TEST_F(tmp, a_file_that_changed_size_is_an_error_naming_it)
{
	char src[512], p[600], err[1024];
	struct sb_tree *t;

	snprintf(src, sizeof(src), "%s/src", tdir);
	ASSERT_EQ(0, sh("mkdir '%s' && printf abc > '%s/f'", src, src));
	t = sb_tree_new(0, NULL);
	ASSERT_EQ(0, sb_tree_add_dir(t, src));
	ASSERT_EQ(0, sb_tree_finish(t));
	snprintf(p, sizeof(p), "%s/f", src);
	ASSERT_EQ(0, truncate(p, 1));
	EXPECT_EQ(-1, with_stderr(read_data_into, t, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, p)) TH_LOG("%s", err);
	EXPECT_NE(NULL, strstr(err, "changed size"));
	sb_tree_free(t);
}

TEST_F(tmp, an_unreadable_directory_is_named_with_the_fix)
{
	char src[512], err[1024];
	struct input in = { .path = src, .dir = true };
	int status;
	pid_t pid;

	snprintf(src, sizeof(src), "%s/src", tdir);
	ASSERT_EQ(0, sh("mkdir -p '%s/locked' && chmod 0 '%s/locked' && "
			"chmod 0755 '%s'", src, src, tdir));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* root reads anything: read as nobody */
		if (!geteuid() && (setgid(65534) || setuid(65534)))
			_exit(2);
		if (with_stderr(add_input, &in, err, sizeof(err)) != -1)
			_exit(3);
		if (!strstr(err, "src/locked") ||
		    !strstr(err, "make it readable")) {
			fprintf(stderr, "%s", err);
			_exit(4);
		}
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	sh("chmod 0755 '%s/locked'", src);
}

TEST_HARNESS_MAIN
