/* SPDX-License-Identifier: Apache-2.0 */
/* watermark.c: event-time watermarks: bounded out-of-orderness per partition, idleness. */
#include "watermark.h"

#include <stdlib.h>
#include <string.h>

struct wm_part {
	uint64_t key;
	int64_t max_ts;   /* largest event time seen */
	int64_t last_now; /* processing time of the last record */
};

struct ev_wm {
	ev_wm_opts opts;
	struct wm_part *parts;
	int nparts, cap;
	int last; /* index of the partition looked up last */
	int64_t promised;
	int64_t emitted; /* the watermark last answered: it never goes backwards */
};

ev_wm *ev_wm_new(const ev_wm_opts *opts)
{
	ev_wm *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->opts = *opts;
	w->promised = EV_WM_MIN;
	w->emitted = EV_WM_MIN;
	return w;
}

void ev_wm_free(ev_wm *w)
{
	if (!w)
		return;
	free(w->parts);
	free(w);
}

static struct wm_part *find(ev_wm *w, uint64_t key)
{
	if (w->last < w->nparts && w->parts[w->last].key == key)
		return &w->parts[w->last];
	for (int i = 0; i < w->nparts; i++)
		if (w->parts[i].key == key) {
			w->last = i;
			return &w->parts[i];
		}
	return NULL;
}

/* A new partition with maximum ts; NULL when out of memory. */
static struct wm_part *add_part(ev_wm *w, uint64_t part, int64_t ts, int64_t now_ms)
{
	if (w->nparts == w->cap) {
		int cap = w->cap ? w->cap * 2 : 8;
		struct wm_part *np = realloc(w->parts, (size_t)cap * sizeof(*np));
		if (!np)
			return NULL;
		w->parts = np;
		w->cap = cap;
	}
	struct wm_part *p = &w->parts[w->nparts];
	p->key = part;
	p->max_ts = ts;
	p->last_now = now_ms;
	w->last = w->nparts++;
	return p;
}

int ev_wm_observe(ev_wm *w, uint64_t part, int64_t ts, int64_t now_ms)
{
	struct wm_part *p = find(w, part);
	if (!p)
		return add_part(w, part, ts, now_ms) ? EV_WM_OK : -1;
	if (w->opts.max_future_ms > 0 && ts > p->max_ts &&
	    (uint64_t)ts - (uint64_t)p->max_ts > (uint64_t)w->opts.max_future_ms)
		return EV_WM_TOO_FAR_AHEAD;
	if (ts > p->max_ts)
		p->max_ts = ts;
	p->last_now = now_ms;
	return EV_WM_OK;
}

void ev_wm_promise(ev_wm *w, int64_t ts)
{
	if (ts > w->promised)
		w->promised = ts;
}

void ev_wm_end(ev_wm *w)
{
	w->promised = EV_WM_END;
}

static int idle(const ev_wm *w, const struct wm_part *p, int64_t now_ms)
{
	return w->opts.idle_timeout_ms > 0 && now_ms - p->last_now >= w->opts.idle_timeout_ms;
}

int64_t ev_wm_current(ev_wm *w, int64_t now_ms)
{
	int64_t wm = EV_WM_MIN;
	int any = 0;
	for (int i = 0; i < w->nparts; i++) {
		const struct wm_part *p = &w->parts[i];
		if (idle(w, p, now_ms))
			continue;
		/* max - B - 1, saturating at the bottom of the range */
		int64_t own = p->max_ts < EV_WM_MIN + w->opts.out_of_orderness_ms + 1
				      ? EV_WM_MIN
				      : p->max_ts - w->opts.out_of_orderness_ms - 1;
		if (!any || own < wm)
			wm = own;
		any = 1;
	}
	/* With nothing seen, or every partition idle, there is no new evidence: wm stays. */
	if (w->promised > wm)
		wm = w->promised;
	if (wm > w->emitted)
		w->emitted = wm;
	return w->emitted;
}

int ev_wm_partition_get(const ev_wm *w, uint64_t part, int64_t *max_ts)
{
	for (int i = 0; i < w->nparts; i++)
		if (w->parts[i].key == part) {
			*max_ts = w->parts[i].max_ts;
			return 1;
		}
	return 0;
}

int ev_wm_partition_set(ev_wm *w, uint64_t part, int64_t max_ts, int64_t now_ms)
{
	struct wm_part *p = find(w, part);
	if (!p)
		return add_part(w, part, max_ts, now_ms) ? 0 : -1;
	if (max_ts > p->max_ts)
		p->max_ts = max_ts;
	p->last_now = now_ms;
	return 0;
}

void ev_wm_partition_drop(ev_wm *w, uint64_t part)
{
	for (int i = 0; i < w->nparts; i++)
		if (w->parts[i].key == part) {
			w->parts[i] = w->parts[--w->nparts];
			w->last = 0;
			return;
		}
}

int ev_wm_partitions(const ev_wm *w, int64_t now_ms, int *nidle)
{
	int n = 0;
	for (int i = 0; i < w->nparts; i++)
		n += idle(w, &w->parts[i], now_ms);
	if (nidle)
		*nidle = n;
	return w->nparts;
}

/* Fixed-width little-endian: a format byte, the promise, the watermark given, the number of
 * partitions, then each partition's key and maximum. */
enum { WM_FORMAT = 1 };

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (unsigned char)v;
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int ev_wm_encode(const ev_wm *w, ev_buf *out)
{
	unsigned char b[24];
	int rc = ev_buf_putc(out, WM_FORMAT);
	put64(b, (uint64_t)w->promised);
	put64(b + 8, (uint64_t)w->emitted);
	put64(b + 16, (uint64_t)w->nparts);
	rc |= ev_buf_append(out, b, 24);
	for (int i = 0; i < w->nparts; i++) {
		put64(b, w->parts[i].key);
		put64(b + 8, (uint64_t)w->parts[i].max_ts);
		rc |= ev_buf_append(out, b, 16);
	}
	return rc ? -1 : 0;
}

int ev_wm_decode(ev_wm *w, const void *data, size_t len, int64_t now_ms)
{
	const unsigned char *p = data;
	if (len < 25 || p[0] != WM_FORMAT)
		return -1;
	uint64_t n = get64(p + 17);
	if (n > (len - 25) / 16 || len != 25 + n * 16)
		return -1;
	struct wm_part *parts = n ? calloc(n, sizeof(*parts)) : NULL;
	if (n && !parts)
		return -1;
	for (uint64_t i = 0; i < n; i++) {
		parts[i].key = get64(p + 25 + i * 16);
		parts[i].max_ts = (int64_t)get64(p + 25 + i * 16 + 8);
		parts[i].last_now = now_ms;
	}
	free(w->parts);
	w->parts = parts;
	w->nparts = w->cap = (int)n;
	w->last = 0;
	w->promised = (int64_t)get64(p + 1);
	w->emitted = (int64_t)get64(p + 9);
	return 0;
}
