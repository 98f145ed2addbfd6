"""In-process search latency of a collection built from corpus lines (one thread; no HTTP).

Usage:

    PALAVRA_HOME=... PALAVRA_DATA_MIRROR=../shared/data \\
        .venv/bin/python benchmarks/search_latency.py --encoder machado-sif --documents 100000 --queries 200

Documents are the first ``--documents`` non-empty lines of ``corpus-machado``; queries are later lines. Reports the
build time (encoding + BM25 index) and p50 / p99 latency of a top-10 search per mode.

Synthetic vector search, the HNSW index against the exact scan (no encoder: random clustered unit vectors):

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/search_latency.py --synthetic 1000000 --dim 100
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.ann import exact_top_k, set_threads
from models.collection import CollectionStore, Document
from pipelines.serving.search import Searcher, ensure_index
from pipelines.text_encoder.served import load_text_encoder
from services.factories import open_catalog, open_registry
from services.settings import get_settings


def corpus_lines(n: int) -> list[str]:
    out: list[str] = []
    for path in open_catalog(get_settings()).resolve("corpus-machado"):
        with path.open(encoding="utf-8", errors="replace") as fh:
            out.extend(line.strip() for line in fh if len(line.split()) >= 4)
        if len(out) >= n:
            break
    return out[:n]


class FixedQueries:
    """Stands in for an encoder: ``embed`` answers the next prepared query vector; no words."""

    def __init__(self, queries: np.ndarray, dim: int) -> None:
        self.queries = queries
        self.dim = dim
        self.next = 0

    def embed(self, texts: list[str]) -> np.ndarray:  # noqa: ARG002 (the encoder signature)
        q = self.queries[self.next % len(self.queries)][None, :]
        self.next += 1
        return q

    def tokens(self, texts: list[str]) -> list[list[str]]:
        return [[] for _ in texts]


def synthetic(n: int, dim: int, queries: int) -> dict[str, object]:
    """p50 / p99 of a top-10 vector search over ``n`` clustered unit vectors: HNSW index vs exact scan."""
    set_threads(1)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(1000, dim)).astype(np.float32)

    def points(m: int) -> np.ndarray:
        x = centres[rng.integers(0, len(centres), m)] + 0.6 * rng.normal(size=(m, dim)).astype(np.float32)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    qs = points(queries)
    out: dict[str, object] = {"documents": n, "dim": dim, "queries": queries}
    with tempfile.TemporaryDirectory() as tmp:
        store = CollectionStore(Path(tmp))
        started = time.perf_counter()
        with store.create("bench", {"encoder": "synthetic", "dim": dim}) as writer:
            for i in range(0, n, 100_000):
                m = min(100_000, n - i)
                writer.add(
                    [Document(str(i + j), "", {}) for j in range(m)], points(m), [[] for _ in range(m)]
                )
        out["write_s"] = round(time.perf_counter() - started, 1)
        set_threads(2)
        started = time.perf_counter()
        info = ensure_index(store, "bench", 1)
        out["index_build_s"] = round(time.perf_counter() - started, 1)
        out["index"] = {k: info[k] for k in ("ef_search", "recall_at_10", "recall_curve")} if info else None
        set_threads(1)
        snap = store.read("bench", with_index=True)
        truth = exact_top_k(snap.vectors, qs, 10)
        for label, min_docs in (("hnsw", 1), ("exact", None)):
            model = FixedQueries(qs, dim)
            searcher = Searcher(snap, model, ann_min_docs=min_docs)  # type: ignore[arg-type]
            times, found = [], []
            for _ in range(queries):
                t0 = time.perf_counter()
                hits = searcher.search("q", k=10, mode="vector")
                times.append(time.perf_counter() - t0)
                found.append([int(h.id) for h in hits])
            recall = np.mean([len(set(f) & set(t.tolist())) / 10 for f, t in zip(found, truth, strict=True)])
            out[label] = {
                "p50_ms": round(1000 * float(np.percentile(times, 50)), 3),
                "p99_ms": round(1000 * float(np.percentile(times, 99)), 3),
                "recall_at_10": round(float(recall), 4),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder")
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--synthetic", type=int, default=0, help="Documents of a synthetic vector collection."
    )
    parser.add_argument("--dim", type=int, default=100)
    args = parser.parse_args()
    if args.synthetic:
        print(json.dumps(synthetic(args.synthetic, args.dim, args.queries), indent=1))
        return
    if not args.encoder:
        parser.error("--encoder is needed without --synthetic")
    model = load_text_encoder(open_registry(get_settings()), args.encoder)
    lines = corpus_lines(args.documents + args.queries)
    docs, queries = lines[: args.documents], lines[args.documents :]
    out: dict[str, object] = {"documents": len(docs), "queries": len(queries), "encoder": args.encoder}
    with tempfile.TemporaryDirectory() as tmp:
        store = CollectionStore(Path(tmp))
        started = time.perf_counter()
        with store.create("bench", {"encoder": args.encoder, "dim": model.dim}) as writer:
            for i in range(0, len(docs), 1000):
                batch = docs[i : i + 1000]
                tokens = model.tokens(batch)
                writer.add(
                    [Document(str(i + j), t, {}) for j, t in enumerate(batch)],
                    model.embed_tokens(tokens),
                    tokens,
                )
        out["encode_s"] = time.perf_counter() - started  # with the BM25 index, written with the collection
        started = time.perf_counter()
        searcher = Searcher(store.read("bench"), model)
        out["open_s"] = time.perf_counter() - started
        for mode in ("vector", "lexical", "hybrid"):
            times = []
            for q in queries:
                t0 = time.perf_counter()
                searcher.search(q, k=10, mode=mode)
                times.append(time.perf_counter() - t0)
            out[mode] = {
                "p50_ms": 1000 * float(np.percentile(times, 50)),
                "p99_ms": 1000 * float(np.percentile(times, 99)),
            }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
