/*-------------------------------------------------------------------------
 *
 * bitvec.c
 *	  Distances between PostgreSQL's own bit strings (Hamming and Jaccard),
 *	  and binary quantization of vector and halfvec into them.
 *
 * The bit type needs nothing of ours but these functions; the counting is
 * done by the dispatched popcount kernels of halfdistance.c.  Bit strings
 * of different lengths have no distance: that is an error.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/varbit.h"

#include "halfdistance.h"
#include "halfvec.h"
#include "vecutil.h"
#include "vector.h"

/* Error out unless a and b have the same number of bits */
static void
check_same_lengths(VarBit *a, VarBit *b)
{
	if (VARBITLEN(a) != VARBITLEN(b))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("different bit lengths %d and %d",
						VARBITLEN(a), VARBITLEN(b))));
}

/*
 * Hamming distance (the <~> operator): the number of bits that differ.
 * The pad bits past the length are zero in both, so whole bytes count.
 */
VECTOR_FUNCTION_INFO(hamming_distance);
Datum
hamming_distance(PG_FUNCTION_ARGS)
{
	VarBit	   *a = PG_GETARG_VARBIT_P(0);
	VarBit	   *b = PG_GETARG_VARBIT_P(1);

	check_same_lengths(a, b);
	PG_RETURN_FLOAT8((double) BitXorCount(VARBITS(a), VARBITS(b),
										  VARBITBYTES(a)));
}

/*
 * Jaccard distance (the <%> operator): 1 - |a & b| / |a | b|.  Two strings
 * with no bit set share nothing: their distance is 1.
 */
VECTOR_FUNCTION_INFO(jaccard_distance);
Datum
jaccard_distance(PG_FUNCTION_ARGS)
{
	VarBit	   *a = PG_GETARG_VARBIT_P(0);
	VarBit	   *b = PG_GETARG_VARBIT_P(1);
	uint64		both;
	uint64		either;

	check_same_lengths(a, b);
	either = BitOrCount(VARBITS(a), VARBITS(b), VARBITBYTES(a));
	if (either == 0)
		PG_RETURN_FLOAT8(1.0);
	both = BitAndCount(VARBITS(a), VARBITS(b), VARBITBYTES(a));
	PG_RETURN_FLOAT8(1.0 - (double) both / (double) either);
}

/* A zeroed bit string of n bits */
static VarBit *
bit_init(int n)
{
	VarBit	   *result = (VarBit *) palloc0(VARBITTOTALLEN(n));

	SET_VARSIZE(result, VARBITTOTALLEN(n));
	VARBITLEN(result) = n;
	return result;
}

#define SET_BIT(v, i)	(VARBITS(v)[(i) / BITS_PER_BYTE] |= (0x80 >> ((i) % BITS_PER_BYTE)))

/*
 * binary_quantize(vector): bit i is set when element i is above zero.
 */
VECTOR_FUNCTION_INFO(vector_binary_quantize);
Datum
vector_binary_quantize(PG_FUNCTION_ARGS)
{
	Vector	   *v = PG_GETARG_VECTOR_P(0);
	VarBit	   *result = bit_init(v->dim);

	for (int i = 0; i < v->dim; i++)
		if (v->x[i] > 0.0f)
			SET_BIT(result, i);
	PG_RETURN_VARBIT_P(result);
}

/*
 * binary_quantize(halfvec): bit i is set when element i is above zero
 * (sign bit clear, and not zero).
 */
VECTOR_FUNCTION_INFO(halfvec_binary_quantize);
Datum
halfvec_binary_quantize(PG_FUNCTION_ARGS)
{
	HalfVector *v = PG_GETARG_HALFVEC_P(0);
	VarBit	   *result = bit_init(v->dim);

	for (int i = 0; i < v->dim; i++)
		if ((v->x[i] & 0x8000) == 0 && v->x[i] != 0)
			SET_BIT(result, i);
	PG_RETURN_VARBIT_P(result);
}
