-- bit strings: Hamming and Jaccard distances, binary quantization
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- Hamming distance: the bits that differ
SELECT hamming_distance(B'111', B'111'), hamming_distance(B'111', B'110'),
	hamming_distance(B'111', B'000'), B'1010' <~> B'0101', B'1' <~> B'0';
-- Jaccard distance: 1 - shared / either; no bit set in both strings is 1
SELECT jaccard_distance(B'1111', B'1111'), jaccard_distance(B'1100', B'1010'),
	jaccard_distance(B'1000', B'0001'), B'1110' <%> B'1100', B'0000' <%> B'0000',
	B'0000' <%> B'0100';
-- varbit values, and lengths that end inside a byte
SELECT B'10101'::varbit <~> B'01011'::varbit, B'101'::bit(3) <%> B'111'::bit(3);
-- different lengths are an error
SELECT B'111' <~> B'11';
SELECT hamming_distance(B'1', B'10');
SELECT B'111' <%> B'1111';
SELECT jaccard_distance(B'', B'1');
-- empty strings have nothing to compare
SELECT B'' <~> B'', B'' <%> B'';
-- long strings: the word loop and the byte tail agree with a bit-by-bit count
SELECT n, a <~> b = (SELECT count(*) FROM generate_series(1, n) i
					 WHERE substring(a FROM i FOR 1) <> substring(b FROM i FOR 1)) AS hamming_ok,
	a <%> b = 1 - (SELECT count(*) FILTER (WHERE substring(a FROM i FOR 1) = B'1' AND substring(b FROM i FOR 1) = B'1')::float8
				   / count(*) FILTER (WHERE substring(a FROM i FOR 1) = B'1' OR substring(b FROM i FOR 1) = B'1')
				   FROM generate_series(1, n) i) AS jaccard_ok
FROM (SELECT n,
		 (SELECT string_agg(((i * 7 + n) % 3 = 0)::int::text, '') FROM generate_series(1, n) i)::varbit AS a,
		 (SELECT string_agg(((i * 5 + n) % 4 = 1)::int::text, '') FROM generate_series(1, n) i)::varbit AS b
	  FROM unnest(ARRAY[7, 8, 9, 63, 64, 65, 200, 1031]) n) t
ORDER BY n;
SELECT B'1'::bit(64000) <~> B'0'::bit(64000), (B'1'::bit(64000) >> 63999) <%> B'1'::bit(64000);

-- binary quantization: a bit per element, set when the element is above 0
SELECT binary_quantize('[1,0,-1,0.5,-0,1e-45]'::vector);
SELECT binary_quantize('[1,0,-1,0.5,-0,6e-8]'::halfvec);
SELECT binary_quantize('[-1,-2,-3,-4,-5,-6,-7,-8,9]'::vector),
	pg_typeof(binary_quantize('[1]'::vector)), length(binary_quantize(array_fill(1, ARRAY[16000])::vector));
-- the same bits from vector and halfvec
SELECT binary_quantize(v) = binary_quantize(v::halfvec) AS same
FROM (SELECT ARRAY[sin(i), cos(i * 3), -sin(i * 2)]::vector AS v FROM generate_series(1, 100) i) t
GROUP BY 1;
-- binary quantization then re-ranking: the candidates by Hamming distance,
-- ordered by the full vectors' cosine distance
CREATE TABLE bq (id int, v vector(4));
INSERT INTO bq VALUES (1, '[1,1,1,1]'), (2, '[1,1,1,-1]'), (3, '[-1,-1,1,1]'),
	(4, '[0.9,1.1,1,0.8]'), (5, '[-1,-1,-1,-1]');
SELECT id, binary_quantize(v)::bit(4) <~> binary_quantize('[1,1,1,1]'::vector) AS hamming
FROM bq ORDER BY hamming, id;
SELECT id FROM (
	SELECT id, v FROM bq
	ORDER BY binary_quantize(v)::bit(4) <~> binary_quantize('[1,1,1,0.9]'::vector), id LIMIT 3
) c ORDER BY v <=> '[1,1,1,0.9]', id;
DROP TABLE bq;
