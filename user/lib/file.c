// SPDX-License-Identifier: GPL-2.0
/*
 * File helpers: whole-file reads, atomic writes, tenant key files.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "hex.h"
#include "util.h"

int sb_read_file(const char *path, size_t max, uint8_t **buf, size_t *len)
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
	int fd, ret;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid()) >=
	    (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
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
	if (!ret)
		ret = sb_fsync_dir_of(path);
	return ret;
}

int sb_read_tenant_key(const char *path,
		       uint8_t key[SNAPBLK_TENANT_KEY_LEN], bool *loose)
{
	const size_t hexlen = 2 * SNAPBLK_TENANT_KEY_LEN;
	struct stat st;
	uint8_t *buf;
	size_t len, got, i;
	int ret, hi, lo;

	*loose = false;
	if (stat(path, &st) == 0 && (st.st_mode & 077))
		*loose = true;
	ret = sb_read_file(path, 4096, &buf, &len);
	if (ret)
		return ret == -EFBIG ? -EINVAL : ret;
	got = len;
	if (len == SNAPBLK_TENANT_KEY_LEN) {
		memcpy(key, buf, len);
		goto out;
	}
	if (len == hexlen + 1 && buf[hexlen] == '\n')
		len--;
	if (len != hexlen) {
		ret = -EINVAL;
		goto out;
	}
	for (i = 0; i < SNAPBLK_TENANT_KEY_LEN; i++) {
		hi = sb_hexval(buf[2 * i]);
		lo = sb_hexval(buf[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			ret = -EINVAL;
			goto out;
		}
		key[i] = hi << 4 | lo;
	}
out:
	explicit_bzero(buf, got);
	free(buf);
	return ret;
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

void sb_load_tenant_key(const char *path, uint8_t key[SNAPBLK_TENANT_KEY_LEN])
{
	bool loose;
	int ret;

	ret = sb_read_tenant_key(path, key, &loose);
	if (ret == -EINVAL)
		die(EXIT_FAIL, 0, "a tenant key file holds 64 hex digits, as "
		    "written by 'snapblk-build keygen -o FILE'",
		    "%s is not a tenant key", path);
	if (ret)
		die(EXIT_FAIL, -ret, ret == -ENOENT ?
		    "create one with 'snapblk-build keygen -o FILE', or check "
		    "--key-file" : "check --key-file and its permissions",
		    "cannot read tenant key %s", path);
	if (loose)
		err_report(0, "restrict it with 'chmod 600' on the key file",
			   "warning: tenant key %s is readable by other users",
			   path);
}
