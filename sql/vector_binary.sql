-- vector binary send/receive: COPY BINARY round trip and every receive error
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- send: int16 dim, int16 unused, then float4s, big-endian
SELECT vector_send('[1,2,3]');
SELECT vector_send('[-0,1e-45,3.4028235e38]');

-- Server-side files go in the data directory, so concurrent clusters on one
-- machine never share them (needs superuser, as pg_regress runs).
SELECT current_setting('data_directory') || '/tinyhnsw_vector_copy.bin' AS copy_path,
	current_setting('data_directory') || '/tinyhnsw_vector_recv.bin' AS recv_path
\gset

-- COPY BINARY round trip of thousands of random vectors is exact
SELECT setseed(0.25);
CREATE TABLE vbin_src (id int, v vector);
INSERT INTO vbin_src VALUES
	(0, '[-0,0,1e-45,-1e-45,1.1754942e-38,3.4028235e38,-3.4028235e38]'),
	(-1, array_fill(0.1, ARRAY[16000])::vector),
	(-2, NULL);
INSERT INTO vbin_src
SELECT s.i, array_agg(e.val ORDER BY e.j)::vector
FROM (SELECT i, 1 + floor(random() * 100)::int AS d
	  FROM generate_series(1, 5000) i) s,
	LATERAL (SELECT j, ((random() - 0.5) * power(10, floor(random() * 40) - 20))::float4 AS val
			 FROM generate_series(1, s.d) j) e
GROUP BY s.i;
COPY vbin_src TO :'copy_path' (FORMAT binary);
CREATE TABLE vbin_dst (LIKE vbin_src);
COPY vbin_dst FROM :'copy_path' (FORMAT binary);
SELECT count(*) AS rows,
	count(*) FILTER (WHERE vector_send(s.v) = vector_send(d.v)) AS same_bits,
	count(*) FILTER (WHERE s.v IS NULL AND d.v IS NULL) AS both_null,
	sum(vector_dims(d.v)) = sum(vector_dims(s.v)) AS same_dims
FROM vbin_src s FULL JOIN vbin_dst d USING (id);
-- the text form of the same vectors reads back to the same bits too
SELECT count(*) FILTER (WHERE vector_send(v::text::vector) = vector_send(v)) AS text_round_trip
FROM vbin_src WHERE v IS NOT NULL;
-- into a vector(3) column, the typmod is enforced on receive
CREATE TABLE vbin_typed (id int, v vector(3));
COPY vbin_typed FROM :'copy_path' (FORMAT binary);
DELETE FROM vbin_src WHERE vector_dims(v) <> 3 OR v IS NULL;
COPY vbin_src TO :'copy_path' (FORMAT binary);
COPY vbin_typed FROM :'copy_path' (FORMAT binary);
SELECT count(*) = (SELECT count(*) FROM vbin_src) AS typed_ok FROM vbin_typed;
DROP TABLE vbin_src, vbin_dst, vbin_typed;

-- receive errors: feed crafted field bytes through a binary COPY file
CREATE TABLE vbin_in (v vector);
CREATE TABLE vbin_in3 (v vector(3));
CREATE FUNCTION vbin_file(payload bytea) RETURNS bytea LANGUAGE sql AS $$
	SELECT '\x5047434f50590aff0d0a00'::bytea	-- signature
		|| '\x0000000000000000'::bytea			-- flags, header extension
		|| '\x0001'::bytea || int4send(length(payload)) || payload
		|| '\xffff'::bytea						-- trailer
$$;
CREATE FUNCTION vbin_write(content bytea, path text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	lo oid := lo_from_bytea(0, content);
BEGIN
	PERFORM lo_export(lo, path);
	PERFORM lo_unlink(lo);
END
$$;
CREATE FUNCTION vbin_recv(payload bytea, tbl text DEFAULT 'vbin_in') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	path text := current_setting('data_directory') || '/tinyhnsw_vector_recv.bin';
	result text;
BEGIN
	PERFORM vbin_write(vbin_file(payload), path);
	BEGIN
		EXECUTE format('COPY %I FROM %L (FORMAT binary)', tbl, path);
		EXECUTE format('SELECT vector_dims(v) || '' '' || left(v::text, 30) FROM %I', tbl)
			INTO result;
		EXECUTE format('DELETE FROM %I', tbl);
		RETURN 'ok: ' || result;
	EXCEPTION WHEN OTHERS THEN
		RETURN SQLSTATE || ': ' || SQLERRM;
	END;
END
$$;
SELECT what, vbin_recv(payload) AS result FROM (VALUES
	('valid', '\x000300003f8000004000000040400000'::bytea),
	('valid, -0 and denormal', '\x0002000080000000' || '\x00000001'::bytea),
	('empty', ''::bytea),
	('1 byte', '\x00'::bytea),
	('3 bytes', '\x000300'::bytea),
	('header only', '\x00010000'::bytea),
	('one float short', '\x000300003f80000040000000'::bytea),
	('one byte short', '\x000300003f80000040000000404000'::bytea),
	('one float extra', '\x000100003f80000040000000'::bytea),
	('one byte extra', '\x000100003f80000000'::bytea),
	('dim 0', '\x00000000'::bytea),
	('dim -1', '\xffff00003f800000'::bytea),
	('dim 16001', '\x3e810000'::bytea || decode(repeat('00', 64004), 'hex')),
	('unused 1', '\x000100013f800000'::bytea),
	('unused -1', '\x0001ffff3f800000'::bytea),
	('NaN', '\x000200003f8000007fc00000'::bytea),
	('Infinity', '\x000100007f800000'::bytea),
	('-Infinity', '\x00010000ff800000'::bytea),
	('garbage', '\xdeadbeef'::bytea),
	('text', convert_to('[1,2,3]', 'UTF8'))
) AS t(what, payload);
-- 16000 dimensions is the most that is accepted
SELECT vbin_recv('\x3e800000'::bytea || decode(repeat('3f800000', 16000), 'hex')) AS max_dims;
-- the typmod of the target column is checked
SELECT vbin_recv('\x000300003f8000004000000040400000', 'vbin_in3') AS dim3,
	vbin_recv('\x000200003f80000040000000', 'vbin_in3') AS dim2;
-- the same errors as a client sees them
SELECT vbin_write(vbin_file('\x000300003f80000040000000'), :'recv_path');
COPY vbin_in FROM :'recv_path' (FORMAT binary);
SELECT vbin_write(vbin_file('\x000000003f800000'), :'recv_path');
COPY vbin_in FROM :'recv_path' (FORMAT binary);
SELECT vbin_write(vbin_file('\x000100053f800000'), :'recv_path');
COPY vbin_in FROM :'recv_path' (FORMAT binary);
SELECT vbin_write(vbin_file('\x00010000ff800000'), :'recv_path');
COPY vbin_in FROM :'recv_path' (FORMAT binary);
SELECT vbin_write(vbin_file('\x00'), :'recv_path');
COPY vbin_in FROM :'recv_path' (FORMAT binary);
SELECT count(*) AS rows_loaded FROM vbin_in;

-- leave empty files behind, and no large objects
SELECT vbin_write('', :'recv_path'), vbin_write('', :'copy_path');
SELECT count(*) AS large_objects FROM pg_largeobject_metadata;
DROP FUNCTION vbin_recv(bytea, text);
DROP FUNCTION vbin_file(bytea);
DROP FUNCTION vbin_write(bytea, text);
DROP TABLE vbin_in, vbin_in3;
