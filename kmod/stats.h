/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Counters of a device and of the whole module: what SNAPBLK_ATTR_STATS,
 * SNAPBLK_ATTR_LATENCY, SNAPBLK_ATTR_TIERS and the sysfs counters show.
 * Plain atomics, updated without a lock; a reader sees each counter on
 * its own (no snapshot of several is promised).
 */
#ifndef SNAPBLK_STATS_H
#define SNAPBLK_STATS_H

#include <linux/atomic.h>
#include <uapi/linux/snapblk.h>

struct snapblk_stats {
	atomic64_t c[SNAPBLK_STAT_MAX + 1];	/* by SNAPBLK_STAT_* */
	atomic64_t latency[SNAPBLK_LATENCY_BUCKETS];
	atomic64_t tiers[SNAPBLK_TIER_MAX + 1];
};

/* Module-wide: every fetch and lookup since load (stats.c). */
extern struct snapblk_stats snapblk_global_stats;

static inline void snapblk_stat_add(struct snapblk_stats *s, int stat, s64 n)
{
	atomic64_add(n, &s->c[stat]);
}

static inline void snapblk_stat_inc(struct snapblk_stats *s, int stat)
{
	atomic64_inc(&s->c[stat]);
}

static inline u64 snapblk_stat_read(struct snapblk_stats *s, int stat)
{
	return atomic64_read(&s->c[stat]);
}

/*
 * A fetch ended well: @latency_ns from its start, the daemon's @tier
 * and @retries, @bytes of ciphertext.  Counted in @s (a device the fetch
 * served; NULL for the module-wide count only).
 */
void snapblk_stats_fetch_done(struct snapblk_stats *s, u64 latency_ns,
			      u32 tier, u32 retries, u32 bytes);

#endif /* SNAPBLK_STATS_H */
