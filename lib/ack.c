/* SPDX-License-Identifier: Apache-2.0 */
/* ack.c: acknowledgements of barriers from the sinks back to kin, for runs without checkpoints. */
#include "ack.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"

#define MAX_STAGES 32
#define MAX_STAGE_NAME 128

struct ev_ack_out {
	char *path; /* NULL for fd:N */
	int fd;     /* -1 until opened */
};

struct ev_ack_in {
	int fd;
	int own;                  /* opened from a path: closed by ev_ack_in_free */
	char *stages[MAX_STAGES]; /* the expected ones, or those seen when none is expected */
	int64_t acked[MAX_STAGES];
	size_t nstages;
	int any;        /* no stage expected: the highest id of any stage completes */
	ev_buf partial; /* a line not complete yet */
	uint64_t malformed;
};

/* "fd:N": N, or -1 when spec is not of that form; -2 when it is but N is not a descriptor. */
static int spec_fd(const char *spec)
{
	char *end;
	if (strncmp(spec, "fd:", 3) != 0)
		return -1;
	long fd = strtol(spec + 3, &end, 10);
	if (spec[3] == '\0' || *end != '\0' || fd < 0 || fd > 65535)
		return -2;
	return fcntl((int)fd, F_GETFL) < 0 ? -2 : (int)fd;
}

ev_ack_out *ev_ack_out_new(const char *spec, char *err, size_t errlen)
{
	int fd = spec_fd(spec);
	if (fd == -2 || !*spec) {
		snprintf(err, errlen, "invalid acknowledgement channel '%s': want fd:N or a path",
			 spec);
		return NULL;
	}
	ev_ack_out *a = calloc(1, sizeof(*a));
	if (!a || (fd < 0 && !(a->path = strdup(spec)))) {
		free(a);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->fd = fd;
	return a;
}

void ev_ack_out_free(ev_ack_out *a)
{
	if (!a)
		return;
	if (a->path && a->fd >= 0)
		close(a->fd);
	free(a->path);
	free(a);
}

int ev_ack_send(ev_ack_out *a, const char *stage, int64_t id, char *err, size_t errlen)
{
	char line[MAX_STAGE_NAME + 32];
	const char *name = a->path ? a->path : "the acknowledgement descriptor";
	int n = snprintf(line, sizeof(line), "%s %" PRId64 "\n", stage, id);
	if (n < 0 || (size_t)n >= sizeof(line) || strlen(stage) > MAX_STAGE_NAME ||
	    strcspn(stage, " \n") != strlen(stage)) {
		snprintf(err, errlen, "stage name '%s' cannot be acknowledged", stage);
		return -1;
	}
	if (a->fd < 0) {
		/* Non-blocking open: a named pipe without a reader is ENXIO, not a hang. */
		a->fd = open(a->path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (a->fd < 0) {
			snprintf(err, errlen, "cannot open '%s': %s", a->path, strerror(errno));
			return -1;
		}
		int fl = fcntl(a->fd, F_GETFL);
		if (fl >= 0)
			fcntl(a->fd, F_SETFL, fl & ~O_NONBLOCK);
	}
	/* A reader that is gone must not kill the sink: hold SIGPIPE back for this write, and
	 * take the one it raised. */
	sigset_t pipe_set, old;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigset_t pending;
	sigpending(&pending);
	int was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	ssize_t w;
	do
		w = write(a->fd, line, (size_t)n);
	while (w < 0 && errno == EINTR);
	int saved = errno;
	if (w < 0 && saved == EPIPE && !was_pending) {
		struct timespec zero = {0, 0};
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (w != n) {
		snprintf(err, errlen, "cannot write '%s': %s", name,
			 w < 0 ? strerror(saved) : "short write");
		return -1;
	}
	return 0;
}

ev_ack_in *ev_ack_in_new(const char *spec, const char *const *expect, size_t nexpect, char *err,
			 size_t errlen)
{
	if (nexpect > MAX_STAGES) {
		snprintf(err, errlen, "at most %d stages can acknowledge", MAX_STAGES);
		return NULL;
	}
	int fd = spec_fd(spec);
	if (fd == -2 || !*spec) {
		snprintf(err, errlen, "invalid acknowledgement channel '%s': want fd:N or a path",
			 spec);
		return NULL;
	}
	int own = fd < 0;
	if (own && (fd = open(spec, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "cannot open '%s': %s", spec, strerror(errno));
		return NULL;
	}
	ev_ack_in *a = calloc(1, sizeof(*a));
	if (!a) {
		if (own)
			close(fd);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->fd = fd;
	a->own = own;
	a->any = nexpect == 0;
	for (size_t i = 0; i < nexpect; i++) {
		a->stages[i] = strdup(expect[i]);
		a->acked[i] = -1;
		a->nstages++;
		if (!a->stages[i]) {
			ev_ack_in_free(a);
			snprintf(err, errlen, "out of memory");
			return NULL;
		}
	}
	return a;
}

void ev_ack_in_free(ev_ack_in *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->nstages; i++)
		free(a->stages[i]);
	if (a->own)
		close(a->fd);
	ev_buf_free(&a->partial);
	free(a);
}

uint64_t ev_ack_malformed(const ev_ack_in *a)
{
	return a->malformed;
}

static void take_line(ev_ack_in *a, char *line)
{
	char *sp = strchr(line, ' '), *end;
	if (!sp || sp == line || sp[1] == '\0') {
		a->malformed++;
		return;
	}
	*sp = '\0';
	errno = 0;
	long long id = strtoll(sp + 1, &end, 10);
	if (*end || errno || id < 0) {
		a->malformed++;
		return;
	}
	for (size_t i = 0; i < a->nstages; i++)
		if (strcmp(a->stages[i], line) == 0) {
			if (id > a->acked[i])
				a->acked[i] = id;
			return;
		}
	if (a->any && a->nstages < MAX_STAGES && (a->stages[a->nstages] = strdup(line))) {
		a->acked[a->nstages++] = id;
	}
}

static int64_t complete_id(const ev_ack_in *a)
{
	int64_t c = -1;
	for (size_t i = 0; i < a->nstages; i++) {
		if (a->any ? a->acked[i] > c : i == 0 || a->acked[i] < c)
			c = a->acked[i];
	}
	return c;
}

int ev_ack_poll(ev_ack_in *a, int timeout_ms, int64_t *complete, char *err, size_t errlen)
{
	int state = EV_ACK_OPEN;
	/* One read per readable poll: the descriptor may be blocking (fd:N). Linux reports
	 * POLLHUP on a named pipe only once a writer has come and gone. */
	for (int wait = timeout_ms;; wait = 0) {
		struct pollfd p = {a->fd, POLLIN, 0};
		int n = poll(&p, 1, wait);
		if (n < 0 && errno == EINTR)
			break;
		if (n < 0) {
			snprintf(err, errlen, "cannot poll the acknowledgements: %s",
				 strerror(errno));
			return -1;
		}
		if (n == 0)
			break;
		char buf[4096];
		ssize_t r = read(a->fd, buf, sizeof(buf));
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			break;
		if (r < 0) {
			snprintf(err, errlen, "cannot read the acknowledgements: %s",
				 strerror(errno));
			return -1;
		}
		if (r == 0) {
			if (p.revents & POLLHUP)
				state = EV_ACK_CLOSED;
			break;
		}
		for (ssize_t i = 0; i < r; i++) {
			if (buf[i] != '\n') {
				if (a->partial.len < 256)
					ev_buf_putc(&a->partial, buf[i]);
				continue;
			}
			if (ev_buf_cstr(&a->partial))
				take_line(a, a->partial.data);
			ev_buf_reset(&a->partial);
		}
	}
	*complete = complete_id(a);
	return state;
}
