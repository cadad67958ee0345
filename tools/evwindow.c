/* evwindow: event-time windows with watermarks and allowed lateness over NDJSON records. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "buf.h"
#include "checkpoint.h"
#include "control.h"
#include "deadletter.h"
#include "ht.h"
#include "log.h"
#include "meta.h"
#include "metrics.h"
#include "ndjson.h"
#include "opts.h"
#include "state.h"
#include "timefmt.h"
#include "tool.h"
#include "watermark.h"

static const char usage_text[] =
	"usage: evwindow (--tumble D | --slide D --every E | --session-gap G) [options] < records\n"
	"\n"
	"Aggregates records in event-time windows and writes one row per window and key when\n"
	"the watermark passes the window's end: {\"window_start\",\"window_end\",<keys>,\n"
	"<aggregates>,\"version\"}. Times are UTC \"YYYY-MM-DD hh:mm:ss\". A record that arrives\n"
	"after its window fired but within the allowed lateness updates it, and the row is\n"
	"written again with the next version; later records go to the late output. Records that\n"
	"cannot be windowed are dead letters there too (missing_ts, bad_ts, missing_key,\n"
	"bad_value, future, parse). Control lines are forwarded, after the rows they release.\n"
	"The end of input fires every open window, unless the input was only stopped\n"
	"({\"__evpipe\":\"stop\"} from kin, or SIGTERM): then they are kept in the last\n"
	"checkpoint or saved to --state-dir (with neither, they are fired). With checkpoints,\n"
	"only {\"__evpipe\":\"end\"} ends the stream: an input that just stops keeps them too.\n"
	"\n"
	"Options:\n"
	"      --ts-field F         event time field: epoch ms or RFC 3339 (default ts)\n"
	"      --key LIST           key fields, comma-separated (default: one key for all)\n"
	"      --tumble D           tumbling windows of D (250ms, 5s, 1m, 1h)\n"
	"      --slide D --every E  sliding windows of D starting every E\n"
	"      --session-gap G      session windows per key: records at most G apart share one\n"
	"      --agg LIST           count, sum:F, min:F, max:F, avg:F, uniq:F, first:F, last:F,\n"
	"                           NAME=fn:F to rename (default count)\n"
	"      --out-of-orderness D watermark = max event time - D - 1 (default 0)\n"
	"      --lateness D         allowed lateness after a window fired (default 0)\n"
	"      --idle-timeout D     a partition silent this long does not hold the watermark\n"
	"                           (default 0: never)\n"
	"      --max-future D       a record this far ahead of its partition is a dead letter\n"
	"                           (default 0: no limit)\n"
	"      --meta-field NAME    provenance field of kin --meta-field: watermarks per Kafka\n"
	"                           partition (default _src)\n"
	"      --late PATH|fd:N     late records and dead letters (default: reported on stderr)\n"
	"      --state-dir DIR      keep window state in a RocksDB store in DIR: on SIGTERM it is\n"
	"                           saved there and a restart with the same DIR continues (default:\n"
	"                           a private store, removed at exit)\n"
	"      --state-memory SIZE  memory for state: in-memory aggregation, RocksDB's buffers and\n"
	"                           cache; beyond it windows spill to RocksDB (default 128MiB)\n" EV_CKPT_OPTIONS_HELP
	"                           (on a barrier: a RocksDB checkpoint, its new files uploaded)\n" EV_TOOL_OPTIONS_HELP
	"\n"
	"Exit status: 0 ok, 1 runtime failure (I/O, an impossible control line: ADR 0013),\n"
	"2 usage error.\n";

enum {
	OPT_TS_FIELD = 256,
	OPT_KEY,
	OPT_TUMBLE,
	OPT_SLIDE,
	OPT_EVERY,
	OPT_GAP,
	OPT_AGG,
	OPT_OOO,
	OPT_LATENESS,
	OPT_IDLE,
	OPT_MAX_FUTURE,
	OPT_META_FIELD,
	OPT_LATE,
	OPT_STATE_DIR,
	OPT_STATE_MEMORY,
};

static const struct option long_options[] = {
	{"ts-field", required_argument, NULL, OPT_TS_FIELD},
	{"key", required_argument, NULL, OPT_KEY},
	{"tumble", required_argument, NULL, OPT_TUMBLE},
	{"slide", required_argument, NULL, OPT_SLIDE},
	{"every", required_argument, NULL, OPT_EVERY},
	{"session-gap", required_argument, NULL, OPT_GAP},
	{"agg", required_argument, NULL, OPT_AGG},
	{"out-of-orderness", required_argument, NULL, OPT_OOO},
	{"lateness", required_argument, NULL, OPT_LATENESS},
	{"idle-timeout", required_argument, NULL, OPT_IDLE},
	{"max-future", required_argument, NULL, OPT_MAX_FUTURE},
	{"meta-field", required_argument, NULL, OPT_META_FIELD},
	{"late", required_argument, NULL, OPT_LATE},
	{"state-dir", required_argument, NULL, OPT_STATE_DIR},
	{"state-memory", required_argument, NULL, OPT_STATE_MEMORY},
	EV_CKPT_LONG_OPTIONS,
	EV_TOOL_LONG_OPTIONS,
	{NULL, 0, NULL, 0},
};

/* The state of one window and key. */
struct window {
	int64_t start, end;
	size_t keylen;
	ev_agg_state *agg;
	int version;  /* 0 until it fires */
	size_t bytes; /* what it counts against the memory budget */
	int dirty;    /* changed since the store last had it */
	char key[];   /* "k1":v1,"k2":v2 as written in rows; "" without keys */
};

/* A window with room for a key of keylen bytes, zeroed (oom() when out of memory). */
static struct window *window_alloc(const void *key, size_t keylen)
{
	struct window *w = calloc(1, sizeof(*w) + keylen + 1);
	if (!w) {
		ev_error("out of memory");
		exit(EV_EXIT_FAILURE);
	}
	if (keylen)
		memcpy(w->key, key, keylen);
	w->keylen = keylen;
	return w;
}

/* The windows that end at the same time: they fire and expire together. */
struct bucket {
	int64_t end;
	int fired;
	int spilled; /* some of its windows are in the store, not in w */
	struct window **w;
	size_t n, cap;
};

/* The live sessions of one key. */
struct sessions {
	struct window **w;
	size_t n, cap;
};

#define MAX_KEYS 16

struct evwindow {
	const char *ts_field;
	char *keys[MAX_KEYS];
	int nkeys;
	int64_t size_ms, every_ms, gap_ms;
	ev_agg_spec *aggs;
	size_t naggs;
	ev_wm_opts wmo;
	int64_t lateness_ms;
	char ts_path[160]; /* "/" ts_field: where dead letters point */
	const char *meta_field;
	const char *late_spec;
	const char *state_dir;
	uint64_t state_memory;
	ev_ckpt ck;
	json_t *restore_part; /* the part of the checkpoint restored from */
	ev_tool_common common;
	ev_control_seq ctl; /* the control lines seen */

	ev_wm *wm;
	ev_ht *windows;          /* start + key -> struct window */
	ev_ht *sessions;         /* key -> struct sessions: the live sessions of each key */
	struct bucket **buckets; /* by ascending end */
	size_t nbuckets, capbuckets;
	ev_reader *in;
	ev_writer *out, *late;
	uint64_t seq;
	ev_state *st;        /* windows spilled from memory, and everything across a restart */
	size_t mem_bytes;    /* held by the windows in memory (estimate) */
	size_t mem_budget;   /* beyond it they spill to the store */
	int64_t stats_at_ms; /* when the state gauges were last set */
	int64_t wm_seen;     /* the watermark last set in the gauge */
	int64_t now_ms;      /* processing time of the record or control line at hand */
	int stopped;         /* upstream said it stopped: the input ends, the stream does not */
	int ended;           /* upstream said the stream is finished */
	ev_buf row, key, scratch, skey, sval;
	ev_fj *fj;            /* the fast parser; jansson reads what it leaves */
	ev_agg_value *values; /* the record at hand's value of each aggregate */
	ev_buf *vbufs;        /* their texts */
	struct bound {
		int64_t ms;
		char text[20];
	} bounds[2]; /* the window bounds last formatted */
	ev_metrics *metrics;
	ev_counter *m_in, *m_out, *m_fired, *m_updated, *m_late, *m_blocked, *m_spills;
	ev_histogram *m_ck_duration;
	ev_gauge *m_ck_full, *m_ck_incremental, *m_ck_last;
	ev_gauge *m_wm, *m_wm_lag, *m_open, *m_keys_mem, *m_keys_store, *m_bytes_mem,
		*m_bytes_store;
};

static int cmp_window(const void *a, const void *b)
{
	const struct window *x = *(struct window *const *)a, *y = *(struct window *const *)b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
	int c = memcmp(x->key, y->key, n);
	return c ? c : (x->keylen > y->keylen) - (x->keylen < y->keylen);
}

/* The text of a window bound, "YYYY-MM-DD hh:mm:ss": the last two are kept, since the windows
 * of a firing share their bounds. */
static const char *bound_text(struct evwindow *e, int64_t ms)
{
	struct bound *b = &e->bounds[0];
	if (b->ms != ms || !b->text[0]) {
		b = &e->bounds[1];
		if (b->ms != ms || !b->text[0]) {
			e->bounds[1] = e->bounds[0];
			b = &e->bounds[0];
			b->ms = ms;
			ev_time_format_datetime(ms, b->text);
		}
	}
	return b->text;
}

static int emit(struct evwindow *e, struct window *w)
{
	w->version++;
	ev_buf_reset(&e->row);
	int rc = ev_buf_puts(&e->row, "{\"window_start\":\"");
	rc |= ev_buf_append(&e->row, bound_text(e, w->start), 19);
	rc |= ev_buf_puts(&e->row, "\",\"window_end\":\"");
	rc |= ev_buf_append(&e->row, bound_text(e, w->end), 19);
	rc |= ev_buf_putc(&e->row, '"');
	if (w->keylen)
		rc |= ev_buf_putc(&e->row, ',') | ev_buf_append(&e->row, w->key, w->keylen);
	rc |= ev_agg_format(&e->row, w->agg, e->aggs, e->naggs);
	rc |= ev_buf_puts(&e->row, ",\"version\":") | ev_buf_put_i64(&e->row, w->version) |
	      ev_buf_putc(&e->row, '}');
	if (rc)
		return -1;
	ev_counter_inc(e->m_out);
	return ev_writer_line(e->out, e->row.data, e->row.len);
}

static void window_free(struct evwindow *e, struct window *w)
{
	e->mem_bytes -= w->bytes;
	ev_agg_state_free(w->agg, e->aggs, e->naggs);
	free(w);
}

static void session_forget(struct evwindow *e, struct window *w)
{
	struct sessions *ks = ev_ht_get(e->sessions, w->key, w->keylen);
	for (size_t i = 0; ks && i < ks->n; i++)
		if (ks->w[i] == w) {
			ks->w[i] = ks->w[--ks->n];
			break;
		}
	if (ks && ks->n == 0) {
		ev_ht_del(e->sessions, w->key, w->keylen);
		free(ks->w);
		free(ks);
	}
}

/* Where the bucket of end is, or would be inserted: buckets are by ascending end. */
static size_t bucket_index(const struct evwindow *e, int64_t end)
{
	size_t lo = 0, hi = e->nbuckets;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (e->buckets[mid]->end < end)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct bucket *bucket_for(struct evwindow *e, int64_t end)
{
	size_t lo = bucket_index(e, end);
	if (lo < e->nbuckets && e->buckets[lo]->end == end)
		return e->buckets[lo];
	if (e->nbuckets == e->capbuckets) {
		size_t cap = e->capbuckets ? e->capbuckets * 2 : 16;
		struct bucket **nb = realloc(e->buckets, cap * sizeof(*nb));
		if (!nb)
			return NULL;
		e->buckets = nb;
		e->capbuckets = cap;
	}
	struct bucket *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->end = end;
	memmove(&e->buckets[lo + 1], &e->buckets[lo], (e->nbuckets - lo) * sizeof(*e->buckets));
	e->buckets[lo] = b;
	e->nbuckets++;
	return b;
}

/* The key of a window in e->windows: its start and its key text (in e->scratch). */
static const ev_buf *index_key(struct evwindow *e, int64_t start, const char *key, size_t keylen)
{
	ev_buf_reset(&e->scratch);
	ev_buf_append(&e->scratch, &start, sizeof(start));
	ev_buf_append(&e->scratch, key, keylen);
	return &e->scratch;
}

/* Take w out of e->windows (not out of its bucket). */
static void window_unindex(struct evwindow *e, const struct window *w)
{
	const ev_buf *k = index_key(e, w->start, w->key, w->keylen);
	ev_ht_del(e->windows, k->data, k->len);
}

/* The window of the current key (e->key) that starts at start, or NULL. */
static struct window *window_get(struct evwindow *e, int64_t start)
{
	const ev_buf *k = index_key(e, start, e->key.data, e->key.len);
	return ev_ht_get(e->windows, k->data, k->len);
}

static void oom(void)
{
	ev_error("out of memory");
	exit(EV_EXIT_FAILURE);
}

/* File w under its start and key, and in the bucket of its end. */
static void window_attach(struct evwindow *e, struct window *w, int64_t wm)
{
	struct bucket *b = bucket_for(e, w->end);
	if (!b)
		oom();
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 8;
		if (!(b->w = realloc(b->w, b->cap * sizeof(*b->w))))
			oom();
	}
	b->w[b->n++] = w;
	const ev_buf *k = index_key(e, w->start, w->key, w->keylen);
	if (ev_ht_put(e->windows, k->data, k->len, w) < 0)
		oom();
	/* A window the watermark passed already is written by its record, not fired again. */
	if (wm != EV_WM_MIN && w->end - 1 <= wm)
		b->fired = 1;
}

/* Take w out of the index and of its bucket (a session about to change bounds or merge). */
static void window_detach(struct evwindow *e, struct window *w)
{
	struct bucket *b = bucket_for(e, w->end);
	for (size_t i = 0; b && i < b->n; i++)
		if (b->w[i] == w) {
			b->w[i] = b->w[--b->n];
			break;
		}
	window_unindex(e, w);
}

/* Recount what w holds against the memory budget (after it changed). */
static void account(struct evwindow *e, struct window *w)
{
	size_t bytes =
		sizeof(*w) + 2 * w->keylen + 96 + ev_agg_state_bytes(w->agg, e->aggs, e->naggs);
	e->mem_bytes += bytes - w->bytes;
	w->bytes = bytes;
	w->dirty = 1;
}

static struct window *window_new(struct evwindow *e, int64_t start, int64_t end, int64_t wm)
{
	struct window *w = window_alloc(e->key.data, e->key.len);
	if (!(w->agg = ev_agg_state_new(e->aggs, e->naggs)))
		oom();
	w->start = start;
	w->end = end;
	window_attach(e, w, wm);
	account(e, w);
	return w;
}

/* The state store. Window keys are 'w', a 4-byte scope, then end and start in an order-
 * preserving encoding, then the key text: a bucket (one end) is one key range, and a scan
 * of it yields the windows in the order they are written. The scope is 0 for now; it is
 * where state will be split by Kafka partition. Values are the version (4 bytes) and the
 * aggregates' encoding. Meta keys start with 'm'. */
enum { WKEY_HEAD = 1 + 4 + 8 + 8 };

static void window_key(ev_buf *b, int64_t end, int64_t start, const char *key, size_t keylen)
{
	unsigned char h[WKEY_HEAD];
	h[0] = 'w';
	ev_state_put_u32(h + 1, 0);
	ev_state_put_i64(h + 5, end);
	ev_state_put_i64(h + 13, start);
	ev_buf_reset(b);
	ev_buf_append(b, h, sizeof(h));
	ev_buf_append(b, key, keylen);
}

/* The key range of the windows ending at end: [from, to). */
static void bucket_range(unsigned char from[13], unsigned char to[13], int64_t end)
{
	from[0] = to[0] = 'w';
	ev_state_put_u32(from + 1, 0);
	ev_state_put_u32(to + 1, 0);
	ev_state_put_i64(from + 5, end);
	ev_state_put_i64(to + 5, end + 1);
}

static void state_failed(const char *err)
{
	ev_error("state store: %s", err);
	exit(EV_EXIT_FAILURE);
}

/* Queue w's state for the store (ev_state_commit writes it). */
static void window_store(struct evwindow *e, const struct window *w)
{
	unsigned char v[4];
	window_key(&e->skey, w->end, w->start, w->key, w->keylen);
	ev_state_put_u32(v, (uint32_t)w->version);
	ev_buf_reset(&e->sval);
	ev_buf_append(&e->sval, v, 4);
	if (ev_agg_encode(&e->sval, w->agg, e->aggs, e->naggs) < 0)
		oom();
	ev_state_put(e->st, e->skey.data, e->skey.len, e->sval.data, e->sval.len);
}

/* A window as the store holds it, or NULL (with a message) when the value is corrupt. */
static struct window *window_decode(struct evwindow *e, const unsigned char *k, size_t klen,
				    const unsigned char *v, size_t vlen)
{
	if (klen < WKEY_HEAD || vlen < 4) {
		ev_error("state store: a window entry is truncated");
		return NULL;
	}
	struct window *w = window_alloc(k + WKEY_HEAD, klen - WKEY_HEAD);
	w->end = ev_state_get_i64(k + 5);
	w->start = ev_state_get_i64(k + 13);
	w->version =
		(int)((uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3]);
	if (!(w->agg = ev_agg_decode(v + 4, vlen - 4, e->aggs, e->naggs))) {
		ev_error("state store: a window's aggregates cannot be read (written with other "
			 "--agg?)");
		free(w);
		return NULL;
	}
	return w;
}

/* Move the windows of b from memory to the store (queued; the caller commits). */
static void spill_bucket(struct evwindow *e, struct bucket *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct window *w = b->w[i];
		window_store(e, w);
		window_unindex(e, w);
		window_free(e, w);
	}
	if (b->n)
		b->spilled = 1;
	b->n = 0;
}

/* Past the memory budget, every window in memory goes to the store: the aggregation in
 * memory is a write-back cache in front of RocksDB, so a record pays no RocksDB write, and a
 * window pays one only when memory runs short. Session windows stay in memory (a record
 * must see every live session of its key). */
static void maybe_spill(struct evwindow *e)
{
	char err[512];
	if (e->mem_bytes <= e->mem_budget || e->gap_ms)
		return;
	ev_debug("state: %zu bytes in memory, over %zu: spilling %zu windows to %s", e->mem_bytes,
		 e->mem_budget, ev_ht_count(e->windows), ev_state_dir(e->st));
	for (size_t i = 0; i < e->nbuckets; i++)
		spill_bucket(e, e->buckets[i]);
	if (ev_state_commit(e->st, err, sizeof(err)) < 0)
		state_failed(err);
	ev_counter_inc(e->m_spills);
}

/* The window of the current key (e->key) at start from the store, back in memory; NULL
 * when the store has none. */
static struct window *window_load(struct evwindow *e, int64_t start, int64_t end, int64_t wm)
{
	char err[512];
	size_t lo = bucket_index(e, end);
	if (lo == e->nbuckets || e->buckets[lo]->end != end || !e->buckets[lo]->spilled)
		return NULL; /* nothing of this bucket ever left memory */
	window_key(&e->skey, end, start, e->key.data, e->key.len);
	int r = ev_state_get(e->st, e->skey.data, e->skey.len, &e->sval, err, sizeof(err));
	if (r < 0)
		state_failed(err);
	if (r == 0)
		return NULL;
	struct window *w = window_decode(e, (const unsigned char *)e->skey.data, e->skey.len,
					 (const unsigned char *)e->sval.data, e->sval.len);
	if (!w)
		exit(EV_EXIT_FAILURE);
	window_attach(e, w, wm);
	account(e, w);
	return w;
}

static int cmp_start(const void *a, const void *b)
{
	const struct window *x = *(struct window *const *)a, *y = *(struct window *const *)b;
	return (x->start > y->start) - (x->start < y->start);
}

/* The session of the current key that a record at ts belongs to: [ts, ts + gap) merged with
 * every live session it overlaps or touches (Flink's rule), the earliest absorbing the others
 * in order of start. NULL when the merged session would already be gone (late). */
static struct window *session_window(struct evwindow *e, int64_t ts, int64_t wm)
{
	struct sessions *ks = ev_ht_get(e->sessions, e->key.data, e->key.len);
	if (!ks) {
		if (!(ks = calloc(1, sizeof(*ks))) ||
		    ev_ht_put(e->sessions, e->key.data, e->key.len, ks) < 0)
			oom();
	}
	int64_t start = ts, end = ts + e->gap_ms;
	size_t nhits = 0;
	/* Move the sessions it touches to the front. */
	for (size_t i = 0; i < ks->n; i++) {
		struct window *w = ks->w[i];
		if (w->start <= ts + e->gap_ms && w->end >= ts) {
			ks->w[i] = ks->w[nhits];
			ks->w[nhits++] = w;
			if (w->start < start)
				start = w->start;
			if (w->end > end)
				end = w->end;
		}
	}
	if (wm != EV_WM_MIN && end - 1 + e->lateness_ms <= wm) {
		if (ks->n == 0) {
			ev_ht_del(e->sessions, e->key.data, e->key.len);
			free(ks->w);
			free(ks);
		}
		return NULL;
	}
	if (nhits == 0) {
		if (ks->n == ks->cap) {
			ks->cap = ks->cap ? ks->cap * 2 : 4;
			if (!(ks->w = realloc(ks->w, ks->cap * sizeof(*ks->w))))
				oom();
		}
		struct window *w = window_new(e, start, end, wm);
		ks->w[ks->n++] = w;
		return w;
	}
	qsort(ks->w, nhits, sizeof(*ks->w), cmp_start);
	struct window *dst = ks->w[0];
	for (size_t i = 1; i < nhits; i++) {
		struct window *o = ks->w[i];
		if (ev_agg_merge(dst->agg, o->agg, e->aggs, e->naggs) < 0)
			oom();
		if (o->version > dst->version)
			dst->version = o->version;
		window_detach(e, o);
		window_free(e, o);
	}
	/* Keep dst and the sessions it did not touch. */
	memmove(&ks->w[1], &ks->w[nhits], (ks->n - nhits) * sizeof(*ks->w));
	ks->n -= nhits - 1;
	if (dst->start != start || dst->end != end) {
		window_detach(e, dst);
		dst->start = start;
		dst->end = end;
		window_attach(e, dst, wm);
	}
	return dst;
}

/* Fire a bucket some of whose windows are in the store: the rest join them there, and a
 * scan in key order emits them all without holding them in memory at once. Unless the
 * bucket expires now, each window goes back with its new version. */
static int fire_from_store(struct evwindow *e, struct bucket *b, int expires)
{
	char err[512];
	unsigned char from[13], to[13];
	const void *k, *v;
	size_t klen, vlen, n = 0;
	int rc = 0, r;
	spill_bucket(e, b);
	if (ev_state_commit(e->st, err, sizeof(err)) < 0)
		state_failed(err);
	bucket_range(from, to, b->end);
	ev_state_iter *it = ev_state_iter_new(e->st, from, sizeof(from), to, sizeof(to));
	if (!it)
		oom();
	while (rc == 0 && (r = ev_state_iter_next(it, &k, &klen, &v, &vlen)) == 1) {
		struct window *w = window_decode(e, k, klen, v, vlen);
		if (!w)
			exit(EV_EXIT_FAILURE);
		rc = emit(e, w);
		if (!expires)
			window_store(e, w);
		ev_agg_state_free(w->agg, e->aggs, e->naggs);
		free(w);
		n++;
	}
	ev_state_iter_free(it);
	if (r < 0)
		state_failed("cannot scan the windows of a bucket");
	if (ev_state_commit(e->st, err, sizeof(err)) < 0)
		state_failed(err);
	ev_counter_add(e->m_fired, n);
	return rc;
}

/* Set the state gauges, at most once a second (RocksDB's properties are not free). */
static void state_gauges(struct evwindow *e, int force)
{
	int64_t now = e->now_ms;
	if (!force && now - e->stats_at_ms < 1000)
		return;
	e->stats_at_ms = now;
	if (e->wm_seen != EV_WM_MIN)
		ev_gauge_set(e->m_wm_lag, (double)(now - e->wm_seen) / 1000);
	uint64_t keys = ev_state_keys(e->st);
	ev_gauge_set(e->m_keys_mem, (double)ev_ht_count(e->windows));
	ev_gauge_set(e->m_keys_store, (double)keys);
	ev_gauge_set(e->m_bytes_mem, (double)e->mem_bytes);
	ev_gauge_set(e->m_bytes_store, (double)ev_state_bytes(e->st));
	ev_gauge_set(e->m_open, (double)(ev_ht_count(e->windows) + keys));
}

/* Fire the windows the watermark has passed, and drop those past their lateness. */
static int advance(struct evwindow *e, int64_t wm)
{
	size_t keep = 0;
	int rc = 0;
	char err[512];
	if (wm != e->wm_seen && wm != EV_WM_MIN && wm != EV_WM_END) {
		ev_gauge_set(e->m_wm, (double)wm / 1000);
		e->wm_seen = wm;
	}
	for (size_t i = 0; i < e->nbuckets; i++) {
		struct bucket *b = e->buckets[i];
		int expires = wm == EV_WM_END || b->end - 1 + e->lateness_ms <= wm;
		if (!b->fired && b->end - 1 <= wm) {
			if (b->spilled) {
				rc = fire_from_store(e, b, expires);
			} else {
				qsort(b->w, b->n, sizeof(*b->w), cmp_window);
				for (size_t j = 0; j < b->n && rc == 0; j++) {
					rc = emit(e, b->w[j]);
				}
				ev_counter_add(e->m_fired, b->n);
			}
			b->fired = 1;
		}
		if (b->fired && expires) {
			for (size_t j = 0; j < b->n; j++) {
				struct window *w = b->w[j];
				window_unindex(e, w);
				if (e->gap_ms)
					session_forget(e, w);
				window_free(e, w);
			}
			if (b->spilled) {
				unsigned char from[13], to[13];
				bucket_range(from, to, b->end);
				ev_state_delete_range(e->st, from, sizeof(from), to, sizeof(to));
				if (ev_state_commit(e->st, err, sizeof(err)) < 0)
					state_failed(err);
			}
			free(b->w);
			free(b);
			continue;
		}
		e->buckets[keep++] = b;
	}
	e->nbuckets = keep;
	state_gauges(e, 0);
	return rc;
}

static int dead_letter(struct evwindow *e, const char *reason, const char *path,
		       const char *message, const char *line, size_t len)
{
	if (strcmp(reason, "late") == 0) {
		ev_counter_inc(e->m_late);
	} else {
		ev_counter_inc(ev_tool_dead_letters(e->metrics, reason));
	}
	if (!e->late) {
		ev_error("line %" PRIu64 ": %s%s%s: %s", ev_reader_lines(e->in), reason,
			 *path ? " at " : "", path, message);
		return 0;
	}
	ev_meta_span span = {NULL, 0, 0};
	ev_buf orig = EV_BUF_INIT;
	if (e->meta_field && ev_meta_extract(line, len, e->meta_field, &span, &orig) == 1) {
		line = orig.data;
		len = orig.len;
	}
	ev_deadletter d = {reason,      path, NULL,      message,       NULL,
			   line,        len,  span.json, span.json_len, ev_reader_lines(e->in),
			   ev_wall_ms()};
	ev_buf_reset(&e->scratch);
	int rc = ev_deadletter_format(&e->scratch, &d);
	ev_buf_free(&orig);
	return rc ? -1 : ev_writer_line(e->late, e->scratch.data, e->scratch.len);
}

static uint64_t partition_hash(const char *topic, size_t len, int64_t partition)
{
	return ev_hash(topic, len) ^ ((uint64_t)partition * 0x9e3779b97f4a7c15ull);
}

/* Read what windowing needs from a record with the fast parser: its event time and partition,
 * its key (into e->key) and its values (into e->values). Returns 1, or 0 when the record needs
 * jansson: not a JSON object, a field missing or of the wrong kind, a nested key or value, or
 * text the fast parser leaves to jansson. read_json then reads it, or dead-letters it. */
static int read_fast(struct evwindow *e, const char *line, size_t len, int64_t *ts,
		     uint64_t *partition)
{
	size_t n;
	const ev_fj_node *nd = e->fj ? ev_fj_parse(e->fj, line, len, &n) : NULL;
	if (!nd || nd[0].type != EV_FJ_OBJECT)
		return 0;
	long t = ev_fj_member(nd, 0, e->ts_field, strlen(e->ts_field));
	if (t < 0)
		return 0;
	if (nd[t].type == EV_FJ_INT)
		*ts = nd[t].num.i;
	else if (nd[t].type != EV_FJ_STRING || ev_time_parse_rfc3339(nd[t].str, nd[t].len, ts) < 0)
		return 0;
	ev_buf_reset(&e->key);
	for (int i = 0; i < e->nkeys; i++) {
		long k = ev_fj_member(nd, 0, e->keys[i], strlen(e->keys[i]));
		if (k < 0)
			return 0;
		if (i)
			ev_buf_putc(&e->key, ',');
		ev_buf_json_string(&e->key, e->keys[i], strlen(e->keys[i]));
		ev_buf_putc(&e->key, ':');
		int r = ev_json_scalar_fj(&e->key, &nd[k]);
		if (r < 0)
			oom();
		if (r > 0)
			return 0;
	}
	for (size_t i = 0; i < e->naggs; i++) {
		const ev_agg_spec *a = &e->aggs[i];
		long v = a->field ? ev_fj_member(nd, 0, a->field, strlen(a->field)) : -1;
		int r = ev_agg_value_fj(&e->values[i], a, nd, v, &e->vbufs[i]);
		if (r < 0)
			oom();
		if (r > 0 || (ev_agg_numeric(a) && e->values[i].kind == EV_AV_OTHER))
			return 0;
	}
	*partition = 0;
	long m = e->meta_field ? ev_fj_member(nd, 0, e->meta_field, strlen(e->meta_field)) : -1;
	long topic = m < 0 ? -1 : ev_fj_member(nd, (size_t)m, "topic", 5);
	long p = m < 0 ? -1 : ev_fj_member(nd, (size_t)m, "partition", 9);
	if (topic >= 0 && nd[topic].type == EV_FJ_STRING && p >= 0 && nd[p].type == EV_FJ_INT)
		*partition = partition_hash(nd[topic].str, nd[topic].len, nd[p].num.i);
	return 1;
}

/* read_fast with jansson, the reference: returns 0 when read, 1 when the record was
 * dead-lettered instead, -1 on an output error. */
static int read_json(struct evwindow *e, const char *line, size_t len, int64_t *ts,
		     uint64_t *partition)
{
	char msg[256], path[160];
	const char *ts_path = e->ts_path;
	json_error_t jerr;
	json_t *rec = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	int rc = 0;
	if (!json_is_object(rec)) {
		snprintf(msg, sizeof(msg), "not a JSON object%s%s", rec ? "" : ": ",
			 rec ? "" : jerr.text);
		rc = dead_letter(e, "parse", "", msg, line, len);
		goto out;
	}
	json_t *tsv = json_object_get(rec, e->ts_field);
	if (!tsv) {
		rc = dead_letter(e, "missing_ts", ts_path, "the record has no event time", line,
				 len);
		goto out;
	}
	if (json_is_integer(tsv)) {
		*ts = json_integer_value(tsv);
	} else if (!json_is_string(tsv) ||
		   ev_time_parse_rfc3339(json_string_value(tsv), json_string_length(tsv), ts) < 0) {
		rc = dead_letter(
			e, "bad_ts", ts_path,
			"the event time is neither epoch milliseconds nor an RFC 3339 date-time",
			line, len);
		goto out;
	}
	ev_buf_reset(&e->key);
	for (int i = 0; i < e->nkeys; i++) {
		json_t *k = json_object_get(rec, e->keys[i]);
		if (!k) {
			snprintf(path, sizeof(path), "/%s", e->keys[i]);
			rc = dead_letter(e, "missing_key", path,
					 "the record has no value for a key field", line, len);
			goto out;
		}
		if (i)
			ev_buf_putc(&e->key, ',');
		ev_buf_json_string(&e->key, e->keys[i], strlen(e->keys[i]));
		ev_buf_putc(&e->key, ':');
		ev_json_value(&e->key, k);
	}
	for (size_t i = 0; i < e->naggs; i++) {
		json_t *v = e->aggs[i].field ? json_object_get(rec, e->aggs[i].field) : NULL;
		if (v && ev_agg_numeric(&e->aggs[i]) && !json_is_null(v) && !json_is_number(v)) {
			snprintf(path, sizeof(path), "/%s", e->aggs[i].field);
			rc = dead_letter(e, "bad_value", path, "not a number", line, len);
			goto out;
		}
		if (ev_agg_value_json(&e->values[i], &e->aggs[i], v, &e->vbufs[i]) < 0)
			oom();
	}
	json_t *m = e->meta_field ? json_object_get(rec, e->meta_field) : NULL;
	const char *topic = json_string_value(json_object_get(m, "topic"));
	json_t *p = json_object_get(m, "partition");
	*partition = topic && json_is_integer(p)
			     ? partition_hash(topic, strlen(topic), json_integer_value(p))
			     : 0;
	json_decref(rec);
	return 0;
out:
	json_decref(rec);
	return rc < 0 ? -1 : 1;
}

/* Window one record: returns 0, or -1 on an output error. */
static int record(struct evwindow *e, const char *line, size_t len)
{
	const char *ts_path = e->ts_path;
	int64_t ts;
	uint64_t partition;
	if (!read_fast(e, line, len, &ts, &partition)) {
		int r = read_json(e, line, len, &ts, &partition);
		if (r)
			return r < 0 ? -1 : 0;
	}
	int rc = 0;
	int64_t now = e->now_ms = ev_wall_ms();
	int64_t wm = ev_wm_current(e->wm, now);
	int r = ev_wm_observe(e->wm, partition, ts, now);
	if (r == EV_WM_TOO_FAR_AHEAD)
		return dead_letter(e, "future", ts_path,
				   "the event time is too far ahead of its partition", line, len);
	int accepted = 0;
	if (e->gap_ms) {
		struct window *w = session_window(e, ts, wm);
		if (w) {
			accepted = 1;
			if (ev_agg_add(w->agg, e->aggs, e->naggs, e->values, ts, e->seq++) < 0)
				oom();
			account(e, w);
			if (wm != EV_WM_MIN && w->end - 1 <= wm) {
				ev_counter_inc(e->m_updated);
				rc = emit(e, w);
			}
		}
	}
	int64_t every = e->every_ms ? e->every_ms : e->size_ms ? e->size_ms : 1;
	int64_t last = ts >= 0 ? ts / every * every : (ts - every + 1) / every * every;
	int64_t first = last - (e->size_ms / every - 1) * every;
	/* In ascending order, as they would fire. */
	for (int64_t start = first; !e->gap_ms && start <= last && rc == 0; start += every) {
		int64_t end = start + e->size_ms;
		if (wm != EV_WM_MIN && end - 1 + e->lateness_ms <= wm)
			continue; /* this window's state is gone */
		accepted = 1;
		struct window *w = window_get(e, start);
		if (!w && !(w = window_load(e, start, end, wm)))
			w = window_new(e, start, end, wm);
		if (ev_agg_add(w->agg, e->aggs, e->naggs, e->values, ts, e->seq++) < 0)
			oom();
		account(e, w);
		if (wm != EV_WM_MIN && end - 1 <= wm) {
			ev_counter_inc(e->m_updated);
			rc = emit(e, w);
		}
	}
	if (!accepted && rc == 0)
		rc = dead_letter(e, "late", ts_path,
				 "the record's windows are past the allowed lateness", line, len);
	if (rc == 0)
		rc = advance(e, ev_wm_current(e->wm, now));
	maybe_spill(e);
	return rc;
}

static void flush_outputs(void *arg)
{
	struct evwindow *e = arg;
	ev_writer_flush(e->out);
	if (e->late)
		ev_writer_flush(e->late);
	ev_counter_set(e->m_blocked, ev_writer_blocked_ns(e->out));
}

static void state_meta(struct evwindow *e);

/* Barrier id: the state as of this point in the stream, to the checkpoint store. The windows
 * that changed go to RocksDB (and stay in memory), with the watermark; a RocksDB checkpoint
 * hard-links the SST files into a directory next to the store; the files the store does not
 * have yet are uploaded; the part lists them all. Then the barrier goes on downstream. */
static int take_checkpoint(struct evwindow *e, int64_t id)
{
	char err[1024];
	uint64_t t0 = ev_mono_ns(), total, uploaded;
	size_t windows = ev_ht_count(e->windows);
	if (e->gap_ms) {
		/* Sessions change bounds (and so keys) as they grow: store them all afresh. */
		unsigned char from[13], to[13];
		bucket_range(from, to, INT64_MIN);
		to[0] = 'x';
		ev_state_delete_range(e->st, from, sizeof(from), to, 1);
	}
	for (size_t i = 0; i < e->nbuckets; i++) {
		struct bucket *b = e->buckets[i];
		for (size_t j = 0; j < b->n; j++)
			if (b->w[j]->dirty || e->gap_ms) {
				window_store(e, b->w[j]);
				b->w[j]->dirty = 0;
			}
		if (b->n && !e->gap_ms)
			b->spilled = 1; /* the store has them too now */
	}
	state_meta(e);
	ev_buf dir = EV_BUF_INIT;
	ev_buf_printf(&dir, "%s.chk-%" PRId64, ev_state_dir(e->st), id);
	ev_state_remove_dir(ev_buf_cstr(&dir));
	json_t *files = NULL;
	if (ev_state_checkpoint(e->st, ev_buf_cstr(&dir), err, sizeof(err)) == 0)
		files = ev_ckpt_upload_dir(&e->ck, id, ev_buf_cstr(&dir), &total, &uploaded, err,
					   sizeof(err));
	ev_state_remove_dir(ev_buf_cstr(&dir));
	ev_buf_free(&dir);
	if (!files) {
		ev_ckpt_failed(&e->ck, id, err);
		return -1;
	}
	int64_t wm = ev_wm_current(e->wm, ev_wall_ms());
	double secs = (double)(ev_mono_ns() - t0) / 1e9;
	json_t *part = json_pack("{s:o, s:I, s:I, s:I, s:I, s:I}", "files", files, "bytes",
				 (json_int_t)total, "uploaded_bytes", (json_int_t)uploaded,
				 "windows_in_memory", (json_int_t)windows, "watermark",
				 (json_int_t)(wm == EV_WM_MIN ? 0 : wm), "duration_ms",
				 (json_int_t)(secs * 1000));
	if (!part || ev_ckpt_put_part(&e->ck, id, part, err, sizeof(err)) < 0) {
		ev_ckpt_failed(&e->ck, id, part ? err : "out of memory");
		return -1;
	}
	ev_histogram_observe(e->m_ck_duration, secs);
	ev_gauge_set(e->m_ck_full, (double)total);
	ev_gauge_set(e->m_ck_incremental, (double)uploaded);
	ev_gauge_set(e->m_ck_last, (double)id);
	ev_debug("checkpoint %" PRId64 ": %" PRIu64 " bytes, %" PRIu64 " uploaded, %.3f s", id,
		 total, uploaded, secs);
	return 0;
}

#define CONTROL_REFUSED 1 /* an impossible control line (ADR 0013), reported */

static int control(struct evwindow *e, const char *line, size_t len)
{
	ev_control c;
	if (ev_tool_control(&e->ctl, e->in, line, len, &c) < 0)
		return CONTROL_REFUSED;
	if (c.type == EV_CTL_BARRIER && e->ck.store) {
		/* Rows before the barrier are out before the state that produced them is saved. */
		if (ev_writer_flush(e->out) < 0 || (e->late && ev_writer_flush(e->late) < 0))
			return -1;
		take_checkpoint(e, c.id);
	}
	if (c.type == EV_CTL_STOP)
		e->stopped = 1;
	if (c.type == EV_CTL_END)
		e->ended = 1;
	if (c.type == EV_CTL_WATERMARK) {
		ev_wm_promise(e->wm, c.ts);
		e->now_ms = ev_wall_ms();
		if (advance(e, ev_wm_current(e->wm, e->now_ms)) < 0)
			return -1;
	}
	if (ev_writer_line(e->out, line, len) < 0)
		return -1;
	return e->late ? ev_writer_line(e->late, line, len) : 0;
}

/* What the stored state depends on: a restart with other windows, keys or aggregates
 * cannot reuse it. */
static void fingerprint(struct evwindow *e, ev_buf *b)
{
	ev_buf_reset(b);
	ev_buf_printf(b,
		      "ts=%s size=%" PRId64 " every=%" PRId64 " gap=%" PRId64 " keys=", e->ts_field,
		      e->size_ms, e->every_ms, e->gap_ms);
	for (int i = 0; i < e->nkeys; i++)
		ev_buf_printf(b, "%s%s", i ? "," : "", e->keys[i]);
	ev_buf_puts(b, " aggs=");
	for (size_t i = 0; i < e->naggs; i++)
		ev_buf_printf(b, "%s%s=%d:%s", i ? "," : "", e->aggs[i].name, (int)e->aggs[i].fn,
			      e->aggs[i].field ? e->aggs[i].field : "");
}

static int meta_get(struct evwindow *e, const char *name, ev_buf *val)
{
	char err[512];
	int r = ev_state_get(e->st, name, strlen(name), val, err, sizeof(err));
	if (r < 0)
		state_failed(err);
	return r;
}

/* Continue from what a run that stopped on a signal saved in --state-dir: the watermark,
 * the arrival counter, and the windows (left in the store, their buckets rebuilt; session
 * windows are read back into memory). Returns 0, or -1 with the reason logged. */
static int state_restore(struct evwindow *e)
{
	char err[512];
	ev_buf v = EV_BUF_INIT, want = EV_BUF_INIT;
	int rc = -1;
	const char *dir = ev_state_dir(e->st);
	if (meta_get(e, "mopen", &v) == 1) {
		ev_error("the state in %s was not saved: the run that used it did not stop cleanly "
			 "(killed?); remove the directory to start afresh",
			 dir);
		goto out;
	}
	if (meta_get(e, "mconfig", &v) == 0) {
		rc = 0; /* a new store */
		goto out;
	}
	fingerprint(e, &want);
	if (v.len != want.len || memcmp(v.data, want.data, v.len) != 0) {
		ev_error("the state in %s belongs to other windows or aggregates (%.*s); use "
			 "another --state-dir",
			 dir, (int)v.len, v.data);
		goto out;
	}
	if (meta_get(e, "mwm", &v) != 1 || ev_wm_decode(e->wm, v.data, v.len, ev_wall_ms()) < 0 ||
	    meta_get(e, "mseq", &v) != 1 || v.len != sizeof(e->seq)) {
		ev_error("the state in %s is incomplete", dir);
		goto out;
	}
	memcpy(&e->seq, v.data, sizeof(e->seq));
	int64_t wm = ev_wm_current(e->wm, ev_wall_ms());
	unsigned char from[13], to[13];
	const void *k, *val;
	size_t klen, vlen, windows = 0;
	int r;
	bucket_range(from, to, INT64_MIN);
	to[0] = 'x';
	ev_state_iter *it = ev_state_iter_new(e->st, from, sizeof(from), to, 1);
	if (!it)
		oom();
	while ((r = ev_state_iter_next(it, &k, &klen, &val, &vlen)) == 1) {
		struct window *w = window_decode(e, k, klen, val, vlen);
		if (!w)
			break;
		windows++;
		if (e->gap_ms) {
			/* Sessions live in memory. */
			struct sessions *ks = ev_ht_get(e->sessions, w->key, w->keylen);
			if (!ks && (!(ks = calloc(1, sizeof(*ks))) ||
				    ev_ht_put(e->sessions, w->key, w->keylen, ks) < 0))
				oom();
			if (ks->n == ks->cap) {
				ks->cap = ks->cap ? ks->cap * 2 : 4;
				if (!(ks->w = realloc(ks->w, ks->cap * sizeof(*ks->w))))
					oom();
			}
			ks->w[ks->n++] = w;
			window_attach(e, w, wm);
			account(e, w);
			continue;
		}
		/* One bucket per end, its windows left in the store. */
		struct bucket *b = bucket_for(e, w->end);
		if (!b)
			oom();
		b->spilled = 1;
		b->fired = wm != EV_WM_MIN && w->end - 1 <= wm;
		int64_t end = w->end;
		ev_agg_state_free(w->agg, e->aggs, e->naggs);
		free(w);
		/* Skip to the next end. */
		ev_state_iter_free(it);
		bucket_range(from, to, end + 1);
		to[0] = 'x';
		if (!(it = ev_state_iter_new(e->st, from, sizeof(from), to, 1)))
			oom();
	}
	ev_state_iter_free(it);
	if (r != 0)
		goto out;
	if (e->gap_ms) {
		bucket_range(from, to, INT64_MIN);
		to[0] = 'x';
		ev_state_delete_range(e->st, from, sizeof(from), to, 1);
	}
	ev_info("continuing from the state in %s: watermark %" PRId64 ", %zu %s", dir, wm,
		e->gap_ms ? windows : e->nbuckets, e->gap_ms ? "sessions" : "window ends");
	rc = 0;
out:
	ev_buf_free(&v);
	ev_buf_free(&want);
	if (rc == 0) {
		/* Marked open until a clean stop: a crash leaves the mark behind. */
		ev_state_put(e->st, "mopen", 5, "1", 1);
		if (ev_state_commit_sync(e->st, err, sizeof(err)) < 0)
			state_failed(err);
	}
	return rc;
}

/* Queue what the windows need besides themselves: the options fingerprint, the watermark and
 * the arrival counter. */
static void state_meta(struct evwindow *e)
{
	ev_buf v = EV_BUF_INIT;
	fingerprint(e, &v);
	ev_state_put(e->st, "mconfig", 7, v.data, v.len);
	ev_buf_reset(&v);
	if (ev_wm_encode(e->wm, &v) < 0)
		oom();
	ev_state_put(e->st, "mwm", 3, v.data, v.len);
	ev_state_put(e->st, "mseq", 4, &e->seq, sizeof(e->seq));
	ev_buf_free(&v);
}

/* Stopping on a signal with --state-dir: every window to the store with the watermark, so
 * that a restart continues. */
static void state_save(struct evwindow *e)
{
	char err[512];
	size_t windows = ev_ht_count(e->windows);
	for (size_t i = 0; i < e->nbuckets; i++) {
		struct bucket *b = e->buckets[i];
		if (e->gap_ms)
			for (size_t j = 0; j < b->n; j++)
				window_store(e, b->w[j]);
		else
			spill_bucket(e, b);
	}
	state_meta(e);
	ev_state_delete(e->st, "mopen", 5);
	if (ev_state_commit(e->st, err, sizeof(err)) < 0)
		state_failed(err);
	ev_info("state saved in %s (%zu windows from memory): a restart with --state-dir %s "
		"continues",
		ev_state_dir(e->st), windows, ev_state_dir(e->st));
}

/* At the end of input every window fired and expired: the stream is finished, and a later
 * run on the same directory starts afresh. */
static void state_clear(struct evwindow *e)
{
	char err[512];
	ev_state_delete_range(e->st, "", 0, "\xff", 1);
	if (ev_state_commit(e->st, err, sizeof(err)) < 0)
		state_failed(err);
}

/* Free the windows still in memory (after a save, or an output error). */
static void free_windows(struct evwindow *e)
{
	for (size_t i = 0; i < e->nbuckets; i++) {
		for (size_t j = 0; j < e->buckets[i]->n; j++)
			window_free(e, e->buckets[i]->w[j]);
		free(e->buckets[i]->w);
		free(e->buckets[i]);
	}
	e->nbuckets = 0;
	size_t pos = 0, len;
	const void *key;
	void *val;
	while (ev_ht_next(e->sessions, &pos, &key, &len, &val)) {
		struct sessions *ks = val;
		free(ks->w);
		free(ks);
	}
}

static int restore_fill(const char *dir, void *arg, char *err, size_t errlen)
{
	struct evwindow *e = arg;
	return ev_ckpt_download_files(e->ck.store, e->restore_part, dir, err, errlen);
}

static int fresh_fill(const char *dir, void *arg, char *err, size_t errlen)
{
	(void)arg;
	(void)err;
	(void)errlen;
	ev_debug("no checkpoint to restore: starting with empty state in %s", dir);
	return 0;
}

/* A checkpoint was taken from a running store: it carries the "not saved" mark, which does
 * not apply to it. */
static int restore_opened(struct evwindow *e)
{
	char err[512];
	ev_state_delete(e->st, "mopen", 5);
	if (ev_state_commit(e->st, err, sizeof(err)) < 0) {
		ev_error("state store: %s", err);
		return -1;
	}
	return 0;
}

static int run(struct evwindow *e)
{
	char *line;
	size_t len;
	int flags, r;
	ev_reader_set_before_read(e->in, flush_outputs, e);
	while ((r = ev_tool_next_line(e->in, "standard input", &line, &len, &flags)) != 0) {
		if (r < 0)
			return EV_EXIT_FAILURE;
		if (len == 0)
			continue;
		if (ev_control_is(line, len)) {
			int ctl = control(e, line, len);
			if (ctl == CONTROL_REFUSED)
				return EV_EXIT_FAILURE;
			if (ctl < 0)
				goto write_error;
			continue;
		}
		if (ev_tool_torn_line(e->metrics, e->ck.url != NULL, len, flags))
			continue;
		ev_counter_inc(e->m_in);
		if (record(e, line, len) < 0)
			goto write_error;
	}
	int stop = ev_tool_stop_requested() || e->stopped;
	if (!stop && e->ck.store && !e->ended) {
		/* With checkpoints the stream ends only when the source says so: an input that
		 * just stops is a stage upstream that died, and firing now would write partial
		 * windows. A restore continues from the last checkpoint. */
		ev_warn("the input ended without an end line (a stage before this one failed?): "
			"the open windows stay in the last checkpoint");
		stop = 1;
	}
	if (stop && e->ck.store) {
		/* The state of record is the last checkpoint, and reading resumes from its
		 * offsets: firing what is open now would write partial windows. */
		ev_info("stopping: the open windows stay in the last checkpoint");
		if (ev_writer_flush(e->out) < 0 || (e->late && ev_writer_flush(e->late) < 0))
			goto write_error;
		return EV_EXIT_OK;
	}
	if (stop && e->state_dir) {
		/* The windows stay open, saved for the restart. */
		state_save(e);
		if (ev_writer_flush(e->out) < 0 || (e->late && ev_writer_flush(e->late) < 0))
			goto write_error;
		return EV_EXIT_OK;
	}
	if (stop) {
		/* Nowhere to keep state: what is open is written, as at the end of input. */
		ev_info("stopping: firing the open windows (no --state-dir to keep them in)");
	}
	ev_wm_end(e->wm);
	if (advance(e, EV_WM_END) < 0 || ev_writer_flush(e->out) < 0 ||
	    (e->late && ev_writer_flush(e->late) < 0))
		goto write_error;
	state_clear(e);
	return EV_EXIT_OK;
write_error:
	if (errno != EPIPE)
		ev_error("cannot write output: %s", strerror(errno));
	return EV_EXIT_FAILURE;
}

static int duration(const char *arg, int64_t *ms, int positive)
{
	if (ev_opt_duration_ms(arg, 1000, ms) < 0 || (positive && *ms <= 0))
		return ev_tool_usage_error("invalid duration '%s'", arg);
	return 0;
}

static int parse_args(struct evwindow *e, int argc, char **argv)
{
	char err[512];
	int c;
	const char *agg = "count";
	opterr = 0;
	while ((c = getopt_long(argc, argv, EV_TOOL_SHORT_OPTIONS, long_options, NULL)) != -1) {
		int common = ev_tool_common_option(c, optarg, usage_text, &e->common);
		if (common != 0) {
			if (common < 0)
				return -1;
			continue;
		}
		if (ev_ckpt_option(c, optarg, &e->ck))
			continue;
		int rc = 0;
		switch (c) {
		case OPT_TS_FIELD: e->ts_field = optarg; break;
		case OPT_KEY: {
			char *save = NULL;
			for (char *k = strtok_r(optarg, ",", &save); k;
			     k = strtok_r(NULL, ",", &save)) {
				if (e->nkeys == MAX_KEYS)
					return ev_tool_usage_error("at most %d key fields",
								   MAX_KEYS);
				e->keys[e->nkeys++] = k;
			}
			break;
		}
		case OPT_TUMBLE: rc = duration(optarg, &e->size_ms, 1); break;
		case OPT_SLIDE: rc = duration(optarg, &e->size_ms, 1); break;
		case OPT_EVERY: rc = duration(optarg, &e->every_ms, 1); break;
		case OPT_GAP: rc = duration(optarg, &e->gap_ms, 1); break;
		case OPT_AGG: agg = optarg; break;
		case OPT_OOO: rc = duration(optarg, &e->wmo.out_of_orderness_ms, 0); break;
		case OPT_LATENESS: rc = duration(optarg, &e->lateness_ms, 0); break;
		case OPT_IDLE: rc = duration(optarg, &e->wmo.idle_timeout_ms, 0); break;
		case OPT_MAX_FUTURE: rc = duration(optarg, &e->wmo.max_future_ms, 0); break;
		case OPT_META_FIELD: e->meta_field = *optarg ? optarg : NULL; break;
		case OPT_LATE: e->late_spec = optarg; break;
		case OPT_STATE_DIR: e->state_dir = optarg; break;
		case OPT_STATE_MEMORY:
			if (ev_opt_size(optarg, &e->state_memory) < 0 ||
			    e->state_memory < (1u << 20))
				return ev_tool_usage_error(
					"invalid --state-memory '%s' (at least 1MiB)", optarg);
			break;
		default: return ev_tool_bad_option(argv);
		}
		if (rc)
			return rc;
	}
	if (optind < argc)
		return ev_tool_usage_error("unexpected argument '%s'", argv[optind]);
	snprintf(e->ts_path, sizeof(e->ts_path), "/%s", e->ts_field);
	if (!!e->size_ms + !!e->gap_ms != 1)
		return ev_tool_usage_error(
			"give one of --tumble D, --slide D --every E, --session-gap G");
	if (e->every_ms && (e->every_ms > e->size_ms || e->size_ms % e->every_ms))
		return ev_tool_usage_error("--every must divide --slide");
	if (ev_agg_parse(agg, &e->aggs, &e->naggs, err, sizeof(err)) < 0)
		return ev_tool_usage_error("%s", err);
	return 0;
}

int main(int argc, char **argv)
{
	struct evwindow e;
	char err[512];
	memset(&e, 0, sizeof(e));
	e.ts_field = "ts";
	e.meta_field = "_src";
	e.common.job = "evpipe";
	e.state_memory = 128u << 20;
	e.wm_seen = EV_WM_MIN;

	ev_tool_init("evwindow");
	int rc = parse_args(&e, argc, argv);
	if (rc != 0) {
		ev_agg_specs_free(e.aggs, e.naggs);
		return rc < 0 ? ev_tool_finish(EV_EXIT_OK) : rc;
	}
	if (e.late_spec) {
		int fd = ev_sideout_open(e.late_spec, err, sizeof(err));
		if (fd < 0) {
			ev_error("--late: %s", err);
			return EV_EXIT_FAILURE;
		}
		e.late = ev_writer_new(fd, 64 * 1024);
	}
	e.metrics = ev_tool_metrics("evwindow", e.common.job, e.common.metrics_addr);
	if (!e.metrics)
		return EV_EXIT_FAILURE;
	ev_metrics *m = e.metrics;
	e.m_in = ev_tool_records_in(m);
	e.m_out = ev_tool_records_out(m);
	e.m_fired = ev_metrics_counter(m, "evpipe_windows_fired_total",
				       "Windows fired by the watermark", NULL);
	e.m_updated = ev_metrics_counter(m, "evpipe_late_records_total",
					 "Records after their window fired, by outcome",
					 "outcome=\"updated\"");
	e.m_late = ev_metrics_counter(m, "evpipe_late_records_total",
				      "Records after their window fired, by outcome",
				      "outcome=\"dead_lettered\"");
	e.m_blocked = ev_tool_blocked(m, "stdout");
	e.m_wm = ev_metrics_gauge(m, "evpipe_watermark_seconds", "Current event-time watermark",
				  NULL);
	e.m_wm_lag = ev_metrics_gauge(m, "evpipe_watermark_lag_seconds",
				      "Processing time minus the watermark", NULL);
	e.m_open = ev_metrics_gauge(m, "evpipe_windows_open",
				    "Windows and keys held in state (the store's part estimated)",
				    NULL);
	e.m_keys_mem = ev_metrics_gauge(m, "evpipe_state_keys", "Entries of state, by tier",
					"tier=\"memory\"");
	e.m_keys_store = ev_metrics_gauge(m, "evpipe_state_keys", "Entries of state, by tier",
					  "tier=\"rocksdb\"");
	e.m_bytes_mem =
		ev_metrics_gauge(m, "evpipe_state_bytes",
				 "Bytes of state, by tier (memory: estimated)", "tier=\"memory\"");
	e.m_bytes_store =
		ev_metrics_gauge(m, "evpipe_state_bytes",
				 "Bytes of state, by tier (memory: estimated)", "tier=\"rocksdb\"");
	static const double ck_bounds[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
	e.m_ck_duration = ev_metrics_histogram(
		m, "evpipe_checkpoint_stage_duration_seconds",
		"Time a stage takes for its part of a checkpoint (snapshot and upload)", NULL,
		ck_bounds, sizeof(ck_bounds) / sizeof(ck_bounds[0]));
	e.m_ck_full =
		ev_metrics_gauge(m, "evpipe_checkpoint_stage_size_bytes",
				 "Bytes of the last checkpoint's part, by kind", "kind=\"full\"");
	e.m_ck_incremental = ev_metrics_gauge(m, "evpipe_checkpoint_stage_size_bytes",
					      "Bytes of the last checkpoint's part, by kind",
					      "kind=\"incremental\"");
	e.m_ck_last =
		ev_metrics_gauge(m, "evpipe_checkpoint_stage_last_id",
				 "Id of the last checkpoint this stage wrote its part of", NULL);
	ev_ckpt_metrics(&e.ck, m);
	e.m_spills =
		ev_metrics_counter(m, "evpipe_state_spills_total",
				   "Times the windows in memory went to RocksDB for want of memory",
				   NULL);

	e.wm = ev_wm_new(&e.wmo);
	e.windows = ev_ht_new();
	e.sessions = ev_ht_new();
	e.values = calloc(e.naggs, sizeof(*e.values));
	e.vbufs = calloc(e.naggs, sizeof(*e.vbufs));
	e.fj = ev_fj_new();
	e.in = ev_reader_new(0, 0);
	e.out = ev_writer_new(1, 64 * 1024);
	if (!e.wm || !e.windows || !e.values || !e.vbufs || !e.in || !e.out ||
	    (e.late_spec && !e.late)) {
		ev_error("out of memory");
		return EV_EXIT_FAILURE;
	}
	/* Half of the memory for aggregation in memory, a quarter for RocksDB, the rest for
	 * what the estimate misses. */
	e.mem_budget = e.state_memory / 2;
	ev_state_opts so = {.dir = e.state_dir, .memory = e.state_memory / 4};
	ev_ckpt_restored rs;
	ev_buf fp = EV_BUF_INIT;
	fingerprint(&e, &fp); /* a checkpoint of other windows is refused before it is read */
	ev_ckpt_set_identity(&e.ck,
			     json_pack("{s:s%}", "fingerprint", fp.data ? fp.data : "", fp.len));
	ev_buf_free(&fp);
	if (ev_ckpt_open(&e.ck, e.common.job, "evwindow", err, sizeof(err)) < 0 ||
	    ev_ckpt_restore(&e.ck, &rs, err, sizeof(err)) < 0) {
		ev_error("checkpoints: %s", err);
		rc = EV_EXIT_FAILURE;
		goto done;
	}
	e.restore_part = json_incref(rs.part);
	if (rs.id && !rs.part) {
		ev_error("checkpoints: checkpoint %" PRId64 " has no part of stage '%s'", rs.id,
			 e.ck.stage);
		rc = EV_EXIT_FAILURE;
	}
	ev_control_seq_init(&e.ctl, rs.id);
	ev_ckpt_restored_free(&rs);
	if (rc == EV_EXIT_FAILURE)
		goto done;
	if (e.restore_part) {
		so.fill = restore_fill;
		so.fill_arg = &e;
	} else if (e.ck.store) {
		/* With checkpoints, state comes from a checkpoint or starts empty: what a directory
		 * holds besides would not match where kin resumes reading. */
		so.fill = fresh_fill;
	}
	if (!(e.st = ev_state_open(&so, err, sizeof(err)))) {
		ev_error("--state-dir: %s", err);
		rc = EV_EXIT_FAILURE;
	} else if (e.restore_part && restore_opened(&e) < 0) {
		rc = EV_EXIT_FAILURE;
	} else if (state_restore(&e) < 0) {
		rc = EV_EXIT_FAILURE;
	} else {
		ev_tool_catch_signals();
		rc = run(&e);
	}
	if (e.st && ev_state_close(e.st, err, sizeof(err)) < 0) {
		ev_error("state store: %s", err);
		rc = EV_EXIT_FAILURE;
	}
done:
	json_decref(e.restore_part);
	ev_ckpt_close(&e.ck);

	ev_writer_free(e.out);
	ev_writer_free(e.late);
	ev_reader_free(e.in);
	free_windows(&e);
	ev_wm_free(e.wm);
	ev_ht_free(e.windows);
	ev_ht_free(e.sessions);
	free(e.buckets);
	free(e.values);
	for (size_t i = 0; e.vbufs && i < e.naggs; i++)
		ev_buf_free(&e.vbufs[i]);
	free(e.vbufs);
	ev_fj_free(e.fj);
	ev_buf_free(&e.row);
	ev_buf_free(&e.key);
	ev_buf_free(&e.scratch);
	ev_buf_free(&e.skey);
	ev_buf_free(&e.sval);
	ev_agg_specs_free(e.aggs, e.naggs);
	ev_metrics_free(e.metrics);
	return ev_tool_finish(rc);
}
