// SPDX-License-Identifier: GPL-2.0
/*
 * The chunk cache shared by every snapblk device: verified plaintext of
 * chunks, keyed by (content address, chunk key, chunk size), inserted by
 * the fetch path (fetch.c) and read by the devices (dev.c).
 *
 * Eviction is a segmented scheme made scan resistant, a CLOCK variant of
 * 2Q's segments (Documentation/cache.md): a new
 * chunk enters the probation list; a read that goes back over bytes of a
 * chunk already read (a re-reference, which the next requests of a
 * sequential scan are not) sets its reference bit, without a lock and
 * without moving it.  When room is needed the tail of probation is looked
 * at: a referenced chunk is promoted to the protected list, the others
 * are evicted.  Protected holds at most cache_protected_pct of the cache;
 * beyond that its tail is looked at: referenced chunks get another round
 * (bit cleared, to the head), the others are demoted to probation's head.
 * A one-pass scan therefore only ever evicts probation, and a hot set that
 * fits in protected survives a scan of any size.
 *
 * Hits take no lock: lookups walk the hash under RCU and take a reference
 * with refcount_inc_not_zero(); a chunk is freed after a grace period.
 *
 * Memory: bounded by cache_mb (lowering it shrinks the cache at once),
 * given back under memory pressure through a shrinker, emptied by writing
 * 1 to drop_cache.  A chunk being copied out holds a reference: evicting
 * it only unhashes it, and its pages go when the copy is done.
 */
#include "snapblk.h"
#include "cache.h"
#include "compat.h"

#include <linux/hashtable.h>
#include <linux/highmem.h>
#include <linux/jhash.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>

static unsigned int cache_mb = 256;
static unsigned int cache_protected_pct = 75;

DEFINE_SPINLOCK(snapblk_cache_lock);
/* All under snapblk_cache_lock (hash readers: RCU). */
static DEFINE_HASHTABLE(cache_hash, 12);
static LIST_HEAD(probation);		/* newest first */
static LIST_HEAD(protected);		/* most recently promoted first */
static u64 cache_bytes;			/* plaintext bytes hashed */
static u64 protected_bytes;		/* of which on protected */
static u64 cache_chunks;
/* Counters of CACHE_STATUS that only the cache sees (under the lock). */
static u64 nr_inserts, nr_evictions, nr_dropped, nr_promotions;
static struct shrinker *cache_shrinker;

static u32 chunk_hash(const u8 *addr)
{
	return jhash(addr, SNAPBLK_ADDR_LEN, 0);
}

static u64 cache_limit(void)
{
	return (u64)READ_ONCE(cache_mb) << 20;
}

struct snapblk_chunk *snapblk_cache_lookup(const u8 *addr, const u8 *key,
					   u32 chunk_size)
{
	struct snapblk_chunk *c;

	rcu_read_lock();
	hash_for_each_possible_rcu(cache_hash, c, hnode, chunk_hash(addr)) {
		if (c->chunk_size == chunk_size &&
		    !memcmp(c->addr, addr, SNAPBLK_ADDR_LEN) &&
		    !memcmp(c->key, key, SNAPBLK_CHUNK_KEY_LEN) &&
		    refcount_inc_not_zero(&c->ref)) {
			rcu_read_unlock();
			return c;
		}
	}
	rcu_read_unlock();
	return NULL;
}

void snapblk_cache_touch(struct snapblk_chunk *c, u32 off, u32 len)
{
	u32 hi = READ_ONCE(c->read_hi);

	if (off < hi) {
		if (!READ_ONCE(c->referenced))
			WRITE_ONCE(c->referenced, 1);
	} else if (off + len > hi) {
		WRITE_ONCE(c->read_hi, off + len);
	}
}

void snapblk_pages_free(struct page **pages, u32 nr_pages)
{
	u32 i;

	if (!pages)
		return;
	for (i = 0; i < nr_pages; i++)
		if (pages[i])
			__free_page(pages[i]);
	kvfree(pages);
}

struct snapblk_chunk *snapblk_chunk_new(const u8 *addr, const u8 *key,
					u32 chunk_size, struct page **pages,
					u32 nr_pages, gfp_t gfp)
{
	struct snapblk_chunk *c = kzalloc(sizeof(*c), gfp);

	if (!c)
		return NULL;
	refcount_set(&c->ref, 1);
	INIT_LIST_HEAD(&c->lru);
	INIT_LIST_HEAD(&c->users);
	memcpy(c->addr, addr, SNAPBLK_ADDR_LEN);
	memcpy(c->key, key, SNAPBLK_CHUNK_KEY_LEN);
	c->chunk_size = chunk_size;
	c->pages = pages;
	c->nr_pages = nr_pages;
	return c;
}

static void chunk_free_rcu(struct rcu_head *head)
{
	struct snapblk_chunk *c = container_of(head, struct snapblk_chunk,
					       rcu);

	snapblk_pages_free(c->pages, c->nr_pages);
	/* The struct holds the chunk key: wipe it. */
	kfree_sensitive(c);
}

void snapblk_chunk_put(struct snapblk_chunk *c)
{
	if (refcount_dec_and_test(&c->ref))
		call_rcu(&c->rcu, chunk_free_rcu);
}

/* Lock held: @r stops counting for its client. */
static void __resident_del(struct snapblk_resident *r)
{
	struct snapblk_client *cl = r->cl;

	clear_bit(r->index, cl->resident_map);
	atomic64_dec(&cl->resident);
	if (test_and_clear_bit(r->index, cl->bg_unread_map))
		snapblk_stat_inc(&cl->stats, SNAPBLK_STAT_PREFETCH_WASTED);
	list_del(&r->cnode);
	list_del(&r->dnode);
	kfree(r);
}

void __snapblk_cache_add_resident(struct snapblk_chunk *c,
				  struct snapblk_client *cl, u64 index,
				  struct snapblk_resident **res)
{
	struct snapblk_resident *r = *res;

	lockdep_assert_held(&snapblk_cache_lock);
	if (!r || !c->hashed || test_and_set_bit(index, cl->resident_map))
		return;
	*res = NULL;
	r->cl = cl;
	r->index = index;
	list_add(&r->cnode, &c->users);
	list_add(&r->dnode, &cl->residents);
	atomic64_inc(&cl->resident);
}

void snapblk_cache_add_resident(struct snapblk_chunk *c,
				struct snapblk_client *cl, u64 index,
				struct snapblk_resident **res)
{
	spin_lock(&snapblk_cache_lock);
	__snapblk_cache_add_resident(c, cl, index, res);
	spin_unlock(&snapblk_cache_lock);
}

void __snapblk_cache_insert(struct snapblk_chunk *c)
{
	lockdep_assert_held(&snapblk_cache_lock);
	refcount_inc(&c->ref);		/* the hash's */
	c->hashed = true;
	hash_add_rcu(cache_hash, &c->hnode, chunk_hash(c->addr));
	list_add(&c->lru, &probation);
	cache_bytes += c->chunk_size;
	cache_chunks++;
	nr_inserts++;
}

/*
 * Lock held: take @c out of the cache onto @victims; the caller drops
 * the hash's reference after unlocking.  Its residents, each a device
 * that counted it, count an eviction.
 */
static void __unhash(struct snapblk_chunk *c, struct list_head *victims)
{
	struct snapblk_resident *r, *tmp;

	hash_del_rcu(&c->hnode);
	c->hashed = false;
	if (c->protected)
		protected_bytes -= c->chunk_size;
	c->protected = false;
	cache_bytes -= c->chunk_size;
	cache_chunks--;
	list_for_each_entry_safe(r, tmp, &c->users, cnode) {
		snapblk_stat_inc(&r->cl->stats, SNAPBLK_STAT_EVICTIONS);
		__resident_del(r);
	}
	list_move(&c->lru, victims);
}

static void put_victims(struct list_head *victims)
{
	struct snapblk_chunk *c, *tmp;

	list_for_each_entry_safe(c, tmp, victims, lru) {
		list_del_init(&c->lru);
		snapblk_chunk_put(c);
	}
}

/*
 * Lock held: one step of eviction towards @target bytes.  Returns true
 * while there is more to do; moves at most one victim onto @victims.
 */
static bool __evict_step(u64 target, struct list_head *victims)
{
	u64 prot_max = div_u64(cache_limit() *
			       min_t(u32, READ_ONCE(cache_protected_pct), 95),
			       100);
	struct snapblk_chunk *c;

	if (cache_bytes <= target)
		return false;
	if (protected_bytes > prot_max || list_empty(&probation)) {
		if (list_empty(&protected))
			return false;
		c = list_last_entry(&protected, struct snapblk_chunk, lru);
		if (protected_bytes <= prot_max) {
			/* Probation is empty: protected pays. */
			__unhash(c, victims);
			nr_evictions++;
		} else if (READ_ONCE(c->referenced)) {
			WRITE_ONCE(c->referenced, 0);
			list_move(&c->lru, &protected);
		} else {
			c->protected = false;
			protected_bytes -= c->chunk_size;
			list_move(&c->lru, &probation);
		}
		return true;
	}
	c = list_last_entry(&probation, struct snapblk_chunk, lru);
	if (READ_ONCE(c->referenced)) {
		WRITE_ONCE(c->referenced, 0);
		c->protected = true;
		protected_bytes += c->chunk_size;
		list_move(&c->lru, &protected);
		nr_promotions++;
	} else {
		__unhash(c, victims);
		nr_evictions++;
	}
	return true;
}

/*
 * Evict down to @target bytes.  The lock is dropped every few dozen steps
 * so that it is never held for long, however large the cache.
 */
static void cache_evict(u64 target)
{
	LIST_HEAD(victims);
	bool more = true;
	int n;

	while (more) {
		spin_lock(&snapblk_cache_lock);
		for (n = 0; n < 64 && (more = __evict_step(target, &victims));
		     n++)
			;
		spin_unlock(&snapblk_cache_lock);
		put_victims(&victims);
		if (more)
			cond_resched();
	}
}

void snapblk_cache_shrink(void)
{
	if (READ_ONCE(cache_bytes) > cache_limit())
		cache_evict(cache_limit());
}

/* Drop every chunk (drop_cache, module exit). */
static void cache_drop_all(void)
{
	struct snapblk_chunk *c;
	LIST_HEAD(victims);
	int n;

	do {
		spin_lock(&snapblk_cache_lock);
		for (n = 0; n < 64; n++) {
			if (!list_empty(&probation))
				c = list_first_entry(&probation,
						     struct snapblk_chunk, lru);
			else if (!list_empty(&protected))
				c = list_first_entry(&protected,
						     struct snapblk_chunk, lru);
			else
				break;
			__unhash(c, &victims);
			nr_dropped++;
		}
		spin_unlock(&snapblk_cache_lock);
		put_victims(&victims);
		cond_resched();
	} while (n == 64);
}

/*
 * @cl is going away and no request of it is left: drop its residency
 * records.  Batched so that the cache lock is never held for long.
 */
void snapblk_cache_forget_client(struct snapblk_client *cl)
{
	struct snapblk_resident *r;
	int n;

	do {
		spin_lock(&snapblk_cache_lock);
		for (n = 0; n < 1024 && !list_empty(&cl->residents); n++) {
			r = list_first_entry(&cl->residents,
					     struct snapblk_resident, dnode);
			__resident_del(r);
		}
		spin_unlock(&snapblk_cache_lock);
		cond_resched();
	} while (n == 1024);
}

/* CACHE_STATUS figures that are module-wide device counters. */
static const struct {
	u8 cache_stat;		/* SNAPBLK_CACHE_STAT_* */
	u8 stat;		/* SNAPBLK_STAT_* */
} from_global[] = {
	{ SNAPBLK_CACHE_STAT_HITS, SNAPBLK_STAT_CACHE_HITS },
	{ SNAPBLK_CACHE_STAT_MISSES, SNAPBLK_STAT_CACHE_MISSES },
	{ SNAPBLK_CACHE_STAT_PENDING, SNAPBLK_STAT_INFLIGHT },
	{ SNAPBLK_CACHE_STAT_BYTES_FETCHED, SNAPBLK_STAT_BYTES_FETCHED },
	{ SNAPBLK_CACHE_STAT_FETCH_ERRORS, SNAPBLK_STAT_FETCH_ERRORS },
	{ SNAPBLK_CACHE_STAT_FETCH_LATENCY_US, SNAPBLK_STAT_FETCH_LATENCY_US },
	{ SNAPBLK_CACHE_STAT_FETCHES_DONE, SNAPBLK_STAT_FETCHES_DONE },
	{ SNAPBLK_CACHE_STAT_RETRIES, SNAPBLK_STAT_RETRIES },
};

void snapblk_cache_stats(u64 *out)
{
	struct snapblk_stats *g = &snapblk_global_stats;
	unsigned int i;

	spin_lock(&snapblk_cache_lock);
	out[SNAPBLK_CACHE_STAT_BYTES] = cache_bytes;
	out[SNAPBLK_CACHE_STAT_CHUNKS] = cache_chunks;
	out[SNAPBLK_CACHE_STAT_PROTECTED_BYTES] = protected_bytes;
	out[SNAPBLK_CACHE_STAT_INSERTS] = nr_inserts;
	out[SNAPBLK_CACHE_STAT_EVICTIONS] = nr_evictions;
	out[SNAPBLK_CACHE_STAT_DROPPED] = nr_dropped;
	out[SNAPBLK_CACHE_STAT_PROMOTIONS] = nr_promotions;
	spin_unlock(&snapblk_cache_lock);
	out[SNAPBLK_CACHE_STAT_LIMIT_BYTES] = cache_limit();
	for (i = 0; i < ARRAY_SIZE(from_global); i++)
		out[from_global[i].cache_stat] =
			snapblk_stat_read(g, from_global[i].stat);
	out[SNAPBLK_CACHE_STAT_BACKGROUND_FETCHES] =
		snapblk_stat_read(g, SNAPBLK_STAT_READAHEAD_FETCHES) +
		snapblk_stat_read(g, SNAPBLK_STAT_PREFETCH_FETCHES);
}

/* ---------------------------------------------------- module knobs */

static int cache_mb_set(const char *val, const struct kernel_param *kp)
{
	int ret = param_set_uint(val, kp);

	/* Lowered: shrink now, not at the next fetch. */
	if (!ret)
		snapblk_cache_shrink();
	return ret;
}

static const struct kernel_param_ops cache_mb_ops = {
	.set = cache_mb_set,
	.get = param_get_uint,
};
module_param_cb(cache_mb, &cache_mb_ops, &cache_mb, 0644);
__MODULE_PARM_TYPE(cache_mb, "uint");
MODULE_PARM_DESC(cache_mb,
		 "Memory for verified chunks shared by all devices, in MiB (default 256)");

/* Parse an unsigned value in [@min, @max]. */
static int parse_uint(const char *val, unsigned int min, unsigned int max,
		      unsigned int *out)
{
	int ret = kstrtouint(val, 0, out);

	if (ret)
		return ret;
	return *out < min || *out > max ? -EINVAL : 0;
}

static int protected_pct_set(const char *val, const struct kernel_param *kp)
{
	unsigned int pct;
	int ret = parse_uint(val, 0, 95, &pct);

	if (ret)
		return ret;
	WRITE_ONCE(cache_protected_pct, pct);
	snapblk_cache_shrink();
	return 0;
}

static const struct kernel_param_ops protected_pct_ops = {
	.set = protected_pct_set,
	.get = param_get_uint,
};
module_param_cb(cache_protected_pct, &protected_pct_ops,
		&cache_protected_pct, 0644);
__MODULE_PARM_TYPE(cache_protected_pct, "uint");
MODULE_PARM_DESC(cache_protected_pct,
		 "Share of cache_mb, in percent (0-95, default 75), that chunks read more than once may keep against scans");

static int drop_cache_set(const char *val, const struct kernel_param *kp)
{
	unsigned int v;
	int ret = parse_uint(val, 1, 1, &v);

	if (ret)
		return ret;
	cache_drop_all();
	return 0;
}

static int drop_cache_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "0\n");
}

static const struct kernel_param_ops drop_cache_ops = {
	.set = drop_cache_set,
	.get = drop_cache_get,
};
module_param_cb(drop_cache, &drop_cache_ops, NULL, 0644);
__MODULE_PARM_TYPE(drop_cache, "uint");
MODULE_PARM_DESC(drop_cache,
		 "Write 1 to drop every chunk from the memory cache (reads fetch them again)");

/* -------------------------------------------------------- shrinker */

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

	cache_evict(bytes > want ? bytes - want : 0);
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
	cache_drop_all();
	WARN_ON(!hash_empty(cache_hash));
	/* Chunks freed by call_rcu(): wait for them before the code goes. */
	rcu_barrier();
}
