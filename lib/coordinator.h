/* SPDX-License-Identifier: Apache-2.0 */
/* coordinator.h: the checkpoint coordinator that kin runs (docs/design.md, State and checkpoints):
 * one checkpoint at a time, begun by injecting a barrier, complete when every expected stage
 * has written its part, committed by writing the manifest last, then pruned. */
#ifndef EV_COORDINATOR_H
#define EV_COORDINATOR_H

#include <jansson.h>
#include <stdint.h>

#include "checkpoint.h"
#include "metrics.h"

typedef struct ev_coord_opts {
	ev_ckpt *ck;         /* the store, the job, this stage's name */
	int64_t interval_ms; /* between the end of one checkpoint and the next barrier */
	int64_t timeout_ms;  /* a checkpoint not complete by then is abandoned */
	int tolerable;       /* consecutive abandoned checkpoints that stop the job: more */
	int retain;          /* complete checkpoints kept */
	const char **expect; /* the stages whose parts complete a checkpoint */
	size_t nexpect;

	/* With copies in a consumer group: the group's committed offsets, for pruning the
	 * hand-over objects of the job after each checkpoint (ev_ckpt_prune_handovers); NULL:
	 * they are not pruned */
	ev_ckpt_committed_fn committed;
	void *committed_arg;
} ev_coord_opts;

typedef struct ev_coord ev_coord;

/* Checkpoint ids continue after the newest in the store. NULL with a message in err. */
ev_coord *ev_coord_new(const ev_coord_opts *o, ev_metrics *m, char *err, size_t errlen);
void ev_coord_free(ev_coord *c);

/* True when no checkpoint is in flight and the interval has passed. */
int ev_coord_due(const ev_coord *c, int64_t now_ms);
/* The id of the checkpoint in flight, 0 when none. */
int64_t ev_coord_inflight(const ev_coord *c);
/* Begin a checkpoint: writes the coordinator's part (offsets: {"topic":{"partition":next
 * offset}}, taken) and returns its id, for the caller to inject the barrier; -1 with a
 * message in err. */
int64_t ev_coord_begin(ev_coord *c, json_t *offsets, int64_t now_ms, char *err, size_t errlen);

enum {
	EV_COORD_IDLE,      /* nothing in flight */
	EV_COORD_PENDING,   /* parts missing, still within the timeout */
	EV_COORD_COMPLETED, /* manifest written: *offsets are the checkpoint's (the caller's);
			     * the caller announces it downstream with a committed control line
			     * (ADR 0021) */
	EV_COORD_ABANDONED, /* timed out, within what is tolerable */
	EV_COORD_FAILED,    /* too many consecutive failures: stop the job (message in err) */
};
/* Look at the checkpoint in flight (the store is listed at most every 100 ms). A checkpoint
 * due for longer than the timeout but not begun (the caller's output blocked: call this while
 * a write waits too) fails like one abandoned. */
int ev_coord_poll(ev_coord *c, int64_t now_ms, json_t **offsets, char *err, size_t errlen);

/* The offsets of checkpoint id's manifest ({"topic":{"partition":offset}}), for a restore.
 * NULL with a message in err. */
json_t *ev_coord_restore_offsets(ev_ckpt *ck, int64_t id, char *err, size_t errlen);

#endif
