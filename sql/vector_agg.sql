-- avg(vector) and sum(vector), serial and as parallel partial aggregates
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;
\set SHOW_CONTEXT never

SELECT avg(v), sum(v) FROM (VALUES ('[1,2,3]'::vector), ('[3,5,7]')) t(v);
SELECT avg(v), sum(v) FROM (VALUES ('[1,2]'::vector), (NULL), ('[2,4]'), ('[0,0]')) t(v);
SELECT avg(v), sum(v) FROM (VALUES ('[0.1]'::vector), ('[0.2]'), ('[0.3]')) t(v);
-- no rows, or only NULLs: NULL
SELECT avg(v) IS NULL AS avg_null, sum(v) IS NULL AS sum_null
FROM (SELECT '[1,2]'::vector AS v WHERE false) t;
SELECT avg(v) IS NULL AS avg_null, sum(v) IS NULL AS sum_null
FROM (VALUES (NULL::vector), (NULL)) t(v);
-- the average of huge values does not overflow; their sum does
SELECT avg(v) FROM (VALUES ('[3e38,-3e38]'::vector), ('[3e38,-3e38]')) t(v);
SELECT sum(v) FROM (VALUES ('[3e38,-3e38]'::vector), ('[3e38,-3e38]')) t(v);
-- sums are accumulated in double precision
SELECT sum(v) FROM (VALUES ('[16777216]'::vector), ('[1]'), ('[1]')) t(v);
-- different dimensions
SELECT avg(v) FROM (VALUES ('[1,2]'::vector), ('[1,2,3]')) t(v);
SELECT sum(v) FROM (VALUES ('[1,2,3]'::vector), ('[1]')) t(v);
DO $$
BEGIN
	PERFORM avg(v) FROM (VALUES ('[1,2]'::vector), ('[1,2,3]')) t(v);
EXCEPTION WHEN OTHERS THEN
	RAISE NOTICE '%: %', SQLSTATE, SQLERRM;
END
$$;
-- GROUP BY, and as window aggregates
SELECT g, avg(v), sum(v), count(*)
FROM (VALUES (1, '[1,1]'::vector), (2, '[5,5]'), (1, '[3,5]'), (2, '[1,1]'), (3, '[7,8]')) t(g, v)
GROUP BY g ORDER BY g;
SELECT i, avg(v) OVER (ORDER BY i), sum(v) OVER (ORDER BY i ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
FROM (VALUES (1, '[2,4]'::vector), (2, '[4,8]'), (3, '[0,0]')) t(i, v) ORDER BY i;

-- the support functions, called directly
SELECT vector_accum('{0}', '[1,2]');
SELECT vector_accum(vector_accum('{0}', '[1,2]'), '[3,4]');
SELECT vector_combine(vector_accum('{0}', '[1,2]'), vector_accum('{0}', '[3,4]')),
	vector_combine('{0}', vector_accum('{0}', '[3,4]')),
	vector_combine(vector_accum('{0}', '[3,4]'), '{0}');
SELECT vector_avg(vector_combine(vector_accum('{0}', '[1,2]'), vector_accum('{0}', '[3,4]'))),
	vector_sum('{2,4,6}'), vector_avg('{0}') IS NULL AS empty;
SELECT vector_combine(vector_accum('{0}', '[1,2]'), vector_accum('{0}', '[1,2,3]'));
SELECT vector_accum('{1,2}', '[1,2]');
SELECT vector_accum('{}', '[1,2]');
SELECT vector_accum('{{1,2}}', '[1,2]');
SELECT vector_avg('{1,NULL}');
SELECT vector_sum('{1,1e300}');
-- states no aggregation produces: an error, not NULL or a made-up vector
SELECT vector_avg('{1}'::float8[]);
SELECT vector_sum('{-1}');
SELECT vector_avg('{0,1,2}');
SELECT vector_avg('{1.5,1,2}');
SELECT vector_sum('{-2,1,2}');
SELECT vector_avg('{Infinity,1,2}');
SELECT vector_avg('{NaN,1,2}');
SELECT vector_accum('{1}', '[1,2]');
SELECT vector_combine('{0}', '{0.5,1}');
DO $$
BEGIN
	PERFORM vector_avg('{1}');
EXCEPTION WHEN OTHERS THEN
	RAISE NOTICE '%: %', SQLSTATE, SQLERRM;
END
$$;
SELECT aggcombinefn, aggfinalfn, aggtranstype::regtype, agginitval,
	(SELECT proparallel FROM pg_proc WHERE oid = aggfnoid) AS parallel
FROM pg_aggregate WHERE aggfnoid IN ('avg(vector)'::regprocedure, 'sum(vector)'::regprocedure)
ORDER BY aggfnoid::regprocedure::text;

-- parallel partial aggregation: same result as serial.  Values are small
-- multiples of 1/4, so every partial sum is exact in any order.
CREATE TABLE vagg (g int, v vector(3));
INSERT INTO vagg SELECT i % 3, ARRAY[i % 17, (i % 101) / 4.0, -(i % 7)]::vector
FROM generate_series(1, 30000) i;
ANALYZE vagg;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT avg(v), sum(v) FROM vagg;
SELECT avg(v) AS p_avg, sum(v) AS p_sum FROM vagg \gset
EXPLAIN (COSTS OFF) SELECT g, avg(v), sum(v) FROM vagg GROUP BY g ORDER BY g;
SELECT g, avg(v), sum(v) FROM vagg GROUP BY g ORDER BY g;
SET max_parallel_workers_per_gather = 0;
EXPLAIN (COSTS OFF) SELECT avg(v), sum(v) FROM vagg;
SELECT avg(v) = :'p_avg' AS same_avg, sum(v) = :'p_sum' AS same_sum, avg(v), sum(v)
FROM vagg;
-- the same rows as the parallel GROUP BY above
SELECT g, avg(v), sum(v) FROM vagg GROUP BY g ORDER BY g;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;
DROP TABLE vagg;
