// SPDX-License-Identifier: GPL-2.0
/*
 * The dedup-stable layout: a pure function from a tree to inode numbers
 * and block runs.  Documentation/format.md, "Flattening", gives the rules
 * and why; in short:
 *
 *  - The geometry is a size class (1 GiB times a power of 4) with eight
 *    times the room the tree needs: images of similar size get the same
 *    geometry, and the empty space is ZERO chunks, which cost nothing.
 *  - Nodes are taken layer by layer (lower layers first), each layer
 *    "files first": a directory, its files, then its subdirectories.
 *    What a lower layer produced does not depend on the layers above.
 *  - Each layer's inodes live in inode table chunks of its own.
 *  - Within a layer, nodes are cut into buckets where a hash of the path
 *    says so: adding or removing a file changes only its own bucket.
 *  - A bucket's inodes are a small hash table placed where the hash of
 *    its first path says (double hashing over what is taken); each node
 *    sits at the place its own path hashes to, so the other nodes keep
 *    their numbers and their directory entries stay the same.
 *  - Small files' data is packed in runs of one chunk, each run placed
 *    by the hash of its first path; a run's position does not depend on
 *    what precedes it, so a change does not move the rest.
 *  - Files of half a chunk or more are placed alone, chunk aligned, so
 *    their chunks depend on their content only.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "layout.h"
#include "util.h"

#define BUCKET_ONE_IN		128	/* nodes per bucket, on average */
#define RUN_CUT_ONE_IN		4	/* runs cut when 3/4 full, one in */
#define EXTENT_MAX_LEN		32768U	/* blocks in one initialised extent */
#define INLINE_EXTENTS		4U	/* extents that fit in the inode */
#define LEAF_EXTENTS		340U	/* extents in one 4 KiB leaf block */
#define FAST_SYMLINK_MAX	59U	/* targets this long live in the inode */
#define CLASS_MIN_BYTES		(1ULL << 30)

/* ------------------------------------------------------------- sizes */

static uint64_t dirent_len(size_t name_len)
{
	return 8 + ((name_len + 3) & ~3UL);
}

/*
 * Directory blocks: "." and ".." then every child in name order, packed
 * linearly; each block ends with the 12-byte checksum tail.  ext4.c packs
 * them by the same rule and checks the count.
 */
static uint64_t dir_blocks(const struct sb_node *n)
{
	const uint64_t room = SB_BLOCK_SIZE - 12;
	uint64_t blocks = 1, used = dirent_len(1) + dirent_len(2);
	const struct sb_node *k;

	for (k = n->kids; k; k = k->next) {
		uint64_t len = dirent_len(strlen(k->name));

		if (used + len > room) {
			blocks++;
			used = 0;
		}
		used += len;
	}
	return blocks;
}

static uint64_t extent_blocks(uint64_t data)
{
	uint64_t extents = (data + EXTENT_MAX_LEN - 1) / EXTENT_MAX_LEN;

	if (extents <= INLINE_EXTENTS)
		return 0;
	return (extents + LEAF_EXTENTS - 1) / LEAF_EXTENTS;
}

uint64_t sb_layout_node_blocks(const struct sb_node *n)
{
	uint64_t data;

	if (n->link)
		return 0;
	switch (n->mode & S_IFMT) {
	case S_IFREG:
		data = (n->size + SB_BLOCK_SIZE - 1) / SB_BLOCK_SIZE;
		return data + extent_blocks(data);
	case S_IFDIR:
		return dir_blocks(n);
	case S_IFLNK:
		return strlen(n->symlink) > FAST_SYMLINK_MAX ? 1 : 0;
	default:
		return 0;
	}
}

/* ---------------------------------------------------------- geometry */

struct count {
	uint64_t blocks;
	uint64_t inodes;
	uint64_t layer[SB_LAYOUT_MAX_LAYERS];	/* inodes per layer */
};

static int count_one(struct sb_node *n, void *ctx)
{
	struct count *c = ctx;

	c->blocks += sb_layout_node_blocks(n);
	if (!n->link) {
		c->inodes++;
		if (n->parent && n->layer < SB_LAYOUT_MAX_LAYERS)
			c->layer[n->layer]++;
	}
	return 0;
}

static uint64_t pow2_up(uint64_t n)
{
	uint64_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

/*
 * Inode table chunks a layer of n inodes gets: factor (16, unless an
 * explicit --fs-size has too few inodes) times the room it needs,
 * rounded up to a power of two so that a few files more or less keep the
 * same region (and so the same inode numbers).
 */
static uint64_t layer_chunks(uint64_t n, uint32_t chunk_size,
			     uint32_t factor)
{
	uint64_t per_chunk = chunk_size / SB_INODE_SIZE;

	return pow2_up((factor * n + per_chunk - 1) / per_chunk);
}

/* Inodes the layers' regions need, with the reserved ones. */
static uint64_t inodes_needed(const struct count *c, uint32_t chunk_size,
			      uint32_t factor)
{
	uint64_t chunks = 1, l;

	for (l = 0; l < SB_LAYOUT_MAX_LAYERS; l++)
		if (c->layer[l])
			chunks += layer_chunks(c->layer[l], chunk_size,
					       factor);
	return (chunks + 1) * (chunk_size / SB_INODE_SIZE);
}

static void set_size(struct sb_geom *g, uint64_t blocks)
{
	int j;

	g->blocks = blocks;
	g->groups = (blocks + SB_BLOCKS_PER_GROUP - 1) / SB_BLOCKS_PER_GROUP;
	j = blocks < 32768 ? 1024 : blocks < 262144 ? 4096 :
	    blocks < 524288 ? 8192 : blocks < 4194304 ? 16384 : 32768;
	g->journal_blocks = j;
}

/* Blocks the metadata before the data area takes, at most. */
static uint64_t meta_blocks(const struct sb_geom *g)
{
	uint64_t gdt = ((uint64_t)g->groups * 64 + SB_BLOCK_SIZE - 1) /
		       SB_BLOCK_SIZE;

	return 1 + gdt + 2ULL * g->groups +
	       (uint64_t)g->groups * g->ipg * SB_INODE_SIZE /
	       SB_BLOCK_SIZE + g->journal_blocks + SB_LOST_FOUND_BLOCKS +
	       g->chunk_blocks;
}

int sb_layout_geometry(struct sb_tree *t, uint32_t chunk_size,
		       uint64_t fs_size, struct sb_geom *g)
{
	static struct count c;
	uint64_t size, need, inodes;

	memset(g, 0, sizeof(*g));
	g->chunk_blocks = chunk_size / SB_BLOCK_SIZE;
	memset(&c, 0, sizeof(c));
	sb_tree_walk(t, count_one, &c);
	/* Packing into whole chunks wastes half a chunk per bucket. */
	need = c.blocks + c.blocks / 2 + 2ULL * g->chunk_blocks;
	g->inode_factor = SB_INODE_FACTOR;
	g->ipg = SB_INODES_PER_GROUP;
	inodes = inodes_needed(&c, chunk_size, g->inode_factor);

	if (fs_size > SB_FS_SIZE_MAX) {
		err_report(EFBIG, "give at most 16T", "--fs-size %llu GiB is "
			   "larger than this builder writes",
			   (unsigned long long)(fs_size >> 30));
		return -1;
	}
	if (fs_size) {
		size = fs_size / SB_BLOCK_SIZE;
		if (size > SB_BLOCKS_PER_GROUP)
			size -= size % SB_BLOCKS_PER_GROUP;
		set_size(g, size);
		/*
		 * An explicit size: more inodes per group (their tables are
		 * ZERO chunks), then less inode room per layer, rather than
		 * fail; below 8 times, a layer's inode hash tables do not
		 * fit.
		 */
		while (inodes > (uint64_t)g->groups * g->ipg) {
			if (g->ipg < SB_INODES_PER_GROUP_MAX &&
			    (uint64_t)g->groups * g->ipg * 2 < (1ULL << 32)) {
				g->ipg *= 2;
			} else if (g->inode_factor > 8) {
				g->inode_factor /= 2;
				g->ipg = SB_INODES_PER_GROUP;
				inodes = inodes_needed(&c, chunk_size,
						       g->inode_factor);
			} else {
				break;
			}
		}
		/* Room to grow after each run only with room to spare. */
		g->roomy = g->blocks >= 4 * need + meta_blocks(g);
		if (need + meta_blocks(g) > g->blocks) {
			err_report(ENOSPC, "give a larger --fs-size (about 1.5 "
				   "times the data at least), or none to let "
				   "the builder choose",
				   "--fs-size %llu MiB is too small for %llu "
				   "MiB of data",
				   (unsigned long long)(fs_size >> 20),
				   (unsigned long long)((c.blocks + 255) >> 8));
			return -1;
		}
		if (inodes > (uint64_t)g->groups * g->ipg) {
			err_report(ENOSPC, "give a larger --fs-size, or none to "
				   "let the builder choose",
				   "--fs-size %llu MiB is too small for %llu "
				   "inodes (the layout needs 8 times as many, "
				   "%llu at most per 128 MiB)",
				   (unsigned long long)(fs_size >> 20),
				   (unsigned long long)c.inodes,
				   (unsigned long long)SB_INODES_PER_GROUP_MAX);
			return -1;
		}
		return 0;
	}
	g->roomy = 1;
	for (size = CLASS_MIN_BYTES; ; size *= 4) {
		set_size(g, size / SB_BLOCK_SIZE);
		if (8 * need + meta_blocks(g) <= g->blocks &&
		    inodes <= (uint64_t)g->groups * g->ipg)
			return 0;
		if (size >= SB_FS_SIZE_MAX) {
			err_report(EFBIG, NULL, "the tree is too large to "
				   "flatten (%llu blocks)",
				   (unsigned long long)c.blocks);
			return -1;
		}
	}
}

uint64_t sb_layout_inode_chunk(const struct sb_geom *g, uint32_t ino)
{
	uint32_t grp = (ino - 1) / g->ipg;
	uint64_t byte = g->itable[grp] * SB_BLOCK_SIZE +
			(uint64_t)((ino - 1) % g->ipg) *
			SB_INODE_SIZE;

	return byte / ((uint64_t)g->chunk_blocks * SB_BLOCK_SIZE);
}

/* The first inode whose bytes start in image chunk c (or a later one). */
static uint32_t first_ino(const struct sb_geom *g, uint64_t c)
{
	uint64_t cs = (uint64_t)g->chunk_blocks * SB_BLOCK_SIZE;
	uint64_t byte = c * cs, base = g->itable[0] * SB_BLOCK_SIZE;

	/* The inode tables are one run, group after group (flex_bg). */
	if (byte <= base)
		return 1;
	return (byte - base + SB_INODE_SIZE - 1) / SB_INODE_SIZE + 1;
}

/* ------------------------------------------------------------ hashing */

/* FNV-1a over tag and path, then a 64-bit finaliser: the same anywhere. */
static uint64_t hash_path(char tag, const char *path)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const unsigned char *p = (const unsigned char *)path;

	h = (h ^ (unsigned char)tag) * 0x100000001b3ULL;
	for (; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* ---------------------------------------------------------- placement */

struct place {
	struct sb_tree *t;
	const struct sb_geom *g;
	struct sb_node **order;		/* primaries, layer then files first */
	char **paths;			/* order's paths */
	uint64_t count;
	unsigned int layer;		/* being collected */
	uint8_t *ino_used;		/* 1 + inodes entries */
	uint32_t inodes;
	uint32_t ino_lo, ino_hi;	/* the layer's region */
	uint8_t *taken;			/* a bucket's inode table */
	uint8_t *slot_used;		/* data area chunks */
	uint64_t slots;
};

static bool skip(const struct place *p, const struct sb_node *n)
{
	return n->link || n->layer != p->layer ||
	       (n->parent == p->t->root && !strcmp(n->name, "lost+found") &&
		S_ISDIR(n->mode));
}

static int add(struct place *p, struct sb_node *n)
{
	char path[4096];

	sb_node_path(n, path, sizeof(path));
	p->paths[p->count] = strdup(path);
	if (!p->paths[p->count])
		return -ENOMEM;
	p->order[p->count++] = n;
	return 0;
}

/*
 * Files first: a directory, then its other entries in name order, then
 * its subdirectories the same way.  A directory and its files are then
 * neighbours, so one edit touches one bucket.
 */
static int collect(struct place *p, struct sb_node *d)
{
	struct sb_node *k;
	int ret;

	for (k = d->kids; k; k = k->next)
		if (!S_ISDIR(k->mode) && !skip(p, k) && (ret = add(p, k)))
			return ret;
	for (k = d->kids; k; k = k->next) {
		if (!S_ISDIR(k->mode) || k->link)
			continue;
		if (!skip(p, k) && (ret = add(p, k)))
			return ret;
		ret = collect(p, k);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Where the t-th try of a placement from hash h goes, in a space of span
 * places: double hashing for the first PROBE_JUMPS tries, so that a
 * bucket that grows disturbs only a later bucket whose own try lands on
 * exactly its new places (linear probing would move every bucket behind
 * it in the same cluster), then every place in turn.
 */
#define PROBE_JUMPS	64

static uint64_t probe(uint64_t h, uint64_t t, uint64_t span)
{
	uint64_t step = (h >> 32) | 1;

	if (t < PROBE_JUMPS)
		return (h % span + t * (step % span)) % span;
	return (h + t - PROBE_JUMPS) % span;
}

/*
 * A free run of n inodes for hash h, inside one inode table chunk and
 * inside the layer's region [p->ino_lo, p->ino_hi].
 */
static int place_inodes(struct place *p, uint64_t h, uint64_t n,
			uint32_t *first)
{
	const uint64_t span = p->ino_hi - p->ino_lo + 1;
	uint64_t tries, i;
	uint32_t ino;
	int pass;

	/* Inside one chunk if it can be; anywhere if the region is tight. */
	for (pass = 0; pass < 2; pass++)
	for (tries = 0; tries < span + PROBE_JUMPS; tries++) {
		ino = p->ino_lo + probe(h, tries, span);
		if ((uint64_t)ino + n - 1 > p->ino_hi)
			continue;
		if (!pass && n <= (uint64_t)p->g->chunk_blocks * SB_BLOCK_SIZE /
			 SB_INODE_SIZE &&
		    sb_layout_inode_chunk(p->g, ino) !=
		    sb_layout_inode_chunk(p->g, ino + n - 1))
			continue;
		for (i = 0; i < n && !p->ino_used[ino + i]; i++)
			;
		if (i < n)
			continue;
		memset(p->ino_used + ino, 1, n);
		*first = ino;
		return 0;
	}
	return -EMLINK;	/* no room for inodes */
}

/* A free run of n chunks for hash h; returns its first block. */
static int place_slots(struct place *p, uint64_t h, uint64_t n,
		       uint64_t *block)
{
	uint64_t tries, s, i;

	for (tries = 0; tries < p->slots + PROBE_JUMPS; tries++) {
		s = probe(h, tries, p->slots);
		if (s + n > p->slots)
			continue;
		for (i = 0; i < n && !p->slot_used[s + i]; i++)
			;
		if (i < n)
			continue;
		/* One chunk of room to grow, where free and room is ample. */
		for (i = 0; i < n + p->g->roomy && s + i < p->slots; i++)
			p->slot_used[s + i] = 1;
		*block = p->g->data_start + s * p->g->chunk_blocks;
		return 0;
	}
	return -ENOSPC;
}

static bool is_large(const struct place *p, const struct sb_node *n)
{
	return S_ISREG(n->mode) &&
	       sb_layout_node_blocks(n) >= p->g->chunk_blocks / 2;
}

/* A bucket starts where the hash of a path says so. */
static bool starts_bucket(const struct place *p, uint64_t i)
{
	return !(hash_path('b', p->paths[i]) % BUCKET_ONE_IN);
}

/*
 * Small files' data: packed in path order in runs of one chunk, each run
 * placed by the hash of its first node.  A run is cut before a node that
 * would not fit, or, once the run is three quarters full, before a node
 * whose hash says so: a file that grows moves at most the rest of its
 * run, and a cut that moves is soon followed by one that does not, since
 * the cut points depend on the files near them.  (Measured on
 * /usr/lib/python3.11: small files' chunks 72% full; runs of two chunks
 * cut after one were 53% full and an edit changed as many chunks.)
 */
static bool cuts_run(const struct place *p, uint64_t k, uint64_t have,
		     uint64_t nb)
{
	uint64_t cb = p->g->chunk_blocks;

	if (!have)
		return false;
	if (have + nb > cb)
		return true;
	return have >= 3 * cb / 4 &&
	       !(hash_path('d', p->paths[k]) % RUN_CUT_ONE_IN);
}

static int place_run(struct place *p, uint64_t i, uint64_t j, uint64_t blocks)
{
	uint64_t cb = p->g->chunk_blocks, blk, k;
	struct sb_node *n;
	int ret;

	if (!blocks)
		return 0;
	ret = place_slots(p, hash_path('D', p->paths[i]), (blocks + cb - 1) / cb,
			  &blk);
	if (ret)
		return ret;
	for (k = i; k < j; k++) {
		n = p->order[k];
		if (!n->nblocks || is_large(p, n))
			continue;
		n->first_block = blk;
		blk += n->nblocks;
	}
	return 0;
}

/* One bucket: nodes [i, j) of the order. */
static int place_bucket(struct place *p, uint64_t i, uint64_t j)
{
	uint64_t have = 0, run = i, nb, k, slots;
	uint8_t *taken = p->taken;
	struct sb_node *n;
	uint32_t ino;
	int ret;

	/*
	 * The bucket's inodes: a table of twice its size or more (a power
	 * of two), each node at the place its path hashes to or the next
	 * free one, so that adding or removing a node leaves the others'
	 * numbers, and so their directory entries, alone.
	 */
	slots = pow2_up(2 * (j - i));
	if (slots < 4)
		slots = 4;
	ret = place_inodes(p, hash_path('I', p->paths[i]), slots, &ino);
	if (ret)
		return ret;
	memset(taken, 0, slots);
	for (k = i; k < j; k++) {
		uint64_t at = hash_path('i', p->paths[k]) % slots;

		while (taken[at])
			at = (at + 1) % slots;
		taken[at] = 1;
		n = p->order[k];
		n->ino = ino + at;
		nb = sb_layout_node_blocks(n);
		n->nblocks = nb;
		/* Large files were placed first, by sb_layout_place(). */
		if (!nb || is_large(p, n))
			continue;
		if (cuts_run(p, k, have, nb)) {
			ret = place_run(p, run, k, have);
			if (ret)
				return ret;
			run = k;
			have = 0;
		}
		have += nb;
	}
	return place_run(p, run, j, have);
}

static int link_one(struct sb_node *n, void *ctx)
{
	(void)ctx;
	if (n->link)
		n->ino = n->link->ino;
	return 0;
}

int sb_layout_place(struct sb_tree *t, const struct sb_geom *g)
{
	struct place p = { .t = t, .g = g };
	unsigned int nlayers = t->nlayers ? t->nlayers : 1;
	uint64_t i, j, from, chunk;
	int ret = -ENOMEM;

	p.inodes = g->groups * g->ipg;
	p.slots = (g->blocks - g->data_start) / g->chunk_blocks;
	p.order = calloc(t->nodes + 1, sizeof(*p.order));
	p.paths = calloc(t->nodes + 1, sizeof(*p.paths));
	p.ino_used = calloc(p.inodes + 1, 1);
	p.slot_used = calloc(p.slots + 1, 1);
	p.taken = calloc(pow2_up(2 * t->nodes + 4), 1);
	if (!p.order || !p.paths || !p.ino_used || !p.slot_used || !p.taken)
		goto out;
	t->root->ino = 2;
	/* The root's entries change with every layer: a chunk of its own. */
	t->root->nblocks = sb_layout_node_blocks(t->root);
	ret = place_slots(&p, hash_path('R', ""),
			  (t->root->nblocks + g->chunk_blocks - 1) /
			  g->chunk_blocks, &t->root->first_block);
	if (ret)
		goto out;
	chunk = sb_layout_inode_chunk(g, SB_LOST_FOUND_INO + 1);
	for (p.layer = 0; p.layer < nlayers; p.layer++) {
		from = p.count;
		ret = collect(&p, t->root);
		if (ret)
			goto out;
		if (p.count == from)
			continue;
		/* The layer's own inode table chunks, after the layers below. */
		p.ino_lo = first_ino(g, chunk);
		if (p.ino_lo <= SB_LOST_FOUND_INO)
			p.ino_lo = SB_LOST_FOUND_INO + 1;
		chunk += layer_chunks(p.count - from, g->chunk_blocks *
				      SB_BLOCK_SIZE, g->inode_factor);
		p.ino_hi = first_ino(g, chunk) - 1;
		ret = -ENOSPC;
		if (p.ino_hi > p.inodes || p.ino_hi < p.ino_lo)
			goto out;
		/*
		 * The layer's large files first, while its space is whole
		 * (each wants a contiguous run), then its buckets.
		 */
		for (i = from; i < p.count; i++) {
			struct sb_node *n = p.order[i];
			uint64_t cb = g->chunk_blocks;

			if (!is_large(&p, n))
				continue;
			ret = place_slots(&p, hash_path('F', p.paths[i]),
					  (sb_layout_node_blocks(n) + cb - 1) /
					  cb, &n->first_block);
			if (ret)
				goto out;
		}
		for (i = from; i < p.count; i = j) {
			for (j = i + 1; j < p.count && !starts_bucket(&p, j);
			     j++)
				;
			ret = place_bucket(&p, i, j);
			if (ret)
				goto out;
		}
	}
	sb_tree_walk(t, link_one, NULL);
	ret = 0;
out:
	if (ret == -ENOMEM)
		err_report(ENOMEM, NULL, "cannot lay out the image");
	else if (ret == -EMLINK)
		err_report(ENOSPC, "give a larger --fs-size, or none",
			   "cannot lay out the image: no room for its inodes");
	else if (ret)
		err_report(ENOSPC, "give a larger --fs-size, or none",
			   "cannot lay out the image: the file system is full");
	for (i = 0; p.paths && i < p.count; i++)
		free(p.paths[i]);
	free(p.paths);
	free(p.order);
	free(p.ino_used);
	free(p.slot_used);
	free(p.taken);
	return ret ? -1 : 0;
}
