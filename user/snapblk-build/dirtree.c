// SPDX-License-Identifier: GPL-2.0
/*
 * A directory into the tree, without privilege: owners, modes, times and
 * device numbers from lstat(), extended attributes from llistxattr() and
 * lgetxattr(), hard links by (st_dev, st_ino).  The data pass reads each
 * regular file's data extents (SEEK_DATA/SEEK_HOLE), so holes cost
 * nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "tree.h"
#include "tree_int.h"
#include "util.h"

#define SB_READ_HINT "make it readable by this user (chmod, or run as " \
		     "its owner or root)"

/* An inode with more than one name, by (dev, ino); in sb_dirwalk.inos. */
struct sb_ino {
	dev_t dev;
	ino_t ino;
	struct sb_node *n;	/* the first name found */
};

/* One directory walk; single-threaded, freed by sb_tree_add_dir(). */
struct sb_dirwalk {
	struct sb_tree *t;
	char path[PATH_MAX];	/* the file being read */
	void *inos;		/* tsearch() tree of owned struct sb_ino */
};

static int sb_dir_nomem(struct sb_dirwalk *w)
{
	err_report(ENOMEM, NULL, "cannot read %s", w->path);
	return -1;
}

static int sb_read_xattrs(struct sb_dirwalk *w, struct sb_node *n)
{
	struct sb_xattr_set xs = { 0 };
	char *names = NULL, *name;
	void *val = NULL;
	ssize_t len, vlen;
	int ret = -1;

	for (;;) {
		len = llistxattr(w->path, NULL, 0);
		if (len < 0 && errno == ENOTSUP)
			return 0;
		if (len < 0)
			goto fail;
		if (!len)
			return 0;
		free(names);
		names = malloc(len);
		if (!names)
			goto nomem;
		len = llistxattr(w->path, names, len);
		if (len >= 0)
			break;
		if (errno != ERANGE)
			goto fail;
	}
	for (name = names; name < names + len; name += strlen(name) + 1) {
		vlen = lgetxattr(w->path, name, NULL, 0);
		for (;;) {
			if (vlen < 0 && (errno == EPERM || errno == EACCES ||
					 errno == ENODATA))
				break;
			if (vlen < 0)
				goto fail;
			free(val);
			val = malloc(vlen ? vlen : 1);
			if (!val)
				goto nomem;
			vlen = lgetxattr(w->path, name, val, vlen);
			if (vlen >= 0) {
				if (sb_xattrs_add(&xs, name, val, vlen))
					goto nomem;
				break;
			}
			if (errno != ERANGE)
				continue;	/* handled at the top */
			vlen = lgetxattr(w->path, name, NULL, 0);
		}
	}
	sb_node_set_xattrs(n, &xs);
	ret = 0;
	goto out;
nomem:
	errno = ENOMEM;
fail:
	err_report(errno, NULL, "cannot read the extended attributes of %s",
		   w->path);
out:
	sb_xattrs_free(xs.v, xs.n);
	free(names);
	free(val);
	return ret;
}

static void sb_set_stat(struct sb_node *n, const struct stat *st)
{
	n->mode = st->st_mode & (S_IFMT | 07777);
	n->uid = st->st_uid;
	n->gid = st->st_gid;
	n->mtime = st->st_mtim.tv_sec;
	n->mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
	if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
		n->rdev_major = major(st->st_rdev);
		n->rdev_minor = minor(st->st_rdev);
	}
	if (S_ISREG(st->st_mode))
		n->size = (uint64_t)st->st_size;
}

static int sb_ino_cmp(const void *a, const void *b)
{
	const struct sb_ino *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/*
 * *first: the first name of @st's inode when it has one already, else
 * NULL with @n noted as its first name.  0, or -1 (reported).
 */
static int sb_first_name(struct sb_dirwalk *w, const struct stat *st,
			 struct sb_node *n, struct sb_node **first)
{
	struct sb_ino *e, **found;

	*first = NULL;
	if (S_ISDIR(st->st_mode) || st->st_nlink < 2)
		return 0;
	e = malloc(sizeof(*e));
	if (!e)
		return sb_dir_nomem(w);
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	e->n = n;
	found = tsearch(e, &w->inos, sb_ino_cmp);
	if (!found) {
		free(e);
		return sb_dir_nomem(w);
	}
	if (*found != e) {
		*first = (*found)->n;
		free(e);
	}
	return 0;
}

static int sb_walk_dir(struct sb_dirwalk *w, struct sb_node *dir);

/* w->path is the entry's path, @name its last component. */
static int sb_add_entry(struct sb_dirwalk *w, struct sb_node *dir,
			const char *name)
{
	struct sb_node *n, *first;
	struct stat st;
	int fd;

	if (lstat(w->path, &st)) {
		err_report(errno, errno == EACCES ? SB_READ_HINT : NULL,
			   "cannot read %s", w->path);
		return -1;
	}
	if (S_ISSOCK(st.st_mode))
		return 0;
	n = sb_node_add(w->t, dir, name, st.st_mode & S_IFMT, 0);
	if (!n)
		return sb_dir_nomem(w);
	if (sb_first_name(w, &st, n, &first))
		return -1;
	if (first) {
		sb_node_link(n, first);
		return 0;
	}
	sb_set_stat(n, &st);
	if (sb_read_xattrs(w, n))
		return -1;
	if (S_ISLNK(st.st_mode)) {
		size_t len = st.st_size ? (size_t)st.st_size + 1 : PATH_MAX;
		ssize_t got;

		n->symlink = malloc(len);
		if (!n->symlink)
			return sb_dir_nomem(w);
		got = readlink(w->path, n->symlink, len);
		if (got < 0) {
			err_report(errno, NULL, "cannot read %s", w->path);
			return -1;
		}
		if ((size_t)got >= len) {
			err_report(0, "do not change the directory while "
				   "the image is built",
				   "cannot read %s: the link changed",
				   w->path);
			return -1;
		}
		n->symlink[got] = '\0';
	}
	if (S_ISREG(st.st_mode)) {
		fd = open(w->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			err_report(errno, errno == EACCES ? SB_READ_HINT :
				   NULL, "cannot read %s", w->path);
			return -1;
		}
		close(fd);
		n->src_path = strdup(w->path);
		if (!n->src_path)
			return sb_dir_nomem(w);
	}
	if (S_ISDIR(st.st_mode))
		return sb_walk_dir(w, n);
	return 0;
}

/* Read the entries of directory w->path into @dir. */
static int sb_walk_dir(struct sb_dirwalk *w, struct sb_node *dir)
{
	size_t plen = strlen(w->path);
	struct dirent *de;
	DIR *d;
	int ret = 0;

	d = opendir(w->path);
	if (!d) {
		err_report(errno, errno == EACCES ? SB_READ_HINT : NULL,
			   "cannot read directory %s", w->path);
		return -1;
	}
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno) {
				err_report(errno, NULL,
					   "cannot read directory %s",
					   w->path);
				ret = -1;
			}
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (plen + 1 + strlen(de->d_name) >= sizeof(w->path)) {
			err_report(ENAMETOOLONG, NULL, "cannot read %s/%s",
				   w->path, de->d_name);
			ret = -1;
			break;
		}
		w->path[plen] = '/';
		strcpy(w->path + plen + 1, de->d_name);
		ret = sb_add_entry(w, dir, de->d_name);
		w->path[plen] = '\0';
		if (ret)
			break;
	}
	closedir(d);
	return ret;
}

int sb_tree_add_dir(struct sb_tree *t, const char *dir)
{
	struct sb_dirwalk *w;
	struct stat st;
	size_t len;
	int ret = -1;

	if (t->from_dir || t->nlayers) {
		err_report(0, "give either --from-dir or layers",
			   "cannot add directory %s to this tree", dir);
		return -1;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		err_report(ENOMEM, NULL, "cannot read %s", dir);
		return -1;
	}
	len = strlen(dir);
	while (len > 1 && dir[len - 1] == '/')
		len--;
	if (len >= sizeof(w->path)) {
		err_report(ENAMETOOLONG, NULL, "cannot read %s", dir);
		goto out;
	}
	memcpy(w->path, dir, len);
	w->path[len] = '\0';
	if (stat(w->path, &st)) {
		err_report(errno, NULL, "cannot read directory %s", w->path);
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		err_report(ENOTDIR, NULL, "cannot read directory %s",
			   w->path);
		goto out;
	}
	w->t = t;
	t->from_dir = true;
	sb_set_stat(t->root, &st);
	if (sb_read_xattrs(w, t->root))
		goto out;
	ret = sb_walk_dir(w, t->root);
out:
	tdestroy(w->inos, free);
	free(w);
	return ret;
}

/* Regular file @n's data extents, in offset order. */
static int sb_file_data(struct sb_node *n, sb_data_fn fn, void *ctx,
			char *buf, size_t blen)
{
	const char *path = n->src_path;
	off_t pos = 0, data, hole;
	struct stat st;
	int fd, err, ret = -1;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		err_report(errno, errno == EACCES ? SB_READ_HINT : NULL,
			   "cannot read %s", path);
		return -1;
	}
	if (fstat(fd, &st)) {
		err_report(errno, NULL, "cannot read %s", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != n->size) {
		err_report(0, "do not change the directory while the image "
			   "is built", "cannot read %s: it changed size "
			   "(%llu bytes, %llu when first read)", path,
			   (unsigned long long)st.st_size,
			   (unsigned long long)n->size);
		goto out;
	}
	while ((uint64_t)pos < n->size) {
		data = lseek(fd, pos, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break;
		if (data < 0 && errno == EINVAL) {
			data = pos;	/* no SEEK_DATA here: all data */
			hole = (off_t)n->size;
		} else if (data < 0) {
			err_report(errno, NULL, "cannot read %s", path);
			goto out;
		} else {
			hole = lseek(fd, data, SEEK_HOLE);
			if (hole < 0) {
				err_report(errno, NULL, "cannot read %s",
					   path);
				goto out;
			}
		}
		if ((uint64_t)hole > n->size)
			hole = (off_t)n->size;
		for (pos = data; pos < hole;) {
			size_t want = (size_t)(hole - pos) < blen ?
				      (size_t)(hole - pos) : blen;
			ssize_t got = pread(fd, buf, want, pos);

			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0) {
				err_report(errno, NULL, "cannot read %s",
					   path);
				goto out;
			}
			if (!got) {
				err_report(0, "do not change the directory "
					   "while the image is built",
					   "cannot read %s: it changed size",
					   path);
				goto out;
			}
			err = fn(n, (uint64_t)pos, buf, (size_t)got, ctx);
			if (err) {
				err_report(err < 0 ? -err : 0, NULL,
					   "cannot store the data of %s",
					   path);
				goto out;
			}
			pos += got;
		}
		if (pos < data)
			pos = data;
	}
	ret = 0;
out:
	close(fd);
	return ret;
}

struct sb_dir_data {
	sb_data_fn fn;
	void *ctx;
	char *buf;	/* owned by sb_dir_read_data(); blen bytes */
	size_t blen;
};

static int sb_dir_node(struct sb_node *n, void *ctx)
{
	struct sb_dir_data *d = ctx;

	if (!S_ISREG(n->mode) || n->link || !n->size)
		return 0;
	return sb_file_data(n, d->fn, d->ctx, d->buf, d->blen);
}

int sb_dir_read_data(struct sb_tree *t, sb_data_fn fn, void *ctx)
{
	struct sb_dir_data d = { .fn = fn, .ctx = ctx, .blen = 1 << 20 };
	int ret;

	d.buf = malloc(d.blen);
	if (!d.buf) {
		err_report(ENOMEM, NULL, "cannot read the directory's files");
		return -1;
	}
	ret = sb_tree_walk(t, sb_dir_node, &d);
	free(d.buf);
	return ret ? -1 : 0;
}
