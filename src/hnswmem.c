/*-------------------------------------------------------------------------
 *
 * hnswmem.c
 *	  The HNSW graph in memory, as CREATE INDEX builds it: HnswGraphOps over
 *	  an area of memory, and the hand-over of the finished graph to the
 *	  page room's bulk writer (hnswpage.c), which places no tuple here.
 *
 * The graph lives in one area of memory, addressed by offsets, so that the
 * same code serves a serial build (the area is backend memory) and a
 * parallel one (the area is in the build's dynamic shared memory segment,
 * mapped at a different address in every participant).  The area holds a
 * header, then elements, neighbor slots and chunks of duplicate heap TIDs
 * carved from the rest by an atomic bump pointer.  What only linking reads
 * (each list's distances and verdicts, HnswKnownList) is carved from the
 * end of the area by a second one, and addressed by its distance from the
 * end, so that it does not spread out the vectors and lists that every
 * search reads: the parallel build's shared memory has no huge pages, and
 * there the spread costs TLB misses.  A table of element offsets, indexed
 * by element number, follows the header of a shared area; a private one
 * keeps it apart, so that both can grow.
 *
 * A shared area has a fixed size.  A private one starts at the size the
 * caller expects the table to need and, when the two bump pointers meet,
 * is reallocated at twice the size (its end part moved to the new end), up
 * to a limit (maintenance_work_mem): so a small table takes little memory
 * whatever the limit.  A grow moves the area: no pointer into it is kept
 * across an allocation.  Nothing is freed; when an area can grow no more,
 * it is full, an insert reports it and the caller goes on without the
 * graph in memory (hnswbuild.c).
 *
 * In a shared area every element carries an LWLock: neighbor lists are
 * read under it in share mode and changed under it in exclusive mode, one
 * element at a time, so participants cannot deadlock.  An element is
 * complete before any list names it, and vectors never change, so they are
 * read without locks.  The entry point has a lock of its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "hnsw.h"

/* An empty neighbor slot: as the bulk writer takes them */
#define HNSW_MEM_NONE		HNSW_NO_NEIGHBOR

/* Heap TIDs per chunk of an element's further ones */
#define HNSW_MEM_CHUNK_TIDS	64

typedef struct HnswMemArea
{
	pg_atomic_uint64 used;		/* bytes handed out, from the start */
	pg_atomic_uint64 usedTop;	/* bytes handed out, from the end */
	pg_atomic_uint32 nelems;	/* element numbers handed out */
	Size		size;
	uint32		maxelems;		/* capacity of the offset table */
	int			grown;			/* times a private area grew */
	bool		shared;
	volatile bool full;			/* an allocation failed */
	int			tranche;
	LWLock		entryLock;
	HnswRef		entry;
	int			entryLevel;
	uint64		offsets[FLEXIBLE_ARRAY_MEMBER];	/* of elements, if shared */
} HnswMemArea;

/* A chunk of heap TIDs past an element's own */
typedef struct HnswMemTidChunk
{
	uint64		next;			/* offset of the next chunk, or 0 */
	uint32		ntids;
	ItemPointerData tids[HNSW_MEM_CHUNK_TIDS];
} HnswMemTidChunk;

typedef struct HnswMemElement
{
	LWLock		lock;			/* used only in a shared area */
	uint64		slotsOff;		/* its lists: see mem_slots */
	uint64		knownOff;		/* and what linking knows of them (from
								 * the area's end) */
	uint64		moreOff;		/* first chunk of further heap TIDs, or 0 */
	uint32		nmore;
	uint8		level;
	uint8		ntids;
	ItemPointerData heaptids[HNSW_HEAPTIDS];
	float		vec[FLEXIBLE_ARRAY_MEMBER];
} HnswMemElement;

struct HnswMemGraph
{
	HnswGraph	g;				/* must be first */
	char	   *base;			/* the area, as mapped here */
	HnswMemArea *area;
	uint64	   *offsets;		/* its element offset table */
	bool		ownsArea;		/* palloc'd by HnswMemCreate: private */
	Size		limit;			/* what a private area and table may take */
};

#define AREA_PTR(mg, off)	((void *) ((mg)->base + (off)))

static inline HnswMemElement *
mem_element(HnswMemGraph *mg, HnswRef ref)
{
	Assert(ref < mg->area->maxelems);
	return (HnswMemElement *) AREA_PTR(mg, mg->offsets[ref]);
}

/*
 * An element has (level + 2) * m neighbor slots, laid out by layer as on
 * a page (HnswLayerStart): the neighbors' numbers at slotsOff, and at
 * knownOff their distances to the element followed by the heuristic's
 * verdicts on them (HnswKnownList).
 */
#define MEM_KNOWN_BYTES	(sizeof(float) + sizeof(uint8))

static inline int
mem_nslots(HnswMemGraph *mg, HnswMemElement *e)
{
	return (e->level + 2) * mg->g.m;
}

static inline uint32 *
mem_slots(HnswMemGraph *mg, HnswMemElement *e)
{
	return (uint32 *) AREA_PTR(mg, e->slotsOff);
}

static inline float *
mem_dists(HnswMemGraph *mg, HnswMemElement *e)
{
	return (float *) AREA_PTR(mg, mg->area->size - e->knownOff);
}

static inline uint8 *
mem_verdicts(HnswMemGraph *mg, HnswMemElement *e)
{
	return (uint8 *) (mem_dists(mg, e) + mem_nslots(mg, e));
}

/*
 * Make a private area room for need more bytes: reallocate it at twice its
 * size or more, within the limit, and move what was carved from its end
 * to the new end (those offsets count from the end).  False if the limit
 * does not allow it.
 */
static bool
mem_grow(HnswMemGraph *mg, Size need)
{
	HnswMemArea *a = mg->area;
	Size		used = pg_atomic_read_u64(&a->used);
	Size		top = pg_atomic_read_u64(&a->usedTop);
	Size		room = mg->limit - sizeof(uint64) * (Size) a->maxelems;
	Size		oldsize = a->size;
	Size		newsize;

	Assert(mg->ownsArea);
	if (used + top + need > room)
		return false;
	newsize = Max(Min(oldsize * 2, room), used + top + need);
	newsize = TYPEALIGN_DOWN(MAXIMUM_ALIGNOF, newsize);
	mg->base = repalloc_huge(mg->base, newsize);
	mg->area = a = (HnswMemArea *) mg->base;
	memmove(mg->base + newsize - top, mg->base + oldsize - top, top);
	a->size = newsize;
	a->grown++;
	return true;
}

/*
 * Carve size bytes from the start of the area, or with top from its end;
 * 0 when it is full.  Returns the offset from the start, with top from the
 * end.  A private area grows first if it must (and may).  Each side adds
 * to its own counter, then reads the other's: both are full barriers, so
 * of two allocations that race for the last bytes of a shared area at
 * least one sees the other and fails.
 */
static uint64
mem_alloc(HnswMemGraph *mg, Size size, bool top)
{
	HnswMemArea *a = mg->area;
	uint64		before;

	size = MAXALIGN(size);
	if (mg->ownsArea &&
		pg_atomic_read_u64(&a->used) + pg_atomic_read_u64(&a->usedTop) +
		size > a->size)
	{
		if (!mem_grow(mg, size))
		{
			a->full = true;
			return 0;
		}
		a = mg->area;
	}
	if (top)
		before = pg_atomic_fetch_add_u64(&a->usedTop, size);
	else
		before = pg_atomic_fetch_add_u64(&a->used, size);
	if (before + size +
		pg_atomic_read_u64(top ? &a->used : &a->usedTop) > a->size)
	{
		a->full = true;
		return 0;
	}
	return top ? before + size : before;
}

static inline void
mem_lock(HnswMemGraph *mg, HnswMemElement *e, LWLockMode mode)
{
	if (mg->area->shared)
		LWLockAcquire(&e->lock, mode);
}

static inline void
mem_unlock(HnswMemGraph *mg, HnswMemElement *e)
{
	if (mg->area->shared)
		LWLockRelease(&e->lock);
}

/* HnswGraphOps ----------------------------------------------------------- */

/* Prefetch the first lines of a vector; the hardware streams the rest */
static inline void
prefetch_vector(const float *v, Size size)
{
	for (Size off = 0; off < size && off < 512; off += 64)
		__builtin_prefetch((const char *) v + off);
}

static void
mem_distances(HnswGraph *g, const float *q, HnswCandidate *c, int n,
			  const float **vecs, float bound)
{
	HnswMemGraph *mg = (HnswMemGraph *) g;

	if (n > 0)
		prefetch_vector(mem_element(mg, c[0].ref)->vec, g->vecsize);
	for (int i = 0; i < n; i++)
	{
		if (i + 1 < n)
			prefetch_vector(mem_element(mg, c[i + 1].ref)->vec, g->vecsize);
		c[i].neighborsAt = 0;
		c[i].deleted = false;
		c[i].dist = HnswDistance(g, q, mem_element(mg, c[i].ref)->vec, bound);
		if (vecs)
			vecs[i] = mem_element(mg, c[i].ref)->vec;
	}
}

static int
mem_neighbors(HnswGraph *g, const HnswCandidate *c, int layer, HnswRef *out)
{
	HnswMemGraph *mg = (HnswMemGraph *) g;
	HnswMemElement *e = mem_element(mg, c->ref);
	uint32	   *slots = mem_slots(mg, e) + HnswLayerStart(g->m, layer);
	int			cap = HnswLayerCapacity(g->m, layer);
	int			n;

	Assert(layer <= e->level);
	mem_lock(mg, e, LW_SHARED);
	for (n = 0; n < cap && slots[n] != HNSW_MEM_NONE; n++)
		out[n] = slots[n];
	mem_unlock(mg, e);
	return n;
}

static const float *
mem_vector(HnswGraph *g, const HnswCandidate *c)
{
	return mem_element((HnswMemGraph *) g, c->ref)->vec;
}

#ifdef HNSW_CHECK_VERDICTS
/*
 * Developer check, compiled in by test/sanitize: the list the verdicts
 * gave must be exactly the one the full heuristic gives.  A PANIC, like a
 * failed assertion, so that the sanitizer run cannot miss it.
 */
static void
check_verdicts(HnswGraph *g, const HnswCandidate *e, int layer,
			   const HnswKnownList *before, const HnswCandidate *q,
			   bool force, const HnswKnownList *after)
{
	HnswRef		out[2 * HNSW_MAX_M];
	int			n;

	n = HnswMergeLink(g, e, layer, before->refs, before->n, q, force, out);
	if (n != after->n || memcmp(out, after->refs, sizeof(HnswRef) * n) != 0)
		elog(PANIC, "hnsw build: list of element " UINT64_FORMAT " on layer %d differs from the full heuristic's",
			 e->ref, layer);
}
#endif

/*
 * The list is pruned under the element's exclusive lock: the pruning reads
 * only vectors, which need no lock, so no second lock is ever waited for.
 */
static bool
mem_add_link(HnswGraph *g, const HnswCandidate *e, int layer,
			 const HnswCandidate *q, int flags)
{
	bool		force = (flags & HNSW_LINK_FORCE) != 0;
	HnswMemGraph *mg = (HnswMemGraph *) g;
	HnswMemElement *el = mem_element(mg, e->ref);
	int			start = HnswLayerStart(g->m, layer);
	int			cap = HnswLayerCapacity(g->m, layer);
	uint32	   *slots = mem_slots(mg, el) + start;
	float	   *dists = mem_dists(mg, el) + start;
	uint8	   *verdicts = mem_verdicts(mg, el) + start;
	HnswKnownList list;
	bool		kept;
#ifdef HNSW_CHECK_VERDICTS
	HnswKnownList before;
#endif

	mem_lock(mg, el, LW_EXCLUSIVE);
	for (list.n = 0; list.n < cap && slots[list.n] != HNSW_MEM_NONE; list.n++)
	{
		list.refs[list.n] = slots[list.n];
		list.dists[list.n] = dists[list.n];
		list.verdicts[list.n] = verdicts[list.n];
	}
#ifdef HNSW_CHECK_VERDICTS
	before = list;
#endif
	kept = HnswMergeLinkKnown(g, e, layer, &list, q, force);
#ifdef HNSW_CHECK_VERDICTS
	check_verdicts(g, e, layer, &before, q, force, &list);
#endif
	for (int i = 0; i < cap; i++)
	{
		slots[i] = i < list.n ? (uint32) list.refs[i] : HNSW_MEM_NONE;
		if (i < list.n)
		{
			dists[i] = list.dists[i];
			verdicts[i] = list.verdicts[i];
		}
	}
	mem_unlock(mg, el);
	return kept;
}

/*
 * A new element number, or false when the offset table is full and, in a
 * private area, cannot grow within the limit.
 */
static bool
mem_element_number(HnswMemGraph *mg, uint32 *num)
{
	HnswMemArea *a = mg->area;

	if (mg->ownsArea && pg_atomic_read_u32(&a->nelems) >= a->maxelems)
	{
		Size		table = sizeof(uint64) * (Size) a->maxelems;
		Size		more = Min(table, mg->limit - a->size - table);

		if (more < sizeof(uint64) || a->maxelems >= PG_UINT32_MAX - 1)
		{
			a->full = true;
			return false;
		}
		a->maxelems += (uint32) Min(more / sizeof(uint64),
									PG_UINT32_MAX - 1 - a->maxelems);
		mg->offsets = repalloc_huge(mg->offsets,
									sizeof(uint64) * (Size) a->maxelems);
	}
	*num = pg_atomic_fetch_add_u32(&a->nelems, 1);
	if (*num >= a->maxelems)
	{
		a->full = true;
		return false;
	}
	return true;
}

/* Read the entry point (under its lock when shared) */
static void
get_entry(HnswMemGraph *mg, HnswRef *entry, int *level)
{
	if (mg->area->shared)
		LWLockAcquire(&mg->area->entryLock, LW_SHARED);
	*entry = mg->area->entry;
	*level = mg->area->entryLevel;
	if (mg->area->shared)
		LWLockRelease(&mg->area->entryLock);
}

/*
 * Add a heap TID to an element with the same vector; false if out of room.
 * In a private area the allocation may move the area: the element is
 * looked up again after it (and no lock is taken there).
 */
static bool
add_duplicate(HnswMemGraph *mg, HnswRef ref, ItemPointer tid)
{
	HnswMemElement *e = mem_element(mg, ref);
	bool		ok = true;

	mem_lock(mg, e, LW_EXCLUSIVE);
	if (e->ntids < HNSW_HEAPTIDS)
		e->heaptids[e->ntids++] = *tid;
	else
	{
		HnswMemTidChunk *chunk = e->moreOff ?
			(HnswMemTidChunk *) AREA_PTR(mg, e->moreOff) : NULL;

		/* new chunks go at the head, so the head is the one with room */
		if (chunk == NULL || chunk->ntids == HNSW_MEM_CHUNK_TIDS)
		{
			uint64		off = mem_alloc(mg, sizeof(HnswMemTidChunk), false);

			e = mem_element(mg, ref);
			if (off == 0)
				ok = false;
			else
			{
				HnswMemTidChunk *fresh = AREA_PTR(mg, off);

				fresh->next = e->moreOff;
				fresh->ntids = 0;
				e->moreOff = off;
				chunk = fresh;
			}
		}
		if (ok)
		{
			chunk->tids[chunk->ntids++] = *tid;
			e->nmore++;
		}
	}
	mem_unlock(mg, e);
	return ok;
}

/* add_element: a new element with its lists, published by its links */
static bool
mem_add_element(HnswGraph *g, const float *vec, int level, ItemPointer tid,
				const HnswNeighborhood *nb, HnswCandidate *self)
{
	HnswMemGraph *mg = (HnswMemGraph *) g;
	HnswMemArea *a = mg->area;
	HnswMemElement *e;
	int			nslots = (level + 2) * g->m;
	uint64		eoff;
	uint64		soff;
	uint64		koff;
	uint32		num;
	uint32	   *slots;
	float	   *dists;
	uint8	   *verdicts;

	if (a->full)
		return false;
	eoff = mem_alloc(mg, offsetof(HnswMemElement, vec) + g->vecsize, false);
	soff = eoff ? mem_alloc(mg, sizeof(uint32) * nslots, false) : 0;
	koff = soff ? mem_alloc(mg, MEM_KNOWN_BYTES * nslots, true) : 0;
	if (koff == 0 || !mem_element_number(mg, &num))
		return false;
	a = mg->area;				/* a private area may have moved */

	e = AREA_PTR(mg, eoff);
	if (a->shared)
		LWLockInitialize(&e->lock, a->tranche);
	e->slotsOff = soff;
	e->knownOff = koff;
	e->moreOff = 0;
	e->nmore = 0;
	e->level = level;
	e->ntids = 1;
	e->heaptids[0] = *tid;
	memcpy(e->vec, vec, g->vecsize);
	slots = mem_slots(mg, e);
	dists = mem_dists(mg, e);
	verdicts = mem_verdicts(mg, e);
	for (int i = 0; i < nslots; i++)
		slots[i] = HNSW_MEM_NONE;
	/* the heuristic chose each list from nearer candidates: all kept */
	for (int lc = 0; lc <= level; lc++)
	{
		int			start = HnswLayerStart(g->m, lc);

		for (int i = 0; i < nb->count[lc]; i++)
		{
			slots[start + i] = (uint32) nb->lists[lc][i].ref;
			dists[start + i] = nb->lists[lc][i].dist;
			verdicts[start + i] = HNSW_VERDICT_KEPT;
		}
	}
	mg->offsets[num] = eoff;

	/* complete before anyone can find it: the links publish it */
	pg_write_barrier();
	self->ref = num;
	self->neighborsAt = 0;
	self->dist = 0;
	self->deleted = false;
	return true;
}

/* begin_insert: nothing to lock; the entry point under its own lock */
static bool
mem_begin_insert(HnswGraph *g, int level, HnswRef *entry, int *entryLevel)
{
	HnswMemGraph *mg = (HnswMemGraph *) g;

	if (mg->area->full)
		return false;
	get_entry(mg, entry, entryLevel);
	return true;
}

/* add_heaptid: the graph's elements never change; false only when full */
static bool
mem_add_heaptid(HnswGraph *g, const HnswCandidate *e, const float *vec,
				ItemPointer heaptid)
{
	return add_duplicate((HnswMemGraph *) g, e->ref, heaptid);
}

static void
mem_end_insert(HnswGraph *g)
{
}

static void
mem_raise_entry(HnswGraph *g, HnswRef ref, int level, HnswRef *entry,
				int *entryLevel)
{
	HnswMemArea *a = ((HnswMemGraph *) g)->area;

	if (a->shared)
		LWLockAcquire(&a->entryLock, LW_EXCLUSIVE);
	if (level > a->entryLevel)
	{
		a->entry = ref;
		a->entryLevel = level;
	}
	if (entry)
	{
		*entry = a->entry;
		*entryLevel = a->entryLevel;
	}
	if (a->shared)
		LWLockRelease(&a->entryLock);
}

/* locate: no element is ever deleted in memory */
static void
mem_locate(HnswGraph *g, HnswRef ref, HnswCandidate *c)
{
	c->ref = ref;
	c->neighborsAt = 0;
	c->dist = 0;
	c->deleted = false;
}

/*
 * replace_neighbors, under the element's lock.  A member that stays keeps
 * its distance and verdict; a new one gets its distance and an unknown
 * verdict; and if any member went, a kept one may have gone, so no verdict
 * can be trusted any more.
 */
static bool
mem_replace_neighbors(HnswGraph *g, const HnswCandidate *e, int layer,
					  const HnswRef *expect, int nexpect, const HnswRef *refs,
					  int n)
{
	HnswMemGraph *mg = (HnswMemGraph *) g;
	HnswMemElement *el = mem_element(mg, e->ref);
	int			start = HnswLayerStart(g->m, layer);
	int			cap = HnswLayerCapacity(g->m, layer);
	uint32	   *slots = mem_slots(mg, el) + start;
	float	   *dists = mem_dists(mg, el) + start;
	uint8	   *verdicts = mem_verdicts(mg, el) + start;
	float		olddists[2 * HNSW_MAX_M];
	uint8		oldverdicts[2 * HNSW_MAX_M];
	bool		dropped = false;
	int			ncur;

	Assert(n <= cap);
	mem_lock(mg, el, LW_EXCLUSIVE);
	for (ncur = 0; ncur < cap && slots[ncur] != HNSW_MEM_NONE; ncur++)
	{
		if (ncur >= nexpect || slots[ncur] != (uint32) expect[ncur])
			break;
	}
	if (ncur != nexpect ||
		(ncur < cap && slots[ncur] != HNSW_MEM_NONE))
	{
		mem_unlock(mg, el);
		return false;
	}
	memcpy(olddists, dists, sizeof(float) * ncur);
	memcpy(oldverdicts, verdicts, ncur);
	for (int j = 0; j < ncur && !dropped; j++)
	{
		int			i;

		for (i = 0; i < n && refs[i] != expect[j]; i++)
			;
		dropped = (i == n);
	}
	for (int i = 0; i < cap; i++)
	{
		int			j;

		if (i >= n)
		{
			slots[i] = HNSW_MEM_NONE;
			continue;
		}
		slots[i] = (uint32) refs[i];
		for (j = 0; j < ncur && expect[j] != refs[i]; j++)
			;
		if (j < ncur)
		{
			dists[i] = olddists[j];
			verdicts[i] = dropped ? HNSW_VERDICT_UNKNOWN : oldverdicts[j];
		}
		else
		{
			dists[i] = g->dist(el->vec, mem_element(mg, refs[i])->vec, g->dim);
			verdicts[i] = HNSW_VERDICT_UNKNOWN;
		}
	}
	mem_unlock(mg, el);
	return true;
}

/* live_elements: every element, numbered from 0, and the entry point */
static void
mem_live_elements(HnswGraph *g, HnswElementSet *set)
{
	HnswMemGraph *mg = (HnswMemGraph *) g;
	int64		n = HnswMemCount(mg);

	set->n = n;
	set->refs = palloc_extended(sizeof(HnswRef) * Max(n, 1), MCXT_ALLOC_HUGE);
	set->neighborsAt = palloc_extended(sizeof(uint64) * Max(n, 1),
									   MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	set->levels = palloc_extended(Max(n, 1), MCXT_ALLOC_HUGE);
	for (int64 i = 0; i < n; i++)
	{
		set->refs[i] = i;
		set->levels[i] = mem_element(mg, i)->level;
	}
	get_entry(mg, &set->entry, &set->entryLevel);
}

static const HnswGraphOps hnsw_mem_ops = {
	.distances = mem_distances,
	.neighbors = mem_neighbors,
	.element_vector = mem_vector,
	.add_link = mem_add_link,
	.locate = mem_locate,
	.replace_neighbors = mem_replace_neighbors,
	.live_elements = mem_live_elements,
	.raise_entry = mem_raise_entry,
	.begin_insert = mem_begin_insert,
	.add_heaptid = mem_add_heaptid,
	.add_element = mem_add_element,
	.end_insert = mem_end_insert,
};

/* The graph ------------------------------------------------------------- */

/* Bytes of area an element of average level takes, for estimates */
static Size
element_bytes(Size vecsize, int m)
{
	/* levels above 0 add m slots each, 1/(m-1) elements per level on average */
	int			slots = 2 * m + m + m / Max(m - 1, 1) + 1;

	return MAXALIGN(offsetof(HnswMemElement, vec) + vecsize) +
		MAXALIGN(sizeof(uint32) * slots) +
		MAXALIGN(MEM_KNOWN_BYTES * slots) +
		sizeof(uint64);
}

/*
 * The area a graph of ntuples elements would need, with room to spare for
 * duplicates' chunks and the randomness of levels.
 */
Size
HnswMemEstimate(const HnswIndexInfo *info, double ntuples)
{
	return offsetof(HnswMemArea, offsets) +
		(Size) (ntuples * 1.1 + 1000) * element_bytes(info->vecsize, info->m) +
		1024 * 1024;
}

/*
 * A graph over an area of size bytes at `area`: initialized when init is
 * set (the serial build, or the leader of a parallel one), else joined as
 * it is.  shared says whether other processes use the area at the same
 * time.  With area NULL, a private area is allocated here, of size bytes
 * at first, then grown as needed while the area and its offset table
 * take no more than limit bytes.
 */
HnswMemGraph *
HnswMemCreate(Relation index, void *area, Size size, Size limit, bool shared,
			  bool init)
{
	const HnswIndexInfo *info = HnswGetIndexInfo(index);
	HnswMemGraph *mg = palloc0(sizeof(HnswMemGraph));
	Size		minElement = element_bytes(info->vecsize, info->m) / 2;
	uint32		maxelems = 0;

	Assert(area != NULL || (init && !shared));
	if (area == NULL)
	{
		/* the offset table: what size holds at first, then grown as well */
		size = Min(size, limit);
		maxelems = (uint32) Min(size / (2 * minElement) + 16,
								PG_UINT32_MAX - 1);
		mg->offsets = palloc_extended(sizeof(uint64) * (Size) maxelems,
									  MCXT_ALLOC_HUGE);
		size = Min(size, limit - sizeof(uint64) * (Size) maxelems);
		area = palloc_extended(size, MCXT_ALLOC_HUGE);
		mg->ownsArea = true;
		mg->limit = limit;
	}
	mg->base = area;
	mg->area = (HnswMemArea *) area;
	/* bound for pages: the pages' cap on levels applies */
	HnswGraphInit(&mg->g, &hnsw_mem_ops, HnswMetricKernel(info->metric, true),
				  info->dimensions, info->vecsize, info->m, info->efConstruction,
				  HnswPageMaxLevel(info->m));

	if (init)
	{
		HnswMemArea *a = mg->area;
		Size		header = offsetof(HnswMemArea, offsets);

		if (shared)
		{
			/* the table can never need more entries than elements fit */
			maxelems = (uint32) Min((size / minElement) + 16,
									PG_UINT32_MAX - 1);
			header += sizeof(uint64) * (Size) maxelems;
		}
		header = MAXALIGN(header);
		if (header >= size)
			elog(ERROR, "hnsw build area of %zu bytes is too small", size);
		a->maxelems = maxelems;
		a->grown = 0;
		pg_atomic_init_u64(&a->used, header);
		pg_atomic_init_u64(&a->usedTop, 0);
		pg_atomic_init_u32(&a->nelems, 0);
		a->size = TYPEALIGN_DOWN(MAXIMUM_ALIGNOF, size);
		a->shared = shared;
		a->full = false;
		a->entry = HNSW_INVALID_REF;
		a->entryLevel = -1;
		if (shared)
		{
			a->tranche = LWLockNewTrancheId();
			LWLockInitialize(&a->entryLock, a->tranche);
		}
	}
	if (shared)
	{
		mg->offsets = mg->area->offsets;
		LWLockRegisterTranche(mg->area->tranche, "hnsw build");
	}
	return mg;
}

/* The graph, for the algorithm (hnswgraph.h) */
HnswGraph *
HnswMemGraphBase(HnswMemGraph *mg)
{
	return &mg->g;
}

/* Elements in the graph */
int64
HnswMemCount(HnswMemGraph *mg)
{
	return Min(pg_atomic_read_u32(&mg->area->nelems), mg->area->maxelems);
}

/* Has an insert found the area full? */
bool
HnswMemFull(HnswMemGraph *mg)
{
	return mg->area->full;
}

/*
 * Hand the whole graph to the page room's bulk writer, which writes it into
 * an index that holds only its metapage and WAL-logs it.  Runs alone, after
 * every participant is done.
 */
void
HnswMemWritePages(HnswMemGraph *mg, Relation index)
{
	int64		nelems = HnswMemCount(mg);
	HnswBulkWriter *w;

	w = HnswBulkBegin(index, nelems);
	for (int64 i = 0; i < nelems; i++)
	{
		HnswMemElement *e = mem_element(mg, i);

		HnswBulkPlace(w, e->level, e->nmore);
	}
	for (int64 i = 0; i < nelems; i++)
	{
		HnswMemElement *e = mem_element(mg, i);

		CHECK_FOR_INTERRUPTS();
		HnswBulkElement(w, e->level, e->vec, e->heaptids, e->ntids,
						mem_slots(mg, e));
	}
	/* then the duplicate chains, chunk by chunk, newest first */
	for (int64 i = 0; i < nelems; i++)
	{
		HnswMemElement *e = mem_element(mg, i);

		for (uint64 off = e->moreOff; off != 0;)
		{
			HnswMemTidChunk *chunk = AREA_PTR(mg, off);

			HnswBulkChain(w, i, chunk->tids, chunk->ntids);
			off = chunk->next;
		}
	}
	HnswBulkFinish(w, mg->area->entry == HNSW_INVALID_REF ? -1 :
				   (int64) mg->area->entry, mg->area->entryLevel);
}

/*
 * The heap TIDs in the graph, sorted, for a build that must find the rows
 * a full area left out.  Returns the count; *out is palloc'd.
 */
int64
HnswMemHeapTids(HnswMemGraph *mg, ItemPointer *out)
{
	int64		nelems = HnswMemCount(mg);
	int64		n = 0;
	int64		max = nelems + 16;
	ItemPointer tids = palloc_extended(sizeof(ItemPointerData) * max,
									   MCXT_ALLOC_HUGE);

	for (int64 i = 0; i < nelems; i++)
	{
		HnswMemElement *e = mem_element(mg, i);
		int64		need = n + e->ntids + e->nmore;

		if (need > max)
		{
			max = Max(max * 2, need);
			tids = repalloc_huge(tids, sizeof(ItemPointerData) * max);
		}
		for (int t = 0; t < e->ntids; t++)
			tids[n++] = e->heaptids[t];
		for (uint64 off = e->moreOff; off != 0;)
		{
			HnswMemTidChunk *chunk = AREA_PTR(mg, off);

			for (uint32 t = 0; t < chunk->ntids; t++)
				tids[n++] = chunk->tids[t];
			off = chunk->next;
		}
	}
	qsort(tids, n, sizeof(ItemPointerData), (int (*) (const void *, const void *)) ItemPointerCompare);
	*out = tids;
	return n;
}

/* The memory the graph takes, and how many times it grew (for DEBUG1) */
Size
HnswMemSize(HnswMemGraph *mg, int *grown)
{
	*grown = mg->area->grown;
	return mg->area->size +
		(mg->ownsArea ? sizeof(uint64) * (Size) mg->area->maxelems : 0);
}

/* Release the graph (and its area, if HnswMemCreate allocated it) */
void
HnswMemFree(HnswMemGraph *mg)
{
	if (mg->ownsArea)
	{
		pfree(mg->base);
		pfree(mg->offsets);
	}
	pfree(mg);
}
