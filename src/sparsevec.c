/*-------------------------------------------------------------------------
 *
 * sparsevec.c
 *	  The sparsevec type: text and binary I/O, typmod, casts with vector,
 *	  halfvec and arrays, distance functions and btree comparison support.
 *
 * A sparsevec holds its non-zero elements only, sorted by index, so that
 * distances are one merge of the two index lists.  The text input sorts
 * the elements, rejects a repeated index and leaves out zeros, as
 * pgvector's does; the binary input takes only the stored form (sorted,
 * no zeros), since a client that sends anything else has a bug.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#include <math.h>

#include "common/shortest_dec.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/array.h"

#include "distance.h"
#include "halfvec.h"
#include "sparsevec.h"
#include "vecutil.h"
#include "vector.h"

#define check_dim(dim)	VecCheckDim("sparsevec", (dim), SPARSEVEC_MAX_DIM)

/* Error out on more non-zero elements than a sparsevec holds */
static void
check_nnz(int64 nnz)
{
	if (nnz > SPARSEVEC_MAX_NNZ)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("sparsevec cannot have more than %d non-zero elements",
						SPARSEVEC_MAX_NNZ)));
}

/* Allocate a zeroed sparsevec of dim dimensions and room for nnz elements */
SparseVector *
SparseVectorInit(int dim, int nnz)
{
	SparseVector *result = (SparseVector *) palloc0(SPARSEVEC_SIZE(nnz));

	SET_VARSIZE(result, SPARSEVEC_SIZE(nnz));
	result->dim = dim;
	result->nnz = nnz;
	return result;
}

/* The sparsevec of a dense array: its non-zero elements */
static SparseVector *
sparsevec_from_dense(const float *x, int dim)
{
	int			nnz = 0;
	SparseVector *result;
	float	   *values;

	for (int i = 0; i < dim; i++)
		nnz += x[i] != 0.0f;
	check_nnz(nnz);
	result = SparseVectorInit(dim, nnz);
	values = SPARSEVEC_VALUES(result);
	nnz = 0;
	for (int i = 0; i < dim; i++)
		if (x[i] != 0.0f)
		{
			result->indices[nnz] = i;
			values[nnz++] = x[i];
		}
	return result;
}

/* The dense elements of v, palloc'd, for a type of at most maxdim */
static float *
sparsevec_to_dense(const SparseVector *v, const char *type, int maxdim)
{
	float	   *x;
	float	   *values = SPARSEVEC_VALUES(v);

	VecCheckDim(type, v->dim, maxdim);
	x = (float *) palloc0(sizeof(float) * v->dim);
	for (int i = 0; i < v->nnz; i++)
		x[v->indices[i]] = values[i];
	return x;
}

/* One element of the text form, before sorting */
typedef struct SparseElement
{
	int64		index;			/* 1-based, as written */
	float		value;
} SparseElement;

static int
element_cmp(const void *a, const void *b)
{
	int64		x = ((const SparseElement *) a)->index;
	int64		y = ((const SparseElement *) b)->index;

	return x < y ? -1 : x > y;
}

/* Read a whole number at *p (after white space), moving *p past it */
static int64
parse_int(const char *literal, char **p)
{
	char	   *start = *p;
	char	   *end;
	long long	value;

	while (VecIsSpace(*start))
		start++;
	/* strtoll would take white space and a sign again: digits only here */
	if (!(*start >= '0' && *start <= '9') && *start != '-' && *start != '+')
		VecSyntaxError("sparsevec", literal, NULL);
	errno = 0;
	value = strtoll(start, &end, 10);
	if (end == start || !(end[-1] >= '0' && end[-1] <= '9'))
		VecSyntaxError("sparsevec", literal, NULL);
	if (errno == ERANGE || value > INT_MAX || value < INT_MIN)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("\"%s\" is out of range for a sparsevec index or dimension count",
						pnstrdup(start, end - start))));
	*p = end;
	return value;
}

static void
skip_space(char **p)
{
	while (VecIsSpace(**p))
		(*p)++;
}

/*
 * Text input: '{index:value,...}/dim', 1-based indices in any order, white
 * space around every part.
 */
VECTOR_FUNCTION_INFO(sparsevec_in);
Datum
sparsevec_in(PG_FUNCTION_ARGS)
{
	char	   *literal = PG_GETARG_CSTRING(0);
	int32		typmod = PG_GETARG_INT32(2);
	char	   *p = literal;
	int			capacity = 16;
	int			n = 0;
	int			nnz = 0;
	int64		dim;
	SparseElement *elems;
	SparseVector *result;
	float	   *values;

	skip_space(&p);
	if (*p != '{')
		VecSyntaxError("sparsevec", literal, "Sparse vector contents must start with \"{\".");
	p++;
	skip_space(&p);

	elems = (SparseElement *) palloc(sizeof(SparseElement) * capacity);
	if (*p == '}')
		p++;
	else
	{
		for (;;)
		{
			/* zeros count too: this bounds the memory a literal takes */
			if (n == SPARSEVEC_MAX_NNZ)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("sparsevec literal cannot have more than %d elements",
								SPARSEVEC_MAX_NNZ)));
			if (n == capacity)
			{
				capacity *= 2;
				elems = (SparseElement *) repalloc(elems, sizeof(SparseElement) * capacity);
			}
			elems[n].index = parse_int(literal, &p);
			skip_space(&p);
			if (*p != ':')
				VecSyntaxError("sparsevec", literal, NULL);
			p++;
			elems[n].value = VecParseElement("sparsevec", literal, &p, INFINITY);
			nnz += elems[n].value != 0.0f;
			n++;

			skip_space(&p);
			if (*p == ',')
			{
				p++;
				continue;
			}
			if (*p == '}')
			{
				p++;
				break;
			}
			VecSyntaxError("sparsevec", literal, NULL);
		}
	}

	skip_space(&p);
	if (*p != '/')
		VecSyntaxError("sparsevec", literal, "Unexpected end of input: expected \"/\" and the dimension count.");
	p++;
	dim = parse_int(literal, &p);
	skip_space(&p);
	if (*p != '\0')
		VecSyntaxError("sparsevec", literal, "Junk after the dimension count.");

	check_dim(dim);
	check_nnz(nnz);
	VecCheckExpectedDim(typmod, dim);

	qsort(elems, n, sizeof(SparseElement), element_cmp);
	for (int i = 0; i < n; i++)
	{
		if (elems[i].index < 1 || elems[i].index > dim)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("sparsevec index %lld is out of bounds for %lld dimensions",
							(long long) elems[i].index, (long long) dim),
					 errdetail("Indices start at 1.")));
		if (i > 0 && elems[i].index == elems[i - 1].index)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("sparsevec index %lld appears more than once",
							(long long) elems[i].index)));
	}

	result = SparseVectorInit((int) dim, nnz);
	values = SPARSEVEC_VALUES(result);
	nnz = 0;
	for (int i = 0; i < n; i++)
		if (elems[i].value != 0.0f)
		{
			result->indices[nnz] = (int32) (elems[i].index - 1);
			values[nnz++] = elems[i].value;
		}
	pfree(elems);
	PG_RETURN_SPARSEVEC_P(result);
}

/*
 * Text output: '{index:value,...}/dim', 1-based, values as the shortest
 * text of their float4.
 */
VECTOR_FUNCTION_INFO(sparsevec_out);
Datum
sparsevec_out(PG_FUNCTION_ARGS)
{
	SparseVector *v = PG_GETARG_SPARSEVEC_P(0);
	float	   *values = SPARSEVEC_VALUES(v);
	/* per element: 10 digits, a colon, a value and a comma; then "}/" dim */
	char	   *buf = (char *) palloc((size_t) v->nnz * (12 + FLOAT_SHORTEST_DECIMAL_LEN) + 16);
	char	   *p = buf;

	*p++ = '{';
	for (int i = 0; i < v->nnz; i++)
	{
		if (i > 0)
			*p++ = ',';
		p += sprintf(p, "%d:", v->indices[i] + 1);
		p += VecFormatElement(values[i], p);
	}
	p += sprintf(p, "}/%d", v->dim);

	PG_FREE_IF_COPY(v, 0);
	PG_RETURN_CSTRING(buf);
}

/*
 * Type modifier input: sparsevec(n) with 1 <= n <= SPARSEVEC_MAX_DIM.
 */
VECTOR_FUNCTION_INFO(sparsevec_typmod_in);
Datum
sparsevec_typmod_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(VecTypmodIn("sparsevec", PG_GETARG_ARRAYTYPE_P(0),
								SPARSEVEC_MAX_DIM));
}

static void binary_error(const char *fmt,...) pg_attribute_printf(1, 2) pg_attribute_noreturn();

/* Report malformed binary input */
static void
binary_error(const char *fmt,...)
{
	va_list		ap;
	char		msg[256];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("invalid binary sparsevec: %s", msg)));
}

/*
 * Binary input: int32 dim, int32 nnz, int32 unused (0), nnz int32 0-based
 * indices in increasing order, then nnz non-zero float4, all in network
 * byte order, and nothing else.
 */
VECTOR_FUNCTION_INFO(sparsevec_recv);
Datum
sparsevec_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int32		typmod = PG_GETARG_INT32(2);
	int			remaining = buf->len - buf->cursor;
	int32		dim;
	int32		nnz;
	int32		unused;
	SparseVector *result;
	float	   *values;

	if (remaining < 12)
		binary_error("the header needs 12 bytes, not %d", remaining);
	dim = (int32) pq_getmsgint(buf, sizeof(int32));
	nnz = (int32) pq_getmsgint(buf, sizeof(int32));
	unused = (int32) pq_getmsgint(buf, sizeof(int32));

	if (dim < 1 || dim > SPARSEVEC_MAX_DIM)
		binary_error("dimension count %d is out of range (1 to %d)",
					 dim, SPARSEVEC_MAX_DIM);
	if (nnz < 0 || nnz > SPARSEVEC_MAX_NNZ || nnz > dim)
		binary_error("%d non-zero elements is out of range for %d dimensions (0 to %d)",
					 nnz, dim, SPARSEVEC_MAX_NNZ);
	if (unused != 0)
		binary_error("reserved field is %d, not 0", unused);
	remaining = buf->len - buf->cursor;
	if ((int64) remaining != (int64) nnz * 8)
		binary_error("%d elements need %d bytes, not %d", nnz, nnz * 8, remaining);

	result = SparseVectorInit(dim, nnz);
	values = SPARSEVEC_VALUES(result);
	for (int i = 0; i < nnz; i++)
	{
		result->indices[i] = (int32) pq_getmsgint(buf, sizeof(int32));
		if (result->indices[i] < 0 || result->indices[i] >= dim)
			binary_error("index %d is out of bounds for %d dimensions",
						 result->indices[i], dim);
		if (i > 0 && result->indices[i] <= result->indices[i - 1])
			binary_error("indices must increase, but %d follows %d",
						 result->indices[i], result->indices[i - 1]);
	}
	for (int i = 0; i < nnz; i++)
	{
		values[i] = pq_getmsgfloat4(buf);
		VecCheckElement("sparsevec", values[i]);
		if (values[i] == 0.0f)
			binary_error("element %d is zero", i);
	}

	VecCheckExpectedDim(typmod, dim);
	PG_RETURN_SPARSEVEC_P(result);
}

/*
 * Binary output: the format sparsevec_recv reads.
 */
VECTOR_FUNCTION_INFO(sparsevec_send);
Datum
sparsevec_send(PG_FUNCTION_ARGS)
{
	SparseVector *v = PG_GETARG_SPARSEVEC_P(0);
	float	   *values = SPARSEVEC_VALUES(v);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint32(&buf, v->dim);
	pq_sendint32(&buf, v->nnz);
	pq_sendint32(&buf, v->unused);
	for (int i = 0; i < v->nnz; i++)
		pq_sendint32(&buf, v->indices[i]);
	for (int i = 0; i < v->nnz; i++)
		pq_sendfloat4(&buf, values[i]);

	PG_FREE_IF_COPY(v, 0);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/*
 * Length coercion cast sparsevec -> sparsevec(n): enforce the typmod.
 */
VECTOR_FUNCTION_INFO(sparsevec);
Datum
sparsevec(PG_FUNCTION_ARGS)
{
	SparseVector *v = PG_GETARG_SPARSEVEC_P(0);

	VecCheckExpectedDim(PG_GETARG_INT32(1), v->dim);
	PG_RETURN_SPARSEVEC_P(v);
}

/* Cast vector to sparsevec */
VECTOR_FUNCTION_INFO(vector_to_sparsevec);
Datum
vector_to_sparsevec(PG_FUNCTION_ARGS)
{
	Vector	   *v = PG_GETARG_VECTOR_P(0);

	VecCheckExpectedDim(PG_GETARG_INT32(1), v->dim);
	PG_RETURN_SPARSEVEC_P(sparsevec_from_dense(v->x, v->dim));
}

/* Cast sparsevec to vector: at most vector's 16000 dimensions */
VECTOR_FUNCTION_INFO(sparsevec_to_vector);
Datum
sparsevec_to_vector(PG_FUNCTION_ARGS)
{
	SparseVector *v = PG_GETARG_SPARSEVEC_P(0);
	float	   *x = sparsevec_to_dense(v, "vector", VECTOR_MAX_DIM);
	Vector	   *result;

	VecCheckExpectedDim(PG_GETARG_INT32(1), v->dim);
	result = VectorInit(v->dim);
	memcpy(result->x, x, sizeof(float) * v->dim);
	PG_RETURN_VECTOR_P(result);
}

/* Cast halfvec to sparsevec */
VECTOR_FUNCTION_INFO(halfvec_to_sparsevec);
Datum
halfvec_to_sparsevec(PG_FUNCTION_ARGS)
{
	HalfVector *v = PG_GETARG_HALFVEC_P(0);
	float	   *x = (float *) palloc(sizeof(float) * v->dim);

	VecCheckExpectedDim(PG_GETARG_INT32(1), v->dim);
	for (int i = 0; i < v->dim; i++)
		x[i] = HalfToFloat(v->x[i]);
	PG_RETURN_SPARSEVEC_P(sparsevec_from_dense(x, v->dim));
}

/* Cast sparsevec to halfvec: values rounded to half, range checked */
VECTOR_FUNCTION_INFO(sparsevec_to_halfvec);
Datum
sparsevec_to_halfvec(PG_FUNCTION_ARGS)
{
	SparseVector *v = PG_GETARG_SPARSEVEC_P(0);
	float	   *values = SPARSEVEC_VALUES(v);
	HalfVector *result;

	VecCheckDim("halfvec", v->dim, HALFVEC_MAX_DIM);
	VecCheckExpectedDim(PG_GETARG_INT32(1), v->dim);
	result = HalfVectorInit(v->dim);
	for (int i = 0; i < v->nnz; i++)
		result->x[v->indices[i]] = HalfFromFloatChecked(values[i]);
	PG_RETURN_HALFVEC_P(result);
}

/* Cast integer[], real[], double precision[] or numeric[] to sparsevec */
VECTOR_FUNCTION_INFO(array_to_sparsevec);
Datum
array_to_sparsevec(PG_FUNCTION_ARGS)
{
	int			n;
	float	   *x = VecArrayToFloats("sparsevec", PG_GETARG_ARRAYTYPE_P(0),
									 SPARSEVEC_MAX_DIM, &n);

	VecCheckExpectedDim(PG_GETARG_INT32(1), n);
	PG_RETURN_SPARSEVEC_P(sparsevec_from_dense(x, n));
}

/* The sums a distance needs, from one merge of the two index lists */
typedef struct SparseSums
{
	float		l2;				/* sum (a_i - b_i)^2 */
	float		ip;				/* sum a_i * b_i */
	float		l1;				/* sum |a_i - b_i| */
	float		aa;				/* sum a_i^2 */
	float		bb;				/* sum b_i^2 */
} SparseSums;

static void
sparse_sums(const SparseVector *a, const SparseVector *b, SparseSums *s)
{
	float	   *av = SPARSEVEC_VALUES(a);
	float	   *bv = SPARSEVEC_VALUES(b);
	int			i = 0;
	int			j = 0;

	memset(s, 0, sizeof(*s));
	while (i < a->nnz || j < b->nnz)
	{
		float		x = 0.0f;
		float		y = 0.0f;

		if (j >= b->nnz || (i < a->nnz && a->indices[i] < b->indices[j]))
			x = av[i++];
		else if (i >= a->nnz || b->indices[j] < a->indices[i])
			y = bv[j++];
		else
		{
			x = av[i++];
			y = bv[j++];
		}
		s->l2 += (x - y) * (x - y);
		s->ip += x * y;
		s->l1 += fabsf(x - y);
		s->aa += x * x;
		s->bb += y * y;
	}
}

/* The distances between two sparsevecs that SQL functions return */
typedef enum SparseDistance
{
	SPARSE_L2,
	SPARSE_L2_SQUARED,
	SPARSE_INNER_PRODUCT,
	SPARSE_NEGATIVE_INNER_PRODUCT,
	SPARSE_COSINE,
	SPARSE_L1
} SparseDistance;

static double
sparsevec_distance_args(FunctionCallInfo fcinfo, SparseDistance kind)
{
	SparseVector *a = PG_GETARG_SPARSEVEC_P(0);
	SparseVector *b = PG_GETARG_SPARSEVEC_P(1);
	SparseSums	s;
	double		result = 0.0;

	VecCheckSameDims("sparsevec", a->dim, b->dim);
	sparse_sums(a, b, &s);
	switch (kind)
	{
		case SPARSE_L2:
			result = sqrt((double) s.l2);
			break;
		case SPARSE_L2_SQUARED:
			result = s.l2;
			break;
		case SPARSE_INNER_PRODUCT:
			result = s.ip;
			break;
		case SPARSE_NEGATIVE_INNER_PRODUCT:
			result = -(double) s.ip;
			break;
		case SPARSE_COSINE:
			/* NaN when either norm is zero, as for vector */
			result = DistCosineFromSums(s.ip, s.aa, s.bb);
			break;
		case SPARSE_L1:
			result = s.l1;
			break;
	}
	PG_FREE_IF_COPY(a, 0);
	PG_FREE_IF_COPY(b, 1);
	return result;
}

/* Euclidean distance (the <-> operator) */
VECTOR_FUNCTION_INFO(sparsevec_l2_distance);
Datum
sparsevec_l2_distance(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(sparsevec_distance_args(fcinfo, SPARSE_L2));
}

/* Squared Euclidean distance */
VECTOR_FUNCTION_INFO(sparsevec_l2_squared_distance);
Datum
sparsevec_l2_squared_distance(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(sparsevec_distance_args(fcinfo, SPARSE_L2_SQUARED));
}

/* Inner product */
VECTOR_FUNCTION_INFO(sparsevec_inner_product);
Datum
sparsevec_inner_product(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(sparsevec_distance_args(fcinfo, SPARSE_INNER_PRODUCT));
}

/* Negative inner product (the <#> operator) */
VECTOR_FUNCTION_INFO(sparsevec_negative_inner_product);
Datum
sparsevec_negative_inner_product(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(sparsevec_distance_args(fcinfo, SPARSE_NEGATIVE_INNER_PRODUCT));
}

/* Cosine distance (the <=> operator) */
VECTOR_FUNCTION_INFO(sparsevec_cosine_distance);
Datum
sparsevec_cosine_distance(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(sparsevec_distance_args(fcinfo, SPARSE_COSINE));
}

/* Taxicab distance (the <+> operator) */
VECTOR_FUNCTION_INFO(sparsevec_l1_distance);
Datum
sparsevec_l1_distance(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(sparsevec_distance_args(fcinfo, SPARSE_L1));
}

/* Sum of the squares of the values, in double */
static double
sparsevec_sum_of_squares(const SparseVector *v)
{
	float	   *values = SPARSEVEC_VALUES(v);
	double		sum = 0.0;

	for (int i = 0; i < v->nnz; i++)
		sum += (double) values[i] * (double) values[i];
	return sum;
}

/* Euclidean norm */
VECTOR_FUNCTION_INFO(sparsevec_l2_norm);
Datum
sparsevec_l2_norm(PG_FUNCTION_ARGS)
{
	SparseVector *v = PG_GETARG_SPARSEVEC_P(0);
	double		sum = sparsevec_sum_of_squares(v);

	PG_FREE_IF_COPY(v, 0);
	PG_RETURN_FLOAT8(sqrt(sum));
}

/*
 * Scale to unit Euclidean norm; a zero vector stays zero.  A value that
 * underflows to zero is left out, so the result keeps the no-zeros rule.
 */
VECTOR_FUNCTION_INFO(sparsevec_l2_normalize);
Datum
sparsevec_l2_normalize(PG_FUNCTION_ARGS)
{
	SparseVector *v = PG_GETARG_SPARSEVEC_P(0);
	float	   *values = SPARSEVEC_VALUES(v);
	double		norm = sqrt(sparsevec_sum_of_squares(v));
	float	   *scaled = (float *) palloc(sizeof(float) * (v->nnz + 1));
	int			nnz = 0;
	SparseVector *result;

	for (int i = 0; i < v->nnz; i++)
	{
		scaled[i] = (float) (values[i] / norm);
		nnz += scaled[i] != 0.0f;
	}
	result = SparseVectorInit(v->dim, nnz);
	nnz = 0;
	for (int i = 0; i < v->nnz; i++)
		if (scaled[i] != 0.0f)
		{
			result->indices[nnz] = v->indices[i];
			SPARSEVEC_VALUES(result)[nnz++] = scaled[i];
		}
	PG_RETURN_SPARSEVEC_P(result);
}

/*
 * Compare as the dense vectors would compare: element-wise over the
 * shorter one's dimensions, then by dimension count.  Missing elements
 * are zeros, so the first index where the values differ decides.
 */
static int
sparsevec_cmp_args(FunctionCallInfo fcinfo)
{
	SparseVector *a = PG_GETARG_SPARSEVEC_P(0);
	SparseVector *b = PG_GETARG_SPARSEVEC_P(1);
	float	   *av = SPARSEVEC_VALUES(a);
	float	   *bv = SPARSEVEC_VALUES(b);
	int			mindim = Min(a->dim, b->dim);
	int			i = 0;
	int			j = 0;
	int			result = 0;

	while (result == 0 && (i < a->nnz || j < b->nnz))
	{
		int			index;
		float		x = 0.0f;
		float		y = 0.0f;

		if (j >= b->nnz || (i < a->nnz && a->indices[i] < b->indices[j]))
		{
			index = a->indices[i];
			x = av[i++];
		}
		else if (i >= a->nnz || b->indices[j] < a->indices[i])
		{
			index = b->indices[j];
			y = bv[j++];
		}
		else
		{
			index = a->indices[i];
			x = av[i++];
			y = bv[j++];
		}
		if (index >= mindim)
			break;
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
VECTOR_CMP_FUNCTIONS(sparsevec, sparsevec_cmp_args)
