/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The file tree an image is flattened from, held in memory: built from
 * tar layers applied in order with the OCI rules (layers.c) or from a
 * directory walk (dirtree.c), then laid out and written as ext4 by
 * layout.c and ext4.c.  No file data is held: each regular file names
 * where its data is (an entry of a layer archive, or a file on disk), and
 * sb_tree_read_data() streams it in a second pass.
 *
 * Lifetime: every node, string and xattr belongs to the tree and is freed
 * by sb_tree_free().  Nothing is shared between threads.
 */
#ifndef SNAPBLK_USER_SB_TREE_H
#define SNAPBLK_USER_SB_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sb_xattr {
	char *name;		/* full name, e.g. "security.capability" */
	void *value;
	size_t len;
};

struct sb_node {
	char *name;		/* path component; "" for the root */
	struct sb_node *parent;	/* NULL for the root */
	struct sb_node *kids;	/* directories: first child; sorted by
				 * strcmp() of name after sb_tree_finish() */
	struct sb_node *next;	/* next sibling */

	uint32_t mode;		/* S_IFMT and all 12 permission bits */
	uint32_t uid, gid;
	int64_t mtime;		/* seconds since 1970 */
	uint32_t mtime_nsec;
	uint64_t size;		/* regular files: bytes of data */
	uint32_t rdev_major;	/* character and block devices */
	uint32_t rdev_minor;
	char *symlink;		/* symlinks: the target */
	struct sb_xattr *xattrs;	/* sorted by name; nxattrs of them */
	unsigned int nxattrs;

	/*
	 * Hard links: every name of one inode is a node; the first in
	 * sb_tree_walk() order is the primary (link == NULL) and holds the
	 * metadata and data, the others point to it.  nlink counts the
	 * names (directories: 2 + subdirectories), set by sb_tree_finish().
	 */
	struct sb_node *link;
	uint32_t nlink;

	/*
	 * The layer (0 = lowest, or the directory) that created this node:
	 * a node replaced by an upper layer counts as created there; a
	 * directory only re-declared by an upper layer keeps its layer.
	 */
	unsigned int layer;

	/* Where the data is (regular files, primary nodes only). */
	uint64_t src_entry;	/* entry number in layer's archive, from 0 */
	char *src_path;		/* directory input: the file on disk */

	/* For the writer: not touched by tree.c, layers.c or dirtree.c. */
	uint32_t ino;
	uint64_t first_block;	/* data: first block, 0 = none */
	uint64_t nblocks;
	void *priv;
};

struct sb_tree_layer {
	char *path;		/* as given; "-" for standard input */
	int fd;			/* re-read in the data pass; -1 when closed */
	uint64_t entries;	/* archive entries read */
};

struct sb_tree {
	struct sb_node *root;
	struct sb_tree_layer *layers;
	unsigned int nlayers;
	bool from_dir;		/* built by sb_tree_add_dir() */
	uint64_t nodes;		/* all nodes, root and hard links included */
	uint64_t inodes;	/* primary nodes (root included) */
	long epoch;		/* mtime of implied parent directories */
	const char *tmpdir;	/* for spooling standard input */
};

/*
 * One piece of a regular file's data, in increasing offset order; bytes
 * not given are zero (holes).  Return 0, or a negative errno to stop.
 */
typedef int (*sb_data_fn)(struct sb_node *n, uint64_t off, const void *buf,
			  size_t len, void *ctx);

/* Every function reports its errors with err_report() and returns -1. */
struct sb_tree *sb_tree_new(long epoch, const char *tmpdir);
int sb_tree_add_layer(struct sb_tree *t, const char *path);
int sb_tree_add_dir(struct sb_tree *t, const char *dir);
int sb_tree_finish(struct sb_tree *t);
int sb_tree_read_data(struct sb_tree *t, sb_data_fn fn, void *ctx);
void sb_tree_free(struct sb_tree *t);

/* Depth first, parents before children, children in name order. */
typedef int (*sb_walk_fn)(struct sb_node *n, void *ctx);
int sb_tree_walk(struct sb_tree *t, sb_walk_fn fn, void *ctx);

/* "usr/lib/x" (no leading slash; "" for the root) into buf. */
size_t sb_node_path(const struct sb_node *n, char *buf, size_t len);

#endif
