/* SPDX-License-Identifier: GPL-2.0 */
/*
 * snapblk private header: what the module's files share.  Included first
 * by every kmod/ source file so that pr_fmt() applies everywhere.
 */
#ifndef SNAPBLK_H
#define SNAPBLK_H

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blk-mq.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/types.h>
#include <uapi/linux/snapblk.h>

/* Module version, reported by modinfo and SNAPBLK_CMD_GET_INFO. */
#define SNAPBLK_VERSION "0.5.0"

struct snapblk_dev;

/*
 * A chunk in the shared memory cache, keyed by everything that shapes its
 * plaintext: (address, key, chunk size).  A manifest naming an address
 * with another key, or declaring another chunk size, never finds it.
 *
 * Lifetime: created FETCHING by the first reader that misses, hashed
 * until evicted (VALID) or until its fetch fails or times out; freed when
 * the last reference goes.  The hash holds one reference; a reader
 * copying out of it, and the fetch path delivering into it, hold one each.
 * Every field but the immutable addr/key/chunk_size is protected by
 * snapblk_cache_lock, except pages/nr_pages, which belong to the fetch
 * path until the chunk is VALID and are immutable after (the fetch path
 * owns them while it holds the chunk off every fetch list: between
 * claiming an answer and completing or re-queuing the chunk).  The key
 * is wiped when the chunk is freed.
 */
struct snapblk_chunk {
	struct hlist_node hnode;	/* in the cache hash, while hashed */
	struct list_head lru;		/* VALID: on the LRU list */
	struct list_head fnode;		/* FETCHING: fetch queue or claimed */
	struct list_head waiters;	/* FETCHING: struct snapblk_rq */
	struct list_head users;		/* VALID: struct snapblk_resident */
	refcount_t ref;
	bool valid;			/* data holds verified plaintext */
	bool hashed;
	u8 addr[SNAPBLK_ADDR_LEN];
	u8 key[SNAPBLK_CHUNK_KEY_LEN];
	u32 chunk_size;
	u32 nr_pages;
	struct page **pages;		/* VALID: plaintext */
	/* FETCHING only: */
	u64 id;				/* request id shown to the daemon */
	u64 deadline_ns;		/* ktime_get_ns(); fails waiters after */
	bool refetch;			/* queued again after a bad answer */
	struct snapblk_fetcher *owner;	/* NULL while queued */
	u32 dev_index;			/* first requester, for the daemon */
	u64 chunk;
};

/*
 * One (device, chunk index) that has read a VALID cached chunk: what the
 * device's resident count counts.  Lifetime: made when the device first
 * reads the chunk (hit or completed fetch), on both lists under
 * snapblk_cache_lock; freed when the chunk is evicted or the device is
 * removed, whichever comes first.
 */
struct snapblk_resident {
	struct list_head cnode;		/* on chunk->users */
	struct list_head dnode;		/* on dev->residents */
	struct snapblk_dev *dev;
	u64 index;
};

/*
 * Per-request data (tag_set.cmd_size); every request lies in one chunk.
 * @waiting says, under snapblk_cache_lock, that the request is on a
 * chunk's waiters and so still owned by the cache: whoever clears it
 * (fetch completion, device removal, the blk-mq timeout) completes it.
 */
struct snapblk_rq {
	struct list_head node;		/* on a chunk's waiters, under lock */
	struct request *rq;
	struct snapblk_dev *dev;
	u64 chunk;			/* chunk index the request reads */
	bool waiting;
	struct snapblk_resident *res;	/* preallocated, or NULL */
};

/*
 * A mapped image.  Lifetime: created by SNAPBLK_CMD_CREATE, on
 * snapblk_devs until SNAPBLK_CMD_REMOVE or module unload; freed when the
 * last reference goes.  snapblk_devs holds one, dropped after the disk is
 * deleted; an event about the device being sent outside the cache lock
 * holds another (taken under the lock while a request of the device waits
 * for a fetch, which proves it alive: removal takes its requests off under
 * that lock, then waits for them).  The table and geometry are immutable
 * after creation.
 */
struct snapblk_dev {
	struct list_head list;		/* on snapblk_devs, under its mutex */
	refcount_t ref;
	char name[SNAPBLK_NAME_LEN];
	int index;			/* N of /dev/snapblkN */
	u64 image_size;
	u32 chunk_size;
	u64 nr_chunks;
	u64 nr_zero;
	u8 image_id[SNAPBLK_IMAGE_ID_LEN];
	struct snapblk_chunk_entry *table;	/* kvmalloc'ed, nr_chunks */
	u32 fetch_timeout_ms;		/* READ_ONCE: sysfs may change it */
	/*
	 * Residency, kept as it changes so that reading it is O(1): bit i of
	 * resident_map is set, under snapblk_cache_lock, while a struct
	 * snapblk_resident for chunk i is on residents.
	 */
	unsigned long *resident_map;	/* nr_chunks bits */
	struct list_head residents;	/* under snapblk_cache_lock */
	atomic64_t resident;		/* bits set in resident_map */
	atomic_t inflight;		/* requests waiting for a fetch */
	struct blk_mq_tag_set tag_set;
	struct gendisk *disk;
	/* Under disk->open_mutex: */
	unsigned int open_count;
	bool removing;			/* opens fail, new reads get EIO */
	/* Counters (SNAPBLK_STAT_*): */
	atomic64_t hits, misses, bytes_fetched, fetch_errors, refetches;
};

/*
 * A device among a chunk's waiters, with a reference, and the chunk index
 * its request reads: what a chunk-error event names.  Events about one
 * fetch go to at most SNAPBLK_EVENT_DEVS devices (distinct ones; more
 * devices than that waiting for one chunk at once is not a case worth a
 * dynamic allocation under the cache lock).
 */
struct snapblk_dev_chunk {
	struct snapblk_dev *dev;
	u64 chunk;
};

#define SNAPBLK_EVENT_DEVS	8

/* dev.c */
extern struct mutex snapblk_devs_mutex;
extern struct list_head snapblk_devs;
struct snapblk_dev_params {
	const char *name;
	u64 image_size;
	u32 chunk_size;
	const u8 *image_id;
	struct snapblk_chunk_entry *table;	/* ownership passes on success */
	u32 fetch_timeout_ms;
};

int snapblk_dev_create(const struct snapblk_dev_params *p);
int snapblk_dev_remove(const char *name);
struct snapblk_dev *snapblk_dev_find(const char *name);	/* devs mutex held */
void snapblk_dev_put(struct snapblk_dev *dev);
/* Longest fetch_timeout_ms accepted: one hour. */
#define SNAPBLK_FETCH_TIMEOUT_MS_MAX	3600000U
int snapblk_dev_init(void);
void snapblk_dev_exit(void);

/* cache.c */
extern spinlock_t snapblk_cache_lock;
struct snapblk_chunk *snapblk_cache_get_or_fetch(struct snapblk_dev *dev,
						 u64 chunk,
						 struct snapblk_rq *cmd);
void snapblk_chunk_put(struct snapblk_chunk *c);
void snapblk_chunk_free_pages(struct snapblk_chunk *c);
void snapblk_cache_complete(struct snapblk_chunk *c, int err);
int __snapblk_cache_waiting_devs(struct snapblk_chunk *c,
				 struct snapblk_dev_chunk *out);	/* locked */
void snapblk_cache_cancel_dev(struct snapblk_dev *dev);
int snapblk_chunk_copy_to_rq(struct snapblk_chunk *c, struct snapblk_rq *cmd);
bool snapblk_cache_timeout_rq(struct snapblk_rq *cmd);
void snapblk_cache_forget_dev(struct snapblk_dev *dev);
int snapblk_cache_init(void);
void snapblk_cache_exit(void);

/* fetch.c */
void snapblk_fetch_enqueue(struct snapblk_chunk *c);	/* cache lock held */
/* Slack of the deadline scan, and of the blk-mq timeout after it. */
#define SNAPBLK_FETCH_SCAN_MS		250
#define SNAPBLK_RQ_TIMEOUT_SLACK_MS	5000
int snapblk_fetch_init(void);
void snapblk_fetch_exit(void);

/* genl.c */
int snapblk_genl_init(void);
void snapblk_genl_exit(void);
void snapblk_genl_dev_event(u8 cmd, struct snapblk_dev *dev);
void snapblk_genl_chunk_error(struct snapblk_dev *dev, u64 chunk,
			      const u8 *addr, int err, bool refetch);
void snapblk_genl_clone_event(u64 generation, u32 source, u32 reseed);

/* clone.c: the generation state (see there for the ordering) */
struct snapblk_clone_stats {
	u64 events;		/* SNAPBLK_CLONE_STAT_* */
	u64 duplicates;
	u64 reseeds;
	u64 reseed_failures;
	u32 last_source;	/* SNAPBLK_CLONE_SOURCE_* of the last clone */
};

int snapblk_clone_event(u32 source, const u8 *id, bool kernel_reseeded,
			u64 *generation);
u32 snapblk_clone_reseed(const u8 *id);		/* never sleeps */
void snapblk_clone_publish(u32 source, const u8 *id, u32 reseed,
			   u64 *generation);
void snapblk_clone_set_id(const u8 *id);
void snapblk_clone_get(u64 *generation, u8 *id,
		       struct snapblk_clone_stats *st);
u32 snapblk_clone_sources(void);
const char *snapblk_clone_source_name(u32 source);
int snapblk_clone_init(void);
void snapblk_clone_exit(void);

/* gendev.c: /dev/snapblk-gen, sysfs, uevents */
void snapblk_gendev_publish(u64 generation, u32 source, u32 reseed,
			    u64 time_ns);
int snapblk_gendev_init(void);
void snapblk_gendev_exit(void);

/* clone_vmgenid.c, clone_genpage.c: the clone sources */
bool snapblk_vmgenid_active(void);
int snapblk_vmgenid_init(void);
void snapblk_vmgenid_exit(void);
bool snapblk_genpage_active(void);
int snapblk_genpage_init(void);
void snapblk_genpage_exit(void);

#endif /* SNAPBLK_H */
