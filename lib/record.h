/* SPDX-License-Identifier: Apache-2.0 */
/* record.h: what windowing reads from a record (event time, key, aggregate values,
 * partition), with the fast parser and, for what it leaves, jansson, through one reader. */
#ifndef EV_RECORD_H
#define EV_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "agg.h"

typedef struct ev_record_opts {
	const char *ts_field;    /* event time: epoch ms or RFC 3339 */
	const char *const *keys; /* key fields */
	int nkeys;
	const ev_agg_spec *aggs; /* the aggregates whose fields are read */
	size_t naggs;
	const char *meta_field; /* kin's provenance field (topic, partition); NULL: none */
} ev_record_opts;

/* A record as windows need it; valid until the next read. */
typedef struct ev_record {
	int64_t ts;
	uint64_t partition; /* ev_window_partition of the provenance, 0 without one */
	const char *topic;  /* the provenance's topic ("" without one) */
	size_t topic_len;
	int64_t src_partition; /* the provenance's partition, -1 without one */
	const char *key;       /* "k1":v1,"k2":v2 as rows carry it; "" without keys */
	size_t keylen;
	const ev_agg_value *values; /* one per aggregate */
} ev_record;

/* Why a record cannot be windowed (a dead letter): reason missing_ts, bad_ts, missing_key,
 * bad_value or parse; path the JSON pointer of the field ("" for parse). */
typedef struct ev_record_error {
	const char *reason;
	char path[160];
	char message[256];
} ev_record_error;

typedef struct ev_record_reader ev_record_reader;

/* A reader over o (copied; what it points to must outlive the reader). NULL when out of
 * memory. With EVPIPE_FASTJSON=0 in the environment every record is read by jansson. */
ev_record_reader *ev_record_reader_new(const ev_record_opts *o);
void ev_record_reader_free(ev_record_reader *r);

/* Read one line: 0 with *rec filled, 1 with *why filled when it cannot be windowed, -1 when
 * out of memory. The fast parser reads what it can; a record it leaves (a field missing or of
 * the wrong kind, a nested key or value, text only jansson reads) is read again by jansson,
 * the reference, which gives the same result or says what is wrong. */
int ev_record_read(ev_record_reader *r, const char *line, size_t len, ev_record *rec,
		   ev_record_error *why);

#endif
