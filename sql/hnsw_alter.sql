-- hnsw indexes and columns without dimensions: ALTER COLUMN ... TYPE vector
-- keeps the index, which then takes its dimensions from its metapage; a
-- build on such a column takes them from the rows
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- 300 distinct vectors (i mod 7, 11, 13 differ for every i below 1001)
CREATE TABLE halt (id int, emb vector(3));
INSERT INTO halt SELECT i, ARRAY[i % 7, i % 11, i % 13]::vector
FROM generate_series(1, 300) i;
CREATE INDEX halt_idx ON halt USING hnsw (emb vector_l2_ops);
SELECT pg_relation_filenode('halt_idx') AS filenode \gset

-- the index (its storage) survives the change of type
ALTER TABLE halt ALTER COLUMN emb TYPE vector;
SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute
WHERE attrelid = 'halt'::regclass AND attname = 'emb';
SELECT pg_relation_filenode('halt_idx') = :filenode AS index_kept;

SET enable_seqscan = off;
-- inserts go on
INSERT INTO halt VALUES (301, '[0.5,0.5,0.5]'), (302, '[6.5,10.5,12.5]');
-- an index scan, and the rows a sequential scan returns
EXPLAIN (COSTS OFF) SELECT id FROM halt ORDER BY emb <-> '[0.4,0.5,0.6]' LIMIT 4;
SELECT id, emb, round((emb <-> '[0.4,0.5,0.6]')::numeric, 4) AS dist
FROM halt ORDER BY emb <-> '[0.4,0.5,0.6]' LIMIT 4;
SELECT id FROM halt ORDER BY emb <-> '[6.6,10.4,12.6]' LIMIT 1;
-- vectors of other dimensions: clean errors
INSERT INTO halt VALUES (303, '[1,2]');
INSERT INTO halt VALUES (303, '[1,2,3,4]');
SELECT id FROM halt ORDER BY emb <-> '[1,2]' LIMIT 1;
-- VACUUM, and the rows after it
DELETE FROM halt WHERE id IN (301, 1, 2);
VACUUM halt;
SELECT id FROM halt ORDER BY emb <-> '[0.4,0.5,0.6]' LIMIT 3;
RESET enable_seqscan;
SELECT id FROM halt ORDER BY emb <-> '[0.4,0.5,0.6]' LIMIT 3;
SET enable_seqscan = off;

-- REINDEX takes the dimensions from the rows
REINDEX INDEX halt_idx;
SELECT pg_relation_filenode('halt_idx') <> :filenode AS rebuilt;
EXPLAIN (COSTS OFF) SELECT id FROM halt ORDER BY emb <-> '[0.4,0.5,0.6]' LIMIT 3;
SELECT id FROM halt ORDER BY emb <-> '[0.4,0.5,0.6]' LIMIT 3;
INSERT INTO halt VALUES (304, '[0.4,0.5,0.6]');
INSERT INTO halt VALUES (305, '[1,2]');
SELECT id FROM halt ORDER BY emb <-> '[0.4,0.5,0.6]' LIMIT 1;
REINDEX INDEX CONCURRENTLY halt_idx;
SELECT id FROM halt ORDER BY emb <-> '[0.4,0.5,0.6]' LIMIT 3;
-- so does CREATE INDEX, also with parallel workers planned
CREATE INDEX halt_cos ON halt USING hnsw (emb vector_cosine_ops);
ALTER TABLE halt SET (parallel_workers = 2);
SET max_parallel_maintenance_workers = 2;
SET min_parallel_table_scan_size = 0;
CREATE INDEX halt_l1 ON halt USING hnsw (emb vector_l1_ops);
RESET max_parallel_maintenance_workers;
RESET min_parallel_table_scan_size;
ALTER TABLE halt RESET (parallel_workers);
SELECT id FROM halt ORDER BY emb <=> '[1,2,3]' LIMIT 1;
SELECT id FROM halt ORDER BY emb <+> '[6.6,10.4,12.6]' LIMIT 1;
INSERT INTO halt VALUES (306, '[1,2]');
DROP INDEX halt_cos, halt_l1;

-- back to vector(3): the table is checked and the index rebuilt
ALTER TABLE halt ALTER COLUMN emb TYPE vector(3);
SELECT pg_relation_filenode('halt_idx') AS filenode \gset
SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute
WHERE attrelid = 'halt'::regclass AND attname = 'emb';
INSERT INTO halt VALUES (307, '[0.45,0.5,0.6]');
INSERT INTO halt VALUES (308, '[1,2]');
EXPLAIN (COSTS OFF) SELECT id FROM halt ORDER BY emb <-> '[0.4,0.5,0.6]' LIMIT 3;
SELECT id FROM halt ORDER BY emb <-> '[0.4,0.5,0.6]' LIMIT 3;
-- and back again, with a vacuum in between
ALTER TABLE halt ALTER COLUMN emb TYPE vector;
SELECT pg_relation_filenode('halt_idx') = :filenode AS index_kept;
DELETE FROM halt WHERE id = 304;
VACUUM halt;
INSERT INTO halt VALUES (309, '[0.4,0.5,0.61]');
SELECT id FROM halt ORDER BY emb <-> '[0.4,0.5,0.6]' LIMIT 3;

-- builds on a column without dimensions
CREATE TABLE hnodim (id int, emb vector);
-- no vectors to take them from: an error with a hint
CREATE INDEX ON hnodim USING hnsw (emb);
INSERT INTO hnodim SELECT i, NULL FROM generate_series(1, 2000) i;
CREATE INDEX ON hnodim USING hnsw (emb);
-- the first vector comes after blocks of NULLs
INSERT INTO hnodim VALUES (2001, '[1,2]'), (2002, '[3,4]');
CREATE INDEX hnodim_idx ON hnodim USING hnsw (emb);
SELECT id FROM hnodim ORDER BY emb <-> '[2.9,4]' LIMIT 1;
-- the index holds them to its dimensions
INSERT INTO hnodim VALUES (2003, '[1,2,3]');
-- vectors that disagree: the build fails naming both counts
DROP INDEX hnodim_idx;
INSERT INTO hnodim VALUES (2003, '[1,2,3]');
CREATE INDEX hnodim_idx ON hnodim USING hnsw (emb);
DELETE FROM hnodim WHERE id = 2003;
CREATE INDEX hnodim_idx ON hnodim USING hnsw (emb);
-- more dimensions than an index can hold
CREATE TABLE hwide (emb vector);
INSERT INTO hwide SELECT array_fill(1, ARRAY[2001])::vector;
CREATE INDEX ON hwide USING hnsw (emb);
DROP TABLE hwide;
-- TRUNCATE rebuilds the index on no rows: the same error as an empty table
TRUNCATE hnodim;
RESET enable_seqscan;

DROP TABLE halt, hnodim;
