/*-------------------------------------------------------------------------
 *
 * hnswpagecompact.h
 *	  Compaction's private header: the model of the index in which
 *	  hnswpagecompactplan.c plans the moves and from which hnswpagecompact.c
 *	  carries them out.  Only those two include it; the design (the steps,
 *	  and why each leaves a whole index) is at the top of hnswpagecompact.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TINYHNSW_HNSWPAGECOMPACT_H
#define TINYHNSW_HNSWPAGECOMPACT_H

#include "hnswpage.h"

/* An element as the inventory saw it */
typedef struct CElem
{
	HnswRef		ref;			/* element tuple */
	HnswRef		nref;			/* its neighbor tuple */
	HnswRef		dup;			/* first duplicate tuple, or invalid */
	uint8		level;
	bool		free;			/* flagged FREE (or about to be) */
	bool		filled;			/* a planned move's destination */
	bool		router;			/* MOVED (or planned to be): renamed, then FREE */
	bool		gone;			/* its page is rebuilt for another element */
	bool		newntup;		/* a free slot given a new neighbor tuple */
} CElem;

/* A duplicate tuple as the inventory saw it */
typedef struct CDup
{
	HnswRef		ref;
	HnswRef		next;
	bool		used;			/* on the chain of an element not FREE */
} CDup;

/* A planned move: an element's or a duplicate tuple's */
typedef struct CMove
{
	HnswRef		from;
	HnswRef		to;
	uint8		level;			/* the free slot's level before */
	bool		rebuild;		/* into a rebuilt page: to is (page, 1) */
} CMove;

typedef struct Compactor
{
	Relation	index;
	BufferAccessStrategy strategy;
	Size		vecsize;		/* an element's stored vector, in bytes */
	int			m;
	BlockNumber nblocks;
	HnswMetaPageData meta;
	bool	   *isdup;			/* per block: a duplicate page */
	Size	   *room;			/* per block: free space */
	int		   *nitems;			/* per block: tuples */
	OffsetNumber *maxoff;		/* per block: its last line pointer */
	bool	   *rebuilt;		/* per block: rebuilt for one moved element */
	bool	   *dupconv;		/* per block: rebuilt as a duplicate page */
	BlockNumber rebuildPage;	/* where rebuild_page_for looks next */
	CElem	   *elems;			/* ascending by ref */
	int64		nelems;
	CDup	   *dups;			/* ascending by ref */
	int64		ndups;
	CMove	   *moves;			/* element moves, then sorted by from */
	int64		nmoves;
	HnswRef    *drops;			/* free slots whose chains step 1 drops */
	int64		ndrops;
	bool		stopped;		/* someone waits for the lock */
	int64		nrouters;		/* left by a compaction that stopped */
} Compactor;

/* Take the chance only when it gives back this much */
#define HNSW_COMPACT_MIN_PAGES		8
#define HNSW_COMPACT_MIN_FRACTION	0.1

/* The plan beside c->moves: the new end, and the moves of steps 3b and 4 */
typedef struct CPlan
{
	BlockNumber end;
	CMove	   *dmoves;			/* step 4: duplicate tuples */
	int64		ndmoves;
	CMove	   *smoves;			/* step 3b: free slots (to invalid: dropped) */
	int64		nsmoves;
} CPlan;

static inline HnswRef
ref_of(ItemPointerData tid)
{
	if (!ItemPointerIsValid(&tid))
		return HNSW_INVALID_REF;
	return HnswRefFromTid(ItemPointerGetBlockNumber(&tid),
						  ItemPointerGetOffsetNumber(&tid));
}

static inline void
set_tid(ItemPointer tid, HnswRef ref)
{
	if (ref == HNSW_INVALID_REF)
		ItemPointerSetInvalid(tid);
	else
		ItemPointerSet(tid, HnswRefBlock(ref), HnswRefOffset(ref));
}

static inline int
cmove_cmp(const void *a, const void *b)
{
	return HnswRefCmp(&((const CMove *) a)->from, &((const CMove *) b)->from);
}

static inline int
cdup_cmp(const void *a, const void *b)
{
	return HnswRefCmp(&((const CDup *) a)->ref, &((const CDup *) b)->ref);
}

static inline CDup *
find_dup(Compactor *c, HnswRef ref)
{
	CDup		key = {ref, HNSW_INVALID_REF, false};

	return bsearch(&key, c->dups, c->ndups, sizeof(CDup), cdup_cmp);
}

/* hnswpagecompactplan.c */
extern bool HnswCompactPlan(Compactor *c, CPlan *plan);

/* hnswpagecompact.c */
extern Buffer HnswCompactRead(Compactor *c, BlockNumber blkno, int mode);

#endif							/* TINYHNSW_HNSWPAGECOMPACT_H */
