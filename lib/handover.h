/* SPDX-License-Identifier: Apache-2.0 */
/* handover.h: a partition's state handed over through the checkpoint store when it moves
 * between copies of a job (ADR 0025). */
#ifndef EV_HANDOVER_H
#define EV_HANDOVER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "ckstore.h"

/* The state of one stage for one partition as of one offset of it (the position a revoke line
 * gave: everything before it folded in, nothing after), under
 *   <job>/handover/<stage>/<partition>-<topic>/<offset, 20 digits>
 * An object is one header line, {"format":1,"topic":..,"partition":..,"offset":..,
 * "windows":..,"bytes":..,"sha256":..}, then the state's bytes. Objects are never replaced:
 * the state of a partition at an offset is a function of its records before it, so a second
 * hand-over at the same offset writes the same bytes. Topics are Kafka topic names. */
void ev_handover_key(ev_buf *b, const char *job, const char *stage, const char *topic,
		     int32_t partition, int64_t offset);
/* Put the len bytes of state (holding windows windows). Returns 0, or -1 with a message. */
int ev_handover_put(ev_store *s, const char *job, const char *stage, const char *topic,
		    int32_t partition, int64_t offset, const void *state, size_t len,
		    size_t windows, char *err, size_t errlen);
/* The state handed over at exactly that offset into out (reset first): 1, 0 when there is
 * none, or -1 with a message when it cannot be read or is not what its header says (another
 * partition or offset, a size or SHA-256 that does not match: nothing unverified is loaded). */
int ev_handover_get(ev_store *s, const char *job, const char *stage, const char *topic,
		    int32_t partition, int64_t offset, ev_buf *out, char *err, size_t errlen);

#endif
