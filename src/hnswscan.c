/*-------------------------------------------------------------------------
 *
 * hnswscan.c
 *	  Index scans for hnsw: ambeginscan, amrescan, amgettuple, amendscan.
 *
 * The first amgettuple runs the k-NN search (paper Algorithm 5) with
 * ef = hnsw.ef_search over the pages, then hands back the heap TIDs of
 * the elements found, nearest first.  Distances are exact, so the
 * executor need not recheck the order.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relscan.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/memutils.h"

#include "hnsw.h"

typedef struct HnswScanOpaqueData
{
	MemoryContext cxt;			/* one scan's search; reset by rescan */
	bool		searched;		/* has this scan run its search? */
	HnswCandidate *results;		/* elements found, nearest first */
	int			nresults;
	int			next;			/* next result to return */
	ItemPointerData tids[HNSW_HEAPTIDS];	/* heap TIDs of results[next-1] */
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
	scan->opaque = so;
	return scan;
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
	MemoryContextReset(so->cxt);
	so->searched = false;
	so->results = NULL;
	so->nresults = 0;
	so->next = 0;
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
	HnswMetaPageData meta;
	MemoryContext old;
	float	   *q;

	so->searched = true;
	/* an ORDER BY without an argument, or a NULL one, orders nothing */
	if (scan->numberOfOrderBys == 0 ||
		(scan->orderByData[0].sk_flags & SK_ISNULL))
		return;

	old = MemoryContextSwitchTo(so->cxt);
	q = palloc(sizeof(float) * info->dimensions);
	/* a zero query under cosine has no distance to anything */
	if (HnswPrepareVector(info, scan->orderByData[0].sk_argument, q))
	{
		HnswReadMeta(index, &meta);
		if (meta.entryLevel >= 0)
		{
			HnswPageGraph *pg = HnswPageGraphCreate(index);

			so->nresults = HnswSearch(HnswPageGraphBase(pg), q,
									  HnswRefFromTid(meta.entryBlkno,
													 meta.entryOffno),
									  meta.entryLevel, hnsw_ef_search,
									  &so->results);
		}
	}
	MemoryContextSwitchTo(old);
}

/* Load the heap TIDs of the next live result; false when none is left */
static bool
next_result(IndexScanDesc scan)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	int			dim = HnswGetIndexInfo(index)->dimensions;

	while (so->next < so->nresults)
	{
		HnswRef		ref = so->results[so->next++].ref;
		BlockNumber blkno = HnswRefBlock(ref);
		HnswElementTuple etup;
		Buffer		buf;

		buf = ReadBuffer(index, blkno);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		etup = HnswGetElement(index, BufferGetPage(buf), blkno,
							  HnswRefOffset(ref), dim);
		so->ntids = (etup->flags & (HNSW_ELEMENT_DELETED | HNSW_ELEMENT_FREE)) ?
			0 : etup->ntids;
		memcpy(so->tids, etup->heaptids, sizeof(ItemPointerData) * so->ntids);
		UnlockReleaseBuffer(buf);
		so->nexttid = 0;
		if (so->ntids > 0)
			return true;
	}
	return false;
}

/* amgettuple: the next heap TID in increasing distance */
bool
hnswgettuple(IndexScanDesc scan, ScanDirection dir)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;

	if (!so->searched)
		search(scan);

	if (so->nexttid >= so->ntids && !next_result(scan))
		return false;

	scan->xs_heaptid = so->tids[so->nexttid++];
	scan->xs_recheck = false;
	scan->xs_recheckorderby = false;
	return true;
}

/* amendscan */
void
hnswendscan(IndexScanDesc scan)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;

	MemoryContextDelete(so->cxt);
	pfree(so);
	scan->opaque = NULL;
}
