/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the snapblk userspace tools: the one error reporter
 * every tool uses, and the one number parser.  Messages have the form
 *
 *	prog: what failed: why
 *	prog: what to do about it
 */
#ifndef SNAPBLK_USER_UTIL_H
#define SNAPBLK_USER_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdnoreturn.h>

/* Version of the userspace tools, printed by each tool's --version. */
#define SNAPBLK_TOOLS_VERSION "0.6.0"

/* Set once by main(); prefixes every message. */
extern const char *prog_name;

/* Exit statuses shared by all tools (documented in their man pages). */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,		/* the operation failed */
	EXIT_USAGE = 2,		/* bad command line */
};

/*
 * Print "prog: <what>: <strerror(err)>" (": why" left out when err is 0),
 * then "prog: <hint>" when hint is not NULL.
 */
void err_report(int err, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* err_report(), then exit(status). */
noreturn void die(int status, int err, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * Parse @s as a decimal number from @min to @max into *@out: digits only
 * (no sign, space, base prefix or trailing text).  0, or -EINVAL with
 * *@out unchanged.  Every tool's number options go through this.
 */
int parse_ulong(const char *s, unsigned long min, unsigned long max,
		unsigned long *out);

/*
 * Parse a size: decimal bytes, or with a K, M, G or T suffix (either case,
 * binary: 1K is 1024), optionally followed by "iB" or "B" ("512K",
 * "4MiB", "1G", "65536").  0 with *out set, or -EINVAL (also on
 * overflow).  Every tool's size options go through this.
 */
int sb_parse_size(const char *s, uint64_t *out);

/*
 * The hint usage_die() prints, e.g. "run 'snapblkd --help' for usage";
 * set by main() (NULL: none).
 */
extern const char *usage_hint;

/* A command-line error: the message, then usage_hint; exit(EXIT_USAGE). */
noreturn void usage_die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* How sb_fmt_size() writes a size. */
enum sb_size_style {
	SB_SIZE_IEC,	/* "512 KiB", "1.5 GiB", "100 bytes": for people */
	SB_SIZE_SHORT,	/* "512K", "1.5G", "100B": for tables */
};

/*
 * The one size formatter: v bytes in the largest binary unit it holds at
 * least once, whole when exact, else with one decimal.  Returns buf.
 */
const char *sb_fmt_size(uint64_t v, enum sb_size_style style, char *buf,
			size_t len);

#endif
