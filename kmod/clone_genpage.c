// SPDX-License-Identifier: GPL-2.0
/*
 * Clone source: the paravirtual generation page, for VMMs without ACPI
 * (snaplaunch).  The VMM describes it on the kernel command line, like
 * virtio_mmio.device=:
 *
 *	snapblk.genpage=4K@0xADDR:IRQ
 *
 * The page layout and the VMM's side of the protocol are in
 * include/uapi/linux/snapblk.h (struct snapblk_genpage).
 *
 * The interrupt is requested threaded with no primary handler: the
 * hard interrupt only wakes the IRQ thread, which the IRQ core runs
 * SCHED_FIFO on the CPU the interrupt hit.  Returning from the interrupt
 * to the interrupted task therefore goes through the scheduler, which
 * picks the IRQ thread first: the thread mixes the ID in and forces the
 * reseed before that task runs another instruction, then writes
 * ack_generation, the VMM's signal to release its other vCPUs.  Neither
 * step takes a sleeping lock or allocates (clone.c), so nothing that reads
 * clone state can delay them; publishing the generation (uevent, netlink,
 * the mapped page) comes after.
 *
 * Unlike the vmgenid path, this one does not run the kernel's vmfork
 * notifier chain (add_vmfork_randomness() is not exported), so in-kernel
 * users of that chain (WireGuard drops its session keys there) are not
 * told.  Documentation/clone.md says what that means.
 */
#include "snapblk.h"

#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sizes.h>

static char *genpage;
module_param(genpage, charp, 0444);
MODULE_PARM_DESC(genpage,
		 "Paravirtual clone generation page and its interrupt, 4K@PHYSADDR:IRQ (default: none)");

/*
 * The mapped page and its interrupt, set up at load and torn down at
 * unload (free_irq() waits for a running thread).  gp_last is the VMM
 * generation last handled; only the IRQ thread touches it after load.
 */
static struct snapblk_genpage *gp;
static unsigned int gp_irq;
static u64 gp_last;

static irqreturn_t genpage_thread(int irq, void *data)
{
	u8 id[SNAPBLK_GENERATION_ID_LEN];
	u64 gen;

	u32 reseed = 0;

	/* The VMM writes the ID, then the generation with release. */
	gen = le64_to_cpu(smp_load_acquire(&gp->generation));
	memcpy(id, gp->id, sizeof(id));
	if (gen != gp_last)
		reseed = snapblk_clone_reseed(id);
	/* After the reseed: the VMM may now release its other vCPUs. */
	smp_store_release(&gp->ack_generation, cpu_to_le64(gen));
	if (gen != gp_last) {
		snapblk_clone_publish(SNAPBLK_CLONE_SOURCE_GENPAGE, id, reseed,
				      NULL);
		gp_last = gen;
	}
	return IRQ_HANDLED;
}

bool snapblk_genpage_active(void)
{
	return gp;
}

/* Parse "SIZE@ADDR:IRQ", SIZE and ADDR as memparse() reads them. */
static int parse_genpage(const char *s, phys_addr_t *addr, unsigned int *irq)
{
	unsigned long long size, base;
	char *p;

	size = memparse(s, &p);
	if (*p != '@')
		return -EINVAL;
	base = memparse(p + 1, &p);
	if (*p != ':' || kstrtouint(p + 1, 0, irq))
		return -EINVAL;
	if (size != SZ_4K || !PAGE_ALIGNED(base))
		return -EINVAL;
	*addr = base;
	return 0;
}

int __init snapblk_genpage_init(void)
{
	phys_addr_t addr;
	int ret;

	if (!genpage || !genpage[0])
		return 0;
	if (parse_genpage(genpage, &addr, &gp_irq)) {
		pr_err("genpage=%s: expected 4K@PHYSADDR:IRQ, PHYSADDR page aligned\n",
		       genpage);
		return -EINVAL;
	}
	gp = memremap(addr, SZ_4K, MEMREMAP_WB);
	if (!gp) {
		pr_err("genpage: cannot map %pa\n", &addr);
		return -ENOMEM;
	}
	if (le32_to_cpu(gp->magic) != SNAPBLK_GENPAGE_MAGIC ||
	    le32_to_cpu(gp->version) != SNAPBLK_GENPAGE_VERSION) {
		pr_err("genpage: no generation page at %pa (magic %#x version %u)\n",
		       &addr, le32_to_cpu(gp->magic),
		       le32_to_cpu(gp->version));
		ret = -ENODEV;
		goto err_unmap;
	}
	/* What the page holds now is this boot, not a clone. */
	gp_last = le64_to_cpu(READ_ONCE(gp->generation));
	snapblk_clone_set_id(gp->id);
	gp->guest_version = cpu_to_le32(SNAPBLK_GENPAGE_VERSION);
	/* guest_version before the VMM sees the acknowledgment. */
	smp_store_release(&gp->ack_generation, cpu_to_le64(gp_last));

	ret = request_threaded_irq(gp_irq, NULL, genpage_thread, IRQF_ONESHOT,
				   "snapblk-genpage", gp);
	if (ret) {
		pr_err("genpage: cannot request IRQ %u: %d\n", gp_irq, ret);
		goto err_unmap;
	}
	pr_info("genpage: generation page at %pa, IRQ %u\n", &addr, gp_irq);
	return 0;

err_unmap:
	memunmap(gp);
	gp = NULL;
	return ret;
}

void snapblk_genpage_exit(void)
{
	if (!gp)
		return;
	free_irq(gp_irq, gp);
	memunmap(gp);
	gp = NULL;
}
