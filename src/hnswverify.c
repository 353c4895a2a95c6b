/*-------------------------------------------------------------------------
 *
 * hnswverify.c
 *	  hnsw_verify(): walks an hnsw index and checks its invariants.
 *
 * This file owns the SQL function hnsw_verify(index, heapallindexed), the
 * walk over the pages that builds the map of the index (hnswverify.h), and
 * the checks on the pages; the checks on the map (the graph, the chains,
 * reachability, the heap TIDs) are in hnswverifymap.c.  Between them:
 * their own checking of pages and tuples (stricter than
 * the checks on the search path in hnswpage.c, and reporting a damaged
 * index as an error that names the block and offset), the in-memory map of
 * the graph, and the optional heap cross-check.  It reads pages through
 * the page room (hnswpage.h: HnswCopyPage, the formats, HnswPageMaxLevel)
 * but walks them itself rather than through HnswScanElements, because it
 * must see every tuple of every kind and judge a damaged page before any
 * of it is used.
 *
 * How it works.  The pages are read one at a time, each copied out under a
 * share content lock, and checked on the copy: page header, special space,
 * line pointers (inside the page, aligned, not overlapping, together
 * covering the tuple space exactly: our pages only ever append tuples that
 * keep their size for life), then each tuple.  What the later checks need
 * goes into memory: per element its TID, level, flags, heap TIDs and the
 * TIDs of its neighbor tuple and first duplicate tuple; per neighbor
 * tuple its layer-0 list and its upper-layer lists; per duplicate tuple
 * its heap TIDs and the next of its chain.  Duplicate tuples must sit on
 * duplicate pages and nothing else there.  Then, in memory: every element
 * owns exactly one neighbor tuple, of the size its level asks for, and a
 * duplicate chain no other element shares and that does not loop; an
 * element has heap TIDs (its own or its chain's) unless flagged deleted or
 * free, and then has none; every neighbor
 * reference is an element tuple on a valid page, not the element itself,
 * of level >= the layer it is linked on; no heap TID is held twice; the
 * metapage's entry point is an element of exactly the entry level; and,
 * on each layer, a breadth-first walk from the entry point over that
 * layer's links counts the live elements of at least that level it does
 * not reach (layer 0 apart, the layers above summed).  With
 * heapallindexed, every heap row that a snapshot taken before the walk
 * sees, and that the index should hold (a non-NULL vector, not a zero
 * vector under cosine, satisfying a partial index's predicate), must have
 * its TID in some element.
 *
 * Concurrency.  The index is locked in AccessShareLock and its table in
 * ShareUpdateExclusiveLock (on a standby, where that cannot be taken and
 * no VACUUM runs, AccessShareLock): queries, INSERT, UPDATE and DELETE go on, but
 * VACUUM (and ANALYZE, CREATE INDEX CONCURRENTLY) waits, and autovacuum
 * skips the table.  Keeping vacuum out is what makes every report
 * trustworthy: without vacuum, heap TIDs are never removed from elements
 * nor reused by the heap, and no element is unlinked or freed behind our
 * back.  What inserts can still do meanwhile is append elements (to pages
 * already read or pages beyond the block count sampled at the start),
 * merge heap TIDs into existing elements and duplicate tuples, put a new
 * duplicate tuple at the head of a chain, rewrite neighbor lists in
 * place, and reuse an element freed by an earlier vacuum.  So whenever a
 * check fails against the map (a reference to an element or neighbor
 * tuple the map does not have, or whose level is too low), the page in
 * question is read again and the check is made on what is there now; only
 * a failure that stands on the current page is reported.  The entry point
 * is checked on a metapage read under HNSW_UPDATE_LOCK in share mode, so
 * that no insert that raises the top is half done.  Elements added while
 * the walk runs are checked where they are referenced but not counted.
 *
 * Every walk is bounded: line pointers and lengths are checked before a
 * tuple is read, references are range-checked before a page is read, a
 * duplicate chain or a layer's reachability walk visits each tuple at most
 * once.
 *
 * Memory: the map holds about 40 bytes per element, 6 per layer-0 link, 8
 * per upper-layer link and 16 per heap TID (some 250 bytes per element at
 * m = 16), plus 5 per element for the reachability walks (one layer at a
 * time), allocated in a context of its own and freed before returning.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xlog.h"
#include "catalog/index.h"
#include "catalog/pg_class.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "hnswverify.h"

extern PGDLLEXPORT Datum tinyhnsw_hnsw_verify(PG_FUNCTION_ARGS);


/* Growable arrays ---------------------------------------------------------- */



/* Reporting ---------------------------------------------------------------- */

/*
 * Report corruption at a block (and offset, if valid) of the index, with
 * what is wrong as the detail.
 */
void
HnswVerifyCorrupted(VerifyState *vs, BlockNumber blkno, OffsetNumber offno,
					const char *fmt,...)
{
	StringInfoData detail;

	initStringInfo(&detail);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&detail, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&detail, needed);
	}
	if (offno != InvalidOffsetNumber)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" is corrupted at block %u offset %u",
						vs->name, blkno, offno),
				 errdetail_internal("%s", detail.data)));
	else
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" is corrupted at block %u",
						vs->name, blkno),
				 errdetail_internal("%s", detail.data)));
}

/* Pages -------------------------------------------------------------------- */

/*
 * Copy block blkno into vs->page, reading it under a share lock.  Returns
 * false if the relation (looked at again if need be) has no such block.
 */
static bool
read_page(VerifyState *vs, BlockNumber blkno)
{
	if (blkno >= vs->nblocksNow)
	{
		vs->nblocksNow = RelationGetNumberOfBlocks(vs->index);
		if (blkno >= vs->nblocksNow)
			return false;
	}
	HnswCopyPage(vs->index, blkno, vs->strategy, vs->page.data);
	return true;
}

/* Is the whole page zero? */
static bool
page_all_zero(Page page)
{
	for (int i = 0; i < BLCKSZ; i++)
	{
		if (((char *) page)[i] != 0)
			return false;
	}
	return true;
}

/*
 * Check the header and special space of a page copy (metapage or data
 * page) and return its kind: PAGE_NEW for an all-zero page, which a crash
 * between extending the index and initializing the page can leave behind.
 */
static int
check_page_header(VerifyState *vs, Page page, BlockNumber blkno)
{
	uint16		okflags = blkno == HNSW_METAPAGE_BLKNO ? 0 : HNSW_PAGE_DUPLICATES;

	PageHeader	hdr = (PageHeader) page;
	HnswPageOpaque opaque;

	if (PageIsNew(page))
	{
		if (!page_all_zero(page))
			HnswVerifyCorrupted(vs, blkno, InvalidOffsetNumber,
					  "The page header has pd_upper 0, but the page is not all zeros.");
		return PAGE_NEW;
	}
	if (PageGetPageSize(page) != BLCKSZ ||
		PageGetPageLayoutVersion(page) != PG_PAGE_LAYOUT_VERSION ||
		(hdr->pd_flags & ~PD_VALID_FLAG_BITS) != 0)
		HnswVerifyCorrupted(vs, blkno, InvalidOffsetNumber,
				  "The page header has size/version %u and flags 0x%x.",
				  (unsigned) hdr->pd_pagesize_version, hdr->pd_flags);
	if (hdr->pd_special != BLCKSZ - MAXALIGN(sizeof(HnswPageOpaqueData)))
		HnswVerifyCorrupted(vs, blkno, InvalidOffsetNumber,
				  "The special space starts at %u, expected %u.",
				  hdr->pd_special,
				  (unsigned) (BLCKSZ - MAXALIGN(sizeof(HnswPageOpaqueData))));
	if (hdr->pd_lower < SizeOfPageHeaderData || hdr->pd_lower > hdr->pd_upper ||
		hdr->pd_upper > hdr->pd_special ||
		(hdr->pd_lower - SizeOfPageHeaderData) % sizeof(ItemIdData) != 0)
		HnswVerifyCorrupted(vs, blkno, InvalidOffsetNumber,
				  "The page header has pd_lower %u, pd_upper %u, pd_special %u.",
				  hdr->pd_lower, hdr->pd_upper, hdr->pd_special);
	opaque = HnswPageGetOpaque(page);
	if (opaque->page_id != HNSW_PAGE_ID || (opaque->flags & ~okflags) != 0)
		HnswVerifyCorrupted(vs, blkno, InvalidOffsetNumber,
				  "The special space has page id 0x%04x and flags 0x%04x, expected 0x%04x and flags within 0x%04x.",
				  opaque->page_id, opaque->flags, HNSW_PAGE_ID, okflags);
	return (opaque->flags & HNSW_PAGE_DUPLICATES) ? PAGE_DUPLICATES : PAGE_ELEMENTS;
}

/* Order line pointers by where their tuples start */
static int
itemid_cmp(const void *a, const void *b)
{
	const ItemIdData *ia = a;
	const ItemIdData *ib = b;

	return (int) ItemIdGetOffset(ia) - (int) ItemIdGetOffset(ib);
}

/*
 * Check every line pointer of a data page copy: each one used, its tuple
 * aligned and inside the tuple space, and the tuples, end to end, filling
 * the tuple space [pd_upper, pd_special) exactly (tuples are only ever
 * appended, and never shrink or go away).
 */
static void
check_line_pointers(VerifyState *vs, Page page, BlockNumber blkno)
{
	PageHeader	hdr = (PageHeader) page;
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
	ItemIdData	sorted[MaxOffsetNumber];
	unsigned	pos;

	for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
	{
		ItemId		itemid = PageGetItemId(page, off);
		unsigned	start = ItemIdGetOffset(itemid);
		unsigned	len = ItemIdGetLength(itemid);

		if (!ItemIdIsNormal(itemid))
			HnswVerifyCorrupted(vs, blkno, off, "The line pointer has flags %u, expected %u (normal).",
					  itemid->lp_flags, LP_NORMAL);
		if (len == 0 || start != MAXALIGN(start) || start < hdr->pd_upper ||
			start + len > hdr->pd_special)
			HnswVerifyCorrupted(vs, blkno, off,
					  "The line pointer points to %u bytes at %u, outside the tuple space [%u, %u) or unaligned.",
					  len, start, hdr->pd_upper, hdr->pd_special);
		sorted[off - 1] = *itemid;
	}
	qsort(sorted, maxoff, sizeof(ItemIdData), itemid_cmp);
	pos = hdr->pd_upper;
	for (int i = 0; i < maxoff; i++)
	{
		if (ItemIdGetOffset(&sorted[i]) != pos)
			HnswVerifyCorrupted(vs, blkno, InvalidOffsetNumber,
					  "The tuples do not fill the tuple space: one starts at %u where %u was expected.",
					  ItemIdGetOffset(&sorted[i]), pos);
		pos += MAXALIGN(ItemIdGetLength(&sorted[i]));
	}
	if (pos != hdr->pd_special)
		HnswVerifyCorrupted(vs, blkno, InvalidOffsetNumber,
				  "The tuples end at %u, not at the special space (%u).",
				  pos, hdr->pd_special);
}

/* Tuples ------------------------------------------------------------------- */

/* Is a TID the invalid TID that writers store in unused slots? */
static inline bool
tid_is_unused(ItemPointer tid)
{
	return ItemPointerGetBlockNumberNoCheck(tid) == InvalidBlockNumber &&
		ItemPointerGetOffsetNumberNoCheck(tid) == InvalidOffsetNumber;
}

/* Is a TID a possible heap TID? */
static inline bool
heap_tid_ok(ItemPointer tid)
{
	return ItemPointerGetBlockNumberNoCheck(tid) != InvalidBlockNumber &&
		ItemPointerGetOffsetNumberNoCheck(tid) >= FirstOffsetNumber &&
		ItemPointerGetOffsetNumberNoCheck(tid) <= MaxHeapTuplesPerPage;
}

/*
 * Heap TID slots of an element or duplicate tuple: the first nused hold
 * valid heap TIDs, the rest are unused.
 */
static void
check_heaptid_slots(VerifyState *vs, BlockNumber blkno, OffsetNumber off,
					ItemPointerData *tids, int nslots, int nused)
{
	for (int t = 0; t < nslots; t++)
	{
		ItemPointer tid = &tids[t];

		if (t < nused ? !heap_tid_ok(tid) : !tid_is_unused(tid))
			HnswVerifyCorrupted(vs, blkno, off,
					  "Heap TID slot %d of %d in use holds (%u,%u).",
					  t, nused, ItemPointerGetBlockNumberNoCheck(tid),
					  ItemPointerGetOffsetNumberNoCheck(tid));
	}
}

/* Does a TID name a possible tuple of an index page? */
static bool
index_tid_ok(VerifyState *vs, ItemPointer tid)
{
	BlockNumber blk = ItemPointerGetBlockNumberNoCheck(tid);
	OffsetNumber off = ItemPointerGetOffsetNumberNoCheck(tid);

	if (blk == HNSW_METAPAGE_BLKNO || blk == InvalidBlockNumber ||
		off < FirstOffsetNumber || off > MaxOffsetNumber)
		return false;
	if (blk >= vs->nblocksNow)
		vs->nblocksNow = RelationGetNumberOfBlocks(vs->index);
	return blk < vs->nblocksNow;
}

/*
 * Check the element tuple at an offset of a page copy whose line pointers
 * are known to be sound, and return it.
 */
static HnswElementTuple
check_element(VerifyState *vs, Page page, BlockNumber blkno, OffsetNumber off)
{
	ItemId		itemid = PageGetItemId(page, off);
	HnswElementTuple etup = (HnswElementTuple) PageGetItem(page, itemid);
	bool		gone;
	char	   *bad;

	if (ItemIdGetLength(itemid) != HNSW_ELEMENT_TUPLE_SIZE(vs->vecsize))
		HnswVerifyCorrupted(vs, blkno, off,
				  "The element tuple is %u bytes long, expected %zu for %d dimensions.",
				  ItemIdGetLength(itemid), HNSW_ELEMENT_TUPLE_SIZE(vs->vecsize),
				  vs->dim);
	if (etup->level > vs->maxLevel)
		HnswVerifyCorrupted(vs, blkno, off,
				  "The element has level %u, above the highest possible (%d).",
				  etup->level, vs->maxLevel);
	if ((etup->flags & ~HNSW_KNOWN_ELEMENT_FLAGS) != 0)
		HnswVerifyCorrupted(vs, blkno, off, "The element has unknown flags 0x%02x.",
				  etup->flags);
	gone = (etup->flags & HNSW_KNOWN_ELEMENT_FLAGS) != 0;
	/* vacuum may leave a live element only its chain's heap TIDs */
	if (etup->ntids > HNSW_HEAPTIDS || (gone && etup->ntids != 0) ||
		(!gone && etup->ntids == 0 && tid_is_unused(&etup->duptid)))
		HnswVerifyCorrupted(vs, blkno, off,
				  "The element has %u heap TIDs and flags 0x%02x.",
				  etup->ntids, etup->flags);
	check_heaptid_slots(vs, blkno, off, etup->heaptids, HNSW_HEAPTIDS,
						etup->ntids);
	if (!index_tid_ok(vs, &etup->neighbortid))
		HnswVerifyCorrupted(vs, blkno, off,
				  "The element's neighbor tuple TID (%u,%u) is not a valid index TID.",
				  ItemPointerGetBlockNumberNoCheck(&etup->neighbortid),
				  ItemPointerGetOffsetNumberNoCheck(&etup->neighbortid));
	else if (ItemPointerGetBlockNumber(&etup->neighbortid) < blkno)
		HnswVerifyCorrupted(vs, blkno, off,
				  "The element's neighbor tuple is on block %u, before the element's (lock order rule 7).",
				  ItemPointerGetBlockNumber(&etup->neighbortid));
	if (!tid_is_unused(&etup->duptid) && !index_tid_ok(vs, &etup->duptid))
		HnswVerifyCorrupted(vs, blkno, off,
				  "The element's duplicate tuple TID (%u,%u) is not a valid index TID.",
				  ItemPointerGetBlockNumberNoCheck(&etup->duptid),
				  ItemPointerGetOffsetNumberNoCheck(&etup->duptid));
	if (etup->unused != 0)
		HnswVerifyCorrupted(vs, blkno, off, "The element's padding is 0x%04x, not 0.",
				  etup->unused);
	bad = vs->format->check(etup->vec, vs->dim, vs->normalized);
	if (bad)
		HnswVerifyCorrupted(vs, blkno, off, "%s", bad);
	return etup;
}

/*
 * Check the neighbor tuple at an offset of a page copy whose line
 * pointers are known to be sound, and return it.  Each layer's list must
 * be packed at the front of its slots, every entry a valid index TID, no
 * entry twice.
 */
static HnswNeighborTuple
check_neighbors(VerifyState *vs, Page page, BlockNumber blkno,
				 OffsetNumber off)
{
	ItemId		itemid = PageGetItemId(page, off);
	HnswNeighborTuple ntup = (HnswNeighborTuple) PageGetItem(page, itemid);
	int			level;

	if (ItemIdGetLength(itemid) < offsetof(HnswNeighborTupleData, slots))
		HnswVerifyCorrupted(vs, blkno, off, "The neighbor tuple is only %u bytes long.",
				  ItemIdGetLength(itemid));
	level = ntup->nslots / vs->m - 2;
	if (ntup->nslots % vs->m != 0 || level < 0 || level > vs->maxLevel)
		HnswVerifyCorrupted(vs, blkno, off,
				  "The neighbor tuple has %u slots, not (level + 2) * m for m = %d and a level from 0 to %d.",
				  ntup->nslots, vs->m, vs->maxLevel);
	if (ItemIdGetLength(itemid) != HNSW_NEIGHBOR_TUPLE_SIZE(level, vs->m))
		HnswVerifyCorrupted(vs, blkno, off,
				  "The neighbor tuple is %u bytes long, expected %zu for %u slots.",
				  ItemIdGetLength(itemid),
				  HNSW_NEIGHBOR_TUPLE_SIZE(level, vs->m), ntup->nslots);
	if (ntup->unused != 0)
		HnswVerifyCorrupted(vs, blkno, off, "The neighbor tuple's padding is 0x%02x, not 0.",
				  ntup->unused);
	for (int layer = 0; layer <= level; layer++)
	{
		int			start = HnswLayerStart(vs->m, layer);
		int			cap = HnswLayerCapacity(vs->m, layer);
		bool		ended = false;

		for (int i = 0; i < cap; i++)
		{
			ItemPointer tid = &ntup->slots[start + i];

			if (tid_is_unused(tid))
			{
				ended = true;
				continue;
			}
			if (ended)
				HnswVerifyCorrupted(vs, blkno, off,
						  "Layer %d's list has an entry after its end (slot %d).",
						  layer, i);
			if (!index_tid_ok(vs, tid))
				HnswVerifyCorrupted(vs, blkno, off,
						  "Layer %d's list holds (%u,%u), which is not a valid index TID.",
						  layer, ItemPointerGetBlockNumberNoCheck(tid),
						  ItemPointerGetOffsetNumberNoCheck(tid));
			for (int j = 0; j < i; j++)
			{
				if (ItemPointerEquals(tid, &ntup->slots[start + j]))
					HnswVerifyCorrupted(vs, blkno, off,
							  "Layer %d's list holds (%u,%u) twice.", layer,
							  ItemPointerGetBlockNumber(tid),
							  ItemPointerGetOffsetNumber(tid));
			}
		}
	}
	return ntup;
}

/*
 * Check the duplicate tuple at an offset of a page copy whose line
 * pointers are known to be sound, and return it.
 */
static HnswDuplicateTuple
check_duplicate(VerifyState *vs, Page page, BlockNumber blkno,
				OffsetNumber off)
{
	ItemId		itemid = PageGetItemId(page, off);
	HnswDuplicateTuple dtup = (HnswDuplicateTuple) PageGetItem(page, itemid);

	if (ItemIdGetLength(itemid) != HNSW_DUPLICATE_TUPLE_SIZE)
		HnswVerifyCorrupted(vs, blkno, off,
				  "The duplicate tuple is %u bytes long, expected %zu.",
				  ItemIdGetLength(itemid), (Size) HNSW_DUPLICATE_TUPLE_SIZE);
	if (dtup->ntids > HNSW_DUPLICATE_TIDS || dtup->unused != 0)
		HnswVerifyCorrupted(vs, blkno, off,
				  "The duplicate tuple has %u heap TIDs and padding 0x%02x.",
				  dtup->ntids, dtup->unused);
	check_heaptid_slots(vs, blkno, off, dtup->heaptids, HNSW_DUPLICATE_TIDS,
						dtup->ntids);
	if (!tid_is_unused(&dtup->next) && !index_tid_ok(vs, &dtup->next))
		HnswVerifyCorrupted(vs, blkno, off,
				  "The next duplicate tuple TID (%u,%u) is not a valid index TID.",
				  ItemPointerGetBlockNumberNoCheck(&dtup->next),
				  ItemPointerGetOffsetNumberNoCheck(&dtup->next));
	return dtup;
}

/* Keep a checked duplicate tuple in memory; returns its index */
static int64
record_duplicate(VerifyState *vs, HnswDuplicateTuple dtup, HnswRef ref)
{
	VDup	   *d = varray_push(&vs->dups);

	d->ref = ref;
	d->next = tid_is_unused(&dtup->next) ? HNSW_INVALID_REF :
		HnswRefFromItemPointer(&dtup->next);
	d->tidstart = vs->duptids.count;
	d->ntids = dtup->ntids;
	d->chained = false;
	for (int t = 0; t < dtup->ntids; t++)
		*(ItemPointerData *) varray_push(&vs->duptids) = dtup->heaptids[t];
	return vs->dups.count - 1;
}

/* Keep a checked neighbor tuple's lists in memory; returns its index */
static int64
record_neighbors(VerifyState *vs, HnswNeighborTuple ntup, HnswRef ref)
{
	VNtup	   *v = varray_push(&vs->ntups);
	int			level = ntup->nslots / vs->m - 2;

	v->ref = ref;
	v->owner = -1;
	v->nslots = ntup->nslots;
	v->l0start = vs->l0.count;
	v->upstart = vs->up.count;
	for (int layer = 0; layer <= level; layer++)
	{
		int			start = HnswLayerStart(vs->m, layer);
		int			cap = HnswLayerCapacity(vs->m, layer);

		for (int i = 0; i < cap && !tid_is_unused(&ntup->slots[start + i]); i++)
		{
			if (layer == 0)
				*(ItemPointerData *) varray_push(&vs->l0) = ntup->slots[start + i];
			else
			{
				VUpRef	   *u = varray_push(&vs->up);

				u->tid = ntup->slots[start + i];
				u->layer = layer;
			}
		}
	}
	v->l0count = vs->l0.count - v->l0start;
	v->upcount = vs->up.count - v->upstart;
	return vs->ntups.count - 1;
}

/* The metapage ------------------------------------------------------------- */

/* Read and check the metapage; *meta gets a copy */
static void
check_metapage(VerifyState *vs, HnswMetaPageData *meta)
{
	Page		page = vs->page.data;
	PageHeader	hdr = (PageHeader) page;
	HnswMetaPage m;
	int			typmod;
	int			maxdim;

	if (!read_page(vs, HNSW_METAPAGE_BLKNO))
		HnswVerifyCorrupted(vs, HNSW_METAPAGE_BLKNO, InvalidOffsetNumber,
				  "The index has no metapage.");
	if (check_page_header(vs, page, HNSW_METAPAGE_BLKNO) == PAGE_NEW)
		HnswVerifyCorrupted(vs, HNSW_METAPAGE_BLKNO, InvalidOffsetNumber,
				  "The metapage is all zeros.");
	m = HnswPageGetMeta(page);
	if (hdr->pd_lower != (char *) m + sizeof(HnswMetaPageData) - (char *) page ||
		hdr->pd_upper != hdr->pd_special)
		HnswVerifyCorrupted(vs, HNSW_METAPAGE_BLKNO, InvalidOffsetNumber,
				  "The metapage header has pd_lower %u and pd_upper %u.",
				  hdr->pd_lower, hdr->pd_upper);
	if (m->magic != HNSW_MAGIC_NUMBER)
		HnswVerifyCorrupted(vs, HNSW_METAPAGE_BLKNO, InvalidOffsetNumber,
				  "The metapage has magic number 0x%08x, expected 0x%08x.",
				  m->magic, HNSW_MAGIC_NUMBER);
	if (m->version != HNSW_FORMAT_VERSION)
		HnswVerifyCorrupted(vs, HNSW_METAPAGE_BLKNO, InvalidOffsetNumber,
				  "The metapage has format version %u, expected %u.",
				  m->version, HNSW_FORMAT_VERSION);
	/*
	 * ALTER COLUMN ... TYPE vector drops the column's dimensions and keeps
	 * the index: the metapage's are then the only ones, and need only be
	 * possible.
	 */
	typmod = TupleDescAttr(RelationGetDescr(vs->index), 0)->atttypmod;
	maxdim = HnswGetMetric(vs->index)->format->maxDimensions;
	if (m->dimensions < 1 || m->dimensions > maxdim ||
		(typmod >= 0 && (int64) m->dimensions != typmod))
		HnswVerifyCorrupted(vs, HNSW_METAPAGE_BLKNO, InvalidOffsetNumber,
				  "The metapage has %u dimensions, but the indexed column has %d (at most %d).",
				  m->dimensions, typmod, maxdim);
	if (m->m < HNSW_MIN_M || m->m > HNSW_MAX_M ||
		m->efConstruction < HNSW_MIN_EF_CONSTRUCTION ||
		m->efConstruction > HNSW_MAX_EF_CONSTRUCTION)
		HnswVerifyCorrupted(vs, HNSW_METAPAGE_BLKNO, InvalidOffsetNumber,
				  "The metapage has m %u and ef_construction %u, out of range.",
				  m->m, m->efConstruction);
	if (m->entryLevel == -1 ?
		(m->entryBlkno != InvalidBlockNumber ||
		 m->entryOffno != InvalidOffsetNumber) :
		(m->entryLevel < 0 || m->entryLevel > HNSW_MAX_LEVEL ||
		 m->entryBlkno == HNSW_METAPAGE_BLKNO ||
		 m->entryBlkno == InvalidBlockNumber ||
		 m->entryOffno < FirstOffsetNumber || m->entryOffno > MaxOffsetNumber))
		HnswVerifyCorrupted(vs, HNSW_METAPAGE_BLKNO, InvalidOffsetNumber,
				  "The metapage names entry point (%u,%u) at level %d.",
				  m->entryBlkno, m->entryOffno, m->entryLevel);
	if (m->insertPage != InvalidBlockNumber &&
		(m->insertPage == HNSW_METAPAGE_BLKNO ||
		 m->insertPage >= RelationGetNumberOfBlocks(vs->index)))
		HnswVerifyCorrupted(vs, HNSW_METAPAGE_BLKNO, InvalidOffsetNumber,
				  "The metapage names insert page %u, not a data page of the index.",
				  m->insertPage);
	if (m->dupPage != InvalidBlockNumber &&
		(m->dupPage == HNSW_METAPAGE_BLKNO ||
		 m->dupPage >= RelationGetNumberOfBlocks(vs->index)))
		HnswVerifyCorrupted(vs, HNSW_METAPAGE_BLKNO, InvalidOffsetNumber,
				  "The metapage names duplicate page %u, not a data page of the index.",
				  m->dupPage);
	for (int l = 0; l <= HNSW_MAX_LEVEL; l++)
	{
		if (m->freeHint[l] != InvalidBlockNumber &&
			(m->freeHint[l] == HNSW_METAPAGE_BLKNO ||
			 m->freeHint[l] >= RelationGetNumberOfBlocks(vs->index)))
			HnswVerifyCorrupted(vs, HNSW_METAPAGE_BLKNO, InvalidOffsetNumber,
					  "The metapage's free slot hint for level %d is block %u, not a data page of the index.",
					  l, m->freeHint[l]);
	}
	*meta = *m;
}

/* The walk ----------------------------------------------------------------- */

/* Check one data page copy and record what it holds */
static void
walk_page(VerifyState *vs, BlockNumber blkno)
{
	Page		page = vs->page.data;
	OffsetNumber maxoff;

	int			kind;

	vs->elemStart[blkno] = vs->elems.count;
	vs->ntupStart[blkno] = vs->ntups.count;
	vs->dupStart[blkno] = vs->dups.count;
	kind = vs->pageKind[blkno] = check_page_header(vs, page, blkno);
	if (kind == PAGE_NEW)
		return;
	check_line_pointers(vs, page, blkno);
	maxoff = PageGetMaxOffsetNumber(page);
	for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
	{
		uint8		type = *(uint8 *) PageGetItem(page, PageGetItemId(page, off));
		HnswRef		ref = HnswRefFromTid(blkno, off);

		if ((type == HNSW_DUPLICATE_TUPLE) != (kind == PAGE_DUPLICATES))
			HnswVerifyCorrupted(vs, blkno, off,
					  "A tuple of type %u is on a page %s duplicate tuples.", type,
					  kind == PAGE_DUPLICATES ? "for" : "not for");
		if (type == HNSW_DUPLICATE_TUPLE)
			record_duplicate(vs, check_duplicate(vs, page, blkno, off), ref);
		else if (type == HNSW_ELEMENT_TUPLE)
		{
			HnswElementTuple etup = check_element(vs, page, blkno, off);
			VElem	   *e = varray_push(&vs->elems);

			e->ref = ref;
			e->ntid = HnswRefFromItemPointer(&etup->neighbortid);
			e->duptid = tid_is_unused(&etup->duptid) ? HNSW_INVALID_REF :
				HnswRefFromItemPointer(&etup->duptid);
			e->ntup = -1;
			e->level = etup->level;
			e->flags = etup->flags;
			e->ntids = etup->ntids;
			for (int t = 0; t < etup->ntids; t++)
			{
				VHeapTid   *h = varray_push(&vs->heaptids);

				h->tid = etup->heaptids[t];
				h->elem = vs->elems.count - 1;
			}
			if (etup->flags & HNSW_KNOWN_ELEMENT_FLAGS)
				vs->deleted++;
			else
				vs->maxLevelSeen = Max(vs->maxLevelSeen, etup->level);
		}
		else if (type == HNSW_NEIGHBOR_TUPLE)
			record_neighbors(vs, check_neighbors(vs, page, blkno, off), ref);
		else
			HnswVerifyCorrupted(vs, blkno, off, "The tuple has type %u, not %u (element), %u (neighbors) or %u (duplicates).",
					  type, HNSW_ELEMENT_TUPLE, HNSW_NEIGHBOR_TUPLE,
					  HNSW_DUPLICATE_TUPLE);
	}
}

/*
 * Read the tuple at ref again, as it is now: the tuple of the wanted type
 * there (checked, and remembered in the late map), or NULL if there is no
 * such tuple.  The caller reports the absence, naming the reference that
 * led here.
 */
VLate *
HnswVerifyReread(VerifyState *vs, HnswRef ref, uint8 want)
{
	BlockNumber blkno = HnswRefBlock(ref);
	OffsetNumber off = HnswRefOffset(ref);
	Page		page = vs->page.data;
	int			kind;
	uint8		type;
	VLate	   *late;
	bool		found;

	if (!read_page(vs, blkno))
		return NULL;
	kind = check_page_header(vs, page, blkno);
	if (kind == PAGE_NEW ||
		(kind == PAGE_DUPLICATES) != (want == HNSW_DUPLICATE_TUPLE))
		return NULL;
	check_line_pointers(vs, page, blkno);
	if (off < FirstOffsetNumber || off > PageGetMaxOffsetNumber(page))
		return NULL;
	type = *(uint8 *) PageGetItem(page, PageGetItemId(page, off));
	if (type != want)
		return NULL;
	late = hash_search(vs->late, &ref, HASH_ENTER, &found);
	if (found && late->type == want && want != HNSW_ELEMENT_TUPLE)
		return late;			/* tuples other than elements keep their place */
	late->type = want;
	late->index = -1;
	if (want == HNSW_ELEMENT_TUPLE)
	{
		HnswElementTuple etup = check_element(vs, page, blkno, off);

		late->level = etup->level;
		late->flags = etup->flags;
	}
	else if (want == HNSW_NEIGHBOR_TUPLE)
		late->index = record_neighbors(vs, check_neighbors(vs, page, blkno, off),
										ref);
	else
		late->index = record_duplicate(vs, check_duplicate(vs, page, blkno, off),
									   ref);
	return late;
}

/*
 * Check the entry point on a metapage read under HNSW_UPDATE_LOCK in share
 * mode: no insert that raises the top can be half done then (hnswpage.h,
 * rule 2).  The entry point must be an element of exactly the entry level.
 */
void
HnswVerifyEntry(VerifyState *vs, HnswMetaPageData *meta)
{
	HnswRef		entry;
	int			level;

	LockPage(vs->index, HNSW_UPDATE_LOCK, ShareLock);
	check_metapage(vs, meta);
	UnlockPage(vs->index, HNSW_UPDATE_LOCK, ShareLock);
	vs->entryLevel = meta->entryLevel;
	/* pages never change kind: the duplicate page cannot be an element page */
	if (meta->dupPage != InvalidBlockNumber && meta->dupPage < vs->nblocks &&
		vs->pageKind[meta->dupPage] == PAGE_ELEMENTS)
		HnswVerifyCorrupted(vs, HNSW_METAPAGE_BLKNO, InvalidOffsetNumber,
				  "The metapage names block %u as the duplicate page, but it holds elements.",
				  meta->dupPage);
	if (meta->entryLevel < 0)
		return;
	entry = HnswRefFromTid(meta->entryBlkno, meta->entryOffno);
	level = HnswVerifyElementLevel(vs, entry, false);
	if (level != meta->entryLevel)
		level = HnswVerifyElementLevel(vs, entry, true);
	if (level < 0)
		HnswVerifyCorrupted(vs, HNSW_METAPAGE_BLKNO, InvalidOffsetNumber,
				  "The entry point (%u,%u) is not an element tuple.",
				  meta->entryBlkno, meta->entryOffno);
	if (level != meta->entryLevel)
		HnswVerifyCorrupted(vs, HNSW_METAPAGE_BLKNO, InvalidOffsetNumber,
				  "The entry point (%u,%u) has level %d, but the metapage says %d.",
				  meta->entryBlkno, meta->entryOffno, level, meta->entryLevel);
}

/*
 * The neighbor tuple of an entry point that the walk did not see (an
 * insert made it the entry point meanwhile), read once more, or NULL.
 */
VNtup *
HnswVerifyLateEntry(VerifyState *vs, HnswRef entry)
{
	VLate	   *late = hash_search(vs->late, &entry, HASH_FIND, NULL);
	Page		page = vs->page.data;
	BlockNumber blkno = HnswRefBlock(entry);
	HnswElementTuple etup;
	VLate	   *lnt;

	if (late == NULL || late->type != HNSW_ELEMENT_TUPLE ||
		!read_page(vs, blkno))
		return NULL;
	check_page_header(vs, page, blkno);
	check_line_pointers(vs, page, blkno);
	etup = check_element(vs, page, blkno, HnswRefOffset(entry));
	lnt = HnswVerifyReread(vs, HnswRefFromItemPointer(&etup->neighbortid),
				 HNSW_NEIGHBOR_TUPLE);
	return lnt != NULL ? VITEM(vs->ntups, VNtup, lnt->index) : NULL;
}

/* The SQL function --------------------------------------------------------- */

/*
 * The lock on the table: ShareUpdateExclusiveLock keeps VACUUM from moving
 * heap TIDs and freeing elements under the walk, while queries and writes
 * go on.  A standby cannot take it, but no VACUUM runs there either; what
 * replay changes meanwhile, the walk's second look at a suspicious page
 * sorts out, as for concurrent inserts on a primary.
 */
static LOCKMODE
heap_lockmode(void)
{
	return RecoveryInProgress() ? AccessShareLock : ShareUpdateExclusiveLock;
}

/*
 * Open the index and its table for verification, checking privileges
 * before taking any lock that could make others wait.
 */
static void
open_relations(Oid indrelid, Relation *heap, Relation *index)
{
	Oid			heapid = IndexGetRelation(indrelid, true);

	*heap = NULL;
	if (OidIsValid(heapid))
	{
		AclResult	aclresult = pg_class_aclcheck(heapid, GetUserId(), ACL_SELECT);

		if (aclresult != ACLCHECK_OK)
			aclcheck_error(aclresult, OBJECT_TABLE, get_rel_name(heapid));
		*heap = table_open(heapid, heap_lockmode());
	}
	/* index_open rejects anything but an index */
	*index = index_open(indrelid, AccessShareLock);
	if (*heap == NULL || heapid != IndexGetRelation(indrelid, false))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("could not open the table of index \"%s\"",
						RelationGetRelationName(*index))));
	if ((*index)->rd_rel->relkind == RELKIND_PARTITIONED_INDEX)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot verify partitioned index \"%s\"",
						RelationGetRelationName(*index)),
				 errhint("Verify the index of each partition.")));
	if ((*index)->rd_rel->relkind != RELKIND_INDEX ||
		(*index)->rd_indam->ambuild != hnswbuild)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an hnsw index",
						RelationGetRelationName(*index))));
	if (RELATION_IS_OTHER_TEMP(*index))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot verify temporary indexes of other sessions")));
}

/*
 * hnsw_verify(index regclass, heapallindexed boolean DEFAULT false): check
 * the index (see the top of this file); error out on the first problem,
 * else return one row: pages, elements, heap_tids, deleted, entry_level,
 * max_level, unreachable, unreachable_upper.
 */
PG_FUNCTION_INFO_V1(tinyhnsw_hnsw_verify);
Datum
tinyhnsw_hnsw_verify(PG_FUNCTION_ARGS)
{
	Oid			indrelid = PG_GETARG_OID(0);
	bool		heapallindexed = PG_GETARG_BOOL(1);
	TupleDesc	tupdesc;
	Datum		values[8];
	bool		nulls[8] = {0};
	Relation	heap;
	Relation	index;
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	Snapshot	snapshot = NULL;
	MemoryContext cxt;
	MemoryContext old;
	VerifyState *vs;
	HnswMetaPageData meta;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	open_relations(indrelid, &heap, &index);

	/* index expressions and predicates run as the table's owner */
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(heap->rd_rel->relowner,
						   save_sec_context | SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();

	cxt = AllocSetContextCreate(CurrentMemoryContext, "hnsw_verify",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);

	vs = palloc0(sizeof(VerifyState));
	vs->index = index;
	vs->heap = heap;
	vs->name = RelationGetRelationName(index);
	vs->maxLevelSeen = -1;
	vs->strategy = GetAccessStrategy(BAS_BULKREAD);
	vs->nblocksNow = RelationGetNumberOfBlocks(index);

	if (heapallindexed)
	{
		if (!index->rd_index->indisvalid)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot check the heap against index \"%s\", which is not valid",
							vs->name),
					 errhint("Run hnsw_verify without heapallindexed, or REINDEX.")));
		/* taken before the walk: what it sees is in the index by then */
		snapshot = RegisterSnapshot(GetTransactionSnapshot());
		if (index->rd_index->indcheckxmin &&
			!TransactionIdPrecedes(HeapTupleHeaderGetXmin(index->rd_indextuple->t_data),
								   snapshot->xmin))
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("index \"%s\" is too new to be checked against the heap with this snapshot",
							vs->name),
					 errhint("Retry in a new transaction.")));
	}

	/* the metapage fixes dimensions and m for the whole walk */
	check_metapage(vs, &meta);
	vs->dim = meta.dimensions;
	vs->m = meta.m;
	vs->maxLevel = HnswPageMaxLevel(vs->m);
	vs->normalized = HnswGetIndexInfo(index)->metric->normalize;
	vs->format = HnswGetMetric(index)->format;
	vs->vecsize = vs->format->size(vs->dim);

	vs->nblocks = RelationGetNumberOfBlocks(index);
	vs->nblocksNow = vs->nblocks;
	varray_init(&vs->elems, sizeof(VElem));
	varray_init(&vs->ntups, sizeof(VNtup));
	varray_init(&vs->l0, sizeof(ItemPointerData));
	varray_init(&vs->up, sizeof(VUpRef));
	varray_init(&vs->dups, sizeof(VDup));
	varray_init(&vs->duptids, sizeof(ItemPointerData));
	varray_init(&vs->heaptids, sizeof(VHeapTid));
	vs->elemStart = palloc_extended(sizeof(int64) * vs->nblocks, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	vs->ntupStart = palloc_extended(sizeof(int64) * vs->nblocks, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	vs->dupStart = palloc_extended(sizeof(int64) * vs->nblocks, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	vs->pageKind = palloc_extended(vs->nblocks, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(HnswRef);
		ctl.entrysize = sizeof(VLate);
		ctl.hcxt = cxt;
		vs->late = hash_create("hnsw_verify late tuples", 64, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}

	for (BlockNumber blkno = HNSW_METAPAGE_BLKNO + 1; blkno < vs->nblocks; blkno++)
	{
		CHECK_FOR_INTERRUPTS();
		read_page(vs, blkno);
		walk_page(vs, blkno);
	}
	vs->nwalkNtups = vs->ntups.count;
	vs->nwalkDups = vs->dups.count;

	HnswVerifyGraph(vs);
	HnswVerifyChains(vs);
	HnswVerifyEntry(vs, &meta);
	HnswVerifyReachability(vs, &meta);
	HnswVerifyHeapTids(vs);
	if (heapallindexed)
	{
		HnswVerifyHeapRows(vs, snapshot);
		UnregisterSnapshot(snapshot);
	}

	values[0] = Int64GetDatum((int64) vs->nblocks);
	values[1] = Int64GetDatum(vs->elems.count);
	values[2] = Int64GetDatum(vs->heaptids.count);
	values[3] = Int64GetDatum(vs->deleted);
	values[4] = Int32GetDatum(vs->entryLevel);
	values[5] = Int32GetDatum(vs->maxLevelSeen);
	values[6] = Int64GetDatum(vs->unreachable);
	values[7] = Int64GetDatum(vs->unreachableUpper);

	FreeAccessStrategy(vs->strategy);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);

	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	index_close(index, AccessShareLock);
	table_close(heap, heap_lockmode());

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
