/* SPDX-License-Identifier: Apache-2.0 */
/* handover.c: a partition's state handed over through the checkpoint store (ADR 0025). */
#include "handover.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"

#define HANDOVER_FORMAT 1

void ev_handover_key(ev_buf *b, const char *job, const char *stage, const char *topic,
		     int32_t partition, int64_t offset)
{
	ev_buf_reset(b);
	/* The partition first: a segment never "." or "..", whatever the topic's name. */
	ev_buf_printf(b, "%s/handover/%s/%d-%s/%020" PRId64, job, stage, (int)partition, topic,
		      offset);
}

int ev_handover_put(ev_store *s, const char *job, const char *stage, const char *topic,
		    int32_t partition, int64_t offset, const void *state, size_t len,
		    size_t windows, char *err, size_t errlen)
{
	char sha[65];
	ev_buf key = EV_BUF_INIT, obj = EV_BUF_INIT;
	if (ev_sha256_hex(state, len, sha) < 0) {
		snprintf(err, errlen, "cannot compute the SHA-256 of a hand-over");
		return -1;
	}
	json_t *h =
		json_pack("{s:i, s:s, s:i, s:I, s:I, s:I, s:s}", "format", HANDOVER_FORMAT, "topic",
			  topic, "partition", (int)partition, "offset", (json_int_t)offset,
			  "windows", (json_int_t)windows, "bytes", (json_int_t)len, "sha256", sha);
	char *text = h ? json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	int rc = -1;
	if (!text || ev_buf_printf(&obj, "%s\n", text) < 0 || ev_buf_append(&obj, state, len) < 0)
		snprintf(err, errlen, "out of memory");
	else {
		ev_handover_key(&key, job, stage, topic, partition, offset);
		rc = ev_store_put(s, ev_buf_cstr(&key), obj.data, obj.len, err, errlen);
	}
	free(text);
	json_decref(h);
	ev_buf_free(&key);
	ev_buf_free(&obj);
	return rc;
}

/* Check the header of an object against what was asked; its state's bytes follow it. */
static int header_check(const json_t *h, const char *topic, int32_t partition, int64_t offset,
			const void *state, size_t len, char *why, size_t whylen)
{
	char sha[65];
	json_t *t = json_object_get(h, "topic"), *sum = json_object_get(h, "sha256");
	if (json_integer_value(json_object_get(h, "format")) != HANDOVER_FORMAT) {
		snprintf(why, whylen, "not a hand-over of format %d", HANDOVER_FORMAT);
		return -1;
	}
	if (!json_is_string(t) || strcmp(json_string_value(t), topic) != 0 ||
	    json_integer_value(json_object_get(h, "partition")) != partition ||
	    json_integer_value(json_object_get(h, "offset")) != offset) {
		snprintf(why, whylen, "its header names another partition or offset");
		return -1;
	}
	ev_sha256_hex(state, len, sha);
	if (json_integer_value(json_object_get(h, "bytes")) != (json_int_t)len ||
	    !json_is_string(sum) || strcmp(json_string_value(sum), sha) != 0) {
		snprintf(why, whylen, "its state does not match its size and SHA-256");
		return -1;
	}
	return 0;
}

int ev_handover_get(ev_store *s, const char *job, const char *stage, const char *topic,
		    int32_t partition, int64_t offset, ev_buf *out, char *err, size_t errlen)
{
	ev_buf key = EV_BUF_INIT;
	char why[256];
	ev_handover_key(&key, job, stage, topic, partition, offset);
	int r = ev_store_get(s, ev_buf_cstr(&key), out, err, errlen);
	if (r <= 0) {
		ev_buf_free(&key);
		return r;
	}
	const char *nl = memchr(out->data, '\n', out->len);
	json_t *h =
		nl ? json_loadb(out->data, (size_t)(nl - out->data), JSON_REJECT_DUPLICATES, NULL)
		   : NULL;
	size_t hlen = nl ? (size_t)(nl - out->data) + 1 : 0;
	if (!json_is_object(h))
		snprintf(why, sizeof(why), "no header");
	else if (header_check(h, topic, partition, offset, out->data + hlen, out->len - hlen, why,
			      sizeof(why)) == 0) {
		memmove(out->data, out->data + hlen, out->len - hlen);
		out->len -= hlen;
		r = 1;
		goto done;
	}
	snprintf(err, errlen, "hand-over '%s' is corrupt: %s", ev_buf_cstr(&key), why);
	r = -1;
done:
	json_decref(h);
	ev_buf_free(&key);
	return r;
}
