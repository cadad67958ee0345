/* SPDX-License-Identifier: Apache-2.0 */
/* test_clickhouse.c: ClickHouse answers classified, SQL split, URL and name checks, gzip,
 * backoff. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "backoff.h"
#include "clickhouse.h"
#include "gzip.h"
#include "sqlsplit.h"
#include "test.h"

static void test_exception_code(void)
{
	/* 18.16's body, a current server's body, the header of a current server. */
	const char *old = "Code: 27, e.displayText() = DB::Exception: Cannot parse input: "
			  "expected \" before: x\": (at row 1)\n, e.what() = DB::Exception\n";
	const char *now =
		"Code: 117. DB::Exception: Unknown field found while parsing "
		"JSONEachRow format: zzz: (at row 1)\n. (INCORRECT_DATA) (version 24.3)\n";
	CHECK(ev_ch_exception_code(NULL, old, strlen(old)) == 27);
	CHECK(ev_ch_exception_code(NULL, now, strlen(now)) == 117);
	CHECK(ev_ch_exception_code(" 60\r\n", now, strlen(now)) == 60);
	CHECK(ev_ch_exception_code(NULL, "<html>503</html>", 16) == 0);
	CHECK(ev_ch_exception_code(NULL, "Code: ", 6) == 0);
	CHECK(ev_ch_exception_code(NULL, "", 0) == 0);
}

static void test_classify(void)
{
	CHECK(ev_ch_classify(200, 0) == EV_CH_OK);
	/* 18.16 answers content errors with 500 or 400, current servers with 400 */
	CHECK(ev_ch_classify(500, 27) == EV_CH_REJECTED);
	CHECK(ev_ch_classify(400, 72) == EV_CH_REJECTED);
	CHECK(ev_ch_classify(400, 26) == EV_CH_REJECTED);
	CHECK(ev_ch_classify(500, 117) == EV_CH_REJECTED);
	CHECK(ev_ch_classify(400, 691) == EV_CH_REJECTED);
	/* configuration */
	CHECK(ev_ch_classify(401, 193) == EV_CH_FATAL);
	CHECK(ev_ch_classify(403, 516) == EV_CH_FATAL);
	CHECK(ev_ch_classify(404, 60) == EV_CH_FATAL);
	CHECK(ev_ch_classify(404, 81) == EV_CH_FATAL);
	CHECK(ev_ch_classify(400, 62) == EV_CH_FATAL);
	/* the server's trouble: retry */
	CHECK(ev_ch_classify(500, 252) == EV_CH_RETRY); /* TOO_MANY_PARTS */
	CHECK(ev_ch_classify(500, 241) == EV_CH_RETRY); /* MEMORY_LIMIT_EXCEEDED */
	CHECK(ev_ch_classify(503, 0) == EV_CH_RETRY);
	CHECK(ev_ch_classify(502, 0) == EV_CH_RETRY);
	CHECK(ev_ch_classify(429, 0) == EV_CH_RETRY);
	/* no ClickHouse code: a proxy's answer */
	CHECK(ev_ch_classify(413, 0) == EV_CH_REJECTED);
	CHECK(ev_ch_classify(401, 0) == EV_CH_FATAL);
	CHECK(ev_ch_classify(404, 0) == EV_CH_FATAL);
	CHECK(ev_ch_classify(400, 36) == EV_CH_FATAL);
	CHECK_STR(ev_ch_verdict_name(EV_CH_REJECTED), "rejected");
}

struct stmts {
	char got[8][256];
	int n;
};

static int collect(void *arg, const char *stmt, int n)
{
	struct stmts *s = arg;
	if (n != s->n + 1 || s->n >= 8)
		return 2;
	snprintf(s->got[s->n++], sizeof(s->got[0]), "%s", stmt);
	return 0;
}

static void test_sql_split(void)
{
	struct stmts s = {0};
	const char *sql = "-- a comment; not a statement\n"
			  "CREATE DATABASE IF NOT EXISTS evpipe;\n"
			  "/* a block; comment */\n"
			  "CREATE TABLE t (s String DEFAULT 'a;b', `x;y` UInt8) -- trailing\n"
			  "ENGINE = Memory;\n"
			  "  ;  \n"
			  "SELECT 'it''s; \\' here', \"q;\"";
	CHECK(ev_sql_split(sql, collect, &s) == 0);
	CHECK(s.n == 3);
	CHECK_STR(s.got[0], "CREATE DATABASE IF NOT EXISTS evpipe");
	CHECK_STR(s.got[1],
		  "CREATE TABLE t (s String DEFAULT 'a;b', `x;y` UInt8)  \nENGINE = Memory");
	CHECK_STR(s.got[2], "SELECT 'it''s; \\' here', \"q;\"");
	struct stmts e = {0};
	CHECK(ev_sql_split("-- nothing\n ; /* */", collect, &e) == 0 && e.n == 0);
	CHECK(ev_sql_split("SELECT 'open;", collect, &e) == -1);
	CHECK(ev_sql_split("SELECT 1 /* open", collect, &e) == -1);
	struct stmts stop = {.n = 5};
	CHECK(ev_sql_split("SELECT 1; SELECT 2", collect, &stop) == 2);
}

static void test_names_and_urls(void)
{
	char err[256];
	CHECK(ev_ch_table_name_ok("evpipe.event_aggregates"));
	CHECK(ev_ch_table_name_ok("t_1"));
	CHECK(!ev_ch_table_name_ok("evpipe."));
	CHECK(!ev_ch_table_name_ok(".t"));
	CHECK(!ev_ch_table_name_ok("a.b.c"));
	CHECK(!ev_ch_table_name_ok("1t"));
	CHECK(!ev_ch_table_name_ok("t; DROP TABLE x"));
	CHECK(!ev_ch_table_name_ok(""));
	CHECK(ev_ch_check_url("http://127.0.0.1:8123", err, sizeof(err)) == 0);
	CHECK(ev_ch_check_url("https://ch.example:8443/?async_insert=1", err, sizeof(err)) == 0);
	CHECK(ev_ch_check_url("http://u:secret@h:8123", err, sizeof(err)) < 0);
	CHECK(strstr(err, "secret") == NULL && strstr(err, "refused") != NULL);
	CHECK(ev_ch_check_url("http://h:8123/?user=u&password=secret", err, sizeof(err)) < 0);
	CHECK(ev_ch_check_url("http://h:8123/?x=1&Password=secret", err, sizeof(err)) < 0);
	CHECK(ev_ch_check_url("http://h:8123/?max_password_len=1", err, sizeof(err)) == 0);
	CHECK(ev_ch_check_url("ftp://h/", err, sizeof(err)) < 0);
	CHECK(ev_ch_check_url("not a url", err, sizeof(err)) < 0);
	CHECK(ev_ch_check_url("http://u:secret@h:x:y", err, sizeof(err)) < 0);
	CHECK(strstr(err, "secret") == NULL);
}

static void test_gzip(void)
{
	ev_buf gz = EV_BUF_INIT;
	char text[4096], back[8192];
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = "{\"a\":1}\n"[i % 8];
	CHECK(ev_buf_append(&gz, "xy", 2) == 0); /* appends after what is there */
	CHECK(ev_gzip(&gz, text, sizeof(text)) == 0);
	CHECK(gz.len > 2 + 18 && gz.len < sizeof(text) / 4);
	CHECK((unsigned char)gz.data[2] == 0x1f && (unsigned char)gz.data[3] == 0x8b);
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	CHECK(inflateInit2(&zs, 15 + 16) == Z_OK);
	zs.next_in = (Bytef *)gz.data + 2;
	zs.avail_in = (uInt)(gz.len - 2);
	zs.next_out = (Bytef *)back;
	zs.avail_out = sizeof(back);
	CHECK(inflate(&zs, Z_FINISH) == Z_STREAM_END);
	CHECK(zs.total_out == sizeof(text) && memcmp(back, text, sizeof(text)) == 0);
	inflateEnd(&zs);
	ev_buf_free(&gz);
}

static void test_backoff(void)
{
	ev_backoff b;
	ev_backoff_init(&b, 100, 5000, 42);
	int64_t ceiling = 100;
	for (int i = 0; i < 20; i++) {
		int64_t d = ev_backoff_next(&b);
		CHECK(d >= ceiling / 2 && d <= ceiling);
		ceiling = ceiling * 2 > 5000 ? 5000 : ceiling * 2;
	}
	ev_backoff_reset(&b);
	int64_t d = ev_backoff_next(&b);
	CHECK(d >= 50 && d <= 100);
	/* jitter: two clients that failed together do not retry together */
	ev_backoff a, c;
	ev_backoff_init(&a, 1000, 5000, 1);
	ev_backoff_init(&c, 1000, 5000, 2);
	int same = 0;
	for (int i = 0; i < 10; i++)
		same += ev_backoff_next(&a) == ev_backoff_next(&c);
	CHECK(same < 3);
}

/* chsink's check of a row: what is cheap to see, and nothing a JSON parser reads as an object
 * refused (found by fuzzing: a line ending in "\r", as "\r\r\n" leaves it, was refused). */
static void test_row_check(void)
{
	CHECK(ev_ch_row_check("{\"a\":1}", 7) == NULL);
	CHECK(ev_ch_row_check(" \t{} \t", 6) == NULL);
	CHECK(ev_ch_row_check("{\"a\":1}\r", 8) == NULL);
	CHECK(ev_ch_row_check("\r\n{\"a\":1}\r\n", 11) == NULL);
	CHECK_STR(ev_ch_row_check("", 0), "not a JSON object");
	CHECK_STR(ev_ch_row_check("{", 1), "not a JSON object");
	CHECK_STR(ev_ch_row_check("[{}]", 4), "not a JSON object");
	CHECK_STR(ev_ch_row_check("\r", 1), "not a JSON object");
	CHECK_STR(ev_ch_row_check("{\"a\":\"\xff\"}", 9), "not valid UTF-8");
}

int main(void)
{
	RUN(test_exception_code);
	RUN(test_classify);
	RUN(test_sql_split);
	RUN(test_names_and_urls);
	RUN(test_gzip);
	RUN(test_backoff);
	RUN(test_row_check);
	return test_report();
}
