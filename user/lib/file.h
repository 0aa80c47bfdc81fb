/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Small file helpers shared by the tools: read a whole file, write one
 * atomically, read tenant keys and convergence secrets.  All return 0 or
 * a negative errno.
 */
#ifndef SNAPBLK_USER_SB_FILE_H
#define SNAPBLK_USER_SB_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/snapblk.h>

/* Read all of path into a new buffer (free() it); -EFBIG past max bytes. */
int sb_read_file(const char *path, size_t max, uint8_t **buf, size_t *len);

/*
 * Write buf to path atomically: a temporary file in the same directory,
 * fsync, rename (or, with excl, link: -EEXIST if path exists), fsync of
 * the directory.  A crash leaves either the old file or the new one.
 */
int sb_write_file_atomic(const char *path, const void *buf, size_t len,
			 mode_t mode, bool excl);

/*
 * Read a tenant key file: 64 hex digits and an optional newline (what
 * keygen writes) or 32 raw bytes.  -EINVAL for anything else.  Sets
 * *loose when the file is readable by group or others.
 */
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
 * sb_read_tenant_key() for a tool: on failure say why and what to do and
 * exit 1; warn when the file is readable by other users.
 */
void sb_load_tenant_key(const char *path, uint8_t key[SNAPBLK_TENANT_KEY_LEN]);

#endif
