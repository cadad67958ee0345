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

int main(void)
{
	RUN(test_bytes);
	RUN(test_random);
	return test_report();
}
