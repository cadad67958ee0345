/* SPDX-License-Identifier: Apache-2.0 */
/* test_opts.c: option tables (lib/opts.h): parsing by the table, and the usage made from it. */
#include <getopt.h>
#include <stdint.h>
#include <string.h>

#include "opts.h"
#include "test.h"

struct t {
	int flag, bits, calls;
	const char *name, *topics[4];
	int32_t part;
	int64_t count, ms, ts;
	uint64_t bytes;
};

static int add(const ev_option *o, char *arg, char *err, size_t errlen)
{
	struct t *t = o->value;
	if (strcmp(arg, "bad") == 0) {
		snprintf(err, errlen, "bad topic");
		return -1;
	}
	t->topics[t->calls++] = arg;
	return 0;
}

/* Parse argv (NULL-terminated) by a table over t; returns what ev_opts_parse did. */
static int parse(struct t *t, char **argv, char *err, size_t errlen)
{
	const ev_option opts[] = {
		EV_OPT_TEXT("usage: t\n"),
		EV_OPT_FLAG('e', "exit", &t->flag, 1, "exit"),
		EV_OPT_BIT(0, "bit", &t->bits, 4, "a bit"),
		EV_OPT_STRING('n', "name", "NAME", &t->name, "a name"),
		EV_OPT_ALIAS("other-name", "name"),
		EV_OPT_INT('p', "partition", "N", &t->part, 0, INT32_MAX, "partition", "partition"),
		EV_OPT_INT('c', "count", "N", &t->count, 1, INT64_MAX, "count", "count"),
		EV_OPT_DURATION(0, "every", "D", &t->ms, 1000, 1, INT64_MAX, "duration"),
		EV_OPT_SIZE(0, "max", "SIZE", &t->bytes, 1, INT64_MAX, "size", "size"),
		EV_OPT_TIME(0, "since", "TIME", &t->ts, "time"),
		EV_OPT_CALLBACK('t', "topic", "TOPIC", t, add, "topic"),
		EV_OPT_SEE('t', "topic", "LIST", "documented only"),
		EV_OPT_HELP(),
		EV_OPT_END(),
	};
	int argc = 0;
	while (argv[argc])
		argc++;
	optind = 1;
	return ev_opts_parse(opts, argc, argv, err, errlen);
}

static void test_parse(void)
{
	char err[256];
	struct t t;
	memset(&t, 0, sizeof(t));
	char a[][32] = {"t",         "-e",
			"--bit",     "-nx",
			"op1",       "--partition=7",
			"-c",        "12",
			"--every",   "250ms",
			"--max",     "1KiB",
			"--since",   "2024-11-24T00:00:00Z",
			"-t",        "a",
			"--topic",   "b",
			"--other-n", "y",
			"--",        "-op2"};
	char *argv[sizeof(a) / sizeof(a[0]) + 1];
	for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++)
		argv[i] = a[i];
	argv[sizeof(a) / sizeof(a[0])] = NULL;
	CHECK(parse(&t, argv, err, sizeof(err)) == 0);
	CHECK(t.flag == 1 && t.bits == 4 && t.part == 7 && t.count == 12 && t.ms == 250);
	CHECK(t.bytes == 1024 && t.ts == INT64_C(1732406400000));
	CHECK_STR(t.name, "y"); /* the alias, given last, abbreviated */
	CHECK(t.calls == 2);
	CHECK_STR(t.topics[0], "a");
	CHECK_STR(t.topics[1], "b");
	/* operands after the options, in order (GNU permutation) */
	CHECK(optind == 20);
	CHECK_STR(argv[optind], "op1");
	CHECK_STR(argv[optind + 1], "-op2");
}

static void test_errors(void)
{
	char err[256];
	struct t t;
	struct {
		const char *arg, *value, *msg; /* msg NULL: not a usage error with a message */
		int rc;
	} cases[] = {
		{"-p", "-1", "invalid partition '-1'", EV_OPTS_USAGE},
		{"--count", "0", "invalid count '0'", EV_OPTS_USAGE},
		{"--every", "0", "invalid duration '0'", EV_OPTS_USAGE},
		{"--max", "0", "invalid size '0'", EV_OPTS_USAGE},
		{"--since", "yesterday", "invalid time 'yesterday'", EV_OPTS_USAGE},
		{"-t", "bad", "bad topic", EV_OPTS_USAGE},
		{"--nope", NULL, NULL, EV_OPTS_UNKNOWN},
		{"-x", NULL, NULL, EV_OPTS_UNKNOWN},
		{"-c", NULL, NULL, EV_OPTS_UNKNOWN}, /* a value missing */
		{"--help", NULL, NULL, EV_OPTS_HELP},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char a0[] = "t", a1[32], a2[32];
		char *argv[] = {a0, a1, cases[i].value ? a2 : NULL, NULL};
		snprintf(a1, sizeof(a1), "%s", cases[i].arg);
		snprintf(a2, sizeof(a2), "%s", cases[i].value ? cases[i].value : "");
		memset(&t, 0, sizeof(t));
		err[0] = '\0';
		CHECK(parse(&t, argv, err, sizeof(err)) == cases[i].rc);
		if (cases[i].msg)
			CHECK_STR(err, cases[i].msg);
	}
}

static void test_usage(void)
{
	int flag = 0;
	const char *s = NULL;
	const ev_option opts[] = {
		EV_OPT_TEXT("usage: t [options]\n\nOptions:\n"),
		EV_OPT_FLAG('e', "exit", &flag, 1, "exit at the end"),
		EV_OPT_STRING(0, "name", "NAME", &s, "the name; a second line\nof help"),
		EV_OPT_STRING(0, "a-rather-long-option", "ARG", &s, "on the next line"),
		EV_OPT_STRING('s', NULL, "X", &s, "short only"),
		EV_OPT_STRING(0, "hidden", "X", &s, NULL),
		EV_OPT_ALIAS("alias", "name"),
		EV_OPT_SEE(0, "name", "A --with B", "another form"),
		EV_OPT_TEXT("\nExit status: 0.\n"),
		EV_OPT_END(),
	};
	ev_buf b = EV_BUF_INIT;
	CHECK(ev_opts_usage(opts, &b) == 0);
	CHECK_STR(ev_buf_cstr(&b), "usage: t [options]\n"
				   "\n"
				   "Options:\n"
				   "  -e, --exit               exit at the end\n"
				   "      --name NAME          the name; a second line\n"
				   "                           of help\n"
				   "      --a-rather-long-option ARG\n"
				   "                           on the next line\n"
				   "  -s X                     short only\n"
				   "      --name A --with B    another form\n"
				   "\n"
				   "Exit status: 0.\n");
	ev_buf_free(&b);
}

int main(void)
{
	RUN(test_parse);
	RUN(test_errors);
	RUN(test_usage);
	return test_report();
}
