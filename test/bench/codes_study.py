#!/usr/bin/python3
"""Offline study for issue 16 (a compact hnsw index): which code format can
the graph search run on, if the candidates are re-ranked with the exact
vectors afterwards?

For each dataset it builds one HNSW graph over the full-precision vectors
with hnswlib (M = 16, ef_construction = 64, one thread; for cosine the rows
are unit vectors, so the graph is built under L2, which ranks the same),
reads the graph's links back out of hnswlib's saved index, and then, for
each code format, runs an HNSW search in numpy over that same graph:
greedy descent through the upper layers, then the layer-0 beam search of
size ef, with every distance computed from the codes (the query stays in
float32: asymmetric distances). The ef candidates the beam search ends with
are re-ranked with exact distances and the top k are kept. It reports
recall@k against exact brute force (tie-aware, as bench.py counts it), with
and without the re-ranking, the code distances computed per query, and the
bytes per element of each format against pgvector's.

Code formats:
  float32  the vectors themselves (baseline; must match hnswlib's own recall)
  sq8      8-bit scalar quantization per dimension, min/max from a sample
  sq4      4-bit scalar quantization per dimension, min/max from a sample
  bq1      1 bit a dimension after centering by the mean and a random
           orthogonal rotation (RaBitQ-like), plus two floats an element;
           estimator below (rabitq_distances)
  pq       faiss product quantization, dim/8 sub-quantizers x 8 bits,
           trained on the sample (asymmetric distance tables)

Bytes per element (the index tuple only; the table keeps the full vectors
that the re-ranking reads): code bytes + 2m x 6 bytes of layer-0 neighbour
TIDs + 24 bytes of headers; pgvector's is 4 dim + 2m x 6 + 24. Upper-layer
lists (about 6 bytes an element on average at m = 16) and page fill are left
out of both.

The datasets are bench.py's (tinybench's generators, same seed and recipe):
fashion-mnist (60,000 x 784, L2; the first --queries test images), gaussian
(200,000 x 128, 1,000 clusters, L2) and cosine (50,000 x 1,536, 500 clusters).
The generated sets draw their queries after the rows, so the rows are
bench.py's exactly and the queries are its recipe at --queries.

Run (numpy, faiss and hnswlib from Debian: python3-numpy python3-faiss
python3-hnswlib dataset-fashion-mnist; psycopg for tinybench's import):

    OMP_NUM_THREADS=1 /usr/bin/python3 test/bench/codes_study.py
    OMP_NUM_THREADS=1 /usr/bin/python3 test/bench/codes_study.py \\
        --dataset gaussian --formats float32,sq8 --ef 10,40

It prints one markdown table per dataset. Graphs are cached in --cache-dir
(default /tmp/tinyhnsw-codes-study) so a second run skips the builds.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import heapq  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tinybench as tb  # noqa: E402

DATASETS = ("fashion-mnist", "gaussian", "cosine")
SIZES = {"fashion-mnist": {"n": 60000},
         "gaussian": {"n": 200000, "dim": 128, "clusters": 1000},
         "cosine": {"n": 50000, "dim": 1536, "clusters": 500}}
FORMATS = ("float32", "sq8", "sq4", "bq1", "pq")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ data

def load_dataset(name, args):
    size = dict(SIZES[name])
    if args.n is not None:
        size["n"] = args.n if name != "fashion-mnist" else min(args.n, 60000)
    if name == "fashion-mnist":
        return tb.fashion_mnist(n=size["n"], nq=args.queries)
    if name == "gaussian":
        return tb.clustered_gaussian(size["n"], size["dim"], size["clusters"], args.queries, args.seed)
    return tb.clustered_unit(size["n"], size["dim"], size["clusters"], args.queries, args.seed, name=name)


def exact_knn(ds, k):
    """Exact top k in float64 (squared L2, or 1 - cosine), blockwise."""
    x = ds.data.astype(np.float64)
    q = ds.queries.astype(np.float64)
    if ds.metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    xx = np.einsum("ij,ij->i", x, x)
    ids = np.empty((len(q), k), dtype=np.int64)
    dists = np.empty((len(q), k))
    for lo in range(0, len(q), 50):
        qb = q[lo:lo + 50]
        if ds.metric == "cosine":
            d = 1.0 - qb @ x.T
        else:
            d = xx[None, :] - 2.0 * (qb @ x.T) + np.einsum("ij,ij->i", qb, qb)[:, None]
        part = np.argpartition(d, k, axis=1)[:, :k]
        pd = np.take_along_axis(d, part, axis=1)
        order = np.argsort(pd, axis=1)
        ids[lo:lo + 50] = np.take_along_axis(part, order, axis=1)
        dists[lo:lo + 50] = np.take_along_axis(pd, order, axis=1)
    return ids, dists


# ------------------------------------------------------------------ graph

class Graph:
    """hnswlib's graph as arrays: l0[i, :l0n[i]] are element i's layer-0
    neighbours, upper[i][level - 1, 1:1 + count] its upper-layer ones."""

    def __init__(self, path, dim):
        with open(path, "rb") as f:
            raw = f.read()
        head = struct.Struct("<6QiI3QdQ")
        (off_l0, max_el, count, size_el, label_off, off_data, maxlevel, entry,
         max_m, max_m0, m, _mult, _efc) = head.unpack_from(raw, 0)
        pos = head.size
        if off_l0 != 0 or off_data != 4 * max_m0 + 4 or size_el != off_data + 4 * dim + 8:
            raise SystemExit(f"{path}: not the hnswlib layout this reader knows")
        level0 = np.frombuffer(raw, dtype=np.uint8, count=count * size_el, offset=pos).reshape(count, size_el)
        pos += count * size_el
        links = level0[:, :off_data].copy().view(np.uint32)
        self.l0n = (links[:, 0] & 0xFFFF).astype(np.int64)
        labels = level0[:, label_off:label_off + 8].copy().view(np.uint64).ravel()
        if not np.array_equal(labels, np.arange(count, dtype=np.uint64)):
            raise SystemExit(f"{path}: labels are not the internal ids")
        self.l0 = links[:, 1:].astype(np.int64)
        per_level = 4 * max_m + 4
        self.upper = {}
        for i in range(count):
            (size,) = struct.unpack_from("<I", raw, pos)
            pos += 4
            if size:
                arr = np.frombuffer(raw, dtype=np.uint32, count=size // 4, offset=pos)
                self.upper[i] = arr.reshape(size // per_level, max_m + 1).astype(np.int64)
                pos += size
        self.n, self.entry, self.maxlevel, self.m, self.m0 = count, entry, maxlevel, m, max_m0
        self.stamp = 0
        self.visited = np.zeros(count, dtype=np.int32)

    def upper_neighbours(self, i, level):
        row = self.upper[i][level - 1]
        return row[1:1 + (row[0] & 0xFFFF)]

    def search(self, dist, ef):
        """hnswlib's searchKnn with distances from dist(ids): greedy descent
        through the upper layers, then the layer-0 beam of size ef. Returns
        the ef best (distance, id) pairs found and the number of distances
        computed."""
        ep = self.entry
        d_ep = float(dist(np.array([ep]))[0])
        computed = 1
        for level in range(self.maxlevel, 0, -1):
            changed = True
            while changed:
                changed = False
                nb = self.upper_neighbours(ep, level)
                if len(nb) == 0:
                    break
                d = dist(nb)
                computed += len(nb)
                j = int(np.argmin(d))
                if d[j] < d_ep:
                    ep, d_ep, changed = int(nb[j]), float(d[j]), True
        self.stamp += 1
        stamp = self.stamp
        visited = self.visited
        visited[ep] = stamp
        cand = [(d_ep, ep)]
        top = [(-d_ep, ep)]
        bound = d_ep
        while cand:
            d_c, c = heapq.heappop(cand)
            if d_c > bound:
                break
            nb = self.l0[c, :self.l0n[c]]
            nb = nb[visited[nb] != stamp]
            if len(nb) == 0:
                continue
            visited[nb] = stamp
            dd = dist(nb)
            computed += len(nb)
            for x, i in zip(dd.tolist(), nb.tolist()):
                if len(top) < ef or x < bound:
                    heapq.heappush(cand, (x, i))
                    heapq.heappush(top, (-x, i))
                    if len(top) > ef:
                        heapq.heappop(top)
                    bound = -top[0][0]
        return sorted((-d, i) for d, i in top), computed


def build_graph(ds, args):
    import hnswlib
    os.makedirs(args.cache_dir, exist_ok=True)
    path = os.path.join(args.cache_dir, f"{ds.name}-{ds.n}x{ds.dim}-m{args.m}-efc{args.ef_construction}.bin")
    x = search_space(ds)
    idx = hnswlib.Index(space="l2", dim=ds.dim)
    if os.path.exists(path):
        idx.load_index(path, max_elements=ds.n)
        log(f"{ds.name}: graph from {path}")
    else:
        t0 = time.time()
        idx.init_index(max_elements=ds.n, M=args.m, ef_construction=args.ef_construction, random_seed=100)
        idx.add_items(x, np.arange(ds.n), num_threads=1)
        idx.save_index(path)
        log(f"{ds.name}: built the graph in {time.time() - t0:.0f} s (1 thread)")
    idx.set_num_threads(1)
    return idx, path


def search_space(ds):
    """The vectors the graph and the codes are made of: unit rows for cosine."""
    x = ds.data
    if ds.metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x, dtype=np.float32)


def query_space(ds):
    q = ds.queries
    if ds.metric == "cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    return np.ascontiguousarray(q, dtype=np.float32)


# ------------------------------------------------------------------ code formats
#
# Each format is made from the rows and a training sample and has
# for_query(q), which returns dist(ids): estimated squared L2 distances from
# q to rows ids, computed from the codes only.

class Float32:
    name = "float32"
    note = "the vectors themselves"

    def __init__(self, x, sample, rng):
        self.x = x
        self.code_bytes = 4 * x.shape[1]

    def for_query(self, q):
        x = self.x
        return lambda ids: np.einsum("ij,ij->i", x[ids] - q, x[ids] - q)


class Scalar:
    """bits-bit codes per dimension: lo + code * (hi - lo) / (2^bits - 1),
    lo/hi the dimension's min/max in the sample (rows outside are clipped).
    The distance is computed on the decoded values, as a kernel would
    (query in float, code expanded on the fly)."""

    def __init__(self, x, sample, rng, bits):
        self.name = f"sq{bits}"
        self.note = f"{bits}-bit per dimension, min/max of the sample"
        levels = (1 << bits) - 1
        lo = sample.min(axis=0)
        hi = sample.max(axis=0)
        step = np.where(hi > lo, (hi - lo) / levels, 1.0).astype(np.float32)
        codes = np.clip(np.rint((x - lo) / step), 0, levels)
        self.decoded = (lo + codes * step).astype(np.float32)
        self.clipped = float(np.mean((x < lo) | (x > hi)))
        self.code_bytes = (bits * x.shape[1] + 7) // 8

    def for_query(self, q):
        y = self.decoded
        return lambda ids: np.einsum("ij,ij->i", y[ids] - q, y[ids] - q)


class RaBitQ:
    """1 bit a dimension. r = P (x - c), with c the sample mean and P a
    random orthogonal matrix (QR of a Gaussian); the code is sign(r), read
    as the unit vector xb = sign(r) / sqrt(d). Per element two float32 are
    kept: |r| and f = <xb, r/|r|> = sum|r| / (sqrt(d) |r|).
    Estimator (RaBitQ's, with the query left in float32):
        <r/|r|, u> ~ <xb, u> / f,   u = P (q - c) / |P (q - c)|
        |x - q|^2 ~ |r|^2 + |u'|^2 - 2 |r| |u'| <xb, u> / f"""

    name = "bq1"
    note = "sign bits after centering + random rotation, + 2 floats (RaBitQ estimator)"

    def __init__(self, x, sample, rng):
        d = x.shape[1]
        self.centre = sample.mean(axis=0).astype(np.float32)
        g = rng.standard_normal((d, d))
        qmat, rmat = np.linalg.qr(g)
        self.rot = (qmat * np.sign(np.diag(rmat))).astype(np.float32)
        self.signs = np.empty(x.shape, dtype=np.int8)
        self.norm = np.empty(len(x), dtype=np.float32)
        self.factor = np.empty(len(x), dtype=np.float32)
        for lo in range(0, len(x), 20000):
            r = (x[lo:lo + 20000] - self.centre) @ self.rot.T
            nr = np.linalg.norm(r, axis=1)
            self.signs[lo:lo + 20000] = np.where(r >= 0, 1, -1)
            self.norm[lo:lo + 20000] = nr
            self.factor[lo:lo + 20000] = np.abs(r).sum(axis=1) / (np.sqrt(d) * np.maximum(nr, 1e-30))
        self.scale = np.float32(1.0 / np.sqrt(d))
        self.code_bytes = (d + 7) // 8 + 8

    def for_query(self, q):
        u = self.rot @ (q - self.centre)
        un = float(np.linalg.norm(u))
        u_unit = u / max(un, 1e-30)

        def dist(ids):
            ip = (self.signs[ids] @ u_unit) * self.scale / self.factor[ids]
            nr = self.norm[ids]
            return nr * nr + un * un - 2.0 * nr * un * ip
        return dist


class PQ:
    """faiss ProductQuantizer, dim/8 sub-quantizers of 8 bits, trained on
    the sample; distances by per-query tables (ADC)."""

    name = "pq"

    def __init__(self, x, sample, rng):
        import faiss
        faiss.omp_set_num_threads(1)
        d = x.shape[1]
        self.msub = d // 8
        self.note = f"faiss PQ {self.msub}x8 bits, trained on the sample"
        pq = faiss.ProductQuantizer(d, self.msub, 8)
        pq.verbose = False
        pq.train(np.ascontiguousarray(sample, dtype=np.float32))
        self.codes = pq.compute_codes(np.ascontiguousarray(x)).reshape(len(x), self.msub)
        self.centroids = faiss.vector_to_array(pq.centroids).reshape(self.msub, pq.ksub, pq.dsub)
        self.rows = np.arange(self.msub)
        self.code_bytes = self.msub

    def for_query(self, q):
        table = ((self.centroids - q.reshape(self.msub, 1, -1)) ** 2).sum(axis=2)
        codes, rows = self.codes, self.rows
        return lambda ids: table[rows, codes[ids]].sum(axis=1)


def make_format(name, x, sample, rng):
    if name == "float32":
        return Float32(x, sample, rng)
    if name == "sq8":
        return Scalar(x, sample, rng, 8)
    if name == "sq4":
        return Scalar(x, sample, rng, 4)
    if name == "bq1":
        return RaBitQ(x, sample, rng)
    if name == "pq":
        return PQ(x, sample, rng)
    raise ValueError(name)


# ------------------------------------------------------------------ study

def element_bytes(code_bytes, m):
    return code_bytes + 2 * m * 6 + 24


def study(name, args):
    ds = load_dataset(name, args)
    log(f"{ds.describe()}")
    x = search_space(ds)
    queries = query_space(ds)
    gt_ids, gt_dists = exact_knn(ds, args.k)
    check = tb.RecallCheck(ds, gt_ids, gt_dists, args.k)
    idx, path = build_graph(ds, args)
    graph = Graph(path, ds.dim)
    log(f"{name}: graph of {graph.n:,} elements, {graph.maxlevel} upper layers, entry {graph.entry}")

    out = {"dataset": ds, "rows": [], "hnswlib": {}}
    for ef in args.efs:
        idx.set_ef(ef)
        labels, _ = idx.knn_query(queries, k=args.k, num_threads=1)
        out["hnswlib"][ef] = check.recall(labels.astype(np.int64))["recall"]

    rng = np.random.default_rng(args.seed)
    sample = x[rng.choice(len(x), size=min(args.sample, len(x)), replace=False)]
    base = element_bytes(4 * ds.dim, args.m)
    for fname in args.formats:
        t0 = time.time()
        fmt = make_format(fname, x, sample, np.random.default_rng(args.seed + 1))
        log(f"{name}/{fname}: codes made in {time.time() - t0:.0f} s")
        for ef in args.efs:
            t0 = time.time()
            reranked, raw, computed = [], [], 0
            for qi in range(len(queries)):
                found, c = graph.search(fmt.for_query(queries[qi]), ef)
                computed += c
                ids = np.array([i for _, i in found], dtype=np.int64)
                raw.append(ids[:args.k])
                exact = tb._true_distances(ds.data, ds.queries[qi], ids, ds.metric)
                reranked.append(ids[np.argsort(exact, kind="stable")[:args.k]])
            row = {"format": fname, "ef": ef,
                   "recall": check.recall(reranked)["recall"],
                   "recall_raw": check.recall(raw)["recall"],
                   "computed": computed / len(queries),
                   "bytes": element_bytes(fmt.code_bytes, args.m),
                   "ratio": element_bytes(fmt.code_bytes, args.m) / base,
                   "note": fmt.note}
            if isinstance(fmt, Scalar):
                row["clipped"] = fmt.clipped
            out["rows"].append(row)
            log(f"{name}/{fname} ef {ef}: recall {row['recall']:.4f} "
                f"(no re-rank {row['recall_raw']:.4f}), {row['computed']:.0f} distances/query, "
                f"{time.time() - t0:.0f} s")
        del fmt
    out["base_bytes"] = base
    return out


def report(res, args):
    ds = res["dataset"]
    lines = [f"### {ds.describe()}", "",
             f"pgvector per element: 4 x {ds.dim} + {2 * args.m} x 6 + 24 = {res['base_bytes']:,} bytes. "
             f"hnswlib's own recall@{args.k} on this graph: "
             + ", ".join(f"ef {ef}: {r:.4f}" for ef, r in res["hnswlib"].items()) + ".", "",
             "| format | bytes/element | x pgvector | " + " | ".join(f"ef {ef}" for ef in args.efs) + " |",
             "| --- | ---: | ---: | " + " | ".join("---:" for _ in args.efs) + " |"]
    by_format = {}
    for row in res["rows"]:
        by_format.setdefault(row["format"], []).append(row)
    for fname, rows in by_format.items():
        cells = [f"{r['recall']:.4f} ({r['recall_raw']:.3f})" for r in rows]
        lines.append(f"| {fname} | {rows[0]['bytes']:,} | {rows[0]['ratio']:.3f} | " + " | ".join(cells) + " |")
    lines += ["", "Code distances computed per query (graph search only, before the re-ranking):", "",
              "| format | " + " | ".join(f"ef {ef}" for ef in args.efs) + " |",
              "| --- | " + " | ".join("---:" for _ in args.efs) + " |"]
    for fname, rows in by_format.items():
        lines.append(f"| {fname} | " + " | ".join(f"{r['computed']:,.0f}" for r in rows) + " |")
    clipped = [f"{f}: {rows[0]['clipped']:.2e}" for f, rows in by_format.items() if "clipped" in rows[0]]
    if clipped:
        lines += ["", "Share of row values outside the sample's min/max (clipped): " + ", ".join(clipped) + "."]
    return "\n".join(lines) + "\n"


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="all", help=f"comma-separated of {', '.join(DATASETS)}, or all")
    ap.add_argument("--formats", default=",".join(FORMATS), help="comma-separated of " + ", ".join(FORMATS))
    ap.add_argument("--ef", default="10,20,40,80,160", help="beam sizes (candidates re-ranked)")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--n", type=int, help="rows (default per dataset)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=64)
    ap.add_argument("--sample", type=int, default=10000, help="training sample rows (min/max, mean, PQ)")
    ap.add_argument("--seed", type=int, default=42, help="seed of generated datasets and of the sample")
    ap.add_argument("--cache-dir", default="/tmp/tinyhnsw-codes-study", help="where the graphs are kept")
    args = ap.parse_args()
    args.datasets = list(DATASETS) if args.dataset == "all" else [d.strip() for d in args.dataset.split(",")]
    args.formats = [f.strip() for f in args.formats.split(",")]
    args.efs = [int(e) for e in args.ef.split(",")]
    for d in args.datasets:
        if d not in DATASETS:
            ap.error(f"unknown dataset {d!r}")
    for f in args.formats:
        if f not in FORMATS:
            ap.error(f"unknown format {f!r}")
    return args


def main():
    args = parse_args()
    print(f"codes_study {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC: "
          f"k = {args.k}, m = {args.m}, ef_construction = {args.ef_construction}, "
          f"{args.queries} queries, sample {args.sample:,} rows\n"
          f"cells: recall@{args.k} after re-ranking the ef candidates exactly "
          f"(in brackets: the codes' own top {args.k}, no re-ranking)\n", flush=True)
    for name in args.datasets:
        print(report(study(name, args), args), flush=True)


if __name__ == "__main__":
    main()
