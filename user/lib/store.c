// SPDX-License-Identifier: GPL-2.0
/*
 * Directory chunk store with atomic, batched-durable writes, and reads
 * that a hostile store cannot block or lead outside.  See store.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "hex.h"
#include "chunk.h"
#include "file.h"
#include "store.h"
#include "util.h"

/* ".tmp-" + 64 hex + "-" + pid + "-" + sequence */
#define TMP_NAME_LEN	(3 + 5 + 2 * SNAPBLK_ADDR_LEN + 24 + 1)

/* A chunk written under its temporary name, not yet renamed. */
struct pending {
	char tmp[TMP_NAME_LEN];		/* relative to the store directory */
	char name[SB_STORE_NAME_LEN];	/* its final name */
	int reg;			/* sb_tmp_begin() slot, or < 0 */
};

/*
 * An open store.  dirfd and chunk_size are set at open and read-only
 * after; lock guards fanout_made, seq and the pending batch (pending,
 * npending, cap, pending_bytes), which sb_store_sync() and
 * sb_store_close() take without it (they run once the putters are done).
 */
struct sb_store {
	int dirfd;			/* the store directory */
	uint32_t chunk_size;
	pthread_mutex_t lock;
	bool fanout_made[256];		/* fan-out directories known to exist */
	unsigned long seq;		/* the next temporary file's number */
	struct pending *pending;	/* written, not yet synced */
	size_t npending, cap;
	uint64_t pending_bytes;
};

void sb_store_name(const uint8_t addr[SNAPBLK_ADDR_LEN],
		   char name[SB_STORE_NAME_LEN])
{
	char hex[2 * SNAPBLK_ADDR_LEN + 1];

	sb_hex(addr, SNAPBLK_ADDR_LEN, hex);
	snprintf(name, SB_STORE_NAME_LEN, "%.2s/%s", hex, hex);
}

int sb_store_open(const char *dir, uint32_t chunk_size, bool writable,
		  struct sb_store **out)
{
	struct sb_store *st;
	int fd;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (writable && faccessat(fd, ".", W_OK | X_OK, AT_EACCESS) < 0) {
		close(fd);
		return -errno;
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		close(fd);
		return -ENOMEM;
	}
	st->dirfd = fd;
	st->chunk_size = chunk_size;
	pthread_mutex_init(&st->lock, NULL);
	*out = st;
	return 0;
}

void sb_store_close(struct sb_store *st)
{
	size_t i;

	if (!st)
		return;
	for (i = 0; i < st->npending; i++) {
		unlinkat(st->dirfd, st->pending[i].tmp, 0);
		sb_tmp_forget(st->pending[i].reg);
	}
	free(st->pending);
	pthread_mutex_destroy(&st->lock);
	close(st->dirfd);
	free(st);
}

int sb_store_has(struct sb_store *st, const uint8_t addr[SNAPBLK_ADDR_LEN])
{
	char name[SB_STORE_NAME_LEN];
	struct stat s;

	sb_store_name(addr, name);
	if (fstatat(st->dirfd, name, &s, 0) < 0)
		return errno == ENOENT ? 0 : -errno;
	return S_ISREG(s.st_mode) && (uint64_t)s.st_size == st->chunk_size;
}

/* syncfs() the batch, then rename it into place. */
static int commit(struct sb_store *st, struct pending *p, size_t n)
{
	int ret = 0;
	size_t i;

	if (n && syncfs(st->dirfd) < 0)
		ret = -errno;
	for (i = 0; i < n; i++) {
		if (!ret && renameat(st->dirfd, p[i].tmp, st->dirfd,
				     p[i].name) < 0)
			ret = -errno;
		if (ret)
			unlinkat(st->dirfd, p[i].tmp, 0);
		sb_tmp_forget(p[i].reg);
	}
	return ret;
}

static int make_fanout(struct sb_store *st, const char *name)
{
	char dir[3] = { name[0], name[1], '\0' };
	unsigned int idx;
	bool made;

	idx = (unsigned int)strtoul(dir, NULL, 16);
	pthread_mutex_lock(&st->lock);
	made = st->fanout_made[idx];
	pthread_mutex_unlock(&st->lock);
	if (made)
		return 0;
	if (mkdirat(st->dirfd, dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	pthread_mutex_lock(&st->lock);
	st->fanout_made[idx] = true;
	pthread_mutex_unlock(&st->lock);
	return 0;
}

int sb_store_put(struct sb_store *st, const uint8_t addr[SNAPBLK_ADDR_LEN],
		 const void *data, size_t len)
{
	struct pending p, *batch = NULL, *q;
	size_t nbatch = 0;
	unsigned long seq;
	int fd, ret;

	sb_store_name(addr, p.name);
	ret = make_fanout(st, p.name);
	if (ret)
		return ret;
	pthread_mutex_lock(&st->lock);
	seq = st->seq++;
	pthread_mutex_unlock(&st->lock);
	snprintf(p.tmp, sizeof(p.tmp), "%.2s/.tmp-%s-%d-%lu", p.name,
		 p.name + 3, (int)getpid(), seq);

	/* Registered so that a signal handler can remove it. */
	p.reg = sb_tmp_begin(st->dirfd, p.tmp);
	if (p.reg == -EINTR)
		return p.reg;
	fd = openat(st->dirfd, p.tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    0644);
	ret = fd < 0 ? -errno : 0;
	if (p.reg >= 0)
		sb_tmp_created(p.reg);
	if (ret) {
		sb_tmp_forget(p.reg);
		return ret;
	}
	ret = sb_write_all(fd, data, len);
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (ret) {
		unlinkat(st->dirfd, p.tmp, 0);
		sb_tmp_forget(p.reg);
		return ret;
	}

	pthread_mutex_lock(&st->lock);
	if (st->npending == st->cap) {
		st->cap = st->cap ? 2 * st->cap : 256;
		q = realloc(st->pending, st->cap * sizeof(*q));
		if (!q) {
			pthread_mutex_unlock(&st->lock);
			unlinkat(st->dirfd, p.tmp, 0);
			sb_tmp_forget(p.reg);
			return -ENOMEM;
		}
		st->pending = q;
	}
	st->pending[st->npending++] = p;
	st->pending_bytes += len;
	if (st->pending_bytes >= SB_STORE_BATCH) {
		/* Take the batch; others go on filling a new one. */
		batch = st->pending;
		nbatch = st->npending;
		st->pending = NULL;
		st->npending = st->cap = 0;
		st->pending_bytes = 0;
	}
	pthread_mutex_unlock(&st->lock);

	if (batch) {
		ret = commit(st, batch, nbatch);
		free(batch);
	}
	return ret;
}

int sb_store_sync(struct sb_store *st)
{
	int ret;

	ret = commit(st, st->pending, st->npending);
	st->npending = 0;
	st->pending_bytes = 0;
	/* The renames themselves. */
	if (!ret && syncfs(st->dirfd) < 0)
		ret = -errno;
	return ret;
}

const char *sb_store_type_name(unsigned int type)
{
	switch (type & S_IFMT) {
	case S_IFREG:
		return "regular file";
	case S_IFDIR:
		return "directory";
	case S_IFLNK:
		return "symbolic link";
	case S_IFIFO:
		return "fifo";
	case S_IFSOCK:
		return "socket";
	case S_IFCHR:
		return "character device";
	case S_IFBLK:
		return "block device";
	}
	return "unknown file type";
}

/* Set once openat2() said ENOSYS (before Linux 5.6, or a filter). */
static atomic_bool no_openat2;

/*
 * Open name ("ab/abcd...") beneath the store with flags (O_PATH, or
 * O_RDONLY | O_NONBLOCK), following no symbolic link: a trailing one is
 * opened itself with O_PATH (fstat() then says what it is), one in the
 * fan-out directory's place is -ELOOP.  A descriptor or -errno.
 */
static int open_beneath(int dirfd, const char *name, int flags)
{
	struct open_how how = {
		.flags = flags | O_NOFOLLOW | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
			   RESOLVE_NO_MAGICLINKS,
	};
	char fanout[3] = { name[0], name[1], '\0' };
	struct stat s;
	int fd, sub;

	if (!atomic_load(&no_openat2)) {
		fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
		if (fd >= 0)
			return fd;
		if (errno != ENOSYS)
			return -errno;
		atomic_store(&no_openat2, true);
	}
	/* One component at a time: the names are "ab" and hex digits. */
	sub = openat(dirfd, fanout, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (sub < 0)
		return -errno;
	if (fstat(sub, &s) < 0)
		fd = -errno;
	else if (S_ISLNK(s.st_mode))
		fd = -ELOOP;
	else if (!S_ISDIR(s.st_mode))
		fd = -ENOTDIR;
	else if ((fd = openat(sub, name + 3, how.flags)) < 0)
		fd = -errno;
	close(sub);
	return fd;
}

/*
 * Open for reading the regular file that the O_PATH descriptor pfd (of
 * name, found as *s) refers to.  Through /proc/self/fd it is that very
 * file; without /proc, name is opened again and must still be it (a
 * store changed in between could have us open a device there first).
 */
static int reopen_regular(int pfd, int dirfd, const char *name,
			  const struct stat *s)
{
	char proc[32];
	struct stat s2;
	int fd;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	fd = open(proc, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	if (errno != ENOENT)
		return -errno;
	fd = open_beneath(dirfd, name, O_RDONLY | O_NONBLOCK);
	if (fd < 0)
		return fd;
	if (fstat(fd, &s2) < 0 || s2.st_dev != s->st_dev ||
	    s2.st_ino != s->st_ino) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

int sb_store_read_chunk(struct sb_store *st,
			const uint8_t addr[SNAPBLK_ADDR_LEN], void *buf,
			size_t len, struct sb_store_found *found)
{
	char name[SB_STORE_NAME_LEN];
	uint8_t *p = buf;
	size_t off = 0;
	struct stat s;
	ssize_t r;
	int pfd, fd = -1, ret = 0;

	found->size = 0;
	found->type = 0;
	sb_store_name(addr, name);
	/*
	 * Look before opening: an O_PATH descriptor opens nothing (no FIFO
	 * to wait on, no device driver's open to run, no lease to break).
	 */
	pfd = open_beneath(st->dirfd, name, O_PATH);
	if (pfd < 0)
		return pfd;
	if (fstat(pfd, &s) < 0) {
		ret = -errno;
		goto out;
	}
	found->size = s.st_size;
	found->type = s.st_mode & S_IFMT;
	if (!S_ISREG(s.st_mode) || (uint64_t)s.st_size != len) {
		ret = -EMSGSIZE;
		goto out;
	}
	fd = reopen_regular(pfd, st->dirfd, name, &s);
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	while (off < len) {
		r = pread(fd, p + off, len - off, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			goto out;
		}
		if (!r) {
			ret = -EMSGSIZE;
			found->size = off;
			goto out;
		}
		off += r;
	}
out:
	if (fd >= 0)
		close(fd);
	close(pfd);
	return ret;
}

int sb_store_read(struct sb_store *st, const uint8_t addr[SNAPBLK_ADDR_LEN],
		  void *buf, size_t len, uint64_t *size)
{
	struct sb_store_found found;
	int ret;

	ret = sb_store_read_chunk(st, addr, buf, len, &found);
	*size = found.size;
	return ret;
}

int sb_store_mkdir(const char *dir)
{
	return sb_mkdir_p(dir, 0755);
}

int sb_store_walk(struct sb_store *st, sb_store_walk_fn fn, void *arg)
{
	char fan[3];
	struct dirent *d;
	struct stat s;
	DIR *dir;
	int i, fd, ret = 0;

	for (i = 0; i < 256 && !ret; i++) {
		snprintf(fan, sizeof(fan), "%02x", i);
		dir = sb_opendirat(st->dirfd, fan, O_NOFOLLOW);
		if (!dir) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		fd = dirfd(dir);
		while (!ret && (d = readdir(dir))) {
			if (d->d_name[0] == '.' && (!d->d_name[1] ||
			    (d->d_name[1] == '.' && !d->d_name[2])))
				continue;
			if (fstatat(fd, d->d_name, &s, AT_SYMLINK_NOFOLLOW) < 0) {
				if (errno == ENOENT)
					continue;
				ret = -errno;
				break;
			}
			ret = fn(arg, fd, fan, d->d_name, &s);
		}
		closedir(dir);
	}
	return ret;
}

/* sb_store_sweep_tmp()'s walk: what to do, and the last error. */
struct sweep {
	bool remove;
	uint64_t *count;
	int err;
};

static int sweep_one(void *arg, int fanfd, const char *fan, const char *name,
		     const struct stat *s)
{
	struct sweep *sw = arg;

	(void)fan;
	if (!strncmp(name, ".tmp-", 5))
		sw->err = sb_sweep_tmp_entry(fanfd, name, s, sw->remove,
					     sw->count) ?: sw->err;
	return 0;
}

int sb_store_sweep_tmp(struct sb_store *st, bool remove, uint64_t *count)
{
	struct sweep sw = { remove, count, 0 };
	int ret;

	ret = sb_store_walk(st, sweep_one, &sw);
	return ret ? ret : sw.err;
}

int sb_store_lock(struct sb_store *st, bool exclusive, bool wait)
{
	int op = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);

	while (flock(st->dirfd, op) < 0) {
		if (errno != EINTR)
			return errno == EWOULDBLOCK ? -EBUSY : -errno;
	}
	return 0;
}
