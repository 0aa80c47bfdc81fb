// SPDX-License-Identifier: GPL-2.0
/*
 * Background fetching of a device: readahead and prefetch.
 *
 * Readahead: a read of chunk i + 1 right after one of chunk i (the
 * device's reads move forward chunk by chunk) extends a window of the
 * readahead_chunks chunks after it.  Prefetch: a list of chunks (a
 * recorded first-touch trace, or every chunk for hydration), in order.
 * One work item issues both, readahead first (it is about the read going
 * on now), skipping ZERO chunks and chunks the device has resident, while
 * the device has fewer than max_inflight fetches in flight (its demand
 * fetches count; they are never held back).  Each background fetch is
 * queued at background priority (fetch.c): the daemon gets every demand
 * request before it.  The work runs again whenever a fetch the device
 * started ends.
 */
#include "snapblk.h"
#include "dev.h"
#include "fetch.h"

#include <linux/mm.h>
#include <linux/sched.h>

static void bg_work_fn(struct work_struct *work);

void snapblk_bg_init(struct snapblk_dev *dev)
{
	struct snapblk_bg *bg = &dev->bg;

	spin_lock_init(&bg->lock);
	INIT_WORK(&bg->work, bg_work_fn);
	bg->last_chunk = U64_MAX - 1;
	bg->state = SNAPBLK_PREFETCH_NONE;
}

void snapblk_bg_kick(struct snapblk_dev *dev)
{
	struct snapblk_bg *bg = &dev->bg;

	spin_lock(&bg->lock);
	if (!bg->stopping) {
		snapblk_dev_get(dev);
		if (!queue_work(system_unbound_wq, &bg->work))
			refcount_dec(&dev->ref);	/* queued: has one */
	}
	spin_unlock(&bg->lock);
}

void snapblk_bg_note_read(struct snapblk_dev *dev, u64 chunk)
{
	struct snapblk_bg *bg = &dev->bg;
	u32 ra = READ_ONCE(dev->readahead_chunks);
	u64 prev = READ_ONCE(bg->last_chunk);
	bool kick = false;
	u64 end;

	if (prev == chunk)
		return;
	WRITE_ONCE(bg->last_chunk, chunk);
	if (!ra || chunk != prev + 1)
		return;
	end = min(chunk + 1 + ra, dev->nr_chunks);
	spin_lock(&bg->lock);
	if (end > bg->ra_end) {
		bg->ra_next = max(bg->ra_next, chunk + 1);
		bg->ra_end = end;
		kick = true;
	}
	spin_unlock(&bg->lock);
	if (kick)
		snapblk_bg_kick(dev);
}

/* Lock held: the prefetch is over when its list is and nothing flies. */
static void __update_state(struct snapblk_dev *dev)
{
	struct snapblk_bg *bg = &dev->bg;

	if (bg->state == SNAPBLK_PREFETCH_RUNNING && bg->pos == bg->count &&
	    !atomic_read(&dev->cl.prefetching))
		bg->state = SNAPBLK_PREFETCH_DONE;
}

/*
 * Lock held: the next chunk to fetch, or false.  @readahead says which
 * kind it is.
 */
static bool __next(struct snapblk_dev *dev, u64 *chunk, bool *readahead)
{
	struct snapblk_bg *bg = &dev->bg;

	if (bg->ra_next < bg->ra_end) {
		*chunk = bg->ra_next++;
		*readahead = true;
		return true;
	}
	if (bg->state == SNAPBLK_PREFETCH_RUNNING && bg->pos < bg->count) {
		*chunk = bg->list[bg->pos++];
		*readahead = false;
		return true;
	}
	return false;
}

static void bg_work_fn(struct work_struct *work)
{
	struct snapblk_dev *dev = container_of(work, struct snapblk_dev,
					       bg.work);
	struct snapblk_bg *bg = &dev->bg;
	bool readahead;
	u64 chunk;
	int ret;

	for (;;) {
		if (READ_ONCE(bg->stopping) ||
		    atomic_read(&dev->cl.fetching) >=
		    READ_ONCE(dev->max_inflight))
			break;
		spin_lock(&bg->lock);
		if (!__next(dev, &chunk, &readahead)) {
			__update_state(dev);
			spin_unlock(&bg->lock);
			break;
		}
		spin_unlock(&bg->lock);
		if (!readahead)
			snapblk_stat_inc(&dev->cl.stats,
					 SNAPBLK_STAT_PREFETCH_DONE);
		if ((dev->table[chunk].flags & SNAPBLK_CHUNK_F_ZERO) ||
		    test_bit(chunk, dev->cl.resident_map))
			continue;
		ret = snapblk_fetch_background(&dev->cl, &dev->table[chunk],
					       chunk, readahead,
					       READ_ONCE(dev->fetch_timeout_ms));
		if (ret == -ENOMEM) {
			/* Try this one again when a fetch ends. */
			spin_lock(&bg->lock);
			if (readahead && bg->ra_next == chunk + 1)
				bg->ra_next--;
			else if (!readahead && bg->pos &&
				 bg->list[bg->pos - 1] == chunk)
				bg->pos--;
			spin_unlock(&bg->lock);
			if (!readahead)
				snapblk_stat_add(&dev->cl.stats,
						 SNAPBLK_STAT_PREFETCH_DONE, -1);
			break;
		}
		cond_resched();
	}
	snapblk_dev_put(dev);
}

void snapblk_bg_prefetch(struct snapblk_dev *dev, u32 *list, u32 count)
{
	struct snapblk_bg *bg = &dev->bg;
	u32 *old;

	spin_lock(&bg->lock);
	old = bg->list;
	bg->list = list;
	bg->count = count;
	bg->pos = 0;
	bg->state = SNAPBLK_PREFETCH_RUNNING;
	spin_unlock(&bg->lock);
	atomic64_set(&dev->cl.stats.c[SNAPBLK_STAT_PREFETCH_QUEUED], count);
	atomic64_set(&dev->cl.stats.c[SNAPBLK_STAT_PREFETCH_DONE], 0);
	kvfree(old);
	snapblk_bg_kick(dev);
}

void snapblk_bg_stop(struct snapblk_dev *dev)
{
	struct snapblk_bg *bg = &dev->bg;

	spin_lock(&bg->lock);
	if (bg->state == SNAPBLK_PREFETCH_RUNNING)
		bg->state = bg->pos == bg->count ? SNAPBLK_PREFETCH_DONE :
			    SNAPBLK_PREFETCH_STOPPED;
	spin_unlock(&bg->lock);
}

u32 snapblk_bg_state(struct snapblk_dev *dev, u32 *count, u32 *done)
{
	struct snapblk_bg *bg = &dev->bg;
	u32 state;

	spin_lock(&bg->lock);
	__update_state(dev);
	state = bg->state;
	if (count)
		*count = bg->count;
	if (done)
		*done = bg->pos;
	spin_unlock(&bg->lock);
	return state;
}

void snapblk_bg_exit(struct snapblk_dev *dev)
{
	struct snapblk_bg *bg = &dev->bg;

	spin_lock(&bg->lock);
	bg->stopping = true;
	spin_unlock(&bg->lock);
	/* Queued work holds a reference; cancelling it drops that one. */
	if (cancel_work_sync(&bg->work))
		refcount_dec(&dev->ref);
	kvfree(bg->list);
	bg->list = NULL;
}
