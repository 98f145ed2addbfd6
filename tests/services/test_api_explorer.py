"""The routes the web explorer added: the page itself, the neighbour map, a version's report, a comparison's curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from models.registry import Registry
from pipelines.evaluation.projection import pca_2d
from services.api.app import create_app
from services.jobs.job import JobState
from services.jobs.local import LocalWorkerPool
from services.jobs.service import JobService
from services.settings import Settings
from tests.services.jobs_helpers import classifier_job, compare_job, job_settings, wait_until
from tests.services.vector_models import api_settings, register, serving

_HISTORY = [
    {"epoch": 1, "train_loss": 0.69, "val_loss": 0.66, "accuracy": 0.6, "macro_f1": 0.55},
    {"epoch": 2, "train_loss": 0.41, "val_loss": 0.45, "accuracy": 0.85, "macro_f1": 0.84},
]
_METRICS = {
    "validation": {
        "accuracy": 0.85,
        "macro_f1": 0.84,
        "confusion_matrix": {"labels": ["neg", "pos"], "matrix": [[40, 10], [5, 45]]},
    },
    "training": {"best_epoch": 2},
}


@pytest.fixture
def client(settings: Settings, registry: Registry) -> Any:
    register(registry, "w2v")
    register(registry, "ft", kind="fasttext")
    with registry.create("sentimento", "classifier") as w:
        w.write_json("history.json", _HISTORY)
        w.write_json("metrics.json", _METRICS)
        w.metadata.update(metrics={"accuracy": 0.85, "macro_f1": 0.84})
    with serving(api_settings(settings)) as c:
        yield c


def test_api_explorer_page_and_its_files_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="web/app.js"' in page.text  # relative: the page works under a path prefix too
    for name, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        r = client.get(f"/web/{name}")
        assert r.status_code == 200, name
        assert kind in r.headers["content-type"]
    assert client.get("/web/nada.js").status_code == 404
    assert "/" not in client.get("/openapi.json").json()["paths"]  # the page is not an API route


def test_api_neighbor_map_places_the_word_and_its_neighbours(client: TestClient) -> None:
    r = client.post("/v1/neighbors/map", json={"word": "Rei", "k": 5, "model": "w2v"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"]["name"] == "w2v"
    assert (body["token"], body["in_vocabulary"], body["method"]) == ("rei", True, "pca")
    points = body["points"]
    assert points[0] == {**points[0], "word": "rei", "score": 1.0, "query": True}
    listed = client.get("/v1/neighbors", params={"word": "rei", "k": 5, "model": "w2v"}).json()["neighbors"]
    assert [(p["word"], pytest.approx(p["score"])) for p in points[1:]] == [
        (n["word"], n["score"]) for n in listed
    ]
    coords = np.array([[p["x"], p["y"]] for p in points])
    assert np.abs(coords).max() == pytest.approx(1.0)
    assert len({(round(x, 6), round(y, 6)) for x, y in coords}) == len(points)  # no two words on one spot
    assert sum(body["explained_variance"]) <= 1.0 + 1e-9


def test_api_neighbor_map_unknown_word_suggests_and_fasttext_builds_from_subwords(client: TestClient) -> None:
    r = client.post("/v1/neighbors/map", json={"word": "acao", "k": 3, "model": "w2v"})
    assert r.status_code == 404
    assert r.json()["error"] == "UnknownWord"
    assert r.json()["suggestions"] == {"acao": ["ação"]}
    r = client.post("/v1/neighbors/map", json={"word": "reizinho", "k": 3, "model": "ft"})
    assert r.status_code == 200, r.text
    assert r.json()["in_vocabulary"] is False
    assert len(r.json()["points"]) == 4


def test_api_neighbor_map_tsne_when_asked(client: TestClient) -> None:
    body = client.post(
        "/v1/neighbors/map", json={"word": "rei", "k": 8, "method": "tsne", "model": "w2v"}
    ).json()
    assert body["method"] == "tsne"
    assert body["explained_variance"] is None
    assert len(body["points"]) == 9
    r = client.post("/v1/neighbors/map", json={"word": "rei", "k": 2, "method": "tsne", "model": "w2v"})
    assert r.status_code == 422
    assert "at least 4 points" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"word": "rei", "k": 0}, 422),
        ({"word": "rei", "k": 10_000}, 413),
        ({"word": "  "}, 422),
        ({"word": "rei", "method": "umap"}, 422),
        ({"word": "rei", "model": "sentimento"}, 422),
        ({"word": "rei", "model": "nada"}, 404),
    ],
)
def test_api_neighbor_map_bad_requests(client: TestClient, body: dict[str, Any], status: int) -> None:
    r = client.post("/v1/neighbors/map", json=body)
    assert r.status_code == status, r.text
    assert set(r.json()) >= {"error", "detail"}


def test_pca_2d_orders_axes_by_variance_and_is_deterministic() -> None:
    rnd = np.random.default_rng(0)
    x = rnd.normal(size=(30, 8)) * np.array([5, 2, 1, 1, 1, 1, 1, 1])
    coords, explained = pca_2d(x)
    again, _ = pca_2d(x)
    assert np.array_equal(coords, again)
    assert explained[0] > explained[1] > 0
    assert coords[:, 0].var() > coords[:, 1].var()
    one, share = pca_2d(x[:1])
    assert one.shape == (1, 2)
    assert share == [0.0, 0.0]


def test_api_model_report_gives_classifier_metrics_and_curves(client: TestClient) -> None:
    r = client.get("/v1/models/sentimento/versions/latest/report")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["name"], body["version"], body["kind"]) == ("sentimento", 1, "classifier")
    assert body["metrics"]["validation"]["confusion_matrix"]["matrix"] == [[40, 10], [5, 45]]
    assert body["curves"] == _HISTORY
    assert body["best_epoch"] == 2
    w2v = client.get("/v1/models/w2v/versions/1/report").json()
    assert (w2v["kind"], w2v["curves"], w2v["best_epoch"]) == ("word2vec", [], None)
    assert client.get("/v1/models/w2v/versions/9/report").status_code == 404
    assert client.get("/v1/models/nada/versions/1/report").status_code == 404


def test_api_model_report_of_a_trained_encoder_gives_its_pearson_and_curves(
    settings: Settings, registry: Registry
) -> None:
    """A siamese encoder's report was empty (metrics {}, curves []) though its metadata held all of it."""
    from pipelines.text_encoder.build import pooling_model, register_encoder

    register(registry, "w2v")
    encoder, _ = pooling_model(registry, "w2v@1", pooling="mean")
    history = [
        {"epoch": 1, "loss": 0.058, "val_loss": 0.040, "val_pearson": 0.43},
        {"epoch": 2, "loss": 0.035, "val_loss": 0.037, "val_pearson": 0.46},
    ]
    report = {
        "best_epoch": 2,
        "epochs_run": 2,
        "validation": {"pearson": 0.46, "loss": 0.037},
        "history": history,
    }
    register_encoder(registry, "frases", encoder, metadata=report)
    register_encoder(registry, "media", encoder, metadata={})  # a pooling encoder trains nothing
    with serving(api_settings(settings)) as client:
        body = client.get("/v1/models/frases/versions/1/report").json()
        assert (body["kind"], body["best_epoch"], body["curves"]) == ("encoder", 2, history)
        assert body["metrics"] == {"validation": {"pearson": 0.46, "loss": 0.037}}
        plain = client.get("/v1/models/media/versions/1/report").json()
        assert (plain["metrics"], plain["curves"], plain["best_epoch"]) == ({}, [], None)


def test_api_model_report_refuses_an_altered_file(client: TestClient, registry: Registry) -> None:
    path = Path(registry.get("sentimento@1").path) / "history.json"
    path.chmod(0o644)  # registered files are read-only
    path.write_text("[]", encoding="utf-8")
    r = client.get("/v1/models/sentimento/versions/1/report")
    assert r.status_code == 503
    assert "sha256" in r.json()["detail"]


def test_api_compare_curves_of_a_language_model_comparison(tmp_path: Path) -> None:
    """A finished compare_lm job answered 422 "only comparison jobs have curves", and its Jobs tab drew nothing."""
    import json

    from services.jobs.cleanup import job_output_dir

    settings = job_settings(tmp_path, backend="local")
    (settings.effective_data_root / "frases.txt").write_text(
        "o rei governa a cidade.\n" * 50, encoding="utf-8"
    )
    with TestClient(create_app(settings)) as client:
        jobs = JobService.open(settings)
        job = jobs.submit("compare_lm", {"corpus": ["frases.txt"], "grid": {"context": [2, 3]}})
        assert client.get(f"/v1/jobs/{job.id}/curves").status_code == 409  # nothing written yet
        history = [
            {
                "epoch": 1,
                "train_loss": 6.1,
                "val_loss": 5.9,
                "train_perplexity": 445.9,
                "val_perplexity": 365.0,
            }
        ]
        runs = [
            {"cell": {"model.context": c}, "status": "ok", "history": history} for c in (2, 3)
        ]  # results.json as pipelines/runs/grid.py writes it for both comparisons
        out = job_output_dir(settings, job.id)
        out.mkdir(parents=True)
        (out / "results.json").write_text(json.dumps({"data": {}, "runs": runs}), encoding="utf-8")
        body = client.get(f"/v1/jobs/{job.id}/curves").json()
    assert [r["name"] for r in body["runs"]] == ["context=2", "context=3"]
    assert body["runs"][0]["history"] == history


def test_api_compare_curves_of_a_finished_comparison(tmp_path: Path) -> None:
    settings = job_settings(tmp_path, backend="local")
    with TestClient(create_app(settings)) as client:
        jobs = JobService.open(settings)
        job = compare_job(jobs)
        early = client.get(f"/v1/jobs/{job.id}/curves")
        assert early.status_code == 409
        assert "queued" in early.json()["detail"]
        other = classifier_job(jobs, "clf")
        assert client.get(f"/v1/jobs/{other.id}/curves").status_code == 422
        jobs.cancel(other.id)  # the worker runs the comparison only
        with LocalWorkerPool(settings, 1):
            wait_until(lambda: jobs.get(job.id).state.terminal, timeout=120, what="the comparison")
        assert jobs.get(job.id).state is JobState.SUCCEEDED
        body = client.get(f"/v1/jobs/{job.id}/curves").json()
    assert body["state"] == "succeeded"
    assert [r["name"] for r in body["runs"]] == ["optimizer=sgd", "optimizer=adam"]  # the keys that vary
    for run in body["runs"]:
        assert [h["epoch"] for h in run["history"]] == [1, 2]
        assert all(h["train_loss"] > 0 for h in run["history"])
    assert client.get("/v1/jobs/0123456789abcdef0123456789abcdef/curves").status_code == 404
