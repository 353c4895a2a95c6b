/*-------------------------------------------------------------------------
 *
 * distance.c
 *	  Distance kernels over float4 arrays: squared L2, inner product, L1 and
 *	  cosine, each as a portable scalar version and (on x86-64) an AVX2+FMA
 *	  version, plus the run-time dispatch between them.
 *
 * This file is plain C with no PostgreSQL headers so that the standalone
 * kernel test (test/kernels/) can compile it on its own.  The AVX2 code is
 * compiled per function with a target attribute; the rest of the library
 * stays generic x86-64 and DistanceInit() only selects the AVX2 versions
 * when the CPU reports both AVX2 and FMA.
 *
 *-------------------------------------------------------------------------
 */
#include <math.h>
#include <stddef.h>

#include "distance.h"
#include "halfdistance.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define DISTANCE_HAVE_AVX2 1
#endif

/*
 * Dispatched kernels.  They start out pointing at the scalar versions so
 * that they are usable even before DistanceInit() has run.
 */
DistanceKernel DistL2Squared = DistL2SquaredScalar;
DistanceKernel DistInnerProduct = DistInnerProductScalar;
DistanceKernel DistL1 = DistL1Scalar;
CosineKernel DistCosine = DistCosineScalar;
BoundedKernel DistL2SquaredBounded = DistL2SquaredBoundedScalar;
BoundedKernel DistL1Bounded = DistL1BoundedScalar;

/*
 * How often a bounded kernel compares its partial sum with the bound: a
 * multiple of the AVX2 loop's 32 floats, and rarely enough that the
 * comparisons cost nothing next to the loads.
 */
#define BOUND_STRIDE	256

/* Turn a.b, |a|^2 and |b|^2 into a cosine distance clamped to [0, 2] */
double
DistCosineFromSums(float ab, float aa, float bb)
{
	double		similarity;

	if (aa == 0.0f || bb == 0.0f)
		return NAN;

	similarity = (double) ab / sqrt((double) aa * (double) bb);

	/* Rounding can push the similarity a little outside [-1, 1] */
	if (similarity > 1.0)
		similarity = 1.0;
	else if (similarity < -1.0)
		similarity = -1.0;

	return 1.0 - similarity;
}

/*
 * The three one-sum kernels share their loops; only the step that adds
 * one pair's term to the sum differs.  A macro writes each loop once, for
 * the scalar versions here and the AVX2 ones below.
 */
#define STEP_L2(sum, x, y)	do { float d_ = (x) - (y); (sum) += d_ * d_; } while (0)
#define STEP_IP(sum, x, y)	((sum) += (x) * (y))
#define STEP_L1(sum, x, y)	((sum) += fabsf((x) - (y)))

#define SCALAR_KERNEL(name, step) \
float \
name(const float *a, const float *b, int dim) \
{ \
	float		sum = 0.0f; \
\
	for (int i = 0; i < dim; i++) \
		step(sum, a[i], b[i]); \
	return sum; \
}

/*
 * The bounded scalar kernels add the terms in the same order as the plain
 * ones, so a sum run to its end is the plain kernel's bit for bit; terms
 * are never negative and rounding is monotonic, so a partial sum above the
 * bound means the full sum is above it too.
 */
#define SCALAR_BOUNDED_KERNEL(name, step) \
float \
name(const float *a, const float *b, int dim, float bound) \
{ \
	float		sum = 0.0f; \
	int			i = 0; \
\
	while (i < dim) \
	{ \
		int			end = dim - i > BOUND_STRIDE ? i + BOUND_STRIDE : dim; \
\
		for (; i < end; i++) \
			step(sum, a[i], b[i]); \
		if (sum > bound) \
			break; \
	} \
	return sum; \
}

/* sum (a[i] - b[i])^2, sum a[i] * b[i], sum |a[i] - b[i]| */
SCALAR_KERNEL(DistL2SquaredScalar, STEP_L2)
SCALAR_KERNEL(DistInnerProductScalar, STEP_IP)
SCALAR_KERNEL(DistL1Scalar, STEP_L1)
SCALAR_BOUNDED_KERNEL(DistL2SquaredBoundedScalar, STEP_L2)
SCALAR_BOUNDED_KERNEL(DistL1BoundedScalar, STEP_L1)

/* Scalar cosine distance: a.b, |a|^2 and |b|^2 in one pass */
double
DistCosineScalar(const float *a, const float *b, int dim)
{
	float		ab = 0.0f;
	float		aa = 0.0f;
	float		bb = 0.0f;

	for (int i = 0; i < dim; i++)
	{
		ab += a[i] * b[i];
		aa += a[i] * a[i];
		bb += b[i] * b[i];
	}
	return DistCosineFromSums(ab, aa, bb);
}

#ifdef DISTANCE_HAVE_AVX2

/* Add up the eight lanes of an AVX register */
__attribute__((target("avx2,fma")))
static inline float
hsum256(__m256 v)
{
	__m128		lo = _mm256_castps256_ps128(v);
	__m128		hi = _mm256_extractf128_ps(v, 1);
	__m128		s = _mm_add_ps(lo, hi);

	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

#define VSTEP_L2(acc, x, y) \
	do { __m256 d_ = _mm256_sub_ps((x), (y)); (acc) = _mm256_fmadd_ps(d_, d_, (acc)); } while (0)
#define VSTEP_IP(acc, x, y)	((acc) = _mm256_fmadd_ps((x), (y), (acc)))
/* clearing the sign bit gives the absolute value */
#define VSTEP_L1(acc, x, y) \
	((acc) = _mm256_add_ps((acc), _mm256_and_ps(_mm256_sub_ps((x), (y)), \
		_mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)))))

/* The four accumulators summed, in the one order both kinds of kernel use */
__attribute__((target("avx2,fma")))
static inline float
hsum4x256(__m256 acc0, __m256 acc1, __m256 acc2, __m256 acc3)
{
	return hsum256(_mm256_add_ps(_mm256_add_ps(acc0, acc1),
								 _mm256_add_ps(acc2, acc3)));
}

/*
 * AVX2+FMA one-sum kernels: four accumulators, then eight at a time, scalar
 * tail.  The bounded ones run the same loop and, every BOUND_STRIDE floats,
 * return the accumulators' sum if it is already above the bound; see the
 * scalar versions for why that is a lower bound of the result.
 */
#define AVX2_LOOP(vstep, step, check) \
	__m256		acc0 = _mm256_setzero_ps(); \
	__m256		acc1 = _mm256_setzero_ps(); \
	__m256		acc2 = _mm256_setzero_ps(); \
	__m256		acc3 = _mm256_setzero_ps(); \
	float		sum; \
	int			i = 0; \
\
	for (; i + 32 <= dim; i += 32) \
	{ \
		vstep(acc0, _mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)); \
		vstep(acc1, _mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8)); \
		vstep(acc2, _mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16)); \
		vstep(acc3, _mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24)); \
		check; \
	} \
	for (; i + 8 <= dim; i += 8) \
		vstep(acc0, _mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)); \
\
	sum = hsum4x256(acc0, acc1, acc2, acc3); \
\
	for (; i < dim; i++) \
		step(sum, a[i], b[i]); \
	return sum;

#define AVX2_BOUND_CHECK \
	if ((i + 32) % BOUND_STRIDE == 0) \
	{ \
		float		partial_ = hsum4x256(acc0, acc1, acc2, acc3); \
\
		if (partial_ > bound) \
			return partial_; \
	}

#define AVX2_KERNEL(name, vstep, step) \
__attribute__((target("avx2,fma"))) \
static float \
name(const float *a, const float *b, int dim) \
{ \
	AVX2_LOOP(vstep, step, (void) 0) \
}

#define AVX2_BOUNDED_KERNEL(name, vstep, step) \
__attribute__((target("avx2,fma"))) \
static float \
name(const float *a, const float *b, int dim, float bound) \
{ \
	AVX2_LOOP(vstep, step, AVX2_BOUND_CHECK) \
}

AVX2_KERNEL(DistL2SquaredAvx2, VSTEP_L2, STEP_L2)
AVX2_KERNEL(DistInnerProductAvx2, VSTEP_IP, STEP_IP)
AVX2_KERNEL(DistL1Avx2, VSTEP_L1, STEP_L1)
AVX2_BOUNDED_KERNEL(DistL2SquaredBoundedAvx2, VSTEP_L2, STEP_L2)
AVX2_BOUNDED_KERNEL(DistL1BoundedAvx2, VSTEP_L1, STEP_L1)

/* AVX2+FMA cosine distance: two accumulators per sum, scalar tail */
__attribute__((target("avx2,fma")))
static double
DistCosineAvx2(const float *a, const float *b, int dim)
{
	__m256		ab0 = _mm256_setzero_ps();
	__m256		ab1 = _mm256_setzero_ps();
	__m256		aa0 = _mm256_setzero_ps();
	__m256		aa1 = _mm256_setzero_ps();
	__m256		bb0 = _mm256_setzero_ps();
	__m256		bb1 = _mm256_setzero_ps();
	float		ab;
	float		aa;
	float		bb;
	int			i = 0;

	for (; i + 16 <= dim; i += 16)
	{
		__m256		a0 = _mm256_loadu_ps(a + i);
		__m256		b0 = _mm256_loadu_ps(b + i);
		__m256		a1 = _mm256_loadu_ps(a + i + 8);
		__m256		b1 = _mm256_loadu_ps(b + i + 8);

		ab0 = _mm256_fmadd_ps(a0, b0, ab0);
		aa0 = _mm256_fmadd_ps(a0, a0, aa0);
		bb0 = _mm256_fmadd_ps(b0, b0, bb0);
		ab1 = _mm256_fmadd_ps(a1, b1, ab1);
		aa1 = _mm256_fmadd_ps(a1, a1, aa1);
		bb1 = _mm256_fmadd_ps(b1, b1, bb1);
	}
	for (; i + 8 <= dim; i += 8)
	{
		__m256		a0 = _mm256_loadu_ps(a + i);
		__m256		b0 = _mm256_loadu_ps(b + i);

		ab0 = _mm256_fmadd_ps(a0, b0, ab0);
		aa0 = _mm256_fmadd_ps(a0, a0, aa0);
		bb0 = _mm256_fmadd_ps(b0, b0, bb0);
	}

	ab = hsum256(_mm256_add_ps(ab0, ab1));
	aa = hsum256(_mm256_add_ps(aa0, aa1));
	bb = hsum256(_mm256_add_ps(bb0, bb1));

	for (; i < dim; i++)
	{
		ab += a[i] * b[i];
		aa += a[i] * a[i];
		bb += b[i] * b[i];
	}
	return DistCosineFromSums(ab, aa, bb);
}

#endif							/* DISTANCE_HAVE_AVX2 */

/* The bounded version of a dispatched kernel, or NULL if it has none */
BoundedKernel
DistBoundedKernel(DistanceKernel kernel)
{
	if (kernel == DistL2Squared)
		return DistL2SquaredBounded;
	if (kernel == DistL1)
		return DistL1Bounded;
	return NULL;
}

/*
 * Point the dispatched kernels at the best versions this CPU can run (the
 * halfvec and bit kernels of halfdistance.c too)
 */
const char *
DistanceInit(void)
{
	HalfDistanceInit();

#ifdef DISTANCE_HAVE_AVX2
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
	{
		DistL2Squared = DistL2SquaredAvx2;
		DistInnerProduct = DistInnerProductAvx2;
		DistL1 = DistL1Avx2;
		DistCosine = DistCosineAvx2;
		DistL2SquaredBounded = DistL2SquaredBoundedAvx2;
		DistL1Bounded = DistL1BoundedAvx2;
		return "avx2+fma";
	}
#endif

	DistL2Squared = DistL2SquaredScalar;
	DistInnerProduct = DistInnerProductScalar;
	DistL1 = DistL1Scalar;
	DistCosine = DistCosineScalar;
	DistL2SquaredBounded = DistL2SquaredBoundedScalar;
	DistL1Bounded = DistL1BoundedScalar;
	return "scalar";
}
