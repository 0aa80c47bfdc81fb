/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Small file helpers shared by the tools: read a whole file, write one
 * atomically, read tenant keys and convergence secrets.  All return 0 or
 * a negative errno.
 */
#ifndef SNAPBLK_USER_SB_FILE_H
#define SNAPBLK_USER_SB_FILE_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <linux/snapblk.h>

/* Read all of path into a new buffer (free() it); -EFBIG past max bytes. */
int sb_read_file(const char *path, size_t max, uint8_t **buf, size_t *len);
/* The same, and the st_mode of the file read into *mode (when not NULL). */
int sb_read_file_mode(const char *path, size_t max, uint8_t **buf,
		      size_t *len, mode_t *mode);

/*
 * Write buf to path atomically: a temporary file in the same directory,
 * fsync, rename (or, with excl, link: -EEXIST if path exists), fsync of
 * the directory.  A crash leaves either the old file or the new one.
 */
int sb_write_file_atomic(const char *path, const void *buf, size_t len,
			 mode_t mode, bool excl);

/* Flags for reading tenant keys. */
#define SB_KEY_RAW	1	/* the file is exactly 32 raw bytes */

/*
 * Parse a tenant key file's contents: 64 hex digits (either case), then
 * optionally white space (spaces, tabs, "\n", "\r\n": what editors and
 * other systems add); with SB_KEY_RAW instead exactly 32 bytes, taken as
 * they are.  -EBADMSG for 32 bytes that are not hex without SB_KEY_RAW
 * (a raw key given without the flag), -EINVAL for anything else.
 */
int sb_parse_tenant_key(const uint8_t *buf, size_t len, unsigned int flags,
			uint8_t key[SNAPBLK_TENANT_KEY_LEN]);

/*
 * Read a tenant key file (see sb_parse_tenant_key(); files over 4096
 * bytes are -EINVAL).  Sets *loose when the file read is readable by
 * group or others (mode & 077).
 */
int sb_read_tenant_key_opt(const char *path, unsigned int flags,
			   uint8_t key[SNAPBLK_TENANT_KEY_LEN], bool *loose);
/* The same, hex only. */
int sb_read_tenant_key(const char *path,
		       uint8_t key[SNAPBLK_TENANT_KEY_LEN], bool *loose);


/* Format a key as keygen writes it: 64 hex digits and a newline. */
void sb_format_tenant_key(const uint8_t key[SNAPBLK_TENANT_KEY_LEN],
			  char out[2 * SNAPBLK_TENANT_KEY_LEN + 2]);

/* fsync the directory that holds path. */
int sb_fsync_dir_of(const char *path);

/* Write all of buf, retrying short writes and EINTR; 0 or -errno. */
int sb_write_all(int fd, const void *buf, size_t len);

/*
 * sb_read_tenant_key_opt() for a tool: on failure say why and what to do
 * and exit 1.  A key file readable by group or others is refused (exit 1,
 * the hint says "chmod 600 FILE"): every tool that reads key files goes
 * through here, so the rule is the same everywhere.
 */
void sb_load_tenant_key_opt(const char *path, unsigned int flags,
			    uint8_t key[SNAPBLK_TENANT_KEY_LEN]);
/* The same, hex only. */
void sb_load_tenant_key(const char *path, uint8_t key[SNAPBLK_TENANT_KEY_LEN]);

/*
 * mkdir -p: create path and its missing parents with mode (less the
 * umask); 0 when it is a directory at the end, -ENOTDIR if a component is
 * something else, or another -errno.
 */
int sb_mkdir_p(const char *path, mode_t mode);

/*
 * Remove (with remove; else only count) the stale temporary files of
 * these tools (sb_tmp_is_stale() in util.h) in directory dirfd whose
 * names begin with prefix and hold ".tmp-"; *count is increased by their
 * number.  0, or the last -errno (the others are still swept).
 */
int sb_sweep_tmp(int dirfd, const char *prefix, bool remove,
		 uint64_t *count);
/* opendir() of name in dirfd (openat() flags added); NULL with errno. */
DIR *sb_opendirat(int dirfd, const char *name, int flags);

/* The same for one entry name of dirfd that has the lstat st. */
int sb_sweep_tmp_entry(int dirfd, const char *name, const struct stat *st,
		       bool remove, uint64_t *count);

#endif
