// SPDX-License-Identifier: GPL-2.0
/*
 * The vCPU loop: run the guest, emulate the few I/O ports it touches
 * (COM1, the i8042 reset line, the ACPI PM1a blocks and reset register,
 * the "ready" port), stop on a reboot, a power off, a
 * shutdown (triple fault) or a snapshot request.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "snaplaunch.h"
#include "util.h"

static void io_exit(struct sl_vm *vm, bool *reboot, bool *off)
{
	struct kvm_run *run = vm->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool out = run->io.direction == KVM_EXIT_IO_OUT;
	uint32_t i;

	for (i = 0; i < run->io.count; i++, data += run->io.size) {
		uint16_t port = run->io.port;

		if (run->io.size == 1 && sl_serial_io(vm, port, out, data))
			continue;
		if (port == SL_PORT_I8042 && out && *data == 0xfe) {
			*reboot = true;		/* keyboard controller reset */
			continue;
		}
		if (port == SL_PORT_RESET && out && *data == SL_RESET_VALUE) {
			*reboot = true;		/* the FADT's reset register */
			continue;
		}
		if (sl_acpi_pm_io(vm, port, out, data, run->io.size, off))
			continue;
		if (port == SL_PORT_READY && out) {
			vm->ready = true;
			continue;
		}
		/* Nothing else here: reads float high, writes vanish. */
		if (!out)
			memset(data, 0xff, run->io.size);
	}
}

enum sl_stop sl_run(struct sl_vm *vm)
{
	bool reboot = false, off = false;

	for (;;) {
		if (ioctl(vm->vcpu_fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die(EXIT_FAIL, errno, NULL, "KVM_RUN");
		}
		switch (vm->run->exit_reason) {
		case KVM_EXIT_IO:
			io_exit(vm, &reboot, &off);
			if (reboot)
				return SL_STOP_REBOOT;
			if (off)
				return SL_STOP_POWEROFF;
			if (vm->ready && vm->snapshot_dir)
				return SL_STOP_SNAPSHOT;
			vm->ready = false;
			break;
		case KVM_EXIT_MMIO:
			/* No MMIO devices: reads see all ones. */
			if (!vm->run->mmio.is_write)
				memset(vm->run->mmio.data, 0xff,
				       vm->run->mmio.len);
			break;
		case KVM_EXIT_HLT:
			return SL_STOP_SHUTDOWN;
		case KVM_EXIT_SHUTDOWN:
			return SL_STOP_SHUTDOWN;
		case KVM_EXIT_SYSTEM_EVENT:
			return vm->run->system_event.type ==
			       KVM_SYSTEM_EVENT_RESET ? SL_STOP_REBOOT :
			       SL_STOP_SHUTDOWN;
		case KVM_EXIT_FAIL_ENTRY:
			die(EXIT_FAIL, 0, NULL, "KVM entry failed, reason %#llx",
			    (unsigned long long)vm->run->fail_entry.
			    hardware_entry_failure_reason);
		case KVM_EXIT_INTERNAL_ERROR:
			die(EXIT_FAIL, 0, NULL, "KVM internal error, suberror %u",
			    vm->run->internal.suberror);
		default:
			die(EXIT_FAIL, 0, NULL, "unexpected KVM exit %u",
			    vm->run->exit_reason);
		}
	}
}

const char *sl_stop_name(enum sl_stop stop)
{
	switch (stop) {
	case SL_STOP_REBOOT:
		return "rebooted";
	case SL_STOP_POWEROFF:
		return "powered off";
	case SL_STOP_SNAPSHOT:
		return "snapshotted";
	default:
		return "shut down";
	}
}
