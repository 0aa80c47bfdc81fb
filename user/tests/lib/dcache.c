// SPDX-License-Identifier: GPL-2.0
/*
 * The host disk cache (user/lib/dcache.c): layout and round trip, sizes,
 * the bound, 2Q scan resistance against plain LRU, restart with the hot
 * set, stale temporary files, the lock, drop, symlinks, and a crash in the
 * middle of a put.  Every fixture test runs twice: with O_TMPFILE + linkat
 * and with the ".tmp.*" + rename path.  Runs as any user, in /tmp.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "dcache.h"

#define CS	4096	/* chunk size of most tests */
#define CAP	64	/* chunks the fixture's cache holds */

static int rm_one(const char *p, const struct stat *s, int t, struct FTW *f)
{
	(void)s;
	(void)f;
	return t == FTW_DP ? rmdir(p) : unlink(p);
}

/* A distinct, well spread address for each n (splitmix64 bytes). */
static void mkaddr(unsigned int n, uint8_t addr[SNAPBLK_ADDR_LEN])
{
	uint64_t x = n * 0x9e3779b97f4a7c15ULL + 1, z;
	int i;

	for (i = 0; i < SNAPBLK_ADDR_LEN; i += 8) {
		z = (x += 0x9e3779b97f4a7c15ULL);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		z ^= z >> 31;
		memcpy(addr + i, &z, 8);
	}
}

/* Chunk contents for n: every byte depends on n and its offset. */
static void fill(unsigned int n, uint8_t *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)(n * 131 + i * 7 + (i >> 8));
}

static void chunk_path(const char *dir, const uint8_t *addr, char *out,
		       size_t len)
{
	char hex[2 * SNAPBLK_ADDR_LEN + 1];
	int i;

	for (i = 0; i < SNAPBLK_ADDR_LEN; i++)
		sprintf(hex + 2 * i, "%02x", addr[i]);
	snprintf(out, len, "%s/%.2s/%s", dir, hex, hex);
}

/* Size of the chunk file for addr, or -errno (lstat: links not followed). */
static long long file_size(const char *dir, const uint8_t *addr)
{
	char path[512];
	struct stat st;

	chunk_path(dir, addr, path, sizeof(path));
	if (lstat(path, &st) < 0)
		return -errno;
	return S_ISREG(st.st_mode) ? st.st_size : -EINVAL;
}

/* What count_files() is counting, for its nftw() callback. */
static const char *count_prefix;
static uint64_t count_bytes;
static int count_n;

static int count_one(const char *p, const struct stat *s, int t,
		     struct FTW *f)
{
	if ((t == FTW_F || t == FTW_SL) &&
	    !strncmp(p + f->base, count_prefix, strlen(count_prefix))) {
		count_n++;
		count_bytes += s->st_size;
	}
	return 0;
}

/* Files (links not followed) below dir whose name starts with prefix. */
static int count_files(const char *dir, const char *prefix,
		       uint64_t *bytes)
{
	count_prefix = prefix;
	count_bytes = 0;
	count_n = 0;
	nftw(dir, count_one, 16, FTW_PHYS);
	if (bytes)
		*bytes += count_bytes;
	return count_n;
}

/* Chunk files: names of 64 hex digits, in fan-out dirs. */
static uint64_t count_chunks(const char *dir, uint64_t *bytes)
{
	char path[512];
	int b, n = 0;

	if (bytes)
		*bytes = 0;
	for (b = 0; b < 256; b++) {
		snprintf(path, sizeof(path), "%s/%02x", dir, b);
		n += count_files(path, "", bytes);
	}
	return n;
}

static void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, buf, len) != (ssize_t)len)
		abort();
	close(fd);
}

/* Open file descriptors of this process. */
static int count_fds(void)
{
	return count_files("/proc/self/fd", "", NULL);
}

/*
 * The accesses of a workload replayed on a plain LRU cache of cap
 * chunks: how many of the ids in want it holds at the end.
 */
static int lru_kept(const int *seq, int n, int cap, const int *want,
		    int nwant)
{
	int *slot = malloc(cap * sizeof(int)), used = 0, i, j, k, kept = 0;

	for (i = 0; i < n; i++) {
		for (j = 0; j < used && slot[j] != seq[i]; j++)
			;
		if (j == used && used < cap)
			used++;
		else if (j == used)
			j = cap - 1;		/* evict the LRU end */
		for (k = j; k > 0; k--)		/* move to the MRU end */
			slot[k] = slot[k - 1];
		slot[0] = seq[i];
	}
	for (i = 0; i < nwant; i++)
		for (j = 0; j < used; j++)
			if (slot[j] == want[i])
				kept++;
	free(slot);
	return kept;
}

FIXTURE(dc) {
	char tmp[64];
	char dir[96];
	struct sb_dcache *c;
	uint8_t addr[SNAPBLK_ADDR_LEN];
	uint8_t buf[CS], out[CS];
	char msg[256];
};

FIXTURE_VARIANT(dc) {
	bool no_tmpfile;
};

FIXTURE_VARIANT_ADD(dc, tmpfile) {
	.no_tmpfile = false,
};

FIXTURE_VARIANT_ADD(dc, renamed) {
	.no_tmpfile = true,
};

/* Close *c and open dir again with bound max, in the variant's mode. */
static int reopen_at(struct sb_dcache **c, const char *dir, bool no_tmpfile,
		     uint64_t max, char *msg, size_t msglen)
{
	int ret;

	sb_dcache_close(*c);
	*c = NULL;
	msg[0] = '\0';
	ret = sb_dcache_open(dir, max, msg, msglen, c);
	if (!ret)
		sb_dcache_set_test(*c, no_tmpfile, NULL, NULL);
	return ret;
}

#define REOPEN(max)							\
	reopen_at(&self->c, self->dir, variant->no_tmpfile, (max),	\
		  self->msg, sizeof(self->msg))

FIXTURE_SETUP(dc)
{
	snprintf(self->tmp, sizeof(self->tmp), "/tmp/dcache-test-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->tmp));
	/* Two levels that do not exist yet: open() is mkdir -p. */
	snprintf(self->dir, sizeof(self->dir), "%s/var/cache", self->tmp);
	self->c = NULL;
	ASSERT_EQ(0, REOPEN(CAP * CS)) TH_LOG("%s", self->msg);
	mkaddr(1, self->addr);
	fill(1, self->buf, CS);
}

FIXTURE_TEARDOWN(dc)
{
	sb_dcache_close(self->c);
	nftw(self->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* put, then get: the bytes come back, and the file is DIR/ab/<64 hex>. */
TEST_F(dc, round_trip)
{
	struct sb_dcache_stats st;
	uint8_t a[SNAPBLK_ADDR_LEN];
	char path[512];
	struct stat s;
	int fd;

	ASSERT_EQ(0, sb_dcache_put(self->c, self->addr, self->buf, CS));
	memset(self->out, 0, CS);
	ASSERT_EQ(0, sb_dcache_get(self->c, self->addr, self->out, CS));
	ASSERT_EQ(0, memcmp(self->buf, self->out, CS));

	/* The layout of Documentation/format.md, exactly the bytes put. */
	chunk_path(self->dir, self->addr, path, sizeof(path));
	ASSERT_EQ(0, lstat(path, &s));
	ASSERT_TRUE(S_ISREG(s.st_mode));
	ASSERT_EQ(CS, s.st_size);
	ASSERT_EQ(0, s.st_mode & 077);		/* ciphertext: owner only */
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	memset(self->out, 0, CS);
	ASSERT_EQ(CS, read(fd, self->out, CS));
	close(fd);
	ASSERT_EQ(0, memcmp(self->buf, self->out, CS));
	ASSERT_EQ(0, count_files(self->dir, ".tmp.", NULL));

	/* A miss, a put of a chunk already held, an empty put. */
	mkaddr(2, a);
	ASSERT_EQ(-ENOENT, sb_dcache_get(self->c, a, self->out, CS));
	ASSERT_EQ(0, sb_dcache_put(self->c, self->addr, self->buf, CS));
	ASSERT_EQ(-EINVAL, sb_dcache_put(self->c, a, self->buf, 0));

	sb_dcache_get_stats(self->c, &st);
	EXPECT_EQ(1, st.hits);
	EXPECT_EQ(1, st.misses);
	EXPECT_EQ(CS, st.hit_bytes);
	EXPECT_EQ(1, st.inserts);
	EXPECT_EQ(CS, st.insert_bytes);
	EXPECT_EQ(1, st.chunks);
	EXPECT_EQ(CS, st.bytes);
	EXPECT_EQ(CAP * CS, st.max_bytes);
	EXPECT_EQ(0, st.errors);
}

/* close() gives back every descriptor and the lock, and keeps the data. */
TEST_F(dc, close_releases_everything)
{
	struct sb_dcache *c2 = NULL;
	uint8_t a[SNAPBLK_ADDR_LEN];
	int fds, i;

	sb_dcache_close(self->c);
	self->c = NULL;
	fds = count_fds();
	ASSERT_EQ(0, REOPEN(CAP * CS));
	for (i = 0; i < 300; i++) {	/* every fan-out dir, most likely */
		mkaddr(i, a);
		ASSERT_EQ(0, sb_dcache_put(self->c, a, self->buf, 16));
		ASSERT_EQ(0, sb_dcache_get(self->c, a, self->out, 16));
	}
	sb_dcache_close(self->c);
	self->c = NULL;
	ASSERT_EQ(fds, count_fds());
	ASSERT_EQ(0, sb_dcache_open(self->dir, CAP * CS, NULL, 0, &c2));
	mkaddr(299, a);
	ASSERT_EQ(0, sb_dcache_get(c2, a, self->out, 16));
	sb_dcache_close(c2);
	ASSERT_EQ(fds, count_fds());
}

/* A file of another size is a miss and is removed. */
TEST_F(dc, wrong_size_is_a_miss_and_removed)
{
	struct sb_dcache_stats st;
	char path[512];

	ASSERT_EQ(0, sb_dcache_put(self->c, self->addr, self->buf, CS));
	ASSERT_EQ(-ENOENT, sb_dcache_get(self->c, self->addr, self->out,
					 CS / 2));
	ASSERT_EQ(-ENOENT, file_size(self->dir, self->addr));
	ASSERT_EQ(-ENOENT, sb_dcache_get(self->c, self->addr, self->out, CS));

	/* Torn on disk (as after a power loss): shorter than asked. */
	ASSERT_EQ(0, sb_dcache_put(self->c, self->addr, self->buf, CS));
	chunk_path(self->dir, self->addr, path, sizeof(path));
	ASSERT_EQ(0, truncate(path, CS - 100));
	ASSERT_EQ(-ENOENT, sb_dcache_get(self->c, self->addr, self->out, CS));
	ASSERT_EQ(-ENOENT, file_size(self->dir, self->addr));

	/* Refetched and put again, it is a hit. */
	ASSERT_EQ(0, sb_dcache_put(self->c, self->addr, self->buf, CS));
	ASSERT_EQ(0, sb_dcache_get(self->c, self->addr, self->out, CS));
	ASSERT_EQ(0, memcmp(self->buf, self->out, CS));

	/* A put of another size replaces the file. */
	ASSERT_EQ(0, sb_dcache_put(self->c, self->addr, self->buf, CS / 2));
	ASSERT_EQ(CS / 2, file_size(self->dir, self->addr));
	ASSERT_EQ(0, sb_dcache_get(self->c, self->addr, self->out, CS / 2));

	sb_dcache_get_stats(self->c, &st);
	EXPECT_EQ(2, st.invalid);
	EXPECT_EQ(3, st.misses);
	EXPECT_EQ(2, st.hits);
	EXPECT_EQ(1, st.chunks);
	EXPECT_EQ(CS / 2, st.bytes);
}

/* Many puts of mixed sizes: never above the bound, disk agrees with stats. */
TEST_F(dc, bound_respected)
{
	const uint64_t max = 100000;	/* not a multiple of anything */
	enum { N = 2000 };
	static uint8_t big[9000];
	static size_t lens[N];
	struct sb_dcache_stats st;
	uint8_t a[SNAPBLK_ADDR_LEN];
	unsigned int n, k, rnd = 12345;
	uint64_t bytes;
	int ret;

	ASSERT_EQ(0, REOPEN(max));
	for (n = 0; n < N; n++) {
		rnd = rnd * 1103515245 + 12345;
		lens[n] = 1 + (rnd >> 8) % sizeof(big);
		mkaddr(n, a);
		fill(n, big, lens[n]);
		ASSERT_EQ(0, sb_dcache_put(self->c, a, big, lens[n]));
		sb_dcache_get_stats(self->c, &st);
		ASSERT_LE(st.bytes, max);
		/* Re-read a recent chunk now and then: hits promote. */
		if (n % 3 == 0) {
			k = n - (rnd >> 4) % (n < 30 ? n + 1 : 30);
			mkaddr(k, a);
			ret = sb_dcache_get(self->c, a, big, lens[k]);
			ASSERT_TRUE(ret == 0 || ret == -ENOENT);
		}
	}
	sb_dcache_get_stats(self->c, &st);
	ASSERT_GT(st.evictions, 0);
	ASSERT_GT(st.hits, 0);
	ASSERT_GT(st.am_chunks, 0);
	ASSERT_EQ(0, st.invalid);
	ASSERT_GT(st.bytes, max / 2);
	ASSERT_EQ(st.chunks, st.a1in_chunks + st.am_chunks);
	ASSERT_EQ(st.chunks, count_chunks(self->dir, &bytes));
	ASSERT_EQ(st.bytes, bytes);
	ASSERT_EQ(st.insert_bytes - st.evicted_bytes, st.bytes);

	/* A chunk larger than the whole cache is not cached. */
	ASSERT_EQ(0, REOPEN(CS - 1));
	ASSERT_EQ(0, sb_dcache_put(self->c, self->addr, self->buf, CS));
	ASSERT_EQ(-ENOENT, sb_dcache_get(self->c, self->addr, self->out, CS));
	sb_dcache_get_stats(self->c, &st);
	ASSERT_EQ(1, st.too_big);
	ASSERT_LE(st.bytes, CS - 1);
	ASSERT_EQ(st.chunks, count_chunks(self->dir, &bytes));
	ASSERT_EQ(st.bytes, bytes);
}

/*
 * A hot set read twice survives a one-off scan of ten times the cache;
 * plain LRU, replayed on the same accesses, would keep none of it.
 */
TEST_F(dc, scan_resistance)
{
	enum { HOT = 16, SCAN = 10 * CAP };
	static int seq[2 * HOT + SCAN + HOT];
	struct sb_dcache_stats st;
	uint8_t a[SNAPBLK_ADDR_LEN];
	int hot[HOT], i, n = 0, kept = 0;

	for (i = 0; i < HOT; i++) {
		hot[i] = 1000 + i;
		mkaddr(hot[i], a);
		fill(hot[i], self->buf, CS);
		ASSERT_EQ(-ENOENT, sb_dcache_get(self->c, a, self->out, CS));
		ASSERT_EQ(0, sb_dcache_put(self->c, a, self->buf, CS));
		seq[n++] = hot[i];
	}
	for (i = 0; i < HOT; i++) {
		mkaddr(hot[i], a);
		ASSERT_EQ(0, sb_dcache_get(self->c, a, self->out, CS));
		ASSERT_EQ(SB_DCACHE_AM, sb_dcache_where(self->c, a));
		seq[n++] = hot[i];
	}
	/* The scan: each chunk once, as a cold image's first read. */
	for (i = 0; i < SCAN; i++) {
		mkaddr(100000 + i, a);
		fill(100000 + i, self->buf, CS);
		ASSERT_EQ(-ENOENT, sb_dcache_get(self->c, a, self->out, CS));
		ASSERT_EQ(0, sb_dcache_put(self->c, a, self->buf, CS));
		seq[n++] = 100000 + i;
	}
	ASSERT_EQ(0, lru_kept(seq, n, CAP, hot, HOT));
	for (i = 0; i < HOT; i++) {
		mkaddr(hot[i], a);
		fill(hot[i], self->buf, CS);
		if (!sb_dcache_get(self->c, a, self->out, CS) &&
		    !memcmp(self->buf, self->out, CS))
			kept++;
	}
	ASSERT_EQ(HOT, kept);
	sb_dcache_get_stats(self->c, &st);
	ASSERT_EQ(CAP * CS, st.bytes);
	ASSERT_EQ(HOT * CS, st.am_bytes);
	ASSERT_GT(st.ghosts, 0);

	/* The ghost list is bounded: the first scanned are forgotten. */
	mkaddr(100000, a);
	ASSERT_EQ(SB_DCACHE_ABSENT, sb_dcache_where(self->c, a));
	/* A scanned chunk asked for again soon after it left: back hot. */
	mkaddr(100000 + SCAN - (CAP - HOT) - 1, a);
	ASSERT_EQ(SB_DCACHE_GHOST, sb_dcache_where(self->c, a));
	ASSERT_EQ(-ENOENT, sb_dcache_get(self->c, a, self->out, CS));
	ASSERT_EQ(0, sb_dcache_put(self->c, a, self->buf, CS));
	ASSERT_EQ(SB_DCACHE_AM, sb_dcache_where(self->c, a));
	/* The newest scanned chunk is still held, in A1in. */
	mkaddr(100000 + SCAN - 1, a);
	ASSERT_EQ(SB_DCACHE_A1IN, sb_dcache_where(self->c, a));
}

/*
 * A restart keeps the chunks and the hot set (DIR/hot); without DIR/hot
 * it still keeps the chunks; a smaller bound evicts the cold ones first.
 */
TEST_F(dc, restart_keeps_chunks_and_hot_set)
{
	enum { N = 40, HOT = 10 };
	struct sb_dcache_stats st;
	uint8_t a[SNAPBLK_ADDR_LEN];
	char path[256];
	uint64_t bytes;
	int i;

	for (i = 0; i < N; i++) {
		mkaddr(i, a);
		fill(i, self->buf, CS);
		ASSERT_EQ(0, sb_dcache_put(self->c, a, self->buf, CS));
	}
	for (i = 0; i < HOT; i++) {
		mkaddr(i, a);
		ASSERT_EQ(0, sb_dcache_get(self->c, a, self->out, CS));
	}
	ASSERT_EQ(0, REOPEN(CAP * CS));
	snprintf(path, sizeof(path), "%s/hot", self->dir);
	ASSERT_EQ(0, access(path, F_OK));
	sb_dcache_get_stats(self->c, &st);
	ASSERT_EQ(N, st.chunks);
	ASSERT_EQ(HOT, st.am_chunks);
	for (i = 0; i < N; i++) {
		mkaddr(i, a);
		ASSERT_EQ(i < HOT ? SB_DCACHE_AM : SB_DCACHE_A1IN,
			  sb_dcache_where(self->c, a));
	}
	/* Hot after the restart: it survives a scan of ten caches. */
	for (i = 0; i < 10 * CAP; i++) {
		mkaddr(100000 + i, a);
		ASSERT_EQ(0, sb_dcache_put(self->c, a, self->buf, CS));
	}
	for (i = 0; i < HOT; i++) {
		mkaddr(i, a);
		fill(i, self->buf, CS);
		ASSERT_EQ(0, sb_dcache_get(self->c, a, self->out, CS));
		ASSERT_EQ(0, memcmp(self->buf, self->out, CS));
	}

	/* Shrink to 16 chunks: the 10 hot ones stay, 6 newer cold ones. */
	ASSERT_EQ(0, REOPEN(16 * CS));
	sb_dcache_get_stats(self->c, &st);
	ASSERT_EQ(16, st.chunks);
	ASSERT_EQ(16 * CS, st.bytes);
	ASSERT_EQ(CAP - 16, st.evictions);
	ASSERT_EQ(16, count_chunks(self->dir, &bytes));
	ASSERT_EQ(16 * CS, bytes);
	for (i = 0; i < HOT; i++) {
		mkaddr(i, a);
		ASSERT_EQ(SB_DCACHE_AM, sb_dcache_where(self->c, a));
	}

	/* A crash loses DIR/hot's last state; a torn DIR/hot is ignored. */
	sb_dcache_close(self->c);
	self->c = NULL;
	ASSERT_EQ(0, truncate(path, 20));
	ASSERT_EQ(0, REOPEN(16 * CS));
	sb_dcache_get_stats(self->c, &st);
	ASSERT_EQ(16, st.chunks);
	ASSERT_EQ(0, st.am_chunks);
	sb_dcache_close(self->c);
	self->c = NULL;
	ASSERT_EQ(0, unlink(path));
	ASSERT_EQ(0, REOPEN(16 * CS));
	for (i = 0; i < HOT; i++) {
		mkaddr(i, a);
		fill(i, self->buf, CS);
		ASSERT_EQ(0, sb_dcache_get(self->c, a, self->out, CS));
		ASSERT_EQ(0, memcmp(self->buf, self->out, CS));
	}
}

/*
 * The hot list is also saved as inserts go (every 1024 at least), so a
 * daemon that dies without sb_dcache_close() keeps its hot set hot.
 */
TEST_F(dc, hot_set_saved_without_close)
{
	enum { HOT = 10, MORE = 1100, LEN = 64 };
	uint8_t a[SNAPBLK_ADDR_LEN];
	int status, i;
	pid_t pid;

	sb_dcache_close(self->c);
	self->c = NULL;
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct sb_dcache *c;

		if (sb_dcache_open(self->dir, (HOT + MORE) * LEN, NULL, 0, &c))
			_exit(1);
		for (i = 0; i < HOT + MORE; i++) {
			mkaddr(i, a);
			if (sb_dcache_put(c, a, self->buf, LEN))
				_exit(2);
			if (i < HOT && sb_dcache_get(c, a, self->out, LEN))
				_exit(3);
		}
		_exit(0);	/* a crash: no sb_dcache_close() */
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ(0, REOPEN((HOT + MORE) * LEN));
	for (i = 0; i < HOT; i++) {
		mkaddr(i, a);
		ASSERT_EQ(SB_DCACHE_AM, sb_dcache_where(self->c, a));
	}
	mkaddr(HOT, a);
	ASSERT_EQ(SB_DCACHE_A1IN, sb_dcache_where(self->c, a));
}

/* Many chunks: the index grows (hash table, entries) and is rebuilt. */
TEST_F(dc, many_chunks)
{
	enum { N = 5000, LEN = 64 };
	struct sb_dcache_stats st;
	uint8_t a[SNAPBLK_ADDR_LEN];
	int i;

	ASSERT_EQ(0, REOPEN(N * LEN));
	for (i = 0; i < N; i++) {
		mkaddr(i, a);
		fill(i, self->buf, LEN);
		ASSERT_EQ(0, sb_dcache_put(self->c, a, self->buf, LEN));
	}
	ASSERT_EQ(0, REOPEN(N * LEN));
	sb_dcache_get_stats(self->c, &st);
	ASSERT_EQ(N, st.chunks);
	for (i = 0; i < N; i++) {
		mkaddr(i, a);
		fill(i, self->buf, LEN);
		ASSERT_EQ(0, sb_dcache_get(self->c, a, self->out, LEN));
		ASSERT_EQ(0, memcmp(self->buf, self->out, LEN));
	}
	mkaddr(N, a);
	ASSERT_EQ(-ENOENT, sb_dcache_get(self->c, a, self->out, LEN));
}

/* Stale temporary files from a crash are removed at open; ours only. */
TEST_F(dc, stale_temp_files_removed)
{
	char path[512], fan[256];
	struct sb_dcache_stats st;
	uint8_t a[SNAPBLK_ADDR_LEN];

	sb_dcache_close(self->c);
	self->c = NULL;
	chunk_path(self->dir, self->addr, path, sizeof(path));
	snprintf(fan, sizeof(fan), "%.*s", (int)(strrchr(path, '/') - path),
		 path);
	ASSERT_EQ(0, mkdir(fan, 0700));
	write_file(path, self->buf, CS);		/* a whole chunk */
	snprintf(path, sizeof(path), "%s/.tmp.4242.7", fan);
	write_file(path, self->buf, CS / 3);		/* a torn put */
	snprintf(path, sizeof(path), "%s/.tmp.1.1", self->dir);
	write_file(path, self->buf, 10);		/* a torn DIR/hot */
	snprintf(path, sizeof(path), "%s/NOTES", fan);
	write_file(path, "x", 1);			/* not ours: kept */
	mkaddr(2, a);
	a[0] = self->addr[0];
	chunk_path(self->dir, a, path, sizeof(path));
	write_file(path, "", 0);			/* an empty chunk */
	ASSERT_EQ(3, count_files(self->dir, ".tmp.", NULL) +
		  count_files(self->dir, "NOTES", NULL));

	ASSERT_EQ(0, REOPEN(CAP * CS));
	ASSERT_EQ(0, count_files(self->dir, ".tmp.", NULL));
	ASSERT_EQ(1, count_files(self->dir, "NOTES", NULL));
	ASSERT_EQ(-ENOENT, file_size(self->dir, a));
	sb_dcache_get_stats(self->c, &st);
	ASSERT_EQ(1, st.chunks);
	ASSERT_EQ(0, sb_dcache_get(self->c, self->addr, self->out, CS));
	ASSERT_EQ(0, memcmp(self->buf, self->out, CS));
}

/* One owner at a time: a second open, here or in another process. */
TEST_F(dc, second_open_is_busy)
{
	struct sb_dcache *c2 = NULL;
	char msg[256] = "";
	int status;
	pid_t pid;

	ASSERT_EQ(-EBUSY, sb_dcache_open(self->dir, CS, msg, sizeof(msg),
					 &c2));
	ASSERT_EQ(NULL, c2);
	ASSERT_NE(NULL, strstr(msg, "in use")) TH_LOG("msg: %s", msg);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(sb_dcache_open(self->dir, CS, NULL, 0, &c2) == -EBUSY ?
		      0 : 1);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));

	sb_dcache_close(self->c);
	self->c = NULL;
	ASSERT_EQ(0, sb_dcache_open(self->dir, CS, msg, sizeof(msg), &c2));
	sb_dcache_close(c2);
}

/* drop: the kernel rejected the chunk; it goes, and a refetch is put. */
TEST_F(dc, drop)
{
	struct sb_dcache_stats st;
	uint8_t a[SNAPBLK_ADDR_LEN];

	ASSERT_EQ(0, sb_dcache_put(self->c, self->addr, self->buf, CS));
	ASSERT_EQ(0, sb_dcache_drop(self->c, self->addr));
	ASSERT_EQ(-ENOENT, file_size(self->dir, self->addr));
	ASSERT_EQ(-ENOENT, sb_dcache_get(self->c, self->addr, self->out, CS));
	ASSERT_EQ(-ENOENT, sb_dcache_drop(self->c, self->addr));
	mkaddr(2, a);
	ASSERT_EQ(-ENOENT, sb_dcache_drop(self->c, a));
	sb_dcache_get_stats(self->c, &st);
	EXPECT_EQ(1, st.drops);
	EXPECT_EQ(0, st.chunks);
	EXPECT_EQ(0, st.bytes);
	ASSERT_EQ(0, sb_dcache_put(self->c, self->addr, self->buf, CS));
	ASSERT_EQ(0, sb_dcache_get(self->c, self->addr, self->out, CS));
}

/* A chunk file or a fan-out dir replaced by a symlink is not followed. */
TEST_F(dc, symlink_not_followed)
{
	char path[512], secret[256], evil[256], fan[512], tpath[512];
	uint8_t a[SNAPBLK_ADDR_LEN];
	struct stat s;
	int i;

	snprintf(secret, sizeof(secret), "%s/secret", self->tmp);
	memset(self->out, 'S', CS);
	write_file(secret, self->out, CS);

	/* While open: the file swapped for a link to a same-sized file. */
	ASSERT_EQ(0, sb_dcache_put(self->c, self->addr, self->buf, CS));
	chunk_path(self->dir, self->addr, path, sizeof(path));
	ASSERT_EQ(0, unlink(path));
	ASSERT_EQ(0, symlink(secret, path));
	memset(self->out, 0, CS);
	ASSERT_EQ(-ENOENT, sb_dcache_get(self->c, self->addr, self->out, CS));
	for (i = 0; i < CS; i++)
		ASSERT_NE('S', self->out[i]);
	ASSERT_EQ(-1, lstat(path, &s));		/* the link is removed */
	ASSERT_EQ(0, stat(secret, &s));		/* its target is not */
	ASSERT_EQ(CS, s.st_size);

	/* At open: a linked chunk name and a linked fan-out dir. */
	ASSERT_EQ(0, symlink(secret, path));
	mkaddr(7, a);
	a[0] = self->addr[0] ^ 0x80;
	chunk_path(self->dir, a, path, sizeof(path));
	snprintf(fan, sizeof(fan), "%.*s", (int)(strrchr(path, '/') - path),
		 path);
	snprintf(evil, sizeof(evil), "%s/evil", self->tmp);
	ASSERT_EQ(0, mkdir(evil, 0700));
	snprintf(tpath, sizeof(tpath), "%s/%s", evil, strrchr(path, '/') + 1);
	write_file(tpath, self->buf, CS);
	ASSERT_EQ(0, symlink(evil, fan));
	ASSERT_EQ(0, REOPEN(CAP * CS));
	ASSERT_EQ(-ENOENT, sb_dcache_get(self->c, self->addr, self->out, CS));
	ASSERT_EQ(-ENOENT, sb_dcache_get(self->c, a, self->out, CS));
	chunk_path(self->dir, self->addr, path, sizeof(path));
	ASSERT_EQ(-1, lstat(path, &s));
	ASSERT_EQ(-1, lstat(fan, &s));
	ASSERT_EQ(0, stat(secret, &s));
	/* A put makes a real fan-out dir; the link's target is untouched. */
	ASSERT_EQ(0, sb_dcache_put(self->c, a, self->buf, CS));
	ASSERT_EQ(0, lstat(fan, &s));
	ASSERT_TRUE(S_ISDIR(s.st_mode));
	ASSERT_EQ(1, count_files(evil, "", NULL));
}

/* What the child saw in the hook: temporary files at that moment. */
static const char *hook_dir;

static void crash_hook(void *arg)
{
	(void)arg;
	/* Exit 10 + the number of .tmp.* names visible: the data is written. */
	_exit(10 + count_files(hook_dir, ".tmp.", NULL));
}

/* A crash between writing and linking leaves no visible partial chunk. */
TEST_F(dc, crash_mid_put)
{
	struct sb_dcache_stats st;
	uint8_t a[SNAPBLK_ADDR_LEN];
	int status;
	pid_t pid;

	mkaddr(2, a);
	fill(2, self->out, CS);
	ASSERT_EQ(0, sb_dcache_put(self->c, a, self->out, CS));
	hook_dir = self->dir;
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		sb_dcache_set_test(self->c, variant->no_tmpfile, crash_hook,
				   NULL);
		sb_dcache_put(self->c, self->addr, self->buf, CS);
		_exit(1);	/* the hook was not called */
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	/* O_TMPFILE has no name until linked; the other path a temp name. */
	ASSERT_EQ(variant->no_tmpfile ? 11 : 10, WEXITSTATUS(status));

	ASSERT_EQ(-ENOENT, file_size(self->dir, self->addr));
	ASSERT_EQ(-ENOENT, sb_dcache_get(self->c, self->addr, self->out, CS));
	ASSERT_EQ(variant->no_tmpfile ? 1 : 0,
		  count_files(self->dir, ".tmp.", NULL));

	/* The restart cleans up and keeps the chunk put before. */
	ASSERT_EQ(0, REOPEN(CAP * CS));
	ASSERT_EQ(0, count_files(self->dir, ".tmp.", NULL));
	sb_dcache_get_stats(self->c, &st);
	ASSERT_EQ(1, st.chunks);
	ASSERT_EQ(-ENOENT, sb_dcache_get(self->c, self->addr, self->out, CS));
	ASSERT_EQ(0, sb_dcache_get(self->c, a, self->out, CS));
	fill(2, self->buf, CS);
	ASSERT_EQ(0, memcmp(self->buf, self->out, CS));
}

TEST_HARNESS_MAIN
