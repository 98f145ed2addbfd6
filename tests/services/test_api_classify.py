"""/v1/classify wiring: model choice, limits and response shape, with a registered keyword model standing in for
the trained MLP (the store's loaders are swapped through dependency_overrides, as a deployment could)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from models.registry import ModelVersion, Registry
from pipelines.classifier.predictor import Classification
from services.api.app import create_app
from services.api.deps import get_store
from services.api.loaders import loaders_for
from services.api.model_store import ModelStore
from services.settings import Settings
from tests.conftest import review_run
from tests.services.vector_models import api_settings, register


class KeywordClassifier:
    """Label 1 when a text holds one of the artifact's keywords: same classify() contract as the trained one."""

    def __init__(self, keywords: list[str]) -> None:
        self.keywords = keywords

    def classify(self, texts: list[str]) -> list[Classification]:
        out = []
        for text in texts:
            p = 0.9 if any(k in text.lower() for k in self.keywords) else 0.2
            out.append(Classification(label=str(int(p > 0.5)), scores={"0": 1 - p, "1": p}))
        return out

    def decision(self) -> dict[str, object]:
        return {"rule": "argmax", "biases": None, "threshold": None}


@pytest.fixture
def client(settings: Settings, registry: Registry) -> TestClient:
    for words in (["idiota"], ["idiota", "burro"]):
        with registry.create("toxico", "classifier") as w:
            w.write_json("keywords.json", words)
    registry.set_alias("toxico", "production", 2)
    register(registry, "w2v")
    settings = api_settings(settings, max_batch=4, max_text_chars=50)

    def keywords(reg: Registry, mv: ModelVersion) -> KeywordClassifier:
        return KeywordClassifier(reg.open(mv.ref, kind="classifier").read_json("keywords.json"))

    store = ModelStore(registry, {**loaders_for(settings), "classifier": keywords}, refresh_s=0.1)
    store.start(poll=False)
    app = create_app(settings)
    app.dependency_overrides[get_store] = lambda: store
    return TestClient(app, raise_server_exceptions=False)  # no lifespan: the overriding store is the one used


def test_api_classify_labels_each_text_and_names_the_model(client: TestClient) -> None:
    r = client.post("/v1/classify", json={"texts": ["que idiota", "bom dia", "burro"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == {"name": "toxico", "version": 2, "kind": "classifier"}
    assert [p["label"] for p in body["results"]] == ["1", "0", "1"]
    assert body["results"][0]["scores"] == {"0": pytest.approx(0.1), "1": pytest.approx(0.9)}
    assert body["decision"] == {"rule": "argmax", "biases": None, "threshold": None}


def test_api_classify_pinned_version(client: TestClient) -> None:
    body = client.post("/v1/classify", json={"texts": ["burro"], "model": "toxico@1"}).json()
    assert body["model"]["version"] == 1
    assert body["results"][0]["label"] == "0"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"texts": ["a"] * 5}, 413),
        ({"texts": ["a" * 51]}, 413),
        ({"texts": []}, 422),
        ({"texts": ["oi"], "model": "w2v"}, 422),
        ({"texts": ["oi"], "model": "toxico@7"}, 404),
    ],
)
def test_api_classify_limits_and_errors(client: TestClient, body: dict[str, Any], status: int) -> None:
    r = client.post("/v1/classify", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]


@pytest.mark.parametrize("engine", ["torch", "numpy"])
def test_api_classify_real_classifier_with_either_engine(
    settings: Settings, registry: Registry, reviews_csv: dict[str, Any], engine: str
) -> None:
    from pipelines.classifier.train import train_classifier

    train_classifier(review_run(reviews_csv), registry=registry)
    settings = api_settings(settings, classifier_engine=engine)
    with TestClient(create_app(settings)) as client:
        r = client.post(
            "/v1/classify",
            json={"texts": ["Adorei, produto excelente e entrega rápida", "Chegou quebrado, péssimo, odiei"]},
        )
        # nothing to read (invisible characters only) is refused, not given a constant answer
        # (a Hangul filler, the blank Braille pattern, a lone combining accent: a hostile probe got labels for them)
        blank = client.post(
            "/v1/classify",
            json={"texts": ["oi", "\u200b", "\u0000 \ufeff", "\u3164", "\u2800", "\u0301", "é"]},
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == {"name": "sentimento", "version": 1, "kind": "classifier"}
    assert [p["label"] for p in body["results"]] == ["pos", "neg"]
    from pipelines.classifier.artifact import load_classifier

    assert body["decision"] == load_classifier(registry.open("sentimento@1"), engine="numpy").decision()
    assert blank.status_code == 422, blank.text
    assert blank.json()["positions"] == [1, 2, 3, 4, 5]


def test_api_default_engine_serves_classifiers_without_importing_torch(
    settings: Settings, registry: Registry, reviews_csv: dict[str, Any]
) -> None:
    """A serving worker on the default engine never loads torch (~140 MB of private memory per worker)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from pipelines.classifier.train import train_classifier

    train_classifier(review_run(reviews_csv), registry=registry)
    assert Settings.model_fields["classifier_engine"].default == "numpy"
    script = (
        "import sys, json\n"
        "from fastapi.testclient import TestClient\n"
        "from services.api.app import create_app\n"
        "from services.settings import Settings\n"
        f"settings = Settings(home={str(settings.home)!r}, local_workers=0)\n"
        "with TestClient(create_app(settings)) as client:\n"
        "    r = client.post('/v1/classify', json={'texts': ['Adorei, produto excelente']})\n"
        "print(json.dumps({'status': r.status_code, 'label': r.json()['results'][0]['label'],\n"
        "                  'torch': 'torch' in sys.modules}))\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALAVRA_")}
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"status": 200, "label": "pos", "torch": False}


def test_api_text_that_is_not_unicode_is_422_and_the_connection_stays_open(
    settings: Settings, registry: Registry, reviews_csv: dict[str, Any]
) -> None:
    """A JSON lone surrogate escape ("\\ud800") is valid JSON but not text: a 422 in the error shape on a
    keep-alive connection that then answers the next request (a 500 made the server drop the connection)."""
    import http.client
    import json
    import socket
    import threading

    import uvicorn

    from pipelines.classifier.train import train_classifier

    train_classifier(review_run(reviews_csv), registry=registry)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(create_app(api_settings(settings)), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(600):
            try:
                conn.request("GET", "/ready")
                if conn.getresponse().read() and server.started:
                    break
            except OSError:
                conn.close()
            threading.Event().wait(0.05)
        answers = []
        for body in (b'{"texts": ["ola \\ud800"]}', b'{"texts": ["Adorei, produto excelente"]}'):
            conn.request("POST", "/v1/classify", body=body, headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            answers.append((r.status, json.loads(r.read()), r.getheader("connection")))
        conn.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    (status, body, connection), (next_status, next_body, _) = answers
    assert status == 422, body
    assert body["error"] == "InvalidInput"
    assert "lone surrogate (U+D800)" in body["detail"]
    assert connection != "close"
    assert next_status == 200, next_body
    assert next_body["results"][0]["label"] == "pos"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/classify", b'{"texts": ["bom", "ola \\udcff"]}'),
        ("/v1/classify", b'{"texts": ["bom"], "model": "toxico\\ud800"}'),
        ("/v1/neighbors", b'{"words": ["rei\\udfff"]}'),
        ("/v1/similarity", b'{"pairs": [["rei", "\\ud800"]]}'),
        ("/v1/analogy", b'{"positive": ["\\ud83d"]}'),
        ("/v1/vectors", b'{"words": ["\\ude00rei"]}'),
    ],
)
def test_api_every_text_route_refuses_lone_surrogates(client: TestClient, path: str, body: bytes) -> None:
    r = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "InvalidInput"
    assert "not UTF-8" in r.json()["detail"] or "lone surrogate" in r.json()["detail"]


def test_api_surrogate_pairs_are_text(client: TestClient) -> None:
    r = client.post(
        "/v1/classify",
        content=b'{"texts": ["idiota \\ud83d\\ude00"]}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["label"] == "1"


def test_api_classify_answers_label_names(
    settings: Settings, registry: Registry, reviews_csv: dict[str, Path]
) -> None:
    from pipelines.classifier.train import train_classifier
    from tests.services.vector_models import serving

    train_classifier(
        review_run(reviews_csv, label_names={"neg": "negativa", "pos": "positiva"}), registry=registry
    )
    with serving(api_settings(settings)) as client:
        r = client.post("/v1/classify", json={"texts": ["Adorei, produto excelente"]})
    assert r.status_code == 200, r.text
    (result,) = r.json()["results"]
    assert result["label"] == "positiva"
    assert set(result["scores"]) == {"negativa", "positiva"}


def test_api_classify_answer_size_is_bounded_by_texts_times_labels(
    settings: Settings, registry: Registry
) -> None:
    """1,024 texts against a 2,000-class classifier answered 33.5 MB: PALAVRA_MAX_RESULTS counted neighbours only (a
    hostile probe)."""
    with registry.create("muitas", "classifier") as w:
        w.write_json("keywords.json", [])

    class Wide(KeywordClassifier):
        names = tuple(f"c{i}" for i in range(50))

    def wide(reg: Registry, mv: ModelVersion) -> KeywordClassifier:
        return Wide([])

    limited = api_settings(settings, max_results=100)
    store = ModelStore(registry, {**loaders_for(limited), "classifier": wide}, refresh_s=0.1)
    store.start(poll=False)
    app = create_app(limited)
    app.dependency_overrides[get_store] = lambda: store
    client = TestClient(app, raise_server_exceptions=False)
    assert client.post("/v1/classify", json={"texts": ["a", "b"], "model": "muitas"}).status_code == 200
    r = client.post("/v1/classify", json={"texts": ["a", "b", "c"], "model": "muitas"})
    assert r.status_code == 413, r.text
    assert r.json()["detail"].startswith(
        "3 texts x 50 labels asks for 150 scores in one request; the limit is 100"
    )
