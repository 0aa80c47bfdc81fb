// SPDX-License-Identifier: GPL-2.0
/*
 * File helpers: whole-file reads, atomic writes, tenant key files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "file.h"
#include "hex.h"
#include "util.h"

int sb_read_file_mode(const char *path, size_t max, uint8_t **buf,
		      size_t *len, mode_t *mode)
{
	size_t cap = 1 << 16, n = 0;
	uint8_t *p = NULL, *q;
	struct stat st;
	ssize_t r;
	int fd, ret;

	*buf = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		ret = -EISDIR;
		goto out;
	}
	if (mode)
		*mode = st.st_mode;
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max) {
		ret = -EFBIG;
		goto out;
	}
	if (S_ISREG(st.st_mode))
		cap = st.st_size + 1;
	for (;;) {
		if (n == cap || !p) {
			if (p)
				cap *= 2;
			q = realloc(p, cap);
			if (!q) {
				ret = -ENOMEM;
				goto out;
			}
			p = q;
		}
		r = read(fd, p + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			goto out;
		}
		if (!r)
			break;
		n += r;
		if (n > max) {
			ret = -EFBIG;
			goto out;
		}
	}
	*buf = p;
	*len = n;
	p = NULL;
	ret = 0;
out:
	free(p);
	close(fd);
	return ret;
}

int sb_read_file(const char *path, size_t max, uint8_t **buf, size_t *len)
{
	return sb_read_file_mode(path, max, buf, len, NULL);
}

int sb_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t r;

	while (len) {
		r = write(fd, p, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		p += r;
		len -= r;
	}
	return 0;
}

int sb_fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, ret = 0;

	if (!slash)
		strcpy(dir, ".");
	else if (slash == path)
		strcpy(dir, "/");
	else if ((size_t)(slash - path) >= sizeof(dir))
		return -ENAMETOOLONG;
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0 && errno != EINVAL)
		ret = -errno;
	close(fd);
	return ret;
}

int sb_write_file_atomic(const char *path, const void *buf, size_t len,
			 mode_t mode, bool excl)
{
	char tmp[PATH_MAX];
	int fd, ret, id;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid()) >=
	    (int)sizeof(tmp))
		return -ENAMETOOLONG;
	/* Removed by the signal handler, if one is installed, if killed. */
	id = sb_tmp_begin(AT_FDCWD, tmp);
	if (id == -EINTR)
		return id;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	ret = fd < 0 ? -errno : 0;
	if (id >= 0)
		sb_tmp_created(id);
	if (ret) {
		sb_tmp_forget(id);
		return ret;
	}
	/* open() applies the umask; keys must get exactly this mode. */
	ret = fchmod(fd, mode) < 0 ? -errno : 0;
	if (!ret)
		ret = sb_write_all(fd, buf, len);
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (!ret) {
		if (excl)
			ret = link(tmp, path) < 0 ? -errno : 0;
		else
			ret = rename(tmp, path) < 0 ? -errno : 0;
	}
	if (ret || excl)
		unlink(tmp);
	sb_tmp_forget(id);
	if (!ret)
		ret = sb_fsync_dir_of(path);
	return ret;
}

int sb_mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	struct stat st;
	size_t len = strlen(path), i;

	if (!len)
		return -ENOENT;
	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		if (buf[i - 1] == '/')
			continue;	/* "a//b" */
		buf[i] = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		if (stat(buf, &st) < 0)
			return -errno;
		if (!S_ISDIR(st.st_mode))
			return -ENOTDIR;
		buf[i] = path[i];
	}
	return 0;
}

DIR *sb_opendirat(int dirfd, const char *name, int flags)
{
	DIR *dir;
	int fd, err;

	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | flags);
	if (fd < 0)
		return NULL;
	dir = fdopendir(fd);
	if (!dir) {
		err = errno;
		close(fd);
		errno = err;
	}
	return dir;
}

int sb_sweep_tmp_entry(int dirfd, const char *name, const struct stat *st,
		       bool remove, uint64_t *count)
{
	if (!S_ISREG(st->st_mode) ||
	    !sb_tmp_is_stale(name, st->st_mtime, time(NULL)))
		return 0;
	if (remove && unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
		return -errno;
	(*count)++;
	return 0;
}

int sb_sweep_tmp(int dir_fd, const char *prefix, bool remove,
		 uint64_t *count)
{
	size_t plen = strlen(prefix);
	struct dirent *d;
	struct stat st;
	DIR *dir;
	int fd, ret = 0;

	dir = sb_opendirat(dir_fd, ".", 0);
	if (!dir)
		return -errno;
	fd = dirfd(dir);
	while ((d = readdir(dir))) {
		if (strncmp(d->d_name, prefix, plen) ||
		    !strstr(d->d_name, ".tmp-"))
			continue;
		if (fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		ret = sb_sweep_tmp_entry(fd, d->d_name, &st, remove, count) ?:
		      ret;
	}
	closedir(dir);
	return ret;
}

int sb_parse_tenant_key(const uint8_t *buf, size_t len, unsigned int flags,
			uint8_t key[SNAPBLK_TENANT_KEY_LEN])
{
	const size_t hexlen = 2 * SNAPBLK_TENANT_KEY_LEN;
	int hi, lo;
	size_t i;

	if (flags & SB_KEY_RAW) {
		if (len != SNAPBLK_TENANT_KEY_LEN)
			return -EINVAL;
		memcpy(key, buf, len);
		return 0;
	}
	/* Trailing white space: "\n", "\r\n", spaces, tabs. */
	while (len > hexlen && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
				buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	if (len != hexlen)
		return len == SNAPBLK_TENANT_KEY_LEN ? -EBADMSG : -EINVAL;
	for (i = 0; i < SNAPBLK_TENANT_KEY_LEN; i++) {
		hi = sb_hexval(buf[2 * i]);
		lo = sb_hexval(buf[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			explicit_bzero(key, SNAPBLK_TENANT_KEY_LEN);
			return len == SNAPBLK_TENANT_KEY_LEN ? -EBADMSG :
			       -EINVAL;
		}
		key[i] = hi << 4 | lo;
	}
	return 0;
}

int sb_read_tenant_key_opt(const char *path, unsigned int flags,
			   uint8_t key[SNAPBLK_TENANT_KEY_LEN], bool *loose)
{
	mode_t mode = 0;
	uint8_t *buf;
	size_t len;
	int ret;

	*loose = false;
	/* The mode of the file read, not of whatever the name is later. */
	ret = sb_read_file_mode(path, 4096, &buf, &len, &mode);
	if (ret)
		return ret == -EFBIG ? -EINVAL : ret;
	*loose = mode & 077;
	ret = sb_parse_tenant_key(buf, len, flags, key);
	explicit_bzero(buf, len);
	free(buf);
	return ret;
}

int sb_read_tenant_key(const char *path,
		       uint8_t key[SNAPBLK_TENANT_KEY_LEN], bool *loose)
{
	return sb_read_tenant_key_opt(path, 0, key, loose);
}

void sb_format_tenant_key(const uint8_t key[SNAPBLK_TENANT_KEY_LEN],
			  char out[2 * SNAPBLK_TENANT_KEY_LEN + 2])
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < SNAPBLK_TENANT_KEY_LEN; i++) {
		out[2 * i] = digits[key[i] >> 4];
		out[2 * i + 1] = digits[key[i] & 15];
	}
	out[2 * SNAPBLK_TENANT_KEY_LEN] = '\n';
	out[2 * SNAPBLK_TENANT_KEY_LEN + 1] = '\0';
}

void sb_load_tenant_key_opt(const char *path, unsigned int flags,
			    uint8_t key[SNAPBLK_TENANT_KEY_LEN])
{
	char hint[PATH_MAX + 64];
	bool loose;
	int ret;

	ret = sb_read_tenant_key_opt(path, flags, key, &loose);
	if (!ret && loose) {
		explicit_bzero(key, SNAPBLK_TENANT_KEY_LEN);
		snprintf(hint, sizeof(hint), "restrict it: chmod 600 %s",
			 path);
		die(EXIT_FAIL, 0, hint, "tenant key %s is readable by other "
		    "users: refused", path);
	}
	if (ret == -EBADMSG)
		die(EXIT_FAIL, 0, "key files hold 64 hex digits; convert a "
		    "32-byte binary key with 'xxd -p -c 32 RAW > FILE' (or "
		    "give snapblk-build --raw-key)",
		    "%s is not a tenant key: 32 bytes, not hex", path);
	if (ret == -EINVAL)
		die(EXIT_FAIL, 0, flags & SB_KEY_RAW ?
		    "--raw-key reads exactly 32 bytes" :
		    "a tenant key file holds 64 hex digits, as "
		    "written by 'snapblk-build keygen -o FILE'",
		    "%s is not a tenant key", path);
	if (ret)
		die(EXIT_FAIL, -ret, ret == -ENOENT ?
		    "create one with 'snapblk-build keygen -o FILE', or check "
		    "--key-file" : "check --key-file and its permissions",
		    "cannot read tenant key %s", path);
}

void sb_load_tenant_key(const char *path, uint8_t key[SNAPBLK_TENANT_KEY_LEN])
{
	sb_load_tenant_key_opt(path, 0, key);
}
