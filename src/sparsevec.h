/*-------------------------------------------------------------------------
 *
 * sparsevec.h
 *	  The sparsevec type: the non-zero elements of a vector of up to a
 *	  billion dimensions, as sorted index and value arrays.
 *
 * Layout (a plain varlena):
 *
 *	int32	vl_len_		varlena header
 *	int32	dim			number of dimensions, 1 .. SPARSEVEC_MAX_DIM
 *	int32	nnz			number of non-zero elements, 0 .. SPARSEVEC_MAX_NNZ
 *	int32	unused		always 0
 *	int32	indices[nnz]	0-based, strictly increasing, below dim
 *	float4	values[nnz]		finite and never zero
 *
 * The text form is '{1:1.5,3:2}/5' (1-based indices); the binary form is
 * pgvector's: int32 dim, int32 nnz, int32 unused, nnz int32 0-based
 * indices, then nnz float4, all in network byte order.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TINYHNSW_SPARSEVEC_H
#define TINYHNSW_SPARSEVEC_H

#include "fmgr.h"

#define SPARSEVEC_MAX_DIM 1000000000
#define SPARSEVEC_MAX_NNZ 16000

typedef struct SparseVector
{
	int32		vl_len_;		/* varlena header (do not touch directly!) */
	int32		dim;			/* number of dimensions */
	int32		nnz;			/* number of non-zero elements */
	int32		unused;			/* reserved for future use, always zero */
	int32		indices[FLEXIBLE_ARRAY_MEMBER];
	/* float4 values[nnz] follow the indices */
} SparseVector;

#define SPARSEVEC_SIZE(_nnz) \
	(offsetof(SparseVector, indices) + (sizeof(int32) + sizeof(float)) * (_nnz))
#define SPARSEVEC_VALUES(v)		((float *) ((v)->indices + (v)->nnz))
#define DatumGetSparseVector(x) ((SparseVector *) PG_DETOAST_DATUM(x))
#define PG_GETARG_SPARSEVEC_P(x) DatumGetSparseVector(PG_GETARG_DATUM(x))
#define PG_RETURN_SPARSEVEC_P(x) PG_RETURN_POINTER(x)

/* Allocate a zeroed sparsevec of dim dimensions and room for nnz elements */
extern SparseVector *SparseVectorInit(int dim, int nnz);

#endif							/* TINYHNSW_SPARSEVEC_H */
