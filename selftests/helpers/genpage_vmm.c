// SPDX-License-Identifier: GPL-2.0
/*
 * genpage_vmm: play the VMM's side of the paravirtual generation page
 * from inside the test VM, for selftests/clone_genpage.sh.
 *
 * QEMU gives the test VM the two pieces a VMM would: an ivshmem-plain PCI
 * device whose BAR 2 is the page (mapped here through sysfs), and the
 * pc-testdev ISA device, whose I/O port 0x2000 + N drives ISA IRQ line N.
 *
 *	genpage_vmm init RESOURCE		write magic and version
 *	genpage_vmm zero RESOURCE		clear the page (no magic)
 *	genpage_vmm clone RESOURCE IRQ ID	one clone: write ID, bump the
 *						generation, raise and lower
 *						the IRQ; print what the guest
 *						acknowledged, and how soon
 *
 * RESOURCE is /sys/bus/pci/devices/.../resource2.  Run "clone" pinned to
 * the CPU the IRQ is delivered to: it then checks that the guest's IRQ
 * thread reseeded before this very task ran on (the ordering the
 * generation page promises).
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/snapblk.h>

#define TESTDEV_IRQ_PORT 0x2000

static volatile struct snapblk_genpage *map_page(const char *path)
{
	void *p;
	int fd;

	fd = open(path, O_RDWR | O_SYNC);
	if (fd < 0) {
		fprintf(stderr, "genpage_vmm: cannot open %s: %s\n", path,
			strerror(errno));
		exit(1);
	}
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "genpage_vmm: cannot map %s: %s\n", path,
			strerror(errno));
		exit(1);
	}
	close(fd);
	return p;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int main(int argc, char **argv)
{
	volatile struct snapblk_genpage *gp;
	uint64_t gen, ack = 0;
	unsigned int irq, spins;
	uint8_t id[16];
	int i;

	if (argc == 3 && !strcmp(argv[1], "zero")) {
		gp = map_page(argv[2]);
		memset((void *)gp, 0, sizeof(*gp));
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "init")) {
		gp = map_page(argv[2]);
		memset((void *)gp, 0, sizeof(*gp));
		gp->magic = htole32(SNAPBLK_GENPAGE_MAGIC);
		gp->version = htole32(SNAPBLK_GENPAGE_VERSION);
		return 0;
	}
	if (argc != 5 || strcmp(argv[1], "clone") || strlen(argv[4]) != 32) {
		fprintf(stderr, "usage: genpage_vmm init|zero RESOURCE | "
			"clone RESOURCE IRQ ID(32 hex digits)\n");
		return 2;
	}
	gp = map_page(argv[2]);
	irq = strtoul(argv[3], NULL, 0);
	for (i = 0; i < 16; i++)
		id[i] = hexval(argv[4][2 * i]) << 4 | hexval(argv[4][2 * i + 1]);
	if (iopl(3)) {
		fprintf(stderr, "genpage_vmm: iopl: %s\n", strerror(errno));
		return 1;
	}

	/* The VMM's order: ID first, then the generation, then the IRQ. */
	memcpy((void *)gp->id, id, sizeof(id));
	gen = le64toh(gp->generation) + 1;
	__atomic_store_n(&gp->generation, htole64(gen), __ATOMIC_RELEASE);
	outb(1, TESTDEV_IRQ_PORT + irq);
	/*
	 * No system call from here: if the IRQ thread preempts us as it
	 * should, the acknowledgment is there at once.  Count the loads
	 * it takes (a TCG translation block may run a few instructions
	 * past the OUT before the interrupt is taken).
	 */
	for (spins = 0; spins < 100000000; spins++) {
		ack = le64toh(__atomic_load_n(&gp->ack_generation,
					      __ATOMIC_ACQUIRE));
		if (ack == gen)
			break;
	}
	outb(0, TESTDEV_IRQ_PORT + irq);
	printf("generation %" PRIu64 " ack %" PRIu64 " spins %u guest_version %u\n",
	       gen, ack, spins, le32toh(gp->guest_version));
	return ack == gen ? 0 : 1;
}
