/*-------------------------------------------------------------------------
 *
 * hnswscan.c
 *	  Index scans for hnsw: ambeginscan, amrescan, amgettuple, amendscan.
 *
 * The first amgettuple starts the k-NN search (paper Algorithm 5) with
 * ef = hnsw.ef_search over the pages, as a stream (hnswgraph.c); the heap
 * TIDs of the elements found are handed back nearest first.  When they run
 * out before the executor is satisfied (a WHERE clause rejected rows, or
 * LIMIT is above ef_search), hnsw.iterative_scan lets the search go on in
 * rounds of doubling ef, until hnsw.max_scan_tuples rows have been returned
 * or the scan's memory reaches work_mem * hnsw.scan_mem_multiplier.
 * Distances are exact, so the executor need not recheck the order.
 *
 * A NULL query, or a zero one under cosine, has no distance to anything
 * (the ORDER BY value of every row is NULL or NaN): as a sequential scan
 * would, the scan then returns every indexed row, in no particular order,
 * walking the index's pages in block order.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relscan.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "hnsw.h"

typedef struct HnswScanOpaqueData
{
	MemoryContext cxt;			/* one scan's search; reset by rescan */
	bool		searched;		/* has this scan started its search? */
	HnswPageWalk *walk;			/* no distances: return every indexed row */
	HnswPageGraph *pg;
	HnswStream *stream;			/* NULL: nothing to return */
	float	   *q;				/* the query, prepared for the metric */
	int64		returned;		/* heap TIDs returned so far */
	Size		memLimit;
	ItemPointer tids;			/* the current element's heap TIDs */
	int			maxtids;
	int			ntids;
	int			nexttid;
} HnswScanOpaqueData;

typedef HnswScanOpaqueData *HnswScanOpaque;

/* ambeginscan */
IndexScanDesc
hnswbeginscan(Relation index, int nkeys, int norderbys)
{
	IndexScanDesc scan = RelationGetIndexScan(index, nkeys, norderbys);
	HnswScanOpaque so = palloc0(sizeof(HnswScanOpaqueData));

	so->cxt = AllocSetContextCreate(CurrentMemoryContext, "hnsw scan",
									ALLOCSET_DEFAULT_SIZES);
	so->maxtids = HNSW_HEAPTIDS;
	so->tids = MemoryContextAlloc(so->cxt, sizeof(ItemPointerData) * so->maxtids);
	scan->opaque = so;

	/*
	 * The distances are exact and the rows come in order, so the executor
	 * never rechecks or reorders them (xs_recheckorderby stays false) and
	 * has no use for the values; should anything read them, they say NULL
	 * rather than hold garbage.
	 */
	if (norderbys > 0)
	{
		scan->xs_orderbyvals = palloc0(sizeof(Datum) * norderbys);
		scan->xs_orderbynulls = palloc(sizeof(bool) * norderbys);
		memset(scan->xs_orderbynulls, true, sizeof(bool) * norderbys);
	}
	return scan;
}

/*
 * What a finished search cost, for tests and tuning: the elements it met,
 * and the memory it held, which iterative scans bound.
 */
static void
report_search(HnswScanOpaque so)
{
	if (so->stream)
		elog(DEBUG1, "hnsw scan met %u elements, returned " INT64_FORMAT " heap TIDs, using %zu bytes",
			 HnswStreamMet(so->stream), so->returned,
			 MemoryContextMemAllocated(so->cxt, true));
}

/* amrescan: new ORDER BY argument; the search runs at the next fetch */
void
hnswrescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys,
		   int norderbys)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;

	if (keys && scan->numberOfKeys > 0)
		memmove(scan->keyData, keys, scan->numberOfKeys * sizeof(ScanKeyData));
	if (orderbys && scan->numberOfOrderBys > 0)
		memmove(scan->orderByData, orderbys,
				scan->numberOfOrderBys * sizeof(ScanKeyData));
	report_search(so);
	MemoryContextReset(so->cxt);
	so->searched = false;
	so->walk = NULL;
	so->pg = NULL;
	so->stream = NULL;
	so->q = NULL;
	so->returned = 0;
	so->maxtids = HNSW_HEAPTIDS;
	so->tids = MemoryContextAlloc(so->cxt, sizeof(ItemPointerData) * so->maxtids);
	so->ntids = 0;
	so->nexttid = 0;
}

/* Run the search for the scan's ORDER BY argument */
static void
search(IndexScanDesc scan)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	const HnswIndexInfo *info = HnswGetIndexInfo(index);
	HnswRef		entry;
	int			entryLevel;
	MemoryContext old;
	float	   *q;

	so->searched = true;
	/* counted once per search, as btree counts its descents */
	pgstat_count_index_scan(index);

	old = MemoryContextSwitchTo(so->cxt);
	q = palloc(info->vecsize);

	/*
	 * Without an ORDER BY argument, with a NULL one, or with a zero vector
	 * under cosine, no row has a distance: walk the whole index instead.
	 */
	if (scan->numberOfOrderBys == 0 ||
		(scan->orderByData[0].sk_flags & SK_ISNULL) ||
		!HnswPrepareVector(info, scan->orderByData[0].sk_argument, q))
		so->walk = HnswPageWalkBegin(index);
	else
	{
		entry = HnswPageEntryPoint(index, &entryLevel);
		if (entry != HNSW_INVALID_REF)
		{
			so->q = q;
			so->pg = HnswPageGraphCreate(index, true);
			so->stream = HnswStreamBegin(HnswPageGraphBase(so->pg), q, entry,
										 entryLevel, hnsw_ef_search);
		}
	}
	so->memLimit = (Size) (work_mem * 1024.0 * hnsw_scan_mem_multiplier);
	MemoryContextSwitchTo(old);
}

/* May the search start another round? */
static bool
may_iterate(HnswScanOpaque so)
{
	return hnsw_iterative_scan != HNSW_ITERATIVE_SCAN_OFF &&
		so->returned < hnsw_max_scan_tuples &&
		MemoryContextMemAllocated(so->cxt, true) < so->memLimit;
}

/* Load the heap TIDs of the next live result; false when none is left */
static bool
next_result(IndexScanDesc scan)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;
	HnswCandidate c;
	MemoryContext old;
	bool		found = false;

	if (so->stream == NULL)
		return false;
	old = MemoryContextSwitchTo(so->cxt);
	while (!found &&
		   HnswStreamNext(so->stream, may_iterate(so),
						  hnsw_iterative_scan != HNSW_ITERATIVE_SCAN_RELAXED, &c))
	{
		so->ntids = HnswPageResultTids(so->pg, &c, so->q, &so->tids,
									   &so->maxtids);
		so->nexttid = 0;
		found = so->ntids > 0;
	}
	MemoryContextSwitchTo(old);
	return found;
}

/*
 * The walk: load the heap TIDs of every live element of the next page that
 * has any; false at the end of the index.
 */
static bool
walk_next_page(IndexScanDesc scan)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;
	MemoryContext old = MemoryContextSwitchTo(so->cxt);

	so->ntids = HnswPageWalkNext(so->walk, &so->tids, &so->maxtids);
	so->nexttid = 0;
	MemoryContextSwitchTo(old);
	return so->ntids > 0;
}

/* amgettuple: the next heap TID in increasing distance */
bool
hnswgettuple(IndexScanDesc scan, ScanDirection dir)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;

	if (!so->searched)
		search(scan);

	if (so->walk)
	{
		/* like a sequential scan, the walk is not a search: no limit */
		if (so->nexttid >= so->ntids && !walk_next_page(scan))
			return false;
	}
	else
	{
		/* an iterative scan returns at most hnsw.max_scan_tuples rows */
		if (hnsw_iterative_scan != HNSW_ITERATIVE_SCAN_OFF &&
			so->returned >= hnsw_max_scan_tuples)
			return false;
		if (so->nexttid >= so->ntids && !next_result(scan))
			return false;
	}

	scan->xs_heaptid = so->tids[so->nexttid++];
	so->returned++;
	scan->xs_recheck = false;
	scan->xs_recheckorderby = false;
	return true;
}

/* amendscan */
void
hnswendscan(IndexScanDesc scan)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;

	report_search(so);
	MemoryContextDelete(so->cxt);
	pfree(so);
	scan->opaque = NULL;
}
