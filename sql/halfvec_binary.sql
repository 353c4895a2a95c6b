-- halfvec binary send/receive: pgvector's format, COPY BINARY round trip
-- and every receive error
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- send: int16 dim, int16 unused, then float16s, big-endian
SELECT halfvec_send('[1,2,3]');
SELECT halfvec_send('[-0,5.9604645e-8,65504,-2,0.1]');

SELECT current_setting('data_directory') || '/tinyhnsw_halfvec_copy.bin' AS copy_path,
	current_setting('data_directory') || '/tinyhnsw_halfvec_recv.bin' AS recv_path
\gset

-- COPY BINARY round trip of random halfvecs is exact
SELECT setseed(0.5);
CREATE TABLE hbin_src (id int, v halfvec);
INSERT INTO hbin_src VALUES
	(0, '[-0,0,5.9604645e-8,-5.9604645e-8,6.1035156e-5,65504,-65504]'),
	(-1, array_fill(0.1, ARRAY[16000])::halfvec),
	(-2, NULL);
INSERT INTO hbin_src
SELECT s.i, array_agg(e.val ORDER BY e.j)::halfvec
FROM (SELECT i, 1 + floor(random() * 100)::int AS d
	  FROM generate_series(1, 2000) i) s,
	LATERAL (SELECT j, ((random() - 0.5) * power(10, floor(random() * 10) - 6))::float4 AS val
			 FROM generate_series(1, s.d) j) e
GROUP BY s.i;
COPY hbin_src TO :'copy_path' (FORMAT binary);
CREATE TABLE hbin_dst (LIKE hbin_src);
COPY hbin_dst FROM :'copy_path' (FORMAT binary);
SELECT count(*) AS rows,
	count(*) FILTER (WHERE halfvec_send(s.v) = halfvec_send(d.v)) AS same_bits,
	count(*) FILTER (WHERE s.v IS NULL AND d.v IS NULL) AS both_null
FROM hbin_src s FULL JOIN hbin_dst d USING (id);
SELECT count(*) FILTER (WHERE halfvec_send(v::text::halfvec) = halfvec_send(v)) AS text_round_trip
FROM hbin_src WHERE v IS NOT NULL;
DROP TABLE hbin_src, hbin_dst;

-- receive errors: crafted field bytes through a binary COPY file
CREATE TABLE hbin_in (v halfvec);
CREATE TABLE hbin_in3 (v halfvec(3));
CREATE FUNCTION hbin_recv(payload bytea, tbl text DEFAULT 'hbin_in') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	path text := current_setting('data_directory') || '/tinyhnsw_halfvec_recv.bin';
	lo oid;
	result text;
BEGIN
	lo := lo_from_bytea(0, '\x5047434f50590aff0d0a00'::bytea	-- signature
		|| '\x0000000000000000'::bytea							-- flags, extension
		|| '\x0001'::bytea || int4send(length(payload)) || payload
		|| '\xffff'::bytea);									-- trailer
	PERFORM lo_export(lo, path);
	PERFORM lo_unlink(lo);
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
SELECT what, hbin_recv(payload) AS result FROM (VALUES
	('valid', '\x00030000' || '\x3c0040004200'::bytea),
	('valid, -0 and subnormal', '\x00020000' || '\x80000001'::bytea),
	('empty', ''::bytea),
	('1 byte', '\x00'::bytea),
	('3 bytes', '\x000300'::bytea),
	('header only', '\x00010000'::bytea),
	('one half short', '\x000300003c004000'::bytea),
	('one byte short', '\x000300003c00400042'::bytea),
	('one half extra', '\x000100003c004000'::bytea),
	('a float4 element', '\x000100003f800000'::bytea),
	('dim 0', '\x00000000'::bytea),
	('dim -1', '\xffff00003c00'::bytea),
	('dim 16001', '\x3e810000'::bytea || decode(repeat('00', 32002), 'hex')),
	('unused 1', '\x000100013c00'::bytea),
	('NaN', '\x000200003c007e00'::bytea),
	('signalling NaN', '\x000100007c01'::bytea),
	('Infinity', '\x000100007c00'::bytea),
	('-Infinity', '\x00010000fc00'::bytea),
	('largest', '\x000100007bff'::bytea)
) AS t(what, payload);
SELECT hbin_recv('\x3e800000'::bytea || decode(repeat('3c00', 16000), 'hex')) AS max_dims;
SELECT hbin_recv('\x00030000' || '\x3c0040004200'::bytea, 'hbin_in3') AS dim3,
	hbin_recv('\x000200003c004000', 'hbin_in3') AS dim2;
DROP FUNCTION hbin_recv;
DROP TABLE hbin_in, hbin_in3;
