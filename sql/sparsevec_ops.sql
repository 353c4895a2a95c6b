-- sparsevec distances, functions, comparisons and casts
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- distances, as functions and operators
SELECT l2_distance('{}/2'::sparsevec, '{1:3,2:4}/2'), '{1:1,2:2}/3'::sparsevec <-> '{2:1,3:1}/3';
SELECT inner_product('{1:1,2:2}/3'::sparsevec, '{2:3,3:4}/3'), '{1:1,2:2}/3'::sparsevec <#> '{2:3,3:4}/3';
SELECT cosine_distance('{1:1,2:2}/2'::sparsevec, '{1:2,2:4}/2'), '{1:1}/2'::sparsevec <=> '{2:1}/2',
	'{1:1}/2'::sparsevec <=> '{1:-1}/2', '{}/2'::sparsevec <=> '{1:1}/2';
SELECT l1_distance('{1:1,3:-2}/3'::sparsevec, '{2:3,3:2}/3'), '{}/3'::sparsevec <+> '{1:-1,2:2}/3';
SELECT sparsevec_l2_squared_distance('{1:3}/2', '{2:4}/2'),
	sparsevec_negative_inner_product('{1:3,2:1}/2', '{1:2,2:4}/2');
-- the same distances as the dense vectors, on overlapping and disjoint indices
SELECT count(*) FILTER (WHERE abs((a <-> b) - (a::vector <-> b::vector)) < 1e-6
						AND abs((a <#> b) - (a::vector <#> b::vector)) < 1e-6
						AND abs((a <+> b) - (a::vector <+> b::vector)) < 1e-6
						AND abs((a <=> b) - (a::vector <=> b::vector)) < 1e-6) AS agree,
	count(*) AS pairs
FROM (SELECT ARRAY(SELECT CASE WHEN (i * 7 + n) % 3 = 0 THEN (i % 5) - 2 ELSE 0 END FROM generate_series(1, 20) i)::sparsevec AS a,
		 ARRAY(SELECT CASE WHEN (i * 5 + n) % 4 = 1 THEN (i % 7) - 3 ELSE 0 END FROM generate_series(1, 20) i)::sparsevec AS b
	  FROM generate_series(1, 30) n) t
WHERE l2_norm(a) > 0 AND l2_norm(b) > 0;
SELECT '{1:1}/2'::sparsevec <-> '{1:1}/3';
SELECT inner_product('{1:1}/2'::sparsevec, '{1:1}/3');

-- norm and normalization
SELECT l2_norm('{1:3,5:4}/5'::sparsevec), l2_norm('{}/5'::sparsevec);
SELECT l2_normalize('{1:3,5:4}/5'::sparsevec), l2_normalize('{}/5'::sparsevec),
	l2_normalize('{1:3e38,2:1e-45}/2'::sparsevec);

-- comparisons: as the dense vectors compare
SELECT '{1:1}/2'::sparsevec < '{1:2}/2', '{2:1}/2'::sparsevec > '{1:1}/2',
	'{1:1}/2'::sparsevec = '{1:1}/2', '{1:1}/2'::sparsevec <> '{1:1}/3',
	'{1:1}/2'::sparsevec < '{1:1}/3', '{2:-1}/2'::sparsevec < '{}/2',
	'{3:5}/3'::sparsevec > '{}/2', '{1:1}/3'::sparsevec >= '{1:1,2:0.5}/2',
	'{}/2'::sparsevec <= '{}/2';
SELECT sparsevec_cmp(a, b) = vector_cmp(a::vector, b::vector) AS same_order, count(*)
FROM (SELECT ('{' || (n % 3) + 1 || ':' || n % 5 - 2 || '}/' || n % 2 + 3)::sparsevec AS a,
		 ('{' || (n * 7 % 3) + 1 || ':' || n % 3 - 1 || '}/' || n % 3 + 3)::sparsevec AS b
	  FROM generate_series(1, 60) n) t
GROUP BY 1;
CREATE TABLE scmp (id int, v sparsevec);
INSERT INTO scmp VALUES (1, '{1:1}/3'), (2, '{}/3'), (3, '{2:-1}/3'), (4, '{1:1}/3'), (5, '{1:1}/2'), (6, NULL);
SELECT id, v FROM scmp ORDER BY v, id;
SELECT v, count(*) FROM scmp GROUP BY v ORDER BY v;
CREATE UNIQUE INDEX ON scmp (v);
DELETE FROM scmp WHERE id = 4;
CREATE UNIQUE INDEX scmp_v ON scmp (v);
SET enable_seqscan = off;
SELECT id FROM scmp WHERE v = '{1:1}/3';
RESET enable_seqscan;
DROP TABLE scmp;

-- casts with vector and halfvec
SELECT '[0,1.5,0,-2]'::vector::sparsevec, '{2:1.5,4:-2}/4'::sparsevec::vector,
	'[0,0.1,0]'::halfvec::sparsevec, '{2:0.1}/3'::sparsevec::halfvec;
SELECT '{1:1}/3'::sparsevec::vector(3), '[1,0,0]'::vector::sparsevec(3);
SELECT '{1:1}/3'::sparsevec::vector(2);
SELECT '{1:1}/16001'::sparsevec::vector;
SELECT '{1:1}/16001'::sparsevec::halfvec;
SELECT '{1:70000}/1'::sparsevec::halfvec;
SELECT vector_dims('{}/16000'::sparsevec::vector);
-- implicit from vector and halfvec, by assignment to vector and halfvec
SELECT '[1,0]'::vector <-> '{2:1}/2'::sparsevec, pg_typeof('[1,0]'::halfvec <=> '{2:1}/2'::sparsevec);
CREATE TABLE scast (s sparsevec(3), v vector(3), h halfvec(3));
INSERT INTO scast VALUES ('[1,0,2]'::vector, '{1:1}/3'::sparsevec, '{3:2}/3'::sparsevec);
SELECT * FROM scast;
DROP TABLE scast;
-- arrays, by assignment
SELECT ARRAY[0,1,0]::sparsevec, ARRAY[0,1.5]::real[]::sparsevec,
	ARRAY[0.1,0]::double precision[]::sparsevec, ARRAY[0,-2.5]::numeric[]::sparsevec;
SELECT ARRAY[0,0]::sparsevec(2);
SELECT ARRAY[1,2]::sparsevec(3);
SELECT ARRAY['NaN']::real[]::sparsevec;
SELECT ARRAY[]::integer[]::sparsevec;
SELECT array_fill(1, ARRAY[16001])::sparsevec;
SELECT l2_norm(array_fill(0, ARRAY[100000])::sparsevec);
