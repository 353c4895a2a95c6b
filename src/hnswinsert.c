/*-------------------------------------------------------------------------
 *
 * hnswinsert.c
 *	  aminsert for hnsw: one row into the graph on pages.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/execnodes.h"
#include "utils/memutils.h"

#include "hnsw.h"

/*
 * aminsert: add a row.  NULLs, and zero vectors under cosine, are not
 * indexed.  Everything the insert allocates goes in a context of its own.
 */
bool
hnswinsert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid,
		   Relation heap, IndexUniqueCheck checkUnique, bool indexUnchanged,
		   IndexInfo *indexInfo)
{
	const HnswIndexInfo *info;
	MemoryContext cxt;
	MemoryContext old;
	float	   *vec;

	if (isnull[0])
		return false;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "hnsw insert",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	info = HnswGetIndexInfo(index);
	vec = palloc(info->vecsize);
	if (HnswPrepareVector(info, values[0], vec))
		HnswInsert(HnswPageGraphBase(HnswPageGraphCreate(index, false)), vec,
				   heap_tid);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return false;
}
