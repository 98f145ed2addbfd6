"""Where a searched ``GET /v1/neighbors`` request spends its time inside a server: timers around the route's steps.

    PALAVRA_HOME=... .venv/bin/python benchmarks/neighbors_steps.py --model corpus-w2v [--k 60] [--requests 600]

Serves the app under uvicorn in a child process (as ``palavra serve`` does with one worker), with timers wrapped
around the HNSW search, ``top_k``, the response model, the response body, the model lookup and the whole
thread-pool function. Then sends sequential requests for words drawn from the 20k most frequent, three rounds,
and prints per round the client's p50 (a k=50 table read first, for comparison) and each step's p50 in ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STEPS: dict[str, list[float]] = {}


def _timed(owner: Any, name: str, step: str) -> None:
    inner: Callable[..., Any] = getattr(owner, name)
    STEPS[step] = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            STEPS[step].append(time.perf_counter() - started)

    setattr(owner, name, wrapper)


def serve(port: int) -> None:
    sys.path.insert(0, str(ROOT))
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    import uvicorn

    import models.ann
    import models.vectors
    import services.api.model_store
    import services.api.routes.neighbors as route
    from services.api.app import create_app
    from services.settings import Settings

    _timed(models.ann.HnswIndex, "search", "HNSW search")
    _timed(models.vectors.WordVectors, "top_k", "top_k")
    _timed(route, "_single", "response model")
    _timed(route, "reply", "response body")
    _timed(services.api.model_store.ModelStore, "get", "model lookup")
    _timed(route, "_search", "thread-pool function")
    app = create_app(Settings(local_workers=0))

    @app.get("/_steps", include_in_schema=False)
    def steps() -> dict[str, Any]:
        out = {k: round(statistics.median(v) * 1000, 3) if v else None for k, v in STEPS.items()}
        for v in STEPS.values():
            v.clear()
        return out

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--k", type=int, default=60)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--port", type=int, default=8125)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.port)
        return
    import httpx

    sys.path.insert(0, str(ROOT))
    from models.vectors import load
    from services.factories import open_registry
    from services.settings import get_settings

    words = load(open_registry(get_settings()).open(args.model)).vectors.words[:20_000]
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--model", args.model, "--port", str(args.port)]
    )
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=60)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if client.get("/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        rnd = random.Random(0)

        def client_p50(k: int) -> float:
            times = []
            for word in rnd.sample(words, args.requests):
                started = time.perf_counter()
                client.get(
                    "/v1/neighbors", params={"word": word, "k": k, "model": args.model}
                ).raise_for_status()
                times.append(time.perf_counter() - started)
            return statistics.median(times) * 1000

        for round_ in range(1, 4):
            table = client_p50(50)
            client.get("/_steps")  # the table reads' figures are not the searched request's
            searched = client_p50(args.k)
            steps = client.get("/_steps").json()
            shown = ", ".join(f"{k} {v}" for k, v in steps.items())
            print(
                f"round {round_}: client p50 k=50 {table:.3f} ms, k={args.k} {searched:.3f} ms; server p50 ms: {shown}"
            )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
