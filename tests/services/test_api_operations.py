from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from models.registry import Registry
from services.api.app import create_app
from services.settings import Settings
from tests.services.vector_models import api_settings, register, serving


def test_api_health_answers_before_models(settings: Settings) -> None:
    client = TestClient(create_app(settings))  # no lifespan: nothing loaded
    assert client.get("/health").json() == {"status": "ok"}
    r = client.get("/ready")
    assert r.status_code == 503
    assert r.json()["error"] == "NotReady"
    assert client.get("/v1/neighbors", params={"word": "rei"}).status_code == 503


def test_api_ready_needs_a_registered_model(settings: Settings, registry: Registry) -> None:
    with serving(api_settings(settings)) as client:
        r = client.get("/ready")
        assert r.status_code == 503
        assert "no model is registered" in r.json()["detail"]
        register(registry, "w2v")
        client.app.state.store.refresh()
        body = client.get("/ready").json()
    assert body["status"] == "ready"
    assert body["models"] == [{"name": "w2v", "version": 1, "kind": "word2vec"}]


def test_api_tampered_artifact_is_not_served(settings: Settings, registry: Registry) -> None:
    register(registry, "w2v")
    vocab = registry.get("w2v@1").path / "vocab.json"
    vocab.chmod(0o644)  # registered files are read-only
    vocab.write_text('["x"]', encoding="utf-8")
    with serving(api_settings(settings)) as client:
        r = client.get("/ready")
        assert r.status_code == 503
        assert "sha256" in r.json()["errors"]["w2v@1"]
        assert client.get("/v1/neighbors", params={"word": "rei"}).status_code == 503


def test_api_metrics_count_requests_errors_and_models(settings: Settings, registry: Registry) -> None:
    register(registry, "w2v")
    with serving(api_settings(settings)) as client:
        client.get("/v1/neighbors", params={"word": "rei"})
        client.get("/v1/neighbors", params={"word": "zzzq"})
        client.get("/nada/de/nada")
        text = client.get("/metrics").text
    assert 'palavra_http_requests_total{method="GET",route="/v1/neighbors",status="200"} 1.0' in text
    assert 'palavra_http_errors_total{route="/v1/neighbors",status="404"} 1.0' in text
    assert 'route="unmatched"' in text
    assert (
        'palavra_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/neighbors"}' in text
    )
    assert 'palavra_model_loaded{kind="word2vec",name="w2v",version="1"} 1.0' in text


def _success(operation: dict) -> str:
    return str(next(v for k, v in operation["responses"].items() if k.startswith("2")))


def _has_example(operation: dict) -> bool:
    texts = str(operation.get("requestBody", "")) + str(operation.get("parameters", "")) + _success(operation)
    return "example" in texts


SERVING_PATHS = (
    "/health",
    "/ready",
    "/metrics",
    "/v1/models",
    "/v1/neighbors",
    "/v1/similarity",
    "/v1/analogy",
    "/v1/vectors",
    "/v1/classify",
)


def test_api_openapi_has_an_example_for_every_serving_route(settings: Settings) -> None:
    schema = create_app(settings).openapi()
    components = schema["components"]["schemas"]
    missing = []
    for path, ops in schema["paths"].items():
        if not path.startswith(SERVING_PATHS):
            continue
        for method, op in ops.items():
            ref = _success(op).split("#/components/schemas/")[-1].split("'")[0]
            if not (_has_example(op) or "examples" in components.get(ref, {})):
                missing.append(f"{method.upper()} {path}")
    assert not missing


@pytest.mark.parametrize("path", ["/docs", "/openapi.json"])
def test_api_docs_are_served(settings: Settings, path: str) -> None:
    assert TestClient(create_app(settings)).get(path).status_code == 200


def test_api_model_that_fails_to_load_is_503_not_500(settings: Settings, registry: Registry) -> None:
    register(registry, "w2v")
    with registry.create("quebrado", "classifier") as w:
        w.write_json("nada.json", {})  # checksums fine, but not a classifier artifact
    with serving(api_settings(settings)) as client:
        assert client.get("/v1/neighbors", params={"word": "rei"}).status_code == 200
        r = client.post("/v1/classify", json={"texts": ["oi"]})
        assert r.status_code == 503, r.text
        assert "quebrado@1" in r.json()["detail"]
        assert "quebrado@1" in client.get("/ready").json()["errors"]


def test_api_metrics_forget_the_models_of_a_worker_that_died(tmp_path: Path) -> None:
    """A worker killed and started again by uvicorn was still reported as holding its models (a hostile probe);
    what it answered stays counted."""
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    from services.api.metrics import Metrics

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid, live_pid = int(dead.stdout), os.getpid()
    for pid in (dead_pid, live_pid):
        gauge = MmapedDict(str(tmp_path / f"gauge_liveall_{pid}.db"))
        key = mmap_key("palavra_model_loaded", "palavra_model_loaded", ["name", "version", "kind"],
                       ["w2v", "1", "word2vec"], "1 for each model version loaded in a worker.")  # fmt: skip
        gauge.write_value(key, 1.0, 0.0)
        gauge.close()
        counter = MmapedDict(str(tmp_path / f"counter_{pid}.db"))
        key = mmap_key("palavra_http_requests", "palavra_http_requests_total", ["method", "route", "status"],
                       ["GET", "/health", "200"], "HTTP requests answered.")  # fmt: skip
        counter.write_value(key, 3.0, 0.0)
        counter.close()
    text = Metrics(multiprocess_dir=tmp_path).exposition().decode()
    loaded = [line for line in text.splitlines() if line.startswith("palavra_model_loaded{")]
    assert loaded == [f'palavra_model_loaded{{kind="word2vec",name="w2v",pid="{live_pid}",version="1"}} 1.0']
    assert 'palavra_http_requests_total{method="GET",route="/health",status="200"} 6.0' in text
    assert not (tmp_path / f"gauge_liveall_{dead_pid}.db").exists()


def test_api_metrics_of_workers_scraped_at_once_after_one_died(tmp_path: Path) -> None:
    """Two scrapes at once both removed the dead worker's file: the second got FileNotFoundError, a 500 (a
    review of the change above)."""
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    errors: list[BaseException] = []
    for _ in range(40):
        pid = _dead_pid()
        gauge = MmapedDict(str(tmp_path / f"gauge_liveall_{pid}.db"))
        key = mmap_key("palavra_model_loaded", "palavra_model_loaded", ["name"], ["w2v"], "loaded")
        gauge.write_value(key, 1.0, 0.0)
        gauge.close()
        start = threading.Barrier(4)
        threads = [threading.Thread(target=_scrape, args=(tmp_path, start, errors)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


def _scrape(folder: Path, start: threading.Barrier, errors: list[BaseException]) -> None:
    from services.api.metrics import Metrics

    start.wait()
    try:
        Metrics(multiprocess_dir=folder).exposition()
    except BaseException as exc:
        errors.append(exc)


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(done.stdout)
