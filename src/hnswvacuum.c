/*-------------------------------------------------------------------------
 *
 * hnswvacuum.c
 *	  ambulkdelete and amvacuumcleanup for hnsw.
 *
 * Pass 1 (remove heap TIDs): every element tuple drops the heap TIDs the
 * callback reports dead; an element left with none is flagged deleted.
 * A deleted element stays in the graph as a waypoint, so searches still
 * route through it, but scans never return it and inserts never merge a
 * duplicate into it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "commands/vacuum.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"

#include "hnsw.h"

/* Drop dead heap TIDs from the element tuples of one locked page */
static void
remove_heap_tids(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
				 IndexBulkDeleteCallback callback, void *callback_state,
				 Buffer buf, int dim)
{
	Relation	index = info->index;
	BlockNumber blkno = BufferGetBlockNumber(buf);
	GenericXLogState *state = GenericXLogStart(index);
	Page		page = GenericXLogRegisterBuffer(state, buf, 0);
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
	bool		changed = false;

	for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
	{
		ItemId		itemid = PageGetItemId(page, off);
		HnswElementTuple etup;
		int			kept = 0;

		if (!ItemIdIsNormal(itemid) ||
			*(uint8 *) PageGetItem(page, itemid) != HNSW_ELEMENT_TUPLE)
			continue;
		etup = HnswGetElement(index, page, blkno, off, dim);
		if (etup->flags & HNSW_ELEMENT_DELETED)
			continue;
		for (int t = 0; t < etup->ntids; t++)
		{
			if (callback(&etup->heaptids[t], callback_state))
			{
				stats->tuples_removed++;
				changed = true;
			}
			else
				etup->heaptids[kept++] = etup->heaptids[t];
		}
		for (int t = kept; t < etup->ntids; t++)
			ItemPointerSetInvalid(&etup->heaptids[t]);
		etup->ntids = kept;
		if (kept == 0)
			etup->flags |= HNSW_ELEMENT_DELETED;
		else
			stats->num_index_tuples += kept;
	}
	if (changed)
		GenericXLogFinish(state);
	else
		GenericXLogAbort(state);
}

/* ambulkdelete: pass 1 over every data page */
IndexBulkDeleteResult *
hnswbulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
			   IndexBulkDeleteCallback callback, void *callback_state)
{
	Relation	index = info->index;
	int			dim = HnswGetIndexInfo(index)->dimensions;
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);

	if (stats == NULL)
		stats = palloc0(sizeof(IndexBulkDeleteResult));
	stats->num_index_tuples = 0;

	for (BlockNumber blkno = HNSW_METAPAGE_BLKNO + 1; blkno < nblocks; blkno++)
	{
		Buffer		buf;

		vacuum_delay_point();
		buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL,
								 info->strategy);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		remove_heap_tids(info, stats, callback, callback_state, buf, dim);
		UnlockReleaseBuffer(buf);
	}
	stats->num_pages = nblocks;
	return stats;
}

/* amvacuumcleanup: report the index's size when bulkdelete did not run */
IndexBulkDeleteResult *
hnswvacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats)
{
	if (info->analyze_only)
		return stats;
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
				ItemId		itemid = PageGetItemId(page, off);

				if (ItemIdIsNormal(itemid) &&
					*(uint8 *) PageGetItem(page, itemid) == HNSW_ELEMENT_TUPLE)
					stats->num_index_tuples +=
						HnswGetElement(index, page, blkno, off, dim)->ntids;
			}
			UnlockReleaseBuffer(buf);
		}
		stats->num_pages = nblocks;
	}
	return stats;
}
