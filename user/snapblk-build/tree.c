// SPDX-License-Identifier: GPL-2.0
/*
 * The in-memory file tree: nodes, lookups by (parent, name) through a
 * hash, removal with hard-link repair, the finishing pass (sorted
 * children, link counts, primaries in walk order), the walk, and the
 * dispatch of the data pass to the input that built the tree.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tree.h"
#include "tree_int.h"
#include "util.h"

#define SB_HASH_MIN 1024

static size_t sb_hash(const struct sb_node *dir, const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull ^ (uintptr_t)dir;

	while (*name) {
		h ^= (unsigned char)*name++;
		h *= 0x100000001b3ull;
	}
	return (size_t)(h ^ (h >> 29));
}

struct sb_tree *sb_tree_new(long epoch, const char *tmpdir)
{
	struct sb_treex *tx = calloc(1, sizeof(*tx));
	struct sb_nodex *root = calloc(1, sizeof(*root));

	if (!tx || !root)
		goto fail;
	tx->nbuckets = SB_HASH_MIN;
	tx->hash = calloc(tx->nbuckets, sizeof(*tx->hash));
	root->n.name = strdup("");
	if (!tx->hash || !root->n.name)
		goto fail;
	root->ring = root;
	root->n.mode = S_IFDIR | 0755;
	root->n.mtime = epoch;
	tx->t.root = &root->n;
	tx->t.epoch = epoch;
	tx->t.tmpdir = tmpdir;
	return &tx->t;
fail:
	if (root)
		free(root->n.name);
	free(root);
	if (tx)
		free(tx->hash);
	free(tx);
	err_report(ENOMEM, NULL, "cannot allocate the file tree");
	return NULL;
}

struct sb_node *sb_node_find(struct sb_tree *t, struct sb_node *dir,
			     const char *name)
{
	struct sb_treex *tx = sb_tx(t);
	struct sb_nodex *x;

	x = tx->hash[sb_hash(dir, name) & (tx->nbuckets - 1)];
	for (; x; x = x->hnext)
		if (x->n.parent == dir && !strcmp(x->n.name, name))
			return &x->n;
	return NULL;
}

static void sb_hash_grow(struct sb_treex *tx)
{
	size_t nb = tx->nbuckets * 2, i;
	struct sb_nodex **h = calloc(nb, sizeof(*h));

	if (!h)
		return;		/* longer chains, still correct */
	for (i = 0; i < tx->nbuckets; i++) {
		struct sb_nodex *x = tx->hash[i], *next;

		for (; x; x = next) {
			size_t b = sb_hash(x->n.parent, x->n.name) & (nb - 1);

			next = x->hnext;
			x->hnext = h[b];
			h[b] = x;
		}
	}
	free(tx->hash);
	tx->hash = h;
	tx->nbuckets = nb;
}

struct sb_node *sb_node_add(struct sb_tree *t, struct sb_node *dir,
			    const char *name, uint32_t mode,
			    unsigned int layer)
{
	struct sb_treex *tx = sb_tx(t);
	struct sb_nodex *x = calloc(1, sizeof(*x));
	size_t b;

	if (!x)
		return NULL;
	x->n.name = strdup(name);
	if (!x->n.name) {
		free(x);
		errno = ENOMEM;
		return NULL;
	}
	if (tx->nhashed >= tx->nbuckets)
		sb_hash_grow(tx);
	x->ring = x;
	x->seen = layer;
	x->n.mode = mode;
	x->n.layer = layer;
	x->n.mtime = t->epoch;
	x->n.parent = dir;
	x->n.next = dir->kids;
	dir->kids = &x->n;
	b = sb_hash(dir, name) & (tx->nbuckets - 1);
	x->hnext = tx->hash[b];
	tx->hash[b] = x;
	tx->nhashed++;
	return &x->n;
}

void sb_xattrs_free(struct sb_xattr *v, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].value);
	}
	free(v);
}

int sb_xattrs_add(struct sb_xattr_set *s, const char *name,
		  const void *value, size_t len)
{
	struct sb_xattr *x = NULL;
	unsigned int i;
	void *val;

	for (i = 0; i < s->n; i++)
		if (!strcmp(s->v[i].name, name))
			x = &s->v[i];
	val = malloc(len ? len : 1);
	if (!val)
		return -ENOMEM;
	memcpy(val, value, len);
	if (x) {
		free(x->value);
		x->value = val;
		x->len = len;
		return 0;
	}
	if (s->n == s->cap) {
		unsigned int cap = s->cap ? s->cap * 2 : 4;
		struct sb_xattr *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			goto nomem;
		s->v = v;
		s->cap = cap;
	}
	x = &s->v[s->n];
	x->name = strdup(name);
	if (!x->name)
		goto nomem;
	x->value = val;
	x->len = len;
	s->n++;
	return 0;
nomem:
	free(val);
	return -ENOMEM;
}

static int sb_xattr_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sb_xattr *)a)->name,
		      ((const struct sb_xattr *)b)->name);
}

void sb_xattrs_sort(struct sb_xattr_set *s)
{
	if (s->n > 1)
		qsort(s->v, s->n, sizeof(*s->v), sb_xattr_cmp);
}

void sb_node_set_xattrs(struct sb_node *n, struct sb_xattr_set *s)
{
	sb_xattrs_free(n->xattrs, n->nxattrs);
	sb_xattrs_sort(s);
	n->xattrs = s->n ? s->v : NULL;
	n->nxattrs = s->n;
	if (!s->n)
		free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

#define SB_SWAP(a, b) do {			\
		__typeof__(a) __tmp = (a);	\
		(a) = (b);			\
		(b) = __tmp;			\
	} while (0)

void sb_node_promote(struct sb_node *n)
{
	struct sb_node *p = n->link;
	struct sb_nodex *x = sb_nx(n), *y;

	if (!p)
		return;
	/* The inode's fields move; p keeps what n had (nothing owned). */
	SB_SWAP(n->mode, p->mode);
	SB_SWAP(n->uid, p->uid);
	SB_SWAP(n->gid, p->gid);
	SB_SWAP(n->mtime, p->mtime);
	SB_SWAP(n->mtime_nsec, p->mtime_nsec);
	SB_SWAP(n->size, p->size);
	SB_SWAP(n->rdev_major, p->rdev_major);
	SB_SWAP(n->rdev_minor, p->rdev_minor);
	SB_SWAP(n->symlink, p->symlink);
	SB_SWAP(n->xattrs, p->xattrs);
	SB_SWAP(n->nxattrs, p->nxattrs);
	SB_SWAP(n->layer, p->layer);
	SB_SWAP(n->src_entry, p->src_entry);
	SB_SWAP(n->src_path, p->src_path);
	n->link = NULL;
	for (y = x->ring; y != x; y = y->ring)
		y->n.link = n;
}

void sb_node_link(struct sb_node *n, struct sb_node *target)
{
	struct sb_nodex *x = sb_nx(n), *tg = sb_nx(target);
	struct sb_node *p = target->link ? target->link : target;

	n->link = p;
	n->mode = p->mode;
	x->ring = tg->ring;
	tg->ring = x;
}

/* Take @x out of its inode's ring, promoting another name if needed. */
static void sb_unring(struct sb_nodex *x)
{
	struct sb_nodex *y, *prev;

	if (x->ring == x)
		return;
	if (!x->n.link) {
		for (y = x->ring; y != x && y->dead; y = y->ring)
			;
		if (y != x)
			sb_node_promote(&y->n);
	}
	for (prev = x; prev->ring != x; prev = prev->ring)
		;
	prev->ring = x->ring;
	x->ring = x;
}

static void sb_mark_dead(struct sb_node *n)
{
	struct sb_node *k;

	sb_nx(n)->dead = true;
	for (k = n->kids; k; k = k->next)
		sb_mark_dead(k);
}

static void sb_unhash(struct sb_treex *tx, struct sb_nodex *x)
{
	struct sb_nodex **pp;

	pp = &tx->hash[sb_hash(x->n.parent, x->n.name) & (tx->nbuckets - 1)];
	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == x) {
			*pp = x->hnext;
			tx->nhashed--;
			return;
		}
	}
}

static void sb_free_node(struct sb_node *n)
{
	free(n->name);
	free(n->symlink);
	free(n->src_path);
	sb_xattrs_free(n->xattrs, n->nxattrs);
	free(sb_nx(n));
}

/* Unring, unhash and free a dead subtree. */
static void sb_free_dead(struct sb_treex *tx, struct sb_node *n)
{
	struct sb_node *k, *next;

	for (k = n->kids; k; k = next) {
		next = k->next;
		sb_free_dead(tx, k);
	}
	/*
	 * Freeing the whole tree (tx NULL): no ring or hash is left to
	 * keep right, and unringing each name would walk its ring, O(n^2)
	 * for an inode with n names (65000 names: 46 s).
	 */
	if (tx) {
		sb_unring(sb_nx(n));
		sb_unhash(tx, sb_nx(n));
	}
	sb_free_node(n);
}

void sb_node_remove(struct sb_tree *t, struct sb_node *n)
{
	struct sb_node **pp;

	for (pp = &n->parent->kids; *pp; pp = &(*pp)->next) {
		if (*pp == n) {
			*pp = n->next;
			break;
		}
	}
	sb_mark_dead(n);
	sb_free_dead(sb_tx(t), n);
}

int sb_path_split(const char *path, char *buf, size_t len, char **comps,
		  unsigned int maxcomps, unsigned int *ncomps)
{
	unsigned int nc = 0;
	char *s, *save = NULL, *c;

	if (strlen(path) >= len)
		return -ENAMETOOLONG;
	strcpy(buf, path);
	for (s = buf; (c = strtok_r(s, "/", &save)); s = NULL) {
		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, "..")) {
			if (!nc)
				return -EXDEV;
			nc--;
			continue;
		}
		if (nc == maxcomps)
			return -ENAMETOOLONG;
		comps[nc++] = c;
	}
	*ncomps = nc;
	return 0;
}

struct sb_node *sb_tree_parent(struct sb_tree *t, char **comps,
			       unsigned int ncomps, unsigned int layer)
{
	struct sb_node *dir = t->root, *k;
	unsigned int i;

	sb_nx(dir)->seen = layer;
	for (i = 0; i + 1 < ncomps; i++) {
		k = sb_node_find(t, dir, comps[i]);
		if (k && !S_ISDIR(k->mode)) {
			if (sb_nx(k)->seen == layer) {
				errno = ENOTDIR;
				return NULL;
			}
			sb_node_remove(t, k);
			k = NULL;
		}
		if (!k) {
			k = sb_node_add(t, dir, comps[i], S_IFDIR | 0755,
					layer);
			if (!k)
				return NULL;
		}
		sb_nx(k)->seen = layer;
		dir = k;
	}
	return dir;
}

struct sb_node *sb_tree_lookup(struct sb_tree *t, char **comps,
			       unsigned int ncomps)
{
	struct sb_node *n = t->root;
	unsigned int i;

	for (i = 0; i < ncomps && n; i++) {
		if (!S_ISDIR(n->mode))
			return NULL;
		n = sb_node_find(t, n, comps[i]);
	}
	return n;
}

static int sb_name_cmp(const void *a, const void *b)
{
	return strcmp((*(struct sb_node *const *)a)->name,
		      (*(struct sb_node *const *)b)->name);
}

/* Sort every directory's children; count nodes; set directories' nlink. */
static int sb_sort(struct sb_tree *t, struct sb_node *dir)
{
	struct sb_node **v, *k;
	size_t n = 0, i, subdirs = 0;

	for (k = dir->kids; k; k = k->next)
		n++;
	if (n > 1) {
		v = malloc(n * sizeof(*v));
		if (!v)
			return -ENOMEM;
		for (i = 0, k = dir->kids; k; k = k->next)
			v[i++] = k;
		qsort(v, n, sizeof(*v), sb_name_cmp);
		for (i = 0; i < n; i++)
			v[i]->next = i + 1 < n ? v[i + 1] : NULL;
		dir->kids = v[0];
		free(v);
	}
	for (k = dir->kids; k; k = k->next) {
		sb_nx(k)->visited = false;
		if (S_ISDIR(k->mode)) {
			int ret = sb_sort(t, k);

			if (ret)
				return ret;
			subdirs++;
		}
	}
	dir->nlink = 2 + subdirs;
	return 0;
}

/* In walk order: the first name of each inode becomes its primary. */
static int sb_finish_node(struct sb_node *n, void *ctx)
{
	struct sb_tree *t = ctx;
	struct sb_nodex *x = sb_nx(n), *y;
	uint32_t names = 1;

	t->nodes++;
	if (S_ISDIR(n->mode)) {
		t->inodes++;
		return 0;
	}
	if (x->visited)
		return 0;
	if (n->link)
		sb_node_promote(n);
	t->inodes++;
	for (y = x->ring; y != x; y = y->ring) {
		y->visited = true;
		names++;
	}
	x->visited = true;
	n->nlink = names;
	for (y = x->ring; y != x; y = y->ring) {
		y->n.nlink = names;
		y->n.mode = n->mode;
	}
	return 0;
}

int sb_tree_finish(struct sb_tree *t)
{
	int ret = sb_sort(t, t->root);

	if (ret) {
		err_report(-ret, NULL, "cannot sort the file tree");
		return -1;
	}
	t->nodes = 0;
	t->inodes = 0;
	return sb_tree_walk(t, sb_finish_node, t);
}

static int sb_walk_node(struct sb_node *n, sb_walk_fn fn, void *ctx)
{
	struct sb_node *k;
	int ret = fn(n, ctx);

	for (k = n->kids; k && !ret; k = k->next)
		ret = sb_walk_node(k, fn, ctx);
	return ret;
}

int sb_tree_walk(struct sb_tree *t, sb_walk_fn fn, void *ctx)
{
	return sb_walk_node(t->root, fn, ctx);
}

size_t sb_node_path(const struct sb_node *n, char *buf, size_t len)
{
	const struct sb_node *m;
	size_t total = 0, pos;

	for (m = n; m->parent; m = m->parent)
		total += strlen(m->name) + (m->parent->parent ? 1 : 0);
	if (!len)
		return total;
	if (total >= len) {
		buf[0] = '\0';
		return total;
	}
	pos = total;
	buf[pos] = '\0';
	for (m = n; m->parent; m = m->parent) {
		size_t l = strlen(m->name);

		pos -= l;
		memcpy(buf + pos, m->name, l);
		if (m->parent->parent)
			buf[--pos] = '/';
	}
	return total;
}

int sb_tree_read_data(struct sb_tree *t, sb_data_fn fn, void *ctx)
{
	if (t->from_dir)
		return sb_dir_read_data(t, fn, ctx);
	return sb_layers_read_data(t, fn, ctx);
}

void sb_tree_free(struct sb_tree *t)
{
	struct sb_treex *tx;
	struct sb_node *k, *next;
	unsigned int i;

	if (!t)
		return;
	tx = sb_tx(t);
	for (k = t->root->kids; k; k = next) {
		next = k->next;
		sb_mark_dead(k);
		sb_free_dead(NULL, k);
	}
	sb_free_node(t->root);
	for (i = 0; i < t->nlayers; i++) {
		if (t->layers[i].fd >= 0)
			close(t->layers[i].fd);
		free(t->layers[i].path);
	}
	free(t->layers);
	free(tx->hash);
	free(tx);
}
