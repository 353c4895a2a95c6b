-- hnsw index scans for a query vector that has no distance to anything: a
-- NULL one, or a zero one under cosine (every ORDER BY value is NULL or
-- NaN).  The index returns its rows in no particular order, as a
-- sequential scan does: the same rows whatever the plan.  Orders are
-- unspecified, so rows are compared as counts and sorted ids.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;

-- 200 rows; ids 1-12 share one vector (an element with a duplicate
-- chain: an element holds 9 heap TIDs), every 10th other row is NULL
CREATE TABLE hnq (id int, emb vector(3));
INSERT INTO hnq
SELECT i, CASE WHEN i <= 12 THEN '[1,1,1]'
			   WHEN i % 10 = 0 THEN NULL
			   ELSE ARRAY[i % 7, i % 11, i % 13 + 1]::vector END
FROM generate_series(1, 200) i;
CREATE INDEX hnq_idx ON hnq USING hnsw (emb vector_l2_ops);
-- and rows that only later inserts added, some of them duplicates too
INSERT INTO hnq SELECT i, '[1,1,1]' FROM generate_series(201, 205) i;
INSERT INTO hnq SELECT i, ARRAY[i, 0, 1]::vector FROM generate_series(206, 215) i;
SELECT count(*) AS rows, count(emb) AS indexed FROM hnq;

------------------------------------------------------------------------
-- a NULL literal: the planner folds the distance to NULL and sorts by
-- nothing, so this is the reference the index scans must match
------------------------------------------------------------------------
SELECT count(*) FROM (SELECT id FROM hnq ORDER BY emb <-> NULL LIMIT 5) s;
SELECT count(*) FROM (SELECT id FROM hnq ORDER BY emb <-> NULL) s;

------------------------------------------------------------------------
-- a NULL parameter reaches the index
------------------------------------------------------------------------
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM hnq ORDER BY emb <-> (SELECT NULL::vector) LIMIT 5;
SELECT count(*) FROM
	(SELECT id FROM hnq ORDER BY emb <-> (SELECT NULL::vector) LIMIT 5) s;
-- without LIMIT: every indexed row once, duplicates included, and no
-- row with a NULL vector (they are not in the index)
SELECT count(*) AS rows, count(DISTINCT id) AS distinct_ids,
	   count(*) FILTER (WHERE emb IS NULL) AS nulls,
	   count(*) FILTER (WHERE emb = '[1,1,1]') AS dups
FROM (SELECT id, emb FROM hnq ORDER BY emb <-> (SELECT NULL::vector)) s;

-- a prepared query gives the same rows under a custom and a generic plan
PREPARE hnq_q(vector) AS SELECT id FROM hnq ORDER BY emb <-> $1 LIMIT 5;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE hnq_q(NULL);
CREATE TEMP TABLE hnq_generic AS EXECUTE hnq_q(NULL);
SET plan_cache_mode = force_custom_plan;
EXPLAIN (COSTS OFF) EXECUTE hnq_q(NULL);
CREATE TEMP TABLE hnq_custom AS EXECUTE hnq_q(NULL);
SELECT (SELECT count(*) FROM hnq_generic) AS generic,
	   (SELECT count(*) FROM hnq_custom) AS custom;
RESET plan_cache_mode;
DEALLOCATE hnq_q;

-- a filter sees every indexed row; hnsw.max_scan_tuples bounds searches,
-- not this walk, so the rows are a sequential scan's
SET hnsw.max_scan_tuples = 10;
SELECT array_agg(id ORDER BY id) AS ids FROM
	(SELECT id FROM hnq WHERE id % 25 = 3 ORDER BY emb <-> (SELECT NULL::vector)) s;
RESET hnsw.max_scan_tuples;
RESET enable_seqscan;
SET enable_indexscan = off;
SELECT array_agg(id ORDER BY id) AS ids FROM
	(SELECT id FROM hnq WHERE id % 25 = 3 AND emb IS NOT NULL) s;
RESET enable_indexscan;

-- deleted rows are not returned, before VACUUM (the heap says they are
-- dead) nor after (vacuum flags their elements deleted or frees them)
DELETE FROM hnq WHERE id % 3 = 0;
SET enable_seqscan = off;
SELECT count(*) AS rows, count(DISTINCT id) AS distinct_ids FROM
	(SELECT id FROM hnq ORDER BY emb <-> (SELECT NULL::vector)) s;
VACUUM hnq;
SELECT count(*) AS rows, count(DISTINCT id) AS distinct_ids FROM
	(SELECT id FROM hnq ORDER BY emb <-> (SELECT NULL::vector)) s;
RESET enable_seqscan;
SELECT count(emb) AS indexed FROM hnq;
DROP TABLE hnq;

------------------------------------------------------------------------
-- cosine: a zero query vector has no direction (every distance is NaN);
-- zero rows are not indexed
------------------------------------------------------------------------
CREATE TABLE hnq_cos (id int, emb vector(3));
INSERT INTO hnq_cos
SELECT i, CASE WHEN i % 5 = 0 THEN '[0,0,0]' ELSE ARRAY[i, 1, i % 3]::vector END
FROM generate_series(1, 50) i;
CREATE INDEX hnq_cos_idx ON hnq_cos USING hnsw (emb vector_cosine_ops);
SET enable_indexscan = off;
SELECT count(*) FROM (SELECT id FROM hnq_cos ORDER BY emb <=> '[0,0,0]' LIMIT 5) s;
RESET enable_indexscan;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM hnq_cos ORDER BY emb <=> '[0,0,0]' LIMIT 5;
SELECT count(*) FROM (SELECT id FROM hnq_cos ORDER BY emb <=> '[0,0,0]' LIMIT 5) s;
SELECT array_agg(id ORDER BY id) = (SELECT array_agg(id ORDER BY id) FROM hnq_cos
									WHERE emb <> '[0,0,0]') AS all_indexed_rows
FROM (SELECT id FROM hnq_cos ORDER BY emb <=> '[0,0,0]') s;
PREPARE hnq_cos_q(vector) AS SELECT id FROM hnq_cos ORDER BY emb <=> $1 LIMIT 5;
SET plan_cache_mode = force_generic_plan;
CREATE TEMP TABLE hnq_cos_generic AS EXECUTE hnq_cos_q('[0,0,0]');
SET plan_cache_mode = force_custom_plan;
CREATE TEMP TABLE hnq_cos_custom AS EXECUTE hnq_cos_q('[0,0,0]');
SELECT (SELECT count(*) FROM hnq_cos_generic) AS generic,
	   (SELECT count(*) FROM hnq_cos_custom) AS custom;
RESET plan_cache_mode;
DEALLOCATE hnq_cos_q;
-- a nonzero query is searched as before
SELECT array_agg(id) AS ids FROM
	(SELECT id FROM hnq_cos ORDER BY emb <=> '[1,1,0]' LIMIT 3) s;
RESET enable_seqscan;
DROP TABLE hnq_cos;

------------------------------------------------------------------------
-- an empty index
------------------------------------------------------------------------
CREATE TABLE hnq_empty (id int, emb vector(3));
CREATE INDEX ON hnq_empty USING hnsw (emb);
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT id FROM hnq_empty ORDER BY emb <-> (SELECT NULL::vector)) s;
RESET enable_seqscan;
DROP TABLE hnq_empty;
