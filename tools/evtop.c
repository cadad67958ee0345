/* SPDX-License-Identifier: Apache-2.0 */
/* evtop: a live table of the stages of a running job, read from their /metrics. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "opts.h"
#include "progress.h"
#include "scrape.h"
#include "tool.h"

struct target {
	const char *addr;
	char url[512];
	char tool[64];
	char err[256]; /* why the last scrape failed ("" when it did not) */
	ev_progress_sample then, now;
	int sampled; /* scrapes that succeeded */
};

struct evtop {
	int64_t interval_ms;
	int64_t iterations; /* 0: until interrupted */
	ev_tool_common common;
	struct target *targets;
	size_t ntargets;
	ev_buf page;
};

static int page_sum(void *arg, const char *name, const char *labels, double *sum)
{
	const ev_buf *page = arg;
	return ev_scrape_sum(page->data ? page->data : "", page->len, name, labels, sum);
}

/* Scrape every target: a target that does not answer keeps its last figures, marked down. */
static void scrape(struct evtop *t)
{
	for (size_t i = 0; i < t->ntargets; i++) {
		struct target *g = &t->targets[i];
		if (ev_scrape_get(g->url, &t->page, 2000, g->err, sizeof(g->err)) < 0)
			continue;
		g->err[0] = 0;
		ev_scrape_label(t->page.data, t->page.len, "evpipe_records_out_total", "tool",
				g->tool, sizeof(g->tool));
		g->then = g->now;
		ev_progress_sample_from(page_sum, &t->page, &g->now);
		g->sampled++;
	}
}

/* A rate cell: "-" when there is no such series or only one sample so far. */
static void rate(char *cell, size_t len, int has, double then, double now, double secs, int sampled)
{
	if (!has || sampled < 2 || secs <= 0)
		snprintf(cell, len, "-");
	else
		ev_progress_human(cell, len, now > then ? (now - then) / secs : 0);
}

static void print_table(struct evtop *t)
{
	char in[32], out[32], dead[32], late[32], lag[32], blocked[32], tin[32], tout[32];
	printf("%-12s %-22s %7s %7s %7s %7s %7s %7s %8s %8s\n", "STAGE", "METRICS", "IN/s", "OUT/s",
	       "DEAD/s", "LATE/s", "WM LAG", "BLOCKED", "IN", "OUT");
	for (size_t i = 0; i < t->ntargets; i++) {
		struct target *g = &t->targets[i];
		const ev_progress_sample *a = &g->then, *b = &g->now;
		double secs = (double)(b->ns - a->ns) / 1e9;
		rate(in, sizeof(in), b->has_in, a->in, b->in, secs, g->sampled);
		rate(out, sizeof(out), 1, a->out, b->out, secs, g->sampled);
		rate(dead, sizeof(dead), b->has_dead, a->dead, b->dead, secs, g->sampled);
		rate(late, sizeof(late), b->has_late, a->late, b->late, secs, g->sampled);
		snprintf(lag, sizeof(lag), "-");
		if (b->has_wm)
			ev_progress_lag(lag, sizeof(lag), b->wm_lag);
		snprintf(blocked, sizeof(blocked), "-");
		if (g->sampled >= 2 && secs > 0) {
			double f = (b->blocked - a->blocked) / secs;
			snprintf(blocked, sizeof(blocked), "%.0f%%",
				 f < 0   ? 0
				 : f > 1 ? 100
					 : f * 100);
		}
		snprintf(tin, sizeof(tin), "-");
		if (b->has_in && g->sampled)
			ev_progress_human(tin, sizeof(tin), b->in);
		snprintf(tout, sizeof(tout), "-");
		if (g->sampled)
			ev_progress_human(tout, sizeof(tout), b->out);
		printf("%-12s %-22s %7s %7s %7s %7s %7s %7s %8s %8s%s%s\n",
		       g->tool[0] ? g->tool : "?", g->addr, in, out, dead, late, lag, blocked, tin,
		       tout, g->err[0] ? "  down: " : "", g->err);
	}
	fflush(stdout);
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL); /* a shutdown signal cuts it short */
}

static int run(struct evtop *t)
{
	int tty = isatty(1);
	scrape(t);
	for (int64_t n = 0; !t->iterations || n < t->iterations; n++) {
		sleep_ms(t->interval_ms);
		if (ev_tool_stop_requested())
			break;
		scrape(t);
		if (tty)
			fputs("\033[H\033[2J", stdout);
		else if (n > 0)
			putchar('\n');
		print_table(t);
		if (ferror(stdout))
			return EV_EXIT_FAILURE;
	}
	return EV_EXIT_OK;
}

static int parse_args(struct evtop *t, int argc, char **argv)
{
	const ev_option options[] = {
		EV_OPT_TEXT(
			"usage: evtop [options] ADDR...\n"
			"\n"
			"Shows the stages of a running job in a table refreshed every --interval, read from\n"
			"the metrics each one serves (--metrics-addr): records in, out, dead-lettered and\n"
			"late per second, the watermark lag, the share of the time blocked writing to a full\n"
			"output (the slow stage is the first downstream whose own output is not blocked),\n"
			"and the totals. ADDR is a stage's --metrics-addr ([HOST:]PORT, HOST 127.0.0.1) or\n"
			"the URL of its /metrics. A stage that does not answer is shown down, with its last\n"
			"figures. On a terminal the table is redrawn in place; otherwise each table is\n"
			"written after the last one.\n"
			"\n"
			"Options:\n"),
		EV_OPT_DURATION(0, "interval", "D", &t->interval_ms, 1000, 100, INT64_C(3600000),
				"refresh every D (default 1s)"),
		EV_OPT_INT('n', "iterations", "N", &t->iterations, 1, INT64_MAX, "count",
			   "show N tables, then exit (default: until interrupted)"),
		EV_OPTS_COMMON(&t->common),
		EV_OPT_TEXT(
			"\n"
			"Exit status: 0 ok (also when stopped by SIGINT or SIGTERM; a stage that\n"
			"does not answer is shown, not an error), 1 runtime failure (stdout), 2\n"
			"usage error.\n"),
		EV_OPT_END(),
	};
	int rc = ev_tool_parse(options, argc, argv);
	if (rc != 0)
		return rc;
	if (optind == argc)
		return ev_tool_usage_error("no ADDR: give the --metrics-addr of each stage");
	t->ntargets = (size_t)(argc - optind);
	t->targets = calloc(t->ntargets, sizeof(*t->targets));
	if (!t->targets) {
		ev_error("out of memory");
		return EV_EXIT_FAILURE;
	}
	for (size_t i = 0; i < t->ntargets; i++) {
		char err[256];
		t->targets[i].addr = argv[optind + (int)i];
		if (ev_scrape_url(t->targets[i].addr, t->targets[i].url, sizeof(t->targets[i].url),
				  err, sizeof(err)) < 0)
			return ev_tool_usage_error("%s", err);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct evtop t;
	memset(&t, 0, sizeof(t));
	t.interval_ms = 1000;
	t.common.job = "evpipe";

	ev_tool_init("evtop");
	int rc = parse_args(&t, argc, argv);
	if (rc == 0) {
		ev_metrics *m = ev_tool_metrics("evtop", t.common.job, t.common.metrics_addr);
		ev_tool_catch_signals();
		rc = m ? run(&t) : EV_EXIT_FAILURE;
		ev_tool_metrics_free(m);
	}
	free(t.targets);
	ev_buf_free(&t.page);
	return rc < 0 ? ev_tool_finish(EV_EXIT_OK) : ev_tool_finish(rc);
}
