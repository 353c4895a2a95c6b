/*-------------------------------------------------------------------------
 *
 * fuzz_harness.h
 *	  The shared part of the libFuzzer targets (fuzz_harness.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef TINYHNSW_FUZZ_HARNESS_H
#define TINYHNSW_FUZZ_HARNESS_H

#include <stdint.h>

#include "fmgr.h"

typedef struct Figures
{
	unsigned long inputs;
	unsigned long text_accepted;
	unsigned long text_rejected;
	unsigned long binary_accepted;
	unsigned long binary_rejected;
} Figures;

/* The target's name, which begins the lines it prints (set by the target) */
extern const char *fuzz_name;

extern Figures figures;

/* The input being run, shown when a check fails */
extern const uint8_t *cur_data;
extern size_t cur_size;

extern void fail(const char *fmt,...) pg_attribute_printf(1, 2) pg_attribute_noreturn();

/*
 * Call an fmgr function with up to three arguments, catching ereport(ERROR).
 * Returns true and sets *result if it returned.
 */
extern bool try_call(PGFunction fn, int nargs, Datum a0, Datum a1, Datum a2,
					 Datum *result);

/* A rejected input: the error must be of class 22 or 54, with a message */
extern void check_clean_error(const char *func);

int			LLVMFuzzerInitialize(int *argc, char ***argv);

#endif							/* TINYHNSW_FUZZ_HARNESS_H */
