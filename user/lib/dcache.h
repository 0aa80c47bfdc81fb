/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The host disk cache of chunk ciphertext: a bounded, crash-safe,
 * scan-resistant (2Q) cache of chunks in a directory laid out like a chunk
 * store (DIR/ab/<64 hex>), shared by every device and tenant on the host.
 * Documentation/dcache.md describes the layout, the eviction policy and
 * why it needs no fsync.
 *
 * Threading: a struct sb_dcache is used by one thread (snapblkd's event
 * loop) and has no internal lock; the caller serialises every call.
 * Across processes, sb_dcache_open() takes an exclusive flock on DIR/lock,
 * so one process at a time owns a cache directory, and nothing else may
 * write in it.
 *
 * All functions return 0 or a negative errno, never print and never exit.
 */
#ifndef SNAPBLK_USER_DCACHE_H
#define SNAPBLK_USER_DCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/snapblk.h>

struct sb_dcache;

/*
 * Counters since sb_dcache_open() (the first group) and the state now (the
 * second).  Filled by sb_dcache_get_stats(); plain values, owned by the
 * caller.
 */
struct sb_dcache_stats {
	uint64_t hits, misses;		/* sb_dcache_get() outcomes */
	uint64_t hit_bytes, insert_bytes; /* bytes read by hits, put by inserts */
	uint64_t inserts;		/* chunks written by sb_dcache_put() */
	uint64_t evictions, evicted_bytes; /* removed to stay within max_bytes */
	uint64_t drops;			/* removed by sb_dcache_drop() */
	/* Files removed by get(): wrong size, not a regular file, a symlink */
	uint64_t invalid;
	/* I/O errors returned by get() or put(), failed unlinks of evictions */
	uint64_t errors;
	uint64_t too_big;		/* put()s not cached: len > max_bytes */
	uint64_t hot_saves;		/* times DIR/hot was written */
	uint64_t bytes, chunks;		/* held now (both queues) */
	uint64_t max_bytes;		/* the bound on bytes */
	uint64_t a1in_bytes, a1in_chunks; /* 2Q: seen once (FIFO) */
	uint64_t am_bytes, am_chunks;	/* 2Q: seen again (LRU) */
	uint64_t ghosts;		/* 2Q: addresses remembered, no data */
};

/*
 * Open or create the cache in dir (mkdir -p, mode 0700), bounded by
 * max_bytes of chunk data.  Takes an exclusive lock (flock on DIR/lock):
 * -EBUSY if another process (or another open in this one) has it.
 * Removes stale temporary files left by a crash; rebuilds the index from
 * the chunk files present (a restart keeps the cache; DIR/hot, when
 * present, keeps the hot set hot), evicting down to max_bytes if it
 * shrank.  msg (may be NULL) gets a human-readable reason on failure.
 */
int sb_dcache_open(const char *dir, uint64_t max_bytes, char *msg,
		   size_t msglen, struct sb_dcache **out);

/* Save the hot list (DIR/hot), release the lock, free c.  NULL is a no-op. */
void sb_dcache_close(struct sb_dcache *c);

/*
 * Read the chunk (exactly len bytes) into buf: 0 (a hit), -ENOENT (a miss,
 * buf untouched or partly written).  A file of another size counts as a
 * miss and is removed.  Any other error (-EIO from the disk) is returned;
 * the caller then goes to the store (the entry is forgotten, so that the
 * put() after the store's answer rewrites it).
 */
int sb_dcache_get(struct sb_dcache *c, const uint8_t addr[SNAPBLK_ADDR_LEN],
		  void *buf, size_t len);

/*
 * Insert; the chunk becomes visible under its address only once whole.
 * Evicts to stay within max_bytes.  A chunk larger than max_bytes is not
 * cached (0 returned); a chunk already held with this size is left as it
 * is (0).  -EINVAL for len 0; other errors (-ENOSPC, -EIO) leave the cache
 * as it was, less what was evicted to make room.
 */
int sb_dcache_put(struct sb_dcache *c, const uint8_t addr[SNAPBLK_ADDR_LEN],
		  const void *buf, size_t len);

/* Remove a chunk (the kernel rejected it: hash mismatch).  0 or -ENOENT. */
int sb_dcache_drop(struct sb_dcache *c, const uint8_t addr[SNAPBLK_ADDR_LEN]);

void sb_dcache_get_stats(const struct sb_dcache *c,
			 struct sb_dcache_stats *st);

/* Where an address is in the 2Q policy (for status output and tests). */
enum sb_dcache_where {
	SB_DCACHE_ABSENT = 0,	/* not known */
	SB_DCACHE_A1IN,		/* held, seen once */
	SB_DCACHE_AM,		/* held, seen again: the hot set */
	SB_DCACHE_GHOST,	/* not held; a put() now goes to AM */
};

enum sb_dcache_where sb_dcache_where(const struct sb_dcache *c,
				     const uint8_t addr[SNAPBLK_ADDR_LEN]);

/*
 * For tests: with no_tmpfile, put() always writes a ".tmp.<pid>.<n>" file
 * and renames it (the path taken where O_TMPFILE is not supported); with
 * hook, put() calls hook(arg) after the data is written and before the
 * chunk is made visible (a test _exit()s there to simulate a crash).
 */
void sb_dcache_set_test(struct sb_dcache *c, bool no_tmpfile,
			void (*hook)(void *arg), void *arg);

#endif
