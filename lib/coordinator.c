/* SPDX-License-Identifier: Apache-2.0 */
/* coordinator.c: the checkpoint coordinator. */
#include "coordinator.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

struct ev_coord {
	ev_coord_opts o;
	int64_t next_id;
	int64_t inflight;    /* id, 0 when none */
	int64_t begun_ms;    /* when the barrier went out */
	int64_t polled_ms;   /* when the store was last listed */
	int64_t next_due_ms; /* when the next barrier may go */
	int failures;        /* consecutive */
	json_t *offsets;     /* of the checkpoint in flight */
	ev_histogram *m_duration, *m_alignment;
	ev_gauge *m_full, *m_incremental, *m_last;
	ev_counter *m_completed, *m_failed;
};

ev_coord *ev_coord_new(const ev_coord_opts *o, ev_metrics *m, char *err, size_t errlen)
{
	ev_ckpt_entry *e;
	size_t n;
	if (ev_ckpt_list(o->ck->store, ev_ckpt_where(o->ck), &e, &n, err, errlen) < 0)
		return NULL;
	ev_coord *c = calloc(1, sizeof(*c));
	if (!c) {
		ev_ckpt_entries_free(e, n);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->o = *o;
	c->next_id = n ? e[n - 1].id + 1 : 1;
	ev_ckpt_entries_free(e, n);
	c->next_due_ms = ev_wall_ms() + o->interval_ms;
	static const double bounds[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
	c->m_duration = ev_metrics_histogram(
		m, "evpipe_checkpoint_duration_seconds",
		"From the barrier's injection to the manifest (completed checkpoints)", NULL,
		bounds, sizeof(bounds) / sizeof(bounds[0]));
	c->m_alignment = ev_metrics_histogram(
		m, "evpipe_checkpoint_alignment_seconds",
		"From the barrier's injection to its arrival at the last stage (the pipeline's "
		"alignment delay)",
		NULL, bounds, sizeof(bounds) / sizeof(bounds[0]));
	c->m_full = ev_metrics_gauge(m, "evpipe_checkpoint_size_bytes",
				     "Bytes of the last completed checkpoint, by kind",
				     "kind=\"full\"");
	c->m_incremental = ev_metrics_gauge(m, "evpipe_checkpoint_size_bytes",
					    "Bytes of the last completed checkpoint, by kind",
					    "kind=\"incremental\"");
	c->m_last = ev_metrics_gauge(m, "evpipe_checkpoint_last_completed_id",
				     "Id of the last completed checkpoint", NULL);
	c->m_completed = ev_metrics_counter(m, "evpipe_checkpoints_total",
					    "Checkpoints, by outcome", "outcome=\"completed\"");
	c->m_failed = ev_metrics_counter(m, "evpipe_checkpoints_total", "Checkpoints, by outcome",
					 "outcome=\"failed\"");
	return c;
}

void ev_coord_free(ev_coord *c)
{
	if (!c)
		return;
	json_decref(c->offsets);
	free(c);
}

int ev_coord_due(const ev_coord *c, int64_t now_ms)
{
	return !c->inflight && now_ms >= c->next_due_ms;
}

int64_t ev_coord_inflight(const ev_coord *c)
{
	return c->inflight;
}

int64_t ev_coord_begin(ev_coord *c, json_t *offsets, int64_t now_ms, char *err, size_t errlen)
{
	int64_t id = c->next_id++;
	ev_ckpt_part p = {.duration_ms = -1, .injected_at = now_ms, .offsets = offsets};
	json_t *part = ev_ckpt_part_new(&p);
	json_decref(c->offsets);
	c->offsets = offsets;
	if (!part || ev_ckpt_put_part(c->o.ck, id, part, err, errlen) < 0) {
		if (!part)
			snprintf(err, errlen, "out of memory");
		/* A checkpoint that could not even begin failed too. */
		ev_counter_inc(c->m_failed);
		c->failures++;
		c->next_due_ms = now_ms + c->o.interval_ms;
		return -1;
	}
	c->inflight = id;
	c->begun_ms = now_ms;
	c->polled_ms = 0;
	return id;
}

/* The parts present, or -1. */
static int missing_parts(ev_coord *c, ev_ckpt_entry *e, const char **first_missing)
{
	int missing = 0;
	for (size_t i = 0; i < c->o.nexpect; i++) {
		int found = 0;
		for (size_t j = 0; e && j < e->parts && !found; j++)
			found = strcmp(e->stages[j], c->o.expect[i]) == 0;
		if (!found) {
			if (!missing)
				*first_missing = c->o.expect[i];
			missing++;
		}
	}
	return missing;
}

/* Write the manifest: the commit point. The parts are copied in, so that one object tells
 * everything about the checkpoint. */
static int complete(ev_coord *c, ev_ckpt_entry *e, int64_t now_ms, char *err, size_t errlen)
{
	json_t *parts = json_object(), *manifest;
	ev_buf key = EV_BUF_INIT;
	uint64_t full = 0, incremental = 0;
	int64_t arrived = c->begun_ms;
	int rc = 0;
	for (size_t j = 0; j < e->parts && rc == 0; j++) {
		int found;
		ev_ckpt_part_key(&key, ev_ckpt_where(c->o.ck), c->inflight, e->stages[j]);
		json_t *part =
			ev_ckpt_get_json(c->o.ck->store, ev_buf_cstr(&key), &found, err, errlen);
		if (!part) {
			rc = -1;
			break;
		}
		ev_ckpt_part p;
		ev_ckpt_part_read(part, &p);
		full += (uint64_t)p.bytes;
		incremental += (uint64_t)p.uploaded_bytes;
		/* When the barrier reached the stage: its part's time less its own work. */
		int64_t at = p.at - (p.duration_ms > 0 ? p.duration_ms : 0);
		if (at > arrived)
			arrived = at;
		json_object_set_new(parts, e->stages[j], part);
	}
	json_t *partitions = ev_ckpt_manifest_partitions(parts);
	ev_ckpt_manifest mf = {.job = c->o.ck->job,
			       .copy = c->o.ck->copy,
			       .partitions = partitions,
			       .id = c->inflight,
			       .started_at = c->begun_ms,
			       .completed_at = now_ms,
			       .duration_ms = now_ms - c->begun_ms,
			       .bytes = (int64_t)full,
			       .uploaded_bytes = (int64_t)incremental};
	manifest = ev_ckpt_manifest_new(&mf, parts, c->offsets);
	if (rc == 0 && !manifest) {
		snprintf(err, errlen, "out of memory");
		rc = -1;
	}
	if (rc == 0)
		rc = ev_ckpt_put_manifest(c->o.ck->store, ev_ckpt_where(c->o.ck), c->inflight,
					  manifest, err, errlen);
	json_decref(parts);
	json_decref(partitions);
	json_decref(manifest);
	ev_buf_free(&key);
	if (rc == 0) {
		ev_histogram_observe(c->m_duration, (double)(now_ms - c->begun_ms) / 1000);
		ev_histogram_observe(c->m_alignment, (double)(arrived - c->begun_ms) / 1000);
		ev_gauge_set(c->m_full, (double)full);
		ev_gauge_set(c->m_incremental, (double)incremental);
		ev_gauge_set(c->m_last, (double)c->inflight);
		ev_counter_inc(c->m_completed);
		ev_debug("checkpoint %" PRId64 " complete in %" PRId64 " ms: %" PRIu64
			 " bytes, %" PRIu64 " new",
			 c->inflight, now_ms - c->begun_ms, full, incremental);
	}
	return rc;
}

/* The job's hand-over objects that no copy can load any more go (ev_ckpt_prune_handovers). */
static void prune_handovers(ev_coord *c)
{
	char err[512];
	if (!c->o.committed)
		return;
	int n = ev_ckpt_prune_handovers(c->o.ck->store, c->o.ck->job, c->o.committed,
					c->o.committed_arg, err, sizeof(err));
	if (n < 0)
		ev_warn("cannot prune hand-over objects: %s", err);
	else if (n > 0)
		ev_debug("%d hand-over object(s) pruned", n);
}

static int too_many(const ev_coord *c, char *err, size_t errlen)
{
	snprintf(err, errlen,
		 "%d consecutive checkpoints failed (more than --tolerable-failures %d): stopping",
		 c->failures, c->o.tolerable);
	return EV_COORD_FAILED;
}

int ev_coord_poll(ev_coord *c, int64_t now_ms, json_t **offsets, char *err, size_t errlen)
{
	*offsets = NULL;
	if (!c->inflight && c->failures > c->o.tolerable)
		return too_many(c, err, errlen);
	if (!c->inflight && c->next_due_ms < now_ms - c->o.timeout_ms) {
		/* Due for longer than a checkpoint may take, and still not begun: the caller
		 * cannot inject the barrier (its output has been blocked all along). */
		ev_counter_inc(c->m_failed);
		c->failures++;
		snprintf(err, errlen,
			 "a checkpoint due %" PRId64 " ms ago was not begun: its barrier cannot be "
			 "written, the output is blocked (a stage downstream is stuck?)",
			 now_ms - c->next_due_ms);
		ev_warn("%s", err);
		c->next_due_ms = now_ms;
		return c->failures > c->o.tolerable ? too_many(c, err, errlen) : EV_COORD_ABANDONED;
	}
	if (!c->inflight)
		return EV_COORD_IDLE;
	if (now_ms - c->polled_ms < 100 && now_ms - c->begun_ms < c->o.timeout_ms)
		return EV_COORD_PENDING;
	c->polled_ms = now_ms;
	ev_ckpt_entry *e = NULL, *mine = NULL;
	size_t n = 0;
	const char *first_missing = NULL;
	char lerr[512] = "";
	int missing = -1;
	if (ev_ckpt_list(c->o.ck->store, ev_ckpt_where(c->o.ck), &e, &n, lerr, sizeof(lerr)) == 0) {
		for (size_t i = 0; i < n; i++)
			if (e[i].id == c->inflight)
				mine = &e[i];
		missing = missing_parts(c, mine, &first_missing);
	}
	int rc = EV_COORD_PENDING;
	if (missing == 0) {
		if (complete(c, mine, now_ms, lerr, sizeof(lerr)) == 0) {
			*offsets = json_incref(c->offsets);
			c->inflight = 0;
			c->failures = 0;
			c->next_due_ms = now_ms + c->o.interval_ms;
			if (ev_ckpt_prune(c->o.ck->store, ev_ckpt_where(c->o.ck), c->o.retain, lerr,
					  sizeof(lerr)) < 0)
				ev_warn("cannot prune old checkpoints: %s", lerr);
			prune_handovers(c);
			rc = EV_COORD_COMPLETED;
		} else {
			missing = -1;
		}
	}
	if (rc == EV_COORD_PENDING && now_ms - c->begun_ms >= c->o.timeout_ms) {
		ev_counter_inc(c->m_failed);
		c->failures++;
		if (missing > 0)
			snprintf(err, errlen,
				 "checkpoint %" PRId64 " abandoned after %" PRId64
				 " ms: %d part(s) missing (%s ...)",
				 c->inflight, now_ms - c->begun_ms, missing, first_missing);
		else
			snprintf(err, errlen, "checkpoint %" PRId64 " abandoned: %s", c->inflight,
				 *lerr ? lerr : "the store did not answer");
		ev_warn("%s", err);
		c->inflight = 0;
		c->next_due_ms = now_ms + c->o.interval_ms;
		rc = c->failures > c->o.tolerable ? too_many(c, err, errlen) : EV_COORD_ABANDONED;
	}
	ev_ckpt_entries_free(e, n);
	return rc;
}

json_t *ev_coord_restore_offsets(ev_ckpt *ck, int64_t id, char *err, size_t errlen)
{
	int found, legacy;
	json_t *m = ev_ckpt_get_manifest(ck->store, ev_ckpt_where(ck), id, &found, &legacy, err,
					 errlen);
	if (!m) {
		if (found == 0)
			snprintf(err, errlen, "checkpoint %" PRId64 " has no manifest", id);
		return NULL;
	}
	ev_ckpt_manifest mf;
	ev_ckpt_manifest_read(m, &mf);
	json_t *o = json_incref((json_t *)mf.offsets);
	json_decref(m);
	if (!json_is_object(o)) {
		json_decref(o);
		snprintf(err, errlen, "the manifest of checkpoint %" PRId64 " has no offsets", id);
		return NULL;
	}
	return o;
}
