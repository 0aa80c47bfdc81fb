// SPDX-License-Identifier: GPL-2.0
/*
 * The VMM's side of the snapblk generation page (struct snapblk_genpage,
 * Documentation/clone.md): a 4 KiB memslot at SL_GENPAGE and ISA IRQ
 * SL_GENPAGE_IRQ, described to the guest as
 * snapblk.genpage=4K@0xfeb00000:5 on its command line.
 *
 * The same page holds, at SL_VMGENID, the 16-byte ID of the ACPI VM
 * generation ID device (acpi.c), set to the same value: Linux's vmgenid
 * driver and snapblk's generation page then report one clone with one
 * ID, which snapblk counts once.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <linux/snapblk.h>

#include "snaplaunch.h"
#include "util.h"

static volatile struct snapblk_genpage *page(struct sl_vm *vm)
{
	return (volatile struct snapblk_genpage *)vm->genpage;
}

/* A new random ID, in the page and, the same, in the ACPI VMGenID. */
static void new_id(struct sl_vm *vm)
{
	uint8_t id[SNAPBLK_GENERATION_ID_LEN];

	if (getrandom(id, sizeof(id), 0) != sizeof(id))
		die(EXIT_FAIL, errno, NULL, "cannot draw a generation ID");
	memcpy((void *)page(vm)->id, id, sizeof(id));
	memcpy(vm->genpage + (SL_VMGENID - SL_GENPAGE), id, sizeof(id));
}

/* At boot: the magic, and this boot's ID at generation 0. */
void sl_genpage_init(struct sl_vm *vm)
{
	memset(vm->genpage, 0, 4096);
	page(vm)->magic = htole32(SNAPBLK_GENPAGE_MAGIC);
	page(vm)->version = htole32(SNAPBLK_GENPAGE_VERSION);
	new_id(vm);
}

/*
 * A clone, before its vCPU first runs: a new ID, then the next
 * generation, then the interrupt (an edge on the ISA line), then the
 * ACPI notification of the same ID (an edge on the GED's line).  The
 * guest acknowledges through ack_generation once it has reseeded.
 * Returns the new generation.
 */
uint64_t sl_genpage_clone(struct sl_vm *vm)
{
	uint64_t gen;

	new_id(vm);
	gen = le64toh(page(vm)->generation) + 1;
	__atomic_store_n(&page(vm)->generation, htole64(gen),
			 __ATOMIC_RELEASE);
	sl_irq_line(vm, SL_GENPAGE_IRQ, 1);
	sl_irq_line(vm, SL_GENPAGE_IRQ, 0);
	sl_irq_line(vm, SL_GED_IRQ, 1);
	sl_irq_line(vm, SL_GED_IRQ, 0);
	return gen;
}

/* What the guest acknowledged (0: it does not speak the protocol). */
uint64_t sl_genpage_acked(struct sl_vm *vm)
{
	return le64toh(__atomic_load_n(&page(vm)->ack_generation,
				       __ATOMIC_ACQUIRE));
}
