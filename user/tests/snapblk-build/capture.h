/* SPDX-License-Identifier: GPL-2.0 */
/*
 * For the builder's C host tests: run a function with its standard error
 * caught, to check the messages the library reports with err_report().
 */
#ifndef SNAPBLK_TESTS_CAPTURE_H
#define SNAPBLK_TESTS_CAPTURE_H

#include <stdio.h>
#include <unistd.h>

/* Run @fn(@arg) with stderr into @buf (@len bytes, NUL-terminated). */
static inline int with_stderr(int (*fn)(void *), void *arg, char *buf,
			      size_t len)
{
	FILE *tmp = tmpfile();
	int saved = dup(2), ret;
	size_t n;

	fflush(NULL);
	dup2(fileno(tmp), 2);
	ret = fn(arg);
	fflush(NULL);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	n = fread(buf, 1, len - 1, tmp);
	buf[n] = '\0';
	fclose(tmp);
	return ret;
}

#endif
