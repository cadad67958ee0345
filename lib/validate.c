/* SPDX-License-Identifier: Apache-2.0 */
/* validate.c: the verdict on one input line against a data contract: valid, or a dead letter. */
#include "validate.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "codec.h"
#include "control.h"
#include "deadletter.h"
#include "fastjson.h"
#include "json.h"
#include "meta.h"
#include "ndjson.h"
#include "registry.h"

#define MAX_ERRORS 64

static const char *const reason_names[EV_REASON_COUNT] = {"parse",    "truncated",
							  "encoding", "too_long",
							  "depth",    "duplicate_key",
							  "schema",   "embedded_newline",
							  "reserved", "schema_id"};

struct ev_validator {
	const ev_schema *contract;
	ev_validator_opts opts;
	ev_buf orig;  /* original payload of a record that carries provenance */
	ev_buf errjs; /* --all-errors array */
	ev_fj *fj;    /* the fast path's parser; NULL: every line goes to jansson */
	char msg[256];
	ev_schema_error errs[MAX_ERRORS];
};

const char *ev_reason_name(enum ev_reason r)
{
	return (unsigned)r < EV_REASON_COUNT ? reason_names[r] : "unknown";
}

ev_validator *ev_validator_new(const ev_schema *contract, const ev_validator_opts *opts)
{
	ev_validator *v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->contract = contract;
	v->opts = *opts;
	v->fj = ev_fj_new();
	return v;
}

void ev_validator_free(ev_validator *v)
{
	if (!v)
		return;
	ev_buf_free(&v->orig);
	ev_buf_free(&v->errjs);
	ev_fj_free(v->fj);
	free(v);
}

void ev_validator_no_fast(ev_validator *v)
{
	ev_fj_free(v->fj);
	v->fj = NULL;
}

static enum ev_reason parse_reason(const json_error_t *jerr, int line_flags)
{
	switch (json_error_code(jerr)) {
	case json_error_premature_end_of_input: return EV_REASON_TRUNCATED;
	case json_error_duplicate_key: return EV_REASON_DUPLICATE_KEY;
	case json_error_invalid_utf8:
	case json_error_null_character:
	case json_error_null_byte_in_key: return EV_REASON_ENCODING;
	case json_error_invalid_syntax: return EV_REASON_PARSE;
	default: return (line_flags & EV_LINE_NO_NEWLINE) ? EV_REASON_TRUNCATED : EV_REASON_PARSE;
	}
}

static int errors_to_json(ev_validator *v, size_t n)
{
	ev_buf *b = &v->errjs;
	int rc = ev_buf_putc(b, '[');
	for (size_t i = 0; i < n && i < MAX_ERRORS; i++) {
		const ev_schema_error *e = &v->errs[i];
		rc |= ev_buf_puts(b, i ? ",{\"path\":" : "{\"path\":");
		rc |= ev_buf_json_string(b, e->path, strlen(e->path));
		rc |= ev_buf_puts(b, ",\"keyword\":");
		rc |= ev_buf_json_string(b, e->keyword, strlen(e->keyword));
		rc |= ev_buf_puts(b, ",\"message\":");
		rc |= ev_buf_json_string(b, e->message, strlen(e->message));
		rc |= ev_buf_putc(b, '}');
	}
	return rc | ev_buf_putc(b, ']');
}

static int too_long(const ev_validator *v, size_t len, int line_flags)
{
	return (line_flags & EV_LINE_TOO_LONG) || (v->opts.max_line && len > v->opts.max_line);
}

/* The checks that need no parse, in order; returns 1 with *reason set when one fails. */
static int precheck(ev_validator *v, const char *line, size_t len, int line_flags,
		    enum ev_reason *reason)
{
	if (too_long(v, len, line_flags)) {
		snprintf(v->msg, sizeof(v->msg), "line of %zu bytes is over the limit of %zu bytes",
			 len, v->opts.max_line);
		*reason = EV_REASON_TOO_LONG;
		return 1;
	}
	if (!ev_utf8_valid(line, len)) {
		snprintf(v->msg, sizeof(v->msg), "the line is not valid UTF-8");
		*reason = EV_REASON_ENCODING;
		return 1;
	}
	const char *nul = memchr(line, '\0', len);
	if (nul) {
		snprintf(v->msg, sizeof(v->msg), "the line contains a NUL byte at byte %zu",
			 (size_t)(nul - line) + 1);
		*reason = EV_REASON_ENCODING;
		return 1;
	}
	if (v->opts.max_depth > 0 && ev_json_too_deep(line, len, v->opts.max_depth)) {
		snprintf(v->msg, sizeof(v->msg), "nested deeper than the limit of %d",
			 v->opts.max_depth);
		*reason = EV_REASON_DEPTH;
		return 1;
	}
	return 0;
}

/* The fast path: 1 when the line as it is (its provenance left out) is certainly valid; 0
 * when precheck and jansson are to judge it. A line the fast parser reads is UTF-8 without a
 * NUL byte, so of precheck's checks only the length and the depth are left. Nothing is
 * copied. */
static int valid_fast(ev_validator *v, const char *line, size_t len, int line_flags)
{
	size_t n;
	if (too_long(v, len, line_flags))
		return 0;
	const ev_fj_node *nd = ev_fj_parse(v->fj, line, len, &n);
	if (!nd || (v->opts.max_depth > 0 && ev_fj_depth(v->fj) > v->opts.max_depth))
		return 0;
	const char *meta = v->opts.meta_field;
	int found = meta ? ev_meta_find_fj(line, len, meta, nd) : 0;
	return found >= 0 && ev_schema_valid_fast(v->contract, nd, 0, found ? meta : NULL,
						  found ? strlen(meta) : 0);
}

static int dead_letter(ev_validator *v, const ev_verdict *out, const char *raw, size_t raw_len,
		       const ev_meta_span *span, const char *keyword, uint64_t lineno, int64_t at,
		       ev_buf *envelope);

/* 1 with the verdict filled when a wrapped payload could not be passed on as one record line
 * (a line from a file may wrap anything). */
static int unsafe_payload(ev_validator *v, const char *raw, size_t raw_len, ev_verdict *out)
{
	const char *why = ev_control_payload_unsafe(raw, raw_len);
	int32_t id;
	if (!why)
		return 0;
	if (strcmp(why, "schema_id") == 0 && ev_registry_unframe(raw, raw_len, &id)) {
		out->reason = EV_REASON_SCHEMA_ID;
		snprintf(v->msg, sizeof(v->msg),
			 "the message is registry-framed (schema id %" PRId32 ") and was consumed "
			 "without --meta-field: the id cannot go along with the record (kin -C and "
			 "evvalidate --meta-field check it)",
			 id);
		return 1;
	}
	out->reason =
		strcmp(why, "reserved") == 0 ? EV_REASON_RESERVED : EV_REASON_EMBEDDED_NEWLINE;
	snprintf(v->msg, sizeof(v->msg), "%s",
		 out->reason == EV_REASON_RESERVED
			 ? "the payload's first key is evpipe's (\"__evpipe...\"): it would read "
			   "as a control line"
			 : "the payload holds a newline or a carriage return: it would become "
			   "several lines");
	return 1;
}

/* A line whose first key is evpipe's: kin's rejected record (ADR 0013), dead-lettered with the
 * payload's original bytes and provenance, or else a line no tool wrote, dead-lettered as it
 * is. */
static int judge_reserved(ev_validator *v, const char *line, size_t len, uint64_t lineno,
			  int64_t at, ev_verdict *out, ev_buf *envelope)
{
	ev_meta_span span = {NULL, 0, 0};
	ev_buf_reset(&v->orig);
	int found = ev_meta_extract(line, len, EV_META_REJECTED, &span, &v->orig);
	if (found < 0)
		return -1;
	if (found && ev_meta_rejected(&span) &&
	    unsafe_payload(v, v->orig.data ? v->orig.data : "", v->orig.len, out))
		return dead_letter(v, out, v->orig.data ? v->orig.data : "", v->orig.len, &span,
				   NULL, lineno, at, envelope);
	span.json = NULL;
	span.json_len = 0;
	out->reason = EV_REASON_RESERVED;
	snprintf(v->msg, sizeof(v->msg),
		 "the first key is in evpipe's reserved namespace (\"__evpipe...\"), and the "
		 "line is not a control line");
	return dead_letter(v, out, line, len, &span, NULL, lineno, at, envelope);
}
/* The Kafka message's own bytes of a line that carries provenance under --meta-field (kept in
 * v->orig): 1 with *raw, *raw_len and span set, 0 when the line carries none, -1 when out of
 * memory. */
static int original(ev_validator *v, const char *line, size_t len, ev_meta_span *span,
		    const char **raw, size_t *raw_len)
{
	ev_buf_reset(&v->orig);
	if (!v->opts.meta_field)
		return 0;
	int found = ev_meta_extract(line, len, v->opts.meta_field, span, &v->orig);
	if (found > 0) {
		*raw = ev_buf_cstr(&v->orig);
		*raw_len = v->orig.len;
	}
	return found;
}

int ev_validator_judge(ev_validator *v, const char *line, size_t len, int line_flags,
		       uint64_t lineno, int64_t at, ev_verdict *out, ev_buf *envelope)
{
	ev_meta_span span = {NULL, 0, 0};
	const char *raw = line;
	size_t raw_len = len;
	const char *keyword = NULL;

	memset(out, 0, sizeof(*out));
	ev_buf_reset(&v->errjs);
	out->path = "";
	out->message = v->msg;
	if (ev_control_reserved(line, len))
		return judge_reserved(v, line, len, lineno, at, out, envelope);
	if (v->fj && valid_fast(v, line, len, line_flags)) {
		out->valid = out->fast = 1;
		out->record = line;
		out->record_len = len;
		return 0;
	}
	int found = original(v, line, len, &span, &raw, &raw_len);
	if (found < 0)
		return -1;
	if (found && span.wrapped) {
		if (unsafe_payload(v, raw, raw_len, out))
			goto dead;
		/* Judge the Kafka message itself: it is not a JSON object. */
		line = raw;
		len = raw_len;
	}
	if (!precheck(v, line, len, line_flags, &out->reason)) {
		json_error_t jerr;
		json_t *root =
			json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
		if (!root) {
			out->reason = parse_reason(&jerr, line_flags);
			/* jansson quotes the input near the error, possibly cut inside a character. */
			jerr.text[ev_utf8_valid_prefix(jerr.text, strlen(jerr.text))] = '\0';
			snprintf(v->msg, sizeof(v->msg), "%s at byte %d", jerr.text, jerr.position);
		} else {
			if (span.json && !span.wrapped && json_is_object(root))
				json_object_del(root, v->opts.meta_field);
			size_t n = ev_schema_validate(v->contract, root, v->errs,
						      v->opts.all_errors ? MAX_ERRORS : 1);
			json_decref(root);
			if (n == 0) {
				out->valid = 1;
				out->record = line;
				out->record_len = len;
				return 0;
			}
			/* A long path or message is cut to fit its buffer, maybe inside a character. */
			for (size_t i = 0; i < n && i < MAX_ERRORS; i++) {
				ev_schema_error *e = &v->errs[i];
				e->path[ev_utf8_valid_prefix(e->path, strlen(e->path))] = '\0';
				e->message[ev_utf8_valid_prefix(e->message, strlen(e->message))] =
					'\0';
			}
			if (v->opts.all_errors && errors_to_json(v, n) < 0)
				return -1;
			out->reason = EV_REASON_SCHEMA;
			out->path = v->errs[0].path;
			out->message = v->errs[0].message;
			keyword = v->errs[0].keyword;
		}
	}
dead:
	return dead_letter(v, out, raw, raw_len, &span, keyword, lineno, at, envelope);
}

static int dead_letter(ev_validator *v, const ev_verdict *out, const char *raw, size_t raw_len,
		       const ev_meta_span *span, const char *keyword, uint64_t lineno, int64_t at,
		       ev_buf *envelope)
{
	if (!envelope)
		return 0;
	ev_deadletter d = {
		.reason = reason_names[out->reason],
		.path = out->path,
		.keyword = keyword,
		.message = out->message,
		.errors_json = v->errjs.len ? v->errjs.data : NULL,
		.raw = raw,
		.raw_len = raw_len,
		.source_json = span->json,
		.source_len = span->json_len,
		.line = lineno,
		.at = at == EV_VALIDATE_NOW ? ev_wall_ms() : at,
	};
	return ev_deadletter_format_contract(envelope, &d, v->opts.contract_json);
}

int ev_validator_reject(ev_validator *v, const char *line, size_t len, enum ev_reason reason,
			const char *message, uint64_t lineno, int64_t at, ev_verdict *out,
			ev_buf *envelope)
{
	ev_meta_span span = {NULL, 0, 0};
	const char *raw = line;
	size_t raw_len = len;
	memset(out, 0, sizeof(*out));
	snprintf(v->msg, sizeof(v->msg), "%s", message);
	out->reason = reason;
	out->path = "";
	out->message = v->msg;
	if (!envelope)
		return 0;
	if (original(v, line, len, &span, &raw, &raw_len) < 0)
		return -1;
	ev_deadletter d = {
		.reason = ev_reason_name(reason),
		.path = "",
		.message = v->msg,
		.raw = raw,
		.raw_len = raw_len,
		.source_json = span.json,
		.source_len = span.json_len,
		.line = lineno,
		.at = at,
	};
	return ev_deadletter_format_contract(envelope, &d, v->opts.contract_json);
}
