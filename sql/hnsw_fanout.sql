-- hnsw_fanout_sql(): the text of the fan-out k-NN query over a partitioned
-- table's leaves, on local partitions (its use with postgres_fdw shards,
-- async foreign scans and LIMIT pushdown, is test/t/070_hnsw_scale_out.pl's):
-- the text itself, quoting, a sub-partitioned tree, the plan (an Append of
-- one Limit over an index scan per leaf), the rows (those of the plain
-- query, through the indexes and exactly), and its errors.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- 300 rows of 3 dimensions (Weyl sequences: deterministic, irregular),
-- over three hash partitions, the third of them split in two.
CREATE TABLE fan (id int, tag text, emb vector(3)) PARTITION BY HASH (id);
CREATE TABLE fan_a PARTITION OF fan FOR VALUES WITH (MODULUS 3, REMAINDER 0);
CREATE TABLE fan_b PARTITION OF fan FOR VALUES WITH (MODULUS 3, REMAINDER 1);
CREATE TABLE fan_c PARTITION OF fan FOR VALUES WITH (MODULUS 3, REMAINDER 2)
	PARTITION BY HASH (id);
CREATE TABLE fan_c1 PARTITION OF fan_c FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE fan_c2 PARTITION OF fan_c FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO fan
	SELECT i, 'tag' || i % 7,
		   ARRAY[round((i * 0.7548776662) % 1 * 100, 2),
				 round((i * 0.5698402910) % 1 * 100, 2) - 50,
				 round((i * 0.3819660113) % 1 * 100, 2) - 20]::vector
	FROM generate_series(1, 300) i;
CREATE INDEX fan_emb_idx ON fan USING hnsw (emb vector_l2_ops);
ANALYZE fan;
SELECT tableoid::regclass AS leaf, count(*) FROM fan GROUP BY 1 ORDER BY tableoid::regclass::text;

-- Every leaf, in the order of their names; the parent's columns, then
-- distance; the operator schema-qualified.
SELECT hnsw_fanout_sql('fan', 'emb', 5);
SELECT hnsw_fanout_sql('fan', 'emb', 3, '<=>', '{id,tag}');

-- Quoting, and a text that does not depend on the search_path.
CREATE SCHEMA "Fan Schema";
CREATE TABLE "Fan Schema"."Parts" ("Id" int, "The Emb" vector(2)) PARTITION BY LIST ("Id");
CREATE TABLE "Fan Schema"."Part One" PARTITION OF "Fan Schema"."Parts" FOR VALUES IN (1);
SET search_path = pg_catalog;
SELECT public.hnsw_fanout_sql('"Fan Schema"."Parts"', 'The Emb', 2, '<+>');
RESET search_path;

-- The plan: in the CTE, an Append (no Merge Append) of one Limit over an
-- index scan per leaf; the k nearest of those on top.
SELECT hnsw_fanout_sql('fan', 'emb', 5, columns => '{id}') AS fanout_sql \gset
PREPARE fanout(vector) AS :fanout_sql;
PREPARE plain(vector) AS SELECT id, emb <-> $1 AS distance FROM fan ORDER BY emb <-> $1 LIMIT 5;
SET enable_seqscan = off;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE fanout('[50,0,30]');
SET plan_cache_mode = force_custom_plan;
EXPLAIN (COSTS OFF) EXECUTE fanout('[50,0,30]');
RESET plan_cache_mode;

-- The rows: those of the plain query, through the same indexes (each leaf's
-- index returns its nearest first either way) ...
EXECUTE fanout('[50,0,30]');
CREATE TABLE fan_q AS
	SELECT i AS qid, ARRAY[(i * 37) % 100, (i * 53) % 100 - 50, (i * 71) % 100 - 20]::vector AS q
	FROM generate_series(1, 20) i;
-- Runs both statements for every query of fan_q, into fan_got, a row per
-- result with its position.
CREATE TABLE fan_got (how text, qid int, pos int, id int, distance float8);
CREATE FUNCTION fan_collect() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	qr record;
	r record;
	stmt text;
	n int;
BEGIN
	FOR qr IN SELECT * FROM fan_q ORDER BY qid LOOP
		FOREACH stmt IN ARRAY ARRAY['fanout', 'plain'] LOOP
			n := 0;
			FOR r IN EXECUTE format('EXECUTE %I(%L)', stmt, qr.q) LOOP
				n := n + 1;
				INSERT INTO fan_got VALUES (stmt, qr.qid, n, r.id, r.distance);
			END LOOP;
		END LOOP;
	END LOOP;
END
$$;
SELECT fan_collect();
SELECT count(*) FILTER (WHERE how = 'fanout') AS fanout_rows,
	   count(*) FILTER (WHERE how = 'plain') AS plain_rows
FROM fan_got;
-- rows in one and not the other, position by position: none
(SELECT qid, pos, id, distance FROM fan_got WHERE how = 'fanout'
 EXCEPT SELECT qid, pos, id, distance FROM fan_got WHERE how = 'plain')
UNION ALL
(SELECT qid, pos, id, distance FROM fan_got WHERE how = 'plain'
 EXCEPT SELECT qid, pos, id, distance FROM fan_got WHERE how = 'fanout');

-- ... and, with the indexes out of the plans, the exact nearest rows.
TRUNCATE fan_got;
RESET enable_seqscan;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
DEALLOCATE fanout;
DEALLOCATE plain;
PREPARE fanout(vector) AS :fanout_sql;
PREPARE plain(vector) AS SELECT id, emb <-> $1 AS distance FROM fan ORDER BY emb <-> $1, id LIMIT 5;
EXPLAIN (COSTS OFF) EXECUTE fanout('[50,0,30]');
SELECT fan_collect();
SELECT count(*) FILTER (WHERE how = 'fanout') AS fanout_rows,
	   count(*) FILTER (WHERE how = 'plain') AS plain_rows
FROM fan_got;
-- the same rows per query (no two rows are at the same distance from a
-- query here, so the order is the same too)
SELECT count(DISTINCT (qid, distance)) = count(*) AS no_ties FROM fan_got WHERE how = 'plain';
(SELECT qid, pos, id, distance FROM fan_got WHERE how = 'fanout'
 EXCEPT SELECT qid, pos, id, distance FROM fan_got WHERE how = 'plain')
UNION ALL
(SELECT qid, pos, id, distance FROM fan_got WHERE how = 'plain'
 EXCEPT SELECT qid, pos, id, distance FROM fan_got WHERE how = 'fanout');
RESET enable_indexscan;
RESET enable_bitmapscan;

-- Errors.
SELECT hnsw_fanout_sql('fan', 'emb', 0);
SELECT hnsw_fanout_sql('fan', 'emb', NULL);
SELECT hnsw_fanout_sql('fan_a', 'emb', 5);
SELECT hnsw_fanout_sql('fan', 'nope', 5);
SELECT hnsw_fanout_sql('fan', 'emb', 5, '<<->');
SELECT hnsw_fanout_sql('fan', 'tag', 5);
SELECT hnsw_fanout_sql('fan', 'emb', 5, '<->', '{id,nope}');
SELECT hnsw_fanout_sql('fan', 'emb', 5, '<->', '{}');
SELECT hnsw_fanout_sql('fan', 'emb', 5, '<->', '{id,distance}');
CREATE TABLE fan_d (id int, distance float8, emb vector(3)) PARTITION BY HASH (id);
SELECT hnsw_fanout_sql('fan_d', 'emb', 5);
SELECT hnsw_fanout_sql('fan_d', 'emb', 5, columns => '{id}');
CREATE TABLE fan_d0 PARTITION OF fan_d FOR VALUES WITH (MODULUS 1, REMAINDER 0);
SELECT hnsw_fanout_sql('fan_d', 'emb', 5, columns => '{id,emb}');

DROP FUNCTION fan_collect();
DROP TABLE fan, fan_q, fan_got, fan_d;
DROP SCHEMA "Fan Schema" CASCADE;
