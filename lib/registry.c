/* SPDX-License-Identifier: Apache-2.0 */
/* registry.c: a schema registry's Confluent-compatible REST API over libcurl, with a copy on
 * disk of every schema fetched. */
#include "registry.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "ckstore.h"
#include "sha256.h"

#define MAX_ANSWER (4 * 1024 * 1024)
#define MAX_REF_DEPTH 8
#define CONTENT_TYPE "Content-Type: application/vnd.schemaregistry.v1+json"

struct ev_registry {
	CURL *curl;
	char *base; /* without a trailing '/' */
	char *cache_dir;
	char *user, *password;
	struct curl_slist *headers;
	ev_buf url, body, answer;
	long status;
	char curl_err[CURL_ERROR_SIZE];
};

int ev_registry_frame(ev_buf *out, int32_t id, const void *payload, size_t len)
{
	uint32_t u = (uint32_t)id;
	unsigned char f[EV_REGISTRY_FRAME_LEN] = {0, (unsigned char)(u >> 24),
						  (unsigned char)(u >> 16), (unsigned char)(u >> 8),
						  (unsigned char)u};
	int rc = ev_buf_append(out, f, sizeof(f));
	rc |= ev_buf_append(out, payload, len);
	return rc;
}

int ev_registry_unframe(const void *payload, size_t len, int32_t *id)
{
	const unsigned char *p = payload;
	if (!p || len < EV_REGISTRY_FRAME_LEN || p[0] != 0)
		return 0;
	*id = (int32_t)((uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4]);
	return 1;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	ev_registry *r = arg;
	size_t len = size * n;
	if (r->answer.len + len > MAX_ANSWER || ev_buf_append(&r->answer, data, len) < 0)
		return 0;
	return len;
}

static void wipe(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* user and password from the environment, or "user:password" from a file. */
static int read_credentials(ev_registry *r, char *err, size_t errlen)
{
	const char *user = getenv("SCHEMA_REGISTRY_USER"),
		   *pass = getenv("SCHEMA_REGISTRY_PASSWORD");
	const char *file = getenv("SCHEMA_REGISTRY_CREDENTIALS_FILE");
	if (user && *user) {
		r->user = strdup(user);
		r->password = strdup(pass ? pass : "");
		return r->user && r->password ? 0 : -1;
	}
	if (!file || !*file)
		return 0;
	FILE *f = fopen(file, "r");
	char line[1024];
	if (!f || !fgets(line, sizeof(line), f)) {
		snprintf(err, errlen, "cannot read the registry credentials file '%s'", file);
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	char *colon = strchr(line, ':');
	if (!colon) {
		explicit_bzero(line, sizeof(line));
		snprintf(err, errlen, "the registry credentials file '%s' is not user:password",
			 file);
		return -1;
	}
	*colon = '\0';
	r->user = strdup(line);
	r->password = strdup(colon + 1);
	explicit_bzero(line, sizeof(line));
	return r->user && r->password ? 0 : -1;
}

ev_registry *ev_registry_new(const char *url, const char *cache_dir, long timeout_ms, char *err,
			     size_t errlen)
{
	if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
		snprintf(err, errlen, "the registry URL must be http[s]://host[:port][/path]");
		return NULL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "cannot initialise libcurl");
		return NULL;
	}
	/* Credentials in the URL would show in every message naming the registry. */
	const char *host = strstr(url, "://") + 3;
	const char *at = strchr(host, '@');
	if (at && at < host + strcspn(host, "/?#")) {
		snprintf(err, errlen,
			 "the registry URL holds credentials (user@host): give them in "
			 "SCHEMA_REGISTRY_USER and SCHEMA_REGISTRY_PASSWORD, or "
			 "SCHEMA_REGISTRY_CREDENTIALS_FILE");
		return NULL;
	}
	ev_registry *r = calloc(1, sizeof(*r));
	if (!r) {
		curl_global_cleanup();
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->curl = curl_easy_init();
	r->base = strdup(url);
	r->cache_dir = cache_dir ? strdup(cache_dir) : NULL;
	r->headers = curl_slist_append(NULL, CONTENT_TYPE);
	if (r->headers)
		r->headers = curl_slist_append(r->headers,
					       "Accept: application/vnd.schemaregistry.v1+json, "
					       "application/json");
	if (!r->curl || !r->base || (cache_dir && !r->cache_dir) || !r->headers) {
		ev_registry_free(r);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	size_t n = strlen(r->base);
	while (n > 0 && r->base[n - 1] == '/')
		r->base[--n] = '\0';
	if (read_credentials(r, err, errlen) < 0) {
		ev_registry_free(r);
		return NULL;
	}
	if (r->cache_dir && mkdir(r->cache_dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create the registry cache '%s': %s", r->cache_dir,
			 strerror(errno));
		ev_registry_free(r);
		return NULL;
	}
	CURL *c = r->curl;
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "evpipe/" EVPIPE_VERSION);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->curl_err);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 5000L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	if (r->user) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, r->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, r->password);
	}
	return r;
}

void ev_registry_free(ev_registry *r)
{
	if (!r)
		return;
	if (r->curl) {
		curl_easy_cleanup(r->curl);
		curl_global_cleanup();
	}
	curl_slist_free_all(r->headers);
	free(r->base);
	free(r->cache_dir);
	wipe(r->user);
	wipe(r->password);
	ev_buf_free(&r->url);
	ev_buf_free(&r->body);
	ev_buf_free(&r->answer);
	free(r);
}

void ev_reg_schema_clear(ev_reg_schema *s)
{
	json_decref(s->doc);
	memset(s, 0, sizeof(*s));
}

int ev_registry_parse_ref(const char *spec, char *subject, size_t subject_len, int *version)
{
	static const char prefix[] = "registry:";
	if (strncmp(spec, prefix, sizeof(prefix) - 1) != 0)
		return 0;
	const char *s = spec + sizeof(prefix) - 1;
	const char *at = strrchr(s, '@');
	size_t n = at ? (size_t)(at - s) : strlen(s);
	if (n == 0 || n >= subject_len)
		return -1;
	memcpy(subject, s, n);
	subject[n] = '\0';
	*version = 0;
	if (!at || strcmp(at + 1, "latest") == 0)
		return 1;
	char *end;
	errno = 0;
	long v = strtol(at + 1, &end, 10);
	if (errno || end == at + 1 || *end || v < 1 || v > 1000000000)
		return -1;
	*version = (int)v;
	return 1;
}

/* The subject, %-escaped for a URL path, appended to b. */
static int put_escaped(ev_registry *r, ev_buf *b, const char *s)
{
	char *e = curl_easy_escape(r->curl, s, 0);
	if (!e)
		return -1;
	int rc = ev_buf_puts(b, e);
	curl_free(e);
	return rc;
}

/* One request: GET path (body NULL) or POST body; the answer parsed into *js (when the status
 * is 2xx or 404 with a JSON body). */
static int request(ev_registry *r, const char *path, const char *body, json_t **js, char *err,
		   size_t errlen)
{
	CURL *c = r->curl;
	*js = NULL;
	ev_buf_reset(&r->url);
	ev_buf_reset(&r->answer);
	if (ev_buf_puts(&r->url, r->base) < 0 || ev_buf_puts(&r->url, path) < 0) {
		snprintf(err, errlen, "out of memory");
		return EV_REG_ERROR;
	}
	curl_easy_setopt(c, CURLOPT_URL, ev_buf_cstr(&r->url));
	if (body) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	}
	r->curl_err[0] = '\0';
	CURLcode cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		snprintf(err, errlen, "registry %s unreachable: %s", r->base,
			 r->curl_err[0] ? r->curl_err : curl_easy_strerror(cc));
		return EV_REG_UNAVAILABLE;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	json_error_t jerr;
	json_t *doc = json_loadb(r->answer.data ? r->answer.data : "", r->answer.len,
				 JSON_DECODE_ANY, &jerr);
	if (r->status >= 500) {
		snprintf(err, errlen, "registry %s answered HTTP %ld", r->base, r->status);
		json_decref(doc);
		return EV_REG_UNAVAILABLE;
	}
	if (r->status == 404) {
		const char *m = json_string_value(json_object_get(doc, "message"));
		snprintf(err, errlen, "%s", m ? m : "not found");
		json_decref(doc);
		return EV_REG_NOT_FOUND;
	}
	if (r->status == 401 || r->status == 403) {
		/* The user's name is no secret; the password never goes into a message. */
		if (!r->user)
			snprintf(err, errlen,
				 "registry %s answered HTTP %ld: it wants credentials "
				 "(SCHEMA_REGISTRY_USER and SCHEMA_REGISTRY_PASSWORD, or "
				 "SCHEMA_REGISTRY_CREDENTIALS_FILE)",
				 r->base, r->status);
		else
			snprintf(err, errlen, "registry %s answered HTTP %ld: user '%s' %s",
				 r->base, r->status, r->user,
				 r->status == 401 ? "was not authenticated (wrong password?)"
						  : "is not allowed to do this");
		json_decref(doc);
		return EV_REG_ERROR;
	}
	if (r->status < 200 || r->status > 299 || !doc) {
		const char *m = json_string_value(json_object_get(doc, "message"));
		snprintf(err, errlen, "registry answered HTTP %ld%s%s", r->status, m ? ": " : "",
			 m ? m : "");
		json_decref(doc);
		return EV_REG_ERROR;
	}
	*js = doc;
	return EV_REG_OK;
}

/* ---- the copy on disk: <dir>/<escaped subject>@<version|latest>.json, written then renamed:
 * {"subject","version","id","sha256","schema":"<the resolved document's text>"} */

static int cache_path(const ev_registry *r, ev_buf *b, const char *subject, int version)
{
	ev_buf_reset(b);
	int rc = ev_buf_puts(b, r->cache_dir);
	rc |= ev_buf_putc(b, '/');
	for (const unsigned char *p = (const unsigned char *)subject; *p; p++) {
		if (isalnum(*p) || *p == '.' || *p == '_' || *p == '-')
			rc |= ev_buf_putc(b, (char)*p);
		else
			rc |= ev_buf_printf(b, "%%%02X", *p);
	}
	if (version > 0)
		rc |= ev_buf_printf(b, "@%d.json", version);
	else
		rc |= ev_buf_puts(b, "@latest.json");
	return rc;
}

static void cache_put(ev_registry *r, const ev_reg_schema *s, int version, const char *text)
{
	ev_buf path = {0}, tmp = {0};
	json_t *js = json_pack("{s:s,s:i,s:i,s:s,s:s}", "subject", s->subject, "version",
			       s->version, "id", s->id, "sha256", s->sha256, "schema", text);
	if (js && cache_path(r, &path, s->subject, version) == 0 &&
	    ev_buf_printf(&tmp, "%s.tmp.%ld", ev_buf_cstr(&path), (long)getpid()) == 0 &&
	    json_dump_file(js, ev_buf_cstr(&tmp), JSON_COMPACT) == 0 &&
	    rename(ev_buf_cstr(&tmp), ev_buf_cstr(&path)) != 0)
		unlink(ev_buf_cstr(&tmp));
	json_decref(js);
	ev_buf_free(&path);
	ev_buf_free(&tmp);
}

static int cache_get(ev_registry *r, const char *subject, int version, ev_reg_schema *out,
		     char *err, size_t errlen)
{
	ev_buf path = {0};
	json_error_t jerr;
	int rc = EV_REG_UNAVAILABLE;
	if (!r->cache_dir || cache_path(r, &path, subject, version) < 0) {
		ev_buf_free(&path);
		return rc;
	}
	json_t *js = json_load_file(ev_buf_cstr(&path), 0, &jerr);
	const char *text = json_string_value(json_object_get(js, "schema"));
	const char *sha = json_string_value(json_object_get(js, "sha256"));
	char hex[65];
	if (!js) {
		char ver[16] = "latest";
		size_t n = strlen(err);
		if (version > 0)
			snprintf(ver, sizeof(ver), "%d", version);
		snprintf(err + n, errlen - n, "; no cached copy of '%s' version %s in '%s'",
			 subject, ver, r->cache_dir);
	} else if (!text || !sha || (ev_sha256_hex(text, strlen(text), hex), strcmp(hex, sha))) {
		snprintf(err, errlen, "the cached copy '%s' is damaged (its hash does not match)",
			 ev_buf_cstr(&path));
		rc = EV_REG_ERROR;
	} else if (!(out->doc = json_loads(text, 0, &jerr))) {
		snprintf(err, errlen, "the cached copy '%s' is not JSON", ev_buf_cstr(&path));
		rc = EV_REG_ERROR;
	} else {
		snprintf(out->subject, sizeof(out->subject), "%s", subject);
		out->version = (int)json_integer_value(json_object_get(js, "version"));
		out->id = (int)json_integer_value(json_object_get(js, "id"));
		memcpy(out->sha256, hex, sizeof(hex));
		out->from_cache = 1;
		rc = EV_REG_OK;
	}
	json_decref(js);
	ev_buf_free(&path);
	return rc;
}

/* ---- schemas and their references */

static int fetch_depth(ev_registry *r, const char *subject, int version, int id, int depth,
		       ev_reg_schema *out, char *err, size_t errlen);

/* Parse the answer's "schema" and embed its "references" under "definitions". */
static int resolve(ev_registry *r, json_t *answer, int depth, ev_reg_schema *out, char *err,
		   size_t errlen)
{
	const char *text = json_string_value(json_object_get(answer, "schema"));
	const char *type = json_string_value(json_object_get(answer, "schemaType"));
	json_error_t jerr;
	if (type && strcmp(type, "JSON") != 0) {
		snprintf(err, errlen, "schema type %s: only JSON schemas can be contracts", type);
		return EV_REG_ERROR;
	}
	if (!text || !(out->doc = json_loads(text, 0, &jerr)) || !json_is_object(out->doc)) {
		snprintf(err, errlen, "the registry's schema is not a JSON object");
		return EV_REG_ERROR;
	}
	json_t *refs = json_object_get(answer, "references");
	size_t i;
	json_t *ref;
	json_array_foreach(refs, i, ref)
	{
		const char *name = json_string_value(json_object_get(ref, "name"));
		const char *sub = json_string_value(json_object_get(ref, "subject"));
		int ver = (int)json_integer_value(json_object_get(ref, "version"));
		if (!name || !sub || ver < 1) {
			snprintf(err, errlen, "a reference without name, subject or version");
			return EV_REG_ERROR;
		}
		if (depth >= MAX_REF_DEPTH) {
			snprintf(err, errlen, "references nested deeper than %d", MAX_REF_DEPTH);
			return EV_REG_ERROR;
		}
		ev_reg_schema sub_s = {0};
		int rc = fetch_depth(r, sub, ver, 0, depth + 1, &sub_s, err, errlen);
		if (rc != EV_REG_OK)
			return rc;
		json_t *defs = json_object_get(out->doc, "definitions");
		if (!defs) {
			defs = json_object();
			json_object_set_new(out->doc, "definitions", defs);
		}
		char key[300];
		snprintf(key, sizeof(key), "evpipe-ref:%s", name);
		json_object_set_new(sub_s.doc, "$id", json_string(name));
		json_object_del(sub_s.doc, "$schema");
		if (!json_is_object(defs) || json_object_set(defs, key, sub_s.doc) < 0) {
			ev_reg_schema_clear(&sub_s);
			snprintf(err, errlen, "cannot embed the reference '%s'", name);
			return EV_REG_ERROR;
		}
		ev_reg_schema_clear(&sub_s);
	}
	return EV_REG_OK;
}

static int fetch_depth(ev_registry *r, const char *subject, int version, int id, int depth,
		       ev_reg_schema *out, char *err, size_t errlen)
{
	ev_buf path = {0};
	json_t *answer = NULL;
	int rc;
	memset(out, 0, sizeof(*out));
	if (id > 0)
		rc = ev_buf_printf(&path, "/schemas/ids/%d", id);
	else if ((rc = ev_buf_puts(&path, "/subjects/")) == 0 &&
		 (rc = put_escaped(r, &path, subject)) == 0)
		rc = version > 0 ? ev_buf_printf(&path, "/versions/%d", version)
				 : ev_buf_puts(&path, "/versions/latest");
	if (rc < 0) {
		snprintf(err, errlen, "out of memory");
		ev_buf_free(&path);
		return EV_REG_ERROR;
	}
	rc = request(r, ev_buf_cstr(&path), NULL, &answer, err, errlen);
	ev_buf_free(&path);
	if (rc == EV_REG_OK)
		rc = resolve(r, answer, depth, out, err, errlen);
	if (rc == EV_REG_OK) {
		snprintf(out->subject, sizeof(out->subject), "%s", id > 0 ? "" : subject);
		out->version = (int)json_integer_value(json_object_get(answer, "version"));
		out->id = id > 0 ? id : (int)json_integer_value(json_object_get(answer, "id"));
	}
	json_decref(answer);
	if (rc != EV_REG_OK)
		ev_reg_schema_clear(out);
	return rc;
}

int ev_registry_fetch(ev_registry *r, const char *subject, int version, int allow_cache,
		      ev_reg_schema *out, char *err, size_t errlen)
{
	int rc = fetch_depth(r, subject, version, 0, 0, out, err, errlen);
	if (rc == EV_REG_OK) {
		char *text = json_dumps(out->doc, JSON_COMPACT | JSON_SORT_KEYS);
		if (!text) {
			ev_reg_schema_clear(out);
			snprintf(err, errlen, "out of memory");
			return EV_REG_ERROR;
		}
		ev_sha256_hex(text, strlen(text), out->sha256);
		if (r->cache_dir) {
			cache_put(r, out, out->version, text);
			if (version == 0)
				cache_put(r, out, 0, text);
		}
		free(text);
		return rc;
	}
	if (rc == EV_REG_UNAVAILABLE && allow_cache)
		return cache_get(r, subject, version, out, err, errlen);
	return rc;
}

int ev_registry_fetch_id(ev_registry *r, int id, ev_reg_schema *out, char *err, size_t errlen)
{
	return fetch_depth(r, "", 0, id, 0, out, err, errlen);
}

int ev_registry_id_in_subject(ev_registry *r, int id, const char *subject, int *version, char *err,
			      size_t errlen)
{
	char path[64];
	json_t *answer;
	snprintf(path, sizeof(path), "/schemas/ids/%d/versions", id);
	int rc = request(r, path, NULL, &answer, err, errlen);
	if (rc == EV_REG_NOT_FOUND)
		return 0;
	if (rc != EV_REG_OK)
		return rc;
	size_t i;
	json_t *sv;
	*version = 0;
	json_array_foreach(answer, i, sv)
	{
		const char *s = json_string_value(json_object_get(sv, "subject"));
		int v = (int)json_integer_value(json_object_get(sv, "version"));
		if (s && strcmp(s, subject) == 0 && v > *version)
			*version = v;
	}
	json_decref(answer);
	return *version > 0;
}

int ev_registry_latest_version(ev_registry *r, const char *subject, int *version, char *err,
			       size_t errlen)
{
	ev_buf path = {0};
	json_t *answer;
	int rc = EV_REG_ERROR;
	if (ev_buf_puts(&path, "/subjects/") == 0 && put_escaped(r, &path, subject) == 0 &&
	    ev_buf_puts(&path, "/versions") == 0)
		rc = request(r, ev_buf_cstr(&path), NULL, &answer, err, errlen);
	else
		snprintf(err, errlen, "out of memory");
	ev_buf_free(&path);
	if (rc != EV_REG_OK)
		return rc;
	*version = 0;
	size_t i;
	json_t *v;
	json_array_foreach(answer, i, v)
	{
		if (json_integer_value(v) > *version)
			*version = (int)json_integer_value(v);
	}
	json_decref(answer);
	return *version > 0 ? EV_REG_OK : EV_REG_NOT_FOUND;
}

/* {"schemaType":"JSON","schema":"<text>"} into r->body. */
static int schema_body(ev_registry *r, const char *schema_text, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *doc = json_loads(schema_text, 0, &jerr);
	if (!doc) {
		snprintf(err, errlen, "the schema is not JSON: %s (line %d)", jerr.text, jerr.line);
		return -1;
	}
	char *compact = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	json_t *b =
		compact ? json_pack("{s:s,s:s}", "schemaType", "JSON", "schema", compact) : NULL;
	free(compact);
	char *text = b ? json_dumps(b, JSON_COMPACT) : NULL;
	json_decref(b);
	ev_buf_reset(&r->body);
	int rc = text ? ev_buf_puts(&r->body, text) : -1;
	free(text);
	if (rc < 0)
		snprintf(err, errlen, "out of memory");
	return rc;
}

/* "/<what>/subjects/<subject><tail>" into b. */
static int subject_path(ev_registry *r, ev_buf *b, const char *what, const char *subject,
			const char *tail)
{
	ev_buf_reset(b);
	/* One append per statement: the operands of '|' are evaluated in no set order. */
	int rc = ev_buf_puts(b, what);
	rc |= ev_buf_puts(b, "/subjects/");
	rc |= put_escaped(r, b, subject);
	rc |= ev_buf_puts(b, tail);
	return rc;
}

int ev_registry_check_compat(ev_registry *r, const char *subject, const char *schema_text,
			     int *compatible, char *level, size_t level_len, json_t **messages,
			     char *err, size_t errlen)
{
	ev_buf path = {0};
	json_t *answer = NULL;
	int rc;
	*compatible = 0;
	if (messages)
		*messages = NULL;
	if (schema_body(r, schema_text, err, errlen) < 0)
		return EV_REG_ERROR;
	if (level && level_len) {
		snprintf(level, level_len, "BACKWARD");
		ev_buf_reset(&path);
		if (ev_buf_puts(&path, "/config/") < 0 || put_escaped(r, &path, subject) < 0)
			goto oom;
		rc = request(r, ev_buf_cstr(&path), NULL, &answer, err, errlen);
		if (rc == EV_REG_NOT_FOUND)
			rc = request(r, "/config", NULL, &answer, err, errlen);
		if (rc == EV_REG_UNAVAILABLE || rc == EV_REG_ERROR) {
			ev_buf_free(&path);
			return rc;
		}
		const char *l = json_string_value(json_object_get(answer, "compatibilityLevel"));
		if (!l)
			l = json_string_value(json_object_get(answer, "compatibility"));
		if (l)
			snprintf(level, level_len, "%s", l);
		json_decref(answer);
	}
	if (subject_path(r, &path, "/compatibility", subject, "/versions/latest?verbose=true"))
		goto oom;
	rc = request(r, ev_buf_cstr(&path), ev_buf_cstr(&r->body), &answer, err, errlen);
	ev_buf_free(&path);
	if (rc == EV_REG_NOT_FOUND) {
		*compatible = 1; /* nothing registered yet: nothing to break */
		return EV_REG_OK;
	}
	if (rc != EV_REG_OK)
		return rc;
	*compatible = json_is_true(json_object_get(answer, "is_compatible"));
	if (messages) {
		*messages = json_object_get(answer, "messages");
		json_incref(*messages);
	}
	json_decref(answer);
	return EV_REG_OK;
oom:
	ev_buf_free(&path);
	snprintf(err, errlen, "out of memory");
	return EV_REG_ERROR;
}

int ev_registry_register(ev_registry *r, const char *subject, const char *schema_text, int *id,
			 char *err, size_t errlen)
{
	ev_buf path = {0};
	json_t *answer;
	if (schema_body(r, schema_text, err, errlen) < 0)
		return EV_REG_ERROR;
	if (subject_path(r, &path, "", subject, "/versions")) {
		ev_buf_free(&path);
		snprintf(err, errlen, "out of memory");
		return EV_REG_ERROR;
	}
	int rc = request(r, ev_buf_cstr(&path), ev_buf_cstr(&r->body), &answer, err, errlen);
	ev_buf_free(&path);
	if (rc != EV_REG_OK)
		return rc == EV_REG_NOT_FOUND ? EV_REG_ERROR : rc;
	*id = (int)json_integer_value(json_object_get(answer, "id"));
	json_decref(answer);
	return EV_REG_OK;
}
