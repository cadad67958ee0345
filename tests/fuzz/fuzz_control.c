/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_control.c: libFuzzer harness for control lines (lib/control.c) and for what kin writes
 * of a consumed payload (lib/meta.c): a payload never becomes a control line or two lines. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "control.h"
#include "meta.h"

#define META_FIELD "_src"
#define NOW_MS 1732400000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const uint8_t *data, size_t size, const ev_buf *line)
{
	fprintf(stderr, "fuzz_control: invariant failed: %s\n", what);
	fprintf(stderr, "fuzz_control: input (%zu bytes): ", size);
	fwrite(data, 1, size, stderr);
	if (line && line->len) {
		fprintf(stderr, "\nfuzz_control: line (%zu bytes): ", line->len);
		fwrite(line->data, 1, line->len, stderr);
	}
	fputc('\n', stderr);
	abort();
}

static int same_control(const ev_control *a, const ev_control *b)
{
	return a->type == b->type && a->id == b->id && a->ts == b->ts;
}

/* An accepted assign or revoke line lists partitions that kin writes again as the same
 * partitions, in one control line that is accepted. */
static void check_parts(const uint8_t *data, size_t size, enum ev_control_type type)
{
	char err[512];
	ev_control_part *parts, *again;
	size_t n, m;
	ev_buf out = EV_BUF_INIT;
	ev_control c;
	ev_control_seq seq;
	if (ev_control_partitions((const char *)data, size, &parts, &n, err, sizeof(err)) < 0)
		fail("the partitions of an accepted line cannot be listed", data, size, NULL);
	if (ev_control_format_parts(&out, type, parts, n) < 0)
		fail("ev_control_format_parts failed", data, size, NULL);
	ev_control_seq_init(&seq, 0);
	if (!ev_control_is(out.data, out.len) || memchr(out.data, '\n', out.len) ||
	    ev_control_check(&seq, out.data, out.len, NOW_MS, &c, err, sizeof(err)) < 0 ||
	    c.type != type)
		fail("a formatted assignment is not one accepted control line", data, size, &out);
	if (ev_control_partitions(out.data, out.len, &again, &m, err, sizeof(err)) < 0 || m != n)
		fail("a formatted assignment lists other partitions", data, size, &out);
	for (size_t i = 0; i < n; i++)
		if (strcmp(parts[i].topic, again[i].topic) != 0 ||
		    parts[i].partition != again[i].partition || parts[i].offset != again[i].offset)
			fail("a formatted assignment lists other partitions", data, size, &out);
	ev_control_parts_free(parts, n);
	ev_control_parts_free(again, m);
	ev_buf_free(&out);
}

/* A line that ev_control_check accepts is one evpipe's tools write again as a control line
 * that parses and checks to the same control. */
static void check_control(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	char err[512];
	ev_control c, again;
	ev_control_seq seq, copy;
	ev_buf out = EV_BUF_INIT;

	/* The restored checkpoint: from the first byte, so that some barriers follow it. */
	ev_control_seq_init(&seq, size ? data[0] % 4 : 0);
	copy = seq;
	int parsed = ev_control_parse(line, size, &c, err, sizeof(err)) == 0;
	if (!parsed && !*err)
		fail("ev_control_parse failed without a message", data, size, NULL);
	err[0] = '\0';
	if (ev_control_check(&seq, line, size, NOW_MS, &c, err, sizeof(err)) < 0) {
		if (!*err)
			fail("ev_control_check failed without a message", data, size, NULL);
		if (seq.last_id != copy.last_id || seq.seen != copy.seen)
			fail("a refused control line advanced the sequence", data, size, NULL);
		return;
	}
	if (!parsed)
		fail("ev_control_check accepted what ev_control_parse refuses", data, size, NULL);
	if (c.type == EV_CTL_OTHER)
		fail("ev_control_check accepted an unknown type", data, size, NULL);
	if (c.type == EV_CTL_BARRIER && (c.id <= copy.last_id || c.id > EV_CONTROL_MAX_ID))
		fail("ev_control_check accepted an impossible barrier id", data, size, NULL);
	if (c.type == EV_CTL_ASSIGN || c.type == EV_CTL_REVOKE) {
		check_parts(data, size, c.type);
		return;
	}
	if (ev_control_format(&out, &c) < 0)
		fail("ev_control_format failed", data, size, NULL);
	if (!ev_control_is(out.data, out.len) || memchr(out.data, '\n', out.len))
		fail("a formatted control line is not one control line", data, size, &out);
	if (ev_control_parse(out.data, out.len, &again, err, sizeof(err)) < 0 ||
	    !same_control(&c, &again))
		fail("a formatted control line parses to another control", data, size, &out);
	if (ev_control_check(&copy, out.data, out.len, NOW_MS, &again, err, sizeof(err)) < 0 ||
	    !same_control(&c, &again))
		fail("a formatted control line does not check as the original", data, size, &out);
	ev_buf_free(&out);
}

/* kin's line for a payload: one line that is not a control line, from which evvalidate gets
 * the payload's bytes back (ev_meta_extract), whether it is safe or rejected. */
static void check_payload(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	const char *unsafe = ev_control_payload_unsafe(p, size);
	const char *name = unsafe ? EV_META_REJECTED : META_FIELD;
	ev_meta m = {"events", (int32_t)(size % 7) - 1, (int64_t)size * 1000 - 1, NOW_MS, unsafe, 0,
		     0};
	ev_buf line = EV_BUF_INIT, orig = EV_BUF_INIT;
	ev_meta_span span = {NULL, 0, 0};

	if (unsafe && strcmp(unsafe, "reserved") != 0 && strcmp(unsafe, "embedded_newline") != 0 &&
	    strcmp(unsafe, "schema_id") != 0)
		fail("an unknown reason", data, size, NULL);
	if (!unsafe && (memchr(p, '\n', size) || memchr(p, '\r', size) || ev_control_is(p, size) ||
			ev_control_reserved(p, size)))
		fail("a safe payload is several lines or a control line as it is", data, size,
		     NULL);
	if (ev_meta_insert(&line, name, &m, p, size) < 0)
		fail("ev_meta_insert failed", data, size, NULL);
	if (memchr(line.data, '\n', line.len) || memchr(line.data, '\r', line.len))
		fail("kin's line is several lines", data, size, &line);
	if (ev_control_is(line.data, line.len))
		fail("kin's line is a control line", data, size, &line);
	if (!unsafe && ev_control_reserved(line.data, line.len))
		fail("kin's line for a safe payload is reserved", data, size, &line);
	if (ev_meta_extract(line.data, line.len, name, &span, &orig) != 1)
		fail("ev_meta_extract does not find kin's provenance", data, size, &line);
	if (orig.len != size || (size && memcmp(orig.data, p, size) != 0))
		fail("ev_meta_extract does not give back the payload", data, size, &line);
	if (!!unsafe != ev_meta_rejected(&span))
		fail("ev_meta_rejected does not tell a rejected payload", data, size, &line);
	ev_buf_free(&line);
	ev_buf_free(&orig);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int is = ev_control_is((const char *)data, size);
	if (is && !ev_control_reserved((const char *)data, size))
		fail("a control line is not reserved", data, size, NULL);
	check_control(data, size);
	check_payload(data, size);
	return 0;
}
