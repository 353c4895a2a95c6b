/*-------------------------------------------------------------------------
 *
 * hnswgraphconnect.c
 *	  The algorithm's repairs of reachability: links for the elements that
 *	  no walk from the entry point reaches (vacuum's cleanup, and a build
 *	  that went on on pages, HnswConnect), and for the elements that no
 *	  list names (the in-memory build's orphans, HnswLinkOrphans).  The
 *	  repair of a single list is in hnswgraphrepair.c.
 *
 * Like the rest of the algorithm (hnswgraph.h), it knows the graph only
 * through HnswGraphOps: the storages enumerate their elements and write
 * lists; what to link, and from where, is decided here, once for both.
 * Memory comes from the caller's current context.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/memutils.h"

#include "hnswgraph.h"

/* A candidate and its place in the list it came from, for stable sorts */
typedef struct Ranked
{
	HnswCandidate c;
	int			pos;
} Ranked;

/* qsort: nearest first, then by place */
static int
ranked_asc(const void *a, const void *b)
{
	const Ranked *ra = a;
	const Ranked *rb = b;

	if (ra->c.dist != rb->c.dist)
		return ra->c.dist < rb->c.dist ? -1 : 1;
	return ra->pos - rb->pos;
}

/* qsort: farthest first, then by place */
static int
ranked_desc(const void *a, const void *b)
{
	const Ranked *ra = a;
	const Ranked *rb = b;

	if (ra->c.dist != rb->c.dist)
		return ra->c.dist > rb->c.dist ? -1 : 1;
	return ra->pos - rb->pos;
}

/*
 * Where ref sits in a set's refs, or -1.  The in-memory storage numbers its
 * elements from 0, so a ref is often its own place; else a binary search.
 */
static int64
set_index(const HnswElementSet *set, HnswRef ref)
{
	const HnswRef *hit;

	if (ref < (uint64) set->n && set->refs[ref] == ref)
		return (int64) ref;
	hit = bsearch(&ref, set->refs, set->n, sizeof(HnswRef), HnswRefCmp);
	return hit ? hit - set->refs : -1;
}

/* The candidate for element i of a set */
static inline HnswCandidate
set_candidate(const HnswElementSet *set, int64 i)
{
	HnswCandidate c = {set->refs[i], set->neighborsAt[i], 0, false};

	return c;
}

/*
 * Does an element other than r link to member v of r's list?  With the
 * in-degrees of a set (HnswLinkOrphans counted every list's links) the
 * count says; else v's own neighbors are asked.
 */
static bool
linked_elsewhere(HnswGraph *g, HnswRef v, int layer, HnswRef r,
				 const HnswElementSet *set, const uint32 *indeg)
{
	int64		at;

	if (indeg == NULL)
		return HnswHasOtherParent(g, v, layer, r);
	at = set_index(set, v);
	return at >= 0 && indeg[at] >= 2;
}

/* Elements whose layer-0 link from some list a link_from took */
typedef struct RefBag
{
	HnswRef    *refs;
	int64		n;
	int64		max;
	MemoryContext cxt;			/* refs lives here, not in a per-element one */
} RefBag;

static void
bag_add(RefBag *bag, HnswRef ref)
{
	if (bag->n == bag->max)
	{
		bag->max = Max(64, bag->max * 2);
		bag->refs = bag->refs ?
			repalloc_huge(bag->refs, sizeof(HnswRef) * bag->max) :
			MemoryContextAllocExtended(bag->cxt, sizeof(HnswRef) * bag->max,
									   MCXT_ALLOC_HUGE);
	}
	bag->refs[bag->n++] = ref;
}

/*
 * Make r link to x on a layer: into a free slot of r's list, or in place of
 * the member farthest from r that another element links to as well, so
 * that nobody loses a last incoming link and nothing cascades (making r
 * prune by the heuristic instead could drop its victim's last link, and two
 * orphans could then displace each other for ever).  The member x displaces
 * may still have been reached only through r (the element linking it too
 * may hang on r): x links to it if it has room (HnswInherit).  A list that
 * changed since it was read (inserts run meanwhile) is left alone.  With
 * indeg (the in-degrees of set's elements), the link keeps the counts up
 * to date.
 */
static bool
link_from(HnswGraph *g, HnswRef r, const HnswCandidate *x, int layer,
		  const HnswElementSet *set, uint32 *indeg, RefBag *evicted)
{
	int			cap = HnswLayerCapacity(g->m, layer);
	HnswCandidate e;
	Ranked		c[2 * HNSW_MAX_M];
	HnswCandidate batch[2 * HNSW_MAX_M];
	HnswRef		members[2 * HNSW_MAX_M];
	HnswRef		out[2 * HNSW_MAX_M];
	int			nm;
	int			slot = -1;
	int64		at;

	g->ops->locate(g, r, &e);
	if (e.deleted)
		return false;
	nm = g->ops->neighbors(g, &e, layer, members);
	if (HnswRefsContain(members, nm, x->ref))
		return true;
	memcpy(out, members, sizeof(HnswRef) * nm);
	if (nm < cap)
		slot = nm;
	else
	{
		for (int i = 0; i < nm; i++)
			batch[i].ref = members[i];
		g->ops->distances(g, g->ops->element_vector(g, &e), batch, nm, NULL,
						  HNSW_NO_BOUND);
		for (int i = 0; i < nm; i++)
		{
			c[i].c = batch[i];
			c[i].pos = i;
		}
		qsort(c, nm, sizeof(Ranked), ranked_desc);
		for (int i = 0; i < nm && slot < 0; i++)
		{
			if (linked_elsewhere(g, c[i].c.ref, layer, r, set, indeg))
				slot = c[i].pos;
		}
		if (slot < 0)
			return false;
	}
	out[slot] = x->ref;
	if (!g->ops->replace_neighbors(g, &e, layer, members, nm, out,
								   Max(nm, slot + 1)))
		return false;
	if (slot < nm)
	{
		if (HnswInherit(g, x, members[slot], layer) > 0 && indeg &&
			(at = set_index(set, members[slot])) >= 0)
			indeg[at]++;
		if (evicted && layer == 0)
			bag_add(evicted, members[slot]);
	}
	if (indeg)
	{
		if (slot < nm && (at = set_index(set, members[slot])) >= 0)
			indeg[at]--;
		if ((at = set_index(set, x->ref)) >= 0)
			indeg[at]++;
	}
	return true;
}

/*
 * Have one of x's own layer-0 neighbors link to x: the nearest that takes
 * it (link_from), of the HNSW_RELINK_TRIES nearest.  Returns whether one
 * did.
 */
static bool
link_from_own(HnswGraph *g, const HnswCandidate *x, const HnswElementSet *set,
			  uint32 *indeg)
{
	HnswCandidate batch[2 * HNSW_MAX_M];
	Ranked		c[2 * HNSW_MAX_M];
	HnswRef		nbrs[2 * HNSW_MAX_M];
	int			nn = g->ops->neighbors(g, x, 0, nbrs);

	if (nn == 0)
		return false;
	for (int i = 0; i < nn; i++)
		batch[i].ref = nbrs[i];
	g->ops->distances(g, g->ops->element_vector(g, x), batch, nn, NULL,
					  HNSW_NO_BOUND);
	for (int i = 0; i < nn; i++)
	{
		c[i].c = batch[i];
		c[i].pos = i;
	}
	qsort(c, nn, sizeof(Ranked), ranked_asc);
	for (int i = 0; i < nn && i < HNSW_RELINK_TRIES; i++)
	{
		if (!c[i].c.deleted && link_from(g, c[i].c.ref, x, 0, set, indeg, NULL))
			return true;
	}
	return false;
}

/*
 * Mark what a walk over layer-`layer` links reaches from set element
 * `start`, through live elements only.
 */
static void
mark_reached(HnswGraph *g, const HnswElementSet *set, int layer, int64 start,
			 bool *reached, int64 *queue)
{
	int64		head = 0;
	int64		tail = 0;
	HnswRef		nbrs[2 * HNSW_MAX_M];

	if (reached[start])
		return;
	reached[start] = true;
	queue[tail++] = start;
	while (head < tail)
	{
		int64		i = queue[head++];
		HnswCandidate c = set_candidate(set, i);
		int			nn = g->ops->neighbors(g, &c, layer, nbrs);

		CHECK_FOR_INTERRUPTS();
		for (int j = 0; j < nn; j++)
		{
			int64		at = set_index(set, nbrs[j]);

			if (at >= 0 && !reached[at] && set->levels[at] >= layer)
			{
				reached[at] = true;
				queue[tail++] = at;
			}
		}
	}
}

/*
 * The HNSW_RELINK_TRIES elements nearest to xv among the marked ones of a
 * layer (by a scan of them all), ascending, into best; returns how many.
 */
static int
nearest_marked(HnswGraph *g, const HnswElementSet *set, const float *xv,
			   int layer, const bool *marked, int64 *scanned,
			   HnswCandidate *best)
{
	HnswCandidate batch[64];
	int			nbest = 0;
	int			nbatch = 0;

	for (int64 i = 0; i <= set->n; i++)
	{
		if (i < set->n && (!marked[i] || set->levels[i] < layer))
			continue;
		if (i < set->n)
		{
			batch[nbatch++].ref = set->refs[i];
			(*scanned)++;
		}
		if (nbatch == lengthof(batch) || (i == set->n && nbatch > 0))
		{
			g->ops->distances(g, xv, batch, nbatch, NULL, HNSW_NO_BOUND);
			for (int j = 0; j < nbatch; j++)
			{
				int			k;

				if (batch[j].deleted)
					continue;
				if (nbest == HNSW_RELINK_TRIES &&
					batch[j].dist >= best[nbest - 1].dist)
					continue;
				if (nbest < HNSW_RELINK_TRIES)
					nbest++;
				for (k = nbest - 1; k > 0 && best[k - 1].dist > batch[j].dist; k--)
					best[k] = best[k - 1];
				best[k] = batch[j];
			}
			nbatch = 0;
			CHECK_FOR_INTERRUPTS();
		}
	}
	return nbest;
}

/*
 * Link x from the nearest that take it of the reached elements of a layer
 * (by a scan of them all), nearest first.
 */
static bool
link_from_nearest_reached(HnswGraph *g, const HnswElementSet *set,
						  const HnswCandidate *x, const float *xv, int layer,
						  const bool *reached, int64 *scanned)
{
	HnswCandidate best[HNSW_RELINK_TRIES];
	int			nbest = nearest_marked(g, set, xv, layer, reached, scanned,
									   best);

	for (int i = 0; i < nbest; i++)
	{
		if (link_from(g, best[i].ref, x, layer, NULL, NULL, NULL))
			return true;
	}
	return false;
}

/*
 * Give x (set element xi), which no walk from the entry point reaches on a
 * layer, a link from an element that one does: the nearest that takes it
 * among the results of a search for x's vector.  An x with no links of its
 * own on that layer (added while all near it was deleted) gets them first,
 * as an insert would, and they link back.  Returns whether x was linked.
 */
static bool
relink(HnswGraph *g, const HnswElementSet *set, int64 xi, int layer,
	   HnswRef entry, int entryLevel, const bool *reached, int64 *scanned)
{
	HnswCandidate x = set_candidate(set, xi);
	HnswRef		cur[2 * HNSW_MAX_M];
	const float *xv = g->ops->element_vector(g, &x);
	HnswCandidate *w;
	int			nw;
	int			tried = 0;

	if (g->ops->neighbors(g, &x, layer, cur) == 0)
	{
		HnswCandidate *out;
		int			n = HnswRepairNeighbors(g, &x, xv, layer, NULL, 0, NULL, 0,
											entry, entryLevel, &out);
		HnswRef		refs[2 * HNSW_MAX_M];

		for (int i = 0; i < n; i++)
			refs[i] = out[i].ref;
		if (n > 0 && g->ops->replace_neighbors(g, &x, layer, cur, 0, refs, n))
		{
			for (int i = 0; i < n; i++)
			{
				int64		at = set_index(set, out[i].ref);
				HnswCandidate q = x;

				q.dist = out[i].dist;
				if (g->ops->add_link(g, &out[i], layer, &q, 0) &&
					at >= 0 && reached[at])
					return true;
			}
		}
	}

	nw = HnswSearchFrom(g, xv, entry, entryLevel, layer, g->efConstruction, &w);
	for (int i = 0; i < nw && tried < HNSW_RELINK_TRIES; i++)
	{
		int64		at = set_index(set, w[i].ref);

		if (w[i].ref == x.ref || at < 0 || !reached[at])
			continue;
		tried++;
		if (link_from(g, w[i].ref, &x, layer, NULL, NULL, NULL))
			return true;
	}

	/*
	 * The search found nothing reached: x's part of the graph is where the
	 * descent leads, and the reached part is elsewhere.  The nearest
	 * reached elements take it, found by a scan of the reached; this runs
	 * once per such part, since x brings the rest of it in, within a
	 * budget of HNSW_CONNECT_SCANS times the live elements per walk.
	 */
	if (*scanned >= (int64) HNSW_CONNECT_SCANS * set->n)
		return false;
	return link_from_nearest_reached(g, set, &x, xv, layer, reached, scanned);
}

/*
 * See that a search for x's vector on a layer, keeping ef, finds x through
 * x's own surroundings: that one of the others it keeps (the nearest to x
 * it met) links to x.  Finding x is not enough: churn deletes x's
 * surroundings, new elements fill them that never learned of x, and x is
 * then linked only from afar.  A search whose descent happens to pass there
 * finds x; one that lands among x's new neighbors, as a scan with a wider
 * descent does, finds it at no ef.  (On the upper layers, which every
 * search crosses with few candidates, finding x is enough: asking more
 * there only moved links around at every VACUUM of an unchanged index.)
 * If the search does not, link x from the nearest others it kept that take
 * it (link_from; what that takes a link from goes into evicted, if given).
 * Returns whether it had to.
 */
static bool
make_findable(HnswGraph *g, const HnswElementSet *set, int64 xi, int layer,
			  HnswRef entry, int entryLevel, int ef, RefBag *evicted)
{
	HnswCandidate x = set_candidate(set, xi);
	HnswCandidate *w;
	HnswRef		nbrs[2 * HNSW_MAX_M];
	int			nw;
	int			tried = 0;
	bool		found = false;
	bool		linked = false;

	if (x.ref == entry)
		return false;
	nw = HnswSearchFrom(g, g->ops->element_vector(g, &x), entry, entryLevel,
						layer, ef, &w);
	for (int i = 0; i < nw; i++)
	{
		if (w[i].ref == x.ref)
			found = true;
	}
	/* upper layers, searched with the narrowest descent: found is enough */
	if (found && layer > 0)
		return false;
	for (int i = 0; found && i < nw; i++)
	{
		HnswCandidate o;

		if (w[i].ref == x.ref)
			continue;
		g->ops->locate(g, w[i].ref, &o);
		if (HnswRefsContain(nbrs, g->ops->neighbors(g, &o, layer, nbrs), x.ref))
			return false;
	}
	for (int i = 0; i < nw && tried < HNSW_FINDABLE_LINKS; i++)
	{
		if (w[i].ref == x.ref)
			continue;
		tried++;
		if (link_from(g, w[i].ref, &x, layer, NULL, NULL, evicted))
			linked = true;
	}
	return linked;
}

/*
 * make_findable for set element i on a layer, in the per-element memory
 * context tmp (reset after).
 */
static bool
findable_in(HnswGraph *g, const HnswElementSet *set, int64 i, int layer,
			int ef, MemoryContext tmp, RefBag *evicted)
{
	MemoryContext old;
	bool		linked;

	CHECK_FOR_INTERRUPTS();
	old = MemoryContextSwitchTo(tmp);
	linked = make_findable(g, set, i, layer, set->entry, set->entryLevel, ef,
						   evicted);
	MemoryContextSwitchTo(old);
	MemoryContextReset(tmp);
	return linked;
}

/*
 * The entry point must be of the highest level of any live element, or
 * searches cannot enter that element's upper layers.  Vacuum replaces a
 * deleted entry point with the highest live element it saw, and one of the
 * elements inserted meanwhile may be higher: make the highest the entry
 * point (raise_entry), and take the entry point as it is then.
 */
static void
raise_to_top(HnswGraph *g, HnswElementSet *set)
{
	int64		top = -1;

	for (int64 i = 0; i < set->n; i++)
	{
		if (set->levels[i] > set->entryLevel &&
			(top < 0 || set->levels[i] > set->levels[top]))
			top = i;
	}
	if (top >= 0)
		g->ops->raise_entry(g, set->refs[top], set->levels[top], &set->entry,
							&set->entryLevel);
}

/*
 * One walk over a layer from the entry point, and a link for each element
 * it leaves out (relink), which brings in what that element reaches.
 * Returns whether the walk reached all.
 */
static bool
connect_layer(HnswGraph *g, const HnswElementSet *set, int layer,
			  int64 entryAt, bool *reached, int64 *queue, MemoryContext tmp,
			  int64 *linked, int64 *missed)
{
	bool		all = true;
	int64		scanned = 0;

	memset(reached, 0, set->n);
	mark_reached(g, set, layer, entryAt, reached, queue);
	for (int64 i = 0; i < set->n; i++)
	{
		MemoryContext old;

		if (reached[i] || set->levels[i] < layer)
			continue;
		CHECK_FOR_INTERRUPTS();
		all = false;
		old = MemoryContextSwitchTo(tmp);
		if (relink(g, set, i, layer, set->entry, set->entryLevel, reached,
				   &scanned))
		{
			(*linked)++;
			mark_reached(g, set, layer, i, reached, queue);
		}
		else
			(*missed)++;
		MemoryContextSwitchTo(old);
		MemoryContextReset(tmp);
	}
	return all;
}

/*
 * Layer 0's strongly connected components (Tarjan's algorithm, without
 * recursion): comp[i] for each set element.  Components are numbered as
 * they close, so links lead out of a component only into ones numbered
 * before it.  A list is read again each time the walk comes back to its
 * element, so the walk keeps 5 words per element, never the lists.
 * Returns how many components.
 */
static int32
layer0_components(HnswGraph *g, const HnswElementSet *set, int32 *comp)
{
	int64		n = set->n;
	int32	   *num = palloc_extended(sizeof(int32) * n,
									  MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	int32	   *low = palloc_extended(sizeof(int32) * n, MCXT_ALLOC_HUGE);
	int32	   *pos = palloc_extended(sizeof(int32) * n, MCXT_ALLOC_HUGE);
	int64	   *stack = palloc_extended(sizeof(int64) * n, MCXT_ALLOC_HUGE);
	int64	   *frames = palloc_extended(sizeof(int64) * n, MCXT_ALLOC_HUGE);
	HnswRef		nbrs[2 * HNSW_MAX_M];
	int32		counter = 0;
	int32		ncomp = 0;
	int64		nstack = 0;

	for (int64 i = 0; i < n; i++)
		comp[i] = -1;			/* -1 with num[i] set: on the stack */
	for (int64 root = 0; root < n; root++)
	{
		int64		nframes = 0;

		if (num[root] != 0)
			continue;
		num[root] = low[root] = ++counter;
		pos[root] = 0;
		stack[nstack++] = root;
		frames[nframes++] = root;
		while (nframes > 0)
		{
			int64		v = frames[nframes - 1];
			HnswCandidate c = set_candidate(set, v);
			int			nn = g->ops->neighbors(g, &c, 0, nbrs);
			bool		descended = false;

			CHECK_FOR_INTERRUPTS();
			while (pos[v] < nn)
			{
				int64		w = set_index(set, nbrs[pos[v]++]);

				if (w < 0)
					continue;
				if (num[w] == 0)
				{
					num[w] = low[w] = ++counter;
					pos[w] = 0;
					stack[nstack++] = w;
					frames[nframes++] = w;
					descended = true;
					break;
				}
				if (comp[w] < 0)
					low[v] = Min(low[v], num[w]);
			}
			if (descended)
				continue;
			nframes--;
			if (low[v] == num[v])
			{
				int64		w;

				do
				{
					w = stack[--nstack];
					comp[w] = ncomp;
				} while (w != v);
				ncomp++;
			}
			if (nframes > 0)
				low[frames[nframes - 1]] = Min(low[frames[nframes - 1]], low[v]);
		}
	}
	pfree(num);
	pfree(low);
	pfree(pos);
	pfree(stack);
	pfree(frames);
	return ncomp;
}

/*
 * Have x (set element xi) link to an element of the entry point's
 * component (marked in inroot) on layer 0: the nearest that x's list takes
 * (link_from) of those a search for x's vector finds, or failing that of
 * them all (by a scan, within the walk's budget).
 */
static bool
link_to_root(HnswGraph *g, const HnswElementSet *set, int64 xi,
			 const bool *inroot, int64 *scanned)
{
	HnswCandidate x = set_candidate(set, xi);
	const float *xv = g->ops->element_vector(g, &x);
	HnswCandidate best[HNSW_RELINK_TRIES];
	HnswCandidate *w;
	int			nw;
	int			nbest = 0;

	nw = HnswSearchFrom(g, xv, set->entry, set->entryLevel, 0,
						g->efConstruction, &w);
	for (int i = 0; i < nw && nbest < HNSW_RELINK_TRIES; i++)
	{
		int64		at = set_index(set, w[i].ref);

		if (at >= 0 && inroot[at] && !w[i].deleted)
			best[nbest++] = w[i];
	}
	if (nbest == 0 && *scanned < (int64) HNSW_CONNECT_SCANS * set->n)
		nbest = nearest_marked(g, set, xv, 0, inroot, scanned, best);
	for (int i = 0; i < nbest; i++)
	{
		if (link_from(g, x.ref, &best[i], 0, NULL, NULL, NULL))
			return true;
	}
	return false;
}

/*
 * Reached from the entry point is not enough: a scan enters layer 0 where
 * the descent ends, and must be able to walk on from there to every
 * element.  Churn leaves closed parts behind (a group whose links all stay
 * inside it, left so by the repairs and inserts of a cluster), and a scan
 * that enters one finds nothing else, at any ef_search, iterative or not.
 * So layer 0 must be strongly connected: every component that no link
 * leaves (but the entry point's) gets a link from one of its elements into
 * the entry point's component, which every element then reaches.  Returns
 * whether layer 0 was strongly connected already.
 */
static bool
connect_back(HnswGraph *g, const HnswElementSet *set, int64 entryAt,
			 MemoryContext tmp, int64 *linked, int64 *missed)
{
	int32	   *comp;
	int32		ncomp;
	int32		root;
	bool	   *sink;
	int		   *tries;
	bool	   *inroot;
	HnswRef		nbrs[2 * HNSW_MAX_M];
	int64		scanned = 0;
	bool		all = true;

	if (set->n > PG_INT32_MAX)
		return true;			/* numbered in int32 */
	comp = palloc_extended(sizeof(int32) * Max(set->n, 1), MCXT_ALLOC_HUGE);
	ncomp = layer0_components(g, set, comp);
	if (ncomp <= 1)
	{
		pfree(comp);
		return true;
	}
	root = comp[entryAt];
	sink = palloc_extended(sizeof(bool) * ncomp, MCXT_ALLOC_HUGE);
	memset(sink, true, sizeof(bool) * ncomp);
	tries = palloc_extended(sizeof(int) * ncomp, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	inroot = palloc_extended(set->n, MCXT_ALLOC_HUGE);
	for (int64 i = 0; i < set->n; i++)
	{
		HnswCandidate c = set_candidate(set, i);
		int			nn = g->ops->neighbors(g, &c, 0, nbrs);

		CHECK_FOR_INTERRUPTS();
		inroot[i] = (comp[i] == root);
		for (int j = 0; j < nn && sink[comp[i]]; j++)
		{
			int64		at = set_index(set, nbrs[j]);

			if (at >= 0 && comp[at] != comp[i])
				sink[comp[i]] = false;
		}
	}

	/* each closed part: from the first of its elements that takes a link */
	for (int64 i = 0; i < set->n; i++)
	{
		int32		c = comp[i];
		MemoryContext old;

		if (c == root || !sink[c] || tries[c] >= HNSW_RELINK_TRIES)
			continue;
		all = false;
		tries[c]++;
		old = MemoryContextSwitchTo(tmp);
		if (link_to_root(g, set, i, inroot, &scanned))
		{
			(*linked)++;
			sink[c] = false;
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(tmp);
	}
	for (int32 c = 0; c < ncomp; c++)
	{
		if (c != root && sink[c])
			(*missed)++;
	}
	pfree(comp);
	pfree(sink);
	pfree(tries);
	pfree(inroot);
	return all;
}

/*
 * Make every live element reachable from the entry point on every layer
 * it is on, and findable.  First each upper-layer element that a search
 * for its own vector misses is linked from where the search ends, and each
 * element that none of its own layer-0 neighbors links to gets such a
 * link; after deletes (afterDeletes), so does each element that a layer-0
 * search for its own vector misses.  Then a walk over each layer's links from the entry point marks
 * what it reaches, and each element left out is linked from a reached one
 * (relink), which brings in whatever it reaches in turn; the walks come
 * last because any new link may cost another element its way in.  Inserts
 * leave unreached elements behind now and then (a full list pruned under
 * them, an outlier nobody kept), and so do deletes (the element that
 * linked to them went, or a group of elements reached only through the
 * deleted ones).  For vacuum's
 * cleanup and for the end of a build that inserted on pages.  Reads every
 * neighbor list once per layer it is on, and layer 0's lists about three
 * times more to make it strongly connected (connect_back); holds per live
 * element its ref, place and level, a flag and a queue slot (26 bytes), and
 * for connect_back 37 more.  With reachOnly, the walks alone, and no
 * connect_back: every element reachable from the entry point, at the
 * cost of reading each list once a layer (the end of an in-memory build,
 * and vacuum before it frees).  Elements
 * added while it runs may be relinked without need, which costs a link, no
 * more.  Returns how many it linked; *missed counts the element layers it
 * could not link (inserts kept changing their lists).
 */
int64
HnswConnect(HnswGraph *g, bool afterDeletes, bool reachOnly, int64 *missed)
{
	HnswElementSet set;
	MemoryContext tmp;
	MemoryContext old;
	bool	   *reached;
	int64	   *queue;
	int64		entryAt;
	int64		linked = 0;
	RefBag		evicted = {NULL, 0, 0, CurrentMemoryContext};

	*missed = 0;
	g->ops->live_elements(g, &set);
	if (set.entry == HNSW_INVALID_REF)
		return 0;
	raise_to_top(g, &set);
	entryAt = set_index(&set, set.entry);
	if (entryAt < 0)
		return 0;				/* the entry point moved meanwhile */

	reached = palloc_extended(Max(set.n, 1), MCXT_ALLOC_HUGE);
	queue = palloc_extended(sizeof(int64) * Max(set.n, 1), MCXT_ALLOC_HUGE);
	tmp = AllocSetContextCreate(CurrentMemoryContext, "hnsw connect",
								ALLOCSET_DEFAULT_SIZES);

	/*
	 * On the upper layers, which every search descends through, each
	 * element must also be found by a search for its own vector there:
	 * a layer that is connected but not navigable sends the descent to
	 * the wrong region, where layer 0's search stays.  These layers hold
	 * one element in m or fewer, so this costs a search per m elements.
	 */
	for (int64 i = 0; !reachOnly && i < set.n; i++)
	{
		for (int layer = Min(set.levels[i], set.entryLevel); layer >= 1; layer--)
		{
			if (findable_in(g, &set, i, layer, HNSW_SCAN_DESCENT_MIN, tmp, NULL))
				linked++;
		}
	}

	/*
	 * Reachable is not yet findable: a search for x's vector looks around
	 * x, so on layer 0 one of x's own neighbors must link back to it.
	 * Deletes take such links (the neighbor went, or its repaired list
	 * left x out), and x may then be reached only from afar.
	 */
	for (int64 i = 0; !reachOnly && i < set.n; i++)
	{
		HnswCandidate x = set_candidate(&set, i);

		CHECK_FOR_INTERRUPTS();
		old = MemoryContextSwitchTo(tmp);
		if (!HnswHasOtherParent(g, x.ref, 0, HNSW_INVALID_REF) &&
			link_from_own(g, &x, NULL, NULL))
			linked++;
		MemoryContextSwitchTo(old);
		MemoryContextReset(tmp);
	}

	/*
	 * A link back from one of x's own neighbors is not enough either when
	 * x's list went stale: churn deletes x's surroundings, new elements
	 * fill them that never learned of x, and x is then linked only from
	 * afar, where a search for its vector never looks.  So a search for
	 * each element's own vector, keeping HNSW_FINDABLE_EF, must find it
	 * through one of the others it keeps, or the nearest it found link to
	 * it.  A search per element: only after deletes, since inserts alone
	 * leave no stale list behind.
	 */
	for (int64 i = 0; afterDeletes && !reachOnly && i < set.n; i++)
	{
		if (findable_in(g, &set, i, 0, HNSW_FINDABLE_EF, tmp, &evicted))
			linked++;
	}

	/*
	 * Each link those searches gave took a place in a full list from a
	 * member linked from elsewhere too, but that elsewhere may be afar: an
	 * element checked earlier in the pass may have lost the one link from
	 * its surroundings.  Check those again, and what that takes, a few
	 * rounds.
	 */
	for (int round = 0; round < HNSW_CONNECT_ROUNDS && evicted.n > 0; round++)
	{
		RefBag		again = evicted;

		evicted.refs = NULL;
		evicted.n = evicted.max = 0;
		qsort(again.refs, again.n, sizeof(HnswRef), HnswRefCmp);
		for (int64 k = 0; k < again.n; k++)
		{
			int64		at;

			if (k > 0 && again.refs[k] == again.refs[k - 1])
				continue;
			at = set_index(&set, again.refs[k]);
			if (at >= 0 &&		/* not deleted meanwhile, and live */
				findable_in(g, &set, at, 0, HNSW_FINDABLE_EF, tmp, &evicted))
				linked++;
		}
		pfree(again.refs);
	}
	if (evicted.refs)
		pfree(evicted.refs);

	/*
	 * Last, reachability, which the links above may have cost: each takes
	 * the place of a member that another element links to, and that element
	 * may hang on the very list that changed.  The walks below repair what
	 * they find cut off and walk again, so they have the last word.
	 */
	for (int layer = set.entryLevel; layer >= 0; layer--)
	{
		/*
		 * A link given to x may have replaced the one that reached another
		 * part (link_from keeps members that another element links to, but
		 * that element may itself hang on the replaced link): walk again
		 * until the walk reaches all, a few times at most.  On layer 0,
		 * where scans end, every element must also lead back to the entry
		 * point's part (connect_back), and the walks check that its links
		 * cut nobody off.
		 */
		for (int round = 0; round < HNSW_CONNECT_ROUNDS; round++)
		{
			bool		done = connect_layer(g, &set, layer, entryAt, reached,
											 queue, tmp, &linked, missed);

			if (layer == 0 && !reachOnly)
				done = connect_back(g, &set, entryAt, tmp, &linked, missed) &&
					done;
			if (done)
				break;
		}
	}
	MemoryContextDelete(tmp);
	pfree(reached);
	pfree(queue);
	pfree(set.refs);
	pfree(set.neighborsAt);
	pfree(set.levels);
	return linked;
}

/*
 * An element that no list names on layer 0 can never be found.  Pruning a
 * full list can take an element's last incoming link away long after it
 * was inserted, now and then on clustered data (README, Design).  The
 * in-memory build, which does not guard last links as it goes, links each
 * such element from one of its own neighbors (link_from_own) before the
 * graph is written, counting every list's links first.  Runs alone, after
 * every participant is done.  Returns how many it linked, of *orphans.
 */
int64
HnswLinkOrphans(HnswGraph *g, int64 *orphans)
{
	HnswElementSet set;
	uint32	   *indeg;
	HnswRef		nbrs[2 * HNSW_MAX_M];
	int64		linked = 0;

	*orphans = 0;
	g->ops->live_elements(g, &set);
	if (set.n < 2)
		return 0;
	indeg = palloc_extended(sizeof(uint32) * set.n,
							MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	for (int64 i = 0; i < set.n; i++)
	{
		HnswCandidate c = set_candidate(&set, i);
		int			nn = g->ops->neighbors(g, &c, 0, nbrs);

		for (int j = 0; j < nn; j++)
		{
			int64		at = set_index(&set, nbrs[j]);

			if (at >= 0)
				indeg[at]++;
		}
	}
	for (int64 i = 0; i < set.n; i++)
	{
		HnswCandidate x = set_candidate(&set, i);

		if (indeg[i] > 0 || x.ref == set.entry)
			continue;
		CHECK_FOR_INTERRUPTS();
		(*orphans)++;
		if (link_from_own(g, &x, &set, indeg))
			linked++;
	}
	pfree(indeg);
	pfree(set.refs);
	pfree(set.neighborsAt);
	pfree(set.levels);
	return linked;
}
