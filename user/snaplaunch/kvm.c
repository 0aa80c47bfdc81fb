// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/kvm: open it, check what we need, create the VM (memory, in-kernel
 * irqchip and PIT) and its vCPU (with the host's supported CPUID, which
 * carries the KVM leaves that make the guest use kvmclock).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "snaplaunch.h"
#include "util.h"

static const struct {
	int cap;
	const char *name;
} needed_caps[] = {
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP (in-kernel interrupt controller)" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2 (in-kernel PIT)" },
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	{ KVM_CAP_ADJUST_CLOCK, "KVM_CAP_ADJUST_CLOCK (snapshots of kvmclock)" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT (snapshots)" },
	{ KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS (snapshots)" },
	{ KVM_CAP_DEBUGREGS, "KVM_CAP_DEBUGREGS (snapshots)" },
	{ KVM_CAP_XSAVE, "KVM_CAP_XSAVE (snapshots)" },
	{ KVM_CAP_XCRS, "KVM_CAP_XCRS (snapshots)" },
};

void sl_kvm_open(struct sl_vm *vm)
{
	size_t i;
	int v;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		if (errno == ENOENT)
			die(EXIT_FAIL, errno, "load kvm_intel or kvm_amd; in a "
			    "VM, the host must offer nested virtualisation",
			    "cannot open /dev/kvm");
		die(EXIT_FAIL, errno, errno == EACCES ? "run as root, or "
		    "join the group that owns /dev/kvm (usually 'kvm')" :
		    NULL, "cannot open /dev/kvm");
	}
	v = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION)
		die(EXIT_FAIL, 0, NULL, "KVM API version %d, need %d", v,
		    KVM_API_VERSION);
	for (i = 0; i < sizeof(needed_caps) / sizeof(needed_caps[0]); i++)
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION,
			  needed_caps[i].cap) <= 0)
			die(EXIT_FAIL, 0, "use a newer kernel or another host",
			    "this KVM lacks %s", needed_caps[i].name);
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if ((long)vm->run_size <= 0)
		die(EXIT_FAIL, errno, NULL, "KVM_GET_VCPU_MMAP_SIZE");
}

static void set_slot(struct sl_vm *vm, unsigned int slot, uint64_t gpa,
		     uint64_t size, void *host)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)host,
	};

	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r))
		die(EXIT_FAIL, errno, NULL, "cannot give the guest its memory");
}

/*
 * Create the VM with @mem (mem_size bytes, page aligned) as its RAM at
 * GPA 0, the generation page, the in-kernel irqchip and PIT.
 */
void sl_vm_create(struct sl_vm *vm, uint64_t mem_size, uint8_t *mem)
{
	struct kvm_pit_config pit = { .flags = 0 };

	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		die(EXIT_FAIL, errno, NULL, "cannot create a VM");
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)SL_TSS) ||
	    ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR,
		  &(uint64_t){ SL_IDENTITY_MAP }))
		die(EXIT_FAIL, errno, NULL, "cannot set the TSS address");
	vm->mem = mem;
	vm->mem_size = mem_size;
	set_slot(vm, 0, 0, mem_size, mem);
	vm->genpage = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vm->genpage == MAP_FAILED)
		die(EXIT_FAIL, errno, NULL, "cannot allocate the generation page");
	set_slot(vm, 1, SL_GENPAGE, 4096, vm->genpage);
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0))
		die(EXIT_FAIL, errno, NULL, "cannot create the in-kernel irqchip");
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit))
		die(EXIT_FAIL, errno, NULL, "cannot create the in-kernel PIT");
}

/*
 * What KVM supports, adjusted as every VMM does: say that this is a
 * hypervisor (CPUID.1:ECX[31]; without it Linux never looks at the KVM
 * leaves and so never uses kvmclock), offer the TSC-deadline timer that
 * KVM's LAPIC emulates but KVM_GET_SUPPORTED_CPUID leaves out
 * (CPUID.1:ECX[24], with KVM_CAP_TSC_DEADLINE_TIMER: one MSR write per
 * timer instead of the LAPIC's count), and offer no PMU (leaf 0xa).
 */
static void filter_cpuid(struct sl_vm *vm, struct kvm_cpuid2 *cpuid)
{
	bool deadline = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION,
			      KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	uint32_t i;

	for (i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		switch (e->function) {
		case 1:
			e->ecx |= 1U << 31;
			if (deadline)
				e->ecx |= 1U << 24;
			break;
		case 0xa:
			e->eax = e->ebx = e->ecx = e->edx = 0;
			break;
		}
	}
}

void sl_vcpu_create(struct sl_vm *vm)
{
	int n = 100;

	vm->vcpu_fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, 0);
	if (vm->vcpu_fd < 0)
		die(EXIT_FAIL, errno, NULL, "cannot create the vCPU");
	vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       vm->vcpu_fd, 0);
	if (vm->run == MAP_FAILED)
		die(EXIT_FAIL, errno, NULL, "cannot map the vCPU run area");
	for (;;) {
		vm->cpuid = calloc(1, sizeof(*vm->cpuid) +
				   n * sizeof(struct kvm_cpuid_entry2));
		if (!vm->cpuid)
			die(EXIT_FAIL, ENOMEM, NULL, "cannot allocate CPUID");
		vm->cpuid->nent = n;
		if (!ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, vm->cpuid))
			break;
		if (errno != E2BIG)
			die(EXIT_FAIL, errno, NULL, "KVM_GET_SUPPORTED_CPUID");
		free(vm->cpuid);
		n *= 2;
	}
	filter_cpuid(vm, vm->cpuid);
	if (ioctl(vm->vcpu_fd, KVM_SET_CPUID2, vm->cpuid))
		die(EXIT_FAIL, errno, NULL, "cannot set the vCPU's CPUID");
}

void sl_irq_line(struct sl_vm *vm, unsigned int irq, int level)
{
	struct kvm_irq_level l = { .irq = irq, .level = level };

	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &l))
		die(EXIT_FAIL, errno, NULL, "cannot set IRQ %u", irq);
}
