/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A one-line progress bar on stderr, drawn only when stderr is a terminal
 * and the run lasts long enough to need one.
 */
#ifndef SNAPBLK_USER_SB_PROGRESS_H
#define SNAPBLK_USER_SB_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct sb_progress {
	const char *label;
	uint64_t total;		/* bytes */
	bool enabled;
	bool drawn;
	double start;
};

/* Monotonic seconds. */
double sb_now(void);

/* enabled = wanted && stderr is a terminal. */
void sb_progress_start(struct sb_progress *p, const char *label,
		       uint64_t total, bool wanted);
/* Redraw with done bytes so far (after the first half second). */
void sb_progress_update(struct sb_progress *p, uint64_t done);
/* Erase the bar. */
void sb_progress_end(struct sb_progress *p);

#endif
