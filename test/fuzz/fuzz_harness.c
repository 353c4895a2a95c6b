/*-------------------------------------------------------------------------
 *
 * fuzz_harness.c
 *	  What the libFuzzer targets of test/fuzz share: the figures printed at
 *	  exit, failing with the input shown, calling an fmgr function with
 *	  ereport(ERROR) caught, and the check that an error is a clean one.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmgr.h"

#include "fuzz_harness.h"
#include "pg_stubs.h"

/* port.h maps these to libpgport's versions; the C library's will do */
#undef fprintf
#undef vfprintf

/* ---------------------------------------------------------------- figures */

Figures		figures;

#define MAX_STATES 32
static struct
{
	char		sqlstate[6];
	unsigned long count;
}			states[MAX_STATES];
static int	nstates;

static void
count_sqlstate(const char *sqlstate)
{
	for (int i = 0; i < nstates; i++)
		if (strcmp(states[i].sqlstate, sqlstate) == 0)
		{
			states[i].count++;
			return;
		}
	if (nstates < MAX_STATES)
	{
		strcpy(states[nstates].sqlstate, sqlstate);
		states[nstates++].count = 1;
	}
}

static void
print_figures(void)
{
	fprintf(stderr,
			"%s: inputs %lu accepted %lu rejected %lu"
			" text_accepted %lu text_rejected %lu"
			" binary_accepted %lu binary_rejected %lu sqlstates",
			fuzz_name, figures.inputs,
			figures.text_accepted + figures.binary_accepted,
			figures.text_rejected + figures.binary_rejected,
			figures.text_accepted, figures.text_rejected,
			figures.binary_accepted, figures.binary_rejected);
	for (int i = 0; i < nstates; i++)
		fprintf(stderr, " %s=%lu", states[i].sqlstate, states[i].count);
	fprintf(stderr, "\n");
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	atexit(print_figures);
	return 0;
}

/* ---------------------------------------------------------------- failing */

const uint8_t *cur_data;
size_t		cur_size;

/* Report a failed check with the input (abbreviated), then abort */
void
fail(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "\n%s: FAILED CHECK: ", fuzz_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s: input (%zu bytes):", fuzz_name, cur_size);
	for (size_t i = 0; i < cur_size && i < 256; i++)
		fprintf(stderr, " %02x", cur_data[i]);
	fprintf(stderr, "%s\n", cur_size > 256 ? " ..." : "");
	abort();
}

/* ---------------------------------------------------------------- calling */

/*
 * Call an fmgr function with up to three arguments, catching ereport(ERROR).
 * Returns true and sets *result if it returned.
 */
bool
try_call(PGFunction fn, int nargs, Datum a0, Datum a1, Datum a2, Datum *result)
{
	LOCAL_FCINFO(fcinfo, 3);
	jmp_buf		jb;
	volatile bool ok = false;
	Datum		args[3] = {a0, a1, a2};

	InitFunctionCallInfoData(*fcinfo, NULL, nargs, InvalidOid, NULL, NULL);
	for (int i = 0; i < nargs; i++)
	{
		fcinfo->args[i].value = args[i];
		fcinfo->args[i].isnull = false;
	}

	stub_error_jmp = &jb;
	if (setjmp(jb) == 0)
	{
		Datum		d = fn(fcinfo);

		if (fcinfo->isnull)
			fail("function returned NULL");
		*result = d;
		ok = true;
	}
	stub_error_jmp = NULL;
	return ok;
}

/* A rejected input: the error must be a clean one */
void
check_clean_error(const char *func)
{
	const char *s = stub_error.sqlstate;

	if (!((s[0] == '2' && s[1] == '2') || (s[0] == '5' && s[1] == '4')))
		fail("%s raised SQLSTATE %s, not a data exception (22) or limit (54): \"%s\" at %s",
			 func, s, stub_error.message, stub_error.where);
	if (stub_error.message[0] == '\0')
		fail("%s raised SQLSTATE %s without a message at %s", func, s, stub_error.where);
	count_sqlstate(s);
}
