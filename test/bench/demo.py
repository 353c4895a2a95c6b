#!/usr/bin/python3
"""tinyhnsw demo: Fashion-MNIST in PostgreSQL with an hnsw index.

Run through ./demo, which installs what is missing, builds the extension and
starts a throw-away cluster (or uses the server named by PGHOST/PGPORT/
PGDATABASE). This program only talks to the server the libpq environment
names: it loads the 60,000 training images into a table, builds the index
with a progress bar, and reports load and build time, index size, a query
plan, recall@10 and queries per second at several hnsw.ef_search values,
and one example query with its neighbors' labels.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tinybench as tb  # noqa: E402

TABLE = "tinyhnsw_demo"
INDEX = "tinyhnsw_demo_emb_idx"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--queries", type=int, default=1000, help="queries per ef_search value (default 1000)")
    ap.add_argument("--ef", default="10,20,40,80,160", help="hnsw.ef_search values (default 10,20,40,80,160)")
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=64)
    ap.add_argument("--maintenance-work-mem", default="2GB", help="for CREATE INDEX (default 2GB)")
    ap.add_argument("--example", type=int, default=0, help="test image used as the example query (default 0)")
    ap.add_argument("--force-index", action="store_true",
                    help="SET enable_seqscan = off for the measured queries, should the planner prefer a scan")
    ap.add_argument("--keep", action="store_true", help="keep the table (on a server of yours)")
    ap.add_argument("--cache-dir", default=tb.default_cache_dir(), help="ground-truth cache ('' for none)")
    args = ap.parse_args()
    tb.sigterm_as_interrupt()
    efs = [int(x) for x in args.ef.split(",") if x]
    k = 10
    started = time.perf_counter()

    external = os.environ.get("BENCH_EXTERNAL") == "1"
    conn = tb.connect(application_name="tinyhnsw demo")
    try:
        run(conn, args, efs, k, external)
    except (KeyboardInterrupt, tb.psycopg.errors.QueryCanceled) as e:
        # Ctrl-C (or TERM) cancels the running statement, which then
        # raises QueryCanceled rather than KeyboardInterrupt
        print(f"interrupted ({type(e).__name__})", file=sys.stderr)
        return 130
    finally:
        if external and not args.keep:
            try:
                conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
            except Exception:
                pass
        conn.close()
    print(f"\ndemo finished in {time.perf_counter() - started:.1f} s (this program; ./demo prints the total)")
    return 0


def run(conn, args, efs, k, external):
    conn.execute("SET client_min_messages = warning")
    conn.execute("CREATE EXTENSION IF NOT EXISTS tinyhnsw")
    version = conn.execute("SHOW server_version").fetchone()[0]
    ext = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'tinyhnsw'").fetchone()[0]
    conn.execute(f"SET maintenance_work_mem = '{args.maintenance_work_mem}'")
    settings = tb.server_settings(conn, ["shared_buffers", "maintenance_work_mem"])
    where = "your server (PG* variables)" if external else "a throw-away cluster"
    print(f"PostgreSQL {version} on {where}, tinyhnsw {ext}, "
          f"shared_buffers {settings['shared_buffers']}, maintenance_work_mem {settings['maintenance_work_mem']}")

    # ---- data
    t0 = time.perf_counter()
    ds = tb.fashion_mnist(nq=max(args.queries, args.example + 1))
    read_s = time.perf_counter() - t0
    print(f"\nFashion-MNIST: {ds.n:,} training images as rows, {len(ds.queries):,} test images as queries, "
          f"{ds.dim} dimensions (28x28 pixels, values 0..255 as float4); read in {tb.fmt_seconds(read_s)}")

    tb.create_table(conn, TABLE, ds.dim, with_labels=True)
    load_s = tb.load_table(conn, TABLE, ds)
    heap = conn.execute(f"SELECT pg_size_pretty(pg_total_relation_size('{TABLE}'))").fetchone()[0]
    print(f"load:        {load_s:6.1f} s  (COPY of {ds.n:,} rows, {ds.n / load_s:,.0f} rows/s; table {heap})")

    # ---- index
    build_s = tb.build_index(conn, TABLE, INDEX, ds.metric, args.m, args.ef_construction, expected_rows=ds.n)
    size, pretty = tb.relation_size(conn, INDEX)
    print(f"build:       {build_s:6.1f} s  (CREATE INDEX ... USING hnsw (emb vector_l2_ops) "
          f"WITH (m = {args.m}, ef_construction = {args.ef_construction}))")
    print(f"index size:  {pretty:>8}  ({size / ds.n:,.0f} bytes per row)")

    # ---- ground truth
    queries = ds.queries[:args.queries]
    qds = tb.Dataset(ds.name, ds.metric, ds.data, queries, ds.labels, ds.query_labels[:args.queries])
    gt_ids, gt_dists, gt_s, cached = tb.ground_truth(qds, k, args.cache_dir or None)
    how = f"from the cache {cached}" if cached else \
        f"computed with numpy in {gt_s:.1f} s ({getattr(tb.exact_knn, 'method', '?')})"
    print(f"exact top-{k} of {len(queries):,} queries: {how}")
    check = tb.RecallCheck(qds, gt_ids, gt_dists, k)

    # ---- plan
    qtexts = [tb.vector_literal(q) for q in queries]
    mid = efs[len(efs) // 2]
    conn.execute(f"SET hnsw.ef_search = {mid}")
    plan = tb.explain(conn, TABLE, ds.metric, k, qtexts[0], generic=True, analyze=True, columns="id, label")
    print(f"\nEXPLAIN ANALYZE SELECT id, label FROM {TABLE} ORDER BY emb <-> $1 LIMIT {k};"
          f"  -- hnsw.ef_search = {mid}, generic plan")
    for line in plan:
        print("   " + line)

    # ---- recall and speed
    if args.force_index:
        conn.execute("SET enable_seqscan = off")
    sql = tb.query_sql(TABLE, ds.metric, k)
    tb.run_queries(conn, sql, qtexts[:min(len(qtexts), 200)], mid, label="warm-up")
    rows = []
    for ef in efs:
        conn.execute(f"SET hnsw.ef_search = {ef}")
        ok, desc = tb.plan_check(conn, TABLE, INDEX, ds.metric, k, qtexts[0])
        if not ok:
            print(f"WARNING: at hnsw.ef_search = {ef} the planner does not use the index ({desc})",
                  file=sys.stderr)
            rows.append((ef, None, desc))
            continue
        seconds, results = tb.run_queries(conn, sql, qtexts, ef, label=f"ef_search {ef}")
        rows.append((ef, check.recall(results), len(qtexts) / seconds))
    forced = " (enable_seqscan = off)" if args.force_index else ""
    print(f"\nrecall@{k} against exact search and queries per second, {len(qtexts):,} queries, "
          f"one client, prepared statement{forced}:")
    print(f"   {'ef_search':>9}  {'recall@10':>9}  {'QPS':>7}  {'ms/query':>8}")
    for row in rows:
        ef = row[0]
        if row[1] is None:
            print(f"   {ef:>9}  not measured: the planner chose {row[2]} over the index "
                  f"(./demo --force-index measures it anyway)")
            continue
        r, qps = row[1], row[2]
        odd = ""
        if r["short"] or r["duplicates"]:
            odd = f"  !! {r['short']} queries returned fewer than {k} rows, {r['duplicates']} returned an id twice"
        print(f"   {ef:>9}  {r['recall']:>9.4f}  {qps:>7,.0f}  {1000 / qps:>8.2f}{odd}")

    # ---- one example
    ex = args.example
    ef = mid
    conn.execute(f"SET hnsw.ef_search = {ef}")
    got = conn.execute(tb.query_sql(TABLE, ds.metric, k, columns="id, label, emb <-> %s::vector"),
                       (tb.vector_literal(ds.queries[ex]), tb.vector_literal(ds.queries[ex]))).fetchall()
    names = tb.FASHION_MNIST_LABELS
    own = names[int(ds.query_labels[ex])]
    if ex < len(queries):
        exact = set(gt_ids[ex].tolist())
    else:
        exact = set(tb.exact_knn(ds.data, ds.queries[ex:ex + 1], k, ds.metric, label="example truth")[0][0].tolist())
    same = sum(1 for _, label, _ in got if names[label] == own)
    print(f"\nexample: test image {ex}, labelled {own!r}; its {k} nearest training images "
          f"(hnsw.ef_search = {ef}):")
    for rank, (rid, label, dist) in enumerate(got, 1):
        mark = "" if rid in exact else "   (not in the exact top 10)"
        print(f"   {rank:>2}. id {rid:>5}  {names[label]:<12} distance {dist:8.1f}{mark}")
    print(f"   {same} of {len(got)} share the query's label")


if __name__ == "__main__":
    sys.exit(main())
