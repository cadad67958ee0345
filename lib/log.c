/* SPDX-License-Identifier: Apache-2.0 */
/* log.c: diagnostics on stderr as "prog: message", with levels. */
#include "log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *log_prog = "evpipe";
static enum ev_log_level log_level = EV_LOG_INFO;
static void (*status_begin)(void *), (*status_end)(void *);
static void *status_arg;

void ev_log_set_status(void (*begin)(void *arg), void (*end)(void *arg), void *arg)
{
	status_begin = begin;
	status_end = end;
	status_arg = arg;
}

void ev_log_set_prog(const char *prog)
{
	log_prog = prog;
}

const char *ev_log_prog(void)
{
	return log_prog;
}

void ev_log_set_level(enum ev_log_level level)
{
	log_level = level;
}

int ev_log_parse_level(const char *name)
{
	static const char *names[] = {"error", "warn", "info", "debug"};
	for (int i = 0; i < 4; i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	return -1;
}

int ev_log_enabled(enum ev_log_level level)
{
	return level <= log_level;
}

static void write_message(enum ev_log_level level, const char *msg, const char *tail)
{
	if (status_begin)
		status_begin(status_arg);
	/* One write per message so that lines of concurrent stages do not interleave. */
	fprintf(stderr, "%s: %s%s%s\n", log_prog, level == EV_LOG_WARN ? "warning: " : "", msg,
		tail);
	if (status_end)
		status_end(status_arg);
}

void ev_log(enum ev_log_level level, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (!ev_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	write_message(level, msg, "");
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void ev_log_limited(ev_log_limit *l, enum ev_log_level level, const char *fmt, ...)
{
	char msg[2048], tail[96] = "";
	va_list ap;
	uint64_t now = mono_ns();

	l->total++;
	if (!ev_log_enabled(level))
		return;
	if (l->total == 1 || now - l->window_ns >= 60000000000u) {
		l->window_ns = now;
		l->written = 0;
	}
	if (l->written >= EV_LOG_BURST) {
		l->suppressed++;
		return;
	}
	if (++l->written == EV_LOG_BURST)
		snprintf(tail, sizeof(tail),
			 " (more like it within a minute are counted, not "
			 "reported)");
	if (l->suppressed)
		snprintf(tail, sizeof(tail), " (%" PRIu64 " more like it not reported)",
			 l->suppressed);
	l->suppressed = 0;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	write_message(level, msg, tail);
}

void ev_log_limit_end(ev_log_limit *l, enum ev_log_level level, const char *what)
{
	if (l->suppressed)
		ev_log(level, "%" PRIu64 " more %s not reported", l->suppressed, what);
	l->suppressed = 0;
}
