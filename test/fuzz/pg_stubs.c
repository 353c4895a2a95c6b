/*-------------------------------------------------------------------------
 *
 * pg_stubs.c
 *	  Just enough of the PostgreSQL backend for src/vector.c to run inside
 *	  a libFuzzer process (see test/fuzz/run).
 *
 * What the I/O functions really use is implemented faithfully:
 *
 *	- palloc and friends are plain malloc, one block per allocation, so
 *	  AddressSanitizer sees the exact size of everything vector.c allocates
 *	  and reports the first byte read or written past it.  New memory is
 *	  filled with 0xFF (a NaN as float4), so an element left unset shows up
 *	  in the checks.  Every allocation is remembered; stub_reset() frees
 *	  what is left, like the reset of a per-tuple memory context.
 *	  Requests above MaxAllocSize fail as in the backend (an internal
 *	  error, which the harness counts as a bug).
 *	- ereport(ERROR) records the SQLSTATE and message and longjmps to the
 *	  harness (stub_error_jmp); lower levels are dropped.  An ERROR with no
 *	  harness frame to catch it aborts.
 *	- pq_getmsgint and pq_getmsgfloat4 check the remaining length and fail
 *	  with "insufficient data left in message" as pqformat.c does; the send
 *	  side and enlargeStringInfo build a bytea as the backend does.
 *	- float_to_shortest_decimal_bufn is the real one, from libpgcommon.a.
 *
 * Everything else vector.c links against (arrays, catalog look-ups, the
 * distance kernels, ...) aborts if called: the fuzzer only calls vector_in,
 * vector_out, vector_recv and vector_send.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "distance.h"
#include "pg_stubs.h"

/* port.h maps these to libpgport's versions; the C library's will do */
#undef fprintf
#undef snprintf
#undef vsnprintf
#undef vsprintf
#undef qsort

/* ---------------------------------------------------------------- memory */

typedef struct StubChunk
{
	void	   *ptr;
	size_t		size;
} StubChunk;

static StubChunk *chunks;
static int	nchunks;
static int	maxchunks;

static void stub_fail_alloc(size_t size) pg_attribute_noreturn();

static void
stub_fail_alloc(size_t size)
{
	/* the backend's message and (default) SQLSTATE for this case */
	errstart(ERROR, NULL);
	errmsg_internal("invalid memory alloc request size %zu", size);
	errfinish(__FILE__, __LINE__, __func__);
	abort();					/* not reached */
}

static int
stub_find(const void *ptr)
{
	/* allocations are few and freed mostly last-in first-out */
	for (int i = nchunks - 1; i >= 0; i--)
		if (chunks[i].ptr == ptr)
			return i;
	fprintf(stderr, "pg_stubs: pfree/repalloc of %p, which palloc did not return\n", ptr);
	abort();
}

static void *
stub_alloc(size_t size, bool zero)
{
	void	   *ptr;

	if (!AllocSizeIsValid(size))
		stub_fail_alloc(size);
	/* malloc(0) may return NULL; the backend never does */
	ptr = malloc(size > 0 ? size : 1);
	if (ptr == NULL)
	{
		fprintf(stderr, "pg_stubs: out of memory for %zu bytes\n", size);
		abort();
	}
	memset(ptr, zero ? 0 : 0xFF, size);
	if (nchunks == maxchunks)
	{
		maxchunks = maxchunks ? maxchunks * 2 : 64;
		chunks = realloc(chunks, sizeof(StubChunk) * maxchunks);
		if (chunks == NULL)
			abort();
	}
	chunks[nchunks].ptr = ptr;
	chunks[nchunks].size = size;
	nchunks++;
	return ptr;
}

void *
palloc(Size size)
{
	return stub_alloc(size, false);
}

void *
palloc0(Size size)
{
	return stub_alloc(size, true);
}

void
pfree(void *pointer)
{
	int			i = stub_find(pointer);

	free(pointer);
	chunks[i] = chunks[--nchunks];
}

void *
repalloc(void *pointer, Size size)
{
	int			i = stub_find(pointer);
	size_t		old = chunks[i].size;
	void	   *ptr;

	if (!AllocSizeIsValid(size))
		stub_fail_alloc(size);
	/* always move, so a stale pointer to the old block is caught */
	ptr = stub_alloc(size, false);
	memcpy(ptr, pointer, Min(old, size));
	pfree(pointer);
	return ptr;
}

char *
pstrdup(const char *in)
{
	size_t		len = strlen(in);
	char	   *out = palloc(len + 1);

	memcpy(out, in, len + 1);
	return out;
}

char *
pnstrdup(const char *in, Size len)
{
	char	   *out;

	len = strnlen(in, len);
	out = palloc(len + 1);
	memcpy(out, in, len);
	out[len] = '\0';
	return out;
}

char *
psprintf(const char *fmt,...)
{
	va_list		ap;
	int			len;
	char	   *out;

	va_start(ap, fmt);
	len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	out = palloc(len + 1);
	va_start(ap, fmt);
	vsnprintf(out, len + 1, fmt, ap);
	va_end(ap);
	return out;
}

size_t
stub_alloc_size(const void *ptr)
{
	for (int i = nchunks - 1; i >= 0; i--)
		if (chunks[i].ptr == ptr)
			return chunks[i].size;
	return 0;
}

void
stub_reset(void)
{
	for (int i = 0; i < nchunks; i++)
		free(chunks[i].ptr);
	nchunks = 0;
}

/* ---------------------------------------------------------------- errors */

jmp_buf    *stub_error_jmp;
StubError	stub_error;

static int	cur_elevel;

bool
errstart(int elevel, const char *domain)
{
	if (elevel < ERROR)
		return false;
	cur_elevel = elevel;
	stub_error.elevel = elevel;
	/* the backend's default when no errcode() is given */
	strcpy(stub_error.sqlstate, "XX000");
	stub_error.message[0] = '\0';
	stub_error.detail[0] = '\0';
	return true;
}

bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	snprintf(stub_error.where, sizeof(stub_error.where), "%s:%d (%s)",
			 filename, lineno, funcname ? funcname : "?");
	if (cur_elevel > ERROR || stub_error_jmp == NULL)
	{
		fprintf(stderr, "pg_stubs: uncaught %s at %s: %s [%s]\n",
				cur_elevel > ERROR ? "FATAL/PANIC" : "ERROR",
				stub_error.where, stub_error.message, stub_error.sqlstate);
		abort();
	}
	longjmp(*stub_error_jmp, 1);
}

int
errcode(int sqlerrcode)
{
	/* the inverse of MAKE_SQLSTATE: five 6-bit characters */
	for (int i = 0; i < 5; i++)
	{
		stub_error.sqlstate[i] = PGUNSIXBIT(sqlerrcode);
		sqlerrcode >>= 6;
	}
	stub_error.sqlstate[5] = '\0';
	return 0;
}

int
errmsg(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(stub_error.message, sizeof(stub_error.message), fmt, ap);
	va_end(ap);
	return 0;
}

int
errmsg_internal(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(stub_error.message, sizeof(stub_error.message), fmt, ap);
	va_end(ap);
	return 0;
}

int
errdetail(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(stub_error.detail, sizeof(stub_error.detail), fmt, ap);
	va_end(ap);
	return 0;
}

/* float.c's versions, same SQLSTATE and text */
void
float_overflow_error(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("value out of range: overflow")));
	abort();
}

void
float_underflow_error(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("value out of range: underflow")));
	abort();
}

/* ---------------------------------------------------------------- StringInfo, pqformat */

void
initStringInfo(StringInfo str)
{
	str->maxlen = 1024;
	str->data = palloc(str->maxlen);
	str->data[0] = '\0';
	str->len = 0;
	str->cursor = 0;
}

void
enlargeStringInfo(StringInfo str, int needed)
{
	int			newlen;

	if (needed < 0)
		elog(ERROR, "invalid string enlargement request size: %d", needed);
	if (((Size) needed) >= (MaxAllocSize - (Size) str->len))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("out of memory")));
	needed += str->len + 1;
	if (needed <= str->maxlen)
		return;
	newlen = 2 * str->maxlen;
	while (needed > newlen)
		newlen = 2 * newlen;
	if (newlen > (int) MaxAllocSize)
		newlen = (int) MaxAllocSize;
	str->data = repalloc(str->data, newlen);
	str->maxlen = newlen;
}

void
pq_begintypsend(StringInfo buf)
{
	initStringInfo(buf);
	/* room for the varlena header, as pqformat.c reserves it */
	memset(buf->data, 0, VARHDRSZ);
	buf->len = VARHDRSZ;
	buf->data[buf->len] = '\0';
}

bytea *
pq_endtypsend(StringInfo buf)
{
	bytea	   *result = (bytea *) buf->data;

	SET_VARSIZE(result, buf->len);
	return result;
}

void
pq_sendfloat4(StringInfo buf, float4 f)
{
	union
	{
		float4		f;
		uint32		i;
	}			swap;

	swap.f = f;
	pq_sendint32(buf, swap.i);
}

void
pq_copymsgbytes(StringInfo msg, char *buf, int datalen)
{
	if (datalen < 0 || datalen > (msg->len - msg->cursor))
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("insufficient data left in message")));
	memcpy(buf, &msg->data[msg->cursor], datalen);
	msg->cursor += datalen;
}

unsigned int
pq_getmsgint(StringInfo msg, int b)
{
	unsigned char n8;
	uint16		n16;
	uint32		n32;

	switch (b)
	{
		case 1:
			pq_copymsgbytes(msg, (char *) &n8, 1);
			return n8;
		case 2:
			pq_copymsgbytes(msg, (char *) &n16, 2);
			return pg_ntoh16(n16);
		case 4:
			pq_copymsgbytes(msg, (char *) &n32, 4);
			return pg_ntoh32(n32);
		default:
			elog(ERROR, "unsupported integer size %d", b);
	}
	return 0;
}

float4
pq_getmsgfloat4(StringInfo msg)
{
	union
	{
		float4		f;
		uint32		i;
	}			swap;

	swap.i = pq_getmsgint(msg, 4);
	return swap.f;
}

/* ---------------------------------------------------------------- toast */

struct varlena *
pg_detoast_datum(struct varlena *datum)
{
	/* the harness only passes plain in-line values */
	if (VARATT_IS_EXTENDED(datum))
		abort();
	return datum;
}

/* ---------------------------------------------------------------- never called */

#define NOT_CALLED(what) \
	do { \
		fprintf(stderr, "pg_stubs: %s called, which the fuzzer does not support\n", what); \
		abort(); \
	} while (0)

struct varlena *
pg_detoast_datum_copy(struct varlena *datum)
{
	NOT_CALLED("pg_detoast_datum_copy");
}

int
AggCheckCallContext(FunctionCallInfo fcinfo, MemoryContext *aggcontext)
{
	NOT_CALLED("AggCheckCallContext");
}

int32 *
ArrayGetIntegerTypmods(ArrayType *arr, int *n)
{
	NOT_CALLED("ArrayGetIntegerTypmods");
}

int
ArrayGetNItems(int ndim, const int *dims)
{
	NOT_CALLED("ArrayGetNItems");
}

Datum
DirectFunctionCall1Coll(PGFunction func, Oid collation, Datum arg1)
{
	NOT_CALLED("DirectFunctionCall1Coll");
}

bool
array_contains_nulls(ArrayType *array)
{
	NOT_CALLED("array_contains_nulls");
}

ArrayType *
construct_array(Datum *elems, int nelems, Oid elmtype, int elmlen,
				bool elmbyval, char elmalign)
{
	NOT_CALLED("construct_array");
}

void
deconstruct_array(ArrayType *array, Oid elmtype, int elmlen, bool elmbyval,
				  char elmalign, Datum **elemsp, bool **nullsp, int *nelemsp)
{
	NOT_CALLED("deconstruct_array");
}

char *
format_type_be(Oid type_oid)
{
	NOT_CALLED("format_type_be");
}

void
get_typlenbyvalalign(Oid typid, int16 *typlen, bool *typbyval, char *typalign)
{
	NOT_CALLED("get_typlenbyvalalign");
}

Datum
numeric_float8(PG_FUNCTION_ARGS)
{
	NOT_CALLED("numeric_float8");
}

static float
stub_kernel(const float *a, const float *b, int dim)
{
	NOT_CALLED("a distance kernel");
}

static double
stub_cosine(const float *a, const float *b, int dim)
{
	NOT_CALLED("the cosine kernel");
}

DistanceKernel DistL2Squared = stub_kernel;
DistanceKernel DistInnerProduct = stub_kernel;
DistanceKernel DistL1 = stub_kernel;
CosineKernel DistCosine = stub_cosine;

/* The cosine kernels' last step: only distance functions call it */
double
DistCosineFromSums(float ab, float aa, float bb)
{
	NOT_CALLED("DistCosineFromSums");
}

/* port.h's replacements of the C library, as the C library's own */
void
pg_qsort(void *base, size_t nel, size_t elsize,
		 int (*cmp) (const void *, const void *))
{
	qsort(base, nel, elsize, cmp);
}

int
pg_sprintf(char *str, const char *fmt,...)
{
	va_list		ap;
	int			len;

	va_start(ap, fmt);
	len = vsprintf(str, fmt, ap);
	va_end(ap);
	return len;
}

int
pg_vsnprintf(char *str, size_t count, const char *fmt, va_list args)
{
	return vsnprintf(str, count, fmt, args);
}
