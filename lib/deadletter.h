/* SPDX-License-Identifier: Apache-2.0 */
/* deadletter.h: side outputs (dead letters, late records): where they go and their envelope. */
#ifndef EV_DEADLETTER_H
#define EV_DEADLETTER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Open a side output given as "fd:N" (an inherited descriptor, e.g. from bash's >(...)) or a
 * path (created, appended to). Returns the fd, or -1 with a message in err. */
int ev_sideout_open(const char *spec, char *err, size_t errlen);

/* One dead letter. Every field but reason and raw may be NULL / 0. */
typedef struct ev_deadletter {
	const char *
		reason; /* parse, truncated, too_long, encoding, depth, duplicate_key, schema, late, ... */
	const char *path;    /* JSON pointer of the first violation in the record */
	const char *keyword; /* the contract keyword that failed */
	const char *message;
	const char *errors_json; /* all violations, already a JSON array (--all-errors) */
	const char *raw;         /* the original line, exactly */
	size_t raw_len;
	const char *source_json; /* provenance object (kin --meta-field), already JSON */
	size_t source_len;
	uint64_t line; /* input line number, 0 when unknown */
	int64_t at;    /* when it was dead-lettered, epoch ms */
} ev_deadletter;

/* Append the envelope (no newline):
 * {"reason":..,"error":{"path":..,"keyword":..,"message":..},"errors":[..],"raw":"..."
 *  (or "raw_b64" when not UTF-8),"source":{..},"line":N,"at":MS} */
int ev_deadletter_format(ev_buf *out, const ev_deadletter *d);
/* The same with "contract":<contract_json> (the registry's contract judged against:
 * {"subject","version","id","sha256"}) before "line", when contract_json is not NULL. */
int ev_deadletter_format_contract(ev_buf *out, const ev_deadletter *d, const char *contract_json);

/* Every reason evpipe's tools write, NULL-terminated: a tool that adds a reason adds it here
 * (dlqsink replay --reason refuses the others). */
extern const char *const ev_deadletter_reasons[];
/* 1 when the len bytes at reason name one of ev_deadletter_reasons, else 0. */
int ev_deadletter_reason_known(const char *reason, size_t len);

#endif
