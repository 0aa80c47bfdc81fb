// SPDX-License-Identifier: GPL-2.0
/*
 * A deliberately broken module: it WARNs when loaded.  make check loads it
 * in the test VM and expects selftests/run-vm to fail the run, which shows
 * that a module that warns cannot pass the suite.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bug.h>
#include <linux/module.h>

static int __init snapblk_warn_init(void)
{
	WARN(1, "deliberate warning to check the VM runner\n");
	return 0;
}

static void __exit snapblk_warn_exit(void)
{
}

module_init(snapblk_warn_init);
module_exit(snapblk_warn_exit);

MODULE_DESCRIPTION("snapblk test module that WARNs on load");
MODULE_LICENSE("GPL");
