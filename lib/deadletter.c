/* SPDX-License-Identifier: Apache-2.0 */
/* deadletter.c: side outputs (dead letters, late records): where they go and their envelope. */
#include "deadletter.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "json.h"

int ev_sideout_open(const char *spec, char *err, size_t errlen)
{
	if (strncmp(spec, "fd:", 3) == 0) {
		char *end;
		long fd = strtol(spec + 3, &end, 10);
		if (spec[3] == '\0' || *end != '\0' || fd < 0 || fd > 65535) {
			snprintf(err, errlen, "invalid side output '%s': want fd:N or a path",
				 spec);
			return -1;
		}
		if (fcntl((int)fd, F_GETFL) < 0) {
			snprintf(err, errlen, "side output '%s': descriptor %ld is not open", spec,
				 fd);
			return -1;
		}
		return (int)fd;
	}
	int fd = open(spec, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		snprintf(err, errlen, "cannot open '%s': %s", spec, strerror(errno));
	return fd;
}

static int put_opt_string(ev_buf *out, const char *key, const char *val, int *first)
{
	if (!val)
		return 0;
	int rc = ev_buf_puts(out, *first ? "\"" : ",\"");
	rc |= ev_buf_puts(out, key);
	rc |= ev_buf_puts(out, "\":");
	*first = 0;
	return rc | ev_buf_json_string(out, val, strlen(val));
}

int ev_deadletter_format(ev_buf *out, const ev_deadletter *d)
{
	return ev_deadletter_format_contract(out, d, NULL);
}

int ev_deadletter_format_contract(ev_buf *out, const ev_deadletter *d, const char *contract_json)
{
	int rc = ev_buf_puts(out, "{\"reason\":");
	rc |= ev_buf_json_string(out, d->reason, strlen(d->reason));
	if (d->path || d->keyword || d->message) {
		int first = 1;
		rc |= ev_buf_puts(out, ",\"error\":{");
		rc |= put_opt_string(out, "path", d->path, &first);
		rc |= put_opt_string(out, "keyword", d->keyword, &first);
		rc |= put_opt_string(out, "message", d->message, &first);
		rc |= ev_buf_putc(out, '}');
	}
	if (d->errors_json)
		rc |= ev_buf_printf(out, ",\"errors\":%s", d->errors_json);
	rc |= ev_buf_putc(out, ',');
	rc |= ev_json_bytes_field(out, "raw", d->raw ? d->raw : "", d->raw_len);
	if (d->source_json) {
		rc |= ev_buf_puts(out, ",\"source\":");
		rc |= ev_buf_append(out, d->source_json, d->source_len);
	}
	if (contract_json) {
		rc |= ev_buf_puts(out, ",\"contract\":");
		rc |= ev_buf_puts(out, contract_json);
	}
	/* Written for every dead letter: no printf. */
	if (d->line && d->line <= INT64_MAX) {
		rc |= ev_buf_puts(out, ",\"line\":");
		rc |= ev_buf_put_i64(out, (int64_t)d->line);
	} else if (d->line) {
		rc |= ev_buf_printf(out, ",\"line\":%llu", (unsigned long long)d->line);
	}
	rc |= ev_buf_puts(out, ",\"at\":");
	rc |= ev_buf_put_i64(out, d->at);
	rc |= ev_buf_putc(out, '}');
	return rc;
}

/* evvalidate (lib/validate.c), evwindow and chsink, in that order. */
const char *const ev_deadletter_reasons[] = {"parse",    "truncated",   "encoding",
					     "too_long", "depth",       "duplicate_key",
					     "schema",   "missing_ts",  "bad_value",
					     "future",   "missing_key", "late",
					     "rejected", "bad_ts",      "embedded_newline",
					     "reserved", "schema_id",   NULL};

int ev_deadletter_reason_known(const char *reason, size_t len)
{
	for (const char *const *r = ev_deadletter_reasons; *r; r++)
		if (strlen(*r) == len && memcmp(*r, reason, len) == 0)
			return 1;
	return 0;
}
