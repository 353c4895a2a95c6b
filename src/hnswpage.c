/*-------------------------------------------------------------------------
 *
 * hnswpage.c
 *	  The page room's core.  The page room is the only part of the index
 *	  that knows pages: every buffer read and lock, every page write and
 *	  every WAL record is in its files, hnswpage*.c, with the tuple formats
 *	  and the lock protocol in hnswpage.h:
 *	  - hnswpage.c (this file): pages and the metapage, reading and
 *		checking tuples, the walks over every element and along a duplicate
 *		chain, every metapage change; and the scan's reads;
 *	  - hnswpagegraph.c: the graph over pages (HnswGraphOps for the
 *		algorithm), and an insert's page work;
 *	  - hnswpagebuild.c: the bulk writer of CREATE INDEX;
 *	  - hnswpagevacuum.c: vacuum's page operations;
 *	  - hnswpagecompactplan.c and hnswpagecompact.c: compaction, which
 *		gives pages back (planned, then carried out).
 *
 * Every change to an existing page is WAL-logged with GenericXLog; the
 * build logs its pages once, with log_newpage_range.
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

/* What the metapage changes (modify_meta's callbacks) are given */
typedef struct MetaArgs
{
	HnswRef		entry;
	int			level;
	BlockNumber blkno;
	BlockNumber from;
} MetaArgs;

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
void
HnswCheckPage(Relation index, Page page, BlockNumber blkno)
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
	HnswCheckPage(index, page, HNSW_METAPAGE_BLKNO);
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
 * maxDimensions is the most its element format allows.
 */
bool
HnswReadBuiltOptions(Relation index, int maxDimensions, int *dimensions,
					 int *m, int *efConstruction)
{
	HnswMetaPageData meta;

	if (RelationGetNumberOfBlocks(index) <= HNSW_METAPAGE_BLKNO)
		return false;
	HnswReadMeta(index, &meta);
	if (meta.dimensions < 1 || meta.dimensions > maxDimensions)
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
void
HnswTupleCorrupted(Relation index, BlockNumber blkno, OffsetNumber offno,
				const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INDEX_CORRUPTED),
			 errmsg("index \"%s\" has a damaged %s at block %u offset %u",
					RelationGetRelationName(index), what, blkno, offno)));
}

/* The item at an offset, if it is a used item lying wholly inside the page */
Item
HnswGetItem(Page page, OffsetNumber offno, Size minsize)
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
 * (with the index's vecsize) so that nothing reads past it.
 */
HnswElementTuple
HnswGetElement(Relation index, Page page, BlockNumber blkno,
			   OffsetNumber offno, Size vecsize)
{
	HnswElementTuple etup;

	HnswCheckPage(index, page, blkno);
	etup = (HnswElementTuple) HnswGetItem(page, offno,
									   HNSW_ELEMENT_TUPLE_SIZE(vecsize));
	if (etup == NULL || etup->type != HNSW_ELEMENT_TUPLE ||
		etup->level > HNSW_MAX_LEVEL || etup->ntids > HNSW_HEAPTIDS)
		HnswTupleCorrupted(index, blkno, offno, "element tuple");
	return etup;
}

/* The neighbor tuple at blkno/offno of a locked page, checked likewise */
HnswNeighborTuple
HnswGetNeighbors(Relation index, Page page, BlockNumber blkno,
				 OffsetNumber offno, int m)
{
	HnswNeighborTuple ntup;
	ItemId		itemid;

	HnswCheckPage(index, page, blkno);
	ntup = (HnswNeighborTuple) HnswGetItem(page, offno,
										offsetof(HnswNeighborTupleData, slots));
	if (ntup == NULL || ntup->type != HNSW_NEIGHBOR_TUPLE ||
		ntup->nslots % m != 0 || ntup->nslots < 2 * m)
		HnswTupleCorrupted(index, blkno, offno, "neighbor tuple");
	itemid = PageGetItemId(page, offno);
	if (ItemIdGetLength(itemid) <
		offsetof(HnswNeighborTupleData, slots) +
		sizeof(ItemPointerData) * ntup->nslots)
		HnswTupleCorrupted(index, blkno, offno, "neighbor tuple");
	return ntup;
}

/* The duplicate tuple at blkno/offno of a locked page, checked likewise */
HnswDuplicateTuple
HnswGetDuplicate(Relation index, Page page, BlockNumber blkno,
				 OffsetNumber offno)
{
	HnswDuplicateTuple dtup;

	HnswCheckPage(index, page, blkno);
	dtup = (HnswDuplicateTuple) HnswGetItem(page, offno, HNSW_DUPLICATE_TUPLE_SIZE);
	if (dtup == NULL || dtup->type != HNSW_DUPLICATE_TUPLE ||
		dtup->ntids > HNSW_DUPLICATE_TIDS)
		HnswTupleCorrupted(index, blkno, offno, "duplicate tuple");
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
			HnswTupleCorrupted(index, eblk, eoff, "duplicate chain");
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
	Size		vecsize = HnswGetIndexInfo(index)->vecsize;
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
			HnswCheckPage(index, page, blkno);
			for (OffsetNumber off = FirstOffsetNumber;
				 off <= PageGetMaxOffsetNumber(page) && !stop; off++)
			{
				HnswElementTuple etup = (HnswElementTuple) HnswGetItem(page, off, 1);

				if (etup == NULL || etup->type != HNSW_ELEMENT_TUPLE)
					continue;
				stop = fn(index, buf, off,
						  HnswGetElement(index, page, blkno, off, vecsize), arg);
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
void
HnswModifyMeta(Relation index, bool (*fn) (HnswMetaPage meta, void *arg),
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

	HnswModifyMeta(index, set_entry, &a);
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

	HnswModifyMeta(index, lower_hint, &a);
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

static bool
set_dup_page(HnswMetaPage meta, void *arg)
{
	MetaArgs   *a = arg;

	meta->dupPage = a->blkno;
	return true;
}

/* A new element above the current top becomes the entry point (rule 4) */
void
HnswRaiseEntryPoint(Relation index, HnswRef entry, int level)
{
	MetaArgs	a = {entry, level, InvalidBlockNumber, InvalidBlockNumber};

	HnswModifyMeta(index, raise_entry, &a);
}

/* New elements went to blkno, past the insert page: it becomes that */
void
HnswAdvanceInsertPage(Relation index, BlockNumber blkno)
{
	MetaArgs	a = {HNSW_INVALID_REF, -1, blkno, InvalidBlockNumber};

	HnswModifyMeta(index, advance_insert_page, &a);
}

/*
 * Inserts of a level found no free slot before block `to` from the hint
 * they started at (`from`): the next starts at `to` (InvalidBlockNumber:
 * none is left), unless vacuum lowered the hint meanwhile.
 */
void
HnswAdvanceFreeHint(Relation index, int level, BlockNumber from,
					BlockNumber to)
{
	MetaArgs	a = {HNSW_INVALID_REF, level, to, from};

	HnswModifyMeta(index, advance_hint, &a);
}

/* A new duplicate page: duplicate tuples go there from now on */
void
HnswSetDuplicatePage(Relation index, BlockNumber blkno)
{
	MetaArgs	a = {HNSW_INVALID_REF, 0, blkno, InvalidBlockNumber};

	HnswModifyMeta(index, set_dup_page, &a);
}


/*-------------------------------------------------------------------------
 * Scans
 *	  What an index scan reads from pages besides the graph itself: where
 *	  the search starts, the heap TIDs of each result (rechecked against
 *	  the page), and, for a query with no distance, a walk over every live
 *	  element.  hnswscan.c decides what to read; this file reads it.
 *
 *-------------------------------------------------------------------------
 */

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
