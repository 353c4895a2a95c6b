# tinyhnsw: PGXS build.  `make && make install`, then `make installcheck`
# (pg_regress over sql/, then TAP over test/t/ against clusters of its own).
# test/run does all of it on a throw-away cluster.

MODULE_big = tinyhnsw
EXTENSION = tinyhnsw
DATA_built = tinyhnsw--0.1.0.sql tinyhnsw--0.2.0.sql tinyhnsw--0.1.0--0.2.0.sql

OBJS = \
	src/bitvec.o \
	src/distance.o \
	src/floatparse.o \
	src/halfdistance.o \
	src/halfvec.o \
	src/hnsw.o \
	src/hnswbuild.o \
	src/hnswformat.o \
	src/hnswgraph.o \
	src/hnswgraphconnect.o \
	src/hnswgraphrepair.o \
	src/hnswgraphstream.o \
	src/hnswinsert.o \
	src/hnswmem.o \
	src/hnswpage.o \
	src/hnswscan.o \
	src/hnswvacuum.o \
	src/hnswverify.o \
	src/hnswverifymap.o \
	src/sparsevec.o \
	src/vector.o \
	src/vecutil.o

REGRESS = vector_io vector_binary vector_ops vector_distance vector_agg vector_cast halfvec_io halfvec_binary halfvec_ops halfvec_cast bit_ops sparsevec_io sparsevec_ops
# the index's suites (kept on their own line so the type's list above and
# this one can be edited independently)
REGRESS += $(HNSW_REGRESS)
HNSW_REGRESS = hnsw_ddl hnsw_options hnsw_scan hnsw_dml hnsw_planner hnsw_validate hnsw_defects hnsw_verify hnsw_null_query hnsw_stats hnsw_alter hnsw_fanout hnsw_types
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

# Only the SQL-callable functions, _PG_init and the module magic are exported:
# PostgreSQL 15 loads modules globally, so a helper of ours must never be able
# to replace (or be replaced by) another library's symbol of the same name.
PG_CPPFLAGS = -fvisibility=hidden '-DPGDLLEXPORT=__attribute__((visibility("default")))'
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The install scripts are assembled from the SQL of each part, kept beside
# its C (src/hnswfanout.sql, plain SQL, has none).  0.1.0's parts must not
# change: a database made with 0.1.0 gets what came after through the update
# script, which holds the parts new in 0.2.0.  A fresh 0.2.0 install runs
# both, so it has the same objects as an updated 0.1.0 (test/t/080_upgrade.pl
# checks that).
SQL_0_1_0 = src/vector.sql src/hnsw.sql src/hnswverify.sql src/hnswfanout.sql
SQL_0_2_0 = src/halfvec.sql src/bitvec.sql src/sparsevec.sql src/hnswtypes.sql src/hnswcost.sql

tinyhnsw--0.1.0.sql: $(SQL_0_1_0)
	cat $^ > $@

tinyhnsw--0.1.0--0.2.0.sql: $(SQL_0_2_0)
	cat $^ > $@

tinyhnsw--0.2.0.sql: $(SQL_0_1_0) $(SQL_0_2_0)
	cat $^ > $@

# PGXS tracks no header dependencies: every object depends on our headers,
# so a changed struct never meets a stale object.
$(OBJS): src/hnsw.h src/hnswgraph.h src/hnswpage.h src/hnswverify.h src/vector.h src/distance.h \
	src/floatparse.h src/vecutil.h src/float16.h src/halfdistance.h src/halfvec.h \
	src/sparsevec.h
