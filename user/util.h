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

#include <stdnoreturn.h>

/* Version of the userspace tools, printed by each tool's --version. */
#define SNAPBLK_TOOLS_VERSION "0.4.0"

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

/* Write s to stdout as a JSON string literal, quotes included. */
void json_print_string(const char *s);

#endif
