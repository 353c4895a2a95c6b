/*-------------------------------------------------------------------------
 *
 * hnswpagescan.c
 *	  What an index scan reads from pages besides the graph itself: where
 *	  the search starts, the heap TIDs of each result (rechecked against
 *	  the page), and, for a query with no distance, a walk over every live
 *	  element.  hnswscan.c decides what to read; this file reads it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/rel.h"

#include "hnswpage.h"

/* A walk over every live element, a page at a time (HnswPageWalkNext) */
struct HnswPageWalk
{
	Relation	index;
	BlockNumber next;			/* the next block to read */
	BlockNumber end;			/* the index's size when the walk began */
	ItemPointer elemTids;		/* scratch: one element's heap TIDs */
	int			maxElemTids;
	ItemPointer *tids;			/* the caller's array, while a page is read */
	int		   *maxtids;
	int			ntids;
};

/* The entry point and its level; HNSW_INVALID_REF for an empty graph */
HnswRef
HnswPageEntryPoint(Relation index, int *level)
{
	HnswMetaPageData meta;

	HnswReadMeta(index, &meta);
	*level = meta.entryLevel;
	if (meta.entryLevel < 0)
		return HNSW_INVALID_REF;
	return HnswRefFromTid(meta.entryBlkno, meta.entryOffno);
}

/*
 * The heap TIDs of a search result c (its distance to q in c->dist) into
 * *tids, a palloc'd array of *maxtids that grows as needed; returns how
 * many.  None for an element deleted since the search met it, or for a
 * slot vacuum freed and an insert reused since: its distance is no longer
 * c's (hnswpage.h, on scans).  The element's page is locked before its
 * chain's (rule 6).
 */
int
HnswPageResultTids(HnswPageGraph *pg, const HnswCandidate *c, const float *q,
				   ItemPointer *tids, int *maxtids)
{
	HnswGraph  *g = &pg->g;
	Relation	index = pg->index;
	BlockNumber blkno = HnswRefBlock(c->ref);
	OffsetNumber offno = HnswRefOffset(c->ref);
	HnswElementTuple etup;
	Buffer		buf;
	int			n = 0;

	buf = ReadBuffer(index, blkno);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	etup = HnswGetElement(index, BufferGetPage(buf), blkno, offno, g->vecsize);
	if (!(etup->flags & (HNSW_ELEMENT_DELETED | HNSW_ELEMENT_FREE)) &&
		g->dist(q, etup->vec, g->dim) == c->dist)
		n = HnswCollectHeapTids(index, blkno, offno, etup, tids, maxtids);
	UnlockReleaseBuffer(buf);
	return n;
}

/* A walk over the index's pages as they are now */
HnswPageWalk *
HnswPageWalkBegin(Relation index)
{
	HnswPageWalk *walk = palloc0(sizeof(HnswPageWalk));

	walk->index = index;
	walk->next = HNSW_METAPAGE_BLKNO + 1;
	walk->end = RelationGetNumberOfBlocks(index);
	walk->maxElemTids = HNSW_HEAPTIDS;
	walk->elemTids = palloc(sizeof(ItemPointerData) * walk->maxElemTids);
	return walk;
}

/* HnswScanElements callback of the walk: a live element's heap TIDs */
static bool
walk_element(Relation index, Buffer buf, OffsetNumber offno,
			 HnswElementTuple etup, void *arg)
{
	HnswPageWalk *walk = arg;
	int			n;

	if (etup->flags & (HNSW_ELEMENT_DELETED | HNSW_ELEMENT_FREE))
		return false;
	n = HnswCollectHeapTids(index, BufferGetBlockNumber(buf), offno, etup,
							&walk->elemTids, &walk->maxElemTids);
	if (walk->ntids + n > *walk->maxtids)
	{
		*walk->maxtids = Max(*walk->maxtids * 2, walk->ntids + n);
		*walk->tids = repalloc(*walk->tids,
							   sizeof(ItemPointerData) * *walk->maxtids);
	}
	memcpy(*walk->tids + walk->ntids, walk->elemTids,
		   sizeof(ItemPointerData) * n);
	walk->ntids += n;
	return false;
}

/*
 * The heap TIDs of every live element of the walk's next page that has
 * any, each with its duplicate chain, into *tids (a palloc'd array of
 * *maxtids, grown as needed); returns how many, 0 at the end of the index.
 * One page is read at a time, under a share lock (duplicate pages after
 * it, rule 6).  Rows inserted since the walk began need not be returned:
 * they are not in the scan's snapshot.
 */
int
HnswPageWalkNext(HnswPageWalk *walk, ItemPointer *tids, int *maxtids)
{
	walk->tids = tids;
	walk->maxtids = maxtids;
	walk->ntids = 0;
	while (walk->ntids == 0 && walk->next < walk->end)
	{
		CHECK_FOR_INTERRUPTS();
		HnswScanElements(walk->index, walk->next, walk->next + 1, NULL, 0,
						 walk_element, walk);
		walk->next++;
	}
	return walk->ntids;
}
