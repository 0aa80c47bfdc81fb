/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Inside the tree builders (tree.c, layers.c, dirtree.c): the private
 * state wrapped around struct sb_tree and struct sb_node, and the node
 * helpers the two inputs share.  Not for the writer: it sees tree.h only.
 *
 * Every node is allocated as a struct sb_nodex and every tree as a
 * struct sb_treex; both are single-threaded and owned by the tree.
 */
#ifndef SNAPBLK_USER_SB_TREE_INT_H
#define SNAPBLK_USER_SB_TREE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tree.h"

#define sb_container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

/*
 * A node with what the builders need beyond tree.h.
 *
 * Hard links: all names of one inode form a ring through @ring (a name
 * with no other names points to itself).  The primary (n.link == NULL)
 * holds the inode's metadata and data source; when it leaves the tree
 * another name is promoted and takes them over (sb_node_promote()), so
 * for a primary regular file n.layer is the layer holding its data.
 */
struct sb_nodex {
	struct sb_node n;
	struct sb_nodex *ring;	/* next name of the same inode */
	struct sb_nodex *hnext;	/* chain in sb_treex.hash */
	/*
	 * The last layer whose archive named this path (itself or a path
	 * below it): what opaque directories and whiteouts call "from a
	 * lower layer" is seen != this layer.
	 */
	unsigned int seen;
	bool dead;		/* being removed (sb_node_remove()) */
	bool visited;		/* sb_tree_finish(): reached by the walk */
};

/*
 * The tree with a hash of (parent, name) -> node for lookups, so wide
 * directories cost no scans.  Owned by the caller of sb_tree_new().
 */
struct sb_treex {
	struct sb_tree t;
	struct sb_nodex **hash;	/* nbuckets chains, NULL-terminated */
	size_t nbuckets;	/* a power of two */
	size_t nhashed;		/* nodes in the hash (root excluded) */
};

static inline struct sb_nodex *sb_nx(struct sb_node *n)
{
	return sb_container_of(n, struct sb_nodex, n);
}

static inline struct sb_treex *sb_tx(struct sb_tree *t)
{
	return sb_container_of(t, struct sb_treex, t);
}

/* The child @name of directory @dir, or NULL. */
struct sb_node *sb_node_find(struct sb_tree *t, struct sb_node *dir,
			     const char *name);

/*
 * A new node @name (mode @mode) under @dir, not yet holding metadata
 * beyond mode, layer and seen; NULL (errno ENOMEM) when out of memory.
 * The caller has removed any node of that name first.
 */
struct sb_node *sb_node_add(struct sb_tree *t, struct sb_node *dir,
			    const char *name, uint32_t mode,
			    unsigned int layer);

/*
 * Take @n and its subtree out of the tree and free them; hard links to
 * inodes whose primary goes are given a new primary among the names
 * that stay.
 */
void sb_node_remove(struct sb_tree *t, struct sb_node *n);

/* Make name @n (n->link != NULL) the primary of its inode. */
void sb_node_promote(struct sb_node *n);

/* Add @n as another name of @target's inode (primary or not). */
void sb_node_link(struct sb_node *n, struct sb_node *target);

/* Extended attributes being gathered for one node; owned by the caller. */
struct sb_xattr_set {
	struct sb_xattr *v;	/* owned; sorted by sb_xattrs_sort() */
	unsigned int n, cap;	/* used and allocated entries */
};
/* Add a copy of @name = @value; 0 or -ENOMEM.  Duplicates: last wins. */
int sb_xattrs_add(struct sb_xattr_set *s, const char *name,
		  const void *value, size_t len);
void sb_xattrs_sort(struct sb_xattr_set *s);
void sb_xattrs_free(struct sb_xattr *v, unsigned int n);
/* Give the set to @n (its old xattrs freed); the set is left empty. */
void sb_node_set_xattrs(struct sb_node *n, struct sb_xattr_set *s);

/*
 * Split @path into normalised components in @buf (size @len): "./a//b/"
 * gives "a", "b"; leading "/" and "." dropped; ".." takes one away.
 * comps[] gets pointers into buf, *ncomps their number (up to maxcomps).
 * 0, -EXDEV when ".." leaves the root, -ENAMETOOLONG when too long.
 */
int sb_path_split(const char *path, char *buf, size_t len, char **comps,
		  unsigned int maxcomps, unsigned int *ncomps);

/*
 * The directory holding the last of @ncomps components, creating missing
 * ones (0755, root, t->epoch, @layer) and marking each seen by @layer.
 * A non-directory in the way from a lower layer is replaced; from this
 * layer it is an error (-ENOTDIR).  NULL with errno set on failure.
 */
struct sb_node *sb_tree_parent(struct sb_tree *t, char **comps,
			       unsigned int ncomps, unsigned int layer);

/* Look @ncomps components up from the root, creating nothing. */
struct sb_node *sb_tree_lookup(struct sb_tree *t, char **comps,
			       unsigned int ncomps);

/* The data pass of each input. */
int sb_layers_read_data(struct sb_tree *t, sb_data_fn fn, void *ctx);
int sb_dir_read_data(struct sb_tree *t, sb_data_fn fn, void *ctx);

#endif
