/* SPDX-License-Identifier: Apache-2.0 */
/* ndjson.h: newline-delimited input lines and buffered output with backpressure timing. */
#ifndef EV_NDJSON_H
#define EV_NDJSON_H

#include <stddef.h>
#include <stdint.h>

/* Flags of the line last returned by ev_reader_next. */
enum {
	EV_LINE_NO_NEWLINE = 1, /* last line of input, not terminated by '\n' */
	EV_LINE_CRLF = 2,       /* a '\r' before the '\n' was removed */
	EV_LINE_TOO_LONG = 4,   /* longer than the reader's max_line (still returned whole) */
};

typedef struct ev_reader ev_reader;

/* Read lines from fd. Lines of any length are returned whole; those longer than
 * max_line bytes (0: no limit) carry EV_LINE_TOO_LONG so the caller can report them. */
ev_reader *ev_reader_new(int fd, size_t max_line);
void ev_reader_free(ev_reader *r);
/* Next line without its terminator, NUL-terminated in place (the line itself may
 * contain NULs: use *len). Valid until the next call. Returns 1 on a line, 0 at end
 * of input, -1 on a read error (errno set). EINTR is returned as -1 with errno EINTR
 * so that a caller can check for a shutdown request, and may call again. */
int ev_reader_next(ev_reader *r, char **line, size_t *len, int *flags);
/* Call fn(arg) before every read(2) that may block, e.g. to flush outputs so that what was
 * written reaches the next stage before this one waits for input. */
void ev_reader_set_before_read(ev_reader *r, void (*fn)(void *arg), void *arg);
/* Bytes buffered but not yet returned: a caller polling other sources must not
 * block on fd while this is non-zero. */
size_t ev_reader_buffered(const ev_reader *r);
int ev_reader_fd(const ev_reader *r);
uint64_t ev_reader_lines(const ev_reader *r);
uint64_t ev_reader_bytes(const ev_reader *r);

typedef struct ev_writer ev_writer;

/* Buffered writer on fd; the time spent in write(2) (blocked on a full pipe, the
 * pipeline's backpressure) is measured. */
ev_writer *ev_writer_new(int fd, size_t bufsize);
/* Flushes, then frees; returns the flush status. Does not close fd. */
int ev_writer_free(ev_writer *w);
int ev_writer_write(ev_writer *w, const void *data, size_t len);
/* Write data followed by '\n'. */
int ev_writer_line(ev_writer *w, const void *data, size_t len);
/* Returns 0, or -1 with errno set (EPIPE, ENOSPC, ...). A failed writer keeps failing. */
int ev_writer_flush(ev_writer *w);
size_t ev_writer_pending(const ev_writer *w);
uint64_t ev_writer_lines(const ev_writer *w);
uint64_t ev_writer_bytes(const ev_writer *w);
/* Nanoseconds spent inside write(2) so far (waiting for fd to drain, with a tick). */
uint64_t ev_writer_blocked_ns(const ev_writer *w);
/* While a write waits for fd to drain (a full pipe: the next stage is slow, stopped or hung),
 * call fn(arg) every interval_ms, ev_writer_blocked_ns counting the wait so far, so that the
 * caller's clocks (checkpoint timeouts, metrics) keep running. When fn returns -1 the write
 * fails with errno ECANCELED, and the writer keeps failing. fd is made non-blocking (and
 * waited on with poll(2)) when it is a pipe or a socket, the pipeline's private connections;
 * on a file or a terminal writes block as before, without ticks. fn must not write to w.
 * Returns 0, or -1 with errno set. */
int ev_writer_set_tick(ev_writer *w, int (*fn)(void *arg), void *arg, int interval_ms);

#endif
