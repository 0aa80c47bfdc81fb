/* SPDX-License-Identifier: GPL-2.0 */
/* snapblk block devices (dev.c) and their background fetching (bg.c). */
#ifndef SNAPBLK_DEV_H
#define SNAPBLK_DEV_H

#include <linux/blk-mq.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/workqueue.h>
#include <uapi/linux/snapblk.h>

#include "cache.h"

/*
 * Background fetching of one device (bg.c): the readahead window and
 * the prefetch list, issued by one work item at most max_inflight
 * fetches of the device at a time.  @lock protects every field but
 * @work and @last_chunk (READ_ONCE/WRITE_ONCE: a heuristic).
 */
struct snapblk_bg {
	spinlock_t lock;		/* the fields below but work, last_chunk */
	bool stopping;			/* the device goes: no more work */
	u64 last_chunk;			/* of the latest read */
	u64 ra_next, ra_end;		/* readahead window [next, end) */
	u32 *list;			/* prefetch list, kvmalloc'ed */
	u32 count, pos;			/* its length; next to issue */
	u32 state;			/* SNAPBLK_PREFETCH_* */
	struct work_struct work;	/* holds a device reference queued */
};

/*
 * A mapped image.  Lifetime: created by SNAPBLK_CMD_CREATE, on
 * snapblk_devs until SNAPBLK_CMD_REMOVE or module unload; freed when the
 * last reference goes.  snapblk_devs holds one, dropped after the disk is
 * deleted; an event about the device sent outside a lock, the fetch path
 * completing a fetch the device started, and the queued background work
 * each hold another.  The table and geometry are immutable after creation.
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
	/* Knobs, READ_ONCE: sysfs may change them under I/O. */
	u32 fetch_timeout_ms;
	u32 readahead_chunks;
	u32 max_inflight;
	struct snapblk_client cl;	/* what the cache and fetch path see */
	struct snapblk_bg bg;
	/*
	 * First-touch trace: bit i of touched_map is set (atomically) the
	 * first time a read touches chunk i, which then takes the next slot
	 * of trace (trace_len counts slots taken; a slot is U32_MAX until
	 * written).  At most trace_cap slots.
	 */
	unsigned long *touched_map;
	u32 *trace;
	u32 trace_cap;
	atomic_t trace_len;
	struct blk_mq_tag_set tag_set;
	struct gendisk *disk;
	/* Under disk->open_mutex: */
	unsigned int open_count;
	bool removing;			/* opens fail, new reads get EIO */
};

static inline struct snapblk_dev *snapblk_client_dev(struct snapblk_client *cl)
{
	return container_of(cl, struct snapblk_dev, cl);
}

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
	u32 readahead_chunks;
	u32 max_inflight;
};

int snapblk_dev_create(const struct snapblk_dev_params *p);
int snapblk_dev_remove(const char *name);
struct snapblk_dev *snapblk_dev_find(const char *name);	/* devs mutex held */
void snapblk_dev_get(struct snapblk_dev *dev);
void snapblk_dev_put(struct snapblk_dev *dev);
/* Longest fetch_timeout_ms accepted: one hour. */
#define SNAPBLK_FETCH_TIMEOUT_MS_MAX	3600000U
int snapblk_dev_init(void);
void snapblk_dev_exit(void);

/* bg.c */
void snapblk_bg_init(struct snapblk_dev *dev);
/* A read of chunk @chunk: extends the readahead window if sequential. */
void snapblk_bg_note_read(struct snapblk_dev *dev, u64 chunk);
/* Run the background work (a fetch ended, a knob changed). */
void snapblk_bg_kick(struct snapblk_dev *dev);
/*
 * Start fetching @list (@count chunk indexes, kvmalloc'ed, which the
 * device then owns) in the background, replacing a running prefetch.
 */
void snapblk_bg_prefetch(struct snapblk_dev *dev, u32 *list, u32 count);
void snapblk_bg_stop(struct snapblk_dev *dev);	/* the prefetch */
u32 snapblk_bg_state(struct snapblk_dev *dev, u32 *count, u32 *done);
/* The device goes: no more background work, none running. */
void snapblk_bg_exit(struct snapblk_dev *dev);

#endif /* SNAPBLK_DEV_H */
