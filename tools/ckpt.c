/* SPDX-License-Identifier: Apache-2.0 */
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
#include "handover.h"
#include "log.h"
#include "metrics.h"
#include "ndjson.h"
#include "opts.h"
#include "sha256.h"
#include "state.h"
#include "timefmt.h"
#include "tool.h"
#include "watermark.h"
#include "window.h"

/* What --help says before the commands (made from commands[]) and the options. */
static const char usage_head[] =
	"usage: ckpt [--store URL] [--job NAME] [--copy NAME] [-J] COMMAND [ARGS]\n"
	"\n"
	"Inspects the checkpoints of a job in a checkpoint store (docs/design.md, State and\n"
	"checkpoints). N is a checkpoint id or latest (the newest complete one).\n"
	"\n"
	"Commands:\n";

struct ckpt {
	const char *url;
	const char *stage;
	const char *dir;
	const char *copy; /* --copy: that copy's checkpoints (ADR 0025) */
	ev_buf root;      /* where the checkpoints are: the job, or <job>/copies/<copy> */
	int64_t keep;     /* 0: not given */
	int json;
	ev_tool_common common;
	char **args; /* the command and its arguments */
	int nargs;
	int64_t which[2]; /* the checkpoints the command names (0: latest) */
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
	if (ev_ckpt_list(c->store, ev_buf_cstr(&c->root), e, n, c->err, sizeof(c->err)) < 0) {
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
		ev_ckpt_manifest_key(&key, ev_buf_cstr(&c->root), e->id);
		k->manifest = ev_ckpt_get_json(c->store, ev_buf_cstr(&key), &found, c->err,
					       sizeof(c->err));
		if (found < 0)
			goto out;
	}
	for (size_t i = 0; i < e->parts && (all_parts || !k->manifest); i++) {
		ev_ckpt_part_key(&key, ev_buf_cstr(&c->root), e->id, e->stages[i]);
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
	ev_ckpt_manifest m;
	ev_ckpt_manifest_read(k->manifest, &m);
	json_object_foreach((json_t *)m.parts, stage, part)
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

static int copies_only(struct ckpt *c);

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
	if (n == 0 && copies_only(c))
		hit = NULL; /* said: its copies have checkpoints */
	else if (!hit && !which)
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

/* A file a checkpoint references: its entry in stage's part; shared when it is outside
 * chk-<N>/, so that other checkpoints may reference it too. */
struct cfile {
	const char *stage;
	size_t index; /* in the part's "files" */
	ev_ckpt_file f;
	int shared;
};

struct cfiles {
	struct cfile *v;
	size_t n;
};

static void cfiles_free(struct cfiles *fs)
{
	free(fs->v);
	memset(fs, 0, sizeof(*fs));
}

static int cfiles_add(struct cfiles *fs, const struct cfile *f)
{
	struct cfile *v = realloc(fs->v, (fs->n + 1) * sizeof(*v));
	if (!v)
		return -1;
	fs->v = v;
	fs->v[fs->n++] = *f;
	return 0;
}

/* Every file the parts of k reference, by stage and name (borrowed from k). Returns 0, or -1
 * without memory (logged). */
static int chk_files(struct ckpt *c, const struct chk *k, struct cfiles *fs)
{
	json_t *obj;
	const char *stage;
	ev_buf dir = EV_BUF_INIT;
	int rc = 0;
	memset(fs, 0, sizeof(*fs));
	ev_ckpt_dir(&dir, ev_buf_cstr(&c->root), k->id);
	ev_buf_putc(&dir, '/');
	json_object_foreach(k->parts, stage, obj)
	{
		ev_ckpt_part part;
		ev_ckpt_part_read(obj, &part);
		for (size_t i = 0; i < ev_ckpt_part_nfiles(&part) && rc == 0; i++) {
			struct cfile f = {stage, i, {0}, 0};
			ev_ckpt_part_file(&part, i, &f.f);
			if (f.f.size < 0)
				f.f.size = 0;
			f.shared = f.f.key && strncmp(f.f.key, dir.data, dir.len) != 0;
			rc = cfiles_add(fs, &f);
		}
	}
	ev_buf_free(&dir);
	if (rc < 0) {
		ev_error("out of memory");
		cfiles_free(fs);
	}
	return rc;
}

/* A file as ckpt's JSON output has it: {stage, name, key, size, sha256, shared}. */
static json_t *cfile_json(const struct cfile *f)
{
	return json_pack("{s:s, s:s?, s:s?, s:I, s:s?, s:b}", "stage", f->stage, "name", f->f.name,
			 "key", f->f.key, "size", (json_int_t)f->f.size, "sha256", f->f.sha256,
			 "shared", f->shared);
}

static json_t *cfiles_json(const struct cfiles *fs)
{
	json_t *all = json_array();
	for (size_t i = 0; i < fs->n; i++)
		json_array_append_new(all, cfile_json(&fs->v[i]));
	return all;
}

/* Bytes of the files (all, or only the shared ones). */
static uint64_t files_bytes(const struct cfiles *fs, int shared_only)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < fs->n; i++)
		if (!shared_only || fs->v[i].shared)
			sum += (uint64_t)fs->v[i].f.size;
	return sum;
}

/* What a checkpoint costs in the store: its own keys and the shared files it references. */
static uint64_t stored_bytes(const struct chk *k, const struct cfiles *fs)
{
	return k->own_bytes + files_bytes(fs, 1);
}

/* When the checkpoint completed (the manifest), or the last part was written; its duration
 * (-1 when unknown). */
static void chk_times(const struct chk *k, int64_t *at, int64_t *started, int64_t *duration)
{
	const char *stage;
	json_t *obj;
	*at = 0;
	*started = 0;
	*duration = -1;
	if (k->manifest) {
		ev_ckpt_manifest m;
		ev_ckpt_manifest_read(k->manifest, &m);
		*at = m.completed_at;
		*started = m.started_at;
		*duration = m.duration_ms < 0 ? 0 : m.duration_ms;
		return;
	}
	json_object_foreach(k->parts, stage, obj)
	{
		ev_ckpt_part part;
		ev_ckpt_part_read(obj, &part);
		if (part.at > *at)
			*at = part.at;
		if (part.injected_at)
			*started = part.injected_at;
	}
	if (*started && *at >= *started)
		*duration = *at - *started;
}

/* The offsets of the checkpoint: the manifest's, or those of the coordinator's part, into o
 * (empty when there are none, or when they do not parse: with a warning). */
static void chk_offsets(const struct chk *k, ev_ckpt_offsets *o)
{
	ev_ckpt_manifest m;
	const json_t *off;
	char err[512];
	ev_ckpt_manifest_read(k->manifest, &m);
	off = json_is_object(m.offsets) ? m.offsets : NULL;
	if (!off) {
		const char *stage;
		json_t *obj;
		json_object_foreach(k->parts, stage, obj)
		{
			ev_ckpt_part part;
			ev_ckpt_part_read(obj, &part);
			if (!off && json_is_object(part.offsets))
				off = part.offsets;
		}
	}
	if (ev_ckpt_offsets_parse(off, o, err, sizeof(err)) < 0)
		ev_warn("checkpoint %" PRId64 ": %s", k->id, err);
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
	size_t len = ev_ckpt_key_job(key);
	(void)size;
	if (!len)
		return 0;
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

/* The copies of the job, from the keys under "<job>/copies/": "<copy>/chk-...". */
struct copies {
	size_t prefix_len;
	char **names;
	size_t n;
};

static int collect_copy(const char *key, uint64_t size, void *arg)
{
	struct copies *cs = arg;
	const char *name = key + cs->prefix_len, *slash = strchr(name, '/');
	(void)size;
	if (!slash || strncmp(slash, "/chk-", 5) != 0)
		return 0;
	size_t len = (size_t)(slash - name);
	if (cs->n && strlen(cs->names[cs->n - 1]) == len &&
	    strncmp(cs->names[cs->n - 1], name, len) == 0)
		return 0;
	char **more = realloc(cs->names, (cs->n + 1) * sizeof(*more));
	if (!more)
		return 2;
	cs->names = more;
	return (cs->names[cs->n++] = strndup(name, len)) ? 0 : 2;
}

/* The names of the job's copies (ADR 0025) into cs (by name). Returns 0, or -1 (logged). */
static int list_copies(struct ckpt *c, struct copies *cs)
{
	ev_buf prefix = EV_BUF_INIT;
	ev_buf_printf(&prefix, "%s/copies/", c->common.job);
	memset(cs, 0, sizeof(*cs));
	cs->prefix_len = prefix.len;
	int rc = ev_store_list(c->store, ev_buf_cstr(&prefix), collect_copy, cs, c->err,
			       sizeof(c->err));
	ev_buf_free(&prefix);
	if (rc != 0)
		ev_error("%s: %s", ev_store_url(c->store), rc > 0 ? "out of memory" : c->err);
	return rc ? -1 : 0;
}

static void copies_free(struct copies *cs)
{
	for (size_t i = 0; i < cs->n; i++)
		free(cs->names[i]);
	free(cs->names);
	memset(cs, 0, sizeof(*cs));
}

/* Without --copy, a job with no checkpoints of its own but copies that have some: said, naming
 * them, and 1; else 0. */
static int copies_only(struct ckpt *c)
{
	struct copies cs = {0, NULL, 0};
	if (c->copy || list_copies(c, &cs) < 0 || !cs.n)
		return 0;
	ev_buf names = EV_BUF_INIT;
	for (size_t i = 0; i < cs.n; i++)
		ev_buf_printf(&names, "%s%s", i ? ", " : "", cs.names[i]);
	ev_error("job '%s' in '%s' has no checkpoints of its own but those of its copies (%s): "
		 "give --copy NAME",
		 c->common.job, ev_store_url(c->store), ev_buf_cstr(&names));
	ev_buf_free(&names);
	copies_free(&cs);
	return 1;
}

/* The error for a job without checkpoints: its copies when it has some (without --copy), the
 * jobs the store has, or that it has none (it is empty or does not exist). Returns
 * EV_EXIT_FAILURE. */
static int no_checkpoints(struct ckpt *c)
{
	struct jobs j = {EV_BUF_INIT, EV_BUF_INIT, 0};
	const char *url = ev_store_url(c->store);
	if (copies_only(c))
		url = NULL; /* said: its copies have checkpoints */
	else if (ev_store_list(c->store, "", collect_job, &j, c->err, sizeof(c->err)) < 0)
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

/* The checkpoints of the root in c->root as rows of ls (copy: its copy's name, shown in a last
 * column or field when not NULL), into arr with -J. Returns the number listed, or -1 (logged). */
static int ls_root(struct ckpt *c, const char *copy, json_t *arr, int *header)
{
	ev_ckpt_entry *e;
	size_t n;
	if (list(c, &e, &n) < 0)
		return -1;
	int64_t newest = newest_complete(e, n);
	int rc = (int)n;
	for (size_t i = 0; i < n; i++) {
		struct chk k;
		int64_t at, started, duration;
		char when[32], took[32];
		if (chk_load(c, &e[i], newest, 0, &k) < 0) {
			ev_error("checkpoint %" PRId64 ": %s", e[i].id, c->err);
			rc = -1;
			break;
		}
		struct cfiles fs;
		chk_times(&k, &at, &started, &duration);
		if (chk_files(c, &k, &fs) < 0) {
			chk_free(&k);
			rc = -1;
			break;
		}
		uint64_t bytes = stored_bytes(&k, &fs);
		cfiles_free(&fs);
		const char *state = k.state;
		if (c->json) {
			json_t *stages = json_array();
			for (size_t j = 0; j < e[i].parts; j++)
				json_array_append_new(stages, json_string(e[i].stages[j]));
			json_t *row =
				json_pack("{s:I, s:s, s:o, s:I, s:o, s:o}", "id",
					  (json_int_t)e[i].id, "state", state, "time",
					  at ? json_integer(at) : json_null(), "bytes",
					  (json_int_t)bytes, "duration_ms",
					  duration >= 0 ? json_integer(duration) : json_null(),
					  "stages", stages);
			if (row && copy)
				json_object_set_new(row, "copy",
						    *copy ? json_string(copy) : json_null());
			json_array_append_new(arr, row);
		} else {
			fmt_time(at, when);
			fmt_duration(duration, took);
			if (!*header && copy)
				printf("%-10s  %-24s  %12s  %9s  %-11s  %s\n", "ID", "TIME (UTC)",
				       "BYTES", "DURATION", "STATE", "COPY");
			else if (!*header)
				printf("%-10s  %-24s  %12s  %9s  %s\n", "ID", "TIME (UTC)", "BYTES",
				       "DURATION", "STATE");
			*header = 1;
			if (copy)
				printf("%-10" PRId64 "  %-24s  %12" PRIu64 "  %9s  %-11s  %s\n",
				       e[i].id, when, bytes, took, state, *copy ? copy : "-");
			else
				printf("%-10" PRId64 "  %-24s  %12" PRIu64 "  %9s  %s\n", e[i].id,
				       when, bytes, took, state);
		}
		chk_free(&k);
	}
	ev_ckpt_entries_free(e, n);
	return rc;
}

/* ls: the job's checkpoints, or a copy's (--copy); without --copy, those of every copy of the
 * job too, each with its copy's name (ADR 0025). */
static int cmd_ls(struct ckpt *c)
{
	struct copies cs = {0, NULL, 0};
	if (!c->copy && list_copies(c, &cs) < 0)
		return EV_EXIT_FAILURE;
	json_t *arr = json_array();
	int listed = 0, r = 0, header = 0;
	if (!cs.n)
		r = ls_root(c, NULL, arr, &header);
	/* The job's own (one copy without a name), then each copy's. */
	for (size_t i = 0; cs.n && i <= cs.n && r >= 0; i++) {
		ev_ckpt_root(&c->root, c->common.job, i ? cs.names[i - 1] : NULL);
		r = ls_root(c, i ? cs.names[i - 1] : "", arr, &header);
		listed += r > 0 ? r : 0;
	}
	ev_ckpt_root(&c->root, c->common.job, c->copy);
	copies_free(&cs);
	listed += r > 0 && !listed ? r : 0;
	if (r < 0) {
		json_decref(arr);
		return EV_EXIT_FAILURE;
	}
	if (!listed) {
		json_decref(arr);
		return no_checkpoints(c);
	}
	json_t *doc = json_pack("{s:s, s:s, s:o}", "store", ev_store_url(c->store), "job",
				c->common.job, "checkpoints", arr);
	if (doc && c->copy)
		json_object_set_new(doc, "copy", json_string(c->copy));
	if (c->json)
		return print_json(doc);
	json_decref(doc);
	return EV_EXIT_OK;
}

/* A file as a line of show and diff, after lead. */
static void file_line(const char *lead, const struct cfile *f)
{
	printf("%s%-16s  %-20s  %12" PRId64 "  %s\n", lead, f->stage, f->f.name ? f->f.name : "?",
	       f->f.size, f->f.key ? f->f.key : "?");
}

/* The state of each partition a manifest lists (ADR 0025), as show's "partitions" section;
 * nothing for a manifest without them. */
static void show_partitions(const json_t *partitions)
{
	size_t i;
	json_t *el, *st;
	const char *stage;
	if (!partitions)
		return;
	printf("partitions\n  %-24s  %9s  %12s  %-16s  %8s  %12s  %s\n", "TOPIC", "PARTITION",
	       "OFFSET", "STAGE", "WINDOWS", "BYTES", "STATE");
	json_array_foreach(partitions, i, el)
	{
		json_object_foreach(json_object_get(el, "state"), stage, st)
		{
			const char *key = json_string_value(json_object_get(st, "key"));
			const char *topic = json_string_value(json_object_get(el, "topic"));
			printf("  %-24s  %9" JSON_INTEGER_FORMAT "  %12" JSON_INTEGER_FORMAT
			       "  %-16s  %8" JSON_INTEGER_FORMAT "  %12" JSON_INTEGER_FORMAT
			       "  %s\n",
			       topic ? topic : "?",
			       json_integer_value(json_object_get(el, "partition")),
			       json_integer_value(json_object_get(el, "offset")), stage,
			       json_integer_value(json_object_get(st, "windows")),
			       json_integer_value(json_object_get(st, "bytes")), key ? key : "?");
		}
	}
}

static int cmd_show(struct ckpt *c)
{
	int64_t which = c->which[0];
	struct chk k;
	struct cfiles files;
	if (chk_find(c, which, 0, &k) < 0)
		return EV_EXIT_FAILURE;
	if (chk_files(c, &k, &files) < 0) {
		chk_free(&k);
		return EV_EXIT_FAILURE;
	}
	const char *state = k.state;
	int64_t at, started, duration;
	chk_times(&k, &at, &started, &duration);
	json_t *obj;
	const char *stage;
	ev_ckpt_part part;
	uint64_t total = files_bytes(&files, 0), uploaded = 0;
	ev_ckpt_manifest m = {0};
	if (k.manifest) {
		ev_ckpt_manifest_read(k.manifest, &m);
		uploaded = (uint64_t)m.uploaded_bytes;
	} else {
		json_object_foreach(k.parts, stage, obj)
		{
			ev_ckpt_part_read(obj, &part);
			uploaded += (uint64_t)part.uploaded_bytes;
		}
	}
	uint64_t shared = total >= uploaded ? total - uploaded : 0;
	uint64_t stored = stored_bytes(&k, &files);
	ev_ckpt_offsets off = EV_CKPT_OFFSETS_INIT;
	chk_offsets(&k, &off);
	int rc = EV_EXIT_OK;
	if (c->json) {
		json_t *parts = json_array(), *offs = json_array();
		json_object_foreach(k.parts, stage, obj)
		{
			ev_ckpt_part_read(obj, &part);
			json_array_append_new(
				parts,
				json_pack("{s:s, s:I, s:I, s:I, s:I}", "stage", stage, "at",
					  (json_int_t)part.at, "duration_ms",
					  (json_int_t)(part.duration_ms < 0 ? 0 : part.duration_ms),
					  "bytes", (json_int_t)part.bytes, "uploaded_bytes",
					  (json_int_t)part.uploaded_bytes));
		}
		for (size_t i = 0; i < off.n; i++)
			json_array_append_new(offs,
					      json_pack("{s:s, s:I, s:I}", "topic", off.v[i].topic,
							"partition", (json_int_t)off.v[i].partition,
							"offset", (json_int_t)off.v[i].offset));
		json_t *doc = json_pack(
			"{s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:I, s:I}", "id",
			(json_int_t)k.id, "job", c->common.job, "state", state, "started_at",
			started ? json_integer(started) : json_null(), "completed_at",
			k.manifest ? json_integer(at) : json_null(), "duration_ms",
			duration >= 0 ? json_integer(duration) : json_null(), "parts", parts,
			"offsets", offs, "files", cfiles_json(&files), "bytes", (json_int_t)total,
			"uploaded_bytes", (json_int_t)uploaded, "shared_bytes", (json_int_t)shared,
			"stored_bytes", (json_int_t)stored);
		/* A copy's checkpoint (ADR 0025): which copy, and the state of each partition. */
		if (doc && m.copy)
			json_object_set_new(doc, "copy", json_string(m.copy));
		if (doc && m.partitions)
			json_object_set(doc, "partitions", (json_t *)m.partitions);
		rc = print_json(doc);
	} else {
		char t1[32], t2[32];
		printf("checkpoint %" PRId64 " of job '%s' in %s: %s\n", k.id, c->common.job,
		       ev_store_url(c->store), state);
		if (m.copy)
			printf("  copy       %s\n", m.copy);
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
		json_object_foreach(k.parts, stage, obj)
		{
			ev_ckpt_part_read(obj, &part);
			fmt_time(part.at, t1);
			fmt_duration(part.duration_ms, t2);
			printf("  %-16s  %-24s  %9s  %12" PRId64 "  %12" PRId64 "\n", stage, t1, t2,
			       part.bytes, part.uploaded_bytes);
		}
		printf("offsets\n  %-24s  %9s  %12s\n", "TOPIC", "PARTITION", "OFFSET");
		for (size_t i = 0; i < off.n; i++)
			printf("  %-24s  %9" PRId32 "  %12" PRId64 "\n", off.v[i].topic,
			       off.v[i].partition, off.v[i].offset);
		show_partitions(m.partitions);
		printf("files\n  %-16s  %-20s  %12s  %s\n", "STAGE", "NAME", "SIZE", "KEY");
		for (size_t i = 0; i < files.n; i++)
			file_line("  ", &files.v[i]);
	}
	ev_ckpt_offsets_free(&off);
	cfiles_free(&files);
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
	ev_ckpt_manifest_key(&key, ev_buf_cstr(&c->root), k->id);
	char *mkey = strdup(ev_buf_cstr(&key));
	ev_ckpt_manifest m;
	ev_ckpt_manifest_read(k->manifest, &m);
	json_t *mparts = (json_t *)m.parts, *part;
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
		int r = ev_ckpt_manifest_check(k->manifest, ev_buf_cstr(&c->root), k->id, c->err,
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
			ev_ckpt_part_key(&key, ev_buf_cstr(&c->root), k->id, stage);
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
			ev_ckpt_part_key(&key, ev_buf_cstr(&c->root), k->id, stage);
			if (!json_object_get(mparts, stage))
				problem(p, ev_buf_cstr(&key), "part",
					"part '%s' is not in the manifest", stage);
		}
	}
	free(mkey);
	ev_buf_free(&key);
}

/* The state of each partition the manifest lists (ADR 0025): its hand-over object under the
 * key of its topic, partition and offset, present and matching its header and SHA-256.
 * Returns the number verified, or -1 when the store fails (logged). */
static int verify_partitions(struct ckpt *c, const struct chk *k, struct problems *p)
{
	ev_ckpt_manifest m = {0};
	ev_buf key = EV_BUF_INIT, state = EV_BUF_INIT;
	json_t *el, *st;
	const char *stage;
	size_t i;
	int n = 0;
	if (k->manifest)
		ev_ckpt_manifest_read(k->manifest, &m);
	json_array_foreach(m.partitions, i, el)
	{
		const char *topic = json_string_value(json_object_get(el, "topic"));
		json_int_t part = json_integer_value(json_object_get(el, "partition"));
		json_int_t offset = json_integer_value(json_object_get(el, "offset"));
		json_object_foreach(json_object_get(el, "state"), stage, st)
		{
			const char *listed = json_string_value(json_object_get(st, "key"));
			ev_handover_key(&key, c->common.job, stage, topic ? topic : "?",
					(int32_t)part, offset);
			if (!topic || !listed || strcmp(listed, ev_buf_cstr(&key)) != 0) {
				problem(p, listed ? listed : "?", "partition",
					"the state of partition %" JSON_INTEGER_FORMAT
					" of stage '%s' is not under its key '%s'",
					part, stage, ev_buf_cstr(&key));
				continue;
			}
			int r = ev_handover_get(c->store, c->common.job, stage, topic,
						(int32_t)part, offset, &state, c->err,
						sizeof(c->err));
			if (r == 0)
				problem(p, listed, "missing", "missing from the store");
			else if (r < 0)
				problem(p, listed, "partition", "%s", c->err);
			else
				n++;
		}
	}
	ev_buf_free(&key);
	ev_buf_free(&state);
	return n;
}

/* Each file: present, its size and SHA-256 as the part says. */
static int verify_files(struct ckpt *c, const struct chk *k, const struct cfiles *files,
			const char *tmp, struct problems *p)
{
	ev_buf path = EV_BUF_INIT;
	int rc = 0;
	ev_buf_printf(&path, "%s/file", tmp);
	for (size_t i = 0; i < files->n; i++) {
		const struct cfile *f = &files->v[i];
		const char *key = f->f.key;
		uint64_t got;
		char sha[65];
		ev_ckpt_part part;
		ev_ckpt_part_read(json_object_get(k->parts, f->stage), &part);
		if (ev_ckpt_file_check(json_array_get(part.files, f->index), ev_buf_cstr(&c->root),
				       c->err, sizeof(c->err)) < 0) {
			problem(p, key ? key : "?", "invalid", "stage '%s': %s", f->stage, c->err);
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
		if (got != (uint64_t)f->f.size)
			problem(p, key, "size", "%" PRIu64 " bytes, the part says %" PRIu64, got,
				(uint64_t)f->f.size);
		else if (strcmp(sha, f->f.sha256) != 0)
			problem(p, key, "checksum", "SHA-256 %s, the part says %s", sha,
				f->f.sha256);
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

static int cmd_verify(struct ckpt *c)
{
	int64_t which = c->which[0];
	struct chk k;
	char tmp[4096];
	if (chk_find(c, which, 0, &k) < 0)
		return EV_EXIT_FAILURE;
	if (make_tmpdir(tmp, sizeof(tmp)) < 0) {
		chk_free(&k);
		return EV_EXIT_FAILURE;
	}
	struct cfiles files;
	if (chk_files(c, &k, &files) < 0) {
		ev_state_remove_dir(tmp);
		chk_free(&k);
		return EV_EXIT_FAILURE;
	}
	struct problems p = {json_array(), !c->json};
	if (!c->json)
		printf("checkpoint %" PRId64 " of job '%s' in %s\n", k.id, c->common.job,
		       ev_store_url(c->store));
	verify_manifest(c, &k, &p);
	int rc = verify_files(c, &k, &files, tmp, &p) < 0 ? EV_EXIT_FAILURE : EV_EXIT_OK;
	int states = rc == EV_EXIT_OK ? verify_partitions(c, &k, &p) : 0;
	ev_state_remove_dir(tmp);
	size_t nproblems = json_array_size(p.list);
	uint64_t bytes = files_bytes(&files, 0);
	if (rc == EV_EXIT_OK && nproblems)
		rc = EV_EXIT_FAILURE;
	if (c->json && (rc == EV_EXIT_OK || nproblems)) {
		json_t *doc =
			json_pack("{s:I, s:b, s:I, s:I, s:I, s:O}", "id", (json_int_t)k.id, "ok",
				  nproblems == 0, "parts", (json_int_t)json_object_size(k.parts),
				  "files", (json_int_t)files.n, "bytes", (json_int_t)bytes,
				  "problems", p.list);
		if (doc && states)
			json_object_set_new(doc, "partition_states", json_integer(states));
		int prc = print_json(doc);
		if (prc != EV_EXIT_OK)
			rc = prc;
	} else if (!c->json && nproblems) {
		printf("FAILED: %zu problem(s) in %zu file(s) of %zu part(s)\n", nproblems, files.n,
		       json_object_size(k.parts));
	} else if (!c->json && rc == EV_EXIT_OK) {
		printf("ok: %zu file(s), %" PRIu64
		       " bytes, present with their size and SHA-256; the manifest matches "
		       "%zu part(s)",
		       files.n, bytes, json_object_size(k.parts));
		if (states)
			printf("; the state of %d partition(s) present and intact", states);
		putchar('\n');
	}
	if (nproblems)
		ev_error("checkpoint %" PRId64 " failed verification: %zu problem(s)", k.id,
			 nproblems);
	json_decref(p.list);
	cfiles_free(&files);
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
	ev_ckpt_part p;
	ev_ckpt_part_read(part, &p);
	if (ev_ckpt_part_nfiles(&p) == 0) {
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

static int cmd_dump(struct ckpt *c)
{
	int64_t which = c->which[0];
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

static int cmd_restore(struct ckpt *c)
{
	int64_t which = c->which[0];
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
		ev_ckpt_part p;
		uint64_t bytes = 0;
		ev_ckpt_part_read(part, &p);
		size_t nfiles = ev_ckpt_part_nfiles(&p);
		for (size_t i = 0; i < nfiles; i++) {
			ev_ckpt_file fe;
			ev_ckpt_part_file(&p, i, &fe);
			bytes += fe.size < 0 ? 0 : (uint64_t)fe.size;
		}
		if (c->json)
			rc = print_json(json_pack("{s:I, s:s, s:s, s:I, s:I, s:s%}", "id",
						  (json_int_t)k.id, "stage", c->stage, "dir",
						  c->dir, "files", (json_int_t)nfiles, "bytes",
						  (json_int_t)bytes, "config",
						  config.data ? config.data : "", config.len));
		else
			printf("checkpoint %" PRId64 ", stage '%s': %zu files, %" PRIu64
			       " bytes restored into %s\n",
			       k.id, c->stage, nfiles, bytes, c->dir);
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
	int deleted = ev_ckpt_prune(c->store, ev_buf_cstr(&c->root), (int)c->keep, c->err,
				    sizeof(c->err));
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

static int has_key(const struct cfiles *fs, const char *key)
{
	for (size_t i = 0; i < fs->n; i++)
		if (fs->v[i].f.key && key && strcmp(fs->v[i].f.key, key) == 0)
			return 1;
	return 0;
}

/* An offset of a diff as text (with its sign: an advance), "-" when there is none. */
static void fmt_offset(int has, int64_t v, int sign, char out[24])
{
	if (!has)
		strcpy(out, "-");
	else if (sign)
		snprintf(out, 24, "%+" PRId64, v);
	else
		snprintf(out, 24, "%" PRId64, v);
}

/* The offsets of a and b merged by topic and partition, as JSON rows {topic, partition, from,
 * to, advanced} and, when print, as lines: a partition missing on one side has no offset there
 * (null, "-"). */
static json_t *offsets_diff(const ev_ckpt_offsets *oa, const ev_ckpt_offsets *ob, int print)
{
	json_t *offs = json_array();
	for (size_t x = 0, y = 0; x < oa->n || y < ob->n;) {
		const ev_ckpt_offset *a = x < oa->n ? &oa->v[x] : NULL;
		const ev_ckpt_offset *b = y < ob->n ? &ob->v[y] : NULL;
		int cmp = !a ? 1 : !b ? -1 : strcmp(a->topic, b->topic);
		if (a && b && cmp == 0)
			cmp = (a->partition > b->partition) - (a->partition < b->partition);
		const ev_ckpt_offset *o = cmp <= 0 ? a : b;
		int64_t from = cmp <= 0 ? a->offset : 0, to = cmp >= 0 ? b->offset : 0;
		json_array_append_new(offs,
				      json_pack("{s:s, s:I, s:o, s:o, s:o}", "topic", o->topic,
						"partition", (json_int_t)o->partition, "from",
						cmp <= 0 ? json_integer(from) : json_null(), "to",
						cmp >= 0 ? json_integer(to) : json_null(),
						"advanced",
						cmp == 0 ? json_integer(to - from) : json_null()));
		if (print) {
			char f[24], t[24], adv[24];
			fmt_offset(cmp <= 0, from, 0, f);
			fmt_offset(cmp >= 0, to, 0, t);
			fmt_offset(cmp == 0, to - from, 1, adv);
			printf("  %-24s  %9" PRId32 "  %12s  %12s  %10s\n", o->topic, o->partition,
			       f, t, adv);
		}
		x += cmp <= 0;
		y += cmp >= 0;
	}
	return offs;
}

static int cmd_diff(struct ckpt *c)
{
	int64_t w1 = c->which[0], w2 = c->which[1];
	struct chk a, b;
	struct cfiles fa, fb, added = {0}, removed = {0}, shared = {0};
	if (chk_find(c, w1, 0, &a) < 0)
		return EV_EXIT_FAILURE;
	if (chk_find(c, w2, 0, &b) < 0) {
		chk_free(&a);
		return EV_EXIT_FAILURE;
	}
	int rc = EV_EXIT_FAILURE;
	if (chk_files(c, &a, &fa) < 0)
		goto files_a;
	if (chk_files(c, &b, &fb) < 0)
		goto files_b;
	rc = EV_EXIT_OK;
	for (size_t i = 0; i < fa.n && rc == EV_EXIT_OK; i++)
		if (cfiles_add(has_key(&fb, fa.v[i].f.key) ? &shared : &removed, &fa.v[i]) < 0)
			rc = EV_EXIT_FAILURE;
	for (size_t i = 0; i < fb.n && rc == EV_EXIT_OK; i++)
		if (!has_key(&fa, fb.v[i].f.key) && cfiles_add(&added, &fb.v[i]) < 0)
			rc = EV_EXIT_FAILURE;
	if (rc != EV_EXIT_OK) {
		ev_error("out of memory");
		goto out;
	}
	ev_ckpt_offsets oa = EV_CKPT_OFFSETS_INIT, ob = EV_CKPT_OFFSETS_INIT;
	chk_offsets(&a, &oa);
	chk_offsets(&b, &ob);
	json_t *offs = NULL;
	uint64_t ba = files_bytes(&fa, 0), bb = files_bytes(&fb, 0);
	uint64_t sa = stored_bytes(&a, &fa), sb = stored_bytes(&b, &fb);
	if (c->json) {
		offs = offsets_diff(&oa, &ob, 0);
		rc = print_json(json_pack(
			"{s:I, s:I, s:o, s:o, s:o, s:I, s:I, s:I, s:O, s:{s:I, s:I, s:I}, "
			"s:{s:I, s:I, s:I}}",
			"from", (json_int_t)a.id, "to", (json_int_t)b.id, "added",
			cfiles_json(&added), "removed", cfiles_json(&removed), "shared",
			cfiles_json(&shared), "added_bytes", (json_int_t)files_bytes(&added, 0),
			"removed_bytes", (json_int_t)files_bytes(&removed, 0), "shared_bytes",
			(json_int_t)files_bytes(&shared, 0), "offsets", offs, "bytes", "from",
			(json_int_t)ba, "to", (json_int_t)bb, "delta", (json_int_t)(bb - ba),
			"stored_bytes", "from", (json_int_t)sa, "to", (json_int_t)sb, "delta",
			(json_int_t)(sb - sa)));
	} else {
		size_t i;
		printf("checkpoint %" PRId64 " -> %" PRId64 "\n", a.id, b.id);
		printf("files: %zu added (%" PRIu64 " bytes), %zu removed (%" PRIu64
		       " bytes), %zu shared (%" PRIu64 " bytes)\n",
		       added.n, files_bytes(&added, 0), removed.n, files_bytes(&removed, 0),
		       shared.n, files_bytes(&shared, 0));
		for (i = 0; i < added.n; i++)
			file_line("  + ", &added.v[i]);
		for (i = 0; i < removed.n; i++)
			file_line("  - ", &removed.v[i]);
		printf("offsets\n  %-24s  %9s  %12s  %12s  %10s\n", "TOPIC", "PARTITION", "FROM",
		       "TO", "ADVANCED");
		offs = offsets_diff(&oa, &ob, 1);
		printf("bytes: %" PRIu64 " -> %" PRIu64 " (%+" PRId64 "); in the store %" PRIu64
		       " -> %" PRIu64 " (%+" PRId64 ")\n",
		       ba, bb, (int64_t)(bb - ba), sa, sb, (int64_t)(sb - sa));
	}
	json_decref(offs);
	ev_ckpt_offsets_free(&oa);
	ev_ckpt_offsets_free(&ob);
out:
	cfiles_free(&added);
	cfiles_free(&removed);
	cfiles_free(&shared);
	cfiles_free(&fb);
files_b:
	cfiles_free(&fa);
files_a:
	chk_free(&a);
	chk_free(&b);
	return rc;
}

/* ckpt's commands, as git's builtins: what the usage shows, the checkpoints they take (N, or N
 * M), the options of their own (TAKES_*; a required one also in needs), what runs them. */
enum { TAKES_STAGE = 1, TAKES_DIR = 2, TAKES_KEEP = 4 };
static const struct command {
	const char *name;
	const char *args; /* as the usage shows them */
	int nargs;
	unsigned takes, needs;
	int (*fn)(struct ckpt *c);
	const char *help; /* lines of the usage */
} commands[] = {
	{"ls", "", 0, 0, 0, cmd_ls,
	 "one line per checkpoint: id, time (UTC), bytes (its own and\n"
	 "the shared files it references), duration, state (complete,\n"
	 "in progress, abandoned); exit 1 when the job has none,\n"
	 "naming the jobs the store has"},
	{"show", "N", 1, 0, 0, cmd_show,
	 "parts, offsets per topic and partition, files, sizes\n"
	 "(incremental: uploaded by it; shared with earlier ones)"},
	{"verify", "N", 1, 0, 0, cmd_verify,
	 "the manifest's checksum, every file present with its size\n"
	 "and SHA-256 and a plain file name, the manifest equal to the\n"
	 "parts: exit 0 when good, 1 with each problem"},
	{"dump", "N [--stage S]", 1, TAKES_STAGE, 0, cmd_dump,
	 "the open windows of an evwindow part as NDJSON rows, after\n"
	 "a first line {\"__evpipe\":\"watermark\",\"ts\":...}; the\n"
	 "windows of a Kafka partition after a line\n"
	 "{\"__evpipe\":\"partition\",\"topic\":T,\"partition\":P}"},
	{"restore", "N --dir D [--stage S]", 1, TAKES_STAGE | TAKES_DIR, TAKES_DIR, cmd_restore,
	 "the part's state into D (absent or empty), for\n"
	 "evwindow --state-dir D (N must be complete)"},
	{"prune", "--keep K", 0, TAKES_KEEP, TAKES_KEEP, cmd_prune,
	 "delete the checkpoints older than the K newest complete ones\n"
	 "and the shared files no remaining checkpoint references"},
	{"diff", "N M", 2, 0, 0, cmd_diff,
	 "files added, removed and shared, offsets advanced, size delta"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* The usage before the options: the commands from commands[]. */
static const char *usage_text(void)
{
	static ev_buf b = EV_BUF_INIT;
	enum { COLUMN = 27 };
	if (b.len)
		return ev_buf_cstr(&b);
	ev_buf_puts(&b, usage_head);
	for (size_t i = 0; i < NCOMMANDS; i++) {
		const struct command *cmd = &commands[i];
		size_t at = b.len;
		ev_buf_printf(&b, "  %s%s%s", cmd->name, *cmd->args ? " " : "", cmd->args);
		for (const char *h = cmd->help; *h;) {
			size_t n = strcspn(h, "\n");
			if (b.len - at >= COLUMN - 1) {
				ev_buf_putc(&b, '\n');
				at = b.len;
			}
			ev_buf_printf(&b, "%*s%.*s", (int)(COLUMN - (b.len - at)), "", (int)n, h);
			h += n + (h[n] == '\n');
		}
		ev_buf_putc(&b, '\n');
	}
	ev_buf_puts(&b, "\nOptions:\n");
	return ev_buf_cstr(&b);
}

/* The options of a command's own that it does not take or needs and lacks, as a usage
 * error; 0 when they are right. */
static int command_options(const struct ckpt *c, const struct command *cmd)
{
	static const struct {
		unsigned bit;
		const char *name;
	} own[] = {{TAKES_STAGE, "stage"}, {TAKES_DIR, "dir"}, {TAKES_KEEP, "keep"}};
	unsigned given = (c->stage ? TAKES_STAGE : 0) | (c->dir ? TAKES_DIR : 0) |
			 (c->keep ? TAKES_KEEP : 0);
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if ((given & own[i].bit) && !(cmd->takes & own[i].bit))
			return ev_tool_usage_error("%s takes no --%s", cmd->name, own[i].name);
	if ((cmd->needs & TAKES_DIR) && !c->dir)
		return ev_tool_usage_error("%s wants --dir DIR", cmd->name);
	if ((cmd->needs & TAKES_KEEP) && !c->keep)
		return ev_tool_usage_error("%s wants --keep K", cmd->name);
	return 0;
}

static int opt_keep(const ev_option *o, char *arg, char *err, size_t errlen)
{
	if (ev_opt_int(arg, 1, 1000000, o->value) < 0) {
		snprintf(err, errlen, "invalid --keep '%s': want 1 or more", arg);
		return -1;
	}
	return 0;
}

static int parse_args(struct ckpt *c, int argc, char **argv, const struct command **cmd)
{
	const ev_option options[] = {
		EV_OPT_TEXT(usage_text()),
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
		EV_OPT_STRING(0, "copy", "NAME", &c->copy,
			      "the checkpoints of copy NAME of a job run as several\n"
			      "copies (kin --copy); ls without it lists every copy's"),
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
	if (c->nargs == 0) {
		ev_buf names = EV_BUF_INIT;
		for (size_t i = 0; i < NCOMMANDS; i++)
			ev_buf_printf(&names, "%s%s", i ? ", " : "", commands[i].name);
		rc = ev_tool_usage_error("no command: %s", ev_buf_cstr(&names));
		ev_buf_free(&names);
		return rc;
	}
	size_t i;
	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, c->args[0]) == 0)
			break;
	if (i == NCOMMANDS)
		return ev_tool_usage_error("unknown command '%s'", c->args[0]);
	*cmd = &commands[i];
	if (c->nargs - 1 < (*cmd)->nargs)
		return ev_tool_usage_error("%s wants %s", (*cmd)->name,
					   (*cmd)->nargs == 2 ? "two checkpoints: N M"
							      : "a checkpoint: N or latest");
	if (c->nargs - 1 > (*cmd)->nargs)
		return ev_tool_usage_error("unexpected argument '%s'", c->args[(*cmd)->nargs + 1]);
	rc = command_options(c, *cmd);
	if (rc)
		return rc;
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
	if (!ev_ckpt_names_ok(c->common.job, c->stage) || strchr(c->common.job, '/') ||
	    strchr(c->stage, '/'))
		return ev_tool_usage_error("job '%s' or stage '%s' cannot name a checkpoint",
					   c->common.job, c->stage);
	if (c->copy && !ev_ckpt_copy_ok(c->copy))
		return ev_tool_usage_error(
			"invalid --copy '%s': want 1 to 64 letters, digits, '.', "
			"'_' or '-'",
			c->copy);
	ev_ckpt_root(&c->root, c->common.job, c->copy);
	for (int a = 0; a < (*cmd)->nargs; a++)
		if (parse_which(c->args[a + 1], &c->which[a]) < 0)
			return EV_EXIT_USAGE;
	return 0;
}

static int run(struct ckpt *c, const struct command *cmd)
{
	c->store = ev_store_open(c->url, c->err, sizeof(c->err));
	if (!c->store) {
		ev_error("--store: %s", c->err);
		return EV_EXIT_USAGE;
	}
	int rc = cmd->fn(c);
	ev_store_close(c->store);
	return rc;
}

int main(int argc, char **argv)
{
	struct ckpt c;
	memset(&c, 0, sizeof(c));
	c.common.job = "evpipe";

	const struct command *cmd = NULL;
	ev_tool_init("ckpt");
	int rc = parse_args(&c, argc, argv, &cmd);
	if (rc != 0) {
		ev_buf_free(&c.root);
		return rc < 0 ? ev_tool_finish(EV_EXIT_OK) : rc;
	}
	ev_metrics *m = ev_tool_metrics("ckpt", c.common.job, c.common.metrics_addr);
	if (!m)
		return EV_EXIT_FAILURE;
	rc = run(&c, cmd);
	ev_buf_free(&c.root);
	ev_metrics_free(m);
	return ev_tool_finish(rc);
}
