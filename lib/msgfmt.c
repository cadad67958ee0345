/* SPDX-License-Identifier: Apache-2.0 */
/* msgfmt.c: kcat's output formats of consumed messages, compiled once and written per message. */
#include "msgfmt.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A piece of a compiled format: literal text (a span of text), or a token. */
struct piece {
	char token; /* 0: text */
	size_t off, len;
};

struct ev_msgfmt {
	struct piece *pieces;
	size_t n;
	ev_buf text; /* the literal pieces' bytes, escapes resolved */
	const char *null_str;
	int headers;
};

static int add_piece(ev_msgfmt *f, char token, size_t off, size_t len)
{
	struct piece *p = realloc(f->pieces, (f->n + 1) * sizeof(*p));
	if (!p)
		return -1;
	f->pieces = p;
	p[f->n++] = (struct piece){token, off, len};
	return 0;
}

/* The text s[0, n) with kcat's escapes of a format's literal parts resolved, onto f->text. */
static int add_text(ev_msgfmt *f, const char *s, size_t n)
{
	size_t off = f->text.len;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '\\' && i + 1 < n) {
			char *end;
			c = s[++i];
			if (c == 't')
				c = '\t';
			else if (c == 'n')
				c = '\n';
			else if (c == 'r')
				c = '\r';
			else if ((c == 'x' && i + 1 < n) || (c >= '0' && c <= '9')) {
				char num[8];
				size_t from = c == 'x' ? i + 1 : i, k = 0;
				while (k < sizeof(num) - 1 && from + k < n)
					num[k] = s[from + k], k++;
				num[k] = '\0';
				unsigned long v = strtoul(num, &end, c == 'x' ? 16 : 0);
				if (end > num) {
					i = from + (size_t)(end - num) - 1;
					c = (char)v;
				}
			}
		}
		if (ev_buf_putc(&f->text, c) < 0)
			return -1;
	}
	return f->text.len > off ? add_piece(f, 0, off, f->text.len - off) : 0;
}

ev_msgfmt *ev_msgfmt_new(const char *fmt, const char *null_str, char *err, size_t errlen)
{
	ev_msgfmt *f = calloc(1, sizeof(*f));
	if (!f) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	f->null_str = null_str;
	for (const char *s = fmt; *s;) {
		const char *pct = strchr(s, '%');
		size_t n = pct ? (size_t)(pct - s) : strlen(s);
		int rc = add_text(f, s, n);
		s += n;
		if (rc == 0 && pct) {
			char t = pct[1];
			s = pct + (t ? 2 : 1);
			if (t == '%')
				rc = add_text(f, "%", 1);
			else if (t && strchr("sSRkKThtpo", t))
				rc = add_piece(f, t, 0, 0);
			else {
				if (t)
					snprintf(err, errlen, "unknown format token '%%%c'", t);
				else
					snprintf(err, errlen, "a format ends with a lone '%%'");
				ev_msgfmt_free(f);
				return NULL;
			}
			f->headers |= t == 'h';
		}
		if (rc < 0) {
			snprintf(err, errlen, "out of memory");
			ev_msgfmt_free(f);
			return NULL;
		}
	}
	return f;
}

void ev_msgfmt_free(ev_msgfmt *f)
{
	if (!f)
		return;
	free(f->pieces);
	ev_buf_free(&f->text);
	free(f);
}

int ev_msgfmt_wants_headers(const ev_msgfmt *f)
{
	return f->headers;
}

/* Bytes that may be null or empty: null_str in their place with -Z. */
static int put_bytes(ev_buf *out, const void *p, size_t n, const char *null_str)
{
	if (n)
		return ev_buf_append(out, p, n);
	return null_str ? ev_buf_puts(out, null_str) : 0;
}

static int put_headers(ev_buf *out, const rd_kafka_headers_t *h)
{
	const char *name;
	const void *val;
	size_t vlen;
	int rc = 0;
	for (size_t i = 0; h && rd_kafka_header_get_all(h, i, &name, &val, &vlen) == 0; i++) {
		rc |= ev_buf_printf(out, "%s%s=", i ? "," : "", name);
		rc |= val ? ev_buf_append(out, val, vlen) : ev_buf_puts(out, "NULL");
	}
	return rc;
}

int ev_msgfmt_write(const ev_msgfmt *f, const ev_kafka_record *r, ev_buf *out)
{
	int rc = 0;
	for (size_t i = 0; i < f->n && rc == 0; i++) {
		const struct piece *p = &f->pieces[i];
		switch (p->token) {
		case 0: rc = ev_buf_append(out, f->text.data + p->off, p->len); break;
		case 's': rc = put_bytes(out, r->payload, r->len, f->null_str); break;
		case 'k': rc = put_bytes(out, r->key, r->key_len, f->null_str); break;
		case 'S': rc = ev_buf_put_i64(out, r->payload ? (int64_t)r->len : -1); break;
		case 'K': rc = ev_buf_put_i64(out, r->key ? (int64_t)r->key_len : -1); break;
		case 'R': {
			uint32_t v = r->payload ? (uint32_t)r->len : UINT32_MAX;
			unsigned char be[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
					       (unsigned char)(v >> 8), (unsigned char)v};
			rc = ev_buf_append(out, be, sizeof(be));
			break;
		}
		case 'T': rc = ev_buf_put_i64(out, r->ts); break;
		case 'h': rc = put_headers(out, r->headers); break;
		case 't': rc = ev_buf_puts(out, r->topic); break;
		case 'p': rc = ev_buf_put_i64(out, r->partition); break;
		case 'o': rc = ev_buf_put_i64(out, r->offset); break;
		}
	}
	return rc < 0 ? -1 : 0;
}

int ev_msgfmt_unescape(const char *s, ev_buf *out)
{
	for (; *s; s++) {
		char c = *s;
		if (c == '\\' && s[1] == 'x') {
			char *end;
			char hex[3] = {s[2], s[2] ? s[3] : '\0', '\0'};
			unsigned long v = strtoul(hex, &end, 16);
			if (end == hex)
				return -1;
			c = (char)v;
			s += 1 + (size_t)(end - hex);
		} else if (c == '\\' && (s[1] == 'n' || s[1] == 't' || s[1] == 'r')) {
			c = s[1] == 'n' ? '\n' : s[1] == 't' ? '\t' : '\r';
			s++;
		}
		if (ev_buf_putc(out, c) < 0)
			return -1;
	}
	return ev_buf_cstr(out) ? 0 : -1;
}
