/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_record.c: libFuzzer harness for evwindow's record reader (lib/record.c): the fast path
 * (simdjson's nodes) and the reference (jansson, EVPIPE_FASTJSON=0) read every line alike. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Two settings: scalar keys, and a key that may be nested (which only jansson reads). */
#define SETTINGS 2
static const char *const keys[SETTINGS][2] = {{"user_id", "event_type"}, {"props", "user_id"}};
static const char *const aggs[SETTINGS] = {
	"count,sum:value,min:value,max:amount,avg:amount,uniq:user_id,first:value,last:props",
	"count,n=uniq:props,first:ts,last:value,sum:amount"};
static ev_agg_spec *specs[SETTINGS];
static size_t nspecs[SETTINGS];
static ev_record_opts opts[SETTINGS];
static ev_record_reader *fast[SETTINGS], *ref[SETTINGS];

static void fail(const char *what, const uint8_t *data, size_t size)
{
	fprintf(stderr, "fuzz_record: invariant failed: %s\n", what);
	fprintf(stderr, "fuzz_record: input (%zu bytes): ", size);
	fwrite(data, 1, size, stderr);
	fputc('\n', stderr);
	abort();
}

static void setup(void)
{
	char err[256];
	for (int s = 0; s < SETTINGS; s++) {
		if (ev_agg_parse(aggs[s], &specs[s], &nspecs[s], err, sizeof(err)) < 0) {
			fprintf(stderr, "fuzz_record: %s\n", err);
			abort();
		}
		opts[s] = (ev_record_opts){.ts_field = "ts",
					   .keys = keys[s],
					   .nkeys = 2,
					   .aggs = specs[s],
					   .naggs = nspecs[s],
					   .meta_field = s ? NULL : "_src"};
		fast[s] = ev_record_reader_new(&opts[s]);
		setenv("EVPIPE_FASTJSON", "0", 1); /* read at ev_record_reader_new */
		ref[s] = ev_record_reader_new(&opts[s]);
		unsetenv("EVPIPE_FASTJSON");
		if (!fast[s] || !ref[s])
			abort();
	}
}

static int same_text(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static int same_value(const ev_agg_value *a, const ev_agg_value *b)
{
	if (a->kind != b->kind)
		return 0;
	if (a->kind == EV_AV_INT && a->i != b->i)
		return 0;
	if ((a->kind == EV_AV_INT || a->kind == EV_AV_REAL) &&
	    (a->d != b->d || signbit(a->d) != signbit(b->d)))
		return 0;
	if (!a->text != !b->text)
		return 0;
	return !a->text || same_text(a->text, a->text_len, b->text, b->text_len);
}

/* The fast reader's record, copied before the reference reads (a record lives until the
 * reader's next read; the two readers are distinct, but keep the comparison plain). */
static void compare(int s, const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	ev_record a, b;
	ev_record_error wa, wb;
	memset(&wa, 0, sizeof(wa));
	memset(&wb, 0, sizeof(wb));
	int ra = ev_record_read(fast[s], line, size, &a, &wa);
	int rb = ev_record_read(ref[s], line, size, &b, &wb);
	if (ra < 0 || rb < 0)
		fail("ev_record_read failed", data, size);
	if (ra != rb)
		fail(ra == 0 ? "the fast path accepts what the reference refuses"
			     : "the fast path refuses what the reference accepts",
		     data, size);
	if (ra == 1) {
		if (!wa.reason || !wb.reason || strcmp(wa.reason, wb.reason) != 0 ||
		    strcmp(wa.path, wb.path) != 0 || strcmp(wa.message, wb.message) != 0)
			fail("the two paths give another dead letter", data, size);
		return;
	}
	if (a.ts != b.ts)
		fail("the two paths read another event time", data, size);
	if (!same_text(a.key, a.keylen, b.key, b.keylen))
		fail("the two paths read another key", data, size);
	if (a.partition != b.partition)
		fail("the two paths read another partition", data, size);
	for (size_t i = 0; i < nspecs[s]; i++)
		if (!same_value(&a.values[i], &b.values[i]))
			fail("the two paths read another value", data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!fast[0])
		setup();
	for (int s = 0; s < SETTINGS; s++)
		compare(s, data, size);
	return 0;
}
