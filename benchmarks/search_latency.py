"""In-process search latency of a collection built from corpus lines (one thread; no HTTP).

Usage:

    PALAVRA_HOME=... PALAVRA_DATA_MIRROR=../shared/data \\
        .venv/bin/python benchmarks/search_latency.py --encoder machado-sif --documents 100000 --queries 200

Documents are the first ``--documents`` non-empty lines of ``corpus-machado``; queries are later lines. Reports the
build time (encoding + BM25 index) and p50 / p99 latency of a top-10 search per mode.
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

from models.collection import CollectionStore, Document
from pipelines.search import Searcher
from pipelines.text_encoder.served import load_text_encoder
from services.context import open_catalog, open_registry
from services.settings import get_settings


def corpus_lines(n: int) -> list[str]:
    out: list[str] = []
    for path in open_catalog(get_settings()).resolve("corpus-machado"):
        with path.open(encoding="utf-8", errors="replace") as fh:
            out.extend(line.strip() for line in fh if len(line.split()) >= 4)
        if len(out) >= n:
            break
    return out[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", required=True)
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
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
                writer.add([Document(str(i + j), t, {}) for j, t in enumerate(batch)], model.embed(batch))
        out["encode_s"] = time.perf_counter() - started
        started = time.perf_counter()
        searcher = Searcher(store.read("bench"), model)
        out["bm25_index_s"] = time.perf_counter() - started
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
