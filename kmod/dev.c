// SPDX-License-Identifier: GPL-2.0
/*
 * snapblk block devices: /dev/snapblkN, read-only, 4 KiB logical blocks,
 * the size of the image.  The block layer splits requests at chunk
 * boundaries (chunk_sectors), so each request reads from one chunk: a ZERO
 * chunk is zero-filled, a chunk in the memory cache is copied at once, a
 * missing one makes the request wait for its fetch (cache.c, fetch.c).
 * io_opt is the chunk size, so the page cache's readahead asks for whole
 * chunks; background readahead and prefetch are bg.c's.
 *
 * Per-device attributes live in /sys/block/snapblkN/snapblk/ (see
 * Documentation/ABI/testing/sysfs-block-snapblk).
 */
#include "snapblk.h"
#include "compat.h"
#include "dev.h"
#include "events.h"
#include "fetch.h"

#include <linux/highmem.h>
#include <linux/idr.h>
#include <linux/module.h>
#include <linux/slab.h>

/* snapblk_devs_mutex protects snapblk_devs and device creation/removal. */
DEFINE_MUTEX(snapblk_devs_mutex);
LIST_HEAD(snapblk_devs);
static DEFINE_IDA(snapblk_index_ida);
static int snapblk_major;

static int snapblk_open(struct gendisk *disk)
{
	struct snapblk_dev *dev = disk->private_data;

	/* Called with disk->open_mutex held. */
	if (dev->removing)
		return -ENXIO;
	dev->open_count++;
	return 0;
}

static void snapblk_release(struct gendisk *disk)
{
	struct snapblk_dev *dev = disk->private_data;

	dev->open_count--;
}

SNAPBLK_BDEV_OPEN_ADAPTER(snapblk_open)
SNAPBLK_BDEV_RELEASE_ADAPTER(snapblk_release)

static const struct block_device_operations snapblk_fops = {
	.owner = THIS_MODULE,
	.open = snapblk_open_bdev,
	.release = snapblk_release_bdev,
};

static void zero_rq(struct request *rq)
{
	struct req_iterator iter;
	struct bio_vec bv;

	rq_for_each_segment(bv, rq, iter)
		memzero_bvec(&bv);
}

/*
 * The first read of chunk @chunk: note its place in the first-touch
 * trace.  Lock-free: the bit decides who takes the slot.
 */
static void trace_touch(struct snapblk_dev *dev, u64 chunk)
{
	int n;

	if (test_bit(chunk, dev->touched_map) ||
	    test_and_set_bit(chunk, dev->touched_map))
		return;
	n = atomic_inc_return(&dev->trace_len) - 1;
	if (n < dev->trace_cap)
		WRITE_ONCE(dev->trace[n], chunk);
}

static blk_status_t snapblk_queue_rq(struct blk_mq_hw_ctx *hctx,
				     const struct blk_mq_queue_data *bd)
{
	struct snapblk_dev *dev = hctx->queue->queuedata;
	struct snapblk_rq *cmd = blk_mq_rq_to_pdu(bd->rq);
	struct request *rq = bd->rq;
	struct snapblk_chunk *c;
	u64 pos = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;
	blk_status_t sts = BLK_STS_OK;
	u64 chunk;

	blk_mq_start_request(rq);
	if (req_op(rq) != REQ_OP_READ || READ_ONCE(dev->removing))
		return BLK_STS_IOERR;

	cmd->rq = rq;
	cmd->cl = &dev->cl;
	cmd->chunk = pos / dev->chunk_size;
	cmd->waiting = false;
	cmd->res = NULL;
	INIT_LIST_HEAD(&cmd->node);
	if (cmd->chunk >= dev->nr_chunks)
		return BLK_STS_IOERR;
	chunk = cmd->chunk;
	if (dev->table[chunk].flags & SNAPBLK_CHUNK_F_ZERO) {
		snapblk_stat_inc(&dev->cl.stats, SNAPBLK_STAT_CACHE_HITS);
		zero_rq(rq);
		blk_mq_end_request(rq, BLK_STS_OK);
		snapblk_bg_note_read(dev, chunk);
		return BLK_STS_OK;
	}
	trace_touch(dev, cmd->chunk);
	/*
	 * The first read of this chunk by this device brings the record
	 * that counts it resident (allocated here, not under a lock; the
	 * bit is checked again there).
	 */
	if (!test_bit(cmd->chunk, dev->cl.resident_map)) {
		cmd->res = kmalloc(sizeof(*cmd->res), GFP_NOIO);
		if (!cmd->res)
			return BLK_STS_RESOURCE;
	}
	c = snapblk_fetch_get(&dev->cl, &dev->table[cmd->chunk], cmd->chunk,
			      cmd, READ_ONCE(dev->fetch_timeout_ms));
	if (IS_ERR(c)) {
		kfree(cmd->res);
		return BLK_STS_RESOURCE;
	}
	if (c) {
		if (snapblk_chunk_copy_to_rq(c, cmd))
			sts = BLK_STS_IOERR;
		snapblk_chunk_put(c);
		snapblk_rq_end(cmd, sts);
	}
	/*
	 * else: completed by the fetch path (maybe already: @cmd is not
	 * ours any more).  Readahead only now, so that this read's own
	 * fetch is queued before the background ones it starts.
	 */
	snapblk_bg_note_read(dev, chunk);
	return BLK_STS_OK;
}

/*
 * Fetches have their own deadline (fetch.c), which fails their readers;
 * this timeout, the device's fetch_timeout_ms plus SNAPBLK_RQ_TIMEOUT_SLACK_MS,
 * is the backstop.  A request still waiting then (its chunk is being
 * fetched under a later deadline, for another device) fails now; one that
 * is being completed is left to finish.
 */
static enum blk_eh_timer_return snapblk_timeout(struct request *rq)
{
	struct snapblk_rq *cmd = blk_mq_rq_to_pdu(rq);

	if (snapblk_fetch_timeout_rq(cmd)) {
		pr_warn_ratelimited("snapblk%d: chunk %llu: read timed out\n",
				    snapblk_client_dev(cmd->cl)->index,
				    cmd->chunk);
		return BLK_EH_DONE;
	}
	return BLK_EH_RESET_TIMER;
}

static const struct blk_mq_ops snapblk_mq_ops = {
	.queue_rq = snapblk_queue_rq,
	.timeout = snapblk_timeout,
};

static unsigned int rq_timeout(u32 fetch_timeout_ms)
{
	return msecs_to_jiffies(fetch_timeout_ms + SNAPBLK_RQ_TIMEOUT_SLACK_MS);
}

/* ------------------------------------------------------------- sysfs */

static struct snapblk_dev *to_sdev(struct device *d)
{
	return dev_to_disk(d)->private_data;
}

#define SNAPBLK_ATTR_RO(_name, _fmt, ...)				\
static ssize_t _name##_show(struct device *d, struct device_attribute *a, \
			    char *buf)					\
{									\
	struct snapblk_dev *dev = to_sdev(d);				\
									\
	return sysfs_emit(buf, _fmt "\n", __VA_ARGS__);		\
}									\
static DEVICE_ATTR_RO(_name)

SNAPBLK_ATTR_RO(name, "%s", dev->name);
SNAPBLK_ATTR_RO(image_id, "%*phN", SNAPBLK_IMAGE_ID_LEN, dev->image_id);
SNAPBLK_ATTR_RO(image_size, "%llu", dev->image_size);
SNAPBLK_ATTR_RO(chunk_size, "%u", dev->chunk_size);
SNAPBLK_ATTR_RO(chunks, "%llu", dev->nr_chunks);
SNAPBLK_ATTR_RO(zero_chunks, "%llu", dev->nr_zero);
SNAPBLK_ATTR_RO(resident_chunks, "%lld", atomic64_read(&dev->cl.resident));
SNAPBLK_ATTR_RO(inflight, "%d", atomic_read(&dev->cl.waiting));
SNAPBLK_ATTR_RO(fetching, "%d", atomic_read(&dev->cl.fetching));

/* Counters, by SNAPBLK_STAT_*: the file is the counter's name. */
#define SNAPBLK_STAT_ATTR(_name, _stat)					\
	SNAPBLK_ATTR_RO(_name, "%llu", snapblk_stat_read(&dev->cl.stats, _stat))

SNAPBLK_STAT_ATTR(cache_hits, SNAPBLK_STAT_CACHE_HITS);
SNAPBLK_STAT_ATTR(cache_misses, SNAPBLK_STAT_CACHE_MISSES);
SNAPBLK_STAT_ATTR(bytes_fetched, SNAPBLK_STAT_BYTES_FETCHED);
SNAPBLK_STAT_ATTR(fetch_errors, SNAPBLK_STAT_FETCH_ERRORS);
SNAPBLK_STAT_ATTR(refetches, SNAPBLK_STAT_REFETCHES);
SNAPBLK_STAT_ATTR(evictions, SNAPBLK_STAT_EVICTIONS);
SNAPBLK_STAT_ATTR(demand_fetches, SNAPBLK_STAT_DEMAND_FETCHES);
SNAPBLK_STAT_ATTR(readahead_fetches, SNAPBLK_STAT_READAHEAD_FETCHES);
SNAPBLK_STAT_ATTR(prefetch_fetches, SNAPBLK_STAT_PREFETCH_FETCHES);
SNAPBLK_STAT_ATTR(prefetch_used, SNAPBLK_STAT_PREFETCH_USED);
SNAPBLK_STAT_ATTR(prefetch_wasted, SNAPBLK_STAT_PREFETCH_WASTED);
SNAPBLK_STAT_ATTR(prefetch_joined, SNAPBLK_STAT_PREFETCH_JOINED);
SNAPBLK_STAT_ATTR(prefetch_queued, SNAPBLK_STAT_PREFETCH_QUEUED);
SNAPBLK_STAT_ATTR(prefetch_done, SNAPBLK_STAT_PREFETCH_DONE);
SNAPBLK_STAT_ATTR(retries, SNAPBLK_STAT_RETRIES);
SNAPBLK_STAT_ATTR(fetch_latency_us, SNAPBLK_STAT_FETCH_LATENCY_US);
SNAPBLK_STAT_ATTR(fetches_done, SNAPBLK_STAT_FETCHES_DONE);
SNAPBLK_ATTR_RO(trace_chunks, "%u",
		min_t(u32, atomic_read(&dev->trace_len), dev->trace_cap));

static const char *const prefetch_states[] = {
	[SNAPBLK_PREFETCH_NONE] = "none",
	[SNAPBLK_PREFETCH_RUNNING] = "running",
	[SNAPBLK_PREFETCH_DONE] = "done",
	[SNAPBLK_PREFETCH_STOPPED] = "stopped",
};

static ssize_t prefetch_show(struct device *d, struct device_attribute *a,
			     char *buf)
{
	return sysfs_emit(buf, "%s\n",
			  prefetch_states[snapblk_bg_state(to_sdev(d), NULL,
							   NULL)]);
}

/* "stop": stop the running prefetch; its fetches in flight finish. */
static ssize_t prefetch_store(struct device *d, struct device_attribute *a,
			      const char *buf, size_t len)
{
	if (!sysfs_streq(buf, "stop"))
		return -EINVAL;
	snapblk_bg_stop(to_sdev(d));
	return len;
}
static DEVICE_ATTR_RW(prefetch);

/* Parse a u32 knob value in [@min, @max]: 0 or -EINVAL/-ERANGE. */
static int parse_knob(const char *buf, u32 min, u32 max, u32 *val)
{
	int ret = kstrtou32(buf, 0, val);

	if (ret)
		return ret;
	return *val < min || *val > max ? -EINVAL : 0;
}

/* The u32 knobs, read and written under I/O (READ_ONCE, WRITE_ONCE). */
static ssize_t knob_show(const u32 *knob, char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(*knob));
}

/* Set *@knob from @buf if in [@min, @max]: 0, or -EINVAL/-ERANGE. */
static int knob_store(u32 *knob, const char *buf, u32 min, u32 max)
{
	u32 v;
	int ret = parse_knob(buf, min, max, &v);

	if (!ret)
		WRITE_ONCE(*knob, v);
	return ret;
}

static ssize_t readahead_chunks_show(struct device *d,
				     struct device_attribute *a, char *buf)
{
	return knob_show(&to_sdev(d)->readahead_chunks, buf);
}

static ssize_t readahead_chunks_store(struct device *d,
				      struct device_attribute *a,
				      const char *buf, size_t len)
{
	return knob_store(&to_sdev(d)->readahead_chunks, buf, 0,
			  SNAPBLK_READAHEAD_MAX) ?: len;
}
static DEVICE_ATTR_RW(readahead_chunks);

static ssize_t max_inflight_show(struct device *d, struct device_attribute *a,
				 char *buf)
{
	return knob_show(&to_sdev(d)->max_inflight, buf);
}

static ssize_t max_inflight_store(struct device *d, struct device_attribute *a,
				  const char *buf, size_t len)
{
	int ret = knob_store(&to_sdev(d)->max_inflight, buf, 1,
			     SNAPBLK_MAX_INFLIGHT_MAX);

	if (ret)
		return ret;
	/* Raised: background work may go on now. */
	snapblk_bg_kick(to_sdev(d));
	return len;
}
static DEVICE_ATTR_RW(max_inflight);

static ssize_t fetch_timeout_ms_show(struct device *d,
				     struct device_attribute *a, char *buf)
{
	return knob_show(&to_sdev(d)->fetch_timeout_ms, buf);
}

static ssize_t fetch_timeout_ms_store(struct device *d,
				      struct device_attribute *a,
				      const char *buf, size_t len)
{
	struct snapblk_dev *dev = to_sdev(d);
	int ret = knob_store(&dev->fetch_timeout_ms, buf, 1,
			     SNAPBLK_FETCH_TIMEOUT_MS_MAX);

	if (ret)
		return ret;
	blk_queue_rq_timeout(dev->disk->queue,
			     rq_timeout(READ_ONCE(dev->fetch_timeout_ms)));
	return len;
}
static DEVICE_ATTR_RW(fetch_timeout_ms);

static struct attribute *snapblk_attrs[] = {
	&dev_attr_name.attr,
	&dev_attr_image_id.attr,
	&dev_attr_image_size.attr,
	&dev_attr_chunk_size.attr,
	&dev_attr_chunks.attr,
	&dev_attr_zero_chunks.attr,
	&dev_attr_resident_chunks.attr,
	&dev_attr_cache_hits.attr,
	&dev_attr_cache_misses.attr,
	&dev_attr_bytes_fetched.attr,
	&dev_attr_fetch_errors.attr,
	&dev_attr_refetches.attr,
	&dev_attr_inflight.attr,
	&dev_attr_fetching.attr,
	&dev_attr_fetch_timeout_ms.attr,
	&dev_attr_readahead_chunks.attr,
	&dev_attr_max_inflight.attr,
	&dev_attr_prefetch.attr,
	&dev_attr_evictions.attr,
	&dev_attr_demand_fetches.attr,
	&dev_attr_readahead_fetches.attr,
	&dev_attr_prefetch_fetches.attr,
	&dev_attr_prefetch_used.attr,
	&dev_attr_prefetch_wasted.attr,
	&dev_attr_prefetch_joined.attr,
	&dev_attr_prefetch_queued.attr,
	&dev_attr_prefetch_done.attr,
	&dev_attr_retries.attr,
	&dev_attr_fetch_latency_us.attr,
	&dev_attr_fetches_done.attr,
	&dev_attr_trace_chunks.attr,
	NULL,
};

static const struct attribute_group snapblk_attr_group = {
	.name = "snapblk",
	.attrs = snapblk_attrs,
};

static const struct attribute_group *snapblk_attr_groups[] = {
	&snapblk_attr_group,
	NULL,
};

/* ------------------------------------------------- create and remove */

/* snapblk_devs_mutex held. */
struct snapblk_dev *snapblk_dev_find(const char *name)
{
	struct snapblk_dev *dev;

	list_for_each_entry(dev, &snapblk_devs, list)
		if (!strcmp(dev->name, name))
			return dev;
	return NULL;
}

/* What dev_alloc() allocated. */
static void dev_free_maps(struct snapblk_dev *dev)
{
	kvfree(dev->cl.resident_map);
	kvfree(dev->cl.bg_unread_map);
	kvfree(dev->touched_map);
	kvfree(dev->trace);
	kfree(dev);
}

static void snapblk_dev_free(struct snapblk_dev *dev)
{
	ida_free(&snapblk_index_ida, dev->index);
	/* The table holds every chunk key of the image: wipe it. */
	if (dev->table)
		kvfree_sensitive(dev->table,
				 dev->nr_chunks * sizeof(*dev->table));
	dev_free_maps(dev);
}

void snapblk_dev_get(struct snapblk_dev *dev)
{
	refcount_inc(&dev->ref);
}

/* Drop a reference (see struct snapblk_dev); may sleep. */
void snapblk_dev_put(struct snapblk_dev *dev)
{
	if (refcount_dec_and_test(&dev->ref))
		snapblk_dev_free(dev);
}

static void client_get(struct snapblk_client *cl)
{
	snapblk_dev_get(snapblk_client_dev(cl));
}

static void client_put(struct snapblk_client *cl)
{
	snapblk_dev_put(snapblk_client_dev(cl));
}

static void client_fetch_done(struct snapblk_client *cl)
{
	snapblk_bg_kick(snapblk_client_dev(cl));
}

static const struct snapblk_client_ops client_ops = {
	.get = client_get,
	.put = client_put,
	.fetch_done = client_fetch_done,
};

static unsigned long *bitmap_alloc_big(u64 bits)
{
	return kvcalloc(BITS_TO_LONGS(bits), sizeof(long), GFP_KERNEL_ACCOUNT |
			__GFP_RETRY_MAYFAIL | __GFP_NOWARN);
}

/* A device for @p, not yet visible: NULL without memory. */
static struct snapblk_dev *dev_alloc(const struct snapblk_dev_params *p)
{
	struct snapblk_dev *dev;
	u64 i;

	dev = kzalloc(sizeof(*dev), GFP_KERNEL_ACCOUNT);
	if (!dev)
		return NULL;
	strscpy(dev->name, p->name, sizeof(dev->name));
	dev->image_size = p->image_size;
	dev->chunk_size = p->chunk_size;
	dev->nr_chunks = DIV_ROUND_UP_ULL(p->image_size, p->chunk_size);
	memcpy(dev->image_id, p->image_id, SNAPBLK_IMAGE_ID_LEN);
	dev->fetch_timeout_ms = p->fetch_timeout_ms;
	dev->readahead_chunks = p->readahead_chunks;
	dev->max_inflight = p->max_inflight;
	refcount_set(&dev->ref, 1);	/* snapblk_devs' */
	dev->cl.ops = &client_ops;
	dev->cl.chunk_size = dev->chunk_size;
	dev->cl.nr_chunks = dev->nr_chunks;
	INIT_LIST_HEAD(&dev->cl.residents);
	snapblk_bg_init(dev);
	dev->trace_cap = min_t(u64, dev->nr_chunks, SNAPBLK_TRACE_MAX);
	dev->cl.resident_map = bitmap_alloc_big(dev->nr_chunks);
	dev->cl.bg_unread_map = bitmap_alloc_big(dev->nr_chunks);
	dev->touched_map = bitmap_alloc_big(dev->nr_chunks);
	dev->trace = kvmalloc_array(dev->trace_cap, sizeof(u32),
				    GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL |
				    __GFP_NOWARN);
	if (!dev->cl.resident_map || !dev->cl.bg_unread_map ||
	    !dev->touched_map || !dev->trace) {
		dev_free_maps(dev);
		return NULL;
	}
	memset(dev->trace, 0xff, dev->trace_cap * sizeof(u32));
	for (i = 0; i < dev->nr_chunks; i++)
		if (p->table[i].flags & SNAPBLK_CHUNK_F_ZERO)
			dev->nr_zero++;
	return dev;
}

/*
 * Device indexes are the minor numbers: at most MINORMASK + 1 devices.
 */
#define SNAPBLK_MAX_INDEX	MINORMASK

/*
 * Create and add the device @p describes: 0 or a negative errno.  The
 * device may be removed as soon as this returns: look it up by name
 * under snapblk_devs_mutex to use it.
 */
int snapblk_dev_create(const struct snapblk_dev_params *p)
{
	struct queue_limits lim = {
		.logical_block_size = SZ_4K,
		.physical_block_size = SZ_4K,
		.max_hw_sectors = p->chunk_size >> SECTOR_SHIFT,
		.chunk_sectors = p->chunk_size >> SECTOR_SHIFT,
		.io_opt = p->chunk_size,
	};
	struct snapblk_dev *dev;
	struct gendisk *disk;
	int ret;

	dev = dev_alloc(p);
	if (!dev)
		return -ENOMEM;

	mutex_lock(&snapblk_devs_mutex);
	ret = -EEXIST;
	if (snapblk_dev_find(p->name))
		goto err_unlock;
	ret = ida_alloc_max(&snapblk_index_ida, SNAPBLK_MAX_INDEX, GFP_KERNEL);
	if (ret < 0)
		goto err_unlock;
	dev->index = ret;
	dev->cl.index = ret;

	dev->tag_set.ops = &snapblk_mq_ops;
	dev->tag_set.nr_hw_queues = 1;
	dev->tag_set.queue_depth = 128;
	dev->tag_set.numa_node = NUMA_NO_NODE;
	dev->tag_set.cmd_size = sizeof(struct snapblk_rq);
	dev->tag_set.flags = BLK_MQ_F_BLOCKING;
	dev->tag_set.timeout = rq_timeout(dev->fetch_timeout_ms);
	dev->tag_set.driver_data = dev;
	ret = blk_mq_alloc_tag_set(&dev->tag_set);
	if (ret)
		goto err_ida;

	disk = snapblk_alloc_disk(&dev->tag_set, &lim, false, dev);
	if (IS_ERR(disk)) {
		ret = PTR_ERR(disk);
		goto err_tag_set;
	}
	dev->disk = disk;
	disk->major = snapblk_major;
	disk->first_minor = dev->index;
	disk->minors = 1;
	disk->flags |= GENHD_FL_NO_PART;
	disk->fops = &snapblk_fops;
	disk->private_data = dev;
	snprintf(disk->disk_name, DISK_NAME_LEN, "snapblk%d", dev->index);
	set_capacity(disk, round_up(dev->image_size, SZ_4K) >> SECTOR_SHIFT);
	set_disk_ro(disk, true);
	/* The table is ours from here on: the device frees it. */
	dev->table = p->table;
	ret = device_add_disk(NULL, disk, snapblk_attr_groups);
	if (ret)
		goto err_disk;
	list_add_tail(&dev->list, &snapblk_devs);
	/* A device pins the module: rmmod is refused while one exists. */
	__module_get(THIS_MODULE);
	/* A REMOVE may run as soon as the mutex is dropped. */
	refcount_inc(&dev->ref);
	mutex_unlock(&snapblk_devs_mutex);
	snapblk_event_dev(SNAPBLK_EVENT_DEVICE_ADDED, dev);
	snapblk_dev_put(dev);
	return 0;

err_disk:
	dev->table = NULL;
	put_disk(disk);
err_tag_set:
	blk_mq_free_tag_set(&dev->tag_set);
err_ida:
	ida_free(&snapblk_index_ida, dev->index);
err_unlock:
	mutex_unlock(&snapblk_devs_mutex);
	dev_free_maps(dev);
	return ret;
}

/* snapblk_devs_mutex held; @dev->removing already set. */
static void snapblk_dev_destroy(struct snapblk_dev *dev)
{
	list_del(&dev->list);
	snapblk_event_dev(SNAPBLK_EVENT_DEVICE_REMOVED, dev);
	/* No more background fetches are started for it. */
	snapblk_bg_exit(dev);
	/* Reads waiting for fetches fail now instead of at their deadline. */
	snapblk_fetch_cancel_client(&dev->cl);
	del_gendisk(dev->disk);
	/* No request is left: its residency records can go. */
	snapblk_cache_forget_client(&dev->cl);
	put_disk(dev->disk);
	blk_mq_free_tag_set(&dev->tag_set);
	/* An event being sent about it may hold it a moment longer. */
	snapblk_dev_put(dev);
}

int snapblk_dev_remove(const char *name)
{
	struct snapblk_dev *dev;
	int ret = 0;

	mutex_lock(&snapblk_devs_mutex);
	dev = snapblk_dev_find(name);
	if (!dev) {
		ret = -ENOENT;
		goto out;
	}
	mutex_lock(&dev->disk->open_mutex);
	if (dev->open_count)
		ret = -EBUSY;
	else
		WRITE_ONCE(dev->removing, true);
	mutex_unlock(&dev->disk->open_mutex);
	if (!ret) {
		snapblk_dev_destroy(dev);
		module_put(THIS_MODULE);
	}
out:
	mutex_unlock(&snapblk_devs_mutex);
	return ret;
}

/* Module exit: no device exists (each holds a module reference). */
static void snapblk_dev_remove_all(void)
{
	struct snapblk_dev *dev, *tmp;

	mutex_lock(&snapblk_devs_mutex);
	list_for_each_entry_safe(dev, tmp, &snapblk_devs, list) {
		WRITE_ONCE(dev->removing, true);
		snapblk_dev_destroy(dev);
	}
	mutex_unlock(&snapblk_devs_mutex);
}

int __init snapblk_dev_init(void)
{
	snapblk_major = register_blkdev(0, "snapblk");
	return snapblk_major < 0 ? snapblk_major : 0;
}

void snapblk_dev_exit(void)
{
	snapblk_dev_remove_all();
	unregister_blkdev(snapblk_major, "snapblk");
	ida_destroy(&snapblk_index_ida);
}
