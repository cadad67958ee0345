/* SPDX-License-Identifier: Apache-2.0 */
/* claim.c: claim checks: the original bytes of a dead letter too large for its topic go to a
 * store, and the envelope keeps a reference and the hash. */
#include "claim.h"

#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "sha256.h"

#define CLAIMS "/claims/"

int ev_claim_raw(const json_t *env, ev_buf *raw)
{
	json_t *s = json_object_get(env, "raw");
	json_t *b64 = json_object_get(env, "raw_b64");
	ev_buf_reset(raw);
	if (json_is_string(s))
		return ev_buf_append(raw, json_string_value(s), json_string_length(s)) == 0;
	if (json_is_string(b64))
		return ev_base64_decode(raw, json_string_value(b64), json_string_length(b64)) == 0;
	return 0;
}

int ev_claim_check(json_t *env, const ev_buf *raw, ev_store *store, const char *job, char *err,
		   size_t errlen)
{
	char sha[65];
	ev_buf key = EV_BUF_INIT, ref = EV_BUF_INIT;
	int rc = -1;
	ev_sha256_hex(raw->data ? raw->data : "", raw->len, sha);
	if (store) {
		uint64_t size;
		ev_buf_printf(&key, "%s" CLAIMS "%s", job, sha);
		if (!ev_buf_cstr(&key) || !ev_store_key_ok(key.data)) {
			snprintf(err, errlen, "invalid claim key '%s'", key.data ? key.data : "");
			goto out;
		}
		int there = ev_store_head(store, key.data, &size, err, errlen);
		if (there < 0 || (!(there && size == raw->len) &&
				  ev_store_put(store, key.data, raw->data ? raw->data : "",
					       raw->len, err, errlen) < 0))
			goto out;
		if (ev_buf_printf(&ref, "%s/%s", ev_store_url(store), key.data) < 0) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
	}
	json_object_del(env, "raw");
	json_object_del(env, "raw_b64");
	if (store)
		json_object_set_new(env, "raw_ref", json_stringn(ref.data, ref.len));
	json_object_set_new(env, "raw_sha256", json_string(sha));
	json_object_set_new(env, "raw_bytes", json_integer((json_int_t)raw->len));
	if (!store)
		json_object_set_new(env, "raw_lost", json_true());
	rc = 0;
out:
	ev_buf_free(&key);
	ev_buf_free(&ref);
	return rc;
}

/* The key of a reference into store: "<store URL>/<job>/claims/<sha256>" with the hash the
 * envelope gives. NULL when it is not one. */
static const char *claim_key(const char *ref, const char *url, const char *sha)
{
	size_t n = strlen(url);
	if (strncmp(ref, url, n) != 0 || ref[n] != '/')
		return NULL;
	const char *key = ref + n + 1;
	const char *c = strstr(key, CLAIMS);
	if (!c || c == key || strchr(key, '/') != c || strcmp(c + strlen(CLAIMS), sha) != 0 ||
	    !ev_store_key_ok(key))
		return NULL;
	return key;
}

int ev_claim_resolve(const json_t *env, ev_store *store, ev_buf *raw, char *err, size_t errlen)
{
	const char *ref = json_string_value(json_object_get(env, "raw_ref"));
	const char *sha = json_string_value(json_object_get(env, "raw_sha256"));
	json_t *bytes = json_object_get(env, "raw_bytes");
	char got[65];
	if (!ref)
		return 0;
	if (!store) {
		snprintf(err, errlen, "claim check '%s': no claim store given", ref);
		return -1;
	}
	const char *key =
		sha && strlen(sha) == 64 ? claim_key(ref, ev_store_url(store), sha) : NULL;
	if (!key || !json_is_integer(bytes)) {
		snprintf(err, errlen, "claim check '%s' is not a claim in '%s'", ref,
			 ev_store_url(store));
		return -1;
	}
	int found = ev_store_get(store, key, raw, err, errlen);
	if (found <= 0) {
		if (found == 0)
			snprintf(err, errlen, "claim check '%s': no such object", ref);
		return -1;
	}
	ev_sha256_hex(raw->data ? raw->data : "", raw->len, got);
	if ((json_int_t)raw->len != json_integer_value(bytes) || strcmp(got, sha) != 0) {
		snprintf(
			err, errlen,
			"claim check '%s': %zu bytes with sha256 %s, the envelope says %" JSON_INTEGER_FORMAT
			" bytes with sha256 %s",
			ref, raw->len, got, json_integer_value(bytes), sha);
		return -1;
	}
	return 1;
}
