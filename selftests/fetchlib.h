/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Test images and an in-test fetch daemon for the snapblk selftests that
 * serve /dev/snapblk-fetch themselves (genl_fuzz, fetch_hostile,
 * fetch_refetch), and reads of one chunk in a thread.
 *
 * An image is random plaintext chunks, each sealed the way
 * Documentation/format.md says (user/lib/chunk.c: key = HMAC-SHA256(secret,
 * plaintext), ct = AES-256-CTR(key, zero IV, plaintext), addr =
 * SHA-256(ct)), some chunks all zero (flagged ZERO, never fetched) and
 * some copies of another chunk (same address and key: one cache entry).
 * The chunk table goes into a memfd for SNAPBLK_CMD_CREATE.
 */
#ifndef SNAPBLK_SELFTEST_FETCHLIB_H
#define SNAPBLK_SELFTEST_FETCHLIB_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <linux/snapblk.h>

#include "chunk.h"

/* xorshift64*: small, fast and replayable from its seed. */
struct sb_rng {
	uint64_t s;
};

static inline void sb_rng_seed(struct sb_rng *r, uint64_t seed)
{
	r->s = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

static inline uint64_t sb_rng_next(struct sb_rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dULL;
}

/* Uniform in [0, n), n > 0. */
static inline uint32_t sb_rng_below(struct sb_rng *r, uint32_t n)
{
	return (uint32_t)((sb_rng_next(r) >> 32) * n >> 32);
}

static inline void sb_rng_fill(struct sb_rng *r, void *buf, size_t len)
{
	uint8_t *p = buf;
	uint64_t v;

	while (len >= 8) {
		v = sb_rng_next(r);
		memcpy(p, &v, 8);
		p += 8;
		len -= 8;
	}
	v = sb_rng_next(r);
	memcpy(p, &v, len);
}

/* The seed from $@env (decimal or 0x hex), else from the clock. */
static inline uint64_t sb_seed_from_env(const char *env)
{
	const char *s = getenv(env);
	struct timespec ts;

	if (s && *s)
		return strtoull(s, NULL, 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)ts.tv_nsec ^
	       ((uint64_t)getpid() << 40);
}

/* An unsigned number from $@env, else @def. */
static inline uint64_t sb_env_u64(const char *env, uint64_t def)
{
	const char *s = getenv(env);

	return s && *s ? strtoull(s, NULL, 0) : def;
}

static inline double sb_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CLOCK_MONOTONIC in ns: the clock of snapblk_fetch_req.deadline_ns. */
static inline uint64_t sb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

struct sb_image {
	uint32_t chunk_size;
	uint32_t nchunks;
	uint64_t size;		/* bytes: nchunks * chunk_size */
	uint8_t *pt;		/* the image, size bytes */
	uint8_t *ct;		/* ciphertext, chunk_size per chunk (ZERO: 0) */
	struct snapblk_chunk_entry *table;
};

/*
 * Make an image of @nchunks random chunks of @chunk_size; every
 * @zero_every-th chunk (0: none) is all zero, every @dup_every-th (0:
 * none) a copy of chunk 1.  0 or a negative errno.
 */
static inline int sb_image_make(struct sb_image *img, uint32_t chunk_size,
				uint32_t nchunks, unsigned int zero_every,
				unsigned int dup_every, struct sb_rng *rng)
{
	struct sb_chunk_ctx *ctx = sb_chunk_ctx_new(NULL, 0);
	uint32_t i;
	int ret = 0;

	memset(img, 0, sizeof(*img));
	if (!ctx)
		return -ENOMEM;
	img->chunk_size = chunk_size;
	img->nchunks = nchunks;
	img->size = (uint64_t)nchunks * chunk_size;
	img->pt = malloc(img->size);
	img->ct = calloc(1, img->size);
	img->table = calloc(nchunks, sizeof(*img->table));
	if (!img->pt || !img->ct || !img->table) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < nchunks && !ret; i++) {
		uint8_t *pt = img->pt + (uint64_t)i * chunk_size;
		struct snapblk_chunk_entry *e = &img->table[i];

		if (zero_every && i % zero_every == zero_every - 1) {
			memset(pt, 0, chunk_size);
			e->flags = SNAPBLK_CHUNK_F_ZERO;
			continue;
		}
		if (dup_every && i > 1 && i % dup_every == 0 &&
		    !(img->table[1].flags & SNAPBLK_CHUNK_F_ZERO))
			memcpy(pt, img->pt + chunk_size, chunk_size);
		else
			sb_rng_fill(rng, pt, chunk_size);
		ret = sb_chunk_seal(ctx, pt, img->ct + (uint64_t)i * chunk_size,
				    chunk_size, e->key, e->addr);
	}
out:
	sb_chunk_ctx_free(ctx);
	return ret;
}

static inline void sb_image_free(struct sb_image *img)
{
	free(img->pt);
	free(img->ct);
	free(img->table);
	memset(img, 0, sizeof(*img));
}

/* A memfd holding the image's chunk table, or -errno. */
static inline int sb_image_table_fd(const struct sb_image *img)
{
	size_t len = (size_t)img->nchunks * sizeof(*img->table);
	int fd = memfd_create("snapblk-table", MFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (write(fd, img->table, len) != (ssize_t)len) {
		close(fd);
		return -EIO;
	}
	return fd;
}

/* Index of the first chunk whose address is @addr, or -1. */
static inline int sb_image_find(const struct sb_image *img,
				const uint8_t *addr)
{
	uint32_t i;

	for (i = 0; i < img->nchunks; i++)
		if (!(img->table[i].flags & SNAPBLK_CHUNK_F_ZERO) &&
		    !memcmp(img->table[i].addr, addr, SNAPBLK_ADDR_LEN))
			return i;
	return -1;
}

static inline const uint8_t *sb_image_ct(const struct sb_image *img,
					 uint32_t chunk)
{
	return img->ct + (uint64_t)chunk * img->chunk_size;
}

/*
 * Offset of the first byte of @buf (@len bytes read at @off) that is not
 * the image's, or -1 when all are right.
 */
static inline int64_t sb_image_diff(const struct sb_image *img,
				    uint64_t off, const uint8_t *buf,
				    size_t len)
{
	size_t i;

	if (!memcmp(img->pt + off, buf, len))
		return -1;
	for (i = 0; i < len; i++)
		if (img->pt[off + i] != buf[i])
			return off + i;
	return -1;
}

/*
 * Answer request @id: the response header then @len bytes of @data
 * (error 0), or the header alone (@error != 0, @data NULL).  Returns what
 * write() returns, errno set.
 */
static inline ssize_t sb_fetch_answer(int fd, uint64_t id, uint32_t error,
				      const void *data, size_t len)
{
	struct snapblk_fetch_resp resp = {
		.len = sizeof(resp),
		.error = error,
		.id = id,
	};
	struct iovec iov[2] = {
		{ .iov_base = &resp, .iov_len = sizeof(resp) },
		{ .iov_base = (void *)data, .iov_len = len },
	};

	return writev(fd, iov, data ? 2 : 1);
}

/*
 * Wait up to @ms for one request and read it (a buffer of one record):
 * 0, or -ETIMEDOUT.
 */
static inline int sb_next_request(int fd, struct snapblk_fetch_req *r,
				  int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	double end = sb_now() + ms / 1000.0;

	while (sb_now() < end)
		if (poll(&p, 1, 20) > 0 &&
		    read(fd, r, sizeof(*r)) == (ssize_t)sizeof(*r))
			return 0;
	return -ETIMEDOUT;
}

/* One O_DIRECT read of a whole chunk of a device, in a thread. */
struct sb_chunk_read {
	char path[64];		/* the device */
	uint64_t chunk;		/* chunk index in the device */
	uint32_t chunk_size;
	pthread_t thread;
	volatile int done;	/* pread() returned */
	ssize_t ret;		/* what it returned */
	int err;		/* its errno */
	double took;		/* seconds */
	uint64_t end_ns;	/* sb_now_ns() when it returned */
	uint8_t *buf;
};

static inline void *sb_chunk_read_main(void *arg)
{
	struct sb_chunk_read *o = arg;
	int fd = open(o->path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	double t0 = sb_now();

	o->ret = fd < 0 ? -1 : pread(fd, o->buf, o->chunk_size,
				     o->chunk * o->chunk_size);
	o->err = o->ret < 0 ? errno : 0;
	o->took = sb_now() - t0;
	o->end_ns = sb_now_ns();
	if (fd >= 0)
		close(fd);
	o->done = 1;
	return NULL;
}

/* Start reading chunk @chunk of @path: 0 or -errno. */
static inline int sb_chunk_read_start(struct sb_chunk_read *o,
				      const char *path, uint64_t chunk,
				      uint32_t chunk_size)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->path, sizeof(o->path), "%s", path);
	o->chunk = chunk;
	o->chunk_size = chunk_size;
	if (posix_memalign((void **)&o->buf, 4096, chunk_size))
		return -ENOMEM;
	return -pthread_create(&o->thread, NULL, sb_chunk_read_main, o);
}

/*
 * Wait for the read: 0 when it returned chunk @img_chunk of @img byte for
 * byte; EBADMSG for wrong bytes; else its errno (EIO for a short read).
 */
static inline int sb_chunk_read_end(struct sb_chunk_read *o,
				    const struct sb_image *img,
				    uint64_t img_chunk)
{
	int ret;

	pthread_join(o->thread, NULL);
	if (o->ret == (ssize_t)o->chunk_size)
		ret = sb_image_diff(img, img_chunk * o->chunk_size, o->buf,
				    o->chunk_size) < 0 ? 0 : EBADMSG;
	else
		ret = o->ret < 0 ? o->err : EIO;
	free(o->buf);
	o->buf = NULL;
	return ret;
}

/*
 * A correct fetch daemon in a thread: answers every request for a chunk
 * of @img with its ciphertext (and one for an address it does not know
 * with ENOENT).
 */
struct sb_fetcher {
	pthread_t thread;
	int fd;
	const struct sb_image *img;
	volatile int stop;
	uint64_t answered;
	uint64_t unknown;
	int err;		/* first unexpected errno */
};

static inline void *sb_fetcher_main(void *arg)
{
	struct sb_fetcher *f = arg;
	struct snapblk_fetch_req reqs[16];
	struct pollfd pfd = { .fd = f->fd, .events = POLLIN };
	ssize_t n;
	int i, c;

	while (!f->stop) {
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = read(f->fd, reqs, sizeof(reqs));
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR && !f->err)
				f->err = errno;
			continue;
		}
		for (i = 0; i < n / (ssize_t)sizeof(reqs[0]); i++) {
			c = sb_image_find(f->img, reqs[i].addr);
			if (c < 0 || reqs[i].chunk_size != f->img->chunk_size) {
				sb_fetch_answer(f->fd, reqs[i].id, ENOENT,
						NULL, 0);
				f->unknown++;
				continue;
			}
			if (sb_fetch_answer(f->fd, reqs[i].id, 0,
					    sb_image_ct(f->img, c),
					    f->img->chunk_size) < 0) {
				if (!f->err)
					f->err = errno;
				continue;
			}
			f->answered++;
		}
	}
	return NULL;
}

/* 0 or -errno (-EBUSY: /dev/snapblk-fetch cannot be opened). */
static inline int sb_fetcher_start(struct sb_fetcher *f,
				   const struct sb_image *img)
{
	memset(f, 0, sizeof(*f));
	f->img = img;
	f->fd = open("/dev/snapblk-fetch", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (f->fd < 0)
		return -errno;
	if (pthread_create(&f->thread, NULL, sb_fetcher_main, f)) {
		close(f->fd);
		return -EAGAIN;
	}
	return 0;
}

/* Stop the thread and close the device; its first unexpected errno. */
static inline int sb_fetcher_stop(struct sb_fetcher *f)
{
	f->stop = 1;
	pthread_join(f->thread, NULL);
	close(f->fd);
	return f->err;
}

/*
 * Undo what a test that stopped half-way left (it cannot clean up after a
 * failed ASSERT): its devices @names may still have reads waiting, so the
 * fetch device is opened (which gives back what the test held) and every
 * request answered with an error; then the devices are removed and the
 * module unloaded.  Needs genl.h and lib.h included before this file.
 */
/* A number in /sys/block/snapblk@index/snapblk/@attr, or -1. */
static inline long sb_dev_attr(uint32_t index, const char *attr)
{
	char path[128], buf[32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/sys/block/snapblk%u/snapblk/%s", index,
		 attr);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strtol(buf, NULL, 10);
}

#ifdef SB_FETCHLIB_CLEAN_UP
static inline void sb_clean_up(const char *const *names, int n)
{
	struct snapblk_fetch_req r;
	struct sb_dev d;
	struct sb_nl nl;
	int i, k, fd, any = 0;

	if (!sb_module_loaded("snapblk") || sb_nl_open(&nl))
		return;
	for (k = 0; k < n; k++)
		any |= !sb_nl_status(&nl, names[k], &d);
	if (any) {
		fd = open("/dev/snapblk-fetch",
			  O_RDWR | O_NONBLOCK | O_CLOEXEC);
		for (i = 0; fd >= 0 && i < 10; i++) {
			while (read(fd, &r, sizeof(r)) > 0)
				sb_fetch_answer(fd, r.id, EIO, NULL, 0);
			usleep(50000);
		}
		if (fd >= 0)
			close(fd);
	}
	for (k = 0; k < n; k++)
		for (i = 0; i < 50; i++) {
			if (sb_nl_remove(&nl, names[k]) != -EBUSY)
				break;
			usleep(100000);
		}
	sb_nl_close(&nl);
	sb_unload("snapblk");
}
#endif

#endif
