/* SPDX-License-Identifier: Apache-2.0 */
/* opts.h: command-line options: the table each tool declares its options in (the getopt_long
 * table and the usage text are made from it), the fragments the tools share, and parsing of
 * option values (durations, sizes, counts). */
#ifndef EV_OPTS_H
#define EV_OPTS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* ---- Option values ------------------------------------------------------------------------ */

/* "250ms", "5s", "1m", "2h", "1d"; a bare number is in default_unit_ms units.
 * Returns 0 and sets *ms, or -1. */
int ev_opt_duration_ms(const char *s, int64_t default_unit_ms, int64_t *ms);
/* "4096", "64KiB", "1MiB", "2GiB", also "k", "M", "G" (powers of 1024). Returns 0 or -1. */
int ev_opt_size(const char *s, uint64_t *bytes);
/* A decimal integer within [min, max]. Returns 0 or -1. */
int ev_opt_int(const char *s, int64_t min, int64_t max, int64_t *out);
/* Read a whole small file (secrets, configs) into a NUL-terminated malloc'd string with
 * trailing newlines removed. Returns NULL with a message in err. */
char *ev_opt_read_file(const char *path, size_t max, char *err, size_t errlen);

/* ---- Option tables -------------------------------------------------------------------------
 * A tool declares each option once, in one array, in the spirit of git's parse-options:
 *
 *	const ev_option options[] = {
 *		EV_OPT_TEXT("usage: tool [options]\n\nOptions:\n"),
 *		EV_OPT_STRING('d', "dlq", "PATH|fd:N", &t->dlq, "dead-letter output"),
 *		EV_OPT_SIZE(0, "max-line-bytes", "N", &t->max_line, 1, INT64_MAX, "size",
 *			    "longer lines are dead-lettered"),
 *		EV_OPTS_COMMON(&t->common),
 *		EV_OPT_TEXT("\nExit status: ...\n"),
 *		EV_OPT_END(),
 *	};
 *	int rc = ev_tool_parse(options, argc, argv);	(tool.h)
 *
 * An entry names the option (a short letter, a long name or both), its argument as the usage
 * shows it (NULL: it takes none), its help (lines after the first begin at the help column by
 * themselves; NULL: the usage does not show the option) and what it does: store a value where
 * it points, or call a function. Text entries are printed as they are, in order, so the usage
 * text is the table read top down.
 * Tables are automatic arrays: their entries point into the tool's state. The macros check the
 * type of what an entry points to at compile time (an int for FLAG and BIT, a const char * for
 * STRING, ...); INT takes an int, int32_t or int64_t. */

typedef struct ev_option ev_option;

/* What an EV_OPT_CALLBACK option does with its argument (argv's, NULL for an option without
 * one); o->value is the context the table gave. Returns 0, -1 with a message in err (a usage error),
 * EV_OPTS_DONE (the tool exits 0: it printed what was asked), or a positive exit status that it
 * reported itself. */
typedef int ev_opt_fn(const ev_option *o, char *arg, char *err, size_t errlen);

enum ev_opt_kind {
	EV_OPTK_END,
	EV_OPTK_TEXT,     /* help: printed as it is */
	EV_OPTK_SEE,      /* another form of an option declared elsewhere: usage only */
	EV_OPTK_ALIAS,    /* long_name means the option whose long name is help; not in the usage */
	EV_OPTK_FLAG,     /* *(int *)value = min */
	EV_OPTK_BIT,      /* *(int *)value |= min */
	EV_OPTK_STRING,   /* *(const char **)value = arg */
	EV_OPTK_INT,      /* an integer in [min, max] into an int32_t or int64_t (size bytes) */
	EV_OPTK_SIZE,     /* ev_opt_size within [min, max] into a uint64_t */
	EV_OPTK_DURATION, /* ev_opt_duration_ms (bare numbers in unit ms) within [min, max] */
	EV_OPTK_TIME,     /* ev_time_parse (epoch ms or RFC 3339) into an int64_t */
	EV_OPTK_CALLBACK, /* fn */
	EV_OPTK_HELP,     /* print the usage and exit 0 */
};

struct ev_option {
	enum ev_opt_kind kind;
	int short_name;        /* a letter, or 0 */
	const char *long_name; /* or NULL */
	const char *argh;      /* the argument in the usage; NULL: no argument */
	const char *help;
	void *value;
	size_t size;
	int64_t min, max, unit;
	const char *what; /* INT, SIZE: "invalid WHAT 'ARG'" */
	ev_opt_fn *fn;
};

#define EV_OPT_END()                \
	{                           \
		.kind = EV_OPTK_END \
	}
#define EV_OPT_TEXT(text)                            \
	{                                            \
		.kind = EV_OPTK_TEXT, .help = (text) \
	}
#define EV_OPT_SEE(s, l, a, h)                                                                     \
	{                                                                                          \
		.kind = EV_OPTK_SEE, .short_name = (s), .long_name = (l), .argh = (a), .help = (h) \
	}
#define EV_OPT_ALIAS(l, target)                                           \
	{                                                                 \
		.kind = EV_OPTK_ALIAS, .long_name = (l), .help = (target) \
	}
#define EV_OPT_FLAG(s, l, p, v, h)                                                  \
	{                                                                           \
		.kind = EV_OPTK_FLAG, .short_name = (s), .long_name = (l),          \
		.value = (p) + 0 * sizeof((int *)0 == (p)), .min = (v), .help = (h) \
	}
#define EV_OPT_BIT(s, l, p, bit, h)                                                   \
	{                                                                             \
		.kind = EV_OPTK_BIT, .short_name = (s), .long_name = (l),             \
		.value = (p) + 0 * sizeof((int *)0 == (p)), .min = (bit), .help = (h) \
	}
#define EV_OPT_STRING(s, l, a, p, h)                                                      \
	{                                                                                 \
		.kind = EV_OPTK_STRING, .short_name = (s), .long_name = (l), .argh = (a), \
		.value = (p) + 0 * sizeof((const char **)0 == (p)), .help = (h)           \
	}
/* sizeof *p, which must be 4 or 8 (a compile error otherwise) */
#define EV_OPT_INT_SIZE(p) \
	(sizeof(*(p)) + 0 * sizeof(char[sizeof(*(p)) == 4 || sizeof(*(p)) == 8 ? 1 : -1]))
#define EV_OPT_INT(s, l, a, p, lo, hi, w, h)                                                     \
	{                                                                                        \
		.kind = EV_OPTK_INT, .short_name = (s), .long_name = (l), .argh = (a),           \
		.value = (p), .size = EV_OPT_INT_SIZE(p), .min = (lo), .max = (hi), .what = (w), \
		.help = (h)                                                                      \
	}
#define EV_OPT_SIZE(s, l, a, p, lo, hi, w, h)                                              \
	{                                                                                  \
		.kind = EV_OPTK_SIZE, .short_name = (s), .long_name = (l), .argh = (a),    \
		.value = (p) + 0 * sizeof((uint64_t *)0 == (p)), .min = (lo), .max = (hi), \
		.what = (w), .help = (h)                                                   \
	}
#define EV_OPT_DURATION(s, l, a, p, u, lo, hi, h)                                           \
	{                                                                                   \
		.kind = EV_OPTK_DURATION, .short_name = (s), .long_name = (l), .argh = (a), \
		.value = (p) + 0 * sizeof((int64_t *)0 == (p)), .unit = (u), .min = (lo),   \
		.max = (hi), .help = (h)                                                    \
	}
#define EV_OPT_TIME(s, l, a, p, h)                                                      \
	{                                                                               \
		.kind = EV_OPTK_TIME, .short_name = (s), .long_name = (l), .argh = (a), \
		.value = (p) + 0 * sizeof((int64_t *)0 == (p)), .help = (h)             \
	}
#define EV_OPT_CALLBACK(s, l, a, ctx, f, h)                                                 \
	{                                                                                   \
		.kind = EV_OPTK_CALLBACK, .short_name = (s), .long_name = (l), .argh = (a), \
		.value = (ctx), .fn = (f), .help = (h)                                      \
	}
#define EV_OPT_HELP()                                                                             \
	{                                                                                         \
		.kind = EV_OPTK_HELP, .short_name = 'h', .long_name = "help", .help = "this text" \
	}

/* What ev_opts_parse returns besides 0 and a callback's exit status. */
enum { EV_OPTS_USAGE = -1, EV_OPTS_DONE = -2, EV_OPTS_HELP = -3, EV_OPTS_UNKNOWN = -4 };

/* Parse argv by the table with getopt_long (GNU argument order: options and operands may mix;
 * "--" ends the options), doing what each option found says. Returns 0 with optind at the
 * first operand; EV_OPTS_HELP for --help; EV_OPTS_UNKNOWN for an unknown option or a missing
 * value (getopt's optind and optopt tell which); EV_OPTS_USAGE with a message in err; or what a
 * callback returned (EV_OPTS_DONE or an exit status). */
int ev_opts_parse(const ev_option *opts, int argc, char **argv, char *err, size_t errlen);
/* The usage text of the table into out: its text entries as they are, each option as
 * "  -s, --long ARG  help" with the help at column 27 (on the next line when the option is too
 * wide). Returns 0, or -1 when out of memory. */
int ev_opts_usage(const ev_option *opts, ev_buf *out);
/* ---- Fragments shared by the tools ---------------------------------------------------------
 * EV_OPTS_COMMON: every tool's (tool.h); EV_OPTS_KAFKA: kin's and dlqsink's (kafka.h);
 * EV_OPTS_CKPT: every stage that takes part in checkpoints (checkpoint.h); EV_OPT_ACK_SPEC:
 * the sinks' acknowledgements (ack.h). A tool that uses one includes the header named. */

#define EV_OPTS_COMMON_JOB(common, job_help)                                       \
	EV_OPT_STRING(0, "metrics-addr", "ADDR", &(common)->metrics_addr,          \
		      "serve Prometheus metrics at http://ADDR/metrics; ADDR is\n" \
		      "[HOST:]PORT, HOST 127.0.0.1 unless given (0.0.0.0: all)"),  \
		EV_OPT_STRING(0, "job", "NAME", &(common)->job, job_help),         \
		EV_OPT_CALLBACK('q', "quiet", NULL, NULL, ev_tool_opt_log,         \
				"only errors on stderr"),                          \
		EV_OPT_CALLBACK('v', "verbose", NULL, NULL, ev_tool_opt_log,       \
				"debug messages on stderr"),                       \
		EV_OPT_HELP(),                                                     \
		EV_OPT_CALLBACK('V', "version", NULL, NULL, ev_tool_opt_version,   \
				"version and library versions")
#define EV_OPTS_COMMON(common) \
	EV_OPTS_COMMON_JOB(common, "job label of the metrics (default evpipe)")
/* The live status line of the tools that move records (tool.h: ev_tool_progress). */
#define EV_OPTS_PROGRESS()                                                             \
	EV_OPT_CALLBACK(0, "progress", NULL, NULL, ev_tool_opt_progress,               \
			"a live status line on stderr: records in, out, dead and\n"    \
			"late a second, watermark lag, time blocked (default: when\n"  \
			"stderr is a terminal and stdout is not; EVPIPE_PROGRESS=1)"), \
		EV_OPT_CALLBACK(0, "no-progress", NULL, NULL, ev_tool_opt_progress,    \
				"no status line, even on a terminal (EVPIPE_PROGRESS=0)")

#define EV_OPT_KAFKA_BROKERS(kafka)                              \
	EV_OPT_STRING('b', "brokers", "LIST", &(kafka)->brokers, \
		      "bootstrap brokers, host:port[,...] (default $KAFKA_BROKERS)")
#define EV_OPT_KAFKA_FILE(kafka)                                                \
	EV_OPT_CALLBACK('F', "config-file", "FILE", (kafka), ev_kafka_opt_file, \
			"librdkafka properties file (key=value lines); also\n"  \
			"$EVPIPE_KAFKA_CONFIG")
#define EV_OPT_KAFKA_TIMEOUT(kafka, s)                                                        \
	EV_OPT_DURATION((s), "timeout", "DURATION", &(kafka)->timeout_ms, 1000, 1, INT32_MAX, \
			"how long to wait for the brokers to answer at start-up,\n"           \
			"and after a stop signal (default 10s); unreachable\n"                \
			"brokers are an error")
#define EV_OPTS_KAFKA(kafka)                                                            \
	EV_OPT_KAFKA_BROKERS(kafka),                                                    \
		EV_OPT_CALLBACK('X', "property", "K=V", (kafka), ev_kafka_opt_property, \
				"librdkafka property; secrets are refused here"),       \
		EV_OPT_KAFKA_FILE(kafka), EV_OPT_KAFKA_TIMEOUT(kafka, 0)

#define EV_OPTS_CKPT(ck)                                                                           \
	EV_OPT_STRING(0, "checkpoint-store", "URL", &(ck)->url,                                    \
		      "take part in checkpoints (file:///dir, s3://bucket/prefix;\n"               \
		      "S3 from S3_ENDPOINT, AWS_REGION and the AWS credentials)"),                 \
		EV_OPT_STRING(0, "stage", "NAME", &(ck)->stage,                                    \
			      "this stage's name in checkpoints (default: the tool's)"),           \
		EV_OPT_STRING(0, "copy", "NAME", &(ck)->copy,                                      \
			      "this copy's name among the copies of the job in one group:\n"       \
			      "its checkpoints go under JOB/copies/NAME (ADR 0025)"),              \
		EV_OPT_STRING(0, "restore", "WHICH", &(ck)->restore,                               \
			      "start from checkpoint WHICH: latest, latest-valid (the newest\n"    \
			      "that passes verification), an id, or none"),                        \
		EV_OPT_CALLBACK(0, "restore-mismatch", "refuse|allow", (ck), ev_ckpt_opt_mismatch, \
				"a checkpoint of another pipeline (other topics, group,\n"         \
				"windows, contract or table) is refused (default) or restored\n"   \
				"anyway, with a warning")

#define EV_OPT_ACK_SPEC(spec)                                                         \
	EV_OPT_STRING(0, "ack", "PATH|fd:N", (spec),                                  \
		      "after each barrier is durable, write \"<stage> <id>\" there\n" \
		      "(a named pipe that kin --commit-on-ack reads; ADR 0014)")

#endif
