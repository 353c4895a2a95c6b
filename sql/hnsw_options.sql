-- hnsw index options (m, ef_construction) and the hnsw.ef_search setting:
-- defaults, bounds, and the errors that name them
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;
\set SHOW_CONTEXT never

CREATE TABLE hopt (id int, emb vector(3));
INSERT INTO hopt
SELECT i, ARRAY[round((i * 0.7548776662) % 1 * 100, 2),
				round((i * 0.5698402910) % 1 * 100, 2) - 50,
				round((i * 0.3819660113) % 1 * 100, 2) - 20]::vector
FROM generate_series(1, 100) i;

------------------------------------------------------------------------
-- m: 2 .. 100
------------------------------------------------------------------------
CREATE INDEX hopt_idx ON hopt USING hnsw (emb) WITH (m = 1);
CREATE INDEX hopt_idx ON hopt USING hnsw (emb) WITH (m = 101);
CREATE INDEX hopt_idx ON hopt USING hnsw (emb) WITH (m = 0);
CREATE INDEX hopt_idx ON hopt USING hnsw (emb) WITH (m = -16);
CREATE INDEX hopt_idx ON hopt USING hnsw (emb) WITH (m = 'sixteen');
CREATE INDEX hopt_idx ON hopt USING hnsw (emb) WITH (m = 2);
CREATE INDEX hopt_idx2 ON hopt USING hnsw (emb) WITH (m = 100, ef_construction = 200);
SELECT relname, reloptions FROM pg_class WHERE relname LIKE 'hopt_idx%' ORDER BY 1;
DROP INDEX hopt_idx, hopt_idx2;

------------------------------------------------------------------------
-- ef_construction: 4 .. 1000, and at least 2 * m
------------------------------------------------------------------------
CREATE INDEX hopt_idx ON hopt USING hnsw (emb) WITH (m = 2, ef_construction = 3);
CREATE INDEX hopt_idx ON hopt USING hnsw (emb) WITH (ef_construction = 1001);
CREATE INDEX hopt_idx ON hopt USING hnsw (emb) WITH (ef_construction = 0);
CREATE INDEX hopt_idx ON hopt USING hnsw (emb) WITH (m = 2, ef_construction = 4);
CREATE INDEX hopt_idx2 ON hopt USING hnsw (emb) WITH (ef_construction = 1000);
SELECT relname, reloptions FROM pg_class WHERE relname LIKE 'hopt_idx%' ORDER BY 1;
DROP INDEX hopt_idx, hopt_idx2;
-- below 2 * m, with m given, or taking the default of either
CREATE INDEX hopt_idx ON hopt USING hnsw (emb) WITH (m = 16, ef_construction = 31);
CREATE INDEX hopt_idx ON hopt USING hnsw (emb) WITH (ef_construction = 20);
CREATE INDEX hopt_idx ON hopt USING hnsw (emb) WITH (m = 33);
CREATE INDEX hopt_idx ON hopt USING hnsw (emb) WITH (m = 100, ef_construction = 199);
-- the check is made before the table is read: an empty table too
CREATE TABLE hopt_empty (id int, emb vector(3));
CREATE INDEX hopt_empty_idx ON hopt_empty USING hnsw (emb) WITH (m = 16, ef_construction = 31);
DROP TABLE hopt_empty;
-- exactly 2 * m is enough
CREATE INDEX hopt_idx ON hopt USING hnsw (emb) WITH (m = 16, ef_construction = 32);
CREATE INDEX hopt_idx2 ON hopt USING hnsw (emb) WITH (m = 32);
SELECT relname, reloptions FROM pg_class WHERE relname LIKE 'hopt_idx%' ORDER BY 1;
DROP INDEX hopt_idx, hopt_idx2;

------------------------------------------------------------------------
-- options that are not hnsw's
------------------------------------------------------------------------
CREATE INDEX hopt_idx ON hopt USING hnsw (emb) WITH (lists = 100);
CREATE INDEX hopt_idx ON hopt USING hnsw (emb) WITH (fillfactor = 50);
CREATE INDEX hopt_idx ON hopt USING hnsw (emb) WITH (m = 16, m = 8);
SELECT count(*) FROM pg_class WHERE relname LIKE 'hopt_idx%';

------------------------------------------------------------------------
-- indexes built at the extremes work.  With m = 100 the graph reaches every
-- row, so an exhaustive search matches a plain sort; with m = 2 a few rows
-- may be left unreachable (HNSW does not promise otherwise), so only the
-- order of what it returns is checked.
------------------------------------------------------------------------
SET hnsw.ef_search = 1000;
SET enable_indexscan = off;
SELECT array_agg(id) AS expected FROM
	(SELECT id FROM hopt ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 10) s \gset
RESET enable_indexscan;
SET enable_seqscan = off;
CREATE INDEX hopt_idx ON hopt USING hnsw (emb) WITH (m = 2, ef_construction = 4);
EXPLAIN (COSTS OFF)
SELECT id FROM hopt ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 10;
SELECT cardinality(d) > 0 AS some_rows,
	   d = (SELECT array_agg(x ORDER BY x) FROM unnest(d) x) AS ascending
FROM (SELECT array_agg(emb <-> '[10.5,-40.25,3.125]') AS d
	  FROM (SELECT emb FROM hopt
			ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 100) s) a;
DROP INDEX hopt_idx;
CREATE INDEX hopt_idx ON hopt USING hnsw (emb) WITH (m = 100, ef_construction = 1000);
SELECT array_agg(id) = :'expected' AS m100_same FROM
	(SELECT id FROM hopt ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 10) s;
SELECT count(*) FROM
	(SELECT id FROM hopt ORDER BY emb <-> '[10.5,-40.25,3.125]' LIMIT 100) s;
DROP INDEX hopt_idx;
RESET enable_seqscan;
RESET hnsw.ef_search;

------------------------------------------------------------------------
-- hnsw.ef_search: default 40, 1 .. 1000
------------------------------------------------------------------------
SHOW hnsw.ef_search;
SELECT name, setting, boot_val, min_val, max_val, vartype, context
FROM pg_settings WHERE name = 'hnsw.ef_search';
SET hnsw.ef_search = 1;
SHOW hnsw.ef_search;
SET hnsw.ef_search = 1000;
SHOW hnsw.ef_search;
SET hnsw.ef_search = 0;
SET hnsw.ef_search = 1001;
SET hnsw.ef_search = -1;
SET hnsw.ef_search = 'forty';
SHOW hnsw.ef_search;
RESET hnsw.ef_search;
SHOW hnsw.ef_search;
-- SET LOCAL lasts until the end of the transaction
BEGIN;
SET LOCAL hnsw.ef_search = 200;
SHOW hnsw.ef_search;
COMMIT;
SHOW hnsw.ef_search;
SELECT set_config('hnsw.ef_search', '100', false);
SELECT current_setting('hnsw.ef_search');
RESET hnsw.ef_search;
-- the prefix is reserved: a misspelled hnsw setting is an error, not a
-- silently created placeholder
SET hnsw.efsearch = 10;
SET hnsw.ef_construction = 10;

DROP TABLE hopt;
