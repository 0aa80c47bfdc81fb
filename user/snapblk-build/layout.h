/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The dedup-stable layout (SNAPBLK_LAYOUT_STABLE1): where each inode and
 * each block of a tree goes in its ext4 image, so that images which share
 * layers or most of their files share most chunks.  The design and its
 * reasons are in Documentation/format.md, "Flattening".
 *
 * sb_layout_geometry() fixes the file system's shape from the tree alone
 * (a size class, not the exact size); ext4.c creates the file system,
 * reports where libext2fs put the inode tables, and sb_layout_place()
 * then gives every primary node its inode number (node->ino) and its run
 * of blocks (node->first_block, node->nblocks).  Both are pure functions
 * of the tree and the geometry: no I/O, no randomness, no host state.
 */
#ifndef SNAPBLK_USER_SB_LAYOUT_H
#define SNAPBLK_USER_SB_LAYOUT_H

#include <stdint.h>

#include "tree.h"

#define SB_BLOCK_SIZE		4096U
#define SB_INODE_SIZE		256U
#define SB_BLOCKS_PER_GROUP	32768U
#define SB_INODES_PER_GROUP	8192U	/* 2 MiB of inode table */
#define SB_INODES_PER_GROUP_MAX	32768U	/* one bitmap block */
#define SB_LAYOUT_MAX_LAYERS	128
#define SB_INODE_FACTOR		16	/* inode room per layer, by default */
#define SB_FS_SIZE_MAX		(1ULL << 44)	/* 16 TiB: inode counts fit 32 bits */
#define SB_LOST_FOUND_INO	11U
#define SB_LOST_FOUND_BLOCKS	4U

struct sb_geom {
	/* Set by sb_layout_geometry(). */
	uint64_t blocks;		/* file system size in blocks */
	uint32_t groups;
	uint32_t chunk_blocks;		/* blocks per image chunk */
	uint32_t journal_blocks;
	uint32_t inode_factor;		/* a layer's inode region, x its need */
	uint32_t ipg;			/* inodes per group */
	uint32_t roomy;			/* 1: a chunk of room after each run */
	/* Set by ext4.c once the file system exists. */
	uint64_t *itable;		/* groups entries: first inode table block */
	uint64_t lost_found;		/* lost+found's blocks */
	uint64_t data_start;		/* first block placed files may use */
};

/* Blocks a node's data takes: file data, directory blocks, long symlinks. */
uint64_t sb_layout_node_blocks(const struct sb_node *n);

/*
 * Choose the size class for the tree (fs_size 0) or check fs_size (bytes,
 * rounded down to whole groups).  0, or -1 after err_report().
 */
int sb_layout_geometry(struct sb_tree *t, uint32_t chunk_size,
		       uint64_t fs_size, struct sb_geom *g);

/* Place every primary node.  0, or -1 after err_report(). */
int sb_layout_place(struct sb_tree *t, const struct sb_geom *g);

/* The image chunk inode ino's 256 bytes lie in. */
uint64_t sb_layout_inode_chunk(const struct sb_geom *g, uint32_t ino);

#endif
