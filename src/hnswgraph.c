/*-------------------------------------------------------------------------
 *
 * hnswgraph.c
 *	  The HNSW algorithm, once, for any storage that implements
 *	  HnswGraphOps (hnswmem.c in memory, hnswpage.c on buffer pages).
 *
 * Function comments cite the algorithm numbers of Malkov & Yashunin,
 * "Efficient and robust approximate nearest neighbor search using
 * Hierarchical Navigable Small World graphs" (2016/2018).  Nothing here
 * knows about buffers, WAL or locks: whatever the storage needs is behind
 * the ops.  Memory comes from the caller's current context.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/pg_prng.h"
#include "miscadmin.h"
#include "utils/float.h"
#include "utils/memutils.h"

#include "hnswgraph.h"

/*
 * Neighbors chosen for a new element on a layer.  hnswlib's choice: m on
 * every layer; layer 0 lists still grow to 2m through links made by later
 * elements.
 */
#define HnswSelectCount(m, layer)	(m)

/* Visited set ----------------------------------------------------------- */

static void
visited_init(HnswVisited *v, MemoryContext cxt, uint32 capacity)
{
	v->mask = capacity - 1;
	v->keys = MemoryContextAlloc(cxt, sizeof(uint64) * capacity);
	v->gens = MemoryContextAllocZero(cxt, sizeof(uint32) * capacity);
	v->used = 0;
	v->gen = 1;
}

/* Forget everything, in O(1) (a full sweep only when the counter wraps) */
static void
visited_clear(HnswVisited *v)
{
	v->used = 0;
	if (++v->gen == 0)
	{
		memset(v->gens, 0, sizeof(uint32) * (v->mask + 1));
		v->gen = 1;
	}
}

static inline uint32
visited_hash(uint64 key)
{
	/* splitmix64 finalizer: refs are very regular, so mix well */
	key ^= key >> 30;
	key *= UINT64CONST(0xbf58476d1ce4e5b9);
	key ^= key >> 27;
	key *= UINT64CONST(0x94d049bb133111eb);
	key ^= key >> 31;
	return (uint32) key;
}

static void visited_grow(HnswVisited *v);

/* Mark ref visited; return true if it was not visited before */
static inline bool
visited_add(HnswVisited *v, uint64 key)
{
	uint32		i = visited_hash(key) & v->mask;

	while (v->gens[i] == v->gen)
	{
		if (v->keys[i] == key)
			return false;
		i = (i + 1) & v->mask;
	}
	v->keys[i] = key;
	v->gens[i] = v->gen;
	if (++v->used * 2 > v->mask)
		visited_grow(v);
	return true;
}

/* Double the table, keeping the keys of the current generation */
static void
visited_grow(HnswVisited *v)
{
	uint64	   *oldkeys = v->keys;
	uint32	   *oldgens = v->gens;
	uint32		oldcap = v->mask + 1;
	uint32		oldgen = v->gen;

	/* searches run in short-lived contexts: stay in the graph's own */
	visited_init(v, GetMemoryChunkContext(oldkeys), oldcap * 2);
	for (uint32 i = 0; i < oldcap; i++)
	{
		if (oldgens[i] == oldgen)
			visited_add(v, oldkeys[i]);
	}
	pfree(oldkeys);
	pfree(oldgens);
}

/* Binary heaps ------------------------------------------------------------ */

/*
 * Sifting, for heaps of any item type: the candidate heaps here and the
 * stream's heaps of item numbers.  before(arg, a, b) says whether a
 * belongs above b.  Always inlined, so that each heap's before() is a
 * direct call again.
 */
typedef bool (*HeapBefore) (const void *arg, const void *a, const void *b);

/* Put x at position i, the heap's new last place, and move it up */
static pg_attribute_always_inline void
sift_up(char *items, size_t size, int i, const void *x,
		HeapBefore before, const void *arg)
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
sift_down(char *items, size_t size, int count, const void *last,
		  HeapBefore before, const void *arg)
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

static void
heap_init(HnswHeap *h, int capacity, bool max)
{
	h->items = palloc(sizeof(HnswCandidate) * capacity);
	h->count = 0;
	h->capacity = capacity;
	h->max = max;
}

/* Does a belong above b?  Ties go by ref, so that results are repeatable */
static inline bool
heap_before(const void *arg, const void *a, const void *b)
{
	const HnswHeap *h = arg;
	const HnswCandidate *ca = a;
	const HnswCandidate *cb = b;

	if (ca->dist != cb->dist)
		return h->max ? ca->dist > cb->dist : ca->dist < cb->dist;
	return h->max ? ca->ref > cb->ref : ca->ref < cb->ref;
}

static void
heap_push(HnswHeap *h, const HnswCandidate *c)
{
	if (h->count == h->capacity)
	{
		h->capacity *= 2;
		h->items = repalloc(h->items, sizeof(HnswCandidate) * h->capacity);
	}
	sift_up((char *) h->items, sizeof(HnswCandidate), h->count++, c,
			heap_before, h);
}

static void
heap_pop(HnswHeap *h, HnswCandidate *out)
{
	HnswCandidate last;

	Assert(h->count > 0);
	if (out)
		*out = h->items[0];
	last = h->items[--h->count];
	sift_down((char *) h->items, sizeof(HnswCandidate), h->count, &last,
			  heap_before, h);
}

static int
candidate_cmp(const void *a, const void *b)
{
	const HnswCandidate *ca = a;
	const HnswCandidate *cb = b;

	if (ca->dist != cb->dist)
		return ca->dist < cb->dist ? -1 : 1;
	/* equal distances: a fixed order keeps results deterministic */
	if (ca->ref != cb->ref)
		return ca->ref < cb->ref ? -1 : 1;
	return 0;
}

/* qsort/bsearch order of refs (for pages: block, then offset) */
int
HnswRefCmp(const void *a, const void *b)
{
	HnswRef		ra = *(const HnswRef *) a;
	HnswRef		rb = *(const HnswRef *) b;

	return ra < rb ? -1 : (ra > rb ? 1 : 0);
}

/* A candidate with its vector, sorted together by candidate_cmp */
typedef struct CandidateVector
{
	HnswCandidate c;			/* must be first */
	const float *v;
} CandidateVector;

/* The graph ------------------------------------------------------------- */

/*
 * Set up a graph over some storage, whose elements have at most maxLevel
 * layers above layer 0 (the storage's room for their lists decides).
 */
void
HnswGraphInit(HnswGraph *g, const HnswGraphOps *ops, DistanceKernel dist,
			  int dim, int m, int efConstruction, int maxLevel)
{
	g->ops = ops;
	g->dist = dist;
	g->bdist = DistBoundedKernel(dist);
	g->dim = dim;
	g->m = m;
	g->efConstruction = efConstruction;
	g->ml = 1.0 / log((double) m);
	Assert(maxLevel >= 0 && maxLevel <= HNSW_MAX_LEVEL);
	g->maxLevel = maxLevel;
	visited_init(&g->visited, CurrentMemoryContext, 1024);
	heap_init(&g->cand, 256, false);
	heap_init(&g->found, 256, true);
}

/* A new element's top layer: floor(-ln(U) * mL), capped (paper, 4.1) */
int
HnswRandomLevel(HnswGraph *g)
{
	double		u = pg_prng_double(&pg_global_prng_state);
	int			level;

	/* pg_prng_double is in [0, 1): avoid log(0) */
	level = (int) floor(-log(1.0 - u) * g->ml);
	return Min(level, g->maxLevel);
}

/*
 * Algorithm 2, SEARCH-LAYER: the ef nearest elements to q on a layer,
 * starting from the entry points ep (whose distances are filled in).
 * Returns how many were found, ascending by distance, in *out (palloc'd).
 * Deleted elements are traversed but never found (as hnswlib treats
 * elements marked deleted).
 */
static int
HnswSearchLayer(HnswGraph *g, const float *q, HnswCandidate *ep, int nep,
				int ef, int layer, HnswCandidate **out)
{
	HnswHeap   *cand = &g->cand;	/* C: min-heap of elements to expand */
	HnswHeap   *found = &g->found;	/* W: max-heap of the ef best */
	HnswRef    *nbrs = palloc(sizeof(HnswRef) * 2 * g->m);
	HnswCandidate *fresh = palloc(sizeof(HnswCandidate) * 2 * g->m);
	HnswCandidate *result;
	int			n;

	visited_clear(&g->visited);
	cand->count = 0;
	found->count = 0;
	for (int i = 0; i < nep; i++)
	{
		if (!visited_add(&g->visited, ep[i].ref))
			continue;
		heap_push(cand, &ep[i]);
		if (!ep[i].deleted)
		{
			heap_push(found, &ep[i]);
			if (found->count > ef)
				heap_pop(found, NULL);
		}
	}

	while (cand->count > 0)
	{
		HnswCandidate c;
		int			nn;
		int			nfresh;

		heap_pop(cand, &c);
		/* every element left is farther than the worst of a full W */
		if (found->count >= ef && c.dist > found->items[0].dist)
			break;

		nn = g->ops->neighbors(g, &c, layer, nbrs);
		nfresh = 0;
		for (int i = 0; i < nn; i++)
		{
			if (visited_add(&g->visited, nbrs[i]))
				fresh[nfresh++].ref = nbrs[i];
		}
		if (nfresh == 0)
			continue;
		/* a full W rejects whatever is beyond its worst */
		g->ops->distances(g, q, fresh, nfresh, NULL,
						  found->count >= ef ? found->items[0].dist : HNSW_NO_BOUND);
		for (int i = 0; i < nfresh; i++)
		{
			if (found->count < ef || fresh[i].dist < found->items[0].dist)
			{
				/* deleted elements still lead somewhere, but are no answer */
				heap_push(cand, &fresh[i]);
				if (!fresh[i].deleted)
				{
					heap_push(found, &fresh[i]);
					if (found->count > ef)
						heap_pop(found, NULL);
				}
			}
		}
	}

	n = found->count;
	result = palloc(sizeof(HnswCandidate) * Max(n, 1));
	memcpy(result, found->items, sizeof(HnswCandidate) * n);
	qsort(result, n, sizeof(HnswCandidate), candidate_cmp);
	pfree(nbrs);
	pfree(fresh);
	*out = result;
	return n;
}

/*
 * Descent from the entry point down to (not into) a layer, keeping the ef
 * nearest elements on each layer passed; returns how many, nearest first,
 * in *out (palloc'd): the entry points for that layer.  With ef 1 this is
 * the paper's greedy descent.
 */
static int
descend(HnswGraph *g, const float *q, HnswRef entry, int entryLevel,
		int toLayer, int ef, HnswCandidate **out)
{
	HnswCandidate *ep = palloc(sizeof(HnswCandidate));
	int			nep = 1;

	ep[0].ref = entry;
	g->ops->distances(g, q, ep, 1, NULL, HNSW_NO_BOUND);
	for (int lc = entryLevel; lc > toLayer; lc--)
	{
		HnswCandidate *w;
		int			nw = HnswSearchLayer(g, q, ep, nep, ef, lc, &w);

		/* if all around is deleted, keep descending from where we are */
		if (nw > 0)
		{
			pfree(ep);
			ep = w;
			nep = nw;
		}
		else
			pfree(w);
	}
	*out = ep;
	return nep;
}

/*
 * The elements nearest to q on a layer, by a search from the entry point
 * with ef (Algorithm 1's search for a new element's neighbors on that
 * layer); how many, ascending, in *out (palloc'd).
 */
int
HnswSearchFrom(HnswGraph *g, const float *q, HnswRef entry, int entryLevel,
			   int layer, int ef, HnswCandidate **out)
{
	HnswCandidate *ep;
	int			nep;
	int			n;

	/*
	 * Above the entry point's level (an element inserted while vacuum
	 * replaced a deleted entry point with a lower one) the layer cannot be
	 * searched from it: what such a search "found" would be linked into a
	 * layer its level does not reach.
	 */
	if (layer > entryLevel)
	{
		*out = palloc(sizeof(HnswCandidate));
		return 0;
	}
	nep = descend(g, q, entry, entryLevel, layer, HNSW_INSERT_DESCENT_EF, &ep);
	n = HnswSearchLayer(g, q, ep, nep, ef, layer, out);
	pfree(ep);
	return n;
}

/*
 * Algorithm 5, K-NN-SEARCH, as a stream of results in increasing distance,
 * for scans: the first round is the paper's search with ef; when its
 * results run out and the caller wants more (a filter rejected them), the
 * next round doubles ef and carries on from where the last stopped.
 * Nothing met is forgotten: unexpanded candidates stay in cand and
 * unreturned results in pool, so a round costs only its new work.  A result
 * is final for a round once it is no farther than the worst of the round's
 * ef best, or nothing is left to expand; one found in a later round nearer
 * than one already returned is late, and strict order drops it.
 *
 * A round computes distances bounded by the worst of its full W (see
 * HnswDistance), so an element met beyond that may have no exact distance.
 * Plain Algorithm 5 would keep it in cand and pool, where this round would
 * neither expand nor return it; it waits in deferred instead, and gets its
 * distance and its place in cand and pool before the next round starts.
 *
 * Memory.  A filtered scan can meet most of the index before it has its
 * rows, and stops when its memory reaches a limit, so what it keeps per
 * element met decides how far it gets.  Each element met is stored once,
 * as a 16-byte StreamItem in chunks that never move; the visited set, the
 * three heaps and deferred hold only 4-byte item numbers, so an element
 * costs about 30 bytes however many of them hold it.
 */
typedef struct StreamItem
{
	uint32		refHigh;		/* ref >> 16 */
	uint32		nbrsHigh;		/* neighborsAt >> 16 */
	uint16		refLow;			/* ref & 0xFFFF */
	uint16		nbrsLow;		/* neighborsAt & 0xFFFF */
	float		dist;
} StreamItem;

#define STREAM_CHUNK_SHIFT	10	/* items per chunk: 1024 (16kB) */
#define STREAM_CHUNK_ITEMS	(1 << STREAM_CHUNK_SHIFT)

/* A binary heap of item numbers, by the items' distances */
typedef struct StreamHeap
{
	uint32	   *items;
	int			count;
	int			capacity;
	bool		max;
	const HnswStream *s;	/* whose items */
} StreamHeap;

struct HnswStream
{
	HnswGraph  *g;
	const float *q;
	int			ef;
	StreamItem **chunks;		/* every element met, by item number */
	int			nchunks;
	int			maxchunks;
	uint32		nitems;
	uint32	   *slots;			/* visited set: item number + 1, 0 free */
	uint32		slotMask;		/* number of slots - 1 (a power of 2) */
	StreamHeap	cand;			/* met, not yet expanded (min) */
	StreamHeap	found;			/* the round's ef best (max) */
	StreamHeap	pool;			/* live results not yet returned (min) */
	uint32	   *deferred;		/* met beyond the bound, distance unknown */
	int			ndeferred;
	int			maxdeferred;
	bool		returnedAny;
	float		last;			/* distance of the last one returned */
	int			rounds;
	float		bound;			/* results up to here are final */
};

static inline StreamItem *
stream_item(const HnswStream *s, uint32 i)
{
	return &s->chunks[i >> STREAM_CHUNK_SHIFT][i & (STREAM_CHUNK_ITEMS - 1)];
}

static inline HnswRef
stream_item_ref(const StreamItem *it)
{
	return ((uint64) it->refHigh << 16) | it->refLow;
}

/*
 * The candidate an item stands for.  Whether it is deleted is not kept:
 * that matters only to what joins pool, which is decided when it is met.
 */
static inline void
stream_item_candidate(const StreamItem *it, HnswCandidate *c)
{
	c->ref = stream_item_ref(it);
	c->neighborsAt = ((uint64) it->nbrsHigh << 16) | it->nbrsLow;
	c->dist = it->dist;
	c->deleted = false;
}

/* Record what a distance call found out about an item */
static inline void
stream_item_set(StreamItem *it, const HnswCandidate *c)
{
	/* refs and neighborsAt of both storages fit 48 bits (block and offset) */
	Assert((c->neighborsAt >> 48) == 0);
	it->nbrsHigh = (uint32) (c->neighborsAt >> 16);
	it->nbrsLow = (uint16) c->neighborsAt;
	it->dist = c->dist;
}

static void
stream_slots_init(HnswStream *s, uint32 nslots)
{
	s->slots = palloc0(sizeof(uint32) * nslots);
	s->slotMask = nslots - 1;
}

/* Where ref's item number is, or the free slot where it belongs */
static inline uint32
stream_slot(const HnswStream *s, HnswRef ref)
{
	uint32		i = visited_hash(ref) & s->slotMask;

	while (s->slots[i] != 0 &&
		   stream_item_ref(stream_item(s, s->slots[i] - 1)) != ref)
		i = (i + 1) & s->slotMask;
	return i;
}

/*
 * Meet ref: if it was not met before, give it an item (distance still
 * unknown) and return true with its number in *num.
 */
static bool
stream_visit(HnswStream *s, HnswRef ref, uint32 *num)
{
	uint32		slot = stream_slot(s, ref);
	StreamItem *it;

	if (s->slots[slot] != 0)
		return false;
	Assert((ref >> 48) == 0);
	if ((s->nitems >> STREAM_CHUNK_SHIFT) == s->nchunks)
	{
		if (s->nchunks == s->maxchunks)
		{
			s->maxchunks *= 2;
			s->chunks = repalloc(s->chunks, sizeof(StreamItem *) * s->maxchunks);
		}
		s->chunks[s->nchunks++] = palloc(sizeof(StreamItem) * STREAM_CHUNK_ITEMS);
	}
	*num = s->nitems++;
	it = stream_item(s, *num);
	it->refHigh = (uint32) (ref >> 16);
	it->refLow = (uint16) ref;
	it->nbrsHigh = 0;
	it->nbrsLow = 0;
	it->dist = 0;
	s->slots[slot] = *num + 1;

	/* linear probing stays short up to three quarters full */
	if ((uint64) s->nitems * 4 > (uint64) (s->slotMask + 1) * 3)
	{
		uint32	   *old = s->slots;
		uint32		oldn = s->slotMask + 1;

		stream_slots_init(s, oldn * 2);
		for (uint32 j = 0; j < oldn; j++)
		{
			if (old[j] != 0)
				s->slots[stream_slot(s, stream_item_ref(stream_item(s, old[j] - 1)))] = old[j];
		}
		pfree(old);
	}
	return true;
}

static void
sheap_init(const HnswStream *s, StreamHeap *h, int capacity, bool max)
{
	h->items = palloc(sizeof(uint32) * capacity);
	h->count = 0;
	h->capacity = capacity;
	h->max = max;
	h->s = s;
}

/* Does item a belong above item b?  Ties go by ref, as in heap_before */
static inline bool
sheap_before(const void *arg, const void *a, const void *b)
{
	const StreamHeap *h = arg;
	const StreamItem *ia = stream_item(h->s, *(const uint32 *) a);
	const StreamItem *ib = stream_item(h->s, *(const uint32 *) b);
	HnswRef		ra;
	HnswRef		rb;

	if (ia->dist != ib->dist)
		return h->max ? ia->dist > ib->dist : ia->dist < ib->dist;
	ra = stream_item_ref(ia);
	rb = stream_item_ref(ib);
	return h->max ? ra > rb : ra < rb;
}

static void
sheap_push(StreamHeap *h, uint32 x)
{
	if (h->count == h->capacity)
	{
		h->capacity *= 2;
		h->items = repalloc(h->items, sizeof(uint32) * h->capacity);
	}
	sift_up((char *) h->items, sizeof(uint32), h->count++, &x,
			sheap_before, h);
}

static uint32
sheap_pop(StreamHeap *h)
{
	uint32		top = h->items[0];
	uint32		last;

	Assert(h->count > 0);
	last = h->items[--h->count];
	sift_down((char *) h->items, sizeof(uint32), h->count, &last,
			  sheap_before, h);
	return top;
}

/* Distance of the item at the top of a heap */
static inline float
sheap_top_dist(const HnswStream *s, const StreamHeap *h)
{
	return stream_item(s, h->items[0])->dist;
}

/* A live element with its distance known: a result, and maybe one of W */
static void
stream_add_result(HnswStream *s, uint32 x)
{
	sheap_push(&s->pool, x);
	if (s->found.count < s->ef ||
		stream_item(s, x)->dist < sheap_top_dist(s, &s->found))
	{
		sheap_push(&s->found, x);
		if (s->found.count > s->ef)
			sheap_pop(&s->found);
	}
}

static int
float_cmp(const void *a, const void *b)
{
	float		fa = *(const float *) a;
	float		fb = *(const float *) b;

	return fa < fb ? -1 : (fa > fb ? 1 : 0);
}

/*
 * After a round: what is final.  Everything, if nothing is left to expand;
 * else the first round's W, as plain Algorithm 5 would return it; in later
 * rounds only the nearer half of W, because the far end of a round is
 * where the next round finds what this one missed, and under strict order
 * such late finds are lost.
 */
static void
stream_set_bound(HnswStream *s)
{
	float	   *d;
	int			n = s->found.count;

	s->rounds++;
	if ((s->cand.count == 0 && s->ndeferred == 0) || n < s->ef)
		s->bound = get_float4_infinity();
	else if (s->rounds == 1)
		s->bound = sheap_top_dist(s, &s->found);
	else
	{
		d = palloc(sizeof(float) * n);
		for (int i = 0; i < n; i++)
			d[i] = stream_item(s, s->found.items[i])->dist;
		qsort(d, n, sizeof(float), float_cmp);
		s->bound = d[n / 2];
		pfree(d);
	}
}

/* Expand candidates until the round with the current ef converges */
static void
stream_expand(HnswStream *s)
{
	HnswGraph  *g = s->g;
	HnswRef    *nbrs = palloc(sizeof(HnswRef) * 2 * g->m);
	HnswCandidate *fresh = palloc(sizeof(HnswCandidate) * 2 * g->m);
	uint32	   *freshNum = palloc(sizeof(uint32) * 2 * g->m);

	while (s->cand.count > 0)
	{
		HnswCandidate c;
		int			nn;
		int			nfresh = 0;
		float		bound;

		stream_item_candidate(stream_item(s, s->cand.items[0]), &c);
		if (s->found.count >= s->ef && c.dist > sheap_top_dist(s, &s->found))
			break;
		sheap_pop(&s->cand);
		CHECK_FOR_INTERRUPTS();

		nn = g->ops->neighbors(g, &c, 0, nbrs);
		for (int i = 0; i < nn; i++)
		{
			if (stream_visit(s, nbrs[i], &freshNum[nfresh]))
				fresh[nfresh++].ref = nbrs[i];
		}
		if (nfresh == 0)
			continue;
		bound = s->found.count >= s->ef ? sheap_top_dist(s, &s->found) : HNSW_NO_BOUND;
		g->ops->distances(g, s->q, fresh, nfresh, NULL, bound);
		for (int i = 0; i < nfresh; i++)
		{
			if (fresh[i].dist > bound)
			{
				if (s->ndeferred == s->maxdeferred)
				{
					s->maxdeferred *= 2;
					s->deferred = repalloc(s->deferred,
										   sizeof(uint32) * s->maxdeferred);
				}
				s->deferred[s->ndeferred++] = freshNum[i];
				continue;
			}
			stream_item_set(stream_item(s, freshNum[i]), &fresh[i]);
			/* everything is kept for later rounds; only W is bounded */
			sheap_push(&s->cand, freshNum[i]);
			if (!fresh[i].deleted)
				stream_add_result(s, freshNum[i]);
		}
	}
	pfree(nbrs);
	pfree(fresh);
	pfree(freshNum);
}

/* Give the deferred elements their distances and their places */
static void
stream_resolve_deferred(HnswStream *s)
{
	HnswCandidate batch[64];

	for (int start = 0; start < s->ndeferred; start += lengthof(batch))
	{
		int			n = Min(s->ndeferred - start, (int) lengthof(batch));

		for (int i = 0; i < n; i++)
			batch[i].ref = stream_item_ref(stream_item(s, s->deferred[start + i]));
		s->g->ops->distances(s->g, s->q, batch, n, NULL, HNSW_NO_BOUND);
		for (int i = 0; i < n; i++)
		{
			uint32		x = s->deferred[start + i];

			stream_item_set(stream_item(s, x), &batch[i]);
			sheap_push(&s->cand, x);
			if (!batch[i].deleted)
				sheap_push(&s->pool, x);
		}
	}
	s->ndeferred = 0;
}

/* Start a stream for q: descend to layer 0 and run the first round */
HnswStream *
HnswStreamBegin(HnswGraph *g, const float *q, HnswRef entry, int entryLevel,
				int ef)
{
	HnswStream *s = palloc0(sizeof(HnswStream));
	HnswCandidate *eps;
	int			neps;

	neps = descend(g, q, entry, entryLevel, 0, HNSW_SCAN_DESCENT_EF, &eps);

	s->g = g;
	s->q = q;
	s->ef = ef;
	s->maxchunks = 16;
	s->chunks = palloc(sizeof(StreamItem *) * s->maxchunks);
	stream_slots_init(s, 1024);
	sheap_init(s, &s->cand, 256, false);
	sheap_init(s, &s->found, Max(ef + 1, 16), true);
	sheap_init(s, &s->pool, 256, false);
	s->maxdeferred = 256;
	s->deferred = palloc(sizeof(uint32) * s->maxdeferred);
	for (int i = 0; i < neps; i++)
	{
		uint32		x;

		if (!stream_visit(s, eps[i].ref, &x))
			continue;
		stream_item_set(stream_item(s, x), &eps[i]);
		sheap_push(&s->cand, x);
		if (!eps[i].deleted)
			stream_add_result(s, x);
	}
	pfree(eps);
	stream_expand(s);
	stream_set_bound(s);
	return s;
}

/* How many elements the stream has met (visited) so far */
uint32
HnswStreamMet(const HnswStream *s)
{
	return s->nitems;
}

/*
 * The next result, nearest first; false when there is none.  With
 * iterate, a round that has run out starts another; with strict, late
 * results are dropped rather than returned out of order.
 */
bool
HnswStreamNext(HnswStream *s, bool iterate, bool strict, HnswCandidate *out)
{
	for (;;)
	{
		if (s->pool.count > 0 && sheap_top_dist(s, &s->pool) <= s->bound)
		{
			stream_item_candidate(stream_item(s, sheap_pop(&s->pool)), out);
			if (strict && s->returnedAny && out->dist < s->last)
				continue;
			if (!s->returnedAny || out->dist > s->last)
				s->last = out->dist;
			s->returnedAny = true;
			return true;
		}
		if ((s->cand.count == 0 && s->ndeferred == 0) || !iterate)
			return false;
		s->ef = (s->ef < PG_INT32_MAX / 2) ? s->ef * 2 : PG_INT32_MAX;
		stream_resolve_deferred(s);
		stream_expand(s);
		stream_set_bound(s);
	}
}

/*
 * The heuristic's test: does kept, a neighbor already chosen, rule out a
 * candidate with vector v at distance dist from the base, by being closer
 * to it than the base is?
 */
static inline bool
rules_out(HnswGraph *g, const float *v, float dist, const float *kept)
{
	return HnswDistance(g, v, kept, dist) < dist;
}

/*
 * Algorithm 4, SELECT-NEIGHBORS-HEURISTIC: from candidates sorted
 * ascending by distance to a base element, keep up to max of them, each
 * closer to the base than to any already kept.  Keeping diverse directions
 * rather than the plain nearest is what keeps clustered data navigable.
 * Returns how many were kept; they are moved to the front of c.  With
 * keepPruned, leftover room is filled with the nearest of the rejected
 * (the paper's keepPrunedConnections): used when an existing list is
 * shrunk, where pruning down to a few links orphaned elements, markedly
 * so under inner product, which is not a metric.  given, when not NULL,
 * holds the candidates' vectors (in c's order), already read.
 */
static int
select_neighbors(HnswGraph *g, HnswCandidate *c, int nc, int max,
				  bool keepPruned, const float **given)
{
	const float **vecs;
	HnswCandidate *pruned;
	int			npruned = 0;
	int			nkept = 0;
	int			i;

	if (nc <= max && nc <= 1)
		return nc;

	vecs = palloc(sizeof(float *) * max);
	pruned = palloc(sizeof(HnswCandidate) * nc);
	for (i = 0; i < nc && nkept < max; i++)
	{
		const float *v = given ? given[i] : g->ops->element_vector(g, &c[i]);
		bool		good = true;

		for (int j = 0; j < nkept; j++)
		{
			if (rules_out(g, v, c[i].dist, vecs[j]))
			{
				good = false;
				break;
			}
		}
		if (good)
		{
			vecs[nkept] = v;
			c[nkept++] = c[i];
		}
		else
			pruned[npruned++] = c[i];
	}
	if (keepPruned)
	{
		/* the rejected so far, then the candidates never looked at */
		for (int j = 0; j < npruned && nkept < max; j++)
			c[nkept++] = pruned[j];
		for (; i < nc && nkept < max; i++)
			c[nkept++] = c[i];
	}
	pfree(pruned);
	pfree(vecs);
	return nkept;
}

/*
 * Algorithm 1, INSERT, first half: find the neighbors a new element
 * with vector q and top layer `level` gets on each layer, without changing
 * the graph.  The storage then writes the element once, with its lists,
 * and calls HnswLinkBack.  With an empty graph (entry invalid) there are
 * no neighbors.
 */
void
HnswFindNeighbors(HnswGraph *g, const float *q, int level, HnswRef entry,
				   int entryLevel, HnswNeighborhood *nb)
{
	HnswCandidate *ep;
	int			nep;

	memset(nb, 0, sizeof(HnswNeighborhood));
	nb->level = level;
	if (entry == HNSW_INVALID_REF)
		return;

	nep = descend(g, q, entry, entryLevel, level, HNSW_INSERT_DESCENT_EF, &ep);
	/* a deleted entry still seeds the search; it is just never chosen */

	for (int lc = Min(level, entryLevel); lc >= 0; lc--)
	{
		HnswCandidate *w;
		int			nw;
		int			nsel;

		nw = HnswSearchLayer(g, q, ep, nep, g->efConstruction, lc, &w);
		if (nw == 0)
		{
			/* nothing live found here: search the next layer from ep */
			pfree(w);
			continue;
		}
		if (lc == 0)
		{
			/* keep the full result: the caller looks for duplicates */
			nb->layer0 = palloc(sizeof(HnswCandidate) * Max(nw, 1));
			memcpy(nb->layer0, w, sizeof(HnswCandidate) * nw);
			nb->nlayer0 = nw;
		}
		/* W itself is the entry set for the next layer down */
		pfree(ep);
		ep = palloc(sizeof(HnswCandidate) * Max(nw, 1));
		memcpy(ep, w, sizeof(HnswCandidate) * nw);
		nep = nw;

		nsel = select_neighbors(g, w, nw, HnswSelectCount(g->m, lc), false,
								 NULL);
		nb->lists[lc] = w;
		nb->count[lc] = nsel;
	}
	pfree(ep);
}

/*
 * Algorithm 1, INSERT, second half: add the new element q to the lists of
 * the neighbors it chose.  If every one of them prunes q away on layer 0,
 * q would be unreachable, so its nearest neighbor is made to keep it.
 */
void
HnswLinkBack(HnswGraph *g, const HnswCandidate *q, const HnswNeighborhood *nb)
{
	for (int lc = nb->level; lc >= 0; lc--)
	{
		bool		linked = false;

		for (int i = 0; i < nb->count[lc]; i++)
		{
			HnswCandidate qe = *q;

			/* the distance seen from the neighbor's side is the same */
			qe.dist = nb->lists[lc][i].dist;
			if (g->ops->add_link(g, &nb->lists[lc][i], lc, &qe, false))
				linked = true;
		}
		if (!linked && lc == 0 && nb->count[0] > 0)
		{
			HnswCandidate qe = *q;

			qe.dist = nb->lists[0][0].dist;
			g->ops->add_link(g, &nb->lists[0][0], 0, &qe, true);
		}
	}
}

/*
 * Among the layer-0 results of HnswFindNeighbors, an element whose vector
 * is q itself, or -1.  A kernel applied to two bitwise-equal vectors gives
 * exactly kernel(q, q), so only candidates at that distance are compared.
 */
int
HnswFindDuplicate(HnswGraph *g, const float *q, const HnswNeighborhood *nb)
{
	float		self = g->dist(q, q, g->dim);

	for (int i = 0; i < nb->nlayer0; i++)
	{
		if (nb->layer0[i].dist != self)
			continue;
		if (memcmp(g->ops->element_vector(g, &nb->layer0[i]), q,
				   sizeof(float) * g->dim) == 0)
			return i;
	}
	return -1;
}

/*
 * New neighbors on a layer for an existing element e that lost some
 * (vacuum), chosen by the heuristic, filling the list, from a pool of: the
 * neighbors e keeps; the live elements that the lost ones (nlost deleted
 * refs) led to; and, when e lost more than it keeps, the results of a
 * search for e's vector from the entry point, as Algorithm 1 does for a
 * new element.  Returns how many, in *out, with their distances to e.
 *
 * Why the walk through the lost: a search with a small ef_construction
 * finds e's own cluster only, so after a mass delete the clusters that
 * only deleted elements bridged drift apart, and queries that enter the
 * graph on the wrong side never cross.  What the deleted elements linked
 * to keeps e's long links (the same reasoning as FreshDiskANN's delete
 * consolidation).  The walk goes up to HNSW_REPAIR_HOPS deleted elements
 * deep, for when most of the graph went at once; the deleted are still on
 * their pages, as vacuum frees them only after every repair.  An element
 * that keeps most of its list has its neighborhood in the pool already,
 * and the search, the dearest part, is skipped: that repairs spread-out
 * deletes faster than a search did, and with better recall after.
 */
int
HnswRepairNeighbors(HnswGraph *g, const HnswCandidate *e, const float *evec,
					 int layer, const HnswRef *keep, int nkeep,
					 const HnswRef *lost, int nlost,
					 HnswRef entry, int entryLevel, HnswCandidate **out)
{
	int			cap = HnswLayerCapacity(g->m, layer);
	HnswCandidate *w = NULL;
	HnswCandidate *c;
	HnswCandidate *front;
	HnswCandidate *next;
	HnswRef    *nbrs;
	int			nfront = 0;
	int			expanded = 0;
	int			nw = 0;
	int			n = 0;

	/* most of the list is gone, or it was empty: search too */
	if (nlost > nkeep || nkeep == 0)
	{
		nw = HnswSearchFrom(g, evec, entry, entryLevel, layer,
							g->efConstruction, &w);
	}

	/* c: the pool, which the visited set keeps free of repeats */
	c = palloc(sizeof(HnswCandidate) * (nw + (HNSW_REPAIR_WALK + 1) * cap));
	visited_clear(&g->visited);
	visited_add(&g->visited, e->ref);
	for (int i = 0; i < nw; i++)
	{
		if (visited_add(&g->visited, w[i].ref))
			c[n++] = w[i];
	}
	if (w)
		pfree(w);

	/*
	 * Breadth first from e's list: a live element joins the pool, a deleted
	 * one is expanded, up to HNSW_REPAIR_WALK of them in all.
	 */
	front = palloc(sizeof(HnswCandidate) * (HNSW_REPAIR_WALK + 1) * cap);
	next = palloc(sizeof(HnswCandidate) * (HNSW_REPAIR_WALK + 1) * cap);
	nbrs = palloc(sizeof(HnswRef) * 2 * g->m);
	for (int i = 0; i < nkeep; i++)
	{
		if (visited_add(&g->visited, keep[i]))
			front[nfront++].ref = keep[i];
	}
	for (int i = 0; i < nlost; i++)
	{
		if (visited_add(&g->visited, lost[i]))
			front[nfront++].ref = lost[i];
	}
	for (int hop = 0; nfront > 0; hop++)
	{
		HnswCandidate *swap;
		int			nnext = 0;

		g->ops->distances(g, evec, front, nfront, NULL, HNSW_NO_BOUND);
		for (int i = 0; i < nfront; i++)
		{
			int			nn;

			if (!front[i].deleted)
			{
				c[n++] = front[i];
				continue;
			}
			if (hop >= HNSW_REPAIR_HOPS || expanded >= HNSW_REPAIR_WALK)
				continue;
			expanded++;
			nn = g->ops->neighbors(g, &front[i], layer, nbrs);
			for (int j = 0; j < nn; j++)
			{
				if (visited_add(&g->visited, nbrs[j]))
					next[nnext++].ref = nbrs[j];
			}
		}
		swap = front;
		front = next;
		next = swap;
		nfront = nnext;
	}
	pfree(front);
	pfree(next);
	pfree(nbrs);

	qsort(c, n, sizeof(HnswCandidate), candidate_cmp);
	n = select_neighbors(g, c, n, cap, true, NULL);
	*out = c;
	return n;
}

/*
 * A neighbor list of e on a layer (cur, ncur refs) after adding q: q is
 * appended while there is room; a full list is shrunk back to capacity
 * with the heuristic over its members and q (paper Algorithm 1, lines
 * 13-16).  Returns the new count, with the list in out; q may be absent
 * from it when e has better neighbors, unless force, when it takes the
 * place of the last kept.  The page storage calls this from add_link; the
 * in-memory build, which keeps more beside its lists, calls
 * HnswMergeLinkKnown, which gives the same lists.
 */
int
HnswMergeLink(HnswGraph *g, const HnswCandidate *e, int layer,
			  const HnswRef *cur, int ncur, const HnswCandidate *q,
			  bool force, HnswRef *out)
{
	int			cap = HnswLayerCapacity(g->m, layer);
	HnswCandidate *c;
	const float **v;
	CandidateVector *cv;
	const float *ev;
	int			n;

	for (int i = 0; i < ncur; i++)
	{
		out[i] = cur[i];
		if (cur[i] == q->ref)
			return ncur;
	}
	if (ncur < cap)
	{
		out[ncur] = q->ref;
		return ncur + 1;
	}

	/* each member's vector is read once: for its distance and the pruning */
	ev = g->ops->element_vector(g, e);
	c = palloc(sizeof(HnswCandidate) * (ncur + 1));
	v = palloc(sizeof(const float *) * (ncur + 1));
	cv = palloc(sizeof(CandidateVector) * (ncur + 1));
	for (int i = 0; i < ncur; i++)
		c[i].ref = cur[i];
	g->ops->distances(g, ev, c, ncur, v, HNSW_NO_BOUND);
	c[ncur] = *q;
	v[ncur] = g->ops->element_vector(g, q);
	for (int i = 0; i <= ncur; i++)
	{
		cv[i].c = c[i];
		cv[i].v = v[i];
	}
	qsort(cv, ncur + 1, sizeof(CandidateVector), candidate_cmp);
	/* a neighbor deleted meanwhile is the first to go */
	n = 0;
	for (int i = 0; i <= ncur; i++)
	{
		if (!cv[i].c.deleted)
		{
			c[n] = cv[i].c;
			v[n++] = cv[i].v;
		}
	}
	n = select_neighbors(g, c, n, cap, true, v);
	for (int i = 0; i < n; i++)
		out[i] = c[i].ref;
	pfree(c);
	pfree(v);
	pfree(cv);
	if (force)
	{
		bool		kept = false;

		for (int i = 0; i < n && !kept; i++)
			kept = (out[i] == q->ref);
		if (!kept)
		{
			if (n < cap)
				n++;
			out[n - 1] = q->ref;
		}
	}
	return n;
}

/* A member of a known list while it is reconsidered (HnswMergeLinkKnown) */
typedef struct KnownMember
{
	HnswCandidate c;			/* must be first: sorted by candidate_cmp */
	const float *v;				/* its vector, read when first needed */
	uint8		was;			/* verdict stored with the list */
	uint8		now;			/* verdict of this round */
} KnownMember;

static inline const float *
known_vector(HnswGraph *g, KnownMember *x)
{
	if (x->v == NULL)
		x->v = g->ops->element_vector(g, &x->c);
	return x->v;
}

/*
 * HnswMergeLink for a list that carries each member's distance to e and
 * the heuristic's last verdict on it (in-memory build).  The result is the
 * one HnswMergeLink would give, but a full list is reconsidered only where
 * q can change it.  Taking members in ascending order, member x is kept
 * iff it is closer to e than to every member kept before it; so, with the
 * verdicts of the last round:
 *	 - x kept then is kept now unless closer to a member kept now that was
 *	   not kept then (q, or a member whose verdict was unknown or changed);
 *	 - x pruned then (by a member kept then) stays pruned as long as no
 *	   member kept then has lost its place;
 *	 - anything else is checked against every member kept now.
 * Members never looked at because the list filled are "unknown".  Only
 * kept members decide about others, so dropping a pruned or unknown one
 * leaves every verdict true.  Returns whether q is in the list after.
 */
bool
HnswMergeLinkKnown(HnswGraph *g, const HnswCandidate *e, int layer,
				   HnswKnownList *list, const HnswCandidate *q, bool force)
{
	int			cap = HnswLayerCapacity(g->m, layer);
	int			n = list->n;
	KnownMember x[2 * HNSW_MAX_M + 1];
	int			kept[2 * HNSW_MAX_M];
	int			nkept = 0;
	int			nout = 0;
	bool		lost = false;
	bool		qin = false;
	int			i;

	for (i = 0; i < n; i++)
	{
		if (list->refs[i] == q->ref)
			return true;
	}
	if (n < cap)
	{
		list->refs[n] = q->ref;
		list->dists[n] = q->dist;
		list->verdicts[n] = HNSW_VERDICT_UNKNOWN;
		list->n = n + 1;
		return true;
	}

	for (i = 0; i < n; i++)
	{
		x[i].c.ref = list->refs[i];
		x[i].c.neighborsAt = 0;
		x[i].c.dist = list->dists[i];
		x[i].c.deleted = false;
		x[i].v = NULL;
		x[i].was = list->verdicts[i];
	}
	x[n].c = *q;
	x[n].v = NULL;
	x[n].was = HNSW_VERDICT_UNKNOWN;
	qsort(x, n + 1, sizeof(KnownMember), candidate_cmp);

	for (i = 0; i <= n && nkept < cap; i++)
	{
		bool		good = true;

		if (x[i].was == HNSW_VERDICT_PRUNED && !lost)
			good = false;
		else
		{
			bool		onlyNew = (x[i].was == HNSW_VERDICT_KEPT);
			const float *v = NULL;

			for (int j = 0; j < nkept && good; j++)
			{
				KnownMember *k = &x[kept[j]];

				if (onlyNew && k->was == HNSW_VERDICT_KEPT)
					continue;
				if (v == NULL)
					v = known_vector(g, &x[i]);
				if (rules_out(g, v, x[i].c.dist, known_vector(g, k)))
					good = false;
			}
		}
		x[i].now = good ? HNSW_VERDICT_KEPT : HNSW_VERDICT_PRUNED;
		if (good)
			kept[nkept++] = i;
		else if (x[i].was == HNSW_VERDICT_KEPT)
			lost = true;
	}
	for (; i <= n; i++)
		x[i].now = HNSW_VERDICT_UNKNOWN;

	/* the kept, then the pruned, then the never looked at: as HnswMergeLink */
	for (int pass = 0; pass < 3; pass++)
	{
		uint8		want = pass == 0 ? HNSW_VERDICT_KEPT :
			pass == 1 ? HNSW_VERDICT_PRUNED : HNSW_VERDICT_UNKNOWN;

		for (i = 0; i <= n && nout < cap; i++)
		{
			if (x[i].now != want)
				continue;
			list->refs[nout] = x[i].c.ref;
			list->dists[nout] = x[i].c.dist;
			list->verdicts[nout++] = x[i].now;
			if (x[i].c.ref == q->ref)
				qin = true;
		}
	}
	list->n = nout;

	if (force && !qin)
	{
		/* q takes the last place; if a kept member had it, verdicts lapse */
		bool		keptLost = list->verdicts[nout - 1] == HNSW_VERDICT_KEPT;

		list->refs[nout - 1] = q->ref;
		list->dists[nout - 1] = q->dist;
		list->verdicts[nout - 1] = HNSW_VERDICT_UNKNOWN;
		if (keptLost)
			memset(list->verdicts, HNSW_VERDICT_UNKNOWN, nout);
		qin = true;
	}
	return qin;
}
