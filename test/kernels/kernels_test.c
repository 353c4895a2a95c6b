/*-------------------------------------------------------------------------
 *
 * kernels_test.c
 *	  Standalone agreement test for the distance kernels in src/distance.c.
 *
 * Build and run from the top of the tree with either
 *
 *	  make -C test/kernels check
 *
 * or by hand
 *
 *	  cc -O2 -Wall -Wextra -Isrc -Itest/lib -o /tmp/kernels_test \
 *		  test/kernels/kernels_test.c src/distance.c -lm && /tmp/kernels_test
 *
 * For every dimension 1 .. 2000, on pseudo-random data from a fixed seed
 * (and deliberately misaligned pointers), each dispatched kernel must agree
 * with its scalar version, and the scalar version with a double-precision
 * reference, within 1e-4 relative plus a small absolute epsilon.  Each
 * bounded kernel must return exactly the plain kernel's result (bit for
 * bit) when that is at most the bound, and otherwise a value above the
 * bound and at most the plain result, for bounds on both sides.
 *
 * The halfvec and bit kernels of src/halfdistance.c: the float16
 * conversions agree bit for bit with the portable ones (every half, a
 * stride through every float and the rounding edge cases, whose halves
 * are known), the float16 distances as above on random halves, and the
 * bit counts exactly with a bit-by-bit count.  It prints the kernel sets
 * DistanceInit() and HalfDistanceInit() chose, a final line
 * "kernels: N passed, N failed", and exits non-zero if anything failed.
 *
 *-------------------------------------------------------------------------
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <string.h>

#include "distance.h"
#include "halfdistance.h"
#include "xorshift.h"

#define MAX_DIM		2000
#define REL_TOL		1e-4
#define ABS_TOL		1e-6
#define COS_ABS_TOL 1e-5

static int	passed = 0;
static int	failed = 0;

/* Next pseudo-random float in [-1, 1) */
static float
rand_float(void)
{
	return (float) ((double) (rand64() >> 40) / (double) (1ULL << 23) - 1.0);
}

/* Is got within tolerance of want, given the magnitude of the summed terms? */
static int
close_enough(double got, double want, double scale, double abs_tol)
{
	if (isnan(got) || isnan(want))
		return isnan(got) && isnan(want);
	if (scale < fabs(want))
		scale = fabs(want);
	return fabs(got - want) <= REL_TOL * scale + abs_tol;
}

/* Record one check, printing the details of a failure */
static void
check(const char *what, int dim, double got, double want, double scale,
	  double abs_tol)
{
	if (close_enough(got, want, scale, abs_tol))
		passed++;
	else
	{
		failed++;
		if (failed <= 20)
			printf("FAIL %s dim=%d got=%.9g want=%.9g\n", what, dim, got, want);
	}
}

/*
 * A bounded kernel against its plain version: exact at or under the bound,
 * else a lower bound of the plain result that is above the bound.
 */
static void
check_bounded(const char *what, int dim, BoundedKernel bounded,
			  DistanceKernel plain, const float *a, const float *b)
{
	static const float fractions[] = {0.0f, 0.1f, 0.5f, 0.9f, 0.999f, 1.0f, 2.0f};
	float		full = plain(a, b, dim);

	for (int f = 0; f < (int) (sizeof(fractions) / sizeof(fractions[0])); f++)
	{
		float		bound = full * fractions[f];
		float		got = bounded(a, b, dim, bound);
		int			ok = full <= bound ? got == full : (got > bound && got <= full);

		if (ok)
			passed++;
		else
		{
			failed++;
			if (failed <= 20)
				printf("FAIL %s dim=%d bound=%.9g got=%.9g plain=%.9g\n",
					   what, dim, bound, got, full);
		}
	}
	/* no bound: the plain result, bit for bit */
	if (bounded(a, b, dim, INFINITY) == full)
		passed++;
	else
	{
		failed++;
		if (failed <= 20)
			printf("FAIL %s dim=%d unbounded got=%.9g plain=%.9g\n",
				   what, dim, bounded(a, b, dim, INFINITY), full);
	}
}

/* Check all kernels at one dimension against scalar and double references */
static void
check_dim(const float *a, const float *b, int dim)
{
	double		l2 = 0,
				ip = 0,
				ipabs = 0,
				l1 = 0,
				aa = 0,
				bb = 0;
	double		cosref;

	for (int i = 0; i < dim; i++)
	{
		double		d = (double) a[i] - (double) b[i];

		l2 += d * d;
		ip += (double) a[i] * b[i];
		ipabs += fabs((double) a[i] * b[i]);
		l1 += fabs(d);
		aa += (double) a[i] * a[i];
		bb += (double) b[i] * b[i];
	}
	if (aa == 0 || bb == 0)
		cosref = NAN;
	else
	{
		cosref = ip / sqrt(aa * bb);
		cosref = 1.0 - (cosref > 1 ? 1 : cosref < -1 ? -1 : cosref);
	}

	/* scalar against the double reference */
	check("l2sq scalar/ref", dim, DistL2SquaredScalar(a, b, dim), l2, l2, ABS_TOL);
	check("ip scalar/ref", dim, DistInnerProductScalar(a, b, dim), ip, ipabs, ABS_TOL);
	check("l1 scalar/ref", dim, DistL1Scalar(a, b, dim), l1, l1, ABS_TOL);
	check("cos scalar/ref", dim, DistCosineScalar(a, b, dim), cosref, 0, COS_ABS_TOL);

	/* dispatched against scalar */
	check("l2sq dispatched/scalar", dim, DistL2Squared(a, b, dim),
		  DistL2SquaredScalar(a, b, dim), l2, ABS_TOL);
	check("ip dispatched/scalar", dim, DistInnerProduct(a, b, dim),
		  DistInnerProductScalar(a, b, dim), ipabs, ABS_TOL);
	check("l1 dispatched/scalar", dim, DistL1(a, b, dim),
		  DistL1Scalar(a, b, dim), l1, ABS_TOL);
	check("cos dispatched/scalar", dim, DistCosine(a, b, dim),
		  DistCosineScalar(a, b, dim), 0, COS_ABS_TOL);

	/* bounded kernels against the plain ones they stand for */
	check_bounded("l2sq bounded scalar", dim, DistL2SquaredBoundedScalar,
				  DistL2SquaredScalar, a, b);
	check_bounded("l1 bounded scalar", dim, DistL1BoundedScalar,
				  DistL1Scalar, a, b);
	check_bounded("l2sq bounded dispatched", dim, DistL2SquaredBounded,
				  DistL2Squared, a, b);
	check_bounded("l1 bounded dispatched", dim, DistL1Bounded, DistL1, a, b);
	if (DistBoundedKernel(DistL2Squared) != DistL2SquaredBounded ||
		DistBoundedKernel(DistL1) != DistL1Bounded ||
		DistBoundedKernel(DistInnerProduct) != NULL)
	{
		failed++;
		printf("FAIL DistBoundedKernel dim=%d\n", dim);
	}
	else
		passed++;
}

/* Fixed cases whose answers are known exactly */
static void
check_special(void)
{
	float		zero[40] = {0};
	float		v[40];
	float		neg[40];

	for (int i = 0; i < 40; i++)
	{
		v[i] = (float) (i % 7) - 3.0f;
		neg[i] = -v[i];
	}
	for (int dim = 1; dim <= 40; dim++)
	{
		int			nonzero = 0;

		for (int i = 0; i < dim; i++)
			nonzero |= v[i] != 0.0f;

		/* a zero norm gives NaN from both versions */
		check("cos zero", dim, DistCosine(zero, v, dim), NAN, 0, 0);
		check("cos zero scalar", dim, DistCosineScalar(v, zero, dim), NAN, 0, 0);
		if (!nonzero)
			continue;
		/* identical vectors are at distance 0, opposite ones at 2 */
		check("cos same", dim, DistCosine(v, v, dim), 0.0, 0, COS_ABS_TOL);
		check("cos opposite", dim, DistCosine(v, neg, dim), 2.0, 0, COS_ABS_TOL);
		check("l2sq same", dim, DistL2Squared(v, v, dim), 0.0, 0, 0);
		check("l1 same", dim, DistL1(v, v, dim), 0.0, 0, 0);
	}
}

/* Record one exact comparison of two 32-bit patterns */
static void
check_bits(const char *what, uint32_t input, uint32_t got, uint32_t want)
{
	if (got == want)
		passed++;
	else
	{
		failed++;
		if (failed <= 20)
			printf("FAIL %s input=0x%08x got=0x%08x want=0x%08x\n",
				   what, input, got, want);
	}
}

static uint32_t
float_bits(float f)
{
	uint32_t	u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

static float
bits_float(uint32_t u)
{
	float		f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

/* The float16 conversions: dispatched against portable, and known values */
static void
check_half_conversions(void)
{
	static const struct
	{
		float		f;
		half		h;
	}			known[] = {
		{1.0f, 0x3c00}, {-2.0f, 0xc000}, {0.1f, 0x2e66}, {65504.0f, 0x7bff},
		{65519.99f, 0x7bff}, {65520.0f, 0x7c00}, {-65520.0f, 0xfc00},
		{1e10f, 0x7c00}, {0.0f, 0x0000}, {-0.0f, 0x8000},
		{5.9604645e-8f, 0x0001},	/* 2^-24, the smallest subnormal */
		{2.9802322e-8f, 0x0000},	/* 2^-25: a tie, to even (zero) */
		{2.9802326e-8f, 0x0001},	/* just above the tie */
		{8.940697e-8f, 0x0002},		/* 1.5 * 2^-24: a tie, to even (2) */
		{6.1035156e-5f, 0x0400},	/* 2^-14, the smallest normal */
		{6.0975552e-5f, 0x03ff},	/* the largest subnormal */
		{1.00048828125f, 0x3c00},	/* 1 + 2^-11: a tie, to even (1) */
		{1.00146484375f, 0x3c02},	/* 1 + 3 * 2^-11: a tie, to even */
	};
	float	   *f = malloc(sizeof(float) * 65536);
	half	   *h = malloc(sizeof(half) * 65536);
	half	   *h2 = malloc(sizeof(half) * 65536);
	int			n = 0;

	/* every half to float, and back where it is not a NaN */
	for (int i = 0; i < 65536; i++)
		h[i] = (half) i;
	HalfToFloatN(h, f, 65536);
	for (int i = 0; i < 65536; i++)
	{
		check_bits("half->float dispatched/portable", i, float_bits(f[i]),
				   float_bits(HalfToFloat((half) i)));
		if ((i & 0x7c00) != 0x7c00 || (i & 0x3ff) == 0)
			check_bits("half->float->half", i, FloatToHalf(f[i]), i);
	}

	/* a stride through every float pattern, in batches */
	for (uint64_t u = 0; u <= 0xffffffffULL; u += 4093)
	{
		f[n++] = bits_float((uint32_t) u);
		if (n == 65536 || u + 4093 > 0xffffffffULL)
		{
			FloatToHalfN(f, h, n);
			FloatToHalfNScalar(f, h2, n);
			for (int i = 0; i < n; i++)
				check_bits("float->half dispatched/portable", float_bits(f[i]),
						   h[i], h2[i]);
			n = 0;
		}
	}

	for (int i = 0; i < (int) (sizeof(known) / sizeof(known[0])); i++)
	{
		half		one;

		check_bits("float->half known", float_bits(known[i].f),
				   FloatToHalf(known[i].f), known[i].h);
		FloatToHalfN(&known[i].f, &one, 1);
		check_bits("float->half known, dispatched", float_bits(known[i].f),
				   one, known[i].h);
	}
	free(f);
	free(h);
	free(h2);
}

/* The float16 distances at every dimension, as check_dim does for float */
static void
check_half_distances(void)
{
	half	   *abuf = malloc(sizeof(half) * (MAX_DIM + 8));
	half	   *bbuf = malloc(sizeof(half) * (MAX_DIM + 8));

	for (int dim = 1; dim <= MAX_DIM; dim++)
	{
		half	   *a = abuf + (dim % 3);
		half	   *b = bbuf + (dim % 5);
		double		l2 = 0,
					ip = 0,
					ipabs = 0,
					l1 = 0,
					aa = 0,
					bb = 0;
		double		cosref;

		for (int i = 0; i < dim; i++)
		{
			double		x,
						y;

			a[i] = FloatToHalf(rand_float());
			b[i] = FloatToHalf(rand_float());
			x = HalfToFloat(a[i]);
			y = HalfToFloat(b[i]);
			l2 += (x - y) * (x - y);
			ip += x * y;
			ipabs += fabs(x * y);
			l1 += fabs(x - y);
			aa += x * x;
			bb += y * y;
		}
		cosref = ip / sqrt(aa * bb);
		cosref = 1.0 - (cosref > 1 ? 1 : cosref < -1 ? -1 : cosref);

		check("half l2sq scalar/ref", dim, HalfDistL2SquaredScalar(a, b, dim), l2, l2, ABS_TOL);
		check("half ip scalar/ref", dim, HalfDistInnerProductScalar(a, b, dim), ip, ipabs, ABS_TOL);
		check("half l1 scalar/ref", dim, HalfDistL1Scalar(a, b, dim), l1, l1, ABS_TOL);
		check("half cos scalar/ref", dim, HalfDistCosineScalar(a, b, dim), cosref, 0, COS_ABS_TOL);
		check("half l2sq dispatched/scalar", dim, HalfDistL2Squared(a, b, dim),
			  HalfDistL2SquaredScalar(a, b, dim), l2, ABS_TOL);
		check("half ip dispatched/scalar", dim, HalfDistInnerProduct(a, b, dim),
			  HalfDistInnerProductScalar(a, b, dim), ipabs, ABS_TOL);
		check("half l1 dispatched/scalar", dim, HalfDistL1(a, b, dim),
			  HalfDistL1Scalar(a, b, dim), l1, ABS_TOL);
		check("half cos dispatched/scalar", dim, HalfDistCosine(a, b, dim),
			  HalfDistCosineScalar(a, b, dim), 0, COS_ABS_TOL);
	}
	free(abuf);
	free(bbuf);
}

/* The bit counts, exactly, against a count bit by bit */
static void
check_bit_counts(void)
{
	unsigned char abuf[520];
	unsigned char bbuf[520];

	for (int nbytes = 0; nbytes <= 512; nbytes++)
	{
		unsigned char *a = abuf + (nbytes % 3);
		unsigned char *b = bbuf + (nbytes % 7);
		uint32_t	x = 0,
					and = 0,
					or = 0;

		for (int i = 0; i < nbytes; i++)
		{
			/* sparse, dense and random bytes */
			uint64_t	r = rand64();

			a[i] = (unsigned char) (nbytes % 4 == 0 ? r & (r >> 8) : r);
			b[i] = (unsigned char) (nbytes % 4 == 1 ? (r >> 16) | (r >> 24) : r >> 32);
			for (int bit = 0; bit < 8; bit++)
			{
				int			p = (a[i] >> bit) & 1;
				int			q = (b[i] >> bit) & 1;

				x += p ^ q;
				and += p & q;
				or += p | q;
			}
		}
		check_bits("xor count scalar", nbytes, (uint32_t) BitXorCountScalar(a, b, nbytes), x);
		check_bits("and count scalar", nbytes, (uint32_t) BitAndCountScalar(a, b, nbytes), and);
		check_bits("or count scalar", nbytes, (uint32_t) BitOrCountScalar(a, b, nbytes), or);
		check_bits("xor count dispatched", nbytes, (uint32_t) BitXorCount(a, b, nbytes), x);
		check_bits("and count dispatched", nbytes, (uint32_t) BitAndCount(a, b, nbytes), and);
		check_bits("or count dispatched", nbytes, (uint32_t) BitOrCount(a, b, nbytes), or);
	}
}

/* Run every check and report */
int
main(void)
{
	const char *chosen = DistanceInit();
	float	   *abuf = malloc(sizeof(float) * (MAX_DIM + 8));
	float	   *bbuf = malloc(sizeof(float) * (MAX_DIM + 8));

	if (abuf == NULL || bbuf == NULL)
	{
		fprintf(stderr, "out of memory\n");
		return 2;
	}
	printf("kernel set: %s; halfvec and bit: %s\n", chosen, HalfDistanceInit());

	for (int dim = 1; dim <= MAX_DIM; dim++)
	{
		/* misalign the two inputs differently to exercise unaligned loads */
		float	   *a = abuf + (dim % 3);
		float	   *b = bbuf + (dim % 5);

		for (int i = 0; i < dim; i++)
		{
			a[i] = rand_float();
			b[i] = rand_float();
		}
		check_dim(a, b, dim);
	}
	check_special();
	check_half_conversions();
	check_half_distances();
	check_bit_counts();

	free(abuf);
	free(bbuf);
	printf("kernels: %d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
