/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_validate.c: libFuzzer harness for evvalidate's line-to-verdict path (ev_validator_judge). */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "meta.h"
#include "ndjson.h"
#include "schema.h"
#include "validate.h"

#ifndef EVPIPE_CONTRACT_DEFAULT
#define EVPIPE_CONTRACT_DEFAULT "contracts/event.schema.json"
#endif

#define META_FIELD "_src"
#define AT_MS 1732400000000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ev_schema *contract;
static ev_validator *validators[2]; /* [all_errors] */
static ev_validator *jansson_only;  /* without the fast path (lib/fastjson.h) */
static ev_buf envelope, envelope_jansson;
static uint64_t lineno;

static void fail(const char *what, const uint8_t *data, size_t size, const ev_buf *env)
{
	fprintf(stderr, "fuzz_validate: invariant failed: %s\n", what);
	fprintf(stderr, "fuzz_validate: input (%zu bytes): ", size);
	fwrite(data, 1, size, stderr);
	if (env && env->len) {
		fprintf(stderr, "\nfuzz_validate: envelope (%zu bytes): ", env->len);
		fwrite(env->data, 1, env->len, stderr);
	}
	fputc('\n', stderr);
	abort();
}

static void setup(void)
{
	const char *path = getenv("EVPIPE_CONTRACT");
	char err[512];

	if (!path || !*path)
		path = EVPIPE_CONTRACT_DEFAULT;
	contract = ev_schema_load_file(path, err, sizeof(err));
	if (!contract) {
		fprintf(stderr, "fuzz_validate: contract '%s': %s\n", path, err);
		abort();
	}
	for (int all = 0; all < 2; all++) {
		ev_validator_opts o = {
			.max_line = 1 << 20, /* evvalidate's defaults */
			.max_depth = 64,
			.all_errors = all,
			.meta_field = META_FIELD,
		};
		validators[all] = ev_validator_new(contract, &o);
		if (!validators[all])
			abort();
		if (!all) {
			if (!(jansson_only = ev_validator_new(contract, &o)))
				abort();
			ev_validator_no_fast(jansson_only);
		}
	}
}

/* Standard padded base64, decoded without the library's decoder; -1 on malformed text. */
static int b64_decode(ev_buf *out, const char *s, size_t n)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint32_t acc = 0;
	int bits = 0;
	size_t pad = 0;

	if (n % 4)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '=') {
			if (i < n - 2)
				return -1;
			pad++;
			continue;
		}
		const char *p = s[i] ? strchr(alphabet, s[i]) : NULL;
		if (!p || pad)
			return -1;
		acc = acc << 6 | (uint32_t)(p - alphabet);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (ev_buf_putc(out, (char)(acc >> bits)) < 0)
				return -1;
		}
	}
	return 0;
}

/* Well-formed UTF-8, as jansson judges it (independently of lib/codec.c). */
static int utf8(const char *s)
{
	json_t *t = json_string(s);
	json_decref(t);
	return t != NULL;
}

static int same_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* The dead letter's envelope: JSON, the verdict's reason, and the original bytes in raw. */
static void check_envelope(const uint8_t *data, size_t size, const ev_verdict *vd, const char *want,
			   size_t want_len, const ev_meta_span *span)
{
	json_error_t jerr;
	json_t *env = json_loadb(envelope.data, envelope.len, JSON_ALLOW_NUL, &jerr);
	if (!json_is_object(env))
		fail("the envelope is not a JSON object", data, size, &envelope);
	const char *reason = json_string_value(json_object_get(env, "reason"));
	if (!reason)
		fail("the envelope has no \"reason\" string", data, size, &envelope);
	if (strcmp(reason, ev_reason_name(vd->reason)) != 0)
		fail("the envelope's reason is not the verdict's", data, size, &envelope);

	json_t *raw = json_object_get(env, "raw");
	json_t *raw_b64 = json_object_get(env, "raw_b64");
	if (!raw == !raw_b64)
		fail("the envelope wants exactly one of raw and raw_b64", data, size, &envelope);
	if (raw) {
		if (!json_is_string(raw) ||
		    !same_bytes(json_string_value(raw), json_string_length(raw), want, want_len))
			fail("raw is not the original bytes", data, size, &envelope);
	} else {
		ev_buf dec = EV_BUF_INIT;
		if (!json_is_string(raw_b64) ||
		    b64_decode(&dec, json_string_value(raw_b64), json_string_length(raw_b64)) < 0)
			fail("raw_b64 is not base64", data, size, &envelope);
		if (!same_bytes(dec.data, dec.len, want, want_len))
			fail("raw_b64 does not decode to the original bytes", data, size,
			     &envelope);
		ev_buf_free(&dec);
	}

	/* ev_meta_extract fills span even for a wrapped line without a payload (it returns 0
	 * then): the validator copies the provenance whenever span has it. */
	json_t *source = json_object_get(env, "source");
	if (span->json) {
		json_t *src = json_loadb(span->json, span->json_len, 0, NULL);
		if (!json_is_object(source) || !json_equal(source, src))
			fail("\"source\" is not the line's provenance", data, size, &envelope);
		json_decref(src);
	} else if (source) {
		fail("\"source\" without provenance in the line", data, size, &envelope);
	}
	if (json_integer_value(json_object_get(env, "line")) != (json_int_t)lineno)
		fail("\"line\" is not the line number", data, size, &envelope);
	if (json_integer_value(json_object_get(env, "at")) != AT_MS)
		fail("\"at\" is not the time given", data, size, &envelope);
	if (vd->reason == EV_REASON_SCHEMA) {
		json_t *error = json_object_get(env, "error");
		if (!json_is_string(json_object_get(error, "keyword")) ||
		    !json_is_string(json_object_get(error, "path")))
			fail("a schema dead letter without error.keyword and error.path", data,
			     size, &envelope);
	}
	json_decref(env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	int all = size > 0 && (data[0] & 1);
	int flags = (size & 1) ? EV_LINE_NO_NEWLINE : 0;
	ev_verdict vd, other;
	ev_meta_span span = {NULL, 0, 0};
	ev_buf orig = EV_BUF_INIT;

	if (!contract)
		setup();
	if (size % 16 == 15)
		flags |= EV_LINE_TOO_LONG; /* as the reader marks a line over --max-line-bytes */
	lineno++;
	ev_buf_reset(&envelope);
	if (ev_validator_judge(validators[all], line, size, flags, lineno, AT_MS, &vd, &envelope) <
	    0)
		fail("ev_validator_judge failed", data, size, NULL);

	/* What the validator should report as the original bytes, and judge. */
	int found = ev_meta_extract(line, size, META_FIELD, &span, &orig);
	if (found < 0)
		fail("ev_meta_extract failed", data, size, NULL);
	const char *want = found ? ev_buf_cstr(&orig) : line;
	size_t want_len = found ? orig.len : size;
	int bad_span = 0;
	if (span.json) {
		/* The provenance span is the whole object as the line has it, '}' included. */
		json_t *src = json_loadb(span.json, span.json_len, 0, NULL);
		bad_span = !json_is_object(src) || span.json[span.json_len - 1] != '}';
		json_decref(src);
		if (bad_span)
			fail("the provenance span is not the object's text", data, size, NULL);
	}

	if ((unsigned)vd.reason >= EV_REASON_COUNT || !vd.path || !vd.message)
		fail("the verdict's reason, path or message is unset", data, size, NULL);
	if (!utf8(vd.path) || !utf8(vd.message))
		fail("the verdict's path or message is not UTF-8", data, size, NULL);
	if (vd.valid) {
		/* The record passed on is the judged line: the line, or a wrapped message. */
		const char *judged = found && span.wrapped ? want : line;
		size_t judged_len = found && span.wrapped ? want_len : size;
		if (!vd.record || !same_bytes(vd.record, vd.record_len, judged, judged_len))
			fail("a valid record is not the judged line", data, size, NULL);
		json_t *rec = json_loadb(vd.record, vd.record_len, JSON_REJECT_DUPLICATES, NULL);
		if (!json_is_object(rec))
			fail("a valid record is not a JSON object", data, size, NULL);
		json_decref(rec);
		if (envelope.len)
			fail("an envelope for a valid record", data, size, &envelope);
	} else {
		if (vd.reason == EV_REASON_SCHEMA && *vd.path && *vd.path != '/')
			fail("a violation's path is not a JSON pointer", data, size, NULL);
		/* A message that is not UTF-8 or a bad span spoils the envelope: reported above. */
		if (utf8(vd.message) && !bad_span)
			check_envelope(data, size, &vd, want, want_len, &span);
	}

	/* --all-errors changes what is reported, never the verdict. */
	int valid = vd.valid;
	enum ev_reason reason = vd.reason;
	if (ev_validator_judge(validators[!all], line, size, flags, lineno, AT_MS, &other, NULL) <
	    0)
		fail("ev_validator_judge failed", data, size, NULL);
	if (other.valid != valid || (!valid && other.reason != reason))
		fail("--all-errors changed the verdict", data, size, NULL);

	/* The fast path decides only what jansson would: the same verdict and dead letter. */
	if (!all) {
		ev_buf_reset(&envelope_jansson);
		if (ev_validator_judge(jansson_only, line, size, flags, lineno, AT_MS, &other,
				       &envelope_jansson) < 0)
			fail("ev_validator_judge failed", data, size, NULL);
		if (other.valid != valid || other.reason != reason ||
		    !same_bytes(envelope.data, envelope.len, envelope_jansson.data,
				envelope_jansson.len) ||
		    (valid &&
		     !same_bytes(vd.record, vd.record_len, other.record, other.record_len)))
			fail("the fast path and jansson disagree", data, size, &envelope);
	}

	ev_buf_free(&orig);
	return 0;
}
