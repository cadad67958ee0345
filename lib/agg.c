/* SPDX-License-Identifier: Apache-2.0 */
/* agg.c: the aggregates of a window (count, sum, min, max, avg, uniq, first, last). */
#include "agg.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ht.h"
#include "json.h"

static const char *const fn_names[] = {"count", "sum",  "min",   "max",
				       "avg",   "uniq", "first", "last"};

struct one {
	uint64_t n;   /* values seen */
	uint64_t seq; /* first, last, min, max: the arrival of the value kept */
	int all_int;  /* every value an integer (sum, min, max) */
	union {       /* what the function keeps: a state is small, there are many */
		struct {
			int64_t isum; /* exact while all_int and no overflow */
			double dsum;  /* always kept */
		};                    /* sum, avg */
		struct {
			json_int_t ibest; /* as an integer when all_int */
			double dbest;
		}; /* min, max */
		struct {
			ev_ht *seen; /* from the second distinct value on */
			char *one;   /* the first alone: its length (4 bytes), its bytes */
		};                   /* uniq */
		struct {
			char *text; /* the value's JSON text */
			int64_t ts; /* its event time */
		};                  /* first, last */
	};
};

struct ev_agg_state {
	uint64_t count;
	struct one a[];
};

int ev_agg_numeric(const ev_agg_spec *spec)
{
	return spec->fn == EV_AGG_SUM || spec->fn == EV_AGG_MIN || spec->fn == EV_AGG_MAX ||
	       spec->fn == EV_AGG_AVG;
}

void ev_agg_specs_free(ev_agg_spec *specs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(specs[i].field);
		free(specs[i].name);
	}
	free(specs);
}

int ev_agg_parse(const char *list, ev_agg_spec **out, size_t *nout, char *err, size_t errlen)
{
	char *copy = strdup(list), *save = NULL;
	ev_agg_spec *specs = NULL;
	size_t n = 0;
	int rc = -1;
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *name = NULL, *eq = strchr(item, '=');
		if (eq) {
			*eq = '\0';
			name = item;
			item = eq + 1;
		}
		char *colon = strchr(item, ':');
		if (colon)
			*colon = '\0';
		int fn = -1;
		for (int i = 0; i < (int)(sizeof(fn_names) / sizeof(fn_names[0])); i++)
			if (strcmp(item, fn_names[i]) == 0)
				fn = i;
		if (fn < 0 || (fn == EV_AGG_COUNT) != !colon || (colon && !colon[1]) ||
		    (name && !*name)) {
			snprintf(
				err, errlen,
				"invalid aggregate '%s': want count, or sum|min|max|avg|uniq|first|last:FIELD, "
				"optionally NAME=...",
				item);
			goto out;
		}
		ev_agg_spec *more = realloc(specs, (n + 1) * sizeof(*specs));
		if (!more)
			goto out;
		specs = more;
		specs[n].fn = (enum ev_agg_fn)fn;
		specs[n].field = colon ? strdup(colon + 1) : NULL;
		if (name) {
			specs[n].name = strdup(name);
		} else {
			size_t len = strlen(item) + (colon ? strlen(colon + 1) + 2 : 1);
			specs[n].name = malloc(len);
			if (specs[n].name)
				snprintf(specs[n].name, len, colon ? "%s_%s" : "%s", item,
					 colon ? colon + 1 : "");
		}
		n++;
	}
	if (n == 0) {
		snprintf(err, errlen, "no aggregate in '%s'", list);
		goto out;
	}
	*out = specs;
	*nout = n;
	specs = NULL;
	rc = 0;
out:
	if (specs)
		ev_agg_specs_free(specs, n);
	free(copy);
	return rc;
}

/* uniq's distinct values: most windows of a key see one, which is kept without a table. */
static size_t uniq_count(const struct one *o)
{
	return o->seen ? ev_ht_count(o->seen) : o->one != NULL;
}

/* The values one by one, as ev_ht_next. */
static int uniq_next(const struct one *o, size_t *pos, const void **key, size_t *len)
{
	void *val;
	if (o->seen)
		return ev_ht_next(o->seen, pos, key, len, &val);
	if (!o->one || (*pos)++)
		return 0;
	uint32_t n;
	memcpy(&n, o->one, 4);
	*key = o->one + 4;
	*len = n;
	return 1;
}

static int uniq_add(struct one *o, const void *key, size_t len)
{
	if (o->seen)
		return ev_ht_add(o->seen, key, len, o) < 0 ? -1 : 0;
	if (o->one) {
		size_t pos = 0, n;
		const void *k;
		uniq_next(o, &pos, &k, &n);
		if (n == len && memcmp(k, key, len) == 0)
			return 0;
		if (!(o->seen = ev_ht_new_kept()) || ev_ht_put(o->seen, k, n, o) < 0 ||
		    ev_ht_put(o->seen, key, len, o) < 0)
			return -1;
		free(o->one);
		o->one = NULL;
		return 0;
	}
	uint32_t n = (uint32_t)len;
	if (len > UINT32_MAX || !(o->one = malloc(4 + len)))
		return -1;
	memcpy(o->one, &n, 4);
	memcpy(o->one + 4, key, len);
	return 0;
}

/* What the first value alone holds: as ev_ht_bytes counts an entry, and its block. */
static size_t uniq_bytes(const struct one *o)
{
	size_t pos = 0, n = 0;
	const void *k;
	uniq_next(o, &pos, &k, &n);
	return 4 + n + 16;
}

ev_agg_state *ev_agg_state_new(const ev_agg_spec *specs, size_t n)
{
	ev_agg_state *st = calloc(1, sizeof(*st) + n * sizeof(struct one));
	if (!st)
		return NULL;
	(void)specs;
	for (size_t i = 0; i < n; i++)
		st->a[i].all_int = 1;
	return st;
}

void ev_agg_state_free(ev_agg_state *st, const ev_agg_spec *specs, size_t n)
{
	if (!st)
		return;
	for (size_t i = 0; i < n; i++) {
		if (specs[i].fn == EV_AGG_UNIQ) {
			ev_ht_free(st->a[i].seen);
			free(st->a[i].one);
		} else if (specs[i].fn == EV_AGG_FIRST || specs[i].fn == EV_AGG_LAST)
			free(st->a[i].text);
	}
	free(st);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The text two equal values share: 1 and 1.0 are the same number, at any depth, and
 * {"a":1,"b":2} is {"b":2,"a":1}. */
static int integral_int64(double d)
{
	return d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0;
}

static int canonical(ev_buf *out, const json_t *v)
{
	int rc = 0;
	if (json_is_real(v) && integral_int64(json_real_value(v)))
		return ev_buf_printf(out, "%lld", (long long)json_real_value(v));
	if (json_is_array(v)) {
		rc |= ev_buf_putc(out, '[');
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				rc |= ev_buf_putc(out, ',');
			rc |= canonical(out, json_array_get(v, i));
		}
		return rc | ev_buf_putc(out, ']');
	}
	if (json_is_object(v)) {
		size_t n = json_object_size(v), i = 0;
		const char **keys = malloc((n ? n : 1) * sizeof(*keys));
		const char *k;
		json_t *x;
		if (!keys)
			return -1;
		json_object_foreach((json_t *)v, k, x) keys[i++] = k;
		qsort(keys, n, sizeof(*keys), cmp_str);
		rc |= ev_buf_putc(out, '{');
		for (i = 0; i < n; i++) {
			if (i)
				rc |= ev_buf_putc(out, ',');
			rc |= ev_buf_json_string(out, keys[i], strlen(keys[i]));
			rc |= ev_buf_putc(out, ':');
			rc |= canonical(out, json_object_get(v, keys[i]));
		}
		free(keys);
		return rc | ev_buf_putc(out, '}');
	}
	return ev_json_value(out, v);
}

/* uniq, first and last keep the value's text; the others only its number. */
static int needs_text(const ev_agg_spec *spec)
{
	return spec->fn == EV_AGG_UNIQ || spec->fn == EV_AGG_FIRST || spec->fn == EV_AGG_LAST;
}

int ev_agg_value_json(ev_agg_value *out, const ev_agg_spec *spec, const json_t *v, ev_buf *buf)
{
	memset(out, 0, sizeof(*out));
	if (!v)
		return 0; /* EV_AV_ABSENT */
	switch (json_typeof(v)) {
	case JSON_NULL: out->kind = EV_AV_NULL; return 0;
	case JSON_INTEGER:
		out->kind = EV_AV_INT;
		out->i = json_integer_value(v);
		out->d = (double)out->i;
		break;
	case JSON_REAL:
		out->kind = EV_AV_REAL;
		out->d = json_real_value(v);
		break;
	default: out->kind = EV_AV_OTHER; break;
	}
	if (!needs_text(spec))
		return 0;
	ev_buf_reset(buf);
	if ((spec->fn == EV_AGG_UNIQ ? canonical(buf, v) : ev_json_value(buf, v)) < 0)
		return -1;
	out->text = buf->data;
	out->text_len = buf->len;
	return 0;
}

int ev_agg_value_fj(ev_agg_value *out, const ev_agg_spec *spec, const ev_fj_node *nodes, long i,
		    ev_buf *buf)
{
	memset(out, 0, sizeof(*out));
	if (i < 0)
		return 0; /* EV_AV_ABSENT */
	const ev_fj_node *n = &nodes[i];
	switch (n->type) {
	case EV_FJ_NULL: out->kind = EV_AV_NULL; return 0;
	case EV_FJ_INT:
		out->kind = EV_AV_INT;
		out->i = n->num.i;
		out->d = (double)out->i;
		break;
	case EV_FJ_REAL:
		out->kind = EV_AV_REAL;
		out->d = n->num.d;
		break;
	case EV_FJ_ARRAY:
	case EV_FJ_OBJECT: return 1;
	default: out->kind = EV_AV_OTHER; break;
	}
	if (!needs_text(spec))
		return 0;
	ev_buf_reset(buf);
	/* canonical(): an integral real is the integer it equals. */
	int rc = spec->fn == EV_AGG_UNIQ && out->kind == EV_AV_REAL && integral_int64(out->d)
			 ? ev_buf_printf(buf, "%lld", (long long)out->d)
			 : ev_json_scalar_fj(buf, n);
	if (rc < 0)
		return -1;
	out->text = buf->data;
	out->text_len = buf->len;
	return 0;
}

int ev_agg_add(ev_agg_state *st, const ev_agg_spec *specs, size_t n, const ev_agg_value *values,
	       int64_t ts, uint64_t seq)
{
	st->count++;
	for (size_t i = 0; i < n; i++) {
		struct one *o = &st->a[i];
		const ev_agg_value *v = &values[i];
		if (specs[i].fn == EV_AGG_COUNT || v->kind == EV_AV_ABSENT || v->kind == EV_AV_NULL)
			continue;
		int is_int = v->kind == EV_AV_INT;
		switch (specs[i].fn) {
		case EV_AGG_SUM:
		case EV_AGG_AVG:
			o->dsum += v->d;
			if (o->all_int && is_int &&
			    !__builtin_add_overflow(o->isum, v->i, &o->isum)) {
				/* exact */
			} else {
				o->all_int = 0;
			}
			break;
		case EV_AGG_MIN:
		case EV_AGG_MAX: {
			int better = o->n == 0 || (specs[i].fn == EV_AGG_MIN ? v->d < o->dbest
									     : v->d > o->dbest);
			if (better) {
				o->dbest = v->d;
				o->ibest = is_int ? v->i : 0;
				o->all_int = is_int;
				o->seq = seq;
			}
			break;
		}
		case EV_AGG_UNIQ:
			if (uniq_add(o, v->text, v->text_len) < 0)
				return -1;
			break;
		case EV_AGG_FIRST:
		case EV_AGG_LAST: {
			int take = o->n == 0 ||
				   (specs[i].fn == EV_AGG_FIRST ? ts < o->ts : ts >= o->ts);
			if (take) {
				char *text = realloc(o->text, v->text_len + 1);
				if (!text)
					return -1;
				memcpy(text, v->text, v->text_len);
				text[v->text_len] = '\0';
				o->text = text;
				o->ts = ts;
				o->seq = seq;
			}
			break;
		}
		case EV_AGG_COUNT: break;
		}
		o->n++;
	}
	return 0;
}

int ev_agg_merge(ev_agg_state *dst, ev_agg_state *src, const ev_agg_spec *specs, size_t n)
{
	dst->count += src->count;
	for (size_t i = 0; i < n; i++) {
		struct one *d = &dst->a[i], *o = &src->a[i];
		if (o->n == 0)
			continue;
		int take = d->n == 0;
		switch (specs[i].fn) {
		case EV_AGG_SUM:
		case EV_AGG_AVG:
			d->dsum += o->dsum;
			if (!(d->all_int && o->all_int &&
			      !__builtin_add_overflow(d->isum, o->isum, &d->isum)))
				d->all_int = 0;
			break;
		case EV_AGG_MIN:
		case EV_AGG_MAX:
			take = take ||
			       (specs[i].fn == EV_AGG_MIN ? o->dbest < d->dbest
							  : o->dbest > d->dbest) ||
			       (o->dbest == d->dbest && o->seq < d->seq);
			if (take) {
				d->dbest = o->dbest;
				d->ibest = o->ibest;
				d->all_int = o->all_int;
				d->seq = o->seq;
			}
			break;
		case EV_AGG_UNIQ: {
			size_t pos = 0, len;
			const void *key;
			while (uniq_next(o, &pos, &key, &len))
				if (uniq_add(d, key, len) < 0)
					return -1;
			break;
		}
		case EV_AGG_FIRST:
		case EV_AGG_LAST:
			take = take ||
			       (specs[i].fn == EV_AGG_FIRST
					? o->ts < d->ts || (o->ts == d->ts && o->seq < d->seq)
					: o->ts > d->ts || (o->ts == d->ts && o->seq > d->seq));
			if (take) {
				free(d->text);
				d->text = o->text;
				o->text = NULL;
				d->ts = o->ts;
				d->seq = o->seq;
			}
			break;
		case EV_AGG_COUNT: break;
		}
		d->n += o->n;
	}
	return 0;
}

uint64_t ev_agg_count(const ev_agg_state *st)
{
	return st->count;
}

int ev_agg_format(ev_buf *out, const ev_agg_state *st, const ev_agg_spec *specs, size_t n)
{
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		const struct one *o = &st->a[i];
		rc |= ev_buf_putc(out, ',');
		rc |= ev_buf_json_string(out, specs[i].name, strlen(specs[i].name));
		rc |= ev_buf_putc(out, ':');
		if (specs[i].fn == EV_AGG_COUNT) {
			rc |= ev_buf_put_i64(out, (int64_t)st->count);
			continue;
		}
		if (o->n == 0) {
			rc |= ev_buf_puts(out, "null");
			continue;
		}
		switch (specs[i].fn) {
		case EV_AGG_SUM:
			rc |= o->all_int ? ev_buf_put_i64(out, o->isum)
					 : ev_json_real(out, o->dsum);
			break;
		case EV_AGG_AVG: rc |= ev_json_real(out, o->dsum / (double)o->n); break;
		case EV_AGG_MIN:
		case EV_AGG_MAX:
			rc |= o->all_int ? ev_buf_put_i64(out, o->ibest)
					 : ev_json_real(out, o->dbest);
			break;
		case EV_AGG_UNIQ: rc |= ev_buf_put_i64(out, (int64_t)uniq_count(o)); break;
		default: rc |= ev_buf_puts(out, o->text); break;
		}
	}
	return rc;
}

size_t ev_agg_state_bytes(const ev_agg_state *st, const ev_agg_spec *specs, size_t n)
{
	size_t bytes = sizeof(*st) + n * sizeof(struct one) + 16;
	for (size_t i = 0; i < n; i++) {
		const struct one *o = &st->a[i];
		if (specs[i].fn == EV_AGG_UNIQ && o->seen)
			bytes += ev_ht_bytes(o->seen);
		else if (specs[i].fn == EV_AGG_UNIQ && o->one)
			bytes += uniq_bytes(o);
		if ((specs[i].fn == EV_AGG_FIRST || specs[i].fn == EV_AGG_LAST) && o->text)
			bytes += strlen(o->text) + 17;
	}
	return bytes;
}

/* The encoding: a format byte, the count, then per aggregate only the fields it uses,
 * integers and doubles as 8 little-endian bytes, texts as a 4-byte length and the bytes. */
enum { AGG_FORMAT = 1 };

static int put_u64(ev_buf *out, uint64_t v)
{
	unsigned char b[8];
	for (int i = 0; i < 8; i++, v >>= 8)
		b[i] = (unsigned char)v;
	return ev_buf_append(out, b, 8);
}

static int put_f64(ev_buf *out, double d)
{
	uint64_t v;
	memcpy(&v, &d, sizeof(v));
	return put_u64(out, v);
}

static int put_bytes(ev_buf *out, const void *p, size_t len)
{
	unsigned char b[4] = {(unsigned char)len, (unsigned char)(len >> 8),
			      (unsigned char)(len >> 16), (unsigned char)(len >> 24)};
	int rc = ev_buf_append(out, b, 4);
	rc |= ev_buf_append(out, p, len);
	return rc;
}

int ev_agg_encode(ev_buf *out, const ev_agg_state *st, const ev_agg_spec *specs, size_t n)
{
	int rc = ev_buf_putc(out, AGG_FORMAT);
	rc |= put_u64(out, st->count);
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct one *o = &st->a[i];
		if (specs[i].fn == EV_AGG_COUNT)
			continue;
		rc |= put_u64(out, o->n);
		switch (specs[i].fn) {
		case EV_AGG_SUM:
		case EV_AGG_AVG:
			rc |= ev_buf_putc(out, (char)o->all_int);
			rc |= put_u64(out, (uint64_t)o->isum);
			rc |= put_f64(out, o->dsum);
			break;
		case EV_AGG_MIN:
		case EV_AGG_MAX:
			rc |= ev_buf_putc(out, (char)o->all_int);
			rc |= put_u64(out, (uint64_t)o->ibest);
			rc |= put_f64(out, o->dbest);
			rc |= put_u64(out, o->seq);
			break;
		case EV_AGG_UNIQ: {
			size_t pos = 0, len;
			const void *key;
			rc |= put_u64(out, uniq_count(o));
			while (rc == 0 && uniq_next(o, &pos, &key, &len))
				rc |= put_bytes(out, key, len);
			break;
		}
		case EV_AGG_FIRST:
		case EV_AGG_LAST:
			rc |= put_u64(out, (uint64_t)o->ts);
			rc |= put_u64(out, o->seq);
			rc |= put_bytes(out, o->text ? o->text : "", o->text ? strlen(o->text) : 0);
			break;
		case EV_AGG_COUNT: break;
		}
	}
	return rc ? -1 : 0;
}

struct reader {
	const unsigned char *p, *end;
	int bad;
};

static uint64_t get_u64(struct reader *r)
{
	uint64_t v = 0;
	if (r->end - r->p < 8) {
		r->bad = 1;
		return 0;
	}
	for (int i = 7; i >= 0; i--)
		v = v << 8 | r->p[i];
	r->p += 8;
	return v;
}

static double get_f64(struct reader *r)
{
	uint64_t v = get_u64(r);
	double d;
	memcpy(&d, &v, sizeof(d));
	return d;
}

static int get_byte(struct reader *r)
{
	if (r->p == r->end) {
		r->bad = 1;
		return 0;
	}
	return *r->p++;
}

static const unsigned char *get_bytes(struct reader *r, size_t *len)
{
	if (r->end - r->p < 4) {
		r->bad = 1;
		return NULL;
	}
	*len = (size_t)r->p[0] | (size_t)r->p[1] << 8 | (size_t)r->p[2] << 16 |
	       (size_t)r->p[3] << 24;
	r->p += 4;
	if ((size_t)(r->end - r->p) < *len) {
		r->bad = 1;
		return NULL;
	}
	const unsigned char *b = r->p;
	r->p += *len;
	return b;
}

ev_agg_state *ev_agg_decode(const void *data, size_t len, const ev_agg_spec *specs, size_t n)
{
	struct reader r = {data, (const unsigned char *)data + len, 0};
	if (get_byte(&r) != AGG_FORMAT)
		return NULL;
	ev_agg_state *st = ev_agg_state_new(specs, n);
	if (!st)
		return NULL;
	st->count = get_u64(&r);
	for (size_t i = 0; i < n && !r.bad; i++) {
		struct one *o = &st->a[i];
		if (specs[i].fn == EV_AGG_COUNT)
			continue;
		o->n = get_u64(&r);
		switch (specs[i].fn) {
		case EV_AGG_SUM:
		case EV_AGG_AVG:
			o->all_int = get_byte(&r);
			o->isum = (int64_t)get_u64(&r);
			o->dsum = get_f64(&r);
			break;
		case EV_AGG_MIN:
		case EV_AGG_MAX:
			o->all_int = get_byte(&r);
			o->ibest = (json_int_t)get_u64(&r);
			o->dbest = get_f64(&r);
			o->seq = get_u64(&r);
			break;
		case EV_AGG_UNIQ: {
			uint64_t count = get_u64(&r);
			for (uint64_t k = 0; k < count && !r.bad; k++) {
				size_t klen;
				const unsigned char *key = get_bytes(&r, &klen);
				if (key && uniq_add(o, key, klen) < 0)
					r.bad = 1;
			}
			break;
		}
		case EV_AGG_FIRST:
		case EV_AGG_LAST: {
			size_t tlen;
			o->ts = (int64_t)get_u64(&r);
			o->seq = get_u64(&r);
			const unsigned char *text = get_bytes(&r, &tlen);
			if (text && o->n > 0) {
				if (!(o->text = malloc(tlen + 1))) {
					r.bad = 1;
					break;
				}
				memcpy(o->text, text, tlen);
				o->text[tlen] = '\0';
			}
			break;
		}
		case EV_AGG_COUNT: break;
		}
	}
	if (r.bad || r.p != r.end) {
		ev_agg_state_free(st, specs, n);
		return NULL;
	}
	return st;
}
