"""``POST /v1/collections/{name}/search`` under wrk: p50/p99 and requests/s per mode, 1 and 2 workers, and memory.

    # needs wrk (apt-get install -y wrk) and a registered text encoder in PALAVRA_HOME
    PALAVRA_HOME=... PALAVRA_DATA_MIRROR=../shared/data nice .venv/bin/python benchmarks/search_http_bench.py \\
        --encoder machado-ft100-sif --documents 1000000 --workers 1,2 --conns 16 --duration 10 --rounds 2

Documents are passages of ``corpus-all`` (data mirror): every line / paragraph cut at sentence ends, sentences over
24 words cut into equal pieces of at most 24 words, pieces of 4 words or more, each text once. Every 30th passage
is held out as a query (never a document); the first ``--documents`` of the others make the collection, built by
``create_collection``, the code ``palavra collection create`` runs (HNSW index included, from
``PALAVRA_COLLECTION_ANN_MIN_DOCS`` documents). A collection already under ``--collection`` is reused as it is.

Each server (``palavra serve``, job workers off, one compute thread) is warmed up until every worker answers
quickly (a worker's first search of a collection reads its documents and builds its BM25 index), then a 3 s wrk
run per mode. Each measured run POSTs distinct bodies ``{"query", "k": 10, "mode"}`` (``benchmarks/wrk/distinct.lua``:
no query twice in a run while the file lasts; each round starts further in). wrk runs on the same cores as the
server. Printed per run: requests/s, p50/p90/p99, failed requests, the server's CPU time per request and the load
average (1 minute) before and after. After the runs of a worker count, the memory of each server process
(smaps_rollup: RSS, PSS, private), so a second worker's private memory can be set against the first's.

With ``--floor`` (the default), each worker count also gets ``GET /health`` rows, run the same way: a route that
does no work, so what HTTP and the closed loop of connections alone cost on these cores stands beside the searches.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lm_http_bench import measured, wrk_distinct
from serving_bench import memory, print_memory, start_server, stop_server, wrk

SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
MAX_WORDS = 24
MIN_WORDS = 4
HOLD_OUT_EVERY = 30
ROUND_STRIDE = 20_000  # query bodies a round may use before the next round's offset


def passages(texts: Iterator[str]) -> Iterator[str]:
    """Sentences of ``texts`` (long ones cut into equal pieces of at most MAX_WORDS words), each text once."""
    seen: set[str] = set()
    for text in texts:
        for line in text.split("\n"):
            for sentence in SENTENCE_END.split(line.strip()):
                words = sentence.split()
                if len(words) < MIN_WORDS:
                    continue
                size = math.ceil(len(words) / math.ceil(len(words) / MAX_WORDS))
                for i in range(0, len(words), size):
                    piece = " ".join(words[i : i + size])
                    if len(piece.split()) >= MIN_WORDS and piece not in seen:
                        seen.add(piece)
                        yield piece


def write_inputs(work: Path, n_docs: int, n_queries: int) -> tuple[Path, list[str]]:
    """(documents JSONL of ``n_docs`` passages, up to ``n_queries`` held-out passages)."""
    from pipelines.reading.corpus import iter_documents
    from services.factories import open_catalog
    from services.settings import get_settings

    sources = open_catalog(get_settings()).resolve("corpus-all")
    docs_path = work / f"documents-{n_docs}.jsonl"
    queries: list[str] = []
    count = 0
    with docs_path.open("w", encoding="utf-8") as fh:
        for i, text in enumerate(passages(iter_documents(sources))):
            if i % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1:
                if len(queries) < n_queries:
                    queries.append(text)
            elif count < n_docs:
                fh.write(json.dumps({"id": str(count), "text": text}, ensure_ascii=False) + "\n")
                count += 1
            elif len(queries) >= n_queries:
                break
    if count < n_docs:
        raise SystemExit(f"corpus-all gives {count:,} passages besides the held-out queries; ask for fewer")
    return docs_path, queries


def ensure_collection(name: str, encoder: str, docs_path: Path | None) -> dict[str, Any]:
    """The collection ``name`` (built from ``docs_path`` as ``palavra collection create`` would when missing)."""
    from models.errors import CollectionNotFound
    from pipelines.serving.search import create_collection, read_documents
    from services.factories import open_collections, open_registry
    from services.settings import get_settings

    settings = get_settings()
    store = open_collections(settings)
    try:
        info = store.info(name)
        print(f"reusing collection {name}: {info['documents']:,} documents, encoder {info['encoder']}")
        return info
    except CollectionNotFound:
        pass
    if docs_path is None:
        raise SystemExit(f"no collection {name!r} and no documents to build it from")
    done = [0]

    def progress(n: int) -> None:
        done[0] += n
        if done[0] % 100_000 < n:
            print(f"  encoded {done[0]:,} documents at {time.perf_counter() - started:.0f} s", flush=True)

    started = time.perf_counter()
    info = create_collection(
        store,
        open_registry(settings),
        name,
        read_documents(docs_path, text_field="text", id_field="id"),
        encoder=encoder,
        on_batch=progress,
        ann_min_docs=settings.collection_ann_min_docs,
    )
    ann = store.index_info(name)
    index = f"ef_search {ann['ef_search']}, recall@10 {ann['recall_at_10']}" if ann else "none"
    print(
        f"built collection {name}: {info['documents']:,} documents in {time.perf_counter() - started:.0f} s "
        f"(index: {index})",
        flush=True,
    )
    return info


def write_bodies(work: Path, queries: list[str], modes: list[str], k: int) -> dict[str, Path]:
    out = {}
    for mode in modes:
        path = work / f"search-{mode}.jsonl"
        path.write_text(
            "".join(
                json.dumps({"query": q, "k": k, "mode": mode}, ensure_ascii=False) + "\n" for q in queries
            ),
            encoding="utf-8",
        )
        out[mode] = path
    return out


def warm_up(url: str, path: str, queries: list[str], *, parallel: int = 16) -> float:
    """Search until a batch of ``parallel`` requests on fresh connections all answer within a second, twice in a
    row (every worker has then loaded the collection); returns the seconds it took."""
    started = time.perf_counter()
    good = 0
    i = 0

    def one(q: str) -> float:
        t = time.perf_counter()
        r = httpx.post(url + path, json={"query": q, "k": 10, "mode": "hybrid"}, timeout=900)
        r.raise_for_status()
        return time.perf_counter() - t

    with ThreadPoolExecutor(parallel) as pool:
        while good < 2:
            batch = queries[i : i + parallel]
            i += parallel
            good = good + 1 if max(pool.map(one, batch)) < 1.0 else 0
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--encoder", help="A registered text encoder (needed to build the collection).")
    parser.add_argument("--collection", default="", help="Collection name (default: bench-DOCUMENTS).")
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=2 * ROUND_STRIDE)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--conns", default="16")
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--modes", default="vector,lexical,hybrid")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument(
        "--floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Also run GET /health (no work) the same way: the latency HTTP alone gives on these cores.",
    )
    parser.add_argument(
        "--build-only", action="store_true", help="Build (or find) the collection, then stop."
    )
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "palavra-search-bench")
    args = parser.parse_args()
    name = args.collection or f"bench-{args.documents}"
    modes = args.modes.split(",")
    args.work.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    docs_path, queries = write_inputs(args.work, args.documents, args.queries)
    print(
        f"{args.documents:,} documents, {len(queries):,} held-out queries ({time.perf_counter() - started:.0f} s)"
    )
    info = ensure_collection(name, args.encoder, docs_path if args.encoder else None)
    if args.build_only:
        return
    bodies = write_bodies(args.work, queries, modes, args.k)
    health = args.work / "health.txt"
    health.write_text("/health\n", encoding="utf-8")
    path = f"/v1/collections/{name}/search"
    env = {
        **os.environ,
        "PALAVRA_LOCAL_WORKERS": "0",  # no job workers beside the API: they would share the cores and the memory
        "PALAVRA_COMPUTE_THREADS": os.environ.get("PALAVRA_COMPUTE_THREADS", "1"),
    }
    print(f"collection {name}: {info['documents']:,} documents x {info['dim']}, encoder {info['encoder']}\n")
    print("| workers | mode | conns | round | req/s | p50 ms | p90 ms | p99 ms | failed | server CPU ms/req | load before / after |")  # fmt: skip
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    mem: dict[int, list[dict[str, Any]]] = {}
    warm: dict[int, float] = {}
    for workers in [int(w) for w in args.workers.split(",")]:
        proc, url = start_server(workers, env)
        try:
            warm[workers] = warm_up(url, path, queries[-2000:])
            for mode in modes:
                wrk_distinct(url, bodies[mode], conns=4, seconds=3, offset=len(queries) - 2000, path=path)
            for conns in [int(c) for c in args.conns.split(",")]:
                for mode in modes:
                    for r in range(1, args.rounds + 1):
                        run = functools.partial(
                            wrk_distinct,
                            url,
                            bodies[mode],
                            conns=conns,
                            seconds=args.duration,
                            offset=(r - 1) * ROUND_STRIDE,
                            path=path,
                        )
                        _, cells = measured(proc.pid, run)
                        print(f"| {workers} | {mode} | {conns} | {r} | {cells} |", flush=True)
                if args.floor:  # the same server answering a route that does no work: what HTTP alone costs
                    for r in range(1, args.rounds + 1):
                        floor = functools.partial(
                            wrk, url, "GET", "", health, conns=conns, seconds=args.duration
                        )
                        _, cells = measured(proc.pid, floor)
                        print(f"| {workers} | GET /health | {conns} | {r} | {cells} |", flush=True)
            mem[workers] = memory(proc.pid)
        finally:
            stop_server(proc)
    print(
        "\nWarm-up (until every worker answers): "
        + ", ".join(f"{w} worker(s) {s:.0f} s" for w, s in warm.items())
    )
    print_memory(mem)
    two = [r for r in mem.get(2, []) if r["role"] == "worker"]
    if two:
        added = max(r["private"] for r in two)
        rss = max(r["rss"] for r in two)
        print(
            f"\nA second worker adds its private pages, {added:.0f} MB: {100 * added / rss:.1f}% of a worker's "
            f"{rss:.0f} MB RSS (the rest of its RSS is shared with the first)."
        )


if __name__ == "__main__":
    main()
