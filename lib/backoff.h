/* SPDX-License-Identifier: Apache-2.0 */
/* backoff.h: exponential backoff with jitter, for retrying a failing server. */
#ifndef EV_BACKOFF_H
#define EV_BACKOFF_H

#include <stdint.h>

typedef struct ev_backoff {
	int64_t min_ms, max_ms;
	int64_t ceiling_ms; /* the next delay's upper bound: min_ms, doubled after each delay */
	uint64_t rng;
} ev_backoff;

/* Delays that start near min_ms and double up to max_ms; seed makes the jitter differ
 * between processes (e.g. the pid and the time). */
void ev_backoff_init(ev_backoff *b, int64_t min_ms, int64_t max_ms, uint64_t seed);
/* The delay before the next attempt: uniform in [c/2, c], c the current ceiling ("equal
 * jitter": never a burst of near-zero delays, and clients that failed together spread out). */
int64_t ev_backoff_next(ev_backoff *b);
/* After a success: the next failure starts again from min_ms. */
void ev_backoff_reset(ev_backoff *b);

/* A request retried while it fails with what may pass later, for up to budget_ms from its
 * first failure: one rule for every server (ClickHouse, S3). The budget runs from the first
 * failure, so that a long transfer that fails near its end is still retried. */
typedef struct ev_retry {
	ev_backoff *backoff;
	int64_t budget_ms;
	uint64_t give_up_ns; /* ev_mono_ns; 0 until the first failure */
} ev_retry;

/* Before the first attempt of a request, with the backoff whose delays it waits. */
void ev_retry_begin(ev_retry *r, ev_backoff *b, int64_t budget_ms);
/* After an attempt that failed with what may pass later: 1 with the delay before the next
 * attempt in *delay_ms (the backoff's, cut to what is left of the budget, so that the last
 * attempt comes at its end), or 0 when the budget is spent. Sleep with ev_sleep_ms
 * (lib/clock.h), which a shutdown signal cuts short. */
int ev_retry_next(ev_retry *r, int64_t *delay_ms);
/* 1 once an attempt failed (ev_retry_next was called), else 0. */
int ev_retry_failing(const ev_retry *r);

/* A libcurl transfer error (a CURLcode) that retrying cannot cure: a bad URL or protocol, TLS
 * and certificate problems, refused credentials, out of memory. */
int ev_backoff_curl_fatal(int curl_code);

#endif
