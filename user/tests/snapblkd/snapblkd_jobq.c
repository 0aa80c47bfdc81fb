// SPDX-License-Identifier: GPL-2.0
/*
 * snapblkd's demand and background queues (user/snapblkd/jobq.h), alone:
 * demand requests start before background ones, background work never
 * takes the reserved slots, each queue is first in first out, and a
 * demand request for the chunk of a queued background job joins it
 * (and makes it demand) instead of queueing a second fetch.  The same
 * rules through the daemon, with time, are in snapblkd_proto.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"

#include "../../snapblkd/jobq.h"

#define CS	SNAPBLK_CHUNK_SIZE_MIN

static struct snapblk_fetch_req req(uint64_t id, int chunk, bool bg)
{
	struct snapblk_fetch_req r = {
		.len = sizeof(r),
		.chunk_size = CS,
		.id = id,
		.flags = SNAPBLK_FETCH_F_DEADLINE |
			 (bg ? SNAPBLK_FETCH_F_BACKGROUND : 0),
		.chunk = chunk,
	};

	memset(r.addr, chunk + 1, sizeof(r.addr));
	return r;
}

static int add(struct jobq *q, uint64_t id, int chunk, bool bg)
{
	struct snapblk_fetch_req r = req(id, chunk, bg);

	return jobq_add(q, &r);
}

/* The id of the job jobq_take() gives with inflight running, or 0. */
static uint64_t take(struct jobq *q, unsigned int inflight)
{
	struct jobq_job *j = jobq_take(q, inflight);
	uint64_t id;

	if (!j)
		return 0;
	id = j->req.id;
	free(j);
	return id;
}

/*
 * The jobs jobq_take() hands out with inflight running are ids[], in
 * that order, then none.
 */
#define EXPECT_TAKES(q, inflight, ...) do {				\
	static const uint64_t ids_[] = { __VA_ARGS__ };		\
	unsigned int i_;						\
									\
	for (i_ = 0; i_ < sizeof(ids_) / sizeof(ids_[0]); i_++)		\
		EXPECT_EQ(ids_[i_], take(q, inflight))			\
			TH_LOG("job %u handed out", i_ + 1);		\
	EXPECT_EQ(0, take(q, inflight));				\
} while (0)

/* max_inflight 16: 4 slots reserved, background below 12. */
TEST(background_never_takes_the_reserve)
{
	struct jobq q;
	int i;

	jobq_init(&q, 16);
	for (i = 1; i <= 20; i++)
		ASSERT_EQ(0, add(&q, i, i, true));
	for (i = 0; i < 12; i++)
		ASSERT_EQ((uint64_t)i + 1, take(&q, i));
	EXPECT_EQ(0, take(&q, 12));
	EXPECT_EQ(0, take(&q, 15));
	/* A demand request gets one of the reserved slots at once. */
	ASSERT_EQ(0, add(&q, 100, 100, false));
	EXPECT_EQ(100, take(&q, 12));
	ASSERT_EQ(0, add(&q, 101, 101, false));
	EXPECT_EQ(101, take(&q, 15));
	/* Every slot taken: not even demand. */
	ASSERT_EQ(0, add(&q, 102, 102, false));
	EXPECT_EQ(0, take(&q, 16));
	EXPECT_EQ(102, take(&q, 11));
	/* Background again once a slot of its share is free. */
	EXPECT_EQ(13, take(&q, 11));
	EXPECT_EQ(7, jobq_len(&q));
	jobq_clear(&q);
	EXPECT_EQ(0, jobq_len(&q));
	EXPECT_EQ(0, take(&q, 0));
}

/* The reserve is max(1, max_inflight / 4); background keeps one slot. */
TEST(reserve_sizes)
{
	static const struct {
		unsigned int max, bg;
	} cases[] = {
		{ 1, 1 }, { 2, 1 }, { 3, 2 }, { 4, 3 }, { 7, 6 }, { 8, 6 },
		{ 16, 12 }, { 64, 48 }, { 1024, 768 }, { 4096, 3072 },
	};
	struct jobq q;
	unsigned int i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		jobq_init(&q, cases[i].max);
		EXPECT_EQ(cases[i].bg, q.bg_limit)
			TH_LOG("max_inflight %u", cases[i].max);
		ASSERT_EQ(0, add(&q, 1, 1, true));
		EXPECT_EQ(0, take(&q, cases[i].bg));
		EXPECT_EQ(1, take(&q, cases[i].bg - 1));
	}
}

/* Demand first, each queue in arrival order. */
TEST(demand_first_then_fifo)
{
	struct jobq q;

	jobq_init(&q, 64);
	ASSERT_EQ(0, add(&q, 1, 1, true));
	ASSERT_EQ(0, add(&q, 2, 2, false));
	ASSERT_EQ(0, add(&q, 3, 3, true));
	ASSERT_EQ(0, add(&q, 4, 4, false));
	EXPECT_EQ(4, jobq_len(&q));
	EXPECT_TAKES(&q, 0, 2, 4, 1, 3);
}

/* A demand request joins the queued background job of its chunk. */
TEST(demand_joins_queued_background)
{
	struct jobq_job *j;
	struct jobq q;

	jobq_init(&q, 4);
	ASSERT_EQ(0, add(&q, 1, 1, true));
	ASSERT_EQ(0, add(&q, 2, 2, true));
	ASSERT_EQ(0, add(&q, 3, 3, true));
	ASSERT_EQ(0, add(&q, 10, 10, false));
	/* Chunk 2, on demand: no second job. */
	ASSERT_EQ(1, add(&q, 20, 2, false));
	EXPECT_EQ(4, jobq_len(&q));
	EXPECT_EQ(1, q.promoted);
	/* Behind the demand job that came first, before any background. */
	EXPECT_EQ(10, take(&q, 3));
	j = jobq_take(&q, 3);
	ASSERT_NE(NULL, j);
	EXPECT_EQ(2, j->req.id);
	EXPECT_EQ(JOBQ_DEMAND, j->kind);
	ASSERT_TRUE(j->has_joined);
	EXPECT_EQ(20, j->joined.id);
	free(j);
	/* The others stay background: not in the reserved slot. */
	EXPECT_EQ(0, take(&q, 3));
	EXPECT_TAKES(&q, 2, 1, 3);
}

/*
 * No join: a re-fetch (it must not be served from a cache), another
 * chunk size, a background request, a job joined already, one started.
 */
TEST(what_does_not_join)
{
	struct snapblk_fetch_req r;
	struct jobq q;

	jobq_init(&q, 4);
	ASSERT_EQ(0, add(&q, 1, 1, true));
	r = req(2, 1, false);
	r.flags |= SNAPBLK_FETCH_F_REFETCH;
	ASSERT_EQ(0, jobq_add(&q, &r));
	r = req(3, 1, false);
	r.chunk_size = 2 * CS;
	ASSERT_EQ(0, jobq_add(&q, &r));
	ASSERT_EQ(0, add(&q, 4, 1, true));
	EXPECT_EQ(4, jobq_len(&q));
	EXPECT_EQ(0, q.promoted);
	/* One joins job 1; the next goes on to job 4. */
	ASSERT_EQ(1, add(&q, 5, 1, false));
	ASSERT_EQ(1, add(&q, 6, 1, false));
	ASSERT_EQ(0, add(&q, 7, 1, false));
	EXPECT_EQ(5, jobq_len(&q));
	EXPECT_TAKES(&q, 0, 2, 3, 1, 4, 7);
	/* A job taken (started) is no longer joined. */
	ASSERT_EQ(0, add(&q, 8, 9, true));
	EXPECT_EQ(8, take(&q, 0));
	EXPECT_EQ(0, add(&q, 9, 9, false));
	jobq_clear(&q);
}

TEST_HARNESS_MAIN
