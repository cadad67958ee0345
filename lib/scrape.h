/* SPDX-License-Identifier: Apache-2.0 */
/* scrape.h: reading another tool's /metrics: the page over HTTP, the series in its text. */
#ifndef EV_SCRAPE_H
#define EV_SCRAPE_H

#include <stddef.h>

#include "buf.h"

/* The URL of addr's metrics page: addr is a URL (kept), or [HOST:]PORT (HOST 127.0.0.1) of a
 * tool's --metrics-addr. Returns 0, or -1 with a message in err when addr is neither. */
int ev_scrape_url(const char *addr, char *url, size_t urllen, char *err, size_t errlen);
/* GET url into body (reset first), giving up after timeout_ms. Returns 0 on a 200 answer, or
 * -1 with a message in err. */
int ev_scrape_get(const char *url, ev_buf *body, long timeout_ms, char *err, size_t errlen);

/* In Prometheus text (format 0.0.4): the sum of the samples of metric name over the series
 * whose labels hold label (e.g. outcome="late"; NULL: every series) into *sum. Returns the number
 * of samples summed (0: none, *sum 0). Comment lines and other metrics are skipped. */
int ev_scrape_sum(const char *text, size_t len, const char *name, const char *label, double *sum);
/* The value of label (e.g. tool) of the first series of metric name into out. Returns 0, or -1
 * when there is none (out is empty then). */
int ev_scrape_label(const char *text, size_t len, const char *name, const char *label, char *out,
		    size_t outlen);

#endif
