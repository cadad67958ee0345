/* SPDX-License-Identifier: Apache-2.0 */
/* control.h: in-band control lines ({"__evpipe":...}): watermarks, barriers, assignments. */
#ifndef EV_CONTROL_H
#define EV_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum ev_control_type {
	EV_CTL_OTHER = 0, /* a control line of a kind this build does not know: forward it */
	EV_CTL_WATERMARK,
	EV_CTL_BARRIER,
	EV_CTL_ASSIGN,
	EV_CTL_REVOKE,
	EV_CTL_STOP, /* the source was stopped, the stream is not finished: the end of input that
		      * follows suspends it (state is kept for a restart), it does not end it */
	EV_CTL_END,  /* the source reached the end it was asked to stop at: the stream is finished
		      * (with checkpoints, only this makes the end of input fire every window) */
	EV_CTL_COMMITTED, /* checkpoint id is complete: its manifest is written (the coordinator
			   * writes it after the manifest; sinks commit their transactions) */
};

/* A partition named by an assign or revoke line. */
typedef struct ev_control_part {
	char *topic; /* a Kafka topic name: 1 to 249 of [A-Za-z0-9._-] */
	int32_t partition;
	int64_t offset; /* the partition's next offset at this point of the stream (assign: where
			 * its records that follow begin; revoke: after the last one written);
			 * -1 when not known */
} ev_control_part;

typedef struct ev_control {
	enum ev_control_type type;
	int64_t id; /* barrier or committed checkpoint id */
	int64_t ts; /* watermark or barrier time, epoch ms */
} ev_control;

/* At most this many partitions in one assign or revoke line. */
#define EV_CONTROL_MAX_PARTS 1000000

/* True when the line is a control line: a JSON object whose first key is "__evpipe".
 * Decided from the prefix alone, without parsing. */
int ev_control_is(const char *line, size_t len);
/* Parse a control line. Returns 0, or -1 with a message in err when it is malformed. */
int ev_control_parse(const char *line, size_t len, ev_control *c, char *err, size_t errlen);
/* The partitions of an assign or revoke line, checked as ev_control_parse does:
 * {"__evpipe":"assign","partitions":[{"topic":"events","partition":0,"offset":42},...]}
 * ("offset" absent when not known), or of a barrier line (none when it has no list). Returns 0 with *parts (free with ev_control_parts_free)
 * and *n, or -1 with a message in err. */
int ev_control_partitions(const char *line, size_t len, ev_control_part **parts, size_t *n,
			  char *err, size_t errlen);
void ev_control_parts_free(ev_control_part *parts, size_t n);
/* Append the control line for c (no newline); for an assign or revoke line, one without
 * partitions. */
int ev_control_format(ev_buf *out, const ev_control *c);
/* Append the assign or revoke line (type) of the n partitions (no newline). Returns 0, or -1
 * when a topic is not a Kafka topic name (never written unescaped). */
int ev_control_format_parts(ev_buf *out, enum ev_control_type type, const ev_control_part *parts,
			    size_t n);
/* Append barrier id (time ts) with the n partitions its coordinator owns and their offsets
 * at this point of the stream (no newline): {"__evpipe":"barrier","id":..,"ts":..,
 * "partitions":[...]}, so that a stateful stage's part of the checkpoint holds each
 * partition's state as of that offset (ADR 0025). Returns 0, or -1 as
 * ev_control_format_parts. */
int ev_control_format_barrier(ev_buf *out, int64_t id, int64_t ts, const ev_control_part *parts,
			      size_t n);
const char *ev_control_type_name(enum ev_control_type type);

/* Why a consumed payload (a Kafka message) cannot be written as a record line as it is:
 * "schema_id" when it is registry-framed (a byte 0 and a 4-byte schema id before the JSON,
 * EV_REGISTRY_FRAME_LEN bytes at least: NUL bytes, maybe a newline; only kin --meta-field can
 * take the frame off and keep its id), "embedded_newline" when it holds a '\n' or a '\r' (it
 * would become two lines, or two to a reader that splits on CR), "reserved" when its first key
 * begins with "__evpipe" (it would read as a control line or as a rejected record); NULL when
 * it can. */
const char *ev_control_payload_unsafe(const void *payload, size_t len);
/* True when the line is an object whose first key begins with "__evpipe" (control lines,
 * rejected records: the names only evpipe's tools write). */
int ev_control_reserved(const char *line, size_t len);

/* The control lines a stage has seen, to refuse those evpipe's own tools could not have
 * written (ADR 0013): a barrier id that is not above the last one (or the restored
 * checkpoint's), not positive, over EV_CONTROL_MAX_ID or more than EV_CONTROL_MAX_ID_JUMP
 * past the last one seen; a committed id whose barrier this stage has not seen in this run,
 * or not above the last committed id (ADR 0021); a watermark more than
 * EV_CONTROL_MAX_FUTURE_MS ahead of the wall clock (other than +infinity at the end of a
 * stream); a type this build does not know; an assign or revoke line whose partitions are not
 * a list of Kafka topic names, partition numbers and offsets from 0. */
#define EV_CONTROL_MAX_ID 9999999999LL /* ten digits: the store's chk-<N> */
#define EV_CONTROL_MAX_ID_JUMP 1000000
#define EV_CONTROL_MAX_FUTURE_MS (7LL * 24 * 3600 * 1000)
typedef struct ev_control_seq {
	int64_t last_id;   /* the last barrier seen, else the restored checkpoint (0: none) */
	int seen;          /* a barrier was seen in this run */
	int64_t committed; /* the last committed checkpoint seen in this run (0: none) */
	int64_t future_ms; /* 0: EV_CONTROL_MAX_FUTURE_MS */
} ev_control_seq;
/* Start a sequence after the restored checkpoint restored_id (0 when none). */
void ev_control_seq_init(ev_control_seq *s, int64_t restored_id);
/* Parse line and check it against the sequence (which it then advances). Returns 0, or -1
 * with a message in err when the line is malformed or impossible. */
int ev_control_check(ev_control_seq *s, const char *line, size_t len, int64_t now_ms, ev_control *c,
		     char *err, size_t errlen);

#endif
