/* SPDX-License-Identifier: Apache-2.0 */
/* kin_consume.c: kin -C: consume to stdout, commit offsets, coordinate checkpoints. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "kin.h"
#include "log.h"
#include "meta.h"
#include "registry.h"

/* Store the offsets of everything written so far; the group commits them. */
static int flush_and_store(struct kin *k)
{
	if (ev_writer_flush(k->out) < 0)
		return -1;
	ev_counter_set(k->m_blocked, ev_writer_blocked_ns(k->out));
	if (!k->group || k->coord || k->ack)
		return 0; /* with checkpoints, the group gets a checkpoint's offsets once complete;
			   * with --commit-on-ack, those the sinks acknowledged */
	rd_kafka_topic_partition_list_t *list = NULL;
	for (size_t i = 0; i < k->nparts; i++) {
		struct part *p = &k->parts[i];
		if (p->pending < 0)
			continue;
		if (!list)
			list = rd_kafka_topic_partition_list_new((int)k->nparts);
		rd_kafka_topic_partition_list_add(list, p->topic, p->partition)->offset =
			p->pending;
		p->pending = -1;
	}
	if (list) {
		rd_kafka_resp_err_t err = rd_kafka_offsets_store(k->rk, list);
		if (err)
			ev_warn("cannot store offsets: %s", rd_kafka_err2str(err));
		rd_kafka_topic_partition_list_destroy(list);
	}
	return 0;
}

/* With --restore, a partition starts where the checkpoint says. */
static void restore_offset(struct kin *k, struct part *p, rd_kafka_topic_partition_t *tp)
{
	const ev_ckpt_offset *o =
		ev_ckpt_offsets_get(&k->restore_offsets, tp->topic, tp->partition);
	if (!p || !o)
		return;
	tp->offset = p->written = o->offset;
	ev_info("%s [%d]: restored at offset %" PRId64, tp->topic, (int)tp->partition, tp->offset);
}

/* {"topic":{"partition":next offset}} of everything written so far, over the positions of
 * the partitions revoked from this kin and the restored checkpoint's offsets: a partition
 * not assigned (a group still rebalancing) keeps the position its state downstream
 * corresponds to. */
static json_t *written_offsets(struct kin *k)
{
	ev_ckpt_offsets all = EV_CKPT_OFFSETS_INIT;
	int rc = 0;
	for (size_t i = 0; i < k->restore_offsets.n && rc == 0; i++) {
		const ev_ckpt_offset *o = &k->restore_offsets.v[i];
		rc = ev_ckpt_offsets_set(&all, o->topic, o->partition, o->offset);
	}
	for (size_t i = 0; i < k->handed.n && rc == 0; i++) {
		const ev_ckpt_offset *o = &k->handed.v[i];
		rc = ev_ckpt_offsets_set(&all, o->topic, o->partition, o->offset);
	}
	for (size_t i = 0; i < k->nparts && rc == 0; i++) {
		const struct part *p = &k->parts[i];
		if (p->written >= 0)
			rc = ev_ckpt_offsets_set(&all, p->topic, p->partition, p->written);
	}
	json_t *j = rc == 0 ? ev_ckpt_offsets_json(&all) : NULL;
	ev_ckpt_offsets_free(&all);
	return j;
}

/* Whether topic's partition is assigned to this kin: only those of its offsets go to the
 * group. A partition revoked from it (or restored and not assigned) is another member's: its
 * position here, kept in the checkpoint for a restore, would move the group's committed offset
 * back under the copy that reads it now (ADR 0025, 5.2). */
static int owned(struct kin *k, const char *topic, int32_t partition)
{
	return kin_part_find(k, topic, partition, 0) != NULL;
}

/* A complete checkpoint's offsets to the group, of the partitions assigned here: what lag
 * monitoring reads, and where a run without --restore, or another copy, starts. */
static void commit_offsets(struct kin *k, const json_t *offsets)
{
	ev_ckpt_offsets o = EV_CKPT_OFFSETS_INIT;
	char why[256];
	if (!k->group)
		return;
	if (ev_ckpt_offsets_parse(offsets, &o, why, sizeof(why)) < 0) {
		ev_warn("cannot commit the checkpoint's offsets: %s", why);
		return;
	}
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(16);
	for (size_t i = 0; i < o.n; i++)
		if (owned(k, o.v[i].topic, o.v[i].partition))
			rd_kafka_topic_partition_list_add(list, o.v[i].topic, o.v[i].partition)
				->offset = o.v[i].offset;
	ev_ckpt_offsets_free(&o);
	if (list->cnt) {
		rd_kafka_resp_err_t err = rd_kafka_commit(k->rk, list, 1);
		if (err)
			ev_warn("cannot commit the checkpoint's offsets: %s",
				rd_kafka_err2str(err));
	}
	rd_kafka_topic_partition_list_destroy(list);
}

/* Write control line c after everything written so far. Returns 0, or -1 when the output
 * fails. */
static int write_control(struct kin *k, const ev_control *c)
{
	ev_buf line = EV_BUF_INIT;
	int rc = ev_control_format(&line, c) < 0 ||
				 ev_writer_line(k->out, line.data, line.len) < 0 ||
				 ev_writer_flush(k->out) < 0
			 ? -1
			 : 0;
	ev_buf_free(&line);
	if (rc < 0 && errno != EPIPE && !k->stopped_by_checkpoints)
		ev_error("cannot write standard output: %s", strerror(errno));
	return rc;
}

/* The partitions assigned here with their positions, for a checkpoint's barrier line: each
 * stateful stage writes every partition's state at that offset with its part, so that a copy
 * that takes a partition over after this one died finds it where the group's committed offset
 * (this checkpoint's, once complete) resumes it (ADR 0025, 5.2). Returns 0, or -1 when the
 * output fails. */
static int write_barrier_parts(struct kin *k, int64_t id, int64_t now)
{
	ev_control_part *parts = calloc(k->nparts + 1, sizeof(*parts));
	ev_buf line = EV_BUF_INIT;
	size_t n = 0;
	for (size_t i = 0; parts && i < k->nparts; i++) {
		const struct part *p = &k->parts[i];
		int64_t at = p->written >= 0 ? p->written : p->start;
		if (at >= 0)
			parts[n++] = (ev_control_part){p->topic, p->partition, at};
	}
	int rc = !parts || ev_control_format_barrier(&line, id, now, parts, n) < 0 ||
				 ev_writer_line(k->out, line.data, line.len) < 0 ||
				 ev_writer_flush(k->out) < 0
			 ? -1
			 : 0;
	free(parts);
	ev_buf_free(&line);
	if (rc < 0 && errno != EPIPE && !k->stopped_by_checkpoints)
		ev_error("cannot write standard output: %s", strerror(errno));
	return rc;
}

/* Inject barrier id after everything written so far. */
static int write_barrier(struct kin *k, int64_t id, int64_t now)
{
	ev_control c = {EV_CTL_BARRIER, id, now};
	if (k->coord && k->group)
		return write_barrier_parts(k, id, now);
	return write_control(k, &c);
}

/* Announce the checkpoint completed since the last call downstream: its committed line, for
 * the sinks that commit transactions with it (ADR 0021). Written between records, never
 * from the blocked-output callback. Returns 0, or -1 when the output fails. */
static int write_committed(struct kin *k)
{
	if (!k->committed_due)
		return 0;
	ev_control c = {EV_CTL_COMMITTED, k->committed_due, 0};
	k->committed_due = 0;
	return write_control(k, &c);
}

/* Finish the checkpoint in flight, or fail it (or one that could not begin) past its timeout.
 * Returns 0, or -1 (reported) to stop the job. */
static int checkpoint_poll(struct kin *k, int64_t now)
{
	char err[1024];
	json_t *offsets;
	int64_t id = ev_coord_inflight(k->coord);
	int r = ev_coord_poll(k->coord, now, &offsets, err, sizeof(err));
	if (r == EV_COORD_COMPLETED) {
		k->committed_due = id;
		commit_offsets(k, offsets);
		json_decref(offsets);
	} else if (r == EV_COORD_FAILED) {
		ev_error("%s", err);
		k->stopped_by_checkpoints = 1;
		return -1;
	}
	return 0;
}

/* While a write to stdout waits for the next stage: the blocked time and the coordinator's
 * clock go on (ev_writer_set_tick). */
int kin_output_blocked(void *arg)
{
	struct kin *k = arg;
	ev_counter_set(k->m_blocked, ev_writer_blocked_ns(k->out));
	return k->coord ? checkpoint_poll(k, ev_wall_ms()) : 0;
}

/* The coordinator's turn: finish the checkpoint in flight, begin the next when due (its
 * barrier follows every record written so far). Returns 0, or -1 to stop the job. */
static int checkpoint_tick(struct kin *k)
{
	char err[1024];
	if (!k->coord)
		return 0;
	int64_t now = ev_wall_ms();
	if (checkpoint_poll(k, now) < 0)
		return -1;
	if (write_committed(k) < 0)
		return -1;
	if (!ev_coord_due(k->coord, now))
		return 0;
	int64_t id = ev_coord_begin(k->coord, written_offsets(k), now, err, sizeof(err));
	if (id < 0) {
		ev_warn("cannot begin a checkpoint: %s", err);
		return 0;
	}
	return write_barrier(k, id, now);
}

/* At the end (-e, -c, a signal): a checkpoint complete by now is announced before the end or
 * stop line. One in flight is not waited for: a stage downstream may be gone (the job is
 * being stopped because one failed), and the sinks abort what it would commit, which a
 * restart writes again. Returns 0, or -1 when the output fails. */
static int checkpoint_settle(struct kin *k)
{
	if (checkpoint_poll(k, ev_wall_ms()) < 0)
		return 0;
	return write_committed(k);
}

/* ---- Hand-over on revoke (ADR 0025, section 5.1) ---------------------------------------- */

/* How long a hand-over may take: --checkpoint-timeout, and less than the group's
 * max.poll.interval.ms (the rebalance timeout: a member not back from its revoke callback by
 * then is expelled, and its partitions move on without waiting). */
static int64_t handover_budget_ms(const struct kin *k)
{
	char val[32];
	size_t len = sizeof(val);
	int64_t budget = k->co.timeout_ms, poll = 300000;
	if (rd_kafka_conf_get(rd_kafka_conf(k->rk), "max.poll.interval.ms", val, &len) ==
	    RD_KAFKA_CONF_OK)
		poll = strtoll(val, NULL, 10);
	poll -= poll / 10; /* a margin for the commit and the rejoin */
	return poll > 0 && poll < budget ? poll : budget;
}

/* A checkpoint after everything written so far (the revoke line), complete: the one in
 * flight, if any, first, then one begun now. Its manifest is the hand-over's commit point:
 * every expected stage has written its part after the revoke line (evwindow its hand-over
 * objects before, the sinks everything before it durable, dlqsink's transaction logged), and
 * its committed line follows. Returns 0, or -1 (reported) when it did not complete within
 * budget_ms. */
static int handover_checkpoint(struct kin *k, int64_t budget_ms)
{
	char err[1024];
	int64_t t0 = ev_wall_ms(), id = 0;
	for (;;) {
		int64_t now = ev_wall_ms();
		if (checkpoint_poll(k, now) < 0)
			return -1; /* too many failed: reported */
		int done = id && k->committed_due == id;
		if (write_committed(k) < 0)
			return -1;
		if (done)
			return 0;
		if (!ev_coord_inflight(k->coord)) {
			if (id) {
				ev_error("the hand-over's checkpoint %" PRId64 " was abandoned",
					 id);
				return -1;
			}
			id = ev_coord_begin(k->coord, written_offsets(k), now, err, sizeof(err));
			if (id < 0) {
				ev_error("cannot begin the hand-over's checkpoint: %s", err);
				return -1;
			}
			if (write_barrier(k, id, now) < 0)
				return -1;
			continue;
		}
		if (now - t0 >= budget_ms) {
			ev_error("the hand-over's checkpoint %" PRId64
				 " is not complete after %" PRId64 " ms",
				 id ? id : ev_coord_inflight(k->coord), now - t0);
			return -1;
		}
		ev_sleep_ms(20);
	}
}

/* The n partitions revoked from this kin, their revoke line written: they are let go only
 * once their state is durable, a checkpoint after the line complete, and then their revoke
 * offsets are committed to the group, where their next owner resumes them and loads their
 * state. Without checkpoints there is nothing to wait for. Returns 0 (a commit the group
 * refuses, its generation moved on, is warned about: the state is durable), or -1 when the
 * checkpoint did not complete (reported, counted): nothing committed, and kin stops (the
 * partitions resume elsewhere at the last offsets committed, with the state of the checkpoint
 * of those). */
static int hand_over(struct kin *k, const ev_control_part *parts, size_t n)
{
	if (!k->coord)
		return 0;
	uint64_t t0 = ev_mono_ns();
	int rc = handover_checkpoint(k, handover_budget_ms(k));
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)n);
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (parts[i].offset >= 0)
			rd_kafka_topic_partition_list_add(list, parts[i].topic, parts[i].partition)
				->offset = parts[i].offset;
	rd_kafka_resp_err_t err = rc == 0 && list->cnt ? rd_kafka_commit(k->rk, list, 0) : 0;
	rd_kafka_topic_partition_list_destroy(list);
	double secs = (double)(ev_mono_ns() - t0) / 1e9;
	if (err) {
		/* The state is durable (the checkpoint completed) but the group moved to a new
		 * generation meanwhile (another member joined during the wait): the next owner
		 * resumes at the offsets of the last checkpoint that committed them, with the state
		 * written there, and reads what follows again. Stopping would change nothing. */
		ev_warn("cannot commit the offsets of the %zu partition(s) handed over: %s: their "
			"next owner resumes them at the last offsets committed, with the state there",
			n, rd_kafka_err2str(err));
		ev_histogram_observe(k->m_handover_wait, secs);
		return 0;
	}
	if (rc < 0) {
		ev_counter_inc(k->m_handover_timeouts);
		ev_error("%zu revoked partition(s) not handed over: stopping (their next owner "
			 "resumes them at the last offsets committed)",
			 n);
		return -1;
	}
	ev_histogram_observe(k->m_handover_wait, secs);
	ev_info("%zu partition(s) handed over in %.3f s", n, secs);
	return 0;
}

/* ---- Commits on the sinks' acknowledgements (--commit-on-ack, no checkpoints) ----------- */

/* Inject a barrier after what was written so far, and remember the offsets it follows. */
static int ack_mark(struct kin *k, int64_t now)
{
	json_t *offsets = written_offsets(k);
	k->mark_ms = now;
	if (json_equal(offsets, k->mark_offsets)) {
		json_decref(offsets); /* nothing new since the last barrier */
		return 0;
	}
	int64_t id = ++k->mark_id;
	json_decref(k->mark_offsets);
	k->mark_offsets = json_incref(offsets);
	json_array_append_new(k->marks,
			      json_pack("{s:I,s:o}", "id", (json_int_t)id, "offsets", offsets));
	return write_barrier(k, id, now);
}

/* Read the acknowledgements (waiting up to timeout_ms) and commit the offsets of the newest
 * barrier that every expected stage acknowledged. Returns EV_ACK_OPEN, EV_ACK_CLOSED, or -1. */
static int ack_commit(struct kin *k, int timeout_ms)
{
	char err[256];
	int64_t done;
	int st = ev_ack_poll(k->ack, timeout_ms, &done, err, sizeof(err));
	if (st < 0) {
		ev_error("%s", err);
		return -1;
	}
	size_t n = 0;
	while (n < json_array_size(k->marks) &&
	       json_integer_value(json_object_get(json_array_get(k->marks, n), "id")) <= done)
		n++;
	if (n) {
		json_t *m = json_array_get(k->marks, n - 1);
		commit_offsets(k, json_object_get(m, "offsets"));
		ev_debug("barrier %" JSON_INTEGER_FORMAT " acknowledged: its offsets committed",
			 json_integer_value(json_object_get(m, "id")));
		while (n--)
			json_array_remove(k->marks, 0);
	}
	return st;
}

static int ack_tick(struct kin *k)
{
	if (!k->ack)
		return 0;
	int64_t now = ev_wall_ms();
	if (now - k->mark_ms >= k->co.interval_ms && ack_mark(k, now) < 0)
		return -1;
	return ack_commit(k, 0) < 0 ? -1 : 0;
}

/* The output is complete (the last barrier and the end or stop line written): close it, so
 * that every stage downstream finishes, and commit as the acknowledgements of the last
 * barrier come back, for at most --checkpoint-timeout. */
static void ack_finish(struct kin *k)
{
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 1);
		close(null);
	}
	int64_t deadline = ev_wall_ms() + k->co.timeout_ms;
	while (json_array_size(k->marks) && ev_wall_ms() < deadline)
		if (ack_commit(k, 100) != EV_ACK_OPEN)
			break;
	if (json_array_size(k->marks))
		ev_warn("%zu barrier(s) not acknowledged: the offsets after the last acknowledged "
			"one are not committed, and a restart reads those records again",
			json_array_size(k->marks));
	if (ev_ack_malformed(k->ack))
		ev_warn("%" PRIu64 " malformed acknowledgement line(s) ignored",
			ev_ack_malformed(k->ack));
}

/* Where a partition assigned now resumes: where this kin's output left it when it was
 * revoked from it (its state downstream is as of there: kept, or handed over and loaded
 * again), else the restored checkpoint's offset; -1 (RD_KAFKA_OFFSET_INVALID: the group's
 * committed offset) when neither knows. */
static int64_t resume_offset(const struct kin *k, const char *topic, int32_t partition)
{
	const ev_ckpt_offset *o = ev_ckpt_offsets_get(&k->handed, topic, partition);
	if (!o)
		o = ev_ckpt_offsets_get(&k->restore_offsets, topic, partition);
	if (!o)
		o = ev_ckpt_offsets_get(&k->committed, topic, partition);
	return o ? o->offset : -1;
}

/* The group's committed offset of each partition of o, for pruning the job's hand-over
 * objects (ev_ckpt_committed_fn). */
int kin_committed_offsets(ev_ckpt_offsets *o, void *arg)
{
	struct kin *k = arg;
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)o->n + 1);
	for (size_t i = 0; i < o->n; i++)
		rd_kafka_topic_partition_list_add(list, o->v[i].topic, o->v[i].partition);
	rd_kafka_resp_err_t err = rd_kafka_committed(k->rk, list, (int)k->kafka.timeout_ms);
	for (int i = 0; !err && i < list->cnt; i++) {
		const rd_kafka_topic_partition_t *tp = &list->elems[i];
		if (!tp->err && tp->offset >= 0)
			ev_ckpt_offsets_set(o, tp->topic, tp->partition, tp->offset);
	}
	rd_kafka_topic_partition_list_destroy(list);
	return err ? -1 : 0;
}

/* Write an assign or revoke line of the n partitions after everything written so far
 * (ADR 0025), when kin feeds a pipeline (checkpoints or --meta-field, as for the end and stop
 * lines): plain output stays payloads only. On failure the consume loop stops (out_failed). */
static void write_assignment(struct kin *k, enum ev_control_type type, const ev_control_part *parts,
			     size_t n)
{
	ev_buf line = EV_BUF_INIT;
	if (k->settled || !n || !(k->coord || k->meta_field))
		return;
	if (ev_control_format_parts(&line, type, parts, n) < 0 ||
	    ev_writer_line(k->out, line.data, line.len) < 0 || ev_writer_flush(k->out) < 0)
		k->out_failed = 1;
	ev_buf_free(&line);
}

/* Forget partition p (revoked). */
static void part_forget(struct kin *k, struct part *p)
{
	size_t i = (size_t)(p - k->parts);
	free(p->topic);
	k->parts[i] = k->parts[--k->nparts];
	k->last_part = 0;
}

/* The group's committed offsets that the partitions assigned now resume at, in one request:
 * - A partition revoked from this kin that the group committed past where kin's output left
 *   it was read by another member meanwhile: it resumes at the committed offset, where that
 *   member left it, not where this kin did (which would read its records twice). When the
 *   offsets cannot be read, such a partition resumes where this kin left it (warned).
 * - With checkpoints, a partition assigned with no position here (never read here, nor in the
 *   restored checkpoint) resumes at the group's committed offset, which kin looks up to say it
 *   in the assign line: there the copy that committed it (the last complete checkpoint of
 *   another copy, maybe one killed since) left the partition's state (ADR 0025, 5.2). When the
 *   offsets cannot be read, this copy stops rather than start without the state: the
 *   partitions go to another copy (or to this one restarted). */
static void at_committed(struct kin *k, const rd_kafka_topic_partition_list_t *tps)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(tps->cnt + 1);
	int unknown = 0;
	for (int i = 0; i < tps->cnt; i++) {
		const char *topic = tps->elems[i].topic;
		int32_t partition = tps->elems[i].partition;
		int handed = ev_ckpt_offsets_get(&k->handed, topic, partition) != NULL;
		if (handed || (k->coord && resume_offset(k, topic, partition) < 0)) {
			rd_kafka_topic_partition_list_add(list, topic, partition);
			unknown += !handed;
		}
	}
	rd_kafka_resp_err_t err =
		list->cnt ? rd_kafka_committed(k->rk, list, (int)k->kafka.timeout_ms) : 0;
	if (err && unknown) {
		ev_error("cannot read the group's committed offsets of the partitions assigned: %s",
			 rd_kafka_err2str(err));
		k->fatal = 1;
	} else if (err) {
		ev_warn("cannot read the group's committed offsets: %s: partitions assigned again "
			"resume where this consumer left them",
			rd_kafka_err2str(err));
	}
	for (int i = 0; !err && i < list->cnt; i++) {
		rd_kafka_topic_partition_t *tp = &list->elems[i];
		const ev_ckpt_offset *o = ev_ckpt_offsets_get(&k->handed, tp->topic, tp->partition);
		if (o) {
			if (tp->err || tp->offset < 0 || tp->offset <= o->offset)
				continue;
			ev_info("%s [%d]: committed at offset %" PRId64
				" by another member since it "
				"was revoked here at %" PRId64 ": resumes there",
				tp->topic, (int)tp->partition, tp->offset, o->offset);
			if (ev_ckpt_offsets_set(&k->handed, tp->topic, tp->partition, tp->offset) <
			    0)
				k->fatal = 1;
			continue;
		}
		if (tp->err && tp->err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
			ev_error("%s [%d]: cannot read the group's committed offset: %s", tp->topic,
				 (int)tp->partition, rd_kafka_err2str(tp->err));
			k->fatal = 1;
		}
		if (tp->err || tp->offset < 0)
			continue; /* never committed: from the beginning, no state anywhere */
		if (ev_ckpt_offsets_set(&k->committed, tp->topic, tp->partition, tp->offset) < 0)
			k->fatal = 1;
	}
	rd_kafka_topic_partition_list_destroy(list);
}

static void assigned(struct kin *k, rd_kafka_topic_partition_list_t *tps, int cooperative)
{
	ev_control_part *parts = calloc((size_t)tps->cnt + 1, sizeof(*parts));
	if (tps->cnt || !cooperative) /* a cooperative rebalance that moved nothing here */
		ev_info("assigned %d partition(s)", tps->cnt);
	if (!cooperative)
		kin_parts_clear(k);
	at_committed(k, tps);
	for (int i = 0; i < tps->cnt; i++) {
		rd_kafka_topic_partition_t *tp = &tps->elems[i];
		struct part *p = kin_part_find(k, tp->topic, tp->partition, 1);
		int64_t at = resume_offset(k, tp->topic, tp->partition);
		if (p && at >= 0) {
			tp->offset = p->written = p->start = at;
			ev_info("%s [%d]: resumes at offset %" PRId64, tp->topic,
				(int)tp->partition, at);
		}
		if (parts)
			parts[i] = (ev_control_part){(char *)tp->topic, tp->partition, at};
	}
	/* Before the first record of any of them. */
	if (parts)
		write_assignment(k, EV_CTL_ASSIGN, parts, (size_t)tps->cnt);
	free(parts);
	rd_kafka_error_t *e = NULL;
	if (cooperative)
		e = rd_kafka_incremental_assign(k->rk, tps);
	else
		rd_kafka_assign(k->rk, tps);
	if (e) {
		ev_error("cannot assign partitions: %s", rd_kafka_error_string(e));
		rd_kafka_error_destroy(e);
		k->fatal = 1;
	}
}

static void revoked(struct kin *k, rd_kafka_topic_partition_list_t *tps, int cooperative)
{
	ev_control_part *parts = calloc((size_t)tps->cnt + 1, sizeof(*parts));
	size_t n = 0;
	ev_info("revoked %d partition(s)%s", tps->cnt,
		rd_kafka_assignment_lost(k->rk) ? " (lost: the group went on without this member)"
						: "");
	if (k->ack) {
		/* Offsets of partitions no longer ours are not committed: the new owner reads
		 * from the last acknowledged ones. */
		json_array_clear(k->marks);
		json_decref(k->mark_offsets);
		k->mark_offsets = NULL;
	}
	/* Commit what was written before giving the partitions away. */
	if (flush_and_store(k) == 0)
		rd_kafka_commit(k->rk, NULL, 0);
	for (int i = 0; i < tps->cnt; i++) {
		rd_kafka_topic_partition_t *tp = &tps->elems[i];
		struct part *p = kin_part_find(k, tp->topic, tp->partition, 0);
		if (!p)
			continue;
		int64_t at = p->written >= 0 ? p->written : p->start;
		if (at >= 0 && ev_ckpt_offsets_set(&k->handed, tp->topic, tp->partition, at) < 0) {
			ev_error("out of memory");
			k->fatal = 1;
		}
		if (parts)
			parts[n++] = (ev_control_part){(char *)tp->topic, tp->partition, at};
		if (cooperative)
			part_forget(k, p);
	}
	/* After the last record of them written. */
	if (parts)
		write_assignment(k, EV_CTL_REVOKE, parts, n);
	if (!cooperative)
		kin_parts_clear(k);
	/* Let them go once their state is durable (not when lost: others read them already). */
	if (parts && n && !k->settled && !k->out_failed && !rd_kafka_assignment_lost(k->rk) &&
	    hand_over(k, parts, n) < 0)
		k->fatal = 1;
	free(parts);
	rd_kafka_error_t *e = NULL;
	if (cooperative)
		e = rd_kafka_incremental_unassign(k->rk, tps);
	else
		rd_kafka_assign(k->rk, NULL);
	if (e) {
		ev_error("cannot unassign partitions: %s", rd_kafka_error_string(e));
		rd_kafka_error_destroy(e);
		k->fatal = 1;
	}
}

/* The group's assignment changed: in the eager protocol every partition is revoked, then
 * the new set assigned; in the cooperative one (cooperative-sticky, the default) only the
 * partitions that move. Either way the change goes downstream in-band, in order with the
 * records, and a partition assigned again resumes where this kin's output left it. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct kin *k = opaque;
	/* NULL once the consumer has left the group (the last revoke of a close): the protocol
	 * it had then */
	const char *protocol = rd_kafka_rebalance_protocol(rk);
	if (protocol)
		k->cooperative = strcmp(protocol, "COOPERATIVE") == 0;
	int cooperative = k->cooperative;
	ev_counter_inc(k->m_rebalances);
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
		assigned(k, parts, cooperative);
	else
		revoked(k, parts, cooperative);
	ev_gauge_set(k->m_owned, (double)k->nparts);
}

/* Assign partitions directly (no group): every partition of every topic, or -p's. */
static int assign_partitions(struct kin *k)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(16);
	int rc = -1;
	for (int t = 0; t < k->ntopics; t++) {
		rd_kafka_topic_t *rkt = rd_kafka_topic_new(k->rk, k->topics[t], NULL);
		const struct rd_kafka_metadata *md = NULL;
		if (kin_probe_brokers(k, &md, rkt) < 0) {
			rd_kafka_topic_destroy(rkt);
			goto out;
		}
		rd_kafka_topic_destroy(rkt);
		const struct rd_kafka_metadata_topic *mt = md->topic_cnt ? &md->topics[0] : NULL;
		if (!mt || mt->err) {
			ev_error("topic '%s': %s", k->topics[t],
				 rd_kafka_err2str(mt ? mt->err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
			rd_kafka_metadata_destroy(md);
			goto out;
		}
		int found = 0;
		for (int i = 0; i < mt->partition_cnt; i++) {
			int32_t id = mt->partitions[i].id;
			if (k->partition != RD_KAFKA_PARTITION_UA && id != k->partition)
				continue;
			found = 1;
			rd_kafka_topic_partition_t *tp =
				rd_kafka_topic_partition_list_add(list, k->topics[t], id);
			switch (k->start) {
			case START_DEFAULT:
			case START_BEGINNING: tp->offset = RD_KAFKA_OFFSET_BEGINNING; break;
			case START_END: tp->offset = RD_KAFKA_OFFSET_END; break;
			case START_STORED: tp->offset = RD_KAFKA_OFFSET_STORED; break;
			case START_ABS: tp->offset = k->start_value; break;
			case START_TAIL: tp->offset = RD_KAFKA_OFFSET_TAIL(k->start_value); break;
			case START_TIME: tp->offset = k->start_value; break;
			}
			struct part *p = kin_part_find(k, k->topics[t], id, 1);
			if (!p) {
				ev_error("out of memory");
				rd_kafka_metadata_destroy(md);
				goto out;
			}
			restore_offset(k, p, tp);
		}
		rd_kafka_metadata_destroy(md);
		if (!found) {
			ev_error("topic '%s' has no partition %d", k->topics[t], (int)k->partition);
			goto out;
		}
	}
	if (k->start == START_TIME) {
		rd_kafka_resp_err_t err =
			rd_kafka_offsets_for_times(k->rk, list, (int)k->kafka.timeout_ms);
		if (err) {
			ev_error("cannot look up offsets for time %" PRId64 ": %s", k->start_value,
				 rd_kafka_err2str(err));
			goto out;
		}
		for (int i = 0; i < list->cnt; i++)
			if (list->elems[i].offset < 0) /* no message that late: start at the end */
				list->elems[i].offset = RD_KAFKA_OFFSET_END;
	}
	rd_kafka_resp_err_t err = rd_kafka_assign(k->rk, list);
	if (err) {
		ev_error("cannot assign partitions: %s", rd_kafka_err2str(err));
		goto out;
	}
	rc = 0;
out:
	rd_kafka_topic_partition_list_destroy(list);
	return rc;
}

/* The first partition of the restored checkpoint, of a topic this kin consumes, that is not
 * assigned to this consumer, as "topic [N]" in buf; 0 when every one is. (A checkpoint of
 * another pipeline restored with --restore-mismatch allow may name other topics.) */
static int restored_unassigned(const struct kin *k, char *buf, size_t buflen)
{
	for (size_t r = 0; r < k->restore_offsets.n; r++) {
		const ev_ckpt_offset *o = &k->restore_offsets.v[r];
		int t = 0;
		while (t < k->ntopics && strcmp(k->topics[t], o->topic) != 0)
			t++;
		if (t == k->ntopics)
			continue;
		size_t i = 0;
		while (i < k->nparts && !(k->parts[i].partition == o->partition &&
					  strcmp(k->parts[i].topic, o->topic) == 0))
			i++;
		if (i == k->nparts) {
			snprintf(buf, buflen, "%s [%" PRId32 "]", o->topic, o->partition);
			return 1;
		}
	}
	return 0;
}

/* Every assigned partition is at its end (-e) or stop (e@), and so is every partition of the
 * restored checkpoint (with -G): the state restored with a partition (evwindow's open windows)
 * is final only once that partition was read to its end here. A member of the group that died
 * holds its partitions until its session times out; the end waits for the rebalance. */
static int all_done(struct kin *k)
{
	if (k->nparts == 0)
		return 0;
	for (size_t i = 0; i < k->nparts; i++)
		if (!k->parts[i].done && !(k->exit_eof && k->parts[i].eof))
			return 0;
	char which[300];
	if (k->group && restored_unassigned(k, which, sizeof(which))) {
		if (!k->told_unassigned)
			ev_info("%s of the restored checkpoint is not assigned to this consumer "
				"(another member of group '%s', maybe one that died and has not timed "
				"out yet): waiting for it before the end",
				which, k->group);
		k->told_unassigned = 1;
		return 0;
	}
	return 1;
}

static int write_message(struct kin *k, const rd_kafka_message_t *msg, ev_buf *line)
{
	if (k->fmt) {
		ev_kafka_record r;
		ev_kafka_record_of(&r, msg, ev_msgfmt_wants_headers(k->fmt));
		ev_buf_reset(line);
		if (ev_msgfmt_write(k->fmt, &r, line) < 0)
			return -1;
		return ev_writer_write(k->out, line->data, line->len);
	}
	if (k->json) {
		ev_buf_reset(line);
		if (ev_kafka_envelope_format(line, msg) < 0)
			return -1;
		if (k->delim) /* -D */
			return ev_writer_write(k->out, line->data, line->len) < 0
				       ? -1
				       : ev_writer_write(k->out, k->delim_bytes.data,
							 k->delim_bytes.len);
		return ev_writer_line(k->out, line->data, line->len);
	}
	/* A registry frame (byte 0, 4-byte schema id) with --meta-field: the id goes into the
	 * provenance and the frame off the payload, before the payload's safety is judged (the
	 * id's bytes may hold a newline). Without it the message is a rejected record
	 * ("schema_id"), the id in its provenance too. */
	const char *payload = msg->payload;
	size_t plen = msg->len;
	int32_t sid = 0;
	int framed = ev_registry_unframe(payload, plen, &sid);
	if (framed && k->meta_field) {
		payload += EV_REGISTRY_FRAME_LEN;
		plen -= EV_REGISTRY_FRAME_LEN;
	}
	/* A payload never becomes a control line or two lines (ADR 0013). */
	const char *unsafe = ev_control_payload_unsafe(payload, plen);
	if (k->meta_field || unsafe) {
		ev_meta m = {rd_kafka_topic_name(msg->rkt),
			     msg->partition,
			     msg->offset,
			     rd_kafka_message_timestamp(msg, NULL),
			     unsafe,
			     framed,
			     sid};
		ev_buf_reset(line);
		if (unsafe) {
			ev_counter_inc(strcmp(unsafe, "reserved") == 0    ? k->m_rejected_reserved
				       : strcmp(unsafe, "schema_id") == 0 ? k->m_rejected_schema_id
									  : k->m_rejected_newline);
			ev_debug("%s [%d] at offset %" PRId64 ": %s: written as a rejected record",
				 m.topic, (int)m.partition, m.offset, unsafe);
		}
		if (ev_meta_insert_cached(line, &k->meta_head,
					  unsafe ? EV_META_REJECTED : k->meta_field, &m, payload,
					  plen) < 0)
			return -1;
		return ev_writer_line(k->out, line->data, line->len);
	}
	return ev_writer_line(k->out, msg->payload ? msg->payload : "", msg->len);
}

/* What consume_one decided. */
enum { CONSUMED, FINISHED, FAILED, WRITE_FAILED };
#define CONSUME_BATCH 1024

/* A batch's messages and bytes in and out, added to the metrics once per batch (not four
 * atomic additions per message). */
struct tally {
	uint64_t in, bytes_in, out, bytes_out;
};

static void tally_publish(struct kin *k, struct tally *t)
{
	ev_counter_add(k->m_in, t->in);
	ev_counter_add(k->m_bytes_in, t->bytes_in);
	ev_counter_add(k->m_out, t->out);
	ev_counter_add(k->m_bytes_out, t->bytes_out);
	memset(t, 0, sizeof(*t));
}

/* Handle one message or event of the consumer queue (the caller destroys it). */
static int consume_one(struct kin *k, const rd_kafka_message_t *msg, ev_buf *line, uint64_t *count,
		       struct tally *t)
{
	if (msg->err) {
		if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			struct part *p =
				kin_part_find(k, rd_kafka_topic_name(msg->rkt), msg->partition, 0);
			if (p)
				p->eof = 1;
			return all_done(k) ? FINISHED : CONSUMED;
		}
		ev_error("%s%s%s", msg->rkt ? rd_kafka_topic_name(msg->rkt) : "",
			 msg->rkt ? ": " : "", rd_kafka_message_errstr(msg));
		int fatal = msg->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
			    msg->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
			    msg->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
			    msg->err == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED;
		return fatal && !k->keep_going ? FAILED : CONSUMED;
	}
	struct part *p = kin_part_find(k, rd_kafka_topic_name(msg->rkt), msg->partition, 0);
	if (!p || msg->offset < p->written) {
		/* Fetched before its partition was revoked (another consumer reads it now), or
		 * before it was assigned again at a later offset: written already, or not ours. */
		ev_counter_inc(k->m_stale);
		return CONSUMED;
	}
	p->eof = 0;
	if (k->end_ts >= 0 && rd_kafka_message_timestamp(msg, NULL) >= k->end_ts) {
		if (!p->done) {
			p->done = 1;
			rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
			rd_kafka_topic_partition_list_add(one, p->topic, p->partition);
			rd_kafka_pause_partitions(k->rk, one);
			rd_kafka_topic_partition_list_destroy(one);
		}
		return all_done(k) ? FINISHED : CONSUMED;
	}
	t->in++;
	t->bytes_in += msg->len;
	if (write_message(k, msg, line) < 0 || (k->unbuffered && ev_writer_flush(k->out) < 0))
		return WRITE_FAILED;
	t->out++;
	t->bytes_out += msg->len;
	p->pending = p->written = msg->offset + 1;
	(*count)++;
	return k->max_count > 0 && *count >= (uint64_t)k->max_count ? FINISHED : CONSUMED;
}

/* Up to max messages into batch, the first waited for up to timeout_ms, the others those
 * already there. One at a time rather than rd_kafka_consume_batch_queue: librdkafka 2.0's
 * batch API skips offsets of a partition paused and resumed while a batch is collected (fixed
 * in 2.1), and librdkafka pauses the assignment while the rebalance callback runs, so a
 * partition that did not move lost the messages fetched around a rebalance (ADR 0025). */
static ssize_t consume_some(rd_kafka_t *rk, rd_kafka_message_t **batch, size_t max, int timeout_ms)
{
	size_t n = 0;
	rd_kafka_message_t *m;
	while (n < max && (m = rd_kafka_consumer_poll(rk, n ? 0 : timeout_ms)))
		batch[n++] = m;
	return (ssize_t)n;
}

int kin_consume(struct kin *k)
{
	int rc = EV_EXIT_OK;
	uint64_t count = 0;
	uint64_t last_flush = ev_mono_ns();
	ev_buf line = EV_BUF_INIT;

	if (k->group) {
		rd_kafka_conf_t *conf = k->kafka.conf;
		if (kin_conf_set(conf, "group.id", k->group) < 0 ||
		    kin_conf_set(conf, "enable.auto.offset.store", "false") < 0 ||
		    kin_conf_set(conf, "auto.offset.reset",
				 k->start == START_END ? "latest" : "earliest") < 0)
			return EV_EXIT_FAILURE;
		rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
		/* Partitions that do not move keep flowing during a rebalance; -X
		 * partition.assignment.strategy=range (or roundrobin) is the eager protocol. */
		char why[256];
		if (ev_kafka_opts_default(&k->kafka, "partition.assignment.strategy",
					  "cooperative-sticky", why, sizeof(why)) < 0) {
			ev_error("%s", why);
			return EV_EXIT_FAILURE;
		}
	} else {
		char gid[64];
		snprintf(gid, sizeof(gid), "kin-%ld", (long)getpid());
		if (kin_conf_set(k->kafka.conf, "group.id", gid) < 0 ||
		    kin_conf_set(k->kafka.conf, "enable.auto.commit", "false") < 0)
			return EV_EXIT_FAILURE;
	}
	/* librdkafka 2.0 stops fetching for a second once queued.min.messages are waiting (a
	 * later release made that fetch.queue.backoff.ms): a fast pipeline drains 100000 (the
	 * default) long before that second is over and then starves. Half a million (still at
	 * most queued.max.messages.kbytes of payload) outlasts the pause; the user's -X or -F
	 * value wins. */
	char msg[256];
	if (ev_kafka_opts_default(&k->kafka, "queued.min.messages", "500000", msg, sizeof(msg)) <
		    0 ||
	    ev_kafka_opts_default(&k->kafka, "fetch.wait.max.ms", "100", msg, sizeof(msg)) < 0) {
		ev_error("%s", msg);
		return EV_EXIT_FAILURE;
	}
	if ((k->exit_eof && kin_conf_set(k->kafka.conf, "enable.partition.eof", "true") < 0) ||
	    kin_make_client(k, RD_KAFKA_CONSUMER) < 0)
		return EV_EXIT_FAILURE;
	rd_kafka_poll_set_consumer(k->rk);
	if (kin_probe_brokers(k, NULL, NULL) < 0)
		return EV_EXIT_FAILURE;

	if (k->group) {
		rd_kafka_topic_partition_list_t *subs =
			rd_kafka_topic_partition_list_new(k->ntopics);
		for (int i = 0; i < k->ntopics; i++)
			rd_kafka_topic_partition_list_add(subs, k->topics[i],
							  RD_KAFKA_PARTITION_UA);
		rd_kafka_resp_err_t err = rd_kafka_subscribe(k->rk, subs);
		rd_kafka_topic_partition_list_destroy(subs);
		if (err) {
			ev_error("cannot subscribe: %s", rd_kafka_err2str(err));
			return EV_EXIT_FAILURE;
		}
	} else if (assign_partitions(k) < 0) {
		return EV_EXIT_FAILURE;
	}

	rd_kafka_message_t *batch[CONSUME_BATCH];
	int act = CONSUMED;
	while (act == CONSUMED && !ev_tool_stop_requested() && !k->fatal) {
		ssize_t n = consume_some(k->rk, batch, CONSUME_BATCH, 100);
		if (checkpoint_tick(k) < 0 || ack_tick(k) < 0) {
			act = FAILED;
			break;
		}
		if (n <= 0) {
			if (k->out_failed || flush_and_store(k) < 0)
				act = WRITE_FAILED;
			last_flush = ev_mono_ns();
			continue;
		}
		struct tally t = {0, 0, 0, 0};
		for (ssize_t i = 0; i < n; i++) {
			if (act == CONSUMED)
				act = consume_one(k, batch[i], &line, &count, &t);
			rd_kafka_message_destroy(batch[i]);
		}
		tally_publish(k, &t);
		if (k->out_failed)
			act = WRITE_FAILED;
		if (act == CONSUMED && ev_mono_ns() - last_flush > 100000000u) {
			if (flush_and_store(k) < 0)
				act = WRITE_FAILED;
			last_flush = ev_mono_ns();
		}
	}
	if (act == WRITE_FAILED)
		goto write_error;
	if (act == FAILED)
		rc = EV_EXIT_FAILURE;
	int settled = act == FINISHED || (ev_tool_stop_requested() && act == CONSUMED);
	/* Leaving the group revokes every partition: the stream ends or stops here, and no
	 * assignment line follows that. */
	k->settled = 1;
	if (settled && k->ack && ack_mark(k, ev_wall_ms()) < 0)
		goto write_error; /* the last barrier: after every record written */
	if (settled && k->coord && checkpoint_settle(k) < 0)
		goto write_error;
	if (settled && (k->coord || k->meta_field)) {
		/* Finished (-e, -c), or only stopped: say which downstream, so that windows are
		 * fired at the end of a stream and not when it is merely suspended. */
		ev_control stop = {act == FINISHED ? EV_CTL_END : EV_CTL_STOP, 0, 0};
		ev_buf_reset(&line);
		if (ev_control_format(&line, &stop) < 0 ||
		    ev_writer_line(k->out, line.data, line.len) < 0)
			goto write_error;
	}
	if (flush_and_store(k) < 0)
		goto write_error;
	if (settled && k->ack)
		ack_finish(k);
	if (k->fatal)
		rc = EV_EXIT_FAILURE;
	if (k->group) {
		rd_kafka_resp_err_t err = rd_kafka_commit(k->rk, NULL, 0);
		if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
			ev_warn("cannot commit offsets: %s", rd_kafka_err2str(err));
	}
	/* Leave the group while the output still exists: the revoke callback flushes it. */
	rd_kafka_consumer_close(k->rk);
	ev_buf_free(&line);
	ev_meta_head_free(&k->meta_head);
	ev_info("%" PRIu64 " message(s) consumed, %" PRIu64 " written", ev_counter_value(k->m_in),
		ev_counter_value(k->m_out));
	return rc;
write_error:
	if (errno != EPIPE && !k->stopped_by_checkpoints)
		ev_error("cannot write standard output: %s", strerror(errno));
	ev_buf_free(&line);
	ev_meta_head_free(&k->meta_head);
	return EV_EXIT_FAILURE;
}

int kin_format_setup(struct kin *k, char *err, size_t errlen)
{
	ev_buf implicit = EV_BUF_INIT;
	const char *fmt = k->format;
	if (!fmt) {
		/* kcat's: [offset DELIM] [key DELIM] payload, then -D's delimiter */
		if (k->print_offset)
			ev_buf_printf(&implicit, "%%o%s", k->key_delim);
		if (k->key_delim)
			ev_buf_printf(&implicit, "%%k%s", k->key_delim);
		ev_buf_printf(&implicit, "%%s%s", k->delim ? k->delim : "\\n");
		fmt = ev_buf_cstr(&implicit);
	}
	k->fmt = fmt ? ev_msgfmt_new(fmt, k->null_str ? "NULL" : NULL, err, errlen) : NULL;
	if (!fmt)
		snprintf(err, errlen, "out of memory");
	ev_buf_free(&implicit);
	return k->fmt ? 0 : -1;
}
