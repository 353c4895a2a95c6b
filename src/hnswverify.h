/*-------------------------------------------------------------------------
 *
 * hnswverify.h
 *	  hnsw_verify()'s private header: the in-memory map of the index that
 *	  the page walk (hnswverify.c) fills and the checks on the map
 *	  (hnswverifymap.c) read.  Only those two include it; the design is at
 *	  the top of hnswverify.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TINYHNSW_HNSWVERIFY_H
#define TINYHNSW_HNSWVERIFY_H

#include "utils/hsearch.h"

#include "hnswpage.h"

/* Every element flag hnswpage.h defines: each means "no heap TIDs" */
#define HNSW_KNOWN_ELEMENT_FLAGS	(HNSW_ELEMENT_DELETED | HNSW_ELEMENT_FREE | HNSW_ELEMENT_MOVED)


/* An element tuple as the walk saw it */
typedef struct VElem
{
	HnswRef		ref;			/* where it is */
	HnswRef		ntid;			/* its neighbor tuple */
	HnswRef		duptid;			/* its first duplicate tuple, or invalid */
	int32		ntup;			/* index in ntups[], -1 until paired */
	uint8		level;
	uint8		flags;
	uint8		ntids;
} VElem;

/* A neighbor tuple as the walk (or a re-read) saw it */
typedef struct VNtup
{
	HnswRef		ref;
	int32		owner;			/* index in elems[], -1 until paired */
	uint16		nslots;
	uint32		l0start;		/* its layer-0 list in l0[] */
	uint16		l0count;
	uint32		upstart;		/* its upper-layer references in up[] */
	uint16		upcount;
} VNtup;

/* A duplicate tuple as the walk (or a re-read) saw it */
typedef struct VDup
{
	HnswRef		ref;
	HnswRef		next;			/* next of the chain, or HNSW_INVALID_REF */
	uint32		tidstart;		/* its heap TIDs in duptids[] */
	uint16		ntids;
	bool		chained;		/* met on some element's chain */
} VDup;

/* A reference on a layer above 0 */
typedef struct VUpRef
{
	ItemPointerData tid;
	uint8		layer;
} VUpRef;

/* A heap TID and the element holding it */
typedef struct VHeapTid
{
	ItemPointerData tid;
	int32		elem;
} VHeapTid;

/* An element or neighbor tuple met outside the walk (a re-read) */
typedef struct VLate
{
	HnswRef		ref;			/* hash key */
	uint8		type;			/* HNSW_*_TUPLE */
	uint8		level;			/* element */
	uint8		flags;
	int32		index;			/* neighbor or duplicate tuple: in ntups[]/dups[] */
} VLate;

/* A growable array in the verifier's memory context */
typedef struct VArray
{
	char	   *items;
	Size		itemsize;
	int64		count;
	int64		capacity;
} VArray;

typedef struct VerifyState
{
	Relation	index;
	Relation	heap;
	const char *name;			/* the index's name, for messages */
	int			dim;
	Size		vecsize;		/* bytes of a stored vector */
	const HnswFormat *format;	/* what those bytes are */
	int			m;
	int			maxLevel;		/* highest level whose neighbor tuple fits */
	bool		normalized;		/* cosine: stored vectors have norm 1 */
	BlockNumber nblocks;		/* sampled when the walk starts */
	BlockNumber nblocksNow;		/* the latest look at the relation's size */
	BufferAccessStrategy strategy;
	PGAlignedBlock page;		/* the page being checked, a private copy */

	VArray		elems;			/* VElem, in (block, offset) order */
	VArray		ntups;			/* VNtup, walk order, then re-read ones */
	int64		nwalkNtups;		/* how many of ntups the walk found */
	VArray		l0;				/* ItemPointerData */
	VArray		up;				/* VUpRef */
	VArray		dups;			/* VDup, walk order, then re-read ones */
	int64		nwalkDups;
	VArray		duptids;		/* ItemPointerData: duplicate tuples' heap TIDs */
	VArray		heaptids;		/* VHeapTid */
	int64	   *elemStart;		/* per block: first index in elems[] */
	int64	   *ntupStart;		/* per block: first index in ntups[] */
	int64	   *dupStart;		/* per block: first index in dups[] */
	uint8	   *pageKind;		/* per block: PAGE_* as the walk saw it */
	HTAB	   *late;			/* VLate by ref */

	/* summary */
	int64		deleted;
	int			maxLevelSeen;	/* of live elements */
	int			entryLevel;
	int64		unreachable;	/* live elements layer 0 does not reach */
	int64		unreachableUpper;	/* the same, summed over layers >= 1 */

	/* heapallindexed */
	HnswIndexInfo info;			/* a copy: the relcache's may be rebuilt */
	float	   *vecbuf;
	MemoryContext rowcxt;
} VerifyState;

/* What the walk found a block to be */
#define PAGE_NEW		0		/* all zeros */
#define PAGE_ELEMENTS	1		/* element and neighbor tuples */
#define PAGE_DUPLICATES	2		/* duplicate tuples */

/* Growable arrays */
/* An empty array of items of a size */
static inline void
varray_init(VArray *a, Size itemsize)
{
	a->itemsize = itemsize;
	a->count = 0;
	a->capacity = 64;
	a->items = palloc(itemsize * a->capacity);
}

/* Room for one more item at the end; returns it */
static inline void *
varray_push(VArray *a)
{
	if (a->count == a->capacity)
	{
		a->capacity *= 2;
		a->items = repalloc_huge(a->items, a->itemsize * a->capacity);
	}
	return a->items + a->itemsize * a->count++;
}

#define VITEM(a, type, i)	(((type *) (a).items) + (i))

/* hnswverify.c: reporting, and reading a tuple again as it is now */
extern void HnswVerifyCorrupted(VerifyState *vs, BlockNumber blkno,
								OffsetNumber offno, const char *fmt,...)
			pg_attribute_printf(4, 5) pg_attribute_noreturn();
extern VLate *HnswVerifyReread(VerifyState *vs, HnswRef ref, uint8 want);
extern VNtup *HnswVerifyLateEntry(VerifyState *vs, HnswRef entry);
extern void HnswVerifyEntry(VerifyState *vs, HnswMetaPageData *meta);

/* hnswverifymap.c: the checks on the map */
extern int64 HnswVerifyFindElem(VerifyState *vs, HnswRef ref);
extern int64 HnswVerifyFindNtup(VerifyState *vs, HnswRef ref);
extern int64 HnswVerifyFindDup(VerifyState *vs, HnswRef ref);
extern void HnswVerifyGraph(VerifyState *vs);
extern void HnswVerifyChains(VerifyState *vs);
extern int	HnswVerifyElementLevel(VerifyState *vs, HnswRef ref, bool fresh);
extern void HnswVerifyReachability(VerifyState *vs,
								   const HnswMetaPageData *meta);
extern void HnswVerifyHeapTids(VerifyState *vs);
extern void HnswVerifyHeapRows(VerifyState *vs, Snapshot snapshot);

#endif							/* TINYHNSW_HNSWVERIFY_H */
