/* SPDX-License-Identifier: Apache-2.0 */
/* ckworker.c: a stage's checkpoint I/O in a background thread, one task at a time. */
#include "ckworker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ev_ckworker {
	ev_ckpt ck; /* the stage's, with copies of its strings and a store of its own */
	char *url, *job, *stage;
	pthread_mutex_t lock;
	pthread_cond_t finished;
	pthread_t thread;
	int joinable;  /* a thread was started and not joined (the stage's thread only) */
	int done;      /* under lock: the task returned */
	int abandoned; /* under lock: the worker was freed while the task ran */
	uint64_t started;
	ev_ckworker_task task;
	void *arg;
};

static void destroy(ev_ckworker *w)
{
	ev_ckpt_close(&w->ck); /* the store and the identity */
	free(w->url);
	free(w->job);
	free(w->stage);
	pthread_cond_destroy(&w->finished);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

ev_ckworker *ev_ckworker_new(const ev_ckpt *ck, int64_t retry_ms, char *err, size_t errlen)
{
	ev_ckworker *w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->finished, NULL);
	w->ck = *ck;
	w->ck.store = NULL;
	w->ck.identity = ck->identity ? json_deep_copy(ck->identity) : NULL;
	w->url = ck->url ? strdup(ck->url) : NULL;
	w->job = ck->job ? strdup(ck->job) : NULL;
	w->stage = ck->stage ? strdup(ck->stage) : NULL;
	w->ck.url = w->url;
	w->ck.job = w->job;
	w->ck.stage = w->stage;
	w->ck.restore = NULL;
	/* a copy's root (--copy), freed by ev_ckpt_close */
	w->ck.root = w->ck.root_owned = ck->root ? strdup(ck->root) : NULL;
	if (!w->url || !w->job || !w->stage || (ck->identity && !w->ck.identity) ||
	    (ck->root && !w->ck.root)) {
		snprintf(err, errlen, "out of memory");
		destroy(w);
		return NULL;
	}
	if (!(w->ck.store = ev_store_open(w->url, err, errlen))) {
		destroy(w);
		return NULL;
	}
	if (retry_ms > 0)
		ev_store_set_retry(w->ck.store, retry_ms);
	return w;
}

static void *run(void *arg)
{
	ev_ckworker *w = arg;
	w->task(&w->ck, w->arg);
	pthread_mutex_lock(&w->lock);
	w->done = 1;
	int abandoned = w->abandoned;
	pthread_cond_broadcast(&w->finished);
	pthread_mutex_unlock(&w->lock);
	if (abandoned)
		destroy(w);
	return NULL;
}

/* Join the thread of a task that returned. Returns 1 when one still runs, else 0. */
static int reap(ev_ckworker *w)
{
	if (!w->joinable)
		return 0;
	pthread_mutex_lock(&w->lock);
	int done = w->done;
	pthread_mutex_unlock(&w->lock);
	if (!done)
		return 1;
	pthread_join(w->thread, NULL);
	w->joinable = 0;
	return 0;
}

int ev_ckworker_start(ev_ckworker *w, ev_ckworker_task task, void *arg, char *err, size_t errlen)
{
	if (reap(w))
		return 1;
	sigset_t all, old;
	sigfillset(&all);
	w->task = task;
	w->arg = arg;
	w->done = 0;
	/* The thread inherits the mask: signals stay with the stage's thread. */
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&w->thread, NULL, run, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "cannot start a thread: %s", strerror(rc));
		return -1;
	}
	w->joinable = 1;
	w->started++;
	return 0;
}

int ev_ckworker_busy(ev_ckworker *w)
{
	return reap(w);
}

int ev_ckworker_wait(ev_ckworker *w, int64_t timeout_ms)
{
	if (!w->joinable)
		return 0;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	if (timeout_ms >= 0) {
		until.tv_sec += timeout_ms / 1000;
		until.tv_nsec += (timeout_ms % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
	}
	pthread_mutex_lock(&w->lock);
	int rc = 0;
	while (!w->done && rc != ETIMEDOUT)
		rc = timeout_ms < 0 ? pthread_cond_wait(&w->finished, &w->lock)
				    : pthread_cond_timedwait(&w->finished, &w->lock, &until);
	pthread_mutex_unlock(&w->lock);
	return reap(w);
}

uint64_t ev_ckworker_started(const ev_ckworker *w)
{
	return w->started;
}

int ev_ckworker_free(ev_ckworker *w)
{
	if (!w)
		return 0;
	if (w->joinable) {
		pthread_mutex_lock(&w->lock);
		int running = !w->done;
		w->abandoned = running;
		pthread_mutex_unlock(&w->lock);
		if (running) {
			pthread_detach(w->thread);
			return 1;
		}
		pthread_join(w->thread, NULL);
	}
	destroy(w);
	return 0;
}
