-- casts between vector and integer[], real[], double precision[], numeric[]
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- arrays to vector
SELECT '{1,2,3}'::int[]::vector, '{1.5,-2.25}'::real[]::vector,
	'{0.1,1e-45}'::float8[]::vector, '{1.25,3}'::numeric[]::vector;
SELECT ARRAY[1,2,3]::vector(3), ARRAY[0.1::float8]::vector(1);
SELECT '{16777217,2147483647}'::int[]::vector;
SELECT '{0.1}'::float8[]::vector = '{0.1}'::real[]::vector AS rounded_like_float4;
SELECT '{1e-50}'::float8[]::vector, '{1e-50}'::numeric[]::vector;
-- vector to real[], and back
SELECT '[1,2,3]'::vector::real[], '[0.1,-0]'::vector::real[];
SELECT pg_typeof('[1,2]'::vector::real[]);
SELECT '[0.1,3.4028235e38]'::vector::real[]::vector;

-- which casts exist, and how they apply
SELECT castsource::regtype, casttarget::regtype, castfunc::regprocedure, castcontext
FROM pg_cast WHERE castsource = 'vector'::regtype OR casttarget = 'vector'::regtype
ORDER BY castsource::regtype::text, casttarget::regtype::text;
-- assignment: arrays go into vector columns, the typmod is checked
CREATE TABLE vcast (v vector(3));
INSERT INTO vcast VALUES (ARRAY[1,2,3]), ('{4,5,6}'::real[]), (ARRAY[7,8,9]::float8[]),
	(ARRAY[1.5,2.5,3.5]::numeric[]);
SELECT * FROM vcast;
INSERT INTO vcast VALUES (ARRAY[1,2]);
INSERT INTO vcast VALUES (ARRAY[1,2,3,4]::float8[]);
-- implicit: a vector goes into a real[] column
CREATE TABLE vcast_real (r real[]);
INSERT INTO vcast_real SELECT v FROM vcast;
SELECT * FROM vcast_real;
-- assignment only: arrays are not implicitly vectors in expressions
SELECT l2_distance(ARRAY[1,2], '[3,4]');
DROP TABLE vcast, vcast_real;

-- errors
SELECT ARRAY[1,2]::vector(3);
SELECT '{}'::int[]::vector;
SELECT '{{1,2},{3,4}}'::int[]::vector;
SELECT '{{1}}'::float8[]::vector;
SELECT '{1,NULL,3}'::int[]::vector;
SELECT ARRAY[NULL]::real[]::vector;
SELECT '{NaN}'::real[]::vector;
SELECT '{1,Infinity}'::real[]::vector;
SELECT '{-Infinity}'::float8[]::vector;
SELECT '{NaN}'::float8[]::vector;
SELECT '{NaN}'::numeric[]::vector;
SELECT '{Infinity}'::numeric[]::vector;
SELECT '{1e39}'::float8[]::vector;
SELECT '{-1e39}'::numeric[]::vector;
SELECT array_fill(1, ARRAY[16001])::vector;
SELECT array_fill(1.5::float8, ARRAY[16001])::vector;
-- the same errors with their SQLSTATEs
CREATE FUNCTION vcast_try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE sql;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
SELECT sql, vcast_try('SELECT ' || sql) AS result FROM (VALUES
	('ARRAY[1,2]::vector(2)'),
	('ARRAY[1,2]::vector(3)'),
	('''{}''::int[]::vector'),
	('''{{1,2},{3,4}}''::int[]::vector'),
	('''{1,NULL}''::int[]::vector'),
	('''{NaN}''::real[]::vector'),
	('''{Infinity}''::float8[]::vector'),
	('''{1e39}''::float8[]::vector'),
	('''{1e39}''::numeric[]::vector'),
	('array_fill(1, ARRAY[16001])::vector')
) AS t(sql);
DROP FUNCTION vcast_try(text);
