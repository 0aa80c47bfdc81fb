// SPDX-License-Identifier: GPL-2.0
/*
 * Background fetches (API version 4), with the test as the fetch daemon
 * for a device of real chunks (fetchlib.h):
 *
 * - readahead: two reads of consecutive chunks queue the next
 *   readahead_chunks chunks at background priority
 *   (SNAPBLK_FETCH_F_BACKGROUND); a jump does not; max_inflight bounds
 *   them, demand fetches included, and the next goes out when one ends;
 * - demand before background: a read missed while background requests
 *   wait is handed out first; a read of a queued background chunk makes
 *   it a demand request (no BACKGROUND flag, prefetch_joined 1);
 * - a background chunk read later counts prefetch_used, one dropped
 *   unread prefetch_wasted; drop_cache empties the cache;
 * - a prefetch list is fetched in its order, at background priority,
 *   skipping chunks already resident, and its state goes running then
 *   done; a list for another image or naming a chunk past the image is
 *   refused; hydration asks for every chunk; a prefetch can be stopped;
 * - answers: the 24-byte header's tier and retries are counted, the
 *   16-byte header of API 3 is still taken, the fetch latency lands in
 *   fetch_latency_us and fetches_done.
 */
#include <poll.h>
#include <pthread.h>

#include "kselftest_harness.h"
#include "lib.h"
#include "genl.h"
#define SB_FETCHLIB_CLEAN_UP
#include "fetchlib.h"

#define CHUNK		(64U << 10)
#define NCHUNKS		32
#define REQ		((ssize_t)sizeof(struct snapblk_fetch_req))
#define NAME		"bg0"

static void clean_up(void)
{
	static const char *const names[] = { NAME };

	sb_clean_up(names, 1);
}

FIXTURE(bg) {
	struct sb_nl nl;
	struct sb_image img;
	struct sb_dev dev;
	char path[64];
	int fd;
};

/* Write @val to the file @path: 0 or -errno. */
static int put_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	n = n < 0 ? -errno : 0;
	close(fd);
	return n;
}

static int write_attr(uint32_t index, const char *attr, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/block/snapblk%u/snapblk/%s", index,
		 attr);
	return put_file(path, val);
}

FIXTURE_SETUP(bg)
{
	uint8_t id[SNAPBLK_IMAGE_ID_LEN] = { 0x44 };
	struct sb_create c = {
		.name = NAME,
		.chunk_size = CHUNK,
		.image_id = id,
		.fetch_timeout_ms = 30000,
	};
	struct sb_rng r;

	clean_up();
	ASSERT_FALSE(sb_module_loaded("snapblk")) {
		TH_LOG("the module is in use: is a snapblkd running? This test must be the only fetch daemon");
	}
	ASSERT_EQ(0, sb_load(sb_ko_path(), NULL));
	ASSERT_EQ(0, sb_nl_open(&self->nl));
	sb_rng_seed(&r, sb_seed_from_env("SNAPBLK_FUZZ_SEED"));
	ASSERT_EQ(0, sb_image_make(&self->img, CHUNK, NCHUNKS, 0, 0, &r));
	c.image_size = self->img.size;
	c.table_fd = sb_image_table_fd(&self->img);
	ASSERT_GE(c.table_fd, 0);
	ASSERT_EQ(0, sb_nl_create(&self->nl, &c, &self->dev));
	close(c.table_fd);
	snprintf(self->path, sizeof(self->path), "/dev/snapblk%u",
		 self->dev.index);
	self->fd = open("/dev/snapblk-fetch", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	ASSERT_GE(self->fd, 0);
}

FIXTURE_TEARDOWN(bg)
{
	close(self->fd);
	sb_nl_close(&self->nl);
	sb_image_free(&self->img);
	clean_up();
}

/* Answer @r with its chunk's ciphertext (header of @hlen bytes). */
static ssize_t answer(FIXTURE_DATA(bg) *self,
		      const struct snapblk_fetch_req *r, uint32_t hlen,
		      uint32_t tier, uint32_t retries)
{
	struct snapblk_fetch_resp resp = {
		.len = hlen,
		.id = r->id,
		.tier = tier,
		.retries = retries,
	};
	struct iovec iov[2] = {
		{ .iov_base = &resp, .iov_len = hlen },
		{ .iov_base = (void *)sb_image_ct(&self->img, r->chunk),
		  .iov_len = CHUNK },
	};

	return writev(self->fd, iov, 2);
}

/* Read chunk @chunk, answering its request: 0 when the bytes are right. */
static int read_answered(struct __test_metadata *_metadata,
			 FIXTURE_DATA(bg) *self, uint64_t chunk)
{
	struct snapblk_fetch_req r;
	struct sb_chunk_read o;

	if (sb_chunk_read_start(&o, self->path, chunk, CHUNK))
		return -1;
	EXPECT_EQ(0, sb_next_request(self->fd, &r, 5000));
	EXPECT_EQ(chunk, r.chunk);
	EXPECT_EQ(0, r.flags & SNAPBLK_FETCH_F_BACKGROUND);
	EXPECT_EQ(sizeof(struct snapblk_fetch_resp) + CHUNK,
		  answer(self, &r, sizeof(struct snapblk_fetch_resp), 0, 0));
	return sb_chunk_read_end(&o, &self->img, chunk);
}

/* Wait up to @ms for attribute @attr to be @want. */
static bool wait_attr(FIXTURE_DATA(bg) *self, const char *attr, long want,
		      int ms)
{
	double end = sb_now() + ms / 1000.0;

	while (sb_now() < end) {
		if (sb_dev_attr(self->dev.index, attr) == want)
			return true;
		usleep(10000);
	}
	return false;
}

/* Every request pending now, in the order the kernel hands them out. */
static int drain(FIXTURE_DATA(bg) *self, struct snapblk_fetch_req *out,
		 int max)
{
	ssize_t n = read(self->fd, out, max * REQ);

	return n < 0 ? -errno : n / REQ;
}

TEST_F(bg, readahead_queues_the_next_chunks_at_background_priority)
{
	struct snapblk_fetch_req r[16];
	int n, i;

	ASSERT_EQ(0, write_attr(self->dev.index, "readahead_chunks", "4"));
	ASSERT_EQ(0, read_answered(_metadata, self, 0));
	/* A jump is not sequential: nothing ahead is asked for. */
	ASSERT_EQ(0, read_answered(_metadata, self, 10));
	EXPECT_EQ(-ETIMEDOUT, sb_next_request(self->fd, &r[0], 300));
	/* 10 then 11: the next 4 come, in order, flagged background. */
	ASSERT_EQ(0, read_answered(_metadata, self, 11));
	ASSERT_TRUE(wait_attr(self, "fetching", 4, 3000));
	n = drain(self, r, 16);
	ASSERT_EQ(4, n);
	for (i = 0; i < n; i++) {
		EXPECT_EQ(12 + i, r[i].chunk);
		EXPECT_TRUE(r[i].flags & SNAPBLK_FETCH_F_BACKGROUND);
		EXPECT_TRUE(r[i].flags & SNAPBLK_FETCH_F_DEADLINE);
	}
	for (i = 0; i < n; i++)
		EXPECT_EQ(sizeof(struct snapblk_fetch_resp) + CHUNK,
			  answer(self, &r[i], sizeof(struct snapblk_fetch_resp),
				 0, 0));
	EXPECT_EQ(4, sb_dev_attr(self->dev.index, "readahead_fetches"));
	EXPECT_EQ(3, sb_dev_attr(self->dev.index, "demand_fetches"));
	/* The chunks read ahead are hits now, and count as used. */
	for (i = 12; i < 16; i++) {
		struct sb_chunk_read o;

		ASSERT_EQ(0, sb_chunk_read_start(&o, self->path, i, CHUNK));
		EXPECT_EQ(0, sb_chunk_read_end(&o, &self->img, i));
	}
	EXPECT_EQ(4, sb_dev_attr(self->dev.index, "prefetch_used"));
	EXPECT_EQ(3, sb_dev_attr(self->dev.index, "demand_fetches"));
}

TEST_F(bg, max_inflight_bounds_background_fetches)
{
	struct snapblk_fetch_req r[16];
	int n;

	ASSERT_EQ(0, write_attr(self->dev.index, "readahead_chunks", "8"));
	ASSERT_EQ(0, write_attr(self->dev.index, "max_inflight", "3"));
	ASSERT_EQ(0, read_answered(_metadata, self, 0));
	ASSERT_EQ(0, read_answered(_metadata, self, 1));
	ASSERT_TRUE(wait_attr(self, "fetching", 3, 3000));
	usleep(200000);
	EXPECT_EQ(3, sb_dev_attr(self->dev.index, "fetching"));
	n = drain(self, r, 16);
	ASSERT_EQ(3, n);
	EXPECT_EQ(2, r[0].chunk);
	/* One ends: the next one goes out. */
	ASSERT_EQ(sizeof(struct snapblk_fetch_resp) + CHUNK,
		  answer(self, &r[0], sizeof(struct snapblk_fetch_resp), 0, 0));
	ASSERT_EQ(0, sb_next_request(self->fd, &r[3], 3000));
	EXPECT_EQ(5, r[3].chunk);
	EXPECT_EQ(3, sb_dev_attr(self->dev.index, "fetching"));
	/* Raised at run time: the rest of the window (6..9) goes out. */
	ASSERT_EQ(0, write_attr(self->dev.index, "max_inflight", "16"));
	ASSERT_TRUE(wait_attr(self, "fetching", 7, 3000));
}

TEST_F(bg, demand_requests_go_first_and_promote_a_queued_background_one)
{
	struct snapblk_fetch_req r[16];
	struct sb_chunk_read far, near;
	int n, i;

	ASSERT_EQ(0, write_attr(self->dev.index, "readahead_chunks", "6"));
	ASSERT_EQ(0, read_answered(_metadata, self, 0));
	ASSERT_EQ(0, read_answered(_metadata, self, 1));
	ASSERT_TRUE(wait_attr(self, "fetching", 6, 3000));
	/* Chunks 2..7 wait as background; now two reads need chunks. */
	ASSERT_EQ(0, sb_chunk_read_start(&far, self->path, 20, CHUNK));
	ASSERT_TRUE(wait_attr(self, "inflight", 1, 3000));
	ASSERT_EQ(0, sb_chunk_read_start(&near, self->path, 5, CHUNK));
	ASSERT_TRUE(wait_attr(self, "inflight", 2, 3000));
	n = drain(self, r, 16);
	ASSERT_EQ(7, n);
	EXPECT_EQ(20, r[0].chunk);
	EXPECT_EQ(0, r[0].flags & SNAPBLK_FETCH_F_BACKGROUND);
	EXPECT_EQ(5, r[1].chunk);
	EXPECT_EQ(0, r[1].flags & SNAPBLK_FETCH_F_BACKGROUND);
	for (i = 2; i < n; i++)
		EXPECT_TRUE(r[i].flags & SNAPBLK_FETCH_F_BACKGROUND);
	EXPECT_EQ(1, sb_dev_attr(self->dev.index, "prefetch_joined"));
	for (i = 0; i < n; i++)
		answer(self, &r[i], sizeof(struct snapblk_fetch_resp), 0, 0);
	EXPECT_EQ(0, sb_chunk_read_end(&far, &self->img, 20));
	EXPECT_EQ(0, sb_chunk_read_end(&near, &self->img, 5));
}

TEST_F(bg, drop_cache_empties_it_and_counts_unread_background_chunks_wasted)
{
	struct snapblk_fetch_req r[16];
	int n, i;

	ASSERT_EQ(0, write_attr(self->dev.index, "readahead_chunks", "3"));
	ASSERT_EQ(0, read_answered(_metadata, self, 0));
	ASSERT_EQ(0, read_answered(_metadata, self, 1));
	ASSERT_TRUE(wait_attr(self, "fetching", 3, 3000));
	n = drain(self, r, 16);
	ASSERT_EQ(3, n);
	for (i = 0; i < n; i++)
		answer(self, &r[i], sizeof(struct snapblk_fetch_resp), 0, 0);
	ASSERT_TRUE(wait_attr(self, "resident_chunks", 5, 3000));
	ASSERT_EQ(0, put_file("/sys/module/snapblk/parameters/drop_cache",
				   "1"));
	EXPECT_EQ(0, sb_dev_attr(self->dev.index, "resident_chunks"));
	EXPECT_EQ(3, sb_dev_attr(self->dev.index, "prefetch_wasted"));
	EXPECT_EQ(5, sb_dev_attr(self->dev.index, "evictions"));
	EXPECT_NE(0, put_file("/sys/module/snapblk/parameters/drop_cache",
				   "2"));
	/* Dropped means fetched again. */
	ASSERT_EQ(0, read_answered(_metadata, self, 0));
}

TEST_F(bg, answers_carry_tier_retries_and_latency)
{
	struct snapblk_fetch_req r;
	struct sb_chunk_read o;
	struct sb_dev d;

	ASSERT_EQ(0, sb_chunk_read_start(&o, self->path, 3, CHUNK));
	ASSERT_EQ(0, sb_next_request(self->fd, &r, 5000));
	usleep(100000);
	ASSERT_EQ(sizeof(struct snapblk_fetch_resp) + CHUNK,
		  answer(self, &r, sizeof(struct snapblk_fetch_resp),
			 SNAPBLK_TIER_STORE + 1, 2));
	ASSERT_EQ(0, sb_chunk_read_end(&o, &self->img, 3));
	/* An API 3 daemon's 16-byte header. */
	ASSERT_EQ(0, sb_chunk_read_start(&o, self->path, 4, CHUNK));
	ASSERT_EQ(0, sb_next_request(self->fd, &r, 5000));
	ASSERT_EQ(SNAPBLK_FETCH_RESP_LEN_V3 + CHUNK,
		  answer(self, &r, SNAPBLK_FETCH_RESP_LEN_V3, 7, 9));
	ASSERT_EQ(0, sb_chunk_read_end(&o, &self->img, 4));
	/* Neither 16 nor 24 bytes: refused. */
	ASSERT_EQ(0, sb_chunk_read_start(&o, self->path, 6, CHUNK));
	ASSERT_EQ(0, sb_next_request(self->fd, &r, 5000));
	EXPECT_EQ(-1, answer(self, &r, 20, 0, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(sizeof(struct snapblk_fetch_resp) + CHUNK,
		  answer(self, &r, sizeof(struct snapblk_fetch_resp),
			 SNAPBLK_TIER_DISK, 0));
	ASSERT_EQ(0, sb_chunk_read_end(&o, &self->img, 6));

	EXPECT_EQ(2, sb_dev_attr(self->dev.index, "retries"));
	EXPECT_EQ(3, sb_dev_attr(self->dev.index, "fetches_done"));
	EXPECT_GE(sb_dev_attr(self->dev.index, "fetch_latency_us"), 100000);
	ASSERT_EQ(0, sb_nl_status(&self->nl, NAME, &d));
	EXPECT_EQ(3, d.stats[SNAPBLK_STAT_FETCHES_DONE]);
	EXPECT_EQ(3 * CHUNK, d.stats[SNAPBLK_STAT_BYTES_FETCHED]);
}

/* SNAPBLK_CMD_PREFETCH of @n chunk indexes, for image @id. */
static int prefetch(FIXTURE_DATA(bg) *self, const uint32_t *list, uint32_t n,
		    const uint8_t *id)
{
	struct sb_prefetch p = {
		.name = NAME,
		.image_id = id,
		.mode = SB_PREFETCH_LIST,
		.count = n,
	};
	struct sb_dev d;
	int ret;

	p.fd = memfd_create("bg-list", MFD_CLOEXEC);
	if (p.fd < 0)
		return -errno;
	if (write(p.fd, list, n * sizeof(*list)) != (ssize_t)(n * sizeof(*list)))
		ret = -EIO;
	else
		ret = sb_nl_prefetch(&self->nl, &p, &d);
	close(p.fd);
	return ret;
}

static const char *prefetch_state(FIXTURE_DATA(bg) *self, char *buf)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/block/snapblk%u/snapblk/prefetch",
		 self->dev.index);
	if (sb_read_file(path, buf, 32))
		return "?";
	buf[strcspn(buf, "\n")] = 0;
	return buf;
}

TEST_F(bg, prefetch_list_is_fetched_in_its_order_and_checked)
{
	static const uint32_t list[] = { 7, 3, 9, 1, 3, 20 };
	static const uint32_t past[] = { 2, NCHUNKS };
	uint8_t other[SNAPBLK_IMAGE_ID_LEN] = { 0x45 };
	struct snapblk_fetch_req r;
	struct sb_prefetch stop = {
		.name = NAME, .mode = SB_PREFETCH_STOP,
	};
	struct sb_dev d;
	char st[32];
	int i;

	EXPECT_STREQ("none", prefetch_state(self, st));
	EXPECT_EQ(-EINVAL, prefetch(self, list, 6, other));
	EXPECT_EQ(-EINVAL, prefetch(self, past, 2, self->dev.image_id));
	EXPECT_STREQ("none", prefetch_state(self, st));
	/* Chunk 9 is resident already: skipped. */
	ASSERT_EQ(0, read_answered(_metadata, self, 9));
	ASSERT_EQ(0, write_attr(self->dev.index, "max_inflight", "1"));
	ASSERT_EQ(0, prefetch(self, list, 6, self->dev.image_id));
	EXPECT_STREQ("running", prefetch_state(self, st));
	EXPECT_EQ(6, sb_dev_attr(self->dev.index, "prefetch_queued"));
	/* One at a time (max_inflight 1), in the list's order. */
	for (i = 0; i < 4; i++) {
		static const uint32_t want[] = { 7, 3, 1, 20 };

		ASSERT_EQ(0, sb_next_request(self->fd, &r, 5000));
		EXPECT_EQ(want[i], r.chunk);
		EXPECT_TRUE(r.flags & SNAPBLK_FETCH_F_BACKGROUND);
		EXPECT_EQ(-ETIMEDOUT, sb_next_request(self->fd, &r, 100) ?:
			  -EEXIST);
		ASSERT_EQ(sizeof(struct snapblk_fetch_resp) + CHUNK,
			  answer(self, &r, sizeof(struct snapblk_fetch_resp),
				 SNAPBLK_TIER_DISK, 0));
	}
	for (i = 0; i < 50 && strcmp(prefetch_state(self, st), "done"); i++)
		usleep(20000);
	EXPECT_STREQ("done", prefetch_state(self, st));
	EXPECT_EQ(6, sb_dev_attr(self->dev.index, "prefetch_done"));
	EXPECT_EQ(4, sb_dev_attr(self->dev.index, "prefetch_fetches"));
	EXPECT_EQ(5, sb_dev_attr(self->dev.index, "resident_chunks"));
	ASSERT_EQ(0, sb_nl_status(&self->nl, NAME, &d));
	EXPECT_EQ(4, d.hist.tiers[SNAPBLK_TIER_DISK]);

	/* Hydration asks for every other chunk; a stop ends it. */
	ASSERT_EQ(0, write_attr(self->dev.index, "max_inflight", "2"));
	{
		struct sb_prefetch h = {
			.name = NAME, .image_id = self->dev.image_id,
			.mode = SB_PREFETCH_HYDRATE,
		};

		ASSERT_EQ(0, sb_nl_prefetch(&self->nl, &h, &d));
	}
	ASSERT_EQ(0, sb_next_request(self->fd, &r, 5000));
	EXPECT_EQ(0, r.chunk);
	ASSERT_EQ(0, sb_nl_prefetch(&self->nl, &stop, &d));
	EXPECT_STREQ("stopped", prefetch_state(self, st));
}

TEST_HARNESS_MAIN
