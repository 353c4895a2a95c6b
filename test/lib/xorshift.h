/*-------------------------------------------------------------------------
 *
 * xorshift.h
 *	  The pseudo-random generator the standalone C tests share
 *	  (test/kernels/, test/floatparse/): xorshift64*, small and with the
 *	  same sequence from the same seed on every platform, so that a
 *	  failure names inputs anyone can reproduce.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TINYHNSW_TEST_XORSHIFT_H
#define TINYHNSW_TEST_XORSHIFT_H

#include <stdint.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

/* Next 64 pseudo-random bits */
static inline uint64_t
rand64(void)
{
	uint64_t	x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

#endif							/* TINYHNSW_TEST_XORSHIFT_H */
