/* SPDX-License-Identifier: Apache-2.0 */
/* tool.h: the shape every tool's main shares: start-up, shutdown signals, exit codes. */
#ifndef EV_TOOL_H
#define EV_TOOL_H

#include <signal.h>

#include "checkpoint.h"
#include "clock.h"
#include "control.h"
#include "metrics.h"
#include "ndjson.h"
#include "opts.h"

enum { EV_EXIT_OK = 0, EV_EXIT_FAILURE = 1, EV_EXIT_USAGE = 2 };

typedef struct ev_tool_common {
	const char *metrics_addr; /* NULL: no metrics endpoint */
	const char *job;          /* metrics job label */
} ev_tool_common;

/* Parse argv by the tool's option table (opts.h): the opening of every tool's parse_args.
 * --help prints the usage made from the table, --version the versions, to stdout; a usage
 * error is reported as ev_tool_usage_error does. Returns 0 with optind at the first operand,
 * -1 when the tool should exit 0 (--help, --version), or the exit status to end with
 * (EV_EXIT_USAGE, reported). */
int ev_tool_parse(const ev_option *opts, int argc, char **argv);
/* The callbacks of EV_OPTS_COMMON: -q and -v set the log level, -V prints the versions. */
int ev_tool_opt_log(const ev_option *o, char *arg, char *err, size_t errlen);
int ev_tool_opt_version(const ev_option *o, char *arg, char *err, size_t errlen);
int ev_tool_opt_progress(const ev_option *o, char *arg, char *err, size_t errlen);

/* Make sure fds 0-2 are open, set the program name for diagnostics, and read
 * EVPIPE_LOG_LEVEL. */
void ev_tool_init(const char *prog);
/* Print "prog: message" and "try 'prog --help'" to stderr; returns EV_EXIT_USAGE. */
int ev_tool_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The usage error for getopt_long's '?' (call with opterr = 0); returns EV_EXIT_USAGE. */
int ev_tool_bad_option(char **argv);
/* Print "prog VERSION" and the versions of the libraries it links to stdout. */
void ev_tool_print_version(void);
/* Check that stdout was written and closes cleanly (a full disk is an error).
 * Returns rc, or EV_EXIT_FAILURE when stdout failed. */
int ev_tool_finish(int rc);

/* Turn SIGINT and SIGTERM into a drain request instead of death; system calls are
 * interrupted (EINTR) so a blocked read notices. */
void ev_tool_catch_signals(void);
/* 0, or the number of the signal that asked for shutdown. */
int ev_tool_stop_requested(void);

/* The series every tool keeps, under one name and help text everywhere: records read and
 * written, time blocked writing to an output ("stdout", "dlq", ...), and dead letters by
 * reason. */
ev_counter *ev_tool_records_in(ev_metrics *m);
ev_counter *ev_tool_records_out(ev_metrics *m);
ev_counter *ev_tool_bytes_in(ev_metrics *m);
/* Control lines read (every tool that reads lines; kin registers it in every mode). */
ev_counter *ev_tool_control_lines(ev_metrics *m);
/* Input lines passed over, by reason ("blank", "torn", "control"). */
ev_counter *ev_tool_skipped(ev_metrics *m, const char *reason);
ev_counter *ev_tool_blocked(ev_metrics *m, const char *output);
ev_counter *ev_tool_dead_letters(ev_metrics *m, const char *reason);

/* The live status line on stderr (lib/progress.c) of a tool that moves records: drawn from m
 * when asked for (--progress, EVPIPE_PROGRESS=1), or by default when stderr is a terminal and
 * stdout is not, so that it never mixes with data (--no-progress, EVPIPE_PROGRESS=0: never). ev_tool_metrics_free stops it. */
void ev_tool_progress(ev_metrics *m);
/* Stop the status line, then free m. */
void ev_tool_metrics_free(ev_metrics *m);

/* Create the registry and, when addr is non-NULL, serve it. Returns NULL with a message
 * logged when the address cannot be served. */
ev_metrics *ev_tool_metrics(const char *tool, const char *job, const char *addr);

#endif
