/* SPDX-License-Identifier: Apache-2.0 */
/* json.c: writing JSON text the way evpipe's outputs have it, and a cheap look at untrusted
 * JSON text before it is parsed. */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

int ev_json_real(ev_buf *out, double v)
{
	char s[40], text[48];
	if (!isfinite(v) || !ev_fj_shortest(v, s, sizeof(s)))
		return ev_buf_puts(out, "null");
	/* s is [-]d[.ddd]e[+-]xx: take the digits, without trailing zeros, and the exponent. */
	char digits[24] = "", *t = text;
	int nd = 0;
	const char *c = s;
	if (*c == '-')
		*t++ = *c++;
	for (; *c != 'e'; c++)
		if (*c != '.')
			digits[nd++] = *c;
	int exp = atoi(c + 1);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	/* Written as Python's repr: fixed notation for exponents in [-4, 16), with ".0" when
	 * integral ("3.0", "0.1"), else the exponent form ("1e+16", "1.5e-07"). */
	if (exp < -4 || exp >= 16) {
		*t++ = digits[0];
		if (nd > 1) {
			*t++ = '.';
			memcpy(t, digits + 1, (size_t)nd - 1);
			t += nd - 1;
		}
		t += snprintf(t, 8, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
	} else if (exp < 0) {
		*t++ = '0';
		*t++ = '.';
		for (int i = 0; i < -exp - 1; i++)
			*t++ = '0';
		memcpy(t, digits, (size_t)nd);
		t += nd;
	} else {
		for (int i = 0; i <= exp; i++)
			*t++ = i < nd ? digits[i] : '0';
		*t++ = '.';
		if (nd > exp + 1) {
			memcpy(t, digits + exp + 1, (size_t)(nd - exp - 1));
			t += nd - exp - 1;
		} else {
			*t++ = '0';
		}
	}
	return ev_buf_append(out, text, (size_t)(t - text));
}

int ev_json_value(ev_buf *out, const json_t *v)
{
	int rc = 0;
	switch (json_typeof(v)) {
	case JSON_REAL: return ev_json_real(out, json_real_value(v));
	case JSON_STRING:
		return ev_buf_json_string(out, json_string_value(v), json_string_length(v));
	case JSON_INTEGER: return ev_buf_put_i64(out, json_integer_value(v));
	case JSON_TRUE: return ev_buf_puts(out, "true");
	case JSON_FALSE: return ev_buf_puts(out, "false");
	case JSON_NULL: return ev_buf_puts(out, "null");
	case JSON_ARRAY:
		rc |= ev_buf_putc(out, '[');
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				rc |= ev_buf_putc(out, ',');
			rc |= ev_json_value(out, json_array_get(v, i));
		}
		return rc | ev_buf_putc(out, ']');
	case JSON_OBJECT: {
		const char *k;
		json_t *x;
		int first = 1;
		rc |= ev_buf_putc(out, '{');
		json_object_foreach((json_t *)v, k, x)
		{ /* in the record's order */
			if (!first)
				rc |= ev_buf_putc(out, ',');
			first = 0;
			rc |= ev_buf_json_string(out, k, strlen(k));
			rc |= ev_buf_putc(out, ':');
			rc |= ev_json_value(out, x);
		}
		return rc | ev_buf_putc(out, '}');
	}
	}
	return -1;
}

int ev_json_scalar_fj(ev_buf *out, const ev_fj_node *n)
{
	switch (n->type) {
	case EV_FJ_NULL: return ev_buf_puts(out, "null");
	case EV_FJ_FALSE: return ev_buf_puts(out, "false");
	case EV_FJ_TRUE: return ev_buf_puts(out, "true");
	case EV_FJ_INT: return ev_buf_put_i64(out, n->num.i);
	case EV_FJ_REAL: return ev_json_real(out, n->num.d);
	case EV_FJ_STRING: return ev_buf_json_string(out, n->str, n->len);
	}
	return 1;
}

int ev_json_bytes_field(ev_buf *out, const char *key, const char *s, size_t n)
{
	if (ev_utf8_valid(s, n)) {
		int rc = ev_buf_putc(out, '"');
		rc |= ev_buf_puts(out, key);
		rc |= ev_buf_puts(out, "\":");
		return rc | ev_buf_json_string(out, s, n);
	}
	int rc = ev_buf_printf(out, "\"%s_b64\":\"", key);
	rc |= ev_base64_encode(out, s, n);
	return rc | ev_buf_putc(out, '"');
}

int ev_json_too_deep(const char *s, size_t n, int max)
{
	int depth = 0;
	for (size_t i = 0; i < n; i++) {
		switch (s[i]) {
		case '[':
		case '{':
			if (++depth > max)
				return 1;
			break;
		case ']':
		case '}': depth--; break;
		case '"':
			for (i++; i < n && s[i] != '"'; i++)
				if (s[i] == '\\')
					i++;
			break;
		}
	}
	return 0;
}
