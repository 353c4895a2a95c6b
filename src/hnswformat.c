/*-------------------------------------------------------------------------
 *
 * hnswformat.c
 *	  The element formats of the hnsw index and the metrics its opclasses
 *	  name: what an element of each indexable type stores (vector: float4,
 *	  halfvec: float16, bit: the bits, sparsevec: its non-zero elements),
 *	  how a datum becomes that stored form, and the distance kernels
 *	  between two stored forms.
 *
 * The algorithm (hnswgraph*.c) and the storages (hnswmem.c, hnswpage.c)
 * see a stored vector only as a pointer to HnswIndexInfo.vecsize bytes,
 * which they copy, compare bytewise and hand to the graph's kernel; what
 * those bytes mean is this file's alone.  So one more opclass is one more
 * format or metric here, and a support function in SQL.
 *
 * The kernels have distance.h's float signature, so that the vector
 * metrics hand the graph distance.c's dispatched kernels themselves, as
 * before there were formats: the vector path pays nothing for them.  The
 * other formats' kernels are small wrappers that call their dispatched
 * kernels (halfdistance.h) on the stored form.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "utils/varbit.h"

#include "halfdistance.h"
#include "halfvec.h"
#include "hnsw.h"
#include "sparsevec.h"
#include "vector.h"

/* Support function 1 of each opclass: see the metrics below */
#define HNSW_METRIC_FUNCTION(fn, metric) \
	extern PGDLLEXPORT Datum fn(PG_FUNCTION_ARGS); \
	PG_FUNCTION_INFO_V1(fn); \
	Datum fn(PG_FUNCTION_ARGS) { PG_RETURN_POINTER(&(metric)); }

/* Error out on a value whose dimensions are not the index's */
static void
different_dimensions(const char *what, int expected, int got)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("different %s %d and %d", what, expected, got)));
}

/* vector: float4 ---------------------------------------------------------- */

static Size
vector_size(int dim)
{
	return sizeof(float) * dim;
}

static int
vector_dimensions(Datum value)
{
	Vector	   *v = DatumGetVector(value);
	int			dim = v->dim;

	if ((Pointer) v != DatumGetPointer(value))
		pfree(v);
	return dim;
}

/*
 * The elements as they are, or normalized for cosine: then a zero vector,
 * whose distance to anything is NaN, has no place in the index.
 */
static bool
vector_prepare(Datum value, int dim, bool normalize, bool skipZero, void *out)
{
	Vector	   *v = DatumGetVector(value);
	float	   *x = (float *) out;
	bool		ok = true;

	if (v->dim != dim)
		different_dimensions("vector dimensions", dim, v->dim);
	memcpy(x, v->x, sizeof(float) * dim);
	if (normalize || skipZero)
	{
		double		norm = 0;

		/* in double: float squares overflow from 1e19 on */
		for (int i = 0; i < dim; i++)
			norm += (double) x[i] * x[i];
		norm = sqrt(norm);

		if (norm == 0 || !isfinite(norm))
			ok = false;
		else if (normalize)
		{
			for (int i = 0; i < dim; i++)
				x[i] = (float) (x[i] / norm);
		}
	}
	if ((Pointer) v != DatumGetPointer(value))
		pfree(v);
	return ok;
}

/* How far a stored unit vector's squared norm may be from 1 */
#define HNSW_VERIFY_NORM_SLACK		1e-3

static char *
vector_check(const void *stored, int dim, bool normalized)
{
	const float *x = (const float *) stored;
	double		norm = 0;

	for (int i = 0; i < dim; i++)
	{
		if (!isfinite(x[i]))
			return psprintf("Element %d of the vector is not a finite number.", i);
		norm += (double) x[i] * x[i];
	}
	if (normalized && fabs(norm - 1.0) > HNSW_VERIFY_NORM_SLACK)
		return psprintf("The vector of a cosine index has squared norm %g, not 1.",
						norm);
	return NULL;
}

static const HnswFormat hnsw_vector_format = {
	.type = "vector",
	.maxDimensions = HNSW_MAX_DIM,
	.size = vector_size,
	.dimensions = vector_dimensions,
	.prepare = vector_prepare,
	.check = vector_check,
};

static float
neg_inner_product(const float *a, const float *b, int dim)
{
	return -DistInnerProduct(a, b, dim);
}

static DistanceKernel vector_neg_ip = neg_inner_product;

/*
 * Inner product is searched by its own order but linked by L2: under
 * negative inner product most elements are nobody's nearest neighbor, so
 * the heuristic prunes away every link into them and they become
 * unreachable (README, Design, for how many).  An L2 graph links every
 * element to its surroundings, and a search by inner product walks it
 * well.  The same holds for every format.
 *
 * Cosine stores and searches unit vectors, on which squared L2 is
 * 2 - 2 cos: the same order as the cosine distance, and unlike the inner
 * product a sum of terms that never shrinks, so that its bounded kernel
 * can stop reading a vector once it is out of the running.
 */
static const HnswMetric hnsw_l2_metric = {
	"l2", &hnsw_vector_format, &DistL2Squared, NULL, false, false
};
static const HnswMetric hnsw_ip_metric = {
	"ip", &hnsw_vector_format, &vector_neg_ip, &DistL2Squared, false, false
};
static const HnswMetric hnsw_cosine_metric = {
	"cosine", &hnsw_vector_format, &DistL2Squared, NULL, true, true
};
static const HnswMetric hnsw_l1_metric = {
	"l1", &hnsw_vector_format, &DistL1, NULL, false, false
};

HNSW_METRIC_FUNCTION(tinyhnsw_l2_metric, hnsw_l2_metric)
HNSW_METRIC_FUNCTION(tinyhnsw_ip_metric, hnsw_ip_metric)
HNSW_METRIC_FUNCTION(tinyhnsw_cosine_metric, hnsw_cosine_metric)
HNSW_METRIC_FUNCTION(tinyhnsw_l1_metric, hnsw_l1_metric)

/* halfvec: float16 -------------------------------------------------------- */

/* Stored forms are padded to 4 bytes, so that element tuples stay aligned */
static Size
halfvec_size(int dim)
{
	return TYPEALIGN(sizeof(float), sizeof(half) * dim);
}

static int
halfvec_dimensions(Datum value)
{
	HalfVector *v = DatumGetHalfVector(value);
	int			dim = v->dim;

	if ((Pointer) v != DatumGetPointer(value))
		pfree(v);
	return dim;
}

/*
 * The halves as they are.  Cosine keeps them so too (normalize is never
 * set): normalizing in float and rounding back to half would move the
 * stored vectors off the values the operator compares, so its kernel
 * computes the cosine distance itself.
 */
static bool
halfvec_prepare(Datum value, int dim, bool normalize, bool skipZero, void *out)
{
	HalfVector *v = DatumGetHalfVector(value);
	bool		ok = true;

	Assert(!normalize);
	if (v->dim != dim)
		different_dimensions("halfvec dimensions", dim, v->dim);
	memset(out, 0, halfvec_size(dim));
	memcpy(out, v->x, sizeof(half) * dim);
	if (skipZero)
	{
		ok = false;
		for (int i = 0; i < dim && !ok; i++)
			ok = (v->x[i] & 0x7fff) != 0;	/* not +0 or -0 */
	}
	if ((Pointer) v != DatumGetPointer(value))
		pfree(v);
	return ok;
}

static char *
halfvec_check(const void *stored, int dim, bool normalized)
{
	const half *x = (const half *) stored;

	for (int i = 0; i < dim; i++)
	{
		if ((x[i] & 0x7c00) == 0x7c00)
			return psprintf("Element %d of the halfvec is not a finite number.", i);
	}
	for (Size i = sizeof(half) * dim; i < halfvec_size(dim); i++)
	{
		if (((const uint8 *) stored)[i] != 0)
			return psprintf("The halfvec's padding is not zero.");
	}
	return NULL;
}

static const HnswFormat hnsw_halfvec_format = {
	.type = "halfvec",
	.maxDimensions = HNSW_MAX_HALFVEC_DIM,
	.size = halfvec_size,
	.dimensions = halfvec_dimensions,
	.prepare = halfvec_prepare,
	.check = halfvec_check,
};

static float
halfvec_l2_squared(const float *a, const float *b, int dim)
{
	return HalfDistL2Squared((const half *) a, (const half *) b, dim);
}

static float
halfvec_neg_inner_product(const float *a, const float *b, int dim)
{
	return -HalfDistInnerProduct((const half *) a, (const half *) b, dim);
}

/* 1 - cos, as the <=> operator computes it (both are non-zero) */
static float
halfvec_cosine(const float *a, const float *b, int dim)
{
	return (float) HalfDistCosine((const half *) a, (const half *) b, dim);
}

static float
halfvec_l1(const float *a, const float *b, int dim)
{
	return HalfDistL1((const half *) a, (const half *) b, dim);
}

static DistanceKernel halfvec_l2_kernel = halfvec_l2_squared;
static DistanceKernel halfvec_ip_kernel = halfvec_neg_inner_product;
static DistanceKernel halfvec_cosine_kernel = halfvec_cosine;
static DistanceKernel halfvec_l1_kernel = halfvec_l1;

static const HnswMetric hnsw_halfvec_l2_metric = {
	"halfvec_l2", &hnsw_halfvec_format, &halfvec_l2_kernel, NULL, false, false
};
static const HnswMetric hnsw_halfvec_ip_metric = {
	"halfvec_ip", &hnsw_halfvec_format, &halfvec_ip_kernel,
	&halfvec_l2_kernel, false, false
};
static const HnswMetric hnsw_halfvec_cosine_metric = {
	"halfvec_cosine", &hnsw_halfvec_format, &halfvec_cosine_kernel, NULL,
	false, true
};
static const HnswMetric hnsw_halfvec_l1_metric = {
	"halfvec_l1", &hnsw_halfvec_format, &halfvec_l1_kernel, NULL, false, false
};

HNSW_METRIC_FUNCTION(tinyhnsw_halfvec_l2_metric, hnsw_halfvec_l2_metric)
HNSW_METRIC_FUNCTION(tinyhnsw_halfvec_ip_metric, hnsw_halfvec_ip_metric)
HNSW_METRIC_FUNCTION(tinyhnsw_halfvec_cosine_metric, hnsw_halfvec_cosine_metric)
HNSW_METRIC_FUNCTION(tinyhnsw_halfvec_l1_metric, hnsw_halfvec_l1_metric)

/* bit: the bits, dim of them ---------------------------------------------- */

static Size
bit_size(int dim)
{
	return TYPEALIGN(sizeof(float), (dim + BITS_PER_BYTE - 1) / BITS_PER_BYTE);
}

static int
bit_dimensions(Datum value)
{
	VarBit	   *v = DatumGetVarBitP(value);
	int			dim = VARBITLEN(v);

	if ((Pointer) v != DatumGetPointer(value))
		pfree(v);
	return dim;
}

/* The bytes of the string (its pad bits are zero), padded with zeros */
static bool
bit_prepare(Datum value, int dim, bool normalize, bool skipZero, void *out)
{
	VarBit	   *v = DatumGetVarBitP(value);

	Assert(!normalize && !skipZero);
	if (VARBITLEN(v) != dim)
		different_dimensions("bit lengths", dim, VARBITLEN(v));
	memset(out, 0, bit_size(dim));
	memcpy(out, VARBITS(v), VARBITBYTES(v));
	if ((Pointer) v != DatumGetPointer(value))
		pfree(v);
	return true;
}

static char *
bit_check(const void *stored, int dim, bool normalized)
{
	const uint8 *x = (const uint8 *) stored;
	int			nbytes = (dim + BITS_PER_BYTE - 1) / BITS_PER_BYTE;

	if (dim % BITS_PER_BYTE != 0 &&
		(x[nbytes - 1] & (0xFF >> (dim % BITS_PER_BYTE))) != 0)
		return psprintf("The bit string has bits set past its length %d.", dim);
	for (Size i = nbytes; i < bit_size(dim); i++)
	{
		if (x[i] != 0)
			return psprintf("The bit string's padding is not zero.");
	}
	return NULL;
}

static const HnswFormat hnsw_bit_format = {
	.type = "bit",
	.maxDimensions = HNSW_MAX_BIT_DIM,
	.size = bit_size,
	.dimensions = bit_dimensions,
	.prepare = bit_prepare,
	.check = bit_check,
};

/* The number of bits that differ, as <~> counts them */
static float
bit_hamming(const float *a, const float *b, int dim)
{
	return (float) BitXorCount((const unsigned char *) a,
							   (const unsigned char *) b,
							   (dim + BITS_PER_BYTE - 1) / BITS_PER_BYTE);
}

/* 1 - |a & b| / |a | b|, as <%> computes it: 1 when no bit is set */
static float
bit_jaccard(const float *a, const float *b, int dim)
{
	int			nbytes = (dim + BITS_PER_BYTE - 1) / BITS_PER_BYTE;
	uint64		either = BitOrCount((const unsigned char *) a,
									(const unsigned char *) b, nbytes);

	if (either == 0)
		return 1.0f;
	return (float) (1.0 - (double) BitAndCount((const unsigned char *) a,
											   (const unsigned char *) b,
											   nbytes) / (double) either);
}

static DistanceKernel bit_hamming_kernel = bit_hamming;
static DistanceKernel bit_jaccard_kernel = bit_jaccard;

static const HnswMetric hnsw_bit_hamming_metric = {
	"bit_hamming", &hnsw_bit_format, &bit_hamming_kernel, NULL, false, false
};
static const HnswMetric hnsw_bit_jaccard_metric = {
	"bit_jaccard", &hnsw_bit_format, &bit_jaccard_kernel, NULL, false, false
};

HNSW_METRIC_FUNCTION(tinyhnsw_bit_hamming_metric, hnsw_bit_hamming_metric)
HNSW_METRIC_FUNCTION(tinyhnsw_bit_jaccard_metric, hnsw_bit_jaccard_metric)

/* sparsevec: the non-zero elements ---------------------------------------- */

/*
 * Every element of an index has the same size (tuples never change size,
 * and a free slot is reused by any later element), so a sparsevec is
 * stored with room for the most non-zero elements an index takes:
 *
 *	int32	nnz
 *	int32	indices[nnz]	0-based, increasing
 *	float4	values[nnz]
 *	zeros up to HNSW_MAX_SPARSEVEC_NNZ elements' room
 *
 * That is about 8 kB, a page per element whatever its count; an element
 * sized to its own count would need tuples of varying size.
 */
typedef struct HnswSparse
{
	int32		nnz;
	int32		indices[FLEXIBLE_ARRAY_MEMBER];
	/* float4 values[nnz] follow the indices */
} HnswSparse;

#define HNSW_SPARSE_VALUES(s)	((const float *) ((s)->indices + (s)->nnz))

static Size
sparsevec_size(int dim)
{
	return offsetof(HnswSparse, indices) +
		(sizeof(int32) + sizeof(float)) * HNSW_MAX_SPARSEVEC_NNZ;
}

static int
sparsevec_dimensions(Datum value)
{
	SparseVector *v = DatumGetSparseVector(value);
	int			dim = v->dim;

	if ((Pointer) v != DatumGetPointer(value))
		pfree(v);
	return dim;
}

static bool
sparsevec_prepare(Datum value, int dim, bool normalize, bool skipZero,
				  void *out)
{
	SparseVector *v = DatumGetSparseVector(value);
	HnswSparse *s = (HnswSparse *) out;
	bool		ok;

	Assert(!normalize);
	if (v->dim != dim)
		different_dimensions("sparsevec dimensions", dim, v->dim);
	if (v->nnz > HNSW_MAX_SPARSEVEC_NNZ)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("sparsevec cannot have more than %d non-zero elements for hnsw index",
						HNSW_MAX_SPARSEVEC_NNZ),
				 errdetail("The sparsevec has %d.", v->nnz)));
	memset(out, 0, sparsevec_size(dim));
	s->nnz = v->nnz;
	memcpy(s->indices, v->indices, sizeof(int32) * v->nnz);
	memcpy((float *) HNSW_SPARSE_VALUES(s), SPARSEVEC_VALUES(v),
		   sizeof(float) * v->nnz);
	/* the type keeps no zeros: no elements is the zero vector */
	ok = !(skipZero && v->nnz == 0);
	if ((Pointer) v != DatumGetPointer(value))
		pfree(v);
	return ok;
}

static char *
sparsevec_check(const void *stored, int dim, bool normalized)
{
	const HnswSparse *s = (const HnswSparse *) stored;
	const float *values;
	Size		used;

	if (s->nnz < 0 || s->nnz > HNSW_MAX_SPARSEVEC_NNZ)
		return psprintf("The sparsevec has %d non-zero elements.", s->nnz);
	values = HNSW_SPARSE_VALUES(s);
	for (int i = 0; i < s->nnz; i++)
	{
		if (s->indices[i] < 0 || s->indices[i] >= dim ||
			(i > 0 && s->indices[i] <= s->indices[i - 1]))
			return psprintf("Index %d of the sparsevec, %d, is out of order or range.",
							i, s->indices[i]);
		if (!isfinite(values[i]) || values[i] == 0)
			return psprintf("Value %d of the sparsevec is zero or not a finite number.", i);
	}
	used = offsetof(HnswSparse, indices) +
		(sizeof(int32) + sizeof(float)) * s->nnz;
	for (Size i = used; i < sparsevec_size(dim); i++)
	{
		if (((const uint8 *) stored)[i] != 0)
			return psprintf("The sparsevec's padding is not zero.");
	}
	return NULL;
}

static const HnswFormat hnsw_sparsevec_format = {
	.type = "sparsevec",
	.maxDimensions = SPARSEVEC_MAX_DIM,
	.size = sparsevec_size,
	.dimensions = sparsevec_dimensions,
	.prepare = sparsevec_prepare,
	.check = sparsevec_check,
};

/*
 * One merge of the two index lists, calling step(x, y) for each index that
 * either has (a missing element is 0): the operators' merge
 * (sparsevec.c), with the same sums in the same order, so the distances
 * are theirs, bit for bit.
 */
#define SPARSE_MERGE(a, b, step) \
	do { \
		const HnswSparse *sa_ = (const HnswSparse *) (a); \
		const HnswSparse *sb_ = (const HnswSparse *) (b); \
		const float *av_ = HNSW_SPARSE_VALUES(sa_); \
		const float *bv_ = HNSW_SPARSE_VALUES(sb_); \
		int			i_ = 0; \
		int			j_ = 0; \
		while (i_ < sa_->nnz || j_ < sb_->nnz) \
		{ \
			float		x = 0.0f; \
			float		y = 0.0f; \
			if (j_ >= sb_->nnz || \
				(i_ < sa_->nnz && sa_->indices[i_] < sb_->indices[j_])) \
				x = av_[i_++]; \
			else if (i_ >= sa_->nnz || sb_->indices[j_] < sa_->indices[i_]) \
				y = bv_[j_++]; \
			else \
			{ \
				x = av_[i_++]; \
				y = bv_[j_++]; \
			} \
			step; \
		} \
	} while (0)

static float
sparsevec_l2_squared(const float *a, const float *b, int dim)
{
	float		l2 = 0.0f;

	SPARSE_MERGE(a, b, l2 += (x - y) * (x - y));
	return l2;
}

static float
sparsevec_neg_inner_product(const float *a, const float *b, int dim)
{
	float		ip = 0.0f;

	SPARSE_MERGE(a, b, ip += x * y);
	return -ip;
}

static float
sparsevec_cosine(const float *a, const float *b, int dim)
{
	float		ip = 0.0f;
	float		aa = 0.0f;
	float		bb = 0.0f;

	SPARSE_MERGE(a, b, (ip += x * y, aa += x * x, bb += y * y));
	return (float) DistCosineFromSums(ip, aa, bb);
}

static float
sparsevec_l1(const float *a, const float *b, int dim)
{
	float		l1 = 0.0f;

	SPARSE_MERGE(a, b, l1 += fabsf(x - y));
	return l1;
}

static DistanceKernel sparsevec_l2_kernel = sparsevec_l2_squared;
static DistanceKernel sparsevec_ip_kernel = sparsevec_neg_inner_product;
static DistanceKernel sparsevec_cosine_kernel = sparsevec_cosine;
static DistanceKernel sparsevec_l1_kernel = sparsevec_l1;

static const HnswMetric hnsw_sparsevec_l2_metric = {
	"sparsevec_l2", &hnsw_sparsevec_format, &sparsevec_l2_kernel, NULL,
	false, false
};
static const HnswMetric hnsw_sparsevec_ip_metric = {
	"sparsevec_ip", &hnsw_sparsevec_format, &sparsevec_ip_kernel,
	&sparsevec_l2_kernel, false, false
};
static const HnswMetric hnsw_sparsevec_cosine_metric = {
	"sparsevec_cosine", &hnsw_sparsevec_format, &sparsevec_cosine_kernel,
	NULL, false, true
};
static const HnswMetric hnsw_sparsevec_l1_metric = {
	"sparsevec_l1", &hnsw_sparsevec_format, &sparsevec_l1_kernel, NULL,
	false, false
};

HNSW_METRIC_FUNCTION(tinyhnsw_sparsevec_l2_metric, hnsw_sparsevec_l2_metric)
HNSW_METRIC_FUNCTION(tinyhnsw_sparsevec_ip_metric, hnsw_sparsevec_ip_metric)
HNSW_METRIC_FUNCTION(tinyhnsw_sparsevec_cosine_metric, hnsw_sparsevec_cosine_metric)
HNSW_METRIC_FUNCTION(tinyhnsw_sparsevec_l1_metric, hnsw_sparsevec_l1_metric)

/* The index's side ------------------------------------------------------- */

static const HnswMetric *const hnsw_metrics[] = {
	&hnsw_l2_metric, &hnsw_ip_metric, &hnsw_cosine_metric, &hnsw_l1_metric,
	&hnsw_halfvec_l2_metric, &hnsw_halfvec_ip_metric,
	&hnsw_halfvec_cosine_metric, &hnsw_halfvec_l1_metric,
	&hnsw_bit_hamming_metric, &hnsw_bit_jaccard_metric,
	&hnsw_sparsevec_l2_metric, &hnsw_sparsevec_ip_metric,
	&hnsw_sparsevec_cosine_metric, &hnsw_sparsevec_l1_metric,
};

/* Is this one of our metrics (what a support function returned)? */
bool
HnswKnownMetric(const HnswMetric *metric)
{
	for (int i = 0; i < lengthof(hnsw_metrics); i++)
	{
		if (metric == hnsw_metrics[i])
			return true;
	}
	return false;
}

/* The kernel a graph compares vectors with, to build it or to search it */
DistanceKernel
HnswMetricKernel(const HnswMetric *metric, bool build)
{
	if (build && metric->buildKernel)
		return *metric->buildKernel;
	return *metric->kernel;
}

/* Set an index's dimensions, and the size of its stored vectors with them */
void
HnswSetDimensions(HnswIndexInfo *info, int dimensions)
{
	info->dimensions = dimensions;
	info->vecsize = dimensions > 0 ?
		info->metric->format->size(dimensions) : 0;
}

/*
 * Write a datum into out (info->vecsize bytes) as the index stores and
 * searches it.  Returns false if it has no place in the index: a zero
 * vector under cosine, whose distance to anything is NaN.
 */
bool
HnswPrepareVector(const HnswIndexInfo *info, Datum value, void *out)
{
	const HnswMetric *metric = info->metric;

	return metric->format->prepare(value, info->dimensions, metric->normalize,
								   metric->skipZero, out);
}
