"""The jobs routes: submit (JSON; the multipart form: test_jobs_api_uploads.py), list, show, cancel, events, auth,
limits, database down."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from models.database import create_engine
from pipelines.runs.progress import Progress
from services.api.app import create_app
from services.jobs.local import LocalWorkerPool
from services.jobs.runner import execute_job
from services.jobs.store import JobStore
from services.settings import Settings
from tests.services.jobs_api_helpers import KEY, TOML_CONFIG, api_settings, client, submit_job, upload_job
from tests.services.jobs_helpers import (
    TcpProxy,
    job_settings,
    leftovers,
    postgres_database,
    reviews_csv,
    word2vec_config,
    write_corpus,
)

__all__ = ["api_settings", "client"]  # fixtures


def test_jobs_api_submit_answers_202_with_the_job_url(client: TestClient, api_settings: Settings) -> None:
    corpus = write_corpus(api_settings, "frases.txt", 50)
    r = submit_job(client, word2vec_config("w2v", corpus))
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["state"] == "queued"
    assert body["url"] == f"/v1/jobs/{body['id']}"
    assert r.headers["location"] == body["url"]
    shown = client.get(body["url"]).json()
    assert shown["state"] == "queued"
    assert shown["kind"] == "word2vec"
    assert shown["config"]["train"]["vector_size"] == 12
    assert shown["config"]["train"]["window"] == 5  # defaults filled in by the config model
    assert shown["model"] is None
    assert shown["logs"] == []


def test_jobs_api_list_filters_and_pages(client: TestClient, api_settings: Settings) -> None:
    corpus = write_corpus(api_settings, "frases.txt", 50)
    ids = [submit_job(client, word2vec_config(f"m{i}", corpus)).json()["id"] for i in range(5)]
    client.delete(f"/v1/jobs/{ids[0]}", headers=KEY)
    page = client.get("/v1/jobs", params={"limit": 2}).json()
    assert page["total"] == 5
    assert [j["id"] for j in page["items"]] == ids[::-1][:2]  # newest first
    rest = client.get("/v1/jobs", params={"limit": 10, "offset": 2}).json()["items"]
    assert [j["id"] for j in rest] == ids[::-1][2:]
    cancelled = client.get("/v1/jobs", params={"state": "cancelled"}).json()
    assert [j["id"] for j in cancelled["items"]] == [ids[0]]
    assert client.get("/v1/jobs", params={"kind": "classifier"}).json()["total"] == 0
    assert client.get("/v1/jobs", params={"state": "lost"}).status_code == 422
    assert client.get("/v1/jobs", params={"offset": 10**20}).status_code == 422  # past any database integer


@pytest.mark.parametrize(
    ("config", "kind", "fragment"),
    [
        ({"name": "x", "corpus": ["frases.txt"], "trian": {}}, "word2vec", "field 'trian': unknown field"),
        ({"name": "x", "corpus": []}, "word2vec", "field 'corpus'"),
        ({"name": "x", "corpus": ["frases.txt"]}, "fasttext", "kind"),
        ({"name": "x", "corpus": ["nao-existe.txt"]}, "word2vec", "does not exist under the data root"),
        ({"name": "x", "corpus": ["../segredo.txt"]}, "word2vec", "contains '..'"),
        ({"name": "x", "corpus": ["/etc/passwd"]}, "word2vec", "outside the data root"),
        # names the filesystem refuses were a 500 (OSError: File name too long)
        ({"name": "x", "corpus": ["a" * 300 + ".txt"]}, "word2vec", "File name too long"),
        (
            {"name": "x", "train": "frases.txt", "embeddings": "nada"},
            "classifier",
            "unknown embeddings model 'nada'",
        ),
        (
            {"name": "x", "train": "frases.txt", "embeddings": "/etc/passwd"},
            "classifier",
            "invalid model name",
        ),
        (  # a label answered as "" (or as spaces) reads as no answer at all
            {"name": "x", "train": "frases.txt", "label_names": {"0": "", "1": "  "}},
            "classifier",
            "field 'label_names.0': String should have at least 1 character",
        ),
        (
            {"train": "frases.txt", "grid": {"training.batch_size": [1, "half"]}},
            "compare",
            "grid training.batch_size: 'half' is not allowed; give full or an integer from 1 to 65536",
        ),
        ({"train": "frases.txt", "grid": {"training.lrr": [0.1]}}, "compare", "did you mean training.lr?"),
        (
            {"train": "frases.txt", "optimizers": ["sgd"], "grid": {"training.optimizer": ["adam"]}},
            "compare",
            "training.optimizer is given twice",
        ),
        (
            {
                "train": "frases.txt",
                "grid": {
                    "training.lr": [round(0.05 * (i + 1), 2) for i in range(20)],
                    "training.epochs": list(range(1, 21)),
                    "training.seed": list(range(20)),
                    "model.dropout": [i / 40 for i in range(20)],
                    "training.batch_size": list(range(1, 21)),
                },
            },
            "compare",
            "the grid has 3,200,000 cells (20 x 20 x 20 x 20 x 20), more than the 1,000 runs",
        ),
    ],
)
def test_jobs_api_refuses_bad_configs_and_paths_before_queueing(
    client: TestClient, api_settings: Settings, config: dict[str, Any], kind: str, fragment: str
) -> None:
    write_corpus(api_settings, "frases.txt", 50)
    r = submit_job(client, config, kind=kind)
    assert r.status_code == 422
    assert fragment in r.json()["detail"]
    assert client.get("/v1/jobs").json()["total"] == 0


@pytest.mark.parametrize("kind", ["word2vec", "lm", "compare_lm"])
def test_jobs_api_refuses_a_corpus_training_could_not_read_before_queueing(
    client: TestClient, api_settings: Settings, kind: str
) -> None:
    """A file whose name is no corpus format, or a folder with no corpus file, was accepted (202) and the job
    then failed in the worker with "unknown corpus format" (a hostile probe); the CLI refused it at once."""
    root = api_settings.effective_data_root
    (root / "notas.md").write_text("o rei governa\n", encoding="utf-8")
    (root / "semfim").write_text("o rei governa\n", encoding="utf-8")
    (root / "vazia").mkdir(exist_ok=True)
    (root / "vazia" / "leia.md").write_text("o rei\n", encoding="utf-8")
    config: dict[str, Any] = {"name": "x"} if kind != "compare_lm" else {}
    for corpus, fragment in [
        ("notas.md", "corpus 'notas.md': unknown corpus format '.md'; use .txt"),
        ("semfim", "corpus 'semfim': unknown corpus format ''"),
        ("vazia", "corpus 'vazia': no corpus file (.txt, .jsonl, .csv, optionally .gz) in the folder"),
    ]:
        r = submit_job(client, {**config, "corpus": [corpus]}, kind=kind)
        assert r.status_code == 422, r.text
        assert fragment in r.json()["detail"]
        assert str(root) not in r.json()["detail"]  # the server's own folders are not told
    assert client.get("/v1/jobs").json()["total"] == 0


@pytest.mark.parametrize(("kind", "status"), [("word2vec", 202), ("lm", 422)])
def test_jobs_api_corpora_read_as_one_are_checked_as_one(
    client: TestClient, api_settings: Settings, kind: str, status: int
) -> None:
    """A word2vec job reads its corpora as one token file, so a folder of notes beside a text file is no error
    (the CLI accepts it too); a language model prepares each corpus alone, and the folder would fail it."""
    write_corpus(api_settings, "frases.txt", 50)
    (api_settings.effective_data_root / "notas").mkdir(exist_ok=True)
    (api_settings.effective_data_root / "notas" / "leia.md").write_text("o rei\n", encoding="utf-8")
    r = submit_job(client, {"name": "x", "corpus": ["frases.txt", "notas"]}, kind=kind)
    assert r.status_code == status, r.text
    if status == 422:
        assert "corpus 'notas': no corpus file" in r.json()["detail"]
    r = submit_job(client, {"name": "x", "corpus": ["notas", "notas/"]}, kind="word2vec")
    assert r.status_code == 422
    assert (
        "corpus 'notas', 'notas/': no corpus file (.txt, .jsonl, .csv, optionally .gz) in any of them"
        in r.text
    )


def test_jobs_api_refuses_a_job_that_would_register_another_kind_under_a_name(
    client: TestClient, api_settings: Settings
) -> None:
    from services.factories import open_registry
    from tests.services.vector_models import register

    register(open_registry(api_settings), "vetores")
    write_corpus(api_settings, "frases.txt", 50)
    r = submit_job(client, {"name": "vetores", "train": "frases.txt"}, kind="classifier")
    assert r.status_code == 409
    assert "'vetores' holds a word2vec model; a classifier model needs another name" in r.json()["detail"]
    assert client.get("/v1/jobs").json()["total"] == 0
    config = word2vec_config("vetores", "frases.txt")
    config["train"]["algorithm"] = "fasttext"
    r = submit_job(client, config, kind="word2vec")  # the other vector kind is fine
    assert r.status_code == 202, r.text


def test_jobs_api_classifier_config_takes_label_names_and_strict(
    client: TestClient, api_settings: Settings
) -> None:
    write_corpus(api_settings, "frases.txt", 50)
    config = {
        "name": "x",
        "train": "frases.txt",
        "label_names": {"0": "nao_toxico", "1": "toxico"},
        "strict": True,
    }
    r = submit_job(client, config, kind="classifier")
    assert r.status_code == 202, r.text
    shown = client.get(r.json()["url"]).json()["config"]
    assert (shown["label_names"], shown["strict"]) == ({"0": "nao_toxico", "1": "toxico"}, True)


def test_jobs_api_refuses_a_symlink_out_of_the_data_root(
    client: TestClient, api_settings: Settings, tmp_path: Path
) -> None:
    secret = tmp_path / "fora.txt"
    secret.write_text("o rei governa o reino\n", encoding="utf-8")
    (api_settings.effective_data_root / "atalho.txt").symlink_to(secret)
    r = submit_job(client, word2vec_config("x", "atalho.txt"))
    assert r.status_code == 422
    assert r.json()["error"] == "PathNotAllowed"
    assert "symbolic link" in r.json()["detail"]


def test_jobs_api_state_changes_need_an_api_key(client: TestClient, api_settings: Settings) -> None:
    corpus = write_corpus(api_settings, "frases.txt", 50)
    r = client.post("/v1/jobs", json={"kind": "word2vec", "config": word2vec_config("w", corpus)})
    assert r.status_code == 401
    r = client.post(
        "/v1/jobs",
        json={"kind": "word2vec", "config": word2vec_config("w", corpus)},
        headers={"Authorization": "Bearer errada"},
    )
    assert r.status_code == 401
    job_id = submit_job(client, word2vec_config("w", corpus)).json()["id"]
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 401
    assert client.get(f"/v1/jobs/{job_id}").status_code == 200  # reads are open by default


def test_jobs_api_cancel_queued_then_conflict_and_not_found(
    client: TestClient, api_settings: Settings
) -> None:
    corpus = write_corpus(api_settings, "frases.txt", 50)
    job_id = submit_job(client, word2vec_config("w", corpus)).json()["id"]
    r = client.delete(f"/v1/jobs/{job_id}", headers=KEY)
    assert r.status_code == 200
    assert r.json()["state"] == "cancelled"
    again = client.delete(f"/v1/jobs/{job_id}", headers=KEY)
    assert again.status_code == 409
    assert "already cancelled" in again.json()["detail"]
    missing = client.delete("/v1/jobs/0123456789abcdef0123456789abcdef", headers=KEY)
    assert missing.status_code == 404
    assert missing.json()["error"] == "JobNotFound"
    assert client.get("/v1/jobs/nada").status_code == 404


def test_jobs_api_events_stream_progress_until_the_job_ends(
    client: TestClient, api_settings: Settings
) -> None:
    corpus = write_corpus(api_settings, "frases.txt", 300)
    job_id = submit_job(client, word2vec_config("transmitido", corpus, epochs=3)).json()["id"]
    events: list[tuple[str, Any]] = []
    with client.stream("GET", f"/v1/jobs/{job_id}/events") as r, contextlib.ExitStack() as workers:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
                if name == "progress" and len(events) == 1:  # the job seen queued: now a worker may take it
                    workers.enter_context(LocalWorkerPool(api_settings, 1))
                if name == "end":
                    break
    names = [n for n, _ in events]
    assert names[-1] == "end"
    assert events[-1][1]["state"] == "succeeded"
    assert events[-1][1]["model"]["ref"] == "transmitido@1"
    assert "queued" in [d["state"] for n, d in events if n == "progress"]
    logged = [d["line"] for n, d in events if n == "log"]
    assert "epoch 3/3" in " ".join(logged)
    assert logged[-1] == "succeeded; registered transmitido@1"
    assert client.get("/v1/jobs/0123456789abcdef0123456789abcdef/events").status_code == 404


def test_jobs_api_progress_counts_in_the_trainers_own_unit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the job runs in this process without heartbeats: the API's reaper must not fail it meanwhile
    settings = job_settings(tmp_path, backend="local", api_keys=["segredo"], job_timeout_s=3600)
    corpus = write_corpus(settings, "frases.txt", 200)
    shown: list[dict[str, Any]] = []
    report = JobStore.report
    with TestClient(create_app(settings)) as client:
        url = submit_job(client, word2vec_config("contado", corpus, epochs=2)).json()["url"]

        def report_then_read(self: JobStore, job_id: str, progress: Progress) -> bool:
            stored = report(self, job_id, progress)
            shown.append(client.get(url).json()["progress"])
            return stored

        monkeypatch.setattr(JobStore, "report", report_then_read)
        job_id = url.rsplit("/", 1)[1]
        JobStore(create_engine(settings.effective_database_url)).claim(job_id, "w")
        assert execute_job(settings, job_id, "w") is True
        finished = client.get(url).json()["progress"]
        schema = client.get("/openapi.json").json()["components"]["schemas"]["JobProgressOut"]
    epochs = [p for p in shown if p["stage"] == "train" and p["epoch"]]
    assert [(p["done"], p["total"], p["unit"]) for p in epochs] == [(1, 2, "epoch"), (2, 2, "epoch")]
    assert finished["fraction"] == 1.0
    assert all(schema["properties"][field].get("description") for field in ("done", "total", "unit"))


def test_jobs_api_every_timestamp_is_iso_8601_utc_with_z(client: TestClient, api_settings: Settings) -> None:
    import re

    corpus = write_corpus(api_settings, "frases.txt", 50)
    job_id = submit_job(client, word2vec_config("cancelado", corpus)).json()["id"]
    assert client.delete(f"/v1/jobs/{job_id}", headers=KEY).status_code == 200  # ends it without a worker
    stamps: list[str] = []

    def collect(obj: Any) -> None:
        if isinstance(obj, dict):
            for key, value in obj.items():
                if key == "at" or key.endswith("_at"):
                    stamps.extend([value] if value is not None else [])
                collect(value)
        elif isinstance(obj, list):
            for value in obj:
                collect(value)

    detail = client.get(f"/v1/jobs/{job_id}").json()
    collect(detail)
    with client.stream("GET", f"/v1/jobs/{job_id}/events") as r:
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    collect(events)
    assert len(detail["logs"]) >= 1
    assert len(stamps) >= 6  # created_at and finished_at twice over, and the log lines in both
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", s) for s in stamps), stamps


def test_jobs_api_compare_job_trains_a_grid(client: TestClient, api_settings: Settings) -> None:
    config = {
        "train": reviews_csv(api_settings),
        "training": {"epochs": 3, "threads": 1, "optimizer": "sgd"},
        "grid": {"training.lr": [1e6, 0.1], "training.batch_size": ["16", "full"]},
        "sample": 60,
    }
    r = submit_job(client, config, kind="compare")
    assert r.status_code == 202, r.text
    url = r.json()["url"]
    shown = client.get(url).json()["config"]
    assert shown["grid"] == {"training.lr": [1e6, 0.1], "training.batch_size": [16, "full"]}
    assert shown["optimizers"] is None  # with a grid, the shorthands do not add every optimizer
    with LocalWorkerPool(api_settings, 1), client.stream("GET", f"{url}/events") as events:
        for line in events.iter_lines():
            if line.startswith("event: end"):
                break
    done = client.get(url).json()
    assert done["state"] == "succeeded", done
    runs = done["result"]["runs"]
    assert [(r["cell"]["training.lr"], r["cell"]["training.batch_size"], r["status"]) for r in runs] == [
        (1e6, 16, "diverged"), (1e6, "full", "diverged"), (0.1, 16, "ok"), (0.1, "full", "ok"),
    ]  # fmt: skip
    assert done["result"]["columns"][:3] == ["lr", "batch_size", "status"]


@pytest.mark.services
def test_jobs_api_database_down_answers_503_not_500(tmp_path: Path) -> None:
    with postgres_database() as database:
        _database_goes_down(tmp_path, sa.make_url(database))


def _database_goes_down(tmp_path: Path, target: sa.URL) -> None:
    proxy = TcpProxy((target.host or "127.0.0.1", target.port or 5432))
    url = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = job_settings(tmp_path, backend="local", database_url=url, api_keys=["segredo"])
    corpus = write_corpus(settings, "frases.txt", 50)
    with TestClient(create_app(settings)) as client:
        assert submit_job(client, word2vec_config("w", corpus)).status_code == 202
        proxy.close()  # the database goes away
        for r in (
            client.get("/v1/jobs"),
            submit_job(client, word2vec_config("w", corpus)),
            client.get("/v1/jobs/0123456789abcdef0123456789abcdef"),
        ):
            assert r.status_code == 503
            assert r.json()["error"] == "DatabaseUnavailable"
            assert "database is unreachable" in r.json()["detail"]
            assert r.headers["retry-after"] == "5"


def test_jobs_api_broker_down_answers_503_and_leaves_no_queued_job(tmp_path: Path) -> None:
    settings = job_settings(
        tmp_path, backend="celery", broker_url="redis://127.0.0.1:1/0", api_keys=["segredo"]
    )
    corpus = write_corpus(settings, "frases.txt", 50)
    with TestClient(create_app(settings)) as client:
        r = submit_job(client, word2vec_config("w", corpus))
        assert r.status_code == 503
        assert r.json()["error"] == "NotReady"
        assert "job broker at redis://127.0.0.1:1/0 does not answer" in r.json()["detail"]
        jobs = client.get("/v1/jobs").json()["items"]
    assert [j["state"] for j in jobs] == ["failed"]
    assert "does not answer" in jobs[0]["error"]


def test_jobs_api_caps_the_list_entries_of_a_config(tmp_path: Path) -> None:
    """A config naming more corpus entries than PALAVRA_MAX_CONFIG_ITEMS is refused before any path is checked
    (400,000 entries held the API for 18 s); at the limit it is accepted. The entries of the config's tables count
    too: 4 corpus files and the 5 keys of its train table are 9."""
    settings = job_settings(tmp_path, backend="local", api_keys=["segredo"], max_config_items=9)
    files = [write_corpus(settings, f"parte{i}.txt", 20 + i) for i in range(4)]
    config = word2vec_config("muitos", files[0])
    with TestClient(create_app(settings)) as client:
        assert submit_job(client, {**config, "corpus": files}).status_code == 202
        too_many = submit_job(client, {**config, "corpus": [*files, files[0]]})
        toml = TOML_CONFIG.replace('["upload:frases.txt"]', str(["upload:frases.txt", *files, *files]))
        uploaded = upload_job(client, toml, {"frases.txt": b"o rei governa o reino\n"})
        assert client.get("/v1/jobs").json()["total"] == 1
    for r in (too_many, uploaded):
        assert r.status_code == 413, r.text
        assert r.json()["error"] == "TooLarge"
        assert r.json()["limit"] == 9
        assert "PALAVRA_MAX_CONFIG_ITEMS" in r.json()["detail"]


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("classifier", {"label_names": {str(i): f"nome{i}" for i in range(10)}}),
        (
            "compare",
            {
                "grid": {
                    "training.lr": [0.5],
                    "training.epochs": [1],
                    "training.seed": [1],
                    "training.momentum": [0.5],
                    "model.dropout": [0.1],
                }
            },
        ),
    ],
)
def test_jobs_api_caps_the_table_entries_of_a_config(
    tmp_path: Path, kind: str, extra: dict[str, Any]
) -> None:
    """A table of many keys is as much work as a list of many entries: 400,000 label names were accepted (9 s of
    the API, a 7 MB job record) while 10,001 corpus files were refused. Its entries count towards the limit."""
    settings = job_settings(tmp_path, backend="local", api_keys=["segredo"], max_config_items=9)
    (settings.effective_data_root / "treino.csv").write_text("texto,rotulo\nola,0\n", encoding="utf-8")
    config = {
        "name": "rotulos",
        "train": "treino.csv",
        "label_column": "rotulo",
        "optimizers": ["sgd"],
        **extra,
    }
    if kind == "classifier":
        del config["optimizers"]
    with TestClient(create_app(settings)) as client:
        r = submit_job(client, config, kind=kind)
        assert client.get("/v1/jobs").json()["total"] == 0
    assert r.status_code == 413, r.text
    assert r.json()["limit"] == 9
    assert "PALAVRA_MAX_CONFIG_ITEMS" in r.json()["detail"]


@pytest.mark.parametrize("path", ["b\\ud800.txt", "b\\udcff.txt"])
def test_jobs_api_config_strings_that_are_not_unicode_are_422(
    client: TestClient, api_settings: Settings, path: str
) -> None:
    """JSON allows a lone surrogate escape; a config path holding one was a 500 (the error body could not be
    encoded). It is refused like any invalid config, and no job is recorded."""
    config = '{"name": "x", "corpus": ["upload:frases.txt", "' + path + '"], "evaluate": false}'
    r = upload_job(client, config, {"frases.txt": b"o rei governa o reino\n"})
    assert r.status_code == 422, r.text
    assert "not Unicode text" in r.json()["detail"]
    assert client.get("/v1/jobs").json()["total"] == 0
    assert leftovers(api_settings) == []


def test_jobs_api_accepts_the_collection_kind(client: TestClient, api_settings: Settings) -> None:
    from pipelines.text_encoder.build import pooling_model, register_encoder
    from services.factories import open_registry
    from tests.services.vector_models import register

    (api_settings.effective_data_root / "docs.jsonl").write_text('{"id": "1", "text": "o rei"}\n', "utf-8")
    config = {"name": "faq", "source": "docs.jsonl", "encoder": "frases"}
    r = submit_job(client, config, kind="collection")
    assert r.status_code == 422  # the encoder is checked before the job is queued
    assert r.json()["detail"].startswith("unknown encoder 'frases'")
    registry = open_registry(api_settings)
    register(registry, "w2v")
    register_encoder(registry, "frases", pooling_model(registry, "w2v", pooling="mean")[0], metadata={})
    r = submit_job(client, config, kind="collection")
    assert r.status_code == 202, r.text
    shown = client.get(r.json()["url"]).json()
    assert (shown["kind"], shown["config"]["text_field"]) == ("collection", "text")
    r = submit_job(client, {"name": "faq", "source": "docs.jsonl"}, kind="collection")
    assert r.status_code == 422
    assert "encoder" in r.json()["detail"]
    r = submit_job(client, {**config, "source": "nada.jsonl"}, kind="collection")
    assert r.status_code == 422


def test_jobs_api_classifier_columns_are_checked_atsubmit_job(
    client: TestClient, api_settings: Settings
) -> None:
    """A label column the file lacks was accepted (202) and failed in the worker, where docs/classifier.md
    promised a 422 (a newcomer's run). The header (or the first JSON line) is read; the rest is the job's."""
    train = reviews_csv(api_settings)  # columns text, label
    jsonl = api_settings.effective_data_root / "linhas.jsonl"
    jsonl.write_text('{"texto": "bom", "label": "pos"}\n', encoding="utf-8")
    for config, missing in (
        ({"name": "c1", "train": train, "label_column": "toxico"}, "'toxico'"),
        ({"name": "c2", "train": train, "validation": "linhas.jsonl"}, "'text'"),
    ):
        for kind in ("classifier", "compare"):
            r = submit_job(client, config, kind=kind)
            assert r.status_code == 422, r.text
            assert f"has no column {missing}" in r.json()["detail"]
    assert client.get("/v1/jobs").json()["total"] == 0
    r = submit_job(client, {"name": "c3", "train": train}, kind="classifier")
    assert r.status_code == 202, r.text


def _log_ids(client: TestClient, job_id: str, headers: dict[str, str]) -> list[int]:
    ids = []
    with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("id: "):
                ids.append(int(line[4:]))
            if line.startswith("event: end"):
                break
    return ids


def test_jobs_api_events_go_on_after_the_last_event_id_a_client_saw(
    client: TestClient, api_settings: Settings
) -> None:
    """EventSource sends Last-Event-ID when it reconnects; the stream began again at the first log line, and the web
    page showed the whole log twice (a hostile probe)."""
    corpus = write_corpus(api_settings, "frases.txt", 300)
    job_id = submit_job(client, word2vec_config("retomado", corpus)).json()["id"]
    assert client.delete(f"/v1/jobs/{job_id}", headers=KEY).status_code == 200  # ended: its log is whole
    every = _log_ids(client, job_id, {})
    assert every, every
    assert _log_ids(client, job_id, {"Last-Event-ID": str(every[-1])}) == []
    assert _log_ids(client, job_id, {"Last-Event-ID": "0"}) == every
    assert _log_ids(client, job_id, {"Last-Event-ID": "abc"}) == every  # no id: from the start
