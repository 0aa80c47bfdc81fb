// SPDX-License-Identifier: GPL-2.0
/*
 * A replica group (--store-group URL,URL,...): stores that hold the same
 * chunks, asked with hedged requests.  A fetch goes to one replica (in
 * turn, so that the load spreads); when it has not answered within the
 * hedge delay (--hedge-ms, or else the 95th percentile of the group's
 * latencies seen so far, once there are enough of them), the next
 * replica is asked too.  The first complete answer wins and the other
 * attempt is cancelled.  A replica that fails outright hands over to the
 * next at once.  To the loop the group is one store.
 *
 * Each attempt is a struct fetch of its own (a "sub-fetch", with its own
 * buffer) whose parent is the loop's fetch; the member backends know
 * nothing of groups.  Lifetime: sub-fetches live from group_start() or
 * the hedge to the end of their attempt; the parent is busy meanwhile.
 * Everything runs on the loop thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapblkd.h"

#define LAT_RING	128	/* latencies kept for the percentile */
#define LAT_MIN		20	/* samples before the percentile is used */
#define HEDGE_DEFAULT_MS	50	/* until then, without --hedge-ms */

struct group {
	struct backend *member[GROUP_MAX];
	unsigned int n;
	unsigned int next;		/* the replica to ask first, in turn */
	uint32_t lat[LAT_RING];		/* ms of complete answers */
	unsigned int nlat;
	uint64_t hedges, hedge_wins;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The delay after which a second replica is asked. */
static int64_t hedge_delay(const struct group *g)
{
	uint32_t s[LAT_RING];
	unsigned int n = g->nlat < LAT_RING ? g->nlat : LAT_RING;

	if (bopts.hedge_ms)
		return bopts.hedge_ms;
	if (n < LAT_MIN)
		return HEDGE_DEFAULT_MS;
	memcpy(s, g->lat, n * sizeof(s[0]));
	qsort(s, n, sizeof(s[0]), cmp_u32);
	return s[(n * 95) / 100] ? s[(n * 95) / 100] : 1;
}

static struct fetch *sub_new(struct fetch *f)
{
	struct fetch *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->buf = malloc(f->req.chunk_size);
	if (!s->buf) {
		free(s);
		return NULL;
	}
	s->req = f->req;
	memcpy(s->name, f->name, sizeof(s->name));
	s->deadline_ms = f->deadline_ms;
	s->parent = f;
	return s;
}

static void sub_free(struct fetch *s)
{
	free(s->buf);
	free(s);
}

/* Ask replica r for f's chunk; false when no attempt could start. */
static bool ask(struct group *g, struct fetch *f, unsigned int r)
{
	struct fetch *s = sub_new(f);

	if (!s)
		return false;
	s->replica = r;
	s->started_ms = now_ms();
	f->requests++;
	f->subs[f->nsubs++] = s;
	f->asked |= 1U << r;
	s->be = g->member[r];
	s->be->ops->start(s->be, s);
	return true;
}

/* The next replica f has not asked yet, from its first on; or -1. */
static int next_replica(const struct group *g, const struct fetch *f)
{
	unsigned int i, r;

	for (i = 0; i < g->n; i++) {
		r = (f->first_replica + i) % g->n;
		if (!(f->asked & (1U << r)))
			return r;
	}
	return -1;
}

static void group_start(struct backend *be, struct fetch *f)
{
	struct group *g = be->priv;

	f->busy = true;
	f->nsubs = 0;
	f->asked = 0;
	f->sub_result = FR_MISSING;
	f->sub_missing = 0;
	f->detail[0] = '\0';
	f->first_replica = g->next;
	g->next = (g->next + 1) % g->n;
	f->hedge_at_ms = now_ms() + hedge_delay(g);
	if (!ask(g, f, f->first_replica)) {
		f->busy = false;
		f->result = FR_LOCAL;
		snprintf(f->detail, sizeof(f->detail), "%s: out of memory",
			 be->url);
		fetch_done(f);
	}
}

/* The hedge delay passed with no answer: ask the next replica too. */
void group_hedge(struct fetch *f)
{
	struct group *g = f->be->priv;
	int r;

	f->hedge_at_ms = 0;
	r = next_replica(g, f);
	if (r < 0 || f->nsubs >= GROUP_MAX)
		return;
	g->hedges++;
	ask(g, f, r);
}

static void drop_sub(struct fetch *f, unsigned int i)
{
	struct fetch *s = f->subs[i];

	if (s->busy)
		s->be->ops->cancel(s->be, s);
	sub_free(s);
	f->subs[i] = f->subs[--f->nsubs];
}

/*
 * The parent's failure so far (FR_MISSING: none but "not found") and a
 * new one that is not FR_MISSING: a transient failure wins, as a retry
 * may succeed.
 */
static enum fetch_result worse(enum fetch_result a, enum fetch_result b)
{
	if (a == FR_TRANSIENT || b == FR_TRANSIENT)
		return FR_TRANSIENT;
	return a == FR_MISSING ? b : a;
}

void group_sub_done(struct fetch *s)
{
	struct fetch *f = s->parent;
	struct group *g = f->be->priv;
	unsigned int i;
	uint8_t *buf;
	size_t n;
	int r;

	for (i = 0; i < f->nsubs && f->subs[i] != s; i++)
		;
	if (s->result == FR_OK) {
		g->lat[g->nlat++ % LAT_RING] = now_ms() - s->started_ms;
		if (s->replica != f->first_replica)
			g->hedge_wins++;
		/* The winner's buffer becomes the parent's. */
		buf = f->buf;
		f->buf = s->buf;
		s->buf = buf;
		f->got = f->req.chunk_size;
		f->winner = s->replica;
		f->result = FR_OK;
		f->status = s->status;
		snprintf(f->detail, sizeof(f->detail), "%s", s->detail);
		while (f->nsubs)
			drop_sub(f, 0);
		f->busy = false;
		f->hedge_at_ms = 0;
		fetch_done(f);
		return;
	}
	/* This replica failed: note why, ask the next at once. */
	n = strlen(f->detail);
	snprintf(f->detail + n, sizeof(f->detail) - n, "%s%s", n ? "; " : "",
		 s->detail);
	if (s->result == FR_MISSING)
		f->sub_missing++;
	else
		f->sub_result = worse(f->sub_result, s->result);
	if (i < f->nsubs)
		drop_sub(f, i);
	r = next_replica(g, f);
	if (r >= 0 && ask(g, f, r))
		return;
	if (f->nsubs)
		return;		/* another attempt still runs */
	f->busy = false;
	f->hedge_at_ms = 0;
	/* Missing only if every replica said so; else the worst failure. */
	f->result = f->sub_missing == g->n ? FR_MISSING : f->sub_result;
	fetch_done(f);
}

static void group_cancel(struct backend *be, struct fetch *f)
{
	(void)be;
	while (f->nsubs)
		drop_sub(f, 0);
	f->busy = false;
	f->hedge_at_ms = 0;
}

static void group_close(struct backend *be)
{
	struct group *g = be->priv;
	unsigned int i;

	for (i = 0; i < g->n; i++) {
		g->member[i]->ops->close(g->member[i]);
		free(g->member[i]);
	}
	free(g);
}

void group_stats(const struct backend *be, uint64_t *hedges, uint64_t *wins)
{
	const struct group *g = be->priv;

	*hedges = g->hedges;
	*wins = g->hedge_wins;
}

unsigned int group_size(const struct backend *be)
{
	const struct group *g = be->priv;

	return g->n;
}

static const struct backend_ops group_ops = {
	.kind = "group",
	.start = group_start,
	.cancel = group_cancel,
	.close = group_close,
};

int store_group_open(const char *list, struct backend *be, char *msg,
		     size_t msglen)
{
	struct group *g = calloc(1, sizeof(*g));
	char *copy = strdup(list), *tok, *save;
	int ret = 0;

	if (!g || !copy) {
		snprintf(msg, msglen, "out of memory");
		ret = -ENOMEM;
		goto out;
	}
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (g->n == GROUP_MAX) {
			snprintf(msg, msglen, "--store-group %s: at most %d "
				 "replicas", list, GROUP_MAX);
			ret = -E2BIG;
			goto out;
		}
		if (!strncmp(tok, "group:", 6)) {
			snprintf(msg, msglen, "--store-group %s: a group "
				 "cannot hold a group", list);
			ret = -EINVAL;
			goto out;
		}
		ret = backend_open(tok, &g->member[g->n], msg, msglen);
		if (ret)
			goto out;
		g->n++;
		/*
		 * A directory read cannot be taken back from its thread, and
		 * a hedge is only worth it for a store far away.
		 */
		if (strcmp(g->member[g->n - 1]->ops->kind, "http") &&
		    strcmp(g->member[g->n - 1]->ops->kind, "s3")) {
			snprintf(msg, msglen, "--store-group %s: %s: a group "
				 "holds http(s):// and s3:// stores only",
				 list, tok);
			ret = -EINVAL;
			goto out;
		}
	}
	if (g->n < 2) {
		snprintf(msg, msglen, "--store-group %s: give two or more "
			 "store URLs, separated by commas", list);
		ret = -EINVAL;
		goto out;
	}
	be->ops = &group_ops;
	be->priv = g;
	g = NULL;
out:
	if (g) {
		while (g->n--) {
			g->member[g->n]->ops->close(g->member[g->n]);
			free(g->member[g->n]);
		}
		free(g);
	}
	free(copy);
	return ret;
}
