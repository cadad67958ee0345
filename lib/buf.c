/* SPDX-License-Identifier: Apache-2.0 */
/* buf.c: a growable byte buffer. */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ev_buf_reserve(ev_buf *b, size_t n)
{
	size_t need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (!p)
		return -1;
	b->data = p;
	b->cap = cap;
	return 0;
}

int ev_buf_append(ev_buf *b, const void *data, size_t n)
{
	if (ev_buf_reserve(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int ev_buf_puts(ev_buf *b, const char *s)
{
	return ev_buf_append(b, s, strlen(s));
}

int ev_buf_putc(ev_buf *b, char c)
{
	return ev_buf_append(b, &c, 1);
}

int ev_buf_printf(ev_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || ev_buf_reserve(b, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int ev_buf_put_i64(ev_buf *b, int64_t v)
{
	/* Two digits at a time (a 13-digit timestamp in every provenance). */
	static const char pairs[] = "00010203040506070809101112131415161718192021222324"
				    "25262728293031323334353637383940414243444546474849"
				    "50515253545556575859606162636465666768697071727374"
				    "75767778798081828384858687888990919293949596979899";
	char d[20], *p = d + sizeof(d);
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	while (u >= 100) {
		p -= 2;
		memcpy(p, pairs + 2 * (u % 100), 2);
		u /= 100;
	}
	if (u >= 10) {
		p -= 2;
		memcpy(p, pairs + 2 * u, 2);
	} else {
		*--p = (char)('0' + u);
	}
	if (v < 0)
		*--p = '-';
	return ev_buf_append(b, p, (size_t)(d + sizeof(d) - p));
}

/* Whether one of the 8 bytes at p is a control character, '"' or '\\' (exact: the word
 * tests for a byte below 0x20 and for a zero byte after XOR, which have no false positives
 * as a whole). */
static inline int needs_escape8(const char *p)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	uint64_t x;
	memcpy(&x, p, 8);
	uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
	return (((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b)) & high ? 1 : 0;
}

int ev_buf_json_string(ev_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	/* Written in place: the quotes and the bytes as they are, more room only for an escape. */
	if (ev_buf_reserve(b, n + 2) < 0)
		return -1;
	char *o = b->data + b->len;
	*o++ = '"';
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		/* Eight bytes at a time while none of them needs an escape. */
		while (i + 8 <= n && !needs_escape8(s + i))
			i += 8;
		if (i == n)
			break;
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		memcpy(o, s + run, i - run);
		o += i - run;
		run = i + 1;
		/* An escape takes up to 6 bytes for this one: room for it, the rest and '"'. */
		b->len = (size_t)(o - b->data);
		if (ev_buf_reserve(b, 6 + (n - i)) < 0)
			return -1;
		o = b->data + b->len;
		*o++ = '\\';
		switch (c) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '\n': *o++ = 'n'; break;
		case '\r': *o++ = 'r'; break;
		case '\t': *o++ = 't'; break;
		case '\b': *o++ = 'b'; break;
		case '\f': *o++ = 'f'; break;
		default:
			*o++ = 'u';
			*o++ = '0';
			*o++ = '0';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	if (n > run) /* s may be NULL when n is 0 */
		memcpy(o, s + run, n - run);
	o += n - run;
	*o++ = '"';
	*o = '\0';
	b->len = (size_t)(o - b->data);
	return 0;
}

const char *ev_buf_cstr(ev_buf *b)
{
	if (!b->data && ev_buf_reserve(b, 0) < 0)
		return "";
	b->data[b->len] = '\0';
	return b->data;
}

void ev_buf_reset(ev_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void ev_buf_free(ev_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int ev_array_room(void *items, size_t *cap, size_t n, size_t elem, size_t first)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : first;
	void **arr = items;
	void *na = realloc(*arr, ncap * elem);
	if (!na)
		return -1;
	*arr = na;
	*cap = ncap;
	return 0;
}
