// SPDX-License-Identifier: GPL-2.0
/*
 * Load a bzImage the way the Linux x86 64-bit boot protocol describes
 * (Documentation/arch/x86/boot.rst in the kernel): the protected-mode
 * kernel at its preferred address, a zero page (struct boot_params) with
 * the setup header, the e820 map, the command line and the initrd, an
 * identity map of the first 4 GiB, and the vCPU in 64-bit mode at the
 * kernel's 64-bit entry point with %rsi pointing at the zero page.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snaplaunch.h"
#include "util.h"

/* Offsets in the bzImage / zero page (struct boot_params, setup_header). */
#define BP_ACPI_RSDP_ADDR	0x070
#define BP_E820_ENTRIES		0x1e8
#define BP_SETUP_SECTS		0x1f1
#define BP_BOOT_FLAG		0x1fe
#define BP_HEADER		0x202	/* "HdrS" */
#define BP_VERSION		0x206
#define BP_TYPE_OF_LOADER	0x210
#define BP_LOADFLAGS		0x211
#define BP_RAMDISK_IMAGE	0x218
#define BP_RAMDISK_SIZE		0x21c
#define BP_HEAP_END_PTR		0x224
#define BP_CMD_LINE_PTR		0x228
#define BP_INITRD_ADDR_MAX	0x22c
#define BP_XLOADFLAGS		0x236
#define BP_CMDLINE_SIZE		0x238
#define BP_PREF_ADDRESS		0x258
#define BP_INIT_SIZE		0x260
#define BP_E820_TABLE		0x2d0

#define LOADED_HIGH		0x01
#define CAN_USE_HEAP		0x80
#define XLF_KERNEL_64		0x01

#define E820_RAM		1
#define E820_RESERVED		2

/* Read all of @path; its size in @len. */
static uint8_t *read_all(const char *path, size_t *len, const char *what)
{
	struct stat st;
	uint8_t *buf;
	ssize_t n;
	size_t got = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st))
		die(EXIT_FAIL, errno, NULL, "cannot open the %s %s", what, path);
	buf = malloc(st.st_size ? st.st_size : 1);
	if (!buf)
		die(EXIT_FAIL, ENOMEM, NULL, "cannot read the %s", what);
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, st.st_size - got);
		if (n <= 0)
			die(EXIT_FAIL, n ? errno : EIO, NULL,
			    "cannot read the %s %s", what, path);
		got += n;
	}
	close(fd);
	*len = got;
	return buf;
}

static void add_e820(uint8_t *zp, uint64_t addr, uint64_t size, uint32_t type)
{
	uint8_t n = zp[BP_E820_ENTRIES];
	uint8_t *e = zp + BP_E820_TABLE + 20 * n;

	memcpy(e, &addr, 8);
	memcpy(e + 8, &size, 8);
	memcpy(e + 16, &type, 4);
	zp[BP_E820_ENTRIES] = n + 1;
}

static void setup_page_tables(struct sl_vm *vm)
{
	uint64_t *pml4 = (uint64_t *)(vm->mem + SL_PML4);
	uint64_t *pdpt = (uint64_t *)(vm->mem + SL_PDPT);
	uint64_t *pd = (uint64_t *)(vm->mem + SL_PD);
	int i;

	/* Identity map 4 GiB with 2 MiB pages: PD pages at SL_PD.. +16K. */
	pml4[0] = SL_PDPT | 0x3;			/* present, writable */
	for (i = 0; i < 4; i++)
		pdpt[i] = (SL_PD + i * 4096) | 0x3;
	for (i = 0; i < 4 * 512; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83;	/* + page size */
}

static void setup_sregs(struct sl_vm *vm)
{
	static const uint64_t gdt[4] = {
		0, 0,
		0x00af9b000000ffffULL,	/* 0x10: 64-bit code */
		0x00cf93000000ffffULL,	/* 0x18: data */
	};
	struct kvm_segment code = {
		.base = 0, .limit = 0xffffffff, .selector = 0x10,
		.type = 11, .present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1,
		.g = 1,
	};
	struct kvm_segment data = code;
	struct kvm_sregs s;

	memcpy(vm->mem + SL_BOOT_GDT, gdt, sizeof(gdt));
	if (ioctl(vm->vcpu_fd, KVM_GET_SREGS, &s))
		die(EXIT_FAIL, errno, NULL, "KVM_GET_SREGS");
	data.selector = 0x18;
	data.type = 3;
	data.l = 0;
	data.db = 1;
	s.cs = code;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.gdt.base = SL_BOOT_GDT;
	s.gdt.limit = sizeof(gdt) - 1;
	s.cr0 = 0x80050033;	/* PG WP NE ET MP PE */
	s.cr3 = SL_PML4;
	s.cr4 = 0x20;		/* PAE */
	s.efer = 0x500;		/* LMA LME */
	if (ioctl(vm->vcpu_fd, KVM_SET_SREGS, &s))
		die(EXIT_FAIL, errno, NULL, "KVM_SET_SREGS");
}

void sl_boot_setup(struct sl_vm *vm, const struct sl_boot *b)
{
	uint8_t *img, *zp = vm->mem + SL_ZERO_PAGE, *rd;
	size_t img_len, rd_len = 0, setup_len, hdr_end;
	uint64_t load, init_size, rd_addr = 0, rd_max;
	struct kvm_regs regs = { .rflags = 2 };
	uint16_t version;
	unsigned int setup_sects;

	img = read_all(b->kernel, &img_len, "kernel");
	if (img_len < 0x1000 || memcmp(img + BP_HEADER, "HdrS", 4) ||
	    get16(img + BP_BOOT_FLAG) != 0xaa55)
		die(EXIT_FAIL, 0, "give a bzImage, e.g. /boot/vmlinuz-*",
		    "%s is not a Linux bzImage", b->kernel);
	version = get16(img + BP_VERSION);
	if (version < 0x20c || !(img[BP_XLOADFLAGS] & XLF_KERNEL_64))
		die(EXIT_FAIL, 0, "use a 64-bit kernel of 3.8 or later",
		    "%s has boot protocol %x.%02x without a 64-bit entry point",
		    b->kernel, version >> 8, version & 0xff);
	setup_sects = img[BP_SETUP_SECTS] ? img[BP_SETUP_SECTS] : 4;
	setup_len = (setup_sects + 1) * 512;
	load = get64(img + BP_PREF_ADDRESS);
	init_size = get32(img + BP_INIT_SIZE);
	if (load < SL_KERNEL || load & 0x1fffff)
		load = 0x1000000;
	if (load + init_size > vm->mem_size)
		die(EXIT_FAIL, 0, "give more memory with --mem",
		    "the kernel needs %llu MiB of guest memory",
		    (unsigned long long)((load + init_size) >> 20) + 1);
	memcpy(vm->mem + load, img + setup_len, img_len - setup_len);

	/* The zero page starts with the setup header of the image. */
	memset(zp, 0, 4096);
	hdr_end = 0x202 + img[0x201];
	memcpy(zp + BP_SETUP_SECTS, img + BP_SETUP_SECTS,
	       hdr_end - BP_SETUP_SECTS);
	zp[BP_TYPE_OF_LOADER] = 0xff;
	zp[BP_LOADFLAGS] |= LOADED_HIGH | CAN_USE_HEAP;
	put16(zp + BP_HEAP_END_PTR, 0xfe00);

	if (strlen(b->cmdline) >= SL_CMDLINE_MAX ||
	    strlen(b->cmdline) >= get32(img + BP_CMDLINE_SIZE))
		die(EXIT_USAGE, 0, NULL, "the kernel command line is too long");
	strcpy((char *)vm->mem + SL_CMDLINE, b->cmdline);
	put32(zp + BP_CMD_LINE_PTR, SL_CMDLINE);

	if (b->initrd) {
		rd = read_all(b->initrd, &rd_len, "initrd");
		rd_max = get32(img + BP_INITRD_ADDR_MAX);
		if (rd_max > vm->mem_size - 1)
			rd_max = vm->mem_size - 1;
		rd_addr = (rd_max + 1 - rd_len) & ~0xfffULL;
		if (rd_len > rd_max || rd_addr < load + init_size)
			die(EXIT_FAIL, 0, "give more memory with --mem",
			    "the initrd does not fit in guest memory");
		memcpy(vm->mem + rd_addr, rd, rd_len);
		put32(zp + BP_RAMDISK_IMAGE, rd_addr);
		put32(zp + BP_RAMDISK_SIZE, rd_len);
		free(rd);
	}

	add_e820(zp, 0, SL_LOW_RAM_END, E820_RAM);
	add_e820(zp, SL_LOW_RAM_END, 0xa0000 - SL_LOW_RAM_END, E820_RESERVED);
	add_e820(zp, SL_ACPI, 0x100000 - SL_ACPI, E820_RESERVED);
	add_e820(zp, SL_KERNEL, vm->mem_size - SL_KERNEL, E820_RAM);
	add_e820(zp, SL_GENPAGE, 4096, E820_RESERVED);

	sl_acpi_setup(vm, 1);
	put64(zp + BP_ACPI_RSDP_ADDR, SL_ACPI);	/* the RSDP comes first */
	setup_page_tables(vm);
	setup_sregs(vm);
	regs.rip = load + 0x200;	/* the 64-bit entry point */
	regs.rsi = SL_ZERO_PAGE;
	if (ioctl(vm->vcpu_fd, KVM_SET_REGS, &regs))
		die(EXIT_FAIL, errno, NULL, "KVM_SET_REGS");
	free(img);
}
