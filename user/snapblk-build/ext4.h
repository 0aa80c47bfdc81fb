/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Write a tree as an ext4 file system with libext2fs, in the dedup-stable
 * layout of layout.h: the metadata is written here, file data by the
 * caller from sb_tree_read_data() at each node's first_block (so no file
 * is copied twice).  Deterministic: the same tree and options give the
 * same bytes on any host (Documentation/format.md, "Flattening").
 */
#ifndef SNAPBLK_USER_SB_EXT4_H
#define SNAPBLK_USER_SB_EXT4_H

#include <stdbool.h>
#include <stdint.h>

#include "layout.h"
#include "tree.h"

struct sb_ext4_opts {
	const char *uuid;	/* file system UUID and hash seed */
	long epoch;		/* atime, ctime, crtime and the fs's times */
	bool set_owner;		/* every inode owned by uid:gid */
	uint32_t uid, gid;
	uint32_t chunk_size;	/* the image's chunk size */
	uint64_t fs_size;	/* 0: the size class */
};

/*
 * fd: the image file, opened read-write (it is truncated and sized).
 * On success g holds the geometry (free g->itable when done) and every
 * primary node its placement.
 * 0, or -1 after err_report().
 */
int sb_ext4_write(struct sb_tree *t, const struct sb_ext4_opts *o, int fd,
		  struct sb_geom *g);

#endif
