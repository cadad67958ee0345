/* SPDX-License-Identifier: Apache-2.0 */
/* test_ckstore.c: the checkpoint store (lib/ckstore, lib/s3).
 *
 *   test_ckstore                   unit tests: the file store, URLs and keys, checksums, and the
 *                                  S3 client against an in-process mock server (no servers)
 *   test_ckstore --s3 URL          the store suite against a real S3 server (credentials,
 *                                  endpoint and region from the environment); run by
 *                                  tests/ckstore.bats
 *   test_ckstore --cli [--retry-ms N] URL CMD ...   one operation, for tests from the outside:
 *       put KEY FILE | put-string KEY TEXT | get KEY FILE | cat KEY | head KEY | ls [PREFIX] |
 *       rm KEY          exit 0 ok, 1 error (message on stderr), 3 no such key
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "ckstore.h"
#include "clock.h"
#include "s3.h"
#include "sha256.h"
#include "test.h"

static char err[1024];

/* ---- helpers ---- */

static char *tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char t[4096];
	snprintf(t, sizeof(t), "%s/test_ckstore.XXXXXX", base && *base ? base : "/tmp");
	char *d = mkdtemp(t);
	return d ? strdup(d) : NULL;
}

static void rm_rf(const char *path)
{
	DIR *d = opendir(path);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			char child[4096];
			snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
			rm_rf(child);
		}
		closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

/* Deterministic bytes of n, different for each seed. */
static void fill(char *p, size_t n, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (char)(x >> 24);
	}
}

static int write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t w = fwrite(data, 1, n, f);
	return fclose(f) == 0 && w == n ? 0 : -1;
}

static char *read_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	ev_buf b = EV_BUF_INIT;
	char chunk[65536];
	size_t r;
	while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0)
		ev_buf_append(&b, chunk, r);
	fclose(f);
	*n = b.len;
	if (!b.data)
		b.data = calloc(1, 1);
	return b.data;
}

/* Entries of dir whose names start with the file store's temporary prefix, recursively. */
static int count_tmp(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (strncmp(e->d_name, ".ev-tmp.", 8) == 0)
			n++;
		char child[4096];
		struct stat st;
		snprintf(child, sizeof(child), "%s/%s", dir, e->d_name);
		if (stat(child, &st) == 0 && S_ISDIR(st.st_mode))
			n += count_tmp(child);
	}
	closedir(d);
	return n;
}

struct listing {
	ev_buf text; /* "key size\n" per key */
	int n, stop_after;
};

static int on_key(const char *key, uint64_t size, void *arg)
{
	struct listing *l = arg;
	ev_buf_printf(&l->text, "%s %" PRIu64 "\n", key, size);
	l->n++;
	return l->stop_after && l->n >= l->stop_after ? 7 : 0;
}

/* The listing of prefix as text, or "ERROR: ..." */
static char *list_text(ev_store *s, const char *prefix, int stop_after, int *rc)
{
	struct listing l = {EV_BUF_INIT, 0, stop_after};
	*rc = ev_store_list(s, prefix, on_key, &l, err, sizeof(err));
	if (*rc == -1) {
		ev_buf_reset(&l.text);
		ev_buf_printf(&l.text, "ERROR: %s", err);
	}
	ev_buf_puts(&l.text, "");
	if (!l.text.data)
		return strdup("");
	return l.text.data;
}

static int rm_key(const char *key, uint64_t size, void *arg)
{
	(void)size;
	return ev_store_delete(arg, key, err, sizeof(err)) < 0 ? 1 : 0;
}

/* ---- the store suite: every operation, on any store ---- */

static void suite(const char *url)
{
	test_current = url;
	ev_store *s = ev_store_open(url, err, sizeof(err));
	CHECK(s != NULL);
	if (!s) {
		fprintf(stderr, "open: %s\n", err);
		return;
	}
	ev_store_set_page_size(s, 2); /* S3: several pages for a few keys */
	ev_buf b = EV_BUF_INIT;
	uint64_t size = 0;
	int rc;

	/* put, get, head, overwrite */
	const char *part = "{\"stage\":\"evwindow\",\"offsets\":[1,2,3]}\n";
	CHECK(ev_store_put(s, "job/chk-1/evwindow.json", part, strlen(part), err, sizeof(err)) ==
	      0);
	CHECK(ev_store_get(s, "job/chk-1/evwindow.json", &b, err, sizeof(err)) == 1);
	CHECK(b.len == strlen(part) && memcmp(b.data, part, b.len) == 0);
	CHECK(ev_store_head(s, "job/chk-1/evwindow.json", &size, err, sizeof(err)) == 1);
	CHECK(size == strlen(part));
	CHECK(ev_store_put(s, "job/chk-1/evwindow.json", "v2", 2, err, sizeof(err)) == 0);
	CHECK(ev_store_get(s, "job/chk-1/evwindow.json", &b, err, sizeof(err)) == 1);
	CHECK(b.len == 2 && memcmp(b.data, "v2", 2) == 0);

	/* absent keys, and a key that is only a prefix of others */
	CHECK(ev_store_get(s, "job/chk-1/nothing.json", &b, err, sizeof(err)) == 0);
	CHECK(b.len == 0);
	CHECK(ev_store_head(s, "job/chk-1/nothing.json", &size, err, sizeof(err)) == 0);
	CHECK(ev_store_head(s, "job/chk-1", &size, err, sizeof(err)) == 0);
	CHECK(ev_store_get(s, "job/chk-1", &b, err, sizeof(err)) == 0);
	CHECK(ev_store_get(s, "nojob/x", &b, err, sizeof(err)) == 0);

	/* an empty object */
	CHECK(ev_store_put(s, "job/empty", "", 0, err, sizeof(err)) == 0);
	CHECK(ev_store_head(s, "job/empty", &size, err, sizeof(err)) == 1 && size == 0);
	CHECK(ev_store_get(s, "job/empty", &b, err, sizeof(err)) == 1 && b.len == 0);

	/* keys that need encoding on the wire */
	const char *odd = "job/odd/sp ace+plus=eq&amp~tilde%pct,comma;semi@at é(1).json";
	CHECK(ev_store_put(s, odd, "odd", 3, err, sizeof(err)) == 0);
	CHECK(ev_store_get(s, odd, &b, err, sizeof(err)) == 1 && b.len == 3);
	char *t = list_text(s, "job/odd/", 0, &rc);
	ev_buf want = EV_BUF_INIT;
	ev_buf_printf(&want, "%s 3\n", odd);
	CHECK(rc == 0);
	CHECK_STR(t, ev_buf_cstr(&want));
	free(t);

	/* list: key order (bytes), prefixes that are not directories, early stop */
	const char *keys[] = {"job/chk-2/kin.json",       "job/chk-10/kin.json",
			      "job/chk-1/kin.json",       "job/shared/000012.sst",
			      "job/chk-1/_manifest.json", "job/chk-1a",
			      "job-other/chk-1/kin.json"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		CHECK(ev_store_put(s, keys[i], keys[i], strlen(keys[i]), err, sizeof(err)) == 0);
	t = list_text(s, "job/chk-1", 0, &rc);
	CHECK(rc == 0);
	CHECK_STR(t, "job/chk-1/_manifest.json 24\n"
		     "job/chk-1/evwindow.json 2\n"
		     "job/chk-1/kin.json 18\n"
		     "job/chk-10/kin.json 19\n"
		     "job/chk-1a 10\n");
	free(t);
	t = list_text(s, "job/chk-1/", 0, &rc);
	CHECK_STR(t, "job/chk-1/_manifest.json 24\n"
		     "job/chk-1/evwindow.json 2\n"
		     "job/chk-1/kin.json 18\n");
	free(t);
	t = list_text(s, "", 0, &rc);
	CHECK(rc == 0);
	CHECK_STR(t, "job-other/chk-1/kin.json 24\n"
		     "job/chk-1/_manifest.json 24\n"
		     "job/chk-1/evwindow.json 2\n"
		     "job/chk-1/kin.json 18\n"
		     "job/chk-10/kin.json 19\n"
		     "job/chk-1a 10\n"
		     "job/chk-2/kin.json 18\n"
		     "job/empty 0\n"
		     "job/odd/sp ace+plus=eq&amp~tilde%pct,comma;semi@at é(1).json 3\n"
		     "job/shared/000012.sst 21\n");
	free(t);
	t = list_text(s, "job/chk-", 3, &rc);
	CHECK(rc == 7);
	CHECK_STR(t, "job/chk-1/_manifest.json 24\n"
		     "job/chk-1/evwindow.json 2\n"
		     "job/chk-1/kin.json 18\n");
	free(t);
	t = list_text(s, "nothing/", 0, &rc);
	CHECK(rc == 0);
	CHECK_STR(t, "");
	free(t);

	/* a multi-MiB file streams in and out */
	char *dir = tmpdir();
	char src[4200], dst[4200];
	snprintf(src, sizeof(src), "%s/src.sst", dir);
	snprintf(dst, sizeof(dst), "%s/dst.sst", dir);
	size_t big = (5u << 20) + 12345;
	char *data = malloc(big);
	fill(data, big, 42);
	CHECK(write_file(src, data, big) == 0);
	char hex_src[65], hex_dst[65];
	uint64_t n_src = 0, n_dst = 0;
	CHECK(ev_sha256_file(src, hex_src, &n_src) == 0 && n_src == big);
	CHECK(ev_store_put_file(s, "job/shared/000013.sst", src, err, sizeof(err)) == 0);
	CHECK(ev_store_head(s, "job/shared/000013.sst", &size, err, sizeof(err)) == 1);
	CHECK(size == big);
	CHECK(ev_store_get_file(s, "job/shared/000013.sst", dst, err, sizeof(err)) == 1);
	CHECK(ev_sha256_file(dst, hex_dst, &n_dst) == 0 && n_dst == big);
	CHECK_STR(hex_dst, hex_src);
	CHECK(ev_store_get(s, "job/shared/000013.sst", &b, err, sizeof(err)) == 1);
	CHECK(b.len == big && memcmp(b.data, data, big) == 0);
	CHECK(count_tmp(dir) == 0);
	/* an absent key leaves the destination alone */
	CHECK(ev_store_get_file(s, "job/shared/none.sst", dst, err, sizeof(err)) == 0);
	CHECK(ev_sha256_file(dst, hex_dst, &n_dst) == 0 && n_dst == big);
	unlink(dst);
	CHECK(ev_store_get_file(s, "job/shared/none.sst", dst, err, sizeof(err)) == 0);
	CHECK(access(dst, F_OK) < 0 && errno == ENOENT);
	CHECK(count_tmp(dir) == 0);
	/* a source that cannot be read: an error naming it, nothing stored */
	CHECK(ev_store_put_file(s, "job/shared/bad.sst", dir, err, sizeof(err)) == -1);
	CHECK(strstr(err, dir) != NULL);
	CHECK(ev_store_head(s, "job/shared/bad.sst", &size, err, sizeof(err)) == 0);
	free(data);

	/* invalid keys are refused before any I/O */
	const char *bad[] = {"",        "/job/x", "job//x",          "job/x/",   "job/../x",
			     "job/./x", "..",     "job/.ev-tmp.1.2", "job/a\nb", "job/\x7f"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(ev_store_put(s, bad[i], "x", 1, err, sizeof(err)) == -1);
		CHECK(strstr(err, "invalid key") != NULL);
		CHECK(ev_store_get(s, bad[i], &b, err, sizeof(err)) == -1);
		CHECK(ev_store_head(s, bad[i], &size, err, sizeof(err)) == -1);
		CHECK(ev_store_delete(s, bad[i], err, sizeof(err)) == -1);
	}
	CHECK(ev_store_list(s, "/job", on_key, NULL, err, sizeof(err)) == -1);
	CHECK(ev_store_list(s, "job/../", on_key, NULL, err, sizeof(err)) == -1);

	/* delete, and delete of an absent key */
	CHECK(ev_store_delete(s, "job/chk-1/kin.json", err, sizeof(err)) == 0);
	CHECK(ev_store_head(s, "job/chk-1/kin.json", &size, err, sizeof(err)) == 0);
	CHECK(ev_store_delete(s, "job/chk-1/kin.json", err, sizeof(err)) == 0);
	CHECK(ev_store_delete(s, "nojob/x/y", err, sizeof(err)) == 0);
	CHECK(ev_store_delete(s, "job/chk-2", err, sizeof(err)) == 0); /* only a prefix */
	CHECK(ev_store_head(s, "job/chk-2/kin.json", &size, err, sizeof(err)) == 1);

	/* clean up, and the store is empty */
	CHECK(ev_store_list(s, "", rm_key, s, err, sizeof(err)) == 0);
	t = list_text(s, "", 0, &rc);
	CHECK(rc == 0);
	CHECK_STR(t, "");
	free(t);

	ev_buf_free(&b);
	ev_buf_free(&want);
	ev_store_close(s);
	rm_rf(dir);
	free(dir);
}

/* ---- the file store's own promises ---- */

static void test_file_store(void)
{
	char *root = tmpdir();
	char url[4200];
	snprintf(url, sizeof(url), "file://%s/store", root); /* made on the first put */
	suite(url);
	test_current = "file store";

	ev_store *s = ev_store_open(url, err, sizeof(err));
	CHECK(s != NULL);
	if (!s)
		return;
	char path[4300], path2[4300];
	/* delete removed the directories it emptied, not the root */
	snprintf(path, sizeof(path), "%s/store/job", root);
	CHECK(access(path, F_OK) < 0);
	snprintf(path, sizeof(path), "%s/store", root);
	CHECK(access(path, F_OK) == 0);

	/* a put replaces the file by rename: a reader holding the old one keeps reading it whole */
	CHECK(ev_store_put(s, "j/a.json", "old content", 11, err, sizeof(err)) == 0);
	snprintf(path, sizeof(path), "%s/store/j/a.json", root);
	int fd = open(path, O_RDONLY);
	struct stat before, after;
	CHECK(fd >= 0 && fstat(fd, &before) == 0);
	CHECK(ev_store_put(s, "j/a.json", "new", 3, err, sizeof(err)) == 0);
	char got[32] = "";
	CHECK(pread(fd, got, sizeof(got) - 1, 0) == 11 && strcmp(got, "old content") == 0);
	CHECK(stat(path, &after) == 0 && after.st_ino != before.st_ino && after.st_size == 3);
	close(fd);
	CHECK(count_tmp(root) == 0);

	/* a reader polling the final name sees the old or the new object whole, never a part */
	size_t na = 1u << 20, nb = 3u << 20;
	char *a = malloc(na), *bb = malloc(nb);
	memset(a, 'a', na);
	memset(bb, 'b', nb);
	snprintf(path, sizeof(path), "%s/store/j/big", root);
	snprintf(path2, sizeof(path2), "%s/stop", root);
	CHECK(ev_store_put(s, "j/big", a, na, err, sizeof(err)) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		int partial = 0, reads = 0;
		while (access(path2, F_OK) < 0 && !partial) {
			size_t n = 0;
			char *d = read_file(path, &n);
			if (!d)
				continue;
			reads++;
			char c = n == na ? 'a' : n == nb ? 'b' : 0;
			for (size_t i = 0; c && i < n; i++)
				if (d[i] != c)
					c = 0;
			partial = !c;
			free(d);
		}
		_exit(partial ? 1 : reads > 0 ? 0 : 2);
	}
	for (int i = 0; i < 20; i++)
		CHECK(ev_store_put(s, "j/big", i % 2 ? a : bb, i % 2 ? na : nb, err, sizeof(err)) ==
		      0);
	CHECK(write_file(path2, "", 0) == 0);
	int status = -1;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	free(a);
	free(bb);

	/* a put that fails leaves the old object and no temporary file */
	snprintf(path, sizeof(path), "%s/adir", root);
	CHECK(mkdir(path, 0777) == 0);
	CHECK(ev_store_put_file(s, "j/a.json", path, err, sizeof(err)) == -1);
	CHECK(strstr(err, "Is a directory") != NULL);
	ev_buf b = EV_BUF_INIT;
	CHECK(ev_store_get(s, "j/a.json", &b, err, sizeof(err)) == 1 && b.len == 3);
	CHECK(count_tmp(root) == 0);

	/* temporary files are not keys: a leftover from a crash is not listed */
	snprintf(path, sizeof(path), "%s/store/j/.ev-tmp.999.1", root);
	CHECK(write_file(path, "partial", 7) == 0);
	int rc;
	char *t = list_text(s, "j/", 0, &rc);
	CHECK_STR(t, "j/a.json 3\nj/big 1048576\n");
	free(t);

	/* a key under a key that is a file: the OS's error, named */
	CHECK(ev_store_put(s, "j/a.json/x", "x", 1, err, sizeof(err)) == -1);
	CHECK(strstr(err, "Not a directory") != NULL);
	CHECK(strstr(err, "j/a.json/x") != NULL);

	/* a store in a directory that does not exist: empty, not an error */
	ev_store *none = ev_store_open("file:///nonexistent-evpipe-dir/x", err, sizeof(err));
	CHECK(none != NULL);
	t = list_text(none, "", 0, &rc);
	CHECK(rc == 0);
	CHECK_STR(t, "");
	free(t);
	CHECK(ev_store_get(none, "a/b", &b, err, sizeof(err)) == 0);
	CHECK(ev_store_retries(none) == 0);
	ev_store_close(none);

	/* %-escapes in a file URL are decoded */
	snprintf(url, sizeof(url), "file://%s/with%%20space", root);
	ev_store *sp = ev_store_open(url, err, sizeof(err));
	CHECK(sp != NULL);
	CHECK(sp && ev_store_put(sp, "k", "v", 1, err, sizeof(err)) == 0);
	snprintf(path, sizeof(path), "%s/with space/k", root);
	CHECK(access(path, F_OK) == 0);
	ev_store_close(sp);

	ev_buf_free(&b);
	ev_store_close(s);
	rm_rf(root);
	free(root);
}

/* ---- no link in a file store leads outside it ---- */

static void test_file_store_links(void)
{
	test_current = "file store links";
	char *root = tmpdir();
	char url[4200], path[4300], target[4300];
	ev_buf b = EV_BUF_INIT;
	int rc;
	/* outside the store: a directory with a file, and a lone file */
	snprintf(path, sizeof(path), "%s/outside", root);
	CHECK(mkdir(path, 0777) == 0);
	snprintf(path, sizeof(path), "%s/outside/victim", root);
	CHECK(write_file(path, "keep me", 7) == 0);
	snprintf(path, sizeof(path), "%s/lone", root);
	CHECK(write_file(path, "keep me too", 11) == 0);
	snprintf(url, sizeof(url), "file://%s/store", root);
	ev_store *s = ev_store_open(url, err, sizeof(err));
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK(ev_store_put(s, "j/chk-0000000002/kin.json", "{}", 2, err, sizeof(err)) == 0);
	/* a checkpoint directory that is a link to the directory outside */
	snprintf(target, sizeof(target), "%s/outside", root);
	snprintf(path, sizeof(path), "%s/store/j/chk-0000000001", root);
	CHECK(symlink(target, path) == 0);

	/* listing refuses it, naming the link */
	char *t = list_text(s, "j/chk-", 0, &rc);
	CHECK(rc == -1);
	CHECK(strstr(err, "'j/chk-0000000001' is a symbolic link") != NULL);
	free(t);
	/* a listing that does not reach it is not disturbed */
	t = list_text(s, "j/chk-0000000002/", 0, &rc);
	CHECK(rc == 0);
	CHECK_STR(t, "j/chk-0000000002/kin.json 2\n");
	free(t);
	/* no operation goes through it */
	CHECK(ev_store_get(s, "j/chk-0000000001/victim", &b, err, sizeof(err)) == -1);
	CHECK(strstr(err, "symbolic link") != NULL);
	CHECK(ev_store_head(s, "j/chk-0000000001/victim", NULL, err, sizeof(err)) == -1);
	CHECK(ev_store_delete(s, "j/chk-0000000001/victim", err, sizeof(err)) == -1);
	CHECK(strstr(err, "symbolic link") != NULL);
	CHECK(ev_store_put(s, "j/chk-0000000001/new", "x", 1, err, sizeof(err)) == -1);
	snprintf(path, sizeof(path), "%s/outside/new", root);
	CHECK(access(path, F_OK) < 0);
	snprintf(path, sizeof(path), "%s/copy", root);
	CHECK(ev_store_get_file(s, "j/chk-0000000001/victim", path, err, sizeof(err)) == -1);
	CHECK(access(path, F_OK) < 0);
	snprintf(path, sizeof(path), "%s/outside/victim", root);
	size_t n = 0;
	char *d = read_file(path, &n);
	CHECK(d && n == 7 && memcmp(d, "keep me", 7) == 0);
	free(d);

	/* a key that is a link to a file outside: not read, listed or deleted; a put replaces
	 * the link, not the file */
	snprintf(target, sizeof(target), "%s/lone", root);
	snprintf(path, sizeof(path), "%s/store/j/chk-0000000002/evwindow.json", root);
	CHECK(symlink(target, path) == 0);
	CHECK(ev_store_get(s, "j/chk-0000000002/evwindow.json", &b, err, sizeof(err)) == -1);
	CHECK(ev_store_head(s, "j/chk-0000000002/evwindow.json", NULL, err, sizeof(err)) == -1);
	t = list_text(s, "j/chk-0000000002/", 0, &rc);
	CHECK(rc == -1);
	free(t);
	CHECK(ev_store_delete(s, "j/chk-0000000002/evwindow.json", err, sizeof(err)) == -1);
	CHECK(ev_store_put(s, "j/chk-0000000002/evwindow.json", "{}", 2, err, sizeof(err)) == 0);
	struct stat st;
	CHECK(lstat(path, &st) == 0 && S_ISREG(st.st_mode));
	snprintf(path, sizeof(path), "%s/lone", root);
	d = read_file(path, &n);
	CHECK(d && n == 11 && memcmp(d, "keep me too", 11) == 0);
	free(d);
	snprintf(path, sizeof(path), "%s/store/j/chk-0000000001", root);
	CHECK(unlink(path) == 0);
	ev_store_close(s);

	/* the root itself may be a link: it is the user's */
	snprintf(target, sizeof(target), "%s/store", root);
	snprintf(path, sizeof(path), "%s/via", root);
	CHECK(symlink(target, path) == 0);
	snprintf(url, sizeof(url), "file://%s/via", root);
	s = ev_store_open(url, err, sizeof(err));
	CHECK(s && ev_store_get(s, "j/chk-0000000002/kin.json", &b, err, sizeof(err)) == 1);
	t = s ? list_text(s, "", 0, &rc) : NULL;
	CHECK(s && rc == 0);
	CHECK_STR(t, "j/chk-0000000002/evwindow.json 2\nj/chk-0000000002/kin.json 2\n");
	free(t);
	CHECK(s && ev_store_delete(s, "j/chk-0000000002/kin.json", err, sizeof(err)) == 0);
	CHECK(s && ev_store_delete(s, "j/chk-0000000002/evwindow.json", err, sizeof(err)) == 0);
	/* the directories it emptied went, the root stayed */
	snprintf(path, sizeof(path), "%s/store/j", root);
	CHECK(access(path, F_OK) < 0);
	snprintf(path, sizeof(path), "%s/store", root);
	CHECK(access(path, F_OK) == 0);
	ev_store_close(s);
	snprintf(path, sizeof(path), "%s/via", root);
	unlink(path);
	ev_buf_free(&b);
	rm_rf(root);
	free(root);
}

static void test_urls(void)
{
	test_current = "urls";
	struct {
		const char *url, *want;
	} bad[] = {
		{"http://bucket/x", "unsupported checkpoint store scheme 'http'"},
		{"ftp://h/x", "unsupported checkpoint store scheme 'ftp'"},
		{"/tmp/dir", "not a checkpoint store URL"},
		{"s3:/bucket", "not a checkpoint store URL"},
		{"s3://", "names a bucket"},
		{"s3:///prefix", "names a bucket"},
		{"s3://Bad_Bucket/x", "invalid S3 bucket name 'Bad_Bucket'"},
		{"s3://ab/x", "invalid S3 bucket name"},
		{"s3://bucket/a//b", "invalid S3 prefix"},
		{"s3://bucket/x?region=eu", "no query"},
		{"file://relative/dir", "file:///absolute/dir"},
		{"file:///tmp/x?y", "no query"},
		{"file:///tmp/%zz", "%-escape"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ev_store *s = ev_store_open(bad[i].url, err, sizeof(err));
		CHECK(s == NULL);
		ev_store_close(s);
		if (!strstr(err, bad[i].want)) {
			test_failed++;
			fprintf(stderr, "urls: '%s': got '%s', want '%s'\n", bad[i].url, err,
				bad[i].want);
		} else {
			test_passed++;
		}
	}
	/* credentials in a URL are refused and not repeated */
	const char *with_creds[] = {"s3://AKIAEXAMPLE:s3cr3tSECRET@bucket/p",
				    "gs://user:s3cr3tSECRET@host/p", "s3cr3tSECRET"};
	for (size_t i = 0; i < 3; i++) {
		CHECK(ev_store_open(with_creds[i], err, sizeof(err)) == NULL);
		CHECK(err[0] != '\0' && strstr(err, "s3cr3tSECRET") == NULL);
	}
	CHECK(strstr(err, "not a checkpoint store URL") != NULL);

	/* canonical forms */
	setenv("AWS_ACCESS_KEY_ID", "AKIDURL", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secretURL", 1);
	ev_store *s = ev_store_open("s3://bucket.name-1/a/b//", err, sizeof(err));
	CHECK(s != NULL);
	CHECK_STR(s ? ev_store_url(s) : NULL, "s3://bucket.name-1/a/b");
	ev_store_close(s);
	s = ev_store_open("s3://bucket", err, sizeof(err));
	CHECK_STR(s ? ev_store_url(s) : NULL, "s3://bucket");
	ev_store_close(s);
	s = ev_store_open("file://localhost/tmp/x/", err, sizeof(err));
	CHECK_STR(s ? ev_store_url(s) : NULL, "file:///tmp/x");
	ev_store_close(s);
}

static void test_keys_and_sha(void)
{
	test_current = "keys";
	CHECK(ev_store_key_ok("job/chk-1/kin.json"));
	CHECK(ev_store_key_ok("a"));
	CHECK(ev_store_key_ok("job/.hidden"));
	CHECK(ev_store_key_ok("job/x..y"));
	CHECK(!ev_store_key_ok(NULL));
	CHECK(!ev_store_key_ok("a/"));
	char long_key[1100];
	memset(long_key, 'k', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = '\0';
	CHECK(!ev_store_key_ok(long_key));

	test_current = "sha256";
	char hex[65];
	ev_sha256_hex("abc", 3, hex);
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	ev_sha256_hex("", 0, hex);
	CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	char *dir = tmpdir();
	char path[4200];
	snprintf(path, sizeof(path), "%s/abc", dir);
	CHECK(write_file(path, "abc", 3) == 0);
	uint64_t n = 0;
	CHECK(ev_sha256_file(path, hex, &n) == 0 && n == 3);
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	/* 1,000,000 times 'a' (FIPS 180-2's long message), across read chunks */
	char *m = malloc(1000000);
	memset(m, 'a', 1000000);
	CHECK(write_file(path, m, 1000000) == 0);
	free(m);
	CHECK(ev_sha256_file(path, hex, NULL) == 0);
	CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	snprintf(path, sizeof(path), "%s/none", dir);
	CHECK(ev_sha256_file(path, hex, &n) == -1 && errno == ENOENT);
	rm_rf(dir);
	free(dir);

	test_current = "uri encode";
	ev_buf b = EV_BUF_INIT;
	CHECK(ev_s3_uri_encode(&b, "a b+c/d~e_f.g-h%=é", 1) == 0);
	CHECK_STR(ev_buf_cstr(&b), "a%20b%2Bc/d~e_f.g-h%25%3D%C3%A9");
	ev_buf_reset(&b);
	CHECK(ev_s3_uri_encode(&b, "p/q", 0) == 0);
	CHECK_STR(ev_buf_cstr(&b), "p%2Fq");
	ev_buf_free(&b);
}

/* ---- a mock S3 server: scripted answers, every request recorded ---- */

struct answer {
	int status;
	const char *body;
	int cut; /* send half the body, then close the connection */
};

struct mock {
	int lfd, port;
	pthread_t th;
	struct answer answers[16];
	int n_answers, next;
	ev_buf log; /* per request: the request line, then its headers, then a blank line */
	char body_sha[16][65]; /* per request: SHA-256 of the body received */
	uint64_t body_len[16];
	int requests;
	int stop;
	pthread_mutex_t mu;
};

static int read_until(int fd, ev_buf *in, const char *end)
{
	char chunk[65536];
	while (!memmem(in->data ? in->data : "", in->len, end, strlen(end))) {
		ssize_t r = read(fd, chunk, sizeof(chunk));
		if (r <= 0)
			return -1;
		ev_buf_append(in, chunk, (size_t)r);
	}
	return 0;
}

static void send_str(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* Serve one request on fd; -1 when the connection is done. */
static int serve_one(struct mock *m, int fd)
{
	ev_buf in = EV_BUF_INIT;
	if (read_until(fd, &in, "\r\n\r\n") < 0) {
		ev_buf_free(&in);
		return -1;
	}
	char *end = memmem(in.data, in.len, "\r\n\r\n", 4);
	size_t head_len = (size_t)(end - in.data) + 4;
	char *head = strndup(in.data, head_len);
	size_t clen = 0;
	int expect = 0;
	for (char *line = head; line && *line;
	     line = strstr(line, "\r\n"), line = line ? line + 2 : NULL) {
		if (strncasecmp(line, "Content-Length:", 15) == 0)
			clen = strtoul(line + 15, NULL, 10);
		if (strncasecmp(line, "Expect: 100-continue", 20) == 0)
			expect = 1;
	}
	if (expect)
		send_str(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	ev_buf body = EV_BUF_INIT;
	ev_buf_append(&body, in.data + head_len, in.len - head_len);
	char chunk[65536];
	while (body.len < clen) {
		ssize_t r = read(fd, chunk, sizeof(chunk));
		if (r <= 0)
			break;
		ev_buf_append(&body, chunk, (size_t)r);
	}
	if (body.len < clen) { /* the client gave up on this request: no answer */
		free(head);
		ev_buf_free(&in);
		ev_buf_free(&body);
		return -1;
	}
	pthread_mutex_lock(&m->mu);
	int i = m->requests++;
	if (i < 16) {
		ev_sha256_hex(body.data ? body.data : "", body.len, m->body_sha[i]);
		m->body_len[i] = body.len;
	}
	for (char *p = head; *p; p++)
		if (*p != '\r')
			ev_buf_putc(&m->log, *p);
	struct answer a = m->next < m->n_answers ? m->answers[m->next++]
						 : (struct answer){500, "out of script", 0};
	pthread_mutex_unlock(&m->mu);
	int is_head = strncmp(head, "HEAD ", 5) == 0;
	size_t blen = strlen(a.body);
	char hdr[256];
	int hn = snprintf(hdr, sizeof(hdr),
			  "HTTP/1.1 %d Mock\r\nContent-Type: application/xml\r\n"
			  "Content-Length: %zu\r\n\r\n",
			  a.status, blen);
	send_str(fd, hdr, (size_t)hn);
	if (!is_head)
		send_str(fd, a.body, a.cut ? blen / 2 : blen);
	free(head);
	ev_buf_free(&in);
	ev_buf_free(&body);
	return a.cut ? -1 : 0;
}

static void *mock_main(void *arg)
{
	struct mock *m = arg;
	int conn = -1;
	for (;;) {
		pthread_mutex_lock(&m->mu);
		int stop = m->stop;
		pthread_mutex_unlock(&m->mu);
		if (stop)
			break;
		struct pollfd p[2] = {{m->lfd, POLLIN, 0}, {conn, POLLIN, 0}};
		if (poll(p, conn >= 0 ? 2 : 1, 50) <= 0)
			continue;
		if (p[0].revents & POLLIN) {
			int c = accept(m->lfd, NULL, NULL);
			if (c >= 0) {
				if (conn >= 0)
					close(conn);
				conn = c;
			}
			continue;
		}
		if (conn >= 0 && (p[1].revents & (POLLIN | POLLHUP)) && serve_one(m, conn) < 0) {
			close(conn);
			conn = -1;
		}
	}
	if (conn >= 0)
		close(conn);
	return NULL;
}

static int listen_any(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 8) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

static void mock_start(struct mock *m)
{
	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->mu, NULL);
	m->lfd = listen_any(&m->port);
	char ep[64];
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", m->port);
	setenv("S3_ENDPOINT", ep, 1);
	pthread_create(&m->th, NULL, mock_main, m);
}

static void mock_script(struct mock *m, const struct answer *a, int n)
{
	pthread_mutex_lock(&m->mu);
	for (int i = 0; i < n; i++)
		m->answers[i] = a[i];
	m->n_answers = n;
	m->next = 0;
	m->requests = 0;
	ev_buf_reset(&m->log);
	pthread_mutex_unlock(&m->mu);
}

static void mock_stop(struct mock *m)
{
	pthread_mutex_lock(&m->mu);
	m->stop = 1;
	pthread_mutex_unlock(&m->mu);
	pthread_join(m->th, NULL);
	close(m->lfd);
	ev_buf_free(&m->log);
	pthread_mutex_destroy(&m->mu);
}

static const char *mock_log(struct mock *m)
{
	return ev_buf_cstr(&m->log) ? m->log.data : "";
}

#define S3_ERROR(code, msg)                                                                     \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" code "</Code><Message>" msg \
	"</Message><RequestId>r1</RequestId></Error>"

static void mock_env(void)
{
	setenv("AWS_ACCESS_KEY_ID", "AKIDMOCK", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "mockSECRETvalue", 1);
	unsetenv("AWS_SESSION_TOKEN");
	setenv("AWS_REGION", "eu-west-3", 1);
	unsetenv("AWS_DEFAULT_REGION");
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_ENDPOINT_URL_S3");
	unsetenv("AWS_PROFILE");
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
}

static void test_mock_requests(struct mock *m)
{
	test_current = "s3 requests";
	ev_store *s = ev_store_open("s3://bkt/pre/fix", err, sizeof(err));
	CHECK(s != NULL);
	if (!s)
		return;
	ev_store_set_retry(s, 5000);

	/* a put from memory: path-style, the key encoded once, the payload's hash signed */
	struct answer ok[] = {{200, "", 0}};
	mock_script(m, ok, 1);
	CHECK(ev_store_put(s, "job/sp ace+plus~é.json", "hello", 5, err, sizeof(err)) == 0);
	const char *log = mock_log(m);
	CHECK(strstr(log, "PUT /bkt/pre/fix/job/sp%20ace%2Bplus~%C3%A9.json HTTP/1.1\n") != NULL);
	CHECK(strstr(log, "Authorization: AWS4-HMAC-SHA256 Credential=AKIDMOCK/") != NULL);
	CHECK(strstr(log, "/eu-west-3/s3/aws4_request, SignedHeaders=") != NULL);
	CHECK(strstr(log, "x-amz-content-sha256;x-amz-date, Signature=") != NULL);
	CHECK(strstr(log,
		     "x-amz-content-sha256: "
		     "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\n") != NULL);
	CHECK(strstr(log, "Content-Length: 5\n") != NULL);
	CHECK(strstr(log, "mockSECRETvalue") == NULL);
	CHECK(m->body_len[0] == 5);

	/* get: retried on 503 and on a 500 that is not XML, then the body */
	struct answer flaky[] = {{503, S3_ERROR("SlowDown", "Please reduce your request rate."), 0},
				 {500, "<html>proxy error</html>", 0},
				 {200, "payload", 0}};
	mock_script(m, flaky, 3);
	ev_buf b = EV_BUF_INIT;
	uint64_t retries = ev_store_retries(s);
	CHECK(ev_store_get(s, "job/a.json", &b, err, sizeof(err)) == 1);
	CHECK(b.len == 7 && memcmp(b.data, "payload", 7) == 0);
	CHECK(ev_store_retries(s) == retries + 2);
	CHECK(m->requests == 3);
	CHECK(strstr(mock_log(m), "GET /bkt/pre/fix/job/a.json HTTP/1.1\n") != NULL);
	CHECK(strstr(mock_log(m),
		     "x-amz-content-sha256: "
		     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n") != NULL);

	/* 429 and RequestTimeout (a 400) are transient too */
	struct answer more[] = {{429, S3_ERROR("TooManyRequests", "slow down"), 0},
				{400, S3_ERROR("RequestTimeout", "socket not read"), 0},
				{200, "", 0}};
	mock_script(m, more, 3);
	CHECK(ev_store_put(s, "job/b", "b", 1, err, sizeof(err)) == 0);
	CHECK(m->requests == 3);

	/* absent: a 404 NoSuchKey for GET, a bare 404 for HEAD; a HEAD's size */
	struct answer absent[] = {{404, S3_ERROR("NoSuchKey", "The specified key does not exist."),
				   0},
				  {404, "", 0},
				  {200, "12345", 0}};
	mock_script(m, absent, 3);
	CHECK(ev_store_get(s, "job/none", &b, err, sizeof(err)) == 0);
	uint64_t size = 0;
	CHECK(ev_store_head(s, "job/none", &size, err, sizeof(err)) == 0);
	CHECK(ev_store_head(s, "job/some", &size, err, sizeof(err)) == 1 && size == 5);
	CHECK(strstr(mock_log(m), "HEAD /bkt/pre/fix/job/some HTTP/1.1\n") != NULL);
	/* a HEAD's error has no body: the status says what it can */
	struct answer forbidden[] = {{403, "", 0}};
	mock_script(m, forbidden, 1);
	CHECK(ev_store_head(s, "job/some", &size, err, sizeof(err)) == -1);
	CHECK_STR(err, "cannot stat 's3://bkt/pre/fix/job/some': HTTP 403 Forbidden");

	/* a 4xx that is not transient fails at once with S3's Code and Message */
	struct answer denied[] = {{403,
				   S3_ERROR("SignatureDoesNotMatch",
					    "The request signature we calculated does not match"),
				   0},
				  {200, "", 0}};
	mock_script(m, denied, 2);
	CHECK(ev_store_put(s, "job/c", "c", 1, err, sizeof(err)) == -1);
	CHECK_STR(err, "cannot put 's3://bkt/pre/fix/job/c': HTTP 403 SignatureDoesNotMatch: The "
		       "request signature we calculated does not match");
	CHECK(m->requests == 1);
	struct answer nobucket[] = {
		{404, S3_ERROR("NoSuchBucket", "The specified bucket does not exist"), 0}};
	mock_script(m, nobucket, 1);
	CHECK(ev_store_get(s, "job/c", &b, err, sizeof(err)) == -1);
	CHECK(strstr(err, "HTTP 404 NoSuchBucket: The specified bucket does not exist") != NULL);
	struct answer proxy404[] = {{404, "<html>Not Found</html>", 0}};
	mock_script(m, proxy404, 1);
	CHECK(ev_store_get(s, "job/c", &b, err, sizeof(err)) == -1);
	CHECK_STR(err, "cannot get 's3://bkt/pre/fix/job/c': HTTP 404: <html>Not Found</html>");

	/* the retry budget is bounded: it gives up, saying how often it tried */
	struct answer down[] = {{503, S3_ERROR("ServiceUnavailable", "down"), 0},
				{503, S3_ERROR("ServiceUnavailable", "down"), 0},
				{503, S3_ERROR("ServiceUnavailable", "down"), 0},
				{503, S3_ERROR("ServiceUnavailable", "down"), 0},
				{503, S3_ERROR("ServiceUnavailable", "down"), 0},
				{503, S3_ERROR("ServiceUnavailable", "down"), 0},
				{503, S3_ERROR("ServiceUnavailable", "down"), 0},
				{503, S3_ERROR("ServiceUnavailable", "down"), 0}};
	mock_script(m, down, 8);
	ev_store_set_retry(s, 400);
	uint64_t t0 = ev_mono_ns();
	CHECK(ev_store_delete(s, "job/c", err, sizeof(err)) == -1);
	uint64_t ms = (ev_mono_ns() - t0) / 1000000;
	CHECK(strstr(err, "cannot delete 's3://bkt/pre/fix/job/c': HTTP 503 ServiceUnavailable: "
			  "down (gave up after ") != NULL);
	CHECK(m->requests >= 2 && m->requests <= 6);
	CHECK(ms < 1500);
	ev_store_set_retry(s, 0);
	mock_script(m, down, 8);
	CHECK(ev_store_delete(s, "job/c", err, sizeof(err)) == -1);
	CHECK(m->requests == 1);
	CHECK(strstr(err, "gave up") == NULL);
	ev_store_set_retry(s, 5000);
	mock_script(m, ok, 1);
	CHECK(ev_store_delete(s, "job/c", err, sizeof(err)) == 0);
	CHECK(strstr(mock_log(m), "DELETE /bkt/pre/fix/job/c HTTP/1.1\n") != NULL);

	/* list: pages joined by continuation tokens (encoded in the query), keys relative to the
	 * prefix, XML entities decoded */
	struct answer pages[] = {
		{200,
		 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		 "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		 "<Name>bkt</Name><Prefix>pre/fix/job/</Prefix><KeyCount>2</KeyCount>"
		 "<MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>"
		 "<NextContinuationToken>tok/+=1</NextContinuationToken>"
		 "<Contents><Key>pre/fix/job/a&amp;b</Key><LastModified>x</LastModified>"
		 "<ETag>&quot;e&quot;</ETag><Size>3</Size></Contents>"
		 "<Contents><Key>pre/fix/job/chk-1/kin.json</Key><Size>12</Size></Contents>"
		 "</ListBucketResult>",
		 0},
		{200,
		 "<ListBucketResult><IsTruncated>false</IsTruncated>"
		 "<Contents><Key>pre/fix/job/z</Key><Size>0</Size></Contents>"
		 "</ListBucketResult>",
		 0}};
	mock_script(m, pages, 2);
	int rc;
	char *t = list_text(s, "job/", 0, &rc);
	CHECK(rc == 0);
	CHECK_STR(t, "job/a&b 3\njob/chk-1/kin.json 12\njob/z 0\n");
	free(t);
	CHECK(strstr(mock_log(m),
		     "GET /bkt?list-type=2&max-keys=1000&prefix=pre%2Ffix%2Fjob%2F HTTP/1.1\n") !=
	      NULL);
	CHECK(strstr(mock_log(m), "GET /bkt?continuation-token=tok%2F%2B%3D1&list-type=2&max-keys="
				  "1000&prefix=pre%2Ffix%2Fjob%2F HTTP/1.1\n") != NULL);
	/* an answer that is not a listing is an error, not an empty list */
	struct answer junk[] = {{200, "<html>not xml", 0}};
	mock_script(m, junk, 1);
	t = list_text(s, "job/", 0, &rc);
	CHECK(rc == -1);
	CHECK(strstr(t, "not a listing") != NULL);
	free(t);

	ev_buf_free(&b);
	ev_store_close(s);
}

static void test_mock_streams(struct mock *m)
{
	test_current = "s3 streams";
	ev_store *s = ev_store_open("s3://bkt", err, sizeof(err));
	CHECK(s != NULL);
	if (!s)
		return;
	char *dir = tmpdir();
	char src[4200], dst[4200];
	snprintf(src, sizeof(src), "%s/src", dir);
	snprintf(dst, sizeof(dst), "%s/dst", dir);
	size_t big = (3u << 20) + 7;
	char *data = malloc(big);
	fill(data, big, 7);
	CHECK(write_file(src, data, big) == 0);
	char hex[65];
	ev_sha256_hex(data, big, hex);

	struct answer ok2[] = {{200, "", 0}, {200, "", 0}};
	/* put_file streams with a known length, UNSIGNED-PAYLOAD; a retry sends it all again */
	struct answer two[] = {{500, S3_ERROR("InternalError", "try again"), 0}, {200, "", 0}};
	mock_script(m, two, 2);
	CHECK(ev_store_put_file(s, "shared/000001.sst", src, err, sizeof(err)) == 0);
	CHECK(m->requests == 2);
	CHECK(m->body_len[0] == big && m->body_len[1] == big);
	CHECK_STR(m->body_sha[1], hex);
	CHECK(strstr(mock_log(m), "PUT /bkt/shared/000001.sst HTTP/1.1\n") != NULL);
	CHECK(strstr(mock_log(m), "x-amz-content-sha256: UNSIGNED-PAYLOAD\n") != NULL);
	char clen[64];
	snprintf(clen, sizeof(clen), "Content-Length: %zu\n", big);
	CHECK(strstr(mock_log(m), clen) != NULL);

	/* get_file: a transfer cut short is retried from the start; the file ends whole */
	struct answer cut[] = {{200, "0123456789abcdefghij", 1}, {200, "0123456789abcdefghij", 0}};
	mock_script(m, cut, 2);
	CHECK(ev_store_get_file(s, "shared/x", dst, err, sizeof(err)) == 1);
	size_t n = 0;
	char *got = read_file(dst, &n);
	CHECK(got && n == 20 && memcmp(got, "0123456789abcdefghij", 20) == 0);
	free(got);
	CHECK(m->requests == 2);
	/* an error body never lands in the file; absent leaves it alone */
	struct answer miss[] = {{404, S3_ERROR("NoSuchKey", "none"), 0}};
	mock_script(m, miss, 1);
	CHECK(ev_store_get_file(s, "shared/y", dst, err, sizeof(err)) == 0);
	got = read_file(dst, &n);
	CHECK(got && n == 20);
	free(got);
	CHECK(count_tmp(dir) == 0);

	/* a file shorter than announced (it shrank) is an error at once, not a hang */
	ev_s3 *c = ev_s3_new("bkt", err, sizeof(err));
	CHECK(c != NULL);
	int fd = open(src, O_RDONLY);
	mock_script(m, ok2, 2);
	uint64_t t0 = ev_mono_ns();
	CHECK(c && ev_s3_put_fd(c, "shrunk", fd, big + 100, err, sizeof(err)) == -1);
	CHECK_STR(err, "cannot read the file to upload: it shrank while it was sent");
	CHECK((ev_mono_ns() - t0) / 1000000 < 5000);
	close(fd);
	ev_s3_free(c);

	free(data);
	ev_store_close(s);
	rm_rf(dir);
	free(dir);
}

static void test_mock_credentials(struct mock *m)
{
	test_current = "s3 credentials";
	struct answer ok[] = {{200, "", 0}};
	char *dir = tmpdir();
	char path[4200];

	/* a session token is sent and signed */
	setenv("AWS_SESSION_TOKEN", "TOKENvalue/+=", 1);
	ev_store *s = ev_store_open("s3://bkt", err, sizeof(err));
	CHECK(s != NULL);
	mock_script(m, ok, 1);
	CHECK(s && ev_store_put(s, "k", "v", 1, err, sizeof(err)) == 0);
	CHECK(strstr(mock_log(m), "x-amz-security-token: TOKENvalue/+=\n") != NULL);
	CHECK(strstr(mock_log(m), ";x-amz-security-token") != NULL);
	ev_store_close(s);
	unsetenv("AWS_SESSION_TOKEN");

	/* from a shared credentials file: the AWS_PROFILE section */
	snprintf(path, sizeof(path), "%s/credentials", dir);
	CHECK(write_file(path,
			 "# test\n[default]\naws_access_key_id = AKIDDEFAULT\n"
			 "aws_secret_access_key = defaultSECRET\n\n"
			 "[ci]\n  aws_access_key_id=AKIDCI  \naws_secret_access_key=ciSECRET\n",
			 strlen("# test\n[default]\naws_access_key_id = AKIDDEFAULT\n"
				"aws_secret_access_key = defaultSECRET\n\n"
				"[ci]\n  aws_access_key_id=AKIDCI  \n"
				"aws_secret_access_key=ciSECRET\n")) == 0);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
	setenv("AWS_PROFILE", "ci", 1);
	s = ev_store_open("s3://bkt", err, sizeof(err));
	CHECK(s != NULL);
	mock_script(m, ok, 1);
	CHECK(s && ev_store_put(s, "k", "v", 1, err, sizeof(err)) == 0);
	CHECK(strstr(mock_log(m), "Credential=AKIDCI/") != NULL);
	ev_store_close(s);
	unsetenv("AWS_PROFILE");
	s = ev_store_open("s3://bkt", err, sizeof(err));
	mock_script(m, ok, 1);
	CHECK(s && ev_store_put(s, "k", "v", 1, err, sizeof(err)) == 0);
	CHECK(strstr(mock_log(m), "Credential=AKIDDEFAULT/") != NULL);
	ev_store_close(s);
	setenv("AWS_PROFILE", "nope", 1);
	CHECK(ev_store_open("s3://bkt", err, sizeof(err)) == NULL);
	CHECK(strstr(err, "no profile 'nope'") != NULL && strstr(err, "SECRET") == NULL);
	unsetenv("AWS_PROFILE");

	/* none anywhere */
	setenv("AWS_SHARED_CREDENTIALS_FILE", "", 1);
	char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	setenv("HOME", dir, 1);
	CHECK(ev_store_open("s3://bkt", err, sizeof(err)) == NULL);
	CHECK(strstr(err, "no S3 credentials") != NULL);
	setenv("AWS_SECRET_ACCESS_KEY", "onlySECRET", 1);
	CHECK(ev_store_open("s3://bkt", err, sizeof(err)) == NULL);
	CHECK_STR(err, "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
	if (home)
		setenv("HOME", home, 1);
	free(home);

	/* an endpoint with credentials in it is refused without repeating it */
	mock_env();
	char *ep = strdup(getenv("S3_ENDPOINT"));
	setenv("S3_ENDPOINT", "http://user:epSECRET@127.0.0.1:9", 1);
	CHECK(ev_store_open("s3://bkt", err, sizeof(err)) == NULL);
	CHECK(strstr(err, "invalid S3 endpoint") != NULL && strstr(err, "epSECRET") == NULL);
	setenv("S3_ENDPOINT", "ftp://127.0.0.1:9", 1);
	CHECK(ev_store_open("s3://bkt", err, sizeof(err)) == NULL);
	setenv("S3_ENDPOINT", ep, 1);
	free(ep);

	/* a closed port: connection errors are retried within the budget, then a clear error */
	int port = 0, fd = listen_any(&port);
	close(fd);
	char closed[64];
	snprintf(closed, sizeof(closed), "http://127.0.0.1:%d/", port);
	char *saved = strdup(getenv("S3_ENDPOINT"));
	setenv("S3_ENDPOINT", closed, 1);
	s = ev_store_open("s3://bkt/p", err, sizeof(err));
	CHECK(s != NULL);
	if (s) {
		ev_store_set_retry(s, 600);
		uint64_t t0 = ev_mono_ns();
		CHECK(ev_store_put(s, "k", "v", 1, err, sizeof(err)) == -1);
		uint64_t ms = (ev_mono_ns() - t0) / 1000000;
		CHECK(strstr(err, "cannot put 's3://bkt/p/k': ") != NULL);
		CHECK(strstr(err, "gave up after ") != NULL);
		CHECK(strstr(err, "SECRET") == NULL);
		CHECK(ev_store_retries(s) >= 2);
		CHECK(ms >= 200 && ms < 3000);
		ev_store_close(s);
	}
	setenv("S3_ENDPOINT", saved, 1);
	free(saved);
	rm_rf(dir);
	free(dir);
}

static void test_s3_mock(void)
{
	mock_env();
	struct mock m;
	mock_start(&m);
	test_mock_requests(&m);
	test_mock_streams(&m);
	test_mock_credentials(&m);
	mock_stop(&m);
}

/* ---- --cli ---- */

static int cli_ls(const char *key, uint64_t size, void *arg)
{
	(void)arg;
	printf("%" PRIu64 " %s\n", size, key);
	return 0;
}

static int cli(int argc, char **argv)
{
	int64_t retry_ms = -1;
	int i = 0;
	if (i + 1 < argc && strcmp(argv[i], "--retry-ms") == 0) {
		retry_ms = strtoll(argv[i + 1], NULL, 10);
		i += 2;
	}
	if (argc - i < 2) {
		fprintf(stderr, "usage: test_ckstore --cli [--retry-ms N] URL CMD [ARG...]\n");
		return 2;
	}
	const char *url = argv[i], *cmd = argv[i + 1];
	char **a = argv + i + 2;
	int na = argc - i - 2;
	ev_store *s = ev_store_open(url, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "test_ckstore: %s\n", err);
		return 1;
	}
	if (retry_ms >= 0)
		ev_store_set_retry(s, retry_ms);
	int rc = -2;
	uint64_t size = 0;
	ev_buf b = EV_BUF_INIT;
	if (strcmp(cmd, "put") == 0 && na == 2)
		rc = ev_store_put_file(s, a[0], a[1], err, sizeof(err));
	else if (strcmp(cmd, "put-string") == 0 && na == 2)
		rc = ev_store_put(s, a[0], a[1], strlen(a[1]), err, sizeof(err));
	else if (strcmp(cmd, "get") == 0 && na == 2)
		rc = ev_store_get_file(s, a[0], a[1], err, sizeof(err));
	else if (strcmp(cmd, "cat") == 0 && na == 1) {
		rc = ev_store_get(s, a[0], &b, err, sizeof(err));
		if (rc == 1 && b.len)
			fwrite(b.data, 1, b.len, stdout);
	} else if (strcmp(cmd, "head") == 0 && na == 1) {
		rc = ev_store_head(s, a[0], &size, err, sizeof(err));
		if (rc == 1)
			printf("%" PRIu64 "\n", size);
	} else if (strcmp(cmd, "ls") == 0 && na <= 1)
		rc = ev_store_list(s, na ? a[0] : "", cli_ls, NULL, err, sizeof(err));
	else if (strcmp(cmd, "rm") == 0 && na == 1)
		rc = ev_store_delete(s, a[0], err, sizeof(err));
	uint64_t retries = ev_store_retries(s);
	ev_buf_free(&b);
	ev_store_close(s);
	if (rc == -2) {
		fprintf(stderr, "test_ckstore: unknown command or wrong arguments: '%s'\n", cmd);
		return 2;
	}
	if (rc == -1) {
		fprintf(stderr, "test_ckstore: %s\n", err);
		fprintf(stderr, "test_ckstore: retries: %" PRIu64 "\n", retries);
		return 1;
	}
	if (fflush(stdout) != 0)
		return 1;
	return rc == 0 && (strcmp(cmd, "get") == 0 || strcmp(cmd, "cat") == 0 ||
			   strcmp(cmd, "head") == 0)
		       ? 3
		       : 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 3 && strcmp(argv[1], "--s3") == 0) {
		suite(argv[2]);
		return test_report();
	}
	if (argc >= 2 && strcmp(argv[1], "--cli") == 0)
		return cli(argc - 2, argv + 2);
	if (argc != 1) {
		fprintf(stderr,
			"usage: test_ckstore [--s3 URL | --cli [--retry-ms N] URL CMD ...]\n");
		return 2;
	}
	RUN(test_keys_and_sha);
	RUN(test_urls);
	RUN(test_file_store);
	RUN(test_file_store_links);
	RUN(test_s3_mock);
	return test_report();
}
