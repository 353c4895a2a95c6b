/*-------------------------------------------------------------------------
 *
 * hnswbuild.c
 *	  ambuild and ambuildempty for hnsw.
 *
 * CREATE INDEX scans the heap and feeds each vector to the in-memory graph
 * (hnswmem.c), then writes the finished graph to pages in one pass and
 * WAL-logs them once with log_newpage_range.  When the graph outgrows
 * maintenance_work_mem, a NOTICE says so; the graph built so far is
 * written and logged the same way, and the remaining rows go through the
 * ordinary on-page insert path (hnswpage.c), which is slower but needs no
 * memory beyond one insert's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/tableam.h"
#include "access/xloginsert.h"
#include "commands/progress.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/backend_progress.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "hnsw.h"

typedef struct HnswBuildState
{
	Relation	index;
	HnswIndexInfo info;
	HnswMemGraph *mg;			/* the graph while it fits in memory */
	HnswPageGraph *pg;			/* after it outgrew memory: the pages */
	Size		memLimit;
	float	   *vec;			/* the current row's vector, prepared */
	double		indtuples;		/* rows indexed */
	int64		done;			/* rows seen, for progress */
	MemoryContext tmpCtx;		/* reset after every row */
} HnswBuildState;

/* Check what CREATE INDEX was asked for before any work is done */
static void
check_build(const HnswIndexInfo *info)
{
	if (info->dimensions < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("column does not have dimensions"),
				 errhint("Declare the column with a dimension count, as in vector(3).")));
	if (info->dimensions > HNSW_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("column cannot have more than %d dimensions for hnsw index",
						HNSW_MAX_DIM)));
	if (info->efConstruction < 2 * info->m)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ef_construction must be greater than or equal to 2 * m"),
				 errdetail("ef_construction is %d and m is %d.",
						   info->efConstruction, info->m)));
}

/* Write the in-memory graph to pages and WAL-log them all */
static void
write_graph(HnswBuildState *bs)
{
	BlockNumber nblocks;

	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, HNSW_PHASE_WRITE);
	nblocks = HnswMemWritePages(bs->mg, bs->index);
	HnswMemFree(bs->mg);
	bs->mg = NULL;
	if (RelationNeedsWAL(bs->index))
		log_newpage_range(bs->index, MAIN_FORKNUM, 0, nblocks, true);
}

/* The graph no longer fits in maintenance_work_mem: continue on pages */
static void
spill(HnswBuildState *bs)
{
	ereport(NOTICE,
			(errmsg("hnsw graph no longer fits into maintenance_work_mem after " INT64_FORMAT " tuples",
					HnswMemCount(bs->mg)),
			 errdetail("Building will take significantly more time."),
			 errhint("Increase maintenance_work_mem to speed up builds.")));
	write_graph(bs);
	bs->pg = HnswPageGraphCreate(bs->index, false);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, HNSW_PHASE_LOAD);
}

/* table_index_build_scan callback: one heap row */
static void
build_callback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
			   bool tupleIsAlive, void *state)
{
	HnswBuildState *bs = (HnswBuildState *) state;
	MemoryContext old;

	/* NULLs are not indexed; neither are zero vectors under cosine */
	if (!isnull[0])
	{
		old = MemoryContextSwitchTo(bs->tmpCtx);
		if (HnswPrepareVector(&bs->info, values[0], bs->vec))
		{
			if (bs->pg)
				HnswPageInsert(bs->pg, bs->vec, tid);
			else
			{
				HnswMemInsert(bs->mg, bs->vec, tid);
				if (HnswMemUsed(bs->mg) > bs->memLimit)
				{
					MemoryContextSwitchTo(old);
					spill(bs);
					old = MemoryContextSwitchTo(bs->tmpCtx);
				}
			}
			bs->indtuples++;
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(bs->tmpCtx);
	}
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, ++bs->done);
}

/* ambuild: build the index from the heap */
IndexBuildResult *
hnswbuild(Relation heap, Relation index, IndexInfo *indexInfo)
{
	IndexBuildResult *result;
	HnswBuildState bs;
	double		reltuples;

	if (RelationGetNumberOfBlocks(index) != 0)
		elog(ERROR, "index \"%s\" already contains data",
			 RelationGetRelationName(index));

	memset(&bs, 0, sizeof(bs));
	bs.index = index;
	bs.info = *HnswGetIndexInfo(index);
	check_build(&bs.info);
	bs.memLimit = (Size) maintenance_work_mem * 1024;
	bs.vec = palloc(sizeof(float) * bs.info.dimensions);
	bs.tmpCtx = AllocSetContextCreate(CurrentMemoryContext,
									  "hnsw build row",
									  ALLOCSET_DEFAULT_SIZES);

	HnswWriteMetaPage(index, MAIN_FORKNUM, bs.info.dimensions, bs.info.m,
					  bs.info.efConstruction, false);
	bs.mg = HnswMemCreate(index);

	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, HNSW_PHASE_LOAD);
	if (heap->rd_rel->reltuples > 0)
		pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_TOTAL,
									 (int64) heap->rd_rel->reltuples);
	reltuples = table_index_build_scan(heap, index, indexInfo, true, true,
									   build_callback, &bs, NULL);

	/* a build that spilled has logged its pages already */
	if (bs.mg)
		write_graph(&bs);

	MemoryContextDelete(bs.tmpCtx);
	result = palloc(sizeof(IndexBuildResult));
	result->heap_tuples = reltuples;
	result->index_tuples = bs.indtuples;
	return result;
}

/* ambuildempty: the init fork of an unlogged index, an empty metapage */
void
hnswbuildempty(Relation index)
{
	const HnswIndexInfo *info = HnswGetIndexInfo(index);

	HnswWriteMetaPage(index, INIT_FORKNUM, info->dimensions, info->m,
					  info->efConstruction, true);
}
