-- vector distance functions and operators, against exact values and a
-- float8 reference over every dimension count from 1 to 2000
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- exact values
SELECT l2_distance('[0,0]'::vector, '[3,4]'), '[0,0]'::vector <-> '[3,4]',
	vector_l2_squared_distance('[0,0]', '[3,4]');
SELECT inner_product('[1,2]'::vector, '[3,4]'), '[1,2]'::vector <#> '[3,4]',
	vector_negative_inner_product('[1,2]', '[3,4]');
SELECT cosine_distance('[1,2]'::vector, '[2,4]'), '[1,0]'::vector <=> '[0,1]',
	'[1,1]'::vector <=> '[-1,-1]', '[1,2,3]'::vector <=> '[1,2,3]';
SELECT l1_distance('[0,0]'::vector, '[3,-4]'), '[1,2,3]'::vector <+> '[-1,2,5]';
SELECT vector_spherical_distance('[1,0]', '[0,1]'), vector_spherical_distance('[1,1]', '[-1,-1]'),
	vector_spherical_distance('[2,0]', '[3,0]');
-- a zero vector has no direction: cosine distance is NaN
SELECT cosine_distance('[0,0]'::vector, '[1,2]'), '[1,2]'::vector <=> '[0,0]',
	vector_spherical_distance('[0,0]', '[0,0]');
-- float4 accumulation can overflow to infinity; the result says so
SELECT l2_distance('[3e38]'::vector, '[-3e38]'), inner_product('[3e38]'::vector, '[3e38]'),
	l1_distance('[3e38,3e38]'::vector, '[-3e38,-3e38]');
-- commutative, and the same on both sides of the operator
SELECT '[1,2,3]'::vector <-> '[4,6,8]' = '[4,6,8]'::vector <-> '[1,2,3]' AS l2,
	'[1,2,3]'::vector <#> '[4,6,8]' = '[4,6,8]'::vector <#> '[1,2,3]' AS ip,
	'[1,2,3]'::vector <=> '[4,6,8]' = '[4,6,8]'::vector <=> '[1,2,3]' AS cos,
	'[1,2,3]'::vector <+> '[4,6,8]' = '[4,6,8]'::vector <+> '[1,2,3]' AS l1;
SELECT pg_typeof('[1]'::vector <-> '[2]'), pg_typeof('[1]'::vector <#> '[2]'),
	pg_typeof('[1]'::vector <=> '[2]'), pg_typeof('[1]'::vector <+> '[2]');
-- 16000 dimensions
SELECT array_fill(1, ARRAY[16000])::vector <-> array_fill(2, ARRAY[16000])::vector AS l2,
	array_fill(1, ARRAY[16000])::vector <#> array_fill(2, ARRAY[16000])::vector AS ip,
	array_fill(1, ARRAY[16000])::vector <=> array_fill(2, ARRAY[16000])::vector AS cos,
	array_fill(1, ARRAY[16000])::vector <+> array_fill(2, ARRAY[16000])::vector AS l1;

-- different dimensions are an error everywhere
SELECT l2_distance('[1,2]'::vector, '[1,2,3]');
SELECT '[1,2]'::vector <-> '[1,2,3]';
SELECT inner_product('[1,2,3]'::vector, '[1,2]');
SELECT '[1,2]'::vector <#> '[1,2,3]';
SELECT cosine_distance('[1,2]'::vector, '[1]');
SELECT '[1,2]'::vector <=> '[1,2,3]';
SELECT l1_distance('[1,2]'::vector, '[1,2,3]');
SELECT '[1,2]'::vector <+> '[1,2,3]';
SELECT vector_l2_squared_distance('[1,2]', '[1,2,3]');
SELECT vector_negative_inner_product('[1,2]', '[1,2,3]');
SELECT vector_spherical_distance('[1,2]', '[1,2,3]');
DO $$
BEGIN
	PERFORM '[1,2]'::vector <-> '[1,2,3]';
EXCEPTION WHEN OTHERS THEN
	RAISE NOTICE '%: %', SQLSTATE, SQLERRM;
END
$$;

-- nearest neighbors by each operator (sequential scan)
CREATE TABLE vdist_nn (id int, v vector(2));
INSERT INTO vdist_nn VALUES (1, '[1,0]'), (2, '[0,1]'), (3, '[2,2]'), (4, '[-1,-1]'), (5, '[0.5,0.4]');
SELECT id, round((v <-> '[1,1]')::numeric, 4) FROM vdist_nn ORDER BY v <-> '[1,1]', id;
SELECT id FROM vdist_nn ORDER BY v <#> '[1,1]', id;
SELECT id FROM vdist_nn ORDER BY v <=> '[1,1]', id;
SELECT id FROM vdist_nn ORDER BY v <+> '[1,1]', id;
DROP TABLE vdist_nn;

-- Every dimension count 1 .. 2000 against a float8 reference.  The vectors
-- are deterministic, float4-exact, of both signs; a product of two float4
-- is exact in float8, so the reference sums are accurate to float8.
CREATE TABLE vdist AS
SELECT d, r.*
FROM generate_series(1, 2000) d,
	LATERAL (SELECT array_agg(a ORDER BY i)::vector AS va,
				array_agg(b ORDER BY i)::vector AS vb,
				sum((a - b) * (a - b)) AS l2sq,
				sum(a * b) AS ip,
				sum(abs(a * b)) AS ipmag,
				sum(abs(a - b)) AS l1,
				sum(a * a) AS aa,
				sum(b * b) AS bb
			 FROM (SELECT i,
						((((i * 7919 + d * 6007) % 2001) - 1000) / 1000.0::float8)::float4::float8 AS a,
						((((i * 7927 + d * 31) % 1999) - 999) / 777.0::float8)::float4::float8 AS b
				   FROM generate_series(1, d) i) s) r;
SELECT count(*) AS dims, min(d), max(d),
	bool_and(vector_dims(va) = d AND vector_dims(vb) = d) AS sized,
	bool_and(subvector(va, d, 1) = ARRAY[((((d * 7919 + d * 6007) % 2001) - 1000) / 1000.0::float8)]::vector) AS ordered,
	bool_and(l2sq > 0 AND aa > 0 AND bb > 0) AS nondegenerate
FROM vdist;
-- relative error (to the magnitude of the summed terms) below 1e-5; the
-- spherical distance leaves out d = 1, where acos(+-1) is ill-conditioned
SELECT max(abs(l2_distance(va, vb) - sqrt(l2sq)) / sqrt(l2sq)) < 1e-5 AS l2,
	max(abs((va <-> vb) - sqrt(l2sq)) / sqrt(l2sq)) < 1e-5 AS l2_op,
	max(abs(vector_l2_squared_distance(va, vb) - l2sq) / l2sq) < 1e-5 AS l2_squared,
	max(abs(inner_product(va, vb) - ip) / ipmag) < 1e-5 AS ip,
	max(abs((va <#> vb) + ip) / ipmag) < 1e-5 AS neg_ip_op,
	max(abs(cosine_distance(va, vb) - (1 - ip / sqrt(aa * bb)))) < 1e-5 AS cosine,
	max(abs((va <=> vb) - (1 - ip / sqrt(aa * bb)))) < 1e-5 AS cosine_op,
	max(abs(l1_distance(va, vb) - l1) / l1) < 1e-5 AS l1,
	max(abs((va <+> vb) - l1) / l1) < 1e-5 AS l1_op,
	max(abs(vector_norm(va) - sqrt(aa)) / sqrt(aa)) < 1e-12 AS norm,
	max(abs(vector_spherical_distance(va, vb) - acos(ip / sqrt(aa * bb)) / pi()))
		FILTER (WHERE d > 1) < 1e-5 AS spherical
FROM vdist;
-- identical and opposite vectors at every dimension count
SELECT max(abs(va <=> va)) < 1e-5 AS same_cos,
	max(abs((va <=> (va * array_fill(-1, ARRAY[d])::vector)) - 2)) < 1e-5 AS opposite_cos,
	bool_and((va <-> va) = 0 AND (va <+> va) = 0) AS same_zero,
	bool_and((va <=> va) >= 0 AND (va <=> vb) BETWEEN 0 AND 2) AS clamped
FROM vdist;
DROP TABLE vdist;
