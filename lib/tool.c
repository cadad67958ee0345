/* SPDX-License-Identifier: Apache-2.0 */
/* tool.c: the shape every tool's main shares: start-up, shutdown signals, exit codes. */
#include "tool.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "progress.h"

static volatile sig_atomic_t stop_signal;
static int progress_wanted =
	-1; /* 1 --progress, 0 --no-progress, -1 when stderr is a tty (and stdout not) */
static ev_progress *progress;

void ev_tool_init(const char *prog)
{
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF && open("/dev/null", O_RDWR) != fd)
			abort();
	ev_log_set_prog(prog);
	const char *level = getenv("EVPIPE_LOG_LEVEL");
	if (level && ev_log_parse_level(level) >= 0)
		ev_log_set_level((enum ev_log_level)ev_log_parse_level(level));
	const char *p = getenv("EVPIPE_PROGRESS");
	if (p && (strcmp(p, "0") == 0 || strcmp(p, "1") == 0))
		progress_wanted = *p == '1';
}

int ev_tool_usage_error(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\ntry '%s --help'\n", ev_log_prog(), msg, ev_log_prog());
	return EV_EXIT_USAGE;
}

int ev_tool_bad_option(char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	if (strncmp(arg, "--", 2) == 0 || optopt <= 0 || optopt > 127)
		return ev_tool_usage_error("unknown option or missing value: '%s'", arg);
	return ev_tool_usage_error("unknown option or missing value: '-%c'", optopt);
}

int ev_tool_parse(const ev_option *opts, int argc, char **argv)
{
	char err[512];
	ev_buf usage = EV_BUF_INIT;
	int rc = ev_opts_parse(opts, argc, argv, err, sizeof(err));
	switch (rc) {
	case 0: return 0;
	case EV_OPTS_USAGE: return ev_tool_usage_error("%s", err);
	case EV_OPTS_UNKNOWN: return ev_tool_bad_option(argv);
	case EV_OPTS_DONE: return -1;
	case EV_OPTS_HELP:
		if (ev_opts_usage(opts, &usage) < 0) {
			ev_error("out of memory");
			return EV_EXIT_FAILURE;
		}
		fputs(usage.data, stdout);
		ev_buf_free(&usage);
		return -1;
	default: return rc;
	}
}

int ev_tool_opt_log(const ev_option *o, char *arg, char *err, size_t errlen)
{
	(void)arg, (void)err, (void)errlen;
	ev_log_set_level(o->short_name == 'q' ? EV_LOG_ERROR : EV_LOG_DEBUG);
	return 0;
}

int ev_tool_opt_progress(const ev_option *o, char *arg, char *err, size_t errlen)
{
	(void)arg, (void)err, (void)errlen;
	progress_wanted = strcmp(o->long_name, "progress") == 0;
	return 0;
}

int ev_tool_opt_version(const ev_option *o, char *arg, char *err, size_t errlen)
{
	(void)o, (void)arg, (void)err, (void)errlen;
	ev_tool_print_version();
	return EV_OPTS_DONE;
}

void ev_tool_print_version(void)
{
	printf("%s (evpipe) %s\n", ev_log_prog(), EVPIPE_VERSION);
	printf("librdkafka %s, libcurl %s, jansson %s, libmicrohttpd %s\n", rd_kafka_version_str(),
	       curl_version_info(CURLVERSION_NOW)->version, jansson_version_str(),
	       MHD_get_version());
}

int ev_tool_finish(int rc)
{
	int bad = fflush(stdout) != 0 || ferror(stdout);
	if (fclose(stdout) != 0)
		bad = 1;
	if (bad && errno != EPIPE) {
		ev_error("error writing standard output: %s", strerror(errno));
		return EV_EXIT_FAILURE;
	}
	return rc;
}

static void on_stop(int sig)
{
	stop_signal = sig;
}

void ev_tool_catch_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: blocked reads return EINTR */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int ev_tool_stop_requested(void)
{
	return stop_signal;
}

ev_counter *ev_tool_records_in(ev_metrics *m)
{
	return ev_metrics_counter(m, "evpipe_records_in_total", "Records read by the tool", NULL);
}

ev_counter *ev_tool_records_out(ev_metrics *m)
{
	return ev_metrics_counter(m, "evpipe_records_out_total", "Records written by the tool",
				  NULL);
}

ev_counter *ev_tool_bytes_in(ev_metrics *m)
{
	return ev_metrics_counter(m, "evpipe_bytes_in_total",
				  "Bytes of the records read (payloads for kin -C)", NULL);
}

static ev_counter *labelled(ev_metrics *m, const char *name, const char *help, const char *label,
			    const char *value, int seconds)
{
	char labels[128];
	snprintf(labels, sizeof(labels), "%s=\"%s\"", label, value);
	return seconds ? ev_metrics_counter_seconds(m, name, help, labels)
		       : ev_metrics_counter(m, name, help, labels);
}

ev_counter *ev_tool_blocked(ev_metrics *m, const char *output)
{
	return labelled(m, "evpipe_output_blocked_seconds_total",
			"Time spent blocked writing to a full output (backpressure)", "output",
			output, 1);
}

ev_counter *ev_tool_dead_letters(ev_metrics *m, const char *reason)
{
	return labelled(m, "evpipe_dead_letters_total",
			"Records sent to a dead-letter output, by reason", "reason", reason, 0);
}

ev_counter *ev_tool_control_lines(ev_metrics *m)
{
	return ev_metrics_counter(m, "evpipe_control_lines_total",
				  "Control lines (watermarks, barriers, ...) read", NULL);
}

ev_counter *ev_tool_skipped(ev_metrics *m, const char *reason)
{
	return labelled(m, "evpipe_records_skipped_total", "Input lines skipped, by reason",
			"reason", reason, 0);
}

void ev_tool_progress(ev_metrics *m)
{
	if (!progress && m && (progress_wanted < 0 ? isatty(2) && !isatty(1) : progress_wanted))
		progress = ev_progress_start(m, ev_log_prog(), 250);
}

void ev_tool_metrics_free(ev_metrics *m)
{
	ev_progress_stop(progress);
	progress = NULL;
	ev_metrics_free(m);
}

ev_metrics *ev_tool_metrics(const char *tool, const char *job, const char *addr)
{
	char err[256];
	ev_metrics *m = ev_metrics_new(tool, job);
	if (!m) {
		ev_error("out of memory");
		return NULL;
	}
	if (addr && ev_metrics_serve(m, addr, err, sizeof(err)) < 0) {
		ev_error("%s", err);
		ev_metrics_free(m);
		return NULL;
	}
	if (addr)
		ev_info("serving metrics at http://%s:%d/metrics", ev_metrics_host(m),
			ev_metrics_port(m));
	return m;
}
