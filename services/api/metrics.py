"""Prometheus metrics: requests, latency histograms and errors per route, and which model versions are loaded.

With several workers, ``palavra serve`` points PROMETHEUS_MULTIPROC_DIR (and ``settings.metrics_dir``) at a fresh
folder, so ``GET /metrics`` from any worker reports the sum over all of them.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.model_store import Loaded

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _mounted(scope: Scope) -> str | None:
    """``/docs-assets/{path}`` for a file served by an app mounted there (it leaves no route in the scope)."""
    endpoint = scope.get("endpoint")
    if endpoint is None or inspect.isfunction(endpoint) or inspect.ismethod(endpoint):
        return None  # a plain route's function: not a mount
    mount = scope.get("root_path", "")[len(scope.get("app_root_path", "")) :]
    return f"{mount}/{{path}}" if mount else None


class Metrics:
    """One app's collectors, kept in their own registry (so tests can build many apps in one process)."""

    def __init__(self, *, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "palavra_http_requests",
            "HTTP requests answered.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "palavra_http_request_duration_seconds",
            "Time from request to last response byte.",
            ["method", "route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "palavra_http_errors",
            "Responses with status >= 400.",
            ["route", "status"],
            registry=self.registry,
        )
        self.models = Gauge(
            "palavra_model_loaded",
            "1 for each model version loaded in a worker.",
            ["name", "version", "kind"],
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self._shown: set[tuple[str, str, str]] = set()

    def set_models(self, loaded: list[Loaded[Any]]) -> None:
        # dropped versions go to 0 rather than vanish: multiprocess files keep a series once written
        now = {(i.version.name, str(i.version.version), i.version.kind) for i in loaded}
        for labels in self._shown - now:
            self.models.labels(*labels).set(0)
        for labels in now:
            self.models.labels(*labels).set(1)
        self._shown = now

    def exposition(self) -> bytes:
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        self._forget_dead_workers(self.multiprocess_dir)
        attempts = 3
        while True:
            attempts -= 1
            combined = CollectorRegistry()
            multiprocess.MultiProcessCollector(combined, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
            try:
                return generate_latest(combined)
            except (
                FileNotFoundError
            ):  # another worker's scrape removed a dead worker's file between list and read
                if not attempts:
                    raise

    @staticmethod
    def _forget_dead_workers(folder: Path) -> None:
        """Drop the live gauges (the models a worker has loaded) of workers that died: a worker killed and started
        again by uvicorn went on being reported as holding its models under its old pid. Counters are kept: the
        requests a dead worker answered were answered."""
        for file in folder.glob("gauge_live*_*.db"):
            pid = file.stem.rsplit("_", 1)[1]
            if pid.isdigit() and not _alive(int(pid)):
                # two scrapes at once (two workers) may both find it: the second finds the file gone
                with contextlib.suppress(FileNotFoundError):
                    multiprocess.mark_process_dead(int(pid), str(folder))  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class MetricsMiddleware:
    """Pure ASGI (no per-request task or body copy): counts and times every HTTP request by route template."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            # unmatched paths share one label, so random URLs cannot blow up the series count; a file under a
            # mount (the docs' assets) is counted under the mount's path
            label = getattr(route, "path", None) or _mounted(scope) or "unmatched"
            self.metrics.latency.labels(scope["method"], label).observe(time.perf_counter() - started)
            self.metrics.requests.labels(scope["method"], label, str(status)).inc()
            if status >= 400:
                self.metrics.errors.labels(label, str(status)).inc()
