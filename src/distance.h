/*-------------------------------------------------------------------------
 *
 * distance.h
 *	  Distance kernels over float4 arrays, shared by the SQL operators
 *	  (vector.c) and the hnsw index.
 *
 * Each kernel exists as a portable scalar version and, on x86-64, an
 * AVX2+FMA version.  DistanceInit() (called once from _PG_init) points the
 * dispatched function pointers below at the best version the CPU supports;
 * the library itself is built for generic x86-64 (never -march=native).
 *
 * The kernels return float sums accumulated in float; callers that need a
 * true distance take the square root etc. themselves.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TINYHNSW_DISTANCE_H
#define TINYHNSW_DISTANCE_H

typedef float (*DistanceKernel) (const float *a, const float *b, int dim);

/* Dispatched kernels: valid after DistanceInit() */
extern DistanceKernel DistL2Squared;	/* sum (a[i] - b[i])^2 */
extern DistanceKernel DistInnerProduct; /* sum a[i] * b[i] */
extern DistanceKernel DistL1;	/* sum |a[i] - b[i]| */

/*
 * Cosine needs a.b, |a|^2 and |b|^2 in one pass; returns the cosine
 * distance 1 - a.b / (|a| |b|) in double, clamped to [0, 2], or NaN when
 * either norm is zero.
 */
typedef double (*CosineKernel) (const float *a, const float *b, int dim);
extern CosineKernel DistCosine;

/* The cosine distance from a.b, |a|^2 and |b|^2, as DistCosine computes it */
extern double DistCosineFromSums(float ab, float aa, float bb);

/*
 * Bounded kernels, for sums of terms that are never negative (squared L2,
 * L1): the plain kernel's result, bit for bit, whenever that is at most
 * bound; otherwise any value above bound and no greater than the plain
 * result, since they may stop adding once the partial sum passes bound.
 * A search uses them to stop reading a vector that can no longer make the
 * cut.  Inner product has no such bound.
 */
typedef float (*BoundedKernel) (const float *a, const float *b, int dim,
								float bound);
extern BoundedKernel DistL2SquaredBounded;
extern BoundedKernel DistL1Bounded;

/* The bounded version of a dispatched kernel, or NULL if it has none */
extern BoundedKernel DistBoundedKernel(DistanceKernel kernel);

/* Portable versions, always available (the tests compare against them) */
extern float DistL2SquaredScalar(const float *a, const float *b, int dim);
extern float DistInnerProductScalar(const float *a, const float *b, int dim);
extern float DistL1Scalar(const float *a, const float *b, int dim);
extern double DistCosineScalar(const float *a, const float *b, int dim);
extern float DistL2SquaredBoundedScalar(const float *a, const float *b, int dim,
										float bound);
extern float DistL1BoundedScalar(const float *a, const float *b, int dim,
								 float bound);

/* Choose the kernels for this CPU; returns the name of the chosen set */
extern const char *DistanceInit(void);

#endif							/* TINYHNSW_DISTANCE_H */
