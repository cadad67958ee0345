/* SPDX-License-Identifier: Apache-2.0 */
/* meta.c: Kafka provenance carried in a reserved field of each record (kin --meta-field). */
#include "meta.h"

#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "codec.h"
#include "json.h"

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* {"NAME":{"topic":"TOPIC" */
static int put_head(ev_buf *out, const char *name, const char *topic)
{
	int rc = ev_buf_putc(out, '{');
	rc |= ev_buf_json_string(out, name, strlen(name));
	rc |= ev_buf_puts(out, ":{\"topic\":");
	return rc | ev_buf_json_string(out, topic, strlen(topic));
}

/* The head of name and topic: head's text, written again only when they changed. */
static int cached_head(ev_meta_head *head, const char *name, const char *topic)
{
	size_t nlen = strlen(name), tlen = strlen(topic);
	if (head->key.len == nlen + 1 + tlen && memcmp(head->key.data, name, nlen + 1) == 0 &&
	    memcmp(head->key.data + nlen + 1, topic, tlen) == 0)
		return 0;
	ev_buf_reset(&head->key);
	ev_buf_reset(&head->text);
	int rc = ev_buf_append(&head->key, name, nlen + 1);
	rc |= ev_buf_append(&head->key, topic, tlen);
	rc |= put_head(&head->text, name, topic);
	if (rc)
		ev_buf_reset(&head->key); /* not a valid cache */
	return rc;
}

void ev_meta_head_free(ev_meta_head *head)
{
	ev_buf_free(&head->key);
	ev_buf_free(&head->text);
}

int ev_meta_insert(ev_buf *out, const char *name, const ev_meta *m, const void *payload, size_t len)
{
	return ev_meta_insert_cached(out, NULL, name, m, payload, len);
}

int ev_meta_insert_cached(ev_buf *out, ev_meta_head *head, const char *name, const ev_meta *m,
			  const void *payload, size_t len)
{
	const char *p = payload ? payload : "";
	size_t first = 0, last = len;
	while (first < len && is_blank(p[first]))
		first++;
	while (last > first && is_blank(p[last - 1]))
		last--;
	int object = !m->rejected && last - first >= 2 && p[first] == '{' && p[last - 1] == '}';

	/* Blanks before the object are kept before it, so the payload can be restored exactly. */
	int rc = object ? ev_buf_append(out, p, first) : 0;
	if (!head)
		rc |= put_head(out, name, m->topic);
	else if (cached_head(head, name, m->topic) < 0)
		return -1;
	else
		rc |= ev_buf_append(out, head->text.data, head->text.len);
	/* Written for every message a consumer reads: no printf. */
	/* One append per statement: the operands of '|' are evaluated in no set order. */
	rc |= ev_buf_puts(out, ",\"partition\":");
	rc |= ev_buf_put_i64(out, m->partition);
	rc |= ev_buf_puts(out, ",\"offset\":");
	rc |= ev_buf_put_i64(out, m->offset);
	rc |= ev_buf_puts(out, ",\"ts\":");
	rc |= ev_buf_put_i64(out, m->ts);
	if (m->has_schema_id) {
		rc |= ev_buf_puts(out, ",\"schema_id\":");
		rc |= ev_buf_put_i64(out, m->schema_id);
	}
	if (!object)
		rc |= ev_buf_puts(out, ",\"wrapped\":true");
	if (m->rejected) {
		rc |= ev_buf_puts(out, ",\"rejected\":");
		rc |= ev_buf_json_string(out, m->rejected, strlen(m->rejected));
	}
	rc |= ev_buf_putc(out, '}');
	if (!object) {
		rc |= ev_buf_putc(out, ',');
		rc |= ev_json_bytes_field(out, "payload", p, len);
		rc |= ev_buf_putc(out, '}');
		return rc;
	}
	/* Everything after the payload's '{', preceded by a comma unless the object is empty. */
	size_t next = first + 1;
	while (next < last && is_blank(p[next]))
		next++;
	if (p[next] != '}')
		rc |= ev_buf_putc(out, ',');
	return rc | ev_buf_append(out, p + first + 1, len - first - 1);
}

static int is_flat(json_t *obj)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v)
	{
		if (json_is_object(v) || json_is_array(v))
			return 0;
	}
	return 1;
}

/* Where the value of NAME begins when line begins (after *lead blanks) with {"NAME":, else 0. */
static size_t value_start(const char *line, size_t len, const char *name, size_t *lead)
{
	size_t nlen = strlen(name);
	*lead = 0;
	while (*lead < len && is_blank(line[*lead]))
		(*lead)++;
	const char *l = line + *lead;
	if (len - *lead < nlen + 5 || l[0] != '{' || l[1] != '"' ||
	    memcmp(l + 2, name, nlen) != 0 || l[nlen + 2] != '"' || l[nlen + 3] != ':')
		return 0;
	return *lead + nlen + 4;
}

int ev_meta_extract(const char *line, size_t len, const char *name, ev_meta_span *span,
		    ev_buf *orig)
{
	size_t lead;
	size_t start = value_start(line, len, name, &lead);
	if (!start)
		return 0;
	json_error_t jerr;
	json_t *meta = json_loadb(line + start, len - start, JSON_DISABLE_EOF_CHECK, &jerr);
	size_t end = start + (size_t)jerr.position;
	/* Provenance as kin writes it: a flat object whose text ends at a '}' (jansson skips a
	 * NUL after a number and reports a position short of it) and holds no NUL. */
	if (!json_is_object(meta) || !is_flat(meta) || end > len || line[end - 1] != '}' ||
	    memchr(line + start, '\0', end - start)) {
		json_decref(meta);
		return 0;
	}
	span->json = line + start;
	span->json_len = end - start;
	span->wrapped = json_is_true(json_object_get(meta, "wrapped"));
	json_decref(meta);
	if (!span->wrapped) {
		/* Undo the insertion: '{', then what followed the provenance and its comma. */
		size_t rest = end < len && line[end] == ',' ? end + 1 : end;
		int rc = ev_buf_append(orig, line, lead);
		rc |= ev_buf_putc(orig, '{');
		rc |= ev_buf_append(orig, line + rest, len - rest);
		return rc ? -1 : 1;
	}
	json_t *root = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
	json_t *pl = json_object_get(root, "payload");
	json_t *b64 = json_object_get(root, "payload_b64");
	int rc = 1;
	if (json_is_string(pl))
		rc = ev_buf_append(orig, json_string_value(pl), json_string_length(pl)) < 0 ? -1
											    : 1;
	else if (!json_is_string(b64) ||
		 ev_base64_decode(orig, json_string_value(b64), json_string_length(b64)) < 0)
		rc = 0;
	json_decref(root);
	return rc;
}

/* Where the provenance NAME at the start of line holds "schema_id": the member's text from the
 * comma before it ([*at, *at + *n)) and its value; 0 when there is none. */
static int find_schema_id(const char *line, size_t len, const char *name, size_t *at, size_t *n,
			  int32_t *id)
{
	static const char key[] = "\"schema_id\":";
	size_t lead, start = value_start(line, len, name, &lead);
	if (!start || start >= len || line[start] != '{')
		return 0;
	/* A flat object of a topic name (no '}' in it), numbers and booleans. */
	const char *end = memchr(line + start, '}', len - start);
	if (!end)
		return 0;
	/* The first key that ends before end, found by its '_' (rare in provenance: one memchr). */
	const size_t klen = sizeof(key) - 1, us = 7; /* key[us] == '_' */
	const char *p = NULL, *k = NULL, *u = line + start + us, *last = end - (klen - us);
	for (; !k && u < last && (u = memchr(u, '_', (size_t)(last - u))); u++)
		if (memcmp(u - us, key, klen) == 0) {
			p = u - us;
			k = p + klen;
		}
	if (!k || p[-1] != ',') /* ev_meta_insert writes it after "ts" */
		return 0;
	int64_t v = 0;
	const char *q = k;
	while (q < end && *q >= '0' && *q <= '9' && v <= INT32_MAX)
		v = v * 10 + (*q++ - '0');
	if (q == k || v > INT32_MAX || (*q != ',' && *q != '}')) /* *end is '}' */
		return 0;
	*id = (int32_t)v;
	*at = (size_t)(p - 1 - line);
	*n = (size_t)(q - (p - 1));
	return 1;
}

int ev_meta_schema_id(const char *line, size_t len, const char *name, int32_t *id)
{
	size_t at, n;
	return find_schema_id(line, len, name, &at, &n, id);
}

int ev_meta_drop_schema_id(ev_buf *out, const char *line, size_t len, const char *name)
{
	size_t at, n;
	int32_t id;
	if (!find_schema_id(line, len, name, &at, &n, &id))
		return 0;
	int rc = ev_buf_append(out, line, at);
	rc |= ev_buf_append(out, line + at + n, len - at - n);
	return rc < 0 ? -1 : 1;
}

int ev_meta_rejected(const ev_meta_span *span)
{
	if (!span->json || !span->wrapped)
		return 0;
	json_t *meta = json_loadb(span->json, span->json_len, 0, NULL);
	int rejected = json_is_string(json_object_get(meta, "rejected"));
	json_decref(meta);
	return rejected;
}

int ev_meta_find_fj(const char *line, size_t len, const char *name, const ev_fj_node *nd)
{
	size_t lead, nlen = strlen(name);
	if (!value_start(line, len, name, &lead))
		return 0;
	if (nd[0].type != EV_FJ_OBJECT || nd[0].len == 0 || nd[1].key_len != nlen ||
	    memcmp(nd[1].key, name, nlen) != 0)
		return -1; /* NAME has escapes: the bytes read as another key */
	/* Provenance is a flat object (is_flat): no array or object below it. */
	if (nd[1].type != EV_FJ_OBJECT)
		return 0;
	for (size_t i = 2; i < nd[1].end; i++)
		if (nd[i].type == EV_FJ_ARRAY || nd[i].type == EV_FJ_OBJECT)
			return 0;
	long w = ev_fj_member(nd, 1, "wrapped", 7);
	return w >= 0 && nd[w].type == EV_FJ_TRUE ? -1 : 1;
}
