/* SPDX-License-Identifier: Apache-2.0 */
/* control.c: in-band control lines ({"__evpipe":...}): watermarks, barriers, assignments. */
#include "control.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

static const char *const type_names[] = {"other",  "watermark", "barrier", "assign",
					 "revoke", "stop",      "end",     "committed"};

static size_t skip_ws(const char *s, size_t i, size_t len)
{
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i;
}

/* Where the first key begins when it begins with prefix (a string of len n), else 0. */
static size_t first_key(const char *line, size_t len, const char *prefix, size_t n)
{
	size_t i = skip_ws(line, 0, len);
	if (i >= len || line[i] != '{')
		return 0;
	i = skip_ws(line, i + 1, len);
	if (len - i < n || memcmp(line + i, prefix, n) != 0)
		return 0;
	return i + n;
}

int ev_control_is(const char *line, size_t len)
{
	static const char key[] = "\"__evpipe\"";
	size_t i = first_key(line, len, key, sizeof(key) - 1);
	if (!i)
		return 0;
	i = skip_ws(line, i, len);
	return i < len && line[i] == ':';
}

int ev_control_reserved(const char *line, size_t len)
{
	static const char prefix[] = "\"__evpipe";
	return first_key(line, len, prefix, sizeof(prefix) - 1) != 0;
}

const char *ev_control_payload_unsafe(const void *payload, size_t len)
{
	const char *p = payload ? payload : "";
	/* The frame's id may hold any byte, a newline too: the frame decides. */
	if (len >= EV_REGISTRY_FRAME_LEN && p[0] == '\0')
		return "schema_id";
	if (memchr(p, '\n', len) || memchr(p, '\r', len))
		return "embedded_newline";
	/* A record read as a control line after blanks too (ev_control_is skips them). */
	return ev_control_reserved(p, len) ? "reserved" : NULL;
}

const char *ev_control_type_name(enum ev_control_type type)
{
	return (unsigned)type < sizeof(type_names) / sizeof(type_names[0]) ? type_names[type]
									   : "other";
}

/* A Kafka topic name: 1 to 249 characters of [A-Za-z0-9._-]. */
static int topic_ok(const char *t, size_t n)
{
	if (n == 0 || n > 249)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') ||
		      (t[i] >= '0' && t[i] <= '9') || t[i] == '.' || t[i] == '_' || t[i] == '-'))
			return 0;
	return 1;
}

/* Check the "partitions" of an assign or revoke line; with parts, also list them. */
static int read_parts(json_t *root, const char *kind, ev_control_part **parts, size_t *n, char *err,
		      size_t errlen)
{
	json_t *list = json_object_get(root, "partitions"), *el;
	size_t i;
	*n = 0;
	if (!json_is_array(list) || json_array_size(list) > EV_CONTROL_MAX_PARTS) {
		snprintf(err, errlen,
			 "malformed %s control line: \"partitions\" must be a list of "
			 "at most %d",
			 kind, EV_CONTROL_MAX_PARTS);
		return -1;
	}
	json_array_foreach(list, i, el)
	{
		json_t *topic = json_object_get(el, "topic"),
		       *part = json_object_get(el, "partition");
		json_t *off = json_object_get(el, "offset");
		if (!json_is_object(el) || !json_is_string(topic) ||
		    !topic_ok(json_string_value(topic), json_string_length(topic)) ||
		    !json_is_integer(part) || json_integer_value(part) < 0 ||
		    json_integer_value(part) > INT32_MAX ||
		    (off && (!json_is_integer(off) || json_integer_value(off) < 0))) {
			snprintf(err, errlen,
				 "malformed %s control line: partition %zu is not {\"topic\": a "
				 "topic name, \"partition\": 0.., \"offset\": 0.. or absent}",
				 kind, i);
			return -1;
		}
	}
	*n = json_array_size(list);
	if (!parts)
		return 0;
	*parts = calloc(*n ? *n : 1, sizeof(**parts));
	if (!*parts) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	json_array_foreach(list, i, el)
	{
		json_t *off = json_object_get(el, "offset");
		ev_control_part *p = &(*parts)[i];
		p->partition = (int32_t)json_integer_value(json_object_get(el, "partition"));
		p->offset = off ? json_integer_value(off) : -1;
		p->topic = strdup(json_string_value(json_object_get(el, "topic")));
		if (!p->topic) {
			ev_control_parts_free(*parts, i);
			*parts = NULL;
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	return 0;
}

void ev_control_parts_free(ev_control_part *parts, size_t n)
{
	for (size_t i = 0; parts && i < n; i++)
		free(parts[i].topic);
	free(parts);
}

int ev_control_parse(const char *line, size_t len, ev_control *c, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	memset(c, 0, sizeof(*c));
	if (!root || !json_is_object(root)) {
		snprintf(err, errlen, "malformed control line: %s",
			 root ? "not an object" : jerr.text);
		json_decref(root);
		return -1;
	}
	const char *kind = json_string_value(json_object_get(root, "__evpipe"));
	if (!kind) {
		snprintf(err, errlen, "malformed control line: \"__evpipe\" is not a string");
		json_decref(root);
		return -1;
	}
	c->type = EV_CTL_OTHER;
	for (size_t i = 1; i < sizeof(type_names) / sizeof(type_names[0]); i++)
		if (strcmp(kind, type_names[i]) == 0)
			c->type = (enum ev_control_type)i;
	json_t *ts = json_object_get(root, "ts");
	json_t *id = json_object_get(root, "id");
	int rc = 0;
	if ((c->type == EV_CTL_WATERMARK || c->type == EV_CTL_BARRIER) && !json_is_integer(ts)) {
		snprintf(err, errlen, "malformed %s control line: \"ts\" must be an integer", kind);
		rc = -1;
	} else if ((c->type == EV_CTL_BARRIER || c->type == EV_CTL_COMMITTED) &&
		   !json_is_integer(id)) {
		snprintf(err, errlen, "malformed %s control line: \"id\" must be an integer", kind);
		rc = -1;
	} else if (c->type == EV_CTL_ASSIGN || c->type == EV_CTL_REVOKE ||
		   (c->type == EV_CTL_BARRIER && json_object_get(root, "partitions"))) {
		size_t n;
		rc = read_parts(root, kind, NULL, &n, err, errlen);
	}
	c->ts = json_is_integer(ts) ? json_integer_value(ts) : 0;
	c->id = json_is_integer(id) ? json_integer_value(id) : 0;
	json_decref(root);
	return rc;
}

int ev_control_partitions(const char *line, size_t len, ev_control_part **parts, size_t *n,
			  char *err, size_t errlen)
{
	ev_control c;
	*parts = NULL;
	*n = 0;
	if (ev_control_parse(line, len, &c, err, errlen) < 0)
		return -1;
	if (c.type != EV_CTL_ASSIGN && c.type != EV_CTL_REVOKE && c.type != EV_CTL_BARRIER) {
		snprintf(err, errlen, "not an assign, revoke or barrier control line");
		return -1;
	}
	json_t *root = json_loadb(line, len, 0, NULL);
	if (c.type == EV_CTL_BARRIER && !json_object_get(root, "partitions")) {
		json_decref(root);
		return 0; /* a barrier without them */
	}
	int rc = read_parts(root, ev_control_type_name(c.type), parts, n, err, errlen);
	json_decref(root);
	return rc;
}

/* The "partitions" list of n parts and the end of the line. */
static int format_parts(ev_buf *out, const ev_control_part *parts, size_t n)
{
	int rc = ev_buf_printf(out, "\"partitions\":[");
	for (size_t i = 0; i < n && rc == 0; i++) {
		const ev_control_part *p = &parts[i];
		if (!topic_ok(p->topic, strlen(p->topic)))
			return -1; /* never written unescaped */
		rc = ev_buf_printf(out, "%s{\"topic\":\"%s\",\"partition\":%d", i ? "," : "",
				   p->topic, (int)p->partition);
		if (rc == 0 && p->offset >= 0)
			rc = ev_buf_printf(out, ",\"offset\":%lld", (long long)p->offset);
		if (rc == 0)
			rc = ev_buf_putc(out, '}');
	}
	return rc ? rc : ev_buf_printf(out, "]}");
}

int ev_control_format_parts(ev_buf *out, enum ev_control_type type, const ev_control_part *parts,
			    size_t n)
{
	if ((type != EV_CTL_ASSIGN && type != EV_CTL_REVOKE) || (n && !parts))
		return -1;
	if (ev_buf_printf(out, "{\"__evpipe\":\"%s\",", ev_control_type_name(type)) < 0)
		return -1;
	return format_parts(out, parts, n);
}

int ev_control_format_barrier(ev_buf *out, int64_t id, int64_t ts, const ev_control_part *parts,
			      size_t n)
{
	if (n && !parts)
		return -1;
	if (ev_buf_printf(out, "{\"__evpipe\":\"barrier\",\"id\":%lld,\"ts\":%lld,", (long long)id,
			  (long long)ts) < 0)
		return -1;
	return format_parts(out, parts, n);
}

int ev_control_format(ev_buf *out, const ev_control *c)
{
	switch (c->type) {
	case EV_CTL_ASSIGN:
	case EV_CTL_REVOKE: return ev_control_format_parts(out, c->type, NULL, 0);
	case EV_CTL_WATERMARK:
		return ev_buf_printf(out, "{\"__evpipe\":\"watermark\",\"ts\":%lld}",
				     (long long)c->ts);
	case EV_CTL_BARRIER:
		return ev_buf_printf(out, "{\"__evpipe\":\"barrier\",\"id\":%lld,\"ts\":%lld}",
				     (long long)c->id, (long long)c->ts);
	case EV_CTL_COMMITTED:
		return ev_buf_printf(out, "{\"__evpipe\":\"committed\",\"id\":%lld}",
				     (long long)c->id);
	default: return ev_buf_printf(out, "{\"__evpipe\":\"%s\"}", ev_control_type_name(c->type));
	}
}

void ev_control_seq_init(ev_control_seq *s, int64_t restored_id)
{
	memset(s, 0, sizeof(*s));
	s->last_id = restored_id;
}

static int check_barrier(ev_control_seq *s, const ev_control *c, char *err, size_t errlen)
{
	if (c->id <= 0 || c->id > EV_CONTROL_MAX_ID) {
		snprintf(err, errlen, "barrier id %" PRId64 " is out of range (1..%lld)", c->id,
			 EV_CONTROL_MAX_ID);
		return -1;
	}
	if (c->id <= s->last_id) {
		snprintf(err, errlen, "barrier %" PRId64 " does not follow %s %" PRId64, c->id,
			 s->seen ? "barrier" : "the restored checkpoint", s->last_id);
		return -1;
	}
	if (s->seen && c->id - s->last_id > EV_CONTROL_MAX_ID_JUMP) {
		snprintf(err, errlen,
			 "barrier %" PRId64 " jumps more than %d past barrier %" PRId64, c->id,
			 EV_CONTROL_MAX_ID_JUMP, s->last_id);
		return -1;
	}
	s->last_id = c->id;
	s->seen = 1;
	return 0;
}

/* A checkpoint is announced complete only after its barrier went through this stage, in this
 * run, and once. */
static int check_committed(ev_control_seq *s, const ev_control *c, char *err, size_t errlen)
{
	if (!s->seen || c->id > s->last_id) {
		snprintf(err, errlen, "checkpoint %" PRId64 " committed before its barrier", c->id);
		return -1;
	}
	if (c->id <= s->committed || c->id <= 0) {
		snprintf(err, errlen, "checkpoint %" PRId64 " committed after checkpoint %" PRId64,
			 c->id, s->committed);
		return -1;
	}
	s->committed = c->id;
	return 0;
}

int ev_control_check(ev_control_seq *s, const char *line, size_t len, int64_t now_ms, ev_control *c,
		     char *err, size_t errlen)
{
	char why[256];
	int64_t future = s->future_ms > 0 ? s->future_ms : EV_CONTROL_MAX_FUTURE_MS;
	int rc = ev_control_parse(line, len, c, why, sizeof(why));
	if (rc == 0 && c->type == EV_CTL_OTHER) {
		snprintf(why, sizeof(why), "unknown control line type");
		rc = -1;
	} else if (rc == 0 && c->type == EV_CTL_BARRIER) {
		rc = check_barrier(s, c, why, sizeof(why));
	} else if (rc == 0 && c->type == EV_CTL_COMMITTED) {
		rc = check_committed(s, c, why, sizeof(why));
	} else if (rc == 0 && c->type == EV_CTL_WATERMARK && c->ts != INT64_MAX && c->ts > now_ms &&
		   c->ts - now_ms > future) {
		snprintf(why, sizeof(why),
			 "watermark %" PRId64 " is more than %" PRId64 " ms ahead of the clock",
			 c->ts, future);
		rc = -1;
	}
	if (rc < 0)
		snprintf(err, errlen, "impossible control line '%.*s': %s",
			 len > 120 ? 120 : (int)len, line, why);
	return rc;
}
