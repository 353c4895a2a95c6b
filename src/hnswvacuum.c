/*-------------------------------------------------------------------------
 *
 * hnswvacuum.c
 *	  ambulkdelete and amvacuumcleanup for hnsw.
 *
 * ambulkdelete runs four passes (see also the design note in hnsw.h):
 *
 *	 1. remove heap TIDs: every element drops the heap TIDs the callback
 *		reports dead; an element left with none is flagged DELETED.  The
 *		deleted elements, old and new, are collected, with the live element
 *		of the highest level.
 *	 2. barrier: take HNSW_UPDATE_LOCK exclusively once, which waits for
 *		every insert that may have chosen a now-deleted element as a
 *		neighbour before it was flagged; replace a deleted entry point.
 *	 3. repair: every live element that links to a deleted one gets new
 *		neighbours on that layer from what the deleted ones link to and,
 *		if it lost most of them, from a search (hnswgraph.c); the new
 *		neighbours link back to it.  Inserts run meanwhile and never link
 *		to a deleted element.
 *	 4. free: with inserts excluded, deleted elements are flagged FREE and
 *		their slots offered to inserts through the metapage's hints.
 *
 * amvacuumcleanup then links orphans (elements nothing names on layer 0),
 * which inserts can leave behind.
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

#include "hnsw.h"

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
	int64		repaired;		/* element layers given new neighbours */
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

/*
 * Pass 1 on an element's duplicate chain, its page locked by the caller
 * (hnsw.h, rule 6): drop dead heap TIDs; return how many are left.
 */
static int64
clean_chain(HnswVacuumState *vs, ItemPointer head)
{
	Relation	index = vs->index;
	ItemPointerData next = *head;
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	int64		left = 0;
	int64		steps = 0;

	while (ItemPointerIsValid(&next))
	{
		BlockNumber blkno = ItemPointerGetBlockNumber(&next);
		OffsetNumber offno = ItemPointerGetOffsetNumber(&next);
		GenericXLogState *state;
		HnswDuplicateTuple dtup;
		Buffer		buf;
		int			kept = 0;
		bool		changed = false;

		if (blkno == HNSW_METAPAGE_BLKNO || blkno >= nblocks ||
			++steps > (int64) nblocks * MaxOffsetNumber)
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED),
					 errmsg("index \"%s\" has a damaged duplicate chain at block %u offset %u",
							RelationGetRelationName(index), blkno, offno)));
		buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL,
								 vs->info->strategy);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		state = GenericXLogStart(index);
		dtup = HnswGetDuplicate(index, GenericXLogRegisterBuffer(state, buf, 0),
								blkno, offno);
		kept = drop_dead_tids(vs, dtup->heaptids, dtup->ntids, &changed);
		dtup->ntids = kept;
		left += kept;
		next = dtup->next;
		if (changed)
			GenericXLogFinish(state);
		else
			GenericXLogAbort(state);
		UnlockReleaseBuffer(buf);
	}
	return left;
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
		/* the chain's heap TIDs count as the element's */
		if (ItemPointerIsValid(&etup->duptid))
			kept += clean_chain(vs, &etup->duptid);
		if (kept == 0)
		{
			etup->flags |= HNSW_ELEMENT_DELETED;
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

/* Pass 2: wait out older inserts; move the entry point off a deleted one */
static void
pass_barrier(HnswVacuumState *vs)
{
	HnswMetaPageData meta;

	LockPage(vs->index, HNSW_UPDATE_LOCK, ExclusiveLock);
	HnswReadMeta(vs->index, &meta);
	if (meta.entryLevel >= 0 &&
		is_deleted(vs, HnswRefFromTid(meta.entryBlkno, meta.entryOffno)))
		HnswSetEntryPoint(vs->index, vs->best, vs->bestLevel);
	UnlockPage(vs->index, HNSW_UPDATE_LOCK, ExclusiveLock);
}

/*
 * Give element e new neighbours on a layer whose list holds deleted ones,
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

	for (int attempt = 0; attempt <= HNSW_REPAIR_RETRIES && !done; attempt++)
	{
		ncur = g->ops->neighbours(g, e, layer, cur);
		nkeep = nlost = 0;
		for (int i = 0; i < ncur; i++)
		{
			if (!is_deleted(vs, cur[i]))
				keep[nkeep++] = cur[i];
			else
				lost[nlost++] = cur[i];
		}
		if (nlost == 0)
			return;				/* an insert already replaced them */

		if (attempt < HNSW_REPAIR_RETRIES)
		{
			n = HnswRepairNeighbours(g, e, evec, layer, keep, nkeep,
									 lost, nlost,
									 HnswRefFromTid(meta->entryBlkno, meta->entryOffno),
									 meta->entryLevel, &out);
			for (int i = 0; i < n; i++)
				refs[i] = out[i].ref;
			done = HnswPageReplaceLayer(pg, e->loc, layer, cur, ncur, refs, n);
		}
		else
		{
			/* last resort: just drop the deleted members */
			while (!HnswPageReplaceLayer(pg, e->loc, layer, cur, ncur, keep, nkeep))
			{
				CHECK_FOR_INTERRUPTS();
				ncur = g->ops->neighbours(g, e, layer, cur);
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
	if (!done)
		return;
	vs->repaired++;

	/* the new neighbours link back, as they would to a new element */
	for (int i = 0; i < n; i++)
	{
		bool		had = false;
		HnswCandidate q = *e;

		for (int j = 0; j < ncur && !had; j++)
			had = (cur[j] == out[i].ref);
		if (had)
			continue;
		q.dist = out[i].dist;
		g->ops->add_link(g, &out[i], layer, &q, false);
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
	MemoryContext old;

	if (vs->ndeleted == 0)
		return;
	pg = HnswPageGraphCreate(index, false);
	g = HnswPageGraphBase(pg);
	HnswReadMeta(index, &meta);
	if (meta.entryLevel < 0)
		return;					/* nothing live is left to repair */

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
			elems[nelems].loc =
				HnswRefFromTid(ItemPointerGetBlockNumber(&etup->neighbortid),
							   ItemPointerGetOffsetNumber(&etup->neighbortid));
			elems[nelems].dist = 0;
			elems[nelems].deleted = false;
			levels[nelems++] = etup->level;
		}
		UnlockReleaseBuffer(buf);

		for (int i = 0; i < nelems; i++)
		{
			const float *evec = NULL;

			old = MemoryContextSwitchTo(vs->tmpCtx);
			for (int lc = levels[i]; lc >= 0; lc--)
			{
				HnswRef		cur[2 * HNSW_MAX_M];
				int			ncur = g->ops->neighbours(g, &elems[i], lc, cur);
				bool		affected = false;

				for (int j = 0; j < ncur && !affected; j++)
					affected = is_deleted(vs, cur[j]);
				if (!affected)
					continue;
				if (evec == NULL)
					evec = g->ops->vector(g, &elems[i]);
				repair_layer(vs, pg, &elems[i], evec, lc, &meta);
			}
			MemoryContextSwitchTo(old);
			MemoryContextReset(vs->tmpCtx);
		}
	}
}

/* Pass 4: flag the deleted elements FREE and offer their slots */
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

	LockPage(index, HNSW_UPDATE_LOCK, ExclusiveLock);
	while (i < vs->ndeleted)
	{
		BlockNumber blkno = HnswRefBlock(vs->deleted[i]);
		GenericXLogState *state;
		Buffer		buf;
		Page		page;

		vacuum_delay_point();
		buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL,
								 vs->info->strategy);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		state = GenericXLogStart(index);
		page = GenericXLogRegisterBuffer(state, buf, 0);
		for (; i < vs->ndeleted && HnswRefBlock(vs->deleted[i]) == blkno; i++)
		{
			HnswElementTuple etup = HnswGetElement(index, page, blkno,
												   HnswRefOffset(vs->deleted[i]),
												   vs->dim);

			etup->flags = HNSW_ELEMENT_FREE;
			if (lowest[etup->level] == InvalidBlockNumber)
				lowest[etup->level] = blkno;
			nfreed++;
		}
		GenericXLogFinish(state);
		UnlockReleaseBuffer(buf);
	}
	for (int l = 0; l <= HNSW_MAX_LEVEL; l++)
	{
		if (lowest[l] != InvalidBlockNumber)
			HnswNoteFreeSlot(index, lowest[l], l);
	}
	UnlockPage(index, HNSW_UPDATE_LOCK, ExclusiveLock);
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

	/* pages added meanwhile hold only new, live elements: not our business */
	nblocks = RelationGetNumberOfBlocks(index);
	pass_remove(&vs, nblocks);
	pass_barrier(&vs);
	pass_repair(&vs, nblocks);
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

/*
 * amvacuumcleanup: link orphans (pass 5), and count what is left when
 * bulkdelete did not run.  Inserts can leave an element that no list names
 * on layer 0 (a later insert pruned its last incoming link); each VACUUM
 * links such elements again, as the end of a build does.
 */
IndexBulkDeleteResult *
hnswvacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats)
{
	if (info->analyze_only)
		return stats;

	/* it adds links as an insert does, so it locks as an insert does */
	LockPage(info->index, HNSW_UPDATE_LOCK, ShareLock);
	HnswPageLinkOrphans(HnswPageGraphCreate(info->index, false));
	UnlockPage(info->index, HNSW_UPDATE_LOCK, ShareLock);

	if (stats == NULL)
	{
		Relation	index = info->index;
		int			dim = HnswGetIndexInfo(index)->dimensions;
		BlockNumber nblocks = RelationGetNumberOfBlocks(index);

		stats = palloc0(sizeof(IndexBulkDeleteResult));
		for (BlockNumber blkno = HNSW_METAPAGE_BLKNO + 1; blkno < nblocks; blkno++)
		{
			Buffer		buf;
			Page		page;

			vacuum_delay_point();
			buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL,
									 info->strategy);
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			page = BufferGetPage(buf);
			for (OffsetNumber off = FirstOffsetNumber;
				 off <= PageGetMaxOffsetNumber(page); off++)
			{
				if (is_element(page, off))
					stats->num_index_tuples +=
						HnswGetElement(index, page, blkno, off, dim)->ntids;
			}
			UnlockReleaseBuffer(buf);
		}
		stats->num_pages = nblocks;
	}
	return stats;
}
