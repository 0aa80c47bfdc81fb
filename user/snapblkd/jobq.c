// SPDX-License-Identifier: GPL-2.0
/*
 * snapblkd's demand and background queues (jobq.h).  A demand request
 * looks for a background job of the same chunk by walking the
 * background queue: O(queued), bounded by the daemon's queue limit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jobq.h"

void jobq_init(struct jobq *q, unsigned int max_inflight)
{
	unsigned int reserve = max_inflight / 4 ? max_inflight / 4 : 1;
	int k;

	memset(q, 0, sizeof(*q));
	for (k = 0; k < JOBQ_KINDS; k++)
		q->tail[k] = &q->head[k];
	q->max_inflight = max_inflight;
	q->bg_limit = max_inflight > reserve ? max_inflight - reserve : 1;
}

static void push(struct jobq *q, struct jobq_job *j)
{
	j->next = NULL;
	*q->tail[j->kind] = j;
	q->tail[j->kind] = &j->next;
	q->len[j->kind]++;
}

/* Take *p (in queue k) off its queue. */
static void unlink_at(struct jobq *q, enum jobq_kind k, struct jobq_job **p)
{
	struct jobq_job *j = *p;

	*p = j->next;
	if (q->tail[k] == &j->next)
		q->tail[k] = p;
	j->next = NULL;
	q->len[k]--;
}

/* A demand request for this job's chunk may join it. */
static bool joinable(const struct jobq_job *j,
		     const struct snapblk_fetch_req *req)
{
	return !j->has_joined && j->req.chunk_size == req->chunk_size &&
	       !memcmp(j->req.addr, req->addr, SNAPBLK_ADDR_LEN);
}

int jobq_add(struct jobq *q, const struct snapblk_fetch_req *req)
{
	bool bg = req->flags & SNAPBLK_FETCH_F_BACKGROUND;
	struct jobq_job **p, *j;

	if (!bg && !(req->flags & SNAPBLK_FETCH_F_REFETCH)) {
		for (p = &q->head[JOBQ_BACKGROUND]; *p; p = &(*p)->next) {
			if (!joinable(*p, req))
				continue;
			j = *p;
			unlink_at(q, JOBQ_BACKGROUND, p);
			j->joined = *req;
			j->has_joined = true;
			j->kind = JOBQ_DEMAND;
			push(q, j);
			q->promoted++;
			return 1;
		}
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->req = *req;
	j->kind = bg ? JOBQ_BACKGROUND : JOBQ_DEMAND;
	push(q, j);
	return 0;
}

struct jobq_job *jobq_take(struct jobq *q, unsigned int inflight)
{
	struct jobq_job *j;
	enum jobq_kind k;

	if (q->head[JOBQ_DEMAND] && inflight < q->max_inflight)
		k = JOBQ_DEMAND;
	else if (q->head[JOBQ_BACKGROUND] && inflight < q->bg_limit)
		k = JOBQ_BACKGROUND;
	else
		return NULL;
	j = q->head[k];
	unlink_at(q, k, &q->head[k]);
	return j;
}

unsigned int jobq_len(const struct jobq *q)
{
	return q->len[JOBQ_DEMAND] + q->len[JOBQ_BACKGROUND];
}

void jobq_clear(struct jobq *q)
{
	struct jobq_job *j;
	int k;

	for (k = 0; k < JOBQ_KINDS; k++) {
		while ((j = q->head[k])) {
			q->head[k] = j->next;
			free(j);
		}
		q->tail[k] = &q->head[k];
		q->len[k] = 0;
	}
}
