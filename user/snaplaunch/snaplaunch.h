/* SPDX-License-Identifier: GPL-2.0 */
/*
 * snaplaunch: a small KVM launcher that boots a Linux guest, snapshots it
 * once it is ready, and restores clones of it, each told through the
 * snapblk generation page.  Documentation/launcher.md describes it.
 *
 * One VM per process, one vCPU, no threads but the console reader.
 */
#ifndef SNAPLAUNCH_H
#define SNAPLAUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <pthread.h>
#include <linux/kvm.h>

/* Little-endian fields at any alignment (boot data, ACPI tables). */
static inline void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static inline uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* Guest-physical layout (Documentation/launcher.md). */
#define SL_BOOT_GDT		0x500
#define SL_ZERO_PAGE		0x7000
#define SL_PML4			0x9000
#define SL_PDPT			0xa000
#define SL_PD			0xb000
#define SL_CMDLINE		0x20000
#define SL_CMDLINE_MAX		4096
#define SL_KERNEL		0x100000
#define SL_LOW_RAM_END		0x9fc00
#define SL_ACPI			0xe0000		/* ACPI tables (acpi.c) */
#define SL_ACPI_SIZE		0x10000
#define SL_MMIO_START		0xc0000000ULL	/* RAM ends below */
#define SL_GENPAGE		0xfeb00000ULL	/* 4 KiB, its own memslot */
#define SL_GENPAGE_IRQ		5
#define SL_VMGENID		(SL_GENPAGE + 0x800)	/* ACPI VMGenID */
#define SL_GED_IRQ		6	/* ACPI GED: Notify (VGEN) */
#define SL_TSS			0xfffbd000ULL
#define SL_IDENTITY_MAP		0xfffbc000ULL

/* I/O ports. */
#define SL_PORT_SERIAL		0x3f8		/* COM1, IRQ 4 */
#define SL_SERIAL_IRQ		4
#define SL_PORT_I8042		0x64		/* 0xfe written: reboot */
#define SL_PORT_READY		0x5e0		/* guest: "snapshot me now" */
#define SL_PORT_PM1A_EVT	0x600		/* ACPI PM1a status, enable */
#define SL_PORT_PM1A_CNT	0x604		/* ACPI: SLP_TYP 5|SLP_EN: off */
#define SL_PORT_RESET		0x606		/* ACPI: SL_RESET_VALUE: reboot */
#define SL_RESET_VALUE		0x01
#define SL_SCI_IRQ		9

/* The console: an 8250 UART on COM1 (serial.c). */
struct sl_serial {
	pthread_mutex_t lock;	/* all fields; the input thread takes it */
	uint8_t ier, iir, lcr, mcr, lsr, msr, scr, dll, dlm;
	uint8_t rx[256];	/* input not yet read by the guest */
	unsigned int rx_head, rx_len;
	bool thri_pending;	/* THR empty interrupt owed to the guest */
	int out_fd;		/* where the guest's output goes */
	int in_fd;		/* -1: no input */
};

struct sl_vm {
	int kvm_fd, vm_fd, vcpu_fd;
	struct kvm_run *run;
	size_t run_size;
	uint8_t *mem;		/* guest RAM, mem_size bytes at GPA 0 */
	uint64_t mem_size;
	uint8_t *genpage;	/* 4 KiB at SL_GENPAGE */
	struct sl_serial serial;
	struct kvm_cpuid2 *cpuid;
	const char *snapshot_dir;	/* run --snapshot-on-ready */
	bool ready;		/* the guest wrote SL_PORT_READY */
	uint16_t pm1_enable;	/* ACPI PM1a enable register (acpi.c) */
};

/* kvm.c */
void sl_kvm_open(struct sl_vm *vm);
void sl_vm_create(struct sl_vm *vm, uint64_t mem_size, uint8_t *mem);
void sl_vcpu_create(struct sl_vm *vm);
void sl_irq_line(struct sl_vm *vm, unsigned int irq, int level);

/* boot.c */
struct sl_boot {
	const char *kernel, *initrd, *cmdline;
};
void sl_boot_setup(struct sl_vm *vm, const struct sl_boot *b);

/* acpi.c */
void sl_acpi_setup(struct sl_vm *vm, unsigned int ncpus);
bool sl_acpi_pm_io(struct sl_vm *vm, uint16_t port, bool out, uint8_t *data,
		   unsigned int size, bool *poweroff);

/* serial.c */
void sl_serial_init(struct sl_vm *vm, int in_fd, int out_fd);
bool sl_serial_io(struct sl_vm *vm, uint16_t port, bool out, uint8_t *data);
void sl_serial_start_input(struct sl_vm *vm);
size_t sl_serial_save(struct sl_vm *vm, void *buf);
void sl_serial_load(struct sl_vm *vm, const void *buf);

/*
 * run.c: why the guest stopped (reboot, ACPI power off, triple fault or
 * hlt with interrupts off, snapshot request); exits on errors.
 */
enum sl_stop { SL_STOP_REBOOT, SL_STOP_POWEROFF, SL_STOP_SHUTDOWN,
	       SL_STOP_SNAPSHOT };
const char *sl_stop_name(enum sl_stop stop);
enum sl_stop sl_run(struct sl_vm *vm);

/* snapshot.c */
void sl_snapshot_save(struct sl_vm *vm, const char *dir);
struct sl_restore {
	const char *dir;
	const char *memory;	/* NULL: DIR/memory */
	unsigned int clones;
	unsigned int parallel;	/* clones running at once; 0: all */
	const char *log_dir;	/* each clone's console: DIR/clone-N.log */
	const char *snapshot_dir;	/* one clone: snapshot it when ready */
	bool verbose;
};
int sl_restore(const struct sl_restore *r);

/* genpage.c */
void sl_genpage_init(struct sl_vm *vm);
uint64_t sl_genpage_clone(struct sl_vm *vm);
uint64_t sl_genpage_acked(struct sl_vm *vm);

#endif
