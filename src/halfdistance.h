/*-------------------------------------------------------------------------
 *
 * halfdistance.h
 *	  Kernels for halfvec and bit: float16 <-> float conversion of arrays,
 *	  distances over float16 arrays, and popcounts over bit strings.
 *
 * Like distance.h's, each exists as a portable version and, on x86-64, a
 * SIMD one (F16C with AVX2+FMA for the float16 kernels, POPCNT for the bit
 * ones).  HalfDistanceInit(), called by DistanceInit(), points the
 * dispatched pointers at the best the CPU supports.  Float16 distances
 * convert each element to float and sum in float, as the vector kernels do.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TINYHNSW_HALFDISTANCE_H
#define TINYHNSW_HALFDISTANCE_H

#include <stdint.h>

#include "float16.h"

typedef void (*HalfToFloatKernel) (const half *src, float *dst, int n);
typedef void (*FloatToHalfKernel) (const float *src, half *dst, int n);
typedef float (*HalfDistanceKernel) (const half *a, const half *b, int dim);
typedef double (*HalfCosineKernel) (const half *a, const half *b, int dim);
typedef uint64_t (*BitCountKernel) (const unsigned char *a,
									const unsigned char *b, int nbytes);

/* Dispatched kernels: valid after HalfDistanceInit() */
extern HalfToFloatKernel HalfToFloatN;	/* dst[i] = src[i] as float */
extern FloatToHalfKernel FloatToHalfN;	/* dst[i] = src[i] rounded to half */
extern HalfDistanceKernel HalfDistL2Squared;	/* sum (a[i] - b[i])^2 */
extern HalfDistanceKernel HalfDistInnerProduct; /* sum a[i] * b[i] */
extern HalfDistanceKernel HalfDistL1;	/* sum |a[i] - b[i]| */
extern HalfCosineKernel HalfDistCosine; /* as DistCosine */
extern BitCountKernel BitXorCount;	/* bits set in a ^ b (Hamming) */
extern BitCountKernel BitAndCount;	/* bits set in a & b */
extern BitCountKernel BitOrCount;	/* bits set in a | b */

/* Portable versions, always available (the tests compare against them) */
extern void HalfToFloatNScalar(const half *src, float *dst, int n);
extern void FloatToHalfNScalar(const float *src, half *dst, int n);
extern float HalfDistL2SquaredScalar(const half *a, const half *b, int dim);
extern float HalfDistInnerProductScalar(const half *a, const half *b, int dim);
extern float HalfDistL1Scalar(const half *a, const half *b, int dim);
extern double HalfDistCosineScalar(const half *a, const half *b, int dim);
extern uint64_t BitXorCountScalar(const unsigned char *a, const unsigned char *b,
								  int nbytes);
extern uint64_t BitAndCountScalar(const unsigned char *a, const unsigned char *b,
								  int nbytes);
extern uint64_t BitOrCountScalar(const unsigned char *a, const unsigned char *b,
								 int nbytes);

/* Choose the kernels for this CPU; returns the name of the chosen set */
extern const char *HalfDistanceInit(void);

#endif							/* TINYHNSW_HALFDISTANCE_H */
