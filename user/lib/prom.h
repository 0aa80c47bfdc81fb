/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Metrics of the module: quantiles of its fetch latency histogram, and
 * the Prometheus text exposition format (version 0.0.4) of devices and
 * of the shared cache, for `snapblk status`.  Nothing here talks to the
 * module: callers pass what genl.h decoded.
 */
#ifndef SNAPBLK_USER_PROM_H
#define SNAPBLK_USER_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "genl.h"

/*
 * Upper bound in microseconds of bucket @i of SNAPBLK_ATTR_LATENCY
 * (2^(i+1): bucket i holds fetches that took less), or 0 for the last
 * bucket, which has none.
 */
uint64_t sb_latency_le_us(int i);

/* Fetches counted in a histogram of SNAPBLK_LATENCY_BUCKETS buckets. */
uint64_t sb_latency_count(const uint64_t *buckets);

/*
 * Estimate quantile @q (0 < q <= 1) of a latency histogram in
 * microseconds, as Prometheus' histogram_quantile() does: find the
 * bucket holding the q-th fetch and interpolate linearly inside it.
 * 0 with *@us set; *@open is set when that bucket is the last, unbounded
 * one (*@us is then its lower bound: "at least").  -ENODATA for an empty
 * histogram, -EINVAL for @q out of range.
 */
int sb_latency_quantile(const uint64_t *buckets, double q, double *us,
			bool *open);

/*
 * Write the Prometheus text exposition of @n devices (@devs, may be
 * NULL when @n is 0) and, when @cache is not NULL, of the shared cache
 * to @f.  Every family has HELP and TYPE lines and only the samples the
 * module sent; names follow the Prometheus conventions (snapblk_ prefix,
 * base units, _total on counters), so that `promtool check metrics`
 * accepts the output without a lint warning.  Devices carry the labels
 * device="NAME" and index="N".  0, or -EIO when @f reports an error.
 */
int sb_prom_write(FILE *f, const struct sb_dev *devs, size_t n,
		  const struct sb_cache_status *cache);

#endif
