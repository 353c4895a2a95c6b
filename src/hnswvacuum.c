/*-------------------------------------------------------------------------
 *
 * hnswvacuum.c
 *	  ambulkdelete and amvacuumcleanup for hnsw.
 *
 * ambulkdelete runs these passes (see also the design note in hnswpage.h):
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
 *	 3b. connect: link every live element that a walk over the live ones
 *		does not reach (HnswConnect): once pass 4 frees the deleted ones,
 *		inserts reuse their slots at once, and the ways through them go.
 *	 4. free: with inserts excluded, deleted elements are flagged FREE and
 *		their slots offered to inserts through the metapage's hints.
 *
 * amvacuumcleanup runs these passes itself when ambulkdelete did not (no
 * row was dead), to count and to free what an interrupted vacuum or
 * compaction left DELETED; then links every live element that a walk from
 * the entry point does not reach, on any layer (HnswConnectIndex); then, if
 * nobody uses the index, gives back the pages that free slots leave at its
 * end (HnswPageCompact, in hnswpage.c).
 *
 * Searches pass through deleted and free elements but never return them;
 * hnswscan.c rechecks distances so that a slot reused under a running scan
 * cannot surface at the old element's distance.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/vacuum.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
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
	int64		repaired;		/* element layers given new neighbors */
	int64		linked;			/* unreached elements linked before the free */
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

/* Pass 1's report on each element of a page */
static void
note_element(HnswRef ref, int level, int64 kept, HnswRemoved what, void *arg)
{
	HnswVacuumState *vs = arg;

	if (what != HNSW_REMOVED_LIVE)
	{
		add_deleted(vs, ref);
		vs->newlyDeleted += (what == HNSW_REMOVED_DELETED);
		return;
	}
	vs->stats->num_index_tuples += kept;
	if (level > vs->bestLevel)
	{
		vs->best = ref;
		vs->bestLevel = level;
	}
}

/*
 * Pass 1 over every data page: drop the dead heap TIDs, flag emptied
 * elements DELETED, collect the deleted (ascending) and the live element of
 * the highest level
 */
static void
pass_remove(HnswVacuumState *vs, BlockNumber nblocks)
{
	for (BlockNumber blkno = HNSW_FIRST_DATA_BLKNO; blkno < nblocks; blkno++)
	{
		vacuum_delay_point();
		HnswPageRemoveHeapTids(vs->index, blkno, vs->info->strategy,
							   vs->callback, vs->callback_state,
							   &vs->stats->tuples_removed, note_element, vs);
	}
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
	BlockNumber nblocks;
	HnswRef		top = vs->best;
	int			topLevel = vs->bestLevel;
	HnswRef		entry;
	int			entryLevel;

	if (top == HNSW_INVALID_REF)
		top = HnswPageTopLiveElement(vs->index,
									 RelationGetNumberOfBlocks(vs->index),
									 vs->info->strategy, true, &topLevel);
	HnswPageBeginBarrier(vs->index);
	nblocks = RelationGetNumberOfBlocks(vs->index);
	entry = HnswPageEntryPoint(vs->index, &entryLevel);
	if (entry == HNSW_INVALID_REF || is_deleted(vs, entry))
	{
		if (top == HNSW_INVALID_REF)
			top = HnswPageTopLiveElement(vs->index, nblocks,
										 vs->info->strategy, false, &topLevel);
		if (top != entry)
			HnswSetEntryPoint(vs->index, top, topLevel);
	}
	HnswPageEndBarrier(vs->index);
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
			 const float *evec, int layer, HnswRef entry, int entryLevel)
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
									 entry, entryLevel, &out);
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
		if (g->ops->add_link(g, &out[i], layer, &q, 0))
			linked = true;
	}
	if (!linked && layer == 0 && n > 0)
	{
		HnswCandidate q = *e;

		q.dist = out[0].dist;
		g->ops->add_link(g, &out[0], layer, &q, HNSW_LINK_FORCE);
	}
}

/* Pass 3: repair every live element that links to a deleted one */
static void
pass_repair(HnswVacuumState *vs, BlockNumber nblocks)
{
	Relation	index = vs->index;
	HnswPageGraph *pg;
	HnswGraph  *g;
	HnswRef		entry;
	int			entryLevel;
	MemoryContext old;

	if (vs->ndeleted == 0)
		return;
	pg = HnswPageGraphCreate(index, false);
	g = HnswPageGraphBase(pg);
	entry = HnswPageEntryPoint(index, &entryLevel);
	if (entry == HNSW_INVALID_REF)
		return;					/* nothing live is left to repair */

	for (BlockNumber blkno = HNSW_FIRST_DATA_BLKNO; blkno < nblocks; blkno++)
	{
		HnswCandidate elems[MaxOffsetNumber];
		int			levels[MaxOffsetNumber];
		int			nelems;

		vacuum_delay_point();
		nelems = HnswPageLiveElements(index, blkno, vs->info->strategy,
									  elems, levels);
		for (int i = 0; i < nelems; i++)
		{
			const float *evec = NULL;

			old = MemoryContextSwitchTo(vs->tmpCtx);
			/* layers above the entry point's wait for the cleanup (rule 4) */
			for (int lc = Min(levels[i], entryLevel); lc >= 0; lc--)
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
							(elems[i].ref != entry || lc < entryLevel));
				for (int j = 0; j < ncur && !affected; j++)
					affected = is_deleted(vs, cur[j]);
				if (!affected)
					continue;
				if (evec == NULL)
					evec = g->ops->element_vector(g, &elems[i]);
				repair_layer(vs, pg, &elems[i], evec, lc, entry, entryLevel);
			}
			MemoryContextSwitchTo(old);
			MemoryContextReset(vs->tmpCtx);
		}
	}
}

/*
 * Pass 4: flag the deleted elements FREE and offer their slots, with
 * inserts excluded a batch of pages at a time (HnswPageFreeElements)
 */
static int64
pass_free(HnswVacuumState *vs)
{
	if (vs->ndeleted == 0)
		return 0;
	return HnswPageFreeElements(vs->index, vs->deleted, vs->ndeleted,
								vs->info->strategy);
}

/*
 * The bulk delete's passes; *repaired (if not NULL) gets how many element
 * layers they gave new neighbors
 */
static IndexBulkDeleteResult *
bulk_delete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
			IndexBulkDeleteCallback callback, void *callback_state,
			int64 *repaired)
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

	/*
	 * Inserts reuse a freed slot at once, and its new lists no longer lead
	 * where the deleted element's did: an element that only deleted ones
	 * reached would be lost to every search until this vacuum's cleanup,
	 * which comes after the heap is vacuumed (or never, if the vacuum
	 * stops before it).  So link what the live elements do not reach now,
	 * before the slots are freed.
	 */
	if (vs.ndeleted > 0)
		vs.linked = HnswConnectIndex(index, info->strategy, false, true);
	HnswWaitPoint("vacuum_before_free");
	nfreed = pass_free(&vs);

	ereport(info->message_level,
			(errmsg("index \"%s\": removed %.0f heap TIDs; %lld elements newly deleted, %lld repaired, %lld linked, %lld freed for reuse",
					RelationGetRelationName(index), stats->tuples_removed,
					(long long) vs.newlyDeleted, (long long) vs.repaired,
					(long long) vs.linked, (long long) nfreed)));

	MemoryContextDelete(vs.tmpCtx);
	pfree(vs.deleted);
	stats->num_pages = RelationGetNumberOfBlocks(index);
	if (repaired)
		*repaired = vs.repaired;
	return stats;
}

/* ambulkdelete */
IndexBulkDeleteResult *
hnswbulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
			   IndexBulkDeleteCallback callback, void *callback_state)
{
	return bulk_delete(info, stats, callback, callback_state, NULL);
}

/*
 * Pass 5, connect: link every live element that no walk from the entry
 * point reaches on some layer from one that is reached (HnswConnect), and
 * after deletes every element that a search for its own vector misses.
 * Also the end of a build that went on on pages; with reachOnly, the walks
 * alone (before pass 4).  Returns how many it linked.
 */
int64
HnswConnectIndex(Relation index, BufferAccessStrategy strategy,
				 bool afterDeletes, bool reachOnly)
{
	HnswPageGraph *pg = HnswPageGraphCreate(index, false);
	int64		linked;
	int64		missed;

	HnswPageGraphSetStrategy(pg, strategy);
	linked = HnswConnect(HnswPageGraphBase(pg), afterDeletes, reachOnly,
						  &missed);
	if (missed > 0)
		elog(DEBUG1, "hnsw: " INT64_FORMAT " unreachable element layers of \"%s\" could not be linked (inserts changed their lists)",
			 missed, RelationGetRelationName(index));
	return linked;
}

/* The bulk delete callback of a cleanup-only vacuum */
static bool
nothing_dead(ItemPointer itemptr, void *state)
{
	return false;
}

/*
 * amvacuumcleanup: the bulk delete's passes if they did not run, connect
 * (pass 5), and compact.  Inserts and deletes can leave live elements that
 * no walk from the entry point reaches on some layer; each VACUUM links
 * them from elements that are reached, as the end of a build does.
 */
IndexBulkDeleteResult *
hnswvacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats)
{
	int64		linked;
	int64		repaired;
	BlockNumber given;

	if (info->analyze_only)
		return stats;
	/* (after the heap is vacuumed: 062 inserts here) */
	HnswWaitPoint("vacuum_before_cleanup");

	/*
	 * Without a bulk delete (no dead rows), its passes still run, deleting
	 * nothing: they count what is left, and they finish what a vacuum or a
	 * compaction that stopped half-way (a crash, a cancel, an insert that
	 * waited for the compaction) left flagged DELETED, which only they can
	 * free.  Then the compaction can move what they freed.
	 */
	if (stats == NULL)
		stats = bulk_delete(info, NULL, nothing_dead, NULL, &repaired);
	else
		repaired = stats->tuples_removed > 0 ? 1 : 0;	/* ambulkdelete ran */

	/*
	 * No update lock: it would make an insert that raises the entry point
	 * wait for the whole walk, and only vacuum's own passes, which never
	 * run beside this, take it exclusively.  The search for every element
	 * runs only when the passes changed lists.
	 */
	linked = HnswConnectIndex(info->index, info->strategy, repaired > 0,
							  false);
	ereport(info->message_level,
			(errmsg("index \"%s\": linked %lld unreachable elements",
					RelationGetRelationName(info->index), (long long) linked)));

	/* give back the pages that free slots leave at the end, if we can */
	given = HnswPageCompact(info->index, info->strategy);
	if (given > 0)
		ereport(info->message_level,
				(errmsg("index \"%s\": compacted, %u pages given back",
						RelationGetRelationName(info->index), given)));

	stats->num_pages = RelationGetNumberOfBlocks(info->index);
	return stats;
}
