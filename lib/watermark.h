/* SPDX-License-Identifier: Apache-2.0 */
/* watermark.h: event-time watermarks: bounded out-of-orderness per partition, idleness. */
#ifndef EV_WATERMARK_H
#define EV_WATERMARK_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define EV_WM_MIN INT64_MIN /* nothing seen yet */
#define EV_WM_END INT64_MAX /* end of input: every window fires */

typedef struct ev_wm_opts {
	int64_t out_of_orderness_ms; /* the bound B: wm = max event time - B - 1 */
	int64_t idle_timeout_ms;     /* a partition silent this long (processing time) is left
				      * out of the minimum; 0: never */
	int64_t max_future_ms;       /* a record more than this ahead of its partition's maximum
				      * is refused; 0: no limit */
} ev_wm_opts;

typedef struct ev_wm ev_wm;

ev_wm *ev_wm_new(const ev_wm_opts *opts);
void ev_wm_free(ev_wm *w);

enum { EV_WM_OK = 0, EV_WM_TOO_FAR_AHEAD = 1 };

/* A record of partition part (any key the caller derives, e.g. from topic and partition)
 * with event time ts, seen at processing time now_ms. Returns EV_WM_OK, or
 * EV_WM_TOO_FAR_AHEAD when ts is more than max_future ahead of the partition's maximum so far
 * (the record must not count; the watermark is unchanged), or -1 when out of memory. */
int ev_wm_observe(ev_wm *w, uint64_t part, int64_t ts, int64_t now_ms);
/* An upstream watermark (a control line): a promise that no record at or before ts follows. */
void ev_wm_promise(ev_wm *w, int64_t ts);
/* End of input: the watermark becomes EV_WM_END. */
void ev_wm_end(ev_wm *w);
/* The stream's watermark at processing time now_ms: the minimum over partitions that are not
 * idle of their max event time - B - 1, raised by promises; it never goes backwards.
 * EV_WM_MIN while nothing is known. */
int64_t ev_wm_current(ev_wm *w, int64_t now_ms);
/* The watermark's state as bytes (appended to out) and back, for restarts and checkpoints:
 * each partition's maximum, the promise and the watermark given. Decoding restarts the
 * partitions' idleness clocks at now_ms. Decode returns 0, or -1 when data is not such an
 * encoding (w is then unchanged). */
int ev_wm_encode(const ev_wm *w, ev_buf *out);
int ev_wm_decode(ev_wm *w, const void *data, size_t len, int64_t now_ms);
/* One partition's part of the watermark, for a partition that moves between engines: its
 * maximum event time (1 with it in *max_ts, 0 when part was not seen); set it (raised to
 * max_ts when part is known: a partition's maximum only grows; its idleness clock restarts at
 * now_ms; -1 when out of memory); forget it (the watermark given never goes backwards). */
int ev_wm_partition_get(const ev_wm *w, uint64_t part, int64_t *max_ts);
int ev_wm_partition_set(ev_wm *w, uint64_t part, int64_t max_ts, int64_t now_ms);
void ev_wm_partition_drop(ev_wm *w, uint64_t part);
/* Partitions seen, and how many of them are idle at now_ms. */
int ev_wm_partitions(const ev_wm *w, int64_t now_ms, int *idle);

#endif
