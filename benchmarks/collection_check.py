"""What the searcher cache's check of a cached collection costs per search: the stat of every file it maps
(``Snapshot.changed``) and the whole ``SearcherCache.get`` of a cached searcher (a stat of collection.json for its
stamp, then the files); prints microseconds per call, the median of ``--rounds`` rounds.

    nice .venv/bin/python benchmarks/collection_check.py --documents 1000 --calls 20000

The collection is written by the store itself (random unit vectors, made-up words) under a temporary PALAVRA_HOME;
no encoder is loaded: the cache gets a searcher put in place of the one it would open.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from models.collection import CollectionStore, Document
from pipelines.serving.search import Searcher
from pipelines.serving.searcher_cache import SearcherCache

INFO = {"encoder": "bench@1", "words": "bench@1", "text_field": "text", "id_field": "id", "dim": 64}


def _collection(home: Path, documents: int) -> CollectionStore:
    store = CollectionStore(home)
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(500)]
    docs = [Document(f"d{i}", " ".join(rng.choice(words, 8)), {}) for i in range(documents)]
    vectors = rng.normal(size=(documents, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with store.create("bench", INFO) as writer:
        writer.add(docs, vectors, [d.text.split() for d in docs])
    return store


def _per_call_us(fn: Any, calls: int, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        store = _collection(Path(home), args.documents)
        snapshot = store.read("bench")
        cache = SearcherCache(store, None, prune_s=1e9)  # type: ignore[arg-type]
        searcher = Searcher.__new__(Searcher)  # no encoder: only the snapshot is looked at
        searcher.snapshot = snapshot
        cache._items["bench"] = searcher
        if cache.get("bench") is not searcher:
            raise SystemExit("the cache opened the collection again: nothing was measured")
        files = _per_call_us(snapshot.changed, args.calls, args.rounds)
        whole = _per_call_us(lambda: cache.get("bench"), args.calls // 4, args.rounds)
        print("| files stat-ed | Snapshot.changed | SearcherCache.get (cached) |")
        print("|---|---|---|")
        print(f"| {len(snapshot.files)} | {files:.1f} us | {whole:.1f} us |")


if __name__ == "__main__":
    main()
