/* SPDX-License-Identifier: Apache-2.0 */
/* chsink: insert NDJSON rows into a ClickHouse table over HTTP, in batches, acknowledging
 * barriers once ClickHouse has every row before them. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ack.h"
#include "backoff.h"
#include "buf.h"
#include "checkpoint.h"
#include "clickhouse.h"
#include "codec.h"
#include "control.h"
#include "deadletter.h"
#include "gzip.h"
#include "log.h"
#include "metrics.h"
#include "ndjson.h"
#include "opts.h"
#include "sqlsplit.h"
#include "stage.h"
#include "tool.h"

/* Backoff between retries: from 100 ms, doubling, at most 5 s. */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

enum { DL_PARSE, DL_TOO_LONG, DL_REJECTED, DL_COUNT };
static const char *const dl_reasons[DL_COUNT] = {"parse", "too_long", "rejected"};

/* A row of the batch: its bytes are body[off, next row's off), '\n' included. */
struct row {
	size_t off;
	uint64_t line;
};

struct chsink {
	ev_ckpt ck;
	const char *url;
	const char *table;
	const char *user;
	const char *password_file;
	int64_t batch_rows;
	uint64_t batch_bytes;
	int64_t linger_ms;
	int compress;
	int64_t retry_timeout_ms;
	int64_t timeout_ms;
	const char *create_table;
	char *create_sql; /* its statements, read at start-up */
	const char *dlq_spec;
	uint64_t max_line;
	const char *ack_spec;
	ev_ack_out *ack;
	ev_tool_common common;

	ev_ch *ch;
	char *insert_query;
	char **files; /* the inputs (none: stdin) */
	size_t nfiles;
	ev_stage *stage;
	const char *ctl_line; /* the control line being forwarded */
	size_t ctl_len;
	ev_writer *out;
	ev_writer *dlq; /* NULL: dead letters reported on stderr */
	int dlq_fd;
	int dlq_is_file; /* fsync'ed on a barrier */
	ev_backoff backoff;
	int retrying; /* a request is being retried */
	int reached;  /* the server answered once: later failures are outages to ride out */

	ev_buf body;          /* the batch: rows, each ending in '\n' */
	struct row *rows;     /* nrows + 1 entries: the last one marks the end */
	size_t nrows, cap;    /* rows in the batch */
	size_t settled;       /* rows of the batch inserted or dead-lettered so far */
	uint64_t deadline_ns; /* when the batch must be sent (linger) */
	ev_buf gz;            /* the compressed range being sent */
	ev_buf env;           /* the dead-letter envelope being written */

	uint64_t inserted, dead[DL_COUNT], batches;
	ev_metrics *metrics;
	ev_counter *m_out, *m_dead[DL_COUNT];
	ev_counter *m_rows, *m_bytes, *m_sent, *m_batches, *m_retries, *m_wait, *m_connections;
	ev_counter *m_requests[EV_CH_FATAL + 1];
	ev_histogram *m_batch_seconds, *m_batch_rows;
};

static int dead_letter(struct chsink *s, int reason, const char *raw, size_t len, uint64_t line,
		       const char *message)
{
	s->dead[reason]++;
	ev_counter_inc(s->m_dead[reason]);
	if (!s->dlq) {
		ev_error("line %" PRIu64 ": %s: %s", line, dl_reasons[reason], message);
		return 0;
	}
	ev_deadletter d = {.reason = dl_reasons[reason],
			   .message = message,
			   .raw = raw,
			   .raw_len = len,
			   .line = line,
			   .at = ev_wall_ms()};
	ev_buf_reset(&s->env);
	if (ev_deadletter_format(&s->env, &d) < 0) {
		ev_error("out of memory");
		return -1;
	}
	if (ev_writer_line(s->dlq, s->env.data, s->env.len) < 0)
		return ev_stage_write_failed(s->stage, "the dead-letter output");
	return 0;
}

/* A shutdown request abandons a request that is being retried, not a first attempt: what
 * was read is inserted if ClickHouse takes it, without waiting out an outage. */
static int stop_while_retrying(void *arg)
{
	const struct chsink *s = arg;
	return s->retrying && ev_tool_stop_requested();
}

/* Send one request, retrying what may succeed later until --retry-timeout. what names the
 * request for messages; pending is the number of rows it leaves unwritten when it fails.
 * Returns EV_CH_OK or EV_CH_REJECTED, or -1 after reporting why it gives up. */
static int request(struct chsink *s, const char *query, const void *data, size_t len, int gzip,
		   const char *what, size_t pending, ev_ch_result *res)
{
	ev_retry retry;
	char last[sizeof(res->message)] = ""; /* the last failure, not an abandoned attempt's */
	ev_retry_begin(&retry, &s->backoff, s->retry_timeout_ms);
	for (unsigned attempt = 0;; attempt++) {
		if (attempt > 0 && ev_tool_stop_requested()) {
			ev_error("%s: stopping on signal %d while retrying: %s", what,
				 ev_tool_stop_requested(), last);
			break;
		}
		s->retrying = attempt > 0;
		enum ev_ch_verdict v = ev_ch_post(s->ch, query, data, len, gzip, res);
		s->retrying = 0;
		if (res->status != 0)
			s->reached = 1;
		ev_counter_add(s->m_wait, res->ns);
		ev_counter_add(s->m_sent, len);
		ev_counter_inc(s->m_requests[v]);
		ev_counter_set(s->m_connections, ev_ch_connections(s->ch));
		if (v == EV_CH_OK || v == EV_CH_REJECTED) {
			if (attempt > 0)
				ev_info("%s: ClickHouse answers again, after %u retr%s", what,
					attempt, attempt == 1 ? "y" : "ies");
			ev_backoff_reset(&s->backoff);
			return v;
		}
		if (v == EV_CH_FATAL) {
			ev_error("%s: %s%s", what, res->message,
				 res->status == 401 ? " (check $CLICKHOUSE_USER and the password)"
						    : "");
			break;
		}
		if (!s->reached) {
			ev_error(
				"%s: %s (ClickHouse at '%s' never answered since start: not retried)",
				what, res->message, s->url);
			break;
		}
		if (attempt == 0 || !ev_tool_stop_requested())
			snprintf(last, sizeof(last), "%s", res->message);
		if (ev_tool_stop_requested())
			continue; /* reported above, without waiting */
		uint64_t now = ev_mono_ns();
		int64_t delay;
		if (!ev_retry_failing(&retry))
			ev_warn("%s: %s; retrying for up to %.3g s", what, last,
				(double)s->retry_timeout_ms / 1000);
		if (!ev_retry_next(&retry, &delay)) {
			ev_error("%s: gave up after %.3g s of retries: %s", what,
				 (double)s->retry_timeout_ms / 1000, last);
			break;
		}
		ev_debug("%s: retry %u in %" PRId64 " ms: %s", what, attempt + 1, delay, last);
		ev_counter_inc(s->m_retries);
		ev_sleep_ms(delay); /* a shutdown signal cuts it short: see the loop's top */
		ev_counter_add(s->m_wait, ev_mono_ns() - now);
	}
	if (pending > 0)
		ev_error("%zu row(s) not written to '%s'", pending, s->table);
	return -1;
}

/* Insert rows [a, b) of the batch; a range ClickHouse rejects for its content is halved
 * until the rejected rows are alone, and those are dead-lettered. Returns 0, or -1 when
 * ClickHouse cannot be written (reported). */
static int insert_range(struct chsink *s, size_t a, size_t b)
{
	const char *data = s->body.data + s->rows[a].off;
	size_t len = s->rows[b].off - s->rows[a].off;
	const void *send = data;
	size_t send_len = len;
	if (s->compress) {
		ev_buf_reset(&s->gz);
		if (ev_gzip(&s->gz, data, len) < 0) {
			ev_error("cannot compress a batch: out of memory");
			return -1;
		}
		send = s->gz.data;
		send_len = s->gz.len;
	}
	char what[128];
	snprintf(what, sizeof(what), "insert into '%s'", s->table);
	ev_ch_result res;
	int v = request(s, s->insert_query, send, send_len, s->compress, what,
			s->nrows - s->settled, &res);
	if (v < 0)
		return -1;
	if (v == EV_CH_OK) {
		s->settled += b - a;
		s->inserted += b - a;
		ev_counter_add(s->m_out, b - a);
		ev_counter_add(s->m_rows, b - a);
		ev_counter_add(s->m_bytes, len);
		return 0;
	}
	if (b - a == 1) {
		s->settled++;
		return dead_letter(s, DL_REJECTED, data, len - 1, s->rows[a].line, res.message);
	}
	ev_debug("ClickHouse rejected rows %zu-%zu of the batch, bisecting: %s", a + 1, b,
		 res.message);
	size_t mid = a + (b - a) / 2;
	return insert_range(s, a, mid) < 0 ? -1 : insert_range(s, mid, b);
}

/* Insert the batch, and wait for ClickHouse's acknowledgement. Returns 0 or -1. */
static int flush_batch(struct chsink *s)
{
	if (s->nrows == 0)
		return 0;
	uint64_t t0 = ev_mono_ns();
	s->rows[s->nrows].off = s->body.len;
	s->settled = 0;
	if (insert_range(s, 0, s->nrows) < 0)
		return -1;
	double secs = (double)(ev_mono_ns() - t0) / 1e9;
	s->batches++;
	ev_counter_inc(s->m_batches);
	ev_histogram_observe(s->m_batch_seconds, secs);
	ev_histogram_observe(s->m_batch_rows, (double)s->nrows);
	ev_debug("batch %" PRIu64 ": %zu row(s), %zu bytes in %.3f s", s->batches, s->nrows,
		 s->body.len, secs);
	s->nrows = 0;
	ev_buf_reset(&s->body);
	return 0;
}

static int add_row(struct chsink *s, const char *line, size_t len, uint64_t lineno)
{
	if (s->nrows > 0 && s->body.len + len + 1 > s->batch_bytes && flush_batch(s) < 0)
		return -1;
	if (s->nrows + 1 >= s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		struct row *r = realloc(s->rows, cap * sizeof(*r));
		if (!r)
			goto oom;
		s->rows = r;
		s->cap = cap;
	}
	s->rows[s->nrows].off = s->body.len;
	s->rows[s->nrows].line = lineno;
	if (ev_buf_append(&s->body, line, len) < 0 || ev_buf_putc(&s->body, '\n') < 0)
		goto oom;
	if (s->nrows++ == 0)
		s->deadline_ns = ev_mono_ns() + (uint64_t)s->linger_ms * 1000000u;
	if ((int64_t)s->nrows >= s->batch_rows || s->body.len >= s->batch_bytes)
		return flush_batch(s);
	return 0;
oom:
	ev_error("out of memory");
	return -1;
}

/* A data line: a row for the batch, or a dead letter. */
static int take_row(struct chsink *s, const char *line, size_t len, int flags, uint64_t lineno)
{
	if (flags & EV_LINE_TOO_LONG) {
		char msg[96];
		snprintf(msg, sizeof(msg), "longer than %" PRIu64 " bytes", s->max_line);
		return dead_letter(s, DL_TOO_LONG, line, len, lineno, msg);
	}
	const char *why = ev_ch_row_check(line, len);
	if (why)
		return dead_letter(s, DL_PARSE, line, len, lineno, why);
	return add_row(s, line, len, lineno);
}

static int durable_dlq(struct chsink *s)
{
	if (!s->dlq)
		return 0;
	if (ev_writer_flush(s->dlq) < 0 || (s->dlq_is_file && fdatasync(s->dlq_fd) < 0))
		return ev_stage_write_failed(s->stage, "the dead-letter output");
	return 0;
}

/* The control line at hand to the dead-letter output and to stdout, in order. */
static int forward_control(struct chsink *s)
{
	if (s->dlq && ev_writer_line(s->dlq, s->ctl_line, s->ctl_len) < 0)
		return ev_stage_write_failed(s->stage, "the dead-letter output");
	if (ev_writer_line(s->out, s->ctl_line, s->ctl_len) < 0)
		return ev_stage_write_failed(s->stage, "standard output");
	return 0;
}

/* Before a barrier goes on: every row before it acknowledged by ClickHouse, the dead letters
 * before it durable, and the barrier forwarded. */
static int barrier_durable(void *arg)
{
	struct chsink *s = arg;
	if (flush_batch(s) < 0)
		return -1;
	if (s->dlq && ev_writer_line(s->dlq, s->ctl_line, s->ctl_len) < 0)
		return ev_stage_write_failed(s->stage, "the dead-letter output");
	if (durable_dlq(s) < 0)
		return -1;
	if (ev_writer_line(s->out, s->ctl_line, s->ctl_len) < 0 || ev_writer_flush(s->out) < 0)
		return ev_stage_write_failed(s->stage, "standard output");
	return 0;
}

/* Control lines go to stdout and the dead-letter output in order; a barrier only once
 * ClickHouse has acknowledged every row before it. */
static int take_control(struct chsink *s, const ev_stage_line *l)
{
	s->ctl_line = l->data;
	s->ctl_len = l->len;
	if (l->control.type != EV_CTL_BARRIER)
		return forward_control(s);
	return ev_stage_barrier(s->stage, &l->control, ev_mono_ns(), barrier_durable, s);
}

/* Wait for input until the batch's linger runs out. Returns 1 when input is ready, 0 when
 * the batch is due, -1 on a poll error. */
static int wait_input(struct chsink *s)
{
	for (;;) {
		uint64_t now = ev_mono_ns();
		if (now >= s->deadline_ns)
			return 0;
		if (ev_tool_stop_requested())
			return 1; /* the caller notices */
		uint64_t ms = (s->deadline_ns - now + 999999u) / 1000000u;
		int n = ev_stage_wait(s->stage, ms > 60000 ? 60000 : (int)ms);
		if (n != 0)
			return n;
	}
}

static int run(struct chsink *s)
{
	ev_stage_line l;
	int r, rc = 0;

	for (;;) {
		/* On a shutdown request, what is buffered is still taken, then no more read. */
		if (ev_tool_stop_requested() && ev_stage_buffered(s->stage) == 0)
			break;
		/* The batch is due at its linger's end, whether the input pauses or not. */
		if (s->nrows > 0) {
			int w = 1; /* 1: read on, 0: the batch is due, -1: error */
			if (ev_stage_buffered(s->stage) == 0)
				w = wait_input(s);
			else if (ev_mono_ns() >= s->deadline_ns)
				w = 0;
			if (w < 0) {
				rc = -1;
				break;
			}
			if (w == 0) {
				if (flush_batch(s) < 0)
					return EV_EXIT_FAILURE;
				continue;
			}
			if (ev_tool_stop_requested() && ev_stage_buffered(s->stage) == 0)
				break;
		}
		r = ev_stage_next(s->stage, &l);
		if (r <= 0) {
			rc = r;
			break;
		}
		if (l.cls == EV_LINE_CONTROL ? take_control(s, &l)
					     : take_row(s, l.data, l.len, l.flags, l.lineno))
			return EV_EXIT_FAILURE;
	}
	if (ev_tool_stop_requested())
		ev_info("stopping on signal %d: inserting what was read", ev_tool_stop_requested());
	if (flush_batch(s) < 0)
		return EV_EXIT_FAILURE;
	if (ev_stage_drain(s->stage) < 0)
		rc = -1;
	if (durable_dlq(s) < 0)
		rc = -1;
	uint64_t dead = s->dead[DL_PARSE] + s->dead[DL_TOO_LONG] + s->dead[DL_REJECTED];
	ev_info("%" PRIu64 " row(s) inserted into '%s' in %" PRIu64 " batch(es); %" PRIu64
		" dead-lettered (%" PRIu64 " rejected by ClickHouse, %" PRIu64
		" not JSON objects, %" PRIu64 " too long); %" PRIu64 " blank line(s) skipped",
		s->inserted, s->table, s->batches, dead, s->dead[DL_REJECTED], s->dead[DL_PARSE],
		s->dead[DL_TOO_LONG], ev_stage_blank(s->stage));
	return rc < 0 ? EV_EXIT_FAILURE : EV_EXIT_OK;
}

static int run_statement(void *arg, const char *stmt, int n)
{
	struct chsink *s = arg;
	char what[1200];
	ev_ch_result res;
	snprintf(what, sizeof(what), "--create-table '%s': statement %d", s->create_table, n);
	int v = request(s, NULL, stmt, strlen(stmt), 0, what, 0, &res);
	if (v == EV_CH_REJECTED)
		ev_error("%s: %s", what, res.message);
	if (v != EV_CH_OK)
		return 1; /* reported; stops the split */
	ev_debug("%s applied", what);
	return 0;
}

/* The tables a --create-table file creates, and whether --table is one of them. */
struct created {
	const char *table;
	ev_buf names; /* "a, b" */
	int found;
};

/* Skip the keyword w (any case) at *p and the blanks after it; 1 when it was there. */
static int keyword(const char **p, const char *w)
{
	size_t n = strlen(w);
	if (strncasecmp(*p, w, n) != 0 || !strchr(" \t\r\n(", (*p)[n]))
		return 0;
	*p += n;
	*p += strspn(*p, " \t\r\n");
	return 1;
}

/* The table a "CREATE [OR REPLACE] [TEMPORARY] TABLE [IF NOT EXISTS] name ..." statement
 * creates, quotes (` and ") removed, into name; 0 when stmt creates no table. */
static int created_table(const char *stmt, ev_buf *name)
{
	const char *p = stmt + strspn(stmt, " \t\r\n");
	if (!keyword(&p, "CREATE") || (keyword(&p, "OR") && !keyword(&p, "REPLACE")))
		return 0;
	keyword(&p, "TEMPORARY");
	if (!keyword(&p, "TABLE") ||
	    (keyword(&p, "IF") && !(keyword(&p, "NOT") && keyword(&p, "EXISTS"))))
		return 0;
	ev_buf_reset(name);
	for (size_t i = 0, n = strcspn(p, " \t\r\n("); i < n; i++)
		if (p[i] != '`' && p[i] != '"')
			ev_buf_putc(name, p[i]);
	return name->len > 0;
}

static int note_created(void *arg, const char *stmt, int n)
{
	struct created *c = arg;
	ev_buf name = EV_BUF_INIT;
	(void)n;
	if (created_table(stmt, &name)) {
		/* db.t against t: the same table when the names after the dots agree */
		const char *a = ev_buf_cstr(&name), *b = c->table;
		const char *ad = strchr(a, '.'), *bd = strchr(b, '.');
		if (strcmp(a, b) == 0 || (!ad && bd && strcmp(a, bd + 1) == 0) ||
		    (ad && !bd && strcmp(ad + 1, b) == 0))
			c->found = 1;
		ev_buf_printf(&c->names, "%s'%s'", c->names.len ? ", " : "", a);
	}
	ev_buf_free(&name);
	return 0;
}

/* Read --create-table's file, and refuse one that creates tables but not --table (chsink would
 * create one table and then insert into another). Returns 0, or the exit code after saying
 * why. */
static int read_create_table(struct chsink *s)
{
	char err[512];
	s->create_sql = ev_opt_read_file(s->create_table, 1 << 20, err, sizeof(err));
	if (!s->create_sql) {
		ev_error("--create-table: %s", err);
		return EV_EXIT_FAILURE;
	}
	struct created c = {s->table, EV_BUF_INIT, 0};
	int rc = 0;
	if (ev_sql_split(s->create_sql, note_created, &c) < 0) {
		ev_error("--create-table '%s': a quote or comment is not closed", s->create_table);
		rc = EV_EXIT_FAILURE;
	} else if (c.names.len && !c.found) {
		rc = ev_tool_usage_error("--create-table '%s' creates table %s, not --table '%s'",
					 s->create_table, ev_buf_cstr(&c.names), s->table);
	}
	ev_buf_free(&c.names);
	return rc;
}

/* Apply --create-table, then make sure the table exists before reading any row. */
static int prepare_table(struct chsink *s)
{
	if (s->create_sql && ev_sql_split(s->create_sql, run_statement, s) != 0)
		return -1;
	char query[512], what[300];
	ev_ch_result res;
	snprintf(query, sizeof(query), "EXISTS TABLE %s FORMAT TSV", s->table);
	snprintf(what, sizeof(what), "checking table '%s'", s->table);
	int v = request(s, NULL, query, strlen(query), 0, what, 0, &res);
	if (v == EV_CH_REJECTED)
		ev_error("%s: %s", what, res.message);
	if (v != EV_CH_OK)
		return -1;
	size_t n;
	const char *answer = ev_ch_answer(s->ch, &n);
	if (n == 0 || answer[0] != '1') {
		ev_error("table '%s' does not exist: create it, or give --create-table FILE",
			 s->table);
		return -1;
	}
	return 0;
}

static void setup_metrics(struct chsink *s)
{
	ev_metrics *m = s->metrics;
	static const double row_bounds[] = {1, 10, 100, 1000, 10000, 1e5, 1e6};
	double sec_bounds[14];
	ev_metrics_exp_bounds(sec_bounds, 14, 0.001, 2.5);
	s->m_out = ev_tool_records_out(m);
	for (int i = 0; i < DL_COUNT; i++)
		s->m_dead[i] = ev_tool_dead_letters(m, dl_reasons[i]);
	s->m_rows = ev_metrics_counter(m, "evpipe_sink_inserted_rows_total",
				       "Rows ClickHouse acknowledged", NULL);
	s->m_bytes = ev_metrics_counter(m, "evpipe_sink_inserted_bytes_total",
					"Bytes of the rows ClickHouse acknowledged (uncompressed)",
					NULL);
	s->m_sent =
		ev_metrics_counter(m, "evpipe_sink_sent_bytes_total",
				   "Request bytes sent, compressed, retries and bisection included",
				   NULL);
	s->m_batches = ev_metrics_counter(m, "evpipe_sink_batches_total",
					  "Batches inserted (a bisected batch counts once)", NULL);
	s->m_retries =
		ev_metrics_counter(m, "evpipe_sink_retries_total",
				   "Requests retried after a connection or server error", NULL);
	for (int v = 0; v <= EV_CH_FATAL; v++) {
		char labels[64];
		snprintf(labels, sizeof(labels), "outcome=\"%s\"",
			 ev_ch_verdict_name((enum ev_ch_verdict)v));
		s->m_requests[v] = ev_metrics_counter(m, "evpipe_sink_requests_total",
						      "Requests to ClickHouse, by outcome", labels);
	}
	s->m_wait = ev_metrics_counter_seconds(
		m, "evpipe_sink_wait_seconds_total",
		"Time spent waiting for ClickHouse (requests and backoff), not reading input",
		NULL);
	s->m_connections = ev_metrics_counter(m, "evpipe_sink_connections_total",
					      "Connections opened to ClickHouse", NULL);
	s->m_batch_seconds = ev_metrics_histogram(
		m, "evpipe_sink_batch_seconds",
		"Time from sending a batch to ClickHouse's acknowledgement of all of it", NULL,
		sec_bounds, 14);
	s->m_batch_rows =
		ev_metrics_histogram(m, "evpipe_sink_batch_rows", "Rows per batch", NULL,
				     row_bounds, sizeof(row_bounds) / sizeof(row_bounds[0]));
}

static int opt_batch_bytes(const ev_option *o, char *arg, char *err, size_t errlen)
{
	uint64_t *bytes = o->value;
	if (ev_opt_size(arg, bytes) < 0 || *bytes == 0 || *bytes > (1ULL << 31)) {
		snprintf(err, errlen, "invalid size '%s' (at most 2GiB)", arg);
		return -1;
	}
	return 0;
}

/* getopt_long would take "--password X" (or "--pass=X") for an abbreviated --password-file
 * and repeat X in its complaint; a password must not come near the command line. */
static int refuse_password_option(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strncmp(argv[i], "--pass", 6) == 0 && strcmp(argv[i], "--password-file") != 0 &&
		    strncmp(argv[i], "--password-file=", 16) != 0)
			return ev_tool_usage_error(
				"there is no --password option: give the password in "
				"$CLICKHOUSE_PASSWORD or with --password-file FILE");
	return 0;
}

static int parse_args(struct chsink *s, int argc, char **argv)
{
	const ev_option options[] = {
		EV_OPT_TEXT(
			"usage: chsink --url URL --table DB.TABLE [options] [FILE...] > acknowledgements\n"
			"\n"
			"Inserts rows (a JSON object per line, from the FILEs in order, - for stdin, or stdin)\n"
			"into a ClickHouse table over HTTP, as INSERT ... FORMAT JSONEachRow on one kept-alive\n"
			"connection, in batches: --batch-rows rows,\n"
			"--batch-bytes bytes, or what arrived within --linger of a batch's first row, whichever\n"
			"comes first. A batch refused for its content is bisected: the rows ClickHouse rejects\n"
			"become dead letters with its error text (reason rejected), the others are inserted.\n"
			"Lines that are not JSON objects are dead letters too (reason parse). Connection\n"
			"failures and server errors are retried with exponential backoff, reading no more input\n"
			"meanwhile, for up to --retry-timeout; then chsink exits 1 naming the rows not written.\n"
			"Authentication errors and a missing table are reported at once (exit 1), and so is a\n"
			"server that never answered since start (unknown host, connection refused): exit 1\n"
			"before any row is read.\n"
			"\n"
			"stdout carries only control lines, in order, as acknowledgements: a barrier is written\n"
			"once ClickHouse has acknowledged every row before it; watermarks and other control\n"
			"lines as they come. Control lines also go to the dead-letter output. At the end of\n"
			"input or on SIGTERM/SIGINT what was read is inserted, then chsink exits 0.\n"
			"\n"
			"Credentials: $CLICKHOUSE_USER and $CLICKHOUSE_PASSWORD, or --password-file; never on\n"
			"the command line (credentials in --url are refused), never in messages.\n"
			"\n"
			"Options:\n"),
		EV_OPT_STRING(0, "url", "URL", &s->url,
			      "ClickHouse's HTTP interface, e.g. http://127.0.0.1:8123\n"
			      "(default $CLICKHOUSE_URL); query settings may follow '?'"),
		EV_OPT_STRING(0, "table", "DB.TABLE", &s->table, "the table to insert into"),
		EV_OPT_STRING(0, "user", "NAME", &s->user,
			      "user (default $CLICKHOUSE_USER, else the server's default)"),
		EV_OPT_STRING(0, "password-file", "FILE", &s->password_file,
			      "the password, read from FILE (default $CLICKHOUSE_PASSWORD)"),
		EV_OPT_INT(0, "batch-rows", "N", &s->batch_rows, 1, 100000000, "row count",
			   "rows per insert at most (default 100000)"),
		EV_OPT_CALLBACK(0, "batch-bytes", "SIZE", &s->batch_bytes, opt_batch_bytes,
				"bytes per insert at most, a longer row alone (default 16MiB)"),
		EV_OPT_DURATION(0, "linger", "D", &s->linger_ms, 1000, 0, INT64_MAX,
				"insert a batch at most D after its first row (default 1s;\n"
				"0: as soon as the input pauses)"),
		EV_OPT_FLAG(0, "compress", &s->compress, 1,
			    "send batches gzip-compressed (Content-Encoding: gzip)"),
		EV_OPT_DURATION(0, "retry-timeout", "D", &s->retry_timeout_ms, 1000, 0, INT64_MAX,
				"retry a failing insert for up to D, then exit 1 (default 5m)"),
		EV_OPT_DURATION(0, "timeout", "D", &s->timeout_ms, 1000, 1, INT64_MAX,
				"give up on one request after D, and retry it (default 60s)"),
		EV_OPT_STRING(0, "create-table", "FILE", &s->create_table,
			      "run the statements in FILE (';'-separated; make them\n"
			      "idempotent: CREATE ... IF NOT EXISTS) before inserting;\n"
			      "a FILE that creates tables but not --table is refused"),
		EV_OPT_STRING('d', "dlq", "PATH|fd:N", &s->dlq_spec,
			      "dead-letter output: a file (appended to) or an inherited\n"
			      "descriptor; without it each dead letter is reported on stderr"),
		EV_OPT_SIZE(0, "max-line-bytes", "N", &s->max_line, 1, INT64_MAX, "size",
			    "longer lines are dead-lettered as too_long (default 1MiB)"),
		EV_OPTS_CKPT(&s->ck),
		EV_OPT_TEXT(
			"                           (a barrier's part is written once the rows before it are in)\n"),
		EV_OPT_ACK_SPEC(&s->ack_spec),
		EV_OPTS_PROGRESS(),
		EV_OPTS_COMMON(&s->common),
		EV_OPT_TEXT(
			"\n"
			"Exit status: 0 ok (dead letters are normal operation), 1 runtime failure (ClickHouse\n"
			"unreachable past --retry-timeout, refused credentials, no such table, I/O, an impossible\n"
			"control line: ADR 0013), 2 usage error.\n"),
		EV_OPT_END(),
	};
	if (refuse_password_option(argc, argv) != 0)
		return EV_EXIT_USAGE;
	int rc = ev_tool_parse(options, argc, argv);
	if (rc != 0)
		return rc;
	s->files = argv + optind;
	s->nfiles = (size_t)(argc - optind);
	if (!s->url)
		s->url = getenv("CLICKHOUSE_URL");
	if (!s->url || !*s->url)
		return ev_tool_usage_error("no ClickHouse: give --url URL or set CLICKHOUSE_URL");
	char err[512];
	if (ev_ch_check_url(s->url, err, sizeof(err)) < 0)
		return ev_tool_usage_error("--url: %s", err);
	if (!s->table)
		return ev_tool_usage_error("no table: give --table DB.TABLE");
	if (!ev_ch_table_name_ok(s->table))
		return ev_tool_usage_error("invalid table name '%s': want name or db.name",
					   s->table);
	if (!s->user) {
		const char *u = getenv("CLICKHOUSE_USER");
		s->user = u && *u ? u : NULL;
	}
	return 0;
}

/* The client, with the password from --password-file or $CLICKHOUSE_PASSWORD. */
static int connect_clickhouse(struct chsink *s)
{
	char err[512];
	char *password = NULL;
	if (s->password_file) {
		password = ev_opt_read_file(s->password_file, 4096, err, sizeof(err));
		if (!password) {
			ev_error("--password-file: %s", err);
			return -1;
		}
	} else if (getenv("CLICKHOUSE_PASSWORD")) {
		password = strdup(getenv("CLICKHOUSE_PASSWORD"));
		if (!password) {
			ev_error("out of memory");
			return -1;
		}
	}
	ev_ch_opts o = {s->url, s->user, password, s->timeout_ms, 10000};
	s->ch = ev_ch_new(&o, err, sizeof(err));
	if (password) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	if (!s->ch) {
		ev_error("%s", err);
		return -1;
	}
	ev_ch_set_abort(s->ch, stop_while_retrying, s);
	size_t qlen = strlen(s->table) + 64;
	s->insert_query = malloc(qlen);
	if (!s->insert_query) {
		ev_error("out of memory");
		return -1;
	}
	snprintf(s->insert_query, qlen, "INSERT INTO %s FORMAT JSONEachRow", s->table);
	return 0;
}

static int open_dlq(struct chsink *s)
{
	char err[512];
	struct stat st;
	if (!s->dlq_spec)
		return 0;
	s->dlq_fd = ev_sideout_open(s->dlq_spec, err, sizeof(err));
	if (s->dlq_fd < 0) {
		ev_error("--dlq: %s", err);
		return -1;
	}
	s->dlq_is_file = fstat(s->dlq_fd, &st) == 0 && S_ISREG(st.st_mode);
	s->dlq = ev_writer_new(s->dlq_fd, 64 * 1024);
	return s->dlq ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct chsink s;
	memset(&s, 0, sizeof(s));
	s.batch_rows = 100000;
	s.batch_bytes = 16 << 20;
	s.linger_ms = 1000;
	s.retry_timeout_ms = 5 * 60 * 1000;
	s.timeout_ms = 60 * 1000;
	s.max_line = 1 << 20;
	s.dlq_fd = -1;
	s.common.job = "evpipe";

	ev_tool_init("chsink");
	int rc = parse_args(&s, argc, argv);
	if (rc != 0)
		return rc < 0 ? ev_tool_finish(EV_EXIT_OK) : rc;
	if (s.create_table && (rc = read_create_table(&s)) != 0) {
		free(s.create_sql);
		return rc;
	}
	ev_backoff_init(&s.backoff, BACKOFF_MIN_MS, BACKOFF_MAX_MS,
			((uint64_t)getpid() << 32) ^ ev_mono_ns());
	char err[512];
	ev_ckpt_set_identity(&s.ck, json_pack("{s:s}", "table", s.table));
	if (ev_ckpt_open(&s.ck, s.common.job, "chsink", err, sizeof(err)) < 0 ||
	    ev_ckpt_stateless_restore(&s.ck, err, sizeof(err)) < 0) {
		ev_error("checkpoints: %s", err);
		free(s.create_sql);
		ev_ckpt_close(&s.ck);
		return EV_EXIT_FAILURE;
	}
	if (s.ack_spec && !(s.ack = ev_ack_out_new(s.ack_spec, err, sizeof(err)))) {
		ev_error("--ack: %s", err);
		free(s.create_sql);
		ev_ckpt_close(&s.ck);
		return EV_EXIT_FAILURE;
	}
	s.metrics = ev_tool_metrics("chsink", s.common.job, s.common.metrics_addr);
	ev_stage_opts so = {.files = s.files,
			    .nfiles = s.nfiles,
			    .max_line = (size_t)s.max_line,
			    .ck = &s.ck,
			    .ack = s.ack,
			    .metrics = s.metrics,
			    .flags = EV_STAGE_SINK};
	s.stage = s.metrics ? ev_stage_new(&so) : NULL;
	s.out = ev_writer_new(1, 64 * 1024);
	if (!s.stage || !s.out || open_dlq(&s) < 0) {
		rc = EV_EXIT_FAILURE;
	} else {
		ev_stage_output(s.stage, s.out, "stdout");
		ev_stage_output(s.stage, s.dlq, "dlq");
		setup_metrics(&s);
		ev_ckpt_metrics(&s.ck, s.metrics);
		ev_tool_catch_signals();
		ev_tool_progress(s.metrics);
		rc = connect_clickhouse(&s) < 0 || prepare_table(&s) < 0 ? EV_EXIT_FAILURE
									 : run(&s);
	}
	ev_writer_free(s.out);
	ev_writer_free(s.dlq);
	if (s.dlq_fd > 2)
		close(s.dlq_fd);
	ev_ch_free(s.ch);
	ev_tool_metrics_free(s.metrics);
	ev_ckpt_close(&s.ck);
	ev_ack_out_free(s.ack);
	free(s.insert_query);
	free(s.create_sql);
	free(s.rows);
	ev_buf_free(&s.body);
	ev_buf_free(&s.gz);
	ev_buf_free(&s.env);
	return ev_stage_exit(s.stage, rc);
}
