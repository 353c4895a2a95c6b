#!/usr/bin/python3
"""tinyhnsw: the planner's choice for a k-NN query with a selective WHERE.

Run it through test/bench/filters, which starts a throw-away cluster (or uses
the server named by PGHOST/PGPORT/PGDATABASE). For each dataset it loads the
rows with a column c = id % 100 (so c = 44 keeps 1 row in 100, spread over
the whole vector space), builds the hnsw index and ANALYZEs; then, for each
filter, it times the query

    SELECT id FROM t WHERE <filter> ORDER BY emb <op> $1 LIMIT k

under each plan (the index forced by enable_seqscan = off, the sequential
scan and sort by enable_indexscan = off), over the same queries, best of
--passes, and asks the planner which one it picks with default settings.
It prints, per filter: the share of rows kept, both plans' time per query
and estimated cost, the plan chosen, and whether that was the faster one;
and the recall@k of the index plan against the sequential scan's exact
answer. It exits 1 if the planner chose the slower plan for a filter where
one plan was at least twice as fast as the other (--strict).
"""

import argparse
import sys
import time

import os

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tinybench as tb  # noqa: E402

SIZES = {
    "fashion-mnist": ({"n": 60000}, {"n": 10000}),
    "gaussian": ({"n": 200000, "dim": 128, "clusters": 1000}, {"n": 20000, "dim": 128, "clusters": 100}),
    "cosine": ({"n": 50000, "dim": 1536, "clusters": 500}, {"n": 5000, "dim": 1536, "clusters": 50}),
}
FILTERS = ["c = 44", "c < 1", "c < 3", "c < 10", "c < 30", None]
OPS = {"l2": "<->", "cosine": "<=>", "ip": "<#>"}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="all", help="fashion-mnist, gaussian, cosine (comma-separated) or all")
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    p.add_argument("--queries", type=int, default=50)
    p.add_argument("--passes", type=int, default=2)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--ef", type=int, default=40, help="hnsw.ef_search (default 40)")
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=64)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--strict", action="store_true",
                   help="exit 1 if the planner picks a plan at least twice as slow as the other")
    args = p.parse_args()
    args.datasets = list(SIZES) if args.dataset == "all" else args.dataset.split(",")
    for name in args.datasets:
        if name not in SIZES:
            p.error(f"unknown dataset {name}")
    return args


def make_dataset(name, args):
    size = SIZES[name][1 if args.quick else 0]
    if name == "fashion-mnist":
        return tb.fashion_mnist(n=size["n"], nq=args.queries)
    if name == "gaussian":
        return tb.clustered_gaussian(size["n"], size["dim"], size["clusters"], args.queries, args.seed)
    return tb.clustered_unit(size["n"], size["dim"], size["clusters"], args.queries, args.seed)


def plan_of(conn, sql, literal):
    """(top plan node below Limit, estimated total cost) of sql with the
    current settings, for the query vector literal."""
    plan = conn.execute("EXPLAIN (FORMAT JSON) " + sql.replace("%s", f"'{literal}'")).fetchone()[0]
    node = plan[0]["Plan"]
    cost = node["Total Cost"]
    while node.get("Plans") and node["Node Type"] in ("Limit", "Sort", "Gather Merge", "Gather"):
        node = node["Plans"][0]
    return node["Node Type"], cost


def timed(conn, sql, queries, passes):
    """Best of passes: seconds per query, and each query's ids.  Each plan's
    statement has a text of its own, so that the prepared statements (and
    their plans, made under that plan's settings) are never shared."""
    best = None
    results = None
    for _ in range(passes):
        res = []
        t0 = time.perf_counter()
        for q in queries:
            res.append([r[0] for r in conn.execute(sql, (q,), prepare=True)])
        dt = (time.perf_counter() - t0) / len(queries)
        best = dt if best is None else min(best, dt)
        results = res
    return best, results


def run(conn, name, args):
    ds = make_dataset(name, args)
    table, index = "tinyhnsw_filters", "tinyhnsw_filters_idx"
    op = OPS[ds.metric]
    tb.create_table(conn, table + "_load", ds.dim, with_labels=ds.labels is not None)
    tb.load_table(conn, table + "_load", ds)
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} AS SELECT id, id % 100 AS c, emb FROM {table}_load")
    conn.execute(f"DROP TABLE {table}_load")
    tb.build_index(conn, table, index, ds.metric, args.m, args.ef_construction, expected_rows=ds.n)
    conn.execute(f"VACUUM ANALYZE {table}")
    literals = [tb.vector_literal(q) for q in ds.queries]
    params = tb.query_params(ds.queries, binary=True)
    conn.execute(f"SET hnsw.ef_search = {args.ef}")
    conn.execute("SET plan_cache_mode = force_custom_plan")

    print(f"\n{name}: {ds.n} rows of {ds.dim} dimensions ({ds.metric}), {len(params)} queries, "
          f"k {args.k}, ef_search {args.ef}, m {args.m}")
    print(f"{'filter':<10} {'kept':>6} {'index ms':>9} {'seq ms':>8} {'index cost':>11} {'seq cost':>9} "
          f"{'chosen':<6} {'faster':<6} {'ok':<3} {'recall':>6}")
    wrong = 0
    for filt in FILTERS:
        where = f"WHERE {filt} " if filt else ""
        sql = f"SELECT id FROM {table} {where}ORDER BY emb {op} %s LIMIT {args.k}"
        kept = conn.execute(f"SELECT avg(({filt})::int) FROM {table}").fetchone()[0] if filt else 1.0
        chosen, _ = plan_of(conn, sql, literals[0])
        conn.execute("SET enable_seqscan = off")
        conn.execute("SET enable_bitmapscan = off")
        inode, icost = plan_of(conn, sql, literals[0])
        it, ires = timed(conn, "/* index plan */ " + sql, params, args.passes)
        conn.execute("RESET enable_seqscan")
        conn.execute("RESET enable_bitmapscan")
        conn.execute("SET enable_indexscan = off")
        snode, scost = plan_of(conn, sql, literals[0])
        st, sres = timed(conn, "/* sequential plan */ " + sql, params, args.passes)
        conn.execute("RESET enable_indexscan")
        if inode != "Index Scan" or snode == "Index Scan":
            print(f"{filt}: could not force both plans ({inode}, {snode})")
            wrong += 1
            continue
        hits = sum(len(set(a) & set(b)) for a, b in zip(ires, sres))
        total = sum(len(b) for b in sres)
        recall = hits / total if total else 1.0
        picked = "index" if chosen == "Index Scan" else "seq"
        faster = "index" if it < st else "seq"
        clear = max(it, st) >= 2 * min(it, st)
        ok = "yes" if picked == faster else ("no" if clear else "~")
        if ok == "no":
            wrong += 1
        print(f"{filt or '(none)':<10} {float(kept):>6.1%} {it * 1000:>9.2f} {st * 1000:>8.2f} "
              f"{icost:>11.1f} {scost:>9.1f} {picked:<6} {faster:<6} {ok:<3} {recall:>6.3f}")
    conn.execute(f"DROP TABLE {table}")
    return wrong


def main():
    args = parse_args()
    conn = tb.connect()
    conn.execute("CREATE EXTENSION IF NOT EXISTS tinyhnsw")
    tb.register_vector_param(conn)
    wrong = 0
    for name in args.datasets:
        wrong += run(conn, name, args)
    print(f"\nfilters where the planner chose a plan at least twice as slow: {wrong}")
    print("(ok: yes = the faster plan; ~ = the slower, but within 2x; no = over 2x slower)")
    return 1 if args.strict and wrong else 0


if __name__ == "__main__":
    sys.exit(main())
