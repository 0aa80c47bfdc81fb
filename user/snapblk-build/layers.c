// SPDX-License-Identifier: GPL-2.0
/*
 * Tar layers into the tree, with the OCI image-spec layer rules: entries
 * in archive order, ".wh.NAME" deletes NAME from lower layers,
 * ".wh..wh..opq" makes a directory opaque, a later entry replaces an
 * earlier one.  Pass 1 reads headers only; the data pass re-reads each
 * layer from its start and streams the entries that are still the data
 * of a regular file in the tree.  Compression is whatever libarchive
 * detects; standard input is spooled to an unnamed temporary file.
 *
 * A layer may end right after its last entry's data, without the padding
 * to a 512-byte record nor the end-of-archive blocks: umoci 0.4.7 (Debian
 * 12) writes its insert layers so (umoci issue 436).  Such an end is
 * accepted in both passes; a layer that ends inside an entry's header or
 * data is refused.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tree.h"
#include "tree_int.h"
#include "util.h"

#define SB_WH ".wh."
#define SB_WH_OPQ ".wh..wh..opq"
#define SB_MAX_COMPS (PATH_MAX / 2)

/* One pass over a layer: its archive reader and where it came from. */
struct sb_layer_rd {
	struct sb_tree *t;
	unsigned int idx;	/* layer number */
	const char *path;	/* for messages */
	int fd;			/* the layer's file; the tree's, not owned */
	struct archive *a;	/* owned; NULL when closed */
	char buf[PATH_MAX];	/* components of the entry's path */
	char *comps[SB_MAX_COMPS];
	unsigned int ncomps;
};

/*
 * libarchive's message, with its errno only when that is a system error:
 * libarchive gives a format error EILSEQ (its private
 * ARCHIVE_ERRNO_FILE_FORMAT), whose text ("Invalid or incomplete
 * multibyte or wide character") would mislead.
 */
static int sb_ar_fail(struct sb_layer_rd *r, const char *hint)
{
	int e = archive_errno(r->a);

	err_report(e > 0 && e != EILSEQ ? e : 0, hint,
		   "cannot read layer %s: %s", r->path,
		   archive_error_string(r->a) ? archive_error_string(r->a) :
		   "unknown error");
	return -1;
}

static int sb_ar_open(struct sb_layer_rd *r, int fd)
{
	r->fd = fd;
	if (lseek(fd, 0, SEEK_SET) < 0) {
		err_report(errno, NULL, "cannot read layer %s: seek", r->path);
		return -1;
	}
	r->a = archive_read_new();
	if (!r->a) {
		err_report(ENOMEM, NULL, "cannot read layer %s", r->path);
		return -1;
	}
	archive_read_support_filter_all(r->a);
	archive_read_support_format_tar(r->a);
	archive_read_support_format_gnutar(r->a);
	archive_read_support_format_empty(r->a);
	if (archive_read_open_fd(r->a, fd, 128 * 1024) != ARCHIVE_OK)
		return sb_ar_fail(r, "is it a tar archive (optionally "
				  "gzip, zstd or xz compressed)?");
	return 0;
}

static void sb_ar_close(struct sb_layer_rd *r)
{
	if (r->a)
		archive_read_free(r->a);
	r->a = NULL;
}

/*
 * Whether the archive read so far lies inside the layer's file.  An
 * uncompressed layer's entries are skipped with lseek(), which goes past
 * the end of a file cut inside an entry without an error, and the next
 * read then sees a clean end; a compressed layer is read, never seeked.
 */
static bool sb_ar_inside(struct sb_layer_rd *r)
{
	struct stat st;

	if (archive_filter_count(r->a) > 1)
		return true;
	if (fstat(r->fd, &st) < 0)
		return false;
	return archive_filter_bytes(r->a, -1) <= st.st_size;
}

/*
 * After a failed skip or read of an entry's data, which began at @start
 * in the uncompressed archive and is @size bytes: whether the archive
 * ended after all of the data, only the padding of its last record
 * missing (so the end-of-archive blocks too).  libarchive counts the
 * bytes it could consume before the end in archive_filter_bytes().
 */
static bool sb_ar_unpadded_end(struct sb_layer_rd *r, int64_t start,
			       uint64_t size)
{
	static const char trunc[] = "Truncated input file";
	const char *why = archive_error_string(r->a);
	int64_t at = archive_filter_bytes(r->a, 0);

	if (!why || strncmp(why, trunc, sizeof(trunc) - 1))
		return false;
	if (start < 0 || at < start || (uint64_t)(at - start) < size ||
	    (uint64_t)(at - start) - size >= 512)
		return false;
	return sb_ar_inside(r);
}

/* The end of the archive: 0, or -1 reported when the file is cut. */
static int sb_ar_end(struct sb_layer_rd *r)
{
	if (sb_ar_inside(r))
		return 0;
	err_report(0, "is the layer complete?", "cannot read layer %s: "
		   "truncated inside an entry's data", r->path);
	return -1;
}

/*
 * Skip the rest of the entry whose header was just read, its data at
 * @start: 1, 0 when the archive ended right after the data (see
 * sb_ar_unpadded_end()), -1 reported.
 */
static int sb_ar_skip(struct sb_layer_rd *r, struct archive_entry *e,
		      int64_t start)
{
	uint64_t size = archive_entry_size_is_set(e) &&
			archive_entry_size(e) > 0 ?
			(uint64_t)archive_entry_size(e) : 0;

	if (archive_read_data_skip(r->a) == ARCHIVE_OK)
		return 1;
	if (sb_ar_unpadded_end(r, start, size))
		return 0;
	return sb_ar_fail(r, "is the layer complete?");
}

/* Next header: 1, 0 at the end, -1 reported. */
static int sb_ar_next(struct sb_layer_rd *r, struct archive_entry **e)
{
	int ret = archive_read_next_header(r->a, e);

	if (ret == ARCHIVE_EOF)
		return sb_ar_end(r);
	if (ret == ARCHIVE_OK || ret == ARCHIVE_WARN)
		return 1;
	return sb_ar_fail(r, "is the layer complete and a tar archive?");
}

/* A copy of standard input in an unnamed file of the tree's tmpdir. */
static int sb_spool_stdin(struct sb_tree *t)
{
	const char *dir = t->tmpdir;
	char buf[128 * 1024];
	ssize_t n;
	int fd;

	if (!dir)
		dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/var/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		err_report(errno, "set TMPDIR to a writable directory on a "
			   "file system with O_TMPFILE (ext4, xfs, tmpfs)",
			   "cannot spool standard input to %s", dir);
		return -1;
	}
	for (;;) {
		char *p = buf;

		n = read(0, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_report(errno, NULL,
				   "cannot read layer -: standard input");
			goto fail;
		}
		if (!n)
			break;
		while (n > 0) {
			ssize_t w = write(fd, p, n);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				err_report(errno, "free space in TMPDIR or "
					   "set it to a larger file system",
					   "cannot spool standard input to %s",
					   dir);
				goto fail;
			}
			p += w;
			n -= w;
		}
	}
	return fd;
fail:
	close(fd);
	return -1;
}

static int sb_entry_path(struct sb_layer_rd *r, const char *path)
{
	int ret = sb_path_split(path, r->buf, sizeof(r->buf), r->comps,
				SB_MAX_COMPS, &r->ncomps);

	if (ret == -EXDEV) {
		err_report(0, "rebuild the layer with paths inside its root",
			   "cannot read layer %s: entry '%s' leaves the root",
			   r->path, path);
		return -1;
	}
	if (ret) {
		err_report(-ret, NULL, "cannot read layer %s: entry '%s'",
			   r->path, path);
		return -1;
	}
	return 0;
}

static int sb_nomem(struct sb_layer_rd *r)
{
	err_report(ENOMEM, NULL, "cannot read layer %s", r->path);
	return -1;
}

/* Remove from @dir, recursively, what no entry of this layer named. */
static void sb_opaque(struct sb_tree *t, struct sb_node *dir,
		      unsigned int layer)
{
	struct sb_node *k, *next;

	for (k = dir->kids; k; k = next) {
		next = k->next;
		if (sb_nx(k)->seen != layer)
			sb_node_remove(t, k);
		else if (S_ISDIR(k->mode))
			sb_opaque(t, k, layer);
	}
}

static int sb_whiteout(struct sb_layer_rd *r, struct sb_node *dir,
		       const char *name, const char *epath)
{
	struct sb_node *n;

	if (!strcmp(name, SB_WH_OPQ)) {
		sb_opaque(r->t, dir, r->idx);
		return 0;
	}
	name += strlen(SB_WH);
	if (!strncmp(name, SB_WH, strlen(SB_WH)))
		return 0;	/* other aufs metadata (.wh..wh.plnk) */
	if (!*name || !strcmp(name, ".") || !strcmp(name, "..")) {
		err_report(0, NULL, "cannot read layer %s: bad whiteout '%s'",
			   r->path, epath);
		return -1;
	}
	n = sb_node_find(r->t, dir, name);
	if (n && sb_nx(n)->seen != r->idx)
		sb_node_remove(r->t, n);
	return 0;
}

static int sb_set_meta(struct sb_layer_rd *r, struct sb_node *n,
		       struct archive_entry *e)
{
	struct sb_xattr_set xs = { 0 };
	const char *name;
	const void *val;
	size_t len;

	n->mode = (archive_entry_filetype(e) & S_IFMT) |
		  (archive_entry_perm(e) & 07777);
	n->uid = (uint32_t)archive_entry_uid(e);
	n->gid = (uint32_t)archive_entry_gid(e);
	if (archive_entry_mtime_is_set(e)) {
		n->mtime = archive_entry_mtime(e);
		n->mtime_nsec = (uint32_t)archive_entry_mtime_nsec(e);
	} else {
		n->mtime = r->t->epoch;
		n->mtime_nsec = 0;
	}
	if (S_ISCHR(n->mode) || S_ISBLK(n->mode)) {
		n->rdev_major = (uint32_t)archive_entry_rdevmajor(e);
		n->rdev_minor = (uint32_t)archive_entry_rdevminor(e);
	}
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &val, &len) == ARCHIVE_OK) {
		if (sb_xattrs_add(&xs, name, val, len)) {
			sb_xattrs_free(xs.v, xs.n);
			return sb_nomem(r);
		}
	}
	sb_node_set_xattrs(n, &xs);
	return 0;
}

static int sb_hardlink(struct sb_layer_rd *r, struct sb_node *dir,
		       const char *name, struct archive_entry *e,
		       uint64_t idx)
{
	const char *target = archive_entry_hardlink(e);
	char buf[PATH_MAX], *comps[SB_MAX_COMPS];
	struct sb_node *tg, *n, *p;
	unsigned int nc;
	int ret;

	ret = sb_path_split(target, buf, sizeof(buf), comps, SB_MAX_COMPS,
			    &nc);
	if (ret == -EXDEV) {
		err_report(0, "rebuild the layer with links inside its root",
			   "cannot read layer %s: hard link '%s' to '%s' "
			   "leaves the root", r->path,
			   archive_entry_pathname(e), target);
		return -1;
	}
	tg = ret ? NULL : sb_tree_lookup(r->t, comps, nc);
	if (!tg || S_ISDIR(tg->mode)) {
		err_report(0, NULL, "cannot read layer %s: hard link '%s' "
			   "to '%s': %s", r->path, archive_entry_pathname(e),
			   target, tg ? "a directory" : "no such file before it");
		return -1;
	}
	n = sb_node_find(r->t, dir, name);
	if (n == tg)
		return 0;
	if (n)
		sb_node_remove(r->t, n);
	n = sb_node_add(r->t, dir, name, tg->mode, r->idx);
	if (!n)
		return sb_nomem(r);
	sb_node_link(n, tg);
	p = n->link;
	/* pax may give a hard link its inode's data. */
	if (S_ISREG(p->mode) && archive_entry_size_is_set(e) &&
	    archive_entry_size(e) > 0) {
		p->size = (uint64_t)archive_entry_size(e);
		p->src_entry = idx;
		p->layer = r->idx;
	}
	return 0;
}

static int sb_apply(struct sb_layer_rd *r, struct archive_entry *e,
		    uint64_t idx)
{
	const char *epath = archive_entry_pathname(e);
	unsigned int type = archive_entry_filetype(e);
	struct sb_node *dir, *n;
	const char *name;

	if (!epath) {
		err_report(0, NULL, "cannot read layer %s: entry %llu has "
			   "no path", r->path, (unsigned long long)idx);
		return -1;
	}
	if (sb_entry_path(r, epath))
		return -1;
	if (!r->ncomps) {
		/* "./": the root's own metadata. */
		sb_nx(r->t->root)->seen = r->idx;
		if (type != AE_IFDIR || archive_entry_hardlink(e))
			return 0;
		return sb_set_meta(r, r->t->root, e);
	}
	name = r->comps[r->ncomps - 1];
	if (type == AE_IFSOCK && !archive_entry_hardlink(e))
		return 0;
	dir = sb_tree_parent(r->t, r->comps, r->ncomps, r->idx);
	if (!dir) {
		err_report(errno, NULL, "cannot read layer %s: entry '%s'",
			   r->path, epath);
		return -1;
	}
	if (!strncmp(name, SB_WH, strlen(SB_WH)))
		return sb_whiteout(r, dir, name, epath);
	if (archive_entry_hardlink(e))
		return sb_hardlink(r, dir, name, e, idx);

	switch (type) {
	case AE_IFREG: case AE_IFDIR: case AE_IFLNK:
	case AE_IFCHR: case AE_IFBLK: case AE_IFIFO:
		break;
	default:
		err_report(0, NULL, "cannot read layer %s: entry '%s' has "
			   "unknown type 0%o", r->path, epath, type);
		return -1;
	}
	n = sb_node_find(r->t, dir, name);
	if (n && !(S_ISDIR(n->mode) && type == AE_IFDIR)) {
		sb_node_remove(r->t, n);
		n = NULL;
	}
	if (!n) {
		n = sb_node_add(r->t, dir, name, type, r->idx);
		if (!n)
			return sb_nomem(r);
	}
	sb_nx(n)->seen = r->idx;
	if (sb_set_meta(r, n, e))
		return -1;
	if (type == AE_IFLNK) {
		const char *s = archive_entry_symlink(e);

		n->symlink = strdup(s ? s : "");
		if (!n->symlink)
			return sb_nomem(r);
	}
	if (type == AE_IFREG) {
		n->size = archive_entry_size_is_set(e) ?
			  (uint64_t)archive_entry_size(e) : 0;
		n->src_entry = idx;
	}
	return 0;
}

int sb_tree_add_layer(struct sb_tree *t, const char *path)
{
	struct sb_layer_rd *r = NULL;
	struct sb_tree_layer *l, *v;
	struct archive_entry *e;
	uint64_t idx = 0;
	int64_t start;
	int fd, ret;

	if (t->from_dir) {
		err_report(0, "give either --from-dir or layers",
			   "cannot add layer %s to a tree from a directory",
			   path);
		return -1;
	}
	if (!strcmp(path, "-")) {
		fd = sb_spool_stdin(t);
	} else {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			err_report(errno, NULL, "cannot read layer %s: open",
				   path);
	}
	if (fd < 0)
		return -1;
	v = realloc(t->layers, (t->nlayers + 1) * sizeof(*v));
	if (!v) {
		close(fd);
		err_report(ENOMEM, NULL, "cannot read layer %s", path);
		return -1;
	}
	t->layers = v;
	l = &t->layers[t->nlayers];
	l->fd = fd;
	l->entries = 0;
	l->path = strdup(path);
	r = calloc(1, sizeof(*r));
	if (!l->path || !r) {
		free(l->path);
		free(r);
		close(fd);
		err_report(ENOMEM, NULL, "cannot read layer %s", path);
		return -1;
	}
	r->t = t;
	r->idx = t->nlayers++;
	r->path = l->path;
	ret = sb_ar_open(r, fd);
	while (!ret) {
		ret = sb_ar_next(r, &e);
		if (ret <= 0)
			break;
		start = archive_filter_bytes(r->a, 0);
		ret = sb_apply(r, e, idx++);
		if (ret)
			break;
		ret = sb_ar_skip(r, e, start);
		if (ret <= 0)
			break;
		ret = 0;
	}
	l->entries = idx;
	sb_ar_close(r);
	free(r);
	return ret < 0 ? -1 : 0;
}

/* Regular files whose data is in one layer, by entry number. */
struct sb_want {
	struct sb_node **v;	/* owned array, sorted by src_entry */
	size_t n, cap;
	unsigned int layer;
};

static int sb_collect(struct sb_node *n, void *ctx)
{
	struct sb_want *w = ctx;

	if (!S_ISREG(n->mode) || n->link || n->layer != w->layer ||
	    !n->size)
		return 0;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		struct sb_node **v = realloc(w->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		w->v = v;
		w->cap = cap;
	}
	w->v[w->n++] = n;
	return 0;
}

static int sb_entry_cmp(const void *a, const void *b)
{
	uint64_t x = (*(struct sb_node *const *)a)->src_entry;
	uint64_t y = (*(struct sb_node *const *)b)->src_entry;

	return x < y ? -1 : x > y;
}

static int sb_changed(struct sb_layer_rd *r, struct sb_node *n,
		      const char *why)
{
	char p[PATH_MAX];

	sb_node_path(n, p, sizeof(p));
	err_report(0, "do not change layers while the image is built",
		   "cannot read layer %s: /%s %s since it was first read",
		   r->path, p, why);
	return -1;
}

/*
 * The data of @n, entry @e: 1, 0 when the archive ended right after it
 * (see sb_ar_unpadded_end()), -1 reported.
 */
static int sb_stream(struct sb_layer_rd *r, struct sb_node *n,
		     struct archive_entry *e, sb_data_fn fn, void *ctx)
{
	int64_t start = archive_filter_bytes(r->a, 0);
	const void *buf;
	size_t len;
	la_int64_t off;
	int ret;

	if (!archive_entry_size_is_set(e) ||
	    (uint64_t)archive_entry_size(e) != n->size)
		return sb_changed(r, n, "changed size");
	for (;;) {
		ret = archive_read_data_block(r->a, &buf, &len, &off);
		if (ret == ARCHIVE_EOF)
			return 1;
		if (ret != ARCHIVE_OK && ret != ARCHIVE_WARN) {
			if (sb_ar_unpadded_end(r, start, n->size))
				return 0;
			return sb_ar_fail(r, "is the layer complete?");
		}
		if (!len)
			continue;
		if (off < 0 || (uint64_t)off + len > n->size)
			return sb_changed(r, n, "has data past its size");
		ret = fn(n, (uint64_t)off, buf, len, ctx);
		if (ret) {
			char p[PATH_MAX];

			sb_node_path(n, p, sizeof(p));
			err_report(ret < 0 ? -ret : 0, NULL,
				   "cannot store the data of /%s", p);
			return -1;
		}
	}
}

static int sb_layer_data(struct sb_tree *t, unsigned int li, sb_data_fn fn,
			 void *ctx)
{
	struct sb_want w = { .layer = li };
	struct sb_layer_rd *r;
	struct archive_entry *e;
	uint64_t idx = 0;
	size_t i = 0;
	int ret;

	r = calloc(1, sizeof(*r));
	if (!r || sb_tree_walk(t, sb_collect, &w)) {
		free(r);
		free(w.v);
		err_report(ENOMEM, NULL, "cannot read layer %s",
			   t->layers[li].path);
		return -1;
	}
	r->t = t;
	r->idx = li;
	r->path = t->layers[li].path;
	if (!w.n) {
		ret = 0;
		goto out;
	}
	qsort(w.v, w.n, sizeof(*w.v), sb_entry_cmp);
	ret = sb_ar_open(r, t->layers[li].fd);
	while (!ret && i < w.n) {
		ret = sb_ar_next(r, &e);
		if (ret < 0)
			break;
		if (!ret) {
			ret = sb_changed(r, w.v[i], "is missing");
			break;
		}
		ret = 0;
		if (idx++ != w.v[i]->src_entry)
			continue;
		ret = sb_stream(r, w.v[i++], e, fn, ctx);
		if (ret < 0)
			break;
		if (!ret && i < w.n) {
			/* The archive ended (unpadded) after that entry. */
			ret = sb_changed(r, w.v[i], "is missing");
			break;
		}
		ret = 0;
	}
out:
	sb_ar_close(r);
	free(r);
	free(w.v);
	return ret < 0 ? -1 : 0;
}

int sb_layers_read_data(struct sb_tree *t, sb_data_fn fn, void *ctx)
{
	unsigned int li;

	for (li = 0; li < t->nlayers; li++)
		if (sb_layer_data(t, li, fn, ctx))
			return -1;
	return 0;
}
