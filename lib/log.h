/* SPDX-License-Identifier: Apache-2.0 */
/* log.h: diagnostics on stderr as "prog: message", with levels. */
#ifndef EV_LOG_H
#define EV_LOG_H

#include <stdint.h>

enum ev_log_level { EV_LOG_ERROR, EV_LOG_WARN, EV_LOG_INFO, EV_LOG_DEBUG };

/* Set the program name printed before every message (not copied). */
void ev_log_set_prog(const char *prog);
const char *ev_log_prog(void);
void ev_log_set_level(enum ev_log_level level);
/* Parse "error", "warn", "info" or "debug"; returns -1 on an unknown name. */
int ev_log_parse_level(const char *name);
int ev_log_enabled(enum ev_log_level level);

void ev_log(enum ev_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define ev_error(...) ev_log(EV_LOG_ERROR, __VA_ARGS__)
#define ev_warn(...) ev_log(EV_LOG_WARN, __VA_ARGS__)
#define ev_info(...) ev_log(EV_LOG_INFO, __VA_ARGS__)
#define ev_debug(...) ev_log(EV_LOG_DEBUG, __VA_ARGS__)

/* A status line kept at the bottom of stderr (lib/progress.c): begin(arg) is called before a
 * message is written (it takes the line off), end(arg) after (it draws it again). NULL: none. */
void ev_log_set_status(void (*begin)(void *arg), void (*end)(void *arg), void *arg);

/* Messages of one kind that may repeat without bound (one per bad input line): at most
 * EV_LOG_BURST of them a minute are written; the others are counted, and their number is said
 * with the next one written after the minute, and by ev_log_limit_end. Zero-initialise. */
#define EV_LOG_BURST 10
typedef struct ev_log_limit {
	uint64_t window_ns;  /* when the current minute began */
	unsigned written;    /* in it */
	uint64_t suppressed; /* since the last one written */
	uint64_t total;      /* messages of this kind, written or not */
} ev_log_limit;
void ev_log_limited(ev_log_limit *l, enum ev_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Say how many were not written since the last one that was: "N more <what> not reported". */
void ev_log_limit_end(ev_log_limit *l, enum ev_log_level level, const char *what);

#endif
