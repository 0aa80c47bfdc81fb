// SPDX-License-Identifier: GPL-2.0
/*
 * The shared error helper prints "prog: what failed: why" and the hint on
 * its own line; JSON strings are escaped; numbers are digits in bounds.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "kselftest_harness.h"
#include "util.h"

/* Run fn with stream fd (1 or 2) redirected to a buffer. */
static void capture(int fd, void (*fn)(void), char *buf, size_t len)
{
	FILE *tmp = tmpfile();
	int saved = dup(fd);
	size_t n;

	fflush(NULL);
	dup2(fileno(tmp), fd);
	fn();
	fflush(NULL);
	dup2(saved, fd);
	close(saved);
	rewind(tmp);
	n = fread(buf, 1, len - 1, tmp);
	buf[n] = '\0';
	fclose(tmp);
}

static void report_with_hint(void)
{
	prog_name = "tool";
	err_report(ENOENT, "load the module first", "cannot open %s", "x");
}

static void report_without_errno(void)
{
	prog_name = "tool";
	err_report(0, NULL, "unknown command '%s'", "frob");
}

static void json_escapes(void)
{
	json_print_string("a\"b\\c\n\x01");
}

TEST(error_report_names_prog_what_and_why_then_hint)
{
	char buf[256];

	capture(2, report_with_hint, buf, sizeof(buf));
	EXPECT_STREQ("tool: cannot open x: No such file or directory\n"
		     "tool: load the module first\n", buf);
}

TEST(error_report_without_errno_has_no_reason)
{
	char buf[256];

	capture(2, report_without_errno, buf, sizeof(buf));
	EXPECT_STREQ("tool: unknown command 'frob'\n", buf);
}

TEST(json_strings_are_escaped)
{
	char buf[256];

	capture(1, json_escapes, buf, sizeof(buf));
	EXPECT_STREQ("\"a\\\"b\\\\c\\u000a\\u0001\"", buf);
}

TEST(numbers_are_digits_within_bounds)
{
	unsigned long v = 7;

	EXPECT_EQ(0, parse_ulong("0", 0, 10, &v));
	EXPECT_EQ(0UL, v);
	EXPECT_EQ(0, parse_ulong("4294967295", 1, 4294967295UL, &v));
	EXPECT_EQ(4294967295UL, v);
	v = 7;
	EXPECT_EQ(-EINVAL, parse_ulong("11", 0, 10, &v));
	EXPECT_EQ(-EINVAL, parse_ulong("0", 1, 10, &v));
	EXPECT_EQ(-EINVAL, parse_ulong("", 0, 10, &v));
	EXPECT_EQ(-EINVAL, parse_ulong("-1", 0, ~0UL, &v));
	EXPECT_EQ(-EINVAL, parse_ulong(" 1", 0, 10, &v));
	EXPECT_EQ(-EINVAL, parse_ulong("+1", 0, 10, &v));
	EXPECT_EQ(-EINVAL, parse_ulong("1x", 0, 10, &v));
	EXPECT_EQ(-EINVAL, parse_ulong("0x1", 0, 10, &v));
	EXPECT_EQ(-EINVAL, parse_ulong("99999999999999999999999", 0, ~0UL, &v));
	EXPECT_EQ(7UL, v);	/* unchanged on error */
}

TEST_HARNESS_MAIN
