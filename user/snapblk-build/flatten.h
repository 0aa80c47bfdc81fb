/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Flatten a directory tree or a tar archive into an ext4 image,
 * deterministically: the same tree gives the same bytes, wherever and
 * whenever it is built (Documentation/format.md, "Flattening").
 *
 * Uses mke2fs -d with a private mke2fs.conf, a fixed UUID and hash seed,
 * E2FSPROGS_FAKE_TIME and LC_ALL=C (mke2fs adds entries in alphasort()
 * order), then debugfs to set every inode's atime, ctime and crtime (and,
 * on request, owner) to fixed values, since mke2fs copies them from the
 * source.  Errors are reported with err_report().
 */
#ifndef SNAPBLK_USER_SB_FLATTEN_H
#define SNAPBLK_USER_SB_FLATTEN_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#define SB_FLATTEN_UUID		"5a7b1c4e-0b1d-4c0d-8e4e-000000000001"
#define SB_FLATTEN_EPOCH	1000000000L	/* 2001-09-09T01:46:40Z */

struct sb_flatten_opts {
	const char *src_dir;	/* exactly one of src_dir and tar */
	const char *tar;
	const char *image_out;	/* keep the image here; NULL: temporary */
	uint64_t fs_size;	/* 0: estimate from the tree */
	const char *uuid;	/* NULL: SB_FLATTEN_UUID */
	bool set_owner;		/* every inode owned by uid:gid */
	uint32_t uid, gid;
	long epoch;		/* atime, ctime, crtime and fs times */
	const char *tmpdir;	/* NULL: $TMPDIR or /var/tmp */
	bool verbose;		/* say what is going on, on stderr */
};

struct sb_flatten {
	char workdir[PATH_MAX / 2];	/* "" when none */
	char image[PATH_MAX];	/* the ext4 image */
	uint64_t fs_size;
};

/* Default epoch: $SOURCE_DATE_EPOCH if set and valid, else the constant. */
int sb_flatten_epoch(long *epoch);

/* 0, or -1 after reporting the error; call sb_flatten_cleanup() always. */
int sb_flatten_run(const struct sb_flatten_opts *o, struct sb_flatten *f);
void sb_flatten_cleanup(struct sb_flatten *f);

#endif
