-- pg_stat_user_indexes.idx_scan counts hnsw index scans: once per search
-- started, so once per rescan, as btree counts its descents (a count of 0
-- makes monitoring report the index unused)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;

CREATE TABLE hstat (id int, emb vector(3));
INSERT INTO hstat SELECT i, ARRAY[i, i % 7, 1]::vector FROM generate_series(1, 50) i;
CREATE INDEX hstat_idx ON hstat USING hnsw (emb);
SELECT pg_stat_force_next_flush();
SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'hstat_idx';

SET enable_seqscan = off;
-- three scans, one of them for a NULL query (it walks the index)
SELECT id FROM hstat ORDER BY emb <-> '[3,3,1]' LIMIT 1;
SELECT count(*) FROM (SELECT id FROM hstat ORDER BY emb <-> (SELECT NULL::vector) LIMIT 2) s;
SELECT id FROM hstat ORDER BY emb <-> '[0,0,0]' LIMIT 1;
-- a scan that is never fetched from starts no search and counts nothing
EXPLAIN (COSTS OFF) SELECT id FROM hstat ORDER BY emb <-> '[3,3,1]' LIMIT 1;
SELECT pg_stat_force_next_flush();
SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'hstat_idx';

-- one scan rescanned for each of four outer rows: four searches
SELECT array_agg(nn ORDER BY q) AS nearest
FROM (VALUES (1), (10), (20), (40)) v(q),
	 LATERAL (SELECT id AS nn FROM hstat
			  ORDER BY emb <-> ARRAY[q, q % 7, 1]::vector LIMIT 1) s;
SELECT pg_stat_force_next_flush();
SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'hstat_idx';
RESET enable_seqscan;
DROP TABLE hstat;
