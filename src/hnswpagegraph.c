/*-------------------------------------------------------------------------
 *
 * hnswpagegraph.c
 *	  The graph over pages, part of the page room (hnswpage.h):
 *	  HnswGraphOps over an index's pages, what the algorithm (hnswgraph.h)
 *	  reads and links through when it searches, inserts or repairs the
 *	  graph on pages; and an insert's own page work.
 *
 * Searches read thousands of elements, so the reads are the hot path:
 * distances are computed in batches through a prefetching pipeline, and
 * buffers are found through per-backend hints.  Links into a full list
 * are optimistic (hnswpage.h, rule 3).  The insert's own operations
 * follow the graph's, in a section of their own.
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

/* How often a link into a concurrently changing list is recomputed */
#define HNSW_LINK_RETRIES	3

/*
 * Where each block of one index last sat in the buffer pool, remembered
 * per backend.  A search reads thousands of buffers, and the shared
 * buffer-mapping lookup was its largest single cost; ReadRecentBuffer
 * pins a remembered buffer after checking it still holds the block, so a
 * stale hint only costs the ordinary lookup.  One index at a time: a scan
 * of another index starts the hints afresh.
 */
static struct
{
	RelFileNode node;
	BlockNumber nblocks;		/* size of bufs[] */
	Buffer	   *bufs;
}			hints;

/*
 * ReadBuffer through the hints, for a block named by a link.  A damaged
 * link may name any block: one past the end is an error naming the
 * element it came from, never an extension of the index (P_NEW is
 * 0xFFFFFFFF).  The size is looked up again only when a block seems past
 * it, since the index grows under us.
 */
static Buffer
read_buffer(HnswPageGraph *pg, BlockNumber blkno, HnswRef from)
{
	Relation	index = pg->index;
	Buffer		buf;

	if (blkno >= pg->nblocks || blkno == HNSW_METAPAGE_BLKNO)
	{
		pg->nblocks = RelationGetNumberOfBlocks(index);
		if (blkno >= pg->nblocks || blkno == HNSW_METAPAGE_BLKNO)
			HnswTupleCorrupted(index, HnswRefBlock(from), HnswRefOffset(from),
							"link");
	}
	if (!RelFileNodeEquals(hints.node, index->rd_node))
	{
		hints.node = index->rd_node;
		hints.nblocks = 0;
		if (hints.bufs)
			pfree(hints.bufs);
		hints.bufs = NULL;
	}
	if (blkno < hints.nblocks)
	{
		buf = hints.bufs[blkno];
		if (buf != InvalidBuffer &&
			ReadRecentBuffer(index->rd_node, MAIN_FORKNUM, blkno, buf))
			return buf;
	}
	else
	{
		BlockNumber n = Max(blkno + 1, hints.nblocks * 2);

		n = Max(n, 1024);
		if (hints.bufs == NULL)
			hints.bufs = MemoryContextAllocZero(TopMemoryContext,
												sizeof(Buffer) * n);
		else
		{
			hints.bufs = repalloc(hints.bufs, sizeof(Buffer) * n);
			memset(hints.bufs + hints.nblocks, 0,
				   sizeof(Buffer) * (n - hints.nblocks));
		}
		hints.nblocks = n;
	}
	buf = ReadBuffer(index, blkno);
	hints.bufs[blkno] = buf;
	return buf;
}

/* HnswGraphOps over pages ------------------------------------------------- */

static inline Relation
graph_index(HnswGraph *g)
{
	return ((HnswPageGraph *) g)->index;
}

/*
 * Distances to a batch of elements, as a three-stage pipeline so that the
 * cache misses of one element overlap the work on another: element i + 2
 * is pinned and its line pointer prefetched, element i + 1's tuple is
 * prefetched through that line pointer (an unlocked read, used only as a
 * hint: items never move on our pages), and element i is read under its
 * share lock.  At most three pins are held.
 */
static void
page_distances(HnswGraph *g, const float *q, HnswCandidate *c, int n,
			   const float **vecs, float bound)
{
	Relation	index = graph_index(g);
	Buffer		bufs[3];

	for (int i = 0; i < n + 2; i++)
	{
		if (i < n)
		{
			Page		page;

			bufs[i % 3] = read_buffer((HnswPageGraph *) g,
									  HnswRefBlock(c[i].ref), c[i].ref);
			page = BufferGetPage(bufs[i % 3]);
			__builtin_prefetch(page);
			/* only a hint; a wild offset is caught when the item is read */
			if (HnswRefOffset(c[i].ref) <= MaxOffsetNumber)
				__builtin_prefetch(PageGetItemId(page, HnswRefOffset(c[i].ref)));
		}
		if (i >= 1 && i - 1 < n)
		{
			Page		page = BufferGetPage(bufs[(i - 1) % 3]);
			ItemId		itemid = PageGetItemId(page, HnswRefOffset(c[i - 1].ref));
			char	   *tup = (char *) page + (ItemIdGetOffset(itemid) & (BLCKSZ - 1));

			for (int off = 0; off < 512 && off < BLCKSZ - (tup - (char *) page); off += 64)
				__builtin_prefetch(tup + off);
		}
		if (i >= 2)
		{
			HnswCandidate *e = &c[i - 2];
			Buffer		buf = bufs[(i - 2) % 3];
			HnswElementTuple etup;

			LockBuffer(buf, BUFFER_LOCK_SHARE);
			etup = HnswGetElement(index, BufferGetPage(buf),
								  HnswRefBlock(e->ref), HnswRefOffset(e->ref),
								  g->vecsize);
			e->dist = HnswDistance(g, q, etup->vec, bound);
			if (vecs)
			{
				float	   *v = palloc(g->vecsize);

				memcpy(v, etup->vec, g->vecsize);
				vecs[i - 2] = v;
			}
			e->deleted = (etup->flags & (HNSW_ELEMENT_DELETED | HNSW_ELEMENT_FREE)) != 0;
			e->neighborsAt = HnswRefFromItemPointer(&etup->neighbortid);
			UnlockReleaseBuffer(buf);
		}
	}
}

/* Copy the refs of one layer's list out of a neighbor tuple */
static int
layer_refs(HnswGraph *g, HnswNeighborTuple ntup, int layer, HnswRef *out)
{
	int			start = HnswLayerStart(g->m, layer);
	int			cap = HnswLayerCapacity(g->m, layer);
	int			n;

	/* a layer above the element's level has no slots: nothing to follow */
	if (start + cap > ntup->nslots)
		return 0;
	for (n = 0; n < cap; n++)
	{
		ItemPointer tid = &ntup->slots[start + n];

		if (!ItemPointerIsValid(tid))
			break;
		out[n] = HnswRefFromItemPointer(tid);
	}
	return n;
}

static int
page_neighbors(HnswGraph *g, const HnswCandidate *c, int layer, HnswRef *out)
{
	Relation	index = graph_index(g);
	BlockNumber blkno = HnswRefBlock(c->neighborsAt);
	OffsetNumber offno = HnswRefOffset(c->neighborsAt);
	HnswNeighborTuple ntup;
	Buffer		buf;
	int			n;

	buf = read_buffer((HnswPageGraph *) g, blkno, c->ref);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	ntup = HnswGetNeighbors(index, BufferGetPage(buf), blkno, offno, g->m);
	n = layer_refs(g, ntup, layer, out);
	UnlockReleaseBuffer(buf);
	return n;
}

static const float *
page_vector(HnswGraph *g, const HnswCandidate *c)
{
	Relation	index = graph_index(g);
	BlockNumber blkno = HnswRefBlock(c->ref);
	float	   *v = palloc(g->vecsize);
	Buffer		buf;

	buf = read_buffer((HnswPageGraph *) g, blkno, c->ref);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	memcpy(v, HnswGetElement(index, BufferGetPage(buf), blkno,
							 HnswRefOffset(c->ref), g->vecsize)->vec,
		   g->vecsize);
	UnlockReleaseBuffer(buf);
	return v;
}

/* Overwrite one layer's list in a neighbor tuple of a registered page */
void
HnswSetLayer(HnswNeighborTuple ntup, int m, int layer, const HnswRef *refs,
			 int n)
{
	int			start = HnswLayerStart(m, layer);
	int			cap = HnswLayerCapacity(m, layer);

	for (int i = 0; i < cap; i++)
	{
		if (i < n)
			ItemPointerSet(&ntup->slots[start + i], HnswRefBlock(refs[i]),
						   HnswRefOffset(refs[i]));
		else
			ItemPointerSetInvalid(&ntup->slots[start + i]);
	}
}

/* Write one layer's list into the neighbor tuple of a locked buffer */
static void
write_layer(HnswGraph *g, Buffer buf, OffsetNumber offno, int layer,
			const HnswRef *refs, int n)
{
	Relation	index = graph_index(g);
	GenericXLogState *state = GenericXLogStart(index);
	Page		page = GenericXLogRegisterBuffer(state, buf, 0);

	HnswSetLayer(HnswGetNeighbors(index, page, BufferGetBlockNumber(buf),
								  offno, g->m),
				 g->m, layer, refs, n);
	GenericXLogFinish(state);
}

/*
 * Where an element's neighbor tuple is, and whether it is deleted: its
 * element tuple's header, read under a share lock.
 */
static void
page_locate(HnswGraph *g, HnswRef ref, HnswCandidate *c)
{
	Relation	index = graph_index(g);
	HnswElementTuple etup;
	Buffer		buf;

	buf = read_buffer((HnswPageGraph *) g, HnswRefBlock(ref), ref);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	etup = HnswGetElement(index, BufferGetPage(buf), HnswRefBlock(ref),
						  HnswRefOffset(ref), g->vecsize);
	c->ref = ref;
	c->dist = 0;
	c->deleted = (etup->flags & (HNSW_ELEMENT_DELETED | HNSW_ELEMENT_FREE)) != 0;
	c->neighborsAt = HnswRefFromItemPointer(&etup->neighbortid);
	UnlockReleaseBuffer(buf);
}

/*
 * Link q into e's list on a layer.  While the list has room this is one
 * locked append.  A full list is pruned with no lock held, and written
 * only over the very list it was computed from (hnswpage.h, rule 3).
 */
static bool
page_add_link(HnswGraph *g, const HnswCandidate *e, int layer,
			  const HnswCandidate *q, bool force)
{
	Relation	index = graph_index(g);
	BlockNumber blkno = HnswRefBlock(e->neighborsAt);
	OffsetNumber offno = HnswRefOffset(e->neighborsAt);
	int			cap = HnswLayerCapacity(g->m, layer);
	HnswRef		cur[2 * HNSW_MAX_M];	/* the list `out` was made from */
	HnswRef		now[2 * HNSW_MAX_M];
	HnswRef		out[2 * HNSW_MAX_M];
	int			ncur = -1;
	int			nout = 0;

	for (int attempt = 0;; attempt++)
	{
		HnswNeighborTuple ntup;
		Buffer		buf;
		int			nnow;

		buf = read_buffer((HnswPageGraph *) g, blkno, e->ref);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		ntup = HnswGetNeighbors(index, BufferGetPage(buf), blkno, offno, g->m);
		if (HnswLayerStart(g->m, layer) + cap > ntup->nslots)
			HnswTupleCorrupted(index, blkno, offno, "neighbor tuple");
		nnow = layer_refs(g, ntup, layer, now);

		if (HnswRefsContain(now, nnow, q->ref))
		{
			UnlockReleaseBuffer(buf);
			return true;
		}
		if (nnow < cap)
		{
			now[nnow++] = q->ref;
			write_layer(g, buf, offno, layer, now, nnow);
			UnlockReleaseBuffer(buf);
			return true;
		}
		if (ncur == nnow && memcmp(cur, now, sizeof(HnswRef) * nnow) == 0)
		{
			/* unchanged since we pruned it: q may not have made the cut */
			bool		kept = HnswRefsContain(out, nout, q->ref);

			if (kept)
				write_layer(g, buf, offno, layer, out, nout);
			UnlockReleaseBuffer(buf);
			return kept;
		}
		if (attempt == HNSW_LINK_RETRIES)
		{
			/* still changing under us: forced, q takes the last place */
			if (force)
			{
				now[nnow - 1] = q->ref;
				write_layer(g, buf, offno, layer, now, nnow);
			}
			UnlockReleaseBuffer(buf);
			return force;
		}
		UnlockReleaseBuffer(buf);

		memcpy(cur, now, sizeof(HnswRef) * nnow);
		ncur = nnow;
		nout = HnswMergeLink(g, e, layer, cur, ncur, q, force, out);
		if (layer == 0)
			HnswKeepLastLinks(g, e, cur, ncur, q, out, nout);
	}
}

/*
 * Write a new list for one layer of a neighbor tuple, but only over the
 * list `expect` it was computed from; false if that changed meanwhile.
 */
bool
HnswPageReplaceLayer(HnswPageGraph *pg, uint64 neighborsAt, int layer,
					 const HnswRef *expect, int nexpect,
					 const HnswRef *refs, int n)
{
	HnswGraph  *g = &pg->g;
	Relation	index = pg->index;
	BlockNumber blkno = HnswRefBlock(neighborsAt);
	OffsetNumber offno = HnswRefOffset(neighborsAt);
	HnswRef		now[2 * HNSW_MAX_M];
	HnswNeighborTuple ntup;
	Buffer		buf;
	int			nnow;
	bool		same;

	buf = read_buffer(pg, blkno, neighborsAt);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	ntup = HnswGetNeighbors(index, BufferGetPage(buf), blkno, offno, g->m);
	if (HnswLayerStart(g->m, layer) + HnswLayerCapacity(g->m, layer) > ntup->nslots)
		HnswTupleCorrupted(index, blkno, offno, "neighbor tuple");
	nnow = layer_refs(g, ntup, layer, now);
	same = (nnow == nexpect &&
			memcmp(now, expect, sizeof(HnswRef) * nnow) == 0);
	if (same)
		write_layer(g, buf, offno, layer, refs, n);
	UnlockReleaseBuffer(buf);
	return same;
}

/* replace_neighbors: HnswPageReplaceLayer */
static bool
page_replace_neighbors(HnswGraph *g, const HnswCandidate *e, int layer,
					   const HnswRef *expect, int nexpect, const HnswRef *refs,
					   int n)
{
	return HnswPageReplaceLayer((HnswPageGraph *) g, e->neighborsAt, layer,
								expect, nexpect, refs, n);
}

/* The page graph's live elements (live_elements), a growing array */
typedef struct LiveSet
{
	HnswElementSet *set;
	int64		max;
} LiveSet;

static bool
collect_live(Relation index, Buffer buf, OffsetNumber offno,
			 HnswElementTuple etup, void *arg)
{
	LiveSet    *ls = arg;
	HnswElementSet *set = ls->set;

	if (etup->flags & (HNSW_ELEMENT_DELETED | HNSW_ELEMENT_FREE))
		return false;
	if (set->n == ls->max)
	{
		ls->max *= 2;
		set->refs = repalloc_huge(set->refs, sizeof(HnswRef) * ls->max);
		set->neighborsAt = repalloc_huge(set->neighborsAt,
										 sizeof(uint64) * ls->max);
		set->levels = repalloc_huge(set->levels, ls->max);
	}
	set->refs[set->n] = HnswRefFromTid(BufferGetBlockNumber(buf), offno);
	set->neighborsAt[set->n] = HnswRefFromItemPointer(&etup->neighbortid);
	set->levels[set->n] = etup->level;
	set->n++;
	return false;
}

/*
 * The entry point and, unless the graph is empty, every live element, in
 * block and offset order (so sorted by ref), read a page at a time with
 * the graph's strategy and vacuum's cost pauses.
 */
static void
page_live_elements(HnswGraph *g, HnswElementSet *set)
{
	HnswPageGraph *pg = (HnswPageGraph *) g;
	Relation	index = pg->index;
	HnswMetaPageData meta;
	LiveSet		ls = {set, 1024};

	HnswReadMeta(index, &meta);
	set->entry = meta.entryLevel < 0 ? HNSW_INVALID_REF :
		HnswRefFromTid(meta.entryBlkno, meta.entryOffno);
	set->entryLevel = meta.entryLevel;
	set->n = 0;
	set->refs = palloc(sizeof(HnswRef) * ls.max);
	set->neighborsAt = palloc(sizeof(uint64) * ls.max);
	set->levels = palloc(ls.max);
	if (meta.entryLevel < 0)
		return;
	HnswScanElements(index, HNSW_METAPAGE_BLKNO + 1,
					 RelationGetNumberOfBlocks(index), pg->strategy,
					 HNSW_SCAN_PAUSE, collect_live, &ls);
}

/*
 * Make ref (of level) the entry point if it is above the current one, under
 * the update lock as an insert that raises it takes it (rule 2; an insert
 * calling this holds it already, in exclusive mode, and takes it again).
 */
static void
page_raise_entry(HnswGraph *g, HnswRef ref, int level, HnswRef *entry,
				 int *entryLevel)
{
	HnswPageGraph *pg = (HnswPageGraph *) g;
	HnswMetaPageData meta;
	LockPage(pg->index, HNSW_UPDATE_LOCK, ExclusiveLock);
	HnswRaiseEntryPoint(pg->index, ref, level);
	if (entry)
	{
		HnswReadMeta(pg->index, &meta);
		*entry = meta.entryLevel < 0 ? HNSW_INVALID_REF :
			HnswRefFromTid(meta.entryBlkno, meta.entryOffno);
		*entryLevel = meta.entryLevel;
	}
	UnlockPage(pg->index, HNSW_UPDATE_LOCK, ExclusiveLock);
}

static const HnswGraphOps hnsw_page_ops = {
	.distances = page_distances,
	.neighbors = page_neighbors,
	.element_vector = page_vector,
	.add_link = page_add_link,
	.locate = page_locate,
	.replace_neighbors = page_replace_neighbors,
	.live_elements = page_live_elements,
	.raise_entry = page_raise_entry,
	.begin_insert = HnswPageBeginInsert,
	.add_heaptid = HnswPageAddHeapTid,
	.add_element = HnswPageAddElement,
	.end_insert = HnswPageEndInsert,
};

/* A graph over an index's pages, to search or to change it */
HnswPageGraph *
HnswPageGraphCreate(Relation index, bool forSearch)
{
	const HnswIndexInfo *info = HnswGetIndexInfo(index);
	HnswPageGraph *pg = palloc0(sizeof(HnswPageGraph));

	pg->index = index;
	HnswGraphInit(&pg->g, &hnsw_page_ops,
				  HnswMetricKernel(info->metric, !forSearch),
				  info->dimensions, info->vecsize, info->m, info->efConstruction,
				  HnswPageMaxLevel(info->m));
	return pg;
}

HnswGraph *
HnswPageGraphBase(HnswPageGraph *pg)
{
	return &pg->g;
}

/*
 * The access strategy of the graph's walks over every element (vacuum's);
 * none by default.
 */
void
HnswPageGraphSetStrategy(HnswPageGraph *pg, BufferAccessStrategy strategy)
{
	pg->strategy = strategy;
}

/*-------------------------------------------------------------------------
 * Inserts
 *	  An insert's own page operations (HnswGraphOps' begin_insert,
 *	  add_heaptid, add_element, end_insert): the update lock, a new
 *	  element's tuples in a free slot or at the end of the index, and a
 *	  row added to an element with the same vector, in its own heap TID
 *	  slots or its duplicate chain.
 *
 * The algorithm (HnswInsert) decides what to insert and links the element
 * in; the lock rules followed here are hnswpage.h's.
 *
 *-------------------------------------------------------------------------
 */

/* What claim_slot is given, and what it found */
typedef struct ClaimArgs
{
	HnswPageGraph *pg;
	int			level;
	HnswElementTuple etup;		/* the new element's tuples, to write */
	Size		esize;
	HnswNeighborTuple ntup;
	Size		nsize;
	BlockNumber nblocks;
	HnswCandidate *c;			/* set when a slot is taken */
} ClaimArgs;

/*
 * HnswScanElements callback of claim_free_slot, on an exclusively locked
 * page: if the element is a free slot of the level, write the new
 * element's tuples over it and its neighbor tuple's, and stop.
 */
static bool
claim_slot(Relation index, Buffer buf, OffsetNumber off,
		   HnswElementTuple old, void *arg)
{
	ClaimArgs  *ca = arg;
	HnswPageGraph *pg = ca->pg;
	BlockNumber blkno = BufferGetBlockNumber(buf);
	ItemPointerData ntid;
	BlockNumber nblk;
	OffsetNumber noff;
	Buffer		nbuf = InvalidBuffer;
	GenericXLogState *state;
	Page		epage;
	Page		npage;

	if (!(old->flags & HNSW_ELEMENT_FREE) || old->level != ca->level)
		return false;
	ntid = old->neighbortid;
	nblk = ItemPointerGetBlockNumber(&ntid);
	noff = ItemPointerGetOffsetNumber(&ntid);
	/* the neighbor tuple is here or on a later page: rule 7 */
	if (nblk < blkno || nblk >= ca->nblocks)
		HnswTupleCorrupted(index, blkno, off, "element tuple");
	if (nblk != blkno)
	{
		nbuf = ReadBuffer(index, nblk);
		LockBuffer(nbuf, BUFFER_LOCK_EXCLUSIVE);
	}
	state = GenericXLogStart(index);
	epage = GenericXLogRegisterBuffer(state, buf, 0);
	npage = nbuf == InvalidBuffer ? epage :
		GenericXLogRegisterBuffer(state, nbuf, 0);
	old = HnswGetElement(index, epage, blkno, off, pg->g.vecsize);
	if (HnswGetNeighbors(index, npage, nblk, noff, pg->g.m)->nslots !=
		ca->ntup->nslots)
		HnswTupleCorrupted(index, nblk, noff, "neighbor tuple");
	ca->etup->neighbortid = ntid;
	/* the slot's duplicate chain (emptied by vacuum) stays with it */
	ca->etup->duptid = old->duptid;
	memcpy(old, ca->etup, ca->esize);
	memcpy(HnswGetNeighbors(index, npage, nblk, noff, pg->g.m), ca->ntup,
		   ca->nsize);
	GenericXLogFinish(state);
	if (nbuf != InvalidBuffer)
		UnlockReleaseBuffer(nbuf);
	ca->c->ref = HnswRefFromTid(blkno, off);
	ca->c->neighborsAt = HnswRefFromItemPointer(&ntid);
	ca->c->dist = 0;
	ca->c->deleted = false;
	return true;
}

/*
 * Take a free slot of exactly `level` for a new element, looking from the
 * level's hint over at most HNSW_FREE_SCAN_PAGES pages, and moving the hint
 * past pages that have none, so that the pages are looked at once per
 * vacuum, not once per insert.  On success the element and neighbor
 * tuples are written over the slot's and c is set.
 */
#define HNSW_FREE_SCAN_PAGES 16

static bool
claim_free_slot(HnswPageGraph *pg, const HnswMetaPageData *meta, int level,
				HnswElementTuple etup, Size esize, HnswNeighborTuple ntup,
				Size nsize, HnswCandidate *c)
{
	Relation	index = pg->index;
	BlockNumber hint = meta->freeHint[level];
	BlockNumber end;
	BlockNumber at;
	ClaimArgs	ca = {pg, level, etup, esize, ntup, nsize, 0, c};
	BlockNumber next;

	if (hint == InvalidBlockNumber)
		return false;
	ca.nblocks = RelationGetNumberOfBlocks(index);
	end = Min(ca.nblocks, hint + HNSW_FREE_SCAN_PAGES);
	at = HnswScanElements(index, hint, end, NULL, HNSW_SCAN_EXCLUSIVE,
						  claim_slot, &ca);

	/* where the next insert of this level should start */
	if (at != InvalidBlockNumber)
		next = at;
	else
		next = end >= ca.nblocks ? InvalidBlockNumber : end;
	if (next != hint)
		HnswAdvanceFreeHint(index, level, hint, next);
	return at != InvalidBlockNumber;
}

/* Register a freshly added page in a WAL record, initialized */
static Page
register_new_page(GenericXLogState *state, Buffer buf)
{
	Page		page = GenericXLogRegisterBuffer(state, buf,
												 GENERIC_XLOG_FULL_IMAGE);

	HnswInitPage(page);
	return page;
}

/*
 * Add a new element's two tuples, on the insert page if the element fits
 * there, else on new pages at the end; its neighbor tuple goes beside it
 * when both fit.  Returns the element, with c->neighborsAt set.
 */
static void
write_element(HnswPageGraph *pg, const float *vec, int level,
			  ItemPointer heaptid, const HnswNeighborhood *nb,
			  const HnswMetaPageData *meta, HnswCandidate *c)
{
	BlockNumber tried = InvalidBlockNumber;
	HnswGraph  *g = &pg->g;
	Relation	index = pg->index;
	Size		esize = HNSW_ELEMENT_TUPLE_SIZE(g->vecsize);
	Size		nsize = HNSW_NEIGHBOR_TUPLE_SIZE(level, g->m);
	HnswElementTuple etup = palloc0(esize);
	HnswNeighborTuple ntup = palloc0(nsize);
	GenericXLogState *state;
	Buffer		ebuf = InvalidBuffer;
	Buffer		nbuf = InvalidBuffer;
	BlockNumber newest = InvalidBlockNumber;
	Page		epage;
	Page		npage;
	OffsetNumber eoff;
	OffsetNumber noff;

	etup->type = HNSW_ELEMENT_TUPLE;
	etup->level = level;
	etup->ntids = 1;
	etup->heaptids[0] = *heaptid;
	for (int t = 1; t < HNSW_HEAPTIDS; t++)
		ItemPointerSetInvalid(&etup->heaptids[t]);
	ItemPointerSetInvalid(&etup->duptid);
	memcpy(etup->vec, vec, g->vecsize);
	ntup->type = HNSW_NEIGHBOR_TUPLE;
	ntup->nslots = (level + 2) * g->m;
	for (int lc = 0; lc <= level + 1; lc++)
	{
		HnswRef		refs[2 * HNSW_MAX_M];
		int			n = lc <= level ? nb->count[lc] : 0;

		/* slots beyond the last layer are the tail of layer `level` */
		if (HnswLayerStart(g->m, lc) >= ntup->nslots)
			break;
		for (int i = 0; i < n; i++)
			refs[i] = nb->lists[lc][i].ref;
		HnswSetLayer(ntup, g->m, lc, refs, n);
	}

	if (claim_free_slot(pg, meta, level, etup, esize, ntup, nsize, c))
	{
		pfree(etup);
		pfree(ntup);
		return;
	}

	/*
	 * The insert page, if the element fits there.  The metapage is read
	 * again: the copy the caller read before searching is old by now, and
	 * concurrent inserts that each found that page full each added a page
	 * of their own, most of which then stayed nearly empty (README,
	 * Design, for what that cost).  A page found full is retried as long
	 * as the metapage has moved on to another.
	 */
	for (;;)
	{
		HnswMetaPageData now;

		/* it only moves forward: stop when it no longer moves */
		HnswReadMeta(index, &now);
		if (now.insertPage == InvalidBlockNumber || now.insertPage == tried)
			break;
		tried = now.insertPage;
		ebuf = ReadBuffer(index, tried);
		LockBuffer(ebuf, BUFFER_LOCK_EXCLUSIVE);
		if (!PageIsNew(BufferGetPage(ebuf)))
			HnswCheckPage(index, BufferGetPage(ebuf), tried);
		if (!PageIsNew(BufferGetPage(ebuf)) &&
			PageGetExactFreeSpace(BufferGetPage(ebuf)) >=
			esize + sizeof(ItemIdData))
			break;
		UnlockReleaseBuffer(ebuf);
		ebuf = InvalidBuffer;
	}

	state = GenericXLogStart(index);
	if (ebuf == InvalidBuffer)
	{
		ebuf = HnswNewBuffer(index);
		newest = BufferGetBlockNumber(ebuf);
		epage = register_new_page(state, ebuf);
	}
	else
		epage = GenericXLogRegisterBuffer(state, ebuf, 0);
	eoff = OffsetNumberNext(PageGetMaxOffsetNumber(epage));

	if (PageGetExactFreeSpace(epage) >=
		esize + nsize + 2 * sizeof(ItemIdData))
	{
		npage = epage;
		noff = OffsetNumberNext(eoff);
		ItemPointerSet(&etup->neighbortid, BufferGetBlockNumber(ebuf), noff);
	}
	else
	{
		nbuf = HnswNewBuffer(index);
		newest = BufferGetBlockNumber(nbuf);
		npage = register_new_page(state, nbuf);
		noff = FirstOffsetNumber;
		ItemPointerSet(&etup->neighbortid, newest, noff);
	}

	if (PageAddItem(epage, (Item) etup, esize, eoff, false, false) != eoff ||
		PageAddItem(npage, (Item) ntup, nsize, noff, false, false) != noff)
		elog(ERROR, "failed to add element to index \"%s\"",
			 RelationGetRelationName(index));
	GenericXLogFinish(state);

	c->ref = HnswRefFromTid(BufferGetBlockNumber(ebuf), eoff);
	c->neighborsAt = HnswRefFromItemPointer(&etup->neighbortid);
	c->dist = 0;
	c->deleted = false;
	UnlockReleaseBuffer(ebuf);
	if (nbuf != InvalidBuffer)
		UnlockReleaseBuffer(nbuf);
	if (newest != InvalidBlockNumber)
		HnswAdvanceInsertPage(index, newest);
	pfree(etup);
	pfree(ntup);
}

/* Put a heap TID into a chain tuple with room, and stop there */
static bool
add_chain_tid(Relation index, Buffer buf, OffsetNumber offno,
			  HnswDuplicateTuple dtup, void *arg)
{
	GenericXLogState *state;

	if (dtup->ntids >= HNSW_DUPLICATE_TIDS)
		return false;
	state = GenericXLogStart(index);
	dtup = HnswGetDuplicate(index, GenericXLogRegisterBuffer(state, buf, 0),
							BufferGetBlockNumber(buf), offno);
	dtup->heaptids[dtup->ntids++] = *(ItemPointer) arg;
	GenericXLogFinish(state);
	return true;
}

/*
 * Add a heap TID to an element holding exactly vec, if it is live: into
 * its own slots, else into its duplicate chain, which grows by a tuple at
 * its head when full.  Returns false if the element is not (or no longer)
 * such an element.  Lock order: hnswpage.h, rule 6.
 */
static bool
add_heaptid(HnswPageGraph *pg, const HnswCandidate *c, const float *vec,
			ItemPointer heaptid)
{
	Relation	index = pg->index;
	BlockNumber blkno = HnswRefBlock(c->ref);
	OffsetNumber offno = HnswRefOffset(c->ref);
	GenericXLogState *state;
	HnswElementTuple etup;
	HnswDuplicateTupleData *dnew;
	HnswMetaPageData meta;
	Buffer		buf;
	Buffer		dbuf;
	Page		dpage;
	OffsetNumber doff;
	bool		newpage = false;

	buf = ReadBuffer(index, blkno);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	etup = HnswGetElement(index, BufferGetPage(buf), blkno, offno, pg->g.vecsize);
	if ((etup->flags & (HNSW_ELEMENT_DELETED | HNSW_ELEMENT_FREE)) ||
		memcmp(etup->vec, vec, pg->g.vecsize) != 0)
	{
		UnlockReleaseBuffer(buf);
		return false;
	}
	if (etup->ntids < HNSW_HEAPTIDS)
	{
		state = GenericXLogStart(index);
		etup = HnswGetElement(index, GenericXLogRegisterBuffer(state, buf, 0),
							  blkno, offno, pg->g.vecsize);
		etup->heaptids[etup->ntids++] = *heaptid;
		GenericXLogFinish(state);
		UnlockReleaseBuffer(buf);
		return true;
	}

	/* a chain tuple with room; the element's lock keeps the chain still */
	if (HnswWalkChain(index, blkno, offno, etup->duptid, BUFFER_LOCK_EXCLUSIVE,
					  NULL, add_chain_tid, heaptid))
	{
		UnlockReleaseBuffer(buf);
		return true;
	}

	/* all full: a new chain tuple at the head, on the duplicate page */
	dnew = palloc0(HNSW_DUPLICATE_TUPLE_SIZE);
	dnew->type = HNSW_DUPLICATE_TUPLE;
	dnew->ntids = 1;
	dnew->heaptids[0] = *heaptid;
	for (int t = 1; t < HNSW_DUPLICATE_TIDS; t++)
		ItemPointerSetInvalid(&dnew->heaptids[t]);
	dnew->next = etup->duptid;

	HnswReadMeta(index, &meta);
	dbuf = InvalidBuffer;
	if (meta.dupPage != InvalidBlockNumber)
	{
		dbuf = ReadBuffer(index, meta.dupPage);
		LockBuffer(dbuf, BUFFER_LOCK_EXCLUSIVE);
		if (!PageIsNew(BufferGetPage(dbuf)))
			HnswCheckPage(index, BufferGetPage(dbuf), meta.dupPage);
		if (PageIsNew(BufferGetPage(dbuf)) ||
			!(HnswPageGetOpaque(BufferGetPage(dbuf))->flags & HNSW_PAGE_DUPLICATES) ||
			PageGetFreeSpace(BufferGetPage(dbuf)) < HNSW_DUPLICATE_TUPLE_SIZE)
		{
			UnlockReleaseBuffer(dbuf);
			dbuf = InvalidBuffer;
		}
	}
	state = GenericXLogStart(index);
	if (dbuf == InvalidBuffer)
	{
		dbuf = HnswNewBuffer(index);
		dpage = register_new_page(state, dbuf);
		HnswPageGetOpaque(dpage)->flags |= HNSW_PAGE_DUPLICATES;
		newpage = true;
	}
	else
		dpage = GenericXLogRegisterBuffer(state, dbuf, 0);
	doff = OffsetNumberNext(PageGetMaxOffsetNumber(dpage));
	if (PageAddItem(dpage, (Item) dnew, HNSW_DUPLICATE_TUPLE_SIZE, doff,
					false, false) != doff)
		elog(ERROR, "failed to add duplicate tuple to index \"%s\"",
			 RelationGetRelationName(index));
	etup = HnswGetElement(index, GenericXLogRegisterBuffer(state, buf, 0),
						  blkno, offno, pg->g.vecsize);
	ItemPointerSet(&etup->duptid, BufferGetBlockNumber(dbuf), doff);
	GenericXLogFinish(state);
	if (newpage)
		HnswSetDuplicatePage(index, BufferGetBlockNumber(dbuf));
	UnlockReleaseBuffer(dbuf);
	UnlockReleaseBuffer(buf);
	pfree(dnew);
	return true;
}

/*
 * begin_insert: take HNSW_UPDATE_LOCK as hnswpage.h, rule 2, says, in the
 * mode the element's level asks for, and read the entry point under it.
 */
bool
HnswPageBeginInsert(HnswGraph *g, int level, HnswRef *entry, int *entryLevel)
{
	HnswPageGraph *pg = (HnswPageGraph *) g;
	HnswMetaPageData *meta = &pg->insertMeta;

	for (;;)
	{
		HnswReadMeta(pg->index, meta);
		pg->insertLock = (level > meta->entryLevel) ? ExclusiveLock : ShareLock;
		LockPage(pg->index, HNSW_UPDATE_LOCK, pg->insertLock);
		/* the top may have risen while we waited */
		HnswReadMeta(pg->index, meta);
		if (pg->insertLock == ExclusiveLock || level <= meta->entryLevel)
			break;
		UnlockPage(pg->index, HNSW_UPDATE_LOCK, pg->insertLock);
	}
	*entry = meta->entryLevel >= 0 ?
		HnswRefFromTid(meta->entryBlkno, meta->entryOffno) : HNSW_INVALID_REF;
	*entryLevel = meta->entryLevel;
	return true;
}

bool
HnswPageAddHeapTid(HnswGraph *g, const HnswCandidate *e, const float *vec,
				 ItemPointer heaptid)
{
	return add_heaptid((HnswPageGraph *) g, e, vec, heaptid);
}

bool
HnswPageAddElement(HnswGraph *g, const float *vec, int level,
				 ItemPointer heaptid, const HnswNeighborhood *nb,
				 HnswCandidate *self)
{
	HnswPageGraph *pg = (HnswPageGraph *) g;

	write_element(pg, vec, level, heaptid, nb, &pg->insertMeta, self);
	return true;
}

void
HnswPageEndInsert(HnswGraph *g)
{
	HnswPageGraph *pg = (HnswPageGraph *) g;

	UnlockPage(pg->index, HNSW_UPDATE_LOCK, pg->insertLock);
}
