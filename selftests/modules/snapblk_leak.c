// SPDX-License-Identifier: GPL-2.0
/*
 * A deliberately leaking module: every load allocates leak_bytes (256 by
 * default) that are never freed.  The module_load selftest loads it with
 * leak_bytes=0 as the control of its leak check (what loading any module
 * costs the kernel), and with the default to prove the check sees a leak
 * of one object per load.  The leak is marked as intended for kmemleak
 * (kmemleak_not_leak()), so that the debug kernel's kmemleak check
 * (scripts/check-debug) does not report the control; kmemleak_report=1
 * lets kmemleak find it, to prove that check works.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kmemleak.h>
#include <linux/module.h>
#include <linux/slab.h>

static unsigned int leak_bytes = 256;
module_param(leak_bytes, uint, 0444);
MODULE_PARM_DESC(leak_bytes, "Bytes to allocate and never free on load (0: none)");

static bool kmemleak_report;
module_param(kmemleak_report, bool, 0444);
MODULE_PARM_DESC(kmemleak_report, "Let kmemleak report the leak (default: marked as intended)");

static void *leaked;

static int __init snapblk_leak_init(void)
{
	if (!leak_bytes)
		return 0;
	leaked = kmalloc(leak_bytes, GFP_KERNEL);
	if (!leaked)
		return -ENOMEM;
	if (!kmemleak_report)
		kmemleak_not_leak(leaked);
	return 0;
}

static void __exit snapblk_leak_exit(void)
{
	/* Deliberately no kfree(leaked). */
}

module_init(snapblk_leak_init);
module_exit(snapblk_leak_exit);

MODULE_DESCRIPTION("snapblk test module that leaks leak_bytes bytes per load");
MODULE_LICENSE("GPL");
