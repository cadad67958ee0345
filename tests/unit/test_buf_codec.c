/* SPDX-License-Identifier: Apache-2.0 */
/* test_buf_codec.c: growable buffers, JSON string escaping, UTF-8 and base64. */
#include <stdlib.h>

#include "buf.h"
#include "codec.h"
#include "json.h"
#include "test.h"

static void test_json_string(void)
{
	ev_buf b = EV_BUF_INIT;
	const char s[] = "a\"b\\c\n\x01\té";
	ev_buf_json_string(&b, s, sizeof(s) - 1);
	CHECK_STR(b.data, "\"a\\\"b\\\\c\\n\\u0001\\té\"");
	ev_buf_reset(&b);
	ev_buf_json_string(&b, "x\0y", 3);
	CHECK_STR(b.data, "\"x\\u0000y\"");
	/* Escapes that outgrow the room taken for the string as it is, appended after text. */
	ev_buf_free(&b);
	ev_buf_puts(&b, "k:");
	char ctl[300];
	for (size_t i = 0; i < sizeof(ctl); i++)
		ctl[i] = (char)(i % 2 ? 0x1f : '"');
	ev_buf_json_string(&b, ctl, sizeof(ctl));
	CHECK(b.len == 2 + 2 + 150 * 2 + 150 * 6 && b.data[b.len] == '\0');
	CHECK(strncmp(b.data, "k:\"\\\"\\u001f\\\"", 13) == 0);
	CHECK(strcmp(b.data + b.len - 7, "\\u001f\"") == 0);
	ev_buf_reset(&b);
	ev_buf_json_string(&b, NULL, 0);
	CHECK_STR(b.data, "\"\"");
	ev_buf_free(&b);
}

/* Every byte that needs an escape, at every offset of a word, among bytes that do not (ASCII
 * and UTF-8): as a byte-by-byte escaper writes them. */
static void test_json_string_offsets(void)
{
	static const char special[] = {'"', '\\', '\n', 0x01, 0x1f, 0x00};
	static const char plain[] = {'a', 0x20, 0x7f, (char)0xc3, (char)0xa9, '!', '#', '['};
	ev_buf b = EV_BUF_INIT, want = EV_BUF_INIT;
	for (size_t k = 0; k < sizeof(special); k++) {
		for (size_t at = 0; at < 24; at++) {
			char s[24];
			for (size_t i = 0; i < sizeof(s); i++)
				s[i] = plain[i % sizeof(plain)];
			s[at] = special[k];
			ev_buf_reset(&b);
			ev_buf_reset(&want);
			ev_buf_json_string(&b, s, sizeof(s));
			ev_buf_putc(&want, '"');
			for (size_t i = 0; i < sizeof(s); i++) {
				if (i != at)
					ev_buf_putc(&want, s[i]);
				else if (s[i] == '"' || s[i] == '\\')
					ev_buf_printf(&want, "\\%c", s[i]);
				else if (s[i] == '\n')
					ev_buf_puts(&want, "\\n");
				else
					ev_buf_printf(&want, "\\u%04x", (unsigned)s[i]);
			}
			ev_buf_putc(&want, '"');
			CHECK(b.len == want.len && memcmp(b.data, want.data, b.len) == 0);
		}
	}
	ev_buf_free(&b);
	ev_buf_free(&want);
}

/* Integers as printf writes them: the edges, every length, and the powers of ten around. */
static void test_put_i64(void)
{
	int64_t vals[200];
	size_t n = 0;
	vals[n++] = INT64_MIN;
	vals[n++] = INT64_MAX;
	vals[n++] = 0;
	for (int64_t p = 1; p <= INT64_MAX / 10; p *= 10) {
		int64_t around[] = {p - 1, p, p + 1, 7 * p + 3, -p, -(p - 1)};
		for (size_t i = 0; i < sizeof(around) / sizeof(around[0]); i++)
			vals[n++] = around[i];
	}
	vals[n++] = 1732406400123;
	ev_buf b = EV_BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		char want[32];
		snprintf(want, sizeof(want), "%lld", (long long)vals[i]);
		ev_buf_reset(&b);
		ev_buf_puts(&b, "x");
		CHECK(ev_buf_put_i64(&b, vals[i]) == 0);
		CHECK(strcmp(b.data + 1, want) == 0 && b.len == 1 + strlen(want));
	}
	ev_buf_free(&b);
}

static void test_growth(void)
{
	ev_buf b = EV_BUF_INIT;
	for (int i = 0; i < 10000; i++)
		ev_buf_printf(&b, "%d,", i);
	CHECK(b.len > 40000);
	CHECK(strncmp(b.data, "0,1,2,", 6) == 0);
	CHECK(b.data[b.len] == '\0');
	ev_buf_free(&b);
	CHECK(b.data == NULL && b.len == 0);
}

static void test_array_room(void)
{
	int *a = NULL;
	size_t n = 0, cap = 0;
	for (int i = 0; i < 100; i++) {
		CHECK(ev_array_room(&a, &cap, n, sizeof(*a), 4) == 0);
		CHECK(cap > n);
		a[n++] = i;
	}
	CHECK(cap == 128); /* 4, 8, ... doubling */
	size_t before = cap;
	CHECK(ev_array_room(&a, &cap, 5, sizeof(*a), 4) == 0); /* room already: unchanged */
	CHECK(cap == before);
	long sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += a[i];
	CHECK(sum == 4950);
	free(a);
}

static void test_utf8(void)
{
	CHECK(ev_utf8_valid("", 0));
	CHECK(ev_utf8_valid("plain ascii text, long enough for the fast path", 47));
	CHECK(ev_utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
	CHECK(!ev_utf8_valid("\xc3", 1));             /* truncated */
	CHECK(!ev_utf8_valid("\xc0\xaf", 2));         /* overlong */
	CHECK(!ev_utf8_valid("\xe0\x80\xaf", 3));     /* overlong */
	CHECK(!ev_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
	CHECK(!ev_utf8_valid("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
	CHECK(!ev_utf8_valid("abcdefgh\xff", 9));
	CHECK(ev_utf8_valid("a\0b", 3));
	CHECK(ev_utf8_valid_prefix("ab\xd0", 3) == 2);
	CHECK(ev_utf8_valid_prefix("abcdefghij\xc3\xa9\xff", 13) == 12);
	CHECK(ev_utf8_valid_prefix("ok", 2) == 2);
}

static void test_base64(void)
{
	static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const enc[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
					  "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	for (int i = 0; i < 7; i++) {
		ev_buf b = EV_BUF_INIT, d = EV_BUF_INIT;
		ev_base64_encode(&b, plain[i], strlen(plain[i]));
		CHECK_STR(ev_buf_cstr(&b), enc[i]);
		CHECK(ev_base64_decode(&d, b.data, b.len) == 0);
		CHECK_STR(ev_buf_cstr(&d), plain[i]);
		ev_buf_free(&b);
		ev_buf_free(&d);
	}
	ev_buf d = EV_BUF_INIT;
	CHECK(ev_base64_decode(&d, "Zm9", 3) < 0);
	CHECK(ev_base64_decode(&d, "Zm=v", 4) < 0);
	CHECK(ev_base64_decode(&d, "Zm9!", 4) < 0);
	ev_buf_free(&d);
}

static void test_bytes_field(void)
{
	ev_buf b = EV_BUF_INIT;
	ev_json_bytes_field(&b, "raw", "ok", 2);
	CHECK_STR(b.data, "\"raw\":\"ok\"");
	ev_buf_reset(&b);
	ev_json_bytes_field(&b, "raw", "\xff\xfe", 2);
	CHECK_STR(b.data, "\"raw_b64\":\"//4=\"");
	ev_buf_free(&b);
}

static int too_deep(const char *s, int max)
{
	return ev_json_too_deep(s, strlen(s), max);
}

static void test_depth(void)
{
	CHECK(!too_deep("{\"a\":[1,{\"b\":2}]}", 3));
	CHECK(too_deep("{\"a\":[1,{\"b\":2}]}", 2));
	CHECK(!too_deep("{\"a\":\"[[[[\\\"[[[\"}", 1));
	CHECK(too_deep("[[[[[[", 5));
	CHECK(!too_deep("[[[[[", 5));
	CHECK(!too_deep("\"unterminated \\", 1));
}

int main(void)
{
	RUN(test_depth);
	RUN(test_json_string);
	RUN(test_json_string_offsets);
	RUN(test_put_i64);
	RUN(test_growth);
	RUN(test_array_room);
	RUN(test_utf8);
	RUN(test_base64);
	RUN(test_bytes_field);
	return test_report();
}
