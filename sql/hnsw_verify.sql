-- hnsw_verify(): the index verifier on sound indexes (exact summaries),
-- with and without heapallindexed, after inserts, duplicates, DELETE and
-- VACUUM, on empty, unlogged, temporary, partial and expression indexes and
-- every opclass; its errors on what is not an hnsw index; its privileges.
-- Damaged indexes are the business of test/t/030_hnsw_verify_corruption.pl.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- Levels are drawn at random, so the page count and the levels vary from
-- run to run: hv_summary shows what is exact (element and heap TID counts)
-- and checks the rest against what must hold whatever the levels.
CREATE FUNCTION hv_summary(idx regclass, heapallindexed boolean DEFAULT false)
RETURNS TABLE (elements bigint, heap_tids bigint, deleted bigint,
			   unreachable bigint, unreachable_upper bigint,
			   pages_match boolean, top_level_ok boolean)
LANGUAGE sql AS $$
	SELECT elements, heap_tids, deleted, unreachable, unreachable_upper,
		   pages = pg_relation_size(idx) / current_setting('block_size')::int,
		   CASE WHEN elements = deleted THEN max_level = -1
				ELSE entry_level = max_level AND entry_level BETWEEN 0 AND 16 END
	FROM hnsw_verify(idx, heapallindexed)
$$;

-- 200 rows of 3 dimensions (Weyl sequences: deterministic, irregular)
CREATE FUNCTION hv_row(i int) RETURNS vector LANGUAGE sql IMMUTABLE AS $$
	SELECT ARRAY[round((i * 0.7548776662) % 1 * 100, 2),
				 round((i * 0.5698402910) % 1 * 100, 2) - 50,
				 round((i * 0.3819660113) % 1 * 100, 2) - 20]::vector
$$;
-- (fillfactor 50 leaves room for HOT updates)
CREATE TABLE hv (id int, emb vector(3)) WITH (fillfactor = 50);
INSERT INTO hv SELECT i, hv_row(i) FROM generate_series(1, 200) i;
CREATE INDEX hv_idx ON hv USING hnsw (emb);

------------------------------------------------------------------------
-- a fresh index
------------------------------------------------------------------------
SELECT * FROM hv_summary('hv_idx');
SELECT * FROM hv_summary('hv_idx', true);
-- the columns, and the default of heapallindexed
SELECT pages > 1 AS pages, elements, heap_tids, deleted,
	   entry_level >= 0 AS entry_level, max_level >= 0 AS max_level, unreachable,
	   unreachable_upper
FROM hnsw_verify('hv_idx');
SELECT (hnsw_verify('hv_idx'::regclass)).elements;
-- NULL arguments: the function is strict
SELECT * FROM hnsw_verify(NULL);
SELECT * FROM hnsw_verify('hv_idx', NULL);

------------------------------------------------------------------------
-- after inserts, NULLs, duplicates, HOT updates
------------------------------------------------------------------------
INSERT INTO hv SELECT i, hv_row(i) FROM generate_series(201, 300) i;
INSERT INTO hv VALUES (301, NULL), (302, NULL);
SELECT * FROM hv_summary('hv_idx', true);
-- rows with one vector share one element: 9 heap TIDs in it, the rest on
-- its chain of duplicate tuples (64 each); 150 make a chain of 3
INSERT INTO hv SELECT 400 + i, '[7,7,7]' FROM generate_series(1, 11) i;
SELECT * FROM hv_summary('hv_idx', true);
INSERT INTO hv SELECT 500 + i, '[7,7,7]' FROM generate_series(1, 139) i;
SELECT * FROM hv_summary('hv_idx', true);
-- a HOT update keeps the index entry of the chain's root
UPDATE hv SET id = -id WHERE id BETWEEN 1 AND 5;
SELECT * FROM hv_summary('hv_idx', true);

------------------------------------------------------------------------
-- DELETE and VACUUM: elements left without heap TIDs count as deleted
------------------------------------------------------------------------
DELETE FROM hv WHERE id % 4 = 0;
SELECT * FROM hv_summary('hv_idx', true);
VACUUM hv;
SELECT * FROM hv_summary('hv_idx', true);
-- inserts may reuse the freed slots: live elements and heap TIDs are exact
INSERT INTO hv SELECT i, hv_row(i) FROM generate_series(1001, 1040) i;
SELECT elements - deleted AS live_elements, heap_tids, unreachable, unreachable_upper
FROM hnsw_verify('hv_idx', true);
-- every row gone
DELETE FROM hv;
VACUUM hv;
SELECT elements = deleted AS all_deleted, heap_tids, entry_level, unreachable, unreachable_upper
FROM hnsw_verify('hv_idx', true);
INSERT INTO hv SELECT i, hv_row(i) FROM generate_series(1, 50) i;
SELECT elements - deleted AS live_elements, heap_tids, unreachable, unreachable_upper
FROM hnsw_verify('hv_idx', true);

------------------------------------------------------------------------
-- empty indexes
------------------------------------------------------------------------
CREATE TABLE hv_empty (emb vector(4));
CREATE INDEX hv_empty_idx ON hv_empty USING hnsw (emb);
SELECT * FROM hnsw_verify('hv_empty_idx', true);
-- rows, but nothing to index
INSERT INTO hv_empty VALUES (NULL), (NULL);
SELECT * FROM hnsw_verify('hv_empty_idx', true);
TRUNCATE hv_empty;
SELECT * FROM hnsw_verify('hv_empty_idx', true);

------------------------------------------------------------------------
-- each opclass (cosine does not index zero vectors; inner product, which
-- is not a metric, is linked by L2 so that no element is left without a
-- way in)
------------------------------------------------------------------------
CREATE TABLE hv_ops (id int, emb vector(3));
INSERT INTO hv_ops SELECT i, hv_row(i) FROM generate_series(1, 120) i;
INSERT INTO hv_ops VALUES (0, '[0,0,0]');
CREATE INDEX hv_ops_l2 ON hv_ops USING hnsw (emb vector_l2_ops);
CREATE INDEX hv_ops_ip ON hv_ops USING hnsw (emb vector_ip_ops);
CREATE INDEX hv_ops_cos ON hv_ops USING hnsw (emb vector_cosine_ops);
CREATE INDEX hv_ops_l1 ON hv_ops USING hnsw (emb vector_l1_ops);
SELECT 'l2' AS opclass, * FROM hv_summary('hv_ops_l2', true)
UNION ALL SELECT 'ip', * FROM hv_summary('hv_ops_ip', true)
UNION ALL SELECT 'cosine', * FROM hv_summary('hv_ops_cos', true)
UNION ALL SELECT 'l1', * FROM hv_summary('hv_ops_l1', true);
-- and through the insert path
INSERT INTO hv_ops SELECT i, hv_row(i) FROM generate_series(121, 160) i;
INSERT INTO hv_ops VALUES (-1, '[0,0,0]');
SELECT 'l2' AS opclass, * FROM hv_summary('hv_ops_l2', true)
UNION ALL SELECT 'ip', * FROM hv_summary('hv_ops_ip', true)
UNION ALL SELECT 'cosine', * FROM hv_summary('hv_ops_cos', true)
UNION ALL SELECT 'l1', * FROM hv_summary('hv_ops_l1', true);

------------------------------------------------------------------------
-- other kinds of index and table
------------------------------------------------------------------------
-- options: m = 4 gives small neighbor tuples, many levels
CREATE INDEX hv_ops_m4 ON hv_ops USING hnsw (emb) WITH (m = 4, ef_construction = 16);
-- a build links layer 0 only; with m = 4 an element above it is now and
-- then left unreachable there until VACUUM links it
VACUUM hv_ops;
SELECT * FROM hv_summary('hv_ops_m4', true);
-- partial: rows outside the predicate are not missing
CREATE INDEX hv_ops_part ON hv_ops USING hnsw (emb) WHERE id % 2 = 0;
SELECT * FROM hv_summary('hv_ops_part', true);
-- expression
CREATE INDEX hv_ops_expr ON hv_ops USING hnsw (((emb + '[1,1,1]')::vector(3)));
SELECT * FROM hv_summary('hv_ops_expr', true);
-- unlogged
CREATE UNLOGGED TABLE hv_unlogged (emb vector(3));
INSERT INTO hv_unlogged SELECT hv_row(i) FROM generate_series(1, 80) i;
CREATE INDEX hv_unlogged_idx ON hv_unlogged USING hnsw (emb);
INSERT INTO hv_unlogged SELECT hv_row(i) FROM generate_series(81, 100) i;
SELECT * FROM hv_summary('hv_unlogged_idx', true);
-- temporary
CREATE TEMP TABLE hv_temp (emb vector(3));
INSERT INTO hv_temp SELECT hv_row(i) FROM generate_series(1, 60) i;
CREATE INDEX hv_temp_idx ON hv_temp USING hnsw (emb);
SELECT * FROM hv_summary('hv_temp_idx', true);
-- inside a transaction that changed the table
BEGIN;
INSERT INTO hv_temp SELECT hv_row(i) FROM generate_series(61, 70) i;
DELETE FROM hv_temp WHERE emb = hv_row(1);
SELECT * FROM hv_summary('hv_temp_idx', true);
ROLLBACK;
SELECT * FROM hv_summary('hv_temp_idx', true);
-- duplicates at build time
CREATE TABLE hv_dup (emb vector(3));
INSERT INTO hv_dup SELECT hv_row(i % 7) FROM generate_series(1, 700) i;
CREATE INDEX hv_dup_idx ON hv_dup USING hnsw (emb);
SELECT * FROM hv_summary('hv_dup_idx', true);
DELETE FROM hv_dup WHERE ctid::text LIKE '%1)';
VACUUM hv_dup;
SELECT * FROM hv_summary('hv_dup_idx', true);
-- a larger index, built in memory, then spilled to pages
SET maintenance_work_mem = '1MB';
CREATE TABLE hv_big (emb vector(16));
INSERT INTO hv_big SELECT ARRAY(SELECT (i * j * 0.6180339887) % 1 FROM generate_series(1, 16) j)::vector
FROM generate_series(1, 3000) i;
SET client_min_messages = warning;
CREATE INDEX hv_big_idx ON hv_big USING hnsw (emb);
RESET client_min_messages;
RESET maintenance_work_mem;
SELECT * FROM hv_summary('hv_big_idx', true);

-- the column's dimensions dropped (ALTER COLUMN ... TYPE vector keeps the
-- index): the metapage's dimensions stand (the heap cross-check, which
-- reads rows through the index's settings, is TAP 061's)
CREATE TABLE hv_notypmod (emb vector(3));
INSERT INTO hv_notypmod SELECT hv_row(i) FROM generate_series(1, 50) i;
CREATE INDEX hv_notypmod_idx ON hv_notypmod USING hnsw (emb);
ALTER TABLE hv_notypmod ALTER COLUMN emb TYPE vector;
SELECT * FROM hv_summary('hv_notypmod_idx');
DROP TABLE hv_notypmod;

------------------------------------------------------------------------
-- what is not an hnsw index
------------------------------------------------------------------------
CREATE INDEX hv_btree ON hv_ops (id);
SELECT * FROM hnsw_verify('hv_btree');
SELECT * FROM hnsw_verify('hv_ops');
CREATE VIEW hv_view AS SELECT * FROM hv_ops;
SELECT * FROM hnsw_verify('hv_view');
CREATE SEQUENCE hv_seq;
SELECT * FROM hnsw_verify('hv_seq');
SELECT * FROM hnsw_verify(0);
-- a partitioned index is not checked itself; its partitions are
CREATE TABLE hv_parted (id int, emb vector(3)) PARTITION BY RANGE (id);
CREATE TABLE hv_parted_1 PARTITION OF hv_parted FOR VALUES FROM (0) TO (100);
INSERT INTO hv_parted SELECT i, hv_row(i) FROM generate_series(0, 99) i;
CREATE INDEX hv_parted_idx ON hv_parted USING hnsw (emb);
SELECT * FROM hnsw_verify('hv_parted_idx');
SELECT * FROM hv_summary('hv_parted_1_emb_idx', true);

------------------------------------------------------------------------
-- privileges: EXECUTE is granted by the administrator, and the caller
-- must be able to read the table
------------------------------------------------------------------------
CREATE ROLE regress_hv_user;
SET ROLE regress_hv_user;
SELECT * FROM hnsw_verify('hv_ops_l2');
RESET ROLE;
GRANT EXECUTE ON FUNCTION hnsw_verify(regclass, boolean) TO regress_hv_user;
SET ROLE regress_hv_user;
SELECT * FROM hnsw_verify('hv_ops_l2');
RESET ROLE;
GRANT SELECT ON hv_ops TO regress_hv_user;
SET ROLE regress_hv_user;
SELECT elements, heap_tids FROM hnsw_verify('hv_ops_l2', true);
RESET ROLE;
REVOKE ALL ON hv_ops FROM regress_hv_user;
REVOKE EXECUTE ON FUNCTION hnsw_verify(regclass, boolean) FROM regress_hv_user;
DROP ROLE regress_hv_user;

DROP TABLE hv, hv_empty, hv_ops, hv_unlogged, hv_temp, hv_dup, hv_big, hv_parted CASCADE;
DROP SEQUENCE hv_seq;
DROP FUNCTION hv_summary(regclass, boolean);
DROP FUNCTION hv_row(int);
