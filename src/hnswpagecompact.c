/*-------------------------------------------------------------------------
 *
 * hnswpagecompact.c
 *	  Compaction, part of the page room: VACUUM's last step gives pages
 *	  back.  It moves the live elements and duplicate tuples of the last
 *	  pages into free room on the first ones, then truncates the relation.
 *	  hnswpagecompactplan.c plans the moves (in the model of
 *	  hnswpagecompact.h); this file carries them out, step by step.
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
 *		resized in place to it), in one record over the pages of both:
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

#include "hnswpagecompact.h"

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
Buffer
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
	ItemPointerSet(&ecopy->neighbortid, pblk, FirstOffsetNumber + 1);
	ncopy = palloc0(nsize);
	memcpy(ncopy, xn, offsetof(HnswNeighborTupleData, slots) +
		   sizeof(ItemPointerData) * xn->nslots);

	/* every tuple on the page belonged to a free slot */
	page = pageset_page(&ps, pblk);
	HnswInitPage(page);
	if (PageAddItem(page, (Item) ecopy, esize, FirstOffsetNumber, false,
					false) != FirstOffsetNumber ||
		PageAddItem(page, (Item) ncopy, nsize, FirstOffsetNumber + 1, false,
					false) != FirstOffsetNumber + 1)
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
							 HnswRefOffset(r) != FirstOffsetNumber)))
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
 * Shrink the index if that gives back enough pages and nobody uses the
 * index: the caller (vacuum) holds no buffer.  Returns the pages given
 * back.
 */
BlockNumber
HnswPageCompact(Relation index, BufferAccessStrategy strategy)
{
	Compactor	c;
	BlockNumber end;
	BlockNumber given = 0;
	CPlan		plan;
	MemoryContext cxt;
	MemoryContext old;

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

	cxt = AllocSetContextCreate(CurrentMemoryContext, "hnsw compaction",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	memset(&c, 0, sizeof(c));
	c.index = index;
	c.strategy = strategy;
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

done:
	UnlockRelation(index, AccessExclusiveLock);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return given;
}
