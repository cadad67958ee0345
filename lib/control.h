/* control.h: in-band control lines ({"__evpipe":...}): watermarks, barriers, assignments. */
#ifndef EV_CONTROL_H
#define EV_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum ev_control_type {
	EV_CTL_OTHER = 0, /* a control line of a kind this build does not know: forward it */
	EV_CTL_WATERMARK,
	EV_CTL_BARRIER,
	EV_CTL_ASSIGN,
	EV_CTL_REVOKE,
	EV_CTL_STOP, /* the source was stopped, the stream is not finished: the end of input that
		      * follows suspends it (state is kept for a restart), it does not end it */
	EV_CTL_END,  /* the source reached the end it was asked to stop at: the stream is finished
		      * (with checkpoints, only this makes the end of input fire every window) */
};

typedef struct ev_control {
	enum ev_control_type type;
	int64_t id; /* barrier id */
	int64_t ts; /* watermark or barrier time, epoch ms */
} ev_control;

/* True when the line is a control line: a JSON object whose first key is "__evpipe".
 * Decided from the prefix alone, without parsing. */
int ev_control_is(const char *line, size_t len);
/* Parse a control line. Returns 0, or -1 with a message in err when it is malformed. */
int ev_control_parse(const char *line, size_t len, ev_control *c, char *err, size_t errlen);
/* Append the control line for c (no newline). */
int ev_control_format(ev_buf *out, const ev_control *c);
const char *ev_control_type_name(enum ev_control_type type);

#endif
