/* SPDX-License-Identifier: Apache-2.0 */
/* stage.c: the run loop every stage shares: its inputs, one class per line, outputs, barriers. */
#include "stage.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckworker.h"
#include "log.h"
#include "tool.h"

#define MAX_OUTPUTS 4
/* At the end, the part being written is waited for this long: the store's retry budget (30 s)
 * and a margin. */
#define PART_WAIT_MS 40000

struct ev_stage {
	ev_stage_opts o;
	int checkpoints;
	size_t next_file; /* the index of the next input to open */
	int stdin_done;   /* without files: stdin was read */
	ev_reader *in;    /* the input being read (NULL between inputs) */
	int fd;
	const char *name; /* of the input, for messages */
	int named;        /* the input is a file given as an argument */
	struct {
		ev_writer *w;
		ev_counter *blocked;
	} out[MAX_OUTPUTS];
	size_t nout;
	ev_control_seq seq;
	uint64_t records, blank;
	int broken_pipe; /* an output's reader went away */
	char where[1024];
	ev_counter *m_in, *m_bytes, *m_blank, *m_torn, *m_control, *m_barriers, *m_skipped;
	ev_ckworker *worker; /* writes the parts in the background (ADR 0023) */
	_Atomic int failed;  /* parts the worker could not write, not counted yet */
	int busy_warned;     /* said that a barrier found a part being written */
};

enum ev_line_class ev_line_classify(const char *line, size_t len, int flags, int checkpoints)
{
	if (checkpoints && (flags & EV_LINE_NO_NEWLINE) && len > 0)
		return EV_LINE_TORN;
	if (strspn(line, " \t") >= len)
		return EV_LINE_BLANK;
	if (ev_control_is(line, len))
		return EV_LINE_CONTROL;
	return EV_LINE_RECORD;
}

const char *ev_line_class_name(enum ev_line_class c)
{
	switch (c) {
	case EV_LINE_RECORD: return "record";
	case EV_LINE_CONTROL: return "control";
	case EV_LINE_BLANK: return "blank";
	case EV_LINE_TORN: return "torn";
	}
	return "unknown";
}

static void wait_part(ev_stage *s);
static void count_failed(ev_stage *s);

static void flush_before_read(void *arg)
{
	ev_stage_flush(arg);
}

ev_stage *ev_stage_new(const ev_stage_opts *o)
{
	ev_stage *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->o = *o;
	s->fd = -1;
	s->checkpoints = o->ck && o->ck->url;
	ev_control_seq_init(&s->seq, o->restored_id);
	ev_metrics *m = o->metrics;
	s->m_in = ev_tool_records_in(m);
	s->m_bytes = ev_tool_bytes_in(m);
	s->m_blank = ev_tool_skipped(m, "blank");
	if (s->checkpoints)
		s->m_torn = ev_tool_skipped(m, "torn");
	s->m_control = ev_tool_control_lines(m);
	if (o->flags & EV_STAGE_SINK)
		s->m_barriers =
			ev_metrics_counter(m, "evpipe_barriers_total",
					   "Barriers acknowledged after a durable flush", NULL);
	if (s->checkpoints)
		s->m_skipped = ev_metrics_counter(m, "evpipe_checkpoint_stage_skipped_total",
						  "Barriers that got no part because the part or "
						  "upload of an earlier checkpoint was still being "
						  "written",
						  NULL);
	signal(SIGPIPE, SIG_IGN);
	return s;
}

void ev_stage_output(ev_stage *s, ev_writer *w, const char *name)
{
	if (!w || s->nout == MAX_OUTPUTS)
		return;
	s->out[s->nout].w = w;
	s->out[s->nout++].blocked = ev_tool_blocked(s->o.metrics, name);
}

static void close_input(ev_stage *s)
{
	ev_reader_free(s->in);
	s->in = NULL;
	if (s->fd > 0)
		close(s->fd);
	s->fd = -1;
}

/* Open the next input. Returns 1, 0 when there is none left, -1 when it cannot be opened. */
static int open_next(ev_stage *s)
{
	const char *path = "-";
	if (s->o.nfiles == 0) {
		if (s->stdin_done)
			return 0;
		s->stdin_done = 1;
	} else {
		if (s->next_file == s->o.nfiles)
			return 0;
		path = s->o.files[s->next_file++];
	}
	s->named = strcmp(path, "-") != 0;
	s->name = s->named ? path : "standard input";
	s->fd = s->named ? open(path, O_RDONLY | O_CLOEXEC) : 0;
	if (s->fd < 0) {
		ev_error("cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	if (!(s->in = ev_reader_new(s->fd, s->o.max_line))) {
		ev_error("out of memory");
		close_input(s);
		return -1;
	}
	ev_reader_set_before_read(s->in, flush_before_read, s);
	return 1;
}

const char *ev_stage_where(ev_stage *s)
{
	uint64_t n = s->in ? ev_reader_lines(s->in) : 0;
	if (s->named)
		snprintf(s->where, sizeof(s->where), "'%s' line %" PRIu64, s->name, n);
	else
		snprintf(s->where, sizeof(s->where), "line %" PRIu64, n);
	return s->where;
}

/* Parse and check a control line (ADR 0013). Returns 0, or -1 reported. */
static int control(ev_stage *s, ev_stage_line *l)
{
	char err[512];
	memset(&l->control, 0, sizeof(l->control));
	if (s->o.flags & EV_STAGE_CONTROL_UNCHECKED)
		return 0;
	if (ev_control_check(&s->seq, l->data, l->len, ev_wall_ms(), &l->control, err,
			     sizeof(err)) == 0)
		return 0;
	ev_error("%s: %s", ev_stage_where(s), err);
	return -1;
}

int ev_stage_next(ev_stage *s, ev_stage_line *l)
{
	for (;;) {
		int r;
		if (!s->in && (r = open_next(s)) <= 0)
			return r;
		r = ev_reader_next(s->in, &l->data, &l->len, &l->flags);
		if (r < 0 && errno == EINTR) {
			if (ev_tool_stop_requested())
				return 0;
			continue;
		}
		if (r < 0) {
			ev_error("cannot read %s%s%s: %s", s->named ? "'" : "", s->name,
				 s->named ? "'" : "", strerror(errno));
			return -1;
		}
		if (r == 0) {
			close_input(s);
			if (ev_tool_stop_requested())
				return 0;
			continue;
		}
		l->lineno = ev_reader_lines(s->in);
		l->cls = ev_line_classify(l->data, l->len, l->flags, s->checkpoints);
		if (s->o.flags & EV_STAGE_COUNT_EVERY_LINE) {
			ev_counter_inc(s->m_in);
			ev_counter_add(s->m_bytes, l->len);
		}
		switch (l->cls) {
		case EV_LINE_TORN:
			ev_counter_inc(s->m_torn);
			ev_warn("the input ended in the middle of a line (%zu bytes: a stage before "
				"this one died?): not a record; a restore replays it",
				l->len);
			continue;
		case EV_LINE_BLANK:
			s->blank++;
			ev_counter_inc(s->m_blank);
			continue;
		case EV_LINE_CONTROL:
			ev_counter_inc(s->m_control);
			return control(s, l) < 0 ? -1 : 1;
		case EV_LINE_RECORD:
			s->records++;
			if (!(s->o.flags & EV_STAGE_COUNT_EVERY_LINE)) {
				ev_counter_inc(s->m_in);
				ev_counter_add(s->m_bytes, l->len);
			}
			return 1;
		}
	}
}

int ev_stage_wait(ev_stage *s, int timeout_ms)
{
	int r;
	if (!s->in && (r = open_next(s)) <= 0)
		return r < 0 ? -1 : 1; /* the end: ev_stage_next says so at once */
	if (ev_reader_buffered(s->in))
		return 1;
	ev_stage_flush(s);
	struct pollfd p = {ev_reader_fd(s->in), POLLIN, 0};
	int n = poll(&p, 1, timeout_ms);
	if (n > 0)
		return 1;
	if (n < 0 && errno != EINTR) {
		ev_error("cannot poll %s: %s", s->name, strerror(errno));
		return -1;
	}
	return 0;
}

size_t ev_stage_buffered(const ev_stage *s)
{
	return s->in ? ev_reader_buffered(s->in) : 0;
}

void ev_stage_flush(ev_stage *s)
{
	for (size_t i = 0; i < s->nout; i++) {
		ev_writer_flush(s->out[i].w);
		ev_counter_set(s->out[i].blocked, ev_writer_blocked_ns(s->out[i].w));
	}
}

int ev_stage_drain(ev_stage *s)
{
	wait_part(s);
	count_failed(s);
	ev_stage_flush(s);
	for (size_t i = 0; i < s->nout; i++)
		if (ev_writer_flush(s->out[i].w) < 0)
			return ev_stage_write_failed(s, "output");
	return 0;
}

int ev_stage_write_failed(ev_stage *s, const char *what)
{
	if (errno == EPIPE)
		s->broken_pipe = 1;
	else
		ev_error("cannot write %s: %s", what, strerror(errno));
	return -1;
}

/* What the worker needs to write a stage's part: the barrier, when it arrived, and the stage's
 * identity then (a copy: evvalidate's changes with the contract in force). */
struct ack {
	ev_stage *s;
	int64_t id;
	uint64_t t0;
	json_t *identity;
};

/* The worker's task: the part of a stage without state; a failure is warned about here and
 * counted by the stage's thread (count_failed), so that the worker touches no series. */
static void write_ack(ev_ckpt *ck, void *arg)
{
	struct ack *a = arg;
	char err[512];
	if (a->identity)
		ev_ckpt_set_identity(ck, a->identity); /* taken */
	if (ev_ckpt_ack(ck, a->id, a->t0, err, sizeof(err)) < 0) {
		ev_ckpt_failed(ck, a->id, err);
		atomic_fetch_add(&a->s->failed, 1);
	}
	free(a);
}

static void count_failed(ev_stage *s)
{
	int n = atomic_exchange(&s->failed, 0);
	if (n > 0 && s->o.ck)
		ev_counter_add(s->o.ck->failures, (uint64_t)n);
}

/* This stage's part of barrier id, written by the worker while the stage goes on (ADR 0023):
 * an unreachable store delays the checkpoint, not the records. While a part is being written,
 * a barrier gets none (said once, counted): its checkpoint is abandoned by the coordinator. */
static void write_part(ev_stage *s, int64_t id, uint64_t t0)
{
	char err[512];
	struct ack *a = NULL;
	count_failed(s);
	if (!s->worker) {
		ev_ckpt ck = *s->o.ck;
		ck.failures = NULL; /* counted here: count_failed */
		if (!(s->worker = ev_ckworker_new(&ck, 0, err, sizeof(err)))) {
			ev_ckpt_failed(s->o.ck, id, err);
			return;
		}
	}
	int r = ev_ckworker_busy(s->worker) ? 1 : !(a = malloc(sizeof(*a))) ? -1 : 0;
	if (r == 0) {
		const json_t *identity = s->o.ck->identity;
		*a = (struct ack){s, id, t0, identity ? json_deep_copy(identity) : NULL};
		if (identity && !a->identity) {
			snprintf(err, sizeof(err), "out of memory");
			r = -1;
		} else
			r = ev_ckworker_start(s->worker, write_ack, a, err, sizeof(err));
	}
	if (r == 1) {
		ev_counter_inc(s->m_skipped);
		if (!s->busy_warned++)
			ev_warn("checkpoint %" PRId64
				": the part of an earlier checkpoint is still "
				"being written: no part for this one (the store is slow or down?); "
				"counted in evpipe_checkpoint_stage_skipped_total, not reported again",
				id);
	}
	if (r < 0)
		ev_ckpt_failed(s->o.ck, id, a ? err : "out of memory");
	if (r != 0 && a)
		json_decref(a->identity);
	if (r != 0)
		free(a);
}

/* The part being written at the end: waited for (bounded), so that the last barrier's part is
 * in the store when the stage exits. */
static void wait_part(ev_stage *s)
{
	if (s->worker && ev_ckworker_busy(s->worker) && ev_ckworker_wait(s->worker, PART_WAIT_MS))
		ev_warn("the part of the last checkpoint was not written in %d s: a restore uses "
			"an earlier checkpoint",
			PART_WAIT_MS / 1000);
}

int ev_stage_barrier(ev_stage *s, const ev_control *c, uint64_t t0, int (*durable)(void *arg),
		     void *arg)
{
	char err[512];
	int r = durable ? durable(arg) : 0;
	if (r < 0)
		return -1;
	ev_counter_inc(s->m_barriers);
	if (durable)
		ev_debug("barrier %" PRId64 ": everything before it is durable", c->id);
	if (r == 0 && s->o.ck && s->o.ck->store)
		write_part(s, c->id, t0);
	if (s->o.ack && s->o.ck &&
	    ev_ack_send(s->o.ack, s->o.ck->stage, c->id, err, sizeof(err)) < 0)
		ev_warn("cannot acknowledge barrier %" PRId64 ": %s", c->id, err);
	return 0;
}

uint64_t ev_stage_records(const ev_stage *s)
{
	return s->records;
}

uint64_t ev_stage_blank(const ev_stage *s)
{
	return s->blank;
}

void ev_stage_free(ev_stage *s)
{
	if (!s)
		return;
	wait_part(s); /* the series may be gone by now: nothing counted */
	close_input(s);
	if (ev_ckworker_free(s->worker))
		return; /* the task left running refers to s: kept until the process ends */
	free(s);
}

int ev_stage_exit(ev_stage *s, int rc)
{
	int broken = s && s->broken_pipe;
	ev_stage_free(s);
	rc = ev_tool_finish(rc);
	if (broken) {
		signal(SIGPIPE, SIG_DFL);
		raise(SIGPIPE);
	}
	return rc;
}
