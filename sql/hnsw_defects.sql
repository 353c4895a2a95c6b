-- Behaviour of the hnsw index that is wrong today.  The expected output is
-- the CORRECT behaviour, so this suite fails until each defect is fixed;
-- every other hnsw suite passes and keeps guarding the rest.  Each section
-- says what is wrong and what was seen instead.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;
\set SHOW_CONTEXT never

CREATE FUNCTION hdef_row(i int) RETURNS vector LANGUAGE sql IMMUTABLE AS $$
	SELECT ARRAY[round((i * 0.7548776662) % 1 * 100, 2),
				 round((i * 0.5698402910) % 1 * 100, 2) - 50,
				 round((i * 0.3819660113) % 1 * 100, 2) - 20]::vector
$$;
\set q '''[10.5,-40.25,3.125]'''

------------------------------------------------------------------------
-- 1. ALTER INDEX SET (m = ...) on a built index.  The pages were laid out
-- for the m of the build, but the index then reads them with the new m:
-- "index ... has a damaged neighbor tuple" (m = 5), or silently misread
-- lists (m = 8) and inserts written in that layout, which later fail.
-- Correct: the built index keeps working (the new m applies to the next
-- build, or ALTER refuses to change it).
------------------------------------------------------------------------
CREATE TABLE hdef_alter (id int, emb vector(3));
INSERT INTO hdef_alter SELECT i, hdef_row(i) FROM generate_series(1, 200) i;
CREATE INDEX hdef_alter_idx ON hdef_alter USING hnsw (emb);
SET hnsw.ef_search = 1000;
SET enable_seqscan = off;
SELECT array_agg(id) FROM (SELECT id FROM hdef_alter ORDER BY emb <-> :q LIMIT 5) s;
ALTER INDEX hdef_alter_idx SET (m = 5);
SELECT array_agg(id) FROM (SELECT id FROM hdef_alter ORDER BY emb <-> :q LIMIT 5) s;
ALTER INDEX hdef_alter_idx SET (m = 8);
INSERT INTO hdef_alter VALUES (1000, '[10.5,-40.25,3]');
SELECT array_agg(id) FROM (SELECT id FROM hdef_alter ORDER BY emb <-> :q LIMIT 5) s;
ALTER INDEX hdef_alter_idx RESET (m);
SELECT array_agg(id) FROM (SELECT id FROM hdef_alter ORDER BY emb <-> :q LIMIT 5) s;
SELECT count(*) AS rows FROM (SELECT id FROM hdef_alter ORDER BY emb <-> :q LIMIT 1000) s;
RESET enable_seqscan;
RESET hnsw.ef_search;
DROP TABLE hdef_alter;

------------------------------------------------------------------------
-- 2. Duplicates.  An element holds at most 10 heap TIDs, and a new row
-- equal to an existing element goes to the first equal element only: once
-- it is full, every further duplicate becomes an element of its own.  With
-- more than 2 * m such elements their neighbor lists fill up with each
-- other (distance 0 always passes the neighbor heuristic) and lose every
-- link to other rows: a search that enters them cannot leave.
------------------------------------------------------------------------
-- 30 duplicates from the build, 15 more inserted: all 45 must come back,
-- then the nearest other rows (seen: 42 rows, all duplicates, nothing else)
CREATE TABLE hdef_dup (id int, emb vector(3));
INSERT INTO hdef_dup SELECT i, '[1,1,1]' FROM generate_series(1, 30) i;
INSERT INTO hdef_dup SELECT 100 + i, ARRAY[i, i * 2, 5 - i]::vector FROM generate_series(1, 20) i;
CREATE INDEX hdef_dup_idx ON hdef_dup USING hnsw (emb);
INSERT INTO hdef_dup SELECT 200 + i, '[1,1,1]' FROM generate_series(1, 15) i;
SET hnsw.ef_search = 1000;
SET enable_seqscan = off;
SELECT count(*) AS rows, count(*) FILTER (WHERE emb = '[1,1,1]') AS duplicates
FROM (SELECT id, emb FROM hdef_dup ORDER BY emb <-> '[1,1,1]' LIMIT 48) s;
SELECT id FROM (SELECT id, emb FROM hdef_dup ORDER BY emb <-> '[1,1,1]' LIMIT 48) s
WHERE emb <> '[1,1,1]';
-- a row's own vector must find that row (seen: when the search starts
-- among the duplicates, only duplicates)
SELECT id FROM hdef_dup ORDER BY emb <-> '[5,10,0]' LIMIT 1;
RESET enable_seqscan;
RESET hnsw.ef_search;
DROP TABLE hdef_dup;
-- the same from a build alone: 400 equal rows, then 200 others
CREATE TABLE hdef_dup (id int, emb vector(3));
INSERT INTO hdef_dup SELECT i, '[1,1,1]' FROM generate_series(1, 400) i;
INSERT INTO hdef_dup SELECT 1000 + i, hdef_row(i) FROM generate_series(1, 200) i;
CREATE INDEX hdef_dup_idx ON hdef_dup USING hnsw (emb);
SET enable_seqscan = off;
-- (seen: usually another row, e.g. 1107)
SELECT id FROM hdef_dup ORDER BY emb <-> hdef_row(5) LIMIT 1;
SET hnsw.ef_search = 1000;
-- (seen: 160 to 190)
SELECT count(*) AS rows FROM (SELECT id FROM hdef_dup ORDER BY emb <-> hdef_row(5) LIMIT 1000) s;
RESET enable_seqscan;
RESET hnsw.ef_search;
DROP TABLE hdef_dup;

------------------------------------------------------------------------
-- 3. vector_ip_ops leaves rows unreachable: on 300 rows of 3 dimensions an
-- exhaustive search returns about 240 (the 14th nearest among those
-- missing, in the runs seen).  Under negative inner product the neighbor
-- heuristic prunes most back-links, orphaning elements.  (l2, cosine and
-- l1 reach all 300 rows of the same data.)
------------------------------------------------------------------------
CREATE TABLE hdef_ip (id int, emb vector(3));
INSERT INTO hdef_ip SELECT i, hdef_row(i) FROM generate_series(1, 300) i;
SET enable_indexscan = off;
SELECT array_agg(id) AS expected FROM (SELECT id FROM hdef_ip ORDER BY emb <#> :q) s \gset
RESET enable_indexscan;
CREATE INDEX hdef_ip_idx ON hdef_ip USING hnsw (emb vector_ip_ops);
SET hnsw.ef_search = 1000;
SET enable_seqscan = off;
SELECT count(*) AS rows, array_agg(id) = :'expected' AS same_as_sort
FROM (SELECT id FROM hdef_ip ORDER BY emb <#> :q LIMIT 300) s;
RESET enable_seqscan;
RESET hnsw.ef_search;
DROP TABLE hdef_ip;

------------------------------------------------------------------------
-- 4. An index scan returns at most hnsw.ef_search rows, yet the planner
-- chooses it for ORDER BY ... LIMIT n with n > ef_search, for OFFSET past
-- it, for ORDER BY with no LIMIT at all, and (since the cost model charges
-- its pages as sequential reads) under a filter on another column: the
-- query silently returns at most 40 rows (the default ef_search), fewer
-- after a filter.  Correct: as many rows as asked for.
------------------------------------------------------------------------
CREATE TABLE hdef_limit (id int, emb vector(3));
INSERT INTO hdef_limit
SELECT i, ARRAY[(i * 0.7548776662) % 1, (i * 0.5698402910) % 1,
				(i * 0.3819660113) % 1]::real[]::vector
FROM generate_series(1, 10000) i;
CREATE INDEX hdef_limit_idx ON hdef_limit USING hnsw (emb);
ANALYZE hdef_limit;
-- (seen: 40, 40, 5, 40)
SELECT count(*) FROM (SELECT id FROM hdef_limit ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 100) s;
SELECT count(*) FROM (SELECT id FROM hdef_limit ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 1000) s;
SELECT count(*) FROM (SELECT id FROM hdef_limit ORDER BY emb <-> '[0.5,0.5,0.5]' OFFSET 35 LIMIT 10) s;
SELECT count(*) FROM (SELECT id FROM hdef_limit ORDER BY emb <-> '[0.5,0.5,0.5]') s;
-- (seen: 40) with sequential scans off too
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT id FROM hdef_limit ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 100) s;
RESET enable_seqscan;
-- a filter on another column: the index hands over its ef_search rows and
-- the filter keeps few or none of them (seen: 2 and 0)
SELECT count(*) FROM (SELECT id FROM hdef_limit WHERE id % 10 = 0
					  ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 10) s;
SELECT count(*) FROM (SELECT id FROM hdef_limit WHERE id % 100 = 0
					  ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 10) s;
DROP TABLE hdef_limit;

------------------------------------------------------------------------
-- 5. amvalidate accepts an ORDER BY operator whose sort family cannot sort
-- the operator's result (a btree family of vector, for a float8 result).
-- Correct: false, with the reason (seen: true, nothing said).
------------------------------------------------------------------------
CREATE OPERATOR CLASS hdef_sortfam_ops FOR TYPE vector USING hnsw AS
	OPERATOR 1 <-> (vector, vector) FOR ORDER BY vector_ops,
	FUNCTION 1 tinyhnsw_l2_metric(internal);
SELECT amvalidate(oid) FROM pg_opclass WHERE opcname = 'hdef_sortfam_ops';
DROP OPERATOR FAMILY hdef_sortfam_ops USING hnsw;

------------------------------------------------------------------------
-- 6. Without an amproperty callback, the generic answers are wrong for
-- hnsw: its column is distance-orderable (seen: NULL, "unknown"), and it
-- cannot back an exclusion constraint (seen: true).
------------------------------------------------------------------------
CREATE TABLE hdef_prop (id int, emb vector(3));
CREATE INDEX hdef_prop_idx ON hdef_prop USING hnsw (emb);
SELECT pg_index_column_has_property('hdef_prop_idx'::regclass, 1, 'distance_orderable');
SELECT pg_indexam_has_property(oid, 'can_exclude') FROM pg_am WHERE amname = 'hnsw';
DROP TABLE hdef_prop;

DROP FUNCTION hdef_row(int);
