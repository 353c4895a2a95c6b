/*-------------------------------------------------------------------------
 *
 * floatparse.h
 *	  A faster strtof() for the decimal numbers vector_in reads.
 *
 * FloatParse() has exactly strtof()'s contract: the same float (bit for
 * bit), the same end pointer and the same errno.  It converts the common
 * short decimals ("0.0251839329", "-1.23456791e-05") itself and hands
 * everything else to strtof().  Like strtof() in PostgreSQL's backend, it
 * assumes the "C" locale's decimal point and round-to-nearest.
 *
 * Plain C with no PostgreSQL headers, so that the standalone test
 * (test/floatparse/) compiles it on its own.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TINYHNSW_FLOATPARSE_H
#define TINYHNSW_FLOATPARSE_H

#include <stdbool.h>

/* strtof(s, end), faster for short decimals */
extern float FloatParse(const char *s, char **end);

/*
 * The fast path alone: returns true and sets *result and *end (if end is
 * not NULL) when it could convert s exactly as strtof() would, without
 * strtof() setting errno; returns false, touching nothing, otherwise.
 * Exported for the test, which counts how often it applies.
 */
extern bool FloatParseFast(const char *s, char **end, float *result);

#endif							/* TINYHNSW_FLOATPARSE_H */
