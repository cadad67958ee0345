/* SPDX-License-Identifier: Apache-2.0 */
/* test_agg.c: aggregate specs, their running state and the number formatting of rows. */
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>

#include "agg.h"
#include "json.h"
#include "rng.h"
#include "test.h"

static void test_parse(void)
{
	ev_agg_spec *s;
	size_t n;
	char err[256];
	CHECK(ev_agg_parse("count,sum:value,u=uniq:user_id,last:ts", &s, &n, err, sizeof(err)) ==
	      0);
	CHECK(n == 4);
	CHECK_STR(s[0].name, "count");
	CHECK_STR(s[1].name, "sum_value");
	CHECK_STR(s[2].name, "u");
	CHECK(s[2].fn == EV_AGG_UNIQ && strcmp(s[2].field, "user_id") == 0);
	CHECK(ev_agg_numeric(&s[1]) && !ev_agg_numeric(&s[2]));
	ev_agg_specs_free(s, n);
	const char *bad[] = {"", "median:x", "sum", "count:x", "sum:", "=count"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(ev_agg_parse(bad[i], &s, &n, err, sizeof(err)) < 0);
}

static void test_reals(void)
{
	/* As Python's repr writes them (checked against it on 200k random doubles). */
	const double v[] = {0.1,     3.0,   1e16,    123456.0, 1e-05, 0.30000000000000004,
			    -2.5,    1e-4,  -0.0,    5e-324,   1e22,  9999999999999998.0,
			    1.5e-07, 1e308, 1.25e-5, 100.0,    1e15};
	const char *want[] = {"0.1",
			      "3.0",
			      "1e+16",
			      "123456.0",
			      "1e-05",
			      "0.30000000000000004",
			      "-2.5",
			      "0.0001",
			      "-0.0",
			      "5e-324",
			      "1e+22",
			      "9999999999999998.0",
			      "1.5e-07",
			      "1e+308",
			      "1.25e-05",
			      "100.0",
			      "1000000000000000.0"};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		ev_buf b = EV_BUF_INIT;
		ev_json_real(&b, v[i]);
		CHECK_STR(ev_buf_cstr(&b), want[i]);
		ev_buf_free(&b);
	}
}

/* ev_agg_add with values read by jansson (NULL: absent). */
static int add(ev_agg_state *st, const ev_agg_spec *s, size_t n, json_t *const *vals, int64_t ts,
	       uint64_t seq)
{
	ev_agg_value v[8];
	ev_buf bufs[8] = {EV_BUF_INIT};
	int rc = 0;
	for (size_t i = 0; i < n && i < 8; i++)
		rc |= ev_agg_value_json(&v[i], &s[i], vals[i], &bufs[i]);
	rc |= ev_agg_add(st, s, n, v, ts, seq);
	for (size_t i = 0; i < 8; i++)
		ev_buf_free(&bufs[i]);
	return rc;
}

/* The fast parser's reading of a value is jansson's, for every aggregate; arrays and objects
 * are left to jansson. */
static void test_fast_values(void)
{
	ev_agg_spec *s;
	size_t n;
	char err[256];
	ev_agg_parse("count,sum:v,uniq:v,first:v", &s, &n, err, sizeof(err));
	const char *in[] = {"1",     "-0",        "2.5",
			    "1.0",   "-0.0",      "1e300",
			    "3e20",  "null",      "true",
			    "false", "\"x\"",     "\"\\u00e9\\n\"",
			    "[1]",   "{\"a\":1}", "9223372036854775807"};
	ev_fj *p = ev_fj_new();
	for (size_t r = 0; r < sizeof(in) / sizeof(in[0]); r++) {
		json_t *js = json_loads(in[r], JSON_DECODE_ANY, NULL);
		size_t nn;
		const ev_fj_node *nd = ev_fj_parse(p, in[r], strlen(in[r]), &nn);
		CHECK(js && nd);
		for (size_t i = 0; js && nd && i < n; i++) {
			ev_agg_value a, b;
			ev_buf ba = EV_BUF_INIT, bb = EV_BUF_INIT;
			CHECK(ev_agg_value_json(&a, &s[i], js, &ba) == 0);
			int r2 = ev_agg_value_fj(&b, &s[i], nd, 0, &bb);
			if (nd[0].type == EV_FJ_ARRAY || nd[0].type == EV_FJ_OBJECT) {
				CHECK(r2 == 1);
			} else {
				CHECK(r2 == 0 && a.kind == b.kind && a.i == b.i &&
				      (a.d == b.d || (a.d != a.d && b.d != b.d)) &&
				      a.text_len == b.text_len &&
				      (!a.text_len || memcmp(a.text, b.text, a.text_len) == 0));
			}
			ev_buf_free(&ba);
			ev_buf_free(&bb);
		}
		json_decref(js);
	}
	ev_agg_value v;
	ev_buf b = EV_BUF_INIT;
	CHECK(ev_agg_value_fj(&v, &s[1], NULL, -1, &b) == 0 && v.kind == EV_AV_ABSENT);
	ev_buf_free(&b);
	ev_fj_free(p);
	ev_agg_specs_free(s, n);
}

/* The shortest digits by search, as ev_json_real found them before std::to_chars: "%.*e" from
 * 15 significant digits (1 for subnormals) up to 17, the first that reads back. */
static void shortest_by_search(double v, char *digits, int *exp)
{
	char s[40];
	int p = v != 0 && fabs(v) < DBL_MIN ? 1 : 15;
	for (;; p++) {
		snprintf(s, sizeof(s), "%.*e", p - 1, v);
		if (p == 17 || strtod(s, NULL) == v)
			break;
	}
	int nd = 0;
	const char *c = s + (*s == '-');
	for (; *c != 'e'; c++)
		if (*c != '.')
			digits[nd++] = *c;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';
	*exp = atoi(c + 1);
}

/* ev_fj_shortest gives the digits the search gives, on random bit patterns and on decimals. */
static void test_reals_random(void)
{
	ev_rng rng;
	ev_rng_seed(&rng, 7);
	int differ = 0;
	for (int i = 0; i < 300000; i++) {
		double v;
		uint64_t bits = ev_rng_next(&rng);
		if (i % 3 == 0) {
			memcpy(&v, &bits, sizeof(v));
		} else if (i % 3 == 1) {
			v = (double)(int64_t)(bits % 2000000 - 1000000) / 100.0;
		} else {
			v = (double)(bits >> 11) * 0x1p-53 * pow(10, (double)(int)(bits % 40) - 20);
		}
		if (!isfinite(v))
			continue;
		char want[24], got[40], digits[24] = "";
		int wexp, nd = 0;
		shortest_by_search(v, want, &wexp);
		if (!ev_fj_shortest(v, got, sizeof(got)))
			strcpy(got, "?");
		const char *c = got + (*got == '-');
		for (; *c && *c != 'e'; c++)
			if (*c != '.')
				digits[nd++] = *c;
		if (strcmp(digits, want) != 0 || atoi(c + 1) != wexp) {
			if (differ++ < 5)
				fprintf(stderr, "%.17g: to_chars %s, search %se%d\n", v, got, want,
					wexp);
		}
	}
	CHECK(differ == 0);
}

static void test_state(void)
{
	ev_agg_spec *s;
	size_t n;
	char err[256];
	ev_agg_parse("count,sum:v,min:v,max:v,avg:v,uniq:v,first:v,last:v", &s, &n, err,
		     sizeof(err));
	ev_agg_state *st = ev_agg_state_new(s, n);
	json_t *vals[8];
	const char *in[] = {"1", "2.5", "1.0", "null", "-4"};
	const int64_t ts[] = {30, 10, 20, 5, 10};
	for (int r = 0; r < 5; r++) {
		json_t *v = json_loads(in[r], JSON_DECODE_ANY, NULL);
		for (size_t i = 0; i < n; i++)
			vals[i] = v;
		CHECK(add(st, s, n, vals, ts[r], (uint64_t)r) == 0);
		json_decref(v);
	}
	ev_buf b = EV_BUF_INIT;
	ev_agg_format(&b, st, s, n);
	/* 1 and 1.0 are one distinct value; first is the earliest event time (2.5 at 10, before
	 * -4 at 10 by arrival), last the latest (1 at 30); null counts for count only */
	CHECK_STR(ev_buf_cstr(&b),
		  ",\"count\":5,\"sum_v\":0.5,\"min_v\":-4,\"max_v\":2.5,\"avg_v\":0.125,"
		  "\"uniq_v\":3,\"first_v\":2.5,\"last_v\":1");
	ev_buf_free(&b);
	ev_agg_state_free(st, s, n);

	ev_agg_state *empty = ev_agg_state_new(s, n);
	json_t *none[8] = {NULL};
	add(empty, s, n, none, 0, 0);
	ev_agg_format(&b, empty, s, n);
	CHECK_STR(ev_buf_cstr(&b),
		  ",\"count\":1,\"sum_v\":null,\"min_v\":null,\"max_v\":null,"
		  "\"avg_v\":null,\"uniq_v\":null,\"first_v\":null,\"last_v\":null");
	ev_buf_free(&b);
	ev_agg_state_free(empty, s, n);
	ev_agg_specs_free(s, n);
}

static void test_merge(void)
{
	ev_agg_spec *s;
	size_t n;
	char err[256];
	ev_agg_parse("count,sum:v,min:v,uniq:v,first:v,last:v", &s, &n, err, sizeof(err));
	ev_agg_state *a = ev_agg_state_new(s, n), *b = ev_agg_state_new(s, n);
	json_t *vals[6];
	const char *in[] = {"3", "1", "1.0", "7"};
	for (int r = 0; r < 4; r++) {
		json_t *v = json_loads(in[r], JSON_DECODE_ANY, NULL);
		for (size_t i = 0; i < n; i++)
			vals[i] = v;
		add(r < 2 ? a : b, s, n, vals, 100 - r, (uint64_t)r);
		json_decref(v);
	}
	CHECK(ev_agg_merge(a, b, s, n) == 0);
	ev_buf out = EV_BUF_INIT;
	ev_agg_format(&out, a, s, n);
	/* min ties (1 and 1.0) go to the earlier arrival; first is the smallest time (7 at 97) */
	CHECK_STR(ev_buf_cstr(&out), ",\"count\":4,\"sum_v\":12.0,\"min_v\":1,\"uniq_v\":3,"
				     "\"first_v\":7,\"last_v\":3");
	ev_buf_free(&out);
	ev_agg_state_free(a, s, n);
	ev_agg_state_free(b, s, n);
	ev_agg_specs_free(s, n);
}

/* A state stored and read back formats, merges and keeps counting as the original. */
static void test_encode(void)
{
	ev_agg_spec *s;
	size_t n;
	char err[256];
	ev_agg_parse("count,sum:v,min:v,max:v,avg:v,uniq:v,first:v,last:v", &s, &n, err,
		     sizeof(err));
	ev_agg_state *st = ev_agg_state_new(s, n);
	json_t *vals[8];
	const char *in[] = {"1", "2.5", "\"x\"", "null", "-4", "{\"a\":[1.5,2]}"};
	for (int r = 0; r < 6; r++) {
		json_t *v = json_loads(in[r], JSON_DECODE_ANY, NULL);
		for (size_t i = 0; i < n; i++)
			vals[i] = r == 2 || r == 5 ? (i >= 5 ? v : NULL) : v;
		CHECK(add(st, s, n, vals, 10 * r, (uint64_t)r) == 0);
		json_decref(v);
	}
	ev_buf enc = EV_BUF_INIT, a = EV_BUF_INIT, b = EV_BUF_INIT;
	CHECK(ev_agg_encode(&enc, st, s, n) == 0);
	ev_agg_state *back = ev_agg_decode(enc.data, enc.len, s, n);
	CHECK(back != NULL);
	ev_agg_format(&a, st, s, n);
	if (back)
		ev_agg_format(&b, back, s, n);
	CHECK_STR(ev_buf_cstr(&b), ev_buf_cstr(&a));
	CHECK(ev_agg_state_bytes(st, s, n) > 0);
	/* both keep counting the same way */
	json_t *v = json_loads("2.5", JSON_DECODE_ANY, NULL);
	for (size_t i = 0; i < n; i++)
		vals[i] = v;
	add(st, s, n, vals, 1, 9);
	if (back)
		add(back, s, n, vals, 1, 9);
	json_decref(v);
	ev_buf_reset(&a);
	ev_buf_reset(&b);
	ev_agg_format(&a, st, s, n);
	if (back)
		ev_agg_format(&b, back, s, n);
	CHECK_STR(ev_buf_cstr(&b), ev_buf_cstr(&a));
	/* every truncation and a trailing byte are refused, never misread */
	int refused = 0;
	for (size_t len = 0; len < enc.len; len++) {
		ev_agg_state *t = ev_agg_decode(enc.data, len, s, n);
		refused += t == NULL;
		ev_agg_state_free(t, s, n);
	}
	CHECK(refused == (int)enc.len);
	ev_buf_putc(&enc, 0);
	CHECK(ev_agg_decode(enc.data, enc.len, s, n) == NULL);
	ev_buf_free(&enc);
	ev_buf_free(&a);
	ev_buf_free(&b);
	ev_agg_state_free(st, s, n);
	ev_agg_state_free(back, s, n);
	ev_agg_specs_free(s, n);
}

/* Nested values are written as the reference model writes them (shortest reals, the record's
 * key order), and uniq counts equal nested values once whatever their key order. */
static void test_nested(void)
{
	ev_agg_spec *s;
	size_t n;
	char err[256];
	ev_agg_parse("uniq:v,first:v,last:v", &s, &n, err, sizeof(err));
	ev_agg_state *st = ev_agg_state_new(s, n);
	const char *in[] = {"{\"b\":[0.1,1.0,true],\"a\":null}", "{\"a\":null,\"b\":[0.1,1,true]}",
			    "[{\"y\":1e300,\"x\":\"\\u00e9\"}]"};
	for (int r = 0; r < 3; r++) {
		json_t *v = json_loads(in[r], JSON_DECODE_ANY, NULL), *vals[3] = {v, v, v};
		CHECK(add(st, s, n, vals, r, (uint64_t)r) == 0);
		json_decref(v);
	}
	ev_buf b = EV_BUF_INIT;
	ev_agg_format(&b, st, s, n);
	CHECK_STR(ev_buf_cstr(&b), ",\"uniq_v\":2,\"first_v\":{\"b\":[0.1,1.0,true],\"a\":null},"
				   "\"last_v\":[{\"y\":1e+300,\"x\":\"\u00e9\"}]");
	ev_buf_free(&b);
	ev_agg_state_free(st, s, n);
	ev_agg_specs_free(s, n);
}

int main(void)
{
	RUN(test_nested);
	RUN(test_fast_values);
	RUN(test_reals_random);
	RUN(test_encode);
	RUN(test_merge);
	RUN(test_parse);
	RUN(test_reals);
	RUN(test_state);
	return test_report();
}
