// SPDX-License-Identifier: GPL-2.0
/*
 * The metrics a monitoring system scrapes from `snapblk status
 * --prometheus`: the output of fake devices and a fake cache passes
 * `promtool check metrics` without a lint warning, the latency histogram
 * is cumulative in seconds with _count equal to the +Inf bucket, tiers
 * and label values come out as documented, counters the module did not
 * send are left out; and the quantiles `snapblk status` shows are those
 * of Prometheus' histogram_quantile().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "prom.h"

/* A device as an API-4 module reports it, with @hits cache hits. */
static void fake_dev(struct sb_dev *d, const char *name, uint32_t index)
{
	int i;

	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->index = index;
	d->image_size = 146 * 65536;
	d->chunk_size = 65536;
	for (i = 0; i < SNAPBLK_IMAGE_ID_LEN; i++)
		d->image_id[i] = i;
	d->fetch_timeout_ms = 2500;
	d->has_stats = true;
	for (i = 1; i <= SNAPBLK_STAT_MAX; i++) {
		if (i == SNAPBLK_STAT_PAD)
			continue;
		d->stats[i] = 10 * i;
		d->stat_present |= 1ULL << i;
	}
	d->stats[SNAPBLK_STAT_CACHE_HITS] = 500;
	d->stats[SNAPBLK_STAT_FETCH_LATENCY_US] = 1234567;
	d->has_readahead = d->has_max_inflight = d->has_prefetch_state = true;
	d->readahead_chunks = 8;
	d->max_inflight = 16;
	d->prefetch_state = SNAPBLK_PREFETCH_RUNNING;
	d->hist.has_latency = true;
	d->hist.latency[0] = 1;
	d->hist.latency[9] = 5;		/* [512, 1024) us */
	d->hist.latency[SNAPBLK_LATENCY_BUCKETS - 1] = 2;
	d->hist.has_tiers = true;
	d->hist.tier_present = 1U << SNAPBLK_TIER_DISK |
			       1U << SNAPBLK_TIER_STORE |
			       1U << (SNAPBLK_TIER_STORE + 7);
	d->hist.tiers[SNAPBLK_TIER_DISK] = 3;
	d->hist.tiers[SNAPBLK_TIER_STORE] = 4;
	d->hist.tiers[SNAPBLK_TIER_STORE + 7] = 1;
}

/* A device as an API-3 module reports it: one counter, CHUNKS = 4. */
static void old_dev(struct sb_dev *d, const char *name)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->chunk_size = 65536;
	d->has_stats = true;
	d->stat_present = 1ULL << SNAPBLK_STAT_CHUNKS;
	d->stats[SNAPBLK_STAT_CHUNKS] = 4;
}

static void fake_cache(struct sb_cache_status *c)
{
	int i;

	memset(c, 0, sizeof(*c));
	for (i = 1; i <= SNAPBLK_CACHE_STAT_MAX; i++) {
		if (i == SNAPBLK_CACHE_STAT_PAD)
			continue;
		c->stats[i] = 1000 + i;
		c->stat_present |= 1ULL << i;
	}
	c->hist.has_latency = true;
	c->hist.latency[3] = 7;
	c->hist.has_tiers = true;
	c->hist.tier_present = 1U << SNAPBLK_TIER_UNSPEC;
	c->hist.tiers[SNAPBLK_TIER_UNSPEC] = 7;
}

/* The exposition of @n devices and @cache, in a new string (free it). */
static char *render(const struct sb_dev *devs, size_t n,
		    const struct sb_cache_status *cache)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	if (sb_prom_write(f, devs, n, cache)) {
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	return buf;
}

/*
 * Run `promtool check metrics` on @text: its exit status, its output
 * (problems found) in @out.  -1 when promtool could not be run.
 */
static int promtool(const char *text, char *out, size_t outlen)
{
	char path[] = "/tmp/prom-test.XXXXXX", cmd[128];
	FILE *p;
	size_t n;
	int fd, st;

	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
	p = popen(cmd, "r");
	if (!p) {
		unlink(path);
		return -1;
	}
	n = fread(out, 1, outlen - 1, p);
	out[n] = '\0';
	st = pclose(p);
	unlink(path);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool have_promtool(void)
{
	return system("command -v promtool >/dev/null 2>&1") == 0;
}

/* Does @text hold the line @line (whole)? */
static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p = text;

	while ((p = strstr(p, line))) {
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || !p[n]))
			return true;
		p += n;
	}
	return false;
}

/* promtool accepts @text with no problem found; @text is freed. */
static void check_lint(struct __test_metadata *_metadata, char *text)
{
	char out[4096];
	int st;

	ASSERT_NE(NULL, text);
	st = promtool(text, out, sizeof(out));
	EXPECT_EQ(0, st);
	EXPECT_STREQ("", out);
	if (st || out[0])
		TH_LOG("promtool said:\n%s\non:\n%s", out, text);
	free(text);
}

#define NEED_PROMTOOL() do {						\
	if (!have_promtool())						\
		SKIP(return, "promtool is not installed (Debian package "	\
		     "prometheus): cannot check the output");		\
} while (0)

TEST(devices_and_cache_pass_promtool_lint)
{
	struct sb_dev devs[2];
	struct sb_cache_status c;

	NEED_PROMTOOL();
	fake_dev(&devs[0], "vm1", 0);
	fake_dev(&devs[1], "py", 3);
	fake_cache(&c);
	check_lint(_metadata, render(devs, 2, &c));
}

TEST(an_old_module_and_no_cache_pass_promtool_lint)
{
	struct sb_dev d;

	NEED_PROMTOOL();
	/* An API-3 module: the first counters only, no histogram. */
	old_dev(&d, "old");
	d.stat_present |= 1ULL << SNAPBLK_STAT_CACHE_HITS;
	check_lint(_metadata, render(&d, 1, NULL));
}

TEST(nothing_at_all_is_valid_and_empty)
{
	char *text = render(NULL, 0, NULL);

	ASSERT_NE(NULL, text);
	EXPECT_STREQ("", text);
	free(text);
}

TEST(histogram_is_cumulative_in_seconds)
{
	struct sb_dev d;
	char *text;

	fake_dev(&d, "vm1", 0);
	text = render(&d, 1, NULL);
	ASSERT_NE(NULL, text);
	EXPECT_TRUE(has_line(text, "# TYPE snapblk_fetch_duration_seconds "
			     "histogram"));
	/* bucket 0: under 2 us */
	EXPECT_TRUE(has_line(text, "snapblk_fetch_duration_seconds_bucket"
			     "{device=\"vm1\",index=\"0\",le=\"0.000002\"} 1"));
	/* bucket 8 ends at 512 us: still only the first fetch */
	EXPECT_TRUE(has_line(text, "snapblk_fetch_duration_seconds_bucket"
			     "{device=\"vm1\",index=\"0\",le=\"0.000512\"} 1"));
	/* bucket 9 [512, 1024) us ends at 1.024 ms */
	EXPECT_TRUE(has_line(text, "snapblk_fetch_duration_seconds_bucket"
			     "{device=\"vm1\",index=\"0\",le=\"0.001024\"} 6"));
	/* the last bounded bucket ends at 2^21 us */
	EXPECT_TRUE(has_line(text, "snapblk_fetch_duration_seconds_bucket"
			     "{device=\"vm1\",index=\"0\",le=\"2.097152\"} 6"));
	EXPECT_TRUE(has_line(text, "snapblk_fetch_duration_seconds_bucket"
			     "{device=\"vm1\",index=\"0\",le=\"+Inf\"} 8"));
	EXPECT_TRUE(has_line(text, "snapblk_fetch_duration_seconds_count"
			     "{device=\"vm1\",index=\"0\"} 8"));
	EXPECT_TRUE(has_line(text, "snapblk_fetch_duration_seconds_sum"
			     "{device=\"vm1\",index=\"0\"} 1.234567"));
	free(text);
}

TEST(settings_counters_state_and_tiers)
{
	struct sb_dev d;
	char *text;

	fake_dev(&d, "vm1", 2);
	text = render(&d, 1, NULL);
	ASSERT_NE(NULL, text);
	EXPECT_TRUE(has_line(text, "snapblk_device_info{device=\"vm1\","
			     "index=\"2\",image_id=\"000102030405060708090a0b0c"
			     "0d0e0f101112131415161718191a1b1c1d1e1f\"} 1"));
	EXPECT_TRUE(has_line(text, "snapblk_device_fetch_timeout_seconds"
			     "{device=\"vm1\",index=\"2\"} 2.5"));
	EXPECT_TRUE(has_line(text, "snapblk_device_readahead_chunks"
			     "{device=\"vm1\",index=\"2\"} 8"));
	EXPECT_TRUE(has_line(text, "# TYPE snapblk_device_cache_hits_total "
			     "counter"));
	EXPECT_TRUE(has_line(text, "snapblk_device_cache_hits_total"
			     "{device=\"vm1\",index=\"2\"} 500"));
	EXPECT_TRUE(has_line(text, "snapblk_device_fetches_total{device="
			     "\"vm1\",index=\"2\",kind=\"demand\"} 120"));
	EXPECT_TRUE(has_line(text, "snapblk_device_prefetch_state{device="
			     "\"vm1\",index=\"2\",state=\"running\"} 1"));
	EXPECT_TRUE(has_line(text, "snapblk_device_prefetch_state{device="
			     "\"vm1\",index=\"2\",state=\"done\"} 0"));
	EXPECT_TRUE(has_line(text, "snapblk_fetch_tier_chunks_total{device="
			     "\"vm1\",index=\"2\",tier=\"memory\"} 500"));
	EXPECT_TRUE(has_line(text, "snapblk_fetch_tier_chunks_total{device="
			     "\"vm1\",index=\"2\",tier=\"disk\"} 3"));
	EXPECT_TRUE(has_line(text, "snapblk_fetch_tier_chunks_total{device="
			     "\"vm1\",index=\"2\",tier=\"store0\"} 4"));
	EXPECT_TRUE(has_line(text, "snapblk_fetch_tier_chunks_total{device="
			     "\"vm1\",index=\"2\",tier=\"store7\"} 1"));
	/* a tier the module did not send is not made up */
	EXPECT_EQ(NULL, strstr(text, "tier=\"store1\""));
	free(text);
}

TEST(cache_families_have_no_device_label)
{
	struct sb_cache_status c;
	char *text;

	fake_cache(&c);
	text = render(NULL, 0, &c);
	ASSERT_NE(NULL, text);
	EXPECT_TRUE(has_line(text, "snapblk_cache_limit_bytes 1002"));
	EXPECT_TRUE(has_line(text, "snapblk_cache_hits_total 1006"));
	EXPECT_TRUE(has_line(text, "snapblk_cache_fetch_duration_seconds_"
			     "bucket{le=\"0.000016\"} 7"));
	EXPECT_TRUE(has_line(text, "snapblk_cache_fetch_duration_seconds_"
			     "count 7"));
	EXPECT_TRUE(has_line(text, "snapblk_cache_fetch_tier_chunks_total"
			     "{tier=\"unknown\"} 7"));
	EXPECT_EQ(NULL, strstr(text, "device="));
	free(text);
}

TEST(counters_not_sent_are_left_out)
{
	struct sb_dev d;
	char *text;

	old_dev(&d, "old");
	text = render(&d, 1, NULL);
	ASSERT_NE(NULL, text);
	EXPECT_TRUE(has_line(text, "snapblk_device_chunks{device=\"old\","
			     "index=\"0\"} 4"));
	EXPECT_EQ(NULL, strstr(text, "snapblk_device_cache_hits_total"));
	EXPECT_EQ(NULL, strstr(text, "readahead"));
	EXPECT_EQ(NULL, strstr(text, "prefetch_state"));
	EXPECT_EQ(NULL, strstr(text, "_bucket"));
	EXPECT_EQ(NULL, strstr(text, "tier="));
	free(text);
}

TEST(label_values_are_escaped)
{
	struct sb_dev d;
	char *text;

	old_dev(&d, "a\"b\\c");
	text = render(&d, 1, NULL);
	ASSERT_NE(NULL, text);
	EXPECT_TRUE(has_line(text, "snapblk_device_chunks{device=\"a\\\"b"
			     "\\\\c\",index=\"0\"} 4"));
	free(text);
}

TEST(bucket_bounds)
{
	EXPECT_EQ(2, sb_latency_le_us(0));
	EXPECT_EQ(1024, sb_latency_le_us(9));
	EXPECT_EQ(1ULL << 21, sb_latency_le_us(SNAPBLK_LATENCY_BUCKETS - 2));
	EXPECT_EQ(0, sb_latency_le_us(SNAPBLK_LATENCY_BUCKETS - 1));
}

TEST(quantiles_interpolate_inside_the_bucket)
{
	uint64_t b[SNAPBLK_LATENCY_BUCKETS] = { 0 };
	double us;
	bool open;

	b[3] = 100;		/* [8, 16) us */
	ASSERT_EQ(0, sb_latency_quantile(b, 0.5, &us, &open));
	EXPECT_FALSE(open);
	EXPECT_EQ(12000, (int)(us * 1000 + 0.5));
	ASSERT_EQ(0, sb_latency_quantile(b, 1, &us, &open));
	EXPECT_EQ(16000, (int)(us * 1000 + 0.5));

	/* 90 fast ones under 2 us, 10 in [1024, 2048) us */
	b[3] = 0;
	b[0] = 90;
	b[10] = 10;
	ASSERT_EQ(0, sb_latency_quantile(b, 0.5, &us, &open));
	EXPECT_TRUE(us < 2);
	ASSERT_EQ(0, sb_latency_quantile(b, 0.99, &us, &open));
	/* the 99th is the 9th of 10 in the bucket: 0.9 of the way */
	EXPECT_EQ(1024 + 922, (int)(us + 0.5));
	EXPECT_FALSE(open);
}

TEST(quantile_in_the_open_bucket_is_a_lower_bound)
{
	uint64_t b[SNAPBLK_LATENCY_BUCKETS] = { 0 };
	double us;
	bool open;

	b[1] = 1;
	b[SNAPBLK_LATENCY_BUCKETS - 1] = 99;
	ASSERT_EQ(0, sb_latency_quantile(b, 0.9, &us, &open));
	EXPECT_TRUE(open);
	EXPECT_EQ(1ULL << 21, (uint64_t)us);
}

TEST(quantile_of_nothing)
{
	uint64_t b[SNAPBLK_LATENCY_BUCKETS] = { 0 };
	double us;
	bool open;

	EXPECT_EQ(-ENODATA, sb_latency_quantile(b, 0.5, &us, &open));
	b[0] = 1;
	EXPECT_EQ(-EINVAL, sb_latency_quantile(b, 0, &us, &open));
	EXPECT_EQ(-EINVAL, sb_latency_quantile(b, 1.5, &us, &open));
}

TEST_HARNESS_MAIN
