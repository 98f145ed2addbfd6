"""CPU time per request inside the ASGI app (no network, no load generator): what routing, dependencies,
validation and serialisation cost on top of the model call. Prints a markdown table.

    PALAVRA_HOME=... .venv/bin/python benchmarks/api_overhead.py [--model NAME] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import time
from typing import Any

from services.api.app import create_app
from services.settings import get_settings


def _scope(app: Any, method: str, path: str, query: bytes, body: bytes) -> dict[str, Any]:
    headers = [
        (b"host", b"bench"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {}, "app": app,
    }  # fmt: skip


async def _call(app: Any, method: str, path: str, query: bytes = b"", body: bytes = b"") -> int:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    status: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(_scope(app, method, path, query, body), receive, send)
    return status[0]


async def main(model: str | None, profile: bool) -> None:
    app = create_app(get_settings())
    suffix = f"&model={model}" if model else ""
    pair = json.dumps({"pairs": [["rei", "rainha"]], **({"model": model} if model else {})}).encode()
    cases = [
        ("GET /health", "GET", "/health", b"", b""),
        ("GET /v1/neighbors k=3", "GET", "/v1/neighbors", f"word=rei&k=3{suffix}".encode(), b""),
        ("POST /v1/similarity (1 pair)", "POST", "/v1/similarity", b"", pair),
    ]
    async with app.router.lifespan_context(app):
        print("| request | CPU µs per request |\n|---|---|")
        for name, method, path, query, body in cases:
            for _ in range(200):
                if (status := await _call(app, method, path, query, body)) != 200:
                    raise SystemExit(f"{name} answered {status}; is a word2vec model registered?")
            started = time.process_time()
            for _ in range(2000):
                await _call(app, method, path, query, body)
            print(f"| {name} | {(time.process_time() - started) / 2000 * 1e6:.0f} |")
        if profile:
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(2000):
                await _call(app, "POST", "/v1/similarity", b"", pair)
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.model, args.profile))
