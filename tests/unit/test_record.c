/* SPDX-License-Identifier: Apache-2.0 */
/* test_record.c: what windows read from a record, by the fast parser and by jansson alone:
 * the same event time, partition, key and values, or the same dead letter. */
#include <stdlib.h>

#include "record.h"
#include "test.h"
#include "window.h"

static const char *const keys[] = {"k", "n"};

/* One reading as text, to compare the two readers. */
static void describe(ev_buf *out, int rc, const ev_record *r, const ev_record_error *why,
		     size_t naggs)
{
	ev_buf_reset(out);
	if (rc != 0) {
		ev_buf_printf(out, "%d %s %s %s", rc, rc > 0 ? why->reason : "",
			      rc > 0 ? why->path : "", rc > 0 ? why->message : "");
		return;
	}
	ev_buf_printf(out, "ts=%lld part=%llu key=%.*s", (long long)r->ts,
		      (unsigned long long)r->partition, (int)r->keylen, r->key);
	for (size_t i = 0; i < naggs; i++) {
		const ev_agg_value *v = &r->values[i];
		ev_buf_printf(out, " [%d %lld %.17g %.*s]", (int)v->kind, (long long)v->i, v->d,
			      (int)v->text_len, v->text ? v->text : "");
	}
}

static void test_paths_agree(void)
{
	char err[256];
	ev_agg_spec *aggs;
	size_t naggs;
	CHECK(ev_agg_parse("count,sum:v,uniq:u,first:u,last:v", &aggs, &naggs, err, sizeof(err)) ==
	      0);
	ev_record_opts o = {"ts", keys, 2, aggs, naggs, "_src"};
	ev_record_reader *fast = ev_record_reader_new(&o);
	setenv("EVPIPE_FASTJSON", "0", 1);
	ev_record_reader *ref = ev_record_reader_new(&o);
	unsetenv("EVPIPE_FASTJSON");
	CHECK(fast && ref);
	static const char *const lines[] = {
		"{\"ts\":1000,\"k\":\"a\",\"n\":1,\"v\":2.5,\"u\":\"x\"}",
		"{\"ts\":\"2024-11-24T00:00:01.5Z\",\"k\":\"a\",\"n\":null,\"v\":3,\"u\":[1,{\"b\":2}]}",
		"{\"_src\":{\"topic\":\"events\",\"partition\":3,\"offset\":7},\"ts\":5,\"k\":\"b\","
		"\"n\":true}",
		"{\"_src\":{\"topic\":\"events\",\"partition\":\"3\"},\"ts\":5,\"k\":\"b\",\"n\":0}",
		"{\"ts\":5,\"k\":{\"nested\":[1,2]},\"n\":0,\"v\":null}",
		"{\"ts\":5,\"k\":\"a\",\"n\":0,\"v\":\"12\"}",
		"{\"ts\":5,\"k\":\"a\",\"v\":1}",
		"{\"k\":\"a\",\"n\":1}",
		"{\"ts\":1.5,\"k\":\"a\",\"n\":1}",
		"{\"ts\":\"yesterday\",\"k\":\"a\",\"n\":1}",
		"{\"ts\":5,\"k\":\"a\",\"n\":1,\"v\":1e400}",
		"{\"ts\":5,\"ts\":6,\"k\":\"a\",\"n\":1}",
		"{\"ts\":99999999999999999999,\"k\":\"a\",\"n\":1}",
		"[1,2]",
		"{\"ts\":5,",
		"{\"ts\":5,\"k\":\"\\u00e9\\u0000\",\"n\":1.0}",
	};
	ev_buf a = EV_BUF_INIT, b = EV_BUF_INIT;
	for (size_t i = 0; fast && ref && i < sizeof(lines) / sizeof(lines[0]); i++) {
		ev_record ra, rb;
		ev_record_error wa, wb;
		int ca = ev_record_read(fast, lines[i], strlen(lines[i]), &ra, &wa);
		describe(&a, ca, &ra, &wa, naggs);
		int cb = ev_record_read(ref, lines[i], strlen(lines[i]), &rb, &wb);
		describe(&b, cb, &rb, &wb, naggs);
		CHECK_STR(ev_buf_cstr(&a), ev_buf_cstr(&b));
	}
	/* the readings themselves */
	ev_record r;
	ev_record_error why;
	CHECK(ev_record_read(fast, lines[2], strlen(lines[2]), &r, &why) == 0 &&
	      r.partition == ev_window_partition("events", 6, 3) && r.ts == 5);
	CHECK(ev_record_read(fast, lines[0], strlen(lines[0]), &r, &why) == 0 && r.partition == 0);
	if (r.key)
		CHECK_STR(r.key, "\"k\":\"a\",\"n\":1");
	CHECK(ev_record_read(fast, lines[5], strlen(lines[5]), &r, &why) == 1);
	CHECK_STR(why.reason, "bad_value");
	CHECK_STR(why.path, "/v");
	CHECK(ev_record_read(fast, lines[6], strlen(lines[6]), &r, &why) == 1);
	CHECK_STR(why.reason, "missing_key");
	CHECK_STR(why.path, "/n");
	CHECK(ev_record_read(fast, lines[13], strlen(lines[13]), &r, &why) == 1);
	CHECK_STR(why.reason, "parse");
	ev_buf_free(&a);
	ev_buf_free(&b);
	ev_record_reader_free(fast);
	ev_record_reader_free(ref);
	ev_agg_specs_free(aggs, naggs);
}

int main(void)
{
	RUN(test_paths_agree);
	return test_report();
}
