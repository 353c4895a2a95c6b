/*-------------------------------------------------------------------------
 *
 * hnswpage.h
 *	  The page room's private header: the disk format, the locking
 *	  protocol and WAL, and what the room's files (hnswpage.c) share with
 *	  each other and with the verifier.  Only they and the verifier
 *	  (hnswverify.c) include it; everyone else uses the page room's entry
 *	  points in hnsw.h.
 *
 * DESIGN NOTE: PAGES
 * ------------------
 * Page layout.  Block 0 is the metapage (HnswMetaPageData in the page
 * contents).  Every other block is a data page whose special space is
 * HnswPageOpaqueData and whose items are tuples of three kinds, told apart
 * by their first byte:
 *
 *	 element tuple (HNSW_ELEMENT_TUPLE): level, flags, up to HNSW_HEAPTIDS
 *		heap TIDs (rows sharing the same vector share one element), the TID
 *		of the element's neighbor tuple, the TID of its first duplicate
 *		tuple, and the vector in its element format's stored form
 *		(HnswFormat, hnsw.h): the index's vecsize bytes, the same for
 *		every element of an index.
 *	 neighbor tuple (HNSW_NEIGHBOR_TUPLE): (level + 2) * m slots of index
 *		TIDs of element tuples; layer 0 owns slots [0, 2m), layer l >= 1 owns
 *		[2m + (l - 1) m, 2m + l m) (HnswLayerStart).  A layer's list is
 *		packed at the front of its slots and ends at the first invalid TID.
 *	 duplicate tuple (HNSW_DUPLICATE_TUPLE): up to HNSW_DUPLICATE_TIDS more
 *		heap TIDs of an element whose own are taken, and the next duplicate
 *		tuple of the chain.  Equal vectors thus stay one element: as many
 *		elements at distance zero from each other would fill each other's
 *		neighbor lists and cut themselves off from the graph.  Duplicate
 *		tuples sit only on duplicate pages (HNSW_PAGE_DUPLICATES), never
 *		beside elements; the metapage names the current one (dupPage).
 *
 * An element is named by the TID of its element tuple (HnswRef packs block
 * and offset).  Its neighbor tuple is written on the same page when both
 * fit, which holds for all but the largest dimensions; a neighbor tuple is
 * never moved, and both tuples keep their size for life (but for
 * compaction, below), so all later changes are in-place overwrites.  An element's level is capped so that
 * its neighbor tuple fits a page (HnswPageMaxLevel).
 *
 * Inserts first look for a free slot: an element (and its neighbor tuple)
 * that vacuum unlinked and flagged HNSW_ELEMENT_FREE, of exactly the new
 * element's level, so that reuse keeps the level distribution; the
 * metapage's freeHint[level] says where to start looking.  Failing that
 * they append: the metapage names the last data page (insertPage), read
 * again just before writing; a new element goes there, or to a page added
 * at the end of the relation.
 *
 * Vacuum (hnswvacuum.c) drops dead heap TIDs and flags an element left
 * without any DELETED (on the page: inserts add rows only to unflagged
 * elements); after its barrier (rule 2) and the repair of every list that
 * names a deleted element, it flags the deleted elements FREE, with inserts
 * excluded a batch of pages at a time.  Deleted elements stay readable
 * until every repair is done: the repair walks through them.
 *
 * Vacuum's last step (compaction) gives pages back when free slots would
 * let it give back enough: holding the index in AccessExclusiveLock,
 * taken without waiting, it moves the live elements of the last pages into
 * free slots of earlier ones (resizing a free slot's neighbor tuple, or
 * rebuilding a page of free slots only, for the highest levels, which
 * seldom find a slot of their own level: other elements' neighbor tuples
 * at the page's start stay at their offsets, and those of its free slots
 * on other pages are left named by nothing), moves live duplicate tuples
 * likewise, gives a free slot whose neighbor tuple lies past the new end an
 * empty one before it (or, with no room there, drops the slot if it is its
 * page's last line pointer: no unused line pointer is ever left), renames the moved elements in every list and
 * truncates the relation.  A moved element's old slot stays, until the
 * renaming, a router flagged DELETED | MOVED whose lists lead to the new
 * slot first.  A compaction that stopped before the renaming (a crash, or
 * someone waiting for the index) leaves routers that the next vacuum's
 * passes treat as any deleted element: they repair the lists that name
 * them and free them, before that vacuum compacts again.  So a free slot's
 * neighbor tuple can change size or place, a free slot at a page's end can
 * go, and a page of free slots can be rebuilt; nothing else moves.
 *
 * Every walk over the elements goes through HnswScanElements, and every
 * walk along a duplicate chain through HnswWalkChain, bounded by the room
 * the index has for duplicate tuples, so a damaged chain that loops is an
 * error, never a hang.
 *
 * WAL.  Every change to an existing page goes through GenericXLog.  CREATE
 * INDEX writes its pages through shared buffers without WAL and then logs
 * them all at once with log_newpage_range() (HnswBulkFinish); if the build
 * outgrows maintenance_work_mem it logs what it has written before
 * continuing with ordinary (logged) inserts.  Unlogged indexes get an init
 * fork holding an empty metapage (ambuildempty).
 *
 * Locking protocol.
 *	 1. A backend holds at most one buffer content lock at a time, for as
 *		long as it takes to copy a tuple out or write one in, except in the
 *		orders of rules 6 and 7, and when adding a new element, which may
 *		hold the insert page together with pages it has just added to the
 *		relation (nobody else can know of those yet).  So content locks
 *		can never deadlock.
 *	 2. Inserts hold the heavyweight page lock HNSW_UPDATE_LOCK in share
 *		mode for their whole duration; an insert that will become the new
 *		entry point (the index is empty, or its level is above the current
 *		top) takes it in exclusive mode instead, so that two such inserts
 *		cannot both believe they are the top and orphan one another.
 *		Vacuum takes it in exclusive mode at its barrier and while it frees
 *		a batch of pages whose buffers it pinned before, and never sleeps
 *		while it holds it.  Vacuum's cleanup does not take it.
 *	 3. Linking a new element into a full neighbor list is optimistic: the
 *		list is read under a share lock, the pruned list is computed with no
 *		lock held (it reads other elements, and the new element's own list
 *		takes the member it drops, written alone under its page's exclusive
 *		lock, before the pruned list), and it is written under an
 *		exclusive lock only if the list did not change meanwhile; otherwise
 *		the update is retried a few times and then dropped (the new element
 *		keeps its own links, so it stays reachable through its neighbors'
 *		remaining links and the layer above).
 *	 4. The metapage is updated last, after the new element is fully linked,
 *		so a scan never starts from an element that is not yet in the graph.
 *	 5. Relation extension happens under the relation extension lock, which
 *		is never held while waiting for a buffer content lock.
 *	 6. An element's page is locked before its duplicate tuples' pages
 *		(adding a heap TID, scans reading the chain, vacuum), and the
 *		metapage is locked last of all, never held while waiting for
 *		another lock.  Duplicate pages never hold elements, so the order
 *		is by kind of page and cannot cycle.
 *	 7. Claiming a free slot locks the element's page and then, if it is
 *		elsewhere, its neighbor tuple's page, which always has the higher
 *		block number: pages are locked in ascending block order.
 *	 Scans take no heavyweight lock; they read one page at a time under a
 *	 share lock.  A scan that met an element before vacuum freed it and an
 *	 insert reused the slot would return the new element at the old
 *	 distance; so the scan recomputes the distance of every element it
 *	 returns and skips those whose distance changed.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TINYHNSW_HNSWPAGE_H
#define TINYHNSW_HNSWPAGE_H

#include "storage/bufmgr.h"
#include "storage/bufpage.h"
#include "storage/itemptr.h"
#include "storage/lockdefs.h"

#include "hnsw.h"

/* ... and each duplicate tuple of an element's chain (HNSW_HEAPTIDS: hnsw.h) */
#define HNSW_DUPLICATE_TIDS			64

/* Heavyweight page lock taken by inserts and vacuum (see protocol above) */
#define HNSW_UPDATE_LOCK			0

/* Page identification */
#define HNSW_MAGIC_NUMBER			0x484E5357	/* "HNSW" */
#define HNSW_FORMAT_VERSION			1
#define HNSW_PAGE_ID				0xFF91
#define HNSW_METAPAGE_BLKNO			0	/* data pages follow: HNSW_FIRST_DATA_BLKNO */

/* Tuple type bytes */
#define HNSW_ELEMENT_TUPLE			1
#define HNSW_NEIGHBOR_TUPLE			2
#define HNSW_DUPLICATE_TUPLE		3

/* Page flags */
#define HNSW_PAGE_DUPLICATES		0x0001	/* holds duplicate tuples only */

/* Element flags */
#define HNSW_ELEMENT_DELETED		0x01	/* no heap TIDs left, still linked */
#define HNSW_ELEMENT_FREE			0x02	/* unlinked by vacuum: reusable */
#define HNSW_ELEMENT_MOVED			0x04	/* with DELETED: compaction moved it
											 * to its first layer-0 neighbor */

typedef struct HnswMetaPageData
{
	uint32		magic;
	uint32		version;
	uint32		dimensions;
	uint16		m;
	uint16		efConstruction;
	BlockNumber entryBlkno;		/* entry point, InvalidBlockNumber if empty */
	OffsetNumber entryOffno;
	int16		entryLevel;		/* -1 if empty */
	BlockNumber insertPage;		/* last data page: new elements go here */
	/* per level: lowest block that may hold a free slot of that level */
	BlockNumber freeHint[HNSW_MAX_LEVEL + 1];
	BlockNumber dupPage;		/* duplicate tuples go here */
} HnswMetaPageData;

typedef HnswMetaPageData *HnswMetaPage;

typedef struct HnswPageOpaqueData
{
	uint16		flags;			/* HNSW_PAGE_* */
	uint16		page_id;		/* HNSW_PAGE_ID, for tools */
} HnswPageOpaqueData;

typedef HnswPageOpaqueData *HnswPageOpaque;

typedef struct HnswElementTupleData
{
	uint8		type;			/* HNSW_ELEMENT_TUPLE */
	uint8		level;			/* top layer of this element */
	uint8		flags;			/* HNSW_ELEMENT_* */
	uint8		ntids;			/* heap TIDs in use (packed at the front) */
	ItemPointerData heaptids[HNSW_HEAPTIDS];
	ItemPointerData neighbortid;	/* this element's neighbor tuple */
	ItemPointerData duptid;		/* first duplicate tuple, or invalid */
	uint16		unused;
	float		vec[FLEXIBLE_ARRAY_MEMBER];	/* the stored form: vecsize bytes */
} HnswElementTupleData;

typedef HnswElementTupleData *HnswElementTuple;

typedef struct HnswNeighborTupleData
{
	uint8		type;			/* HNSW_NEIGHBOR_TUPLE */
	uint8		unused;
	uint16		nslots;			/* (level + 2) * m */
	ItemPointerData slots[FLEXIBLE_ARRAY_MEMBER];
} HnswNeighborTupleData;

typedef HnswNeighborTupleData *HnswNeighborTuple;

typedef struct HnswDuplicateTupleData
{
	uint8		type;			/* HNSW_DUPLICATE_TUPLE */
	uint8		unused;
	uint16		ntids;			/* heap TIDs in use (packed at the front) */
	ItemPointerData next;		/* next duplicate tuple, or invalid */
	ItemPointerData heaptids[HNSW_DUPLICATE_TIDS];
} HnswDuplicateTupleData;

typedef HnswDuplicateTupleData *HnswDuplicateTuple;

#define HNSW_DUPLICATE_TUPLE_SIZE	MAXALIGN(sizeof(HnswDuplicateTupleData))

#define HNSW_ELEMENT_TUPLE_SIZE(vecsize) \
	MAXALIGN(offsetof(HnswElementTupleData, vec) + (vecsize))
#define HNSW_NEIGHBOR_TUPLE_SIZE(level, m) \
	MAXALIGN(offsetof(HnswNeighborTupleData, slots) + \
			 sizeof(ItemPointerData) * ((level) + 2) * (m))
/* Room for tuples on an empty data page */
#define HNSW_PAGE_CAPACITY \
	(BLCKSZ - MAXALIGN(SizeOfPageHeaderData) - \
	 MAXALIGN(sizeof(HnswPageOpaqueData)))

#define HnswPageGetOpaque(page) ((HnswPageOpaque) PageGetSpecialPointer(page))
#define HnswPageGetMeta(page)	((HnswMetaPage) PageGetContents(page))

/* On pages a ref packs the block and offset of the element tuple */
#define HnswRefFromTid(blk, off)	(((uint64) (blk) << 16) | (uint64) (off))
#define HnswRefBlock(ref)		((BlockNumber) ((ref) >> 16))
#define HnswRefOffset(ref)		((OffsetNumber) ((ref) & 0xFFFF))

/* The ref of the tuple a TID names (the TID is not checked: see the callers) */
static inline HnswRef
HnswRefFromItemPointer(const ItemPointerData *tid)
{
	return HnswRefFromTid(ItemPointerGetBlockNumberNoCheck(tid),
						  ItemPointerGetOffsetNumberNoCheck(tid));
}

/* The graph on an index's pages: HnswGraphOps over them */
struct HnswPageGraph
{
	HnswGraph	g;				/* must be first */
	Relation	index;
	BlockNumber nblocks;		/* the index's size, last we looked */
	BufferAccessStrategy strategy;	/* for walks over every element */
	LOCKMODE	insertLock;		/* an insert's HNSW_UPDATE_LOCK mode */
	HnswMetaPageData insertMeta;	/* the metapage as the insert read it */
};

/* hnswpage.c: pages, tuples, the walks, the metapage */
extern void HnswInitPage(Page page);
extern Item HnswGetItem(Page page, OffsetNumber offno, Size minsize);
extern void HnswModifyMeta(Relation index,
						   bool (*fn) (HnswMetaPage meta, void *arg),
						   void *arg);
extern void HnswCheckPage(Relation index, Page page, BlockNumber blkno);
extern void HnswTupleCorrupted(Relation index, BlockNumber blkno,
							   OffsetNumber offno, const char *what)
			pg_attribute_noreturn();
extern void HnswReadMeta(Relation index, HnswMetaPageData *meta);
extern HnswElementTuple HnswGetElement(Relation index, Page page,
									   BlockNumber blkno, OffsetNumber offno,
									   Size vecsize);
extern HnswNeighborTuple HnswGetNeighbors(Relation index, Page page,
										  BlockNumber blkno,
										  OffsetNumber offno, int m);
extern HnswDuplicateTuple HnswGetDuplicate(Relation index, Page page,
										   BlockNumber blkno,
										   OffsetNumber offno);
extern Buffer HnswNewBuffer(Relation index);
typedef bool (*HnswChainFn) (Relation index, Buffer buf, OffsetNumber offno,
							 HnswDuplicateTuple dtup, void *arg);
extern bool HnswWalkChain(Relation index, BlockNumber eblk, OffsetNumber eoff,
						  ItemPointerData head, int mode,
						  BufferAccessStrategy strategy, HnswChainFn fn,
						  void *arg);
typedef bool (*HnswElementFn) (Relation index, Buffer buf, OffsetNumber offno,
							   HnswElementTuple etup, void *arg);
#define HNSW_SCAN_PAUSE			0x01	/* vacuum's cost pauses between pages */
#define HNSW_SCAN_EXCLUSIVE		0x02	/* fn may change the pages */
extern BlockNumber HnswScanElements(Relation index, BlockNumber from,
									BlockNumber to,
									BufferAccessStrategy strategy, int flags,
									HnswElementFn fn, void *arg);
extern int	HnswCollectHeapTids(Relation index, BlockNumber blkno,
								OffsetNumber offno, HnswElementTuple etup,
								ItemPointer *tids, int *maxtids);
extern void HnswCopyPage(Relation index, BlockNumber blkno,
						 BufferAccessStrategy strategy, Page copy);
extern void HnswRaiseEntryPoint(Relation index, HnswRef entry, int level);
extern void HnswAdvanceInsertPage(Relation index, BlockNumber blkno);
extern void HnswNoteFreeSlot(Relation index, BlockNumber blkno, int level);
extern void HnswAdvanceFreeHint(Relation index, int level, BlockNumber from,
								BlockNumber to);
extern void HnswSetDuplicatePage(Relation index, BlockNumber blkno);

/* hnswpage.c: HnswGraphOps over pages */
extern void HnswSetLayer(HnswNeighborTuple ntup, int m, int layer,
						 const HnswRef *refs, int n);

/* hnswpage.c: the insert's operations */
extern bool HnswPageBeginInsert(HnswGraph *g, int level, HnswRef *entry,
								int *entryLevel);
extern bool HnswPageAddHeapTid(HnswGraph *g, const HnswCandidate *e,
							   const float *vec, ItemPointer heaptid);
extern bool HnswPageAddElement(HnswGraph *g, const float *vec, int level,
							   ItemPointer heaptid, const HnswNeighborhood *nb,
							   HnswCandidate *self);
extern void HnswPageEndInsert(HnswGraph *g);

#endif							/* TINYHNSW_HNSWPAGE_H */
