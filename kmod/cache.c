// SPDX-License-Identifier: GPL-2.0
/*
 * The chunk cache shared by every snapblk device: verified plaintext of
 * chunks, keyed by (content address, chunk key).  A chunk that is missing
 * is created FETCHING with the reader's request as its first waiter and
 * queued for the fetch daemon; later readers of the same chunk join the
 * waiters, so each missing chunk is fetched once.  When the fetch path has
 * verified and decrypted a chunk (fetch.c), snapblk_cache_complete() makes
 * it VALID and completes the waiting requests, or fails them.  An answer
 * that fails verification the first time leaves the waiters as they are:
 * fetch.c queues the chunk once more and tells their devices
 * (__snapblk_cache_waiting_devs()).
 *
 * Memory: VALID chunks are bounded by the cache_mb parameter, evicted
 * least recently used first, and given up under memory pressure through a
 * shrinker.  A chunk being copied out holds a reference and is not evicted.
 */
#include "snapblk.h"
#include "compat.h"

#include <linux/hashtable.h>
#include <linux/highmem.h>
#include <linux/jhash.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/slab.h>

static unsigned int cache_mb = 256;
module_param(cache_mb, uint, 0644);
MODULE_PARM_DESC(cache_mb,
		 "Memory for verified chunks shared by all devices, in MiB (default 256)");

/*
 * snapblk_cache_lock protects the hash, the LRU list, the byte count, and
 * the state, waiters and fetch-list membership of every chunk.  Taken
 * from process context only (queue_rq runs with BLK_MQ_F_BLOCKING).
 */
DEFINE_SPINLOCK(snapblk_cache_lock);
static DEFINE_HASHTABLE(cache_hash, 12);
static LIST_HEAD(cache_lru);		/* VALID chunks, most recent first */
static u64 cache_bytes;			/* plaintext bytes of VALID chunks */
static struct shrinker *cache_shrinker;

static u32 chunk_hash(const u8 *addr)
{
	return jhash(addr, SNAPBLK_ADDR_LEN, 0);
}

/*
 * Lock held.  The chunk size is part of the identity: the same (address,
 * key) declared with another size by another manifest is another chunk
 * (its fetch then fails verification), never a view of this one.
 */
static struct snapblk_chunk *__lookup(const u8 *addr, const u8 *key,
				      u32 chunk_size)
{
	struct snapblk_chunk *c;

	hash_for_each_possible(cache_hash, c, hnode, chunk_hash(addr))
		if (c->chunk_size == chunk_size &&
		    !memcmp(c->addr, addr, SNAPBLK_ADDR_LEN) &&
		    !memcmp(c->key, key, SNAPBLK_CHUNK_KEY_LEN))
			return c;
	return NULL;
}

/* Free the pages of @c (a failed or retried delivery, or the end). */
void snapblk_chunk_free_pages(struct snapblk_chunk *c)
{
	u32 i;

	if (!c->pages)
		return;
	for (i = 0; i < c->nr_pages; i++)
		if (c->pages[i])
			__free_page(c->pages[i]);
	kvfree(c->pages);
	c->pages = NULL;
	c->nr_pages = 0;
}

static void chunk_free(struct snapblk_chunk *c)
{
	snapblk_chunk_free_pages(c);
	/* The struct holds the chunk key: wipe it. */
	kfree_sensitive(c);
}

void snapblk_chunk_put(struct snapblk_chunk *c)
{
	if (refcount_dec_and_test(&c->ref))
		chunk_free(c);
}

/* Lock held: @r stops counting for its device. */
static void __resident_del(struct snapblk_resident *r)
{
	clear_bit(r->index, r->dev->resident_map);
	atomic64_dec(&r->dev->resident);
	list_del(&r->cnode);
	list_del(&r->dnode);
	kfree(r);
}

/*
 * Lock held, @c VALID: @cmd's device has read @c; count it once, with the
 * record @cmd brought (which it then no longer owns).
 */
static void __resident_add(struct snapblk_chunk *c, struct snapblk_rq *cmd)
{
	struct snapblk_dev *dev = cmd->dev;
	struct snapblk_resident *r = cmd->res;

	if (!r || test_and_set_bit(cmd->chunk, dev->resident_map))
		return;
	cmd->res = NULL;
	r->dev = dev;
	r->index = cmd->chunk;
	list_add(&r->cnode, &c->users);
	list_add(&r->dnode, &dev->residents);
	atomic64_inc(&dev->resident);
}

/* Lock held; the caller drops the hash's reference after unlocking. */
static void __unhash(struct snapblk_chunk *c)
{
	struct snapblk_resident *r, *tmp;

	hash_del(&c->hnode);
	c->hashed = false;
	if (c->valid) {
		list_del_init(&c->lru);
		cache_bytes -= c->chunk_size;
		list_for_each_entry_safe(r, tmp, &c->users, cnode)
			__resident_del(r);
	}
}

/*
 * @dev is going away and no request of it is left: drop its residency
 * records.  Batched so that the cache lock is never held for long.
 */
void snapblk_cache_forget_dev(struct snapblk_dev *dev)
{
	struct snapblk_resident *r;
	int n;

	do {
		spin_lock(&snapblk_cache_lock);
		for (n = 0; n < 1024 && !list_empty(&dev->residents); n++) {
			r = list_first_entry(&dev->residents,
					     struct snapblk_resident, dnode);
			__resident_del(r);
		}
		spin_unlock(&snapblk_cache_lock);
		cond_resched();
	} while (n == 1024);
}

/*
 * Evict unused VALID chunks, least recently used first, until the cache
 * holds at most @target bytes or @max chunks were evicted.  Returns the
 * number evicted.
 */
static unsigned long cache_evict(u64 target, unsigned long max)
{
	struct snapblk_chunk *c, *tmp;
	unsigned long n = 0;
	LIST_HEAD(victims);

	spin_lock(&snapblk_cache_lock);
	list_for_each_entry_safe_reverse(c, tmp, &cache_lru, lru) {
		if (cache_bytes <= target || n >= max)
			break;
		if (refcount_read(&c->ref) > 1)
			continue;	/* being copied out */
		__unhash(c);
		list_add(&c->lru, &victims);
		n++;
	}
	spin_unlock(&snapblk_cache_lock);
	list_for_each_entry_safe(c, tmp, &victims, lru)
		snapblk_chunk_put(c);
	return n;
}

static u64 cache_limit(void)
{
	return (u64)READ_ONCE(cache_mb) << 20;
}

/*
 * Find chunk @chunk of @dev.  Returns it with a reference when it is
 * VALID (the caller copies and puts it); NULL when @cmd now waits for it
 * (its request completes from snapblk_cache_complete()); an ERR_PTR when
 * out of memory.
 */
struct snapblk_chunk *snapblk_cache_get_or_fetch(struct snapblk_dev *dev,
						 u64 chunk,
						 struct snapblk_rq *cmd)
{
	const struct snapblk_chunk_entry *e = &dev->table[chunk];
	struct snapblk_chunk *c, *new;

	new = kzalloc(sizeof(*new), GFP_NOIO);
	if (!new)
		return ERR_PTR(-ENOMEM);

	spin_lock(&snapblk_cache_lock);
	c = __lookup(e->addr, e->key, dev->chunk_size);
	if (c && c->valid) {
		refcount_inc(&c->ref);
		list_move(&c->lru, &cache_lru);
		__resident_add(c, cmd);
		spin_unlock(&snapblk_cache_lock);
		kfree(new);
		atomic64_inc(&dev->hits);
		return c;
	}
	atomic64_inc(&dev->misses);
	cmd->waiting = true;
	atomic_inc(&dev->inflight);
	if (c) {
		/* Being fetched for someone else: wait with them. */
		list_add_tail(&cmd->node, &c->waiters);
		spin_unlock(&snapblk_cache_lock);
		kfree(new);
		return NULL;
	}
	c = new;
	refcount_set(&c->ref, 1);	/* the hash's */
	INIT_LIST_HEAD(&c->lru);
	INIT_LIST_HEAD(&c->fnode);
	INIT_LIST_HEAD(&c->waiters);
	INIT_LIST_HEAD(&c->users);
	memcpy(c->addr, e->addr, SNAPBLK_ADDR_LEN);
	memcpy(c->key, e->key, SNAPBLK_CHUNK_KEY_LEN);
	c->chunk_size = dev->chunk_size;
	c->dev_index = dev->index;
	c->chunk = chunk;
	c->deadline_ns = ktime_get_ns() +
		(u64)READ_ONCE(dev->fetch_timeout_ms) * NSEC_PER_MSEC;
	c->hashed = true;
	hash_add(cache_hash, &c->hnode, chunk_hash(c->addr));
	list_add_tail(&cmd->node, &c->waiters);
	snapblk_fetch_enqueue(c);
	spin_unlock(&snapblk_cache_lock);
	return NULL;
}

/*
 * Copy the part of chunk @c that @cmd's request reads into its pages.
 * The request lies in one chunk of its device (chunk_sectors), and @c has
 * that device's chunk size (the cache key): still, never read past the
 * pages @c owns.  0, or -EIO when the request does not fit.
 */
int snapblk_chunk_copy_to_rq(struct snapblk_chunk *c, struct snapblk_rq *cmd)
{
	struct request *rq = cmd->rq;
	u64 pos = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;
	u64 start = cmd->chunk * cmd->dev->chunk_size;
	struct req_iterator iter;
	struct bio_vec bv;
	u32 off;

	if (WARN_ON_ONCE(c->chunk_size != cmd->dev->chunk_size ||
			 pos < start || pos - start > c->chunk_size ||
			 blk_rq_bytes(rq) > c->chunk_size - (pos - start) ||
			 (u64)c->nr_pages << PAGE_SHIFT < c->chunk_size))
		return -EIO;
	off = pos - start;
	rq_for_each_segment(bv, rq, iter) {
		u32 done = 0;

		while (done < bv.bv_len) {
			u32 poff = (off + done) & ~PAGE_MASK;
			u32 len = min_t(u32, bv.bv_len - done, PAGE_SIZE - poff);
			struct page *src = c->pages[(off + done) >> PAGE_SHIFT];

			memcpy_page(bv.bv_page, bv.bv_offset + done, src, poff,
				    len);
			done += len;
		}
		off += bv.bv_len;
	}
	return 0;
}

/* End @cmd's request; frees the residency record it did not use. */
static void end_cmd(struct snapblk_rq *cmd, blk_status_t sts)
{
	kfree(cmd->res);
	cmd->res = NULL;
	blk_mq_end_request(cmd->rq, sts);
}

/*
 * Lock held: take every request off @c's waiters, or only those of
 * @dev when it is not NULL, onto @out; they are the caller's to end.
 */
static void __take_waiters(struct snapblk_chunk *c, struct snapblk_dev *dev,
			   struct list_head *out)
{
	struct snapblk_rq *cmd, *tmp;

	list_for_each_entry_safe(cmd, tmp, &c->waiters, node) {
		if (dev && cmd->dev != dev)
			continue;
		list_move_tail(&cmd->node, out);
		cmd->waiting = false;
		atomic_dec(&cmd->dev->inflight);
	}
}

/*
 * Count the fetch of @c once for each device among @waiters (several
 * requests of one device, or several devices sharing the chunk, may wait)
 * and, on failure, raise one chunk-error event per device.
 */
static void account_fetch(struct snapblk_chunk *c, struct list_head *waiters,
			  int err)
{
	struct snapblk_dev *seen[8];
	struct snapblk_rq *cmd;
	int n = 0, i;

	list_for_each_entry(cmd, waiters, node) {
		for (i = 0; i < n && seen[i] != cmd->dev; i++)
			;
		if (i < n)
			continue;
		if (n < ARRAY_SIZE(seen))
			seen[n++] = cmd->dev;
		if (err) {
			atomic64_inc(&cmd->dev->fetch_errors);
			snapblk_genl_chunk_error(cmd->dev, cmd->chunk, c->addr,
						 -err, false);
		} else {
			atomic64_add(c->chunk_size, &cmd->dev->bytes_fetched);
		}
	}
}

/*
 * Lock held, @c FETCHING and off the fetch lists (the caller holds it to
 * queue it again): the distinct devices among @c's waiters, at most
 * SNAPBLK_EVENT_DEVS, into @out, each with the chunk index its request
 * reads and a reference the caller drops with snapblk_dev_put() after
 * sending their events.  O(waiters), bounded by the devices' queue depths.
 * Returns how many.
 */
int __snapblk_cache_waiting_devs(struct snapblk_chunk *c,
				 struct snapblk_dev_chunk *out)
{
	struct snapblk_rq *cmd;
	int n = 0, i;

	lockdep_assert_held(&snapblk_cache_lock);
	list_for_each_entry(cmd, &c->waiters, node) {
		for (i = 0; i < n && out[i].dev != cmd->dev; i++)
			;
		if (i < n)
			continue;
		/* Its request waits here: removal has not freed it. */
		refcount_inc(&cmd->dev->ref);
		out[n].dev = cmd->dev;
		out[n].chunk = cmd->chunk;
		if (++n == SNAPBLK_EVENT_DEVS)
			break;
	}
	return n;
}

/*
 * The fetch of @c ended: @err is 0 when its pages hold verified plaintext.
 * Completes every waiting request and, on error, forgets the chunk so that
 * a later read fetches it again.  The caller holds a reference to @c and
 * has taken it off the fetch lists.
 */
void snapblk_cache_complete(struct snapblk_chunk *c, int err)
{
	struct snapblk_rq *cmd, *tmp;
	bool drop_hash_ref = false;
	LIST_HEAD(waiters);

	spin_lock(&snapblk_cache_lock);
	__take_waiters(c, NULL, &waiters);
	if (!err && c->hashed) {
		c->valid = true;
		list_add(&c->lru, &cache_lru);
		cache_bytes += c->chunk_size;
		list_for_each_entry(cmd, &waiters, node)
			__resident_add(c, cmd);
	} else if (c->hashed) {
		__unhash(c);
		drop_hash_ref = true;
	}
	spin_unlock(&snapblk_cache_lock);

	account_fetch(c, &waiters, err);
	list_for_each_entry_safe(cmd, tmp, &waiters, node) {
		blk_status_t sts = BLK_STS_IOERR;

		list_del_init(&cmd->node);
		if (!err && !snapblk_chunk_copy_to_rq(c, cmd))
			sts = BLK_STS_OK;
		end_cmd(cmd, sts);
	}
	if (drop_hash_ref)
		snapblk_chunk_put(c);
	if (!err)
		cache_evict(cache_limit(), ULONG_MAX);
}

/*
 * Fail with EIO every request of @dev that waits for a fetch (the device is
 * going away).  The fetches themselves go on for other devices' readers.
 * O(cache) under the lock: only REMOVE and module unload (root) get here.
 */
void snapblk_cache_cancel_dev(struct snapblk_dev *dev)
{
	struct snapblk_rq *cmd, *tmp;
	struct snapblk_chunk *c;
	LIST_HEAD(cancelled);
	int bkt;

	spin_lock(&snapblk_cache_lock);
	hash_for_each(cache_hash, bkt, c, hnode)
		__take_waiters(c, dev, &cancelled);
	spin_unlock(&snapblk_cache_lock);

	list_for_each_entry_safe(cmd, tmp, &cancelled, node) {
		list_del_init(&cmd->node);
		end_cmd(cmd, BLK_STS_IOERR);
	}
}

/*
 * The blk-mq timeout of @cmd's request fired: if the request still waits
 * for a fetch, take it off its chunk and fail it (true); if someone else
 * is completing it, leave it to them (false).
 */
bool snapblk_cache_timeout_rq(struct snapblk_rq *cmd)
{
	bool mine;

	spin_lock(&snapblk_cache_lock);
	mine = cmd->waiting;
	if (mine) {
		list_del_init(&cmd->node);
		cmd->waiting = false;
		atomic_dec(&cmd->dev->inflight);
	}
	spin_unlock(&snapblk_cache_lock);
	if (mine)
		end_cmd(cmd, BLK_STS_IOERR);
	return mine;
}

static unsigned long cache_count(struct shrinker *s,
				 struct shrink_control *sc)
{
	return READ_ONCE(cache_bytes) >> PAGE_SHIFT;
}

static unsigned long cache_scan(struct shrinker *s, struct shrink_control *sc)
{
	u64 bytes = READ_ONCE(cache_bytes);
	u64 want = (u64)sc->nr_to_scan << PAGE_SHIFT;
	u64 before = bytes;

	cache_evict(bytes > want ? bytes - want : 0, ULONG_MAX);
	bytes = READ_ONCE(cache_bytes);
	return before > bytes ? (before - bytes) >> PAGE_SHIFT : SHRINK_STOP;
}

int __init snapblk_cache_init(void)
{
	cache_shrinker = snapblk_shrinker_alloc("snapblk-cache", cache_count,
						cache_scan);
	return cache_shrinker ? 0 : -ENOMEM;
}

/* Every device is gone and the fetch device closed: drop everything. */
void snapblk_cache_exit(void)
{
	snapblk_shrinker_free(cache_shrinker);
	cache_evict(0, ULONG_MAX);
	WARN_ON(!hash_empty(cache_hash));
}
