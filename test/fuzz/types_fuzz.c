/*-------------------------------------------------------------------------
 *
 * types_fuzz.c
 *	  libFuzzer target for the input functions of halfvec and sparsevec:
 *	  halfvec_in, halfvec_recv, sparsevec_in and sparsevec_recv, linked
 *	  with their sources and the backend stubs of pg_stubs.c.  Built and
 *	  run by test/fuzz/run, beside vector_fuzz.
 *
 * Input layout: byte 0 chooses the function and the typmod, the rest is
 * the payload (as in vector_fuzz.c).
 *
 *	byte 0 & 3		0: halfvec_in, 1: halfvec_recv, 2: sparsevec_in,
 *					3: sparsevec_recv
 *	byte 0 >> 2		0..47: typmod -1; 48..63: typmod 1..16
 *
 * Each input must be accepted or fail with a clean error (SQLSTATE class
 * 22 or 54, with a message).  Besides, these checks abort:
 *
 *	- halfvec text is accepted exactly when vector_in accepts the same
 *	  literal (within halfvec's 16000 dimensions) and every element is
 *	  below 65520 in magnitude, and then holds those elements rounded to
 *	  half; halfvec binary is accepted exactly when the header is valid,
 *	  the length matches and no element is a NaN or an infinity;
 *	- sparsevec binary is accepted exactly when the header is valid, the
 *	  length matches, the indices increase within the dimensions and the
 *	  values are finite and non-zero;
 *	- an accepted value is well formed (varlena size, counts, reserved 0,
 *	  finite elements; for sparsevec sorted indices and no zeros) and
 *	  round-trips: out then in, and send then recv, give the same bytes,
 *	  and send gives back exactly the bytes recv read.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmgr.h"
#include "lib/stringinfo.h"

#include "fuzz_harness.h"
#include "halfvec.h"
#include "pg_stubs.h"
#include "sparsevec.h"
#include "vector.h"

extern Datum halfvec_in(PG_FUNCTION_ARGS);
extern Datum halfvec_out(PG_FUNCTION_ARGS);
extern Datum halfvec_recv(PG_FUNCTION_ARGS);
extern Datum halfvec_send(PG_FUNCTION_ARGS);
extern Datum sparsevec_in(PG_FUNCTION_ARGS);
extern Datum sparsevec_out(PG_FUNCTION_ARGS);
extern Datum sparsevec_recv(PG_FUNCTION_ARGS);
extern Datum sparsevec_send(PG_FUNCTION_ARGS);
extern Datum vector_in(PG_FUNCTION_ARGS);

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

const char *fuzz_name = "types_fuzz";

typedef struct TypeFuncs
{
	const char *name;
	PGFunction	in;
	PGFunction	out;
	PGFunction	recv;
	PGFunction	send;
} TypeFuncs;

static const TypeFuncs halfvec_funcs = {"halfvec", halfvec_in, halfvec_out, halfvec_recv, halfvec_send};
static const TypeFuncs sparsevec_funcs = {"sparsevec", sparsevec_in, sparsevec_out, sparsevec_recv, sparsevec_send};

static uint32
get32(const uint8_t *p)
{
	return ((uint32) p[0] << 24) | ((uint32) p[1] << 16) | ((uint32) p[2] << 8) | p[3];
}

/* An accepted value must be well formed */
static void
check_value(const TypeFuncs *t, const void *value, int typmod)
{
	size_t		alloc = stub_alloc_size(value);

	if (alloc == 0 || !VARATT_IS_4B_U(value) || alloc < VARSIZE(value))
		fail("%s returned a bad varlena", t->name);
	if (t == &halfvec_funcs)
	{
		const HalfVector *v = value;

		if (v->dim < 1 || v->dim > HALFVEC_MAX_DIM || VARSIZE(v) != HALFVEC_SIZE(v->dim) ||
			v->unused != 0)
			fail("halfvec with dim %d, size %u, reserved %d", v->dim,
				 (unsigned) VARSIZE(v), v->unused);
		if (typmod != -1 && v->dim != typmod)
			fail("halfvec of %d dimensions for typmod %d", v->dim, typmod);
		for (int i = 0; i < v->dim; i++)
			if ((v->x[i] & 0x7c00) == 0x7c00)
				fail("halfvec element %d is not finite", i);
	}
	else
	{
		const SparseVector *v = value;
		const float *values;

		if (v->dim < 1 || v->dim > SPARSEVEC_MAX_DIM || v->nnz < 0 ||
			v->nnz > SPARSEVEC_MAX_NNZ || v->nnz > v->dim ||
			VARSIZE(v) != SPARSEVEC_SIZE(v->nnz) || v->unused != 0)
			fail("sparsevec with dim %d, nnz %d, size %u, reserved %d", v->dim,
				 v->nnz, (unsigned) VARSIZE(v), v->unused);
		if (typmod != -1 && v->dim != typmod)
			fail("sparsevec of %d dimensions for typmod %d", v->dim, typmod);
		values = SPARSEVEC_VALUES(v);
		for (int i = 0; i < v->nnz; i++)
		{
			if (v->indices[i] < 0 || v->indices[i] >= v->dim ||
				(i > 0 && v->indices[i] <= v->indices[i - 1]))
				fail("sparsevec index %d (%d) out of order or bounds", i, v->indices[i]);
			if (!isfinite(values[i]) || values[i] == 0.0f)
				fail("sparsevec value %d is zero or not finite", i);
		}
	}
}

/* out then in, and send then recv, give the same bytes */
static void
check_round_trips(const TypeFuncs *t, const void *value, const uint8_t *bytes, size_t n)
{
	Datum		d;
	char	   *out;
	size_t		alloc;
	bytea	   *sent;
	StringInfoData buf;

	if (!try_call(t->out, 1, PointerGetDatum(value), 0, 0, &d))
		fail("%s_out failed: %s", t->name, stub_error.message);
	out = DatumGetCString(d);
	alloc = stub_alloc_size(out);
	if (alloc == 0 || strnlen(out, alloc) >= alloc)
		fail("%s_out's string does not fit its allocation", t->name);
	if (!try_call(t->in, 3, CStringGetDatum(out), ObjectIdGetDatum(InvalidOid),
				  Int32GetDatum(-1), &d))
		fail("%s_in rejected %s_out's \"%.200s\": %s", t->name, t->name, out,
			 stub_error.message);
	if (VARSIZE(DatumGetPointer(d)) != VARSIZE(value) ||
		memcmp(DatumGetPointer(d), value, VARSIZE(value)) != 0)
		fail("%s text round trip changed the value (\"%.200s\")", t->name, out);

	if (!try_call(t->send, 1, PointerGetDatum(value), 0, 0, &d))
		fail("%s_send failed: %s", t->name, stub_error.message);
	sent = (bytea *) DatumGetPointer(d);
	if (bytes != NULL &&
		(VARSIZE(sent) - VARHDRSZ != n || memcmp(VARDATA(sent), bytes, n) != 0))
		fail("%s_send did not give back the %zu bytes %s_recv read", t->name, n, t->name);
	buf.data = VARDATA(sent);
	buf.len = VARSIZE(sent) - VARHDRSZ;
	buf.maxlen = buf.len;
	buf.cursor = 0;
	if (!try_call(t->recv, 3, PointerGetDatum(&buf), ObjectIdGetDatum(InvalidOid),
				  Int32GetDatum(-1), &d))
		fail("%s_recv rejected %s_send's bytes: %s", t->name, t->name, stub_error.message);
	if (buf.cursor != buf.len ||
		memcmp(DatumGetPointer(d), value, VARSIZE(value)) != 0)
		fail("%s binary round trip changed the value", t->name);
}

/* The reference reading of halfvec binary: is it valid? */
static bool
ref_halfvec_binary(const uint8_t *b, size_t n, int typmod)
{
	int			dim;

	if (n < 4)
		return false;
	dim = (int16) ((b[0] << 8) | b[1]);
	if (dim < 1 || dim > HALFVEC_MAX_DIM || b[2] != 0 || b[3] != 0 ||
		n != 4 + 2 * (size_t) dim)
		return false;
	for (int i = 0; i < dim; i++)
		if ((b[4 + 2 * i] & 0x7c) == 0x7c)
			return false;
	return typmod == -1 || typmod == dim;
}

/* The reference reading of sparsevec binary: is it valid? */
static bool
ref_sparsevec_binary(const uint8_t *b, size_t n, int typmod)
{
	int32		dim;
	int32		nnz;

	if (n < 12)
		return false;
	dim = (int32) get32(b);
	nnz = (int32) get32(b + 4);
	if (dim < 1 || dim > SPARSEVEC_MAX_DIM || nnz < 0 || nnz > SPARSEVEC_MAX_NNZ ||
		nnz > dim || get32(b + 8) != 0 || n != 12 + 8 * (size_t) nnz)
		return false;
	for (int i = 0; i < nnz; i++)
	{
		int32		index = (int32) get32(b + 12 + 4 * i);
		uint32		bits = get32(b + 12 + 4 * nnz + 4 * i);

		if (index < 0 || index >= dim ||
			(i > 0 && index <= (int32) get32(b + 12 + 4 * (i - 1))))
			return false;
		if ((bits & 0x7f800000) == 0x7f800000 || (bits & 0x7fffffff) == 0)
			return false;
	}
	return typmod == -1 || typmod == dim;
}

/*
 * The reference for halfvec text: vector_in's reading, within halfvec's
 * dimensions and float16's range.  Returns the vector, or NULL if invalid.
 */
static Vector *
ref_halfvec_text(const char *literal, int typmod)
{
	Datum		d;
	Vector	   *v;

	if (!try_call(vector_in, 3, CStringGetDatum(literal), ObjectIdGetDatum(InvalidOid),
				  Int32GetDatum(typmod), &d))
		return NULL;
	v = (Vector *) DatumGetPointer(d);
	if (v->dim > HALFVEC_MAX_DIM)
		return NULL;
	for (int i = 0; i < v->dim; i++)
		if (fabsf(v->x[i]) >= HALF_OVERFLOW)
			return NULL;
	return v;
}

static void
fuzz_one(const TypeFuncs *t, bool binary, const uint8_t *payload, size_t n, int typmod)
{
	Datum		d;
	bool		accepted;
	char	   *literal = NULL;
	StringInfoData buf;

	if (binary)
	{
		/* exactly the bytes, no terminator: ASan sees any read past them */
		buf.data = malloc(n > 0 ? n : 1);
		memcpy(buf.data, payload, n);
		buf.len = (int) n;
		buf.maxlen = (int) n;
		buf.cursor = 0;
		accepted = try_call(t->recv, 3, PointerGetDatum(&buf),
							ObjectIdGetDatum(InvalidOid), Int32GetDatum(typmod), &d);
	}
	else
	{
		size_t		len = strnlen((const char *) payload, n);

		literal = malloc(len + 1);
		memcpy(literal, payload, len);
		literal[len] = '\0';
		accepted = try_call(t->in, 3, CStringGetDatum(literal),
							ObjectIdGetDatum(InvalidOid), Int32GetDatum(typmod), &d);
	}

	if (accepted)
	{
		if (binary)
			figures.binary_accepted++;
		else
			figures.text_accepted++;
		check_value(t, DatumGetPointer(d), typmod);
		if (binary && buf.cursor != buf.len)
			fail("%s_recv accepted but left %d bytes unread", t->name, buf.len - buf.cursor);
		check_round_trips(t, DatumGetPointer(d), binary ? payload : NULL, n);
	}
	else
	{
		if (binary)
			figures.binary_rejected++;
		else
			figures.text_rejected++;
		check_clean_error(t->name);
	}

	/* against the references */
	if (binary)
	{
		bool		ref = t == &halfvec_funcs ? ref_halfvec_binary(payload, n, typmod)
			: ref_sparsevec_binary(payload, n, typmod);

		if (accepted != ref)
			fail("%s_recv %s what the reference %s", t->name,
				 accepted ? "accepted" : "rejected", ref ? "accepts" : "rejects");
		free(buf.data);
	}
	else
	{
		if (t == &halfvec_funcs)
		{
			HalfVector *h = (HalfVector *) DatumGetPointer(d);
			Vector	   *v = ref_halfvec_text(literal, typmod);

			if (accepted != (v != NULL))
				fail("halfvec_in %s what the reference %s",
					 accepted ? "accepted" : "rejected", v ? "accepts" : "rejects");
			if (accepted)
				for (int i = 0; i < v->dim; i++)
					if (h->x[i] != FloatToHalf(v->x[i]))
						fail("halfvec_in element %d is not vector_in's rounded to half", i);
		}
		free(literal);
	}
}

/*
 * libFuzzer's mutations, then now and then a repair that makes a binary
 * payload's header match its length, so that element checks are reached.
 */
size_t		LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t		LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
									unsigned int seed);

size_t
LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
						unsigned int seed)
{
	uint32		r = seed * 2654435761u + 1;

	size = LLVMFuzzerMutate(data, size, max_size);
	r ^= r >> 13;
	if (size < 3 || r % 4 != 0 || (data[0] & 1) == 0)
		return size;

	if ((data[0] & 3) == 1 && size >= 5)
	{
		size_t		dim = (size - 5) / 2;

		if (dim < 1 || dim > HALFVEC_MAX_DIM)
			return size;
		data[1] = (uint8_t) (dim >> 8);
		data[2] = (uint8_t) dim;
		data[3] = data[4] = 0;
		return 1 + 4 + 2 * dim;
	}
	if ((data[0] & 3) == 3 && size >= 13)
	{
		size_t		nnz = (size - 13) / 8;

		if (nnz > SPARSEVEC_MAX_NNZ)
			return size;
		/* a dimension count above every index, then nnz and unused */
		memcpy(data + 1, "\x00\x10\x00\x00", 4);
		data[5] = (uint8_t) (nnz >> 24);
		data[6] = (uint8_t) (nnz >> 16);
		data[7] = (uint8_t) (nnz >> 8);
		data[8] = (uint8_t) nnz;
		memset(data + 9, 0, 4);
		/* indices 0, 1, 2, ... with a random high byte kept increasing */
		for (size_t i = 0; r % 2 == 0 && i < nnz; i++)
		{
			uint8_t    *p = data + 13 + 4 * i;

			p[0] = p[1] = 0;
			p[2] = (uint8_t) (i >> 8);
			p[3] = (uint8_t) i;
		}
		return 1 + 12 + 8 * nnz;
	}
	return size;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int			sel;
	int			typmod;

	if (size < 1)
		return 0;
	cur_data = data;
	cur_size = size;
	figures.inputs++;

	sel = data[0] >> 2;
	typmod = sel < 48 ? -1 : sel - 47;
	fuzz_one((data[0] & 2) ? &sparsevec_funcs : &halfvec_funcs, (data[0] & 1) != 0,
			 data + 1, size - 1, typmod);

	/* the end of the query: every allocation goes */
	stub_reset();
	return 0;
}
