/* SPDX-License-Identifier: Apache-2.0 */
/* msgfmt.h: kcat's output formats of consumed messages (kin -f, -K, -D, -O, -Z): a format
 * string compiled once, then written per message. */
#ifndef EV_MSGFMT_H
#define EV_MSGFMT_H

#include <stddef.h>

#include "buf.h"
#include "kafka.h"

typedef struct ev_msgfmt ev_msgfmt;

/* Compile a format of kcat's tokens: %s payload, %S its length (-1 for NULL), %R that length
 * as a big-endian 32-bit integer, %k key, %K its length (-1 for NULL), %T timestamp (ms, -1
 * when none), %h headers (name=value,... with NULL for a value that is null), %t topic, %p
 * partition, %o offset, %% a percent sign; \n \r \t, \xHH (hex) and \NNN (decimal, or octal
 * with a leading 0) in the text between them. null_str, when not NULL, is written for an empty
 * or null key or payload (kcat -Z). Returns NULL with a message in err for an unknown or
 * missing token. */
ev_msgfmt *ev_msgfmt_new(const char *fmt, const char *null_str, char *err, size_t errlen);
void ev_msgfmt_free(ev_msgfmt *f);
/* 1 when the format writes the headers (%h): r->headers is read only then. */
int ev_msgfmt_wants_headers(const ev_msgfmt *f);
/* Append message r as the format says to out. Returns 0, or -1 when out of memory. */
int ev_msgfmt_write(const ev_msgfmt *f, const ev_kafka_record *r, ev_buf *out);

/* kcat's delimiter escapes (-D, -K): \n \r \t and \xHH, other bytes as they are. Returns 0, or
 * -1 when a \x has no hex digit or out of memory. */
int ev_msgfmt_unescape(const char *s, ev_buf *out);

#endif
