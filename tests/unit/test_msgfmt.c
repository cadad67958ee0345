/* SPDX-License-Identifier: Apache-2.0 */
/* test_msgfmt.c: kcat's output formats (lib/msgfmt.h), written for a message in memory. */
#include <string.h>

#include "msgfmt.h"
#include "test.h"

/* The format of fmt for r, as a C string (binary bytes as \xHH). */
static const char *format(const char *fmt, const char *null_str, const ev_kafka_record *r)
{
	static char text[512];
	char err[128];
	ev_buf out = EV_BUF_INIT;
	ev_msgfmt *f = ev_msgfmt_new(fmt, null_str, err, sizeof(err));
	size_t n = 0;
	text[0] = '\0';
	if (!f || ev_msgfmt_write(f, r, &out) < 0)
		snprintf(text, sizeof(text), "error: %s", f ? "write" : err);
	for (size_t i = 0; f && i < out.len && n + 5 < sizeof(text); i++) {
		unsigned char c = (unsigned char)out.data[i];
		n += (size_t)snprintf(text + n, sizeof(text) - n,
				      c < 32 && c != '\n' ? "\\x%02x" : "%c", c);
	}
	ev_msgfmt_free(f);
	ev_buf_free(&out);
	return text;
}

static void test_tokens(void)
{
	rd_kafka_headers_t *h = rd_kafka_headers_new(2);
	rd_kafka_header_add(h, "h1", -1, "a", -1);
	rd_kafka_header_add(h, "h2", -1, NULL, 0);
	ev_kafka_record r = {.topic = "t",
			     .partition = 2,
			     .offset = 41,
			     .ts = 1700000000000,
			     .key = "k",
			     .key_len = 1,
			     .payload = "value",
			     .len = 5,
			     .headers = h};
	CHECK_STR(format("%t|%p|%o|%k|%K|%s|%S|%T|%h\\n", NULL, &r),
		  "t|2|41|k|1|value|5|1700000000000|h1=a,h2=NULL\n");
	CHECK_STR(format("%R%s", NULL, &r), "\\x00\\x00\\x00\\x05value");
	/* \NNN is decimal, as kcat's (octal with a leading 0) */
	CHECK_STR(format("100%% \\t\\x41\\101\\0101\\r", NULL, &r), "100% \\x09AeA\\x0d");
	char err[64];
	ev_msgfmt *f = ev_msgfmt_new("%s", NULL, err, sizeof(err));
	CHECK(f && !ev_msgfmt_wants_headers(f));
	ev_msgfmt_free(f);
	f = ev_msgfmt_new("%h", NULL, err, sizeof(err));
	CHECK(f && ev_msgfmt_wants_headers(f));
	ev_msgfmt_free(f);

	/* null and empty keys and payloads */
	ev_kafka_record n = {.topic = "t", .ts = -1, .key = NULL, .payload = "", .len = 0};
	CHECK_STR(format("[%k][%K][%s][%S][%R][%h][%T]", NULL, &n),
		  "[][-1][][0][\\x00\\x00\\x00\\x00][][-1]");
	CHECK_STR(format("[%k][%s]", "NULL", &n), "[NULL][NULL]");
	n.payload = NULL;
	CHECK_STR(format("%S%R", NULL, &n), "-1\xff\xff\xff\xff");

	/* unknown and missing tokens are refused */
	CHECK_STR(format("%x", NULL, &r), "error: unknown format token '%x'");
	CHECK_STR(format("abc%", NULL, &r), "error: a format ends with a lone '%'");
	rd_kafka_headers_destroy(h);
}

static void test_unescape(void)
{
	ev_buf b = EV_BUF_INIT;
	CHECK(ev_msgfmt_unescape("a\\n\\t\\r\\x41;\\q", &b) == 0);
	CHECK(b.len == 8 && memcmp(b.data, "a\n\t\rA;\\q", 8) == 0);
	ev_buf_reset(&b);
	CHECK(ev_msgfmt_unescape("\\xZZ", &b) < 0);
	ev_buf_free(&b);
}

int main(void)
{
	RUN(test_tokens);
	RUN(test_unescape);
	return test_report();
}
