/* SPDX-License-Identifier: Apache-2.0 */
/* dlqsink: write dead-letter envelopes to a Kafka topic or a file, and replay them. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ack.h"
#include "buf.h"
#include "checkpoint.h"
#include "claim.h"
#include "codec.h"
#include "control.h"
#include "deadletter.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "ndjson.h"
#include "opts.h"
#include "sha256.h"
#include "stage.h"
#include "timefmt.h"
#include "tool.h"
#include "txn.h"

struct dlqsink {
	ev_ckpt ck;
	int replay;
	ev_kafka_opts kafka;
	const char *topic;
	const char *file;
	ev_buf reasons; /* --reason as ",a,b," for matching; empty: every reason */
	int64_t since, until;
	const char *claim_url;
	const char *ack_spec;
	ev_ack_out *ack;
	ev_tool_common common;
	char **files; /* the inputs (none: stdin) */
	size_t nfiles;

	ev_stage *stage;
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	int fd; /* file mode */
	ev_writer *out;
	ev_kafka_delivery dl;
	ev_metrics *metrics;
	ev_counter *m_out, *m_bad, *m_delivery_errors;
	ev_counter *m_claimed, *m_lost;
	ev_store *claim_own;       /* --claim-store */
	ev_store *claims;          /* claim_own, else the checkpoint store, else NULL */
	ev_buf raw;                /* the record being claim-checked or restored */
	struct oversize *oversize; /* refused by the broker as too large: sent again as claims */
	size_t noversize, capoversize;
	uint64_t replayed, skipped, unrecoverable, written;
	ev_log_limit not_envelope; /* warnings of lines that are not envelopes */

	/* --delivery exactly-once (ADR 0021) */
	const char *delivery;
	int eos;
	int64_t txn_timeout_ms;
	ev_buf txid, marker;          /* transactional.id, the group of the committed marker */
	rd_kafka_conf_t *marker_conf; /* for the consumer that reads the marker at a restore */
	int in_txn;                   /* a transaction is open */
	uint64_t txn_began_ns;        /* when (ev_mono_ns) */
	int64_t prepared;             /* the checkpoint whose part logs the open transaction */
	ev_buf log;                   /* the records of the open transaction */
	ev_buf held;                  /* records after the prepared barrier: the next transaction */
	int64_t nlog, nheld;          /* the records in each */
	rd_kafka_conf_t *prod_conf;   /* the producer's configuration, to create it again */
	ev_txn_limits lim, init_lim;  /* the waits of transactional calls, and of a start's */
	int recreated;                /* producers recreated since the last commit */
	int discarding;               /* the producer is being destroyed: its reports are not */
	int64_t max_bytes;            /* the largest envelope the topic takes (framing included) */
	int relearn;                  /* the broker refused one below it: learn it again */
	int ended;                    /* an end control line came: the stream is finished */
	int64_t restored;             /* the checkpoint restored, its part */
	json_t *restored_part;
	int64_t barrier_id; /* the barrier being acted on, and when it came */
	uint64_t barrier_t0;
	json_t *barrier_parts; /* its partitions and offsets ([{topic, partition, offset}]) */
	json_t *adopting;      /* partitions assigned whose gone copies are not done (adopt) */
	uint64_t committed;    /* envelopes committed */
	ev_counter *m_txn_committed, *m_txn_aborted, *m_adopted, *m_adopted_records;
	ev_histogram *m_txn_commit;
	ev_gauge *m_txn_records;
};

/* A message the broker refused as too large, with its key (the reason). */
struct oversize {
	ev_buf payload;
	char *key;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	struct dlqsink *d = opaque;
	(void)rk;
	if (d->discarding)
		return;
	if (msg->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
		/* Larger than the topic's max.message.bytes: sent again as a claim check. */
		d->relearn = 1;
		if (d->noversize == d->capoversize) {
			size_t cap = d->capoversize ? 2 * d->capoversize : 8;
			struct oversize *o = realloc(d->oversize, cap * sizeof(*o));
			if (!o)
				goto failed;
			d->oversize = o;
			d->capoversize = cap;
		}
		struct oversize *o = &d->oversize[d->noversize];
		memset(o, 0, sizeof(*o));
		o->key = msg->key ? strndup(msg->key, msg->key_len) : strdup("unknown");
		if (!o->key || ev_buf_append(&o->payload, msg->payload, msg->len) < 0) {
			free(o->key);
			ev_buf_free(&o->payload);
			goto failed;
		}
		d->noversize++;
		return;
	}
failed:
	ev_kafka_delivery_note(&d->dl, msg);
	if (msg->err || !d->eos) /* in a transaction: counted out when it commits */
		ev_counter_inc(msg->err ? d->m_delivery_errors : d->m_out);
}

/* line as a claim check into out: its original bytes (the whole line when it is not an
 * envelope) to the claim store. Returns 0, or -1 when they could not be stored. */
static int claim(struct dlqsink *d, const char *line, size_t len, ev_buf *out)
{
	char err[1024];
	json_t *env = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
	if (!json_is_object(env) || !ev_claim_raw(env, &d->raw)) {
		json_decref(env);
		env = json_pack("{s:s}", "reason", "unknown");
		ev_buf_reset(&d->raw);
		if (!env || ev_buf_append(&d->raw, line, len) < 0) {
			json_decref(env);
			ev_error("out of memory");
			return -1;
		}
	}
	if (ev_claim_check(env, &d->raw, d->claims, d->common.job, err, sizeof(err)) < 0) {
		ev_error("a dead letter of %zu bytes is too large for '%s', and its claim check "
			 "could not be stored: %s",
			 len, d->topic, err);
		json_decref(env);
		return -1;
	}
	const char *sha = json_string_value(json_object_get(env, "raw_sha256"));
	if (d->claims) {
		ev_counter_inc(d->m_claimed);
		ev_info("a dead letter of %zu bytes is too large for '%s': its original bytes are "
			"in '%s'",
			len, d->topic, json_string_value(json_object_get(env, "raw_ref")));
	} else {
		ev_counter_inc(d->m_lost);
		ev_error("a dead letter of %zu bytes is too large for '%s' and there is no claim "
			 "store (--claim-store): its original bytes (%zu, sha256 %s) are lost",
			 len, d->topic, d->raw.len, sha);
	}
	char *s = json_dumps(env, JSON_COMPACT);
	json_decref(env);
	ev_buf_reset(out);
	int rc = s && ev_buf_puts(out, s) == 0 ? 0 : -1;
	free(s);
	if (rc < 0)
		ev_error("out of memory");
	return rc;
}

static void txn_gauge(struct dlqsink *d);

/* A record's framing in a record batch, at most: the batch's header (61 bytes) and the
 * record's own (length, attributes, deltas, key and value lengths, header count). */
#define RECORD_FRAMING 128

/* The envelope is larger than the topic takes. */
static int too_large(const struct dlqsink *d, size_t len, size_t keylen)
{
	return d->max_bytes > 0 && (int64_t)(len + keylen + RECORD_FRAMING) > d->max_bytes;
}

/* Produce one envelope; one too large for the topic (max_bytes) or for librdkafka's
 * message.max.bytes goes as a claim check, before it is produced: a refusal by the broker
 * would make the transaction abortable. In a transaction (exactly-once) it is begun first,
 * and the envelope as produced is logged. Returns 0, or -1 when it could not be queued. */
static int produce_envelope(struct dlqsink *d, const char *line, size_t len, const char *key,
			    size_t keylen)
{
	char msg[512];
	if (d->eos && !d->in_txn) {
		if (ev_txn_begin(d->rk, msg, sizeof(msg)) < 0) {
			ev_error("'%s': %s", d->topic, msg);
			return -1;
		}
		d->in_txn = 1;
		d->txn_began_ns = ev_mono_ns();
	}
	ev_buf small = EV_BUF_INIT;
	rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE;
	if (!too_large(d, len, keylen))
		err = ev_kafka_produce(d->rk, d->rkt, RD_KAFKA_PARTITION_UA, line, len, key, keylen,
				       0, NULL, (int)d->kafka.timeout_ms);
	if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
		if (claim(d, line, len, &small) < 0) {
			ev_buf_free(&small);
			return -1;
		}
		line = small.data;
		len = small.len;
		err = ev_kafka_produce(d->rk, d->rkt, RD_KAFKA_PARTITION_UA, line, len, key, keylen,
				       0, NULL, (int)d->kafka.timeout_ms);
	}
	rd_kafka_poll(d->rk, 0);
	if (!err && d->eos) {
		if (ev_txn_log_add(&d->log, key, keylen, line, len) < 0) {
			ev_error("out of memory");
			ev_buf_free(&small);
			return -1;
		}
		d->nlog++;
	}
	ev_buf_free(&small);
	if (err) {
		ev_error("cannot produce to '%s': %s", d->topic, rd_kafka_err2str(err));
		return -1;
	}
	txn_gauge(d);
	return 0;
}

/* Send again, as claim checks, the envelopes the broker refused as too large. */
static int resend_oversize(struct dlqsink *d)
{
	ev_buf small = EV_BUF_INIT;
	int rc = 0;
	size_t n = d->noversize;
	struct oversize *list = d->oversize;
	d->oversize = NULL;
	d->noversize = d->capoversize = 0;
	for (size_t i = 0; i < n; i++) {
		struct oversize *o = &list[i];
		if (rc == 0 && claim(d, o->payload.data, o->payload.len, &small) == 0) {
			rd_kafka_resp_err_t err =
				ev_kafka_produce(d->rk, d->rkt, RD_KAFKA_PARTITION_UA, small.data,
						 small.len, o->key, strlen(o->key), 0, NULL,
						 (int)d->kafka.timeout_ms);
			if (err) {
				ev_error("cannot produce to '%s': %s", d->topic,
					 rd_kafka_err2str(err));
				rc = -1;
			}
		} else {
			rc = -1;
		}
		free(o->key);
		ev_buf_free(&o->payload);
	}
	free(list);
	ev_buf_free(&small);
	return rc;
}

/* ---- Exactly-once: the transaction of each checkpoint (ADR 0021) ---------------------- */

/* Producers recreated between two commits before dlqsink gives up. */
#define RECREATE_MAX 3

static void txn_gauge(struct dlqsink *d)
{
	if (d->eos)
		ev_gauge_set(d->m_txn_records, (double)(d->nlog + d->nheld));
}

/* The buffer b, emptied: its content is the caller's. */
static ev_buf take_buf(ev_buf *b)
{
	ev_buf t = *b;
	memset(b, 0, sizeof(*b));
	return t;
}

/* Produce the records of a log (into the open transaction, begun when none is). Returns 0 or
 * -1. */
static int txn_produce_log(struct dlqsink *d, const ev_buf *log)
{
	size_t pos = 0;
	ev_txn_entry e;
	int r;
	while ((r = ev_txn_log_next(log, &pos, &e)) > 0)
		if (produce_envelope(d, e.payload, e.len, e.key, e.keylen) < 0)
			return -1;
	if (r < 0)
		ev_error("a transaction log is malformed at byte %zu", pos);
	return r;
}

/* Produce, in a new transaction, the records that waited after a barrier. */
static int txn_produce_held(struct dlqsink *d)
{
	ev_buf held = take_buf(&d->held);
	d->nheld = 0;
	int rc = txn_produce_log(d, &held);
	ev_buf_free(&held);
	return rc;
}

static void drop_oversize(struct dlqsink *d)
{
	for (size_t i = 0; i < d->noversize; i++) {
		free(d->oversize[i].key);
		ev_buf_free(&d->oversize[i].payload);
	}
	d->noversize = 0;
}

/* The producer with its topic, from the saved configuration. Returns 0 or -1 (said). */
static int producer_new(struct dlqsink *d)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_dup(d->prod_conf);
	d->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!d->rk) {
		ev_error("cannot create Kafka producer: %s", err);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	d->rkt = rd_kafka_topic_new(d->rk, d->topic, NULL);
	if (!d->rkt) {
		ev_error("'%s': %s", d->topic, rd_kafka_err2str(rd_kafka_last_error()));
		return -1;
	}
	return 0;
}

/* Destroy the producer; the reports of what it still held are not counted. */
static void producer_free(struct dlqsink *d)
{
	d->discarding = 1;
	if (d->rkt)
		rd_kafka_topic_destroy(d->rkt);
	if (d->rk)
		rd_kafka_destroy(d->rk);
	d->rkt = NULL;
	d->rk = NULL;
	d->discarding = 0;
}

/* After an abort: the reports of the envelopes it purged are served now, and not counted as
 * failures of the next transaction. */
static void discard_reports(struct dlqsink *d)
{
	d->discarding = 1;
	rd_kafka_poll(d->rk, 0);
	d->discarding = 0;
	drop_oversize(d);
	d->dl.failed = 0;
}

/* The largest envelope the topic takes, framing included: its max.message.bytes (the broker's
 * message.max.bytes for a topic not created yet), within the producer's message.max.bytes.
 * An envelope above it goes as a claim check before it is produced, so that a refusal by the
 * broker does not make the transaction abortable. When it cannot be read, the producer's
 * limit stands and the broker's refusal is what finds a larger envelope. Returns 0, or -1
 * when the topic's limit could not be read (said). */
static int learn_max_bytes(struct dlqsink *d)
{
	char err[512], val[32];
	size_t n = sizeof(val);
	int64_t topic;
	d->max_bytes = 1000000; /* librdkafka's default */
	if (rd_kafka_conf_get(d->prod_conf, "message.max.bytes", val, &n) == RD_KAFKA_CONF_OK)
		d->max_bytes = strtoll(val, NULL, 10);
	d->relearn = 0;
	if (ev_kafka_max_message_bytes(d->rk, d->topic, (int)d->kafka.timeout_ms, &topic, err,
				       sizeof(err)) < 0) {
		ev_warn("%s: envelopes too large for it are found when the broker refuses them",
			err);
		return -1;
	}
	if (topic < d->max_bytes)
		d->max_bytes = topic;
	ev_debug("'%s' takes envelopes of up to %" PRId64 " bytes with their framing", d->topic,
		 d->max_bytes);
	return 0;
}

/* This producer cannot go on (a fatal error, a failed transaction, an abort or a commit that
 * failed): a new one fences it and aborts its transaction (init_transactions), as a restart
 * does; the caller writes the transaction's records again. At most RECREATE_MAX times between
 * two commits. Returns 0, or -1 after saying why. */
static int txn_recreate(struct dlqsink *d, const char *why)
{
	char err[512];
	if (d->recreated >= RECREATE_MAX || ev_tool_stop_requested()) {
		ev_error("'%s': %s; %s", d->topic, why,
			 ev_tool_stop_requested()
				 ? "stopping on a signal (a restart fences this producer)"
				 : "the producer was recreated 3 times since the last commit: "
				   "giving up");
		return -1;
	}
	d->recreated++;
	ev_warn("'%s': %s: a new producer fences this one and aborts its transaction, whose "
		"dead letters are written again",
		d->topic, why);
	producer_free(d);
	d->in_txn = 0;
	d->dl.failed = 0;
	drop_oversize(d);
	if (producer_new(d) < 0)
		return -1;
	if (ev_txn_init(d->rk, d->txn_timeout_ms, &d->init_lim, err, sizeof(err)) < 0) {
		ev_error("'%s': %s", d->topic, err);
		return -1;
	}
	ev_counter_inc(d->m_txn_aborted);
	return 0;
}

/* The open transaction cannot commit (the broker refused envelopes as too large, deliveries
 * failed) or is renewed (healthy): it is aborted, by a new producer unless healthy, and its
 * log written again, the refused envelopes as claim checks. Returns 0 or -1. */
static int txn_redo(struct dlqsink *d, int healthy)
{
	char msg[512];
	ev_buf old = take_buf(&d->log), small = EV_BUF_INIT, relog = EV_BUF_INIT;
	size_t pos = 0;
	ev_txn_entry e;
	int r, rc = 0;
	uint64_t refused = d->noversize, failed = d->dl.failed;
	rd_kafka_resp_err_t why = d->dl.first_err;
	d->nlog = 0;
	/* The broker refuses a whole batch: of its envelopes, those that fit the limit learned
	 * again go as they are. */
	int learned = d->relearn && learn_max_bytes(d) == 0;
	while (rc == 0 && (r = ev_txn_log_next(&old, &pos, &e)) > 0) {
		int big = 0;
		for (size_t i = 0; i < d->noversize && !big; i++)
			big = d->oversize[i].payload.len == e.len &&
			      memcmp(d->oversize[i].payload.data, e.payload, e.len) == 0;
		big = big && (!learned || too_large(d, e.len, e.keylen));
		if (big && claim(d, e.payload, e.len, &small) < 0)
			rc = -1;
		else if (ev_txn_log_add(&relog, e.key, e.keylen, big ? small.data : e.payload,
					big ? small.len : e.len) < 0)
			rc = -1;
	}
	drop_oversize(d);
	d->dl.failed = 0; /* the aborted copies */
	if (rc == 0 && healthy) {
		if (ev_txn_abort(d->rk, &d->lim, msg, sizeof(msg)) == 0) {
			ev_counter_inc(d->m_txn_aborted);
			discard_reports(d);
			d->in_txn = 0;
		} else {
			rc = txn_recreate(d, msg);
		}
	} else if (rc == 0) {
		if (refused)
			snprintf(msg, sizeof(msg),
				 "the broker refused %" PRIu64 " dead letter(s) of the open "
				 "transaction as too large",
				 refused);
		else
			snprintf(msg, sizeof(msg),
				 "%" PRIu64 " dead letter(s) of the open transaction failed "
				 "delivery (%s)",
				 failed, rd_kafka_err2str(why));
		rc = txn_recreate(d, msg);
	}
	if (rc == 0)
		rc = txn_produce_log(d, &relog);
	ev_buf_free(&old);
	ev_buf_free(&relog);
	ev_buf_free(&small);
	return rc;
}

/* Every record of the open transaction acknowledged: a transaction that failed is written
 * again by a new producer (txn_redo). Returns 0, or -1 (said). */
static int txn_flush(struct dlqsink *d)
{
	char err[512];
	for (;;) {
		if (ev_txn_flush(d->rk, &d->lim, err, sizeof(err)) < 0) {
			if (!rd_kafka_fatal_error(d->rk, NULL, 0)) {
				ev_error("'%s': %s", d->topic, err);
				return -1;
			}
			if (!d->dl.failed)
				d->dl.failed = 1, d->dl.first_err = RD_KAFKA_RESP_ERR__FATAL;
		}
		if (!d->noversize && !d->dl.failed)
			return 0;
		if (txn_redo(d, 0) < 0)
			return -1;
	}
}

/* Barrier id: the pre-commit. The open transaction (with what waited since a checkpoint that
 * was abandoned) is flushed and its log written under the checkpoint; the part names it.
 * Returns 0, or -1 to stop (the part is then not written). */
static int txn_prepare(struct dlqsink *d, int64_t id, uint64_t t0)
{
	char err[512];
	if (d->prepared) {
		/* No committed line for the last barrier: that checkpoint was abandoned, and
		 * its transaction goes on to this one. */
		d->prepared = 0;
		if (txn_produce_held(d) < 0)
			return -1;
	}
	if (d->in_txn &&
	    ev_mono_ns() - d->txn_began_ns > (uint64_t)d->txn_timeout_ms * 1000000u / 2) {
		/* Checkpoints have failed for half the transaction timeout (a store outage): the
		 * transaction is renewed, aborted and written again from its log, before the
		 * broker aborts it and fences this producer. */
		ev_warn("'%s': no checkpoint completed for %" PRIu64 " s: the open transaction is "
			"written again in a new one",
			d->topic, (ev_mono_ns() - d->txn_began_ns) / 1000000000u);
		if (txn_redo(d, 1) < 0)
			return -1;
	}
	if (txn_flush(d) < 0)
		return -1;
	json_t *part = json_pack("{s:I}", "duration_ms", (json_int_t)0);
	if (d->log.len) {
		ev_buf key = EV_BUF_INIT, name = EV_BUF_INIT;
		char sha[65];
		ev_buf_printf(&name, "%s/transaction.log", d->ck.stage);
		ev_ckpt_key(&key, ev_ckpt_where(&d->ck), id, ev_buf_cstr(&name));
		ev_sha256_hex(d->log.data, d->log.len, sha);
		int rc = ev_store_put(d->ck.store, ev_buf_cstr(&key), d->log.data, d->log.len, err,
				      sizeof(err));
		if (rc == 0)
			json_object_set_new(part, "files",
					    json_pack("[{s:s, s:s, s:I, s:s}]", "name",
						      "transaction.log", "key", ev_buf_cstr(&key),
						      "size", (json_int_t)d->log.len, "sha256",
						      sha));
		json_object_set_new(part, "bytes", json_integer((json_int_t)d->log.len));
		json_object_set_new(part, "uploaded_bytes", json_integer((json_int_t)d->log.len));
		ev_buf_free(&key);
		ev_buf_free(&name);
		if (rc < 0) {
			json_decref(part);
			ev_ckpt_failed(&d->ck, id, err);
			return 0; /* no part: the checkpoint is abandoned, the transaction goes on */
		}
		d->prepared = id;
	}
	/* Which producer, and the partitions this copy read up to where (the barrier's): a copy
	 * that takes one of them over after this one died finishes the transaction (adopt). */
	json_t *owned = d->barrier_parts ? json_incref(d->barrier_parts) : json_array();
	json_object_set_new(part, "transaction",
			    json_pack("{s:s, s:I, s:o}", "id", ev_buf_cstr(&d->txid), "records",
				      (json_int_t)d->nlog, "partitions", owned));
	json_object_set_new(part, "duration_ms",
			    json_integer((json_int_t)((ev_mono_ns() - t0) / 1000000)));
	if (ev_ckpt_put_part(&d->ck, id, part, err, sizeof(err)) < 0)
		ev_ckpt_failed(&d->ck, id, err);
	return 0;
}

/* ev_stage_barrier's durable step with transactions: the pre-commit, which writes the part
 * itself. Returns 1, or -1. */
static int txn_barrier(void *arg)
{
	struct dlqsink *d = arg;
	return txn_prepare(d, d->barrier_id, d->barrier_t0) < 0 ? -1 : 1;
}

/* The checkpoint whose marker the topic holds (0: none), into *id. Returns 0 or -1 (said). */
static int txn_marker(struct dlqsink *d, int64_t *id)
{
	char err[1024];
	if (ev_txn_committed_id(rd_kafka_conf_dup(d->marker_conf), ev_buf_cstr(&d->marker),
				d->topic, 30000, id, err, sizeof(err)) < 0) {
		ev_error("%s", err);
		return -1;
	}
	return 0;
}

/* Commit the open transaction with the marker of checkpoint id. A commit that fails, or whose
 * outcome is not known, is resolved as a restart would: a new producer fences this one; when
 * the marker says id did not commit, the transaction's log is written again and committed.
 * Returns 0 or -1. */
static int txn_commit(struct dlqsink *d, int64_t id)
{
	char err[512];
	if (!d->in_txn)
		return 0;
	uint64_t t0 = ev_mono_ns();
	int64_t n = d->nlog, marker;
	for (;;) {
		if (txn_flush(d) < 0) /* it said why */
			return -1;
		if (!d->in_txn || ev_txn_commit(d->rk, ev_buf_cstr(&d->marker), d->topic, id,
						&d->lim, err, sizeof(err)) == 0)
			break;
		if (id <= 0) {
			/* No marker tells whether it committed. */
			ev_error("'%s': %s", d->topic, err);
			return -1;
		}
		if (txn_recreate(d, err) < 0 || txn_marker(d, &marker) < 0)
			return -1;
		if (marker >= id)
			break; /* it did commit */
		ev_buf log = take_buf(&d->log);
		d->nlog = 0;
		int rc = txn_produce_log(d, &log);
		ev_buf_free(&log);
		if (rc < 0)
			return -1;
	}
	ev_histogram_observe(d->m_txn_commit, (double)(ev_mono_ns() - t0) / 1e9);
	ev_counter_inc(d->m_txn_committed);
	ev_counter_add(d->m_out, (uint64_t)n);
	d->committed += (uint64_t)n;
	ev_debug("checkpoint %" PRId64 ": %" PRId64 " dead letter(s) committed to '%s'", id, n,
		 d->topic);
	d->in_txn = 0;
	d->recreated = 0;
	ev_buf_reset(&d->log);
	d->nlog = 0;
	txn_gauge(d);
	return 0;
}

/* The committed line of checkpoint id: its transaction commits, and the records that waited
 * begin the next one. */
static int txn_committed(struct dlqsink *d, int64_t id)
{
	if (!d->prepared || id != d->prepared)
		return 0; /* nothing of this stage in that checkpoint */
	if (txn_commit(d, id) < 0)
		return -1;
	d->prepared = 0;
	return txn_produce_held(d);
}

/* The end of input: a finished stream commits what it wrote, a stopped or broken one aborts
 * it (a restart from the last checkpoint writes it again). */
static int txn_finish(struct dlqsink *d)
{
	char err[512];
	if (d->ended)
		return txn_produce_held(d) < 0 ? -1 : txn_commit(d, d->prepared);
	int64_t n = d->nlog + d->nheld;
	if (n)
		ev_info("%" PRId64 " dead letter(s) after the last checkpoint are not committed to "
			"'%s': a restart from the checkpoint writes them again",
			n, d->topic);
	if (!d->in_txn)
		return 0;
	/* abort_transaction waits for what is in flight and drops what is queued */
	if (ev_txn_abort(d->rk, &d->lim, err, sizeof(err)) < 0) {
		if (ev_tool_stop_requested()) {
			ev_error("'%s': %s (a restart fences this producer and aborts it)",
				 d->topic, err);
			return -1;
		}
		/* A new producer's init aborts it. */
		if (txn_recreate(d, err) < 0)
			return -1;
	} else {
		ev_counter_inc(d->m_txn_aborted);
		discard_reports(d); /* the aborted copies */
	}
	d->in_txn = 0;
	return 0;
}

/* The transaction log that file entry f of checkpoint id's part names, into log, checked
 * against its SHA-256. Returns 0, or -1 (said). */
static int read_log(struct dlqsink *d, const json_t *f, int64_t id, ev_buf *log)
{
	char err[1024], sha[65];
	const char *key = json_string_value(json_object_get(f, "key"));
	const char *want = json_string_value(json_object_get(f, "sha256"));
	if (!key || !want || ev_store_get(d->ck.store, key, log, err, sizeof(err)) < 0) {
		ev_error("checkpoint %" PRId64 ": cannot read the transaction log '%s': %s", id,
			 key ? key : "?", key ? err : "no key");
		return -1;
	}
	ev_sha256_hex(log->data, log->len, sha);
	if (strcmp(sha, want) != 0 || ev_txn_log_count(log) < 0) {
		ev_error("checkpoint %" PRId64 ": the transaction log '%s' is altered (sha256 %s, "
			 "not %s)",
			 id, key, sha, want);
		return -1;
	}
	return 0;
}

/* At start: the previous run's transactions were fenced and aborted (ev_txn_init). When the
 * restored checkpoint logged a transaction that did not commit (the marker is older), it is
 * written again and committed now: the checkpoint says it happened. */
static int txn_resolve(struct dlqsink *d)
{
	int64_t marker;
	json_t *f = json_array_get(json_object_get(d->restored_part, "files"), 0);
	if (txn_marker(d, &marker) < 0)
		return -1;
	if (marker > d->restored)
		ev_warn("'%s' holds the dead letters up to checkpoint %" PRId64
			", newer than the one restored (%" PRId64 "): those after it are written "
			"again",
			d->topic, marker, d->restored);
	if (!f || marker >= d->restored)
		return 0;
	ev_buf log = EV_BUF_INIT;
	if (read_log(d, f, d->restored, &log) < 0) {
		ev_buf_free(&log);
		return -1;
	}
	int rc = txn_produce_log(d, &log);
	ev_buf_free(&log);
	if (rc < 0 || txn_commit(d, d->restored) < 0)
		return -1;
	ev_info("checkpoint %" PRId64 " is complete but its transaction did not commit before the "
		"restart: its dead letters were written to '%s' again and committed",
		d->restored, d->topic);
	return 0;
}

/* The partitions of an assign or barrier line, [{topic, partition, offset}] (offset -1 when
 * not known), or NULL (said). */
static json_t *line_partitions(const char *line, size_t len)
{
	ev_control_part *parts;
	size_t n;
	char err[256];
	if (ev_control_partitions(line, len, &parts, &n, err, sizeof(err)) < 0) {
		ev_error("%s", err);
		return NULL;
	}
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_pack("{s:s, s:i, s:I}", "topic", parts[i].topic,
						       "partition", (int)parts[i].partition,
						       "offset", (json_int_t)parts[i].offset)) <
		    0) {
			json_decref(a);
			a = NULL;
		}
	ev_control_parts_free(parts, n);
	if (!a)
		ev_error("out of memory");
	return a;
}

/* The entry of list ([{topic, partition, offset}]) for the partition of el, or NULL. */
static const json_t *partition_in(const json_t *list, const json_t *el)
{
	const char *topic = json_string_value(json_object_get(el, "topic"));
	json_int_t p = json_integer_value(json_object_get(el, "partition"));
	size_t i;
	const json_t *x;
	json_array_foreach(list, i, x)
	{
		const char *t = json_string_value(json_object_get(x, "topic"));
		if (t && topic && strcmp(t, topic) == 0 &&
		    json_integer_value(json_object_get(x, "partition")) == p)
			return x;
	}
	return NULL;
}

/* Whether partitions assigned here were read by another copy at its checkpoint (owned: the
 * partitions of its transaction's part); *resumed 1 when every such one resumes here at or
 * past the offset of that checkpoint (the group committed it: its records are not read
 * again), else 0. */
static int taken_over(const json_t *assigned, const json_t *owned, int *resumed)
{
	size_t i;
	const json_t *a;
	int any = 0;
	*resumed = 1;
	json_array_foreach(assigned, i, a)
	{
		const json_t *o = partition_in(owned, a);
		if (!o)
			continue;
		any = 1;
		json_int_t at = json_integer_value(json_object_get(a, "offset"));
		if (!json_is_integer(json_object_get(a, "offset")) || at < 0 ||
		    at < json_integer_value(json_object_get(o, "offset")))
			*resumed = 0;
	}
	return any;
}

/* Copy name of the job checkpointed partitions that are assigned here now: it is gone
 * (killed, or its session timed out), since a copy that lets a partition go completes a
 * checkpoint without it first (ADR 0025, 5.1). Its producer of this stage is fenced, which
 * aborts the transaction it left open (read_committed consumers would otherwise wait for the
 * transaction timeout); and when its last complete checkpoint logged a transaction that did
 * not commit (it died between the manifest and its commit) and the group resumes its
 * partitions past that checkpoint, the log is written and committed for it, as its own
 * restart would have (ADR 0021, 10). Returns 0, or -1 (said: tried again later). */
static int adopt_copy(struct dlqsink *d, const char *name, const json_t *assigned)
{
	char err[1024];
	ev_buf root = EV_BUF_INIT, txid = EV_BUF_INIT, group = EV_BUF_INIT, log = EV_BUF_INIT;
	int64_t id = 0, n = 0;
	int found, legacy, resumed, rc = -1;
	json_t *m = NULL;
	ev_ckpt_root(&root, d->ck.job, name);
	found = 1;
	if (ev_ckpt_resolve(d->ck.store, ev_buf_cstr(&root), "latest", &id, err, sizeof(err)) < 0 ||
	    (id &&
	     !(m = ev_ckpt_get_manifest(d->ck.store, ev_buf_cstr(&root), id, &found, &legacy, err,
					sizeof(err))) &&
	     found)) {
		ev_warn("copy '%s' of the job: cannot read its last checkpoint: %s (tried again at "
			"the next barrier)",
			name, err);
		goto out;
	}
	const json_t *part = json_object_get(json_object_get(m, "parts"), d->ck.stage);
	const json_t *tx = json_object_get(part, "transaction");
	const char *given = json_string_value(json_object_get(tx, "id"));
	ev_txn_id(&txid, ev_buf_cstr(&root), d->ck.stage, d->topic);
	rc = 0;
	/* Only the producer this stage of that copy has by default (never an id a checkpoint
	 * names for another job, or one set with -X). */
	if (!given || strcmp(given, ev_buf_cstr(&txid)) != 0 ||
	    !taken_over(assigned, json_object_get(tx, "partitions"), &resumed))
		goto out;
	const json_t *f = json_array_get(json_object_get(part, "files"), 0);
	if (resumed && f && (rc = read_log(d, f, id, &log)) < 0)
		goto out;
	rd_kafka_conf_t *conf = rd_kafka_conf_dup(d->prod_conf);
	if (ev_kafka_conf_set(conf, "transactional.id", given, 0, err, sizeof(err)) == 0) {
		ev_txn_marker_group(&group, given);
		n = ev_txn_adopt(conf, d->marker_conf, ev_buf_cstr(&group), d->topic, id,
				 resumed && f ? &log : NULL, d->txn_timeout_ms, &d->init_lim, err,
				 sizeof(err));
	} else {
		n = -1;
	}
	rd_kafka_conf_destroy(conf);
	if (n < 0) {
		ev_warn("'%s': copy '%s' of the job, gone with partitions assigned here: %s (tried "
			"again at the next barrier)",
			d->topic, name, err);
		rc = -1;
		goto out;
	}
	ev_counter_inc(d->m_adopted);
	ev_counter_add(d->m_adopted_records, (uint64_t)n);
	if (n)
		ev_warn("'%s': copy '%s' of the job is gone with partitions assigned here, and its "
			"checkpoint %" PRId64
			" is complete but its transaction did not commit: its "
			"%" PRId64 " dead letter(s) were written again and committed",
			d->topic, name, id, n);
	else
		ev_info("'%s': copy '%s' of the job is gone with partitions assigned here: its "
			"producer is fenced and what it left open aborted",
			d->topic, name);
out:
	json_decref(m);
	ev_buf_free(&root);
	ev_buf_free(&txid);
	ev_buf_free(&group);
	ev_buf_free(&log);
	return rc;
}

/* Finish what copies gone with the partitions assigned here left (adopt_copy), for the
 * partitions of the assign lines not done yet (d->adopting). What cannot be done now (the
 * store or the brokers failing) is said and tried again at the next barrier: the gone copy's
 * log stays in the store, and an outage does not stop the job. Only for a named copy writing
 * with the default transactional.id. */
static void adopt_pending(struct dlqsink *d)
{
	char err[512], **names = NULL;
	size_t n = 0;
	int rc = 0;
	if (!json_array_size(d->adopting))
		return;
	if (ev_ckpt_copies(d->ck.store, d->ck.job, &names, &n, err, sizeof(err)) < 0) {
		ev_warn("cannot list the copies of the job: %s (tried again at the next barrier)",
			err);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], d->ck.copy) != 0 && adopt_copy(d, names[i], d->adopting) < 0)
			rc = -1;
	ev_ckpt_copies_free(names, n);
	if (rc == 0)
		json_array_clear(d->adopting);
}

/* An assign line: its partitions join those to adopt for (adopt_pending). Returns 0, or -1
 * (said). */
static int adopt(struct dlqsink *d, const char *line, size_t len)
{
	ev_buf mine = EV_BUF_INIT;
	if (!d->eos || !d->ck.store || !d->ck.copy)
		return 0;
	ev_txn_id(&mine, ev_ckpt_where(&d->ck), d->ck.stage, d->topic);
	int own = strcmp(ev_buf_cstr(&mine), ev_buf_cstr(&d->txid)) == 0;
	ev_buf_free(&mine);
	if (!own)
		return 0;
	json_t *assigned = line_partitions(line, len);
	if (!assigned || (!d->adopting && !(d->adopting = json_array())) ||
	    json_array_extend(d->adopting, assigned) < 0) {
		json_decref(assigned);
		ev_error("out of memory");
		return -1;
	}
	json_decref(assigned);
	adopt_pending(d);
	return 0;
}

/* Make everything written so far durable: delivered to Kafka, or fsync'ed. */
static int make_durable(void *arg)
{
	struct dlqsink *d = arg;
	if (d->eos)
		return txn_flush(d);
	if (d->rk) {
		for (;;) {
			int left = ev_kafka_flush_all(d->rk, (int)d->kafka.timeout_ms);
			if (left) {
				ev_error(
					"'%s': %d dead letter(s) not delivered within --timeout of the "
					"stop signal",
					d->topic, left);
				return -1;
			}
			if (!d->noversize)
				break;
			if (resend_oversize(d) < 0)
				return -1;
		}
		return d->dl.failed ? -1 : 0;
	}
	ev_stage_flush(d->stage);
	if (ev_writer_flush(d->out) < 0 || fsync(d->fd) < 0) {
		ev_error("cannot write '%s': %s", d->file, strerror(errno));
		return -1;
	}
	return 0;
}

/* The envelope's reason, the message key; NULL for a line that is not an envelope. */
static const char *envelope_reason(const char *line, size_t len, json_t **root)
{
	*root = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
	return json_string_value(json_object_get(*root, "reason"));
}

static int sink(struct dlqsink *d)
{
	ev_stage_line l;
	int r, rc = EV_EXIT_OK;
	ev_stage_output(d->stage, d->out, "file");
	while ((r = ev_stage_next(d->stage, &l)) != 0) {
		if (r < 0) {
			rc = EV_EXIT_FAILURE;
			break;
		}
		if (l.cls == EV_LINE_CONTROL) {
			if (l.control.type == EV_CTL_END)
				d->ended = 1;
			if (l.control.type == EV_CTL_COMMITTED && d->eos &&
			    txn_committed(d, l.control.id) < 0) {
				rc = EV_EXIT_FAILURE;
				break;
			}
			if (l.control.type == EV_CTL_ASSIGN && adopt(d, l.data, l.len) < 0) {
				rc = EV_EXIT_FAILURE;
				break;
			}
			d->barrier_id = l.control.id;
			d->barrier_t0 = ev_mono_ns();
			if (l.control.type == EV_CTL_BARRIER && d->eos) {
				adopt_pending(d);
				json_decref(d->barrier_parts);
				if (!(d->barrier_parts = line_partitions(l.data, l.len))) {
					rc = EV_EXIT_FAILURE;
					break;
				}
			}
			if (l.control.type == EV_CTL_BARRIER &&
			    ev_stage_barrier(d->stage, &l.control, d->barrier_t0,
					     d->eos ? txn_barrier : make_durable, d) < 0) {
				rc = EV_EXIT_FAILURE;
				break;
			}
			continue;
		}
		json_t *root;
		const char *reason = envelope_reason(l.data, l.len, &root);
		if (!reason) {
			/* Still kept: a dead-letter sink never drops what it is given. */
			ev_counter_inc(d->m_bad);
			ev_log_limited(&d->not_envelope, EV_LOG_WARN,
				       "%s is not a dead-letter envelope; kept as it is",
				       ev_stage_where(d->stage));
		}
		const char *key = reason ? reason : "unknown";
		if (d->eos && d->prepared) {
			/* After the barrier of a checkpoint not committed yet: the next
			 * transaction's, held until that one commits. */
			if (ev_txn_log_add(&d->held, key, strlen(key), l.data, l.len) < 0) {
				ev_error("out of memory");
				json_decref(root);
				rc = EV_EXIT_FAILURE;
				break;
			}
			d->nheld++;
			txn_gauge(d);
		} else if (d->rk) {
			if (produce_envelope(d, l.data, l.len, key, strlen(key)) < 0 ||
			    (!d->eos && d->noversize && resend_oversize(d) < 0)) {
				json_decref(root);
				rc = EV_EXIT_FAILURE;
				break;
			}
		} else {
			if (ev_writer_line(d->out, l.data, l.len) < 0) {
				ev_error("cannot write '%s': %s", d->file, strerror(errno));
				json_decref(root);
				rc = EV_EXIT_FAILURE;
				break;
			}
			ev_counter_inc(d->m_out);
			d->written++;
		}
		json_decref(root);
	}
	if (d->eos ? rc == EV_EXIT_OK && txn_finish(d) < 0 : make_durable(d) < 0)
		rc = EV_EXIT_FAILURE;
	ev_log_limit_end(&d->not_envelope, EV_LOG_WARN, "lines that are not envelopes");
	if (d->dl.failed)
		ev_error("%" PRIu64 " of %" PRIu64 " dead letter(s) failed delivery: %s",
			 d->dl.failed, d->dl.failed + d->dl.delivered,
			 rd_kafka_err2str(d->dl.first_err));
	ev_info("%" PRIu64 " line(s): %" PRIu64 " %s '%s' (%" PRIu64
		" not dead-letter envelopes, kept as they are); %" PRIu64 " blank line(s) skipped",
		ev_stage_records(d->stage),
		d->eos  ? d->committed
		: d->rk ? d->dl.delivered
			: d->written,
		d->eos  ? "committed to"
		: d->rk ? "delivered to"
			: "written to",
		d->rk ? d->topic : d->file, d->not_envelope.total, ev_stage_blank(d->stage));
	return rc;
}

static int reason_wanted(const struct dlqsink *d, const char *reason)
{
	if (!d->reasons.len)
		return 1;
	if (!reason)
		return 0;
	size_t n = strlen(reason);
	for (const char *p = d->reasons.data; (p = strstr(p, reason)) != NULL; p++)
		if (p[-1] == ',' && p[n] == ',')
			return 1;
	return 0;
}

/* Replay one envelope: write its original record when it passes the filters. Returns 0, or
 * -1 when stdout fails. */
static int replay_one(struct dlqsink *d, const char *line, size_t len, const char *where)
{
	json_t *root = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
	const char *reason = json_string_value(json_object_get(root, "reason"));
	json_t *at = json_object_get(root, "at");
	int is_claim = json_object_get(root, "raw_ref") != NULL;
	int lost = json_is_true(json_object_get(root, "raw_lost"));
	int rc = 0;
	char err[1024];
	const char *sha = json_string_value(json_object_get(root, "raw_sha256"));
	if (!is_claim && !lost && !ev_claim_raw(root, &d->raw)) {
		ev_log_limited(&d->not_envelope, EV_LOG_WARN,
			       "%s is not a dead-letter envelope: skipped", where);
		d->skipped++;
	} else if (reason_wanted(d, reason) &&
		   (!json_is_integer(at) ||
		    (json_integer_value(at) >= d->since && json_integer_value(at) < d->until))) {
		if (lost) {
			ev_error("%s: the original bytes of this dead letter were not kept (sha256 "
				 "%s): it cannot be replayed",
				 where, sha ? sha : "unknown");
			d->unrecoverable++;
		} else if (is_claim &&
			   ev_claim_resolve(root, d->claims, &d->raw, err, sizeof(err)) < 0) {
			ev_error("%s: %s", where, err);
			d->unrecoverable++;
		} else {
			rc = ev_writer_line(d->out, d->raw.data, d->raw.len);
			d->replayed++;
		}
	}
	json_decref(root);
	return rc;
}

static int replay_message(void *arg, const rd_kafka_message_t *msg)
{
	char where[512];
	if (msg->len == 0 || ev_control_is(msg->payload, msg->len))
		return 0;
	snprintf(where, sizeof(where), "%s [%d] offset %" PRId64, rd_kafka_topic_name(msg->rkt),
		 (int)msg->partition, msg->offset);
	return replay_one(arg, msg->payload ? msg->payload : "", msg->len, where);
}

static int replay_topic(struct dlqsink *d)
{
	char err[512], gid[64];
	rd_kafka_conf_t *conf = d->kafka.conf;
	d->kafka.conf = NULL;
	snprintf(gid, sizeof(gid), "dlqsink-replay-%ld", (long)getpid());
	if (ev_kafka_conf_set(conf, "bootstrap.servers", d->kafka.brokers, 0, err, sizeof(err)) <
		    0 ||
	    ev_kafka_conf_set(conf, "group.id", gid, 0, err, sizeof(err)) < 0 ||
	    ev_kafka_conf_set(conf, "enable.auto.commit", "false", 0, err, sizeof(err)) < 0 ||
	    ev_kafka_conf_set(conf, "enable.partition.eof", "true", 0, err, sizeof(err)) < 0) {
		ev_error("%s", err);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	ev_kafka_conf_logging(conf);
	d->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!d->rk) {
		ev_error("cannot create Kafka consumer: %s", err);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	rd_kafka_poll_set_consumer(d->rk);
	if (ev_kafka_read_all(d->rk, d->topic, (int)d->kafka.timeout_ms, replay_message, d, err,
			      sizeof(err)) < 0) {
		ev_error("%s", err);
		return -1;
	}
	return 0;
}

static int replay_stream(struct dlqsink *d)
{
	ev_stage_line l;
	int r;
	while ((r = ev_stage_next(d->stage, &l)) > 0)
		if (l.cls == EV_LINE_RECORD &&
		    replay_one(d, l.data, l.len, ev_stage_where(d->stage)) < 0)
			return -1; /* reported by replay */
	return r;
}

static int replay(struct dlqsink *d)
{
	int rc = d->topic ? replay_topic(d) : replay_stream(d);
	if (ev_writer_flush(d->out) < 0 && ev_stage_write_failed(d->stage, "standard output") < 0)
		rc = -1;
	ev_log_limit_end(&d->not_envelope, EV_LOG_WARN, "lines that are not envelopes");
	ev_info("%" PRIu64 " record(s) replayed%s", d->replayed,
		d->skipped ? " (some lines were not envelopes)" : "");
	if (d->unrecoverable) {
		ev_error("%" PRIu64 " dead letter(s) could not be replayed", d->unrecoverable);
		rc = -1;
	}
	if (d->rk)
		rd_kafka_consumer_close(d->rk);
	return rc < 0 ? EV_EXIT_FAILURE : EV_EXIT_OK;
}

/* --reason LIST: each a reason some tool writes, kept as ",a,b," for reason_wanted. Returns 0,
 * or the exit code after a message (a usage error lists the known reasons). */
static int add_reasons(struct dlqsink *d, const char *list)
{
	for (const char *p = list;; p++) {
		size_t n = strcspn(p, ",");
		if (!ev_deadletter_reason_known(p, n)) {
			ev_buf known = EV_BUF_INIT;
			for (const char *const *r = ev_deadletter_reasons; *r; r++)
				ev_buf_printf(&known, "%s%s", known.len ? ", " : "", *r);
			int rc = ev_tool_usage_error("unknown reason '%.*s' (known: %s)", (int)n, p,
						     ev_buf_cstr(&known));
			ev_buf_free(&known);
			return rc;
		}
		if (ev_buf_puts(&d->reasons, d->reasons.len ? "" : ",") < 0 ||
		    ev_buf_append(&d->reasons, p, n) < 0 || ev_buf_putc(&d->reasons, ',') < 0) {
			ev_error("out of memory");
			return EV_EXIT_FAILURE;
		}
		p += n;
		if (!*p)
			return 0;
	}
}

static int opt_reason(const ev_option *o, char *arg, char *err, size_t errlen)
{
	(void)err, (void)errlen;
	return add_reasons(o->value, arg);
}

static int parse_args(struct dlqsink *d, int argc, char **argv)
{
	const ev_option options[] = {
		EV_OPT_TEXT(
			"usage: dlqsink -b BROKERS -t TOPIC [options] [FILE...]    to a Kafka topic\n"
			"       dlqsink --file PATH [options] [FILE...]            appended to a file\n"
			"       dlqsink replay [-t TOPIC | --file PATH | FILE...] [filters] > records\n"
			"\n"
			"Writes the dead-letter envelopes of evvalidate, evwindow and chsink (read from the FILEs\n"
			"in order, - for stdin, or stdin) to their final place:\n"
			"a Kafka topic (keyed by reason, idempotent producer) or a file (appended, fsync'ed). On a\n"
			"barrier control line everything before it is made durable first. Exit 1 when an envelope\n"
			"could not be written.\n"
			"\n"
			"With a checkpoint store a topic is written exactly once (ADR 0021): the envelopes between\n"
			"two barriers go into one Kafka transaction (transactional.id evpipe.<job>.<stage>.<topic>,\n"
			"<job>/copies/<copy> in place of <job> with --copy),\n"
			"flushed on the barrier and logged with the stage's part of the checkpoint, committed when\n"
			"the committed control line of that checkpoint arrives (the coordinator writes it after\n"
			"the manifest); envelopes after the barrier wait in memory until then. A start fences and\n"
			"aborts what the last run left open, and writes again the log of the restored checkpoint\n"
			"when its transaction was not committed. With --copy, an assign line of partitions\n"
			"another copy's last checkpoint still lists (that copy is gone) fences that copy's\n"
			"producer and, when the partitions resume past that checkpoint, writes its log if it\n"
			"was not committed. At the end of input the open transaction is\n"
			"committed after an end control line (a finished stream), aborted otherwise (a restart\n"
			"from the last checkpoint writes those envelopes again). A transaction that fails (an\n"
			"envelope refused, a delivery failed, an abort or commit that fails) is not left to\n"
			"librdkafka: a new producer fences the old one and aborts its transaction, and the\n"
			"transaction's envelopes are written again (at most 3 times between two commits, then\n"
			"exit 1). Every wait for the brokers is bounded by --transaction-timeout; after SIGTERM\n"
			"or SIGINT by --timeout (exit 1: a restart fences what is left open). Consumers must\n"
			"read with isolation.level=read_committed (kin -C and dlqsink replay do). A file is\n"
			"written at least once: after a restore, the envelopes after the checkpoint are\n"
			"appended again (the same source offsets tell the copies apart).\n"
			"\n"
			"An envelope too large for the topic (librdkafka's message.max.bytes, or the topic's\n"
			"max.message.bytes, read at start with the Admin API, and again when the broker refuses\n"
			"one) is never a failure: its original bytes go to the claim store under\n"
			"<job>/claims/<sha256>, and the envelope goes to the topic with \"raw_ref\",\n"
			"\"raw_sha256\" and \"raw_bytes\" in place of \"raw\". Without a claim store those bytes\n"
			"are lost: the envelope keeps the hash and size with \"raw_lost\":true, and an error is\n"
			"logged and counted (evpipe_dead_letters_oversize_total).\n"
			"\n"
			"replay reads envelopes (a topic from its beginning to its end, --file, or stdin) and writes\n"
			"each one's original record (raw, or raw_b64 decoded) to stdout, so that records can be\n"
			"re-injected after a fix: dlqsink replay -t events.dlq --reason schema | kin -P -t events\n"
			"A claim check is fetched from the claim store and its size and sha256 verified; one that\n"
			"cannot be (no store given, missing, altered, or bytes that were lost) is reported and\n"
			"makes the exit status 1, after the other records are replayed.\n"
			"\n"
			"Options:\n"),
		EV_OPT_STRING('t', "topic", "TOPIC", &d->topic,
			      "dead-letter topic (write, or replay)"),
		EV_OPT_STRING('f', "file", "PATH", &d->file,
			      "dead-letter file (write: appended; replay: read)"),
		EV_OPT_STRING(0, "claim-store", "URL", &d->claim_url,
			      "where the original bytes of envelopes too large for the\n"
			      "topic go, and replay finds them: file:///dir or\n"
			      "s3://bucket/prefix (default: the --checkpoint-store)"),
		EV_OPT_STRING(0, "delivery", "MODE", &d->delivery,
			      "exactly-once (Kafka transactions committed with the\n"
			      "checkpoints; the default for a topic with --checkpoint-store)\n"
			      "or at-least-once (idempotent producer, flushed on barriers;\n"
			      "the default otherwise, and the only mode of --file)"),
		EV_OPT_DURATION(0, "transaction-timeout", "D", &d->txn_timeout_ms, 1000, 1000,
				INT32_MAX,
				"Kafka's transaction.timeout.ms (default 120s): above the\n"
				"checkpoint interval plus the checkpoint timeout, and at most\n"
				"the broker's transaction.max.timeout.ms (checked at start)"),
		EV_OPTS_KAFKA(&d->kafka),
		EV_OPTS_CKPT(&d->ck),
		EV_OPT_ACK_SPEC(&d->ack_spec),
		EV_OPTS_PROGRESS(),
		EV_OPTS_COMMON(&d->common),
		EV_OPT_TEXT("\n"
			    "Replay filters:\n"),
		EV_OPT_CALLBACK(0, "reason", "LIST", d, opt_reason,
				"only these reasons (comma-separated; a reason no tool\n"
				"writes is refused)"),
		EV_OPT_TIME(0, "since", "TIME", &d->since,
			    "only dead letters at or after TIME (epoch ms or RFC 3339)"),
		EV_OPT_TIME(0, "until", "TIME", &d->until, "only dead letters before TIME"),
		EV_OPT_TEXT(
			"\n"
			"Exit status: 0 ok, 1 runtime failure (I/O, delivery, an impossible control line: ADR\n"
			"0013), 2 usage error.\n"),
		EV_OPT_END(),
	};

	if (argc > 1 && strcmp(argv[1], "replay") == 0) {
		d->replay = 1;
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	int rc = ev_tool_parse(options, argc, argv);
	if (rc != 0)
		return rc;
	d->files = argv + optind;
	d->nfiles = (size_t)(argc - optind);
	if (d->replay && d->nfiles && (d->file || d->topic))
		return ev_tool_usage_error(
			"replay reads -t, --file or the FILE arguments, not two");
	if (d->replay && d->file) {
		d->files = (char **)&d->file;
		d->nfiles = 1;
	}
	if (d->file && d->topic)
		return ev_tool_usage_error("--file and -t exclude each other");
	if (d->topic && ev_kafka_opts_brokers(&d->kafka) < 0)
		return ev_tool_usage_error("no brokers: give -b or set KAFKA_BROKERS");
	if (d->replay)
		return 0;
	if (d->reasons.len || d->since != INT64_MIN || d->until != INT64_MAX)
		return ev_tool_usage_error("--reason, --since and --until are replay options");
	if (!d->file && !d->topic)
		return ev_tool_usage_error("give -t TOPIC (with -b) or --file PATH");
	if (d->delivery && strcmp(d->delivery, "exactly-once") != 0 &&
	    strcmp(d->delivery, "at-least-once") != 0)
		return ev_tool_usage_error("--delivery is exactly-once or at-least-once, not '%s'",
					   d->delivery);
	if (d->delivery && strcmp(d->delivery, "exactly-once") == 0) {
		if (d->file)
			return ev_tool_usage_error("--delivery exactly-once needs a topic: a file "
						   "is written at least once");
		if (!d->ck.url)
			return ev_tool_usage_error("--delivery exactly-once needs "
						   "--checkpoint-store: transactions commit "
						   "with the checkpoints");
	}
	d->eos =
		d->topic && d->ck.url && (!d->delivery || strcmp(d->delivery, "exactly-once") == 0);
	return 0;
}

/* The transactional producer's configuration: its transactional.id (unless given with -X),
 * and the transaction timeout in effect. */
static int open_transactional(struct dlqsink *d, rd_kafka_conf_t *conf)
{
	char err[512], val[32];
	size_t n = sizeof(val);
	if (rd_kafka_conf_get(conf, "transactional.id", NULL, &n) == RD_KAFKA_CONF_OK && n > 1) {
		char *given = malloc(n);
		if (given &&
		    rd_kafka_conf_get(conf, "transactional.id", given, &n) == RD_KAFKA_CONF_OK)
			ev_buf_puts(&d->txid, given);
		free(given);
	} else {
		/* Each copy of the job its own: copies must not fence each other. */
		ev_txn_id(&d->txid, ev_ckpt_where(&d->ck), d->ck.stage, d->topic);
	}
	ev_txn_marker_group(&d->marker, ev_buf_cstr(&d->txid));
	if (ev_kafka_conf_set(conf, "transactional.id", ev_buf_cstr(&d->txid), 0, err,
			      sizeof(err)) < 0) {
		ev_error("%s", err);
		return -1;
	}
	/* The timeout in effect (-X transaction.timeout.ms wins over --transaction-timeout). */
	n = sizeof(val);
	if (rd_kafka_conf_get(conf, "transaction.timeout.ms", val, &n) == RD_KAFKA_CONF_OK)
		d->txn_timeout_ms = strtoll(val, NULL, 10);
	return 0;
}

static int open_sink(struct dlqsink *d)
{
	char err[512];
	if (d->file) {
		d->fd = open(d->file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (d->fd < 0) {
			ev_error("cannot open '%s': %s", d->file, strerror(errno));
			return -1;
		}
		d->out = ev_writer_new(d->fd, 64 * 1024);
		return d->out ? 0 : -1;
	}
	char val[32];
	snprintf(val, sizeof(val), "%" PRId64, d->txn_timeout_ms);
	if (d->eos) {
		/* The consumer that reads the marker: the user's settings (security), none of
		 * the producer's. */
		d->marker_conf = rd_kafka_conf_dup(d->kafka.conf);
		ev_kafka_conf_logging(d->marker_conf);
		if (ev_kafka_conf_set(d->marker_conf, "bootstrap.servers", d->kafka.brokers, 0, err,
				      sizeof(err)) < 0) {
			ev_error("%s", err);
			return -1;
		}
	}
	if (d->eos &&
	    ev_kafka_opts_default(&d->kafka, "transaction.timeout.ms", val, err, sizeof(err)) < 0) {
		ev_error("%s", err);
		return -1;
	}
	rd_kafka_conf_t *conf = d->kafka.conf;
	d->kafka.conf = NULL;
	if (ev_kafka_conf_set(conf, "bootstrap.servers", d->kafka.brokers, 0, err, sizeof(err)) <
		    0 ||
	    ev_kafka_conf_set(conf, "enable.idempotence", "true", 0, err, sizeof(err)) < 0) {
		ev_error("%s", err);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	if (d->eos && open_transactional(d, conf) < 0) {
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	ev_kafka_conf_logging(conf);
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_opaque(conf, d);
	d->prod_conf = conf;
	if (producer_new(d) < 0)
		return -1;
	if (ev_kafka_probe(d->rk, &d->kafka, NULL, NULL, err, sizeof(err)) < 0) {
		ev_error("%s", err);
		return -1;
	}
	learn_max_bytes(d);
	size_t n = sizeof(val);
	if (rd_kafka_conf_get(conf, "batch.size", val, &n) == RD_KAFKA_CONF_OK &&
	    strtoll(val, NULL, 10) > d->max_bytes) {
		/* A batch of several envelopes must not be larger than the topic takes either. */
		snprintf(val, sizeof(val), "%" PRId64, d->max_bytes);
		if (ev_kafka_conf_set(conf, "batch.size", val, 0, err, sizeof(err)) < 0) {
			ev_error("%s", err);
			return -1;
		}
		producer_free(d);
		if (producer_new(d) < 0)
			return -1;
	}
	if (d->eos) {
		/* Every wait for the brokers is bounded: a transaction outlives its timeout on
		 * no broker anyway, and a stop signal leaves them --timeout to answer. */
		d->lim.wait_ms = (int)d->txn_timeout_ms;
		d->lim.stop_ms = (int)(d->kafka.timeout_ms < d->txn_timeout_ms ? d->kafka.timeout_ms
									       : d->txn_timeout_ms);
		d->init_lim.wait_ms =
			(int)(d->kafka.timeout_ms > 30000 ? d->kafka.timeout_ms : 30000);
		d->init_lim.stop_ms = d->lim.stop_ms;
		if (ev_txn_init(d->rk, d->txn_timeout_ms, &d->init_lim, err, sizeof(err)) < 0) {
			ev_error("'%s': %s", d->topic, err);
			return -1;
		}
		if (d->restored && txn_resolve(d) < 0)
			return -1;
	}
	return 0;
}

static void setup_metrics(struct dlqsink *d)
{
	ev_metrics *m = d->metrics;
	d->m_out = ev_tool_records_out(m);
	d->m_bad =
		ev_metrics_counter(m, "evpipe_records_invalid_envelope_total",
				   "Lines that were not dead-letter envelopes (kept as they are)",
				   NULL);
	d->m_delivery_errors = ev_metrics_counter(m, "evpipe_kafka_delivery_errors_total",
						  "Messages that could not be delivered", NULL);
	d->m_claimed = ev_metrics_counter(
		m, "evpipe_dead_letters_oversize_total",
		"Envelopes too large for the topic, by outcome: claim_check (original bytes in the "
		"claim store) or raw_lost (no claim store)",
		"outcome=\"claim_check\"");
	d->m_lost = ev_metrics_counter(
		m, "evpipe_dead_letters_oversize_total",
		"Envelopes too large for the topic, by outcome: claim_check (original bytes in the "
		"claim store) or raw_lost (no claim store)",
		"outcome=\"raw_lost\"");
	if (!d->eos)
		return;
	d->m_txn_committed = ev_metrics_counter(m, "evpipe_kafka_transactions_total",
						"Kafka transactions of the output, by outcome",
						"outcome=\"committed\"");
	d->m_txn_aborted = ev_metrics_counter(m, "evpipe_kafka_transactions_total",
					      "Kafka transactions of the output, by outcome",
					      "outcome=\"aborted\"");
	d->m_adopted = ev_metrics_counter(
		m, "evpipe_kafka_transactions_adopted_total",
		"Producers of copies of the job gone with partitions assigned here, fenced (their "
		"open transaction aborted) and their last checkpoint's transaction finished",
		NULL);
	d->m_adopted_records = ev_metrics_counter(
		m, "evpipe_kafka_transactions_adopted_records_total",
		"Dead letters of a gone copy's complete checkpoint written and committed for it",
		NULL);
	static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
	d->m_txn_commit = ev_metrics_histogram(
		m, "evpipe_kafka_transaction_commit_seconds",
		"Time a transaction's commit took (flush, marker and EndTxn), on the committed line",
		NULL, bounds, sizeof(bounds) / sizeof(bounds[0]));
	d->m_txn_records = ev_metrics_gauge(
		m, "evpipe_kafka_transaction_records",
		"Records not committed yet: in the open transaction, or waiting for the next one",
		NULL);
}

/* --restore: a sink at least once has nothing to load; one exactly once keeps its part of
 * the checkpoint for txn_resolve. */
static int restore(struct dlqsink *d, char *err, size_t errlen)
{
	if (!d->eos || d->replay)
		return ev_ckpt_stateless_restore(&d->ck, err, errlen);
	ev_ckpt_restored r;
	if (ev_ckpt_restore(&d->ck, &r, err, errlen) < 0)
		return -1;
	d->restored = r.id;
	d->restored_part = json_incref(r.part);
	ev_ckpt_restored_free(&r);
	return 0;
}

int main(int argc, char **argv)
{
	struct dlqsink d;
	memset(&d, 0, sizeof(d));
	d.since = INT64_MIN;
	d.until = INT64_MAX;
	d.common.job = "evpipe";
	d.fd = -1;
	d.txn_timeout_ms = 120000;

	ev_tool_init("dlqsink");
	char err[512];
	int rc = ev_kafka_opts_init(&d.kafka, err, sizeof(err)) < 0 ? ev_tool_usage_error("%s", err)
								    : parse_args(&d, argc, argv);
	if (rc != 0) {
		rd_kafka_conf_destroy(d.kafka.conf);
		ev_buf_free(&d.reasons);
		return rc < 0 ? ev_tool_finish(EV_EXIT_OK) : rc;
	}
	if (d.topic)
		ev_ckpt_set_identity(&d.ck, json_pack("{s:s}", "topic", d.topic));
	if (ev_ckpt_open(&d.ck, d.common.job, "dlqsink", err, sizeof(err)) < 0 ||
	    restore(&d, err, sizeof(err)) < 0) {
		ev_error("checkpoints: %s", err);
		rd_kafka_conf_destroy(d.kafka.conf);
		ev_buf_free(&d.reasons);
		ev_ckpt_close(&d.ck);
		return EV_EXIT_FAILURE;
	}
	if (d.claim_url && !(d.claim_own = ev_store_open(d.claim_url, err, sizeof(err)))) {
		ev_error("claim store: %s", err);
		rd_kafka_conf_destroy(d.kafka.conf);
		ev_buf_free(&d.reasons);
		ev_ckpt_close(&d.ck);
		return EV_EXIT_FAILURE;
	}
	d.claims = d.claim_own ? d.claim_own : d.ck.store;
	if (d.ack_spec && !(d.ack = ev_ack_out_new(d.ack_spec, err, sizeof(err)))) {
		ev_error("--ack: %s", err);
		rd_kafka_conf_destroy(d.kafka.conf);
		ev_buf_free(&d.reasons);
		ev_ckpt_close(&d.ck);
		ev_store_close(d.claim_own);
		return EV_EXIT_FAILURE;
	}
	d.metrics = ev_tool_metrics("dlqsink", d.common.job, d.common.metrics_addr);
	if (!d.metrics) {
		rd_kafka_conf_destroy(d.kafka.conf);
		ev_ckpt_close(&d.ck);
		ev_buf_free(&d.reasons);
		return EV_EXIT_FAILURE;
	}
	ev_stage_opts so = {.files = d.files,
			    .nfiles = d.nfiles,
			    .ck = d.replay ? NULL : &d.ck, /* a replay has no torn lines */
			    .ack = d.ack,
			    .metrics = d.metrics,
			    .flags = d.replay ? EV_STAGE_CONTROL_UNCHECKED : EV_STAGE_SINK};
	if (!(d.stage = ev_stage_new(&so))) {
		rc = EV_EXIT_FAILURE;
	} else if (d.replay) {
		setup_metrics(&d);
		ev_ckpt_metrics(&d.ck, d.metrics);
		ev_tool_catch_signals();
		ev_tool_progress(d.metrics);
		d.out = ev_writer_new(1, 64 * 1024);
		ev_stage_output(d.stage, d.out, "stdout");
		rc = replay(&d);
	} else {
		setup_metrics(&d);
		ev_ckpt_metrics(&d.ck, d.metrics);
		ev_tool_catch_signals();
		ev_tool_progress(d.metrics);
		rc = open_sink(&d) < 0 ? EV_EXIT_FAILURE : sink(&d);
	}
	ev_writer_free(d.out);
	if (d.fd >= 0)
		close(d.fd);
	if (d.kafka.conf)
		rd_kafka_conf_destroy(d.kafka.conf);
	if (d.replay) {
		if (d.rk)
			rd_kafka_destroy(d.rk);
	} else {
		producer_free(&d);
	}
	if (d.prod_conf)
		rd_kafka_conf_destroy(d.prod_conf);
	ev_tool_metrics_free(d.metrics);
	ev_ckpt_close(&d.ck);
	ev_store_close(d.claim_own);
	ev_ack_out_free(d.ack);
	ev_buf_free(&d.raw);
	ev_buf_free(&d.reasons);
	ev_buf_free(&d.txid);
	ev_buf_free(&d.marker);
	ev_buf_free(&d.log);
	ev_buf_free(&d.held);
	drop_oversize(&d);
	free(d.oversize);
	json_decref(d.restored_part);
	json_decref(d.barrier_parts);
	json_decref(d.adopting);
	if (d.marker_conf)
		rd_kafka_conf_destroy(d.marker_conf);
	return ev_stage_exit(d.stage, rc);
}
