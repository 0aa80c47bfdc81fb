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
	/* A manifest given to any tool (sb_manifest_exit() maps to these): */
	SB_EXIT_AUTH = 4,	/* authentication failed: wrong key, damage */
	SB_EXIT_MANIFEST = 5,	/* not a manifest, truncated, unsupported */
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

/*
 * Temporary files to remove if the process is killed by a signal.
 *
 * A file that is written under a temporary name and then renamed (a
 * store's chunk, a manifest) is registered here for as long as it exists
 * under that name.  The handler sb_tmp_install_signals() sets up (SIGINT,
 * SIGTERM, SIGHUP, SIGQUIT) waits (at most a second) for files being
 * created right now, unlinks every registered file, calls the abort hook
 * and re-raises the signal with its default action, so the exit status
 * still says which signal ended the process.  It only uses
 * async-signal-safe calls: the registry is a fixed table of slots whose
 * state is changed with atomics, never locked.
 *
 * Usage, from any thread:
 *	id = sb_tmp_begin(dirfd, name);	   (before creating the file)
 *	fd = openat(dirfd, name, O_CREAT | O_EXCL ...);
 *	if (id >= 0) sb_tmp_created(id);   (whether or not that worked)
 *	...
 *	sb_tmp_forget(id);		   (after the rename or unlink)
 * sb_tmp_begin() returns -EINTR once the handler runs (create nothing
 * then), or -ENOSPC when the table is full (create it anyway: the file is
 * then only removed by the next build's stale file sweep).  Only an id
 * >= 0 needs sb_tmp_created(); sb_tmp_forget() ignores a negative id.
 * dirfd (AT_FDCWD for a path) must stay open while the file is
 * registered.
 */
#define SB_TMP_SLOTS	4096

int sb_tmp_begin(int dirfd, const char *name);
void sb_tmp_created(int id);
void sb_tmp_forget(int id);

/*
 * Install the handler described above (for each of those signals that
 * is not ignored: an ignored one, as nohup and shells do it for
 * background jobs, stays ignored).  Threads that should never run it
 * (workers) are best started with those signals blocked; the handler does
 * not rely on it.  abort_hook, when not NULL, must be async-signal-safe.
 * 0 or -errno.
 */
int sb_tmp_install_signals(void (*abort_hook)(void));

/*
 * The pid a temporary file name written by these tools carries
 * ("X.tmp-PID", ".tmp-ADDR-PID-SEQ"), or 0 when name is not one.
 */
long sb_tmp_name_pid(const char *name);

/*
 * Whether a temporary file is stale: its pid is not a running process on
 * this host, or it was last modified more than SB_TMP_STALE_SECS ago (so
 * that a file of a pid reused since is removed too).
 */
#define SB_TMP_STALE_SECS	3600
int sb_tmp_is_stale(const char *name, long mtime, long now);

#endif
