/*-------------------------------------------------------------------------
 *
 * hnswvacuum.c
 *	  ambulkdelete and amvacuumcleanup for hnsw.
 *
 * ambulkdelete runs four passes (see also the design note in hnswpage.h):
 *
 *	 1. remove heap TIDs: every element drops the heap TIDs the callback
 *		reports dead; an element left with none is flagged DELETED.  The
 *		deleted elements, old and new, are collected, with the live element
 *		of the highest level.
 *	 2. barrier: take HNSW_UPDATE_LOCK exclusively once, which waits for
 *		every insert that may have chosen a now-deleted element as a
 *		neighbor before it was flagged; replace a deleted entry point.
 *	 3. repair: every live element that links to a deleted one gets new
 *		neighbors on that layer from what the deleted ones link to and,
 *		if it lost most of them, from a search (hnswgraph.c); the new
 *		neighbors link back to it.  Inserts run meanwhile and never link
 *		to a deleted element.
 *	 4. free: with inserts excluded, deleted elements are flagged FREE and
 *		their slots offered to inserts through the metapage's hints.
 *
 * amvacuumcleanup then links every live element that a walk from the entry
 * point does not reach, on any layer (HnswConnectIndex).
 *
 * Searches pass through deleted and free elements but never return them;
 * hnswscan.c rechecks distances so that a slot reused under a running scan
 * cannot surface at the old element's distance.
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

/* How often a repair is recomputed when inserts keep changing the list */
#define HNSW_REPAIR_RETRIES		3

typedef struct HnswVacuumState
{
	IndexVacuumInfo *info;
	IndexBulkDeleteResult *stats;
	IndexBulkDeleteCallback callback;
	void	   *callback_state;
	Relation	index;
	int			dim;
	int			m;
	HnswRef    *deleted;		/* sorted: collected in block/offset order */
	int64		ndeleted;
	int64		maxdeleted;
	int64		newlyDeleted;
	HnswRef		best;			/* live element of the highest level */
	int			bestLevel;
	int64		repaired;		/* element layers given new neighbors */
	MemoryContext tmpCtx;
} HnswVacuumState;

static bool
is_deleted(HnswVacuumState *vs, HnswRef ref)
{
	return vs->ndeleted > 0 &&
		bsearch(&ref, vs->deleted, vs->ndeleted, sizeof(HnswRef), HnswRefCmp) != NULL;
}

static void
add_deleted(HnswVacuumState *vs, HnswRef ref)
{
	if (vs->ndeleted == vs->maxdeleted)
	{
		vs->maxdeleted *= 2;
		vs->deleted = repalloc_huge(vs->deleted, sizeof(HnswRef) * vs->maxdeleted);
	}
	vs->deleted[vs->ndeleted++] = ref;
}

/* Is this item an element tuple?  (Checked fully by HnswGetElement.) */
static bool
is_element(Page page, OffsetNumber off)
{
	ItemId		itemid = PageGetItemId(page, off);

	return ItemIdIsNormal(itemid) && ItemIdGetLength(itemid) > 0 &&
		*(uint8 *) PageGetItem(page, itemid) == HNSW_ELEMENT_TUPLE;
}

/*
 * Drop the heap TIDs vacuum's callback names dead from the first ntids of
 * tids, keeping the rest packed at the front and clearing the slots freed;
 * sets *changed if any went.  Returns how many are left.
 */
static int
drop_dead_tids(HnswVacuumState *vs, ItemPointerData *tids, int ntids,
			   bool *changed)
{
	int			kept = 0;

	for (int t = 0; t < ntids; t++)
	{
		if (vs->callback(&tids[t], vs->callback_state))
		{
			vs->stats->tuples_removed++;
			*changed = true;
		}
		else
			tids[kept++] = tids[t];
	}
	for (int t = kept; t < ntids; t++)
		ItemPointerSetInvalid(&tids[t]);
	return kept;
}

/* Pass 1 on one tuple of a duplicate chain: drop its dead heap TIDs */
typedef struct ChainClean
{
	HnswVacuumState *vs;
	int64		left;			/* heap TIDs kept in the chain */
} ChainClean;

static bool
clean_chain_tuple(Relation index, Buffer buf, OffsetNumber offno,
				  HnswDuplicateTuple dtup, void *arg)
{
	ChainClean *cc = arg;
	GenericXLogState *state = GenericXLogStart(index);
	bool		changed = false;

	dtup = HnswGetDuplicate(index, GenericXLogRegisterBuffer(state, buf, 0),
							BufferGetBlockNumber(buf), offno);
	dtup->ntids = drop_dead_tids(cc->vs, dtup->heaptids, dtup->ntids, &changed);
	cc->left += dtup->ntids;
	if (changed)
		GenericXLogFinish(state);
	else
		GenericXLogAbort(state);
	return false;
}

/* Pass 1 on one exclusively locked page */
static void
remove_heap_tids(HnswVacuumState *vs, Buffer buf)
{
	Relation	index = vs->index;
	BlockNumber blkno = BufferGetBlockNumber(buf);
	GenericXLogState *state = GenericXLogStart(index);
	Page		page = GenericXLogRegisterBuffer(state, buf, 0);
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
	bool		changed = false;

	for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
	{
		HnswElementTuple etup;
		int64		kept = 0;

		if (!is_element(page, off))
			continue;
		etup = HnswGetElement(index, page, blkno, off, vs->dim);
		if (etup->flags & HNSW_ELEMENT_FREE)
			continue;
		if (etup->flags & HNSW_ELEMENT_DELETED)
		{
			/* left by a vacuum that did not finish */
			add_deleted(vs, HnswRefFromTid(blkno, off));
			continue;
		}
		kept = drop_dead_tids(vs, etup->heaptids, etup->ntids, &changed);
		etup->ntids = kept;
		/* the chain's heap TIDs count as the element's (rule 6 order) */
		if (ItemPointerIsValid(&etup->duptid))
		{
			ChainClean	cc = {vs, 0};

			HnswWalkChain(index, blkno, off, etup->duptid,
						  BUFFER_LOCK_EXCLUSIVE, vs->info->strategy,
						  clean_chain_tuple, &cc);
			kept += cc.left;
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
			add_deleted(vs, HnswRefFromTid(blkno, off));
			vs->newlyDeleted++;
		}
		else
		{
			vs->stats->num_index_tuples += kept;
			if (etup->level > vs->bestLevel)
			{
				vs->best = HnswRefFromTid(blkno, off);
				vs->bestLevel = etup->level;
			}
		}
	}
	if (changed)
		GenericXLogFinish(state);
	else
		GenericXLogAbort(state);
}

/* Pass 1 over every data page */
static void
pass_remove(HnswVacuumState *vs, BlockNumber nblocks)
{
	for (BlockNumber blkno = HNSW_METAPAGE_BLKNO + 1; blkno < nblocks; blkno++)
	{
		Buffer		buf;

		vacuum_delay_point();
		buf = ReadBufferExtended(vs->index, MAIN_FORKNUM, blkno, RBM_NORMAL,
								 vs->info->strategy);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		remove_heap_tids(vs, buf);
		UnlockReleaseBuffer(buf);
	}
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
 * Pass 2: wait out older inserts; move the entry point off a deleted one.
 * Returns the index's size at that moment: an insert that began before
 * pass 1 flagged an element may have linked to it from a page added
 * meanwhile, so repair looks that far.
 *
 * Pass 1 saw no live element when every row was deleted; rows inserted
 * since are then the only live ones, and one of them must become the entry
 * point, or they would stay unreachable for good.  They are looked for
 * without the update lock (new elements are never flagged but by vacuum),
 * and again under it only if inserts in between left the entry deleted.
 */
static BlockNumber
pass_barrier(HnswVacuumState *vs)
{
	HnswMetaPageData meta;
	BlockNumber nblocks;
	LiveTop		top = {vs->best, vs->bestLevel};
	HnswRef		entry;

	if (top.ref == HNSW_INVALID_REF)
		HnswScanElements(vs->index, HNSW_METAPAGE_BLKNO + 1,
						 RelationGetNumberOfBlocks(vs->index),
						 vs->info->strategy, HNSW_SCAN_PAUSE, note_live_top, &top);
	LockPage(vs->index, HNSW_UPDATE_LOCK, ExclusiveLock);
	nblocks = RelationGetNumberOfBlocks(vs->index);
	HnswReadMeta(vs->index, &meta);
	entry = meta.entryLevel >= 0 ?
		HnswRefFromTid(meta.entryBlkno, meta.entryOffno) : HNSW_INVALID_REF;
	if (entry == HNSW_INVALID_REF || is_deleted(vs, entry))
	{
		if (top.ref == HNSW_INVALID_REF)
			HnswScanElements(vs->index, HNSW_METAPAGE_BLKNO + 1, nblocks,
							 vs->info->strategy, 0, note_live_top, &top);
		if (top.ref != entry)
			HnswSetEntryPoint(vs->index, top.ref, top.level);
	}
	UnlockPage(vs->index, HNSW_UPDATE_LOCK, ExclusiveLock);
	return nblocks;
}

/*
 * Give element e new neighbors on a layer whose list holds deleted ones,
 * and link them back to e.  The list is written only over what it was
 * computed from; when inserts keep changing it, the deleted members are at
 * least filtered out, so no live element is left pointing at a slot pass 4
 * frees.
 */
static void
repair_layer(HnswVacuumState *vs, HnswPageGraph *pg, HnswCandidate *e,
			 const float *evec, int layer, const HnswMetaPageData *meta)
{
	HnswGraph  *g = HnswPageGraphBase(pg);
	HnswRef		cur[2 * HNSW_MAX_M];
	HnswRef		keep[2 * HNSW_MAX_M];
	HnswRef		lost[2 * HNSW_MAX_M];
	HnswRef		refs[2 * HNSW_MAX_M];
	HnswCandidate *out = NULL;
	int			ncur;
	int			nkeep;
	int			nlost;
	int			n = 0;
	bool		done = false;
	bool		linked = false;

	for (int attempt = 0; attempt <= HNSW_REPAIR_RETRIES && !done; attempt++)
	{
		ncur = g->ops->neighbors(g, e, layer, cur);
		nkeep = nlost = 0;
		for (int i = 0; i < ncur; i++)
		{
			if (!is_deleted(vs, cur[i]))
				keep[nkeep++] = cur[i];
			else
				lost[nlost++] = cur[i];
		}
		if (nlost == 0 && ncur > 0)
			return;				/* an insert already replaced them */

		if (attempt < HNSW_REPAIR_RETRIES)
		{
			n = HnswRepairNeighbors(g, e, evec, layer, keep, nkeep,
									 lost, nlost,
									 HnswRefFromTid(meta->entryBlkno, meta->entryOffno),
									 meta->entryLevel, &out);
			for (int i = 0; i < n; i++)
				refs[i] = out[i].ref;
			done = HnswPageReplaceLayer(pg, e->neighborsAt, layer, cur, ncur, refs, n);
		}
		else
		{
			/* last resort: just drop the deleted members */
			while (!HnswPageReplaceLayer(pg, e->neighborsAt, layer, cur, ncur, keep, nkeep))
			{
				CHECK_FOR_INTERRUPTS();
				ncur = g->ops->neighbors(g, e, layer, cur);
				nkeep = 0;
				for (int i = 0; i < ncur; i++)
				{
					if (!is_deleted(vs, cur[i]))
						keep[nkeep++] = cur[i];
				}
			}
			return;
		}
	}
	if (!done || (n == 0 && ncur == 0))
		return;
	vs->repaired++;

	/*
	 * The new neighbors link back, as they would to a new element, and as
	 * for a new element (HnswLinkBack) the nearest must keep e on layer 0
	 * if none does: e's links from its old neighborhood may be gone, and
	 * those left may come from afar, where no search for e's vector looks.
	 */
	for (int i = 0; i < n; i++)
	{
		HnswCandidate q = *e;

		q.dist = out[i].dist;
		if (g->ops->add_link(g, &out[i], layer, &q, false))
			linked = true;
	}
	if (!linked && layer == 0 && n > 0)
	{
		HnswCandidate q = *e;

		q.dist = out[0].dist;
		g->ops->add_link(g, &out[0], layer, &q, true);
	}
}

/* Pass 3: repair every live element that links to a deleted one */
static void
pass_repair(HnswVacuumState *vs, BlockNumber nblocks)
{
	Relation	index = vs->index;
	HnswPageGraph *pg;
	HnswGraph  *g;
	HnswMetaPageData meta;
	HnswRef		entry;
	MemoryContext old;

	if (vs->ndeleted == 0)
		return;
	pg = HnswPageGraphCreate(index, false);
	g = HnswPageGraphBase(pg);
	HnswReadMeta(index, &meta);
	if (meta.entryLevel < 0)
		return;					/* nothing live is left to repair */
	entry = HnswRefFromTid(meta.entryBlkno, meta.entryOffno);

	for (BlockNumber blkno = HNSW_METAPAGE_BLKNO + 1; blkno < nblocks; blkno++)
	{
		HnswCandidate elems[MaxOffsetNumber];
		int			levels[MaxOffsetNumber];
		int			nelems = 0;
		Buffer		buf;
		Page		page;

		vacuum_delay_point();
		buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL,
								 vs->info->strategy);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		for (OffsetNumber off = FirstOffsetNumber;
			 off <= PageGetMaxOffsetNumber(page); off++)
		{
			HnswElementTuple etup;

			if (!is_element(page, off))
				continue;
			etup = HnswGetElement(index, page, blkno, off, vs->dim);
			if (etup->flags & (HNSW_ELEMENT_DELETED | HNSW_ELEMENT_FREE))
				continue;
			elems[nelems].ref = HnswRefFromTid(blkno, off);
			elems[nelems].neighborsAt = HnswRefFromItemPointer(&etup->neighbortid);
			elems[nelems].dist = 0;
			elems[nelems].deleted = false;
			levels[nelems++] = etup->level;
		}
		UnlockReleaseBuffer(buf);

		for (int i = 0; i < nelems; i++)
		{
			const float *evec = NULL;

			old = MemoryContextSwitchTo(vs->tmpCtx);
			/* layers above the entry point's wait for the cleanup (rule 4) */
			for (int lc = Min(levels[i], meta.entryLevel); lc >= 0; lc--)
			{
				HnswRef		cur[2 * HNSW_MAX_M];
				int			ncur = g->ops->neighbors(g, &elems[i], lc, cur);
				bool		affected;

				/*
				 * An empty list, but for the entry point's on its top layer,
				 * means the element was added while all it could have linked
				 * to was deleted (the entry point too, when vacuum made such
				 * an element the entry point).
				 */
				affected = (ncur == 0 &&
							(elems[i].ref != entry || lc < meta.entryLevel));
				for (int j = 0; j < ncur && !affected; j++)
					affected = is_deleted(vs, cur[j]);
				if (!affected)
					continue;
				if (evec == NULL)
					evec = g->ops->element_vector(g, &elems[i]);
				repair_layer(vs, pg, &elems[i], evec, lc, &meta);
			}
			MemoryContextSwitchTo(old);
			MemoryContextReset(vs->tmpCtx);
		}
	}
}

/* Pages pass 4 pins before it takes the update lock for them */
#define HNSW_FREE_BATCH		32

/*
 * Pass 4: flag the deleted elements FREE and offer their slots.  Inserts
 * are excluded while elements are flagged, a batch of pages at a time: the
 * pages are read (and pinned) first, and vacuum's cost pauses come between
 * batches, so that inserts never wait out a read or a sleep of vacuum's
 * (hnswpage.h, rule 2).
 */
static int64
pass_free(HnswVacuumState *vs)
{
	Relation	index = vs->index;
	int64		nfreed = 0;
	int64		i = 0;
	BlockNumber lowest[HNSW_MAX_LEVEL + 1];

	if (vs->ndeleted == 0)
		return 0;
	for (int l = 0; l <= HNSW_MAX_LEVEL; l++)
		lowest[l] = InvalidBlockNumber;

	while (i < vs->ndeleted)
	{
		Buffer		bufs[HNSW_FREE_BATCH];
		int			nbufs = 0;
		int64		j = i;

		vacuum_delay_point();
		HnswWaitPoint("vacuum_free_batch");
		while (j < vs->ndeleted && nbufs < HNSW_FREE_BATCH)
		{
			BlockNumber blkno = HnswRefBlock(vs->deleted[j]);

			bufs[nbufs++] = ReadBufferExtended(index, MAIN_FORKNUM, blkno,
											   RBM_NORMAL, vs->info->strategy);
			while (j < vs->ndeleted && HnswRefBlock(vs->deleted[j]) == blkno)
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
			for (; i < j && HnswRefBlock(vs->deleted[i]) == blkno; i++)
			{
				HnswElementTuple etup = HnswGetElement(index, page, blkno,
													   HnswRefOffset(vs->deleted[i]),
													   vs->dim);

				/*
				 * Pass 1 flagged it on the page, and inserts add rows only
				 * to unflagged elements, so it is still empty; a slot that
				 * is not so is never handed out.
				 */
				if (!(etup->flags & HNSW_ELEMENT_DELETED) || etup->ntids > 0)
				{
					elog(WARNING, "hnsw: element at block %u offset %u of index \"%s\" is not empty: not freed",
						 blkno, HnswRefOffset(vs->deleted[i]),
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

/* ambulkdelete */
IndexBulkDeleteResult *
hnswbulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
			   IndexBulkDeleteCallback callback, void *callback_state)
{
	Relation	index = info->index;
	HnswVacuumState vs;
	BlockNumber nblocks;
	int64		nfreed;

	if (stats == NULL)
		stats = palloc0(sizeof(IndexBulkDeleteResult));
	stats->num_index_tuples = 0;

	memset(&vs, 0, sizeof(vs));
	vs.info = info;
	vs.stats = stats;
	vs.callback = callback;
	vs.callback_state = callback_state;
	vs.index = index;
	vs.dim = HnswGetIndexInfo(index)->dimensions;
	vs.m = HnswGetIndexInfo(index)->m;
	vs.maxdeleted = 1024;
	vs.deleted = palloc(sizeof(HnswRef) * vs.maxdeleted);
	vs.best = HNSW_INVALID_REF;
	vs.bestLevel = -1;
	vs.tmpCtx = AllocSetContextCreate(CurrentMemoryContext, "hnsw vacuum",
									  ALLOCSET_DEFAULT_SIZES);

	/* pages added meanwhile hold only new, live elements: pass 1 skips them */
	nblocks = RelationGetNumberOfBlocks(index);
	pass_remove(&vs, nblocks);
	HnswWaitPoint("vacuum_after_remove");
	nblocks = pass_barrier(&vs);
	pass_repair(&vs, nblocks);
	HnswWaitPoint("vacuum_before_free");
	nfreed = pass_free(&vs);

	ereport(info->message_level,
			(errmsg("index \"%s\": removed %.0f heap TIDs; %lld elements newly deleted, %lld repaired, %lld freed for reuse",
					RelationGetRelationName(index), stats->tuples_removed,
					(long long) vs.newlyDeleted, (long long) vs.repaired,
					(long long) nfreed)));

	MemoryContextDelete(vs.tmpCtx);
	pfree(vs.deleted);
	stats->num_pages = RelationGetNumberOfBlocks(index);
	return stats;
}

static bool
count_chain_tids(Relation index, Buffer buf, OffsetNumber offno,
				 HnswDuplicateTuple dtup, void *arg)
{
	*(double *) arg += dtup->ntids;
	return false;
}

/* Count an element's heap TIDs, its chain's included, into *(double *) arg */
static bool
count_heap_tids(Relation index, Buffer buf, OffsetNumber offno,
				HnswElementTuple etup, void *arg)
{
	*(double *) arg += etup->ntids;
	HnswWalkChain(index, BufferGetBlockNumber(buf), offno, etup->duptid,
				  BUFFER_LOCK_SHARE, NULL, count_chain_tids, arg);
	return false;
}

/*
 * Pass 5, connect: link every live element that no walk from the entry
 * point reaches on some layer from one that is reached (HnswConnect).  Also
 * the end of a build that went on on pages.  Returns how many it linked.
 */
int64
HnswConnectIndex(Relation index, BufferAccessStrategy strategy)
{
	HnswPageGraph *pg = HnswPageGraphCreate(index, false);
	int64		linked;
	int64		missed;

	HnswPageGraphSetStrategy(pg, strategy);
	linked = HnswConnect(HnswPageGraphBase(pg), &missed);
	if (missed > 0)
		elog(DEBUG1, "hnsw: " INT64_FORMAT " unreachable element layers of \"%s\" could not be linked (inserts changed their lists)",
			 missed, RelationGetRelationName(index));
	return linked;
}

/*
 * amvacuumcleanup: connect (pass 5), and count what is left when
 * bulkdelete did not run.  Inserts and deletes can leave live elements that
 * no walk from the entry point reaches on some layer; each VACUUM links
 * them from elements that are reached, as the end of a build does.
 */
IndexBulkDeleteResult *
hnswvacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats)
{
	int64		linked;

	if (info->analyze_only)
		return stats;

	/*
	 * No update lock: it would make an insert that raises the entry point
	 * wait for the whole walk, and only vacuum's own passes, which never
	 * run beside this, take it exclusively.
	 */
	linked = HnswConnectIndex(info->index, info->strategy);
	ereport(info->message_level,
			(errmsg("index \"%s\": linked %lld unreachable elements",
					RelationGetRelationName(info->index), (long long) linked)));

	if (stats == NULL)
	{
		stats = palloc0(sizeof(IndexBulkDeleteResult));
		HnswScanElements(info->index, HNSW_METAPAGE_BLKNO + 1,
						 RelationGetNumberOfBlocks(info->index),
						 info->strategy, HNSW_SCAN_PAUSE, count_heap_tids,
						 &stats->num_index_tuples);
		stats->num_pages = RelationGetNumberOfBlocks(info->index);
	}
	return stats;
}
