/* SPDX-License-Identifier: Apache-2.0 */
/* backoff.c: exponential backoff with jitter, for retrying a failing server. */
#include "backoff.h"

#include <curl/curl.h>

#include "clock.h"

void ev_backoff_init(ev_backoff *b, int64_t min_ms, int64_t max_ms, uint64_t seed)
{
	b->min_ms = min_ms > 0 ? min_ms : 1;
	b->max_ms = max_ms > b->min_ms ? max_ms : b->min_ms;
	b->ceiling_ms = b->min_ms;
	b->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

/* xorshift64*: jitter needs spread, not cryptographic quality. */
static uint64_t next_random(ev_backoff *b)
{
	b->rng ^= b->rng >> 12;
	b->rng ^= b->rng << 25;
	b->rng ^= b->rng >> 27;
	return b->rng * 0x2545f4914f6cdd1dULL;
}

int64_t ev_backoff_next(ev_backoff *b)
{
	int64_t c = b->ceiling_ms, half = c / 2;
	int64_t d = half + (int64_t)(next_random(b) % (uint64_t)(c - half + 1));
	b->ceiling_ms = c > b->max_ms / 2 ? b->max_ms : c * 2;
	return d;
}

void ev_backoff_reset(ev_backoff *b)
{
	b->ceiling_ms = b->min_ms;
}

void ev_retry_begin(ev_retry *r, ev_backoff *b, int64_t budget_ms)
{
	r->backoff = b;
	r->budget_ms = budget_ms > 0 ? budget_ms : 0;
	r->give_up_ns = 0;
}

int ev_retry_next(ev_retry *r, int64_t *delay_ms)
{
	uint64_t now = ev_mono_ns();
	*delay_ms = 0;
	if (r->give_up_ns == 0)
		r->give_up_ns = now + (uint64_t)r->budget_ms * 1000000u;
	if (now >= r->give_up_ns)
		return 0;
	int64_t delay = ev_backoff_next(r->backoff);
	int64_t left = (int64_t)((r->give_up_ns - now) / 1000000u) + 1;
	*delay_ms = delay < left ? delay : left;
	return 1;
}

int ev_retry_failing(const ev_retry *r)
{
	return r->give_up_ns != 0;
}

int ev_backoff_curl_fatal(int curl_code)
{
	switch ((CURLcode)curl_code) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_LOGIN_DENIED:
	case CURLE_OUT_OF_MEMORY: return 1;
	default: return 0;
	}
}
