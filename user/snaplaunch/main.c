// SPDX-License-Identifier: GPL-2.0
/*
 * snaplaunch: boot a Linux guest on KVM, snapshot it when it says it is
 * ready, restore clones of the snapshot.  See Documentation/launcher.md
 * and snaplaunch(1).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "snaplaunch.h"
#include "util.h"

static void usage(FILE *f)
{
	fprintf(f,
"usage: snaplaunch run --kernel BZIMAGE [--initrd FILE] [--append CMDLINE]\n"
"                      [--mem MB] [--snapshot-on-ready DIR]\n"
"       snaplaunch restore DIR [--clones N [--parallel P] --log-dir DIR]\n"
"                      [--memory FILE]\n"
"                      [--snapshot-on-ready DIR2] [--verbose]\n"
"       snaplaunch version | help\n"
"\n"
"Boot a Linux guest on KVM with one vCPU, an in-kernel irqchip and PIT,\n"
"kvmclock, ACPI (power off, reset, the VM generation ID device) and a\n"
"serial console on this terminal; snapshot it when it writes to I/O port\n"
"0x5e0; restore clones of the snapshot, each told through the snapblk\n"
"generation page (snapblk.genpage=4K@0xfeb00000:5 is added to the command\n"
"line) and the VM generation ID before it runs an instruction.\n"
"\n"
"run options:\n"
"  -k, --kernel FILE         a bzImage (e.g. /boot/vmlinuz-*)\n"
"  -i, --initrd FILE         an initramfs\n"
"  -a, --append CMDLINE      kernel command line (console=ttyS0 ...)\n"
"  -m, --mem MB              guest memory, 64 to 3072 (default 256)\n"
"  -s, --snapshot-on-ready DIR  when the guest writes port 0x5e0, pause it,\n"
"                            write the snapshot DIR (must not exist), exit\n"
"restore options:\n"
"  -n, --clones N            start N clones (default 1)\n"
"  -p, --parallel P          run at most P of them at once (default: all)\n"
"  -l, --log-dir DIR         clone I's console goes to DIR/clone-I.log\n"
"                            (needed for more than one clone)\n"
"  -M, --memory FILE         guest memory from FILE instead of DIR/memory\n"
"                            (e.g. a snapblk device with the same bytes)\n"
"  -s, --snapshot-on-ready DIR2  (one clone) snapshot it again when ready\n"
"  -v, --verbose             report each clone's generation on stderr\n"
"\n"
"Exit status: 0 the guest powered off, rebooted, shut down or was\n"
"snapshotted; 1 failure; 2 usage error.  See snaplaunch(1).\n");
}

static unsigned long parse_num(const char *s, const char *opt,
			       unsigned long min, unsigned long max)
{
	unsigned long v;

	if (parse_ulong(s, min, max, &v))
		die(EXIT_USAGE, 0, NULL, "%s must be a number from %lu to %lu",
		    opt, min, max);
	return v;
}

static int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "append", required_argument, NULL, 'a' },
		{ "mem", required_argument, NULL, 'm' },
		{ "snapshot-on-ready", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sl_boot b = { .cmdline = "console=ttyS0" };
	struct sl_vm vm = { 0 };
	char cmdline[SL_CMDLINE_MAX];
	unsigned long mem_mb = 256;
	enum sl_stop stop;
	uint8_t *mem;
	int opt;

	while ((opt = getopt_long(argc, argv, "k:i:a:m:s:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'k': b.kernel = optarg; break;
		case 'i': b.initrd = optarg; break;
		case 'a': b.cmdline = optarg; break;
		case 'm': mem_mb = parse_num(optarg, "--mem", 64, 3072); break;
		case 's': vm.snapshot_dir = optarg; break;
		case 'h': usage(stdout); return EXIT_OK;
		default:
			die(EXIT_USAGE, 0, "run 'snaplaunch help'",
			    "bad option for 'run'");
		}
	}
	if (!b.kernel || optind != argc)
		die(EXIT_USAGE, 0, "run 'snaplaunch help'",
		    "usage: snaplaunch run --kernel BZIMAGE [options]");
	if (vm.snapshot_dir && !access(vm.snapshot_dir, F_OK))
		die(EXIT_USAGE, EEXIST, "remove it or choose another",
		    "snapshot directory %s", vm.snapshot_dir);
	snprintf(cmdline, sizeof(cmdline), "%s snapblk.genpage=4K@%#llx:%d",
		 b.cmdline, (unsigned long long)SL_GENPAGE, SL_GENPAGE_IRQ);
	b.cmdline = cmdline;

	sl_kvm_open(&vm);
	mem = mmap(NULL, mem_mb << 20, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		die(EXIT_FAIL, errno, NULL, "cannot allocate %lu MiB", mem_mb);
	sl_vm_create(&vm, mem_mb << 20, mem);
	sl_vcpu_create(&vm);
	sl_genpage_init(&vm);
	sl_boot_setup(&vm, &b);
	sl_serial_init(&vm, STDIN_FILENO, STDOUT_FILENO);
	sl_serial_start_input(&vm);
	stop = sl_run(&vm);
	if (stop == SL_STOP_SNAPSHOT) {
		sl_snapshot_save(&vm, vm.snapshot_dir);
		fprintf(stderr, "snaplaunch: snapshot written to %s\n",
			vm.snapshot_dir);
	}
	return EXIT_OK;
}

static int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "clones", required_argument, NULL, 'n' },
		{ "parallel", required_argument, NULL, 'p' },
		{ "log-dir", required_argument, NULL, 'l' },
		{ "memory", required_argument, NULL, 'M' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "snapshot-on-ready", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sl_restore r = { .clones = 1 };
	int opt;

	while ((opt = getopt_long(argc, argv, "n:p:l:M:vs:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'n': r.clones = parse_num(optarg, "--clones", 1, 1024); break;
		case 'p': r.parallel = parse_num(optarg, "--parallel", 1, 1024); break;
		case 'l': r.log_dir = optarg; break;
		case 'M': r.memory = optarg; break;
		case 'v': r.verbose = true; break;
		case 's': r.snapshot_dir = optarg; break;
		case 'h': usage(stdout); return EXIT_OK;
		default:
			die(EXIT_USAGE, 0, "run 'snaplaunch help'",
			    "bad option for 'restore'");
		}
	}
	if (optind != argc - 1)
		die(EXIT_USAGE, 0, "run 'snaplaunch help'",
		    "usage: snaplaunch restore DIR [options]");
	r.dir = argv[optind];
	return sl_restore(&r);
}

int main(int argc, char **argv)
{
	prog_name = "snaplaunch";
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "restore"))
		return cmd_restore(argc - 1, argv + 1);
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("snaplaunch %s\n", SNAPBLK_TOOLS_VERSION);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "-h")) {
		usage(stdout);
		return EXIT_OK;
	}
	die(EXIT_USAGE, 0, "run 'snaplaunch help'", "unknown command '%s'",
	    argv[1]);
}
