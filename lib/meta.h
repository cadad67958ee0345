/* SPDX-License-Identifier: Apache-2.0 */
/* meta.h: Kafka provenance carried in a reserved field of each record (kin --meta-field). */
#ifndef EV_META_H
#define EV_META_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "fastjson.h"

typedef struct ev_meta {
	const char *topic;
	int32_t partition;
	int64_t offset;
	int64_t ts;
	const char *rejected; /* NULL, or why the payload cannot be a record line as it is
			       * (ev_control_payload_unsafe): it is wrapped, with this reason */
	int has_schema_id;    /* the message was registry-framed (magic byte 0, 4-byte id) */
	int32_t schema_id;
} ev_meta;

/* The member under which kin wraps a payload it rejected (ADR 0013), in place of the
 * provenance field, so that evvalidate dead-letters it with or without --meta-field:
 *   {"__evpipe_rejected":{...,"wrapped":true,"rejected":"REASON"},"payload":"<payload>"} */
#define EV_META_REJECTED "__evpipe_rejected"

/* Append payload with the provenance inserted as its first field:
 *   {"NAME":{"topic":"t","partition":0,"offset":5,"ts":1732400000000},<the payload's fields>}
 * with "schema_id":N after "ts" when the message was registry-framed (the frame itself is not
 * part of payload: the caller strips it).
 * Only the bytes after the payload's opening brace are copied, so the payload is not parsed.
 * A payload that is not a JSON object (judged by its first and last non-blank bytes) is wrapped
 * so that a validator can dead-letter it with its provenance:
 *   {"NAME":{...,"wrapped":true},"payload":"<payload>"}   ("payload_b64" when not UTF-8). */
int ev_meta_insert(ev_buf *out, const char *name, const ev_meta *m, const void *payload,
		   size_t len);

/* The start of the provenance, {"NAME":{"topic":"TOPIC", kept from one message to the next by
 * a caller that writes every message it consumes (ev_meta_insert_cached); zeroed to start,
 * freed with ev_meta_head_free. */
typedef struct ev_meta_head {
	ev_buf key; /* NAME, a NUL, TOPIC: what text was written for */
	ev_buf text;
} ev_meta_head;
void ev_meta_head_free(ev_meta_head *head);

/* ev_meta_insert, the same bytes, the head taken from head when name and the topic are the
 * ones it was written for (written into it otherwise); head NULL: ev_meta_insert. */
int ev_meta_insert_cached(ev_buf *out, ev_meta_head *head, const char *name, const ev_meta *m,
			  const void *payload, size_t len);

/* The provenance of a line written by ev_meta_insert. */
typedef struct ev_meta_span {
	const char *json; /* the provenance object's text, within the line */
	size_t json_len;
	int wrapped; /* the payload was not a JSON object */
} ev_meta_span;

/* When line begins with the field NAME as ev_meta_insert writes it, fill *span and append
 * the original payload bytes to orig (for dead letters: the bytes as they were in Kafka).
 * Returns 1 when found, 0 when the line does not begin with it. */
int ev_meta_extract(const char *line, size_t len, const char *name, ev_meta_span *span,
		    ev_buf *orig);

/* The "schema_id" of the provenance NAME at the start of line (as ev_meta_insert writes it):
 * 1 with *id set, 0 when there is none. Reads only the provenance's text. */
int ev_meta_schema_id(const char *line, size_t len, const char *name, int32_t *id);
/* Append line to out without the "schema_id" member of its provenance NAME (as ev_meta_insert
 * writes it): the record as if its message had not been registry-framed. 1 when it was there
 * (out filled), 0 when not (out untouched), -1 when out of memory. */
int ev_meta_drop_schema_id(ev_buf *out, const char *line, size_t len, const char *name);
/* True when the provenance in span (ev_meta_extract) says that kin rejected the payload
 * (ev_meta's rejected). */
int ev_meta_rejected(const ev_meta_span *span);

/* What ev_meta_extract would find in line, from the fast parser's nodes of the whole line (nd,
 * the root at 0), with nothing copied: 1 when the line begins with the provenance NAME and it
 * is not wrapped (the payload is the line without that member), 0 when the line does not begin
 * with it, -1 when it is wrapped or when only ev_meta_extract can tell. */
int ev_meta_find_fj(const char *line, size_t len, const char *name, const ev_fj_node *nd);

#endif
