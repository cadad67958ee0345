/* SPDX-License-Identifier: Apache-2.0 */
/* test_schema.c: JSON Schema draft-07 compiling, validation by keyword family, errors and formats. */
#include <stdlib.h>
#include <unistd.h>

#include "buf.h"
#include "deadletter.h"
#include "fastjson.h"
#include "ndjson.h"
#include "rng.h"
#include "schema.h"
#include "test.h"
#include "validate.h"

static char cerr[512];
static ev_fj *fj;
static int fast_parsed, fast_decided;

/* The fast path on the instance text never calls valid what ev_schema_validate, on the same
 * text read by jansson, finds violations in (n of them). */
static void check_fast(const ev_schema *s, const char *schema, const char *instance, size_t n)
{
	size_t k;
	const ev_fj_node *nd = ev_fj_parse(fj, instance, strlen(instance), &k);
	if (!nd)
		return;
	int quick = ev_schema_valid_fast(s, nd, 0, NULL, 0);
	fast_parsed++;
	fast_decided += quick;
	if (quick && n)
		fprintf(stderr, "%s: the fast path calls %s valid against %s\n", test_current,
			instance, schema);
	CHECK(!quick || n == 0);
}

static ev_schema *compile_str(const char *schema)
{
	json_error_t jerr;
	json_t *doc = json_loads(schema, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (!doc) {
		fprintf(stderr, "%s: bad test schema %s: %s\n", test_current, schema, jerr.text);
		return NULL;
	}
	ev_schema *s = ev_schema_compile(doc, cerr, sizeof(cerr));
	json_decref(doc);
	return s;
}

/* Validate instance against schema: 1 valid, 0 invalid, -1 if the schema was refused. The
 * fast, silent and collecting modes must agree. */
static int valid(const char *schema, const char *instance)
{
	ev_schema *s = compile_str(schema);
	if (!s) {
		fprintf(stderr, "%s: schema %s refused: %s\n", test_current, schema, cerr);
		return -1;
	}
	json_t *x = json_loads(instance, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (!x) {
		fprintf(stderr, "%s: bad test instance %s\n", test_current, instance);
		ev_schema_free(s);
		return -1;
	}
	ev_schema_error errs[8];
	size_t fast = ev_schema_validate(s, x, errs, 1);
	size_t silent = ev_schema_validate(s, x, NULL, 0);
	size_t all = ev_schema_validate(s, x, errs, 8);
	check_fast(s, schema, instance, fast);
	json_decref(x);
	ev_schema_free(s);
	if ((fast == 0) != (silent == 0) || (fast == 0) != (all == 0)) {
		fprintf(stderr, "%s: modes disagree on %s / %s\n", test_current, schema, instance);
		return -1;
	}
	return fast == 0;
}

/* The violations of instance (up to max) into errs; their count, or (size_t)-1 if refused. */
static size_t errors(const char *schema, const char *instance, ev_schema_error *errs, size_t max)
{
	ev_schema *s = compile_str(schema);
	if (!s) {
		fprintf(stderr, "%s: schema %s refused: %s\n", test_current, schema, cerr);
		return (size_t)-1;
	}
	json_t *x = json_loads(instance, JSON_DECODE_ANY, NULL);
	size_t n = x ? ev_schema_validate(s, x, errs, max) : (size_t)-1;
	if (x)
		check_fast(s, schema, instance, ev_schema_validate(s, x, NULL, 0));
	json_decref(x);
	ev_schema_free(s);
	return n;
}

/* Compile must fail with exactly this message. */
/* The schema is refused with the message want (any message when want is NULL). */
static void refused(const char *schema, const char *want)
{
	ev_schema *s = compile_str(schema);
	CHECK(s == NULL);
	ev_schema_free(s);
	if (want)
		CHECK_STR(s ? "(compiled)" : cerr, want);
}

struct vcase {
	const char *schema, *instance;
	int valid;
};

static void run_cases(const struct vcase *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int got = valid(cases[i].schema, cases[i].instance);
		if (got != cases[i].valid)
			fprintf(stderr, "%s: %s against %s: got %d, want %d\n", test_current,
				cases[i].instance, cases[i].schema, got, cases[i].valid);
		CHECK(got == cases[i].valid);
	}
}

#define RUN_CASES(c) run_cases(c, sizeof(c) / sizeof(c[0]))

static void test_type(void)
{
	static const struct vcase cases[] = {
		{"{\"type\":\"integer\"}", "1", 1},
		{"{\"type\":\"integer\"}", "1.0", 1},
		{"{\"type\":\"integer\"}", "-0.0", 1},
		{"{\"type\":\"integer\"}", "1.5", 0},
		{"{\"type\":\"integer\"}", "1e300", 1},
		{"{\"type\":\"integer\"}", "\"1\"", 0},
		{"{\"type\":\"number\"}", "1", 1},
		{"{\"type\":\"number\"}", "1.5", 1},
		{"{\"type\":\"number\"}", "\"1\"", 0},
		{"{\"type\":\"string\"}", "\"\"", 1},
		{"{\"type\":\"string\"}", "null", 0},
		{"{\"type\":\"boolean\"}", "false", 1},
		{"{\"type\":\"boolean\"}", "0", 0},
		{"{\"type\":\"null\"}", "null", 1},
		{"{\"type\":\"null\"}", "false", 0},
		{"{\"type\":\"object\"}", "{}", 1},
		{"{\"type\":\"object\"}", "[]", 0},
		{"{\"type\":\"array\"}", "[]", 1},
		{"{\"type\":\"array\"}", "{}", 0},
		{"{\"type\":[\"integer\",\"null\"]}", "null", 1},
		{"{\"type\":[\"integer\",\"null\"]}", "2", 1},
		{"{\"type\":[\"integer\",\"null\"]}", "2.5", 0},
	};
	RUN_CASES(cases);
	ev_schema_error e[1];
	CHECK(errors("{\"type\":\"integer\"}", "\"abc\"", e, 1) == 1);
	CHECK_STR(e[0].path, "");
	CHECK_STR(e[0].keyword, "type");
	CHECK_STR(e[0].message, "'abc' is not of type 'integer'");
	CHECK(errors("{\"type\":[\"string\",\"integer\",\"null\"]}", "1.5", e, 1) == 1);
	CHECK_STR(e[0].message, "1.5 is not of type 'string', 'integer' or 'null'");
	CHECK(errors("{\"type\":\"string\"}", "2.0", e, 1) == 1);
	CHECK_STR(e[0].message, "2.0 is not of type 'string'");
}

static void test_enum_const(void)
{
	static const struct vcase cases[] = {
		{"{\"enum\":[1,\"a\",null]}", "1.0", 1},
		{"{\"enum\":[1,\"a\",null]}", "\"a\"", 1},
		{"{\"enum\":[1,\"a\",null]}", "\"b\"", 0},
		{"{\"enum\":[false]}", "0", 0},
		{"{\"enum\":[0]}", "false", 0},
		{"{\"enum\":[[1]]}", "[true]", 0},
		{"{\"enum\":[[1]]}", "[1.0]", 1},
		{"{\"enum\":[{\"a\":1,\"b\":[2]}]}", "{\"b\":[2.0],\"a\":1}", 1},
		{"{\"enum\":[{\"a\":1}]}", "{\"a\":1,\"b\":2}", 0},
		{"{\"enum\":[\"a\\u0000b\"]}", "\"a\\u0000b\"", 1},
		{"{\"enum\":[\"a\\u0000b\"]}", "\"a\"", 0},
		{"{\"const\":{\"x\":[1,{\"y\":null}]}}", "{\"x\":[1.0,{\"y\":null}]}", 1},
		{"{\"const\":{\"x\":[1,{\"y\":null}]}}", "{\"x\":[1,{\"y\":false}]}", 0},
		{"{\"const\":9007199254740992}", "9007199254740992.0", 1},
		{"{\"const\":9007199254740993}", "9007199254740992.0", 0},
		{"{\"const\":-0.0}", "0", 1},
		{"{\"const\":null}", "0", 0},
	};
	RUN_CASES(cases);
	ev_schema_error e[1];
	const char *s = "{\"properties\":{\"event_type\":{\"enum\":[\"page_view\",\"click\"]}}}";
	CHECK(errors(s, "{\"event_type\":\"foo\"}", e, 1) == 1);
	CHECK_STR(e[0].path, "/event_type");
	CHECK_STR(e[0].keyword, "enum");
	CHECK_STR(e[0].message, "'foo' is not one of ['page_view','click']");
	/* a long list is cut after its last whole member, the message stays within bounds */
	s = "{\"enum\":[\"page_view\",\"click\",\"scroll\",\"purchase\",\"add_to_cart\","
	    "\"remove_from_cart\",\"checkout_started\",\"checkout_completed\",\"signup\","
	    "\"login\",\"logout\"]}";
	CHECK(errors(s, "\"foo\"", e, 1) == 1);
	CHECK(strncmp(e[0].message, "'foo' is not one of ['page_view','click',", 41) == 0);
	CHECK(strstr(e[0].message, "',...]") != NULL);
	CHECK(errors("{\"const\":\"x\"}", "{\"a\":[1,2]}", e, 1) == 1);
	CHECK_STR(e[0].keyword, "const");
	CHECK_STR(e[0].message, "{'a':[1,2]} is not the constant 'x'");
}

static void test_numbers(void)
{
	static const struct vcase cases[] = {
		{"{\"minimum\":5}", "5", 1},
		{"{\"minimum\":5}", "4.9999", 0},
		{"{\"minimum\":5}", "\"x\"", 1},
		{"{\"maximum\":5.5}", "5.5", 1},
		{"{\"maximum\":5.5}", "6", 0},
		{"{\"exclusiveMinimum\":5}", "5", 0},
		{"{\"exclusiveMinimum\":5}", "5.0000001", 1},
		{"{\"exclusiveMaximum\":5}", "5.0", 0},
		{"{\"exclusiveMaximum\":5}", "4", 1},
		{"{\"minimum\":9007199254740993}", "9007199254740992", 0},
		{"{\"minimum\":9007199254740992.0}", "9007199254740993", 1},
		{"{\"maximum\":9007199254740992.0}", "9007199254740993", 0},
		{"{\"minimum\":-1e300}", "-9223372036854775807", 1},
		{"{\"maximum\":-1e300}", "-9223372036854775807", 0},
		{"{\"multipleOf\":2}", "10", 1},
		{"{\"multipleOf\":2}", "7", 0},
		{"{\"multipleOf\":2}", "-8", 1},
		{"{\"multipleOf\":1.5}", "4.5", 1},
		{"{\"multipleOf\":1.5}", "35", 0},
		{"{\"multipleOf\":0.0001}", "0.0075", 1},
		{"{\"multipleOf\":0.0001}", "0.00751", 0},
		{"{\"multipleOf\":0.1}", "0.3", 1},
		{"{\"multipleOf\":0.01}", "19.99", 1},
		{"{\"multipleOf\":0.01}", "19.995", 0},
		{"{\"multipleOf\":0.123456789}", "1e308", 0},
		{"{\"multipleOf\":1e-8}", "12391239123", 1},
		{"{\"multipleOf\":2}", "4.0", 1},
	};
	RUN_CASES(cases);
	ev_schema_error e[1];
	CHECK(errors("{\"minimum\":5}", "3", e, 1) == 1);
	CHECK_STR(e[0].keyword, "minimum");
	CHECK_STR(e[0].message, "3 is less than the minimum 5");
	CHECK(errors("{\"exclusiveMaximum\":0.5}", "0.5", e, 1) == 1);
	CHECK_STR(e[0].message, "0.5 is greater than or equal to the exclusive maximum 0.5");
	CHECK(errors("{\"multipleOf\":0.1}", "0.25", e, 1) == 1);
	CHECK_STR(e[0].message, "0.25 is not a multiple of 0.1");
}

static void test_strings(void)
{
	static const struct vcase cases[] = {
		{"{\"minLength\":2}", "\"ab\"", 1},
		{"{\"minLength\":2}", "\"a\"", 0},
		{"{\"minLength\":2}", "\"\\u00e9\"", 0},        /* 2 bytes, 1 code point */
		{"{\"maxLength\":1}", "\"\\ud83d\\udca9\"", 1}, /* 4 bytes, 1 code point */
		{"{\"maxLength\":2}", "\"\\u00e9\\u00e9\\u00e9\"", 0},
		{"{\"maxLength\":2.0}", "\"ab\"", 1},
		{"{\"minLength\":2}", "1", 1},
		{"{\"pattern\":\"^a*$\"}", "\"aaa\"", 1},
		{"{\"pattern\":\"^a*$\"}", "\"abc\"", 0},
		{"{\"pattern\":\"b\"}", "\"abc\"", 1},        /* a search, not anchored */
		{"{\"pattern\":\"^abc$\"}", "\"abc\\n\"", 0}, /* ECMA "$": only the very end */
		{"{\"pattern\":\"^\\\\u00e9+$\"}", "\"\\u00e9\\u00e9\"", 1},
		{"{\"pattern\":\"^.$\"}", "\"\\u00e9\"", 1}, /* UTF: one character */
		{"{\"pattern\":\"^[0-9]{3}$\"}", "\"12\"", 0},
		{"{\"pattern\":\"x\"}", "true", 1},
	};
	RUN_CASES(cases);
	ev_schema_error e[1];
	CHECK(errors("{\"minLength\":3}", "\"ab\"", e, 1) == 1);
	CHECK_STR(e[0].keyword, "minLength");
	CHECK_STR(e[0].message, "'ab' is shorter than the minimum length 3");
	CHECK(errors("{\"maxLength\":1}", "\"ab\"", e, 1) == 1);
	CHECK_STR(e[0].message, "'ab' is longer than the maximum length 1");
	CHECK(errors("{\"pattern\":\"^[0-9]+$\"}", "\"12a\"", e, 1) == 1);
	CHECK_STR(e[0].keyword, "pattern");
	CHECK_STR(e[0].message, "'12a' does not match '^[0-9]+$'");
	/* long values are cut on a character boundary, the message stays well-formed */
	ev_buf b = EV_BUF_INIT;
	ev_buf_puts(&b, "\"");
	for (int i = 0; i < 300; i++)
		ev_buf_puts(&b, "\\u00e9");
	ev_buf_puts(&b, "\"");
	CHECK(errors("{\"maxLength\":3}", b.data, e, 1) == 1);
	CHECK(strlen(e[0].message) < sizeof(e[0].message));
	CHECK(strstr(e[0].message, "\xc3\xa9...' is longer than the maximum length 3") != NULL);
	ev_buf_free(&b);
	CHECK(errors("{\"enum\":[\"it's\"]}", "\"a\\nb\"", e, 1) == 1);
	CHECK_STR(e[0].message, "'a\\nb' is not one of ['it\\'s']");
}

static void test_arrays(void)
{
	static const struct vcase cases[] = {
		{"{\"items\":{\"type\":\"integer\"}}", "[1,2,3]", 1},
		{"{\"items\":{\"type\":\"integer\"}}", "[1,\"x\"]", 0},
		{"{\"items\":{\"type\":\"integer\"}}", "{\"0\":\"x\"}", 1},
		{"{\"items\":[{\"type\":\"integer\"},{\"type\":\"string\"}]}", "[1,\"a\",null]", 1},
		{"{\"items\":[{\"type\":\"integer\"},{\"type\":\"string\"}]}", "[1,2]", 0},
		{"{\"items\":[{},{}],\"additionalItems\":false}", "[1,2]", 1},
		{"{\"items\":[{},{}],\"additionalItems\":false}", "[1,2,3]", 0},
		{"{\"items\":[{}],\"additionalItems\":{\"type\":\"boolean\"}}", "[1,true,false]",
		 1},
		{"{\"items\":[{}],\"additionalItems\":{\"type\":\"boolean\"}}", "[1,true,2]", 0},
		{"{\"items\":{},\"additionalItems\":false}", "[1,2,3]", 1},
		{"{\"additionalItems\":false}", "[1,2,3]", 1},
		{"{\"items\":[],\"additionalItems\":false}", "[]", 1},
		{"{\"items\":[],\"additionalItems\":false}", "[1]", 0},
		{"{\"items\":false}", "[]", 1},
		{"{\"items\":false}", "[1]", 0},
		{"{\"contains\":{\"minimum\":5}}", "[1,6]", 1},
		{"{\"contains\":{\"minimum\":5}}", "[1,2]", 0},
		{"{\"contains\":{\"minimum\":5}}", "[]", 0},
		{"{\"contains\":true}", "[]", 0},
		{"{\"minItems\":2}", "[1]", 0},
		{"{\"maxItems\":2}", "[1,2,3]", 0},
		{"{\"maxItems\":2}", "\"abc\"", 1},
		{"{\"uniqueItems\":true}", "[1,2,3]", 1},
		{"{\"uniqueItems\":true}", "[1,2,1.0]", 0},
		{"{\"uniqueItems\":true}", "[{\"a\":1,\"b\":2},{\"b\":2,\"a\":1}]", 0},
		{"{\"uniqueItems\":true}", "[[1],[true]]", 1},
		{"{\"uniqueItems\":true}", "[0,false,null,\"0\",[],{}]", 1},
		{"{\"uniqueItems\":false}", "[1,1]", 1},
	};
	RUN_CASES(cases);
	ev_schema_error e[4];
	CHECK(errors("{\"items\":{\"type\":\"integer\"}}", "[1,2,\"x\"]", e, 4) == 1);
	CHECK_STR(e[0].path, "/2");
	CHECK(errors("{\"items\":[{},{}],\"additionalItems\":false}", "[1,2,3]", e, 4) == 1);
	CHECK_STR(e[0].keyword, "additionalItems");
	CHECK_STR(e[0].message, "the array has 3 items, more than the 2 the schema allows");
	CHECK(errors("{\"minItems\":2}", "[1]", e, 1) == 1);
	CHECK_STR(e[0].message, "[1] has fewer than 2 items");
	CHECK(errors("{\"contains\":{\"const\":3}}", "[1,2]", e, 1) == 1);
	CHECK_STR(e[0].keyword, "contains");
	CHECK_STR(e[0].message, "[1,2] has no item valid under the 'contains' schema");
	CHECK(errors("{\"uniqueItems\":true}", "[1,2,1]", e, 1) == 1);
	CHECK_STR(e[0].message, "[1,2,1] has non-unique items (0 and 2 are equal)");

	/* long arrays take the hashed path: same answer, first duplicate reported */
	ev_buf b = EV_BUF_INIT;
	ev_buf_putc(&b, '[');
	for (int i = 0; i < 100; i++)
		ev_buf_printf(&b, "%s{\"k\":[%d,\"v%d\"]}", i ? "," : "", i, i);
	ev_buf_puts(&b, "]");
	CHECK(valid("{\"uniqueItems\":true}", b.data) == 1);
	b.len--;
	ev_buf_puts(&b, ",{\"k\":[70.0,\"v70\"]},{\"k\":[5,\"v5\"]}]");
	CHECK(valid("{\"uniqueItems\":true}", b.data) == 0);
	CHECK(errors("{\"uniqueItems\":true}", b.data, e, 1) == 1);
	CHECK(strstr(e[0].message, "(70 and 100 are equal)") != NULL);
	ev_buf_free(&b);
}

static void test_objects(void)
{
	static const struct vcase cases[] = {
		{"{\"required\":[\"a\",\"b\"]}", "{\"a\":1,\"b\":null}", 1},
		{"{\"required\":[\"a\",\"b\"]}", "{\"a\":1}", 0},
		{"{\"required\":[\"a\"]}", "[\"a\"]", 1},
		{"{\"required\":[]}", "{}", 1},
		{"{\"properties\":{\"a\":{\"type\":\"string\"}}}", "{\"a\":\"x\",\"b\":1}", 1},
		{"{\"properties\":{\"a\":{\"type\":\"string\"}}}", "{\"a\":1}", 0},
		{"{\"properties\":{\"a\":{}},\"additionalProperties\":false}", "{\"a\":1}", 1},
		{"{\"properties\":{\"a\":{}},\"additionalProperties\":false}", "{\"a\":1,\"b\":2}",
		 0},
		{"{\"patternProperties\":{\"^x_\":{}},\"additionalProperties\":false}",
		 "{\"x_1\":1}", 1},
		{"{\"patternProperties\":{\"^x_\":{}},\"additionalProperties\":false}",
		 "{\"y_1\":1}", 0},
		{"{\"patternProperties\":{\"f.*o\":{\"type\":\"integer\"}}}", "{\"xfoox\":1}", 1},
		{"{\"patternProperties\":{\"f.*o\":{\"type\":\"integer\"}}}", "{\"fooo\":\"x\"}",
		 0},
		{"{\"properties\":{\"a\":{\"type\":\"integer\"}},\"patternProperties\":{\"^a\":"
		 "{\"minimum\":5}}}",
		 "{\"a\":3}", 0},
		{"{\"additionalProperties\":{\"type\":\"boolean\"}}", "{\"a\":true}", 1},
		{"{\"additionalProperties\":{\"type\":\"boolean\"}}", "{\"a\":1}", 0},
		{"{\"propertyNames\":{\"maxLength\":3}}", "{\"abc\":1}", 1},
		{"{\"propertyNames\":{\"maxLength\":3}}", "{\"abcd\":1}", 0},
		{"{\"propertyNames\":false}", "{}", 1},
		{"{\"propertyNames\":false}", "{\"a\":1}", 0},
		{"{\"dependencies\":{\"a\":[\"b\"]}}", "{\"a\":1,\"b\":2}", 1},
		{"{\"dependencies\":{\"a\":[\"b\"]}}", "{\"a\":1}", 0},
		{"{\"dependencies\":{\"a\":[\"b\"]}}", "{\"b\":1}", 1},
		{"{\"dependencies\":{\"a\":{\"required\":[\"c\"]}}}", "{\"a\":1,\"c\":1}", 1},
		{"{\"dependencies\":{\"a\":{\"required\":[\"c\"]}}}", "{\"a\":1}", 0},
		{"{\"dependencies\":{\"a\":false}}", "{\"a\":1}", 0},
		{"{\"dependencies\":{\"a\":false}}", "{\"b\":1}", 1},
		{"{\"minProperties\":1}", "{}", 0},
		{"{\"maxProperties\":1}", "{\"a\":1,\"b\":2}", 0},
		{"{\"properties\":{\"__proto__\":{\"type\":\"number\"}}}", "{\"__proto__\":\"x\"}",
		 0},
	};
	RUN_CASES(cases);
	ev_schema_error e[8];
	CHECK(errors("{\"required\":[\"ts\"]}", "{}", e, 1) == 1);
	CHECK_STR(e[0].path, "");
	CHECK_STR(e[0].keyword, "required");
	CHECK_STR(e[0].message, "'ts' is required");
	CHECK(errors("{\"properties\":{\"a\":{\"properties\":{\"b/c~\":{\"type\":\"string\"}}}}}",
		     "{\"a\":{\"b/c~\":1}}", e, 1) == 1);
	CHECK_STR(e[0].path, "/a/b~1c~0");
	CHECK(errors("{\"properties\":{\"a\":{}},\"additionalProperties\":false}",
		     "{\"a\":1,\"b\":2,\"c\":3}", e, 8) == 2);
	CHECK_STR(e[0].path, "/b");
	CHECK_STR(e[0].keyword, "additionalProperties");
	CHECK_STR(e[0].message, "additional property 'b' is not allowed");
	CHECK_STR(e[1].path, "/c");
	CHECK(errors("{\"propertyNames\":{\"pattern\":\"^[a-z]+$\"}}", "{\"ok\":1,\"Foo\":2}", e,
		     1) == 1);
	CHECK_STR(e[0].path, "/Foo");
	CHECK_STR(e[0].keyword, "propertyNames");
	CHECK_STR(e[0].message, "property name 'Foo' does not match '^[a-z]+$'");
	CHECK(errors("{\"dependencies\":{\"card\":[\"billing\"]}}", "{\"card\":1}", e, 1) == 1);
	CHECK_STR(e[0].keyword, "dependencies");
	CHECK_STR(e[0].message, "'billing' is required when 'card' is present");
	CHECK(errors("{\"maxProperties\":1}", "{\"a\":1,\"b\":2}", e, 1) == 1);
	CHECK_STR(e[0].message, "{'a':1,'b':2} has more than 1 property");
}

static void test_combinators(void)
{
	static const struct vcase cases[] = {
		{"{\"allOf\":[{\"minimum\":1},{\"maximum\":3}]}", "2", 1},
		{"{\"allOf\":[{\"minimum\":1},{\"maximum\":3}]}", "4", 0},
		{"{\"anyOf\":[{\"type\":\"string\"},{\"minimum\":3}]}", "\"a\"", 1},
		{"{\"anyOf\":[{\"type\":\"string\"},{\"minimum\":3}]}", "4", 1},
		{"{\"anyOf\":[{\"type\":\"string\"},{\"minimum\":3}]}", "2", 0},
		{"{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}", "1", 1},
		{"{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}", "2.5", 1},
		{"{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}", "3", 0},
		{"{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}", "1.5", 0},
		{"{\"not\":{\"type\":\"integer\"}}", "\"a\"", 1},
		{"{\"not\":{\"type\":\"integer\"}}", "1", 0},
		{"{\"not\":{\"not\":{\"type\":\"integer\"}}}", "1", 1},
		{"{\"if\":{\"minimum\":0},\"then\":{\"multipleOf\":2},\"else\":{\"multipleOf\":3}}",
		 "4", 1},
		{"{\"if\":{\"minimum\":0},\"then\":{\"multipleOf\":2},\"else\":{\"multipleOf\":3}}",
		 "3", 0},
		{"{\"if\":{\"minimum\":0},\"then\":{\"multipleOf\":2},\"else\":{\"multipleOf\":3}}",
		 "-3", 1},
		{"{\"if\":{\"minimum\":0},\"then\":{\"multipleOf\":2},\"else\":{\"multipleOf\":3}}",
		 "-2", 0},
		{"{\"then\":false,\"else\":false}", "1", 1},
		{"{\"if\":true,\"then\":false}", "1", 0},
		{"{\"if\":false,\"then\":false}", "1", 1},
	};
	RUN_CASES(cases);
	ev_schema_error e[2];
	CHECK(errors("{\"anyOf\":[{\"type\":\"string\"},{\"minimum\":3}]}", "2", e, 2) == 1);
	CHECK_STR(e[0].keyword, "anyOf");
	CHECK_STR(e[0].message, "2 is not valid under any of the 2 anyOf schemas");
	CHECK(errors("{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}", "3", e, 2) == 1);
	CHECK_STR(e[0].keyword, "oneOf");
	CHECK_STR(e[0].message, "3 is valid under more than one of the oneOf schemas (0 and 1)");
	CHECK(errors("{\"not\":{\"const\":\"x\"}}", "\"x\"", e, 2) == 1);
	CHECK_STR(e[0].message, "'x' must not be valid under the 'not' schema");
	/* the errors of then/else are reported as their own keywords */
	CHECK(errors("{\"if\":{\"required\":[\"a\"]},\"then\":{\"required\":[\"b\"]}}", "{\"a\":1}",
		     e, 2) == 1);
	CHECK_STR(e[0].keyword, "required");
	CHECK_STR(e[0].message, "'b' is required");
}

static void test_boolean_schemas(void)
{
	static const struct vcase cases[] = {
		{"true", "1", 1},
		{"true", "{\"a\":[null]}", 1},
		{"false", "1", 0},
		{"false", "null", 0},
		{"{}", "\"anything\"", 1},
		{"{\"properties\":{\"a\":false}}", "{\"a\":1}", 0},
		{"{\"properties\":{\"a\":false}}", "{\"b\":1}", 1},
		{"{\"properties\":{\"a\":true}}", "{\"a\":1}", 1},
		{"{\"allOf\":[true,false]}", "1", 0},
		{"{\"anyOf\":[true,false]}", "1", 1},
		{"{\"oneOf\":[true,true]}", "1", 0},
	};
	RUN_CASES(cases);
	ev_schema_error e[1];
	CHECK(errors("{\"properties\":{\"a\":false}}", "{\"a\":1}", e, 1) == 1);
	CHECK_STR(e[0].path, "/a");
	CHECK_STR(e[0].keyword, "false");
	CHECK_STR(e[0].message, "1 is not allowed here (the schema is false)");
}

static void test_refs(void)
{
	static const struct vcase cases[] = {
		/* "#" and recursion */
		{"{\"properties\":{\"foo\":{\"$ref\":\"#\"}},\"additionalProperties\":false}",
		 "{\"foo\":{\"foo\":{}}}", 1},
		{"{\"properties\":{\"foo\":{\"$ref\":\"#\"}},\"additionalProperties\":false}",
		 "{\"foo\":{\"bar\":{}}}", 0},
		{"{\"definitions\":{\"a\":{\"type\":\"integer\"},\"b\":{\"$ref\":\"#/definitions/a\"}},"
		 "\"$ref\":\"#/definitions/b\"}",
		 "\"x\"", 0},
		/* escapes: ~0 ~1 and %-encoding */
		{"{\"definitions\":{\"a~b/c%d\\\"e\":{\"type\":\"integer\"}},"
		 "\"$ref\":\"#/definitions/a~0b~1c%25d%22e\"}",
		 "\"x\"", 0},
		{"{\"definitions\":{\"a~b/c%d\\\"e\":{\"type\":\"integer\"}},"
		 "\"$ref\":\"#/definitions/a~0b~1c%25d%22e\"}",
		 "1", 1},
		{"{\"items\":[{\"type\":\"integer\"},{\"$ref\":\"#/items/0\"}]}", "[1,\"x\"]", 0},
		{"{\"definitions\":{\"\":{\"definitions\":{\"\":{\"type\":\"number\"}}}},"
		 "\"allOf\":[{\"$ref\":\"#/definitions//definitions/\"}]}",
		 "\"a\"", 0},
		/* a $ref replaces its siblings */
		{"{\"definitions\":{\"r\":{\"type\":\"array\"}},\"properties\":{\"foo\":"
		 "{\"$ref\":\"#/definitions/r\",\"maxItems\":2}}}",
		 "{\"foo\":[1,2,3]}", 1},
		/* a property called $ref is not a reference */
		{"{\"properties\":{\"$ref\":{\"type\":\"string\"}}}", "{\"$ref\":2}", 0},
		/* $id: relative, nearest parent, anchors, URNs, file URIs */
		{"{\"$id\":\"http://localhost:1234/tree\",\"type\":\"object\",\"properties\":{"
		 "\"nodes\":{\"type\":\"array\",\"items\":{\"$ref\":\"node\"}}},\"definitions\":{"
		 "\"node\":{\"$id\":\"http://localhost:1234/node\",\"properties\":{\"value\":"
		 "{\"type\":\"number\"},\"subtree\":{\"$ref\":\"tree\"}},\"required\":[\"value\"]}}}",
		 "{\"nodes\":[{\"value\":1,\"subtree\":{\"nodes\":[{\"value\":\"x\"}]}}]}", 0},
		{"{\"$id\":\"http://example.com/a.json\",\"definitions\":{\"x\":{\"$id\":"
		 "\"http://example.com/b/c.json\",\"not\":{\"definitions\":{\"y\":{\"$id\":\"d.json\","
		 "\"type\":\"number\"}}}}},\"allOf\":[{\"$ref\":\"http://example.com/b/d.json\"}]}",
		 "\"a\"", 0},
		{"{\"$id\":\"http://example.com/a.json\",\"definitions\":{\"x\":{\"$id\":"
		 "\"http://example.com/b/c.json\",\"not\":{\"definitions\":{\"y\":{\"$id\":\"d.json\","
		 "\"type\":\"number\"}}}}},\"allOf\":[{\"$ref\":\"http://example.com/b/d.json\"}]}",
		 "1", 1},
		{"{\"allOf\":[{\"$ref\":\"#foo\"}],\"definitions\":{\"A\":{\"$id\":\"#foo\","
		 "\"type\":\"integer\"}}}",
		 "\"a\"", 0},
		{"{\"$id\":\"http://localhost:1234/root\",\"allOf\":[{\"$ref\":"
		 "\"http://localhost:1234/nested.json#foo\"}],\"definitions\":{\"A\":{\"$id\":"
		 "\"nested.json\",\"definitions\":{\"B\":{\"$id\":\"#foo\",\"type\":\"integer\"}}}}}",
		 "\"a\"", 0},
		{"{\"$id\":\"urn:uuid:deadbeef-1234-ffff-ffff-4321feebdaed\",\"minimum\":30,"
		 "\"properties\":{\"foo\":{\"$ref\":\"urn:uuid:deadbeef-1234-ffff-ffff-4321feebdaed\"}}}",
		 "{\"foo\":12}", 0},
		{"{\"$id\":\"urn:example:weather?=op=map&lat=39.56\",\"properties\":{\"foo\":{\"$ref\":"
		 "\"#/definitions/bar\"}},\"definitions\":{\"bar\":{\"type\":\"string\"}}}",
		 "{\"foo\":12}", 0},
		{"{\"$id\":\"file:///folder/file.json\",\"definitions\":{\"foo\":{\"type\":\"number\"}},"
		 "\"allOf\":[{\"$ref\":\"#/definitions/foo\"}]}",
		 "\"a\"", 0},
		{"{\"$id\":\"http://example.com/ref/absref.json\",\"definitions\":{\"a\":{\"$id\":"
		 "\"http://example.com/ref/absref/foobar.json\",\"type\":\"number\"},\"b\":{\"$id\":"
		 "\"http://example.com/absref/foobar.json\",\"type\":\"string\"}},\"allOf\":[{\"$ref\":"
		 "\"/absref/foobar.json\"}]}",
		 "\"a\"", 1},
		{"{\"$id\":\"http://x.org/a/b/c.json\",\"definitions\":{\"d\":{\"$id\":\"../d.json\","
		 "\"type\":\"string\"}},\"$ref\":\"./../d.json\"}",
		 "1", 0},
		/* a $ref ignores a sibling $id (draft-07) */
		{"{\"$id\":\"http://localhost:1234/sibling_id/base/\",\"definitions\":{\"foo\":{\"$id\":"
		 "\"http://localhost:1234/sibling_id/foo.json\",\"type\":\"string\"},\"base_foo\":{"
		 "\"$id\":\"foo.json\",\"type\":\"number\"}},\"allOf\":[{\"$id\":"
		 "\"http://localhost:1234/sibling_id/\",\"$ref\":\"foo.json\"}]}",
		 "\"a\"", 0},
		{"{\"$ref\":\"http://example.com/ref/if\",\"if\":{\"$id\":\"http://example.com/ref/if\","
		 "\"type\":\"integer\"}}",
		 "\"foo\"", 0},
		/* an $id inside enum or const is no identifier */
		{"{\"definitions\":{\"e\":{\"enum\":[{\"$id\":\"https://x/my.json\",\"type\":\"null\"}]},"
		 "\"real\":{\"$id\":\"https://x/my.json\",\"type\":\"string\"}},\"anyOf\":[{\"$ref\":"
		 "\"#/definitions/e\"},{\"$ref\":\"https://x/my.json\"}]}",
		 "null", 0},
		/* a $ref into an unknown member makes it a container of schemas */
		{"{\"tilda~field\":{\"type\":\"integer\"},\"properties\":{\"t\":{\"$ref\":"
		 "\"#/tilda~0field\"}}}",
		 "{\"t\":\"x\"}", 0},
		/* the draft-07 meta-schema is built in */
		{"{\"$ref\":\"http://json-schema.org/draft-07/schema#\"}", "{\"minLength\":1}", 1},
		{"{\"$ref\":\"http://json-schema.org/draft-07/schema#\"}", "{\"minLength\":-1}", 0},
		{"{\"$ref\":\"https://json-schema.org/draft-07/schema\"}", "{\"type\":\"nope\"}",
		 0},
		{"{\"$ref\":\"http://json-schema.org/draft-07/schema#/definitions/nonNegativeInteger\"}",
		 "-1", 0},
		{"{\"$schema\":\"http://json-schema.org/draft-07/schema#\",\"type\":\"string\"}",
		 "1", 0},
	};
	RUN_CASES(cases);

	/* recursive data, deeper than any sane record */
	ev_buf b = EV_BUF_INIT;
	for (int i = 0; i < 1000; i++)
		ev_buf_puts(&b, "{\"c\":");
	ev_buf_puts(&b, "{}");
	for (int i = 0; i < 1000; i++)
		ev_buf_puts(&b, "}");
	const char *tree = "{\"type\":\"object\",\"properties\":{\"c\":{\"$ref\":\"#\"}}}";
	CHECK(valid(tree, b.data) == 1);
	ev_buf_reset(&b);
	for (int i = 0; i < 1000; i++)
		ev_buf_puts(&b, "{\"c\":");
	ev_buf_puts(&b, "1");
	for (int i = 0; i < 1000; i++)
		ev_buf_puts(&b, "}");
	CHECK(valid(tree, b.data) == 0);
	ev_schema_error e[1];
	CHECK(errors(tree, b.data, e, 1) == 1);
	CHECK(strlen(e[0].path) == 255 && strcmp(e[0].path + 252, "...") == 0);
	CHECK(strncmp(e[0].path, "/c/c/c/", 7) == 0);
	ev_buf_free(&b);
}

static void test_compile_errors(void)
{
	refused("{\"properties\":{\"x\":{\"type\":\"string\",\"foo\":1}}}",
		"unsupported keyword 'foo' at '#/properties/x'");
	refused("{\"requierd\":[\"a\"]}", "unsupported keyword 'requierd' at '#'");
	refused("{\"items\":[{},{\"maxlength\":3}]}",
		"unsupported keyword 'maxlength' at '#/items/1'");
	refused("{\"$ref\":\"#/definitions/a\",\"definitions\":{\"a\":{}},\"definition\":{}}",
		"unsupported keyword 'definition' at '#'");
	refused("{\"prefixItems\":[{}]}", "unsupported keyword 'prefixItems' at '#'");
	refused("{\"properties\":{\"a\":{\"$ref\":\"http://example.com/s.json\"}}}",
		"remote $ref 'http://example.com/s.json' at '#/properties/a' is not supported (no "
		"network access)");
	refused("{\"$ref\":\"other.json#/a\"}",
		"$ref 'other.json#/a' at '#' does not resolve within "
		"the schema");
	refused("{\"$ref\":\"#/definitions/nope\"}",
		"$ref '#/definitions/nope' at '#' does not resolve within the schema");
	refused("{\"$ref\":\"#/definitions/a%zz\",\"definitions\":{}}",
		"$ref '#/definitions/a%zz' at '#' does not resolve within the schema");
	refused("{\"minimum\":\"x\"}", "keyword 'minimum' at '#' must be a number");
	refused("{\"properties\":{\"n\":{\"minLength\":-1}}}",
		"keyword 'minLength' at '#/properties/n' must be a non-negative integer");
	refused("{\"maxItems\":1.5}", "keyword 'maxItems' at '#' must be a non-negative integer");
	refused("{\"multipleOf\":0}",
		"keyword 'multipleOf' at '#' must be a number greater than 0");
	refused("{\"type\":\"str\"}",
		"keyword 'type' at '#' must be a type name (null, boolean, "
		"object, array, number, string, integer) or an array of them");
	refused("{\"type\":[]}",
		"keyword 'type' at '#' must be a type name (null, boolean, object, "
		"array, number, string, integer) or an array of them");
	refused("{\"required\":\"a\"}", "keyword 'required' at '#' must be an array of strings");
	refused("{\"enum\":1}", "keyword 'enum' at '#' must be an array");
	refused("{\"anyOf\":[]}", "keyword 'anyOf' at '#' must be a non-empty array of schemas");
	refused("{\"properties\":{\"a\":3}}", "schema at '#/properties/a' must be an object or a "
					      "boolean");
	refused("{\"uniqueItems\":1}", "keyword 'uniqueItems' at '#' must be a boolean");
	refused("{\"format\":7}", "keyword 'format' at '#' must be a string");
	refused("{\"title\":7}", "keyword 'title' at '#' must be a string");
	refused("{\"pattern\":\"(\"}", "invalid regex '(' in keyword 'pattern' at '#': missing "
				       "closing parenthesis at offset 1");
	refused("{\"patternProperties\":{\"[\":{}}}",
		"invalid regex '[' in property name of 'patternProperties' at '#': missing "
		"terminating ] for character class at offset 1");
	refused("{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\"}",
		"unsupported $schema 'https://json-schema.org/draft/2020-12/schema' at '#': only "
		"draft-07 is supported");
	refused("{\"$ref\":\"#\"}",
		"$ref cycle at '#': the schema applies itself to the same value "
		"without end");
	refused("{\"definitions\":{\"a\":{\"allOf\":[{\"$ref\":\"#/definitions/b\"}]},\"b\":{"
		"\"not\":{\"$ref\":\"#/definitions/a\"}}}}",
		"$ref cycle at '#/definitions/a': the schema applies itself to the same value "
		"without end");
	refused("1", "schema at '#' must be an object or a boolean");
	CHECK(ev_schema_compile(NULL, cerr, sizeof(cerr)) == NULL);

	/* not errors: names that only look like keywords, annotations, unknown formats */
	CHECK(valid("{\"properties\":{\"foo\":{},\"requierd\":{}},\"definitions\":{\"bar\":{}}}",
		    "{}") == 1);
	CHECK(valid("{\"enum\":[{\"foo\":1}],\"const\":{\"foo\":1},\"default\":{\"bar\":2},"
		    "\"examples\":[{\"baz\":3}]}",
		    "{\"foo\":1}") == 1);
	CHECK(valid("{\"$schema\":\"http://json-schema.org/draft-07/schema\",\"$id\":"
		    "\"http://x/y.json\",\"$comment\":\"c\",\"title\":\"t\",\"description\":\"d\","
		    "\"readOnly\":true,\"writeOnly\":false,\"contentMediaType\":\"application/json\","
		    "\"contentEncoding\":\"base64\",\"format\":\"uri\"}",
		    "\"http://x/\"") == 1);

	/* a format that is not asserted is refused, as an unknown keyword is, unless formats
	 * are taken as annotations; the asserted ones are asserted either way */
	refused("{\"properties\":{\"h\":{\"format\":\"idn-hostname\"}}}",
		"unsupported format 'idn-hostname' at '#/properties/h': the formats asserted are "
		"date-time, date, time, email, uuid, ipv4, ipv6, hostname, uri, uri-reference, "
		"iri, iri-reference, json-pointer, relative-json-pointer and regex");
	refused("{\"format\":\"made-up\"}", NULL);
	refused("{\"format\":\"uri-template\"}", NULL);
	json_t *doc = json_loads("{\"properties\":{\"a\":{\"format\":\"made-up\"},"
				 "\"b\":{\"format\":\"hostname\"}}}",
				 0, NULL);
	ev_schema *s =
		ev_schema_compile_flags(doc, EV_SCHEMA_FORMATS_AS_ANNOTATIONS, cerr, sizeof(cerr));
	CHECK(s != NULL);
	json_t *x = json_loads("{\"a\":\"anything\",\"b\":\"-bad-\"}", 0, NULL);
	CHECK(ev_schema_validate(s, x, NULL, 0) == 1);
	json_object_set_new(x, "b", json_string("example.com"));
	CHECK(ev_schema_validate(s, x, NULL, 0) == 0);
	json_decref(x);
	json_decref(doc);
	ev_schema_free(s);
}

static void test_formats(void)
{
	static const struct {
		const char *format, *value;
		int valid;
	} cases[] = {
		{"date", "2024-02-29", 1},
		{"date", "2023-02-29", 0},
		{"date", "2024-02-30", 0},
		{"date", "2100-02-29", 0},
		{"date", "2000-02-29", 1},
		{"date", "2024-04-31", 0},
		{"date", "2024-12-31", 1},
		{"date", "2024-13-01", 0},
		{"date", "2024-00-10", 0},
		{"date", "2024-1-01", 0},
		{"date", "2024-01-01T00:00:00Z", 0},
		{"date", "2013-350", 0},
		{"date", "1963-06-1\xe0\xa7\xaa", 0},
		{"time", "08:30:06Z", 1},
		{"time", "08:30:06.283185z", 1},
		{"time", "08:30:06+00:20", 1},
		{"time", "12:34:56-00:00", 1},
		{"time", "23:59:60Z", 1},
		{"time", "22:59:60Z", 0},
		{"time", "23:58:60Z", 0},
		{"time", "15:59:60-08:00", 1},
		{"time", "01:29:60+01:30", 1},
		{"time", "23:29:60+23:30", 1},
		{"time", "00:29:60-23:30", 1},
		{"time", "23:59:60+01:00", 0},
		{"time", "00:00:61Z", 0},
		{"time", "24:00:00Z", 0},
		{"time", "00:60:00Z", 0},
		{"time", "01:02:03+24:00", 0},
		{"time", "01:02:03+00:60", 0},
		{"time", "01:02:03Z+00:30", 0},
		{"time", "12:00:00", 0},
		{"time", "12:00:00.Z", 0},
		{"time", "8:3:6Z", 0},
		{"time", "08:30:06 PST", 0},
		{"time", "01:01:01,1111", 0},
		{"time", "08:30:06-8:000", 0},
		{"date-time", "1963-06-19T08:30:06.283185Z", 1},
		{"date-time", "1963-06-19t08:30:06z", 1},
		{"date-time", "1998-12-31T23:59:60Z", 1},
		{"date-time", "1998-12-31T15:59:60.123-08:00", 1},
		{"date-time", "1998-12-31T22:59:60Z", 0},
		{"date-time", "1990-02-31T15:59:59.123-08:00", 0},
		{"date-time", "1963-06-19 08:30:06Z", 0},
		{"date-time", "1985-04-12T23:20:50Z\n", 0},
		{"date-time", "1985-04-12T23:20Z", 0},
		{"date-time", "1985-04-12T23:20:50+01", 0},
		{"date-time", "+11963-06-19T08:30:06Z", 0},
		{"email", "joe.bloggs@example.com", 1},
		{"email", "joe.bloggs@123.24-7-examples.com", 1},
		{"email", "te~st@example.com", 1},
		{"email", "~test@example.com", 1},
		{"email", "te.s.t@example.com", 1},
		{"email", "\"joe bloggs\"@example.com", 1},
		{"email", "\"joe@bloggs\"@example.com", 1},
		{"email", "joe.bloggs@[127.0.0.1]", 1},
		{"email", "joe.bloggs@[IPv6:::1]", 1},
		{"email", "2962", 0},
		{"email", ".test@example.com", 0},
		{"email", "test.@example.com", 0},
		{"email", "te..st@example.com", 0},
		{"email", "joe.bloggs@invalid=domain.com", 0},
		{"email", "joe.bloggs@[127.0.0.300]", 0},
		{"email", "@example.com", 0},
		{"email", "joe@", 0},
		{"email", "joe@-example.com", 0},
		{"uuid", "2EB8AA08-AA98-11EA-B4AA-73B441D16380", 1},
		{"uuid", "2eb8aa08-aa98-11ea-b4aa-73b441d16380", 1},
		{"uuid", "00000000-0000-0000-0000-000000000000", 1},
		{"uuid", "98d80576-482e-427f-8434-7f86890ab222", 1},
		{"uuid", "2eb8aa08-aa98-11ea-b4aa-73b441d1638", 0},
		{"uuid", "2eb8aa08-aa98-11ea-73b441d16380", 0},
		{"uuid", "2eb8aa08-aa98-11ea-b4ga-73b441d16380", 0},
		{"uuid", "2eb8aa08aa9811eab4aa73b441d16380", 0},
		{"uuid", "2eb8-aa08-aa98-11ea-b4aa73b44-1d16380", 0},
		{"uuid", "{2eb8aa08-aa98-11ea-b4aa-73b441d16380}", 0},
		{"ipv4", "192.168.0.1", 1},
		{"ipv4", "0.0.0.0", 1},
		{"ipv4", "255.255.255.255", 1},
		{"ipv4", "127.0.0.0.1", 0},
		{"ipv4", "256.256.256.256", 0},
		{"ipv4", "127.0", 0},
		{"ipv4", "0x7f000001", 0},
		{"ipv4", "2130706433", 0},
		{"ipv4", "087.10.0.1", 0},
		{"ipv4", "87.10.0.1 ", 0},
		{"ipv4", "1.2.3.\xe0\xa7\xa8", 0},
		{"ipv4", "192.168.1.0/24", 0},
		{"ipv6", "::1", 1},
		{"ipv6", "::", 1},
		{"ipv6", "::42:ff:1", 1},
		{"ipv6", "d6::", 1},
		{"ipv6", "1:2:3:4:5:6:7:8", 1},
		{"ipv6", "fe80::1ff:fe23:4567:890a", 1},
		{"ipv6", "1::d6:192.168.0.1", 1},
		{"ipv6", "1:2::192.168.0.1", 1},
		{"ipv6", "::ffff:192.168.0.1", 1},
		{"ipv6", "1:2:3:4:5:6:1.2.3.4", 1},
		{"ipv6", "1:2:3:4:5:6:7:1.2.3.4", 0},
		{"ipv6", "12345::", 0},
		{"ipv6", "1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1", 0},
		{"ipv6", "::laptop", 0},
		{"ipv6", ":2:3:4:5:6:7:8", 0},
		{"ipv6", "1:2:3:4:5:6:7:", 0},
		{"ipv6", ":2:3:4::8", 0},
		{"ipv6", "1::d6::42", 0},
		{"ipv6", "1::2:192.168.256.1", 0},
		{"ipv6", "1::2:192.168.ff.1", 0},
		{"ipv6", "1:2:3:4:5:::8", 0},
		{"ipv6", "1:2:3:4:5:6:7", 0},
		{"ipv6", "1", 0},
		{"ipv6", "127.0.0.1", 0},
		{"ipv6", "1:2:3:4:1.2.3", 0},
		{"ipv6", "  ::1", 0},
		{"ipv6", "::1  ", 0},
		{"ipv6", "fe80::/64", 0},
		{"ipv6", "fe80::a%eth1", 0},
		{"ipv6", "1:2:3:4:5:6:7:8:9", 0},
		{"ipv6", "1::2:3:4:5:6:7:8", 0},
		{"hostname", "www.example.com", 1},
		{"hostname", "xn--4gbwdl.xn--wgbh1c", 1},
		{"hostname", "-a-host-name-that-starts-with--", 0},
		{"hostname", "not_a_valid_host_name", 0},
		{"hostname", "a.b..c", 0},
		{"uri", "http://foo.bar/?baz=qux#quux", 1},
		{"uri", "ftp://ftp.is.co.za/rfc/rfc1808.txt", 1},
		{"uri", "http://[2001:db8::7]/c=GB?objectClass?one", 1},
		{"uri", "urn:oasis:names:specification:docbook:dtd:xml:4.1.2", 1},
		{"uri", "mailto:John.Doe@example.com", 1},
		{"uri", "http://user:pass@host:8080/p%20q", 1},
		{"uri", "//foo.bar/?baz=qux#quux", 0},
		{"uri", "/abc", 0},
		{"uri", "\\\\WINDOWS\\fileshare", 0},
		{"uri", "http:// shouldfail.com", 0},
		{"uri", "http://example.com/a%2", 0},
		{"uri", "http://[::1/", 0},
		{"uri", "http://h:80a/", 0},
		{"uri", "1http://x", 0},
		{"uri", "http://\xc3\xa9.example/", 0},
		{"uri-reference", "/abc", 1},
		{"uri-reference", "#fragment", 1},
		{"uri-reference", "", 1},
		{"uri-reference", "../a?b", 1},
		{"uri-reference", "a:b", 1},
		{"uri-reference", "1a:b", 0},
		{"uri-reference", "#frag\\ment", 0},
		{"iri", "http://\xc3\xa9.example/\xc3\xa4", 1},
		{"iri", "/\xc3\xa4", 0},
		{"iri-reference", "/\xc3\xa4", 1},
		{"json-pointer", "", 1},
		{"json-pointer", "/foo/0/a~1b/~0", 1},
		{"json-pointer", "/", 1},
		{"json-pointer", "foo", 0},
		{"json-pointer", "/foo/~", 0},
		{"json-pointer", "/~2", 0},
		{"relative-json-pointer", "1", 1},
		{"relative-json-pointer", "0#", 1},
		{"relative-json-pointer", "2/foo/0", 1},
		{"relative-json-pointer", "01", 0},
		{"relative-json-pointer", "/foo", 0},
		{"relative-json-pointer", "1##", 0},
		{"regex", "^[a-z]+(\\d{2})?$", 1},
		{"regex", "([abc]", 0},
		{"regex", "[z-a]", 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char schema[64];
		snprintf(schema, sizeof(schema), "{\"format\":\"%s\"}", cases[i].format);
		json_t *x = json_string(cases[i].value);
		char *inst = json_dumps(x, JSON_ENCODE_ANY);
		int got = valid(schema, inst);
		if (got != cases[i].valid)
			fprintf(stderr, "%s: format %s: '%s': got %d, want %d\n", test_current,
				cases[i].format, cases[i].value, got, cases[i].valid);
		CHECK(got == cases[i].valid);
		free(inst);
		json_decref(x);
	}
	/* formats apply to strings only */
	CHECK(valid("{\"format\":\"date\"}", "20240101") == 1);
	CHECK(valid("{\"format\":\"ipv4\"}", "{}") == 1);
	ev_schema_error e[1];
	CHECK(errors("{\"properties\":{\"day\":{\"format\":\"date\"}}}", "{\"day\":\"2024-02-30\"}",
		     e, 1) == 1);
	CHECK_STR(e[0].path, "/day");
	CHECK_STR(e[0].keyword, "format");
	CHECK_STR(e[0].message, "'2024-02-30' is not a valid date");
}

static void test_collecting(void)
{
	const char *schema = "{\"type\":\"object\",\"required\":[\"ts\",\"id\"],\"properties\":{"
			     "\"n\":{\"minimum\":0},\"tags\":{\"items\":{\"type\":\"string\"}}}}";
	const char *bad = "{\"n\":-1,\"tags\":[\"a\",2,3]}";
	ev_schema_error e[10];
	CHECK(errors(schema, bad, e, 10) == 5);
	CHECK_STR(e[0].message, "'ts' is required");
	CHECK_STR(e[1].message, "'id' is required");
	CHECK_STR(e[2].path, "/n");
	CHECK_STR(e[2].message, "-1 is less than the minimum 0");
	CHECK_STR(e[3].path, "/tags/1");
	CHECK_STR(e[4].path, "/tags/2");
	/* in the order the schema lists its properties */
	CHECK(errors("{\"properties\":{\"z\":{\"type\":\"string\"},\"a\":{\"type\":\"string\"}}}",
		     "{\"a\":1,\"z\":2}", e, 10) == 2);
	CHECK_STR(e[0].path, "/z");
	CHECK_STR(e[1].path, "/a");
	CHECK(errors(schema, bad, e, 2) == 2);
	CHECK_STR(e[1].message, "'id' is required");
	CHECK(errors(schema, bad, e, 1) == 1);
	CHECK(errors(schema, bad, NULL, 0) == 1);
	CHECK(errors(schema, bad, NULL, 3) == 3);
	CHECK(errors(schema, "{\"ts\":1,\"id\":2}", e, 10) == 0);
	CHECK(errors(schema, "{\"ts\":1,\"id\":2}", NULL, 0) == 0);

	/* a compiled schema is reused across records and unaffected by changes to the doc */
	json_t *doc = json_loads(schema, 0, NULL);
	ev_schema *s = ev_schema_compile(doc, cerr, sizeof(cerr));
	json_object_del(json_object_get(doc, "properties"), "n");
	json_decref(doc);
	CHECK(s != NULL);
	for (int i = 0; s && i < 3; i++) {
		json_t *x = json_pack("{s:i,s:i,s:i}", "ts", 1, "id", 2, "n", i - 1);
		CHECK(ev_schema_validate(s, x, NULL, 0) == (i == 0));
		json_decref(x);
	}
	ev_schema_free(s);
	ev_schema_free(NULL);
}

static void test_load_file(void)
{
	char err[512];
	char path[] = "/tmp/test_schema_XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	const char *text = "{\"type\":\"object\",\"required\":[\"ts\"]}";
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	ev_schema *s = ev_schema_load_file(path, err, sizeof(err));
	CHECK(s != NULL);
	json_t *x = json_object();
	CHECK(ev_schema_validate(s, x, NULL, 0) == 1);
	json_decref(x);
	ev_schema_free(s);

	FILE *f = fopen(path, "w");
	fputs("{\"type\":\"object\",\n\"bogus\":1}", f);
	fclose(f);
	CHECK(ev_schema_load_file(path, err, sizeof(err)) == NULL);
	CHECK_STR(err, "unsupported keyword 'bogus' at '#'");

	f = fopen(path, "w");
	fputs("{\"type\":\n", f);
	fclose(f);
	CHECK(ev_schema_load_file(path, err, sizeof(err)) == NULL);
	char want[600];
	snprintf(want, sizeof(want), "%s:2:0: ", path);
	CHECK(strncmp(err, want, strlen(want)) == 0);

	f = fopen(path, "w");
	fputs("{\"type\":\"string\",\"type\":\"integer\"}", f);
	fclose(f);
	CHECK(ev_schema_load_file(path, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "duplicate object key") != NULL);
	unlink(path);

	CHECK(ev_schema_load_file("/nonexistent/s.json", err, sizeof(err)) == NULL);
	CHECK_STR(err, "cannot open '/nonexistent/s.json': No such file or directory");
}

/* ev_schema_valid_fast on instance, the root's member skip (or NULL) taken as absent: 1, 0, or
 * -1 when the fast parser leaves the text to jansson. A 1 is checked against jansson with the
 * member deleted. */
static int fast_valid(const char *schema, const char *instance, const char *skip)
{
	ev_schema *s = compile_str(schema);
	size_t k;
	const ev_fj_node *nd = s ? ev_fj_parse(fj, instance, strlen(instance), &k) : NULL;
	int quick = nd ? ev_schema_valid_fast(s, nd, 0, skip, skip ? strlen(skip) : 0) : -1;
	json_t *x = json_loads(instance, JSON_DECODE_ANY, NULL);
	if (skip && json_is_object(x))
		json_object_del(x, skip);
	if (quick == 1)
		CHECK(x && ev_schema_validate(s, x, NULL, 0) == 0);
	json_decref(x);
	ev_schema_free(s);
	return quick;
}

static void test_fast_path(void)
{
	static const struct {
		const char *schema, *instance, *skip;
		int want;
	} cases[] = {
		/* the skipped member is absent for every keyword that sees the root object */
		{"{\"additionalProperties\":false,\"properties\":{\"a\":{}}}",
		 "{\"_src\":{\"t\":1},\"a\":1}", "_src", 1},
		{"{\"additionalProperties\":false,\"properties\":{\"a\":{}}}",
		 "{\"_src\":{\"t\":1},\"a\":1}", NULL, 0},
		{"{\"additionalProperties\":false}", "{}", "_src", 1},
		{"{\"required\":[\"_src\"]}", "{\"_src\":1}", "_src", 0},
		{"{\"maxProperties\":1}", "{\"_src\":1,\"a\":2}", "_src", 1},
		{"{\"maxProperties\":1}", "{\"_src\":1,\"a\":2}", NULL, 0},
		{"{\"minProperties\":1}", "{\"_src\":1}", "_src", 0},
		{"{\"const\":{\"a\":1}}", "{\"_src\":1,\"a\":1}", "_src", 1},
		{"{\"const\":{\"a\":1}}", "{\"a\":1.0,\"_src\":1}", "_src", 1},
		{"{\"enum\":[{\"a\":[1]}]}", "{\"a\":[1],\"_src\":1}", "_src", 1},
		{"{\"enum\":[{\"a\":[1]}]}", "{\"a\":[1],\"_src\":1}", NULL, 0},
		{"{\"dependencies\":{\"_src\":[\"b\"]}}", "{\"_src\":1}", "_src", 1},
		{"{\"dependencies\":{\"_src\":[\"b\"]}}", "{\"_src\":1}", NULL, 0},
		{"{\"dependencies\":{\"a\":{\"maxProperties\":1}}}", "{\"_src\":1,\"a\":2}", "_src",
		 1},
		{"{\"propertyNames\":{\"maxLength\":1}}", "{\"_src\":1,\"a\":2}", "_src", 1},
		{"{\"propertyNames\":{\"maxLength\":1}}", "{\"_src\":1,\"a\":2}", NULL, 0},
		{"{\"not\":{\"required\":[\"_src\"]}}", "{\"_src\":1}", "_src", 1},
		{"{\"allOf\":[{\"$ref\":\"#/definitions/o\"}],\"definitions\":{\"o\":{"
		 "\"additionalProperties\":false}}}",
		 "{\"_src\":1}", "_src", 1},
		/* only the root's member: not one in a nested object, nor a root that is no object */
		{"{\"properties\":{\"x\":{\"additionalProperties\":false}}}",
		 "{\"x\":{\"_src\":1}}", "_src", 0},
		{"{\"type\":\"array\",\"maxItems\":1}", "[{\"_src\":1}]", "_src", 1},
		/* uniqueItems: decided over short arrays of scalars, else left to jansson */
		{"{\"uniqueItems\":true}", "[1,\"1\",true,null,{},[]]", NULL, 1},
		{"{\"uniqueItems\":true}", "[[1]]", NULL, 1},
		{"{\"uniqueItems\":true}", "[1,1.0]", NULL, 0},
		{"{\"uniqueItems\":true}", "[[1],[2]]", NULL, 0},
		/* what is left to jansson stays undecided under not, oneOf and if */
		{"{\"not\":{\"uniqueItems\":true}}", "[[1],[1]]", NULL, 0},
		{"{\"oneOf\":[{\"uniqueItems\":true},{\"type\":\"string\"}]}", "[[1],[2]]", NULL,
		 0},
		{"{\"if\":{\"uniqueItems\":true},\"then\":true,\"else\":true}", "[[1],[2]]", NULL,
		 0},
		{"{\"anyOf\":[{\"uniqueItems\":true},{\"type\":\"array\"}]}", "[[1],[2]]", NULL, 1},
		/* text that jansson reads differently or refuses is not parsed */
		{"true", "{\"a\":1,\"a\":2}", NULL, -1},
		{"true", "\"\\u0000\"", NULL, -1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = fast_valid(cases[i].schema, cases[i].instance, cases[i].skip);
		if (got != cases[i].want)
			fprintf(stderr, "%s: %s against %s (skip %s): got %d, want %d\n",
				test_current, cases[i].instance, cases[i].schema,
				cases[i].skip ? cases[i].skip : "none", got, cases[i].want);
		CHECK(got == cases[i].want);
	}
	/* undecided is not invalid: jansson calls them valid */
	CHECK(valid("{\"uniqueItems\":true}", "[[1],[2]]") == 1);
	CHECK(valid("{\"not\":{\"uniqueItems\":true}}", "[[1],[1]]") == 1);
	CHECK(valid("{\"oneOf\":[{\"uniqueItems\":true},{\"type\":\"string\"}]}", "[[1],[2]]") ==
	      1);
}

static ev_buf env_fast = EV_BUF_INIT, env_slow = EV_BUF_INIT;
static int judged, judged_valid, judged_differ; /* checked once, at the end */

static int same_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* The verdict and the dead letter of a line are the same with the fast path and without.
 * Returns 1 when the fast path gave the verdict. */
static int same_verdicts(ev_validator *fast, ev_validator *slow, const char *line, size_t len,
			 int flags)
{
	ev_verdict a, b;
	ev_buf_reset(&env_fast);
	ev_buf_reset(&env_slow);
	int same =
		ev_validator_judge(fast, line, len, flags, 7, 1732400000000, &a, &env_fast) == 0 &&
		ev_validator_judge(slow, line, len, flags, 7, 1732400000000, &b, &env_slow) == 0 &&
		!b.fast && (!a.fast || a.valid) && a.valid == b.valid &&
		same_bytes(env_fast.data, env_fast.len, env_slow.data, env_slow.len);
	if (a.valid)
		same = same && b.record &&
		       same_bytes(a.record, a.record_len, b.record, b.record_len);
	else
		same = same && a.reason == b.reason && strcmp(a.path, b.path) == 0 &&
		       strcmp(a.message, b.message) == 0;
	if (!same)
		fprintf(stderr, "%s: verdicts differ on (%zu bytes, flags %d) %.*s\n", test_current,
			len, flags, (int)len, line);
	judged_differ += !same;
	judged++;
	judged_valid += a.valid;
	return a.fast;
}

/* Validators of the default contract, [0] with the fast path and [1] without, per meta field
 * (none, _src) and --all-errors. Returns how many of the valid verdicts the fast path gave. */
static int judge_all(ev_validator *v[2][2][2], const char *line, size_t len, int flags);

/* A fuzz corpus file as one line, with the flags the fuzz harness gives it and without. */
static void judge_file(void *arg, char *buf, size_t n)
{
	ev_validator *(*v)[2][2] = arg;
	int flags = (n & 1) ? EV_LINE_NO_NEWLINE : 0;
	judge_all(v, buf, n, 0);
	judge_all(v, buf, n, flags | (n % 16 == 15 ? EV_LINE_TOO_LONG : 0));
}

static int judge_all(ev_validator *v[2][2][2], const char *line, size_t len, int flags)
{
	int fast = 0;
	for (int m = 0; m < 2; m++)
		for (int all = 0; all < 2; all++)
			fast += same_verdicts(v[m][all][0], v[m][all][1], line, len, flags);
	return fast;
}

/* A generated record: provenance (kin --meta-field _src, and variants) and fields, valid and
 * not, in random order. */
static size_t gen_record(ev_rng *r, char *out, size_t cap)
{
	static const char *const metas[] = {
		"",
		"\"_src\":{\"topic\":\"t\",\"partition\":0,\"offset\":5,\"ts\":1732400000000},",
		"\"_src\":{\"topic\":\"t\",\"partition\":0,\"offset\":5,\"ts\":1732400000000,"
		"\"wrapped\":true},",
		"\"_src\" : {\"topic\":\"t\"} ,",
		"\"_src\":{\"topic\":[\"t\"]},",
		"\"_src\":{},",
		"\"_src\":1,",
		"\"_src\":{\"wrapped\":false},",
		"\"_sr\\u0063\":{\"topic\":\"t\"},",
	};
	static const char *const fields[] = {
		"\"event_id\":\"e000000000042\"",
		"\"event_id\":\"e 42\"",
		"\"event_id\":\"\"",
		"\"event_type\":\"click\"",
		"\"event_type\":\"purchase\"",
		"\"event_type\":\"type_5\"",
		"\"user_id\":\"user_001234\"",
		"\"user_id\":\"\"",
		"\"user_id\":\"\\u00e9t\\u00e9\"",
		"\"ts\":1732406400042",
		"\"ts\":1732406400042.0",
		"\"ts\":1.7324064e12",
		"\"ts\":946684799999",
		"\"ts\":4102444800000",
		"\"ts\":\"2024-11-24T00:00:00Z\"",
		"\"ts\":\"2024-02-30T00:00:00Z\"",
		"\"ts\":\"1999-12-31T23:59:59Z\"",
		"\"ts\":\"soon\"",
		"\"value\":12.34",
		"\"value\":0",
		"\"value\":-0.0",
		"\"value\":-1",
		"\"value\":\"12\"",
		"\"session_id\":\"s3c9f1e0b7a2d4c85\"",
		"\"session_id\":null",
		"\"properties\":{\"a\":[1,{\"b\":null}]}",
		"\"properties\":[]",
		"\"debug\":true",
		"\"_src\":{\"topic\":\"t\"}",
		"\"event_id\":\"dup\"",
	};
	size_t n = 0, k = 0, nf = sizeof(fields) / sizeof(fields[0]);
	int clean = ev_rng_below(r, 2); /* valid fields, provenance as kin writes it or none */
	const char *meta = metas[ev_rng_below(r, clean ? 2 : sizeof(metas) / sizeof(metas[0]))];
	n += (size_t)snprintf(out + n, cap - n, "%s{%s", ev_rng_below(r, 8) ? "" : " ", meta);
	if (!clean && ev_rng_below(r, 8) == 0)
		return n + (size_t)snprintf(out + n, cap - n, "\"payload\":\"%s\"}",
					    ev_rng_below(r, 2) ? "{}" : "x");
	/* the four required fields (or, not clean, others), maybe value and session_id, and
	 * (not clean) some others, in random order */
	size_t pick[12] = {0, 3, 6, 9, 18, 23};
	size_t m = 4 + ev_rng_below(r, 3);
	for (size_t i = 0; !clean && i < 4; i++)
		pick[i] = ev_rng_below(r, 4) ? pick[i] : ev_rng_below(r, nf);
	for (size_t extra = clean ? 0 : ev_rng_below(r, 5); extra > 0; extra--)
		pick[m++] = ev_rng_below(r, nf);
	for (size_t i = m; i > 1; i--) {
		size_t j = ev_rng_below(r, i), t = pick[i - 1];
		pick[i - 1] = pick[j];
		pick[j] = t;
	}
	for (size_t i = 0; i < m; i++)
		n += (size_t)snprintf(out + n, cap - n, "%s%s", k++ ? "," : "", fields[pick[i]]);
	n += (size_t)snprintf(out + n, cap - n, "}");
	if (!clean && ev_rng_below(r, 16) == 0)
		n -= ev_rng_below(r, n) + 1; /* cut short */
	return n;
}

static void test_judge_paths(void)
{
	char err[512];
	ev_schema *contract = ev_schema_load_file("contracts/event.schema.json", err, sizeof(err));
	CHECK(contract != NULL);
	if (!contract)
		return;
	ev_validator *v[2][2][2];
	for (int m = 0; m < 2; m++) {
		for (int all = 0; all < 2; all++) {
			for (int slow = 0; slow < 2; slow++) {
				ev_validator_opts o = {1 << 20, 64, all, m ? "_src" : NULL, NULL};
				v[m][all][slow] = ev_validator_new(contract, &o);
				if (slow)
					ev_validator_no_fast(v[m][all][slow]);
			}
		}
	}

	/* the fuzz corpus, each file as one line, with the flags the fuzz harness gives it */
	int files = test_each_file("tests/fuzz/corpus/validate", judge_file, v);
	CHECK(files > 100);
	int corpus = judged, corpus_valid = judged_valid;

	/* generated records, with and without provenance */
	ev_rng r;
	ev_rng_seed(&r, 42);
	int fast = 0;
	static char buf[1 << 16];
	for (int i = 0; i < 20000; i++) {
		size_t n = gen_record(&r, buf, sizeof(buf));
		fast += judge_all(v, buf, n, 0);
	}
	fprintf(stderr,
		"judge paths: %d corpus verdicts (%d valid) and %d generated (%d valid, %d of them "
		"on the fast path) the same with the fast path and without\n",
		corpus, corpus_valid, judged - corpus, judged_valid - corpus_valid, fast);
	CHECK(judged_differ == 0);
	CHECK(judged_valid - corpus_valid > 10000);
	CHECK(fast == judged_valid - corpus_valid); /* no valid record falls back to jansson */
	for (int m = 0; m < 2; m++)
		for (int all = 0; all < 2; all++)
			for (int slow = 0; slow < 2; slow++)
				ev_validator_free(v[m][all][slow]);
	ev_schema_free(contract);
	ev_buf_free(&env_fast);
	ev_buf_free(&env_slow);
}

/* Every reason the validator writes is one dlqsink replay --reason accepts. */
static void test_reasons_known(void)
{
	for (int r = 0; r < EV_REASON_COUNT; r++) {
		const char *name = ev_reason_name((enum ev_reason)r);
		CHECK(ev_deadletter_reason_known(name, strlen(name)));
	}
	CHECK(ev_deadletter_reason_known("bad_ts", 6));
	CHECK(!ev_deadletter_reason_known("bogus", 5));
}

int main(void)
{
	fj = ev_fj_new();
	if (!fj)
		return 1;
	RUN(test_reasons_known);
	RUN(test_type);
	RUN(test_enum_const);
	RUN(test_numbers);
	RUN(test_strings);
	RUN(test_arrays);
	RUN(test_objects);
	RUN(test_combinators);
	RUN(test_boolean_schemas);
	RUN(test_refs);
	RUN(test_compile_errors);
	RUN(test_formats);
	RUN(test_collecting);
	RUN(test_load_file);
	RUN(test_fast_path);
	RUN(test_judge_paths);
	fprintf(stderr, "fast path: %d of %d parsed instances decided valid, none wrongly\n",
		fast_decided, fast_parsed);
	ev_fj_free(fj);
	return test_report();
}
