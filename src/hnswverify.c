/*-------------------------------------------------------------------------
 *
 * hnswverify.c
 *	  hnsw_verify(): walks an hnsw index and checks its invariants.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "hnsw.h"
