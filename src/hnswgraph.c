/*-------------------------------------------------------------------------
 *
 * hnswgraph.c
 *	  The HNSW algorithm's core, once, for any storage that implements
 *	  HnswGraphOps (hnswmem.c in memory, hnswpage.c on buffer pages):
 *	  searching a layer (Algorithm 2), the neighbor heuristic (Algorithm
 *	  4), inserting (Algorithm 1) and the merge of a new member into a full
 *	  list.  The scan's stream is in hnswgraphstream.c, the repairs in
 *	  hnswgraphrepair.c and hnswgraphconnect.c.
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

static void visited_grow(HnswVisited *v);

/* Mark ref visited; return true if it was not visited before */
static inline bool
visited_add(HnswVisited *v, uint64 key)
{
	uint32		i = HnswHashRef(key) & v->mask;

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

/* visited_clear and visited_add for the algorithm's other files */
void
HnswVisitedClear(HnswVisited *v)
{
	visited_clear(v);
}

bool
HnswVisitedAdd(HnswVisited *v, uint64 key)
{
	return visited_add(v, key);
}

/* Binary heaps ------------------------------------------------------------ */

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
	HnswSiftUp((char *) h->items, sizeof(HnswCandidate), h->count++, c,
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
	HnswSiftDown((char *) h->items, sizeof(HnswCandidate), h->count, &last,
			  heap_before, h);
}

int
HnswCandidateCmp(const void *a, const void *b)
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

/* A candidate with its vector, sorted together by HnswCandidateCmp */
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
			  int dim, Size vecsize, int m, int efConstruction, int maxLevel)
{
	g->ops = ops;
	g->dist = dist;
	g->bdist = DistBoundedKernel(dist);
	g->dim = dim;
	g->vecsize = vecsize;
	g->m = m;
	g->efConstruction = efConstruction;
	g->ml = 1.0 / log((double) m);
	Assert(maxLevel >= 0 && maxLevel <= HNSW_MAX_LEVEL);
	g->maxLevel = maxLevel;
	visited_init(&g->visited, CurrentMemoryContext, 1024);
	heap_init(&g->cand, 256, false);
	heap_init(&g->found, 256, true);
}

/* The levels' random source: the backend's, or one seeded for a test */
static pg_prng_state level_prng;
static bool level_seeded = false;

/* hnsw.test_seed: 0 draws levels from the backend's source again */
void
HnswSeedLevels(uint64 seed)
{
	level_seeded = seed != 0;
	if (level_seeded)
		pg_prng_seed(&level_prng, seed);
}

/* A new element's top layer: floor(-ln(U) * mL), capped (paper, 4.1) */
int
HnswRandomLevel(HnswGraph *g)
{
	double		u = pg_prng_double(level_seeded ? &level_prng :
								   &pg_global_prng_state);
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
	qsort(result, n, sizeof(HnswCandidate), HnswCandidateCmp);
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
int
HnswDescend(HnswGraph *g, const float *q, HnswRef entry, int entryLevel,
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
	nep = HnswDescend(g, q, entry, entryLevel, layer, HNSW_INSERT_DESCENT_EF, &ep);
	n = HnswSearchLayer(g, q, ep, nep, ef, layer, out);
	pfree(ep);
	return n;
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
int
HnswSelectNeighbors(HnswGraph *g, HnswCandidate *c, int nc, int max,
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

	nep = HnswDescend(g, q, entry, entryLevel, level, HNSW_INSERT_DESCENT_EF, &ep);
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

		nsel = HnswSelectNeighbors(g, w, nw, HnswSelectCount(g->m, lc), false,
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
			if (g->ops->add_link(g, &nb->lists[lc][i], lc, &qe, HNSW_LINK_NEW))
				linked = true;
		}
		if (!linked && lc == 0 && nb->count[0] > 0)
		{
			HnswCandidate qe = *q;

			qe.dist = nb->lists[0][0].dist;
			g->ops->add_link(g, &nb->lists[0][0], 0, &qe,
							 HNSW_LINK_NEW | HNSW_LINK_FORCE);
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
				   g->vecsize) == 0)
			return i;
	}
	return -1;
}

/*
 * Algorithm 1, INSERT: add a vector (prepared for the metric) with its heap
 * TID to the graph.  A vector equal to an element's joins that element
 * (rows sharing a vector share an element).  The storage brackets the
 * insert with its locks (begin_insert, end_insert) and writes the new
 * element once, with its lists, before its neighbors link back to it; the
 * entry point is raised last, after the element is fully linked.  Returns
 * false, having changed nothing, when the storage is full (the in-memory
 * build's area).
 */
bool
HnswInsert(HnswGraph *g, const float *vec, ItemPointer heaptid)
{
	int			level = HnswRandomLevel(g);
	HnswNeighborhood nb;
	HnswCandidate self;
	HnswRef		entry;
	int			entryLevel;
	int			dup;
	bool		done = true;

	if (!g->ops->begin_insert(g, level, &entry, &entryLevel))
		return false;
	HnswFindNeighbors(g, vec, level, entry, entryLevel, &nb);

	dup = HnswFindDuplicate(g, vec, &nb);
	if (dup < 0 || !g->ops->add_heaptid(g, &nb.layer0[dup], vec, heaptid))
	{
		if (g->ops->add_element(g, vec, level, heaptid, &nb, &self))
		{
			HnswLinkBack(g, &self, &nb);
			if (level > entryLevel)
				g->ops->raise_entry(g, self.ref, level, NULL, NULL);
		}
		else
			done = false;
	}
	g->ops->end_insert(g);
	return done;
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
	qsort(cv, ncur + 1, sizeof(CandidateVector), HnswCandidateCmp);
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
	n = HnswSelectNeighbors(g, c, n, cap, true, v);
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
	HnswCandidate c;			/* must be first: sorted by HnswCandidateCmp */
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
	qsort(x, n + 1, sizeof(KnownMember), HnswCandidateCmp);

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
