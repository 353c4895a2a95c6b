/*-------------------------------------------------------------------------
 *
 * vector_fuzz.c
 *	  libFuzzer target for the vector type's input functions: vector_in
 *	  (text) and vector_recv (binary), linked with src/vector.c and the
 *	  backend stubs of pg_stubs.c.  Built and run by test/fuzz/run.
 *
 * Input layout: byte 0 chooses the function and the typmod, the rest is
 * the payload.
 *
 *	byte 0, bit 0	0: text (vector_in), 1: binary (vector_recv)
 *	byte 0 >> 1		0..95: typmod -1 (no vector(n)); 96..127: typmod 1..32
 *	bytes 1..		text: the literal, up to its first NUL byte (a cstring
 *					can hold no NUL), in a buffer of exactly that size;
 *					binary: the StringInfo's bytes, exactly, cursor 0
 *
 * Each input must either be accepted or fail with a clean error: an
 * ereport(ERROR) whose SQLSTATE is of class 22 (data exception) or 54
 * (program limit exceeded) and which has a message.  Anything else aborts,
 * so libFuzzer records the input: a crash or sanitizer report (ASan, UBSan,
 * both fatal), an error of another class (an internal error, "invalid
 * memory alloc request size", a protocol violation), or one of these
 * failed checks:
 *
 *	- accepted and rejected must agree with an independent reference
 *	  (text: split between the brackets at commas, each trimmed piece must
 *	  be one whole strtof() number, finite and in range; binary: a 4-byte
 *	  header with dim in 1..16000 and 0 in the reserved field, then
 *	  exactly dim finite float4), and with the typmod;
 *	- an accepted vector is well formed (varlena size, dim, reserved 0,
 *	  finite elements that equal the reference's, bit for bit);
 *	- it round-trips: vector_out then vector_in gives the same bits (and
 *	  vector_out's string fits its allocation); vector_send gives back
 *	  exactly the bytes vector_recv read, and vector_recv reads them back.
 *
 * At exit it prints one line of figures (inputs, accepted, rejected per
 * function, and the count of each SQLSTATE), which test/fuzz/run reports.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmgr.h"
#include "lib/stringinfo.h"

#include "fuzz_harness.h"
#include "pg_stubs.h"
#include "vector.h"

/* port.h maps these to libpgport's versions; the C library's will do */
#undef fprintf
#undef vfprintf

extern Datum vector_in(PG_FUNCTION_ARGS);
extern Datum vector_out(PG_FUNCTION_ARGS);
extern Datum vector_recv(PG_FUNCTION_ARGS);
extern Datum vector_send(PG_FUNCTION_ARGS);

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

const char *fuzz_name = "vector_fuzz";

/* An accepted vector must be well formed */
static void
check_vector(const char *func, const Vector *v, int typmod)
{
	size_t		alloc = stub_alloc_size(v);

	if (alloc == 0)
		fail("%s returned memory palloc did not give", func);
	if (!VARATT_IS_4B_U(v))
		fail("%s returned a varlena with a bad header", func);
	if (v->dim < 1 || v->dim > VECTOR_MAX_DIM)
		fail("%s returned a vector of %d dimensions", func, v->dim);
	if (VARSIZE(v) != VECTOR_SIZE(v->dim) || alloc < VARSIZE(v))
		fail("%s returned varlena size %u for %d dimensions (allocated %zu)",
			 func, (unsigned) VARSIZE(v), v->dim, alloc);
	if (v->unused != 0)
		fail("%s left the reserved field %d", func, v->unused);
	if (typmod != -1 && v->dim != typmod)
		fail("%s accepted %d dimensions for typmod %d", func, v->dim, typmod);
	for (int i = 0; i < v->dim; i++)
		if (!isfinite(v->x[i]))
			fail("%s accepted a non-finite element %d", func, i);
}

/* vector_out then vector_in must give back the same bits */
static void
check_text_round_trip(const Vector *v)
{
	Datum		d;
	char	   *out;
	size_t		alloc;

	if (!try_call(vector_out, 1, PointerGetDatum(v), 0, 0, &d))
		fail("vector_out failed: %s [%s]", stub_error.message, stub_error.sqlstate);
	out = DatumGetCString(d);
	alloc = stub_alloc_size(out);
	if (alloc == 0 || strnlen(out, alloc) >= alloc)
		fail("vector_out's string does not fit its allocation of %zu bytes", alloc);
	if (!try_call(vector_in, 3, CStringGetDatum(out), ObjectIdGetDatum(InvalidOid),
				  Int32GetDatum(-1), &d))
		fail("vector_in rejected vector_out's \"%.200s\": %s [%s]",
			 out, stub_error.message, stub_error.sqlstate);
	if (VARSIZE(DatumGetPointer(d)) != VARSIZE(v) ||
		memcmp(DatumGetPointer(d), v, VARSIZE(v)) != 0)
		fail("text round trip changed the vector (\"%.200s\")", out);
}

/* vector_send must give back exactly bytes, which vector_recv reads back */
static void
check_binary_round_trip(const Vector *v, const uint8_t *bytes, size_t n)
{
	Datum		d;
	bytea	   *sent;
	StringInfoData buf;

	if (!try_call(vector_send, 1, PointerGetDatum(v), 0, 0, &d))
		fail("vector_send failed: %s [%s]", stub_error.message, stub_error.sqlstate);
	sent = (bytea *) DatumGetPointer(d);
	if (bytes != NULL &&
		(VARSIZE(sent) - VARHDRSZ != n || memcmp(VARDATA(sent), bytes, n) != 0))
		fail("vector_send did not give back the %zu bytes vector_recv read", n);

	buf.data = VARDATA(sent);
	buf.len = VARSIZE(sent) - VARHDRSZ;
	buf.maxlen = buf.len;
	buf.cursor = 0;
	if (!try_call(vector_recv, 3, PointerGetDatum(&buf), ObjectIdGetDatum(InvalidOid),
				  Int32GetDatum(-1), &d))
		fail("vector_recv rejected vector_send's bytes: %s [%s]",
			 stub_error.message, stub_error.sqlstate);
	if (buf.cursor != buf.len)
		fail("vector_recv left %d of vector_send's bytes unread", buf.len - buf.cursor);
	if (memcmp(DatumGetPointer(d), v, VARSIZE(v)) != 0)
		fail("binary round trip changed the vector");
}

/* ---------------------------------------------------------------- references */

static bool
ref_isspace(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/*
 * The reference reading of a text literal: true if it is a valid vector,
 * with its elements in x (room for VECTOR_MAX_DIM) and their count in *dim.
 */
static bool
ref_text(const char *s, float *x, int *dim)
{
	size_t		len = strlen(s);
	size_t		start = 0;
	size_t		end = len;
	char	   *content;
	char	   *piece;
	char	   *next;
	int			n = 0;
	bool		valid = true;

	while (start < end && ref_isspace(s[start]))
		start++;
	while (end > start && ref_isspace(s[end - 1]))
		end--;
	if (end - start < 2 || s[start] != '[' || s[end - 1] != ']')
		return false;

	content = strndup(s + start + 1, end - start - 2);
	if (content == NULL)
		abort();
	for (piece = content; valid; piece = next + 1)
	{
		char	   *tail;
		char	   *last;
		float		value;

		next = strchr(piece, ',');
		if (next != NULL)
			*next = '\0';
		while (ref_isspace(*piece))
			piece++;
		last = piece + strlen(piece);
		while (last > piece && ref_isspace(last[-1]))
			*--last = '\0';

		errno = 0;
		value = strtof(piece, &tail);
		if (piece == last || tail != last ||
			(errno == ERANGE && isinf(value)) || !isfinite(value) ||
			n == VECTOR_MAX_DIM)
			valid = false;
		else
			x[n++] = value;
		if (next == NULL)
			break;
	}
	free(content);
	*dim = n;
	return valid && n >= 1;
}

/* The reference reading of the binary form */
static bool
ref_binary(const uint8_t *b, size_t n, float *x, int *dim)
{
	int			d;

	if (n < 4)
		return false;
	d = (int16) ((b[0] << 8) | b[1]);
	if (d < 1 || d > VECTOR_MAX_DIM || b[2] != 0 || b[3] != 0)
		return false;
	if (n != 4 + 4 * (size_t) d)
		return false;
	for (int i = 0; i < d; i++)
	{
		const uint8_t *p = b + 4 + 4 * i;
		uint32		u = ((uint32) p[0] << 24) | ((uint32) p[1] << 16) |
			((uint32) p[2] << 8) | p[3];

		memcpy(&x[i], &u, sizeof(float));
		if (!isfinite(x[i]))
			return false;
	}
	*dim = d;
	return true;
}

static void
check_against_reference(const char *func, bool accepted, bool ref_valid,
						int ref_dim, const float *ref_x, const Vector *v,
						int typmod)
{
	bool		expected = ref_valid && (typmod == -1 || ref_dim == typmod);

	if (accepted && !expected)
		fail("%s accepted what the reference rejects (reference: %s, %d dimensions, typmod %d)",
			 func, ref_valid ? "valid" : "invalid", ref_dim, typmod);
	if (!accepted && expected)
		fail("%s rejected what the reference accepts (%d dimensions, typmod %d): %s [%s] at %s",
			 func, ref_dim, typmod, stub_error.message, stub_error.sqlstate,
			 stub_error.where);
	if (accepted &&
		(v->dim != ref_dim || memcmp(v->x, ref_x, sizeof(float) * ref_dim) != 0))
		fail("%s read other elements than the reference", func);
}

/* ---------------------------------------------------------------- the target */

static float ref_x[VECTOR_MAX_DIM];

static void
fuzz_text(const uint8_t *payload, size_t n, int typmod)
{
	size_t		len = strnlen((const char *) payload, n);
	char	   *literal;
	Datum		d;
	bool		accepted;
	bool		ref_valid;
	int			ref_dim = 0;

	/* exactly the string and its terminator: ASan sees any read past it */
	literal = malloc(len + 1);
	memcpy(literal, payload, len);
	literal[len] = '\0';

	accepted = try_call(vector_in, 3, CStringGetDatum(literal),
						ObjectIdGetDatum(InvalidOid), Int32GetDatum(typmod), &d);
	ref_valid = ref_text(literal, ref_x, &ref_dim);
	if (accepted)
	{
		Vector	   *v = (Vector *) DatumGetPointer(d);

		figures.text_accepted++;
		check_vector("vector_in", v, typmod);
		check_against_reference("vector_in", true, ref_valid, ref_dim, ref_x, v, typmod);
		check_text_round_trip(v);
		check_binary_round_trip(v, NULL, 0);
	}
	else
	{
		figures.text_rejected++;
		check_clean_error("vector_in");
		check_against_reference("vector_in", false, ref_valid, ref_dim, ref_x, NULL, typmod);
	}
	free(literal);
}

static void
fuzz_binary(const uint8_t *payload, size_t n, int typmod)
{
	StringInfoData buf;
	Datum		d;
	bool		accepted;
	bool		ref_valid;
	int			ref_dim = 0;

	/* exactly the bytes, no terminator: ASan sees any read past them */
	buf.data = malloc(n > 0 ? n : 1);
	memcpy(buf.data, payload, n);
	buf.len = (int) n;
	buf.maxlen = (int) n;
	buf.cursor = 0;

	accepted = try_call(vector_recv, 3, PointerGetDatum(&buf),
						ObjectIdGetDatum(InvalidOid), Int32GetDatum(typmod), &d);
	ref_valid = ref_binary(payload, n, ref_x, &ref_dim);
	if (accepted)
	{
		Vector	   *v = (Vector *) DatumGetPointer(d);

		figures.binary_accepted++;
		if (buf.cursor != buf.len)
			fail("vector_recv accepted but left %d bytes unread", buf.len - buf.cursor);
		check_vector("vector_recv", v, typmod);
		check_against_reference("vector_recv", true, ref_valid, ref_dim, ref_x, v, typmod);
		check_binary_round_trip(v, payload, n);
		check_text_round_trip(v);
	}
	else
	{
		figures.binary_rejected++;
		check_clean_error("vector_recv");
		check_against_reference("vector_recv", false, ref_valid, ref_dim, ref_x, NULL, typmod);
	}
	free(buf.data);
}

/*
 * libFuzzer's own mutations, then, now and then, a repair that makes a
 * mutant more nearly valid, so that the checks past the first ones are
 * reached often: a binary payload gets a header whose dimension count
 * matches its length (and, sometimes, its NaN and infinite elements made
 * finite); a text payload gets its brackets back and, half of those
 * times, every byte between them mapped onto digits, commas, dots, signs,
 * exponents and white space.  Byte flips, truncation and the rest then
 * corrupt such near-valid inputs again.
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
	if (size < 3 || r % 4 != 0)
		return size;
	r /= 4;

	if (data[0] & 1)
	{
		size_t		n = size - 1;
		size_t		dim;

		if (n < 4)
			return size;
		dim = (n - 4) / 4;
		if (dim < 1 || dim > VECTOR_MAX_DIM)
			return size;
		size = 1 + 4 + 4 * dim;
		data[1] = (uint8_t) (dim >> 8);
		data[2] = (uint8_t) dim;
		data[3] = 0;
		data[4] = 0;
		if (r % 2 == 0)
		{
			/* an exponent of all ones (NaN, infinity) loses its top bit */
			for (size_t i = 0; i < dim; i++)
			{
				uint8_t    *p = data + 5 + 4 * i;

				if ((p[0] & 0x7F) == 0x7F && (p[1] & 0x80))
					p[0] &= 0xBF;
			}
		}
	}
	else
	{
		/* digits, separators, signs, exponents: mostly near-valid numbers */
		static const char alphabet[] = "01234567890123456789012345678901,,,,,,,,.-+eE \t";

		if (r % 2 == 0)
			for (size_t i = 2; i < size - 1; i++)
				data[i] = alphabet[data[i] % (sizeof(alphabet) - 1)];
		data[1] = '[';
		data[size - 1] = ']';
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

	sel = data[0] >> 1;
	typmod = sel < 96 ? -1 : sel - 95;
	if (data[0] & 1)
		fuzz_binary(data + 1, size - 1, typmod);
	else
		fuzz_text(data + 1, size - 1, typmod);

	/* the end of the query: every allocation goes */
	stub_reset();
	return 0;
}
