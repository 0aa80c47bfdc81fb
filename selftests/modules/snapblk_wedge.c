// SPDX-License-Identifier: GPL-2.0
/*
 * A deliberately wedging module: loading it halts its CPU for good with
 * interrupts off, so that a one-vCPU test VM stops dead, as emulated
 * nested SVM sometimes makes it.  make check loads it and expects
 * selftests/run-vm --stall-timeout to notice and stop the VM (exit 126).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/irqflags.h>
#include <linux/module.h>

static int __init snapblk_wedge_init(void)
{
	pr_info("halting this CPU with interrupts off\n");
	local_irq_disable();
	for (;;)
		native_halt();
	return 0;
}

module_init(snapblk_wedge_init);

MODULE_DESCRIPTION("snapblk test module that wedges its CPU on load");
MODULE_LICENSE("GPL");
