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

/* A libcurl transfer error (a CURLcode) that retrying cannot cure: a bad URL or protocol, TLS
 * and certificate problems, refused credentials, out of memory. */
int ev_backoff_curl_fatal(int curl_code);

#endif
