/* SPDX-License-Identifier: GPL-2.0 */
/*
 * snapblkd internals: one fetch (a kernel request being served), the
 * store backends behind one interface, and the event loop they report
 * to.  See snapblkd.c for the loop and snapblkd(8) for the behaviour.
 *
 * Threads: everything here runs on the main thread (the event loop),
 * except the directory backend's reads, which run on its worker threads
 * (store_dir.c) and are handed back through an eventfd, and the writes
 * of the answers (--writers: snapblkd.c's writer threads, handed back
 * the same way).  A struct fetch belongs to the loop; while a backend
 * works on it (fetch->busy), only that backend touches fetch->buf; once
 * answer() has handed it to the writers, only the writer that took it
 * touches it (it is on no list of the loop's then) until the loop takes
 * it back.
 */
#ifndef SNAPBLKD_H
#define SNAPBLKD_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <linux/snapblk.h>

#include "store.h"

struct backend;

#define GROUP_MAX	8	/* replicas in a --store-group */

/* How one attempt at one store ended (fetch->result). */
enum fetch_result {
	FR_OK,		/* chunk_size bytes in fetch->buf */
	FR_MISSING,	/* the store does not have it (404, ENOENT) */
	FR_DENIED,	/* refused (403, 401): credentials or policy */
	FR_BAD,		/* an answer that is not the chunk (wrong size) */
	FR_TRANSIENT,	/* 5xx, 429, time-out, connection error: retry */
	FR_LOCAL,	/* a local failure (no memory) */
};

/* One kernel request, from its read() to its answer. */
struct fetch {
	struct snapblk_fetch_req req;	/* as read, fields we know */
	char name[SB_STORE_NAME_LEN];	/* "ab/abcd...": the chunk's path */
	uint8_t *buf;			/* req.chunk_size bytes, from the pool */
	size_t got;			/* bytes received so far */
	int64_t deadline_ms;		/* CLOCK_MONOTONIC ms: give up then */
	int64_t retry_at_ms;		/* waiting for a retry until then, or 0 */
	unsigned int store;		/* index of the store being tried */
	unsigned int attempt;		/* rounds over the stores so far */
	unsigned int missing;		/* stores that said "not found" */
	uint32_t definite;		/* stores that answered for good
					 * (missing, refused, bad): 1 << i */
	bool busy;			/* a backend holds it */
	bool from_cache;		/* answered from the disk cache */
	bool background;		/* started as background work */
	struct snapblk_fetch_req joined; /* a demand request that joined
					  * it while queued: answered too */
	bool has_joined;		/* joined is valid */
	bool sent_main;			/* req answered (joined may not be) */
	unsigned int answers;		/* requests answered and not yet
					 * counted (count_written()) */
	unsigned int write_errors;	/* answers refused or cut short, not
					 * yet counted */
	uint32_t tier;			/* SNAPBLK_TIER_* of the chunk */
	unsigned int requests;		/* store requests made for it */
	unsigned int winner;		/* group: the replica that answered */
	int64_t held_until_ms;		/* --delay-ms: the attempt ended; its
					 * fetch_done() waits till then */
	struct backend *be;		/* backend of the current attempt */
	enum fetch_result result;	/* of the last attempt */
	long status;			/* HTTP status or -errno, for logs;
					 * once answered: the answer's error */
	char detail[PATH_MAX + 200];	/* what went wrong, for logs:
					 * "WHERE: why" (a path, a URL) */
	char why[2 * PATH_MAX];		/* the details of this round */
	CURL *easy;			/* HTTP backends: the transfer */
	struct curl_slist *headers;	/* HTTP backends: request headers */
	struct fetch *next;		/* loop's lists */
	/* A replica group's fetch (store_group.c) */
	struct fetch *subs[GROUP_MAX];	/* attempts at replicas, running */
	unsigned int nsubs;
	uint32_t asked;			/* replicas asked: 1 << r */
	unsigned int first_replica;	/* asked first, in turn */
	int64_t hedge_at_ms;		/* ask another replica then, or 0 */
	enum fetch_result sub_result;	/* worst failure but "missing" */
	unsigned int sub_missing;	/* replicas that said "not found" */
	/* An attempt at one replica: its group's fetch, or NULL */
	struct fetch *parent;
	unsigned int replica;		/* index in the group */
	int64_t started_ms;		/* when the attempt (or the replica)
					 * was asked: --delay-ms counts
					 * from there */
};

/* A store backend.  start() begins one attempt; the backend calls
 * fetch_done() when it ends (from the loop thread, possibly before
 * start() returns).  cancel() abandons an attempt in progress without a
 * fetch_done() (stopping). */
struct backend_ops {
	const char *kind;		/* "dir", "http", "s3" */
	void (*start)(struct backend *be, struct fetch *f);
	void (*cancel)(struct backend *be, struct fetch *f);
	void (*close)(struct backend *be);
};

struct backend {
	const struct backend_ops *ops;
	char url[512];			/* as given, for logs */
	void *priv;
};

/* The loop: an attempt ended; f->result, f->status, f->detail are set. */
void fetch_done(struct fetch *f);

/* The loop's libcurl multi handle, shared by the HTTP backends. */
extern CURLM *loop_multi;

/* Options the backends read. */
struct backend_opts {
	const char *ca_file;		/* --ca-file, or NULL */
	const char *s3_endpoint;	/* --s3-endpoint URL, or NULL */
	const char *s3_style;		/* "path", "virtual" or NULL: default */
	const char *s3_region;		/* --s3-region, or NULL: environment */
	const char *aws_profile;	/* --aws-profile, or NULL */
	unsigned int connect_timeout_ms;
	unsigned int hedge_ms;		/* --hedge-ms, or 0: the p95 */
	unsigned int jobs;		/* directory backend threads */
};
extern struct backend_opts bopts;

/*
 * Make the backend for a store URL: DIR or dir:DIR, http(s)://host/prefix,
 * s3://bucket/prefix.  0, or a negative errno with a message in msg.
 */
int backend_open(const char *url, struct backend **out, char *msg,
		 size_t msglen);

int store_dir_open(const char *dir, struct backend *be, char *msg,
		   size_t msglen);
/* The directory backends' completion eventfd, for the loop's poll. */
int store_dir_event_fd(void);
/* Hand completed directory reads to fetch_done(). */
void store_dir_complete(void);
/* Directory reads still running (stopping: wait for them). */
unsigned int store_dir_busy(void);

int store_http_open(const char *url, struct backend *be, char *msg,
		    size_t msglen);
int store_s3_open(const char *url, struct backend *be, char *msg,
		  size_t msglen);
/* Pass the multi handle's finished transfers to their backends. */
void store_http_complete(void);

/* --store-group URL,URL,...: replicas asked with hedged requests. */
int store_group_open(const char *list, struct backend *be, char *msg,
		     size_t msglen);
/* A group fetch's hedge delay passed: ask one more replica. */
void group_hedge(struct fetch *f);
/* An attempt at a replica ended (fetch_done() of a sub-fetch). */
void group_sub_done(struct fetch *s);
/* Second requests sent, and answers they won. */
void group_stats(const struct backend *be, uint64_t *hedges, uint64_t *wins);
/* Replicas in the group (each has a tier of its own). */
unsigned int group_size(const struct backend *be);

int64_t now_ms(void);

#endif
