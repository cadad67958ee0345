/* SPDX-License-Identifier: Apache-2.0 */
/* test_ndjson.c: the line reader (long, partial, CRLF lines) and the measuring writer. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ndjson.h"
#include "test.h"

struct feed {
	int fd;
	const char *data;
	size_t len;
	size_t chunk;
};

/* Write data to a pipe in small chunks from another thread, so that lines straddle reads. */
static void *feeder(void *arg)
{
	struct feed *f = arg;
	for (size_t off = 0; off < f->len; off += f->chunk) {
		size_t n = f->len - off < f->chunk ? f->len - off : f->chunk;
		if (write(f->fd, f->data + off, n) != (ssize_t)n)
			break;
	}
	close(f->fd);
	return NULL;
}

static ev_reader *reader_on(const char *data, size_t len, size_t chunk, size_t max, pthread_t *t,
			    struct feed *f)
{
	int p[2];
	if (pipe(p) < 0)
		abort();
	f->fd = p[1];
	f->data = data;
	f->len = len;
	f->chunk = chunk;
	pthread_create(t, NULL, feeder, f);
	return ev_reader_new(p[0], max);
}

static void test_lines(void)
{
	const char in[] = "a\r\n\nbb\nlast";
	pthread_t t;
	struct feed f;
	ev_reader *r = reader_on(in, sizeof(in) - 1, 1, 0, &t, &f);
	char *line;
	size_t len;
	int flags;
	CHECK(ev_reader_next(r, &line, &len, &flags) == 1);
	CHECK(len == 1 && line[0] == 'a' && flags == EV_LINE_CRLF);
	CHECK(ev_reader_next(r, &line, &len, &flags) == 1);
	CHECK(len == 0 && flags == 0);
	CHECK(ev_reader_next(r, &line, &len, &flags) == 1);
	CHECK_STR(line, "bb");
	CHECK(ev_reader_next(r, &line, &len, &flags) == 1);
	CHECK_STR(line, "last");
	CHECK(flags == EV_LINE_NO_NEWLINE);
	CHECK(ev_reader_next(r, &line, &len, &flags) == 0);
	CHECK(ev_reader_lines(r) == 4);
	CHECK(ev_reader_bytes(r) == sizeof(in) - 1);
	pthread_join(t, NULL);
	close(ev_reader_fd(r));
	ev_reader_free(r);
}

static void test_long_line(void)
{
	size_t n = 3 * 1024 * 1024 + 17;
	char *in = malloc(n + 3);
	for (size_t i = 0; i < n; i++)
		in[i] = (char)('a' + i % 26);
	in[n] = '\n';
	in[n + 1] = 'z';
	in[n + 2] = '\n';
	pthread_t t;
	struct feed f;
	ev_reader *r = reader_on(in, n + 3, 4096, 1 << 20, &t, &f);
	char *line;
	size_t len;
	int flags;
	CHECK(ev_reader_next(r, &line, &len, &flags) == 1);
	CHECK(len == n);
	CHECK(flags & EV_LINE_TOO_LONG);
	CHECK(memcmp(line, in, n) == 0);
	CHECK(ev_reader_next(r, &line, &len, &flags) == 1);
	CHECK(len == 1 && line[0] == 'z' && flags == 0);
	CHECK(ev_reader_next(r, &line, &len, &flags) == 0);
	pthread_join(t, NULL);
	close(ev_reader_fd(r));
	ev_reader_free(r);
	free(in);
}

static void test_nul_bytes(void)
{
	const char in[] = "a\0b\n";
	pthread_t t;
	struct feed f;
	ev_reader *r = reader_on(in, sizeof(in) - 1, 64, 0, &t, &f);
	char *line;
	size_t len;
	int flags;
	CHECK(ev_reader_next(r, &line, &len, &flags) == 1);
	CHECK(len == 3 && line[1] == '\0' && line[2] == 'b');
	pthread_join(t, NULL);
	close(ev_reader_fd(r));
	ev_reader_free(r);
}

static void test_writer(void)
{
	char path[] = "/tmp/evpipe-test-XXXXXX";
	int fd = mkstemp(path);
	ev_writer *w = ev_writer_new(fd, 16);
	CHECK(ev_writer_line(w, "hello", 5) == 0);
	CHECK(ev_writer_line(w, "a line longer than the buffer", 29) == 0);
	CHECK(ev_writer_write(w, "x", 1) == 0);
	CHECK(ev_writer_lines(w) == 2);
	CHECK(ev_writer_bytes(w) == 6 + 30 + 1);
	CHECK(ev_writer_free(w) == 0);
	char got[64] = {0};
	CHECK(pread(fd, got, sizeof(got) - 1, 0) == 37);
	CHECK_STR(got, "hello\na line longer than the buffer\nx");
	close(fd);
	unlink(path);
}

static void test_writer_failure(void)
{
	int p[2];
	if (pipe(p) < 0)
		abort();
	close(p[0]);
	signal(SIGPIPE, SIG_IGN);
	ev_writer *w = ev_writer_new(p[1], 16);
	CHECK(ev_writer_line(w, "x", 1) == 0);
	CHECK(ev_writer_flush(w) < 0 && errno == EPIPE);
	CHECK(ev_writer_flush(w) < 0); /* stays failed */
	ev_writer_free(w);
	close(p[1]);
}

static void test_backpressure(void)
{
	/* A reader that starts late: the writer blocks on the full pipe, and that is measured. */
	int p[2];
	if (pipe(p) < 0)
		abort();
	fcntl(p[1], F_SETPIPE_SZ, 4096);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[1]);
		usleep(200 * 1000);
		char buf[4096];
		while (read(p[0], buf, sizeof(buf)) > 0)
			;
		_exit(0);
	}
	close(p[0]);
	ev_writer *w = ev_writer_new(p[1], 4096);
	char line[100];
	memset(line, 'x', sizeof(line));
	for (int i = 0; i < 2000; i++)
		ev_writer_line(w, line, sizeof(line));
	CHECK(ev_writer_flush(w) == 0);
	CHECK(ev_writer_blocked_ns(w) > 100u * 1000 * 1000);
	ev_writer_free(w);
	close(p[1]);
	waitpid(pid, NULL, 0);
}

static int ticks;

/* Give up at the third tick. */
static int count_ticks(void *arg)
{
	(void)arg;
	return ++ticks < 3 ? 0 : -1;
}

/* A write into a pipe nobody reads: the tick runs while it waits, the blocked time grows
 * with each tick, and a tick's -1 ends the write (and the writer) with ECANCELED. */
static void test_tick_while_blocked(void)
{
	int fds[2];
	CHECK(pipe(fds) == 0);
	ev_writer *w = ev_writer_new(fds[1], 4096);
	CHECK(ev_writer_set_tick(w, count_ticks, NULL, 20) == 0);
	CHECK(fcntl(fds[1], F_GETFL) & O_NONBLOCK);
	char chunk[4096];
	memset(chunk, 'x', sizeof(chunk));
	int rc = 0;
	for (int i = 0; i < 1000 && rc == 0; i++)
		rc = ev_writer_write(w, chunk, sizeof(chunk));
	CHECK(rc < 0 && errno == ECANCELED);
	CHECK(ticks == 3);
	CHECK(ev_writer_blocked_ns(w) >= 50000000u); /* three ticks 20 ms apart */
	CHECK(ev_writer_flush(w) < 0 && errno == ECANCELED);
	ev_writer_free(w);
	CHECK(!(fcntl(fds[1], F_GETFL) & O_NONBLOCK)); /* as it was */
	close(fds[0]);
	close(fds[1]);

	/* a file: no ticks, writes as before */
	FILE *f = tmpfile();
	w = ev_writer_new(fileno(f), 0);
	CHECK(ev_writer_set_tick(w, count_ticks, NULL, 20) == 0);
	CHECK(!(fcntl(fileno(f), F_GETFL) & O_NONBLOCK));
	CHECK(ev_writer_line(w, "{}", 2) == 0 && ev_writer_free(w) == 0);
	fclose(f);
}

int main(void)
{
	RUN(test_lines);
	RUN(test_long_line);
	RUN(test_nul_bytes);
	RUN(test_writer);
	RUN(test_writer_failure);
	RUN(test_backpressure);
	RUN(test_tick_while_blocked);
	return test_report();
}
