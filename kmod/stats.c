// SPDX-License-Identifier: GPL-2.0
/* Counters shared by the cache, the fetch path and the devices. */
#include "snapblk.h"
#include "stats.h"

#include <linux/ktime.h>
#include <linux/log2.h>
#include <linux/math64.h>
#include <linux/minmax.h>

struct snapblk_stats snapblk_global_stats;

static unsigned int latency_bucket(u64 latency_ns)
{
	u64 us = div_u64(latency_ns, NSEC_PER_USEC);
	unsigned int b = us < 2 ? 0 : ilog2(us);

	return min_t(unsigned int, b, SNAPBLK_LATENCY_BUCKETS - 1);
}

static void count(struct snapblk_stats *s, unsigned int bucket,
		  u64 latency_ns, u32 tier, u32 retries, u32 bytes)
{
	atomic64_inc(&s->latency[bucket]);
	atomic64_inc(&s->tiers[tier]);
	snapblk_stat_inc(s, SNAPBLK_STAT_FETCHES_DONE);
	snapblk_stat_add(s, SNAPBLK_STAT_FETCH_LATENCY_US,
			 div_u64(latency_ns, NSEC_PER_USEC));
	snapblk_stat_add(s, SNAPBLK_STAT_RETRIES, retries);
	snapblk_stat_add(s, SNAPBLK_STAT_BYTES_FETCHED, bytes);
}

void snapblk_stats_fetch_done(struct snapblk_stats *s, u64 latency_ns,
			      u32 tier, u32 retries, u32 bytes)
{
	unsigned int b = latency_bucket(latency_ns);

	tier = min_t(u32, tier, SNAPBLK_TIER_MAX);
	if (s)
		count(s, b, latency_ns, tier, retries, bytes);
	else
		count(&snapblk_global_stats, b, latency_ns, tier, retries,
		      bytes);
}
