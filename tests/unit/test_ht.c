/* SPDX-License-Identifier: Apache-2.0 */
/* test_ht.c: the hash table, against a plain array as the reference. */
#include <stdio.h>
#include <stdlib.h>

#include "ht.h"
#include "test.h"

static void test_random(void)
{
	enum { N = 5000 };
	static intptr_t ref[N]; /* 0: absent */
	ev_ht *t = ev_ht_new();
	int mismatches = 0;
	srand(7);
	for (int round = 0; round < 100000; round++) {
		int k = rand() % N;
		char key[16];
		int len = snprintf(key, sizeof(key), "k%d", k);
		switch (rand() % 3) {
		case 0:
			ev_ht_put(t, key, (size_t)len, (void *)(intptr_t)(round + 1));
			ref[k] = round + 1;
			break;
		case 1:
			mismatches += (intptr_t)ev_ht_del(t, key, (size_t)len) != ref[k];
			ref[k] = 0;
			break;
		default: mismatches += (intptr_t)ev_ht_get(t, key, (size_t)len) != ref[k];
		}
	}
	CHECK(mismatches == 0);
	size_t live = 0, seen = 0, pos = 0;
	for (int k = 0; k < N; k++)
		live += ref[k] != 0;
	const void *key;
	size_t len;
	void *value;
	while (ev_ht_next(t, &pos, &key, &len, &value))
		seen++;
	CHECK(seen == live && ev_ht_count(t) == live);
	ev_ht_free(t);
}

/* What a table holds is counted: a new one is small (a uniq per window, millions of them), and
 * the count follows the keys in and out. */
static void test_bytes(void)
{
	ev_ht *t = ev_ht_new();
	size_t empty = ev_ht_bytes(t);
	CHECK(empty < 512);
	ev_ht_put(t, "0123456789", 10, t);
	CHECK(ev_ht_bytes(t) >= empty + 10);
	for (int i = 0; i < 1000; i++) {
		char key[16];
		ev_ht_put(t, key, (size_t)snprintf(key, sizeof(key), "key-%d", i), t);
	}
	size_t full = ev_ht_bytes(t);
	CHECK(full > 1000 * (5 + 16)); /* keys and slots */
	ev_ht_del(t, "0123456789", 10);
	CHECK(ev_ht_bytes(t) == full - 10 - 16);
	ev_ht_free(t);
}

/* ev_ht_add inserts only a new key, and grows the table as ev_ht_get then ev_ht_put would. */
static void test_add(void)
{
	ev_ht *a = ev_ht_new(), *b = ev_ht_new();
	int x, y;
	CHECK(ev_ht_add(a, "k", 1, &x) == 1);
	CHECK(ev_ht_add(a, "k", 1, &y) == 0);
	CHECK(ev_ht_get(a, "k", 1) == &x && ev_ht_count(a) == 1);
	ev_ht_put(b, "k", 1, &x);
	for (int i = 0; i < 2000; i++) {
		char key[16];
		size_t n = (size_t)snprintf(key, sizeof(key), "u%d", i % 700);
		int added = ev_ht_add(a, key, n, &x);
		CHECK(added == (i < 700));
		if (!ev_ht_get(b, key, n))
			ev_ht_put(b, key, n, &x);
		CHECK(ev_ht_bytes(a) == ev_ht_bytes(b));
	}
	size_t pa = 0, pb = 0, la, lb;
	const void *ka, *kb;
	void *va, *vb;
	while (ev_ht_next(a, &pa, &ka, &la, &va)) { /* the same order: the same slots */
		CHECK(ev_ht_next(b, &pb, &kb, &lb, &vb) && la == lb && memcmp(ka, kb, la) == 0);
	}
	CHECK(!ev_ht_next(b, &pb, &kb, &lb, &vb));
	ev_ht_free(a);
	ev_ht_free(b);
}

/* A table of kept keys: the same slots and answers as one that allocates each key, long keys
 * and short, and deletes leave the others found. */
static void test_kept(void)
{
	ev_ht *a = ev_ht_new_kept(), *b = ev_ht_new();
	char key[200000];
	memset(key, 'k', sizeof(key));
	for (int i = 0; i < 3000; i++) {
		size_t pl = (size_t)snprintf(key, 16, "%d-", i); /* unique, then k's */
		size_t n = i % 500 == 0 ? sizeof(key) - (size_t)i : pl + (size_t)(i % 40);
		key[pl] = 'k';
		CHECK(ev_ht_add(a, key, n, (void *)(intptr_t)(i + 1)) == 1);
		ev_ht_put(b, key, n, (void *)(intptr_t)(i + 1));
		if (i % 7 == 0) {
			CHECK(ev_ht_del(a, key, n) == (void *)(intptr_t)(i + 1));
			ev_ht_del(b, key, n);
		}
	}
	CHECK(ev_ht_count(a) == ev_ht_count(b) && ev_ht_bytes(a) == ev_ht_bytes(b));
	size_t pa = 0, pb = 0, la, lb;
	const void *ka, *kb;
	void *va, *vb;
	while (ev_ht_next(a, &pa, &ka, &la, &va)) {
		CHECK(ev_ht_next(b, &pb, &kb, &lb, &vb) && la == lb && memcmp(ka, kb, la) == 0 &&
		      va == vb && ev_ht_get(a, ka, la) == va);
	}
	CHECK(!ev_ht_next(b, &pb, &kb, &lb, &vb));
	ev_ht_free(a);
	ev_ht_free(b);
}

int main(void)
{
	RUN(test_kept);
	RUN(test_add);
	RUN(test_bytes);
	RUN(test_random);
	return test_report();
}
