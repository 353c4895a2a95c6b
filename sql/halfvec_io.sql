-- halfvec text input/output, typmod and the input errors (src/halfvec.c)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- text round trip; white space as for vector
SELECT '[1,2,3]'::halfvec;
SELECT ' [ 1 , -2.5 ,3e2 ] '::halfvec;
SELECT E'\t[1,\n2]\r\n'::halfvec;
-- elements are rounded to the nearest float16 and printed as float4 text
SELECT '[0.1,1.1,3.14159,-0,0.333333]'::halfvec;
SELECT '[2049,4097,65504,-65504,65519.99]'::halfvec;
-- subnormals are kept; below half the smallest one rounds to zero
SELECT '[6e-8,5.9604645e-8,6.1035156e-5,2.9802322e-8,3e-8,1e-10]'::halfvec;
-- reading back the output gives the same halves
WITH v AS (
	SELECT ('[' || string_agg(((i * 0.731) / 7.3 * power(10, i % 8 - 6))::text, ',') || ']')::halfvec AS v
	FROM generate_series(1, 500) i
)
SELECT v::text::halfvec = v AS equal, halfvec_send(v::text::halfvec) = halfvec_send(v) AS same_bits
FROM v;

-- out of float16's range: from 65520 up (it rounds to infinity)
SELECT '[65520]'::halfvec;
SELECT '[1,-1e5]'::halfvec;
SELECT '[1e39]'::halfvec;
SELECT '[NaN]'::halfvec;
SELECT '[1,Infinity]'::halfvec;
SELECT '[-inf]'::halfvec;

-- malformed literals
SELECT '[]'::halfvec;
SELECT ''::halfvec;
SELECT '1,2'::halfvec;
SELECT '[1,2'::halfvec;
SELECT '[1,,2]'::halfvec;
SELECT '[1 2]'::halfvec;
SELECT '[1]x'::halfvec;
SELECT '[a]'::halfvec;
SELECT '{1,2}'::halfvec;

-- dimensions: 16000 at most
SELECT vector_dims(('[' || repeat('1,', 15999) || '1]')::halfvec);
SELECT ('[' || repeat('1,', 16000) || '1]')::halfvec;

-- typmod
CREATE TABLE hio (v halfvec(3));
INSERT INTO hio VALUES ('[1,2,3]'), (NULL);
INSERT INTO hio VALUES ('[1,2]');
INSERT INTO hio VALUES ('[1,2,3,4]');
SELECT * FROM hio;
SELECT '[1,2]'::halfvec(2);
SELECT '[1,2]'::halfvec(3);
SELECT NULL::halfvec(16000);
SELECT NULL::halfvec(16001);
SELECT NULL::halfvec(0);
SELECT NULL::halfvec(-1);
SELECT NULL::halfvec(2, 3);
SELECT NULL::halfvec('a');
SELECT format_type('halfvec'::regtype, 5), pg_typeof('[1]'::halfvec(1));
\d hio
DROP TABLE hio;
