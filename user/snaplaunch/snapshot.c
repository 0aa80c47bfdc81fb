// SPDX-License-Identifier: GPL-2.0
/*
 * Snapshots: DIR/state (versioned header, SHA-256 of the body, then
 * typed sections of vCPU, VM and device state) and DIR/memory (guest RAM,
 * sparse: all-zero pages are holes).  Written into DIR.tmp-PID and renamed
 * to DIR after both files are synced, so a crash never leaves a DIR that
 * looks valid.  Restore maps DIR/memory MAP_PRIVATE: clones share its
 * pages through the page cache until they write them.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/fs.h>
#include <openssl/sha.h>

#include "snaplaunch.h"
#include "util.h"

#define STATE_MAGIC	"SNAPLST1"
#define MSR_TSC_DEADLINE	0x6e0	/* IA32_TSC_DEADLINE */
#define STATE_VERSION	2	/* 2: ACPI tables in memory, ACPI section */

/* DIR/state starts with this; all fields in host (x86-64) order. */
struct state_header {
	char magic[8];		/* STATE_MAGIC */
	uint32_t version;	/* STATE_VERSION */
	uint32_t header_len;	/* sizeof(struct state_header) */
	uint64_t mem_size;	/* bytes of DIR/memory that are guest RAM */
	uint64_t body_len;	/* bytes of sections after this header */
	uint8_t sha256[32];	/* of the body */
	uint32_t nr_sections;
	uint32_t kvm_run_size;	/* sanity: the same KVM ABI */
};

/* Each section: this, then len bytes. */
struct section {
	uint32_t type;
	uint32_t len;
};

/* SEC_ACPI: what acpi.c keeps of the guest's writes. */
struct acpi_regs {
	uint16_t pm1_enable;
	uint16_t pad[3];
};

enum {
	SEC_CPUID = 1, SEC_SREGS, SEC_REGS, SEC_XSAVE, SEC_XCRS, SEC_MSRS,
	SEC_DEBUGREGS, SEC_LAPIC, SEC_MP_STATE, SEC_EVENTS,
	SEC_PIC_MASTER, SEC_PIC_SLAVE, SEC_IOAPIC, SEC_PIT, SEC_CLOCK,
	SEC_SERIAL, SEC_GENPAGE, SEC_ACPI, SEC_MAX
};

static const char *const sec_names[SEC_MAX] = {
	[SEC_CPUID] = "CPUID", [SEC_SREGS] = "special registers",
	[SEC_REGS] = "registers", [SEC_XSAVE] = "FPU/XSAVE",
	[SEC_XCRS] = "XCRs", [SEC_MSRS] = "MSRs",
	[SEC_DEBUGREGS] = "debug registers", [SEC_LAPIC] = "LAPIC",
	[SEC_MP_STATE] = "MP state", [SEC_EVENTS] = "pending events",
	[SEC_PIC_MASTER] = "PIC master", [SEC_PIC_SLAVE] = "PIC slave",
	[SEC_IOAPIC] = "IOAPIC", [SEC_PIT] = "PIT", [SEC_CLOCK] = "clock",
	[SEC_SERIAL] = "serial port", [SEC_GENPAGE] = "generation page",
	[SEC_ACPI] = "ACPI registers",
};

struct buf {
	uint8_t *p;
	size_t len, cap;
	uint32_t nr;
};

static void add(struct buf *b, uint32_t type, const void *data, size_t len)
{
	struct section s = { .type = type, .len = len };

	while (b->len + sizeof(s) + len > b->cap) {
		b->cap = b->cap ? 2 * b->cap : 65536;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			die(EXIT_FAIL, ENOMEM, NULL, "cannot build the snapshot");
	}
	memcpy(b->p + b->len, &s, sizeof(s));
	memcpy(b->p + b->len + sizeof(s), data, len);
	b->len += sizeof(s) + len;
	b->nr++;
}

static void vcpu_get(struct sl_vm *vm, unsigned long req, void *data,
		     const char *what)
{
	if (ioctl(vm->vcpu_fd, req, data))
		die(EXIT_FAIL, errno, NULL, "cannot read the vCPU's %s", what);
}

static void vm_get(struct sl_vm *vm, unsigned long req, void *data,
		   const char *what)
{
	if (ioctl(vm->vm_fd, req, data))
		die(EXIT_FAIL, errno, NULL, "cannot read the VM's %s", what);
}

/* Every MSR KVM lists that can actually be read from this vCPU. */
static struct kvm_msrs *get_msrs(struct sl_vm *vm)
{
	struct kvm_msr_list probe = { .nmsrs = 0 }, *list;
	struct kvm_msrs *msrs;
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e;
	} one;
	uint32_t i, n = 0;

	ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe);
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(uint32_t));
	msrs = calloc(1, sizeof(*msrs) +
		      probe.nmsrs * sizeof(struct kvm_msr_entry));
	if (!list || !msrs)
		die(EXIT_FAIL, ENOMEM, NULL, "cannot read the MSRs");
	list->nmsrs = probe.nmsrs;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list))
		die(EXIT_FAIL, errno, NULL, "KVM_GET_MSR_INDEX_LIST");
	for (i = 0; i < list->nmsrs; i++) {
		memset(&one, 0, sizeof(one));
		one.h.nmsrs = 1;
		one.e.index = list->indices[i];
		if (ioctl(vm->vcpu_fd, KVM_GET_MSRS, &one) == 1)
			msrs->entries[n++] = one.e;
	}
	msrs->nmsrs = n;
	free(list);
	return msrs;
}

static void write_all(int fd, const void *p, size_t len, const char *path)
{
	const uint8_t *c = p;
	ssize_t n;

	while (len) {
		n = write(fd, c, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die(EXIT_FAIL, n ? errno : EIO, "check free space",
			    "cannot write %s", path);
		c += n;
		len -= n;
	}
}

/* RAM, leaving all-zero pages as holes. */
static void write_memory(struct sl_vm *vm, int fd, const char *path)
{
	static const uint8_t zero[4096];
	uint64_t off;

	for (off = 0; off < vm->mem_size; off += 4096) {
		if (!memcmp(vm->mem + off, zero, 4096))
			continue;
		if (lseek(fd, off, SEEK_SET) < 0)
			die(EXIT_FAIL, errno, NULL, "cannot seek in %s", path);
		write_all(fd, vm->mem + off, 4096, path);
	}
	if (ftruncate(fd, vm->mem_size))
		die(EXIT_FAIL, errno, NULL, "cannot size %s", path);
}

static int create_file(const char *dir, const char *name, char *path,
		       size_t len)
{
	int fd;

	snprintf(path, len, "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		die(EXIT_FAIL, errno, NULL, "cannot create %s", path);
	return fd;
}

static void sync_close(int fd, const char *path)
{
	if (fsync(fd) || close(fd))
		die(EXIT_FAIL, errno, NULL, "cannot write %s", path);
}

void sl_snapshot_save(struct sl_vm *vm, const char *dir)
{
	struct acpi_regs acpi = { 0 };
	struct buf b = { 0 };
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_xsave *xsave;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dregs;
	struct kvm_lapic_state lapic;
	struct kvm_mp_state mp;
	struct kvm_vcpu_events ev;
	struct kvm_irqchip chip;
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
	struct kvm_msrs *msrs;
	struct state_header h = { .magic = STATE_MAGIC };
	char tmp[4096], path[4200], parent[4096];
	size_t xsave_size;
	uint8_t serial[512];
	int fd, i;

	/*
	 * Finish the I/O the vCPU exited for (the ready port write) so that
	 * the saved registers are past it: KVM completes pending I/O on the
	 * next KVM_RUN, which immediate_exit makes return at once.
	 */
	vm->run->immediate_exit = 1;
	if (ioctl(vm->vcpu_fd, KVM_RUN, 0) == 0 || errno != EINTR)
		die(EXIT_FAIL, errno, NULL, "cannot stop the vCPU cleanly");
	vm->run->immediate_exit = 0;

	add(&b, SEC_CPUID, vm->cpuid, sizeof(*vm->cpuid) +
	    vm->cpuid->nent * sizeof(vm->cpuid->entries[0]));
	vcpu_get(vm, KVM_GET_SREGS, &sregs, sec_names[SEC_SREGS]);
	add(&b, SEC_SREGS, &sregs, sizeof(sregs));
	vcpu_get(vm, KVM_GET_REGS, &regs, sec_names[SEC_REGS]);
	add(&b, SEC_REGS, &regs, sizeof(regs));
	xsave_size = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	if ((long)xsave_size < (long)sizeof(*xsave))
		xsave_size = sizeof(*xsave);
	xsave = calloc(1, xsave_size);
	if (!xsave)
		die(EXIT_FAIL, ENOMEM, NULL, "cannot read the FPU state");
	vcpu_get(vm, xsave_size > sizeof(*xsave) ? KVM_GET_XSAVE2 :
		 KVM_GET_XSAVE, xsave, sec_names[SEC_XSAVE]);
	add(&b, SEC_XSAVE, xsave, xsave_size);
	free(xsave);
	vcpu_get(vm, KVM_GET_XCRS, &xcrs, sec_names[SEC_XCRS]);
	add(&b, SEC_XCRS, &xcrs, sizeof(xcrs));
	msrs = get_msrs(vm);
	if (ioctl(vm->vcpu_fd, KVM_GET_MSRS, msrs) != (int)msrs->nmsrs)
		die(EXIT_FAIL, errno, NULL, "cannot read the vCPU's MSRs");
	add(&b, SEC_MSRS, msrs, sizeof(*msrs) +
	    msrs->nmsrs * sizeof(msrs->entries[0]));
	free(msrs);
	vcpu_get(vm, KVM_GET_DEBUGREGS, &dregs, sec_names[SEC_DEBUGREGS]);
	add(&b, SEC_DEBUGREGS, &dregs, sizeof(dregs));
	vcpu_get(vm, KVM_GET_LAPIC, &lapic, sec_names[SEC_LAPIC]);
	add(&b, SEC_LAPIC, &lapic, sizeof(lapic));
	vcpu_get(vm, KVM_GET_MP_STATE, &mp, sec_names[SEC_MP_STATE]);
	add(&b, SEC_MP_STATE, &mp, sizeof(mp));
	vcpu_get(vm, KVM_GET_VCPU_EVENTS, &ev, sec_names[SEC_EVENTS]);
	add(&b, SEC_EVENTS, &ev, sizeof(ev));
	for (i = 0; i < 3; i++) {
		memset(&chip, 0, sizeof(chip));
		chip.chip_id = i;	/* KVM_IRQCHIP_PIC_MASTER, _SLAVE, _IOAPIC */
		vm_get(vm, KVM_GET_IRQCHIP, &chip, sec_names[SEC_PIC_MASTER + i]);
		add(&b, SEC_PIC_MASTER + i, &chip, sizeof(chip));
	}
	vm_get(vm, KVM_GET_PIT2, &pit, sec_names[SEC_PIT]);
	add(&b, SEC_PIT, &pit, sizeof(pit));
	memset(&clock, 0, sizeof(clock));
	vm_get(vm, KVM_GET_CLOCK, &clock, sec_names[SEC_CLOCK]);
	add(&b, SEC_CLOCK, &clock, sizeof(clock));
	pthread_mutex_lock(&vm->serial.lock);
	add(&b, SEC_SERIAL, serial, sl_serial_save(vm, serial));
	pthread_mutex_unlock(&vm->serial.lock);
	add(&b, SEC_GENPAGE, vm->genpage, 4096);
	acpi.pm1_enable = vm->pm1_enable;
	add(&b, SEC_ACPI, &acpi, sizeof(acpi));

	h.version = STATE_VERSION;
	h.header_len = sizeof(h);
	h.mem_size = vm->mem_size;
	h.body_len = b.len;
	h.nr_sections = b.nr;
	h.kvm_run_size = vm->run_size;
	SHA256(b.p, b.len, h.sha256);

	/* Both files in a fresh directory, synced, then renamed into place. */
	if (!access(dir, F_OK))
		die(EXIT_FAIL, EEXIST, "remove it or choose another",
		    "cannot write the snapshot %s", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp-%d", dir, (int)getpid());
	if (mkdir(tmp, 0700))
		die(EXIT_FAIL, errno, NULL, "cannot create %s", tmp);
	fd = create_file(tmp, "memory", path, sizeof(path));
	write_memory(vm, fd, path);
	sync_close(fd, path);
	fd = create_file(tmp, "state", path, sizeof(path));
	write_all(fd, &h, sizeof(h), path);
	write_all(fd, b.p, b.len, path);
	sync_close(fd, path);
	free(b.p);
	fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) || close(fd))
		die(EXIT_FAIL, errno, NULL, "cannot sync %s", tmp);
	if (rename(tmp, dir))
		die(EXIT_FAIL, errno, NULL, "cannot rename %s to %s", tmp, dir);
	snprintf(parent, sizeof(parent), "%s", dir);
	fd = open(dirname(parent), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) || close(fd))
		die(EXIT_FAIL, errno, NULL, "cannot sync the directory of %s",
		    dir);
}

/* ------------------------------------------------------------ restore */

struct state {
	struct state_header h;
	uint8_t *body;
	const struct section *sec[SEC_MAX];
};

/* Read and check DIR/state; every refusal says why. */
static void load_state(const char *dir, struct state *st)
{
	char path[4200];
	uint8_t sum[32];
	struct stat sb;
	size_t off;
	ssize_t n;
	uint32_t i;
	int fd;

	snprintf(path, sizeof(path), "%s/state", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(EXIT_FAIL, errno, "give a directory written by "
		    "'snaplaunch run --snapshot-on-ready'",
		    "cannot open the snapshot state %s", path);
	if (fstat(fd, &sb) ||
	    read(fd, &st->h, sizeof(st->h)) != (ssize_t)sizeof(st->h) ||
	    memcmp(st->h.magic, STATE_MAGIC, 8))
		die(EXIT_FAIL, 0, NULL, "%s is not a snaplaunch snapshot", path);
	if (st->h.version != STATE_VERSION ||
	    st->h.header_len != sizeof(st->h))
		die(EXIT_FAIL, 0, "restore it with the snaplaunch that wrote it",
		    "%s has snapshot version %u, this snaplaunch reads %u",
		    path, st->h.version, STATE_VERSION);
	if ((uint64_t)sb.st_size != sizeof(st->h) + st->h.body_len)
		die(EXIT_FAIL, 0, NULL, "%s is truncated or has trailing "
		    "data (%lld bytes, header says %llu)", path,
		    (long long)sb.st_size,
		    (unsigned long long)(sizeof(st->h) + st->h.body_len));
	st->body = malloc(st->h.body_len);
	if (!st->body)
		die(EXIT_FAIL, ENOMEM, NULL, "cannot read %s", path);
	n = read(fd, st->body, st->h.body_len);
	close(fd);
	if (n != (ssize_t)st->h.body_len)
		die(EXIT_FAIL, n < 0 ? errno : EIO, NULL, "cannot read %s", path);
	SHA256(st->body, st->h.body_len, sum);
	if (memcmp(sum, st->h.sha256, sizeof(sum)))
		die(EXIT_FAIL, 0, "the snapshot is corrupted; take a new one",
		    "%s: checksum mismatch", path);
	memset(st->sec, 0, sizeof(st->sec));
	for (off = 0, i = 0; i < st->h.nr_sections; i++) {
		const struct section *s = (const void *)(st->body + off);

		if (off + sizeof(*s) > st->h.body_len ||
		    off + sizeof(*s) + s->len > st->h.body_len ||
		    !s->type || s->type >= SEC_MAX)
			die(EXIT_FAIL, 0, NULL, "%s: malformed section %u",
			    path, i);
		st->sec[s->type] = s;
		off += sizeof(*s) + s->len;
	}
	for (i = 1; i < SEC_MAX; i++)
		if (!st->sec[i])
			die(EXIT_FAIL, 0, NULL, "%s: no %s section", path,
			    sec_names[i]);
}

static const void *sec_data(const struct state *st, int type, size_t min)
{
	const struct section *s = st->sec[type];

	if (s->len < min)
		die(EXIT_FAIL, 0, NULL, "snapshot: the %s section is too short "
		    "(%u bytes, need %zu)", sec_names[type], s->len, min);
	return s + 1;
}

/* Copy a section into a buffer of its own (alignment, constness). */
static void *sec_copy(const struct state *st, int type, size_t min)
{
	const void *d = sec_data(st, type, min);
	void *p = malloc(st->sec[type]->len > min ? st->sec[type]->len : min);

	if (!p)
		die(EXIT_FAIL, ENOMEM, NULL, "cannot restore the snapshot");
	memcpy(p, d, st->sec[type]->len);
	return p;
}

static void vcpu_set(struct sl_vm *vm, unsigned long req, void *data,
		     int type)
{
	if (ioctl(vm->vcpu_fd, req, data))
		die(EXIT_FAIL, errno, "was the snapshot taken on another "
		    "kind of host?", "cannot restore the vCPU's %s",
		    sec_names[type]);
}

/* Restore vCPU section @type (at least @min bytes) with ioctl @req. */
static void restore_section(struct sl_vm *vm, const struct state *st,
			    int type, unsigned long req, size_t min)
{
	void *p = sec_copy(st, type, min);

	vcpu_set(vm, req, p, type);
	free(p);
}

static bool cpu_is_amd(const struct sl_vm *vm)
{
	uint32_t i;

	for (i = 0; i < vm->cpuid->nent; i++)
		if (vm->cpuid->entries[i].function == 0)
			return vm->cpuid->entries[i].ebx == 0x68747541; /* Auth */
	return false;
}

static void restore_vm(struct sl_vm *vm, const struct state *st)
{
	const struct acpi_regs *acpi;
	struct kvm_cpuid2 *cpuid;
	struct kvm_msrs *msrs;
	struct kvm_irqchip *chip;
	struct kvm_clock_data *clock;
	void *p;
	int i, n;

	/* The VM: interrupt controllers, PIT, clock. */
	for (i = 0; i < 3; i++) {
		chip = sec_copy(st, SEC_PIC_MASTER + i, sizeof(*chip));
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, chip))
			die(EXIT_FAIL, errno, NULL, "cannot restore the %s",
			    sec_names[SEC_PIC_MASTER + i]);
		free(chip);
	}
	p = sec_copy(st, SEC_PIT, sizeof(struct kvm_pit_state2));
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, p))
		die(EXIT_FAIL, errno, NULL, "cannot restore the PIT");
	free(p);
	clock = sec_copy(st, SEC_CLOCK, sizeof(*clock));
	clock->flags = 0;	/* the guest's clock goes on from the snapshot */
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, clock))
		die(EXIT_FAIL, errno, NULL, "cannot restore the clock");
	free(clock);

	/* The vCPU, in an order KVM accepts: CPUID, then what builds on it. */
	cpuid = sec_copy(st, SEC_CPUID, sizeof(*cpuid));
	if (st->sec[SEC_CPUID]->len != sizeof(*cpuid) + cpuid->nent *
	    sizeof(cpuid->entries[0]))
		die(EXIT_FAIL, 0, NULL, "snapshot: bad CPUID section");
	if (ioctl(vm->vcpu_fd, KVM_SET_CPUID2, cpuid))
		die(EXIT_FAIL, errno, "restore on the kind of host the "
		    "snapshot was taken on", "this host cannot give the "
		    "vCPU the snapshot's CPUID");
	free(vm->cpuid);
	vm->cpuid = cpuid;
	p = sec_copy(st, SEC_SREGS, sizeof(struct kvm_sregs));
	/*
	 * KVM on AMD reports TR as busy (type 11) whatever the VMCB says
	 * (svm_get_segment() sets the bit); AMD CPUs ignore the bit, but
	 * QEMU's emulated SVM then fails every I/O permission check of the
	 * guest against its TSS bitmap (#GP in iopl() users).  Give AMD
	 * back the available type; Intel needs 11 and keeps it.
	 */
	if (cpu_is_amd(vm) && ((struct kvm_sregs *)p)->tr.type == 11)
		((struct kvm_sregs *)p)->tr.type = 9;
	vcpu_set(vm, KVM_SET_SREGS, p, SEC_SREGS);
	free(p);
	restore_section(vm, st, SEC_REGS, KVM_SET_REGS, sizeof(struct kvm_regs));
	restore_section(vm, st, SEC_XSAVE, KVM_SET_XSAVE, sizeof(struct kvm_xsave));
	restore_section(vm, st, SEC_XCRS, KVM_SET_XCRS, sizeof(struct kvm_xcrs));
	msrs = sec_copy(st, SEC_MSRS, sizeof(*msrs));
	if (st->sec[SEC_MSRS]->len != sizeof(*msrs) + msrs->nmsrs *
	    sizeof(msrs->entries[0]))
		die(EXIT_FAIL, 0, NULL, "snapshot: bad MSR section");
	n = ioctl(vm->vcpu_fd, KVM_SET_MSRS, msrs);
	if (n != (int)msrs->nmsrs)
		die(EXIT_FAIL, n < 0 ? errno : 0, NULL, "cannot restore MSR "
		    "%#x", n >= 0 && n < (int)msrs->nmsrs ?
		    msrs->entries[n].index : 0);
	restore_section(vm, st, SEC_DEBUGREGS, KVM_SET_DEBUGREGS, sizeof(struct kvm_debugregs));
	restore_section(vm, st, SEC_LAPIC, KVM_SET_LAPIC, sizeof(struct kvm_lapic_state));
	/*
	 * The TSC deadline only sticks once the LAPIC timer is in
	 * TSC-deadline mode, which KVM_SET_LAPIC just restored: write it
	 * again, or a guest asleep on its timer never wakes.
	 */
	for (i = 0; i < (int)msrs->nmsrs; i++) {
		struct {
			struct kvm_msrs h;
			struct kvm_msr_entry e;
		} one = { .h.nmsrs = 1, .e = msrs->entries[i] };

		if (msrs->entries[i].index != MSR_TSC_DEADLINE)
			continue;
		if (ioctl(vm->vcpu_fd, KVM_SET_MSRS, &one) != 1)
			die(EXIT_FAIL, errno, NULL,
			    "cannot restore the TSC deadline");
	}
	free(msrs);
	restore_section(vm, st, SEC_MP_STATE, KVM_SET_MP_STATE, sizeof(struct kvm_mp_state));
	restore_section(vm, st, SEC_EVENTS, KVM_SET_VCPU_EVENTS, sizeof(struct kvm_vcpu_events));

	sl_serial_load(vm, sec_data(st, SEC_SERIAL, sl_serial_save(vm, NULL)));
	memcpy(vm->genpage, sec_data(st, SEC_GENPAGE, 4096), 4096);
	acpi = sec_data(st, SEC_ACPI, sizeof(*acpi));
	vm->pm1_enable = acpi->pm1_enable;
}

/* One clone: a VM of its own over a private mapping of the memory. */
static int run_clone(const struct sl_restore *r, const struct state *st,
		     int mem_fd, unsigned int index)
{
	struct sl_vm vm = { 0 };
	char path[4200];
	uint8_t *mem;
	uint64_t gen;
	int out = STDOUT_FILENO;
	enum sl_stop stop;

	if (r->log_dir) {
		snprintf(path, sizeof(path), "%s/clone-%u.log", r->log_dir,
			 index);
		out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			   0644);
		if (out < 0)
			die(EXIT_FAIL, errno, NULL, "cannot create %s", path);
	}
	mem = mmap(NULL, st->h.mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE,
		   mem_fd, 0);
	if (mem == MAP_FAILED)
		die(EXIT_FAIL, errno, NULL, "cannot map the snapshot memory");
	sl_kvm_open(&vm);
	sl_vm_create(&vm, st->h.mem_size, mem);
	sl_vcpu_create(&vm);
	sl_serial_init(&vm, r->clones == 1 ? STDIN_FILENO : -1, out);
	restore_vm(&vm, st);
	/* Tell the clone before its first instruction. */
	gen = sl_genpage_clone(&vm);
	sl_serial_start_input(&vm);
	vm.snapshot_dir = r->snapshot_dir;
	stop = sl_run(&vm);
	if (stop == SL_STOP_SNAPSHOT) {
		sl_snapshot_save(&vm, vm.snapshot_dir);
		fprintf(stderr, "snaplaunch: snapshot written to %s\n",
			vm.snapshot_dir);
	}
	if (r->verbose)
		fprintf(stderr, "snaplaunch: clone %u: generation %" PRIu64
			", acknowledged %" PRIu64 ", %s\n", index, gen,
			sl_genpage_acked(&vm), sl_stop_name(stop));
	return 0;
}

int sl_restore(const struct sl_restore *r)
{
	struct state st;
	char path[4200];
	struct stat sb;
	unsigned int i, failed = 0, running = 0;
	int mem_fd, status;
	pid_t pid;

	load_state(r->dir, &st);
	if (r->memory)
		snprintf(path, sizeof(path), "%s", r->memory);
	else
		snprintf(path, sizeof(path), "%s/memory", r->dir);
	mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (mem_fd < 0 || fstat(mem_fd, &sb))
		die(EXIT_FAIL, errno, NULL, "cannot open the snapshot memory %s",
		    path);
	if (S_ISBLK(sb.st_mode)) {
		uint64_t size;

		if (ioctl(mem_fd, BLKGETSIZE64, &size))
			die(EXIT_FAIL, errno, NULL, "cannot size %s", path);
		sb.st_size = size;
	}
	if ((uint64_t)sb.st_size < st.h.mem_size)
		die(EXIT_FAIL, 0, "is it the memory of this snapshot?",
		    "%s has %lld bytes, the snapshot %llu", path,
		    (long long)sb.st_size,
		    (unsigned long long)st.h.mem_size);
	if (r->clones > 1 && r->snapshot_dir)
		die(EXIT_USAGE, 0, NULL,
		    "--snapshot-on-ready takes one clone, not %u", r->clones);
	if (r->clones > 1 && !r->log_dir)
		die(EXIT_USAGE, 0, "give --log-dir DIR: each clone writes "
		    "DIR/clone-N.log", "--clones %u needs --log-dir",
		    r->clones);
	if (r->clones == 1)
		return run_clone(r, &st, mem_fd, 0);
	/* At most r->parallel clones run at once (0: all). */
	for (i = 0; i < r->clones || running; ) {
		if (i < r->clones && (!r->parallel || running < r->parallel)) {
			pid = fork();
			if (pid < 0)
				die(EXIT_FAIL, errno, NULL,
				    "cannot start clone %u", i);
			if (pid == 0)
				_exit(run_clone(r, &st, mem_fd, i));
			running++;
			i++;
			continue;
		}
		if (wait(&status) < 0)
			die(EXIT_FAIL, errno, NULL, "cannot wait for the clones");
		running--;
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			failed++;
	}
	if (failed)
		die(EXIT_FAIL, 0, "their logs say why",
		    "%u of %u clones failed", failed, r->clones);
	return 0;
}
