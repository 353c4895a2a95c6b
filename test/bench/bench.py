#!/usr/bin/python3
"""tinyhnsw benchmark: recall@k and queries per second of the hnsw index
against exact search, with hnswlib on the same data as the reference.

Run it through test/bench/run, which starts a throw-away cluster (or uses the
server named by PGHOST/PGPORT/PGDATABASE). For each dataset it loads the
table with COPY, builds the index, then measures recall@k and QPS at each
hnsw.ef_search value from one client with a prepared statement (best of
--passes passes), optionally from --clients N clients; then builds hnswlib
with the same M and ef_construction (1 and 2 threads) and queries it
single-threaded at the same ef values. It prints a table with our figures as
ratios to hnswlib's, writes the results as JSON and draws recall against
QPS (PNG), and prints both paths.
"""

import argparse
import datetime
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tinybench as tb  # noqa: E402

# pgvector 0.8.6's published figures on this machine class (k = 10, m = 16,
# ef_construction = 64), as given in the project's issue: published figures,
# not measurements of this run.  For the generated sets the issue gives two
# ef_search values and the build with one parallel worker only, and its
# generator is not ours, so those sets' data differ from ours.
PGVECTOR_PUBLISHED = {
    "fashion-mnist": {
        "system": "pgvector 0.8.6 (published)", "n": 60000, "same_data": True,
        "recall": {10: 0.9715, 20: 0.9884, 40: 0.9951, 80: 0.9983, 160: 0.9992},
        "qps": {10: 857, 20: 695, 40: 595, 80: 509, 160: 362},
        "build_seconds": 41.2, "build_seconds_1_parallel_worker": 36.3,
        "index_bytes": 234 * 1024 * 1024,
    },
    "gaussian": {
        "system": "pgvector 0.8.6 (published)", "n": 200000, "same_data": False,
        "recall": {40: 0.9624, 80: 0.9938}, "qps": {40: 810, 80: 876},
        "build_seconds": None, "build_seconds_1_parallel_worker": 47.1,
        "index_bytes": 159 * 1024 * 1024,
    },
    "cosine": {
        "system": "pgvector 0.8.6 (published)", "n": 50000, "same_data": False,
        "recall": {40: 0.9714, 80: 0.9924}, "qps": {40: 793, 80: 645},
        "build_seconds": None, "build_seconds_1_parallel_worker": 36.9,
        "index_bytes": 391 * 1024 * 1024,
    },
}
PUBLISHED_PARAMS = {"k": 10, "m": 16, "ef_construction": 64}

# The targets: QPS at these recalls at least this multiple of
# pgvector's, builds at most this fraction of its time, size at most its.
RECALL_TARGETS = (0.99, 0.95)
QPS_TARGET = 2.0
BUILD_TARGET = 0.5

DATASETS = ("fashion-mnist", "gaussian", "cosine", "cosine3072")

# sizes: (full, --quick)
SIZES = {
    "fashion-mnist": ({"n": 60000}, {"n": 10000}),
    "gaussian": ({"n": 200000, "dim": 128, "clusters": 1000}, {"n": 20000, "dim": 128, "clusters": 100}),
    "cosine": ({"n": 50000, "dim": 1536, "clusters": 500}, {"n": 5000, "dim": 1536, "clusters": 50}),
    "cosine3072": ({"n": 50000, "dim": 3072, "clusters": 500}, {"n": 3000, "dim": 3072, "clusters": 30}),
}

# the sets that also run binary quantization with re-ranking (unless --no-bq)
BQ_DATASETS = ("cosine3072",)
# the binary quantization queries run with these: one search of ef_search
# candidates per query (see bench_bq)
BQ_SETTINGS = {"hnsw.iterative_scan": "off"}


def parse_args():
    ap = argparse.ArgumentParser(prog="test/bench/run", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--dataset", default=None,
                    help="comma-separated: fashion-mnist, gaussian, cosine, cosine3072 or all "
                         "(default: fashion-mnist; all with --quick)")
    ap.add_argument("--quick", action="store_true",
                    help="small sizes, 200 queries, 1 pass: a smoke run")
    ap.add_argument("--n", type=int, help="rows (default per dataset; fashion-mnist: at most 60,000)")
    ap.add_argument("--dim", type=int, help="dimensions of generated datasets")
    ap.add_argument("--clusters", type=int, help="clusters of generated datasets")
    ap.add_argument("--seed", type=int, default=42, help="seed of generated datasets")
    ap.add_argument("--queries", type=int, help="queries (default 1000; 200 with --quick)")
    ap.add_argument("--k", type=int, default=10, help="neighbors per query (recall@k)")
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=64)
    ap.add_argument("--ef", default="10,15,20,30,40,60,80,120,160",
                    help="hnsw.ef_search values (pgvector's published ones, 10 to 160, and "
                         "points between, so that each recall target is met near its threshold)")
    ap.add_argument("--bq-candidates", default="100",
                    help="cosine3072's binary quantization with re-ranking: rows the inner query takes "
                         "from the bit index by Hamming distance (its LIMIT), comma-separated")
    ap.add_argument("--bq-ef", default="100,120,160,200,300,400,600,800",
                    help="hnsw.ef_search values of the binary quantization queries; those below a "
                         "candidate count are skipped for it (hnsw.iterative_scan is off there)")
    ap.add_argument("--no-bq", action="store_true", help="skip the binary quantization mode")
    ap.add_argument("--query-format", choices=("binary", "text"), default="binary",
                    help="how the query vector is bound: binary (as drivers that know the type "
                         "send it, and as ann-benchmarks measures pgvector) or as a text literal")
    ap.add_argument("--passes", type=int, help="timed passes over the queries per ef value; "
                    "the table shows the best (default 3; 1 with --quick)")
    ap.add_argument("--clients", type=int, default=1,
                    help="also measure QPS with this many concurrent clients (processes)")
    ap.add_argument("--no-hnswlib", action="store_true", help="skip the hnswlib reference")
    ap.add_argument("--hnswlib-build-threads", default="1,2", help="hnswlib build thread counts")
    ap.add_argument("--pgvector-published", action="store_true",
                    help="add pgvector 0.8.6's published figures (full-size sets, k=10, "
                         "m=16, ef_construction=64 only) as a static line")
    ap.add_argument("--force-index", action="store_true",
                    help="SET enable_seqscan = off for the measured queries (otherwise an ef value "
                         "whose plan is not an index scan is reported and not measured)")
    ap.add_argument("--shared-buffers", default="4GB", help="the throw-away cluster's shared_buffers")
    ap.add_argument("--maintenance-work-mem", default="4GB", help="maintenance_work_mem for CREATE INDEX")
    ap.add_argument("--parallel-workers", type=int, default=1,
                    help="max_parallel_maintenance_workers of the second build (the first is serial; "
                         "0: only the serial build)")
    ap.add_argument("--no-serial-build", action="store_true", help="skip the serial build")
    ap.add_argument("--table-parallel-workers", type=int,
                    help="ALTER TABLE ... SET (parallel_workers = N) before building")
    ap.add_argument("--cache-dir", default=tb.default_cache_dir(), help="ground-truth cache ('' for none)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="directory for JSON and PNG")
    ap.add_argument("--keep", action="store_true", help="keep the tables")
    ap.add_argument("--no-plot", action="store_true", help="draw no PNG (matplotlib not needed)")
    args = ap.parse_args()
    if args.dataset is None:
        args.dataset = "all" if args.quick else "fashion-mnist"
    names = DATASETS if args.dataset == "all" else [d.strip() for d in args.dataset.split(",") if d.strip()]
    for name in names:
        if name not in DATASETS:
            ap.error(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)} or all")
    args.datasets = list(names)
    args.queries = args.queries or (200 if args.quick else 1000)
    args.passes = args.passes or (1 if args.quick else 3)
    args.efs = [int(x) for x in args.ef.split(",") if x]
    args.bq_cands = [int(x) for x in args.bq_candidates.split(",") if x]
    args.bq_efs = [int(x) for x in args.bq_ef.split(",") if x]
    for c in args.bq_cands:
        if not any(ef >= c for ef in args.bq_efs):
            ap.error(f"--bq-candidates {c}: no --bq-ef value is at least {c}")
    args.hnswlib_threads = [int(x) for x in args.hnswlib_build_threads.split(",") if x]
    return args


def make_dataset(name, args):
    size = dict(SIZES[name][1 if args.quick else 0])
    for key in ("n", "dim", "clusters"):
        if getattr(args, key) is not None and key in size:
            size[key] = getattr(args, key)
    if name == "fashion-mnist":
        return tb.fashion_mnist(n=size["n"], nq=args.queries)
    if name == "gaussian":
        return tb.clustered_gaussian(size["n"], size["dim"], size["clusters"], args.queries, args.seed)
    return tb.clustered_unit(size["n"], size["dim"], size["clusters"], args.queries, args.seed, name=name)


# ------------------------------------------------------------------ tinyhnsw

def bench_tinyhnsw(conn, ds, check, args, table, index):
    """Load the table, build the index (on the column, or on emb::halfvec(dim)
    above 2,000 dimensions) and measure it. The table stays for bench_bq;
    main drops it."""
    kind = tb.index_kind_for(ds.dim)
    res = {"system": "tinyhnsw", "index_kind": kind.kind, "index": kind.describe(ds.metric),
           "query": tb.query_sql(table, ds.metric, args.k, kind=kind),
           "query_param_type": kind.param_type}
    tb.create_table(conn, table, ds.dim, with_labels=ds.labels is not None)
    res["load_seconds"] = tb.load_table(conn, table, ds)
    res["heap_main_fork_bytes"] = conn.execute(f"SELECT pg_relation_size('{table}')").fetchone()[0]
    if args.table_parallel_workers is not None:
        conn.execute(f"ALTER TABLE {table} SET (parallel_workers = {args.table_parallel_workers})")
    res["builds"] = build_indexes(conn, ds, args, table, index, kind)
    res["build_seconds"] = res["builds"][0]["seconds"]
    res["index_bytes"], res["index_pretty"] = tb.relation_size(conn, index)
    res["table_bytes"] = conn.execute(f"SELECT pg_total_relation_size('{table}')").fetchone()[0]
    res["force_index"] = args.force_index
    res["runs"], clients = measure(conn, ds, check, args, table, index, kind, args.efs)
    if clients:
        res["clients"] = clients
    return res


def bench_bq(conn, ds, check, args, table, index):
    """Binary quantization with re-ranking on the table bench_tinyhnsw
    loaded: an index on binary_quantize(emb)::bit(dim) under
    bit_hamming_ops, and per --bq-candidates count c the query that takes c
    rows from it by Hamming distance and re-ranks them by the full vectors.
    hnsw.iterative_scan is off, so that each query is one search of
    ef_search candidates; ef values below c are skipped (they would return
    fewer than c rows)."""
    kind = tb.IndexKind("bq", ds.dim)
    res = {"system": "tinyhnsw, binary quantization + re-ranking", "index_kind": "bq",
           "index": kind.describe(ds.metric), "settings": dict(BQ_SETTINGS)}
    res["builds"] = build_indexes(conn, ds, args, table, index, kind, what="bq build")
    res["build_seconds"] = res["builds"][0]["seconds"]
    res["index_bytes"], res["index_pretty"] = tb.relation_size(conn, index)
    res["force_index"] = args.force_index
    res["candidates"] = {}
    for c in args.bq_cands:
        ck = tb.IndexKind("bq", ds.dim, c)
        efs = [ef for ef in args.bq_efs if ef >= c]
        runs, clients = measure(conn, ds, check, args, table, index, ck, efs, BQ_SETTINGS,
                                label=f"bq {c} ")
        res["candidates"][c] = {"query": tb.query_sql(table, ds.metric, args.k, kind=ck),
                                "ef_search": efs, "runs": runs}
        if clients:
            res["clients"] = clients
    return res


def build_indexes(conn, ds, args, table, index, kind, what="build"):
    """Serial, then (unless max_parallel_maintenance_workers is 0) with
    parallel workers allowed; the queries use the index of the last build.
    Returns the builds."""
    builds = []
    modes = [0] + ([args.parallel_workers] if args.parallel_workers > 0 else [])
    if args.no_serial_build and len(modes) > 1:
        modes = modes[1:]
    for workers in modes:
        conn.execute(f"SET max_parallel_maintenance_workers = {workers}")
        label = f"{what} (serial)" if workers == 0 else f"{what} ({workers}w allowed)"
        seconds = tb.build_index(conn, table, index, ds.metric, args.m, args.ef_construction,
                                 expected_rows=ds.n, label=label, kind=kind)
        builds.append({"max_parallel_maintenance_workers": workers, "seconds": seconds,
                       "parallel_workers_seen": tb.build_index.parallel_workers_seen})
    return builds


def measure(conn, ds, check, args, table, index, kind, efs, settings=None, label=""):
    """Recall@k and QPS of the k-NN query through `index` (an IndexKind says
    which query) at each ef_search in efs, under settings (SET for the
    duration, and in --clients' sessions). An ef value whose plan does not
    use the index is not measured unless --force-index. Returns (the runs per
    ef, N with --clients N or else None)."""
    settings = dict(settings or {})
    if args.force_index:
        settings["enable_seqscan"] = "off"
    for name, value in settings.items():
        conn.execute(f"SET {name} = {value}")
    qparams = tb.query_params(ds.queries, args.query_format == "binary", kind)
    sql = tb.query_sql(table, ds.metric, args.k, kind=kind)

    # the plan at each ef value (the index's cost depends on it)
    plans = {}
    for ef in efs:
        conn.execute(f"SET hnsw.ef_search = {ef}")
        ok, desc = tb.plan_check(conn, table, index, ds.metric, args.k, tb.vector_literal(ds.queries[0]),
                                 kind=kind)
        plans[ef] = (ok, desc)
        if not ok:
            print(f"WARNING: {ds.name}: {label}at hnsw.ef_search = {ef} the planner does not use the index "
                  f"{index} ({desc}); not measured (--force-index measures it anyway)", file=sys.stderr)
    measured = [ef for ef in efs if plans[ef][0]]

    runs = {ef: {"plan": plans[ef][1], "qps_passes": []} for ef in efs}
    if measured:
        warm = measured[len(measured) // 2]
        tb.run_queries(conn, sql, qparams[:min(len(qparams), 200)], warm, label=f"{label}warm-up")
    for p in range(args.passes):
        for ef in measured:
            lab = f"{label}ef {ef}" + (f" pass {p + 1}" if args.passes > 1 else "")
            seconds, results = tb.run_queries(conn, sql, qparams, ef, label=lab)
            runs[ef]["qps_passes"].append(len(qparams) / seconds)
            r = check.recall(results)
            if p == 0:
                runs[ef].update(r)
                runs[ef]["first_results"] = results
            elif results != runs[ef]["first_results"]:
                runs[ef]["results_differ_between_passes"] = True
    for ef in measured:
        q = runs[ef]["qps_passes"]
        runs[ef]["qps"] = max(q)
        runs[ef]["qps_median"] = statistics.median(q)
        runs[ef].pop("first_results", None)

    if args.clients > 1 and measured:
        bar = tb.Progress(f"{label}{args.clients} clients", len(measured) * args.passes, " runs")
        for p in range(args.passes):
            for i, ef in enumerate(measured):
                qps = tb.run_clients(sql, qparams, ef, args.clients, settings)
                runs[ef].setdefault("clients_qps_passes", []).append(qps)
                bar.update(p * len(measured) + i + 1)
        bar.close()
        for ef in measured:
            runs[ef]["clients_qps"] = max(runs[ef]["clients_qps_passes"])
    for name in settings:
        conn.execute(f"RESET {name}")
    return runs, (args.clients if args.clients > 1 and measured else None)


# ------------------------------------------------------------------ hnswlib

def bench_hnswlib(ds, check, args):
    try:
        import hnswlib
    except ImportError:
        print("hnswlib is not installed (apt-get install python3-hnswlib): skipped", file=sys.stderr)
        return None
    space = {"l2": "l2", "cosine": "cosine", "ip": "ip"}[ds.metric]
    res = {"system": "hnswlib", "version": _hnswlib_version(), "builds": {}}
    index_for_queries = None
    for threads in args.hnswlib_threads:
        idx = hnswlib.Index(space=space, dim=ds.dim)
        idx.init_index(max_elements=ds.n, M=args.m, ef_construction=args.ef_construction, random_seed=100)
        idx.set_num_threads(threads)
        bar = tb.Progress(f"hnswlib {threads}T", ds.n, " rows")
        chunk = 5000
        t0 = time.perf_counter()
        for lo in range(0, ds.n, chunk):
            hi = min(ds.n, lo + chunk)
            idx.add_items(ds.data[lo:hi], np.arange(lo, hi), num_threads=threads)
            bar.update(hi)
        seconds = time.perf_counter() - t0
        bar.close()
        res["builds"][threads] = seconds
        if index_for_queries is None:
            index_for_queries = (threads, idx)
    threads, idx = index_for_queries
    res["queried_build_threads"] = threads
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "index.bin")
        idx.save_index(path)
        res["index_bytes"] = os.path.getsize(path)
    qs = [q.reshape(1, -1) for q in ds.queries]
    runs = {}
    for p in range(args.passes):
        for ef in args.efs:
            idx.set_ef(ef)
            bar = tb.Progress(f"hnswlib ef {ef}", len(qs), " queries")
            results = []
            t0 = time.perf_counter()
            for j, q in enumerate(qs, 1):
                labels, _ = idx.knn_query(q, k=args.k, num_threads=1)
                results.append(labels[0].tolist())
                if j % 100 == 0:
                    bar.update(j)
            seconds = time.perf_counter() - t0
            bar.close(f"{len(qs) / seconds:,.0f} QPS")
            run = runs.setdefault(ef, {"qps_passes": []})
            run["qps_passes"].append(len(qs) / seconds)
            if p == 0:
                run.update(check.recall(results))
    for ef, run in runs.items():
        run["qps"] = max(run["qps_passes"])
        run["qps_median"] = statistics.median(run["qps_passes"])
    res["runs"] = runs
    return res


def _hnswlib_version():
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "python3-hnswlib"],
                             capture_output=True, text=True, check=False)
        return out.stdout.strip() or None
    except OSError:
        return None


# ------------------------------------------------------------------ report

def ratio(a, b):
    if a is None or b in (None, 0):
        return "-"
    return f"{a / b:.2f}x"


def print_report(entry, args):
    ds = entry["dataset"]
    ours = entry["tinyhnsw"]
    ref = entry.get("hnswlib")
    pub = entry.get("pgvector_published")
    print()
    print(f"== {ds['name']}: {ds['n']:,} x {ds['dim']}, {ds['metric']}, {ds['queries']:,} queries, "
          f"k={args.k}, m={args.m}, ef_construction={args.ef_construction}")
    print(f"   ground truth: {entry['ground_truth']}")
    if ours.get("index_kind", "vector") != "vector":
        print(f"   index: {ours['index']}; query vector bound as {ours['query_param_type']} "
              f"(recall against the exact float distances)")
    w = 16
    head = f"   {'':<26}{'tinyhnsw':>{w}}{'hnswlib':>{w}}{'ratio':>{w}}"
    if pub:
        head += f"   {'pgvector 0.8.6 (published)'}"
    print(head)

    def line(name, mine, theirs, fmt, pubval=None):
        s = f"   {name:<26}{fmt(mine) if mine is not None else '-':>{w}}"
        s += f"{fmt(theirs) if theirs is not None else '-':>{w}}{ratio(mine, theirs):>{w}}"
        if pub and pubval is not None:
            s += f"   {pubval}"
        print(s)

    secs = lambda v: f"{v:.1f} s"  # noqa: E731
    print(f"   {'load (COPY)':<26}{secs(ours['load_seconds']):>{w}}")
    b1 = ref["builds"].get(1) if ref else None
    b2 = ref["builds"].get(2) if ref else None
    for b in ours["builds"]:
        allowed = b["max_parallel_maintenance_workers"]
        if allowed == 0:
            line("build, serial / 1 thread", b["seconds"], b1, secs,
                 f"{pub['build_seconds']} s" if pub and pub["build_seconds"] else None)
        else:
            line(f"build, {allowed} worker(s) allowed", b["seconds"], b2, secs,
                 f"{pub['build_seconds_1_parallel_worker']} s (1 parallel worker)" if pub else None)
            print(f"     {b['parallel_workers_seen']} parallel worker(s) seen helping; "
                  f"hnswlib column: 2 threads")
            if b["parallel_workers_seen"] == 0:
                print(f"     (PostgreSQL plans build workers from the table's main fork, "
                      f"{tb.fmt_bytes(ours['heap_main_fork_bytes'])} here as the vectors are TOASTed; "
                      f"--table-parallel-workers N sets the table's parallel_workers)")
    if len(ours["builds"]) == 1 and b2 is not None:
        line("  vs hnswlib 2 threads", ours["builds"][0]["seconds"], b2, secs)
    line("index size", ours["index_bytes"], ref["index_bytes"] if ref else None, tb.fmt_bytes,
         tb.fmt_bytes(pub["index_bytes"]) if pub else None)

    print()
    clients = ours.get("clients")
    cols = f"   {'ef_search':>9} | {'tinyhnsw':>8} {'QPS':>7}"
    if clients:
        cols += f" {f'QPS {clients}cl':>9}"
    if ref:
        cols += f" | {'hnswlib':>8} {'QPS':>7} | {'recall':>7} {'QPS':>6}"
    if pub:
        cols += f" | {'pgvector':>8} {'QPS':>5}  vs pub. QPS"
    print(cols)
    sub = f"   {'':>9} | {'recall':>8} {'':>7}"
    if clients:
        sub += f" {'':>9}"
    if ref:
        sub += f" | {'recall':>8} {'':>7} | {'ratio':>7} {'ratio':>6}"
    if pub:
        sub += f" | {'recall':>8} {'':>5}"
    print(sub)
    for ef in args.efs:
        run = ours["runs"][ef]
        if "qps" not in run:
            print(f"   {ef:>9} | not measured: the planner chose {run['plan']}")
            continue
        s = f"   {ef:>9} | {run['recall']:>8.4f} {run['qps']:>7,.0f}"
        if clients:
            s += f" {run['clients_qps']:>9,.0f}"
        if ref:
            rr = ref["runs"][ef]
            s += f" | {rr['recall']:>8.4f} {rr['qps']:>7,.0f} | {ratio(run['recall'], rr['recall']):>7} " \
                 f"{ratio(run['qps'], rr['qps']):>6}"
        if pub:
            s += f" | {pub['recall'][ef]:>8.4f} {pub['qps'][ef]:>5}  {ratio(run['qps'], pub['qps'][ef]):>6}" \
                if ef in pub["recall"] else " | -"
        print(s + odd_notes(run, args.k))
    note = f"   QPS: best of {args.passes} pass{'es' if args.passes > 1 else ''} of {ds['queries']:,} queries " \
           f"(median in the JSON); one client, prepared statement, query vector bound in " \
           f"{args.query_format}"
    if clients:
        note += f"; {clients}cl: {clients} concurrent clients, each running every query"
    print(note)
    if ref:
        print(f"   hnswlib: built with {ref['queried_build_threads']} thread(s), queried one query at a time "
              f"from Python, single-threaded; ratio = tinyhnsw / hnswlib")
    if pub:
        print("   pgvector 0.8.6: figures as published (m=16, ef_construction=64, this machine class), "
              "not measured in this run; its query set may differ"
              + ("" if pub["same_data"] else "; its generated vectors are not ours"))
        print_targets(ours, pub)
    if ours.get("force_index"):
        print("   queries ran with enable_seqscan = off (--force-index)")
    if entry.get("tinyhnsw_bq"):
        print_bq(entry["tinyhnsw_bq"], args)


def odd_notes(run, k):
    odd = []
    if run.get("short"):
        odd.append(f"{run['short']} queries got fewer than {k} rows")
    if run.get("duplicates"):
        odd.append(f"{run['duplicates']} queries got an id twice")
    if run.get("results_differ_between_passes"):
        odd.append("results differ between passes")
    return "   !! " + "; ".join(odd) if odd else ""


def print_bq(bq, args):
    """bench_bq's figures: builds, index size, recall and QPS per
    candidate count and ef_search."""
    print()
    print(f"   binary quantization with re-ranking: {bq['index']}")
    w = 16
    secs = lambda v: f"{v:.1f} s"  # noqa: E731
    for b in bq["builds"]:
        allowed = b["max_parallel_maintenance_workers"]
        name = "build, serial" if allowed == 0 else f"build, {allowed} worker(s) allowed"
        print(f"   {name:<26}{secs(b['seconds']):>{w}}")
    print(f"   {'index size':<26}{tb.fmt_bytes(bq['index_bytes']):>{w}}")
    print()
    clients = bq.get("clients")
    cols = f"   {'candidates':>10} {'ef_search':>9} | {'recall':>8} {'QPS':>7}"
    if clients:
        cols += f" {f'QPS {clients}cl':>9}"
    print(cols)
    for c, cand in bq["candidates"].items():
        for ef in cand["ef_search"]:
            run = cand["runs"][ef]
            if "qps" not in run:
                print(f"   {c:>10} {ef:>9} | not measured: the planner chose {run['plan']}")
                continue
            line = f"   {c:>10} {ef:>9} | {run['recall']:>8.4f} {run['qps']:>7,.0f}"
            if clients:
                line += f" {run['clients_qps']:>9,.0f}"
            print(line + odd_notes(run, args.k))
    print(f"   candidates: the inner query's LIMIT (rows taken from the bit index by Hamming distance, "
          f"re-ranked by {args.k} nearest under the full vectors); hnsw.iterative_scan = off, so ef_search "
          f"values below it are skipped; QPS as above")
    if bq.get("force_index"):
        print("   queries ran with enable_seqscan = off (--force-index)")


def best_at(recalls, qps, threshold):
    """(qps, ef, recall) of the fastest ef_search whose recall reaches
    threshold, or None."""
    ok = [(qps[ef], ef, r) for ef, r in recalls.items() if r >= threshold and ef in qps]
    return max(ok) if ok else None


def interpolated_at(recalls, qps, threshold):
    """QPS at exactly threshold on the straight line between the two
    neighboring ef_search points whose recalls straddle it, or None when no
    pair does. Used on the published figures: a finer sweep of ours against
    their coarse one would otherwise flatter us."""
    pts = sorted(recalls)
    for lo, hi in zip(pts, pts[1:]):
        r0, r1 = recalls[lo], recalls[hi]
        if r0 < threshold <= r1:
            return qps[lo] + (qps[hi] - qps[lo]) * (threshold - r0) / (r1 - r0)
    return None


def print_targets(ours, pub):
    """The issue's targets against pgvector's published figures: QPS at
    matched recall, build time with the same processes, index size."""
    runs = {ef: r for ef, r in ours["runs"].items() if "qps" in r}
    print("   targets against pgvector's published figures:")
    for thr in RECALL_TARGETS:
        mine = best_at({ef: r["recall"] for ef, r in runs.items()},
                       {ef: r["qps"] for ef, r in runs.items()}, thr)
        theirs = best_at(pub["recall"], pub["qps"], thr)
        if mine is None or theirs is None:
            print(f"     QPS at recall >= {thr}: "
                  f"{'no ef_search reached it' if mine is None else 'pgvector has no figure'}")
            continue
        x = mine[0] / theirs[0]
        print(f"     QPS at recall >= {thr}: {mine[0]:,.0f} (ef {mine[1]}, {mine[2]:.4f}) against "
              f"{theirs[0]:,} (ef {theirs[1]}, {theirs[2]:.4f}): {x:.2f}x, "
              f"{'met' if x >= QPS_TARGET else 'not met'} (target {QPS_TARGET:g}x)")
        between = interpolated_at(pub["recall"], pub["qps"], thr)
        if between is not None and between > theirs[0]:
            print(f"       stricter: against pgvector's QPS interpolated to recall {thr} between its "
                  f"published points, {between:,.0f}: {mine[0] / between:.2f}x")
        elif between is None and min(pub["recall"].values()) >= thr:
            print(f"       (pgvector's lowest published ef_search already exceeds recall {thr}: "
                  f"its QPS at exactly {thr} is not known and may be higher)")
    for b in ours["builds"]:
        theirs = pub["build_seconds_1_parallel_worker" if b["max_parallel_maintenance_workers"]
                     else "build_seconds"]
        if theirs:
            x = b["seconds"] / theirs
            print(f"     build, {'1 parallel worker' if b['max_parallel_maintenance_workers'] else 'serial'}: "
                  f"{b['seconds']:.1f} s against {theirs} s: {x:.2f} of its time, "
                  f"{'met' if x <= BUILD_TARGET else 'not met'} (target {BUILD_TARGET:g})")
    # the published sizes are whole megabytes, as pg_size_pretty rounds them
    mine_mb = round(ours["index_bytes"] / 2**20)
    theirs_mb = round(pub["index_bytes"] / 2**20)
    print(f"     index size: {mine_mb} MB against {theirs_mb} MB: {mine_mb / theirs_mb:.2f}, "
          f"{'met' if mine_mb <= theirs_mb else 'not met'} (target 1)")


def plot(entry, args, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ds = entry["dataset"]
    fig, ax = plt.subplots(figsize=(8, 5.5))

    def series(runs, key="qps", efs=args.efs):
        pts = [(ef, runs[ef]["recall"], runs[ef][key]) for ef in efs
               if ef in runs and key in runs[ef]]
        return pts

    name = "tinyhnsw" if entry["tinyhnsw"].get("index_kind", "vector") == "vector" else \
        f"tinyhnsw, {entry['tinyhnsw']['index_kind']}"
    lines = [(f"{name} (1 client)", series(entry["tinyhnsw"]["runs"]), "o-", None)]
    if entry["tinyhnsw"].get("clients"):
        lines.append((f"{name} ({entry['tinyhnsw']['clients']} clients)",
                      series(entry["tinyhnsw"]["runs"], "clients_qps"), "o--", None))
    for c, cand in (entry.get("tinyhnsw_bq") or {}).get("candidates", {}).items():
        lines.append((f"tinyhnsw, binary quantization, {c} re-ranked (1 client)",
                      series(cand["runs"], efs=cand["ef_search"]), "d-", None))
    if entry.get("hnswlib"):
        lines.append(("hnswlib (1 thread)", series(entry["hnswlib"]["runs"]), "s-", None))
    pub = entry.get("pgvector_published")
    if pub:
        pts = [(ef, pub["recall"][ef], pub["qps"][ef]) for ef in sorted(pub["recall"])]
        lines.append(("pgvector 0.8.6 (published figures)", pts, "^:", None))
    for name, pts, style, _ in lines:
        if not pts:
            continue
        xs = [p[1] for p in pts]
        ys = [p[2] for p in pts]
        ax.plot(xs, ys, style, label=name)
        for ef, x, y in pts:
            ax.annotate(str(ef), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_yscale("log")
    ax.set_xlabel(f"recall@{args.k}")
    ax.set_ylabel("queries per second (log scale)")
    ax.set_title(f"{ds['name']} ({ds['n']:,} x {ds['dim']}, {ds['metric']}), "
                 f"m={args.m}, ef_construction={args.ef_construction}; labels: ef_search", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def environment(conn):
    env = {
        "host": socket.gethostname(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "server_version": conn.execute("SHOW server_version").fetchone()[0],
        "tinyhnsw": conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'tinyhnsw'").fetchone()[0],
        "settings": tb.server_settings(conn, ["shared_buffers", "maintenance_work_mem",
                                              "max_parallel_maintenance_workers", "work_mem", "fsync",
                                              "wal_level", "jit"]),
        "external_server": os.environ.get("BENCH_EXTERNAL") == "1",
    }
    try:
        root = os.path.dirname(os.path.dirname(HERE))
        head = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True)
        env["git_commit"] = head.stdout.strip() or None
        env["git_dirty"] = bool(dirty.stdout.strip())
    except OSError:
        pass
    return env


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


# ------------------------------------------------------------------ main

def main():
    args = parse_args()
    tb.sigterm_as_interrupt()
    started = time.perf_counter()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    os.makedirs(args.out, exist_ok=True)
    conn = tb.connect(application_name="tinyhnsw bench")
    conn.execute("SET client_min_messages = warning")
    conn.execute("CREATE EXTENSION IF NOT EXISTS tinyhnsw")
    conn.execute(f"SET maintenance_work_mem = '{args.maintenance_work_mem}'")
    conn.execute(f"SET max_parallel_maintenance_workers = {args.parallel_workers}")
    env = environment(conn)
    s = env["settings"]
    print(f"PostgreSQL {env['server_version']}, tinyhnsw {env['tinyhnsw']} "
          f"(commit {(env.get('git_commit') or '?')[:10]}{', dirty tree' if env.get('git_dirty') else ''}); "
          f"shared_buffers {s['shared_buffers']}, maintenance_work_mem {s['maintenance_work_mem']}, "
          f"max_parallel_maintenance_workers {s['max_parallel_maintenance_workers']}; "
          f"{env['cores']} cores, {env['cpu']}")
    report = {"started": stamp, "argv": sys.argv[1:], "environment": env,
              "parameters": {"k": args.k, "m": args.m, "ef_construction": args.ef_construction,
                             "ef_search": args.efs, "passes": args.passes, "clients": args.clients,
                             "quick": args.quick, "qps_reported": "best of passes",
                             "query_format": args.query_format},
              "datasets": []}
    json_path = os.path.join(args.out, f"bench-{stamp}.json")
    try:
        for name in args.datasets:
            t0 = time.perf_counter()
            ds = make_dataset(name, args)
            made = time.perf_counter() - t0
            print(f"\n{ds.describe()}: made in {made:.1f} s", file=sys.stderr)
            gt_ids, gt_dists, gt_s, cached = tb.ground_truth(ds, args.k, args.cache_dir or None)
            gt_note = f"cached ({cached})" if cached else \
                f"computed with numpy in {gt_s:.1f} s ({getattr(tb.exact_knn, 'method', '?')})"
            check = tb.RecallCheck(ds, gt_ids, gt_dists, args.k)
            table = f"tinyhnsw_bench_{name.replace('-', '_')}"
            entry = {"dataset": {"name": ds.name, "metric": ds.metric, "n": ds.n, "dim": ds.dim,
                                 "queries": len(ds.queries), "params": ds.params},
                     "ground_truth": gt_note}
            entry["tinyhnsw"] = bench_tinyhnsw(conn, ds, check, args, table, table + "_idx")
            if name in BQ_DATASETS and not args.no_bq and args.bq_cands:
                if not args.keep:
                    # its pages would share shared_buffers with the bit index's
                    conn.execute(f"DROP INDEX {table}_idx")
                entry["tinyhnsw_bq"] = bench_bq(conn, ds, check, args, table, table + "_bq_idx")
            if not args.keep:
                conn.execute(f"DROP TABLE {table}")
            if not args.no_hnswlib:
                ref = bench_hnswlib(ds, check, args)
                if ref:
                    entry["hnswlib"] = ref
            if args.pgvector_published:
                p = PGVECTOR_PUBLISHED.get(name)
                if (p and ds.n == p["n"] and args.k == PUBLISHED_PARAMS["k"]
                        and args.m == PUBLISHED_PARAMS["m"]
                        and args.ef_construction == PUBLISHED_PARAMS["ef_construction"]):
                    entry["pgvector_published"] = p
                elif p is None:
                    print(f"note: pgvector has no published figures for {name}", file=sys.stderr)
                else:
                    print(f"note: pgvector's published figures are for the full-size sets, k=10, m=16, "
                          f"ef_construction=64: not shown for {name}", file=sys.stderr)
            report["datasets"].append(entry)
            print_report(entry, args)
            if not args.no_plot:
                png = os.path.join(args.out, f"bench-{stamp}-{name}.png")
                plot(entry, args, png)
                entry["plot"] = png
                print(f"   plot: {png}")
            with open(json_path, "w") as f:
                json.dump(report, f, indent=1, default=_json_default)
            sys.stdout.flush()
    except (KeyboardInterrupt, tb.psycopg.errors.QueryCanceled) as e:
        # Ctrl-C (or TERM) cancels the running statement, which then
        # raises QueryCanceled rather than KeyboardInterrupt
        print(f"interrupted ({type(e).__name__})", file=sys.stderr)
        return 130
    finally:
        conn.close()
    report["seconds"] = time.perf_counter() - started
    with open(json_path, "w") as f:
        json.dump(report, f, indent=1, default=_json_default)
    print(f"\nresults: {json_path}")
    print(f"benchmark finished in {report['seconds']:.1f} s")
    return 0


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


if __name__ == "__main__":
    sys.exit(main())
