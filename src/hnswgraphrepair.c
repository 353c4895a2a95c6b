/*-------------------------------------------------------------------------
 *
 * hnswgraphrepair.c
 *	  The algorithm's repairs of a single list, which keep every element
 *	  reachable: new neighbors for a list that lost members (vacuum), and
 *	  what a list that an insert prunes must not cut off (HnswKeepReach).
 *	  Links for the elements that no walk reaches, or no list names, are
 *	  in hnswgraphconnect.c.
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
 * deep, for when most of the graph went at once; the deleted are still
 * readable, as vacuum frees them only after every repair.  An element
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
	HnswVisitedClear(&g->visited);
	HnswVisitedAdd(&g->visited, e->ref);
	for (int i = 0; i < nw; i++)
	{
		if (HnswVisitedAdd(&g->visited, w[i].ref))
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
		if (HnswVisitedAdd(&g->visited, keep[i]))
			front[nfront++].ref = keep[i];
	}
	for (int i = 0; i < nlost; i++)
	{
		if (HnswVisitedAdd(&g->visited, lost[i]))
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
				if (HnswVisitedAdd(&g->visited, nbrs[j]))
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

	qsort(c, n, sizeof(HnswCandidate), HnswCandidateCmp);
	n = HnswSelectNeighbors(g, c, n, cap, true, NULL);
	*out = c;
	return n;
}

/*
 * Does an element other than `except` link to live element v on a layer?
 * Only v's own neighbors are asked, nearest links being mostly mutual: a
 * wrong "no" costs a needless swap, never an element.  True for a deleted
 * v, which needs no link.
 */
bool
HnswHasOtherParent(HnswGraph *g, HnswRef v, int layer, HnswRef except)
{
	HnswCandidate vc;
	HnswRef		nbrs[2 * HNSW_MAX_M];
	HnswRef		theirs[2 * HNSW_MAX_M];
	int			nn;

	g->ops->locate(g, v, &vc);
	if (vc.deleted)
		return true;
	nn = g->ops->neighbors(g, &vc, layer, nbrs);
	for (int i = 0; i < nn; i++)
	{
		HnswCandidate nc;

		if (nbrs[i] == except)
			continue;
		g->ops->locate(g, nbrs[i], &nc);
		if (!nc.deleted &&
			HnswRefsContain(theirs, g->ops->neighbors(g, &nc, layer, theirs), v))
			return true;
	}
	return false;
}

/*
 * q took v's place in a list on a layer: have q link to v, so that a walk
 * that reached the list reaches v still, through q, and with v whatever
 * only v leads to.  Only into a free slot of q's list, so that nothing
 * cascades: a new element selects m neighbors for a layer-0 list of 2m,
 * so it has room for what it displaces.  Returns 1 if it linked q to v, 0
 * if q linked to v already (or v is deleted, and needs no link), -1 if q's
 * list is full or changed meanwhile (concurrent inserts linking to q).
 */
int
HnswInherit(HnswGraph *g, const HnswCandidate *q, HnswRef v, int layer)
{
	HnswRef		cur[2 * HNSW_MAX_M + 1];
	HnswCandidate vc;
	int			n;

	g->ops->locate(g, v, &vc);
	if (vc.deleted)
		return 0;
	n = g->ops->neighbors(g, q, layer, cur);
	if (HnswRefsContain(cur, n, v))
		return 0;
	if (n >= HnswLayerCapacity(g->m, layer))
		return -1;
	cur[n] = v;
	return g->ops->replace_neighbors(g, q, layer, cur, n, cur, n + 1) ? 1 : -1;
}

/*
 * A full layer-0 list of e (cur, ncur refs), pruned to out (nout refs) by
 * HnswMergeLink to let q in, drops a member d.  That link may have been
 * the only way into d, or into a group around d whose members all link
 * each other: if q is a new element (inherit), q, which takes d's place,
 * links to d (HnswInherit), and a walk that came through e goes on
 * through q.  Otherwise, or if q's list is full, d goes if one of its own
 * neighbors links to it, else it stays in place of the farthest kept
 * member that one does (vacuum's repairs, which call this too, are
 * followed by walks that link what they cut off).  For a storage's
 * add_link on pages, between pruning and writing the list back
 * (hnswpage.h, rule 3).  The in-memory build links what it left
 * unreachable once, at the end (HnswConnect), instead.
 */
void
HnswKeepReach(HnswGraph *g, const HnswCandidate *e, const HnswRef *cur,
			  int ncur, const HnswCandidate *q, bool inherit, HnswRef *out,
			  int nout)
{
	int			last = nout - 1;	/* out[last + 1 ..] are not to be dropped */

	if (!HnswRefsContain(out, nout, q->ref))
		return;					/* nothing will be written */
	for (int i = 0; i < ncur; i++)
	{
		if (HnswRefsContain(out, nout, cur[i]) ||
			(inherit && HnswInherit(g, q, cur[i], 0) >= 0) ||
			HnswHasOtherParent(g, cur[i], 0, e->ref))
			continue;
		/* cur[i] (live) loses its last link: it takes another's place */
		for (; last >= 0; last--)
		{
			if (out[last] != q->ref && HnswHasOtherParent(g, out[last], 0, e->ref))
			{
				out[last--] = cur[i];
				break;
			}
		}
	}
}
