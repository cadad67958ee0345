/* SPDX-License-Identifier: Apache-2.0 */
/* agg.h: the aggregates of a window (count, sum, min, max, avg, uniq, first, last). */
#ifndef EV_AGG_H
#define EV_AGG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "fastjson.h"

enum ev_agg_fn {
	EV_AGG_COUNT,
	EV_AGG_SUM,
	EV_AGG_MIN,
	EV_AGG_MAX,
	EV_AGG_AVG,
	EV_AGG_UNIQ,
	EV_AGG_FIRST,
	EV_AGG_LAST
};

typedef struct ev_agg_spec {
	enum ev_agg_fn fn;
	char *field; /* NULL for count */
	char *name;  /* output name: count, <fn>_<field>, or NAME of NAME=fn:field */
} ev_agg_spec;

/* Parse "count,sum:value,n=uniq:user_id" into specs (malloc'd, *n of them). Returns 0, or -1
 * with a message in err. */
int ev_agg_parse(const char *list, ev_agg_spec **specs, size_t *n, char *err, size_t errlen);
void ev_agg_specs_free(ev_agg_spec *specs, size_t n);
/* True when spec needs its field to be a number (sum, min, max, avg). */
int ev_agg_numeric(const ev_agg_spec *spec);

/* One record's value of an aggregate's field, as the aggregate needs it, whichever parser read
 * the record: the number for sum, min, max and avg; the value's JSON text for first and last
 * (compact, reals as ev_json_real writes them); its canonical text for uniq. */
typedef struct ev_agg_value {
	enum { EV_AV_ABSENT, EV_AV_NULL, EV_AV_INT, EV_AV_REAL, EV_AV_OTHER } kind;
	int64_t i; /* EV_AV_INT */
	double d;  /* EV_AV_INT and EV_AV_REAL */
	const char *text;
	size_t text_len;
} ev_agg_value;

/* Fill *out with v, a value of spec's field (NULL when absent); the text is written to buf,
 * which must live as long as *out. Returns 0, or -1 when out of memory. */
int ev_agg_value_json(ev_agg_value *out, const ev_agg_spec *spec, const json_t *v, ev_buf *buf);
/* The same from the fast parser's node nodes[i] (i < 0: absent). Returns 1 when the value is
 * an array or an object, which only the jansson reading handles; 0, or -1 when out of
 * memory. */
int ev_agg_value_fj(ev_agg_value *out, const ev_agg_spec *spec, const ev_fj_node *nodes, long i,
		    ev_buf *buf);

/* The running state of every aggregate of one window and key. */
typedef struct ev_agg_state ev_agg_state;

ev_agg_state *ev_agg_state_new(const ev_agg_spec *specs, size_t n);
void ev_agg_state_free(ev_agg_state *st, const ev_agg_spec *specs, size_t n);
/* Add one record: values[i] is the record's value of specs[i].field, already checked to be a
 * number (or absent, or null) where ev_agg_numeric. ts orders first and last; seq (the
 * arrival order) breaks ties. Returns 0, or -1 when out of memory. */
int ev_agg_add(ev_agg_state *st, const ev_agg_spec *specs, size_t n, const ev_agg_value *values,
	       int64_t ts, uint64_t seq);
/* Fold src into dst, as if dst had seen src's records too (session windows that merge). src
 * is left for the caller to free. Returns 0, or -1 when out of memory. */
int ev_agg_merge(ev_agg_state *dst, ev_agg_state *src, const ev_agg_spec *specs, size_t n);
uint64_t ev_agg_count(const ev_agg_state *st);
/* Roughly the heap bytes st holds: what a memory budget counts. */
size_t ev_agg_state_bytes(const ev_agg_state *st, const ev_agg_spec *specs, size_t n);
/* The state as bytes (appended to out) and back, for state stores and checkpoints: the
 * decoded state formats and merges as the original did. Decode returns NULL when data is not
 * an encoding for these specs (or when out of memory). */
int ev_agg_encode(ev_buf *out, const ev_agg_state *st, const ev_agg_spec *specs, size_t n);
ev_agg_state *ev_agg_decode(const void *data, size_t len, const ev_agg_spec *specs, size_t n);
/* Append ,"name":value for each aggregate; null for an aggregate over no values. */
int ev_agg_format(ev_buf *out, const ev_agg_state *st, const ev_agg_spec *specs, size_t n);

#endif
