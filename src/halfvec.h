/*-------------------------------------------------------------------------
 *
 * halfvec.h
 *	  The halfvec type: an array of float16 with its dimension count.
 *
 * Layout (a plain varlena, like vector's):
 *
 *	int32	vl_len_		varlena header
 *	int16	dim			number of elements, 1 .. HALFVEC_MAX_DIM
 *	int16	unused		always 0
 *	half	x[dim]		IEEE binary16, finite
 *
 * The text form is vector's, '[1,2,3]'; the binary (send/recv) form is
 * pgvector's: int16 dim, int16 unused, then dim float16 in network byte
 * order.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TINYHNSW_HALFVEC_H
#define TINYHNSW_HALFVEC_H

#include "fmgr.h"

#include "float16.h"

#define HALFVEC_MAX_DIM 16000

typedef struct HalfVector
{
	int32		vl_len_;		/* varlena header (do not touch directly!) */
	int16		dim;			/* number of dimensions */
	int16		unused;			/* reserved for future use, always zero */
	half		x[FLEXIBLE_ARRAY_MEMBER];
} HalfVector;

#define HALFVEC_SIZE(_dim)		(offsetof(HalfVector, x) + sizeof(half) * (_dim))
#define DatumGetHalfVector(x)	((HalfVector *) PG_DETOAST_DATUM(x))
#define PG_GETARG_HALFVEC_P(x)	DatumGetHalfVector(PG_GETARG_DATUM(x))
#define PG_RETURN_HALFVEC_P(x)	PG_RETURN_POINTER(x)

/* Allocate a zeroed halfvec of dim elements (palloc in the current context) */
extern HalfVector *HalfVectorInit(int dim);

/* A float as a halfvec element: finite and within float16's range, or an error */
extern half HalfFromFloatChecked(float value);

#endif							/* TINYHNSW_HALFVEC_H */
