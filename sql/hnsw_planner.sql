-- the planner and hnsw: chosen by cost for ORDER BY <op> LIMIT on a large
-- table, never for what it cannot do (no ORDER BY on its operator, another
-- operator, DESC, plain scans), and on partitions
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- 10000 rows of 3 dimensions in the unit cube (Weyl sequences)
CREATE TABLE hplan (id int, emb vector(3));
INSERT INTO hplan
SELECT i, ARRAY[(i * 0.7548776662) % 1, (i * 0.5698402910) % 1,
				(i * 0.3819660113) % 1]::real[]::vector
FROM generate_series(1, 10000) i;
CREATE INDEX hplan_idx ON hplan USING hnsw (emb);
ANALYZE hplan;

------------------------------------------------------------------------
-- chosen by cost, sequential scans allowed
------------------------------------------------------------------------
EXPLAIN (COSTS OFF)
SELECT id FROM hplan ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 5;
SELECT id FROM hplan ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 5;
-- the commuted form is the same ordering
EXPLAIN (COSTS OFF)
SELECT id FROM hplan ORDER BY '[0.5,0.5,0.5]' <-> emb LIMIT 5;
-- a parameter, as from a prepared statement's generic plan
PREPARE hplan_q(vector) AS SELECT id FROM hplan ORDER BY emb <-> $1 LIMIT 5;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE hplan_q('[0.5,0.5,0.5]');
EXECUTE hplan_q('[0.5,0.5,0.5]');
RESET plan_cache_mode;
DEALLOCATE hplan_q;
-- the index answers as a plain sort does
SET enable_indexscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM hplan ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 5;
SELECT id FROM hplan ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 5;
RESET enable_indexscan;

------------------------------------------------------------------------
-- not chosen for what it cannot do, even with sequential scans off
------------------------------------------------------------------------
SET enable_seqscan = off;
-- no ORDER BY: the index has no search operators
EXPLAIN (COSTS OFF) SELECT count(*) FROM hplan;
SELECT count(*) FROM hplan;
EXPLAIN (COSTS OFF) SELECT id FROM hplan WHERE emb = '[0.5,0.5,0.5]';
EXPLAIN (COSTS OFF) SELECT id FROM hplan WHERE id = 1;
-- another distance than the index's (vector_l2_ops)
EXPLAIN (COSTS OFF)
SELECT id FROM hplan ORDER BY emb <#> '[0.5,0.5,0.5]' LIMIT 5;
EXPLAIN (COSTS OFF)
SELECT id FROM hplan ORDER BY emb <=> '[0.5,0.5,0.5]' LIMIT 5;
EXPLAIN (COSTS OFF)
SELECT id FROM hplan ORDER BY emb <+> '[0.5,0.5,0.5]' LIMIT 5;
-- farthest first
EXPLAIN (COSTS OFF)
SELECT id FROM hplan ORDER BY emb <-> '[0.5,0.5,0.5]' DESC LIMIT 5;
-- the function, or an expression over the operator, is not the operator
EXPLAIN (COSTS OFF)
SELECT id FROM hplan ORDER BY l2_distance(emb, '[0.5,0.5,0.5]') LIMIT 5;
EXPLAIN (COSTS OFF)
SELECT id FROM hplan ORDER BY (emb <-> '[0.5,0.5,0.5]') * 2 LIMIT 5;
-- PostgreSQL uses an ordering operator only for the whole ORDER BY
EXPLAIN (COSTS OFF)
SELECT id FROM hplan ORDER BY emb <-> '[0.5,0.5,0.5]', id LIMIT 5;
-- ordering by a distance between two columns
EXPLAIN (COSTS OFF)
SELECT a.id FROM hplan a, hplan b WHERE a.id = 1 AND b.id = 2
ORDER BY a.emb <-> b.emb LIMIT 5;
RESET enable_seqscan;
-- index scans off
SET enable_indexscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM hplan ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 5;
RESET enable_indexscan;

------------------------------------------------------------------------
-- a selective filter makes the sort cheaper than the index
------------------------------------------------------------------------
CREATE INDEX hplan_id_idx ON hplan (id);
ANALYZE hplan;
EXPLAIN (COSTS OFF)
SELECT id FROM hplan WHERE id < 100 ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 5;
SELECT id FROM hplan WHERE id < 100 ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 5;
DROP INDEX hplan_id_idx;

------------------------------------------------------------------------
-- an index per opclass: each query takes the one of its operator
------------------------------------------------------------------------
CREATE INDEX hplan_ip_idx ON hplan USING hnsw (emb vector_ip_ops);
CREATE INDEX hplan_cos_idx ON hplan USING hnsw (emb vector_cosine_ops);
ANALYZE hplan;
EXPLAIN (COSTS OFF)
SELECT id FROM hplan ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 5;
EXPLAIN (COSTS OFF)
SELECT id FROM hplan ORDER BY emb <#> '[0.5,0.5,0.5]' LIMIT 5;
EXPLAIN (COSTS OFF)
SELECT id FROM hplan ORDER BY emb <=> '[0.5,0.2,0.5]' LIMIT 5;
EXPLAIN (COSTS OFF)
SELECT id FROM hplan ORDER BY emb <+> '[0.5,0.5,0.5]' LIMIT 5;
DROP INDEX hplan_ip_idx, hplan_cos_idx;

------------------------------------------------------------------------
-- a nearest-neighbor join: the index is probed once per outer row
------------------------------------------------------------------------
CREATE TABLE hplan_q (qid int, q vector(3));
INSERT INTO hplan_q VALUES (1, '[0.1,0.1,0.1]'), (2, '[0.5,0.5,0.5]'), (3, '[0.9,0.9,0.9]');
ANALYZE hplan_q;
EXPLAIN (COSTS OFF)
SELECT qid, n.id FROM hplan_q
	CROSS JOIN LATERAL (SELECT id FROM hplan ORDER BY emb <-> q LIMIT 2) n
ORDER BY qid, n.id;
SELECT qid, n.id FROM hplan_q
	CROSS JOIN LATERAL (SELECT id FROM hplan ORDER BY emb <-> q LIMIT 2) n
ORDER BY qid, n.id;
SET enable_indexscan = off;
SELECT qid, n.id FROM hplan_q
	CROSS JOIN LATERAL (SELECT id FROM hplan ORDER BY emb <-> q LIMIT 2) n
ORDER BY qid, n.id;
RESET enable_indexscan;
DROP TABLE hplan_q;
DROP TABLE hplan;

------------------------------------------------------------------------
-- partitions: one index per partition, merged in distance order
------------------------------------------------------------------------
CREATE TABLE hpart (id int, emb vector(3)) PARTITION BY RANGE (id);
CREATE TABLE hpart_1 PARTITION OF hpart FOR VALUES FROM (1) TO (501);
CREATE TABLE hpart_2 PARTITION OF hpart FOR VALUES FROM (501) TO (1001);
INSERT INTO hpart
SELECT i, ARRAY[(i * 0.7548776662) % 1, (i * 0.5698402910) % 1,
				(i * 0.3819660113) % 1]::real[]::vector
FROM generate_series(1, 1000) i;
CREATE INDEX hpart_idx ON hpart USING hnsw (emb);
SELECT c.relname, i.indexrelid::regclass AS index
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
WHERE c.relname LIKE 'hpart%' ORDER BY 1;
ANALYZE hpart;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM hpart ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 5;
SELECT id FROM hpart ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 5;
-- pruned to one partition
EXPLAIN (COSTS OFF)
SELECT id FROM hpart WHERE id >= 501 ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 5;
SELECT id FROM hpart WHERE id >= 501 ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 5;
RESET enable_seqscan;
SET enable_indexscan = off;
SELECT id FROM hpart ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 5;
SELECT id FROM hpart WHERE id >= 501 ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 5;
RESET enable_indexscan;
-- a partition attached later gets its own index
CREATE TABLE hpart_3 (id int, emb vector(3));
INSERT INTO hpart_3 VALUES (1001, '[0.5,0.5,0.5]');
ALTER TABLE hpart ATTACH PARTITION hpart_3 FOR VALUES FROM (1001) TO (2001);
SELECT c.relname, i.indexrelid::regclass AS index
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
WHERE c.relname LIKE 'hpart%' ORDER BY 1;
SET enable_seqscan = off;
SELECT id FROM hpart ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 3;
RESET enable_seqscan;
DROP TABLE hpart;

-- Vectors too wide for a page are kept in TOAST: a sequential scan reads
-- each of them, not just the table's main fork (about 50 bytes a row), and
-- the planner prices it so (src/hnsw.c, vector_cost_support).  1,000 rows
-- of vector(3072): the README's halfvec recipe uses its index at
-- ef_search 160 (once: Seq Scan, at every ef_search), and so does the
-- binary quantization recipe's inner query.
CREATE TABLE hwide (id int PRIMARY KEY, emb vector(3072));
INSERT INTO hwide
SELECT i, (SELECT array_agg(((i * 0.7548776662 + d * 0.5698402910) % 1)::real)
           FROM generate_series(1, 3072) d)::vector
FROM generate_series(1, 1000) i;
CREATE INDEX hwide_half ON hwide USING hnsw ((emb::halfvec(3072)) halfvec_cosine_ops);
ANALYZE hwide;
SET hnsw.ef_search = 160;
EXPLAIN (COSTS OFF)
SELECT id FROM hwide ORDER BY emb::halfvec(3072) <=> (SELECT emb FROM hwide WHERE id = 1)::halfvec(3072) LIMIT 10;
DROP INDEX hwide_half;
CREATE INDEX hwide_bq ON hwide USING hnsw ((binary_quantize(emb)::bit(3072)) bit_hamming_ops);
EXPLAIN (COSTS OFF)
SELECT id FROM hwide ORDER BY binary_quantize(emb)::bit(3072) <~> binary_quantize((SELECT emb FROM hwide WHERE id = 1)) LIMIT 100;
RESET hnsw.ef_search;
DROP TABLE hwide;

-- A filter that keeps few rows: to fill LIMIT 10 when 1 row in 100
-- passes, the iterative scan returns about 1,000 rows, each costing a
-- visit of about 2m elements, and a sequential scan and sort is several
-- times faster (test/bench/filters); the planner sees it (src/hnsw.c,
-- hnswcostestimate).  A filter that keeps half the rows, or none, leaves
-- the index the better plan, and so does one with iterative scans off
-- (the index then returns at most ef_search rows, whatever the filter).
CREATE TABLE hfilt (id int, c int, emb vector(3));
INSERT INTO hfilt
SELECT i, i % 100, ARRAY[(i * 0.7548776662) % 1, (i * 0.5698402910) % 1, (i * 0.3141592653) % 1]
FROM generate_series(1, 10000) i;
SET hnsw.test_seed = 1;	-- the same graph each run, for the rows below
CREATE INDEX hfilt_emb ON hfilt USING hnsw (emb vector_l2_ops);
RESET hnsw.test_seed;
ANALYZE hfilt;
EXPLAIN (COSTS OFF)
SELECT id FROM hfilt WHERE c = 44 ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 10;
EXPLAIN (COSTS OFF)
SELECT id FROM hfilt WHERE c < 1 ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 10;
EXPLAIN (COSTS OFF)
SELECT id FROM hfilt WHERE c < 50 ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 10;
EXPLAIN (COSTS OFF)
SELECT id FROM hfilt ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 10;
SET hnsw.iterative_scan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM hfilt WHERE c = 44 ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 10;
RESET hnsw.iterative_scan;
-- both plans return the same rows
SELECT array_agg(id) FROM (SELECT id FROM hfilt WHERE c = 44 ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 10) s;
SET enable_seqscan = off;
SELECT array_agg(id) FROM (SELECT id FROM hfilt WHERE c = 44 ORDER BY emb <-> '[0.5,0.5,0.5]' LIMIT 10) s;
RESET enable_seqscan;
DROP TABLE hfilt;
