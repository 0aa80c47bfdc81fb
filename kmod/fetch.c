// SPDX-License-Identifier: GPL-2.0
/*
 * The fetch path.  A chunk missing from the cache gets one pending fetch
 * (the pending table, keyed like the cache), which every read of it waits
 * on; so each missing chunk is fetched once.  Fetches wait on two queues
 * until a daemon reads them through /dev/snapblk-fetch: demand fetches
 * (a read waits) are always handed out before background ones
 * (readahead, prefetch and hydration, SNAPBLK_FETCH_F_BACKGROUND), and a
 * read that needs a queued background fetch moves it to the demand queue.
 * A request read by a daemon belongs to that open file (its "claimed"
 * list) until it is answered.  When the file is closed, whatever it still
 * claims goes back to the head of its queue, so a daemon that dies or
 * restarts loses no request; so do requests whose read() faulted and
 * answers the kernel could not take for want of memory.  A fetch not
 * delivered by its deadline (the device's fetch_timeout_ms, fixed when the
 * chunk is first missed, in CLOCK_MONOTONIC nanoseconds, and shown to the
 * daemon in every request record) fails its readers within
 * SNAPBLK_FETCH_SCAN_MS after it, however many other chunks are missed
 * meanwhile.
 *
 * Every delivered chunk is checked before anything else sees it: its
 * length, then SHA-256 of the ciphertext against the manifest's address;
 * only then is it decrypted (AES-256-CTR, zero IV, the chunk's key) and
 * inserted into the cache (cache.c), and its readers completed.  The first
 * bad answer for a fetch puts it back at the head of its queue under a new
 * id, flagged SNAPBLK_FETCH_F_REFETCH (the daemon's cached copy may be
 * what is bad), with its deadline and waiters unchanged; a second one
 * fails exactly the reads waiting for it.
 */
#include "snapblk.h"
#include "fetch.h"
#include "events.h"

#include <crypto/hash.h>
#include <crypto/skcipher.h>
#include <linux/hashtable.h>
#include <linux/highmem.h>
#include <linux/jhash.h>
#include <linux/ktime.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/scatterlist.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
#include <linux/workqueue.h>

/* The record layouts are ABI (include/uapi/linux/snapblk.h). */
static_assert(sizeof(struct snapblk_fetch_req) == 72);
static_assert(offsetof(struct snapblk_fetch_req, len) == 0);
static_assert(offsetof(struct snapblk_fetch_req, chunk_size) == 4);
static_assert(offsetof(struct snapblk_fetch_req, id) == 8);
static_assert(offsetof(struct snapblk_fetch_req, addr) == 16);
static_assert(offsetof(struct snapblk_fetch_req, dev_index) == 48);
static_assert(offsetof(struct snapblk_fetch_req, flags) == 52);
static_assert(offsetof(struct snapblk_fetch_req, chunk) == 56);
static_assert(offsetof(struct snapblk_fetch_req, deadline_ns) == 64);
static_assert(sizeof(struct snapblk_fetch_resp) == 24);
static_assert(offsetof(struct snapblk_fetch_resp, tier) ==
	      SNAPBLK_FETCH_RESP_LEN_V3);

/* Why a fetch was started: the counters it goes to. */
enum fetch_kind { FETCH_DEMAND, FETCH_READAHEAD, FETCH_PREFETCH };

/*
 * A pending fetch.  Lifetime: created by the first reader that misses
 * (or by a background request), hashed in the pending table until it
 * completes, fails or times out; freed when the last reference goes (the
 * table holds one; the daemon's answer and the deadline scan, each while
 * they handle it, another).  Everything is under snapblk_fetch_lock but
 * the immutable identity and pages/nr_pages, which belong to the answer
 * being handled while the fetch is off every list (between claiming an
 * answer and completing or re-queuing the fetch).
 */
struct snapblk_fetch {
	struct hlist_node hnode;	/* pending table, while hashed */
	struct list_head fnode;		/* a queue, or a fetcher's claimed */
	struct list_head waiters;	/* struct snapblk_rq */
	refcount_t ref;
	bool hashed;
	bool background;		/* queued without a waiting read */
	bool refetch;			/* queued again after a bad answer */
	enum fetch_kind kind;
	u8 addr[SNAPBLK_ADDR_LEN];
	u8 key[SNAPBLK_CHUNK_KEY_LEN];
	u32 chunk_size;
	u32 nr_pages;
	struct page **pages;
	u64 id;				/* request id shown to the daemon */
	u64 start_ns;			/* ktime_get_ns() at the miss */
	u64 deadline_ns;		/* ktime_get_ns(); fails waiters after */
	struct snapblk_fetcher *owner;	/* NULL while queued */
	/* The client that started it; NULL once that client went. */
	struct snapblk_client *origin;
	u32 dev_index;			/* for the daemon and logs */
	u64 chunk;			/* index in the origin's image */
};

/* An open /dev/snapblk-fetch; lives from open to release. */
struct snapblk_fetcher {
	struct list_head node;		/* on fetchers, under the lock */
	struct list_head claimed;	/* fetches read, not yet answered */
};

/*
 * snapblk_fetch_lock protects the pending table, both queues, the
 * fetchers and their claimed lists, every fetch's waiters and state, and
 * snapblk_rq.waiting.  Process context only.  Nests snapblk_cache_lock.
 */
static DEFINE_SPINLOCK(snapblk_fetch_lock);
static DEFINE_HASHTABLE(pending, 10);
static LIST_HEAD(demand_queue);		/* not yet read by a daemon */
static LIST_HEAD(bg_queue);
static LIST_HEAD(fetchers);
static u64 fetch_next_id = 1;
static DECLARE_WAIT_QUEUE_HEAD(fetch_wq);

static void fetch_timeout_fn(struct work_struct *work);
static DECLARE_DELAYED_WORK(fetch_timeout_work, fetch_timeout_fn);

static struct crypto_shash *sha256_tfm;	/* unkeyed: shared by all */

static void fetch_put(struct snapblk_fetch *f)
{
	if (refcount_dec_and_test(&f->ref)) {
		snapblk_pages_free(f->pages, f->nr_pages);
		kfree_sensitive(f);	/* holds the chunk key */
	}
}

/* Lock held. */
static struct snapblk_fetch *__lookup(const u8 *addr, const u8 *key,
				      u32 chunk_size)
{
	struct snapblk_fetch *f;

	hash_for_each_possible(pending, f, hnode,
			       jhash(addr, SNAPBLK_ADDR_LEN, 0))
		if (f->chunk_size == chunk_size &&
		    !memcmp(f->addr, addr, SNAPBLK_ADDR_LEN) &&
		    !memcmp(f->key, key, SNAPBLK_CHUNK_KEY_LEN))
			return f;
	return NULL;
}

/*
 * Run the deadline scan within SNAPBLK_FETCH_SCAN_MS.  A scan already
 * pending stays as it is: pushing it back on every new miss (what
 * mod_delayed_work() would do) let a steady stream of misses postpone
 * every deadline.
 */
static void arm_scan(void)
{
	queue_delayed_work(system_wq, &fetch_timeout_work,
			   msecs_to_jiffies(SNAPBLK_FETCH_SCAN_MS));
}

static struct list_head *queue_of(struct snapblk_fetch *f)
{
	return f->background ? &bg_queue : &demand_queue;
}

/* Lock held: hash and queue new fetch @f for @cl's chunk @chunk. */
static void __start(struct snapblk_fetch *f, struct snapblk_client *cl,
		    const struct snapblk_chunk_entry *e, u64 chunk,
		    enum fetch_kind kind, u32 timeout_ms)
{
	refcount_set(&f->ref, 1);	/* the table's */
	INIT_LIST_HEAD(&f->waiters);
	memcpy(f->addr, e->addr, SNAPBLK_ADDR_LEN);
	memcpy(f->key, e->key, SNAPBLK_CHUNK_KEY_LEN);
	f->chunk_size = cl->chunk_size;
	f->kind = kind;
	f->background = kind != FETCH_DEMAND;
	f->origin = cl;
	f->dev_index = cl->index;
	f->chunk = chunk;
	f->start_ns = ktime_get_ns();
	f->deadline_ns = f->start_ns + (u64)timeout_ms * NSEC_PER_MSEC;
	f->hashed = true;
	hash_add(pending, &f->hnode, jhash(f->addr, SNAPBLK_ADDR_LEN, 0));
	f->id = fetch_next_id++;
	list_add_tail(&f->fnode, queue_of(f));
	atomic_inc(&cl->fetching);
	snapblk_stat_inc(&snapblk_global_stats, SNAPBLK_STAT_INFLIGHT);
	wake_up_interruptible(&fetch_wq);
	arm_scan();
}

/* Tell the eviction policy which bytes of @c @cmd's request reads. */
static void touch_for(struct snapblk_chunk *c, struct snapblk_rq *cmd)
{
	u64 pos = (u64)blk_rq_pos(cmd->rq) << SECTOR_SHIFT;

	snapblk_cache_touch(c, pos - cmd->chunk * cmd->cl->chunk_size,
			    blk_rq_bytes(cmd->rq));
}

/* A hit on @c for @cmd: counters, residency, the eviction policy. */
static struct snapblk_chunk *hit(struct snapblk_chunk *c,
				 struct snapblk_rq *cmd)
{
	struct snapblk_client *cl = cmd->cl;

	snapblk_stat_inc(&cl->stats, SNAPBLK_STAT_CACHE_HITS);
	snapblk_stat_inc(&snapblk_global_stats, SNAPBLK_STAT_CACHE_HITS);
	if (test_bit(cmd->chunk, cl->bg_unread_map) &&
	    test_and_clear_bit(cmd->chunk, cl->bg_unread_map))
		snapblk_stat_inc(&cl->stats, SNAPBLK_STAT_PREFETCH_USED);
	touch_for(c, cmd);
	if (cmd->res && !test_bit(cmd->chunk, cl->resident_map))
		snapblk_cache_add_resident(c, cl, cmd->chunk, &cmd->res);
	return c;
}

struct snapblk_chunk *snapblk_fetch_get(struct snapblk_client *cl,
					const struct snapblk_chunk_entry *e,
					u64 chunk, struct snapblk_rq *cmd,
					u32 timeout_ms)
{
	struct snapblk_fetch *f, *new;
	struct snapblk_chunk *c;

	c = snapblk_cache_lookup(e->addr, e->key, cl->chunk_size);
	if (c)
		return hit(c, cmd);

	new = kzalloc(sizeof(*new), GFP_NOIO);
	spin_lock(&snapblk_fetch_lock);
	f = __lookup(e->addr, e->key, cl->chunk_size);
	if (!f) {
		/*
		 * A fetch inserts its chunk into the cache before it leaves
		 * the table, both under this lock: look again.
		 */
		c = snapblk_cache_lookup(e->addr, e->key, cl->chunk_size);
		if (c) {
			spin_unlock(&snapblk_fetch_lock);
			kfree(new);
			return hit(c, cmd);
		}
		if (!new) {
			spin_unlock(&snapblk_fetch_lock);
			return ERR_PTR(-ENOMEM);
		}
		f = new;
		new = NULL;
		__start(f, cl, e, chunk, FETCH_DEMAND, timeout_ms);
		snapblk_stat_inc(&cl->stats, SNAPBLK_STAT_DEMAND_FETCHES);
	} else if (f->background) {
		/* A read needs it now: it is a demand fetch from here on. */
		if (!f->owner)
			list_move_tail(&f->fnode, &demand_queue);
		f->background = false;
		snapblk_stat_inc(&cl->stats, SNAPBLK_STAT_PREFETCH_JOINED);
	}
	cmd->waiting = true;
	atomic_inc(&cl->waiting);
	list_add_tail(&cmd->node, &f->waiters);
	spin_unlock(&snapblk_fetch_lock);
	kfree(new);
	snapblk_stat_inc(&cl->stats, SNAPBLK_STAT_CACHE_MISSES);
	snapblk_stat_inc(&snapblk_global_stats, SNAPBLK_STAT_CACHE_MISSES);
	return NULL;
}

int snapblk_fetch_background(struct snapblk_client *cl,
			     const struct snapblk_chunk_entry *e, u64 chunk,
			     bool readahead, u32 timeout_ms)
{
	struct snapblk_resident *res = NULL;
	struct snapblk_fetch *f;
	struct snapblk_chunk *c;

	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	spin_lock(&snapblk_fetch_lock);
	if (__lookup(e->addr, e->key, cl->chunk_size)) {
		spin_unlock(&snapblk_fetch_lock);
		kfree(f);
		return -EEXIST;
	}
	c = snapblk_cache_lookup(e->addr, e->key, cl->chunk_size);
	if (c) {
		/* In memory for another device: resident for this one too. */
		spin_unlock(&snapblk_fetch_lock);
		kfree(f);
		res = kmalloc(sizeof(*res), GFP_KERNEL);
		snapblk_cache_add_resident(c, cl, chunk, &res);
		kfree(res);
		snapblk_chunk_put(c);
		return -EEXIST;
	}
	__start(f, cl, e, chunk, readahead ? FETCH_READAHEAD : FETCH_PREFETCH,
		timeout_ms);
	if (!readahead)
		atomic_inc(&cl->prefetching);
	spin_unlock(&snapblk_fetch_lock);
	snapblk_stat_inc(&cl->stats, readahead ? SNAPBLK_STAT_READAHEAD_FETCHES :
			 SNAPBLK_STAT_PREFETCH_FETCHES);
	snapblk_stat_inc(&snapblk_global_stats,
			 readahead ? SNAPBLK_STAT_READAHEAD_FETCHES :
			 SNAPBLK_STAT_PREFETCH_FETCHES);
	return 0;
}

int snapblk_chunk_copy_to_rq(struct snapblk_chunk *c, struct snapblk_rq *cmd)
{
	struct request *rq = cmd->rq;
	u64 pos = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;
	u64 start = cmd->chunk * cmd->cl->chunk_size;
	struct req_iterator iter;
	struct bio_vec bv;
	u32 off;

	/*
	 * The request lies in one chunk of its device (chunk_sectors), and
	 * @c has that device's chunk size (the cache key): still, never read
	 * past the pages @c owns.
	 */
	if (WARN_ON_ONCE(c->chunk_size != cmd->cl->chunk_size ||
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

void snapblk_rq_end(struct snapblk_rq *cmd, blk_status_t sts)
{
	kfree(cmd->res);
	cmd->res = NULL;
	blk_mq_end_request(cmd->rq, sts);
}

/*
 * Lock held: take every request off @f's waiters, or only those of @cl
 * when it is not NULL, onto @out; they are the caller's to end.
 */
static void __take_waiters(struct snapblk_fetch *f, struct snapblk_client *cl,
			   struct list_head *out)
{
	struct snapblk_rq *cmd, *tmp;

	list_for_each_entry_safe(cmd, tmp, &f->waiters, node) {
		if (cl && cmd->cl != cl)
			continue;
		list_move_tail(&cmd->node, out);
		cmd->waiting = false;
		atomic_dec(&cmd->cl->waiting);
	}
}

/*
 * Events about one fetch go to at most SNAPBLK_EVENT_DEVS distinct devices
 * (more devices than that waiting for one chunk at once is not a case
 * worth a dynamic allocation under the lock).
 */
#define SNAPBLK_EVENT_DEVS	8

/*
 * The distinct clients among @waiters and @origin, at most
 * SNAPBLK_EVENT_DEVS, into @out with the chunk index each reads (one
 * fetch is counted once per device, however many of its requests wait).
 */
struct client_chunk {
	struct snapblk_client *cl;
	u64 chunk;
};

static int distinct_clients(struct list_head *waiters,
			    struct snapblk_client *origin, u64 origin_chunk,
			    struct client_chunk *out)
{
	struct snapblk_rq *cmd;
	int n = 0, i;

	if (origin) {
		out[0].cl = origin;
		out[0].chunk = origin_chunk;
		n = 1;
	}
	list_for_each_entry(cmd, waiters, node) {
		for (i = 0; i < n && out[i].cl != cmd->cl; i++)
			;
		if (i < n)
			continue;
		out[n].cl = cmd->cl;
		out[n].chunk = cmd->chunk;
		if (++n == SNAPBLK_EVENT_DEVS)
			break;
	}
	return n;
}

/*
 * The fetch @f ended: @err is 0 when its pages hold verified plaintext.
 * Inserts the chunk into the cache, completes every waiting request, or
 * fails them; the fetch leaves the table either way, so a later read
 * fetches a failed chunk again.  The caller holds a reference to @f and
 * has taken it off every list.
 */
static void fetch_complete(struct snapblk_fetch *f, int err, u32 tier,
			   u32 retries)
{
	struct client_chunk seen[SNAPBLK_EVENT_DEVS];
	struct snapblk_resident *bg_res = NULL;
	struct snapblk_client *origin;
	struct snapblk_chunk *c = NULL;
	u64 latency = ktime_get_ns() - f->start_ns;
	struct snapblk_rq *cmd, *tmp;
	bool drop_table_ref = false;
	bool origin_waits = false;
	LIST_HEAD(waiters);
	int n, i;

	if (!err) {
		c = snapblk_chunk_new(f->addr, f->key, f->chunk_size, f->pages,
				      f->nr_pages, GFP_KERNEL);
		if (c) {
			f->pages = NULL;
			f->nr_pages = 0;
			bg_res = kmalloc(sizeof(*bg_res), GFP_KERNEL);
		} else {
			err = -ENOMEM;
		}
	}

	spin_lock(&snapblk_fetch_lock);
	__take_waiters(f, NULL, &waiters);
	if (f->hashed) {
		hash_del(&f->hnode);
		f->hashed = false;
		drop_table_ref = true;
	}
	origin = f->origin;
	f->origin = NULL;
	if (origin)
		origin->ops->get(origin);
	list_for_each_entry(cmd, &waiters, node) {
		origin_waits |= cmd->cl == origin;
		if (c)
			touch_for(c, cmd);
	}
	if (c) {
		spin_lock(&snapblk_cache_lock);
		__snapblk_cache_insert(c);
		list_for_each_entry(cmd, &waiters, node)
			__snapblk_cache_add_resident(c, cmd->cl, cmd->chunk,
						     &cmd->res);
		if (origin && f->kind != FETCH_DEMAND) {
			__snapblk_cache_add_resident(c, origin, f->chunk,
						     &bg_res);
			/* Brought in ahead of any read of it. */
			if (!bg_res && !origin_waits)
				set_bit(f->chunk, origin->bg_unread_map);
		}
		spin_unlock(&snapblk_cache_lock);
	}
	spin_unlock(&snapblk_fetch_lock);
	snapblk_stat_add(&snapblk_global_stats, SNAPBLK_STAT_INFLIGHT, -1);

	n = distinct_clients(&waiters, origin, f->chunk, seen);
	if (err)
		snapblk_stat_inc(&snapblk_global_stats,
				 SNAPBLK_STAT_FETCH_ERRORS);
	else
		snapblk_stats_fetch_done(NULL, latency, tier, retries,
					 f->chunk_size);
	for (i = 0; i < n; i++) {
		if (!err) {
			snapblk_stats_fetch_done(&seen[i].cl->stats, latency,
						 tier, retries, f->chunk_size);
			continue;
		}
		snapblk_stat_inc(&seen[i].cl->stats, SNAPBLK_STAT_FETCH_ERRORS);
		/* A background fetch that failed fails no read: no event. */
		if (seen[i].cl != origin || origin_waits)
			snapblk_event_chunk_error(seen[i].cl, seen[i].chunk,
						  f->addr, -err, false);
	}
	list_for_each_entry_safe(cmd, tmp, &waiters, node) {
		blk_status_t sts = BLK_STS_IOERR;

		list_del_init(&cmd->node);
		if (c && !snapblk_chunk_copy_to_rq(c, cmd))
			sts = BLK_STS_OK;
		snapblk_rq_end(cmd, sts);
	}
	if (origin) {
		atomic_dec(&origin->fetching);
		if (f->kind == FETCH_PREFETCH)
			atomic_dec(&origin->prefetching);
		origin->ops->fetch_done(origin);
		origin->ops->put(origin);
	}
	kfree(bg_res);
	if (c) {
		snapblk_chunk_put(c);
		snapblk_cache_shrink();
	}
	if (drop_table_ref)
		fetch_put(f);
}

void snapblk_fetch_cancel_client(struct snapblk_client *cl)
{
	struct snapblk_rq *cmd, *tmp;
	struct snapblk_fetch *f;
	LIST_HEAD(cancelled);
	int bkt;

	/* O(pending) under the lock: only REMOVE and unload get here. */
	spin_lock(&snapblk_fetch_lock);
	hash_for_each(pending, bkt, f, hnode) {
		__take_waiters(f, cl, &cancelled);
		if (f->origin == cl) {
			f->origin = NULL;
			atomic_dec(&cl->fetching);
			if (f->kind == FETCH_PREFETCH)
				atomic_dec(&cl->prefetching);
		}
	}
	spin_unlock(&snapblk_fetch_lock);

	list_for_each_entry_safe(cmd, tmp, &cancelled, node) {
		list_del_init(&cmd->node);
		snapblk_rq_end(cmd, BLK_STS_IOERR);
	}
}

bool snapblk_fetch_timeout_rq(struct snapblk_rq *cmd)
{
	bool mine;

	spin_lock(&snapblk_fetch_lock);
	mine = cmd->waiting;
	if (mine) {
		list_del_init(&cmd->node);
		cmd->waiting = false;
		atomic_dec(&cmd->cl->waiting);
	}
	spin_unlock(&snapblk_fetch_lock);
	if (mine)
		snapblk_rq_end(cmd, BLK_STS_IOERR);
	return mine;
}

/*
 * Put fetches back at the head of their queues, in order, for any daemon
 * to read again.  Lock held.
 */
static void __requeue(struct list_head *list)
{
	struct snapblk_fetch *f, *tmp;

	list_for_each_entry_safe_reverse(f, tmp, list, fnode) {
		f->owner = NULL;
		list_move(&f->fnode, queue_of(f));
	}
	wake_up_interruptible(&fetch_wq);
}

/* Collect the fetches on @list whose deadline passed; lock held. */
static void collect_expired(struct list_head *list, u64 now,
			    struct list_head *out)
{
	struct snapblk_fetch *f, *tmp;

	list_for_each_entry_safe(f, tmp, list, fnode) {
		if (now < f->deadline_ns)
			continue;
		refcount_inc(&f->ref);
		list_move_tail(&f->fnode, out);
	}
}

static void fetch_timeout_fn(struct work_struct *work)
{
	struct snapblk_fetcher *fr;
	struct snapblk_fetch *f, *tmp;
	LIST_HEAD(expired);
	u64 now;
	bool more;

	spin_lock(&snapblk_fetch_lock);
	now = ktime_get_ns();
	collect_expired(&demand_queue, now, &expired);
	collect_expired(&bg_queue, now, &expired);
	list_for_each_entry(fr, &fetchers, node)
		collect_expired(&fr->claimed, now, &expired);
	more = !list_empty(&demand_queue) || !list_empty(&bg_queue);
	list_for_each_entry(fr, &fetchers, node)
		more = more || !list_empty(&fr->claimed);
	spin_unlock(&snapblk_fetch_lock);

	list_for_each_entry_safe(f, tmp, &expired, fnode) {
		list_del_init(&f->fnode);
		pr_warn_ratelimited("snapblk%u: chunk %llu: no answer from the fetch daemon in time\n",
				    f->dev_index, f->chunk);
		fetch_complete(f, -ETIMEDOUT, 0, 0);
		fetch_put(f);
	}
	if (more)
		arm_scan();
}

static int fetch_open(struct inode *inode, struct file *file)
{
	struct snapblk_fetcher *fr = kzalloc(sizeof(*fr), GFP_KERNEL);

	if (!fr)
		return -ENOMEM;
	INIT_LIST_HEAD(&fr->claimed);
	spin_lock(&snapblk_fetch_lock);
	list_add(&fr->node, &fetchers);
	spin_unlock(&snapblk_fetch_lock);
	file->private_data = fr;
	return 0;
}

static int fetch_release(struct inode *inode, struct file *file)
{
	struct snapblk_fetcher *fr = file->private_data;

	spin_lock(&snapblk_fetch_lock);
	/* Unanswered requests go back first in line, in order. */
	__requeue(&fr->claimed);
	list_del(&fr->node);
	spin_unlock(&snapblk_fetch_lock);
	kfree(fr);
	return 0;
}

static bool queues_empty(void)
{
	return list_empty(&demand_queue) && list_empty(&bg_queue);
}

/* Lock held: the next fetch to hand out, demand first. */
static struct snapblk_fetch *__next_queued(void)
{
	if (!list_empty(&demand_queue))
		return list_first_entry(&demand_queue, struct snapblk_fetch,
					fnode);
	if (!list_empty(&bg_queue))
		return list_first_entry(&bg_queue, struct snapblk_fetch,
					fnode);
	return NULL;
}

static ssize_t fetch_read(struct file *file, char __user *buf, size_t len,
			  loff_t *ppos)
{
	struct snapblk_fetcher *fr = file->private_data;
	size_t max = len / sizeof(struct snapblk_fetch_req), n = 0;
	struct snapblk_fetch_req *reqs;
	struct snapblk_fetch *f;
	LIST_HEAD(taken);
	ssize_t ret;

	if (!max)
		return -EINVAL;
	max = min_t(size_t, max, 64);
	reqs = kcalloc(max, sizeof(*reqs), GFP_KERNEL);
	if (!reqs)
		return -ENOMEM;

	spin_lock(&snapblk_fetch_lock);
	while (queues_empty()) {
		spin_unlock(&snapblk_fetch_lock);
		ret = -EAGAIN;
		if (file->f_flags & O_NONBLOCK)
			goto out;
		ret = wait_event_interruptible(fetch_wq, !queues_empty());
		if (ret)
			goto out;
		spin_lock(&snapblk_fetch_lock);
	}
	while (n < max && (f = __next_queued())) {
		struct snapblk_fetch_req *r = &reqs[n++];

		r->len = sizeof(*r);
		r->chunk_size = f->chunk_size;
		r->id = f->id;
		memcpy(r->addr, f->addr, SNAPBLK_ADDR_LEN);
		r->dev_index = f->dev_index;
		r->flags = SNAPBLK_FETCH_F_DEADLINE |
			   (f->refetch ? SNAPBLK_FETCH_F_REFETCH : 0) |
			   (f->background ? SNAPBLK_FETCH_F_BACKGROUND : 0);
		r->chunk = f->chunk;
		r->deadline_ns = f->deadline_ns;
		f->owner = fr;
		list_move_tail(&f->fnode, &taken);
	}
	/*
	 * Claimed only once the daemon has them.  Meanwhile they are on no
	 * list: their ids are not out yet, so no answer can look for them,
	 * and the deadline scan catches them again once they are back.
	 */
	spin_unlock(&snapblk_fetch_lock);

	ret = n * sizeof(*reqs);
	if (copy_to_user(buf, reqs, ret))
		ret = -EFAULT;
	spin_lock(&snapblk_fetch_lock);
	if (ret < 0)
		__requeue(&taken);
	else
		list_splice_tail(&taken, &fr->claimed);
	spin_unlock(&snapblk_fetch_lock);
out:
	kfree(reqs);
	return ret;
}

static __poll_t fetch_poll(struct file *file, poll_table *wait)
{
	__poll_t mask = 0;

	poll_wait(file, &fetch_wq, wait);
	spin_lock(&snapblk_fetch_lock);
	if (!queues_empty())
		mask |= EPOLLIN | EPOLLRDNORM;
	spin_unlock(&snapblk_fetch_lock);
	return mask | EPOLLOUT | EPOLLWRNORM;
}

/* Take the fetch with @id off @fr's claimed list, with a reference. */
static struct snapblk_fetch *claim_answer(struct snapblk_fetcher *fr, u64 id)
{
	struct snapblk_fetch *f;

	spin_lock(&snapblk_fetch_lock);
	list_for_each_entry(f, &fr->claimed, fnode) {
		if (f->id == id) {
			list_del_init(&f->fnode);
			refcount_inc(&f->ref);
			spin_unlock(&snapblk_fetch_lock);
			return f;
		}
	}
	spin_unlock(&snapblk_fetch_lock);
	return NULL;
}

static void free_answer_pages(struct snapblk_fetch *f)
{
	snapblk_pages_free(f->pages, f->nr_pages);
	f->pages = NULL;
	f->nr_pages = 0;
}

/*
 * Put @f back on @fr's claimed list (its answer could not be read: the
 * daemon may answer again), without the pages it got for that answer.
 */
static void unclaim(struct snapblk_fetcher *fr, struct snapblk_fetch *f)
{
	free_answer_pages(f);
	spin_lock(&snapblk_fetch_lock);
	list_add(&f->fnode, &fr->claimed);
	spin_unlock(&snapblk_fetch_lock);
	fetch_put(f);
}

/*
 * The kernel could not take @f's answer for want of memory: a transient
 * failure, not the chunk's.  Back to the head of its queue, for any
 * daemon to fetch again, and without its pages.
 */
static void requeue(struct snapblk_fetch *f)
{
	LIST_HEAD(one);

	free_answer_pages(f);
	spin_lock(&snapblk_fetch_lock);
	list_add(&f->fnode, &one);
	__requeue(&one);
	arm_scan();
	spin_unlock(&snapblk_fetch_lock);
	fetch_put(f);
}

/*
 * The answer for @f failed verification (the wrong length, or not its
 * address).  The daemon's copy may be a corrupted cache file: the first
 * time, and while its deadline has not passed, the fetch goes back to the
 * head of its queue under a new id (an answer to the old one is refused),
 * flagged SNAPBLK_FETCH_F_REFETCH, with its deadline and waiters as they
 * were; each waiting device counts a refetch and hears of the bad answer.
 * Returns true then, having dropped the caller's reference.  Returns
 * false, changing nothing but freeing the answer's pages, when the fetch
 * was re-fetched already or is past its deadline: the caller fails it.
 */
static bool refetch(struct snapblk_fetch *f)
{
	struct client_chunk devs[SNAPBLK_EVENT_DEVS];
	u32 dev_index = f->dev_index;	/* immutable: for the log */
	u64 chunk = f->chunk;
	int n, i;

	/* Ours alone until it is back on the queue. */
	free_answer_pages(f);
	spin_lock(&snapblk_fetch_lock);
	if (f->refetch || ktime_get_ns() >= f->deadline_ns) {
		spin_unlock(&snapblk_fetch_lock);
		return false;
	}
	f->refetch = true;
	n = distinct_clients(&f->waiters, NULL, 0, devs);
	for (i = 0; i < n; i++) {
		snapblk_stat_inc(&devs[i].cl->stats, SNAPBLK_STAT_REFETCHES);
		/* Its request waits here: removal has not freed it. */
		devs[i].cl->ops->get(devs[i].cl);
	}
	f->id = fetch_next_id++;
	f->owner = NULL;
	list_add(&f->fnode, queue_of(f));
	wake_up_interruptible(&fetch_wq);
	arm_scan();
	spin_unlock(&snapblk_fetch_lock);

	pr_warn_ratelimited("snapblk%u: chunk %llu: bad answer: fetching it once more\n",
			    dev_index, chunk);
	for (i = 0; i < n; i++) {
		snapblk_event_chunk_error(devs[i].cl, devs[i].chunk, f->addr,
					  EBADMSG, true);
		devs[i].cl->ops->put(devs[i].cl);
	}
	fetch_put(f);
	return true;
}

/* All or none: on failure the caller frees what was allocated. */
static int alloc_pages_for(struct snapblk_fetch *c)
{
	u32 i;

	c->nr_pages = c->chunk_size >> PAGE_SHIFT;
	c->pages = kvcalloc(c->nr_pages, sizeof(*c->pages), GFP_KERNEL);
	if (!c->pages) {
		c->nr_pages = 0;
		return -ENOMEM;
	}
	for (i = 0; i < c->nr_pages; i++) {
		c->pages[i] = alloc_page(GFP_KERNEL);
		if (!c->pages[i])
			return -ENOMEM;
	}
	return 0;
}

/* Copy the daemon's ciphertext into the chunk's pages. */
static int copy_ciphertext(struct snapblk_fetch *c, struct iov_iter *from)
{
	u32 i;

	for (i = 0; i < c->nr_pages; i++)
		if (copy_page_from_iter(c->pages[i], 0, PAGE_SIZE, from) !=
		    PAGE_SIZE)
			return -EFAULT;
	return 0;
}

/* SHA-256 of the ciphertext must be the chunk's address. */
static int verify_address(struct snapblk_fetch *c)
{
	SHASH_DESC_ON_STACK(desc, sha256_tfm);
	u8 digest[SNAPBLK_ADDR_LEN];
	int ret;
	u32 i;

	desc->tfm = sha256_tfm;
	ret = crypto_shash_init(desc);
	for (i = 0; !ret && i < c->nr_pages; i++) {
		void *p = kmap_local_page(c->pages[i]);

		ret = crypto_shash_update(desc, p, PAGE_SIZE);
		kunmap_local(p);
	}
	if (!ret)
		ret = crypto_shash_final(desc, digest);
	shash_desc_zero(desc);
	if (ret)
		return ret;
	return memcmp(digest, c->addr, SNAPBLK_ADDR_LEN) ? -EBADMSG : 0;
}

/*
 * ctr(aes) transforms for decrypt_chunk(), allocated at load: one per
 * possible CPU, each under its mutex (setting a key and decrypting may
 * sleep).  Allocating one per chunk cost more than decrypting it when
 * emulated.  A transform is keyed with zeros again after each chunk, so
 * no chunk key stays in it.
 */
struct ctr_slot {
	struct mutex lock;		/* held while @tfm is keyed and used */
	struct crypto_skcipher *tfm;
};

static struct ctr_slot *ctr_slots;
static unsigned int nr_ctr_slots;

/* A transform, locked: a free one if any, else wait for this CPU's. */
static struct ctr_slot *ctr_get(void)
{
	unsigned int first = raw_smp_processor_id() % nr_ctr_slots, i;

	for (i = 0; i < nr_ctr_slots; i++) {
		struct ctr_slot *s = &ctr_slots[(first + i) % nr_ctr_slots];

		if (mutex_trylock(&s->lock))
			return s;
	}
	mutex_lock(&ctr_slots[first].lock);
	return &ctr_slots[first];
}

static void ctr_put(struct ctr_slot *s)
{
	static const u8 zero_key[SNAPBLK_CHUNK_KEY_LEN];

	crypto_skcipher_setkey(s->tfm, zero_key, sizeof(zero_key));
	mutex_unlock(&s->lock);
}

static void ctr_free(void)
{
	unsigned int i;

	for (i = 0; i < nr_ctr_slots; i++)
		crypto_free_skcipher(ctr_slots[i].tfm);
	kfree(ctr_slots);
	ctr_slots = NULL;
	nr_ctr_slots = 0;
}

static int __init ctr_alloc(void)
{
	unsigned int n = num_possible_cpus(), i;

	ctr_slots = kcalloc(n, sizeof(*ctr_slots), GFP_KERNEL);
	if (!ctr_slots)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct crypto_skcipher *tfm;

		tfm = crypto_alloc_skcipher("ctr(aes)", 0, 0);
		if (IS_ERR(tfm)) {
			ctr_free();
			return PTR_ERR(tfm);
		}
		mutex_init(&ctr_slots[i].lock);
		ctr_slots[i].tfm = tfm;
		nr_ctr_slots = i + 1;
	}
	return 0;
}

/* AES-256-CTR with a zero IV and the chunk's key, in place. */
static int decrypt_chunk(struct snapblk_fetch *c)
{
	struct skcipher_request *req;
	struct ctr_slot *slot;
	struct sg_table sgt;
	DECLARE_CRYPTO_WAIT(wait);
	u8 iv[16] = { 0 };
	int ret;

	ret = sg_alloc_table_from_pages(&sgt, c->pages, c->nr_pages, 0,
					c->chunk_size, GFP_KERNEL);
	if (ret)
		return ret;
	slot = ctr_get();
	ret = crypto_skcipher_setkey(slot->tfm, c->key, SNAPBLK_CHUNK_KEY_LEN);
	if (ret)
		goto out;
	req = skcipher_request_alloc(slot->tfm, GFP_KERNEL);
	if (!req) {
		ret = -ENOMEM;
		goto out;
	}
	skcipher_request_set_callback(req, CRYPTO_TFM_REQ_MAY_SLEEP,
				      crypto_req_done, &wait);
	skcipher_request_set_crypt(req, sgt.sgl, sgt.sgl, c->chunk_size, iv);
	ret = crypto_wait_req(crypto_skcipher_decrypt(req), &wait);
	skcipher_request_free(req);
out:
	ctr_put(slot);
	sg_free_table(&sgt);
	return ret;
}

/*
 * One answer per write() or writev(): the response header (16 or 24
 * bytes), then, unless it reports an error, the chunk's ciphertext.
 */
static ssize_t fetch_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	struct snapblk_fetcher *fr = iocb->ki_filp->private_data;
	size_t len = iov_iter_count(from);
	struct snapblk_fetch_resp resp;
	struct snapblk_fetch *f;
	bool bad = false;	/* the answer failed a check on its content */
	u32 hlen;
	int err;

	if (len < SNAPBLK_FETCH_RESP_LEN_V3)
		return -EINVAL;
	memset(&resp, 0, sizeof(resp));
	if (copy_from_iter(&resp, SNAPBLK_FETCH_RESP_LEN_V3, from) !=
	    SNAPBLK_FETCH_RESP_LEN_V3)
		return -EFAULT;
	hlen = resp.len;
	if ((hlen != SNAPBLK_FETCH_RESP_LEN_V3 && hlen != sizeof(resp)) ||
	    hlen > len)
		return -EINVAL;
	if (hlen > SNAPBLK_FETCH_RESP_LEN_V3 &&
	    copy_from_iter(&resp.tier, hlen - SNAPBLK_FETCH_RESP_LEN_V3,
			   from) != hlen - SNAPBLK_FETCH_RESP_LEN_V3)
		return -EFAULT;
	f = claim_answer(fr, resp.id);
	if (!f)
		return -ENOENT;

	if (resp.error) {
		if (len != hlen) {
			unclaim(fr, f);
			return -EINVAL;
		}
		err = -EIO;
		pr_warn_ratelimited("snapblk%u: chunk %llu: fetch daemon reports error %u\n",
				    f->dev_index, f->chunk, resp.error);
		goto done;
	}
	if (len != hlen + f->chunk_size) {
		/* A truncated or padded chunk is a bad chunk. */
		err = -EBADMSG;
		bad = true;
		pr_warn_ratelimited("snapblk%u: chunk %llu: %zu bytes delivered, %u expected\n",
				    f->dev_index, f->chunk, len - hlen,
				    f->chunk_size);
		goto done;
	}
	err = alloc_pages_for(f);
	if (!err)
		err = copy_ciphertext(f, from);
	if (err == -EFAULT) {
		unclaim(fr, f);
		return -EFAULT;
	}
	if (err == -ENOMEM)
		goto nomem;
	if (!err) {
		err = verify_address(f);
		bad = err == -EBADMSG;
		if (bad)
			pr_warn_ratelimited("snapblk%u: chunk %llu: content does not match its address\n",
					    f->dev_index, f->chunk);
	}
	if (!err) {
		err = decrypt_chunk(f);
		if (err == -ENOMEM)
			goto nomem;
		if (err)
			pr_warn_ratelimited("snapblk%u: chunk %llu: cannot decrypt: %d\n",
					    f->dev_index, f->chunk, err);
	}
done:
	/* A bad answer fails the reads only the second time. */
	if (bad && refetch(f))
		return len;
	if (err)
		free_answer_pages(f);
	fetch_complete(f, err, resp.tier, resp.retries);
	fetch_put(f);
	return len;

nomem:
	pr_warn_ratelimited("snapblk%u: chunk %llu: no memory for the answer: fetched again\n",
			    f->dev_index, f->chunk);
	requeue(f);
	return -ENOMEM;
}

static const struct file_operations fetch_fops = {
	.owner = THIS_MODULE,
	.open = fetch_open,
	.release = fetch_release,
	.read = fetch_read,
	.write_iter = fetch_write_iter,
	.poll = fetch_poll,
	.llseek = noop_llseek,
};

static struct miscdevice fetch_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "snapblk-fetch",
	.fops = &fetch_fops,
	.mode = 0600,
};

/*
 * Every chunk's SHA-256 is checked, so the transform matters.  The crypto
 * API picks by declared priority, which is the fastest on hardware but
 * not always where the CPU is emulated (SHA-NI under QEMU TCG runs at a
 * tenth of the AVX2 code's speed).  So time each implementation there is
 * on a 64 KiB buffer once at load (a few ms in all) and keep the fastest,
 * as the kernel does for its RAID6 and XOR routines.
 */
static struct crypto_shash *__init fastest_sha256(void)
{
	static const char *const drivers[] = {
		"sha256-ni", "sha256-avx2", "sha256-avx", "sha256-ssse3",
		"sha256-generic",
	};
	struct crypto_shash *best = NULL, *tfm;
	u64 best_ns = U64_MAX, t;
	u8 digest[SNAPBLK_ADDR_LEN];
	unsigned int i, k;
	void *buf;

	buf = kvzalloc(SZ_64K, GFP_KERNEL);
	if (!buf)
		return crypto_alloc_shash("sha256", 0, 0);
	for (i = 0; i < ARRAY_SIZE(drivers); i++) {
		tfm = crypto_alloc_shash(drivers[i], 0, 0);
		if (IS_ERR(tfm))
			continue;
		t = ktime_get_ns();
		for (k = 0; k < 2; k++)
			crypto_shash_tfm_digest(tfm, buf, SZ_64K, digest);
		t = ktime_get_ns() - t;
		if (t < best_ns) {
			if (best)
				crypto_free_shash(best);
			best = tfm;
			best_ns = t;
		} else {
			crypto_free_shash(tfm);
		}
	}
	kvfree(buf);
	if (!best)
		return crypto_alloc_shash("sha256", 0, 0);
	pr_info("sha256: %s, %llu MB/s\n",
		crypto_shash_driver_name(best),
		div64_u64(2ULL * SZ_64K * NSEC_PER_SEC, max(best_ns, 1ULL)) >> 20);
	return best;
}

int __init snapblk_fetch_init(void)
{
	int ret;

	sha256_tfm = fastest_sha256();
	if (IS_ERR(sha256_tfm)) {
		pr_err("no sha256 in the crypto API: %ld\n",
		       PTR_ERR(sha256_tfm));
		return PTR_ERR(sha256_tfm);
	}
	/* This loads the ctr module where it is one. */
	ret = ctr_alloc();
	if (ret) {
		pr_err("no ctr(aes) in the crypto API (%d): load the ctr module first\n",
		       ret);
		goto err_sha;
	}
	ret = misc_register(&fetch_misc);
	if (ret)
		goto err_ctr;
	return 0;

err_ctr:
	ctr_free();
err_sha:
	crypto_free_shash(sha256_tfm);
	return ret;
}

/* No file is open (each holds a module reference) and no device exists. */
void snapblk_fetch_exit(void)
{
	struct snapblk_fetch *f, *tmp;
	LIST_HEAD(left);

	misc_deregister(&fetch_misc);
	cancel_delayed_work_sync(&fetch_timeout_work);
	spin_lock(&snapblk_fetch_lock);
	list_splice_init(&demand_queue, &left);
	list_splice_init(&bg_queue, &left);
	list_for_each_entry(f, &left, fnode)
		refcount_inc(&f->ref);
	spin_unlock(&snapblk_fetch_lock);
	list_for_each_entry_safe(f, tmp, &left, fnode) {
		list_del_init(&f->fnode);
		fetch_complete(f, -ESHUTDOWN, 0, 0);
		fetch_put(f);
	}
	WARN_ON(!hash_empty(pending));
	ctr_free();
	crypto_free_shash(sha256_tfm);
}
