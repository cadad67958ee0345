/* SPDX-License-Identifier: Apache-2.0 */
/* kin.h: kin's state and the helpers its files share (kin.c: options and set-up,
 * kin_consume.c, kin_produce.c, kin_meta.c). Private to the kin tool. */
#ifndef KIN_H
#define KIN_H

#include <jansson.h>
#include <stdint.h>

#include "ack.h"
#include "buf.h"
#include "checkpoint.h"
#include "coordinator.h"
#include "kafka.h"
#include "meta.h"
#include "metrics.h"
#include "msgfmt.h"
#include "ndjson.h"
#include "tool.h"

#define MAX_TOPICS 64

enum start_kind {
	START_DEFAULT,
	START_BEGINNING,
	START_END,
	START_STORED,
	START_ABS,
	START_TAIL,
	START_TIME
};

struct kin {
	/* options */
	int mode;
	ev_kafka_opts kafka;
	const char *topics[MAX_TOPICS];
	int ntopics;
	int32_t partition;
	enum start_kind start;
	int64_t start_value;
	int64_t end_ts; /* e@: stop a partition at this timestamp; -1: none */
	int exit_eof;
	int64_t max_count;
	const char *group;
	int json;
	const char *key;
	const char *key_field;
	int32_t schema_id; /* produce registry-framed messages (0: no) */
	const char *subject;
	ev_buf frame;
	const char *meta_field;
	uint64_t max_line;
	char **files; /* -P: FILE arguments, each one message; with -l, inputs of lines (- stdin) */
	size_t nfiles;
	int idempotence;
	/* kcat's options */
	const char *format;          /* -f */
	const char *delim;           /* -D, with kcat's escapes */
	const char *key_delim;       /* -K, with kcat's escapes */
	int print_offset;            /* -O */
	int null_str;                /* -Z */
	int unbuffered;              /* -u */
	int keep_going;              /* -E: what would stop kin is reported and passed over */
	int tee;                     /* -T */
	int line_file;               /* -l */
	int conf_dump;               /* -X dump */
	rd_kafka_headers_t *headers; /* -H: added to every message produced */
	const char *compression;     /* -z */
	ev_msgfmt *fmt;         /* consuming: -f, or the format -K, -D, -O, -Z make; NULL: lines */
	ev_buf delim_bytes;     /* -D unescaped ("\n" without it) */
	ev_buf key_delim_bytes; /* -K unescaped */
	ev_tool_common common;
	ev_ckpt ck;
	ev_coord_opts co;
	const char *expect[32];

	ev_coord *coord;                 /* NULL: no checkpoints */
	ev_ckpt_offsets restore_offsets; /* of the restored checkpoint (empty: none) */
	ev_ckpt_offsets handed; /* where this kin's output left each partition revoked from it
				 * (its revoke line's offset): a partition assigned again resumes
				 * there (ADR 0025) */
	int settled;            /* the end or stop line is written: no assignment lines after */
	int cooperative;        /* the group's rebalance protocol, as last known */
	int out_failed;         /* writing an assignment line failed (errno kept) */
	int told_unassigned;    /* 1 once all_done said it waits for a restored partition */
	const char *ack_spec;   /* --commit-on-ack */
	ev_ack_in *ack;         /* NULL: no commits on acknowledgements */
	json_t *marks;          /* [{"id":N,"offsets":{...}}] of barriers not acknowledged yet */
	json_t *mark_offsets;   /* the offsets of the last barrier injected */
	int64_t mark_id, mark_ms;

	/* the group's committed offset of each partition assigned with no position here: where
	 * another copy's last complete checkpoint left it, its state there (ADR 0025, 5.2) */
	ev_ckpt_offsets committed;

	/* run time */
	rd_kafka_t *rk;
	ev_writer *out;
	ev_metrics *metrics;
	ev_counter *m_in, *m_out, *m_bytes_in, *m_bytes_out, *m_delivery_errors, *m_rebalances;
	ev_counter *m_blocked, *m_skipped_control, *m_rejected_too_long;
	ev_counter *m_rejected_envelope, *m_rejected_newline, *m_rejected_reserved;
	ev_counter *m_stale;
	ev_gauge *m_owned;
	ev_histogram *m_handover_wait;
	ev_counter *m_handover_timeouts;
	ev_counter *m_rejected_schema_id;
	struct part *parts;
	size_t nparts, capparts;
	size_t last_part;
	ev_kafka_delivery dl;
	uint64_t produced; /* messages queued, for -P -c */
	int fatal;
	int stopped_by_checkpoints; /* too many failed: reported, the job stops */
	int64_t committed_due;      /* a checkpoint complete, its committed line not written yet */
	ev_meta_head meta_head; /* --meta-field: the provenance's start, kept between messages */
};

/* A partition this consumer reads: end-of-partition state and the offset to store
 * once what was read from it has been written out. */
struct part {
	char *topic;
	int32_t partition;
	int eof;
	int done;        /* e@ reached */
	int64_t pending; /* next offset to store, -1 when none */
	int64_t written; /* next offset after what was written out, -1 when none */
	int64_t start;   /* the offset it was assigned at, -1 when the group's committed one */
	ev_gauge *lag;
};

/* The partition's entry, created when create is set (NULL when out of memory or not found). */
struct part *kin_part_find(struct kin *k, const char *topic, int32_t partition, int create);
void kin_parts_clear(struct kin *k);
/* Set a client property; reported on failure. Returns 0 or -1. */
int kin_conf_set(rd_kafka_conf_t *conf, const char *key, const char *val);
/* Create k->rk from k->kafka.conf (which it takes). Returns 0 or -1 (reported). */
int kin_make_client(struct kin *k, rd_kafka_type_t type);
/* Wait for the brokers (and rkt's metadata when md is set). Returns 0 or -1 (reported). */
int kin_probe_brokers(struct kin *k, const struct rd_kafka_metadata **md, rd_kafka_topic_t *rkt);

/* The modes; each returns the exit status. */
int kin_consume(struct kin *k);
int kin_produce(struct kin *k);
int kin_list_metadata(struct kin *k);
int kin_query_offsets(struct kin *k);
/* -Q's "topic:partition:timestamp" queries checked, each partition asked for once: 0, or -1
 * with a message in err. */
int kin_query_check(const struct kin *k, char *err, size_t errlen);
/* Consuming with -f, -K, -D, -O or -Z: compile the format into k->fmt. Returns 0, or -1 with
 * a message in err. */
int kin_format_setup(struct kin *k, char *err, size_t errlen);
/* ev_writer_set_tick's callback while consuming. */
int kin_output_blocked(void *arg);
/* The group's committed offsets (ev_ckpt_committed_fn), for pruning hand-over objects. */
int kin_committed_offsets(ev_ckpt_offsets *o, void *arg);

#endif
