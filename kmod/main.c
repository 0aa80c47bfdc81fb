// SPDX-License-Identifier: GPL-2.0
/*
 * snapblk: chunked lazy block device and VM clone notification.
 *
 * Module entry points.  Each subsystem (control family, block devices,
 * chunk cache, fetch device, clone hook) has its own file with an
 * init/exit pair; this file only orders them and unwinds on failure.
 */
#include "snapblk.h"
#include "dev.h"
#include "fetch.h"

#include <linux/module.h>

/*
 * The control family is registered last and unregistered first: no
 * command (CLONE_TRIGGER, STATUS, ...) can run before everything it may
 * touch is set up, or after any of it is torn down.  The character
 * devices and clone sources before it only produce events, which the
 * family drops while it is not registered (genl.c).
 */
static int __init snapblk_init(void)
{
	int ret;

	ret = snapblk_cache_init();
	if (ret)
		goto err_out;
	ret = snapblk_fetch_init();
	if (ret)
		goto err_cache;
	ret = snapblk_dev_init();
	if (ret)
		goto err_fetch;
	ret = snapblk_clone_init();
	if (ret)
		goto err_dev;
	ret = snapblk_genl_init();
	if (ret)
		goto err_clone;

	pr_info("version %s loaded\n", SNAPBLK_VERSION);
	return 0;

err_clone:
	snapblk_clone_exit();
err_dev:
	snapblk_dev_exit();
err_fetch:
	snapblk_fetch_exit();
err_cache:
	snapblk_cache_exit();
err_out:
	pr_err("failed to load: %d\n", ret);
	return ret;
}

static void __exit snapblk_exit(void)
{
	snapblk_genl_exit();
	snapblk_clone_exit();
	snapblk_dev_exit();
	snapblk_fetch_exit();
	snapblk_cache_exit();
	pr_info("unloaded\n");
}

module_init(snapblk_init);
module_exit(snapblk_exit);

MODULE_AUTHOR("The snapblk authors");
MODULE_DESCRIPTION("snapblk: chunked lazy block device and VM clone notification");
MODULE_LICENSE("GPL");
MODULE_VERSION(SNAPBLK_VERSION);
/* The chunk cipher; modprobe loads it first where it is a module (6.1). */
MODULE_SOFTDEP("pre: ctr");
