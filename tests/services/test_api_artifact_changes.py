"""A served model's files changed on disk: the live server neither crashes nor changes its answers, and a damaged
artifact is a 503 for that model alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from models.registry import Registry
from services.api.app import create_app
from services.settings import Settings
from tests.conftest import REPO_ROOT
from tests.services.jobs_helpers import free_port
from tests.services.vector_models import register, wait_ready

PAIRS = {"pairs": [["rei", "rainha"], ["casa", "casas"], ["homem", "mulher"]]}


def _damage(path: Path, how: str) -> None:
    """Change an artifact file the way an operator or a faulty disk might (the registry made it read-only)."""
    path.chmod(0o644)
    if how == "truncate":
        os.truncate(path, 0)
    else:  # same size, every float of the matrix now 2.5
        raw = bytearray(path.read_bytes())
        header = len(raw) - 11 * 16 * 4
        raw[header:] = np.full(11 * 16, 2.5, dtype=np.float32).tobytes()
        path.write_bytes(bytes(raw))


def _ask(url: str, **params: str) -> tuple[dict[str, object], dict[str, object]]:
    sim = httpx.post(f"{url}/v1/similarity", json={**PAIRS, **params}, timeout=10)
    near = httpx.get(f"{url}/v1/neighbors", params={"word": "rei", "k": 3, **params}, timeout=10)
    assert sim.status_code == 200, sim.text
    assert near.status_code == 200, near.text
    return sim.json()["results"], near.json()["neighbors"]


def test_api_serve_keeps_answering_when_a_loaded_artifact_changes(
    settings: Settings, registry: Registry
) -> None:
    """Truncating or overwriting a memory-mapped file of a loaded model used to kill the worker (SIGBUS) or make it
    serve cosines of 2.5; the server maps verified private copies, so it keeps its answers."""
    register(registry, "w2v")  # the default, loaded at start
    register(registry, "broken")
    _damage(registry.get("broken@1").path / "vectors_norm.npy", "truncate")
    folder = registry.get("w2v@1").path
    port = free_port()
    env = {
        **os.environ,
        "PALAVRA_HOME": str(settings.home),
        "PALAVRA_LOCAL_WORKERS": "0",
        "PALAVRA_DEFAULT_MODEL": "w2v",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "serve", "--port", str(port), "--workers", "1"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url)  # broken@1 failed to load: it answers 503 itself, the server is ready
        ready = httpx.get(f"{url}/ready", timeout=10).json()
        assert ready["status"] == "ready"
        assert "vectors_norm.npy" in ready["errors"]["broken@1"]
        before = _ask(url)

        _damage(folder / "vectors_norm.npy", "overwrite")
        _damage(folder / "vectors.npy", "overwrite")
        assert _ask(url) == before
        _damage(folder / "vectors_norm.npy", "truncate")
        _damage(folder / "vectors.npy", "truncate")
        assert _ask(url) == before
        assert _ask(url, model="w2v@1") == before

        r = httpx.get(f"{url}/v1/neighbors", params={"word": "rei", "model": "broken"}, timeout=10)
        assert r.status_code == 503
        assert r.json()["error"] == "IntegrityError"
        assert "vectors_norm.npy" in r.json()["detail"]
        assert _ask(url) == before  # the other model still answers
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


@pytest.mark.parametrize("how", ["truncate", "overwrite"])
def test_api_damaged_artifact_is_503_for_that_model_only(
    settings: Settings, registry: Registry, how: str
) -> None:
    register(registry, "ok")
    register(registry, "bad")
    _damage(registry.get("bad@1").path / "vectors_norm.npy", how)
    with TestClient(create_app(settings)) as client:
        r = client.post("/v1/similarity", json={**PAIRS, "model": "bad"})
        assert r.status_code == 503
        assert r.json()["error"] == "IntegrityError"
        assert r.headers["retry-after"]
        ready = client.get("/ready")  # the default (ok) is loaded: the server is ready, bad@1 listed
        assert ready.status_code == 200, ready.text
        assert "bad@1" in ready.json()["errors"]
        ok = client.post("/v1/similarity", json={**PAIRS, "model": "ok"})
        assert ok.status_code == 200
        assert all(abs(float(p["cosine"])) <= 1.0 + 1e-6 for p in ok.json()["results"])
