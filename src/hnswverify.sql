
-- hnsw index verifier: see src/hnswverify.c
