// SPDX-License-Identifier: GPL-2.0
/*
 * A hostile fetch daemon: the test plays the daemon on /dev/snapblk-fetch
 * (no snapblkd runs) for a device of real chunks (random plaintext, each
 * sealed as Documentation/format.md says), while reader threads read
 * random ranges of the device, with O_DIRECT and buffered.  The daemon
 * answers each request with a random mix of the right ciphertext, wrong
 * ids (never asked), the right id with a short, long or empty chunk,
 * random bytes or another chunk's ciphertext, duplicate and late answers
 * (after the deadline), error answers, malformed headers, no answer at
 * all, answers through another open file, writev() with a header or
 * payload in inaccessible memory (EFAULT), reads with a buffer too small
 * for a request or inaccessible, answers held back and given out of
 * order, and closing and reopening the device with requests claimed.
 * Meanwhile a second device, whose requests the daemon always answers
 * right, is read without pause, so that new misses keep arriving while
 * other fetches wait for their deadline.
 *
 * Every request record carries SNAPBLK_FETCH_F_DEADLINE and a deadline
 * no later than fetch_timeout_ms from now; a bad answer (wrong length or
 * bytes) taken by the kernel is followed by at most one re-fetch of that
 * address, flagged SNAPBLK_FETCH_F_REFETCH, with the bad answer's
 * deadline.  Every read of the device returns exactly the image's bytes
 * or fails with EIO: never wrong bytes, never a hang (a watchdog fails a read
 * still waiting 3 * fetch_timeout_ms + 5 s after it began).  Every
 * answer the kernel must refuse is refused (ENOENT for a wrong, second,
 * late or foreign id; EINVAL for a malformed record; EFAULT), and every
 * well-formed answer to a live request is taken.  At the end the daemon
 * answers everything correctly and the whole device reads back right.
 *
 * SNAPBLK_FUZZ_SECONDS (default 60) sets how long the storm runs;
 * SNAPBLK_FUZZ_SEED replays the image and the daemon's choices (readers
 * are threads, so only approximately).  The counts of each case are
 * printed.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <netlink/genl/genl.h>

#include "kselftest_harness.h"
#include "lib.h"
#include "genl.h"
#include "fetchlib.h"

#define CHUNK		(64U << 10)
#define NCHUNKS		64
#define ZERO_EVERY	9		/* chunks 8, 17, ...: ZERO */
#define DUP_EVERY	10		/* chunks 10, 20, ...: chunk 1 again */
#define TIMEOUT_MS	1000
#define NREADERS	4		/* of the hostile device */
#define NSTEADY		3		/* of the steady device */
#define NALL		(NREADERS + NSTEADY)
#define STEADY_CHUNKS	48		/* a second device, always answered right */
#define REQ		((ssize_t)sizeof(struct snapblk_fetch_req))
#define RESP		((ssize_t)sizeof(struct snapblk_fetch_resp))
/* A read still waiting after this is a hang. */
#define HANG_S		(3 * TIMEOUT_MS / 1000.0 + 5)
/* An answer this long after its request was read is past its deadline. */
#define LATE_S		(TIMEOUT_MS / 1000.0 + 2)
/*
 * An O_DIRECT read waits for all its chunks at once, and each fetch ends
 * by its deadline (fetch_timeout_ms after the chunk was first missed,
 * never later than the read began) plus the 250 ms of the deadline scan:
 * one that takes longer than this (room for a slow emulated CPU) is late.
 */
#define DIRECT_LATE_S	(TIMEOUT_MS / 1000.0 + 2)

/* What the daemon does with a request. */
enum action {
	A_CORRECT,
	A_WRONG_ID,		/* an id never handed out: ENOENT */
	A_CROSS_FD,		/* through another open file: ENOENT */
	A_SHORT,		/* the right id, part of the chunk */
	A_LONG,			/* the chunk and more */
	A_EMPTY,		/* no chunk at all, error 0 */
	A_RANDOM,		/* chunk_size random bytes */
	A_OTHER_CT,		/* another chunk's ciphertext */
	A_ERROR,		/* error != 0 */
	A_ERROR_PAYLOAD,	/* error != 0 with bytes after it: EINVAL */
	A_BAD_HEADER,		/* resp.len wrong, or a short header: EINVAL */
	A_JUNK,			/* a write of random bytes */
	A_DUPLICATE,		/* right, then the same again: ENOENT */
	A_BAD_THEN_RIGHT,	/* random bytes, then the right chunk: ENOENT */
	A_LATE,			/* held past the deadline, then right: ENOENT */
	A_NO_ANSWER,
	A_EFAULT_PAYLOAD,	/* payload in inaccessible memory: EFAULT */
	A_EFAULT_PARTIAL,	/* payload half accessible: EFAULT */
	A_EFAULT_HEADER,	/* header inaccessible: EFAULT */
	A_DEFER,		/* held a moment, then another action */
	A_CLOSE_REOPEN,		/* close with requests claimed, reopen */
	NR_ACTIONS
};

static const char *const action_names[NR_ACTIONS] = {
	"right ciphertext", "wrong id (never asked)", "answer through another open file",
	"short chunk", "long chunk", "empty chunk", "random bytes",
	"another chunk's ciphertext", "error answer", "error answer with payload",
	"malformed header", "junk write", "duplicate answer",
	"bad answer then the right one", "late answer (past the deadline)",
	"no answer", "EFAULT payload", "EFAULT half the payload",
	"EFAULT header", "held back, answered out of order",
	"close and reopen with requests claimed",
};

/* Weights of the actions in the storm. */
static const unsigned int weights[NR_ACTIONS] = {
	[A_CORRECT] = 30, [A_WRONG_ID] = 5, [A_CROSS_FD] = 3, [A_SHORT] = 3,
	[A_LONG] = 3, [A_EMPTY] = 2, [A_RANDOM] = 4, [A_OTHER_CT] = 4,
	[A_ERROR] = 4, [A_ERROR_PAYLOAD] = 2, [A_BAD_HEADER] = 3,
	[A_JUNK] = 2, [A_DUPLICATE] = 4, [A_BAD_THEN_RIGHT] = 2,
	[A_LATE] = 3, [A_NO_ANSWER] = 3, [A_EFAULT_PAYLOAD] = 3,
	[A_EFAULT_PARTIAL] = 2, [A_EFAULT_HEADER] = 1, [A_DEFER] = 5,
	[A_CLOSE_REOPEN] = 1,
};

/* Read-side cases, counted too. */
enum {
	R_SMALL_BUF,		/* read() with less than one request: EINVAL */
	R_ODD_BUF,		/* a buffer of one and a half requests */
	R_ONE,			/* a buffer of exactly one request */
	R_EFAULT_BUF,		/* an inaccessible buffer: EFAULT */
	R_REQUEUED,		/* an id seen again after a close or a fault */
	R_REFETCH,		/* a re-fetch after a bad answer */
	NR_RCASES
};

static const char *const rcase_names[NR_RCASES] = {
	"read() buffer smaller than a request", "read() buffer of 1.5 requests",
	"read() buffer of one request", "read() into inaccessible memory",
	"request seen again after close or fault",
	"re-fetch request after a bad answer",
};

struct held {
	struct snapblk_fetch_req req;
	double due;
	double first_seen;
	enum action what;	/* A_LATE or A_DEFER */
	int generation;		/* of the open file that read it */
};

#define MAX_HELD 512
#define SEEN_IDS 4096

struct storm {
	const struct sb_image *img;
	char path[64];
	/* The steady device: its misses keep coming while others wait. */
	const struct sb_image *steady_img;
	char steady_path[64];
	uint32_t steady_index;
	uint64_t steady_answers;
	struct sb_rng rng;
	volatile int stop_readers, stop_daemon, correct_only;
	int fd, other_fd, generation;
	uint8_t *noaccess;		/* 2 * CHUNK, PROT_NONE */
	uint8_t *half;			/* CHUNK readable, then CHUNK PROT_NONE */
	uint8_t *junk;			/* 2 * CHUNK of scratch */
	struct held held[MAX_HELD];
	int nheld;
	/* ids read: when first seen (ring indexed by id) */
	uint64_t seen_id[SEEN_IDS];
	double seen_at[SEEN_IDS];
	uint64_t max_id;
	uint64_t actions[NR_ACTIONS], rcases[NR_RCASES];
	uint64_t refused_late, write_errors;
	/* per chunk: the last thing done to a request for it */
	pthread_mutex_t lock;
	struct { int action; double t; uint64_t id; } last[NCHUNKS];
	/* per address (first chunk with it): the last bad answer taken */
	struct { uint64_t id, deadline_ns; bool valid; } bad[NCHUNKS];
	/* violations */
	atomic_uint_fast64_t violations;
	/* readers */
	struct {
		volatile double start;
		uint64_t off, len;
		int direct, reported;
		double max_took[2];	/* buffered, O_DIRECT */
	} slot[NALL];
	atomic_uint_fast64_t late_direct;
	atomic_uint_fast64_t ok, eio, partial, wrong, other, hangs;
	atomic_uint_fast64_t bytes_ok, steady_ok, steady_eio;
};

static void violation(struct storm *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void violation(struct storm *s, const char *fmt, ...)
{
	va_list ap;

	if (atomic_fetch_add(&s->violations, 1) >= 20)
		return;
	va_start(ap, fmt);
	printf("# VIOLATION: ");
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	va_end(ap);
}

static void note(struct storm *s, const struct snapblk_fetch_req *r,
		 enum action a)
{
	if (r->chunk >= NCHUNKS)
		return;
	pthread_mutex_lock(&s->lock);
	s->last[r->chunk].action = a;
	s->last[r->chunk].t = sb_now();
	s->last[r->chunk].id = r->id;
	pthread_mutex_unlock(&s->lock);
}

/* When request @id was first read (now, if this is the first time). */
static double first_seen(struct storm *s, uint64_t id, bool *again)
{
	unsigned int i = id % SEEN_IDS;

	*again = s->seen_id[i] == id;
	if (!*again) {
		s->seen_id[i] = id;
		s->seen_at[i] = sb_now();
	}
	if (id > s->max_id)
		s->max_id = id;
	return s->seen_at[i];
}

static ssize_t answer_iov(int fd, uint64_t id, uint32_t error,
			  const void *hdr_at, const void *data, size_t len)
{
	struct snapblk_fetch_resp resp = {
		.len = sizeof(resp), .error = error, .id = id,
	};
	struct iovec iov[2] = {
		{ .iov_base = hdr_at ? (void *)hdr_at : &resp,
		  .iov_len = sizeof(resp) },
		{ .iov_base = (void *)data, .iov_len = len },
	};

	return writev(fd, iov, data || len ? 2 : 1);
}

/*
 * Check what a write returned: @want is the errno the kernel must
 * answer (0: it must take the whole write).  A live request may also have
 * timed out meanwhile (ENOENT), where @may_time_out.
 */
static void expect_write(struct storm *s, ssize_t ret, size_t len, int want,
			 bool may_time_out, enum action a, uint64_t id,
			 double seen)
{
	int err = ret < 0 ? errno : 0;

	if (!err && (size_t)ret != len) {
		violation(s, "%s for request %llu: write returned %zd of %zu",
			  action_names[a], (unsigned long long)id, ret, len);
		return;
	}
	if (err == want)
		return;
	if (err == ENOENT && may_time_out) {
		s->refused_late++;
		return;
	}
	s->write_errors++;
	violation(s, "%s for request %llu (read %.2f s ago): write returned %s, want %s",
		  action_names[a], (unsigned long long)id, sb_now() - seen,
		  err ? strerror(err) : "success",
		  want ? strerror(want) : "success");
}

/* A bad answer to @r was taken (@ret): a re-fetch may follow. */
static void note_bad(struct storm *s, const struct snapblk_fetch_req *r,
		     ssize_t ret)
{
	int c = sb_image_find(s->img, r->addr);

	if (ret < 0 || c < 0)
		return;
	s->bad[c].id = r->id;
	s->bad[c].deadline_ns = r->deadline_ns;
	s->bad[c].valid = true;
}

/*
 * Check what the kernel says of a request: the deadline flag and a
 * deadline at most fetch_timeout_ms away; a re-fetch only after a bad
 * answer for that address, with that answer's deadline, under a new id.
 */
static void check_request(struct storm *s, const struct snapblk_fetch_req *r)
{
	uint64_t now = sb_now_ns();
	int c;

	if (!(r->flags & SNAPBLK_FETCH_F_DEADLINE) ||
	    r->flags & ~(SNAPBLK_FETCH_F_DEADLINE | SNAPBLK_FETCH_F_REFETCH))
		violation(s, "request %llu: flags %#x",
			  (unsigned long long)r->id, r->flags);
	if (r->deadline_ns > now + (TIMEOUT_MS + 100) * 1000000ULL)
		violation(s, "request %llu: deadline %.3f s away, fetch_timeout_ms %d",
			  (unsigned long long)r->id,
			  ((double)r->deadline_ns - now) / 1e9, TIMEOUT_MS);
	if (!(r->flags & SNAPBLK_FETCH_F_REFETCH))
		return;
	s->rcases[R_REFETCH]++;
	c = sb_image_find(s->img, r->addr);
	if (r->dev_index == s->steady_index || c < 0 || !s->bad[c].valid)
		violation(s, "request %llu: a re-fetch without a bad answer",
			  (unsigned long long)r->id);
	else if (r->deadline_ns != s->bad[c].deadline_ns ||
		 r->id == s->bad[c].id)
		violation(s, "re-fetch %llu (deadline %llu) after the bad answer to %llu (deadline %llu)",
			  (unsigned long long)r->id,
			  (unsigned long long)r->deadline_ns,
			  (unsigned long long)s->bad[c].id,
			  (unsigned long long)s->bad[c].deadline_ns);
}

static const uint8_t *right_ct(struct storm *s,
			       const struct snapblk_fetch_req *r)
{
	int c = sb_image_find(s->img, r->addr);

	if (c >= 0)
		return sb_image_ct(s->img, c);
	c = sb_image_find(s->steady_img, r->addr);
	return c < 0 ? NULL : sb_image_ct(s->steady_img, c);
}

static enum action pick_action(struct storm *s, bool consuming_only)
{
	unsigned int total = 0, i, x;

	if (s->correct_only)
		return A_CORRECT;
	for (i = 0; i < NR_ACTIONS; i++)
		total += weights[i];
	for (;;) {
		x = sb_rng_below(&s->rng, total);
		for (i = 0; i < NR_ACTIONS; i++) {
			if (x < weights[i])
				break;
			x -= weights[i];
		}
		if (!consuming_only ||
		    !(i == A_WRONG_ID || i == A_CROSS_FD ||
		      i == A_ERROR_PAYLOAD || i == A_BAD_HEADER ||
		      i == A_JUNK || i == A_EFAULT_PAYLOAD ||
		      i == A_EFAULT_PARTIAL || i == A_EFAULT_HEADER))
			return i;
	}
}

static void hold(struct storm *s, const struct snapblk_fetch_req *r,
		 enum action a, double due, double seen)
{
	struct held *h;

	if (s->nheld >= MAX_HELD)
		return;		/* dropped: as no answer */
	h = &s->held[s->nheld++];
	h->req = *r;
	h->what = a;
	h->due = due;
	h->first_seen = seen;
	h->generation = s->generation;
}

static void reopen(struct storm *s)
{
	int i, n = 0;

	close(s->fd);
	s->fd = open("/dev/snapblk-fetch", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (s->fd < 0)
		violation(s, "reopen /dev/snapblk-fetch: %s", strerror(errno));
	s->generation++;
	/* What was held back went back to the queue; late answers stay. */
	for (i = 0; i < s->nheld; i++)
		if (s->held[i].what == A_LATE)
			s->held[n++] = s->held[i];
	s->nheld = n;
}

/* Do something to request @r; may recurse for actions that leave it. */
static void handle(struct storm *s, const struct snapblk_fetch_req *r,
		   enum action a, double seen, int depth)
{
	const uint8_t *ct = right_ct(s, r);
	uint32_t cs = r->chunk_size;
	struct snapblk_fetch_resp bad;
	uint64_t wrong;
	size_t len;
	ssize_t ret;
	int other;

	if (!ct || cs != CHUNK) {
		violation(s, "request %llu for an address or size (%u) not in the image",
			  (unsigned long long)r->id, cs);
		answer_iov(s->fd, r->id, ENOENT, NULL, NULL, 0);
		return;
	}
	if (r->dev_index == s->steady_index) {
		ret = answer_iov(s->fd, r->id, 0, NULL, ct, cs);
		expect_write(s, ret, RESP + cs, 0, true, A_CORRECT, r->id, seen);
		s->steady_answers++;
		return;
	}
	if (depth > 4)
		a = A_CORRECT;
	s->actions[a]++;
	note(s, r, a);
	switch (a) {
	case A_CORRECT:
		ret = answer_iov(s->fd, r->id, 0, NULL, ct, cs);
		expect_write(s, ret, RESP + cs, 0, true, a, r->id, seen);
		return;
	case A_WRONG_ID:
		switch (sb_rng_below(&s->rng, 4)) {
		case 0:
			wrong = 0;
			break;
		case 1:
			wrong = UINT64_MAX - sb_rng_below(&s->rng, 100);
			break;
		case 2:
			wrong = s->max_id + 1000000 + sb_rng_below(&s->rng, 1000);
			break;
		default:
			wrong = sb_rng_next(&s->rng) | (1ULL << 62);
			break;
		}
		ret = answer_iov(s->fd, wrong, 0, NULL, ct, cs);
		expect_write(s, ret, RESP + cs, ENOENT, false, a, wrong, seen);
		break;
	case A_CROSS_FD:
		ret = answer_iov(s->other_fd, r->id, 0, NULL, ct, cs);
		expect_write(s, ret, RESP + cs, ENOENT, false, a, r->id, seen);
		break;
	case A_SHORT:
		len = sb_rng_below(&s->rng, cs);
		ret = answer_iov(s->fd, r->id, 0, NULL, ct, len);
		expect_write(s, ret, RESP + len, 0, true, a, r->id, seen);
		note_bad(s, r, ret);
		return;
	case A_LONG:
		memcpy(s->junk, ct, cs);
		len = cs + 1 + sb_rng_below(&s->rng, cs);
		ret = answer_iov(s->fd, r->id, 0, NULL, s->junk, len);
		expect_write(s, ret, RESP + len, 0, true, a, r->id, seen);
		note_bad(s, r, ret);
		return;
	case A_EMPTY:
		ret = answer_iov(s->fd, r->id, 0, NULL, NULL, 0);
		expect_write(s, ret, RESP, 0, true, a, r->id, seen);
		note_bad(s, r, ret);
		return;
	case A_RANDOM:
	case A_BAD_THEN_RIGHT:
		sb_rng_fill(&s->rng, s->junk, cs);
		ret = answer_iov(s->fd, r->id, 0, NULL, s->junk, cs);
		expect_write(s, ret, RESP + cs, 0, true, a, r->id, seen);
		note_bad(s, r, ret);
		if (a == A_RANDOM)
			return;
		/* The id was answered: the re-fetch, if any, has a new one. */
		ret = answer_iov(s->fd, r->id, 0, NULL, ct, cs);
		expect_write(s, ret, RESP + cs, ENOENT, false, a, r->id, seen);
		return;
	case A_OTHER_CT:
		do {
			other = sb_rng_below(&s->rng, NCHUNKS);
		} while ((s->img->table[other].flags & SNAPBLK_CHUNK_F_ZERO) ||
			 !memcmp(s->img->table[other].addr, r->addr,
				 SNAPBLK_ADDR_LEN));
		ret = answer_iov(s->fd, r->id, 0, NULL,
				 sb_image_ct(s->img, other), cs);
		expect_write(s, ret, RESP + cs, 0, true, a, r->id, seen);
		note_bad(s, r, ret);
		return;
	case A_ERROR:
		ret = answer_iov(s->fd, r->id,
				 sb_rng_below(&s->rng, 2) ? EIO :
				 1 + (uint32_t)sb_rng_next(&s->rng) % UINT32_MAX,
				 NULL, NULL, 0);
		expect_write(s, ret, RESP, 0, true, a, r->id, seen);
		return;
	case A_ERROR_PAYLOAD:
		ret = answer_iov(s->fd, r->id, ENOENT, NULL, ct,
				 1 + sb_rng_below(&s->rng, cs));
		expect_write(s, ret, 0, EINVAL, true, a, r->id, seen);
		break;
	case A_BAD_HEADER:
		bad.len = sb_rng_below(&s->rng, 2) ? 0 : RESP + 8;
		bad.error = 0;
		bad.id = r->id;
		if (sb_rng_below(&s->rng, 3) == 0)	/* shorter than a header */
			ret = write(s->fd, &bad, 1 + sb_rng_below(&s->rng, RESP - 1));
		else
			ret = answer_iov(s->fd, r->id, 0, &bad, ct, cs);
		expect_write(s, ret, 0, EINVAL, false, a, r->id, seen);
		break;
	case A_JUNK:
		sb_rng_fill(&s->rng, s->junk, 256);
		ret = write(s->fd, s->junk, 1 + sb_rng_below(&s->rng, 255));
		if (ret >= 0)
			violation(s, "a write of %zd random bytes was taken", ret);
		break;
	case A_DUPLICATE:
		ret = answer_iov(s->fd, r->id, 0, NULL, ct, cs);
		expect_write(s, ret, RESP + cs, 0, true, a, r->id, seen);
		ret = answer_iov(s->fd, r->id, 0, NULL, ct, cs);
		expect_write(s, ret, RESP + cs, ENOENT, false, a, r->id, seen);
		return;
	case A_LATE:
		hold(s, r, A_LATE, seen + LATE_S, seen);
		return;
	case A_NO_ANSWER:
		return;
	case A_EFAULT_PAYLOAD:
		ret = answer_iov(s->fd, r->id, 0, NULL, s->noaccess, cs);
		expect_write(s, ret, 0, EFAULT, true, a, r->id, seen);
		break;
	case A_EFAULT_PARTIAL:
		ret = answer_iov(s->fd, r->id, 0, NULL,
				 s->half + CHUNK / 2 + 4096 *
				 sb_rng_below(&s->rng, CHUNK / 8192), cs);
		expect_write(s, ret, 0, EFAULT, true, a, r->id, seen);
		break;
	case A_EFAULT_HEADER:
		ret = answer_iov(s->fd, r->id, 0,
				 sb_rng_below(&s->rng, 2) ? (void *)16 :
				 (void *)s->noaccess, ct, cs);
		expect_write(s, ret, 0, EFAULT, false, a, r->id, seen);
		break;
	case A_DEFER:
		hold(s, r, A_DEFER, sb_now() + sb_rng_below(&s->rng, 300) / 1000.0,
		     seen);
		return;
	case A_CLOSE_REOPEN:
		reopen(s);
		return;
	case NR_ACTIONS:
		return;
	}
	/* The request is still ours to answer. */
	handle(s, r, pick_action(s, false), seen, depth + 1);
}

static void run_held(struct storm *s)
{
	double now = sb_now();
	int i = 0;
	ssize_t ret;

	while (i < s->nheld) {
		struct held h = s->held[i];

		if (h.due > now && !(s->correct_only && h.what == A_DEFER)) {
			i++;
			continue;
		}
		s->held[i] = s->held[--s->nheld];
		if (h.what == A_LATE) {
			const uint8_t *ct = right_ct(s, &h.req);

			/*
			 * Past the deadline by LATE_S - timeout: the kernel must
			 * have failed the chunk, whichever file reads it now.
			 */
			ret = answer_iov(s->fd, h.req.id, 0, NULL, ct, CHUNK);
			expect_write(s, ret, RESP + CHUNK, ENOENT, false,
				     A_LATE, h.req.id, h.first_seen);
		} else if (h.generation == s->generation) {
			handle(s, &h.req, pick_action(s, false), h.first_seen, 1);
		}
	}
}

/* One read() of requests, with a buffer of some kind; handle them. */
static void read_requests(struct storm *s)
{
	struct snapblk_fetch_req reqs[16];
	const struct snapblk_fetch_req *r;
	size_t len = sizeof(reqs);
	int kind = s->correct_only ? 99 : (int)sb_rng_below(&s->rng, 40);
	ssize_t n, i;
	bool again;

	switch (kind) {
	case 0:
		s->rcases[R_SMALL_BUF]++;
		n = read(s->fd, reqs, sb_rng_below(&s->rng, REQ));
		if (n >= 0 || errno != EINVAL)
			violation(s, "read() with less than one request's room: %zd (%s), want EINVAL",
				  n, n < 0 ? strerror(errno) : "");
		return;
	case 1:
		s->rcases[R_EFAULT_BUF]++;
		n = read(s->fd, s->noaccess, REQ * 4);
		if (n >= 0 || (errno != EFAULT && errno != EAGAIN))
			violation(s, "read() into inaccessible memory: %zd (%s), want EFAULT",
				  n, n < 0 ? strerror(errno) : "");
		return;
	case 2:
		s->rcases[R_ODD_BUF]++;
		len = REQ + REQ / 2;
		break;
	case 3:
	case 4:
		s->rcases[R_ONE]++;
		len = REQ;
		break;
	}
	n = read(s->fd, reqs, len);
	if (n < 0) {
		if (errno != EAGAIN)
			violation(s, "read() of requests: %s", strerror(errno));
		return;
	}
	if (n % REQ || (size_t)n > len)
		violation(s, "read() of %zu bytes returned %zd: not whole requests",
			  len, n);
	/* Records lie end to end, each r->len long (this module's: REQ). */
	for (i = 0; i + REQ <= n; i += r->len) {
		double seen;

		r = (const void *)((const char *)reqs + i);

		if (r->len != REQ) {
			violation(s, "request of length %u", r->len);
			break;
		}
		check_request(s, r);
		seen = first_seen(s, r->id, &again);
		if (again)
			s->rcases[R_REQUEUED]++;
		handle(s, r, pick_action(s, false), seen, 0);
	}
}

static void *daemon_main(void *arg)
{
	struct storm *s = arg;

	while (!s->stop_daemon) {
		struct pollfd p = { .fd = s->fd, .events = POLLIN };

		run_held(s);
		if (poll(&p, 1, 20) > 0)
			read_requests(s);
	}
	return NULL;
}

/* What was last done to the requests of the chunks a read covers. */
static void print_chunks(struct storm *s, uint64_t off, uint64_t len)
{
	double now = sb_now();
	uint64_t c;

	pthread_mutex_lock(&s->lock);
	for (c = off / CHUNK; c <= (off + len - 1) / CHUNK && c < NCHUNKS; c++)
		printf("#   chunk %llu: last request %llu: %s, %.1f s ago\n",
		       (unsigned long long)c, (unsigned long long)s->last[c].id,
		       s->last[c].t ? action_names[s->last[c].action] :
		       "(none read)", s->last[c].t ? now - s->last[c].t : 0);
	pthread_mutex_unlock(&s->lock);
}

/*
 * A reader: random ranges, O_DIRECT or buffered, each checked.  Reader
 * NREADERS and up read the steady device, O_DIRECT only.
 */
struct reader {
	struct storm *s;
	int id;
	struct sb_rng rng;
	pthread_t thread;
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	struct storm *s = rd->s;
	bool steady = rd->id >= NREADERS;
	const struct sb_image *img = steady ? s->steady_img : s->img;
	const char *path = steady ? s->steady_path : s->path;
	const uint64_t size = img->size;
	int dfd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	int bfd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t *buf;

	if (dfd < 0 || bfd < 0 || posix_memalign((void **)&buf, 4096, 4 * CHUNK)) {
		violation(s, "reader %d: cannot open %s", rd->id, path);
		return NULL;
	}
	while (!s->stop_readers) {
		bool direct = steady || sb_rng_below(&rd->rng, 4) != 0;
		uint64_t off, len;
		ssize_t n;
		int64_t bad;
		double took;

		if (steady) {	/* chunk by chunk: with the small cache, all miss */
			off = (s->slot[rd->id].off + CHUNK * NSTEADY) % size;
			len = CHUNK;
		} else if (direct) {
			off = 4096ULL * sb_rng_below(&rd->rng, size / 4096);
			len = 4096ULL * (1 + sb_rng_below(&rd->rng, 3 * CHUNK / 4096));
		} else {
			off = sb_rng_below(&rd->rng, size);
			len = 1 + sb_rng_below(&rd->rng, CHUNK);
			posix_fadvise(bfd, 0, 0, POSIX_FADV_DONTNEED);
		}
		if (off + len > size)
			len = size - off;
		s->slot[rd->id].off = off;
		s->slot[rd->id].len = len;
		s->slot[rd->id].direct = direct;
		s->slot[rd->id].reported = 0;
		s->slot[rd->id].start = sb_now();
		n = pread(direct ? dfd : bfd, buf, len, off);
		took = sb_now() - s->slot[rd->id].start;
		s->slot[rd->id].start = 0;
		if (took > s->slot[rd->id].max_took[direct])
			s->slot[rd->id].max_took[direct] = took;
		if (direct && took > DIRECT_LATE_S) {
			atomic_fetch_add(&s->late_direct, 1);
			violation(s, "%sO_DIRECT read of %llu bytes at %llu (chunks %llu-%llu) took %.1f s (fetch_timeout_ms %d): %s",
				  steady ? "steady device: " : "",
				  (unsigned long long)len,
				  (unsigned long long)off,
				  (unsigned long long)(off / CHUNK),
				  (unsigned long long)((off + len - 1) / CHUNK),
				  took, TIMEOUT_MS,
				  n < 0 ? strerror(errno) : "read");
			if (!steady)
				print_chunks(s, off, len);
		}
		if (n < 0) {
			if (errno == EIO) {
				atomic_fetch_add(steady ? &s->steady_eio :
						 &s->eio, 1);
			} else {
				atomic_fetch_add(&s->other, 1);
				violation(s, "%s read of %llu bytes at %llu: %s",
					  direct ? "O_DIRECT" : "buffered",
					  (unsigned long long)len,
					  (unsigned long long)off, strerror(errno));
			}
			continue;
		}
		bad = sb_image_diff(img, off, buf, n);
		if (bad >= 0) {
			atomic_fetch_add(&s->wrong, 1);
			violation(s, "%s read of %llu bytes at %llu returned WRONG BYTES from offset %lld (chunk %lld)",
				  direct ? "O_DIRECT" : "buffered",
				  (unsigned long long)len,
				  (unsigned long long)off, (long long)bad,
				  (long long)(bad / CHUNK));
			continue;
		}
		atomic_fetch_add(&s->bytes_ok, n);
		if (steady)
			atomic_fetch_add(&s->steady_ok, 1);
		else if ((uint64_t)n == len)
			atomic_fetch_add(&s->ok, 1);
		else
			atomic_fetch_add(&s->partial, 1);
	}
	free(buf);
	close(dfd);
	close(bfd);
	return NULL;
}

/* Fails reads that wait too long, saying what was done to their chunks. */
static void watchdog(struct storm *s)
{
	double now = sb_now();
	int i;

	for (i = 0; i < NALL; i++) {
		double start = s->slot[i].start;
		uint64_t first, last;

		if (!start || now - start < HANG_S || s->slot[i].reported)
			continue;
		s->slot[i].reported = 1;
		atomic_fetch_add(&s->hangs, 1);
		first = s->slot[i].off / CHUNK;
		last = (s->slot[i].off + s->slot[i].len - 1) / CHUNK;
		violation(s, "HANG: %s%s read of %llu bytes at %llu (chunks %llu-%llu) still waiting after %.1f s (fetch_timeout_ms %d)",
			  i >= NREADERS ? "steady device: " : "",
			  s->slot[i].direct ? "O_DIRECT" : "buffered",
			  (unsigned long long)s->slot[i].len,
			  (unsigned long long)s->slot[i].off,
			  (unsigned long long)first, (unsigned long long)last,
			  now - start, TIMEOUT_MS);
		if (i < NREADERS)
			print_chunks(s, s->slot[i].off, s->slot[i].len);
	}
}

FIXTURE(hostile) {
	struct sb_nl nl;
	struct sb_image img, steady;
	struct sb_dev dev, steady_dev;
	uint64_t seed;
	bool created;
};

FIXTURE_SETUP(hostile)
{
	struct sb_create c = { 0 };
	uint8_t id[SNAPBLK_IMAGE_ID_LEN] = { 0x42 };
	struct sb_rng r;
	int fd;

	if (sb_module_loaded("snapblk"))
		ASSERT_EQ(0, sb_unload("snapblk")) {
			TH_LOG("the module is in use: is a snapblkd running? This test must be the only fetch daemon");
		}
	/* A cache of 16 chunks, so that reads keep missing. */
	ASSERT_EQ(0, sb_load(sb_ko_path(), "cache_mb=1"));
	ASSERT_EQ(0, sb_nl_open(&self->nl));
	self->seed = sb_seed_from_env("SNAPBLK_FUZZ_SEED");
	sb_rng_seed(&r, self->seed);
	ASSERT_EQ(0, sb_image_make(&self->img, CHUNK, NCHUNKS, ZERO_EVERY,
				   DUP_EVERY, &r));
	fd = sb_image_table_fd(&self->img);
	ASSERT_GE(fd, 0);
	c.name = "hostile";
	c.image_size = self->img.size;
	c.chunk_size = CHUNK;
	c.image_id = id;
	c.table_fd = fd;
	c.fetch_timeout_ms = TIMEOUT_MS;
	ASSERT_EQ(0, sb_nl_create(&self->nl, &c, &self->dev));
	self->created = true;
	close(fd);
	ASSERT_EQ(0, sb_image_make(&self->steady, CHUNK, STEADY_CHUNKS, 0, 0,
				   &r));
	fd = sb_image_table_fd(&self->steady);
	ASSERT_GE(fd, 0);
	c.name = "steady";
	c.image_size = self->steady.size;
	c.table_fd = fd;
	ASSERT_EQ(0, sb_nl_create(&self->nl, &c, &self->steady_dev));
	close(fd);
}

FIXTURE_TEARDOWN(hostile)
{
	int i;

	for (i = 0; self->created && i < 50; i++) {
		if (sb_nl_remove(&self->nl, "hostile") != -EBUSY)
			break;
		usleep(100000);
	}
	for (i = 0; self->created && i < 50; i++) {
		if (sb_nl_remove(&self->nl, "steady") != -EBUSY)
			break;
		usleep(100000);
	}
	sb_nl_close(&self->nl);
	sb_image_free(&self->img);
	sb_image_free(&self->steady);
	sb_unload("snapblk");
}

static ssize_t answer(int fd, const struct snapblk_fetch_req *r,
		      const struct sb_image *img)
{
	return sb_fetch_answer(fd, r->id, 0,
			       sb_image_ct(img, sb_image_find(img, r->addr)),
			       CHUNK);
}

/*
 * The protocol case by case, on one request at a time: what the kernel
 * must refuse leaves the request claimed and answerable; a bad chunk is
 * fetched once more, a second bad one fails its read with EIO, and the
 * next read of it fetches again; a
 * closed file's requests come back with the same id; an answer after the
 * deadline is refused and the read failed with EIO in time.
 */
TEST_F_TIMEOUT(hostile, answers_are_matched_to_requests, 120)
{
	struct snapblk_fetch_req r, r2;
	struct snapblk_fetch_resp hdr = { .len = RESP + 1 };
	char path[64];
	uint8_t *noaccess;
	struct sb_chunk_read o;
	int fd, other;

	snprintf(path, sizeof(path), "/dev/snapblk%u", self->dev.index);
	noaccess = mmap(NULL, CHUNK, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0);
	ASSERT_NE(MAP_FAILED, noaccess);
	fd = open("/dev/snapblk-fetch", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	other = open("/dev/snapblk-fetch", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	ASSERT_GE(other, 0);

	/* Refused answers leave the request claimed; then the right one. */
	ASSERT_EQ(0, sb_chunk_read_start(&o, path, 0, CHUNK));
	ASSERT_EQ(0, sb_next_request(fd, &r, 5000));
	EXPECT_EQ(0, r.chunk);
	EXPECT_EQ(-1, read(fd, &r2, REQ - 1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, sb_fetch_answer(fd, r.id + 100000, 0,
				      sb_image_ct(&self->img, 0), CHUNK));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(-1, sb_fetch_answer(fd, 0, EIO, NULL, 0));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(-1, answer(other, &r, &self->img));
	EXPECT_EQ(ENOENT, errno);
	hdr.id = r.id;
	EXPECT_EQ(-1, write(fd, &hdr, RESP));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, write(fd, &hdr, RESP / 2));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, sb_fetch_answer(fd, r.id, ENOENT,
				      sb_image_ct(&self->img, 0), 8));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, sb_fetch_answer(fd, r.id, 0, noaccess, CHUNK));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(RESP + CHUNK, answer(fd, &r, &self->img));
	EXPECT_EQ(0, sb_chunk_read_end(&o, &self->img, o.chunk));
	EXPECT_EQ(-1, answer(fd, &r, &self->img));	/* a second answer */
	EXPECT_EQ(ENOENT, errno);

	/*
	 * A bad chunk is fetched once more (a new id, F_REFETCH, the same
	 * deadline); a second bad one fails its read; reading it again
	 * fetches it again, afresh.
	 */
	ASSERT_EQ(0, sb_chunk_read_start(&o, path, 2, CHUNK));
	ASSERT_EQ(0, sb_next_request(fd, &r, 5000));
	EXPECT_EQ(RESP + CHUNK, sb_fetch_answer(fd, r.id, 0,
					       sb_image_ct(&self->img, 3),
					       CHUNK));
	ASSERT_EQ(0, sb_next_request(fd, &r2, 5000));
	EXPECT_NE(r.id, r2.id);
	EXPECT_EQ(SNAPBLK_FETCH_F_DEADLINE | SNAPBLK_FETCH_F_REFETCH,
		  r2.flags);
	EXPECT_EQ(r.deadline_ns, r2.deadline_ns);
	EXPECT_EQ(0, memcmp(r.addr, r2.addr, SNAPBLK_ADDR_LEN));
	EXPECT_EQ(RESP + CHUNK, sb_fetch_answer(fd, r2.id, 0,
					       sb_image_ct(&self->img, 3),
					       CHUNK));
	EXPECT_EQ(EIO, sb_chunk_read_end(&o, &self->img, o.chunk));
	ASSERT_EQ(0, sb_chunk_read_start(&o, path, 2, CHUNK));
	ASSERT_EQ(0, sb_next_request(fd, &r2, 5000));
	EXPECT_NE(r.id, r2.id);
	EXPECT_EQ(SNAPBLK_FETCH_F_DEADLINE, r2.flags);
	EXPECT_EQ(RESP + CHUNK, answer(fd, &r2, &self->img));
	EXPECT_EQ(0, sb_chunk_read_end(&o, &self->img, o.chunk));

	/* A closed file's requests come back, same id, to the next reader. */
	ASSERT_EQ(0, sb_chunk_read_start(&o, path, 4, CHUNK));
	ASSERT_EQ(0, sb_next_request(fd, &r, 5000));
	close(fd);
	fd = open("/dev/snapblk-fetch", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, sb_next_request(other, &r2, 5000));
	EXPECT_EQ(r.id, r2.id);
	EXPECT_EQ(RESP + CHUNK, answer(other, &r2, &self->img));
	EXPECT_EQ(0, sb_chunk_read_end(&o, &self->img, o.chunk));

	/* No answer: EIO by the deadline; the late answer is refused. */
	ASSERT_EQ(0, sb_chunk_read_start(&o, path, 5, CHUNK));
	ASSERT_EQ(0, sb_next_request(fd, &r, 5000));
	EXPECT_EQ(EIO, sb_chunk_read_end(&o, &self->img, o.chunk));
	ksft_print_msg("an unanswered read failed after %.2f s (fetch_timeout_ms %d)\n",
		       o.took, TIMEOUT_MS);
	EXPECT_LT(o.took, TIMEOUT_MS / 1000.0 + 1.5);
	EXPECT_EQ(-1, answer(fd, &r, &self->img));
	EXPECT_EQ(ENOENT, errno);

	close(fd);
	close(other);
	munmap(noaccess, CHUNK);
}

TEST_F_TIMEOUT(hostile, storm, 3600)
{
	uint64_t seconds = sb_env_u64("SNAPBLK_FUZZ_SECONDS", 60);
	struct reader rd[NALL];
	struct storm *s = calloc(1, sizeof(*s));
	pthread_t daemon;
	struct timespec ts;
	uint64_t fetch_errors0;
	uint8_t *buf;
	double t0, end;
	struct sb_dev d;
	int i, fd, joined;
	ssize_t n;

	ASSERT_NE(NULL, s);
	ksft_print_msg("seed %llu (SNAPBLK_FUZZ_SEED=%llu replays the image and the daemon's choices), %llu s (SNAPBLK_FUZZ_SECONDS)\n",
		       (unsigned long long)self->seed,
		       (unsigned long long)self->seed,
		       (unsigned long long)seconds);
	s->img = &self->img;
	snprintf(s->path, sizeof(s->path), "/dev/snapblk%u", self->dev.index);
	s->steady_img = &self->steady;
	s->steady_index = self->steady_dev.index;
	snprintf(s->steady_path, sizeof(s->steady_path), "/dev/snapblk%u",
		 self->steady_dev.index);
	sb_rng_seed(&s->rng, self->seed ^ 0xfe7c4);
	pthread_mutex_init(&s->lock, NULL);
	s->noaccess = mmap(NULL, 2 * CHUNK, PROT_NONE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	s->half = mmap(NULL, 2 * CHUNK, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, s->noaccess);
	ASSERT_NE(MAP_FAILED, s->half);
	ASSERT_EQ(0, mprotect(s->half + CHUNK, CHUNK, PROT_NONE));
	s->junk = malloc(2 * CHUNK);
	ASSERT_NE(NULL, s->junk);
	s->fd = open("/dev/snapblk-fetch", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	s->other_fd = open("/dev/snapblk-fetch", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	ASSERT_GE(s->fd, 0);
	ASSERT_GE(s->other_fd, 0);
	ASSERT_EQ(0, sb_nl_status(&self->nl, "hostile", &d));
	fetch_errors0 = d.stats[SNAPBLK_STAT_FETCH_ERRORS];

	ASSERT_EQ(0, pthread_create(&daemon, NULL, daemon_main, s));
	for (i = 0; i < NALL; i++) {
		rd[i].s = s;
		rd[i].id = i;
		s->slot[i].off = i >= NREADERS ? (i - NREADERS) * CHUNK : 0;
		sb_rng_seed(&rd[i].rng, self->seed + 17 * (i + 1));
		ASSERT_EQ(0, pthread_create(&rd[i].thread, NULL, reader_main,
					    &rd[i]));
	}
	t0 = sb_now();
	while (sb_now() - t0 < seconds) {
		usleep(200000);
		watchdog(s);
	}

	/* Stop: answer everything right, let the readers finish. */
	s->correct_only = 1;
	s->stop_readers = 1;
	end = sb_now() + HANG_S + 10;
	for (i = 0, joined = 0; i < NALL; i++) {
		for (;;) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 200000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			if (!pthread_timedjoin_np(rd[i].thread, NULL, &ts)) {
				joined++;
				break;
			}
			watchdog(s);
			if (sb_now() > end)
				break;
		}
	}
	EXPECT_EQ(NALL, joined);
	/* Fetches the storm left unanswered end by their deadline. */
	usleep((TIMEOUT_MS + 1000) * 1000);

	for (i = 0; i < NR_ACTIONS; i++)
		ksft_print_msg("%-40s %llu\n", action_names[i],
			       (unsigned long long)s->actions[i]);
	for (i = 0; i < NR_RCASES; i++)
		ksft_print_msg("%-40s %llu\n", rcase_names[i],
			       (unsigned long long)s->rcases[i]);
	ksft_print_msg("answers refused because their request had timed out meanwhile: %llu\n",
		       (unsigned long long)s->refused_late);
	ksft_print_msg("device reads in %.0f s: %llu right, %llu EIO, %llu short (right as far as they went), %llu WRONG, %llu other errors, %llu hangs; %.1f MB read right\n",
		       sb_now() - t0, (unsigned long long)s->ok,
		       (unsigned long long)s->eio,
		       (unsigned long long)s->partial,
		       (unsigned long long)s->wrong,
		       (unsigned long long)s->other,
		       (unsigned long long)s->hangs, (double)s->bytes_ok / 1e6);
	EXPECT_EQ(0, (uint64_t)s->wrong);
	EXPECT_EQ(0, (uint64_t)s->other);
	EXPECT_EQ(0, (uint64_t)s->hangs);
	EXPECT_EQ(0, (uint64_t)s->violations);
	EXPECT_GT((uint64_t)s->ok, 0);
	EXPECT_GT((uint64_t)s->eio, 0);
	ksft_print_msg("steady device (always answered right, its misses keep coming): %llu reads right, %llu EIO, %llu answers\n",
		       (unsigned long long)s->steady_ok,
		       (unsigned long long)s->steady_eio,
		       (unsigned long long)s->steady_answers);
	EXPECT_GT((uint64_t)s->steady_ok, 0);
	/*
	 * Its requests are answered at once; one read into inaccessible
	 * memory, or a close, gives them back to be read again.
	 */
	EXPECT_EQ(0, (uint64_t)s->steady_eio);
	{
		double maxb = 0, maxd = 0, maxs = 0;

		for (i = 0; i < NREADERS; i++) {
			if (s->slot[i].max_took[0] > maxb)
				maxb = s->slot[i].max_took[0];
			if (s->slot[i].max_took[1] > maxd)
				maxd = s->slot[i].max_took[1];
		}
		for (i = NREADERS; i < NALL; i++)
			if (s->slot[i].max_took[1] > maxs)
				maxs = s->slot[i].max_took[1];
		ksft_print_msg("longest reads: O_DIRECT %.2f s, buffered %.2f s, steady device %.2f s; O_DIRECT reads later than %.1f s: %llu\n",
			       maxd, maxb, maxs, DIRECT_LATE_S,
			       (unsigned long long)s->late_direct);
	}
	EXPECT_EQ(0, (uint64_t)s->late_direct);
	ASSERT_EQ(0, sb_nl_status(&self->nl, "hostile", &d));
	ksft_print_msg("device: %llu fetch errors, %llu refetches, %llu bytes fetched, %llu in flight\n",
		       (unsigned long long)(d.stats[SNAPBLK_STAT_FETCH_ERRORS] -
					    fetch_errors0),
		       (unsigned long long)d.stats[SNAPBLK_STAT_REFETCHES],
		       (unsigned long long)d.stats[SNAPBLK_STAT_BYTES_FETCHED],
		       (unsigned long long)d.stats[SNAPBLK_STAT_INFLIGHT]);
	EXPECT_EQ(0, d.stats[SNAPBLK_STAT_INFLIGHT]);
	/* Bad answers were fetched again, each flagged to the daemon. */
	EXPECT_GT(d.stats[SNAPBLK_STAT_REFETCHES], 0);
	EXPECT_GT(s->rcases[R_REFETCH], 0);

	/* Now the whole device reads back right, direct and buffered. */
	ASSERT_EQ(0, posix_memalign((void **)&buf, 4096, self->img.size));
	fd = open(s->path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	memset(buf, 0xa5, self->img.size);
	n = pread(fd, buf, self->img.size, 0);
	EXPECT_EQ((ssize_t)self->img.size, n);
	EXPECT_EQ(-1, sb_image_diff(&self->img, 0, buf, self->img.size));
	close(fd);
	fd = open(s->path, O_RDONLY | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	EXPECT_EQ(0, ioctl(fd, BLKFLSBUF, 0));
	memset(buf, 0xa5, self->img.size);
	n = pread(fd, buf, self->img.size, 0);
	EXPECT_EQ((ssize_t)self->img.size, n);
	EXPECT_EQ(-1, sb_image_diff(&self->img, 0, buf, self->img.size));
	close(fd);
	free(buf);
	EXPECT_EQ(0, (uint64_t)s->violations);

	s->stop_daemon = 1;
	pthread_join(daemon, NULL);
	close(s->fd);
	close(s->other_fd);

	/* The devices go, and the module with them. */
	EXPECT_EQ(0, sb_nl_remove(&self->nl, "steady"));
	EXPECT_EQ(0, sb_nl_remove(&self->nl, "hostile"));
	self->created = false;
	sb_nl_close(&self->nl);
	EXPECT_EQ(0, sb_unload("snapblk"));
	EXPECT_FALSE(sb_module_loaded("snapblk"));
	free(s->junk);
	munmap(s->noaccess, 2 * CHUNK);
	munmap(s->half, 2 * CHUNK);
	free(s);
}

TEST_HARNESS_MAIN
