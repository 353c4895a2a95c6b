/*-------------------------------------------------------------------------
 *
 * float16.h
 *	  IEEE 754 binary16 (half precision) values stored as uint16_t, and the
 *	  portable conversions between them and float.
 *
 * The conversions are exact where the value is representable, round to
 * nearest even otherwise, and give infinity past the largest half (65504:
 * anything from 65520 up rounds there); subnormal halves are kept.  They
 * are what F16C's vcvtps2ph / vcvtph2ps do, bit for bit, which
 * test/kernels checks.
 *
 * Plain C with no PostgreSQL headers, so that the standalone kernel test
 * compiles it on its own.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TINYHNSW_FLOAT16_H
#define TINYHNSW_FLOAT16_H

#include <stdint.h>
#include <string.h>

typedef uint16_t half;

/* The largest finite half, and the magnitude from which floats round to infinity */
#define HALF_MAX		65504.0f
#define HALF_OVERFLOW	65520.0f

/* half -> float, exactly; a NaN comes back quiet, as F16C returns it */
static inline float
HalfToFloat(half h)
{
	uint32_t	sign = (uint32_t) (h & 0x8000) << 16;
	uint32_t	exp = (h >> 10) & 0x1f;
	uint32_t	mant = h & 0x3ff;
	uint32_t	bits;
	float		f;

	if (exp == 0)
	{
		/* zero or subnormal: mant * 2^-24, exact in float */
		f = (float) mant * (1.0f / 16777216.0f);
		return sign ? -f : f;
	}
	if (exp == 31)
		bits = sign | 0x7f800000 | (mant ? 0x400000 | (mant << 13) : 0);
	else
		bits = sign | ((exp + 112) << 23) | (mant << 13);
	memcpy(&f, &bits, sizeof(f));
	return f;
}

/* float -> half, rounding to nearest even; overflow gives infinity */
static inline half
FloatToHalf(float f)
{
	uint32_t	bits;
	uint32_t	sign;
	uint32_t	absbits;

	memcpy(&bits, &f, sizeof(bits));
	sign = (bits >> 16) & 0x8000;
	absbits = bits & 0x7fffffff;

	if (absbits >= 0x7f800000)
	{
		/* infinity, or a NaN made quiet with the top of its payload */
		if (absbits == 0x7f800000)
			return sign | 0x7c00;
		return sign | 0x7e00 | ((absbits >> 13) & 0x3ff);
	}
	if (absbits >= 0x477ff000)	/* 65520 and up */
		return sign | 0x7c00;
	if (absbits >= 0x38800000)	/* normal half: 2^-14 and up */
	{
		/* round the 13 dropped bits to nearest even, then rebias 127 -> 15 */
		uint32_t	rounded = absbits + 0xfff + ((absbits >> 13) & 1);

		return sign | ((rounded - 0x38000000) >> 13);
	}
	else
	{
		/* subnormal half: a multiple of 2^-24, rounded to nearest even */
		uint32_t	exp = absbits >> 23;
		uint32_t	mant = (absbits & 0x7fffff) | 0x800000;
		uint32_t	shift;
		uint32_t	q;
		uint32_t	rem;
		uint32_t	halfway;

		if (exp < 102)			/* below 2^-25: rounds to zero */
			return sign;
		shift = 126 - exp;		/* 14 .. 24 */
		q = mant >> shift;
		rem = mant & ((1u << shift) - 1);
		halfway = 1u << (shift - 1);
		if (rem > halfway || (rem == halfway && (q & 1)))
			q++;
		return sign | q;
	}
}

#endif							/* TINYHNSW_FLOAT16_H */
