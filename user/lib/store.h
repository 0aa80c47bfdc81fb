/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Directory chunk store (Documentation/format.md, "Chunk store"): the
 * chunk with address A (64 hex digits) is the file DIR/A[0:2]/A, holding
 * exactly the chunk's ciphertext.
 *
 * New chunks are written to a temporary file in the same fan-out
 * directory and renamed to their address only once their data is on
 * stable storage, so a crash never leaves a partial chunk under an
 * address.  To avoid one cache flush per chunk, durability is batched:
 * sb_store_put() writes the temporary file; every SB_STORE_BATCH bytes
 * (and in sb_store_sync()) one syncfs() makes the batch durable, then the
 * batch is renamed into place; sb_store_sync() ends with a second syncfs()
 * that makes the renames durable.
 *
 * sb_store_has() and sb_store_put() may be called from several threads;
 * sb_store_sync() and sb_store_close() only once they are done.  All
 * functions return 0 (or 1, see below) or a negative errno.
 */
#ifndef SNAPBLK_USER_STORE_H
#define SNAPBLK_USER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <linux/snapblk.h>

#define SB_STORE_BATCH		(64U << 20)
/* "ab/" + 64 hex digits + NUL */
#define SB_STORE_NAME_LEN	(3 + 2 * SNAPBLK_ADDR_LEN + 1)

struct sb_store;

/* Open the store at dir: -ENOENT or -ENOTDIR if it is not there. */
int sb_store_open(const char *dir, uint32_t chunk_size, bool writable,
		  struct sb_store **out);
/* Close; temporary files of batches not yet synced are removed. */
void sb_store_close(struct sb_store *st);

/* The chunk's path relative to the store directory. */
void sb_store_name(const uint8_t addr[SNAPBLK_ADDR_LEN],
		   char name[SB_STORE_NAME_LEN]);

/*
 * 1 if the chunk is in the store with the right size, 0 if it is not (a
 * file of the wrong size counts as absent: put() replaces it).
 */
int sb_store_has(struct sb_store *st, const uint8_t addr[SNAPBLK_ADDR_LEN]);

/* Add a chunk (see above for when it appears under its address). */
int sb_store_put(struct sb_store *st, const uint8_t addr[SNAPBLK_ADDR_LEN],
		 const void *data, size_t len);

/* Make every chunk put so far durable and visible under its address. */
int sb_store_sync(struct sb_store *st);

/* What a chunk path held, for messages. */
struct sb_store_found {
	uint64_t size;		/* its size in bytes */
	unsigned int type;	/* its file type: S_IFMT bits of st_mode */
};

/*
 * Read a chunk of exactly len bytes into buf.  The store is not trusted
 * (the kernel verifies every chunk): only a regular file beneath the
 * store directory is opened, and no symbolic link is followed, so a
 * FIFO, device node, socket or link at a chunk path can neither block
 * the read nor lead it out of the store.  -ENOENT if absent; -ELOOP if a
 * symbolic link stands where the fan-out directory should be;
 * -EMSGSIZE if it is not a regular file of len bytes (a symbolic link
 * at the chunk path included), with what it is in *found; -EAGAIN if
 * another process holds a lease on it.
 */
int sb_store_read_chunk(struct sb_store *st,
			const uint8_t addr[SNAPBLK_ADDR_LEN], void *buf,
			size_t len, struct sb_store_found *found);

/* The same, with only the size of what was found in *size. */
int sb_store_read(struct sb_store *st, const uint8_t addr[SNAPBLK_ADDR_LEN],
		  void *buf, size_t len, uint64_t *size);

/* "fifo", "directory", ... for a file type (S_IFMT bits). */
const char *sb_store_type_name(unsigned int type);

/*
 * flock() the store directory: shared for a build (create), exclusive
 * for a garbage collection that deletes, so that gc never deletes a chunk
 * a running build found present and is about to reference.  -EBUSY when
 * !wait and another holds it; released by sb_store_close().
 */
int sb_store_lock(struct sb_store *st, bool exclusive, bool wait);

/* Create the store directory and its missing parents (mode 0755). */
int sb_store_mkdir(const char *dir);

/*
 * Call fn for every entry (chunks, temporary files, anything else) of
 * every fan-out directory "00" to "ff", with the fan-out directory's
 * descriptor and name, the entry's name and its lstat.  A non-zero return
 * from fn stops the walk and is returned.  Not while others write.
 */
typedef int (*sb_store_walk_fn)(void *arg, int fanfd, const char *fan,
				const char *name, const struct stat *s);
int sb_store_walk(struct sb_store *st, sb_store_walk_fn fn, void *arg);

/*
 * Remove (with remove; else only count) the stale temporary chunk files
 * (".tmp-ADDR-PID-SEQ": sb_tmp_is_stale() in util.h) of builds that were
 * killed; *count is increased by their number.
 */
int sb_store_sweep_tmp(struct sb_store *st, bool remove, uint64_t *count);

#endif
