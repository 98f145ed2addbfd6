"""Soak: a bounded loopback load of mixed queries while jobs train and the production alias moves.

    PALAVRA_HOME=/tmp/soak/home .venv/bin/python benchmarks/soak.py --model NAME [--classifier NAME]
        [--duration 240] [--conns 8] [--window 20] [--job-every 60] [--move-every 10] [--workers 2]

Starts `palavra serve --workers N` (with its local job workers) on a free port with a write key, then for
``--duration`` seconds:
- ``--conns`` client threads send a mix of `GET /v1/neighbors`, `POST /v1/similarity`, `POST /v1/analogy` and, with
  ``--classifier``, `POST /v1/classify`, each on its own keep-alive connection;
- every ``--job-every`` seconds a small word2vec job is submitted that registers a new version of ``--model`` (from a
  corpus file the script writes under the data root);
- every ``--move-every`` seconds the `production` alias of ``--model`` moves to another of its versions;
- every 5 s the resident memory of the server and of each of its processes is read from /proc.

Prints one markdown row per ``--window`` seconds (requests, errors, p50 and p99 in ms, RSS of each serving worker)
and a summary: errors by kind, jobs submitted and succeeded, alias moves, and each worker's RSS growth from the end
of the first window (warm-up) to the end of the run. Errors are any status other than 200 and any transport failure.
Needs a model registered under ``--model`` in ``PALAVRA_HOME`` (e.g. from `make quickstart` or
`palavra train word2vec`).
"""

from __future__ import annotations

import argparse
import collections
import csv
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TOLD = ROOT.parent / "shared" / "data" / "classification" / "told-br" / "validation_1annotator.csv"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _role(cmd: str) -> str:
    if "forkserver" in cmd:
        return "job forkserver"
    if "spawn_main" in cmd or "multiprocessing" in cmd:
        return "worker"
    return cmd[-60:]


def serving_processes(pid: int) -> dict[int, str]:
    """pid -> role for the server and the processes it started (job workers are told apart by their command)."""
    roles = {pid: "server"}
    for child in _children(pid):
        cmd = _cmdline(child)
        if "resource_tracker" in cmd:
            continue
        roles[child] = _role(cmd)
        for grandchild in _children(child):
            if "resource_tracker" not in (gcmd := _cmdline(grandchild)):
                roles[grandchild] = _role(gcmd)
    return roles


class Recorder:
    """Latencies and errors per window, thread-safe."""

    def __init__(self, window: float) -> None:
        self.window = window
        self.start = time.monotonic()
        self.lock = threading.Lock()
        self.latencies: dict[int, list[float]] = collections.defaultdict(list)
        self.errors: dict[int, int] = collections.defaultdict(int)
        self.kinds: collections.Counter[str] = collections.Counter()

    def record(self, seconds: float, error: str | None) -> None:
        slot = int((time.monotonic() - self.start) // self.window)
        with self.lock:
            self.latencies[slot].append(seconds)
            if error is not None:
                self.errors[slot] += 1
                self.kinds[error] += 1


def _requests(words: list[str], texts: list[str], model: str, classifier: str | None) -> list[Any]:
    rnd = random.Random(0)
    pick = lambda: rnd.choice(words)  # noqa: E731
    reqs: list[Any] = []
    for _ in range(400):
        reqs.append(("GET", "/v1/neighbors", {"params": {"word": pick(), "k": 10, "model": model}}))
        reqs.append(("POST", "/v1/similarity", {"json": {"pairs": [[pick(), pick()]], "model": model}}))
        reqs.append(
            (
                "POST",
                "/v1/analogy",
                {"json": {"positive": [pick(), pick()], "negative": [pick()], "model": model}},
            )
        )
        if classifier and texts:
            reqs.append(
                ("POST", "/v1/classify", {"json": {"texts": [rnd.choice(texts)], "model": classifier}})
            )
    rnd.shuffle(reqs)
    return reqs


def client(url: str, reqs: list[Any], rec: Recorder, stop: threading.Event, offset: int) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        i = offset
        while not stop.is_set():
            method, path, kw = reqs[i % len(reqs)]
            i += 1
            t0 = time.perf_counter()
            error = None
            try:
                r = http.request(method, path, **kw)
                if r.status_code != 200:
                    error = f"{r.status_code} {path}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__} {path}"
            rec.record(time.perf_counter() - t0, error)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--classifier")
    ap.add_argument("--duration", type=float, default=240)
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--window", type=float, default=20)
    ap.add_argument("--job-every", type=float, default=60)
    ap.add_argument("--move-every", type=float, default=10)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    home = Path(os.environ.get("PALAVRA_HOME", "~/.palavra")).expanduser()
    data_root = Path(os.environ.get("PALAVRA_DATA_ROOT", home / "data")).expanduser()
    data_root.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(16)
    env = {
        **os.environ,
        "PALAVRA_API_KEYS": key,
        "PALAVRA_HOME": str(home),
        "PALAVRA_DATA_ROOT": str(data_root),
    }

    sys.path.insert(0, str(ROOT))
    from models.vectors import load as load_vectors
    from services.factories import open_registry
    from services.settings import Settings

    settings = Settings(home=home, data_root=data_root)
    registry = open_registry(settings)
    stored = load_vectors(registry.open(args.model))
    vocab, counts = stored.vectors.words, stored.vectors.counts
    order = np.argsort(-counts)[:5000] if counts is not None else np.arange(min(5000, len(vocab)))
    # the jobs train new versions on these words only, so every version the alias moves to knows every query word
    words = [vocab[i] for i in order if vocab[i].isalpha()][:2000]
    texts: list[str] = []
    if args.classifier and TOLD.is_file():
        with TOLD.open(encoding="utf-8") as f:
            texts = [row["text"] for row in csv.DictReader(f) if row["text"].strip()][:500]
    corpus = data_root / "soak-corpus.txt"
    rnd = random.Random(1)
    corpus.write_text(
        "\n".join(" ".join(rnd.choice(words) for _ in range(12)) for _ in range(3000)) + "\n",
        encoding="utf-8",
    )

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.cli.main",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            raise SystemExit("server did not become ready")
        run(args, url, key, proc.pid, words, texts, registry)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def run(
    args: argparse.Namespace,
    url: str,
    key: str,
    pid: int,
    words: list[str],
    texts: list[str],
    registry: Any,
) -> None:
    rec = Recorder(args.window)
    stop = threading.Event()
    reqs = _requests(words, texts, args.model, args.classifier)
    threads = [
        threading.Thread(target=client, args=(url, reqs, rec, stop, i * 97), daemon=True)
        for i in range(args.conns)
    ]
    memory: dict[int, list[tuple[float, float]]] = collections.defaultdict(list)
    roles: dict[int, str] = {}
    jobs: list[str] = []
    moves = 0
    move_errors = 0
    headers = {"x-api-key": key}
    for t in threads:
        t.start()
    started = time.monotonic()
    next_job = started + 5
    next_move = started + args.move_every
    next_mem = started
    with httpx.Client(base_url=url, timeout=30, headers=headers) as admin:
        while (now := time.monotonic()) - started < args.duration:
            if now >= next_mem:
                roles = serving_processes(pid) | roles
                for p in serving_processes(pid):
                    rss = _rss_mb(p)
                    if rss is not None:
                        memory[p].append((now - started, rss))
                next_mem = now + 5
            if now >= next_job:
                r = admin.post(
                    "/v1/jobs",
                    json={
                        "kind": "word2vec",
                        "config": {
                            "name": args.model,
                            "corpus": ["soak-corpus.txt"],
                            "evaluate": False,
                            "train": {
                                "algorithm": "word2vec",
                                "min_count": 1,
                                "epochs": 1,
                                "vector_size": 50,
                            },
                        },
                    },
                )
                if r.status_code == 202:
                    jobs.append(r.json()["id"])
                else:
                    print(f"job refused: {r.status_code} {r.text[:200]}", file=sys.stderr)
                next_job = now + args.job_every
            if now >= next_move:
                versions = [v.version for v in registry.versions(args.model)]
                target = random.choice(versions)
                r = admin.put(f"/v1/models/{args.model}/aliases/production", json={"version": target})
                moves += 1
                move_errors += r.status_code != 200
                next_move = now + args.move_every
            time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        states = collections.Counter(admin.get(f"/v1/jobs/{j}").json().get("state") for j in jobs)
    report(args, rec, memory, roles, jobs, states, moves, move_errors)


def report(
    args: argparse.Namespace,
    rec: Recorder,
    memory: dict[int, list[tuple[float, float]]],
    roles: dict[int, str],
    jobs: list[str],
    states: collections.Counter[str],
    moves: int,
    move_errors: int,
) -> None:
    serving = [p for p, samples in memory.items() if samples and samples[0][0] < 10]  # alive from the start
    print(
        f"| window (s) | requests | errors | p50 ms | p99 ms | {' | '.join(f'RSS MB, pid {p}' for p in serving)} |"
    )
    print("|---|---|---|---|---|" + "---|" * len(serving))
    for slot in sorted(rec.latencies):
        lat = np.array(rec.latencies[slot]) * 1000
        end = (slot + 1) * args.window
        rss = []
        for p in serving:
            before = [m for t, m in memory[p] if t <= end]
            rss.append(f"{before[-1]:.0f}" if before else "-")
        print(
            f"| {slot * args.window:.0f}-{end:.0f} | {len(lat)} | {rec.errors.get(slot, 0)} | "
            f"{np.percentile(lat, 50):.1f} | {np.percentile(lat, 99):.1f} | {' | '.join(rss)} |"
        )
    total = sum(len(v) for v in rec.latencies.values())
    print(f"\nrequests: {total}, errors: {sum(rec.errors.values())} {dict(rec.kinds)}")
    print(f"jobs submitted: {len(jobs)}, states at the end: {dict(states)}")
    print(f"alias moves: {moves}, refused: {move_errors}")
    for p in serving:
        samples = memory[p]
        warm = [m for t, m in samples if t >= args.window]
        if warm:
            print(
                f"process {p} ({roles.get(p, '?')}): RSS {warm[0]:.0f} MB after warm-up, {warm[-1]:.0f} MB at the end "
                f"({warm[-1] - warm[0]:+.0f} MB), max {max(warm):.0f} MB"
            )


if __name__ == "__main__":
    main()
