"""``POST /v1/complete`` and ``POST /v1/generate`` (JSON and server-sent events) on a tiny trained language model."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from models.registry import Registry
from services.settings import Settings
from tests.lm_helpers import train_tiny_lm
from tests.services.vector_models import api_settings, register, serving


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, pt_corpus_file: Path) -> Iterator[TestClient]:
    """One server for the module (training is the slow part): read-only requests only."""
    root = tmp_path_factory.mktemp("api-lm")
    settings = Settings(home=root / "home", data_mirror=None, data_root=root / "data", local_workers=0)
    settings.home.mkdir(parents=True)
    registry = Registry(settings.home, settings.effective_database_url)
    train_tiny_lm(registry, pt_corpus_file, root / "cache", name="frases")
    register(registry, "w2v")
    with serving(api_settings(settings, max_text_chars=60, max_k=10)) as client:
        yield client


def _events(body: str) -> list[tuple[str, Any]]:
    out = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_api_lm_routes(client: TestClient) -> None:
    r = client.post("/v1/complete", json={"text": "o menino", "k": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == {"name": "frases", "version": 1, "kind": "lm"}
    assert r.headers["X-Palavra-Model"] == "frases@1"
    assert len(body["candidates"]) == 3
    assert body["tokens"] == ["o", "menino"]

    ask = {
        "prompt": "a rainha",
        "max_tokens": 10,
        "temperature": 1.0,
        "top_k": 20,
        "seed": 7,
        "model": "frases",
    }
    first = client.post("/v1/generate", json=ask).json()
    second = client.post("/v1/generate", json=ask).json()
    assert first == second
    assert first["text"].startswith("A rainha ")
    assert len(first["tokens"]) == 10

    greedy = [
        client.post("/v1/generate", json={"prompt": "o gato", "temperature": 0, "seed": s}).json()
        for s in (1, 2)
    ]
    assert greedy[0]["tokens"] == greedy[1]["tokens"]

    streamed = client.post("/v1/generate", json={**ask, "stream": True})
    assert streamed.status_code == 200
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = _events(streamed.text)
    assert [name for name, _ in events] == ["token"] * len(first["tokens"]) + ["done"]
    assert [data["token"] for name, data in events[:-1]] == first["tokens"]
    assert events[-1][1] == first


def test_api_lm_report_has_its_per_epoch_curves(client: TestClient) -> None:
    """The report of a language model gave "curves": [] though its metadata holds a per-epoch history."""
    report = client.get("/v1/models/frases/versions/latest/report").json()
    assert report["kind"] == "lm"
    assert report["curves"]
    assert [row["epoch"] for row in report["curves"]] == list(range(1, len(report["curves"]) + 1))
    assert {"train_loss", "val_loss", "val_perplexity"} <= set(report["curves"][0])
    assert report["metrics"]["val_perplexity"] > 1
    assert 1 <= report["best_epoch"] <= len(report["curves"])  # the epoch whose weights were kept


def test_api_complete_answers_a_short_text_on_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No hop through the thread pool, where 16 requests at once fought for the GIL (benchmarks/results/lm.md)."""
    from pipelines.lm.predictor import LanguageModel

    threads: list[str] = []
    real = LanguageModel.complete

    def spy(self: LanguageModel, text: str, k: int = 5) -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        return real(self, text, k)

    assert client.post("/v1/complete", json={"text": "o menino", "k": 3}).status_code == 200  # loaded
    monkeypatch.setattr(LanguageModel, "complete", spy)
    r = client.post("/v1/complete", json={"text": "a rainha foi", "k": 2})
    assert r.status_code == 200, r.text
    assert len(r.json()["candidates"]) == 2
    assert len(threads) == 1
    assert not threads[0].startswith("AnyIO worker"), threads

    # a text longer than the event loop takes is read in a worker thread, with the same answer
    monkeypatch.setattr("services.api.routes.lm.EVENT_LOOP_CHARS", 5)
    again = client.post("/v1/complete", json={"text": "a rainha foi", "k": 2})
    assert again.json() == r.json()
    assert threads[1].startswith("AnyIO worker"), threads


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/generate", {"prompt": "oi", "top_p": 0}, 422),
        ("/v1/generate", {"prompt": "oi", "top_p": 1.5}, 422),
        ("/v1/generate", {"prompt": "oi", "temperature": -0.5}, 422),
        ("/v1/generate", {"prompt": "oi", "temperature": 3.4028235677973366e38}, 422),
        ("/v1/generate", {"prompt": "oi", "max_tokens": 0}, 422),
        ("/v1/generate", {"prompt": ""}, 422),
        ("/v1/generate", {"prompt": "   ", "stream": True}, 422),
        ("/v1/generate", {"prompt": "a" * 61}, 413),
        ("/v1/generate", {"prompt": "oi", "temprature": 1}, 422),
        ("/v1/complete", {"text": "oi", "k": 0}, 422),
        ("/v1/complete", {"text": "oi", "k": 11}, 413),
        ("/v1/complete", {"text": "oi", "model": "w2v"}, 422),
        ("/v1/complete", {"text": "oi", "model": "frases@9"}, 404),
        # values of the wrong JSON type were read as numbers (true as k=1)
        ("/v1/complete", {"text": "oi", "k": "5"}, 422),
        ("/v1/complete", {"text": "oi", "k": 5.0}, 422),
        ("/v1/complete", {"text": "oi", "k": True}, 422),
        ("/v1/generate", {"prompt": "oi", "max_tokens": "3"}, 422),
        ("/v1/generate", {"prompt": "oi", "seed": "1"}, 422),
        ("/v1/generate", {"prompt": "oi", "temperature": "0.5"}, 422),
        ("/v1/generate", {"prompt": "oi", "stream": "true"}, 422),
        ("/v1/generate", {"prompt": "oi", "max_tokens": 1e3}, 422),
        # seeds past 32 bits repeated smaller ones (torch's generator keeps 32 bits)
        ("/v1/generate", {"prompt": "oi", "seed": 2**32}, 422),
    ],
)
def test_api_lm_bad_parameters(client: TestClient, path: str, body: dict[str, Any], status: int) -> None:
    r = client.post(path, json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]
    assert r.json()["detail"]


def test_api_lm_blank_and_long_texts_are_named_by_their_field(client: TestClient) -> None:
    """Zero-width or NUL-only texts were read as one unknown token (200); a long prompt was "text 0"."""
    for path, field in (("/v1/complete", "text"), ("/v1/generate", "prompt")):
        r = client.post(path, json={field: "\u200b\u2060\u0000"})
        assert r.status_code == 422, r.text
        assert r.json()["detail"].startswith(f"empty {field} (nothing but whitespace")
        r = client.post(path, json={field: "a" * 61})
        assert r.status_code == 413, r.text
        assert r.json()["detail"].startswith(f"{field} has 61 characters")


def test_api_lm_nan_is_named_as_such(client: TestClient) -> None:
    """NaN was refused as "less than or equal to 100" (temperature) or "... to 1" (top_p)."""
    for field in ("temperature", "top_p"):
        r = client.post(
            "/v1/generate",
            content=f'{{"prompt": "oi", "{field}": NaN}}',
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 422, r.text
        assert "finite number" in r.json()["detail"], r.text


def test_api_generate_stops_drawing_when_the_client_hangs_up(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A non-streamed generation went on to its last token after the client had gone: two requests of 2,000
    tokens cost the worker 3.3 s of CPU for nobody (a hostile probe). The streamed one stops at its next write."""
    from starlette.requests import Request

    from pipelines.lm.predictor import STOP_CHECK_TOKENS, LanguageModel

    drawn: list[int] = []
    stream = LanguageModel.stream

    def counted(self: LanguageModel, prompt: str, sampling: Any) -> Iterator[str]:
        for token in stream(self, prompt, sampling):
            drawn.append(1)
            yield token

    asked: list[int] = []

    async def gone(self: Request) -> bool:
        asked.append(1)
        return len(asked) >= 2  # the client leaves while the first tokens are drawn

    monkeypatch.setattr(LanguageModel, "stream", counted)
    monkeypatch.setattr(Request, "is_disconnected", gone)
    r = client.post("/v1/generate", json={"prompt": "era uma vez", "max_tokens": 500, "seed": 1})
    assert r.status_code == 499
    assert len(drawn) == 2 * STOP_CHECK_TOKENS  # not 500
    monkeypatch.setattr(Request, "is_disconnected", lambda _self: _false())
    drawn.clear()
    r = client.post("/v1/generate", json={"prompt": "era uma vez", "max_tokens": 50, "seed": 1})
    assert r.status_code == 200
    assert len(r.json()["tokens"]) == len(drawn) == 50


async def _false() -> bool:
    return False
