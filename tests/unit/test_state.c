/* SPDX-License-Identifier: Apache-2.0 */
/* test_state.c: the RocksDB state store: batches, point reads, range scans and deletes,
 * reopening a directory, and the order-preserving key encodings. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state.h"
#include "test.h"

static void test_encoding(void)
{
	const int64_t v[] = {INT64_MIN, -86400000, -1, 0, 1, 1732400000000, INT64_MAX};
	unsigned char a[8], b[8];
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		ev_state_put_i64(a, v[i]);
		CHECK(ev_state_get_i64(a) == v[i]);
		if (i + 1 < sizeof(v) / sizeof(v[0])) {
			ev_state_put_i64(b, v[i + 1]);
			CHECK(memcmp(a, b, 8) < 0); /* byte order is numeric order */
		}
	}
}

static ev_state *open_dir(const char *dir)
{
	char err[512] = "";
	ev_state_opts o = {.dir = dir, .memory = 8u << 20};
	ev_state *s = ev_state_open(&o, err, sizeof(err));
	if (!s)
		fprintf(stderr, "open: %s\n", err);
	return s;
}

static void test_store(void)
{
	char dir[] = "/tmp/evpipe-test-state-XXXXXX", err[512];
	CHECK(mkdtemp(dir) != NULL);
	ev_state *s = open_dir(dir);
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK(!ev_state_existed(s));
	ev_buf v = EV_BUF_INIT;
	unsigned char k[9];
	for (int i = 0; i < 100; i++) {
		k[0] = 'w';
		ev_state_put_i64(k + 1, i - 50);
		ev_state_put(s, k, sizeof(k), &i, sizeof(i));
	}
	k[0] = 'w';
	ev_state_put_i64(k + 1, 7);
	CHECK(ev_state_get(s, k, sizeof(k), &v, err, sizeof(err)) == 0); /* not committed */
	CHECK(ev_state_commit(s, err, sizeof(err)) == 0);
	CHECK(ev_state_get(s, k, sizeof(k), &v, err, sizeof(err)) == 1);
	CHECK(v.len == sizeof(int) && *(int *)v.data == 57);

	/* delete [-50, 0): the scan from the start sees 0..49 in numeric order */
	unsigned char from[9] = {'w'}, to[9] = {'w'};
	ev_state_put_i64(from + 1, -50);
	ev_state_put_i64(to + 1, 0);
	ev_state_delete_range(s, from, sizeof(from), to, sizeof(to));
	ev_state_put_i64(k + 1, 49);
	ev_state_delete(s, k, sizeof(k));
	CHECK(ev_state_commit(s, err, sizeof(err)) == 0);
	unsigned char end[1] = {'x'};
	ev_state_iter *it = ev_state_iter_new(s, from, 1, end, 1);
	const void *key, *val;
	size_t klen, vlen;
	int n = 0, ordered = 1;
	while (ev_state_iter_next(it, &key, &klen, &val, &vlen) == 1) {
		ordered &= ev_state_get_i64((const unsigned char *)key + 1) == n;
		n++;
	}
	ev_state_iter_free(it);
	CHECK(n == 49 && ordered);
	CHECK(ev_state_close(s, err, sizeof(err)) == 0);

	/* reopened, the directory holds what was committed */
	s = open_dir(dir);
	CHECK(s && ev_state_existed(s));
	if (s) {
		ev_state_put_i64(k + 1, 3);
		CHECK(ev_state_get(s, k, sizeof(k), &v, err, sizeof(err)) == 1);
		CHECK(v.len == sizeof(int) && *(int *)v.data == 53);
		CHECK(ev_state_keys(s) > 0);
		ev_state_close(s, err, sizeof(err));
	}
	ev_buf_free(&v);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
}

/* Without a directory the store lives in a private one that close removes. */
static void test_private(void)
{
	char err[512];
	ev_state *s = open_dir(NULL);
	CHECK(s != NULL);
	if (!s)
		return;
	char *dir = strdup(ev_state_dir(s));
	struct stat st;
	CHECK(stat(dir, &st) == 0);
	ev_state_put(s, "a", 1, "b", 1);
	CHECK(ev_state_close(s, err, sizeof(err)) == 0);
	CHECK(stat(dir, &st) < 0);
	free(dir);
	ev_state_opts o = {.dir = "/proc/no/such/dir"};
	CHECK(ev_state_open(&o, err, sizeof(err)) == NULL && strstr(err, "/proc/no/such/dir"));
}

int main(void)
{
	RUN(test_encoding);
	RUN(test_private);
	RUN(test_store);
	return test_report();
}
