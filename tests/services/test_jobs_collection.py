"""The ``collection`` job kind: builds a collection from a JSONL file under the data root, with progress; a job
cancelled before its final rename leaves nothing under the collection's name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.collection import CollectionStore, CollectionWriter
from models.errors import CollectionNotFound, Conflict, InvalidConfig, InvalidInput, PathNotAllowed
from models.registry import Registry
from pipelines.text_encoder.build import pooling_model, register_encoder
from services.jobs.job import JobState
from services.jobs.local import LocalBackend
from services.jobs.runner import execute_job
from services.jobs.service import JobService
from services.jobs.store import JobStore
from services.settings import Settings
from tests.services.jobs_helpers import job_settings
from tests.services.vector_models import register

TEXTS = ["o rei e a rainha", "a casa e o lar", "o homem e a mulher", "casas e casas", "o rei no castelo"]


@pytest.fixture
def jobs_settings(tmp_path: Path) -> Settings:
    return job_settings(tmp_path, backend="local")


@pytest.fixture
def store(jobs_settings: Settings) -> Iterator[JobStore]:
    jobs_settings.home.mkdir(parents=True, exist_ok=True)
    registry = Registry(jobs_settings.home, jobs_settings.effective_database_url)
    register(registry, "w2v")
    model, _ = pooling_model(registry, "w2v", pooling="mean")
    register_encoder(registry, "frases", model, metadata={})
    rows = [{"id": f"d{i}", "texto": TEXTS[i % len(TEXTS)], "n": i} for i in range(1_500)]
    (jobs_settings.effective_data_root / "docs.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    store = JobStore.from_registry(registry)
    yield store
    store.engine.dispose()


def _config(name: str = "docs") -> dict[str, object]:
    return {"name": name, "source": "docs.jsonl", "encoder": "frases", "text_field": "texto"}


def _run(store: JobStore, settings: Settings, job_id: str) -> bool:
    store.create(job_id, "collection", _config(), backend="local")
    store.claim(job_id, "w")
    return execute_job(settings, job_id, "w")


def test_jobs_collection_builds_the_collection_with_progress(
    store: JobStore, jobs_settings: Settings
) -> None:
    job_id = "c" * 32
    assert _run(store, jobs_settings, job_id) is True
    job = store.get(job_id)
    assert job.state is JobState.SUCCEEDED
    assert job.result is not None
    assert (job.result["collection"]["documents"], job.result["collection"]["encoder"]) == (1_500, "frases@1")
    info = CollectionStore(jobs_settings.home).info("docs")
    assert (info["documents"], info["text_field"]) == (1_500, "texto")
    lines = [line.line for line in store.logs(job_id)]
    assert "1000 documents encoded" in lines
    assert "1500 documents encoded" in lines


def test_jobs_collection_cancelled_before_the_rename_leaves_nothing(
    store: JobStore, jobs_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = "d" * 32
    finish = CollectionWriter.finish

    def cancelled_at_the_end(writer: CollectionWriter) -> int:
        store.cancel(job_id)  # every document encoded: only the rename is left
        return finish(writer)

    monkeypatch.setattr(CollectionWriter, "finish", cancelled_at_the_end)
    assert _run(store, jobs_settings, job_id) is False
    assert store.get(job_id).state is JobState.CANCELLED
    collections = CollectionStore(jobs_settings.home)
    with pytest.raises(CollectionNotFound):
        collections.info("docs")
    assert not (collections.root / "docs").exists()
    assert list((collections.root / ".staging").iterdir()) == []


def test_jobs_collection_config_and_input_are_checked_at_submit(
    store: JobStore, jobs_settings: Settings
) -> None:
    service = JobService(jobs_settings, store, backend=LocalBackend(jobs_settings.home))
    with pytest.raises(InvalidConfig, match="encoder"):
        service.submit("collection", {"name": "x", "source": "docs.jsonl"})
    with pytest.raises(InvalidConfig, match="sorce"):
        service.submit("collection", {**_config(), "sorce": "docs.jsonl"})
    with pytest.raises(PathNotAllowed):
        service.submit("collection", {**_config(), "source": "/etc/passwd"})


def test_jobs_collection_name_and_encoder_are_checked_at_submit(
    store: JobStore, jobs_settings: Settings
) -> None:
    """Each was accepted (202) and failed only in the worker (a hostile probe)."""
    registry = Registry(jobs_settings.home, jobs_settings.effective_database_url)
    service = JobService(jobs_settings, store, backend=LocalBackend(jobs_settings.home), registry=registry)
    taken = CollectionStore(jobs_settings.home).root / "tomada"
    taken.mkdir()
    (taken / "collection.json").write_text("{}", encoding="utf-8")
    with pytest.raises(InvalidInput, match="invalid collection name '-x'"):
        service.submit("collection", _config("-x"))
    with pytest.raises(Conflict, match="collection 'tomada' already exists"):
        service.submit("collection", _config("tomada"))
    with pytest.raises(InvalidInput, match="w2v@1 is a word2vec model"):
        service.submit("collection", {**_config(), "encoder": "w2v"})
    with pytest.raises(InvalidInput, match="unknown encoder 'nada'"):
        service.submit("collection", {**_config(), "encoder": "nada"})
    assert store.list_jobs()[1] == 0  # nothing queued
