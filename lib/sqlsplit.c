/* SPDX-License-Identifier: Apache-2.0 */
/* sqlsplit.c: SQL text split into its statements. */
#include "sqlsplit.h"

#include <ctype.h>
#include <string.h>

#include "buf.h"

static int emit_statement(ev_buf *stmt, int *n, int (*fn)(void *, const char *, int), void *arg)
{
	char *s = (char *)ev_buf_cstr(stmt);
	if (!s)
		return -1;
	size_t a = 0, b = stmt->len;
	while (a < b && isspace((unsigned char)s[a]))
		a++;
	while (b > a && isspace((unsigned char)s[b - 1]))
		b--;
	int rc = 0;
	if (b > a) {
		s[b] = '\0';
		rc = fn(arg, s + a, ++*n);
	}
	ev_buf_reset(stmt);
	return rc;
}

int ev_sql_split(const char *text, int (*fn)(void *arg, const char *stmt, int n), void *arg)
{
	ev_buf stmt = EV_BUF_INIT;
	int n = 0, rc = 0;
	const char *p = text;
	while (*p && rc == 0) {
		if (p[0] == '-' && p[1] == '-') {
			p += strcspn(p, "\n");
			rc = ev_buf_putc(&stmt, ' ');
		} else if (p[0] == '/' && p[1] == '*') {
			const char *end = strstr(p + 2, "*/");
			if (!end) {
				rc = -1;
				break;
			}
			p = end + 2;
			rc = ev_buf_putc(&stmt, ' ');
		} else if (*p == '\'' || *p == '"' || *p == '`') {
			/* Quoted: up to the same quote not escaped by a backslash or doubled. */
			const char *q = p + 1;
			for (; *q; q++) {
				if (*q == '\\' && q[1])
					q++;
				else if (*q == *p && q[1] == *p)
					q++;
				else if (*q == *p)
					break;
			}
			if (!*q) {
				rc = -1;
				break;
			}
			rc = ev_buf_append(&stmt, p, (size_t)(q + 1 - p));
			p = q + 1;
		} else if (*p == ';') {
			rc = emit_statement(&stmt, &n, fn, arg);
			p++;
		} else {
			rc = ev_buf_putc(&stmt, *p++);
		}
	}
	if (rc == 0 && stmt.len > 0)
		rc = emit_statement(&stmt, &n, fn, arg);
	ev_buf_free(&stmt);
	return rc;
}
