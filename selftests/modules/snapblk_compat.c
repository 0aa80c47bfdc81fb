// SPDX-License-Identifier: GPL-2.0
/*
 * Exercises every wrapper of kmod/compat.h at run time, so that each
 * supported kernel proves the compat layer before the driver relies on it:
 *
 *  - snapblk_class_create():	class "snapblk_compat" in /sys/class
 *  - snapblk_alloc_disk():	disk "sbcompat0", 1 MiB of zeros, 4 KiB
 *				logical blocks, 256 KiB requests, write cache
 *  - SNAPBLK_BDEV_*_ADAPTER:	counts opens and releases
 *  - snapblk_shrinker_alloc():	counts count_objects calls
 *
 * The counters are read-only module parameters the test script reads.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/blk-mq.h>
#include <linux/highmem.h>
#include "compat.h"

static int opens, releases, shrinker_counts;
module_param(opens, int, 0444);
MODULE_PARM_DESC(opens, "Number of opens of sbcompat0");
module_param(releases, int, 0444);
MODULE_PARM_DESC(releases, "Number of releases of sbcompat0");
module_param(shrinker_counts, int, 0444);
MODULE_PARM_DESC(shrinker_counts, "Number of shrinker count_objects calls");

/* All of these live from module init to module exit. */
static struct class *compat_class;
static struct shrinker *compat_shrinker;
static struct blk_mq_tag_set tag_set;
static struct gendisk *disk;

static int compat_open(struct gendisk *d)
{
	opens++;
	return 0;
}

static void compat_release(struct gendisk *d)
{
	releases++;
}

SNAPBLK_BDEV_OPEN_ADAPTER(compat_open)
SNAPBLK_BDEV_RELEASE_ADAPTER(compat_release)

static const struct block_device_operations compat_fops = {
	.owner = THIS_MODULE,
	.open = compat_open_bdev,
	.release = compat_release_bdev,
};

/* Reads return zeros; nothing else is asked of this disk. */
static blk_status_t compat_queue_rq(struct blk_mq_hw_ctx *hctx,
				    const struct blk_mq_queue_data *bd)
{
	struct request *rq = bd->rq;
	struct req_iterator iter;
	struct bio_vec bv;

	blk_mq_start_request(rq);
	if (req_op(rq) != REQ_OP_READ) {
		blk_mq_end_request(rq, BLK_STS_IOERR);
		return BLK_STS_OK;
	}
	rq_for_each_segment(bv, rq, iter)
		memzero_bvec(&bv);
	blk_mq_end_request(rq, BLK_STS_OK);
	return BLK_STS_OK;
}

static const struct blk_mq_ops compat_mq_ops = {
	.queue_rq = compat_queue_rq,
};

static unsigned long compat_count(struct shrinker *s,
				  struct shrink_control *sc)
{
	shrinker_counts++;
	return 0;
}

static unsigned long compat_scan(struct shrinker *s,
				 struct shrink_control *sc)
{
	return SHRINK_STOP;
}

static int __init compat_init(void)
{
	struct queue_limits lim = {
		.logical_block_size = 4096,
		.physical_block_size = 4096,
		.max_hw_sectors = 512,
	};
	int ret;

	compat_class = snapblk_class_create("snapblk_compat");
	if (IS_ERR(compat_class))
		return PTR_ERR(compat_class);

	ret = -ENOMEM;
	compat_shrinker = snapblk_shrinker_alloc("snapblk_compat",
						 compat_count, compat_scan);
	if (!compat_shrinker)
		goto err_class;

	tag_set.ops = &compat_mq_ops;
	tag_set.nr_hw_queues = 1;
	tag_set.queue_depth = 16;
	tag_set.numa_node = NUMA_NO_NODE;
	ret = blk_mq_alloc_tag_set(&tag_set);
	if (ret)
		goto err_shrinker;

	disk = snapblk_alloc_disk(&tag_set, &lim, true, NULL);
	if (IS_ERR(disk)) {
		ret = PTR_ERR(disk);
		goto err_tag_set;
	}
	disk->fops = &compat_fops;
	strscpy(disk->disk_name, "sbcompat0", DISK_NAME_LEN);
	set_capacity(disk, SZ_1M >> SECTOR_SHIFT);
	ret = add_disk(disk);
	if (ret)
		goto err_disk;
	return 0;

err_disk:
	put_disk(disk);
err_tag_set:
	blk_mq_free_tag_set(&tag_set);
err_shrinker:
	snapblk_shrinker_free(compat_shrinker);
err_class:
	class_destroy(compat_class);
	return ret;
}

static void __exit compat_exit(void)
{
	del_gendisk(disk);
	put_disk(disk);
	blk_mq_free_tag_set(&tag_set);
	snapblk_shrinker_free(compat_shrinker);
	class_destroy(compat_class);
}

module_init(compat_init);
module_exit(compat_exit);

MODULE_DESCRIPTION("snapblk test module exercising kmod/compat.h");
MODULE_LICENSE("GPL");
