-- vector text input/output, typmod and the input errors (src/vector.c)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- text round trip; white space around elements and brackets
SELECT '[1,2,3]'::vector;
SELECT ' [ 1 , -2.5 ,3e2 ] '::vector;
SELECT E'\t[1,\n2]\r\n'::vector;
SELECT '[-0,+4,0x10]'::vector;

-- output is the shortest text that reads back to the same float4
SELECT '[0.1,1e-45,3.4028235e38]'::vector;
SELECT '[-3.4028235e38,1.1754944e-38,0.3333333333333333,123456789]'::vector;
SELECT '[1.00000001,16777217,1e20,1e-20]'::vector;
-- underflow rounds to zero or a denormal like strtof, overflow is an error
SELECT '[1e-50,-1e-46,7e-46]'::vector;

-- reading back the output gives the same bits
WITH v AS (
	SELECT ('[' || string_agg(((i * 0.731)::float4 / 7.3::float4 * power(10, i % 60 - 30)::float4)::text, ',') || ']')::vector AS v
	FROM generate_series(1, 500) i
)
SELECT v::text::vector = v AS equal, vector_send(v::text::vector) = vector_send(v) AS same_bits
FROM v;

-- typmod
CREATE TABLE vio (v vector(3));
INSERT INTO vio VALUES ('[1,2,3]'), (NULL);
SELECT * FROM vio;
INSERT INTO vio VALUES ('[1,2]');
INSERT INTO vio VALUES ('[1,2,3,4]');
SELECT '[1,2]'::vector(3);
SELECT '[1,2,3]'::vector(3), '[1,2,3]'::vector::vector(3);
SELECT '[1,2]'::vector::vector(3);
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 'vio'::regclass AND attname = 'v';
CREATE TABLE vio_bad (v vector(0));
CREATE TABLE vio_bad (v vector(-1));
CREATE TABLE vio_bad (v vector(16001));
CREATE TABLE vio_bad (v vector(3, 4));
CREATE TABLE vio_max (v vector(16000));
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 'vio_max'::regclass AND attname = 'v';
DROP TABLE vio_max;
DROP TABLE vio;

-- limits: 16000 dimensions are fine, 16001 are not
SELECT vector_dims(('[' || repeat('1,', 15999) || '1]')::vector);
SELECT ('[' || repeat('1,', 16000) || '1]')::vector;
SELECT ('[' || repeat('1,', 20000) || '1]')::vector;

-- empty vector
SELECT '[]'::vector;
SELECT '[ ]'::vector;

-- malformed literals
SELECT ''::vector;
SELECT '1,2,3'::vector;
SELECT '1,2,3]'::vector;
SELECT '[1,2,3'::vector;
SELECT '[1,2,'::vector;
SELECT '['::vector;
SELECT '[1,2]]'::vector;
SELECT '[[1,2]]'::vector;
SELECT '[1,[2]]'::vector;
SELECT '[1,,2]'::vector;
SELECT '[,1]'::vector;
SELECT '[1,]'::vector;
SELECT '[1,2]x'::vector;
SELECT '[1,2] 3'::vector;
SELECT '[1 2]'::vector;
SELECT '[a]'::vector;
SELECT '[1,two]'::vector;
SELECT '[1.2.3]'::vector;
SELECT '[1e]'::vector;
SELECT '{1,2}'::vector;

-- non-finite values and float4 overflow
SELECT '[NaN]'::vector;
SELECT '[1,nan]'::vector;
SELECT '[Infinity]'::vector;
SELECT '[1,-inf]'::vector;
SELECT '[1e39]'::vector;
SELECT '[1,-1e39]'::vector;
SELECT '[3.5e38]'::vector;

-- every error above with its SQLSTATE
CREATE FUNCTION vio_try(lit text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM lit::vector;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
SELECT CASE WHEN length(lit) > 20 THEN left(lit, 12) || '...' ELSE lit END AS literal,
	vio_try(lit) AS result
FROM (VALUES
	('[1,2]'), ('[]'), ('1,2]'), ('[1,2'), ('[1,,2]'), ('[1,2]x'),
	('[[1]]'), ('[x]'), ('[nan]'), ('[inf]'), ('[-Infinity]'), ('[1e39]'),
	('[' || repeat('0,', 16000) || '0]')
) AS t(lit);
DO $$
BEGIN
	PERFORM '[1,2]'::vector::vector(3);
EXCEPTION WHEN OTHERS THEN
	RAISE NOTICE 'typmod: %: %', SQLSTATE, SQLERRM;
END
$$;
DO $$
BEGIN
	EXECUTE 'CREATE TEMP TABLE vio_bad (v vector(16001))';
EXCEPTION WHEN OTHERS THEN
	RAISE NOTICE 'typmod_in: %: %', SQLSTATE, SQLERRM;
END
$$;
DROP FUNCTION vio_try(text);
