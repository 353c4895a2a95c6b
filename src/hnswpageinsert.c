/*-------------------------------------------------------------------------
 *
 * hnswpageinsert.c
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
#include "postgres.h"

#include "access/generic_xlog.h"
#include "storage/lmgr.h"
#include "utils/rel.h"

#include "hnswpage.h"

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
