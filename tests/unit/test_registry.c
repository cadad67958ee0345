/* SPDX-License-Identifier: Apache-2.0 */
/* test_registry.c: the registry's wire format, contract references, the schema id in the
 * provenance, and the registry client when the registry cannot be reached (its disk cache). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "ckstore.h"
#include "meta.h"
#include "registry.h"
#include "sha256.h"
#include "test.h"

static void test_frame(void)
{
	ev_buf b = EV_BUF_INIT;
	int32_t id = 0;
	CHECK(ev_registry_frame(&b, 0x01020A0B, "{}", 2) == 0);
	CHECK(b.len == 7 && memcmp(b.data, "\0\x01\x02\x0a\x0b{}", 7) == 0);
	CHECK(ev_registry_unframe(b.data, b.len, &id) == 1 && id == 0x01020A0B);
	CHECK(ev_registry_unframe("{\"a\":1}", 7, &id) == 0);
	CHECK(ev_registry_unframe("\0\0\0", 3, &id) == 0); /* too short for a frame */
	ev_buf_free(&b);
}

static void test_parse_ref(void)
{
	char s[64];
	int v = -1;
	CHECK(ev_registry_parse_ref("contracts/event.schema.json", s, sizeof(s), &v) == 0);
	CHECK(ev_registry_parse_ref("registry:events-value", s, sizeof(s), &v) == 1);
	CHECK_STR(s, "events-value");
	CHECK(v == 0);
	CHECK(ev_registry_parse_ref("registry:events@latest", s, sizeof(s), &v) == 1 && v == 0);
	CHECK(ev_registry_parse_ref("registry:a@b@3", s, sizeof(s), &v) == 1 && v == 3);
	CHECK_STR(s, "a@b");
	CHECK(ev_registry_parse_ref("registry:", s, sizeof(s), &v) == -1);
	CHECK(ev_registry_parse_ref("registry:events@0", s, sizeof(s), &v) == -1);
	CHECK(ev_registry_parse_ref("registry:events@x", s, sizeof(s), &v) == -1);
}

static void test_meta_schema_id(void)
{
	ev_meta m = {"events", 2, 41, 1732400000000, NULL, 1, 70000};
	ev_buf line = EV_BUF_INIT, orig = EV_BUF_INIT;
	ev_meta_span span;
	int32_t id = 0;
	CHECK(ev_meta_insert(&line, "_src", &m, "{\"a\":1}", 7) == 0);
	CHECK_STR(line.data, "{\"_src\":{\"topic\":\"events\",\"partition\":2,\"offset\":41,\"ts\":"
			     "1732400000000,\"schema_id\":70000},\"a\":1}");
	CHECK(ev_meta_schema_id(line.data, line.len, "_src", &id) == 1 && id == 70000);
	CHECK(ev_meta_extract(line.data, line.len, "_src", &span, &orig) == 1);
	CHECK(orig.len == 7 && memcmp(orig.data, "{\"a\":1}", 7) == 0);
	ev_buf_reset(&orig);
	CHECK(ev_meta_drop_schema_id(&orig, line.data, line.len, "_src") == 1);
	CHECK(ev_buf_cstr(&orig) != NULL);
	CHECK_STR(orig.data, "{\"_src\":{\"topic\":\"events\",\"partition\":2,\"offset\":41,\"ts\":"
			     "1732400000000},\"a\":1}");
	ev_buf_reset(&orig);
	m.has_schema_id = 0;
	ev_buf_reset(&line);
	CHECK(ev_meta_insert(&line, "_src", &m, "{\"schema_id\":5}", 15) == 0);
	CHECK(ev_meta_schema_id(line.data, line.len, "_src", &id) == 0); /* the payload's own */
	CHECK(ev_meta_drop_schema_id(&orig, line.data, line.len, "_src") == 0 && orig.len == 0);
	CHECK(ev_meta_schema_id("{\"a\":1}", 7, "_src", &id) == 0);
	/* Underscores before it (the key is found by its own); the first one counts; one that
	 * ends at the provenance's '}' has no value. */
	static const char *const lines[] = {
		"{\"_src\":{\"topic\":\"my_events_\",\"ts\":1,\"schema_id\":7},\"a\":1}",
		"{\"_src\":{\"x_schema_id\":1,\"schema_id\":7,\"schema_id\":8},\"a\":1}",
		"{\"_src\":{\"topic\":\"t\",\"schema_id\":},\"a\":1}",
		"{\"_src\":{\"schema_id\":7},\"a\":1}",
	};
	static const int want[] = {7, 7, 0, 0};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		id = 0;
		int found = ev_meta_schema_id(lines[i], strlen(lines[i]), "_src", &id);
		CHECK(found == (want[i] != 0) && id == want[i]);
	}
	ev_buf_free(&line);
	ev_buf_free(&orig);
}

/* A registry that does not answer: the cached copy (hash checked), or a clear error. */
static void test_cache_when_down(void)
{
	char dir[] = "/tmp/test_registry.XXXXXX", err[512], path[300], hex[65];
	CHECK(mkdtemp(dir) != NULL);
	ev_registry *r = ev_registry_new("http://127.0.0.1:1", dir, 2000, err, sizeof(err));
	CHECK(r != NULL);
	ev_reg_schema s = {0};
	CHECK(ev_registry_fetch(r, "ev/t", 2, 1, &s, err, sizeof(err)) == EV_REG_UNAVAILABLE);
	CHECK(strstr(err, "no cached copy of 'ev/t' version 2") != NULL);
	const char *text = "{\"type\":\"object\"}";
	ev_sha256_hex(text, strlen(text), hex);
	snprintf(path, sizeof(path), "%s/ev%%2Ft@2.json", dir);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	fprintf(f,
		"{\"subject\":\"ev/t\",\"version\":2,\"id\":9,\"sha256\":\"%s\",\"schema\":"
		"\"{\\\"type\\\":\\\"object\\\"}\"}",
		hex);
	fclose(f);
	CHECK(ev_registry_fetch(r, "ev/t", 2, 0, &s, err, sizeof(err)) == EV_REG_UNAVAILABLE);
	CHECK(ev_registry_fetch(r, "ev/t", 2, 1, &s, err, sizeof(err)) == EV_REG_OK);
	CHECK(s.from_cache && s.id == 9 && s.version == 2 && json_is_object(s.doc));
	CHECK_STR(s.sha256, hex);
	ev_reg_schema_clear(&s);
	f = fopen(path, "w"); /* damaged: the hash no longer matches */
	fprintf(f,
		"{\"subject\":\"ev/t\",\"version\":2,\"id\":9,\"sha256\":\"%s\",\"schema\":"
		"\"{}\"}",
		hex);
	fclose(f);
	CHECK(ev_registry_fetch(r, "ev/t", 2, 1, &s, err, sizeof(err)) == EV_REG_ERROR);
	CHECK(strstr(err, "damaged") != NULL);
	unlink(path);
	rmdir(dir);
	ev_registry_free(r);
}

int main(void)
{
	RUN(test_frame);
	RUN(test_parse_ref);
	RUN(test_meta_schema_id);
	RUN(test_cache_when_down);
	return test_report();
}
