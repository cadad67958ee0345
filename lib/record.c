/* SPDX-License-Identifier: Apache-2.0 */
/* record.c: one walk over a record (event time, key, values, partition) for both parsers. */
#include "record.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastjson.h"
#include "json.h"
#include "timefmt.h"
#include "window.h"

struct ev_record_reader {
	ev_record_opts o;
	ev_fj *fj;
	ev_buf key;
	ev_buf topic; /* of the provenance: the record's text may be gone after the read */
	ev_agg_value *values;
	ev_buf *vbufs; /* the values' texts */
	size_t *lens;  /* of the field names: ts, meta, keys, aggregates' */
	ev_buf *khead; /* each key's ["," ]"NAME": in the window key, written once */
	char *again;   /* aggregate i reads the field of aggregate i - 1 (sum, min, max of it) */
};

/* A parsed record seen through one parser: values are opaque handles, NULL when absent. */
struct doc {
	const ev_fj_node *nodes; /* the fast parser's, or NULL for jansson */
	const void *root;
};

/* The accessors of one parser. Those that read a value return 1 when this parser leaves the
 * value to the reference (the fast parser and a nested key or value), 0, or -1 when out of
 * memory. */
struct doc_ops {
	const void *(*member)(const struct doc *d, const void *obj, const char *name, size_t len);
	int (*integer)(const void *v, int64_t *out);               /* 1 when v is an integer */
	int (*string)(const void *v, const char **s, size_t *len); /* 1 when a string */
	int (*key_text)(ev_buf *out, const void *v);
	int (*value)(const struct doc *d, ev_agg_value *out, const ev_agg_spec *a, const void *v,
		     ev_buf *buf);
};

static inline __attribute__((always_inline)) const void *
fj_member(const struct doc *d, const void *obj, const char *name, size_t len)
{
	const ev_fj_node *o = obj;
	if (!o || o->type != EV_FJ_OBJECT)
		return NULL;
	long i = ev_fj_member(d->nodes, (size_t)(o - d->nodes), name, len);
	return i < 0 ? NULL : &d->nodes[i];
}

static inline __attribute__((always_inline)) int fj_integer(const void *v, int64_t *out)
{
	const ev_fj_node *n = v;
	if (n->type != EV_FJ_INT)
		return 0;
	*out = n->num.i;
	return 1;
}

static inline __attribute__((always_inline)) int fj_string(const void *v, const char **s,
							   size_t *len)
{
	const ev_fj_node *n = v;
	if (!n || n->type != EV_FJ_STRING)
		return 0;
	*s = n->str;
	*len = n->len;
	return 1;
}

static inline __attribute__((always_inline)) int fj_key_text(ev_buf *out, const void *v)
{
	return ev_json_scalar_fj(out, v);
}

static inline __attribute__((always_inline)) int
fj_value(const struct doc *d, ev_agg_value *out, const ev_agg_spec *a, const void *v, ev_buf *buf)
{
	long i = v ? (long)((const ev_fj_node *)v - d->nodes) : -1;
	return ev_agg_value_fj(out, a, d->nodes, i, buf);
}

static const struct doc_ops fj_ops = {fj_member, fj_integer, fj_string, fj_key_text, fj_value};

static const void *js_member(const struct doc *d, const void *obj, const char *name, size_t len)
{
	(void)d;
	(void)len;
	return json_object_get(obj, name); /* NULL for a NULL or a non-object */
}

static int js_integer(const void *v, int64_t *out)
{
	if (!json_is_integer((const json_t *)v))
		return 0;
	*out = json_integer_value(v);
	return 1;
}

static int js_string(const void *v, const char **s, size_t *len)
{
	if (!json_is_string((const json_t *)v))
		return 0;
	*s = json_string_value(v);
	*len = json_string_length(v);
	return 1;
}

static int js_key_text(ev_buf *out, const void *v)
{
	return ev_json_value(out, v) < 0 ? -1 : 0;
}

static int js_value(const struct doc *d, ev_agg_value *out, const ev_agg_spec *a, const void *v,
		    ev_buf *buf)
{
	(void)d;
	return ev_agg_value_json(out, a, v, buf);
}

static const struct doc_ops js_ops = {js_member, js_integer, js_string, js_key_text, js_value};

enum { READ_OK = 0, READ_DEAD = 1, READ_OOM = -1, READ_FALLBACK = 2 };

/* A record that cannot be windowed: the fast parser leaves it to the reference, which says
 * why. */
static int bad(int fast, ev_record_error *why, const char *reason, const char *field,
	       const char *message)
{
	if (fast)
		return READ_FALLBACK;
	why->reason = reason;
	snprintf(why->path, sizeof(why->path), "/%s", field);
	snprintf(why->message, sizeof(why->message), "%s", message);
	return READ_DEAD;
}

/* The walk both parsers share: event time, key, values, partition. Inlined into each caller
 * with its accessors known, so that the fast path pays no indirect call. */
static inline __attribute__((always_inline)) int walk(ev_record_reader *r,
						      const struct doc_ops *ops,
						      const struct doc *d, ev_record *rec,
						      ev_record_error *why)
{
	const ev_record_opts *o = &r->o;
	int fast = d->nodes != NULL;
	const char *s;
	size_t len;
	const void *v = ops->member(d, d->root, o->ts_field, r->lens[0]);
	if (!v)
		return bad(fast, why, "missing_ts", o->ts_field, "the record has no event time");
	if (!ops->integer(v, &rec->ts) &&
	    (!ops->string(v, &s, &len) || ev_time_parse_rfc3339(s, len, &rec->ts) < 0))
		return bad(fast, why, "bad_ts", o->ts_field,
			   "the event time is neither epoch milliseconds nor an RFC 3339 "
			   "date-time");
	ev_buf_reset(&r->key);
	for (int i = 0; i < o->nkeys; i++) {
		if (!(v = ops->member(d, d->root, o->keys[i], r->lens[2 + i])))
			return bad(fast, why, "missing_key", o->keys[i],
				   "the record has no value for a key field");
		ev_buf_append(&r->key, r->khead[i].data, r->khead[i].len);
		int k = ops->key_text(&r->key, v);
		if (k != 0)
			return k < 0 ? READ_OOM : READ_FALLBACK;
	}
	for (size_t i = 0; i < o->naggs; i++) {
		const ev_agg_spec *a = &o->aggs[i];
		if (!r->again[i])
			v = a->field ? ops->member(d, d->root, a->field, r->lens[2 + o->nkeys + i])
				     : NULL;
		int k = ops->value(d, &r->values[i], a, v, &r->vbufs[i]);
		if (k != 0)
			return k < 0 ? READ_OOM : READ_FALLBACK;
		if (ev_agg_numeric(a) && r->values[i].kind == EV_AV_OTHER)
			return bad(fast, why, "bad_value", a->field, "not a number");
	}
	const void *m = o->meta_field ? ops->member(d, d->root, o->meta_field, r->lens[1]) : NULL;
	const void *topic = ops->member(d, m, "topic", 5), *p = ops->member(d, m, "partition", 9);
	int64_t part;
	rec->partition = 0;
	rec->topic = "";
	rec->topic_len = 0;
	rec->src_partition = -1;
	if (ops->string(topic, &s, &len) && p && ops->integer(p, &part)) {
		ev_buf_reset(&r->topic);
		if (ev_buf_append(&r->topic, s, len) < 0)
			return READ_OOM;
		rec->partition = ev_window_partition(s, len, part);
		rec->topic = r->topic.data;
		rec->topic_len = len;
		rec->src_partition = part;
	}
	rec->key = r->key.data ? r->key.data : "";
	rec->keylen = r->key.len;
	rec->values = r->values;
	return READ_OK;
}

int ev_record_read(ev_record_reader *r, const char *line, size_t len, ev_record *rec,
		   ev_record_error *why)
{
	size_t n;
	const ev_fj_node *nd = r->fj ? ev_fj_parse(r->fj, line, len, &n) : NULL;
	if (nd && nd[0].type == EV_FJ_OBJECT) {
		struct doc d = {nd, nd};
		int rc = walk(r, &fj_ops, &d, rec, why);
		if (rc != READ_FALLBACK)
			return rc;
	}
	json_error_t jerr;
	json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(j)) {
		why->reason = "parse";
		why->path[0] = '\0';
		snprintf(why->message, sizeof(why->message), "not a JSON object%s%s", j ? "" : ": ",
			 j ? "" : jerr.text);
		json_decref(j);
		return READ_DEAD;
	}
	struct doc d = {NULL, j};
	int rc = walk(r, &js_ops, &d, rec, why);
	json_decref(j);
	return rc;
}

ev_record_reader *ev_record_reader_new(const ev_record_opts *o)
{
	ev_record_reader *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->o = *o;
	r->fj = ev_fj_new();
	r->values = calloc(o->naggs ? o->naggs : 1, sizeof(*r->values));
	r->vbufs = calloc(o->naggs ? o->naggs : 1, sizeof(*r->vbufs));
	r->lens = calloc(2 + (size_t)o->nkeys + o->naggs, sizeof(*r->lens));
	r->khead = calloc(o->nkeys ? (size_t)o->nkeys : 1, sizeof(*r->khead));
	r->again = calloc(o->naggs ? o->naggs : 1, 1);
	for (size_t i = 1; r->again && i < o->naggs; i++)
		r->again[i] = o->aggs[i].field && o->aggs[i - 1].field &&
			      strcmp(o->aggs[i].field, o->aggs[i - 1].field) == 0;
	for (int i = 0; r->khead && i < o->nkeys; i++) {
		int rc = i ? ev_buf_putc(&r->khead[i], ',') : 0;
		rc |= ev_buf_json_string(&r->khead[i], o->keys[i], strlen(o->keys[i]));
		if ((rc | ev_buf_putc(&r->khead[i], ':')) < 0) {
			ev_record_reader_free(r);
			return NULL;
		}
	}
	if (!r->values || !r->vbufs || !r->lens || !r->khead || !r->again) {
		ev_record_reader_free(r);
		return NULL;
	}
	r->lens[0] = strlen(o->ts_field);
	r->lens[1] = o->meta_field ? strlen(o->meta_field) : 0;
	for (int i = 0; i < o->nkeys; i++)
		r->lens[2 + i] = strlen(o->keys[i]);
	for (size_t i = 0; i < o->naggs; i++)
		r->lens[2 + (size_t)o->nkeys + i] = o->aggs[i].field ? strlen(o->aggs[i].field) : 0;
	return r;
}

void ev_record_reader_free(ev_record_reader *r)
{
	if (!r)
		return;
	ev_fj_free(r->fj);
	for (size_t i = 0; r->vbufs && i < r->o.naggs; i++)
		ev_buf_free(&r->vbufs[i]);
	free(r->vbufs);
	free(r->values);
	free(r->lens);
	for (int i = 0; r->khead && i < r->o.nkeys; i++)
		ev_buf_free(&r->khead[i]);
	free(r->khead);
	free(r->again);
	ev_buf_free(&r->key);
	ev_buf_free(&r->topic);
	free(r);
}
