// SPDX-License-Identifier: GPL-2.0
/*
 * Clone source: the hypervisor's ACPI VM generation ID, through the
 * kernel's own vmgenid driver.
 *
 * The driver (built in on Debian: CONFIG_VMGENID=y) owns the ACPI device.
 * When the hypervisor changes the ID it runs, from the ACPI notify
 * workqueue, add_vmfork_randomness(): the new ID is mixed in, the crng is
 * reseeded, "crng reseeded due to virtual machine fork" is logged, then
 * the vmfork notifier chain runs.  We sit on that chain
 * (register_random_vmfork_notifier(), exported), so when we run the RNG
 * is already reseeded and we only bump the generation and tell userspace.
 *
 * The chain passes no ID.  To name the clone (and to recognise the same
 * clone reported by the generation page as well) we read the ID where the
 * driver reads it: the 16 bytes at the address the ACPI device's "ADDR"
 * method returns.  If there is no such device the ID is drawn from the
 * just-reseeded RNG instead.
 */
#include "snapblk.h"

#include <linux/acpi.h>
#include <linux/io.h>
#include <linux/random.h>

/*
 * The hypervisor's ID, mapped at load (NULL if no ACPI VM generation ID
 * device), unmapped at unload after the notifier is gone.
 */
static void *acpi_id;
static bool registered;

#ifdef CONFIG_ACPI
/* The HID and CID the stock driver binds to (drivers/virt/vmgenid.c). */
static const char *const vmgenid_hids[] = { "VM_GEN_COUNTER", "VMGENCTR" };

static void *map_acpi_id(void)
{
	struct acpi_buffer parsed = { ACPI_ALLOCATE_BUFFER, NULL };
	struct acpi_device *adev = NULL;
	union acpi_object *obj;
	void *virt = NULL;
	phys_addr_t phys;
	acpi_status status;
	int i;

	for (i = 0; i < ARRAY_SIZE(vmgenid_hids) && !adev; i++)
		adev = acpi_dev_get_first_match_dev(vmgenid_hids[i], NULL, -1);
	if (!adev)
		return NULL;
	status = acpi_evaluate_object(adev->handle, "ADDR", NULL, &parsed);
	if (ACPI_FAILURE(status))
		goto out;
	obj = parsed.pointer;
	if (!obj || obj->type != ACPI_TYPE_PACKAGE ||
	    obj->package.count != 2 ||
	    obj->package.elements[0].type != ACPI_TYPE_INTEGER ||
	    obj->package.elements[1].type != ACPI_TYPE_INTEGER)
		goto out;
	phys = obj->package.elements[0].integer.value |
	       (obj->package.elements[1].integer.value << 32);
	virt = memremap(phys, SNAPBLK_GENERATION_ID_LEN, MEMREMAP_WB);
	if (!virt)
		pr_warn("vmgenid: cannot map the generation ID at %pa\n",
			&phys);
out:
	ACPI_FREE(parsed.pointer);
	acpi_dev_put(adev);
	return virt;
}
#else
static void *map_acpi_id(void)
{
	return NULL;
}
#endif

static int vmfork_notify(struct notifier_block *nb, unsigned long action,
			 void *data)
{
	u8 id[SNAPBLK_GENERATION_ID_LEN];

	if (acpi_id)
		memcpy(id, acpi_id, sizeof(id));
	else
		get_random_bytes(id, sizeof(id));
	snapblk_clone_event(SNAPBLK_CLONE_SOURCE_VMGENID, id, true, NULL);
	return NOTIFY_DONE;
}

static struct notifier_block vmfork_nb = {
	.notifier_call = vmfork_notify,
};

bool snapblk_vmgenid_active(void)
{
	return registered && acpi_id;
}

int __init snapblk_vmgenid_init(void)
{
	u8 id[SNAPBLK_GENERATION_ID_LEN];
	int ret;

	if (!IS_ENABLED(CONFIG_VMGENID))
		return 0;
	acpi_id = map_acpi_id();
	if (acpi_id) {
		memcpy(id, acpi_id, sizeof(id));
		snapblk_clone_set_id(id);
	}
	ret = register_random_vmfork_notifier(&vmfork_nb);
	if (ret) {
		pr_err("vmgenid: cannot register the vmfork notifier: %d\n",
		       ret);
		if (acpi_id)
			memunmap(acpi_id);
		acpi_id = NULL;
		return ret;
	}
	registered = true;
	return 0;
}

void snapblk_vmgenid_exit(void)
{
	if (registered)
		unregister_random_vmfork_notifier(&vmfork_nb);
	registered = false;
	if (acpi_id)
		memunmap(acpi_id);
	acpi_id = NULL;
}
