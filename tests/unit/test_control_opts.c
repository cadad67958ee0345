/* SPDX-License-Identifier: Apache-2.0 */
/* test_control_opts.c: control-line detection and parsing; option value parsing. */
#include <stdint.h>

#include "control.h"
#include "opts.h"
#include "test.h"

static void test_control_is(void)
{
	const char *yes[] = {"{\"__evpipe\":\"watermark\",\"ts\":1}",
			     "{ \"__evpipe\" : \"barrier\"}", "{\"__evpipe\":\"future-kind\"}"};
	const char *no[] = {"{\"event_id\":\"__evpipe\"}",
			    "{\"x\":1,\"__evpipe\":\"watermark\"}",
			    "[\"__evpipe\"]",
			    "",
			    "{",
			    "{\"__evpipe\"",
			    "{\"__evpipe_x\":1}"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		CHECK(ev_control_is(yes[i], strlen(yes[i])));
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		CHECK(!ev_control_is(no[i], strlen(no[i])));
}

static void test_control_parse(void)
{
	ev_control c;
	char err[256];
	const char *wm = "{\"__evpipe\":\"watermark\",\"ts\":1732400000000}";
	CHECK(ev_control_parse(wm, strlen(wm), &c, err, sizeof(err)) == 0);
	CHECK(c.type == EV_CTL_WATERMARK && c.ts == 1732400000000);
	const char *b = "{\"__evpipe\":\"barrier\",\"id\":42,\"ts\":7}";
	CHECK(ev_control_parse(b, strlen(b), &c, err, sizeof(err)) == 0);
	CHECK(c.type == EV_CTL_BARRIER && c.id == 42 && c.ts == 7);
	const char *other = "{\"__evpipe\":\"something-new\",\"x\":1}";
	CHECK(ev_control_parse(other, strlen(other), &c, err, sizeof(err)) == 0);
	CHECK(c.type == EV_CTL_OTHER);
	const char *bad[] = {"{\"__evpipe\":\"watermark\"}", "{\"__evpipe\":\"barrier\",\"ts\":1}",
			     "{\"__evpipe\":1}", "{\"__evpipe\":\"watermark\",\"ts\":1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(ev_control_parse(bad[i], strlen(bad[i]), &c, err, sizeof(err)) < 0);

	ev_buf out = EV_BUF_INIT;
	ev_control w = {EV_CTL_WATERMARK, 0, 99};
	ev_control_format(&out, &w);
	CHECK_STR(out.data, "{\"__evpipe\":\"watermark\",\"ts\":99}");
	CHECK(ev_control_is(out.data, out.len));
	ev_buf_reset(&out);
	ev_control bar = {EV_CTL_BARRIER, 3, 5};
	ev_control_format(&out, &bar);
	CHECK_STR(out.data, "{\"__evpipe\":\"barrier\",\"id\":3,\"ts\":5}");
	ev_buf_free(&out);
}

static void test_control_assignment(void)
{
	ev_control c;
	ev_control_part *parts;
	size_t n;
	char err[256];
	const char *a = "{\"__evpipe\":\"assign\",\"partitions\":[{\"topic\":\"ev.x-1_\","
			"\"partition\":3,\"offset\":42},{\"topic\":\"b\",\"partition\":0}]}";
	CHECK(ev_control_parse(a, strlen(a), &c, err, sizeof(err)) == 0);
	CHECK(c.type == EV_CTL_ASSIGN);
	CHECK(ev_control_partitions(a, strlen(a), &parts, &n, err, sizeof(err)) == 0 && n == 2);
	CHECK_STR(parts[0].topic, "ev.x-1_");
	CHECK(parts[0].partition == 3 && parts[0].offset == 42);
	CHECK_STR(parts[1].topic, "b");
	CHECK(parts[1].partition == 0 && parts[1].offset == -1);

	ev_buf out = EV_BUF_INIT;
	CHECK(ev_control_format_parts(&out, EV_CTL_REVOKE, parts, n) == 0);
	CHECK_STR(out.data, "{\"__evpipe\":\"revoke\",\"partitions\":[{\"topic\":\"ev.x-1_\","
			    "\"partition\":3,\"offset\":42},{\"topic\":\"b\",\"partition\":0}]}");
	ev_control_parts_free(parts, n);
	ev_buf_reset(&out);
	ev_control none = {EV_CTL_REVOKE, 0, 0};
	CHECK(ev_control_format(&out, &none) == 0);
	CHECK_STR(out.data, "{\"__evpipe\":\"revoke\",\"partitions\":[]}");
	ev_buf_reset(&out);
	ev_control_part slash = {"a/b", 0, -1};
	CHECK(ev_control_format_parts(&out, EV_CTL_ASSIGN, &slash, 1) < 0);
	CHECK(ev_control_format_parts(&out, EV_CTL_BARRIER, &slash, 1) < 0);
	ev_buf_free(&out);

	const char *bad[] = {
		"{\"__evpipe\":\"assign\"}",
		"{\"__evpipe\":\"revoke\",\"topic\":\"events\",\"partitions\":[0,1]}",
		"{\"__evpipe\":\"assign\",\"partitions\":[{\"topic\":\"\",\"partition\":0}]}",
		"{\"__evpipe\":\"assign\",\"partitions\":[{\"topic\":\"../x\",\"partition\":0}]}",
		"{\"__evpipe\":\"assign\",\"partitions\":[{\"topic\":\"a\\\"b\",\"partition\":0}]}",
		"{\"__evpipe\":\"assign\",\"partitions\":[{\"topic\":\"a\",\"partition\":-1}]}",
		"{\"__evpipe\":\"assign\",\"partitions\":[{\"topic\":\"a\",\"partition\":"
		"2147483648}]}",
		"{\"__evpipe\":\"revoke\",\"partitions\":[{\"topic\":\"a\",\"partition\":1,"
		"\"offset\":-2}]}",
		"{\"__evpipe\":\"revoke\",\"partitions\":[{\"topic\":\"a\",\"partition\":1,"
		"\"offset\":\"5\"}]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(ev_control_parse(bad[i], strlen(bad[i]), &c, err, sizeof(err)) < 0);
		CHECK(ev_control_partitions(bad[i], strlen(bad[i]), &parts, &n, err, sizeof(err)) <
			      0 &&
		      parts == NULL);
	}
	const char *wm = "{\"__evpipe\":\"watermark\",\"ts\":1}";
	CHECK(ev_control_partitions(wm, strlen(wm), &parts, &n, err, sizeof(err)) < 0);
}

/* A barrier with the coordinator's partitions and offsets (ADR 0025, 5.2); one without. */
static void test_control_barrier_parts(void)
{
	ev_control c;
	ev_control_part *parts, two[] = {{"events", 0, 1200}, {"events", 5, 7}};
	size_t n;
	char err[256];
	ev_buf out = EV_BUF_INIT;
	CHECK(ev_control_format_barrier(&out, 42, 1000, two, 2) == 0);
	CHECK_STR(out.data, "{\"__evpipe\":\"barrier\",\"id\":42,\"ts\":1000,\"partitions\":["
			    "{\"topic\":\"events\",\"partition\":0,\"offset\":1200},"
			    "{\"topic\":\"events\",\"partition\":5,\"offset\":7}]}");
	CHECK(ev_control_parse(out.data, out.len, &c, err, sizeof(err)) == 0);
	CHECK(c.type == EV_CTL_BARRIER && c.id == 42 && c.ts == 1000);
	CHECK(ev_control_partitions(out.data, out.len, &parts, &n, err, sizeof(err)) == 0 &&
	      n == 2);
	CHECK(n == 2 && parts[1].partition == 5 && parts[1].offset == 7);
	ev_control_parts_free(parts, n);
	const char *plain = "{\"__evpipe\":\"barrier\",\"id\":1,\"ts\":1}";
	CHECK(ev_control_partitions(plain, strlen(plain), &parts, &n, err, sizeof(err)) == 0 &&
	      n == 0);
	ev_control_parts_free(parts, n);
	const char *bad = "{\"__evpipe\":\"barrier\",\"id\":1,\"ts\":1,\"partitions\":[{"
			  "\"topic\":\"../x\",\"partition\":0}]}";
	CHECK(ev_control_parse(bad, strlen(bad), &c, err, sizeof(err)) < 0);
	ev_control_part slash = {"a/b", 0, 1};
	ev_buf_reset(&out);
	CHECK(ev_control_format_barrier(&out, 1, 1, &slash, 1) < 0);
	ev_buf_free(&out);
}

static void test_payload_unsafe(void)
{
	const char *nl = "{\"a\":1}\n{\"__evpipe\":\"watermark\",\"ts\":4102444800000}";
	CHECK_STR(ev_control_payload_unsafe(nl, strlen(nl)), "embedded_newline");
	CHECK_STR(ev_control_payload_unsafe("{\"a\":1}\r", 8), "embedded_newline");
	const char *ctl = " \t{ \"__evpipe\" : \"stop\"}";
	CHECK_STR(ev_control_payload_unsafe(ctl, strlen(ctl)), "reserved");
	const char *rej = "{\"__evpipe_rejected\":{}}";
	CHECK_STR(ev_control_payload_unsafe(rej, strlen(rej)), "reserved");
	/* Registry-framed, the id 266 holding a newline byte: the frame is the reason. */
	CHECK_STR(ev_control_payload_unsafe("\0\0\0\1\n{}", 7), "schema_id");
	CHECK_STR(ev_control_payload_unsafe("\0\0\0\0\x29{\"a\":1}", 12), "schema_id");
	CHECK(ev_control_payload_unsafe("\0\0\0\0", 4) == NULL); /* too short to be framed */
	const char *ok[] = {"{\"a\":\"__evpipe\"}", "[{\"__evpipe\":1}]", "x", ""};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		CHECK(ev_control_payload_unsafe(ok[i], strlen(ok[i])) == NULL);
	CHECK(ev_control_payload_unsafe(NULL, 0) == NULL);
}

/* Check line against s at now: 0 accepted, -1 refused. */
static int seq_check(ev_control_seq *s, const char *line, int64_t now)
{
	ev_control c;
	char err[512];
	return ev_control_check(s, line, strlen(line), now, &c, err, sizeof(err));
}

static void test_control_seq(void)
{
	const int64_t now = 1732400000000;
	ev_control_seq s;
	ev_control_seq_init(&s, 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"barrier\",\"id\":-1,\"ts\":0}", now) < 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"barrier\",\"id\":0,\"ts\":0}", now) < 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"barrier\",\"id\":999999999999,\"ts\":0}", now) < 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"barrier\",\"id\":57,\"ts\":0}", now) == 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"barrier\",\"id\":57,\"ts\":0}", now) < 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"barrier\",\"id\":56,\"ts\":0}", now) < 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"barrier\",\"id\":60,\"ts\":0}", now) == 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"barrier\",\"id\":2000061,\"ts\":0}", now) < 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"barrier\",\"id\":61,\"ts\":0}", now) == 0);

	ev_control_seq_init(&s, 7); /* restored from checkpoint 7 */
	CHECK(seq_check(&s, "{\"__evpipe\":\"barrier\",\"id\":7,\"ts\":0}", now) < 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"barrier\",\"id\":5000000,\"ts\":0}", now) == 0);

	CHECK(seq_check(&s, "{\"__evpipe\":\"watermark\",\"ts\":1732400000000}", now) == 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"watermark\",\"ts\":1}", now) == 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"watermark\",\"ts\":4102444800000}", now) < 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"watermark\",\"ts\":9223372036854775807}", now) == 0);
	s.future_ms = 1000;
	CHECK(seq_check(&s, "{\"__evpipe\":\"watermark\",\"ts\":1732400001000}", now) == 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"watermark\",\"ts\":1732400001001}", now) < 0);

	CHECK(seq_check(&s, "{\"__evpipe\":\"future-kind\"}", now) < 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"watermark\"}", now) < 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"stop\"}", now) == 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"end\"}", now) == 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"revoke\",\"partitions\":[]}", now) == 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"revoke\"}", now) < 0);

	/* committed: after its barrier in this run, once, in order (ADR 0021) */
	ev_control_seq_init(&s, 7);
	CHECK(seq_check(&s, "{\"__evpipe\":\"committed\",\"id\":7}", now) < 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"barrier\",\"id\":8,\"ts\":0}", now) == 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"committed\",\"id\":9}", now) < 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"committed\"}", now) < 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"committed\",\"id\":\"8\"}", now) < 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"committed\",\"id\":8}", now) == 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"committed\",\"id\":8}", now) < 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"barrier\",\"id\":10,\"ts\":0}", now) == 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"committed\",\"id\":7}", now) < 0);
	CHECK(seq_check(&s, "{\"__evpipe\":\"committed\",\"id\":10}", now) == 0);
	ev_control c = {EV_CTL_COMMITTED, 42, 0};
	ev_buf b = EV_BUF_INIT;
	CHECK(ev_control_format(&b, &c) == 0);
	CHECK(strcmp(ev_buf_cstr(&b), "{\"__evpipe\":\"committed\",\"id\":42}") == 0);
	ev_buf_free(&b);
}

static void test_durations(void)
{
	int64_t ms;
	CHECK(ev_opt_duration_ms("250ms", 1000, &ms) == 0 && ms == 250);
	CHECK(ev_opt_duration_ms("5s", 1000, &ms) == 0 && ms == 5000);
	CHECK(ev_opt_duration_ms("1m", 1000, &ms) == 0 && ms == 60000);
	CHECK(ev_opt_duration_ms("1.5h", 1000, &ms) == 0 && ms == 5400000);
	CHECK(ev_opt_duration_ms("2", 1000, &ms) == 0 && ms == 2000);
	CHECK(ev_opt_duration_ms("1d", 1000, &ms) == 0 && ms == 86400000);
	CHECK(ev_opt_duration_ms("-1s", 1000, &ms) < 0);
	CHECK(ev_opt_duration_ms("5x", 1000, &ms) < 0);
	CHECK(ev_opt_duration_ms("", 1000, &ms) < 0);
}

static void test_sizes(void)
{
	uint64_t v;
	CHECK(ev_opt_size("4096", &v) == 0 && v == 4096);
	CHECK(ev_opt_size("64KiB", &v) == 0 && v == 65536);
	CHECK(ev_opt_size("1MiB", &v) == 0 && v == 1048576);
	CHECK(ev_opt_size("128M", &v) == 0 && v == 134217728);
	CHECK(ev_opt_size("2GiB", &v) == 0 && v == 2147483648u);
	CHECK(ev_opt_size("-1", &v) < 0);
	CHECK(ev_opt_size("1 MiB", &v) < 0);
	CHECK(ev_opt_size("1TiB", &v) < 0);
}

static void test_ints(void)
{
	int64_t v;
	CHECK(ev_opt_int("42", 0, 100, &v) == 0 && v == 42);
	CHECK(ev_opt_int("101", 0, 100, &v) < 0);
	CHECK(ev_opt_int("4x", 0, 100, &v) < 0);
	CHECK(ev_opt_int("99999999999999999999", 0, INT64_MAX, &v) < 0);
}

int main(void)
{
	RUN(test_control_is);
	RUN(test_control_parse);
	RUN(test_control_assignment);
	RUN(test_control_barrier_parts);
	RUN(test_payload_unsafe);
	RUN(test_control_seq);
	RUN(test_durations);
	RUN(test_sizes);
	RUN(test_ints);
	return test_report();
}
