/*-------------------------------------------------------------------------
 *
 * vecutil.c
 *	  Input checks, element-list text I/O, typmod input, array casts and
 *	  the avg/sum aggregate state shared by vector, halfvec and sparsevec.
 *
 * Elements are read by FloatParse() (floatparse.c), strtof() made fast for
 * short decimals, and written as the shortest text that reads back to the
 * same float4.  Messages name the type the caller passes, so each type's
 * errors read as its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/lsyscache.h"

#include "floatparse.h"
#include "vecutil.h"

/* Error out unless 1 <= dim <= maxdim */
void
VecCheckDim(const char *type, int64 dim, int64 maxdim)
{
	if (dim < 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s must have at least 1 dimension", type)));
	if (dim > maxdim)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s cannot have more than %lld dimensions",
						type, (long long) maxdim)));
}

/* Error out unless dim matches the typmod (when there is one) */
void
VecCheckExpectedDim(int32 typmod, int64 dim)
{
	if (typmod != -1 && typmod != dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("expected %d dimensions, not %lld",
						typmod, (long long) dim)));
}

/* Error out unless two values have the same number of dimensions */
void
VecCheckSameDims(const char *type, int64 adim, int64 bdim)
{
	if (adim != bdim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("different %s dimensions %lld and %lld",
						type, (long long) adim, (long long) bdim)));
}

/* Error out on the element values no type of ours may hold */
void
VecCheckElement(const char *type, double value)
{
	if (isnan(value))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("NaN not allowed in %s", type)));
	if (isinf(value))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("infinite value not allowed in %s", type)));
}

/* Convert a float8 to an element, rejecting non-finite values and overflow */
float
VecFloat8ToElement(const char *type, double value)
{
	float		result;

	VecCheckElement(type, value);
	result = (float) value;
	if (unlikely(isinf(result)))
		float_overflow_error();
	return result;
}

/* Report a malformed text literal */
void
VecSyntaxError(const char *type, const char *literal, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type %s: \"%s\"", type, literal),
			 detail ? errdetail("%s", detail) : 0));
}

/* Read one element at *p and move *p past it */
float
VecParseElement(const char *type, const char *literal, char **p, float limit)
{
	char	   *start = *p;
	char	   *end;
	float		value;

	while (VecIsSpace(*start))
		start++;

	/* strtof(), faster for the usual short decimals */
	errno = 0;
	value = FloatParse(start, &end);
	if (end == start)
		VecSyntaxError(type, literal, NULL);
	if ((errno == ERANGE && isinf(value)) ||
		(isfinite(value) && fabsf(value) >= limit))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("\"%s\" is out of range for type %s",
						pnstrdup(start, end - start), type)));
	VecCheckElement(type, value);
	*p = end;
	return value;
}

/* Read the literal '[x1, ..., xn]', white space allowed around everything */
float *
VecParseList(const char *type, const char *literal, int maxdim, float limit,
			 int *dim)
{
	char	   *p = (char *) literal;
	int			capacity = 16;
	int			n = 0;
	float	   *x;

	while (VecIsSpace(*p))
		p++;
	if (*p != '[')
		VecSyntaxError(type, literal, "Vector contents must start with \"[\".");
	p++;
	while (VecIsSpace(*p))
		p++;
	if (*p == ']')
		VecCheckDim(type, 0, maxdim);

	x = (float *) palloc(sizeof(float) * capacity);
	for (;;)
	{
		if (n == maxdim)
			VecCheckDim(type, n + 1, maxdim);
		if (n == capacity)
		{
			capacity *= 2;
			x = (float *) repalloc(x, sizeof(float) * capacity);
		}
		x[n++] = VecParseElement(type, literal, &p, limit);

		while (VecIsSpace(*p))
			p++;
		if (*p == ',')
		{
			p++;
			continue;
		}
		if (*p == ']')
		{
			p++;
			break;
		}
		VecSyntaxError(type, literal, NULL);
	}

	while (VecIsSpace(*p))
		p++;
	if (*p != '\0')
		VecSyntaxError(type, literal, "Junk after closing right bracket.");

	*dim = n;
	return x;
}

/* Append the shortest text of a float4 at p */
int
VecFormatElement(float value, char *p)
{
	return float_to_shortest_decimal_bufn(value, p);
}

/* Write n elements as '[x1,...,xn]' */
char *
VecFormatList(const float *x, int n)
{
	/* each element takes at most FLOAT_SHORTEST_DECIMAL_LEN - 1 plus a comma */
	char	   *buf = (char *) palloc(FLOAT_SHORTEST_DECIMAL_LEN * n + 3);
	char	   *p = buf;

	*p++ = '[';
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			*p++ = ',';
		p += VecFormatElement(x[i], p);
	}
	*p++ = ']';
	*p = '\0';
	return buf;
}

/* Type modifier input: (n) with 1 <= n <= maxdim */
int32
VecTypmodIn(const char *type, ArrayType *ta, int64 maxdim)
{
	int32	   *tl;
	int			n;

	tl = ArrayGetIntegerTypmods(ta, &n);
	if (n != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid type modifier")));
	if (tl[0] < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dimensions for type %s must be at least 1", type)));
	if (tl[0] > maxdim)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dimensions for type %s cannot exceed %lld",
						type, (long long) maxdim)));
	return tl[0];
}

/* The elements of a numeric array as float4, checked for the type */
float *
VecArrayToFloats(const char *type, ArrayType *array, int64 maxdim, int *n)
{
	Oid			elemtype = ARR_ELEMTYPE(array);
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Datum	   *elems;
	bool	   *nulls;
	float	   *x;

	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("array must be 1-D")));
	if (array_contains_nulls(array))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("array must not contain nulls")));
	VecCheckDim(type, ArrayGetNItems(ARR_NDIM(array), ARR_DIMS(array)), maxdim);

	if (elemtype != INT4OID && elemtype != FLOAT4OID &&
		elemtype != FLOAT8OID && elemtype != NUMERICOID)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot cast an array of %s to %s",
						format_type_be(elemtype), type)));

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(array, elemtype, typlen, typbyval, typalign,
					  &elems, &nulls, n);

	x = (float *) palloc(sizeof(float) * *n);
	for (int i = 0; i < *n; i++)
	{
		switch (elemtype)
		{
			case INT4OID:
				x[i] = (float) DatumGetInt32(elems[i]);
				break;
			case FLOAT4OID:
				x[i] = DatumGetFloat4(elems[i]);
				VecCheckElement(type, x[i]);
				break;
			case FLOAT8OID:
				x[i] = VecFloat8ToElement(type, DatumGetFloat8(elems[i]));
				break;
			default:			/* NUMERICOID */
				{
					Datum		d = DirectFunctionCall1(numeric_float8, elems[i]);

					x[i] = VecFloat8ToElement(type, DatumGetFloat8(d));
				}
				break;
		}
	}
	return x;
}

/* A float4 array of n elements */
ArrayType *
VecFloatsToArray(const float *x, int n)
{
	Datum	   *datums = (Datum *) palloc(sizeof(Datum) * n);
	ArrayType  *result;

	for (int i = 0; i < n; i++)
		datums[i] = Float4GetDatum(x[i]);
	result = construct_array(datums, n, FLOAT4OID, sizeof(float4),
							 true, TYPALIGN_INT);
	pfree(datums);
	return result;
}

/*
 * Check an aggregate state: a 1-D float8[] without nulls holding the row
 * count followed by the running sums.  Returns the number of dimensions
 * (0 for the initial state '{0}').  The functions are callable directly,
 * so a state may be anything: one that no aggregation can produce is an
 * error rather than a NULL or a made-up vector.
 */
int
VecAggStateDim(ArrayType *state)
{
	int			n;
	double		count;

	if (ARR_NDIM(state) != 1 || ARR_HASNULL(state) ||
		ARR_ELEMTYPE(state) != FLOAT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("invalid vector aggregate state"),
				 errdetail("The state must be a 1-D double precision array without nulls.")));
	n = ARR_DIMS(state)[0];
	/* 16000 is the most dimensions of every type that aggregates */
	if (n < 1 || n - 1 > 16000)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("invalid vector aggregate state"),
				 errdetail("The state has %d elements.", n)));
	/* sums exist once a row was counted: '{0}', or a count of 1 or more */
	count = ((double *) ARR_DATA_PTR(state))[0];
	if (n == 1 && count != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("invalid vector aggregate state"),
				 errdetail("The state has a row count of %g but no sums.", count)));
	if (n > 1 && !(isfinite(count) && count >= 1 && count == floor(count)))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("invalid vector aggregate state"),
				 errdetail("The state's row count %g is not a positive whole number.",
						   count)));
	return n - 1;
}

/* Add x[0 .. dim-1] to the state in argument 0 */
ArrayType *
VecAggAccum(FunctionCallInfo fcinfo, const char *type, const float *x,
			int dim)
{
	ArrayType  *state = PG_GETARG_ARRAYTYPE_P(0);
	int			statedim = VecAggStateDim(state);
	double	   *sums;

	if (statedim == 0)
	{
		/* first row: the state takes its dimension count */
		Datum	   *datums = (Datum *) palloc(sizeof(Datum) * (dim + 1));
		ArrayType  *result;

		datums[0] = Float8GetDatum(1.0);
		for (int i = 0; i < dim; i++)
			datums[i + 1] = Float8GetDatum((double) x[i]);
		result = construct_array(datums, dim + 1, FLOAT8OID, sizeof(float8),
								 FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
		pfree(datums);
		return result;
	}

	VecCheckSameDims(type, statedim, dim);
	if (!AggCheckCallContext(fcinfo, NULL))
		state = PG_GETARG_ARRAYTYPE_P_COPY(0);

	sums = (double *) ARR_DATA_PTR(state);
	sums[0] += 1.0;
	for (int i = 0; i < dim; i++)
		sums[i + 1] += x[i];
	return state;
}

/* The sums or averages of a state; NULL when no rows were aggregated */
double *
VecAggFinal(ArrayType *state, bool average, int *dim)
{
	double	   *sums;
	double	   *result;
	double		count;

	*dim = VecAggStateDim(state);
	if (*dim == 0)
		return NULL;
	sums = (double *) ARR_DATA_PTR(state);
	count = sums[0];
	result = (double *) palloc(sizeof(double) * *dim);
	for (int i = 0; i < *dim; i++)
		result[i] = average ? sums[i + 1] / count : sums[i + 1];
	return result;
}
