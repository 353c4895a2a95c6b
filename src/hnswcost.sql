-- Planner support of the functions that read a whole vector: a call on a
-- column of vectors too wide for a page, which STORAGE main keeps in TOAST,
-- costs the reading of it, so that a sequential scan over such a table is
-- priced by what it reads (src/hnsw.c, vector_cost_support).

CREATE FUNCTION hnsw_vector_cost_support(internal) RETURNS internal
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT;

CREATE FUNCTION hnsw_halfvec_cost_support(internal) RETURNS internal
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT;

ALTER FUNCTION l2_distance(vector, vector) SUPPORT hnsw_vector_cost_support;
ALTER FUNCTION inner_product(vector, vector) SUPPORT hnsw_vector_cost_support;
ALTER FUNCTION cosine_distance(vector, vector) SUPPORT hnsw_vector_cost_support;
ALTER FUNCTION l1_distance(vector, vector) SUPPORT hnsw_vector_cost_support;
ALTER FUNCTION vector_l2_squared_distance(vector, vector) SUPPORT hnsw_vector_cost_support;
ALTER FUNCTION vector_negative_inner_product(vector, vector) SUPPORT hnsw_vector_cost_support;
ALTER FUNCTION vector_spherical_distance(vector, vector) SUPPORT hnsw_vector_cost_support;
ALTER FUNCTION vector_to_halfvec(vector, integer, boolean) SUPPORT hnsw_vector_cost_support;
ALTER FUNCTION binary_quantize(vector) SUPPORT hnsw_vector_cost_support;

ALTER FUNCTION l2_distance(halfvec, halfvec) SUPPORT hnsw_halfvec_cost_support;
ALTER FUNCTION inner_product(halfvec, halfvec) SUPPORT hnsw_halfvec_cost_support;
ALTER FUNCTION cosine_distance(halfvec, halfvec) SUPPORT hnsw_halfvec_cost_support;
ALTER FUNCTION l1_distance(halfvec, halfvec) SUPPORT hnsw_halfvec_cost_support;
ALTER FUNCTION halfvec_l2_squared_distance(halfvec, halfvec) SUPPORT hnsw_halfvec_cost_support;
ALTER FUNCTION halfvec_negative_inner_product(halfvec, halfvec) SUPPORT hnsw_halfvec_cost_support;
ALTER FUNCTION halfvec_spherical_distance(halfvec, halfvec) SUPPORT hnsw_halfvec_cost_support;
ALTER FUNCTION binary_quantize(halfvec) SUPPORT hnsw_halfvec_cost_support;
