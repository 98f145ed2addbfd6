"""Tiny real vector artifacts for API tests (until trainer fixtures exist): vectors with their normalisation."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import numpy as np
from fastapi.testclient import TestClient

from models.registry import Registry
from models.vectors import WordVectors, save
from pipelines.text.normalize import NormalizeConfig
from services.api.app import create_app
from services.settings import Settings

WORDS = [
    "rei",
    "rainha",
    "homem",
    "mulher",
    "príncipe",
    "princesa",
    "ação",
    "casa",
    "casas",
    "lar",
    "são_paulo",
]
API_KEY = "chave-de-teste-123"


def vectors(*, seed: int = 0, ngrams: bool = False, words: list[str] | None = None) -> WordVectors:
    """Random vectors with two facts built in: rei - homem + mulher = rainha, and casas ~ casa."""
    words = words or WORDS
    rnd = np.random.default_rng(seed)
    base = rnd.normal(size=(len(words), 16)).astype(np.float32)
    if words is WORDS:
        base[1] = base[0] - base[2] + base[3]
        base[8] = base[7] + 0.05 * rnd.normal(size=16)
    grams = rnd.normal(size=(300, 16)).astype(np.float32) if ngrams else None
    return WordVectors(words, base, ngrams=grams)


def register(
    registry: Registry,
    name: str = "w2v",
    *,
    seed: int = 0,
    kind: str = "word2vec",
    aliases: tuple[str, ...] = ("latest",),
    words: list[str] | None = None,
) -> int:
    """Register a tiny vector model the way trainers do; returns its version number."""
    with registry.create(name, kind, aliases=aliases) as w:
        save(
            w,
            vectors(seed=seed, ngrams=kind == "fasttext", words=words),
            normalize=NormalizeConfig().model_dump(mode="json"),
            phrases={"delimiter": "_"},
        )
    return int(w.version.version)  # type: ignore[attr-defined]


def api_settings(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update={"api_keys": [API_KEY], "model_refresh_s": 0.1, **changes})


@contextmanager
def serving(settings: Settings) -> Iterator[TestClient]:
    """A TestClient with the lifespan run (models loaded, alias poller started)."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def wait_ready(proc: subprocess.Popen[bytes], url: str, *, timeout_s: float = 120, failing: str = "") -> None:
    """Poll ``GET /ready`` of a ``palavra serve`` process until every model it must serve is loaded.

    ``failing``: a version expected never to load (a damaged artifact); the wait ends once it is the only one
    missing. Fails the test at the deadline or when the server exits, instead of going on with a server that
    never got ready.
    """
    deadline = time.monotonic() + timeout_s
    expected = f"not loaded: {failing}" if failing else None
    seen = "no answer"
    while True:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "the server exited"
        try:
            r = httpx.get(f"{url}/ready", timeout=1)
            if r.status_code == 200 or (expected is not None and r.json().get("detail") == expected):
                return
            seen = r.text
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"palavra serve did not get ready in {timeout_s:g} s: {seen}"
        time.sleep(0.2)
