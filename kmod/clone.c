// SPDX-License-Identifier: GPL-2.0
/*
 * Clone generation: the state every clone source updates, the forced RNG
 * reseed, and the order in which a clone is handled.
 *
 * A source (clone_vmgenid.c, clone_genpage.c, the netlink trigger)
 * reports the new generation ID.  Then
 *
 *   1. a report of the current ID is dropped (two sources reporting the
 *      same clone give one generation);
 *   2. the ID is mixed into the input pool (add_device_randomness()) and
 *      a crng reseed is forced with RNDRESEEDCRNG, unless the kernel's own
 *      vmgenid path has just reseeded.  This step takes no sleeping lock
 *      and allocates nothing, so that nobody reading clone state (or a
 *      publication in progress) can delay it; the generation page source
 *      runs it, and acknowledges the VMM, before anything else
 *      (snapblk_clone_reseed(), then snapblk_clone_publish());
 *   3. under snapblk_clone_mutex, the generation is bumped and published
 *      (gendev.c: mmap page, read, poll, sysfs, uevent) and
 *      SNAPBLK_EVENT_CLONE is multicast.
 *
 * Userspace therefore never hears of generation N before the RNG was
 * reseeded for it.  Documentation/clone.md states what runs before step 2.
 */
#include "snapblk.h"
#include "events.h"

#include <linux/file.h>
#include <linux/fs.h>
#include <linux/random.h>
#include <linux/spinlock.h>
#include <linux/timekeeping.h>
#include <uapi/linux/random.h>

/*
 * snapblk_clone_mutex serializes publications (step 3), so generation N
 * is announced before N + 1; it is held across the notifications, which
 * may sleep.  clone_lock, a spinlock never held across anything that
 * sleeps, protects cur_id, cur_generation and clone_stats: readers take
 * only it, so they never wait for a publication.  The generation and
 * source that userspace maps live in the page of gendev.c.
 */
static DEFINE_MUTEX(snapblk_clone_mutex);
static DEFINE_SPINLOCK(clone_lock);
static u8 cur_id[SNAPBLK_GENERATION_ID_LEN];
static struct snapblk_clone_stats clone_stats;
static u64 cur_generation;

/*
 * An open /dev/urandom, for RNDRESEEDCRNG: the random driver's documented
 * way to force a reseed, and the only exported one.  Opened at module
 * load, in the context of insmod; kept until unload.  NULL if it could
 * not be opened (clones then only mix the ID in and say so).
 */
static struct file *urandom;

static const char *const source_names[] = {
	[SNAPBLK_CLONE_SOURCE_UNSPEC] = "none",
	[SNAPBLK_CLONE_SOURCE_VMGENID] = "vmgenid",
	[SNAPBLK_CLONE_SOURCE_GENPAGE] = "genpage",
	[SNAPBLK_CLONE_SOURCE_TRIGGER] = "trigger",
};

const char *snapblk_clone_source_name(u32 source)
{
	if (source >= ARRAY_SIZE(source_names))
		return "unknown";
	return source_names[source];
}

/*
 * Force a crng reseed.  random_ioctl() checks capable(CAP_SYS_ADMIN) of
 * the caller: the netlink trigger checked it already, and the IRQ thread
 * and the ACPI notify worker are kernel threads, which have it.
 */
static int force_reseed(void)
{
	if (!urandom)
		return -ENODEV;
	return urandom->f_op->unlocked_ioctl(urandom, RNDRESEEDCRNG, 0);
}

/* Is @id the current generation ID? */
static bool is_current(const u8 *id)
{
	bool ret;

	spin_lock(&clone_lock);
	ret = !memcmp(id, cur_id, sizeof(cur_id));
	spin_unlock(&clone_lock);
	return ret;
}

/*
 * Step 2: mix @id in and force a crng reseed.  Returns SNAPBLK_RESEED_*.
 * Takes no sleeping lock and allocates nothing (see the top of the file).
 */
u32 snapblk_clone_reseed(const u8 *id)
{
	int ret;

	add_device_randomness(id, SNAPBLK_GENERATION_ID_LEN);
	ret = force_reseed();
	if (ret) {
		pr_warn_ratelimited("clone: forced RNG reseed failed: %d\n", ret);
		return SNAPBLK_RESEED_FAILED;
	}
	return SNAPBLK_RESEED_FORCED;
}

/*
 * Step 3: count and publish the clone with ID @id, for which the RNG was
 * reseeded as @reseed says.  The generation after the report goes to
 * @generation (unchanged for a duplicate).  May sleep.
 */
void snapblk_clone_publish(u32 source, const u8 *id, u32 reseed,
			   u64 *generation)
{
	u64 gen;
	bool dup;

	mutex_lock(&snapblk_clone_mutex);
	spin_lock(&clone_lock);
	clone_stats.events++;
	dup = !memcmp(id, cur_id, sizeof(cur_id));
	if (dup) {
		clone_stats.duplicates++;
	} else {
		if (reseed == SNAPBLK_RESEED_FAILED)
			clone_stats.reseed_failures++;
		else if (reseed == SNAPBLK_RESEED_FORCED)
			clone_stats.reseeds++;
		memcpy(cur_id, id, sizeof(cur_id));
		cur_generation++;
		clone_stats.last_source = source;
	}
	gen = cur_generation;
	spin_unlock(&clone_lock);
	if (dup) {
		pr_debug("clone: %s reported the current ID again\n",
			 snapblk_clone_source_name(source));
		goto out;
	}
	snapblk_gendev_publish(gen, source, reseed, ktime_get_boottime_ns());
	snapblk_event_clone(gen, source, reseed);
	/* Rate-limited: a storm of triggers must not flood the log. */
	pr_info_ratelimited("clone: generation %llu from %s, RNG %s\n", gen,
			    snapblk_clone_source_name(source),
			    reseed == SNAPBLK_RESEED_FAILED ?
			    "NOT reseeded" : "reseeded");
out:
	mutex_unlock(&snapblk_clone_mutex);
	if (generation)
		*generation = gen;
}

/*
 * Report a clone.  @id is the new generation ID.  @kernel_reseeded: the
 * caller knows the kernel reseeded with @id already (vmgenid).  Returns
 * the generation after the report in @generation (unchanged for a
 * duplicate), and -EIO when the forced reseed failed.  May sleep.
 */
int snapblk_clone_event(u32 source, const u8 *id, bool kernel_reseeded,
			u64 *generation)
{
	u32 reseed = SNAPBLK_RESEED_KERNEL;

	/* A duplicate needs no reseed; publish() counts it. */
	if (!kernel_reseeded && !is_current(id))
		reseed = snapblk_clone_reseed(id);
	snapblk_clone_publish(source, id, reseed, generation);
	return reseed == SNAPBLK_RESEED_FAILED ? -EIO : 0;
}

/* The hypervisor's ID at load time: not a clone, the current ID. */
void snapblk_clone_set_id(const u8 *id)
{
	spin_lock(&clone_lock);
	memcpy(cur_id, id, sizeof(cur_id));
	spin_unlock(&clone_lock);
}

void snapblk_clone_get(u64 *generation, u8 *id, struct snapblk_clone_stats *st)
{
	spin_lock(&clone_lock);
	if (generation)
		*generation = cur_generation;
	if (id)
		memcpy(id, cur_id, sizeof(cur_id));
	if (st)
		*st = clone_stats;
	spin_unlock(&clone_lock);
}

u32 snapblk_clone_sources(void)
{
	u32 mask = 1U << SNAPBLK_CLONE_SOURCE_TRIGGER;

	if (snapblk_vmgenid_active())
		mask |= 1U << SNAPBLK_CLONE_SOURCE_VMGENID;
	if (snapblk_genpage_active())
		mask |= 1U << SNAPBLK_CLONE_SOURCE_GENPAGE;
	return mask;
}

int __init snapblk_clone_init(void)
{
	int ret;

	urandom = filp_open("/dev/urandom", O_RDONLY, 0);
	if (IS_ERR(urandom)) {
		pr_warn("cannot open /dev/urandom (%ld): clones will not force an RNG reseed\n",
			PTR_ERR(urandom));
		urandom = NULL;
	}
	ret = snapblk_gendev_init();
	if (ret)
		goto err_file;
	ret = snapblk_vmgenid_init();
	if (ret)
		goto err_gendev;
	ret = snapblk_genpage_init();
	if (ret)
		goto err_vmgenid;
	return 0;

err_vmgenid:
	snapblk_vmgenid_exit();
err_gendev:
	snapblk_gendev_exit();
err_file:
	if (urandom)
		fput(urandom);
	return ret;
}

/* Sources first, so that no event arrives once the outputs are gone. */
void snapblk_clone_exit(void)
{
	snapblk_genpage_exit();
	snapblk_vmgenid_exit();
	snapblk_gendev_exit();
	if (urandom)
		fput(urandom);
}
