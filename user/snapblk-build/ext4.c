// SPDX-License-Identifier: GPL-2.0
/*
 * The ext4 writer: libext2fs makes the file system's shape (superblock,
 * group descriptors, bitmaps, inode tables, journal) and this file writes
 * every inode, directory block, extent and extended attribute where
 * layout.c placed it.  File data is the caller's.
 *
 * Deterministic by construction: fixed UUID and hash seed, signed dirhash
 * set explicitly, every time field from the options or the tree, inode
 * generation 0, no backup superblocks (sparse_super2 with none: a backup
 * would repeat the changing free counts in other chunks), no resize
 * inode, directories written in name order, and fs->now set so that
 * libext2fs writes no clock time.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <et/com_err.h>
#include <ext2fs/ext2fs.h>

#include "ext4.h"
#include "hex.h"
#include "util.h"

#define EXTENT_MAX_LEN	32768U
#define INLINE_EXTENTS	4U
#define LEAF_EXTENTS	340U
#define EXTRA_ISIZE	(sizeof(struct ext2_inode_large) - \
			 EXT2_GOOD_OLD_INODE_SIZE)
#define EXT4_LINK_MAX	65000
/* Files one level of extent leaves can map. */
#define MAX_FILE_BLOCKS	((uint64_t)INLINE_EXTENTS * LEAF_EXTENTS * EXTENT_MAX_LEN)
/* Extended attributes: what fits in the inode and one block, about. */
#define XATTR_ROOM	(SB_BLOCK_SIZE - 64)
#define TIME_MIN	(-(1LL << 31))
#define TIME_MAX	((1LL << 34) - (1LL << 31) - 1)

struct writer {
	ext2_filsys fs;
	const struct sb_ext4_opts *o;
	struct sb_geom *g;
	struct sb_tree *t;
	struct sb_node *lost_found;	/* the tree's, or lf_node */
	struct sb_node lf_node;
	int err;			/* first error, as errcode_t */
	char what[512];
};

static int fail(struct writer *w, errcode_t err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct writer *w, errcode_t err, const char *fmt, ...)
{
	va_list ap;

	if (!w->err) {
		w->err = err ? err : EXT2_ET_INVALID_ARGUMENT;
		va_start(ap, fmt);
		vsnprintf(w->what, sizeof(w->what), fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* A UUID, with its four dashes or none, through the library's sb_unhex(). */
static int parse_uuid(const char *s, uint8_t out[16])
{
	char hex[33];
	size_t i, n = 0;

	for (i = 0; s[i] && n < sizeof(hex) - 1; i++) {
		if (s[i] == '-' && (n == 8 || n == 12 || n == 16 || n == 20))
			continue;
		hex[n++] = s[i];
	}
	hex[n] = '\0';
	return s[i] ? -EINVAL : sb_unhex(hex, out, 16);
}

/* ------------------------------------------------------------ shape */

static int log2_up(uint64_t n)
{
	int l = 0;

	while ((1ULL << l) < n)
		l++;
	return l;
}

static int make_shape(struct writer *w, const char *name)
{
	const struct sb_ext4_opts *o = w->o;
	struct sb_geom *g = w->g;
	struct ext2_super_block param;
	struct ext2fs_journal_params jp;
	struct ext2_inode inode;
	uint8_t uuid[16];
	blk64_t goal, blk;
	ext2_filsys fs;
	errcode_t err;
	uint32_t i;

	memset(&param, 0, sizeof(param));
	ext2fs_blocks_count_set(&param, g->blocks);
	param.s_log_block_size = 2;			/* 4 KiB */
	param.s_blocks_per_group = SB_BLOCKS_PER_GROUP;
	param.s_inodes_count = g->groups * g->ipg;
	param.s_inode_size = SB_INODE_SIZE;
	param.s_rev_level = EXT2_DYNAMIC_REV;
	param.s_log_groups_per_flex = log2_up(g->groups) > 4 ?
				      log2_up(g->groups) : 4;
	param.s_min_extra_isize = EXTRA_ISIZE;
	param.s_want_extra_isize = EXTRA_ISIZE;
	param.s_backup_bgs[0] = 0;
	param.s_backup_bgs[1] = 0;
	ext2fs_set_feature_dir_index(&param);
	ext2fs_set_feature_xattr(&param);
	ext2fs_set_feature_sparse_super2(&param);
	ext2fs_set_feature_filetype(&param);
	ext2fs_set_feature_extents(&param);
	ext2fs_set_feature_64bit(&param);
	ext2fs_set_feature_flex_bg(&param);
	ext2fs_set_feature_huge_file(&param);
	ext2fs_set_feature_dir_nlink(&param);
	ext2fs_set_feature_extra_isize(&param);
	ext2fs_set_feature_large_file(&param);
	ext2fs_set_feature_metadata_csum(&param);

	err = ext2fs_initialize(name, EXT2_FLAG_64BITS, &param,
				unix_io_manager, &fs);
	if (err)
		return fail(w, err, "cannot create the file system");
	w->fs = fs;
	fs->now = o->epoch;
	fs->super->s_mkfs_time = o->epoch;
	fs->super->s_lastcheck = o->epoch;
	fs->super->s_wtime = o->epoch;
	fs->super->s_max_mnt_count = -1;
	fs->super->s_checkinterval = 0;
	fs->super->s_kbytes_written = 0;
	fs->super->s_r_blocks_count = 0;
	fs->super->s_default_mount_opts = EXT2_DEFM_XATTR_USER | EXT2_DEFM_ACL;
	fs->super->s_flags &= ~EXT2_FLAGS_UNSIGNED_HASH;
	fs->super->s_flags |= EXT2_FLAGS_SIGNED_HASH;
	fs->super->s_def_hash_version = EXT2_HASH_HALF_MD4;
	if (parse_uuid(o->uuid, uuid))
		return fail(w, EXT2_ET_INVALID_ARGUMENT,
			    "bad file system UUID '%s'", o->uuid);
	memcpy(fs->super->s_uuid, uuid, 16);
	memcpy(fs->super->s_hash_seed, uuid, 16);
	fs->super->s_checksum_type = EXT2_CRC32C_CHKSUM;
	ext2fs_init_csum_seed(fs);

	if (fs->inode_blocks_per_group * SB_BLOCK_SIZE !=
	    g->ipg * SB_INODE_SIZE)
		return fail(w, EXT2_ET_INVALID_ARGUMENT,
			    "unexpected inode table size %u",
			    fs->inode_blocks_per_group);
	err = ext2fs_allocate_tables(fs);
	if (err)
		return fail(w, err, "cannot allocate the group tables");
	g->itable = calloc(g->groups, sizeof(*g->itable));
	if (!g->itable)
		return fail(w, EXT2_ET_NO_MEMORY, "cannot lay out");
	goal = 0;
	for (i = 0; i < g->groups; i++) {
		g->itable[i] = ext2fs_inode_table_loc(fs, i);
		blk = g->itable[i] + fs->inode_blocks_per_group;
		if (blk > goal)
			goal = blk;
		/* The tables are zero: the image file is sparse. */
		ext2fs_bg_flags_set(fs, i, EXT2_BG_INODE_ZEROED);
		ext2fs_group_desc_csum_set(fs, i);
	}

	/* Inode 1 (bad blocks) and the reserved ones, as mke2fs does. */
	ext2fs_inode_alloc_stats2(fs, EXT2_BAD_INO, +1, 0);
	err = ext2fs_update_bb_inode(fs, NULL);
	if (err)
		return fail(w, err, "cannot write the bad blocks inode");
	for (i = EXT2_ROOT_INO + 1; i < EXT2_FIRST_INODE(fs->super); i++)
		ext2fs_inode_alloc_stats2(fs, i, +1, 0);

	jp.num_journal_blocks = g->journal_blocks;
	jp.num_fc_blocks = 0;
	err = ext2fs_add_journal_inode3(fs, &jp, goal,
					EXT2_MKJOURNAL_LAZYINIT |
					EXT2_MKJOURNAL_NO_MNT_CHECK);
	if (err)
		return fail(w, err, "cannot make the journal");
	err = ext2fs_read_inode(fs, EXT2_JOURNAL_INO, &inode);
	if (!err)
		err = ext2fs_bmap2(fs, EXT2_JOURNAL_INO, &inode, NULL, 0,
				   g->journal_blocks - 1, NULL, &blk);
	if (err)
		return fail(w, err, "cannot find the journal");
	if (blk != goal + g->journal_blocks - 1)
		return fail(w, EXT2_ET_INVALID_ARGUMENT,
			    "the journal is not where it was placed");
	g->lost_found = goal + g->journal_blocks;
	g->data_start = g->lost_found + SB_LOST_FOUND_BLOCKS;
	g->data_start = (g->data_start + g->chunk_blocks - 1) /
			g->chunk_blocks * g->chunk_blocks;
	return 0;
}

/* ------------------------------------------------------- directories */

static uint8_t file_type(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return EXT2_FT_REG_FILE;
	case S_IFDIR:
		return EXT2_FT_DIR;
	case S_IFCHR:
		return EXT2_FT_CHRDEV;
	case S_IFBLK:
		return EXT2_FT_BLKDEV;
	case S_IFIFO:
		return EXT2_FT_FIFO;
	case S_IFSOCK:
		return EXT2_FT_SOCK;
	case S_IFLNK:
		return EXT2_FT_SYMLINK;
	default:
		return EXT2_FT_UNKNOWN;
	}
}

static const struct sb_node *primary(const struct sb_node *n)
{
	return n->link ? n->link : n;
}

struct dirbuf {
	uint8_t *buf;
	uint64_t blocks;	/* blocks filled */
	uint64_t max;
	struct ext2_dir_entry *last;
	uint32_t used;		/* bytes of the current block */
};

static int dir_add(ext2_filsys fs, struct dirbuf *d, const char *name,
		   uint32_t ino, uint8_t type)
{
	const uint32_t room = SB_BLOCK_SIZE - sizeof(struct ext2_dir_entry_tail);
	size_t nlen = strlen(name);
	uint32_t len = 8 + ((nlen + 3) & ~3U);
	struct ext2_dir_entry *e;

	if (nlen > 255)
		return -ENAMETOOLONG;
	if (!d->blocks || d->used + len > room) {
		if (d->blocks == d->max)
			return -EOVERFLOW;
		d->blocks++;
		d->used = 0;
		d->last = NULL;
		ext2fs_initialize_dirent_tail(fs, EXT2_DIRENT_TAIL(
			d->buf + (d->blocks - 1) * SB_BLOCK_SIZE,
			SB_BLOCK_SIZE));
	}
	e = (struct ext2_dir_entry *)(d->buf + (d->blocks - 1) * SB_BLOCK_SIZE +
				      d->used);
	e->inode = ino;
	ext2fs_dirent_set_name_len(e, nlen);
	ext2fs_dirent_set_file_type(e, type);
	memcpy(e->name, name, nlen);
	e->rec_len = room - d->used;	/* the last one takes the rest */
	if (d->last)
		d->last->rec_len = (uint8_t *)e - (uint8_t *)d->last;
	d->last = e;
	d->used += len;
	return 0;
}

static int write_dir(struct writer *w, struct sb_node *n)
{
	struct dirbuf d = { .max = n->nblocks };
	const struct sb_node *k;
	uint32_t parent = n->parent ? n->parent->ino : n->ino;
	errcode_t err;
	uint64_t i;
	int ret;

	d.buf = calloc(n->nblocks, SB_BLOCK_SIZE);
	if (!d.buf)
		return fail(w, EXT2_ET_NO_MEMORY, "cannot write a directory");
	ret = dir_add(w->fs, &d, ".", n->ino, EXT2_FT_DIR);
	if (!ret)
		ret = dir_add(w->fs, &d, "..", parent, EXT2_FT_DIR);
	for (k = n->kids; k && !ret; k = k->next)
		ret = dir_add(w->fs, &d, k->name, k->ino,
			      file_type(primary(k)->mode));
	if (!ret && d.blocks != n->nblocks && n->ino != SB_LOST_FOUND_INO)
		ret = -EOVERFLOW;
	/* lost+found keeps empty blocks, for e2fsck to fill. */
	for (i = d.blocks; i < n->nblocks && !ret; i++) {
		struct ext2_dir_entry *e;

		e = (struct ext2_dir_entry *)(d.buf + i * SB_BLOCK_SIZE);
		e->rec_len = SB_BLOCK_SIZE - sizeof(struct ext2_dir_entry_tail);
		ext2fs_initialize_dirent_tail(w->fs, EXT2_DIRENT_TAIL(
			d.buf + i * SB_BLOCK_SIZE, SB_BLOCK_SIZE));
	}
	for (i = 0; i < n->nblocks && !ret; i++) {
		err = ext2fs_write_dir_block4(w->fs, n->first_block + i,
					      d.buf + i * SB_BLOCK_SIZE, 0,
					      n->ino);
		if (err) {
			free(d.buf);
			return fail(w, err, "cannot write directory blocks");
		}
	}
	free(d.buf);
	if (ret) {
		char path[4096];

		sb_node_path(n, path, sizeof(path));
		return fail(w, EXT2_ET_DIR_CORRUPTED,
			    "cannot pack directory /%s (%s; %llu blocks "
			    "placed)", path, strerror(-ret),
			    (unsigned long long)n->nblocks);
	}
	return 0;
}

/* ----------------------------------------------------------- inodes */

/*
 * Up to max extents mapping logical blocks *lblk.. of data blocks to the
 * contiguous physical blocks *blk..; returns how many, advancing both.
 */
static unsigned int fill_extents(struct ext3_extent *ex, unsigned int max,
				 uint64_t *lblk, uint64_t *blk, uint64_t data)
{
	unsigned int e;
	uint64_t len;

	for (e = 0; e < max && *lblk < data; e++, ex++) {
		len = data - *lblk < EXTENT_MAX_LEN ? data - *lblk :
		      EXTENT_MAX_LEN;
		ex->ee_block = htole32(*lblk);
		ex->ee_len = htole16(len);
		ex->ee_start = htole32(*blk & 0xffffffff);
		ex->ee_start_hi = htole16(*blk >> 32);
		*lblk += len;
		*blk += len;
	}
	return e;
}

static void set_extents(struct writer *w, struct ext2_inode_large *in,
			const struct sb_node *n, uint64_t data, int *err)
{
	struct ext3_extent_header *eh = (struct ext3_extent_header *)in->i_block;
	uint64_t extents = (data + EXTENT_MAX_LEN - 1) / EXTENT_MAX_LEN;
	uint64_t leaves = 0, lblk = 0, blk = n->first_block, l;
	uint8_t leaf[SB_BLOCK_SIZE];
	struct ext3_extent_idx *ix;
	struct ext3_extent_header *lh;
	errcode_t ret;

	in->i_flags |= EXT4_EXTENTS_FL;
	eh->eh_magic = htole16(EXT3_EXT_MAGIC);
	eh->eh_max = htole16(INLINE_EXTENTS);
	if (extents <= INLINE_EXTENTS) {
		eh->eh_entries = htole16(fill_extents(
			(struct ext3_extent *)(eh + 1), INLINE_EXTENTS,
			&lblk, &blk, data));
		return;
	}
	/* One level of leaves, stored right after the data. */
	leaves = (extents + LEAF_EXTENTS - 1) / LEAF_EXTENTS;
	eh->eh_depth = htole16(1);
	eh->eh_entries = htole16(leaves);
	ix = (struct ext3_extent_idx *)(eh + 1);
	for (l = 0; l < leaves; l++) {
		uint64_t at = n->first_block + data + l;

		memset(leaf, 0, sizeof(leaf));
		lh = (struct ext3_extent_header *)leaf;
		lh->eh_magic = htole16(EXT3_EXT_MAGIC);
		lh->eh_max = htole16(LEAF_EXTENTS);
		ix[l].ei_block = htole32(lblk);
		ix[l].ei_leaf = htole32(at & 0xffffffff);
		ix[l].ei_leaf_hi = htole16(at >> 32);
		lh->eh_entries = htole16(fill_extents(
			(struct ext3_extent *)(lh + 1), LEAF_EXTENTS, &lblk,
			&blk, data));
		ret = ext2fs_extent_block_csum_set(w->fs, primary(n)->ino, lh);
		if (!ret)
			ret = io_channel_write_blk64(w->fs->io, at, 1, leaf);
		if (ret && !*err) {
			*err = ret;
			return;
		}
	}
}

/*
 * The *_extra field of a time: two epoch bits extending the seconds to
 * 2446 (and before 1970) the way the kernel decodes them, then the
 * nanoseconds.
 */
static uint32_t time_extra(int64_t sec, uint32_t nsec)
{
	return (uint32_t)(((sec - (int32_t)sec) >> 32) & 3) | (nsec << 2);
}

static int write_inode(struct writer *w, struct sb_node *n)
{
	const struct sb_ext4_opts *o = w->o;
	struct ext2_inode_large in;
	struct ext2_xattr_handle *h = NULL;
	uint64_t data = n->nblocks;
	uint32_t uid = o->set_owner ? o->uid : n->uid;
	uint32_t gid = o->set_owner ? o->gid : n->gid;
	size_t tlen;
	unsigned int i;
	errcode_t err;
	int xerr = 0;

	memset(&in, 0, sizeof(in));
	in.i_mode = n->mode;
	in.i_uid = uid & 0xffff;
	in.osd2.linux2.l_i_uid_high = uid >> 16;
	in.i_gid = gid & 0xffff;
	in.osd2.linux2.l_i_gid_high = gid >> 16;
	in.i_atime = (uint32_t)o->epoch;
	in.i_atime_extra = time_extra(o->epoch, 0);
	in.i_ctime = (uint32_t)o->epoch;
	in.i_ctime_extra = time_extra(o->epoch, 0);
	in.i_crtime = (uint32_t)o->epoch;
	in.i_crtime_extra = time_extra(o->epoch, 0);
	in.i_mtime = (uint32_t)n->mtime;
	in.i_mtime_extra = time_extra(n->mtime, n->mtime_nsec);
	/* dir_nlink: a directory with more links counts 1 (checked above) */
	in.i_links_count = n->nlink > EXT4_LINK_MAX ? 1 : n->nlink;
	in.i_extra_isize = EXTRA_ISIZE;

	switch (n->mode & S_IFMT) {
	case S_IFREG:
		data = (n->size + SB_BLOCK_SIZE - 1) / SB_BLOCK_SIZE;
		in.i_size = n->size & 0xffffffff;
		in.i_size_high = n->size >> 32;
		set_extents(w, &in, n, data, &xerr);
		break;
	case S_IFDIR:
		in.i_size = n->nblocks * SB_BLOCK_SIZE;
		set_extents(w, &in, n, data, &xerr);
		break;
	case S_IFLNK:
		tlen = strlen(n->symlink);
		in.i_size = tlen;
		if (!n->nblocks) {
			memcpy(in.i_block, n->symlink, tlen);
		} else {
			uint8_t blk[SB_BLOCK_SIZE] = { 0 };

			memcpy(blk, n->symlink, tlen);
			err = io_channel_write_blk64(w->fs->io, n->first_block,
						     1, blk);
			if (err)
				return fail(w, err, "cannot write a symlink");
			set_extents(w, &in, n, 1, &xerr);
		}
		break;
	case S_IFCHR:
	case S_IFBLK:
		if (n->rdev_major < 256 && n->rdev_minor < 256) {
			in.i_block[0] = n->rdev_major * 256 + n->rdev_minor;
		} else {
			in.i_block[1] = (n->rdev_minor & 0xff) |
					(n->rdev_major << 8) |
					((n->rdev_minor & ~0xffU) << 12);
		}
		break;
	default:
		break;
	}
	if (xerr)
		return fail(w, xerr, "cannot write an extent block");
	ext2fs_iblk_set(w->fs, (struct ext2_inode *)&in, n->nblocks);
	err = ext2fs_write_inode_full(w->fs, n->ino, (struct ext2_inode *)&in,
				      sizeof(in));
	if (err)
		return fail(w, err, "cannot write inode %u", n->ino);
	if (!n->nxattrs)
		return 0;
	err = ext2fs_xattrs_open(w->fs, n->ino, &h);
	if (!err)
		err = ext2fs_xattrs_read(h);
	for (i = 0; !err && i < n->nxattrs; i++)
		err = ext2fs_xattr_set(h, n->xattrs[i].name,
				       n->xattrs[i].value, n->xattrs[i].len);
	if (h) {
		errcode_t cerr = ext2fs_xattrs_close(&h);

		if (!err)
			err = cerr;
	}
	if (err)
		return fail(w, err, "cannot write the extended attributes of "
			    "inode %u", n->ino);
	return 0;
}

/* -------------------------------------------------------- validation */

/*
 * What ext4 (or this writer) cannot hold, refused with the path before
 * anything is written: these are limits of the input, not bugs.
 */
static int check_one(struct sb_node *n, void *ctx)
{
	struct writer *w = ctx;
	const struct sb_node *pn = primary(n);
	char path[4096], why[160] = "";
	uint64_t xbytes = 0;
	unsigned int i;
	size_t len;

	if (n->parent && strlen(n->name) > EXT2_NAME_LEN)
		snprintf(why, sizeof(why), "its name is %zu bytes long, "
			 "ext4 holds at most %d", strlen(n->name),
			 EXT2_NAME_LEN);
	else if (n->link)
		return 0;
	else if (S_ISLNK(n->mode) &&
		 ((len = strlen(n->symlink)) == 0 || len >= SB_BLOCK_SIZE))
		snprintf(why, sizeof(why), "a symlink target of %zu bytes "
			 "(ext4 holds 1 to %u)", len, SB_BLOCK_SIZE - 1);
	else if (!S_ISDIR(n->mode) && n->nlink > EXT4_LINK_MAX)
		snprintf(why, sizeof(why), "%u hard links (ext4 holds at most "
			 "%d for a file)", n->nlink, EXT4_LINK_MAX);
	else if ((S_ISCHR(n->mode) || S_ISBLK(n->mode)) &&
		 (n->rdev_major > 0xfff || n->rdev_minor > 0xfffff))
		snprintf(why, sizeof(why), "device number %u:%u (ext4 holds "
			 "majors to 4095, minors to 1048575)", n->rdev_major,
			 n->rdev_minor);
	else if (S_ISREG(n->mode) &&
		 (n->size + SB_BLOCK_SIZE - 1) / SB_BLOCK_SIZE > MAX_FILE_BLOCKS)
		snprintf(why, sizeof(why), "%llu bytes (this builder writes "
			 "files up to %llu GiB)", (unsigned long long)n->size,
			 (unsigned long long)(MAX_FILE_BLOCKS >> 18));
	else if (pn->mtime < TIME_MIN || pn->mtime > TIME_MAX)
		snprintf(why, sizeof(why), "mtime %lld is outside ext4's "
			 "1901 to 2446", (long long)pn->mtime);
	if (!why[0]) {
		for (i = 0; i < n->nxattrs; i++)
			xbytes += 16 + ((strlen(n->xattrs[i].name) + 3) & ~3UL) +
				  ((n->xattrs[i].len + 3) & ~3UL);
		if (xbytes > XATTR_ROOM)
			snprintf(why, sizeof(why), "%llu bytes of extended "
				 "attributes (ext4 holds about %u here)",
				 (unsigned long long)xbytes, XATTR_ROOM);
	}
	if (!why[0])
		return 0;
	sb_node_path(n, path, sizeof(path));
	err_report(0, "change or leave out that entry in the input",
		   "cannot flatten /%s: %s", path, why);
	w->err = EXT2_ET_INVALID_ARGUMENT;
	return -1;
}

/* ------------------------------------------------------------- nodes */

static int alloc_one(struct sb_node *n, void *ctx)
{
	struct writer *w = ctx;

	if (n->link)
		return 0;
	ext2fs_inode_alloc_stats2(w->fs, n->ino, +1, S_ISDIR(n->mode));
	if (n->nblocks)
		ext2fs_block_alloc_stats_range(w->fs, n->first_block,
					       n->nblocks, +1);
	return 0;
}

static int write_one(struct sb_node *n, void *ctx)
{
	struct writer *w = ctx;

	if (n->link)
		return 0;
	if (S_ISDIR(n->mode) && write_dir(w, n))
		return -1;
	return write_inode(w, n);
}

/*
 * lost+found: inode 11 and its fixed blocks, the tree's or one made up
 * here and linked into the root (in name order) until the end of
 * sb_ext4_write(), so that the root's blocks count it.
 */
static int set_lost_found(struct writer *w)
{
	struct sb_node *root = w->t->root, *k, *lf = NULL, **pp;

	for (k = root->kids; k; k = k->next) {
		if (strcmp(k->name, "lost+found"))
			continue;
		if (!S_ISDIR(primary(k)->mode) || k->link) {
			err_report(0, "rename or leave out /lost+found in the "
				   "input", "cannot flatten: /lost+found is "
				   "not a directory (ext4 needs one there)");
			w->err = EXT2_ET_INVALID_ARGUMENT;
			return -1;
		}
		lf = k;
	}
	if (!lf) {
		lf = &w->lf_node;
		memset(lf, 0, sizeof(*lf));
		lf->name = "lost+found";
		lf->parent = root;
		lf->mode = S_IFDIR | 0700;
		lf->mtime = w->o->epoch;
		lf->nlink = 2;
		for (pp = &root->kids; *pp && strcmp((*pp)->name, lf->name) < 0;
		     pp = &(*pp)->next)
			;
		lf->next = *pp;
		*pp = lf;
		root->nlink++;
	}
	lf->ino = SB_LOST_FOUND_INO;
	lf->first_block = w->g->lost_found;
	lf->nblocks = SB_LOST_FOUND_BLOCKS;
	w->lost_found = lf;
	if (sb_layout_node_blocks(lf) > SB_LOST_FOUND_BLOCKS) {
		err_report(0, "move the entries out of /lost+found in the "
			   "input", "cannot flatten: /lost+found holds more "
			   "entries than its %u blocks", SB_LOST_FOUND_BLOCKS);
		w->err = EXT2_ET_INVALID_ARGUMENT;
		return -1;
	}
	return 0;
}

static void unlink_lost_found(struct writer *w)
{
	struct sb_node *root = w->t->root, **pp;

	if (w->lost_found != &w->lf_node)
		return;
	for (pp = &root->kids; *pp && *pp != w->lost_found; pp = &(*pp)->next)
		;
	if (*pp) {
		*pp = w->lost_found->next;
		root->nlink--;
	}
	w->lost_found = NULL;
}

int sb_ext4_write(struct sb_tree *t, const struct sb_ext4_opts *o, int fd,
		  struct sb_geom *g)
{
	struct writer w = { .o = o, .g = g, .t = t };
	char name[64];
	errcode_t err;

	initialize_ext2_error_table();
	if (sb_tree_walk(t, check_one, &w))
		return -1;
	if (sb_layout_geometry(t, o->chunk_size, o->fs_size, g))
		return -1;
	if (ftruncate(fd, 0) < 0 ||
	    ftruncate(fd, g->blocks * SB_BLOCK_SIZE) < 0) {
		err_report(errno, "check the free space where the image goes",
			   "cannot size the image file");
		return -1;
	}
	snprintf(name, sizeof(name), "/proc/self/fd/%d", fd);
	if (make_shape(&w, name))
		goto fail;
	/* lost+found must be in the tree before placement skips it. */
	if (set_lost_found(&w))
		goto out_fs;
	if (sb_layout_place(t, g))
		goto out_fs;
	if (sb_tree_walk(t, alloc_one, &w) || sb_tree_walk(t, write_one, &w))
		goto fail;
	unlink_lost_found(&w);
	err = ext2fs_close_free(&w.fs);
	if (err) {
		fail(&w, err, "cannot write the file system");
		goto fail;
	}
	return 0;
fail:
	/* libext2fs passes system errors on as errno values. */
	err_report(0, w.err > 0 && w.err < 4096 ?
		   "check the free space and permissions where the image "
		   "goes (--image-out or --tmpdir)" :
		   "this is a bug in snapblk-build if the input is valid; "
		   "please report it with the input",
		   "cannot flatten: %s: %s", w.what, error_message(w.err));
out_fs:
	unlink_lost_found(&w);
	if (w.fs)
		ext2fs_free(w.fs);
	free(g->itable);
	g->itable = NULL;
	return -1;
}
