/* SPDX-License-Identifier: Apache-2.0 */
/* rng.h: a small deterministic pseudo-random generator (splitmix64 seeding xoshiro256**). */
#ifndef EV_RNG_H
#define EV_RNG_H

#include <stdint.h>

/* xoshiro256** (Blackman and Vigna), its state filled from the seed by splitmix64 as its
 * authors advise: the same seed gives the same sequence on every machine and compiler. */
typedef struct ev_rng {
	uint64_t s[4];
} ev_rng;

/* One step of splitmix64: advances *x and returns the next output. */
uint64_t ev_splitmix64(uint64_t *x);
void ev_rng_seed(ev_rng *r, uint64_t seed);

static inline uint64_t ev_rng_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* The next 64 random bits. */
static inline uint64_t ev_rng_next(ev_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = ev_rng_rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = ev_rng_rotl(s[3], 45);
	return result;
}

/* A number in [0, n) for n > 0 (Lemire's multiply-shift: no division, bias below 2^-64 * n). */
static inline uint64_t ev_rng_below(ev_rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)ev_rng_next(r) * n) >> 64);
}

/* A probability as a threshold for ev_rng_chance: p in [0, 1]. */
uint64_t ev_rng_threshold(double p);
/* 1 with the probability of the threshold. */
static inline int ev_rng_chance(ev_rng *r, uint64_t threshold)
{
	return (ev_rng_next(r) >> 11) < threshold;
}

#endif
