/* SPDX-License-Identifier: GPL-2.0 */
/*
 * snapblkd's queues of requests read from the kernel and not started
 * yet: demand first, and background work (readahead, prefetch,
 * hydration: SNAPBLK_FETCH_F_BACKGROUND) never in the last slots.
 *
 * Two FIFO queues, demand and background.  jobq_take() hands out the
 * oldest demand job while fewer than max_inflight fetches run, else the
 * oldest background job while fewer than bg_limit run: bg_limit is
 * max_inflight less a reserve of max(1, max_inflight / 4), so that a
 * demand request can always start at once, behind no more than the
 * fetches already running (with max_inflight 1 or 2 the reserve would
 * leave background work no slot at all: it gets one).
 *
 * A demand request for the chunk of a queued background job (same
 * address and chunk size) joins that job instead of queueing a second
 * fetch: the job moves to the end of the demand queue and, once
 * fetched, answers both requests.  A request with SNAPBLK_FETCH_F_REFETCH
 * never joins one (it must not be served from a cache).
 *
 * No locking: the queues belong to the event loop's thread.  Jobs are
 * allocated by jobq_add() and, once taken, owned (and freed) by the
 * caller.  Nothing here prints or exits.
 */
#ifndef SNAPBLKD_JOBQ_H
#define SNAPBLKD_JOBQ_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/snapblk.h>

enum jobq_kind {
	JOBQ_DEMAND,
	JOBQ_BACKGROUND,
	JOBQ_KINDS,
};

/* A request read and not started yet. */
struct jobq_job {
	struct snapblk_fetch_req req;	/* as read (the fields we know) */
	struct snapblk_fetch_req joined; /* a demand request for the same
					  * chunk, answered with it */
	bool has_joined;		/* joined is valid */
	enum jobq_kind kind;		/* its queue: background until a
					 * demand request joins it */
	struct jobq_job *next;		/* in its queue */
};

struct jobq {
	struct jobq_job *head[JOBQ_KINDS];	/* oldest first */
	struct jobq_job **tail[JOBQ_KINDS];	/* where the next one goes */
	unsigned int len[JOBQ_KINDS];		/* jobs in each queue */
	unsigned int max_inflight;	/* demand starts below this */
	unsigned int bg_limit;		/* background starts below this */
	uint64_t promoted;		/* background jobs a demand joined */
};

/* Empty queues for a daemon running at most max_inflight (>= 1) fetches. */
void jobq_init(struct jobq *q, unsigned int max_inflight);

/*
 * Queue a request: 0 queued, 1 joined a queued background job (now
 * demand), -ENOMEM.
 */
int jobq_add(struct jobq *q, const struct snapblk_fetch_req *req);

/*
 * The job to start now, with inflight fetches running, taken off its
 * queue (the caller frees it); NULL when none may start.
 */
struct jobq_job *jobq_take(struct jobq *q, unsigned int inflight);

/* Jobs queued, both kinds. */
unsigned int jobq_len(const struct jobq *q);

/* Free every queued job (stopping: the kernel re-queues them). */
void jobq_clear(struct jobq *q);

#endif
