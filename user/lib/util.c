// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const char *usage_hint;

const char *prog_name = "snapblk";

static void err_vreport(int err, const char *hint, const char *fmt,
			va_list ap)
{
	fprintf(stderr, "%s: ", prog_name);
	vfprintf(stderr, fmt, ap);
	if (err)
		fprintf(stderr, ": %s", strerror(err));
	fputc('\n', stderr);
	if (hint)
		fprintf(stderr, "%s: %s\n", prog_name, hint);
}

void err_report(int err, const char *hint, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vreport(err, hint, fmt, ap);
	va_end(ap);
}

noreturn void die(int status, int err, const char *hint, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vreport(err, hint, fmt, ap);
	va_end(ap);
	exit(status);
}

int parse_ulong(const char *s, unsigned long min, unsigned long max,
		unsigned long *out)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int sb_parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K':
		shift = 10;
		break;
	case 'm': case 'M':
		shift = 20;
		break;
	case 'g': case 'G':
		shift = 30;
		break;
	case 't': case 'T':
		shift = 40;
		break;
	case '\0':
		break;
	default:
		return -EINVAL;
	}
	if (shift) {
		end++;
		if (!strcmp(end, "iB") || !strcmp(end, "B"))
			end += strlen(end);
	}
	if (*end || (shift && v > (~0ULL >> shift)))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

noreturn void usage_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vreport(0, usage_hint, fmt, ap);
	va_end(ap);
	exit(EXIT_USAGE);
}

const char *sb_fmt_size(uint64_t v, enum sb_size_style style, char *buf,
			size_t len)
{
	static const char *const iec[] = { "KiB", "MiB", "GiB", "TiB", "PiB",
					   "EiB" };
	static const char letters[] = "KMGTPE";
	uint64_t div = 1;
	int u = -1;

	while (v / div >= 1024 && u < 5) {
		div *= 1024;
		u++;
	}
	if (u < 0) {
		snprintf(buf, len, style == SB_SIZE_SHORT ? "%llu" "B" :
			 "%llu bytes", (unsigned long long)v);
	} else if (v % div == 0) {
		if (style == SB_SIZE_SHORT)
			snprintf(buf, len, "%llu%c",
				 (unsigned long long)(v / div), letters[u]);
		else
			snprintf(buf, len, "%llu %s",
				 (unsigned long long)(v / div), iec[u]);
	} else {
		if (style == SB_SIZE_SHORT)
			snprintf(buf, len, "%.1f%c", (double)v / div,
				 letters[u]);
		else
			snprintf(buf, len, "%.1f %s", (double)v / div, iec[u]);
	}
	return buf;
}
