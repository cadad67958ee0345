/* SPDX-License-Identifier: Apache-2.0 */
/* validate.h: the verdict on one input line against a data contract: valid, or a dead letter. */
#ifndef EV_VALIDATE_H
#define EV_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "schema.h"

/* Why a line is dead-lettered. */
enum ev_reason {
	EV_REASON_PARSE,
	EV_REASON_TRUNCATED,
	EV_REASON_ENCODING,
	EV_REASON_TOO_LONG,
	EV_REASON_DEPTH,
	EV_REASON_DUPLICATE_KEY,
	EV_REASON_SCHEMA,
	EV_REASON_EMBEDDED_NEWLINE, /* kin's rejected record: the payload had a newline or CR */
	EV_REASON_RESERVED,         /* the first key is evpipe's ("__evpipe..."): kin's rejected
				     * record of a payload that read as a control line, or a line
				     * that is neither a record nor a control line */
	EV_REASON_SCHEMA_ID,        /* registry-framed with a schema id the job does not accept */
	EV_REASON_COUNT
};
const char *ev_reason_name(enum ev_reason r);

typedef struct ev_validator_opts {
	size_t max_line;           /* longer lines: too_long */
	int max_depth;             /* deeper nesting: depth */
	int all_errors;            /* report every violation, not just the first */
	const char *meta_field;    /* provenance field (kin --meta-field), or NULL */
	const char *contract_json; /* the dead letters' "contract" (JSON, borrowed), or NULL */
} ev_validator_opts;

typedef struct ev_validator ev_validator;

/* contract is borrowed and must outlive the validator; opts is copied. */
ev_validator *ev_validator_new(const ev_schema *contract, const ev_validator_opts *opts);
void ev_validator_free(ev_validator *v);
/* Judge every line with jansson, without the fast path (which parses with fastjson.h and
 * leaves to jansson every line that it cannot call valid for certain): for tests that compare
 * the two. The verdicts are the same either way. */
void ev_validator_no_fast(ev_validator *v);

typedef struct ev_verdict {
	int valid;
	enum ev_reason reason; /* when not valid */
	const char *path;      /* JSON pointer of the first violation ("" for the whole line) */
	const char *message;
	const char *record; /* valid: the bytes to pass on (the line, or the Kafka message that
			     * a wrapped line carried) */
	size_t record_len;
	int fast; /* valid, and judged so by the fast path alone (jansson was not called) */
} ev_verdict;

/* at for "now": the clock is read when a dead letter is written, not for every line. */
#define EV_VALIDATE_NOW INT64_MIN

/* Judge one line (without its terminator; line_flags from ev_reader_next). When it is not
 * valid and envelope is not NULL, the dead-letter envelope (no newline) is appended to
 * envelope, with lineno and at (epoch ms, or EV_VALIDATE_NOW). Pointers in *out stay valid
 * until the next call. Returns 0, or -1 when out of memory. */
int ev_validator_judge(ev_validator *v, const char *line, size_t len, int line_flags,
		       uint64_t lineno, int64_t at, ev_verdict *out, ev_buf *envelope);

/* Dead-letter a line for a reason found outside the contract (EV_REASON_SCHEMA_ID): *out and
 * envelope (when not NULL) as ev_validator_judge fills them. Returns 0, or -1 when out of
 * memory. */
int ev_validator_reject(ev_validator *v, const char *line, size_t len, enum ev_reason reason,
			const char *message, uint64_t lineno, int64_t at, ev_verdict *out,
			ev_buf *envelope);

#endif
