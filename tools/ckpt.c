/* ckpt: list, inspect, verify, dump, restore and prune the checkpoints of a job. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agg.h"
#include "buf.h"
#include "checkpoint.h"
#include "ckstore.h"
#include "log.h"
#include "metrics.h"
#include "ndjson.h"
#include "opts.h"
#include "state.h"
#include "timefmt.h"
#include "tool.h"
#include "watermark.h"
#include "window.h"

struct ckpt {
	const char *url;
	const char *stage;
	const char *dir;
	int64_t keep; /* 0: not given */
	int json;
	ev_tool_common common;
	char **args; /* the command and its arguments */
	int nargs;
	ev_store *store;
	char err[1024];
};

/* One checkpoint as the store holds it. */
struct chk {
	int64_t id;
	int complete;
	const char *state;  /* complete, in progress, abandoned */
	uint64_t own_bytes; /* under chk-<N>/ */
	json_t *manifest;   /* NULL when there is none */
	json_t *stored;     /* stage -> the part object in the store */
	json_t *parts;      /* stage -> part: the stored ones, else the manifest's copies */
};

static void chk_free(struct chk *k)
{
	json_decref(k->manifest);
	json_decref(k->stored);
	json_decref(k->parts);
	memset(k, 0, sizeof(*k));
}

/* Epoch milliseconds as "2024-11-24T10:00:00.123Z" into out, or "-" when ms is not a time. */
static void fmt_time(int64_t ms, char out[32])
{
	struct tm tm;
	time_t secs = (time_t)(ms / 1000);
	if (ms <= 0 || !gmtime_r(&secs, &tm)) {
		strcpy(out, "-");
		return;
	}
	size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

static void fmt_duration(int64_t ms, char out[32])
{
	if (ms < 0)
		strcpy(out, "-");
	else if (ms < 10000)
		snprintf(out, 32, "%" PRId64 "ms", ms);
	else
		snprintf(out, 32, "%.1fs", (double)ms / 1000);
}

static int64_t jint(const json_t *o, const char *name)
{
	return (int64_t)json_integer_value(json_object_get(o, name));
}

static int print_json(json_t *doc)
{
	if (!doc) {
		ev_error("out of memory");
		return EV_EXIT_FAILURE;
	}
	int rc = json_dumpf(doc, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(doc);
	putchar('\n');
	return rc < 0 ? EV_EXIT_FAILURE : EV_EXIT_OK;
}

/* "latest" (0) or a checkpoint id. Returns 0, or -1 after a usage error. */
static int parse_which(const char *arg, int64_t *id)
{
	if (strcmp(arg, "latest") == 0) {
		*id = 0;
		return 0;
	}
	if (ev_opt_int(arg, 1, INT64_MAX, id) < 0) {
		ev_tool_usage_error("invalid checkpoint '%s': want an id or latest", arg);
		return -1;
	}
	return 0;
}

static int list(struct ckpt *c, ev_ckpt_entry **e, size_t *n)
{
	if (ev_ckpt_list(c->store, c->common.job, e, n, c->err, sizeof(c->err)) < 0) {
		ev_error("%s: %s", ev_store_url(c->store), c->err);
		return -1;
	}
	return 0;
}

/* The newest complete checkpoint's id, 0 when there is none. */
static int64_t newest_complete(const ev_ckpt_entry *e, size_t n)
{
	for (size_t i = n; i-- > 0;)
		if (e[i].complete)
			return e[i].id;
	return 0;
}

static const char *state_name(const ev_ckpt_entry *e, int64_t newest)
{
	return e->complete ? "complete" : e->id < newest ? "abandoned" : "in progress";
}

/* Read entry's manifest and, when all_parts or there is no manifest, its part objects;
 * newest is the newest complete checkpoint's id. */
static int chk_load(struct ckpt *c, const ev_ckpt_entry *e, int64_t newest, int all_parts,
		    struct chk *k)
{
	ev_buf key = EV_BUF_INIT;
	int found, rc = -1;
	memset(k, 0, sizeof(*k));
	k->id = e->id;
	k->complete = e->complete;
	k->state = state_name(e, newest);
	k->own_bytes = e->bytes;
	k->stored = json_object();
	k->parts = json_object();
	if (!k->stored || !k->parts) {
		snprintf(c->err, sizeof(c->err), "out of memory");
		goto out;
	}
	if (e->complete) {
		ev_ckpt_key(&key, c->common.job, e->id, "_manifest.json");
		k->manifest = ev_ckpt_get_json(c->store, ev_buf_cstr(&key), &found, c->err,
					       sizeof(c->err));
		if (found < 0)
			goto out;
	}
	for (size_t i = 0; i < e->parts && (all_parts || !k->manifest); i++) {
		ev_ckpt_dir(&key, c->common.job, e->id);
		ev_buf_printf(&key, "/%s.json", e->stages[i]);
		json_t *part = ev_ckpt_get_json(c->store, ev_buf_cstr(&key), &found, c->err,
						sizeof(c->err));
		if (found < 0)
			goto out;
		if (part) {
			json_object_set(k->parts, e->stages[i], part);
			json_object_set_new(k->stored, e->stages[i], part);
		}
	}
	const char *stage;
	json_t *part;
	json_object_foreach(json_object_get(k->manifest, "parts"), stage, part)
	{
		if (!json_object_get(k->parts, stage))
			json_object_set(k->parts, stage, part);
	}
	rc = 0;
out:
	ev_buf_free(&key);
	if (rc < 0)
		chk_free(k);
	return rc;
}

/* Checkpoint which (0: the newest complete one) with every part object. Returns 0, or -1
 * with the reason logged. */
static int chk_find(struct ckpt *c, int64_t which, int need_complete, struct chk *k)
{
	ev_ckpt_entry *e;
	size_t n;
	const ev_ckpt_entry *hit = NULL;
	if (list(c, &e, &n) < 0)
		return -1;
	int64_t want = which ? which : newest_complete(e, n);
	for (size_t i = 0; i < n; i++)
		if (e[i].id == want)
			hit = &e[i];
	int rc = -1;
	if (!hit && !which)
		ev_error("no complete checkpoint of job '%s' in %s", c->common.job,
			 ev_store_url(c->store));
	else if (!hit)
		ev_error("no checkpoint %" PRId64 " of job '%s' in %s", which, c->common.job,
			 ev_store_url(c->store));
	else if (need_complete && !hit->complete)
		ev_error("checkpoint %" PRId64 " is %s, not complete", hit->id,
			 state_name(hit, newest_complete(e, n)));
	else if (chk_load(c, hit, newest_complete(e, n), 1, k) < 0)
		ev_error("checkpoint %" PRId64 ": %s", hit->id, c->err);
	else
		rc = 0;
	ev_ckpt_entries_free(e, n);
	return rc;
}

/* Every file the parts of k reference, as {stage, name, key, size, sha256, shared}, by stage
 * and name. shared: outside chk-<N>/, so other checkpoints may reference it too. */
static json_t *chk_files(struct ckpt *c, const struct chk *k)
{
	json_t *all = json_array(), *part, *f;
	const char *stage;
	size_t i;
	ev_buf dir = EV_BUF_INIT;
	ev_ckpt_dir(&dir, c->common.job, k->id);
	ev_buf_putc(&dir, '/');
	json_object_foreach(k->parts, stage, part)
	{
		json_array_foreach(json_object_get(part, "files"), i, f)
		{
			const char *key = json_string_value(json_object_get(f, "key"));
			const char *sha = json_string_value(json_object_get(f, "sha256"));
			json_array_append_new(
				all,
				json_pack("{s:s, s:s?, s:s?, s:I, s:s?, s:b}", "stage", stage,
					  "name", json_string_value(json_object_get(f, "name")),
					  "key", key, "size", (json_int_t)jint(f, "size"), "sha256",
					  sha, "shared",
					  key && strncmp(key, dir.data, dir.len) != 0));
		}
	}
	ev_buf_free(&dir);
	return all;
}

/* Bytes of the files (all, or only the shared ones). */
static uint64_t files_bytes(const json_t *files, int shared_only)
{
	uint64_t sum = 0;
	size_t i;
	json_t *f;
	json_array_foreach(files, i, f)
	{
		if (!shared_only || json_is_true(json_object_get(f, "shared")))
			sum += (uint64_t)jint(f, "size");
	}
	return sum;
}

/* What a checkpoint costs in the store: its own keys and the shared files it references. */
static uint64_t stored_bytes(struct ckpt *c, const struct chk *k)
{
	json_t *files = chk_files(c, k);
	uint64_t n = k->own_bytes + files_bytes(files, 1);
	json_decref(files);
	return n;
}

/* When the checkpoint completed (the manifest), or the last part was written; its duration
 * (-1 when unknown). */
static void chk_times(const struct chk *k, int64_t *at, int64_t *started, int64_t *duration)
{
	const char *stage;
	json_t *part;
	*at = 0;
	*started = 0;
	*duration = -1;
	if (k->manifest) {
		*at = jint(k->manifest, "completed_at");
		*started = jint(k->manifest, "started_at");
		*duration = jint(k->manifest, "duration_ms");
		return;
	}
	json_object_foreach(k->parts, stage, part)
	{
		if (jint(part, "at") > *at)
			*at = jint(part, "at");
		if (json_object_get(part, "injected_at"))
			*started = jint(part, "injected_at");
	}
	if (*started && *at >= *started)
		*duration = *at - *started;
}

/* The offsets of the checkpoint: the manifest's, or those of the coordinator's part. */
static json_t *chk_offsets(const struct chk *k)
{
	json_t *o = json_object_get(k->manifest, "offsets"), *part;
	const char *stage;
	if (json_is_object(o))
		return o;
	json_object_foreach(k->parts, stage, part)
	{
		if (json_is_object(json_object_get(part, "offsets")))
			return json_object_get(part, "offsets");
	}
	return NULL;
}

struct offset {
	const char *topic;
	long long partition;
	int64_t offset;
};

static int cmp_offset(const void *a, const void *b)
{
	const struct offset *x = a, *y = b;
	int t = strcmp(x->topic, y->topic);
	if (t)
		return t;
	return (x->partition > y->partition) - (x->partition < y->partition);
}

/* The offsets {"topic":{"partition":offset}} as a sorted array (*n of them, malloc'd). */
static struct offset *offsets_sorted(const json_t *o, size_t *n)
{
	const char *topic, *num;
	json_t *parts, *off;
	size_t cap = 0;
	struct offset *v = NULL;
	*n = 0;
	json_object_foreach((json_t *)o, topic, parts)
	{
		json_object_foreach(parts, num, off)
		{
			if (*n == cap) {
				cap = cap ? cap * 2 : 16;
				struct offset *more = realloc(v, cap * sizeof(*v));
				if (!more) {
					free(v);
					*n = 0;
					return NULL;
				}
				v = more;
			}
			v[(*n)++] = (struct offset){topic, strtoll(num, NULL, 10),
						    (int64_t)json_integer_value(off)};
		}
	}
	if (*n)
		qsort(v, *n, sizeof(*v), cmp_offset);
	return v;
}

/* The jobs with checkpoints in a store, for a message: "<job>/chk-..." keys, whose job's keys
 * are adjacent in key order. */
struct jobs {
	ev_buf names; /* "a, b" */
	ev_buf last;  /* the last job seen */
	int n;
};

enum { JOBS_NAMED = 10 };

static int collect_job(const char *key, uint64_t size, void *arg)
{
	struct jobs *j = arg;
	const char *slash = strchr(key, '/');
	(void)size;
	if (!slash || strncmp(slash + 1, "chk-", 4) != 0)
		return 0;
	size_t len = (size_t)(slash - key);
	if (j->last.len == len && memcmp(j->last.data, key, len) == 0)
		return 0;
	if (j->n == JOBS_NAMED) {
		ev_buf_puts(&j->names, ", ...");
		return 1;
	}
	ev_buf_reset(&j->last);
	ev_buf_append(&j->last, key, len);
	ev_buf_printf(&j->names, "%s%.*s", j->n++ ? ", " : "", (int)len, key);
	return 0;
}

/* The error for a job without checkpoints: the jobs the store has, or that it has none (it is
 * empty or does not exist). Returns EV_EXIT_FAILURE. */
static int no_checkpoints(struct ckpt *c)
{
	struct jobs j = {EV_BUF_INIT, EV_BUF_INIT, 0};
	const char *url = ev_store_url(c->store);
	if (ev_store_list(c->store, "", collect_job, &j, c->err, sizeof(c->err)) < 0)
		ev_error("%s: %s", url, c->err);
	else if (j.n)
		ev_error("no checkpoints of job '%s' in '%s' (it has those of: %s)", c->common.job,
			 url, ev_buf_cstr(&j.names));
	else
		ev_error("no checkpoints in '%s': the store is empty or does not exist", url);
	ev_buf_free(&j.names);
	ev_buf_free(&j.last);
	return EV_EXIT_FAILURE;
}

static int cmd_ls(struct ckpt *c)
{
	ev_ckpt_entry *e;
	size_t n;
	if (list(c, &e, &n) < 0)
		return EV_EXIT_FAILURE;
	if (n == 0) {
		ev_ckpt_entries_free(e, n);
		return no_checkpoints(c);
	}
	int64_t newest = newest_complete(e, n);
	json_t *arr = json_array();
	int rc = EV_EXIT_OK;
	if (!c->json)
		printf("%-10s  %-24s  %12s  %9s  %s\n", "ID", "TIME (UTC)", "BYTES", "DURATION",
		       "STATE");
	for (size_t i = 0; i < n; i++) {
		struct chk k;
		int64_t at, started, duration;
		char when[32], took[32];
		if (chk_load(c, &e[i], newest, 0, &k) < 0) {
			ev_error("checkpoint %" PRId64 ": %s", e[i].id, c->err);
			rc = EV_EXIT_FAILURE;
			break;
		}
		chk_times(&k, &at, &started, &duration);
		uint64_t bytes = stored_bytes(c, &k);
		const char *state = k.state;
		if (c->json) {
			json_t *stages = json_array();
			for (size_t j = 0; j < e[i].parts; j++)
				json_array_append_new(stages, json_string(e[i].stages[j]));
			json_array_append_new(arr,
					      json_pack("{s:I, s:s, s:o, s:I, s:o, s:o}", "id",
							(json_int_t)e[i].id, "state", state, "time",
							at ? json_integer(at) : json_null(),
							"bytes", (json_int_t)bytes, "duration_ms",
							duration >= 0 ? json_integer(duration)
								      : json_null(),
							"stages", stages));
		} else {
			fmt_time(at, when);
			fmt_duration(duration, took);
			printf("%-10" PRId64 "  %-24s  %12" PRIu64 "  %9s  %s\n", e[i].id, when,
			       bytes, took, state);
		}
		chk_free(&k);
	}
	ev_ckpt_entries_free(e, n);
	if (c->json && rc == EV_EXIT_OK)
		return print_json(json_pack("{s:s, s:s, s:o}", "store", ev_store_url(c->store),
					    "job", c->common.job, "checkpoints", arr));
	json_decref(arr);
	return rc;
}

static int cmd_show(struct ckpt *c, int64_t which)
{
	struct chk k;
	if (chk_find(c, which, 0, &k) < 0)
		return EV_EXIT_FAILURE;
	const char *state = k.state;
	int64_t at, started, duration;
	chk_times(&k, &at, &started, &duration);
	json_t *files = chk_files(c, &k), *part;
	const char *stage;
	uint64_t total = files_bytes(files, 0), uploaded = 0;
	if (k.manifest) {
		uploaded = (uint64_t)jint(k.manifest, "uploaded_bytes");
	} else {
		json_object_foreach(k.parts, stage, part)
		{
			uploaded += (uint64_t)jint(part, "uploaded_bytes");
		}
	}
	uint64_t shared = total >= uploaded ? total - uploaded : 0;
	uint64_t stored = stored_bytes(c, &k);
	size_t noff;
	json_t *offsets = chk_offsets(&k);
	struct offset *off = offsets_sorted(offsets, &noff);
	int rc = EV_EXIT_OK;
	if (c->json) {
		json_t *parts = json_array(), *offs = json_array();
		json_object_foreach(k.parts, stage, part)
		{
			json_array_append_new(
				parts, json_pack("{s:s, s:I, s:I, s:I, s:I}", "stage", stage, "at",
						 (json_int_t)jint(part, "at"), "duration_ms",
						 (json_int_t)jint(part, "duration_ms"), "bytes",
						 (json_int_t)jint(part, "bytes"), "uploaded_bytes",
						 (json_int_t)jint(part, "uploaded_bytes")));
		}
		for (size_t i = 0; i < noff; i++)
			json_array_append_new(offs,
					      json_pack("{s:s, s:I, s:I}", "topic", off[i].topic,
							"partition", (json_int_t)off[i].partition,
							"offset", (json_int_t)off[i].offset));
		rc = print_json(json_pack(
			"{s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:I, s:I}", "id",
			(json_int_t)k.id, "job", c->common.job, "state", state, "started_at",
			started ? json_integer(started) : json_null(), "completed_at",
			k.manifest ? json_integer(at) : json_null(), "duration_ms",
			duration >= 0 ? json_integer(duration) : json_null(), "parts", parts,
			"offsets", offs, "files", files, "bytes", (json_int_t)total,
			"uploaded_bytes", (json_int_t)uploaded, "shared_bytes", (json_int_t)shared,
			"stored_bytes", (json_int_t)stored));
	} else {
		char t1[32], t2[32];
		printf("checkpoint %" PRId64 " of job '%s' in %s: %s\n", k.id, c->common.job,
		       ev_store_url(c->store), state);
		fmt_time(started, t1);
		printf("  started    %s\n", t1);
		fmt_time(at, t1);
		fmt_duration(duration, t2);
		printf("  %-10s %s (%s)\n", k.manifest ? "completed" : "last part", t1, t2);
		printf("  bytes      %" PRIu64 ": %" PRIu64 " incremental (uploaded), %" PRIu64
		       " shared with earlier checkpoints; %" PRIu64 " in the store\n",
		       total, uploaded, shared, stored);
		printf("parts\n  %-16s  %-24s  %9s  %12s  %12s\n", "STAGE", "AT (UTC)", "DURATION",
		       "BYTES", "UPLOADED");
		json_object_foreach(k.parts, stage, part)
		{
			fmt_time(jint(part, "at"), t1);
			fmt_duration(json_object_get(part, "duration_ms")
					     ? jint(part, "duration_ms")
					     : -1,
				     t2);
			printf("  %-16s  %-24s  %9s  %12" PRId64 "  %12" PRId64 "\n", stage, t1, t2,
			       jint(part, "bytes"), jint(part, "uploaded_bytes"));
		}
		printf("offsets\n  %-24s  %9s  %12s\n", "TOPIC", "PARTITION", "OFFSET");
		for (size_t i = 0; i < noff; i++)
			printf("  %-24s  %9lld  %12" PRId64 "\n", off[i].topic, off[i].partition,
			       off[i].offset);
		printf("files\n  %-16s  %-20s  %12s  %s\n", "STAGE", "NAME", "SIZE", "KEY");
		size_t i;
		json_t *f;
		json_array_foreach(files, i, f)
		{
			const char *name = json_string_value(json_object_get(f, "name"));
			const char *key = json_string_value(json_object_get(f, "key"));
			printf("  %-16s  %-20s  %12" PRId64 "  %s\n",
			       json_string_value(json_object_get(f, "stage")), name ? name : "?",
			       jint(f, "size"), key ? key : "?");
		}
		json_decref(files);
	}
	free(off);
	chk_free(&k);
	return rc;
}

/* verify's findings. */
struct problems {
	json_t *list; /* [{key, problem, message}] */
	int text;     /* print each as it is found */
};

static void problem(struct problems *p, const char *key, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void problem(struct problems *p, const char *key, const char *what, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_array_append_new(p->list, json_pack("{s:s, s:s, s:s}", "key", key, "problem", what,
						 "message", msg));
	if (p->text)
		printf("  %s: %s\n", key, msg);
}

/* The manifest against the part objects: the same stages, the same contents. */
static void verify_manifest(struct ckpt *c, const struct chk *k, struct problems *p)
{
	ev_buf key = EV_BUF_INIT;
	ev_ckpt_manifest_key(&key, c->common.job, k->id);
	char *mkey = strdup(ev_buf_cstr(&key));
	json_t *mparts = json_object_get(k->manifest, "parts"), *part;
	const char *stage;
	if (!mkey) {
		ev_buf_free(&key);
		return;
	}
	if (!k->manifest) {
		problem(p, mkey, "incomplete", "no manifest: the checkpoint is not complete");
	} else if (!json_is_object(mparts)) {
		problem(p, mkey, "manifest", "the manifest lists no parts");
	} else {
		int r = ev_ckpt_manifest_check(k->manifest, c->common.job, k->id, c->err,
					       sizeof(c->err));
		if (r < 0)
			problem(p, mkey, "manifest", "%s", c->err);
		else if (r == 1)
			ev_warn("checkpoint %" PRId64 " has no checksum (written by an older "
				"evpipe): its manifest cannot be verified",
				k->id);
		json_object_foreach(mparts, stage, part)
		{
			json_t *have = json_object_get(k->stored, stage);
			ev_ckpt_part_key(&key, c->common.job, k->id, stage);
			if (!have)
				problem(p, ev_buf_cstr(&key), "part",
					"the manifest lists part '%s' but the store has none",
					stage);
			else if (!json_equal(have, part))
				problem(p, ev_buf_cstr(&key), "part",
					"part '%s' differs from the manifest's copy", stage);
		}
		json_object_foreach(k->stored, stage, part)
		{
			ev_ckpt_part_key(&key, c->common.job, k->id, stage);
			if (!json_object_get(mparts, stage))
				problem(p, ev_buf_cstr(&key), "part",
					"part '%s' is not in the manifest", stage);
		}
	}
	free(mkey);
	ev_buf_free(&key);
}

/* Each file: present, its size and SHA-256 as the part says. */
static int verify_files(struct ckpt *c, const json_t *files, const char *tmp, struct problems *p)
{
	ev_buf path = EV_BUF_INIT;
	size_t i;
	json_t *f;
	int rc = 0;
	ev_buf_printf(&path, "%s/file", tmp);
	json_array_foreach(files, i, f)
	{
		const char *key = json_string_value(json_object_get(f, "key"));
		const char *want = json_string_value(json_object_get(f, "sha256"));
		uint64_t size = (uint64_t)jint(f, "size"), got;
		char sha[65];
		if (ev_ckpt_file_check(f, c->common.job, c->err, sizeof(c->err)) < 0) {
			problem(p, key ? key : "?", "invalid", "stage '%s': %s",
				json_string_value(json_object_get(f, "stage")), c->err);
			continue;
		}
		int r = ev_store_get_file(c->store, key, ev_buf_cstr(&path), c->err,
					  sizeof(c->err));
		if (r < 0) {
			ev_error("%s: %s", key, c->err);
			rc = -1;
			break;
		}
		if (r == 0) {
			problem(p, key, "missing", "missing from the store");
			continue;
		}
		if (ev_sha256_file(ev_buf_cstr(&path), sha, &got) < 0) {
			ev_error("cannot read %s: %s", ev_buf_cstr(&path), strerror(errno));
			rc = -1;
			break;
		}
		unlink(ev_buf_cstr(&path));
		if (got != size)
			problem(p, key, "size", "%" PRIu64 " bytes, the part says %" PRIu64, got,
				size);
		else if (strcmp(sha, want) != 0)
			problem(p, key, "checksum", "SHA-256 %s, the part says %s", sha, want);
	}
	ev_buf_free(&path);
	return rc;
}

static int make_tmpdir(char *path, size_t len)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(path, len, "%s/ckpt-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(path)) {
		ev_error("cannot create a directory under %s: %s", tmp && *tmp ? tmp : "/tmp",
			 strerror(errno));
		return -1;
	}
	return 0;
}

static int cmd_verify(struct ckpt *c, int64_t which)
{
	struct chk k;
	char tmp[4096];
	if (chk_find(c, which, 0, &k) < 0)
		return EV_EXIT_FAILURE;
	if (make_tmpdir(tmp, sizeof(tmp)) < 0) {
		chk_free(&k);
		return EV_EXIT_FAILURE;
	}
	json_t *files = chk_files(c, &k);
	struct problems p = {json_array(), !c->json};
	if (!c->json)
		printf("checkpoint %" PRId64 " of job '%s' in %s\n", k.id, c->common.job,
		       ev_store_url(c->store));
	verify_manifest(c, &k, &p);
	int rc = verify_files(c, files, tmp, &p) < 0 ? EV_EXIT_FAILURE : EV_EXIT_OK;
	ev_state_remove_dir(tmp);
	size_t nproblems = json_array_size(p.list);
	uint64_t bytes = files_bytes(files, 0);
	if (rc == EV_EXIT_OK && nproblems)
		rc = EV_EXIT_FAILURE;
	if (c->json && (rc == EV_EXIT_OK || nproblems)) {
		int prc = print_json(json_pack("{s:I, s:b, s:I, s:I, s:I, s:O}", "id",
					       (json_int_t)k.id, "ok", nproblems == 0, "parts",
					       (json_int_t)json_object_size(k.parts), "files",
					       (json_int_t)json_array_size(files), "bytes",
					       (json_int_t)bytes, "problems", p.list));
		if (prc != EV_EXIT_OK)
			rc = prc;
	} else if (!c->json && nproblems) {
		printf("FAILED: %zu problem(s) in %zu file(s) of %zu part(s)\n", nproblems,
		       json_array_size(files), json_object_size(k.parts));
	} else if (!c->json && rc == EV_EXIT_OK) {
		printf("ok: %zu file(s), %" PRIu64
		       " bytes, present with their size and SHA-256; the manifest matches "
		       "%zu part(s)\n",
		       json_array_size(files), bytes, json_object_size(k.parts));
	}
	if (nproblems)
		ev_error("checkpoint %" PRId64 " failed verification: %zu problem(s)", k.id,
			 nproblems);
	json_decref(p.list);
	json_decref(files);
	chk_free(&k);
	return rc;
}

/* The part of stage in k that holds state files, or NULL (logged). */
static const json_t *state_part(struct ckpt *c, const struct chk *k)
{
	const json_t *part = json_object_get(k->parts, c->stage);
	if (!part) {
		ev_error("checkpoint %" PRId64 " has no part of stage '%s'", k->id, c->stage);
		return NULL;
	}
	if (json_array_size(json_object_get(part, "files")) == 0) {
		ev_error("the part of stage '%s' in checkpoint %" PRId64 " has no state files",
			 c->stage, k->id);
		return NULL;
	}
	return part;
}

struct fill {
	ev_store *store;
	const json_t *part;
};

/* What dump writes the windows with. */
struct dump {
	ev_agg_spec *specs;
	size_t nspecs;
	ev_buf row;
	uint32_t scope; /* of the window written last */
};

static int fill_part(const char *dir, void *arg, char *err, size_t errlen)
{
	const struct fill *f = arg;
	return ev_ckpt_download_files(f->store, f->part, dir, err, errlen);
}

/* A window of the dump: its row on stdout. */
static int dump_row(void *arg, const ev_window_row *r)
{
	struct dump *d = arg;
	ev_buf_reset(&d->row);
	if (r->scope != d->scope && r->topic &&
	    (ev_buf_puts(&d->row, "{\"__evpipe\":\"partition\",\"topic\":") < 0 ||
	     ev_buf_json_string(&d->row, r->topic, r->topic_len) < 0 ||
	     ev_buf_printf(&d->row, ",\"partition\":%" PRId64 "}\n", r->partition) < 0)) {
		ev_error("out of memory");
		return -1;
	}
	d->scope = r->scope;
	if (ev_window_format_row(&d->row, r, d->specs, d->nspecs) < 0 ||
	    ev_buf_putc(&d->row, '\n') < 0) {
		ev_error("out of memory");
		return -1;
	}
	return fwrite(d->row.data, 1, d->row.len, stdout) == d->row.len ? 0 : -1;
}

static int cmd_dump(struct ckpt *c, int64_t which)
{
	struct chk k;
	if (chk_find(c, which, 0, &k) < 0)
		return EV_EXIT_FAILURE;
	const json_t *part = state_part(c, &k);
	if (!part) {
		chk_free(&k);
		return EV_EXIT_FAILURE;
	}
	if (!k.complete)
		ev_warn("checkpoint %" PRId64 " is not complete", k.id);
	struct fill f = {c->store, part};
	ev_state_opts so = {.dir = NULL, .memory = 16u << 20, .fill = fill_part, .fill_arg = &f};
	ev_state *st = ev_state_open(&so, c->err, sizeof(c->err));
	int rc = EV_EXIT_FAILURE;
	ev_buf v = EV_BUF_INIT;
	struct dump d = {NULL, 0, EV_BUF_INIT, 0};
	int64_t wm = EV_WM_MIN;
	if (!st) {
		ev_error("checkpoint %" PRId64 ", stage '%s': %s", k.id, c->stage, c->err);
		goto out;
	}
	int r = ev_window_stored_fingerprint(st, &v, c->err, sizeof(c->err));
	if (r == 0) {
		ev_error("the state of stage '%s' is not evwindow's (no options fingerprint)",
			 c->stage);
		goto out;
	}
	if (r < 0 || ev_window_fingerprint_aggs(v.data, v.len, &d.specs, &d.nspecs, c->err,
						sizeof(c->err)) < 0) {
		ev_error("the state of stage '%s': %s", c->stage, c->err);
		goto out;
	}
	ev_debug("windows of %.*s", (int)v.len, v.data);
	r = ev_window_stored_watermark(st, &wm, c->err, sizeof(c->err));
	if (r <= 0) {
		ev_error("the state of stage '%s' has no watermark%s%s", c->stage, r ? ": " : "",
			 r ? c->err : "");
		goto out;
	}
	if (wm == EV_WM_MIN)
		printf("{\"__evpipe\":\"watermark\",\"ts\":null}\n");
	else
		printf("{\"__evpipe\":\"watermark\",\"ts\":%" PRId64 "}\n", wm);
	r = ev_window_scan(st, d.specs, d.nspecs, dump_row, &d, c->err, sizeof(c->err));
	if (r < 0 && c->err[0])
		ev_error("%s", c->err);
	if (r == 0)
		rc = EV_EXIT_OK;
out:
	if (st && ev_state_close(st, c->err, sizeof(c->err)) < 0) {
		ev_error("state: %s", c->err);
		rc = EV_EXIT_FAILURE;
	}
	ev_agg_specs_free(d.specs, d.nspecs);
	ev_buf_free(&d.row);
	ev_buf_free(&v);
	chk_free(&k);
	return rc;
}

/* 1 when dir does not exist, 0 when it is an empty directory, -1 (logged) otherwise. */
static int dir_absent(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	if (!d && errno == ENOENT)
		return 1;
	if (!d) {
		ev_error("cannot use '%s': %s", dir, strerror(errno));
		return -1;
	}
	/* One thread reads this directory: readdir is safe here (readdir_r is deprecated). */
	// cppcheck-suppress readdirCalled
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			break;
	closedir(d);
	if (de) {
		ev_error("'%s' is not empty: restore wants an absent or empty directory", dir);
		return -1;
	}
	return 0;
}

static int cmd_restore(struct ckpt *c, int64_t which)
{
	struct chk k;
	int absent = dir_absent(c->dir);
	if (absent < 0)
		return EV_EXIT_FAILURE;
	if (chk_find(c, which, 1, &k) < 0)
		return EV_EXIT_FAILURE;
	const json_t *part = state_part(c, &k);
	if (!part) {
		chk_free(&k);
		return EV_EXIT_FAILURE;
	}
	struct fill f = {c->store, part};
	ev_state_opts so = {.dir = c->dir, .memory = 16u << 20, .fill = fill_part, .fill_arg = &f};
	ev_state *st = ev_state_open(&so, c->err, sizeof(c->err));
	int rc = EV_EXIT_FAILURE;
	ev_buf config = EV_BUF_INIT;
	if (!st) {
		ev_error("checkpoint %" PRId64 ", stage '%s': %s", k.id, c->stage, c->err);
	} else {
		/* Taken from a running store, the checkpoint carries evwindow's "not closed
		 * cleanly" mark, which does not apply to it. */
		int r = ev_window_unmark_open(st, c->err, sizeof(c->err));
		if (r == 0)
			r = ev_window_stored_fingerprint(st, &config, c->err, sizeof(c->err));
		if (r < 0)
			ev_error("state: %s", c->err);
		if (ev_state_close(st, c->err, sizeof(c->err)) < 0) {
			ev_error("state: %s", c->err);
			r = -1;
		}
		rc = r < 0 ? EV_EXIT_FAILURE : EV_EXIT_OK;
	}
	if (rc != EV_EXIT_OK) {
		ev_state_remove_dir(c->dir);
		if (!absent)
			mkdir(c->dir, 0755);
	} else {
		json_t *files = json_object_get(part, "files");
		uint64_t bytes = files_bytes(files, 0);
		if (c->json)
			rc = print_json(json_pack("{s:I, s:s, s:s, s:I, s:I, s:s%}", "id",
						  (json_int_t)k.id, "stage", c->stage, "dir",
						  c->dir, "files",
						  (json_int_t)json_array_size(files), "bytes",
						  (json_int_t)bytes, "config",
						  config.data ? config.data : "", config.len));
		else
			printf("checkpoint %" PRId64 ", stage '%s': %zu files, %" PRIu64
			       " bytes restored into %s\n",
			       k.id, c->stage, json_array_size(files), bytes, c->dir);
		ev_info("continue with: %s --state-dir %s (and the options of the job: %.*s)",
			c->stage, c->dir, (int)config.len, config.data ? config.data : "");
	}
	ev_buf_free(&config);
	chk_free(&k);
	return rc;
}

static int cmd_prune(struct ckpt *c)
{
	ev_ckpt_entry *before, *after;
	size_t nb, na;
	if (list(c, &before, &nb) < 0)
		return EV_EXIT_FAILURE;
	int deleted = ev_ckpt_prune(c->store, c->common.job, (int)c->keep, c->err, sizeof(c->err));
	if (deleted < 0) {
		ev_error("prune: %s", c->err);
		ev_ckpt_entries_free(before, nb);
		return EV_EXIT_FAILURE;
	}
	if (list(c, &after, &na) < 0) {
		ev_ckpt_entries_free(before, nb);
		return EV_EXIT_FAILURE;
	}
	json_t *removed = json_array(), *kept = json_array();
	for (size_t i = 0, j = 0; i < nb; i++) {
		while (j < na && after[j].id < before[i].id)
			j++;
		int gone = j == na || after[j].id != before[i].id;
		json_array_append_new(gone ? removed : kept, json_integer(before[i].id));
	}
	int rc;
	if (c->json) {
		rc = print_json(json_pack("{s:I, s:I, s:O, s:O}", "keep", (json_int_t)c->keep,
					  "deleted_keys", (json_int_t)deleted, "removed", removed,
					  "kept", kept));
	} else {
		size_t i;
		json_t *id;
		printf("removed %zu checkpoint(s):", json_array_size(removed));
		json_array_foreach(removed, i, id)
		{
			printf(" %" JSON_INTEGER_FORMAT, json_integer_value(id));
		}
		printf("\nkept %zu checkpoint(s):", json_array_size(kept));
		json_array_foreach(kept, i, id)
		{
			printf(" %" JSON_INTEGER_FORMAT, json_integer_value(id));
		}
		printf("\ndeleted %d key(s)\n", deleted);
		rc = EV_EXIT_OK;
	}
	json_decref(removed);
	json_decref(kept);
	ev_ckpt_entries_free(before, nb);
	ev_ckpt_entries_free(after, na);
	return rc;
}

static void diff_line(const json_t *f, char sign)
{
	const char *name = json_string_value(json_object_get(f, "name"));
	const char *key = json_string_value(json_object_get(f, "key"));
	printf("  %c %-16s  %-20s  %12" PRId64 "  %s\n", sign,
	       json_string_value(json_object_get(f, "stage")), name ? name : "?", jint(f, "size"),
	       key ? key : "?");
}

static int has_key(const json_t *files, const char *key)
{
	size_t i;
	json_t *f;
	json_array_foreach(files, i, f)
	{
		const char *k = json_string_value(json_object_get(f, "key"));
		if (k && key && strcmp(k, key) == 0)
			return 1;
	}
	return 0;
}

static int cmd_diff(struct ckpt *c, int64_t w1, int64_t w2)
{
	struct chk a, b;
	if (chk_find(c, w1, 0, &a) < 0)
		return EV_EXIT_FAILURE;
	if (chk_find(c, w2, 0, &b) < 0) {
		chk_free(&a);
		return EV_EXIT_FAILURE;
	}
	json_t *fa = chk_files(c, &a), *fb = chk_files(c, &b), *f;
	json_t *added = json_array(), *removed = json_array(), *shared = json_array();
	size_t i;
	json_array_foreach(fa, i, f)
	{
		const char *key = json_string_value(json_object_get(f, "key"));
		json_array_append(has_key(fb, key) ? shared : removed, f);
	}
	json_array_foreach(fb, i, f)
	{
		if (!has_key(fa, json_string_value(json_object_get(f, "key"))))
			json_array_append(added, f);
	}
	size_t na, nb;
	struct offset *oa = offsets_sorted(chk_offsets(&a), &na);
	struct offset *ob = offsets_sorted(chk_offsets(&b), &nb);
	json_t *offs = json_array();
	/* Merge the two sorted lists: a partition missing on one side has no offset there. */
	for (size_t x = 0, y = 0; x < na || y < nb;) {
		int cmp = x == na ? 1 : y == nb ? -1 : cmp_offset(&oa[x], &ob[y]);
		const struct offset *o = cmp <= 0 ? &oa[x] : &ob[y];
		json_t *from = cmp <= 0 ? json_integer(oa[x].offset) : json_null();
		json_t *to = cmp >= 0 ? json_integer(ob[y].offset) : json_null();
		json_t *adv = cmp == 0 ? json_integer(ob[y].offset - oa[x].offset) : json_null();
		json_array_append_new(offs,
				      json_pack("{s:s, s:I, s:o, s:o, s:o}", "topic", o->topic,
						"partition", (json_int_t)o->partition, "from", from,
						"to", to, "advanced", adv));
		x += cmp <= 0;
		y += cmp >= 0;
	}
	uint64_t ba = files_bytes(fa, 0), bb = files_bytes(fb, 0);
	uint64_t sa = stored_bytes(c, &a), sb = stored_bytes(c, &b);
	int rc = EV_EXIT_OK;
	if (c->json) {
		rc = print_json(json_pack(
			"{s:I, s:I, s:O, s:O, s:O, s:I, s:I, s:I, s:O, s:{s:I, s:I, s:I}, "
			"s:{s:I, s:I, s:I}}",
			"from", (json_int_t)a.id, "to", (json_int_t)b.id, "added", added, "removed",
			removed, "shared", shared, "added_bytes", (json_int_t)files_bytes(added, 0),
			"removed_bytes", (json_int_t)files_bytes(removed, 0), "shared_bytes",
			(json_int_t)files_bytes(shared, 0), "offsets", offs, "bytes", "from",
			(json_int_t)ba, "to", (json_int_t)bb, "delta", (json_int_t)(bb - ba),
			"stored_bytes", "from", (json_int_t)sa, "to", (json_int_t)sb, "delta",
			(json_int_t)(sb - sa)));
	} else {
		printf("checkpoint %" PRId64 " -> %" PRId64 "\n", a.id, b.id);
		printf("files: %zu added (%" PRIu64 " bytes), %zu removed (%" PRIu64
		       " bytes), %zu shared (%" PRIu64 " bytes)\n",
		       json_array_size(added), files_bytes(added, 0), json_array_size(removed),
		       files_bytes(removed, 0), json_array_size(shared), files_bytes(shared, 0));
		json_array_foreach(added, i, f)
		{
			diff_line(f, '+');
		}
		json_array_foreach(removed, i, f)
		{
			diff_line(f, '-');
		}
		printf("offsets\n  %-24s  %9s  %12s  %12s  %10s\n", "TOPIC", "PARTITION", "FROM",
		       "TO", "ADVANCED");
		json_array_foreach(offs, i, f)
		{
			char from[24] = "-", to[24] = "-", adv[24] = "-";
			if (json_is_integer(json_object_get(f, "from")))
				snprintf(from, sizeof(from), "%" PRId64, jint(f, "from"));
			if (json_is_integer(json_object_get(f, "to")))
				snprintf(to, sizeof(to), "%" PRId64, jint(f, "to"));
			if (json_is_integer(json_object_get(f, "advanced")))
				snprintf(adv, sizeof(adv), "%+" PRId64, jint(f, "advanced"));
			printf("  %-24s  %9" PRId64 "  %12s  %12s  %10s\n",
			       json_string_value(json_object_get(f, "topic")), jint(f, "partition"),
			       from, to, adv);
		}
		printf("bytes: %" PRIu64 " -> %" PRIu64 " (%+" PRId64 "); in the store %" PRIu64
		       " -> %" PRIu64 " (%+" PRId64 ")\n",
		       ba, bb, (int64_t)(bb - ba), sa, sb, (int64_t)(sb - sa));
	}
	free(oa);
	free(ob);
	json_decref(offs);
	json_decref(added);
	json_decref(removed);
	json_decref(shared);
	json_decref(fa);
	json_decref(fb);
	chk_free(&a);
	chk_free(&b);
	return rc;
}

static int opt_keep(const ev_option *o, char *arg, char *err, size_t errlen)
{
	if (ev_opt_int(arg, 1, 1000000, o->value) < 0) {
		snprintf(err, errlen, "invalid --keep '%s': want 1 or more", arg);
		return -1;
	}
	return 0;
}

static int parse_args(struct ckpt *c, int argc, char **argv)
{
	const ev_option options[] = {
		EV_OPT_TEXT(
			"usage: ckpt [--store URL] [--job NAME] [-J] COMMAND [ARGS]\n"
			"\n"
			"Inspects the checkpoints of a job in a checkpoint store (docs/design.md, State and\n"
			"checkpoints). N is a checkpoint id or latest (the newest complete one).\n"
			"\n"
			"Commands:\n"
			"  ls                       one line per checkpoint: id, time (UTC), bytes (its own and\n"
			"                           the shared files it references), duration, state (complete,\n"
			"                           in progress, abandoned); exit 1 when the job has none,\n"
			"                           naming the jobs the store has\n"
			"  show N                   parts, offsets per topic and partition, files, sizes\n"
			"                           (incremental: uploaded by it; shared with earlier ones)\n"
			"  verify N                 the manifest's checksum, every file present with its size\n"
			"                           and SHA-256 and a plain file name, the manifest equal to the\n"
			"                           parts: exit 0 when good, 1 with each problem\n"
			"  dump N [--stage S]       the open windows of an evwindow part as NDJSON rows, after\n"
			"                           a first line {\"__evpipe\":\"watermark\",\"ts\":...}; the\n"
			"                           windows of a Kafka partition after a line\n"
			"                           {\"__evpipe\":\"partition\",\"topic\":T,\"partition\":P}\n"
			"  restore N --dir D [--stage S]\n"
			"                           the part's state into D (absent or empty), for\n"
			"                           evwindow --state-dir D (N must be complete)\n"
			"  prune --keep K           delete the checkpoints older than the K newest complete ones\n"
			"                           and the shared files no remaining checkpoint references\n"
			"  diff N M                 files added, removed and shared, offsets advanced, size delta\n"
			"\n"
			"Options:\n"),
		EV_OPT_STRING(0, "store", "URL", &c->url,
			      "the store: file:///dir or s3://bucket/prefix (default\n"
			      "$EVPIPE_CHECKPOINT_STORE; S3 from S3_ENDPOINT, AWS_REGION and\n"
			      "the AWS credentials); --checkpoint-store is the same"),
		EV_OPT_ALIAS("checkpoint-store", "store"),
		EV_OPT_FLAG('J', "json", &c->json, 1,
			    "JSON output: one document (NDJSON for dump)"),
		EV_OPT_STRING(0, "stage", "NAME", &c->stage,
			      "the stage of dump and restore (default evwindow)"),
		EV_OPT_STRING(0, "dir", "DIR", &c->dir, "where restore puts the state"),
		EV_OPT_CALLBACK(0, "keep", "K", &c->keep, opt_keep,
				"complete checkpoints prune keeps (at least 1)"),
		EV_OPTS_COMMON_JOB(&c->common, "the job whose checkpoints (default evpipe)"),
		EV_OPT_TEXT(
			"\n"
			"Exit status: 0 ok, 1 runtime failure (store, I/O) or a checkpoint that fails verify,\n"
			"2 usage error.\n"),
		EV_OPT_END(),
	};
	int rc = ev_tool_parse(options, argc, argv);
	if (rc != 0)
		return rc;
	c->args = argv + optind;
	c->nargs = argc - optind;
	if (c->nargs == 0)
		return ev_tool_usage_error("no command: ls, show, verify, dump, restore, prune, "
					   "diff");
	static const struct {
		const char *name;
		int nargs;
		int stage, dir, keep; /* the options it takes */
	} commands[] = {
		{"ls", 0, 0, 0, 0},   {"show", 1, 0, 0, 0},    {"verify", 1, 0, 0, 0},
		{"dump", 1, 1, 0, 0}, {"restore", 1, 1, 1, 0}, {"prune", 0, 0, 0, 1},
		{"diff", 2, 0, 0, 0},
	};
	size_t i;
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, c->args[0]) == 0)
			break;
	if (i == sizeof(commands) / sizeof(commands[0]))
		return ev_tool_usage_error("unknown command '%s'", c->args[0]);
	const char *cmd = commands[i].name;
	if (c->nargs - 1 < commands[i].nargs)
		return ev_tool_usage_error("%s wants %s", cmd,
					   commands[i].nargs == 2 ? "two checkpoints: N M"
								  : "a checkpoint: N or latest");
	if (c->nargs - 1 > commands[i].nargs)
		return ev_tool_usage_error("unexpected argument '%s'",
					   c->args[commands[i].nargs + 1]);
	if ((c->stage && !commands[i].stage) || (c->dir && !commands[i].dir) ||
	    (c->keep && !commands[i].keep))
		return ev_tool_usage_error("%s takes no --%s", cmd,
					   c->stage && !commands[i].stage ? "stage"
					   : c->dir && !commands[i].dir   ? "dir"
									  : "keep");
	if (commands[i].dir && !c->dir)
		return ev_tool_usage_error("restore wants --dir DIR");
	if (commands[i].keep && !c->keep)
		return ev_tool_usage_error("prune wants --keep K");
	if (!c->stage)
		c->stage = "evwindow";
	if (c->dir && !*c->dir)
		return ev_tool_usage_error("invalid --dir ''");
	if (!c->url)
		c->url = getenv("EVPIPE_CHECKPOINT_STORE");
	if (!c->url || !*c->url)
		return ev_tool_usage_error("no store: give --store URL or set "
					   "EVPIPE_CHECKPOINT_STORE");
	/* The names must make keys: "<job>/chk-<N>/<stage>.json". */
	ev_buf key = EV_BUF_INIT;
	ev_ckpt_key(&key, c->common.job, 1, c->stage);
	ev_buf_puts(&key, ".json");
	int ok = ev_store_key_ok(ev_buf_cstr(&key)) && !strchr(c->common.job, '/') &&
		 !strchr(c->stage, '/');
	ev_buf_free(&key);
	if (!ok)
		return ev_tool_usage_error("job '%s' or stage '%s' cannot name a checkpoint",
					   c->common.job, c->stage);
	return 0;
}

static int run(struct ckpt *c)
{
	const char *cmd = c->args[0];
	int64_t a = 0, b = 0;
	if (c->nargs > 1 && parse_which(c->args[1], &a) < 0)
		return EV_EXIT_USAGE;
	if (c->nargs > 2 && parse_which(c->args[2], &b) < 0)
		return EV_EXIT_USAGE;
	c->store = ev_store_open(c->url, c->err, sizeof(c->err));
	if (!c->store) {
		ev_error("--store: %s", c->err);
		return EV_EXIT_USAGE;
	}
	int rc;
	if (strcmp(cmd, "ls") == 0)
		rc = cmd_ls(c);
	else if (strcmp(cmd, "show") == 0)
		rc = cmd_show(c, a);
	else if (strcmp(cmd, "verify") == 0)
		rc = cmd_verify(c, a);
	else if (strcmp(cmd, "dump") == 0)
		rc = cmd_dump(c, a);
	else if (strcmp(cmd, "restore") == 0)
		rc = cmd_restore(c, a);
	else if (strcmp(cmd, "prune") == 0)
		rc = cmd_prune(c);
	else
		rc = cmd_diff(c, a, b);
	ev_store_close(c->store);
	return rc;
}

int main(int argc, char **argv)
{
	struct ckpt c;
	memset(&c, 0, sizeof(c));
	c.common.job = "evpipe";

	ev_tool_init("ckpt");
	int rc = parse_args(&c, argc, argv);
	if (rc != 0)
		return rc < 0 ? ev_tool_finish(EV_EXIT_OK) : rc;
	ev_metrics *m = ev_tool_metrics("ckpt", c.common.job, c.common.metrics_addr);
	if (!m)
		return EV_EXIT_FAILURE;
	rc = run(&c);
	ev_metrics_free(m);
	return ev_tool_finish(rc);
}
