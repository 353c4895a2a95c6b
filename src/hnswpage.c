/*-------------------------------------------------------------------------
 *
 * hnswpage.c
 *	  The page room: the only file that knows pages.  Tuple formats and the
 *	  lock protocol are in hnswpage.h; every buffer read and lock, every page
 *	  write and every WAL record of the index is here, in sections:
 *	  - pages and the metapage, reading and checking tuples, the walks over
 *		every element and along a duplicate chain, every metapage change;
 *	  - the graph over pages (HnswGraphOps for the algorithm);
 *	  - inserts;
 *	  - the bulk writer of CREATE INDEX;
 *	  - the scan's reads;
 *	  - vacuum's page operations;
 *	  - compaction, which gives pages back.
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

/*-------------------------------------------------------------------------
 * The graph over pages
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
			  const HnswCandidate *q, int flags)
{
	bool		force = (flags & HNSW_LINK_FORCE) != 0;
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
			HnswKeepReach(g, e, cur, ncur, q, (flags & HNSW_LINK_NEW) != 0,
						  out, nout);
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

/*-------------------------------------------------------------------------
 * The bulk writer
 *	  CREATE INDEX hands it the graph it built in memory (hnswmem.c), element by element, and it lays the tuples out,
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

/*-------------------------------------------------------------------------
 * Vacuum
 *	  What vacuum's passes do to pages (hnswvacuum.c decides, this does):
 *	  dropping dead heap TIDs and flagging emptied elements DELETED, a page
 *	  per record; the live elements of a page, for the repair; the barrier
 *	  on the update lock; flagging deleted elements FREE with inserts
 *	  excluded a batch of pages at a time; counting the heap TIDs for a
 *	  cleanup-only vacuum.
 *
 *-------------------------------------------------------------------------
 */

/* Pages HnswPageFreeElements pins before it takes the update lock for them */
#define HNSW_FREE_BATCH		32

/* Is this item an element tuple?  (Checked fully by HnswGetElement.) */
static bool
is_element(Page page, OffsetNumber off)
{
	uint8	   *type = (uint8 *) HnswGetItem(page, off, 1);

	return type != NULL && *type == HNSW_ELEMENT_TUPLE;
}

/* What a page of pass 1 needs: the dead-TID callback and the count */
typedef struct DeadTids
{
	IndexBulkDeleteCallback dead;
	void	   *deadState;
	double	   *removed;
	int64		left;			/* heap TIDs kept in a chain */
} DeadTids;

/*
 * Drop the heap TIDs the callback names dead from the first ntids of tids,
 * keeping the rest packed at the front and clearing the slots freed; sets
 * *changed if any went.  Returns how many are left.
 */
static int
drop_dead_tids(DeadTids *d, ItemPointerData *tids, int ntids, bool *changed)
{
	int			kept = 0;

	for (int t = 0; t < ntids; t++)
	{
		if (d->dead(&tids[t], d->deadState))
		{
			(*d->removed)++;
			*changed = true;
		}
		else
			tids[kept++] = tids[t];
	}
	for (int t = kept; t < ntids; t++)
		ItemPointerSetInvalid(&tids[t]);
	return kept;
}

/* One tuple of a duplicate chain: drop its dead heap TIDs */
static bool
clean_chain_tuple(Relation index, Buffer buf, OffsetNumber offno,
				  HnswDuplicateTuple dtup, void *arg)
{
	DeadTids   *d = arg;
	GenericXLogState *state = GenericXLogStart(index);
	bool		changed = false;

	dtup = HnswGetDuplicate(index, GenericXLogRegisterBuffer(state, buf, 0),
							BufferGetBlockNumber(buf), offno);
	dtup->ntids = drop_dead_tids(d, dtup->heaptids, dtup->ntids, &changed);
	d->left += dtup->ntids;
	if (changed)
		GenericXLogFinish(state);
	else
		GenericXLogAbort(state);
	return false;
}

/*
 * Pass 1 on one page: every element not FREE drops the heap TIDs `dead` names,
 * its chain's too (rule 6 order), adding them to *removed; one left with
 * none is flagged DELETED.  fn hears of each element: its level, the heap
 * TIDs it keeps, and whether it is deleted (newly or by a vacuum that did
 * not finish).  One record for the page, and one per chain tuple changed.
 */
void
HnswPageRemoveHeapTids(Relation index, BlockNumber blkno,
					   BufferAccessStrategy strategy,
					   IndexBulkDeleteCallback dead, void *deadState,
					   double *removed, HnswRemovedFn fn, void *arg)
{
	Size		vecsize = HnswGetIndexInfo(index)->vecsize;
	Buffer		buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno,
										 RBM_NORMAL, strategy);
	GenericXLogState *state;
	Page		page;
	OffsetNumber maxoff;
	bool		changed = false;
	DeadTids	d = {dead, deadState, removed, 0};

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	state = GenericXLogStart(index);
	page = GenericXLogRegisterBuffer(state, buf, 0);
	maxoff = PageGetMaxOffsetNumber(page);
	for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
	{
		HnswElementTuple etup;
		int64		kept;
		HnswRef		ref = HnswRefFromTid(blkno, off);

		if (!is_element(page, off))
			continue;
		etup = HnswGetElement(index, page, blkno, off, vecsize);
		if (etup->flags & HNSW_ELEMENT_FREE)
			continue;
		if (etup->flags & HNSW_ELEMENT_DELETED)
		{
			fn(ref, etup->level, 0, HNSW_REMOVED_WAS_DELETED, arg);
			continue;
		}
		kept = drop_dead_tids(&d, etup->heaptids, etup->ntids, &changed);
		etup->ntids = kept;
		if (ItemPointerIsValid(&etup->duptid))
		{
			d.left = 0;
			HnswWalkChain(index, blkno, off, etup->duptid,
						  BUFFER_LOCK_EXCLUSIVE, strategy,
						  clean_chain_tuple, &d);
			kept += d.left;
		}
		if (kept == 0)
		{
			/*
			 * The flag must reach the page even when none of the element's
			 * own heap TIDs went (its chain emptied): an insert of the same
			 * vector that found it unflagged would add its row to an element
			 * that pass 4 then frees.
			 */
			etup->flags |= HNSW_ELEMENT_DELETED;
			changed = true;
			fn(ref, etup->level, 0, HNSW_REMOVED_DELETED, arg);
		}
		else
			fn(ref, etup->level, kept, HNSW_REMOVED_LIVE, arg);
	}
	if (changed)
		GenericXLogFinish(state);
	else
		GenericXLogAbort(state);
	UnlockReleaseBuffer(buf);
}

/*
 * The live elements of one page, for the repair: each one's ref, the
 * location of its lists and its level into elems and levels (room for
 * MaxOffsetNumber).  Returns how many.
 */
int
HnswPageLiveElements(Relation index, BlockNumber blkno,
					 BufferAccessStrategy strategy, HnswCandidate *elems,
					 int *levels)
{
	Size		vecsize = HnswGetIndexInfo(index)->vecsize;
	Buffer		buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno,
										 RBM_NORMAL, strategy);
	Page		page;
	int			n = 0;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	for (OffsetNumber off = FirstOffsetNumber;
		 off <= PageGetMaxOffsetNumber(page); off++)
	{
		HnswElementTuple etup;

		if (!is_element(page, off))
			continue;
		etup = HnswGetElement(index, page, blkno, off, vecsize);
		if (etup->flags & (HNSW_ELEMENT_DELETED | HNSW_ELEMENT_FREE))
			continue;
		elems[n].ref = HnswRefFromTid(blkno, off);
		elems[n].neighborsAt = HnswRefFromItemPointer(&etup->neighbortid);
		elems[n].dist = 0;
		elems[n].deleted = false;
		levels[n++] = etup->level;
	}
	UnlockReleaseBuffer(buf);
	return n;
}

/* The live element of the highest level, among those HnswScanElements shows */
typedef struct LiveTop
{
	HnswRef		ref;
	int			level;
} LiveTop;

static bool
note_live_top(Relation index, Buffer buf, OffsetNumber offno,
			  HnswElementTuple etup, void *arg)
{
	LiveTop    *top = arg;

	if (!(etup->flags & (HNSW_ELEMENT_DELETED | HNSW_ELEMENT_FREE)) &&
		(int) etup->level > top->level)
	{
		top->ref = HnswRefFromTid(BufferGetBlockNumber(buf), offno);
		top->level = etup->level;
	}
	return false;
}

/*
 * The live element of the highest level in blocks before nblocks, or
 * HNSW_INVALID_REF (and *level -1).  With pause, vacuum's cost pauses come
 * between pages; a caller holding the update lock must not ask for them.
 */
HnswRef
HnswPageTopLiveElement(Relation index, BlockNumber nblocks,
					   BufferAccessStrategy strategy, bool pause, int *level)
{
	LiveTop		top = {HNSW_INVALID_REF, -1};

	HnswScanElements(index, HNSW_METAPAGE_BLKNO + 1, nblocks, strategy,
					 pause ? HNSW_SCAN_PAUSE : 0, note_live_top, &top);
	*level = top.level;
	return top.ref;
}

/*
 * The barrier (rule 2): take the update lock exclusively, which waits out
 * every insert that began before; HnswPageEndBarrier lets them in again.
 */
void
HnswPageBeginBarrier(Relation index)
{
	LockPage(index, HNSW_UPDATE_LOCK, ExclusiveLock);
}

void
HnswPageEndBarrier(Relation index)
{
	UnlockPage(index, HNSW_UPDATE_LOCK, ExclusiveLock);
}

/*
 * Pass 4: flag the deleted elements refs[0..n) (ascending) FREE and offer
 * their slots through the metapage's hints.  Inserts are excluded while
 * elements are flagged, a batch of pages at a time: the pages are read
 * (and pinned) first, and vacuum's cost pauses come between batches, so
 * that inserts never wait out a read or a sleep of vacuum's (rule 2).
 * Returns how many were freed.
 */
int64
HnswPageFreeElements(Relation index, const HnswRef *refs, int64 n,
					 BufferAccessStrategy strategy)
{
	Size		vecsize = HnswGetIndexInfo(index)->vecsize;
	int64		nfreed = 0;
	int64		i = 0;
	BlockNumber lowest[HNSW_MAX_LEVEL + 1];

	for (int l = 0; l <= HNSW_MAX_LEVEL; l++)
		lowest[l] = InvalidBlockNumber;

	while (i < n)
	{
		Buffer		bufs[HNSW_FREE_BATCH];
		int			nbufs = 0;
		int64		j = i;

		vacuum_delay_point();
		HnswWaitPoint("vacuum_free_batch");
		while (j < n && nbufs < HNSW_FREE_BATCH)
		{
			BlockNumber blkno = HnswRefBlock(refs[j]);

			bufs[nbufs++] = ReadBufferExtended(index, MAIN_FORKNUM, blkno,
											   RBM_NORMAL, strategy);
			while (j < n && HnswRefBlock(refs[j]) == blkno)
				j++;
		}

		LockPage(index, HNSW_UPDATE_LOCK, ExclusiveLock);
		for (int b = 0; b < nbufs; b++)
		{
			BlockNumber blkno = BufferGetBlockNumber(bufs[b]);
			GenericXLogState *state;
			Page		page;

			LockBuffer(bufs[b], BUFFER_LOCK_EXCLUSIVE);
			state = GenericXLogStart(index);
			page = GenericXLogRegisterBuffer(state, bufs[b], 0);
			for (; i < j && HnswRefBlock(refs[i]) == blkno; i++)
			{
				HnswElementTuple etup = HnswGetElement(index, page, blkno,
													   HnswRefOffset(refs[i]),
													   vecsize);

				/*
				 * Pass 1 flagged it on the page, and inserts add rows only
				 * to unflagged elements, so it is still empty; a slot that
				 * is not so is never handed out.
				 */
				if (!(etup->flags & HNSW_ELEMENT_DELETED) || etup->ntids > 0)
				{
					elog(WARNING, "hnsw: element at block %u offset %u of index \"%s\" is not empty: not freed",
						 blkno, HnswRefOffset(refs[i]),
						 RelationGetRelationName(index));
					continue;
				}
				etup->flags = HNSW_ELEMENT_FREE;
				if (lowest[etup->level] == InvalidBlockNumber)
					lowest[etup->level] = blkno;
				nfreed++;
			}
			GenericXLogFinish(state);
			UnlockReleaseBuffer(bufs[b]);
		}
		UnlockPage(index, HNSW_UPDATE_LOCK, ExclusiveLock);
	}
	for (int l = 0; l <= HNSW_MAX_LEVEL; l++)
	{
		if (lowest[l] != InvalidBlockNumber)
			HnswNoteFreeSlot(index, lowest[l], l);
	}
	return nfreed;
}

/*-------------------------------------------------------------------------
 * Compaction
 *	  VACUUM's last step gives pages back.  It moves the live elements and
 *	  duplicate tuples of the last pages into free room on the first ones,
 *	  then truncates the relation: first the inventory and the plan, in a
 *	  model of the index (HnswCompactPlan), then the moves, step by step.
 *
 * Inserts reuse the slots vacuum frees, but under churn the slots freed by
 * the last vacuum cycles stay free once the writes stop, and a relation
 * never shrinks by itself: after a mass delete, or a churn that outran
 * vacuum, the index kept its largest size for good.
 *
 * Compaction runs only while vacuum holds the index in AccessExclusiveLock,
 * which it takes without waiting (ConditionalLockRelation, as the heap's
 * truncation does): no scan or insert can run beside it.  It stops between
 * any two steps once someone waits for the lock, and every step (one WAL
 * record) leaves an index whose scans return every row, so neither that
 * nor a crash loses anything:
 *	 1. free slots give up their emptied duplicate chains (that room is
 *		where step 4 moves live duplicate tuples);
 *	 2. an element moves from slot T, on a late page, into a free slot F on
 *		an earlier one (of its level, or one whose neighbor tuple is
 *		resized in place to it, or the first of a page of free slots
 *		rebuilt for it), in one record over the pages of both:
 *		F gets its vector, heap TIDs, chain and lists; T keeps the vector
 *		but no heap TIDs, is flagged DELETED (never returned, still
 *		traversed), and each of its lists leads to F first.  Whoever
 *		reaches T through a list not yet rewritten walks on to F, at
 *		distance 0 from T;
 *	 3. every neighbor list naming a moved element is rewritten to name its
 *		new slot, a page per record, and the entry point likewise; only then
 *		are the old slots, named by no list any more, flagged FREE (a
 *		FREE slot may be reused at once);
 *	 3b. a free slot that stays, but whose neighbor tuple lies past the new
 *		end, gets a new, empty one in room before it (on the slot's page or
 *		a later one, as rule 7 asks), in one record with the slot; with no
 *		room, a slot that is its page's last line pointer is dropped, line
 *		pointer and all (first, a record per slot: the room it leaves may
 *		be taken by another's new tuple);
 *	 4. each duplicate tuple of a live chain that lies past the new end
 *		moves into an unreferenced duplicate tuple or free room on an
 *		earlier duplicate page, in one record with the tuple that names it;
 *	 5. the metapage forgets the pages past the new end (insert page, free
 *		slot hints, duplicate page), and RelationTruncate cuts them off,
 *		WAL-logged; a standby replays it under the same lock, which cancels
 *		conflicting standby queries as a heap truncation does.
 * Stopped after step 2, the DELETED slots T are what an unfinished vacuum
 * leaves: the next vacuum repairs the lists that name them and frees them.
 *
 * An element of the upper levels may find no place before the goal (the
 * size of a fresh build): no free slot of its level, none whose neighbor
 * tuple can grow where it is, no page of free slots only, as after deletes
 * spread over every page.  Then the pass moves the others all the same,
 * and truncates at that element; a second pass finds the pages it emptied
 * and rebuilds one for it (compact_pass).
 *
 *-------------------------------------------------------------------------
 */

/* An element as the inventory saw it */
typedef struct CElem
{
	HnswRef		ref;			/* element tuple */
	HnswRef		nref;			/* its neighbor tuple */
	HnswRef		dup;			/* first duplicate tuple, or invalid */
	uint8		level;
	bool		free;			/* flagged FREE (or about to be) */
	bool		filled;			/* a planned move's destination */
	bool		router;			/* MOVED (or planned to be): renamed, then FREE */
	bool		gone;			/* its page is rebuilt for another element */
	bool		newntup;		/* a free slot given a new neighbor tuple */
} CElem;

/* A duplicate tuple as the inventory saw it */
typedef struct CDup
{
	HnswRef		ref;
	HnswRef		next;
	bool		used;			/* on the chain of an element not FREE */
} CDup;

/* A planned move: an element's or a duplicate tuple's */
typedef struct CMove
{
	HnswRef		from;
	HnswRef		to;
	uint8		level;			/* the free slot's level before */
	bool		rebuild;		/* into a rebuilt page: to is (page, 1) */
} CMove;

typedef struct Compactor
{
	Relation	index;
	BufferAccessStrategy strategy;
	Size		vecsize;		/* an element's stored vector, in bytes */
	int			m;
	BlockNumber nblocks;
	HnswMetaPageData meta;
	bool	   *isdup;			/* per block: a duplicate page */
	Size	   *room;			/* per block: free space */
	int		   *nitems;			/* per block: tuples */
	OffsetNumber *maxoff;		/* per block: its last line pointer */
	bool	   *rebuilt;		/* per block: rebuilt for one moved element */
	OffsetNumber *keep;			/* per block rebuilt: tuples kept before it */
	bool	   *dupconv;		/* per block: rebuilt as a duplicate page */
	BlockNumber rebuildPage;	/* where find_rebuild looks next */
	CElem	   *elems;			/* ascending by ref */
	int64		nelems;
	int64	   *bynref;			/* indexes into elems, ascending by nref */
	CDup	   *dups;			/* ascending by ref */
	int64		ndups;
	CMove	   *moves;			/* element moves, then sorted by from */
	int64		nmoves;
	HnswRef    *drops;			/* free slots whose chains step 1 drops */
	int64		ndrops;
	bool		stopped;		/* someone waits for the lock */
	int			pass;			/* 1, or 2: see compact_pass */
	int64		nrouters;		/* left by a compaction that stopped */
} Compactor;

/* Take the chance only when it gives back this much */
#define HNSW_COMPACT_MIN_PAGES		8
#define HNSW_COMPACT_MIN_FRACTION	0.1

/* The plan beside c->moves: the new end, and the moves of steps 3b and 4 */
typedef struct CPlan
{
	BlockNumber end;
	CMove	   *dmoves;			/* step 4: duplicate tuples */
	int64		ndmoves;
	CMove	   *smoves;			/* step 3b: free slots (to invalid: dropped) */
	int64		nsmoves;
} CPlan;

static inline HnswRef
ref_of(ItemPointerData tid)
{
	if (!ItemPointerIsValid(&tid))
		return HNSW_INVALID_REF;
	return HnswRefFromTid(ItemPointerGetBlockNumber(&tid),
						  ItemPointerGetOffsetNumber(&tid));
}

static inline void
set_tid(ItemPointer tid, HnswRef ref)
{
	if (ref == HNSW_INVALID_REF)
		ItemPointerSetInvalid(tid);
	else
		ItemPointerSet(tid, HnswRefBlock(ref), HnswRefOffset(ref));
}

static inline int
cmove_cmp(const void *a, const void *b)
{
	return HnswRefCmp(&((const CMove *) a)->from, &((const CMove *) b)->from);
}

static inline int
cdup_cmp(const void *a, const void *b)
{
	return HnswRefCmp(&((const CDup *) a)->ref, &((const CDup *) b)->ref);
}

static inline CDup *
find_dup(Compactor *c, HnswRef ref)
{
	CDup		key = {ref, HNSW_INVALID_REF, false};

	return bsearch(&key, c->dups, c->ndups, sizeof(CDup), cdup_cmp);
}

static bool HnswCompactPlan(Compactor *c, CPlan *plan);
static Buffer HnswCompactRead(Compactor *c, BlockNumber blkno, int mode);

/*
 * Every element and duplicate tuple, with where each points, and the room
 * on each duplicate page.
 */
static void
take_inventory(Compactor *c)
{
	int64		maxelems = 1024;
	int64		maxdups = 64;

	c->elems = palloc(sizeof(CElem) * maxelems);
	c->dups = palloc(sizeof(CDup) * maxdups);
	c->isdup = palloc0(sizeof(bool) * c->nblocks);
	c->room = palloc0(sizeof(Size) * c->nblocks);
	c->nitems = palloc0(sizeof(int) * c->nblocks);
	c->maxoff = palloc0(sizeof(OffsetNumber) * c->nblocks);
	c->rebuilt = palloc0(sizeof(bool) * c->nblocks);
	c->keep = palloc0(sizeof(OffsetNumber) * c->nblocks);
	c->dupconv = palloc0(sizeof(bool) * c->nblocks);
	c->rebuildPage = HNSW_METAPAGE_BLKNO + 1;
	for (BlockNumber blkno = HNSW_METAPAGE_BLKNO + 1; blkno < c->nblocks; blkno++)
	{
		Buffer		buf = HnswCompactRead(c, blkno, BUFFER_LOCK_SHARE);
		Page		page = BufferGetPage(buf);
		OffsetNumber maxoff;

		CHECK_FOR_INTERRUPTS();
		/* a page added just before a crash may never have been written */
		if (PageIsNew(page))
		{
			UnlockReleaseBuffer(buf);
			continue;
		}
		HnswCheckPage(c->index, page, blkno);
		c->isdup[blkno] = (HnswPageGetOpaque(page)->flags & HNSW_PAGE_DUPLICATES) != 0;
		c->room[blkno] = PageGetExactFreeSpace(page);
		maxoff = PageGetMaxOffsetNumber(page);
		c->maxoff[blkno] = maxoff;
		for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
		{
			ItemId		itemid = PageGetItemId(page, off);
			uint8		type;

			if (!ItemIdIsNormal(itemid) || ItemIdGetLength(itemid) < 1)
				continue;
			c->nitems[blkno]++;
			type = *(uint8 *) PageGetItem(page, itemid);
			if (type == HNSW_ELEMENT_TUPLE)
			{
				HnswElementTuple etup = HnswGetElement(c->index, page, blkno,
													   off, c->vecsize);
				CElem	   *e;

				if (c->nelems == maxelems)
				{
					maxelems *= 2;
					c->elems = repalloc_huge(c->elems, sizeof(CElem) * maxelems);
				}
				e = &c->elems[c->nelems++];
				memset(e, 0, sizeof(CElem));
				e->ref = HnswRefFromTid(blkno, off);
				e->nref = ref_of(etup->neighbortid);
				e->dup = ref_of(etup->duptid);
				e->level = etup->level;
				e->free = (etup->flags & HNSW_ELEMENT_FREE) != 0;
				if ((etup->flags & HNSW_ELEMENT_MOVED) && !e->free)
					c->nrouters++;
			}
			else if (type == HNSW_DUPLICATE_TUPLE)
			{
				HnswDuplicateTuple dtup = HnswGetDuplicate(c->index, page,
														   blkno, off);
				CDup	   *d;

				if (c->ndups == maxdups)
				{
					maxdups *= 2;
					c->dups = repalloc_huge(c->dups, sizeof(CDup) * maxdups);
				}
				d = &c->dups[c->ndups++];
				d->ref = HnswRefFromTid(blkno, off);
				d->next = ref_of(dtup->next);
				d->used = false;
			}
		}
		UnlockReleaseBuffer(buf);
	}

	/* the duplicate tuples that live elements' chains hold */
	for (int64 i = 0; i < c->nelems; i++)
	{
		HnswRef		r = c->elems[i].dup;
		int64		steps = 0;

		if (c->elems[i].free)
			continue;
		while (r != HNSW_INVALID_REF)
		{
			CDup	   *d = find_dup(c, r);

			if (d == NULL || d->used || ++steps > c->ndups)
				ereport(ERROR,
						(errcode(ERRCODE_INDEX_CORRUPTED),
						 errmsg("index \"%s\" has a damaged duplicate chain at block %u offset %u",
								RelationGetRelationName(c->index),
								HnswRefBlock(c->elems[i].ref),
								HnswRefOffset(c->elems[i].ref))));
			d->used = true;
			r = d->next;
		}
	}
}

/* Plan step 1: every free slot's chain goes (in the model at once) */
static void
plan_drops(Compactor *c)
{
	c->drops = palloc(sizeof(HnswRef) * Max(c->nelems, 1));
	for (int64 i = 0; i < c->nelems; i++)
	{
		if (c->elems[i].free && c->elems[i].dup != HNSW_INVALID_REF)
		{
			c->drops[c->ndrops++] = c->elems[i].ref;
			c->elems[i].dup = HNSW_INVALID_REF;
		}
	}
}

/* The model's elements of a block: [*first, *last) */
static void
block_elems(Compactor *c, BlockNumber blkno, int64 *first, int64 *last)
{
	int64		lo = 0;
	int64		hi = c->nelems;

	while (lo < hi)
	{
		int64		mid = (lo + hi) / 2;

		if (HnswRefBlock(c->elems[mid].ref) < blkno)
			lo = mid + 1;
		else
			hi = mid;
	}
	*first = lo;
	while (hi < c->nelems && HnswRefBlock(c->elems[hi].ref) == blkno)
		hi++;
	*last = hi;
}

static int
nref_cmp(const void *a, const void *b, void *arg)
{
	Compactor  *c = arg;

	return HnswRefCmp(&c->elems[*(const int64 *) a].nref,
					  &c->elems[*(const int64 *) b].nref);
}

/* c->bynref: which element owns each neighbor tuple, by its place */
static void
sort_by_nref(Compactor *c)
{
	c->bynref = palloc(sizeof(int64) * Max(c->nelems, 1));
	for (int64 i = 0; i < c->nelems; i++)
		c->bynref[i] = i;
	qsort_arg(c->bynref, c->nelems, sizeof(int64), nref_cmp, c);
}

/* An element and its neighbor tuple of a level, with line pointers */
static Size
pair_size(Compactor *c, int level)
{
	return HNSW_ELEMENT_TUPLE_SIZE(c->vecsize) +
		MAXALIGN(HNSW_NEIGHBOR_TUPLE_SIZE(level, c->m)) +
		2 * sizeof(ItemIdData);
}

/*
 * Whether block blkno may be rebuilt: it holds no live element (nor, unless
 * routers, an old slot step 3 has yet to rename) and no duplicate tuple,
 * only free slots with their neighbor tuples and, with keep, first the
 * neighbor tuples of elements elsewhere, which stay where they are
 * (*nkeep of them, *keptsize bytes; none without keep).  A free slot's
 * neighbor tuple on another page is left behind, named by nothing.  For an
 * element of a level (or -1: a duplicate page), the pair must fit after
 * the kept tuples.  1 if so, -1 if only the room is short, else 0.
 */
static int
rebuildable(Compactor *c, BlockNumber blkno, bool routers, bool keep,
			int level, OffsetNumber *nkeep, Size *keptsize)
{
	int64		first;
	int64		last;
	int64		lo = 0;
	int64		hi = c->nelems;
	OffsetNumber firstoff;
	int			ntups = 0;
	int			nkept = 0;
	Size		kept = 0;

	if (c->isdup[blkno] || c->rebuilt[blkno] || c->dupconv[blkno])
		return 0;
	block_elems(c, blkno, &first, &last);
	if (first == last)
		return 0;
	for (int64 i = first; i < last; i++)
	{
		CElem	   *e = &c->elems[i];

		if (!e->free || (e->router && !routers) || e->filled || e->gone)
			return 0;
	}
	firstoff = HnswRefOffset(c->elems[first].ref);

	/* the neighbor tuples on the page, and whose they are */
	while (lo < hi)
	{
		int64		mid = (lo + hi) / 2;

		if (HnswRefBlock(c->elems[c->bynref[mid]].nref) < blkno)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < c->nelems; lo++)
	{
		CElem	   *o = &c->elems[c->bynref[lo]];
		bool		dies = HnswRefBlock(o->ref) == blkno || o->gone;

		if (HnswRefBlock(o->nref) != blkno)
			break;
		ntups++;
		if (HnswRefOffset(o->nref) < firstoff)
		{
			nkept++;
			kept += MAXALIGN(HNSW_NEIGHBOR_TUPLE_SIZE(o->level, c->m)) +
				sizeof(ItemIdData);
		}
		else if (!dies)
			return 0;
	}
	/* nothing else on the page, and only kept tuples before the slots */
	if ((last - first) + ntups != c->nitems[blkno] ||
		nkept != firstoff - FirstOffsetNumber || (nkept > 0 && !keep))
		return 0;
	if (level >= 0 && kept + pair_size(c, level) > HNSW_PAGE_CAPACITY)
		return -1;
	*nkeep = nkept;
	*keptsize = kept;
	return 1;
}

/* The model of rebuilding blkno: its slots are gone */
static void
take_rebuild(Compactor *c, BlockNumber blkno, OffsetNumber nkeep)
{
	int64		first;
	int64		last;

	block_elems(c, blkno, &first, &last);
	for (int64 i = first; i < last; i++)
		c->elems[i].gone = true;
	c->rebuilt[blkno] = true;
	c->keep[blkno] = nkeep;
}

/*
 * The first block before limit, from c->rebuildPage on, that may be
 * rebuilt for one element of a level; InvalidBlockNumber if none.  The
 * blocks skipped for good (a live element or a router, which stay so
 * while the plan is made) are not looked at again.
 */
static BlockNumber
find_rebuild(Compactor *c, BlockNumber limit, int level, OffsetNumber *nkeep,
			 Size *kept)
{
	bool		advance = true;

	for (BlockNumber b = c->rebuildPage; b < limit; b++)
	{
		int			r = rebuildable(c, b, false, true, level, nkeep, kept);

		if (r > 0)
			return b;
		if (r < 0)
			advance = false;
		else if (advance)
			c->rebuildPage = b + 1;
	}
	return InvalidBlockNumber;
}

/*
 * Where the index would end if packed as a fresh build: the live elements
 * at level 0's density, and the duplicate pages.  Moves to slots past it
 * are not worth a page rebuilt for them (find_rebuild).
 */
static BlockNumber
packed_end(Compactor *c)
{
	Size		pair = HNSW_ELEMENT_TUPLE_SIZE(c->vecsize) +
		HNSW_NEIGHBOR_TUPLE_SIZE(0, c->m) + 2 * sizeof(ItemIdData);
	int64		live = 0;
	BlockNumber ndup = 0;

	for (int64 i = 0; i < c->nelems; i++)
		live += !c->elems[i].free;
	for (BlockNumber b = 0; b < c->nblocks; b++)
		ndup += c->isdup[b];
	/* an element too large to share its page takes one of its own */
	return HNSW_METAPAGE_BLKNO + 1 + ndup +
		(BlockNumber) (live / Max(HNSW_PAGE_CAPACITY / pair, 1) + 1);
}

/*
 * A free slot of any level, before block limit and before x in c->elems
 * (from *any on, which moves past those that do not do), whose neighbor
 * tuple is already x's size or can grow to it in the room of its page;
 * the room is taken in the model.  NULL if none.
 */
static CElem *
grow_slot(Compactor *c, CElem *x, int64 xi, BlockNumber limit, int64 *any)
{
	Size		want = HNSW_NEIGHBOR_TUPLE_SIZE(x->level, c->m);

	for (; *any < xi; (*any)++)
	{
		CElem	   *e = &c->elems[*any];
		Size		have = HNSW_NEIGHBOR_TUPLE_SIZE(e->level, c->m);

		if (HnswRefBlock(e->ref) >= limit)
			return NULL;
		if (e->free && !e->router && !e->gone && !e->filled &&
			HnswRefBlock(e->nref) < limit &&
			(want <= have || c->room[HnswRefBlock(e->nref)] >= want - have))
		{
			if (want > have)
				c->room[HnswRefBlock(e->nref)] -= want - have;
			(*any)++;
			return e;
		}
	}
	return NULL;
}

/*
 * Plan the element moves, level by level from the highest, each level's
 * live elements from the last block down.  Each goes into the first free
 * slot of its level that lies (with its neighbor tuple) on an earlier
 * block; if that is past goal, or there is none, into an earlier free slot
 * of another level whose neighbor tuple can be resized in place to the
 * element's (grow_slot); else into a page of free slots rebuilt for it;
 * else into the slot past goal.  The model in c->elems is updated as if
 * done.
 */
static void
plan_moves(Compactor *c)
{
	int64		next[HNSW_MAX_LEVEL + 1];
	BlockNumber goal = packed_end(c);

	for (int l = 0; l <= HNSW_MAX_LEVEL; l++)
		next[l] = 0;

	/*
	 * The highest levels first: they have the fewest slots, and an element
	 * that finds none of its own level before goal takes a slot of another
	 * level (grow_slot); the levels done before it need theirs no more.
	 */
	for (int lv = HNSW_MAX_LEVEL; lv >= 0; lv--)
	{
		int64		any = 0;

		for (int64 i = c->nelems - 1; i >= 0; i--)
		{
			CElem	   *x = &c->elems[i];
			BlockNumber xblk = HnswRefBlock(x->ref);
			int64	   *f = &next[x->level];
			CElem	   *s = NULL;
			bool		rebuild = false;

			/* a slot filled by a move stays: lists are renamed one hop only */
			if (x->level != lv || x->free || x->filled)
				continue;
			/* the first free slot of the level before x, if any */
			for (; *f < i; (*f)++)
			{
				CElem	   *e = &c->elems[*f];

				if (e->free && !e->router && !e->gone && e->level == x->level &&
					HnswRefBlock(e->ref) < xblk && HnswRefBlock(e->nref) < xblk)
				{
					s = e;
					break;
				}
			}
			if (s != NULL && HnswRefBlock(s->ref) < goal)
				(*f)++;
			else
			{
				/*
				 * Past goal, or none: better any free slot before both whose
				 * neighbor tuple is x's size or can grow to it where it is (the
				 * highest levels have few slots, and one taken past goal holds
				 * the end there), or a page of free slots rebuilt for x, which
				 * ever comes first.  Such a page may begin with others'
				 * neighbor tuples, which stay; x's two tuples must fit after
				 * them (a sparsevec element at m 4 shares its page with a
				 * neighbor tuple of level 0 only).
				 */
				BlockNumber limit = s ? Min(xblk, goal) : xblk;
				OffsetNumber nkeep = 0;
				Size		kept = 0;
				BlockNumber rblk = find_rebuild(c, s ? HnswRefBlock(s->ref) : xblk,
												x->level, &nkeep, &kept);
				CElem	   *g;

				if (rblk != InvalidBlockNumber)
					limit = Min(limit, rblk + 1);
				g = grow_slot(c, x, i, limit, &any);
				if (g != NULL)
					s = g;
				else if (rblk != InvalidBlockNumber)
				{
					int64		first;
					int64		last;

					/* x goes where the page's first free slot was */
					take_rebuild(c, rblk, nkeep);
					block_elems(c, rblk, &first, &last);
					s = &c->elems[first];
					s->gone = false;
					s->nref = HnswRefFromTid(rblk, HnswRefOffset(s->ref) + 1);
					c->room[rblk] = HNSW_PAGE_CAPACITY - kept - pair_size(c, x->level);
					rebuild = true;
				}
				else if (s != NULL)
					(*f)++;
			}
			if (s == NULL)
				continue;

			/* x's content goes to slot s; x's slot becomes free */
			c->moves[c->nmoves].from = x->ref;
			c->moves[c->nmoves].to = s->ref;
			c->moves[c->nmoves].level = s->level;
			c->moves[c->nmoves].rebuild = rebuild;
			c->nmoves++;
			s->free = false;
			s->filled = true;
			s->dup = x->dup;
			s->level = x->level;
			x->free = true;
			x->router = true;
			x->dup = HNSW_INVALID_REF;
		}
	}
}

/* Undo the planned moves that gain nothing: those from before end */
static void
prune_moves(Compactor *c, BlockNumber end)
{
	CElem		key;
	int64		n = 0;

	for (int64 i = 0; i < c->nmoves; i++)
	{
		CMove	   *mv = &c->moves[i];
		CElem	   *x;
		CElem	   *f;

		if (mv->rebuild || HnswRefBlock(mv->from) >= end)
		{
			c->moves[n++] = *mv;
			continue;
		}
		key.ref = mv->from;
		x = bsearch(&key, c->elems, c->nelems, sizeof(CElem), HnswRefCmp);
		key.ref = mv->to;
		f = bsearch(&key, c->elems, c->nelems, sizeof(CElem), HnswRefCmp);
		x->free = false;
		x->router = false;
		x->dup = f->dup;
		f->free = true;
		f->filled = false;
		f->dup = HNSW_INVALID_REF;
		f->level = mv->level;
		/* room a resized neighbor tuple took stays taken: harmless */
	}
	c->nmoves = n;
}

/*
 * One past the last block a live element or its neighbor tuple needs; with
 * a goal, leaving out the elements of the upper levels that found no
 * place before it, where they are or where they move (see compact_pass).
 */
static BlockNumber
elements_end(Compactor *c, BlockNumber goal)
{
	BlockNumber end = HNSW_METAPAGE_BLKNO + 1;

	for (int64 i = 0; i < c->nelems; i++)
	{
		if (c->elems[i].free)
			continue;
		if (goal != InvalidBlockNumber && c->elems[i].level > 0 &&
			HnswRefBlock(c->elems[i].ref) >= goal)
			continue;
		end = Max(end, HnswRefBlock(c->elems[i].ref) + 1);
		end = Max(end, HnswRefBlock(c->elems[i].nref) + 1);
	}
	return end;
}

/*
 * Where each duplicate tuple of a live chain at or past end can go: an
 * unused duplicate tuple before end, or room on a duplicate page before
 * end (to HnswRefFromTid(blkno, InvalidOffsetNumber)), made if need be of
 * a page of free slots only.  Those with nowhere
 * to go stay, and move the end past them.  Returns the final end, with
 * the moves in dmoves.
 */
static BlockNumber
plan_dup_moves(Compactor *c, BlockNumber end, CMove **dmoves, int64 *ndmoves)
{
	int64		unused = 0;
	BlockNumber roomblk = HNSW_METAPAGE_BLKNO + 1;
	BlockNumber stay = end;
	BlockNumber convblk = InvalidBlockNumber;
	BlockNumber convpage = HNSW_METAPAGE_BLKNO + 1;
	Size		need = HNSW_DUPLICATE_TUPLE_SIZE + sizeof(ItemIdData);

	*dmoves = palloc(sizeof(CMove) * Max(c->ndups, 1));
	*ndmoves = 0;
	for (int64 i = 0; i < c->ndups; i++)
	{
		CDup	   *d = &c->dups[i];

		if (!d->used || HnswRefBlock(d->ref) < end)
			continue;
		/* an unused tuple before end */
		while (unused < c->ndups &&
			   (c->dups[unused].used ||
				HnswRefBlock(c->dups[unused].ref) >= end))
			unused++;
		if (unused < c->ndups)
		{
			(*dmoves)[*ndmoves].from = d->ref;
			(*dmoves)[(*ndmoves)++].to = c->dups[unused].ref;
			c->dups[unused].used = true;
			continue;
		}
		/* room on a duplicate page before end */
		while (roomblk < end && (!c->isdup[roomblk] || c->room[roomblk] < need))
			roomblk++;
		/*
		 * or on a page of free slots only, rebuilt as a duplicate page,
		 * even past end (which then takes it in): right after the live
		 * elements, the chains are packed
		 */
		if (roomblk >= end && convblk != InvalidBlockNumber &&
			c->room[convblk] >= need)
		{
			(*dmoves)[*ndmoves].from = d->ref;
			(*dmoves)[(*ndmoves)++].to = HnswRefFromTid(convblk, InvalidOffsetNumber);
			c->room[convblk] -= need;
			continue;
		}
		if (roomblk >= end)
		{
			OffsetNumber nkeep;
			Size		kept;

			/* routers are renamed and freed (step 3) before step 4 */
			while (convpage < HnswRefBlock(d->ref) &&
				   rebuildable(c, convpage, true, false, -1, &nkeep, &kept) <= 0)
				convpage++;
		}
		if (roomblk >= end && convpage < HnswRefBlock(d->ref))
		{
			convblk = convpage++;
			take_rebuild(c, convblk, 0);
			c->rebuilt[convblk] = false;
			c->dupconv[convblk] = true;
			c->isdup[convblk] = true;
			c->room[convblk] = HNSW_PAGE_CAPACITY - need;
			stay = Max(stay, convblk + 1);
			(*dmoves)[*ndmoves].from = d->ref;
			(*dmoves)[(*ndmoves)++].to = HnswRefFromTid(convblk, InvalidOffsetNumber);
			continue;
		}
		if (roomblk < end)
		{
			(*dmoves)[*ndmoves].from = d->ref;
			(*dmoves)[(*ndmoves)++].to = HnswRefFromTid(roomblk, InvalidOffsetNumber);
			c->room[roomblk] -= need;
			continue;
		}
		stay = Max(stay, HnswRefBlock(d->ref) + 1);
	}
	return stay;
}

/*
 * The end, raised until no element before it has its neighbor tuple past
 * it.  A free slot's neighbor tuple holds no list (step 3 clears it), so
 * rather than keep its page, step 3b gives the slot a new, empty one in
 * free room before the end, on the slot's page or a later one (rule 7)
 * (*smoves: from the slot, to the page).  With no room there, a slot that
 * is its page's last line pointer is dropped (to HNSW_INVALID_REF): a page
 * filled up as its last element was written keeps that element's neighbor
 * tuple on the next page, so nearly every page ends so, and raising the
 * end for one such slot used to reach the next page's, and so on, for
 * dozens of pages.  A live element's neighbor tuple stays where it is, and
 * raises the end.
 */
static BlockNumber
slots_end(Compactor *c, BlockNumber end, CMove **smoves, int64 *nsmoves)
{
	bool		raised = true;

	*smoves = palloc(sizeof(CMove) * Max(c->nelems, 1));
	*nsmoves = 0;
	while (raised)
	{
		raised = false;
		for (int64 i = 0; i < c->nelems; i++)
		{
			CElem	   *e = &c->elems[i];
			Size		need;
			BlockNumber roomblk;

			if (e->gone || e->newntup || HnswRefBlock(e->ref) >= end ||
				HnswRefBlock(e->nref) < end)
				continue;
			need = MAXALIGN(HNSW_NEIGHBOR_TUPLE_SIZE(e->level, c->m)) +
				sizeof(ItemIdData);
			/* a router's lists are read until step 3 renames it */
			if (e->free && !e->filled && !e->router)
			{
				/* on the slot's page or a later one (rule 7) */
				roomblk = HnswRefBlock(e->ref);
				while (roomblk < end &&
					   (c->isdup[roomblk] || c->rebuilt[roomblk] ||
						c->dupconv[roomblk] || c->room[roomblk] < need))
					roomblk++;
				if (roomblk < end)
				{
					(*smoves)[*nsmoves].from = e->ref;
					(*smoves)[(*nsmoves)++].to =
						HnswRefFromTid(roomblk, InvalidOffsetNumber);
					c->room[roomblk] -= need;
					e->newntup = true;
					continue;
				}
				roomblk = HnswRefBlock(e->ref);
				if (e->dup == HNSW_INVALID_REF && !c->isdup[roomblk] &&
					!c->rebuilt[roomblk] && !c->dupconv[roomblk] &&
					HnswRefOffset(e->ref) == c->maxoff[roomblk])
				{
					(*smoves)[*nsmoves].from = e->ref;
					(*smoves)[(*nsmoves)++].to = HNSW_INVALID_REF;
					c->maxoff[roomblk]--;
					c->room[roomblk] +=
						MAXALIGN(HNSW_ELEMENT_TUPLE_SIZE(c->vecsize)) +
						sizeof(ItemIdData);
					e->gone = true;
					continue;
				}
			}
			end = HnswRefBlock(e->nref) + 1;
			raised = true;
		}
	}
	return end;
}

/*
 * Take the inventory and plan every step; false if nothing may move.  The
 * caller decides whether the pages the plan gives back are worth it.
 */
static bool
HnswCompactPlan(Compactor *c, CPlan *p)
{
	BlockNumber end;
	BlockNumber dend;
	int64		nsdrops = 0;

	take_inventory(c);
	if (c->nrouters > 0)
	{
		/*
		 * Can't happen: this vacuum's passes, which ran just before, treat
		 * the routers a stopped compaction left as deleted elements, and
		 * free them.  Moving more before they are gone would stack routers.
		 */
		elog(DEBUG1, "hnsw compaction of \"%s\": " INT64_FORMAT " elements a stopped compaction moved are not freed yet",
			 RelationGetRelationName(c->index), c->nrouters);
		return false;
	}
	c->moves = palloc(sizeof(CMove) * Max(c->nelems, 1));
	plan_drops(c);
	sort_by_nref(c);
	plan_moves(c);
	/*
	 * The moves from before the end gain nothing, but an element of the
	 * upper levels left past goal holds the end for the next pass only:
	 * that pass rebuilds a page emptied by this one for it.
	 */
	prune_moves(c, elements_end(c, packed_end(c)));
	end = elements_end(c, InvalidBlockNumber);
	dend = plan_dup_moves(c, end, &p->dmoves, &p->ndmoves);
	p->end = slots_end(c, dend, &p->smoves, &p->nsmoves);
	for (int64 i = 0; i < p->nsmoves; i++)
		nsdrops += p->smoves[i].to == HNSW_INVALID_REF;
	elog(DEBUG1, "hnsw compaction of \"%s\"%s: %u pages, %u needed (%u for the elements, %u for the duplicates, %u for the free slots, %u at the packing of a fresh build), %lld element and %lld duplicate tuple moves, %lld free slots given a neighbor tuple and %lld dropped",
		 RelationGetRelationName(c->index),
		 c->pass > 1 ? " (second pass)" : "", c->nblocks, p->end, end, dend,
		 p->end, packed_end(c), (long long) c->nmoves,
		 (long long) p->ndmoves, (long long) (p->nsmoves - nsdrops),
		 (long long) nsdrops);
	return true;
}

/* Where an element moved, or ref itself */
static HnswRef
moved_to(Compactor *c, HnswRef ref)
{
	CMove		key = {ref, HNSW_INVALID_REF, 0, false};
	CMove	   *mv;

	if (c->nmoves == 0)
		return ref;
	mv = bsearch(&key, c->moves, c->nmoves, sizeof(CMove), cmove_cmp);
	return mv ? mv->to : ref;
}

/* Someone waits for the index: give it up at the next step */
static bool
must_stop(Compactor *c)
{
	CHECK_FOR_INTERRUPTS();
	if (!c->stopped && LockHasWaitersRelation(c->index, AccessExclusiveLock))
		c->stopped = true;
	return c->stopped;
}

/* A block of the index, read into a buffer and locked in mode */
static Buffer
HnswCompactRead(Compactor *c, BlockNumber blkno, int mode)
{
	Buffer		buf = ReadBufferExtended(c->index, MAIN_FORKNUM, blkno,
										 RBM_NORMAL, c->strategy);

	LockBuffer(buf, mode);
	return buf;
}

/*
 * Step 1: free slots give up their emptied duplicate chains, a page per
 * record (c->drops, ascending, planned by plan_drops).
 */
static void
drop_free_chains(Compactor *c)
{
	int64		i = 0;

	while (i < c->ndrops && !must_stop(c))
	{
		BlockNumber blkno = HnswRefBlock(c->drops[i]);
		Buffer		buf = HnswCompactRead(c, blkno, BUFFER_LOCK_EXCLUSIVE);
		GenericXLogState *state = GenericXLogStart(c->index);
		Page		page = GenericXLogRegisterBuffer(state, buf, 0);

		for (; i < c->ndrops && HnswRefBlock(c->drops[i]) == blkno; i++)
			ItemPointerSetInvalid(&HnswGetElement(c->index, page, blkno,
												  HnswRefOffset(c->drops[i]),
												  c->vecsize)->duptid);
		GenericXLogFinish(state);
		UnlockReleaseBuffer(buf);
	}
}

/*
 * Lock up to four blocks in ascending order, each once, and register them
 * in one record; pages[k] is the page of blocks[k].
 */
typedef struct PageSet
{
	int			n;
	BlockNumber blk[4];
	Buffer		buf[4];
	Page		page[4];
	GenericXLogState *state;
} PageSet;

static void
pageset_add(PageSet *ps, BlockNumber blkno)
{
	for (int k = 0; k < ps->n; k++)
		if (ps->blk[k] == blkno)
			return;
	Assert(ps->n < MAX_GENERIC_XLOG_PAGES);
	ps->blk[ps->n++] = blkno;
}

static void
pageset_start(Compactor *c, PageSet *ps, BlockNumber full)
{
	/* ascending, as rule 7 orders an element's pages */
	for (int a = 1; a < ps->n; a++)
		for (int b = a; b > 0 && ps->blk[b - 1] > ps->blk[b]; b--)
		{
			BlockNumber t = ps->blk[b];

			ps->blk[b] = ps->blk[b - 1];
			ps->blk[b - 1] = t;
		}
	for (int k = 0; k < ps->n; k++)
		ps->buf[k] = HnswCompactRead(c, ps->blk[k], BUFFER_LOCK_EXCLUSIVE);
	ps->state = GenericXLogStart(c->index);
	for (int k = 0; k < ps->n; k++)
		ps->page[k] = GenericXLogRegisterBuffer(ps->state, ps->buf[k],
												ps->blk[k] == full ?
												GENERIC_XLOG_FULL_IMAGE : 0);
}

static Page
pageset_page(PageSet *ps, BlockNumber blkno)
{
	for (int k = 0; k < ps->n; k++)
		if (ps->blk[k] == blkno)
			return ps->page[k];
	elog(ERROR, "hnsw: block %u is not in the compaction's record", blkno);
	return NULL;				/* keep compiler quiet */
}

static void
pageset_finish(PageSet *ps)
{
	GenericXLogFinish(ps->state);
	for (int k = 0; k < ps->n; k++)
		UnlockReleaseBuffer(ps->buf[k]);
}

/*
 * T, the slot an element left for `to`: no rows, and on every layer `to`
 * first, so that whoever reaches T walks on to it
 */
static void
make_router(Compactor *c, HnswElementTuple x, HnswNeighborTuple xn, HnswRef to)
{
	x->flags = HNSW_ELEMENT_DELETED | HNSW_ELEMENT_MOVED;
	x->ntids = 0;
	for (int t = 0; t < HNSW_HEAPTIDS; t++)
		ItemPointerSetInvalid(&x->heaptids[t]);
	ItemPointerSetInvalid(&x->duptid);
	for (int l = 0; l <= x->level; l++)
	{
		ItemPointer s = &xn->slots[HnswLayerStart(c->m, l)];
		int			cap = HnswLayerCapacity(c->m, l);
		HnswRef		list[2 * HNSW_MAX_M];
		int			n = 0;

		list[n++] = to;
		for (int k = 0; k < cap && ItemPointerIsValid(&s[k]) && n < cap; k++)
			if (ref_of(s[k]) != to)
				list[n++] = ref_of(s[k]);
		for (int k = 0; k < cap; k++)
			set_tid(&s[k], k < n ? list[k] : HNSW_INVALID_REF);
	}
}

/* Step 2: one element from slot from into free slot to */
static void
move_element(Compactor *c, HnswRef from, HnswRef to)
{
	PageSet		ps = {0};
	HnswElementTuple x;
	HnswElementTuple f;
	HnswNeighborTuple xn;
	HnswNeighborTuple fn;
	ItemPointerData fntid;
	Size		esize = HNSW_ELEMENT_TUPLE_SIZE(c->vecsize);
	CElem	   *xe;
	CElem	   *fe;
	CElem		key;

	key.ref = from;
	xe = bsearch(&key, c->elems, c->nelems, sizeof(CElem), HnswRefCmp);
	key.ref = to;
	fe = bsearch(&key, c->elems, c->nelems, sizeof(CElem), HnswRefCmp);
	if (xe == NULL || fe == NULL)
		elog(ERROR, "hnsw: compaction lost track of an element");

	pageset_add(&ps, HnswRefBlock(to));
	pageset_add(&ps, HnswRefBlock(fe->nref));
	pageset_add(&ps, HnswRefBlock(from));
	pageset_add(&ps, HnswRefBlock(xe->nref));
	pageset_start(c, &ps, InvalidBlockNumber);

	x = HnswGetElement(c->index, pageset_page(&ps, HnswRefBlock(from)),
					   HnswRefBlock(from), HnswRefOffset(from), c->vecsize);
	f = HnswGetElement(c->index, pageset_page(&ps, HnswRefBlock(to)),
					   HnswRefBlock(to), HnswRefOffset(to), c->vecsize);
	xn = HnswGetNeighbors(c->index, pageset_page(&ps, HnswRefBlock(xe->nref)),
						  HnswRefBlock(xe->nref), HnswRefOffset(xe->nref), c->m);
	fn = HnswGetNeighbors(c->index, pageset_page(&ps, HnswRefBlock(fe->nref)),
						  HnswRefBlock(fe->nref), HnswRefOffset(fe->nref), c->m);
	if (!(f->flags & HNSW_ELEMENT_FREE) || ItemPointerIsValid(&f->duptid))
		elog(ERROR, "hnsw: compaction's free slot at block %u offset %u changed",
			 HnswRefBlock(to), HnswRefOffset(to));

	/* F: x, with F's own neighbor tuple, holding x's lists */
	fntid = f->neighbortid;
	memcpy(f, x, esize);
	f->neighbortid = fntid;
	if (fn->nslots == xn->nslots)
		memcpy(fn->slots, xn->slots, sizeof(ItemPointerData) * xn->nslots);
	else
	{
		/* another level's slot: its neighbor tuple takes x's size */
		Size		nsize = HNSW_NEIGHBOR_TUPLE_SIZE(x->level, c->m);
		char	   *copy = palloc0(nsize);

		memcpy(copy, xn, offsetof(HnswNeighborTupleData, slots) +
			   sizeof(ItemPointerData) * xn->nslots);
		if (!PageIndexTupleOverwrite(pageset_page(&ps, HnswRefBlock(fe->nref)),
									 HnswRefOffset(fe->nref), (Item) copy,
									 nsize))
			elog(ERROR, "hnsw: no room to resize a neighbor tuple on block %u",
				 HnswRefBlock(fe->nref));
		pfree(copy);
	}

	make_router(c, x, xn, to);
	pageset_finish(&ps);
}

/* Step 2, as a last resort: one element into a page rebuilt for it */
static void
move_element_rebuild(Compactor *c, HnswRef from, HnswRef to)
{
	PageSet		ps = {0};
	BlockNumber pblk = HnswRefBlock(to);
	HnswElementTuple x;
	HnswNeighborTuple xn;
	HnswElementTuple ecopy;
	HnswNeighborTuple ncopy;
	Size		esize = HNSW_ELEMENT_TUPLE_SIZE(c->vecsize);
	Size		nsize;
	Page		page;
	CElem	   *xe;
	CElem		key;
	OffsetNumber nkeep = HnswRefOffset(to) - 1;
	Item	   *kept = palloc(sizeof(Item) * Max(nkeep, 1));
	Size	   *keptsize = palloc(sizeof(Size) * Max(nkeep, 1));

	key.ref = from;
	xe = bsearch(&key, c->elems, c->nelems, sizeof(CElem), HnswRefCmp);
	if (xe == NULL)
		elog(ERROR, "hnsw: compaction lost track of an element");
	pageset_add(&ps, pblk);
	pageset_add(&ps, HnswRefBlock(from));
	pageset_add(&ps, HnswRefBlock(xe->nref));
	pageset_start(c, &ps, pblk);

	x = HnswGetElement(c->index, pageset_page(&ps, HnswRefBlock(from)),
					   HnswRefBlock(from), HnswRefOffset(from), c->vecsize);
	xn = HnswGetNeighbors(c->index, pageset_page(&ps, HnswRefBlock(xe->nref)),
						  HnswRefBlock(xe->nref), HnswRefOffset(xe->nref), c->m);
	nsize = HNSW_NEIGHBOR_TUPLE_SIZE(x->level, c->m);
	ecopy = palloc(esize);
	memcpy(ecopy, x, esize);
	ItemPointerSet(&ecopy->neighbortid, pblk, HnswRefOffset(to) + 1);
	ncopy = palloc0(nsize);
	memcpy(ncopy, xn, offsetof(HnswNeighborTupleData, slots) +
		   sizeof(ItemPointerData) * xn->nslots);

	/*
	 * The page's first nkeep tuples are others' neighbor tuples, which stay
	 * at their offsets; every other tuple belonged to a free slot.
	 */
	page = pageset_page(&ps, pblk);
	for (OffsetNumber off = FirstOffsetNumber; off <= nkeep; off++)
	{
		Item		item = HnswGetItem(page, off, 1);

		if (item == NULL || *(uint8 *) item != HNSW_NEIGHBOR_TUPLE)
			elog(ERROR, "hnsw: block %u offset %u to keep is no neighbor tuple",
				 pblk, off);
		keptsize[off - 1] = ItemIdGetLength(PageGetItemId(page, off));
		kept[off - 1] = palloc(keptsize[off - 1]);
		memcpy(kept[off - 1], item, keptsize[off - 1]);
	}
	HnswInitPage(page);
	for (OffsetNumber off = FirstOffsetNumber; off <= nkeep; off++)
		if (PageAddItem(page, kept[off - 1], keptsize[off - 1], off, false,
						false) != off)
			elog(ERROR, "hnsw: could not rebuild block %u", pblk);
	if (PageAddItem(page, (Item) ecopy, esize, HnswRefOffset(to), false,
					false) != HnswRefOffset(to) ||
		PageAddItem(page, (Item) ncopy, nsize, HnswRefOffset(to) + 1, false,
					false) != HnswRefOffset(to) + 1)
		elog(ERROR, "hnsw: could not rebuild block %u", pblk);

	make_router(c, x, xn, to);
	pageset_finish(&ps);
	pfree(ecopy);
	pfree(ncopy);
}

/*
 * A neighbor tuple's lists with each moved element renamed, and whatever
 * names a page past end dropped (only a free slot's stale list can), each
 * list packed again; with apply, written into ntup.  Returns whether
 * anything changes.
 */
static bool
rewrite_tuple(Compactor *c, HnswNeighborTuple ntup, BlockNumber end,
			  bool apply)
{
	bool		changed = false;
	int			nlayers = ntup->nslots / c->m - 1;

	for (int l = 0; l < nlayers; l++)
	{
		ItemPointer s = &ntup->slots[HnswLayerStart(c->m, l)];
		int			cap = HnswLayerCapacity(c->m, l);
		HnswRef		list[2 * HNSW_MAX_M];
		int			n = 0;

		for (int k = 0; k < cap && ItemPointerIsValid(&s[k]); k++)
		{
			HnswRef		r = ref_of(s[k]);
			HnswRef		to = moved_to(c, r);

			if (to == r && (HnswRefBlock(r) >= end ||
							c->dupconv[HnswRefBlock(r)] ||
							(c->rebuilt[HnswRefBlock(r)] &&
							 HnswRefOffset(r) != c->keep[HnswRefBlock(r)] + 1)))
			{
				changed = true;
				continue;
			}
			changed |= to != r;
			/* a list may name both an element's old slot and its new one */
			for (int j = 0; j < n && to != HNSW_INVALID_REF; j++)
				if (list[j] == to)
					to = HNSW_INVALID_REF;
			if (to == HNSW_INVALID_REF)
			{
				changed = true;
				continue;
			}
			list[n++] = to;
		}
		if (apply)
			for (int k = 0; k < cap; k++)
				set_tid(&s[k], k < n ? list[k] : HNSW_INVALID_REF);
	}
	return changed;
}

/*
 * Step 3: every neighbor list and the entry point name the moved elements'
 * new slots; then the old slots are flagged FREE.  Lists of free slots
 * (never read until the slot is reused) lose what names a page past end.
 */
static void
rewrite_lists(Compactor *c, BlockNumber end)
{
	HnswRef    *clear = palloc(sizeof(HnswRef) * Max(c->nelems, 1));
	int64		nclear = 0;

	/* free slots (staying so) keep no list: what it names may go or move */
	for (int64 i = 0; i < c->nelems; i++)
	{
		CElem	   *e = &c->elems[i];

		if (e->free && !e->router && !e->filled && !e->gone)
			clear[nclear++] = e->nref;
	}
	qsort(clear, nclear, sizeof(HnswRef), HnswRefCmp);

	for (BlockNumber blkno = HNSW_METAPAGE_BLKNO + 1; blkno < c->nblocks; blkno++)
	{
		Buffer		buf;
		Page		page;
		GenericXLogState *state = NULL;
		OffsetNumber maxoff;

		if (c->isdup[blkno])
			continue;
		if (must_stop(c))
			return;
		buf = HnswCompactRead(c, blkno, BUFFER_LOCK_EXCLUSIVE);
		page = BufferGetPage(buf);
		if (PageIsNew(page))
		{
			UnlockReleaseBuffer(buf);
			continue;
		}
		maxoff = PageGetMaxOffsetNumber(page);
		for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
		{
			ItemId		itemid = PageGetItemId(page, off);
			HnswNeighborTuple ntup;
			HnswRef		self = HnswRefFromTid(blkno, off);
			bool		isfree;
			bool		change = false;

			if (!ItemIdIsNormal(itemid) || ItemIdGetLength(itemid) < 1 ||
				*(uint8 *) PageGetItem(page, itemid) != HNSW_NEIGHBOR_TUPLE)
				continue;
			ntup = HnswGetNeighbors(c->index, page, blkno, off, c->m);
			isfree = bsearch(&self, clear, nclear, sizeof(HnswRef),
							 HnswRefCmp) != NULL;
			if (isfree)
			{
				for (int k = 0; k < ntup->nslots && !change; k++)
					change = ItemPointerIsValid(&ntup->slots[k]);
			}
			else
				change = rewrite_tuple(c, ntup, end, false);
			if (!change)
				continue;
			if (state == NULL)
			{
				state = GenericXLogStart(c->index);
				page = GenericXLogRegisterBuffer(state, buf, 0);
			}
			ntup = HnswGetNeighbors(c->index, page, blkno, off, c->m);
			if (isfree)
			{
				for (int k = 0; k < ntup->nslots; k++)
					ItemPointerSetInvalid(&ntup->slots[k]);
			}
			else
				rewrite_tuple(c, ntup, end, true);
		}
		if (state)
			GenericXLogFinish(state);
		UnlockReleaseBuffer(buf);
	}

	if (c->meta.entryBlkno != InvalidBlockNumber)
	{
		HnswRef		entry = HnswRefFromTid(c->meta.entryBlkno, c->meta.entryOffno);
		HnswRef		to = moved_to(c, entry);

		if (to != entry)
		{
			HnswSetEntryPoint(c->index, to, c->meta.entryLevel);
			c->meta.entryBlkno = HnswRefBlock(to);
			c->meta.entryOffno = HnswRefOffset(to);
		}
	}

	/* the old slots: a page per record */
	for (int64 i = 0; i < c->nmoves;)
	{
		BlockNumber blkno = HnswRefBlock(c->moves[i].from);
		Buffer		buf = HnswCompactRead(c, blkno, BUFFER_LOCK_EXCLUSIVE);
		GenericXLogState *state = GenericXLogStart(c->index);
		Page		page = GenericXLogRegisterBuffer(state, buf, 0);

		for (; i < c->nmoves && HnswRefBlock(c->moves[i].from) == blkno; i++)
			HnswGetElement(c->index, page, blkno,
						   HnswRefOffset(c->moves[i].from), c->vecsize)->flags =
				HNSW_ELEMENT_FREE;
		GenericXLogFinish(state);
		UnlockReleaseBuffer(buf);
	}
}

/*
 * Step 3b: a free slot before the end whose neighbor tuple lies past it
 * gets a new, empty neighbor tuple in room on an earlier page, in one
 * record with the slot (the old tuple, named by nothing, goes with its
 * page).
 */
static void
move_slot_tuple(Compactor *c, HnswRef slot, BlockNumber roomblk)
{
	PageSet		ps = {0};
	HnswElementTuple e;
	Page		rpage;
	HnswNeighborTuple ntup;
	Size		nsize;
	OffsetNumber off;

	pageset_add(&ps, HnswRefBlock(slot));
	pageset_add(&ps, roomblk);
	pageset_start(c, &ps, InvalidBlockNumber);
	e = HnswGetElement(c->index, pageset_page(&ps, HnswRefBlock(slot)),
					   HnswRefBlock(slot), HnswRefOffset(slot), c->vecsize);
	if (!(e->flags & HNSW_ELEMENT_FREE))
		elog(ERROR, "hnsw: compaction's free slot at block %u offset %u changed",
			 HnswRefBlock(slot), HnswRefOffset(slot));
	nsize = HNSW_NEIGHBOR_TUPLE_SIZE(e->level, c->m);
	ntup = palloc0(nsize);
	ntup->type = HNSW_NEIGHBOR_TUPLE;
	ntup->nslots = (e->level + 2) * c->m;
	for (int k = 0; k < ntup->nslots; k++)
		ItemPointerSetInvalid(&ntup->slots[k]);
	rpage = pageset_page(&ps, roomblk);
	off = PageAddItem(rpage, (Item) ntup, nsize, InvalidOffsetNumber, false,
					  false);
	if (off == InvalidOffsetNumber)
		elog(ERROR, "hnsw: no room for a neighbor tuple on block %u", roomblk);
	ItemPointerSet(&e->neighbortid, roomblk, off);
	pageset_finish(&ps);
	pfree(ntup);
}

/*
 * Step 3b, first: a free slot that is its page's last line pointer, whose
 * neighbor tuple lies past the end and finds no room before it, goes; its
 * line pointer goes with it, so the page keeps no unused one.  Nothing
 * names a free slot (step 3 renamed the routers).
 */
static void
drop_slot(Compactor *c, HnswRef slot)
{
	PageSet		ps = {0};
	Page		page;
	HnswElementTuple e;

	pageset_add(&ps, HnswRefBlock(slot));
	pageset_start(c, &ps, InvalidBlockNumber);
	page = pageset_page(&ps, HnswRefBlock(slot));
	e = HnswGetElement(c->index, page, HnswRefBlock(slot),
					   HnswRefOffset(slot), c->vecsize);
	if (!(e->flags & HNSW_ELEMENT_FREE) || ItemPointerIsValid(&e->duptid) ||
		HnswRefOffset(slot) != PageGetMaxOffsetNumber(page))
		elog(ERROR, "hnsw: compaction's free slot at block %u offset %u changed",
			 HnswRefBlock(slot), HnswRefOffset(slot));
	PageIndexTupleDeleteNoCompact(page, HnswRefOffset(slot));
	if (PageGetMaxOffsetNumber(page) != HnswRefOffset(slot) - 1)
		elog(ERROR, "hnsw: compaction left an unused line pointer on block %u",
			 HnswRefBlock(slot));
	pageset_finish(&ps);
}

/*
 * Step 4's room: the pages of free slots planned to hold duplicate tuples
 * become empty duplicate pages, a page per record.  Nothing names their
 * slots any more (step 3 cleared free slots' lists).
 */
static void
convert_dup_pages(Compactor *c)
{
	for (BlockNumber blkno = HNSW_METAPAGE_BLKNO + 1; blkno < c->nblocks; blkno++)
	{
		Buffer		buf;
		GenericXLogState *state;
		Page		page;

		if (!c->dupconv[blkno])
			continue;
		buf = HnswCompactRead(c, blkno, BUFFER_LOCK_EXCLUSIVE);
		state = GenericXLogStart(c->index);
		page = GenericXLogRegisterBuffer(state, buf, GENERIC_XLOG_FULL_IMAGE);
		HnswInitPage(page);
		HnswPageGetOpaque(page)->flags |= HNSW_PAGE_DUPLICATES;
		GenericXLogFinish(state);
		UnlockReleaseBuffer(buf);
	}
}

/* The tuple naming duplicate tuple d: an element or a duplicate tuple */
static bool
find_pred(Compactor *c, HnswRef d, HnswRef *pred, bool *predIsElement)
{
	for (int64 i = 0; i < c->nelems; i++)
	{
		if (!c->elems[i].free && c->elems[i].dup == d)
		{
			*pred = c->elems[i].ref;
			*predIsElement = true;
			return true;
		}
	}
	for (int64 i = 0; i < c->ndups; i++)
	{
		if (c->dups[i].used && c->dups[i].next == d)
		{
			*pred = c->dups[i].ref;
			*predIsElement = false;
			return true;
		}
	}
	return false;
}

/*
 * Step 4: a duplicate tuple of a live chain moves to an unused one, or to
 * room on a duplicate page, in one record with the tuple that names it.
 */
static void
move_duplicate(Compactor *c, HnswRef from, HnswRef to)
{
	PageSet		ps = {0};
	HnswRef		pred;
	bool		predIsElement;
	HnswDuplicateTupleData copy;
	HnswDuplicateTuple dtup;
	Buffer		buf;
	CDup	   *d;
	CDup	   *dest;

	if (!find_pred(c, from, &pred, &predIsElement))
		elog(ERROR, "hnsw: compaction lost track of a duplicate tuple");

	/* its content first: the page holds nothing that changes meanwhile */
	buf = HnswCompactRead(c, HnswRefBlock(from), BUFFER_LOCK_SHARE);
	memcpy(&copy, HnswGetDuplicate(c->index, BufferGetPage(buf),
								   HnswRefBlock(from), HnswRefOffset(from)),
		   sizeof(copy));
	UnlockReleaseBuffer(buf);

	pageset_add(&ps, HnswRefBlock(to));
	pageset_add(&ps, HnswRefBlock(pred));
	pageset_start(c, &ps, InvalidBlockNumber);
	if (HnswRefOffset(to) == InvalidOffsetNumber)
	{
		Page		page = pageset_page(&ps, HnswRefBlock(to));
		OffsetNumber off = OffsetNumberNext(PageGetMaxOffsetNumber(page));

		if (PageAddItem(page, (Item) &copy, HNSW_DUPLICATE_TUPLE_SIZE, off,
						false, false) != off)
			elog(ERROR, "hnsw: no room for a duplicate tuple on block %u",
				 HnswRefBlock(to));
		to = HnswRefFromTid(HnswRefBlock(to), off);
	}
	else
	{
		dtup = HnswGetDuplicate(c->index, pageset_page(&ps, HnswRefBlock(to)),
								HnswRefBlock(to), HnswRefOffset(to));
		memcpy(dtup, &copy, sizeof(copy));
	}
	if (predIsElement)
		set_tid(&HnswGetElement(c->index, pageset_page(&ps, HnswRefBlock(pred)),
								HnswRefBlock(pred), HnswRefOffset(pred),
								c->vecsize)->duptid, to);
	else
		set_tid(&HnswGetDuplicate(c->index, pageset_page(&ps, HnswRefBlock(pred)),
								  HnswRefBlock(pred),
								  HnswRefOffset(pred))->next, to);
	pageset_finish(&ps);

	/* the model follows */
	if (predIsElement)
	{
		for (int64 i = 0; i < c->nelems; i++)
			if (c->elems[i].ref == pred)
				c->elems[i].dup = to;
	}
	else
		find_dup(c, pred)->next = to;
	d = find_dup(c, from);
	d->used = false;
	dest = find_dup(c, to);
	if (dest == NULL)
	{
		/* a new tuple: room was made for it in c->dups */
		dest = &c->dups[c->ndups++];
		dest->ref = to;
		qsort(c->dups, c->ndups, sizeof(CDup), cdup_cmp);
		dest = find_dup(c, to);
	}
	dest->next = ref_of(copy.next);
	dest->used = true;
}

/*
 * Duplicate tuples that no chain holds any more must not name a page past
 * end either, a page per record.
 */
static void
clear_unused_dups(Compactor *c, BlockNumber end)
{
	int64		i = 0;

	while (i < c->ndups && HnswRefBlock(c->dups[i].ref) < end)
	{
		BlockNumber blkno = HnswRefBlock(c->dups[i].ref);
		int64		j;
		bool		any = false;

		for (j = i; j < c->ndups && HnswRefBlock(c->dups[j].ref) == blkno; j++)
			any |= !c->dups[j].used && c->dups[j].next != HNSW_INVALID_REF &&
				HnswRefBlock(c->dups[j].next) >= end;
		if (any)
		{
			Buffer		buf = HnswCompactRead(c, blkno, BUFFER_LOCK_EXCLUSIVE);
			GenericXLogState *state = GenericXLogStart(c->index);
			Page		page = GenericXLogRegisterBuffer(state, buf, 0);

			for (int64 k = i; k < j; k++)
			{
				if (c->dups[k].used || c->dups[k].next == HNSW_INVALID_REF ||
					HnswRefBlock(c->dups[k].next) < end)
					continue;
				ItemPointerSetInvalid(&HnswGetDuplicate(c->index, page, blkno,
														HnswRefOffset(c->dups[k].ref))->next);
				c->dups[k].next = HNSW_INVALID_REF;
			}
			GenericXLogFinish(state);
			UnlockReleaseBuffer(buf);
		}
		i = j;
	}
}

typedef struct EndArgs
{
	BlockNumber end;
	BlockNumber insertPage;
	BlockNumber freeHint[HNSW_MAX_LEVEL + 1];
} EndArgs;

static bool
set_end(HnswMetaPage meta, void *arg)
{
	EndArgs    *a = arg;

	meta->insertPage = a->insertPage;
	for (int l = 0; l <= HNSW_MAX_LEVEL; l++)
		meta->freeHint[l] = a->freeHint[l];
	if (meta->dupPage != InvalidBlockNumber && meta->dupPage >= a->end)
		meta->dupPage = InvalidBlockNumber;
	return true;
}

/* Step 5: the metapage forgets the pages past end, which go */
static void
truncate_at(Compactor *c, BlockNumber end)
{
	EndArgs		a;

	a.end = end;
	a.insertPage = InvalidBlockNumber;
	for (BlockNumber b = end; b > HNSW_METAPAGE_BLKNO + 1; b--)
	{
		if (!c->isdup[b - 1])
		{
			a.insertPage = b - 1;
			break;
		}
	}
	for (int l = 0; l <= HNSW_MAX_LEVEL; l++)
		a.freeHint[l] = InvalidBlockNumber;
	for (int64 i = c->nelems - 1; i >= 0; i--)
	{
		if (c->elems[i].free && !c->elems[i].gone &&
			HnswRefBlock(c->elems[i].ref) < end)
			a.freeHint[c->elems[i].level] = HnswRefBlock(c->elems[i].ref);
	}
	HnswModifyMeta(c->index, set_end, &a);
	RelationTruncate(c->index, end);
}

/*
 * One pass of the compaction, under the lock: plan, and carry the plan out
 * if it gives back enough pages.  Returns the pages given back; *again
 * says whether another pass may give back more: a high-level element that
 * found no place before the live ones end (no free slot of its level, no
 * page of free slots only) holds the end where it is, and once this pass
 * has emptied the pages between, a page of them can be rebuilt for it.
 */
static BlockNumber
compact_pass(Relation index, BufferAccessStrategy strategy, int pass,
			 bool *again)
{
	Compactor	c;
	BlockNumber end;
	BlockNumber given = 0;
	BlockNumber goal;
	CPlan		plan;
	MemoryContext cxt;
	MemoryContext old;

	*again = false;
	cxt = AllocSetContextCreate(CurrentMemoryContext, "hnsw compaction",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	memset(&c, 0, sizeof(c));
	c.index = index;
	c.strategy = strategy;
	c.pass = pass;
	HnswReadMeta(index, &c.meta);
	c.vecsize = HnswGetIndexInfo(index)->vecsize;
	c.m = c.meta.m;
	c.nblocks = RelationGetNumberOfBlocks(index);

	if (!HnswCompactPlan(&c, &plan))
		goto done;
	end = plan.end;
	if (c.nblocks - end < Max(HNSW_COMPACT_MIN_PAGES,
							  c.nblocks * HNSW_COMPACT_MIN_FRACTION))
		goto done;				/* not worth it */

	HnswWaitPoint("vacuum_compact_start");
	drop_free_chains(&c);
	for (int64 i = 0; i < c.nmoves && !must_stop(&c); i++)
		if (c.moves[i].rebuild)
			move_element_rebuild(&c, c.moves[i].from, c.moves[i].to);
		else
			move_element(&c, c.moves[i].from, c.moves[i].to);
	if (c.stopped)
		goto done;
	HnswWaitPoint("vacuum_compact_moved");
	qsort(c.moves, c.nmoves, sizeof(CMove), cmove_cmp);
	rewrite_lists(&c, end);
	/* the drops first: the room they leave may be taken by a move */
	for (int64 i = 0; i < plan.nsmoves && !must_stop(&c); i++)
		if (plan.smoves[i].to == HNSW_INVALID_REF)
			drop_slot(&c, plan.smoves[i].from);
	for (int64 i = 0; i < plan.nsmoves && !must_stop(&c); i++)
		if (plan.smoves[i].to != HNSW_INVALID_REF)
			move_slot_tuple(&c, plan.smoves[i].from, HnswRefBlock(plan.smoves[i].to));
	if (c.stopped)
		goto done;
	convert_dup_pages(&c);
	c.dups = repalloc_huge(c.dups, sizeof(CDup) * (c.ndups + plan.ndmoves));
	for (int64 i = 0; i < plan.ndmoves && !must_stop(&c); i++)
		move_duplicate(&c, plan.dmoves[i].from, plan.dmoves[i].to);
	if (c.stopped)
		goto done;
	clear_unused_dups(&c, end);
	truncate_at(&c, end);
	given = c.nblocks - end;
	goal = packed_end(&c);
	*again = end > goal &&
		end - goal >= Max(HNSW_COMPACT_MIN_PAGES, end * HNSW_COMPACT_MIN_FRACTION);

done:
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return given;
}

/*
 * Shrink the index if that gives back enough pages and nobody uses the
 * index: the caller (vacuum) holds no buffer.  Returns the pages given
 * back.
 */
BlockNumber
HnswPageCompact(Relation index, BufferAccessStrategy strategy)
{
	BlockNumber given;
	bool		again;

	if (RelationGetNumberOfBlocks(index) <= HNSW_COMPACT_MIN_PAGES)
		return 0;

	/*
	 * An AccessExclusiveLock is WAL-logged for standbys under that lock's
	 * transaction ID, and a VACUUM that vacuums its indexes in parallel
	 * (PARALLEL, or its default with two or more large indexes) runs in
	 * parallel mode, where no transaction ID can be assigned: taking the
	 * lock would fail the whole VACUUM.  Such a VACUUM leaves compaction
	 * to the next that is not parallel (autovacuum never is).
	 */
	if (IsInParallelMode() && XLogStandbyInfoActive() &&
		!TransactionIdIsValid(GetTopTransactionIdIfAny()))
	{
		elog(DEBUG1, "hnsw compaction of \"%s\": not in a parallel vacuum",
			 RelationGetRelationName(index));
		return 0;
	}
	if (!ConditionalLockRelation(index, AccessExclusiveLock))
	{
		elog(DEBUG1, "hnsw compaction of \"%s\": the index is in use",
			 RelationGetRelationName(index));
		return 0;
	}
	given = compact_pass(index, strategy, 1, &again);
	/* one more pass at most; its plan decides whether it is worth it */
	if (again && !LockHasWaitersRelation(index, AccessExclusiveLock))
		given += compact_pass(index, strategy, 2, &again);
	UnlockRelation(index, AccessExclusiveLock);
	return given;
}
