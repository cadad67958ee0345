/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_schema.c: libFuzzer harness for the JSON Schema compiler and validator (lib/schema.c). */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"

#define MAX_ERRORS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const instance_texts[] = {
	"null",
	"true",
	"0",
	"-1",
	"1.5",
	"1e308",
	"9007199254740993",
	"\"\"",
	"\"abc\"",
	"\"\\u00e9t\\u00e9 \\ud83d\\ude00\"",
	"\"2024-11-24T10:00:00.5+01:00\"",
	"\"1998-12-31T23:59:60Z\"",
	"\"192.168.0.1\"",
	"\"::1\"",
	"\"a@b.c\"",
	"\"123e4567-e89b-12d3-a456-426614174000\"",
	"[]",
	"[1,\"a\",null,[true],{\"x\":1}]",
	"[1,1.0]",
	"{}",
	"{\"a\":1,\"b\":[true,{\"c\":\"d\"}],\"\":null}",
	"{\"foo\":{\"foo\":{\"foo\":{}}},\"bar\":\"baz\"}",
	("{\"event_id\":\"e1\",\"event_type\":\"click\",\"user_id\":\"u1\",\"ts\":1732400000000,"
	 "\"value\":2.5}"),
};

#define N_INSTANCES (sizeof(instance_texts) / sizeof(instance_texts[0]))

static json_t *instances[N_INSTANCES];

static void fail(const char *what, const uint8_t *data, size_t size)
{
	fprintf(stderr,
		"fuzz_schema: invariant failed: %s\nfuzz_schema: schema (%zu bytes): ", what, size);
	fwrite(data, 1, size, stderr);
	fputc('\n', stderr);
	abort();
}

static void setup(void)
{
	for (size_t i = 0; i < N_INSTANCES; i++) {
		instances[i] = json_loads(instance_texts[i], JSON_DECODE_ANY, NULL);
		if (!instances[i]) {
			fprintf(stderr, "fuzz_schema: bad instance %s\n", instance_texts[i]);
			abort();
		}
	}
}

static int terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	ev_schema_error errs[MAX_ERRORS];

	if (!instances[0])
		setup();
	json_t *doc = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	if (!doc)
		return 0;
	err[0] = '\0';
	ev_schema *s = ev_schema_compile(doc, err, sizeof(err));
	if (!s) {
		if (!err[0] || !terminated(err, sizeof(err)))
			fail("a refused schema without a message", data, size);
		json_decref(doc);
		return 0;
	}
	json_decref(doc); /* the compiled schema keeps what it needs */
	for (size_t i = 0; i < N_INSTANCES; i++) {
		size_t any = ev_schema_validate(s, instances[i], NULL, 0);
		size_t first = ev_schema_validate(s, instances[i], errs, 1);
		memset(errs, 0x55, sizeof(errs));
		size_t all = ev_schema_validate(s, instances[i], errs, MAX_ERRORS);
		if (any > 1 || first > 1 || all > MAX_ERRORS)
			fail("more violations than asked for", data, size);
		if (!any != !first || !first != !all)
			fail("the verdict depends on max_errors", data, size);
		for (size_t k = 0; k < all; k++) {
			if (!terminated(errs[k].path, sizeof(errs[k].path)) ||
			    !terminated(errs[k].keyword, sizeof(errs[k].keyword)) ||
			    !terminated(errs[k].message, sizeof(errs[k].message)))
				fail("a violation's text is not terminated", data, size);
			if (errs[k].path[0] && errs[k].path[0] != '/')
				fail("a violation's path is not a JSON pointer", data, size);
			if (!errs[k].keyword[0] || !errs[k].message[0])
				fail("a violation without keyword or message", data, size);
		}
	}
	ev_schema_free(s);
	return 0;
}
