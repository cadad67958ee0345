/* SPDX-License-Identifier: Apache-2.0 */
/* test_ckworker.c: the background checkpoint worker: one task at a time, its own store handle,
 * waits with a bound, a task left running at free. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckworker.h"
#include "log.h"
#include "test.h"

/* A task that waits until it is released, then writes a key through the worker's store. */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int open;
	_Atomic int ran, blocked_term; /* SIGTERM was blocked in the task's thread */
	const ev_store *store_seen;
	const char *key;
};

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->open = 1;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static void gated(ev_ckpt *ck, void *arg)
{
	struct gate *g = arg;
	sigset_t now;
	pthread_sigmask(SIG_SETMASK, NULL, &now);
	g->blocked_term = sigismember(&now, SIGTERM);
	pthread_mutex_lock(&g->lock);
	while (!g->open)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
	char err[256];
	g->store_seen = ck->store;
	if (g->key)
		ev_store_put(ck->store, g->key, "x", 1, err, sizeof(err));
	g->ran++;
}

static void test_one_at_a_time(void)
{
	char dir[] = "/tmp/ckworker-XXXXXX", url[128], err[256];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(url, sizeof(url), "file://%s", dir);
	ev_ckpt ck = {.url = url};
	CHECK(ev_ckpt_open(&ck, "job", "stage", err, sizeof(err)) == 0);
	ev_ckworker *w = ev_ckworker_new(&ck, 0, err, sizeof(err));
	CHECK(w != NULL);
	if (!w)
		return;
	struct gate g = {
		PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, NULL, "job/one"};
	CHECK(!ev_ckworker_busy(w));
	CHECK(ev_ckworker_wait(w, 0) == 0); /* nothing in flight */
	CHECK(ev_ckworker_start(w, gated, &g, err, sizeof(err)) == 0);
	CHECK(ev_ckworker_busy(w));
	/* one in flight: a second is refused and its argument stays the caller's */
	struct gate other = g;
	CHECK(ev_ckworker_start(w, gated, &other, err, sizeof(err)) == 1);
	CHECK(ev_ckworker_wait(w, 50) == 1); /* the bound: still running */
	gate_open(&g);
	CHECK(ev_ckworker_wait(w, -1) == 0);
	CHECK(!ev_ckworker_busy(w));
	CHECK(g.ran == 1 && other.ran == 0);
	CHECK(g.blocked_term); /* signals stay with the stage's thread */
	/* the worker's own store handle, not the stage's */
	CHECK(g.store_seen != NULL && g.store_seen != ck.store);
	uint64_t size;
	CHECK(ev_store_head(ck.store, "job/one", &size, err, sizeof(err)) == 1 && size == 1);
	/* the next one may start now */
	struct gate again = {
		PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 1, 0, 0, NULL, NULL};
	CHECK(ev_ckworker_start(w, gated, &again, err, sizeof(err)) == 0);
	CHECK(ev_ckworker_wait(w, 10000) == 0 && again.ran == 1);
	CHECK(ev_ckworker_started(w) == 2);
	CHECK(ev_ckworker_free(w) == 0);
	ev_ckpt_close(&ck);
	ev_store *s = ev_store_open(url, err, sizeof(err));
	ev_store_delete(s, "job/one", err, sizeof(err));
	ev_store_close(s);
	rmdir(dir);
}

/* Freed while a task runs: the task finishes on its own, and frees the worker. */
static void test_left_running(void)
{
	char dir[] = "/tmp/ckworker-XXXXXX", url[128], err[256];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(url, sizeof(url), "file://%s", dir);
	ev_ckpt ck = {.url = url};
	CHECK(ev_ckpt_open(&ck, "job", "stage", err, sizeof(err)) == 0);
	ev_ckpt_set_identity(&ck, json_pack("{s:s}", "table", "t"));
	ev_ckworker *w = ev_ckworker_new(&ck, 0, err, sizeof(err));
	ev_ckpt_close(&ck); /* the worker has copies of what it needs */
	static struct gate g = {
		PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, NULL, "job/late"};
	CHECK(w && ev_ckworker_start(w, gated, &g, err, sizeof(err)) == 0);
	CHECK(ev_ckworker_free(w) == 1);
	gate_open(&g);
	for (int i = 0; i < 500 && !g.ran; i++)
		usleep(10000);
	usleep(50000); /* the thread frees the worker after the task */
	CHECK(g.ran == 1);
	ev_store *s = ev_store_open(url, err, sizeof(err));
	uint64_t size;
	CHECK(ev_store_head(s, "job/late", &size, err, sizeof(err)) == 1);
	ev_store_delete(s, "job/late", err, sizeof(err));
	ev_store_close(s);
	rmdir(dir);
}

int main(void)
{
	ev_log_set_prog("test_ckworker");
	RUN(test_one_at_a_time);
	RUN(test_left_running);
	printf("%d passed, %d failed\n", test_passed, test_failed);
	return test_failed ? 1 : 0;
}
