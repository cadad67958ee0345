/* SPDX-License-Identifier: Apache-2.0 */
/* window.c: event-time windows with allowed lateness over a memory budget and a state store. */
#include "window.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ht.h"
#include "timefmt.h"

/* The state of one window and key. */
struct window {
	int64_t start, end;
	size_t keylen;
	ev_agg_state *agg;
	uint64_t version;   /* the records folded in (a merged session: the sum of its parts) */
	size_t bytes;       /* what it counts against the memory budget */
	uint32_t scope;     /* the partition it belongs to (0: records without provenance) */
	unsigned dirty : 1; /* changed since the store last had it */
	unsigned cross : 1; /* its key was seen first in another partition */
	char key[];         /* "k1":v1,"k2":v2 as written in rows; "" without keys */
};

/* A Kafka partition that has state here: the scope its windows are stored under. */
struct scope {
	uint64_t part; /* ev_window_partition of its topic and partition */
	uint32_t id;
	int64_t partition;
	char *topic;
};

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

struct ev_window {
	ev_window_opts o;
	ev_ht *windows;          /* start + key -> struct window */
	ev_ht *sessions;         /* key -> struct sessions: the live sessions of each key */
	struct bucket **buckets; /* by ascending end */
	size_t nbuckets, capbuckets;
	uint64_t seq;
	struct scope **scopes; /* by ascending id */
	size_t nscopes, capscopes;
	uint32_t next_scope;      /* the id the next new partition gets */
	ev_ht *scope_of;          /* part (8 bytes) -> struct scope */
	struct scope *last_scope; /* the one looked up last */
	ev_ht *owners;       /* key text -> (the first scope it was seen in + 1) << 1 | warned */
	uint32_t scope;      /* of the record at hand */
	size_t mem_bytes;    /* held by the windows in memory (estimate) */
	int64_t wm_advanced; /* the watermark last advanced to */
	const char *key;     /* the key of the record at hand */
	size_t keylen;
	ev_buf row, scratch, skey, sval, sesskey;
	struct bound {
		int64_t ms;
		char text[20];
	} bounds[2];        /* the window bounds last formatted */
	char msg[512];      /* what failed (EV_WINDOW_FAILED) */
	int64_t now;        /* processing time of the record at hand */
	int64_t wm_seen;    /* the watermark last set in the gauge */
	int64_t stats_at;   /* when the state gauges were last set */
	ev_window_series m; /* all NULL without series */
};

/* Record what failed; returns EV_WINDOW_FAILED. */
static int fail(ev_window *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(ev_window *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return EV_WINDOW_FAILED;
}

static int oom(ev_window *e)
{
	return fail(e, "out of memory");
}

/* The error of a public call into the caller's buffer. */
static int ret(ev_window *e, int rc, char *err, size_t errlen)
{
	if (rc == EV_WINDOW_FAILED && errlen)
		snprintf(err, errlen, "%s", e->msg);
	return rc;
}

/* The state store (format 3). Window keys are 'w', a 4-byte scope (the Kafka partition the
 * window belongs to, 0 for records without provenance), then end and start in an order-
 * preserving encoding, then the key text: a partition's windows are one key range, a bucket
 * (one end) of one partition another, and a scan of it yields the windows in the order they
 * are written. Values are the version (8 bytes, order-preserving) and the aggregates'
 * encoding. Meta keys start with 'm'; "mp" and a scope name the partition of that scope.
 * (Format 2 had scope 0 for every window and a 4-byte version counting the window's rows.) */
enum { WKEY_SCOPE = 1, WKEY_END = 5, WKEY_START = 13, WKEY_HEAD = 21 };
enum { VAL_HEAD = 8, VAL_HEAD_V2 = 4, FORMAT = 3 };
static const char META_OPEN[] = "mopen", META_CONFIG[] = "mconfig", META_WM[] = "mwm",
		  META_SEQ[] = "mseq", META_SCOPE[] = "mp";

static void window_key(ev_buf *b, uint32_t scope, int64_t end, int64_t start, const char *key,
		       size_t keylen)
{
	unsigned char h[WKEY_HEAD];
	h[0] = 'w';
	ev_state_put_u32(h + WKEY_SCOPE, scope);
	ev_state_put_i64(h + WKEY_END, end);
	ev_state_put_i64(h + WKEY_START, start);
	ev_buf_reset(b);
	ev_buf_append(b, h, sizeof(h));
	ev_buf_append(b, key, keylen);
}

/* The key range of the windows of scope ending at end: [from, to). */
static void bucket_range(unsigned char from[WKEY_START], unsigned char to[WKEY_START],
			 uint32_t scope, int64_t end)
{
	from[0] = to[0] = 'w';
	ev_state_put_u32(from + WKEY_SCOPE, scope);
	ev_state_put_u32(to + WKEY_SCOPE, scope);
	ev_state_put_i64(from + WKEY_END, end);
	ev_state_put_i64(to + WKEY_END, end + 1);
}

/* The key range of every window of scope: [from, to). */
static void scope_range(unsigned char from[WKEY_END], unsigned char to[WKEY_END], uint32_t scope)
{
	from[0] = to[0] = 'w';
	ev_state_put_u32(from + WKEY_SCOPE, scope);
	ev_state_put_u32(to + WKEY_SCOPE, scope + 1);
	if (scope == UINT32_MAX)
		to[0] = 'x';
}

/* The meta key naming the partition of scope. */
static void scope_meta_key(unsigned char k[6], uint32_t scope)
{
	memcpy(k, META_SCOPE, 2);
	ev_state_put_u32(k + 2, scope);
}

/* Delete every window of the store (the caller commits). */
static void delete_windows(ev_state *st)
{
	ev_state_delete_range(st, "w", 1, "x", 1);
}

/* A stored window's key and value (its version vhead bytes: VAL_HEAD, or VAL_HEAD_V2 in
 * format 2): 0, or -1 when truncated. */
static int decode_entry(const unsigned char *k, size_t klen, const unsigned char *v, size_t vlen,
			size_t vhead, ev_window_row *r)
{
	if (klen < WKEY_HEAD || vlen < vhead)
		return -1;
	memset(r, 0, sizeof(*r));
	r->scope = (uint32_t)(k[1] << 24 | k[2] << 16 | k[3] << 8 | k[4]);
	r->end = ev_state_get_i64(k + WKEY_END);
	r->start = ev_state_get_i64(k + WKEY_START);
	r->key = (const char *)k + WKEY_HEAD;
	r->keylen = klen - WKEY_HEAD;
	if (vhead == VAL_HEAD_V2)
		r->version = (int64_t)((uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 |
				       (uint32_t)v[2] << 8 | v[3]);
	else
		r->version = ev_state_get_i64(v);
	r->partition = -1;
	return 0;
}

/* The row of a window whose bounds [start_ms, end_ms) are already text (seconds); with msec,
 * the bounds' milliseconds past those seconds follow each. */
static int format_row(ev_buf *out, const char *start, const char *end, int64_t start_ms,
		      int64_t end_ms, int msec, const char *key, size_t keylen,
		      const ev_agg_state *agg, const ev_agg_spec *specs, size_t n, int64_t version)
{
	int rc = ev_buf_puts(out, "{\"window_start\":\"");
	rc |= ev_buf_append(out, start, 19);
	if (msec) {
		rc |= ev_buf_puts(out, "\",\"window_start_msec\":");
		rc |= ev_buf_put_i64(out, ev_time_msec(start_ms));
		rc |= ev_buf_putc(out, ',');
	} else
		rc |= ev_buf_puts(out, "\",");
	rc |= ev_buf_puts(out, "\"window_end\":\"");
	rc |= ev_buf_append(out, end, 19);
	rc |= ev_buf_putc(out, '"');
	if (msec) {
		rc |= ev_buf_puts(out, ",\"window_end_msec\":");
		rc |= ev_buf_put_i64(out, ev_time_msec(end_ms));
	}
	if (keylen) {
		rc |= ev_buf_putc(out, ',');
		rc |= ev_buf_append(out, key, keylen);
	}
	rc |= ev_agg_format(out, agg, specs, n);
	rc |= ev_buf_puts(out, ",\"version\":");
	rc |= ev_buf_put_i64(out, version);
	rc |= ev_buf_putc(out, '}');
	return rc ? -1 : 0;
}

int ev_window_format_row(ev_buf *out, const ev_window_row *r, const ev_agg_spec *specs, size_t n)
{
	char s[20], t[20];
	ev_time_format_datetime(r->start, s);
	ev_time_format_datetime(r->end, t);
	int msec = ev_time_msec(r->start) || ev_time_msec(r->end);
	return format_row(out, s, t, r->start, r->end, msec, r->key, r->keylen, r->agg, specs, n,
			  r->version);
}

/* The fingerprint's names of the aggregate functions (v2), and the numbers the v1 format
 * stored: enum ev_agg_fn's order when v1 was written, frozen here. */
static const struct {
	const char *name;
	enum ev_agg_fn fn;
	int v1;
} agg_fns[] = {
	{"count", EV_AGG_COUNT, 0}, {"sum", EV_AGG_SUM, 1},   {"min", EV_AGG_MIN, 2},
	{"max", EV_AGG_MAX, 3},     {"avg", EV_AGG_AVG, 4},   {"uniq", EV_AGG_UNIQ, 5},
	{"first", EV_AGG_FIRST, 6}, {"last", EV_AGG_LAST, 7},
};
enum { NFNS = sizeof(agg_fns) / sizeof(agg_fns[0]) };

static int fn_index(enum ev_agg_fn fn)
{
	for (int i = 0; i < NFNS; i++)
		if (agg_fns[i].fn == fn)
			return i;
	return -1;
}

/* The fingerprint in format version (1: the aggregates as v1 numbers, 2 and 3: by name). The
 * version follows the window's bounds, so that the text still starts with "ts=" as v1 did. */
static int fingerprint(ev_buf *b, const ev_window_opts *o, int version)
{
	int rc = ev_buf_printf(b, "ts=%s size=%" PRId64 " every=%" PRId64 " gap=%" PRId64,
			       o->ts_field, o->size_ms, o->every_ms, o->gap_ms);
	if (o->keys_span_partitions)
		rc |= ev_buf_puts(b, " scope=job"); /* its state is not split by partition */
	if (version > 1)
		rc |= ev_buf_printf(b, " format=%d", version);
	rc |= ev_buf_puts(b, " keys=");
	for (int i = 0; i < o->nkeys; i++)
		rc |= ev_buf_printf(b, "%s%s", i ? "," : "", o->keys[i]);
	rc |= ev_buf_puts(b, " aggs=");
	for (size_t i = 0; i < o->naggs; i++) {
		const ev_agg_spec *a = &o->aggs[i];
		int f = fn_index(a->fn);
		if (f < 0)
			return -1;
		if (version == 1)
			rc |= ev_buf_printf(b, "%s%s=%d:%s", i ? "," : "", a->name, agg_fns[f].v1,
					    a->field ? a->field : "");
		else
			rc |= ev_buf_printf(b, "%s%s=%s%s%s", i ? "," : "", a->name,
					    agg_fns[f].name, a->field ? ":" : "",
					    a->field ? a->field : "");
	}
	return rc ? -1 : 0;
}

/* The format version of a stored fingerprint: 1 (no " format=N" before the keys), N, or -1
 * when it is not one. */
static int fingerprint_version(const char *fp, size_t len)
{
	if (len < 3 || memcmp(fp, "ts=", 3) != 0)
		return -1;
	const char *keys = memmem(fp, len, " keys=", 6);
	if (!keys)
		return -1;
	const char *f = NULL;
	for (const char *q = fp; (q = memmem(q, (size_t)(keys - q), " format=", 8)); q++)
		f = q;
	if (!f)
		return 1;
	int v = 0;
	for (f += 8; f < keys && *f >= '0' && *f <= '9' && v < 1000; f++)
		v = v * 10 + (*f - '0');
	return f == keys && v > 1 ? v : -1;
}

int ev_window_fingerprint(ev_buf *out, const ev_window_opts *o)
{
	ev_buf_reset(out);
	return fingerprint(out, o, FORMAT);
}

/* One aggregate of a fingerprint, "NAME=FN[:FIELD]" (v2) or "NAME=NUMBER:[FIELD]" (v1). */
static int parse_agg(const char *p, size_t len, int version, ev_agg_spec *s)
{
	const char *eq = memchr(p, '=', len), *end = p + len;
	if (!eq || eq == p)
		return -1;
	const char *fn = eq + 1, *colon = memchr(fn, ':', (size_t)(end - fn));
	int f = -1;
	for (int i = 0; i < NFNS && f < 0; i++) {
		if (version == 1) {
			char num[12];
			int nl = snprintf(num, sizeof(num), "%d", agg_fns[i].v1);
			if (colon && colon - fn == nl && memcmp(fn, num, (size_t)nl) == 0)
				f = i;
		} else {
			size_t fl = (size_t)((colon ? colon : end) - fn);
			if (strlen(agg_fns[i].name) == fl && memcmp(fn, agg_fns[i].name, fl) == 0)
				f = i;
		}
	}
	if (f < 0)
		return -1;
	int count = agg_fns[f].fn == EV_AGG_COUNT;
	size_t flen = colon ? (size_t)(end - colon - 1) : 0;
	/* count has no field (v1: "count=0:"), the others one */
	if (count ? flen != 0 || (version >= 2 && colon) : flen == 0)
		return -1;
	s->fn = agg_fns[f].fn;
	s->name = strndup(p, (size_t)(eq - p));
	s->field = count ? NULL : strndup(colon + 1, flen);
	return s->name && (count || s->field) ? 0 : -1;
}

int ev_window_fingerprint_aggs(const char *fp, size_t len, ev_agg_spec **specs, size_t *nspecs,
			       char *err, size_t errlen)
{
	int version = fingerprint_version(fp, len);
	if (version < 0) {
		snprintf(err, errlen, "not an options fingerprint of evwindow");
		return -1;
	}
	if (version > FORMAT) {
		snprintf(err, errlen,
			 "the options fingerprint is of format %d, newer than this evpipe reads "
			 "(%d)",
			 version, FORMAT);
		return -1;
	}
	const char *p = NULL, *end = fp + len;
	for (const char *q = fp; (q = memmem(q, (size_t)(end - q), " aggs=", 6)); q++)
		p = q;
	if (!p || p + 6 == end) {
		snprintf(err, errlen, "the options fingerprint has no aggregates");
		return -1;
	}
	p += 6;
	size_t n = 1;
	for (const char *q = p; q < end; q++)
		n += *q == ',';
	ev_agg_spec *s = calloc(n, sizeof(*s));
	size_t i = 0;
	for (; s && i < n; i++) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		size_t l = (size_t)((comma ? comma : end) - p);
		if (parse_agg(p, l, version, &s[i]) < 0) {
			i++;
			break;
		}
		p += l + (comma != NULL);
	}
	if (!s || i < n || p < end || s[n - 1].name == NULL) {
		ev_agg_specs_free(s, i);
		snprintf(err, errlen,
			 "the options fingerprint's aggregates cannot be read (format %d): '%.*s'",
			 version, (int)len, fp);
		return -1;
	}
	*specs = s;
	*nspecs = n;
	return 0;
}

static int meta_get(ev_state *st, const char *name, ev_buf *val, char *err, size_t errlen)
{
	return ev_state_get(st, name, strlen(name), val, err, errlen);
}

int ev_window_stored_fingerprint(ev_state *st, ev_buf *out, char *err, size_t errlen)
{
	return meta_get(st, META_CONFIG, out, err, errlen);
}

int ev_window_stored_watermark(ev_state *st, int64_t *wm, char *err, size_t errlen)
{
	ev_buf v = EV_BUF_INIT;
	int r = meta_get(st, META_WM, &v, err, errlen);
	if (r == 1) {
		/* With every partition idle, ev_wm_current answers what was given and promised
		 * before. */
		ev_wm_opts o = {.idle_timeout_ms = 1};
		ev_wm *w = ev_wm_new(&o);
		if (!w || ev_wm_decode(w, v.data, v.len, 0) < 0) {
			snprintf(err, errlen, "the stored watermark cannot be read");
			r = -1;
		} else {
			*wm = ev_wm_current(w, 1);
		}
		ev_wm_free(w);
	}
	ev_buf_free(&v);
	return r;
}

int ev_window_unmark_open(ev_state *st, char *err, size_t errlen)
{
	ev_state_delete(st, META_OPEN, strlen(META_OPEN));
	return ev_state_commit(st, err, errlen);
}

/* A scope's meta value: the partition key, the Kafka partition, the topic. */
enum { SCOPE_VAL_HEAD = 16 };

int ev_window_scan(ev_state *st, const ev_agg_spec *specs, size_t n,
		   int (*fn)(void *arg, const ev_window_row *r), void *arg, char *err,
		   size_t errlen)
{
	ev_buf fp = EV_BUF_INIT, topic = EV_BUF_INIT;
	int r = meta_get(st, META_CONFIG, &fp, err, errlen);
	size_t vhead =
		r == 1 && fingerprint_version(fp.data, fp.len) < FORMAT ? VAL_HEAD_V2 : VAL_HEAD;
	ev_buf_free(&fp);
	if (r < 0)
		return -1;
	ev_state_iter *it = ev_state_iter_new(st, "w", 1, "x", 1);
	const void *k, *v;
	size_t klen, vlen;
	int rc = 0;
	uint32_t scope = 0;
	int64_t partition = -1;
	if (!it) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	while (rc == 0 && (r = ev_state_iter_next(it, &k, &klen, &v, &vlen)) == 1) {
		ev_window_row row;
		ev_agg_state *agg;
		if (decode_entry(k, klen, v, vlen, vhead, &row) < 0) {
			snprintf(err, errlen, "state store: a window entry is truncated");
			rc = -1;
			break;
		}
		if (row.scope != scope) {
			/* The first window of a partition: its name. */
			unsigned char mk[6];
			scope_meta_key(mk, row.scope);
			scope = row.scope;
			if (ev_state_get(st, mk, sizeof(mk), &topic, err, errlen) != 1 ||
			    topic.len < SCOPE_VAL_HEAD) {
				snprintf(err, errlen,
					 "state store: the partition of scope %" PRIu32
					 " is unknown",
					 scope);
				rc = -1;
				break;
			}
			partition = ev_state_get_i64((const unsigned char *)topic.data + 8);
		}
		if (scope) {
			row.topic = topic.data + SCOPE_VAL_HEAD;
			row.topic_len = topic.len - SCOPE_VAL_HEAD;
			row.partition = partition;
		}
		if (!(agg = ev_agg_decode((const char *)v + vhead, vlen - vhead, specs, n))) {
			snprintf(err, errlen,
				 "state store: a window's aggregates cannot be read with the "
				 "stored options' aggregates");
			rc = -1;
		} else {
			row.agg = agg;
			rc = fn(arg, &row);
			ev_agg_state_free(agg, specs, n);
		}
	}
	if (rc == 0 && r < 0) {
		snprintf(err, errlen, "state store: cannot read the windows");
		rc = -1;
	}
	ev_state_iter_free(it);
	ev_buf_free(&topic);
	return rc;
}

uint64_t ev_window_partition(const char *topic, size_t topic_len, int64_t partition)
{
	return ev_hash(topic, topic_len) ^ ((uint64_t)partition * 0x9e3779b97f4a7c15ull);
}

/* The partition of part, or NULL. */
static struct scope *scope_find(ev_window *e, uint64_t part)
{
	if (e->last_scope && e->last_scope->part == part)
		return e->last_scope;
	struct scope *s = ev_ht_get(e->scope_of, &part, sizeof(part));
	if (s)
		e->last_scope = s;
	return s;
}

/* A partition with state here from now on, under id (0: the next free one); NULL when out of
 * memory. */
static struct scope *scope_add(ev_window *e, uint64_t part, const char *topic, size_t topic_len,
			       int64_t partition, uint32_t id)
{
	if (ev_array_room(&e->scopes, &e->capscopes, e->nscopes, sizeof(*e->scopes), 8) < 0)
		return NULL;
	struct scope *s = calloc(1, sizeof(*s));
	if (!s || !(s->topic = strndup(topic, topic_len)) ||
	    ev_ht_put(e->scope_of, &part, sizeof(part), s) < 0) {
		if (s)
			free(s->topic);
		free(s);
		return NULL;
	}
	s->part = part;
	s->partition = partition;
	s->id = id ? id : e->next_scope;
	if (s->id >= e->next_scope)
		e->next_scope = s->id + 1;
	/* ids only grow: appending keeps the order */
	e->scopes[e->nscopes++] = s;
	return s;
}

/* The scope of the record at hand into e->scope: 0 without provenance. */
static int scope_of_record(ev_window *e, const ev_record *r)
{
	e->scope = 0;
	if (!r->partition || e->o.keys_span_partitions)
		return 0;
	struct scope *s = scope_find(e, r->partition);
	if (!s && !(s = scope_add(e, r->partition, r->topic, r->topic_len, r->src_partition, 0)))
		return oom(e);
	e->last_scope = s;
	e->scope = s->id;
	return 0;
}

/* The scopes with windows, in the order the store has them: 0, then each partition's. */
static size_t nscope_ids(const ev_window *e)
{
	return e->nscopes + 1;
}

static uint32_t scope_id(const ev_window *e, size_t i)
{
	return i ? e->scopes[i - 1]->id : 0;
}

/* "topic/partition" of scope id, for messages. */
static void scope_name(const ev_window *e, uint32_t id, char *out, size_t len)
{
	for (size_t i = 0; i < e->nscopes; i++)
		if (e->scopes[i]->id == id) {
			snprintf(out, len, "%s/%" PRId64, e->scopes[i]->topic,
				 e->scopes[i]->partition);
			return;
		}
	snprintf(out, len, "%s", id ? "a partition no longer here" : "records without provenance");
}

/* Keys must not span partitions: w's key is owned by the partition it was first seen in (among
 * the last OWNERS_MAX keys); a window of it in another one is marked, and said once per key. */
enum { OWNERS_MAX = 1 << 20 };

static int owner_check(ev_window *e, struct window *w)
{
	if (!w->scope)
		return 0;
	uintptr_t v = (uintptr_t)ev_ht_get(e->owners, w->key, w->keylen);
	if (!v) {
		if (ev_ht_count(e->owners) >= OWNERS_MAX) {
			ev_ht_free(e->owners);
			if (!(e->owners = ev_ht_new()))
				return oom(e);
		}
		v = ((uintptr_t)w->scope + 1) << 1;
		return ev_ht_put(e->owners, w->key, w->keylen, (void *)v) < 0 ? oom(e) : 0;
	}
	if ((uint32_t)((v >> 1) - 1) == w->scope)
		return 0;
	w->cross = 1;
	if (v & 1)
		return 0;
	if (ev_ht_put(e->owners, w->key, w->keylen, (void *)(v | 1)) < 0)
		return oom(e);
	if (e->o.cross_partition) {
		char first[160], now[160];
		scope_name(e, (uint32_t)((v >> 1) - 1), first, sizeof(first));
		scope_name(e, w->scope, now, sizeof(now));
		e->o.cross_partition(e->o.arg, w->key, w->keylen, first, now);
	}
	return 0;
}

/* A window with room for a key of keylen bytes, zeroed; NULL when out of memory. */
static struct window *window_alloc(const void *key, size_t keylen)
{
	struct window *w = calloc(1, sizeof(*w) + keylen + 1);
	if (!w)
		return NULL;
	if (keylen)
		memcpy(w->key, key, keylen);
	w->keylen = keylen;
	return w;
}

static int cmp_window(const void *a, const void *b)
{
	const struct window *x = *(struct window *const *)a, *y = *(struct window *const *)b;
	if (x->scope != y->scope)
		return x->scope < y->scope ? -1 : 1;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
	int c = memcmp(x->key, y->key, n);
	return c ? c : (x->keylen > y->keylen) - (x->keylen < y->keylen);
}

/* The text of a window bound, "YYYY-MM-DD hh:mm:ss": the last two are kept, since the windows
 * of a firing share their bounds. */
static const char *bound_text(ev_window *e, int64_t ms)
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

static int emit(ev_window *e, struct window *w)
{
	char start[20];
	ev_buf_reset(&e->row);
	memcpy(start, bound_text(e, w->start), sizeof(start));
	if (format_row(&e->row, start, bound_text(e, w->end), w->start, w->end, e->o.msec_bounds,
		       w->key, w->keylen, w->agg, e->o.aggs, e->o.naggs, (int64_t)w->version) < 0)
		return oom(e);
	return e->o.row(e->o.arg, e->row.data, e->row.len) ? EV_WINDOW_OUTPUT : 0;
}

static void window_free(ev_window *e, struct window *w)
{
	e->mem_bytes -= w->bytes;
	ev_agg_state_free(w->agg, e->o.aggs, e->o.naggs);
	free(w);
}

/* The key of a partition's key in e->sessions: the scope, then the key text (in e->sesskey). */
static const ev_buf *session_key(ev_window *e, uint32_t scope, const char *key, size_t keylen)
{
	ev_buf_reset(&e->sesskey);
	ev_buf_append(&e->sesskey, &scope, sizeof(scope));
	ev_buf_append(&e->sesskey, key, keylen);
	return &e->sesskey;
}

static void session_forget(ev_window *e, struct window *w)
{
	const ev_buf *sk = session_key(e, w->scope, w->key, w->keylen);
	struct sessions *ks = ev_ht_get(e->sessions, sk->data, sk->len);
	for (size_t i = 0; ks && i < ks->n; i++)
		if (ks->w[i] == w) {
			ks->w[i] = ks->w[--ks->n];
			break;
		}
	if (ks && ks->n == 0) {
		ev_ht_del(e->sessions, sk->data, sk->len);
		free(ks->w);
		free(ks);
	}
}

/* Where the bucket of end is, or would be inserted: buckets are by ascending end. */
static size_t bucket_index(const ev_window *e, int64_t end)
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

static struct bucket *bucket_for(ev_window *e, int64_t end)
{
	size_t lo = bucket_index(e, end);
	if (lo < e->nbuckets && e->buckets[lo]->end == end)
		return e->buckets[lo];
	if (ev_array_room(&e->buckets, &e->capbuckets, e->nbuckets, sizeof(*e->buckets), 16) < 0)
		return NULL;
	struct bucket *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->end = end;
	memmove(&e->buckets[lo + 1], &e->buckets[lo], (e->nbuckets - lo) * sizeof(*e->buckets));
	e->buckets[lo] = b;
	e->nbuckets++;
	return b;
}

/* The key of a window in e->windows: its start, its scope and its key text (in
 * e->scratch). */
static const ev_buf *index_key(ev_window *e, int64_t start, uint32_t scope, const char *key,
			       size_t keylen)
{
	unsigned char h[sizeof(start) + sizeof(scope)];
	memcpy(h, &start, sizeof(start));
	memcpy(h + sizeof(start), &scope, sizeof(scope));
	ev_buf_reset(&e->scratch);
	ev_buf_append(&e->scratch, h, sizeof(h));
	ev_buf_append(&e->scratch, key, keylen);
	return &e->scratch;
}

/* Take w out of e->windows (not out of its bucket). */
static void window_unindex(ev_window *e, const struct window *w)
{
	const ev_buf *k = index_key(e, w->start, w->scope, w->key, w->keylen);
	ev_ht_del(e->windows, k->data, k->len);
}

/* The window of the current key and partition that starts at start, or NULL. */
static struct window *window_get(ev_window *e, int64_t start)
{
	const ev_buf *k = index_key(e, start, e->scope, e->key, e->keylen);
	return ev_ht_get(e->windows, k->data, k->len);
}

/* File w under its start and key, and in the bucket of its end. */
static int window_attach(ev_window *e, struct window *w, int64_t wm)
{
	struct bucket *b = bucket_for(e, w->end);
	if (!b)
		return oom(e);
	if (ev_array_room(&b->w, &b->cap, b->n, sizeof(*b->w), 8) < 0)
		return oom(e);
	b->w[b->n++] = w;
	const ev_buf *k = index_key(e, w->start, w->scope, w->key, w->keylen);
	if (ev_ht_put(e->windows, k->data, k->len, w) < 0)
		return oom(e);
	/* A window the watermark passed already is written by its record, not fired again. */
	if (wm != EV_WM_MIN && w->end - 1 <= wm)
		b->fired = 1;
	return 0;
}

/* Take w out of the index and of its bucket (a session about to change bounds or merge). */
static void window_detach(ev_window *e, struct window *w)
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
static void account(ev_window *e, struct window *w)
{
	size_t bytes =
		sizeof(*w) + 2 * w->keylen + 96 + ev_agg_state_bytes(w->agg, e->o.aggs, e->o.naggs);
	e->mem_bytes += bytes - w->bytes;
	w->bytes = bytes;
	w->dirty = 1;
}

/* A new window of the current key and partition, filed; NULL when out of memory. */
static struct window *window_new(ev_window *e, int64_t start, int64_t end, int64_t wm)
{
	struct window *w = window_alloc(e->key, e->keylen);
	if (!w || !(w->agg = ev_agg_state_new(e->o.aggs, e->o.naggs))) {
		free(w);
		oom(e);
		return NULL;
	}
	w->start = start;
	w->end = end;
	w->scope = e->scope;
	if (window_attach(e, w, wm) < 0)
		return NULL; /* w is in the index or a bucket: freed with them */
	account(e, w);
	return owner_check(e, w) < 0 ? NULL : w;
}

/* Queue w's state for the store (ev_state_commit writes it). */
static int window_store(ev_window *e, const struct window *w)
{
	unsigned char v[VAL_HEAD];
	window_key(&e->skey, w->scope, w->end, w->start, w->key, w->keylen);
	ev_state_put_i64(v, (int64_t)w->version);
	ev_buf_reset(&e->sval);
	ev_buf_append(&e->sval, v, sizeof(v));
	if (ev_agg_encode(&e->sval, w->agg, e->o.aggs, e->o.naggs) < 0)
		return oom(e);
	ev_state_put(e->o.st, e->skey.data, e->skey.len, e->sval.data, e->sval.len);
	return 0;
}

/* A window as the store holds it, or NULL (the reason recorded) when the value is corrupt. */
static struct window *window_decode(ev_window *e, const void *k, size_t klen, const void *v,
				    size_t vlen)
{
	ev_window_row r;
	if (decode_entry(k, klen, v, vlen, VAL_HEAD, &r) < 0) {
		fail(e, "state store: a window entry is truncated");
		return NULL;
	}
	struct window *w = window_alloc(r.key, r.keylen);
	if (!w) {
		oom(e);
		return NULL;
	}
	w->end = r.end;
	w->start = r.start;
	w->scope = r.scope;
	w->version = (uint64_t)r.version;
	if (!(w->agg = ev_agg_decode((const char *)v + VAL_HEAD, vlen - VAL_HEAD, e->o.aggs,
				     e->o.naggs))) {
		fail(e, "state store: a window's aggregates cannot be read (written with other "
			"--agg?)");
		free(w);
		return NULL;
	}
	return w;
}

static int commit(ev_window *e)
{
	char err[400];
	if (ev_state_commit(e->o.st, err, sizeof(err)) < 0)
		return fail(e, "state store: %s", err);
	return 0;
}

/* Move the windows of b from memory to the store (queued; the caller commits). */
static int spill_bucket(ev_window *e, struct bucket *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct window *w = b->w[i];
		if (window_store(e, w) < 0)
			return EV_WINDOW_FAILED;
		window_unindex(e, w);
		window_free(e, w);
		b->w[i] = NULL;
	}
	if (b->n)
		b->spilled = 1;
	b->n = 0;
	return 0;
}

/* Past the memory budget, every window in memory goes to the store: the aggregation in
 * memory is a write-back cache in front of RocksDB, so a record pays no RocksDB write, and a
 * window pays one only when memory runs short. Session windows stay in memory (a record
 * must see every live session of its key). */
static int maybe_spill(ev_window *e)
{
	if (e->mem_bytes <= e->o.mem_budget || e->o.gap_ms)
		return 0;
	if (e->o.spilling)
		e->o.spilling(e->o.arg, e->mem_bytes, ev_ht_count(e->windows));
	for (size_t i = 0; i < e->nbuckets; i++)
		if (spill_bucket(e, e->buckets[i]) < 0)
			return EV_WINDOW_FAILED;
	ev_counter_inc(e->m.spills);
	return commit(e);
}

/* The window of the current key at start from the store, back in memory, into *out (NULL
 * when the store has none). */
static int window_load(ev_window *e, int64_t start, int64_t end, int64_t wm, struct window **out)
{
	char err[400];
	size_t lo = bucket_index(e, end);
	*out = NULL;
	if (lo == e->nbuckets || e->buckets[lo]->end != end || !e->buckets[lo]->spilled)
		return 0; /* nothing of this bucket ever left memory */
	window_key(&e->skey, e->scope, end, start, e->key, e->keylen);
	int r = ev_state_get(e->o.st, e->skey.data, e->skey.len, &e->sval, err, sizeof(err));
	if (r < 0)
		return fail(e, "state store: %s", err);
	if (r == 0)
		return 0;
	struct window *w = window_decode(e, e->skey.data, e->skey.len, e->sval.data, e->sval.len);
	if (!w)
		return EV_WINDOW_FAILED;
	if (window_attach(e, w, wm) < 0)
		return EV_WINDOW_FAILED;
	account(e, w);
	*out = w;
	return owner_check(e, w);
}

static int cmp_start(const void *a, const void *b)
{
	const struct window *x = *(struct window *const *)a, *y = *(struct window *const *)b;
	return (x->start > y->start) - (x->start < y->start);
}

/* Room for one more session of ks. */
static int sessions_grow(ev_window *e, struct sessions *ks)
{
	return ev_array_room(&ks->w, &ks->cap, ks->n, sizeof(*ks->w), 4) < 0 ? oom(e) : 0;
}

/* The live sessions of key in scope, created when absent; NULL when out of memory. */
static struct sessions *sessions_of(ev_window *e, uint32_t scope, const char *key, size_t keylen)
{
	const ev_buf *sk = session_key(e, scope, key, keylen);
	struct sessions *ks = ev_ht_get(e->sessions, sk->data, sk->len);
	if (!ks) {
		if (!(ks = calloc(1, sizeof(*ks))) ||
		    ev_ht_put(e->sessions, sk->data, sk->len, ks) < 0) {
			free(ks);
			oom(e);
			return NULL;
		}
	}
	return ks;
}

/* The session of the current key that a record at ts belongs to, into *out: [ts, ts + gap)
 * merged with every live session it overlaps or touches (Flink's rule), the earliest
 * absorbing the others in order of start. NULL when the merged session would already be
 * gone (late). */
static int session_window(ev_window *e, int64_t ts, int64_t wm, struct window **out)
{
	struct sessions *ks = sessions_of(e, e->scope, e->key, e->keylen);
	*out = NULL;
	if (!ks)
		return EV_WINDOW_FAILED;
	int64_t gap = e->o.gap_ms, start = ts, end = ts + gap;
	size_t nhits = 0;
	/* Move the sessions it touches to the front. */
	for (size_t i = 0; i < ks->n; i++) {
		struct window *w = ks->w[i];
		if (w->start <= ts + gap && w->end >= ts) {
			ks->w[i] = ks->w[nhits];
			ks->w[nhits++] = w;
			if (w->start < start)
				start = w->start;
			if (w->end > end)
				end = w->end;
		}
	}
	if (wm != EV_WM_MIN && end - 1 + e->o.lateness_ms <= wm) {
		if (ks->n == 0) {
			const ev_buf *sk = session_key(e, e->scope, e->key, e->keylen);
			ev_ht_del(e->sessions, sk->data, sk->len);
			free(ks->w);
			free(ks);
		}
		return 0;
	}
	if (nhits == 0) {
		if (sessions_grow(e, ks) < 0)
			return EV_WINDOW_FAILED;
		struct window *w = window_new(e, start, end, wm);
		if (!w)
			return EV_WINDOW_FAILED;
		ks->w[ks->n++] = w;
		*out = w;
		return 0;
	}
	qsort(ks->w, nhits, sizeof(*ks->w), cmp_start);
	struct window *dst = ks->w[0];
	for (size_t i = 1; i < nhits; i++) {
		struct window *o = ks->w[i];
		if (ev_agg_merge(dst->agg, o->agg, e->o.aggs, e->o.naggs) < 0)
			return oom(e);
		dst->version += o->version; /* the records folded into the merged session */
		dst->cross |= o->cross;
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
		if (window_attach(e, dst, wm) < 0)
			return EV_WINDOW_FAILED;
	}
	*out = dst;
	return 0;
}

/* Fire a bucket some of whose windows are in the store: the rest join them there, and a
 * scan in key order emits them all without holding them in memory at once. Unless the
 * bucket expires now, each window goes back with its new version. */
static int fire_from_store(ev_window *e, struct bucket *b, int expires)
{
	unsigned char from[WKEY_START], to[WKEY_START];
	const void *k, *v;
	size_t klen, vlen;
	uint64_t n = 0;
	int rc = 0, r = 0;
	if (spill_bucket(e, b) < 0 || commit(e) < 0)
		return EV_WINDOW_FAILED;
	/* Partition by partition, as the store orders them. */
	for (size_t i = 0; i < nscope_ids(e) && rc == 0; i++) {
		bucket_range(from, to, scope_id(e, i), b->end);
		ev_state_iter *it = ev_state_iter_new(e->o.st, from, sizeof(from), to, sizeof(to));
		if (!it)
			return oom(e);
		while (rc == 0 && (r = ev_state_iter_next(it, &k, &klen, &v, &vlen)) == 1) {
			struct window *w = window_decode(e, k, klen, v, vlen);
			if (!w) {
				rc = EV_WINDOW_FAILED;
				break;
			}
			rc = emit(e, w);
			if (!expires && rc == 0)
				rc = window_store(e, w);
			ev_agg_state_free(w->agg, e->o.aggs, e->o.naggs);
			free(w);
			n++;
		}
		ev_state_iter_free(it);
		if (rc == 0 && r < 0)
			rc = fail(e, "state store: cannot scan the windows of a bucket");
	}
	if (rc == 0)
		rc = commit(e);
	ev_counter_add(e->m.fired, n);
	return rc;
}

/* Set the watermark gauge, and the state gauges at most once a second. */
static void gauges(ev_window *e)
{
	if (e->wm_advanced != e->wm_seen) {
		ev_gauge_set(e->m.wm, (double)e->wm_advanced / 1000);
		e->wm_seen = e->wm_advanced;
	}
	if (!e->m.open || e->now - e->stats_at < 1000)
		return;
	e->stats_at = e->now;
	if (e->wm_seen != EV_WM_MIN)
		ev_gauge_set(e->m.wm_lag, (double)(e->now - e->wm_seen) / 1000);
	uint64_t keys = ev_state_keys(e->o.st);
	size_t windows = ev_ht_count(e->windows);
	ev_gauge_set(e->m.keys_mem, (double)windows);
	ev_gauge_set(e->m.keys_store, (double)keys);
	ev_gauge_set(e->m.bytes_mem, (double)e->mem_bytes);
	ev_gauge_set(e->m.bytes_store, (double)ev_state_bytes(e->o.st));
	ev_gauge_set(e->m.open, (double)(windows + keys));
}

static int advance(ev_window *e, int64_t wm)
{
	size_t keep = 0;
	int rc = 0;
	if (wm != EV_WM_MIN && wm != EV_WM_END)
		e->wm_advanced = wm;
	for (size_t i = 0; i < e->nbuckets; i++) {
		struct bucket *b = e->buckets[i];
		int expires = wm == EV_WM_END || b->end - 1 + e->o.lateness_ms <= wm;
		if (rc == 0 && !b->fired && b->end - 1 <= wm) {
			if (b->spilled) {
				rc = fire_from_store(e, b, expires);
			} else {
				qsort(b->w, b->n, sizeof(*b->w), cmp_window);
				for (size_t j = 0; j < b->n && rc == 0; j++)
					rc = emit(e, b->w[j]);
				ev_counter_add(e->m.fired, b->n);
			}
			b->fired = 1;
		}
		if (rc != EV_WINDOW_FAILED && b->fired && expires) {
			for (size_t j = 0; j < b->n; j++) {
				struct window *w = b->w[j];
				window_unindex(e, w);
				if (e->o.gap_ms)
					session_forget(e, w);
				window_free(e, w);
			}
			if (b->spilled) {
				unsigned char from[WKEY_START], to[WKEY_START];
				for (size_t s = 0; s < nscope_ids(e); s++) {
					bucket_range(from, to, scope_id(e, s), b->end);
					ev_state_delete_range(e->o.st, from, sizeof(from), to,
							      sizeof(to));
				}
				if (commit(e) < 0)
					rc = EV_WINDOW_FAILED;
			}
			free(b->w);
			free(b);
			continue;
		}
		e->buckets[keep++] = b;
	}
	e->nbuckets = keep;
	gauges(e);
	return rc;
}

int ev_window_advance(ev_window *e, int64_t wm, char *err, size_t errlen)
{
	e->now = ev_wall_ms();
	return ret(e, advance(e, wm), err, errlen);
}

static int add(ev_window *e, const ev_record *rec, int64_t now)
{
	const ev_window_opts *o = &e->o;
	int64_t ts = rec->ts;
	const ev_agg_value *values = rec->values;
	int64_t wm = ev_wm_current(o->wm, now);
	int r = ev_wm_observe(o->wm, rec->partition, ts, now);
	if (r < 0)
		return oom(e);
	if (r == EV_WM_TOO_FAR_AHEAD)
		return o->dead_letter(o->arg, "future",
				      "the event time is too far ahead of its partition")
			       ? EV_WINDOW_OUTPUT
			       : 0;
	int accepted = 0, cross = 0, rc = 0;
	e->now = now;
	if (scope_of_record(e, rec) < 0)
		return EV_WINDOW_FAILED;
	if (o->gap_ms) {
		struct window *w;
		if (session_window(e, ts, wm, &w) < 0)
			return EV_WINDOW_FAILED;
		if (w) {
			accepted = 1;
			if (ev_agg_add(w->agg, o->aggs, o->naggs, values, ts, e->seq++) < 0)
				return oom(e);
			w->version++;
			cross = w->cross;
			account(e, w);
			if (wm != EV_WM_MIN && w->end - 1 <= wm) {
				ev_counter_inc(e->m.updated);
				rc = emit(e, w);
			}
		}
	}
	int64_t every = o->every_ms ? o->every_ms : o->size_ms ? o->size_ms : 1;
	int64_t last = ts >= 0 ? ts / every * every : (ts - every + 1) / every * every;
	int64_t first = last - (o->size_ms / every - 1) * every;
	/* In ascending order, as they would fire. */
	for (int64_t start = first; !o->gap_ms && start <= last && rc == 0; start += every) {
		int64_t end = start + o->size_ms;
		if (wm != EV_WM_MIN && end - 1 + o->lateness_ms <= wm)
			continue; /* this window's state is gone */
		accepted = 1;
		struct window *w = window_get(e, start);
		if (!w && window_load(e, start, end, wm, &w) < 0)
			return EV_WINDOW_FAILED;
		if (!w && !(w = window_new(e, start, end, wm)))
			return EV_WINDOW_FAILED;
		if (ev_agg_add(w->agg, o->aggs, o->naggs, values, ts, e->seq++) < 0)
			return oom(e);
		w->version++;
		cross |= w->cross;
		account(e, w);
		if (wm != EV_WM_MIN && end - 1 <= wm) {
			ev_counter_inc(e->m.updated);
			rc = emit(e, w);
		}
	}
	if (cross)
		ev_counter_inc(e->m.cross);
	if (!accepted && rc == 0) {
		ev_counter_inc(e->m.late);
		if (o->dead_letter(o->arg, "late",
				   "the record's windows are past the allowed lateness"))
			rc = EV_WINDOW_OUTPUT;
	}
	if (rc == 0)
		rc = advance(e, ev_wm_current(o->wm, now));
	if (rc != EV_WINDOW_FAILED && maybe_spill(e) < 0)
		rc = EV_WINDOW_FAILED;
	return rc;
}

int ev_window_add(ev_window *e, const ev_record *rec, int64_t now_ms, char *err, size_t errlen)
{
	e->key = rec->key;
	e->keylen = rec->keylen;
	return ret(e, add(e, rec, now_ms), err, errlen);
}

/* Queue what the windows need besides themselves: the options fingerprint, the watermark and
 * the arrival counter. */
static int state_meta(ev_window *e)
{
	ev_buf v = EV_BUF_INIT;
	int rc = ev_window_fingerprint(&v, &e->o);
	ev_state_put(e->o.st, META_CONFIG, strlen(META_CONFIG), v.data, v.len);
	ev_buf_reset(&v);
	rc |= ev_wm_encode(e->o.wm, &v);
	ev_state_put(e->o.st, META_WM, strlen(META_WM), v.data, v.len);
	ev_state_put(e->o.st, META_SEQ, strlen(META_SEQ), &e->seq, sizeof(e->seq));
	for (size_t i = 0; i < e->nscopes; i++) {
		const struct scope *sc = e->scopes[i];
		unsigned char k[6], h[SCOPE_VAL_HEAD];
		scope_meta_key(k, sc->id);
		ev_state_put_i64(h, (int64_t)sc->part);
		ev_state_put_i64(h + 8, sc->partition);
		ev_buf_reset(&v);
		rc |= ev_buf_append(&v, h, sizeof(h));
		rc |= ev_buf_puts(&v, sc->topic);
		ev_state_put(e->o.st, k, sizeof(k), v.data, v.len);
	}
	ev_buf_free(&v);
	return rc ? oom(e) : 0;
}

int ev_window_checkpoint(ev_window *e, const char *dir, char *err, size_t errlen)
{
	if (e->o.gap_ms) /* sessions change bounds (and so keys) as they grow: all afresh */
		delete_windows(e->o.st);
	for (size_t i = 0; i < e->nbuckets; i++) {
		struct bucket *b = e->buckets[i];
		for (size_t j = 0; j < b->n; j++)
			if (b->w[j]->dirty || e->o.gap_ms) {
				if (window_store(e, b->w[j]) < 0)
					return ret(e, EV_WINDOW_FAILED, err, errlen);
				b->w[j]->dirty = 0;
			}
		if (b->n && !e->o.gap_ms)
			b->spilled = 1; /* the store has them too now */
	}
	if (state_meta(e) < 0)
		return ret(e, EV_WINDOW_FAILED, err, errlen);
	ev_state_remove_dir(dir);
	return ev_state_checkpoint(e->o.st, dir, err, errlen) < 0 ? EV_WINDOW_FAILED : 0;
}

int ev_window_save(ev_window *e, char *err, size_t errlen)
{
	int rc = 0;
	for (size_t i = 0; i < e->nbuckets && rc == 0; i++) {
		struct bucket *b = e->buckets[i];
		if (e->o.gap_ms)
			for (size_t j = 0; j < b->n && rc == 0; j++)
				rc = window_store(e, b->w[j]);
		else
			rc = spill_bucket(e, b);
	}
	if (rc == 0)
		rc = state_meta(e);
	if (rc == 0) {
		ev_state_delete(e->o.st, META_OPEN, strlen(META_OPEN));
		rc = commit(e);
	}
	return ret(e, rc, err, errlen);
}

int ev_window_clear(ev_window *e, char *err, size_t errlen)
{
	ev_state_delete_range(e->o.st, "", 0, "\xff", 1);
	return ret(e, commit(e), err, errlen);
}

/* A stored fingerprint is of these options, in the current format. */
static int same_options(ev_window *e, const void *stored, size_t len)
{
	ev_buf want = EV_BUF_INIT;
	int same = fingerprint(&want, &e->o, FORMAT) == 0 && len == want.len &&
		   memcmp(stored, want.data, want.len) == 0;
	ev_buf_free(&want);
	return same;
}

/* The partitions the store has state of ("mp" meta keys), back in the table. */
static int restore_scopes(ev_window *e)
{
	const void *k, *v;
	size_t klen, vlen;
	int r, rc = 0;
	ev_state_iter *it = ev_state_iter_new(e->o.st, "mp", 2, "mq", 2);
	if (!it)
		return oom(e);
	while (rc == 0 && (r = ev_state_iter_next(it, &k, &klen, &v, &vlen)) == 1) {
		const unsigned char *kb = k, *vb = v;
		if (klen != 6 || vlen < SCOPE_VAL_HEAD) {
			rc = fail(e, "state store: a partition's entry is truncated");
			break;
		}
		uint32_t id = (uint32_t)(kb[2] << 24 | kb[3] << 16 | kb[4] << 8 | kb[5]);
		if (!scope_add(e, (uint64_t)ev_state_get_i64(vb), (const char *)vb + SCOPE_VAL_HEAD,
			       vlen - SCOPE_VAL_HEAD, ev_state_get_i64(vb + 8), id))
			rc = oom(e);
	}
	ev_state_iter_free(it);
	if (rc == 0 && r < 0)
		rc = fail(e, "state store: cannot read the partitions");
	return rc;
}

/* Read the stored windows back: buckets rebuilt, the windows left in the store; session
 * windows into memory. */
static int restore_windows(ev_window *e, int64_t wm, size_t *count)
{
	const void *k, *val;
	size_t klen, vlen, windows = 0;
	int r, rc = 0;
	unsigned char from[WKEY_START], to[WKEY_START];
	ev_state_iter *it = ev_state_iter_new(e->o.st, "w", 1, "x", 1);
	if (!it)
		return oom(e);
	while (rc == 0 && (r = ev_state_iter_next(it, &k, &klen, &val, &vlen)) == 1) {
		struct window *w = window_decode(e, k, klen, val, vlen);
		if (!w) {
			rc = EV_WINDOW_FAILED;
			break;
		}
		windows++;
		if (e->o.gap_ms) {
			/* Sessions live in memory. */
			struct sessions *ks = sessions_of(e, w->scope, w->key, w->keylen);
			if (!ks || sessions_grow(e, ks) < 0) {
				window_free(e, w);
				rc = EV_WINDOW_FAILED;
				break;
			}
			ks->w[ks->n++] = w;
			if (window_attach(e, w, wm) < 0 || owner_check(e, w) < 0)
				rc = EV_WINDOW_FAILED;
			else
				account(e, w);
			continue;
		}
		/* One bucket per end, its windows left in the store. */
		struct bucket *b = bucket_for(e, w->end);
		int64_t end = w->end;
		uint32_t scope = w->scope;
		ev_agg_state_free(w->agg, e->o.aggs, e->o.naggs);
		free(w);
		if (!b) {
			rc = oom(e);
			break;
		}
		b->spilled = 1;
		b->fired = wm != EV_WM_MIN && end - 1 <= wm;
		/* Skip to the next end of this partition. */
		ev_state_iter_free(it);
		bucket_range(from, to, scope, end + 1);
		if (!(it = ev_state_iter_new(e->o.st, from, sizeof(from), "x", 1)))
			return oom(e);
	}
	ev_state_iter_free(it);
	if (rc == 0 && r < 0)
		rc = fail(e, "state store: cannot read the windows");
	if (rc == 0 && e->o.gap_ms)
		delete_windows(e->o.st);
	*count = e->o.gap_ms ? windows : e->nbuckets;
	return rc;
}

static int restore(ev_window *e, int64_t now, size_t *count)
{
	char err[400];
	ev_buf v = EV_BUF_INIT;
	ev_state *st = e->o.st;
	const char *dir = ev_state_dir(st);
	int rc = EV_WINDOW_FAILED, r;
	*count = 0;
	if ((r = meta_get(st, META_OPEN, &v, err, sizeof(err))) != 0) {
		if (r > 0)
			fail(e,
			     "the state in %s was not saved: the run that used it did not stop "
			     "cleanly (killed?); remove the directory to start afresh",
			     dir);
		else
			fail(e, "state store: %s", err);
		goto out;
	}
	if ((r = meta_get(st, META_CONFIG, &v, err, sizeof(err))) <= 0) {
		rc = r < 0 ? fail(e, "state store: %s", err) : 0; /* a new store */
		goto out;
	}
	if ((r = fingerprint_version(v.data, v.len)) > FORMAT) {
		fail(e, "the state in %s is of format %d, newer than this evwindow reads (%d)", dir,
		     r, FORMAT);
		goto out;
	}
	if (r >= 1 && r < FORMAT) {
		/* Its windows of every partition are one, and its versions count rows written:
		 * neither can be taken for what format 3 means. */
		fail(e,
		     "the state in %s is of format %d, written before state was kept per Kafka "
		     "partition and row versions counted the records folded: finish it with the "
		     "evpipe that wrote it, or remove the directory to start afresh",
		     dir, r);
		goto out;
	}
	if (!same_options(e, v.data, v.len)) {
		fail(e,
		     "the state in %s belongs to other windows or aggregates (%.*s); use "
		     "another --state-dir",
		     dir, (int)v.len, v.data);
		goto out;
	}
	if (meta_get(st, META_WM, &v, err, sizeof(err)) != 1 ||
	    ev_wm_decode(e->o.wm, v.data, v.len, now) < 0 ||
	    meta_get(st, META_SEQ, &v, err, sizeof(err)) != 1 || v.len != sizeof(e->seq)) {
		fail(e, "the state in %s is incomplete", dir);
		goto out;
	}
	memcpy(&e->seq, v.data, sizeof(e->seq));
	rc = restore_scopes(e);
	if (rc == 0)
		rc = restore_windows(e, ev_wm_current(e->o.wm, now), count);
	if (rc == 0)
		rc = 1;
out:
	ev_buf_free(&v);
	if (rc >= 0) {
		/* Marked open until a clean stop: a crash leaves the mark behind. */
		ev_state_put(st, META_OPEN, strlen(META_OPEN), "1", 1);
		if (ev_state_commit_sync(st, err, sizeof(err)) < 0)
			rc = fail(e, "state store: %s", err);
	}
	return rc;
}

int ev_window_restore(ev_window *e, int64_t now_ms, size_t *count, char *err, size_t errlen)
{
	return ret(e, restore(e, now_ms, count), err, errlen);
}

/* A partition's state as bytes (ev_window_partition_save): "EVWP", a format byte, then
 * the options fingerprint, the partition (key, number, topic), its part of the watermark,
 * the arrival counter and the number of windows; then each window: its key text, start, end,
 * version, whether it fired, and its aggregates. Integers big endian (order-preserving for
 * the signed ones), texts and aggregates after a 4-byte length. */
static const char PART_MAGIC[4] = {'E', 'V', 'W', 'P'};
enum { PART_FORMAT = 1 };

static int put_u32(ev_buf *b, uint32_t v)
{
	unsigned char h[4];
	ev_state_put_u32(h, v);
	return ev_buf_append(b, h, sizeof(h));
}

static int put_i64(ev_buf *b, int64_t v)
{
	unsigned char h[8];
	ev_state_put_i64(h, v);
	return ev_buf_append(b, h, sizeof(h));
}

static int put_text(ev_buf *b, const void *p, size_t len)
{
	if (len > UINT32_MAX)
		return -1;
	int rc = put_u32(b, (uint32_t)len);
	rc |= ev_buf_append(b, p, len);
	return rc;
}

/* Append w (fired or not) to a partition's bytes. */
static int part_window(ev_window *e, ev_buf *out, const struct window *w, int fired)
{
	int rc = put_text(out, w->key, w->keylen);
	rc |= put_i64(out, w->start);
	rc |= put_i64(out, w->end);
	rc |= put_i64(out, (int64_t)w->version);
	rc |= ev_buf_putc(out, fired ? 1 : 0);
	ev_buf_reset(&e->sval);
	rc |= ev_agg_encode(&e->sval, w->agg, e->o.aggs, e->o.naggs);
	rc |= put_text(out, e->sval.data, e->sval.len);
	return rc ? oom(e) : 0;
}

static int bucket_fired(const ev_window *e, int64_t end)
{
	size_t i = bucket_index(e, end);
	return i < e->nbuckets && e->buckets[i]->end == end && e->buckets[i]->fired;
}

/* The windows of scope in the store that are not in memory (where they are newer). */
static int part_stored(ev_window *e, uint32_t scope, ev_buf *out, uint64_t *n)
{
	unsigned char from[WKEY_END], to[WKEY_END];
	const void *k, *v;
	size_t klen, vlen;
	int r, rc = 0;
	scope_range(from, to, scope);
	ev_state_iter *it = ev_state_iter_new(e->o.st, from, sizeof(from), to, sizeof(to));
	if (!it)
		return oom(e);
	while (rc == 0 && (r = ev_state_iter_next(it, &k, &klen, &v, &vlen)) == 1) {
		struct window *w = window_decode(e, k, klen, v, vlen);
		if (!w) {
			rc = EV_WINDOW_FAILED;
			break;
		}
		const ev_buf *ik = index_key(e, w->start, w->scope, w->key, w->keylen);
		if (!ev_ht_get(e->windows, ik->data, ik->len)) {
			rc = part_window(e, out, w, bucket_fired(e, w->end));
			++*n;
		}
		ev_agg_state_free(w->agg, e->o.aggs, e->o.naggs);
		free(w);
	}
	ev_state_iter_free(it);
	if (rc == 0 && r < 0)
		rc = fail(e, "state store: cannot read a partition's windows");
	return rc;
}

static int partition_save(ev_window *e, uint64_t part, ev_buf *out, size_t *windows)
{
	ev_buf fp = EV_BUF_INIT;
	const struct scope *sc = part ? scope_find(e, part) : NULL;
	uint32_t scope = sc ? sc->id : 0;
	int64_t max_ts = 0;
	int has_wm = ev_wm_partition_get(e->o.wm, part, &max_ts);
	uint64_t n = 0;
	/* The fingerprint first: put_text reads fp. */
	int rc = ev_window_fingerprint(&fp, &e->o);
	rc |= ev_buf_append(out, PART_MAGIC, 4);
	rc |= ev_buf_putc(out, PART_FORMAT);
	rc |= put_text(out, fp.data, fp.len);
	rc |= put_i64(out, (int64_t)part);
	rc |= put_i64(out, sc ? sc->partition : -1);
	rc |= sc ? put_text(out, sc->topic, strlen(sc->topic)) : put_u32(out, 0);
	rc |= ev_buf_putc(out, has_wm);
	rc |= put_i64(out, max_ts);
	rc |= put_i64(out, (int64_t)e->seq);
	size_t count_at = out->len;
	rc |= put_i64(out, 0);
	ev_buf_free(&fp);
	if (rc)
		return oom(e);
	if (part && !sc) {
		*windows = 0;
		return 0; /* nothing of it here */
	}
	for (size_t i = 0; i < e->nbuckets && rc == 0; i++) {
		const struct bucket *b = e->buckets[i];
		for (size_t j = 0; j < b->n && rc == 0; j++)
			if (b->w[j]->scope == scope) {
				rc = part_window(e, out, b->w[j], b->fired);
				n++;
			}
	}
	if (rc == 0 && !e->o.gap_ms)
		rc = part_stored(e, scope, out, &n);
	if (rc == 0) {
		ev_state_put_i64((unsigned char *)out->data + count_at, (int64_t)n);
		*windows = (size_t)n;
	}
	return rc;
}

int ev_window_partition_save(ev_window *e, uint64_t partition, ev_buf *out, size_t *windows,
			     char *err, size_t errlen)
{
	return ret(e, partition_save(e, partition, out, windows), err, errlen);
}

/* Keep the owners of keys but those of scope. */
static int owners_without(ev_window *e, uint32_t scope)
{
	ev_ht *keep = ev_ht_new();
	size_t pos = 0, len;
	const void *key;
	void *val;
	if (!keep)
		return oom(e);
	while (ev_ht_next(e->owners, &pos, &key, &len, &val))
		if ((uint32_t)(((uintptr_t)val >> 1) - 1) != scope &&
		    ev_ht_put(keep, key, len, val) < 0) {
			ev_ht_free(keep);
			return oom(e);
		}
	ev_ht_free(e->owners);
	e->owners = keep;
	return 0;
}

static int partition_drop(ev_window *e, uint64_t part)
{
	ev_wm_partition_drop(e->o.wm, part);
	struct scope *sc = part ? scope_find(e, part) : NULL;
	if (part && !sc)
		return 0;
	uint32_t scope = sc ? sc->id : 0;
	for (size_t i = 0; i < e->nbuckets; i++) {
		struct bucket *b = e->buckets[i];
		size_t keep = 0;
		for (size_t j = 0; j < b->n; j++) {
			struct window *w = b->w[j];
			if (w->scope != scope) {
				b->w[keep++] = w;
				continue;
			}
			window_unindex(e, w);
			if (e->o.gap_ms)
				session_forget(e, w);
			window_free(e, w);
		}
		b->n = keep;
	}
	unsigned char from[WKEY_END], to[WKEY_END], k[6];
	scope_range(from, to, scope);
	ev_state_delete_range(e->o.st, from, sizeof(from), to, sizeof(to));
	if (sc) {
		scope_meta_key(k, scope);
		ev_state_delete(e->o.st, k, sizeof(k));
		ev_ht_del(e->scope_of, &part, sizeof(part));
		size_t i = 0;
		while (e->scopes[i] != sc)
			i++;
		memmove(&e->scopes[i], &e->scopes[i + 1],
			(e->nscopes - i - 1) * sizeof(*e->scopes));
		e->nscopes--;
		e->last_scope = NULL;
		free(sc->topic);
		free(sc);
		if (owners_without(e, scope) < 0)
			return EV_WINDOW_FAILED;
	}
	return commit(e);
}

int ev_window_partition_drop(ev_window *e, uint64_t partition, char *err, size_t errlen)
{
	e->now = ev_wall_ms();
	return ret(e, partition_drop(e, partition), err, errlen);
}

/* A reader of a partition's bytes: each get fails (returns -1) past the end. */
struct part_in {
	const unsigned char *p, *end;
};

static int get_u32(struct part_in *in, uint32_t *v)
{
	if (in->end - in->p < 4)
		return -1;
	*v = (uint32_t)in->p[0] << 24 | (uint32_t)in->p[1] << 16 | (uint32_t)in->p[2] << 8 |
	     in->p[3];
	in->p += 4;
	return 0;
}

static int get_i64(struct part_in *in, int64_t *v)
{
	if (in->end - in->p < 8)
		return -1;
	*v = ev_state_get_i64(in->p);
	in->p += 8;
	return 0;
}

static int get_text(struct part_in *in, const char **p, size_t *len)
{
	uint32_t l;
	if (get_u32(in, &l) < 0 || (size_t)(in->end - in->p) < l)
		return -1;
	*p = (const char *)in->p;
	*len = l;
	in->p += l;
	return 0;
}

static int get_byte(struct part_in *in, int *v)
{
	if (in->p == in->end)
		return -1;
	*v = *in->p++;
	return 0;
}

/* One window of a partition's bytes, into scope: filed (sessions: with their key's), and
 * fired now when it has not and the watermark here passed it. */
static int load_window(ev_window *e, struct part_in *in, uint32_t scope, int64_t wm)
{
	const char *key, *agg;
	size_t keylen, agglen;
	int64_t start, end, version;
	int fired;
	if (get_text(in, &key, &keylen) < 0 || get_i64(in, &start) < 0 || get_i64(in, &end) < 0 ||
	    get_i64(in, &version) < 0 || get_byte(in, &fired) < 0 ||
	    get_text(in, &agg, &agglen) < 0 || version < 0)
		return fail(e, "a partition's state is truncated");
	struct window *w = window_alloc(key, keylen);
	if (!w)
		return oom(e);
	w->start = start;
	w->end = end;
	w->scope = scope;
	w->version = (uint64_t)version;
	if (!(w->agg = ev_agg_decode(agg, agglen, e->o.aggs, e->o.naggs))) {
		free(w);
		return fail(e, "a partition's state: a window's aggregates cannot be read");
	}
	if (e->o.gap_ms) {
		struct sessions *ks = sessions_of(e, scope, w->key, w->keylen);
		if (!ks || sessions_grow(e, ks) < 0) {
			window_free(e, w);
			return EV_WINDOW_FAILED;
		}
		ks->w[ks->n++] = w;
	}
	if (window_attach(e, w, wm) < 0)
		return EV_WINDOW_FAILED;
	account(e, w);
	if (owner_check(e, w) < 0)
		return EV_WINDOW_FAILED;
	return !fired && wm != EV_WM_MIN && end - 1 <= wm ? emit(e, w) : 0;
}

static int partition_load(ev_window *e, const void *data, size_t len, int64_t now, size_t *windows)
{
	struct part_in in = {data, (const unsigned char *)data + len};
	const char *fp, *topic;
	size_t fplen, topic_len;
	int64_t part, partition, max_ts, seq, n;
	int format = -1, has_wm = 0, rc = 0;
	*windows = 0;
	if (len < 5 || memcmp(data, PART_MAGIC, 4) != 0)
		return fail(e, "not the state of a partition");
	in.p += 4;
	if (get_byte(&in, &format) < 0 || format != PART_FORMAT)
		return fail(e, "a partition's state of format %d: this evpipe reads %d", format,
			    PART_FORMAT);
	if (get_text(&in, &fp, &fplen) < 0 || get_i64(&in, &part) < 0 ||
	    get_i64(&in, &partition) < 0 || get_text(&in, &topic, &topic_len) < 0 ||
	    get_byte(&in, &has_wm) < 0 || get_i64(&in, &max_ts) < 0 || get_i64(&in, &seq) < 0 ||
	    get_i64(&in, &n) < 0 || n < 0)
		return fail(e, "a partition's state is truncated");
	if (!same_options(e, fp, fplen))
		return fail(e, "a partition's state belongs to other windows or aggregates (%.*s)",
			    (int)fplen, fp);
	if (!part)
		return fail(e, "the state of records without provenance is not a partition's");
	if (scope_find(e, (uint64_t)part))
		return fail(e, "partition %.*s/%" PRId64 " has state here already", (int)topic_len,
			    topic, partition);
	struct scope *sc = scope_add(e, (uint64_t)part, topic, topic_len, partition, 0);
	if (!sc)
		return oom(e);
	uint32_t scope = sc->id;
	if (has_wm && ev_wm_partition_set(e->o.wm, (uint64_t)part, max_ts, now) < 0)
		return oom(e);
	if ((uint64_t)seq > e->seq)
		e->seq = (uint64_t)seq; /* the partition's records keep their order after its own */
	e->now = now;
	int64_t wm = ev_wm_current(e->o.wm, now);
	for (int64_t i = 0; i < n && rc == 0; i++)
		rc = load_window(e, &in, scope, wm);
	if (rc == 0 && in.p != in.end)
		rc = fail(e, "a partition's state has bytes after its windows");
	if (rc == 0) {
		*windows = (size_t)n;
		rc = maybe_spill(e);
	}
	return rc;
}

int ev_window_partition_load(ev_window *e, const void *data, size_t len, int64_t now_ms,
			     size_t *windows, char *err, size_t errlen)
{
	return ret(e, partition_load(e, data, len, now_ms, windows), err, errlen);
}

int ev_window_partition_held(ev_window *e, uint64_t partition)
{
	return partition && scope_find(e, partition) != NULL;
}

size_t ev_window_partitions(const ev_window *e)
{
	return e->nscopes;
}

size_t ev_window_in_memory(const ev_window *e)
{
	return ev_ht_count(e->windows);
}

int64_t ev_window_watermark(const ev_window *e)
{
	return e->wm_advanced;
}

int64_t ev_window_final_at(const ev_window *e)
{
	if (!e->nbuckets)
		return EV_WM_MIN;
	if (e->o.gap_ms)
		return EV_WM_END;
	return e->buckets[e->nbuckets - 1]->end - 1 + e->o.lateness_ms;
}

void ev_window_series_register(ev_window_series *s, ev_metrics *m)
{
	static const char late[] = "Records after their window fired, by outcome",
			  keys[] = "Entries of state, by tier",
			  bytes[] = "Bytes of state, by tier (memory: estimated)";
	s->fired = ev_metrics_counter(m, "evpipe_windows_fired_total",
				      "Windows fired by the watermark", NULL);
	s->updated =
		ev_metrics_counter(m, "evpipe_late_records_total", late, "outcome=\"updated\"");
	s->late = ev_metrics_counter(m, "evpipe_late_records_total", late,
				     "outcome=\"dead_lettered\"");
	s->wm = ev_metrics_gauge(m, "evpipe_watermark_seconds", "Current event-time watermark",
				 NULL);
	s->wm_lag = ev_metrics_gauge(m, "evpipe_watermark_lag_seconds",
				     "Processing time minus the watermark", NULL);
	s->open = ev_metrics_gauge(m, "evpipe_windows_open",
				   "Windows and keys held in state (the store's part estimated)",
				   NULL);
	s->keys_mem = ev_metrics_gauge(m, "evpipe_state_keys", keys, "tier=\"memory\"");
	s->keys_store = ev_metrics_gauge(m, "evpipe_state_keys", keys, "tier=\"rocksdb\"");
	s->bytes_mem = ev_metrics_gauge(m, "evpipe_state_bytes", bytes, "tier=\"memory\"");
	s->bytes_store = ev_metrics_gauge(m, "evpipe_state_bytes", bytes, "tier=\"rocksdb\"");
	s->cross = ev_metrics_counter(
		m, "evpipe_keys_cross_partition_total",
		"Records whose key was seen first in another Kafka partition (windowed apart)",
		NULL);
	s->spills =
		ev_metrics_counter(m, "evpipe_state_spills_total",
				   "Times the windows in memory went to RocksDB for want of memory",
				   NULL);
}

ev_window *ev_window_new(const ev_window_opts *o)
{
	ev_window *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->o = *o;
	if (o->series)
		e->m = *o->series;
	e->wm_advanced = e->wm_seen = EV_WM_MIN;
	e->windows = ev_ht_new();
	e->sessions = ev_ht_new();
	e->scope_of = ev_ht_new();
	e->owners = ev_ht_new();
	e->next_scope = 1;
	if (!e->windows || !e->sessions || !e->scope_of || !e->owners) {
		ev_window_free(e);
		return NULL;
	}
	return e;
}

void ev_window_free(ev_window *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->nbuckets; i++) {
		for (size_t j = 0; j < e->buckets[i]->n; j++)
			if (e->buckets[i]->w[j]) /* NULL: spilled before a failure */
				window_free(e, e->buckets[i]->w[j]);
		free(e->buckets[i]->w);
		free(e->buckets[i]);
	}
	size_t pos = 0, len;
	const void *key;
	void *val;
	while (e->sessions && ev_ht_next(e->sessions, &pos, &key, &len, &val)) {
		struct sessions *ks = val;
		free(ks->w);
		free(ks);
	}
	ev_ht_free(e->windows);
	ev_ht_free(e->sessions);
	ev_ht_free(e->scope_of);
	ev_ht_free(e->owners);
	for (size_t i = 0; i < e->nscopes; i++) {
		free(e->scopes[i]->topic);
		free(e->scopes[i]);
	}
	free(e->scopes);
	free(e->buckets);
	ev_buf_free(&e->row);
	ev_buf_free(&e->scratch);
	ev_buf_free(&e->skey);
	ev_buf_free(&e->sval);
	ev_buf_free(&e->sesskey);
	free(e);
}
