/* SPDX-License-Identifier: Apache-2.0 */
/* evwindow: event-time windows with watermarks and allowed lateness over NDJSON records. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agg.h"
#include "buf.h"
#include "checkpoint.h"
#include "ckworker.h"
#include "control.h"
#include "deadletter.h"
#include "handover.h"
#include "log.h"
#include "meta.h"
#include "metrics.h"
#include "ndjson.h"
#include "opts.h"
#include "record.h"
#include "stage.h"
#include "state.h"
#include "timefmt.h"
#include "tool.h"
#include "watermark.h"
#include "window.h"

#define MAX_KEYS 16
/* At the end, the upload in flight is waited for this long: the store's retry budget (30 s)
 * and a margin. */
#define UPLOAD_WAIT_S 40

struct evwindow {
	const char *ts_field;
	char *keys[MAX_KEYS];
	int nkeys;
	ev_agg_spec *aggs;
	size_t naggs;
	ev_window_opts wo;
	ev_wm_opts wmo;
	char ts_path[160]; /* "/" ts_field: where dead letters point */
	const char *meta_field;
	const char *late_spec;
	const char *state_dir;
	uint64_t state_memory;
	uint64_t max_line;
	ev_ckpt ck;
	ev_ckworker *worker;  /* the snapshots' uploads (ADR 0023) */
	int busy_warned;      /* said that a barrier found an upload running */
	json_t *restore_part; /* the part of the checkpoint restored from */
	ev_tool_common common;
	int64_t restored_id; /* the checkpoint restored from (0: none) */
	char **files;        /* the inputs (none: stdin) */
	size_t nfiles;

	ev_window *win;
	ev_wm *wm;
	ev_state *st;
	ev_stage *stage;
	ev_writer *out, *late;
	const char *line; /* the record at hand */
	size_t len;
	uint64_t lineno;
	int stopped;      /* upstream said it stopped: the input ends, the stream does not */
	int ended;        /* upstream said the stream is finished */
	int cross_warned; /* keys said to span partitions */
	int kept_warned;  /* said that revoked partitions keep their windows here */
	uint64_t dead;    /* records dead-lettered (late ones aside) */
	struct held {
		char *line;
		size_t len;
		int64_t until; /* the watermark that releases it */
	} * held;              /* without checkpoints, barriers held back until the windows of
				* the records before them are final (ADR 0014) */
	size_t nheld, capheld;
	ev_record_reader *reader;
	ev_buf scratch;
	char err[1024]; /* what the window engine reported */
	ev_metrics *metrics;
	ev_window_series series;
	ev_counter *m_out;
	ev_histogram *m_ck_duration, *m_ck_sync, *m_ck_async;
	ev_counter *m_ck_skipped;
	ev_gauge *m_ck_full, *m_ck_incremental, *m_ck_last;
	ev_counter *m_saved, *m_loaded, *m_bytes_saved, *m_bytes_loaded;
	ev_gauge *m_owned;
	ev_histogram *m_pause;
	struct arrival {
		uint64_t partition;
		uint64_t t0_ns;
	} * arriving; /* loaded partitions whose first record has not come yet */
	size_t narriving, caparriving;
	struct saved {
		uint64_t partition;
		int64_t offset; /* the offset of its last hand-over object, here or loaded */
		size_t windows, bytes;
	} * saved; /* per partition, what its last hand-over object holds */
	size_t nsaved, capsaved;
};

static int put_row(void *arg, const char *row, size_t len)
{
	struct evwindow *e = arg;
	ev_counter_inc(e->m_out);
	return ev_writer_line(e->out, row, len);
}

/* Keys that span partitions: said for the first CROSS_WARNINGS keys, then counted only. */
enum { CROSS_WARNINGS = 10 };

static void cross_partition(void *arg, const char *key, size_t keylen, const char *first,
			    const char *now)
{
	struct evwindow *e = arg;
	if (e->cross_warned > CROSS_WARNINGS)
		return;
	if (e->cross_warned++ == CROSS_WARNINGS) {
		ev_warn("more keys span partitions: counted in evpipe_keys_cross_partition_total, "
			"not reported");
		return;
	}
	ev_warn("key {%.*s} of partition %s was seen first in partition %s: its records are "
		"windowed apart in each, and their rows replace each other in the table; key "
		"the topic by the aggregation key (README: keying rule)",
		(int)(keylen > 200 ? 200 : keylen), key, now, first);
}

static void spilling(void *arg, size_t bytes, size_t windows)
{
	struct evwindow *e = arg;
	ev_debug("state: %zu bytes in memory, over %zu: spilling %zu windows to %s", bytes,
		 (size_t)(e->state_memory / 2), windows, ev_state_dir(e->st));
}

static int dead_letter(struct evwindow *e, const char *reason, const char *path,
		       const char *message, const char *line, size_t len)
{
	if (strcmp(reason, "late") != 0) { /* the window engine counts its late records */
		ev_counter_inc(ev_tool_dead_letters(e->metrics, reason));
		e->dead++;
	}
	if (!e->late) {
		ev_error("%s: %s%s%s: %s", ev_stage_where(e->stage), reason, *path ? " at " : "",
			 path, message);
		return 0;
	}
	ev_meta_span span = {NULL, 0, 0};
	ev_buf orig = EV_BUF_INIT;
	if (e->meta_field && ev_meta_extract(line, len, e->meta_field, &span, &orig) == 1) {
		line = orig.data;
		len = orig.len;
	}
	ev_deadletter d = {reason, path,      NULL,          message,   NULL,        line,
			   len,    span.json, span.json_len, e->lineno, ev_wall_ms()};
	ev_buf_reset(&e->scratch);
	int rc = ev_deadletter_format(&e->scratch, &d);
	ev_buf_free(&orig);
	return rc ? -1 : ev_writer_line(e->late, e->scratch.data, e->scratch.len);
}

/* The engine's dead letters (late, future): the record at hand, its event time the cause. */
static int window_dead_letter(void *arg, const char *reason, const char *message)
{
	struct evwindow *e = arg;
	return dead_letter(e, reason, e->ts_path, message, e->line, e->len);
}

static int release_barriers(struct evwindow *e, int64_t wm);

/* The first record of a partition loaded from a hand-over: the pause of its move, from the
 * assign line to it (evpipe_handover_pause_seconds). */
static void arrived(struct evwindow *e, uint64_t partition)
{
	for (size_t i = 0; i < e->narriving; i++)
		if (e->arriving[i].partition == partition) {
			ev_histogram_observe(e->m_pause,
					     (double)(ev_mono_ns() - e->arriving[i].t0_ns) / 1e9);
			e->arriving[i] = e->arriving[--e->narriving];
			return;
		}
}

/* Window one record: returns 0, EV_WINDOW_OUTPUT on an output error, or EV_WINDOW_FAILED
 * (e->err says why). */
static int record(struct evwindow *e, const char *line, size_t len)
{
	ev_record rec;
	ev_record_error why;
	int r = ev_record_read(e->reader, line, len, &rec, &why);
	if (r < 0) {
		snprintf(e->err, sizeof(e->err), "out of memory");
		return EV_WINDOW_FAILED;
	}
	if (r > 0)
		return dead_letter(e, why.reason, why.path, why.message, line, len) < 0
			       ? EV_WINDOW_OUTPUT
			       : 0;
	e->line = line;
	e->len = len;
	if (e->narriving)
		arrived(e, rec.partition);
	r = ev_window_add(e->win, &rec, ev_wall_ms_coarse(), e->err, sizeof(e->err));
	return r < 0 || !e->nheld ? r : release_barriers(e, ev_window_watermark(e->win));
}

/* The entry of partition in e->saved, added (offset -1) when add; NULL without it or
 * memory. */
static struct saved *saved_of(struct evwindow *e, uint64_t partition, int add)
{
	for (size_t i = 0; i < e->nsaved; i++)
		if (e->saved[i].partition == partition)
			return &e->saved[i];
	if (!add)
		return NULL;
	if (ev_array_room(&e->saved, &e->capsaved, e->nsaved, sizeof(*e->saved), 16) < 0)
		return NULL;
	e->saved[e->nsaved] = (struct saved){partition, -1, 0, 0};
	return &e->saved[e->nsaved++];
}

/* Remember that partition's state at offset is in the store (windows, bytes). */
static void saved_at(struct evwindow *e, uint64_t partition, int64_t offset, size_t windows,
		     size_t bytes)
{
	struct saved *s = saved_of(e, partition, 1);
	if (s)
		*s = (struct saved){partition, offset, windows, bytes};
}

/* The state of one partition to write with a checkpoint (ADR 0025, 5.2). */
struct part_state {
	char *topic;
	int32_t partition;
	int64_t offset;
	size_t windows;
	ev_buf state; /* empty: its object at that offset is in the store already */
	int write;
};

/* Set by the background thread when a partition's state could not be written: the stage's
 * thread then forgets which objects are in the store, and the next checkpoint writes every
 * partition's again. One evwindow per process: a static outlives any task. */
static atomic_int states_lost;

/* Every checkpoint is also a hand-over of every partition (ADR 0025, 5.2): for each partition
 * the barrier line lists (those kin owns, at its offset there), the partition's state as of
 * the barrier, saved here (on the barrier, from the live windows) for the background thread to
 * put under the hand-over key of that offset before the part, unless its last object is at
 * that offset already (no record since). A copy that takes the partition over at the group's
 * committed offset, this checkpoint's once it completes, loads it there, even when this copy
 * was killed. Fills *states (n of them) and returns the part's "partitions" ([{topic,
 * partition, offset, key, windows, bytes}]), or NULL with a message in err. */
static json_t *checkpoint_partitions(struct evwindow *e, const char *line, size_t len,
				     struct part_state **states, size_t *nstates, char *err,
				     size_t errlen)
{
	ev_control_part *parts;
	size_t n;
	*states = NULL;
	*nstates = 0;
	if (atomic_exchange(&states_lost, 0))
		e->nsaved = 0;
	if (ev_control_partitions(line, len, &parts, &n, err, errlen) < 0)
		return NULL;
	json_t *list = json_array();
	ev_buf key = EV_BUF_INIT;
	*states = calloc(n + 1, sizeof(**states));
	if (!*states) {
		json_decref(list);
		list = NULL;
	}
	for (size_t i = 0; i < n && list && !e->wo.keys_span_partitions; i++) {
		const ev_control_part *p = &parts[i];
		uint64_t part = ev_window_partition(p->topic, strlen(p->topic), p->partition);
		struct saved *sv = saved_of(e, part, 0);
		if (p->offset < 0)
			continue;
		struct part_state *ps = &(*states)[(*nstates)++];
		*ps = (struct part_state){strdup(p->topic),     p->partition, p->offset,
					  sv ? sv->windows : 0, EV_BUF_INIT,  0};
		size_t bytes = sv ? sv->bytes : 0;
		if (ps->topic && (!sv || sv->offset != p->offset)) {
			ps->write = 1;
			if (ev_window_partition_save(e->win, part, &ps->state, &ps->windows, err,
						     errlen) != 0) {
				json_decref(list);
				list = NULL;
				break;
			}
			bytes = ps->state.len;
			saved_at(e, part, p->offset, ps->windows, bytes);
		}
		ev_handover_key(&key, e->ck.job, e->ck.stage, p->topic, p->partition, p->offset);
		json_t *entry =
			ps->topic ? json_pack("{s:s, s:i, s:I, s:s, s:I, s:I}", "topic", p->topic,
					      "partition", (int)p->partition, "offset",
					      (json_int_t)p->offset, "key", ev_buf_cstr(&key),
					      "windows", (json_int_t)ps->windows, "bytes",
					      (json_int_t)bytes)
				  : NULL;
		if (!entry || json_array_append_new(list, entry) < 0) {
			json_decref(list);
			list = NULL;
		}
	}
	if (!list && !*err)
		snprintf(err, errlen, "out of memory");
	ev_buf_free(&key);
	ev_control_parts_free(parts, n);
	return list;
}

static void part_states_free(struct part_state *states, size_t n)
{
	for (size_t i = 0; states && i < n; i++) {
		free(states[i].topic);
		ev_buf_free(&states[i].state);
	}
	free(states);
}

/* In the background, before the part: the states checkpoint_partitions saved, to the store.
 * Returns 0, or -1 with a message in err (the part is not written: the manifest must not
 * promise an object that is not in the store). */
static int put_partitions(ev_ckpt *ck, const struct part_state *states, size_t n, char *err,
			  size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		const struct part_state *ps = &states[i];
		if (ps->write && ev_handover_put(ck->store, ck->job, ck->stage, ps->topic,
						 ps->partition, ps->offset, ps->state.data,
						 ps->state.len, ps->windows, err, errlen) < 0) {
			atomic_store(&states_lost, 1);
			return -1;
		}
	}
	return 0;
}

/* The asynchronous part of a snapshot (ADR 0023): what the background thread gets. It owns
 * dir, a RocksDB checkpoint (hard links: immutable), and touches neither the live RocksDB nor
 * the window table. */
struct snapshot {
	int64_t id;
	char *dir;
	uint64_t t0_ns;   /* the barrier arrived */
	uint64_t sync_ns; /* the synchronous part ended: the barrier went on */
	size_t windows;   /* in memory at the barrier */
	int64_t watermark;
	ev_histogram *m_duration, *m_sync, *m_async;
	ev_gauge *m_full, *m_incremental, *m_last;
	json_t *partitions;        /* the part's, or NULL (checkpoint_partitions) */
	struct part_state *states; /* to put before the part */
	size_t nstates;
};

static void snapshot_free(struct snapshot *s)
{
	ev_state_remove_dir(s->dir);
	free(s->dir);
	json_decref(s->partitions);
	part_states_free(s->states, s->nstates);
	free(s);
}

/* Write evwindow's part of checkpoint s->id: the files uploaded (files, taken), their bytes,
 * the watermark and the timings. Called once every file it lists is in the store. Returns 0, or
 * -1 with a message in err. */
static int put_part(ev_ckpt *ck, const struct snapshot *s, json_t *files, uint64_t total,
		    uint64_t uploaded, char *err, size_t errlen)
{
	uint64_t now = ev_mono_ns();
	int64_t sync_ms = (int64_t)((s->sync_ns - s->t0_ns) / 1000000);
	int64_t async_ms = (int64_t)((now - s->sync_ns) / 1000000);
	/* duration_ms is the sum: kin takes it from the part's time to find when the barrier
	 * reached this stage (its alignment). */
	ev_ckpt_part p = {.files = files,
			  .bytes = (int64_t)total,
			  .uploaded_bytes = (int64_t)uploaded,
			  .duration_ms = sync_ms + async_ms};
	json_t *part = ev_ckpt_part_new(&p);
	json_decref(files);
	if (part &&
	    (json_object_set_new(part, "sync_ms", json_integer(sync_ms)) ||
	     json_object_set_new(part, "async_ms", json_integer(async_ms)) ||
	     json_object_set_new(part, "windows_in_memory", json_integer((json_int_t)s->windows)) ||
	     json_object_set_new(part, "watermark", json_integer(s->watermark)) ||
	     (s->partitions && json_object_set(part, "partitions", s->partitions)))) {
		json_decref(part);
		part = NULL;
	}
	if (!part) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return ev_ckpt_put_part(ck, s->id, part, err, errlen);
}

/* The background thread's task: the files of the RocksDB checkpoint the store lacks, then the
 * part, which so never names a missing file; then the directory is removed. */
static void upload_snapshot(ev_ckpt *ck, void *arg)
{
	struct snapshot *s = arg;
	char err[1024];
	uint64_t total, uploaded;
	json_t *files = put_partitions(ck, s->states, s->nstates, err, sizeof(err)) < 0
				? NULL
				: ev_ckpt_upload_dir(ck, s->id, s->dir, &total, &uploaded, err,
						     sizeof(err));
	if (!files || put_part(ck, s, files, total, uploaded, err, sizeof(err)) < 0) {
		ev_ckpt_failed(ck, s->id, err);
		snapshot_free(s);
		return;
	}
	uint64_t now = ev_mono_ns();
	double sync = (double)(s->sync_ns - s->t0_ns) / 1e9,
	       async = (double)(now - s->sync_ns) / 1e9;
	ev_histogram_observe(s->m_sync, sync);
	ev_histogram_observe(s->m_async, async);
	ev_histogram_observe(s->m_duration, sync + async);
	ev_gauge_set(s->m_full, (double)total);
	ev_gauge_set(s->m_incremental, (double)uploaded);
	ev_gauge_set(s->m_last, (double)s->id);
	ev_debug("checkpoint %" PRId64 ": %" PRIu64 " bytes, %" PRIu64
		 " uploaded; %.3f s on the barrier, %.3f s in the background",
		 s->id, total, uploaded, sync, async);
	snapshot_free(s);
}

/* Barrier id, the synchronous part of the snapshot (ADR 0023): the changed windows to RocksDB
 * and a RocksDB checkpoint in a directory next to the state (ev_window_checkpoint: hard
 * links), handed to the background thread, which uploads it and writes the part; the barrier
 * then goes on downstream at once. While an upload runs, a barrier gets no part (said once,
 * counted): its checkpoint is abandoned by the coordinator. */
static void take_checkpoint(struct evwindow *e, int64_t id, const char *line, size_t len)
{
	char err[1024];
	uint64_t t0 = ev_mono_ns();
	if (ev_ckworker_busy(e->worker)) {
		ev_counter_inc(e->m_ck_skipped);
		if (!e->busy_warned++)
			ev_warn("checkpoint %" PRId64 ": the upload of an earlier checkpoint still "
				"runs: no part for this one (the store is slow or down?); counted in "
				"evpipe_checkpoint_stage_skipped_total, not reported again",
				id);
		return;
	}
	struct snapshot *s = calloc(1, sizeof(*s));
	ev_buf dir = EV_BUF_INIT;
	ev_buf_printf(&dir, "%s.chk-%" PRId64, ev_state_dir(e->st), id);
	if (s)
		s->dir = strdup(ev_buf_cstr(&dir));
	ev_buf_free(&dir);
	if (!s || !s->dir) {
		free(s);
		ev_ckpt_failed(&e->ck, id, "out of memory");
		return;
	}
	int64_t wm = ev_wm_current(e->wm, ev_wall_ms());
	*s = (struct snapshot){.id = id,
			       .dir = s->dir,
			       .t0_ns = t0,
			       .windows = ev_window_in_memory(e->win),
			       .watermark = wm == EV_WM_MIN ? 0 : wm,
			       .m_duration = e->m_ck_duration,
			       .m_sync = e->m_ck_sync,
			       .m_async = e->m_ck_async,
			       .m_full = e->m_ck_full,
			       .m_incremental = e->m_ck_incremental,
			       .m_last = e->m_ck_last};
	*err = '\0';
	s->partitions =
		checkpoint_partitions(e, line, len, &s->states, &s->nstates, err, sizeof(err));
	if (!s->partitions || ev_window_checkpoint(e->win, s->dir, err, sizeof(err)) < 0) {
		atomic_store(&states_lost, 1); /* what checkpoint_partitions saved is not put */
		ev_ckpt_failed(&e->ck, id, err);
		snapshot_free(s);
		return;
	}
	s->sync_ns = ev_mono_ns();
	if (ev_ckworker_start(e->worker, upload_snapshot, s, err, sizeof(err)) != 0) {
		atomic_store(&states_lost, 1);
		ev_ckpt_failed(&e->ck, id, err);
		snapshot_free(s);
	}
}

/* The upload in flight at the end: waited for, at most for the store's retry budget and a
 * margin, so that its part is written (the last checkpoint's, with kin -e). */
static void finish_upload(struct evwindow *e)
{
	if (!e->worker || !ev_ckworker_busy(e->worker))
		return;
	ev_info("waiting for the upload of the last checkpoint (at most %d s)", UPLOAD_WAIT_S);
	if (ev_ckworker_wait(e->worker, UPLOAD_WAIT_S * 1000))
		ev_warn("the upload of the last checkpoint did not finish in %d s: its part is not "
			"written, a restore uses an earlier checkpoint",
			UPLOAD_WAIT_S);
}

/* Forward the held barriers the watermark wm releases, in order. Returns 0 or
 * EV_WINDOW_OUTPUT. */
static int release_barriers(struct evwindow *e, int64_t wm)
{
	size_t n = 0;
	int rc = 0;
	for (; n < e->nheld && e->held[n].until <= wm && rc == 0; n++) {
		struct held *h = &e->held[n];
		if (ev_writer_line(e->out, h->line, h->len) < 0 ||
		    (e->late && ev_writer_line(e->late, h->line, h->len) < 0))
			rc = EV_WINDOW_OUTPUT;
		free(h->line);
	}
	if (n) {
		memmove(e->held, e->held + n, (e->nheld - n) * sizeof(*e->held));
		e->nheld -= n;
	}
	return rc;
}

/* Without checkpoints a barrier tells the sinks to acknowledge what came before it, and kin
 * commits the offsets it follows (kin --commit-on-ack): it may go on only once every window a
 * record before it went into has been written for the last time, when the watermark has passed
 * ev_window_final_at of the moment it came. Returns as record does. */
static int hold_barrier(struct evwindow *e, const char *line, size_t len)
{
	int64_t until = ev_window_final_at(e->win);
	if (e->nheld && e->held[e->nheld - 1].until > until)
		until = e->held[e->nheld - 1].until;
	if (e->nheld == e->capheld) {
		size_t cap = e->capheld ? 2 * e->capheld : 8;
		struct held *h = realloc(e->held, cap * sizeof(*h));
		if (!h) {
			snprintf(e->err, sizeof(e->err), "out of memory");
			return EV_WINDOW_FAILED;
		}
		e->held = h;
		e->capheld = cap;
	}
	struct held *h = &e->held[e->nheld];
	if (!(h->line = malloc(len))) {
		snprintf(e->err, sizeof(e->err), "out of memory");
		return EV_WINDOW_FAILED;
	}
	memcpy(h->line, line, len);
	h->len = len;
	h->until = until;
	e->nheld++;
	return release_barriers(e, ev_window_watermark(e->win));
}

/* Where revoked partitions' windows cannot go, they stay (said once): without a store there is
 * no hand-over, and with --keys-span-partitions no state of one partition alone. */
static void keep_revoked(struct evwindow *e, const char *why)
{
	if (!e->kept_warned++)
		ev_warn("revoked partitions keep their windows here (%s): right while this is the "
			"only copy of the job, wrong once another copy reads them (README: Scaling "
			"out)",
			why);
}

/* A revoke line: each partition's windows, saved as of the line's offset, go to the store
 * for whichever copy reads it next, and are forgotten here without firing (ADR 0025).
 * Returns as record does. */
static int revoke_parts(struct evwindow *e, const ev_control_part *parts, size_t n)
{
	ev_buf state = EV_BUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const ev_control_part *p = &parts[i];
		uint64_t part = ev_window_partition(p->topic, strlen(p->topic), p->partition);
		size_t windows;
		if (!ev_window_partition_held(e->win, part))
			continue; /* nothing of it here */
		if (e->wo.keys_span_partitions || !e->ck.store || p->offset < 0) {
			keep_revoked(e, e->wo.keys_span_partitions ? "--keys-span-partitions"
					: !e->ck.store             ? "no --checkpoint-store"
						       : "no offset in the revoke line");
			continue;
		}
		ev_buf_reset(&state);
		rc = ev_window_partition_save(e->win, part, &state, &windows, e->err,
					      sizeof(e->err));
		if (rc == 0 && ev_handover_put(e->ck.store, e->ck.job, e->ck.stage, p->topic,
					       p->partition, p->offset, state.data, state.len,
					       windows, e->err, sizeof(e->err)) < 0)
			rc = EV_WINDOW_FAILED; /* kept here, and the stage stops: nothing lost */
		if (rc == 0)
			rc = ev_window_partition_drop(e->win, part, e->err, sizeof(e->err));
		if (rc == 0) {
			saved_at(e, part, p->offset, windows, state.len);
			ev_counter_inc(e->m_saved);
			ev_counter_add(e->m_bytes_saved, state.len);
			ev_info("%s [%d]: revoked at offset %" PRId64 ": %zu windows (%zu bytes) "
				"handed over to the checkpoint store",
				p->topic, (int)p->partition, p->offset, windows, state.len);
		}
	}
	ev_buf_free(&state);
	return rc;
}

/* An assign line: a partition without state here whose state was handed over at the offset
 * its records now resume from is loaded before the first of them (ADR 0025). Returns as
 * record does. */
static int assign_parts(struct evwindow *e, const ev_control_part *parts, size_t n)
{
	ev_buf state = EV_BUF_INIT;
	int rc = 0;
	uint64_t t0 = ev_mono_ns();
	for (size_t i = 0; i < n && rc == 0; i++) {
		const ev_control_part *p = &parts[i];
		uint64_t part = ev_window_partition(p->topic, strlen(p->topic), p->partition);
		size_t windows;
		if (!e->ck.store || p->offset < 0 || e->wo.keys_span_partitions ||
		    ev_window_partition_held(e->win, part))
			continue; /* its state here, if any, is where its records resume */
		int r = ev_handover_get(e->ck.store, e->ck.job, e->ck.stage, p->topic, p->partition,
					p->offset, &state, e->err, sizeof(e->err));
		if (r < 0)
			rc = EV_WINDOW_FAILED;
		if (r <= 0)
			continue;
		rc = ev_window_partition_load(e->win, state.data, state.len, ev_wall_ms(), &windows,
					      e->err, sizeof(e->err));
		if (rc == 0 && e->narriving == e->caparriving) {
			size_t cap = e->caparriving ? 2 * e->caparriving : 8;
			struct arrival *a = realloc(e->arriving, cap * sizeof(*a));
			if (a) {
				e->arriving = a;
				e->caparriving = cap;
			}
		}
		if (rc == 0 && e->narriving < e->caparriving)
			e->arriving[e->narriving++] = (struct arrival){part, t0};
		if (rc == 0) {
			saved_at(e, part, p->offset, windows, state.len);
			ev_counter_inc(e->m_loaded);
			ev_counter_add(e->m_bytes_loaded, state.len);
			ev_info("%s [%d]: assigned at offset %" PRId64 ": %zu windows (%zu bytes) "
				"loaded from the hand-over",
				p->topic, (int)p->partition, p->offset, windows, state.len);
		}
	}
	ev_buf_free(&state);
	return rc;
}

/* An assign or revoke line. Returns as record does. */
static int assignment(struct evwindow *e, const ev_control *c, const char *line, size_t len)
{
	ev_control_part *parts;
	size_t n;
	if (ev_control_partitions(line, len, &parts, &n, e->err, sizeof(e->err)) < 0)
		return EV_WINDOW_FAILED;
	/* Rows the revoked partitions' records fired go before the line. */
	int rc = c->type == EV_CTL_REVOKE ? revoke_parts(e, parts, n) : assign_parts(e, parts, n);
	ev_control_parts_free(parts, n);
	ev_gauge_set(e->m_owned, (double)ev_window_partitions(e->win));
	return rc;
}

/* A control line (checked by the stage: ADR 0013): returns as record does. */
static int control(struct evwindow *e, const char *line, size_t len, ev_control c)
{
	if (c.type == EV_CTL_BARRIER && e->ck.store) {
		/* Rows before the barrier are out before the state that produced them is saved. */
		if (ev_writer_flush(e->out) < 0 || (e->late && ev_writer_flush(e->late) < 0))
			return EV_WINDOW_OUTPUT;
		take_checkpoint(e, c.id, line, len);
	}
	if (c.type == EV_CTL_BARRIER && !e->ck.store)
		return hold_barrier(e, line, len);
	if (c.type == EV_CTL_ASSIGN || c.type == EV_CTL_REVOKE) {
		int r = assignment(e, &c, line, len);
		if (r < 0)
			return r;
	}
	if (c.type == EV_CTL_STOP)
		e->stopped = 1;
	if (c.type == EV_CTL_END)
		e->ended = 1;
	if (c.type == EV_CTL_WATERMARK) {
		ev_wm_promise(e->wm, c.ts);
		int r = ev_window_advance(e->win, ev_wm_current(e->wm, ev_wall_ms()), e->err,
					  sizeof(e->err));
		if (r < 0 || (r = release_barriers(e, ev_window_watermark(e->win))) < 0)
			return r;
	}
	if (ev_writer_line(e->out, line, len) < 0 ||
	    (e->late && ev_writer_line(e->late, line, len) < 0))
		return EV_WINDOW_OUTPUT;
	return 0;
}

static int restore_fill(const char *dir, void *arg, char *err, size_t errlen)
{
	struct evwindow *e = arg;
	return ev_ckpt_download_files(e->ck.store, e->restore_part, dir, err, errlen);
}

static int fresh_fill(const char *dir, void *arg, char *err, size_t errlen)
{
	(void)arg;
	(void)err;
	(void)errlen;
	ev_debug("no checkpoint to restore: starting with empty state in %s", dir);
	return 0;
}

/* Open the state store (from a checkpoint, or a --state-dir, or a private one) and continue
 * from what it holds. Returns 0, or -1 (reported). */
static int open_state(struct evwindow *e)
{
	char err[1024];
	ev_ckpt_restored rs;
	/* Half of the memory for aggregation in memory, a quarter for RocksDB, the rest for
	 * what the estimate misses. */
	ev_state_opts so = {.dir = e->state_dir, .memory = e->state_memory / 4};
	ev_buf fp = EV_BUF_INIT;
	ev_window_fingerprint(&fp, &e->wo); /* a checkpoint of other windows is refused unread */
	ev_ckpt_set_identity(&e->ck,
			     json_pack("{s:s%}", "fingerprint", fp.data ? fp.data : "", fp.len));
	ev_buf_free(&fp);
	if (ev_ckpt_open(&e->ck, e->common.job, "evwindow", err, sizeof(err)) < 0 ||
	    ev_ckpt_restore(&e->ck, &rs, err, sizeof(err)) < 0) {
		ev_error("checkpoints: %s", err);
		return -1;
	}
	e->restore_part = json_incref(rs.part);
	int64_t restored = e->restored_id = rs.id;
	ev_ckpt_restored_free(&rs);
	if (restored && !e->restore_part) {
		ev_error("checkpoints: checkpoint %" PRId64 " has no part of stage '%s'", restored,
			 e->ck.stage);
		return -1;
	}
	if (e->restore_part) {
		so.fill = restore_fill;
		so.fill_arg = e;
	} else if (e->ck.store) {
		/* With checkpoints, state comes from a checkpoint or starts empty: what a directory
		 * holds besides would not match where kin resumes reading. */
		so.fill = fresh_fill;
	}
	if (!(e->st = ev_state_open(&so, err, sizeof(err)))) {
		ev_error("--state-dir: %s", err);
		return -1;
	}
	/* A checkpoint was taken from a running store: it carries the "not saved" mark, which
	 * does not apply to it. */
	if (e->restore_part && ev_window_unmark_open(e->st, err, sizeof(err)) < 0) {
		ev_error("state store: %s", err);
		return -1;
	}
	e->wo.st = e->st;
	e->wo.mem_budget = e->state_memory / 2;
	size_t n;
	int64_t now = ev_wall_ms();
	if (!(e->win = ev_window_new(&e->wo))) {
		ev_error("out of memory");
		return -1;
	}
	int r = ev_window_restore(e->win, now, &n, err, sizeof(err));
	if (r < 0) {
		ev_error("%s", err);
		return -1;
	}
	if (r == 1)
		ev_info("continuing from the state in %s: watermark %" PRId64 ", %zu %s",
			ev_state_dir(e->st), ev_wm_current(e->wm, now), n,
			e->wo.gap_ms ? "sessions" : "window ends");
	if (e->ck.store && !(e->worker = ev_ckworker_new(&e->ck, 0, err, sizeof(err)))) {
		ev_error("checkpoints: %s", err);
		return -1;
	}
	return 0;
}

/* The input ended: fire what is open, or keep it (in the last checkpoint, or saved to
 * --state-dir) when the input only stopped. Returns as record does. */
static int finish(struct evwindow *e)
{
	int stop = ev_tool_stop_requested() || e->stopped;
	if (!stop && e->ck.store && !e->ended) {
		/* With checkpoints the stream ends only when the source says so: an input that
		 * just stops is a stage upstream that died, and firing now would write partial
		 * windows. A restore continues from the last checkpoint. */
		ev_warn("the input ended without an end line (a stage before this one failed?): "
			"the open windows stay in the last checkpoint");
		stop = 1;
	}
	if (stop && e->ck.store) {
		/* The state of record is the last checkpoint, and reading resumes from its
		 * offsets: firing what is open now would write partial windows. */
		ev_info("stopping: the open windows stay in the last checkpoint");
		return 0;
	}
	if (stop && e->state_dir) {
		/* The windows stay open, saved for the restart. */
		size_t windows = ev_window_in_memory(e->win);
		if (ev_window_save(e->win, e->err, sizeof(e->err)) < 0)
			return EV_WINDOW_FAILED;
		ev_info("state saved in %s (%zu windows from memory): a restart with --state-dir "
			"%s continues",
			ev_state_dir(e->st), windows, ev_state_dir(e->st));
		/* what the held barriers acknowledge is in the saved state */
		return release_barriers(e, EV_WM_END);
	}
	if (stop) /* nowhere to keep state: what is open is written, as at the end of input */
		ev_info("stopping: firing the open windows (no --state-dir to keep them in)");
	ev_wm_end(e->wm);
	int r = ev_window_advance(e->win, EV_WM_END, e->err, sizeof(e->err));
	if (r == 0)
		r = release_barriers(e, EV_WM_END);
	return r < 0 ? r : ev_window_clear(e->win, e->err, sizeof(e->err));
}

static int run(struct evwindow *e)
{
	ev_stage_line l;
	int r = 0, next;
	while ((next = ev_stage_next(e->stage, &l)) > 0) {
		e->lineno = l.lineno;
		if (l.cls == EV_LINE_CONTROL) {
			r = control(e, l.data, l.len, l.control);
		} else if (l.flags & EV_LINE_TOO_LONG) {
			/* not parsed: a line of any length costs no more than its bytes */
			char msg[96];
			snprintf(msg, sizeof(msg),
				 "line of %zu bytes is over the limit of %" PRIu64 " bytes", l.len,
				 e->max_line);
			r = dead_letter(e, "too_long", "", msg, l.data, l.len) < 0
				    ? EV_WINDOW_OUTPUT
				    : 0;
		} else {
			r = record(e, l.data, l.len);
		}
		if (r < 0)
			break;
	}
	finish_upload(e);
	if (next < 0)
		return EV_EXIT_FAILURE; /* reported: an input error, an impossible control line */
	if (r == 0)
		r = finish(e);
	if (r == 0 && ev_stage_drain(e->stage) < 0)
		return EV_EXIT_FAILURE;
	if (r == EV_WINDOW_FAILED)
		ev_error("%s", e->err);
	else if (r < 0)
		ev_stage_write_failed(e->stage, "output");
	if (r == 0)
		ev_info("%" PRIu64 " record(s): %" PRIu64 " row(s) written, %" PRIu64
			" late, %" PRIu64 " dead-lettered; %" PRIu64 " blank line(s) skipped",
			ev_stage_records(e->stage), ev_counter_value(e->m_out),
			ev_counter_value(e->series.late), e->dead, ev_stage_blank(e->stage));
	return r < 0 ? EV_EXIT_FAILURE : EV_EXIT_OK;
}

/* The stage over the inputs, its control lines after the checkpoint restored. */
static ev_stage *new_stage(struct evwindow *e)
{
	ev_stage_opts so = {.files = e->files,
			    .nfiles = e->nfiles,
			    .max_line = (size_t)e->max_line,
			    .ck = &e->ck,
			    .restored_id = e->restored_id,
			    .metrics = e->metrics};
	return ev_stage_new(&so);
}

static int opt_key(const ev_option *o, char *arg, char *err, size_t errlen)
{
	struct evwindow *e = o->value;
	char *save = NULL;
	for (char *k = strtok_r(arg, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
		if (e->nkeys == MAX_KEYS) {
			snprintf(err, errlen, "at most %d key fields", MAX_KEYS);
			return -1;
		}
		e->keys[e->nkeys++] = k;
	}
	return 0;
}

static int opt_meta_field(const ev_option *o, char *arg, char *err, size_t errlen)
{
	(void)err, (void)errlen;
	*(const char **)o->value = *arg ? arg : NULL;
	return 0;
}

static int opt_state_memory(const ev_option *o, char *arg, char *err, size_t errlen)
{
	uint64_t *bytes = o->value;
	if (ev_opt_size(arg, bytes) < 0 || *bytes < (1u << 20)) {
		snprintf(err, errlen, "invalid --state-memory '%s' (at least 1MiB)", arg);
		return -1;
	}
	return 0;
}

static int parse_args(struct evwindow *e, int argc, char **argv)
{
	char err[512];
	const char *agg = "count";
	ev_window_opts *w = &e->wo;
	const ev_option options[] = {
		EV_OPT_TEXT(
			"usage: evwindow (--tumble D | --slide D --every E | --session-gap G) [options] [FILE...]\n"
			"\n"
			"Aggregates the records of the FILEs, in order (- for stdin; none: stdin), in event-time\n"
			"windows, and writes one row per window and key when the watermark passes the window's\n"
			"end: {\"window_start\",\"window_end\",<keys>,\n"
			"<aggregates>,\"version\"}, the version being the records folded into the window. Times\n"
			"are UTC \"YYYY-MM-DD hh:mm:ss\", rounded down to the second; when a window size, --every\n"
			"or --session-gap is not whole seconds (or with --msec-bounds), \"window_start_msec\" and\n"
			"\"window_end_msec\" follow the bounds with their milliseconds (0-999) past those seconds\n"
			"(ADR 0017). A record that arrives after its window fired but within the allowed lateness\n"
			"updates it, and the row is written again with a higher version; later records go to the\n"
			"late output. Records that cannot be windowed are dead letters there too (missing_ts,\n"
			"bad_ts, missing_key, bad_value, future, parse, too_long). Control lines are forwarded,\n"
			"after the rows they release. A revoke line (kin -G) hands the partitions' windows to\n"
			"the checkpoint store as of its offset and drops them without firing (without a store\n"
			"they stay); an assign line at that offset loads them back (ADR 0025). A barrier that\n"
			"lists partitions saves each one's state at its offset the same way with this stage's\n"
			"part of the checkpoint, so that a copy that takes a partition over finds it there.\n"
			"The end of input fires every open window, unless the input\n"
			"was only stopped ({\"__evpipe\":\"stop\"} from kin, or SIGTERM): then they are kept in\n"
			"the last checkpoint or saved to --state-dir (with neither, they are fired). With\n"
			"checkpoints, only {\"__evpipe\":\"end\"} ends the stream: an input that just stops keeps\n"
			"them too.\n"
			"Without checkpoints a barrier asks the sinks to acknowledge what preceded it (kin\n"
			"--commit-on-ack): it is held back until every window open when it came is final (the\n"
			"watermark past its end plus the lateness; sessions: the end of input, or a stop that\n"
			"saved them to --state-dir).\n"
			"\n"
			"Options:\n"),
		EV_OPT_STRING(0, "ts-field", "F", &e->ts_field,
			      "event time field: epoch ms or RFC 3339 (default ts)"),
		EV_OPT_CALLBACK(0, "key", "LIST", e, opt_key,
				"key fields, comma-separated (default: one key for all)"),
		EV_OPT_DURATION(0, "tumble", "D", &w->size_ms, 1000, 1, INT64_MAX,
				"tumbling windows of D (250ms, 5s, 1m, 1h)"),
		EV_OPT_SEE(0, "slide", "D --every E", "sliding windows of D starting every E"),
		EV_OPT_DURATION(0, "slide", "D", &w->size_ms, 1000, 1, INT64_MAX, NULL),
		EV_OPT_DURATION(0, "every", "E", &w->every_ms, 1000, 1, INT64_MAX, NULL),
		EV_OPT_DURATION(0, "session-gap", "G", &w->gap_ms, 1000, 1, INT64_MAX,
				"session windows per key: records at most G apart share one"),
		EV_OPT_FLAG(0, "msec-bounds", &w->msec_bounds, 1,
			    "rows carry window_start_msec and window_end_msec even when\n"
			    "the windows are whole seconds (sessions: exact bounds)"),
		EV_OPT_STRING(0, "agg", "LIST", &agg,
			      "count, sum:F, min:F, max:F, avg:F, uniq:F, first:F, last:F,\n"
			      "NAME=fn:F to rename (default count)"),
		EV_OPT_DURATION(0, "out-of-orderness", "D", &e->wmo.out_of_orderness_ms, 1000, 0,
				INT64_MAX, "watermark = max event time - D - 1 (default 0)"),
		EV_OPT_DURATION(0, "lateness", "D", &w->lateness_ms, 1000, 0, INT64_MAX,
				"allowed lateness after a window fired (default 0)"),
		EV_OPT_DURATION(0, "idle-timeout", "D", &e->wmo.idle_timeout_ms, 1000, 0, INT64_MAX,
				"a partition silent this long does not hold the watermark\n"
				"(default 0: never)"),
		EV_OPT_DURATION(0, "max-future", "D", &e->wmo.max_future_ms, 1000, 0, INT64_MAX,
				"a record this far ahead of its partition is a dead letter\n"
				"(default 0: no limit)"),
		EV_OPT_CALLBACK(0, "meta-field", "NAME", &e->meta_field, opt_meta_field,
				"provenance field of kin --meta-field: watermarks and window\n"
				"state per Kafka partition (default _src); a key must not\n"
				"span partitions: one that does is windowed in each apart,\n"
				"counted (evpipe_keys_cross_partition_total) and warned\n"
				"about once"),
		EV_OPT_FLAG(0, "keys-span-partitions", &w->keys_span_partitions, 1,
			    "one window state for all partitions, for input not keyed\n"
			    "by the aggregation key: right in one copy of the job, whose\n"
			    "state then cannot move to another copy"),
		EV_OPT_STRING(0, "late", "PATH|fd:N", &e->late_spec,
			      "late records and dead letters (default: reported on stderr)"),
		EV_OPT_STRING(0, "state-dir", "DIR", &e->state_dir,
			      "keep window state in a RocksDB store in DIR: on SIGTERM it is\n"
			      "saved there and a restart with the same DIR continues (default:\n"
			      "a private store, removed at exit)"),
		EV_OPT_SIZE(0, "max-line-bytes", "N", &e->max_line, 1, INT64_MAX,
			    "--max-line-bytes",
			    "longer lines are dead letters, too_long (default 1MiB)"),
		EV_OPT_CALLBACK(0, "state-memory", "SIZE", &e->state_memory, opt_state_memory,
				"memory for state: in-memory aggregation, RocksDB's buffers and\n"
				"cache; beyond it windows spill to RocksDB (default 128MiB)"),
		EV_OPTS_CKPT(&e->ck),
		EV_OPT_TEXT(
			"                           (on a barrier: a RocksDB checkpoint, then the barrier goes on;\n"
			"                           its new files and the part are written in the background,\n"
			"                           one checkpoint at a time: ADR 0023)\n"),
		EV_OPTS_PROGRESS(),
		EV_OPTS_COMMON(&e->common),
		EV_OPT_TEXT(
			"\n"
			"Exit status: 0 ok, 1 runtime failure (I/O, an impossible control line: ADR 0013),\n"
			"2 usage error.\n"),
		EV_OPT_END(),
	};
	int rc = ev_tool_parse(options, argc, argv);
	if (rc != 0)
		return rc;
	e->files = argv + optind;
	e->nfiles = (size_t)(argc - optind);
	snprintf(e->ts_path, sizeof(e->ts_path), "/%s", e->ts_field);
	if (!!w->size_ms + !!w->gap_ms != 1)
		return ev_tool_usage_error(
			"give one of --tumble D, --slide D --every E, --session-gap G");
	if (w->every_ms && (w->every_ms > w->size_ms || w->size_ms % w->every_ms))
		return ev_tool_usage_error("--every must divide --slide");
	/* Sub-second windows share their bounds' seconds: the rows need the milliseconds. */
	if (w->size_ms % 1000 || w->every_ms % 1000 || w->gap_ms % 1000)
		w->msec_bounds = 1;
	if (ev_agg_parse(agg, &e->aggs, &e->naggs, err, sizeof(err)) < 0)
		return ev_tool_usage_error("%s", err);
	w->ts_field = e->ts_field;
	w->keys = (const char *const *)e->keys;
	w->nkeys = e->nkeys;
	w->aggs = e->aggs;
	w->naggs = e->naggs;
	return 0;
}

static void metrics(struct evwindow *e)
{
	ev_metrics *m = e->metrics;
	static const char ck_size[] = "Bytes of the last checkpoint's part, by kind";
	static const double ck_bounds[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
	e->m_out = ev_tool_records_out(m);
	e->m_ck_duration = ev_metrics_histogram(
		m, "evpipe_checkpoint_stage_duration_seconds",
		"Time a stage takes for its part of a checkpoint (snapshot, upload, part)", NULL,
		ck_bounds, sizeof(ck_bounds) / sizeof(ck_bounds[0]));
	e->m_ck_sync = ev_metrics_histogram(
		m, "evpipe_checkpoint_stage_sync_seconds",
		"Time a stage holds a barrier for its part of a checkpoint (windows to RocksDB, "
		"RocksDB checkpoint)",
		NULL, ck_bounds, sizeof(ck_bounds) / sizeof(ck_bounds[0]));
	e->m_ck_async = ev_metrics_histogram(
		m, "evpipe_checkpoint_stage_async_seconds",
		"Time a stage's part of a checkpoint takes in the background, after the barrier "
		"went on (upload, part)",
		NULL, ck_bounds, sizeof(ck_bounds) / sizeof(ck_bounds[0]));
	e->m_ck_skipped = ev_metrics_counter(
		m, "evpipe_checkpoint_stage_skipped_total",
		"Barriers that got no part because the upload of an earlier checkpoint still ran",
		NULL);
	e->m_ck_full =
		ev_metrics_gauge(m, "evpipe_checkpoint_stage_size_bytes", ck_size, "kind=\"full\"");
	e->m_ck_incremental = ev_metrics_gauge(m, "evpipe_checkpoint_stage_size_bytes", ck_size,
					       "kind=\"incremental\"");
	e->m_ck_last =
		ev_metrics_gauge(m, "evpipe_checkpoint_stage_last_id",
				 "Id of the last checkpoint this stage wrote its part of", NULL);
	static const char handovers[] =
		"Partitions' window state handed over through the checkpoint "
		"store, by direction";
	static const char handover_bytes[] = "Bytes of window state handed over, by direction";
	e->m_saved =
		ev_metrics_counter(m, "evpipe_handovers_total", handovers, "direction=\"saved\"");
	e->m_loaded =
		ev_metrics_counter(m, "evpipe_handovers_total", handovers, "direction=\"loaded\"");
	e->m_bytes_saved = ev_metrics_counter(m, "evpipe_handover_bytes_total", handover_bytes,
					      "direction=\"saved\"");
	e->m_bytes_loaded = ev_metrics_counter(m, "evpipe_handover_bytes_total", handover_bytes,
					       "direction=\"loaded\"");
	e->m_owned = ev_metrics_gauge(m, "evpipe_window_partitions",
				      "Kafka partitions with window state in this copy", NULL);
	static const double pause_bounds[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
	e->m_pause = ev_metrics_histogram(
		m, "evpipe_handover_pause_seconds",
		"From an assign line to the first record of a partition whose state it loaded",
		NULL, pause_bounds, sizeof(pause_bounds) / sizeof(pause_bounds[0]));
	ev_ckpt_metrics(&e->ck, m);
	ev_window_series_register(&e->series, m);
	e->wo.series = &e->series;
}

/* The registry, kept reachable while an abandoned upload may still update it. */
static ev_metrics *kept_metrics;

int main(int argc, char **argv)
{
	struct evwindow e;
	char err[512];
	memset(&e, 0, sizeof(e));
	e.ts_field = "ts";
	e.meta_field = "_src";
	e.common.job = "evpipe";
	e.state_memory = 128u << 20;
	e.max_line = 1 << 20;

	ev_tool_init("evwindow");
	int rc = parse_args(&e, argc, argv);
	if (rc != 0) {
		ev_agg_specs_free(e.aggs, e.naggs);
		return rc < 0 ? ev_tool_finish(EV_EXIT_OK) : rc;
	}
	if (e.late_spec) {
		int fd = ev_sideout_open(e.late_spec, err, sizeof(err));
		if (fd < 0) {
			ev_error("--late: %s", err);
			return EV_EXIT_FAILURE;
		}
		e.late = ev_writer_new(fd, 64 * 1024);
	}
	e.metrics = ev_tool_metrics("evwindow", e.common.job, e.common.metrics_addr);
	if (!e.metrics)
		return EV_EXIT_FAILURE;
	metrics(&e);
	e.wo.wm = e.wm = ev_wm_new(&e.wmo);
	e.wo.row = put_row;
	e.wo.dead_letter = window_dead_letter;
	e.wo.spilling = spilling;
	e.wo.cross_partition = cross_partition;
	e.wo.arg = &e;
	ev_record_opts ro = {e.ts_field, e.wo.keys, e.nkeys, e.aggs, e.naggs, e.meta_field};
	e.reader = ev_record_reader_new(&ro);
	e.out = ev_writer_new(1, 64 * 1024);
	if (!e.wm || !e.reader || !e.out || (e.late_spec && !e.late)) {
		ev_error("out of memory");
		rc = EV_EXIT_FAILURE;
	} else if (open_state(&e) < 0) {
		rc = EV_EXIT_FAILURE;
	} else if (!(e.stage = new_stage(&e))) {
		ev_error("out of memory");
		rc = EV_EXIT_FAILURE;
	} else {
		/* A write to a closed pipe fails with EPIPE (the stage ignores SIGPIPE), so that
		 * the store is closed (a private directory removed) before evwindow dies of
		 * SIGPIPE as a filter does. */
		ev_stage_output(e.stage, e.out, "stdout");
		ev_stage_output(e.stage, e.late, "late");
		ev_tool_catch_signals();
		ev_tool_progress(e.metrics);
		rc = run(&e);
	}
	/* An upload still running (finish_upload gave up on it) updates the registry's series
	 * until the process ends: the registry is kept. */
	int uploading = ev_ckworker_free(e.worker);
	/* Every way out closes the store: a private directory is removed. */
	ev_window_free(e.win);
	if (e.st && ev_state_close(e.st, err, sizeof(err)) < 0) {
		ev_error("state store: %s", err);
		rc = EV_EXIT_FAILURE;
	}
	json_decref(e.restore_part);
	ev_ckpt_close(&e.ck);
	ev_writer_free(e.out);
	ev_writer_free(e.late);
	ev_wm_free(e.wm);
	ev_record_reader_free(e.reader);
	ev_buf_free(&e.scratch);
	for (size_t i = 0; i < e.nheld; i++)
		free(e.held[i].line);
	free(e.held);
	free(e.arriving);
	free(e.saved);
	ev_agg_specs_free(e.aggs, e.naggs);
	if (!uploading)
		ev_tool_metrics_free(e.metrics);
	else
		kept_metrics = e.metrics;
	return ev_stage_exit(e.stage, rc);
}
