-- the hnsw access method in the catalogues: its opclasses pass amvalidate,
-- broken ones do not (with the reason), and the AM's properties
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
RESET client_min_messages;
\set SHOW_CONTEXT never

------------------------------------------------------------------------
-- the shipped opclasses
------------------------------------------------------------------------
SELECT opcname, amvalidate(oid)
FROM pg_opclass
WHERE opcmethod = (SELECT oid FROM pg_am WHERE amname = 'hnsw')
ORDER BY 1;
-- each: one ORDER BY operator (strategy 1, sorted by float_ops) and
-- support function 1
SELECT opc.opcname, opc.opcdefault, amop.amopstrategy, amop.amopopr::regoperator,
	   amop.amoppurpose, sortf.opfname AS sortfamily
FROM pg_opclass opc
	JOIN pg_amop amop ON amop.amopfamily = opc.opcfamily
	JOIN pg_opfamily sortf ON sortf.oid = amop.amopsortfamily
WHERE opc.opcmethod = (SELECT oid FROM pg_am WHERE amname = 'hnsw')
ORDER BY 1;
SELECT opc.opcname, amproc.amprocnum, amproc.amproc::regprocedure
FROM pg_opclass opc
	JOIN pg_amproc amproc ON amproc.amprocfamily = opc.opcfamily
WHERE opc.opcmethod = (SELECT oid FROM pg_am WHERE amname = 'hnsw')
ORDER BY 1;

------------------------------------------------------------------------
-- broken opclasses: amvalidate says why, and returns false
------------------------------------------------------------------------
-- support function 1 with the wrong signature
CREATE OPERATOR CLASS hval_badsig_ops FOR TYPE vector USING hnsw AS
	OPERATOR 1 <-> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 vector_norm(vector);
SELECT amvalidate(oid) FROM pg_opclass WHERE opcname = 'hval_badsig_ops';
-- no support function
CREATE OPERATOR CLASS hval_noproc_ops FOR TYPE vector USING hnsw AS
	OPERATOR 1 <-> (vector, vector) FOR ORDER BY float_ops;
SELECT amvalidate(oid) FROM pg_opclass WHERE opcname = 'hval_noproc_ops';
-- no operator
CREATE OPERATOR CLASS hval_noop_ops FOR TYPE vector USING hnsw AS
	FUNCTION 1 tinyhnsw_l2_metric(internal);
SELECT amvalidate(oid) FROM pg_opclass WHERE opcname = 'hval_noop_ops';
-- an operator under a strategy number hnsw does not have
CREATE OPERATOR CLASS hval_strat2_ops FOR TYPE vector USING hnsw AS
	OPERATOR 1 <-> (vector, vector) FOR ORDER BY float_ops,
	OPERATOR 2 <#> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 tinyhnsw_l2_metric(internal);
SELECT amvalidate(oid) FROM pg_opclass WHERE opcname = 'hval_strat2_ops';
-- an ORDER BY operator that does not return float8
CREATE OPERATOR CLASS hval_bool_ops FOR TYPE vector USING hnsw AS
	OPERATOR 1 < (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 tinyhnsw_l2_metric(internal);
SELECT amvalidate(oid) FROM pg_opclass WHERE opcname = 'hval_bool_ops';
-- a search operator (no FOR ORDER BY)
CREATE OPERATOR CLASS hval_search_ops FOR TYPE vector USING hnsw AS
	OPERATOR 1 = (vector, vector),
	FUNCTION 1 tinyhnsw_l2_metric(internal);
SELECT amvalidate(oid) FROM pg_opclass WHERE opcname = 'hval_search_ops';
-- several faults at once
CREATE OPERATOR CLASS hval_many_ops FOR TYPE vector USING hnsw AS
	OPERATOR 1 = (vector, vector),
	OPERATOR 3 <-> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 vector_dims(vector);
SELECT amvalidate(oid) FROM pg_opclass WHERE opcname = 'hval_many_ops';
-- all of them at once, by name
SELECT opcname, amvalidate(oid)
FROM pg_opclass WHERE opcname LIKE 'hval_%' ORDER BY 1;

-- what CREATE OPERATOR CLASS itself refuses
CREATE OPERATOR CLASS hval_proc2_ops FOR TYPE vector USING hnsw AS
	OPERATOR 1 <-> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 tinyhnsw_l2_metric(internal),
	FUNCTION 2 tinyhnsw_ip_metric(internal);
CREATE OPERATOR CLASS hval_search2_ops FOR TYPE vector USING hnsw AS
	OPERATOR 1 <-> (vector, vector),
	FUNCTION 1 tinyhnsw_l2_metric(internal);

-- an index cannot be built without support function 1; without the
-- operator it can, but nothing can use it
CREATE TABLE hval (id int, emb vector(3));
INSERT INTO hval VALUES (1, '[1,2,3]'), (2, '[4,5,6]');
CREATE INDEX hval_noproc_idx ON hval USING hnsw (emb hval_noproc_ops);
CREATE INDEX hval_noop_idx ON hval USING hnsw (emb hval_noop_ops);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hval ORDER BY emb <-> '[1,2,3]' LIMIT 1;
RESET enable_seqscan;
DROP TABLE hval;

DROP OPERATOR FAMILY hval_badsig_ops USING hnsw;
DROP OPERATOR FAMILY hval_noproc_ops USING hnsw;
DROP OPERATOR FAMILY hval_noop_ops USING hnsw;
DROP OPERATOR FAMILY hval_strat2_ops USING hnsw;
DROP OPERATOR FAMILY hval_bool_ops USING hnsw;
DROP OPERATOR FAMILY hval_search_ops USING hnsw;
DROP OPERATOR FAMILY hval_many_ops USING hnsw;
SELECT count(*) FROM pg_opclass WHERE opcname LIKE 'hval_%';

------------------------------------------------------------------------
-- the access method's properties
------------------------------------------------------------------------
SELECT amname, amtype, amhandler FROM pg_am WHERE amname = 'hnsw';
SELECT obj_description(oid, 'pg_am') FROM pg_am WHERE amname = 'hnsw';
SELECT p.name, pg_indexam_has_property(a.oid, p.name)
FROM pg_am a,
	unnest(ARRAY['can_order', 'can_unique', 'can_multi_col', 'can_exclude',
				 'can_include']) WITH ORDINALITY AS p(name, n)
WHERE a.amname = 'hnsw'
ORDER BY p.n;
CREATE TABLE hval (id int, emb vector(3));
CREATE INDEX hval_idx ON hval USING hnsw (emb);
SELECT p.name, pg_index_has_property('hval_idx'::regclass, p.name)
FROM unnest(ARRAY['clusterable', 'index_scan', 'bitmap_scan',
				  'backward_scan']) WITH ORDINALITY AS p(name, n)
ORDER BY p.n;
SELECT p.name, pg_index_column_has_property('hval_idx'::regclass, 1, p.name)
FROM unnest(ARRAY['asc', 'desc', 'nulls_first', 'nulls_last', 'orderable',
				  'distance_orderable', 'returnable', 'search_array',
				  'search_nulls']) WITH ORDINALITY AS p(name, n)
ORDER BY p.n;
DROP TABLE hval;
