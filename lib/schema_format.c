/* SPDX-License-Identifier: Apache-2.0 */
/* schema_format.c: the string formats that JSON Schema's "format" asserts (draft-07). */
#include "schema_format.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char *const names[EV_FMT_COUNT] = {"",
						"date-time",
						"date",
						"time",
						"email",
						"uuid",
						"ipv4",
						"ipv6",
						"hostname",
						"uri",
						"uri-reference",
						"iri",
						"iri-reference",
						"json-pointer",
						"relative-json-pointer",
						"regex"};

enum ev_schema_format ev_schema_format_find(const char *name)
{
	for (size_t i = 1; i < EV_FMT_COUNT; i++)
		if (strcmp(name, names[i]) == 0)
			return (enum ev_schema_format)i;
	return EV_FMT_NONE;
}

const char *ev_schema_format_name(enum ev_schema_format f)
{
	return f < EV_FMT_COUNT ? names[f] : "";
}

static int is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static int is_hex(char ch)
{
	return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* The number in s[0..k), all ASCII digits; -1 otherwise. */
static int digits(const char *s, size_t k)
{
	int v = 0;
	for (size_t i = 0; i < k; i++) {
		if (!is_digit(s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static int valid_date(const char *s, size_t n)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (n != 10 || s[4] != '-' || s[7] != '-')
		return 0;
	int y = digits(s, 4), m = digits(s + 5, 2), d = digits(s + 8, 2);
	if (y < 0 || m < 1 || m > 12 || d < 1)
		return 0;
	int leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
	return d <= mdays[m - 1] + (m == 2 && leap);
}

/* RFC 3339 full-time; a leap second (:60) only where it is 23:59 in UTC. */
static int valid_time(const char *s, size_t n)
{
	if (n < 9 || s[2] != ':' || s[5] != ':')
		return 0;
	int h = digits(s, 2), m = digits(s + 3, 2), sec = digits(s + 6, 2);
	if (h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec > 60)
		return 0;
	size_t i = 8;
	if (s[i] == '.') {
		size_t f = ++i;
		while (i < n && is_digit(s[i]))
			i++;
		if (i == f)
			return 0;
	}
	int off = 0;
	if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i < n && (s[i] == '+' || s[i] == '-')) {
		if (n - i != 6 || s[i + 3] != ':')
			return 0;
		int oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);
		if (oh < 0 || oh > 23 || om < 0 || om > 59)
			return 0;
		off = (s[i] == '+' ? 1 : -1) * (oh * 60 + om);
		i += 6;
	} else {
		return 0;
	}
	if (i != n)
		return 0;
	if (sec == 60) {
		int utc = ((h * 60 + m - off) % 1440 + 1440) % 1440;
		return utc == 23 * 60 + 59;
	}
	return 1;
}

static int valid_date_time(const char *s, size_t n)
{
	return n > 11 && (s[10] == 'T' || s[10] == 't') && valid_date(s, 10) &&
	       valid_time(s + 11, n - 11);
}

static int valid_ipv4(const char *s, size_t n)
{
	size_t i = 0;
	for (int part = 0; part < 4; part++) {
		if (part) {
			if (i >= n || s[i] != '.')
				return 0;
			i++;
		}
		size_t st = i;
		while (i < n && is_digit(s[i]) && i - st < 4)
			i++;
		size_t k = i - st;
		if (k == 0 || k > 3 || (k > 1 && s[st] == '0') || digits(s + st, k) > 255)
			return 0;
	}
	return i == n;
}

static int valid_ipv6(const char *s, size_t n)
{
	int groups = 0, compressed = 0;
	size_t i = 0;
	if (n >= 2 && s[0] == ':' && s[1] == ':') {
		compressed = 1;
		i = 2;
		if (i == n)
			return 1;
	}
	for (;;) {
		size_t j = i;
		while (j < n && is_hex(s[j]) && j - i < 5)
			j++;
		if (j < n && s[j] == '.') {
			if (!valid_ipv4(s + i, n - i))
				return 0;
			groups += 2;
			break;
		}
		if (j == i || j - i > 4)
			return 0;
		groups++;
		i = j;
		if (i == n)
			break;
		if (s[i] != ':' || ++i == n || groups >= 8)
			return 0;
		if (s[i] == ':') {
			if (compressed)
				return 0;
			compressed = 1;
			if (++i == n)
				break;
		}
	}
	return compressed ? groups <= 7 : groups == 8;
}

static int valid_uuid(const char *s, size_t n)
{
	if (n != 36)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : !is_hex(s[i]))
			return 0;
	}
	return 1;
}

static int valid_hostname(const char *s, size_t n)
{
	size_t label = 0;
	if (n == 0 || n > 253)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
		} else if (is_digit(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			   ch == '-') {
			if ((label == 0 && ch == '-') || ++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return label > 0 && s[n - 1] != '-';
}

/* RFC 5321 mailbox: dot-atom or quoted local part; a host name or an address literal. */
static int valid_email(const char *s, size_t n)
{
	static const char atext[] = "!#$%&'*+-/=?^_`{|}~";
	const char *at = NULL;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '@')
			at = s + i;
	if (!at || at == s || at == s + n - 1)
		return 0;
	size_t llen = (size_t)(at - s);
	if (s[0] == '"') {
		if (llen < 2 || s[llen - 1] != '"')
			return 0;
		for (size_t i = 1; i < llen - 1; i++) {
			unsigned char ch = (unsigned char)s[i];
			if (ch == '\\' && i + 1 < llen - 1)
				i++;
			else if (ch == '"' || ch == '\\' || ch < 0x20 || ch >= 0x7f)
				return 0;
		}
	} else {
		if (llen > 64 || s[0] == '.' || s[llen - 1] == '.')
			return 0;
		for (size_t i = 0; i < llen; i++) {
			char ch = s[i];
			if (ch == '.' ? s[i + 1] == '.'
				      : !(is_digit(ch) || (ch >= 'a' && ch <= 'z') ||
					  (ch >= 'A' && ch <= 'Z') || (ch && strchr(atext, ch))))
				return 0;
		}
	}
	const char *d = at + 1;
	size_t dlen = n - llen - 1;
	if (d[0] == '[') {
		if (d[dlen - 1] != ']')
			return 0;
		if (dlen > 7 && strncmp(d + 1, "IPv6:", 5) == 0)
			return valid_ipv6(d + 6, dlen - 7);
		return valid_ipv4(d + 1, dlen - 2);
	}
	return valid_hostname(d, dlen);
}

/* RFC 3986 (and, with iri, RFC 3987: non-ASCII characters wherever unreserved ones may be). */
static int uri_unreserved(unsigned char ch, int iri)
{
	return is_digit((char)ch) || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') ||
	       (ch && strchr("-._~", ch)) || (iri && ch >= 0x80);
}

/* The end of the run from s[i] of unreserved characters, %XX escapes, sub-delims and the
 * characters in extra; SIZE_MAX at a malformed escape. */
static size_t uri_run(const char *s, size_t i, size_t n, const char *extra, int iri)
{
	while (i < n) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '%') {
			if (i + 2 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
				return SIZE_MAX;
			i += 3;
		} else if (uri_unreserved(ch, iri) || (ch && strchr("!$&'()*+,;=", ch)) ||
			   (ch && strchr(extra, ch))) {
			i++;
		} else {
			break;
		}
	}
	return i;
}

/* authority = [ userinfo "@" ] host [ ":" port ]; host = IP-literal / IPv4address / reg-name */
static int valid_authority(const char *s, size_t n, int iri)
{
	size_t i = 0;
	const char *at = memchr(s, '@', n);
	if (at) {
		i = (size_t)(at - s);
		if (uri_run(s, 0, i, ":", iri) != i)
			return 0;
		i++;
	}
	if (i < n && s[i] == '[') {
		const char *close = memchr(s + i, ']', n - i);
		if (!close)
			return 0;
		size_t a = i + 1, b = (size_t)(close - s);
		if (a < b && (s[a] == 'v' || s[a] == 'V')) { /* IPvFuture */
			size_t h = a + 1;
			while (h < b && is_hex(s[h]))
				h++;
			if (h == a + 1 || h >= b || s[h] != '.' || h + 1 == b ||
			    uri_run(s, h + 1, b, ":", 0) != b)
				return 0;
		} else if (!valid_ipv6(s + a, b - a)) {
			return 0;
		}
		i = b + 1;
	} else {
		i = uri_run(s, i, n, "", iri);
		if (i == SIZE_MAX)
			return 0;
	}
	if (i < n && s[i] == ':')
		for (i++; i < n && is_digit(s[i]);)
			i++;
	return i == n;
}

/* URI (reference: or relative reference) of RFC 3986 section 3 and 4.1. */
static int valid_uri(const char *s, size_t n, int reference, int iri)
{
	size_t i = 0, k = 0;
	if (n > 0 && ((s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z'))
		for (k = 1; k < n && (uri_unreserved((unsigned char)s[k], 0) || s[k] == '+') &&
			    s[k] != '_' && s[k] != '~';)
			k++;
	int scheme = k > 0 && k < n && s[k] == ':';
	if (scheme)
		i = k + 1;
	else if (!reference)
		return 0;
	if (n - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
		size_t end = i + 2;
		while (end < n && s[end] != '/' && s[end] != '?' && s[end] != '#')
			end++;
		if (!valid_authority(s + i + 2, end - i - 2, iri))
			return 0;
		i = end;
	} else if (!scheme) {
		/* path-noscheme: no ':' in the first segment */
		size_t first = uri_run(s, i, n, "@", iri);
		if (first == SIZE_MAX || (first < n && s[first] == ':'))
			return 0;
	}
	i = uri_run(s, i, n, ":@/", iri);
	if (i != SIZE_MAX && i < n && s[i] == '?')
		i = uri_run(s, i + 1, n, ":@/?", iri);
	if (i != SIZE_MAX && i < n && s[i] == '#')
		i = uri_run(s, i + 1, n, ":@/?", iri);
	return i == n;
}

/* RFC 6901: "" or "/"-separated reference tokens, '~' only as ~0 or ~1. */
static int valid_json_pointer(const char *s, size_t n)
{
	if (n > 0 && s[0] != '/')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '~' && (i + 1 == n || (s[i + 1] != '0' && s[i + 1] != '1')))
			return 0;
	return 1;
}

/* draft-handrews-relative-json-pointer-01: a non-negative integer, then "#" or a JSON pointer. */
static int valid_relative_json_pointer(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && is_digit(s[i]))
		i++;
	if (i == 0 || (i > 1 && s[0] == '0'))
		return 0;
	return (i + 1 == n && s[i] == '#') || valid_json_pointer(s + i, n - i);
}

/* A regex pattern and patternProperties would take. */
static int valid_regex(const char *s, size_t n)
{
	int code;
	PCRE2_SIZE off;
	pcre2_code *re =
		pcre2_compile((PCRE2_SPTR)s, n, EV_SCHEMA_REGEX_OPTIONS, &code, &off, NULL);
	pcre2_code_free(re);
	return re != NULL;
}

int ev_schema_format_ok(enum ev_schema_format f, const char *s, size_t n)
{
	switch (f) {
	case EV_FMT_DATE_TIME: return valid_date_time(s, n);
	case EV_FMT_DATE: return valid_date(s, n);
	case EV_FMT_TIME: return valid_time(s, n);
	case EV_FMT_EMAIL: return valid_email(s, n);
	case EV_FMT_UUID: return valid_uuid(s, n);
	case EV_FMT_IPV4: return valid_ipv4(s, n);
	case EV_FMT_IPV6: return valid_ipv6(s, n);
	case EV_FMT_HOSTNAME: return valid_hostname(s, n);
	case EV_FMT_URI: return valid_uri(s, n, 0, 0);
	case EV_FMT_URI_REFERENCE: return valid_uri(s, n, 1, 0);
	case EV_FMT_IRI: return valid_uri(s, n, 0, 1);
	case EV_FMT_IRI_REFERENCE: return valid_uri(s, n, 1, 1);
	case EV_FMT_JSON_POINTER: return valid_json_pointer(s, n);
	case EV_FMT_RELATIVE_JSON_POINTER: return valid_relative_json_pointer(s, n);
	case EV_FMT_REGEX: return valid_regex(s, n);
	default: return 1;
	}
}
