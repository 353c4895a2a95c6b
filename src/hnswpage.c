/*-------------------------------------------------------------------------
 *
 * hnswpage.c
 *	  The HNSW graph in buffer pages: reading and checking element and
 *	  neighbor tuples, the metapage, adding pages, and HnswGraphOps over
 *	  pages with the insert path that inserts (and a build that outgrew
 *	  memory) share.
 *
 * Every change to an existing page is WAL-logged with GenericXLog.  The
 * lock protocol these functions follow is written down in hnswpage.h.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "commands/vacuum.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "hnswpage.h"

/* How often a link into a concurrently changing list is recomputed */
#define HNSW_LINK_RETRIES	3

/* What the metapage changes (modify_meta's callbacks) are given */
typedef struct MetaArgs
{
	HnswRef		entry;
	int			level;
	BlockNumber blkno;
	BlockNumber from;
} MetaArgs;

static void modify_meta(Relation index,
						bool (*fn) (HnswMetaPage meta, void *arg), void *arg);
static bool raise_entry(HnswMetaPage meta, void *arg);

/* Initialize an empty data page */
void
HnswInitPage(Page page)
{
	HnswPageOpaque opaque;

	PageInit(page, BLCKSZ, sizeof(HnswPageOpaqueData));
	opaque = HnswPageGetOpaque(page);
	opaque->flags = 0;
	opaque->page_id = HNSW_PAGE_ID;
}

/* Fill a page with an empty metapage */
static void
init_metapage(Page page, int dimensions, int m, int efConstruction)
{
	HnswMetaPage meta;

	HnswInitPage(page);
	meta = HnswPageGetMeta(page);
	meta->magic = HNSW_MAGIC_NUMBER;
	meta->version = HNSW_FORMAT_VERSION;
	meta->dimensions = dimensions;
	meta->m = m;
	meta->efConstruction = efConstruction;
	meta->entryBlkno = InvalidBlockNumber;
	meta->entryOffno = InvalidOffsetNumber;
	meta->entryLevel = -1;
	meta->insertPage = InvalidBlockNumber;
	for (int l = 0; l <= HNSW_MAX_LEVEL; l++)
		meta->freeHint[l] = InvalidBlockNumber;
	meta->dupPage = InvalidBlockNumber;
	((PageHeader) page)->pd_lower =
		((char *) meta + sizeof(HnswMetaPageData)) - (char *) page;
}

/*
 * Create the metapage of an empty index in block 0 of a fork.  The init
 * fork's is WAL-logged here; the main fork's is logged with the rest of
 * the build.
 */
void
HnswWriteMetaPage(Relation index, ForkNumber fork, int dimensions, int m,
				  int efConstruction, bool logit)
{
	Buffer		buf;

	buf = ReadBufferExtended(index, fork, P_NEW, RBM_NORMAL, NULL);
	if (BufferGetBlockNumber(buf) != HNSW_METAPAGE_BLKNO)
		elog(ERROR, "index \"%s\" is not empty", RelationGetRelationName(index));
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	START_CRIT_SECTION();
	init_metapage(BufferGetPage(buf), dimensions, m, efConstruction);
	MarkBufferDirty(buf);
	if (logit)
		log_newpage_buffer(buf, true);
	END_CRIT_SECTION();
	UnlockReleaseBuffer(buf);
}

/*
 * Check that a page is ours, or fail naming it.  Only the header is read:
 * on the search path a look at the special space, at the far end of the
 * page, would cost a cache miss per element.  The header's special offset
 * is what keeps readers inside the page.
 */
static void
check_page(Relation index, Page page, BlockNumber blkno)
{
	if (PageIsNew(page) ||
		((PageHeader) page)->pd_special !=
		BLCKSZ - MAXALIGN(sizeof(HnswPageOpaqueData)))
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" contains unexpected page at block %u",
						RelationGetRelationName(index), blkno)));
}

/* Copy out the metapage, checking it */
void
HnswReadMeta(Relation index, HnswMetaPageData *meta)
{
	Buffer		buf;
	Page		page;
	HnswMetaPage m;

	buf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	check_page(index, page, HNSW_METAPAGE_BLKNO);
	m = HnswPageGetMeta(page);
	if (m->magic != HNSW_MAGIC_NUMBER)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" is not an hnsw index",
						RelationGetRelationName(index))));
	if (m->version != HNSW_FORMAT_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" has format version %u, expected %u",
						RelationGetRelationName(index), m->version,
						HNSW_FORMAT_VERSION),
				 errhint("REINDEX the index.")));
	*meta = *m;
	UnlockReleaseBuffer(buf);
}

/*
 * The dimensions, m and ef_construction a built index keeps in its
 * metapage; false for an index that has no metapage yet (being built).
 */
bool
HnswReadBuiltOptions(Relation index, int *dimensions, int *m,
					 int *efConstruction)
{
	HnswMetaPageData meta;

	if (RelationGetNumberOfBlocks(index) <= HNSW_METAPAGE_BLKNO)
		return false;
	HnswReadMeta(index, &meta);
	if (meta.dimensions < 1 || meta.dimensions > HNSW_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" has %u dimensions in its metapage",
						RelationGetRelationName(index), meta.dimensions),
				 errhint("REINDEX the index.")));
	*dimensions = meta.dimensions;
	*m = meta.m;
	*efConstruction = meta.efConstruction;
	return true;
}

/* Report a damaged tuple */
static void
tuple_corrupted(Relation index, BlockNumber blkno, OffsetNumber offno,
				const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INDEX_CORRUPTED),
			 errmsg("index \"%s\" has a damaged %s at block %u offset %u",
					RelationGetRelationName(index), what, blkno, offno)));
}

/* The item at an offset, if it is a used item lying wholly inside the page */
static Item
get_item(Page page, OffsetNumber offno, Size minsize)
{
	ItemId		itemid;

	if (offno < FirstOffsetNumber || offno > PageGetMaxOffsetNumber(page))
		return NULL;
	itemid = PageGetItemId(page, offno);
	if (!ItemIdIsNormal(itemid) || ItemIdGetLength(itemid) < minsize ||
		ItemIdGetOffset(itemid) < SizeOfPageHeaderData ||
		ItemIdGetOffset(itemid) + ItemIdGetLength(itemid) >
		((PageHeader) page)->pd_special)
		return NULL;
	return PageGetItem(page, itemid);
}

/*
 * The element tuple at blkno/offno of a locked page, checked to be one
 * (of the index's dimensions) so that nothing reads past it.
 */
HnswElementTuple
HnswGetElement(Relation index, Page page, BlockNumber blkno,
			   OffsetNumber offno, int dim)
{
	HnswElementTuple etup;

	check_page(index, page, blkno);
	etup = (HnswElementTuple) get_item(page, offno,
									   HNSW_ELEMENT_TUPLE_SIZE(dim));
	if (etup == NULL || etup->type != HNSW_ELEMENT_TUPLE ||
		etup->level > HNSW_MAX_LEVEL || etup->ntids > HNSW_HEAPTIDS)
		tuple_corrupted(index, blkno, offno, "element tuple");
	return etup;
}

/* The neighbor tuple at blkno/offno of a locked page, checked likewise */
HnswNeighborTuple
HnswGetNeighbors(Relation index, Page page, BlockNumber blkno,
				 OffsetNumber offno, int m)
{
	HnswNeighborTuple ntup;
	ItemId		itemid;

	check_page(index, page, blkno);
	ntup = (HnswNeighborTuple) get_item(page, offno,
										offsetof(HnswNeighborTupleData, slots));
	if (ntup == NULL || ntup->type != HNSW_NEIGHBOR_TUPLE ||
		ntup->nslots % m != 0 || ntup->nslots < 2 * m)
		tuple_corrupted(index, blkno, offno, "neighbor tuple");
	itemid = PageGetItemId(page, offno);
	if (ItemIdGetLength(itemid) <
		offsetof(HnswNeighborTupleData, slots) +
		sizeof(ItemPointerData) * ntup->nslots)
		tuple_corrupted(index, blkno, offno, "neighbor tuple");
	return ntup;
}

/* The duplicate tuple at blkno/offno of a locked page, checked likewise */
HnswDuplicateTuple
HnswGetDuplicate(Relation index, Page page, BlockNumber blkno,
				 OffsetNumber offno)
{
	HnswDuplicateTuple dtup;

	check_page(index, page, blkno);
	dtup = (HnswDuplicateTuple) get_item(page, offno, HNSW_DUPLICATE_TUPLE_SIZE);
	if (dtup == NULL || dtup->type != HNSW_DUPLICATE_TUPLE ||
		dtup->ntids > HNSW_DUPLICATE_TIDS)
		tuple_corrupted(index, blkno, offno, "duplicate tuple");
	return dtup;
}

/*
 * Walk the duplicate chain that starts at head, the chain of the element at
 * eblk/eoff, whose page the caller holds locked (hnswpage.h, rule 6), so the
 * chain cannot change under the walk.  Each tuple is handed to fn on its
 * page, locked in mode (BUFFER_LOCK_SHARE or BUFFER_LOCK_EXCLUSIVE; fn may
 * change an exclusively locked one through GenericXLog on buf); fn returns
 * true to stop.  Returns whether fn stopped the walk.
 *
 * Every chain walk goes through here, bounded by the number of duplicate
 * tuples the index has room for: a damaged chain that loops ends in an
 * error naming the element, never in a hang (a backend that holds a content
 * lock cannot even be cancelled).
 */
bool
HnswWalkChain(Relation index, BlockNumber eblk, OffsetNumber eoff,
			  ItemPointerData head, int mode, BufferAccessStrategy strategy,
			  HnswChainFn fn, void *arg)
{
	ItemPointerData next = head;
	BlockNumber nblocks;
	int64		maxsteps;
	int64		steps = 0;

	if (!ItemPointerIsValid(&next))
		return false;
	nblocks = RelationGetNumberOfBlocks(index);
	maxsteps = (int64) nblocks *
		(HNSW_PAGE_CAPACITY / (HNSW_DUPLICATE_TUPLE_SIZE + sizeof(ItemIdData)));
	while (ItemPointerIsValid(&next))
	{
		BlockNumber blkno = ItemPointerGetBlockNumber(&next);
		OffsetNumber offno = ItemPointerGetOffsetNumber(&next);
		HnswDuplicateTuple dtup;
		Buffer		buf;
		bool		stop;

		if (blkno == HNSW_METAPAGE_BLKNO || blkno >= nblocks ||
			++steps > maxsteps)
			tuple_corrupted(index, eblk, eoff, "duplicate chain");
		buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL,
								 strategy);
		LockBuffer(buf, mode);
		dtup = HnswGetDuplicate(index, BufferGetPage(buf), blkno, offno);
		next = dtup->next;
		stop = fn(index, buf, offno, dtup, arg);
		UnlockReleaseBuffer(buf);
		if (stop)
			return true;
	}
	return false;
}

/* Append n heap TIDs to a palloc'd array, growing it */
typedef struct TidArray
{
	ItemPointer *tids;
	int			n;
	int		   *max;
} TidArray;

static void
append_tids(TidArray *a, const ItemPointerData *add, int n)
{
	if (a->n + n > *a->max)
	{
		*a->max = Max(*a->max * 2, a->n + n);
		*a->tids = repalloc(*a->tids, sizeof(ItemPointerData) * *a->max);
	}
	memcpy(*a->tids + a->n, add, sizeof(ItemPointerData) * n);
	a->n += n;
}

static bool
collect_chain_tids(Relation index, Buffer buf, OffsetNumber offno,
				   HnswDuplicateTuple dtup, void *arg)
{
	append_tids((TidArray *) arg, dtup->heaptids, dtup->ntids);
	return false;
}

/*
 * All heap TIDs of an element at blkno/offno whose page the caller holds
 * locked: its own and those of its duplicate chain.  *tids is a palloc'd
 * array of *maxtids; returns the count.
 */
int
HnswCollectHeapTids(Relation index, BlockNumber blkno, OffsetNumber offno,
					HnswElementTuple etup, ItemPointer *tids, int *maxtids)
{
	TidArray	a = {tids, 0, maxtids};

	append_tids(&a, etup->heaptids, etup->ntids);
	HnswWalkChain(index, blkno, offno, etup->duptid, BUFFER_LOCK_SHARE, NULL,
				  collect_chain_tids, &a);
	return a.n;
}

/*
 * Hand every element tuple of blocks [from, to) to fn, a page at a time
 * under a share lock, or with HNSW_SCAN_EXCLUSIVE an exclusive one (fn may
 * then change the page through GenericXLog on buf); fn may walk the
 * element's chain (rule 6), and returns true to stop.  Returns the block
 * it stopped at, or InvalidBlockNumber.  Pages added just before a crash
 * and never written are passed over.  This is the one walk over every
 * element; with HNSW_SCAN_PAUSE it pauses between pages as vacuum's cost
 * settings ask (holding no lock then), which a caller holding a lock that
 * inserts need must not ask for.
 */
BlockNumber
HnswScanElements(Relation index, BlockNumber from, BlockNumber to,
				 BufferAccessStrategy strategy, int flags, HnswElementFn fn,
				 void *arg)
{
	int			dim = HnswGetIndexInfo(index)->dimensions;
	int			mode = (flags & HNSW_SCAN_EXCLUSIVE) ?
		BUFFER_LOCK_EXCLUSIVE : BUFFER_LOCK_SHARE;

	for (BlockNumber blkno = Max(from, HNSW_METAPAGE_BLKNO + 1); blkno < to; blkno++)
	{
		Buffer		buf;
		Page		page;
		bool		stop = false;

		if (flags & HNSW_SCAN_PAUSE)
			vacuum_delay_point();
		buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL,
								 strategy);
		LockBuffer(buf, mode);
		page = BufferGetPage(buf);
		if (!PageIsNew(page))
		{
			check_page(index, page, blkno);
			for (OffsetNumber off = FirstOffsetNumber;
				 off <= PageGetMaxOffsetNumber(page) && !stop; off++)
			{
				HnswElementTuple etup = (HnswElementTuple) get_item(page, off, 1);

				if (etup == NULL || etup->type != HNSW_ELEMENT_TUPLE)
					continue;
				stop = fn(index, buf, off,
						  HnswGetElement(index, page, blkno, off, dim), arg);
			}
		}
		UnlockReleaseBuffer(buf);
		if (stop)
			return blkno;
	}
	return InvalidBlockNumber;
}

/*
 * Copy block blkno of the index into copy (BLCKSZ bytes), read under a
 * share lock and not checked: for the verifier, which checks what it finds
 * and reports it, and must not fail before it has looked.
 */
void
HnswCopyPage(Relation index, BlockNumber blkno, BufferAccessStrategy strategy,
			 Page copy)
{
	Buffer		buf;

	buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL, strategy);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	memcpy(copy, BufferGetPage(buf), BLCKSZ);
	UnlockReleaseBuffer(buf);
}

/*
 * A new, exclusively locked page at the end of the index.  The caller
 * initializes it (in a GenericXLog copy, or directly during build).
 */
Buffer
HnswNewBuffer(Relation index)
{
	Buffer		buf;

	/* nobody else may extend at the same time; see hnswpage.h rule 5 */
	LockRelationForExtension(index, ExclusiveLock);
	buf = ReadBuffer(index, P_NEW);
	UnlockRelationForExtension(index, ExclusiveLock);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	return buf;
}

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
			tuple_corrupted(index, HnswRefBlock(from), HnswRefOffset(from),
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
								  g->dim);
			e->dist = HnswDistance(g, q, etup->vec, bound);
			if (vecs)
			{
				float	   *v = palloc(sizeof(float) * g->dim);

				memcpy(v, etup->vec, sizeof(float) * g->dim);
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
	float	   *v = palloc(sizeof(float) * g->dim);
	Buffer		buf;

	buf = read_buffer((HnswPageGraph *) g, blkno, c->ref);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	memcpy(v, HnswGetElement(index, BufferGetPage(buf), blkno,
							 HnswRefOffset(c->ref), g->dim)->vec,
		   sizeof(float) * g->dim);
	UnlockReleaseBuffer(buf);
	return v;
}

/* Overwrite one layer's list in a neighbor tuple of a registered page */
static void
set_layer(HnswGraph *g, HnswNeighborTuple ntup, int layer, const HnswRef *refs,
		  int n)
{
	int			start = HnswLayerStart(g->m, layer);
	int			cap = HnswLayerCapacity(g->m, layer);

	for (int i = 0; i < cap; i++)
	{
		if (i < n)
			ItemPointerSet(&ntup->slots[start + i], HnswRefBlock(refs[i]),
						   HnswRefOffset(refs[i]));
		else
			ItemPointerSetInvalid(&ntup->slots[start + i]);
	}
}

/* Is ref among the first n of refs? */
static bool
refs_contain(const HnswRef *refs, int n, HnswRef ref)
{
	for (int i = 0; i < n; i++)
	{
		if (refs[i] == ref)
			return true;
	}
	return false;
}

/* Write one layer's list into the neighbor tuple of a locked buffer */
static void
write_layer(HnswGraph *g, Buffer buf, OffsetNumber offno, int layer,
			const HnswRef *refs, int n)
{
	Relation	index = graph_index(g);
	GenericXLogState *state = GenericXLogStart(index);
	Page		page = GenericXLogRegisterBuffer(state, buf, 0);

	set_layer(g, HnswGetNeighbors(index, page, BufferGetBlockNumber(buf),
								  offno, g->m),
			  layer, refs, n);
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
						  HnswRefOffset(ref), g->dim);
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
			tuple_corrupted(index, blkno, offno, "neighbor tuple");
		nnow = layer_refs(g, ntup, layer, now);

		if (refs_contain(now, nnow, q->ref))
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
			bool		kept = refs_contain(out, nout, q->ref);

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
		tuple_corrupted(index, blkno, offno, "neighbor tuple");
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
	MetaArgs	a = {ref, level, InvalidBlockNumber, InvalidBlockNumber};

	LockPage(pg->index, HNSW_UPDATE_LOCK, ExclusiveLock);
	modify_meta(pg->index, raise_entry, &a);
	if (entry)
	{
		HnswReadMeta(pg->index, &meta);
		*entry = meta.entryLevel < 0 ? HNSW_INVALID_REF :
			HnswRefFromTid(meta.entryBlkno, meta.entryOffno);
		*entryLevel = meta.entryLevel;
	}
	UnlockPage(pg->index, HNSW_UPDATE_LOCK, ExclusiveLock);
}

/*
 * The highest level an element of an index with this m may have: its
 * neighbor tuple must fit an empty page.  The in-memory build caps its
 * levels so too, since its graph ends up on pages.
 */
int
HnswPageMaxLevel(int m)
{
	int			level = HNSW_MAX_LEVEL;

	while (level > 0 &&
		   HNSW_NEIGHBOR_TUPLE_SIZE(level, m) + sizeof(ItemIdData) >
		   HNSW_PAGE_CAPACITY)
		level--;
	return level;
}

/* Change the metapage under its exclusive lock; fn says if it changed */
static void
modify_meta(Relation index, bool (*fn) (HnswMetaPage meta, void *arg),
			void *arg)
{
	GenericXLogState *state;
	Buffer		buf;

	buf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	state = GenericXLogStart(index);
	if (fn(HnswPageGetMeta(GenericXLogRegisterBuffer(state, buf, 0)), arg))
		GenericXLogFinish(state);
	else
		GenericXLogAbort(state);
	UnlockReleaseBuffer(buf);
}

static bool
set_entry(HnswMetaPage meta, void *arg)
{
	MetaArgs   *a = arg;

	meta->entryBlkno = a->entry == HNSW_INVALID_REF ?
		InvalidBlockNumber : HnswRefBlock(a->entry);
	meta->entryOffno = a->entry == HNSW_INVALID_REF ?
		InvalidOffsetNumber : HnswRefOffset(a->entry);
	meta->entryLevel = a->entry == HNSW_INVALID_REF ? -1 : a->level;
	return true;
}

/* A new element above the current top becomes the entry point */
static bool
raise_entry(HnswMetaPage meta, void *arg)
{
	MetaArgs   *a = arg;

	if (a->level <= meta->entryLevel)
		return false;
	return set_entry(meta, arg);
}

/* New elements went to a page past the insert page: it becomes that */
static bool
advance_insert_page(HnswMetaPage meta, void *arg)
{
	MetaArgs   *a = arg;

	if (meta->insertPage != InvalidBlockNumber && a->blkno <= meta->insertPage)
		return false;
	meta->insertPage = a->blkno;
	return true;
}

/*
 * Make an element the entry point whatever the current one (vacuum, when
 * the entry point was deleted; HNSW_INVALID_REF for an empty graph).  The
 * caller holds HNSW_UPDATE_LOCK exclusively.
 */
void
HnswSetEntryPoint(Relation index, HnswRef entry, int level)
{
	MetaArgs	a = {entry, level, InvalidBlockNumber, InvalidBlockNumber};

	modify_meta(index, set_entry, &a);
}

static bool
lower_hint(HnswMetaPage meta, void *arg)
{
	MetaArgs   *a = arg;

	if (meta->freeHint[a->level] != InvalidBlockNumber &&
		meta->freeHint[a->level] <= a->blkno)
		return false;
	meta->freeHint[a->level] = a->blkno;
	return true;
}

/* Vacuum freed a slot of a level at blkno: inserts should look there */
void
HnswNoteFreeSlot(Relation index, BlockNumber blkno, int level)
{
	MetaArgs	a = {HNSW_INVALID_REF, level, blkno, InvalidBlockNumber};

	modify_meta(index, lower_hint, &a);
}

static bool
advance_hint(HnswMetaPage meta, void *arg)
{
	MetaArgs   *a = arg;

	/* only move a hint on from where we started: vacuum may have lowered it */
	if (meta->freeHint[a->level] != a->from)
		return false;
	meta->freeHint[a->level] = a->blkno;
	return true;
}

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
		tuple_corrupted(index, blkno, off, "element tuple");
	if (nblk != blkno)
	{
		nbuf = ReadBuffer(index, nblk);
		LockBuffer(nbuf, BUFFER_LOCK_EXCLUSIVE);
	}
	state = GenericXLogStart(index);
	epage = GenericXLogRegisterBuffer(state, buf, 0);
	npage = nbuf == InvalidBuffer ? epage :
		GenericXLogRegisterBuffer(state, nbuf, 0);
	old = HnswGetElement(index, epage, blkno, off, pg->g.dim);
	if (HnswGetNeighbors(index, npage, nblk, noff, pg->g.m)->nslots !=
		ca->ntup->nslots)
		tuple_corrupted(index, nblk, noff, "neighbor tuple");
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
	MetaArgs	a;

	if (hint == InvalidBlockNumber)
		return false;
	ca.nblocks = RelationGetNumberOfBlocks(index);
	end = Min(ca.nblocks, hint + HNSW_FREE_SCAN_PAGES);
	at = HnswScanElements(index, hint, end, NULL, HNSW_SCAN_EXCLUSIVE,
						  claim_slot, &ca);

	/* where the next insert of this level should start */
	a.level = level;
	a.from = hint;
	if (at != InvalidBlockNumber)
		a.blkno = at;
	else
		a.blkno = end >= ca.nblocks ? InvalidBlockNumber : end;
	if (a.blkno != hint)
		modify_meta(index, advance_hint, &a);
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
	Size		esize = HNSW_ELEMENT_TUPLE_SIZE(g->dim);
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
	memcpy(etup->vec, vec, sizeof(float) * g->dim);
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
		set_layer(g, ntup, lc, refs, n);
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
	 * of their own, most of which then stayed nearly empty (CREATE INDEX
	 * CONCURRENTLY beside four writers made 40% more pages than a fresh
	 * build).  A page found full is retried as long as the metapage has
	 * moved on to another.
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
			check_page(index, BufferGetPage(ebuf), tried);
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
	{
		MetaArgs	a = {HNSW_INVALID_REF, -1, newest, InvalidBlockNumber};

		modify_meta(index, advance_insert_page, &a);
	}
	pfree(etup);
	pfree(ntup);
}

static bool
set_dup_page(HnswMetaPage meta, void *arg)
{
	MetaArgs   *a = arg;

	meta->dupPage = a->blkno;
	return true;
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
	etup = HnswGetElement(index, BufferGetPage(buf), blkno, offno, pg->g.dim);
	if ((etup->flags & (HNSW_ELEMENT_DELETED | HNSW_ELEMENT_FREE)) ||
		memcmp(etup->vec, vec, sizeof(float) * pg->g.dim) != 0)
	{
		UnlockReleaseBuffer(buf);
		return false;
	}
	if (etup->ntids < HNSW_HEAPTIDS)
	{
		state = GenericXLogStart(index);
		etup = HnswGetElement(index, GenericXLogRegisterBuffer(state, buf, 0),
							  blkno, offno, pg->g.dim);
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
			check_page(index, BufferGetPage(dbuf), meta.dupPage);
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
						  blkno, offno, pg->g.dim);
	ItemPointerSet(&etup->duptid, BufferGetBlockNumber(dbuf), doff);
	GenericXLogFinish(state);
	if (newpage)
	{
		MetaArgs	a = {HNSW_INVALID_REF, 0, BufferGetBlockNumber(dbuf),
		InvalidBlockNumber};

		modify_meta(index, set_dup_page, &a);
	}
	UnlockReleaseBuffer(dbuf);
	UnlockReleaseBuffer(buf);
	pfree(dnew);
	return true;
}

/*
 * begin_insert: take HNSW_UPDATE_LOCK as hnswpage.h, rule 2, says, in the
 * mode the element's level asks for, and read the entry point under it.
 */
static bool
page_begin_insert(HnswGraph *g, int level, HnswRef *entry, int *entryLevel)
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

static bool
page_add_heaptid(HnswGraph *g, const HnswCandidate *e, const float *vec,
				 ItemPointer heaptid)
{
	return add_heaptid((HnswPageGraph *) g, e, vec, heaptid);
}

static bool
page_add_element(HnswGraph *g, const float *vec, int level,
				 ItemPointer heaptid, const HnswNeighborhood *nb,
				 HnswCandidate *self)
{
	HnswPageGraph *pg = (HnswPageGraph *) g;

	write_element(pg, vec, level, heaptid, nb, &pg->insertMeta, self);
	return true;
}

static void
page_end_insert(HnswGraph *g)
{
	HnswPageGraph *pg = (HnswPageGraph *) g;

	UnlockPage(pg->index, HNSW_UPDATE_LOCK, pg->insertLock);
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
	.begin_insert = page_begin_insert,
	.add_heaptid = page_add_heaptid,
	.add_element = page_add_element,
	.end_insert = page_end_insert,
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
				  info->dimensions, info->m, info->efConstruction,
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
