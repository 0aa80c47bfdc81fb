/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the snapblk selftests: loading and unloading the module
 * under test.  The tests run as root inside the test VM (selftests/run-vm);
 * run_tests sets SNAPBLK_KO to the module built for the running kernel.
 */
#ifndef SNAPBLK_SELFTEST_LIB_H
#define SNAPBLK_SELFTEST_LIB_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

/* Path of the snapblk.ko to test: $SNAPBLK_KO, else build/<release>/. */
static inline const char *sb_ko_path(void)
{
	static char path[4096];
	struct utsname u;
	const char *env = getenv("SNAPBLK_KO");

	if (env)
		return env;
	uname(&u);
	snprintf(path, sizeof(path), "build/%s/snapblk.ko", u.release);
	return path;
}

static inline bool sb_module_loaded(const char *name)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "/sys/module/%s", name);
	return stat(path, &st) == 0;
}

/* 0 or -errno, like the finit_module() system call. */
static inline int sb_load(const char *ko, const char *params)
{
	int fd, ret;

	fd = open(ko, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, params ? params : "", 0);
	ret = ret ? -errno : 0;
	close(fd);
	return ret;
}

static inline int sb_unload(const char *name)
{
	return syscall(SYS_delete_module, name, O_NONBLOCK) ? -errno : 0;
}

/* Read a small text file into buf, without the trailing newline. */
static inline int sb_read_file(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return 0;
}

/* Copy file @from to @to (created or truncated); 0 or -errno. */
static inline int sb_copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in, out, ret = 0;
	ssize_t n;

	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		ret = -errno;
		close(in);
		return ret;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		if (write(out, buf, n) != n) {
			ret = -EIO;
			break;
		}
	}
	if (n < 0)
		ret = -errno;
	close(in);
	close(out);
	return ret;
}

#endif
