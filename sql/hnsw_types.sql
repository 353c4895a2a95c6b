-- hnsw opclasses of halfvec, bit and sparsevec: each one's index is chosen by the
-- planner and returns every row in the order of a plain sort; NULLs and
-- (under cosine) zero vectors are left out; the dimension limits; the
-- expression-index recipes of the README
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- Every opclass goes through the same check: on rows of one table, the
-- index on col with opclass must be what the plan of ORDER BY col op q
-- uses, and on a search made exhaustive (ef_search 1000 on 300 rows) it
-- must return every non-NULL row, with the distances of a plain sort in
-- the same order (ties may come in any order, so distances, not ids, are
-- compared; and the ids as a set).
CREATE FUNCTION hnsw_check(tbl regclass, col text, opclass text, op text,
						   q text, qtype text)
RETURNS TABLE (opclass_ text, indexed bigint, uses_index boolean,
			   same_distances boolean, same_rows boolean)
LANGUAGE plpgsql AS $$
DECLARE
	expect_d float8[];
	expect_ids int[];
	got_d float8[];
	got_ids int[];
	plan text := '';
	line text;
	ord text := format('%I %s %L::%s', col, op, q, qtype);
BEGIN
	PERFORM set_config('enable_indexscan', 'off', false);
	EXECUTE format('SELECT array_agg(d ORDER BY d), array_agg(id ORDER BY id) FROM '
				   '(SELECT id, %s AS d FROM %s WHERE %I IS NOT NULL) s',
				   ord, tbl, col)
		INTO expect_d, expect_ids;
	PERFORM set_config('enable_indexscan', 'on', false);
	EXECUTE format('CREATE INDEX hnsw_check_idx ON %s USING hnsw (%I %s)',
				   tbl, col, opclass);
	PERFORM set_config('enable_seqscan', 'off', false);
	PERFORM set_config('hnsw.ef_search', '1000', false);
	FOR line IN EXECUTE format('EXPLAIN (COSTS OFF) SELECT id FROM %s ORDER BY %s LIMIT 5',
							   tbl, ord)
	LOOP
		plan := plan || line;
	END LOOP;
	EXECUTE format('SELECT array_agg(d ORDER BY n), array_agg(id ORDER BY id) FROM '
				   '(SELECT id, %s AS d, row_number() OVER () AS n FROM '
				   '(SELECT id, %I FROM %s ORDER BY %s LIMIT 100000) o) s',
				   ord, col, tbl, ord)
		INTO got_d, got_ids;
	PERFORM set_config('enable_seqscan', 'on', false);
	PERFORM set_config('hnsw.ef_search', '40', false);
	EXECUTE 'DROP INDEX hnsw_check_idx';
	RETURN QUERY SELECT opclass, coalesce(array_length(got_ids, 1), 0)::bigint,
		plan LIKE '%Index Scan using hnsw_check_idx%',
		got_d = expect_d, got_ids = expect_ids;
END
$$;

------------------------------------------------------------------------
-- halfvec: 300 rows of 3 dimensions (Weyl sequences: deterministic,
-- irregular), one NULL and one zero vector
------------------------------------------------------------------------
CREATE TABLE hhalf (id int, emb halfvec(3));
INSERT INTO hhalf
SELECT i, ARRAY[round((i * 0.7548776662) % 1 * 100, 2),
				round((i * 0.5698402910) % 1 * 100, 2) - 50,
				round((i * 0.3819660113) % 1 * 100, 2) - 20]::halfvec
FROM generate_series(1, 300) i;
INSERT INTO hhalf VALUES (301, NULL), (302, '[0,0,0]');

SELECT * FROM hnsw_check('hhalf', 'emb', 'halfvec_l2_ops', '<->', '[10.5,-40.25,3.125]', 'halfvec');
SELECT * FROM hnsw_check('hhalf', 'emb', 'halfvec_ip_ops', '<#>', '[10.5,-40.25,3.125]', 'halfvec');
SELECT * FROM hnsw_check('hhalf', 'emb', 'halfvec_l1_ops', '<+>', '[10.5,-40.25,3.125]', 'halfvec');
-- cosine leaves the zero vector out (its distance is NaN): 300 rows
DELETE FROM hhalf WHERE id = 302;
SELECT * FROM hnsw_check('hhalf', 'emb', 'halfvec_cosine_ops', '<=>', '[10.5,-40.25,3.125]', 'halfvec');
INSERT INTO hhalf VALUES (302, '[0,0,0]');
CREATE INDEX hhalf_cos ON hhalf USING hnsw (emb halfvec_cosine_ops);
SELECT elements - deleted AS live_elements, heap_tids, unreachable, unreachable_upper
FROM hnsw_verify('hhalf_cos', true);
SET enable_seqscan = off;
-- the zero row is not in the index: 300 of the 301 non-NULL rows
SELECT count(*) FROM (SELECT id FROM hhalf ORDER BY emb <=> '[1,2,3]' LIMIT 1000) s;
-- a zero query has no distance: the index returns every row it holds;
-- a NULL one makes every distance NULL (all 302 rows, as a seq scan)
SELECT count(*) FROM (SELECT id FROM hhalf ORDER BY emb <=> '[0,0,0]' LIMIT 1000) s;
SELECT count(*) FROM (SELECT id FROM hhalf ORDER BY emb <=> NULL::halfvec LIMIT 1000) s;
RESET enable_seqscan;
DROP INDEX hhalf_cos;

-- the index follows inserts, deletes and VACUUM
CREATE INDEX hhalf_l2 ON hhalf USING hnsw (emb halfvec_l2_ops);
INSERT INTO hhalf SELECT i, ARRAY[i, -i, i / 2.0]::halfvec FROM generate_series(400, 420) i;
DELETE FROM hhalf WHERE id % 3 = 0;
VACUUM hhalf;
SELECT elements - deleted AS live_elements, heap_tids, unreachable, unreachable_upper
FROM hnsw_verify('hhalf_l2', true);
SET enable_seqscan = off;
SET hnsw.ef_search = 1000;
SELECT id, emb, round((emb <-> '[405,-405,202]')::numeric, 3) AS dist
FROM hhalf ORDER BY emb <-> '[405,-405,202]' LIMIT 3;
RESET hnsw.ef_search;
RESET enable_seqscan;
DROP INDEX hhalf_l2;

-- wrong dimensions
CREATE INDEX hhalf_l2 ON hhalf USING hnsw (emb halfvec_l2_ops);
SELECT id FROM hhalf ORDER BY emb <-> '[1,2]' LIMIT 1;
DROP TABLE hhalf;

-- dimension limits: 4000 halves index, 4001 do not
CREATE TABLE hhalf4000 (id int, emb halfvec(4000));
INSERT INTO hhalf4000 SELECT i, array_fill(i, ARRAY[4000])::halfvec FROM generate_series(1, 5) i;
CREATE INDEX hhalf4000_idx ON hhalf4000 USING hnsw (emb halfvec_l2_ops);
INSERT INTO hhalf4000 SELECT i, array_fill(i, ARRAY[4000])::halfvec FROM generate_series(6, 8) i;
SET enable_seqscan = off;
SELECT id FROM hhalf4000 ORDER BY emb <-> array_fill(7, ARRAY[4000])::halfvec LIMIT 3;
RESET enable_seqscan;
SELECT elements - deleted AS live_elements, heap_tids, unreachable, unreachable_upper
FROM hnsw_verify('hhalf4000_idx', true);
DROP TABLE hhalf4000;
CREATE TABLE hhalf4001 (id int, emb halfvec(4001));
CREATE INDEX ON hhalf4001 USING hnsw (emb halfvec_l2_ops);
DROP TABLE hhalf4001;
-- a column without dimensions takes them from its rows, within the limit
CREATE TABLE hhalfnodim (id int, emb halfvec);
INSERT INTO hhalfnodim VALUES (1, array_fill(1, ARRAY[4001])::halfvec);
CREATE INDEX ON hhalfnodim USING hnsw (emb halfvec_l2_ops);
DROP TABLE hhalfnodim;

------------------------------------------------------------------------
-- bit: 300 strings of 40 bits (a multiplicative hash of the id), and a
-- NULL one
------------------------------------------------------------------------
CREATE TABLE hbit (id int, b bit(40));
INSERT INTO hbit
SELECT i, (i::bigint * 2654435761 % 1099511627776)::bit(40)
FROM generate_series(1, 300) i;
INSERT INTO hbit VALUES (301, NULL);
SELECT count(DISTINCT b) AS distinct_strings FROM hbit;

SELECT * FROM hnsw_check('hbit', 'b', 'bit_hamming_ops', '<~>', '1010101010101010101010101010101010101010', 'bit(40)');
-- Jaccard: an all-zero string is at distance 1 from everything, and indexed
INSERT INTO hbit VALUES (302, B'0000000000000000000000000000000000000000');
SELECT * FROM hnsw_check('hbit', 'b', 'bit_jaccard_ops', '<%>', '1010101010101010101010101010101010101010', 'bit(40)');
SELECT * FROM hnsw_check('hbit', 'b', 'bit_jaccard_ops', '<%>', '0000000000000000000000000000000000000000', 'bit(40)');

-- inserts, deletes, VACUUM
CREATE INDEX hbit_ham ON hbit USING hnsw (b bit_hamming_ops);
INSERT INTO hbit SELECT i, (i::bigint * 40503 % 1099511627776)::bit(40) FROM generate_series(400, 450) i;
DELETE FROM hbit WHERE id % 4 = 0;
VACUUM hbit;
SELECT elements - deleted AS live_elements, heap_tids, unreachable, unreachable_upper
FROM hnsw_verify('hbit_ham', true);
SET enable_seqscan = off;
SET hnsw.ef_search = 1000;
SELECT id, b <~> (401::bigint * 40503 % 1099511627776)::bit(40) AS dist
FROM hbit ORDER BY b <~> (401::bigint * 40503 % 1099511627776)::bit(40) LIMIT 1;
RESET hnsw.ef_search;
-- a string of another length
SELECT id FROM hbit ORDER BY b <~> B'101' LIMIT 1;
RESET enable_seqscan;
DROP TABLE hbit;

-- length limits: 64000 bits index, 64001 do not
CREATE TABLE hbit64000 (id int, b bit(64000));
INSERT INTO hbit64000 SELECT i, repeat(CASE WHEN i % 2 = 0 THEN '10' ELSE '01' END, 32000)::bit(64000)
FROM generate_series(1, 4) i;
CREATE INDEX hbit64000_idx ON hbit64000 USING hnsw (b bit_hamming_ops);
SET enable_seqscan = off;
SELECT id, b <~> repeat('10', 32000)::bit(64000) AS dist
FROM hbit64000 ORDER BY b <~> repeat('10', 32000)::bit(64000) LIMIT 4;
RESET enable_seqscan;
SELECT elements - deleted AS live_elements, heap_tids, unreachable, unreachable_upper
FROM hnsw_verify('hbit64000_idx', true);
DROP TABLE hbit64000;
CREATE TABLE hbit64001 (id int, b bit(64001));
CREATE INDEX ON hbit64001 USING hnsw (b bit_jaccard_ops);
DROP TABLE hbit64001;

------------------------------------------------------------------------
-- sparsevec: 300 vectors of 100 dimensions with up to three non-zero
-- elements each (a value that rounds to 0 is left out), a NULL and a zero
-- vector.  (Rows whose non-zero elements share no index with most others
-- can leave a freshly built graph in parts, which only VACUUM joins;
-- vector's build does so too on such rows.)
------------------------------------------------------------------------
CREATE TABLE hsparse (id int, emb sparsevec(100));
INSERT INTO hsparse
SELECT i, format('{1:%s,50:%s,100:%s}/100',
				 round((i * 0.7548776662) % 1 * 100, 0),
				 round((i * 0.5698402910) % 1 * 100, 0) - 50,
				 round((i * 0.3819660113) % 1 * 100, 0) - 20)::sparsevec
FROM generate_series(1, 300) i;
SELECT count(*) FILTER (WHERE emb <> emb::vector::sparsevec) AS differ,
	   sum(cardinality(string_to_array(emb::text, ','))) AS pairs
FROM hsparse;
INSERT INTO hsparse VALUES (301, NULL), (302, '{}/100');

SELECT * FROM hnsw_check('hsparse', 'emb', 'sparsevec_l2_ops', '<->', '{1:10.5,40:-3,70:2.5}/100', 'sparsevec');
SELECT * FROM hnsw_check('hsparse', 'emb', 'sparsevec_ip_ops', '<#>', '{1:10.5,40:-3,70:2.5}/100', 'sparsevec');
SELECT * FROM hnsw_check('hsparse', 'emb', 'sparsevec_l1_ops', '<+>', '{1:10.5,40:-3,70:2.5}/100', 'sparsevec');
-- cosine leaves the zero vector out: 300 rows
DELETE FROM hsparse WHERE id = 302;
SELECT * FROM hnsw_check('hsparse', 'emb', 'sparsevec_cosine_ops', '<=>', '{1:10.5,40:-3,70:2.5}/100', 'sparsevec');
INSERT INTO hsparse VALUES (302, '{}/100');
CREATE INDEX hsparse_cos ON hsparse USING hnsw (emb sparsevec_cosine_ops);
SELECT elements - deleted AS live_elements, heap_tids, unreachable, unreachable_upper
FROM hnsw_verify('hsparse_cos', true);
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT id FROM hsparse ORDER BY emb <=> '{2:1}/100' LIMIT 1000) s;
SELECT count(*) FROM (SELECT id FROM hsparse ORDER BY emb <=> '{}/100' LIMIT 1000) s;
RESET enable_seqscan;
DROP INDEX hsparse_cos;

-- inserts, deletes, VACUUM
CREATE INDEX hsparse_l2 ON hsparse USING hnsw (emb sparsevec_l2_ops);
INSERT INTO hsparse SELECT i, format('{%s:%s}/100', i - 399, i)::sparsevec FROM generate_series(400, 420) i;
DELETE FROM hsparse WHERE id % 3 = 0;
VACUUM hsparse;
SELECT elements - deleted AS live_elements, heap_tids, unreachable, unreachable_upper
FROM hnsw_verify('hsparse_l2', true);
SET enable_seqscan = off;
SET hnsw.ef_search = 1000;
SELECT id, emb, round((emb <-> '{5:404}/100')::numeric, 3) AS dist
FROM hsparse ORDER BY emb <-> '{5:404}/100' LIMIT 1;
RESET hnsw.ef_search;
-- wrong dimensions
SELECT id FROM hsparse ORDER BY emb <-> '{1:1}/99' LIMIT 1;
RESET enable_seqscan;
DROP TABLE hsparse;

-- non-zero limits: 1000 elements index, 1001 do not (at build, insert and
-- query); the dimensions may be many
CREATE TABLE hsparse1000 (id int, emb sparsevec(1000000));
INSERT INTO hsparse1000
SELECT i, ('{' || string_agg(k * 997 || ':' || i, ',') || '}/1000000')::sparsevec
FROM generate_series(1, 3) i, generate_series(1, 1000) k GROUP BY i;
CREATE INDEX hsparse1000_idx ON hsparse1000 USING hnsw (emb sparsevec_l1_ops);
SET enable_seqscan = off;
SELECT id FROM hsparse1000 ORDER BY emb <+> (SELECT emb FROM hsparse1000 WHERE id = 2) LIMIT 3;
RESET enable_seqscan;
SELECT elements - deleted AS live_elements, heap_tids, unreachable, unreachable_upper
FROM hnsw_verify('hsparse1000_idx', true);
INSERT INTO hsparse1000
SELECT 4, ('{' || string_agg(k * 997 || ':1', ',') || '}/1000000')::sparsevec
FROM generate_series(1, 1001) k;
SET enable_seqscan = off;
SELECT id FROM hsparse1000
ORDER BY emb <+> (SELECT ('{' || string_agg(k * 997 || ':1', ',') || '}/1000000')::sparsevec
				  FROM generate_series(1, 1001) k)
LIMIT 1;
RESET enable_seqscan;
DROP INDEX hsparse1000_idx;
INSERT INTO hsparse1000
SELECT 4, ('{' || string_agg(k * 997 || ':1', ',') || '}/1000000')::sparsevec
FROM generate_series(1, 1001) k;
CREATE INDEX hsparse1000_idx ON hsparse1000 USING hnsw (emb sparsevec_l1_ops);
DROP TABLE hsparse1000;

------------------------------------------------------------------------
-- The README's recipes
------------------------------------------------------------------------
CREATE TABLE hitems (id int, emb vector(32));
INSERT INTO hitems
SELECT i, array_agg(sin(i * k + k * k) ORDER BY k)::vector
FROM generate_series(1, 300) i, generate_series(1, 32) k GROUP BY i;
\set q '(SELECT array_agg(cos(k * 0.7) ORDER BY k)::vector FROM generate_series(1, 32) k)'
SET enable_indexscan = off;
SELECT array_agg(id) AS exact FROM (SELECT id FROM hitems ORDER BY emb <=> :q LIMIT 5) s \gset
RESET enable_indexscan;
-- embeddings wider than vector can index, indexed as halfvec
CREATE INDEX hitems_half ON hitems USING hnsw ((emb::halfvec(32)) halfvec_cosine_ops);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM hitems ORDER BY emb::halfvec(32) <=> (:q)::halfvec(32) LIMIT 5;
SELECT array_agg(id) = :'exact' AS halfvec_finds_exact
FROM (SELECT id FROM hitems ORDER BY emb::halfvec(32) <=> (:q)::halfvec(32) LIMIT 5) s;
RESET enable_seqscan;
DROP INDEX hitems_half;
-- binary quantization, re-ranked by the full vectors
CREATE INDEX hitems_bq ON hitems USING hnsw ((binary_quantize(emb)::bit(32)) bit_hamming_ops);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM hitems
ORDER BY binary_quantize(emb)::bit(32) <~> binary_quantize(:q) LIMIT 100;
SET hnsw.ef_search = 100;
SELECT array_agg(id) = :'exact' AS reranked_finds_exact FROM (
	SELECT id FROM (
		SELECT id, emb FROM hitems
		ORDER BY binary_quantize(emb)::bit(32) <~> binary_quantize(:q)
		LIMIT 100
	) c ORDER BY emb <=> :q LIMIT 5
) s;
RESET hnsw.ef_search;
RESET enable_seqscan;
DROP TABLE hitems;

DROP FUNCTION hnsw_check;
