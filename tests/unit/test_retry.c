/* SPDX-License-Identifier: Apache-2.0 */
/* test_retry.c: the clocks, the sleep a shutdown signal ends, and the retry budget over the
 * backoff. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backoff.h"
#include "clock.h"
#include "test.h"
#include "tool.h"

static int64_t elapsed_ms(uint64_t t0)
{
	return (int64_t)((ev_mono_ns() - t0) / 1000000u);
}

/* A child that sends sig (0: none) to this process after ms, then exits. */
static pid_t signal_after(int ms, int sig)
{
	pid_t parent = getpid(), pid = fork();
	if (pid == 0) {
		usleep((useconds_t)ms * 1000u);
		if (sig)
			kill(parent, sig);
		_exit(0);
	}
	return pid;
}

static void test_sleep(void)
{
	uint64_t t0 = ev_mono_ns();
	CHECK(ev_sleep_ms(0) == 0 && ev_sleep_ms(-5) == 0);
	CHECK(ev_sleep_ms(40) == 0);
	CHECK(elapsed_ms(t0) >= 40);

	/* a signal without a handler (the child's SIGCHLD) does not wake it */
	pid_t pid = signal_after(20, 0);
	t0 = ev_mono_ns();
	CHECK(ev_sleep_ms(300) == 0);
	CHECK(elapsed_ms(t0) >= 300);
	waitpid(pid, NULL, 0);

	/* SIGTERM, which a tool turns into a shutdown request, ends a backoff sleep at once,
	 * so that the tool stops gracefully instead of waiting the delay out */
	ev_tool_catch_signals();
	pid = signal_after(100, SIGTERM);
	t0 = ev_mono_ns();
	CHECK(ev_sleep_ms(10000) == 1);
	CHECK(elapsed_ms(t0) < 5000);
	CHECK(ev_tool_stop_requested() == SIGTERM);
	waitpid(pid, NULL, 0);
}

/* The coarse wall clock trails the precise one by a tick at most, never leads it. */
static void test_coarse_clock(void)
{
	for (int i = 0; i < 1000; i++) {
		int64_t coarse = ev_wall_ms_coarse(), wall = ev_wall_ms();
		CHECK(coarse <= wall && wall - coarse < 50);
	}
}

static void test_retry_budget(void)
{
	ev_backoff b;
	ev_retry r;
	int64_t delay = -1;
	ev_backoff_init(&b, 10, 40, 42);

	/* no budget: the first failure is final */
	ev_retry_begin(&r, &b, 0);
	CHECK(!ev_retry_failing(&r));
	CHECK(ev_retry_next(&r, &delay) == 0 && delay == 0);
	CHECK(ev_retry_failing(&r));

	/* 200 ms from the first failure: delays within the backoff's range, the last one cut
	 * so that the last attempt comes at the end of the budget, then no more */
	ev_backoff_reset(&b);
	ev_retry_begin(&r, &b, 200);
	uint64_t t0 = ev_mono_ns();
	int retries = 0;
	while (ev_retry_next(&r, &delay)) {
		CHECK(delay >= 1 && delay <= 40);
		ev_sleep_ms(delay);
		retries++;
	}
	CHECK(retries >= 5);
	CHECK(elapsed_ms(t0) >= 200);
	CHECK(elapsed_ms(t0) < 200 + 40 + 500);
}

int main(void)
{
	RUN(test_coarse_clock);
	RUN(test_retry_budget);
	RUN(test_sleep);
	return test_report();
}
