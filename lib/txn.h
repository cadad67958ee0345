/* SPDX-License-Identifier: Apache-2.0 */
/* txn.h: a sink's Kafka transactions, committed with the checkpoints (ADR 0021).
 *
 * The records between barriers N-1 and N go into one transaction of a transactional producer
 * whose transactional.id is stable across restarts (ev_txn_id). On barrier N the stage flushes
 * the producer and writes its part of checkpoint N with a log of the transaction's records
 * (the pre-commit); on the committed line of N it commits the transaction, and with it the
 * marker "checkpoint N committed": offset N of the output topic's partition 0 in a consumer
 * group of its own (ev_txn_marker_group), committed atomically by the transaction
 * (send_offsets_to_transaction). librdkafka cannot resume a transaction after a restart: the
 * next incarnation fences and aborts it (ev_txn_init), reads the marker (ev_txn_committed_id)
 * and, when the restored checkpoint is newer, writes the log of its part again in a new
 * transaction that carries the marker. */
#ifndef EV_TXN_H
#define EV_TXN_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* "evpipe.<job>.<stage>.<topic>" into b (reset first): the transactional.id of a stage that
 * writes to topic. */
void ev_txn_id(ev_buf *b, const char *job, const char *stage, const char *topic);
/* "evpipe-txn.<transactional.id>" into b (reset first): the group that holds the marker. */
void ev_txn_marker_group(ev_buf *b, const char *txid);

/* How long a call below may wait for the brokers: at most wait_ms in all, and at most stop_ms
 * from the moment a stop signal is requested (ev_tool_stop_requested), so that SIGTERM ends a
 * wait on brokers that are down. librdkafka is called in slices of at most half a second (a
 * transactional call that timed out resumes where it was), send_offsets_to_transaction, which
 * starts over when called again, in slices of stop_ms. A call that runs out of time fails
 * saying so. */
typedef struct ev_txn_limits {
	int wait_ms;
	int stop_ms;
} ev_txn_limits;

/* Fence every earlier producer of rk's transactional.id and abort the transaction it left
 * open (init_transactions). A transaction timeout the broker refuses is said as such, with
 * txn_timeout_ms, the value rk was configured with. Returns 0, or -1 with a message in err. */
int ev_txn_init(rd_kafka_t *rk, int64_t txn_timeout_ms, const ev_txn_limits *lim, char *err,
		size_t errlen);
/* Begin a transaction. Returns 0, or -1 with a message in err. */
int ev_txn_begin(rd_kafka_t *rk, char *err, size_t errlen);
/* Wait until every message produced is acknowledged or failed (their delivery reports
 * served). Returns 0, or -1 with a message in err: the time ran out, or rk has a fatal error. */
int ev_txn_flush(rd_kafka_t *rk, const ev_txn_limits *lim, char *err, size_t errlen);
/* Commit the open transaction together with the marker of checkpoint id (0: no marker).
 * Returns 0, or -1 with a message in err: the transaction did not commit, or it is not known
 * whether it did (the caller cannot go on with this producer; ev_txn_committed_id tells). */
int ev_txn_commit(rd_kafka_t *rk, const char *marker_group, const char *topic, int64_t id,
		  const ev_txn_limits *lim, char *err, size_t errlen);
/* Abort the open transaction. Returns 0, or -1 with a message in err (the caller cannot go on
 * with this producer: a new one, by its init, fences it and aborts its transaction). */
int ev_txn_abort(rd_kafka_t *rk, const ev_txn_limits *lim, char *err, size_t errlen);

/* The checkpoint whose marker marker_group holds for topic (0: none yet), read by a consumer
 * of conf (taken; isolation.level read_committed, so a marker of a transaction still open is
 * waited for, not read). Returns 0, or -1 with a message in err. */
int ev_txn_committed_id(rd_kafka_conf_t *conf, const char *marker_group, const char *topic,
			int timeout_ms, int64_t *id, char *err, size_t errlen);

/* Finish, on behalf of a producer gone for good (a copy of the job that died, ADR 0021 section
 * 10), the transaction of checkpoint id: a producer of prod's transactional.id fences every
 * earlier one and aborts what it left open; then, when log is not NULL and the marker
 * (marker_group, read by a consumer of cons) is older than id, the log's records are written
 * to topic in a new transaction that carries the marker id, and committed. Another producer
 * doing the same at once fences this one: its commit then fails, and the marker, read again,
 * tells whether the other committed (up to 3 attempts). prod and cons are not taken. Returns
 * the records committed (0: the marker says id already, or log is NULL), or -1 with a
 * message in err. */
int64_t ev_txn_adopt(const rd_kafka_conf_t *prod, const rd_kafka_conf_t *cons,
		     const char *marker_group, const char *topic, int64_t id, const ev_buf *log,
		     int64_t txn_timeout_ms, const ev_txn_limits *lim, char *err, size_t errlen);

/* The log of a transaction's records: "<key length> <key><payload>\n" for each, a payload
 * being one line (no '\n'). */
typedef struct ev_txn_entry {
	const char *key;
	size_t keylen;
	const char *payload;
	size_t len;
} ev_txn_entry;
/* Append one record. Returns 0, or -1 without memory (or a payload holding a '\n'). */
int ev_txn_log_add(ev_buf *log, const char *key, size_t keylen, const char *payload, size_t len);
/* The entry at *pos, which moves past it. Returns 1, 0 at the end, -1 when the log is
 * malformed there. */
int ev_txn_log_next(const ev_buf *log, size_t *pos, ev_txn_entry *e);
/* The records in a log, or -1 when it is malformed. */
int64_t ev_txn_log_count(const ev_buf *log);

#endif
