/*-------------------------------------------------------------------------
 *
 * hnswgraphstream.c
 *	  The algorithm's k-NN search for scans (paper Algorithm 5), as a stream
 *	  of results in increasing distance that can go on past its first ef.
 *
 * Like the rest of the algorithm (hnswgraph.h), it knows the graph only
 * through HnswGraphOps.  Memory comes from the caller's current context.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/float.h"

#include "hnswgraph.h"

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
	uint32		i = HnswHashRef(ref) & s->slotMask;

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
	HnswSiftUp((char *) h->items, sizeof(uint32), h->count++, &x,
			sheap_before, h);
}

static uint32
sheap_pop(StreamHeap *h)
{
	uint32		top = h->items[0];
	uint32		last;

	Assert(h->count > 0);
	last = h->items[--h->count];
	HnswSiftDown((char *) h->items, sizeof(uint32), h->count, &last,
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

	neps = HnswDescend(g, q, entry, entryLevel, 0, HNSW_SCAN_DESCENT_EF(ef),
					   &eps);

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

