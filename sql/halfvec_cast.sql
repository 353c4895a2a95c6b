-- halfvec casts: with vector and with arrays
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- vector -> halfvec rounds to the nearest half; halfvec -> vector is exact
SELECT '[1.5,0.1,-3]'::vector::halfvec, '[0.1]'::halfvec::vector;
SELECT '[65520]'::vector::halfvec;
SELECT '[1e-10]'::vector::halfvec;
SELECT '[1,2,3]'::vector::halfvec(3), '[1,2,3]'::halfvec::vector(3);
SELECT '[1,2,3]'::vector::halfvec(2);
SELECT '[1,2,3]'::halfvec::vector(2);
-- vector -> halfvec is implicit (a vector meets a halfvec operand),
-- halfvec -> vector only by assignment
SELECT '[1,2]'::vector <-> '[2,2]'::halfvec, pg_typeof('[1,2]'::vector + '[2,2]'::halfvec);
CREATE TABLE hcast (h halfvec(2), v vector(2));
INSERT INTO hcast VALUES ('[1,2]'::vector, '[3,4]'::halfvec);
SELECT * FROM hcast;
DROP TABLE hcast;

-- arrays
SELECT ARRAY[1,2,3]::halfvec, ARRAY[1.5,2.5]::real[]::halfvec,
	ARRAY[0.1,0.2]::double precision[]::halfvec, ARRAY[1.25,-2]::numeric[]::halfvec;
SELECT '[1,0.1,-2]'::halfvec::real[];
SELECT ARRAY[1,2]::halfvec(2);
SELECT ARRAY[70000]::halfvec;
SELECT ARRAY[1,2]::halfvec(3);
SELECT ARRAY[1e5]::real[]::halfvec;
SELECT ARRAY['NaN']::real[]::halfvec;
SELECT ARRAY['Infinity']::double precision[]::halfvec;
SELECT ARRAY[1e300]::double precision[]::halfvec;
SELECT ARRAY[]::integer[]::halfvec;
SELECT ARRAY[[1,2],[3,4]]::halfvec;
SELECT ARRAY[1,NULL]::halfvec;
SELECT ARRAY[1,2]::bigint[]::halfvec;
SELECT vector_dims(array_fill(1, ARRAY[16000])::halfvec);
SELECT array_fill(1, ARRAY[16001])::halfvec;
-- assignment casts from arrays into a column
CREATE TABLE hcast (h halfvec(3));
INSERT INTO hcast VALUES (ARRAY[1,2,3]), (ARRAY[1.5,2.5,3.5]::real[]);
SELECT * FROM hcast;
DROP TABLE hcast;
