// SPDX-License-Identifier: GPL-2.0
/*
 * Clone generation: the state every clone source updates, the forced RNG
 * reseed, and the order in which a clone is handled.
 *
 * A source (clone_vmgenid.c, clone_genpage.c, the netlink trigger) calls
 * snapblk_clone_event() with the new generation ID.  Under
 * snapblk_clone_mutex it then
 *
 *   1. drops the report if the ID is the current one (two sources
 *      reporting the same clone give one generation);
 *   2. mixes the ID into the input pool (add_device_randomness()) and
 *      forces a crng reseed with RNDRESEEDCRNG, unless the kernel's own
 *      vmgenid path has just reseeded;
 *   3. bumps the generation and publishes it (gendev.c: mmap page, read,
 *      poll, sysfs, uevent) and multicasts SNAPBLK_EVENT_CLONE.
 *
 * Userspace therefore never hears of generation N before the RNG was
 * reseeded for it.  Documentation/clone.md states what runs before step 2.
 */
#include "snapblk.h"

#include <linux/file.h>
#include <linux/fs.h>
#include <linux/random.h>
#include <linux/timekeeping.h>
#include <uapi/linux/random.h>

/*
 * snapblk_clone_mutex serializes clone events and protects cur_id and
 * clone_stats; it is held across the reseed and the notifications (all
 * of which may sleep), so generation N is announced before N + 1.  The
 * generation and source that readers see live in the page of gendev.c.
 */
static DEFINE_MUTEX(snapblk_clone_mutex);
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

/*
 * Report a clone.  @id is the new generation ID.  @kernel_reseeded: the
 * caller knows the kernel reseeded with @id already (vmgenid).  Returns
 * the generation after the report in @generation (unchanged for a
 * duplicate).  May sleep.
 */
int snapblk_clone_event(u32 source, const u8 *id, bool kernel_reseeded,
			u64 *generation)
{
	u32 reseed;
	int ret = 0;

	mutex_lock(&snapblk_clone_mutex);
	clone_stats.events++;
	if (!memcmp(id, cur_id, sizeof(cur_id))) {
		clone_stats.duplicates++;
		pr_debug("clone: %s reported the current ID again\n",
			 snapblk_clone_source_name(source));
		goto out;
	}

	if (kernel_reseeded) {
		reseed = SNAPBLK_RESEED_KERNEL;
	} else {
		add_device_randomness(id, SNAPBLK_GENERATION_ID_LEN);
		ret = force_reseed();
		if (ret) {
			clone_stats.reseed_failures++;
			reseed = SNAPBLK_RESEED_FAILED;
			pr_warn("clone: forced RNG reseed failed: %d\n", ret);
		} else {
			clone_stats.reseeds++;
			reseed = SNAPBLK_RESEED_FORCED;
		}
	}
	memcpy(cur_id, id, sizeof(cur_id));
	cur_generation++;
	clone_stats.last_source = source;
	snapblk_gendev_publish(cur_generation, source, reseed,
			       ktime_get_boottime_ns());
	snapblk_genl_clone_event(cur_generation, source, reseed);
	pr_info("clone: generation %llu from %s, RNG %s\n", cur_generation,
		snapblk_clone_source_name(source),
		reseed == SNAPBLK_RESEED_FAILED ? "NOT reseeded" : "reseeded");
out:
	if (generation)
		*generation = cur_generation;
	mutex_unlock(&snapblk_clone_mutex);
	return ret;
}

/* The hypervisor's ID at load time: not a clone, the current ID. */
void snapblk_clone_set_id(const u8 *id)
{
	mutex_lock(&snapblk_clone_mutex);
	memcpy(cur_id, id, sizeof(cur_id));
	mutex_unlock(&snapblk_clone_mutex);
}

void snapblk_clone_get(u64 *generation, u8 *id, struct snapblk_clone_stats *st)
{
	mutex_lock(&snapblk_clone_mutex);
	if (generation)
		*generation = cur_generation;
	if (id)
		memcpy(id, cur_id, sizeof(cur_id));
	if (st)
		*st = clone_stats;
	mutex_unlock(&snapblk_clone_mutex);
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
