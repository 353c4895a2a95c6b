-- hnsw index scans: exact order against a plain sort for every opclass,
-- duplicates, NULLs, zero vectors under cosine, wrong query dimensions, and
-- the dimension limits
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- 300 rows of 3 dimensions (Weyl sequences: deterministic, irregular)
CREATE TABLE hscan (id int, emb vector(3));
INSERT INTO hscan
SELECT i, ARRAY[round((i * 0.7548776662) % 1 * 100, 2),
				round((i * 0.5698402910) % 1 * 100, 2) - 50,
				round((i * 0.3819660113) % 1 * 100, 2) - 20]::vector
FROM generate_series(1, 300) i;
\set q '''[10.5,-40.25,3.125]'''
-- the order is well defined: no two rows at the same distance, by any metric
SELECT count(*) AS rows,
	   count(DISTINCT emb <-> :q) AS l2,
	   count(DISTINCT emb <#> :q) AS ip,
	   count(DISTINCT emb <=> :q) AS cosine,
	   count(DISTINCT emb <+> :q) AS l1
FROM hscan;

-- On 300 rows an ef_search of 1000 makes the search exhaustive: the index
-- must return every row, in exactly the order of a plain sort.
SET hnsw.ef_search = 1000;

------------------------------------------------------------------------
-- vector_l2_ops
------------------------------------------------------------------------
SET enable_indexscan = off;
SELECT array_agg(id) AS expected FROM (SELECT id FROM hscan ORDER BY emb <-> :q) s \gset
RESET enable_indexscan;
CREATE INDEX hscan_idx ON hscan USING hnsw (emb vector_l2_ops);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hscan ORDER BY emb <-> :q LIMIT 300;
SELECT id, round((emb <-> :q)::numeric, 4) AS dist FROM hscan ORDER BY emb <-> :q LIMIT 10;
SELECT count(*) AS rows, array_agg(id) = :'expected' AS same_as_sort
FROM (SELECT id FROM hscan ORDER BY emb <-> :q LIMIT 300) s;
RESET enable_seqscan;
DROP INDEX hscan_idx;

------------------------------------------------------------------------
-- vector_ip_ops, over the same rows scaled to unit length (on rows of
-- other lengths the index misses rows: see hnsw_defects)
------------------------------------------------------------------------
CREATE TABLE hscan_unit AS SELECT id, l2_normalize(emb)::vector(3) AS emb FROM hscan;
SELECT count(*) AS rows, count(DISTINCT emb <#> :q) AS ip FROM hscan_unit;
SET enable_indexscan = off;
SELECT array_agg(id) AS expected FROM (SELECT id FROM hscan_unit ORDER BY emb <#> :q) s \gset
RESET enable_indexscan;
CREATE INDEX hscan_unit_idx ON hscan_unit USING hnsw (emb vector_ip_ops);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hscan_unit ORDER BY emb <#> :q LIMIT 300;
SELECT id, round((emb <#> :q)::numeric, 4) AS dist FROM hscan_unit ORDER BY emb <#> :q LIMIT 10;
SELECT count(*) AS rows, array_agg(id) = :'expected' AS same_as_sort
FROM (SELECT id FROM hscan_unit ORDER BY emb <#> :q LIMIT 300) s;
RESET enable_seqscan;
DROP TABLE hscan_unit;

------------------------------------------------------------------------
-- vector_cosine_ops
------------------------------------------------------------------------
SET enable_indexscan = off;
SELECT array_agg(id) AS expected FROM (SELECT id FROM hscan ORDER BY emb <=> :q) s \gset
RESET enable_indexscan;
CREATE INDEX hscan_idx ON hscan USING hnsw (emb vector_cosine_ops);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hscan ORDER BY emb <=> :q LIMIT 300;
SELECT id, round((emb <=> :q)::numeric, 6) AS dist FROM hscan ORDER BY emb <=> :q LIMIT 10;
SELECT count(*) AS rows, array_agg(id) = :'expected' AS same_as_sort
FROM (SELECT id FROM hscan ORDER BY emb <=> :q LIMIT 300) s;
RESET enable_seqscan;
DROP INDEX hscan_idx;

------------------------------------------------------------------------
-- vector_l1_ops
------------------------------------------------------------------------
SET enable_indexscan = off;
SELECT array_agg(id) AS expected FROM (SELECT id FROM hscan ORDER BY emb <+> :q) s \gset
RESET enable_indexscan;
CREATE INDEX hscan_idx ON hscan USING hnsw (emb vector_l1_ops);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hscan ORDER BY emb <+> :q LIMIT 300;
SELECT id, round((emb <+> :q)::numeric, 4) AS dist FROM hscan ORDER BY emb <+> :q LIMIT 10;
SELECT count(*) AS rows, array_agg(id) = :'expected' AS same_as_sort
FROM (SELECT id FROM hscan ORDER BY emb <+> :q LIMIT 300) s;
RESET enable_seqscan;
DROP INDEX hscan_idx;

------------------------------------------------------------------------
-- a query vector equal to a row finds that row first, at distance 0
------------------------------------------------------------------------
CREATE INDEX hscan_idx ON hscan USING hnsw (emb);
SET enable_seqscan = off;
SELECT s.id, h.id AS nearest, h.emb <-> s.emb AS dist
FROM (VALUES (1), (150), (300)) s0(id)
	JOIN hscan s ON s.id = s0.id
	CROSS JOIN LATERAL (SELECT id, emb FROM hscan ORDER BY emb <-> s.emb LIMIT 1) h
ORDER BY s.id;
RESET enable_seqscan;
DROP INDEX hscan_idx;
DROP TABLE hscan;

------------------------------------------------------------------------
-- duplicates: 30 rows of one vector are all returned, ahead of the rest
-- (duplicates inserted after the build: see hnsw_defects)
------------------------------------------------------------------------
CREATE TABLE hdup (id int, emb vector(3));
INSERT INTO hdup SELECT i, '[1,1,1]' FROM generate_series(1, 30) i;
INSERT INTO hdup SELECT 100 + i, ARRAY[i, i * 2, 5 - i]::vector FROM generate_series(1, 20) i;
CREATE INDEX hdup_idx ON hdup USING hnsw (emb);
SET enable_seqscan = off;
SELECT count(*) AS rows,
	   count(*) FILTER (WHERE emb = '[1,1,1]') AS duplicates,
	   array_agg(id ORDER BY id) FILTER (WHERE emb = '[1,1,1]') = ARRAY(SELECT generate_series(1, 30)) AS all_of_them
FROM (SELECT id, emb FROM hdup ORDER BY emb <-> '[1,1,1]' LIMIT 30) s;
-- and then the nearest others, in order
SELECT id, round((emb <-> '[1,1,1]')::numeric, 4) AS dist FROM
	(SELECT id, emb FROM hdup ORDER BY emb <-> '[1,1,1]' LIMIT 33) s
WHERE id > 100;
-- a query near, but not at, the duplicates finds them just the same
SELECT count(*) FILTER (WHERE emb = '[1,1,1]') AS duplicates
FROM (SELECT id, emb FROM hdup ORDER BY emb <-> '[1.1,0.9,1]' LIMIT 30) s;
-- and a row's own vector finds that row
SELECT id FROM hdup ORDER BY emb <-> '[5,10,0]' LIMIT 1;
RESET enable_seqscan;
DROP TABLE hdup;
-- under cosine, vectors of one direction are duplicates once normalized
CREATE TABLE hdup (id int, emb vector(3));
INSERT INTO hdup SELECT i, ARRAY[i, i, i]::vector FROM generate_series(1, 25) i;
INSERT INTO hdup SELECT 100 + i, ARRAY[i, 1, 0]::vector FROM generate_series(1, 10) i;
CREATE INDEX hdup_idx ON hdup USING hnsw (emb vector_cosine_ops);
SET enable_seqscan = off;
SELECT array_agg(id ORDER BY id) AS same_direction
FROM (SELECT id FROM hdup ORDER BY emb <=> '[2,2,2]' LIMIT 25) s;
RESET enable_seqscan;
DROP TABLE hdup;

------------------------------------------------------------------------
-- NULLs are not indexed, and are no error
------------------------------------------------------------------------
CREATE TABLE hnull (id int, emb vector(3));
INSERT INTO hnull
SELECT i, CASE WHEN i % 3 = 0 THEN NULL ELSE ARRAY[i, i + 1, i + 2]::vector END
FROM generate_series(1, 20) i;
CREATE INDEX hnull_idx ON hnull USING hnsw (emb);
INSERT INTO hnull VALUES (21, NULL), (22, '[0,1,2]');
SELECT reltuples FROM pg_class WHERE relname = 'hnull_idx';
SET enable_seqscan = off;
SELECT array_agg(id) AS ids FROM
	(SELECT id FROM hnull ORDER BY emb <-> '[0,0,0]' LIMIT 100) s;
-- a NULL query vector has no distance to anything: the index scan returns
-- LIMIT rows in no particular order, as a sequential scan does (more in
-- hnsw_null_query; a literal NULL is folded away by the planner, so it
-- comes as a parameter)
EXPLAIN (COSTS OFF)
SELECT id FROM hnull ORDER BY emb <-> (SELECT NULL::vector) LIMIT 5;
SELECT count(*) FROM
	(SELECT id FROM hnull ORDER BY emb <-> (SELECT NULL::vector) LIMIT 5) s;
PREPARE hnull_q(vector) AS SELECT id FROM hnull ORDER BY emb <-> $1 LIMIT 5;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE hnull_q(NULL);
CREATE TEMP TABLE hnull_rows AS EXECUTE hnull_q(NULL);
SELECT count(*) FROM hnull_rows;
EXECUTE hnull_q('[5,6,7]');
RESET plan_cache_mode;
DEALLOCATE hnull_q;
RESET enable_seqscan;
-- an index built over NULLs only is empty, and fills up later
CREATE TABLE hnull2 (id int, emb vector(3));
INSERT INTO hnull2 SELECT i, NULL FROM generate_series(1, 10) i;
CREATE INDEX hnull2_idx ON hnull2 USING hnsw (emb);
SET enable_seqscan = off;
SELECT id FROM hnull2 ORDER BY emb <-> '[0,0,0]' LIMIT 5;
UPDATE hnull2 SET emb = ARRAY[id, 0, 0]::vector WHERE id > 7;
SELECT id FROM hnull2 ORDER BY emb <-> '[0,0,0]' LIMIT 5;
RESET enable_seqscan;
DROP TABLE hnull, hnull2;

------------------------------------------------------------------------
-- cosine: zero vectors have no direction; they are not indexed, and are
-- no error.  A zero query vector has no distance to anything: the index
-- returns LIMIT rows in no particular order, as a sequential scan does.
------------------------------------------------------------------------
CREATE TABLE hzero (id int, emb vector(3));
INSERT INTO hzero
SELECT i, CASE WHEN i % 4 = 0 THEN '[0,0,0]' ELSE ARRAY[i, 1, 0]::vector END
FROM generate_series(1, 20) i;
CREATE INDEX hzero_idx ON hzero USING hnsw (emb vector_cosine_ops);
INSERT INTO hzero VALUES (21, '[0,0,0]'), (22, '[-1,1,0]');
SELECT reltuples FROM pg_class WHERE relname = 'hzero_idx';
SET enable_seqscan = off;
SELECT array_agg(id) AS ids FROM
	(SELECT id FROM hzero ORDER BY emb <=> '[1,1,0]' LIMIT 100) s;
SELECT count(*) FROM
	(SELECT id FROM hzero ORDER BY emb <=> '[0,0,0]' LIMIT 5) s;
RESET enable_seqscan;
-- a plain sort puts them last (their distance is NaN)
SET enable_indexscan = off;
SELECT array_agg(id) AS ids FROM
	(SELECT id FROM hzero ORDER BY emb <=> '[1,1,0]' LIMIT 100) s;
RESET enable_indexscan;
-- the other metrics index zero vectors like any other
CREATE INDEX hzero_l2_idx ON hzero USING hnsw (emb vector_l2_ops);
SET enable_seqscan = off;
SELECT array_agg(id ORDER BY id) AS zeros FROM
	(SELECT id FROM hzero ORDER BY emb <-> '[0,0,0]' LIMIT 6) s;
RESET enable_seqscan;
DROP TABLE hzero;

------------------------------------------------------------------------
-- a query vector of other dimensions is an error, with or without index
------------------------------------------------------------------------
CREATE TABLE hdim (id int, emb vector(3));
INSERT INTO hdim SELECT i, ARRAY[i, i, i]::vector FROM generate_series(1, 10) i;
CREATE INDEX hdim_idx ON hdim USING hnsw (emb);
SET enable_seqscan = off;
SELECT id FROM hdim ORDER BY emb <-> '[1,2]' LIMIT 5;
SELECT id FROM hdim ORDER BY emb <-> '[1,2,3,4]' LIMIT 5;
SELECT id FROM hdim ORDER BY emb <-> (SELECT '[1,2,3,4]'::vector) LIMIT 5;
RESET enable_seqscan;
SET enable_indexscan = off;
SELECT id FROM hdim ORDER BY emb <-> '[1,2]' LIMIT 5;
RESET enable_indexscan;
DROP TABLE hdim;

------------------------------------------------------------------------
-- dimensions: the column's, or without them the rows' (hnsw_alter), at
-- most 2000
------------------------------------------------------------------------
CREATE TABLE hnodim (id int, emb vector);
INSERT INTO hnodim VALUES (1, '[1,2,3]');
CREATE INDEX ON hnodim USING hnsw (emb);
CREATE INDEX ON hnodim USING hnsw ((emb::vector(3)));
DROP TABLE hnodim;

CREATE TABLE h2001 (id int, emb vector(2001));
CREATE INDEX ON h2001 USING hnsw (emb);
INSERT INTO h2001 VALUES (1, array_fill(1, ARRAY[2001])::vector);
CREATE INDEX ON h2001 USING hnsw (emb);
CREATE INDEX ON h2001 USING hnsw (emb vector_cosine_ops);
DROP TABLE h2001;

-- 2000 is indexable.  Row i has x_j = (i * j) mod 17.
CREATE TABLE h2000 (id int, emb vector(2000));
INSERT INTO h2000
SELECT i, (SELECT array_agg((i * j) % 17 ORDER BY j) FROM generate_series(1, 2000) j)::vector
FROM generate_series(1, 12) i;
CREATE INDEX h2000_idx ON h2000 USING hnsw (emb);
CREATE INDEX h2000_cos_idx ON h2000 USING hnsw (emb vector_cosine_ops);
-- the query: row 5 with its first 100 coordinates moved by 0.5
CREATE TABLE h2000_q AS
SELECT (SELECT array_agg(CASE WHEN j <= 100 THEN (5 * j) % 17 + 0.5 ELSE (5 * j) % 17 END ORDER BY j)
		FROM generate_series(1, 2000) j)::vector(2000) AS q;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM h2000 ORDER BY emb <-> (SELECT q FROM h2000_q) LIMIT 3;
SELECT id FROM h2000 ORDER BY emb <-> (SELECT q FROM h2000_q) LIMIT 3;
SELECT id FROM h2000 ORDER BY emb <=> (SELECT q FROM h2000_q) LIMIT 3;
-- a row inserted after the build, nearer still
INSERT INTO h2000 SELECT 100, q FROM h2000_q;
SELECT id FROM h2000 ORDER BY emb <-> (SELECT q FROM h2000_q) LIMIT 3;
SELECT id FROM h2000 ORDER BY emb <=> (SELECT q FROM h2000_q) LIMIT 3;
RESET enable_seqscan;
SET enable_indexscan = off;
SELECT id FROM h2000 ORDER BY emb <-> (SELECT q FROM h2000_q) LIMIT 3;
SELECT id FROM h2000 ORDER BY emb <=> (SELECT q FROM h2000_q) LIMIT 3;
RESET enable_indexscan;
DROP TABLE h2000, h2000_q;

-- From 256 dimensions on, a search stops computing a distance once it is
-- past the worst of its ef best (only a lower bound is known then); an
-- iterative scan must still meet such rows again in a later round, at
-- their exact distance.  Six clusters far apart, row i in cluster i % 6;
-- the query sits in cluster 1 and the filter keeps cluster 0, whose rows
-- the first round only met from afar.
SELECT setseed(0.25);
CREATE TABLE h512 (id int, emb vector(512));
INSERT INTO h512
SELECT i, (SELECT array_agg(10 * (i % 6) + random() ORDER BY j) FROM generate_series(1, 512) j)::vector
FROM generate_series(1, 600) i;
CREATE INDEX h512_idx ON h512 USING hnsw (emb);
CREATE TABLE h512_q AS
SELECT (SELECT array_agg(10 + random() ORDER BY j) FROM generate_series(1, 512) j)::vector(512) AS q;
SET enable_seqscan = off;
SET hnsw.ef_search = 10;
SET hnsw.iterative_scan = relaxed_order;
EXPLAIN (COSTS OFF)
SELECT id FROM h512 WHERE id % 6 = 0 ORDER BY emb <-> (SELECT q FROM h512_q) LIMIT 100;
-- every one of the 100 rows of cluster 0
SELECT count(*), count(DISTINCT id) FROM (
  SELECT id FROM h512 WHERE id % 6 = 0 ORDER BY emb <-> (SELECT q FROM h512_q) LIMIT 100) s;
-- strict order: in distance order, nearest first
SET hnsw.iterative_scan = strict_order;
SELECT count(*) > 0 AS some, bool_and(d >= prev) AS ordered FROM (
  SELECT d, lag(d, 1, 0::float8) OVER (ORDER BY n) AS prev FROM (
    SELECT row_number() OVER () AS n, emb <-> (SELECT q FROM h512_q) AS d
    FROM (SELECT emb FROM h512 WHERE id % 6 = 0
          ORDER BY emb <-> (SELECT q FROM h512_q) LIMIT 100) s) r) t;
RESET hnsw.iterative_scan;
RESET enable_seqscan;
DROP TABLE h512, h512_q;

RESET hnsw.ef_search;
