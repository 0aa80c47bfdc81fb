/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Flatten a directory tree, tar layers or an OCI image into an ext4
 * image, deterministically and in the dedup-stable layout: the same
 * input gives the same bytes wherever and whenever it is built, and
 * inputs that share layers or files share most chunks
 * (Documentation/format.md, "Flattening").
 *
 * In-process, without privilege: the tree is read into memory (tree.h),
 * placed (layout.h), written with libext2fs (ext4.h), and file data is
 * streamed from the archives or files straight to its blocks.  The image
 * is an anonymous file (O_TMPFILE) unless --image-out names one, so an
 * interrupted build leaves nothing behind.  Errors are reported with
 * err_report().
 */
#ifndef SNAPBLK_USER_SB_FLATTEN_H
#define SNAPBLK_USER_SB_FLATTEN_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "layout.h"

#define SB_FLATTEN_UUID		"5a7b1c4e-0b1d-4c0d-8e4e-000000000001"
#define SB_FLATTEN_EPOCH	1000000000L	/* 2001-09-09T01:46:40Z */
#define SB_FLATTEN_MAX_LAYERS	128

struct sb_flatten_opts {
	/* The input: one of src_dir, tar, layers and oci. */
	const char *src_dir;
	const char *tar;	/* one tar layer; "-": standard input */
	const char *layers[SB_FLATTEN_MAX_LAYERS];	/* lowest first */
	unsigned int nlayers;
	const char *oci;	/* OCI image layout DIR[:REF] */

	const char *image_out;	/* keep the image here; NULL: anonymous */
	uint64_t fs_size;	/* 0: the size class */
	const char *uuid;	/* NULL: SB_FLATTEN_UUID */
	bool set_owner;		/* every inode owned by uid:gid */
	uint32_t uid, gid;
	long epoch;		/* atime, ctime, crtime and fs times */
	const char *tmpdir;	/* NULL: $TMPDIR or /var/tmp */
	uint32_t chunk_size;	/* 0: the default */
	bool verbose;		/* say what is going on, on stderr */
};

struct sb_flatten {
	int fd;			/* the image, open read-write; -1: none */
	char image[PATH_MAX];	/* a path that opens it */
	uint32_t layout;	/* SNAPBLK_LAYOUT_* for the manifest */
};

/* Default epoch: $SOURCE_DATE_EPOCH if set and valid, else the constant. */
int sb_flatten_epoch(long *epoch);

/*
 * 0, or -1 after reporting the error; call sb_flatten_cleanup() always
 * (f is set up first thing, so that is safe even on failure).
 */
int sb_flatten_run(const struct sb_flatten_opts *o, struct sb_flatten *f);
void sb_flatten_cleanup(struct sb_flatten *f);

/*
 * Async-signal-safe: remove the --image-out file this build created,
 * unless sb_flatten_keep() said the build is done.  For a SIGINT or
 * SIGTERM handler, and atexit().
 */
void sb_flatten_abort(void);
void sb_flatten_keep(void);

#endif
