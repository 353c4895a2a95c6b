-- hnsw index under data changes: inserts after the build, an index built
-- on an empty table, TRUNCATE, DELETE and VACUUM, UPDATE, rollback,
-- unlogged and temporary tables, a build that outgrows
-- maintenance_work_mem, and rescans (the index scan run once per outer row)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- rows and searches stay small enough for an exhaustive search
SET hnsw.ef_search = 1000;

-- 150 rows of 3 dimensions (Weyl sequences: deterministic, irregular);
-- rows 151..300 of the same sequence are inserted later
CREATE TABLE hdml (id int, emb vector(3));
CREATE FUNCTION hdml_row(i int) RETURNS vector LANGUAGE sql IMMUTABLE AS $$
	SELECT ARRAY[round((i * 0.7548776662) % 1 * 100, 2),
				 round((i * 0.5698402910) % 1 * 100, 2) - 50,
				 round((i * 0.3819660113) % 1 * 100, 2) - 20]::vector
$$;
\set q '''[10.5,-40.25,3.125]'''

------------------------------------------------------------------------
-- rows inserted after the build are found at once
------------------------------------------------------------------------
INSERT INTO hdml SELECT i, hdml_row(i) FROM generate_series(1, 150) i;
CREATE INDEX hdml_idx ON hdml USING hnsw (emb);
SET enable_seqscan = off;
SELECT array_agg(id) FROM (SELECT id FROM hdml ORDER BY emb <-> :q LIMIT 5) s;
INSERT INTO hdml VALUES (1000, '[10.5,-40.25,3]');
SELECT array_agg(id) FROM (SELECT id FROM hdml ORDER BY emb <-> :q LIMIT 5) s;
-- 150 more, one statement
INSERT INTO hdml SELECT i, hdml_row(i) FROM generate_series(151, 300) i;
EXPLAIN (COSTS OFF) SELECT id FROM hdml ORDER BY emb <-> :q LIMIT 5;
SELECT array_agg(id) FROM (SELECT id FROM hdml ORDER BY emb <-> :q LIMIT 5) s;
SELECT count(*) AS rows FROM (SELECT id FROM hdml ORDER BY emb <-> :q LIMIT 1000) s;
-- and the whole order is a plain sort's
SELECT array_agg(id) AS idx FROM (SELECT id FROM hdml ORDER BY emb <-> :q LIMIT 1000) s \gset
RESET enable_seqscan;
SET enable_indexscan = off;
SELECT array_agg(id) = :'idx' AS same_as_sort FROM (SELECT id FROM hdml ORDER BY emb <-> :q LIMIT 1000) s;
RESET enable_indexscan;
-- a row inserted in a transaction that rolls back is not returned
BEGIN;
INSERT INTO hdml VALUES (2000, '[10.5,-40.25,3.125]');
SET LOCAL enable_seqscan = off;
SELECT array_agg(id) FROM (SELECT id FROM hdml ORDER BY emb <-> :q LIMIT 3) s;
ROLLBACK;
SET enable_seqscan = off;
SELECT array_agg(id) FROM (SELECT id FROM hdml ORDER BY emb <-> :q LIMIT 3) s;
RESET enable_seqscan;

------------------------------------------------------------------------
-- UPDATE moves a row: found at its new place, no longer at the old one
------------------------------------------------------------------------
UPDATE hdml SET emb = '[90,40,70]' WHERE id = 1000;
SET enable_seqscan = off;
SELECT array_agg(id) FROM (SELECT id FROM hdml ORDER BY emb <-> :q LIMIT 3) s;
SELECT array_agg(id) FROM (SELECT id FROM hdml ORDER BY emb <-> '[90,40,70]' LIMIT 3) s;
RESET enable_seqscan;
SET enable_indexscan = off;
SELECT array_agg(id) FROM (SELECT id FROM hdml ORDER BY emb <-> '[90,40,70]' LIMIT 3) s;
RESET enable_indexscan;

------------------------------------------------------------------------
-- DELETE and VACUUM: deleted rows are not returned, before or after the
-- vacuum, and rows inserted after it are
------------------------------------------------------------------------
DELETE FROM hdml WHERE id % 2 = 0;
SET enable_seqscan = off;
SELECT array_agg(id) FROM (SELECT id FROM hdml ORDER BY emb <-> :q LIMIT 5) s;
VACUUM hdml;
SELECT reltuples FROM pg_class WHERE relname = 'hdml_idx';
SELECT array_agg(id) FROM (SELECT id FROM hdml ORDER BY emb <-> :q LIMIT 5) s;
SELECT count(*) AS rows, count(*) FILTER (WHERE id % 2 = 0) AS even
FROM (SELECT id FROM hdml ORDER BY emb <-> :q LIMIT 1000) s;
SELECT array_agg(id) AS idx FROM (SELECT id FROM hdml ORDER BY emb <-> :q LIMIT 1000) s \gset
RESET enable_seqscan;
SET enable_indexscan = off;
SELECT array_agg(id) = :'idx' AS same_as_sort FROM (SELECT id FROM hdml ORDER BY emb <-> :q LIMIT 1000) s;
RESET enable_indexscan;
-- the deleted rows' vectors come back under new ids
INSERT INTO hdml SELECT i + 10000, hdml_row(i) FROM generate_series(2, 300, 2) i;
SET enable_seqscan = off;
SELECT array_agg(id) FROM (SELECT id FROM hdml ORDER BY emb <-> :q LIMIT 5) s;
SELECT count(*) AS rows FROM (SELECT id FROM hdml ORDER BY emb <-> :q LIMIT 1000) s;
-- delete everything: nothing is returned, and the index still takes rows
DELETE FROM hdml;
VACUUM hdml;
SELECT reltuples FROM pg_class WHERE relname = 'hdml_idx';
SELECT id FROM hdml ORDER BY emb <-> :q LIMIT 5;
INSERT INTO hdml VALUES (1, '[1,1,1]'), (2, '[2,2,2]'), (3, '[3,3,3]');
SELECT id FROM hdml ORDER BY emb <-> '[2.9,2.9,2.9]' LIMIT 5;
RESET enable_seqscan;

------------------------------------------------------------------------
-- TRUNCATE empties the index; it takes rows again afterwards
------------------------------------------------------------------------
TRUNCATE hdml;
SELECT pg_relation_size('hdml_idx') > 0 AS has_metapage;
SET enable_seqscan = off;
SELECT id FROM hdml ORDER BY emb <-> :q LIMIT 5;
INSERT INTO hdml SELECT i, hdml_row(i) FROM generate_series(1, 100) i;
SELECT array_agg(id) FROM (SELECT id FROM hdml ORDER BY emb <-> :q LIMIT 5) s;
SELECT count(*) AS rows FROM (SELECT id FROM hdml ORDER BY emb <-> :q LIMIT 1000) s;
RESET enable_seqscan;
SET enable_indexscan = off;
SELECT array_agg(id) FROM (SELECT id FROM hdml ORDER BY emb <-> :q LIMIT 5) s;
RESET enable_indexscan;
DROP TABLE hdml;

------------------------------------------------------------------------
-- an index created on an empty table: every row comes through inserts
------------------------------------------------------------------------
CREATE TABLE hempty (id int, emb vector(3));
CREATE INDEX hempty_idx ON hempty USING hnsw (emb vector_l1_ops);
SELECT reltuples FROM pg_class WHERE relname = 'hempty_idx';
SET enable_seqscan = off;
SELECT id FROM hempty ORDER BY emb <+> :q LIMIT 5;
INSERT INTO hempty VALUES (1, '[1,1,1]');
SELECT id FROM hempty ORDER BY emb <+> :q LIMIT 5;
INSERT INTO hempty SELECT i, hdml_row(i) FROM generate_series(2, 200) i;
SELECT array_agg(id) AS idx FROM (SELECT id FROM hempty ORDER BY emb <+> :q LIMIT 1000) s \gset
SELECT cardinality(:'idx'::int[]) AS rows;
SELECT array_agg(id) FROM (SELECT id FROM hempty ORDER BY emb <+> :q LIMIT 5) s;
RESET enable_seqscan;
SET enable_indexscan = off;
SELECT array_agg(id) = :'idx' AS same_as_sort FROM (SELECT id FROM hempty ORDER BY emb <+> :q LIMIT 1000) s;
RESET enable_indexscan;
DROP TABLE hempty;

------------------------------------------------------------------------
-- unlogged table: the index gets an init fork and works like any other
------------------------------------------------------------------------
CREATE UNLOGGED TABLE hunlogged (id int, emb vector(3));
INSERT INTO hunlogged SELECT i, hdml_row(i) FROM generate_series(1, 100) i;
CREATE INDEX hunlogged_idx ON hunlogged USING hnsw (emb vector_cosine_ops);
SELECT relpersistence FROM pg_class WHERE relname = 'hunlogged_idx';
SELECT pg_relation_size('hunlogged_idx', 'init') AS init_fork_bytes;
INSERT INTO hunlogged SELECT i, hdml_row(i) FROM generate_series(101, 200) i;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hunlogged ORDER BY emb <=> :q LIMIT 5;
SELECT array_agg(id) AS idx FROM (SELECT id FROM hunlogged ORDER BY emb <=> :q LIMIT 1000) s \gset
SELECT cardinality(:'idx'::int[]) AS rows;
SELECT array_agg(id) FROM (SELECT id FROM hunlogged ORDER BY emb <=> :q LIMIT 5) s;
RESET enable_seqscan;
SET enable_indexscan = off;
SELECT array_agg(id) = :'idx' AS same_as_sort FROM (SELECT id FROM hunlogged ORDER BY emb <=> :q LIMIT 1000) s;
RESET enable_indexscan;
-- built empty, then filled
TRUNCATE hunlogged;
SELECT pg_relation_size('hunlogged_idx', 'init') AS init_fork_bytes;
INSERT INTO hunlogged VALUES (1, '[1,0,0]'), (2, '[0,1,0]'), (3, '[1,1,0]');
SET enable_seqscan = off;
SELECT id FROM hunlogged ORDER BY emb <=> '[1,0.9,0]' LIMIT 5;
RESET enable_seqscan;
DROP TABLE hunlogged;

------------------------------------------------------------------------
-- temporary table
------------------------------------------------------------------------
CREATE TEMP TABLE htemp (id int, emb vector(3));
INSERT INTO htemp SELECT i, hdml_row(i) FROM generate_series(1, 100) i;
CREATE INDEX htemp_idx ON htemp USING hnsw (emb vector_ip_ops);
INSERT INTO htemp VALUES (1000, '[100,-100,100]');
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM htemp ORDER BY emb <#> :q LIMIT 5;
SELECT array_agg(id) FROM (SELECT id FROM htemp ORDER BY emb <#> :q LIMIT 5) s;
RESET enable_seqscan;
SET enable_indexscan = off;
SELECT array_agg(id) FROM (SELECT id FROM htemp ORDER BY emb <#> :q LIMIT 5) s;
RESET enable_indexscan;
DROP TABLE htemp;

------------------------------------------------------------------------
-- a build that outgrows maintenance_work_mem goes on with inserts (the
-- NOTICE names the row count, which varies: only its SQLSTATE is shown)
------------------------------------------------------------------------
CREATE TABLE hspill (id int, emb vector(300));
INSERT INTO hspill
SELECT i, (SELECT array_agg((i * i * 7 + i * j * 13 + j * j * 3 + j * 5) % 1009 ORDER BY j)
		   FROM generate_series(1, 300) j)::vector
FROM generate_series(1, 1000) i;
SET maintenance_work_mem = '1MB';
\set VERBOSITY sqlstate
CREATE INDEX hspill_idx ON hspill USING hnsw (emb);
\set VERBOSITY default
RESET maintenance_work_mem;
SELECT reltuples FROM pg_class WHERE relname = 'hspill_idx';
SET enable_seqscan = off;
-- every row is reachable, and finds itself: rows from before and after
-- the spill alike
SELECT count(*) AS rows FROM
	(SELECT id FROM hspill ORDER BY emb <-> (SELECT emb FROM hspill WHERE id = 500) LIMIT 1000) s;
SELECT count(*) FILTER (WHERE n.id = q.id) AS found_itself, count(*) AS queries
FROM hspill q
	CROSS JOIN LATERAL (SELECT id FROM hspill ORDER BY hspill.emb <-> q.emb LIMIT 1) n;
SELECT q.id, (SELECT array_agg(id) FROM
				(SELECT id FROM hspill ORDER BY emb <-> q.emb LIMIT 3) s) AS nearest
FROM hspill q WHERE q.id IN (1, 500, 1000) ORDER BY q.id;
RESET enable_seqscan;
SET enable_indexscan = off;
SELECT q.id, (SELECT array_agg(id) FROM
				(SELECT id FROM hspill ORDER BY emb <-> q.emb LIMIT 3) s) AS nearest
FROM hspill q WHERE q.id IN (1, 500, 1000) ORDER BY q.id;
RESET enable_indexscan;
DROP TABLE hspill;

------------------------------------------------------------------------
-- rescans: one index scan per outer row, through a subplan and through
-- a LATERAL join; a NULL outer vector gets LIMIT rows in no particular
-- order, as from a sequential scan (shown as 0s), and the scan goes back
-- to searching for the next
------------------------------------------------------------------------
CREATE TABLE hres (id int, emb vector(3));
INSERT INTO hres SELECT i, hdml_row(i) FROM generate_series(1, 200) i;
CREATE INDEX hres_idx ON hres USING hnsw (emb);
CREATE TABLE hres_q (id int, emb vector(3));
INSERT INTO hres_q VALUES
	(1, '[10.5,-40.25,3.125]'), (2, '[50,0,30]'), (3, '[90,45,75]'),
	(4, NULL), (5, '[0,-50,-20]');
ANALYZE hres, hres_q;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT q.id, (SELECT array_agg(CASE WHEN q.emb IS NULL THEN 0 ELSE id END) FROM
				(SELECT id FROM hres ORDER BY hres.emb <-> q.emb LIMIT 3) s) AS nearest
FROM hres_q q ORDER BY q.id;
SELECT q.id, (SELECT array_agg(CASE WHEN q.emb IS NULL THEN 0 ELSE id END) FROM
				(SELECT id FROM hres ORDER BY hres.emb <-> q.emb LIMIT 3) s) AS nearest
FROM hres_q q ORDER BY q.id;
EXPLAIN (COSTS OFF)
SELECT q.id, CASE WHEN q.emb IS NULL THEN 0 ELSE n.id END AS nearest FROM hres_q q
	CROSS JOIN LATERAL (SELECT id FROM hres ORDER BY hres.emb <-> q.emb LIMIT 2) n
ORDER BY q.id, n.id;
SELECT q.id, CASE WHEN q.emb IS NULL THEN 0 ELSE n.id END AS nearest FROM hres_q q
	CROSS JOIN LATERAL (SELECT id FROM hres ORDER BY hres.emb <-> q.emb LIMIT 2) n
ORDER BY q.id, n.id;
-- each row of hres as a query finds itself first
SELECT count(*) FILTER (WHERE n.id = q.id) AS found_itself, count(*) AS queries
FROM hres q
	CROSS JOIN LATERAL (SELECT id FROM hres ORDER BY hres.emb <-> q.emb LIMIT 1) n;
RESET enable_seqscan;
SET enable_indexscan = off;
SELECT q.id, (SELECT array_agg(id) FROM
				(SELECT id FROM hres ORDER BY hres.emb <-> q.emb LIMIT 3) s) AS nearest
FROM hres_q q WHERE q.emb IS NOT NULL ORDER BY q.id;
RESET enable_indexscan;
DROP TABLE hres, hres_q;

DROP FUNCTION hdml_row(int);
RESET hnsw.ef_search;
