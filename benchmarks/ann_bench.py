"""Approximate vs exact top-10 search: build time, recall@10 and per-query cost; prints a markdown table.

    # a registered vector model (PALAVRA_HOME as usual)
    nice .venv/bin/python benchmarks/ann_bench.py --model corpus-w2v --backends faiss,hnswlib
    # a synthetic clustered matrix (1M x 300 is 1.2 GB; the index another ~1.5 GB)
    nice .venv/bin/python benchmarks/ann_bench.py --synthetic 1000000x300
    # the time to build a model's neighbour table (exact top-50 of every row)
    .venv/bin/python benchmarks/ann_bench.py --model corpus-w2v --table 50

Queries are vocabulary rows (the row itself excluded, as /v1/neighbors does), searched one per call on one thread
(how a serving worker runs them), and in batches of 64 (one matrix product / one index call).
Recall is against exact search over the same unit rows; ``ef_search`` is the smallest reaching recall 0.95.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from models.ann import AnnConfig, HnswIndex, build_tuned, exact_top_k, recall_at_k, set_threads
from models.vectors import unit_rows

K = 10


def synthetic(n: int, d: int, *, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors with a low-dimensional structure per cluster, like embeddings (not uniform noise)."""
    rng = np.random.default_rng(seed)
    n_clusters = max(8, n // 500)
    centres = rng.normal(size=(n_clusters, d)).astype(np.float32)
    basis = rng.normal(size=(32, d)).astype(np.float32) / np.sqrt(32)
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        which = rng.integers(0, n_clusters, size=m)
        local = rng.normal(size=(m, 32)).astype(np.float32) @ basis
        noise = 0.3 * rng.normal(size=(m, d)).astype(np.float32)
        out[start : start + m] = unit_rows(centres[which] + 0.8 * local + noise)
    return out


def _time_per_query(
    search: Callable[[np.ndarray], Any], queries: np.ndarray, *, batch: int
) -> tuple[float, float]:
    """(p50, p99) milliseconds per call for single queries, or mean ms per query for batches."""
    times = []
    for start in range(0, len(queries) - batch + 1, batch):
        t = time.perf_counter()
        search(queries[start : start + batch])
        times.append((time.perf_counter() - t) * 1000)
    arr = np.asarray(times)
    if batch == 1:
        return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))
    return float(arr.mean() / batch), float(np.percentile(arr, 99) / batch)


def _hnswlib(
    unit: np.ndarray, truth: np.ndarray, qids: np.ndarray, *, m: int, efc: int
) -> tuple[Any, dict[str, Any]]:
    import hnswlib

    t = time.perf_counter()
    index = hnswlib.Index(space="ip", dim=unit.shape[1])
    index.init_index(max_elements=unit.shape[0], M=m, ef_construction=efc, random_seed=0)
    index.set_num_threads(2)
    for start in range(0, unit.shape[0], 100_000):
        chunk = np.ascontiguousarray(unit[start : start + 100_000])
        index.add_items(chunk, np.arange(start, start + len(chunk)))
    built = time.perf_counter() - t
    index.set_num_threads(1)
    curve = {}
    for ef in AnnConfig().ef_candidates:
        index.set_ef(ef)
        labels, _ = index.knn_query(unit[qids], k=K + 1)
        curve[ef] = recall_at_k(truth, labels.astype(np.int64), qids, k=K)
        if curve[ef] >= 0.95:
            break
    return index, {"build_s": built, "ef_search": ef, "recall_at_10": curve[ef]}


def _usearch(
    unit: np.ndarray, truth: np.ndarray, qids: np.ndarray, *, m: int, efc: int
) -> tuple[Any, dict[str, Any]]:
    from usearch.index import Index

    t = time.perf_counter()
    index = Index(ndim=unit.shape[1], metric="ip", dtype="f32", connectivity=m, expansion_add=efc)
    index.add(np.arange(unit.shape[0]), np.ascontiguousarray(unit), threads=2)
    built = time.perf_counter() - t
    curve = {}
    for ef in AnnConfig().ef_candidates:
        index.expansion_search = ef
        found = index.search(unit[qids], K + 1, threads=1).keys
        curve[ef] = recall_at_k(truth, np.asarray(found, dtype=np.int64), qids, k=K)
        if curve[ef] >= 0.95:
            break
    return index, {"build_s": built, "ef_search": ef, "recall_at_10": curve[ef]}


def frequent_recall(unit: np.ndarray, search: Callable[[np.ndarray], Any], *, top: int = 20_000) -> float:
    """Recall@10 on 1,000 of the first ``top`` rows: the most frequent words in a gensim-ordered vocabulary."""
    rng = np.random.default_rng(2)
    qids = np.sort(rng.choice(min(top, unit.shape[0]), size=min(1000, unit.shape[0]), replace=False))
    queries = np.ascontiguousarray(unit[qids])
    truth = exact_top_k(unit, queries, K + 1)
    a, b = search(queries)
    ids = a if b is None or np.asarray(a).dtype.kind in "iu" else b
    return recall_at_k(truth, np.asarray(ids, dtype=np.int64), qids, k=K)


def run(
    unit: np.ndarray,
    *,
    label: str,
    backends: list[str],
    n_queries: int,
    exact_queries: int,
    m: int,
    efc: int,
    frequent: bool,
) -> list[str]:
    rng = np.random.default_rng(1)
    qids = np.sort(rng.choice(unit.shape[0], size=n_queries, replace=False))
    queries = np.ascontiguousarray(unit[qids])
    set_threads(2)
    t = time.perf_counter()
    truth = exact_top_k(unit, queries, K + 1)
    truth_s = time.perf_counter() - t
    rows = []
    with threadpool_limits(limits=1):
        set_threads(1)
        exact = lambda q: exact_top_k(unit, q, K + 1)  # noqa: E731
        e_p50, e_p99 = _time_per_query(exact, queries[:exact_queries], batch=1)
        e_b64, _ = _time_per_query(exact, queries[: max(exact_queries, 128)], batch=64)
        rows.append(
            f"| {label} | exact (numpy) | – | 1.000 | 1.000 | – | {e_p50:.3f} | {e_p99:.3f} | {e_b64:.3f} | 1.0x |"
        )
        for backend in backends:
            set_threads(2)
            if backend == "faiss":
                cfg = AnnConfig(m=m, ef_construction=efc, recall_queries=n_queries)
                index, info = build_tuned(unit, cfg)
                search: Callable[[np.ndarray], Any] = lambda q, ix=index: HnswIndex.search(ix, q, K + 1)  # noqa: E731
                name = f"faiss HNSW M={m} efC={efc}"
            elif backend == "usearch":
                uidx, info = _usearch(unit, truth, qids, m=m, efc=efc)
                search = lambda q, ix=uidx: (np.asarray(ix.search(q, K + 1, threads=1).keys), None)  # noqa: E731
                name = f"usearch M={m} efC={efc}"
            else:
                hidx, info = _hnswlib(unit, truth, qids, m=m, efc=efc)
                search = lambda q, ix=hidx: ix.knn_query(q, k=K + 1)  # noqa: E731
                name = f"hnswlib M={m} efC={efc}"
            set_threads(1)
            freq = frequent_recall(unit, search) if frequent else float("nan")
            p50, p99 = _time_per_query(search, queries, batch=1)
            b64, _ = _time_per_query(search, queries, batch=64)
            rows.append(
                f"| {label} | {name} | {info['ef_search']} | {info['recall_at_10']:.3f} | {freq:.3f} | "
                f"{info['build_s']:.0f} | "
                f"{p50:.3f} | {p99:.3f} | {b64:.3f} | {e_p50 / p50:.0f}x |"
            )
    print(f"<!-- exact ground truth for {n_queries} queries: {truth_s:.1f}s on 2 threads -->")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="a registered word2vec/fasttext model (NAME[@VERSION|@ALIAS])")
    parser.add_argument("--synthetic", help="ROWSxDIM, e.g. 1000000x300")
    parser.add_argument("--backends", default="faiss", help="comma-separated: faiss,hnswlib,usearch")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--m", type=int, default=32, help="HNSW links per node")
    parser.add_argument("--efc", type=int, default=AnnConfig().ef_construction, help="HNSW efConstruction")
    parser.add_argument(
        "--exact-queries", type=int, default=200, help="single exact queries timed (slow on 1M)"
    )
    parser.add_argument(
        "--table",
        type=int,
        metavar="WIDTH",
        help="instead: time building the neighbour table of this width (models/neighbor_table.py), exact search",
    )
    args = parser.parse_args()
    if args.model:
        from models.vectors import load
        from services.factories import open_registry
        from services.settings import get_settings

        artifact = open_registry(get_settings()).open(args.model)
        unit = np.ascontiguousarray(load(artifact).vectors.normed)
        label = f"{artifact.version.ref} ({unit.shape[0]:,} x {unit.shape[1]})"
    elif args.synthetic:
        n, d = (int(x) for x in args.synthetic.lower().split("x"))
        unit = synthetic(n, d)
        label = f"synthetic clustered ({n:,} x {d})"
    else:
        parser.error("give --model or --synthetic")
    if args.table:
        from models.neighbor_table import build_table

        _, info = build_table(unit, args.table)
        print(
            f"| matrix | width | method | build s |\n|---|---|---|---|\n| {label} | {args.table} | {info['method']} "
            f"| {info['build_s']:.1f} |"
        )
        return
    print(
        "| matrix | method | ef_search | recall@10 (uniform) | recall@10 (20k most frequent) | build s "
        "| single p50 ms | single p99 ms | batch-64 ms/query | speed-up (p50) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in run(
        unit,
        label=label,
        backends=args.backends.split(","),
        n_queries=args.queries,
        exact_queries=args.exact_queries,
        m=args.m,
        efc=args.efc,
        frequent=bool(args.model),
    ):
        print(row)


if __name__ == "__main__":
    main()
