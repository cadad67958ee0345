/* SPDX-License-Identifier: Apache-2.0 */
/* metrics.h: a registry of counters, gauges and histograms, served in Prometheus text format. */
#ifndef EV_METRICS_H
#define EV_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct ev_metrics ev_metrics;
typedef struct ev_metric ev_counter;
typedef struct ev_metric ev_gauge;
typedef struct ev_metric ev_histogram;

/* Every series carries the labels tool="<tool>" and job="<job>". The strings are copied. */
ev_metrics *ev_metrics_new(const char *tool, const char *job);
void ev_metrics_free(ev_metrics *m);

/* Find or create a series. name is the full metric name (evpipe_..._total); labels is
 * extra label text in exposition syntax, e.g. "reason=\"parse\"", or NULL. A series lives
 * as long as the registry; the same name and labels return the same series. Returns
 * NULL only when out of memory. Safe to call from any thread. */
ev_counter *ev_metrics_counter(ev_metrics *m, const char *name, const char *help,
			       const char *labels);
ev_gauge *ev_metrics_gauge(ev_metrics *m, const char *name, const char *help, const char *labels);
/* bounds: ascending upper bounds, copied; +Inf is implicit. */
ev_histogram *ev_metrics_histogram(ev_metrics *m, const char *name, const char *help,
				   const char *labels, const double *bounds, size_t nbounds);

/* Updates are lock-free and may be called with a NULL series (a no-op). */
void ev_counter_add(ev_counter *c, uint64_t n);
static inline void ev_counter_inc(ev_counter *c)
{
	ev_counter_add(c, 1);
}
/* A counter of seconds kept in nanoseconds: pass nanoseconds, it renders as seconds. */
ev_counter *ev_metrics_counter_seconds(ev_metrics *m, const char *name, const char *help,
				       const char *labels);
/* Set a counter to an absolute value taken from elsewhere (e.g. a reader's line count). */
void ev_counter_set(ev_counter *c, uint64_t v);
uint64_t ev_counter_value(const ev_counter *c);
void ev_gauge_set(ev_gauge *g, double v);
double ev_gauge_value(const ev_gauge *g);
void ev_histogram_observe(ev_histogram *h, double v);

/* The sum of the values of the counters and gauges named name (a counter of seconds in
 * seconds), over the series whose labels are labels (NULL: every series of the name) into
 * *sum. Returns the number of series summed (0: none, *sum 0). Safe from any thread. */
int ev_metrics_sum(ev_metrics *m, const char *name, const char *labels, double *sum);

/* Append the exposition text (format 0.0.4) of all series. */
int ev_metrics_render(ev_metrics *m, ev_buf *out);

/* Serve GET /metrics on addr ("host:port", ":port" or "port"; without a host on 127.0.0.1
 * only, "0.0.0.0:port" for every interface) in a background thread.
 * Returns 0, or -1 with a message in err. The bound port is available from
 * ev_metrics_port (useful with port 0). */
int ev_metrics_serve(ev_metrics *m, const char *addr, char *err, size_t errlen);
int ev_metrics_port(const ev_metrics *m);
const char *ev_metrics_host(const ev_metrics *m);

/* Exponential bounds: start, start*factor, ... (count values) into out. */
void ev_metrics_exp_bounds(double *out, size_t count, double start, double factor);

#endif
