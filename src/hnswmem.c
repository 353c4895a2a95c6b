/*-------------------------------------------------------------------------
 *
 * hnswmem.c
 *	  The HNSW graph in backend memory, as CREATE INDEX builds it, and the
 *	  one pass that writes it to pages.
 *
 * Elements are carved out of large chunks (no per-element palloc header),
 * so HnswMemUsed() is an honest measure to hold against
 * maintenance_work_mem.  An element is named by its insertion number; its
 * neighbour lists are slots of element numbers laid out as in a neighbour
 * tuple (see hnsw.h), each layer's list ended by HNSW_MEM_NONE.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/memutils.h"

#include "hnsw.h"

#define HNSW_MEM_NONE		PG_UINT32_MAX
#define HNSW_MEM_CHUNK		(1024 * 1024)

typedef struct HnswMemElement
{
	uint32	   *slots;			/* (level + 2) * m neighbour numbers */
	ItemPointer moretids;		/* heap TIDs past HNSW_HEAPTIDS, or NULL */
	uint32		nmore;
	uint32		maxmore;
	uint8		level;
	uint8		ntids;
	ItemPointerData heaptids[HNSW_HEAPTIDS];
	float		vec[FLEXIBLE_ARRAY_MEMBER];
} HnswMemElement;

struct HnswMemGraph
{
	HnswGraph	g;				/* must be first */
	MemoryContext cxt;			/* everything below lives here */
	HnswMemElement **elems;
	int64		nelems;
	int64		maxelems;
	char	   *chunk;			/* current chunk and what is left of it */
	Size		chunkFree;
	Size		used;			/* bytes of chunks and arrays */
	HnswRef		entry;
	int			entryLevel;
};

static inline HnswMemElement *
mem_element(HnswMemGraph *mg, HnswRef ref)
{
	Assert(ref < (HnswRef) mg->nelems);
	return mg->elems[ref];
}

/* Bump allocation from the current chunk */
static void *
mem_alloc(HnswMemGraph *mg, Size size)
{
	void	   *p;

	size = MAXALIGN(size);
	if (size > mg->chunkFree)
	{
		Size		chunkSize = Max(HNSW_MEM_CHUNK, size);

		mg->chunk = MemoryContextAlloc(mg->cxt, chunkSize);
		mg->chunkFree = chunkSize;
		mg->used += chunkSize;
	}
	p = mg->chunk;
	mg->chunk += size;
	mg->chunkFree -= size;
	return p;
}

/* HnswGraphOps ----------------------------------------------------------- */

/* Prefetch the first lines of a vector; the hardware streams the rest */
static inline void
prefetch_vector(const float *v, int dim)
{
	for (int off = 0; off < dim && off < 128; off += 16)
		__builtin_prefetch(v + off);
}

static void
mem_distances(HnswGraph *g, const float *q, HnswCandidate *c, int n)
{
	HnswMemGraph *mg = (HnswMemGraph *) g;

	if (n > 0)
		prefetch_vector(mem_element(mg, c[0].ref)->vec, g->dim);
	for (int i = 0; i < n; i++)
	{
		if (i + 1 < n)
			prefetch_vector(mem_element(mg, c[i + 1].ref)->vec, g->dim);
		c[i].loc = 0;
		c[i].deleted = false;
		c[i].dist = g->dist(q, mem_element(mg, c[i].ref)->vec, g->dim);
	}
}

static int
mem_neighbours(HnswGraph *g, const HnswCandidate *c, int layer, HnswRef *out)
{
	HnswMemElement *e = mem_element((HnswMemGraph *) g, c->ref);
	uint32	   *slots = e->slots + HnswLayerStart(g->m, layer);
	int			cap = HnswLayerCapacity(g->m, layer);
	int			n;

	Assert(layer <= e->level);
	for (n = 0; n < cap && slots[n] != HNSW_MEM_NONE; n++)
		out[n] = slots[n];
	return n;
}

static const float *
mem_vector(HnswGraph *g, const HnswCandidate *c)
{
	return mem_element((HnswMemGraph *) g, c->ref)->vec;
}

static bool
mem_add_link(HnswGraph *g, const HnswCandidate *e, int layer,
			 const HnswCandidate *q, bool force)
{
	HnswMemElement *el = mem_element((HnswMemGraph *) g, e->ref);
	uint32	   *slots = el->slots + HnswLayerStart(g->m, layer);
	int			cap = HnswLayerCapacity(g->m, layer);
	HnswRef		cur[2 * HNSW_MAX_M];
	HnswRef		out[2 * HNSW_MAX_M];
	int			ncur;
	int			n;

	cur[0] = HNSW_INVALID_REF;	/* quiets a false "uninitialized" */
	for (ncur = 0; ncur < cap && slots[ncur] != HNSW_MEM_NONE; ncur++)
		cur[ncur] = slots[ncur];
	n = HnswMergeLink(g, e, layer, cur, ncur, q, force, out);
	for (int i = 0; i < cap; i++)
		slots[i] = i < n ? (uint32) out[i] : HNSW_MEM_NONE;
	for (int i = 0; i < n; i++)
	{
		if (out[i] == q->ref)
			return true;
	}
	return false;
}

static const HnswGraphOps hnsw_mem_ops = {
	.distances = mem_distances,
	.neighbours = mem_neighbours,
	.vector = mem_vector,
	.add_link = mem_add_link,
};

/* The graph ------------------------------------------------------------- */

/* An empty in-memory graph for an index, in a context of its own */
HnswMemGraph *
HnswMemCreate(Relation index)
{
	const HnswIndexInfo *info = HnswGetIndexInfo(index);
	MemoryContext cxt;
	MemoryContext old;
	HnswMemGraph *mg;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "hnsw build graph",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	mg = palloc0(sizeof(HnswMemGraph));
	mg->cxt = cxt;
	HnswGraphInit(&mg->g, &hnsw_mem_ops, HnswMetricKernel(info->metric, true),
				  info->dimensions, info->m, info->efConstruction);
	mg->maxelems = 1024;
	mg->elems = palloc(sizeof(HnswMemElement *) * mg->maxelems);
	mg->entry = HNSW_INVALID_REF;
	mg->entryLevel = -1;
	MemoryContextSwitchTo(old);
	return mg;
}

/*
 * Add one vector (already prepared for the metric) with its heap TID
 * (paper Algorithm 1).  Scratch memory comes from the caller's context,
 * which the caller resets per tuple.
 */
void
HnswMemInsert(HnswMemGraph *mg, const float *vec, ItemPointer tid)
{
	HnswGraph  *g = &mg->g;
	HnswNeighbourhood nb;
	HnswMemElement *e;
	HnswCandidate self;
	int			level = HnswRandomLevel(g);
	int			nslots = (level + 2) * g->m;
	int			dup;

	HnswFindNeighbours(g, vec, level, mg->entry, mg->entryLevel, &nb);

	/* rows with the same vector share an element while it has room */
	/* rows with the same vector share one element (hnsw.h: duplicates) */
	dup = HnswFindDuplicate(g, vec, &nb);
	if (dup >= 0)
	{
		e = mem_element(mg, nb.layer0[dup].ref);
		if (e->ntids < HNSW_HEAPTIDS)
			e->heaptids[e->ntids++] = *tid;
		else
		{
			if (e->nmore == e->maxmore)
			{
				uint32		n = Max(e->maxmore * 2, HNSW_DUPLICATE_TIDS);

				e->moretids = e->moretids == NULL ?
					MemoryContextAlloc(mg->cxt, sizeof(ItemPointerData) * n) :
					repalloc(e->moretids, sizeof(ItemPointerData) * n);
				mg->used += sizeof(ItemPointerData) * (n - e->maxmore);
				e->maxmore = n;
			}
			e->moretids[e->nmore++] = *tid;
		}
		return;
	}

	if (mg->nelems == mg->maxelems)
	{
		mg->used += sizeof(HnswMemElement *) * mg->maxelems;
		mg->maxelems *= 2;
		mg->elems = repalloc_huge(mg->elems,
								  sizeof(HnswMemElement *) * mg->maxelems);
	}
	e = mem_alloc(mg, offsetof(HnswMemElement, vec) + sizeof(float) * g->dim);
	e->slots = mem_alloc(mg, sizeof(uint32) * nslots);
	e->moretids = NULL;
	e->nmore = 0;
	e->maxmore = 0;
	e->level = level;
	e->ntids = 1;
	e->heaptids[0] = *tid;
	memcpy(e->vec, vec, sizeof(float) * g->dim);
	for (int i = 0; i < nslots; i++)
		e->slots[i] = HNSW_MEM_NONE;
	for (int lc = 0; lc <= level; lc++)
	{
		uint32	   *slots = e->slots + HnswLayerStart(g->m, lc);

		for (int i = 0; i < nb.count[lc]; i++)
			slots[i] = (uint32) nb.lists[lc][i].ref;
	}
	self.ref = mg->nelems;
	self.loc = 0;
	self.dist = 0;
	self.deleted = false;
	mg->elems[mg->nelems++] = e;

	HnswLinkBack(g, &self, &nb);

	if (level > mg->entryLevel)
	{
		mg->entry = self.ref;
		mg->entryLevel = level;
	}
}

Size
HnswMemUsed(HnswMemGraph *mg)
{
	return mg->used;
}

int64
HnswMemCount(HnswMemGraph *mg)
{
	return mg->nelems;
}

/* Where an element's tuples go, decided before any page is written */
typedef struct HnswMemPlace
{
	ItemPointerData etid;
	ItemPointerData ntid;
	ItemPointerData dtid;		/* head of its duplicate chain, or invalid */
} HnswMemPlace;

#define HnswMemChainLength(e) \
	(((e)->nmore + HNSW_DUPLICATE_TIDS - 1) / HNSW_DUPLICATE_TIDS)

/*
 * Lay the elements out in insertion order, filling the last page and
 * adding pages at the end, the way inserts do (hnswpage.c): an element's
 * neighbour tuple goes on the same page when both fit.  Block 0 is the
 * metapage.  Duplicate chains follow on duplicate pages of their own; a
 * chain's tuples are consecutive, so tuple k's successor is the next
 * place.  Returns the last block used; *lastDup is the last duplicate
 * page, if any.
 */
static BlockNumber
mem_place(HnswMemGraph *mg, HnswMemPlace *place, BlockNumber *lastDup)
{
	Size		esize = HNSW_ELEMENT_TUPLE_SIZE(mg->g.dim) + sizeof(ItemIdData);
	BlockNumber blk = HNSW_METAPAGE_BLKNO + 1;
	OffsetNumber off = 0;
	Size		free = HNSW_PAGE_CAPACITY;

	for (int64 i = 0; i < mg->nelems; i++)
	{
		HnswMemElement *e = mg->elems[i];
		Size		nsize = HNSW_NEIGHBOR_TUPLE_SIZE(e->level, mg->g.m) +
			sizeof(ItemIdData);

		if (esize > free)
		{
			blk++;
			off = 0;
			free = HNSW_PAGE_CAPACITY;
		}
		ItemPointerSet(&place[i].etid, blk, ++off);
		free -= esize;
		if (nsize > free)
		{
			blk++;
			off = 0;
			free = HNSW_PAGE_CAPACITY;
		}
		ItemPointerSet(&place[i].ntid, blk, ++off);
		free -= nsize;
	}

	*lastDup = InvalidBlockNumber;
	free = 0;
	for (int64 i = 0; i < mg->nelems; i++)
	{
		ItemPointerSetInvalid(&place[i].dtid);
		for (uint32 k = 0; k < HnswMemChainLength(mg->elems[i]); k++)
		{
			if (HNSW_DUPLICATE_TUPLE_SIZE + sizeof(ItemIdData) > free)
			{
				blk++;
				off = 0;
				free = HNSW_PAGE_CAPACITY;
				*lastDup = blk;
			}
			if (k == 0)
				ItemPointerSet(&place[i].dtid, blk, off + 1);
			off++;
			free -= HNSW_DUPLICATE_TUPLE_SIZE + sizeof(ItemIdData);
		}
	}
	return blk;
}

/* The place of tuple k of element i's chain: they follow one another */
static void
chain_place(const HnswMemPlace *p, uint32 k, ItemPointer out)
{
	BlockNumber blk = ItemPointerGetBlockNumber(&p->dtid);
	int			off = ItemPointerGetOffsetNumber(&p->dtid) - 1;
	int			perPage = HNSW_PAGE_CAPACITY /
		(HNSW_DUPLICATE_TUPLE_SIZE + sizeof(ItemIdData));

	off += k;
	ItemPointerSet(out, blk + off / perPage, off % perPage + 1);
}

/* Add a tuple where mem_place said it goes, moving to a new page if so */
static void
mem_put(Relation index, Buffer *buf, ItemPointer where, Item tuple, Size size,
		uint16 pageFlags)
{
	BlockNumber blk = ItemPointerGetBlockNumber(where);

	if (*buf == InvalidBuffer || BufferGetBlockNumber(*buf) != blk)
	{
		if (*buf != InvalidBuffer)
		{
			MarkBufferDirty(*buf);
			UnlockReleaseBuffer(*buf);
		}
		*buf = HnswNewBuffer(index);
		if (BufferGetBlockNumber(*buf) != blk)
			elog(ERROR, "index \"%s\" grew unexpectedly during build: block %u, expected %u",
				 RelationGetRelationName(index), BufferGetBlockNumber(*buf), blk);
		HnswInitPage(BufferGetPage(*buf));
		HnswPageGetOpaque(BufferGetPage(*buf))->flags = pageFlags;
	}
	if (PageAddItem(BufferGetPage(*buf), tuple, size,
					ItemPointerGetOffsetNumber(where), false, false) !=
		ItemPointerGetOffsetNumber(where))
		elog(ERROR, "failed to add tuple to index \"%s\" block %u",
			 RelationGetRelationName(index), blk);
}

/*
 * Write the whole graph into an index that holds only its metapage, each
 * page once and without WAL (the caller logs the range afterwards), and
 * point the metapage at the entry point.  Returns the number of blocks.
 */
BlockNumber
HnswMemWritePages(HnswMemGraph *mg, Relation index)
{
	HnswGraph  *g = &mg->g;
	HnswMemPlace *place;
	HnswElementTuple etup;
	HnswNeighborTuple ntup;
	Size		esize = HNSW_ELEMENT_TUPLE_SIZE(g->dim);
	Buffer		buf = InvalidBuffer;
	BlockNumber last;
	BlockNumber lastDup;
	HnswDuplicateTuple dtup;
	Page		metapage;
	HnswMetaPage meta;

	place = palloc_extended(sizeof(HnswMemPlace) * Max(mg->nelems, 1),
							MCXT_ALLOC_HUGE);
	last = mem_place(mg, place, &lastDup);
	etup = palloc0(esize);
	ntup = palloc0(HNSW_NEIGHBOR_TUPLE_SIZE(g->maxLevel, g->m));

	for (int64 i = 0; i < mg->nelems; i++)
	{
		HnswMemElement *e = mg->elems[i];
		int			nslots = (e->level + 2) * g->m;
		Size		nsize = HNSW_NEIGHBOR_TUPLE_SIZE(e->level, g->m);

		CHECK_FOR_INTERRUPTS();

		memset(etup, 0, esize);
		etup->type = HNSW_ELEMENT_TUPLE;
		etup->level = e->level;
		etup->ntids = e->ntids;
		for (int t = 0; t < HNSW_HEAPTIDS; t++)
		{
			if (t < e->ntids)
				etup->heaptids[t] = e->heaptids[t];
			else
				ItemPointerSetInvalid(&etup->heaptids[t]);
		}
		etup->neighbortid = place[i].ntid;
		etup->duptid = place[i].dtid;
		memcpy(etup->vec, e->vec, sizeof(float) * g->dim);
		mem_put(index, &buf, &place[i].etid, (Item) etup, esize, 0);

		memset(ntup, 0, nsize);
		ntup->type = HNSW_NEIGHBOR_TUPLE;
		ntup->nslots = nslots;
		for (int s = 0; s < nslots; s++)
		{
			if (e->slots[s] == HNSW_MEM_NONE)
				ItemPointerSetInvalid(&ntup->slots[s]);
			else
				ntup->slots[s] = place[e->slots[s]].etid;
		}
		mem_put(index, &buf, &place[i].ntid, (Item) ntup, nsize, 0);
	}

	/* then the duplicate chains, in the order mem_place laid them out */
	dtup = palloc0(HNSW_DUPLICATE_TUPLE_SIZE);
	for (int64 i = 0; i < mg->nelems; i++)
	{
		HnswMemElement *e = mg->elems[i];
		uint32		len = HnswMemChainLength(e);

		for (uint32 k = 0; k < len; k++)
		{
			ItemPointerData where;
			uint32		first = k * HNSW_DUPLICATE_TIDS;

			memset(dtup, 0, HNSW_DUPLICATE_TUPLE_SIZE);
			dtup->type = HNSW_DUPLICATE_TUPLE;
			dtup->ntids = Min(e->nmore - first, HNSW_DUPLICATE_TIDS);
			for (int t = 0; t < HNSW_DUPLICATE_TIDS; t++)
			{
				if (t < dtup->ntids)
					dtup->heaptids[t] = e->moretids[first + t];
				else
					ItemPointerSetInvalid(&dtup->heaptids[t]);
			}
			if (k + 1 < len)
				chain_place(&place[i], k + 1, &dtup->next);
			else
				ItemPointerSetInvalid(&dtup->next);
			chain_place(&place[i], k, &where);
			mem_put(index, &buf, &where, (Item) dtup,
					HNSW_DUPLICATE_TUPLE_SIZE, HNSW_PAGE_DUPLICATES);
		}
	}
	pfree(dtup);
	if (buf != InvalidBuffer)
	{
		MarkBufferDirty(buf);
		UnlockReleaseBuffer(buf);
	}

	/* the metapage last: the graph is complete before it is reachable */
	buf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	metapage = BufferGetPage(buf);
	meta = HnswPageGetMeta(metapage);
	if (mg->entry != HNSW_INVALID_REF)
	{
		meta->entryBlkno = ItemPointerGetBlockNumber(&place[mg->entry].etid);
		meta->entryOffno = ItemPointerGetOffsetNumber(&place[mg->entry].etid);
		meta->entryLevel = mg->entryLevel;
		/* inserts must not append elements to a duplicate page */
		meta->insertPage = lastDup == InvalidBlockNumber ? last : InvalidBlockNumber;
		meta->dupPage = lastDup;
	}
	MarkBufferDirty(buf);
	UnlockReleaseBuffer(buf);

	pfree(place);
	pfree(etup);
	pfree(ntup);
	return mg->nelems > 0 ? last + 1 : HNSW_METAPAGE_BLKNO + 1;
}

/* Release all the graph's memory */
void
HnswMemFree(HnswMemGraph *mg)
{
	MemoryContextDelete(mg->cxt);
}
