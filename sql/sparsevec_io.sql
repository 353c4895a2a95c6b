-- sparsevec text and binary input/output, typmod and the input errors
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- text: 1-based indices, sorted on input, zeros left out
SELECT '{1:1.5,3:2}/5'::sparsevec;
SELECT '{3:2,1:1.5}/5'::sparsevec;
SELECT '{1:0,2:1,3:0}/3'::sparsevec, '{1:-0}/1'::sparsevec;
SELECT '{}/1'::sparsevec, ' { 2 : -1e-3 , 1:+4 } / 1000000000 '::sparsevec;
SELECT '{1:0.1,2:3.4028235e38,3:1e-45}/3'::sparsevec;
-- reading back the output gives the same value
SELECT v::text::sparsevec = v AS equal, sparsevec_send(v::text::sparsevec) = sparsevec_send(v) AS same_bits
FROM (SELECT ('{' || string_agg(i * 37 || ':' || (i * 0.731 / 7.3)::float4, ',') || '}/100000')::sparsevec AS v
	  FROM generate_series(1, 1000) i) t;

-- errors: indices, duplicates, dimensions, element values
SELECT '{0:1}/3'::sparsevec;
SELECT '{4:1}/3'::sparsevec;
SELECT '{-1:1}/3'::sparsevec;
SELECT '{1:1,1:2}/3'::sparsevec;
SELECT '{2:0,2:0}/3'::sparsevec;
SELECT '{1:1}/0'::sparsevec;
SELECT '{}/1000000001'::sparsevec;
SELECT '{1:1}/99999999999'::sparsevec;
SELECT '{99999999999:1}/3'::sparsevec;
SELECT '{1:NaN}/3'::sparsevec;
SELECT '{1:inf}/3'::sparsevec;
SELECT '{1:1e39}/3'::sparsevec;
-- malformed literals
SELECT ''::sparsevec;
SELECT '{1:1}'::sparsevec;
SELECT '{1:1}/'::sparsevec;
SELECT '{1:1}/3x'::sparsevec;
SELECT '{1:1,}/3'::sparsevec;
SELECT '{,}/3'::sparsevec;
SELECT '{1}/3'::sparsevec;
SELECT '{1:}/3'::sparsevec;
SELECT '{:1}/3'::sparsevec;
SELECT '{a:1}/3'::sparsevec;
SELECT '{1.5:1}/3'::sparsevec;
SELECT '{1:1 2:1}/3'::sparsevec;
SELECT '[1,2]'::sparsevec;
SELECT '{1:1}/3.0'::sparsevec;
SELECT '{1:1}/+ 3'::sparsevec;
-- at most 16000 elements
SELECT l2_norm(('{' || string_agg(i || ':1', ',') || '}/20000')::sparsevec)
FROM generate_series(1, 16000) i;
SELECT ('{' || string_agg(i || ':1', ',') || '}/20000')::sparsevec
FROM generate_series(1, 16001) i;

-- typmod
CREATE TABLE sio (v sparsevec(3));
INSERT INTO sio VALUES ('{1:1}/3'), (NULL);
INSERT INTO sio VALUES ('{1:1}/4');
SELECT * FROM sio;
SELECT '{1:1}/2'::sparsevec(2);
SELECT '{1:1}/2'::sparsevec(3);
SELECT NULL::sparsevec(1000000000);
SELECT NULL::sparsevec(1000000001);
SELECT NULL::sparsevec(0);
SELECT NULL::sparsevec(1, 2);
\d sio
DROP TABLE sio;

-- binary: int32 dim, int32 nnz, int32 unused, 0-based int32 indices, float4s
SELECT sparsevec_send('{1:1.5,3:2}/5');
SELECT sparsevec_send('{}/7');
SELECT current_setting('data_directory') || '/tinyhnsw_sparsevec_copy.bin' AS copy_path
\gset
CREATE TABLE sbin_src (id int, v sparsevec);
INSERT INTO sbin_src SELECT i, ('{' || string_agg(j * (i % 7 + 1) || ':' || (j - i / 3.0)::float4, ',') || '}/' || 1000 + i)::sparsevec
FROM generate_series(1, 300) i, generate_series(1, i % 50) j GROUP BY i;
INSERT INTO sbin_src VALUES (0, '{}/1'), (-1, NULL);
COPY sbin_src TO :'copy_path' (FORMAT binary);
CREATE TABLE sbin_dst (LIKE sbin_src);
COPY sbin_dst FROM :'copy_path' (FORMAT binary);
SELECT count(*) AS rows, count(*) FILTER (WHERE sparsevec_send(s.v) = sparsevec_send(d.v)) AS same_bits
FROM sbin_src s FULL JOIN sbin_dst d USING (id);
DROP TABLE sbin_src, sbin_dst;
-- receive errors
CREATE TABLE sbin_in (v sparsevec);
CREATE TABLE sbin_in3 (v sparsevec(3));
CREATE FUNCTION sbin_recv(payload bytea, tbl text DEFAULT 'sbin_in') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	path text := current_setting('data_directory') || '/tinyhnsw_sparsevec_recv.bin';
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
		EXECUTE format('SELECT v::text FROM %I', tbl) INTO result;
		EXECUTE format('DELETE FROM %I', tbl);
		RETURN 'ok: ' || result;
	EXCEPTION WHEN OTHERS THEN
		RETURN SQLSTATE || ': ' || SQLERRM;
	END;
END
$$;
SELECT what, sbin_recv(payload) AS result FROM (VALUES
	('valid', '\x000000050000000200000000'::bytea || '\x0000000000000002'::bytea || '\x3fc0000040000000'::bytea),
	('no elements', '\x000000070000000000000000'::bytea),
	('empty', ''::bytea),
	('11 bytes', '\x0000000500000000000000'::bytea),
	('dim 0', '\x000000000000000000000000'::bytea),
	('dim -1', '\xffffffff0000000000000000'::bytea),
	('dim 1000000001', '\x3b9aca010000000000000000'::bytea),
	('nnz -1', '\x00000005ffffffff00000000'::bytea),
	('nnz above dim', '\x000000010000000200000000'::bytea || '\x0000000000000001'::bytea || '\x3f8000003f800000'::bytea),
	('nnz 16001', '\x3b9aca0000003e8100000000'::bytea),
	('unused 1', '\x000000050000000000000001'::bytea),
	('one element short', '\x000000050000000200000000'::bytea || '\x00000000'::bytea || '\x3fc00000'::bytea),
	('one byte extra', '\x000000050000000100000000'::bytea || '\x00000000'::bytea || '\x3fc0000000'::bytea),
	('index -1', '\x000000050000000100000000'::bytea || '\xffffffff'::bytea || '\x3fc00000'::bytea),
	('index = dim', '\x000000050000000100000000'::bytea || '\x00000005'::bytea || '\x3fc00000'::bytea),
	('descending', '\x000000050000000200000000'::bytea || '\x0000000200000000'::bytea || '\x3fc0000040000000'::bytea),
	('duplicate', '\x000000050000000200000000'::bytea || '\x0000000200000002'::bytea || '\x3fc0000040000000'::bytea),
	('zero value', '\x000000050000000100000000'::bytea || '\x00000000'::bytea || '\x00000000'::bytea),
	('-0 value', '\x000000050000000100000000'::bytea || '\x00000000'::bytea || '\x80000000'::bytea),
	('NaN', '\x000000050000000100000000'::bytea || '\x00000000'::bytea || '\x7fc00000'::bytea),
	('Infinity', '\x000000050000000100000000'::bytea || '\x00000000'::bytea || '\x7f800000'::bytea)
) AS t(what, payload);
SELECT sbin_recv('\x000000030000000100000000'::bytea || '\x00000002'::bytea || '\x3fc00000'::bytea, 'sbin_in3') AS dim3,
	sbin_recv('\x000000040000000100000000'::bytea || '\x00000002'::bytea || '\x3fc00000'::bytea, 'sbin_in3') AS dim4;
DROP FUNCTION sbin_recv;
DROP TABLE sbin_in, sbin_in3;
