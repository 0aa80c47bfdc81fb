// SPDX-License-Identifier: GPL-2.0
/*
 * The fetch protocol of API version 3, with the test as the fetch daemon
 * (no snapblkd runs) for a device of real chunks (fetchlib.h):
 *
 * - request records carry their length (72 bytes), SNAPBLK_FETCH_F_DEADLINE
 *   and the CLOCK_MONOTONIC deadline the kernel enforces, the device's
 *   fetch_timeout_ms after the miss; several records lie end to end;
 * - a bad answer (a flipped byte, a truncated chunk) does not fail the
 *   read: the fetch comes back once, under a new id, with
 *   SNAPBLK_FETCH_F_REFETCH and the same deadline, and a chunk-error event
 *   names the chunk's address with refetch 1; the right second answer
 *   completes the read with the right bytes and counts one refetch;
 * - a second bad answer fails the read with EIO (an event with refetch
 *   0); an error answer is not fetched again;
 * - a re-fetched request still fails at the original deadline;
 * - a chunk two devices wait for is re-fetched once, each device told.
 */
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <netlink/genl/genl.h>

#include "kselftest_harness.h"
#include "lib.h"
#include "genl.h"
#define SB_FETCHLIB_CLEAN_UP
#include "fetchlib.h"

#define CHUNK		(64U << 10)
#define NCHUNKS		4
#define REQ		((ssize_t)sizeof(struct snapblk_fetch_req))
#define RESP		((ssize_t)sizeof(struct snapblk_fetch_resp))
#define NSEC		1000000000ULL
#define MSEC		1000000ULL
/* Clock reading and scheduling noise around the kernel's deadline. */
#define SLACK_NS	(50 * MSEC)

/* ------------------------------------------------ chunk-error events */

/* A SNAPBLK_EVENT_CHUNK_ERROR as a listener sees it. */
struct chunk_ev {
	char name[SNAPBLK_NAME_LEN];
	uint64_t chunk;
	uint32_t error;
	bool has_addr, has_refetch;
	uint8_t addr[SNAPBLK_ADDR_LEN];
	uint32_t refetch;
};

/* A socket in the "events" group; events it read but not handed out. */
struct listener {
	struct sb_nl nl;
	struct chunk_ev q[16];
	int nq;
};

static int listen_start(struct listener *l)
{
	int grp, ret;

	memset(l, 0, sizeof(*l));
	ret = sb_nl_open(&l->nl);
	if (ret)
		return ret;
	grp = sb_nl_mcgrp(&l->nl, SNAPBLK_GENL_MCGRP_EVENTS);
	if (grp < 0)
		return grp;
	if (nl_socket_add_membership(l->nl.sk, grp))
		return -EIO;
	nl_socket_disable_seq_check(l->nl.sk);
	return 0;
}

/* Queue the chunk-error events in one datagram of @buf, @n bytes. */
static void parse_events(struct listener *l, void *buf, ssize_t n)
{
	struct nlmsghdr *h;

	for (h = buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
		struct genlmsghdr *g = nlmsg_data(h);
		struct nlattr *tb[SNAPBLK_ATTR_MAX + 1];
		struct chunk_ev *e;

		if (h->nlmsg_type < NLMSG_MIN_TYPE ||
		    g->cmd != SNAPBLK_EVENT_CHUNK_ERROR ||
		    genlmsg_parse(h, 0, tb, SNAPBLK_ATTR_MAX, NULL) ||
		    l->nq == (int)ARRAY_SIZE(l->q))
			continue;
		e = &l->q[l->nq++];
		memset(e, 0, sizeof(*e));
		if (tb[SNAPBLK_ATTR_NAME])
			nla_strlcpy(e->name, tb[SNAPBLK_ATTR_NAME],
				    sizeof(e->name));
		if (tb[SNAPBLK_ATTR_CHUNK])
			e->chunk = nla_get_u64(tb[SNAPBLK_ATTR_CHUNK]);
		if (tb[SNAPBLK_ATTR_ERROR])
			e->error = nla_get_u32(tb[SNAPBLK_ATTR_ERROR]);
		if (tb[SNAPBLK_ATTR_ADDR] &&
		    nla_len(tb[SNAPBLK_ATTR_ADDR]) == SNAPBLK_ADDR_LEN) {
			e->has_addr = true;
			memcpy(e->addr, nla_data(tb[SNAPBLK_ATTR_ADDR]),
			       SNAPBLK_ADDR_LEN);
		}
		if (tb[SNAPBLK_ATTR_REFETCH] &&
		    nla_len(tb[SNAPBLK_ATTR_REFETCH]) == 4) {
			e->has_refetch = true;
			e->refetch = nla_get_u32(tb[SNAPBLK_ATTR_REFETCH]);
		}
	}
}

/* The next chunk-error event, waiting up to @ms: 0, or -ETIMEDOUT. */
static int next_event(struct listener *l, struct chunk_ev *ev, int ms)
{
	static uint8_t buf[65536];
	int fd = nl_socket_get_fd(l->nl.sk);
	uint64_t end = sb_now_ns() + ms * MSEC;

	while (!l->nq) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = end - sb_now_ns();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, left / MSEC + 1) <= 0)
			return -ETIMEDOUT;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0)
			parse_events(l, buf, n);
	}
	*ev = l->q[0];
	memmove(l->q, l->q + 1, --l->nq * sizeof(l->q[0]));
	return 0;
}

/*
 * The next chunk-error event: device @name, chunk @chunk, address @addr,
 * errno @error and refetch @refetch.
 */
static void expect_event(struct __test_metadata *_metadata,
			 struct listener *l, const char *name, uint64_t chunk,
			 const uint8_t *addr, uint32_t error, uint32_t refetch)
{
	struct chunk_ev e;

	ASSERT_EQ(0, next_event(l, &e, 5000));
	EXPECT_STREQ(name, e.name);
	EXPECT_EQ(chunk, e.chunk);
	EXPECT_EQ(error, e.error);
	ASSERT_TRUE(e.has_addr);
	EXPECT_EQ(0, memcmp(e.addr, addr, SNAPBLK_ADDR_LEN));
	ASSERT_TRUE(e.has_refetch);
	EXPECT_EQ(refetch, e.refetch);
}

/* Start reading chunk @chunk of /dev/snapblk@index in a thread. */
static int start_read(struct sb_chunk_read *o, uint32_t index,
		      uint64_t chunk)
{
	char path[64];

	snprintf(path, sizeof(path), "/dev/snapblk%u", index);
	return sb_chunk_read_start(o, path, chunk, CHUNK);
}

static ssize_t answer_right(int fd, const struct snapblk_fetch_req *r,
			    const struct sb_image *img)
{
	int c = sb_image_find(img, r->addr);

	if (c < 0)
		return -2;
	return sb_fetch_answer(fd, r->id, 0, sb_image_ct(img, c), CHUNK);
}

/* The right ciphertext with one byte flipped. */
static ssize_t answer_flipped(int fd, const struct snapblk_fetch_req *r,
			      const struct sb_image *img)
{
	static uint8_t bad[CHUNK];
	int c = sb_image_find(img, r->addr);

	if (c < 0)
		return -2;
	memcpy(bad, sb_image_ct(img, c), CHUNK);
	bad[1000] ^= 0x01;
	return sb_fetch_answer(fd, r->id, 0, bad, CHUNK);
}

FIXTURE(refetch) {
	struct sb_nl nl;
	struct listener ev;
	struct sb_image img;
	struct sb_dev dev;
	int fd;
};

/*
 * Leave neither our devices nor the module behind, even after a test that
 * stopped half-way (its reads may still wait: reopening the fetch device
 * gives back what it held, and error answers end them now).
 */
static void clean_up(void)
{
	static const char *const names[] = { "rf0", "rf1" };

	sb_clean_up(names, 2);
}

FIXTURE_SETUP(refetch)
{
	struct sb_rng r;

	clean_up();
	ASSERT_FALSE(sb_module_loaded("snapblk")) {
		TH_LOG("the module is in use: is a snapblkd running? This test must be the only fetch daemon");
	}
	ASSERT_EQ(0, sb_load(sb_ko_path(), NULL));
	ASSERT_EQ(0, sb_nl_open(&self->nl));
	ASSERT_EQ(0, listen_start(&self->ev));
	sb_rng_seed(&r, sb_seed_from_env("SNAPBLK_FUZZ_SEED"));
	ASSERT_EQ(0, sb_image_make(&self->img, CHUNK, NCHUNKS, 0, 0, &r));
	self->fd = open("/dev/snapblk-fetch", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	ASSERT_GE(self->fd, 0);
}

/*
 * Not run after a failed ASSERT (this harness loses track of its child
 * there): the next setup cleans up then.
 */
FIXTURE_TEARDOWN(refetch)
{
	close(self->fd);
	sb_nl_close(&self->ev.nl);
	sb_nl_close(&self->nl);
	sb_image_free(&self->img);
	clean_up();
}

/*
 * Map the image as rf0 (@which 0) or rf1, with @table (NULL: the
 * image's own) and fetch_timeout_ms @timeout_ms.
 */
static int map(FIXTURE_DATA(refetch) *self, int which,
	       const struct snapblk_chunk_entry *table, uint32_t timeout_ms,
	       struct sb_dev *dev)
{
	uint8_t id[SNAPBLK_IMAGE_ID_LEN] = { 0x33 };
	struct sb_create c = {
		.name = which ? "rf1" : "rf0",
		.image_size = self->img.size,
		.chunk_size = CHUNK,
		.image_id = id,
		.fetch_timeout_ms = timeout_ms,
	};
	size_t len = NCHUNKS * sizeof(*table);
	int ret;

	c.table_fd = memfd_create("rf-table", MFD_CLOEXEC);
	if (c.table_fd < 0)
		return -errno;
	if (write(c.table_fd, table ? table : self->img.table, len) !=
	    (ssize_t)len) {
		close(c.table_fd);
		return -EIO;
	}
	ret = sb_nl_create(&self->nl, &c, dev);
	close(c.table_fd);
	return ret;
}

static uint64_t stat_of(FIXTURE_DATA(refetch) *self, const char *name,
			int stat)
{
	struct sb_dev d;

	if (sb_nl_status(&self->nl, name, &d))
		return UINT64_MAX;
	return d.stats[stat];
}

/*
 * Nothing more is asked of the daemon, and rf0 counts @refetches
 * refetches and @errors fetch errors.
 */
static void expect_settled(struct __test_metadata *_metadata,
			   FIXTURE_DATA(refetch) *self, uint64_t refetches,
			   uint64_t errors)
{
	struct snapblk_fetch_req r;

	EXPECT_EQ(-ETIMEDOUT, sb_next_request(self->fd, &r, 300));
	EXPECT_EQ(refetches, stat_of(self, "rf0", SNAPBLK_STAT_REFETCHES));
	EXPECT_EQ(errors, stat_of(self, "rf0", SNAPBLK_STAT_FETCH_ERRORS));
}

/*
 * Map rf0 with fetch_timeout_ms @timeout_ms, start reading its chunk
 * @chunk and read the request that makes: 0 or -errno.
 */
static int begin(FIXTURE_DATA(refetch) *self, uint32_t timeout_ms,
		 uint64_t chunk, struct sb_chunk_read *o,
		 struct snapblk_fetch_req *r)
{
	int ret = map(self, 0, NULL, timeout_ms, &self->dev);

	if (!ret)
		ret = start_read(o, self->dev.index, chunk);
	if (!ret)
		ret = sb_next_request(self->fd, r, 2000);
	return ret;
}

/*
 * A request record is 72 bytes, says so in its len, has the deadline
 * flag and the deadline the device's fetch_timeout_ms gives; several lie
 * end to end in one read(); a buffer of the old 64-byte record is too
 * small (EINVAL: an old daemon fails loudly, it does not misparse).
 */
TEST_F_TIMEOUT(refetch, request_records_carry_the_deadline, 60)
{
	const uint32_t timeout_ms = 7000;
	uint8_t raw[3 * sizeof(struct snapblk_fetch_req)];
	struct snapblk_fetch_req r;
	struct sb_chunk_read o[3];
	uint64_t t0, t1, lo, hi;
	size_t off;
	ssize_t n;
	int i, got;

	ASSERT_EQ(72, REQ);
	ASSERT_EQ(0, map(self, 0, NULL, timeout_ms, &self->dev));

	t0 = sb_now_ns();
	ASSERT_EQ(0, start_read(&o[0], self->dev.index, 1));
	ASSERT_EQ(0, sb_next_request(self->fd, &r, 5000));
	t1 = sb_now_ns();
	EXPECT_EQ(REQ, r.len);
	EXPECT_EQ(CHUNK, r.chunk_size);
	EXPECT_EQ(1, r.chunk);
	EXPECT_EQ(self->dev.index, r.dev_index);
	EXPECT_EQ(0, memcmp(r.addr, self->img.table[1].addr,
			    SNAPBLK_ADDR_LEN));
	EXPECT_EQ(SNAPBLK_FETCH_F_DEADLINE, r.flags);
	lo = t0 + timeout_ms * MSEC - SLACK_NS;
	hi = t1 + timeout_ms * MSEC + SLACK_NS;
	TH_LOG("deadline_ns %llu: %.3f s after the read began, %.3f s after the request was read",
	       (unsigned long long)r.deadline_ns,
	       ((double)r.deadline_ns - t0) / NSEC,
	       ((double)r.deadline_ns - t1) / NSEC);
	EXPECT_GE(r.deadline_ns, lo);
	EXPECT_LE(r.deadline_ns, hi);
	EXPECT_EQ(RESP + CHUNK, answer_right(self->fd, &r, &self->img));
	EXPECT_EQ(0, sb_chunk_read_end(&o[0], &self->img, 1));

	/* Three at once, stepped through by len. */
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, start_read(&o[i], self->dev.index,
					i == 0 ? 0 : i + 1));
	for (i = 0; i < 100 && sb_dev_attr(self->dev.index, "inflight") < 3; i++)
		usleep(20000);
	ASSERT_EQ(3, sb_dev_attr(self->dev.index, "inflight"));
	/* An old daemon's 64-byte buffer holds no record. */
	EXPECT_EQ(-1, read(self->fd, raw, 64));
	EXPECT_EQ(EINVAL, errno);
	n = read(self->fd, raw, sizeof(raw));
	ASSERT_EQ((ssize_t)sizeof(raw), n);
	for (off = 0, got = 0; off + REQ <= (size_t)n; off += r.len, got++) {
		memcpy(&r, raw + off, REQ);
		ASSERT_EQ(REQ, r.len);
		EXPECT_TRUE(r.flags & SNAPBLK_FETCH_F_DEADLINE);
		EXPECT_FALSE(r.flags & SNAPBLK_FETCH_F_REFETCH);
		EXPECT_GT(r.deadline_ns, sb_now_ns());
		EXPECT_LE(r.deadline_ns, sb_now_ns() + timeout_ms * MSEC);
		EXPECT_EQ(RESP + CHUNK, answer_right(self->fd, &r, &self->img));
	}
	EXPECT_EQ(3, got);
	for (i = 0; i < 3; i++)
		EXPECT_EQ(0, sb_chunk_read_end(&o[i], &self->img, o[i].chunk));
	EXPECT_EQ(0, stat_of(self, "rf0", SNAPBLK_STAT_REFETCHES));
	EXPECT_EQ(0, stat_of(self, "rf0", SNAPBLK_STAT_FETCH_ERRORS));
}

/*
 * A flipped byte: the write is taken, the read waits on, the chunk-error
 * event names the address with refetch 1, and the fetch comes back with
 * F_REFETCH, a new id and the same deadline (also to the next daemon
 * after a close); the right answer then completes the read.
 */
TEST_F_TIMEOUT(refetch, bad_answer_is_fetched_once_more, 60)
{
	struct snapblk_fetch_req r1, r2, r3;
	struct chunk_ev e;
	struct sb_chunk_read o;

	ASSERT_EQ(0, begin(self, 20000, 2, &o, &r1));
	EXPECT_FALSE(r1.flags & SNAPBLK_FETCH_F_REFETCH);
	EXPECT_EQ(RESP + CHUNK, answer_flipped(self->fd, &r1, &self->img));

	expect_event(_metadata, &self->ev, "rf0", 2, self->img.table[2].addr,
		     EBADMSG, 1);

	ASSERT_EQ(0, sb_next_request(self->fd, &r2, 5000)) {
		TH_LOG("no second request after a bad answer (the read: %s)",
		       o.done ? "ended" : "waiting");
	}
	EXPECT_FALSE(o.done);
	EXPECT_EQ(0, memcmp(r2.addr, r1.addr, SNAPBLK_ADDR_LEN));
	EXPECT_EQ(SNAPBLK_FETCH_F_DEADLINE | SNAPBLK_FETCH_F_REFETCH,
		  r2.flags);
	EXPECT_EQ(r1.deadline_ns, r2.deadline_ns);
	EXPECT_EQ(r1.chunk, r2.chunk);
	EXPECT_NE(r1.id, r2.id);
	/* The first request is answered: a second answer to it is refused. */
	EXPECT_EQ(-1, answer_right(self->fd, &r1, &self->img));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(1, stat_of(self, "rf0", SNAPBLK_STAT_REFETCHES));
	EXPECT_EQ(1, sb_dev_attr(self->dev.index, "refetches"));

	/* A daemon that closes leaves it, still a re-fetch, to the next. */
	close(self->fd);
	self->fd = open("/dev/snapblk-fetch", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	ASSERT_GE(self->fd, 0);
	ASSERT_EQ(0, sb_next_request(self->fd, &r3, 5000));
	EXPECT_EQ(r2.id, r3.id);
	EXPECT_TRUE(r3.flags & SNAPBLK_FETCH_F_REFETCH);
	EXPECT_EQ(r1.deadline_ns, r3.deadline_ns);

	EXPECT_EQ(RESP + CHUNK, answer_right(self->fd, &r3, &self->img));
	EXPECT_EQ(0, sb_chunk_read_end(&o, &self->img, 2));
	EXPECT_EQ(1, stat_of(self, "rf0", SNAPBLK_STAT_REFETCHES));
	EXPECT_EQ(0, stat_of(self, "rf0", SNAPBLK_STAT_FETCH_ERRORS));
	EXPECT_EQ(CHUNK, stat_of(self, "rf0", SNAPBLK_STAT_BYTES_FETCHED));
	/* One event: the bad answer; none for the good one. */
	EXPECT_EQ(-ETIMEDOUT, next_event(&self->ev, &e, 300));
}

/*
 * A truncated chunk, then a flipped byte: the second bad answer fails the
 * read with EIO and raises an event with refetch 0.  The next read of the
 * chunk is a new miss, fetched (once more at most) afresh.
 */
TEST_F_TIMEOUT(refetch, second_bad_answer_fails_the_read, 60)
{
	struct snapblk_fetch_req r1, r2, r3;
	struct sb_chunk_read o;

	ASSERT_EQ(0, begin(self, 20000, 3, &o, &r1));
	/* Truncated: a check on the content too, not a malformed record. */
	EXPECT_EQ(RESP + CHUNK / 2,
		  sb_fetch_answer(self->fd, r1.id, 0,
				  sb_image_ct(&self->img, 3), CHUNK / 2));
	expect_event(_metadata, &self->ev, "rf0", 3, self->img.table[3].addr,
		     EBADMSG, 1);

	ASSERT_EQ(0, sb_next_request(self->fd, &r2, 5000));
	EXPECT_TRUE(r2.flags & SNAPBLK_FETCH_F_REFETCH);
	EXPECT_EQ(r1.deadline_ns, r2.deadline_ns);
	EXPECT_EQ(RESP + CHUNK, answer_flipped(self->fd, &r2, &self->img));
	EXPECT_EQ(EIO, sb_chunk_read_end(&o, &self->img, 3));

	expect_event(_metadata, &self->ev, "rf0", 3, self->img.table[3].addr,
		     EBADMSG, 0);
	/* No third request for that fetch. */
	expect_settled(_metadata, self, 1, 1);

	/* Read again: a new fetch, not a re-fetch. */
	ASSERT_EQ(0, start_read(&o, self->dev.index, 3));
	ASSERT_EQ(0, sb_next_request(self->fd, &r3, 5000));
	EXPECT_EQ(SNAPBLK_FETCH_F_DEADLINE, r3.flags);
	EXPECT_GT(r3.deadline_ns, r1.deadline_ns);
	EXPECT_EQ(RESP + CHUNK, answer_right(self->fd, &r3, &self->img));
	EXPECT_EQ(0, sb_chunk_read_end(&o, &self->img, 3));
}

/*
 * An error answer (the daemon has no such chunk) is not a bad answer:
 * the read fails with EIO at once, nothing is fetched again.
 */
TEST_F_TIMEOUT(refetch, error_answer_is_not_fetched_again, 60)
{
	struct snapblk_fetch_req r1;
	struct sb_chunk_read o;

	ASSERT_EQ(0, begin(self, 20000, 0, &o, &r1));
	EXPECT_EQ(RESP, sb_fetch_answer(self->fd, r1.id, ENOENT, NULL, 0));
	EXPECT_EQ(EIO, sb_chunk_read_end(&o, &self->img, 0));
	expect_event(_metadata, &self->ev, "rf0", 0, self->img.table[0].addr,
		     EIO, 0);
	expect_settled(_metadata, self, 0, 1);
}

/*
 * The re-fetch keeps the first request's deadline: with fetch_timeout_ms
 * 3000 and the bad answer 1.5 s in, an unanswered re-fetch fails the read
 * at the original deadline (a new one would be 1.5 s later), with an
 * ETIMEDOUT event, and its late answer is refused.
 */
TEST_F_TIMEOUT(refetch, refetch_fails_at_the_original_deadline, 60)
{
	const uint32_t timeout_ms = 3000;
	struct snapblk_fetch_req r1, r2;
	struct sb_chunk_read o;
	double late;

	ASSERT_EQ(0, begin(self, timeout_ms, 1, &o, &r1));
	while (sb_now_ns() + timeout_ms * MSEC / 2 < r1.deadline_ns)
		usleep(10000);
	EXPECT_EQ(RESP + CHUNK, answer_flipped(self->fd, &r1, &self->img));
	ASSERT_EQ(0, sb_next_request(self->fd, &r2, 1000));
	EXPECT_TRUE(r2.flags & SNAPBLK_FETCH_F_REFETCH);
	EXPECT_EQ(r1.deadline_ns, r2.deadline_ns);

	EXPECT_EQ(EIO, sb_chunk_read_end(&o, &self->img, 1));
	late = ((double)o.end_ns - r1.deadline_ns) / NSEC;
	TH_LOG("the unanswered re-fetch failed its read %.3f s after the deadline",
	       late);
	EXPECT_GE(o.end_ns + SLACK_NS, r1.deadline_ns);
	EXPECT_LT(late, 1.0);
	EXPECT_EQ(-1, answer_right(self->fd, &r2, &self->img));
	EXPECT_EQ(ENOENT, errno);

	expect_event(_metadata, &self->ev, "rf0", 1, self->img.table[1].addr,
		     EBADMSG, 1);
	expect_event(_metadata, &self->ev, "rf0", 1, self->img.table[1].addr,
		     ETIMEDOUT, 0);
	EXPECT_EQ(1, stat_of(self, "rf0", SNAPBLK_STAT_REFETCHES));
	EXPECT_EQ(1, stat_of(self, "rf0", SNAPBLK_STAT_FETCH_ERRORS));
}

/*
 * Two devices wait for one chunk (the same address and key, at chunk 0 of
 * rf0 and chunk 3 of rf1): one bad answer is one re-fetch, and each
 * device hears of it with its own chunk index and counts it; the right
 * answer completes both reads.
 */
TEST_F_TIMEOUT(refetch, shared_chunk_is_refetched_once_for_both, 60)
{
	struct snapblk_chunk_entry table[NCHUNKS];
	struct snapblk_fetch_req r1, r2;
	struct sb_dev d1;
	struct chunk_ev e[2];
	struct sb_chunk_read a, b;
	int i, seen0 = 0, seen1 = 0;

	memcpy(table, self->img.table, sizeof(table));
	table[3] = self->img.table[0];
	ASSERT_EQ(0, map(self, 0, NULL, 20000, &self->dev));
	ASSERT_EQ(0, map(self, 1, table, 20000, &d1));
	ASSERT_EQ(0, start_read(&a, self->dev.index, 0));
	ASSERT_EQ(0, sb_next_request(self->fd, &r1, 5000));
	ASSERT_EQ(0, start_read(&b, d1.index, 3));
	for (i = 0; i < 100 && sb_dev_attr(d1.index, "inflight") < 1; i++)
		usleep(20000);
	ASSERT_EQ(1, sb_dev_attr(d1.index, "inflight"));
	EXPECT_EQ(RESP + CHUNK, answer_flipped(self->fd, &r1, &self->img));

	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, next_event(&self->ev, &e[i], 5000));
		EXPECT_EQ(1, e[i].refetch);
		EXPECT_TRUE(e[i].has_addr &&
			    !memcmp(e[i].addr, self->img.table[0].addr,
				    SNAPBLK_ADDR_LEN));
		if (!strcmp(e[i].name, "rf0") && e[i].chunk == 0)
			seen0++;
		if (!strcmp(e[i].name, "rf1") && e[i].chunk == 3)
			seen1++;
	}
	EXPECT_EQ(1, seen0);
	EXPECT_EQ(1, seen1);
	ASSERT_EQ(0, sb_next_request(self->fd, &r2, 5000));
	EXPECT_TRUE(r2.flags & SNAPBLK_FETCH_F_REFETCH);
	EXPECT_EQ(-ETIMEDOUT, sb_next_request(self->fd, &r1, 200));
	EXPECT_EQ(RESP + CHUNK, answer_right(self->fd, &r2, &self->img));
	EXPECT_EQ(0, sb_chunk_read_end(&a, &self->img, 0));
	EXPECT_EQ(0, sb_chunk_read_end(&b, &self->img, 0));
	EXPECT_EQ(1, stat_of(self, "rf0", SNAPBLK_STAT_REFETCHES));
	EXPECT_EQ(1, stat_of(self, "rf1", SNAPBLK_STAT_REFETCHES));
	EXPECT_EQ(0, stat_of(self, "rf1", SNAPBLK_STAT_FETCH_ERRORS));
}

TEST_HARNESS_MAIN
