/* SPDX-License-Identifier: Apache-2.0 */
/* clock.c: the clocks, and a sleep that a shutdown signal ends. */
#include "clock.h"

#include <errno.h>
#include <time.h>

uint64_t ev_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t ev_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ev_wall_ms_coarse(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_REALTIME_COARSE, &ts) < 0)
		return ev_wall_ms();
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ev_sleep_ms(int64_t ms)
{
	if (ms <= 0)
		return 0;
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	return nanosleep(&ts, NULL) < 0 && errno == EINTR ? 1 : 0;
}
