/* SPDX-License-Identifier: Apache-2.0 */
/* progress.c: a tool's live one-line status on stderr, drawn from its metrics registry. */
#include "progress.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "ndjson.h"

/* Rates are taken over the last second or so: RING samples of the interval apart. */
#define RING 5

struct ev_progress {
	ev_metrics *m;
	const char *prog;
	int interval_ms;
	pthread_t thread;
	pthread_mutex_t lock; /* the line on the terminal: drawing, messages */
	pthread_cond_t wake;
	int stop;
	int drawn; /* the line is on the terminal */
	char line[512];
	ev_progress_sample ring[RING];
	unsigned taken;
};

void ev_progress_sample_from(ev_progress_sum_fn *sum, void *arg, ev_progress_sample *s)
{
	memset(s, 0, sizeof(s[0]));
	s->has_in = sum(arg, "evpipe_records_in_total", NULL, &s->in) > 0;
	sum(arg, "evpipe_records_out_total", NULL, &s->out);
	s->has_dead = sum(arg, "evpipe_dead_letters_total", NULL, &s->dead) > 0;
	s->has_late =
		sum(arg, "evpipe_late_records_total", "outcome=\"dead_lettered\"", &s->late) > 0;
	sum(arg, "evpipe_output_blocked_seconds_total", NULL, &s->blocked);
	s->has_wm = sum(arg, "evpipe_watermark_lag_seconds", NULL, &s->wm_lag) > 0;
	s->ns = ev_mono_ns();
}

static int registry_sum(void *arg, const char *name, const char *labels, double *sum)
{
	return ev_metrics_sum(arg, name, labels, sum);
}

void ev_progress_sample_take(ev_metrics *m, ev_progress_sample *s)
{
	ev_progress_sample_from(registry_sum, m, s);
}

void ev_progress_human(char *buf, size_t len, double n)
{
	if (n < 1000)
		snprintf(buf, len, "%.0f", n);
	else if (n < 1e6)
		snprintf(buf, len, "%.*fk", n < 1e4 ? 2 : n < 1e5 ? 1 : 0, n / 1e3);
	else if (n < 1e9)
		snprintf(buf, len, "%.*fM", n < 1e7 ? 2 : n < 1e8 ? 1 : 0, n / 1e6);
	else
		snprintf(buf, len, "%.2fG", n / 1e9);
}

void ev_progress_lag(char *buf, size_t len, double secs)
{
	if (secs < 60)
		snprintf(buf, len, "%.1fs", secs < 0 ? 0 : secs);
	else if (secs < 3600)
		snprintf(buf, len, "%.0fm", secs / 60);
	else if (secs < 86400)
		snprintf(buf, len, "%.0fh", secs / 3600);
	else
		snprintf(buf, len, "%.0fd", secs / 86400);
}

/* Append ", name rate/s" (the first without the comma). */
static size_t rate(char *buf, size_t len, size_t at, const char *name, double then, double now,
		   double secs)
{
	char r[32];
	ev_progress_human(r, sizeof(r), secs > 0 && now > then ? (now - then) / secs : 0);
	int n = snprintf(buf + at, at < len ? len - at : 0, "%s%s %s/s", at ? " | " : "", name, r);
	return at + (n > 0 ? (size_t)n : 0);
}

void ev_progress_format(char *buf, size_t len, size_t width, const ev_progress_sample *then,
			const ev_progress_sample *now)
{
	double secs = (double)(now->ns - then->ns) / 1e9;
	char a[32], b[32];
	size_t at = 0;
	if (!len)
		return;
	buf[0] = 0;
	if (now->has_in)
		at = rate(buf, len, at, "in", then->in, now->in, secs);
	at = rate(buf, len, at, "out", then->out, now->out, secs);
	if (now->has_dead)
		at = rate(buf, len, at, "dead", then->dead, now->dead, secs);
	if (now->has_late)
		at = rate(buf, len, at, "late", then->late, now->late, secs);
	if (now->has_wm && at < len) {
		ev_progress_lag(a, sizeof(a), now->wm_lag);
		at += (size_t)snprintf(buf + at, len - at, " | wm lag %s", a);
	}
	if (at < len) {
		double blocked = secs > 0 ? (now->blocked - then->blocked) / secs : 0;
		at += (size_t)snprintf(buf + at, len - at, " | blocked %.0f%%",
				       blocked < 0   ? 0
				       : blocked > 1 ? 100
						     : blocked * 100);
	}
	ev_progress_human(a, sizeof(a), now->in);
	ev_progress_human(b, sizeof(b), now->out);
	if (at < len && now->has_in)
		snprintf(buf + at, len - at, " | %s in, %s out", a, b);
	else if (at < len)
		snprintf(buf + at, len - at, " | %s out", b);
	if (width && strlen(buf) > width)
		buf[width] = 0;
}

static size_t columns(void)
{
	struct winsize ws;
	return ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 ? ws.ws_col : 80;
}

static void put(const char *s)
{
	size_t len = strlen(s);
	while (len > 0) {
		ssize_t n = write(2, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

/* Under p->lock. */
static void draw(ev_progress *p)
{
	char out[sizeof(p->line) + 16];
	snprintf(out, sizeof(out), "\r%s\033[K", p->line);
	put(out);
	p->drawn = 1;
}

static void take_off(void *arg)
{
	ev_progress *p = arg;
	pthread_mutex_lock(&p->lock);
	if (p->drawn)
		put("\r\033[K");
}

static void draw_again(void *arg)
{
	ev_progress *p = arg;
	if (p->drawn && !p->stop)
		draw(p);
	pthread_mutex_unlock(&p->lock);
}

static void *run(void *arg)
{
	ev_progress *p = arg;
	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += (long)(p->interval_ms % 1000) * 1000000L;
		until.tv_sec += p->interval_ms / 1000 + until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (!p->stop && pthread_cond_timedwait(&p->wake, &p->lock, &until) != ETIMEDOUT)
			;
		if (p->stop)
			break;
		ev_progress_sample *now = &p->ring[p->taken % RING];
		ev_progress_sample_take(p->m, now);
		const ev_progress_sample *then =
			&p->ring[p->taken >= RING - 1 ? (p->taken + 1) % RING : 0];
		p->taken++;
		size_t prefix = strlen(p->prog) + 2;
		size_t width = columns() - 1;
		int n = snprintf(p->line, sizeof(p->line), "%s: ", p->prog);
		ev_progress_format(p->line + n, sizeof(p->line) - (size_t)n,
				   width > prefix ? width - prefix : 1, then, now);
		draw(p);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

ev_progress *ev_progress_start(ev_metrics *m, const char *prog, int interval_ms)
{
	ev_progress *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->m = m;
	p->prog = prog;
	p->interval_ms = interval_ms < 100 ? 100 : interval_ms;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->wake, &ca);
	pthread_condattr_destroy(&ca);
	ev_progress_sample_take(m, &p->ring[0]);
	p->taken = 1;
	/* The tool's signals (a shutdown request, SIGPIPE) go to its own threads, never here. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&p->thread, NULL, run, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		pthread_cond_destroy(&p->wake);
		pthread_mutex_destroy(&p->lock);
		free(p);
		return NULL;
	}
	ev_log_set_status(take_off, draw_again, p);
	return p;
}

void ev_progress_stop(ev_progress *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	ev_log_set_status(NULL, NULL, NULL);
	if (p->drawn)
		put("\r\033[K");
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
