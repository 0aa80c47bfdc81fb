/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The chunk cache (cache.c): a content store of verified plaintext shared
 * by every device, keyed by the chunk's full identity (address, key,
 * chunk size).  It knows nothing of fetching: the fetch path (fetch.c)
 * inserts what it verified.  It also keeps, for each client (a device),
 * which of its chunks are resident, so that the device's resident count
 * is O(1) to read and falls as chunks are evicted.
 */
#ifndef SNAPBLK_CACHE_H
#define SNAPBLK_CACHE_H

#include <linux/list.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <uapi/linux/snapblk.h>

#include "stats.h"

struct snapblk_client;

/*
 * What the cache and the fetch path know of a device.  Embedded in
 * struct snapblk_dev, which owns it: it lives as long as the device.
 * @ops lets the fetch path hold the device (get/put) and tell it that one
 * of the fetches it started ended (so background work may go on).
 */
struct snapblk_client_ops {
	void (*get)(struct snapblk_client *cl);
	void (*put)(struct snapblk_client *cl);		/* may sleep */
	void (*fetch_done)(struct snapblk_client *cl);	/* may sleep */
};

struct snapblk_client {
	const struct snapblk_client_ops *ops;
	u32 index;			/* N of /dev/snapblkN: logs, daemon */
	u32 chunk_size;			/* immutable */
	u64 nr_chunks;
	struct snapblk_stats stats;
	/*
	 * Residency: bit i of resident_map is set, under snapblk_cache_lock,
	 * while a struct snapblk_resident for chunk i is on residents.
	 * bg_unread_map bit i: chunk i came in by a background fetch of this
	 * client and no read of it has used it yet (set and cleared with
	 * atomic bit operations; prefetch_used and _wasted count them).
	 */
	unsigned long *resident_map;
	unsigned long *bg_unread_map;
	struct list_head residents;	/* under snapblk_cache_lock */
	atomic64_t resident;		/* bits set in resident_map */
	/* Fetches this client started (demand and background) in flight. */
	atomic_t fetching;
	/* Requests of this client waiting for a fetch. */
	atomic_t waiting;
	/* Background fetches of the prefetch list in flight. */
	atomic_t prefetching;
};

/*
 * A chunk in the cache.  Lifetime: made by the fetch path from a verified
 * answer and inserted (the hash then holds one reference); a lookup
 * returns it with another reference, which the reader drops after
 * copying; unhashed when evicted or dropped, freed (after an RCU grace
 * period: lookups run under rcu_read_lock() alone) when the last
 * reference goes.  Everything but the list state is immutable once it is
 * inserted.  The key is wiped when it is freed.
 */
struct snapblk_chunk {
	struct hlist_node hnode;	/* cache hash: RCU, writers under lock */
	struct list_head lru;		/* probation or protected, under lock */
	struct list_head users;		/* struct snapblk_resident, under lock */
	struct rcu_head rcu;
	refcount_t ref;
	bool hashed;			/* under snapblk_cache_lock */
	bool protected;			/* under snapblk_cache_lock */
	/*
	 * Set without a lock by a read that goes back over bytes of this
	 * chunk already read (a re-reference, not the next part of a scan);
	 * read and cleared by eviction under the lock.  read_hi: highest
	 * byte offset read so far + 1, updated the same way (a heuristic:
	 * a lost update only delays a promotion).
	 */
	u8 referenced;
	u32 read_hi;
	u8 addr[SNAPBLK_ADDR_LEN];
	u8 key[SNAPBLK_CHUNK_KEY_LEN];
	u32 chunk_size;
	u32 nr_pages;
	struct page **pages;		/* plaintext */
};

/*
 * One (client, chunk index) resident in the cache.  Made when the client
 * first reads the chunk (or its background fetch of it completes), on
 * both lists under snapblk_cache_lock; freed when the chunk is evicted
 * or the client goes, whichever comes first.
 */
struct snapblk_resident {
	struct list_head cnode;		/* on chunk->users */
	struct list_head dnode;		/* on client->residents */
	struct snapblk_client *cl;
	u64 index;
};

/*
 * snapblk_cache_lock protects the hash's writers, the probation and
 * protected lists, the byte counts and every residency list.  Lookups
 * take it only to record a first residency.  Process context only.
 * Lock order: snapblk_fetch_lock, then snapblk_cache_lock.
 */
extern spinlock_t snapblk_cache_lock;

/* A cache hit: @c with a reference, or NULL.  Takes no lock. */
struct snapblk_chunk *snapblk_cache_lookup(const u8 *addr, const u8 *key,
					   u32 chunk_size);
/* A read of [@off, @off + @len) of @c: feeds the eviction policy. */
void snapblk_cache_touch(struct snapblk_chunk *c, u32 off, u32 len);
/*
 * Make chunk @index of @cl resident in @c, with the record *@res (which
 * the cache then owns, and sets to NULL) unless it already is or @c is no
 * longer in the cache.  Lock held (_locked) or taken.
 */
void __snapblk_cache_add_resident(struct snapblk_chunk *c,
				  struct snapblk_client *cl, u64 index,
				  struct snapblk_resident **res);
void snapblk_cache_add_resident(struct snapblk_chunk *c,
				struct snapblk_client *cl, u64 index,
				struct snapblk_resident **res);
/*
 * A new chunk for verified plaintext of (@addr, @key, @chunk_size), with
 * @pages, which it then owns; one reference, not yet in the cache.
 */
struct snapblk_chunk *snapblk_chunk_new(const u8 *addr, const u8 *key,
					u32 chunk_size, struct page **pages,
					u32 nr_pages, gfp_t gfp);
/* Lock held: insert @c (the hash takes a reference). */
void __snapblk_cache_insert(struct snapblk_chunk *c);
void snapblk_chunk_put(struct snapblk_chunk *c);
void snapblk_pages_free(struct page **pages, u32 nr_pages);
/* Evict down to the cache_mb limit; after inserting, outside the lock. */
void snapblk_cache_shrink(void);
/* @cl is going away: drop its residency records. */
void snapblk_cache_forget_client(struct snapblk_client *cl);
/* The numbers of SNAPBLK_CMD_CACHE_STATUS, by SNAPBLK_CACHE_STAT_*. */
void snapblk_cache_stats(u64 *out);
int snapblk_cache_init(void);
void snapblk_cache_exit(void);

#endif /* SNAPBLK_CACHE_H */
