#!/usr/bin/python3
"""tinyhnsw fan-out benchmark: one server against three shards through
postgres_fdw, with the same rows, for each k-NN query shape.

Run it through test/bench/fanout, which starts the four throw-away clusters
(a coordinator, which is also the single server, and three shards, all on
127.0.0.1) and passes their ports in FANOUT_COORD_PORT and
FANOUT_SHARD_PORTS. The coordinator's table is hash-partitioned on id into
three postgres_fdw foreign partitions (extensions 'tinyhnsw'); every shard's
table has its hnsw index, built on the shard; the single server's table is
on the coordinator, with its own index.

Each shape has a client session of its own (over TCP, a prepared
statement, the query vector bound in binary), which runs every query once to
warm up; then come --passes timed passes, each pass running every shape in
turn, so that a slow spell of the machine hits them all alike. The shapes
that need other server options (fetch_size, async_capable) read the same
shard tables through servers and partitioned tables of their own. Reported
per shape: QPS (best pass), p50 and p99 latency (all timed queries),
recall@k against exact ground truth, and bytes per query, between client
and coordinator and between coordinator and shards in each direction, from
the kernel's TCP counters (ss -ti: bytes_sent and bytes_received of the
connections to the coordinator's and the shards' ports, before and after
each timed pass; only the shape being timed is running).
"""

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tinybench as tb  # noqa: E402
from bench import environment  # noqa: E402

SHAPES = {
    "single": "one server: ORDER BY ... LIMIT k",
    "merge": "3 shards: ORDER BY ... LIMIT k on the partitioned table (fetch_size 100, the default)",
    "merge-fetch-k": "3 shards: the same, fetch_size = k",
    "fanout": "3 shards: hnsw_fanout_sql (per-shard LIMIT k), async_capable",
    "fanout-sync": "3 shards: the same, async_capable = false",
}
TABLE = "fanout_items"          # the partitioned table, and each shard's table
SINGLE = "fanout_single"        # the single server's table
# shape -> (the coordinator's partitioned table, its servers' suffix and
# their options beyond host, port, dbname and extensions); every such table
# reads the same shard tables
VARIANT = {
    "merge": ("fanout_items", "", "async_capable 'true'"),
    "fanout": ("fanout_items", "", "async_capable 'true'"),
    "merge-fetch-k": ("fanout_items_fetchk", "_fetchk", "async_capable 'true', fetch_size '{k}'"),
    "fanout-sync": ("fanout_items_sync", "_sync", "async_capable 'false'"),
}


def parse_args():
    ap = argparse.ArgumentParser(prog="test/bench/fanout", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--dataset", choices=("gaussian", "fashion-mnist"), default="gaussian")
    ap.add_argument("--n", type=int, default=200000, help="rows in all (fashion-mnist: at most 60,000)")
    ap.add_argument("--dim", type=int, default=128, help="dimensions (gaussian)")
    ap.add_argument("--clusters", type=int, default=1000, help="clusters (gaussian)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=64)
    ap.add_argument("--ef", type=int, default=None,
                    help="hnsw.ef_search on every server (default: the servers' default, 40)")
    ap.add_argument("--passes", type=int, default=3, help="timed passes (each runs every shape)")
    ap.add_argument("--shapes", default=",".join(SHAPES),
                    help="comma-separated, from: " + ", ".join(SHAPES))
    ap.add_argument("--cache-dir", default=tb.default_cache_dir(), help="ground-truth cache ('' for none)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="directory for the JSON report")
    args = ap.parse_args()
    args.shape_list = [s.strip() for s in args.shapes.split(",") if s.strip()]
    for s in args.shape_list:
        if s not in SHAPES:
            ap.error(f"unknown shape {s!r}; choose from {', '.join(SHAPES)}")
    return args


def ports_from_env():
    try:
        coord = int(os.environ["FANOUT_COORD_PORT"])
        shards = [int(p) for p in os.environ["FANOUT_SHARD_PORTS"].split(",")]
    except (KeyError, ValueError):
        raise SystemExit("fanout.py: run it through test/bench/fanout "
                         "(FANOUT_COORD_PORT and FANOUT_SHARD_PORTS name the servers)")
    if len(shards) != 3:
        raise SystemExit("fanout.py: FANOUT_SHARD_PORTS must name three ports")
    return coord, shards


def server(port, **kwargs):
    return tb.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", **kwargs)


# ------------------------------------------------------------------ bytes

# a connection's line (with a state filter, ss prints no State column):
# Recv-Q Send-Q Local Peer; its counters follow on an indented line
_SS_CONN = re.compile(r"^\s*\d+\s+\d+\s+(\S+)\s+(\S+)")


def tcp_counters(ports):
    """{(local, peer): (bytes_sent, bytes_received)} of every established
    TCP connection whose peer port is one of ports, from ss -ti (the kernel's
    tcp_info: payload bytes, headers not counted). None if ss is missing."""
    flt = " or ".join(f"dport = :{p}" for p in ports)
    try:
        out = subprocess.run(["ss", "-tinH", "state", "established", f"( {flt} )"],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    res = {}
    key = None
    for line in out.splitlines():
        if not line.startswith((" ", "\t")):
            m = _SS_CONN.match(line)
            key = (m.group(1), m.group(2)) if m else None
            continue
        if key is None:
            continue
        sent = re.search(r"\bbytes_sent:(\d+)", line)
        recv = re.search(r"\bbytes_received:(\d+)", line)
        res[key] = (int(sent.group(1)) if sent else 0, int(recv.group(1)) if recv else 0)
    return res


def counter_delta(before, after, keep=lambda key: True):
    """Bytes sent and received over the connections of `after` (those
    opened in between count from zero), and the connections of `before`
    that closed in between (their bytes are lost: reported, so that the
    figure is not trusted blindly)."""
    sent = recv = 0
    for key, (s, r) in after.items():
        if not keep(key):
            continue
        s0, r0 = before.get(key, (0, 0))
        sent += s - s0
        recv += r - r0
    closed = [k for k in before if k not in after and keep(k)]
    return sent, recv, closed


# ------------------------------------------------------------------ setup

def hash_routes(coord, n):
    """For each id 0..n-1, the remainder of its partition (the coordinator's
    own hash routing, so that each shard holds the rows the coordinator would
    send it)."""
    routes = np.empty(n, dtype=np.int8)
    rows = coord.execute(
        f"SELECT r, array_agg(i ORDER BY i) FROM generate_series(0, %s) i, generate_series(0, 2) r "
        f"WHERE satisfies_hash_partition('{TABLE}'::regclass, 3, r, i) GROUP BY r", (n - 1,)).fetchall()
    for r, ids in rows:
        routes[np.asarray(ids, dtype=np.int64)] = r
    return routes


def setup(coord, shards, shard_ports, ds, args):
    """Loads and indexes the single server's table and the shards' tables;
    creates the coordinator's partitioned table. Returns figures."""
    fig = {}
    opclass = tb.OPCLASSES[ds.metric]
    coord.execute("CREATE EXTENSION IF NOT EXISTS tinyhnsw")
    coord.execute("CREATE EXTENSION IF NOT EXISTS postgres_fdw")
    coord.execute(f"DROP TABLE IF EXISTS {SINGLE}")
    for table, suffix, options in sorted(set(VARIANT.values())):
        coord.execute(f"DROP TABLE IF EXISTS {table}")
        coord.execute(f"CREATE TABLE {table} (id int4, emb vector({ds.dim})) PARTITION BY HASH (id)")
        for i, port in enumerate(shard_ports, 1):
            srv = f"shard{i}{suffix}"
            coord.execute(f"DROP SERVER IF EXISTS {srv} CASCADE")
            coord.execute(f"CREATE SERVER {srv} FOREIGN DATA WRAPPER postgres_fdw OPTIONS "
                          f"(host '127.0.0.1', port '{port}', dbname 'postgres', "
                          f"extensions 'tinyhnsw', {options.format(k=int(args.k))})")
            coord.execute(f"CREATE USER MAPPING FOR CURRENT_USER SERVER {srv} OPTIONS (user 'postgres')")
            coord.execute(f"CREATE FOREIGN TABLE {table}_s{i} PARTITION OF {table} "
                          f"FOR VALUES WITH (MODULUS 3, REMAINDER {i - 1}) "
                          f"SERVER {srv} OPTIONS (table_name '{TABLE}')")

    # the single server
    tb.create_table(coord, SINGLE, ds.dim, with_labels=False)
    plain = tb.Dataset(ds.name, ds.metric, ds.data, ds.queries)
    fig["single_load_seconds"] = tb.load_table(coord, SINGLE, plain, label="load single")
    fig["single_build_seconds"] = tb.build_index(coord, SINGLE, SINGLE + "_idx", ds.metric, args.m,
                                                 args.ef_construction, expected_rows=ds.n,
                                                 label="build single")
    fig["single_index_bytes"] = tb.relation_size(coord, SINGLE + "_idx")[0]

    # the shards: each gets the rows the coordinator's hash sends it
    routes = hash_routes(coord, ds.n)
    fig["shard_rows"] = []
    fig["shard_build_seconds"] = []
    fig["shard_index_bytes"] = []
    for i, sh in enumerate(shards, 1):
        sh.execute("CREATE EXTENSION IF NOT EXISTS tinyhnsw")
        sh.execute(f"DROP TABLE IF EXISTS {TABLE}")
        sh.execute(f"CREATE TABLE {TABLE} (id int4, emb vector({ds.dim}))")
        ids = np.flatnonzero(routes == i - 1)
        part = tb.Dataset(ds.name, ds.metric, np.ascontiguousarray(ds.data[ids]), ds.queries)
        tb.load_table(sh, TABLE, part, ids=ids, label=f"load shard {i}")
        fig["shard_build_seconds"].append(
            tb.build_index(sh, TABLE, TABLE + "_idx", ds.metric, args.m, args.ef_construction,
                           expected_rows=len(ids), label=f"build shard {i}"))
        fig["shard_rows"].append(int(len(ids)))
        fig["shard_index_bytes"].append(tb.relation_size(sh, TABLE + "_idx")[0])
    if args.ef is not None:
        # new sessions (postgres_fdw's included) start with it
        for c in [coord] + shards:
            c.execute(f"ALTER DATABASE postgres SET hnsw.ef_search = {int(args.ef)}")
    return fig


# ------------------------------------------------------------------ shapes

def shape_sql(coord, shape, k):
    """The statement of a shape; every shape returns id and distance."""
    if shape == "single":
        return f"SELECT id, emb <-> $1 AS distance FROM {SINGLE} ORDER BY emb <-> $1 LIMIT {int(k)}"
    table = VARIANT[shape][0]
    if shape.startswith("merge"):
        return f"SELECT id, emb <-> $1 AS distance FROM {table} ORDER BY emb <-> $1 LIMIT {int(k)}"
    return coord.execute(f"SELECT hnsw_fanout_sql('{table}', 'emb', %s, columns => '{{id}}')",
                         (int(k),)).fetchone()[0]


def plan_summary(conn, sql, literal, shape, k):
    """EXPLAIN (VERBOSE) of the shape's statement, custom and generic plan;
    returns (ok, description): whether the plan is the one the shape stands
    for."""
    conn.execute("PREPARE fanout_explain(vector) AS " + sql)
    try:
        plans = {}
        for mode in ("force_custom_plan", "force_generic_plan"):
            conn.execute(f"SET plan_cache_mode = {mode}")
            plans[mode] = "\n".join(r[0] for r in conn.execute(
                f"EXPLAIN (VERBOSE, COSTS OFF) EXECUTE fanout_explain('{literal}')"))
        conn.execute("RESET plan_cache_mode")
    finally:
        conn.execute("DEALLOCATE fanout_explain")
    descs = []
    ok = True
    for mode, plan in plans.items():
        remote = re.findall(r"Remote SQL: (.*)", plan)
        ordered = sum(1 for r in remote if " ORDER BY " in r)
        limited = sum(1 for r in remote if re.search(rf" LIMIT {int(k)}\b", r))
        asyncs = len(re.findall(r"Async Foreign Scan", plan))
        if shape == "single":
            good = "Index Scan using" in plan and not remote
            desc = "Index Scan"
        elif shape.startswith("merge"):
            good = "Merge Append" in plan and ordered == 3 and limited == 0
            desc = f"Merge Append; ORDER BY sent to {ordered}, LIMIT to {limited}"
        else:
            want_async = 3 if shape == "fanout" else 0
            good = ("Merge Append" not in plan and ordered == 3 and limited == 3 and asyncs == want_async)
            desc = f"Append ({asyncs} async); ORDER BY + LIMIT sent to {limited}"
        ok = ok and good
        descs.append(desc)
    desc = descs[0] if descs[0] == descs[1] else f"custom: {descs[0]}; generic: {descs[1]}"
    return ok, desc, plans


class Session:
    """A shape's client session: its statement prepared and warmed up (every
    query once, which also opens its connections to the shards), then timed
    passes."""

    def __init__(self, coord_port, shape, k, qparams, literal):
        self.shape = shape
        self.conn = server(coord_port, application_name=f"fanout {shape}")
        self.sql = shape_sql(self.conn, shape, k)
        self.plan_ok, self.plan, self.plans = plan_summary(self.conn, self.sql, literal, shape, k)
        if not self.plan_ok:
            print(f"WARNING: {shape}: the plan is not the shape's ({self.plan})", file=sys.stderr)
        tb.register_vector_param(self.conn)
        self.port = self.conn.execute("SELECT inet_client_port()").fetchone()[0]
        # psycopg's placeholders: one named parameter, sent once however
        # many times the text uses it ($1 in hnsw_fanout_sql's text)
        self.ps = self.sql.replace("$1", "%(q)s")
        self.cur = self.conn.cursor()
        self.qparams = qparams
        self.seconds, self.latencies, self.results = [], [], None
        self.bytes = {"client_to_coordinator": 0, "coordinator_to_client": 0,
                      "coordinator_to_shards": 0, "shards_to_coordinator": 0,
                      "connections_closed": 0}
        self.bytes_measured = True
        bar = tb.Progress(f"{shape} warm-up", len(qparams), " queries")
        for i, q in enumerate(qparams):
            self.cur.execute(self.ps, {"q": q}, prepare=True)
            self.cur.fetchall()
            if i % 100 == 99:
                bar.update(i + 1)
        bar.close()

    def timed_pass(self, coord_port, shard_ports, label):
        before_shards = tcp_counters(shard_ports)
        before_client = tcp_counters([coord_port])
        bar = tb.Progress(label, len(self.qparams), " queries")
        res = [None] * len(self.qparams)
        t0 = time.perf_counter()
        for i, q in enumerate(self.qparams):
            t = time.perf_counter()
            self.cur.execute(self.ps, {"q": q}, prepare=True)
            res[i] = [r[0] for r in self.cur.fetchall()]
            self.latencies.append(time.perf_counter() - t)
            if i % 100 == 99:
                bar.update(i + 1)
        self.seconds.append(time.perf_counter() - t0)
        bar.close(f"{len(self.qparams) / self.seconds[-1]:,.0f} QPS")
        after_shards = tcp_counters(shard_ports)
        after_client = tcp_counters([coord_port])
        self.results = res
        if None in (before_shards, after_shards, before_client, after_client):
            self.bytes_measured = False
            return
        mine = lambda key: key[0].endswith(f":{self.port}")  # noqa: E731
        c_sent, c_recv, c_closed = counter_delta(before_client, after_client, mine)
        s_sent, s_recv, s_closed = counter_delta(before_shards, after_shards)
        b = self.bytes
        b["client_to_coordinator"] += c_sent
        b["coordinator_to_client"] += c_recv
        b["coordinator_to_shards"] += s_sent
        b["shards_to_coordinator"] += s_recv
        b["connections_closed"] += len(c_closed) + len(s_closed)

    def bytes_per_query(self):
        if not self.bytes_measured or not self.seconds:
            return None
        nq = len(self.seconds) * len(self.qparams)
        out = {key: v / nq for key, v in self.bytes.items() if key != "connections_closed"}
        out["connections_closed"] = self.bytes["connections_closed"]
        return out

    def close(self):
        self.cur.close()
        self.conn.close()


# ------------------------------------------------------------------ main

def fmt_int(x):
    return "-" if x is None else f"{x:,.0f}"


def main():
    args = parse_args()
    tb.sigterm_as_interrupt()
    started = time.perf_counter()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    os.makedirs(args.out, exist_ok=True)
    coord_port, shard_ports = ports_from_env()
    coord = server(coord_port, application_name="fanout setup")
    coord.execute("SET client_min_messages = warning")
    shards = [server(p, application_name="fanout setup") for p in shard_ports]
    for c in [coord] + shards:
        c.execute("SET client_min_messages = warning")
        c.execute("CREATE EXTENSION IF NOT EXISTS tinyhnsw")
    env = environment(coord)

    if args.dataset == "fashion-mnist":
        ds = tb.fashion_mnist(n=args.n, nq=args.queries)
    else:
        ds = tb.clustered_gaussian(args.n, args.dim, args.clusters, args.queries, args.seed)
    print(f"{ds.describe()}; one server against three shards (postgres_fdw) on this machine; "
          f"k = {args.k}, m = {args.m}, ef_construction = {args.ef_construction}, "
          f"hnsw.ef_search = {args.ef if args.ef is not None else 'default (40)'}", file=sys.stderr)
    gt_ids, gt_dists, gt_s, cached = tb.ground_truth(ds, args.k, args.cache_dir or None)
    check = tb.RecallCheck(ds, gt_ids, gt_dists, args.k)

    fig = setup(coord, shards, shard_ports, ds, args)
    for c in [coord] + shards:
        c.close()

    qparams = tb.query_params(ds.queries, True)
    literal = tb.vector_literal(ds.queries[0])
    load_before = os.getloadavg()
    sessions = []
    try:
        for shape in args.shape_list:
            sessions.append(Session(coord_port, shape, args.k, qparams, literal))
        for p in range(args.passes):
            for ses in sessions:
                ses.timed_pass(coord_port, shard_ports, f"{ses.shape} {p + 1}/{args.passes}")
        rows = []
        for ses in sessions:
            lat = np.array(ses.latencies) * 1000
            rec = check.recall(ses.results)
            rows.append({
                "shape": ses.shape, "description": SHAPES[ses.shape], "sql": ses.sql,
                "plan_ok": ses.plan_ok, "plan": ses.plan, "plans": ses.plans,
                "qps": len(qparams) / min(ses.seconds),
                "qps_passes": [len(qparams) / x for x in ses.seconds],
                "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
                "recall": rec["recall"], "short": rec["short"], "duplicates": rec["duplicates"],
                "bytes": ses.bytes_per_query(),
            })
    finally:
        for ses in sessions:
            ses.close()
    load_after = os.getloadavg()

    # ---- report
    print()
    print(f"{ds.describe()}, k = {args.k}; one client at a time, prepared statement, query vector "
          f"bound in binary; {args.passes} timed pass(es) of every shape in turn, after a warm-up; "
          f"QPS: best pass; latency: all timed queries")
    print(f"single server: 1 x {ds.n:,} rows (index built in {fig['single_build_seconds']:.1f} s, "
          f"{fig['single_index_bytes'] / 2**20:.0f} MB); shards: "
          + " + ".join(f"{r:,}" for r in fig["shard_rows"])
          + " rows (built in " + " / ".join(f"{s:.1f}" for s in fig["shard_build_seconds"]) + " s, "
          + " + ".join(f"{b / 2**20:.0f}" for b in fig["shard_index_bytes"]) + " MB)")
    print(f"PostgreSQL {env['server_version']}; {env['cores']} cores, {env['cpu']}; "
          f"all four servers on this machine, over TCP on 127.0.0.1; load average "
          f"{load_before[0]:.2f} before the queries, {load_after[0]:.2f} after")
    print()
    hdr = ("shape", "QPS", "p50 ms", "p99 ms", f"recall@{args.k}", "client B/q",
           "to shards B/q", "from shards B/q", "plan")
    print("| " + " | ".join(hdr) + " |")
    print("|" + "|".join("---" for _ in hdr) + "|")
    for r in rows:
        b = r["bytes"] or {}
        client_b = (b["client_to_coordinator"] + b["coordinator_to_client"]) if b else None
        flag = "" if r["plan_ok"] else " (NOT THE SHAPE'S PLAN)"
        notes = []
        if r["short"]:
            notes.append(f"{r['short']} short")
        if r["duplicates"]:
            notes.append(f"{r['duplicates']} with duplicates")
        recall = f"{r['recall']:.4f}" + (f" ({', '.join(notes)})" if notes else "")
        print("| " + " | ".join([
            f"{r['shape']}: {r['description']}", f"{r['qps']:,.0f}", f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}", recall, fmt_int(client_b),
            fmt_int(b.get("coordinator_to_shards")), fmt_int(b.get("shards_to_coordinator")),
            r["plan"] + flag]) + " |")
    closed = sum((r["bytes"] or {}).get("connections_closed", 0) for r in rows)
    if closed:
        print(f"WARNING: {closed} connection(s) closed during timed passes: their bytes are not counted")
    if any(r["bytes"] is None for r in rows):
        print("bytes: not measured (ss, from iproute2, is missing)")
    print(f"\nbytes: TCP payload per query from the kernel's counters (ss -ti), both directions "
          f"of the client's connection, and of the coordinator's connections to the shards")

    report = {"started": stamp, "argv": sys.argv[1:], "environment": env,
              "parameters": {"k": args.k, "m": args.m, "ef_construction": args.ef_construction,
                             "ef_search": args.ef, "passes": args.passes},
              "dataset": {"name": ds.name, "metric": ds.metric, "n": ds.n, "dim": ds.dim,
                          "queries": len(ds.queries), "params": ds.params},
              "ground_truth": "cached" if cached else f"computed in {gt_s:.1f} s",
              "setup": fig, "load_average": {"before": load_before, "after": load_after},
              "shapes": rows}
    path = os.path.join(args.out, f"fanout-{stamp}.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
    print(f"JSON: {path}")
    print(f"fan-out benchmark finished in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
