// SPDX-License-Identifier: GPL-2.0
/*
 * The host disk cache of chunk ciphertext.  See dcache.h for the interface
 * and Documentation/dcache.md for the design.
 *
 * In memory: one entry per chunk held (queues A1in and Am of 2Q) and per
 * address recently evicted from A1in (the ghost queue A1out), in a growable
 * array linked by 32-bit indexes, found through a chained hash table keyed
 * with SipHash-2-4 under a random key (addresses come from manifests, so a
 * tenant could grind addresses that collide in an unkeyed table).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dcache.h"
#include "file.h"
#include "hex.h"

#define NIL		UINT32_MAX
#define NQ		4	/* queues indexed by enum sb_dcache_where */
#define HEX_LEN		(2 * SNAPBLK_ADDR_LEN)
#define HOT_NAME	"hot"
#define HOT_MAGIC	"sbdchot1"
#define HOT_HDR_LEN	16	/* magic, then the count as __le64 */
#define HOT_EVERY_MIN	1024	/* inserts between saves of DIR/hot, at least */
#define IO_ADDRS	2048	/* addresses per read/write of DIR/hot */
#define TMP_PREFIX	".tmp."
#define TMP_NAME_LEN	48

/*
 * One address.  Owned by the cache; a slot is free (where ABSENT, on the
 * free list through hnext) or in exactly one queue and in the hash table.
 */
struct ent {
	uint8_t addr[SNAPBLK_ADDR_LEN];
	uint64_t size;		/* bytes of the file (a ghost: it held) */
	uint32_t hnext;		/* next in the hash chain, or free list */
	uint32_t prev, next;	/* toward the head (newer) / tail (older) */
	uint8_t where;		/* enum sb_dcache_where: its queue */
};

/* A doubly linked queue of entries: head is the newest, tail the victim. */
struct queue {
	uint32_t head, tail;	/* NIL when empty */
	uint64_t bytes, count;	/* sum of ent.size, number of entries */
};

/*
 * The cache.  Used by one thread; no lock (see dcache.h).  Every fd is
 * owned and closed by sb_dcache_close().
 */
struct sb_dcache {
	int dirfd;		/* the cache directory */
	int lockfd;		/* DIR/lock, flock()ed LOCK_EX while open */
	int fan[256];		/* fan-out directories, -1 until opened */
	uint64_t max_bytes;	/* bound on q[A1IN].bytes + q[AM].bytes */
	uint64_t kin;		/* 2Q: A1in's share (max_bytes / 4) */
	uint64_t kout;		/* 2Q: ghosts' bound (max_bytes / 2 worth) */
	struct ent *ents;	/* slots [0, nents) in use or free */
	uint32_t nents, cap;	/* slots used so far, allocated */
	uint32_t free_head;	/* free slots, linked by hnext */
	uint32_t *buckets;	/* hash chains' heads; nbuckets a power of 2 */
	uint32_t nbuckets;
	uint64_t live;		/* entries in the table (all three queues) */
	uint64_t hkey[2];	/* SipHash key, random per open */
	struct queue q[NQ];	/* [SB_DCACHE_A1IN], [AM], [GHOST]; [0] unused */
	bool noatime;		/* O_NOATIME still worth trying */
	bool tmpfile;		/* O_TMPFILE + linkat still worth trying */
	bool hot_dirty;		/* Am changed since DIR/hot was written */
	uint64_t since_save;	/* inserts since DIR/hot was written */
	unsigned long seq;	/* for temporary names */
	void (*hook)(void *arg);	/* tests: called before a put links */
	void *hook_arg;
	struct sb_dcache_stats st;	/* the counters; state filled on read */
};

static void say(char *msg, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(char *msg, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!msg || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
}

/* ---- hashing ---------------------------------------------------------- */

#define ROTL(x, b)	(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND							\
	do {								\
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;			\
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;			\
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
	} while (0)

/* SipHash-2-4 of the 32-byte address (words in host order: in-memory only). */
static uint64_t addr_hash(const struct sb_dcache *c, const uint8_t *addr)
{
	uint64_t v0 = c->hkey[0] ^ 0x736f6d6570736575ULL;
	uint64_t v1 = c->hkey[1] ^ 0x646f72616e646f6dULL;
	uint64_t v2 = c->hkey[0] ^ 0x6c7967656e657261ULL;
	uint64_t v3 = c->hkey[1] ^ 0x7465646279746573ULL;
	uint64_t m;
	int i;

	for (i = 0; i < SNAPBLK_ADDR_LEN; i += 8) {
		memcpy(&m, addr + i, 8);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	m = (uint64_t)SNAPBLK_ADDR_LEN << 56;
	v3 ^= m;
	SIPROUND;
	SIPROUND;
	v0 ^= m;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static uint32_t *bucket_of(const struct sb_dcache *c, const uint8_t *addr)
{
	return &c->buckets[addr_hash(c, addr) & (c->nbuckets - 1)];
}

static uint32_t lookup(const struct sb_dcache *c, const uint8_t *addr)
{
	uint32_t i = *bucket_of(c, addr);

	while (i != NIL && memcmp(c->ents[i].addr, addr, SNAPBLK_ADDR_LEN))
		i = c->ents[i].hnext;
	return i;
}

/* Double the bucket array and rehash every live entry. */
static int rehash(struct sb_dcache *c)
{
	uint32_t n = c->nbuckets * 2, i, *b;

	b = malloc(n * sizeof(*b));
	if (!b)
		return -ENOMEM;
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = n;
	for (i = 0; i < n; i++)
		b[i] = NIL;
	for (i = 0; i < c->nents; i++) {
		uint32_t *h;

		if (c->ents[i].where == SB_DCACHE_ABSENT)
			continue;
		h = bucket_of(c, c->ents[i].addr);
		c->ents[i].hnext = *h;
		*h = i;
	}
	return 0;
}

/* Make sure the next ent_new() cannot fail. */
static int ent_reserve(struct sb_dcache *c)
{
	struct ent *e;
	uint32_t cap;

	if (c->live + 1 > c->nbuckets && c->nbuckets < (1U << 31) &&
	    rehash(c))
		return -ENOMEM;
	if (c->free_head != NIL || c->nents < c->cap)
		return 0;
	if (c->cap >= NIL / 2)
		return -ENOMEM;
	cap = c->cap ? c->cap * 2 : 1024;
	e = realloc(c->ents, (size_t)cap * sizeof(*e));
	if (!e)
		return -ENOMEM;
	c->ents = e;
	c->cap = cap;
	return 0;
}

/* A new entry in the hash table, in no queue yet.  After ent_reserve(). */
static uint32_t ent_new(struct sb_dcache *c, const uint8_t *addr,
			uint64_t size)
{
	uint32_t i, *h;
	struct ent *e;

	if (c->free_head != NIL) {
		i = c->free_head;
		c->free_head = c->ents[i].hnext;
	} else {
		i = c->nents++;
	}
	e = &c->ents[i];
	memcpy(e->addr, addr, SNAPBLK_ADDR_LEN);
	e->size = size;
	e->prev = e->next = NIL;
	e->where = SB_DCACHE_ABSENT;
	h = bucket_of(c, addr);
	e->hnext = *h;
	*h = i;
	c->live++;
	return i;
}

/* Take entry i (in no queue) out of the table and free its slot. */
static void ent_free(struct sb_dcache *c, uint32_t i)
{
	uint32_t *p = bucket_of(c, c->ents[i].addr);

	while (*p != i)
		p = &c->ents[*p].hnext;
	*p = c->ents[i].hnext;
	c->ents[i].where = SB_DCACHE_ABSENT;
	c->ents[i].hnext = c->free_head;
	c->free_head = i;
	c->live--;
}

/* ---- queues ----------------------------------------------------------- */

static void q_add(struct sb_dcache *c, int where, uint32_t i, bool at_head)
{
	struct queue *q = &c->q[where];
	struct ent *e = &c->ents[i];

	e->where = where;
	e->prev = at_head ? NIL : q->tail;
	e->next = at_head ? q->head : NIL;
	if (e->prev != NIL)
		c->ents[e->prev].next = i;
	else
		q->head = i;
	if (e->next != NIL)
		c->ents[e->next].prev = i;
	else
		q->tail = i;
	q->bytes += e->size;
	q->count++;
	if (where == SB_DCACHE_AM)
		c->hot_dirty = true;
}

static void q_del(struct sb_dcache *c, uint32_t i)
{
	struct ent *e = &c->ents[i];
	struct queue *q = &c->q[e->where];

	if (e->prev != NIL)
		c->ents[e->prev].next = e->next;
	else
		q->head = e->next;
	if (e->next != NIL)
		c->ents[e->next].prev = e->prev;
	else
		q->tail = e->prev;
	q->bytes -= e->size;
	q->count--;
	if (e->where == SB_DCACHE_AM)
		c->hot_dirty = true;
	e->where = SB_DCACHE_ABSENT;
}

static uint64_t held_bytes(const struct sb_dcache *c)
{
	return c->q[SB_DCACHE_A1IN].bytes + c->q[SB_DCACHE_AM].bytes;
}

/* ---- files ------------------------------------------------------------ */

/* A chunk file name in fan-out directory b: 64 lower-case hex digits. */
static bool parse_name(const char *name, unsigned int b, uint8_t *addr)
{
	int i, hi, lo;

	if (strlen(name) != HEX_LEN)
		return false;
	for (i = 0; i < SNAPBLK_ADDR_LEN; i++) {
		/* Lower case only: format.md's names, nothing else. */
		if (isupper((unsigned char)name[2 * i]) ||
		    isupper((unsigned char)name[2 * i + 1]))
			return false;
		hi = sb_hexval(name[2 * i]);
		lo = sb_hexval(name[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		addr[i] = hi << 4 | lo;
	}
	return addr[0] == b;
}

/* The fan-out directory of addresses starting with byte b, opened once. */
static int fan_fd(struct sb_dcache *c, unsigned int b, bool create)
{
	char name[3];
	int fd;

	if (c->fan[b] >= 0)
		return c->fan[b];
	snprintf(name, sizeof(name), "%02x", b);
	if (create && mkdirat(c->dirfd, name, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(c->dirfd, name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	c->fan[b] = fd;
	return fd;
}

/* Bytes read (len unless the file is shorter), or -errno. */
static ssize_t pread_full(int fd, void *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pread(fd, (char *)buf + done, len - done, done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

static void tmp_name(struct sb_dcache *c, char name[TMP_NAME_LEN])
{
	snprintf(name, TMP_NAME_LEN, TMP_PREFIX "%d.%lu", (int)getpid(),
		 c->seq++);
}

/*
 * Write an anonymous file in the fan-out directory and link it in whole.
 * -EOPNOTSUPP where O_TMPFILE or linking it is not possible (then the
 * caller writes a named temporary file instead).
 */
static int write_tmpfile(struct sb_dcache *c, int fan, const char *name,
			 const void *buf, size_t len)
{
	char proc[32];
	int fd, ret, tries;

	fd = openat(fan, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)
			return -EOPNOTSUPP;
		return -errno;
	}
	ret = sb_write_all(fd, buf, len);
	if (ret)
		goto out;
	if (c->hook)
		c->hook(c->hook_arg);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	for (tries = 0; tries < 2; tries++) {
		ret = 0;
		if (!linkat(AT_FDCWD, proc, fan, name, AT_SYMLINK_FOLLOW))
			break;
		ret = -errno;
		if (ret == -ENOENT && !linkat(fd, "", fan, name, AT_EMPTY_PATH))
			ret = 0;	/* no /proc, but CAP_DAC_READ_SEARCH */
		else if (ret == -ENOENT)
			ret = -EOPNOTSUPP;
		if (ret != -EEXIST)
			break;
		/* A file we had forgotten (its unlink failed): replace it. */
		if (unlinkat(fan, name, 0) < 0 && errno != ENOENT) {
			ret = -errno;
			break;
		}
	}
out:
	close(fd);
	return ret;
}

/* Write ".tmp.<pid>.<n>" in the fan-out directory, then rename it. */
static int write_renamed(struct sb_dcache *c, int fan, const char *name,
			 const void *buf, size_t len)
{
	char tmp[TMP_NAME_LEN];
	int fd, ret;

	tmp_name(c, tmp);
	fd = openat(fan, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	ret = sb_write_all(fd, buf, len);
	if (!ret && c->hook)
		c->hook(c->hook_arg);
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (!ret && renameat(fan, tmp, fan, name) < 0)
		ret = -errno;
	if (ret)
		unlinkat(fan, tmp, 0);
	return ret;
}

static int write_chunk(struct sb_dcache *c, int fan, const char *name,
		       const void *buf, size_t len)
{
	int ret;

	if (c->tmpfile) {
		ret = write_tmpfile(c, fan, name, buf, len);
		if (ret != -EOPNOTSUPP)
			return ret;
		c->tmpfile = false;
	}
	return write_renamed(c, fan, name, buf, len);
}

/* Unlink the file of entry i; 0, or -errno (ENOENT counts as done). */
static int unlink_chunk(struct sb_dcache *c, uint32_t i)
{
	const uint8_t *addr = c->ents[i].addr;
	char hex[HEX_LEN + 1];
	int fan;

	fan = fan_fd(c, addr[0], false);
	if (fan < 0)
		return fan == -ENOENT ? 0 : fan;
	sb_hex(addr, SNAPBLK_ADDR_LEN, hex);
	if (unlinkat(fan, hex, 0) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* Forget a held entry, removing its file first when unlink is set. */
static void forget(struct sb_dcache *c, uint32_t i, bool unlink)
{
	if (unlink && unlink_chunk(c, i))
		c->st.errors++;
	q_del(c, i);
	ent_free(c, i);
}

/* ---- the 2Q policy ---------------------------------------------------- */

static void trim_ghosts(struct sb_dcache *c)
{
	struct queue *g = &c->q[SB_DCACHE_GHOST];
	uint32_t i;

	while (g->tail != NIL && g->bytes > c->kout) {
		i = g->tail;
		q_del(c, i);
		ent_free(c, i);
	}
}

/*
 * Evict one chunk: A1in's oldest while A1in holds more than its share (it
 * becomes a ghost), else Am's least recently used (forgotten).
 */
static void evict_one(struct sb_dcache *c)
{
	struct queue *in = &c->q[SB_DCACHE_A1IN], *am = &c->q[SB_DCACHE_AM];
	bool from_in = in->tail != NIL && (in->bytes > c->kin || am->tail == NIL);
	uint32_t i = from_in ? in->tail : am->tail;

	if (unlink_chunk(c, i))
		c->st.errors++;	/* forgotten anyway: the bound is on us */
	c->st.evictions++;
	c->st.evicted_bytes += c->ents[i].size;
	q_del(c, i);
	if (from_in) {
		q_add(c, SB_DCACHE_GHOST, i, true);
		trim_ghosts(c);
	} else {
		ent_free(c, i);
	}
}

static void make_room(struct sb_dcache *c, uint64_t need)
{
	while (held_bytes(c) && held_bytes(c) + need > c->max_bytes)
		evict_one(c);
}

/* ---- the hot list: DIR/hot -------------------------------------------- */

/*
 * Write Am's addresses, most recent first, to DIR/hot through a temporary
 * file and a rename.  No fsync: the file is a hint, checked by its size.
 */
static int save_hot(struct sb_dcache *c)
{
	uint8_t *buf, hdr[HOT_HDR_LEN];
	uint64_t count = c->q[SB_DCACHE_AM].count;
	char tmp[TMP_NAME_LEN];
	size_t n = 0;
	uint32_t i;
	int fd, ret, k;

	buf = malloc(IO_ADDRS * SNAPBLK_ADDR_LEN);
	if (!buf)
		return -ENOMEM;
	tmp_name(c, tmp);
	fd = openat(c->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto out_free;
	}
	memcpy(hdr, HOT_MAGIC, 8);
	for (k = 0; k < 8; k++)
		hdr[8 + k] = count >> (8 * k);
	ret = sb_write_all(fd, hdr, sizeof(hdr));
	for (i = c->q[SB_DCACHE_AM].head; !ret && i != NIL;
	     i = c->ents[i].next) {
		memcpy(buf + n * SNAPBLK_ADDR_LEN, c->ents[i].addr,
		       SNAPBLK_ADDR_LEN);
		if (++n == IO_ADDRS || c->ents[i].next == NIL) {
			ret = sb_write_all(fd, buf, n * SNAPBLK_ADDR_LEN);
			n = 0;
		}
	}
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (!ret && renameat(c->dirfd, tmp, c->dirfd, HOT_NAME) < 0)
		ret = -errno;
	if (ret) {
		unlinkat(c->dirfd, tmp, 0);
	} else {
		c->hot_dirty = false;
		c->st.hot_saves++;
	}
out_free:
	free(buf);
	c->since_save = 0;
	return ret;
}

/*
 * Move the chunks DIR/hot names from A1in to Am, in its order.  A missing,
 * foreign or torn file is ignored (it only ever orders what the scan
 * found); only -ENOMEM is returned.
 */
static int load_hot(struct sb_dcache *c)
{
	uint8_t *buf, hdr[HOT_HDR_LEN];
	uint64_t count = 0, done = 0;
	struct stat st;
	size_t n, k;
	ssize_t got;
	uint32_t i;
	int fd;

	fd = openat(c->dirfd, HOT_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    pread_full(fd, hdr, sizeof(hdr)) != sizeof(hdr) ||
	    memcmp(hdr, HOT_MAGIC, 8)) {
		close(fd);
		return 0;
	}
	for (k = 0; k < 8; k++)
		count |= (uint64_t)hdr[8 + k] << (8 * k);
	if (count > ((uint64_t)st.st_size - HOT_HDR_LEN) / SNAPBLK_ADDR_LEN ||
	    (uint64_t)st.st_size != HOT_HDR_LEN + count * SNAPBLK_ADDR_LEN) {
		close(fd);
		return 0;
	}
	buf = malloc(IO_ADDRS * SNAPBLK_ADDR_LEN);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (done < count) {
		n = count - done < IO_ADDRS ? count - done : IO_ADDRS;
		got = pread(fd, buf, n * SNAPBLK_ADDR_LEN,
			    HOT_HDR_LEN + done * SNAPBLK_ADDR_LEN);
		if (got <= 0)
			break;
		n = got / SNAPBLK_ADDR_LEN;
		if (!n)
			break;
		for (k = 0; k < n; k++) {
			i = lookup(c, buf + k * SNAPBLK_ADDR_LEN);
			if (i == NIL || c->ents[i].where != SB_DCACHE_A1IN)
				continue;
			q_del(c, i);
			q_add(c, SB_DCACHE_AM, i, false);
		}
		done += n;
	}
	free(buf);
	close(fd);
	c->hot_dirty = false;
	return 0;
}

/* ---- open: scan ------------------------------------------------------- */

/* A chunk found by the scan, to be queued oldest first. */
struct found {
	uint32_t i;		/* its entry */
	struct timespec mtime;	/* when it was written */
};

static int found_cmp(const void *a, const void *b)
{
	const struct timespec *x = &((const struct found *)a)->mtime;
	const struct timespec *y = &((const struct found *)b)->mtime;

	if (x->tv_sec != y->tv_sec)
		return x->tv_sec < y->tv_sec ? -1 : 1;
	if (x->tv_nsec != y->tv_nsec)
		return x->tv_nsec < y->tv_nsec ? -1 : 1;
	return 0;
}

/* A listing of the open directory fd (which stays open): NULL, errno set. */
static DIR *dir_list(int fd)
{
	int dfd, err;
	DIR *dh;

	dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return NULL;
	dh = fdopendir(dfd);
	if (!dh) {
		err = errno;
		close(dfd);
		errno = err;
	}
	return dh;
}

/* Remove the stale temporary files in the open directory fd. */
static int remove_tmp(int fd)
{
	struct dirent *d;
	DIR *dh;

	dh = dir_list(fd);
	if (!dh)
		return -errno;
	while ((d = readdir(dh)))
		if (!strncmp(d->d_name, TMP_PREFIX, strlen(TMP_PREFIX)))
			unlinkat(fd, d->d_name, 0);
	closedir(dh);
	return 0;
}

/*
 * Index the chunk files of fan-out directory b (opened as fd), appending
 * them to *found; remove temporary files and chunk names that are not
 * non-empty regular files (a symlink, a torn empty file).
 */
static int scan_fan(struct sb_dcache *c, unsigned int b, int fd,
		    struct found **found, size_t *nfound, size_t *cap)
{
	uint8_t addr[SNAPBLK_ADDR_LEN];
	struct dirent *d;
	struct stat st;
	int ret = 0;
	DIR *dh;

	dh = dir_list(fd);
	if (!dh)
		return -errno;
	while (!ret && (d = readdir(dh))) {
		if (!strncmp(d->d_name, TMP_PREFIX, strlen(TMP_PREFIX))) {
			unlinkat(fd, d->d_name, 0);
			continue;
		}
		if (!parse_name(d->d_name, b, addr) ||
		    fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    S_ISDIR(st.st_mode))
			continue;
		if (!S_ISREG(st.st_mode) || !st.st_size) {
			unlinkat(fd, d->d_name, 0);
			continue;
		}
		if (*nfound == *cap) {
			size_t ncap = *cap ? *cap * 2 : 1024;
			struct found *f = realloc(*found, ncap * sizeof(*f));

			if (!f) {
				ret = -ENOMEM;
				break;
			}
			*found = f;
			*cap = ncap;
		}
		ret = ent_reserve(c);
		if (ret)
			break;
		(*found)[*nfound].i = ent_new(c, addr, st.st_size);
		(*found)[*nfound].mtime = st.st_mtim;
		/* Queued now (a rehash skips unqueued entries), sorted later. */
		q_add(c, SB_DCACHE_A1IN, (*found)[*nfound].i, true);
		(*nfound)++;
	}
	closedir(dh);
	return ret;
}

/* Rebuild the index from the files: everything in A1in, oldest at the tail. */
static int scan(struct sb_dcache *c, char *msg, size_t msglen)
{
	struct found *found = NULL;
	size_t nfound = 0, cap = 0, k;
	struct stat st;
	unsigned int b;
	char name[3];
	int fd, ret;

	ret = remove_tmp(c->dirfd);
	if (ret) {
		say(msg, msglen, "cannot list the cache directory: %s",
		    strerror(-ret));
		return ret;
	}
	for (b = 0; b < 256; b++) {
		snprintf(name, sizeof(name), "%02x", b);
		fd = openat(c->dirfd, name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT)
			continue;
		if (fd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
			/* Never followed; a symlink is removed, made anew. */
			if (!fstatat(c->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) &&
			    S_ISLNK(st.st_mode))
				unlinkat(c->dirfd, name, 0);
			continue;
		}
		if (fd < 0) {
			ret = -errno;
			say(msg, msglen, "cannot open the cache's %s/: %s",
			    name, strerror(-ret));
			goto out;
		}
		c->fan[b] = fd;
		ret = scan_fan(c, b, fd, &found, &nfound, &cap);
		if (ret) {
			say(msg, msglen, "cannot index the cache's %s/: %s",
			    name, strerror(-ret));
			goto out;
		}
	}
	qsort(found, nfound, sizeof(*found), found_cmp);
	c->q[SB_DCACHE_A1IN] = (struct queue){ .head = NIL, .tail = NIL };
	for (k = 0; k < nfound; k++)
		q_add(c, SB_DCACHE_A1IN, found[k].i, true);
out:
	free(found);
	return ret;
}

/* mkdir -p: the parents with mode 0755, dir itself with 0700. */
static int mkdir_p(const char *dir)
{
	char *p, *s;
	int ret = 0;

	p = strdup(dir);
	if (!p)
		return -ENOMEM;
	for (s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			ret = -errno;
		*s = '/';
		if (ret)
			goto out;
	}
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		ret = -errno;
out:
	free(p);
	return ret;
}

int sb_dcache_open(const char *dir, uint64_t max_bytes, char *msg,
		   size_t msglen, struct sb_dcache **out)
{
	struct sb_dcache *c;
	uint32_t k;
	int ret;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c) {
		say(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	c->dirfd = c->lockfd = -1;
	for (k = 0; k < 256; k++)
		c->fan[k] = -1;
	for (k = 0; k < NQ; k++)
		c->q[k].head = c->q[k].tail = NIL;
	c->free_head = NIL;
	c->max_bytes = max_bytes;
	c->kin = max_bytes / 4;
	c->kout = max_bytes / 2;
	c->noatime = true;
	c->tmpfile = true;
	c->st.max_bytes = max_bytes;
	if (getrandom(c->hkey, sizeof(c->hkey), GRND_NONBLOCK) !=
	    sizeof(c->hkey)) {
		struct timespec ts;	/* no entropy yet: still per-process */

		clock_gettime(CLOCK_MONOTONIC, &ts);
		c->hkey[0] = ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32);
		c->hkey[1] = (uint64_t)getpid() ^ (uintptr_t)c;
	}
	c->nbuckets = 1024;
	c->buckets = malloc(c->nbuckets * sizeof(*c->buckets));
	if (!c->buckets) {
		ret = -ENOMEM;
		say(msg, msglen, "out of memory");
		goto fail;
	}
	for (k = 0; k < c->nbuckets; k++)
		c->buckets[k] = NIL;

	ret = mkdir_p(dir);
	if (ret) {
		say(msg, msglen, "cannot create %s: %s", dir, strerror(-ret));
		goto fail;
	}
	c->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->dirfd < 0) {
		ret = -errno;
		say(msg, msglen, "cannot open %s: %s", dir, strerror(-ret));
		goto fail;
	}
	c->lockfd = openat(c->dirfd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW |
			   O_CLOEXEC, 0600);
	if (c->lockfd < 0) {
		ret = -errno;
		say(msg, msglen, "cannot open %s/lock: %s", dir,
		    strerror(-ret));
		goto fail;
	}
	if (flock(c->lockfd, LOCK_EX | LOCK_NB) < 0) {
		ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
		if (ret == -EBUSY)
			say(msg, msglen,
			    "%s is in use: another snapblkd holds %s/lock",
			    dir, dir);
		else
			say(msg, msglen, "cannot lock %s/lock: %s", dir,
			    strerror(-ret));
		goto fail;
	}
	ret = scan(c, msg, msglen);
	if (ret)
		goto fail;
	ret = load_hot(c);
	if (ret) {
		say(msg, msglen, "out of memory");
		goto fail;
	}
	make_room(c, 0);
	*out = c;
	return 0;
fail:
	c->hot_dirty = false;	/* nothing of ours to save */
	sb_dcache_close(c);
	return ret;
}

void sb_dcache_close(struct sb_dcache *c)
{
	int k;

	if (!c)
		return;
	if (c->hot_dirty)
		save_hot(c);	/* a hint only: an error loses hotness */
	for (k = 0; k < 256; k++)
		if (c->fan[k] >= 0)
			close(c->fan[k]);
	if (c->lockfd >= 0)
		close(c->lockfd);	/* releases the flock */
	if (c->dirfd >= 0)
		close(c->dirfd);
	free(c->buckets);
	free(c->ents);
	free(c);
}

/* ---- the operations --------------------------------------------------- */

static int open_chunk(struct sb_dcache *c, int fan, const char *hex)
{
	int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
	int fd;

	if (c->noatime) {
		fd = openat(fan, hex, flags | O_NOATIME);
		if (fd >= 0 || errno != EPERM)
			return fd < 0 ? -errno : fd;
		c->noatime = false;	/* not the files' owner */
	}
	fd = openat(fan, hex, flags);
	return fd < 0 ? -errno : fd;
}

/* A miss; with invalid, the file was not a chunk and is removed. */
static int miss(struct sb_dcache *c, uint32_t i, bool invalid)
{
	if (i != NIL)
		forget(c, i, invalid);
	if (invalid)
		c->st.invalid++;
	c->st.misses++;
	return -ENOENT;
}

int sb_dcache_get(struct sb_dcache *c, const uint8_t addr[SNAPBLK_ADDR_LEN],
		  void *buf, size_t len)
{
	char hex[HEX_LEN + 1];
	struct stat st;
	ssize_t got;
	uint32_t i;
	int fan, fd;

	i = lookup(c, addr);
	if (i == NIL || c->ents[i].where == SB_DCACHE_GHOST)
		return miss(c, NIL, false);
	if (c->ents[i].size != len)
		return miss(c, i, true);
	fan = fan_fd(c, addr[0], false);
	if (fan == -ENOENT)
		return miss(c, i, false);
	if (fan < 0)
		goto error_keep;
	sb_hex(addr, SNAPBLK_ADDR_LEN, hex);
	fd = open_chunk(c, fan, hex);
	if (fd == -ENOENT)
		return miss(c, i, false);
	if (fd == -ELOOP)
		return miss(c, i, true);	/* a symlink: not followed */
	if (fd < 0) {
		fan = fd;
		goto error_keep;
	}
	if (fstat(fd, &st) < 0) {
		fan = -errno;
		close(fd);
		goto error_keep;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != len) {
		close(fd);
		return miss(c, i, true);
	}
	got = pread_full(fd, buf, len);
	close(fd);
	if (got < 0) {
		/* EIO: forget it, so that the refetched copy is written. */
		forget(c, i, true);
		c->st.errors++;
		return got;
	}
	if ((size_t)got != len)
		return miss(c, i, true);
	if (c->ents[i].where == SB_DCACHE_A1IN || c->q[SB_DCACHE_AM].head != i) {
		q_del(c, i);
		q_add(c, SB_DCACHE_AM, i, true);
	}
	c->st.hits++;
	c->st.hit_bytes += len;
	return 0;
error_keep:
	c->st.errors++;
	return fan;
}

int sb_dcache_put(struct sb_dcache *c, const uint8_t addr[SNAPBLK_ADDR_LEN],
		  const void *buf, size_t len)
{
	char hex[HEX_LEN + 1];
	bool hot = false;
	uint64_t every;
	int fan, ret;
	uint32_t i;

	if (!len)
		return -EINVAL;
	if (len > c->max_bytes) {
		c->st.too_big++;
		return 0;
	}
	i = lookup(c, addr);
	if (i != NIL && c->ents[i].where == SB_DCACHE_GHOST) {
		hot = true;	/* seen again since it left A1in */
		q_del(c, i);
		ent_free(c, i);
	} else if (i != NIL && c->ents[i].size == len) {
		return 0;
	} else if (i != NIL) {
		forget(c, i, true);
	}
	ret = ent_reserve(c);
	if (ret)
		return ret;
	make_room(c, len);
	fan = fan_fd(c, addr[0], true);
	if (fan < 0) {
		c->st.errors++;
		return fan;
	}
	sb_hex(addr, SNAPBLK_ADDR_LEN, hex);
	ret = write_chunk(c, fan, hex, buf, len);
	if (ret) {
		c->st.errors++;
		return ret;
	}
	i = ent_new(c, addr, len);
	q_add(c, hot ? SB_DCACHE_AM : SB_DCACHE_A1IN, i, true);
	c->st.inserts++;
	c->st.insert_bytes += len;
	every = c->q[SB_DCACHE_AM].count / 4;
	if (every < HOT_EVERY_MIN)
		every = HOT_EVERY_MIN;
	if (++c->since_save >= every && c->hot_dirty)
		save_hot(c);	/* a hint only: an error loses hotness */
	return 0;
}

int sb_dcache_drop(struct sb_dcache *c, const uint8_t addr[SNAPBLK_ADDR_LEN])
{
	uint32_t i = lookup(c, addr);

	if (i == NIL || c->ents[i].where == SB_DCACHE_GHOST)
		return -ENOENT;
	forget(c, i, true);
	c->st.drops++;
	return 0;
}

void sb_dcache_get_stats(const struct sb_dcache *c, struct sb_dcache_stats *st)
{
	const struct queue *in = &c->q[SB_DCACHE_A1IN];
	const struct queue *am = &c->q[SB_DCACHE_AM];

	*st = c->st;
	st->a1in_bytes = in->bytes;
	st->a1in_chunks = in->count;
	st->am_bytes = am->bytes;
	st->am_chunks = am->count;
	st->bytes = in->bytes + am->bytes;
	st->chunks = in->count + am->count;
	st->ghosts = c->q[SB_DCACHE_GHOST].count;
	st->max_bytes = c->max_bytes;
}

enum sb_dcache_where sb_dcache_where(const struct sb_dcache *c,
				     const uint8_t addr[SNAPBLK_ADDR_LEN])
{
	uint32_t i = lookup(c, addr);

	return i == NIL ? SB_DCACHE_ABSENT : c->ents[i].where;
}

void sb_dcache_set_test(struct sb_dcache *c, bool no_tmpfile,
			void (*hook)(void *arg), void *arg)
{
	if (no_tmpfile)
		c->tmpfile = false;
	c->hook = hook;
	c->hook_arg = arg;
}
