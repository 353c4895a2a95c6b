/*-------------------------------------------------------------------------
 *
 * hnsw.h
 *	  The hnsw access method's header: options and settings, the metric,
 *	  the AM callbacks, and the entry points that the callbacks use of the
 *	  two storage rooms, the graph in memory (hnswmem.c) and the graph on
 *	  pages (hnswpage.c).  Nothing here knows about pages.
 *
 * The map of the house:
 *	 hnsw.c			handler, reloptions, settings (hnsw.*), amvalidate,
 *					amcostestimate, the per-index cache (HnswGetIndexInfo)
 *	 hnswformat.c	the element formats (what an element of vector, halfvec,
 *					bit stores, and the kernels over it) and the metrics
 *					that the opclasses' support functions hand the index
 *	 hnswbuild.c, hnswinsert.c, hnswscan.c, hnswvacuum.c
 *					the callbacks: they decide what to do and call the rooms
 *	 hnswgraph.h, hnswgraph.c (search, heuristic, insert),
 *	 hnswgraphstream.c (the scan's k-NN stream), hnswgraphrepair.c and
 *	 hnswgraphconnect.c (repairs of a list, and of reachability)
 *					the algorithm, over HnswGraphOps, blind to storage (its
 *					design note is in hnswgraph.h)
 *	 hnswmem.c		HnswGraphOps in memory, for CREATE INDEX; hands the
 *					finished graph to the page room's bulk writer
 *	 hnswpage.h, hnswpage.c
 *					the only room that knows pages: formats, buffers, locks
 *					and WAL (its design note and lock rules are in hnswpage.h);
 *					in sections: the core, HnswGraphOps over pages and
 *					inserts, the bulk writer, the scan's reads, vacuum's
 *					page work and compaction
 *	 hnswverify.c, hnswverifymap.c
 *					hnsw_verify(), reading pages through hnswpage.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TINYHNSW_HNSW_H
#define TINYHNSW_HNSW_H

#include "access/amapi.h"
#include "access/genam.h"
#include "common/relpath.h"
#include "storage/itemptr.h"
#include "utils/relcache.h"

#include "hnswgraph.h"

/* Option ranges and defaults (reloptions and settings) */
#define HNSW_DEFAULT_M				16
#define HNSW_MIN_M					2
/* HNSW_MAX_M: hnswgraph.h, whose fixed arrays it sizes */
#define HNSW_DEFAULT_EF_CONSTRUCTION	64
#define HNSW_MIN_EF_CONSTRUCTION	4
#define HNSW_MAX_EF_CONSTRUCTION	1000
#define HNSW_DEFAULT_EF_SEARCH		40
#define HNSW_MIN_EF_SEARCH			1
#define HNSW_MAX_EF_SEARCH			1000

/*
 * Largest indexable dimension count of each element format: an element
 * tuple must fit a page, which holds about 8000 bytes of vector
 */
#define HNSW_MAX_DIM				2000	/* vector: float4 */
#define HNSW_MAX_HALFVEC_DIM		4000	/* halfvec: float16 */
#define HNSW_MAX_BIT_DIM			64000	/* bit: one bit each */
/* sparsevec: any dimensions, up to this many non-zero elements */
#define HNSW_MAX_SPARSEVEC_NNZ		1000

/*
 * Heap TIDs an element holds itself (rows with equal vectors share it); the
 * rest go to its duplicate chain.  The in-memory graph keeps as many, so
 * that the build writes them as they are.
 */
#define HNSW_HEAPTIDS				9

/* Support function and strategy numbers */
#define HNSW_METRIC_PROC			1	/* (internal) -> internal: HnswMetric */
#define HNSW_NPROC					1
#define HNSW_DISTANCE_STRATEGY		1	/* the ORDER BY distance operator */

/* Build progress subphases (PROGRESS_CREATEIDX_SUBPHASE) */
#define HNSW_PHASE_LOAD				2
#define HNSW_PHASE_WRITE			3

/*
 * An element format: what the index stores for each element of an opclass's
 * type, and how a datum of that type becomes it.  The stored form of an
 * index of dim dimensions takes size(dim) bytes (a multiple of 4, so that
 * element tuples stay aligned); the algorithm and both storages see it only
 * as a pointer to that many bytes, handed to the metric's kernels, copied
 * and compared bytewise.  A query is prepared the same way, so the kernels
 * take two stored forms.
 */
typedef struct HnswFormat
{
	const char *type;			/* the SQL type, for messages */
	int			maxDimensions;	/* the most an index can hold */
	Size		(*size) (int dim);

	/* a datum's dimension count (for a column declared without one) */
	int			(*dimensions) (Datum value);

	/*
	 * Write value as the index stores it into out (size(dim) bytes, padding
	 * zeroed, so that equal values compare equal bytewise); normalized to
	 * unit length with normalize.  A value of other dimensions than dim is
	 * an error.  Returns false if the value has no place in the index: a
	 * zero vector under normalize or skipZero, leaving out undefined.
	 */
	bool		(*prepare) (Datum value, int dim, bool normalize,
							bool skipZero, void *out);

	/*
	 * For hnsw_verify: NULL if a stored form could be one of this format
	 * (of unit length with normalized), else a palloc'd reason why not.
	 */
	char	   *(*check) (const void *stored, int dim, bool normalized);
} HnswFormat;

/*
 * The metric an opclass's support function 1 hands the index: the format
 * of its elements and the kernels between two stored forms.  The kernels
 * are named through pointers, since the dispatched ones of distance.c are
 * only set at load time; a search orders by *kernel, a monotone stand-in
 * for the operator's distance (squared L2, negative inner product, ...).
 */
typedef struct HnswMetric
{
	const char *name;
	const HnswFormat *format;
	DistanceKernel *kernel;
	DistanceKernel *buildKernel;	/* link the graph by this one, or NULL to
									 * link by the search's order */
	bool		normalize;		/* store and query unit vectors */
	bool		skipZero;		/* zero vectors have no distance (cosine) */
} HnswMetric;

/* What a relation's rd_amcache holds: the options and the metric */
typedef struct HnswIndexInfo
{
	int			dimensions;
	Size		vecsize;		/* bytes of a stored vector (its format's) */
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
extern const HnswMetric *HnswGetMetric(Relation index);
extern const HnswIndexInfo *HnswGetIndexInfo(Relation index);
extern void HnswForgetIndexInfo(Relation index);

/* hnswformat.c */
extern bool HnswKnownMetric(const HnswMetric *metric);
extern bool HnswPrepareVector(const HnswIndexInfo *info, Datum value,
							  void *out);
extern DistanceKernel HnswMetricKernel(const HnswMetric *metric, bool build);
extern void HnswSetDimensions(HnswIndexInfo *info, int dimensions);

/* Test wait points: the advisory lock a test holds (0x484E5357, "HNSW") */
#define HNSW_WAIT_LOCK_KEY		INT64CONST(1213090647)
extern void HnswWaitPoint(const char *name);

/* hnswmem.c: the graph in memory (CREATE INDEX) */
typedef struct HnswMemGraph HnswMemGraph;
extern Size HnswMemEstimate(const HnswIndexInfo *info, double ntuples);
extern HnswMemGraph *HnswMemCreate(Relation index, void *area, Size size,
								   Size limit, bool shared, bool init);
extern HnswGraph *HnswMemGraphBase(HnswMemGraph *mg);
extern int64 HnswMemCount(HnswMemGraph *mg);
extern bool HnswMemFull(HnswMemGraph *mg);
extern void HnswMemWritePages(HnswMemGraph *mg, Relation index);
extern int64 HnswMemHeapTids(HnswMemGraph *mg, ItemPointer *out);
extern Size HnswMemSize(HnswMemGraph *mg, int *grown);
extern void HnswMemFree(HnswMemGraph *mg);

/* hnswpage.c: the metapage */
extern int	HnswPageMaxLevel(int m);
extern bool HnswReadBuiltOptions(Relation index, int maxDimensions,
								 int *dimensions, int *m,
								 int *efConstruction);
extern void HnswWriteMetaPage(Relation index, ForkNumber fork, int dimensions,
							  int m, int efConstruction, bool logit);

/* hnswpage.c: the graph on pages, as the callbacks use it */
typedef struct HnswPageGraph HnswPageGraph;
extern HnswPageGraph *HnswPageGraphCreate(Relation index, bool forSearch);
extern HnswGraph *HnswPageGraphBase(HnswPageGraph *pg);
extern void HnswPageGraphSetStrategy(HnswPageGraph *pg,
									 BufferAccessStrategy strategy);

/* hnswpage.c: what a scan reads besides the graph */
typedef struct HnswPageWalk HnswPageWalk;
extern HnswRef HnswPageEntryPoint(Relation index, int *level);
extern int	HnswPageResultTids(HnswPageGraph *pg, const HnswCandidate *c,
							   const float *q, ItemPointer *tids,
							   int *maxtids);
extern HnswPageWalk *HnswPageWalkBegin(Relation index);
extern int	HnswPageWalkNext(HnswPageWalk *walk, ItemPointer *tids,
							 int *maxtids);

/* hnswpage.c: CREATE INDEX writes the graph built in memory, once */
typedef struct HnswBulkWriter HnswBulkWriter;
#define HNSW_NO_NEIGHBOR		PG_UINT32_MAX	/* empty slot, by element number */
extern HnswBulkWriter *HnswBulkBegin(Relation index, int64 nelems);
extern void HnswBulkPlace(HnswBulkWriter *w, int level, int64 nmore);
extern void HnswBulkElement(HnswBulkWriter *w, int level, const float *vec,
							const ItemPointerData *heaptids, int ntids,
							const uint32 *slots);
extern void HnswBulkChain(HnswBulkWriter *w, int64 elem,
						  const ItemPointerData *tids, int n);
extern BlockNumber HnswBulkFinish(HnswBulkWriter *w, int64 entry,
								  int entryLevel);

/*
 * hnswpage.c: the page work of vacuum's passes (hnswvacuum.c), which
 * go over the data pages, blocks HNSW_FIRST_DATA_BLKNO up (the metapage is
 * block 0)
 */
#define HNSW_FIRST_DATA_BLKNO		1
typedef enum HnswRemoved
{
	HNSW_REMOVED_LIVE,			/* keeps heap TIDs */
	HNSW_REMOVED_DELETED,		/* lost its last ones: flagged DELETED now */
	HNSW_REMOVED_WAS_DELETED	/* by a vacuum that did not finish */
} HnswRemoved;
typedef void (*HnswRemovedFn) (HnswRef ref, int level, int64 kept,
							   HnswRemoved what, void *arg);
extern void HnswPageRemoveHeapTids(Relation index, BlockNumber blkno,
								   BufferAccessStrategy strategy,
								   IndexBulkDeleteCallback dead,
								   void *deadState, double *removed,
								   HnswRemovedFn fn, void *arg);
extern int	HnswPageLiveElements(Relation index, BlockNumber blkno,
								 BufferAccessStrategy strategy,
								 HnswCandidate *elems, int *levels);
extern HnswRef HnswPageTopLiveElement(Relation index, BlockNumber nblocks,
									  BufferAccessStrategy strategy,
									  bool pause, int *level);
extern void HnswSetEntryPoint(Relation index, HnswRef entry, int level);
extern void HnswPageBeginBarrier(Relation index);
extern void HnswPageEndBarrier(Relation index);
extern bool HnswPageReplaceLayer(HnswPageGraph *pg, uint64 neighborsAt,
								 int layer, const HnswRef *expect, int nexpect,
								 const HnswRef *refs, int n);
extern int64 HnswPageFreeElements(Relation index, const HnswRef *refs,
								  int64 n, BufferAccessStrategy strategy);

/* hnswpage.c: vacuum's last step, giving pages back */
extern BlockNumber HnswPageCompact(Relation index,
								   BufferAccessStrategy strategy);

/* AM callbacks */
extern IndexBuildResult *hnswbuild(Relation heap, Relation index,
								   struct IndexInfo *indexInfo);
extern void hnswbuildempty(Relation index);
extern bool hnswinsert(Relation index, Datum *values, bool *isnull,
					   ItemPointer heap_tid, Relation heap,
					   IndexUniqueCheck checkUnique, bool indexUnchanged,
					   struct IndexInfo *indexInfo);
extern IndexBulkDeleteResult *hnswbulkdelete(IndexVacuumInfo *info,
											 IndexBulkDeleteResult *stats,
											 IndexBulkDeleteCallback callback,
											 void *callback_state);
extern IndexBulkDeleteResult *hnswvacuumcleanup(IndexVacuumInfo *info,
												IndexBulkDeleteResult *stats);
extern int64 HnswConnectIndex(Relation index, BufferAccessStrategy strategy,
							   bool afterDeletes, bool reachOnly);
extern IndexScanDesc hnswbeginscan(Relation index, int nkeys, int norderbys);
extern void hnswrescan(IndexScanDesc scan, ScanKey keys, int nkeys,
					   ScanKey orderbys, int norderbys);
extern bool hnswgettuple(IndexScanDesc scan, ScanDirection dir);
extern void hnswendscan(IndexScanDesc scan);

#endif							/* TINYHNSW_HNSW_H */
