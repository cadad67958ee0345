/* SPDX-License-Identifier: Apache-2.0 */
/* ckworker.h: a stage's checkpoint I/O in a background thread, one task at a time: the
 * asynchronous part of a snapshot (ADR 0023), so that a slow or absent store delays
 * checkpoints, never records. */
#ifndef EV_CKWORKER_H
#define EV_CKWORKER_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"

typedef struct ev_ckworker ev_ckworker;

/* A task, run in the worker's thread. ck is the worker's copy of the stage's ev_ckpt: the same
 * job, stage, identity and failure counter, its own store handle (a handle is used by one
 * thread at a time: libcurl's handles are not shared). The task owns arg and frees it; it must
 * touch nothing the stage's thread uses without a lock (the live RocksDB, the window table),
 * only what arg gives it, the store, the log and metric series (both thread-safe). */
typedef void (*ev_ckworker_task)(ev_ckpt *ck, void *arg);

/* A worker for the checkpoints of ck (opened: ck->url and ck->store set), with a store handle
 * of its own on the same URL, whose transient failures are retried for retry_ms (the store's
 * default when 0). No thread runs until a task starts. NULL with a message in err. */
ev_ckworker *ev_ckworker_new(const ev_ckpt *ck, int64_t retry_ms, char *err, size_t errlen);

/* Run task(arg) in the background unless a task is in flight. Returns 0 (started: arg is the
 * task's), 1 (one is in flight: nothing started, arg stays the caller's), or -1 with a message
 * in err (no thread: arg stays the caller's). The thread runs with every signal blocked, so
 * that a stop signal reaches the stage's own thread. */
int ev_ckworker_start(ev_ckworker *w, ev_ckworker_task task, void *arg, char *err, size_t errlen);
/* 1 while a task runs, else 0. */
int ev_ckworker_busy(ev_ckworker *w);
/* Wait for the task in flight for at most timeout_ms (< 0: as long as it takes). Returns 0 when
 * none is in flight (any more), 1 when one still runs. */
int ev_ckworker_wait(ev_ckworker *w, int64_t timeout_ms);
/* Tasks started since the worker was made. */
uint64_t ev_ckworker_started(const ev_ckworker *w);

/* Free the worker. A task still running is left to finish on its own (its thread detached,
 * freeing the worker when it ends, or ending with the process): the metric series it updates
 * must then outlive it. Returns 1 when a task was left running, else 0. */
int ev_ckworker_free(ev_ckworker *w);

#endif
