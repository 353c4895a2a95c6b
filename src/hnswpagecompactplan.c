/*-------------------------------------------------------------------------
 *
 * hnswpagecompactplan.c
 *	  Compaction's plan (part of the page room): an inventory of every
 *	  element and duplicate tuple, then where each live one past the new
 *	  end goes, in a model of the index (hnswpagecompact.h), before
 *	  anything is written.  hnswpagecompact.c carries the plan out.
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

/*
 * The first block from *page on, before limit, that holds only free slots
 * (their element and neighbor tuples, nothing else), to be rebuilt for
 * one element: its slots are marked gone and the one at offset 1 is
 * returned, to become the element; NULL if there is none.  With routers,
 * a page may also hold moved elements' old slots, which step 3 renames
 * before a page is rebuilt as a duplicate page (step 4).
 */
static CElem *
rebuild_page_for(Compactor *c, BlockNumber limit, BlockNumber *page,
				 bool routers)
{
	for (; *page < limit; (*page)++)
	{
		int64		first;
		int64		last;
		int			owned = 0;
		bool		ok = !c->isdup[*page];

		block_elems(c, *page, &first, &last);
		for (int64 i = first; i < last && ok; i++)
		{
			CElem	   *e = &c->elems[i];

			ok = e->free && (routers || !e->router) && !e->filled && !e->gone &&
				HnswRefBlock(e->nref) == *page;
			owned += 2;
		}
		if (!ok || owned == 0 || owned != c->nitems[*page] ||
			HnswRefOffset(c->elems[first].ref) != FirstOffsetNumber)
			continue;
		for (int64 i = first; i < last; i++)
			c->elems[i].gone = true;
		c->rebuilt[*page] = true;
		(*page)++;
		return &c->elems[first];
	}
	return NULL;
}

/* Whether an element of a level fits one page with its neighbor tuple */
static bool
pair_fits(Compactor *c, int level)
{
	return HNSW_ELEMENT_TUPLE_SIZE(c->vecsize) +
		MAXALIGN(HNSW_NEIGHBOR_TUPLE_SIZE(level, c->m)) +
		2 * sizeof(ItemIdData) <= HNSW_PAGE_CAPACITY;
}

/*
 * Where the index would end if packed as a fresh build: the live elements
 * at level 0's density, and the duplicate pages.  Moves to slots past it
 * are not worth a page rebuilt for them (rebuild_page_for).
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
				 * the end there); else a page of free slots rebuilt for x, if
				 * x's two tuples fit one page (a sparsevec element at m 4
				 * shares its page with a neighbor tuple of level 0 only).
				 */
				CElem	   *g = grow_slot(c, x, i,
										  s ? Min(xblk, goal) : xblk, &any);

				if (g != NULL)
					s = g;
				else if (pair_fits(c, x->level) &&
						 rebuild_page_for(c, s ? HnswRefBlock(s->ref) : xblk,
										  &c->rebuildPage, false) != NULL)
				{
					s = &c->elems[0];	/* set below */
					rebuild = true;
				}
				else if (s != NULL)
					(*f)++;
			}
			if (s == NULL)
				continue;
			if (rebuild)
			{
				int64		first;
				int64		last;

				/* the page rebuild_page_for took: x goes to its offset 1 */
				block_elems(c, c->rebuildPage - 1, &first, &last);
				s = &c->elems[first];
				s->gone = false;
				s->nref = HnswRefFromTid(c->rebuildPage - 1, FirstOffsetNumber + 1);
			}

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

/* One past the last block a live element or its neighbor tuple needs */
static BlockNumber
elements_end(Compactor *c)
{
	BlockNumber end = HNSW_METAPAGE_BLKNO + 1;

	for (int64 i = 0; i < c->nelems; i++)
	{
		if (c->elems[i].free)
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
		if (roomblk >= end &&
			rebuild_page_for(c, HnswRefBlock(d->ref), &convpage, true) != NULL)
		{
			convblk = convpage - 1;
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
bool
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
	plan_moves(c);
	end = elements_end(c);
	prune_moves(c, end);
	dend = plan_dup_moves(c, end, &p->dmoves, &p->ndmoves);
	p->end = slots_end(c, dend, &p->smoves, &p->nsmoves);
	for (int64 i = 0; i < p->nsmoves; i++)
		nsdrops += p->smoves[i].to == HNSW_INVALID_REF;
	elog(DEBUG1, "hnsw compaction of \"%s\": %u pages, %u needed (%u for the elements, %u for the duplicates, %u for the free slots, %u at the packing of a fresh build), %lld element and %lld duplicate tuple moves, %lld free slots given a neighbor tuple and %lld dropped",
		 RelationGetRelationName(c->index), c->nblocks, p->end, end, dend,
		 p->end, packed_end(c), (long long) c->nmoves,
		 (long long) p->ndmoves, (long long) (p->nsmoves - nsdrops),
		 (long long) nsdrops);
	return true;
}
