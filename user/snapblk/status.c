// SPDX-License-Identifier: GPL-2.0
/*
 * snapblk info and status: one device, or every device and the shared
 * cache, for people (text), for scripts (--json) and for monitoring
 * (--prometheus, user/lib/prom.c).  See snapblk(8).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "json.h"
#include "prom.h"
#include "util.h"
#include "snapblk.h"

/* The quantiles status shows. */
static const struct {
	double q;
	const char *name;
} quantiles[] = {
	{ 0.50, "p50" },
	{ 0.90, "p90" },
	{ 0.99, "p99" },
};

#define NR_QUANTILES (sizeof(quantiles) / sizeof(quantiles[0]))

void sb_cli_status_or_die(struct sb_nl *nl, const char *name,
			  struct sb_dev *dev, const char *what)
{
	int ret = sb_nl_status(nl, name, dev);

	if (ret == -ENOENT)
		die(EXIT_FAIL, 0, sb_cli_nl_hint(ret), "%s: no device %s",
		    what, name);
	if (ret)
		sb_cli_nl_die(nl, ret, NULL, "%s", what);
}

/* Every chunk that is not ZERO is in memory: the store is not needed. */
static bool fully_resident(const struct sb_dev *d)
{
	return d->stats[SNAPBLK_STAT_RESIDENT] +
	       d->stats[SNAPBLK_STAT_ZERO_CHUNKS] >=
	       d->stats[SNAPBLK_STAT_CHUNKS];
}

static bool has_stat(const struct sb_dev *d, int stat)
{
	return d->stat_present & (1ULL << stat);
}

/* ---------------------------------------------------------------- JSON */

/* "latency":{...} of @h, whose latencies add up to @sum_us. */
static void print_latency_json(const struct sb_fetch_hist *h,
			       uint64_t sum_us)
{
	uint64_t cum = 0;
	double us;
	bool open;
	size_t q;
	int i;

	printf(",\"latency\":{\"count\":%" PRIu64 ",\"sum_us\":%" PRIu64,
	       sb_latency_count(h->latency), sum_us);
	for (q = 0; q < NR_QUANTILES; q++) {
		if (sb_latency_quantile(h->latency, quantiles[q].q, &us,
					&open))
			printf(",\"%s_us\":null", quantiles[q].name);
		else
			printf(",\"%s_us\":%.1f", quantiles[q].name, us);
	}
	/* Cumulative, as Prometheus has it; the last le_us is null: +Inf. */
	printf(",\"histogram\":[");
	for (i = 0; i < SNAPBLK_LATENCY_BUCKETS; i++) {
		cum += h->latency[i];
		if (i < SNAPBLK_LATENCY_BUCKETS - 1)
			printf("{\"le_us\":%" PRIu64 ",\"count\":%" PRIu64
			       "},", sb_latency_le_us(i), cum);
		else
			printf("{\"le_us\":null,\"count\":%" PRIu64 "}", cum);
	}
	printf("]}");
}

/*
 * The tiers the module sent, "memory" (the cache hits) first: as
 * ',"tiers":{"memory":5000,"disk":12}' or as "tiers:  memory 5000,
 * disk 12" and a newline.
 */
static void print_tiers(const struct sb_fetch_hist *h, bool has_hits,
			uint64_t hits, bool json)
{
	const char *fmt = json ? "%s\"%s\":%" PRIu64 : "%s%s %" PRIu64;
	const char *sep = "", *next = json ? "," : ", ";
	int t;

	if (json)
		printf(",\"tiers\":{");
	else
		printf("%-19s ", "tiers:");
	if (has_hits) {
		printf(fmt, sep, "memory", hits);
		sep = next;
	}
	for (t = 0; t <= SNAPBLK_TIER_MAX; t++) {
		if (!(h->tier_present & (1U << t)))
			continue;
		printf(fmt, sep, sb_tier_name(t), h->tiers[t]);
		sep = next;
	}
	printf(json ? "}" : "\n");
}

void sb_cli_print_dev_json(const struct sb_dev *d)
{
	char hex[2 * SNAPBLK_IMAGE_ID_LEN + 1];
	const char *sep = "";
	int i;

	sb_hex(d->image_id, SNAPBLK_IMAGE_ID_LEN, hex);
	printf("{\"name\":");
	json_print_string(d->name);
	printf(",\"index\":%" PRIu32 ",\"device\":\"/dev/snapblk%" PRIu32 "\""
	       ",\"image_size\":%" PRIu64 ",\"chunk_size\":%" PRIu32
	       ",\"image_id\":\"%s\",\"fetch_timeout_ms\":%" PRIu32,
	       d->index, d->index, d->image_size, d->chunk_size, hex,
	       d->fetch_timeout_ms);
	if (d->has_readahead)
		printf(",\"readahead_chunks\":%" PRIu32, d->readahead_chunks);
	if (d->has_max_inflight)
		printf(",\"max_inflight\":%" PRIu32, d->max_inflight);
	if (d->has_prefetch_state)
		printf(",\"prefetch\":\"%s\"",
		       sb_prefetch_state_name(d->prefetch_state));
	if (!d->has_stats)
		goto hist;
	if (has_stat(d, SNAPBLK_STAT_RESIDENT) &&
	    has_stat(d, SNAPBLK_STAT_CHUNKS))
		printf(",\"fully_resident\":%s",
		       fully_resident(d) ? "true" : "false");
	printf(",\"stats\":{");
	for (i = 1; i <= SNAPBLK_STAT_MAX; i++) {
		if (!has_stat(d, i) || !sb_stat_name(i))
			continue;
		printf("%s\"%s\":%" PRIu64, sep, sb_stat_name(i), d->stats[i]);
		sep = ",";
	}
	printf("}");
hist:
	if (d->hist.has_latency)
		print_latency_json(&d->hist,
				   d->stats[SNAPBLK_STAT_FETCH_LATENCY_US]);
	if (d->hist.has_tiers)
		print_tiers(&d->hist, has_stat(d, SNAPBLK_STAT_CACHE_HITS),
			    d->stats[SNAPBLK_STAT_CACHE_HITS], true);
	printf("}");
}

static void print_cache_json(const struct sb_cache_status *c)
{
	const char *sep = "";
	int i;

	putchar('{');
	for (i = 1; i <= SNAPBLK_CACHE_STAT_MAX; i++) {
		if (!(c->stat_present & (1ULL << i)) || !sb_cache_stat_name(i))
			continue;
		printf("%s\"%s\":%" PRIu64, sep, sb_cache_stat_name(i),
		       c->stats[i]);
		sep = ",";
	}
	if (c->hist.has_latency)
		print_latency_json(&c->hist, c->stats
				   [SNAPBLK_CACHE_STAT_FETCH_LATENCY_US]);
	if (c->hist.has_tiers)
		print_tiers(&c->hist, c->stat_present &
			    (1ULL << SNAPBLK_CACHE_STAT_HITS),
			    c->stats[SNAPBLK_CACHE_STAT_HITS], true);
	putchar('}');
}

/* ---------------------------------------------------------------- text */

/* A duration for people: "850 us", "1.2 ms", "2.1 s". */
static const char *fmt_us(double us, char *buf, size_t len)
{
	if (us < 1000)
		snprintf(buf, len, "%.0f us", us);
	else if (us < 1000000)
		snprintf(buf, len, "%.*f ms", us < 10000 ? 1 : 0, us / 1000);
	else
		snprintf(buf, len, "%.1f s", us / 1000000);
	return buf;
}

/*
 * "fetch latency:  p50 1.2 ms, p90 3.4 ms, p99 12 ms (1234 fetches,
 * mean 1.5 ms)", estimated from the log2 histogram.
 */
static void print_latency_text(const struct sb_fetch_hist *h,
			       uint64_t sum_us)
{
	uint64_t n = sb_latency_count(h->latency);
	char buf[32];
	double us;
	bool open;
	size_t q;

	printf("%-19s ", "fetch latency:");
	if (!n) {
		printf("no fetch yet\n");
		return;
	}
	for (q = 0; q < NR_QUANTILES; q++) {
		if (sb_latency_quantile(h->latency, quantiles[q].q, &us,
					&open))
			continue;
		printf("%s%s %s%s", q ? ", " : "", quantiles[q].name,
		       open ? "over " : "", fmt_us(us, buf, sizeof(buf)));
	}
	printf(" (%" PRIu64 " fetch%s, mean %s)\n", n, n == 1 ? "" : "es",
	       fmt_us((double)sum_us / (double)n, buf, sizeof(buf)));
}

/*
 * Labels of the counters for people; JSON uses sb_stat_name().  The
 * latency sum and count are in the fetch latency line instead.
 */
static const char *const stat_labels[SNAPBLK_STAT_MAX + 1] = {
	[SNAPBLK_STAT_CHUNKS] = "chunks",
	[SNAPBLK_STAT_ZERO_CHUNKS] = "zero chunks",
	[SNAPBLK_STAT_RESIDENT] = "resident chunks",
	[SNAPBLK_STAT_CACHE_HITS] = "cache hits",
	[SNAPBLK_STAT_CACHE_MISSES] = "cache misses",
	[SNAPBLK_STAT_BYTES_FETCHED] = "bytes fetched",
	[SNAPBLK_STAT_FETCH_ERRORS] = "fetch errors",
	[SNAPBLK_STAT_INFLIGHT] = "fetches in flight",
	[SNAPBLK_STAT_REFETCHES] = "re-fetches",
	[SNAPBLK_STAT_EVICTIONS] = "evictions",
	[SNAPBLK_STAT_DEMAND_FETCHES] = "demand fetches",
	[SNAPBLK_STAT_READAHEAD_FETCHES] = "readahead fetches",
	[SNAPBLK_STAT_PREFETCH_FETCHES] = "prefetch fetches",
	[SNAPBLK_STAT_PREFETCH_USED] = "prefetched, used",
	[SNAPBLK_STAT_PREFETCH_WASTED] = "prefetched, wasted",
	[SNAPBLK_STAT_PREFETCH_JOINED] = "prefetch joined",
	[SNAPBLK_STAT_RETRIES] = "store retries",
	[SNAPBLK_STAT_TRACE_CHUNKS] = "trace chunks",
};

static void print_dev_text(const struct sb_dev *d)
{
	char size[16], hex[2 * SNAPBLK_IMAGE_ID_LEN + 1];
	uint64_t stored;
	int i;

	printf("%-19s %s\n", "name:", d->name);
	printf("%-19s /dev/snapblk%" PRIu32 "\n", "device:", d->index);
	printf("%-19s %" PRIu64 " (%s)\n", "image size:", d->image_size,
	       sb_fmt_size(d->image_size, SB_SIZE_SHORT, size, sizeof(size)));
	printf("%-19s %" PRIu32 " (%s)\n", "chunk size:", d->chunk_size,
	       sb_fmt_size(d->chunk_size, SB_SIZE_SHORT, size, sizeof(size)));
	sb_hex(d->image_id, SNAPBLK_IMAGE_ID_LEN, hex);
	printf("%-19s %s\n", "image id:", hex);
	printf("%-19s %" PRIu32 " ms\n", "fetch timeout:", d->fetch_timeout_ms);
	if (d->has_readahead) {
		if (d->readahead_chunks)
			printf("%-19s %" PRIu32 " chunks\n", "readahead:",
			       d->readahead_chunks);
		else
			printf("%-19s off\n", "readahead:");
	}
	if (d->has_max_inflight)
		printf("%-19s %" PRIu32 " fetches\n", "max in flight:",
		       d->max_inflight);
	if (d->has_prefetch_state) {
		printf("%-19s %s", "prefetch:",
		       sb_prefetch_state_name(d->prefetch_state));
		if (d->prefetch_state != SNAPBLK_PREFETCH_NONE &&
		    has_stat(d, SNAPBLK_STAT_PREFETCH_QUEUED))
			printf(" (%" PRIu64 " of %" PRIu64 " chunks handled)",
			       d->stats[SNAPBLK_STAT_PREFETCH_DONE],
			       d->stats[SNAPBLK_STAT_PREFETCH_QUEUED]);
		printf("\n");
	}
	if (has_stat(d, SNAPBLK_STAT_RESIDENT) &&
	    has_stat(d, SNAPBLK_STAT_CHUNKS)) {
		/* ZERO chunks are never fetched nor held. */
		stored = d->stats[SNAPBLK_STAT_CHUNKS] -
			 d->stats[SNAPBLK_STAT_ZERO_CHUNKS];
		printf("%-19s %" PRIu64 "/%" PRIu64 " chunks%s\n", "resident:",
		       d->stats[SNAPBLK_STAT_RESIDENT], stored,
		       fully_resident(d) ?
		       " (all: the store is no longer needed)" : "");
	}
	if (d->hist.has_latency)
		print_latency_text(&d->hist,
				   d->stats[SNAPBLK_STAT_FETCH_LATENCY_US]);
	if (d->hist.has_tiers)
		print_tiers(&d->hist, has_stat(d, SNAPBLK_STAT_CACHE_HITS),
			    d->stats[SNAPBLK_STAT_CACHE_HITS], false);
	for (i = 1; i <= SNAPBLK_STAT_MAX; i++) {
		char label[32];

		if (!has_stat(d, i) || !stat_labels[i])
			continue;
		snprintf(label, sizeof(label), "%s:", stat_labels[i]);
		printf("%-19s %" PRIu64 "\n", label, d->stats[i]);
	}
}

static void print_cache_text(const struct sb_cache_status *c)
{
	char a[16], b[16], p[16];
	int i;

	printf("shared cache:\n");
	printf("%-19s %s of %s (%s protected)\n", "held:",
	       sb_fmt_size(c->stats[SNAPBLK_CACHE_STAT_BYTES], SB_SIZE_IEC,
			   a, sizeof(a)),
	       sb_fmt_size(c->stats[SNAPBLK_CACHE_STAT_LIMIT_BYTES],
			   SB_SIZE_IEC, b, sizeof(b)),
	       sb_fmt_size(c->stats[SNAPBLK_CACHE_STAT_PROTECTED_BYTES],
			   SB_SIZE_IEC, p, sizeof(p)));
	if (c->hist.has_latency)
		print_latency_text(&c->hist, c->stats
				   [SNAPBLK_CACHE_STAT_FETCH_LATENCY_US]);
	if (c->hist.has_tiers)
		print_tiers(&c->hist, c->stat_present &
			    (1ULL << SNAPBLK_CACHE_STAT_HITS),
			    c->stats[SNAPBLK_CACHE_STAT_HITS], false);
	for (i = 1; i <= SNAPBLK_CACHE_STAT_MAX; i++) {
		const char *name = sb_cache_stat_name(i);
		char label[32], *p;

		/* Those in the lines above. */
		if (!(c->stat_present & (1ULL << i)) || !name ||
		    i == SNAPBLK_CACHE_STAT_LIMIT_BYTES ||
		    i == SNAPBLK_CACHE_STAT_BYTES ||
		    i == SNAPBLK_CACHE_STAT_PROTECTED_BYTES ||
		    i == SNAPBLK_CACHE_STAT_FETCH_LATENCY_US ||
		    i == SNAPBLK_CACHE_STAT_FETCHES_DONE)
			continue;
		snprintf(label, sizeof(label), "%s:", name);
		for (p = label; *p; p++)
			if (*p == '_')
				*p = ' ';
		printf("%-19s %" PRIu64 "\n", label, c->stats[i]);
	}
}

/* ------------------------------------------------------------ commands */

/* info NAME and status NAME */
static int show_one(const char *name)
{
	struct sb_dev d;
	struct sb_nl nl;
	char what[64];

	sb_cli_check_name_len(name);
	snprintf(what, sizeof(what), "cannot query device %s", name);
	sb_cli_connect(&nl, what);
	sb_cli_status_or_die(&nl, name, &d, what);
	sb_nl_close(&nl);

	if (sb_cli_opts.prometheus)
		return sb_prom_write(stdout, &d, 1, NULL) ? EXIT_FAIL : EXIT_OK;
	if (sb_cli_opts.json) {
		sb_cli_print_dev_json(&d);
		putchar('\n');
		return EXIT_OK;
	}
	print_dev_text(&d);
	return EXIT_OK;
}

int sb_cli_info(int argc, char **argv)
{
	(void)argc;
	return show_one(argv[0]);
}

struct dev_list {
	struct sb_dev *devs;
	size_t n, cap;
};

static int collect_dev(const struct sb_dev *dev, void *arg)
{
	struct dev_list *l = arg;
	struct sb_dev *p;

	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		p = realloc(l->devs, l->cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->devs = p;
	}
	l->devs[l->n++] = *dev;
	return 0;
}

static int cmp_dev(const void *a, const void *b)
{
	const struct sb_dev *x = a, *y = b;

	return x->index < y->index ? -1 : x->index > y->index;
}

size_t sb_cli_list_devices(struct sb_nl *nl, const char *what,
			   struct sb_dev **devs)
{
	struct dev_list l = { 0 };
	int ret;

	ret = sb_nl_status_all(nl, collect_dev, &l);
	if (ret)
		sb_cli_nl_die(nl, ret, NULL, "%s", what);
	qsort(l.devs, l.n, sizeof(*l.devs), cmp_dev);
	*devs = l.devs;
	return l.n;
}

int sb_cli_status(int argc, char **argv)
{
	struct sb_cache_status cache;
	struct dev_list l = { 0 };
	bool has_cache;
	struct sb_nl nl;
	size_t i;
	int ret;

	if (argc)
		return show_one(argv[0]);
	sb_cli_connect(&nl, "cannot query the devices");
	l.n = sb_cli_list_devices(&nl, "cannot query the devices", &l.devs);
	/* A module before API 4 has no CACHE_STATUS: devices only. */
	ret = sb_nl_cache_status(&nl, &cache);
	if (ret && ret != -EOPNOTSUPP)
		sb_cli_nl_die(&nl, ret, NULL, "cannot query the shared cache");
	has_cache = !ret;
	sb_nl_close(&nl);

	ret = EXIT_OK;
	if (sb_cli_opts.prometheus) {
		if (sb_prom_write(stdout, l.devs, l.n,
				  has_cache ? &cache : NULL))
			ret = EXIT_FAIL;
	} else if (sb_cli_opts.json) {
		printf("{\"devices\":[");
		for (i = 0; i < l.n; i++) {
			if (i)
				putchar(',');
			sb_cli_print_dev_json(&l.devs[i]);
		}
		printf("],\"cache\":");
		if (has_cache)
			print_cache_json(&cache);
		else
			printf("null");
		printf("}\n");
	} else {
		for (i = 0; i < l.n; i++) {
			print_dev_text(&l.devs[i]);
			putchar('\n');
		}
		if (!l.n)
			printf("no devices\n\n");
		if (has_cache)
			print_cache_text(&cache);
	}
	free(l.devs);
	return ret;
}
