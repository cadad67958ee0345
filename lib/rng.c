/* SPDX-License-Identifier: Apache-2.0 */
/* rng.c: a small deterministic pseudo-random generator (splitmix64 seeding xoshiro256**). */
#include "rng.h"

uint64_t ev_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

void ev_rng_seed(ev_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = ev_splitmix64(&seed);
}

uint64_t ev_rng_threshold(double p)
{
	if (!(p > 0))
		return 0;
	if (p >= 1)
		return UINT64_C(1) << 53;
	/* p * 2^53 is exact for a double; the cast truncates. */
	return (uint64_t)(p * 9007199254740992.0);
}
