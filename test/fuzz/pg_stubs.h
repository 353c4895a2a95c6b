/*-------------------------------------------------------------------------
 *
 * pg_stubs.h
 *	  The harness's view of pg_stubs.c: the error trap and the allocator.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TINYHNSW_PG_STUBS_H
#define TINYHNSW_PG_STUBS_H

#include <setjmp.h>
#include <stddef.h>

/* The last ereport(ERROR) */
typedef struct StubError
{
	int			elevel;
	char		sqlstate[6];
	char		message[512];
	char		detail[512];
	char		where[256];		/* file:line (function) of the ereport */
} StubError;

/* Where ereport(ERROR) longjmps to; NULL means "abort instead" */
extern jmp_buf *stub_error_jmp;
extern StubError stub_error;

/* The size palloc was asked for, or 0 if ptr is not a live allocation */
extern size_t stub_alloc_size(const void *ptr);

/* Free every allocation still live (the end of a memory context) */
extern void stub_reset(void);

#endif							/* TINYHNSW_PG_STUBS_H */
