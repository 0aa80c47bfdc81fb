// SPDX-License-Identifier: GPL-2.0
/*
 * snapblk: chunked lazy block device and VM clone notification.
 *
 * Module entry points.  Each subsystem (control family, block devices,
 * chunk cache, fetch device, clone hook) has its own file with an
 * init/exit pair; this file only orders them and unwinds on failure.
 */
#include "snapblk.h"

#include <linux/module.h>

static int __init snapblk_init(void)
{
	int ret;

	ret = snapblk_genl_init();
	if (ret)
		goto err_out;

	pr_info("version %s loaded\n", SNAPBLK_VERSION);
	return 0;

err_out:
	pr_err("failed to load: %d\n", ret);
	return ret;
}

static void __exit snapblk_exit(void)
{
	snapblk_genl_exit();
	pr_info("unloaded\n");
}

module_init(snapblk_init);
module_exit(snapblk_exit);

MODULE_AUTHOR("The snapblk authors");
MODULE_DESCRIPTION("snapblk: chunked lazy block device and VM clone notification");
MODULE_LICENSE("GPL");
MODULE_VERSION(SNAPBLK_VERSION);
