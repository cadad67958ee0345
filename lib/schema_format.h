/* SPDX-License-Identifier: Apache-2.0 */
/* schema_format.h: the string formats that JSON Schema's "format" asserts (draft-07), for
 * lib/schema.c: what each one accepts is said in schema.h. */
#ifndef EV_SCHEMA_FORMAT_H
#define EV_SCHEMA_FORMAT_H

#include <stddef.h>

enum ev_schema_format {
	EV_FMT_NONE,
	EV_FMT_DATE_TIME,
	EV_FMT_DATE,
	EV_FMT_TIME,
	EV_FMT_EMAIL,
	EV_FMT_UUID,
	EV_FMT_IPV4,
	EV_FMT_IPV6,
	EV_FMT_HOSTNAME,
	EV_FMT_URI,
	EV_FMT_URI_REFERENCE,
	EV_FMT_IRI,
	EV_FMT_IRI_REFERENCE,
	EV_FMT_JSON_POINTER,
	EV_FMT_RELATIVE_JSON_POINTER,
	EV_FMT_REGEX,
	EV_FMT_COUNT
};

/* pattern, patternProperties and the regex format: ECMA-262 as PCRE2 can take it. */
#define EV_SCHEMA_REGEX_OPTIONS \
	(PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_BSUX | PCRE2_NEVER_BACKSLASH_C)

/* The format named name ("date-time", ...), or EV_FMT_NONE when it is none of them. */
enum ev_schema_format ev_schema_format_find(const char *name);
/* The name of format f ("" for EV_FMT_NONE). */
const char *ev_schema_format_name(enum ev_schema_format f);
/* 1 when s[0..n) is valid in format f (EV_FMT_NONE: anything is), else 0. */
int ev_schema_format_ok(enum ev_schema_format f, const char *s, size_t n);

#endif
