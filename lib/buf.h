/* SPDX-License-Identifier: Apache-2.0 */
/* buf.h: a growable byte buffer. */
#ifndef EV_BUF_H
#define EV_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ev_buf {
	char *data;
	size_t len;
	size_t cap;
} ev_buf;

#define EV_BUF_INIT        \
	{                  \
		NULL, 0, 0 \
	}

/* Make room for n more bytes; returns 0, or -1 when out of memory. */
int ev_buf_reserve(ev_buf *b, size_t n);
int ev_buf_append(ev_buf *b, const void *data, size_t n);
int ev_buf_puts(ev_buf *b, const char *s);
int ev_buf_putc(ev_buf *b, char c);
int ev_buf_printf(ev_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append v in decimal: what "%" PRId64 writes, without printf's cost. */
int ev_buf_put_i64(ev_buf *b, int64_t v);
/* Append s as a JSON string literal, quotes included; s must be valid UTF-8. */
int ev_buf_json_string(ev_buf *b, const char *s, size_t n);
/* Keep data NUL-terminated after len (for APIs that want C strings). */
const char *ev_buf_cstr(ev_buf *b);
void ev_buf_reset(ev_buf *b);
void ev_buf_free(ev_buf *b);

/* Room for one more element in the array *items of n elements of size elem and capacity *cap:
 * the capacity doubles, from first when the array is empty. Returns 0, or -1 when out of memory
 * (the array is left as it was). */
int ev_array_room(void *items, size_t *cap, size_t n, size_t elem, size_t first);

#endif
