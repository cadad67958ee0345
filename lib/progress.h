/* SPDX-License-Identifier: Apache-2.0 */
/* progress.h: a tool's live one-line status on stderr, drawn from its metrics registry. */
#ifndef EV_PROGRESS_H
#define EV_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"

/* What the status line shows, read from the registry (ev_metrics_sum): records in, out,
 * dead-lettered and late (counters), the time blocked writing to outputs, the watermark lag
 * (a gauge), at ns (ev_mono_ns). has_* say whether the tool has that series at all. */
typedef struct ev_progress_sample {
	double in, out, dead, late, blocked, wm_lag;
	int has_in, has_dead, has_late, has_wm;
	uint64_t ns;
} ev_progress_sample;
void ev_progress_sample_take(ev_metrics *m, ev_progress_sample *s);
/* The same from another source of sums (evtop: a scraped /metrics page): sum(arg, name, labels,
 * &out) adds up the series of name whose labels hold labels (NULL: all) and returns how many. */
typedef int ev_progress_sum_fn(void *arg, const char *name, const char *labels, double *sum);
void ev_progress_sample_from(ev_progress_sum_fn *sum, void *arg, ev_progress_sample *s);
/* The status line, without a newline, into buf (at most width columns; 0: no limit): rates
 * per second since then, the watermark lag, the share of the time blocked writing, and totals
 * as of now, e.g.
 * "in 52.1k/s | out 51.9k/s | dead 0/s | late 0/s | wm lag 5.0s | blocked 12% | 1.20M in, 1.19M out" */
void ev_progress_format(char *buf, size_t len, size_t width, const ev_progress_sample *then,
			const ev_progress_sample *now);

/* A count in about 4 characters (950, 12.3k, 1.20M, 3.10G); a watermark lag (5.0s, 12m, 3h,
 * 740d). */
void ev_progress_human(char *buf, size_t len, double n);
void ev_progress_lag(char *buf, size_t len, double secs);

typedef struct ev_progress ev_progress;
/* Draw the status line of m on stderr (fd 2), prefixed with prog, every interval_ms (at least
 * 100) from a thread of its own, until ev_progress_stop. Messages written with ev_log take the
 * line off and draw it again below them. Returns NULL (nothing is drawn) when out of memory or
 * when the thread cannot start. */
ev_progress *ev_progress_start(ev_metrics *m, const char *prog, int interval_ms);
/* Stop drawing and take the line off. NULL: nothing to do. */
void ev_progress_stop(ev_progress *p);

#endif
