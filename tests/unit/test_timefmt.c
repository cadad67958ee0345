/* SPDX-License-Identifier: Apache-2.0 */
/* test_timefmt.c: RFC 3339 parsing and DateTime formatting. */
#include <stdint.h>
#include <stdio.h>

#include "test.h"
#include "timefmt.h"

static int64_t parse(const char *s)
{
	int64_t ms = -12345;
	if (ev_time_parse_rfc3339(s, strlen(s), &ms) < 0)
		return -12345;
	return ms;
}

static void test_rfc3339(void)
{
	CHECK(parse("1970-01-01T00:00:00Z") == 0);
	CHECK(parse("2024-11-24T10:00:00.123Z") == 1732442400123);
	CHECK(parse("2024-11-24T11:00:00.123+01:00") == 1732442400123);
	CHECK(parse("2024-11-24 05:00:00.1-05:00") == 1732442400100);
	CHECK(parse("2024-02-29T00:00:00z") == 1709164800000);
	CHECK(parse("2016-12-31T23:59:60Z") == 1483228800000);
	CHECK(parse("2023-02-29T00:00:00Z") == -12345);
	CHECK(parse("2024-13-01T00:00:00Z") == -12345);
	CHECK(parse("2024-11-24T10:00:00") == -12345);
	CHECK(parse("2024-11-24T10:00:00.Z") == -12345);
	CHECK(parse("2024-11-24T24:00:00Z") == -12345);
	CHECK(parse("2024-11-24") == -12345);
	int64_t ms;
	CHECK(ev_time_parse("1732442400123", &ms) == 0 && ms == 1732442400123);
	CHECK(ev_time_parse("2024-11-24T10:00:00Z", &ms) == 0 && ms == 1732442400000);
	CHECK(ev_time_parse("yesterday", &ms) < 0);
}

static void test_format(void)
{
	char out[20];
	ev_time_format_datetime(1732442400123, out);
	CHECK_STR(out, "2024-11-24 10:00:00");
	ev_time_format_datetime(0, out);
	CHECK_STR(out, "1970-01-01 00:00:00");
}

/* Sub-second bounds: the DateTime text rounds down, ev_time_msec keeps the rest, so the two
 * name the instant exactly (before 1970 too) and distinct instants stay distinct. */
static void test_format_msec(void)
{
	static const struct {
		int64_t ms;
		const char *text;
		int msec;
	} cases[] = {
		{0, "1970-01-01 00:00:00", 0},
		{250, "1970-01-01 00:00:00", 250},
		{500, "1970-01-01 00:00:00", 500},
		{750, "1970-01-01 00:00:00", 750},
		{999, "1970-01-01 00:00:00", 999},
		{1000, "1970-01-01 00:00:01", 0},
		{1732442400123, "2024-11-24 10:00:00", 123},
		{1732442399999, "2024-11-24 09:59:59", 999},
		{-1, "1969-12-31 23:59:59", 999},
		{-250, "1969-12-31 23:59:59", 750},
		{-1000, "1969-12-31 23:59:59", 0},
		{-1001, "1969-12-31 23:59:58", 999},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[20];
		ev_time_format_datetime(cases[i].ms, out);
		CHECK_STR(out, cases[i].text);
		CHECK(ev_time_msec(cases[i].ms) == cases[i].msec);
		char rfc[32];
		int n = snprintf(rfc, sizeof(rfc), "%s.%03dZ", out, ev_time_msec(cases[i].ms));
		int64_t back = -12345;
		CHECK(ev_time_parse_rfc3339(rfc, (size_t)n, &back) == 0 && back == cases[i].ms);
	}
}

int main(void)
{
	RUN(test_rfc3339);
	RUN(test_format);
	RUN(test_format_msec);
	return test_report();
}
