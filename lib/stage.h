/* SPDX-License-Identifier: Apache-2.0 */
/* stage.h: the run loop every stage shares: its inputs, one class per line, outputs, barriers. */
#ifndef EV_STAGE_H
#define EV_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "ack.h"
#include "checkpoint.h"
#include "control.h"
#include "metrics.h"
#include "ndjson.h"

/* What an input line is, decided in this order (docs/design.md, "Stream format"):
 * - torn: with checkpoints, the last line of an input without its '\n' (not empty), whatever it
 *   holds: what a stage upstream was writing when it died; a restore replays it;
 * - blank: empty, or nothing but spaces and tabs;
 * - control: a JSON object whose first key is "__evpipe" (ev_control_is);
 * - record: any other line, for the stage to judge (an over-long one carries EV_LINE_TOO_LONG). */
enum ev_line_class { EV_LINE_RECORD, EV_LINE_CONTROL, EV_LINE_BLANK, EV_LINE_TORN };
enum ev_line_class ev_line_classify(const char *line, size_t len, int flags, int checkpoints);
const char *ev_line_class_name(enum ev_line_class c);

enum {
	/* every line read counts in evpipe_records_in_total and evpipe_bytes_in_total, blank and
	 * control ones too (kin -P, whose input is lines to produce) */
	EV_STAGE_COUNT_EVERY_LINE = 1,
	/* control lines are not parsed nor checked, only returned (kin -P passes them over) */
	EV_STAGE_CONTROL_UNCHECKED = 2,
	/* a sink: evpipe_barriers_total counts the barriers acknowledged after a durable flush */
	EV_STAGE_SINK = 4,
};

typedef struct ev_stage_opts {
	char *const *files; /* the inputs in order, "-" for stdin; none: stdin */
	size_t nfiles;
	size_t max_line;     /* longer lines carry EV_LINE_TOO_LONG (0: no limit) */
	ev_ckpt *ck;         /* the stage's checkpoints (NULL, or ck->url NULL: none) */
	int64_t restored_id; /* the checkpoint restored: barriers must come after it */
	ev_ack_out *ack;     /* --ack: where acknowledged barriers are announced (NULL: nowhere) */
	ev_metrics *metrics;
	int flags; /* EV_STAGE_* */
} ev_stage_opts;

/* A line for the stage: a record or a control line. Blank and torn lines are counted
 * (evpipe_records_skipped_total) and passed over by ev_stage_next. */
typedef struct ev_stage_line {
	char *data; /* NUL-terminated in place, may hold NULs; valid until the next read */
	size_t len;
	int flags;              /* EV_LINE_* of ndjson.h */
	enum ev_line_class cls; /* EV_LINE_RECORD or EV_LINE_CONTROL */
	ev_control control;     /* a control line, parsed and checked (ADR 0013) */
	uint64_t lineno;        /* in its input */
} ev_stage_line;

typedef struct ev_stage ev_stage;

/* The stage over its inputs, with its shared series registered in o->metrics (records in,
 * bytes in, blank and torn lines skipped, control lines). SIGPIPE is ignored from here on: a
 * write to an output whose reader went away fails with EPIPE (ev_stage_write_failed), and
 * ev_stage_exit ends the process by SIGPIPE once everything is cleaned up, as a filter would
 * have died. Returns NULL when out of memory. */
ev_stage *ev_stage_new(const ev_stage_opts *o);
/* An output of the stage, flushed before every read that may block (so that what was written
 * reaches the next stage before this one waits), with the time blocked writing to it in
 * evpipe_output_blocked_seconds_total{output=name}. The writer stays the caller's. */
void ev_stage_output(ev_stage *s, ev_writer *w, const char *name);

/* The next record or control line, reading the inputs in order. A control line that evpipe's
 * tools cannot have written is reported ("line N: impossible control line ...") and ends the
 * loop with -1 (ADR 0013). Returns 1 on a line, 0 at the end of the last input or on a
 * shutdown request (ev_tool_stop_requested), -1 on an error (reported: an input that cannot
 * be opened or read, an impossible control line). */
int ev_stage_next(ev_stage *s, ev_stage_line *l);
/* Wait at most timeout_ms until a line can be read without blocking (the outputs are flushed
 * first). Returns 1 when one can (or the input is at its end), 0 on timeout or a signal, -1 on
 * an error (reported). */
int ev_stage_wait(ev_stage *s, int timeout_ms);
/* Bytes read but not yet returned: a stage polling other sources must not block then. */
size_t ev_stage_buffered(const ev_stage *s);
/* Where the last line came from, for messages: "line N", or "'FILE' line N" when the stage
 * reads files given as arguments. */
const char *ev_stage_where(ev_stage *s);

/* Flush every output and update the blocked time; a failure sticks in its writer and is
 * reported where it is next written (ev_stage_write_failed). */
void ev_stage_flush(ev_stage *s);
/* Wait for this stage's part of the last barrier if it is still being written (at most 40 s:
 * ev_stage_barrier), then flush every output, reporting a failure. Returns 0 or -1. */
int ev_stage_drain(ev_stage *s);
/* A write to output what failed (errno): reported ("cannot write what: ..."), except EPIPE,
 * whose reader went away: then the stage ends quietly, by SIGPIPE in ev_stage_exit. Returns -1. */
int ev_stage_write_failed(ev_stage *s, const char *what);

/* Barrier c (a control line returned by ev_stage_next): durable(arg) makes everything before
 * it durable (a sink's insert acknowledged, its producer flushed, its file fsync'ed; NULL:
 * nothing to do), then this stage's part of the checkpoint is handed to a background thread
 * (ev_ckworker; ev_ckpt_ack there: a failure is warned about and counted, the job goes on), so
 * that a slow or unreachable store delays the checkpoint, not the records (ADR 0023), unless
 * durable returned 1 (it wrote the part itself: a transactional sink's pre-commit, ADR 0021);
 * then the barrier is announced on --ack. One part is written at a time: a barrier that comes
 * while one is being written gets none (a warning once,
 * evpipe_checkpoint_stage_skipped_total), and the coordinator abandons its checkpoint. t0 is
 * when the barrier arrived (ev_mono_ns). Returns 0, or -1 when durable failed (nothing
 * acknowledged). */
int ev_stage_barrier(ev_stage *s, const ev_control *c, uint64_t t0, int (*durable)(void *arg),
		     void *arg);

/* Counts of the lines read so far, for the stage's summary. */
uint64_t ev_stage_records(const ev_stage *s);
uint64_t ev_stage_blank(const ev_stage *s);

/* Free the stage, then end as ev_tool_finish(rc) does: when an output's reader went away
 * (EPIPE), the process is ended by SIGPIPE, as a filter would have died. */
int ev_stage_exit(ev_stage *s, int rc);
/* Free the stage, waiting (at most 40 s) for a part still being written; one still running
 * then is left to end with the process. */
void ev_stage_free(ev_stage *s);

#endif
