-- halfvec distances, functions, arithmetic, comparisons and aggregates
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- distances, as functions and operators
SELECT l2_distance('[0,0]'::halfvec, '[3,4]'), '[0,0]'::halfvec <-> '[3,4]';
SELECT inner_product('[1,2]'::halfvec, '[3,4]'), '[1,2]'::halfvec <#> '[3,4]';
SELECT cosine_distance('[1,2]'::halfvec, '[2,4]'), '[1,0]'::halfvec <=> '[0,1]',
	'[1,1]'::halfvec <=> '[-1,-1]';
SELECT l1_distance('[0,0]'::halfvec, '[3,-4]'), '[1,2]'::halfvec <+> '[-1,5]';
SELECT halfvec_l2_squared_distance('[0,0]', '[3,4]'),
	halfvec_negative_inner_product('[1,2]', '[3,4]'),
	halfvec_spherical_distance('[1,0]', '[0,1]');
-- a zero vector has no cosine distance
SELECT cosine_distance('[0,0]'::halfvec, '[1,1]');
-- distances are computed on the halves: 0.1 is 0.0999755859375
SELECT '[0.1]'::halfvec <-> '[0]', inner_product('[0.1]'::halfvec, '[1]');
-- large values do not overflow the float sums
SELECT '[65504,65504]'::halfvec <-> '[-65504,-65504]',
	inner_product('[65504,65504]'::halfvec, '[65504,65504]');
-- the kernels' SIMD and tail paths agree with plain SQL on 1..40 dimensions
SELECT count(*) FILTER (WHERE abs(d.l2 - sqrt(d.l2ref)) <= 1e-5 * sqrt(d.l2ref)
						AND abs(d.ip - d.ipref) <= 1e-5 * d.ipabs
						AND abs(d.l1 - d.l1ref) <= 1e-5 * d.l1ref) AS agree,
	count(*) AS dims
FROM (SELECT n, a <-> b AS l2, inner_product(a, b) AS ip, a <+> b AS l1,
		 (SELECT sum((x - y) ^ 2) FROM unnest(a::real[], b::real[]) AS u(x, y)) AS l2ref,
		 (SELECT sum(x * y) FROM unnest(a::real[], b::real[]) AS u(x, y)) AS ipref,
		 (SELECT sum(abs(x * y)) FROM unnest(a::real[], b::real[]) AS u(x, y)) AS ipabs,
		 (SELECT sum(abs(x - y)) FROM unnest(a::real[], b::real[]) AS u(x, y)) AS l1ref
	  FROM (SELECT n,
			   (SELECT array_agg(((i * 7 + n) % 13 - 6) / 4.0 ORDER BY i) FROM generate_series(1, n) i)::halfvec AS a,
			   (SELECT array_agg(((i * 5 + n) % 11 - 5) / 8.0 ORDER BY i) FROM generate_series(1, n) i)::halfvec AS b
		  FROM generate_series(1, 40) n) v) d;
-- different dimensions are an error
SELECT '[1,2]'::halfvec <-> '[1,2,3]';
SELECT inner_product('[1]'::halfvec, '[1,2]');
SELECT '[1]'::halfvec <=> '[1,2]';
SELECT '[1]'::halfvec <+> '[1,2]';

-- functions
SELECT vector_dims('[1,2,3]'::halfvec), l2_norm('[3,4]'::halfvec), l2_norm('[0,0]'::halfvec);
SELECT l2_normalize('[3,4]'::halfvec), l2_normalize('[0,0]'::halfvec),
	l2_normalize('[65504,65504]'::halfvec);
SELECT subvector('[1,2,3,4,5]'::halfvec, 2, 3), subvector('[1,2,3]'::halfvec, -1, 3),
	subvector('[1,2,3]'::halfvec, 3, 10);
SELECT subvector('[1,2,3]'::halfvec, 4, 1);
SELECT subvector('[1,2,3]'::halfvec, 1, 0);

-- arithmetic, rounded to half; overflow and underflow are errors
SELECT '[1,2,3]'::halfvec + '[4,5,6]', '[1,2,3]'::halfvec - '[4,5,6]',
	'[1,2,3]'::halfvec * '[4,5,6]', '[0.1]'::halfvec + '[0.2]';
SELECT '[65504]'::halfvec + '[65504]';
SELECT '[-65504]'::halfvec - '[65504]';
SELECT '[256]'::halfvec * '[256]';
SELECT '[1e-4]'::halfvec * '[1e-4]';
SELECT '[1,2]'::halfvec + '[1]';
SELECT '[1,2]'::halfvec || '[3]'::halfvec;
SELECT vector_dims(array_fill(1, ARRAY[8000])::halfvec || array_fill(1, ARRAY[8000])::halfvec);
SELECT array_fill(1, ARRAY[8000])::halfvec || array_fill(1, ARRAY[8001])::halfvec;

-- comparisons: element-wise, then the shorter first
SELECT '[1,2]'::halfvec < '[1,3]', '[1,2]'::halfvec <= '[1,2]', '[1,2]'::halfvec = '[1,2]',
	'[1,2]'::halfvec <> '[1,2]', '[1,3]'::halfvec >= '[1,2]', '[1,3]'::halfvec > '[1,2,0]',
	'[1]'::halfvec < '[1,0]', '[-0]'::halfvec = '[0]';
-- equal after rounding to half
SELECT '[0.1]'::halfvec = '[0.09997]', halfvec_cmp('[2]', '[1,5]');
-- the btree opclass: ORDER BY, DISTINCT, a unique index
CREATE TABLE hcmp (id int, v halfvec);
INSERT INTO hcmp VALUES (1, '[1,2]'), (2, '[1]'), (3, '[0.5,9]'), (4, '[1,2]'), (5, '[1,2,0]'), (6, NULL);
SELECT id, v FROM hcmp ORDER BY v, id;
SELECT DISTINCT v FROM hcmp ORDER BY v;
SELECT v, count(*) FROM hcmp GROUP BY v ORDER BY v;
CREATE UNIQUE INDEX ON hcmp (v);
DELETE FROM hcmp WHERE id = 4;
CREATE UNIQUE INDEX hcmp_v ON hcmp (v);
SET enable_seqscan = off;
SELECT id FROM hcmp WHERE v = '[1,2]';
RESET enable_seqscan;
DROP TABLE hcmp;

-- avg and sum, in float8 then rounded to half
CREATE TABLE hagg (v halfvec);
SELECT avg(v), sum(v) FROM hagg;
INSERT INTO hagg VALUES ('[1,2,3]'), ('[3,4,5]'), (NULL), ('[0.1,0.1,0.1]');
SELECT avg(v), sum(v) FROM hagg;
INSERT INTO hagg VALUES ('[1,2]');
SELECT avg(v) FROM hagg;
DELETE FROM hagg;
INSERT INTO hagg VALUES ('[60000]'), ('[60000]');
SELECT avg(v) FROM hagg;
SELECT sum(v) FROM hagg;
-- in parallel, through the combine function
DELETE FROM hagg;
INSERT INTO hagg SELECT ARRAY[i % 3, 1]::halfvec FROM generate_series(1, 30000) i;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT avg(v) FROM hagg;
SELECT avg(v), sum(v) FROM hagg;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
DROP TABLE hagg;
