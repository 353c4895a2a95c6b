/*-------------------------------------------------------------------------
 *
 * hnswpagevacuum.c
 *	  Vacuum's page work, part of the page room (hnswpage.h): what vacuum's
 *	  passes do to pages (hnswvacuum.c decides, this does):
 *	  dropping dead heap TIDs and flagging emptied elements DELETED, a page
 *	  per record; the live elements of a page, for the repair; the barrier
 *	  on the update lock; flagging deleted elements FREE with inserts
 *	  excluded a batch of pages at a time; counting the heap TIDs for a
 *	  cleanup-only vacuum.
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
