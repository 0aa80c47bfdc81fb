// SPDX-License-Identifier: GPL-2.0
/*
 * Progress bar for long runs.  See sb_progress.h.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

#define BAR_WIDTH	24

double sb_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

void sb_progress_start(struct sb_progress *p, const char *label,
		       uint64_t total, bool wanted)
{
	memset(p, 0, sizeof(*p));
	p->label = label;
	p->total = total ? total : 1;
	p->enabled = wanted && isatty(STDERR_FILENO);
	p->start = sb_now();
}

void sb_progress_update(struct sb_progress *p, uint64_t done)
{
	double t = sb_now() - p->start, rate, eta;
	char bar[BAR_WIDTH + 1];
	int i, fill;

	if (!p->enabled || t < 0.5)
		return;
	if (done > p->total)
		done = p->total;
	fill = (int)(BAR_WIDTH * done / p->total);
	for (i = 0; i < BAR_WIDTH; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[BAR_WIDTH] = '\0';
	rate = done / t;
	eta = rate > 0 ? (p->total - done) / rate : 0;
	fprintf(stderr,
		"\r%s [%s] %3d%% %7.1f/%.1f MiB %6.1f MiB/s ETA %d:%02d\033[K",
		p->label, bar, (int)(100 * done / p->total),
		done / 1048576.0, p->total / 1048576.0, rate / 1048576.0,
		(int)eta / 60, (int)eta % 60);
	fflush(stderr);
	p->drawn = true;
}

void sb_progress_end(struct sb_progress *p)
{
	if (p->drawn) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	p->drawn = false;
}
