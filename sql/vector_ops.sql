-- vector functions, arithmetic, concatenation, comparison and btree support
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- vector_dims, vector_norm, l2_normalize
SELECT vector_dims('[1,2,3]'::vector), vector_dims('[0]'::vector);
SELECT vector_norm('[3,4]'), vector_norm('[0,0]'), vector_norm('[1,1,1,1]');
SELECT vector_norm('[3e38,3e38]');
SELECT l2_normalize('[3,4]'::vector), l2_normalize('[0,0,0]'::vector), l2_normalize('[-2]'::vector);
SELECT l2_normalize('[3e38,3e38]'::vector), l2_normalize('[1e-45,1e-45]'::vector), l2_normalize('[1e-45,-1]'::vector);
SELECT vector_norm(l2_normalize('[1,2,3,4,5]'::vector)) BETWEEN 0.9999999 AND 1.0000001 AS unit;

-- subvector(v, start, count) is 1-based and clipped like substring()
SELECT subvector('[1,2,3,4,5]'::vector, 1, 3), subvector('[1,2,3,4,5]'::vector, 3, 2),
	subvector('[1,2,3,4,5]'::vector, 5, 1), subvector('[1,2,3,4,5]'::vector, 4, 10);
SELECT subvector('[1,2,3,4,5]'::vector, 0, 2), subvector('[1,2,3,4,5]'::vector, -1, 3),
	subvector('[1,2,3,4,5]'::vector, -3, 10), subvector('[1,2,3,4,5]'::vector, 2, 2147483647);
SELECT subvector('[1,2,3,4,5]'::vector, 6, 1);
SELECT subvector('[1,2,3,4,5]'::vector, 3, 0);
SELECT subvector('[1,2,3,4,5]'::vector, 1, -1);
SELECT subvector('[1,2,3,4,5]'::vector, -1, 2);
SELECT subvector('[1,2,3,4,5]'::vector, 2147483647, 2147483647);
SELECT subvector('[1,2,3,4,5]'::vector, -2147483648, 2147483647);

-- element-wise arithmetic
SELECT '[1,2,3]'::vector + '[4,5,6]', '[1,2,3]'::vector - '[4,5,6]',
	'[1,2,3]'::vector * '[4,5,6]';
SELECT '[0.1]'::vector + '[0.2]', '[1.5,-2]'::vector * '[-2,0]';
SELECT '[1,2]'::vector + '[1,2,3]';
SELECT '[1,2]'::vector - '[1]';
SELECT '[1,2]'::vector * '[1,2,3]';
SELECT '[3e38]'::vector + '[3e38]';
SELECT '[-3e38]'::vector - '[3e38]';
SELECT '[1e20,1]'::vector * '[1e20,1]';
SELECT '[1e-30,1]'::vector * '[1e-30,1]';
SELECT '[3.4028235e38]'::vector + '[-3.4028235e38]', '[1e-45]'::vector * '[0]';

-- concatenation
SELECT '[1,2]'::vector || '[3]', '[1]'::vector || '[1]' || '[1]';
SELECT vector_dims(array_fill(1, ARRAY[8000])::vector || array_fill(2, ARRAY[8000])::vector);
SELECT array_fill(1, ARRAY[8000])::vector || array_fill(2, ARRAY[8001])::vector;

-- comparison: element-wise, then by dimension count
SELECT a, b, a < b AS lt, a <= b AS le, a = b AS eq, a <> b AS ne,
	a >= b AS ge, a > b AS gt, vector_cmp(a, b) AS cmp
FROM (VALUES
	('[1,2,3]'::vector, '[1,2,3]'::vector),
	('[1,2,3]', '[1,2,4]'),
	('[1,2,4]', '[1,2,3]'),
	('[1,2]', '[1,2,3]'),
	('[1,2,3]', '[1,2]'),
	('[2]', '[1,5]'),
	('[1,5]', '[2]'),
	('[-1]', '[1]'),
	('[0]', '[-0]'),
	('[1e-45]', '[0]')
) AS t(a, b);

-- btree: ORDER BY, DISTINCT, GROUP BY, UNIQUE, index scans
CREATE TABLE vops (id serial, v vector);
INSERT INTO vops (v) VALUES ('[1,2,3]'), ('[1,2]'), ('[3]'), ('[1,2,3]'), ('[0,9,9,9]'),
	('[1,2,2]'), (NULL), ('[-1,100]'), ('[3]'), ('[1,2,3,0]');
SELECT v FROM vops ORDER BY v, id;
SELECT v FROM vops ORDER BY v DESC NULLS LAST;
SELECT DISTINCT v FROM vops ORDER BY v;
SELECT v, count(*) FROM vops GROUP BY v ORDER BY v;
SELECT count(DISTINCT v) FROM vops;
SELECT min(id), v FROM vops WHERE v > '[1,2]' AND v <= '[1,2,3]' GROUP BY v ORDER BY v;
CREATE UNIQUE INDEX vops_v ON vops (v);
DELETE FROM vops a USING vops b WHERE a.v = b.v AND a.id > b.id;
CREATE UNIQUE INDEX vops_v ON vops (v);
INSERT INTO vops (v) VALUES ('[1,2,3]');
INSERT INTO vops (v) VALUES ('[1,2,3,4]');
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT v FROM vops WHERE v = '[1,2,3]';
SELECT v FROM vops WHERE v = '[1,2,3]';
SELECT v FROM vops WHERE v >= '[1,2,3]' ORDER BY v;
RESET enable_seqscan;
SELECT opcname, opcdefault FROM pg_opclass c JOIN pg_am a ON a.oid = c.opcmethod
WHERE amname = 'btree' AND opcintype = 'vector'::regtype;
DROP TABLE vops;
-- large vectors are compressed or stored out of line (STORAGE main)
-- and still sort
CREATE TABLE vbig (v vector);
INSERT INTO vbig SELECT array_fill(i % 3, ARRAY[3000])::vector || '[1]'
FROM generate_series(1, 6) i;
SELECT vector_dims(v), pg_column_size(v), subvector(v, 2999, 2) FROM vbig ORDER BY v DESC;
SELECT count(DISTINCT v) FROM vbig;
-- six 12 kB vectors, yet the heap is one page: they live in the TOAST table
SELECT pg_relation_size('vbig') AS heap_bytes;
SELECT typstorage FROM pg_type WHERE oid = 'vector'::regtype;
DROP TABLE vbig;

-- the operators are what the catalog says
SELECT oprname, oprcode, oprresult::regtype, oprcom::regoper AS commutator,
	oprnegate::regoper AS negator
FROM pg_operator WHERE oprleft = 'vector'::regtype AND oprright = 'vector'::regtype
ORDER BY oprname;
-- every function on vectors is immutable, strict and parallel safe
SELECT p.oid::regprocedure AS not_immutable_strict_safe
FROM pg_proc p
WHERE (p.prorettype = 'vector'::regtype OR 'vector'::regtype = ANY (p.proargtypes))
	AND p.prokind = 'f' AND NOT (p.provolatile = 'i' AND p.proisstrict AND p.proparallel = 's');
SELECT count(*) > 30 AS many_checked FROM pg_proc p
WHERE p.prorettype = 'vector'::regtype OR 'vector'::regtype = ANY (p.proargtypes);
