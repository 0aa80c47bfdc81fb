/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The fetch path (fetch.c): the table of pending fetches, the queues the
 * fetch daemon reads through /dev/snapblk-fetch, verification and
 * decryption of its answers, and the insertion of verified chunks into
 * the cache (cache.h).
 */
#ifndef SNAPBLK_FETCH_H
#define SNAPBLK_FETCH_H

#include <linux/blk-mq.h>
#include <linux/list.h>
#include <linux/types.h>

#include "cache.h"

/*
 * Per-request data (tag_set.cmd_size); every request lies in one chunk.
 * @waiting says, under snapblk_fetch_lock, that the request is on a
 * fetch's waiters and so still owned by the fetch path: whoever clears it
 * (fetch completion, device removal, the blk-mq timeout) completes it.
 */
struct snapblk_rq {
	struct list_head node;		/* on a fetch's waiters, under lock */
	struct request *rq;
	struct snapblk_client *cl;
	u64 chunk;			/* chunk index the request reads */
	bool waiting;
	struct snapblk_resident *res;	/* preallocated, or NULL */
};

/*
 * Read chunk @chunk (@e in @cl's table) for @cmd.  Returns the chunk,
 * VALID, with a reference (the caller copies and puts it); NULL when
 * @cmd now waits for its fetch (the request is completed by the fetch
 * path); an ERR_PTR when out of memory.
 */
struct snapblk_chunk *snapblk_fetch_get(struct snapblk_client *cl,
					const struct snapblk_chunk_entry *e,
					u64 chunk, struct snapblk_rq *cmd,
					u32 timeout_ms);
/*
 * Fetch chunk @chunk of @cl in the background (readahead when
 * @readahead, else prefetch), for the cache and for @cl's residency.
 * 0 when a fetch was started; -EEXIST when the chunk is in the cache
 * (then made resident for @cl) or already being fetched; -ENOMEM.
 */
int snapblk_fetch_background(struct snapblk_client *cl,
			     const struct snapblk_chunk_entry *e, u64 chunk,
			     bool readahead, u32 timeout_ms);
/* Copy the part of @c that @cmd reads into its request: 0 or -EIO. */
int snapblk_chunk_copy_to_rq(struct snapblk_chunk *c, struct snapblk_rq *cmd);
/* End @cmd's request, freeing the residency record it did not use. */
void snapblk_rq_end(struct snapblk_rq *cmd, blk_status_t sts);
/* The blk-mq timeout of @cmd fired: true when it was failed here. */
bool snapblk_fetch_timeout_rq(struct snapblk_rq *cmd);
/*
 * @cl is going away: fail its waiting requests and forget it as the
 * origin of its fetches (they go on for the cache and other readers).
 */
void snapblk_fetch_cancel_client(struct snapblk_client *cl);

/* Slack of the deadline scan, and of the blk-mq timeout after it. */
#define SNAPBLK_FETCH_SCAN_MS		250
#define SNAPBLK_RQ_TIMEOUT_SLACK_MS	5000
int snapblk_fetch_init(void);
void snapblk_fetch_exit(void);

#endif /* SNAPBLK_FETCH_H */
