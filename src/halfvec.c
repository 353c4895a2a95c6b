/*-------------------------------------------------------------------------
 *
 * halfvec.c
 *	  The halfvec type: text and binary I/O, typmod, casts with vector and
 *	  arrays, distance functions, element-wise arithmetic, btree comparison
 *	  support and the avg/sum aggregate support functions.
 *
 * Elements are IEEE float16.  Values are read and computed as float (text
 * through vecutil.c, as vector's are), then rounded to the nearest half;
 * a value that rounds past 65504 is out of range, an error rather than an
 * infinity.  The binary form is pgvector's, so clients' adapters work.
 * Distances go through the dispatched kernels of halfdistance.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/shortest_dec.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/float.h"

#include "halfdistance.h"
#include "halfvec.h"
#include "vecutil.h"
#include "vector.h"

#define check_dim(dim)			VecCheckDim("halfvec", (dim), HALFVEC_MAX_DIM)
#define check_same_dims(a, b)	VecCheckSameDims("halfvec", (a), (b))

/* Allocate a zeroed halfvec of dim elements */
HalfVector *
HalfVectorInit(int dim)
{
	HalfVector *result = (HalfVector *) palloc0(HALFVEC_SIZE(dim));

	SET_VARSIZE(result, HALFVEC_SIZE(dim));
	result->dim = dim;
	return result;
}

/* A finite float as a half, or an error when it rounds past float16's range */
half
HalfFromFloatChecked(float value)
{
	half		h;

	VecCheckElement("halfvec", value);
	h = FloatToHalf(value);
	if (unlikely((h & 0x7c00) == 0x7c00))
	{
		char		buf[FLOAT_SHORTEST_DECIMAL_LEN];

		buf[VecFormatElement(value, buf)] = '\0';
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("\"%s\" is out of range for type halfvec", buf)));
	}
	return h;
}

/* A halfvec of n floats, each rounded to half and checked */
static HalfVector *
halfvec_from_floats(const float *x, int n)
{
	HalfVector *result = HalfVectorInit(n);

	for (int i = 0; i < n; i++)
		result->x[i] = HalfFromFloatChecked(x[i]);
	return result;
}

/* The elements of v as floats, palloc'd */
static float *
halfvec_floats(const HalfVector *v)
{
	float	   *x = (float *) palloc(sizeof(float) * v->dim);

	HalfToFloatN(v->x, x, v->dim);
	return x;
}

/*
 * Text input: vector's literal, each element within float16's range.
 */
VECTOR_FUNCTION_INFO(halfvec_in);
Datum
halfvec_in(PG_FUNCTION_ARGS)
{
	char	   *literal = PG_GETARG_CSTRING(0);
	int32		typmod = PG_GETARG_INT32(2);
	int			dim;
	float	   *x = VecParseList("halfvec", literal, HALFVEC_MAX_DIM,
								 HALF_OVERFLOW, &dim);
	HalfVector *result;

	VecCheckExpectedDim(typmod, dim);
	result = HalfVectorInit(dim);
	FloatToHalfN(x, result->x, dim);
	pfree(x);
	PG_RETURN_HALFVEC_P(result);
}

/*
 * Text output: each element as the shortest text of its value as a float4.
 */
VECTOR_FUNCTION_INFO(halfvec_out);
Datum
halfvec_out(PG_FUNCTION_ARGS)
{
	HalfVector *v = PG_GETARG_HALFVEC_P(0);
	char	   *buf = VecFormatList(halfvec_floats(v), v->dim);

	PG_FREE_IF_COPY(v, 0);
	PG_RETURN_CSTRING(buf);
}

/*
 * Type modifier input: halfvec(n) with 1 <= n <= HALFVEC_MAX_DIM.
 */
VECTOR_FUNCTION_INFO(halfvec_typmod_in);
Datum
halfvec_typmod_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(VecTypmodIn("halfvec", PG_GETARG_ARRAYTYPE_P(0),
								HALFVEC_MAX_DIM));
}

/*
 * Binary input: int16 dim, int16 unused (0), then dim float16, all in
 * network byte order, and nothing else.
 */
VECTOR_FUNCTION_INFO(halfvec_recv);
Datum
halfvec_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int32		typmod = PG_GETARG_INT32(2);
	int			remaining = buf->len - buf->cursor;
	int			dim;
	int			unused;
	HalfVector *result;

	if (remaining < 4)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary halfvec: the header needs 4 bytes, not %d",
						remaining)));

	dim = (int16) pq_getmsgint(buf, sizeof(int16));
	unused = (int16) pq_getmsgint(buf, sizeof(int16));

	if (dim < 1 || dim > HALFVEC_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary halfvec: dimension count %d is out of range",
						dim),
				 errdetail("The dimension count must be between 1 and %d.",
						   HALFVEC_MAX_DIM)));
	if (unused != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary halfvec: reserved field is %d, not 0",
						unused)));
	remaining = buf->len - buf->cursor;
	if ((int64) remaining != (int64) dim * (int64) sizeof(half))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary halfvec: dimension count %d needs %d bytes of elements, not %d",
						dim, (int) (dim * sizeof(half)), remaining)));

	result = HalfVectorInit(dim);
	for (int i = 0; i < dim; i++)
	{
		result->x[i] = (half) pq_getmsgint(buf, sizeof(half));
		VecCheckElement("halfvec", HalfToFloat(result->x[i]));
	}

	VecCheckExpectedDim(typmod, dim);
	PG_RETURN_HALFVEC_P(result);
}

/*
 * Binary output: the format halfvec_recv reads.
 */
VECTOR_FUNCTION_INFO(halfvec_send);
Datum
halfvec_send(PG_FUNCTION_ARGS)
{
	HalfVector *v = PG_GETARG_HALFVEC_P(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint16(&buf, v->dim);
	pq_sendint16(&buf, v->unused);
	for (int i = 0; i < v->dim; i++)
		pq_sendint16(&buf, v->x[i]);

	PG_FREE_IF_COPY(v, 0);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/*
 * Length coercion cast halfvec -> halfvec(n): enforce the typmod.
 */
VECTOR_FUNCTION_INFO(halfvec);
Datum
halfvec(PG_FUNCTION_ARGS)
{
	HalfVector *v = PG_GETARG_HALFVEC_P(0);

	VecCheckExpectedDim(PG_GETARG_INT32(1), v->dim);
	PG_RETURN_HALFVEC_P(v);
}

/*
 * Cast integer[], real[], double precision[] or numeric[] to halfvec.
 */
VECTOR_FUNCTION_INFO(array_to_halfvec);
Datum
array_to_halfvec(PG_FUNCTION_ARGS)
{
	int			n;
	float	   *x = VecArrayToFloats("halfvec", PG_GETARG_ARRAYTYPE_P(0),
									 HALFVEC_MAX_DIM, &n);

	VecCheckExpectedDim(PG_GETARG_INT32(1), n);
	PG_RETURN_HALFVEC_P(halfvec_from_floats(x, n));
}

/*
 * Cast halfvec to real[].
 */
VECTOR_FUNCTION_INFO(halfvec_to_float4);
Datum
halfvec_to_float4(PG_FUNCTION_ARGS)
{
	HalfVector *v = PG_GETARG_HALFVEC_P(0);

	PG_RETURN_ARRAYTYPE_P(VecFloatsToArray(halfvec_floats(v), v->dim));
}

/*
 * Cast vector to halfvec: each element rounded to the nearest half.
 */
VECTOR_FUNCTION_INFO(vector_to_halfvec);
Datum
vector_to_halfvec(PG_FUNCTION_ARGS)
{
	Vector	   *v = PG_GETARG_VECTOR_P(0);

	VecCheckExpectedDim(PG_GETARG_INT32(1), v->dim);
	PG_RETURN_HALFVEC_P(halfvec_from_floats(v->x, v->dim));
}

/*
 * Cast halfvec to vector: exact.
 */
VECTOR_FUNCTION_INFO(halfvec_to_vector);
Datum
halfvec_to_vector(PG_FUNCTION_ARGS)
{
	HalfVector *v = PG_GETARG_HALFVEC_P(0);
	Vector	   *result;

	VecCheckExpectedDim(PG_GETARG_INT32(1), v->dim);
	result = VectorInit(v->dim);
	HalfToFloatN(v->x, result->x, v->dim);
	PG_RETURN_VECTOR_P(result);
}

/* The distances between two halfvecs that SQL functions return */
typedef enum HalfDistance
{
	HALF_L2,
	HALF_L2_SQUARED,
	HALF_INNER_PRODUCT,
	HALF_NEGATIVE_INNER_PRODUCT,
	HALF_COSINE,
	HALF_SPHERICAL,
	HALF_L1
} HalfDistance;

/*
 * One distance between the two halfvec arguments, which must have the
 * same dimensions, freeing detoasted copies.
 */
static double
halfvec_distance_args(FunctionCallInfo fcinfo, HalfDistance kind)
{
	HalfVector *a = PG_GETARG_HALFVEC_P(0);
	HalfVector *b = PG_GETARG_HALFVEC_P(1);
	double		result = 0.0;

	check_same_dims(a->dim, b->dim);
	switch (kind)
	{
		case HALF_L2:
			result = sqrt((double) HalfDistL2Squared(a->x, b->x, a->dim));
			break;
		case HALF_L2_SQUARED:
			result = (double) HalfDistL2Squared(a->x, b->x, a->dim);
			break;
		case HALF_INNER_PRODUCT:
			result = (double) HalfDistInnerProduct(a->x, b->x, a->dim);
			break;
		case HALF_NEGATIVE_INNER_PRODUCT:
			result = -(double) HalfDistInnerProduct(a->x, b->x, a->dim);
			break;
		case HALF_COSINE:
			/* NaN when either norm is zero */
			result = HalfDistCosine(a->x, b->x, a->dim);
			break;
		case HALF_SPHERICAL:
			/* the cosine kernel already clamps the similarity to [-1, 1] */
			result = acos(1.0 - HalfDistCosine(a->x, b->x, a->dim)) / M_PI;
			break;
		case HALF_L1:
			result = (double) HalfDistL1(a->x, b->x, a->dim);
			break;
	}

	PG_FREE_IF_COPY(a, 0);
	PG_FREE_IF_COPY(b, 1);
	return result;
}

/* Euclidean distance (the <-> operator) */
VECTOR_FUNCTION_INFO(halfvec_l2_distance);
Datum
halfvec_l2_distance(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(halfvec_distance_args(fcinfo, HALF_L2));
}

/* Squared Euclidean distance */
VECTOR_FUNCTION_INFO(halfvec_l2_squared_distance);
Datum
halfvec_l2_squared_distance(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(halfvec_distance_args(fcinfo, HALF_L2_SQUARED));
}

/* Inner product */
VECTOR_FUNCTION_INFO(halfvec_inner_product);
Datum
halfvec_inner_product(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(halfvec_distance_args(fcinfo, HALF_INNER_PRODUCT));
}

/* Negative inner product (the <#> operator: smaller is closer) */
VECTOR_FUNCTION_INFO(halfvec_negative_inner_product);
Datum
halfvec_negative_inner_product(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(halfvec_distance_args(fcinfo, HALF_NEGATIVE_INNER_PRODUCT));
}

/* Cosine distance (the <=> operator): NaN when either norm is zero */
VECTOR_FUNCTION_INFO(halfvec_cosine_distance);
Datum
halfvec_cosine_distance(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(halfvec_distance_args(fcinfo, HALF_COSINE));
}

/* Angular distance in [0, 1]: acos(cosine similarity) / pi */
VECTOR_FUNCTION_INFO(halfvec_spherical_distance);
Datum
halfvec_spherical_distance(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(halfvec_distance_args(fcinfo, HALF_SPHERICAL));
}

/* Taxicab distance (the <+> operator) */
VECTOR_FUNCTION_INFO(halfvec_l1_distance);
Datum
halfvec_l1_distance(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(halfvec_distance_args(fcinfo, HALF_L1));
}

/* Number of dimensions */
VECTOR_FUNCTION_INFO(halfvec_vector_dims);
Datum
halfvec_vector_dims(PG_FUNCTION_ARGS)
{
	HalfVector *v = PG_GETARG_HALFVEC_P(0);
	int32		dim = v->dim;

	PG_FREE_IF_COPY(v, 0);
	PG_RETURN_INT32(dim);
}

/* Sum of the squares of the elements, in double */
static double
halfvec_sum_of_squares(const HalfVector *v)
{
	double		sum = 0.0;

	for (int i = 0; i < v->dim; i++)
	{
		double		x = HalfToFloat(v->x[i]);

		sum += x * x;
	}
	return sum;
}

/* Euclidean norm, accumulated in double */
VECTOR_FUNCTION_INFO(halfvec_l2_norm);
Datum
halfvec_l2_norm(PG_FUNCTION_ARGS)
{
	HalfVector *v = PG_GETARG_HALFVEC_P(0);
	double		sum = halfvec_sum_of_squares(v);

	PG_FREE_IF_COPY(v, 0);
	PG_RETURN_FLOAT8(sqrt(sum));
}

/* Scale to unit Euclidean norm; a zero vector stays zero */
VECTOR_FUNCTION_INFO(halfvec_l2_normalize);
Datum
halfvec_l2_normalize(PG_FUNCTION_ARGS)
{
	HalfVector *v = PG_GETARG_HALFVEC_P(0);
	HalfVector *result = HalfVectorInit(v->dim);
	double		sum = halfvec_sum_of_squares(v);

	if (sum > 0.0)
	{
		double		norm = sqrt(sum);

		for (int i = 0; i < v->dim; i++)
			result->x[i] = FloatToHalf((float) (HalfToFloat(v->x[i]) / norm));
	}
	PG_RETURN_HALFVEC_P(result);
}

/*
 * subvector(v, start, count): elements start .. start + count - 1 (1-based),
 * clipped to the vector like substring(); an empty result is an error.
 */
VECTOR_FUNCTION_INFO(halfvec_subvector);
Datum
halfvec_subvector(PG_FUNCTION_ARGS)
{
	HalfVector *v = PG_GETARG_HALFVEC_P(0);
	int64		start = PG_GETARG_INT32(1);
	int64		count = PG_GETARG_INT32(2);
	int64		end;
	HalfVector *result;

	if (count < 1)
		check_dim(0);

	end = start + count;		/* exclusive; cannot overflow in int64 */
	if (start < 1)
		start = 1;
	if (end > (int64) v->dim + 1)
		end = (int64) v->dim + 1;
	check_dim(end - start);

	result = HalfVectorInit((int) (end - start));
	memcpy(result->x, v->x + (start - 1), sizeof(half) * result->dim);
	PG_RETURN_HALFVEC_P(result);
}

/* Element-wise arithmetic */
typedef enum HalfArith
{
	HARITH_ADD,
	HARITH_SUB,
	HARITH_MUL
} HalfArith;

/*
 * The element-wise sum, difference or product of the two halfvec
 * arguments, computed in float and rounded to half, with float16's
 * overflow and underflow as errors.
 */
static HalfVector *
halfvec_arith_args(FunctionCallInfo fcinfo, HalfArith op)
{
	HalfVector *a = PG_GETARG_HALFVEC_P(0);
	HalfVector *b = PG_GETARG_HALFVEC_P(1);
	HalfVector *result;

	check_same_dims(a->dim, b->dim);
	result = HalfVectorInit(a->dim);
	for (int i = 0; i < a->dim; i++)
	{
		float		x = HalfToFloat(a->x[i]);
		float		y = HalfToFloat(b->x[i]);
		float		r = 0.0f;
		half		h;

		switch (op)
		{
			case HARITH_ADD:
				r = x + y;
				break;
			case HARITH_SUB:
				r = x - y;
				break;
			case HARITH_MUL:
				r = x * y;
				break;
		}
		h = FloatToHalf(r);
		if (unlikely((h & 0x7c00) == 0x7c00))
			float_overflow_error();
		if (unlikely(op == HARITH_MUL && (h & 0x7fff) == 0 && x != 0.0f && y != 0.0f))
			float_underflow_error();
		result->x[i] = h;
	}
	return result;
}

/* Element-wise sum */
VECTOR_FUNCTION_INFO(halfvec_add);
Datum
halfvec_add(PG_FUNCTION_ARGS)
{
	PG_RETURN_HALFVEC_P(halfvec_arith_args(fcinfo, HARITH_ADD));
}

/* Element-wise difference */
VECTOR_FUNCTION_INFO(halfvec_sub);
Datum
halfvec_sub(PG_FUNCTION_ARGS)
{
	PG_RETURN_HALFVEC_P(halfvec_arith_args(fcinfo, HARITH_SUB));
}

/* Element-wise product */
VECTOR_FUNCTION_INFO(halfvec_mul);
Datum
halfvec_mul(PG_FUNCTION_ARGS)
{
	PG_RETURN_HALFVEC_P(halfvec_arith_args(fcinfo, HARITH_MUL));
}

/* Concatenation (the || operator) */
VECTOR_FUNCTION_INFO(halfvec_concat);
Datum
halfvec_concat(PG_FUNCTION_ARGS)
{
	HalfVector *a = PG_GETARG_HALFVEC_P(0);
	HalfVector *b = PG_GETARG_HALFVEC_P(1);
	HalfVector *result;

	check_dim((int64) a->dim + b->dim);
	result = HalfVectorInit(a->dim + b->dim);
	memcpy(result->x, a->x, sizeof(half) * a->dim);
	memcpy(result->x + a->dim, b->x, sizeof(half) * b->dim);
	PG_RETURN_HALFVEC_P(result);
}

/*
 * Compare the two halfvec arguments element-wise by value, then by
 * dimension count (like arrays), freeing detoasted copies.
 */
static int
halfvec_cmp_args(FunctionCallInfo fcinfo)
{
	HalfVector *a = PG_GETARG_HALFVEC_P(0);
	HalfVector *b = PG_GETARG_HALFVEC_P(1);
	int			n = Min(a->dim, b->dim);
	int			result = 0;

	for (int i = 0; i < n && result == 0; i++)
	{
		float		x = HalfToFloat(a->x[i]);
		float		y = HalfToFloat(b->x[i]);

		if (x < y)
			result = -1;
		else if (x > y)
			result = 1;
	}
	if (result == 0 && a->dim != b->dim)
		result = a->dim < b->dim ? -1 : 1;

	PG_FREE_IF_COPY(a, 0);
	PG_FREE_IF_COPY(b, 1);
	return result;
}

/* btree support function 1 and the comparison operators */
VECTOR_CMP_FUNCTIONS(halfvec, halfvec_cmp_args)

/*
 * Aggregate transition for avg and sum: vector's state, the halves added
 * as floats (vector_combine combines the states).
 */
VECTOR_FUNCTION_INFO(halfvec_accum);
Datum
halfvec_accum(PG_FUNCTION_ARGS)
{
	HalfVector *v = PG_GETARG_HALFVEC_P(1);

	PG_RETURN_ARRAYTYPE_P(VecAggAccum(fcinfo, "halfvec", halfvec_floats(v),
									  v->dim));
}

/* The halfvec of a state's sums or averages; NULL for no rows */
static HalfVector *
halfvec_agg_final(ArrayType *state, bool average)
{
	int			dim;
	double	   *values = VecAggFinal(state, average, &dim);
	HalfVector *result;

	if (values == NULL)
		return NULL;
	result = HalfVectorInit(dim);
	for (int i = 0; i < dim; i++)
		result->x[i] = HalfFromFloatChecked(VecFloat8ToElement("halfvec", values[i]));
	return result;
}

/* Aggregate final function for avg: NULL when no rows were aggregated */
VECTOR_FUNCTION_INFO(halfvec_avg);
Datum
halfvec_avg(PG_FUNCTION_ARGS)
{
	HalfVector *result = halfvec_agg_final(PG_GETARG_ARRAYTYPE_P(0), true);

	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_HALFVEC_P(result);
}

/* Aggregate final function for sum: NULL when no rows were aggregated */
VECTOR_FUNCTION_INFO(halfvec_sum);
Datum
halfvec_sum(PG_FUNCTION_ARGS)
{
	HalfVector *result = halfvec_agg_final(PG_GETARG_ARRAYTYPE_P(0), false);

	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_HALFVEC_P(result);
}
