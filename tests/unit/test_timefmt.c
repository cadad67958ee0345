/* test_timefmt.c: RFC 3339 parsing and DateTime formatting. */
#include <stdint.h>

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

int main(void)
{
	RUN(test_rfc3339);
	RUN(test_format);
	return test_report();
}
