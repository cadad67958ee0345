/* SPDX-License-Identifier: Apache-2.0 */
/* test_rng.c: the generator's outputs are the published algorithms', on every machine. */
#include <stdint.h>

#include "rng.h"
#include "test.h"

static void test_splitmix64(void)
{
	/* The first outputs of splitmix64 from seed 0, as in its reference implementation. */
	uint64_t x = 0;
	CHECK(ev_splitmix64(&x) == UINT64_C(0xe220a8397b1dcdaf));
	CHECK(ev_splitmix64(&x) == UINT64_C(0x6e789e6aa1b965f4));
	CHECK(ev_splitmix64(&x) == UINT64_C(0x06c45d188009454f));
}

static void test_xoshiro(void)
{
	/* Computed by an independent implementation (Python integers) of the same algorithms. */
	ev_rng r;
	ev_rng_seed(&r, 42);
	CHECK(ev_rng_next(&r) == UINT64_C(0x15780b2e0c2ec716));
	CHECK(ev_rng_next(&r) == UINT64_C(0x6104d9866d113a7e));
	CHECK(ev_rng_next(&r) == UINT64_C(0xae17533239e499a1));
	ev_rng_seed(&r, 42);
	const uint64_t want[] = {83, 378, 680, 924, 991};
	for (int i = 0; i < 5; i++)
		CHECK(ev_rng_below(&r, 1000) == want[i]);
}

static void test_chance(void)
{
	ev_rng r;
	ev_rng_seed(&r, 7);
	CHECK(ev_rng_threshold(0) == 0 && ev_rng_threshold(-1) == 0);
	CHECK(ev_rng_threshold(1) == UINT64_C(1) << 53 && ev_rng_threshold(2) == UINT64_C(1) << 53);
	uint64_t t = ev_rng_threshold(0.05), hits = 0, never = 0, always = 0;
	for (int i = 0; i < 100000; i++) {
		hits += (uint64_t)ev_rng_chance(&r, t);
		never += (uint64_t)ev_rng_chance(&r, 0);
		always += (uint64_t)ev_rng_chance(&r, ev_rng_threshold(1));
	}
	CHECK(hits > 4700 && hits < 5300);
	CHECK(never == 0 && always == 100000);
}

int main(void)
{
	RUN(test_splitmix64);
	RUN(test_xoshiro);
	RUN(test_chance);
	return test_report();
}
