-- hnsw index DDL: the four opclasses and the default one, WITH options,
-- DROP, REINDEX, CONCURRENTLY, partial and expression indexes, ALTER INDEX,
-- and the index shapes the access method refuses
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- 200 rows of 3 dimensions, spread irregularly (Weyl sequences) so that no
-- two rows are at the same distance from the query vectors used below
CREATE TABLE hddl (id int, emb vector(3));
INSERT INTO hddl
SELECT i, ARRAY[round((i * 0.7548776662) % 1 * 100, 2),
				round((i * 0.5698402910) % 1 * 100, 2) - 50,
				round((i * 0.3819660113) % 1 * 100, 2) - 20]::vector
FROM generate_series(1, 200) i;

-- the hnsw indexes of hddl: opclass, options, predicate, state
CREATE VIEW hddl_indexes AS
SELECT c.relname AS index, o.opcname AS opclass, o.opcdefault AS is_default,
	   c.reloptions, pg_get_expr(i.indpred, i.indrelid) AS predicate,
	   i.indisvalid AS valid, i.indisready AS ready
FROM pg_index i
	JOIN pg_class c ON c.oid = i.indexrelid
	JOIN pg_opclass o ON o.oid = i.indclass[0]
WHERE i.indrelid = 'hddl'::regclass;

-- every index below must give what a plain sort gives; the scan is
-- exhaustive on 200 rows with this ef_search
SET hnsw.ef_search = 1000;

------------------------------------------------------------------------
-- the default opclass is vector_l2_ops
------------------------------------------------------------------------
CREATE INDEX hddl_default_idx ON hddl USING hnsw (emb);
SELECT index, opclass, is_default FROM hddl_indexes ORDER BY index;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM hddl ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 5;
SELECT id FROM hddl ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 5;
-- it serves <-> only
EXPLAIN (COSTS OFF)
SELECT id FROM hddl ORDER BY emb <#> '[10.5,-40.25,3.125]' LIMIT 5;
RESET enable_seqscan;
DROP INDEX hddl_default_idx;

------------------------------------------------------------------------
-- one index per opclass, each used for its own operator only
------------------------------------------------------------------------
CREATE INDEX hddl_l2_idx ON hddl USING hnsw (emb vector_l2_ops);
CREATE INDEX hddl_ip_idx ON hddl USING hnsw (emb vector_ip_ops);
CREATE INDEX hddl_cosine_idx ON hddl USING hnsw (emb vector_cosine_ops);
CREATE INDEX hddl_l1_idx ON hddl USING hnsw (emb vector_l1_ops);
SELECT index, opclass, is_default, valid, ready FROM hddl_indexes ORDER BY index;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM hddl ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 5;
EXPLAIN (COSTS OFF)
SELECT id FROM hddl ORDER BY emb <#> '[10.5,-40.25,3.125]' LIMIT 5;
EXPLAIN (COSTS OFF)
SELECT id FROM hddl ORDER BY emb <=> '[10.5,-40.25,3.125]' LIMIT 5;
EXPLAIN (COSTS OFF)
SELECT id FROM hddl ORDER BY emb <+> '[10.5,-40.25,3.125]' LIMIT 5;
SELECT array_agg(id) AS l2 FROM
	(SELECT id FROM hddl ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 5) s;
SELECT array_agg(id) AS ip FROM
	(SELECT id FROM hddl ORDER BY emb <#> '[10.5,-40.25,3.125]' LIMIT 5) s;
SELECT array_agg(id) AS cosine FROM
	(SELECT id FROM hddl ORDER BY emb <=> '[10.5,-40.25,3.125]' LIMIT 5) s;
SELECT array_agg(id) AS l1 FROM
	(SELECT id FROM hddl ORDER BY emb <+> '[10.5,-40.25,3.125]' LIMIT 5) s;
-- the same, from a plain sort
SET enable_seqscan = on;
SET enable_indexscan = off;
SELECT array_agg(id) AS l2 FROM
	(SELECT id FROM hddl ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 5) s;
SELECT array_agg(id) AS ip FROM
	(SELECT id FROM hddl ORDER BY emb <#> '[10.5,-40.25,3.125]' LIMIT 5) s;
SELECT array_agg(id) AS cosine FROM
	(SELECT id FROM hddl ORDER BY emb <=> '[10.5,-40.25,3.125]' LIMIT 5) s;
SELECT array_agg(id) AS l1 FROM
	(SELECT id FROM hddl ORDER BY emb <+> '[10.5,-40.25,3.125]' LIMIT 5) s;
RESET enable_indexscan;
RESET enable_seqscan;

------------------------------------------------------------------------
-- DROP INDEX: the planner falls back to a sort
------------------------------------------------------------------------
DROP INDEX hddl_ip_idx, hddl_cosine_idx, hddl_l1_idx;
DROP INDEX hddl_l2_idx;
SELECT count(*) FROM hddl_indexes;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM hddl ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 5;
RESET enable_seqscan;
DROP INDEX IF EXISTS hddl_l2_idx;

------------------------------------------------------------------------
-- WITH (m, ef_construction): stored as reloptions, and the index works
------------------------------------------------------------------------
CREATE INDEX hddl_opt_idx ON hddl USING hnsw (emb vector_l2_ops)
	WITH (m = 16, ef_construction = 64);
SELECT index, opclass, reloptions FROM hddl_indexes ORDER BY index;
SELECT pg_get_indexdef('hddl_opt_idx'::regclass);
CREATE INDEX hddl_opt2_idx ON hddl USING hnsw (emb) WITH (m = 4, ef_construction = 8);
SELECT index, opclass, reloptions FROM hddl_indexes ORDER BY index;
SET enable_seqscan = off;
DROP INDEX hddl_opt_idx;
EXPLAIN (COSTS OFF)
SELECT id FROM hddl ORDER BY emb <-> '[33.3,5.7,27.1]' LIMIT 5;
SELECT array_agg(id) FROM
	(SELECT id FROM hddl ORDER BY emb <-> '[33.3,5.7,27.1]' LIMIT 5) s;
RESET enable_seqscan;
SET enable_indexscan = off;
SELECT array_agg(id) FROM
	(SELECT id FROM hddl ORDER BY emb <-> '[33.3,5.7,27.1]' LIMIT 5) s;
RESET enable_indexscan;
DROP INDEX hddl_opt2_idx;

------------------------------------------------------------------------
-- REINDEX (index, table) gives the same answers, including rows inserted
-- after the first build
------------------------------------------------------------------------
CREATE INDEX hddl_re_idx ON hddl USING hnsw (emb);
INSERT INTO hddl VALUES (1001, '[10,-40,3]'), (1002, '[33,6,27]');
SET enable_seqscan = off;
SELECT array_agg(id) FROM
	(SELECT id FROM hddl ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 5) s;
REINDEX INDEX hddl_re_idx;
SELECT array_agg(id) FROM
	(SELECT id FROM hddl ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 5) s;
REINDEX TABLE hddl;
SELECT array_agg(id) FROM
	(SELECT id FROM hddl ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 5) s;
EXPLAIN (COSTS OFF)
SELECT id FROM hddl ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 5;
-- VACUUM FULL rebuilds it too
VACUUM FULL hddl;
SELECT array_agg(id) FROM
	(SELECT id FROM hddl ORDER BY emb <-> '[33.3,5.7,27.1]' LIMIT 5) s;
RESET enable_seqscan;
SET enable_indexscan = off;
SELECT array_agg(id) FROM
	(SELECT id FROM hddl ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 5) s;
SELECT array_agg(id) FROM
	(SELECT id FROM hddl ORDER BY emb <-> '[33.3,5.7,27.1]' LIMIT 5) s;
RESET enable_indexscan;
DROP INDEX hddl_re_idx;
DELETE FROM hddl WHERE id > 1000;

------------------------------------------------------------------------
-- CREATE INDEX CONCURRENTLY, REINDEX ... CONCURRENTLY
------------------------------------------------------------------------
CREATE INDEX CONCURRENTLY hddl_conc_idx ON hddl USING hnsw (emb vector_cosine_ops);
SELECT index, opclass, valid, ready FROM hddl_indexes ORDER BY index;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM hddl ORDER BY emb <=> '[10.5,-40.25,3.125]' LIMIT 5;
SELECT array_agg(id) FROM
	(SELECT id FROM hddl ORDER BY emb <=> '[10.5,-40.25,3.125]' LIMIT 5) s;
REINDEX INDEX CONCURRENTLY hddl_conc_idx;
SELECT array_agg(id) FROM
	(SELECT id FROM hddl ORDER BY emb <=> '[10.5,-40.25,3.125]' LIMIT 5) s;
REINDEX TABLE CONCURRENTLY hddl;
SELECT index, opclass, valid, ready FROM hddl_indexes ORDER BY index;
SELECT array_agg(id) FROM
	(SELECT id FROM hddl ORDER BY emb <=> '[10.5,-40.25,3.125]' LIMIT 5) s;
RESET enable_seqscan;
DROP INDEX CONCURRENTLY hddl_conc_idx;
SELECT count(*) FROM hddl_indexes;

------------------------------------------------------------------------
-- partial index: used when the query has the index's predicate, and it
-- holds only the rows that satisfy it
------------------------------------------------------------------------
CREATE INDEX hddl_even_idx ON hddl USING hnsw (emb) WHERE id % 2 = 0;
SELECT index, opclass, predicate FROM hddl_indexes ORDER BY index;
SELECT reltuples FROM pg_class WHERE relname = 'hddl_even_idx';
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM hddl WHERE id % 2 = 0 ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 5;
SELECT array_agg(id) FROM
	(SELECT id FROM hddl WHERE id % 2 = 0
	 ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 5) s;
-- without the predicate the partial index cannot answer
EXPLAIN (COSTS OFF)
SELECT id FROM hddl ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 5;
EXPLAIN (COSTS OFF)
SELECT id FROM hddl WHERE id % 2 = 1 ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 5;
-- rows inserted later go in only if they satisfy the predicate
INSERT INTO hddl VALUES (1000, '[10.5,-40.25,3]'), (1001, '[10.5,-40.25,3.1]');
SELECT array_agg(id) FROM
	(SELECT id FROM hddl WHERE id % 2 = 0
	 ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 5) s;
RESET enable_seqscan;
SET enable_indexscan = off;
SELECT array_agg(id) FROM
	(SELECT id FROM hddl WHERE id % 2 = 0
	 ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 5) s;
RESET enable_indexscan;
DROP INDEX hddl_even_idx;
DELETE FROM hddl WHERE id >= 1000;

------------------------------------------------------------------------
-- expression indexes
------------------------------------------------------------------------
-- on the first two dimensions; an expression without dimensions takes
-- them from its values (hnsw_alter tests that further)
CREATE INDEX hddl_sub_idx ON hddl USING hnsw ((subvector(emb, 1, 2)::vector(2)));
CREATE INDEX hddl_nodim_idx ON hddl USING hnsw ((subvector(emb, 1, 2)));
DROP INDEX hddl_nodim_idx;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM hddl ORDER BY subvector(emb, 1, 2)::vector(2) <-> '[10.5,-40.25]' LIMIT 5;
SELECT array_agg(id) FROM
	(SELECT id FROM hddl
	 ORDER BY subvector(emb, 1, 2)::vector(2) <-> '[10.5,-40.25]' LIMIT 5) s;
-- the column itself is not indexed
EXPLAIN (COSTS OFF)
SELECT id FROM hddl ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 5;
RESET enable_seqscan;
SET enable_indexscan = off;
SELECT array_agg(id) FROM
	(SELECT id FROM hddl
	 ORDER BY subvector(emb, 1, 2)::vector(2) <-> '[10.5,-40.25]' LIMIT 5) s;
RESET enable_indexscan;
DROP INDEX hddl_sub_idx;
-- on a normalized copy, with another opclass
CREATE INDEX hddl_norm_idx ON hddl USING hnsw ((l2_normalize(emb)::vector(3)) vector_ip_ops);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM hddl ORDER BY l2_normalize(emb)::vector(3) <#> '[0.6,-0.8,0]' LIMIT 5;
SELECT array_agg(id) FROM
	(SELECT id FROM hddl
	 ORDER BY l2_normalize(emb)::vector(3) <#> '[0.6,-0.8,0]' LIMIT 5) s;
RESET enable_seqscan;
SET enable_indexscan = off;
SELECT array_agg(id) FROM
	(SELECT id FROM hddl
	 ORDER BY l2_normalize(emb)::vector(3) <#> '[0.6,-0.8,0]' LIMIT 5) s;
RESET enable_indexscan;
DROP INDEX hddl_norm_idx;

------------------------------------------------------------------------
-- ALTER INDEX SET / RESET: options are checked like at CREATE INDEX
-- (what changing m does to a built index is in hnsw_defects)
------------------------------------------------------------------------
CREATE INDEX hddl_alter_idx ON hddl USING hnsw (emb);
ALTER INDEX hddl_alter_idx SET (m = 1);
ALTER INDEX hddl_alter_idx SET (m = 101);
ALTER INDEX hddl_alter_idx SET (ef_construction = 3);
ALTER INDEX hddl_alter_idx SET (ef_construction = 1001);
ALTER INDEX hddl_alter_idx SET (lists = 10);
SELECT index, reloptions FROM hddl_indexes ORDER BY index;
-- a larger ef_construction applies to later inserts; the index keeps working
ALTER INDEX hddl_alter_idx SET (ef_construction = 100);
SELECT index, reloptions FROM hddl_indexes ORDER BY index;
INSERT INTO hddl VALUES (1000, '[10.5,-40.25,3]');
SET enable_seqscan = off;
SELECT array_agg(id) FROM
	(SELECT id FROM hddl ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 5) s;
RESET enable_seqscan;
-- ef_construction below 2 * m is accepted here, but no build accepts it
ALTER INDEX hddl_alter_idx SET (ef_construction = 20);
REINDEX INDEX hddl_alter_idx;
ALTER INDEX hddl_alter_idx RESET (ef_construction);
SELECT index, reloptions FROM hddl_indexes ORDER BY index;
REINDEX INDEX hddl_alter_idx;
SET enable_seqscan = off;
SELECT array_agg(id) FROM
	(SELECT id FROM hddl ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 5) s;
RESET enable_seqscan;
DROP INDEX hddl_alter_idx;
DELETE FROM hddl WHERE id >= 1000;

------------------------------------------------------------------------
-- what hnsw refuses
------------------------------------------------------------------------
CREATE UNIQUE INDEX ON hddl USING hnsw (emb);
CREATE INDEX ON hddl USING hnsw (emb, emb);
CREATE INDEX ON hddl USING hnsw (emb) INCLUDE (id);
CREATE INDEX ON hddl USING hnsw (emb DESC);
CREATE INDEX ON hddl USING hnsw (emb NULLS FIRST);
CREATE INDEX ON hddl USING hnsw (id);
CREATE INDEX ON hddl USING hnsw (emb vector_ops);
CREATE INDEX ON hddl USING hnsw (emb int4_ops);
CREATE INDEX hddl_cluster_idx ON hddl USING hnsw (emb);
CLUSTER hddl USING hddl_cluster_idx;
ALTER TABLE hddl ADD CONSTRAINT hddl_excl EXCLUDE USING hnsw (emb WITH <->);
SELECT index FROM hddl_indexes ORDER BY index;

DROP VIEW hddl_indexes;
DROP TABLE hddl;
RESET hnsw.ef_search;
