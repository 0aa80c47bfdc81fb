// SPDX-License-Identifier: GPL-2.0
/*
 * Regression tests for the defects a security and block-layer review of
 * kmod/ found (issue 11).  Each test failed on the module before its fix;
 * Documentation/security.md says which claim each one backs.
 *
 * The test plays the fetch daemon itself (struct srv below): it builds
 * chunks of random ciphertext (the kernel checks SHA-256(ciphertext)
 * against the address; the key is random, so the plaintext is whatever
 * AES-256-CTR makes of it, computed here with OpenSSL to compare), writes
 * the chunk table to a memfd and maps it through netlink.
 */
#include <dirent.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <openssl/evp.h>
#include <netlink/genl/genl.h>

#include "kselftest_harness.h"
#include "lib.h"
#include "genl.h"
#include "chunk.h"

#define KIB 1024u
#define MAX_CHUNKS 128

/* A chunk the fake daemon can serve: its ciphertext and what it reads as. */
struct tchunk {
	uint8_t addr[SNAPBLK_ADDR_LEN];
	uint8_t key[SNAPBLK_CHUNK_KEY_LEN];
	uint32_t len;
	uint8_t *ct;
	uint8_t *pt;
};

/*
 * The fake fetch daemon: a thread that answers every request whose address
 * and size match one of its chunks with the ciphertext, and every other
 * one with EIO, except the address in @hold, whose requests it claims and
 * never answers (a wedged daemon).
 */
struct srv {
	int fd;
	pthread_t th;
	volatile int stop;
	struct tchunk *chunks;
	int n;
	const uint8_t *hold;
	pthread_mutex_t lock;
	uint32_t last_size;		/* chunk_size of the last request */
	unsigned long requests, answered, refused;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fill_random(void *buf, size_t len)
{
	int fd = open("/dev/urandom", O_RDONLY);
	size_t done = 0;

	while (fd >= 0 && done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);

		if (n <= 0)
			break;
		done += n;
	}
	if (fd >= 0)
		close(fd);
}

/* Random ciphertext of @len bytes, its address, a random key, plaintext. */
static int tchunk_make(struct tchunk *c, uint32_t len)
{
	static const uint8_t iv[16];
	EVP_CIPHER_CTX *x;
	int out, ret = -EIO;

	c->len = len;
	c->ct = malloc(len);
	c->pt = malloc(len);
	if (!c->ct || !c->pt)
		return -ENOMEM;
	fill_random(c->ct, len);
	fill_random(c->key, sizeof(c->key));
	if (sb_sha256(c->ct, len, c->addr))
		return -EIO;
	x = EVP_CIPHER_CTX_new();
	if (x && EVP_DecryptInit_ex(x, EVP_aes_256_ctr(), NULL, c->key, iv) &&
	    EVP_DecryptUpdate(x, c->pt, &out, c->ct, len) && out == (int)len)
		ret = 0;
	EVP_CIPHER_CTX_free(x);
	return ret;
}

static void tchunk_free(struct tchunk *c)
{
	free(c->ct);
	free(c->pt);
}

static void answer(int fd, uint64_t id, uint32_t error, const void *data,
		   uint32_t len)
{
	struct snapblk_fetch_resp r = {
		.len = sizeof(r), .error = error, .id = id,
	};
	struct iovec iov[2] = {
		{ &r, sizeof(r) }, { (void *)data, len },
	};

	if (writev(fd, iov, data ? 2 : 1) < 0 && errno != ENOENT)
		fprintf(stderr, "# fake daemon: answer %llu: %s\n",
			(unsigned long long)id, strerror(errno));
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;
	struct snapblk_fetch_req req[16];

	while (!s->stop) {
		struct pollfd p = { .fd = s->fd, .events = POLLIN };
		ssize_t n;
		int i, j;

		if (poll(&p, 1, 20) <= 0)
			continue;
		n = read(s->fd, req, sizeof(req));
		if (n <= 0)
			continue;
		for (i = 0; i < n / (ssize_t)sizeof(req[0]); i++) {
			const struct tchunk *hit = NULL;

			pthread_mutex_lock(&s->lock);
			s->requests++;
			s->last_size = req[i].chunk_size;
			pthread_mutex_unlock(&s->lock);
			if (s->hold && !memcmp(s->hold, req[i].addr,
					       SNAPBLK_ADDR_LEN))
				continue;	/* claimed, never answered */
			for (j = 0; j < s->n; j++)
				if (!memcmp(s->chunks[j].addr, req[i].addr,
					    SNAPBLK_ADDR_LEN) &&
				    s->chunks[j].len == req[i].chunk_size)
					hit = &s->chunks[j];
			if (hit) {
				answer(s->fd, req[i].id, 0, hit->ct, hit->len);
				s->answered++;
			} else {
				answer(s->fd, req[i].id, EIO, NULL, 0);
				s->refused++;
			}
		}
	}
	return NULL;
}

static int srv_start(struct srv *s, struct tchunk *chunks, int n)
{
	memset(s, 0, sizeof(*s));
	s->chunks = chunks;
	s->n = n;
	pthread_mutex_init(&s->lock, NULL);
	s->fd = open("/dev/snapblk-fetch", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (s->fd < 0)
		return -errno;
	return -pthread_create(&s->th, NULL, srv_main, s);
}

static void srv_stop(struct srv *s)
{
	if (s->fd < 0)
		return;
	s->stop = 1;
	pthread_join(s->th, NULL);
	close(s->fd);
	s->fd = -1;
}

/* A memfd holding a chunk table of @n entries, one per chunk in @c. */
static int table_fd(struct tchunk **c, int n)
{
	struct snapblk_chunk_entry e;
	int fd = memfd_create("table", MFD_CLOEXEC), i;

	for (i = 0; fd >= 0 && i < n; i++) {
		memset(&e, 0, sizeof(e));
		memcpy(e.addr, c[i]->addr, sizeof(e.addr));
		memcpy(e.key, c[i]->key, sizeof(e.key));
		if (write(fd, &e, sizeof(e)) != sizeof(e))
			return -1;
	}
	return fd;
}

/* Map @n chunks of @chunk_size as device @name; /dev/snapblkN in @node. */
static int map(struct sb_nl *nl, const char *name, struct tchunk **c, int n,
	       uint32_t chunk_size, uint32_t timeout_ms, char node[64])
{
	uint8_t id[SNAPBLK_IMAGE_ID_LEN] = { 1 };
	struct sb_create req = {
		.name = name,
		.image_size = (uint64_t)n * chunk_size,
		.chunk_size = chunk_size,
		.image_id = id,
		.fetch_timeout_ms = timeout_ms,
	};
	struct sb_dev d;
	int ret;

	req.table_fd = table_fd(c, n);
	if (req.table_fd < 0)
		return -errno;
	ret = sb_nl_create(nl, &req, &d);
	close(req.table_fd);
	if (!ret)
		snprintf(node, 64, "/dev/snapblk%u", d.index);
	return ret;
}

/* pread with O_DIRECT from @node: bytes read or -errno. */
static ssize_t dread(const char *node, void *buf, size_t len, off_t off)
{
	int fd = open(node, O_RDONLY | O_DIRECT | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = pread(fd, buf, len, off);
	n = n < 0 ? -errno : n;
	close(fd);
	return n;
}

static void *aligned(size_t len)
{
	void *p = NULL;

	return posix_memalign(&p, 4096, len) ? NULL : p;
}

static long mem_available_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static void drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	if (fd >= 0) {
		if (write(fd, "3\n", 2) < 0)
			perror("drop_caches");
		close(fd);
	}
}

FIXTURE(hard) {
	struct sb_nl nl;
	struct srv srv;
	struct tchunk c[MAX_CHUNKS];
	int nc;
};

FIXTURE_SETUP(hard)
{
	if (sb_module_loaded("snapblk"))
		sb_unload("snapblk");
	ASSERT_EQ(0, sb_load(sb_ko_path(), NULL));
	ASSERT_EQ(0, sb_nl_open(&self->nl));
	self->srv.fd = -1;
	self->nc = 0;
}

FIXTURE_TEARDOWN(hard)
{
	struct sb_dev d;
	int i;

	srv_stop(&self->srv);
	for (i = 0; i < 8; i++) {
		char name[8];

		snprintf(name, sizeof(name), "h%d", i);
		if (!sb_nl_status(&self->nl, name, &d))
			sb_nl_remove(&self->nl, name);
	}
	sb_nl_close(&self->nl);
	for (i = 0; i < self->nc; i++)
		tchunk_free(&self->c[i]);
	sb_unload("snapblk");
}

static struct tchunk *new_chunk(FIXTURE_DATA(hard) *self, uint32_t len)
{
	struct tchunk *c = &self->c[self->nc];

	if (self->nc == MAX_CHUNKS || tchunk_make(c, len))
		return NULL;
	self->nc++;
	return c;
}

/*
 * The shared cache is keyed by what shapes a chunk, its size included: a
 * second manifest naming a cached chunk's (address, key) with a larger
 * chunk size must not be served the cached chunk.  Before the fix an 8 KiB
 * read at 64 KiB of the second device copied from past the end of the
 * first chunk's page array (a GPF on 6.1, another chunk's bytes on 6.12).
 */
TEST_F(hard, cache_identity_includes_chunk_size)
{
	struct tchunk *a = new_chunk(self, 64 * KIB);
	char na[64], nb[64];
	uint8_t *buf = aligned(128 * KIB);
	ssize_t n;

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, srv_start(&self->srv, self->c, self->nc));
	ASSERT_EQ(0, map(&self->nl, "h0", &a, 1, 64 * KIB, 3000, na));
	ASSERT_EQ((ssize_t)(64 * KIB), dread(na, buf, 64 * KIB, 0));
	ASSERT_EQ(0, memcmp(buf, a->pt, 64 * KIB));

	/* Same address and key, declared 128 KiB long. */
	ASSERT_EQ(0, map(&self->nl, "h1", &a, 1, 128 * KIB, 3000, nb));
	n = dread(nb, buf, 8 * KIB, 64 * KIB);
	EXPECT_EQ(-EIO, n);
	n = dread(nb, buf, 128 * KIB, 0);
	EXPECT_EQ(-EIO, n);
	/* The daemon was asked for a 128 KiB chunk: a cache miss. */
	EXPECT_EQ(128 * KIB, self->srv.last_size);
	/* The first device still reads right. */
	ASSERT_EQ((ssize_t)(64 * KIB), dread(na, buf, 64 * KIB, 0));
	EXPECT_EQ(0, memcmp(buf, a->pt, 64 * KIB));
	free(buf);
}

struct reader {
	char node[64];
	off_t off;
	ssize_t ret;
	double took;
	pthread_t th;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	uint8_t *buf = aligned(4096);
	double t0 = now();

	r->ret = buf ? dread(r->node, buf, 4096, r->off) : -ENOMEM;
	r->took = now() - t0;
	free(buf);
	return NULL;
}

/*
 * A fetch fails by its deadline under any load: with fetch_timeout_ms
 * 2000 and an uncached read every 100 ms, a read of the chunk a wedged
 * daemon holds fails with EIO after about 2 s.  Before the fix every new
 * miss pushed the deadline scan back and the read hung until the stream
 * stopped.
 */
TEST_F_TIMEOUT(hard, deadline_holds_under_a_stream_of_misses, 120)
{
	enum { N = 100 };
	struct tchunk *list[N];
	struct reader held;
	char node[64];
	uint8_t *buf = aligned(4096);
	double t0;
	int i;

	ASSERT_NE(NULL, buf);
	for (i = 0; i < N; i++) {
		list[i] = new_chunk(self, 64 * KIB);
		ASSERT_NE(NULL, list[i]);
	}
	ASSERT_EQ(0, srv_start(&self->srv, self->c, self->nc));
	self->srv.hold = list[0]->addr;
	ASSERT_EQ(0, map(&self->nl, "h0", list, N, 64 * KIB, 2000, node));

	memset(&held, 0, sizeof(held));
	snprintf(held.node, sizeof(held.node), "%s", node);
	held.off = 0;
	ASSERT_EQ(0, pthread_create(&held.th, NULL, reader_main, &held));
	/* A new miss every 100 ms for 8 s, each answered at once. */
	t0 = now();
	for (i = 1; i < N && now() - t0 < 8; i++) {
		EXPECT_EQ(4096, dread(node, buf, 4096,
				      (off_t)i * 64 * KIB));
		usleep(100 * 1000);
	}
	TH_LOG("stream of %d misses for %.2f s", i - 1, now() - t0);
	pthread_join(held.th, NULL);
	TH_LOG("held chunk: read returned %zd after %.2f s", held.ret,
	       held.took);
	EXPECT_EQ(-EIO, held.ret);
	/* The deadline (2 s) plus the scan's slack, not the stream's end. */
	EXPECT_LT(held.took, 3.5);
	free(buf);
}

/*
 * The blk-mq timeout does not re-arm forever: a request the fetch path
 * lost track of would otherwise wait an hour.  With no daemon at all the
 * read fails by the device's deadline too.
 */
TEST_F_TIMEOUT(hard, no_daemon_fails_by_the_deadline, 60)
{
	struct tchunk *a = new_chunk(self, 64 * KIB);
	struct reader r;
	char node[64];

	ASSERT_NE(NULL, a);
	ASSERT_EQ(0, map(&self->nl, "h0", &a, 1, 64 * KIB, 1000, node));
	memset(&r, 0, sizeof(r));
	snprintf(r.node, sizeof(r.node), "%s", node);
	reader_main(&r);
	TH_LOG("read with no daemon: %zd after %.2f s", r.ret, r.took);
	EXPECT_EQ(-EIO, r.ret);
	EXPECT_LT(r.took, 2.5);
}

/*
 * The blk-mq timeout (fetch_timeout_ms + 5 s) fails a request still
 * waiting, instead of re-arming for ever: a read of a device with a 1 s
 * timeout that joined a fetch made for a device with a 10 min one (whose
 * deadline is the fetch's) fails after about 6 s.  Before the fix it
 * waited for the other device's deadline.
 */
TEST_F_TIMEOUT(hard, blk_mq_timeout_fails_a_request_left_waiting, 120)
{
	struct tchunk *a = new_chunk(self, 64 * KIB);
	struct reader ra, rb;
	char na[64], nb[64];

	ASSERT_NE(NULL, a);
	ASSERT_EQ(0, srv_start(&self->srv, self->c, self->nc));
	self->srv.hold = a->addr;
	ASSERT_EQ(0, map(&self->nl, "h0", &a, 1, 64 * KIB, 600000, na));
	ASSERT_EQ(0, map(&self->nl, "h1", &a, 1, 64 * KIB, 1000, nb));
	memset(&ra, 0, sizeof(ra));
	memset(&rb, 0, sizeof(rb));
	snprintf(ra.node, sizeof(ra.node), "%s", na);
	snprintf(rb.node, sizeof(rb.node), "%s", nb);
	ASSERT_EQ(0, pthread_create(&ra.th, NULL, reader_main, &ra));
	usleep(500 * 1000);	/* the fetch is h0's, with h0's deadline */
	ASSERT_EQ(0, pthread_create(&rb.th, NULL, reader_main, &rb));
	pthread_join(rb.th, NULL);
	TH_LOG("read of the 1 s device: %zd after %.2f s", rb.ret, rb.took);
	EXPECT_EQ(-EIO, rb.ret);
	EXPECT_LT(rb.took, 9.0);
	/* A daemon that answers now completes h0's read. */
	srv_stop(&self->srv);
	ASSERT_EQ(0, srv_start(&self->srv, self->c, self->nc));
	pthread_join(ra.th, NULL);
	EXPECT_EQ(4096, ra.ret);
}

/*
 * An answer whose payload faults (EFAULT) leaves the chunk claimed for a
 * retry and keeps no pages: before the fix each retry allocated the
 * chunk's pages again and leaked the previous set.
 */
TEST_F_TIMEOUT(hard, efault_answer_leaks_no_pages, 300)
{
	struct tchunk *a = new_chunk(self, 512 * KIB);
	struct snapblk_fetch_req req;
	struct snapblk_fetch_resp r;
	struct reader rd;
	struct iovec iov[2];
	long before, after;
	char node[64];
	void *bad;
	int fd, i, efault = 0;

	ASSERT_NE(NULL, a);
	ASSERT_EQ(0, map(&self->nl, "h0", &a, 1, 512 * KIB, 600000, node));
	fd = open("/dev/snapblk-fetch", O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	memset(&rd, 0, sizeof(rd));
	snprintf(rd.node, sizeof(rd.node), "%s", node);
	ASSERT_EQ(0, pthread_create(&rd.th, NULL, reader_main, &rd));
	ASSERT_EQ((ssize_t)sizeof(req), read(fd, &req, sizeof(req)));

	bad = mmap(NULL, 512 * KIB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	ASSERT_NE(MAP_FAILED, bad);
	r = (struct snapblk_fetch_resp){ .len = sizeof(r), .id = req.id };
	iov[0] = (struct iovec){ &r, sizeof(r) };
	iov[1] = (struct iovec){ bad, 512 * KIB };
	drop_caches();
	before = mem_available_kb();
	for (i = 0; i < 200; i++)
		efault += writev(fd, iov, 2) < 0 && errno == EFAULT;
	drop_caches();
	after = mem_available_kb();
	TH_LOG("200 faulting answers: %d EFAULT, MemAvailable %ld -> %ld kB",
	       efault, before, after);
	EXPECT_EQ(200, efault);
	/* 200 leaked chunks would be 100 MiB; allow noise. */
	EXPECT_LT(before - after, 16 * 1024);

	/* The chunk is still claimed: the right answer completes the read. */
	iov[1] = (struct iovec){ a->ct, 512 * KIB };
	EXPECT_EQ((ssize_t)(sizeof(r) + 512 * KIB), writev(fd, iov, 2));
	pthread_join(rd.th, NULL);
	EXPECT_EQ(4096, rd.ret);
	munmap(bad, 512 * KIB);
	close(fd);
}

/*
 * A read() of requests whose copy to the daemon faults puts them back on
 * the queue: before the fix they stayed claimed by that file, invisible
 * to every later read, until it was closed.
 */
TEST_F_TIMEOUT(hard, faulting_read_requeues, 60)
{
	struct tchunk *a = new_chunk(self, 64 * KIB);
	struct snapblk_fetch_req req;
	struct reader rd;
	struct pollfd p;
	char node[64];
	void *bad;
	int fd;

	ASSERT_NE(NULL, a);
	ASSERT_EQ(0, map(&self->nl, "h0", &a, 1, 64 * KIB, 600000, node));
	fd = open("/dev/snapblk-fetch", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	memset(&rd, 0, sizeof(rd));
	snprintf(rd.node, sizeof(rd.node), "%s", node);
	ASSERT_EQ(0, pthread_create(&rd.th, NULL, reader_main, &rd));
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	ASSERT_EQ(1, poll(&p, 1, 10000));

	bad = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, bad);
	EXPECT_EQ(-1, read(fd, bad, sizeof(req)));
	EXPECT_EQ(EFAULT, errno);
	/* Still pending, for this file or any other. */
	ASSERT_EQ((ssize_t)sizeof(req), read(fd, &req, sizeof(req)));
	EXPECT_EQ(64 * KIB, req.chunk_size);
	answer(fd, req.id, 0, a->ct, a->len);
	pthread_join(rd.th, NULL);
	EXPECT_EQ(4096, rd.ret);
	munmap(bad, 4096);
	close(fd);
}

/* CREATE with one ZERO chunk of @size, name @name, table fd @fd. */
static int create_raw(struct sb_nl *nl, const char *name, uint64_t size,
		      int fd)
{
	uint8_t id[SNAPBLK_IMAGE_ID_LEN] = { 2 };
	struct sb_create req = {
		.name = name, .image_size = size, .chunk_size = 64 * KIB,
		.image_id = id, .table_fd = fd,
	};
	struct sb_dev d;

	return sb_nl_create(nl, &req, &d);
}

static int zero_table(int n)
{
	struct snapblk_chunk_entry e = { .flags = SNAPBLK_CHUNK_F_ZERO };
	int fd = memfd_create("zt", MFD_CLOEXEC), i;

	for (i = 0; fd >= 0 && i < n; i++)
		if (write(fd, &e, sizeof(e)) != sizeof(e))
			return -1;
	return fd;
}

/* Image sizes whose chunk count overflows are refused. */
TEST_F(hard, image_size_near_2_64_is_refused)
{
	int fd = zero_table(1);

	ASSERT_GE(fd, 0);
	EXPECT_EQ(-EINVAL, create_raw(&self->nl, "h0", UINT64_MAX - 4095, fd));
	EXPECT_EQ(-EINVAL, create_raw(&self->nl, "h0", UINT64_MAX, fd));
	EXPECT_EQ(-ENOENT, sb_nl_status(&self->nl, "h0",
					&(struct sb_dev){ 0 }));
	close(fd);
}

/* Names are ASCII: Latin-1 letters pass the kernel's isalnum(). */
TEST_F(hard, non_ascii_names_are_refused)
{
	int fd = zero_table(1);

	ASSERT_GE(fd, 0);
	EXPECT_EQ(-EINVAL, create_raw(&self->nl, "caf\xe9", 64 * KIB, fd));
	EXPECT_EQ(-EINVAL, create_raw(&self->nl, "\xc0\xc1", 64 * KIB, fd));
	EXPECT_EQ(0, create_raw(&self->nl, "h0", 64 * KIB, fd));
	close(fd);
}

static void on_alarm(int sig)
{
	(void)sig;
}

/*
 * The table must be a regular file or memfd: a pipe whose writer never
 * writes blocked CREATE, and every command of every generic netlink
 * family with it, in kernel_read().
 */
TEST_F_TIMEOUT(hard, table_from_a_pipe_is_refused_at_once, 60)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	int p[2], ret;
	double t0;

	ASSERT_EQ(0, pipe(p));
	sigaction(SIGALRM, &sa, NULL);
	alarm(5);	/* the old module waited for the writer */
	t0 = now();
	ret = create_raw(&self->nl, "h0", 64 * KIB, p[0]);
	alarm(0);
	TH_LOG("CREATE from a pipe: %d after %.2f s", ret, now() - t0);
	EXPECT_EQ(-EINVAL, ret);
	EXPECT_LT(now() - t0, 2.0);
	close(p[0]);
	close(p[1]);
}

/*
 * A duplicate name is refused before the table is read (EEXIST, not the
 * table's error, and without reading a table of any size).
 */
TEST_F(hard, duplicate_name_is_refused_before_the_table)
{
	struct snapblk_chunk_entry e = { .flags = 0x80 };	/* malformed */
	int good = zero_table(1), bad = memfd_create("bad", MFD_CLOEXEC);

	ASSERT_GE(good, 0);
	ASSERT_GE(bad, 0);
	ASSERT_EQ((ssize_t)sizeof(e), write(bad, &e, sizeof(e)));
	ASSERT_EQ(0, create_raw(&self->nl, "h0", 64 * KIB, good));
	EXPECT_EQ(-EEXIST, create_raw(&self->nl, "h0", 64 * KIB, bad));
	EXPECT_EQ(-EINVAL, create_raw(&self->nl, "h1", 64 * KIB, bad));
	close(good);
	close(bad);
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * The chunk table is charged to the caller's memory cgroup: a caller
 * limited to 32 MiB cannot make the kernel hold a 144 MiB table.
 */
TEST_F_TIMEOUT(hard, table_is_charged_to_the_callers_memcg, 120)
{
	const char *cg = "/sys/fs/cgroup/snapblk-hard";
	const uint64_t n = 2u << 20;	/* 2 Mi entries: 144 MiB */
	char path[256], pid[32];
	int fd, ret, status;
	pid_t child;

	if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) &&
	    mount("none", "/sys/fs/cgroup", "cgroup2", 0, NULL))
		SKIP(return, "no cgroup2: %s", strerror(errno));
	ASSERT_EQ(0, write_str("/sys/fs/cgroup/cgroup.subtree_control",
			       "+memory"));
	mkdir(cg, 0755);
	snprintf(path, sizeof(path), "%s/memory.max", cg);
	ASSERT_EQ(0, write_str(path, "33554432"));
	snprintf(path, sizeof(path), "%s/memory.swap.max", cg);
	write_str(path, "0");

	/* A sparse memfd of valid (ZERO) entries would be too slow to
	 * write; entries of all zero bytes are valid non-zero chunks. */
	fd = memfd_create("huge", MFD_CLOEXEC);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, ftruncate(fd, n * sizeof(struct snapblk_chunk_entry)));

	child = fork();
	ASSERT_GE(child, 0);
	if (child == 0) {
		struct sb_nl nl;

		snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
		snprintf(pid, sizeof(pid), "%d", getpid());
		/* Unkillable by the memcg OOM killer: the charge fails. */
		if (write_str("/proc/self/oom_score_adj", "-1000") ||
		    write_str(path, pid) || sb_nl_open(&nl))
			_exit(100);
		ret = create_raw(&nl, "h0", n * 64 * KIB, fd);
		if (!ret)
			sb_nl_remove(&nl, "h0");
		_exit(ret == -ENOMEM ? 0 : ret == 0 ? 1 : 2);
	}
	ASSERT_EQ(child, waitpid(child, &status, 0));
	snprintf(path, sizeof(path), "%s", cg);
	rmdir(path);
	close(fd);
	ASSERT_TRUE(WIFEXITED(status));
	TH_LOG("CREATE of a 144 MiB table in a 32 MiB memcg: child exit %d (0: ENOMEM, 1: created)",
	       WEXITSTATUS(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

/* Seconds for @reps reads of sysfs attribute @attr of /dev/@node. */
static double time_attr(const char *node, const char *attr, int reps)
{
	char path[256], buf[64];
	double t0 = now();
	int i;

	snprintf(path, sizeof(path), "/sys/block/%s/snapblk/%s", node + 5,
		 attr);
	for (i = 0; i < reps; i++)
		if (sb_read_file(path, buf, sizeof(buf)))
			return -1;
	return now() - t0;
}

/*
 * Unprivileged statistics cost the same for a device of 16 chunks and one
 * of 1 Mi chunks: residency and in-flight counts are kept as they change,
 * not counted over the table (or the whole cache) under the cache lock.
 */
TEST_F_TIMEOUT(hard, stats_do_not_scale_with_the_table, 300)
{
	const int big = 1 << 20;
	char small_node[64], big_node[64];
	double ts, tb, ss, sb;
	struct sb_dev d;
	int fd, i;
	struct snapblk_chunk_entry e = { .flags = 0 };

	/* 1 Mi non-zero entries (never read) and 16. */
	fd = memfd_create("big", MFD_CLOEXEC);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, ftruncate(fd, (off_t)big * sizeof(e)));
	ASSERT_EQ(0, create_raw(&self->nl, "h1", (uint64_t)big * 64 * KIB,
				fd));
	close(fd);
	fd = memfd_create("small", MFD_CLOEXEC);
	for (i = 0; i < 16; i++)
		ASSERT_EQ((ssize_t)sizeof(e), write(fd, &e, sizeof(e)));
	ASSERT_EQ(0, create_raw(&self->nl, "h0", 16 * 64 * KIB, fd));
	close(fd);
	ASSERT_EQ(0, sb_nl_status(&self->nl, "h0", &d));
	snprintf(small_node, sizeof(small_node), "/dev/snapblk%u", d.index);
	ASSERT_EQ(0, sb_nl_status(&self->nl, "h1", &d));
	snprintf(big_node, sizeof(big_node), "/dev/snapblk%u", d.index);
	EXPECT_EQ(0u, d.stats[SNAPBLK_STAT_RESIDENT]);

	ts = time_attr(small_node, "resident_chunks", 20);
	tb = time_attr(big_node, "resident_chunks", 20);
	ss = time_attr(small_node, "inflight", 20);
	sb = time_attr(big_node, "inflight", 20);
	TH_LOG("20 reads of resident_chunks: %.4f s (16 chunks), %.4f s (1 Mi chunks); inflight: %.4f s, %.4f s",
	       ts, tb, ss, sb);
	ASSERT_GT(ts, 0);
	ASSERT_GT(ss, 0);
	EXPECT_LT(tb, 5 * ts + 0.05);
	EXPECT_LT(sb, 5 * ss + 0.05);
}

/*
 * Residency is counted per device as chunks come and go: a chunk counts
 * for a device once that device has read it (fetched it, or found it in
 * the cache), until it is evicted.
 */
TEST_F_TIMEOUT(hard, resident_count_follows_the_cache, 120)
{
	struct tchunk *list[8], *sw[8];
	char n0[64], n1[64], path[256], buf[32];
	uint8_t *b = aligned(4096);
	unsigned long asked;
	struct sb_dev d;
	int i;

	ASSERT_NE(NULL, b);
	for (i = 0; i < 8; i++) {
		list[i] = new_chunk(self, 64 * KIB);
		ASSERT_NE(NULL, list[i]);
	}
	ASSERT_EQ(0, srv_start(&self->srv, self->c, self->nc));
	ASSERT_EQ(0, map(&self->nl, "h0", list, 8, 64 * KIB, 5000, n0));
	/* h1 has h0's chunks 4..7 at 0..3 and 0..3 at 4..7. */
	for (i = 0; i < 8; i++)
		sw[i] = list[(i + 4) % 8];
	ASSERT_EQ(0, map(&self->nl, "h1", sw, 8, 64 * KIB, 5000, n1));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(4096, dread(n0, b, 4096, (off_t)i * 64 * KIB));
	/* Twice the same chunk counts once. */
	ASSERT_EQ(4096, dread(n0, b, 4096, 4096));
	ASSERT_EQ(0, sb_nl_status(&self->nl, "h0", &d));
	EXPECT_EQ(3u, d.stats[SNAPBLK_STAT_RESIDENT]);
	ASSERT_EQ(0, sb_nl_status(&self->nl, "h1", &d));
	EXPECT_EQ(0u, d.stats[SNAPBLK_STAT_RESIDENT]);
	/* h1 reads h0's chunk 0: a hit, no fetch, and it counts for h1. */
	asked = self->srv.requests;
	ASSERT_EQ(4096, dread(n1, b, 4096, 4 * 64 * KIB));
	EXPECT_EQ(0, memcmp(b, list[0]->pt, 4096));
	EXPECT_EQ(asked, self->srv.requests);
	snprintf(path, sizeof(path), "/sys/block/%s/snapblk/resident_chunks",
		 n1 + 5);
	ASSERT_EQ(0, sb_read_file(path, buf, sizeof(buf)));
	EXPECT_STREQ("1", buf);
	/* Memory pressure (the shrinker) evicts everything unused. */
	drop_caches();
	ASSERT_EQ(0, sb_nl_status(&self->nl, "h0", &d));
	EXPECT_EQ(0u, d.stats[SNAPBLK_STAT_RESIDENT]);
	ASSERT_EQ(0, sb_nl_status(&self->nl, "h1", &d));
	EXPECT_EQ(0u, d.stats[SNAPBLK_STAT_RESIDENT]);
	EXPECT_EQ(0u, d.stats[SNAPBLK_STAT_INFLIGHT]);
	/* Removing a device that holds residency leaves the cache sound. */
	ASSERT_EQ(4096, dread(n1, b, 4096, 0));
	ASSERT_EQ(0, sb_nl_remove(&self->nl, "h1"));
	ASSERT_EQ(4096, dread(n0, b, 4096, 4 * 64 * KIB));
	EXPECT_EQ(0, memcmp(b, list[4]->pt, 4096));
	ASSERT_EQ(0, sb_nl_status(&self->nl, "h0", &d));
	EXPECT_EQ(1u, d.stats[SNAPBLK_STAT_RESIDENT]);
	free(b);
}

/* The ivshmem-plain device run-vm gives the guest: its sysfs dir, or "". */
static void find_ivshmem(char *dir, size_t len)
{
	char path[512], v[32], d[32];
	struct dirent *de;
	DIR *dd = opendir("/sys/bus/pci/devices");

	dir[0] = '\0';
	while (dd && (de = readdir(dd))) {
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor",
			 de->d_name);
		if (sb_read_file(path, v, sizeof(v)))
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device",
			 de->d_name);
		if (sb_read_file(path, d, sizeof(d)))
			continue;
		if (!strcmp(v, "0x1af4") && !strcmp(d, "0x1110"))
			snprintf(dir, len, "/sys/bus/pci/devices/%s",
				 de->d_name);
	}
	if (dd)
		closedir(dd);
}

/*
 * The generation page's IRQ thread reseeds and acknowledges before it
 * takes any sleeping lock: while another process reports clones through
 * the netlink trigger and reads clone state as fast as it can on the
 * other CPU (holding the clone mutex much of the time), a clone reported
 * through the page is still acknowledged before the interrupted task runs
 * on (selftests/helpers/genpage_vmm counts the loads it spins).  Before
 * the fix the thread waited for that mutex first.
 */
TEST_F_TIMEOUT(hard, genpage_reseed_waits_for_no_lock, 300)
{
	const int irq = 7, rounds = 30;
	char dev[512], path[600], line[256], params[128], cmd[1400];
	char cpus[32];
	unsigned long long bar;
	int i, cpu, worst = 0, acked = 0;
	pid_t storm;
	FILE *f;

	find_ivshmem(dev, sizeof(dev));
	if (!dev[0])
		SKIP(return, "no ivshmem-plain device: run under selftests/run-vm");
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "needs two CPUs");
	snprintf(path, sizeof(path), "%s/enable", dev);
	ASSERT_EQ(0, write_str(path, "1"));
	snprintf(path, sizeof(path), "%s/resource", dev);
	f = fopen(path, "r");
	ASSERT_NE(NULL, f);
	for (i = 0; i < 3 && fgets(line, sizeof(line), f); i++)
		;
	fclose(f);
	ASSERT_EQ(1, sscanf(line, "%llx", &bar));
	snprintf(cmd, sizeof(cmd), "%s/selftests-helpers/genpage_vmm init %s/resource2",
		 getenv("SNAPBLK_BUILD") ?: "build", dev);
	ASSERT_EQ(0, system(cmd));

	sb_nl_close(&self->nl);
	ASSERT_EQ(0, sb_unload("snapblk"));
	snprintf(params, sizeof(params), "genpage=4K@0x%llx:%d", bar, irq);
	ASSERT_EQ(0, sb_load(sb_ko_path(), params));
	ASSERT_EQ(0, sb_nl_open(&self->nl));
	snprintf(path, sizeof(path), "/proc/irq/%d/effective_affinity_list",
		 irq);
	ASSERT_EQ(0, sb_read_file(path, cpus, sizeof(cpus)));
	cpu = atoi(cpus);

	storm = fork();
	ASSERT_GE(storm, 0);
	if (storm == 0) {
		cpu_set_t set;
		struct sb_clone_status st;
		struct sb_nl nl;
		uint64_t gen;

		CPU_ZERO(&set);
		CPU_SET(!cpu, &set);
		sched_setaffinity(0, sizeof(set), &set);
		if (sb_nl_open(&nl))
			_exit(1);
		for (;;) {
			sb_nl_clone_trigger(&nl, NULL, &gen);
			sb_nl_clone_status(&nl, &st);
		}
	}
	usleep(200 * 1000);
	for (i = 0; i < rounds; i++) {
		unsigned int gen, ack, spins;

		snprintf(cmd, sizeof(cmd),
			 "taskset -c %d %s/selftests-helpers/genpage_vmm clone %s/resource2 %d %032x",
			 cpu, getenv("SNAPBLK_BUILD") ?: "build", dev, irq,
			 i + 1);
		f = popen(cmd, "r");
		ASSERT_NE(NULL, f);
		if (fgets(line, sizeof(line), f) &&
		    sscanf(line, "generation %u ack %u spins %u", &gen, &ack,
			   &spins) == 3) {
			acked += gen == ack;
			if ((int)spins > worst)
				worst = spins;
		}
		pclose(f);
	}
	kill(storm, SIGKILL);
	waitpid(storm, NULL, 0);
	TH_LOG("%d page clones during a trigger storm: %d acknowledged, at most %d spins before the acknowledgment",
	       rounds, acked, worst);
	EXPECT_EQ(rounds, acked);
	EXPECT_LE(worst, 1);
}

/*
 * Load and unload the module 100 times while other processes send
 * CLONE_TRIGGER, CLONE_STATUS, STATUS and GET_INFO as fast as they can:
 * no command may run against half-initialised or freed state (the family
 * is registered last and unregistered first).
 */
TEST_F_TIMEOUT(hard, commands_during_load_and_unload, 600)
{
	pid_t kids[2];
	int i, k, loaded = 0, unloaded = 0;
	volatile unsigned long *sent;

	/* The fixture loaded it: start unloaded. */
	sb_nl_close(&self->nl);
	ASSERT_EQ(0, sb_unload("snapblk"));
	sent = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sent);
	for (k = 0; k < 2; k++) {
		kids[k] = fork();
		ASSERT_GE(kids[k], 0);
		if (kids[k])
			continue;
		for (;;) {
			struct sb_clone_status st;
			struct sb_info info;
			struct sb_nl nl;
			struct sb_dev d;
			uint64_t gen;

			if (sb_nl_open(&nl))
				continue;
			for (i = 0; i < 20; i++) {
				if (k == 0)
					sb_nl_clone_trigger(&nl, NULL, &gen);
				sb_nl_clone_status(&nl, &st);
				sb_nl_status(&nl, "none", &d);
				sb_nl_get_info(&nl, &info);
				sent[k]++;
			}
			sb_nl_close(&nl);
		}
	}
	for (i = 0; i < 100; i++) {
		int ret, tries;

		loaded += sb_load(sb_ko_path(), NULL) == 0;
		usleep(1000 * (i % 7));
		for (tries = 0; tries < 1000; tries++) {
			ret = sb_unload("snapblk");
			if (ret != -EAGAIN && ret != -EBUSY)
				break;
			usleep(1000);
		}
		unloaded += ret == 0;
	}
	for (k = 0; k < 2; k++) {
		kill(kids[k], SIGKILL);
		waitpid(kids[k], NULL, 0);
	}
	TH_LOG("%d loads, %d unloads; %lu + %lu rounds of commands sent",
	       loaded, unloaded, sent[0], sent[1]);
	EXPECT_EQ(100, loaded);
	EXPECT_EQ(100, unloaded);
	EXPECT_GT(sent[0] + sent[1], 100);
	/* The fixture's teardown expects the module loaded. */
	ASSERT_EQ(0, sb_load(sb_ko_path(), NULL));
	ASSERT_EQ(0, sb_nl_open(&self->nl));
}

TEST_HARNESS_MAIN
