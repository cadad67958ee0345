/* SPDX-License-Identifier: Apache-2.0 */
/* test_fastjson.c: the fast parser against jansson, the reference. Whatever ev_fj_parse
 * accepts, jansson accepts and reads as the same values in the same order; what it refuses,
 * the callers hand to jansson. Edge cases, every line of the fuzz corpus, and mutations of
 * generated records. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "fastjson.h"
#include "json.h"
#include "rng.h"
#include "test.h"

/* The nodes from index *i on as a jansson value. */
static json_t *to_json(const ev_fj_node *nd, size_t *i)
{
	const ev_fj_node *x = &nd[(*i)++];
	switch (x->type) {
	case EV_FJ_NULL: return json_null();
	case EV_FJ_FALSE: return json_false();
	case EV_FJ_TRUE: return json_true();
	case EV_FJ_INT: return json_integer(x->num.i);
	case EV_FJ_REAL: return json_real(x->num.d);
	case EV_FJ_STRING: return json_stringn(x->str, x->len);
	case EV_FJ_ARRAY: {
		json_t *a = json_array();
		while (*i < x->end)
			json_array_append_new(a, to_json(nd, i));
		return a;
	}
	case EV_FJ_OBJECT: {
		json_t *o = json_object();
		while (*i < x->end) {
			const ev_fj_node *m = &nd[*i];
			char *k = strndup(m->key, m->key_len);
			json_object_set_new(o, k, to_json(nd, i));
			free(k);
		}
		return o;
	}
	}
	return NULL;
}

static int checked, accepted, depth_differs;

/* One text: when the fast parser accepts it, jansson must too, with the same values. */
static void differ(ev_fj *p, const char *text, size_t len)
{
	size_t n = 0;
	const ev_fj_node *nd = ev_fj_parse(p, text, len, &n);
	checked++;
	if (!nd)
		return;
	accepted++;
	json_error_t jerr;
	json_t *ref = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!ref) {
		fprintf(stderr, "accepted what jansson refuses (%s): %.*s\n", jerr.text, (int)len,
			text);
		CHECK(ref != NULL);
		return;
	}
	/* The depth is the one ev_json_too_deep (evvalidate's precheck) measures. */
	int d = ev_fj_depth(p);
	depth_differs +=
		ev_json_too_deep(text, len, d) || (d > 0 && !ev_json_too_deep(text, len, d - 1));
	size_t i = 0;
	json_t *got = to_json(nd, &i);
	if (i != n)
		CHECK(i == n);
	char *a = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
	char *b = json_dumps(ref, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
	if (!a || !b || strcmp(a, b) != 0) {
		fprintf(stderr, "read differently: %.*s\n  fast: %s\n  jansson: %s\n", (int)len,
			text, a ? a : "?", b ? b : "?");
		CHECK(0);
	}
	free(a);
	free(b);
	json_decref(got);
	json_decref(ref);
}

static int fast_accepts(ev_fj *p, const char *text)
{
	size_t n;
	return ev_fj_parse(p, text, strlen(text), &n) != NULL;
}

static void test_edges(void)
{
	ev_fj *p = ev_fj_new();
	/* Each is either read as jansson reads it, or left to jansson. */
	const char *texts[] = {"{}",
			       "[]",
			       " {} ",
			       "{} x",
			       "-0",
			       "-0.0",
			       "0",
			       "1.0",
			       "1E2",
			       "1e-400",
			       "1e400",
			       "-1e400",
			       "9223372036854775807",
			       "9223372036854775808",
			       "-9223372036854775808",
			       "-9223372036854775809",
			       "18446744073709551615",
			       "18446744073709551616",
			       "01",
			       "1.",
			       ".5",
			       "tru",
			       "nul",
			       "\"\\u0000\"",
			       "{\"\\u0000\":1}",
			       "\"\\ud800\"",
			       "\"\\udc00\"",
			       "\"\\ud83d\\ude00\"",
			       "\"\xff\"",
			       "\"\xc3\xa9\"",
			       "[1,2,]",
			       "{\"a\":1,}",
			       "{\"a\":1,\"a\":2}",
			       "{\"a\":{\"b\":1,\"b\":2}}",
			       "{\"a\\u0062\":1,\"ab\":2}",
			       "\"\t\"",
			       "[[[[[[[[[[1]]]]]]]]]]",
			       "{\"a\":[{\"b\":null,\"c\":true}],\"d\":false}",
			       "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"",
			       "123456789012345678901234567890",
			       "0.30000000000000004",
			       "5e-324",
			       "2.2250738585072014e-308",
			       "",
			       " ",
			       "{",
			       "{\"k\":\"v\"}\n",
			       "\xef\xbb\xbf{}"};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		differ(p, texts[i], strlen(texts[i]));
	/* What jansson reads differently or refuses is left to it. */
	CHECK(!fast_accepts(p, "9223372036854775808"));
	CHECK(!fast_accepts(p, "\"\\u0000\""));
	CHECK(!fast_accepts(p, "{\"\\u0000\":1}"));
	CHECK(!fast_accepts(p, "[\"\\\\\",\"\\u0000\"]"));
	CHECK(fast_accepts(p, "\"\\\\u0000\"")); /* an escaped backslash, then u0000 */
	differ(p, "\"\\\\u0000\"", 9);
	CHECK(!fast_accepts(p, "{\"a\":1,\"a\":2}"));
	CHECK(!fast_accepts(p, "[{\"x\":{\"b\":1,\"b\":2}}]"));
	CHECK(!fast_accepts(p, "{\"a\\u0062\":1,\"ab\":2}"));
	/* A large object's duplicate is found too (sorted, not pair by pair). */
	char big[2048] = "{";
	for (int i = 0; i < 40; i++)
		snprintf(big + strlen(big), sizeof(big) - strlen(big), "%s\"k%d\":%d", i ? "," : "",
			 i, i);
	strcat(big, "}");
	CHECK(fast_accepts(p, big));
	differ(p, big, strlen(big));
	big[strlen(big) - 1] = '\0';
	strcat(big, ",\"k17\":0}");
	CHECK(!fast_accepts(p, big));
	/* Members are found by their unescaped key; a record's nodes are in document order. */
	const char *rec =
		"{\"ts\":1732400000000,\"us\\u0065r\":\"\\u00e9\",\"v\":[1,2.5],\"n\":null}";
	size_t n;
	const ev_fj_node *nd = ev_fj_parse(p, rec, strlen(rec), &n);
	CHECK(nd && n == 7 && nd[0].type == EV_FJ_OBJECT && nd[0].len == 4 && nd[0].end == 7);
	long ts = nd ? ev_fj_member(nd, 0, "ts", 2) : -1;
	long user = nd ? ev_fj_member(nd, 0, "user", 4) : -1;
	long v = nd ? ev_fj_member(nd, 0, "v", 1) : -1;
	CHECK(ts == 1 && nd[ts].type == EV_FJ_INT && nd[ts].num.i == 1732400000000);
	CHECK(user == 2 && nd[user].type == EV_FJ_STRING && nd[user].len == 2 &&
	      strcmp(nd[user].str, "\xc3\xa9") == 0);
	CHECK(v == 3 && nd[v].type == EV_FJ_ARRAY && nd[v].len == 2 && nd[v].end == 6 &&
	      nd[5].type == EV_FJ_REAL && nd[5].num.d == 2.5);
	CHECK(nd && ev_fj_member(nd, 0, "nope", 4) == -1 && ev_fj_member(nd, 1, "ts", 2) == -1);
	ev_fj_free(p);
}

/* A corpus file whole, and each of its lines. */
static void differ_file(void *arg, char *buf, size_t len)
{
	ev_fj *p = arg;
	differ(p, buf, len);
	for (size_t s = 0, e; s < len; s = e + 1) {
		const char *nl = memchr(buf + s, '\n', len - s);
		e = nl ? (size_t)(nl - buf) : len;
		differ(p, buf + s, e - s);
	}
}

static void test_corpus(void)
{
	ev_fj *p = ev_fj_new();
	int files = test_each_file("tests/fuzz/corpus/validate", differ_file, p) +
		    test_each_file("tests/fuzz/corpus/schema", differ_file, p);
	CHECK(files > 100);
	ev_fj_free(p);
}

/* Records like evgen's, whole (all accepted) and with bytes changed (each accepted one read
 * as jansson reads it). */
static void test_mutations(void)
{
	ev_fj *p = ev_fj_new();
	ev_rng rng;
	ev_rng_seed(&rng, 42);
	const char alphabet[] = "{}[]\",:\\u0123456789abcdefEe.-+ \ttrnl\xc3\xa9\xff";
	char rec[512];
	int whole = 0;
	for (int i = 0; i < 20000; i++) {
		int len = snprintf(rec, sizeof(rec),
				   "{\"event_id\":\"e-%u\",\"ts\":%lld,\"event_type\":\"t%u\","
				   "\"user_id\":\"u\\u00e9%u\",\"value\":%d.%02u,\"n\":[%d,{\"x\":"
				   "null,\"y\":true}],\"tags\":{\"a\":\"b\"}}",
				   (unsigned)ev_rng_next(&rng), 1732400000000ll + i, i % 7, i % 100,
				   i - 10000, i % 100, -i);
		int before = accepted;
		differ(p, rec, (size_t)len);
		whole += accepted > before;
		for (int m = 0; m < 4; m++) {
			char mut[512];
			memcpy(mut, rec, (size_t)len);
			int k = 1 + (int)(ev_rng_next(&rng) % 3);
			for (int j = 0; j < k; j++)
				mut[ev_rng_next(&rng) % (uint64_t)len] =
					alphabet[ev_rng_next(&rng) % (sizeof(alphabet) - 1)];
			differ(p, mut, (size_t)len);
		}
	}
	CHECK(whole == 20000);
	ev_fj_free(p);
}

int main(void)
{
	RUN(test_edges);
	RUN(test_corpus);
	RUN(test_mutations);
	test_current = "depth";
	CHECK(depth_differs == 0);
	fprintf(stderr, "fastjson: %d texts, %d accepted, each read as jansson reads it\n", checked,
		accepted);
	return test_report();
}
