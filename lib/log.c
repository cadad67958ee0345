/* log.c: diagnostics on stderr as "prog: message", with levels. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *log_prog = "evpipe";
static enum ev_log_level log_level = EV_LOG_INFO;

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

void ev_log(enum ev_log_level level, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (!ev_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One write per message so that lines of concurrent stages do not interleave. */
	fprintf(stderr, "%s: %s%s\n", log_prog, level == EV_LOG_WARN ? "warning: " : "", msg);
}
