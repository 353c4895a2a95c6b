/*-------------------------------------------------------------------------
 *
 * hnswgraph.h
 *	  The HNSW algorithm's room: refs, candidates, the interface a storage
 *	  implements (HnswGraphOps) and the algorithm's API.  Nothing here
 *	  knows about pages, buffers, WAL or locks.
 *
 * DESIGN NOTE: THE ALGORITHM
 * --------------------------
 * The index is an HNSW graph (Malkov & Yashunin, "Efficient and robust
 * approximate nearest neighbor search using Hierarchical Navigable Small
 * World graphs").  The algorithm lives once, in hnswgraph.c, and works on
 * any storage that implements HnswGraphOps: hnswmem.c (the graph built in
 * memory by CREATE INDEX) and hnswpage.c (the graph in buffer pages,
 * used by inserts, scans and vacuum; see hnswpage.h).  Function comments there
 * cite the paper's algorithm numbers.
 *
 * An element's vector is its format's stored form (hnsw.h, HnswFormat):
 * vecsize bytes that the algorithm never reads itself.  It hands them to
 * the graph's kernel (dist), copies and compares them bytewise; the
 * pointers are typed const float * only because the kernels are
 * distance.h's.
 *
 * An element is named by a ref (HnswRef), which only its storage can read:
 * in memory an element number, on pages the TID of its element tuple.  Each
 * element has one neighbor list per layer up to its level; layer 0 holds up
 * to 2m neighbors, the layers above m, laid out one after the other (layer
 * 0 first) in both storages.  How many layers an element may have is the
 * storage's to say (a page must hold its lists), and is given to
 * HnswGraphInit.
 *
 * Deleted elements (vacuum flags them before it unlinks them) are still
 * traversed by searches, so that what only they connected stays connected
 * until vacuum repairs it, but they are never returned, merged into, or
 * linked to.
 *
 * Every element must stay findable, and the algorithm, not the storage,
 * sees to it (hnswgraphrepair.c, hnswgraphconnect.c).  When an insert
 * prunes a full layer-0 list to let the new element in, the new element
 * links to the member dropped (it chose m neighbors for a list of 2m, so
 * it has room): whatever a walk reached through that link, a group whose
 * members only link each other included, it reaches through the new
 * element.  Only if its list is full does the drop fall back to sparing
 * the member's last incoming link (asked of the member's own neighbors).
 * If every new neighbor of an element prunes it on layer 0, the nearest
 * keeps it.  Vacuum gives every live element that links to a
 * deleted one new neighbors, chosen from the live elements the deleted
 * ones linked to and, for a list that lost most of its members or was
 * empty, from a search (HnswRepairNeighbors).  Vacuum's cleanup then
 * (HnswConnect) makes the highest live element the entry point if it is
 * not; walks each layer from the entry point and links every live element
 * the walk does not reach from the nearest reached element that takes it
 * (walking again until all are reached, four times at most); links each
 * upper-layer element that a search for its own vector misses from where
 * the search ends; and has one of each element's own layer-0 neighbors
 * link back to it.  The in-memory build, which guards no last links as it
 * goes, links the elements no list names once, at the end
 * (HnswLinkOrphans).  Both link an element from a member's list into a
 * free slot, or in place of the farthest member that another element
 * links to as well, so that nothing cascades; the element linked then
 * links to the member it displaced, if it has room (HnswInherit).
 *
 * What a storage promises: distances, neighbor lists and vectors are read
 * consistently element by element (not as a snapshot of the whole graph);
 * a damaged element is an error, never garbage; add_link decides with the
 * heuristic whether a full list takes a new member, holding the list still
 * in its own way (the in-memory build under the element's lock, the pages
 * optimistically: hnswpage.h, rule 3), which is why the heuristic's merge
 * (HnswMergeLink, HnswMergeLinkKnown, HnswKeepReach) is the one part
 * of the algorithm a storage calls; everything else calls the storage.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TINYHNSW_HNSWGRAPH_H
#define TINYHNSW_HNSWGRAPH_H

#include <math.h>

#include "storage/itemptr.h"

#include "distance.h"

/* The largest m (the option's upper bound, hnsw.h): fixed arrays hold 2m */
#define HNSW_MAX_M					100

/* Highest layer an element may be assigned in any storage */
#define HNSW_MAX_LEVEL				16

/*
 * How many elements an insert (and vacuum's repair) keeps on each layer
 * above the ones it links into, on its way down, and how many a scan keeps
 * on each layer above layer 0, whose search starts from all of them.  The
 * paper keeps one.  On well-separated clusters a single greedy path now and
 * then stops in a neighboring cluster: an element inserted from there
 * links only into that cluster, where no search for its own neighborhood
 * ever looks, and a scan from there finds only that cluster, its whole
 * first round at any usual ef_search (and under strict order the rows it
 * finds later are lost).  Keeping two makes such a stop much rarer for a
 * few percent more distances (README, Design, for the figures).  A graph
 * that churned (many deletes repaired, many inserts since) has upper
 * layers that lead astray more often, and two then leave rows that a
 * search for their own vector misses: a scan keeps a quarter of its
 * ef_search, from two to sixteen, so that who asks for more accuracy gets
 * a wider descent too.  Vacuum links an upper-layer element that a
 * descent keeping the fewest misses (HNSW_SCAN_DESCENT_MIN).
 */
#define HNSW_INSERT_DESCENT_EF		4
#define HNSW_SCAN_DESCENT_MIN		2
#define HNSW_SCAN_DESCENT_MAX		16
#define HNSW_SCAN_DESCENT_EF(ef) \
	Min(HNSW_SCAN_DESCENT_MAX, Max(HNSW_SCAN_DESCENT_MIN, (ef) / 4))

/*
 * Vacuum's repair of a list that lost members pools the live elements
 * reached through the lost: through chains of up to HNSW_REPAIR_HOPS
 * deleted elements, expanding at most HNSW_REPAIR_WALK of them; it
 * searches as well only for a list that lost more than it kept
 * (HnswRepairNeighbors).
 */
#define HNSW_REPAIR_HOPS			3
#define HNSW_REPAIR_WALK			32

/* How many candidates relinking offers an element to before it gives up */
#define HNSW_RELINK_TRIES			8
/* How often HnswConnect walks a layer again after linking parts */
#define HNSW_CONNECT_ROUNDS			4
/*
 * How much one walk of a layer may read to link parts through a scan of
 * the reached elements: this many times the live elements (so 16 scans on
 * layer 0, more on the smaller layers above); the rest wait for the next
 * VACUUM
 */
#define HNSW_CONNECT_SCANS			16
/* How many of the nearest found link to an element a search missed */
#define HNSW_FINDABLE_LINKS			3
/* What vacuum's search for an element's own vector on layer 0 keeps */
#define HNSW_FINDABLE_EF			10

/* An element: in memory an element number, on pages its element tuple's TID */
typedef uint64 HnswRef;

#define HNSW_INVALID_REF		PG_UINT64_MAX

/* Is ref among the first n of refs? */
static inline bool
HnswRefsContain(const HnswRef *refs, int n, HnswRef ref)
{
	for (int i = 0; i < n; i++)
	{
		if (refs[i] == ref)
			return true;
	}
	return false;
}
extern int	HnswRefCmp(const void *a, const void *b);

/* Slots of a layer within an element's lists (the same in both storages) */
#define HnswLayerCapacity(m, layer)	((layer) == 0 ? 2 * (m) : (m))
#define HnswLayerStart(m, layer)	((layer) == 0 ? 0 : 2 * (m) + ((layer) - 1) * (m))

/* An element met during a search, with its distance to the query */
typedef struct HnswCandidate
{
	HnswRef		ref;
	uint64		neighborsAt;	/* where its storage keeps its neighbor
								 * lists (pages: its neighbor tuple) */
	float		dist;
	bool		deleted;		/* route through it, never return or link it */
} HnswCandidate;

typedef struct HnswGraph HnswGraph;
typedef struct HnswNeighborhood HnswNeighborhood;

/* Every live element of a storage, for a pass over them all */
typedef struct HnswElementSet
{
	int64		n;
	HnswRef    *refs;			/* ascending */
	uint64	   *neighborsAt;	/* each one's, as in HnswCandidate */
	uint8	   *levels;
	HnswRef		entry;			/* the entry point (HNSW_INVALID_REF: none) */
	int			entryLevel;
} HnswElementSet;

/* add_link's flags */
#define HNSW_LINK_FORCE		0x01	/* q gets in even if the heuristic
									 * prunes it */
#define HNSW_LINK_NEW		0x02	/* q is a new element: it takes over
									 * what it displaces */

/* What the algorithm asks of a storage */
typedef struct HnswGraphOps
{
	/*
	 * For each of n candidates, the distance from q to c[i].ref's vector
	 * into c[i].dist, and c[i].neighborsAt and c[i].deleted.  One call per
	 * batch of neighbors lets a storage overlap the memory latency of one
	 * element with the work on another.  With vecs, also each vector into
	 * vecs[i], valid as element_vector's, for a caller that compares the
	 * candidates among themselves next (pruning), so that nothing is read
	 * twice.  A candidate farther than bound may get, instead of its
	 * distance, any value above bound (HnswDistance): a search passes the
	 * distance beyond which it rejects candidates, and HNSW_NO_BOUND when it
	 * needs every distance.
	 */
	void		(*distances) (HnswGraph *g, const float *q, HnswCandidate *c,
							  int n, const float **vecs, float bound);

	/*
	 * Copy c's neighbors on a layer into out (room for 2m refs); return how
	 * many.
	 */
	int			(*neighbors) (HnswGraph *g, const HnswCandidate *c, int layer,
							  HnswRef *out);

	/* c's vector, valid until the caller's memory context is reset */
	const float *(*element_vector) (HnswGraph *g, const HnswCandidate *c);

	/*
	 * Make q (at distance q->dist from e) a neighbor of e on a layer, if
	 * the heuristic keeps it, or in any case with HNSW_LINK_FORCE.  With
	 * HNSW_LINK_NEW, q is a new element, whose list has room for a member
	 * it displaces from e's (HnswKeepReach).  Returns whether q is now in
	 * e's list.
	 */
	bool		(*add_link) (HnswGraph *g, const HnswCandidate *e, int layer,
							 const HnswCandidate *q, int flags);

	/*
	 * Where the element ref keeps its lists and whether it is deleted, into
	 * c (its distance is left 0): for following links without measuring.
	 */
	void		(*locate) (HnswGraph *g, HnswRef ref, HnswCandidate *c);

	/*
	 * Write refs (n of them) as e's list on a layer, but only over the list
	 * expect (nexpect) they were computed from: false if it changed
	 * meanwhile.
	 */
	bool		(*replace_neighbors) (HnswGraph *g, const HnswCandidate *e,
									  int layer, const HnswRef *expect,
									  int nexpect, const HnswRef *refs, int n);

	/* Every live element, and the entry point, into set (palloc'd) */
	void		(*live_elements) (HnswGraph *g, HnswElementSet *set);

	/*
	 * Make ref (of level) the entry point if level is above the current
	 * entry point's; the entry point after, into *entry and *entryLevel
	 * unless they are NULL.
	 */
	void		(*raise_entry) (HnswGraph *g, HnswRef ref, int level,
								HnswRef *entry, int *entryLevel);

	/*
	 * An insert (HnswInsert), in its order: begin_insert starts one of an
	 * element of the given level (the storage's locks for it, if any) and
	 * tells where the graph is entered, or returns false, having done
	 * nothing, if the storage is full; add_heaptid adds the row to an
	 * element found holding exactly vec, unless that element no longer
	 * does or is no longer live (false); add_element stores a new element
	 * with its lists (nb) into *self, or returns false if the storage is
	 * full; end_insert releases what begin_insert took.
	 */
	bool		(*begin_insert) (HnswGraph *g, int level, HnswRef *entry,
								 int *entryLevel);
	bool		(*add_heaptid) (HnswGraph *g, const HnswCandidate *e,
								const float *vec, ItemPointer heaptid);
	bool		(*add_element) (HnswGraph *g, const float *vec, int level,
								ItemPointer heaptid,
								const HnswNeighborhood *nb,
								HnswCandidate *self);
	void		(*end_insert) (HnswGraph *g);
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

/* A graph over some storage; a storage's graph struct begins with it */
struct HnswGraph
{
	const HnswGraphOps *ops;
	DistanceKernel dist;		/* distance between two stored vectors */
	BoundedKernel bdist;		/* its bounded version, or NULL */
	int			dim;			/* passed to the kernels */
	Size		vecsize;		/* bytes of a stored vector */
	int			m;
	int			efConstruction;
	int			maxLevel;		/* highest layer the storage gives room for */
	double		ml;				/* level multiplier 1/ln(m) */
	HnswVisited visited;
	HnswHeap	cand;			/* search scratch space, reused */
	HnswHeap	found;
};

/* New element's neighbors, per layer (paper Algorithm 1, first half) */
struct HnswNeighborhood
{
	int			level;
	int			count[HNSW_MAX_LEVEL + 1];
	HnswCandidate *lists[HNSW_MAX_LEVEL + 1];
	HnswCandidate *layer0;		/* all layer-0 search results, ascending */
	int			nlayer0;
};

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

/* hnswgraph.c: the core (search, the heuristic, insert) */
extern void HnswGraphInit(HnswGraph *g, const HnswGraphOps *ops,
						  DistanceKernel dist, int dim, Size vecsize, int m,
						  int efConstruction, int maxLevel);
extern int	HnswRandomLevel(HnswGraph *g);
extern void HnswSeedLevels(uint64 seed);
extern int	HnswSearchFrom(HnswGraph *g, const float *q, HnswRef entry,
						   int entryLevel, int layer, int ef,
						   HnswCandidate **out);
extern bool HnswInsert(HnswGraph *g, const float *vec, ItemPointer heaptid);
extern void HnswFindNeighbors(HnswGraph *g, const float *q, int level,
							  HnswRef entry, int entryLevel,
							  HnswNeighborhood *nb);
extern void HnswLinkBack(HnswGraph *g, const HnswCandidate *q,
						 const HnswNeighborhood *nb);
extern int	HnswFindDuplicate(HnswGraph *g, const float *q,
							  const HnswNeighborhood *nb);

/*
 * The heuristic's merge of a new member into a full list: a storage's
 * add_link calls it while it holds the list still in its own way.
 */
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
#define HNSW_VERDICT_KEPT		1	/* closer to the owner than to any kept
									 * before it */
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

/* hnswgraphstream.c: k-NN search as a stream, for scans */
typedef struct HnswStream HnswStream;
extern HnswStream *HnswStreamBegin(HnswGraph *g, const float *q,
								   HnswRef entry, int entryLevel, int ef);
extern bool HnswStreamNext(HnswStream *s, bool iterate, bool strict,
						   HnswCandidate *out);
extern uint32 HnswStreamMet(const HnswStream *s);

/* hnswgraphrepair.c and hnswgraphconnect.c: keeping every element reachable */
extern int	HnswRepairNeighbors(HnswGraph *g, const HnswCandidate *e,
								const float *evec, int layer,
								const HnswRef *keep, int nkeep,
								const HnswRef *lost, int nlost,
								HnswRef entry, int entryLevel,
								HnswCandidate **out);
extern void HnswKeepReach(HnswGraph *g, const HnswCandidate *e,
						  const HnswRef *cur, int ncur,
						  const HnswCandidate *q, bool inherit, HnswRef *out,
						  int nout);
extern int64 HnswConnect(HnswGraph *g, bool afterDeletes, bool reachOnly,
						 int64 *missed);
extern int64 HnswLinkOrphans(HnswGraph *g, int64 *orphans);

/*
 * For the algorithm's own files (hnswgraph*.c) only
 * ---------------------------------------------------------------------------
 */
extern void HnswVisitedClear(HnswVisited *v);
extern bool HnswHasOtherParent(HnswGraph *g, HnswRef v, int layer,
							   HnswRef except);
extern int	HnswInherit(HnswGraph *g, const HnswCandidate *q, HnswRef v,
						int layer);
extern bool HnswVisitedAdd(HnswVisited *v, uint64 key);
extern int	HnswCandidateCmp(const void *a, const void *b);
extern int	HnswSelectNeighbors(HnswGraph *g, HnswCandidate *c, int nc,
								int max, bool keepPruned, const float **given);
extern int	HnswDescend(HnswGraph *g, const float *q, HnswRef entry,
						int entryLevel, int toLayer, int ef,
						HnswCandidate **out);

/* Hash of a ref for open addressing: refs are very regular, so mix well */
static inline uint32
HnswHashRef(uint64 key)
{
	/* the splitmix64 finalizer */
	key ^= key >> 30;
	key *= UINT64CONST(0xbf58476d1ce4e5b9);
	key ^= key >> 27;
	key *= UINT64CONST(0x94d049bb133111eb);
	key ^= key >> 31;
	return (uint32) key;
}

/*
 * Sifting, for heaps of any item type: the candidate heaps of the searches
 * and the stream's heaps of item numbers.  before(arg, a, b) says whether a
 * belongs above b.  Always inlined, so that each heap's before() is a
 * direct call again.
 */
typedef bool (*HnswHeapBefore) (const void *arg, const void *a, const void *b);

/* Put x at position i, the heap's new last place, and move it up */
static pg_attribute_always_inline void
HnswSiftUp(char *items, size_t size, int i, const void *x,
		   HnswHeapBefore before, const void *arg)
{
	while (i > 0)
	{
		int			parent = (i - 1) / 2;

		if (!before(arg, x, items + parent * size))
			break;
		memcpy(items + i * size, items + parent * size, size);
		i = parent;
	}
	memcpy(items + i * size, x, size);
}

/* Fill the hole at the top of a heap of count items with last, moved down */
static pg_attribute_always_inline void
HnswSiftDown(char *items, size_t size, int count, const void *last,
			 HnswHeapBefore before, const void *arg)
{
	int			i = 0;

	for (;;)
	{
		int			child = 2 * i + 1;

		if (child >= count)
			break;
		if (child + 1 < count &&
			before(arg, items + (child + 1) * size, items + child * size))
			child++;
		if (!before(arg, items + child * size, last))
			break;
		memcpy(items + i * size, items + child * size, size);
		i = child;
	}
	if (count > 0)
		memcpy(items + i * size, last, size);
}

#endif							/* TINYHNSW_HNSWGRAPH_H */
