/* control.c: in-band control lines ({"__evpipe":...}): watermarks, barriers, assignments. */
#include "control.h"

#include <jansson.h>
#include <string.h>

static const char *const type_names[] = {"other",  "watermark", "barrier", "assign",
					 "revoke", "stop",      "end"};

static size_t skip_ws(const char *s, size_t i, size_t len)
{
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i;
}

int ev_control_is(const char *line, size_t len)
{
	static const char key[] = "\"__evpipe\"";
	size_t i = skip_ws(line, 0, len);
	if (i >= len || line[i] != '{')
		return 0;
	i = skip_ws(line, i + 1, len);
	if (len - i < sizeof(key) - 1 || memcmp(line + i, key, sizeof(key) - 1) != 0)
		return 0;
	i = skip_ws(line, i + sizeof(key) - 1, len);
	return i < len && line[i] == ':';
}

const char *ev_control_type_name(enum ev_control_type type)
{
	return (unsigned)type < sizeof(type_names) / sizeof(type_names[0]) ? type_names[type]
									   : "other";
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
	} else if (c->type == EV_CTL_BARRIER && !json_is_integer(id)) {
		snprintf(err, errlen, "malformed barrier control line: \"id\" must be an integer");
		rc = -1;
	}
	c->ts = json_is_integer(ts) ? json_integer_value(ts) : 0;
	c->id = json_is_integer(id) ? json_integer_value(id) : 0;
	json_decref(root);
	return rc;
}

int ev_control_format(ev_buf *out, const ev_control *c)
{
	switch (c->type) {
	case EV_CTL_WATERMARK:
		return ev_buf_printf(out, "{\"__evpipe\":\"watermark\",\"ts\":%lld}",
				     (long long)c->ts);
	case EV_CTL_BARRIER:
		return ev_buf_printf(out, "{\"__evpipe\":\"barrier\",\"id\":%lld,\"ts\":%lld}",
				     (long long)c->id, (long long)c->ts);
	default: return ev_buf_printf(out, "{\"__evpipe\":\"%s\"}", ev_control_type_name(c->type));
	}
}
