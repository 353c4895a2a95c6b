/*-------------------------------------------------------------------------
 *
 * hnswverifymap.c
 *	  hnsw_verify()'s checks on the map the page walk built (hnswverify.h):
 *	  every element owns one neighbor tuple of its level's size and a
 *	  duplicate chain of its own; every reference names an element of a
 *	  high enough level; layer by layer, the live elements a walk from the
 *	  entry point does not reach; no heap TID held twice; and, with
 *	  heapallindexed, every row the index should hold is in it.  A check
 *	  that fails against the map is made again on the page as it is now
 *	  (inserts go on meanwhile): see hnswverify.c.
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

/* Index of ref among the refs of block's range of a walk array, or -1 */
static int64
find_in_walk(VerifyState *vs, const int64 *start, const VArray *a,
			 int64 nwalk, HnswRef ref)
{
	BlockNumber blkno = HnswRefBlock(ref);
	int64		lo;
	int64		hi;

	if (blkno == HNSW_METAPAGE_BLKNO || blkno >= vs->nblocks)
		return -1;
	lo = start[blkno];
	hi = (blkno + 1 < vs->nblocks ? start[blkno + 1] : nwalk) - 1;
	while (lo <= hi)
	{
		int64		mid = lo + (hi - lo) / 2;
		HnswRef		r = *(HnswRef *) (a->items + a->itemsize * mid);

		if (r == ref)
			return mid;
		if (r < ref)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/* Index of the walk's element at ref, or -1 */
int64
HnswVerifyFindElem(VerifyState *vs, HnswRef ref)
{
	return find_in_walk(vs, vs->elemStart, &vs->elems, vs->elems.count, ref);
}

/* Index of the walk's neighbor tuple at ref, or -1 */
int64
HnswVerifyFindNtup(VerifyState *vs, HnswRef ref)
{
	return find_in_walk(vs, vs->ntupStart, &vs->ntups, vs->nwalkNtups, ref);
}

/* Index of the walk's duplicate tuple at ref, or -1 */
int64
HnswVerifyFindDup(VerifyState *vs, HnswRef ref)
{
	return find_in_walk(vs, vs->dupStart, &vs->dups, vs->nwalkDups, ref);
}


/*
 * The level of the element at ref, from the walk or a re-read (fresh is
 * true: read it again even if the walk saw it, its slot may have been
 * reused since).  -1 if there is no element tuple there.
 */
int
HnswVerifyElementLevel(VerifyState *vs, HnswRef ref, bool fresh)
{
	int64		i;
	VLate	   *late;

	if (!fresh)
	{
		i = HnswVerifyFindElem(vs, ref);
		if (i >= 0)
			return VITEM(vs->elems, VElem, i)->level;
		late = hash_search(vs->late, &ref, HASH_FIND, NULL);
		if (late && late->type == HNSW_ELEMENT_TUPLE)
			return late->level;
	}
	late = HnswVerifyReread(vs, ref, HNSW_ELEMENT_TUPLE);
	return late ? late->level : -1;
}

/*
 * Check a reference from element e (its neighbor tuple nt) on a layer:
 * an element tuple, not e itself, of level >= layer.
 */
static void
check_reference(VerifyState *vs, const VElem *e, const VNtup *nt,
				ItemPointer tid, int layer)
{
	HnswRef		ref = HnswRefFromItemPointer(tid);
	int			level;

	if (ref == e->ref)
		HnswVerifyCorrupted(vs, HnswRefBlock(nt->ref), HnswRefOffset(nt->ref),
				  "The element at (%u,%u) is its own neighbor on layer %d.",
				  HnswRefBlock(e->ref), HnswRefOffset(e->ref), layer);
	level = HnswVerifyElementLevel(vs, ref, false);
	if (level >= 0 && level < layer)
		level = HnswVerifyElementLevel(vs, ref, true);
	if (level < 0)
		HnswVerifyCorrupted(vs, HnswRefBlock(nt->ref), HnswRefOffset(nt->ref),
				  "Layer %d's list of the element at (%u,%u) holds (%u,%u), which is not an element tuple.",
				  layer, HnswRefBlock(e->ref), HnswRefOffset(e->ref),
				  HnswRefBlock(ref), HnswRefOffset(ref));
	if (level < layer)
		HnswVerifyCorrupted(vs, HnswRefBlock(nt->ref), HnswRefOffset(nt->ref),
				  "Layer %d's list of the element at (%u,%u) holds the element at (%u,%u), whose level is only %d.",
				  layer, HnswRefBlock(e->ref), HnswRefOffset(e->ref),
				  HnswRefBlock(ref), HnswRefOffset(ref), level);
}

/*
 * Give every element its neighbor tuple (one of its own, of the size its
 * level asks for) and check the references in it.
 */
void
HnswVerifyGraph(VerifyState *vs)
{
	for (int64 i = 0; i < vs->elems.count; i++)
	{
		VElem	   *e = VITEM(vs->elems, VElem, i);
		int64		n;
		VNtup	   *nt;

		CHECK_FOR_INTERRUPTS();
		n = HnswVerifyFindNtup(vs, e->ntid);
		if (n < 0)
		{
			VLate	   *late = hash_search(vs->late, &e->ntid, HASH_FIND, NULL);

			if (late == NULL || late->type != HNSW_NEIGHBOR_TUPLE)
				late = HnswVerifyReread(vs, e->ntid, HNSW_NEIGHBOR_TUPLE);
			if (late == NULL)
				HnswVerifyCorrupted(vs, HnswRefBlock(e->ref), HnswRefOffset(e->ref),
						  "The element's neighbor tuple TID (%u,%u) does not point to a neighbor tuple.",
						  HnswRefBlock(e->ntid), HnswRefOffset(e->ntid));
			n = late->index;
		}
		nt = VITEM(vs->ntups, VNtup, n);
		if (nt->owner >= 0)
		{
			VElem	   *other = VITEM(vs->elems, VElem, nt->owner);

			HnswVerifyCorrupted(vs, HnswRefBlock(e->ref), HnswRefOffset(e->ref),
					  "The element shares its neighbor tuple (%u,%u) with the element at (%u,%u).",
					  HnswRefBlock(e->ntid), HnswRefOffset(e->ntid),
					  HnswRefBlock(other->ref), HnswRefOffset(other->ref));
		}
		if (nt->nslots != (e->level + 2) * vs->m)
			HnswVerifyCorrupted(vs, HnswRefBlock(e->ref), HnswRefOffset(e->ref),
					  "The element has level %u, but its neighbor tuple (%u,%u) has %u slots, not %d.",
					  e->level, HnswRefBlock(e->ntid), HnswRefOffset(e->ntid),
					  nt->nslots, (e->level + 2) * vs->m);
		nt->owner = i;
		e->ntup = n;

		/* a freed element's lists are history: nothing to check there */
		if (e->flags & HNSW_ELEMENT_FREE)
			continue;
		for (int j = 0; j < nt->l0count; j++)
			check_reference(vs, e, nt, VITEM(vs->l0, ItemPointerData, nt->l0start + j), 0);
		for (int j = 0; j < nt->upcount; j++)
		{
			VUpRef	   *u = VITEM(vs->up, VUpRef, nt->upstart + j);

			check_reference(vs, e, nt, &u->tid, u->layer);
		}
	}
}

/*
 * Follow each element's duplicate chain: every link a duplicate tuple, no
 * tuple met twice (two chains sharing a tuple, or a loop), the chain's heap
 * TIDs counted as the element's.  A live element must hold some heap TID,
 * itself or through its chain; a deleted or free one none.  (Inserts only
 * add heap TIDs, and to an element's own slots while it has room, so a
 * chain read before the element cannot make a live element look empty.)
 */
void
HnswVerifyChains(VerifyState *vs)
{
	for (int64 i = 0; i < vs->elems.count; i++)
	{
		VElem	   *e = VITEM(vs->elems, VElem, i);
		HnswRef		ref = e->duptid;
		HnswRef		from = e->ref;
		int64		chaintids = 0;

		CHECK_FOR_INTERRUPTS();
		while (ref != HNSW_INVALID_REF)
		{
			int64		d = HnswVerifyFindDup(vs, ref);
			VDup	   *dup;

			if (d < 0)
			{
				VLate	   *late = hash_search(vs->late, &ref, HASH_FIND, NULL);

				if (late == NULL || late->type != HNSW_DUPLICATE_TUPLE)
					late = HnswVerifyReread(vs, ref, HNSW_DUPLICATE_TUPLE);
				if (late == NULL)
					HnswVerifyCorrupted(vs, HnswRefBlock(from), HnswRefOffset(from),
							  "The duplicate chain of the element at (%u,%u) leads here to (%u,%u), which is not a duplicate tuple.",
							  HnswRefBlock(e->ref), HnswRefOffset(e->ref),
							  HnswRefBlock(ref), HnswRefOffset(ref));
				d = late->index;
			}
			dup = VITEM(vs->dups, VDup, d);
			if (dup->chained)
				HnswVerifyCorrupted(vs, HnswRefBlock(ref), HnswRefOffset(ref),
						  "The duplicate tuple is met a second time, on the chain of the element at (%u,%u): two chains share it, or a chain loops.",
						  HnswRefBlock(e->ref), HnswRefOffset(e->ref));
			dup->chained = true;
			for (int t = 0; t < dup->ntids; t++)
			{
				VHeapTid   *h = varray_push(&vs->heaptids);

				h->tid = *VITEM(vs->duptids, ItemPointerData, dup->tidstart + t);
				h->elem = i;
			}
			chaintids += dup->ntids;
			from = ref;
			ref = dup->next;
		}
		if ((e->flags & HNSW_KNOWN_ELEMENT_FLAGS) ? chaintids > 0 :
			e->ntids + chaintids == 0)
			HnswVerifyCorrupted(vs, HnswRefBlock(e->ref), HnswRefOffset(e->ref),
					  "The element has flags 0x%02x, %u heap TIDs of its own and " INT64_FORMAT " on its duplicate chain.",
					  e->flags, e->ntids, chaintids);
	}
}


/*
 * Add to the walk's queue the elements of the map that a neighbor tuple
 * links to on a layer and that the walk has not met yet.  References to
 * elements the map does not have (added while the walk ran) are skipped.
 */
static void
enqueue_links(VerifyState *vs, const VNtup *nt, int layer, bool *seen,
			  int32 *queue, int64 *tail)
{
	int			count = layer == 0 ? nt->l0count : nt->upcount;

	for (int j = 0; j < count; j++)
	{
		ItemPointer tid;
		int64		t;

		if (layer == 0)
			tid = VITEM(vs->l0, ItemPointerData, nt->l0start + j);
		else
		{
			VUpRef	   *u = VITEM(vs->up, VUpRef, nt->upstart + j);

			if (u->layer != layer)
				continue;
			tid = &u->tid;
		}
		t = HnswVerifyFindElem(vs, HnswRefFromItemPointer(tid));
		if (t >= 0 && !seen[t])
		{
			seen[t] = true;
			queue[(*tail)++] = (int32) t;
		}
	}
}


/*
 * Walk one layer breadth-first from the entry point, following only that
 * layer's links, and return how many live elements of level >= layer the
 * walk does not reach.  seen[] and queue[] have room for every element of
 * the map; seen[] must be all false.  An entry point added while the walk
 * ran is not in the map: its lists, read again (lateNt), seed the walk.
 */
static int64
walk_layer(VerifyState *vs, HnswRef entry, const VNtup *lateNt, int layer,
		   bool *seen, int32 *queue)
{
	int64		n = vs->elems.count;
	int64		i = HnswVerifyFindElem(vs, entry);
	int64		head = 0;
	int64		tail = 0;
	int64		unreached = 0;

	if (i >= 0)
	{
		seen[i] = true;
		queue[tail++] = (int32) i;
	}
	else if (lateNt != NULL)
		enqueue_links(vs, lateNt, layer, seen, queue, &tail);

	while (head < tail)
	{
		VElem	   *e = VITEM(vs->elems, VElem, queue[head++]);

		CHECK_FOR_INTERRUPTS();
		if (e->ntup >= 0 && e->level >= layer)
			enqueue_links(vs, VITEM(vs->ntups, VNtup, e->ntup), layer, seen,
						  queue, &tail);
	}

	for (int64 j = 0; j < n; j++)
	{
		VElem	   *e = VITEM(vs->elems, VElem, j);

		if (!seen[j] && e->level >= layer &&
			(e->flags & HNSW_KNOWN_ELEMENT_FLAGS) == 0)
			unreached++;
	}
	return unreached;
}

/*
 * Count the live elements that a walk from the entry point does not reach:
 * on layer 0 (vs->unreachable), and summed over the layers above, each
 * walked by its own links among the elements of at least its level
 * (vs->unreachableUpper).  One seen[] and one queue[] serve every layer,
 * so memory stays at 5 bytes per element whatever the number of layers.
 */
void
HnswVerifyReachability(VerifyState *vs, const HnswMetaPageData *meta)
{
	int64		n = vs->elems.count;
	bool	   *seen;
	int32	   *queue;
	HnswRef		entry;
	VNtup	   *lateNt = NULL;

	vs->unreachable = 0;
	vs->unreachableUpper = 0;
	if (meta->entryLevel < 0)
	{
		/* no entry point: every live element is unreachable */
		for (int64 j = 0; j < n; j++)
		{
			VElem	   *e = VITEM(vs->elems, VElem, j);

			if ((e->flags & HNSW_KNOWN_ELEMENT_FLAGS) == 0)
			{
				vs->unreachable++;
				vs->unreachableUpper += e->level;
			}
		}
		return;
	}

	seen = palloc_extended(Max(n, 1) * sizeof(bool), MCXT_ALLOC_HUGE);
	queue = palloc_extended(Max(n, 1) * sizeof(int32), MCXT_ALLOC_HUGE);
	entry = HnswRefFromTid(meta->entryBlkno, meta->entryOffno);
	if (HnswVerifyFindElem(vs, entry) < 0)
		lateNt = HnswVerifyLateEntry(vs, entry);

	/*
	 * Layers above the entry level have no entry: a live element there
	 * (seen only if inserts raised the top since the walk read it) counts
	 * on each of them.
	 */
	for (int layer = 0; layer <= Max(meta->entryLevel, vs->maxLevelSeen); layer++)
	{
		int64		unreached;

		if (layer <= meta->entryLevel)
		{
			memset(seen, 0, Max(n, 1) * sizeof(bool));
			unreached = walk_layer(vs, entry, lateNt, layer, seen, queue);
		}
		else
		{
			unreached = 0;
			for (int64 j = 0; j < n; j++)
			{
				VElem	   *e = VITEM(vs->elems, VElem, j);

				if (e->level >= layer &&
					(e->flags & HNSW_KNOWN_ELEMENT_FLAGS) == 0)
					unreached++;
			}
		}
		if (layer == 0)
			vs->unreachable = unreached;
		else
			vs->unreachableUpper += unreached;
	}
	pfree(seen);
	pfree(queue);
}

/* Heap TIDs ---------------------------------------------------------------- */

/* Order heap TIDs, then the elements holding them */
static int
heaptid_cmp(const void *a, const void *b)
{
	const VHeapTid *ha = a;
	const VHeapTid *hb = b;
	int			c = ItemPointerCompare((ItemPointer) &ha->tid, (ItemPointer) &hb->tid);

	if (c != 0)
		return c;
	return (ha->elem > hb->elem) - (ha->elem < hb->elem);
}

/* Sort the heap TIDs and check that none is held twice */
void
HnswVerifyHeapTids(VerifyState *vs)
{
	VHeapTid   *h = VITEM(vs->heaptids, VHeapTid, 0);

	qsort(h, vs->heaptids.count, sizeof(VHeapTid), heaptid_cmp);
	for (int64 i = 1; i < vs->heaptids.count; i++)
	{
		if (ItemPointerEquals(&h[i].tid, &h[i - 1].tid))
		{
			VElem	   *a = VITEM(vs->elems, VElem, h[i - 1].elem);
			VElem	   *b = VITEM(vs->elems, VElem, h[i].elem);

			HnswVerifyCorrupted(vs, HnswRefBlock(b->ref), HnswRefOffset(b->ref),
					  "Heap TID (%u,%u) is held by this element and by the element at (%u,%u).",
					  ItemPointerGetBlockNumber(&h[i].tid),
					  ItemPointerGetOffsetNumber(&h[i].tid),
					  HnswRefBlock(a->ref), HnswRefOffset(a->ref));
		}
	}
}

/* Compare heap TIDs only (to look one up) */
static int
heaptid_cmp_tid(const void *a, const void *b)
{
	return ItemPointerCompare((ItemPointer) &((const VHeapTid *) a)->tid,
							  (ItemPointer) &((const VHeapTid *) b)->tid);
}

/* table_index_build_scan callback: the row must be in the index */
static void
heap_row_callback(Relation index, ItemPointer tid, Datum *values,
				  bool *isnull, bool tupleIsAlive, void *state)
{
	VerifyState *vs = (VerifyState *) state;
	VHeapTid	key;
	bool		indexed;
	MemoryContext old;

	if (isnull[0])
		return;
	/* zero vectors under cosine are not indexed */
	old = MemoryContextSwitchTo(vs->rowcxt);
	indexed = HnswPrepareVector(&vs->info, values[0], vs->vecbuf);
	MemoryContextSwitchTo(old);
	MemoryContextReset(vs->rowcxt);
	if (!indexed)
		return;
	key.tid = *tid;
	key.elem = -1;
	if (bsearch(&key, vs->heaptids.items, vs->heaptids.count, sizeof(VHeapTid),
				heaptid_cmp_tid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" lacks heap tuple (%u,%u) of table \"%s\"",
						vs->name, ItemPointerGetBlockNumber(tid),
						ItemPointerGetOffsetNumber(tid),
						RelationGetRelationName(vs->heap))));
}

/*
 * With heapallindexed: every row the snapshot taken before the walk sees
 * and the index should hold is in some element.  Rows committed before the
 * snapshot were inserted into the index before it, and vacuum, which alone
 * removes heap TIDs from elements, is kept out by our lock on the table.
 */
void
HnswVerifyHeapRows(VerifyState *vs, Snapshot snapshot)
{
	IndexInfo  *indexInfo = BuildIndexInfo(vs->index);
	TableScanDesc scan;

	/* an MVCC scan of what the snapshot sees, no uniqueness business */
	indexInfo->ii_Concurrent = true;
	indexInfo->ii_Unique = false;
	indexInfo->ii_ExclusionOps = NULL;
	indexInfo->ii_ExclusionProcs = NULL;
	indexInfo->ii_ExclusionStrats = NULL;

	vs->info = *HnswGetIndexInfo(vs->index);
	vs->vecbuf = palloc(vs->vecsize);
	vs->rowcxt = AllocSetContextCreate(CurrentMemoryContext, "hnsw_verify row",
									   ALLOCSET_DEFAULT_SIZES);
	scan = table_beginscan_strat(vs->heap, snapshot, 0, NULL, true, true);
	table_index_build_scan(vs->heap, vs->index, indexInfo, true, false,
						   heap_row_callback, vs, scan);
	MemoryContextDelete(vs->rowcxt);
}
