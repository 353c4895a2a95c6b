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
 * bound and at most the plain result, for bounds on both sides.  It prints
 * the kernel set DistanceInit() chose, a final line
 * "kernels: N passed, N failed", and exits non-zero if anything failed.
 *
 *-------------------------------------------------------------------------
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "distance.h"
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
	printf("kernel set: %s\n", chosen);

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

	free(abuf);
	free(bbuf);
	printf("kernels: %d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
