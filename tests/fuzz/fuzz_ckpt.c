/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_ckpt.c: libFuzzer harness for checkpoint manifests read from a hostile store
 * (lib/checkpoint.c): the checks of a manifest and of its parts' file entries, the restore that
 * relies on them, the offsets kin restores and the download of a part's files. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "checkpoint.h"
#include "ckstore.h"
#include "coordinator.h"
#include "log.h"

#define JOB "job"
#define STAGE "evwindow"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ev_ckpt ck;
static char root[64];
static char dl[96];

static void fail(const char *what, const uint8_t *data, size_t size, const char *detail)
{
	fprintf(stderr, "fuzz_ckpt: invariant failed: %s%s%s\n", what, detail ? ": " : "",
		detail ? detail : "");
	fprintf(stderr, "fuzz_ckpt: input (%zu bytes): ", size);
	fwrite(data, 1, size, stderr);
	fputc('\n', stderr);
	abort();
}

static void cleanup(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_ckpt: cannot remove %s\n", root);
}

static void setup(void)
{
	char err[512], url[128];
	/* In memory when it can: the store fsyncs every put and delete. */
	struct stat st;
	snprintf(root, sizeof(root), "%s/fuzz_ckpt.XXXXXX",
		 stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp");
	if (!mkdtemp(root))
		abort();
	atexit(cleanup);
	snprintf(dl, sizeof(dl), "%s/restore", root);
	snprintf(url, sizeof(url), "file://%s/store", root);
	ev_log_set_level(EV_LOG_ERROR); /* restores and skips are logged at warn level */
	ck.url = strdup(url);
	ck.restore = "latest";
	if (ev_ckpt_open(&ck, JOB, STAGE, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_ckpt: %s\n", err);
		abort();
	}
	ev_ckpt_set_identity(&ck, json_pack("{s:s}", "fingerprint", "tumble=60000"));
}

/* A name or key segment list that stays where it is put: not empty, not absolute, no "." or
 * ".." segment. */
static int confined(const char *s)
{
	if (!s || !*s || *s == '/')
		return 0;
	for (const char *seg = s;; seg++) {
		size_t n = strcspn(seg, "/");
		if (n == 0 || (n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return 0;
		seg += n;
		if (!*seg)
			return 1;
	}
}

/* Every file entry that passes ev_ckpt_file_check names a confined file and key. */
static void check_entries(const json_t *m, const uint8_t *data, size_t size)
{
	const char *stage;
	json_t *part, *f;
	size_t i;
	char err[512];
	json_object_foreach(json_object_get(m, "parts"), stage, part)
	{
		json_array_foreach(json_object_get(part, "files"), i, f)
		{
			const char *name = json_string_value(json_object_get(f, "name"));
			const char *key = json_string_value(json_object_get(f, "key"));
			for (int with_job = 0; with_job < 2; with_job++) {
				err[0] = '\0';
				if (ev_ckpt_file_check(f, with_job ? JOB : NULL, err, sizeof(err)) <
				    0) {
					if (!*err)
						fail("a refused file entry without a message", data,
						     size, NULL);
					continue;
				}
				if (!confined(name) || strchr(name, '/'))
					fail("a file name that passes the check is not plain", data,
					     size, name);
				if (!confined(key) || !ev_store_key_ok(key))
					fail("a key that passes the check is not confined", data,
					     size, key);
				if (with_job && strncmp(key, JOB "/", strlen(JOB "/")) != 0)
					fail("a key that passes the check is not the job's", data,
					     size, key);
			}
		}
	}
}

/* The manifest of checkpoint id under the store's key, as the bytes given. */
static void put_raw(int64_t id, const uint8_t *data, size_t size)
{
	char err[512];
	ev_buf key = EV_BUF_INIT;
	ev_ckpt_manifest_key(&key, JOB, id);
	if (ev_store_put(ck.store, ev_buf_cstr(&key), data, size, err, sizeof(err)) < 0)
		fail("cannot write to the store", data, size, err);
	ev_buf_free(&key);
}

static void clear_store(const uint8_t *data, size_t size)
{
	char err[512];
	ev_buf key = EV_BUF_INIT;
	for (int64_t id = 1; id <= 2; id++) {
		ev_ckpt_manifest_key(&key, JOB, id);
		if (ev_store_delete(ck.store, ev_buf_cstr(&key), err, sizeof(err)) < 0)
			fail("cannot delete from the store", data, size, err);
	}
	ev_buf_free(&key);
}

static void restore(const uint8_t *data, size_t size, const char *which)
{
	char err[1024] = "";
	ev_ckpt_restored r;
	ck.restore = which;
	if (ev_ckpt_restore(&ck, &r, err, sizeof(err)) < 0) {
		if (!*err || r.id || r.manifest)
			fail("a refused restore without a message, or with a checkpoint", data,
			     size, err);
		return;
	}
	if (!r.id) {
		ev_ckpt_restored_free(&r);
		return;
	}
	/* What the restore returns passed every check, and kin and evwindow read it. */
	if (!json_is_object(r.manifest) ||
	    ev_ckpt_manifest_check(r.manifest, JOB, r.id, err, sizeof(err)) < 0)
		fail("a restored manifest does not verify", data, size, err);
	if (r.offsets && !json_is_object(r.offsets))
		fail("restored offsets that are not an object", data, size, NULL);
	check_entries(r.manifest, data, size);
	json_t *off = ev_coord_restore_offsets(&ck, r.id, err, sizeof(err));
	if (off && !json_equal(off, r.offsets))
		fail("the coordinator restores other offsets", data, size, NULL);
	json_decref(off);
	if (r.part) {
		char cmd[160];
		if (mkdir(dl, 0700) < 0)
			fail("cannot make the restore directory", data, size, dl);
		ev_ckpt_download_files(ck.store, r.part, dl, err, sizeof(err));
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dl);
		if (system(cmd) != 0)
			fail("cannot remove the restore directory", data, size, dl);
	}
	ev_ckpt_restored_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const which[] = {"latest", "latest-valid", "1", "2"};
	char err[512];
	json_error_t jerr;

	if (!ck.store)
		setup();
	/* As ev_ckpt_get_json reads it. */
	json_t *m = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	if (json_is_object(m)) {
		err[0] = '\0';
		int r = ev_ckpt_manifest_check(m, JOB, 1, err, sizeof(err));
		if (r < 0 && !*err)
			fail("a refused manifest without a message", data, size, NULL);
		check_entries(m, data, size);
	}
	/* Checkpoint 1: the bytes as the store holds them. Checkpoint 2: the same manifest with
	 * a checksum that matches, as a store that forges checksums would hold it. */
	put_raw(1, data, size);
	if (json_is_object(m) && ev_ckpt_put_manifest(ck.store, JOB, 2, m, err, sizeof(err)) < 0)
		fail("ev_ckpt_put_manifest failed", data, size, err);
	json_decref(m);
	restore(data, size, which[size % 4]);
	clear_store(data, size);
	return 0;
}
