// SPDX-License-Identifier: GPL-2.0
/*
 * Latency quantiles and the Prometheus text format (prom.h).
 *
 * The text format: a family is a "# HELP" line, a "# TYPE" line, then
 * all its samples, one a line; families do not interleave.  Families
 * no device (or cache) has a sample of are left out.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "hex.h"
#include "prom.h"

/* ------------------------------------------------------------ quantiles */

uint64_t sb_latency_le_us(int i)
{
	if (i < 0 || i >= SNAPBLK_LATENCY_BUCKETS - 1)
		return 0;
	return 2ULL << i;
}

uint64_t sb_latency_count(const uint64_t *buckets)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < SNAPBLK_LATENCY_BUCKETS; i++)
		n += buckets[i];
	return n;
}

int sb_latency_quantile(const uint64_t *buckets, double q, double *us,
			bool *open)
{
	uint64_t total = sb_latency_count(buckets), before = 0;
	double rank, lo, hi;
	int i;

	if (!(q > 0 && q <= 1))
		return -EINVAL;
	if (!total)
		return -ENODATA;
	rank = q * (double)total;
	for (i = 0; i < SNAPBLK_LATENCY_BUCKETS - 1; i++) {
		if ((double)(before + buckets[i]) >= rank && buckets[i])
			break;
		before += buckets[i];
	}
	lo = i ? (double)(1ULL << i) : 0;
	*open = i == SNAPBLK_LATENCY_BUCKETS - 1;
	if (*open) {
		*us = lo;
		return 0;
	}
	hi = (double)sb_latency_le_us(i);
	*us = lo + (hi - lo) * (rank - (double)before) / (double)buckets[i];
	return 0;
}

/* ----------------------------------------------------------- text format */

/* v / 10^digits, written exactly ("0.000002", "30", "1.5") into @buf. */
static const char *fmt_fixed(char *buf, size_t len, uint64_t v, int digits)
{
	uint64_t div = 1, frac;
	int i;

	for (i = 0; i < digits; i++)
		div *= 10;
	frac = v % div;
	if (!frac) {
		snprintf(buf, len, "%" PRIu64, v / div);
		return buf;
	}
	/* Drop trailing zeros of the fraction. */
	while (!(frac % 10)) {
		frac /= 10;
		digits--;
	}
	snprintf(buf, len, "%" PRIu64 ".%0*" PRIu64, v / div, digits, frac);
	return buf;
}

/* A label value: backslash, double quote and newline escaped. */
static void put_label_value(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void put_family(FILE *f, const char *name, const char *type,
		       const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/*
 * "{device="NAME",index="N",@extra}" for a device, "{@extra}" without
 * one, nothing when both are missing.  @extra is one label, already
 * formatted, or NULL.
 */
static void put_labels(FILE *f, const struct sb_dev *d, const char *extra)
{
	if (!d && !extra)
		return;
	fputc('{', f);
	if (d) {
		fputs("device=\"", f);
		put_label_value(f, d->name);
		fprintf(f, "\",index=\"%" PRIu32 "\"", d->index);
	}
	if (extra)
		fprintf(f, "%s%s", d ? "," : "", extra);
	fputc('}', f);
}

/* What a sample's value comes from. */
enum src {
	SRC_STAT,		/* stats[stat] of a device or the cache */
	SRC_IMAGE_SIZE,		/* device fields: */
	SRC_CHUNK_SIZE,
	SRC_TIMEOUT,		/* fetch_timeout_ms, written in seconds */
	SRC_READAHEAD,
	SRC_MAX_INFLIGHT,
};

/*
 * One sample per device (or of the cache).  Consecutive entries with
 * the same name are one family: the first one's type and help count.
 */
struct metric {
	const char *name;
	const char *type;	/* "gauge" or "counter" */
	const char *help;
	enum src src;
	int stat;		/* SRC_STAT: SNAPBLK_STAT_* or _CACHE_STAT_* */
	const char *label;	/* one more label, formatted, or NULL */
};

#define G(n, s, h) { "snapblk_device_" n, "gauge", h, SRC_STAT, s, NULL }
#define C(n, s, h) { "snapblk_device_" n, "counter", h, SRC_STAT, s, NULL }
#define KIND(s, k) { "snapblk_device_fetches_total", "counter", \
	"Chunk fetches the device started, by what asked for them.", \
	SRC_STAT, s, "kind=\"" k "\"" }

static const struct metric dev_metrics[] = {
	{ "snapblk_device_size_bytes", "gauge", "Size of the image.",
	  SRC_IMAGE_SIZE, 0, NULL },
	{ "snapblk_device_chunk_size_bytes", "gauge",
	  "Chunk size of the image.", SRC_CHUNK_SIZE, 0, NULL },
	{ "snapblk_device_fetch_timeout_seconds", "gauge",
	  "A fetch not done after this long fails its reads.",
	  SRC_TIMEOUT, 0, NULL },
	{ "snapblk_device_readahead_chunks", "gauge",
	  "Chunks fetched ahead of a sequential miss (0: readahead off).",
	  SRC_READAHEAD, 0, NULL },
	{ "snapblk_device_max_inflight_fetches", "gauge",
	  "Most fetches of the device at once.", SRC_MAX_INFLIGHT, 0, NULL },
	G("chunks", SNAPBLK_STAT_CHUNKS, "Chunks in the image."),
	G("zero_chunks", SNAPBLK_STAT_ZERO_CHUNKS,
	  "Chunks of the image that are all zero (never fetched)."),
	G("resident_chunks", SNAPBLK_STAT_RESIDENT,
	  "Chunks the device read that are in the memory cache now."),
	G("inflight_fetches", SNAPBLK_STAT_INFLIGHT,
	  "Fetches queued or in progress."),
	G("prefetch_queued_chunks", SNAPBLK_STAT_PREFETCH_QUEUED,
	  "Chunks in the last prefetch list."),
	G("prefetch_done_chunks", SNAPBLK_STAT_PREFETCH_DONE,
	  "Chunks of the last prefetch list handled so far."),
	G("trace_chunks", SNAPBLK_STAT_TRACE_CHUNKS,
	  "Chunks in the device's first-touch trace."),
	C("cache_hits_total", SNAPBLK_STAT_CACHE_HITS,
	  "Chunk lookups served from the memory cache."),
	C("cache_misses_total", SNAPBLK_STAT_CACHE_MISSES,
	  "Chunk lookups that waited for a fetch."),
	C("fetched_bytes_total", SNAPBLK_STAT_BYTES_FETCHED,
	  "Ciphertext bytes fetched and accepted."),
	C("fetch_errors_total", SNAPBLK_STAT_FETCH_ERRORS,
	  "Fetches that failed, were bad or timed out."),
	C("refetches_total", SNAPBLK_STAT_REFETCHES,
	  "Bad answers fetched once more."),
	C("evictions_total", SNAPBLK_STAT_EVICTIONS,
	  "Resident chunks of the device dropped from the memory cache."),
	KIND(SNAPBLK_STAT_DEMAND_FETCHES, "demand"),
	KIND(SNAPBLK_STAT_READAHEAD_FETCHES, "readahead"),
	KIND(SNAPBLK_STAT_PREFETCH_FETCHES, "prefetch"),
	C("prefetch_used_chunks_total", SNAPBLK_STAT_PREFETCH_USED,
	  "Chunks fetched in the background that were read since."),
	C("prefetch_wasted_chunks_total", SNAPBLK_STAT_PREFETCH_WASTED,
	  "Chunks fetched in the background evicted unread."),
	C("prefetch_joined_total", SNAPBLK_STAT_PREFETCH_JOINED,
	  "Misses that joined a background fetch in flight."),
	C("store_retries_total", SNAPBLK_STAT_RETRIES,
	  "Store requests beyond the first, as the daemon reported."),
};

#undef G
#undef C
#undef KIND
#define G(n, s, h) { "snapblk_cache_" n, "gauge", h, SRC_STAT, s, NULL }
#define C(n, s, h) { "snapblk_cache_" n, "counter", h, SRC_STAT, s, NULL }

static const struct metric cache_metrics[] = {
	G("limit_bytes", SNAPBLK_CACHE_STAT_LIMIT_BYTES,
	  "Bound of the shared memory cache (cache_mb)."),
	G("bytes", SNAPBLK_CACHE_STAT_BYTES,
	  "Plaintext held in the shared memory cache."),
	G("protected_bytes", SNAPBLK_CACHE_STAT_PROTECTED_BYTES,
	  "Of which in the protected (hit twice) part."),
	G("chunks", SNAPBLK_CACHE_STAT_CHUNKS,
	  "Chunks held in the shared memory cache."),
	G("pending_fetches", SNAPBLK_CACHE_STAT_PENDING,
	  "Fetches queued or in progress."),
	C("hits_total", SNAPBLK_CACHE_STAT_HITS,
	  "Lookups served from memory."),
	C("misses_total", SNAPBLK_CACHE_STAT_MISSES,
	  "Lookups that waited for a fetch."),
	C("inserts_total", SNAPBLK_CACHE_STAT_INSERTS, "Chunks added."),
	C("evictions_total", SNAPBLK_CACHE_STAT_EVICTIONS,
	  "Chunks dropped to make room."),
	C("dropped_chunks_total", SNAPBLK_CACHE_STAT_DROPPED,
	  "Chunks dropped by drop_cache."),
	C("promotions_total", SNAPBLK_CACHE_STAT_PROMOTIONS,
	  "Chunks moved from probation to protected."),
	C("fetched_bytes_total", SNAPBLK_CACHE_STAT_BYTES_FETCHED,
	  "Ciphertext bytes fetched and accepted."),
	C("fetch_errors_total", SNAPBLK_CACHE_STAT_FETCH_ERRORS,
	  "Fetches that failed, were bad or timed out."),
	C("background_fetches_total", SNAPBLK_CACHE_STAT_BACKGROUND_FETCHES,
	  "Fetches started for readahead, prefetch or hydration."),
	C("store_retries_total", SNAPBLK_CACHE_STAT_RETRIES,
	  "Store requests beyond the first, as the daemon reported."),
};

#undef G
#undef C

#define NR(a) (sizeof(a) / sizeof((a)[0]))

/* Does device @d (or, when NULL, the cache @c) have metric @m? */
static bool has_value(const struct metric *m, const struct sb_dev *d,
		      const struct sb_cache_status *c)
{
	switch (m->src) {
	case SRC_STAT:
		return d ? d->stat_present & (1ULL << m->stat) :
		       c->stat_present & (1ULL << m->stat);
	case SRC_READAHEAD:
		return d->has_readahead;
	case SRC_MAX_INFLIGHT:
		return d->has_max_inflight;
	default:
		return true;
	}
}

static void put_value(FILE *f, const struct metric *m,
		      const struct sb_dev *d, const struct sb_cache_status *c)
{
	char num[32];

	switch (m->src) {
	case SRC_STAT:
		fprintf(f, "%" PRIu64,
			d ? d->stats[m->stat] : c->stats[m->stat]);
		break;
	case SRC_IMAGE_SIZE:
		fprintf(f, "%" PRIu64, d->image_size);
		break;
	case SRC_CHUNK_SIZE:
		fprintf(f, "%" PRIu32, d->chunk_size);
		break;
	case SRC_TIMEOUT:
		fputs(fmt_fixed(num, sizeof(num), d->fetch_timeout_ms, 3), f);
		break;
	case SRC_READAHEAD:
		fprintf(f, "%" PRIu32, d->readahead_chunks);
		break;
	case SRC_MAX_INFLIGHT:
		fprintf(f, "%" PRIu32, d->max_inflight);
		break;
	}
}

/*
 * The families of table @ms: for each device of @devs, or for the cache
 * @c when @devs is NULL.
 */
static void put_table(FILE *f, const struct metric *ms, size_t nms,
		      const struct sb_dev *devs, size_t n,
		      const struct sb_cache_status *c)
{
	size_t i, j, k, end, rows = devs ? n : 1;
	bool any;

	for (i = 0; i < nms; i = end) {
		for (end = i + 1; end < nms &&
		     !strcmp(ms[end].name, ms[i].name); end++)
			;
		any = false;
		for (j = i; j < end && !any; j++)
			for (k = 0; k < rows && !any; k++)
				any = has_value(&ms[j], devs ? &devs[k] : NULL,
						c);
		if (!any)
			continue;
		put_family(f, ms[i].name, ms[i].type, ms[i].help);
		for (j = i; j < end; j++) {
			for (k = 0; k < rows; k++) {
				const struct sb_dev *d = devs ? &devs[k] : NULL;

				if (!has_value(&ms[j], d, c))
					continue;
				fputs(ms[j].name, f);
				put_labels(f, d, ms[j].label);
				fputc(' ', f);
				put_value(f, &ms[j], d, c);
				fputc('\n', f);
			}
		}
	}
}

/* The histogram samples of @h (its family lines written already). */
static void put_histogram(FILE *f, const char *name, const struct sb_dev *d,
			  const struct sb_fetch_hist *h, uint64_t sum_us)
{
	char le[40], num[32];
	uint64_t cum = 0;
	int i;

	for (i = 0; i < SNAPBLK_LATENCY_BUCKETS; i++) {
		cum += h->latency[i];
		if (i < SNAPBLK_LATENCY_BUCKETS - 1)
			snprintf(le, sizeof(le), "le=\"%s\"",
				 fmt_fixed(num, sizeof(num),
					   sb_latency_le_us(i), 6));
		else
			snprintf(le, sizeof(le), "le=\"+Inf\"");
		fprintf(f, "%s_bucket", name);
		put_labels(f, d, le);
		fprintf(f, " %" PRIu64 "\n", cum);
	}
	fprintf(f, "%s_sum", name);
	put_labels(f, d, NULL);
	fprintf(f, " %s\n%s_count", fmt_fixed(num, sizeof(num), sum_us, 6),
		name);
	put_labels(f, d, NULL);
	fprintf(f, " %" PRIu64 "\n", cum);
}

/* tier="memory" (the hits), then each tier the module sent. */
static void put_tiers(FILE *f, const char *name, const struct sb_dev *d,
		      const struct sb_fetch_hist *h, bool has_hits,
		      uint64_t hits)
{
	char label[32];
	int t;

	if (has_hits) {
		fputs(name, f);
		put_labels(f, d, "tier=\"memory\"");
		fprintf(f, " %" PRIu64 "\n", hits);
	}
	for (t = 0; t <= SNAPBLK_TIER_MAX; t++) {
		if (!(h->tier_present & (1U << t)))
			continue;
		snprintf(label, sizeof(label), "tier=\"%s\"", sb_tier_name(t));
		fputs(name, f);
		put_labels(f, d, label);
		fprintf(f, " %" PRIu64 "\n", h->tiers[t]);
	}
}

static const char *const hist_help =
	"Time from a miss (or a background request) to the verified chunk "
	"in the cache.";
static const char *const tier_help =
	"Chunks by where they came from: memory (cache hits), the host "
	"disk cache, or store N of the daemon.";

static void put_devices(FILE *f, const struct sb_dev *devs, size_t n)
{
	static const char *const name_hist = "snapblk_fetch_duration_seconds";
	static const char *const name_tier = "snapblk_fetch_tier_chunks_total";
	bool any;
	size_t i;
	uint32_t s;

	put_family(f, "snapblk_device_info", "gauge",
		   "A mapped device; image_id is that of its image.");
	for (i = 0; i < n; i++) {
		char id[2 * SNAPBLK_IMAGE_ID_LEN + 1], label[96];

		sb_hex(devs[i].image_id, SNAPBLK_IMAGE_ID_LEN, id);
		snprintf(label, sizeof(label), "image_id=\"%s\"", id);
		fputs("snapblk_device_info", f);
		put_labels(f, &devs[i], label);
		fputs(" 1\n", f);
	}
	put_table(f, dev_metrics, NR(dev_metrics), devs, n, NULL);

	for (i = 0, any = false; i < n; i++)
		any |= devs[i].has_prefetch_state;
	if (any) {
		put_family(f, "snapblk_device_prefetch_state", "gauge",
			   "1 for the state the device's prefetch is in.");
		for (i = 0; i < n; i++) {
			if (!devs[i].has_prefetch_state)
				continue;
			for (s = SNAPBLK_PREFETCH_NONE;
			     s <= SNAPBLK_PREFETCH_STOPPED; s++) {
				char label[32];

				snprintf(label, sizeof(label), "state=\"%s\"",
					 sb_prefetch_state_name(s));
				fputs("snapblk_device_prefetch_state", f);
				put_labels(f, &devs[i], label);
				fprintf(f, " %d\n",
					devs[i].prefetch_state == s);
			}
		}
	}

	for (i = 0, any = false; i < n; i++)
		any |= devs[i].hist.has_latency;
	if (any) {
		put_family(f, name_hist, "histogram", hist_help);
		for (i = 0; i < n; i++) {
			const struct sb_dev *d = &devs[i];

			if (d->hist.has_latency)
				put_histogram(f, name_hist, d, &d->hist,
					      d->stats
					      [SNAPBLK_STAT_FETCH_LATENCY_US]);
		}
	}

	for (i = 0, any = false; i < n; i++)
		any |= devs[i].hist.has_tiers;
	if (any) {
		put_family(f, name_tier, "counter", tier_help);
		for (i = 0; i < n; i++) {
			const struct sb_dev *d = &devs[i];

			if (d->hist.has_tiers)
				put_tiers(f, name_tier, d, &d->hist,
					  d->stat_present &
					  (1ULL << SNAPBLK_STAT_CACHE_HITS),
					  d->stats[SNAPBLK_STAT_CACHE_HITS]);
		}
	}
}

static void put_cache(FILE *f, const struct sb_cache_status *c)
{
	static const char *const name_hist =
		"snapblk_cache_fetch_duration_seconds";
	static const char *const name_tier =
		"snapblk_cache_fetch_tier_chunks_total";

	put_table(f, cache_metrics, NR(cache_metrics), NULL, 0, c);
	if (c->hist.has_latency) {
		put_family(f, name_hist, "histogram", hist_help);
		put_histogram(f, name_hist, NULL, &c->hist,
			      c->stats[SNAPBLK_CACHE_STAT_FETCH_LATENCY_US]);
	}
	if (c->hist.has_tiers) {
		put_family(f, name_tier, "counter", tier_help);
		put_tiers(f, name_tier, NULL, &c->hist,
			  c->stat_present & (1ULL << SNAPBLK_CACHE_STAT_HITS),
			  c->stats[SNAPBLK_CACHE_STAT_HITS]);
	}
}

int sb_prom_write(FILE *f, const struct sb_dev *devs, size_t n,
		  const struct sb_cache_status *cache)
{
	if (n)
		put_devices(f, devs, n);
	if (cache)
		put_cache(f, cache);
	return ferror(f) ? -EIO : 0;
}
