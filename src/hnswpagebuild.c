/*-------------------------------------------------------------------------
 *
 * hnswpagebuild.c
 *	  The bulk writer, part of the page room (hnswpage.h): CREATE INDEX hands it the graph it built
 *	  in memory (hnswmem.c), element by element, and it lays the tuples out,
 *	  writes every page once and WAL-logs them all at once.
 *
 * The graph arrives in three rounds, in element order each time: every
 * element's level and number of further heap TIDs (HnswBulkPlace), so that
 * every tuple has its place before any is written and a neighbor slot can
 * name an element written later; then each element with its heap TIDs,
 * vector and neighbor lists, the neighbors named by element number
 * (HnswBulkElement); then each duplicate chain's heap TIDs (HnswBulkChain).
 * HnswBulkFinish points the metapage at the entry point and logs the
 * pages with log_newpage_range, the only WAL a build writes.
 *
 * The layout is the one inserts would make: elements in order, each on the
 * last page if it fits, its neighbor tuple beside it when both fit; then the
 * duplicate chains on duplicate pages of their own, each chain's tuples
 * consecutive, so that tuple k's successor is the next place.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "access/parallel.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xloginsert.h"
#include "catalog/storage.h"
#include "commands/vacuum.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "hnswpage.h"

/* Where an element's tuples go, decided before any page is written */
typedef struct BulkPlace
{
	ItemPointerData etid;
	ItemPointerData ntid;
	ItemPointerData dtid;		/* head of its duplicate chain, or invalid */
	uint32		nmore;			/* heap TIDs on its chain */
} BulkPlace;

struct HnswBulkWriter
{
	Relation	index;
	Size		vecsize;		/* bytes of a stored vector */
	int			m;
	int64		nelems;
	BulkPlace  *place;
	int64		nplaced;		/* HnswBulkPlace calls so far */
	int64		nwritten;		/* HnswBulkElement calls so far */
	bool		chainsPlaced;
	/* the placement's cursor: the last page's block, offset and room */
	BlockNumber blk;
	OffsetNumber off;
	Size		free;
	BlockNumber lastDup;		/* last duplicate page, or invalid */
	Buffer		buf;			/* the page being filled */
	HnswElementTuple etup;		/* scratch tuples */
	HnswNeighborTuple ntup;
	HnswDuplicateTuple dtup;
	int64		chainElem;		/* element whose chain is being written */
	uint32		chainTuple;		/* number of its next duplicate tuple */
	uint32		chainLeft;		/* its heap TIDs still to come */
};

#define ChainLength(nmore) \
	(((nmore) + HNSW_DUPLICATE_TIDS - 1) / HNSW_DUPLICATE_TIDS)

/*
 * A writer of nelems elements into an index that holds only its metapage.
 * Pages go through shared buffers without WAL until HnswBulkFinish.
 */
HnswBulkWriter *
HnswBulkBegin(Relation index, int64 nelems)
{
	const HnswIndexInfo *info = HnswGetIndexInfo(index);
	HnswBulkWriter *w = palloc0(sizeof(HnswBulkWriter));

	w->index = index;
	w->vecsize = info->vecsize;
	w->m = info->m;
	w->nelems = nelems;
	w->place = palloc_extended(sizeof(BulkPlace) * Max(nelems, 1),
							   MCXT_ALLOC_HUGE);
	w->blk = HNSW_METAPAGE_BLKNO + 1;
	w->off = 0;
	w->free = HNSW_PAGE_CAPACITY;
	w->lastDup = InvalidBlockNumber;
	w->buf = InvalidBuffer;
	w->etup = palloc0(HNSW_ELEMENT_TUPLE_SIZE(w->vecsize));
	w->ntup = palloc0(HNSW_NEIGHBOR_TUPLE_SIZE(HnswPageMaxLevel(w->m), w->m));
	w->dtup = palloc0(HNSW_DUPLICATE_TUPLE_SIZE);
	w->chainElem = -1;
	return w;
}

/* Move the placement's cursor to the next page if size does not fit */
static void
place_tuple(HnswBulkWriter *w, Size size, ItemPointer where)
{
	if (size + sizeof(ItemIdData) > w->free)
	{
		w->blk++;
		w->off = 0;
		w->free = HNSW_PAGE_CAPACITY;
	}
	ItemPointerSet(where, w->blk, ++w->off);
	w->free -= size + sizeof(ItemIdData);
}

/*
 * Place the next element: its level, and how many heap TIDs its duplicate
 * chain will hold (those beyond its own HNSW_HEAPTIDS).
 */
void
HnswBulkPlace(HnswBulkWriter *w, int level, int64 nmore)
{
	BulkPlace  *p = &w->place[w->nplaced++];

	Assert(w->nplaced <= w->nelems && level <= HnswPageMaxLevel(w->m));
	Assert(nmore >= 0 && nmore <= PG_UINT32_MAX);
	place_tuple(w, HNSW_ELEMENT_TUPLE_SIZE(w->vecsize), &p->etid);
	place_tuple(w, HNSW_NEIGHBOR_TUPLE_SIZE(level, w->m), &p->ntid);
	ItemPointerSetInvalid(&p->dtid);
	p->nmore = (uint32) nmore;
}

/* After the elements, the chains, each starting on a duplicate page */
static void
place_chains(HnswBulkWriter *w)
{
	Assert(w->nplaced == w->nelems);
	w->free = 0;
	for (int64 i = 0; i < w->nelems; i++)
	{
		BulkPlace  *p = &w->place[i];

		for (uint32 k = 0; k < ChainLength(p->nmore); k++)
		{
			ItemPointerData where;
			BlockNumber before = w->blk;

			place_tuple(w, HNSW_DUPLICATE_TUPLE_SIZE, &where);
			if (w->blk != before || w->lastDup == InvalidBlockNumber)
				w->lastDup = w->blk;
			if (k == 0)
				p->dtid = where;
		}
	}
	w->chainsPlaced = true;
}

/* The place of tuple k of a chain: its tuples follow one another */
static void
chain_place(const BulkPlace *p, uint32 k, ItemPointer out)
{
	BlockNumber blk = ItemPointerGetBlockNumber(&p->dtid);
	int			off = ItemPointerGetOffsetNumber(&p->dtid) - 1;
	int			perPage = HNSW_PAGE_CAPACITY /
		(HNSW_DUPLICATE_TUPLE_SIZE + sizeof(ItemIdData));

	off += k;
	ItemPointerSet(out, blk + off / perPage, off % perPage + 1);
}

/*
 * Add a tuple where the placement said it goes, moving to a new page first
 * if it is on the next one.  The pages are added in order at the end of the
 * index, and nobody else can know of them yet.
 */
static void
put_tuple(HnswBulkWriter *w, ItemPointer where, Item tuple, Size size,
		  uint16 pageFlags)
{
	BlockNumber blk = ItemPointerGetBlockNumber(where);

	if (w->buf == InvalidBuffer || BufferGetBlockNumber(w->buf) != blk)
	{
		if (w->buf != InvalidBuffer)
		{
			MarkBufferDirty(w->buf);
			UnlockReleaseBuffer(w->buf);
		}
		w->buf = HnswNewBuffer(w->index);
		if (BufferGetBlockNumber(w->buf) != blk)
			elog(ERROR, "index \"%s\" grew unexpectedly during build: block %u, expected %u",
				 RelationGetRelationName(w->index),
				 BufferGetBlockNumber(w->buf), blk);
		HnswInitPage(BufferGetPage(w->buf));
		HnswPageGetOpaque(BufferGetPage(w->buf))->flags = pageFlags;
	}
	if (PageAddItem(BufferGetPage(w->buf), tuple, size,
					ItemPointerGetOffsetNumber(where), false, false) !=
		ItemPointerGetOffsetNumber(where))
		elog(ERROR, "failed to add tuple to index \"%s\" block %u",
			 RelationGetRelationName(w->index), blk);
}

/*
 * Write the next element (the one placed with the same number): ntids heap
 * TIDs of its own, its vector, and its lists, slots[(level + 2) * m] in the
 * layout of HnswLayerStart, each an element number or HNSW_NO_NEIGHBOR.
 */
void
HnswBulkElement(HnswBulkWriter *w, int level, const float *vec,
				const ItemPointerData *heaptids, int ntids,
				const uint32 *slots)
{
	int64		i = w->nwritten++;
	const BulkPlace *p = &w->place[i];
	HnswElementTuple etup = w->etup;
	HnswNeighborTuple ntup = w->ntup;
	Size		esize = HNSW_ELEMENT_TUPLE_SIZE(w->vecsize);
	Size		nsize = HNSW_NEIGHBOR_TUPLE_SIZE(level, w->m);
	int			nslots = (level + 2) * w->m;

	Assert(ntids >= 0 && ntids <= HNSW_HEAPTIDS);
	if (!w->chainsPlaced)
		place_chains(w);

	memset(etup, 0, esize);
	etup->type = HNSW_ELEMENT_TUPLE;
	etup->level = level;
	etup->ntids = ntids;
	for (int t = 0; t < HNSW_HEAPTIDS; t++)
	{
		if (t < ntids)
			etup->heaptids[t] = heaptids[t];
		else
			ItemPointerSetInvalid(&etup->heaptids[t]);
	}
	etup->neighbortid = p->ntid;
	etup->duptid = p->dtid;
	memcpy(etup->vec, vec, w->vecsize);
	put_tuple(w, (ItemPointer) &p->etid, (Item) etup, esize, 0);

	memset(ntup, 0, nsize);
	ntup->type = HNSW_NEIGHBOR_TUPLE;
	ntup->nslots = nslots;
	for (int s = 0; s < nslots; s++)
	{
		if (slots[s] == HNSW_NO_NEIGHBOR)
			ItemPointerSetInvalid(&ntup->slots[s]);
		else
		{
			Assert(slots[s] < w->nelems);
			ntup->slots[s] = w->place[slots[s]].etid;
		}
	}
	put_tuple(w, (ItemPointer) &p->ntid, (Item) ntup, nsize, 0);
}

/* Start the next duplicate tuple of the chain being written */
static void
reset_duplicate(HnswBulkWriter *w)
{
	memset(w->dtup, 0, HNSW_DUPLICATE_TUPLE_SIZE);
	w->dtup->type = HNSW_DUPLICATE_TUPLE;
}

/* Write the chain's current tuple, full or (the chain's last) not */
static void
flush_duplicate(HnswBulkWriter *w)
{
	const BulkPlace *p = &w->place[w->chainElem];
	HnswDuplicateTuple dtup = w->dtup;
	ItemPointerData where;

	for (int t = dtup->ntids; t < HNSW_DUPLICATE_TIDS; t++)
		ItemPointerSetInvalid(&dtup->heaptids[t]);
	if (w->chainTuple + 1 < ChainLength(p->nmore))
		chain_place(p, w->chainTuple + 1, &dtup->next);
	else
		ItemPointerSetInvalid(&dtup->next);
	chain_place(p, w->chainTuple++, &where);
	put_tuple(w, &where, (Item) dtup, HNSW_DUPLICATE_TUPLE_SIZE,
			  HNSW_PAGE_DUPLICATES);
	reset_duplicate(w);
}

/*
 * Add n of the heap TIDs of element elem's duplicate chain.  After every
 * element is written, the chains come in element order, each chain's
 * HnswBulkPlace nmore heap TIDs in one or more calls; they are packed into
 * full tuples.
 */
void
HnswBulkChain(HnswBulkWriter *w, int64 elem, const ItemPointerData *tids,
			  int n)
{
	Assert(w->nwritten == w->nelems);
	if (elem != w->chainElem)
	{
		Assert(w->chainElem < elem && w->chainLeft == 0);
		w->chainElem = elem;
		w->chainTuple = 0;
		w->chainLeft = w->place[elem].nmore;
		reset_duplicate(w);
	}
	Assert(n <= w->chainLeft);
	for (int t = 0; t < n; t++)
	{
		w->dtup->heaptids[w->dtup->ntids++] = tids[t];
		if (w->dtup->ntids == HNSW_DUPLICATE_TIDS)
			flush_duplicate(w);
	}
	w->chainLeft -= n;
	if (w->chainLeft == 0 && w->dtup->ntids > 0)
		flush_duplicate(w);
}

/*
 * Point the metapage at the entry point (element entry, of entryLevel; -1
 * with no element at all) and WAL-log every page of the index at once.
 * The metapage comes last: the graph is complete before it is reachable.
 * Returns the index's size in blocks.
 */
BlockNumber
HnswBulkFinish(HnswBulkWriter *w, int64 entry, int entryLevel)
{
	Relation	index = w->index;
	BlockNumber nblocks;
	Buffer		buf;
	HnswMetaPage meta;

	Assert(w->nwritten == w->nelems && w->chainLeft == 0);
	if (!w->chainsPlaced)
		place_chains(w);
	if (w->buf != InvalidBuffer)
	{
		MarkBufferDirty(w->buf);
		UnlockReleaseBuffer(w->buf);
	}

	buf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	meta = HnswPageGetMeta(BufferGetPage(buf));
	if (entry >= 0)
	{
		meta->entryBlkno = ItemPointerGetBlockNumber(&w->place[entry].etid);
		meta->entryOffno = ItemPointerGetOffsetNumber(&w->place[entry].etid);
		meta->entryLevel = entryLevel;
		/* inserts must not append elements to a duplicate page */
		meta->insertPage = w->lastDup == InvalidBlockNumber ? w->blk :
			InvalidBlockNumber;
		meta->dupPage = w->lastDup;
	}
	MarkBufferDirty(buf);
	UnlockReleaseBuffer(buf);

	nblocks = w->nelems > 0 ? w->blk + 1 : HNSW_METAPAGE_BLKNO + 1;
	if (RelationNeedsWAL(index))
		log_newpage_range(index, MAIN_FORKNUM, 0, nblocks, true);

	pfree(w->place);
	pfree(w->etup);
	pfree(w->ntup);
	pfree(w->dtup);
	pfree(w);
	return nblocks;
}
