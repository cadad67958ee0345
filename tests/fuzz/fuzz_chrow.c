/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_chrow.c: libFuzzer harness for chsink's check of a row (ev_ch_row_check in
 * lib/clickhouse.c) against a reference: every line that jansson reads as a JSON object passes
 * the check, and what passes begins with '{', ends with '}' and is UTF-8. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clickhouse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const uint8_t *data, size_t size)
{
	fprintf(stderr, "fuzz_chrow: invariant failed: %s\n", what);
	fprintf(stderr, "fuzz_chrow: input (%zu bytes): ", size);
	fwrite(data, 1, size, stderr);
	fputc('\n', stderr);
	abort();
}

/* Well-formed UTF-8, as jansson judges it (independently of lib/codec.c); NUL bytes are
 * characters of their own. */
static int utf8(const char *s, size_t n)
{
	json_t *t = json_stringn(s, n);
	json_decref(t);
	return t != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	const char *why = ev_ch_row_check(line, size);
	/* A line as chsink's reader gives it: no '\n' in it (it splits there). */
	int one_line = !memchr(line, '\n', size);
	if (why && strcmp(why, "not a JSON object") != 0 && strcmp(why, "not valid UTF-8") != 0)
		fail("an unknown reason", data, size);
	json_t *j = json_loadb(line, size, JSON_ALLOW_NUL, NULL);
	if (json_is_object(j) && why && one_line)
		fail("a JSON object does not pass the check", data, size);
	json_decref(j);
	if (!why) {
		size_t i = 0;
		while (i < size && line[i] && strchr(" \t\r\n", line[i]))
			i++;
		if (i == size || line[i] != '{' || !utf8(line, size))
			fail("what passes is not an object's text in UTF-8", data, size);
	}
	return 0;
}
