// SPDX-License-Identifier: GPL-2.0
/*
 * snapblkd: the snapblk fetch daemon.  Answers the kernel's chunk
 * requests on /dev/snapblk-fetch (include/uapi/linux/snapblk.h, "Fetch
 * protocol") from a host disk cache and one or more chunk stores: local
 * directories, HTTP(S) servers or proxies, S3 buckets.  See snapblkd(8).
 *
 * One event loop (the main thread) does everything but directory reads
 * and the writes of the answers: it polls the fetch device, the signals,
 * the directory readers' and the answer writers' eventfds and, through
 * curl_multi_poll(), every HTTP connection.  The kernel hashes and
 * decrypts a chunk inside the write() that answers it (tens of ms per
 * chunk in an emulated guest), so --writers threads (default: one per
 * CPU, at most 8) do those writes, on as many CPUs, while the loop goes
 * on driving the stores; the loop alone counts and ends the fetches they
 * hand back (--writers 0: the loop writes the answers itself).
 *
 * Requests read wait in two queues (jobq.h): demand first, and
 * background work (SNAPBLK_FETCH_F_BACKGROUND: readahead, prefetch,
 * hydration) only while a quarter of the --max-inflight slots stays free
 * for demand.  It
 * reads requests only while fewer than queue_max (--max-inflight, at
 * least 16) wait, so the rest stay queued in the kernel (back-pressure: a
 * second daemon may take them, a stopped or killed daemon holds at most
 * --max-inflight + queue_max, which the kernel re-queues when the file is
 * closed, and a background request a read comes to need while it is still
 * in the kernel's queue is made demand there: the kernel does not tell
 * the daemon of a read that needs a request it has read already).
 *
 * Answers carry the API 4 header (struct snapblk_fetch_resp, 24 bytes:
 * where the chunk came from and the store requests it took); a module
 * of API 3 refuses it with EINVAL, and the daemon then answers with the
 * 16-byte header for the rest of its run.
 *
 * A fetch: the disk cache first (unless the kernel says an earlier answer
 * failed verification: SNAPBLK_FETCH_F_REFETCH, then the cached copy is
 * dropped), then each store in the order given until one has the chunk.
 * A transient failure (HTTP 5xx or 429, a time-out, a connection error)
 * is retried at the same store after an exponential backoff with jitter,
 * as long as the fetch's deadline (the kernel's, from the request, less
 * a margin) allows; "not found", "refused" and a wrong-sized answer move
 * on to the next store at once.  A chunk no store could deliver is
 * answered ENOENT (every store said it does not have it) or EIO, and
 * logged once, with each store's reason and what to do.  A chunk from a
 * store goes into the disk cache before it is answered, so that a daemon
 * killed after the fetch finds it there when the kernel asks again.
 *
 * Stopping (SIGTERM, SIGINT): no more requests are read, HTTP transfers
 * and the answers no writer has begun are dropped, the writes in
 * progress are finished, and the directory reads in progress get up to
 * --stop-timeout to finish; a read stuck in a store is left behind (the
 * device is let go of first, so the kernel re-queues what this daemon
 * had claimed) and the process _exit()s.
 *
 * The daemon is untrusted by design: the kernel hashes every chunk
 * against the manifest, so the daemon never hashes or decrypts.  It
 * trusts the stores no more: a directory store's chunk path that holds
 * anything but a regular file is refused (sb_store_read_chunk()), an HTTP
 * answer of the wrong size is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "chunk.h"
#include "dcache.h"
#include "hex.h"
#include "jobq.h"
#include "snapblkd.h"
#include "store.h"
#include "util.h"

#define DEFAULT_DEVICE	"/dev/snapblk-fetch"
#define DEFAULT_JOBS	4
#define MAX_JOBS	256
#define DEFAULT_INFLIGHT	64
#define MAX_INFLIGHT	4096
#define MAX_STORES	16
#define DEFAULT_STOP_TIMEOUT	5	/* seconds */
#define MAX_STOP_TIMEOUT	3600
#define DEFAULT_RETRIES		100	/* in effect: until the deadline */
#define DEFAULT_BACKOFF_MS	100	/* first retry; doubles, to 2 s */
#define MAX_BACKOFF_MS		2000
#define MIN_BACKOFF_MS		10
#define LAST_TRY_MS		200	/* time left for the last retry */
#define DEFAULT_TIMEOUT_MS	60000	/* a request without a deadline */
#define DEFAULT_CONNECT_MS	5000
#define DEADLINE_MARGIN_MS	100	/* answer this much before the kernel gives up */
#define MAX_READ_RECORDS	64
#define QUEUE_MIN	16	/* requests queued in the daemon, at least */
#define MAX_WRITERS	64
#define DEFAULT_WRITERS_MAX	8	/* the default: online CPUs, at most */

static const char usage_text[] =
"usage: snapblkd --store URL [--store URL | --store-group URL,URL...]...\n"
"                [--hedge-ms MS] [--cache-dir DIR\n"
"                --cache-size SIZE] [--max-inflight N] [--jobs N]\n"
"                [--retries N] [--connect-timeout MS] [--ca-file FILE]\n"
"                [--s3-endpoint URL] [--s3-style path|virtual]\n"
"                [--s3-region REGION] [--aws-profile NAME]\n"
"                [--device PATH | --device-fd FD] [--stop-timeout SECONDS]\n"
"                [--writers N] [--delay-ms MS] [--syslog] [--foreground]\n"
"                [-v]\n"
"\n"
"Fetch daemon of the snapblk lazy block device: read the kernel's chunk\n"
"requests from /dev/snapblk-fetch and answer each with the chunk's\n"
"ciphertext, from the host disk cache or else from the first store that\n"
"has it.  The kernel verifies every chunk against its manifest, so no\n"
"store (and no cache) need be trusted.  Runs in the foreground until\n"
"SIGTERM or SIGINT; requests not yet answered then go back to the\n"
"kernel's queue for the next daemon.\n"
"\n"
"Stores (--store, at most 16, tried in the order given):\n"
"  DIR, dir:DIR         a chunk store directory (DIR/ab/abcdef..., as\n"
"                       written by snapblk-build); only regular files\n"
"                       inside DIR are read, no symbolic link is followed\n"
"  http://HOST[:PORT]/PREFIX, https://...\n"
"                       a web server or caching proxy serving such a\n"
"                       directory: GET PREFIX/ab/abcdef...\n"
"  s3://BUCKET/PREFIX   an S3 bucket holding the objects PREFIX/ab/abcdef...,\n"
"                       signed with AWS Signature Version 4; credentials\n"
"                       from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and\n"
"                       AWS_SESSION_TOKEN, else the shared credentials\n"
"                       file (AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials;\n"
"                       profile AWS_PROFILE or --aws-profile)\n"
"\n"
"Options:\n"
"  -s, --store URL      a store, as above (at least one store or group)\n"
"      --store-group URL,URL,...\n"
"                       replicas of one store (http(s):// or s3://, 2 to\n"
"                       8), asked with hedged requests: one in turn, and\n"
"                       the next one too when the first has not answered\n"
"                       within the hedge delay; the first whole answer\n"
"                       wins, the other is cancelled\n"
"      --hedge-ms MS    the hedge delay (default: the 95th percentile of\n"
"                       the group's latencies so far; 50 ms until 20 are\n"
"                       known)\n"
"      --cache-dir DIR  the host disk cache: chunk ciphertext by address,\n"
"                       shared by every device and tenant (needs\n"
"                       --cache-size); kept across restarts\n"
"      --cache-size SIZE\n"
"                       its bound, in bytes or with K, M, G, T (binary)\n"
"      --max-inflight N fetches in flight at once, 1 to 4096 (default 64);\n"
"                       demand requests first, background ones (readahead,\n"
"                       prefetch) only while a quarter of N stays free;\n"
"                       up to N more (at least 16) wait in snapblkd,\n"
"                       further requests in the kernel\n"
"  -j, --jobs N         threads reading directory stores, 1 to 256\n"
"                       (default 4)\n"
"      --writers N      threads writing the answers to the device, 0 to 64\n"
"                       (default: the online CPUs, at most 8): the kernel\n"
"                       verifies and decrypts each chunk in that write, so\n"
"                       they spread its work over the CPUs; 0 writes them\n"
"                       from the event loop\n"
"      --retries N      rounds of retries over the stores that failed\n"
"                       transiently (5xx, time-out, connection error), 0\n"
"                       to 100 (default: until the deadline), after a\n"
"                       backoff from 100 ms doubling to 2 s, with jitter\n"
"      --connect-timeout MS\n"
"                       HTTP connection timeout (default 5000)\n"
"      --ca-file FILE   trust the CA certificates in FILE for https\n"
"      --s3-endpoint URL\n"
"                       S3 API endpoint, http(s)://HOST[:PORT] (default\n"
"                       https://s3.REGION.amazonaws.com)\n"
"      --s3-style path|virtual\n"
"                       path-style (ENDPOINT/BUCKET/KEY; the default with\n"
"                       --s3-endpoint) or virtual-host style\n"
"                       (BUCKET.ENDPOINT/KEY; the default for AWS)\n"
"      --s3-region REGION\n"
"                       signing region (default AWS_REGION,\n"
"                       AWS_DEFAULT_REGION or us-east-1)\n"
"      --aws-profile NAME\n"
"                       profile of the shared credentials file\n"
"  -d, --device PATH    fetch device (default " DEFAULT_DEVICE ")\n"
"      --device-fd FD   use the already open descriptor FD instead of\n"
"                       opening a device (for tests and socket\n"
"                       activation); it is made non-blocking\n"
"      --stop-timeout SECONDS\n"
"                       on SIGTERM or SIGINT, wait at most this long\n"
"                       (0 to 3600, default 5) for directory reads in\n"
"                       progress, then exit anyway: the kernel re-queues\n"
"                       them\n"
"      --delay-ms MS    testing aid: every store request completes no\n"
"                       earlier than MS ms after it started (0 to 600000,\n"
"                       default 0), as if the store were far away\n"
"      --syslog         log to syslog (facility daemon) instead of\n"
"                       standard error\n"
"  -f, --foreground     accepted for service files: snapblkd always runs\n"
"                       in the foreground and never forks\n"
"  -v, --verbose        also log one line per chunk served and each retry\n"
"  -h, --help           this text\n"
"  -V, --version        print the version\n"
"\n"
"Each fetch must end by the kernel's deadline for it (the device's\n"
"fetch_timeout_ms, carried in the request).  A chunk that no store has\n"
"is answered 'not found' (ENOENT); one that cannot be had otherwise\n"
"(refused, wrong size, anything but a regular file in a directory\n"
"store, no answer before the deadline) 'I/O error' (EIO); either fails\n"
"the reads that need it with EIO and is logged once with each store's\n"
"reason.  SIGUSR1 logs the counters; so does the exit: chunks fetched,\n"
"missing, errors, bytes, demand and background fetches started and\n"
"completed, chunks by tier, and the disk cache's hits, misses,\n"
"insertions, evictions and size.\n"
"\n"
"Exit status: 0 stopped by SIGTERM or SIGINT, 1 failure (device, store\n"
"or cache cannot be opened, device error), 2 usage error.  See\n"
"snapblkd(8).\n";

/* Counters, logged on SIGUSR1 and at exit. */
static struct {
	uint64_t fetched;	/* chunks delivered */
	uint64_t missing;	/* answered ENOENT */
	uint64_t errors;	/* answered EIO/EPROTO, or refused */
	uint64_t bytes;		/* ciphertext bytes delivered */
	uint64_t from_store;	/* chunks fetched from a store */
	uint64_t retries;	/* transient failures retried */
	uint64_t refetches;	/* requests flagged SNAPBLK_FETCH_F_REFETCH */
	uint64_t demand_started;	/* fetches started as demand */
	uint64_t demand_done;		/* of which answered */
	uint64_t bg_started;		/* started as background work */
	uint64_t bg_done;		/* of which answered */
	uint64_t tiers[SNAPBLK_TIER_MAX + 1];	/* answers with data, by
						 * SNAPBLK_TIER_* */
} cnt;

static struct {
	const char *stores[MAX_STORES];
	unsigned int nstores;
	const char *cache_dir;
	uint64_t cache_size;
	const char *device;
	int device_fd;
	unsigned int max_inflight;
	unsigned int retries;
	unsigned int stop_timeout;	/* seconds */
	unsigned int delay_ms;		/* --delay-ms: a store request's
					 * least duration */
	int writers;			/* --writers, or -1: the default */
	bool syslog;
	bool verbose;
} opt = {
	.device = DEFAULT_DEVICE,
	.device_fd = -1,
	.max_inflight = DEFAULT_INFLIGHT,
	.retries = DEFAULT_RETRIES,
	.stop_timeout = DEFAULT_STOP_TIMEOUT,
	.writers = -1,
};

struct backend_opts bopts = {
	.jobs = DEFAULT_JOBS,
	.connect_timeout_ms = DEFAULT_CONNECT_MS,
};

CURLM *loop_multi;
static struct backend *stores[MAX_STORES];
static struct sb_dcache *dcache;
static int dev_fd = -1;
static int stop_fd = -1;		/* eventfd: readable once stopping */
static atomic_int exit_status = EXIT_OK;
static bool stopping;

/* Requests read, not started yet; at most queue_max of them. */
static struct jobq queue;
static unsigned int queue_max;
/*
 * The answer header: 24 bytes (API 4), 16 once a module refused 24.
 * Read and lowered by the loop and the writers alike, hence atomic.
 */
static atomic_uint resp_len = sizeof(struct snapblk_fetch_resp);
/* Tier of stores[i]'s first store (a group has one per replica). */
static unsigned int tier_base[MAX_STORES];

/*
 * The loop's fetches: every fetch read and not yet answered is on
 * "active" (in a backend, or waiting for its retry); answers the device
 * would not take yet wait on "pending".  inflight counts both.
 */
static struct fetch *active;
static struct fetch *pending, **pending_tail = &pending;
static unsigned int inflight;
/* Chunk buffers of fetches that ended, for the next ones. */
static struct fetch *free_fetches;

/*
 * The answer writers (--writers N, N > 0).  answer() puts a fetch on
 * todo; a writer takes it off, writes its answers (try_answer_all(),
 * waiting for POLLOUT while the device is full), puts it on done and
 * signals event_fd; the loop (writers_complete()) counts it and ends it.
 * From answer() until the loop takes it off done, a fetch is on none of
 * the loop's lists and only the writer that took it touches it; it
 * still counts in inflight.  What the writers read besides (dev_fd,
 * opt, quit_fd) is set before they start, but resp_len (atomic).
 */
static struct {
	pthread_mutex_t lock;		/* guards todo, todo_tail, done, stop */
	pthread_cond_t cond;		/* signalled: todo grew, or stop */
	struct fetch *todo, **todo_tail; /* to write, first in first out */
	struct fetch *done;		/* written, or given up (stopping),
					 * for the loop */
	bool stop;			/* writers: exit (set once, by the loop) */
	int event_fd;			/* eventfd: something on done; -1
					 * without writers */
	int quit_fd;			/* eventfd, readable once stopping: a
					 * writer waiting for POLLOUT gives up */
	unsigned int n;			/* writers started (loop only) */
	unsigned int held;		/* fetches handed to the writers and
					 * not back yet (loop only) */
	pthread_t threads[MAX_WRITERS];	/* the first n are running */
} wr = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.todo_tail = &wr.todo,
	.event_fd = -1,
	.quit_fd = -1,
};

int64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

/* ------------------------------------------------------------- logging */

/*
 * One message, to standard error in err_report()'s format or to syslog.
 * Whole messages only: stderr is locked around err_report() (which is
 * several stdio calls) so that workers' lines never interleave.
 */
static void log_v(int prio, int err, const char *hint, const char *fmt,
		  va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (opt.syslog) {
		if (err)
			syslog(prio, "%s: %s", msg, strerror(err));
		else
			syslog(prio, "%s", msg);
		if (hint)
			syslog(prio, "%s", hint);
		return;
	}
	flockfile(stderr);
	if (prio <= LOG_WARNING)
		err_report(err, hint, "%s", msg);
	else
		fprintf(stderr, "%s: %s\n", prog_name, msg);
	funlockfile(stderr);
}

static void log_err(int err, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void log_err(int err, const char *hint, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_v(LOG_ERR, err, hint, fmt, ap);
	va_end(ap);
}

static void log_info(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_v(LOG_INFO, 0, NULL, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------ stopping */

static void request_stop(void)
{
	uint64_t one = 1;

	if (write(stop_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		abort();	/* cannot happen with a valid eventfd */
}

/* A worker cannot go on: stop the daemon with exit status 1. */
static void fatal(int err, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fatal(int err, const char *hint, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_v(LOG_ERR, err, hint, fmt, ap);
	va_end(ap);
	atomic_store(&exit_status, EXIT_FAIL);
	request_stop();
}

/* ------------------------------------------------------------- fetches */

static struct fetch *fetch_new(uint32_t chunk_size)
{
	struct fetch *f = free_fetches, **p;

	/* A buffer of the right size, if one is free. */
	for (p = &free_fetches; *p; p = &(*p)->next)
		if ((*p)->req.chunk_size == chunk_size)
			break;
	if (*p) {
		uint8_t *buf = (*p)->buf;

		f = *p;
		*p = f->next;
		memset(f, 0, sizeof(*f));
		f->buf = buf;
		return f;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->buf = malloc(chunk_size);
	if (!f->buf) {
		free(f);
		return NULL;
	}
	return f;
}

/* Keep at most --max-inflight spare buffers. */
static void fetch_free(struct fetch *f)
{
	unsigned int n = 0;
	struct fetch *g;

	for (g = free_fetches; g; g = g->next)
		n++;
	if (n >= opt.max_inflight) {
		free(f->buf);
		free(f);
		return;
	}
	f->next = free_fetches;
	free_fetches = f;
}

static void unlink_active(struct fetch *f)
{
	struct fetch **p;

	for (p = &active; *p; p = &(*p)->next) {
		if (*p == f) {
			*p = f->next;
			f->next = NULL;
			return;
		}
	}
}

/* A fetch is done with: off the lists, its buffer back to the pool. */
static void fetch_end(struct fetch *f)
{
	inflight--;
	fetch_free(f);
}

static void count_answer(const struct fetch *f, uint32_t error)
{
	if (!error) {
		cnt.fetched++;
		cnt.bytes += f->req.chunk_size;
		cnt.tiers[f->tier <= SNAPBLK_TIER_MAX ? f->tier : 0]++;
	} else if (error == ENOENT) {
		cnt.missing++;
	} else {
		cnt.errors++;
	}
}

/* Count the answers written for f so far (the loop thread only). */
static void count_written(struct fetch *f)
{
	for (; f->answers; f->answers--)
		count_answer(f, (uint32_t)f->status);
	cnt.errors += f->write_errors;
	f->write_errors = 0;
}

/* f is answered (every request it serves): count it, end it. */
static void fetch_answered(struct fetch *f)
{
	count_written(f);
	if (f->background)
		cnt.bg_done++;
	else
		cnt.demand_done++;
	fetch_end(f);
}

/*
 * A writer: wait until the device takes writes again (true), or until
 * the daemon stops (false).
 */
static bool wait_writable(void)
{
	struct pollfd p[2] = {
		{ .fd = dev_fd, .events = POLLOUT },
		{ .fd = wr.quit_fd, .events = POLLIN },
	};
	const struct timespec pause = { .tv_nsec = 10000000 };

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno != EINTR)
				nanosleep(&pause, NULL);	/* ENOMEM */
			continue;
		}
		if (p[1].revents)
			return false;
		if (p[0].revents)
			return true;	/* POLLERR too: the write says */
	}
}

/*
 * Send one answer to req with one writev(), its error f->status.  1 when
 * the kernel took it (or it is moot: then f->write_errors counts it), 0
 * when the device is full (try again on POLLOUT).  With wait (a writer
 * thread), a full device is waited for instead, and 0 means the daemon
 * is stopping.  Touches f->write_errors only, and logs: safe in a writer.
 */
static int try_answer(struct fetch *f, const struct snapblk_fetch_req *req,
		      bool wait)
{
	uint32_t error = (uint32_t)f->status;
	struct snapblk_fetch_resp resp = {
		.error = error,
		.id = req->id,
		.tier = error ? SNAPBLK_TIER_UNSPEC : f->tier,
		.retries = f->requests > 1 ? f->requests - 1 : 0,
	};
	struct iovec iov[2] = {
		{ .iov_base = &resp },
		{ .iov_base = f->buf, .iov_len = f->req.chunk_size },
	};
	unsigned int len, expect;
	size_t total;
	ssize_t n;
	int err;

	for (;;) {
		len = atomic_load(&resp_len);
		resp.len = len;
		iov[0].iov_len = len;
		total = len + (error ? 0 : f->req.chunk_size);
		n = writev(dev_fd, iov, error ? 1 : 2);
		if (n == (ssize_t)total)
			return 1;
		if (n >= 0) {
			log_err(0, NULL, "answer to request %llu: short write "
				"(%zd of %zu bytes)",
				(unsigned long long)req->id, n, total);
			f->write_errors++;
			return 1;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			if (wait && wait_writable())
				continue;
			return 0;
		}
		if (errno == EINVAL && len > SNAPBLK_FETCH_RESP_LEN_V3) {
			/*
			 * A module of API 3: no tier, no retries.  Said once,
			 * by whichever writer lowers it first.
			 */
			expect = len;
			if (atomic_compare_exchange_strong(
				    &resp_len, &expect,
				    SNAPBLK_FETCH_RESP_LEN_V3))
				log_info("%s takes %u-byte answers only (a "
					 "module older than API 4): answering "
					 "without tier and retries", opt.device,
					 SNAPBLK_FETCH_RESP_LEN_V3);
			continue;
		}
		break;
	}
	err = errno;
	f->write_errors++;
	if (err == ENOENT)
		log_err(err, NULL, "answer to request %llu (snapblk%u chunk "
			"%llu) refused: already answered or timed out",
			(unsigned long long)req->id, req->dev_index,
			(unsigned long long)req->chunk);
	else if (err == EINVAL)
		log_err(err, "please report this snapblkd bug",
			"answer to request %llu refused as malformed",
			(unsigned long long)req->id);
	else
		fatal(err, NULL, "writing an answer to %s", opt.device);
	return 1;
}

/*
 * Answer every request f serves (its own, then the one that joined it),
 * each noted in f->answers for count_written(): 1 when done, 0 when the
 * device is full (with wait: when stopping).  Safe in a writer thread.
 */
static int try_answer_all(struct fetch *f, bool wait)
{
	if (!f->sent_main) {
		if (!try_answer(f, &f->req, wait))
			return 0;
		f->sent_main = true;
		f->answers++;
	}
	if (f->has_joined) {
		if (!try_answer(f, &f->joined, wait))
			return 0;
		f->has_joined = false;
		f->answers++;
	}
	return 1;
}

/* ------------------------------------------------------------ writers */

static void writers_wake_loop(void)
{
	uint64_t one = 1;

	if (write(wr.event_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		abort();	/* cannot happen with a valid eventfd */
}

/* A writer thread: answers off wr.todo until wr.stop. */
static void *writer_main(void *arg)
{
	struct fetch *f;

	(void)arg;
	prctl(PR_SET_NAME, "snapblkd-write", 0, 0, 0);
	for (;;) {
		pthread_mutex_lock(&wr.lock);
		while (!wr.todo && !wr.stop)
			pthread_cond_wait(&wr.cond, &wr.lock);
		if (wr.stop) {
			pthread_mutex_unlock(&wr.lock);
			return NULL;
		}
		f = wr.todo;
		wr.todo = f->next;
		if (!wr.todo)
			wr.todo_tail = &wr.todo;
		pthread_mutex_unlock(&wr.lock);

		try_answer_all(f, true);

		pthread_mutex_lock(&wr.lock);
		f->next = wr.done;
		wr.done = f;
		pthread_mutex_unlock(&wr.lock);
		writers_wake_loop();
	}
}

/* Start n writers (after the device is open); 0 or a negative errno. */
static int writers_start(unsigned int n)
{
	int ret;

	if (!n)
		return 0;
	wr.event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	wr.quit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (wr.event_fd < 0 || wr.quit_fd < 0)
		return -errno;
	for (wr.n = 0; wr.n < n; wr.n++) {
		ret = pthread_create(&wr.threads[wr.n], NULL, writer_main,
				     NULL);
		if (ret)
			return -ret;
	}
	return 0;
}

/* answer(): f's answers (error in f->status) to a writer. */
static void writers_add(struct fetch *f)
{
	f->next = NULL;
	pthread_mutex_lock(&wr.lock);
	*wr.todo_tail = f;
	wr.todo_tail = &f->next;
	pthread_mutex_unlock(&wr.lock);
	pthread_cond_signal(&wr.cond);
	wr.held++;
}

/* Fetches the writers are done with: count them and end them. */
static void writers_complete(void)
{
	struct fetch *f, *n;
	uint64_t v;

	if (read(wr.event_fd, &v, sizeof(v)) < 0)
		v = 0;
	pthread_mutex_lock(&wr.lock);
	f = wr.done;
	wr.done = NULL;
	pthread_mutex_unlock(&wr.lock);
	for (; f; f = n) {
		n = f->next;
		wr.held--;
		if (f->sent_main && !f->has_joined) {
			fetch_answered(f);
		} else {
			/* Given up, stopping: the kernel re-queues it. */
			count_written(f);
			fetch_end(f);
		}
	}
}

/*
 * Stopping: the writers take no more work; the answers not begun are
 * dropped (the kernel re-queues their requests when the device is
 * closed), one being written is finished unless it waits for a full
 * device.  The writers hand back what they hold; writers_join() then.
 */
static void writers_stop(void)
{
	struct fetch *f, *n;
	uint64_t one = 1;

	if (!wr.n)
		return;
	pthread_mutex_lock(&wr.lock);
	wr.stop = true;
	f = wr.todo;
	wr.todo = NULL;
	wr.todo_tail = &wr.todo;
	pthread_mutex_unlock(&wr.lock);
	pthread_cond_broadcast(&wr.cond);
	if (write(wr.quit_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		abort();
	for (; f; f = n) {
		n = f->next;
		wr.held--;
		fetch_end(f);
	}
}

/* After writers_stop(), once none holds a fetch (wr.held 0). */
static void writers_join(void)
{
	unsigned int i;

	for (i = 0; i < wr.n; i++)
		pthread_join(wr.threads[i], NULL);
	wr.n = 0;
	if (wr.event_fd >= 0)
		close(wr.event_fd);
	if (wr.quit_fd >= 0)
		close(wr.quit_fd);
	wr.event_fd = wr.quit_fd = -1;
}

/* Answer f (error 0: its buffer holds the chunk) and count it. */
static void answer(struct fetch *f, uint32_t error)
{
	unlink_active(f);
	if (stopping) {
		fetch_end(f);	/* the kernel re-queues it */
		return;
	}
	f->status = error;	/* for the writes, and a retry of them */
	if (wr.n) {
		writers_add(f);
		return;
	}
	if (pending || !try_answer_all(f, false)) {
		f->next = NULL;
		*pending_tail = f;
		pending_tail = &f->next;
		return;
	}
	fetch_answered(f);
}

/* Answers the device would not take: POLLOUT came. */
static void flush_pending(void)
{
	struct fetch *f;

	while ((f = pending)) {
		if (!try_answer_all(f, false))
			return;
		pending = f->next;
		if (!pending)
			pending_tail = &pending;
		fetch_answered(f);
	}
}

static const char *fix_hint(enum fetch_result r)
{
	switch (r) {
	case FR_MISSING:
		return "the chunk is not in the store: was the image "
		       "published to it (snapblk-build create --store)?";
	case FR_DENIED:
		return "the store refused the request: see the reason";
	case FR_BAD:
		return "the store holds something else at the chunk's path: "
		       "publish the image again";
	case FR_TRANSIENT:
		return "the store did not answer in time: is it up? "
		       "(the kernel's limit is the device's fetch_timeout_ms)";
	default:
		return NULL;
	}
}

static void start_attempt(struct fetch *f)
{
	f->be = stores[f->store];
	f->retry_at_ms = 0;
	f->started_ms = now_ms();
	/* A group counts the requests to its replicas itself. */
	if (strcmp(f->be->ops->kind, "group"))
		f->requests++;
	f->be->ops->start(f->be, f);
}

/* No store could deliver f: answer it, and say why once. */
static void give_up(struct fetch *f, const char *note)
{
	uint32_t error = f->missing == opt.nstores ? ENOENT : EIO;

	log_err(0, fix_hint(f->result), "snapblk%u chunk %llu: %s%s",
		f->req.dev_index, (unsigned long long)f->req.chunk, f->why,
		note);
	answer(f, error);
}

/* The first store from i on that may still deliver f, or nstores. */
static unsigned int next_candidate(const struct fetch *f, unsigned int i)
{
	while (i < opt.nstores && (f->definite & (1U << i)))
		i++;
	return i;
}

static uint32_t jitter(uint32_t ms)
{
	uint32_t r;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (uint32_t)now_ms() * 2654435761U;
	/* Uniform in [ms / 2, ms * 3 / 2). */
	return ms / 2 + r % (ms ? ms : 1);
}

/*
 * The attempt at f->store is over without the chunk: the next store that
 * may have it, else (a round over every store done) a retry of those that
 * failed transiently, after a backoff, within the deadline and --retries;
 * else give up.
 */
static void advance(struct fetch *f)
{
	int64_t now = now_ms(), delay;
	unsigned int next = next_candidate(f, f->store + 1);
	char note[96];

	if (next < opt.nstores) {
		if (opt.verbose)
			log_info("snapblk%u chunk %llu: %s; trying %s",
				 f->req.dev_index,
				 (unsigned long long)f->req.chunk, f->detail,
				 stores[next]->url);
		f->store = next;
		start_attempt(f);
		return;
	}
	next = next_candidate(f, 0);
	if (next >= opt.nstores) {
		give_up(f, "");
		return;
	}
	/* Every store left failed transiently in this round. */
	f->attempt++;
	delay = DEFAULT_BACKOFF_MS << (f->attempt - 1 < 5 ? f->attempt - 1 : 5);
	if (delay > MAX_BACKOFF_MS)
		delay = MAX_BACKOFF_MS;
	delay = jitter(delay);
	/* The last retry comes just before the deadline, not never. */
	if (now + delay >= f->deadline_ms - LAST_TRY_MS &&
	    f->deadline_ms - LAST_TRY_MS - now >= MIN_BACKOFF_MS)
		delay = f->deadline_ms - LAST_TRY_MS - now;
	if (f->attempt <= opt.retries && now + delay < f->deadline_ms) {
		cnt.retries++;
		if (opt.verbose)
			log_info("snapblk%u chunk %llu: %s; retry %u in %lld ms",
				 f->req.dev_index,
				 (unsigned long long)f->req.chunk, f->why,
				 f->attempt, (long long)delay);
		f->store = next;
		f->retry_at_ms = now + delay;
		f->why[0] = '\0';
		return;
	}
	snprintf(note, sizeof(note), " (%s after %u %s)",
		 f->attempt <= opt.retries ? "deadline reached" :
		 "--retries reached", f->attempt,
		 f->attempt == 1 ? "attempt" : "attempts");
	give_up(f, note);
}

/* Where stores[f->store] found the chunk, as an SNAPBLK_TIER_*. */
static uint32_t store_tier(const struct fetch *f)
{
	unsigned int k = tier_base[f->store];

	if (!strcmp(stores[f->store]->ops->kind, "group"))
		k += f->winner;
	if (k >= SNAPBLK_TIER_STORES)
		k = SNAPBLK_TIER_STORES - 1;
	return SNAPBLK_TIER_STORE + k;
}

void fetch_done(struct fetch *f)
{
	struct backend *be;
	int64_t due;
	size_t n;
	int ret;

	/* --delay-ms: run_timers() calls again once the time has come. */
	due = f->started_ms + opt.delay_ms;
	if (opt.delay_ms && !stopping && now_ms() < due) {
		f->held_until_ms = due;
		return;
	}
	f->held_until_ms = 0;
	if (f->parent) {
		group_sub_done(f);
		return;
	}
	be = stores[f->store];
	n = strlen(f->why);
	if (stopping) {
		unlink_active(f);
		fetch_end(f);
		return;
	}
	if (f->result != FR_OK)
		snprintf(f->why + n, sizeof(f->why) - n, "%s%s", n ? "; " : "",
			 f->detail);
	switch (f->result) {
	case FR_OK:
		cnt.from_store++;
		f->tier = store_tier(f);
		if (dcache) {
			ret = sb_dcache_put(dcache, f->req.addr, f->buf,
					    f->req.chunk_size);
			if (ret)
				log_err(-ret, NULL, "caching %s", f->name);
		}
		if (opt.verbose)
			log_info("snapblk%u chunk %llu: %s: %u bytes from %s",
				 f->req.dev_index,
				 (unsigned long long)f->req.chunk, f->name,
				 f->req.chunk_size, be->url);
		answer(f, 0);
		return;
	case FR_MISSING:
		f->missing++;
		f->definite |= 1U << f->store;
		advance(f);
		return;
	case FR_DENIED:
	case FR_BAD:
		f->definite |= 1U << f->store;
		advance(f);
		return;
	case FR_TRANSIENT:
		advance(f);
		return;
	case FR_LOCAL:
	default:
		give_up(f, "");
		return;
	}
}

/*
 * A replica's answer held back by --delay-ms, due by now: handed on
 * (one per call, as that changes f->subs, and may end f): true.  Else
 * false, and the next one's time lowers *next.
 */
static bool release_held_sub(struct fetch *f, int64_t now, int64_t *next)
{
	unsigned int i;
	struct fetch *s;

	for (i = 0; i < f->nsubs; i++) {
		s = f->subs[i];
		if (!s->held_until_ms)
			continue;
		if (s->held_until_ms <= now) {
			*next = now;	/* more may be due */
			fetch_done(s);
			return true;
		}
		if (s->held_until_ms < *next)
			*next = s->held_until_ms;
	}
	return false;
}

/* Retries due, answers held by --delay-ms, and hedges. */
static int64_t run_timers(void)
{
	int64_t now = now_ms(), next = now + 1000;
	struct fetch *f, *n;

	for (f = active; f; f = n) {
		n = f->next;
		if (f->held_until_ms) {
			if (f->held_until_ms <= now)
				fetch_done(f);
			else if (f->held_until_ms < next)
				next = f->held_until_ms;
			continue;
		}
		if (f->busy && f->nsubs && release_held_sub(f, now, &next))
			continue;
		if (f->busy && f->hedge_at_ms) {
			if (f->hedge_at_ms <= now)
				group_hedge(f);
			else if (f->hedge_at_ms < next)
				next = f->hedge_at_ms;
		}
		if (f->busy)
			continue;
		if (f->retry_at_ms && f->retry_at_ms <= now) {
			start_attempt(f);
			continue;
		}
		if (f->retry_at_ms && f->retry_at_ms < next)
			next = f->retry_at_ms;
	}
	return next;
}

/* ----------------------------------------------------------- requests */

/* A request we cannot make sense of: EPROTO, instead of guessing. */
static bool request_valid(const struct snapblk_fetch_req *req, size_t have)
{
	if (req->len < sizeof(*req) || req->len > have) {
		log_err(0, "snapblkd and the snapblk module speak different "
			"fetch protocols: install matching versions",
			"request %llu: record length %u, expected at least %zu",
			(unsigned long long)req->id, req->len, sizeof(*req));
		return false;
	}
	if (!sb_chunk_size_valid(req->chunk_size)) {
		log_err(0, NULL, "request %llu: invalid chunk size %u",
			(unsigned long long)req->id, req->chunk_size);
		return false;
	}
	return true;
}

/* An answer without data, for a request that got no fetch. */
static void answer_bare(const struct snapblk_fetch_req *req, uint32_t error)
{
	struct fetch f = { .req = *req, .status = error };

	f.req.chunk_size = 0;
	if (!try_answer(&f, req, false))
		log_err(EAGAIN, NULL, "answer to request %llu dropped",
			(unsigned long long)req->id);
	cnt.errors += 1 + f.write_errors;
}

/* Start the fetch of a job taken off the queue (and free the job). */
static void start_job(struct jobq_job *j)
{
	const struct snapblk_fetch_req *req = &j->req;
	int64_t now = now_ms(), deadline;
	struct fetch *f;
	int ret;

	f = fetch_new(req->chunk_size);
	if (!f) {
		log_err(ENOMEM, NULL, "snapblk%u chunk %llu", req->dev_index,
			(unsigned long long)req->chunk);
		answer_bare(req, EIO);
		if (j->has_joined)
			answer_bare(&j->joined, EIO);
		free(j);
		return;
	}
	f->req = *req;
	f->joined = j->joined;
	f->has_joined = j->has_joined;
	f->background = j->kind == JOBQ_BACKGROUND;
	free(j);
	req = &f->req;
	if (f->background)
		cnt.bg_started++;
	else
		cnt.demand_started++;
	sb_store_name(req->addr, f->name);
	deadline = now + DEFAULT_TIMEOUT_MS;
	if (req->flags & SNAPBLK_FETCH_F_DEADLINE) {
		struct timespec t;
		int64_t kns;

		clock_gettime(CLOCK_MONOTONIC, &t);
		kns = (int64_t)req->deadline_ns;
		/* A joined request may be waited for longer. */
		if (f->has_joined && (f->joined.flags &
				      SNAPBLK_FETCH_F_DEADLINE) &&
		    (int64_t)f->joined.deadline_ns > kns)
			kns = (int64_t)f->joined.deadline_ns;
		deadline = now + (kns - (t.tv_sec * 1000000000LL +
					 t.tv_nsec)) / 1000000 -
			   DEADLINE_MARGIN_MS;
	}
	f->deadline_ms = deadline;
	inflight++;
	f->next = active;
	active = f;

	if (dcache && (req->flags & SNAPBLK_FETCH_F_REFETCH)) {
		cnt.refetches++;
		ret = sb_dcache_drop(dcache, req->addr);
		log_info("snapblk%u chunk %llu (%s): the kernel rejected the "
			 "last answer%s; fetching it from the store",
			 req->dev_index, (unsigned long long)req->chunk,
			 f->name, ret ? "" : " (dropped from the disk cache)");
	} else if (dcache) {
		ret = sb_dcache_get(dcache, req->addr, f->buf,
				    req->chunk_size);
		if (!ret) {
			f->from_cache = true;
			f->tier = SNAPBLK_TIER_DISK;
			if (opt.verbose)
				log_info("snapblk%u chunk %llu: %s: from the "
					 "disk cache", req->dev_index,
					 (unsigned long long)req->chunk,
					 f->name);
			answer(f, 0);
			return;
		}
		if (ret != -ENOENT)
			log_err(-ret, NULL, "reading %s from the disk cache",
				f->name);
	} else if (req->flags & SNAPBLK_FETCH_F_REFETCH) {
		cnt.refetches++;
	}
	if (deadline <= now) {
		snprintf(f->detail, sizeof(f->detail),
			 "its deadline has passed");
		f->result = FR_TRANSIENT;
		snprintf(f->why, sizeof(f->why), "%s", f->detail);
		give_up(f, " (when it was read)");
		return;
	}
	start_attempt(f);
}

/* Start what the slots allow: demand first, background in its share. */
static void schedule(void)
{
	struct jobq_job *j;

	if (stopping)
		return;
	while ((j = jobq_take(&queue, inflight)))
		start_job(j);
}

/* A valid request read: into its queue. */
static void enqueue(const struct snapblk_fetch_req *req)
{
	int ret;

	if (!request_valid(req, req->len)) {
		answer_bare(req, EPROTO);
		return;
	}
	ret = jobq_add(&queue, req);
	if (ret < 0) {
		log_err(-ret, NULL, "snapblk%u chunk %llu", req->dev_index,
			(unsigned long long)req->chunk);
		answer_bare(req, EIO);
		return;
	}
	if (ret && opt.verbose)
		log_info("snapblk%u chunk %llu: joins the queued background "
			 "fetch of that chunk, now demand", req->dev_index,
			 (unsigned long long)req->chunk);
}

/* Read as many requests as the queues have room for, and start them. */
static void read_requests(void)
{
	static uint8_t buf[MAX_READ_RECORDS * sizeof(struct snapblk_fetch_req)];
	struct snapblk_fetch_req req;
	unsigned int room = queue_max - jobq_len(&queue);
	size_t want, off;
	ssize_t n;

	if (room > MAX_READ_RECORDS)
		room = MAX_READ_RECORDS;
	want = room * sizeof(struct snapblk_fetch_req);
	n = read(dev_fd, buf, want);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0 && errno == EINVAL) {
		fatal(errno, "snapblkd and the snapblk module speak different "
		      "fetch protocols: install matching versions",
		      "reading requests (%zu bytes) from %s", want,
		      opt.device);
		return;
	}
	if (n < 0) {
		fatal(errno, NULL, "reading requests from %s", opt.device);
		return;
	}
	if (n == 0) {
		fatal(0, "was the snapblk module unloaded?",
		      "%s was closed by the other side", opt.device);
		return;
	}
	for (off = 0; off + offsetof(struct snapblk_fetch_req, chunk_size) <
		      (size_t)n;) {
		size_t have = n - off, len;

		memset(&req, 0, sizeof(req));
		memcpy(&req, buf + off, have < sizeof(req) ? have : sizeof(req));
		len = req.len;
		if (len < sizeof(req) || len > have) {
			if (have >= offsetof(struct snapblk_fetch_req, addr))
				answer_bare(&req, EPROTO);
			log_err(0, "snapblkd and the snapblk module speak "
				"different fetch protocols: install matching "
				"versions", "request %llu: record length %u, "
				"expected %zu (%zu bytes read)",
				(unsigned long long)req.id, req.len,
				sizeof(req), have);
			break;
		}
		enqueue(&req);
		off += len;
	}
	schedule();
}

/* -------------------------------------------------------- store setup */

int backend_open(const char *url, struct backend **out, char *msg,
		 size_t msglen)
{
	struct backend *be = calloc(1, sizeof(*be));
	int ret;

	if (!be) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	snprintf(be->url, sizeof(be->url), "%s", url);
	if (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8))
		ret = store_http_open(url, be, msg, msglen);
	else if (!strncmp(url, "s3://", 5))
		ret = store_s3_open(url, be, msg, msglen);
	else if (!strncmp(url, "group:", 6))
		ret = store_group_open(url + 6, be, msg, msglen);
	else if (!strncmp(url, "dir:", 4))
		ret = store_dir_open(url + 4, be, msg, msglen);
	else if (strstr(url, "://")) {
		snprintf(msg, msglen, "%s: unknown kind of store (give a "
			 "directory, http://, https:// or s3://)", url);
		ret = -EINVAL;
	} else {
		ret = store_dir_open(url, be, msg, msglen);
	}
	if (ret) {
		free(be);
		return ret;
	}
	*out = be;
	return 0;
}

/* ----------------------------------------------------------- start-up */

static unsigned int parse_uint(const char *what, const char *s,
			       unsigned long min, unsigned long max)
{
	unsigned long v;

	if (parse_ulong(s, min, max, &v))
		usage_die("invalid %s '%s': expected %lu to %lu", what, s,
			  min, max);
	return v;
}

/* SIZE: sb_parse_size(), not 0. */
static uint64_t parse_size(const char *what, const char *s)
{
	uint64_t v;

	if (sb_parse_size(s, &v) || !v)
		usage_die("invalid %s '%s': give bytes, or a number with K, "
			  "M, G or T", what, s);
	return v;
}

static void parse_args(int argc, char **argv)
{
	enum {
		OPT_DEVICE_FD = 256, OPT_SYSLOG, OPT_STOP_TIMEOUT,
		OPT_CACHE_DIR, OPT_CACHE_SIZE, OPT_INFLIGHT, OPT_RETRIES,
		OPT_CONNECT, OPT_CA, OPT_S3_ENDPOINT, OPT_S3_STYLE,
		OPT_S3_REGION, OPT_AWS_PROFILE, OPT_GROUP, OPT_HEDGE,
		OPT_DELAY, OPT_WRITERS,
	};
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "store-group", required_argument, NULL, OPT_GROUP },
		{ "hedge-ms", required_argument, NULL, OPT_HEDGE },
		{ "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
		{ "cache-size", required_argument, NULL, OPT_CACHE_SIZE },
		{ "max-inflight", required_argument, NULL, OPT_INFLIGHT },
		{ "jobs", required_argument, NULL, 'j' },
		{ "writers", required_argument, NULL, OPT_WRITERS },
		{ "retries", required_argument, NULL, OPT_RETRIES },
		{ "connect-timeout", required_argument, NULL, OPT_CONNECT },
		{ "ca-file", required_argument, NULL, OPT_CA },
		{ "s3-endpoint", required_argument, NULL, OPT_S3_ENDPOINT },
		{ "s3-style", required_argument, NULL, OPT_S3_STYLE },
		{ "s3-region", required_argument, NULL, OPT_S3_REGION },
		{ "aws-profile", required_argument, NULL, OPT_AWS_PROFILE },
		{ "device", required_argument, NULL, 'd' },
		{ "device-fd", required_argument, NULL, OPT_DEVICE_FD },
		{ "stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT },
		{ "delay-ms", required_argument, NULL, OPT_DELAY },
		{ "syslog", no_argument, NULL, OPT_SYSLOG },
		{ "foreground", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	bool have_device = false;
	int o;

	opterr = 0;
	while ((o = getopt_long(argc, argv, ":s:j:d:fvhV", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			if (opt.nstores == MAX_STORES)
				usage_die("at most %d --store options",
					  MAX_STORES);
			opt.stores[opt.nstores++] = optarg;
			break;
		case OPT_GROUP: {
			char *g;

			if (opt.nstores == MAX_STORES)
				usage_die("at most %d --store and --store-group "
					  "options", MAX_STORES);
			if (asprintf(&g, "group:%s", optarg) < 0)
				die(EXIT_FAIL, ENOMEM, NULL, "parsing options");
			opt.stores[opt.nstores++] = g;
			break;
		}
		case OPT_HEDGE:
			bopts.hedge_ms = parse_uint("hedge delay", optarg, 1,
						    600000);
			break;
		case OPT_CACHE_DIR:
			opt.cache_dir = optarg;
			break;
		case OPT_CACHE_SIZE:
			opt.cache_size = parse_size("cache size", optarg);
			break;
		case OPT_INFLIGHT:
			opt.max_inflight = parse_uint("fetch count", optarg, 1,
						      MAX_INFLIGHT);
			break;
		case 'j':
			bopts.jobs = parse_uint("job count", optarg, 1,
						MAX_JOBS);
			break;
		case OPT_WRITERS:
			opt.writers = parse_uint("writer count", optarg, 0,
						 MAX_WRITERS);
			break;
		case OPT_RETRIES:
			opt.retries = parse_uint("retry count", optarg, 0, 100);
			break;
		case OPT_CONNECT:
			bopts.connect_timeout_ms =
				parse_uint("connect timeout", optarg, 1,
					   3600000);
			break;
		case OPT_CA:
			bopts.ca_file = optarg;
			break;
		case OPT_S3_ENDPOINT:
			bopts.s3_endpoint = optarg;
			break;
		case OPT_S3_STYLE:
			if (strcmp(optarg, "path") && strcmp(optarg, "virtual"))
				usage_die("--s3-style takes path or virtual, "
					  "not '%s'", optarg);
			bopts.s3_style = optarg;
			break;
		case OPT_S3_REGION:
			bopts.s3_region = optarg;
			break;
		case OPT_AWS_PROFILE:
			bopts.aws_profile = optarg;
			break;
		case 'd':
			opt.device = optarg;
			have_device = true;
			break;
		case OPT_DEVICE_FD:
			opt.device_fd = parse_uint("descriptor", optarg, 0,
						   INT_MAX);
			break;
		case OPT_STOP_TIMEOUT:
			opt.stop_timeout = parse_uint("stop timeout", optarg,
						      0, MAX_STOP_TIMEOUT);
			break;
		case OPT_DELAY:
			opt.delay_ms = parse_uint("delay", optarg, 0, 600000);
			break;
		case OPT_SYSLOG:
			opt.syslog = true;
			break;
		case 'f':
			break;	/* always in the foreground */
		case 'v':
			opt.verbose = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(EXIT_OK);
		case 'V':
			printf("snapblkd %s (snapblk API %u)\n",
			       SNAPBLK_TOOLS_VERSION, SNAPBLK_API_VERSION);
			exit(EXIT_OK);
		case ':':
			usage_die("option '%s' needs an argument",
				  argv[optind - 1]);
		default:
			if (optopt)
				usage_die("unknown option '-%c'", optopt);
			usage_die("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_die("unexpected argument '%s'", argv[optind]);
	if (!opt.nstores)
		usage_die("--store is required (a directory, http(s):// or "
			  "s3:// URL)");
	if (have_device && opt.device_fd >= 0)
		usage_die("--device and --device-fd exclude each other");
	if (!opt.cache_dir != !opt.cache_size)
		usage_die("--cache-dir and --cache-size go together");
	if (opt.writers < 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		opt.writers = cpus < 1 ? 1 : cpus > DEFAULT_WRITERS_MAX ?
			      DEFAULT_WRITERS_MAX : (int)cpus;
	}
}

/* Tiers count every store, each replica of a group too. */
static unsigned int tiers_of(unsigned int i)
{
	return strcmp(stores[i]->ops->kind, "group") ? 1 :
	       group_size(stores[i]);
}

static void open_stores(void)
{
	char msg[512];
	unsigned int i;
	int ret;

	for (i = 0; i < opt.nstores; i++) {
		ret = backend_open(opt.stores[i], &stores[i], msg, sizeof(msg));
		if (ret)
			die(EXIT_FAIL, 0, NULL, "%s", msg);
		if (i + 1 < opt.nstores)
			tier_base[i + 1] = tier_base[i] + tiers_of(i);
	}
	if (!opt.cache_dir)
		return;
	ret = sb_dcache_open(opt.cache_dir, opt.cache_size, msg, sizeof(msg),
			     &dcache);
	if (ret == -EBUSY)
		die(EXIT_FAIL, 0, "one snapblkd per disk cache: stop the "
		    "other, or give another --cache-dir",
		    "disk cache %s: %s", opt.cache_dir, msg);
	if (ret)
		die(EXIT_FAIL, 0, NULL, "disk cache %s: %s", opt.cache_dir,
		    msg);
}

static void open_device(void)
{
	static char fd_name[32];
	const char *hint;
	int flags;

	if (opt.device_fd >= 0) {
		snprintf(fd_name, sizeof(fd_name), "descriptor %d",
			 opt.device_fd);
		opt.device = fd_name;
		dev_fd = opt.device_fd;
		flags = fcntl(dev_fd, F_GETFL);
		if (flags < 0 || fcntl(dev_fd, F_SETFL, flags | O_NONBLOCK))
			die(EXIT_FAIL, errno, "pass a descriptor that is open "
			    "in snapblkd", "using --device-fd %d", dev_fd);
		fcntl(dev_fd, F_SETFD, FD_CLOEXEC);
		return;
	}
	dev_fd = open(opt.device, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (dev_fd >= 0)
		return;
	if (errno == EACCES || errno == EPERM)
		hint = "the fetch device is root only: are you root?";
	else if (errno == ENOENT || errno == ENODEV || errno == ENXIO)
		hint = "is the snapblk module loaded (modprobe snapblk)?";
	else
		hint = "is the snapblk module loaded? are you root?";
	die(EXIT_FAIL, errno, hint, "opening %s", opt.device);
}

/* SIGTERM, SIGINT and SIGUSR1, blocked, read from a signalfd. */
static int setup_signals(void)
{
	sigset_t set;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL))
		die(EXIT_FAIL, errno, NULL, "blocking signals");
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		die(EXIT_FAIL, errno, NULL, "creating a signalfd");
	return fd;
}

/* "tiers: disk N, store 0 N, ...": answers with data, by tier. */
static void report_tiers(void)
{
	unsigned int t, last = tier_base[opt.nstores - 1] +
			       tiers_of(opt.nstores - 1);
	char line[512];
	size_t n;

	if (last > SNAPBLK_TIER_STORES)
		last = SNAPBLK_TIER_STORES;
	n = snprintf(line, sizeof(line), "tiers: disk %llu",
		     (unsigned long long)cnt.tiers[SNAPBLK_TIER_DISK]);
	for (t = 0; t < last && n < sizeof(line); t++)
		n += snprintf(line + n, sizeof(line) - n, ", store %u %llu", t,
			      (unsigned long long)
			      cnt.tiers[SNAPBLK_TIER_STORE + t]);
	log_info("%s", line);
}

static void report(const char *what)
{
	struct sb_dcache_stats s;
	uint64_t hedges, wins;
	unsigned int i;

	log_info("%s: %llu fetched, %llu missing, %llu errors, %llu bytes",
		 what, (unsigned long long)cnt.fetched,
		 (unsigned long long)cnt.missing,
		 (unsigned long long)cnt.errors,
		 (unsigned long long)cnt.bytes);
	log_info("stores: %llu chunks fetched, %llu retries, %llu "
		 "re-fetches after a rejected answer",
		 (unsigned long long)cnt.from_store,
		 (unsigned long long)cnt.retries,
		 (unsigned long long)cnt.refetches);
	log_info("fetches: demand %llu started, %llu completed; background "
		 "%llu started, %llu completed; %llu background joined by a "
		 "demand request; %u queued",
		 (unsigned long long)cnt.demand_started,
		 (unsigned long long)cnt.demand_done,
		 (unsigned long long)cnt.bg_started,
		 (unsigned long long)cnt.bg_done,
		 (unsigned long long)queue.promoted, jobq_len(&queue));
	report_tiers();
	for (i = 0; i < opt.nstores; i++) {
		if (strcmp(stores[i]->ops->kind, "group"))
			continue;
		group_stats(stores[i], &hedges, &wins);
		log_info("store %u (group): %llu hedged requests, %llu won by "
			 "the second replica", i + 1,
			 (unsigned long long)hedges, (unsigned long long)wins);
	}
	if (!dcache)
		return;
	sb_dcache_get_stats(dcache, &s);
	log_info("disk cache: %llu hits, %llu misses, %llu inserted, %llu "
		 "evicted, %llu dropped, %llu chunks, %llu of %llu bytes",
		 (unsigned long long)s.hits, (unsigned long long)s.misses,
		 (unsigned long long)s.inserts,
		 (unsigned long long)s.evictions,
		 (unsigned long long)s.drops, (unsigned long long)s.chunks,
		 (unsigned long long)s.bytes,
		 (unsigned long long)s.max_bytes);
}

/*
 * Let go of the device while a worker left behind may still use dev_fd:
 * the kernel re-queues what this daemon had claimed now, and a late
 * answer goes nowhere instead of to a reused descriptor.
 */
static void release_device(void)
{
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

	if (null >= 0 && dup2(null, dev_fd) == dev_fd) {
		close(null);
		return;
	}
	close(dev_fd);
	if (null >= 0)
		close(null);
}


/* Signals: true when one asks to stop (a second one during the stop, too). */
static bool take_signals(int sig_fd)
{
	struct signalfd_siginfo si;
	bool stop = false;

	while (read(sig_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGUSR1) {
			report("counters");
			continue;
		}
		if (stopping)
			log_info("%s again: not waiting for the workers",
				 strsignal(si.ssi_signo));
		else
			log_info("%s: stopping", strsignal(si.ssi_signo));
		stop = true;
	}
	return stop;
}

/* Stop: drop every fetch no thread holds; the kernel re-queues them. */
static void begin_stop(void)
{
	struct fetch *f, *n;

	stopping = true;
	for (f = active; f; f = n) {
		n = f->next;
		if (f->busy)
			f->be->ops->cancel(f->be, f);
		if (!f->busy) {
			unlink_active(f);
			fetch_end(f);
		}
	}
	while ((f = pending)) {
		pending = f->next;
		count_written(f);	/* a request answered, its joined not */
		fetch_end(f);
	}
	pending_tail = &pending;
	writers_stop();
	jobq_clear(&queue);
}

/*
 * The event loop, until a stop.  Returns the number of directory reads
 * still running when the stop gave up waiting for them (and wr.held
 * says how many answers the writers still hold).
 */
static unsigned int run(int sig_fd)
{
	int64_t stop_deadline = 0, next, now;
	struct curl_waitfd w[5];
	int running, nw, timeout, pool_i, dev_i, wr_i;
	uint64_t v;

	for (;;) {
		next = run_timers();
		schedule();
		now = now_ms();
		if (stopping) {
			if (!store_dir_busy() && !wr.held)
				return 0;
			if (now >= stop_deadline)
				return store_dir_busy();
			next = stop_deadline;
		}
		nw = 0;
		pool_i = dev_i = wr_i = -1;
		w[nw++] = (struct curl_waitfd){ .fd = sig_fd,
						 .events = CURL_WAIT_POLLIN };
		w[nw++] = (struct curl_waitfd){ .fd = stop_fd,
						 .events = CURL_WAIT_POLLIN };
		if (store_dir_event_fd() >= 0) {
			pool_i = nw;
			w[nw++] = (struct curl_waitfd){
				.fd = store_dir_event_fd(),
				.events = CURL_WAIT_POLLIN };
		}
		if (wr.event_fd >= 0) {
			wr_i = nw;
			w[nw++] = (struct curl_waitfd){ .fd = wr.event_fd,
							 .events = CURL_WAIT_POLLIN };
		}
		if (!stopping) {
			short ev = 0;

			if (jobq_len(&queue) < queue_max)
				ev |= CURL_WAIT_POLLIN;
			if (pending)
				ev |= CURL_WAIT_POLLOUT;
			if (ev) {
				dev_i = nw;
				w[nw++] = (struct curl_waitfd){ .fd = dev_fd,
								 .events = ev };
			}
		}
		timeout = next > now ? (int)(next - now) : 0;
		if (curl_multi_poll(loop_multi, w, nw, timeout, NULL) !=
		    CURLM_OK) {
			fatal(0, NULL, "waiting for events: curl_multi_poll "
			      "failed");
			begin_stop();
			stop_deadline = now_ms();
			continue;
		}
		curl_multi_perform(loop_multi, &running);
		store_http_complete();
		if (pool_i >= 0 && w[pool_i].revents)
			store_dir_complete();
		if (wr_i >= 0 && w[wr_i].revents)
			writers_complete();
		if (w[0].revents && take_signals(sig_fd)) {
			if (stopping) {
				return store_dir_busy();
			}
			begin_stop();
			stop_deadline = now_ms() + opt.stop_timeout * 1000LL;
			continue;
		}
		if (w[1].revents && !stopping) {
			/* A fatal error: stop at once. */
			if (read(stop_fd, &v, sizeof(v)) < 0)
				v = 0;
			begin_stop();
			stop_deadline = now_ms() + opt.stop_timeout * 1000LL;
			continue;
		}
		if (stopping)
			continue;
		if (dev_i >= 0) {
			if (w[dev_i].revents & CURL_WAIT_POLLOUT)
				flush_pending();
			if ((w[dev_i].revents & CURL_WAIT_POLLIN) &&
			    jobq_len(&queue) < queue_max)
				read_requests();
		}
	}
}

/*
 * Exit without the busy readers, stuck in a directory store, and the
 * writers still in a write (wr.held).
 */
static noreturn void exit_without(unsigned int busy)
{
	release_device();
	if (busy)
		log_err(0, "the kernel re-queues their requests for the next "
			"daemon; see STOPPING in snapblkd(8)",
			"%u %s still reading from the store %u s after the "
			"stop: exiting without %s", busy,
			busy == 1 ? "worker" : "workers", opt.stop_timeout,
			busy == 1 ? "it" : "them");
	if (wr.held)
		log_err(0, "the kernel re-queues their requests for the next "
			"daemon; see STOPPING in snapblkd(8)",
			"%u %s still being written at the stop: exiting "
			"without %s", wr.held,
			wr.held == 1 ? "answer" : "answers",
			wr.held == 1 ? "it" : "them");
	report("stopped");
	if (opt.syslog)
		closelog();
	/* exit_group(): ends every thread but one in uninterruptible sleep. */
	_exit(atomic_load(&exit_status));
}

int main(int argc, char **argv)
{
	unsigned int i, busy;
	int sig_fd, ret;

	prog_name = "snapblkd";
	usage_hint = "run 'snapblkd --help' for usage";
	parse_args(argc, argv);
	jobq_init(&queue, opt.max_inflight);
	queue_max = opt.max_inflight > QUEUE_MIN ? opt.max_inflight : QUEUE_MIN;
	if (opt.syslog)
		openlog("snapblkd", LOG_PID, LOG_DAEMON);
	/* First, so that an early SIGTERM is a clean stop too. */
	sig_fd = setup_signals();
	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		die(EXIT_FAIL, 0, NULL, "initialising libcurl");
	loop_multi = curl_multi_init();
	stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!loop_multi || stop_fd < 0)
		die(EXIT_FAIL, stop_fd < 0 ? errno : ENOMEM, NULL,
		    "setting up");
	curl_multi_setopt(loop_multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	open_stores();
	open_device();

	log_info("serving %s from %u %s%s%s, %u fetches at once (%u for "
		 "background work)", opt.device, opt.nstores,
		 opt.nstores == 1 ? "store" : "stores",
		 dcache ? " through the disk cache " : "",
		 dcache ? opt.cache_dir : "", opt.max_inflight,
		 queue.bg_limit);
	if (opt.delay_ms)
		log_info("every store request takes at least %u ms "
			 "(--delay-ms)", opt.delay_ms);
	for (i = 0; i < opt.nstores; i++)
		log_info("store %u: %s (%s)", i + 1, stores[i]->url,
			 stores[i]->ops->kind);
	ret = writers_start(opt.writers);
	if (ret)
		die(EXIT_FAIL, -ret, NULL, "starting the answer writers");
	if (opt.writers)
		log_info("answers written by %d %s", opt.writers,
			 opt.writers == 1 ? "thread" : "threads");
	else
		log_info("answers written by the event loop (--writers 0)");
	busy = run(sig_fd);
	if (busy || wr.held)
		exit_without(busy);
	writers_join();
	/* The kernel re-queues every request read but not answered. */
	close(dev_fd);
	report("stopped");
	for (i = 0; i < opt.nstores; i++) {
		stores[i]->ops->close(stores[i]);
		free(stores[i]);
	}
	if (dcache)
		sb_dcache_close(dcache);
	curl_multi_cleanup(loop_multi);
	curl_global_cleanup();
	return atomic_load(&exit_status);
}
