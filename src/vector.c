/*-------------------------------------------------------------------------
 *
 * vector.c
 *	  The vector type: text and binary I/O, typmod, casts to and from
 *	  arrays, distance functions and operators, element-wise arithmetic,
 *	  btree comparison support and the avg/sum aggregate support functions.
 *
 * The text and binary formats are those of pgvector, so existing clients
 * read and write vectors unchanged.  The text form is read and written by
 * vecutil.c, which halfvec and sparsevec share.  Distances go
 * through the dispatched kernels of distance.c; nothing here knows about
 * the index.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/float.h"

#include "distance.h"
#include "vecutil.h"
#include "vector.h"

/* The shared checks of vecutil.c, for this type */
#define check_dim(dim)			VecCheckDim("vector", (dim), VECTOR_MAX_DIM)
#define check_expected_dim(typmod, dim) VecCheckExpectedDim((typmod), (dim))
#define check_same_dims(a, b)	VecCheckSameDims("vector", (a), (b))
#define check_element(value)	VecCheckElement("vector", (value))
#define float8_to_element(value) VecFloat8ToElement("vector", (value))

/* Allocate a zeroed vector of dim elements */
Vector *
VectorInit(int dim)
{
	Vector	   *result = (Vector *) palloc0(VECTOR_SIZE(dim));

	SET_VARSIZE(result, VECTOR_SIZE(dim));
	result->dim = dim;
	return result;
}

/* Compare element-wise, then by dimension count (like arrays) */
static int
vector_cmp_internal(const Vector *a, const Vector *b)
{
	int			n = Min(a->dim, b->dim);

	for (int i = 0; i < n; i++)
	{
		if (a->x[i] < b->x[i])
			return -1;
		if (a->x[i] > b->x[i])
			return 1;
	}
	if (a->dim < b->dim)
		return -1;
	if (a->dim > b->dim)
		return 1;
	return 0;
}

/*
 * Text input: '[1,2,3]', white space allowed around elements and brackets.
 */
VECTOR_FUNCTION_INFO(vector_in);
Datum
vector_in(PG_FUNCTION_ARGS)
{
	char	   *literal = PG_GETARG_CSTRING(0);
	int32		typmod = PG_GETARG_INT32(2);
	int			dim;
	float	   *x = VecParseList("vector", literal, VECTOR_MAX_DIM, INFINITY, &dim);
	Vector	   *result;

	check_expected_dim(typmod, dim);

	result = VectorInit(dim);
	memcpy(result->x, x, sizeof(float) * dim);
	pfree(x);
	PG_RETURN_VECTOR_P(result);
}

/*
 * Text output: each element as the shortest text that reads back to the
 * same float4.
 */
VECTOR_FUNCTION_INFO(vector_out);
Datum
vector_out(PG_FUNCTION_ARGS)
{
	Vector	   *v = PG_GETARG_VECTOR_P(0);
	char	   *buf = VecFormatList(v->x, v->dim);

	PG_FREE_IF_COPY(v, 0);
	PG_RETURN_CSTRING(buf);
}

/*
 * Type modifier input: vector(n) with 1 <= n <= VECTOR_MAX_DIM.
 */
VECTOR_FUNCTION_INFO(vector_typmod_in);
Datum
vector_typmod_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(VecTypmodIn("vector", PG_GETARG_ARRAYTYPE_P(0),
								VECTOR_MAX_DIM));
}

/*
 * Type modifier output: "(n)", or nothing without a typmod.
 */
VECTOR_FUNCTION_INFO(vector_typmod_out);
Datum
vector_typmod_out(PG_FUNCTION_ARGS)
{
	int32		typmod = PG_GETARG_INT32(0);

	if (typmod < 0)
		PG_RETURN_CSTRING(pstrdup(""));
	PG_RETURN_CSTRING(psprintf("(%d)", typmod));
}

/*
 * Binary input: int16 dim, int16 unused (0), then dim float4, all in
 * network byte order, and nothing else.
 */
VECTOR_FUNCTION_INFO(vector_recv);
Datum
vector_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int32		typmod = PG_GETARG_INT32(2);
	int			remaining = buf->len - buf->cursor;
	int			dim;
	int			unused;
	Vector	   *result;

	if (remaining < 4)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary vector: the header needs 4 bytes, not %d",
						remaining)));

	dim = (int16) pq_getmsgint(buf, sizeof(int16));
	unused = (int16) pq_getmsgint(buf, sizeof(int16));

	if (dim < 1 || dim > VECTOR_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary vector: dimension count %d is out of range",
						dim),
				 errdetail("The dimension count must be between 1 and %d.",
						   VECTOR_MAX_DIM)));
	if (unused != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary vector: reserved field is %d, not 0",
						unused)));
	remaining = buf->len - buf->cursor;
	if ((int64) remaining != (int64) dim * (int64) sizeof(float))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary vector: dimension count %d needs %d bytes of elements, not %d",
						dim, (int) (dim * sizeof(float)), remaining)));

	result = VectorInit(dim);
	for (int i = 0; i < dim; i++)
	{
		result->x[i] = pq_getmsgfloat4(buf);
		check_element(result->x[i]);
	}

	check_expected_dim(typmod, dim);
	PG_RETURN_VECTOR_P(result);
}

/*
 * Binary output: the format vector_recv reads.
 */
VECTOR_FUNCTION_INFO(vector_send);
Datum
vector_send(PG_FUNCTION_ARGS)
{
	Vector	   *v = PG_GETARG_VECTOR_P(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint16(&buf, v->dim);
	pq_sendint16(&buf, v->unused);
	for (int i = 0; i < v->dim; i++)
		pq_sendfloat4(&buf, v->x[i]);

	PG_FREE_IF_COPY(v, 0);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/*
 * Length coercion cast vector -> vector(n): enforce the typmod.
 */
VECTOR_FUNCTION_INFO(vector);
Datum
vector(PG_FUNCTION_ARGS)
{
	Vector	   *v = PG_GETARG_VECTOR_P(0);

	check_expected_dim(PG_GETARG_INT32(1), v->dim);
	PG_RETURN_VECTOR_P(v);
}

/*
 * Cast integer[], real[], double precision[] or numeric[] to vector.
 */
VECTOR_FUNCTION_INFO(array_to_vector);
Datum
array_to_vector(PG_FUNCTION_ARGS)
{
	ArrayType  *array = PG_GETARG_ARRAYTYPE_P(0);
	int32		typmod = PG_GETARG_INT32(1);
	int			n;
	float	   *x = VecArrayToFloats("vector", array, VECTOR_MAX_DIM, &n);
	Vector	   *result = VectorInit(n);

	memcpy(result->x, x, sizeof(float) * n);
	check_expected_dim(typmod, n);
	PG_RETURN_VECTOR_P(result);
}

/*
 * Cast vector to real[].
 */
VECTOR_FUNCTION_INFO(vector_to_float4);
Datum
vector_to_float4(PG_FUNCTION_ARGS)
{
	Vector	   *v = PG_GETARG_VECTOR_P(0);
	ArrayType  *result = VecFloatsToArray(v->x, v->dim);

	PG_FREE_IF_COPY(v, 0);
	PG_RETURN_ARRAYTYPE_P(result);
}

/* The distances between two vectors that SQL functions return */
typedef enum VectorDistance
{
	DISTANCE_L2,
	DISTANCE_L2_SQUARED,
	DISTANCE_INNER_PRODUCT,
	DISTANCE_NEGATIVE_INNER_PRODUCT,
	DISTANCE_COSINE,
	DISTANCE_SPHERICAL,
	DISTANCE_L1
} VectorDistance;

/*
 * One distance between the two vector arguments, which must have the same
 * dimensions, freeing detoasted copies.
 */
static double
vector_distance_args(FunctionCallInfo fcinfo, VectorDistance kind)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);
	double		result = 0.0;

	check_same_dims(a->dim, b->dim);
	switch (kind)
	{
		case DISTANCE_L2:
			result = sqrt((double) DistL2Squared(a->x, b->x, a->dim));
			break;
		case DISTANCE_L2_SQUARED:
			result = (double) DistL2Squared(a->x, b->x, a->dim);
			break;
		case DISTANCE_INNER_PRODUCT:
			result = (double) DistInnerProduct(a->x, b->x, a->dim);
			break;
		case DISTANCE_NEGATIVE_INNER_PRODUCT:
			result = -(double) DistInnerProduct(a->x, b->x, a->dim);
			break;
		case DISTANCE_COSINE:
			/* NaN when either norm is zero */
			result = DistCosine(a->x, b->x, a->dim);
			break;
		case DISTANCE_SPHERICAL:
			/* the cosine kernel already clamps the similarity to [-1, 1] */
			result = acos(1.0 - DistCosine(a->x, b->x, a->dim)) / M_PI;
			break;
		case DISTANCE_L1:
			result = (double) DistL1(a->x, b->x, a->dim);
			break;
	}

	PG_FREE_IF_COPY(a, 0);
	PG_FREE_IF_COPY(b, 1);
	return result;
}

/*
 * Euclidean distance (the <-> operator).
 */
VECTOR_FUNCTION_INFO(l2_distance);
Datum
l2_distance(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(vector_distance_args(fcinfo, DISTANCE_L2));
}

/*
 * Squared Euclidean distance.
 */
VECTOR_FUNCTION_INFO(vector_l2_squared_distance);
Datum
vector_l2_squared_distance(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(vector_distance_args(fcinfo, DISTANCE_L2_SQUARED));
}

/*
 * Inner product.
 */
VECTOR_FUNCTION_INFO(inner_product);
Datum
inner_product(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(vector_distance_args(fcinfo, DISTANCE_INNER_PRODUCT));
}

/*
 * Negative inner product (the <#> operator: smaller is closer).
 */
VECTOR_FUNCTION_INFO(vector_negative_inner_product);
Datum
vector_negative_inner_product(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(vector_distance_args(fcinfo, DISTANCE_NEGATIVE_INNER_PRODUCT));
}

/*
 * Cosine distance (the <=> operator): NaN when either norm is zero.
 */
VECTOR_FUNCTION_INFO(cosine_distance);
Datum
cosine_distance(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(vector_distance_args(fcinfo, DISTANCE_COSINE));
}

/*
 * Angular distance in [0, 1]: acos(cosine similarity) / pi.
 */
VECTOR_FUNCTION_INFO(vector_spherical_distance);
Datum
vector_spherical_distance(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(vector_distance_args(fcinfo, DISTANCE_SPHERICAL));
}

/*
 * Taxicab distance (the <+> operator).
 */
VECTOR_FUNCTION_INFO(l1_distance);
Datum
l1_distance(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(vector_distance_args(fcinfo, DISTANCE_L1));
}

/* Sum of the squares of the elements, in double */
static double
sum_of_squares(const Vector *v)
{
	double		sum = 0.0;

	for (int i = 0; i < v->dim; i++)
		sum += (double) v->x[i] * (double) v->x[i];
	return sum;
}

/*
 * Number of dimensions.
 */
VECTOR_FUNCTION_INFO(vector_dims);
Datum
vector_dims(PG_FUNCTION_ARGS)
{
	Vector	   *v = PG_GETARG_VECTOR_P(0);
	int32		dim = v->dim;

	PG_FREE_IF_COPY(v, 0);
	PG_RETURN_INT32(dim);
}

/*
 * Euclidean norm, accumulated in double.
 */
VECTOR_FUNCTION_INFO(vector_norm);
Datum
vector_norm(PG_FUNCTION_ARGS)
{
	Vector	   *v = PG_GETARG_VECTOR_P(0);
	double		sum = sum_of_squares(v);

	PG_FREE_IF_COPY(v, 0);
	PG_RETURN_FLOAT8(sqrt(sum));
}

/*
 * Scale to unit Euclidean norm; a zero vector stays zero.
 */
VECTOR_FUNCTION_INFO(l2_normalize);
Datum
l2_normalize(PG_FUNCTION_ARGS)
{
	Vector	   *v = PG_GETARG_VECTOR_P(0);
	Vector	   *result = VectorInit(v->dim);
	double		sum = sum_of_squares(v);

	if (sum > 0.0)
	{
		double		norm = sqrt(sum);

		for (int i = 0; i < v->dim; i++)
			result->x[i] = (float) ((double) v->x[i] / norm);
	}

	PG_RETURN_VECTOR_P(result);
}

/*
 * subvector(v, start, count): elements start .. start + count - 1 (1-based),
 * clipped to the vector like substring(); an empty result is an error.
 */
VECTOR_FUNCTION_INFO(subvector);
Datum
subvector(PG_FUNCTION_ARGS)
{
	Vector	   *v = PG_GETARG_VECTOR_P(0);
	int64		start = PG_GETARG_INT32(1);
	int64		count = PG_GETARG_INT32(2);
	int64		end;
	Vector	   *result;

	if (count < 1)
		check_dim(0);

	end = start + count;		/* exclusive; cannot overflow in int64 */
	if (start < 1)
		start = 1;
	if (end > (int64) v->dim + 1)
		end = (int64) v->dim + 1;
	check_dim(end - start);

	result = VectorInit((int) (end - start));
	memcpy(result->x, v->x + (start - 1), sizeof(float) * result->dim);
	PG_RETURN_VECTOR_P(result);
}

/* Element-wise arithmetic */
typedef enum VectorArith
{
	ARITH_ADD,
	ARITH_SUB,
	ARITH_MUL
} VectorArith;

/*
 * The element-wise sum, difference or product of the two vector arguments,
 * which must have the same dimensions, with float4's overflow and
 * underflow errors.
 */
static Vector *
vector_arith_args(FunctionCallInfo fcinfo, VectorArith op)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);
	Vector	   *result;

	check_same_dims(a->dim, b->dim);
	result = VectorInit(a->dim);
	for (int i = 0; i < a->dim; i++)
	{
		float		x = 0.0f;

		switch (op)
		{
			case ARITH_ADD:
				x = a->x[i] + b->x[i];
				break;
			case ARITH_SUB:
				x = a->x[i] - b->x[i];
				break;
			case ARITH_MUL:
				x = a->x[i] * b->x[i];
				if (unlikely(x == 0.0f) && a->x[i] != 0.0f && b->x[i] != 0.0f)
					float_underflow_error();
				break;
		}
		if (unlikely(isinf(x)))
			float_overflow_error();
		result->x[i] = x;
	}
	return result;
}

/*
 * Element-wise sum.
 */
VECTOR_FUNCTION_INFO(vector_add);
Datum
vector_add(PG_FUNCTION_ARGS)
{
	PG_RETURN_VECTOR_P(vector_arith_args(fcinfo, ARITH_ADD));
}

/*
 * Element-wise difference.
 */
VECTOR_FUNCTION_INFO(vector_sub);
Datum
vector_sub(PG_FUNCTION_ARGS)
{
	PG_RETURN_VECTOR_P(vector_arith_args(fcinfo, ARITH_SUB));
}

/*
 * Element-wise product.
 */
VECTOR_FUNCTION_INFO(vector_mul);
Datum
vector_mul(PG_FUNCTION_ARGS)
{
	PG_RETURN_VECTOR_P(vector_arith_args(fcinfo, ARITH_MUL));
}

/*
 * Concatenation (the || operator).
 */
VECTOR_FUNCTION_INFO(vector_concat);
Datum
vector_concat(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);
	Vector	   *result;

	check_dim((int64) a->dim + b->dim);
	result = VectorInit(a->dim + b->dim);
	memcpy(result->x, a->x, sizeof(float) * a->dim);
	memcpy(result->x + a->dim, b->x, sizeof(float) * b->dim);
	PG_RETURN_VECTOR_P(result);
}

/* Compare the two vector arguments, freeing detoasted copies */
static int
vector_cmp_args(FunctionCallInfo fcinfo)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);
	int			result = vector_cmp_internal(a, b);

	PG_FREE_IF_COPY(a, 0);
	PG_FREE_IF_COPY(b, 1);
	return result;
}

/*
 * btree support function 1.
 */
VECTOR_FUNCTION_INFO(vector_cmp);
Datum
vector_cmp(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(vector_cmp_args(fcinfo));
}

/*
 * The < operator.
 */
VECTOR_FUNCTION_INFO(vector_lt);
Datum
vector_lt(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(vector_cmp_args(fcinfo) < 0);
}

/*
 * The <= operator.
 */
VECTOR_FUNCTION_INFO(vector_le);
Datum
vector_le(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(vector_cmp_args(fcinfo) <= 0);
}

/*
 * The = operator.
 */
VECTOR_FUNCTION_INFO(vector_eq);
Datum
vector_eq(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(vector_cmp_args(fcinfo) == 0);
}

/*
 * The <> operator.
 */
VECTOR_FUNCTION_INFO(vector_ne);
Datum
vector_ne(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(vector_cmp_args(fcinfo) != 0);
}

/*
 * The >= operator.
 */
VECTOR_FUNCTION_INFO(vector_ge);
Datum
vector_ge(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(vector_cmp_args(fcinfo) >= 0);
}

/*
 * The > operator.
 */
VECTOR_FUNCTION_INFO(vector_gt);
Datum
vector_gt(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(vector_cmp_args(fcinfo) > 0);
}

/*
 * Aggregate transition for avg and sum: add one vector to the state
 * {count, sum_1, ..., sum_dim}.  Inside an aggregate the state is updated
 * in place.
 */
VECTOR_FUNCTION_INFO(vector_accum);
Datum
vector_accum(PG_FUNCTION_ARGS)
{
	Vector	   *v = PG_GETARG_VECTOR_P(1);

	PG_RETURN_ARRAYTYPE_P(VecAggAccum(fcinfo, "vector", v->x, v->dim));
}

/*
 * Aggregate combine for avg and sum (parallel partial aggregation): add
 * two states.
 */
VECTOR_FUNCTION_INFO(vector_combine);
Datum
vector_combine(PG_FUNCTION_ARGS)
{
	ArrayType  *state1 = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType  *state2 = PG_GETARG_ARRAYTYPE_P(1);
	int			dim1 = VecAggStateDim(state1);
	int			dim2 = VecAggStateDim(state2);
	double	   *sums1;
	double	   *sums2;

	if (dim2 == 0)
		PG_RETURN_ARRAYTYPE_P(state1);
	if (dim1 == 0)
		PG_RETURN_ARRAYTYPE_P(state2);

	check_same_dims(dim1, dim2);
	if (!AggCheckCallContext(fcinfo, NULL))
		state1 = PG_GETARG_ARRAYTYPE_P_COPY(0);

	sums1 = (double *) ARR_DATA_PTR(state1);
	sums2 = (double *) ARR_DATA_PTR(state2);
	for (int i = 0; i <= dim1; i++)
		sums1[i] += sums2[i];

	PG_RETURN_ARRAYTYPE_P(state1);
}

/*
 * Turn an aggregate state into its vector of sums, or of averages; NULL
 * when no rows were aggregated.
 */
static Vector *
agg_final(ArrayType *state, bool average)
{
	int			dim;
	double	   *values = VecAggFinal(state, average, &dim);
	Vector	   *result;

	if (values == NULL)
		return NULL;
	result = VectorInit(dim);
	for (int i = 0; i < dim; i++)
		result->x[i] = float8_to_element(values[i]);
	return result;
}

/*
 * Aggregate final function for avg: NULL when no rows were aggregated.
 */
VECTOR_FUNCTION_INFO(vector_avg);
Datum
vector_avg(PG_FUNCTION_ARGS)
{
	Vector	   *result = agg_final(PG_GETARG_ARRAYTYPE_P(0), true);

	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_VECTOR_P(result);
}

/*
 * Aggregate final function for sum: NULL when no rows were aggregated.
 */
VECTOR_FUNCTION_INFO(vector_sum);
Datum
vector_sum(PG_FUNCTION_ARGS)
{
	Vector	   *result = agg_final(PG_GETARG_ARRAYTYPE_P(0), false);

	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_VECTOR_P(result);
}
