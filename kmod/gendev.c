// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/snapblk-gen and its sysfs attributes: how userspace learns of a
 * clone.  The layout and the read/poll/mmap rules are in
 * include/uapi/linux/snapblk.h; the attributes in
 * Documentation/ABI/testing/sysfs-class-misc-snapblk-gen.
 */
#include "snapblk.h"

#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

/*
 * The published generation.  gen_page is allocated at load, freed at
 * unload; a mapping holds the file and so the module (no mapping outlives
 * it), and its own page reference besides.  Written only by
 * snapblk_gendev_publish(), under snapblk_clone_mutex, in a seqcount
 * fashion (seq odd while writing); read locklessly.
 */
static struct page *gen_page;
static struct snapblk_gen_info *gen_info;

/* Readers of /dev/snapblk-gen waiting for the generation to change. */
static DECLARE_WAIT_QUEUE_HEAD(gen_wait);

/* Set at unload before the device goes: sysfs readers get ENODEV. */
static bool gen_dying;

static u64 gen_current(void)
{
	return READ_ONCE(gen_info->generation);
}

/* A consistent copy of the page. */
static void gen_snapshot(struct snapblk_gen_info *out)
{
	u32 seq;

	do {
		/* Pairs with the release of the last seq store in publish. */
		seq = smp_load_acquire(&gen_info->seq);
		memcpy(out, gen_info, sizeof(*out));
		/* Read the fields before re-reading seq (pairs with smp_wmb). */
		smp_rmb();
	} while ((seq & 1) || READ_ONCE(gen_info->seq) != seq);
}

/* Per open file: the generation it last returned.  Lives open..release. */
struct gen_file {
	u64 seen;
};

static int gen_open(struct inode *inode, struct file *file)
{
	struct gen_file *gf;

	if (file->f_mode & FMODE_WRITE)
		return -EPERM;
	gf = kzalloc(sizeof(*gf), GFP_KERNEL);
	if (!gf)
		return -ENOMEM;
	gf->seen = gen_current();
	file->private_data = gf;
	return nonseekable_open(inode, file);
}

static int gen_release(struct inode *inode, struct file *file)
{
	kfree(file->private_data);
	return 0;
}

static ssize_t gen_read(struct file *file, char __user *buf, size_t count,
			loff_t *ppos)
{
	struct gen_file *gf = file->private_data;
	struct snapblk_gen_info info;
	int ret;

	if (count < sizeof(info))
		return -EINVAL;
	while (gen_current() == gf->seen) {
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		ret = wait_event_interruptible(gen_wait,
					       gen_current() != gf->seen);
		if (ret)
			return ret;
	}
	gen_snapshot(&info);
	if (copy_to_user(buf, &info, sizeof(info)))
		return -EFAULT;
	gf->seen = info.generation;
	return sizeof(info);
}

static __poll_t gen_poll(struct file *file, poll_table *wait)
{
	struct gen_file *gf = file->private_data;

	poll_wait(file, &gen_wait, wait);
	if (gen_current() != gf->seen)
		return EPOLLIN | EPOLLRDNORM | EPOLLPRI;
	return 0;
}

/*
 * One page, shared and read-only.  The file is never open for writing
 * (gen_open), so the core turns a shared mapping into VM_MAYSHARE without
 * VM_MAYWRITE and mprotect() cannot make it writable; private mappings
 * are refused because a write fault would copy the page and silently
 * stop tracking.
 */
static int gen_mmap(struct file *file, struct vm_area_struct *vma)
{
	if (vma->vm_pgoff || vma->vm_end - vma->vm_start != PAGE_SIZE)
		return -EINVAL;
	if (!(vma->vm_flags & VM_MAYSHARE) || (vma->vm_flags & VM_WRITE))
		return -EPERM;
	return vm_insert_page(vma, vma->vm_start, gen_page);
}

static const struct file_operations gen_fops = {
	.owner = THIS_MODULE,
	.open = gen_open,
	.release = gen_release,
	.read = gen_read,
	.poll = gen_poll,
	.mmap = gen_mmap,
};

static const char *const reseed_names[] = {
	[SNAPBLK_RESEED_UNSPEC] = "none",
	[SNAPBLK_RESEED_FORCED] = "forced",
	[SNAPBLK_RESEED_KERNEL] = "kernel",
	[SNAPBLK_RESEED_FAILED] = "failed",
};

static ssize_t generation_show(struct device *d, struct device_attribute *a,
			       char *buf)
{
	if (READ_ONCE(gen_dying))
		return -ENODEV;
	return sysfs_emit(buf, "%llu\n", gen_current());
}
static DEVICE_ATTR_RO(generation);

static ssize_t generation_id_show(struct device *d,
				  struct device_attribute *a, char *buf)
{
	u8 id[SNAPBLK_GENERATION_ID_LEN];

	snapblk_clone_get(NULL, id, NULL);
	return sysfs_emit(buf, "%pUb\n", id);
}

/* Root only: the ID is mixed into the RNG and is nobody else's business. */
static DEVICE_ATTR_ADMIN_RO(generation_id);

static ssize_t source_show(struct device *d, struct device_attribute *a,
			   char *buf)
{
	struct snapblk_gen_info info;

	gen_snapshot(&info);
	return sysfs_emit(buf, "%s\n", snapblk_clone_source_name(info.source));
}
static DEVICE_ATTR_RO(source);

static ssize_t reseed_show(struct device *d, struct device_attribute *a,
			   char *buf)
{
	struct snapblk_gen_info info;

	gen_snapshot(&info);
	if (info.reseed >= ARRAY_SIZE(reseed_names))
		return -EIO;
	return sysfs_emit(buf, "%s\n", reseed_names[info.reseed]);
}
static DEVICE_ATTR_RO(reseed);

static ssize_t sources_show(struct device *d, struct device_attribute *a,
			    char *buf)
{
	u32 mask = snapblk_clone_sources();
	int len = 0;
	u32 s;

	for (s = 1; s <= SNAPBLK_CLONE_SOURCE_MAX; s++)
		if (mask & (1U << s))
			len += sysfs_emit_at(buf, len, "%s%s", len ? " " : "",
					     snapblk_clone_source_name(s));
	return len + sysfs_emit_at(buf, len, "\n");
}
static DEVICE_ATTR_RO(sources);

static ssize_t stat_show(struct device *d, struct device_attribute *a,
			 char *buf);
static struct device_attribute dev_attr_events = __ATTR(events, 0444,
							 stat_show, NULL);
static struct device_attribute dev_attr_duplicates =
	__ATTR(duplicates, 0444, stat_show, NULL);
static struct device_attribute dev_attr_reseeds = __ATTR(reseeds, 0444,
							  stat_show, NULL);
static struct device_attribute dev_attr_reseed_failures =
	__ATTR(reseed_failures, 0444, stat_show, NULL);

/* The counters of struct snapblk_clone_stats, one attribute each. */
static ssize_t stat_show(struct device *d, struct device_attribute *a,
			 char *buf)
{
	struct snapblk_clone_stats st;
	u64 v;

	snapblk_clone_get(NULL, NULL, &st);
	if (a == &dev_attr_events)
		v = st.events;
	else if (a == &dev_attr_duplicates)
		v = st.duplicates;
	else if (a == &dev_attr_reseeds)
		v = st.reseeds;
	else
		v = st.reseed_failures;
	return sysfs_emit(buf, "%llu\n", v);
}

static struct attribute *gen_attrs[] = {
	&dev_attr_generation.attr,
	&dev_attr_generation_id.attr,
	&dev_attr_source.attr,
	&dev_attr_reseed.attr,
	&dev_attr_sources.attr,
	&dev_attr_events.attr,
	&dev_attr_duplicates.attr,
	&dev_attr_reseeds.attr,
	&dev_attr_reseed_failures.attr,
	NULL,
};
ATTRIBUTE_GROUPS(gen);

static struct miscdevice gen_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "snapblk-gen",
	.fops = &gen_fops,
	.mode = 0444,
	.groups = gen_groups,
};

/*
 * Publish generation @generation (under snapblk_clone_mutex): update the
 * page, wake readers and pollers of /dev/snapblk-gen and of the sysfs
 * attribute "generation", and send a KOBJ_CHANGE uevent.
 */
void snapblk_gendev_publish(u64 generation, u32 source, u32 reseed,
			    u64 time_ns)
{
	char gen_env[48], src_env[48];
	char *envp[3];

	WRITE_ONCE(gen_info->seq, gen_info->seq + 1);
	/* seq odd before any field changes (pairs with gen_snapshot()). */
	smp_wmb();
	gen_info->source = source;
	gen_info->reseed = reseed;
	gen_info->clone_time_ns = time_ns;
	WRITE_ONCE(gen_info->generation, generation);
	/* Fields before seq is even again (pairs with the acquire load). */
	smp_store_release(&gen_info->seq, gen_info->seq + 1);

	wake_up_interruptible_all(&gen_wait);
	sysfs_notify(&gen_misc.this_device->kobj, NULL, "generation");
	snprintf(gen_env, sizeof(gen_env), "SNAPBLK_GENERATION=%llu",
		 generation);
	snprintf(src_env, sizeof(src_env), "SNAPBLK_CLONE_SOURCE=%s",
		 snapblk_clone_source_name(source));
	envp[0] = gen_env;
	envp[1] = src_env;
	envp[2] = NULL;
	kobject_uevent_env(&gen_misc.this_device->kobj, KOBJ_CHANGE, envp);
}

int __init snapblk_gendev_init(void)
{
	int ret;

	gen_page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!gen_page)
		return -ENOMEM;
	gen_info = page_address(gen_page);
	ret = misc_register(&gen_misc);
	if (ret) {
		pr_err("cannot register /dev/%s: %d\n", gen_misc.name, ret);
		__free_page(gen_page);
	}
	return ret;
}

/*
 * No file is open and no mapping left (each holds a module reference).
 * Pollers of the sysfs
 * attribute are woken and find it gone (ENODEV) instead of sleeping on a
 * removed file until their timeout.
 */
void snapblk_gendev_exit(void)
{
	WRITE_ONCE(gen_dying, true);
	sysfs_notify(&gen_misc.this_device->kobj, NULL, "generation");
	misc_deregister(&gen_misc);
	put_page(gen_page);
}
