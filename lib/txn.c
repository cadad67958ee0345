/* SPDX-License-Identifier: Apache-2.0 */
/* txn.c: a sink's Kafka transactions, committed with the checkpoints. */
#include "txn.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "kafka.h"
#include "tool.h"

void ev_txn_id(ev_buf *b, const char *job, const char *stage, const char *topic)
{
	ev_buf_reset(b);
	ev_buf_printf(b, "evpipe.%s.%s.%s", job, stage, topic);
}

void ev_txn_marker_group(ev_buf *b, const char *txid)
{
	ev_buf_reset(b);
	ev_buf_printf(b, "evpipe-txn.%s", txid);
}

/* err from a transactional call: -1 with its message in err (freed). */
static int failed(rd_kafka_error_t *e, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s%s", what, rd_kafka_error_string(e),
		 rd_kafka_error_is_fatal(e) ? " (fatal)" : "");
	rd_kafka_error_destroy(e);
	return -1;
}

/* The time left to a call bounded by lim (ev_txn_limits). */
typedef struct deadline {
	const ev_txn_limits *lim;
	uint64_t end, stop_end; /* ev_mono_ns; stop_end 0 until a stop is requested */
} deadline;

static void deadline_start(deadline *t, const ev_txn_limits *lim)
{
	t->lim = lim;
	t->end = ev_mono_ns() + (uint64_t)lim->wait_ms * 1000000u;
	t->stop_end = 0;
}

/* The next slice to wait, in ms (at most max), or 0 when the time is up. */
static int deadline_slice(deadline *t, int max)
{
	uint64_t now = ev_mono_ns();
	if (!t->stop_end && ev_tool_stop_requested())
		t->stop_end = now + (uint64_t)t->lim->stop_ms * 1000000u;
	uint64_t end = t->stop_end && t->stop_end < t->end ? t->stop_end : t->end;
	if (now >= end)
		return 0;
	uint64_t ms = (end - now) / 1000000u;
	return ms > (uint64_t)max ? max : ms ? (int)ms : 1;
}

/* -1 with "what: ..." in err: the time of t is up. */
static int timed_out(const deadline *t, const char *what, char *err, size_t errlen)
{
	if (t->stop_end)
		snprintf(err, errlen,
			 "%s: a stop signal came, and the brokers did not answer within "
			 "%d ms after it",
			 what, t->lim->stop_ms);
	else
		snprintf(err, errlen, "%s: the brokers did not answer within %d ms", what,
			 t->lim->wait_ms);
	return -1;
}

/* A slice of a call that resumes where it was when called again after a timeout. */
#define SLICE_MS 500

/* Call a transactional call (a closure: fn(rk, arg, timeout)) in slices of at most slice_ms
 * until it succeeds, fails for good, or the time of lim is up. Returns 0, or -1 with "what:
 * ..." in err, or with *last, the error that is not retriable. */
static int bounded(rd_kafka_t *rk, rd_kafka_error_t *(*fn)(rd_kafka_t *, void *, int), void *arg,
		   int slice_ms, const ev_txn_limits *lim, const char *what, char *err,
		   size_t errlen, rd_kafka_error_t **last)
{
	deadline t;
	int ms;
	deadline_start(&t, lim);
	*last = NULL;
	while ((ms = deadline_slice(&t, slice_ms)) > 0) {
		rd_kafka_error_t *e = fn(rk, arg, ms);
		if (!e)
			return 0;
		if (!rd_kafka_error_is_retriable(e)) {
			*last = e;
			return -1;
		}
		rd_kafka_error_destroy(e);
	}
	return timed_out(&t, what, err, errlen);
}

static rd_kafka_error_t *call_init(rd_kafka_t *rk, void *arg, int ms)
{
	(void)arg;
	return rd_kafka_init_transactions(rk, ms);
}

static rd_kafka_error_t *call_commit(rd_kafka_t *rk, void *arg, int ms)
{
	(void)arg;
	return rd_kafka_commit_transaction(rk, ms);
}

static rd_kafka_error_t *call_abort(rd_kafka_t *rk, void *arg, int ms)
{
	(void)arg;
	return rd_kafka_abort_transaction(rk, ms);
}

struct marker {
	rd_kafka_topic_partition_list_t *offsets;
	rd_kafka_consumer_group_metadata_t *group;
};

static rd_kafka_error_t *call_send_offsets(rd_kafka_t *rk, void *arg, int ms)
{
	struct marker *m = arg;
	return rd_kafka_send_offsets_to_transaction(rk, m->offsets, m->group, ms);
}

int ev_txn_init(rd_kafka_t *rk, int64_t txn_timeout_ms, const ev_txn_limits *lim, char *err,
		size_t errlen)
{
	rd_kafka_error_t *e;
	/* Fencing waits for the broker to abort what the last incarnation left open. */
	if (bounded(rk, call_init, NULL, SLICE_MS, lim, "cannot start transactions", err, errlen,
		    &e) == 0)
		return 0;
	if (!e)
		return -1;
	if (rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR_INVALID_TRANSACTION_TIMEOUT) {
		snprintf(err, errlen,
			 "the broker refuses a transaction timeout of %" PRId64
			 " ms: it is above its transaction.max.timeout.ms; give a smaller "
			 "--transaction-timeout (it must stay above the checkpoint interval plus "
			 "the checkpoint timeout)",
			 txn_timeout_ms);
		rd_kafka_error_destroy(e);
		return -1;
	}
	return failed(e, "cannot start transactions", err, errlen);
}

int ev_txn_begin(rd_kafka_t *rk, char *err, size_t errlen)
{
	rd_kafka_error_t *e = rd_kafka_begin_transaction(rk);
	return e ? failed(e, "cannot begin a transaction", err, errlen) : 0;
}

int ev_txn_flush(rd_kafka_t *rk, const ev_txn_limits *lim, char *err, size_t errlen)
{
	deadline t;
	int ms = 1;
	char fatal[256];
	deadline_start(&t, lim);
	while (rd_kafka_outq_len(rk) > 0 && (ms = deadline_slice(&t, SLICE_MS)) > 0) {
		if (rd_kafka_fatal_error(rk, fatal, sizeof(fatal))) {
			snprintf(err, errlen, "cannot deliver: %s (fatal)", fatal);
			return -1;
		}
		rd_kafka_flush(rk, ms);
	}
	if (rd_kafka_outq_len(rk) > 0)
		return timed_out(&t, "cannot deliver every message", err, errlen);
	rd_kafka_poll(rk, 0); /* the last delivery reports */
	return 0;
}

int ev_txn_commit(rd_kafka_t *rk, const char *marker_group, const char *topic, int64_t id,
		  const ev_txn_limits *lim, char *err, size_t errlen)
{
	rd_kafka_error_t *e = NULL;
	if (id > 0) {
		struct marker m = {rd_kafka_topic_partition_list_new(1),
				   rd_kafka_consumer_group_metadata_new(marker_group)};
		rd_kafka_topic_partition_list_add(m.offsets, topic, 0)->offset = id;
		/* Not resumable: a call again starts over, so each has the time a stop leaves. */
		int rc = bounded(rk, call_send_offsets, &m,
				 lim->stop_ms > SLICE_MS ? lim->stop_ms : SLICE_MS, lim,
				 "cannot add the checkpoint's marker to the transaction", err,
				 errlen, &e);
		rd_kafka_consumer_group_metadata_destroy(m.group);
		rd_kafka_topic_partition_list_destroy(m.offsets);
		if (rc < 0)
			return e ? failed(e,
					  "cannot add the checkpoint's marker to the transaction",
					  err, errlen)
				 : -1;
	}
	if (bounded(rk, call_commit, NULL, SLICE_MS, lim, "cannot commit the transaction", err,
		    errlen, &e) == 0)
		return 0;
	return e ? failed(e, "cannot commit the transaction", err, errlen) : -1;
}

int ev_txn_abort(rd_kafka_t *rk, const ev_txn_limits *lim, char *err, size_t errlen)
{
	rd_kafka_error_t *e;
	if (bounded(rk, call_abort, NULL, SLICE_MS, lim, "cannot abort the transaction", err,
		    errlen, &e) == 0)
		return 0;
	return e ? failed(e, "cannot abort the transaction", err, errlen) : -1;
}

int ev_txn_committed_id(rd_kafka_conf_t *conf, const char *marker_group, const char *topic,
			int timeout_ms, int64_t *id, char *err, size_t errlen)
{
	char e[512];
	*id = 0;
	if (ev_kafka_conf_set(conf, "group.id", marker_group, 0, err, errlen) < 0 ||
	    ev_kafka_conf_set(conf, "isolation.level", "read_committed", 0, err, errlen) < 0 ||
	    ev_kafka_conf_set(conf, "enable.auto.commit", "false", 0, err, errlen) < 0) {
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof(e));
	if (!rk) {
		snprintf(err, errlen, "cannot create a Kafka consumer: %s", e);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, topic, 0);
	rd_kafka_resp_err_t r = rd_kafka_committed(rk, l, timeout_ms);
	if (!r)
		r = l->elems[0].err;
	if (!r && l->elems[0].offset > 0)
		*id = l->elems[0].offset;
	if (r)
		snprintf(err, errlen, "cannot read the committed checkpoint of '%s': %s",
			 marker_group, rd_kafka_err2str(r));
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_destroy(rk);
	return r ? -1 : 0;
}

int ev_txn_log_add(ev_buf *log, const char *key, size_t keylen, const char *payload, size_t len)
{
	if (memchr(payload, '\n', len))
		return -1;
	if (ev_buf_printf(log, "%zu ", keylen) < 0 || ev_buf_append(log, key, keylen) < 0 ||
	    ev_buf_append(log, payload, len) < 0 || ev_buf_putc(log, '\n') < 0)
		return -1;
	return 0;
}

int ev_txn_log_next(const ev_buf *log, size_t *pos, ev_txn_entry *e)
{
	size_t i = *pos, keylen = 0;
	if (i >= log->len)
		return 0;
	const char *s = log->data;
	size_t digits = 0;
	while (i < log->len && s[i] >= '0' && s[i] <= '9' && digits < 9) {
		keylen = keylen * 10 + (size_t)(s[i++] - '0');
		digits++;
	}
	if (!digits || i >= log->len || s[i] != ' ' || log->len - i - 1 < keylen)
		return -1;
	i++;
	const char *nl = memchr(s + i + keylen, '\n', log->len - i - keylen);
	if (!nl)
		return -1;
	e->key = s + i;
	e->keylen = keylen;
	e->payload = s + i + keylen;
	e->len = (size_t)(nl - e->payload);
	*pos = (size_t)(nl - s) + 1;
	return 1;
}

int64_t ev_txn_log_count(const ev_buf *log)
{
	size_t pos = 0;
	int64_t n = 0;
	ev_txn_entry e;
	int r;
	while ((r = ev_txn_log_next(log, &pos, &e)) > 0)
		n++;
	return r < 0 ? -1 : n;
}

/* One attempt of ev_txn_adopt with producer rk: 1 committed (*n records), 0 nothing to write,
 * -1 failed (err). */
static int adopt_once(rd_kafka_t *rk, const rd_kafka_conf_t *cons, const char *marker_group,
		      const char *topic, int64_t id, const ev_buf *log, int64_t txn_timeout_ms,
		      const ev_txn_limits *lim, int64_t *n, char *err, size_t errlen)
{
	int64_t marker = 0;
	if (ev_txn_init(rk, txn_timeout_ms, lim, err, errlen) < 0)
		return -1;
	if (!log)
		return 0;
	if (ev_txn_committed_id(rd_kafka_conf_dup(cons), marker_group, topic, lim->wait_ms, &marker,
				err, errlen) < 0)
		return -1;
	if (marker >= id)
		return 0;
	if (ev_txn_begin(rk, err, errlen) < 0)
		return -1;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	if (!rkt) {
		snprintf(err, errlen, "'%s': %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
		return -1;
	}
	size_t pos = 0;
	ev_txn_entry e;
	int r;
	rd_kafka_resp_err_t perr = 0;
	*n = 0;
	while (!perr && (r = ev_txn_log_next(log, &pos, &e)) > 0) {
		perr = ev_kafka_produce(rk, rkt, RD_KAFKA_PARTITION_UA, e.payload, e.len, e.key,
					e.keylen, 0, NULL, lim->stop_ms);
		*n += !perr;
	}
	rd_kafka_topic_destroy(rkt);
	if (perr) {
		snprintf(err, errlen, "cannot produce to '%s': %s", topic, rd_kafka_err2str(perr));
		return -1;
	}
	if (r < 0) {
		snprintf(err, errlen, "the transaction log is malformed at byte %zu", pos);
		return -1;
	}
	if (ev_txn_flush(rk, lim, err, errlen) < 0 ||
	    ev_txn_commit(rk, marker_group, topic, id, lim, err, errlen) < 0)
		return -1;
	return 1;
}

int64_t ev_txn_adopt(const rd_kafka_conf_t *prod, const rd_kafka_conf_t *cons,
		     const char *marker_group, const char *topic, int64_t id, const ev_buf *log,
		     int64_t txn_timeout_ms, const ev_txn_limits *lim, char *err, size_t errlen)
{
	int r = -1;
	int64_t n = 0;
	for (int attempt = 0; attempt < 3 && r < 0; attempt++) {
		char e[512];
		rd_kafka_conf_t *conf = rd_kafka_conf_dup(prod);
		/* No delivery report is waited for: the commit fails if a record did. */
		rd_kafka_conf_set_dr_msg_cb(conf, NULL);
		rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
		if (!rk) {
			snprintf(err, errlen, "cannot create a Kafka producer: %s", e);
			rd_kafka_conf_destroy(conf);
			return -1;
		}
		r = adopt_once(rk, cons, marker_group, topic, id, log, txn_timeout_ms, lim, &n, err,
			       errlen);
		rd_kafka_destroy(rk);
		if (ev_tool_stop_requested())
			break;
	}
	return r < 0 ? -1 : r ? n : 0;
}
