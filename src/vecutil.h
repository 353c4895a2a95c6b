/*-------------------------------------------------------------------------
 *
 * vecutil.h
 *	  What the vector-like types (vector, halfvec, sparsevec) share: the
 *	  checks and error reports on their input, the reading and writing of
 *	  the '[1,2,3]' element list, typmod input, casts from arrays and the
 *	  avg/sum aggregate state.
 *
 * Every function takes the SQL name of the type it works for, so that
 * messages name the type the user wrote.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TINYHNSW_VECUTIL_H
#define TINYHNSW_VECUTIL_H

#include "fmgr.h"
#include "utils/array.h"

/*
 * PostgreSQL 15's PG_FUNCTION_INFO_V1 exports only the info record, not the
 * function itself (16 marks both PGDLLEXPORT).  The library is built with
 * -fvisibility=hidden, so declare each SQL-callable function exported first.
 */
#define VECTOR_FUNCTION_INFO(funcname) \
	extern PGDLLEXPORT Datum funcname(PG_FUNCTION_ARGS); \
	PG_FUNCTION_INFO_V1(funcname)

/*
 * The btree support function type_cmp and the comparison operators'
 * functions type_lt .. type_gt, from a static int cmp_args(fcinfo) that
 * compares the two arguments.
 */
#define VECTOR_CMP_FUNCTIONS(type, cmp_args) \
	VECTOR_FUNCTION_INFO(type##_cmp); \
	Datum type##_cmp(PG_FUNCTION_ARGS) { PG_RETURN_INT32(cmp_args(fcinfo)); } \
	VECTOR_FUNCTION_INFO(type##_lt); \
	Datum type##_lt(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(cmp_args(fcinfo) < 0); } \
	VECTOR_FUNCTION_INFO(type##_le); \
	Datum type##_le(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(cmp_args(fcinfo) <= 0); } \
	VECTOR_FUNCTION_INFO(type##_eq); \
	Datum type##_eq(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(cmp_args(fcinfo) == 0); } \
	VECTOR_FUNCTION_INFO(type##_ne); \
	Datum type##_ne(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(cmp_args(fcinfo) != 0); } \
	VECTOR_FUNCTION_INFO(type##_ge); \
	Datum type##_ge(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(cmp_args(fcinfo) >= 0); } \
	VECTOR_FUNCTION_INFO(type##_gt); \
	Datum type##_gt(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(cmp_args(fcinfo) > 0); }

/* Is c white space the text forms allow around elements and brackets? */
static inline bool
VecIsSpace(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
		c == '\v' || c == '\f';
}

/* Error out unless 1 <= dim <= maxdim */
extern void VecCheckDim(const char *type, int64 dim, int64 maxdim);

/* Error out unless dim matches the typmod (when there is one) */
extern void VecCheckExpectedDim(int32 typmod, int64 dim);

/* Error out unless two values have the same number of dimensions */
extern void VecCheckSameDims(const char *type, int64 adim, int64 bdim);

/* Error out on NaN and infinities */
extern void VecCheckElement(const char *type, double value);

/* A float8 as a float4 element: finite, and no overflow */
extern float VecFloat8ToElement(const char *type, double value);

extern void VecSyntaxError(const char *type, const char *literal,
						   const char *detail) pg_attribute_noreturn();

/*
 * Read one element at *p (after any white space) and move *p past it.
 * Values whose magnitude is at least limit are out of range for the type
 * (pass INFINITY when float4's own range is the limit).
 */
extern float VecParseElement(const char *type, const char *literal,
							 char **p, float limit);

/* Read the literal '[x1, ..., xn]': palloc'd elements, their count in *dim */
extern float *VecParseList(const char *type, const char *literal,
						   int maxdim, float limit, int *dim);

/* Write n elements as '[x1,...,xn]', each the shortest text of its float4 */
extern char *VecFormatList(const float *x, int n);

/* Append the shortest text of a float4 at p; returns the characters written */
extern int	VecFormatElement(float value, char *p);

/* Type modifier input: (n) with 1 <= n <= maxdim */
extern int32 VecTypmodIn(const char *type, ArrayType *ta, int64 maxdim);

/*
 * The elements of an integer[], real[], double precision[] or numeric[]
 * as float4, checked for the type: 1-D, no nulls, 1 .. maxdim elements,
 * finite.  Returns a palloc'd array and its length in *n.
 */
extern float *VecArrayToFloats(const char *type, ArrayType *array,
							   int64 maxdim, int *n);

/* A float4 array of n elements (the cast to real[]) */
extern ArrayType *VecFloatsToArray(const float *x, int n);

/*
 * The avg/sum aggregate state, {row count, sum_1, ..., sum_dim} in float8,
 * shared by every type whose aggregates add dense float4 elements.
 */

/* The dimension count of a checked state (0 for the initial '{0}') */
extern int	VecAggStateDim(ArrayType *state);

/* Add x[0 .. dim-1] to the state in argument 0, in place inside aggregates */
extern ArrayType *VecAggAccum(FunctionCallInfo fcinfo, const char *type,
							  const float *x, int dim);

/*
 * The sums (average false) or averages of a state, palloc'd, with their
 * count in *dim; NULL when no rows were aggregated.
 */
extern double *VecAggFinal(ArrayType *state, bool average, int *dim);

#endif							/* TINYHNSW_VECUTIL_H */
