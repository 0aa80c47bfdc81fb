// SPDX-License-Identifier: GPL-2.0
/*
 * The ACPI tables the guest finds at SL_ACPI (in the BIOS area, where
 * Linux scans for the RSDP; boot_params.acpi_rsdp_addr points there too):
 *
 *   RSDP -> XSDT -> FADT -> DSDT, FACS
 *                -> MADT
 *
 * The FADT describes the smallest full ("fixed hardware") ACPI machine:
 * a PM1a event block (status reads 0, enable keeps what is written) and
 * a PM1a control block (reads SCI_EN: always in ACPI mode, no SMI
 * command port),
 * SCI on IRQ 9, no PM timer, no GPE blocks.  Not hardware-reduced ACPI:
 * that would take the 8259s and the ISA IRQ numbers away from Linux, and
 * the console (IRQ 4) and snapblk's generation page (IRQ 5) use them.
 * Power off is SLP_TYP 5 (from \_S5_) with SLP_EN written to PM1a_CNT;
 * reset is the FADT's reset register.
 *
 * The MADT lists one local APIC per vCPU and KVM's IOAPIC (GSI n is IOAPIC
 * pin n under KVM's default routing, so no interrupt source overrides).
 *
 * The DSDT holds \_S5_, and the VM generation ID device that Linux's
 * vmgenid driver binds to (Microsoft's "Virtual Machine Generation ID"
 * specification, as QEMU and Firecracker offer it): \_SB.VGEN with _CID
 * "VM_Gen_Counter" and ADDR, the guest-physical address of its 16-byte
 * ID, which lies in the generation page (SL_VMGENID).  A clone's new ID
 * is announced by Notify(\_SB.VGEN, 0x80) from the _EVT method of a
 * Generic Event Device (ACPI0013, \_SB.GED0) whose interrupt is
 * SL_GED_IRQ.
 */
#include <stdlib.h>
#include <string.h>

#include "snaplaunch.h"
#include "util.h"

#define OEM_ID		"SNAPBL"
#define OEM_TABLE_ID	"SNAPLNCH"

#define ACPI_HDR_LEN	36
#define FADT_LEN	276
#define FACS_LEN	64
#define FADT_WBINVD	(1U << 0)
#define FADT_PWR_BUTTON	(1U << 4)	/* no fixed power button */
#define FADT_SLP_BUTTON	(1U << 5)	/* no fixed sleep button */
#define FADT_RESET_REG	(1U << 10)
#define BOOT_NO_VGA	(1U << 2)
#define BOOT_NO_CMOS	(1U << 5)
#define PM1_SCI_EN	0x0001
#define PM1_SLP_EN	0x2000
#define GAS_SYSTEM_IO	1
#define GAS_BYTE	1

/* An AML byte string being built (DSDT body). */
struct aml {
	uint8_t b[512];
	size_t n;
};

static void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (a->n + n > sizeof(a->b))
		die(EXIT_FAIL, 0, NULL, "internal error: DSDT too large");
	memcpy(a->b + a->n, p, n);
	a->n += n;
}

static void aml_byte(struct aml *a, uint8_t v)
{
	aml_bytes(a, &v, 1);
}

/* A PkgLength (ACPI 6.4 section 20.2.4) for @len bytes that follow it. */
static void aml_pkglen(struct aml *a, size_t len)
{
	if (len + 1 < 0x40) {
		aml_byte(a, len + 1);
	} else {
		len += 2;
		aml_byte(a, 0x40 | (len & 0xf));
		aml_byte(a, len >> 4);
	}
}

/* @op, a PkgLength, then @body. */
static void aml_pkg(struct aml *a, const uint8_t *op, size_t oplen,
		    const struct aml *body)
{
	aml_bytes(a, op, oplen);
	aml_pkglen(a, body->n);
	aml_bytes(a, body->b, body->n);
}

static void aml_name_string(struct aml *a, const char *seg4, const char *s)
{
	aml_byte(a, 0x08);			/* NameOp */
	aml_bytes(a, seg4, 4);
	aml_byte(a, 0x0d);			/* StringPrefix */
	aml_bytes(a, s, strlen(s) + 1);
}

static void aml_dword(struct aml *a, uint32_t v)
{
	aml_byte(a, 0x0c);			/* DWordPrefix */
	aml_bytes(a, &v, 4);
}

/* \_SB.<seg4>, as a NameString. */
static void aml_sb_path(struct aml *a, const char *seg4)
{
	aml_bytes(a, "\\\x2e_SB_", 6);		/* RootChar DualNamePrefix */
	aml_bytes(a, seg4, 4);
}

static void build_dsdt_body(struct aml *a)
{
	static const uint8_t device_op[] = { 0x5b, 0x82 };
	static const uint8_t package_op[] = { 0x12 };
	static const uint8_t method_op[] = { 0x14 };
	static const uint8_t buffer_op[] = { 0x11 };
	struct aml pkg = { .n = 0 }, dev = { .n = 0 }, m = { .n = 0 };
	struct aml crs = { .n = 0 };
	uint32_t irq = SL_GED_IRQ;

	/* Name (_S5_, Package () { 5, 0 }) */
	aml_byte(a, 0x08);
	aml_bytes(a, "_S5_", 4);
	aml_bytes(&pkg, "\x02\x0a\x05\x00", 4);	/* 2 elements: 5, Zero */
	aml_pkg(a, package_op, 1, &pkg);

	/* Device (\_SB.VGEN): the VM generation ID. */
	aml_sb_path(&dev, "VGEN");
	aml_name_string(&dev, "_HID", "VMGENCTR");
	aml_name_string(&dev, "_CID", "VM_Gen_Counter");
	aml_name_string(&dev, "_DDN", "VM_Gen_Counter");
	aml_byte(&dev, 0x08);			/* Name (ADDR, Package) */
	aml_bytes(&dev, "ADDR", 4);
	pkg.n = 0;
	aml_byte(&pkg, 2);
	aml_dword(&pkg, (uint32_t)SL_VMGENID);
	aml_byte(&pkg, 0x00);			/* Zero: the high half */
	aml_pkg(&dev, package_op, 1, &pkg);
	aml_pkg(a, device_op, 2, &dev);

	/* Device (\_SB.GED0): the interrupt that announces a new ID. */
	dev.n = 0;
	aml_sb_path(&dev, "GED0");
	aml_name_string(&dev, "_HID", "ACPI0013");
	/* Name (_CRS, ResourceTemplate () { Interrupt (, Edge, ActiveHigh) }) */
	aml_byte(&dev, 0x08);
	aml_bytes(&dev, "_CRS", 4);
	aml_bytes(&crs, "\x0a\x0b", 2);		/* BufferSize 11 */
	aml_bytes(&crs, "\x89\x06\x00\x03\x01", 5);	/* consumer, edge */
	aml_bytes(&crs, &irq, 4);
	aml_bytes(&crs, "\x79\x00", 2);		/* EndTag */
	aml_pkg(&dev, buffer_op, 1, &crs);
	/* Method (_EVT, 1) { Notify (\_SB.VGEN, 0x80) } */
	aml_bytes(&m, "_EVT\x01", 5);
	aml_byte(&m, 0x86);			/* NotifyOp */
	aml_sb_path(&m, "VGEN");
	aml_bytes(&m, "\x0a\x80", 2);
	aml_pkg(&dev, method_op, 1, &m);
	aml_pkg(a, device_op, 2, &dev);
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;

	while (n--)
		sum += *p++;
	return -sum;
}

static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put32(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, OEM_ID, 6);
	memcpy(t + 16, OEM_TABLE_ID, 8);
	put32(t + 24, 1);			/* OEM revision */
	memcpy(t + 28, "SNPL", 4);		/* creator */
	put32(t + 32, 1);
}

static void finish(uint8_t *t)
{
	t[9] = checksum(t, get32(t + 4));
}

/* A Generic Address Structure for one byte of I/O at @port. */
static void gas_io(uint8_t *g, uint16_t port)
{
	g[0] = GAS_SYSTEM_IO;
	g[1] = 8;				/* bit width */
	g[2] = 0;
	g[3] = GAS_BYTE;
	put64(g + 4, port);
}

/* Write the tables for @ncpus vCPUs; the RSDP is at SL_ACPI. */
void sl_acpi_setup(struct sl_vm *vm, unsigned int ncpus)
{
	uint8_t *base = vm->mem + SL_ACPI, *rsdp, *xsdt, *fadt, *madt, *dsdt;
	uint8_t *facs, *ioapic;
	uint64_t at = SL_ACPI;
	struct aml body = { .n = 0 };
	uint32_t madt_len, dsdt_len;
	unsigned int i;

#define PLACE(ptr, len) do { ptr = vm->mem + at; at += ((len) + 15) & ~15; } while (0)
	memset(base, 0, SL_ACPI_SIZE);
	PLACE(rsdp, 36);
	at = (at + 63) & ~63ULL;		/* the FACS is 64-byte aligned */
	PLACE(facs, FACS_LEN);
	PLACE(xsdt, ACPI_HDR_LEN + 2 * 8);
	PLACE(fadt, FADT_LEN);
	madt_len = ACPI_HDR_LEN + 8 + 8 * ncpus + 12;
	PLACE(madt, madt_len);
	build_dsdt_body(&body);
	dsdt_len = ACPI_HDR_LEN + body.n;
	PLACE(dsdt, dsdt_len);
#undef PLACE
	if (at > SL_ACPI + SL_ACPI_SIZE)
		die(EXIT_FAIL, 0, NULL, "internal error: ACPI tables too large");

	header(dsdt, "DSDT", dsdt_len, 2);
	memcpy(dsdt + ACPI_HDR_LEN, body.b, body.n);
	finish(dsdt);

	header(madt, "APIC", madt_len, 5);
	put32(madt + 36, 0xfee00000);		/* local APIC address */
	put32(madt + 40, 1);			/* PCAT_COMPAT: 8259s too */
	for (i = 0; i < ncpus; i++) {
		uint8_t *e = madt + 44 + 8 * i;

		e[0] = 0;			/* Processor Local APIC */
		e[1] = 8;
		e[2] = i;			/* processor UID */
		e[3] = i;			/* APIC ID */
		put32(e + 4, 1);		/* enabled */
	}
	ioapic = madt + 44 + 8 * ncpus;
	ioapic[0] = 1;				/* I/O APIC */
	ioapic[1] = 12;
	ioapic[2] = 0;				/* its ID, as KVM resets it */
	put32(ioapic + 4, 0xfec00000);
	put32(ioapic + 8, 0);			/* GSI base */
	finish(madt);

	memcpy(facs, "FACS", 4);
	put32(facs + 4, FACS_LEN);
	facs[32] = 2;				/* version */

	header(fadt, "FACP", FADT_LEN, 6);
	put32(fadt + 36, facs - vm->mem);	/* FIRMWARE_CTRL */
	put32(fadt + 40, dsdt - vm->mem);
	fadt[46] = SL_SCI_IRQ;			/* SCI_INT; SMI_CMD 0 */
	put32(fadt + 56, SL_PORT_PM1A_EVT);
	put32(fadt + 64, SL_PORT_PM1A_CNT);
	fadt[88] = 4;				/* PM1_EVT_LEN */
	fadt[89] = 2;				/* PM1_CNT_LEN */
	fadt[109] = BOOT_NO_VGA | BOOT_NO_CMOS;	/* and no 8042 */
	put32(fadt + 112, FADT_WBINVD | FADT_PWR_BUTTON | FADT_SLP_BUTTON |
	      FADT_RESET_REG);
	gas_io(fadt + 116, SL_PORT_RESET);
	fadt[128] = SL_RESET_VALUE;
	fadt[131] = 4;				/* FADT minor version */
	put64(fadt + 132, facs - vm->mem);	/* X_FIRMWARE_CTRL */
	put64(fadt + 140, dsdt - vm->mem);	/* X_DSDT */
	memcpy(fadt + 268, "SNAPLNCH", 8);	/* hypervisor vendor */
	finish(fadt);

	header(xsdt, "XSDT", ACPI_HDR_LEN + 2 * 8, 1);
	put64(xsdt + 36, fadt - vm->mem);
	put64(xsdt + 44, madt - vm->mem);
	finish(xsdt);

	memcpy(rsdp, "RSD PTR ", 8);
	memcpy(rsdp + 9, OEM_ID, 6);
	rsdp[15] = 2;				/* ACPI 2.0+ */
	put32(rsdp + 20, 36);
	put64(rsdp + 24, xsdt - vm->mem);
	rsdp[8] = checksum(rsdp, 20);
	rsdp[32] = checksum(rsdp, 36);
}

/*
 * The guest's access to the PM1a blocks; false if @port is not one of
 * theirs.  Sets *poweroff when the guest writes SLP_EN with SLP_TYP 5,
 * our \_S5_.  No event ever happens: status reads 0; enable keeps what
 * is written (ACPICA checks that its enable bits stick), control reads
 * SCI_EN.  Whole-register accesses only, as ACPICA makes them.
 */
bool sl_acpi_pm_io(struct sl_vm *vm, uint16_t port, bool out, uint8_t *data,
		   unsigned int size, bool *poweroff)
{
	uint16_t v = 0;

	if (port < SL_PORT_PM1A_EVT || port >= SL_PORT_PM1A_CNT + 2)
		return false;
	if (size != 2) {
		if (!out)
			memset(data, 0xff, size);
		return true;
	}
	if (out) {
		memcpy(&v, data, 2);
		if (port == SL_PORT_PM1A_EVT + 2)
			vm->pm1_enable = v;
		if (port == SL_PORT_PM1A_CNT && (v & PM1_SLP_EN) &&
		    ((v >> 10) & 7) == 5)
			*poweroff = true;
		return true;
	}
	if (port == SL_PORT_PM1A_EVT + 2)
		v = vm->pm1_enable;
	else if (port == SL_PORT_PM1A_CNT)
		v = PM1_SCI_EN;
	memcpy(data, &v, 2);
	return true;
}
