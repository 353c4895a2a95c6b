"""Shared code of ./demo (demo.py) and the benchmark (bench.py).

Datasets (Fashion-MNIST from Debian's dataset-fashion-mnist, generated
clustered sets), exact ground truth with numpy (cached), tie-aware recall,
and the database side: loading with binary COPY, CREATE INDEX with a progress
bar fed by pg_stat_progress_create_index, and timed query loops.

Connections take their target from the libpq environment (PGHOST, PGPORT,
PGUSER, PGDATABASE, ...), which the shell wrappers set for a throw-away
cluster or the user sets to name a server.
"""

import gzip
import hashlib
import os
import signal
import struct
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import psycopg

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_LABELS = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]

# operator and opclass per metric
OPERATORS = {"l2": "<->", "cosine": "<=>", "ip": "<#>"}
OPCLASSES = {"l2": "vector_l2_ops", "cosine": "vector_cosine_ops", "ip": "vector_ip_ops"}
HALFVEC_OPCLASSES = {"l2": "halfvec_l2_ops", "cosine": "halfvec_cosine_ops", "ip": "halfvec_ip_ops"}

# the most dimensions an hnsw index holds as vector; wider columns are
# indexed as halfvec through an expression index
VECTOR_INDEX_MAX_DIM = 2000


@dataclass(frozen=True)
class IndexKind:
    """What the hnsw index on the table's vector column emb is built on, and
    how the k-NN query reaches it (the README's recipes):

    - "vector": the column itself, `emb vector_cosine_ops` and the like;
    - "halfvec": the expression emb::halfvec(dim) (for more than 2,000
      dimensions), queried with ORDER BY emb::halfvec(dim) <=> $1::halfvec(dim);
    - "bq": binary quantization with re-ranking: the expression
      binary_quantize(emb)::bit(dim) under bit_hamming_ops; the query takes
      `candidates` rows by Hamming distance from the index and puts them in
      order by the full vectors' distance.
    """
    kind: str = "vector"
    dim: int = None
    candidates: int = None

    def index_key(self, metric):
        """The key and opclass of CREATE INDEX ... USING hnsw (...)."""
        if self.kind == "vector":
            return f"emb {OPCLASSES[metric]}"
        if self.kind == "halfvec":
            return f"(emb::halfvec({int(self.dim)})) {HALFVEC_OPCLASSES[metric]}"
        if self.kind == "bq":
            return f"(binary_quantize(emb)::bit({int(self.dim)})) bit_hamming_ops"
        raise ValueError(self.kind)

    @property
    def param_type(self):
        """The type the query vector is bound as (and PREPAREd with)."""
        return "halfvec" if self.kind == "halfvec" else "vector"

    def knn_sql(self, table, metric, k, param, columns="id"):
        """The k-NN query, with param (e.g. "$1" or "%(q)s") where the query
        vector goes; in the "bq" query it goes twice."""
        op = OPERATORS[metric]
        if self.kind == "vector":
            return f"SELECT {columns} FROM {table} ORDER BY emb {op} {param}::vector LIMIT {int(k)}"
        if self.kind == "halfvec":
            h = f"halfvec({int(self.dim)})"
            return f"SELECT {columns} FROM {table} ORDER BY emb::{h} {op} {param}::{h} LIMIT {int(k)}"
        if self.kind == "bq":
            return (f"SELECT {columns} FROM (SELECT id, emb FROM {table} "
                    f"ORDER BY binary_quantize(emb)::bit({int(self.dim)}) <~> binary_quantize({param}::vector) "
                    f"LIMIT {int(self.candidates)}) s ORDER BY emb {op} {param}::vector LIMIT {int(k)}")
        raise ValueError(self.kind)

    def describe(self, metric):
        s = f"hnsw ({self.index_key(metric)})"
        if self.kind == "bq" and self.candidates:
            s += f", {self.candidates} candidates re-ranked"
        return s


VECTOR_INDEX = IndexKind()


def index_kind_for(dim):
    """The plain vector index up to 2,000 dimensions, halfvec above."""
    return VECTOR_INDEX if dim <= VECTOR_INDEX_MAX_DIM else IndexKind("halfvec", dim)


def sigterm_as_interrupt():
    """Turn SIGTERM (what the shell wrapper sends on Ctrl-C or TERM) into
    KeyboardInterrupt, so that running statements get cancelled and
    finally-blocks run."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


# ------------------------------------------------------------------ output

class Progress:
    """A progress bar on stderr. On a terminal it redraws one line; otherwise
    it prints a line at each quarter, so that logs stay short."""

    WIDTH = 30

    def __init__(self, label, total=None, unit=""):
        self.label = label
        self.total = total
        self.unit = unit
        self.start = time.perf_counter()
        self.tty = sys.stderr.isatty()
        self.last_draw = 0.0
        self.last_quarter = -1
        self.done = 0
        self.note = ""
        self.last_note = ""
        self.closed = False
        self._draw(force=True)

    def update(self, done, total=None, note=None):
        self.done = done
        if total is not None:
            self.total = total
        if note is not None:
            self.note = note
        self._draw()

    def _line(self):
        elapsed = time.perf_counter() - self.start
        if self.total:
            frac = min(max(self.done / self.total, 0.0), 1.0)
            filled = int(frac * self.WIDTH)
            bar = "#" * filled + "." * (self.WIDTH - filled)
            counts = f"{frac * 100:3.0f}%  {self.done:,}/{self.total:,}{self.unit}"
        else:
            bar = "." * self.WIDTH
            counts = f"{self.done:,}{self.unit}"
        note = f"  {self.note}" if self.note else ""
        return f"{self.label:<14} [{bar}] {counts}  {elapsed:6.1f} s{note}"

    def _draw(self, force=False):
        if self.closed:
            return
        now = time.perf_counter()
        if self.tty:
            if force or now - self.last_draw >= 0.1:
                sys.stderr.write("\r\033[K" + self._line())
                sys.stderr.flush()
                self.last_draw = now
        else:
            # not a terminal: one line at 25%, 50% and 75% (close() adds the
            # last), and one when the note (e.g. the build's phase) changes
            quarter = int(4 * self.done / self.total) if self.total else 0
            crossed = 0 < quarter < 4 and quarter > self.last_quarter
            if crossed or self.note != self.last_note:
                sys.stderr.write(self._line() + "\n")
                sys.stderr.flush()
            self.last_quarter = max(self.last_quarter, quarter)
            self.last_note = self.note

    def close(self, note=None):
        if self.closed:
            return
        if note is not None:
            self.note = note
        line = self._line()
        if self.tty:
            sys.stderr.write("\r\033[K" + line + "\n")
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
        self.closed = True
        return time.perf_counter() - self.start


def fmt_seconds(s):
    return f"{s:.1f} s" if s >= 1 else f"{s * 1000:.0f} ms"


def fmt_bytes(n):
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 10240 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.0f} GB"


# ------------------------------------------------------------------ datasets

@dataclass
class Dataset:
    name: str                 # e.g. "fashion-mnist"
    metric: str               # "l2" or "cosine"
    data: np.ndarray          # (n, d) float32, the table
    queries: np.ndarray       # (nq, d) float32
    labels: np.ndarray = None         # (n,) labels of the rows, if any
    query_labels: np.ndarray = None   # (nq,) labels of the queries, if any
    params: dict = field(default_factory=dict)

    @property
    def n(self):
        return self.data.shape[0]

    @property
    def dim(self):
        return self.data.shape[1]

    def describe(self):
        return f"{self.name} ({self.n:,} x {self.dim}, {self.metric}, {len(self.queries):,} queries)"


def read_idx(path):
    """Read an IDX file (gzip'd or not) as a numpy array: a big-endian header
    of two zero bytes, a type code, the number of dimensions and their
    sizes, then the values."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    types = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if zero != 0 or dtype_code not in types:
        raise ValueError(f"{path}: not an IDX file")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    arr = np.frombuffer(raw, dtype=types[dtype_code], offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"{path}: {arr.size} values for shape {shape}")
    return arr.reshape(shape)


def fashion_mnist(n=None, nq=None, root=FASHION_MNIST_DIR):
    """Fashion-MNIST: the 60,000 train images as the table, the 10,000 test
    images as queries, raw pixel values 0..255 as float32, L2."""
    def load(stem):
        path = os.path.join(root, stem)
        if not os.path.exists(path):
            raise SystemExit(f"{path} is missing: apt-get install dataset-fashion-mnist")
        return read_idx(path)
    train = load("train-images-idx3-ubyte.gz")
    train_labels = load("train-labels-idx1-ubyte.gz")
    test = load("t10k-images-idx3-ubyte.gz")
    test_labels = load("t10k-labels-idx1-ubyte.gz")
    n = len(train) if n is None else min(n, len(train))
    nq = len(test) if nq is None else min(nq, len(test))
    data = np.ascontiguousarray(train[:n].reshape(n, -1), dtype=np.float32)
    queries = np.ascontiguousarray(test[:nq].reshape(nq, -1), dtype=np.float32)
    return Dataset("fashion-mnist", "l2", data, queries,
                   labels=train_labels[:n].astype(np.int16),
                   query_labels=test_labels[:nq].astype(np.int16),
                   params={"n": n, "nq": nq, "source": root})


def clustered_gaussian(n, dim, clusters, nq, seed, spread=1.0, sigma=0.5):
    """n + nq points drawn from a mixture of `clusters` Gaussians in `dim`
    dimensions: centres ~ N(0, spread^2 I), points ~ N(centre, sigma^2 I),
    cluster chosen uniformly. The queries are further draws from the same
    mixture. L2."""
    rng = np.random.default_rng(seed)
    centres = (rng.standard_normal((clusters, dim)) * spread).astype(np.float32)

    def draw(count):
        out = np.empty((count, dim), dtype=np.float32)
        for lo in range(0, count, 65536):
            hi = min(count, lo + 65536)
            which = rng.integers(0, clusters, hi - lo)
            out[lo:hi] = centres[which] + rng.standard_normal((hi - lo, dim), dtype=np.float32) * sigma
        return out

    data = draw(n)
    queries = draw(nq)
    return Dataset("gaussian", "l2", data, queries,
                   params={"n": n, "dim": dim, "clusters": clusters, "nq": nq, "seed": seed,
                           "spread": spread, "sigma": sigma})


def clustered_unit(n, dim, clusters, nq, seed, noise=0.6, name="cosine"):
    """Unit vectors around `clusters` random unit directions (the noise
    vector's expected norm is `noise`, relative to the unit centre), as
    text embeddings tend to be; cosine."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    sigma = noise / np.sqrt(dim)

    def draw(count):
        out = np.empty((count, dim), dtype=np.float32)
        for lo in range(0, count, 16384):
            hi = min(count, lo + 16384)
            which = rng.integers(0, clusters, hi - lo)
            block = centres[which] + rng.standard_normal((hi - lo, dim), dtype=np.float32) * np.float32(sigma)
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            out[lo:hi] = block
        return out

    data = draw(n)
    queries = draw(nq)
    return Dataset(name, "cosine", data, queries,
                   params={"n": n, "dim": dim, "clusters": clusters, "nq": nq, "seed": seed,
                           "noise": noise})


# ------------------------------------------------------------------ ground truth

def _true_distances(data, q, ids, metric):
    """Exact distances (float64) from query q to rows ids, in the index's
    order: squared L2, or 1 - cosine similarity."""
    x = data[ids].astype(np.float64)
    q = q.astype(np.float64)
    if metric == "l2":
        diff = x - q
        return np.einsum("ij,ij->i", diff, diff)
    if metric == "cosine":
        xn = np.linalg.norm(x, axis=1)
        qn = np.linalg.norm(q)
        return 1.0 - (x @ q) / (xn * qn)
    if metric == "ip":
        return -(x @ q)
    raise ValueError(metric)


_KNN = {}   # what the ground-truth workers read (inherited through fork)


def _knn_block(bounds):
    """Exact top-k of queries [lo, hi) by brute force: float32 products
    pick candidates, which are ranked by exact float64 distances."""
    lo, hi = bounds
    data, queries, k, metric, norms = (_KNN[n] for n in ("data", "queries", "k", "metric", "norms"))
    cand = min(len(data), 4 * k + 50)
    prod = (data @ queries[lo:hi].T).T                      # (b, n) float32
    if metric == "l2":
        score = norms[None, :] - 2 * prod                   # |x|^2 - 2 q.x
    elif metric == "cosine":
        score = -prod / norms[None, :]
    else:
        score = -prod
    part = np.argpartition(score, cand - 1, axis=1)[:, :cand]
    ids = np.empty((hi - lo, k), dtype=np.int64)
    dists = np.empty((hi - lo, k), dtype=np.float64)
    for i in range(hi - lo):
        c = part[i]
        d = _true_distances(data, queries[lo + i], c, metric)
        order = np.lexsort((c, d))[:k]
        ids[i] = c[order]
        dists[i] = d[order]
    return lo, ids, dists


def _pca_applicable(data, metric, p=64):
    n, dim = data.shape
    return metric in ("l2", "cosine") and dim >= 2 * p and n >= 20000


def _pca_setup(data, metric, p=64, sample=2000, min_explained=0.85):
    """For _knn_block_pruned: an orthonormal basis U of the top p principal
    directions (estimated on a sample) and every row's projection onto it
    and distance from it, all in float64. None when the top p directions
    explain too little of the variance for the bound to prune well."""
    n, dim = data.shape
    if not _pca_applicable(data, metric, p):
        return None
    X = data.astype(np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        norms[norms == 0] = 1
        X /= norms
    mu = X.mean(axis=0)
    rng = np.random.default_rng(0)
    S = X[rng.choice(n, min(n, sample), replace=False)] - mu
    w, V = np.linalg.eigh(S.T @ S)
    w, V = w[::-1], V[:, ::-1]
    if w[:p].sum() < min_explained * w.sum():
        return None
    U = np.ascontiguousarray(V[:, :p])
    X -= mu
    PX = X @ U
    nx = np.einsum("ij,ij->i", X, X)
    px = np.einsum("ij,ij->i", PX, PX)
    rx = np.sqrt(np.maximum(nx - px, 0))
    return {"mu": mu, "U": U, "PX": PX, "px": px, "rx": rx, "nx": nx}


def _knn_block_pruned(bounds):
    """Exact top-k of queries [lo, hi), computing exact distances only for
    rows that a lower bound cannot rule out. With P the projection onto the
    basis U and r the distance of a point from U's span (both after
    subtracting the mean), for any x and q
        |x - q|^2 = |P(x - q)|^2 + |r(x) - r(q) as vectors|^2
                 >= |Px - Pq|^2 + (|r(x)| - |r(q)|)^2  =: LB(x, q).
    The k-th smallest exact distance among the rows of least LB is an upper
    bound on the true k-th distance; every row whose LB is not above it is
    then measured exactly, and the k nearest of those are the answer. Under
    cosine the same holds for the normalized vectors, whose squared L2
    distance is twice the cosine distance."""
    lo, hi = bounds
    data, queries, k, metric, pca = (_KNN[n] for n in ("data", "queries", "k", "metric", "pca"))
    n = len(data)
    Q = queries[lo:hi].astype(np.float64)
    if metric == "cosine":
        qn = np.linalg.norm(Q, axis=1, keepdims=True)
        qn[qn == 0] = 1
        Q /= qn
    Q -= pca["mu"]
    PQ = Q @ pca["U"]
    nq = np.einsum("ij,ij->i", Q, Q)
    pq = np.einsum("ij,ij->i", PQ, PQ)
    rq = np.sqrt(np.maximum(nq - pq, 0))
    lb = pca["px"][None, :] + pq[:, None] - 2 * (PQ @ pca["PX"].T) + (pca["rx"][None, :] - rq[:, None]) ** 2
    # float64 rounding is ~1e-16 of the magnitudes involved: a margin far above it
    lb -= 1e-9 * (pca["nx"][None, :] + nq[:, None]) + 1e-12
    scale = 2.0 if metric == "cosine" else 1.0
    first = min(n, 4 * k + 50)
    ids = np.empty((hi - lo, k), dtype=np.int64)
    dists = np.empty((hi - lo, k), dtype=np.float64)
    for i in range(hi - lo):
        row = lb[i]
        c = np.argpartition(row, first - 1)[:first]
        d = _true_distances(data, queries[lo + i], c, metric)
        kth = np.partition(d, k - 1)[k - 1]
        c = np.flatnonzero(row <= scale * kth)
        d = _true_distances(data, queries[lo + i], c, metric)
        order = np.lexsort((c, d))[:k]
        ids[i] = c[order]
        dists[i] = d[order]
    return lo, ids, dists


def _knn_worker_init():
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def exact_knn(data, queries, k, metric, label="ground truth", workers=None, prune=True):
    """Exact k nearest neighbors over blocks of queries, in `workers`
    processes (default: one per core). Returns (ids, distances) of shape
    (nq, k), ids as int64, distances as in _true_distances, ties broken by
    id. With prune (and data whose top principal directions carry most of
    the variance) a lower bound spares most exact distances
    (_knn_block_pruned); otherwise brute force (_knn_block). Both are exact."""
    import multiprocessing as mp
    nq = len(queries)
    if metric == "l2":
        norms = np.einsum("ij,ij->i", data, data)
    elif metric == "cosine":
        norms = np.linalg.norm(data, axis=1)
        norms[norms == 0] = np.inf
    else:
        norms = None
    bar = Progress(label, nq, " queries")
    pca = None
    if prune and nq >= 100 and _pca_applicable(data, metric):
        bar.update(0, note="principal directions")
        pca = _pca_setup(data, metric)
    block_fn = _knn_block_pruned if pca else _knn_block
    bar.update(0, note="pruned by a PCA bound" if pca else "brute force")
    _KNN.update(data=data, queries=queries, k=k, metric=metric, norms=norms, pca=pca)
    # 32 queries a block: the shape the reference BLAS handles best, and the
    # (32, n) score matrix stays small
    blocks = [(lo, min(nq, lo + 32)) for lo in range(0, nq, 32)]
    ids = np.empty((nq, k), dtype=np.int64)
    dists = np.empty((nq, k), dtype=np.float64)
    workers = workers or os.cpu_count() or 1
    done = 0
    try:
        if workers > 1 and len(blocks) > 1:
            with mp.get_context("fork").Pool(min(workers, len(blocks)), initializer=_knn_worker_init) as pool:
                for lo, bi, bd in pool.imap_unordered(block_fn, blocks):
                    ids[lo:lo + len(bi)] = bi
                    dists[lo:lo + len(bi)] = bd
                    done += len(bi)
                    bar.update(done)
        else:
            for b in blocks:
                lo, bi, bd = block_fn(b)
                ids[lo:lo + len(bi)] = bi
                dists[lo:lo + len(bi)] = bd
                done += len(bi)
                bar.update(done)
    finally:
        _KNN.clear()
    bar.close()
    exact_knn.method = "pca-bound" if pca else "brute-force"
    return ids, dists


def dataset_digest(ds, k):
    h = hashlib.sha1()
    h.update(f"{ds.name}|{ds.metric}|{k}|{ds.data.shape}|{ds.queries.shape}|v1".encode())
    h.update(memoryview(np.ascontiguousarray(ds.data)).cast("B"))
    h.update(memoryview(np.ascontiguousarray(ds.queries)).cast("B"))
    return h.hexdigest()[:16]


def default_cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tinyhnsw-bench")


def ground_truth(ds, k, cache_dir=None):
    """exact_knn, cached in cache_dir under a digest of the data, the
    queries, the metric and k. Returns (ids, dists, seconds, cached)."""
    path = None
    if cache_dir:
        path = os.path.join(cache_dir, f"gt-{ds.name}-{dataset_digest(ds, k)}.npz")
        if os.path.exists(path):
            with np.load(path) as z:
                return z["ids"], z["dists"], 0.0, path
    t0 = time.perf_counter()
    ids, dists = exact_knn(ds.data, ds.queries, k, ds.metric)
    seconds = time.perf_counter() - t0
    if path:
        os.makedirs(cache_dir, exist_ok=True)
        tmp = path + f".tmp{os.getpid()}.npz"
        np.savez(tmp, ids=ids, dists=dists)
        os.replace(tmp, path)
    return ids, dists, seconds, None


class RecallCheck:
    """Recall@k of approximate results against the exact neighbors.

    Tie-aware: a returned row counts if it is one of the k true neighbors
    or if its exact distance is no larger than the k-th true distance (so a
    duplicate of a true neighbor is not a miss). Each row counts once.
    It also records oddities: fewer than k rows, the same id twice."""

    def __init__(self, ds, gt_ids, gt_dists, k):
        self.ds = ds
        self.gt_ids = gt_ids
        self.gt_dists = gt_dists
        self.k = k

    def recall(self, results):
        k = self.k
        hits = 0
        short = 0
        dup = 0
        for qi, got in enumerate(results):
            got = list(got)
            if len(got) < k:
                short += 1
            uniq = list(dict.fromkeys(got))
            if len(uniq) < len(got):
                dup += 1
            uniq = uniq[:k]
            truth = set(self.gt_ids[qi].tolist())
            inside = [g for g in uniq if g in truth]
            outside = np.array([g for g in uniq if g not in truth], dtype=np.int64)
            hits += len(inside)
            if len(outside):
                d = _true_distances(self.ds.data, self.ds.queries[qi], outside, self.ds.metric)
                kth = self.gt_dists[qi, k - 1]
                hits += int(np.sum(d <= kth + 1e-6 * max(abs(kth), 1.0)))
        return {"recall": hits / (k * len(results)), "short": short, "duplicates": dup}


# ------------------------------------------------------------------ database

def connect(**kwargs):
    kwargs.setdefault("autocommit", True)
    kwargs.setdefault("application_name", "tinyhnsw-bench")
    return psycopg.connect(**kwargs)


def vector_literal(row):
    """The text form '[v1,v2,...]'; %.9g round-trips a float32."""
    return "[" + ",".join("%.9g" % v for v in row.tolist()) + "]"


class VectorParam:
    """A query vector bound as a parameter in binary form (vector_recv's: int16
    dim, int16 0, dim float4, big-endian), packed once, before any timing.
    Drivers send vectors this way when they know the type (pgvector-python's
    psycopg adapter, which ann-benchmarks' pgvector module uses), which
    spares the server from parsing thousands of decimal digits per query."""
    __slots__ = ("data",)

    def __init__(self, row):
        self.data = struct.pack(">hh", len(row), 0) + np.asarray(row, dtype=">f4").tobytes()


class HalfvecParam(VectorParam):
    """A query vector bound in halfvec's binary form (int16 dim, int16 0,
    dim float16, big-endian), rounded to the nearest half by numpy, as a
    driver that knows halfvec sends it (pgvector-python's HalfVector)."""
    __slots__ = ()

    def __init__(self, row):
        self.data = struct.pack(">hh", len(row), 0) + np.asarray(row, dtype=np.float32).astype(">f2").tobytes()


def register_vector_param(conn):
    """Teach conn to send VectorParam in binary as the type vector and
    HalfvecParam as halfvec (whose OIDs the extension's installation chose)."""
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    oids = conn.execute("SELECT 'vector'::regtype::oid, to_regtype('halfvec')::oid").fetchone()
    for cls, oid in zip((VectorParam, HalfvecParam), oids):
        if oid is None:
            continue

        class ParamDumper(Dumper):
            format = Format.BINARY

            def dump(self, obj):
                return obj.data

        ParamDumper.oid = oid
        conn.adapters.register_dumper(cls, ParamDumper)


def query_params(rows, binary, kind=None):
    """The queries as bound parameters: VectorParam (HalfvecParam for a
    halfvec index; see IndexKind.param_type), or text literals."""
    cls = HalfvecParam if kind is not None and kind.param_type == "halfvec" else VectorParam
    return [cls(r) if binary else vector_literal(r) for r in rows]


def _bind(sql, q):
    """The parameters of one execution of sql (query_sql's) for query q:
    the "bq" query names its parameter, as it uses it twice."""
    return {"q": q} if "%(q)s" in sql else (q,)


_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)


def _copy_block(ids, labels, data):
    """Rows (id int4[, label int2], emb vector) in COPY's binary format; a
    vector's binary form is int16 dim, int16 0, then dim float4, all big-endian."""
    n, d = data.shape
    fields = [("nf", ">i2"), ("l_id", ">i4"), ("id", ">i4")]
    if labels is not None:
        fields += [("l_label", ">i4"), ("label", ">i2")]
    fields += [("l_emb", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("x", ">f4", (d,))]
    rec = np.empty(n, dtype=np.dtype(fields))
    rec["nf"] = 3 if labels is not None else 2
    rec["l_id"] = 4
    rec["id"] = ids
    if labels is not None:
        rec["l_label"] = 2
        rec["label"] = labels
    rec["l_emb"] = 4 + 4 * d
    rec["dim"] = d
    rec["unused"] = 0
    rec["x"] = data
    return rec.tobytes()


def create_table(conn, table, dim, with_labels):
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    label = "label int2, " if with_labels else ""
    conn.execute(f"CREATE TABLE {table} (id int4, {label}emb vector({dim}))")


def connect_like(conn, **kwargs):
    """A second connection to the server and database conn is connected to
    (its connection string, without the password: libpq's environment and
    password file still apply)."""
    return connect(conninfo=conn.info.dsn, **kwargs)


class _Poller:
    """Polls a query from a second connection to conn's server in a thread,
    calling on_row(row) with each result, until stopped."""

    def __init__(self, conn, sql, params, on_row, interval=0.2):
        self.sql, self.params, self.on_row, self.interval = sql, params, on_row, interval
        self.stop_event = threading.Event()
        self.conn = connect_like(conn, application_name="tinyhnsw-bench progress")
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        try:
            while not self.stop_event.wait(self.interval):
                row = self.conn.execute(self.sql, self.params).fetchone()
                if row:
                    self.on_row(row)
        except Exception:
            pass            # progress is best effort

    def stop(self):
        self.stop_event.set()
        self.thread.join(5)
        self.conn.close()


def load_table(conn, table, ds, chunk=4096, ids=None, label="load (COPY)"):
    """COPY ds.data (ids 0..n-1, or the array ids, one per row; labels if
    any) into table (binary COPY), then ANALYZE it. The progress bar follows
    the server's side (pg_stat_progress_copy). Returns the seconds COPY
    took."""
    cols = "id, label, emb" if ds.labels is not None else "id, emb"
    if ids is None:
        ids = np.arange(ds.n)
    bar = Progress(label, ds.n, " rows")
    poller = _Poller(conn, "SELECT tuples_processed FROM pg_stat_progress_copy WHERE pid = %s",
                     (conn.info.backend_pid,), lambda row: bar.update(row[0]))
    try:
        t0 = time.perf_counter()
        with conn.cursor() as cur:
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT binary)") as cp:
                cp.write(_COPY_HEADER)
                for lo in range(0, ds.n, chunk):
                    hi = min(ds.n, lo + chunk)
                    labels = ds.labels[lo:hi] if ds.labels is not None else None
                    cp.write(_copy_block(ids[lo:hi], labels, ds.data[lo:hi]))
                cp.write(_COPY_TRAILER)
        seconds = time.perf_counter() - t0
    finally:
        poller.stop()
    bar.update(ds.n)
    bar.close()
    conn.execute(f"ANALYZE {table}")
    return seconds


def build_index(conn, table, index, metric, m=16, ef_construction=64, expected_rows=None,
                label="build (hnsw)", kind=VECTOR_INDEX):
    """CREATE INDEX ... USING hnsw on conn (in a thread), while this thread
    polls pg_stat_progress_create_index from a second connection and draws
    a progress bar. Returns the seconds CREATE INDEX took (as timed around
    the statement in its thread). Afterwards build_index.parallel_workers_seen
    holds the most parallel workers the poller saw helping the build. kind
    (an IndexKind) says what the index is on."""
    conn.execute(f"DROP INDEX IF EXISTS {index}")
    sql = (f"CREATE INDEX {index} ON {table} USING hnsw ({kind.index_key(metric)}) "
           f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)})")
    pid = conn.info.backend_pid
    outcome = {}

    def worker():
        t0 = time.perf_counter()
        try:
            conn.execute(sql)
            outcome["seconds"] = time.perf_counter() - t0
        except BaseException as e:  # reported by the main thread
            outcome["error"] = e

    bar = Progress(label, expected_rows, " tuples")
    workers = 0
    notices = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary))
    thread = threading.Thread(target=worker, daemon=True)
    with connect_like(conn, application_name="tinyhnsw-bench progress") as mon:
        thread.start()
        try:
            while thread.is_alive():
                row = mon.execute(
                    "SELECT phase, tuples_done, tuples_total, "
                    "(SELECT count(*) FROM pg_stat_activity WHERE leader_pid = %s) "
                    "FROM pg_stat_progress_create_index WHERE pid = %s", (pid, pid)).fetchone()
                if row:
                    phase, done, total, helpers = row
                    workers = max(workers, helpers)
                    bar.update(done or 0, total or expected_rows, note=phase)
                thread.join(0.2)
        except KeyboardInterrupt:
            conn.cancel()
            thread.join(10)
            bar.close("interrupted")
            raise
    if "error" in outcome:
        bar.close("failed")
        raise outcome["error"]
    if expected_rows:
        bar.update(expected_rows)
    bar.close("done")
    for n in notices:
        print(f"NOTICE from CREATE INDEX: {n}", file=sys.stderr)
    build_index.parallel_workers_seen = workers
    return outcome["seconds"]


def relation_size(conn, name):
    return conn.execute("SELECT pg_relation_size(%s::regclass), pg_size_pretty(pg_relation_size(%s::regclass))",
                        (name, name)).fetchone()


def query_sql(table, metric, k, columns="id", kind=VECTOR_INDEX):
    """The k-NN query for psycopg: one %s, or for the "bq" query %(q)s twice
    (run_queries and run_clients bind either)."""
    return kind.knn_sql(table, metric, k, "%(q)s" if kind.kind == "bq" else "%s", columns)


def explain(conn, table, metric, k, literal, generic=False, analyze=False, columns="id", fmt_json=False,
            kind=VECTOR_INDEX):
    """EXPLAIN of the k-NN query as a prepared statement with the current
    settings: its custom plan (the literal folded in) or, with generic, the
    plan for any $1. The literal goes inline: EXPLAIN EXECUTE takes no bind
    parameters (and a vector literal is only digits, signs, dots, e,
    commas and brackets). Returns the plan's lines."""
    conn.execute(f"PREPARE tinyhnsw_explain({kind.param_type}) AS "
                 + kind.knn_sql(table, metric, k, "$1", columns))
    try:
        conn.execute("SET plan_cache_mode = " + ("force_generic_plan" if generic else "force_custom_plan"))
        opts = "ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON" if analyze else "COSTS OFF"
        if fmt_json:
            opts += ", FORMAT JSON"
        return [r[0] for r in conn.execute(f"EXPLAIN ({opts}) EXECUTE tinyhnsw_explain('{literal}')")]
    finally:
        conn.execute("RESET plan_cache_mode")
        conn.execute("DEALLOCATE tinyhnsw_explain")


def plan_nodes(conn, table, metric, k, literal, generic=False, kind=VECTOR_INDEX):
    """The plan's nodes, outermost first, e.g. ['Limit', 'Index Scan (idx)'],
    following each node's first child (for the "bq" query: Limit, Sort,
    Subquery Scan, Limit, Index Scan)."""
    plan = explain(conn, table, metric, k, literal, generic=generic, fmt_json=True, kind=kind)
    nodes = []
    node = plan[0][0]["Plan"] if isinstance(plan[0], list) else plan[0]["Plan"]
    while node:
        name = node["Node Type"]
        if "Index Name" in node:
            name += f" ({node['Index Name']})"
        nodes.append(name)
        children = node.get("Plans") or []
        node = children[0] if children else None
    return nodes


def plan_check(conn, table, index, metric, k, literal, kind=VECTOR_INDEX):
    """Whether the planner serves the k-NN query with the hnsw index, for a
    custom and for a generic plan, under the current settings (which
    include hnsw.ef_search, part of the index's cost). Returns
    (ok, description)."""
    want = f"Index Scan ({index})"
    found = {g: plan_nodes(conn, table, metric, k, literal, generic=g, kind=kind) for g in (False, True)}
    ok = all(want in nodes for nodes in found.values())
    if ok:
        return True, "index scan"
    if found[False] == found[True]:
        return False, " > ".join(found[False])
    return False, f"custom plan {' > '.join(found[False])}, generic plan {' > '.join(found[True])}"


def run_queries(conn, sql, queries, ef, label=None, order=None):
    """Run each query (a text literal or a VectorParam; see query_params)
    once through a server-side prepared statement on conn with
    hnsw.ef_search = ef. Returns (seconds, results) where results are the
    lists of first-column values per query (in queries' order).

    Each ef value gets a statement of its own (the SQL is tagged with it):
    a cached plan is not replanned when hnsw.ef_search changes."""
    conn.execute(f"SET hnsw.ef_search = {int(ef)}")
    sql = f"{sql} /* ef_search {int(ef)} */"
    order = range(len(queries)) if order is None else order
    results = [None] * len(queries)
    bar = Progress(label, len(queries), " queries") if label else None
    if isinstance(queries[0], VectorParam):
        register_vector_param(conn)
    params = [_bind(sql, q) for q in queries]
    cur = conn.cursor()
    # a first execution prepares the statement outside the timed loop
    cur.execute(sql, params[0], prepare=True)
    cur.fetchall()
    t0 = time.perf_counter()
    for count, i in enumerate(order, 1):
        cur.execute(sql, params[i], prepare=True)
        results[i] = [r[0] for r in cur.fetchall()]
        if bar and count % 50 == 0:
            bar.update(count)
    seconds = time.perf_counter() - t0
    if bar:
        bar.close(f"{len(queries) / seconds:,.0f} QPS")
    cur.close()
    return seconds, results


def server_settings(conn, names):
    out = {}
    for n in names:
        try:
            out[n] = conn.execute(f"SHOW {n}").fetchone()[0]
        except psycopg.Error:
            out[n] = None
    return out


def _client_main(sql, queries, ef, offset, settings, ready, start, out):
    """One client of run_clients, in a process of its own."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with connect(application_name="tinyhnsw-bench client") as conn:
            for name, value in settings.items():
                conn.execute(f"SET {name} = {value}")
            conn.execute(f"SET hnsw.ef_search = {int(ef)}")
            if isinstance(queries[0], VectorParam):
                register_vector_param(conn)
            params = [_bind(sql, q) for q in queries]
            cur = conn.cursor()
            cur.execute(sql, params[0], prepare=True)
            cur.fetchall()
            n = len(queries)
            ready.put(None)
            start.wait()
            t0 = time.perf_counter()
            for j in range(n):
                cur.execute(sql, params[(offset + j) % n], prepare=True)
                cur.fetchall()
            out.put((t0, time.perf_counter(), n, None))
    except BaseException as e:  # noqa: B902 - reported to the parent
        ready.put(None)
        out.put((0.0, 0.0, 0, repr(e)))


def run_clients(sql, queries, ef, clients, settings=None):
    """`clients` processes, each with its own connection, each running every
    query once (starting at different offsets) through a prepared statement
    with hnsw.ef_search = ef, all started together. Returns the total
    queries per second: all queries over the wall time from the first
    client's start to the last one's end."""
    import multiprocessing as mp
    ctx = mp.get_context("fork")
    ready, out = ctx.Queue(), ctx.Queue()
    start = ctx.Event()
    sql = f"{sql} /* ef_search {int(ef)} */"
    procs = [ctx.Process(target=_client_main,
                         args=(sql, queries, ef, i * len(queries) // clients, settings or {}, ready, start, out),
                         daemon=True)
             for i in range(clients)]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            ready.get()
        start.set()
        results = [out.get() for _ in procs]
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.terminate()
    errors = [r[3] for r in results if r[3]]
    if errors:
        raise RuntimeError("client failed: " + errors[0])
    t0 = min(r[0] for r in results)
    t1 = max(r[1] for r in results)
    return sum(r[2] for r in results) / (t1 - t0)
