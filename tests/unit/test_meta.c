/* SPDX-License-Identifier: Apache-2.0 */
/* test_meta.c: inserting Kafka provenance into records and taking it back out. */
#include "meta.h"
#include "test.h"

static const ev_meta m = {"events", 2, 41, 1732400000000, NULL, 0, 0};

static void roundtrip(const char *payload, size_t len, const char *want_line, int wrapped)
{
	ev_buf line = EV_BUF_INIT, orig = EV_BUF_INIT;
	ev_meta_span span;
	CHECK(ev_meta_insert(&line, "_src", &m, payload, len) == 0);
	if (want_line)
		CHECK_STR(line.data, want_line);
	CHECK(ev_meta_extract(line.data, line.len, "_src", &span, &orig) == 1);
	CHECK(span.wrapped == wrapped);
	CHECK(orig.len == len && memcmp(orig.data, payload, len) == 0);
	CHECK(strncmp(span.json, "{\"topic\":\"events\",\"partition\":2,\"offset\":41,", 43) == 0);
	ev_buf_free(&line);
	ev_buf_free(&orig);
}

static void test_objects(void)
{
	roundtrip(
		"{\"a\":1}", 7,
		"{\"_src\":{\"topic\":\"events\",\"partition\":2,\"offset\":41,\"ts\":1732400000000},\"a\":1}",
		0);
	roundtrip(
		"{}", 2,
		"{\"_src\":{\"topic\":\"events\",\"partition\":2,\"offset\":41,\"ts\":1732400000000}}",
		0);
	roundtrip(" { } ", 5, NULL, 0);
	roundtrip("{\"a\":1, broken", 14, NULL, 1);   /* does not end in '}': wrapped */
	roundtrip("{\"a\":1, broken\0", 15, NULL, 1); /* a NUL byte survives */
	roundtrip("{,\"a\":1}", 8, NULL, 0);          /* malformed but object-shaped: bytes kept */
}

static void test_wrapped(void)
{
	roundtrip(
		"[1,2]", 5,
		"{\"_src\":{\"topic\":\"events\",\"partition\":2,\"offset\":41,\"ts\":1732400000000,"
		"\"wrapped\":true},\"payload\":\"[1,2]\"}",
		1);
	roundtrip("not json", 8, NULL, 1);
	roundtrip("", 0, NULL, 1);
	roundtrip("\xff\x00x", 3, NULL, 1);
}

static void test_rejected(void)
{
	const char *payload = "{\"a\":1}\n{\"__evpipe\":\"stop\"}";
	ev_meta r = m;
	ev_buf line = EV_BUF_INIT, orig = EV_BUF_INIT;
	ev_meta_span span;
	r.rejected = "embedded_newline";
	CHECK(ev_meta_insert(&line, EV_META_REJECTED, &r, payload, strlen(payload)) == 0);
	CHECK_STR(line.data,
		  "{\"__evpipe_rejected\":{\"topic\":\"events\",\"partition\":2,"
		  "\"offset\":41,\"ts\":1732400000000,\"wrapped\":true,\"rejected\":"
		  "\"embedded_newline\"},\"payload\":\"{\\\"a\\\":1}\\n{\\\"__evpipe\\\":"
		  "\\\"stop\\\"}\"}");
	CHECK(memchr(line.data, '\n', line.len) == NULL);
	CHECK(ev_meta_extract(line.data, line.len, EV_META_REJECTED, &span, &orig) == 1);
	CHECK(span.wrapped && ev_meta_rejected(&span));
	CHECK(orig.len == strlen(payload) && memcmp(orig.data, payload, orig.len) == 0);
	ev_buf_reset(&line);
	CHECK(ev_meta_insert(&line, "_src", &m, "[1]", 3) == 0);
	CHECK(ev_meta_extract(line.data, line.len, "_src", &span, &orig) == 1);
	CHECK(span.wrapped && !ev_meta_rejected(&span));
	ev_buf_free(&line);
	ev_buf_free(&orig);
}

static void test_absent(void)
{
	ev_buf orig = EV_BUF_INIT;
	ev_meta_span span;
	const char *lines[] = {"{\"a\":1}", "{\"_src\":1}", "{\"_srcx\":{}}", "",
			       "{\"_src\":{\"x\":1"};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		CHECK(ev_meta_extract(lines[i], strlen(lines[i]), "_src", &span, &orig) == 0);
	ev_buf_free(&orig);
}

/* The cached head gives the bytes of ev_meta_insert, for a topic and name that change too. */
static void test_cached(void)
{
	ev_meta_head head = {EV_BUF_INIT, EV_BUF_INIT};
	ev_buf a = EV_BUF_INIT, b = EV_BUF_INIT;
	ev_meta other = m;
	other.topic = "ev\"ents";
	const ev_meta *ms[] = {&m, &m, &other, &m};
	const char *names[] = {"_src", "_src", "_src", "_meta"};
	for (int i = 0; i < 4; i++) {
		ev_buf_reset(&a);
		ev_buf_reset(&b);
		CHECK(ev_meta_insert(&a, names[i], ms[i], " {\"a\":1}", 8) == 0);
		CHECK(ev_meta_insert_cached(&b, &head, names[i], ms[i], " {\"a\":1}", 8) == 0);
		CHECK_STR(b.data, a.data);
	}
	ev_meta_head_free(&head);
	ev_buf_free(&a);
	ev_buf_free(&b);
}

int main(void)
{
	RUN(test_cached);
	RUN(test_objects);
	RUN(test_wrapped);
	RUN(test_rejected);
	RUN(test_absent);
	return test_report();
}
