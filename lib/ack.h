/* SPDX-License-Identifier: Apache-2.0 */
/* ack.h: acknowledgements of barriers from the sinks back to kin, for runs without checkpoints
 * (ADR 0014). A sink writes the line "<stage> <id>" once everything before barrier id is durable
 * (rows acknowledged by ClickHouse, dead letters delivered); kin commits the offsets it recorded
 * at barrier id once every expected stage has acknowledged it or a later one. Several sinks may
 * share one channel (a named pipe): a line is written with one write(2) of at most PIPE_BUF
 * bytes, so lines never interleave. */
#ifndef EV_ACK_H
#define EV_ACK_H

#include <stddef.h>
#include <stdint.h>

/* The writing end, of a sink. spec is "fd:N" (an inherited descriptor) or the path of a named
 * pipe or file, opened at the first acknowledgement (the reader, kin, has it open by then).
 * NULL with a message in err when spec is malformed. */
typedef struct ev_ack_out ev_ack_out;
ev_ack_out *ev_ack_out_new(const char *spec, char *err, size_t errlen);
void ev_ack_out_free(ev_ack_out *a);
/* Acknowledge barrier id for stage. A reader that is gone (EPIPE, ENXIO) is an error, never a
 * SIGPIPE. Returns 0, or -1 with a message in err. */
int ev_ack_send(ev_ack_out *a, const char *stage, int64_t id, char *err, size_t errlen);

/* The reading end, of kin: expect lists the stages whose acknowledgements complete a barrier
 * (none: any one stage's is enough). A path is opened without waiting for a writer. NULL with a
 * message in err. */
typedef struct ev_ack_in ev_ack_in;
ev_ack_in *ev_ack_in_new(const char *spec, const char *const *expect, size_t nexpect, char *err,
			 size_t errlen);
void ev_ack_in_free(ev_ack_in *a);

enum {
	EV_ACK_OPEN,   /* writers may still acknowledge */
	EV_ACK_CLOSED, /* every writer that opened the channel has closed it */
};
/* Wait up to timeout_ms (0: not at all) for acknowledgements and read what is there. Sets
 * *complete to the highest barrier id every expected stage has acknowledged (-1: none yet).
 * Returns EV_ACK_OPEN or EV_ACK_CLOSED, or -1 with a message in err (a read error). Lines that
 * are not "<stage> <id>" are counted in ev_ack_malformed and otherwise ignored. */
int ev_ack_poll(ev_ack_in *a, int timeout_ms, int64_t *complete, char *err, size_t errlen);
uint64_t ev_ack_malformed(const ev_ack_in *a);

#endif
