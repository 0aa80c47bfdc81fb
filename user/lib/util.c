// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* ------------------------------------------------ temporary files */

enum { TMP_FREE, TMP_FILLING, TMP_USED };

/*
 * One registered temporary file: its directory and name.  tmp_state[i]
 * moves FREE -> FILLING (the claiming thread alone writes tmp_slots[i])
 * -> USED (the handler may read it) -> FREE; only compare-and-swap and
 * stores change it.  The states are an array of their own, so that a scan
 * reads a few cache lines, not a page per slot.
 */
struct tmp_slot {
	int dirfd;
	char name[PATH_MAX];
};

static atomic_int tmp_state[SB_TMP_SLOTS];
static struct tmp_slot tmp_slots[SB_TMP_SLOTS];
/* Set by the handler: no new temporary file from then on. */
static atomic_bool tmp_dying;
/* Threads between sb_tmp_begin() and sb_tmp_created(). */
static atomic_int tmp_creating;
/* Whether this thread is one of them (the handler may run inside). */
static __thread volatile sig_atomic_t tmp_self_creating;
static void (*tmp_abort_hook)(void);

int sb_tmp_begin(int dirfd, const char *name)
{
	size_t len = strlen(name);
	int i, expect;

	if (len >= PATH_MAX)
		return -ENAMETOOLONG;
	/* Counted first, so that the handler waits for this create. */
	atomic_fetch_add(&tmp_creating, 1);
	tmp_self_creating = 1;
	if (atomic_load(&tmp_dying)) {
		sb_tmp_created(-1);
		return -EINTR;
	}
	for (i = 0; i < SB_TMP_SLOTS; i++) {
		expect = TMP_FREE;
		if (atomic_compare_exchange_strong(&tmp_state[i], &expect,
						   TMP_FILLING))
			break;
	}
	if (i == SB_TMP_SLOTS) {
		sb_tmp_created(-1);
		return -ENOSPC;
	}
	tmp_slots[i].dirfd = dirfd;
	memcpy(tmp_slots[i].name, name, len + 1);
	atomic_store(&tmp_state[i], TMP_USED);
	return i;
}

void sb_tmp_created(int id)
{
	(void)id;
	tmp_self_creating = 0;
	atomic_fetch_sub(&tmp_creating, 1);
}

void sb_tmp_forget(int id)
{
	if (id >= 0 && id < SB_TMP_SLOTS)
		atomic_store(&tmp_state[id], TMP_FREE);
}

static void tmp_handler(int sig)
{
	struct timespec ms = { 0, 1000 * 1000 };
	int i, others, saved = errno;

	atomic_store(&tmp_dying, true);
	/* Let creates in other threads finish (at most a second). */
	for (i = 0; i < 1000; i++) {
		others = atomic_load(&tmp_creating) - !!tmp_self_creating;
		if (others <= 0)
			break;
		nanosleep(&ms, NULL);
	}
	for (i = 0; i < SB_TMP_SLOTS; i++)
		if (atomic_load(&tmp_state[i]) == TMP_USED)
			unlinkat(tmp_slots[i].dirfd, tmp_slots[i].name, 0);
	if (tmp_abort_hook)
		tmp_abort_hook();
	errno = saved;
	/* SA_RESETHAND put the default action back; SA_NODEFER: no block. */
	raise(sig);
}

int sb_tmp_install_signals(void (*abort_hook)(void))
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	struct sigaction sa, old;
	size_t i;

	tmp_abort_hook = abort_hook;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = tmp_handler;
	sa.sa_flags = SA_RESETHAND | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	/* One handler at a time: a second signal waits for the first. */
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&sa.sa_mask, sigs[i]);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		if (sigaction(sigs[i], NULL, &old) < 0)
			return -errno;
		/* Ignored (nohup, a shell's background job): stays so. */
		if (old.sa_handler == SIG_IGN)
			continue;
		if (sigaction(sigs[i], &sa, NULL) < 0)
			return -errno;
	}
	return 0;
}

long sb_tmp_name_pid(const char *name)
{
	const char *p = strstr(name, ".tmp-"), *q;
	long pid = 0;
	int i;

	if (!p)
		return 0;
	/* The last one: a manifest "x.tmp-1.m" has "x.tmp-1.m.tmp-PID". */
	while ((q = strstr(p + 1, ".tmp-")))
		p = q;
	p += 5;
	/* A store's ".tmp-ADDR-PID-SEQ": skip the address. */
	for (i = 0; i < 64 && ((p[i] >= '0' && p[i] <= '9') ||
			       (p[i] >= 'a' && p[i] <= 'f')); i++)
		;
	if (i == 64 && p[64] == '-')
		p += 65;
	if (*p < '1' || *p > '9')
		return 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		pid = pid * 10 + (*p - '0');
		if (pid > INT_MAX)
			return 0;
	}
	if (*p && *p != '-')
		return 0;
	return pid;
}

int sb_tmp_is_stale(const char *name, long mtime, long now)
{
	long pid = sb_tmp_name_pid(name);

	if (!pid)
		return 0;
	if (now - mtime > SB_TMP_STALE_SECS)
		return 1;
	if (pid == getpid())
		return 0;
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}
