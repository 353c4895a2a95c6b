/*-------------------------------------------------------------------------
 *
 * hnsw.h
 *	  The map of the hnsw index: disk format, locking protocol, WAL, the
 *	  graph interface shared by the in-memory build and the on-page index,
 *	  and every tunable constant.
 *
 * DESIGN NOTE
 * -----------
 * The index is an HNSW graph (Malkov & Yashunin, "Efficient and robust
 * approximate nearest neighbor search using Hierarchical Navigable Small
 * World graphs").  The algorithm lives once, in hnswgraph.c, and works on
 * any storage that implements HnswGraphOps: hnswmem.c (the graph built in
 * memory by CREATE INDEX) and hnswpage.c (the graph in buffer pages, used
 * by inserts, scans and vacuum).
 *
 * Page layout.  Block 0 is the metapage (HnswMetaPageData in the page
 * contents).  Every other block is a data page whose special space is
 * HnswPageOpaqueData and whose items are tuples of two kinds, told apart by
 * their first byte:
 *
 *	 element tuple (HNSW_ELEMENT_TUPLE): level, flags, up to HNSW_HEAPTIDS
 *		heap TIDs (rows sharing the same vector share one element), the TID
 *		of the element's neighbor tuple, the TID of its first duplicate
 *		tuple, and the vector (dimensions floats).
 *	 neighbor tuple (HNSW_NEIGHBOR_TUPLE): (level + 2) * m slots of index
 *		TIDs of element tuples; layer 0 owns slots [0, 2m), layer l >= 1 owns
 *		[2m + (l - 1) m, 2m + l m).  A layer's list is packed at the front of
 *		its slots and ends at the first invalid TID.
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
 * fit, which is always the case below about 1900 dimensions; a neighbor
 * tuple is never moved, and both tuples keep their size for life, so all
 * later changes are in-place overwrites.
 *
 * Inserts first look for a free slot: an element (and its neighbor tuple)
 * that vacuum unlinked and flagged HNSW_ELEMENT_FREE, of exactly the new
 * element's level, so that reuse keeps the level distribution; the
 * metapage's freeHint[level] says where to start looking.  Failing that
 * they append: the metapage names the last data page (insertPage), read
 * again just before writing; a new element goes there, or to a page added
 * at the end of the relation.
 *
 * Vacuum (hnswvacuum.c) works in passes: drop dead heap TIDs and flag
 * elements left without any DELETED (on the page: inserts add rows only to
 * unflagged elements); wait out inserts that started before (they may have
 * chosen such an element as a neighbor) and replace a deleted entry point,
 * with an element inserted meanwhile if no other is live; give every live
 * element that links to a deleted one new neighbors, chosen from the live
 * elements that the deleted ones linked to (which must therefore stay
 * readable until every repair is done) and, for a list that lost most of
 * its members or was empty, from a search; then, with inserts excluded a
 * batch of pages at a time, flag the deleted elements FREE.  Deleted and
 * free elements are traversed by searches but never returned, merged
 * into, or linked to.  A repaired element whose new neighbors all prune
 * it on layer 0 is kept by the nearest, as a new element is.  Vacuum's
 * cleanup then (HnswPageConnect) makes the highest live element the entry
 * point if it is not; walks each layer from the entry point and links
 * every live element the walk does not reach from the nearest reached
 * element that takes it (walking again until all are reached, four times
 * at most); links each upper-layer element that a greedy descent to its
 * own vector misses from where the descent ends; and has one of each
 * element's own layer-0 neighbors link back to it.
 *
 * An insert that prunes a full layer-0 list never takes the last incoming
 * link of the member it drops (asked of that member's own neighbors): it
 * drops another that is linked from elsewhere.
 *
 * Every walk along a duplicate chain goes through HnswWalkChain, bounded
 * by the room the index has for duplicate tuples, so a damaged chain that
 * loops is an error, never a hang.
 *
 * WAL.  Every change to an existing page goes through GenericXLog.  CREATE
 * INDEX writes its pages through shared buffers without WAL and then logs
 * them all at once with log_newpage_range(); if the build outgrows
 * maintenance_work_mem it logs what it has written before continuing with
 * ordinary (logged) inserts.  Unlogged indexes get an init fork holding an
 * empty metapage (ambuildempty).
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
 *		lock held (it reads other elements), and it is written under an
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
#ifndef TINYHNSW_HNSW_H
#define TINYHNSW_HNSW_H

#include <math.h>

#include "access/amapi.h"
#include "access/genam.h"
#include "access/itup.h"
#include "common/relpath.h"
#include "nodes/execnodes.h"
#include "storage/bufpage.h"
#include "storage/itemptr.h"
#include "utils/relcache.h"

#include "distance.h"

/* Option ranges and defaults (reloptions and settings) */
#define HNSW_DEFAULT_M				16
#define HNSW_MIN_M					2
#define HNSW_MAX_M					100
#define HNSW_DEFAULT_EF_CONSTRUCTION	64
#define HNSW_MIN_EF_CONSTRUCTION	4
#define HNSW_MAX_EF_CONSTRUCTION	1000
#define HNSW_DEFAULT_EF_SEARCH		40
#define HNSW_MIN_EF_SEARCH			1
#define HNSW_MAX_EF_SEARCH			1000

/*
 * How many elements an insert (and vacuum's repair) keeps on each layer
 * above the ones it links into, on its way down, and how many a scan keeps
 * on each layer above layer 0, whose search starts from all of them.  The
 * paper keeps one.  On well-separated clusters a single greedy path now and
 * then stops in a neighboring cluster: an element inserted from there
 * links only into that cluster, where no search for its own neighborhood
 * ever looks, and a scan from there finds only that cluster, its whole
 * first round at any usual ef_search (and under strict order the rows it
 * finds later are lost).  With 31 clusters in 32 dimensions, one scan in 90
 * stopped so with one; one in 600 with two, which costs 3% more distances.
 */
#define HNSW_INSERT_DESCENT_EF		4
#define HNSW_SCAN_DESCENT_EF		2

/*
 * Vacuum's repair of a list that lost members pools the live elements
 * reached through the lost: through chains of up to HNSW_REPAIR_HOPS
 * deleted elements, expanding at most HNSW_REPAIR_WALK of them; it
 * searches as well only for a list that lost more than it kept
 * (hnswgraph.c, HnswRepairNeighbors).
 */
#define HNSW_REPAIR_HOPS			3
#define HNSW_REPAIR_WALK			32

/* Largest indexable dimension count: an element tuple must fit a page */
#define HNSW_MAX_DIM				2000

/* Highest layer an element may be assigned (its neighbor tuple must fit) */
#define HNSW_MAX_LEVEL				16

/* Heap TIDs an element tuple holds (rows with equal vectors share it) */
#define HNSW_HEAPTIDS				9
/* ... and each duplicate tuple of its chain */
#define HNSW_DUPLICATE_TIDS			64

/* Support function and strategy numbers */
#define HNSW_METRIC_PROC			1	/* (internal) -> internal: HnswMetric */
#define HNSW_NPROC					1
#define HNSW_DISTANCE_STRATEGY		1	/* the ORDER BY distance operator */

/* Heavyweight page lock taken by inserts and vacuum (see protocol above) */
#define HNSW_UPDATE_LOCK			0

/* Page identification */
#define HNSW_MAGIC_NUMBER			0x484E5357	/* "HNSW" */
#define HNSW_FORMAT_VERSION			1
#define HNSW_PAGE_ID				0xFF91
#define HNSW_METAPAGE_BLKNO			0

/* Build progress subphases (PROGRESS_CREATEIDX_SUBPHASE) */
#define HNSW_PHASE_LOAD				2
#define HNSW_PHASE_WRITE			3

/* Tuple type bytes */
#define HNSW_ELEMENT_TUPLE			1
#define HNSW_NEIGHBOR_TUPLE			2
#define HNSW_DUPLICATE_TUPLE		3

/* Page flags */
#define HNSW_PAGE_DUPLICATES		0x0001	/* holds duplicate tuples only */

/* Element flags */
#define HNSW_ELEMENT_DELETED		0x01	/* no heap TIDs left, still linked */
#define HNSW_ELEMENT_FREE			0x02	/* unlinked by vacuum: reusable */

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
	float		vec[FLEXIBLE_ARRAY_MEMBER];
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

#define HNSW_ELEMENT_TUPLE_SIZE(dim) \
	MAXALIGN(offsetof(HnswElementTupleData, vec) + sizeof(float) * (dim))
#define HNSW_NEIGHBOR_TUPLE_SIZE(level, m) \
	MAXALIGN(offsetof(HnswNeighborTupleData, slots) + \
			 sizeof(ItemPointerData) * ((level) + 2) * (m))
/* Room for tuples on an empty data page */
#define HNSW_PAGE_CAPACITY \
	(BLCKSZ - MAXALIGN(SizeOfPageHeaderData) - \
	 MAXALIGN(sizeof(HnswPageOpaqueData)))

/* Slots of a layer within a neighbor tuple */
#define HnswLayerCapacity(m, layer)	((layer) == 0 ? 2 * (m) : (m))
#define HnswLayerStart(m, layer)	((layer) == 0 ? 0 : 2 * (m) + ((layer) - 1) * (m))

#define HnswPageGetOpaque(page) ((HnswPageOpaque) PageGetSpecialPointer(page))
#define HnswPageGetMeta(page)	((HnswMetaPage) PageGetContents(page))

/*
 * Graph interface (hnswgraph.c calls it; hnswmem.c and hnswpage.c implement it)
 */

/* An element: in memory an array index, on pages its element tuple's TID */
typedef uint64 HnswRef;

#define HNSW_INVALID_REF		PG_UINT64_MAX
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
extern int	HnswRefCmp(const void *a, const void *b);

/* An element met during a search, with its distance to the query */
typedef struct HnswCandidate
{
	HnswRef		ref;
	uint64		neighborsAt;	/* where storage keeps its neighbor lists */
	float		dist;
	bool		deleted;		/* route through it, never return or link it */
} HnswCandidate;

typedef struct HnswGraph HnswGraph;

typedef struct HnswGraphOps
{
	/*
	 * For each of n candidates, the distance from q to c[i].ref's vector
	 * into c[i].dist, and c[i].neighborsAt and c[i].deleted.  One call per batch of
	 * neighbors lets a storage overlap the memory latency of one element
	 * with the work on another.  With vecs, also each vector into vecs[i],
	 * valid as `vector`'s, for a caller that compares the candidates among
	 * themselves next (pruning), so that nothing is read twice.  A
	 * candidate farther than bound may get, instead of its distance, any
	 * value above bound (HnswDistance): a search passes the distance beyond
	 * which it rejects candidates, and HNSW_NO_BOUND when it needs every
	 * distance.  A storage errors out on a damaged element rather
	 * than return garbage.
	 */
	void		(*distances) (HnswGraph *g, const float *q, HnswCandidate *c,
							  int n, const float **vecs, float bound);

	/*
	 * Copy c's neighbors on a layer into out (room for 2m refs); return
	 * how many.
	 */
	int			(*neighbors) (HnswGraph *g, const HnswCandidate *c, int layer,
							   HnswRef *out);

	/* c's vector, valid until the caller's memory context is reset */
	const float *(*element_vector) (HnswGraph *g, const HnswCandidate *c);

	/*
	 * Make q (at distance q->dist from e) a neighbor of e on a layer, if
	 * the heuristic keeps it, or in any case with force.  Returns whether q
	 * is now in e's list.
	 */
	bool		(*add_link) (HnswGraph *g, const HnswCandidate *e, int layer,
							 const HnswCandidate *q, bool force);
} HnswGraphOps;

/* Visited set: open addressing over refs, cleared by bumping a generation */
typedef struct HnswVisited
{
	uint64	   *keys;
	uint32	   *gens;
	uint32		mask;			/* capacity - 1 (capacity a power of 2) */
	uint32		used;
	uint32		gen;
} HnswVisited;

/* Binary heap of candidates (min- or max-heap by dist) */
typedef struct HnswHeap
{
	HnswCandidate *items;
	int			count;
	int			capacity;
	bool		max;
} HnswHeap;

struct HnswGraph
{
	const HnswGraphOps *ops;
	DistanceKernel dist;		/* distance between two stored vectors */
	BoundedKernel bdist;		/* its bounded version, or NULL */
	int			dim;
	int			m;
	int			efConstruction;
	int			maxLevel;		/* highest layer a neighbor tuple fits */
	double		ml;				/* level multiplier 1/ln(m) */
	HnswVisited visited;
	HnswHeap	cand;			/* search scratch space, reused */
	HnswHeap	found;
};

/* New element's neighbors, per layer (paper Algorithm 1, first half) */
typedef struct HnswNeighborhood
{
	int			level;
	int			count[HNSW_MAX_LEVEL + 1];
	HnswCandidate *lists[HNSW_MAX_LEVEL + 1];
	HnswCandidate *layer0;		/* all layer-0 search results, ascending */
	int			nlayer0;
} HnswNeighborhood;

/* The metric an opclass's support function 1 hands the index */
typedef struct HnswMetric
{
	const char *name;
	DistanceKernel *kernel;		/* points at a dispatched kernel in distance.c */
	bool		negate;			/* order by -kernel (inner product) */
	bool		normalize;		/* store and query unit vectors (cosine) */
	bool		buildL2;		/* link the graph by L2 distance */
} HnswMetric;

/* What a relation's rd_amcache holds: the options and the metric */
typedef struct HnswIndexInfo
{
	int			dimensions;
	int			m;
	int			efConstruction;
	const HnswMetric *metric;
} HnswIndexInfo;

/* Reloptions */
typedef struct HnswOptions
{
	int32		vl_len_;		/* varlena header (do not touch directly!) */
	int			m;
	int			efConstruction;
} HnswOptions;

/* hnsw.iterative_scan */
typedef enum HnswIterativeScan
{
	HNSW_ITERATIVE_SCAN_OFF,
	HNSW_ITERATIVE_SCAN_RELAXED,
	HNSW_ITERATIVE_SCAN_STRICT
} HnswIterativeScan;

#define HNSW_DEFAULT_MAX_SCAN_TUPLES	20000
#define HNSW_DEFAULT_SCAN_MEM_MULTIPLIER	1.0

/* hnsw.c */
extern int	hnsw_ef_search;
extern int	hnsw_iterative_scan;
extern int	hnsw_max_scan_tuples;
extern double hnsw_scan_mem_multiplier;
extern const HnswIndexInfo *HnswGetIndexInfo(Relation index);
extern void HnswForgetIndexInfo(Relation index);
extern bool HnswPrepareVector(const HnswIndexInfo *info, Datum value,
							  float *out);
extern DistanceKernel HnswMetricKernel(const HnswMetric *metric, bool build);

/* Test wait points: the advisory lock a test holds (0x484E5357, "HNSW") */
#define HNSW_WAIT_LOCK_KEY		INT64CONST(1213090647)
extern void HnswWaitPoint(const char *name);

/* hnswgraph.c: the algorithm */
extern void HnswGraphInit(HnswGraph *g, const HnswGraphOps *ops,
						  DistanceKernel dist, int dim, int m,
						  int efConstruction);
extern int	HnswRandomLevel(HnswGraph *g);

/* The bound of a caller that needs every distance exact */
#define HNSW_NO_BOUND	INFINITY

/*
 * The distance between two vectors, or, if it is above bound, possibly only
 * some value above bound: the metric's bounded kernel stops reading the
 * vectors once their distance can no longer come under bound.  Results at
 * or under bound are the exact g->dist, bit for bit.
 */
static inline float
HnswDistance(const HnswGraph *g, const float *a, const float *b, float bound)
{
	return g->bdist ? g->bdist(a, b, g->dim, bound) : g->dist(a, b, g->dim);
}
typedef struct HnswStream HnswStream;
extern HnswStream *HnswStreamBegin(HnswGraph *g, const float *q,
								   HnswRef entry, int entryLevel, int ef);
extern bool HnswStreamNext(HnswStream *s, bool iterate, bool strict,
						   HnswCandidate *out);
extern uint32 HnswStreamMet(const HnswStream *s);
extern int	HnswSearchFrom(HnswGraph *g, const float *q, HnswRef entry,
						   int entryLevel, int layer, int ef,
						   HnswCandidate **out);
extern void HnswFindNeighbors(HnswGraph *g, const float *q, int level,
							   HnswRef entry, int entryLevel,
							   HnswNeighborhood *nb);
extern void HnswLinkBack(HnswGraph *g, const HnswCandidate *q,
						 const HnswNeighborhood *nb);
extern int	HnswFindDuplicate(HnswGraph *g, const float *q,
							  const HnswNeighborhood *nb);
extern int	HnswRepairNeighbors(HnswGraph *g, const HnswCandidate *e,
								 const float *evec, int layer,
								 const HnswRef *keep, int nkeep,
								 const HnswRef *lost, int nlost,
								 HnswRef entry, int entryLevel,
								 HnswCandidate **out);
extern int	HnswMergeLink(HnswGraph *g, const HnswCandidate *e, int layer,
						  const HnswRef *cur, int ncur,
						  const HnswCandidate *q, bool force, HnswRef *out);

/*
 * A neighbor list that keeps, beside each member, its distance to the
 * list's owner and what the heuristic last decided about it, so that a
 * full list is reconsidered only where a new member can change it
 * (HnswMergeLinkKnown).  The in-memory build keeps its lists so.
 */
#define HNSW_VERDICT_UNKNOWN	0	/* not looked at since it joined */
#define HNSW_VERDICT_KEPT		1	/* closer to the owner than to any kept before it */
#define HNSW_VERDICT_PRUNED		2	/* closer to a member kept before it */

typedef struct HnswKnownList
{
	int			n;
	HnswRef		refs[2 * HNSW_MAX_M];
	float		dists[2 * HNSW_MAX_M];
	uint8		verdicts[2 * HNSW_MAX_M];
} HnswKnownList;

extern bool HnswMergeLinkKnown(HnswGraph *g, const HnswCandidate *e, int layer,
							   HnswKnownList *list, const HnswCandidate *q,
							   bool force);

/* hnswmem.c: the graph in memory (CREATE INDEX) */
typedef struct HnswMemGraph HnswMemGraph;
extern Size HnswMemEstimate(const HnswIndexInfo *info, double ntuples);
extern HnswMemGraph *HnswMemCreate(Relation index, void *area, Size size,
								   Size limit, bool shared, bool init);
extern bool HnswMemInsert(HnswMemGraph *mg, const float *vec, ItemPointer tid);
extern int64 HnswMemCount(HnswMemGraph *mg);
extern bool HnswMemFull(HnswMemGraph *mg);
extern BlockNumber HnswMemWritePages(HnswMemGraph *mg, Relation index);
extern int64 HnswMemHeapTids(HnswMemGraph *mg, ItemPointer *out);
extern Size HnswMemSize(HnswMemGraph *mg, int *grown);
extern void HnswMemFree(HnswMemGraph *mg);

/* hnswpage.c: the graph in buffer pages */
typedef struct HnswPageGraph HnswPageGraph;
extern void HnswInitPage(Page page);
extern void HnswWriteMetaPage(Relation index, ForkNumber fork, int dimensions,
							  int m, int efConstruction, bool logit);
extern void HnswReadMeta(Relation index, HnswMetaPageData *meta);
extern HnswElementTuple HnswGetElement(Relation index, Page page,
									   BlockNumber blkno, OffsetNumber offno,
									   int dim);
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
typedef void (*HnswElementFn) (Relation index, Buffer buf, OffsetNumber offno,
							   HnswElementTuple etup, void *arg);
extern void HnswScanElements(Relation index, BlockNumber from, BlockNumber to,
							 BufferAccessStrategy strategy, bool pause,
							 HnswElementFn fn, void *arg);
extern int	HnswCollectHeapTids(Relation index, BlockNumber blkno,
								OffsetNumber offno, HnswElementTuple etup,
								ItemPointer *tids, int *maxtids);
extern HnswPageGraph *HnswPageGraphCreate(Relation index, bool forSearch);
extern HnswGraph *HnswPageGraphBase(HnswPageGraph *pg);
extern void HnswPageInsert(HnswPageGraph *pg, const float *vec,
						   ItemPointer heaptid);
extern int64 HnswPageConnect(HnswPageGraph *pg, BufferAccessStrategy strategy);
extern bool HnswPageReplaceLayer(HnswPageGraph *pg, uint64 neighborsAt, int layer,
								 const HnswRef *expect, int nexpect,
								 const HnswRef *refs, int n);
extern void HnswSetEntryPoint(Relation index, HnswRef entry, int level);
extern void HnswNoteFreeSlot(Relation index, BlockNumber blkno, int level);

/* AM callbacks */
extern IndexBuildResult *hnswbuild(Relation heap, Relation index,
								   IndexInfo *indexInfo);
extern void hnswbuildempty(Relation index);
extern bool hnswinsert(Relation index, Datum *values, bool *isnull,
					   ItemPointer heap_tid, Relation heap,
					   IndexUniqueCheck checkUnique, bool indexUnchanged,
					   IndexInfo *indexInfo);
extern IndexBulkDeleteResult *hnswbulkdelete(IndexVacuumInfo *info,
											 IndexBulkDeleteResult *stats,
											 IndexBulkDeleteCallback callback,
											 void *callback_state);
extern IndexBulkDeleteResult *hnswvacuumcleanup(IndexVacuumInfo *info,
												IndexBulkDeleteResult *stats);
extern IndexScanDesc hnswbeginscan(Relation index, int nkeys, int norderbys);
extern void hnswrescan(IndexScanDesc scan, ScanKey keys, int nkeys,
					   ScanKey orderbys, int norderbys);
extern bool hnswgettuple(IndexScanDesc scan, ScanDirection dir);
extern void hnswendscan(IndexScanDesc scan);

#endif							/* TINYHNSW_HNSW_H */
