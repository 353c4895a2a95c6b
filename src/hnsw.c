/*-------------------------------------------------------------------------
 *
 * hnsw.c
 *	  Module entry point and the hnsw access method's catalogue side: the
 *	  handler, reloptions (m, ef_construction), settings (hnsw.*), the
 *	  per-index cache of options and metric, amvalidate and amcostestimate,
 *	  and the planner support that prices a distance's reads of vectors
 *	  stored out of line.  The metrics that opclasses name are
 *	  hnswformat.c's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "access/amvalidate.h"
#include "access/heaptoast.h"
#include "access/stratnum.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/reloptions.h"
#include "catalog/pg_am.h"
#include "catalog/pg_amop.h"
#include "catalog/pg_amproc.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/progress.h"
#include "commands/vacuum.h"
#include "fmgr.h"
#include "nodes/nodeFuncs.h"
#include "nodes/supportnodes.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/regproc.h"
#include "utils/selfuncs.h"
#include "utils/spccache.h"
#include "utils/syscache.h"

#include "hnsw.h"

PG_MODULE_MAGIC;

extern PGDLLEXPORT void _PG_init(void);

/*
 * PostgreSQL 15's PG_FUNCTION_INFO_V1 exports only the info function; the
 * library is built with hidden visibility, so export the functions too.
 */
extern PGDLLEXPORT Datum tinyhnsw_hnswhandler(PG_FUNCTION_ARGS);

int			hnsw_ef_search = HNSW_DEFAULT_EF_SEARCH;
int			hnsw_iterative_scan = HNSW_ITERATIVE_SCAN_STRICT;
int			hnsw_max_scan_tuples = HNSW_DEFAULT_MAX_SCAN_TUPLES;
double		hnsw_scan_mem_multiplier = HNSW_DEFAULT_SCAN_MEM_MULTIPLIER;

static const struct config_enum_entry hnsw_iterative_scan_options[] = {
	{"off", HNSW_ITERATIVE_SCAN_OFF, false},
	{"relaxed_order", HNSW_ITERATIVE_SCAN_RELAXED, false},
	{"strict_order", HNSW_ITERATIVE_SCAN_STRICT, false},
	{NULL, 0, false}
};

static relopt_kind hnsw_relopt_kind;

/* hnsw.test_wait_point: see HnswWaitPoint */
static char *hnsw_test_wait_point = NULL;

/* hnsw.test_seed: see HnswSeedLevels */
static int	hnsw_test_seed = 0;

static void
assign_test_seed(int newval, void *extra)
{
	HnswSeedLevels((uint64) newval);
}

/*
 * Called once when the library is loaded: pick the distance kernels for
 * this CPU, register the reloptions and settings.
 */
void
_PG_init(void)
{
	DistanceInit();

	hnsw_relopt_kind = add_reloption_kind();
	add_int_reloption(hnsw_relopt_kind, "m",
					  "Maximum number of neighbors of an element per layer (twice this on layer 0)",
					  HNSW_DEFAULT_M, HNSW_MIN_M, HNSW_MAX_M,
					  AccessExclusiveLock);
	add_int_reloption(hnsw_relopt_kind, "ef_construction",
					  "Size of the candidate list while building the graph",
					  HNSW_DEFAULT_EF_CONSTRUCTION, HNSW_MIN_EF_CONSTRUCTION,
					  HNSW_MAX_EF_CONSTRUCTION, AccessExclusiveLock);

	DefineCustomIntVariable("hnsw.ef_search",
							"Sets the size of the candidate list of an hnsw index scan.",
							"Larger values find more of the true nearest neighbors, more slowly.",
							&hnsw_ef_search, HNSW_DEFAULT_EF_SEARCH,
							HNSW_MIN_EF_SEARCH, HNSW_MAX_EF_SEARCH,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomEnumVariable("hnsw.iterative_scan",
							 "Sets whether a scan goes on searching when its first results run out.",
							 "strict_order returns rows in exact distance order, relaxed_order may return some slightly out of order, off stops after one search of hnsw.ef_search.",
							 &hnsw_iterative_scan, HNSW_ITERATIVE_SCAN_STRICT,
							 hnsw_iterative_scan_options,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("hnsw.max_scan_tuples",
							"Sets the most rows an iterative scan returns.",
							NULL,
							&hnsw_max_scan_tuples, HNSW_DEFAULT_MAX_SCAN_TUPLES,
							1, INT_MAX, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomRealVariable("hnsw.scan_mem_multiplier",
							 "Sets the memory an iterative scan may use, as a multiple of work_mem.",
							 NULL,
							 &hnsw_scan_mem_multiplier,
							 HNSW_DEFAULT_SCAN_MEM_MULTIPLIER, 1, 1000,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("hnsw.test_wait_point",
							   "For tests only: a named point of the hnsw code at which this session waits.",
							   "The session waits there for the advisory lock HNSW_WAIT_LOCK_KEY, so that a test holding that lock can act while it waits.",
							   &hnsw_test_wait_point, "",
							   PGC_SUSET, GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
	DefineCustomIntVariable("hnsw.test_seed",
							"For tests only: seeds the random levels of the elements this session adds, if not 0.",
							"Setting it starts the same sequence of levels again, so that a test builds the same graph each run.",
							&hnsw_test_seed, 0, 0, INT_MAX,
							PGC_SUSET, GUC_NOT_IN_SAMPLE, NULL,
							assign_test_seed, NULL);
	MarkGUCPrefixReserved("hnsw");
}

/*
 * A wait point for tests (PostgreSQL 15 has no injection points).  When
 * hnsw.test_wait_point names this point, the backend takes and releases
 * the advisory lock pg_advisory_lock(HNSW_WAIT_LOCK_KEY) in share mode:
 * a test that holds that lock holds this backend here, sees it waiting in
 * pg_locks, acts, and lets it go.  Callers hold no buffer content lock
 * here.  The setting is superuser-only, and empty costs one test.
 */
void
HnswWaitPoint(const char *name)
{
	LOCKTAG		tag;

	if (hnsw_test_wait_point == NULL || hnsw_test_wait_point[0] == '\0' ||
		strcmp(hnsw_test_wait_point, name) != 0)
		return;
	/* as pg_advisory_lock(bigint) names it */
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId,
						 (uint32) (HNSW_WAIT_LOCK_KEY >> 32),
						 (uint32) HNSW_WAIT_LOCK_KEY, 1);
	(void) LockAcquire(&tag, ShareLock, false, false);
	LockRelease(&tag, ShareLock, false);
}

/*
 * The metric of an index's opclass.  Support function 1 is called only if
 * it has the signature amvalidate requires, and what it returns must be one
 * of our metrics: a misdeclared opclass gets an error, not a crash.
 */
const HnswMetric *
HnswGetMetric(Relation index)
{
	Oid			procid = index_getprocid(index, 1, HNSW_METRIC_PROC);
	const HnswMetric *metric = NULL;

	if (!OidIsValid(procid))
		elog(ERROR, "missing support function %d for attribute %d of index \"%s\"",
			 HNSW_METRIC_PROC, 1, RelationGetRelationName(index));
	if (get_func_rettype(procid) == INTERNALOID &&
		get_func_nargs(procid) == 1)
	{
		Oid		   *argtypes;
		int			nargs;

		get_func_signature(procid, &argtypes, &nargs);
		if (argtypes[0] == INTERNALOID)
			metric = (const HnswMetric *)
				DatumGetPointer(OidFunctionCall1(procid, PointerGetDatum(NULL)));
	}
	if (!HnswKnownMetric(metric))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("operator class of index \"%s\" has no valid hnsw support function 1",
						RelationGetRelationName(index)),
				 errhint("Use one of the operator classes tinyhnsw provides.")));
	return metric;
}

/*
 * The index's dimensions, options and metric, cached in rd_amcache.  The
 * cache may be rebuilt at any relcache invalidation: callers that keep it
 * across lock acquisitions copy it.
 */
const HnswIndexInfo *
HnswGetIndexInfo(Relation index)
{
	if (index->rd_amcache == NULL)
	{
		HnswIndexInfo *info = MemoryContextAlloc(index->rd_indexcxt,
												 sizeof(HnswIndexInfo));
		HnswOptions *opts = (HnswOptions *) index->rd_options;

		info->metric = HnswGetMetric(index);

		/*
		 * A built index keeps the layout it was built with: ALTER INDEX SET
		 * (m = ...) only applies to the next build, and ALTER TABLE ...
		 * ALTER COLUMN ... TYPE vector, which drops the column's dimensions,
		 * keeps the index and its vectors as they are.
		 */
		if (!HnswReadBuiltOptions(index, info->metric->format->maxDimensions,
								  &info->dimensions, &info->m,
								  &info->efConstruction))
		{
			/* -1 for a column without them: the build counts the rows' */
			info->dimensions =
				TupleDescAttr(RelationGetDescr(index), 0)->atttypmod;
			info->m = opts ? opts->m : HNSW_DEFAULT_M;
			info->efConstruction = opts ? opts->efConstruction :
				HNSW_DEFAULT_EF_CONSTRUCTION;
		}
		HnswSetDimensions(info, info->dimensions);
		index->rd_amcache = info;
	}
	return (const HnswIndexInfo *) index->rd_amcache;
}

/*
 * Drop the cached index info, so that the next HnswGetIndexInfo reads the
 * metapage the build has just written.
 */
void
HnswForgetIndexInfo(Relation index)
{
	if (index->rd_amcache != NULL)
		pfree(index->rd_amcache);
	index->rd_amcache = NULL;
}

/* amoptions */
static bytea *
hnswoptions(Datum reloptions, bool validate)
{
	static const relopt_parse_elt tab[] = {
		{"m", RELOPT_TYPE_INT, offsetof(HnswOptions, m)},
		{"ef_construction", RELOPT_TYPE_INT, offsetof(HnswOptions, efConstruction)},
	};

	return (bytea *) build_reloptions(reloptions, validate, hnsw_relopt_kind,
									  sizeof(HnswOptions), tab, lengthof(tab));
}

/*
 * amproperty: the generic answers are wrong for us in two places.  The
 * column is distance-orderable (by its opclass's operator), and an
 * approximate index cannot back an exclusion constraint.
 */
static bool
hnswproperty(Oid index_oid, int attno, IndexAMProperty prop,
			 const char *propname, bool *res, bool *isnull)
{
	switch (prop)
	{
		case AMPROP_DISTANCE_ORDERABLE:
			if (attno == 0)
				return false;
			*res = true;
			return true;
		case AMPROP_CAN_EXCLUDE:
			*res = false;
			return true;
		default:
			return false;
	}
}

/* ambuildphasename */
static char *
hnswbuildphasename(int64 phasenum)
{
	switch (phasenum)
	{
		case PROGRESS_CREATEIDX_SUBPHASE_INITIALIZE:
			return "initializing";
		case HNSW_PHASE_LOAD:
			return "loading tuples";
		case HNSW_PHASE_WRITE:
			return "writing index pages";
		default:
			return NULL;
	}
}

/*
 * What visiting one element costs an iterative scan: reading it, about a
 * tenth of a page read (an element is one of the tens of tuples its page
 * holds), and measuring its distance, one vectorized operation per 12
 * floats' worth of its vector.  Calibrated by test/bench/filters, whose
 * index plans returned a row per 10 to 18 microseconds at 128 to 1,536
 * dimensions, against its sequential scans' cost per page.
 */
#define HNSW_VISIT_COST(pagecost, vecsize) \
	(0.1 * (pagecost) + cpu_operator_cost * (double) (vecsize) / (4 * 12))

/*
 * amcostestimate.  The index only serves ORDER BY its distance operator:
 * without one it is never chosen.  A search reads about ef_search
 * elements' neighborhoods on layer 0 (up to 2m each, m new on average)
 * plus a few per upper layer, all before the first row comes back, so that is startup cost;
 * each row returned after it costs a tuple.  The pages a search touches
 * are charged as sequential reads: an HNSW index is only worth using with
 * its pages cached, and charging them as random I/O made the planner
 * prefer a sequential scan whose TOAST fetches and distance computations it
 * cannot see (hundreds of times slower on 784-dimensional vectors).
 *
 * A filter (the quals the index cannot check) changes that: to fill a
 * LIMIT of n rows when it keeps a share sel of them, the iterative scan
 * returns about n / sel rows, and each beyond the first search's ef_search
 * costs expanding about one more element: its 2m neighbors read and
 * measured (HNSW_VISIT_COST each), plus the heap fetch and filter that the
 * planner charges anyway.  The planner prices a LIMIT as a share of the run
 * cost, as if the first rows cost what the rest do; these rows come first,
 * so they go into the startup cost.  Measured by test/bench/filters: on
 * the three benchmark sets at 5,000 to 20,000 rows, a filter keeping 1 row
 * in 100 made the index plan 2 to 8 times slower than a sequential scan,
 * and the planner, which priced those rows at a hundredth of a page each,
 * took the index.
 */
static void
hnswcostestimate(PlannerInfo *root, IndexPath *path, double loop_count,
				 Cost *indexStartupCost, Cost *indexTotalCost,
				 Selectivity *indexSelectivity, double *indexCorrelation,
				 double *indexPages)
{
	IndexOptInfo *index = path->indexinfo;
	GenericCosts costs;
	Relation	rel;
	const HnswIndexInfo *info;
	int			m;
	Size		vecsize;
	double		tuples;
	double		visited;
	double		pages;
	double		spc_seq_page_cost;

	if (path->indexorderbys == NIL)
	{
		*indexStartupCost = get_float8_infinity();
		*indexTotalCost = get_float8_infinity();
		*indexSelectivity = 0;
		*indexCorrelation = 0;
		*indexPages = 0;
		return;
	}

	MemSet(&costs, 0, sizeof(costs));
	genericcostestimate(root, path, loop_count, &costs);

	rel = index_open(index->indexoid, NoLock);
	info = HnswGetIndexInfo(rel);
	m = info->m;
	vecsize = info->vecsize;
	index_close(rel, NoLock);

	tuples = Max(index->tuples, 1.0);
	/* a search computes about ef_search * m distances (README, Design) */
	visited = Min(tuples, (double) hnsw_ef_search * m + m * log(tuples));
	pages = Max(1.0, ceil(index->pages * visited / tuples));
	get_tablespace_page_costs(index->reltablespace, NULL, &spc_seq_page_cost);

	*indexStartupCost = pages * spc_seq_page_cost +
		visited * (cpu_index_tuple_cost + cpu_operator_cost);

	if (root->limit_tuples > 0 && hnsw_iterative_scan != HNSW_ITERATIVE_SCAN_OFF &&
		index->indrestrictinfo != NIL)
	{
		Selectivity sel = clauselist_selectivity(root, index->indrestrictinfo,
												 index->rel->relid,
												 JOIN_INNER, NULL);
		double		need = Min(tuples, root->limit_tuples / Max(sel, 1.0 / tuples));

		if (need > hnsw_ef_search)
			*indexStartupCost += (need - hnsw_ef_search) * 2 * m *
				HNSW_VISIT_COST(spc_seq_page_cost, vecsize);
	}
	*indexTotalCost = *indexStartupCost + tuples * cpu_index_tuple_cost;
	*indexSelectivity = costs.indexSelectivity;
	*indexCorrelation = 0;
	*indexPages = pages;
}

/*
 * Planner support (SupportRequestCost) of the distance functions and of
 * the casts and quantizers that read a whole vector: a column of vectors
 * too wide for a page (vector over about 2,030 dimensions, halfvec over
 * about 4,070; STORAGE main moves them out of line only then) is read
 * from TOAST by every call on it, which the planner does not see: it
 * prices a sequential scan by the table's main fork, about 50 bytes a row,
 * and preferred one to the index at every ef_search on 3,000 rows of
 * vector(3072) indexed as halfvec (test/bench, cosine3072), though each
 * query then read every row's 12 kB.  A call whose argument is such a
 * column costs what reading it inline would: its pages at
 * seq_page_cost.  The column's width comes from its typmod; without one
 * it is unknown, and the call costs what its procost says, as does a call
 * on anything but a column.
 */
static Datum
vector_cost_support(FunctionCallInfo fcinfo, Size elemsize)
{
	Node	   *rawreq = (Node *) PG_GETARG_POINTER(0);
	SupportRequestCost *req;
	List	   *args;
	ListCell   *lc;
	Cost		per_call;

	if (!IsA(rawreq, SupportRequestCost))
		PG_RETURN_POINTER(NULL);
	req = (SupportRequestCost *) rawreq;
	if (req->node == NULL)
		PG_RETURN_POINTER(NULL);
	if (IsA(req->node, FuncExpr))
		args = ((FuncExpr *) req->node)->args;
	else if (IsA(req->node, OpExpr))
		args = ((OpExpr *) req->node)->args;
	else
		PG_RETURN_POINTER(NULL);

	per_call = cpu_operator_cost;
	{
		HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(req->funcid));

		if (HeapTupleIsValid(tup))
		{
			per_call *= ((Form_pg_proc) GETSTRUCT(tup))->procost;
			ReleaseSysCache(tup);
		}
	}
	foreach(lc, args)
	{
		Node	   *arg = (Node *) lfirst(lc);
		Var		   *var;
		double		width;

		while (arg && IsA(arg, RelabelType))
			arg = (Node *) ((RelabelType *) arg)->arg;
		if (arg == NULL || !IsA(arg, Var))
			continue;
		var = (Var *) arg;
		if (var->vartypmod <= 0)
			continue;
		/* the varlena header, dimensions and an unused word, then elements */
		width = VARHDRSZ + 2 * sizeof(int16) + (double) elemsize * var->vartypmod;
		if (width > TOAST_TUPLE_TARGET_MAIN)
			per_call += width / BLCKSZ * seq_page_cost;
	}
	req->startup = 0;
	req->per_tuple = per_call;
	PG_RETURN_POINTER(req);
}

extern PGDLLEXPORT Datum hnsw_vector_cost_support(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum hnsw_halfvec_cost_support(PG_FUNCTION_ARGS);

PG_FUNCTION_INFO_V1(hnsw_vector_cost_support);
Datum
hnsw_vector_cost_support(PG_FUNCTION_ARGS)
{
	return vector_cost_support(fcinfo, sizeof(float));
}

PG_FUNCTION_INFO_V1(hnsw_halfvec_cost_support);
Datum
hnsw_halfvec_cost_support(PG_FUNCTION_ARGS)
{
	return vector_cost_support(fcinfo, sizeof(uint16));
}

/* The access method of an operator family, for sort families */
static Oid
opfamily_method(Oid opfamily)
{
	HeapTuple	tup = SearchSysCache1(OPFAMILYOID, ObjectIdGetDatum(opfamily));
	Oid			method;

	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	method = ((Form_pg_opfamily) GETSTRUCT(tup))->opfmethod;
	ReleaseSysCache(tup);
	return method;
}

/*
 * amvalidate: an hnsw opfamily holds only ORDER BY operators (strategy 1,
 * returning float8, ordered by a btree float opfamily) and support
 * function 1, (internal) -> internal; every opclass has both.
 */
static bool
hnswvalidate(Oid opclassoid)
{
	bool		result = true;
	HeapTuple	classtup;
	Form_pg_opclass classform;
	Oid			opfamilyoid;
	Oid			opcintype;
	char	   *opclassname;
	HeapTuple	familytup;
	char	   *opfamilyname;
	CatCList   *proclist;
	CatCList   *oprlist;
	bool		hasproc = false;
	bool		hasopr = false;

	classtup = SearchSysCache1(CLAOID, ObjectIdGetDatum(opclassoid));
	if (!HeapTupleIsValid(classtup))
		elog(ERROR, "cache lookup failed for operator class %u", opclassoid);
	classform = (Form_pg_opclass) GETSTRUCT(classtup);
	opfamilyoid = classform->opcfamily;
	opcintype = classform->opcintype;
	opclassname = NameStr(classform->opcname);

	familytup = SearchSysCache1(OPFAMILYOID, ObjectIdGetDatum(opfamilyoid));
	if (!HeapTupleIsValid(familytup))
		elog(ERROR, "cache lookup failed for operator family %u", opfamilyoid);
	opfamilyname = NameStr(((Form_pg_opfamily) GETSTRUCT(familytup))->opfname);

	proclist = SearchSysCacheList1(AMPROCNUM, ObjectIdGetDatum(opfamilyoid));
	for (int i = 0; i < proclist->n_members; i++)
	{
		Form_pg_amproc procform =
			(Form_pg_amproc) GETSTRUCT(&proclist->members[i]->tuple);

		if (procform->amprocnum != HNSW_METRIC_PROC)
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("operator family \"%s\" of access method %s contains function %s with invalid support number %d",
							opfamilyname, "hnsw",
							format_procedure(procform->amproc),
							procform->amprocnum)));
			result = false;
			continue;
		}
		if (!check_amproc_signature(procform->amproc, INTERNALOID, true,
									1, 1, INTERNALOID))
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("operator family \"%s\" of access method %s contains function %s with wrong signature for support number %d",
							opfamilyname, "hnsw",
							format_procedure(procform->amproc),
							procform->amprocnum)));
			result = false;
			continue;
		}
		if (procform->amproclefttype == opcintype &&
			procform->amprocrighttype == opcintype)
			hasproc = true;
	}

	oprlist = SearchSysCacheList1(AMOPSTRATEGY, ObjectIdGetDatum(opfamilyoid));
	for (int i = 0; i < oprlist->n_members; i++)
	{
		Form_pg_amop oprform =
			(Form_pg_amop) GETSTRUCT(&oprlist->members[i]->tuple);

		if (oprform->amopstrategy != HNSW_DISTANCE_STRATEGY)
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("operator family \"%s\" of access method %s contains operator %s with invalid strategy number %d",
							opfamilyname, "hnsw",
							format_operator(oprform->amopopr),
							oprform->amopstrategy)));
			result = false;
			continue;
		}
		if (oprform->amoppurpose != AMOP_ORDER)
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("operator family \"%s\" of access method %s contains operator %s that is not an ORDER BY operator with a btree sort family",
							opfamilyname, "hnsw",
							format_operator(oprform->amopopr))));
			result = false;
			continue;
		}
		/* the sort family must be able to sort the float8 distances */
		if (!OidIsValid(oprform->amopsortfamily) ||
			opfamily_method(oprform->amopsortfamily) != BTREE_AM_OID ||
			!OidIsValid(get_opfamily_member(oprform->amopsortfamily,
											FLOAT8OID, FLOAT8OID,
											BTLessStrategyNumber)))
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("operator family \"%s\" of access method %s contains invalid ORDER BY specification for operator %s",
							opfamilyname, "hnsw",
							format_operator(oprform->amopopr))));
			result = false;
			continue;
		}
		if (!check_amop_signature(oprform->amopopr, FLOAT8OID,
								  oprform->amoplefttype,
								  oprform->amoprighttype))
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("operator family \"%s\" of access method %s contains operator %s with wrong signature",
							opfamilyname, "hnsw",
							format_operator(oprform->amopopr))));
			result = false;
			continue;
		}
		if (oprform->amoplefttype == opcintype &&
			oprform->amoprighttype == opcintype)
			hasopr = true;
	}

	if (!hasproc)
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("operator class \"%s\" of access method %s is missing support function %d",
						opclassname, "hnsw", HNSW_METRIC_PROC)));
		result = false;
	}
	if (!hasopr)
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("operator class \"%s\" of access method %s is missing an ORDER BY operator for strategy %d",
						opclassname, "hnsw", HNSW_DISTANCE_STRATEGY)));
		result = false;
	}

	ReleaseCatCacheList(oprlist);
	ReleaseCatCacheList(proclist);
	ReleaseSysCache(familytup);
	ReleaseSysCache(classtup);
	return result;
}

/*
 * The access method handler.  Each flag is checked against its comment in
 * access/amapi.h.
 */
PG_FUNCTION_INFO_V1(tinyhnsw_hnswhandler);
Datum
tinyhnsw_hnswhandler(PG_FUNCTION_ARGS)
{
	IndexAmRoutine *amroutine = makeNode(IndexAmRoutine);

	amroutine->amstrategies = 0;	/* no fixed strategy assignments */
	amroutine->amsupport = HNSW_NPROC;
	amroutine->amoptsprocnum = 0;
	amroutine->amcanorder = false;
	amroutine->amcanorderbyop = true;	/* ORDER BY emb <-> $1 */
	amroutine->amcanbackward = false;
	amroutine->amcanunique = false;
	amroutine->amcanmulticol = false;
	amroutine->amoptionalkey = true;	/* no WHERE qual on the column */
	amroutine->amsearcharray = false;
	amroutine->amsearchnulls = false;
	amroutine->amstorage = false;
	amroutine->amclusterable = false;
	amroutine->ampredlocks = false;
	amroutine->amcanparallel = false;
	amroutine->amcaninclude = false;
	amroutine->amusemaintenanceworkmem = false;	/* vacuum needs none */
	amroutine->amparallelvacuumoptions = VACUUM_OPTION_PARALLEL_BULKDEL;
	amroutine->amkeytype = InvalidOid;

	amroutine->ambuild = hnswbuild;
	amroutine->ambuildempty = hnswbuildempty;
	amroutine->aminsert = hnswinsert;
	amroutine->ambulkdelete = hnswbulkdelete;
	amroutine->amvacuumcleanup = hnswvacuumcleanup;
	amroutine->amcanreturn = NULL;
	amroutine->amcostestimate = hnswcostestimate;
	amroutine->amoptions = hnswoptions;
	amroutine->amproperty = hnswproperty;
	amroutine->ambuildphasename = hnswbuildphasename;
	amroutine->amvalidate = hnswvalidate;
	amroutine->amadjustmembers = NULL;
	amroutine->ambeginscan = hnswbeginscan;
	amroutine->amrescan = hnswrescan;
	amroutine->amgettuple = hnswgettuple;
	amroutine->amgetbitmap = NULL;
	amroutine->amendscan = hnswendscan;
	amroutine->ammarkpos = NULL;
	amroutine->amrestrpos = NULL;
	amroutine->amestimateparallelscan = NULL;
	amroutine->aminitparallelscan = NULL;
	amroutine->amparallelrescan = NULL;

	PG_RETURN_POINTER(amroutine);
}
