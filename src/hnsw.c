/*-------------------------------------------------------------------------
 *
 * hnsw.c
 *	  Module entry point.  (The hnsw access method handler, reloptions and
 *	  the hnsw.* settings are added here as the index lands.)
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "distance.h"

PG_MODULE_MAGIC;

extern PGDLLEXPORT void _PG_init(void);

/*
 * Called once when the library is loaded: pick the distance kernels for
 * this CPU.
 */
void
_PG_init(void)
{
	DistanceInit();
}
