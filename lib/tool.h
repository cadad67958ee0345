/* tool.h: the shape every tool's main shares: start-up, shutdown signals, exit codes. */
#ifndef EV_TOOL_H
#define EV_TOOL_H

#include <signal.h>

#include "metrics.h"

enum { EV_EXIT_OK = 0, EV_EXIT_FAILURE = 1, EV_EXIT_USAGE = 2 };

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

/* Create the registry and, when addr is non-NULL, serve it. Returns NULL with a message
 * logged when the address cannot be served. */
ev_metrics *ev_tool_metrics(const char *tool, const char *job, const char *addr);

#endif
