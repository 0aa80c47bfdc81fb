// SPDX-License-Identifier: GPL-2.0
/*
 * snapblk block devices: /dev/snapblkN, read-only, 4 KiB logical blocks,
 * the size of the image.  The block layer splits requests at chunk
 * boundaries (chunk_sectors), so each request reads from one chunk: a ZERO
 * chunk is zero-filled, a chunk in the memory cache is copied at once, a
 * missing one makes the request wait for its fetch (cache.c, fetch.c).
 *
 * Per-device attributes live in /sys/block/snapblkN/snapblk/ (see
 * Documentation/ABI/testing/sysfs-block-snapblk).
 */
#include "snapblk.h"
#include "compat.h"

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

static blk_status_t snapblk_queue_rq(struct blk_mq_hw_ctx *hctx,
				     const struct blk_mq_queue_data *bd)
{
	struct snapblk_dev *dev = hctx->queue->queuedata;
	struct snapblk_rq *cmd = blk_mq_rq_to_pdu(bd->rq);
	struct request *rq = bd->rq;
	struct snapblk_chunk *c;
	u64 pos = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;
	blk_status_t sts = BLK_STS_OK;

	blk_mq_start_request(rq);
	if (req_op(rq) != REQ_OP_READ || READ_ONCE(dev->removing))
		return BLK_STS_IOERR;

	cmd->rq = rq;
	cmd->dev = dev;
	cmd->chunk = pos / dev->chunk_size;
	cmd->waiting = false;
	cmd->res = NULL;
	INIT_LIST_HEAD(&cmd->node);
	if (cmd->chunk >= dev->nr_chunks)
		return BLK_STS_IOERR;
	if (dev->table[cmd->chunk].flags & SNAPBLK_CHUNK_F_ZERO) {
		atomic64_inc(&dev->hits);
		zero_rq(rq);
		blk_mq_end_request(rq, BLK_STS_OK);
		return BLK_STS_OK;
	}
	/*
	 * The first read of this chunk by this device brings the record
	 * that counts it resident (allocated here, not under the cache
	 * lock; the bit is checked again there).
	 */
	if (!test_bit(cmd->chunk, dev->resident_map)) {
		cmd->res = kmalloc(sizeof(*cmd->res), GFP_NOIO);
		if (!cmd->res)
			return BLK_STS_RESOURCE;
	}
	c = snapblk_cache_get_or_fetch(dev, cmd->chunk, cmd);
	if (IS_ERR(c)) {
		kfree(cmd->res);
		return BLK_STS_RESOURCE;
	}
	if (c) {
		kfree(cmd->res);
		cmd->res = NULL;
		if (snapblk_chunk_copy_to_rq(c, cmd))
			sts = BLK_STS_IOERR;
		snapblk_chunk_put(c);
		blk_mq_end_request(rq, sts);
	}
	/* else: completed by snapblk_cache_complete() */
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

	if (snapblk_cache_timeout_rq(cmd)) {
		pr_warn_ratelimited("snapblk%d: chunk %llu: read timed out\n",
				    cmd->dev->index, cmd->chunk);
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
SNAPBLK_ATTR_RO(resident_chunks, "%lld", atomic64_read(&dev->resident));
SNAPBLK_ATTR_RO(cache_hits, "%lld", atomic64_read(&dev->hits));
SNAPBLK_ATTR_RO(cache_misses, "%lld", atomic64_read(&dev->misses));
SNAPBLK_ATTR_RO(bytes_fetched, "%lld", atomic64_read(&dev->bytes_fetched));
SNAPBLK_ATTR_RO(fetch_errors, "%lld", atomic64_read(&dev->fetch_errors));
SNAPBLK_ATTR_RO(refetches, "%lld", atomic64_read(&dev->refetches));
SNAPBLK_ATTR_RO(inflight, "%d", atomic_read(&dev->inflight));

static ssize_t fetch_timeout_ms_show(struct device *d,
				     struct device_attribute *a, char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(to_sdev(d)->fetch_timeout_ms));
}

static ssize_t fetch_timeout_ms_store(struct device *d,
				      struct device_attribute *a,
				      const char *buf, size_t len)
{
	u32 ms;
	int ret = kstrtou32(buf, 0, &ms);

	if (ret)
		return ret;
	if (!ms || ms > SNAPBLK_FETCH_TIMEOUT_MS_MAX)
		return -EINVAL;
	WRITE_ONCE(to_sdev(d)->fetch_timeout_ms, ms);
	blk_queue_rq_timeout(to_sdev(d)->disk->queue, rq_timeout(ms));
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
	&dev_attr_fetch_timeout_ms.attr,
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

static void snapblk_dev_free(struct snapblk_dev *dev)
{
	ida_free(&snapblk_index_ida, dev->index);
	/* The table holds every chunk key of the image: wipe it. */
	if (dev->table)
		kvfree_sensitive(dev->table,
				 dev->nr_chunks * sizeof(*dev->table));
	kvfree(dev->resident_map);
	kfree(dev);
}

/* Drop a reference (see struct snapblk_dev); may sleep. */
void snapblk_dev_put(struct snapblk_dev *dev)
{
	if (refcount_dec_and_test(&dev->ref))
		snapblk_dev_free(dev);
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
	};
	struct snapblk_dev *dev;
	struct gendisk *disk;
	u64 i;
	int ret;

	dev = kzalloc(sizeof(*dev), GFP_KERNEL_ACCOUNT);
	if (!dev)
		return -ENOMEM;
	strscpy(dev->name, p->name, sizeof(dev->name));
	dev->image_size = p->image_size;
	dev->chunk_size = p->chunk_size;
	dev->nr_chunks = DIV_ROUND_UP_ULL(p->image_size, p->chunk_size);
	memcpy(dev->image_id, p->image_id, SNAPBLK_IMAGE_ID_LEN);
	dev->fetch_timeout_ms = p->fetch_timeout_ms;
	refcount_set(&dev->ref, 1);	/* snapblk_devs' */
	INIT_LIST_HEAD(&dev->residents);
	dev->resident_map = kvcalloc(BITS_TO_LONGS(dev->nr_chunks),
				     sizeof(long), GFP_KERNEL_ACCOUNT |
				     __GFP_RETRY_MAYFAIL | __GFP_NOWARN);
	if (!dev->resident_map) {
		kfree(dev);
		return -ENOMEM;
	}
	for (i = 0; i < dev->nr_chunks; i++)
		if (p->table[i].flags & SNAPBLK_CHUNK_F_ZERO)
			dev->nr_zero++;

	mutex_lock(&snapblk_devs_mutex);
	ret = -EEXIST;
	if (snapblk_dev_find(p->name))
		goto err_unlock;
	ret = ida_alloc_max(&snapblk_index_ida, SNAPBLK_MAX_INDEX, GFP_KERNEL);
	if (ret < 0)
		goto err_unlock;
	dev->index = ret;

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
	snapblk_genl_dev_event(SNAPBLK_EVENT_DEVICE_ADDED, dev);
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
	kvfree(dev->resident_map);
	kfree(dev);
	return ret;
}

/* snapblk_devs_mutex held; @dev->removing already set. */
static void snapblk_dev_destroy(struct snapblk_dev *dev)
{
	list_del(&dev->list);
	snapblk_genl_dev_event(SNAPBLK_EVENT_DEVICE_REMOVED, dev);
	/* Reads waiting for fetches fail now instead of at their deadline. */
	snapblk_cache_cancel_dev(dev);
	del_gendisk(dev->disk);
	/* No request is left: its residency records can go. */
	snapblk_cache_forget_dev(dev);
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
