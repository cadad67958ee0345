/* SPDX-License-Identifier: Apache-2.0 */
/* checkpoint.c: the checkpoint protocol over a store. */
#include "checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ht.h"
#include "log.h"
#include "ndjson.h"
#include "sha256.h"

int ev_ckpt_opt_mismatch(const ev_option *o, char *arg, char *err, size_t errlen)
{
	ev_ckpt *ck = o->value;
	(void)err, (void)errlen;
	/* Checked in ev_ckpt_open, where an error has a buffer. */
	ck->allow_mismatch = strcmp(arg, "allow") == 0 ? 1 : strcmp(arg, "refuse") == 0 ? 0 : -1;
	return 0;
}

int ev_ckpt_copy_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > 64 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return 0;
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
	       n;
}

const char *ev_ckpt_where(const ev_ckpt *o)
{
	return o->root ? o->root : o->job;
}

void ev_ckpt_root(ev_buf *b, const char *job, const char *copy)
{
	ev_buf_reset(b);
	ev_buf_printf(b, copy ? "%s/copies/%s" : "%s", job, copy);
}

int ev_ckpt_open(ev_ckpt *o, const char *job, const char *tool, char *err, size_t errlen)
{
	o->job = job;
	o->root = NULL;
	if (!o->stage)
		o->stage = tool;
	if (o->copy && !ev_ckpt_copy_ok(o->copy)) {
		snprintf(err, errlen,
			 "invalid --copy '%s': want 1 to 64 letters, digits, '.', '_' or '-'",
			 o->copy);
		return -1;
	}
	if (o->copy) {
		ev_buf root = EV_BUF_INIT;
		ev_ckpt_root(&root, job, o->copy);
		o->root = o->root_owned = strdup(ev_buf_cstr(&root));
		ev_buf_free(&root);
		if (!o->root) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	if (o->allow_mismatch < 0) {
		snprintf(err, errlen, "invalid --restore-mismatch: want refuse or allow");
		return -1;
	}
	if (o->restore && strcmp(o->restore, "none") != 0 && !o->url) {
		snprintf(err, errlen, "--restore needs --checkpoint-store");
		return -1;
	}
	if (!o->url)
		return 0;
	if (!ev_ckpt_names_ok(o->root, o->stage)) {
		snprintf(err, errlen, "job '%s' or stage '%s' cannot name a checkpoint", job,
			 o->stage);
		return -1;
	}
	o->store = ev_store_open(o->url, err, errlen);
	return o->store ? 0 : -1;
}

void ev_ckpt_close(ev_ckpt *o)
{
	ev_store_close(o->store);
	o->store = NULL;
	json_decref(o->identity);
	o->identity = NULL;
	free(o->root_owned);
	o->root_owned = NULL;
	o->root = NULL;
}

void ev_ckpt_set_identity(ev_ckpt *o, json_t *identity)
{
	json_decref(o->identity);
	o->identity = identity;
}

/* A checkpoint's directory is "<job>/" CHK_PREFIX "<N>"; the names of its keys: a part is
 * "<stage>" PART_SUFFIX. */
#define CHK_PREFIX "chk-"
#define MANIFEST_NAME "_manifest.json"
#define PART_SUFFIX ".json"

static int64_t get_int(const json_t *o, const char *name, int64_t absent)
{
	const json_t *v = json_object_get(o, name);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : absent;
}

void ev_ckpt_file_read(const json_t *obj, ev_ckpt_file *f)
{
	f->name = json_string_value(json_object_get(obj, "name"));
	f->key = json_string_value(json_object_get(obj, "key"));
	f->sha256 = json_string_value(json_object_get(obj, "sha256"));
	f->size = get_int(obj, "size", -1);
}

json_t *ev_ckpt_file_new(const ev_ckpt_file *f)
{
	return json_pack("{s:s, s:s, s:I, s:s}", "name", f->name, "key", f->key, "size",
			 (json_int_t)f->size, "sha256", f->sha256);
}

void ev_ckpt_part_read(const json_t *obj, ev_ckpt_part *p)
{
	p->stage = json_string_value(json_object_get(obj, "stage"));
	p->checkpoint = get_int(obj, "checkpoint", 0);
	p->at = get_int(obj, "at", 0);
	p->duration_ms = get_int(obj, "duration_ms", -1);
	p->injected_at = get_int(obj, "injected_at", 0);
	p->bytes = get_int(obj, "bytes", 0);
	p->uploaded_bytes = get_int(obj, "uploaded_bytes", 0);
	p->files = json_object_get(obj, "files");
	p->offsets = json_object_get(obj, "offsets");
	p->identity = json_object_get(obj, "identity");
}

json_t *ev_ckpt_part_new(const ev_ckpt_part *p)
{
	json_t *o = json_object();
	int rc = o ? 0 : -1;
	if (rc == 0 && p->files) {
		/* In this order: the document is written with its keys in insertion order. */
		rc = json_object_set(o, "files", (json_t *)p->files);
		rc |= json_object_set_new(o, "bytes", json_integer(p->bytes));
		rc |= json_object_set_new(o, "uploaded_bytes", json_integer(p->uploaded_bytes));
	}
	if (rc == 0 && p->offsets)
		rc = json_object_set(o, "offsets", (json_t *)p->offsets);
	if (rc == 0 && p->injected_at)
		rc = json_object_set_new(o, "injected_at", json_integer(p->injected_at));
	if (rc == 0 && p->duration_ms != -1)
		rc = json_object_set_new(o, "duration_ms", json_integer(p->duration_ms));
	if (rc != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

size_t ev_ckpt_part_nfiles(const ev_ckpt_part *p)
{
	return json_array_size(p->files);
}

void ev_ckpt_part_file(const ev_ckpt_part *p, size_t i, ev_ckpt_file *f)
{
	ev_ckpt_file_read(json_array_get(p->files, i), f);
}

void ev_ckpt_manifest_read(const json_t *obj, ev_ckpt_manifest *m)
{
	m->job = json_string_value(json_object_get(obj, "job"));
	m->id = get_int(obj, "id", 0);
	m->started_at = get_int(obj, "started_at", 0);
	m->completed_at = get_int(obj, "completed_at", 0);
	m->duration_ms = get_int(obj, "duration_ms", -1);
	m->bytes = get_int(obj, "bytes", 0);
	m->uploaded_bytes = get_int(obj, "uploaded_bytes", 0);
	m->offsets = json_object_get(obj, "offsets");
	m->parts = json_object_get(obj, "parts");
	m->copy = json_string_value(json_object_get(obj, "copy"));
	m->partitions = json_object_get(obj, "partitions");
}

json_t *ev_ckpt_manifest_new(const ev_ckpt_manifest *m, json_t *parts, json_t *offsets)
{
	json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:O, s:O}", "job", m->job, "id",
			      (json_int_t)m->id, "started_at", (json_int_t)m->started_at,
			      "completed_at", (json_int_t)m->completed_at, "duration_ms",
			      (json_int_t)m->duration_ms, "bytes", (json_int_t)m->bytes,
			      "uploaded_bytes", (json_int_t)m->uploaded_bytes, "offsets", offsets,
			      "parts", parts);
	if (o && ((m->copy && json_object_set_new(o, "copy", json_string(m->copy))) ||
		  (m->partitions && json_object_set(o, "partitions", (json_t *)m->partitions)))) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *ev_ckpt_manifest_partitions(const json_t *parts)
{
	const char *stage;
	json_t *part, *el, *by = json_object(), *list = NULL;
	size_t i;
	if (!by)
		return NULL;
	json_object_foreach((json_t *)parts, stage, part)
	{
		json_array_foreach(json_object_get(part, "partitions"), i, el)
		{
			const char *topic = json_string_value(json_object_get(el, "topic"));
			json_int_t p = json_integer_value(json_object_get(el, "partition"));
			char name[300];
			if (!topic)
				continue;
			/* Sorted by topic, then partition number: zero-padded. */
			snprintf(name, sizeof(name), "%s/%010" JSON_INTEGER_FORMAT, topic, p);
			json_t *entry = json_object_get(by, name);
			if (!entry) {
				entry = json_pack("{s:s, s:I, s:O, s:{}}", "topic", topic,
						  "partition", p, "offset",
						  json_object_get(el, "offset"), "state");
				if (!entry || json_object_set_new(by, name, entry) < 0)
					goto fail;
			}
			json_t *st = json_pack("{s:O, s:O, s:O}", "key", json_object_get(el, "key"),
					       "windows", json_object_get(el, "windows"), "bytes",
					       json_object_get(el, "bytes"));
			if (!st ||
			    json_object_set_new(json_object_get(entry, "state"), stage, st) < 0)
				goto fail;
		}
	}
	if (json_object_size(by)) {
		const char **names = calloc(json_object_size(by), sizeof(*names));
		size_t n = 0;
		const char *name;
		json_t *entry;
		list = names ? json_array() : NULL;
		json_object_foreach(by, name, entry)
		{
			if (names)
				names[n++] = name;
		}
		if (names)
			qsort(names, n, sizeof(*names), cmp_cstr);
		for (size_t j = 0; list && j < n; j++)
			if (json_array_append(list, json_object_get(by, names[j])) < 0) {
				json_decref(list);
				list = NULL;
			}
		free(names);
	}
fail:
	json_decref(by);
	return list;
}

static int cmp_offset(const char *topic, int32_t partition, const ev_ckpt_offset *e)
{
	int t = strcmp(topic, e->topic);
	return t ? t : (partition > e->partition) - (partition < e->partition);
}

/* Where topic's partition is in o, or would be inserted (*hit 0). */
static size_t offsets_find(const ev_ckpt_offsets *o, const char *topic, int32_t partition, int *hit)
{
	size_t lo = 0, hi = o->n;
	*hit = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmp_offset(topic, partition, &o->v[mid]);
		if (c == 0) {
			*hit = 1;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

int ev_ckpt_offsets_set(ev_ckpt_offsets *o, const char *topic, int32_t partition, int64_t offset)
{
	int hit;
	size_t at = offsets_find(o, topic, partition, &hit);
	if (hit) {
		o->v[at].offset = offset;
		return 0;
	}
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 16;
		ev_ckpt_offset *v = realloc(o->v, cap * sizeof(*v));
		if (!v)
			return -1;
		o->v = v;
		o->cap = cap;
	}
	memmove(&o->v[at + 1], &o->v[at], (o->n - at) * sizeof(*o->v));
	o->v[at].topic = strdup(topic);
	if (!o->v[at].topic) {
		memmove(&o->v[at], &o->v[at + 1], (o->n - at) * sizeof(*o->v));
		return -1;
	}
	o->v[at].partition = partition;
	o->v[at].offset = offset;
	o->n++;
	return 0;
}

const ev_ckpt_offset *ev_ckpt_offsets_get(const ev_ckpt_offsets *o, const char *topic,
					  int32_t partition)
{
	int hit;
	size_t at = offsets_find(o, topic, partition, &hit);
	return hit ? &o->v[at] : NULL;
}

void ev_ckpt_offsets_free(ev_ckpt_offsets *o)
{
	for (size_t i = 0; i < o->n; i++)
		free(o->v[i].topic);
	free(o->v);
	memset(o, 0, sizeof(*o));
}

int ev_ckpt_offsets_parse(const json_t *j, ev_ckpt_offsets *o, char *err, size_t errlen)
{
	const json_t *parts, *off;
	const char *topic, *p;
	ev_ckpt_offsets_free(o);
	if (!j)
		return 0;
	if (!json_is_object(j)) {
		snprintf(err, errlen, "the manifest's offsets are not an object");
		return -1;
	}
	json_object_foreach((json_t *)j, topic, parts)
	{
		if (!*topic || !json_is_object(parts)) {
			snprintf(err, errlen,
				 "the manifest's offsets of topic '%s' are not an object", topic);
			goto fail;
		}
		json_object_foreach((json_t *)parts, p, off)
		{
			char *end;
			errno = 0;
			long long n = strtoll(p, &end, 10);
			if (!*p || *end || n < 0 || n > INT32_MAX || errno ||
			    !json_is_integer(off) || json_integer_value(off) < 0) {
				snprintf(err, errlen,
					 "the manifest's offset of '%s' partition '%s' is not a "
					 "partition number and an offset from 0",
					 topic, p);
				goto fail;
			}
			if (ev_ckpt_offsets_set(o, topic, (int32_t)n,
						(int64_t)json_integer_value(off)) < 0) {
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
		}
	}
	return 0;
fail:
	ev_ckpt_offsets_free(o);
	return -1;
}

json_t *ev_ckpt_offsets_json(const ev_ckpt_offsets *o)
{
	json_t *all = json_object(), *t = NULL;
	const char *topic = NULL;
	for (size_t i = 0; all && i < o->n; i++) {
		char num[16];
		if (!topic || strcmp(topic, o->v[i].topic) != 0) {
			topic = o->v[i].topic;
			if (json_object_set_new(all, topic, t = json_object()) < 0)
				goto fail;
		}
		snprintf(num, sizeof(num), "%" PRId32, o->v[i].partition);
		if (json_object_set_new(t, num, json_integer(o->v[i].offset)) < 0)
			goto fail;
	}
	return all;
fail:
	json_decref(all);
	return NULL;
}

void ev_ckpt_dir(ev_buf *b, const char *job, int64_t id)
{
	ev_buf_reset(b);
	ev_buf_printf(b, "%s/" CHK_PREFIX "%010" PRId64, job, id);
}

void ev_ckpt_key(ev_buf *b, const char *job, int64_t id, const char *name)
{
	ev_ckpt_dir(b, job, id);
	ev_buf_printf(b, "/%s", name);
}

void ev_ckpt_part_key(ev_buf *b, const char *job, int64_t id, const char *stage)
{
	ev_ckpt_dir(b, job, id);
	ev_buf_printf(b, "/%s" PART_SUFFIX, stage);
}

void ev_ckpt_manifest_key(ev_buf *b, const char *job, int64_t id)
{
	ev_ckpt_key(b, job, id, MANIFEST_NAME);
}

size_t ev_ckpt_key_job(const char *key)
{
	const char *slash = strchr(key, '/');
	if (!slash || strncmp(slash + 1, CHK_PREFIX, strlen(CHK_PREFIX)) != 0)
		return 0;
	return (size_t)(slash - key);
}

int ev_ckpt_names_ok(const char *job, const char *stage)
{
	ev_buf key = EV_BUF_INIT;
	ev_ckpt_part_key(&key, job, 1, stage);
	int ok = ev_store_key_ok(ev_buf_cstr(&key));
	ev_ckpt_key(&key, job, 1, stage); /* the directory of its files */
	ok = ok && ev_store_key_ok(ev_buf_cstr(&key));
	ev_buf_free(&key);
	return ok;
}

int ev_ckpt_put_json(ev_store *s, const char *key, const json_t *v, char *err, size_t errlen)
{
	char *text = json_dumps(v, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	if (!text) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int rc = ev_store_put(s, key, text, strlen(text), err, errlen);
	free(text);
	return rc;
}

json_t *ev_ckpt_get_json(ev_store *s, const char *key, int *found, char *err, size_t errlen)
{
	ev_buf b = EV_BUF_INIT;
	json_error_t jerr;
	*found = ev_store_get(s, key, &b, err, errlen);
	if (*found != 1) {
		ev_buf_free(&b);
		return NULL;
	}
	json_t *v = json_loadb(b.data ? b.data : "", b.len, JSON_REJECT_DUPLICATES, &jerr);
	ev_buf_free(&b);
	if (!json_is_object(v)) {
		snprintf(err, errlen, "%s is not a JSON object: %s", key, v ? "" : jerr.text);
		json_decref(v);
		*found = -1;
		return NULL;
	}
	return v;
}

int ev_ckpt_put_part(ev_ckpt *o, int64_t id, json_t *part, char *err, size_t errlen)
{
	ev_buf key = EV_BUF_INIT;
	json_object_set_new(part, "stage", json_string(o->stage));
	json_object_set_new(part, "checkpoint", json_integer(id));
	json_object_set_new(part, "at", json_integer(ev_wall_ms()));
	if (o->identity)
		json_object_set(part, "identity", o->identity);
	ev_ckpt_part_key(&key, ev_ckpt_where(o), id, o->stage);
	int rc = ev_ckpt_put_json(o->store, ev_buf_cstr(&key), part, err, errlen);
	ev_buf_free(&key);
	json_decref(part);
	return rc;
}

struct listing {
	ev_ckpt_entry *e;
	size_t n, cap;
	size_t prefix_len;
};

static int add_stage(ev_ckpt_entry *e, const char *name, size_t len)
{
	char **st = realloc(e->stages, (e->parts + 1) * sizeof(*st));
	if (!st)
		return -1;
	e->stages = st;
	if (!(st[e->parts] = strndup(name, len)))
		return -1;
	e->parts++;
	return 0;
}

static int on_key(const char *key, uint64_t size, void *arg)
{
	struct listing *l = arg;
	const char *rest = key + l->prefix_len; /* "0000000042/name" */
	char *end;
	long long id = strtoll(rest, &end, 10);
	if (end == rest || *end != '/' || id <= 0)
		return 0; /* not a checkpoint's key */
	if (l->n == 0 || l->e[l->n - 1].id != id) {
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 16;
			ev_ckpt_entry *e = realloc(l->e, cap * sizeof(*e));
			if (!e)
				return 2;
			l->e = e;
			l->cap = cap;
		}
		memset(&l->e[l->n], 0, sizeof(l->e[l->n]));
		l->e[l->n++].id = id;
	}
	ev_ckpt_entry *e = &l->e[l->n - 1];
	const char *name = end + 1;
	size_t len = strlen(name);
	e->bytes += size;
	size_t slen = strlen(PART_SUFFIX);
	if (strcmp(name, MANIFEST_NAME) == 0)
		e->complete = 1;
	else if (len > slen && !strchr(name, '/') && strcmp(name + len - slen, PART_SUFFIX) == 0 &&
		 add_stage(e, name, len - slen) < 0)
		return 2;
	return 0;
}

int ev_ckpt_list(ev_store *s, const char *job, ev_ckpt_entry **entries, size_t *n, char *err,
		 size_t errlen)
{
	ev_buf prefix = EV_BUF_INIT;
	ev_buf_printf(&prefix, "%s/" CHK_PREFIX, job);
	struct listing l = {NULL, 0, 0, prefix.len};
	int rc = ev_store_list(s, ev_buf_cstr(&prefix), on_key, &l, err, errlen);
	ev_buf_free(&prefix);
	if (rc != 0) {
		if (rc > 0)
			snprintf(err, errlen, "out of memory");
		ev_ckpt_entries_free(l.e, l.n);
		return -1;
	}
	*entries = l.e;
	*n = l.n;
	return 0;
}

void ev_ckpt_entries_free(ev_ckpt_entry *entries, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < entries[i].parts; j++)
			free(entries[i].stages[j]);
		free(entries[i].stages);
	}
	free(entries);
}

int ev_ckpt_resolve(ev_store *s, const char *job, const char *which, int64_t *id, char *err,
		    size_t errlen)
{
	ev_ckpt_entry *e;
	size_t n;
	*id = 0;
	if (!which || strcmp(which, "none") == 0)
		return 0;
	char *end;
	long long want = strtoll(which, &end, 10);
	if (strcmp(which, "latest") != 0 && (*end || end == which || want <= 0)) {
		snprintf(err, errlen, "invalid checkpoint '%s': want latest, none or an id", which);
		return -1;
	}
	if (ev_ckpt_list(s, job, &e, &n, err, errlen) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < n; i++)
		if (e[i].complete && (strcmp(which, "latest") == 0 || e[i].id == want))
			*id = e[i].id;
	if (strcmp(which, "latest") != 0 && *id == 0) {
		snprintf(err, errlen, "checkpoint %lld of job '%s' is not complete in %s", want,
			 job, ev_store_url(s));
		rc = -1;
	}
	ev_ckpt_entries_free(e, n);
	return rc;
}

/* Add the keys of the files a part references to keep. */
static int keep_files(ev_ht *keep, const json_t *part)
{
	ev_ckpt_part p;
	ev_ckpt_part_read(part, &p);
	for (size_t i = 0; i < ev_ckpt_part_nfiles(&p); i++) {
		ev_ckpt_file f;
		ev_ckpt_part_file(&p, i, &f);
		if (f.key && ev_ht_put(keep, f.key, strlen(f.key), keep) < 0)
			return -1;
	}
	return 0;
}

struct shared_walk {
	ev_ht *keep;
	char **del;
	size_t n, cap;
};

static int on_shared(const char *key, uint64_t size, void *arg)
{
	struct shared_walk *w = arg;
	(void)size;
	if (ev_ht_get(w->keep, key, strlen(key)))
		return 0;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		char **d = realloc(w->del, cap * sizeof(*d));
		if (!d)
			return 2;
		w->del = d;
		w->cap = cap;
	}
	return (w->del[w->n++] = strdup(key)) ? 0 : 2;
}

static int collect_keys(const char *key, uint64_t size, void *arg)
{
	return on_shared(key, size, arg);
}

/* A key ".../" MANIFEST_NAME. */
static int is_manifest_key(const char *k)
{
	size_t len = strlen(k), mlen = strlen("/" MANIFEST_NAME);
	return len > mlen && strcmp(k + len - mlen, "/" MANIFEST_NAME) == 0;
}

int ev_ckpt_prune(ev_store *s, const char *job, int keep, char *err, size_t errlen)
{
	ev_ckpt_entry *e;
	size_t n;
	int deleted = 0, rc = 0;
	if (keep < 1) {
		snprintf(err, errlen, "at least one complete checkpoint must be kept");
		return -1;
	}
	if (ev_ckpt_list(s, job, &e, &n, err, errlen) < 0)
		return -1;
	int64_t newest = 0, oldest_kept = INT64_MAX;
	int complete = 0;
	for (size_t i = n; i-- > 0;)
		if (e[i].complete) {
			if (!newest)
				newest = e[i].id;
			if (complete++ < keep)
				oldest_kept = e[i].id;
		}
	ev_ht *kept = ev_ht_new();
	struct shared_walk doomed = {ev_ht_new(), NULL, 0, 0}; /* nothing is kept: collect all */
	ev_buf key = EV_BUF_INIT;
	if (!kept || !doomed.keep) {
		snprintf(err, errlen, "out of memory");
		rc = -1;
		goto out;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		int stays = e[i].id >= oldest_kept || e[i].id > newest || newest == 0;
		if (!stays) {
			ev_ckpt_dir(&key, job, e[i].id);
			ev_buf_putc(&key, '/');
			if (ev_store_list(s, ev_buf_cstr(&key), collect_keys, &doomed, err, errlen))
				rc = -1;
			continue;
		}
		/* What it references stays: its parts' files. */
		for (size_t j = 0; j < e[i].parts && rc == 0; j++) {
			int found;
			ev_ckpt_part_key(&key, job, e[i].id, e[i].stages[j]);
			json_t *part = ev_ckpt_get_json(s, ev_buf_cstr(&key), &found, err, errlen);
			if (found < 0 || (part && keep_files(kept, part) < 0))
				rc = -1;
			json_decref(part);
		}
	}
	/* The manifest of a checkpoint goes first, so that a prune cut short leaves no
	 * checkpoint that claims to be complete without its files. */
	for (size_t i = 0; i < doomed.n && rc == 0; i++) {
		const char *k = doomed.del[i];
		if (is_manifest_key(k)) {
			rc = ev_store_delete(s, k, err, errlen);
			deleted++;
		}
	}
	for (size_t i = 0; i < doomed.n && rc == 0; i++) {
		const char *k = doomed.del[i];
		if (!is_manifest_key(k)) {
			rc = ev_store_delete(s, k, err, errlen);
			deleted++;
		}
	}
	if (rc == 0) {
		struct shared_walk shared = {kept, NULL, 0, 0};
		ev_buf_reset(&key);
		ev_buf_printf(&key, "%s/shared/", job);
		if (ev_store_list(s, ev_buf_cstr(&key), on_shared, &shared, err, errlen))
			rc = -1;
		for (size_t i = 0; i < shared.n; i++) {
			if (rc == 0) {
				rc = ev_store_delete(s, shared.del[i], err, errlen);
				deleted++;
			}
			free(shared.del[i]);
		}
		free(shared.del);
	}
out:
	for (size_t i = 0; i < doomed.n; i++)
		free(doomed.del[i]);
	free(doomed.del);
	ev_ht_free(doomed.keep);
	ev_ht_free(kept);
	ev_buf_free(&key);
	ev_ckpt_entries_free(e, n);
	return rc < 0 ? -1 : deleted;
}

/* ---- copies of a job, and the hand-over objects they share (ADR 0025) ---- */

struct copy_walk {
	size_t prefix_len;
	char **names;
	size_t n;
};

static int on_copy_key(const char *key, uint64_t size, void *arg)
{
	struct copy_walk *w = arg;
	const char *name = key + w->prefix_len, *slash = strchr(name, '/');
	(void)size;
	if (!slash || strncmp(slash + 1, CHK_PREFIX, strlen(CHK_PREFIX)) != 0)
		return 0;
	size_t len = (size_t)(slash - name);
	if (w->n && strlen(w->names[w->n - 1]) == len &&
	    strncmp(w->names[w->n - 1], name, len) == 0)
		return 0;
	char **more = realloc(w->names, (w->n + 1) * sizeof(*more));
	if (!more)
		return 2;
	w->names = more;
	return (w->names[w->n++] = strndup(name, len)) ? 0 : 2;
}

int ev_ckpt_copies(ev_store *s, const char *job, char ***names, size_t *n, char *err, size_t errlen)
{
	ev_buf prefix = EV_BUF_INIT;
	ev_buf_printf(&prefix, "%s/copies/", job);
	struct copy_walk w = {prefix.len, NULL, 0};
	int rc = ev_store_list(s, ev_buf_cstr(&prefix), on_copy_key, &w, err, errlen);
	ev_buf_free(&prefix);
	if (rc != 0) {
		if (rc > 0)
			snprintf(err, errlen, "out of memory");
		ev_ckpt_copies_free(w.names, w.n);
		return -1;
	}
	*names = w.names;
	*n = w.n;
	return 0;
}

void ev_ckpt_copies_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* A hand-over object found in the store. */
struct handover_obj {
	char *key;
	char *topic;
	int32_t partition;
	int64_t offset;
};

struct handover_walk {
	size_t prefix_len; /* "<job>/handover/" */
	struct handover_obj *v;
	size_t n, cap;
};

/* "<stage>/<partition>-<topic>/<offset, 20 digits>" after the prefix (handover.h). */
static int on_handover_key(const char *key, uint64_t size, void *arg)
{
	struct handover_walk *w = arg;
	const char *rest = strchr(key + w->prefix_len, '/'), *slash2;
	char *end;
	(void)size;
	if (!rest)
		return 0;
	long long part = strtoll(rest + 1, &end, 10);
	if (end == rest + 1 || *end != '-' || part < 0 || part > INT32_MAX ||
	    !(slash2 = strchr(end, '/')))
		return 0;
	const char *topic = end + 1;
	long long off = strtoll(slash2 + 1, &end, 10);
	if (*end || end == slash2 + 1 || off < 0 || slash2 == topic)
		return 0; /* not one of ours */
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 64;
		struct handover_obj *v = realloc(w->v, cap * sizeof(*v));
		if (!v)
			return 2;
		w->v = v;
		w->cap = cap;
	}
	struct handover_obj *o = &w->v[w->n];
	o->key = strdup(key);
	o->topic = strndup(topic, (size_t)(slash2 - topic));
	o->partition = (int32_t)part;
	o->offset = off;
	w->n++;
	return o->key && o->topic ? 0 : 2;
}

/* "topic/partition/offset": one state a checkpoint may resume. */
static int ref_put(ev_ht *refs, const char *topic, int64_t partition, int64_t offset)
{
	char name[320];
	int n = snprintf(name, sizeof(name), "%s/%" PRId64 "/%" PRId64, topic, partition, offset);
	return n > 0 ? ev_ht_put(refs, name, (size_t)n, refs) : -1;
}

/* What the complete checkpoints of root reference: their partitions' states and the offsets
 * a restore resumes partitions at. Returns 0, or -1 with err. */
static int referenced(ev_store *s, const char *root, ev_ht *refs, char *err, size_t errlen)
{
	ev_ckpt_entry *e;
	size_t n;
	ev_buf key = EV_BUF_INIT;
	int rc = 0;
	if (ev_ckpt_list(s, root, &e, &n, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < n && rc == 0; i++) {
		int found;
		if (!e[i].complete)
			continue;
		ev_ckpt_manifest_key(&key, root, e[i].id);
		json_t *m = ev_ckpt_get_json(s, ev_buf_cstr(&key), &found, err, errlen);
		if (found < 0) {
			rc = -1;
			break;
		}
		ev_ckpt_manifest mf = {0};
		ev_ckpt_manifest_read(m, &mf);
		const json_t *el, *parts;
		const char *topic, *p;
		size_t j;
		json_array_foreach(mf.partitions, j, el)
		{
			const char *t = json_string_value(json_object_get(el, "topic"));
			if (t &&
			    ref_put(refs, t, json_integer_value(json_object_get(el, "partition")),
				    json_integer_value(json_object_get(el, "offset"))) < 0)
				rc = -1;
		}
		json_object_foreach((json_t *)mf.offsets, topic, parts)
		{
			json_object_foreach((json_t *)parts, p, el)
			{
				if (ref_put(refs, topic, strtoll(p, NULL, 10),
					    json_integer_value(el)) < 0)
					rc = -1;
			}
		}
		json_decref(m);
		if (rc < 0)
			snprintf(err, errlen, "out of memory");
	}
	ev_ckpt_entries_free(e, n);
	ev_buf_free(&key);
	return rc;
}

int ev_ckpt_prune_handovers(ev_store *s, const char *job, ev_ckpt_committed_fn committed, void *arg,
			    char *err, size_t errlen)
{
	ev_buf prefix = EV_BUF_INIT;
	ev_buf_printf(&prefix, "%s/handover/", job);
	struct handover_walk w = {prefix.len, NULL, 0, 0};
	ev_ckpt_offsets at = EV_CKPT_OFFSETS_INIT;
	ev_ht *refs = ev_ht_new();
	char **copies = NULL;
	size_t ncopies = 0;
	int rc = ev_store_list(s, ev_buf_cstr(&prefix), on_handover_key, &w, err, errlen);
	int deleted = 0;
	if (rc > 0 || !refs)
		snprintf(err, errlen, "out of memory");
	if (rc != 0 || !refs || w.n == 0)
		goto out;
	/* The group's committed offset of each partition that has objects. */
	for (size_t i = 0; i < w.n && rc == 0; i++)
		rc = ev_ckpt_offsets_set(&at, w.v[i].topic, w.v[i].partition, -1);
	if (rc < 0 || committed(&at, arg) < 0) {
		snprintf(err, errlen, rc < 0 ? "out of memory" : "the group's offsets are unknown");
		rc = -1;
		goto out;
	}
	/* What the checkpoints of every copy still reference: the job's own, and each copy's. */
	rc = ev_ckpt_copies(s, job, &copies, &ncopies, err, errlen);
	for (size_t i = 0; i <= ncopies && rc == 0; i++) {
		ev_ckpt_root(&prefix, job, i ? copies[i - 1] : NULL);
		rc = referenced(s, ev_buf_cstr(&prefix), refs, err, errlen);
	}
	for (size_t i = 0; i < w.n && rc == 0; i++) {
		const struct handover_obj *o = &w.v[i];
		const ev_ckpt_offset *c = ev_ckpt_offsets_get(&at, o->topic, o->partition);
		char name[320];
		int len = snprintf(name, sizeof(name), "%s/%" PRId32 "/%" PRId64, o->topic,
				   o->partition, o->offset);
		if (!c || c->offset < 0 || o->offset >= c->offset ||
		    (len > 0 && ev_ht_get(refs, name, (size_t)len)))
			continue;
		rc = ev_store_delete(s, o->key, err, errlen);
		if (rc == 0)
			deleted++;
	}
out:
	for (size_t i = 0; i < w.n; i++) {
		free(w.v[i].key);
		free(w.v[i].topic);
	}
	free(w.v);
	ev_ckpt_copies_free(copies, ncopies);
	ev_ckpt_offsets_free(&at);
	ev_ht_free(refs);
	ev_buf_free(&prefix);
	return rc != 0 ? -1 : deleted;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

json_t *ev_ckpt_upload_dir(ev_ckpt *o, int64_t id, const char *dir, uint64_t *total,
			   uint64_t *uploaded, char *err, size_t errlen)
{
	DIR *d = opendir(dir);
	*err = '\0';
	if (!d) {
		snprintf(err, errlen, "cannot read %s: %s", dir, strerror(errno));
		return NULL;
	}
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	/* One thread reads this directory: readdir is safe here. */
	// cppcheck-suppress readdirCalled
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char **more = realloc(names, (n + 1) * sizeof(*names));
		if (!more || !(more[n] = strdup(de->d_name))) {
			names = more ? more : names;
			break;
		}
		names = more;
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_name);
	json_t *files = json_array();
	ev_buf path = EV_BUF_INIT, key = EV_BUF_INIT;
	*total = *uploaded = 0;
	for (size_t i = 0; i < n && files; i++) {
		char sha[65];
		uint64_t size;
		ev_buf_reset(&path);
		ev_buf_printf(&path, "%s/%s", dir, names[i]);
		if (ev_sha256_file(ev_buf_cstr(&path), sha, &size) < 0) {
			snprintf(err, errlen, "cannot read %s: %s", ev_buf_cstr(&path),
				 strerror(errno));
			goto fail;
		}
		size_t len = strlen(names[i]);
		int shared = len > 4 && strcmp(names[i] + len - 4, ".sst") == 0;
		int present = 0;
		if (shared) {
			ev_buf_reset(&key);
			ev_buf_printf(&key, "%s/shared/%s/%s.sst", ev_ckpt_where(o), o->stage, sha);
			uint64_t have = 0;
			present = ev_store_head(o->store, ev_buf_cstr(&key), &have, err, errlen);
			if (present < 0)
				goto fail;
			present = present && have == size;
		} else {
			ev_ckpt_dir(&key, ev_ckpt_where(o), id);
			ev_buf_printf(&key, "/%s/%s", o->stage, names[i]);
		}
		if (!present) {
			if (ev_store_put_file(o->store, ev_buf_cstr(&key), ev_buf_cstr(&path), err,
					      errlen) < 0)
				goto fail;
			*uploaded += size;
		}
		*total += size;
		ev_ckpt_file entry = {names[i], ev_buf_cstr(&key), sha, (int64_t)size};
		json_array_append_new(files, ev_ckpt_file_new(&entry));
		continue;
fail:
		json_decref(files);
		files = NULL;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	ev_buf_free(&path);
	ev_buf_free(&key);
	if (!files && !*err)
		snprintf(err, errlen, "out of memory");
	return files;
}

int ev_ckpt_download_files(ev_store *s, const json_t *part, const char *dir, char *err,
			   size_t errlen)
{
	ev_buf path = EV_BUF_INIT;
	ev_ckpt_part p;
	int rc = 0;
	ev_ckpt_part_read(part, &p);
	for (size_t i = 0; i < ev_ckpt_part_nfiles(&p); i++) {
		ev_ckpt_file f;
		char sha[65];
		uint64_t got;
		ev_ckpt_part_file(&p, i, &f);
		if (ev_ckpt_file_check(json_array_get(p.files, i), NULL, err, errlen) < 0) {
			rc = -1;
			break;
		}
		ev_buf_reset(&path);
		ev_buf_printf(&path, "%s/%s", dir, f.name);
		int r = ev_store_get_file(s, f.key, ev_buf_cstr(&path), err, errlen);
		if (r == 0)
			snprintf(err, errlen, "%s is missing from %s", f.key, ev_store_url(s));
		if (r != 1) {
			rc = -1;
			break;
		}
		if (ev_sha256_file(ev_buf_cstr(&path), sha, &got) < 0 || got != (uint64_t)f.size ||
		    strcmp(sha, f.sha256) != 0) {
			snprintf(err, errlen, "%s does not match its checksum (corrupt store?)",
				 f.key);
			rc = -1;
			break;
		}
	}
	ev_buf_free(&path);
	return rc;
}

int ev_ckpt_ack(ev_ckpt *o, int64_t id, uint64_t t0_ns, char *err, size_t errlen)
{
	if (!o->store)
		return 0;
	ev_ckpt_part p = {.duration_ms = (int64_t)((ev_mono_ns() - t0_ns) / 1000000)};
	json_t *part = ev_ckpt_part_new(&p);
	if (!part) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return ev_ckpt_put_part(o, id, part, err, errlen);
}

int ev_ckpt_stateless_restore(ev_ckpt *o, char *err, size_t errlen)
{
	ev_ckpt_restored r;
	if (ev_ckpt_restore(o, &r, err, errlen) < 0)
		return -1;
	int64_t id = r.id;
	ev_ckpt_restored_free(&r);
	if (id)
		ev_debug("--restore %s: %s keeps no state; replayed records are written again and "
			 "the sink's idempotence absorbs them",
			 o->restore, o->stage);
	return 0;
}

void ev_ckpt_metrics(ev_ckpt *o, ev_metrics *m)
{
	if (o->url)
		o->failures = ev_metrics_counter(
			m, "evpipe_checkpoint_stage_failures_total",
			"Parts of checkpoints this stage could not write (the store failed)", NULL);
}

void ev_ckpt_failed(ev_ckpt *o, int64_t id, const char *err)
{
	ev_counter_inc(o->failures);
	ev_warn("checkpoint %" PRId64 " failed: %s; going on (the next one tries again)", id, err);
}

/* ---- the manifest: its checksum, and what a restore may rely on ---- */

/* "sha256:<hex>" of m without "checksum", in canonical form, into out. -1 without memory. */
static int manifest_digest(const json_t *m, char out[72])
{
	json_t *c = json_copy((json_t *)m);
	if (!c)
		return -1;
	json_object_del(c, "checksum");
	char *text = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	json_decref(c);
	if (!text)
		return -1;
	char hex[65];
	ev_sha256_hex(text, strlen(text), hex);
	free(text);
	snprintf(out, 72, "sha256:%s", hex);
	return 0;
}

int ev_ckpt_put_manifest(ev_store *s, const char *job, int64_t id, json_t *m, char *err,
			 size_t errlen)
{
	char sum[72];
	ev_buf key = EV_BUF_INIT;
	json_object_set_new(m, "format", json_integer(EV_CKPT_FORMAT));
	if (manifest_digest(m, sum) < 0 || json_object_set_new(m, "checksum", json_string(sum))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	ev_ckpt_manifest_key(&key, job, id);
	int rc = ev_ckpt_put_json(s, ev_buf_cstr(&key), m, err, errlen);
	ev_buf_free(&key);
	return rc;
}

static int valid_file_name(const char *name)
{
	if (!name || !*name || name[0] == '.' || strchr(name, '/') || strlen(name) > 255)
		return 0;
	for (const unsigned char *u = (const unsigned char *)name; *u; u++)
		if (*u < 0x20 || *u == 0x7f)
			return 0;
	return 1;
}

int ev_ckpt_file_check(const json_t *f, const char *job, char *err, size_t errlen)
{
	ev_ckpt_file e;
	ev_ckpt_file_read(f, &e);
	const char *name = e.name, *key = e.key, *sha = e.sha256;
	size_t jlen = job ? strlen(job) : 0;
	if (!valid_file_name(name))
		snprintf(err, errlen, "invalid file name '%s' in a part (want a plain file name)",
			 name ? name : "(none)");
	else if (!key || !ev_store_key_ok(key) ||
		 (job && (strncmp(key, job, jlen) != 0 || key[jlen] != '/')))
		snprintf(err, errlen, "file '%s': invalid key '%s'", name, key ? key : "(none)");
	else if (e.size < 0 || !sha || strlen(sha) != 64 || strspn(sha, "0123456789abcdef") != 64)
		snprintf(err, errlen, "file '%s': no size or SHA-256", name);
	else
		return 0;
	return -1;
}

int ev_ckpt_manifest_check(const json_t *m, const char *job, int64_t id, char *err, size_t errlen)
{
	json_t *sum = json_object_get(m, "checksum");
	json_t *format = json_object_get(m, "format");
	char want[72];
	if (!sum && !format)
		return 1;
	if (!json_is_string(sum) || !json_is_integer(format)) {
		snprintf(err, errlen, "the manifest has %s but no %s",
			 sum ? "a checksum" : "a format", sum ? "format" : "checksum");
		return -1;
	}
	if (manifest_digest(m, want) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (strcmp(want, json_string_value(sum)) != 0) {
		snprintf(err, errlen, "the manifest does not match its checksum");
		return -1;
	}
	if (json_integer_value(format) > EV_CKPT_FORMAT) {
		snprintf(err, errlen,
			 "the manifest is of format %" JSON_INTEGER_FORMAT
			 ", newer than this evpipe's %d",
			 json_integer_value(format), EV_CKPT_FORMAT);
		return -1;
	}
	ev_ckpt_manifest mf;
	ev_ckpt_manifest_read(m, &mf);
	ev_buf root = EV_BUF_INIT;
	if (mf.job)
		ev_ckpt_root(&root, mf.job, mf.copy);
	int other = mf.id != id || !mf.job || strcmp(ev_buf_cstr(&root), job) != 0;
	ev_buf_free(&root);
	if (other) {
		snprintf(err, errlen,
			 "the manifest is that of checkpoint %" PRId64 " of job '%s'%s%s%s", mf.id,
			 mf.job ? mf.job : "?", mf.copy ? " (copy '" : "", mf.copy ? mf.copy : "",
			 mf.copy ? "')" : "");
		return -1;
	}
	if (!json_is_object(mf.parts)) {
		snprintf(err, errlen, "the manifest lists no parts");
		return -1;
	}
	return 0;
}

/* Every file entry of the manifest's parts: 0, or -1 with err. */
static int check_files(const json_t *m, const char *job, char *err, size_t errlen)
{
	const char *stage;
	json_t *part, *f;
	size_t i;
	json_object_foreach(json_object_get(m, "parts"), stage, part)
	{
		ev_ckpt_part p;
		ev_ckpt_part_read(part, &p);
		json_array_foreach(p.files, i, f)
		{
			if (ev_ckpt_file_check(f, job, err, errlen) < 0)
				return -1;
		}
	}
	return 0;
}

/* The manifest's offsets, when it has them, parse (ev_ckpt_offsets_parse). Returns 0, or -1
 * with err. */
static int check_offsets(const json_t *m, char *err, size_t errlen)
{
	ev_ckpt_offsets o = EV_CKPT_OFFSETS_INIT;
	int rc = ev_ckpt_offsets_parse(json_object_get(m, "offsets"), &o, err, errlen);
	ev_ckpt_offsets_free(&o);
	return rc;
}

json_t *ev_ckpt_get_manifest(ev_store *s, const char *job, int64_t id, int *found, int *legacy,
			     char *err, size_t errlen)
{
	ev_buf key = EV_BUF_INIT;
	ev_ckpt_manifest_key(&key, job, id);
	json_t *m = ev_ckpt_get_json(s, ev_buf_cstr(&key), found, err, errlen);
	ev_buf_free(&key);
	int r = m ? ev_ckpt_manifest_check(m, job, id, err, errlen) : -1;
	if (r >= 0 && (check_files(m, job, err, errlen) < 0 || check_offsets(m, err, errlen) < 0))
		r = -1;
	if (m && r < 0) {
		json_decref(m);
		*found = -1;
		return NULL;
	}
	*legacy = r == 1;
	return m;
}

/* "3 min ago"-like age of a time in epoch ms into out. */
static void fmt_age(int64_t at, char out[64])
{
	int64_t s = (ev_wall_ms() - at) / 1000;
	if (at <= 0)
		snprintf(out, 64, "of unknown age");
	else if (s < 120)
		snprintf(out, 64, "%" PRId64 " s ago", s);
	else if (s < 7200)
		snprintf(out, 64, "%" PRId64 " min ago", s / 60);
	else if (s < 2 * 86400)
		snprintf(out, 64, "%" PRId64 " h ago", s / 3600);
	else
		snprintf(out, 64, "%" PRId64 " days ago", s / 86400);
}

/* What differs between the identity in the checkpoint (there) and this stage's (here), as
 * "KEY: X in the checkpoint, Y here; ..." into b; 0 when nothing does. */
static int identity_diff(const json_t *there, const json_t *here, ev_buf *b)
{
	const char *k;
	json_t *v;
	int n = 0;
	json_t *keys = json_object();
	json_object_foreach((json_t *)there, k, v)
	{
		json_object_set(keys, k, json_null());
	}
	json_object_foreach((json_t *)here, k, v)
	{
		json_object_set(keys, k, json_null());
	}
	json_object_foreach(keys, k, v)
	{
		json_t *a = json_object_get(there, k), *h = json_object_get(here, k);
		if (a && h && json_equal(a, h))
			continue;
		char *ta = a ? json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
		char *th = h ? json_dumps(h, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
		ev_buf_printf(b, "%s%s: %s in the checkpoint, %s here", n++ ? "; " : "", k,
			      ta ? ta : "none", th ? th : "none");
		free(ta);
		free(th);
	}
	json_decref(keys);
	return n;
}

/* The identity check of the restore (see ev_ckpt_restore). */
static int check_identity(ev_ckpt *o, const ev_ckpt_restored *r, char *err, size_t errlen)
{
	if (!o->identity || !r->part)
		return 0;
	ev_ckpt_part part;
	ev_ckpt_part_read(r->part, &part);
	const json_t *there = part.identity;
	if (!json_is_object(there)) {
		ev_warn("checkpoint %" PRId64 " does not say what stage '%s' belonged to (written "
			"by an older evpipe): restoring it unchecked",
			r->id, o->stage);
		return 0;
	}
	ev_buf diff = EV_BUF_INIT;
	int rc = 0;
	if (identity_diff(there, o->identity, &diff)) {
		if (o->allow_mismatch) {
			ev_warn("checkpoint %" PRId64 " of job '%s' is of another pipeline (%s): "
				"restoring it anyway (--restore-mismatch allow)",
				r->id, o->job, ev_buf_cstr(&diff));
		} else {
			snprintf(err, errlen,
				 "checkpoint %" PRId64 " of job '%s' is of another pipeline: stage "
				 "'%s' %s; give this pipeline a job of its own (--job), start "
				 "afresh (--restore none), or restore it anyway "
				 "(--restore-mismatch allow)",
				 r->id, o->job, o->stage, ev_buf_cstr(&diff));
			rc = -1;
		}
	}
	ev_buf_free(&diff);
	return rc;
}

/* Load and check checkpoint id's manifest into r. Returns 0, or -1 with err. */
static int load_verified(ev_ckpt *o, int64_t id, ev_ckpt_restored *r, int *legacy, char *err,
			 size_t errlen)
{
	int found;
	json_t *m =
		ev_ckpt_get_manifest(o->store, ev_ckpt_where(o), id, &found, legacy, err, errlen);
	if (!m) {
		if (found == 0)
			snprintf(err, errlen, "checkpoint %" PRId64 " has no manifest", id);
		return -1;
	}
	ev_ckpt_manifest mf;
	ev_ckpt_manifest_read(m, &mf);
	r->id = id;
	r->manifest = m;
	r->offsets = (json_t *)mf.offsets;
	r->part = json_object_get(mf.parts, o->stage);
	return 0;
}

/* A copy with a name and no checkpoint of its own, in a job whose store holds checkpoints of
 * one copy without a name (written before copies had names): their state is that copy's
 * alone, restored only without --copy. Once such a copy wrote a checkpoint with each
 * partition's state in it ("partitions"), a named copy finds every partition's state at the
 * group's committed offset and starts without them; before that, starting would lose the
 * partitions' windows, and the restore is refused. Returns 0, or -1 with err. */
static int single_copy_refusal(ev_ckpt *o, char *err, size_t errlen)
{
	int64_t id = 0;
	char lerr[256];
	if (ev_ckpt_resolve(o->store, o->job, "latest", &id, lerr, sizeof(lerr)) < 0 || !id)
		return 0;
	int found, legacy;
	json_t *m = ev_ckpt_get_manifest(o->store, o->job, id, &found, &legacy, lerr, sizeof(lerr));
	ev_ckpt_manifest mf = {0};
	if (m)
		ev_ckpt_manifest_read(m, &mf);
	int refuse = !m || !mf.partitions;
	json_decref(m);
	if (refuse)
		snprintf(err, errlen,
			 "job '%s' has checkpoints of one copy without a name (checkpoint %" PRId64
			 ", without the state of each partition) and none of copy '%s': restore "
			 "them once without a copy name (no --copy, EVPIPE_COPY=), whose next "
			 "checkpoint writes each partition's state for named copies to take over, "
			 "or start this copy afresh (--restore none), losing the open windows",
			 o->job, id, o->copy);
	return refuse ? -1 : 0;
}

int ev_ckpt_restore(ev_ckpt *o, ev_ckpt_restored *r, char *err, size_t errlen)
{
	memset(r, 0, sizeof(*r));
	const char *which = o->restore;
	if (!o->store || !which || strcmp(which, "none") == 0)
		return 0;
	int latest = strcmp(which, "latest") == 0, valid = strcmp(which, "latest-valid") == 0;
	char *end;
	long long want = strtoll(which, &end, 10);
	if (!latest && !valid && (*end || end == which || want <= 0)) {
		snprintf(err, errlen,
			 "invalid checkpoint '%s': want latest, latest-valid, none or an id",
			 which);
		return -1;
	}
	ev_ckpt_entry *e;
	size_t n;
	if (ev_ckpt_list(o->store, ev_ckpt_where(o), &e, &n, err, errlen) < 0)
		return -1;
	int exact = !latest && !valid, legacy = 0, rc = 0, candidates = 0;
	char why[512] = "", skip[512] = "";
	int64_t failed = 0; /* the newest that failed verification */
	for (size_t i = n; i-- > 0;) {
		if (!e[i].complete || (exact && e[i].id != want))
			continue;
		candidates++;
		if (load_verified(o, e[i].id, r, &legacy, failed ? skip : why,
				  failed ? sizeof(skip) : sizeof(why)) == 0)
			break;
		if (valid)
			ev_warn("checkpoint %" PRId64 " failed verification (%s): skipped", e[i].id,
				failed ? skip : why);
		if (!failed)
			failed = e[i].id;
		if (exact)
			break;
		/* latest: go on, to name the newest intact one */
	}
	if (exact && !candidates) {
		snprintf(err, errlen, "checkpoint %lld of job '%s' is not complete in %s", want,
			 o->job, ev_store_url(o->store));
		rc = -1;
	} else if (!candidates && o->copy) {
		rc = single_copy_refusal(o, err, errlen);
	} else if (failed && !valid) {
		char hint[160] = "";
		if (r->id)
			snprintf(hint, sizeof(hint),
				 "; the newest intact one is %" PRId64
				 " (--restore latest-valid or --restore %" PRId64 " uses it)",
				 r->id, r->id);
		else if (latest)
			snprintf(hint, sizeof(hint), "; no older checkpoint is intact");
		snprintf(err, errlen,
			 "checkpoint %" PRId64 " of job '%s' failed verification: %s%s", failed,
			 o->job, why, hint);
		rc = -1;
	} else if (failed && !r->id) {
		snprintf(
			err, errlen,
			"no complete checkpoint of job '%s' passes verification (the newest, %" PRId64
			": %s)",
			o->job, failed, why);
		rc = -1;
	}
	ev_ckpt_entries_free(e, n);
	if (rc == 0 && r->id)
		rc = check_identity(o, r, err, errlen);
	if (rc == 0 && r->id) {
		char age[64];
		ev_ckpt_manifest mf;
		ev_ckpt_manifest_read(r->manifest, &mf);
		fmt_age(mf.completed_at, age);
		ev_warn("restoring checkpoint %" PRId64 " of job '%s' from %s, completed %s", r->id,
			o->job, ev_store_url(o->store), age);
		if (legacy)
			ev_warn("checkpoint %" PRId64
				" has no checksum (written by an older evpipe): "
				"restoring it unverified",
				r->id);
	}
	if (rc < 0)
		ev_ckpt_restored_free(r);
	return rc;
}

void ev_ckpt_restored_free(ev_ckpt_restored *r)
{
	json_decref(r->manifest);
	memset(r, 0, sizeof(*r));
}
