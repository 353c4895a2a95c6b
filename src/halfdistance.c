/*-------------------------------------------------------------------------
 *
 * halfdistance.c
 *	  The halfvec and bit kernels: float16 array conversion, float16
 *	  distances (squared L2, inner product, L1, cosine) and bit counts
 *	  (xor, and, or), each portable and, on x86-64, in SIMD, with the
 *	  run-time dispatch between them.
 *
 * Plain C with no PostgreSQL headers, like distance.c, so that the
 * standalone kernel test compiles it on its own.  The SIMD versions are
 * compiled per function with target attributes and chosen only when the
 * CPU reports the features: F16C, AVX2 and FMA for float16, POPCNT for
 * bits.
 *
 *-------------------------------------------------------------------------
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "distance.h"
#include "halfdistance.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define HALF_HAVE_SIMD 1
#endif

HalfToFloatKernel HalfToFloatN = HalfToFloatNScalar;
FloatToHalfKernel FloatToHalfN = FloatToHalfNScalar;
HalfDistanceKernel HalfDistL2Squared = HalfDistL2SquaredScalar;
HalfDistanceKernel HalfDistInnerProduct = HalfDistInnerProductScalar;
HalfDistanceKernel HalfDistL1 = HalfDistL1Scalar;
HalfCosineKernel HalfDistCosine = HalfDistCosineScalar;
BitCountKernel BitXorCount = BitXorCountScalar;
BitCountKernel BitAndCount = BitAndCountScalar;
BitCountKernel BitOrCount = BitOrCountScalar;

/* ---------------------------------------------------------------- portable */

void
HalfToFloatNScalar(const half *src, float *dst, int n)
{
	for (int i = 0; i < n; i++)
		dst[i] = HalfToFloat(src[i]);
}

void
FloatToHalfNScalar(const float *src, half *dst, int n)
{
	for (int i = 0; i < n; i++)
		dst[i] = FloatToHalf(src[i]);
}

/* One pair's term added to the sum, as in distance.c */
#define HSTEP_L2(sum, x, y)	do { float d_ = (x) - (y); (sum) += d_ * d_; } while (0)
#define HSTEP_IP(sum, x, y)	((sum) += (x) * (y))
#define HSTEP_L1(sum, x, y)	((sum) += fabsf((x) - (y)))

#define HALF_SCALAR_KERNEL(name, step) \
float \
name(const half *a, const half *b, int dim) \
{ \
	float		sum = 0.0f; \
\
	for (int i = 0; i < dim; i++) \
		step(sum, HalfToFloat(a[i]), HalfToFloat(b[i])); \
	return sum; \
}

HALF_SCALAR_KERNEL(HalfDistL2SquaredScalar, HSTEP_L2)
HALF_SCALAR_KERNEL(HalfDistInnerProductScalar, HSTEP_IP)
HALF_SCALAR_KERNEL(HalfDistL1Scalar, HSTEP_L1)

double
HalfDistCosineScalar(const half *a, const half *b, int dim)
{
	float		ab = 0.0f;
	float		aa = 0.0f;
	float		bb = 0.0f;

	for (int i = 0; i < dim; i++)
	{
		float		x = HalfToFloat(a[i]);
		float		y = HalfToFloat(b[i]);

		ab += x * y;
		aa += x * x;
		bb += y * y;
	}
	return DistCosineFromSums(ab, aa, bb);
}

/* Bits set in a 64-bit word, without a POPCNT instruction */
static inline uint64_t
popcount64(uint64_t x)
{
	x = x - ((x >> 1) & 0x5555555555555555ULL);
	x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (x * 0x0101010101010101ULL) >> 56;
}

/*
 * The bit counts: whole 8-byte words (read with memcpy: bit strings have
 * no alignment), then the remaining bytes.  A macro writes the loop once
 * for each combination and each popcount.
 */
#define BIT_COUNT_KERNEL(attr, name, op, count) \
attr \
uint64_t \
name(const unsigned char *a, const unsigned char *b, int nbytes) \
{ \
	uint64_t	sum = 0; \
	int			i = 0; \
\
	for (; i + 8 <= nbytes; i += 8) \
	{ \
		uint64_t	x; \
		uint64_t	y; \
\
		memcpy(&x, a + i, sizeof(x)); \
		memcpy(&y, b + i, sizeof(y)); \
		sum += count(x op y); \
	} \
	for (; i < nbytes; i++) \
		sum += count((uint64_t) (a[i] op b[i])); \
	return sum; \
}

BIT_COUNT_KERNEL(, BitXorCountScalar, ^, popcount64)
BIT_COUNT_KERNEL(, BitAndCountScalar, &, popcount64)
BIT_COUNT_KERNEL(, BitOrCountScalar, |, popcount64)

#ifdef HALF_HAVE_SIMD

/* ---------------------------------------------------------------- SIMD */

#define HALF_TARGET __attribute__((target("avx2,fma,f16c")))

/* Eight halves from p as floats */
#define LOAD8(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) (p)))

HALF_TARGET
static void
HalfToFloatNF16c(const half *src, float *dst, int n)
{
	int			i = 0;

	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(dst + i, LOAD8(src + i));
	for (; i < n; i++)
		dst[i] = HalfToFloat(src[i]);
}

HALF_TARGET
static void
FloatToHalfNF16c(const float *src, half *dst, int n)
{
	int			i = 0;

	for (; i + 8 <= n; i += 8)
		_mm_storeu_si128((__m128i *) (dst + i),
						 _mm256_cvtps_ph(_mm256_loadu_ps(src + i),
										 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
	for (; i < n; i++)
		dst[i] = FloatToHalf(src[i]);
}

/* Add up the eight lanes of an AVX register */
HALF_TARGET
static inline float
hsum8(__m256 v)
{
	__m128		s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));

	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

#define HVSTEP_L2(acc, x, y) \
	do { __m256 d_ = _mm256_sub_ps((x), (y)); (acc) = _mm256_fmadd_ps(d_, d_, (acc)); } while (0)
#define HVSTEP_IP(acc, x, y)	((acc) = _mm256_fmadd_ps((x), (y), (acc)))
/* clearing the sign bit gives the absolute value */
#define HVSTEP_L1(acc, x, y) \
	((acc) = _mm256_add_ps((acc), _mm256_and_ps(_mm256_sub_ps((x), (y)), \
		_mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)))))

/* Two accumulators of eight, then a scalar tail */
#define HALF_SIMD_KERNEL(name, vstep, step) \
HALF_TARGET \
static float \
name(const half *a, const half *b, int dim) \
{ \
	__m256		acc0 = _mm256_setzero_ps(); \
	__m256		acc1 = _mm256_setzero_ps(); \
	float		sum; \
	int			i = 0; \
\
	for (; i + 16 <= dim; i += 16) \
	{ \
		vstep(acc0, LOAD8(a + i), LOAD8(b + i)); \
		vstep(acc1, LOAD8(a + i + 8), LOAD8(b + i + 8)); \
	} \
	for (; i + 8 <= dim; i += 8) \
		vstep(acc0, LOAD8(a + i), LOAD8(b + i)); \
	sum = hsum8(_mm256_add_ps(acc0, acc1)); \
	for (; i < dim; i++) \
		step(sum, HalfToFloat(a[i]), HalfToFloat(b[i])); \
	return sum; \
}

HALF_SIMD_KERNEL(HalfDistL2SquaredF16c, HVSTEP_L2, HSTEP_L2)
HALF_SIMD_KERNEL(HalfDistInnerProductF16c, HVSTEP_IP, HSTEP_IP)
HALF_SIMD_KERNEL(HalfDistL1F16c, HVSTEP_L1, HSTEP_L1)

HALF_TARGET
static double
HalfDistCosineF16c(const half *a, const half *b, int dim)
{
	__m256		ab8 = _mm256_setzero_ps();
	__m256		aa8 = _mm256_setzero_ps();
	__m256		bb8 = _mm256_setzero_ps();
	float		ab;
	float		aa;
	float		bb;
	int			i = 0;

	for (; i + 8 <= dim; i += 8)
	{
		__m256		x = LOAD8(a + i);
		__m256		y = LOAD8(b + i);

		ab8 = _mm256_fmadd_ps(x, y, ab8);
		aa8 = _mm256_fmadd_ps(x, x, aa8);
		bb8 = _mm256_fmadd_ps(y, y, bb8);
	}
	ab = hsum8(ab8);
	aa = hsum8(aa8);
	bb = hsum8(bb8);
	for (; i < dim; i++)
	{
		float		x = HalfToFloat(a[i]);
		float		y = HalfToFloat(b[i]);

		ab += x * y;
		aa += x * x;
		bb += y * y;
	}
	return DistCosineFromSums(ab, aa, bb);
}

#define POPCNT_TARGET __attribute__((target("popcnt")))
#define popcnt_builtin(x) ((uint64_t) __builtin_popcountll(x))

BIT_COUNT_KERNEL(POPCNT_TARGET static, BitXorCountPopcnt, ^, popcnt_builtin)
BIT_COUNT_KERNEL(POPCNT_TARGET static, BitAndCountPopcnt, &, popcnt_builtin)
BIT_COUNT_KERNEL(POPCNT_TARGET static, BitOrCountPopcnt, |, popcnt_builtin)

#endif							/* HALF_HAVE_SIMD */

/* Point the dispatched kernels at the best versions this CPU can run */
const char *
HalfDistanceInit(void)
{
	const char *name = "scalar";
#ifdef HALF_HAVE_SIMD
	unsigned int eax,
				ebx,
				ecx = 0,
				edx;
#endif

	HalfToFloatN = HalfToFloatNScalar;
	FloatToHalfN = FloatToHalfNScalar;
	HalfDistL2Squared = HalfDistL2SquaredScalar;
	HalfDistInnerProduct = HalfDistInnerProductScalar;
	HalfDistL1 = HalfDistL1Scalar;
	HalfDistCosine = HalfDistCosineScalar;
	BitXorCount = BitXorCountScalar;
	BitAndCount = BitAndCountScalar;
	BitOrCount = BitOrCountScalar;

#ifdef HALF_HAVE_SIMD
	/* clang's __builtin_cpu_supports() knows no "f16c": ask CPUID leaf 1 */
	__get_cpuid(1, &eax, &ebx, &ecx, &edx);
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
		(ecx & bit_F16C) != 0)
	{
		HalfToFloatN = HalfToFloatNF16c;
		FloatToHalfN = FloatToHalfNF16c;
		HalfDistL2Squared = HalfDistL2SquaredF16c;
		HalfDistInnerProduct = HalfDistInnerProductF16c;
		HalfDistL1 = HalfDistL1F16c;
		HalfDistCosine = HalfDistCosineF16c;
		name = "f16c+avx2+fma";
	}
	if (__builtin_cpu_supports("popcnt"))
	{
		BitXorCount = BitXorCountPopcnt;
		BitAndCount = BitAndCountPopcnt;
		BitOrCount = BitOrCountPopcnt;
		name = name[0] == 's' ? "popcnt" : "f16c+avx2+fma, popcnt";
	}
#endif

	return name;
}
