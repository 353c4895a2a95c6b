/*-------------------------------------------------------------------------
 *
 * hnswbuild.c
 *	  ambuild and ambuildempty for hnsw, serial and parallel.
 *
 * CREATE INDEX scans the heap and feeds each vector to the in-memory graph
 * (hnswmem.c), then writes the finished graph to pages in one pass and
 * WAL-logs them once with log_newpage_range.  The metapage, written first,
 * records the dimensions: the column's, or for a column declared without
 * them, those of its vectors, which must all agree.  Every later reader
 * takes them from there (HnswGetIndexInfo).
 *
 * With parallel workers (max_parallel_maintenance_workers, the table's
 * parallel_workers) the graph lives in the parallel context's dynamic
 * shared memory, and the leader and the workers each take blocks of a
 * parallel heap scan and insert into the one graph; the leader writes it
 * out when all are done.
 *
 * The graph takes memory as the table needs it, up to maintenance_work_mem
 * (which may well be set above what the machine has, for the rare big
 * build): a serial build's area starts at what the table's estimated rows
 * need and grows; a parallel build's shared area cannot grow, so it gets
 * the estimate with a quarter to spare.  When the file system behind
 * dynamic shared memory (/dev/shm) has no room for it, a NOTICE says so
 * and the build runs serially.
 *
 * When the graph outgrows maintenance_work_mem, a NOTICE says so and the
 * build goes on slower: serially, the graph built so far is written and
 * logged and the remaining rows go through the ordinary on-page insert
 * path (hnswpage.c); in parallel, the participants stop adding to the
 * graph, the leader writes it, and a second, serial scan of the heap
 * inserts the rows the graph does not hold.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/statvfs.h>

#include "access/parallel.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "commands/progress.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "storage/bufmgr.h"
#include "storage/dsm_impl.h"
#include "storage/spin.h"
#include "utils/backend_progress.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "hnsw.h"

/* Room a parallel build's segment needs besides its estimate */
#define HNSW_DSM_SLACK		(1024 * 1024)

/* Keys of the parallel build's shared memory */
#define HNSW_KEY_SHARED		UINT64CONST(0xA000000000000001)
#define HNSW_KEY_AREA		UINT64CONST(0xA000000000000002)

/* What the participants of a parallel build share, besides the graph */
typedef struct HnswShared
{
	Oid			heaprelid;
	Oid			indexrelid;
	bool		isconcurrent;
	Size		areaSize;
	slock_t		mutex;			/* protects the totals below */
	double		reltuples;
	double		indtuples;
	pg_atomic_uint64 done;		/* rows seen, for the leader's progress */
	/* the parallel heap scan's descriptor follows */
} HnswShared;

#define ParallelTableScanFromHnswShared(shared) \
	((ParallelTableScanDesc) ((char *) (shared) + BUFFERALIGN(sizeof(HnswShared))))

extern PGDLLEXPORT void tinyhnsw_parallel_build_main(dsm_segment *seg,
													 shm_toc *toc);

typedef struct HnswBuildState
{
	Relation	index;
	HnswIndexInfo info;
	HnswMemGraph *mg;			/* the graph while it fits in memory */
	HnswPageGraph *pg;			/* after it outgrew memory: the pages */
	HnswShared *shared;			/* in a parallel build */
	bool		leader;			/* reports progress */
	ItemPointer skip;			/* rows already in the graph (fallback) */
	int64		nskip;
	float	   *vec;			/* the current row's vector, prepared */
	double		indtuples;		/* rows indexed */
	int64		done;			/* rows seen, for progress */
	MemoryContext tmpCtx;		/* reset after every row */
} HnswBuildState;

/*
 * Check what CREATE INDEX was asked for before any work is done.  dims is
 * the column's dimension count, or with fromRows that of the rows.
 */
static void
check_build(const HnswIndexInfo *info, int dims, bool fromRows)
{
	const HnswFormat *format = info->metric->format;

	if (dims < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("column does not have dimensions"),
				 errdetail("The column is declared without a dimension count and holds no vectors to take it from."),
				 errhint("Declare the column with a dimension count, as in %s(3).",
						 format->type)));
	if (dims > format->maxDimensions)
	{
		if (fromRows)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("vectors cannot have more than %d dimensions for hnsw index",
							format->maxDimensions),
					 errdetail("The column is declared without a dimension count and holds vectors of %d dimensions.",
							   dims)));
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("column cannot have more than %d dimensions for hnsw index",
						format->maxDimensions)));
	}
	if (info->efConstruction < 2 * info->m)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ef_construction must be greater than or equal to 2 * m"),
				 errdetail("ef_construction is %d and m is %d.",
						   info->efConstruction, info->m)));
}

/* table_index_build_range_scan callback of dims_from_rows */
static void
dims_callback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
			  bool tupleIsAlive, void *state)
{
	int		   *dims = (int *) state;

	if (*dims < 0 && !isnull[0])
		*dims = HnswGetIndexInfo(index)->metric->format->dimensions(values[0]);
}

/*
 * The dimensions of an index on a column declared without them (plain
 * vector, as ALTER COLUMN ... TYPE vector leaves it): those of the first
 * vector the build would index; every other must then agree, or the build
 * fails naming both counts (HnswPrepareVector).  -1 if there is none.  It
 * reads blocks 0, 1-2, 3-6, ... until it finds one: the first in the usual
 * case, twice the table at worst (NULLs only).
 */
static int
dims_from_rows(Relation heap, Relation index, IndexInfo *indexInfo)
{
	BlockNumber nblocks = RelationGetNumberOfBlocks(heap);
	BlockNumber start = 0;
	BlockNumber count = 1;
	int			dims = -1;

	while (dims < 0 && start < nblocks)
	{
		count = Min(count, nblocks - start);
		(void) table_index_build_range_scan(heap, index, indexInfo, false,
											false, false, start, count,
											dims_callback, &dims, NULL);
		start += count;
		count *= 2;
	}
	return dims;
}

/* Set up the per-row state every participant needs */
static void
init_state(HnswBuildState *bs, Relation index)
{
	memset(bs, 0, sizeof(HnswBuildState));
	bs->index = index;
	bs->info = *HnswGetIndexInfo(index);
	bs->vec = palloc(bs->info.vecsize);
	bs->tmpCtx = AllocSetContextCreate(CurrentMemoryContext,
									   "hnsw build row",
									   ALLOCSET_DEFAULT_SIZES);
}

/*
 * Link the in-memory graph's orphans, then write it to pages, WAL-logged
 * all at once.  Runs alone, after every participant is done.
 */
static void
write_graph(HnswBuildState *bs)
{
	Size		mem;
	int			grown;
	int64		orphans;
	int64		linked;
	int64		connected;
	int64		missed;

	mem = HnswMemSize(bs->mg, &grown);
	ereport(DEBUG1,
			(errmsg_internal("hnsw build of \"%s\": " INT64_FORMAT " elements in a graph of %zu bytes, grown %d times",
							 RelationGetRelationName(bs->index),
							 HnswMemCount(bs->mg), mem, grown)));
	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, HNSW_PHASE_WRITE);
	linked = HnswLinkOrphans(HnswMemGraphBase(bs->mg), &orphans);

	/*
	 * An element with incoming links may still hang in a group that only
	 * links among itself (on clustered data, or with a small m): link what
	 * a walk from the entry point does not reach, as the end of a build on
	 * pages and every VACUUM do.
	 */
	connected = HnswConnect(HnswMemGraphBase(bs->mg), false, true, &missed);
	elog(DEBUG1, "hnsw build: " INT64_FORMAT " of " INT64_FORMAT " elements without incoming links linked, then " INT64_FORMAT " more by HnswConnect",
		 linked, orphans, connected);
	HnswMemWritePages(bs->mg, bs->index);
}

static void
notice_full(int64 count)
{
	ereport(NOTICE,
			(errmsg("hnsw graph no longer fits into maintenance_work_mem after " INT64_FORMAT " tuples",
					count),
			 errdetail("Building will take significantly more time."),
			 errhint("Increase maintenance_work_mem to speed up builds.")));
}

/* Serial build: the graph no longer fits; continue on pages */
static void
spill(HnswBuildState *bs)
{
	notice_full(HnswMemCount(bs->mg));
	write_graph(bs);
	HnswMemFree(bs->mg);
	bs->mg = NULL;
	bs->pg = HnswPageGraphCreate(bs->index, false);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, HNSW_PHASE_LOAD);
}

/* Progress: rows seen, across participants in a parallel build */
static void
count_row(HnswBuildState *bs)
{
	int64		done = ++bs->done;

	if (bs->shared)
		done = (int64) pg_atomic_add_fetch_u64(&bs->shared->done, 1);
	if (bs->leader)
		pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, done);
}

/* table_index_build_scan callback: one heap row */
static void
build_callback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
			   bool tupleIsAlive, void *state)
{
	HnswBuildState *bs = (HnswBuildState *) state;
	MemoryContext old;

	count_row(bs);
	/* NULLs are not indexed; neither are zero vectors under cosine */
	if (isnull[0])
		return;
	/* the fallback pass: rows the graph already holds */
	if (bs->skip && bsearch(tid, bs->skip, bs->nskip, sizeof(ItemPointerData),
							(int (*) (const void *, const void *)) ItemPointerCompare))
		return;

	old = MemoryContextSwitchTo(bs->tmpCtx);
	if (HnswPrepareVector(&bs->info, values[0], bs->vec))
	{
		if (bs->pg)
		{
			HnswInsert(HnswPageGraphBase(bs->pg), bs->vec, tid);
			bs->indtuples++;
		}
		else if (HnswInsert(HnswMemGraphBase(bs->mg), bs->vec, tid))
			bs->indtuples++;
		else if (!bs->shared)
		{
			MemoryContextSwitchTo(old);
			spill(bs);
			old = MemoryContextSwitchTo(bs->tmpCtx);
			HnswInsert(HnswPageGraphBase(bs->pg), bs->vec, tid);
			bs->indtuples++;
		}
		/* else: a full shared graph; the fallback pass will insert it */
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(bs->tmpCtx);
}

/* One participant's share of a parallel build: blocks of the heap scan */
static void
participate(HnswBuildState *bs, HnswShared *shared, Relation heap,
			Relation index, IndexInfo *indexInfo)
{
	TableScanDesc scan;
	double		reltuples;

	scan = table_beginscan_parallel(heap, ParallelTableScanFromHnswShared(shared));
	reltuples = table_index_build_scan(heap, index, indexInfo, true, bs->leader,
									   build_callback, bs, scan);
	SpinLockAcquire(&shared->mutex);
	shared->reltuples += reltuples;
	shared->indtuples += bs->indtuples;
	SpinLockRelease(&shared->mutex);
}

/* Entry point of a parallel worker (named in CreateParallelContext) */
void
tinyhnsw_parallel_build_main(dsm_segment *seg, shm_toc *toc)
{
	HnswShared *shared = shm_toc_lookup(toc, HNSW_KEY_SHARED, false);
	void	   *area = shm_toc_lookup(toc, HNSW_KEY_AREA, false);
	LOCKMODE	heapLockmode = shared->isconcurrent ?
		ShareUpdateExclusiveLock : ShareLock;
	Relation	heap = table_open(shared->heaprelid, heapLockmode);
	Relation	index = index_open(shared->indexrelid, RowExclusiveLock);
	IndexInfo  *indexInfo = BuildIndexInfo(index);
	HnswBuildState bs;

	indexInfo->ii_Concurrent = shared->isconcurrent;
	init_state(&bs, index);
	bs.shared = shared;
	bs.mg = HnswMemCreate(index, area, shared->areaSize, shared->areaSize,
						  true, false);
	participate(&bs, shared, heap, index, indexInfo);
	index_close(index, RowExclusiveLock);
	table_close(heap, heapLockmode);
}

/* About how many rows the heap holds, for sizing the graph */
static double
estimate_rows(Relation heap, const HnswIndexInfo *info)
{
	if (heap->rd_rel->reltuples > 0)
		return heap->rd_rel->reltuples;
	/* never analyzed: assume rows as wide as their vectors, up to TOAST's */
	return (double) RelationGetNumberOfBlocks(heap) *
		(BLCKSZ / (Min(info->vecsize, 2000) + 40));
}

/*
 * Whether the file system that holds dynamic shared memory segments has
 * room for one of about size bytes, as far as we can tell.  PostgreSQL 15
 * gives up on a parallel context quietly only when it has no segment slot
 * left; a segment the file system cannot hold (a small /dev/shm, as
 * containers have by default) is an ERROR in dsm_create.  So look first,
 * and say why there will be no workers.  Another process may still take
 * the room between the look and the creation: then it is that ERROR.
 */
static bool
dsm_has_room(Size size)
{
	const char *path;
	struct statvfs fs;
	Size		avail;

	switch (dynamic_shared_memory_type)
	{
#ifdef __linux__
		case DSM_IMPL_POSIX:
			path = "/dev/shm";	/* where glibc's shm_open puts them */
			break;
#endif
		case DSM_IMPL_MMAP:
			path = PG_DYNSHMEM_DIR;	/* relative to the data directory */
			break;
		default:
			return true;
	}
	if (statvfs(path, &fs) != 0)
		return true;			/* cannot tell: let dsm_create try */
	avail = (Size) fs.f_bavail * fs.f_frsize;
	/* what InitializeParallelDSM adds (GUCs, snapshots, queues) is small */
	if (avail >= size + HNSW_DSM_SLACK)
		return true;
	ereport(NOTICE,
			(errmsg("hnsw graph does not fit into free shared memory, building without parallel workers"),
			 errdetail("The build needs a segment of %zu bytes; the file system at %s has %zu bytes free.",
					   size + HNSW_DSM_SLACK, path, avail),
			 errhint("Give %s more room (for a container, --shm-size) to build in parallel.",
					 path)));
	return false;
}

/*
 * Build with parallel workers.  Returns false, having done nothing, if no
 * shared memory could be had; then the caller builds serially.
 */
static bool
build_parallel(HnswBuildState *bs, Relation heap, Relation index,
			   IndexInfo *indexInfo, Size areaSize, double *reltuples)
{
	ParallelContext *pcxt;
	Snapshot	snapshot;
	HnswShared *shared;
	Size		estshared;
	void	   *area;
	bool		isconcurrent = indexInfo->ii_Concurrent;

	EnterParallelMode();
	pcxt = CreateParallelContext("tinyhnsw", "tinyhnsw_parallel_build_main",
								 indexInfo->ii_ParallelWorkers);
	/* as nbtsort does: an MVCC snapshot only for CREATE INDEX CONCURRENTLY */
	snapshot = isconcurrent ? RegisterSnapshot(GetTransactionSnapshot()) :
		SnapshotAny;
	estshared = BUFFERALIGN(sizeof(HnswShared)) +
		table_parallelscan_estimate(heap, snapshot);
	shm_toc_estimate_chunk(&pcxt->estimator, estshared);
	shm_toc_estimate_chunk(&pcxt->estimator, areaSize);
	shm_toc_estimate_keys(&pcxt->estimator, 2);
	if (dsm_has_room(shm_toc_estimate(&pcxt->estimator)))
		InitializeParallelDSM(pcxt);
	if (pcxt->seg == NULL)
	{
		if (IsMVCCSnapshot(snapshot))
			UnregisterSnapshot(snapshot);
		DestroyParallelContext(pcxt);
		ExitParallelMode();
		return false;
	}

	shared = shm_toc_allocate(pcxt->toc, estshared);
	shared->heaprelid = RelationGetRelid(heap);
	shared->indexrelid = RelationGetRelid(index);
	shared->isconcurrent = isconcurrent;
	shared->areaSize = areaSize;
	SpinLockInit(&shared->mutex);
	shared->reltuples = 0;
	shared->indtuples = 0;
	pg_atomic_init_u64(&shared->done, 0);
	table_parallelscan_initialize(heap, ParallelTableScanFromHnswShared(shared),
								  snapshot);
	area = shm_toc_allocate(pcxt->toc, areaSize);
	bs->mg = HnswMemCreate(index, area, areaSize, areaSize, true, true);
	bs->shared = shared;
	shm_toc_insert(pcxt->toc, HNSW_KEY_SHARED, shared);
	shm_toc_insert(pcxt->toc, HNSW_KEY_AREA, area);

	LaunchParallelWorkers(pcxt);
	ereport(DEBUG1,
			(errmsg_internal("hnsw build of \"%s\" with %d parallel workers",
							 RelationGetRelationName(index),
							 pcxt->nworkers_launched)));
	participate(bs, shared, heap, index, indexInfo);
	WaitForParallelWorkersToFinish(pcxt);

	*reltuples = shared->reltuples;
	bs->indtuples = shared->indtuples;
	bs->shared = NULL;
	write_graph(bs);

	if (HnswMemFull(bs->mg))
	{
		/* the graph is on pages; a serial pass adds the rows it lacks */
		notice_full(HnswMemCount(bs->mg));
		bs->nskip = HnswMemHeapTids(bs->mg, &bs->skip);
		HnswMemFree(bs->mg);
		bs->mg = NULL;
		bs->pg = HnswPageGraphCreate(index, false);
		pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, HNSW_PHASE_LOAD);
		bs->indtuples = bs->nskip;
		*reltuples = table_index_build_scan(heap, index, indexInfo, true, true,
											build_callback, bs, NULL);
		HnswConnectIndex(index, NULL, false, false);
	}
	else
	{
		HnswMemFree(bs->mg);
		bs->mg = NULL;
	}

	if (IsMVCCSnapshot(snapshot))
		UnregisterSnapshot(snapshot);
	DestroyParallelContext(pcxt);
	ExitParallelMode();
	return true;
}

/* ambuild: build the index from the heap */
IndexBuildResult *
hnswbuild(Relation heap, Relation index, IndexInfo *indexInfo)
{
	IndexBuildResult *result;
	HnswBuildState bs;
	const HnswIndexInfo *info;
	int			dims;
	double		reltuples = 0;
	Size		memLimit = (Size) maintenance_work_mem * 1024;
	Size		need;
	bool		built = false;

	if (RelationGetNumberOfBlocks(index) != 0)
		elog(ERROR, "index \"%s\" already contains data",
			 RelationGetRelationName(index));

	info = HnswGetIndexInfo(index);
	dims = info->dimensions;
	if (dims < 0)
		dims = dims_from_rows(heap, index, indexInfo);
	check_build(info, dims, info->dimensions < 0);
	HnswWriteMetaPage(index, MAIN_FORKNUM, dims, info->m,
					  info->efConstruction, false);
	/* from now on the metapage says what the dimensions are */
	HnswForgetIndexInfo(index);
	init_state(&bs, index);
	bs.leader = true;

	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, HNSW_PHASE_LOAD);
	if (heap->rd_rel->reltuples > 0)
		pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_TOTAL,
									 (int64) heap->rd_rel->reltuples);

	/*
	 * PostgreSQL 15's index_build plans parallel workers for btree only;
	 * ask the planner ourselves, as it would (settings, the table's
	 * parallel_workers and size, parallel safety of expressions).
	 */
	if (indexInfo->ii_ParallelWorkers == 0 && IsNormalProcessingMode() &&
		!IsInParallelMode())
		indexInfo->ii_ParallelWorkers =
			plan_create_index_workers(RelationGetRelid(heap),
									  RelationGetRelid(index));
	need = HnswMemEstimate(&bs.info, estimate_rows(heap, &bs.info));
	if (indexInfo->ii_ParallelWorkers > 0)
		built = build_parallel(&bs, heap, index, indexInfo,
							   Min(need + need / 4, memLimit), &reltuples);
	if (!built)
	{
		bs.mg = HnswMemCreate(index, NULL, need, memLimit, false, true);
		reltuples = table_index_build_scan(heap, index, indexInfo, true, true,
										   build_callback, &bs, NULL);
		/* a build that spilled has logged its pages already */
		if (bs.mg)
		{
			write_graph(&bs);
			HnswMemFree(bs.mg);
		}
		else
			HnswConnectIndex(index, NULL, false, false);
	}

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
