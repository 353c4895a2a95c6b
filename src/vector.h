/*-------------------------------------------------------------------------
 *
 * vector.h
 *	  The vector type: an array of float4 with its dimension count.
 *
 * On-disk/in-memory layout (a plain varlena, never compressed externally
 * by us; TOAST may still move it):
 *
 *	int32	vl_len_		varlena header
 *	int16	dim			number of elements, 1 .. VECTOR_MAX_DIM
 *	int16	unused		always 0
 *	float4	x[dim]
 *
 * The text form is '[1,2,3]'; the binary (send/recv) form is int16 dim,
 * int16 unused, then dim float4 in network byte order.
 *
 * vector.c knows nothing of the index; the index uses only this header.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TINYHNSW_VECTOR_H
#define TINYHNSW_VECTOR_H

#include "fmgr.h"

#define VECTOR_MAX_DIM 16000

typedef struct Vector
{
	int32		vl_len_;		/* varlena header (do not touch directly!) */
	int16		dim;			/* number of dimensions */
	int16		unused;			/* reserved for future use, always zero */
	float		x[FLEXIBLE_ARRAY_MEMBER];
} Vector;

#define VECTOR_SIZE(_dim)		(offsetof(Vector, x) + sizeof(float) * (_dim))
#define DatumGetVector(x)		((Vector *) PG_DETOAST_DATUM(x))
#define PG_GETARG_VECTOR_P(x)	DatumGetVector(PG_GETARG_DATUM(x))
#define PG_RETURN_VECTOR_P(x)	PG_RETURN_POINTER(x)

/* Allocate a zeroed vector of dim elements (palloc in the current context) */
extern Vector *VectorInit(int dim);

#endif							/* TINYHNSW_VECTOR_H */
