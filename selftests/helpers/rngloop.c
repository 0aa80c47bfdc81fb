// SPDX-License-Identifier: GPL-2.0
/*
 * rngloop: the guest program of the launcher tests.  Prints, about every
 * 20 ms,
 *	R <n> <generation> <32 hex digits of getrandom(2)>
 * where <generation> is the snapblk clone generation read from the mapped
 * page of /dev/snapblk-gen (-1 without it).  After every READY lines it
 * writes snaplaunch's "ready" port (0x5e0), so a snapshot is taken
 * mid-loop, and goes on.  After line STOP it powers the guest off (ACPI
 * S5: snaplaunch exits), or reboots it with a third argument "reboot".
 *
 *	rngloop READY STOP [reboot]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/random.h>
#include <sys/reboot.h>
#include <time.h>
#include <unistd.h>

#include "snapblk_gen.h"

int main(int argc, char **argv)
{
	struct snapblk_gen g = { 0 };
	unsigned long ready, stop, n;
	unsigned char b[16];
	int have_gen, i;

	if (argc != 3 && !(argc == 4 && !strcmp(argv[3], "reboot"))) {
		fprintf(stderr, "usage: rngloop READY STOP [reboot]\n");
		return 2;
	}
	ready = strtoul(argv[1], NULL, 0);
	stop = strtoul(argv[2], NULL, 0);
	have_gen = snapblk_gen_open(&g) == 0;
	if (iopl(3))
		perror("rngloop: iopl");
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (n = 1; n <= stop; n++) {
		if (getrandom(b, sizeof(b), 0) != sizeof(b))
			return 1;
		printf("R %lu %" PRId64 " ", n,
		       have_gen ? (int64_t)snapblk_gen_current(&g) : -1);
		for (i = 0; i < (int)sizeof(b); i++)
			printf("%02x", b[i]);
		printf("\n");
		if (ready && n % ready == 0)
			outb(1, 0x5e0);
		nanosleep(&(struct timespec){ .tv_nsec = 20 * 1000 * 1000 },
			  NULL);
	}
	sync();
	reboot(argc == 4 ? RB_AUTOBOOT : RB_POWER_OFF);
	return 0;
}
