/* checkpoint.c: the checkpoint protocol over a store. */
#include "checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ht.h"
#include "log.h"
#include "ndjson.h"
#include "tool.h"

int ev_ckpt_option(int c, const char *arg, ev_ckpt *o)
{
	switch (c) {
	case EV_OPT_CKPT_STORE: o->url = arg; return 1;
	case EV_OPT_CKPT_STAGE: o->stage = arg; return 1;
	case EV_OPT_CKPT_RESTORE: o->restore = arg; return 1;
	default: return 0;
	}
}

int ev_ckpt_open(ev_ckpt *o, const char *job, const char *tool, char *err, size_t errlen)
{
	o->job = job;
	if (!o->stage)
		o->stage = tool;
	if (o->restore && strcmp(o->restore, "none") != 0 && !o->url) {
		snprintf(err, errlen, "--restore needs --checkpoint-store");
		return -1;
	}
	if (!o->url)
		return 0;
	ev_buf key = EV_BUF_INIT;
	ev_ckpt_key(&key, job, 1, o->stage);
	int ok = ev_store_key_ok(ev_buf_cstr(&key));
	ev_buf_free(&key);
	if (!ok) {
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
}

void ev_ckpt_dir(ev_buf *b, const char *job, int64_t id)
{
	ev_buf_reset(b);
	ev_buf_printf(b, "%s/chk-%010" PRId64, job, id);
}

void ev_ckpt_key(ev_buf *b, const char *job, int64_t id, const char *name)
{
	ev_ckpt_dir(b, job, id);
	ev_buf_printf(b, "/%s", name);
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
	json_t *v = json_loadb(b.data ? b.data : "", b.len, 0, &jerr);
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
	ev_buf_reset(&key);
	ev_buf_printf(&key, "%s.json", o->stage);
	char *name = strdup(ev_buf_cstr(&key));
	ev_ckpt_key(&key, o->job, id, name ? name : "");
	int rc = name ? ev_ckpt_put_json(o->store, ev_buf_cstr(&key), part, err, errlen) : -1;
	free(name);
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
	if (strcmp(name, "_manifest.json") == 0)
		e->complete = 1;
	else if (len > 5 && !strchr(name, '/') && strcmp(name + len - 5, ".json") == 0 &&
		 add_stage(e, name, len - 5) < 0)
		return 2;
	return 0;
}

int ev_ckpt_list(ev_store *s, const char *job, ev_ckpt_entry **entries, size_t *n, char *err,
		 size_t errlen)
{
	ev_buf prefix = EV_BUF_INIT;
	ev_buf_printf(&prefix, "%s/chk-", job);
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
	size_t i;
	json_t *f;
	json_array_foreach(json_object_get(part, "files"), i, f)
	{
		const char *key = json_string_value(json_object_get(f, "key"));
		if (key && ev_ht_put(keep, key, strlen(key), keep) < 0)
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
			ev_ckpt_key(&key, job, e[i].id, e[i].stages[j]);
			ev_buf_puts(&key, ".json");
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
		size_t len = strlen(k);
		if (len > 15 && strcmp(k + len - 15, "/_manifest.json") == 0) {
			rc = ev_store_delete(s, k, err, errlen);
			deleted++;
		}
	}
	for (size_t i = 0; i < doomed.n && rc == 0; i++) {
		const char *k = doomed.del[i];
		size_t len = strlen(k);
		if (!(len > 15 && strcmp(k + len - 15, "/_manifest.json") == 0)) {
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
			ev_buf_printf(&key, "%s/shared/%s/%s.sst", o->job, o->stage, sha);
			uint64_t have = 0;
			present = ev_store_head(o->store, ev_buf_cstr(&key), &have, err, errlen);
			if (present < 0)
				goto fail;
			present = present && have == size;
		} else {
			ev_ckpt_dir(&key, o->job, id);
			ev_buf_printf(&key, "/%s/%s", o->stage, names[i]);
		}
		if (!present) {
			if (ev_store_put_file(o->store, ev_buf_cstr(&key), ev_buf_cstr(&path), err,
					      errlen) < 0)
				goto fail;
			*uploaded += size;
		}
		*total += size;
		json_array_append_new(files, json_pack("{s:s, s:s, s:I, s:s}", "name", names[i],
						       "key", ev_buf_cstr(&key), "size",
						       (json_int_t)size, "sha256", sha));
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
	size_t i;
	json_t *f;
	ev_buf path = EV_BUF_INIT;
	int rc = 0;
	json_array_foreach(json_object_get(part, "files"), i, f)
	{
		const char *name = json_string_value(json_object_get(f, "name"));
		const char *key = json_string_value(json_object_get(f, "key"));
		const char *want = json_string_value(json_object_get(f, "sha256"));
		json_int_t size = json_integer_value(json_object_get(f, "size"));
		char sha[65];
		uint64_t got;
		if (!name || !key || !want || strchr(name, '/') || name[0] == '.') {
			snprintf(err, errlen, "a file entry of the part is malformed");
			rc = -1;
			break;
		}
		ev_buf_reset(&path);
		ev_buf_printf(&path, "%s/%s", dir, name);
		int r = ev_store_get_file(s, key, ev_buf_cstr(&path), err, errlen);
		if (r == 0)
			snprintf(err, errlen, "%s is missing from %s", key, ev_store_url(s));
		if (r != 1) {
			rc = -1;
			break;
		}
		if (ev_sha256_file(ev_buf_cstr(&path), sha, &got) < 0 || got != (uint64_t)size ||
		    strcmp(sha, want) != 0) {
			snprintf(err, errlen, "%s does not match its checksum (corrupt store?)",
				 key);
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
	json_t *part =
		json_pack("{s:I}", "duration_ms", (json_int_t)((ev_mono_ns() - t0_ns) / 1000000));
	if (!part) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return ev_ckpt_put_part(o, id, part, err, errlen);
}

void ev_ckpt_stateless_restore(const ev_ckpt *o)
{
	if (o->restore && strcmp(o->restore, "none") != 0)
		ev_info("--restore %s: %s keeps no state; replayed records are written again and "
			"the sink's idempotence absorbs them",
			o->restore, o->stage);
}

void ev_ckpt_metrics(ev_ckpt *o, ev_metrics *m)
{
	if (o->url)
		ev_tool_torn_register(m);
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
