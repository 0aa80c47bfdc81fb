/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel API differences between the supported kernels (Debian's 6.1 LTS
 * and 6.12 LTS).  Every other file calls the snapblk_* wrappers below and
 * never tests a kernel version itself.
 *
 * Each entry names the release that changed the API and, where the change
 * left a macro behind, tests for that macro rather than for a version
 * number, so that distribution backports are picked up.
 */
#ifndef SNAPBLK_COMPAT_H
#define SNAPBLK_COMPAT_H

#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/device/class.h>
#include <linux/shrinker.h>
#include <linux/slab.h>

/*
 * class_create(): v6.4 dropped the struct module * argument (commit
 * 1aaba11da9aa "driver core: class: remove module * from
 * class_create()").  Before that, class_create() was a macro.
 */
#ifdef class_create
#define snapblk_class_create(name)	class_create(THIS_MODULE, name)
#else
#define snapblk_class_create(name)	class_create(name)
#endif

/*
 * block_device_operations ->open/->release: v6.5 passes the gendisk and a
 * blk_mode_t instead of the block_device and an fmode_t (commits
 * d32e2bf83791 "block: pass a gendisk to ->open" and 05bdb9965305 "block:
 * replace fmode_t with a block-specific type for block open flags", which
 * added BLK_OPEN_READ).  A driver writes its handlers against the gendisk,
 * int foo(struct gendisk *) and void bar(struct gendisk *), and
 *
 *	SNAPBLK_BDEV_OPEN_ADAPTER(foo)		defines foo_bdev for .open
 *	SNAPBLK_BDEV_RELEASE_ADAPTER(bar)	defines bar_bdev for .release
 */
#ifdef BLK_OPEN_READ
#define SNAPBLK_BDEV_OPEN_ADAPTER(fn)					\
static int fn##_bdev(struct gendisk *disk, blk_mode_t mode)		\
{									\
	return fn(disk);						\
}

#define SNAPBLK_BDEV_RELEASE_ADAPTER(fn)				\
static void fn##_bdev(struct gendisk *disk)				\
{									\
	fn(disk);							\
}
#else
#define SNAPBLK_BDEV_OPEN_ADAPTER(fn)					\
static int fn##_bdev(struct block_device *bdev, fmode_t mode)		\
{									\
	return fn(bdev->bd_disk);					\
}

#define SNAPBLK_BDEV_RELEASE_ADAPTER(fn)				\
static void fn##_bdev(struct gendisk *disk, fmode_t mode)		\
{									\
	fn(disk);							\
}
#endif

/*
 * Queue limits and features.  v6.9 made blk_mq_alloc_disk() take the
 * initial struct queue_limits (commit 27e32cd23fed "block: pass a
 * queue_limits argument to blk_mq_alloc_disk"), and v6.11 moved the
 * write-cache/FUA flags into queue_limits.features (commit 1122c0c1cc71
 * "block: move cache control settings out of queue->flags", which added
 * BLK_FEAT_WRITE_CACHE).  Kernels 6.9 and 6.10, which have the first change
 * but not the second, are not supported.
 *
 * On older kernels only these fields of @lim are applied: logical and
 * physical block size, max_hw_sectors, chunk_sectors, max_segments,
 * max_segment_size, io_opt (which also sets the disk's readahead to
 * twice it, as queue_limits do from v6.10).
 * Returns the disk or an ERR_PTR.
 */
static inline struct gendisk *
snapblk_alloc_disk(struct blk_mq_tag_set *set, struct queue_limits *lim,
		   bool write_cache, void *queuedata)
{
#ifdef BLK_FEAT_WRITE_CACHE
	if (write_cache)
		lim->features |= BLK_FEAT_WRITE_CACHE | BLK_FEAT_FUA;
	return blk_mq_alloc_disk(set, lim, queuedata);
#else
	struct gendisk *disk = blk_mq_alloc_disk(set, queuedata);
	struct request_queue *q;

	if (IS_ERR(disk))
		return disk;
	q = disk->queue;
	if (lim->logical_block_size)
		blk_queue_logical_block_size(q, lim->logical_block_size);
	if (lim->physical_block_size)
		blk_queue_physical_block_size(q, lim->physical_block_size);
	if (lim->max_hw_sectors)
		blk_queue_max_hw_sectors(q, lim->max_hw_sectors);
	if (lim->chunk_sectors)
		blk_queue_chunk_sectors(q, lim->chunk_sectors);
	if (lim->max_segments)
		blk_queue_max_segments(q, lim->max_segments);
	if (lim->max_segment_size)
		blk_queue_max_segment_size(q, lim->max_segment_size);
	if (lim->io_opt)
		blk_queue_io_opt(q, lim->io_opt);
	blk_queue_write_cache(q, write_cache, write_cache);
	return disk;
#endif
}

/*
 * Shrinkers: v6.7 replaced caller-embedded struct shrinker and
 * register_shrinker() with shrinker_alloc()/shrinker_register()/
 * shrinker_free() (commit c42d50aefd17 "mm: shrinker: add infrastructure
 * for dynamically allocating shrinker", which added SHRINKER_ALLOCATED).
 * Both paths hand out a struct shrinker the caller frees with
 * snapblk_shrinker_free().  Returns NULL on failure.
 */
static inline struct shrinker *
snapblk_shrinker_alloc(const char *name,
		       unsigned long (*count)(struct shrinker *,
					      struct shrink_control *),
		       unsigned long (*scan)(struct shrinker *,
					     struct shrink_control *))
{
	struct shrinker *s;

#ifdef SHRINKER_ALLOCATED
	s = shrinker_alloc(0, "%s", name);
	if (!s)
		return NULL;
	s->count_objects = count;
	s->scan_objects = scan;
	shrinker_register(s);
#else
	s = kzalloc(sizeof(*s), GFP_KERNEL);
	if (!s)
		return NULL;
	s->count_objects = count;
	s->scan_objects = scan;
	s->seeks = DEFAULT_SEEKS;
	if (register_shrinker(s, "%s", name)) {
		kfree(s);
		return NULL;
	}
#endif
	return s;
}

static inline void snapblk_shrinker_free(struct shrinker *s)
{
	if (!s)
		return;
#ifdef SHRINKER_ALLOCATED
	shrinker_free(s);
#else
	unregister_shrinker(s);
	kfree(s);
#endif
}

#endif /* SNAPBLK_COMPAT_H */
