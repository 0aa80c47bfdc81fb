// SPDX-License-Identifier: GPL-2.0
/*
 * getrandom32: print 32 bytes of getrandom(2) output as 64 hex digits,
 * for the clone tests (what an application asking the kernel RNG gets).
 */
#include <stdio.h>
#include <sys/random.h>

int main(void)
{
	unsigned char b[32];
	size_t i;

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
		perror("getrandom32: getrandom");
		return 1;
	}
	for (i = 0; i < sizeof(b); i++)
		printf("%02x", b[i]);
	printf("\n");
	return 0;
}
