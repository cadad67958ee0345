/* SPDX-License-Identifier: Apache-2.0 */
/* ndjson.c: newline-delimited input lines and buffered output with backpressure timing. */
#include "ndjson.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define READ_CHUNK (64 * 1024)

struct ev_reader {
	int fd;
	size_t max_line;
	char *buf;
	size_t cap;
	size_t start; /* first byte not yet returned */
	size_t end;   /* end of valid data */
	size_t scan;  /* bytes from start already known to hold no '\n' */
	int eof;
	uint64_t lines;
	uint64_t bytes;
	void (*before_read)(void *arg);
	void *before_read_arg;
};

ev_reader *ev_reader_new(int fd, size_t max_line)
{
	ev_reader *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->fd = fd;
	r->max_line = max_line;
	r->cap = 4 * READ_CHUNK;
	r->buf = malloc(r->cap + 1);
	if (!r->buf) {
		free(r);
		return NULL;
	}
	return r;
}

void ev_reader_free(ev_reader *r)
{
	if (!r)
		return;
	free(r->buf);
	free(r);
}

/* Make room for at least READ_CHUNK more bytes after end. */
static int reader_make_room(ev_reader *r)
{
	if (r->start > 0 && (r->start == r->end || r->cap - r->end < READ_CHUNK)) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	if (r->cap - r->end >= READ_CHUNK)
		return 0;
	size_t cap = r->cap * 2;
	char *p = realloc(r->buf, cap + 1);
	if (!p)
		return -1;
	r->buf = p;
	r->cap = cap;
	return 0;
}

static void reader_take(ev_reader *r, size_t n, int nl, char **line, size_t *len, int *flags)
{
	char *s = r->buf + r->start;
	int f = nl ? 0 : EV_LINE_NO_NEWLINE;
	size_t l = n;
	r->start += n + (nl ? 1 : 0);
	r->scan = 0;
	r->lines++;
	r->bytes += n + (nl ? 1 : 0);
	if (l > 0 && s[l - 1] == '\r') {
		l--;
		f |= EV_LINE_CRLF;
	}
	if (r->max_line && l > r->max_line)
		f |= EV_LINE_TOO_LONG;
	s[l] = '\0';
	*line = s;
	*len = l;
	*flags = f;
}

int ev_reader_next(ev_reader *r, char **line, size_t *len, int *flags)
{
	for (;;) {
		size_t avail = r->end - r->start;
		if (avail > r->scan) {
			char *nl = memchr(r->buf + r->start + r->scan, '\n', avail - r->scan);
			if (nl) {
				reader_take(r, (size_t)(nl - (r->buf + r->start)), 1, line, len,
					    flags);
				return 1;
			}
			r->scan = avail;
		}
		if (r->eof) {
			if (avail == 0)
				return 0;
			reader_take(r, avail, 0, line, len, flags);
			return 1;
		}
		if (reader_make_room(r) < 0)
			return -1;
		if (r->before_read)
			r->before_read(r->before_read_arg);
		ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
		if (n < 0)
			return -1;
		if (n == 0)
			r->eof = 1;
		r->end += (size_t)n;
	}
}

void ev_reader_set_before_read(ev_reader *r, void (*fn)(void *arg), void *arg)
{
	r->before_read = fn;
	r->before_read_arg = arg;
}

size_t ev_reader_buffered(const ev_reader *r)
{
	return r->end - r->start;
}

int ev_reader_fd(const ev_reader *r)
{
	return r->fd;
}

uint64_t ev_reader_lines(const ev_reader *r)
{
	return r->lines;
}

uint64_t ev_reader_bytes(const ev_reader *r)
{
	return r->bytes;
}

struct ev_writer {
	int fd;
	int failed; /* errno of the first failure */
	char *buf;
	size_t cap;
	size_t len;
	uint64_t lines;
	uint64_t bytes;
	uint64_t blocked_ns;
	int (*tick)(void *arg); /* while a write waits (ev_writer_set_tick) */
	void *tick_arg;
	int tick_ms;
	int restore_flags; /* fd's flags before it was made non-blocking, or -1 */
};

ev_writer *ev_writer_new(int fd, size_t bufsize)
{
	ev_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->fd = fd;
	w->restore_flags = -1;
	w->cap = bufsize ? bufsize : 64 * 1024;
	w->buf = malloc(w->cap);
	if (!w->buf) {
		free(w);
		return NULL;
	}
	return w;
}

int ev_writer_free(ev_writer *w)
{
	if (!w)
		return 0;
	int rc = ev_writer_flush(w);
	int saved = errno;
	if (w->restore_flags >= 0)
		fcntl(w->fd, F_SETFL, w->restore_flags);
	free(w->buf);
	free(w);
	errno = saved;
	return rc;
}

static int writer_write_all(ev_writer *w, const char *p, size_t n)
{
	if (w->failed) {
		errno = w->failed;
		return -1;
	}
	uint64_t t0 = ev_mono_ns(), ticked = t0;
	while (n > 0) {
		ssize_t k = write(w->fd, p, n);
		if (k < 0 && w->tick && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = {w->fd, POLLOUT, 0};
			poll(&pfd, 1, w->tick_ms); /* EINTR or not: the clock decides */
			uint64_t now = ev_mono_ns();
			if (now - ticked < (uint64_t)w->tick_ms * 1000000u)
				continue;
			w->blocked_ns += now - t0;
			t0 = ticked = now;
			if (w->tick(w->tick_arg) < 0) {
				w->failed = errno = ECANCELED;
				return -1;
			}
			continue;
		}
		if (k < 0) {
			if (errno == EINTR)
				continue;
			w->failed = errno;
			w->blocked_ns += ev_mono_ns() - t0;
			return -1;
		}
		p += k;
		n -= (size_t)k;
	}
	w->blocked_ns += ev_mono_ns() - t0;
	return 0;
}

int ev_writer_set_tick(ev_writer *w, int (*fn)(void *arg), void *arg, int interval_ms)
{
	struct stat st;
	if (fstat(w->fd, &st) < 0)
		return -1;
	if (!S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode))
		return 0;
	int flags = fcntl(w->fd, F_GETFL);
	if (flags < 0 || (!(flags & O_NONBLOCK) && fcntl(w->fd, F_SETFL, flags | O_NONBLOCK) < 0))
		return -1;
	if (!(flags & O_NONBLOCK))
		w->restore_flags = flags;
	w->tick = fn;
	w->tick_arg = arg;
	w->tick_ms = interval_ms > 0 ? interval_ms : 1;
	return 0;
}

int ev_writer_flush(ev_writer *w)
{
	if (w->len == 0)
		return w->failed ? (errno = w->failed, -1) : 0;
	int rc = writer_write_all(w, w->buf, w->len);
	w->len = 0;
	return rc;
}

int ev_writer_write(ev_writer *w, const void *data, size_t len)
{
	w->bytes += len;
	if (w->len + len <= w->cap) {
		memcpy(w->buf + w->len, data, len);
		w->len += len;
		return 0;
	}
	if (ev_writer_flush(w) < 0)
		return -1;
	if (len >= w->cap)
		return writer_write_all(w, data, len);
	memcpy(w->buf, data, len);
	w->len = len;
	return 0;
}

int ev_writer_line(ev_writer *w, const void *data, size_t len)
{
	w->lines++;
	if (w->len + len + 1 <= w->cap) {
		memcpy(w->buf + w->len, data, len);
		w->buf[w->len + len] = '\n';
		w->len += len + 1;
		w->bytes += len + 1;
		return 0;
	}
	if (ev_writer_write(w, data, len) < 0)
		return -1;
	return ev_writer_write(w, "\n", 1);
}

size_t ev_writer_pending(const ev_writer *w)
{
	return w->len;
}

uint64_t ev_writer_lines(const ev_writer *w)
{
	return w->lines;
}

uint64_t ev_writer_bytes(const ev_writer *w)
{
	return w->bytes;
}

uint64_t ev_writer_blocked_ns(const ev_writer *w)
{
	return w->blocked_ns;
}
