"""Serving benchmark: `palavra serve` under wrk (Debian's wrk, not part of palavra) vs the same queries in-process.

    PALAVRA_HOME=... nice .venv/bin/python benchmarks/serving_bench.py --model corpus-w2v [--classifier told-mlp]
        [--workers 1,2] [--conns 1,16,64] [--duration 8] [--parts inprocess,http,swap]

Parts (each prints a markdown table):
- inprocess: the floor, the same query through pipelines.serving.served_vectors / the classifier, one thread.
- http: p50/p99 and requests/s for each scenario at each connection count, for 1 and 2 workers, plus memory
  (RSS, PSS, shared) of the server processes after the load; the HTTP/in-process ratio uses p50 at 1 connection.
- swap: 2 workers under 16 connections while the production alias moves every 2 s; counts failed requests.

Needs wrk (`apt-get install -y wrk`); requests cycle through files written to --work (words drawn from the 20k most
frequent of the model's vocabulary; texts from ToLD-Br validation when a classifier is given).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "benchmarks" / "wrk" / "requests.lua"
TOLD = ROOT.parent / "shared" / "data" / "classification" / "told-br" / "validation_1annotator.csv"


# -- inputs -----------------------------------------------------------------------------------------------------
def frequent_words(emb: Any, n: int = 20_000) -> list[str]:
    words, counts = emb.word_vectors.words, emb.word_vectors.counts
    order = np.argsort(-counts)[:n] if counts is not None else np.arange(min(n, len(emb)))
    return [words[i] for i in order if words[i].isalpha()]


def write_inputs(
    work: Path, words: list[str], texts: list[str], *, n: int = 500
) -> dict[str, tuple[str, str, Path]]:
    """scenario -> (method, path, file of request lines)."""
    rnd = random.Random(0)
    work.mkdir(parents=True, exist_ok=True)

    def lines(name: str, rows: list[str]) -> Path:
        path = work / f"{name}.txt"
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
        return path

    pick = lambda m: [rnd.choice(words) for _ in range(m)]  # noqa: E731
    out = {
        "neighbors k=10": (
            "GET",
            "/v1/neighbors",
            lines("neighbors", [f"/v1/neighbors?word={urllib.parse.quote(w)}&k=10" for w in pick(n)]),
        ),
        # wider than the neighbour table (50): the HNSW search path, as every query was before the table
        "neighbors k=60 (searched)": (
            "GET",
            "/v1/neighbors",
            lines("neighbors60", [f"/v1/neighbors?word={urllib.parse.quote(w)}&k=60" for w in pick(n)]),
        ),
        "neighbors batch 64": (
            "POST",
            "/v1/neighbors",
            lines("neighbors64", [json.dumps({"words": pick(64), "k": 10}) for _ in range(n // 10)]),
        ),
        "similarity": (
            "POST",
            "/v1/similarity",
            lines("similarity", [json.dumps({"pairs": [pick(2)]}) for _ in range(n)]),
        ),
        "similarity batch 64": (
            "POST",
            "/v1/similarity",
            lines(
                "similarity64", [json.dumps({"pairs": [pick(2) for _ in range(64)]}) for _ in range(n // 10)]
            ),
        ),
    }
    if texts:
        out["classify"] = (
            "POST",
            "/v1/classify",
            lines("classify", [json.dumps({"texts": [rnd.choice(texts)]}) for _ in range(n)]),
        )
        out["classify batch 64"] = (
            "POST",
            "/v1/classify",
            lines("classify64", [json.dumps({"texts": rnd.sample(texts, 64)}) for _ in range(n // 10)]),
        )
    return out


def told_texts() -> list[str]:
    import csv

    with TOLD.open(encoding="utf-8") as fh:
        return [row["text"] for row in csv.DictReader(fh)][:2000]


# -- in-process floor -------------------------------------------------------------------------------------------
def _timed(fn: Any, inputs: list[Any], repeat: int) -> tuple[float, float]:
    times = []
    for i in range(repeat):
        t = time.perf_counter()
        fn(inputs[i % len(inputs)])
        times.append((time.perf_counter() - t) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def inprocess(emb: Any, clf: Any, words: list[str], texts: list[str]) -> dict[str, tuple[float, float]]:
    from threadpoolctl import threadpool_limits

    from models.ann import set_threads

    rnd = random.Random(1)
    pick = lambda m: [rnd.choice(words) for _ in range(m)]  # noqa: E731
    set_threads(1)
    out = {}
    with threadpool_limits(limits=1):
        out["neighbors k=10"] = _timed(lambda w: emb.neighbors([w], 10), pick(500), 2000)
        out["neighbors k=60 (searched)"] = _timed(lambda w: emb.neighbors([w], 60), pick(500), 2000)
        out["neighbors batch 64"] = _timed(
            lambda ws: emb.neighbors(ws, 10), [pick(64) for _ in range(20)], 100
        )
        out["similarity"] = _timed(emb.similarity, [[tuple(pick(2))] for _ in range(500)], 2000)
        out["similarity batch 64"] = _timed(
            emb.similarity, [[tuple(pick(2)) for _ in range(64)] for _ in range(20)], 300
        )
        if clf is not None:
            out["classify"] = _timed(clf.predict, [[t] for t in texts[:500]], 1000)
            out["classify batch 64"] = _timed(
                clf.predict, [texts[i : i + 64] for i in range(0, 640, 64)], 100
            )
    return out


# -- server ---------------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and all its descendants (fields 14 and 15 of /proc/PID/stat)."""
    total = 0
    stack = [pid]
    while stack:
        p = stack.pop()
        stack.extend(_children(p))
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def settle(pid: int, *, quiet: float = 0.05, limit_s: float = 120.0) -> float:
    """Wait until the server's processes use under ``quiet`` of a core over a second; the seconds waited.

    A ready server is not yet a quiet one: ``palavra serve``'s local job worker starts a forkserver that imports
    torch, gensim and spaCy (3.6 s of CPU on a quiet machine, more on a busy one), and on 2 cores that import ran
    beside the first round of measurements (benchmarks/results/lm.md).
    """
    started = time.monotonic()
    before = _tree_cpu_seconds(pid)
    while time.monotonic() - started < limit_s:
        time.sleep(1.0)
        now = _tree_cpu_seconds(pid)
        if now - before < quiet:
            break
        before = now
    return time.monotonic() - started


def start_server(workers: int, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """``palavra serve`` with ``workers`` workers, ready and quiet (:func:`settle`); its process and URL."""
    port = _free_port()
    cmd = [sys.executable, "-m", "services.cli.main", "serve", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                waited = settle(proc.pid)
                print(f"server ready; quiet {waited:.1f} s later", file=sys.stderr, flush=True)
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("server did not become ready")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def wrk(url: str, method: str, path: str, lines: Path, *, conns: int, seconds: float) -> dict[str, Any]:
    env = {**os.environ, "WRK_INPUT": str(lines), "WRK_METHOD": method}
    threads = 1 if conns == 1 else 2
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{conns}",
        f"-d{int(seconds)}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url + path,
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    stats: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    stats["rps"] = stats["requests"] / (stats["duration_us"] / 1e6)
    stats["failed"] = sum(
        stats[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts", "non_2xx")
    )
    return stats


def _children(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(k) for k in kids]


def print_memory(mem: dict[int, list[dict[str, Any]]]) -> None:
    """The rows of :func:`memory` for each worker count, as one markdown table."""
    print("\n| workers | process | RSS MB | PSS MB | shared MB | private MB |")
    print("|---|---|---|---|---|---|")
    for workers, rows in mem.items():
        for r in rows:
            print(
                f"| {workers} | {r['role']} {r['pid']} | {r['rss']:.0f} | {r['pss']:.0f} | {r['shared']:.0f} | "
                f"{r['private']:.0f} |"
            )


def memory(pid: int) -> list[dict[str, Any]]:
    """smaps_rollup (kB -> MB) of the server process and its worker processes."""
    rows = []
    for p in [pid, *_children(pid)]:
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            fields = dict(
                line.split(":", 1) for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines()[1:]
            )
        except OSError:
            continue
        if "resource_tracker" in cmd:
            continue
        mb = {k: int(v.split()[0]) / 1024 for k, v in fields.items() if v.strip().endswith("kB")}
        role = (
            "worker"
            if "multiprocessing" in cmd
            else ("supervisor" if p == pid and _children(p) else "server")
        )
        rows.append(
            {
                "pid": p,
                "role": role,
                "rss": mb["Rss"],
                "pss": mb["Pss"],
                "shared": mb["Shared_Clean"] + mb["Shared_Dirty"],
                "private": mb["Private_Clean"] + mb["Private_Dirty"],
            }
        )
    return rows


def http_part(
    args: argparse.Namespace,
    scenarios: dict[str, Any],
    floors: dict[str, tuple[float, float]],
    env: dict[str, str],
) -> None:
    # "mean ms" is conns x duration / requests, a check on wrk's own percentiles (which for responses over
    # ~12 KB at one connection come out above what its request count allows)
    print(
        "| workers | scenario | conns | req/s | mean ms | p50 ms | p99 ms | failed | p50 / in-process p50 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    mem: dict[int, list[dict[str, Any]]] = {}
    for workers in args.workers:
        proc, url = start_server(workers, env)
        try:
            for name, (method, path, lines) in scenarios.items():
                wrk(url, method, path, lines, conns=4, seconds=2)  # warm-up: touch pages, fill caches
                for conns in args.conns:
                    s = wrk(url, method, path, lines, conns=conns, seconds=args.duration)
                    ratio = (
                        f"{s['p50_us'] / 1000 / floors[name][0]:.1f}x"
                        if conns == 1 and name in floors
                        else ""
                    )
                    print(
                        f"| {workers} | {name} | {conns} | {s['rps']:.0f} | {1000 * conns / s['rps']:.2f} "
                        f"| {s['p50_us'] / 1000:.2f} | "
                        f"{s['p99_us'] / 1000:.2f} | {s['failed']} | {ratio} |",
                        flush=True,
                    )
            mem[workers] = memory(proc.pid)
        finally:
            stop_server(proc)
    print_memory(mem)
    if 1 in mem and 2 in mem:
        one = sum(r["pss"] for r in mem[1])
        two = sum(r["pss"] for r in mem[2])
        two_workers = sum(r["pss"] for r in mem[2] if r["role"] == "worker")
        print(
            f"\nPSS total: 1 worker {one:.0f} MB; 2 workers {two:.0f} MB (workers only {two_workers:.0f} MB): "
            f"the second worker adds {100 * (two - one) / one:.0f}% (whole tree) / "
            f"{100 * (two_workers - one) / one:.0f}% (workers only)."
        )
        workers_rows = [r for r in mem[2] if r["role"] == "worker"]
        if workers_rows:
            added = max(r["private"] for r in workers_rows)
            rss = max(r["rss"] for r in workers_rows)
            print(
                f"A second worker adds its private pages, {added:.0f} MB: {100 * added / rss:.1f}% of a worker's "
                f"{rss:.0f} MB RSS (the rest of its RSS is shared with the first)."
            )


def swap_part(args: argparse.Namespace, scenarios: dict[str, Any], env: dict[str, str]) -> None:
    from services.factories import open_registry
    from services.settings import get_settings

    registry = open_registry(get_settings())
    name = args.model.partition("@")[0]
    versions = [mv.version for mv in registry.versions(name)]
    if len(versions) < 2:
        print(f"swap: {name} has one version; register a second to test swaps")
        return
    a, b = versions[-2], versions[-1]
    registry.set_alias(name, "production", a)
    proc, url = start_server(2, {**env, "PALAVRA_API_KEYS": "bench-key", "PALAVRA_MODEL_REFRESH_S": "1"})
    method, path, lines = scenarios["neighbors k=10"]
    try:
        load = subprocess.Popen(
            [
                "wrk",
                "-t2",
                "-c16",
                f"-d{int(args.duration) + 6}s",
                "--timeout",
                "10s",
                "-s",
                str(LUA),
                url + path,
            ],
            env={**os.environ, "WRK_INPUT": str(lines), "WRK_METHOD": method},
            stdout=subprocess.PIPE,
            text=True,
        )
        moves = 0
        for i in range(int((args.duration + 2) / 2)):
            time.sleep(2)
            target = b if i % 2 == 0 else a
            r = httpx.put(
                f"{url}/v1/models/{name}/aliases/production",
                json={"version": target},
                headers={"X-API-Key": "bench-key"},
                timeout=30,
            )
            moves += r.status_code == 200
        out, _ = load.communicate()
        s = json.loads(out.strip().splitlines()[-1])
    finally:
        stop_server(proc)
    failed = sum(s[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts", "non_2xx"))
    print("| workers | conns | alias moves | requests | failed | p99 ms |\n|---|---|---|---|---|---|")
    print(
        f"| 2 | 16 | {moves} ({name}@{a} <-> @{b}) | {s['requests']} | {failed} | {s['p99_us'] / 1000:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True)
    parser.add_argument("--classifier")
    parser.add_argument("--workers", default="1,2", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--conns", default="1,16,64", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--parts", default="inprocess,http,swap")
    parser.add_argument(
        "--only", default="", help="comma-separated words: run only scenarios whose name contains one of them"
    )
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "palavra-serving-bench")
    args = parser.parse_args()

    from pipelines.serving.served_vectors import load_served_vectors
    from services.factories import open_registry
    from services.settings import get_settings

    settings = get_settings()
    registry = open_registry(settings)
    emb = load_served_vectors(
        registry.open(args.model), ann_min_vocab=settings.ann_min_vocab, cache_dir=settings.cache_dir
    )
    clf = None
    texts: list[str] = []
    if args.classifier:
        from pipelines.classifier.artifact import load_classifier

        # the engine the server will use (PALAVRA_CLASSIFIER_ENGINE), loaded as the server loads it
        clf = load_classifier(registry.open(args.classifier), engine=settings.classifier_engine, warm=True)
        texts = told_texts()
    words = frequent_words(emb)
    scenarios = write_inputs(args.work, words, texts)
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        scenarios = {
            k: v for k, v in scenarios.items() if k == "neighbors k=10" or any(w in k for w in wanted)
        }
    table = emb.index.table if emb.index is not None else None
    index = (
        f"ANN {emb.ann['backend']} ef={emb.ann['ef_search']} recall@10={emb.ann['recall_at_10']}"
        if emb.ann
        else "exact"
    )
    tabled = f"neighbour table of {table.width} per word ({emb.ann['table']['method']})" if table else "none"
    print(f"model {args.model}: {len(emb):,} words x {emb.dim}, search: {index}, table: {tabled}\n")
    floors = inprocess(emb, clf, words, texts)
    if "inprocess" in args.parts:
        print("| scenario | in-process p50 ms | p99 ms |\n|---|---|---|")
        for name, (p50, p99) in floors.items():
            print(f"| {name} | {p50:.3f} | {p99:.3f} |")
        print()
    # no job worker processes beside the API: they would share the cores and the memory figures
    env = {**os.environ, "PALAVRA_HOME": str(settings.home), "PALAVRA_LOCAL_WORKERS": "0"}
    if "http" in args.parts:
        http_part(args, scenarios, floors, env)
        print()
    if "swap" in args.parts:
        swap_part(args, scenarios, env)


if __name__ == "__main__":
    main()
