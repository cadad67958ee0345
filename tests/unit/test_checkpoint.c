/* SPDX-License-Identifier: Apache-2.0 */
/* test_checkpoint.c: the checkpoint protocol on a file store: parts, listing, what a restore
 * picks, pruning that never deletes a referenced file, and the coordinator's outcomes. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "clock.h"
#include "coordinator.h"
#include "handover.h"
#include "test.h"

static char root[] = "/tmp/evpipe-test-ckpt-XXXXXX";

static void open_ck(ev_ckpt *ck, const char *stage)
{
	char url[256], err[512];
	snprintf(url, sizeof(url), "file://%s", root);
	memset(ck, 0, sizeof(*ck));
	ck->url = url;
	CHECK(ev_ckpt_open(ck, "job", stage, err, sizeof(err)) == 0);
	ck->url = NULL; /* the stack copy is gone after return; the store keeps its own */
}

/* A part of stage for checkpoint id that references shared/<file>. */
static void part_with_file(ev_ckpt *ck, int64_t id, const char *file)
{
	char key[256], err[512];
	snprintf(key, sizeof(key), "job/shared/%s/%s", ck->stage, file);
	CHECK(ev_store_put(ck->store, key, file, strlen(file), err, sizeof(err)) == 0);
	json_t *part = json_pack("{s:[{s:s, s:s, s:I}], s:I, s:I}", "files", "name", file, "key",
				 key, "size", (json_int_t)strlen(file), "bytes",
				 (json_int_t)strlen(file), "uploaded_bytes", (json_int_t)1);
	CHECK(ev_ckpt_put_part(ck, id, part, err, sizeof(err)) == 0);
}

static char last_err[512];

static int64_t drive(ev_coord *c, int *outcome)
{
	char *err = last_err;
	json_t *offsets = NULL;
	int64_t t = ev_wall_ms();
	for (int i = 0; i < 50; i++) {
		*outcome = ev_coord_poll(c, t + 200 * (i + 1), &offsets, err, sizeof(last_err));
		if (*outcome != EV_COORD_PENDING)
			break;
	}
	int64_t n = offsets ? json_integer_value(
				      json_object_get(json_object_get(offsets, "events"), "0"))
			    : -1;
	json_decref(offsets);
	return n;
}

static void test_protocol(void)
{
	ev_ckpt kin, win;
	char err[512];
	ev_metrics *m = ev_metrics_new("kin", "test");
	open_ck(&kin, "kin");
	open_ck(&win, "evwindow");
	const char *expect[] = {"evwindow"};
	ev_coord_opts o = {&kin, 1000, 5000, 1, 2, expect, 1, NULL, NULL};
	ev_coord *c = ev_coord_new(&o, m, err, sizeof(err));
	CHECK(c != NULL);
	if (!c)
		return;
	/* Three checkpoints complete, each with its own file and one shared by all. */
	for (int64_t i = 1; i <= 3; i++) {
		int64_t now = ev_wall_ms() + 1000 * i;
		CHECK(ev_coord_due(c, now + 5000));
		json_t *off = json_pack("{s:{s:I}}", "events", "0", (json_int_t)(100 * i));
		CHECK(ev_coord_begin(c, off, now, err, sizeof(err)) == i);
		CHECK(!ev_coord_due(c, now + 100000)); /* one at a time */
		int outcome;
		json_t *none;
		CHECK(ev_coord_poll(c, now + 300, &none, err, sizeof(err)) == EV_COORD_PENDING);
		char file[32];
		snprintf(file, sizeof(file), "own-%d", (int)i);
		part_with_file(&win, i, file);
		part_with_file(&win, i, "common");
		/* the second part_with_file replaced the first: make the part list both */
		static const char sha[] =
			"0000000000000000000000000000000000000000000000000000000000000000";
		json_t *part = json_pack("{s:[{s:s, s:s, s:i, s:s}, {s:s, s:s, s:i, s:s}]}",
					 "files", "name", file, "key", "", "size", 1, "sha256", sha,
					 "name", "common", "key", "job/shared/evwindow/common",
					 "size", 1, "sha256", sha);
		char k[64];
		snprintf(k, sizeof(k), "job/shared/evwindow/%s", file);
		json_object_set_new(json_array_get(json_object_get(part, "files"), 0), "key",
				    json_string(k));
		CHECK(ev_ckpt_put_part(&win, i, part, err, sizeof(err)) == 0);
		CHECK(drive(c, &outcome) == 100 * i);
		CHECK(outcome == EV_COORD_COMPLETED);
	}
	/* retain 2: checkpoint 1 and its own file are gone, the shared file stays */
	ev_ckpt_entry *e;
	size_t n;
	CHECK(ev_ckpt_list(kin.store, "job", &e, &n, err, sizeof(err)) == 0);
	CHECK(n == 2 && e[0].id == 2 && e[1].id == 3 && e[0].complete && e[1].parts == 2);
	ev_ckpt_entries_free(e, n);
	uint64_t size;
	CHECK(ev_store_head(kin.store, "job/shared/evwindow/own-1", &size, err, sizeof(err)) == 0);
	CHECK(ev_store_head(kin.store, "job/shared/evwindow/own-2", &size, err, sizeof(err)) == 1);
	CHECK(ev_store_head(kin.store, "job/shared/evwindow/common", &size, err, sizeof(err)) == 1);
	int64_t id;
	CHECK(ev_ckpt_resolve(kin.store, "job", "latest", &id, err, sizeof(err)) == 0 && id == 3);
	CHECK(ev_ckpt_resolve(kin.store, "job", "2", &id, err, sizeof(err)) == 0 && id == 2);
	CHECK(ev_ckpt_resolve(kin.store, "job", "1", &id, err, sizeof(err)) < 0);
	CHECK(ev_ckpt_resolve(kin.store, "job", "none", &id, err, sizeof(err)) == 0 && id == 0);
	CHECK(ev_ckpt_resolve(kin.store, "job", "x", &id, err, sizeof(err)) < 0);
	json_t *off = ev_coord_restore_offsets(&kin, 3, err, sizeof(err));
	CHECK(json_integer_value(json_object_get(json_object_get(off, "events"), "0")) == 300);
	json_decref(off);

	/* A stage that never answers: abandoned, then once more than tolerable: failed. */
	int outcome;
	for (int i = 0; i < 2; i++) {
		json_t *o2 = json_object();
		CHECK(ev_coord_begin(c, o2, ev_wall_ms(), err, sizeof(err)) > 0);
		drive(c, &outcome);
		CHECK(outcome == (i == 0 ? EV_COORD_ABANDONED : EV_COORD_FAILED));
	}
	CHECK(strstr(last_err, "consecutive") != NULL);
	ev_coord_free(c);
	ev_ckpt_close(&kin);
	ev_ckpt_close(&win);
	ev_metrics_free(m);
}

/* What a restore picks and refuses: the manifest's checksum, latest and latest-valid, an id,
 * another pipeline's identity, a manifest of format 1. */
static void test_restore(void)
{
	ev_ckpt kin;
	char err[1024];
	ev_metrics *m = ev_metrics_new("kin", "test");
	open_ck(&kin, "kin");
	kin.job = "restore";
	ev_ckpt_set_identity(&kin, json_pack("{s:[s], s:s}", "topics", "events", "group", "g"));
	ev_coord_opts o = {&kin, 1000, 5000, 1, 10, NULL, 0, NULL, NULL};
	ev_coord *c = ev_coord_new(&o, m, err, sizeof(err));
	CHECK(c != NULL);
	if (!c)
		return;
	for (int64_t i = 1; i <= 3; i++) {
		int outcome;
		json_t *off = json_pack("{s:{s:I}}", "events", "0", (json_int_t)(10000 * i));
		CHECK(ev_coord_begin(c, off, ev_wall_ms(), err, sizeof(err)) == i);
		CHECK(drive(c, &outcome) == 10000 * i);
	}
	ev_coord_free(c);
	ev_ckpt_restored r;
	kin.restore = "latest";
	CHECK(ev_ckpt_restore(&kin, &r, err, sizeof(err)) == 0 && r.id == 3);
	CHECK(json_integer_value(json_object_get(json_object_get(r.offsets, "events"), "0")) ==
	      30000);
	CHECK(json_is_object(json_object_get(r.part, "identity")));
	ev_ckpt_restored_free(&r);

	/* one digit of the manifest of 3 changes: 30000 -> 30100 */
	ev_buf b = EV_BUF_INIT;
	const char *key = "restore/chk-0000000003/_manifest.json";
	CHECK(ev_store_get(kin.store, key, &b, err, sizeof(err)) == 1);
	char *at = ev_buf_cstr(&b) ? strstr(b.data, "30000") : NULL;
	CHECK(at != NULL);
	if (at)
		at[2] = '1';
	CHECK(ev_store_put(kin.store, key, b.data, b.len, err, sizeof(err)) == 0);
	CHECK(ev_ckpt_restore(&kin, &r, err, sizeof(err)) == -1 && r.id == 0);
	CHECK(strstr(err, "checkpoint 3 of job 'restore' failed verification: the manifest does "
			  "not match its checksum") != NULL);
	CHECK(strstr(err, "the newest intact one is 2 (--restore latest-valid or --restore 2") !=
	      NULL);
	kin.restore = "3";
	CHECK(ev_ckpt_restore(&kin, &r, err, sizeof(err)) == -1);
	kin.restore = "latest-valid";
	CHECK(ev_ckpt_restore(&kin, &r, err, sizeof(err)) == 0 && r.id == 2);
	CHECK(json_integer_value(json_object_get(json_object_get(r.offsets, "events"), "0")) ==
	      20000);
	ev_ckpt_restored_free(&r);

	/* another pipeline: refused naming what differs, unless allowed */
	ev_ckpt_set_identity(&kin, json_pack("{s:[s], s:s}", "topics", "other", "group", "g"));
	CHECK(ev_ckpt_restore(&kin, &r, err, sizeof(err)) == -1 && r.id == 0);
	CHECK(strstr(err,
		     "checkpoint 2 of job 'restore' is of another pipeline: stage 'kin' "
		     "topics: [\"events\"] in the checkpoint, [\"other\"] here; give") != NULL);
	kin.allow_mismatch = 1;
	CHECK(ev_ckpt_restore(&kin, &r, err, sizeof(err)) == 0 && r.id == 2);
	ev_ckpt_restored_free(&r);
	kin.allow_mismatch = 0;

	/* a manifest of format 1 (no checksum) is read; one that lost only its checksum is not */
	key = "restore/chk-0000000002/_manifest.json";
	json_t *man = ev_ckpt_get_json(kin.store, key, &(int){0}, err, sizeof(err));
	CHECK(man != NULL);
	json_object_del(man, "checksum");
	CHECK(ev_ckpt_put_json(kin.store, key, man, err, sizeof(err)) == 0);
	kin.restore = "2";
	CHECK(ev_ckpt_restore(&kin, &r, err, sizeof(err)) == -1);
	CHECK(strstr(err, "the manifest has a format but no checksum") != NULL);
	json_object_del(man, "format");
	json_object_del(json_object_get(json_object_get(man, "parts"), "kin"), "identity");
	CHECK(ev_ckpt_put_json(kin.store, key, man, err, sizeof(err)) == 0);
	CHECK(ev_ckpt_restore(&kin, &r, err, sizeof(err)) == 0 && r.id == 2);
	ev_ckpt_restored_free(&r);
	/* offsets that kin never records: a negative one (Kafka's "beginning"), a partition that
	 * is no number */
	json_object_set_new(json_object_get(json_object_get(man, "offsets"), "events"), "0",
			    json_integer(-2));
	CHECK(ev_ckpt_put_json(kin.store, key, man, err, sizeof(err)) == 0);
	CHECK(ev_ckpt_restore(&kin, &r, err, sizeof(err)) == -1);
	CHECK(strstr(err, "the manifest's offset of 'events' partition '0' is not a partition "
			  "number and an offset from 0") != NULL);
	json_object_set_new(json_object_get(man, "offsets"), "events",
			    json_pack("{s:I}", "x", (json_int_t)5));
	CHECK(ev_ckpt_put_json(kin.store, key, man, err, sizeof(err)) == 0);
	CHECK(ev_ckpt_restore(&kin, &r, err, sizeof(err)) == -1);
	CHECK(strstr(err, "partition 'x' is not a partition number") != NULL);
	json_decref(man);

	/* a file entry that would leave the directory it is downloaded to */
	json_t *f = json_pack("{s:s, s:s, s:i, s:s}", "name", "../x", "key", "restore/shared/x",
			      "size", 1, "sha256",
			      "0000000000000000000000000000000000000000000000000000000000000000");
	CHECK(ev_ckpt_file_check(f, "restore", err, sizeof(err)) == -1);
	CHECK(strstr(err, "invalid file name '../x'") != NULL);
	json_object_set_new(f, "name", json_string("000012.sst"));
	CHECK(ev_ckpt_file_check(f, "restore", err, sizeof(err)) == 0);
	json_object_set_new(f, "key", json_string("other/shared/x"));
	CHECK(ev_ckpt_file_check(f, "restore", err, sizeof(err)) == -1);
	json_decref(f);

	ev_buf_free(&b);
	ev_ckpt_close(&kin);
	ev_metrics_free(m);
}

/* Pruning never follows a link out of the store: a checkpoint directory that is a link to a
 * directory outside stops the prune, and the files there stay. */
static void test_prune_link(void)
{
	ev_ckpt kin;
	char err[512], path[1100], outside[512];
	open_ck(&kin, "kin");
	snprintf(outside, sizeof(outside), "%s-outside", root);
	CHECK(mkdir(outside, 0777) == 0);
	snprintf(path, sizeof(path), "%s/victim", outside);
	FILE *f = fopen(path, "w");
	CHECK(f && fputs("keep", f) >= 0 && fclose(f) == 0);
	snprintf(path, sizeof(path), "%s/links/chk-0000000001", root);
	CHECK(ev_store_put(kin.store, "links/chk-0000000009/kin.json", "{}", 2, err, sizeof(err)) ==
	      0);
	CHECK(ev_store_put(kin.store, "links/chk-0000000009/_manifest.json", "{}", 2, err,
			   sizeof(err)) == 0);
	CHECK(symlink(outside, path) == 0);
	CHECK(ev_ckpt_prune(kin.store, "links", 1, err, sizeof(err)) == -1);
	CHECK(strstr(err, "symbolic link") != NULL);
	snprintf(path, sizeof(path), "%s/victim", outside);
	CHECK(access(path, F_OK) == 0);
	unlink(path);
	rmdir(outside);
	ev_ckpt_close(&kin);
}

/* The offsets type: one formatter and one parser of {"topic":{"partition":offset}}; and the
 * typed part, manifest and file entries over their JSON. */
static void test_offsets_and_objects(void)
{
	char err[256] = "";
	ev_ckpt_offsets o = EV_CKPT_OFFSETS_INIT, back = EV_CKPT_OFFSETS_INIT;
	CHECK(ev_ckpt_offsets_set(&o, "events", 10, 7) == 0);
	CHECK(ev_ckpt_offsets_set(&o, "events", 2, 5) == 0);
	CHECK(ev_ckpt_offsets_set(&o, "clicks", 0, 1) == 0);
	CHECK(ev_ckpt_offsets_set(&o, "events", 2, 6) == 0); /* replaced */
	CHECK(o.n == 3);
	/* by topic, then partition number (10 after 2, not as text) */
	CHECK_STR(o.v[0].topic, "clicks");
	CHECK(o.v[1].partition == 2 && o.v[1].offset == 6);
	CHECK(o.v[2].partition == 10);
	CHECK(ev_ckpt_offsets_get(&o, "events", 10)->offset == 7);
	CHECK(ev_ckpt_offsets_get(&o, "events", 3) == NULL);
	json_t *j = ev_ckpt_offsets_json(&o);
	char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	CHECK_STR(text, "{\"clicks\":{\"0\":1},\"events\":{\"10\":7,\"2\":6}}");
	free(text);
	CHECK(ev_ckpt_offsets_parse(j, &back, err, sizeof(err)) == 0);
	CHECK(back.n == 3 && ev_ckpt_offsets_get(&back, "events", 2)->offset == 6);
	json_decref(j);
	/* what kin never records is refused, and leaves the offsets empty */
	const char *bad[] = {"[]",
			     "{\"t\":1}",
			     "{\"\":{}}",
			     "{\"t\":{\"-1\":0}}",
			     "{\"t\":{\"x\":0}}",
			     "{\"t\":{\"2147483648\":0}}",
			     "{\"t\":{\"0\":-2}}",
			     "{\"t\":{\"0\":\"5\"}}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *b = json_loads(bad[i], 0, NULL);
		err[0] = '\0';
		CHECK(ev_ckpt_offsets_parse(b, &back, err, sizeof(err)) == -1);
		CHECK(back.n == 0 && err[0]);
		json_decref(b);
	}
	CHECK(ev_ckpt_offsets_parse(NULL, &back, err, sizeof(err)) == 0 && back.n == 0);
	ev_ckpt_offsets_free(&o);
	ev_ckpt_offsets_free(&back);

	/* a manifest written from its struct reads back as the same struct */
	json_t *parts =
		json_pack("{s:{s:s, s:I, s:I, s:[{s:s, s:s, s:I, s:s}]}}", "evwindow", "stage",
			  "evwindow", "at", (json_int_t)1500, "bytes", (json_int_t)42, "files",
			  "name", "000007.sst", "key", "j/shared/evwindow/x.sst", "size",
			  (json_int_t)42, "sha256",
			  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	json_t *offs = json_pack("{s:{s:I}}", "events", "0", (json_int_t)9);
	ev_ckpt_manifest m = {"j", 3, 1000, 2000, 1000, 42, 40, NULL, NULL, NULL, NULL}, r;
	json_t *mj = ev_ckpt_manifest_new(&m, parts, offs);
	ev_ckpt_manifest_read(mj, &r);
	CHECK_STR(r.job, "j");
	CHECK(r.id == 3 && r.started_at == 1000 && r.completed_at == 2000 &&
	      r.duration_ms == 1000 && r.bytes == 42 && r.uploaded_bytes == 40);
	CHECK(json_equal((json_t *)r.offsets, offs) && json_equal((json_t *)r.parts, parts));
	ev_ckpt_part p;
	ev_ckpt_file f;
	ev_ckpt_part_read(json_object_get(r.parts, "evwindow"), &p);
	CHECK_STR(p.stage, "evwindow");
	CHECK(p.at == 1500 && p.duration_ms == -1 && p.injected_at == 0 && p.bytes == 42);
	CHECK(ev_ckpt_part_nfiles(&p) == 1);
	ev_ckpt_part_file(&p, 0, &f);
	CHECK_STR(f.name, "000007.sst");
	CHECK(f.size == 42);
	/* a part made from its struct carries what was set, and reads back */
	ev_ckpt_part made = {.duration_ms = -1, .injected_at = 77, .offsets = offs};
	json_t *pj = ev_ckpt_part_new(&made);
	CHECK(json_equal(json_object_get(pj, "offsets"), offs));
	CHECK(!json_object_get(pj, "duration_ms") && !json_object_get(pj, "files"));
	ev_ckpt_part_read(pj, &made);
	CHECK(made.injected_at == 77 && made.duration_ms == -1 && made.files == NULL);
	json_decref(pj);
	json_t *fj = ev_ckpt_file_new(&f);
	CHECK(json_equal(fj, json_array_get(p.files, 0)));
	CHECK(ev_ckpt_file_check(fj, "j", err, sizeof(err)) == 0);
	json_decref(fj);
	json_decref(mj);
	json_decref(parts);
	json_decref(offs);
	/* keys: one place builds them */
	ev_buf key = EV_BUF_INIT;
	ev_ckpt_part_key(&key, "j", 7, "evwindow");
	CHECK_STR(ev_buf_cstr(&key), "j/chk-0000000007/evwindow.json");
	ev_ckpt_manifest_key(&key, "j", 7);
	CHECK_STR(ev_buf_cstr(&key), "j/chk-0000000007/_manifest.json");
	ev_buf_free(&key);
	CHECK(ev_ckpt_key_job("jobs/chk-0000000007/evwindow.json") == 4);
	CHECK(ev_ckpt_key_job("jobs/shared/evwindow/x.sst") == 0);
	CHECK(ev_ckpt_key_job("chk-0000000007") == 0);
	CHECK(ev_ckpt_names_ok("j", "evwindow"));
	CHECK(!ev_ckpt_names_ok("j", ".."));
}

/* A manifest of checkpoint id under root (job, copy) with the partitions and offsets given. */
static void put_manifest(ev_store *st, const char *job, const char *copy, int64_t id,
			 json_t *partitions, json_t *offsets)
{
	char err[512];
	ev_buf where = EV_BUF_INIT;
	ev_ckpt_root(&where, job, copy);
	json_t *parts = json_pack("{s:{}}", "kin");
	ev_ckpt_manifest m = {job, id, 1, 2, 1, 0, 0, NULL, NULL, copy, partitions};
	json_t *mj = ev_ckpt_manifest_new(&m, parts, offsets);
	CHECK(mj != NULL);
	CHECK(ev_ckpt_put_manifest(st, ev_buf_cstr(&where), id, mj, err, sizeof(err)) == 0);
	json_decref(mj);
	json_decref(parts);
	json_decref(partitions);
	json_decref(offsets);
	ev_buf_free(&where);
}

/* The committed offsets of the test: topic t partition 0 at 40, partition 1 unknown. */
static int committed_40(ev_ckpt_offsets *o, void *arg)
{
	(void)arg;
	return ev_ckpt_offsets_set(o, "t", 0, 40);
}

static int exists(ev_store *st, const char *key)
{
	char err[256];
	uint64_t size;
	return ev_store_head(st, key, &size, err, sizeof(err)) == 1;
}

/* Copies of one job (ADR 0025): each its own checkpoints under <job>/copies/<copy>, manifests
 * that name their copy, the hand-over objects of the job pruned only below the group's
 * committed offset and when no copy's checkpoint references them, and a copy refused an old
 * store of one copy without a name until that one wrote each partition's state. */
static void test_copies(void)
{
	ev_ckpt a, b, x;
	char err[1024];
	ev_ckpt_entry *e;
	size_t n;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.copy = "a";
	b.copy = "b";
	char url[256];
	snprintf(url, sizeof(url), "file://%s", root);
	a.url = b.url = url;
	CHECK(ev_ckpt_open(&a, "hjob", "kin", err, sizeof(err)) == 0);
	CHECK(ev_ckpt_open(&b, "hjob", "kin", err, sizeof(err)) == 0);
	CHECK_STR(ev_ckpt_where(&a), "hjob/copies/a");
	CHECK(ev_ckpt_put_part(&a, 1, json_object(), err, sizeof(err)) == 0);
	CHECK(ev_ckpt_put_part(&b, 1, json_object(), err, sizeof(err)) == 0);
	CHECK(exists(a.store, "hjob/copies/a/chk-0000000001/kin.json"));
	CHECK(exists(a.store, "hjob/copies/b/chk-0000000001/kin.json"));
	CHECK(ev_ckpt_list(a.store, "hjob", &e, &n, err, sizeof(err)) == 0 && n == 0);
	ev_ckpt_entries_free(e, n);
	char **names;
	CHECK(ev_ckpt_copies(a.store, "hjob", &names, &n, err, sizeof(err)) == 0 && n == 2);
	if (n == 2) {
		CHECK_STR(names[0], "a");
		CHECK_STR(names[1], "b");
	}
	ev_ckpt_copies_free(names, n);
	x = a;
	x.copy = "..";
	x.store = NULL;
	CHECK(ev_ckpt_open(&x, "hjob", "kin", err, sizeof(err)) == -1);

	/* Hand-over objects of t/0 at 10, 20, 30, 40 and of t/1 at 5 and 15. */
	static const struct {
		int32_t p;
		int64_t off;
	} objs[] = {{0, 10}, {0, 20}, {0, 30}, {0, 40}, {1, 5}, {1, 15}};
	for (size_t i = 0; i < sizeof(objs) / sizeof(objs[0]); i++)
		CHECK(ev_handover_put(a.store, "hjob", "evwindow", "t", objs[i].p, objs[i].off, "s",
				      1, 1, err, sizeof(err)) == 0);
	/* a's checkpoint references t/0 at 20 (its state) and t/1 at 5 (an offset); b's t/0 at
	 * 40 */
	put_manifest(a.store, "hjob", "a", 1,
		     json_pack("[{s:s, s:i, s:i, s:{}}]", "topic", "t", "partition", 0, "offset",
			       20, "state"),
		     json_pack("{s:{s:i}}", "t", "1", 5));
	put_manifest(a.store, "hjob", "b", 1,
		     json_pack("[{s:s, s:i, s:i, s:{}}]", "topic", "t", "partition", 0, "offset",
			       40, "state"),
		     json_pack("{s:{s:i}}", "t", "0", 40));
	int found, legacy;
	json_t *m = ev_ckpt_get_manifest(a.store, "hjob/copies/a", 1, &found, &legacy, err,
					 sizeof(err));
	CHECK(m != NULL && !legacy);
	json_decref(m);
	/* another copy's manifest under a's name is not a's */
	m = ev_ckpt_get_json(a.store, "hjob/copies/b/chk-0000000001/_manifest.json", &found, err,
			     sizeof(err));
	CHECK(m && ev_ckpt_manifest_check(m, "hjob/copies/a", 1, err, sizeof(err)) == -1);
	CHECK(strstr(err, "of job 'hjob' (copy 'b')") != NULL);
	json_decref(m);

	CHECK(ev_ckpt_prune_handovers(a.store, "hjob", committed_40, NULL, err, sizeof(err)) == 2);
	CHECK(!exists(a.store, "hjob/handover/evwindow/0-t/00000000000000000010"));
	CHECK(exists(a.store, "hjob/handover/evwindow/0-t/00000000000000000020")); /* a's */
	CHECK(!exists(a.store, "hjob/handover/evwindow/0-t/00000000000000000030"));
	CHECK(exists(a.store, "hjob/handover/evwindow/0-t/00000000000000000040")); /* committed */
	CHECK(exists(a.store, "hjob/handover/evwindow/1-t/00000000000000000005"));
	CHECK(exists(a.store, "hjob/handover/evwindow/1-t/00000000000000000015")); /* unknown */

	/* a store of one copy without a name, from before copies: refused to a named copy until
	 * its checkpoints list each partition's state */
	put_manifest(a.store, "legacy", NULL, 1, NULL, json_pack("{s:{s:i}}", "t", "0", 3));
	x = a;
	x.store = NULL;
	x.root_owned = NULL;
	x.copy = "new";
	x.restore = "latest";
	CHECK(ev_ckpt_open(&x, "legacy", "kin", err, sizeof(err)) == 0);
	ev_ckpt_restored r;
	CHECK(ev_ckpt_restore(&x, &r, err, sizeof(err)) == -1);
	CHECK(strstr(err, "job 'legacy' has checkpoints of one copy without a name") != NULL);
	put_manifest(x.store, "legacy", NULL, 2,
		     json_pack("[{s:s, s:i, s:i, s:{}}]", "topic", "t", "partition", 0, "offset", 3,
			       "state"),
		     json_pack("{s:{s:i}}", "t", "0", 3));
	CHECK(ev_ckpt_restore(&x, &r, err, sizeof(err)) == 0 && r.id == 0);
	ev_ckpt_restored_free(&r);
	ev_ckpt_close(&x);
	ev_ckpt_close(&a);
	ev_ckpt_close(&b);
}

int main(void)
{
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_offsets_and_objects);
	RUN(test_protocol);
	RUN(test_prune_link);
	RUN(test_restore);
	RUN(test_copies);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		return 1;
	return test_report();
}
