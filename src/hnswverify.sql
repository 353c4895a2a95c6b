
-- hnsw index verifier: see src/hnswverify.c ----------------------------------

CREATE FUNCTION hnsw_verify(index regclass, heapallindexed boolean DEFAULT false,
	OUT pages bigint, OUT elements bigint, OUT heap_tids bigint,
	OUT deleted bigint, OUT entry_level integer, OUT max_level integer,
	OUT unreachable bigint, OUT unreachable_upper bigint)
	RETURNS record
	AS 'MODULE_PATHNAME', 'tinyhnsw_hnsw_verify'
	LANGUAGE C STRICT PARALLEL RESTRICTED;

COMMENT ON FUNCTION hnsw_verify(regclass, boolean) IS
	'check the structure of an hnsw index, and optionally that it holds every row of its table';

-- Like amcheck: only those the administrator grants it to may run it.
REVOKE ALL ON FUNCTION hnsw_verify(regclass, boolean) FROM PUBLIC;
